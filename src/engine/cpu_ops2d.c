/* CPU 2-D operators on [C, H, W] tensors (engine.h, "2-D operators").
 *
 * conv2d 3x3 / padding 1 and 1x1 / padding 0 (stride 1, one group) with AVX-512 or AVX2: a direct
 * convolution (RMVPE is made of these). Each work item is three 16-pixel vectors of the flattened
 * output plane; for every block of 8 output channels it accumulates all Cin x taps products in 24
 * zmm registers (AVX2: 8-pixel vectors, 4 channels, 12 ymm registers), reading input and weights in
 * place (masked loads give the zero padding), and
 * applies bias, ReLU and residual before its one store. No im2col matrix and no GEMM packing: at
 * 16-64 channels those copies cost more than the arithmetic, and on this code's first machine (Zen 5)
 * the kernel ran 130-200 GFLOP/s per core against OpenBLAS's 46-80 through im2col (masked stores
 * there cost several times a plain one: full vectors use plain ones). Threads take work items
 * (OpenMP); with few pixels the channel blocks are split among them too.
 * conv2d otherwise: im2col over tiles of whole output rows + OpenBLAS sgemm, with the bias, ReLU and
 * residual applied to each tile right after its GEMM, while it is still in cache (one pass over the
 * output instead of three). A 1x1 stride-1 convolution needs no im2col: x is already the column
 * matrix. AVO_CONV2D_GENERIC=1 in the environment forces this path, AVO_CONV2D_AVX2=1 the AVX2
 * kernel (tests compare all three).
 * conv_transpose2d: one GEMM gives every input pixel's contribution per kernel tap, scattered into
 * the output (col2im) by one thread per output channel. */
#include "engine/engine_internal.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_DIRECT_KERNELS 1
#endif

/* Column scratch per tile, in floats: small enough to stay in the caches between im2col and GEMM,
 * big enough that a GEMM is not dominated by OpenBLAS's thread start-up. */
#define COLS2D_FLOATS (512 * 1024)

static int nthreads(const avo_backend *be) { return be->n_threads; }

/* First and one-past-last output index i in [0, nout) with 0 <= i*s + off < n. */
static void valid_span(int64_t off, int64_t s, int64_t n, int64_t nout, int64_t *lo, int64_t *hi) {
    int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t h = n - off <= 0 ? 0 : (n - off + s - 1) / s;
    if (h > nout) h = nout;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* cols[(c*KH + kh)*KW + kw, (ho - r0)*Wo + wo] = x[c, ho*sh - ph + kh*dh, wo*sw - pw + kw*dw] (0 outside)
 * for output rows r0 <= ho < r1. */
static void im2col2d(const avo_backend *be, const float *X, int64_t cin, int64_t h, int64_t w, int64_t kh_, int64_t kw_,
                     int64_t wo, const avo_conv2d_params *p, int64_t r0, int64_t r1, float *cols) {
    int64_t n = (r1 - r0) * wo, rows = cin * kh_ * kw_;
    int64_t sh = p->stride[0], sw = p->stride[1], ph = p->padding[0], pw = p->padding[1], dh = p->dilation[0],
            dw = p->dilation[1];
#pragma omp parallel for num_threads(nthreads(be)) if (rows * n > 65536)
    for (int64_t row = 0; row < rows; row++) {
        int64_t c = row / (kh_ * kw_), kh = row / kw_ % kh_, kw = row % kw_;
        int64_t off = kw * dw - pw, lo, hi;
        valid_span(off, sw, w, wo, &lo, &hi);
        float *dst = cols + row * n;
        for (int64_t ho = r0; ho < r1; ho++, dst += wo) {
            int64_t hi_ = ho * sh - ph + kh * dh;
            if (hi_ < 0 || hi_ >= h) {
                memset(dst, 0, (size_t)wo * sizeof(float));
                continue;
            }
            const float *src = X + (c * h + hi_) * w;
            for (int64_t i = 0; i < lo; i++) dst[i] = 0.0f;
            if (sw == 1)
                memcpy(dst + lo, src + lo + off, (size_t)(hi - lo) * sizeof(float));
            else
                for (int64_t i = lo; i < hi; i++) dst[i] = src[i * sw + off];
            for (int64_t i = hi; i < wo; i++) dst[i] = 0.0f;
        }
    }
}

/* y[o, 0..n) = relu?(y + b[o]) + r[o, 0..n) for rows of stride ld (y and r alike). */
static void epilogue(const avo_backend *be, float *Y, const float *B, const float *R, bool relu, int64_t rows, int64_t n,
                     int64_t ld) {
#pragma omp parallel for num_threads(nthreads(be)) if (rows * n > 32768)
    for (int64_t o = 0; o < rows; o++) {
        float *y = Y + o * ld, bias = B ? B[o] : 0.0f;
        const float *r = R ? R + o * ld : NULL;
        if (relu && r)
            for (int64_t i = 0; i < n; i++) {
                float v = y[i] + bias;
                y[i] = (v > 0.0f ? v : 0.0f) + r[i];
            }
        else if (relu)
            for (int64_t i = 0; i < n; i++) {
                float v = y[i] + bias;
                y[i] = v > 0.0f ? v : 0.0f;
            }
        else if (r)
            for (int64_t i = 0; i < n; i++) y[i] = y[i] + bias + r[i];
        else if (B)
            for (int64_t i = 0; i < n; i++) y[i] += bias;
    }
}

/* ---- direct 3x3 / 1x1 convolution (AVX-512, AVX2) -------------------------------------------- */

#define DC_NV 3 /* output vectors per work item */

#ifdef HAVE_DIRECT_KERNELS
/* Geometry of the output vectors v0 .. v0 + DC_NV - 1 (vw consecutive pixels each of the flattened
 * [H, W] plane; nvec in all) of a 3x3 (taps 9, padding 1) or 1x1 (taps 1) kernel. Tap t = 3*kh + kw
 * of lane i reads x[c, row_i + kh - 1, col_i + kw - 1], which is the plane offset off[j][t] + i: one
 * load per tap, with bit i of mask[j][t] set when that source lies inside the image (elsewhere it is
 * the zero padding) and the lane inside the plane. smask[j] has the lanes to store (0: no vector). */
static void dc_geometry(int vw, int64_t h, int64_t w, int taps, int64_t v0, int64_t nvec, int64_t off[DC_NV][9],
                        uint32_t mask[DC_NV][9], int64_t yoff[DC_NV], uint32_t smask[DC_NV]) {
    int64_t hw = h * w;
    for (int j = 0; j < DC_NV; j++) {
        int64_t p0 = (v0 + j) * vw, n = hw - p0 < vw ? hw - p0 : vw;
        for (int t = 0; t < 9; t++) off[j][t] = p0 + (t / 3 - 1) * w + (t % 3 - 1), mask[j][t] = 0;
        yoff[j] = p0;
        smask[j] = 0;
        if (v0 + j >= nvec) continue;
        smask[j] = (1u << n) - 1;
        if (taps == 1) { /* 1x1: the pixel itself */
            off[j][0] = p0;
            mask[j][0] = smask[j];
            continue;
        }
        int64_t row = p0 / w, col = p0 % w;
        if (col + n <= w) { /* one image row: each tap's lanes are one run of bits */
            for (int kh = 0; kh < 3; kh++) {
                if (row + kh - 1 < 0 || row + kh - 1 >= h) continue;
                for (int kw = 0; kw < 3; kw++) {
                    int64_t c0 = col + kw - 1, lo = c0 < 0 ? -c0 : 0, hi = w - c0 < n ? w - c0 : n;
                    mask[j][kh * 3 + kw] = hi > lo ? ((1u << hi) - 1) & ~((1u << lo) - 1) : 0;
                }
            }
        } else { /* the vector spans rows (narrow or odd widths): lane by lane */
            for (int64_t i = 0, r = row, cc = col; i < n; i++) {
                for (int t = 0; t < 9; t++) {
                    int64_t rr = r + t / 3 - 1, c2 = cc + t % 3 - 1;
                    if (rr >= 0 && rr < h && c2 >= 0 && c2 < w) mask[j][t] |= 1u << i;
                }
                if (++cc == w) cc = 0, r++;
            }
        }
    }
}

/* Wide planes: the input row that the next output row needs first, and its residual, fetched
 * ahead; at 16-32 channels there are too many streams for the hardware prefetcher. */
static void dc_prefetch(const float *X, int64_t cin, int64_t hw, int64_t w, int vw, const float *R, int64_t o0,
                        int64_t o1, const int64_t yoff[DC_NV], const uint32_t smask[DC_NV]) {
    if (w < vw) return;
    for (int j = 0; j < DC_NV; j++) {
        if (!smask[j]) continue;
        int64_t next = yoff[j] + 2 * w;
        if (next + vw <= hw)
            for (int64_t c = 0; c < cin; c++) _mm_prefetch((const char *)(X + c * hw + next), _MM_HINT_T0);
        if (R && yoff[j] + w + vw <= hw)
            for (int64_t o = o0; o < o1; o++) _mm_prefetch((const char *)(R + o * hw + yoff[j] + w), _MM_HINT_T0);
    }
}

/* AVX-512: for output channels [8 ob0, 8 ob1) of DC_NV vectors of 16 pixels, all Cin x taps products
 * accumulate in 24 zmm registers; weights are read in place ([Cout, Cin * taps] rows, 8 at a time). */
#define A5_OB 8
__attribute__((target("avx512f"))) static void dc_tile_avx512(const float *X, int64_t cin, int64_t h, int64_t w,
                                                              int taps, const float *W, int64_t cout, const float *B,
                                                              const float *R, bool relu, float *Y, int64_t v0,
                                                              int64_t nvec, int64_t ob0, int64_t ob1) {
    int64_t hw = h * w, off[DC_NV][9], yoff[DC_NV];
    uint32_t mask[DC_NV][9], smask[DC_NV];
    dc_geometry(16, h, w, taps, v0, nvec, off, mask, yoff, smask);
    dc_prefetch(X, cin, hw, w, 16, R, ob0 * A5_OB, ob1 * A5_OB < cout ? ob1 * A5_OB : cout, yoff, smask);
    __mmask16 km[DC_NV][9];
    for (int j = 0; j < DC_NV; j++)
        for (int t = 0; t < 9; t++) km[j][t] = (__mmask16)mask[j][t];
    int64_t kk = cin * taps;
    for (int64_t ob = ob0; ob < ob1; ob++) {
        /* rows past Cout repeat the last one; their results are not stored */
        const float *wr[A5_OB];
        for (int o = 0; o < A5_OB; o++) wr[o] = W + (ob * A5_OB + o < cout ? ob * A5_OB + o : cout - 1) * kk;
        const float *w0 = wr[0], *w1 = wr[1], *w2 = wr[2], *w3 = wr[3], *w4 = wr[4], *w5 = wr[5], *w6 = wr[6],
                    *w7 = wr[7];
        /* named accumulators: an array indexed at run time would live on the stack */
#define A5_ZERO(o) __m512 p##o = _mm512_setzero_ps(), q##o = _mm512_setzero_ps(), r##o = _mm512_setzero_ps();
#define A5_FMA(o)                                                                                       \
    {                                                                                                  \
        __m512 wv = _mm512_set1_ps(w##o[k]);                                                           \
        p##o = _mm512_fmadd_ps(wv, x0, p##o);                                                          \
        q##o = _mm512_fmadd_ps(wv, x1, q##o);                                                          \
        r##o = _mm512_fmadd_ps(wv, x2, r##o);                                                          \
    }
        A5_ZERO(0) A5_ZERO(1) A5_ZERO(2) A5_ZERO(3) A5_ZERO(4) A5_ZERO(5) A5_ZERO(6) A5_ZERO(7)
        for (int64_t c = 0; c < cin; c++) {
            uintptr_t xc = (uintptr_t)(X + c * hw); /* integer addresses: off may point before the plane */
            for (int t = 0; t < taps; t++) {
                int64_t k = c * taps + t;
                __m512 x0 = _mm512_maskz_loadu_ps(km[0][t], (const void *)(xc + (uintptr_t)(off[0][t] * 4)));
                __m512 x1 = _mm512_maskz_loadu_ps(km[1][t], (const void *)(xc + (uintptr_t)(off[1][t] * 4)));
                __m512 x2 = _mm512_maskz_loadu_ps(km[2][t], (const void *)(xc + (uintptr_t)(off[2][t] * 4)));
                A5_FMA(0) A5_FMA(1) A5_FMA(2) A5_FMA(3) A5_FMA(4) A5_FMA(5) A5_FMA(6) A5_FMA(7)
            }
        }
#undef A5_ZERO
#undef A5_FMA
        __m512 acc[DC_NV][A5_OB] = {
            {p0, p1, p2, p3, p4, p5, p6, p7}, {q0, q1, q2, q3, q4, q5, q6, q7}, {r0, r1, r2, r3, r4, r5, r6, r7}};
        __m512 zero = _mm512_setzero_ps();
        for (int o = 0; o < A5_OB && ob * A5_OB + o < cout; o++) {
            int64_t oc = ob * A5_OB + o;
            __m512 bias = _mm512_set1_ps(B ? B[oc] : 0.0f);
            for (int j = 0; j < DC_NV; j++) {
                if (!smask[j]) continue;
                __m512 v = _mm512_add_ps(acc[j][o], bias);
                if (relu) v = _mm512_max_ps(v, zero);
                if (smask[j] == 0xFFFF) { /* masked stores are slow on some cores: only at the end */
                    if (R) v = _mm512_add_ps(v, _mm512_loadu_ps(R + oc * hw + yoff[j]));
                    _mm512_storeu_ps(Y + oc * hw + yoff[j], v);
                } else {
                    __mmask16 sm = (__mmask16)smask[j];
                    if (R) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(sm, R + oc * hw + yoff[j]));
                    _mm512_mask_storeu_ps(Y + oc * hw + yoff[j], sm, v);
                }
            }
        }
    }
}

/* AVX2 + FMA (16 ymm registers): DC_NV vectors of 8 pixels x 4 output channels = 12 accumulators.
 * Work items whose taps are all inside the image skip the masked loads. */
#define A2_OB 4
__attribute__((target("avx2,fma"))) static void dc_tile_avx2(const float *X, int64_t cin, int64_t h, int64_t w,
                                                             int taps, const float *W, int64_t cout, const float *B,
                                                             const float *R, bool relu, float *Y, int64_t v0,
                                                             int64_t nvec, int64_t ob0, int64_t ob1) {
    int64_t hw = h * w, off[DC_NV][9], yoff[DC_NV];
    uint32_t mask[DC_NV][9], smask[DC_NV];
    dc_geometry(8, h, w, taps, v0, nvec, off, mask, yoff, smask);
    dc_prefetch(X, cin, hw, w, 8, R, ob0 * A2_OB, ob1 * A2_OB < cout ? ob1 * A2_OB : cout, yoff, smask);
    bool full = true;
    __m256i vm[DC_NV][9];
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    for (int j = 0; j < DC_NV; j++)
        for (int t = 0; t < taps; t++) {
            full = full && mask[j][t] == 0xFF;
            vm[j][t] = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)mask[j][t]), sel), sel);
        }
    int64_t kk = cin * taps;
    for (int64_t ob = ob0; ob < ob1; ob++) {
        const float *wr[A2_OB];
        for (int o = 0; o < A2_OB; o++) wr[o] = W + (ob * A2_OB + o < cout ? ob * A2_OB + o : cout - 1) * kk;
        const float *w0 = wr[0], *w1 = wr[1], *w2 = wr[2], *w3 = wr[3];
#define A2_ZERO(o) __m256 p##o = _mm256_setzero_ps(), q##o = _mm256_setzero_ps(), r##o = _mm256_setzero_ps();
#define A2_FMA(o)                                                                                       \
    {                                                                                                  \
        __m256 wv = _mm256_broadcast_ss(w##o + k);                                                     \
        p##o = _mm256_fmadd_ps(wv, x0, p##o);                                                          \
        q##o = _mm256_fmadd_ps(wv, x1, q##o);                                                          \
        r##o = _mm256_fmadd_ps(wv, x2, r##o);                                                          \
    }
        A2_ZERO(0) A2_ZERO(1) A2_ZERO(2) A2_ZERO(3)
        for (int64_t c = 0; c < cin; c++) {
            uintptr_t xc = (uintptr_t)(X + c * hw);
            if (full) {
                for (int t = 0; t < taps; t++) {
                    int64_t k = c * taps + t;
                    __m256 x0 = _mm256_loadu_ps((const float *)(xc + (uintptr_t)(off[0][t] * 4)));
                    __m256 x1 = _mm256_loadu_ps((const float *)(xc + (uintptr_t)(off[1][t] * 4)));
                    __m256 x2 = _mm256_loadu_ps((const float *)(xc + (uintptr_t)(off[2][t] * 4)));
                    A2_FMA(0) A2_FMA(1) A2_FMA(2) A2_FMA(3)
                }
            } else {
                for (int t = 0; t < taps; t++) {
                    int64_t k = c * taps + t;
                    __m256 x0 = _mm256_maskload_ps((const float *)(xc + (uintptr_t)(off[0][t] * 4)), vm[0][t]);
                    __m256 x1 = _mm256_maskload_ps((const float *)(xc + (uintptr_t)(off[1][t] * 4)), vm[1][t]);
                    __m256 x2 = _mm256_maskload_ps((const float *)(xc + (uintptr_t)(off[2][t] * 4)), vm[2][t]);
                    A2_FMA(0) A2_FMA(1) A2_FMA(2) A2_FMA(3)
                }
            }
        }
#undef A2_ZERO
#undef A2_FMA
        __m256 acc[DC_NV][A2_OB] = {{p0, p1, p2, p3}, {q0, q1, q2, q3}, {r0, r1, r2, r3}};
        __m256 zero = _mm256_setzero_ps();
        for (int o = 0; o < A2_OB && ob * A2_OB + o < cout; o++) {
            int64_t oc = ob * A2_OB + o;
            __m256 bias = _mm256_set1_ps(B ? B[oc] : 0.0f);
            for (int j = 0; j < DC_NV; j++) {
                if (!smask[j]) continue;
                __m256 v = _mm256_add_ps(acc[j][o], bias);
                if (relu) v = _mm256_max_ps(v, zero);
                float *y = Y + oc * hw + yoff[j];
                const float *r = R ? R + oc * hw + yoff[j] : NULL;
                if (smask[j] == 0xFF) {
                    if (r) v = _mm256_add_ps(v, _mm256_loadu_ps(r));
                    _mm256_storeu_ps(y, v);
                } else { /* the plane's last pixels */
                    float tmp[8];
                    _mm256_storeu_ps(tmp, v);
                    for (int i = 0; i < 8 && (smask[j] >> i & 1); i++) y[i] = tmp[i] + (r ? r[i] : 0.0f);
                }
            }
        }
    }
}
#endif

typedef void (*dc_tile_fn)(const float *X, int64_t cin, int64_t h, int64_t w, int taps, const float *W, int64_t cout,
                           const float *B, const float *R, bool relu, float *Y, int64_t v0, int64_t nvec, int64_t ob0,
                           int64_t ob1);

/* The direct kernel for this convolution on this CPU, or NULL (then im2col + sgemm). The environment
 * can force a path for tests: AVO_CONV2D_GENERIC=1 (no direct kernel), AVO_CONV2D_AVX2=1. */
static dc_tile_fn dc_select(const avo_tensor *w, const avo_conv2d_params *p, int *vw, int *ob) {
#ifdef HAVE_DIRECT_KERNELS
    const char *gen = getenv("AVO_CONV2D_GENERIC"), *avx2 = getenv("AVO_CONV2D_AVX2");
    int k = (int)w->shape[2];
    bool shape = (k == 3 || k == 1) && w->shape[3] == k && p->stride[0] == 1 && p->stride[1] == 1 &&
                 p->padding[0] == k / 2 && p->padding[1] == k / 2 && p->dilation[0] == 1 && p->dilation[1] == 1 &&
                 p->groups == 1;
    if (!shape || (gen && *gen && *gen != '0')) return NULL;
    bool force2 = avx2 && *avx2 && *avx2 != '0';
    if (!force2 && __builtin_cpu_supports("avx512f")) {
        *vw = 16, *ob = A5_OB;
        return dc_tile_avx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *vw = 8, *ob = A2_OB;
        return dc_tile_avx2;
    }
#else
    (void)w, (void)p, (void)vw, (void)ob;
#endif
    return NULL;
}

static void dc_conv(avo_backend *be, dc_tile_fn tile, int vw, int obw, const avo_tensor *x, const avo_tensor *w,
                    const avo_tensor *b, const avo_conv2d_params *p, const avo_tensor *residual, avo_tensor *y) {
    int64_t cin = x->shape[0], h = x->shape[1], wd = x->shape[2], cout = w->shape[0];
    int taps = (int)(w->shape[2] * w->shape[3]);
    int64_t nob = (cout + obw - 1) / obw, nvec = (h * wd + vw - 1) / vw, ntile = (nvec + DC_NV - 1) / DC_NV;
    int nt = nthreads(be);
    /* Few pixels (deep levels, short inputs): split the channel blocks too, so every thread has work. */
    int64_t per = nob, want = 8 * (int64_t)nt;
    if (ntile < want) per = (nob * ntile + want - 1) / want;
    if (per < 1) per = 1;
    int64_t ngroup = (nob + per - 1) / per, items = ntile * ngroup;
    const float *X = avo_tensor_f32(x), *W = avo_tensor_f32(w), *B = b ? avo_tensor_f32(b) : NULL;
    const float *R = residual ? avo_tensor_f32(residual) : NULL;
    float *Y = avo_tensor_f32(y);
    bool relu = p->relu;
    /* Dynamic chunks: on a shared machine a thread that loses its core would hold up a static split. */
    int64_t chunk = items / (16 * (int64_t)nt);
    if (chunk < 1) chunk = 1;
#pragma omp parallel for schedule(dynamic, chunk) num_threads(nt) if (items > 1 && ntile * cout * cin > 4096)
    for (int64_t it = 0; it < items; it++) {
        int64_t t = it / ngroup, g = it % ngroup, ob1 = (g + 1) * per < nob ? (g + 1) * per : nob;
        tile(X, cin, h, wd, taps, W, cout, B, R, relu, Y, DC_NV * t, nvec, g * per, ob1);
    }
}

avo_status cpu_conv2d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                      const avo_conv2d_params *p, const avo_tensor *residual, avo_tensor *y, avo_error *err) {
    int vw = 0, obw = 0;
    dc_tile_fn tile = dc_select(w, p, &vw, &obw);
    if (tile) {
        dc_conv(be, tile, vw, obw, x, w, b, p, residual, y);
        return AVO_OK;
    }
    int64_t cin = x->shape[0], h = x->shape[1], wd = x->shape[2];
    int64_t cout = w->shape[0], kh = w->shape[2], kw = w->shape[3];
    int64_t ho = y->shape[1], wo = y->shape[2], hw = ho * wo;
    int64_t g = p->groups, cig = cin / g, cog = cout / g, kdim = cig * kh * kw;
    const float *X = avo_tensor_f32(x), *W = avo_tensor_f32(w), *B = b ? avo_tensor_f32(b) : NULL;
    const float *R = residual ? avo_tensor_f32(residual) : NULL;
    float *Y = avo_tensor_f32(y);
    bool plain = kh == 1 && kw == 1 && p->stride[0] == 1 && p->stride[1] == 1 && p->padding[0] == 0 &&
                 p->padding[1] == 0; /* x is already the column matrix */
    int64_t tile_rows = COLS2D_FLOATS / (kdim * wo > 0 ? kdim * wo : 1);
    if (tile_rows < 1) tile_rows = 1;
    if (tile_rows > ho) tile_rows = ho;
    float *cols = NULL;
    if (!plain) {
        avo_status st = engine_scratch(a, kdim * tile_rows * wo, &cols, err);
        if (st) return st;
    }
    for (int64_t gi = 0; gi < g; gi++) {
        const float *Xg = X + gi * cig * h * wd, *Wg = W + gi * cog * kdim;
        float *Yg = Y + gi * cog * hw;
        const float *Rg = R ? R + gi * cog * hw : NULL;
        const float *Bg = B ? B + gi * cog : NULL;
        for (int64_t r0 = 0; r0 < ho; r0 += tile_rows) {
            int64_t r1 = r0 + tile_rows < ho ? r0 + tile_rows : ho, n = (r1 - r0) * wo;
            const float *Bm;
            int64_t ldb;
            if (plain) {
                Bm = Xg + r0 * wo;
                ldb = hw;
            } else {
                im2col2d(be, Xg, cig, h, wd, kh, kw, wo, p, r0, r1, cols);
                Bm = cols;
                ldb = n;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cog, (int)n, (int)kdim, 1.0f, Wg, (int)kdim, Bm,
                        (int)ldb, 0.0f, Yg + r0 * wo, (int)hw);
            epilogue(be, Yg + r0 * wo, Bg, Rg ? Rg + r0 * wo : NULL, p->relu, cog, n, hw);
        }
    }
    return AVO_OK;
}

avo_status cpu_conv_transpose2d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                                const avo_tensor *b, const avo_conv_transpose2d_params *p, avo_tensor *y,
                                avo_error *err) {
    int64_t cin = x->shape[0], h = x->shape[1], wd = x->shape[2];
    int64_t cout = w->shape[1], kh_ = w->shape[2], kw_ = w->shape[3], ho = y->shape[1], wo = y->shape[2];
    int64_t sh = p->stride[0], sw = p->stride[1], ph = p->padding[0], pw = p->padding[1];
    int64_t taps = kh_ * kw_, rows = cout * taps;
    const float *X = avo_tensor_f32(x), *W = avo_tensor_f32(w), *B = b ? avo_tensor_f32(b) : NULL;
    float *Y = avo_tensor_f32(y);
    int64_t tile = COLS2D_FLOATS / (rows * wd > 0 ? rows * wd : 1); /* input rows per tile */
    if (tile < 1) tile = 1;
    if (tile > h) tile = h;
    float *cols = NULL;
    avo_status st = engine_scratch(a, rows * tile * wd, &cols, err);
    if (st) return st;
    int nt = nthreads(be);
#pragma omp parallel for num_threads(nt) if (cout * ho * wo > 32768)
    for (int64_t o = 0; o < cout; o++) {
        float v = B ? B[o] : 0.0f, *yo = Y + o * ho * wo;
        for (int64_t i = 0; i < ho * wo; i++) yo[i] = v;
    }
    for (int64_t r0 = 0; r0 < h; r0 += tile) {
        int64_t r1 = r0 + tile < h ? r0 + tile : h, n = (r1 - r0) * wd;
        /* cols[(o*KH + kh)*KW + kw, pixel] = sum_c w[c, o, kh, kw] x[c, pixel] */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)rows, (int)n, (int)cin, 1.0f, W, (int)rows,
                    X + r0 * wd, (int)(h * wd), 0.0f, cols, (int)n);
        /* col2im: tap (kh, kw) of input pixel (i, j) lands on (i*sh - ph + kh, j*sw - pw + kw) */
#pragma omp parallel for num_threads(nt) if (rows * n > 65536)
        for (int64_t o = 0; o < cout; o++) {
            float *yo = Y + o * ho * wo;
            for (int64_t kh = 0; kh < kh_; kh++)
                for (int64_t kw = 0; kw < kw_; kw++) {
                    const float *cr = cols + (o * taps + kh * kw_ + kw) * n;
                    int64_t lo, hi;
                    valid_span(kw - pw, sw, wo, wd, &lo, &hi);
                    for (int64_t i = r0; i < r1; i++) {
                        int64_t oi = i * sh - ph + kh;
                        if (oi < 0 || oi >= ho) continue;
                        float *yr = yo + oi * wo;
                        const float *c = cr + (i - r0) * wd;
                        for (int64_t j = lo; j < hi; j++) yr[j * sw + kw - pw] += c[j];
                    }
                }
        }
    }
    if (p->relu) {
        int64_t total = cout * ho * wo;
#pragma omp parallel for num_threads(nt) if (total > 65536)
        for (int64_t i = 0; i < total; i++) Y[i] = Y[i] > 0.0f ? Y[i] : 0.0f;
    }
    return AVO_OK;
}

avo_status cpu_pool2d(avo_backend *be, const avo_tensor *x, avo_pool kind, const avo_pool2d_params *p, avo_tensor *y,
                      avo_error *err) {
    (void)err;
    int64_t c = x->shape[0], h = x->shape[1], w = x->shape[2], ho = y->shape[1], wo = y->shape[2];
    int64_t kh = p->kernel[0], kw = p->kernel[1], sh = p->stride[0], sw = p->stride[1], ph = p->padding[0],
            pw = p->padding[1];
    const float *X = avo_tensor_f32(x);
    float *Y = avo_tensor_f32(y);
    float inv = 1.0f / (float)(kh * kw);
#pragma omp parallel for num_threads(nthreads(be)) if (c * ho * wo * kh * kw > 65536)
    for (int64_t ch = 0; ch < c; ch++) {
        const float *xc = X + ch * h * w;
        float *yc = Y + ch * ho * wo;
        for (int64_t i = 0; i < ho; i++) {
            int64_t i0 = i * sh - ph, i1 = i0 + kh;
            if (i0 < 0) i0 = 0;
            if (i1 > h) i1 = h;
            for (int64_t j = 0; j < wo; j++) {
                int64_t j0 = j * sw - pw, j1 = j0 + kw;
                if (j0 < 0) j0 = 0;
                if (j1 > w) j1 = w;
                float acc = kind == AVO_POOL_MAX ? -INFINITY : 0.0f;
                for (int64_t r = i0; r < i1; r++)
                    for (int64_t s = j0; s < j1; s++) {
                        float v = xc[r * w + s];
                        acc = kind == AVO_POOL_MAX ? (v > acc ? v : acc) : acc + v;
                    }
                yc[i * wo + j] = kind == AVO_POOL_MAX ? acc : acc * inv;
            }
        }
    }
    return AVO_OK;
}

avo_status cpu_transpose01(avo_backend *be, const avo_tensor *x, avo_tensor *y, avo_error *err) {
    (void)err;
    int64_t na = x->shape[0], nb = x->shape[1], nc = x->shape[2];
    const float *X = avo_tensor_f32(x);
    float *Y = avo_tensor_f32(y);
#pragma omp parallel for num_threads(nthreads(be)) if (na * nb * nc > 65536)
    for (int64_t j = 0; j < nb; j++)
        for (int64_t i = 0; i < na; i++) memcpy(Y + (j * na + i) * nc, X + (i * nb + j) * nc, (size_t)nc * sizeof(float));
    return AVO_OK;
}
