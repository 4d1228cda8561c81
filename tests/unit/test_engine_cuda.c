/* engine module: the CUDA back end against the CPU back end. Every operator runs on the same random
 * inputs on both (odd sizes, groups, dilation, strides, padding, broadcasts, in-place and row-view
 * outputs); the GPU writes into outputs filled with NaN first, so an element it never writes fails.
 * Bound: relative error max|gpu - cpu| / max|cpu| under 1e-5 in FP32, and 1e-2 in FP16 mode for the
 * GEMM-based ops (half operands carry 2^-11 relative rounding each; sums of a few hundred products
 * land near 1e-3), whose GEMM counters must show that half GEMMs really ran.
 * Fused conv1d (leaky ReLU on the input, bias and residual): the GPU's fused op against the CPU's
 * composed ops (activation, conv1d, add), same bounds.
 * INT8 mode: linear and 1x1 conv1d against an exact integer reference made here with calibrate.c's
 * quantiser (1e-6 relative: only the float dequantisation rounds) and against the CPU simulation of
 * calibrate.c on the same inputs and scales, within 2 steps x_scale * w_scale[o] of the INT32
 * accumulator per output: the GPU's sum is exact, the simulation adds the same products in float,
 * which puts it up to 0.84 steps (this machine's CPU) / 1.13 steps (the H100 host's) from the exact
 * sum over 768 terms on these cases; error against FP32 under 2e-2 without clipping (reported
 * otherwise); ops without a scale or of unaligned sizes must fall back to FP16 and be counted as
 * skipped.
 * End to end: the small random HuBERT of tests/reference/hubert_golden.py on CUDA against the CPU
 * back end and the float64 PyTorch golden data (1e-4 as test_hubert; 5e-2 in FP16 mode).
 * Without CUDA in the build, or without a GPU, it prints SKIP and passes (AVO_REQUIRE_CUDA=1 makes
 * that a failure). */
#include "autovoice/calibrate.h"
#include "autovoice/engine.h"
#include "autovoice/engine_cuda.h"
#include "autovoice/models.h"
#include "engine/cuda/cuda_profile.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <unistd.h>

#define TOL_FP32 1e-5
#define TOL_FP16 1e-2
#define TOL_MODEL 1e-4
#define TOL_MODEL_FP16 5e-2

static avo_backend *be_cpu, *be_gpu;
static avo_arena *ar_cpu, *ar_gpu;
static double tol = TOL_FP32;
static bool fp16; /* the GPU runs in FP16 mode: GEMM-based cases must show half GEMMs */
static uint32_t rng = 0x2545f491u;

static avo_backend *BE(int s) { return s ? be_gpu : be_cpu; }
static avo_arena *AR(int s) { return s ? ar_gpu : ar_cpu; }

/* uniform in [-1, 1) */
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffffff) / 8388608.0f - 1.0f;
}

static float *host_rand(int64_t n, float scale) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = scale * frand();
    return p;
}

/* ---- summary -------------------------------------------------------------------------------- */

static struct {
    char op[24], mode[8];
    int cases;
    double worst;
} summary[64];
static int nsummary;

static void record(const char *op, double e) {
    const char *m = fp16 ? "fp16" : "fp32";
    int i = 0;
    while (i < nsummary && (strcmp(summary[i].op, op) || strcmp(summary[i].mode, m))) i++;
    if (i == nsummary) {
        if (nsummary == 64) return;
        snprintf(summary[i].op, sizeof summary[i].op, "%s", op);
        snprintf(summary[i].mode, sizeof summary[i].mode, "%s", m);
        summary[i].worst = 0;
        nsummary++;
    }
    summary[i].cases++;
    if (!(e <= summary[i].worst)) summary[i].worst = e;
}

/* ---- tensors on both sides ------------------------------------------------------------------ */

static avo_tensor up(int s, int ndim, const int64_t *shape, const float *host) {
    avo_tensor t = {0};
    avo_error err = {0};
    CHECK_OK(avo_tensor_from_host(AR(s), ndim, shape, host, &t, &err), &err);
    return t;
}
#define SHAPE(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}

/* The result tensor for side s: the CPU allocates its own; the GPU gets NaNs of the CPU result's
 * shape (so every element must be written, and the given-output path is the one tested). */
static avo_tensor out_for(int s, const avo_tensor *ref) {
    avo_tensor t = {0};
    if (s == 0 || !ref->data) return t;
    int64_t n = avo_tensor_numel(ref);
    float *nan = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) nan[i] = NAN;
    t = up(1, ref->ndim, ref->shape, nan);
    free(nan);
    return t;
}

static float *down(int s, const avo_tensor *t) {
    int64_t n = avo_tensor_numel(t);
    float *h = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    avo_error err = {0};
    CHECK_OK(avo_tensor_to_host(AR(s), t, h, n, &err), &err);
    return h;
}


static int64_t half_gemms(void) {
    int64_t f16 = 0;
    avo_error err = {0};
    CHECK_OK(avo_backend_cuda_gemm_counts(be_gpu, NULL, &f16, &err), &err);
    return f16;
}

/* Compares the GPU result got with the CPU result ref. gemm: in FP16 mode, half GEMMs must have run
 * since f16_before. */
static void compare(const char *op, const char *desc, const avo_tensor *ref, const avo_tensor *got, bool gemm,
                    int64_t f16_before) {
    if (!ref->data || !got->data) {
        CHECK_MSG(0, "%s %s: no result", op, desc);
        return;
    }
    bool same = ref->ndim == got->ndim;
    for (int i = 0; same && i < ref->ndim; i++) same = ref->shape[i] == got->shape[i];
    CHECK_MSG(same, "%s %s: shapes differ", op, desc);
    if (!same) return;
    int64_t n = avo_tensor_numel(ref);
    float *r = down(0, ref), *g = down(1, got);
    double e = avo_test_rel_error(g, r, n);
    fprintf(stderr, "%-17s %s  %-52s rel %.2e\n", op, fp16 ? "fp16" : "fp32", desc, e);
    CHECK_MSG(e < tol, "%s %s (%s): relative error %.3g >= %g", op, desc, fp16 ? "fp16" : "fp32", e, tol);
    if (fp16 && gemm) CHECK_MSG(half_gemms() > f16_before, "%s %s: FP16 mode ran no half GEMM", op, desc);
    record(op, e);
    free(r);
    free(g);
}

static void begin_case(void) {
    avo_arena_reset(ar_cpu);
    avo_arena_reset(ar_gpu);
}

/* ---- GEMM-based ops ------------------------------------------------------------------------- */

static void t_linear(int64_t lead, int64_t rows, int64_t in, int64_t out, bool bias) {
    begin_case();
    float *x = host_rand(lead * rows * in, 1.0f), *w = host_rand(out * in, 0.3f), *b = host_rand(out, 0.5f);
    avo_tensor y[2] = {{0}};
    int64_t f16 = half_gemms();
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor X = lead > 1 ? up(s, SHAPE(lead, rows, in), x) : up(s, SHAPE(rows, in), x);
        avo_tensor W = up(s, SHAPE(out, in), w), B = up(s, SHAPE(out), b);
        y[s] = out_for(s, &y[0]);
        CHECK_OK(avo_op_linear(BE(s), AR(s), &X, &W, bias ? &B : NULL, &y[s], &err), &err);
    }
    char d[128];
    snprintf(d, sizeof d, "x [%lld, %lld, %lld] w [%lld, %lld]%s", (long long)lead, (long long)rows, (long long)in,
             (long long)out, (long long)in, bias ? " +b" : "");
    compare("linear", d, &y[0], &y[1], true, f16);
    free(x), free(w), free(b);
}

static void t_conv1d(int64_t cin, int64_t cout, int64_t t, int64_t k, int s_, int pad, int dil, int g, bool bias) {
    begin_case();
    float *x = host_rand(cin * t, 1.0f), *w = host_rand(cout * (cin / g) * k, 0.3f), *b = host_rand(cout, 0.5f);
    avo_conv1d_params p = {s_, pad, dil, g};
    avo_tensor y[2] = {{0}};
    int64_t f16 = half_gemms();
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor X = up(s, SHAPE(cin, t), x), W = up(s, SHAPE(cout, cin / g, k), w), B = up(s, SHAPE(cout), b);
        y[s] = out_for(s, &y[0]);
        CHECK_OK(avo_op_conv1d(BE(s), AR(s), &X, &W, bias ? &B : NULL, &p, &y[s], &err), &err);
    }
    char d[128];
    snprintf(d, sizeof d, "%lld->%lld T%lld k%lld s%d p%d d%d g%d%s", (long long)cin, (long long)cout, (long long)t,
             (long long)k, s_, pad, dil, g, bias ? " +b" : "");
    compare("conv1d", d, &y[0], &y[1], cin / g > 1, f16);
    free(x), free(w), free(b);
}

static void t_convt1d(int64_t cin, int64_t cout, int64_t t, int64_t k, int s_, int pad, int opad, int g, int dil,
                      bool bias) {
    begin_case();
    float *x = host_rand(cin * t, 1.0f), *w = host_rand(cin * (cout / g) * k, 0.3f), *b = host_rand(cout, 0.5f);
    avo_conv_transpose1d_params p = {s_, pad, opad, g, dil};
    avo_tensor y[2] = {{0}};
    int64_t f16 = half_gemms();
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor X = up(s, SHAPE(cin, t), x), W = up(s, SHAPE(cin, cout / g, k), w), B = up(s, SHAPE(cout), b);
        y[s] = out_for(s, &y[0]);
        CHECK_OK(avo_op_conv_transpose1d(BE(s), AR(s), &X, &W, bias ? &B : NULL, &p, &y[s], &err), &err);
    }
    char d[128];
    snprintf(d, sizeof d, "%lld->%lld T%lld k%lld s%d p%d op%d g%d d%d%s", (long long)cin, (long long)cout, (long long)t,
             (long long)k, s_, pad, opad, g, dil, bias ? " +b" : "");
    compare("conv_transpose1d", d, &y[0], &y[1], true, f16);
    free(x), free(w), free(b);
}

static bool direct2d = true; /* AVO_CUDA_SW_DIRECT_CONV2D as set on be_gpu */

static void t_conv2d(int64_t cin, int64_t cout, int64_t h, int64_t w_, int64_t kh, int64_t kw, int sh, int sw, int ph,
                     int pw, int dh, int dw, int g, bool bias, bool relu, bool res) {
    begin_case();
    avo_conv2d_params p = {{sh, sw}, {ph, pw}, {dh, dw}, g, relu};
    int64_t ho = (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1, wo = (w_ + 2 * pw - dw * (kw - 1) - 1) / sw + 1;
    float *x = host_rand(cin * h * w_, 1.0f), *w = host_rand(cout * (cin / g) * kh * kw, 0.3f), *b = host_rand(cout, 0.5f);
    float *r = host_rand(cout * ho * wo, 1.0f);
    avo_tensor y[2] = {{0}};
    int64_t f16 = half_gemms();
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor X = up(s, SHAPE(cin, h, w_), x), W = up(s, SHAPE(cout, cin / g, kh, kw), w), B = up(s, SHAPE(cout), b);
        avo_tensor R = up(s, SHAPE(cout, ho, wo), r);
        y[s] = out_for(s, &y[0]);
        CHECK_OK(avo_op_conv2d(BE(s), AR(s), &X, &W, bias ? &B : NULL, &p, res ? &R : NULL, &y[s], &err), &err);
    }
    char d[128];
    snprintf(d, sizeof d, "%lld->%lld %lldx%lld k%lldx%lld s%d,%d p%d,%d d%d,%d g%d%s%s%s%s", (long long)cin,
             (long long)cout, (long long)h, (long long)w_, (long long)kh, (long long)kw, sh, sw, ph, pw, dh, dw, g,
             bias ? " +b" : "", relu ? " relu" : "", res ? " +res" : "", direct2d ? "" : " (im2col)");
    /* the direct 3x3 kernel (few channels) is FP32 in both modes: no half GEMM there */
    const int64_t cmax = fp16 ? 32 : 64;
    bool direct = direct2d && kh == 3 && kw == 3 && sh == 1 && sw == 1 && ph == 1 && pw == 1 && dh == 1 && dw == 1 &&
                  g == 1 && cin <= cmax && cout <= cmax;
    compare("conv2d", d, &y[0], &y[1], !direct, f16);
    if (fp16 && direct) CHECK_MSG(half_gemms() == f16, "conv2d %s: the direct kernel should have run", d);
    free(x), free(w), free(b), free(r);
}

static void t_convt2d(int64_t cin, int64_t cout, int64_t h, int64_t w_, int64_t kh, int64_t kw, int sh, int sw, int ph,
                      int pw, int oph, int opw, bool bias, bool relu) {
    begin_case();
    avo_conv_transpose2d_params p = {{sh, sw}, {ph, pw}, {oph, opw}, relu};
    float *x = host_rand(cin * h * w_, 1.0f), *w = host_rand(cin * cout * kh * kw, 0.3f), *b = host_rand(cout, 0.5f);
    avo_tensor y[2] = {{0}};
    int64_t f16 = half_gemms();
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor X = up(s, SHAPE(cin, h, w_), x), W = up(s, SHAPE(cin, cout, kh, kw), w), B = up(s, SHAPE(cout), b);
        y[s] = out_for(s, &y[0]);
        CHECK_OK(avo_op_conv_transpose2d(BE(s), AR(s), &X, &W, bias ? &B : NULL, &p, &y[s], &err), &err);
    }
    char d[128];
    snprintf(d, sizeof d, "%lld->%lld %lldx%lld k%lldx%lld s%d,%d p%d,%d op%d,%d%s%s", (long long)cin, (long long)cout,
             (long long)h, (long long)w_, (long long)kh, (long long)kw, sh, sw, ph, pw, oph, opw, bias ? " +b" : "",
             relu ? " relu" : "");
    compare("conv_transpose2d", d, &y[0], &y[1], true, f16);
    free(x), free(w), free(b);
}

static void t_bigru(int64_t t, int64_t in, int64_t h, bool biases) {
    begin_case();
    float *x = host_rand(t * in, 1.0f), *wv[2][4];
    for (int d = 0; d < 2; d++) {
        wv[d][0] = host_rand(3 * h * in, 1.0f / sqrtf((float)in));
        wv[d][1] = host_rand(3 * h * h, 1.0f / sqrtf((float)h));
        wv[d][2] = host_rand(3 * h, 0.3f);
        wv[d][3] = host_rand(3 * h, 0.3f);
    }
    avo_tensor y[2] = {{0}};
    int64_t f16 = half_gemms();
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor X = up(s, SHAPE(t, in), x), T[2][4];
        avo_gru_weights gw;
        for (int d = 0; d < 2; d++) {
            T[d][0] = up(s, SHAPE(3 * h, in), wv[d][0]);
            T[d][1] = up(s, SHAPE(3 * h, h), wv[d][1]);
            T[d][2] = up(s, SHAPE(3 * h), wv[d][2]);
            T[d][3] = up(s, SHAPE(3 * h), wv[d][3]);
            gw.w_ih[d] = &T[d][0];
            gw.w_hh[d] = &T[d][1];
            gw.b_ih[d] = biases ? &T[d][2] : NULL;
            gw.b_hh[d] = biases || d ? &T[d][3] : NULL; /* one direction with b_hh alone */
        }
        y[s] = out_for(s, &y[0]);
        CHECK_OK(avo_op_bigru(BE(s), AR(s), &X, &gw, &y[s], &err), &err);
    }
    char d[128];
    snprintf(d, sizeof d, "T%lld in%lld H%lld%s", (long long)t, (long long)in, (long long)h, biases ? " +b" : "");
    compare("bigru", d, &y[0], &y[1], true, f16);
    free(x);
    for (int d = 0; d < 2; d++)
        for (int i = 0; i < 4; i++) free(wv[d][i]);
}

/* ---- the others ----------------------------------------------------------------------------- */

static void t_attention(int64_t c, int64_t t, int heads, int window, bool shared) {
    begin_case();
    int64_t kc = c / heads, nr = 2 * (int64_t)window + 1, eh = shared ? 1 : heads;
    float *q = host_rand(c * t, 1.0f), *k = host_rand(c * t, 1.0f), *v = host_rand(c * t, 1.0f);
    float *ek = host_rand(eh * nr * kc, 0.5f), *ev = host_rand(eh * nr * kc, 0.5f);
    avo_tensor y[2] = {{0}};
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor Q = up(s, SHAPE(c, t), q), K = up(s, SHAPE(c, t), k), V = up(s, SHAPE(c, t), v);
        avo_tensor EK = up(s, SHAPE(eh, nr, kc), ek), EV = up(s, SHAPE(eh, nr, kc), ev);
        y[s] = out_for(s, &y[0]);
        CHECK_OK(avo_op_rel_attention(BE(s), AR(s), &Q, &K, &V, window ? &EK : NULL, window ? &EV : NULL, heads, window,
                                      &y[s], &err),
                 &err);
    }
    char d[128];
    snprintf(d, sizeof d, "C%lld T%lld heads %d window %d%s", (long long)c, (long long)t, heads, window,
             window && shared ? " shared emb" : "");
    compare("rel_attention", d, &y[0], &y[1], false, 0);
    free(q), free(k), free(v), free(ek), free(ev);
}

static void t_layer_norm(int64_t c, int64_t t, bool affine) {
    begin_case();
    float *x = host_rand(c * t, 2.0f), *g = host_rand(c, 1.0f), *b = host_rand(c, 0.5f);
    for (int64_t i = 0; i < c * t; i++) x[i] += 0.7f; /* a mean to remove */
    avo_tensor y[2] = {{0}};
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor X = up(s, SHAPE(c, t), x), G = up(s, SHAPE(c), g), B = up(s, SHAPE(c), b);
        y[s] = out_for(s, &y[0]);
        CHECK_OK(avo_op_layer_norm(BE(s), AR(s), &X, affine ? &G : NULL, affine ? &B : NULL, 1e-5f, &y[s], &err), &err);
    }
    char d[128];
    snprintf(d, sizeof d, "[%lld, %lld]%s", (long long)c, (long long)t, affine ? " affine" : "");
    compare("layer_norm", d, &y[0], &y[1], false, 0);
    free(x), free(g), free(b);
}

static void t_group_norm(int64_t c, int64_t t, int groups, bool affine) {
    begin_case();
    float *x = host_rand(c * t, 2.0f), *g = host_rand(c, 1.0f), *b = host_rand(c, 0.5f);
    for (int64_t i = 0; i < c * t; i++) x[i] -= 0.3f;
    avo_tensor y[2] = {{0}};
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor X = up(s, SHAPE(c, t), x), G = up(s, SHAPE(c), g), B = up(s, SHAPE(c), b);
        y[s] = out_for(s, &y[0]);
        CHECK_OK(avo_op_group_norm(BE(s), AR(s), &X, groups, affine ? &G : NULL, affine ? &B : NULL, 1e-5f, &y[s], &err),
                 &err);
    }
    char d[128];
    snprintf(d, sizeof d, "[%lld, %lld] groups %d%s", (long long)c, (long long)t, groups, affine ? " affine" : "");
    compare("group_norm", d, &y[0], &y[1], false, 0);
    free(x), free(g), free(b);
}

static void t_act(avo_act act, int64_t c, int64_t t, float alpha, bool inplace) {
    static const char *names[] = {"relu", "leaky_relu", "gelu", "tanh", "sigmoid", "softplus"};
    begin_case();
    float *x = host_rand(c * t, act == AVO_ACT_SOFTPLUS ? 30.0f : 4.0f);
    avo_tensor y[2] = {{0}};
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor X = up(s, SHAPE(c, t), x);
        if (inplace) {
            CHECK_OK(avo_op_act(BE(s), AR(s), &X, act, alpha, &X, &err), &err);
            y[s] = X;
        } else {
            y[s] = out_for(s, &y[0]);
            CHECK_OK(avo_op_act(BE(s), AR(s), &X, act, alpha, &y[s], &err), &err);
        }
    }
    char d[128];
    snprintf(d, sizeof d, "%s [%lld, %lld]%s", names[act], (long long)c, (long long)t, inplace ? " in place" : "");
    compare("activation", d, &y[0], &y[1], false, 0);
    free(x);
}

/* ymode 0: y has x's shape; 1: y [C]; 2: y [C, 1] */
static void t_binary(int kind, int64_t c, int64_t t, int ymode, bool inplace) {
    begin_case();
    int64_t ny = ymode ? c : c * t;
    float *x = host_rand(c * t, 1.0f), *yv = host_rand(ny, 1.0f);
    avo_tensor o[2] = {{0}};
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor X = up(s, SHAPE(c, t), x);
        avo_tensor Y = ymode == 0 ? up(s, SHAPE(c, t), yv) : ymode == 1 ? up(s, SHAPE(c), yv) : up(s, SHAPE(c, 1), yv);
        avo_tensor *dst = &o[s];
        if (inplace)
            *dst = X;
        else
            *dst = out_for(s, &o[0]);
        CHECK_OK(kind ? avo_op_mul(BE(s), AR(s), &X, &Y, dst, &err) : avo_op_add(BE(s), AR(s), &X, &Y, dst, &err), &err);
    }
    char d[128];
    snprintf(d, sizeof d, "%s [%lld, %lld] by %s%s", kind ? "mul" : "add", (long long)c, (long long)t,
             ymode == 0 ? "same" : ymode == 1 ? "[C]" : "[C, 1]", inplace ? " in place" : "");
    compare("add/mul", d, &o[0], &o[1], false, 0);
    free(x), free(yv);
}

/* An I32 tensor on side s: the values travel bit for bit through the float copy-in. */
static avo_tensor up_ids(int s, const int32_t *ids, int64_t n) {
    float *bits = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    memcpy(bits, ids, (size_t)n * sizeof(int32_t));
    avo_tensor t = up(s, SHAPE(n), bits);
    t.dtype = AVO_DTYPE_I32;
    free(bits);
    return t;
}

static void t_embedding(int64_t rows, int64_t d, int64_t n) {
    begin_case();
    float *table = host_rand(rows * d, 1.0f);
    int32_t *ids = malloc((size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) ids[i] = (int32_t)((frand() + 1.0f) * 0.5f * (float)rows) % (int32_t)rows;
    avo_tensor y[2] = {{0}};
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor T = up(s, SHAPE(rows, d), table), I = up_ids(s, ids, n);
        y[s] = out_for(s, &y[0]);
        CHECK_OK(avo_op_embedding(BE(s), AR(s), &T, &I, &y[s], &err), &err);
    }
    char desc[128];
    snprintf(desc, sizeof desc, "table [%lld, %lld], %lld ids", (long long)rows, (long long)d, (long long)n);
    compare("embedding", desc, &y[0], &y[1], false, 0);
    /* a bad id is an error on both, naming the same position */
    ids[n / 2] = (int32_t)rows;
    char msg[2][AVO_ERROR_MESSAGE_MAX];
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor T = up(s, SHAPE(rows, d), table), I = up_ids(s, ids, n), o = {0};
        CHECK(avo_op_embedding(BE(s), AR(s), &T, &I, &o, &err) == AVO_ERR_INVALID_ARGUMENT);
        snprintf(msg[s], sizeof msg[s], "%s", err.message);
    }
    CHECK_MSG(strcmp(msg[0], msg[1]) == 0, "embedding errors differ: '%s' vs '%s'", msg[0], msg[1]);
    free(table);
    free(ids);
}

static void t_upsample(int64_t c, int64_t tin, int64_t tout, avo_upsample mode) {
    begin_case();
    float *x = host_rand(c * tin, 1.0f);
    avo_tensor y[2] = {{0}};
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor X = up(s, SHAPE(c, tin), x);
        y[s] = out_for(s, &y[0]);
        CHECK_OK(avo_op_upsample(BE(s), AR(s), &X, tout, mode, &y[s], &err), &err);
    }
    char d[128];
    snprintf(d, sizeof d, "%s [%lld, %lld] -> %lld", mode == AVO_UPSAMPLE_LINEAR ? "linear" : "nearest", (long long)c,
             (long long)tin, (long long)tout);
    compare("upsample", d, &y[0], &y[1], false, 0);
    free(x);
}

static void t_pool1d(int64_t c, int64_t t, avo_pool kind, int kernel, int stride, int pad) {
    begin_case();
    float *x = host_rand(c * t, 1.0f);
    avo_tensor y[2] = {{0}};
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor X = up(s, SHAPE(c, t), x);
        y[s] = out_for(s, &y[0]);
        CHECK_OK(avo_op_pool1d(BE(s), AR(s), &X, kind, kernel, stride, pad, &y[s], &err), &err);
    }
    char d[128];
    snprintf(d, sizeof d, "%s [%lld, %lld] k%d s%d p%d", kind == AVO_POOL_MAX ? "max" : "avg", (long long)c, (long long)t,
             kernel, stride, pad);
    compare("pool1d", d, &y[0], &y[1], false, 0);
    free(x);
}

static void t_pool2d(int64_t c, int64_t h, int64_t w, avo_pool kind, int kh, int kw, int sh, int sw, int ph, int pw) {
    begin_case();
    float *x = host_rand(c * h * w, 1.0f);
    avo_pool2d_params p = {{kh, kw}, {sh, sw}, {ph, pw}};
    avo_tensor y[2] = {{0}};
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor X = up(s, SHAPE(c, h, w), x);
        y[s] = out_for(s, &y[0]);
        CHECK_OK(avo_op_pool2d(BE(s), AR(s), &X, kind, &p, &y[s], &err), &err);
    }
    char d[128];
    snprintf(d, sizeof d, "%s [%lld, %lld, %lld] k%dx%d s%d,%d p%d,%d", kind == AVO_POOL_MAX ? "max" : "avg", (long long)c,
             (long long)h, (long long)w, kh, kw, sh, sw, ph, pw);
    compare("pool2d", d, &y[0], &y[1], false, 0);
    free(x);
}

static void t_transpose(int64_t r, int64_t c) {
    begin_case();
    float *x = host_rand(r * c, 1.0f);
    avo_tensor y[2] = {{0}};
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor X = up(s, SHAPE(r, c), x);
        y[s] = out_for(s, &y[0]);
        CHECK_OK(avo_op_transpose(BE(s), AR(s), &X, &y[s], &err), &err);
    }
    char d[64];
    snprintf(d, sizeof d, "[%lld, %lld]", (long long)r, (long long)c);
    compare("transpose", d, &y[0], &y[1], false, 0);
    free(x);
}

static void t_transpose01(int64_t a, int64_t b, int64_t c) {
    begin_case();
    float *x = host_rand(a * b * c, 1.0f);
    avo_tensor y[2] = {{0}};
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor X = up(s, SHAPE(a, b, c), x);
        y[s] = out_for(s, &y[0]);
        CHECK_OK(avo_op_transpose01(BE(s), AR(s), &X, &y[s], &err), &err);
    }
    char d[64];
    snprintf(d, sizeof d, "[%lld, %lld, %lld]", (long long)a, (long long)b, (long long)c);
    compare("transpose01", d, &y[0], &y[1], false, 0);
    free(x);
}

/* copy into a row view of a larger tensor, and an overlapping copy between two row views of one
 * tensor (memmove semantics, as the CPU back end) */
static void t_copy(int64_t rows, int64_t cols) {
    begin_case();
    float *big = host_rand(3 * rows * cols, 1.0f), *x = host_rand(rows * cols, 1.0f);
    avo_tensor y[2] = {{0}}, z[2] = {{0}};
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor B = up(s, SHAPE(3 * rows, cols), big), X = up(s, SHAPE(rows, cols), x);
        avo_tensor v = avo_tensor_rows(&B, rows, rows);
        CHECK_OK(avo_op_copy(BE(s), AR(s), &X, &v, &err), &err);
        y[s] = B;
        avo_tensor B2 = up(s, SHAPE(3 * rows, cols), big);
        avo_tensor src = avo_tensor_rows(&B2, 0, 2 * rows), dst = avo_tensor_rows(&B2, rows / 2 + 1, 2 * rows);
        CHECK_OK(avo_op_copy(BE(s), AR(s), &src, &dst, &err), &err);
        z[s] = B2;
    }
    char d[64];
    snprintf(d, sizeof d, "[%lld, %lld] into rows", (long long)rows, (long long)cols);
    compare("copy", d, &y[0], &y[1], false, 0);
    snprintf(d, sizeof d, "[%lld, %lld] overlapping", (long long)(2 * rows), (long long)cols);
    compare("copy", d, &z[0], &z[1], false, 0);
    free(big), free(x);
}

/* FP16 mode: a weight's half copy must not outlive a write into the weight's memory. */
static void t_half_cache(void) {
    begin_case();
    int64_t rows = 33, in = 48, out = 40;
    float *x = host_rand(rows * in, 1.0f), *w1 = host_rand(out * in, 0.3f), *w2 = host_rand(out * in, 0.3f);
    avo_tensor y[2] = {{0}};
    int64_t f16 = half_gemms();
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor X = up(s, SHAPE(rows, in), x), W = up(s, SHAPE(out, in), w1), W2 = up(s, SHAPE(out, in), w2), t = {0};
        CHECK_OK(avo_op_linear(BE(s), AR(s), &X, &W, NULL, &t, &err), &err); /* caches W's half copy */
        CHECK_OK(avo_op_copy(BE(s), AR(s), &W2, &W, &err), &err);             /* overwrites W */
        y[s] = out_for(s, &y[0]);
        CHECK_OK(avo_op_linear(BE(s), AR(s), &X, &W, NULL, &y[s], &err), &err);
    }
    compare("half cache", "weight overwritten by copy", &y[0], &y[1], true, f16);
    /* the same through an arena reset: new data at the same address */
    begin_case();
    avo_tensor z[2] = {{0}};
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor X = up(s, SHAPE(rows, in), x), W = up(s, SHAPE(out, in), w1), t = {0};
        CHECK_OK(avo_op_linear(BE(s), AR(s), &X, &W, NULL, &t, &err), &err);
    }
    begin_case();
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor X = up(s, SHAPE(rows, in), x), W = up(s, SHAPE(out, in), w2);
        z[s] = out_for(s, &z[0]);
        CHECK_OK(avo_op_linear(BE(s), AR(s), &X, &W, NULL, &z[s], &err), &err);
    }
    compare("half cache", "arena reset, new weight", &z[0], &z[1], true, f16);
    free(x), free(w1), free(w2);
}

/* ---- fused conv1d ----------------------------------------------------------------------------- */

/* GPU avo_op_conv1d_fused against the CPU's separate ops: leaky_relu, conv1d, add. */
static void t_conv1d_fused(int64_t cin, int64_t cout, int64_t t, int64_t k, int s_, int pad, int dil, int g, bool bias,
                           bool act, bool res) {
    begin_case();
    float *x = host_rand(cin * t, 1.0f), *w = host_rand(cout * (cin / g) * k, 0.3f), *b = host_rand(cout, 0.5f);
    avo_conv1d_params p = {s_, pad, dil, g};
    const float slope = 0.1f;
    avo_tensor y[2] = {{0}};
    int64_t f16 = half_gemms();
    avo_error err = {0};
    /* CPU: composed */
    avo_tensor X = up(0, SHAPE(cin, t), x), W = up(0, SHAPE(cout, cin / g, k), w), B = up(0, SHAPE(cout), b), xa = {0};
    if (act) CHECK_OK(avo_op_act(be_cpu, ar_cpu, &X, AVO_ACT_LEAKY_RELU, slope, &xa, &err), &err);
    CHECK_OK(avo_op_conv1d(be_cpu, ar_cpu, act ? &xa : &X, &W, bias ? &B : NULL, &p, &y[0], &err), &err);
    int64_t tout = y[0].shape[1];
    float *r = host_rand(cout * tout, 1.0f);
    if (res) {
        avo_tensor R = up(0, SHAPE(cout, tout), r);
        CHECK_OK(avo_op_add(be_cpu, ar_cpu, &y[0], &R, &y[0], &err), &err);
    }
    /* GPU: fused */
    {
        avo_tensor Xg = up(1, SHAPE(cin, t), x), Wg = up(1, SHAPE(cout, cin / g, k), w), Bg = up(1, SHAPE(cout), b);
        avo_tensor Rg = up(1, SHAPE(cout, tout), r);
        avo_conv1d_fuse f = {act, slope, res ? &Rg : NULL};
        y[1] = out_for(1, &y[0]);
        CHECK_OK(avo_op_conv1d_fused(be_gpu, ar_gpu, &Xg, &Wg, bias ? &Bg : NULL, &p, &f, &y[1], &err), &err);
    }
    char d[128];
    snprintf(d, sizeof d, "%lld->%lld T%lld k%lld s%d p%d d%d g%d%s%s%s", (long long)cin, (long long)cout, (long long)t,
             (long long)k, s_, pad, dil, g, bias ? " +b" : "", act ? " lrelu" : "", res ? " +res" : "");
    compare("conv1d_fused", d, &y[0], &y[1], cin / g > 1, f16);
    free(x), free(w), free(b), free(r);
}

static void run_fused_cases(void) {
    /* HiFi-GAN resblock shapes (mma kernel in FP16: dilated k 3 / 7 / 11), 1x1 (x read in place),
     * depthwise, groups, stride, a residual without activation and the reverse */
    t_conv1d_fused(48, 48, 300, 11, 1, 25, 5, 1, true, true, true);
    t_conv1d_fused(64, 64, 517, 3, 1, 3, 3, 1, true, true, true);
    t_conv1d_fused(32, 32, 257, 7, 1, 3, 1, 1, false, true, true);
    t_conv1d_fused(40, 24, 100, 1, 1, 0, 1, 1, true, true, true);
    t_conv1d_fused(16, 16, 90, 5, 1, 2, 1, 16, true, true, true);
    t_conv1d_fused(24, 36, 77, 3, 1, 1, 1, 3, true, true, false);
    t_conv1d_fused(20, 12, 64, 4, 2, 1, 1, 1, true, false, true);
    t_conv1d_fused(8, 8, 40, 3, 1, 1, 1, 1, false, true, false);
    /* the same entry with this back end's fusion switched off (composed passes), then on again */
    avo_error err = {0};
    CHECK_OK(avo_backend_cuda_set_switch(be_gpu, AVO_CUDA_SW_FUSED, false, &err), &err);
    t_conv1d_fused(48, 48, 300, 11, 1, 25, 5, 1, true, true, true);
    t_conv1d_fused(24, 36, 77, 3, 1, 1, 1, 3, true, true, false);
    CHECK_OK(avo_backend_cuda_set_switch(be_gpu, AVO_CUDA_SW_FUSED, true, &err), &err);
    CHECK(avo_backend_cuda_set_switch(be_cpu, AVO_CUDA_SW_FUSED, false, &err) == AVO_ERR_INVALID_ARGUMENT);
}

/* ---- INT8 ------------------------------------------------------------------------------------- */

static void int8_counts(int64_t *ran, int64_t *skipped) {
    avo_error err = {0};
    CHECK_OK(avo_backend_cuda_int8_counts(be_gpu, ran, skipped, &err), &err);
}

static float absmax(const float *v, int64_t n) {
    float m = 0;
    for (int64_t i = 0; i < n; i++) m = fabsf(v[i]) > m ? fabsf(v[i]) : m;
    return m;
}

/* y = x w^T + b (conv: y = w x + b on [in, t]) in INT8 mode against (1) the CPU simulation, (2) the
 * exact integer product of calibrate.c's quantised values, (3) FP32 (reported). clip < 1 sets the
 * input scale below max|x| / 127, so that the clamp is exercised. */
static void t_int8(bool conv, int64_t rows, int64_t in, int64_t out, bool bias, float clip) {
    begin_case();
    avo_error err = {0};
    float *x = host_rand(rows * in, 1.0f), *w = host_rand(out * in, 0.3f), *b = host_rand(out, 0.5f);
    for (int64_t o = 0; o < out; o++) /* uneven channel ranges: per-channel scales matter */
        for (int64_t i = 0; i < in; i++) w[o * in + i] *= 0.2f + (float)(o % 7) * 0.3f;
    avo_gemm_kind kind = conv ? AVO_GEMM_CONV1D : AVO_GEMM_LINEAR;
    avo_tensor wv = conv ? avo_tensor_view(AVO_DTYPE_F32, 3, (int64_t[]){out, in, 1}, w) : avo_tensor_view2(w, out, in);
    char name[AVO_CALIB_NAME_MAX];
    avo_calib_weight_name(kind, &wv, name);
    avo_calib_table *tab = NULL;
    CHECK_OK(avo_calib_table_create(0, &tab, &err), &err);
    const float xs = avo_calib_scale_from_threshold(clip * absmax(x, rows * in));
    CHECK_OK(avo_calib_table_set(tab, name, xs, &err), &err);
    /* exact reference: integer sums of the quantised operands, dequantised as the contract says */
    int8_t *xq = malloc((size_t)(rows * in)), *wq = malloc((size_t)(out * in));
    float *ws = malloc(sizeof(float) * (size_t)out);
    avo_calib_quantize(x, rows * in, xs, xq);
    CHECK_OK(avo_calib_weight_scales(kind, &wv, 1, ws, &err), &err);
    for (int64_t o = 0; o < out; o++) avo_calib_quantize(w + o * in, in, ws[o], wq + o * in);
    int64_t ny = rows * out;
    float *exact = malloc(sizeof(float) * (size_t)ny);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < out; o++) {
            int64_t acc = 0;
            for (int64_t i = 0; i < in; i++)
                acc += (int64_t)(conv ? xq[i * rows + r] : xq[r * in + i]) * wq[o * in + i];
            double v = (double)acc * ((double)xs * ws[o]) + (bias ? b[o] : 0.0);
            exact[conv ? o * rows + r : r * out + o] = (float)v;
        }
    avo_calib_sim *sim = NULL;
    CHECK_OK(avo_calib_sim_create(tab, true, &sim, &err), &err);
    int64_t i8a = 0, i8s = 0, i8b = 0, i8t = 0;
    int64_t shx[2] = {conv ? in : rows, conv ? rows : in}, shw[3] = {out, in, 1};
    float *got[3] = {NULL, NULL, NULL}; /* sim, gpu int8, cpu fp32 */
    for (int pass = 0; pass < 3; pass++) {
        int s = pass == 1;
        avo_tensor X = up(s, 2, shx, x), W = up(s, conv ? 3 : 2, shw, w), B = up(s, SHAPE(out), b), y = {0};
        if (pass == 0) CHECK_OK(avo_calib_sim_attach(sim, be_cpu, &err), &err);
        if (pass == 1) {
            CHECK_OK(avo_backend_cuda_set_calibration(be_gpu, tab, &err), &err);
            CHECK_OK(avo_backend_cuda_set_precision(be_gpu, AVO_CUDA_INT8, &err), &err);
            int8_counts(&i8a, &i8s);
        }
        if (conv) {
            avo_conv1d_params p = {1, 0, 1, 1};
            CHECK_OK(avo_op_conv1d(BE(s), AR(s), &X, &W, bias ? &B : NULL, &p, &y, &err), &err);
        } else {
            CHECK_OK(avo_op_linear(BE(s), AR(s), &X, &W, bias ? &B : NULL, &y, &err), &err);
        }
        if (pass == 0) avo_calib_sim_detach(sim, be_cpu);
        if (pass == 1) int8_counts(&i8b, &i8t);
        got[pass] = y.data ? down(s, &y) : NULL;
    }
    int64_t quantised = 0, skipped = 0;
    avo_calib_sim_counts(sim, &quantised, &skipped);
    CHECK_MSG(quantised == 1 && skipped == 0, "int8: the simulation quantised %lld op(s)", (long long)quantised);
    CHECK_MSG(i8b == i8a + 1 && i8t == i8s, "int8: INT8 GEMMs %lld -> %lld, skipped %lld -> %lld", (long long)i8a,
              (long long)i8b, (long long)i8s, (long long)i8t);
    char d[128];
    snprintf(d, sizeof d, "%s %lldx%lld->%lld%s clip %.2f", conv ? "conv1x1" : "linear", (long long)rows, (long long)in,
             (long long)out, bias ? " +b" : "", clip);
    if (got[0] && got[1] && got[2]) {
        double worst_steps = 0, e_exact = avo_test_rel_error(got[1], exact, ny);
        for (int64_t i = 0; i < ny; i++) {
            int64_t o = conv ? i / rows : i % out;
            double steps = fabs((double)got[1][i] - got[0][i]) / ((double)xs * ws[o]);
            if (!(steps <= worst_steps)) worst_steps = steps;
        }
        double e_sim = avo_test_rel_error(got[1], got[0], ny), e_fp32 = avo_test_rel_error(got[1], got[2], ny);
        fprintf(stderr, "%-17s int8  %-40s vs sim %.2e (worst %.3f steps), vs exact %.2e, vs fp32 %.2e\n", "int8", d,
                e_sim, worst_steps, e_exact, e_fp32);
        CHECK_MSG(worst_steps <= 2.0, "int8 %s: %.3f quantisation steps from the CPU simulation", d, worst_steps);
        CHECK_MSG(e_exact < 1e-6, "int8 %s: relative error %.3g against the exact integer result", d, e_exact);
        /* unclipped, the error against FP32 is that of 8-bit operands (measured 4.5e-3 and 4.9e-3 on an
         * H100); clipped inputs (clip < 1) lose their outliers by design, and are only reported */
        if (clip >= 1.0f) CHECK_MSG(e_fp32 < 2e-2, "int8 %s: relative error %.3g against FP32", d, e_fp32);
        record(conv ? "int8 conv1x1 sim" : "int8 linear sim", e_sim);
        record(conv ? "int8 conv1x1 fp32" : "int8 linear fp32", e_fp32);
    } else {
        CHECK_MSG(0, "int8 %s: no result", d);
    }
    /* the INT8 copy must not outlive a write into the weight: W overwritten by another weight
     * (a name the table lacks) must run FP16 and be counted as skipped */
    {
        float *w2 = host_rand(out * in, 0.3f);
        avo_tensor X = up(1, 2, shx, x), W = up(1, conv ? 3 : 2, shw, w), W2 = up(1, conv ? 3 : 2, shw, w2);
        avo_tensor y = {0}, y2 = {0};
        avo_conv1d_params p = {1, 0, 1, 1};
        if (conv) {
            CHECK_OK(avo_op_conv1d(be_gpu, ar_gpu, &X, &W, NULL, &p, &y, &err), &err);
            CHECK_OK(avo_op_copy(be_gpu, ar_gpu, &W2, &W, &err), &err);
            int8_counts(&i8a, &i8s);
            CHECK_OK(avo_op_conv1d(be_gpu, ar_gpu, &X, &W, NULL, &p, &y2, &err), &err);
        } else {
            CHECK_OK(avo_op_linear(be_gpu, ar_gpu, &X, &W, NULL, &y, &err), &err);
            CHECK_OK(avo_op_copy(be_gpu, ar_gpu, &W2, &W, &err), &err);
            int8_counts(&i8a, &i8s);
            CHECK_OK(avo_op_linear(be_gpu, ar_gpu, &X, &W, NULL, &y2, &err), &err);
        }
        int8_counts(&i8b, &i8t);
        CHECK_MSG(i8b == i8a && i8t == i8s + 1, "int8 %s: an overwritten weight still ran INT8", d);
        /* FP32 of the new weight on the CPU */
        avo_tensor Xc = up(0, 2, shx, x), Wc = up(0, conv ? 3 : 2, shw, w2), yc = {0};
        if (conv)
            CHECK_OK(avo_op_conv1d(be_cpu, ar_cpu, &Xc, &Wc, NULL, &p, &yc, &err), &err);
        else
            CHECK_OK(avo_op_linear(be_cpu, ar_cpu, &Xc, &Wc, NULL, &yc, &err), &err);
        if (y2.data && yc.data) {
            float *g2 = down(1, &y2), *c2 = down(0, &yc);
            double e = avo_test_rel_error(g2, c2, ny);
            CHECK_MSG(e < TOL_FP16, "int8 %s: FP16 fallback relative error %.3g", d, e);
            free(g2), free(c2);
        }
        free(w2);
    }
    CHECK_OK(avo_backend_cuda_set_precision(be_gpu, AVO_CUDA_FP32, &err), &err);
    CHECK_OK(avo_backend_cuda_set_calibration(be_gpu, NULL, &err), &err);
    avo_calib_sim_free(sim);
    avo_calib_table_free(tab);
    free(x), free(w), free(b), free(xq), free(wq), free(ws), free(exact);
    for (int i = 0; i < 3; i++) free(got[i]);
}

/* Sizes the INT8 GEMM does not take run FP16 and count as skipped; INT8 needs a table. */
static void t_int8_refusals(void) {
    begin_case();
    avo_error err = {0};
    CHECK(avo_backend_cuda_set_precision(be_gpu, AVO_CUDA_INT8, &err) == AVO_ERR_INVALID_ARGUMENT);
    int64_t rows = 21, in = 24, out = 10; /* in not a multiple of 16 */
    float *x = host_rand(rows * in, 1.0f), *w = host_rand(out * in, 0.3f);
    avo_tensor wv = avo_tensor_view2(w, out, in);
    char name[AVO_CALIB_NAME_MAX];
    avo_calib_weight_name(AVO_GEMM_LINEAR, &wv, name);
    avo_calib_table *tab = NULL;
    CHECK_OK(avo_calib_table_create(0, &tab, &err), &err);
    CHECK_OK(avo_calib_table_set(tab, name, 0.01f, &err), &err);
    CHECK_OK(avo_backend_cuda_set_calibration(be_gpu, tab, &err), &err);
    CHECK_OK(avo_backend_cuda_set_precision(be_gpu, AVO_CUDA_INT8, &err), &err);
    CHECK(strcmp(avo_backend_name(be_gpu), "cuda-int8") == 0);
    int64_t a0 = 0, s0 = 0, a1 = 0, s1 = 0, h0 = half_gemms();
    int8_counts(&a0, &s0);
    avo_tensor X = up(1, SHAPE(rows, in), x), W = up(1, SHAPE(out, in), w), y = {0};
    CHECK_OK(avo_op_linear(be_gpu, ar_gpu, &X, &W, NULL, &y, &err), &err);
    int8_counts(&a1, &s1);
    CHECK_MSG(a1 == a0 && s1 == s0 + 1 && half_gemms() == h0 + 1, "int8: unaligned linear: int8 %lld->%lld, skipped "
              "%lld->%lld", (long long)a0, (long long)a1, (long long)s0, (long long)s1);
    /* forgetting the table leaves INT8 mode */
    CHECK_OK(avo_backend_cuda_set_calibration(be_gpu, NULL, &err), &err);
    CHECK(strcmp(avo_backend_name(be_gpu), "cuda-fp16") == 0);
    CHECK_OK(avo_backend_cuda_set_precision(be_gpu, AVO_CUDA_FP32, &err), &err);
    avo_calib_table_free(tab);
    free(x), free(w);
}

static void run_int8_cases(void) {
    t_int8_refusals();
    t_int8(false, 37, 64, 20, true, 1.0f);
    t_int8(false, 257, 768, 256, true, 0.6f);
    t_int8(false, 1000, 768, 3072, false, 0.8f);
    t_int8(true, 333, 768, 768, true, 1.0f);
    t_int8(true, 100, 48, 36, false, 0.5f);
}

static void run_gemm_cases(void) {
    t_linear(1, 5, 7, 3, true);
    t_linear(1, 1, 1, 1, false);
    t_linear(2, 9, 33, 17, true);
    t_linear(1, 257, 768, 256, true);
    t_linear(1, 100, 64, 1000, false);
    /* conv1d: plain 1x1 (groups too), k>1 with stride/padding/dilation, HuBERT's first layer and a
     * grouped even-kernel positional conv, depthwise (multiplier 1 and 2) */
    t_conv1d(16, 32, 100, 1, 1, 0, 1, 1, true);
    t_conv1d(12, 20, 64, 1, 1, 0, 1, 4, false);
    t_conv1d(4, 6, 50, 3, 1, 1, 1, 1, true);
    t_conv1d(6, 9, 37, 5, 2, 2, 1, 3, true);
    t_conv1d(3, 5, 29, 4, 3, 1, 2, 1, false);
    t_conv1d(1, 16, 401, 10, 5, 0, 1, 1, false);
    t_conv1d(32, 32, 61, 16, 1, 8, 1, 4, true);
    t_conv1d(8, 8, 40, 3, 1, 3, 3, 8, true);
    t_conv1d(4, 8, 33, 3, 2, 1, 1, 4, false);
    t_conv1d(64, 64, 700, 3, 1, 1, 1, 1, true);
    t_conv1d(1, 1, 5, 5, 1, 0, 1, 1, false);
    /* depthwise with up to 16 taps (the register kernel; HuBERT's first layer at 1 s) and more (the other) */
    t_conv1d(1, 512, 16000, 10, 5, 0, 1, 1, false);
    t_conv1d(4, 8, 200, 20, 1, 10, 1, 4, true);
    /* shapes of the FP16 implicit-GEMM kernel (16+ input channels per group): HiFi-GAN resblocks
     * (dilated k 11, channels not a multiple of the 64-channel tile, frames not of the 128-frame
     * tile, input channels not of the 32-channel chunk), HuBERT's strided layers, a grouped
     * positional conv with an even kernel longer than the frame tile, and a two-tile channel count */
    t_conv1d(48, 80, 300, 11, 1, 25, 5, 1, true);
    t_conv1d(20, 70, 257, 7, 1, 3, 1, 1, true);
    t_conv1d(40, 33, 1001, 3, 2, 0, 1, 1, false);
    t_conv1d(96, 64, 203, 2, 2, 0, 1, 1, false);
    /* strided, few taps, 512+ channels x taps (HuBERT's feature extractor) */
    t_conv1d(512, 64, 1001, 3, 2, 0, 1, 1, true);
    t_conv1d(256, 40, 600, 2, 2, 0, 1, 1, false);
    t_conv1d(96, 96, 517, 128, 1, 64, 1, 2, true);
    t_conv1d(130, 130, 129, 3, 1, 1, 1, 1, true);
    t_conv1d(32, 32, 1, 3, 1, 1, 1, 1, true);
    /* 1x1 in FP16 through frames-major half operands (frames not a multiple of 8), and aligned frames */
    t_conv1d(64, 48, 203, 1, 1, 0, 1, 1, true);
    t_conv1d(768, 768, 1499, 1, 1, 0, 1, 1, true);
    t_conv1d(48, 40, 64, 1, 1, 0, 1, 1, false);
    /* transposed: vocoder-like upsampling (k 16 s 8 p 4; k 4 s 2 p 1), groups with output padding,
     * dilation, kernel shorter than the stride */
    t_convt1d(8, 4, 20, 16, 8, 4, 0, 1, 1, true);
    t_convt1d(16, 8, 33, 4, 2, 1, 0, 1, 1, false);
    t_convt1d(6, 6, 15, 4, 2, 1, 1, 3, 1, true);
    t_convt1d(5, 3, 11, 3, 1, 1, 0, 1, 2, true);
    t_convt1d(4, 4, 7, 2, 3, 0, 2, 2, 1, false);
    t_convt1d(64, 32, 120, 20, 10, 5, 0, 1, 1, true);
    /* 2-D: RMVPE-like 3x3 blocks with residual, strides, dilation, groups, 1x1, transposed (2,2) */
    t_conv2d(4, 8, 17, 23, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, true, true);
    t_conv2d(8, 8, 16, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, false, true);
    t_conv2d(3, 6, 15, 14, 3, 5, 2, 1, 1, 2, 1, 2, 3, true, true, false);
    t_conv2d(6, 4, 12, 9, 1, 1, 1, 1, 0, 0, 1, 1, 2, false, false, false);
    t_conv2d(16, 16, 40, 128, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, true, true);
    /* direct 3x3 kernel: RMVPE-like levels (partial tiles on both axes, channels not of the 16-channel
     * block or the 8-channel chunk, 64 channels), then the same through im2col + GEMM */
    for (int pass = 0; pass < 2; pass++) {
        avo_error err = {0};
        direct2d = pass == 0;
        CHECK_OK(avo_backend_cuda_set_switch(be_gpu, AVO_CUDA_SW_DIRECT_CONV2D, direct2d, &err), &err);
        t_conv2d(16, 16, 301, 128, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, true, true);
        t_conv2d(24, 40, 70, 45, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, true, true);
        t_conv2d(32, 16, 75, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, false, true);
        t_conv2d(64, 64, 37, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, false, true, false);
        t_conv2d(16, 3, 20, 50, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, false, false);
        t_conv2d(1, 16, 33, 129, 3, 3, 1, 1, 1, 1, 1, 1, 1, true, true, false);
    }
    direct2d = true;
    {
        avo_error err = {0};
        CHECK_OK(avo_backend_cuda_set_switch(be_gpu, AVO_CUDA_SW_DIRECT_CONV2D, true, &err), &err);
    }
    t_convt2d(8, 4, 9, 16, 3, 3, 2, 2, 1, 1, 1, 1, true, true);
    t_convt2d(5, 3, 7, 6, 2, 2, 2, 2, 0, 0, 0, 0, false, false);
    t_convt2d(4, 6, 5, 8, 3, 2, 1, 2, 1, 0, 0, 1, true, false);
    t_bigru(23, 12, 8, true);
    t_bigru(9, 5, 3, false);
    t_bigru(80, 384, 256, true);
    /* H 256 on sm_90: the cluster kernel; a long sequence (error carried over 1000 steps), no biases */
    t_bigru(1000, 384, 256, true);
    t_bigru(301, 64, 256, false);
    {
        avo_error err = {0};
        CHECK_OK(avo_backend_cuda_set_switch(be_gpu, AVO_CUDA_SW_GRU_CLUSTER, false, &err), &err); /* the cooperative kernel */
        t_bigru(301, 64, 256, true);
        CHECK_OK(avo_backend_cuda_set_switch(be_gpu, AVO_CUDA_SW_GRU_CLUSTER, true, &err), &err);
    }
    t_bigru(17, 20, 100, true); /* W_hh split over blocks of uneven sizes */
    t_bigru(12, 30, 300, false);
}

/* FP16 mode: attention with 64- or 96-channel heads runs the fused flash-style kernel (counted as a half
 * GEMM): frame counts below, at and across its 64-frame tiles (keys past T masked), HuBERT's 12 heads
 * at 1499 frames; relative positions (window up to 11, embeddings shared or per head) including RVC's
 * text encoder (2 heads of 96, window 10, 2998 frames) and a sequence shorter than the window; and
 * what it does not take (head size 32, window 12, windowed with AVO_CUDA_SW_FLASH_REL off) on the
 * GEMM path. */
static void run_half_attention_cases(void) {
    const struct { int64_t c, t; int heads, window; bool shared, fused; } cs[] = {
        {64, 1, 1, 0, false, true},     {128, 63, 2, 0, false, true},    {128, 64, 2, 0, false, true},
        {192, 65, 3, 0, false, true},   {128, 300, 2, 0, false, true},   {768, 1499, 12, 0, false, true},
        {192, 130, 2, 0, false, true},  {128, 90, 2, 4, false, true},    {192, 300, 2, 10, true, true},
        {192, 2998, 2, 10, true, true}, {192, 77, 2, 10, false, true},   {96, 5, 1, 10, true, true},
        {128, 200, 2, 11, false, true}, {64, 100, 2, 0, false, false},   {192, 100, 2, 12, true, false}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        int64_t f16 = half_gemms();
        t_attention(cs[i].c, cs[i].t, cs[i].heads, cs[i].window, cs[i].shared);
        if (cs[i].fused) CHECK_MSG(half_gemms() > f16, "attention C%lld T%lld window %d: the fused half kernel did not run",
                                   (long long)cs[i].c, (long long)cs[i].t, cs[i].window);
        else CHECK_MSG(half_gemms() == f16, "attention C%lld T%lld window %d: ran a half kernel it does not take",
                       (long long)cs[i].c, (long long)cs[i].t, cs[i].window);
    }
    avo_error err = {0};
    CHECK_OK(avo_backend_cuda_set_switch(be_gpu, AVO_CUDA_SW_FLASH_REL, false, &err), &err);
    int64_t f16 = half_gemms();
    t_attention(192, 300, 2, 10, true);
    CHECK_MSG(half_gemms() == f16, "attention with AVO_CUDA_SW_FLASH_REL off ran the fused kernel");
    CHECK_OK(avo_backend_cuda_set_switch(be_gpu, AVO_CUDA_SW_FLASH_REL, true, &err), &err);
}

static void run_other_cases(void) {
    t_attention(8, 13, 2, 0, false);
    t_attention(12, 50, 3, 4, false);
    t_attention(16, 37, 2, 10, true);
    t_attention(8, 5, 2, 10, true); /* shorter than the window */
    t_attention(64, 300, 4, 0, false);
    t_layer_norm(7, 33, true);
    t_layer_norm(192, 257, true);
    t_layer_norm(5, 3, false);
    /* 256..1024 channels: the register kernel (HuBERT's 768 at 1499 frames; partial tiles; no affine) */
    t_layer_norm(768, 1499, true);
    t_layer_norm(1024, 40, true);
    t_layer_norm(300, 17, false);
    t_group_norm(6, 50, 1, true);
    t_group_norm(32, 401, 32, true);
    t_group_norm(12, 77, 4, false);
    t_group_norm(8, 20000, 2, true);
    for (int act = 0; act <= AVO_ACT_SOFTPLUS; act++) t_act((avo_act)act, 17, 93, 0.1f, act == AVO_ACT_GELU);
    t_act(AVO_ACT_GELU, 3, 100003, 0.0f, false);
    for (int kind = 0; kind < 2; kind++)
        for (int ym = 0; ym < 3; ym++) t_binary(kind, 13, 71, ym, ym == 1);
    t_binary(0, 300, 1000, 0, false);
    /* 16-byte vector paths: element counts and rows that are multiples of 4 */
    for (int act = 0; act <= AVO_ACT_SOFTPLUS; act++) t_act((avo_act)act, 16, 96, 0.2f, act % 2 == 0);
    for (int kind = 0; kind < 2; kind++)
        for (int ym = 0; ym < 3; ym++) t_binary(kind, 12, 64, ym, ym != 1);
    t_embedding(11, 7, 20);
    t_embedding(256, 192, 300);
    t_upsample(5, 13, 40, AVO_UPSAMPLE_NEAREST);
    t_upsample(5, 13, 40, AVO_UPSAMPLE_LINEAR);
    t_upsample(3, 40, 13, AVO_UPSAMPLE_LINEAR);
    t_upsample(3, 7, 7, AVO_UPSAMPLE_NEAREST);
    t_upsample(2, 100, 1001, AVO_UPSAMPLE_LINEAR);
    t_pool1d(6, 31, AVO_POOL_MAX, 3, 2, 1);
    t_pool1d(6, 31, AVO_POOL_AVG, 4, 0, 2);
    t_pool1d(3, 10, AVO_POOL_AVG, 3, 1, 0);
    t_pool2d(4, 17, 23, AVO_POOL_AVG, 2, 2, 0, 0, 0, 0);
    t_pool2d(3, 9, 10, AVO_POOL_MAX, 3, 2, 2, 1, 1, 1);
    t_pool2d(2, 8, 128, AVO_POOL_AVG, 1, 2, 1, 2, 0, 0);
    t_transpose(37, 53);
    t_transpose(1, 100);
    t_transpose(64, 64);
    t_transpose(1000, 3);
    t_transpose01(5, 7, 3);
    t_transpose01(16, 50, 128);
    t_copy(5, 33);
    t_copy(64, 100);
}

/* ---- HuBERT end to end ---------------------------------------------------------------------- */

static char hubert_dir[600];

/* 1 if the small model and its golden data are in hubert_dir, 0 if torch is missing. */
static int hubert_golden(void) {
    char path[800], src[600], cmd[2400];
    const char *given = getenv("AVO_HUBERT_GOLDEN");
    if (given && *given) {
        snprintf(hubert_dir, sizeof hubert_dir, "%s", given);
        snprintf(path, sizeof path, "%s/golden.json", hubert_dir);
        return access(path, R_OK) == 0;
    }
    avo_test_tmp_dir("engine_cuda_hubert", hubert_dir, sizeof hubert_dir);
    const char *env = getenv("AVO_SOURCE_DIR");
    snprintf(src, sizeof src, "%s", env && *env ? env : __FILE__);
    char *cut = env && *env ? NULL : strstr(src, "tests/unit/");
    if (cut) snprintf(cut, sizeof src - (size_t)(cut - src), ".");
    static const char *pythons[] = {"/usr/bin/python3", "python3"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/TORCH_MISSING", hubert_dir);
        unlink(path);
        snprintf(cmd, sizeof cmd, "%s '%s/tests/reference/hubert_golden.py' '%s' > '%s/gen.log' 2>&1", pythons[i], src,
                 hubert_dir, hubert_dir);
        if (system(cmd) == 0 && access(path, F_OK) != 0) return 1;
    }
    return 0;
}

static float *golden_tensor(const cJSON *js, const char *name, int64_t *n) {
    const cJSON *e = cJSON_GetObjectItem(cJSON_GetObjectItem(js, "tensors"), name);
    if (!e) return NULL;
    char path[900];
    snprintf(path, sizeof path, "%s/%s", hubert_dir, cJSON_GetObjectItem(e, "file")->valuestring);
    size_t size = 0;
    float *d = (float *)avo_test_read_file(path, &size);
    *n = (int64_t)(size / 4);
    return d;
}

static void hubert_case(avo_hubert *m[2], const cJSON *js, const float *audio, int64_t n, const char *name, bool proj) {
    int64_t gn = 0;
    float *want = golden_tensor(js, name, &gn), *got[2] = {NULL, NULL};
    CHECK_MSG(want != NULL, "golden %s missing", name);
    int64_t count[2] = {0, 0};
    for (int s = 0; s < 2; s++) {
        avo_error err = {0};
        avo_tensor out = {0};
        avo_arena_reset(AR(s));
        double t0 = avo_now_ms();
        CHECK_OK(avo_hubert_extract(m[s], AR(s), audio, n, avo_hubert_layers(m[s]), proj, &out, &err), &err);
        if (!out.data) continue;
        count[s] = avo_tensor_numel(&out);
        got[s] = down(s, &out);
        fprintf(stderr, "hubert %-10s on %-9s [%lld, %lld] in %.1f ms\n", name, avo_backend_name(BE(s)),
                (long long)out.shape[0], (long long)out.shape[1], avo_now_ms() - t0);
    }
    if (want && got[0] && got[1] && count[0] == gn && count[1] == gn) {
        double e_cpu = avo_test_rel_error(got[1], got[0], gn), e_ref = avo_test_rel_error(got[1], want, gn), e_cpu_ref = avo_test_rel_error(got[0], want, gn);
        double bound = fp16 ? TOL_MODEL_FP16 : TOL_MODEL;
        fprintf(stderr, "hubert %-10s %s: cuda vs cpu %.2e, cuda vs torch %.2e (cpu vs torch %.2e)\n", name,
                fp16 ? "fp16" : "fp32", e_cpu, e_ref, e_cpu_ref);
        CHECK_MSG(e_cpu < bound && e_ref < bound, "hubert %s (%s): cuda vs cpu %.3g, vs torch %.3g, bound %g", name,
                  fp16 ? "fp16" : "fp32", e_cpu, e_ref, bound);
        record(proj ? "hubert final_proj" : "hubert last layer", e_ref);
    } else {
        CHECK_MSG(0, "hubert %s: sizes %lld / %lld, golden %lld", name, (long long)count[0], (long long)count[1],
                  (long long)gn);
    }
    free(want), free(got[0]), free(got[1]);
}

/* CUDA Graphs (engine_cuda.h): runs of the same length are captured on the second run and replayed
 * after it; every run has other samples, and each result must match the CPU's on its own samples (a
 * replay that computed nothing, or read stale memory, returns the previous run's features). Then a
 * shorter input (a new stretch, run plainly), and graphs switched off. */
static void t_hubert_graphs(avo_hubert *m[2], const float *audio, int64_t n) {
    avo_error err = {0};
    int64_t l0 = 0, c0 = 0, l1 = 0, c1 = 0;
    CHECK_OK(avo_backend_cuda_set_graphs(be_gpu, false, &err), &err); /* forget the runs of hubert_case */
    CHECK_OK(avo_backend_cuda_set_graphs(be_gpu, true, &err), &err);
    CHECK_OK(avo_backend_cuda_graph_counts(be_gpu, &l0, &c0, &err), &err);
    float *x = malloc(sizeof(float) * (size_t)n);
    const int64_t lens[6] = {n, n, n, n, n - 800, n};
    for (int r = 0; r < 6; r++) {
        if (r == 5) CHECK_OK(avo_backend_cuda_set_graphs(be_gpu, false, &err), &err);
        int64_t len = lens[r];
        for (int64_t i = 0; i < len; i++) x[i] = audio[(i + 97 * r) % n] * (1.0f - 0.12f * (float)r);
        float *got[2] = {NULL, NULL};
        int64_t cnt[2] = {0, 0};
        for (int s = 0; s < 2; s++) {
            avo_tensor out = {0};
            avo_arena_reset(AR(s));
            CHECK_OK(avo_hubert_extract(m[s], AR(s), x, len, avo_hubert_layers(m[s]), false, &out, &err), &err);
            if (!out.data) continue;
            cnt[s] = avo_tensor_numel(&out);
            got[s] = down(s, &out);
        }
        if (got[0] && got[1] && cnt[0] == cnt[1]) {
            double e = avo_test_rel_error(got[1], got[0], cnt[0]);
            fprintf(stderr, "hubert graphs %s run %d (%lld samples): cuda vs cpu %.2e\n", fp16 ? "fp16" : "fp32", r,
                    (long long)len, e);
            CHECK_MSG(e < (fp16 ? TOL_MODEL_FP16 : TOL_MODEL), "hubert graphs run %d: cuda vs cpu %.3g", r, e);
        } else {
            CHECK_MSG(0, "hubert graphs run %d: sizes %lld / %lld", r, (long long)cnt[0], (long long)cnt[1]);
        }
        free(got[0]), free(got[1]);
        if (r == 3) { /* runs 0..3: one capture (run 1, or 2 if the arena grew in run 0), launched and replayed */
            CHECK_OK(avo_backend_cuda_graph_counts(be_gpu, &l1, &c1, &err), &err);
            CHECK_MSG(c1 - c0 == 1 && l1 - l0 >= 2, "hubert graphs: %lld captures, %lld launches (want 1, >= 2)",
                      (long long)(c1 - c0), (long long)(l1 - l0));
        }
    }
    CHECK_OK(avo_backend_cuda_graph_counts(be_gpu, &l0, &c0, &err), &err);
    CHECK_MSG(l0 == l1 && c0 == c1, "hubert graphs: a new length or graphs off still launched a graph");
    CHECK_OK(avo_backend_cuda_set_graphs(be_gpu, true, &err), &err);
    CHECK(avo_backend_cuda_set_graphs(be_cpu, true, &err) == AVO_ERR_INVALID_ARGUMENT);
    free(x);
}

static void test_hubert(void) {
    int have = hubert_golden();
    if (have != 1) {
        fprintf(stderr, "SKIP: HuBERT end to end: no torch to make the small model (set AVO_HUBERT_GOLDEN to a "
                        "directory made by tests/reference/hubert_golden.py)\n");
        return;
    }
    char path[800];
    snprintf(path, sizeof path, "%s/golden.json", hubert_dir);
    char *text = avo_test_read_file(path, NULL);
    cJSON *js = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK_MSG(js != NULL, "cannot read %s", path);
    if (!js) return;
    snprintf(path, sizeof path, "%s/hubert_small.pt", hubert_dir);
    avo_hubert *m[2] = {NULL, NULL};
    avo_error err = {0};
    CHECK_OK(avo_hubert_load(path, be_cpu, &m[0], &err), &err);
    avo_status st = avo_hubert_load(path, be_gpu, &m[1], &err);
    if (st == AVO_ERR_UNSUPPORTED) {
        /* src/models/hubert.c still refuses device memory */
        fprintf(stderr, "SKIP: HuBERT end to end: %s\n", err.message);
    } else {
        CHECK_OK(st, &err);
        int64_t n = 0;
        float *audio = golden_tensor(js, "audio_16k", &n);
        CHECK(audio != NULL);
        if (m[0] && m[1] && audio) {
            for (int pass = 0; pass < 2; pass++) {
                fp16 = pass == 1;
                CHECK_OK(avo_backend_cuda_set_precision(be_gpu, fp16 ? AVO_CUDA_FP16 : AVO_CUDA_FP32, &err), &err);
                hubert_case(m, js, audio, n, "layer2", false);
                hubert_case(m, js, audio, n, "final_proj", true);
                t_hubert_graphs(m, audio, n);
            }
            fp16 = false;
            CHECK_OK(avo_backend_cuda_set_precision(be_gpu, AVO_CUDA_FP32, &err), &err);
        }
        free(audio);
    }
    avo_hubert_free(m[0]);
    avo_hubert_free(m[1]);
    cJSON_Delete(js);
}

/* ---- main ----------------------------------------------------------------------------------- */

static int skip(const char *why) {
    const char *req = getenv("AVO_REQUIRE_CUDA");
    if (req && *req) {
        CHECK_MSG(0, "AVO_REQUIRE_CUDA is set but %s", why);
    } else {
        fprintf(stderr, "SKIP: %s; the CUDA back end is not tested\n", why);
    }
    TEST_MAIN_END();
}

int main(void) {
    avo_error err = {0};
    avo_status st = avo_backend_cuda_create(-1, &be_gpu, &err);
    if (!avo_backend_cuda_built()) {
        CHECK(st == AVO_ERR_UNSUPPORTED && be_gpu == NULL && strstr(err.message, "without CUDA") != NULL);
        CHECK(avo_backend_cuda_set_precision(NULL, AVO_CUDA_FP16, &err) == AVO_ERR_UNSUPPORTED);
        return skip("this build has no CUDA back end");
    }
    if (st != AVO_OK) {
        CHECK(st == AVO_ERR_UNSUPPORTED && be_gpu == NULL && err.message[0]);
        char why[AVO_ERROR_MESSAGE_MAX + 32];
        snprintf(why, sizeof why, "no GPU (%s)", err.message);
        return skip(why);
    }
    CHECK_OK(avo_backend_cpu_create(2, &be_cpu, &err), &err);
    CHECK_OK(avo_arena_create(be_cpu, 16u << 20, &ar_cpu, &err), &err);
    CHECK_OK(avo_arena_create(be_gpu, 16u << 20, &ar_gpu, &err), &err);
    if (!be_cpu || !ar_cpu || !ar_gpu) TEST_MAIN_END();
    CHECK(strcmp(avo_backend_name(be_gpu), "cuda") == 0);
    CHECK(!avo_backend_host_memory(be_gpu));
    CHECK(avo_backend_cuda_set_precision(be_cpu, AVO_CUDA_FP16, &err) == AVO_ERR_INVALID_ARGUMENT);

    /* FP32: every op */
    run_gemm_cases();
    run_other_cases();
    run_fused_cases();
    int64_t f16 = -1;
    CHECK_OK(avo_backend_cuda_gemm_counts(be_gpu, NULL, &f16, &err), &err);
    CHECK_MSG(f16 == 0, "FP32 mode ran %lld half GEMMs", (long long)f16);

    /* profiling mode (cuda_profile.h): same results, and the ops show up in the report */
    CHECK_OK(avo_backend_cuda_profile(be_gpu, true, &err), &err);
    CHECK(strcmp(avo_backend_name(be_gpu), "cuda") == 0);
    t_conv1d(64, 64, 700, 3, 1, 1, 1, 1, true);
    static char pj[8192];
    CHECK_OK(avo_backend_cuda_profile_json(be_gpu, 10, pj, sizeof pj, &err), &err);
    CHECK_MSG(strstr(pj, "\"conv1d\"") && strstr(pj, "\"h2d\"") && strstr(pj, "\"d2h\""), "profile: %s", pj);
    CHECK_OK(avo_backend_cuda_profile(be_gpu, false, &err), &err);
    CHECK(avo_backend_cuda_profile(be_cpu, true, &err) == AVO_ERR_INVALID_ARGUMENT);

    /* FP16 mode: the GEMM-based ops */
    CHECK_OK(avo_backend_cuda_set_precision(be_gpu, AVO_CUDA_FP16, &err), &err);
    CHECK(strcmp(avo_backend_name(be_gpu), "cuda-fp16") == 0);
    fp16 = true;
    tol = TOL_FP16;
    run_gemm_cases();
    t_half_cache();
    run_fused_cases();
    run_half_attention_cases();
    fp16 = false;
    tol = TOL_FP32;
    CHECK_OK(avo_backend_cuda_set_precision(be_gpu, AVO_CUDA_FP32, &err), &err);
    CHECK(strcmp(avo_backend_name(be_gpu), "cuda") == 0);

    run_int8_cases();
    test_hubert();
    CHECK_OK(avo_backend_cuda_sync(be_gpu, &err), &err);

    fprintf(stderr, "\n%-18s %-5s %6s  %s\n", "op", "mode", "cases", "worst rel error");
    for (int i = 0; i < nsummary; i++)
        fprintf(stderr, "%-18s %-5s %6d  %.2e\n", summary[i].op, summary[i].mode, summary[i].cases, summary[i].worst);
    avo_arena_free(ar_gpu);
    avo_arena_free(ar_cpu);
    avo_backend_free(be_gpu);
    avo_backend_free(be_cpu);
    TEST_MAIN_END();
}
