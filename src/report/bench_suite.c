/* The standard benchmark suite behind `autovoice bench`: stage timings, the latency test, separation
 * against known truth and the machine's description, as JSON files the report reads.
 * Every measurement runs in its own child process (own peak memory; the parent starts no threads). */
#include "autovoice/bench.h"

#include "autovoice/f0.h"
#include "autovoice/sdr.h"
#include "autovoice/separate.h"
#include "report_internal.h"

#include <cjson/cJSON.h>
#include <ebur128.h>
#include <errno.h>
#include <fftw3.h>
#include <math.h>
#include <sndfile.h>
#include <soxr.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <zip.h>

/* OpenBLAS exports these; its cblas.h is not needed for two calls. */
extern char *openblas_get_config(void);
extern char *openblas_get_corename(void);

void avo_bench_options_default(avo_bench_options *opt) {
    memset(opt, 0, sizeof *opt);
    opt->out_dir = "bench/out";
    opt->requested_device = "cpu";
    opt->requested_precision = "fp32";
}

static const char *data_dir_of(const avo_bench_options *opt) { return opt->data_dir ? opt->data_dir : avo_bench_data_dir(); }

static avo_status write_json(const char *dir, const char *name, cJSON *doc, avo_error *err) {
    char *text = doc ? cJSON_Print(doc) : NULL;
    if (!text) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t n = strlen(text);
    text[n] = '\n'; /* replaces the terminator; length passed explicitly */
    avo_status st = report_write_file(path, text, n + 1, err);
    free(text);
    return st;
}

static avo_status make_dirs(const char *dir, avo_error *err) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return avo_error_set(err, AVO_ERR_IO, "%s: cannot create folder (%s)", buf, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    return access(dir, W_OK) == 0 ? AVO_OK : avo_error_set(err, AVO_ERR_IO, "%s: folder is not writable", dir);
}

/* ---- system.json ---- */

static void read_field(const char *path, const char *key, char *out, size_t n) {
    FILE *f = fopen(path, "r");
    char line[512];
    size_t klen = strlen(key);
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) != 0) continue;
        char *v = line + klen;
        while (*v == ' ' || *v == '\t' || *v == ':' || *v == '=' || *v == '"') v++;
        v[strcspn(v, "\"\n")] = 0;
        snprintf(out, n, "%s", v);
        break;
    }
    if (f) fclose(f);
}

avo_status avo_bench_system_json(char **json, avo_error *err) {
    cJSON *d = cJSON_CreateObject();
    if (!d) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    char cpu[256] = "unknown", os[256] = "", text[512];
    read_field("/proc/cpuinfo", "model name", cpu, sizeof cpu);
    read_field("/etc/os-release", "PRETTY_NAME", os, sizeof os);
    struct utsname u;
    if (uname(&u) == 0) {
        size_t len = strlen(os);
        snprintf(os + len, sizeof os - len, "%s%s %s %s", len ? ", " : "", u.sysname, u.release, u.machine);
    }
    cJSON_AddStringToObject(d, "benchmark", "system");
    cJSON_AddStringToObject(d, "cpu_model", cpu);
    cJSON_AddNumberToObject(d, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddNumberToObject(d, "memory_mb", (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / 1048576.0);
    cJSON_AddStringToObject(d, "os", os);
#if defined(__clang__)
    snprintf(text, sizeof text, "clang %s", __clang_version__);
#elif defined(__GNUC__)
    snprintf(text, sizeof text, "gcc %s", __VERSION__);
#else
    snprintf(text, sizeof text, "unknown C compiler");
#endif
    cJSON_AddStringToObject(d, "compiler", text);
#ifdef AVO_BUILD_TYPE
    snprintf(text, sizeof text, "%s", AVO_BUILD_TYPE);
#elif defined(__OPTIMIZE__)
    snprintf(text, sizeof text, "optimised (CMake build type not recorded)");
#else
    snprintf(text, sizeof text, "unoptimised (Debug)");
#endif
#if defined(__SANITIZE_ADDRESS__)
    strncat(text, " + AddressSanitizer", sizeof text - strlen(text) - 1);
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    strncat(text, " + AddressSanitizer", sizeof text - strlen(text) - 1);
#endif
#endif
    cJSON_AddStringToObject(d, "build_type", text);
    cJSON_AddStringToObject(d, "autovoice_version", avo_version());
    cJSON *libs = cJSON_AddObjectToObject(d, "libraries");
    cJSON_AddStringToObject(libs, "sndfile", sf_version_string());
    cJSON_AddStringToObject(libs, "fftw", fftwf_version);
    snprintf(text, sizeof text, "%s (core %s)", openblas_get_config(), openblas_get_corename());
    cJSON_AddStringToObject(libs, "openblas", text);
    cJSON_AddStringToObject(libs, "sqlite", sqlite3_libversion());
    cJSON_AddStringToObject(libs, "soxr", soxr_version());
    int maj = 0, min = 0, pat = 0;
    ebur128_get_version(&maj, &min, &pat);
    snprintf(text, sizeof text, "%d.%d.%d", maj, min, pat);
    cJSON_AddStringToObject(libs, "libebur128", text);
    cJSON_AddStringToObject(libs, "cjson", cJSON_Version());
    cJSON_AddStringToObject(libs, "libzip", zip_libzip_version());
    *json = cJSON_Print(d);
    cJSON_Delete(d);
    return *json ? AVO_OK : avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
}

/* ---- inputs ---- */

static avo_status load_song(const avo_bench_options *opt, double seconds, avo_audio *song, avo_audio *vocals,
                            avo_audio *acc, avo_error *err) {
    if (opt->song_path) return avo_audio_read(opt->song_path, song, err);
    return avo_bench_build_song(data_dir_of(opt), seconds, song, vocals, acc, err);
}

static void config_for(const avo_bench_options *opt, avo_preset preset, avo_pipeline_config *cfg) {
    avo_pipeline_config_default(cfg);
    cfg->preset = preset;
    cfg->threads = opt->threads;
}

/* ---- stage cases ---- */

typedef struct stage_job {
    const avo_bench_options *opt;
    double seconds;
    avo_preset preset;
    int runs;
} stage_job;

static avo_status stage_child(void *user, void *result, avo_error *err) {
    const stage_job *job = user;
    avo_bench_timing *t = result;
    avo_audio song = {0};
    avo_voice_analysis *target = NULL;
    avo_status st = load_song(job->opt, job->seconds, &song, NULL, NULL, err);
    if (!st) st = avo_bench_make_target(data_dir_of(job->opt), job->opt->clip_paths, job->opt->clip_count, &target, err);
    if (!st) {
        avo_pipeline_config cfg;
        config_for(job->opt, job->preset, &cfg);
        avo_pipeline_input in = {&song, NULL, NULL, target};
        st = avo_bench_time_pipeline(&cfg, &in, 0, job->runs, t, NULL, err);
    }
    avo_voice_analysis_free(target);
    avo_audio_free(&song);
    return st;
}

static void add_requested(cJSON *o, const avo_bench_options *opt) {
    cJSON_AddStringToObject(o, "requested_device", opt->requested_device ? opt->requested_device : "cpu");
    cJSON_AddStringToObject(o, "requested_precision", opt->requested_precision ? opt->requested_precision : "fp32");
}

static void add_timing(cJSON *c, const avo_bench_timing *t) {
    cJSON *tm = cJSON_AddObjectToObject(c, "stage_timings_ms");
    for (int s = 0; s < AVO_STAGE_COUNT; s++) cJSON_AddNumberToObject(tm, avo_stage_name((avo_stage)s), t->stage_ms[s]);
    cJSON_AddNumberToObject(tm, "total", t->total_ms);
    cJSON_AddItemToObject(c, "run_total_ms", cJSON_CreateDoubleArray(t->run_total_ms, t->runs));
    cJSON_AddNumberToObject(c, "rtf", t->rtf);
    cJSON_AddNumberToObject(c, "peak_rss_mb", t->peak_rss_mb);
    cJSON_AddStringToObject(c, "device", t->device);
    cJSON_AddStringToObject(c, "precision", t->precision);
    cJSON_AddStringToObject(c, "backend", t->backend);
    cJSON_AddStringToObject(c, "converter", t->converter);
    cJSON_AddStringToObject(c, "separation_method", t->separation_method);
    cJSON_AddStringToObject(c, "f0_method", t->f0_method);
}

static const char SONG_DESC[] =
    "falcon69 drums+bass+other looped, NUS-48E clips over it at 0 dB VAR, 44.1 kHz stereo (from shared data)";

avo_status avo_bench_stage_cases(const avo_bench_options *opt, const char *name, const double *song_seconds,
                                 int song_count, char **json, avo_error *err) {
    const avo_preset presets[] = {AVO_PRESET_FAST, AVO_PRESET_BALANCED};
    const int repeats = opt->repeats > 0 ? opt->repeats : opt->quick ? 1 : 3;
    if (repeats > AVO_BENCH_MAX_RUNS) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "at most %d repeats", AVO_BENCH_MAX_RUNS);
    cJSON *root = cJSON_CreateObject();
    if (!root) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    cJSON_AddStringToObject(root, "benchmark", name);
    cJSON_AddStringToObject(root, "song", opt->song_path ? opt->song_path : SONG_DESC);
    cJSON_AddNumberToObject(root, "threads", opt->threads);
    cJSON_AddStringToObject(root, "peak_rss_note", "peak resident memory of the pipeline runs, after the inputs were built");
    cJSON *cases = cJSON_AddArrayToObject(root, "cases");
    FILE *log = opt->log;
    if (log)
        fprintf(log, "%-8s %-9s %10s %10s %10s %10s %10s %8s %9s\n", "song s", "preset", "sep ms", "f0 ms", "conv ms",
                "mix ms", "total ms", "RTF", "peak MB");
    const int lengths = opt->song_path ? 1 : song_count;
    for (int l = 0; l < lengths; l++) {
        for (int p = 0; p < 2; p++) {
            /* Long songs once: they take minutes and vary little. */
            stage_job job = {opt, opt->song_path ? 0 : song_seconds[l], presets[p], 1};
            job.runs = job.seconds > 60 ? 1 : repeats;
            avo_bench_timing t;
            avo_error cerr;
            avo_error_clear(&cerr);
            avo_status st = avo_bench_run_in_child(stage_child, &job, &t, sizeof t, NULL, &cerr);
            cJSON *c = cJSON_CreateObject();
            cJSON_AddItemToArray(cases, c);
            cJSON_AddNumberToObject(c, "audio_duration_seconds", st ? job.seconds : t.audio_seconds);
            cJSON_AddStringToObject(c, "preset", avo_preset_name(presets[p]));
            cJSON_AddNumberToObject(c, "repeats", job.runs);
            add_requested(c, opt);
            if (st) {
                cJSON_AddStringToObject(c, "error", cerr.message);
                if (log) fprintf(log, "%-8.0f %-9s failed: %s\n", job.seconds, avo_preset_name(presets[p]), cerr.message);
                continue;
            }
            add_timing(c, &t);
            if (log)
                fprintf(log, "%-8.1f %-9s %10.1f %10.1f %10.1f %10.1f %10.1f %8.4f %9.1f\n", t.audio_seconds,
                        avo_preset_name(presets[p]), t.stage_ms[0], t.stage_ms[1], t.stage_ms[2], t.stage_ms[3],
                        t.total_ms, t.rtf, t.peak_rss_mb);
        }
    }
    *json = cJSON_Print(root);
    cJSON_Delete(root);
    return *json ? AVO_OK : avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
}

/* ---- latency ---- */

#define LATENCY_RTF_TARGET 0.1   /* 3 s for a 30 s song on CPU */
#define EXCERPT_SECONDS 6.0

typedef struct latency_job {
    const avo_bench_options *opt;
    double seconds;
    int runs;
} latency_job;

/* Mono excerpt [start, start + EXCERPT_SECONDS) of a, written as 16-bit WAV. */
static avo_status write_excerpt(const avo_audio *a, double start, const char *path, avo_error *err) {
    avo_audio mono = {0}, cut = {0};
    avo_status st = avo_audio_to_mono(a, &mono, err);
    int64_t s0 = (int64_t)(start * mono.sample_rate), n = (int64_t)(EXCERPT_SECONDS * mono.sample_rate);
    if (!st && s0 + n > mono.frames) s0 = mono.frames > n ? mono.frames - n : 0;
    if (!st && n > mono.frames - s0) n = mono.frames - s0;
    if (!st) st = avo_audio_alloc(&cut, mono.sample_rate, 1, n, err);
    if (!st) {
        memcpy(cut.samples, mono.samples + s0, sizeof(float) * (size_t)n);
        st = avo_audio_write(path, &cut, AVO_AUDIO_WAV_PCM16, err);
    }
    avo_audio_free(&mono);
    avo_audio_free(&cut);
    return st;
}

/* F0 series of the latency run: the pipeline's source F0 and an F0 estimate of the converted vocals at
 * the same hop, rounded to 0.1 Hz to keep the file small. */
static avo_status add_f0_series(cJSON *doc, const avo_pipeline_output *o, avo_error *err) {
    const avo_f0_track *src = &o->source_f0;
    avo_f0_config fcfg;
    avo_f0_config_default(&fcfg);
    fcfg.method = AVO_F0_FAST;
    fcfg.hop_seconds = src->hop_seconds;
    avo_f0_track conv = {0};
    avo_status st = avo_f0_estimate(o->converted.samples, o->converted.frames, o->converted.sample_rate, &fcfg, &conv, err);
    if (st) return st;
    cJSON *s = cJSON_AddObjectToObject(doc, "f0_series");
    cJSON_AddNumberToObject(s, "hop_seconds", src->hop_seconds);
    cJSON_AddStringToObject(s, "output_method", "fast F0 estimate of the converted vocals");
    cJSON *a = cJSON_AddArrayToObject(s, "source_hz"), *b = cJSON_AddArrayToObject(s, "output_hz");
    for (int64_t i = 0; i < src->frames; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(round(src->f0_hz[i] * 10) / 10));
    for (int64_t i = 0; i < conv.frames; i++) cJSON_AddItemToArray(b, cJSON_CreateNumber(round(conv.f0_hz[i] * 10) / 10));
    avo_f0_track_free(&conv);
    return AVO_OK;
}

static avo_status write_excerpts(const avo_bench_options *opt, const avo_pipeline_output *o, cJSON *doc, avo_error *err) {
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/excerpts", opt->out_dir);
    avo_status st = make_dirs(dir, err);
    avo_audio target = {0};
    if (!st) {
        char def[4096];
        const char *clip = opt->clip_count > 0 ? opt->clip_paths[0] : def;
        snprintf(def, sizeof def, "%s/singing/nus48e_JLEE_11.flac", data_dir_of(opt));
        st = avo_audio_read(clip, &target, err);
    }
    const struct { const char *key; const avo_audio *a; double start; } parts[] = {
        {"source", &o->vocals, 1.0}, {"target", &target, 0.0}, {"output", &o->converted, 1.0}};
    cJSON *ex = cJSON_AddObjectToObject(doc, "excerpts");
    for (size_t i = 0; i < 3 && !st; i++) {
        snprintf(path, sizeof path, "%s/%s.wav", dir, parts[i].key);
        st = write_excerpt(parts[i].a, parts[i].start, path, err);
        snprintf(path, sizeof path, "excerpts/%s.wav", parts[i].key);
        if (!st) cJSON_AddStringToObject(ex, parts[i].key, path);
    }
    avo_audio_free(&target);
    return st;
}

static avo_status latency_child(void *user, void *result, avo_error *err) {
    const latency_job *job = user;
    const avo_bench_options *opt = job->opt;
    avo_bench_timing *t = result;
    avo_audio song = {0};
    avo_voice_analysis *target = NULL;
    avo_pipeline_output last;
    memset(&last, 0, sizeof last);
    avo_status st = load_song(opt, job->seconds, &song, NULL, NULL, err);
    if (!st) st = avo_bench_make_target(data_dir_of(opt), opt->clip_paths, opt->clip_count, &target, err);
    if (!st) {
        avo_pipeline_config cfg;
        config_for(opt, AVO_PRESET_FAST, &cfg);
        avo_pipeline_input in = {&song, NULL, NULL, target};
        st = avo_bench_time_pipeline(&cfg, &in, 1, job->runs, t, &last, err);
        /* The timed runs take the production path, which frees the stems as it goes; one more,
         * untimed run keeps them for the F0 series and the excerpts. */
        if (!st) {
            avo_run_metadata meta;
            avo_pipeline_output_free(&last);
            cfg.keep_stems = 1;
            st = avo_pipeline_run(&cfg, &in, &last, &meta, err);
        }
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "benchmark", "latency");
    cJSON_AddStringToObject(doc, "song", opt->song_path ? opt->song_path : SONG_DESC);
    if (!st) {
        const double target_s = LATENCY_RTF_TARGET * t->audio_seconds, elapsed_s = t->total_ms / 1000.0;
        const char *req_dev = opt->requested_device ? opt->requested_device : "cpu";
        const char *req_prec = opt->requested_precision ? opt->requested_precision : "fp32";
        const int same = strcmp(req_dev, t->device) == 0 && strcmp(req_prec, t->precision) == 0;
        char note[200] = "";
        if (strcmp(req_dev, t->device) != 0) snprintf(note, sizeof note, "requested %s, ran %s", req_dev, t->device);
        if (strcmp(req_prec, t->precision) != 0) {
            size_t len = strlen(note);
            snprintf(note + len, sizeof note - len, "%srequested %s, ran %s", len ? "; " : "", req_prec, t->precision);
        }
        cJSON_AddNumberToObject(doc, "song_seconds", t->audio_seconds);
        cJSON_AddStringToObject(doc, "preset", "fast");
        cJSON_AddNumberToObject(doc, "warmup_runs", 1);
        cJSON_AddNumberToObject(doc, "timed_runs", t->runs);
        cJSON_AddNumberToObject(doc, "elapsed_ms", t->total_ms);
        cJSON_AddItemToObject(doc, "elapsed_ms_runs", cJSON_CreateDoubleArray(t->run_total_ms, t->runs));
        cJSON_AddNumberToObject(doc, "rtf", t->rtf);
        add_requested(doc, opt);
        cJSON_AddStringToObject(doc, "device", t->device);
        cJSON_AddStringToObject(doc, "precision", t->precision);
        cJSON_AddStringToObject(doc, "backend", t->backend);
        cJSON_AddNumberToObject(doc, "target_seconds", target_s);
        cJSON_AddStringToObject(doc, "target_rule", "RTF 0.1 on CPU: 3 s for a 30 s song");
        cJSON_AddBoolToObject(doc, "target_met", same && elapsed_s <= target_s);
        cJSON_AddStringToObject(doc, "status", !same ? note : elapsed_s <= target_s ? "pass" : "fail");
        cJSON_AddNumberToObject(doc, "peak_rss_mb", t->peak_rss_mb);
        st = add_f0_series(doc, &last, err);
        if (!st) st = write_excerpts(opt, &last, doc, err);
    }
    if (st) {
        /* The file still says what happened, so the report shows it. */
        cJSON_Delete(doc);
        doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "benchmark", "latency");
        cJSON_AddStringToObject(doc, "error", err->message);
    }
    avo_error werr;
    avo_status wst = write_json(opt->out_dir, "latency.json", doc, &werr);
    if (!st && wst) {
        st = wst;
        *err = werr;
    }
    cJSON_Delete(doc);
    avo_pipeline_output_free(&last);
    avo_voice_analysis_free(target);
    avo_audio_free(&song);
    return st;
}

/* ---- separation against known truth ---- */

typedef struct sep_result {
    double seconds, separation_ms;
    double sdr[2], si_sdr[2], mix_sdr[2], mix_si_sdr[2];
    char method[64];
} sep_result;

static avo_status separation_child(void *user, void *result, avo_error *err) {
    const latency_job *job = user;
    sep_result *r = result;
    memset(r, 0, sizeof *r);
    avo_audio song = {0}, truth[2] = {{0}}, est[2] = {{0}};
    avo_separator *sep = NULL;
    avo_separator_config scfg;
    avo_separator_config_default(&scfg);
    scfg.preset = AVO_PRESET_BALANCED;
    scfg.threads = job->opt->threads;
    avo_status st = avo_bench_build_song(data_dir_of(job->opt), job->seconds, &song, &truth[0], &truth[1], err);
    if (!st) st = avo_separator_create(&scfg, &sep, err);
    const double t0 = avo_now_ms();
    if (!st) st = avo_separator_run(sep, &song, &est[0], &est[1], NULL, NULL, err);
    r->separation_ms = avo_now_ms() - t0;
    if (!st) {
        snprintf(r->method, sizeof r->method, "%s", avo_separator_method(sep));
        r->seconds = (double)song.frames / song.sample_rate;
        st = avo_bss_eval_sdr(truth, est, 2, 0, 0, NULL, r->sdr, err);
    }
    /* The unprocessed mixture as the estimate of both stems: the baseline separation must beat. */
    avo_audio mix2[2] = {song, song};
    if (!st) st = avo_bss_eval_sdr(truth, mix2, 2, 0, 0, NULL, r->mix_sdr, err);
    for (int k = 0; k < 2 && !st; k++) {
        st = avo_si_sdr_audio(&truth[k], &est[k], &r->si_sdr[k], err);
        if (!st) st = avo_si_sdr_audio(&truth[k], &song, &r->mix_si_sdr[k], err);
    }
    avo_separator_free(sep);
    for (int k = 0; k < 2; k++) {
        avo_audio_free(&truth[k]);
        avo_audio_free(&est[k]);
    }
    avo_audio_free(&song);
    return st;
}

static void add_stem(cJSON *stems, const char *name, double sdr, double si) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "name", name);
    /* JSON has no infinity: clamp to a figure that still reads as "perfect". */
    cJSON_AddNumberToObject(s, "sdr_db", isfinite(sdr) ? sdr : sdr > 0 ? 999 : -999);
    cJSON_AddNumberToObject(s, "si_sdr_db", isfinite(si) ? si : si > 0 ? 999 : -999);
    cJSON_AddItemToArray(stems, s);
}

static avo_status run_separation(const avo_bench_options *opt, avo_error *err) {
    latency_job job = {opt, opt->quick ? 10.0 : 30.0, 1};
    sep_result r;
    double peak = 0;
    avo_error cerr;
    avo_error_clear(&cerr);
    avo_status st = avo_bench_run_in_child(separation_child, &job, &r, sizeof r, &peak, &cerr);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "benchmark", "separation");
    if (st) {
        char why[1200];
        snprintf(why, sizeof why, "the separation run failed: %s", cerr.message);
        cJSON_AddStringToObject(doc, "not_measured", why);
    } else {
        char desc[256];
        snprintf(desc, sizeof desc, "%.0f s constructed song (%s); truth = its vocal and accompaniment stems", r.seconds, SONG_DESC);
        cJSON_AddStringToObject(doc, "mixture", desc);
        cJSON_AddStringToObject(doc, "method", r.method);
        cJSON_AddStringToObject(doc, "preset", "balanced");
        cJSON_AddStringToObject(doc, "sdr_tool",
                                "autovoice sdr.h: BSS Eval v4 images-mode SDR (museval), median over 1 s windows; SI-SDR over the whole song");
        cJSON_AddNumberToObject(doc, "seconds", r.seconds);
        cJSON_AddNumberToObject(doc, "separation_ms", r.separation_ms);
        cJSON_AddNumberToObject(doc, "peak_rss_mb", peak);
        cJSON *stems = cJSON_AddArrayToObject(doc, "stems");
        add_stem(stems, "vocals", r.sdr[0], r.si_sdr[0]);
        add_stem(stems, "accompaniment", r.sdr[1], r.si_sdr[1]);
        add_stem(stems, "vocals: unprocessed mixture (baseline)", r.mix_sdr[0], r.mix_si_sdr[0]);
        add_stem(stems, "accompaniment: unprocessed mixture (baseline)", r.mix_sdr[1], r.mix_si_sdr[1]);
        if (opt->log)
            fprintf(opt->log, "separation (%s, %.0f s): vocals SDR %.2f dB (mixture %.2f), accompaniment SDR %.2f dB (mixture %.2f)\n",
                    r.method, r.seconds, r.sdr[0], r.mix_sdr[0], r.sdr[1], r.mix_sdr[1]);
    }
    avo_status wst = write_json(opt->out_dir, "separation.json", doc, err);
    cJSON_Delete(doc);
    if (st && opt->log) fprintf(opt->log, "separation: failed: %s\n", cerr.message);
    return wst;
}

/* quality.json: conversions between the shared singers scored by the evaluator; a failure is written
 * into the file so the report says what was not measured. */
static avo_status run_quality(const avo_bench_options *opt, avo_error *err) {
    avo_bench_quality_options q;
    avo_bench_quality_options_default(&q);
    q.data_dir = data_dir_of(opt);
    q.scope = opt->quick ? AVO_QUALITY_QUICK : AVO_QUALITY_STANDARD;
    q.log = opt->log;
    if (opt->log) fprintf(opt->log, "conversion quality (%s pairs):\n", opt->quick ? "3" : "standard set of");
    char *json = NULL;
    avo_error qerr;
    avo_error_clear(&qerr);
    if (avo_bench_quality(&q, &json, &qerr) == AVO_OK) {
        char path[4096];
        snprintf(path, sizeof path, "%s/quality.json", opt->out_dir);
        avo_status st = report_write_file(path, json, strlen(json), err);
        free(json);
        return st;
    }
    if (opt->log) fprintf(opt->log, "quality: failed: %s\n", qerr.message);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "benchmark", "quality");
    cJSON_AddStringToObject(doc, "not_measured", qerr.message);
    avo_status st = write_json(opt->out_dir, "quality.json", doc, err);
    cJSON_Delete(doc);
    return st;
}

/* ---- the suite ---- */

avo_status avo_bench_run_suite(const avo_bench_options *opt, avo_error *err) {
    avo_status st = make_dirs(opt->out_dir, err);
    char *json = NULL;
    if (!st) st = avo_bench_system_json(&json, err);
    if (!st) {
        char path[4096];
        snprintf(path, sizeof path, "%s/system.json", opt->out_dir);
        st = report_write_file(path, json, strlen(json), err);
    }
    free(json);
    json = NULL;
    if (st) return st;

    const double full[] = {30.0, 240.0}, quick[] = {10.0};
    if (opt->log) fprintf(opt->log, "stage timings (%s):\n", opt->quick ? "quick" : "30 s and 4 min songs");
    st = avo_bench_stage_cases(opt, "performance_breakdown", opt->quick ? quick : full, opt->quick ? 1 : 2, &json, err);
    if (!st) {
        char path[4096];
        snprintf(path, sizeof path, "%s/performance_breakdown.json", opt->out_dir);
        st = report_write_file(path, json, strlen(json), err);
    }
    free(json);
    if (st) return st;

    latency_job job = {opt, opt->quick ? 10.0 : 30.0, opt->repeats > 0 ? opt->repeats : opt->quick ? 1 : 3};
    if (job.runs > AVO_BENCH_MAX_RUNS) job.runs = AVO_BENCH_MAX_RUNS;
    avo_bench_timing t;
    avo_error cerr;
    avo_error_clear(&cerr);
    if (avo_bench_run_in_child(latency_child, &job, &t, sizeof t, NULL, &cerr) == AVO_OK) {
        if (opt->log)
            fprintf(opt->log, "latency (fast, %.0f s song, warm, median of %d): %.3f s, RTF %.4f, ran %s/%s (requested %s/%s)\n",
                    t.audio_seconds, t.runs, t.total_ms / 1000.0, t.rtf, t.device, t.precision,
                    opt->requested_device ? opt->requested_device : "cpu",
                    opt->requested_precision ? opt->requested_precision : "fp32");
    } else {
        if (opt->log) fprintf(opt->log, "latency: failed: %s\n", cerr.message);
        /* A child that died before writing leaves no latency.json: write the failure. */
        char path[4096];
        snprintf(path, sizeof path, "%s/latency.json", opt->out_dir);
        if (access(path, F_OK) != 0 || strstr(cerr.message, "child")) {
            cJSON *doc = cJSON_CreateObject();
            cJSON_AddStringToObject(doc, "benchmark", "latency");
            cJSON_AddStringToObject(doc, "error", cerr.message);
            st = write_json(opt->out_dir, "latency.json", doc, err);
            cJSON_Delete(doc);
        }
    }
    if (!st) st = run_separation(opt, err);
    if (!st) st = run_quality(opt, err);
    return st;
}
