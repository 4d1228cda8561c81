/* The neural models on the CUDA back end (issue 8): parity with the CPU back end and speed on one GPU.
 *
 * Parity (--parity-seconds of the vocal, default 4): each model on the CPU back end and on CUDA in FP32
 * and FP16 mode with the same inputs, as relative error max|gpu - cpu| / max|cpu|: HuBERT layer-12
 * features, RMVPE salience (the network on the host's log-mel) and F0 (cents on frames voiced in
 * both, and voicing disagreements), the RVC synthesizer's audio with its two noise draws passed in,
 * and the whole conversion stage (avo_converter_run, the same seed on both back ends).
 *
 * Speed (--seconds of the vocal, default 30): each component alone (HuBERT features including their
 * copy to the host, RMVPE F0 including the host's mel and decoding, RVC infer with its draws given)
 * and the whole conversion stage (avo_converter_create_neural with device "cuda", then
 * avo_converter_run on the 44.1 kHz vocal with an F0 track given), FP32 and FP16, medians of
 * --repeats runs after a warm-up; then one profiled run of each component (device time per op and
 * per op shape, cuda_profile.h). FP16 reaches the converter through AVO_CUDA_PRECISION=fp16 (the
 * converter takes no precision yet).
 *
 * INT8 content encoder: HuBERT calibrated on the speed audio (on the GPU in FP32: histograms, frame-error
 * pass and selection as autovoice calibrate), the tensors the CUDA back end runs INT8 (linears, 1x1
 * convolutions) handed to it, then timed like FP16, with its per-frame cosine against FP32 and the
 * INT8 GEMMs that ran (counted in a run with CUDA Graphs off: a replay issues no ops).
 *
 * A/B runs, interleaved in this process: HuBERT FP16 with CUDA Graphs (engine_cuda.h) against a second
 * back end without; RMVPE FP16 with each of its new kernels switched off in turn (direct 3x3 conv2d,
 * GRU cluster); the RVC synthesizer FP16 with its fused convolutions (conv1d_fused composed as three
 * passes) and its fused relative attention switched off in turn (avo_backend_cuda_set_switch).
 *
 * Models: the random-weight checkpoints of the real sizes in --models (make_random_models.py writes
 * hubert_base.pt, rmvpe.pt, rvc_v2_40k.pth). The vocal: --wav (any rate, mixed to mono, resampled to
 * 16 kHz, looped to length).
 *
 * usage: bench_neural_cuda --models DIR --wav FILE [--seconds S] [--parity-seconds S] [--repeats N]
 *                          [--threads N] [--no-parity] [--no-speed] [--out PATH]
 * Exit status 1 if a parity bound is missed (FP32 1e-4, FP16 1e-2; F0 within 5 cents where both
 * are voiced) or anything fails. */
#include "autovoice/calibrate.h"
#include "autovoice/convert.h"
#include "autovoice/engine_cuda.h"
#include "autovoice/models.h"
#include "bench_common.h"
#include "convert/converter_internal.h"
#include "engine/cuda/cuda_profile.h"
#include "models/rmvpe_internal.h"
#include "models/vits_internal.h"

#include <math.h>
#include <stdarg.h>
#include <unistd.h>

#define TOL_FP32 1e-4
#define TOL_FP16 1e-2
#define TOL_CENTS 5.0

typedef struct args {
    const char *models, *wav, *out;
    double seconds, parity_seconds;
    int repeats, threads, parity, speed;
} args;

static void parse(int argc, char **argv, args *a) {
    memset(a, 0, sizeof *a);
    a->models = "/tmp/autovoice-neural-models";
    a->out = "bench/out/neural_cuda.json";
    a->seconds = 30;
    a->parity_seconds = 4;
    a->repeats = 5;
    a->threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    a->parity = a->speed = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--models") && i + 1 < argc) a->models = argv[++i];
        else if (!strcmp(argv[i], "--wav") && i + 1 < argc) a->wav = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) a->out = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) a->seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--parity-seconds") && i + 1 < argc) a->parity_seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) a->repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) a->threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-parity")) a->parity = 0;
        else if (!strcmp(argv[i], "--no-speed")) a->speed = 0;
        else {
            fprintf(stderr, "usage: bench_neural_cuda --models DIR --wav FILE [--seconds S] [--parity-seconds S] "
                            "[--repeats N] [--threads N] [--no-parity] [--no-speed] [--out PATH]\n");
            exit(2);
        }
    }
    if (a->repeats < 1) a->repeats = 1;
    if (a->repeats > 60) a->repeats = 60;
    if (a->threads < 1) a->threads = 1;
}

static void check(avo_status st, const avo_error *err) {
    if (st) bench_die(err);
}

/* ---- JSON text ------------------------------------------------------------------------------------ */

typedef struct jbuf {
    char *s;
    size_t len, cap;
} jbuf;

static void jcat(jbuf *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jcat(jbuf *j, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(j->s ? j->s + j->len : NULL, j->s ? j->cap - j->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (j->s && j->len + (size_t)n < j->cap) {
            j->len += (size_t)n;
            return;
        }
        size_t cap = (j->cap ? j->cap * 2 : 1 << 16) + (size_t)n;
        char *p = realloc(j->s, cap);
        if (!p) exit(1);
        j->s = p;
        j->cap = cap;
    }
}

/* ---- helpers ---------------------------------------------------------------------------------------- */

static double rel_err(const float *a, const float *ref, int64_t n) {
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]), r = fabs((double)ref[i]);
        if (!(d <= num)) num = d; /* NaN wins */
        if (r > den) den = r;
    }
    return den > 0 ? num / den : num;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double rng_u01(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return ((rng_state >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}
static void normals(float *v, int64_t n) {
    for (int64_t i = 0; i < n; i++) v[i] = (float)(sqrt(-2.0 * log(rng_u01())) * cos(2.0 * M_PI * rng_u01()));
}

/* Runs body repeats + 1 times, the first as warm-up; result = median in ms. */
#define TIME_MS(result, repeats, body)                  \
    do {                                                \
        double t_[64];                                  \
        for (int r_ = 0; r_ <= (repeats); r_++) {       \
            double t0_ = avo_now_ms();                  \
            body;                                       \
            t_[r_] = avo_now_ms() - t0_;                \
        }                                               \
        result = bench_median(t_ + 1, (repeats));       \
    } while (0)

static void set_prec(avo_backend *be, int fp16) {
    avo_error err;
    check(avo_backend_cuda_set_precision(be, fp16 ? AVO_CUDA_FP16 : AVO_CUDA_FP32, &err), &err);
}

static int64_t half_gemms(avo_backend *be) {
    int64_t f32 = 0, f16 = 0;
    avo_error err;
    check(avo_backend_cuda_gemm_counts(be, &f32, &f16, &err), &err);
    return f16;
}

/* A sung F0 contour (as bench_neural), voiced throughout, and its coarse pitch. */
static void contour(int64_t frames, float *f0, int32_t *coarse) {
    for (int64_t i = 0; i < frames; i++) f0[i] = (float)(220.0 * pow(2.0, 3.0 * sin(2 * M_PI * 0.3 * i / 100.0) / 12.0));
    avo_rvc_pitch_coarse(f0, frames, coarse);
}

/* Features [cf, 768] -> phone [2 cf, 768] (RVC's x2 repeat). */
static float *repeat2(const float *feat, int64_t cf, int dim) {
    float *p = malloc(sizeof(float) * (size_t)(2 * cf * dim));
    for (int64_t t = 0; t < cf; t++) {
        memcpy(p + 2 * t * dim, feat + t * dim, sizeof(float) * (size_t)dim);
        memcpy(p + (2 * t + 1) * dim, feat + t * dim, sizeof(float) * (size_t)dim);
    }
    return p;
}

/* The synthesizer's inputs for features [cf, dim] of n samples at 16 kHz: the x2-repeated features, the
 * sung contour with its coarse pitch, and fixed noise draws (prior [192, T], source [T * hop]). */
typedef struct rvc_inputs {
    int64_t T;
    float *phone, *f0, *zn, *sn;
    int32_t *coarse;
} rvc_inputs;

static rvc_inputs rvc_inputs_make(const float *feat, int64_t cf, int64_t dim, int64_t n, int hop) {
    rvc_inputs r;
    r.T = n / 160 < 2 * cf ? n / 160 : 2 * cf;
    r.phone = repeat2(feat, cf, (int)dim);
    r.f0 = malloc(sizeof(float) * (size_t)r.T);
    r.coarse = malloc(sizeof(int32_t) * (size_t)r.T);
    contour(r.T, r.f0, r.coarse);
    r.zn = malloc(sizeof(float) * (size_t)(192 * r.T));
    r.sn = malloc(sizeof(float) * (size_t)(r.T * hop));
    normals(r.zn, 192 * r.T);
    normals(r.sn, r.T * hop);
    return r;
}

static void rvc_inputs_free(rvc_inputs *r) { free(r->phone), free(r->f0), free(r->coarse), free(r->zn), free(r->sn); }

static int failures = 0;

static void verdict(jbuf *j, const char *name, const char *prec, double e, double tol, int *first) {
    int ok = e < tol;
    if (!ok) failures++;
    printf("  %-34s %-5s rel %.2e  (bound %.0e) %s\n", name, prec, e, tol, ok ? "ok" : "FAILED");
    jcat(j, "%s\"%s %s\": {\"rel_error\": %.3e, \"bound\": %.0e, \"ok\": %s}", *first ? "" : ", ", name, prec, e, tol,
         ok ? "true" : "false");
    *first = 0;
}

/* ---- parity ------------------------------------------------------------------------------------------ */

static void parity(const args *a, const avo_audio *v16, avo_backend *cpu, avo_backend *gpu, jbuf *j) {
    avo_error err;
    char path[4096];
    const int64_t n = v16->frames;
    const float *x = v16->samples;
    avo_arena *ac = NULL, *ag = NULL;
    check(avo_arena_create(cpu, (size_t)64 << 20, &ac, &err), &err);
    check(avo_arena_create(gpu, (size_t)64 << 20, &ag, &err), &err);
    int first = 1;
    printf("parity on %.1f s (CPU back end %d threads = reference):\n", (double)n / 16000.0, a->threads);
    jcat(j, "\"parity\": {\"seconds\": %.2f, ", (double)n / 16000.0);
    jcat(j, "\"cases\": {");

    /* HuBERT */
    snprintf(path, sizeof path, "%s/hubert_base.pt", a->models);
    avo_hubert *hc = NULL, *hg = NULL;
    check(avo_hubert_load(path, cpu, &hc, &err), &err);
    check(avo_hubert_load(path, gpu, &hg, &err), &err);
    avo_tensor f;
    check(avo_hubert_extract(hc, ac, x, n, 12, false, &f, &err), &err);
    const int64_t cf = f.shape[0], dim = f.shape[1];
    float *feat = malloc(sizeof(float) * (size_t)(cf * dim)), *fg = malloc(sizeof(float) * (size_t)(cf * dim));
    check(avo_tensor_to_host(ac, &f, feat, cf * dim, &err), &err);
    for (int p = 0; p < 2; p++) {
        set_prec(gpu, p);
        int64_t h0 = half_gemms(gpu);
        avo_arena_reset(ag);
        check(avo_hubert_extract(hg, ag, x, n, 12, false, &f, &err), &err);
        check(avo_tensor_to_host(ag, &f, fg, cf * dim, &err), &err);
        verdict(j, "hubert layer-12 features", p ? "fp16" : "fp32", rel_err(fg, feat, cf * dim), p ? TOL_FP16 : TOL_FP32,
                &first);
        if (p && half_gemms(gpu) == h0) {
            printf("  hubert fp16: no half GEMM ran\n");
            failures++;
        }
    }
    avo_hubert_free(hc), avo_hubert_free(hg);
    free(fg);

    /* RMVPE: salience of the network on the host's log-mel, then F0 */
    snprintf(path, sizeof path, "%s/rmvpe.pt", a->models);
    avo_rmvpe *rc = NULL, *rg = NULL;
    check(avo_rmvpe_load(path, cpu, &rc, &err), &err);
    check(avo_rmvpe_load(path, gpu, &rg, &err), &err);
    rmvpe_mel *mel = NULL;
    check(rmvpe_mel_create(&mel, &err), &err);
    const int64_t mf = avo_rmvpe_frames(n);
    float *m = malloc(sizeof(float) * (size_t)(mf * RMVPE_MELS));
    float *sc = malloc(sizeof(float) * (size_t)(mf * RMVPE_BINS)), *sg = malloc(sizeof(float) * (size_t)(mf * RMVPE_BINS));
    check(rmvpe_mel_frames(mel, x, n, 0, mf, m, &err), &err);
    avo_arena_reset(ac);
    check(rmvpe_salience(rc, ac, m, mf, sc, &err), &err);
    float *f0c = malloc(sizeof(float) * (size_t)mf), *f0g = malloc(sizeof(float) * (size_t)mf);
    avo_arena_reset(ac);
    check(avo_rmvpe_f0(rc, ac, x, n, 0.03f, f0c, NULL, &err), &err);
    for (int p = 0; p < 2; p++) {
        set_prec(gpu, p);
        avo_arena_reset(ag);
        check(rmvpe_salience(rg, ag, m, mf, sg, &err), &err);
        verdict(j, "rmvpe salience", p ? "fp16" : "fp32", rel_err(sg, sc, mf * RMVPE_BINS), p ? TOL_FP16 : TOL_FP32,
                &first);
        avo_arena_reset(ag);
        check(avo_rmvpe_f0(rg, ag, x, n, 0.03f, f0g, NULL, &err), &err);
        double worst = 0.0;
        int64_t both = 0, differ = 0;
        for (int64_t i = 0; i < mf; i++) {
            if ((f0c[i] > 0) != (f0g[i] > 0)) differ++;
            if (f0c[i] > 0 && f0g[i] > 0) {
                both++;
                double c = fabs(1200.0 * log2((double)f0g[i] / (double)f0c[i]));
                if (c > worst) worst = c;
            }
        }
        int ok = worst < TOL_CENTS;
        if (!ok) failures++;
        printf("  %-34s %-5s max %.3f cents over %lld voiced frames, %lld voicing flips %s\n", "rmvpe f0",
               p ? "fp16" : "fp32", worst, (long long)both, (long long)differ, ok ? "ok" : "FAILED");
        jcat(j, ", \"rmvpe f0 %s\": {\"max_cents\": %.4f, \"voiced_both\": %lld, \"voicing_flips\": %lld, \"ok\": %s}",
             p ? "fp16" : "fp32", worst, (long long)both, (long long)differ, ok ? "true" : "false");
    }
    rmvpe_mel_free(mel);
    avo_rmvpe_free(rc), avo_rmvpe_free(rg);
    free(m), free(sc), free(sg), free(f0c), free(f0g);

    /* RVC synthesizer on the CPU features, a sung contour, fixed draws */
    snprintf(path, sizeof path, "%s/rvc_v2_40k.pth", a->models);
    avo_rvc *vc = NULL, *vg = NULL;
    check(avo_rvc_load(path, cpu, &vc, &err), &err);
    check(avo_rvc_load(path, gpu, &vg, &err), &err);
    const avo_rvc_info *info = avo_rvc_get_info(vc);
    rvc_inputs in = rvc_inputs_make(feat, cf, dim, n, info->hop);
    const int64_t T = in.T;
    float *yc = malloc(sizeof(float) * (size_t)(T * info->hop)), *yg = malloc(sizeof(float) * (size_t)(T * info->hop));
    avo_arena_reset(ac);
    check(avo_rvc_infer(vc, ac, in.phone, T, in.coarse, in.f0, 0, in.zn, in.sn, 1, yc, &err), &err);
    for (int p = 0; p < 2; p++) {
        set_prec(gpu, p);
        avo_arena_reset(ag);
        check(avo_rvc_infer(vg, ag, in.phone, T, in.coarse, in.f0, 0, in.zn, in.sn, 1, yg, &err), &err);
        verdict(j, "rvc audio", p ? "fp16" : "fp32", rel_err(yg, yc, T * info->hop), p ? TOL_FP16 : TOL_FP32, &first);
    }
    avo_rvc_free(vc), avo_rvc_free(vg);
    rvc_inputs_free(&in);
    free(yc), free(yg), free(feat);
    avo_arena_free(ac), avo_arena_free(ag);
    set_prec(gpu, 0);

    /* The whole conversion stage: CPU converter against the CUDA one */
    avo_audio v44 = {0}, out[3] = {{0}};
    check(avo_audio_resample(v16, 44100, &v44, &err), &err);
    const int64_t nf = avo_rmvpe_frames(n);
    avo_f0_track track = {0};
    check(avo_f0_track_alloc(&track, nf, 0.010, &err), &err);
    for (int64_t i = 0; i < nf; i++) track.f0_hz[i] = (float)(220.0 * pow(2.0, 3.0 * sin(2 * M_PI * 0.3 * i / 100.0) / 12.0));
    char mp[4096], ep[4096];
    snprintf(mp, sizeof mp, "%s/rvc_v2_40k.pth", a->models);
    snprintf(ep, sizeof ep, "%s/hubert_base.pt", a->models);
    for (int k = 0; k < 3; k++) { /* cpu, cuda fp32, cuda fp16 */
        avo_neural_config nc;
        avo_neural_config_default(&nc);
        nc.model_path = mp;
        nc.content_encoder_path = ep;
        nc.device = k ? "cuda" : "cpu";
        nc.strict = 1;
        if (k == 2) setenv("AVO_CUDA_PRECISION", "fp16", 1);
        else unsetenv("AVO_CUDA_PRECISION");
        avo_convert_options opt;
        avo_convert_options_default(&opt);
        opt.threads = a->threads;
        avo_converter *conv = NULL;
        check(avo_converter_create_neural(&nc, NULL, &opt, &conv, &err), &err);
        check(avo_converter_run(conv, &v44, &track, &out[k], NULL, NULL, &err), &err);
        avo_converter_info ci;
        avo_converter_get_info(conv, &ci);
        if (k) printf("  conversion on %s (precision reported: %s)\n", ci.device, ci.precision);
        avo_converter_free(conv);
        if (k) verdict(j, "conversion stage audio", k == 2 ? "fp16" : "fp32",
                       rel_err(out[k].samples, out[0].samples, out[0].frames), k == 2 ? TOL_FP16 : TOL_FP32, &first);
    }
    unsetenv("AVO_CUDA_PRECISION");
    for (int k = 0; k < 3; k++) avo_audio_free(&out[k]);
    avo_audio_free(&v44);
    avo_f0_track_free(&track);
    jcat(j, "}}, ");
}

/* ---- speed --------------------------------------------------------------------------------------------- */

static void profile_into(avo_backend *gpu, jbuf *j, const char *name, int *first) {
    static char buf[1 << 16];
    avo_error err;
    check(avo_backend_cuda_profile_json(gpu, 30, buf, sizeof buf, &err), &err);
    jcat(j, "%s\"%s\": %s", *first ? "" : ", ", name, buf);
    *first = 0;
}

static void speed(const args *a, const avo_audio *v16, avo_backend *gpu, jbuf *j) {
    avo_error err;
    char path[4096];
    const int64_t n = v16->frames;
    const float *x = v16->samples;
    avo_arena *ag = NULL;
    check(avo_arena_create(gpu, (size_t)256 << 20, &ag, &err), &err);
    double ms[2][4] = {{0}};
    int pfirst = 1;
    jbuf prof = {0};

    snprintf(path, sizeof path, "%s/hubert_base.pt", a->models);
    avo_hubert *h = NULL;
    check(avo_hubert_load(path, gpu, &h, &err), &err);
    avo_tensor f;
    int64_t cf = 0, dim = 768;
    float *feat = NULL, *feat32 = NULL;
    for (int p = 0; p < 2; p++) {
        set_prec(gpu, p);
        TIME_MS(ms[p][0], a->repeats, {
            avo_arena_reset(ag);
            check(avo_hubert_extract(h, ag, x, n, 12, false, &f, &err), &err);
            cf = f.shape[0];
            dim = f.shape[1];
            if (!feat) feat = malloc(sizeof(float) * (size_t)(cf * dim));
            check(avo_tensor_to_host(ag, &f, feat, cf * dim, &err), &err);
        });
        check(avo_backend_cuda_profile(gpu, true, &err), &err);
        avo_arena_reset(ag);
        check(avo_hubert_extract(h, ag, x, n, 12, false, &f, &err), &err);
        check(avo_tensor_to_host(ag, &f, feat, cf * dim, &err), &err);
        check(avo_backend_cuda_profile(gpu, false, &err), &err);
        profile_into(gpu, &prof, p ? "hubert fp16" : "hubert fp32", &pfirst);
        printf("hubert   %-5s %8.2f ms\n", p ? "fp16" : "fp32", ms[p][0]);
        if (p == 0) {
            feat32 = malloc(sizeof(float) * (size_t)(cf * dim));
            memcpy(feat32, feat, sizeof(float) * (size_t)(cf * dim));
        }
    }

    /* FP16 A/B, runs interleaved, each timed to its features on the host: this back end (CUDA Graphs on,
     * the default) against a second one with graphs off */
    double graph_ms[2] = {0, 0};
    int64_t g_launch = 0, g_capt = 0;
    {
        avo_backend *g2 = NULL;
        avo_arena *a2 = NULL;
        avo_hubert *h2 = NULL;
        check(avo_backend_cuda_create(-1, &g2, &err), &err);
        check(avo_backend_cuda_set_graphs(g2, false, &err), &err);
        check(avo_arena_create(g2, (size_t)256 << 20, &a2, &err), &err);
        set_prec(g2, 1);
        set_prec(gpu, 1);
        check(avo_hubert_load(path, g2, &h2, &err), &err);
        double t[2][64];
        int64_t l0 = 0, c0 = 0, l1 = 0, c1 = 0;
        check(avo_backend_cuda_graph_counts(gpu, &l0, &c0, &err), &err);
        for (int r = 0; r <= a->repeats; r++)
            for (int v = 0; v < 2; v++) {
                avo_arena *ar = v ? a2 : ag;
                double t0 = avo_now_ms();
                avo_arena_reset(ar);
                check(avo_hubert_extract(v ? h2 : h, ar, x, n, 12, false, &f, &err), &err);
                check(avo_tensor_to_host(ar, &f, feat, cf * dim, &err), &err);
                t[v][r] = avo_now_ms() - t0;
            }
        check(avo_backend_cuda_graph_counts(gpu, &l1, &c1, &err), &err);
        g_launch = l1 - l0, g_capt = c1 - c0;
        for (int v = 0; v < 2; v++) graph_ms[v] = bench_median(t[v] + 1, a->repeats);
        printf("hubert   fp16  graphs on %.2f ms, off %.2f ms (interleaved; %lld graph launches, %lld captures)\n",
               graph_ms[0], graph_ms[1], (long long)g_launch, (long long)g_capt);
        avo_hubert_free(h2);
        avo_arena_free(a2);
        avo_backend_free(g2);
    }

    /* INT8: calibrate on this audio, then run with the INT8-capable tensors */
    double int8_ms = 0, calib_ms = 0, cos_mean = 0, cos_min = 0;
    int64_t n8 = 0, n8skip = 0, f16_8 = 0;
    int n_all = 0, n_sel = 0, n_tab = 0;
    {
        set_prec(gpu, 0);
        avo_calib *col = NULL;
        avo_calib_table *all = NULL, *sel = NULL, *tab = NULL;
        double t0 = avo_now_ms();
        check(avo_calib_create(&col, &err), &err);
        check(avo_calib_attach(col, gpu, &err), &err);
        avo_arena_reset(ag);
        check(avo_hubert_extract(h, ag, x, n, 12, false, &f, &err), &err);
        avo_calib_note_audio(col, (double)n / 16000.0);
        check(avo_calib_compute(col, 1.0, 0, &all, &err), &err);
        check(avo_calib_start_error_pass(col, all, &err), &err);
        avo_arena_reset(ag);
        check(avo_hubert_extract(h, ag, x, n, 12, false, &f, &err), &err);
        avo_calib_detach(col, gpu);
        check(avo_calib_select(col, 0, &sel, &err), &err);
        calib_ms = avo_now_ms() - t0;
        check(avo_calib_table_create(0, &tab, &err), &err);
        for (int i = 0; i < avo_calib_table_count(sel); i++) {
            const char *nm;
            float sc;
            avo_calib_table_entry(sel, i, &nm, &sc);
            if (avo_calib_cuda_int8_capable(nm)) check(avo_calib_table_set(tab, nm, sc, &err), &err);
        }
        n_all = avo_calib_tensor_count(col), n_sel = avo_calib_table_count(sel), n_tab = avo_calib_table_count(tab);
        check(avo_backend_cuda_set_calibration(gpu, tab, &err), &err);
        check(avo_backend_cuda_set_precision(gpu, AVO_CUDA_INT8, &err), &err);
        /* what one run issues, counted with graphs off (a replayed graph issues no ops to count) */
        int64_t a0 = 0, s0 = 0, a1 = 0, s1 = 0, h0 = half_gemms(gpu);
        check(avo_backend_cuda_set_graphs(gpu, false, &err), &err);
        check(avo_backend_cuda_int8_counts(gpu, &a0, &s0, &err), &err);
        avo_arena_reset(ag);
        check(avo_hubert_extract(h, ag, x, n, 12, false, &f, &err), &err);
        check(avo_tensor_to_host(ag, &f, feat, cf * dim, &err), &err);
        check(avo_backend_cuda_int8_counts(gpu, &a1, &s1, &err), &err);
        n8 = a1 - a0, n8skip = s1 - s0, f16_8 = half_gemms(gpu) - h0;
        check(avo_backend_cuda_set_graphs(gpu, true, &err), &err);
        TIME_MS(int8_ms, a->repeats, {
            avo_arena_reset(ag);
            check(avo_hubert_extract(h, ag, x, n, 12, false, &f, &err), &err);
            check(avo_tensor_to_host(ag, &f, feat, cf * dim, &err), &err);
        });
        cos_mean = avo_calib_frame_cosine(feat, feat32, cf, dim, &cos_min);
        check(avo_backend_cuda_profile(gpu, true, &err), &err);
        avo_arena_reset(ag);
        check(avo_hubert_extract(h, ag, x, n, 12, false, &f, &err), &err);
        check(avo_tensor_to_host(ag, &f, feat, cf * dim, &err), &err);
        check(avo_backend_cuda_profile(gpu, false, &err), &err);
        profile_into(gpu, &prof, "hubert int8", &pfirst);
        set_prec(gpu, 0);
        check(avo_backend_cuda_set_calibration(gpu, NULL, &err), &err);
        avo_calib_table_free(tab), avo_calib_table_free(sel), avo_calib_table_free(all);
        avo_calib_free(col);
        printf("hubert   int8  %8.2f ms (fp16 %.2f ms: %.2fx); per run %lld INT8 GEMMs, %lld FP16 GEMMs (%lld "
               "INT8-capable without a scale); %d tensors calibrated, %d selected, %d INT8 on CUDA; cosine vs fp32 mean "
               "%.5f min %.5f; calibration %.0f ms\n",
               int8_ms, ms[1][0], ms[1][0] / int8_ms, (long long)n8, (long long)f16_8, (long long)n8skip, n_all, n_sel,
               n_tab, cos_mean, cos_min, calib_ms);
        if (cos_mean < 0.99) {
            printf("  hubert int8: mean per-frame cosine %.4f < 0.99\n", cos_mean);
            failures++;
        }
        /* the RVC runs below take the FP32 features (the FP16 ones before: the same sizes and timing) */
        memcpy(feat, feat32, sizeof(float) * (size_t)(cf * dim));
    }
    avo_hubert_free(h);

    snprintf(path, sizeof path, "%s/rmvpe.pt", a->models);
    avo_rmvpe *rm = NULL;
    check(avo_rmvpe_load(path, gpu, &rm, &err), &err);
    float *f0r = malloc(sizeof(float) * (size_t)avo_rmvpe_frames(n));
    for (int p = 0; p < 2; p++) {
        set_prec(gpu, p);
        TIME_MS(ms[p][1], a->repeats, {
            avo_arena_reset(ag);
            check(avo_rmvpe_f0(rm, ag, x, n, 0.03f, f0r, NULL, &err), &err);
        });
        check(avo_backend_cuda_profile(gpu, true, &err), &err);
        avo_arena_reset(ag);
        check(avo_rmvpe_f0(rm, ag, x, n, 0.03f, f0r, NULL, &err), &err);
        check(avo_backend_cuda_profile(gpu, false, &err), &err);
        profile_into(gpu, &prof, p ? "rmvpe fp16" : "rmvpe fp32", &pfirst);
        printf("rmvpe    %-5s %8.2f ms\n", p ? "fp16" : "fp32", ms[p][1]);
    }
    /* FP16 A/B on this back end, runs interleaved: all on, the direct 3x3 conv2d off, the GRU cluster off */
    double rm_ab[3] = {0, 0, 0};
    {
        double t[3][64];
        set_prec(gpu, 1);
        for (int r = 0; r <= a->repeats; r++)
            for (int v = 0; v < 3; v++) {
                check(avo_backend_cuda_set_switch(gpu, AVO_CUDA_SW_DIRECT_CONV2D, v != 1, &err), &err);
                check(avo_backend_cuda_set_switch(gpu, AVO_CUDA_SW_GRU_CLUSTER, v != 2, &err), &err);
                double t0 = avo_now_ms();
                avo_arena_reset(ag);
                check(avo_rmvpe_f0(rm, ag, x, n, 0.03f, f0r, NULL, &err), &err);
                t[v][r] = avo_now_ms() - t0;
            }
        check(avo_backend_cuda_set_switch(gpu, AVO_CUDA_SW_DIRECT_CONV2D, true, &err), &err);
        check(avo_backend_cuda_set_switch(gpu, AVO_CUDA_SW_GRU_CLUSTER, true, &err), &err);
        for (int v = 0; v < 3; v++) rm_ab[v] = bench_median(t[v] + 1, a->repeats);
        printf("rmvpe    fp16  %.2f ms; direct conv2d off %.2f ms; gru cluster off %.2f ms (interleaved)\n", rm_ab[0],
               rm_ab[1], rm_ab[2]);
    }
    avo_rmvpe_free(rm);
    free(f0r);

    snprintf(path, sizeof path, "%s/rvc_v2_40k.pth", a->models);
    avo_rvc *rvc = NULL;
    check(avo_rvc_load(path, gpu, &rvc, &err), &err);
    const avo_rvc_info *info = avo_rvc_get_info(rvc);
    rvc_inputs in = rvc_inputs_make(feat, cf, dim, n, info->hop);
    const int64_t T = in.T;
    float *y = malloc(sizeof(float) * (size_t)(T * info->hop));
    for (int p = 0; p < 2; p++) {
        set_prec(gpu, p);
        TIME_MS(ms[p][2], a->repeats, {
            avo_arena_reset(ag);
            check(avo_rvc_infer(rvc, ag, in.phone, T, in.coarse, in.f0, 0, in.zn, in.sn, 1, y, &err), &err);
        });
        check(avo_backend_cuda_profile(gpu, true, &err), &err);
        avo_arena_reset(ag);
        check(avo_rvc_infer(rvc, ag, in.phone, T, in.coarse, in.f0, 0, in.zn, in.sn, 1, y, &err), &err);
        check(avo_backend_cuda_profile(gpu, false, &err), &err);
        profile_into(gpu, &prof, p ? "rvc fp16" : "rvc fp32", &pfirst);
        printf("rvc      %-5s %8.2f ms (%lld frames)\n", p ? "fp16" : "fp32", ms[p][2], (long long)T);
    }
    /* FP16 A/B on this back end, runs interleaved: all on, the fused convolutions off (activation,
     * convolution and add as three passes), the fused relative-position attention off */
    double rvc_ab[3] = {0, 0, 0}, unfused_ms = 0;
    {
        double t[3][64];
        set_prec(gpu, 1);
        for (int r = 0; r <= a->repeats; r++)
            for (int v = 0; v < 3; v++) {
                check(avo_backend_cuda_set_switch(gpu, AVO_CUDA_SW_FUSED, v != 1, &err), &err);
                check(avo_backend_cuda_set_switch(gpu, AVO_CUDA_SW_FLASH_REL, v != 2, &err), &err);
                double t0 = avo_now_ms();
                avo_arena_reset(ag);
                check(avo_rvc_infer(rvc, ag, in.phone, T, in.coarse, in.f0, 0, in.zn, in.sn, 1, y, &err), &err);
                t[v][r] = avo_now_ms() - t0;
            }
        check(avo_backend_cuda_set_switch(gpu, AVO_CUDA_SW_FUSED, true, &err), &err);
        check(avo_backend_cuda_set_switch(gpu, AVO_CUDA_SW_FLASH_REL, true, &err), &err);
        for (int v = 0; v < 3; v++) rvc_ab[v] = bench_median(t[v] + 1, a->repeats);
        unfused_ms = rvc_ab[1];
        printf("rvc      fp16  %.2f ms; fused convolutions off %.2f ms; fused relative attention off %.2f ms "
               "(interleaved)\n", rvc_ab[0], rvc_ab[1], rvc_ab[2]);
    }
    avo_rvc_free(rvc);
    rvc_inputs_free(&in);
    free(y), free(feat), free(feat32);
    avo_arena_free(ag);
    set_prec(gpu, 0);

    /* the conversion stage */
    avo_audio v44 = {0}, out = {0};
    check(avo_audio_resample(v16, 44100, &v44, &err), &err);
    const int64_t nf = avo_rmvpe_frames(n);
    avo_f0_track track = {0};
    check(avo_f0_track_alloc(&track, nf, 0.010, &err), &err);
    for (int64_t i = 0; i < nf; i++) track.f0_hz[i] = (float)(220.0 * pow(2.0, 3.0 * sin(2 * M_PI * 0.3 * i / 100.0) / 12.0));
    char mp[4096], ep[4096];
    snprintf(mp, sizeof mp, "%s/rvc_v2_40k.pth", a->models);
    snprintf(ep, sizeof ep, "%s/hubert_base.pt", a->models);
    double load_ms[2] = {0, 0};
    for (int p = 0; p < 2; p++) {
        avo_neural_config nc;
        avo_neural_config_default(&nc);
        nc.model_path = mp;
        nc.content_encoder_path = ep;
        nc.device = "cuda";
        nc.strict = 1;
        if (p) setenv("AVO_CUDA_PRECISION", "fp16", 1);
        else unsetenv("AVO_CUDA_PRECISION");
        avo_convert_options opt;
        avo_convert_options_default(&opt);
        opt.threads = a->threads;
        avo_converter *conv = NULL;
        double t0 = avo_now_ms();
        check(avo_converter_create_neural(&nc, NULL, &opt, &conv, &err), &err);
        load_ms[p] = avo_now_ms() - t0;
        TIME_MS(ms[p][3], a->repeats, {
            avo_audio_free(&out);
            check(avo_converter_run(conv, &v44, &track, &out, NULL, NULL, &err), &err);
        });
        avo_converter_free(conv);
        printf("convert  %-5s %8.2f ms (model loading %.0f ms, not included)\n", p ? "fp16" : "fp32", ms[p][3], load_ms[p]);
    }
    unsetenv("AVO_CUDA_PRECISION");
    avo_audio_free(&out);
    avo_audio_free(&v44);
    avo_f0_track_free(&track);

    const char *names[4] = {"hubert", "rmvpe", "rvc", "conversion_stage"};
    jcat(j, "\"speed\": {\"seconds\": %.2f, \"repeats\": %d, \"ms\": {", (double)n / 16000.0, a->repeats);
    for (int c = 0; c < 4; c++)
        jcat(j, "%s\"%s\": {\"fp32\": %.3f, \"fp16\": %.3f}", c ? ", " : "", names[c], ms[0][c], ms[1][c]);
    jcat(j, "}, \"hubert_int8\": {\"ms\": %.3f, \"fp16_ms\": %.3f, \"speedup_vs_fp16\": %.3f, \"cosine_mean\": %.6f, "
            "\"cosine_min\": %.6f, \"int8_gemms_per_run\": %lld, \"fp16_gemms_per_run\": %lld, "
            "\"int8_capable_skipped_per_run\": %lld, \"tensors_calibrated\": %d, \"tensors_selected\": %d, "
            "\"tensors_int8\": %d, \"calibration_ms\": %.1f}",
         int8_ms, ms[1][0], int8_ms > 0 ? ms[1][0] / int8_ms : 0.0, cos_mean, cos_min, (long long)n8, (long long)f16_8,
         (long long)n8skip, n_all, n_sel, n_tab, calib_ms);
    jcat(j, ", \"rvc_fp16_unfused_ms\": %.3f, \"rvc_fp16_fused_ms\": %.3f", unfused_ms, ms[1][2]);
    jcat(j, ", \"rvc_fp16_ab\": {\"all_ms\": %.3f, \"fused_conv_off_ms\": %.3f, \"flash_rel_off_ms\": %.3f}", rvc_ab[0],
         rvc_ab[1], rvc_ab[2]);
    jcat(j, ", \"hubert_fp16_graphs\": {\"on_ms\": %.3f, \"off_ms\": %.3f, \"launches\": %lld, \"captures\": %lld}",
         graph_ms[0], graph_ms[1], (long long)g_launch, (long long)g_capt);
    jcat(j, ", \"rmvpe_fp16_ab\": {\"all_ms\": %.3f, \"direct_conv2d_off_ms\": %.3f, \"gru_cluster_off_ms\": %.3f}",
         rm_ab[0], rm_ab[1], rm_ab[2]);
    jcat(j, ", \"conversion_model_loading_ms\": {\"fp32\": %.1f, \"fp16\": %.1f}, \"profiles\": {%s}}, ", load_ms[0],
         load_ms[1], prof.s ? prof.s : "");
    free(prof.s);
    printf("\n%-18s %10s %10s\n", "(ms, 30 s audio)", "fp32", "fp16");
    for (int c = 0; c < 4; c++) printf("%-18s %10.2f %10.2f\n", names[c], ms[0][c], ms[1][c]);
    printf("%-18s %10s %10.2f  int8 %.2f (%.2fx fp16)\n", "hubert int8", "", ms[1][0], int8_ms,
           int8_ms > 0 ? ms[1][0] / int8_ms : 0.0);
    printf("%-18s %10s %10.2f  unfused %.2f\n", "rvc fused conv", "", ms[1][2], unfused_ms);
}

/* The host-side pieces of the conversion stage, each alone on this machine's CPU (single-threaded code
 * of the converter and the RVC model, not of this back end): what the GPU cannot speed up. */
static void glue(const args *a, const avo_audio *v16, jbuf *j) {
    avo_error err;
    const int64_t n = v16->frames, T = n / 160, hop = 400, N = T * hop;
    avo_audio v44 = {0}, tmp = {0}, y40 = {0};
    check(avo_audio_resample(v16, 44100, &v44, &err), &err);
    check(avo_audio_alloc(&y40, 40000, 1, N, &err), &err);
    float *x = malloc(sizeof(float) * (size_t)n), *f0 = malloc(sizeof(float) * (size_t)T);
    float *zn = malloc(sizeof(float) * (size_t)(192 * T)), *sn = malloc(sizeof(float) * (size_t)N);
    for (int64_t i = 0; i < T; i++) f0[i] = (float)(220.0 * pow(2.0, 3.0 * sin(2 * M_PI * 0.3 * i / 100.0) / 12.0));
    double ms[5];
    TIME_MS(ms[0], a->repeats, {
        avo_audio_free(&tmp);
        check(avo_audio_resample(&v44, 16000, &tmp, &err), &err);
    });
    TIME_MS(ms[1], a->repeats, {
        memcpy(x, v16->samples, sizeof(float) * (size_t)n);
        rvc_highpass_16k(x, n);
    });
    TIME_MS(ms[2], a->repeats, {
        vits_rng r;
        vits_rng_seed(&r, 1);
        vits_rng_normal(&r, zn, 192 * T);
        vits_rng_normal(&r, sn, N);
    });
    TIME_MS(ms[3], a->repeats, vits_rvc_nsf_source(f0, T, (int)hop, 40000, sn, 0.5f, 0.1f, y40.samples));
    TIME_MS(ms[4], a->repeats, {
        avo_audio_free(&tmp);
        check(avo_audio_resample(&y40, 44100, &tmp, &err), &err);
    });
    const char *names[5] = {"resample 44.1k->16k", "highpass 16k", "rvc noise draws (z + nsf)", "nsf source",
                            "resample 40k->44.1k"};
    printf("\nhost pieces of the conversion stage (%.0f s of audio, one CPU thread each):\n", (double)n / 16000.0);
    jcat(j, "\"host_pieces_ms\": {");
    for (int i = 0; i < 5; i++) {
        printf("  %-28s %8.2f ms\n", names[i], ms[i]);
        jcat(j, "%s\"%s\": %.3f", i ? ", " : "", names[i], ms[i]);
    }
    jcat(j, "}, ");
    avo_audio_free(&v44), avo_audio_free(&tmp), avo_audio_free(&y40);
    free(x), free(f0), free(zn), free(sn);
}

int main(int argc, char **argv) {
    args a;
    parse(argc, argv, &a);
    if (!a.wav) {
        fprintf(stderr, "bench_neural_cuda: --wav is required\n");
        return 2;
    }
    avo_error err;
    avo_audio raw = {0}, mono = {0}, v16 = {0};
    check(avo_audio_read(a.wav, &raw, &err), &err);
    check(avo_audio_to_mono(&raw, &mono, &err), &err);
    check(avo_audio_resample(&mono, 16000, &v16, &err), &err);
    avo_audio_free(&raw), avo_audio_free(&mono);
    avo_backend *cpu = NULL, *gpu = NULL;
    check(avo_backend_cpu_create(a.threads, &cpu, &err), &err);
    check(avo_backend_cuda_create(-1, &gpu, &err), &err);
    jbuf j = {0};
    jcat(&j, "{\"benchmark\": \"neural_cuda\", \"models\": \"random weights, real sizes (make_random_models.py)\", ");
    if (a.parity) {
        avo_audio part = {0};
        check(avo_bench_loop_to(&v16, (int64_t)(a.parity_seconds * 16000), &part, &err), &err);
        parity(&a, &part, cpu, gpu, &j);
        avo_audio_free(&part);
    }
    if (a.speed) {
        avo_audio whole = {0};
        check(avo_bench_loop_to(&v16, (int64_t)(a.seconds * 16000), &whole, &err), &err);
        speed(&a, &whole, gpu, &j);
        glue(&a, &whole, &j);
        avo_audio_free(&whole);
    }
    jcat(&j, "\"parity_failures\": %d}\n", failures);
    avo_backend_free(gpu);
    avo_backend_free(cpu);
    avo_audio_free(&v16);
    int rc = bench_write_json(a.out, j.s);
    free(j.s);
    if (failures) fprintf(stderr, "bench_neural_cuda: %d parity check(s) failed\n", failures);
    return rc ? rc : failures ? 1 : 0;
}
