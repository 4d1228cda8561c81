/* CPU 2-D operators on [C, H, W] tensors (engine.h, "2-D operators").
 *
 * conv2d 3x3 / padding 1 and 1x1 / padding 0 (stride 1, one group) with AVX-512: a direct
 * convolution (RMVPE is made of these). Each work item is three 16-pixel vectors of the flattened
 * output plane; for every block of 8 output channels it accumulates all Cin x taps products in 24
 * zmm registers, reading input and weights in place (masked loads give the zero padding), and
 * applies bias, ReLU and residual before its one store. No im2col matrix and no GEMM packing: at
 * 16-64 channels those copies cost more than the arithmetic, and on this code's first machine (Zen 5)
 * the kernel ran 130-200 GFLOP/s per core against OpenBLAS's 46-80 through im2col (masked stores
 * there cost several times a plain one: full vectors use plain ones). Threads take work items
 * (OpenMP); with few pixels the channel blocks are split among them too.
 * conv2d otherwise: im2col over tiles of whole output rows + OpenBLAS sgemm, with the bias, ReLU and
 * residual applied to each tile right after its GEMM, while it is still in cache (one pass over the
 * output instead of three). A 1x1 stride-1 convolution needs no im2col: x is already the column
 * matrix. AVO_CONV2D_GENERIC=1 in the environment forces this path (tests compare both).
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
#define HAVE_AVX512_KERNEL 1
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

/* ---- direct 3x3 convolution (AVX-512) ------------------------------------------------------ */

#define DC_OB 8   /* output channels per register block */
#define DC_VEC 16 /* pixels per vector */
#define DC_NV 3   /* vectors per work item: 3 x 8 accumulators + 3 inputs of the 32 zmm registers */

#ifdef HAVE_AVX512_KERNEL
/* Output vectors v0 .. v0 + 2 (16 consecutive pixels each of the flattened [H, W] plane; nvec in
 * all) for output-channel blocks ob0..ob1-1, of a 3x3 (taps 9, padding 1) or 1x1 (taps 1) kernel.
 * Tap t = 3*kh + kw of lane i reads x[c, row_i + kh - 1, col_i + kw - 1], which is the plane offset
 * off[j][t] + i: one load per tap, with mask[j][t] keeping the lanes whose source lies inside the
 * image (the zero padding) and inside the plane. Weights are read in place: [Cout, Cin * taps] rows
 * of 8 output channels. */
__attribute__((target("avx512f"))) static void dc_tile(const float *X, int64_t cin, int64_t h, int64_t w, int taps,
                                                       const float *W, int64_t cout, const float *B, const float *R,
                                                       bool relu, float *Y, int64_t v0, int64_t nvec, int64_t ob0,
                                                       int64_t ob1) {
    int64_t hw = h * w, off[DC_NV][9], yoff[DC_NV] = {0};
    __mmask16 mask[DC_NV][9], smask[DC_NV] = {0};
    for (int j = 0; j < DC_NV; j++) {
        int64_t p0 = (v0 + j) * DC_VEC, n = hw - p0 < DC_VEC ? hw - p0 : DC_VEC;
        for (int t = 0; t < 9; t++) off[j][t] = p0 + (t / 3 - 1) * w + (t % 3 - 1), mask[j][t] = 0;
        if (v0 + j >= nvec) continue;
        yoff[j] = p0;
        smask[j] = (__mmask16)((1u << n) - 1);
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
                    mask[j][kh * 3 + kw] = (__mmask16)(hi > lo ? ((1u << hi) - 1) & ~((1u << lo) - 1) : 0);
                }
            }
        } else { /* the vector spans rows (narrow or odd widths): lane by lane */
            for (int64_t i = 0, r = row, cc = col; i < n; i++) {
                for (int t = 0; t < 9; t++) {
                    int64_t rr = r + t / 3 - 1, c2 = cc + t % 3 - 1;
                    if (rr >= 0 && rr < h && c2 >= 0 && c2 < w) mask[j][t] |= (__mmask16)(1u << i);
                }
                if (++cc == w) cc = 0, r++;
            }
        }
    }
    /* Wide planes: the input row the next output row needs first, and its residual, fetched ahead;
     * at 16-32 channels there are too many streams for the hardware prefetcher. */
    if (w >= DC_VEC)
        for (int j = 0; j < DC_NV; j++) {
            if (!smask[j]) continue;
            int64_t next = yoff[j] + 2 * w;
            if (next + DC_VEC <= hw)
                for (int64_t c = 0; c < cin; c++) _mm_prefetch((const char *)(X + c * hw + next), _MM_HINT_T0);
            if (R && yoff[j] + w + DC_VEC <= hw)
                for (int64_t o = ob0 * DC_OB; o < ob1 * DC_OB && o < cout; o++)
                    _mm_prefetch((const char *)(R + o * hw + yoff[j] + w), _MM_HINT_T0);
        }
    int64_t k9 = cin * taps;
    for (int64_t ob = ob0; ob < ob1; ob++) {
        /* rows past Cout repeat the last one; their results are not stored */
        const float *wr[DC_OB];
        for (int o = 0; o < DC_OB; o++) wr[o] = W + (ob * DC_OB + o < cout ? ob * DC_OB + o : cout - 1) * k9;
        const float *w0 = wr[0], *w1 = wr[1], *w2 = wr[2], *w3 = wr[3], *w4 = wr[4], *w5 = wr[5], *w6 = wr[6],
                    *w7 = wr[7];
        /* 24 named accumulators: an array indexed at run time would live on the stack */
#define DC_ZERO(o) __m512 p##o = _mm512_setzero_ps(), q##o = _mm512_setzero_ps(), r##o = _mm512_setzero_ps();
#define DC_FMA(o)                                                                                       \
    {                                                                                                  \
        __m512 wv = _mm512_set1_ps(w##o[k]);                                                           \
        p##o = _mm512_fmadd_ps(wv, x0, p##o);                                                          \
        q##o = _mm512_fmadd_ps(wv, x1, q##o);                                                          \
        r##o = _mm512_fmadd_ps(wv, x2, r##o);                                                          \
    }
        DC_ZERO(0) DC_ZERO(1) DC_ZERO(2) DC_ZERO(3) DC_ZERO(4) DC_ZERO(5) DC_ZERO(6) DC_ZERO(7)
        for (int64_t c = 0; c < cin; c++) {
            uintptr_t xc = (uintptr_t)(X + c * hw); /* integer addresses: off may point before the plane */
            for (int t = 0; t < taps; t++) {
                int64_t k = c * taps + t;
                __m512 x0 = _mm512_maskz_loadu_ps(mask[0][t], (const void *)(xc + (uintptr_t)(off[0][t] * 4)));
                __m512 x1 = _mm512_maskz_loadu_ps(mask[1][t], (const void *)(xc + (uintptr_t)(off[1][t] * 4)));
                __m512 x2 = _mm512_maskz_loadu_ps(mask[2][t], (const void *)(xc + (uintptr_t)(off[2][t] * 4)));
                DC_FMA(0) DC_FMA(1) DC_FMA(2) DC_FMA(3) DC_FMA(4) DC_FMA(5) DC_FMA(6) DC_FMA(7)
            }
        }
#undef DC_ZERO
#undef DC_FMA
        __m512 acc[DC_NV][DC_OB] = {
            {p0, p1, p2, p3, p4, p5, p6, p7}, {q0, q1, q2, q3, q4, q5, q6, q7}, {r0, r1, r2, r3, r4, r5, r6, r7}};
        __m512 zero = _mm512_setzero_ps();
        for (int o = 0; o < DC_OB && ob * DC_OB + o < cout; o++) {
            int64_t oc = ob * DC_OB + o;
            __m512 bias = _mm512_set1_ps(B ? B[oc] : 0.0f);
            for (int j = 0; j < DC_NV; j++) {
                if (!smask[j]) continue;
                __m512 v = _mm512_add_ps(acc[j][o], bias);
                if (relu) v = _mm512_max_ps(v, zero);
                if (smask[j] == 0xFFFF) { /* masked stores are slow on some cores: only at the end */
                    if (R) v = _mm512_add_ps(v, _mm512_loadu_ps(R + oc * hw + yoff[j]));
                    _mm512_storeu_ps(Y + oc * hw + yoff[j], v);
                } else {
                    if (R) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(smask[j], R + oc * hw + yoff[j]));
                    _mm512_mask_storeu_ps(Y + oc * hw + yoff[j], smask[j], v);
                }
            }
        }
    }
}
#endif

/* Whether the direct kernel takes this convolution. */
static bool dc_usable(const avo_tensor *w, const avo_conv2d_params *p) {
#ifdef HAVE_AVX512_KERNEL
    const char *env = getenv("AVO_CONV2D_GENERIC");
    if (env && *env && *env != '0') return false;
    int k = (int)w->shape[2];
    return (k == 3 || k == 1) && w->shape[3] == k && p->stride[0] == 1 && p->stride[1] == 1 &&
           p->padding[0] == k / 2 && p->padding[1] == k / 2 && p->dilation[0] == 1 && p->dilation[1] == 1 &&
           p->groups == 1 && __builtin_cpu_supports("avx512f");
#else
    (void)w, (void)p;
    return false;
#endif
}

static avo_status dc_conv(avo_backend *be, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                          const avo_conv2d_params *p, const avo_tensor *residual, avo_tensor *y, avo_error *err) {
#ifdef HAVE_AVX512_KERNEL
    (void)err;
    int64_t cin = x->shape[0], h = x->shape[1], wd = x->shape[2], cout = w->shape[0];
    int taps = (int)(w->shape[2] * w->shape[3]);
    int64_t nob = (cout + DC_OB - 1) / DC_OB, nvec = (h * wd + DC_VEC - 1) / DC_VEC, ntile = (nvec + DC_NV - 1) / DC_NV;
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
        dc_tile(X, cin, h, wd, taps, W, cout, B, R, relu, Y, DC_NV * t, nvec, g * per, ob1);
    }
    return AVO_OK;
#else
    (void)be, (void)x, (void)w, (void)b, (void)p, (void)residual, (void)y;
    return avo_error_set(err, AVO_ERR_INTERNAL, "conv2d: direct kernel not built");
#endif
}

avo_status cpu_conv2d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                      const avo_conv2d_params *p, const avo_tensor *residual, avo_tensor *y, avo_error *err) {
    if (dc_usable(w, p)) return dc_conv(be, x, w, b, p, residual, y, err);
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
