/* CPU 2-D operators on [C, H, W] tensors (engine.h, "2-D operators").
 *
 * conv2d: im2col over tiles of whole output rows + OpenBLAS sgemm, with the bias, ReLU and residual
 * applied to each tile right after its GEMM, while it is still in cache (one pass over the output
 * instead of three). A 1x1 stride-1 convolution needs no im2col: x is already the column matrix.
 * conv_transpose2d: one GEMM gives every input pixel's contribution per kernel tap, scattered into
 * the output (col2im) by one thread per output channel. */
#include "engine/engine_internal.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

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
            for (int64_t i = 0; i < n; i++) y[i] = fmaxf(y[i] + bias, 0.0f) + r[i];
        else if (relu)
            for (int64_t i = 0; i < n; i++) y[i] = fmaxf(y[i] + bias, 0.0f);
        else if (r)
            for (int64_t i = 0; i < n; i++) y[i] = y[i] + bias + r[i];
        else if (B)
            for (int64_t i = 0; i < n; i++) y[i] += bias;
    }
}

avo_status cpu_conv2d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                      const avo_conv2d_params *p, const avo_tensor *residual, avo_tensor *y, avo_error *err) {
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
        for (int64_t i = 0; i < total; i++) Y[i] = fmaxf(Y[i], 0.0f);
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
