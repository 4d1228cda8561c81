/* conv1d_fused and the direct AVX-512 conv1d (cpu_conv1d_avx512.c) against naive double-precision
 * loops over a grid of shapes: kernels 1..20, dilations 1..5, strides 1..5, paddings, odd lengths,
 * channel counts that are not multiples of the kernel's blocks, with and without input leaky ReLU,
 * residual and bias. FP32: max|got - ref| / max|ref| under 1e-5, for the direct kernel and for the
 * im2col + sgemm path (the fallback and the composed op). BF16 against the same reference under
 * 1e-2 (skipped with a message on a CPU without AVX512_BF16), with the precision counts checked.
 * BF16 linear (avo_op_linear in BF16 mode) against naive loops under 1e-2 and FP32 mode under 1e-5.
 * Also: the GEMM observer sees the activated input, and argument errors. */
#include "autovoice/engine.h"
#include "engine/cpu_conv1d.h"
#include "test_util.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static avo_backend *be;
static avo_arena *arena;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

/* test data from test_util.h's xorshift, one stream per test */
static void fill(float *p, int64_t n) { avo_test_fill(&rng, p, n); }

typedef struct shape {
    int cin, cout, t, k, stride, dil, pad, groups;
} shape;

static int64_t out_len(const shape *s) {
    int64_t span = (int64_t)s->dil * (s->k - 1) + 1;
    return (s->t + 2 * (int64_t)s->pad - span) / s->stride + 1;
}

/* y = conv(leaky?(x)) + b + r in double. */
static void naive(const shape *s, const float *x, const float *w, const float *b, const float *r, bool leaky,
                  float slope, float *y) {
    int64_t tout = out_len(s), cig = s->cin / s->groups, cog = s->cout / s->groups;
    for (int64_t o = 0; o < s->cout; o++) {
        int64_t g = o / cog;
        for (int64_t i = 0; i < tout; i++) {
            double acc = b ? b[o] : 0.0;
            for (int64_t c = 0; c < cig; c++)
                for (int64_t kk = 0; kk < s->k; kk++) {
                    int64_t idx = i * s->stride + kk * s->dil - s->pad;
                    if (idx < 0 || idx >= s->t) continue;
                    float v = x[(g * cig + c) * s->t + idx];
                    if (leaky && v < 0) v *= slope;
                    acc += (double)w[(o * cig + c) * s->k + kk] * v;
                }
            if (r) acc += r[o * tout + i];
            y[o * tout + i] = (float)acc;
        }
    }
}

/* Runs one case through avo_op_conv1d_fused (or avo_op_conv1d when plain) and returns the relative
 * error against the naive loops; -1 when the op failed. */
static double run_case(const shape *s, bool leaky, bool residual, bool bias, bool plain) {
    int64_t tout = out_len(s), nx = (int64_t)s->cin * s->t, nw = (int64_t)s->cout * (s->cin / s->groups) * s->k;
    int64_t ny = s->cout * tout;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(s->cout * 4), *r = malloc(ny * 4), *ref = malloc(ny * 4),
          *got = malloc(ny * 4);
    fill(x, nx);
    fill(w, nw);
    fill(b, s->cout);
    fill(r, ny);
    const float slope = 0.1f;
    naive(s, x, w, bias ? b : NULL, residual ? r : NULL, leaky, slope, ref);
    avo_arena_reset(arena);
    avo_error err = {0};
    avo_tensor X, W, B, R, Y = {0};
    int64_t xs[2] = {s->cin, s->t}, ws[3] = {s->cout, s->cin / s->groups, s->k}, bs[1] = {s->cout}, rs[2] = {s->cout, tout};
    avo_status st = avo_tensor_from_host(arena, 2, xs, x, &X, &err);
    if (!st) st = avo_tensor_from_host(arena, 3, ws, w, &W, &err);
    if (!st) st = avo_tensor_from_host(arena, 1, bs, b, &B, &err);
    if (!st) st = avo_tensor_from_host(arena, 2, rs, r, &R, &err);
    avo_conv1d_params p = {.stride = s->stride, .padding = s->pad, .dilation = s->dil, .groups = s->groups};
    avo_conv1d_fuse f = {.input_leaky_relu = leaky, .slope = slope, .residual = residual ? &R : NULL};
    if (!st) {
        if (plain)
            st = avo_op_conv1d(be, arena, &X, &W, bias ? &B : NULL, &p, &Y, &err);
        else
            st = avo_op_conv1d_fused(be, arena, &X, &W, bias ? &B : NULL, &p, &f, &Y, &err);
    }
    if (!st) st = avo_tensor_to_host(arena, &Y, got, ny, &err);
    double e = st ? -1.0 : avo_test_rel_error(got, ref, ny);
    if (st) fprintf(stderr, "op failed: %s\n", err.message);
    free(x);
    free(w);
    free(b);
    free(r);
    free(ref);
    free(got);
    return e;
}

static const shape grid[] = {
    /* resblock-like: same padding, dilations 1/3/5, kernels 3/7/11 */
    {32, 32, 517, 3, 1, 1, 1, 1},   {32, 32, 517, 3, 1, 3, 3, 1},   {24, 24, 301, 7, 1, 5, 15, 1},
    {20, 20, 263, 11, 1, 5, 25, 1}, {64, 64, 200, 11, 1, 1, 5, 1},  {17, 19, 131, 11, 1, 3, 15, 1},
    /* small and odd */
    {1, 5, 97, 1, 1, 1, 0, 1},      {3, 1, 40, 7, 1, 1, 3, 1},      {5, 7, 16, 2, 1, 2, 0, 1},
    {7, 9, 15, 3, 1, 4, 4, 1},      {2, 3, 1, 1, 1, 1, 0, 1},       {6, 6, 1, 3, 1, 1, 1, 1},
    /* strides (HuBERT feature extractor k10 s5, k3 s2, k2 s2; others) */
    {1, 12, 1001, 10, 5, 1, 0, 1},  {13, 12, 400, 3, 2, 1, 0, 1},   {13, 12, 401, 2, 2, 1, 0, 1},
    {9, 11, 333, 5, 3, 2, 4, 1},    {8, 5, 250, 4, 4, 3, 7, 1},     {10, 10, 257, 9, 5, 5, 20, 1},
    {3, 20, 99, 6, 5, 1, 2, 1},     {4, 4, 50, 1, 3, 1, 1, 1},
    /* kernels longer than 16 taps (the BF16 packer's scalar path), and an even kernel with stride */
    {6, 5, 200, 20, 1, 1, 9, 1},    {5, 6, 300, 17, 2, 2, 3, 1},
    /* padding larger than the kernel reach, long input (several tiles) */
    {16, 16, 3000, 3, 1, 2, 9, 1},  {48, 40, 2049, 5, 1, 1, 2, 1},
    /* groups > 1 (FP32: the direct kernel per group) and depthwise (its own loop) */
    {8, 12, 100, 3, 1, 1, 1, 4},    {6, 6, 77, 5, 1, 2, 4, 6},
    /* kernels past 64 taps; HuBERT's positional conv in small (k 128, pad 64, groups, even kernel) */
    {6, 4, 200, 128, 1, 1, 64, 1},  {32, 32, 300, 128, 1, 1, 64, 4}, {12, 8, 90, 70, 1, 1, 35, 2},
};
#define NGRID ((int)(sizeof grid / sizeof grid[0]))

static void grid_fp32(const char *label) {
    double worst = 0;
    for (int i = 0; i < NGRID; i++)
        for (int v = 0; v < 9; v++) {
            bool plain = v == 8, leaky = v & 1, res = (v >> 1) & 1, bias = !((v >> 2) & 1);
            if (plain) leaky = res = false, bias = true;
            const shape *s = &grid[i];
            double e = run_case(s, leaky, res, bias, plain);
            if (e > worst) worst = e;
            CHECK_MSG(e >= 0 && e < 1e-5,
                      "%s: cin %d cout %d t %d k %d s %d d %d pad %d g %d leaky %d res %d bias %d plain %d: rel error %g",
                      label, s->cin, s->cout, s->t, s->k, s->stride, s->dil, s->pad, s->groups, leaky, res, bias, plain, e);
        }
    fprintf(stderr, "%s: worst relative error %.3g over %d cases\n", label, worst, NGRID * 9);
}

static void grid_bf16(void) {
    avo_error err = {0};
    avo_status st = avo_backend_cpu_set_precision(be, AVO_CPU_BF16, &err);
    if (!cpu_conv1d_bf16_available()) {
        CHECK(st == AVO_ERR_UNSUPPORTED);
        fprintf(stderr, "SKIP bf16: this CPU has no AVX512_BF16 (set_precision refused it: %s)\n", err.message);
        return;
    }
    CHECK_OK(st, &err);
    int64_t f0, b0, f1, b1;
    CHECK_OK(avo_backend_cpu_gemm_counts(be, &f0, &b0, &err), &err);
    double worst = 0;
    int n_direct = 0;
    for (int i = 0; i < NGRID; i++)
        for (int v = 0; v < 4; v++) {
            const shape *s = &grid[i];
            double e = run_case(s, v & 1, v & 2, true, false);
            if (e > worst) worst = e;
            n_direct += s->groups == 1;
            CHECK_MSG(e >= 0 && e < 1e-2, "bf16: cin %d cout %d t %d k %d s %d d %d pad %d g %d leaky %d res %d: rel error %g",
                      s->cin, s->cout, s->t, s->k, s->stride, s->dil, s->pad, s->groups, v & 1, (v >> 1) & 1, e);
        }
    CHECK_OK(avo_backend_cpu_gemm_counts(be, &f1, &b1, &err), &err);
    /* groups > 1 runs FP32 through im2col and must be counted there, never as bf16 */
    CHECK_MSG(b1 - b0 == n_direct, "bf16 calls %lld, expected %d", (long long)(b1 - b0), n_direct);
    CHECK_MSG(f1 - f0 == NGRID * 4 - n_direct, "fp32 calls %lld, expected %d", (long long)(f1 - f0), NGRID * 4 - n_direct);
    /* BF16 really rounds: a case that is exact in FP32 is not exact here */
    CHECK(worst > 1e-5);
    fprintf(stderr, "bf16: worst relative error %.3g\n", worst);
    CHECK_OK(avo_backend_cpu_set_precision(be, AVO_CPU_FP32, &err), &err);
}

/* ---- linear ----------------------------------------------------------------------------------- */

static void linear_cases(bool bf16) {
    static const int cases[][3] = {{1, 1, 1}, {7, 5, 3}, {13, 768, 70}, {100, 33, 129}, {37, 64, 64}, {6, 17, 200}};
    avo_error err = {0};
    if (bf16 && avo_backend_cpu_set_precision(be, AVO_CPU_BF16, &err)) {
        fprintf(stderr, "SKIP bf16 linear: %s\n", err.message);
        return;
    }
    int64_t f0, b0, f1, b1;
    CHECK_OK(avo_backend_cpu_gemm_counts(be, &f0, &b0, &err), &err);
    double worst = 0;
    const int n = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < n; i++)
        for (int with_b = 0; with_b < 2; with_b++) {
            int64_t rows = cases[i][0], in = cases[i][1], out = cases[i][2];
            float *x = malloc(rows * in * 4), *w = malloc(out * in * 4), *b = malloc(out * 4), *ref = malloc(rows * out * 4),
                  *got = malloc(rows * out * 4);
            fill(x, rows * in);
            fill(w, out * in);
            fill(b, out);
            for (int64_t r = 0; r < rows; r++)
                for (int64_t o = 0; o < out; o++) {
                    double acc = with_b ? b[o] : 0.0;
                    for (int64_t k = 0; k < in; k++) acc += (double)x[r * in + k] * w[o * in + k];
                    ref[r * out + o] = (float)acc;
                }
            avo_arena_reset(arena);
            int64_t xs[2] = {rows, in}, ws[2] = {out, in}, bs[1] = {out};
            avo_tensor X, W, B, Y = {0};
            CHECK_OK(avo_tensor_from_host(arena, 2, xs, x, &X, &err), &err);
            CHECK_OK(avo_tensor_from_host(arena, 2, ws, w, &W, &err), &err);
            CHECK_OK(avo_tensor_from_host(arena, 1, bs, b, &B, &err), &err);
            CHECK_OK(avo_op_linear(be, arena, &X, &W, with_b ? &B : NULL, &Y, &err), &err);
            CHECK_OK(avo_tensor_to_host(arena, &Y, got, rows * out, &err), &err);
            double e = avo_test_rel_error(got, ref, rows * out);
            worst = e > worst ? e : worst;
            CHECK_MSG(e < (bf16 ? 1e-2 : 1e-5), "%s linear rows %lld in %lld out %lld bias %d: rel error %g", bf16 ? "bf16" : "fp32",
                      (long long)rows, (long long)in, (long long)out, with_b, e);
            free(x), free(w), free(b), free(ref), free(got);
        }
    CHECK_OK(avo_backend_cpu_gemm_counts(be, &f1, &b1, &err), &err);
    CHECK(b1 - b0 == (bf16 ? 2 * n : 0));
    CHECK(f1 - f0 == (bf16 ? 0 : 2 * n));
    if (bf16) CHECK(worst > 1e-6); /* it really ran in bf16 */
    fprintf(stderr, "%s linear: worst relative error %.3g\n", bf16 ? "bf16" : "fp32", worst);
    CHECK_OK(avo_backend_cpu_set_precision(be, AVO_CPU_FP32, &err), &err);
}

/* ---- transposed conv1d ------------------------------------------------------------------------ */

typedef struct tshape {
    int cin, cout, t, k, stride, pad, outpad;
} tshape;

/* The phase decomposition on the direct kernel (FP32 under 1e-5, BF16 under 1e-2 and counted as
 * BF16) and the sgemm + col2im path, against naive double loops: y[o, i*s + kk - pad] += w[c, o, kk]
 * x[c, i]. Shapes: the RVC 40k ups (k 16 s 10 p 3, k 4 s 2 p 1), odd strides and paddings, output
 * padding, stride 1, and a padding large enough that the phases do not apply (fallback). */
static void conv_transpose_cases(void) {
    static const tshape cases[] = {
        {16, 8, 50, 16, 10, 3, 0}, {8, 4, 100, 4, 2, 1, 0}, {5, 7, 33, 5, 3, 1, 2}, {3, 3, 17, 3, 1, 1, 0},
        {6, 5, 20, 7, 4, 0, 1},    {4, 4, 30, 3, 2, 4, 0},  {1, 3, 9, 6, 3, 2, 1},  {9, 2, 40, 8, 8, 0, 0},
    };
    const int n = (int)(sizeof cases / sizeof cases[0]);
    avo_error err = {0};
    for (int mode = 0; mode < 3; mode++) { /* 0: phases FP32, 1: sgemm + col2im, 2: phases BF16 */
        if (mode == 2 && avo_backend_cpu_set_precision(be, AVO_CPU_BF16, &err)) {
            fprintf(stderr, "SKIP bf16 conv_transpose1d: %s\n", err.message);
            break;
        }
        cpu_backend_set_direct_conv(be, mode != 1);
        double worst = 0;
        for (int i = 0; i < n; i++) {
            const tshape *c = &cases[i];
            int64_t tout = (int64_t)(c->t - 1) * c->stride - 2 * c->pad + c->k + c->outpad;
            int64_t nx = (int64_t)c->cin * c->t, nw = (int64_t)c->cin * c->cout * c->k, ny = c->cout * tout;
            float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(c->cout * 4), *ref = malloc(ny * 4), *got = malloc(ny * 4);
            double *acc = calloc((size_t)ny, sizeof(double));
            fill(x, nx);
            fill(w, nw);
            fill(b, c->cout);
            for (int64_t o = 0; o < c->cout; o++)
                for (int64_t j = 0; j < tout; j++) acc[o * tout + j] = b[o];
            for (int64_t ci = 0; ci < c->cin; ci++)
                for (int64_t o = 0; o < c->cout; o++)
                    for (int64_t kk = 0; kk < c->k; kk++)
                        for (int64_t ii = 0; ii < c->t; ii++) {
                            int64_t j = ii * c->stride + kk - c->pad;
                            if (j >= 0 && j < tout) acc[o * tout + j] += (double)w[(ci * c->cout + o) * c->k + kk] * x[ci * c->t + ii];
                        }
            for (int64_t j = 0; j < ny; j++) ref[j] = (float)acc[j];
            avo_arena_reset(arena);
            int64_t xs[2] = {c->cin, c->t}, ws[3] = {c->cin, c->cout, c->k}, bs[1] = {c->cout};
            avo_tensor X, W, B, Y = {0};
            CHECK_OK(avo_tensor_from_host(arena, 2, xs, x, &X, &err), &err);
            CHECK_OK(avo_tensor_from_host(arena, 3, ws, w, &W, &err), &err);
            CHECK_OK(avo_tensor_from_host(arena, 1, bs, b, &B, &err), &err);
            avo_conv_transpose1d_params p = {c->stride, c->pad, c->outpad, 1, 1};
            int64_t f0, b0, f1, b1;
            CHECK_OK(avo_backend_cpu_gemm_counts(be, &f0, &b0, &err), &err);
            CHECK_OK(avo_op_conv_transpose1d(be, arena, &X, &W, &B, &p, &Y, &err), &err);
            CHECK_OK(avo_backend_cpu_gemm_counts(be, &f1, &b1, &err), &err);
            CHECK(Y.shape[1] == tout);
            CHECK_OK(avo_tensor_to_host(arena, &Y, got, ny, &err), &err);
            double e = avo_test_rel_error(got, ref, ny);
            worst = e > worst ? e : worst;
            CHECK_MSG(e < (mode == 2 ? 1e-2 : 1e-5), "conv_transpose1d mode %d: cin %d cout %d t %d k %d s %d pad %d outpad %d: rel error %g",
                      mode, c->cin, c->cout, c->t, c->k, c->stride, c->pad, c->outpad, e);
            /* BF16 runs wherever the phases apply (all but the large-padding case); FP32 modes never */
            bool phases = cpu_conv1d_avx512_available() && i != 5 && mode != 1;
            CHECK_MSG(b1 - b0 == (mode == 2 && phases ? 1 : 0) && f1 - f0 == (mode == 2 && phases ? 0 : 1),
                      "conv_transpose1d mode %d case %d: counts fp32 +%lld bf16 +%lld", mode, i, (long long)(f1 - f0),
                      (long long)(b1 - b0));
            free(x), free(w), free(b), free(ref), free(got), free(acc);
        }
        fprintf(stderr, "conv_transpose1d mode %d: worst relative error %.3g\n", mode, worst);
    }
    cpu_backend_set_direct_conv(be, true);
    CHECK_OK(avo_backend_cpu_set_precision(be, AVO_CPU_FP32, &err), &err);
}

/* ---- observer --------------------------------------------------------------------------------- */

typedef struct obs_state {
    int calls;
    float min_x;
} obs_state;

static avo_status observer(void *user, avo_gemm_event *ev, avo_error *err) {
    (void)err;
    obs_state *o = user;
    o->calls++;
    const float *x = ev->x.data;
    for (int64_t i = 0; i < avo_tensor_numel(&ev->x); i++) o->min_x = x[i] < o->min_x ? x[i] : o->min_x;
    return AVO_OK;
}

static void observer_sees_activation(void) {
    avo_error err = {0};
    avo_arena_reset(arena);
    float x[2 * 50], w[3 * 2 * 3];
    for (int i = 0; i < 100; i++) x[i] = -1.0f + 0.02f * (float)i; /* min -1 */
    fill(w, 18);
    int64_t xs[2] = {2, 50}, ws[3] = {3, 2, 3};
    avo_tensor X, W, Y = {0};
    CHECK_OK(avo_tensor_from_host(arena, 2, xs, x, &X, &err), &err);
    CHECK_OK(avo_tensor_from_host(arena, 3, ws, w, &W, &err), &err);
    obs_state o = {0, 1e9f};
    avo_backend_set_gemm_observer(be, observer, &o);
    avo_conv1d_params p = {.padding = 1};
    avo_conv1d_fuse f = {.input_leaky_relu = true, .slope = 0.25f};
    CHECK_OK(avo_op_conv1d_fused(be, arena, &X, &W, NULL, &p, &f, &Y, &err), &err);
    avo_backend_set_gemm_observer(be, NULL, NULL);
    CHECK(o.calls == 1);
    CHECK_NEAR(o.min_x, -0.25, 1e-6); /* leaky_relu(-1, 0.25), not -1 */
    /* and the result is still the activated convolution */
    shape s = {2, 3, 50, 3, 1, 1, 1, 1};
    float ref[150], got[150];
    naive(&s, x, w, NULL, NULL, true, 0.25f, ref);
    CHECK_OK(avo_tensor_to_host(arena, &Y, got, 150, &err), &err);
    CHECK(avo_test_rel_error(got, ref, 150) < 1e-5);
}

static void argument_errors(void) {
    avo_error err = {0};
    avo_arena_reset(arena);
    int64_t xs[2] = {4, 20}, ws[3] = {4, 4, 3}, rs_bad[2] = {4, 17};
    avo_tensor X, W, R, Y = {0};
    CHECK_OK(avo_tensor_new(arena, AVO_DTYPE_F32, 2, xs, &X, &err), &err);
    CHECK_OK(avo_tensor_new(arena, AVO_DTYPE_F32, 3, ws, &W, &err), &err);
    CHECK_OK(avo_tensor_new(arena, AVO_DTYPE_F32, 2, rs_bad, &R, &err), &err);
    avo_conv1d_params p = {.padding = 1};
    avo_conv1d_fuse f = {.residual = &R};
    CHECK(avo_op_conv1d_fused(be, arena, &X, &W, NULL, &p, &f, &Y, &err) == AVO_ERR_INVALID_ARGUMENT);
    /* output aliasing the residual or the input is refused */
    avo_conv1d_fuse f2 = {.residual = &X};
    avo_tensor Y2 = X;
    CHECK(avo_op_conv1d_fused(be, arena, &X, &W, NULL, &p, &f2, &Y2, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(avo_op_conv1d_fused(be, arena, &X, &W, NULL, &p, NULL, &Y2, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(avo_backend_cpu_set_precision(be, (avo_cpu_precision)7, &err) == AVO_ERR_INVALID_ARGUMENT);
}

int main(void) {
    avo_error err = {0};
    CHECK_OK(avo_backend_cpu_create(2, &be, &err), &err);
    CHECK_OK(avo_arena_create(be, 1 << 20, &arena, &err), &err);
    if (!be || !arena) TEST_MAIN_END();
    if (cpu_conv1d_avx512_available())
        grid_fp32("direct avx512");
    else
        fprintf(stderr, "SKIP direct kernel: this CPU has no AVX-512\n");
    cpu_backend_set_direct_conv(be, false);
    CHECK(!cpu_backend_direct_conv(be));
    grid_fp32("im2col + sgemm");
    cpu_backend_set_direct_conv(be, true);
    grid_bf16();
    linear_cases(false);
    if (cpu_conv1d_bf16_available()) linear_cases(true);
    conv_transpose_cases();
    observer_sees_activation();
    argument_errors();
    avo_arena_free(arena);
    avo_backend_free(be);
    TEST_MAIN_END();
}
