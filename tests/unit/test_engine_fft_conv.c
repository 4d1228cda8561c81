/* The FFT overlap-save conv1d (cpu_conv1d_fft.c) and the Winograd F(4,3) conv1d (cpu_conv1d_wino.c,
 * its own grid of 3-tap shapes at dilations 1..8, same tolerance, a wrong tap caught) against naive double-precision loops over a grid
 * of shapes: kernels 2..22, dilations 1..7 (reach up to the 64-sample limit), paddings from 0 past
 * the kernel's reach, odd lengths (partial blocks, partial 16-block groups, several chunks), channel
 * counts that are not multiples of the GEMM's 4 or the weight transform's 16, with and without input
 * leaky ReLU, residual and bias. FP32 tolerance max|got - ref| / max|ref| < 1e-5.
 * Also: the test can fail (one wrong tap in the weights is caught), the back end's FFT modes (forced,
 * automatic on a resblock-sized convolution, off) give the same result, and shapes outside the path
 * (stride 2, reach over 64) are refused by _supported. BF16 mode against the same reference under
 * 1e-2. */
#include "autovoice/engine.h"
#include "engine/cpu_conv1d.h"
#include "test_util.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static avo_backend *be;
static avo_arena *arena;
static uint64_t rng = 0x2545f4914f6cdd1dull;

/* test data from test_util.h's xorshift, one stream per test */
static void fill(float *p, int64_t n) { avo_test_fill(&rng, p, n); }

typedef struct shape {
    int cin, cout, t, k, dil, pad;
} shape;

static int64_t out_len(const shape *s) { return s->t + 2 * (int64_t)s->pad - (int64_t)s->dil * (s->k - 1); }

/* y = conv(leaky?(x)) + b + r in double (stride 1). */
static void naive(const shape *s, const float *x, const float *w, const float *b, const float *r, bool leaky,
                  float slope, float *y) {
    int64_t tout = out_len(s);
    for (int64_t o = 0; o < s->cout; o++)
        for (int64_t i = 0; i < tout; i++) {
            double acc = b ? b[o] : 0.0;
            for (int64_t c = 0; c < s->cin; c++)
                for (int64_t kk = 0; kk < s->k; kk++) {
                    int64_t idx = i + kk * s->dil - s->pad;
                    if (idx < 0 || idx >= s->t) continue;
                    double v = x[c * s->t + idx];
                    if (leaky && v < 0) v *= slope;
                    acc += (double)w[(o * s->cin + c) * s->k + kk] * v;
                }
            if (r) acc += r[o * tout + i];
            y[o * tout + i] = (float)acc;
        }
}

/* Runs the FFT path directly; returns the relative error against the naive loops on the same data
 * with w_ref as the reference's weights (normally w itself), -1 when it failed or was refused. */
static double run_path(const shape *s, bool leaky, bool residual, bool bias, int wrong_tap, bool bf16, bool wino) {
    int64_t tout = out_len(s), nx = (int64_t)s->cin * s->t, nw = (int64_t)s->cout * s->cin * s->k, ny = s->cout * tout;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *wr = malloc(nw * 4), *b = malloc(s->cout * 4), *r = malloc(ny * 4),
          *ref = malloc(ny * 4), *got = malloc(ny * 4);
    fill(x, nx);
    fill(w, nw);
    fill(b, s->cout);
    fill(r, ny);
    memcpy(wr, w, nw * 4);
    if (wrong_tap >= 0) wr[wrong_tap] += 0.05f; /* the reference disagrees by one tap of one pair */
    naive(s, x, wr, bias ? b : NULL, residual ? r : NULL, leaky, 0.1f, ref);
    cpu_conv1d_args c = {
        .x = x, .cin = s->cin, .t = s->t, .w = w, .cout = s->cout, .k = s->k,
        .bias = bias ? b : NULL, .residual = residual ? r : NULL, .y = got, .tout = tout,
        .stride = 1, .padding = s->pad, .dilation = s->dil, .leaky = leaky, .slope = 0.1f,
        .enabled = true, .fft = true, .nthreads = 2, .bf16 = bf16,
    };
    double e = -1;
    avo_error err = {0};
    avo_arena_reset(arena);
    if (wino ? cpu_conv1d_wino_supported(&c) : cpu_conv1d_fft_supported(&c)) {
        avo_status st = wino ? cpu_conv1d_wino(arena, &c, &err) : cpu_conv1d_fft(arena, &c, &err);
        if (st) fprintf(stderr, "%s conv failed: %s\n", wino ? "winograd" : "fft", err.message);
        else e = avo_test_rel_error(got, ref, ny);
    }
    free(x), free(w), free(wr), free(b), free(r), free(ref), free(got);
    return e;
}

static const shape grid[] = {
    /* resblock-like: same padding, dilations 1/3/5, kernels 3/7/11 */
    {32, 32, 3001, 3, 1, 1},   {32, 32, 2500, 3, 3, 3},   {24, 24, 1301, 7, 5, 15},  {20, 20, 2263, 11, 5, 25},
    {64, 64, 2000, 11, 1, 5},  {17, 19, 1131, 11, 3, 15}, {16, 16, 5000, 7, 1, 3},
    /* channel counts off the 4- and 16-blocks, one channel */
    {1, 1, 500, 5, 1, 2},      {3, 5, 777, 9, 2, 8},      {33, 18, 600, 11, 1, 5},   {5, 37, 999, 4, 3, 0},
    /* short inputs: one partial block, one partial group */
    {8, 8, 1, 3, 1, 1},        {6, 7, 40, 7, 1, 3},       {9, 9, 130, 11, 2, 10},    {4, 4, 2, 2, 1, 0},
    /* reach at the limit (64) and long kernels; padding past the reach; no padding */
    {12, 12, 900, 22, 3, 32},  {10, 11, 1000, 10, 7, 40}, {7, 7, 800, 3, 1, 9},      {11, 13, 1024, 6, 5, 0},
    /* several chunks (many groups of 16 blocks) */
    {8, 8, 25000, 11, 5, 25},  {12, 10, 16001, 7, 3, 9},
};
#define NGRID ((int)(sizeof grid / sizeof grid[0]))

static void grid_cases(void) {
    double worst = 0;
    for (int i = 0; i < NGRID; i++)
        for (int v = 0; v < 8; v++) {
            bool leaky = v & 1, res = (v >> 1) & 1, bias = !((v >> 2) & 1);
            const shape *s = &grid[i];
            double e = run_path(s, leaky, res, bias, -1, false, false);
            worst = e > worst ? e : worst;
            CHECK_MSG(e >= 0 && e < 1e-5, "fft: cin %d cout %d t %d k %d d %d pad %d leaky %d res %d bias %d: rel error %g",
                      s->cin, s->cout, s->t, s->k, s->dil, s->pad, leaky, res, bias, e);
        }
    fprintf(stderr, "fft conv: worst relative error %.3g over %d cases\n", worst, NGRID * 8);
}

/* BF16 operands (X and W rounded to bf16 in the frequency domain, FP32 accumulation) against the
 * same double reference under 1e-2, and it really rounds. */
static void grid_bf16(void) {
    if (!cpu_conv1d_bf16_available()) {
        fprintf(stderr, "SKIP bf16 fft conv: this CPU has no AVX512_BF16\n");
        return;
    }
    double worst = 0;
    for (int i = 0; i < NGRID; i++)
        for (int v = 0; v < 2; v++) {
            const shape *s = &grid[i];
            double e = run_path(s, v, v, true, -1, true, false);
            worst = e > worst ? e : worst;
            CHECK_MSG(e >= 0 && e < 1e-2, "bf16 fft: cin %d cout %d t %d k %d d %d pad %d leaky/res %d: rel error %g", s->cin,
                      s->cout, s->t, s->k, s->dil, s->pad, v, e);
        }
    CHECK(worst > 1e-5);
    fprintf(stderr, "bf16 fft conv: worst relative error %.3g over %d cases\n", worst, NGRID * 2);
}

/* Winograd F(4,3): 3-tap convolutions at dilations 1..8, paddings 0..past the reach, lengths that
 * end inside a tile, a block, a 16-block group, several chunks; channels off the 4-block. */
static const shape wgrid[] = {
    {32, 32, 3001, 3, 1, 1},  {32, 32, 2500, 3, 3, 3},  {24, 24, 1301, 3, 5, 5},  {17, 19, 1131, 3, 2, 2},
    {1, 1, 500, 3, 1, 1},     {3, 5, 777, 3, 7, 7},     {5, 37, 999, 3, 8, 0},    {8, 8, 1, 3, 1, 1},
    {6, 7, 40, 3, 4, 9},      {9, 9, 130, 3, 6, 20},    {4, 4, 3, 3, 1, 0},       {16, 16, 64, 3, 1, 1},
    {12, 10, 40001, 3, 5, 5}, {64, 48, 3000, 3, 3, 3},  {20, 20, 70000, 3, 1, 1},
};
#define NWGRID ((int)(sizeof wgrid / sizeof wgrid[0]))

static void grid_wino(void) {
    double worst = 0;
    for (int i = 0; i < NWGRID; i++)
        for (int v = 0; v < 4; v++) {
            const shape *s = &wgrid[i];
            double e = run_path(s, v & 1, v & 2, true, -1, false, true);
            worst = e > worst ? e : worst;
            CHECK_MSG(e >= 0 && e < 1e-5, "winograd: cin %d cout %d t %d d %d pad %d leaky %d res %d: rel error %g", s->cin,
                      s->cout, s->t, s->dil, s->pad, v & 1, (v >> 1) & 1, e);
        }
    fprintf(stderr, "winograd conv: worst relative error %.3g over %d cases\n", worst, NWGRID * 4);
    /* a wrong tap is caught */
    const shape s = {17, 19, 1131, 3, 2, 2};
    const int taps[] = {0, 1, 2, (18 * 17 + 16) * 3 + 2};
    for (int i = 0; i < 4; i++) {
        double e = run_path(&s, true, true, true, taps[i], false, true);
        CHECK_MSG(e > 1e-4, "winograd: a wrong tap %d went unnoticed: rel error %g", taps[i], e);
    }
    float dummy = 0;
    cpu_conv1d_args c = {.x = &dummy, .cin = 128, .t = 5000, .w = &dummy, .cout = 128, .k = 3, .y = &dummy, .tout = 5000,
                         .stride = 1, .padding = 1, .dilation = 1, .enabled = true, .fft = true, .nthreads = 1};
    CHECK(cpu_conv1d_wino_preferred(&c) == cpu_conv1d_avx512_available());
    cpu_conv1d_args d = c;
    d.k = 5;
    CHECK(!cpu_conv1d_wino_supported(&d));
    d = c;
    d.dilation = 9;
    CHECK(!cpu_conv1d_wino_supported(&d));
    d = c;
    d.fft = false;
    CHECK(!cpu_conv1d_wino_supported(&d));
    /* one thread (the synthesizer's workers): 64 channels at dilation 1, 128+ at dilations up to 5 */
    const bool avx = cpu_conv1d_avx512_available();
    d = c;
    d.cin = d.cout = 64;
    CHECK(cpu_conv1d_wino_preferred(&d) == avx);
    d.dilation = 3, d.padding = 3;
    CHECK(!cpu_conv1d_wino_preferred(&d));
    d.cin = d.cout = 32, d.dilation = 1, d.padding = 1;
    CHECK(!cpu_conv1d_wino_preferred(&d));
    d = c;
    d.dilation = 5, d.padding = 5;
    CHECK(cpu_conv1d_wino_preferred(&d) == avx);
    d.dilation = 7, d.padding = 7;
    CHECK(!cpu_conv1d_wino_preferred(&d));
    /* several threads per call: dilation 1 with 128+ channels only */
    d = c;
    d.nthreads = 2;
    CHECK(cpu_conv1d_wino_preferred(&d) == avx);
    d.cin = d.cout = 64;
    CHECK(!cpu_conv1d_wino_preferred(&d));
    d = c;
    d.nthreads = 2, d.dilation = 3, d.padding = 3;
    CHECK(!cpu_conv1d_wino_preferred(&d));
}

/* One changed tap (first, middle, last; first and last channel pair) must show up well above the
 * tolerance: the comparison can fail. */
static void wrong_tap_is_caught(void) {
    const shape s = {20, 20, 2263, 11, 5, 25};
    const int taps[] = {0, 5, 10, (19 * 20 + 19) * 11 + 10, (7 * 20 + 3) * 11 + 4};
    for (int i = 0; i < (int)(sizeof taps / sizeof taps[0]); i++) {
        double e = run_path(&s, true, true, true, taps[i], false, false);
        CHECK_MSG(e > 1e-4, "a wrong tap %d went unnoticed: rel error %g", taps[i], e);
    }
}

static void refused_shapes(void) {
    float dummy = 0;
    cpu_conv1d_args c = {.x = &dummy, .cin = 4, .t = 1000, .w = &dummy, .cout = 4, .k = 3, .y = &dummy, .tout = 1000,
                         .stride = 1, .padding = 1, .dilation = 1, .enabled = true, .fft = true, .nthreads = 1};
    CHECK(cpu_conv1d_fft_supported(&c) == cpu_conv1d_avx512_available());
    cpu_conv1d_args d = c;
    d.stride = 2;
    CHECK(!cpu_conv1d_fft_supported(&d));
    d = c;
    d.k = 14, d.dilation = 5; /* reach 66 */
    CHECK(!cpu_conv1d_fft_supported(&d));
    d = c;
    d.bf16 = true;
    CHECK(cpu_conv1d_fft_supported(&d) == cpu_conv1d_bf16_available());
    d = c;
    d.fft = false;
    CHECK(!cpu_conv1d_fft_supported(&d));
    CHECK(!cpu_conv1d_fft_preferred(&d));
    /* a short kernel on a few channels stays direct; a resblock conv goes to the FFT */
    d = c;
    d.k = 3, d.cin = d.cout = 8;
    CHECK(!cpu_conv1d_fft_preferred(&d));
    d = c;
    d.k = 11, d.dilation = 1, d.cin = d.cout = 128, d.t = d.tout = 60000;
    CHECK(cpu_conv1d_fft_preferred(&d) == cpu_conv1d_avx512_available());
}

/* Through the back end: a resblock step with the FFT path forced, automatic (its cost model takes
 * this shape) and off gives the same y within tolerance of the naive loops; forced and automatic
 * agree bit for bit and differ from the direct kernel's rounding, so each really ran its path. */
static void backend_switch(void) {
    const shape s = {64, 64, 6000, 11, 3, 15};
    int64_t tout = out_len(&s), nx = (int64_t)s.cin * s.t, nw = (int64_t)s.cout * s.cin * s.k, ny = s.cout * tout;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(s.cout * 4), *ref = malloc(ny * 4), *got[3];
    fill(x, nx);
    fill(w, nw);
    fill(b, s.cout);
    naive(&s, x, w, b, x, true, 0.1f, ref);
    const cpu_fft_mode modes[3] = {CPU_FFT_ALWAYS, CPU_FFT_AUTO, CPU_FFT_OFF};
    for (int i = 0; i < 3; i++) {
        avo_error err = {0};
        got[i] = malloc(ny * 4);
        avo_arena_reset(arena);
        cpu_backend_set_fft_conv(be, modes[i]);
        int64_t xs[2] = {s.cin, s.t}, ws[3] = {s.cout, s.cin, s.k}, bs[1] = {s.cout};
        avo_tensor X, W, B, Y = {0};
        CHECK_OK(avo_tensor_from_host(arena, 2, xs, x, &X, &err), &err);
        CHECK_OK(avo_tensor_from_host(arena, 3, ws, w, &W, &err), &err);
        CHECK_OK(avo_tensor_from_host(arena, 1, bs, b, &B, &err), &err);
        avo_conv1d_params p = {.stride = 1, .padding = s.pad, .dilation = s.dil, .groups = 1};
        avo_conv1d_fuse f = {.input_leaky_relu = true, .slope = 0.1f, .residual = &X};
        CHECK_OK(avo_op_conv1d_fused(be, arena, &X, &W, &B, &p, &f, &Y, &err), &err);
        CHECK_OK(avo_tensor_to_host(arena, &Y, got[i], ny, &err), &err);
        double e = avo_test_rel_error(got[i], ref, ny);
        CHECK_MSG(e < 1e-5, "back end, fft mode %d: rel error %g", (int)modes[i], e);
    }
    if (cpu_conv1d_avx512_available()) {
        CHECK(memcmp(got[0], got[1], (size_t)ny * 4) == 0);
        CHECK(memcmp(got[0], got[2], (size_t)ny * 4) != 0);
    }
    cpu_backend_set_fft_conv(be, CPU_FFT_AUTO);
    free(x), free(w), free(b), free(ref), free(got[0]), free(got[1]), free(got[2]);
}

int main(void) {
    avo_error err = {0};
    CHECK_OK(avo_backend_cpu_create(2, &be, &err), &err);
    CHECK_OK(avo_arena_create(be, 1 << 20, &arena, &err), &err);
    if (!be || !arena) TEST_MAIN_END();
    refused_shapes();
    if (cpu_conv1d_avx512_available()) {
        grid_cases();
        grid_bf16();
        wrong_tap_is_caught();
        grid_wino();
    } else {
        fprintf(stderr, "SKIP fft conv: this CPU has no AVX-512\n");
    }
    backend_switch();
    avo_arena_free(arena);
    avo_backend_free(be);
    TEST_MAIN_END();
}
