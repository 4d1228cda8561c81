/* Benchmarks: test songs built from the shared recordings, timed pipeline runs in child processes
 * (each with its own peak RSS), system facts, and the standard suite behind `autovoice bench`.
 *
 * Test songs: the falcon69 accompaniment (drums+bass+other) looped with 10 ms crossfades, and
 * NUS-48E singing clips (16 kHz, resampled to 44.1 kHz, centre-panned) one after another over it at
 * a vocal-to-accompaniment ratio of 0 dB (RMS), both scaled by 0.5. The song is exactly the sum of
 * the returned vocal and accompaniment stems, so separation can be scored against known truth.
 * The default target voice is singer JLEE's two clips. */
#ifndef AUTOVOICE_BENCH_H
#define AUTOVOICE_BENCH_H

#include "autovoice/audio.h"
#include "autovoice/pipeline.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The shared recordings: $AVO_TEST_DATA if set, else "../shared/data". */
const char *avo_bench_data_dir(void);

/* Reads path and converts it to rate and channel count. */
avo_status avo_bench_load(const char *path, int rate, int channels, avo_audio *out, avo_error *err);

/* src repeated to exactly frames long; copies overlap by 10 ms with linear crossfades (gains sum to 1). */
avo_status avo_bench_loop_to(const avo_audio *src, int64_t frames, avo_audio *out, avo_error *err);

/* Sum of the falcon69 drums, bass and other stems (44.1 kHz stereo): the accompaniment, no vocals. */
avo_status avo_bench_falcon_accompaniment(const char *data_dir, avo_audio *out, avo_error *err);

/* A test song of `seconds` at 44.1 kHz stereo (see above). vocals and accompaniment may be NULL; when
 * given they receive the exact stems (song = vocals + accompaniment). */
avo_status avo_bench_build_song(const char *data_dir, double seconds, avo_audio *song, avo_audio *vocals,
                                avo_audio *accompaniment, avo_error *err);

/* Target voice from recordings (clip_paths), or the default JLEE clips when clip_count is 0. */
avo_status avo_bench_make_target(const char *data_dir, const char *const *clip_paths, int clip_count,
                                 avo_voice_analysis **out, avo_error *err);

/* Peak resident set size of this process, MB. */
double avo_bench_peak_rss_mb(void);

/* Median of v (sorted in place). n > 0. */
double avo_bench_median(double *v, int n);

/* Runs fn(user, result) in a forked child; result (size bytes) is copied back through a pipe. Returns
 * fn's status; *peak_rss_mb (may be NULL) gets the child's peak RSS. The child's error message comes
 * back in err. Call before this process has started any OpenMP threads. */
typedef avo_status (*avo_bench_child_fn)(void *user, void *result, avo_error *err);
avo_status avo_bench_run_in_child(avo_bench_child_fn fn, void *user, void *result, size_t size,
                                  double *peak_rss_mb, avo_error *err);

/* Median-of-runs timings of one pipeline configuration, and what really ran. */
#define AVO_BENCH_MAX_RUNS 16
typedef struct avo_bench_timing {
    double audio_seconds;
    int runs;                              /* timed runs */
    double stage_ms[AVO_STAGE_COUNT];      /* of the run with the median total */
    double total_ms;                       /* median (the lower middle run for an even count) */
    double run_total_ms[AVO_BENCH_MAX_RUNS];
    double rtf;                            /* total_ms / 1000 / audio_seconds */
    double peak_rss_mb;                    /* during these runs (inputs already built), where Linux allows */
    char device[64], precision[16], backend[32], converter[64], separation_method[64], f0_method[32];
} avo_bench_timing;

/* Runs the pipeline warmup times untimed, then runs times (1..AVO_BENCH_MAX_RUNS) timed. last (may be
 * NULL) receives the output of the last timed run; the caller frees it. */
avo_status avo_bench_time_pipeline(const avo_pipeline_config *cfg, const avo_pipeline_input *in, int warmup,
                                   int runs, avo_bench_timing *out, avo_pipeline_output *last, avo_error *err);

/* ---- The standard suite ---- */

typedef struct avo_bench_options {
    const char *out_dir;               /* where the JSON goes; created if missing (default "bench/out") */
    const char *data_dir;              /* NULL = avo_bench_data_dir() */
    const char *requested_device;      /* "cpu" (default) or "cuda": recorded, compared with what ran */
    const char *requested_precision;   /* "fp32" (default), "fp16" or "int8" */
    int quick;                         /* short songs and one timed run: for tests */
    int threads;                       /* 0 = all cores */
    int repeats;                       /* timed runs per short case; 0 = 3 (1 with quick) */
    const char *song_path;             /* user song instead of the built ones (NULL = built) */
    const char *const *clip_paths;     /* user target recordings (clip_count of them) */
    int clip_count;
    FILE *log;                         /* progress table, may be NULL */
} avo_bench_options;

void avo_bench_options_default(avo_bench_options *opt);

/* Per-stage timings for each song length and preset, each case in its own child process. Writes the
 * JSON document ("benchmark": name, "cases": [...]) to *json (malloc'd). */
avo_status avo_bench_stage_cases(const avo_bench_options *opt, const char *name, const double *song_seconds,
                                 int song_count, char **json, avo_error *err);

/* The whole suite: performance_breakdown.json, latency.json, separation.json, quality.json and system.json in
 * opt->out_dir (plus excerpts/ with short WAV excerpts for spectrograms). */
avo_status avo_bench_run_suite(const avo_bench_options *opt, avo_error *err);

/* Conversion quality benchmark (quality.json): DSP conversions between the shared singers and speech
 * profiles, scored by the evaluator (autovoice/eval.h). */
typedef enum avo_bench_quality_scope {
    AVO_QUALITY_QUICK = 0, /* three pairs, for tests */
    AVO_QUALITY_STANDARD,  /* every singer once as a source, plus two speech profiles */
    AVO_QUALITY_ALL        /* every ordered singer pair plus five speech profiles */
} avo_bench_quality_scope;

typedef struct avo_bench_quality_options {
    const char *data_dir;
    avo_preset preset;
    double protect;                /* < 0: the converter's default */
    avo_bench_quality_scope scope;
    FILE *log;                     /* summary table, may be NULL */
    const char *only;              /* NULL: every pair of the scope; else comma-separated singer names (JLEE) and
                                      LibriSpeech speaker ids (1688-142285): pairs whose source and target are
                                      both listed (tuning on one half of the voices, confirming on the other) */
    int verbose;                   /* 1: one log line per pair */
} avo_bench_quality_options;

void avo_bench_quality_options_default(avo_bench_quality_options *opt);
avo_status avo_bench_quality(const avo_bench_quality_options *opt, char **json, avo_error *err);

/* system.json: CPU model, cores, memory, OS, compiler, build type, library versions. malloc'd. */
avo_status avo_bench_system_json(char **json, avo_error *err);

#ifdef __cplusplus
}
#endif
#endif
