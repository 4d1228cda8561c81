/* The conversion pipeline: separation -> f0_extraction -> conversion -> mixing.
 *
 * Each stage's wall time goes to a profiling callback as it ends, then "total"; the same figures and
 * what really ran (methods, back end, precision) are collected in avo_run_metadata. */
#ifndef AUTOVOICE_PIPELINE_H
#define AUTOVOICE_PIPELINE_H

#include "autovoice/audio.h"
#include "autovoice/convert.h"
#include "autovoice/f0.h"
#include "autovoice/mix.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum avo_stage {
    AVO_STAGE_SEPARATION = 0,
    AVO_STAGE_F0_EXTRACTION,
    AVO_STAGE_CONVERSION,
    AVO_STAGE_MIXING,
    AVO_STAGE_COUNT
} avo_stage;

/* "separation", "f0_extraction", "conversion", "mixing"; "total" for AVO_STAGE_COUNT. */
const char *avo_stage_name(avo_stage stage);

typedef void (*avo_stage_timing_fn)(const char *stage, double elapsed_ms, void *user);

typedef struct avo_pipeline_config {
    avo_preset preset;
    int threads;                   /* 0 = as many as available */
    avo_convert_options convert;   /* preset and threads are overridden by the fields above */
    int skip_separation;           /* the song is a dry vocal: no accompaniment */
    int keep_stems;                /* 1: keep vocals, accompaniment and converted vocals in the output
                                    * (for --stems-dir); 0 frees them as soon as they are used */
    avo_stage_timing_fn on_stage;  /* may be NULL */
    void *on_stage_user;
    avo_progress_fn progress;      /* may be NULL */
    void *progress_user;
    const avo_neural_config *neural; /* NULL: the DSP converter; else an RVC voice model (convert.h) */
    const char *pitch_model_path;  /* rmvpe.pt: the f0_extraction stage runs RMVPE (16 kHz, 10 ms); NULL:
                                    * the DSP tracker of the preset */
    /* Models loaded once and reused over many runs (a server, a benchmark); borrowed, NULL: each run loads
     * its own. converter replaces the one neural / the DSP target would make (its options, not
     * cfg->convert, then apply); pitch_model on pitch_backend replaces pitch_model_path. */
    avo_converter *converter;
    struct avo_rmvpe *pitch_model;
    avo_backend *pitch_backend;
} avo_pipeline_config;

typedef struct avo_pipeline_input {
    const avo_audio *song;           /* the mixture (or the dry vocal with skip_separation) */
    const avo_audio *vocals;         /* optional: given stems skip separation */
    const avo_audio *accompaniment;  /* optional: required with vocals */
    const avo_voice_analysis *target; /* required by the DSP converter; optional with a neural model
                                       * (its pitch range then drives auto-transpose) */
} avo_pipeline_input;

typedef struct avo_pipeline_output {
    avo_audio mix;            /* the result: the song's rate, channels and length */
    avo_audio vocals;         /* separated (or given) vocals; empty unless keep_stems */
    avo_audio accompaniment;  /* empty unless keep_stems */
    avo_audio converted;      /* converted vocals, mono, the vocals' rate; empty unless keep_stems */
    avo_f0_track source_f0;   /* F0 of the source vocals */
} avo_pipeline_output;

typedef struct avo_run_metadata {
    char version[32];
    char input[1024];             /* the song's file name, filled in by the caller (may stay empty) */
    char preset[16];
    int threads;
    double audio_duration_seconds;
    int sample_rate;
    int channels;
    double stage_ms[AVO_STAGE_COUNT];
    double total_ms;
    double rtf;                   /* total_ms / 1000 / audio_duration_seconds */
    char separation_method[64];   /* "given-stems", "none (dry vocal)" or the separator's method */
    char f0_method[32];
    char f0_device[64];           /* where the F0 stage ran ("cpu" for the DSP trackers) */
    char f0_precision[16];
    char converter[64];
    char backend[32];
    char device[64];
    char precision[16];
    char content_device[64];      /* neural converters: where the content encoder ran (else empty) */
    char content_precision[16];
    char f0_engine[16], content_engine[16], voice_engine[16]; /* engine cache per model ("" for none) */
    char engine_notes[640];       /* why an engine was rebuilt or not cached; empty if none */
    char calibration_cache[512];  /* the INT8 calibration cache that ran, empty if none */
    char device_fallback[640];    /* why a requested device or precision was not used; empty if none */
    double applied_transpose_semitones;
    double formant_warp_ratio;
    avo_mix_report mix;
} avo_run_metadata;

void avo_pipeline_config_default(avo_pipeline_config *cfg);

/* Loads the pitch network (cfg->pitch_model_path) as the f0_extraction stage would: on the back end
 * cfg->neural asks of the pitch component, through the engine cache. For callers that keep it over
 * many runs (pitch_model, pitch_backend above; free the model before the back end). place and engine
 * (may be NULL) get where it runs and the engine-cache outcome. */
struct avo_engine_result;
avo_status avo_pipeline_load_pitch_model(const avo_pipeline_config *cfg, avo_backend **be, struct avo_rmvpe **model,
                                         avo_neural_placement *place, struct avo_engine_result *engine,
                                         avo_error *err);

avo_status avo_pipeline_run(const avo_pipeline_config *cfg, const avo_pipeline_input *in, avo_pipeline_output *out,
                            avo_run_metadata *meta, avo_error *err);
/* The same, with the song's buffer handed over: song is the audio in->song points to, and the pipeline
 * may overwrite and free it. A song that is separated (no stems given, keep_stems 0) becomes the
 * accompaniment in place, one song-length buffer fewer (212 MB for 10 stereo minutes at 44.1 kHz), and
 * *song is left empty (the caller's avo_audio_free of it is then a no-op). Same output as
 * avo_pipeline_run. */
avo_status avo_pipeline_run_consuming(const avo_pipeline_config *cfg, const avo_pipeline_input *in, avo_audio *song,
                                      avo_pipeline_output *out, avo_run_metadata *meta, avo_error *err);
void avo_pipeline_output_free(avo_pipeline_output *out);

/* The --profile-json document: audio_duration_seconds, stage_timings_ms{separation, f0_extraction,
 * conversion, mixing, total}, stage_percentages, rtf, device, backend, precision, preset and what ran.
 * Returns a malloc'd string. */
avo_status avo_run_metadata_to_json(const avo_run_metadata *meta, char **json, avo_error *err);

#ifdef __cplusplus
}
#endif
#endif
