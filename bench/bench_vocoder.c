/* Vocoder benchmark: analysis -> synthesis round trip on every singing and speech clip of the
 * shared data, against WORLD (CheapTrick + D4C + Synthesis) when its shared library is given.
 *
 * Per clip: F0 from avo_f0_estimate (accurate, 5 ms hop), used by both vocoders. Round trip: analyse,
 * synthesise, re-analyse the output with the same analysis and the same F0, then
 *   MCD  (dB): avo_voice_params_distance, 24 mel-cepstral coefficients c1..c24 (c0 excluded), all-pass
 *        warping alpha = avo_mel_alpha(rate), frames voiced in the F0, mean over frames;
 *   LSD  (dB): RMS over bins of 10 log10(P/P'), mean over the same frames;
 *   F0 error (cents RMSE): avo_f0_estimate (the same accurate method and hop that made the analysis
 *        F0) on the output against the analysis F0, frames voiced in both and 2+ frames from a voicing
 *        edge; also without gross errors (> 50 cents). The output's pulses follow the analysis F0
 *        exactly (see test_vocoder's pulse trains), so this measures the estimator on a signal whose
 *        F0 is known. Control "fixed filter": the same F0 and aperiodicity with one envelope for the
 *        whole clip (the mean log envelope of its voiced frames): the estimator's error without the
 *        waveform changes from period to period that a moving vocal tract brings.
 *   Pulse F0 (cents RMSE, no estimator): the same synthesiser run with a flat envelope (zero where
 *        unvoiced) and zero aperiodicity, so that its output is the bare train of band-limited pulses
 *        it places (pulse times depend on F0 alone, in ours as in WORLD); each pulse's sub-sample
 *        position is read from its two largest samples (y[i+1]/y[i] = d/(1-d) for an impulse at
 *        i + d), and 1/period is compared with the mean of the analysis F0 (linear between frames, as
 *        both synthesisers interpolate it) over that period, for periods 2+ frames from voicing edges
 *        as above. This is the F0 the synthesis actually produces; what remains (under a cent) is the
 *        reading of the positions, which neighbouring pulses' tails disturb at high F0. Estimator
 *        floor: the F0 error of avo_f0_estimate on that bare pulse train, a signal whose F0 is exactly
 *        the analysis F0: no vocoder can score better than this in the estimator-based figure.
 * WORLD's figures use WORLD's own analysis for both passes. Time: analysis + synthesis (F0 excluded),
 * median of --runs runs, wall clock and process CPU time (user + system of all threads: on a shared
 * machine wall time depends on the load, CPU time much less); ours with 1 and 2 threads, WORLD
 * single-threaded.
 *
 * Converter configurations: a 30 s vocal made of the singing clips in name order, each resampled to
 * the rate (libsoxr), joined end to end, analysed and synthesised at 24 kHz / 10 ms (fast preset),
 * 32 kHz / 5 ms (balanced) and 48 kHz / 5 ms (quality).
 *
 * WORLD is loaded at run time: AVO_WORLD_LIB=/path/to/libworld.so (built outside this repository).
 *
 * usage: bench_vocoder [--out FILE.json] [--runs N] [--limit N] [--only TEXT] [--data DIR] [--no-clips] [--no-configs]
 *   --only keeps the clips whose path contains TEXT (for looking at a few). */
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
#include <time.h>

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
    double mcd, lsd, f0_cents, f0_fine, f0_fixed, f0_pulse, f0_floor, t1_ms, t2_ms, c1_ms, c2_ms;
    int measured;
} result;

/* CPU time of the whole process (all threads), ms. */
static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

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

/* Analysis F0 at t seconds, linear between voiced frames; 0 where either neighbour is unvoiced. */
static double ref_f0_at(const avo_voice_params *p, double t) {
    const double pos = t / p->frame_period_seconds;
    const int64_t i = (int64_t)floor(pos);
    if (i < 0 || i + 1 >= p->frames) return 0;
    const double a = p->f0_hz[i], b = p->f0_hz[i + 1];
    return a > 0 && b > 0 ? a + (b - a) * (pos - (double)i) : 0;
}

/* Whether the frames around t seconds are voiced 2+ frames either side (the estimator-based figure's
 * rule; at voicing edges each synthesiser bridges to its unvoiced pulse rate in its own way). */
static int away_from_edges(const avo_voice_params *p, double t) {
    const int64_t i = (int64_t)floor(t / p->frame_period_seconds);
    for (int64_t j = i - 2; j <= i + 3; j++)
        if (j < 0 || j >= p->frames || !(p->f0_hz[j] > 0)) return 0;
    return 1;
}

/* Cents RMSE of the F0 that a bare pulse train y carries (1 / pulse period) against the mean
 * analysis F0 over each period (see the file comment). Pulses are the positive local maxima that
 * are the largest sample within 0.4 of the expected period either side. */
static double pulse_f0_error(const float *y, int64_t n, int fs, const avo_voice_params *ref) {
    double prev = -1, s = 0;
    int64_t used = 0;
    for (int64_t i = 1; i + 1 < n; i++) {
        const double f = ref_f0_at(ref, (double)i / fs);
        if (!(f > 0) || !(y[i] > 0) || y[i] < y[i - 1] || y[i] <= y[i + 1]) continue;
        const int64_t reach = (int64_t)(0.4 * fs / f);
        int is_max = 1;
        for (int64_t j = i - reach; j <= i + reach && is_max; j++)
            if (j >= 0 && j < n && j != i && y[j] > y[i]) is_max = 0;
        if (!is_max) continue;
        /* sub-sample position from the larger neighbour: an impulse at i + d gives y[i+1]/y[i] = d/(1-d) */
        const double pos = y[i + 1] >= y[i - 1] ? i + y[i + 1] / (y[i] + y[i + 1]) : i - y[i - 1] / (y[i] + y[i - 1]);
        if (prev >= 0) {
            const double period = pos - prev;
            double mean = 0;
            int ok = 1;
            for (int k = 0; k < 32 && ok; k++) {
                const double tk = (prev + (k + 0.5) / 32.0 * period) / fs, fk = ref_f0_at(ref, tk);
                ok = fk > 0 && away_from_edges(ref, tk);
                mean += fk / 32.0;
            }
            if (ok && period > 0.6 * fs / mean && period < 1.5 * fs / mean) {
                const double c = 1200.0 * log2(fs / period / mean);
                s += c * c;
                used++;
            }
        }
        prev = pos;
    }
    return used ? sqrt(s / (double)used) : NAN;
}

/* Every frame's envelope replaced by the mean log envelope of the voiced frames. */
static void fix_envelope(avo_voice_params *p) {
    const int bins = p->bins;
    double *acc = calloc((size_t)bins, sizeof(double));
    int64_t used = 0;
    for (int64_t t = 0; t < p->frames; t++) {
        if (!(p->f0_hz[t] > 0)) continue;
        for (int k = 0; k < bins; k++) acc[k] += log(p->envelope[t * bins + k] + 1e-30);
        used++;
    }
    if (used)
        for (int64_t t = 0; t < p->frames; t++)
            for (int k = 0; k < bins; k++) p->envelope[t * bins + k] = (float)exp(acc[k] / (double)used);
    free(acc);
}

/* Round trip, F0 error and times of our vocoder at one configuration. mcd/f0 only when measure. */
static result run_ours_at(const avo_audio *a, const avo_f0_track *f0, double frame_period, int runs, int measure) {
    result r = {0};
    avo_error err;
    const int64_t n = a->frames;
    float *y = malloc(sizeof(float) * (size_t)n);
    double times[2][MAX_RUNS], cpu[2][MAX_RUNS];
    for (int th = 1; th <= 2; th++) {
        avo_vocoder_config cfg;
        avo_vocoder_config_default(&cfg, a->sample_rate);
        cfg.frame_period_seconds = frame_period;
        cfg.threads = th;
        avo_vocoder *v;
        if (avo_vocoder_create(&cfg, &v, &err)) die("vocoder create", &err);
        for (int k = 0; k < runs; k++) {
            avo_voice_params p;
            double t0 = avo_now_ms(), c0 = cpu_ms();
            if (avo_vocoder_analyze(v, a->samples, n, f0, &p, &err)) die("analyze", &err);
            if (avo_vocoder_synthesize(v, &p, y, n, &err)) die("synthesize", &err);
            times[th - 1][k] = avo_now_ms() - t0;
            cpu[th - 1][k] = cpu_ms() - c0;
            if (measure && th == 1 && k == 0) {
                avo_voice_params q;
                if (avo_vocoder_analyze(v, y, n, f0, &q, &err)) die("re-analyze", &err);
                if (avo_voice_params_distance(&p, &q, MCD_ORDER, &r.mcd, &r.lsd, NULL, &err)) die("distance", &err);
                r.f0_cents = f0_error_cents(y, n, a->sample_rate, &p, &r.f0_fine);
                avo_voice_params_free(&q);
                double unused;
                fix_envelope(&p);
                if (avo_vocoder_synthesize(v, &p, y, n, &err)) die("synthesize", &err);
                r.f0_fixed = f0_error_cents(y, n, a->sample_rate, &p, &unused);
                /* Bare pulse train: flat envelope, no aperiodicity, silence where unvoiced (whose noise
                 * would otherwise fill the gaps at the pulses' level). */
                for (int64_t i = 0; i < p.frames * p.bins; i++) {
                    p.envelope[i] = p.f0_hz[i / p.bins] > 0 ? 1e-4f : 1e-20f;
                    p.aperiodicity[i] = 0.0f;
                }
                if (avo_vocoder_synthesize(v, &p, y, n, &err)) die("synthesize", &err);
                r.f0_pulse = pulse_f0_error(y, n, a->sample_rate, &p);
                r.f0_floor = f0_error_cents(y, n, a->sample_rate, &p, &unused);
            }
            avo_voice_params_free(&p);
        }
        avo_vocoder_free(v);
    }
    r.t1_ms = median(times[0], runs);
    r.t2_ms = median(times[1], runs);
    r.c1_ms = median(cpu[0], runs);
    r.c2_ms = median(cpu[1], runs);
    r.measured = 1;
    free(y);
    return r;
}

static result run_ours(const avo_audio *a, const avo_f0_track *f0, int runs) {
    return run_ours_at(a, f0, FRAME_PERIOD, runs, 1);
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

static result run_world(const world_api *w, const avo_audio *a, const avo_voice_params *ours, int runs, int measure) {
    result r = {0};
    const double FRAME = ours->frame_period_seconds;
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
        tpos[i] = i * FRAME;
        f0d[i] = ours->f0_hz[i];
    }
    double **sp = rows_alloc(frames, bins), **ap = rows_alloc(frames, bins);
    double times[MAX_RUNS], cpu[MAX_RUNS];
    for (int k = 0; k < runs; k++) {
        double t0 = avo_now_ms(), c0 = cpu_ms();
        world_analyse(w, x, n, fs, tpos, f0d, frames, &co, &dopt, sp, ap);
        w->synthesis(f0d, frames, (const double *const *)sp, (const double *const *)ap, co.fft_size,
                     FRAME * 1000.0, fs, n, y);
        times[k] = avo_now_ms() - t0;
        cpu[k] = cpu_ms() - c0;
    }
    r.t1_ms = r.t2_ms = median(times, runs);
    r.c1_ms = r.c2_ms = median(cpu, runs);
    r.measured = 1;
    if (!measure) {
        rows_free(sp);
        rows_free(ap);
        free(x);
        free(y);
        free(tpos);
        free(f0d);
        return r;
    }
    /* Round trip with WORLD's own analysis; distances with the same code as ours. */
    double **sp2 = rows_alloc(frames, bins), **ap2 = rows_alloc(frames, bins);
    world_analyse(w, y, n, fs, tpos, f0d, frames, &co, &dopt, sp2, ap2);
    avo_voice_params p, q;
    avo_error err;
    if (avo_voice_params_alloc(&p, fs, co.fft_size, frames, FRAME, &err) ||
        avo_voice_params_alloc(&q, fs, co.fft_size, frames, FRAME, &err))
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
    /* WORLD's bare pulse train: flat envelope, zero aperiodicity. */
    for (int i = 0; i < frames; i++)
        for (int k = 0; k < bins; k++) {
            sp2[i][k] = f0d[i] > 0 ? 1e-4 : 1e-20;
            ap2[i][k] = 0.0;
        }
    w->synthesis(f0d, frames, (const double *const *)sp2, (const double *const *)ap2, co.fft_size, FRAME * 1000.0, fs,
                 n, y);
    for (int i = 0; i < n; i++) yf[i] = (float)y[i];
    double unused;
    r.f0_pulse = pulse_f0_error(yf, n, fs, &p);
    r.f0_floor = f0_error_cents(yf, n, fs, &p, &unused);
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
    cJSON_AddNumberToObject(o, "f0_rmse_cents_fixed_filter", isfinite(r->f0_fixed) ? r->f0_fixed : -1);
    cJSON_AddNumberToObject(o, "f0_pulse_rmse_cents", isfinite(r->f0_pulse) ? r->f0_pulse : -1);
    cJSON_AddNumberToObject(o, "f0_rmse_cents_estimator_floor", isfinite(r->f0_floor) ? r->f0_floor : -1);
    cJSON_AddNumberToObject(o, "time_1_thread_ms", r->t1_ms);
    cJSON_AddNumberToObject(o, "time_2_threads_ms", r->t2_ms);
    cJSON_AddNumberToObject(o, "cpu_1_thread_ms", r->c1_ms);
    cJSON_AddNumberToObject(o, "cpu_2_threads_ms", r->c2_ms);
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

static avo_f0_track f0_of(const avo_audio *a, double hop) {
    avo_f0_config fc;
    avo_f0_config_default(&fc);
    fc.method = AVO_F0_ACCURATE;
    fc.hop_seconds = hop;
    avo_f0_track f0;
    avo_error err;
    if (avo_f0_estimate(a->samples, a->frames, a->sample_rate, &fc, &f0, &err)) die("F0", &err);
    return f0;
}

/* Our analysis of a (1 thread) as the F0 both vocoders use (resampled to the frames). */
static avo_voice_params ours_params(const avo_audio *a, const avo_f0_track *f0, double frame_period) {
    avo_vocoder_config cfg;
    avo_vocoder_config_default(&cfg, a->sample_rate);
    cfg.frame_period_seconds = frame_period;
    cfg.threads = 1;
    avo_vocoder *v;
    avo_voice_params p;
    avo_error err;
    if (avo_vocoder_create(&cfg, &v, &err) || avo_vocoder_analyze(v, a->samples, a->frames, f0, &p, &err))
        die("analysis", &err);
    avo_vocoder_free(v);
    return p;
}

/* 30 s of singing at `rate`: the singing clips in name order, resampled and joined. */
static avo_audio long_vocal(const char *data, char **clips, int nclips, int rate, double seconds) {
    avo_audio out = {0};
    avo_error err;
    const int64_t want = (int64_t)(seconds * rate);
    out.sample_rate = rate;
    out.channels = 1;
    out.samples = calloc((size_t)want, sizeof(float));
    int64_t have = 0;
    for (int pass = 0; have < want && pass < 8; pass++)
        for (int c = 0; c < nclips && have < want; c++) {
            if (strncmp(clips[c], "singing/", 8)) continue;
            char path[1200];
            snprintf(path, sizeof path, "%s/%s", data, clips[c]);
            avo_audio raw, m;
            if (avo_audio_read(path, &raw, &err) || avo_audio_to_mono(&raw, &m, &err)) die(path, &err);
            int64_t len = (int64_t)((double)m.frames * rate / m.sample_rate);
            if (len > want - have) len = want - have;
            if (avo_resample_buffer(m.samples, m.frames, m.sample_rate, rate, out.samples + have, len, &err))
                die(path, &err);
            have += len;
            avo_audio_free(&raw);
            avo_audio_free(&m);
        }
    out.frames = have;
    return out;
}

enum { COLS = 20 };

int main(int argc, char **argv) {
    const char *out_path = "bench/out/vocoder.json";
    const char *data = getenv("AVO_TEST_DATA");
    if (!data || !*data) data = "../shared/data";
    int runs = 3, limit = 1 << 30, do_clips = 1, do_configs = 1;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--limit") && i + 1 < argc) limit = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--no-clips")) do_clips = 0;
        else if (!strcmp(argv[i], "--no-configs")) do_configs = 0;
        else {
            fprintf(stderr, "usage: %s [--out FILE.json] [--runs N] [--limit N] [--only TEXT] [--data DIR] [--no-clips] "
                            "[--no-configs]\n",
                    argv[0]);
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
    int nclips_all = list_clips(data, &clips);
    if (nclips_all == 0) {
        fprintf(stderr, "bench: no clips under %s/singing or %s/speech\n", data, data);
        return 1;
    }
    char **sel = malloc(sizeof(char *) * (size_t)nclips_all); /* the clips measured one by one */
    int nclips = 0;
    for (int c = 0; c < nclips_all && nclips < limit; c++)
        if (!only || strstr(clips[c], only)) sel[nclips++] = clips[c];
    if (!do_clips) nclips = 0;

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "benchmark", "vocoder");
    cJSON_AddStringToObject(root, "method",
                            "analysis->synthesis->re-analysis with the same F0 (avo_f0_estimate accurate, 5 ms); "
                            "MCD over c1..c24 (c0 excluded) of all-pass-warped mel cepstra, voiced frames; LSD RMS "
                            "over bins; F0 error = cents RMSE of avo_f0_estimate (same method and hop) on the output "
                            "against the analysis F0, frames 2+ from voicing edges; fixed filter = the same with one "
                            "envelope for the whole clip; pulse F0 = 1/period of the pulses that the synthesiser places "
                            "(read from its output with a flat envelope and no aperiodicity) against the mean analysis F0 "
                            "over each period, no estimator involved; estimator floor = the F0 error of the estimator on "
                            "that bare pulse train; time = analysis + synthesis (F0 excluded), median of runs, "
                            "wall clock and process CPU time (all threads)");
    cJSON_AddNumberToObject(root, "runs", runs);
    cJSON_AddBoolToObject(root, "world_measured", have_world);
    cJSON *arr = cJSON_AddArrayToObject(root, "clips");

    double *col[COLS];
    for (int c = 0; c < COLS; c++) col[c] = malloc(sizeof(double) * (size_t)(nclips > 0 ? nclips : 1));
    int nw = 0;
    if (nclips)
        printf("%-36s %5s %6s | %6s %6s %6s %6s %6s %6s %7s %7s %7s | %6s %6s %6s %6s %6s %7s %7s | %5s %5s %5s\n", "clip",
               "kHz", "sec", "MCD", "LSD", "cents", "fixed", "floor", "pulse", "1t ms", "2t ms", "1t cpu", "W MCD", "W LSD",
               "W cent", "Wfloor", "Wpulse", "W ms", "W cpu", "x1t", "x2t", "xcpu");
    for (int c = 0; c < nclips; c++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", data, sel[c]);
        avo_audio raw, a;
        avo_error err;
        if (avo_audio_read(path, &raw, &err)) die(path, &err);
        if (avo_audio_to_mono(&raw, &a, &err)) die(path, &err);
        avo_audio_free(&raw);
        avo_f0_track f0 = f0_of(&a, FRAME_PERIOD);

        result ours = run_ours(&a, &f0, runs);
        result wr = {0};
        if (have_world) {
            /* WORLD gets exactly the F0 our vocoder analysed with (resampled to its frames). */
            avo_voice_params p = ours_params(&a, &f0, FRAME_PERIOD);
            wr = run_world(&world, &a, &p, runs, 1);
            avo_voice_params_free(&p);
        }
        const double secs = (double)a.frames / a.sample_rate;
        printf("%-36s %5.1f %6.2f | %6.3f %6.3f %6.2f %6.2f %6.2f %6.3f %7.1f %7.1f %7.1f", sel[c], a.sample_rate / 1000.0,
               secs, ours.mcd, ours.lsd, ours.f0_cents, ours.f0_fixed, ours.f0_floor, ours.f0_pulse, ours.t1_ms, ours.t2_ms,
               ours.c1_ms);
        if (wr.measured)
            printf(" | %6.3f %6.3f %6.2f %6.2f %6.3f %7.1f %7.1f | %5.2f %5.2f %5.2f\n", wr.mcd, wr.lsd, wr.f0_cents,
                   wr.f0_floor, wr.f0_pulse, wr.t1_ms, wr.c1_ms, wr.t1_ms / ours.t1_ms, wr.t1_ms / ours.t2_ms,
                   wr.c1_ms / ours.c1_ms);
        else
            printf(" | %6s\n", "-");
        fflush(stdout);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "clip", sel[c]);
        cJSON_AddNumberToObject(o, "sample_rate", a.sample_rate);
        cJSON_AddNumberToObject(o, "seconds", secs);
        add_result(o, "ours", &ours);
        add_result(o, "world", &wr);
        cJSON_AddItemToArray(arr, o);
        col[0][c] = ours.mcd;
        col[1][c] = ours.lsd;
        col[2][c] = isfinite(ours.f0_cents) ? ours.f0_cents : 0;
        col[10][c] = isfinite(ours.f0_fine) ? ours.f0_fine : 0;
        col[12][c] = isfinite(ours.f0_fixed) ? ours.f0_fixed : 0;
        col[16][c] = isfinite(ours.f0_pulse) ? ours.f0_pulse : 0;
        col[17][c] = isfinite(ours.f0_floor) ? ours.f0_floor : 0;
        col[3][c] = ours.t1_ms / secs;
        col[4][c] = ours.t2_ms / secs;
        col[13][c] = ours.c1_ms / secs;
        col[14][c] = ours.c2_ms / secs;
        if (wr.measured) {
            col[5][nw] = wr.mcd;
            col[6][nw] = wr.lsd;
            col[7][nw] = isfinite(wr.f0_cents) ? wr.f0_cents : 0;
            col[11][nw] = isfinite(wr.f0_fine) ? wr.f0_fine : 0;
            col[8][nw] = wr.t1_ms / ours.t1_ms;
            col[9][nw] = wr.t1_ms / ours.t2_ms;
            col[15][nw] = wr.c1_ms / ours.c1_ms;
            col[18][nw] = isfinite(wr.f0_pulse) ? wr.f0_pulse : 0;
            col[19][nw] = isfinite(wr.f0_floor) ? wr.f0_floor : 0;
            nw++;
        }
        avo_f0_track_free(&f0);
        avo_audio_free(&a);
    }
    if (nclips) {
        double worst_mcd = 0;
        for (int c = 0; c < nclips; c++) worst_mcd = col[0][c] > worst_mcd ? col[0][c] : worst_mcd;
        cJSON *med = cJSON_AddObjectToObject(root, "median");
        cJSON *mo = cJSON_AddObjectToObject(med, "ours");
        cJSON_AddNumberToObject(mo, "mcd_db", median(col[0], nclips));
        cJSON_AddNumberToObject(mo, "max_mcd_db", worst_mcd);
        cJSON_AddNumberToObject(mo, "lsd_db", median(col[1], nclips));
        cJSON_AddNumberToObject(mo, "f0_rmse_cents", median(col[2], nclips));
        cJSON_AddNumberToObject(mo, "f0_rmse_cents_without_gross", median(col[10], nclips));
        cJSON_AddNumberToObject(mo, "f0_rmse_cents_fixed_filter", median(col[12], nclips));
        cJSON_AddNumberToObject(mo, "f0_pulse_rmse_cents", median(col[16], nclips));
        cJSON_AddNumberToObject(mo, "f0_rmse_cents_estimator_floor", median(col[17], nclips));
        cJSON_AddNumberToObject(mo, "ms_per_audio_second_1_thread", median(col[3], nclips));
        cJSON_AddNumberToObject(mo, "ms_per_audio_second_2_threads", median(col[4], nclips));
        cJSON_AddNumberToObject(mo, "cpu_ms_per_audio_second_1_thread", median(col[13], nclips));
        cJSON_AddNumberToObject(mo, "cpu_ms_per_audio_second_2_threads", median(col[14], nclips));
        printf("\nmedian ours: MCD %.3f dB (max %.3f), LSD %.3f dB, F0 %.2f cents (%.2f without gross, %.2f fixed filter), "
               "%.1f / %.1f ms per audio second (1/2 threads), CPU %.1f / %.1f ms per audio second\n",
               median(col[0], nclips), worst_mcd, median(col[1], nclips), median(col[2], nclips), median(col[10], nclips),
               median(col[12], nclips), median(col[3], nclips), median(col[4], nclips), median(col[13], nclips),
               median(col[14], nclips));
        printf("median ours: pulse F0 (no estimator) %.3f cents; estimator floor (its error on the bare pulse train) "
               "%.2f cents\n",
               median(col[16], nclips), median(col[17], nclips));
        if (nw) {
            cJSON *wo = cJSON_AddObjectToObject(med, "world");
            cJSON_AddNumberToObject(wo, "mcd_db", median(col[5], nw));
            cJSON_AddNumberToObject(wo, "lsd_db", median(col[6], nw));
            cJSON_AddNumberToObject(wo, "f0_rmse_cents", median(col[7], nw));
            cJSON_AddNumberToObject(wo, "f0_rmse_cents_without_gross", median(col[11], nw));
            cJSON_AddNumberToObject(wo, "f0_pulse_rmse_cents", median(col[18], nw));
            cJSON_AddNumberToObject(wo, "f0_rmse_cents_estimator_floor", median(col[19], nw));
            cJSON_AddNumberToObject(med, "speedup_vs_world_1_thread", median(col[8], nw));
            cJSON_AddNumberToObject(med, "speedup_vs_world_2_threads", median(col[9], nw));
            cJSON_AddNumberToObject(med, "speedup_vs_world_cpu_time_1_thread", median(col[15], nw));
            printf("median WORLD: MCD %.3f dB, LSD %.3f dB, F0 %.2f cents (%.2f without gross); speed-up ours vs WORLD "
                   "%.2fx (1 thread), %.2fx (2 threads), %.2fx (CPU time, 1 thread)\n",
                   median(col[5], nw), median(col[6], nw), median(col[7], nw), median(col[11], nw), median(col[8], nw),
                   median(col[9], nw), median(col[15], nw));
            printf("median WORLD: pulse F0 (no estimator) %.3f cents; estimator floor %.2f cents\n", median(col[18], nw),
                   median(col[19], nw));
        }
    }

    if (do_configs) {
        static const struct {
            const char *preset;
            int rate;
            double frame;
        } configs[] = {{"fast", 24000, 0.010}, {"balanced", 32000, 0.005}, {"quality", 48000, 0.005}};
        cJSON *carr = cJSON_AddArrayToObject(root, "converter_configurations");
        printf("\n30 s vocal (singing clips joined), analysis + synthesis, median of %d runs\n", runs);
        printf("%-9s %6s %6s | %6s | %8s %8s %8s %8s | %8s %8s | %5s %5s\n", "preset", "kHz", "frame", "MCD", "1t ms",
               "2t ms", "1t cpu", "2t cpu", "W ms", "W cpu", "x1t", "x2t");
        for (int k = 0; k < 3; k++) {
            avo_audio a = long_vocal(data, clips, nclips_all, configs[k].rate, 30.0);
            avo_f0_track f0 = f0_of(&a, configs[k].frame);
            result ours = run_ours_at(&a, &f0, configs[k].frame, runs, 0);
            /* MCD of the round trip at this configuration (1 thread, once). */
            avo_voice_params p = ours_params(&a, &f0, configs[k].frame), q;
            avo_vocoder_config cfg;
            avo_vocoder_config_default(&cfg, a.sample_rate);
            cfg.frame_period_seconds = configs[k].frame;
            cfg.threads = 1;
            avo_vocoder *v;
            avo_error err;
            float *y = malloc(sizeof(float) * (size_t)a.frames);
            if (avo_vocoder_create(&cfg, &v, &err) || avo_vocoder_synthesize(v, &p, y, a.frames, &err) ||
                avo_vocoder_analyze(v, y, a.frames, &f0, &q, &err) ||
                avo_voice_params_distance(&p, &q, MCD_ORDER, &ours.mcd, &ours.lsd, NULL, &err))
                die("configuration round trip", &err);
            result wr = {0};
            if (have_world) wr = run_world(&world, &a, &p, runs, 0);
            printf("%-9s %6.1f %6.3f | %6.3f | %8.1f %8.1f %8.1f %8.1f", configs[k].preset, configs[k].rate / 1000.0,
                   configs[k].frame, ours.mcd, ours.t1_ms, ours.t2_ms, ours.c1_ms, ours.c2_ms);
            if (wr.measured)
                printf(" | %8.1f %8.1f | %5.2f %5.2f\n", wr.t1_ms, wr.c1_ms, wr.t1_ms / ours.t1_ms, wr.t1_ms / ours.t2_ms);
            else
                printf(" | %8s\n", "-");
            fflush(stdout);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "preset", configs[k].preset);
            cJSON_AddNumberToObject(o, "sample_rate", configs[k].rate);
            cJSON_AddNumberToObject(o, "frame_period_seconds", configs[k].frame);
            cJSON_AddNumberToObject(o, "seconds", (double)a.frames / a.sample_rate);
            cJSON_AddNumberToObject(o, "mcd_db", ours.mcd);
            cJSON_AddNumberToObject(o, "time_1_thread_ms", ours.t1_ms);
            cJSON_AddNumberToObject(o, "time_2_threads_ms", ours.t2_ms);
            cJSON_AddNumberToObject(o, "cpu_1_thread_ms", ours.c1_ms);
            cJSON_AddNumberToObject(o, "cpu_2_threads_ms", ours.c2_ms);
            if (wr.measured) {
                cJSON_AddNumberToObject(o, "world_time_ms", wr.t1_ms);
                cJSON_AddNumberToObject(o, "world_cpu_ms", wr.c1_ms);
            }
            cJSON_AddItemToArray(carr, o);
            avo_voice_params_free(&p);
            avo_voice_params_free(&q);
            avo_vocoder_free(v);
            free(y);
            avo_f0_track_free(&f0);
            avo_audio_free(&a);
        }
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
    for (int c = 0; c < nclips_all; c++) free(clips[c]);
    free(clips);
    free(sel);
    for (int c = 0; c < COLS; c++) free(col[c]);
    return 0;
}
