/* The FP32 AVX-512 linear (cpu_linear_f32.c) against naive double loops: row counts around the
 * kernel's 6-row blocks and 48-row tiles, inputs around its 128-input reduction chunks (several
 * chunks: partial sums through y), outputs around its 64-output blocks, with and without bias, 1 and
 * 2 threads; max|got - ref| / max|ref| under 1e-5. Then avo_op_linear on a shape the back end routes
 * to it (and the same op with the direct kernels off, i.e. sgemm) against the same reference, and a
 * check that the comparison catches one wrong weight. Skipped with a message without AVX-512. */
#include "autovoice/engine.h"
#include "engine/cpu_conv1d.h"
#include "test_util.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x2545f4914f6cdd1dull;

/* test data from test_util.h's xorshift, one stream per test */
static void fill(float *p, int64_t n) { avo_test_fill(&rng, p, n); }

static void reference(const float *x, int64_t rows, int64_t in, const float *w, int64_t out, const float *b, float *y) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < out; o++) {
            double acc = b ? b[o] : 0.0;
            for (int64_t k = 0; k < in; k++) acc += (double)x[r * in + k] * w[o * in + k];
            y[r * out + o] = (float)acc;
        }
}

static void kernel_grid(avo_arena *arena) {
    static const int rows_v[] = {1, 5, 6, 7, 49, 97};
    static const int in_v[] = {1, 3, 17, 128, 129, 300};
    static const int out_v[] = {1, 16, 17, 64, 65, 130};
    avo_error err = {0};
    double worst = 0;
    int count = 0;
    for (size_t ri = 0; ri < sizeof rows_v / sizeof rows_v[0]; ri++)
        for (size_t ii = 0; ii < sizeof in_v / sizeof in_v[0]; ii++)
            for (size_t oi = 0; oi < sizeof out_v / sizeof out_v[0]; oi++) {
                int64_t rows = rows_v[ri], in = in_v[ii], out = out_v[oi];
                int with_b = (int)((ri + ii + oi) & 1), nt = 1 + (int)(oi & 1);
                float *x = malloc(rows * in * 4), *w = malloc(out * in * 4), *b = malloc(out * 4),
                      *ref = malloc(rows * out * 4), *got = malloc(rows * out * 4);
                fill(x, rows * in);
                fill(w, out * in);
                fill(b, out);
                reference(x, rows, in, w, out, with_b ? b : NULL, ref);
                for (int64_t j = 0; j < rows * out; j++) got[j] = NAN; /* every output must be written */
                avo_arena_reset(arena);
                CHECK_OK(cpu_linear_f32(arena, x, rows, in, w, out, with_b ? b : NULL, got, nt, &err), &err);
                double e = avo_test_rel_error(got, ref, rows * out);
                worst = e > worst ? e : worst;
                CHECK_MSG(e < 1e-5, "fp32 linear rows %lld in %lld out %lld bias %d threads %d: rel error %g", (long long)rows,
                          (long long)in, (long long)out, with_b, nt, e);
                count++;
                free(x), free(w), free(b), free(ref), free(got);
            }
    fprintf(stderr, "avx512 fp32 linear: %d shapes, worst relative error %.3g\n", count, worst);
}

/* Through the op: a shape the back end routes to the kernel, the sgemm path for the same shape, and
 * one changed weight must show in the comparison (the test can fail). */
static void through_op(avo_backend *be, avo_arena *arena) {
    const int64_t rows = 150, in = 200, out = 70;
    avo_error err = {0};
    CHECK(cpu_linear_f32_preferred(rows, in, out));
    float *x = malloc(rows * in * 4), *w = malloc(out * in * 4), *b = malloc(out * 4), *ref = malloc(rows * out * 4),
          *got = malloc(rows * out * 4);
    fill(x, rows * in);
    fill(w, out * in);
    fill(b, out);
    reference(x, rows, in, w, out, b, ref);
    for (int direct = 1; direct >= 0; direct--)
        for (int wrong = 0; wrong < 2; wrong++) {
            cpu_backend_set_direct_conv(be, direct);
            avo_arena_reset(arena);
            int64_t xs[2] = {rows, in}, ws[2] = {out, in}, bs[1] = {out};
            avo_tensor X, W, B, Y = {0};
            float saved = w[37 * in + 111];
            if (wrong) w[37 * in + 111] += 0.5f;
            CHECK_OK(avo_tensor_from_host(arena, 2, xs, x, &X, &err), &err);
            CHECK_OK(avo_tensor_from_host(arena, 2, ws, w, &W, &err), &err);
            CHECK_OK(avo_tensor_from_host(arena, 1, bs, b, &B, &err), &err);
            w[37 * in + 111] = saved;
            CHECK_OK(avo_op_linear(be, arena, &X, &W, &B, &Y, &err), &err);
            CHECK_OK(avo_tensor_to_host(arena, &Y, got, rows * out, &err), &err);
            double e = avo_test_rel_error(got, ref, rows * out);
            if (wrong)
                CHECK_MSG(e > 1e-3, "%s: a wrong weight went unseen (rel error %g)", direct ? "avx512" : "sgemm", e);
            else
                CHECK_MSG(e < 1e-5, "%s linear through the op: rel error %g", direct ? "avx512" : "sgemm", e);
        }
    cpu_backend_set_direct_conv(be, true);
    free(x), free(w), free(b), free(ref), free(got);
}

int main(void) {
    avo_error err = {0};
    avo_backend *be = NULL;
    avo_arena *arena = NULL;
    CHECK_OK(avo_backend_cpu_create(2, &be, &err), &err);
    CHECK_OK(avo_arena_create(be, 1 << 20, &arena, &err), &err);
    if (!be || !arena) TEST_MAIN_END();
    if (cpu_conv1d_avx512_available()) {
        kernel_grid(arena);
        through_op(be, arena);
    } else {
        fprintf(stderr, "SKIP avx512 fp32 linear: this CPU has no AVX-512\n");
    }
    avo_arena_free(arena);
    avo_backend_free(be);
    TEST_MAIN_END();
}
