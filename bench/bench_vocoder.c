/* Vocoder benchmark: analysis -> synthesis round trip on every singing and speech clip of the
 * shared data, against WORLD (CheapTrick + D4C + Synthesis) when its shared library is given.
 *
 * Per clip: F0 from avo_f0_estimate (accurate, 5 ms hop), used by both vocoders. Round trip: analyse,
 * synthesise, re-analyse the output with the same analysis and the same F0, then
 *   MCD  (dB): avo_voice_params_distance, 24 mel-cepstral coefficients c1..c24 (c0 excluded), all-pass
 *        warping alpha = avo_mel_alpha(rate), frames voiced in the F0, mean over frames;
 *   LSD  (dB): RMS over bins of 10 log10(P/P'), mean over the same frames;
 *   F0 error (cents RMSE): avo_f0_estimate on the output against the analysis F0, frames voiced in both
 *        and 2+ frames from a voicing edge; also without gross errors (> 50 cents).
 * WORLD's figures use WORLD's own analysis for both passes. Time: analysis + synthesis (F0 excluded),
 * median of --runs runs; ours with 1 and 2 threads, WORLD single-threaded.
 *
 * WORLD is loaded at run time: AVO_WORLD_LIB=/path/to/libworld.so (built outside this repository).
 *
 * usage: bench_vocoder [--out FILE.json] [--runs N] [--limit N] [--data DIR] */
#include "autovoice/audio.h"
#include "autovoice/vocoder.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* WORLD's C API (extern "C" in its headers); only the pieces used here. */
typedef struct {
    double q1;
    double f0_floor;
    int fft_size;
} world_ct_option;
typedef struct {
    double threshold;
} world_d4c_option;

typedef struct world_api {
    void (*init_ct)(int fs, world_ct_option *o);
    int (*ct_fft)(int fs, const world_ct_option *o);
    void (*cheaptrick)(const double *x, int n, int fs, const double *tpos, const double *f0, int frames,
                       const world_ct_option *o, double **sp);
    void (*init_d4c)(world_d4c_option *o);
    void (*d4c)(const double *x, int n, int fs, const double *tpos, const double *f0, int frames, int fft,
                const world_d4c_option *o, double **ap);
    void (*synthesis)(const double *f0, int frames, const double *const *sp, const double *const *ap, int fft,
                      double frame_period_ms, int fs, int n, double *y);
} world_api;

static int world_load(world_api *w, const char *path) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "bench: cannot load WORLD from %s: %s\n", path, dlerror());
        return 0;
    }
    *(void **)&w->init_ct = dlsym(h, "InitializeCheapTrickOption");
    *(void **)&w->ct_fft = dlsym(h, "GetFFTSizeForCheapTrick");
    *(void **)&w->cheaptrick = dlsym(h, "CheapTrick");
    *(void **)&w->init_d4c = dlsym(h, "InitializeD4COption");
    *(void **)&w->d4c = dlsym(h, "D4C");
    *(void **)&w->synthesis = dlsym(h, "Synthesis");
    if (!w->init_ct || !w->ct_fft || !w->cheaptrick || !w->init_d4c || !w->d4c || !w->synthesis) {
        fprintf(stderr, "bench: %s lacks WORLD's CheapTrick/D4C/Synthesis symbols\n", path);
        return 0;
    }
    return 1;
}

static const double FRAME_PERIOD = 0.005;
enum { MCD_ORDER = 24, MAX_RUNS = 15 };

typedef struct result {
    double mcd, lsd, f0_cents, f0_fine, t1_ms, t2_ms;
    int measured;
} result;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    if (n <= 0) return NAN;
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void die(const char *what, const avo_error *err) {
    fprintf(stderr, "bench: %s: %s\n", what, err->message);
    exit(1);
}

/* Cents RMSE of the F0 re-estimated on y against ref (vocoder frames), frames voiced in both and
 * at least 2 frames from a voicing edge; *fine gets the RMSE without gross errors (> 50 cents). */
static double f0_error_cents(const float *y, int64_t n, int fs, const avo_voice_params *ref, double *fine) {
    avo_f0_config fc;
    avo_f0_config_default(&fc);
    fc.method = AVO_F0_ACCURATE;
    fc.hop_seconds = ref->frame_period_seconds;
    avo_f0_track tr = {0};
    avo_error err;
    if (avo_f0_estimate(y, n, fs, &fc, &tr, &err)) die("F0 of the resynthesis", &err);
    double s = 0, sf = 0;
    int64_t used = 0, usedf = 0;
    for (int64_t i = 2; i + 2 < ref->frames && i + 2 < tr.frames; i++) {
        int inside = 1;
        for (int64_t j = i - 2; j <= i + 2; j++) inside &= ref->f0_hz[j] > 0 && tr.f0_hz[j] > 0;
        if (!inside) continue;
        double c = 1200 * log2(tr.f0_hz[i] / ref->f0_hz[i]);
        s += c * c;
        used++;
        if (fabs(c) <= 50) {
            sf += c * c;
            usedf++;
        }
    }
    avo_f0_track_free(&tr);
    *fine = usedf ? sqrt(sf / (double)usedf) : NAN;
    return used ? sqrt(s / (double)used) : NAN;
}

static result run_ours(const avo_audio *a, const avo_f0_track *f0, int runs) {
    result r = {0};
    avo_error err;
    const int64_t n = a->frames;
    float *y = malloc(sizeof(float) * (size_t)n);
    double times[2][MAX_RUNS];
    for (int th = 1; th <= 2; th++) {
        avo_vocoder_config cfg;
        avo_vocoder_config_default(&cfg, a->sample_rate);
        cfg.threads = th;
        avo_vocoder *v;
        if (avo_vocoder_create(&cfg, &v, &err)) die("vocoder create", &err);
        for (int k = 0; k < runs; k++) {
            avo_voice_params p;
            double t0 = avo_now_ms();
            if (avo_vocoder_analyze(v, a->samples, n, f0, &p, &err)) die("analyze", &err);
            if (avo_vocoder_synthesize(v, &p, y, n, &err)) die("synthesize", &err);
            times[th - 1][k] = avo_now_ms() - t0;
            if (th == 1 && k == 0) {
                avo_voice_params q;
                if (avo_vocoder_analyze(v, y, n, f0, &q, &err)) die("re-analyze", &err);
                if (avo_voice_params_distance(&p, &q, MCD_ORDER, &r.mcd, &r.lsd, NULL, &err)) die("distance", &err);
                r.f0_cents = f0_error_cents(y, n, a->sample_rate, &p, &r.f0_fine);
                avo_voice_params_free(&q);
            }
            avo_voice_params_free(&p);
        }
        avo_vocoder_free(v);
    }
    r.t1_ms = median(times[0], runs);
    r.t2_ms = median(times[1], runs);
    r.measured = 1;
    free(y);
    return r;
}

/* WORLD's envelope/aperiodicity rows as double** views of one block. */
static double **rows_alloc(int64_t frames, int bins) {
    double **rows = malloc(sizeof(double *) * (size_t)frames);
    double *block = calloc((size_t)frames * (size_t)bins, sizeof(double));
    for (int64_t i = 0; i < frames; i++) rows[i] = block + i * bins;
    return rows;
}

static void rows_free(double **rows) {
    if (!rows) return;
    free(rows[0]);
    free(rows);
}

static void world_analyse(const world_api *w, const double *x, int n, int fs, const double *tpos, const double *f0d,
                          int frames, const world_ct_option *co, const world_d4c_option *dopt, double **sp,
                          double **ap) {
    w->cheaptrick(x, n, fs, tpos, f0d, frames, co, sp);
    w->d4c(x, n, fs, tpos, f0d, frames, co->fft_size, dopt, ap);
}

static result run_world(const world_api *w, const avo_audio *a, const avo_voice_params *ours, int runs) {
    result r = {0};
    const int fs = a->sample_rate, n = (int)a->frames, frames = (int)ours->frames;
    world_ct_option co;
    w->init_ct(fs, &co);
    co.f0_floor = 71.0;
    co.fft_size = w->ct_fft(fs, &co);
    world_d4c_option dopt;
    w->init_d4c(&dopt);
    const int bins = co.fft_size / 2 + 1;
    double *x = malloc(sizeof(double) * (size_t)n), *y = malloc(sizeof(double) * (size_t)n);
    double *tpos = malloc(sizeof(double) * (size_t)frames), *f0d = malloc(sizeof(double) * (size_t)frames);
    for (int i = 0; i < n; i++) x[i] = a->samples[i];
    for (int i = 0; i < frames; i++) {
        tpos[i] = i * FRAME_PERIOD;
        f0d[i] = ours->f0_hz[i];
    }
    double **sp = rows_alloc(frames, bins), **ap = rows_alloc(frames, bins);
    double times[MAX_RUNS];
    for (int k = 0; k < runs; k++) {
        double t0 = avo_now_ms();
        world_analyse(w, x, n, fs, tpos, f0d, frames, &co, &dopt, sp, ap);
        w->synthesis(f0d, frames, (const double *const *)sp, (const double *const *)ap, co.fft_size,
                     FRAME_PERIOD * 1000.0, fs, n, y);
        times[k] = avo_now_ms() - t0;
    }
    r.t1_ms = r.t2_ms = median(times, runs);
    /* Round trip with WORLD's own analysis; distances with the same code as ours. */
    double **sp2 = rows_alloc(frames, bins), **ap2 = rows_alloc(frames, bins);
    world_analyse(w, y, n, fs, tpos, f0d, frames, &co, &dopt, sp2, ap2);
    avo_voice_params p, q;
    avo_error err;
    if (avo_voice_params_alloc(&p, fs, co.fft_size, frames, FRAME_PERIOD, &err) ||
        avo_voice_params_alloc(&q, fs, co.fft_size, frames, FRAME_PERIOD, &err))
        die("params", &err);
    for (int i = 0; i < frames; i++) {
        p.f0_hz[i] = q.f0_hz[i] = ours->f0_hz[i];
        for (int k = 0; k < bins; k++) {
            p.envelope[(int64_t)i * bins + k] = (float)sp[i][k];
            q.envelope[(int64_t)i * bins + k] = (float)sp2[i][k];
        }
    }
    if (avo_voice_params_distance(&p, &q, MCD_ORDER, &r.mcd, &r.lsd, NULL, &err)) die("distance", &err);
    float *yf = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) yf[i] = (float)y[i];
    r.f0_cents = f0_error_cents(yf, n, fs, &p, &r.f0_fine);
    r.measured = 1;
    avo_voice_params_free(&p);
    avo_voice_params_free(&q);
    rows_free(sp);
    rows_free(ap);
    rows_free(sp2);
    rows_free(ap2);
    free(x);
    free(y);
    free(yf);
    free(tpos);
    free(f0d);
    return r;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int list_clips(const char *data, char ***out) {
    const char *dirs[] = {"singing", "speech"};
    int count = 0, cap = 128;
    char **names = malloc(sizeof(char *) * (size_t)cap);
    for (int d = 0; d < 2; d++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", data, dirs[d]);
        DIR *dir = opendir(path);
        if (!dir) continue;
        struct dirent *e;
        while ((e = readdir(dir))) {
            size_t len = strlen(e->d_name);
            if (len < 6 || strcmp(e->d_name + len - 5, ".flac")) continue;
            if (count == cap) names = realloc(names, sizeof(char *) * (size_t)(cap *= 2));
            char rel[600];
            snprintf(rel, sizeof rel, "%s/%s", dirs[d], e->d_name);
            names[count++] = strdup(rel);
        }
        closedir(dir);
    }
    qsort(names, (size_t)count, sizeof(char *), cmp_str);
    *out = names;
    return count;
}

static void add_result(cJSON *obj, const char *key, const result *r) {
    cJSON *o = cJSON_AddObjectToObject(obj, key);
    if (!r->measured) {
        cJSON_AddBoolToObject(o, "measured", 0);
        return;
    }
    cJSON_AddNumberToObject(o, "mcd_db", r->mcd);
    cJSON_AddNumberToObject(o, "lsd_db", r->lsd);
    cJSON_AddNumberToObject(o, "f0_rmse_cents", isfinite(r->f0_cents) ? r->f0_cents : -1);
    cJSON_AddNumberToObject(o, "f0_rmse_cents_without_gross", isfinite(r->f0_fine) ? r->f0_fine : -1);
    cJSON_AddNumberToObject(o, "time_1_thread_ms", r->t1_ms);
    cJSON_AddNumberToObject(o, "time_2_threads_ms", r->t2_ms);
}

static void mkdirs_for(const char *path) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
}

int main(int argc, char **argv) {
    const char *out_path = "bench/out/vocoder.json";
    const char *data = getenv("AVO_TEST_DATA");
    if (!data || !*data) data = "../shared/data";
    int runs = 3, limit = 1 << 30;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--limit") && i + 1 < argc) limit = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--out FILE.json] [--runs N] [--limit N] [--data DIR]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 1) runs = 1;
    if (runs > MAX_RUNS) runs = MAX_RUNS;

    world_api world = {0};
    const char *wpath = getenv("AVO_WORLD_LIB");
    int have_world = wpath && *wpath && world_load(&world, wpath);
    if (!have_world) printf("WORLD was not measured (set AVO_WORLD_LIB to a libworld.so to compare)\n");

    char **clips;
    int nclips = list_clips(data, &clips);
    if (nclips == 0) {
        fprintf(stderr, "bench: no clips under %s/singing or %s/speech\n", data, data);
        return 1;
    }
    if (nclips > limit) nclips = limit;

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "benchmark", "vocoder");
    cJSON_AddStringToObject(root, "method",
                            "analysis->synthesis->re-analysis with the same F0 (avo_f0_estimate accurate, 5 ms); "
                            "MCD over c1..c24 (c0 excluded) of all-pass-warped mel cepstra, voiced frames; LSD RMS "
                            "over bins; F0 error = cents RMSE of avo_f0_estimate on the output; time = analysis + "
                            "synthesis, median of runs");
    cJSON_AddNumberToObject(root, "runs", runs);
    cJSON_AddBoolToObject(root, "world_measured", have_world);
    cJSON *arr = cJSON_AddArrayToObject(root, "clips");

    double *col[12];
    for (int c = 0; c < 12; c++) col[c] = malloc(sizeof(double) * (size_t)nclips);
    int nw = 0;
    printf("%-36s %5s %6s | %6s %6s %6s %8s %8s | %6s %6s %6s %8s | %6s %6s\n", "clip", "kHz", "sec", "MCD", "LSD",
           "cents", "1t ms", "2t ms", "W MCD", "W LSD", "W cent", "W ms", "x1t", "x2t");
    for (int c = 0; c < nclips; c++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", data, clips[c]);
        avo_audio raw, a;
        avo_error err;
        if (avo_audio_read(path, &raw, &err)) die(path, &err);
        if (avo_audio_to_mono(&raw, &a, &err)) die(path, &err);
        avo_audio_free(&raw);
        avo_f0_config fc;
        avo_f0_config_default(&fc);
        fc.method = AVO_F0_ACCURATE;
        fc.hop_seconds = FRAME_PERIOD;
        avo_f0_track f0;
        if (avo_f0_estimate(a.samples, a.frames, a.sample_rate, &fc, &f0, &err)) die(path, &err);

        result ours = run_ours(&a, &f0, runs);
        result wr = {0};
        if (have_world) {
            /* WORLD gets exactly the F0 our vocoder analysed with (resampled to its frames). */
            avo_vocoder_config cfg;
            avo_vocoder_config_default(&cfg, a.sample_rate);
            cfg.threads = 1;
            avo_vocoder *v;
            avo_voice_params p;
            if (avo_vocoder_create(&cfg, &v, &err) || avo_vocoder_analyze(v, a.samples, a.frames, &f0, &p, &err))
                die(path, &err);
            wr = run_world(&world, &a, &p, runs);
            avo_voice_params_free(&p);
            avo_vocoder_free(v);
        }
        const double secs = (double)a.frames / a.sample_rate;
        printf("%-36s %5.1f %6.2f | %6.3f %6.3f %6.2f %8.1f %8.1f", clips[c], a.sample_rate / 1000.0, secs, ours.mcd,
               ours.lsd, ours.f0_cents, ours.t1_ms, ours.t2_ms);
        if (wr.measured)
            printf(" | %6.3f %6.3f %6.2f %8.1f | %6.2f %6.2f\n", wr.mcd, wr.lsd, wr.f0_cents, wr.t1_ms,
                   wr.t1_ms / ours.t1_ms, wr.t1_ms / ours.t2_ms);
        else
            printf(" | %6s\n", "-");
        fflush(stdout);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "clip", clips[c]);
        cJSON_AddNumberToObject(o, "sample_rate", a.sample_rate);
        cJSON_AddNumberToObject(o, "seconds", secs);
        add_result(o, "ours", &ours);
        add_result(o, "world", &wr);
        cJSON_AddItemToArray(arr, o);
        col[0][c] = ours.mcd;
        col[1][c] = ours.lsd;
        col[2][c] = isfinite(ours.f0_cents) ? ours.f0_cents : 0;
        col[10][c] = isfinite(ours.f0_fine) ? ours.f0_fine : 0;
        col[3][c] = ours.t1_ms / secs;
        col[4][c] = ours.t2_ms / secs;
        if (wr.measured) {
            col[5][nw] = wr.mcd;
            col[6][nw] = wr.lsd;
            col[7][nw] = isfinite(wr.f0_cents) ? wr.f0_cents : 0;
            col[11][nw] = isfinite(wr.f0_fine) ? wr.f0_fine : 0;
            col[8][nw] = wr.t1_ms / ours.t1_ms;
            col[9][nw] = wr.t1_ms / ours.t2_ms;
            nw++;
        }
        avo_f0_track_free(&f0);
        avo_audio_free(&a);
    }
    double worst_mcd = 0;
    for (int c = 0; c < nclips; c++) worst_mcd = col[0][c] > worst_mcd ? col[0][c] : worst_mcd;
    cJSON *med = cJSON_AddObjectToObject(root, "median");
    cJSON *mo = cJSON_AddObjectToObject(med, "ours");
    cJSON_AddNumberToObject(mo, "mcd_db", median(col[0], nclips));
    cJSON_AddNumberToObject(mo, "max_mcd_db", worst_mcd);
    cJSON_AddNumberToObject(mo, "lsd_db", median(col[1], nclips));
    cJSON_AddNumberToObject(mo, "f0_rmse_cents", median(col[2], nclips));
    cJSON_AddNumberToObject(mo, "f0_rmse_cents_without_gross", median(col[10], nclips));
    cJSON_AddNumberToObject(mo, "ms_per_audio_second_1_thread", median(col[3], nclips));
    cJSON_AddNumberToObject(mo, "ms_per_audio_second_2_threads", median(col[4], nclips));
    printf("\nmedian ours: MCD %.3f dB (max %.3f), LSD %.3f dB, F0 %.2f cents (%.2f without gross), %.1f / %.1f ms per audio second (1/2 "
           "threads)\n",
           median(col[0], nclips), worst_mcd, median(col[1], nclips), median(col[2], nclips), median(col[10], nclips),
           median(col[3], nclips),
           median(col[4], nclips));
    if (nw) {
        cJSON *wo = cJSON_AddObjectToObject(med, "world");
        cJSON_AddNumberToObject(wo, "mcd_db", median(col[5], nw));
        cJSON_AddNumberToObject(wo, "lsd_db", median(col[6], nw));
        cJSON_AddNumberToObject(wo, "f0_rmse_cents", median(col[7], nw));
        cJSON_AddNumberToObject(wo, "f0_rmse_cents_without_gross", median(col[11], nw));
        cJSON_AddNumberToObject(med, "speedup_vs_world_1_thread", median(col[8], nw));
        cJSON_AddNumberToObject(med, "speedup_vs_world_2_threads", median(col[9], nw));
        printf("median WORLD: MCD %.3f dB, LSD %.3f dB, F0 %.2f cents (%.2f without gross); speed-up ours vs WORLD %.2fx (1 thread), "
               "%.2fx (2 threads)\n",
               median(col[5], nw), median(col[6], nw), median(col[7], nw), median(col[11], nw), median(col[8], nw),
               median(col[9], nw));
    }
    mkdirs_for(out_path);
    char *json = cJSON_Print(root);
    FILE *f = fopen(out_path, "w");
    if (!f || fputs(json, f) < 0) {
        fprintf(stderr, "bench: cannot write %s: %s\n", out_path, strerror(errno));
        return 1;
    }
    fclose(f);
    printf("wrote %s\n", out_path);
    free(json);
    cJSON_Delete(root);
    for (int c = 0; c < nclips; c++) free(clips[c]);
    free(clips);
    for (int c = 0; c < 12; c++) free(col[c]);
    return 0;
}
