/* CPU back end: OpenBLAS sgemm for the matrix work, OpenMP over channels/time for the rest.
 * Convolutions (groups 1) take the AVX-512 paths where the CPU has them (direct kernel, FFT,
 * Winograd; transposed ones as per-phase direct convolutions); otherwise im2col + sgemm, except when
 * each output channel reads one input channel (depthwise), where a direct loop over time is faster
 * and needs no scratch. */
#include "engine/cpu_conv1d.h"
#include "engine/cpu_math.h"
#include "engine/engine_internal.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef struct cpu_impl {
    avo_cpu_precision precision;
    int64_t gemm_fp32, gemm_bf16; /* weight-GEMM calls by the precision that really ran */
    bool direct_off;              /* cpu_backend_set_direct_conv(be, false): im2col + sgemm only */
    cpu_fft_mode fft_mode;        /* cpu_backend_set_fft_conv: when the FFT conv1d runs */
} cpu_impl;

static cpu_impl *impl_of(const avo_backend *be) { return (cpu_impl *)be->impl; }

static int nthreads(const avo_backend *be) { return be->n_threads; }

#define HUGE_PAGE_BYTES ((size_t)2 << 20)

/* Arena chunks of 2 MB and more are asked for transparent huge pages: the models stream activations of
 * hundreds of MB with one channel row per page and more, so 4 KB pages cost a TLB miss per tap and a
 * page fault per 4 KB on first touch. Measured on the 30 s RVC v2 conversion stage (2 threads):
 * 11.3 -> 8.8 s, HuBERT 2.72 -> 2.20 s, the synthesizer 7.34 -> 5.69 s, page faults per run 140k -> 0. */
static void *cpu_alloc(avo_backend *be, size_t bytes) {
    (void)be;
    void *p = NULL;
    if (bytes >= HUGE_PAGE_BYTES) {
        bytes = (bytes + HUGE_PAGE_BYTES - 1) & ~(HUGE_PAGE_BYTES - 1);
        if (posix_memalign(&p, HUGE_PAGE_BYTES, bytes)) return NULL;
        (void)madvise(p, bytes, MADV_HUGEPAGE); /* a hint: without it the memory works as before */
        return p;
    }
    if (posix_memalign(&p, ARENA_ALIGN, bytes ? bytes : ARENA_ALIGN)) return NULL;
    return p;
}
static void cpu_free(avo_backend *be, void *p) {
    (void)be;
    free(p);
}
static void cpu_copy_in(avo_backend *be, void *dst, const float *src, size_t n) {
    (void)be;
    memcpy(dst, src, n * sizeof(float));
}
static void cpu_copy_out(avo_backend *be, float *dst, const void *src, size_t n) {
    (void)be;
    memcpy(dst, src, n * sizeof(float));
}
static void cpu_destroy(avo_backend *be) {
    free(be->impl);
    free(be);
}

/* Each row of y (rows x n) starts as bias[row] or 0. */
static void fill_rows(float *y, int64_t rows, int64_t n, const float *bias, int nt) {
#pragma omp parallel for num_threads(nt) if (rows * n > 32768)
    for (int64_t r = 0; r < rows; r++) {
        float v = bias ? bias[r] : 0.0f;
        float *yr = y + r * n;
        for (int64_t i = 0; i < n; i++) yr[i] = v;
    }
}

/* ---- linear --------------------------------------------------------------------------------- */

static avo_status cpu_linear(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                             const avo_tensor *b, avo_tensor *y, avo_error *err) {
    int64_t in = w->shape[1], out = w->shape[0], rows = avo_tensor_numel(x) / (in ? in : 1);
    float *Y = avo_tensor_f32(y);
    const float *B = b ? avo_tensor_f32(b) : NULL;
    if (impl_of(be)->precision == AVO_CPU_BF16 && cpu_backend_direct_conv(be) && cpu_conv1d_bf16_available() && rows > 0) {
        avo_status st = cpu_linear_bf16(a, avo_tensor_f32(x), rows, in, avo_tensor_f32(w), out, B, Y, nthreads(be), err);
        if (!st) impl_of(be)->gemm_bf16++;
        return st;
    }
    impl_of(be)->gemm_fp32++;
    if (cpu_backend_direct_conv(be) && cpu_linear_f32_preferred(rows, in, out))
        return cpu_linear_f32(a, avo_tensor_f32(x), rows, in, avo_tensor_f32(w), out, B, Y, nthreads(be), err);
    if (B) {
#pragma omp parallel for num_threads(nthreads(be)) if (rows * out > 32768)
        for (int64_t r = 0; r < rows; r++) memcpy(Y + r * out, B, (size_t)out * sizeof(float));
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)out, (int)in, 1.0f, avo_tensor_f32(x), (int)in,
                avo_tensor_f32(w), (int)in, B ? 1.0f : 0.0f, Y, (int)out);
    return AVO_OK;
}

/* ---- conv1d --------------------------------------------------------------------------------- */

/* First and one-past-last output index t with 0 <= t*s + off < n. */
static void valid_range(int64_t off, int64_t s, int64_t n, int64_t tout, int64_t *lo, int64_t *hi) {
    int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t h = n - off <= 0 ? 0 : (n - off + s - 1) / s;
    if (h > tout) h = tout;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

static void conv_direct_depthwise(const avo_backend *be, const float *X, const float *W, const float *B, float *Y,
                                  int64_t cout, int64_t cog, int64_t t, int64_t k, int64_t tout,
                                  const avo_conv1d_params *p) {
    int64_t s = p->stride, d = p->dilation, pad = p->padding;
#pragma omp parallel for num_threads(nthreads(be)) if (cout * tout * k > 65536)
    for (int64_t o = 0; o < cout; o++) {
        const float *xr = X + (o / cog) * t;
        const float *wr = W + o * k;
        float *yr = Y + o * tout;
        float bias = B ? B[o] : 0.0f;
        for (int64_t i = 0; i < tout; i++) yr[i] = bias;
        for (int64_t kk = 0; kk < k; kk++) {
            int64_t off = kk * d - pad, lo, hi;
            valid_range(off, s, t, tout, &lo, &hi);
            float wv = wr[kk];
            if (s == 1) {
                const float *xs = xr + off;
                for (int64_t i = lo; i < hi; i++) yr[i] += wv * xs[i];
            } else {
                for (int64_t i = lo; i < hi; i++) yr[i] += wv * xr[i * s + off];
            }
        }
    }
}

/* Column scratch is capped so long inputs (vocoder stages run at the audio rate) are processed in
 * time tiles instead of one im2col matrix of channels x kernel x samples. */
#define COLS_MAX_FLOATS (2 << 20)

static int64_t tile_len(int64_t rows, int64_t total) {
    int64_t n = COLS_MAX_FLOATS / (rows > 0 ? rows : 1);
    if (n < 256) n = 256;
    return n < total ? n : total;
}

/* cols[(c*k + kk), i - i0] = x[c, i*s + kk*d - pad] (0 outside) for output frames i0 <= i < i0 + n. */
static void im2col(const avo_backend *be, const float *X, int64_t cin, int64_t t, int64_t k, int64_t tout,
                   const avo_conv1d_params *p, int64_t i0, int64_t n, float *cols) {
    int64_t s = p->stride, d = p->dilation, pad = p->padding;
#pragma omp parallel for num_threads(nthreads(be)) if (cin * k * n > 65536)
    for (int64_t row = 0; row < cin * k; row++) {
        int64_t c = row / k, kk = row % k, off = kk * d - pad, lo, hi;
        const float *xr = X + c * t;
        float *cr = cols + row * n - i0;
        valid_range(off, s, t, tout, &lo, &hi);
        if (lo < i0) lo = i0;
        if (hi > i0 + n) hi = i0 + n;
        if (hi < lo) hi = lo;
        for (int64_t i = i0; i < lo && i < i0 + n; i++) cr[i] = 0.0f;
        if (s == 1)
            memcpy(cr + lo, xr + lo + off, (size_t)(hi - lo) * sizeof(float));
        else
            for (int64_t i = lo; i < hi; i++) cr[i] = xr[i * s + off];
        for (int64_t i = hi > i0 ? hi : i0; i < i0 + n; i++) cr[i] = 0.0f;
    }
}

/* One conv on the AVX-512 paths: FFT or Winograd where their cost rules expect a gain, else direct. */
static avo_status conv1d_one(avo_arena *a, const cpu_conv1d_args *c, avo_error *err) {
    if (c->fft_force ? cpu_conv1d_fft_supported(c) : cpu_conv1d_fft_preferred(c)) return cpu_conv1d_fft(a, c, err);
    if (!c->fft_force && cpu_conv1d_wino_preferred(c)) return cpu_conv1d_wino(a, c, err);
    return cpu_conv1d_direct(a, c, err);
}

/* A grouped conv as g direct convs on each group's slices (c holds one group's channel counts). */
static avo_status conv1d_per_group(avo_arena *a, const cpu_conv1d_args *c, int64_t g, avo_error *err) {
    cpu_conv1d_args gc = *c;
    for (int64_t gi = 0; gi < g; gi++) {
        gc.x = c->x + gi * c->cin * c->t;
        gc.w = c->w + gi * c->cout * c->cin * c->k;
        gc.bias = c->bias ? c->bias + gi * c->cout : NULL;
        gc.residual = c->residual ? c->residual + gi * c->cout * c->tout : NULL;
        gc.y = c->y + gi * c->cout * c->tout;
        avo_arena_mark mk = avo_arena_get_mark(a);
        avo_status st = cpu_conv1d_direct(a, &gc, err);
        avo_arena_rewind(a, mk);
        if (st) return st;
    }
    return AVO_OK;
}

/* The AVX-512 conv1d paths when they take the shape (*done tells): the FFT path (cpu_conv1d_fft.c)
 * or Winograd (cpu_conv1d_wino.c) where their cost rules expect a gain, else the direct kernel
 * (cpu_conv1d_avx512.c). Only these run BF16, so the precision counts are made here. */
static avo_status conv1d_direct(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                                const avo_tensor *b, const avo_conv1d_params *p, const avo_conv1d_fuse *f,
                                avo_tensor *y, bool *done, avo_error *err) {
    *done = false;
    int64_t g = p->groups > 0 ? p->groups : 1;
    /* depthwise keeps its own loop; grouped convs stay FP32 in BF16 mode as before */
    if (g != 1 && (x->shape[0] / g < 2 || impl_of(be)->precision == AVO_CPU_BF16)) return AVO_OK;
    cpu_conv1d_args c = {
        .x = avo_tensor_f32(x), .cin = x->shape[0], .t = x->shape[1],
        .w = avo_tensor_f32(w), .cout = w->shape[0], .k = w->shape[2],
        .bias = b ? avo_tensor_f32(b) : NULL,
        .residual = f && f->residual ? avo_tensor_f32(f->residual) : NULL,
        .y = avo_tensor_f32(y), .tout = y->shape[1],
        .stride = p->stride, .padding = p->padding, .dilation = p->dilation,
        .leaky = f && f->input_leaky_relu, .slope = f ? f->slope : 0.0f,
        .bf16 = impl_of(be)->precision == AVO_CPU_BF16,
        .enabled = !impl_of(be)->direct_off,
        .fft = impl_of(be)->fft_mode != CPU_FFT_OFF,
        .fft_force = impl_of(be)->fft_mode == CPU_FFT_ALWAYS,
        .nthreads = nthreads(be),
    };
    if (g != 1) { /* grouped (HuBERT's positional conv): the direct kernel on each group's slices */
        c.cin /= g;
        c.cout /= g;
    }
    if (!cpu_conv1d_direct_supported(&c)) return AVO_OK;
    avo_status st = g != 1 ? conv1d_per_group(a, &c, g, err) : conv1d_one(a, &c, err);
    if (st) return st;
    if (c.bf16)
        impl_of(be)->gemm_bf16++;
    else
        impl_of(be)->gemm_fp32++;
    *done = true;
    return AVO_OK;
}

static avo_status cpu_conv1d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                             const avo_tensor *b, const avo_conv1d_params *p, avo_tensor *y, avo_error *err) {
    int64_t cin = x->shape[0], t = x->shape[1], cout = w->shape[0], k = w->shape[2], tout = y->shape[1];
    int64_t g = p->groups, cig = cin / g, cog = cout / g;
    const float *X = avo_tensor_f32(x), *W = avo_tensor_f32(w), *B = b ? avo_tensor_f32(b) : NULL;
    float *Y = avo_tensor_f32(y);
    bool done = false;
    avo_status dst = conv1d_direct(be, a, x, w, b, p, NULL, y, &done, err);
    if (dst || done) return dst;
    impl_of(be)->gemm_fp32++;
    if (cig == 1) {
        conv_direct_depthwise(be, X, W, B, Y, cout, cog, t, k, tout, p);
        return AVO_OK;
    }
    fill_rows(Y, cout, tout, B, nthreads(be));
    bool plain = k == 1 && p->stride == 1 && p->padding == 0; /* x is already the column matrix */
    int64_t tile = tile_len(cig * k, tout);
    float *cols = NULL;
    if (!plain) {
        avo_status st = engine_scratch(a, cig * k * tile, &cols, err);
        if (st) return st;
    }
    for (int64_t gi = 0; gi < g; gi++) {
        const float *Xg = X + gi * cig * t, *Wg = W + gi * cog * cig * k;
        float *Yg = Y + gi * cog * tout;
        if (plain) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cog, (int)tout, (int)cig, 1.0f, Wg, (int)cig, Xg,
                        (int)t, 1.0f, Yg, (int)tout);
            continue;
        }
        for (int64_t i0 = 0; i0 < tout; i0 += tile) {
            int64_t n = tout - i0 < tile ? tout - i0 : tile;
            im2col(be, Xg, cig, t, k, tout, p, i0, n, cols);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cog, (int)n, (int)(cig * k), 1.0f, Wg,
                        (int)(cig * k), cols, (int)n, 1.0f, Yg + i0, (int)tout);
        }
    }
    return AVO_OK;
}

static avo_status cpu_act(avo_backend *be, const avo_tensor *x, avo_act act, float alpha, avo_tensor *y,
                          avo_error *err);
static avo_status cpu_binary(avo_backend *be, int op, const avo_tensor *x, const avo_tensor *y, avo_tensor *out,
                             avo_error *err);

/* y = conv1d(leaky?(x)) + b + residual: one pass in the direct kernel; otherwise the activation goes
 * to scratch, the convolution runs as above and the residual is added after. */
static avo_status cpu_conv1d_fused(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                                   const avo_tensor *b, const avo_conv1d_params *p, const avo_conv1d_fuse *f,
                                   avo_tensor *y, avo_error *err) {
    bool done = false;
    avo_status st = conv1d_direct(be, a, x, w, b, p, f, y, &done, err);
    if (st || done) return st;
    avo_tensor xa;
    if (f->input_leaky_relu) {
        st = avo_tensor_new(a, AVO_DTYPE_F32, 2, x->shape, &xa, err);
        if (!st) st = cpu_act(be, x, AVO_ACT_LEAKY_RELU, f->slope, &xa, err);
        if (st) return st;
        x = &xa;
    }
    st = cpu_conv1d(be, a, x, w, b, p, y, err);
    if (!st && f->residual) st = cpu_binary(be, 0, y, f->residual, y, err);
    return st;
}

/* ---- transposed conv1d ---------------------------------------------------------------------- */

static int64_t floor_div64(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* Transposed conv1d (groups 1, dilation 1) as one stride-1 convolution per output phase on the direct
 * kernel, which runs FP32 or BF16 at its own rate (the sgemm + col2im path below is FP32 only and
 * adds a pass over the taps' columns). Output t = q*s + r - pad gets the taps kk = r + m*s of input
 * q - m: for phase r that is a plain convolution with the M_r taps reversed and left padding
 * M_r - 1 - q0 (q0: the phase's first q), written into scratch and then spread into y with stride s.
 * *done false when it does not apply (a phase would need negative padding, or no direct kernel). */
static avo_status conv_transpose1d_phases(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                                          const avo_tensor *b, const avo_conv_transpose1d_params *p, avo_tensor *y,
                                          bool *done, avo_error *err) {
    int64_t cin = x->shape[0], t = x->shape[1], k = w->shape[2], cout = y->shape[0], tout = y->shape[1];
    int64_t s = p->stride, pad = p->padding;
    *done = false;
    if (p->groups != 1 || p->dilation != 1 || !cpu_backend_direct_conv(be) || s < 1 || s > k || t < 1) return AVO_OK;
    for (int64_t r = 0; r < s; r++) { /* every phase has taps and non-negative padding */
        int64_t m = (k - r + s - 1) / s, q0 = -floor_div64(r - pad, s);
        if (m - 1 - q0 < 0) return AVO_OK;
    }
    const bool bf16 = impl_of(be)->precision == AVO_CPU_BF16 && cpu_conv1d_bf16_available();
    const float *X = avo_tensor_f32(x), *W = avo_tensor_f32(w), *B = b ? avo_tensor_f32(b) : NULL;
    float *Y = avo_tensor_f32(y);
    avo_arena_mark mk = avo_arena_get_mark(a);
    avo_status st = AVO_OK;
    for (int64_t r = 0; r < s && !st; r++) {
        int64_t m = (k - r + s - 1) / s, q0 = -floor_div64(r - pad, s), q1 = floor_div64(tout - 1 + pad - r, s);
        int64_t n = q1 - q0 + 1;
        if (n <= 0) continue;
        float *wr = NULL, *yr = NULL;
        st = engine_scratch(a, cout * cin * m, &wr, err);
        if (!st) st = engine_scratch(a, cout * n, &yr, err);
        if (st) break;
        /* wr[o, c, j] = w[c, o, r + (m - 1 - j) * s] */
#pragma omp parallel for num_threads(nthreads(be)) if (cout * cin * m > 65536)
        for (int64_t o = 0; o < cout; o++)
            for (int64_t c = 0; c < cin; c++)
                for (int64_t j = 0; j < m; j++) wr[(o * cin + c) * m + j] = W[(c * cout + o) * k + r + (m - 1 - j) * s];
        cpu_conv1d_args c = {
            .x = X, .cin = cin, .t = t, .w = wr, .cout = cout, .k = m, .bias = B, .y = yr, .tout = n,
            .stride = 1, .padding = (int)(m - 1 - q0), .dilation = 1, .bf16 = bf16, .enabled = true,
            .nthreads = nthreads(be),
        };
        if (!cpu_conv1d_direct_supported(&c)) { /* checked above; kept as a guard */
            avo_arena_rewind(a, mk);
            return AVO_OK;
        }
        st = cpu_conv1d_direct(a, &c, err);
        if (st) break;
#pragma omp parallel for num_threads(nthreads(be)) if (cout * n > 65536)
        for (int64_t o = 0; o < cout; o++) {
            float *dst = Y + o * tout + q0 * s + r - pad;
            const float *src = yr + o * n;
            for (int64_t i = 0; i < n; i++) dst[i * s] = src[i];
        }
    }
    avo_arena_rewind(a, mk);
    if (st) return st;
    if (bf16)
        impl_of(be)->gemm_bf16++;
    else
        impl_of(be)->gemm_fp32++;
    *done = true;
    return AVO_OK;
}

static avo_status cpu_conv_transpose1d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                                       const avo_tensor *b, const avo_conv_transpose1d_params *p, avo_tensor *y,
                                       avo_error *err) {
    int64_t cin = x->shape[0], t = x->shape[1], k = w->shape[2], cout = y->shape[0], tout = y->shape[1];
    int64_t g = p->groups, cig = cin / g, cog = cout / g, s = p->stride, d = p->dilation, pad = p->padding;
    const float *X = avo_tensor_f32(x), *W = avo_tensor_f32(w), *B = b ? avo_tensor_f32(b) : NULL;
    float *Y = avo_tensor_f32(y);
    bool done = false;
    avo_status pst = conv_transpose1d_phases(be, a, x, w, b, p, y, &done, err);
    if (pst || done) return pst;
    int64_t tile = tile_len(cog * k, t);
    float *cols = NULL;
    avo_status st = engine_scratch(a, cog * k * tile, &cols, err);
    if (st) return st;
    impl_of(be)->gemm_fp32++;
    fill_rows(Y, cout, tout, B, nthreads(be));
    for (int64_t gi = 0; gi < g; gi++)
        for (int64_t i0 = 0; i0 < t; i0 += tile) { /* tiles of input frames; overlaps simply add */
            int64_t n = t - i0 < tile ? t - i0 : tile;
            /* cols[(o*k + kk), i] = sum_c w[c, o, kk] x[c, i0 + i]: each input frame's contribution per tap */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(cog * k), (int)n, (int)cig, 1.0f,
                        W + gi * cig * cog * k, (int)(cog * k), X + gi * cig * t + i0, (int)t, 0.0f, cols, (int)n);
            /* col2im: tap kk of frame i lands on output i*s + kk*d - pad; one thread per output channel */
#pragma omp parallel for num_threads(nthreads(be)) if (cog * k * n > 65536)
            for (int64_t o = 0; o < cog; o++) {
                float *yr = Y + (gi * cog + o) * tout;
                for (int64_t kk = 0; kk < k; kk++) {
                    int64_t off = kk * d - pad + i0 * s, lo, hi;
                    valid_range(off, s, tout, n, &lo, &hi);
                    const float *cr = cols + (o * k + kk) * n;
                    if (s == 1) {
                        float *ys = yr + off;
                        for (int64_t i = lo; i < hi; i++) ys[i] += cr[i];
                    } else {
                        for (int64_t i = lo; i < hi; i++) yr[i * s + off] += cr[i];
                    }
                }
            }
        }
    return AVO_OK;
}

/* ---- normalisation -------------------------------------------------------------------------- */

#define LN_BLOCK 256

static avo_status cpu_layer_norm(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *gamma,
                                 const avo_tensor *beta, float eps, avo_tensor *y, avo_error *err) {
    (void)a;
    (void)err;
    int64_t c = x->shape[0], t = x->shape[1];
    const float *X = avo_tensor_f32(x), *G = gamma ? avo_tensor_f32(gamma) : NULL, *Bt = beta ? avo_tensor_f32(beta) : NULL;
    float *Y = avo_tensor_f32(y);
    int64_t nblocks = (t + LN_BLOCK - 1) / LN_BLOCK;
    /* Blocks of time steps: channel-outer loops keep the inner loop contiguous and vectorisable. */
#pragma omp parallel for num_threads(nthreads(be)) if (c * t > 32768)
    for (int64_t bl = 0; bl < nblocks; bl++) {
        float mean[LN_BLOCK], rstd[LN_BLOCK];
        int64_t t0 = bl * LN_BLOCK, n = t - t0 < LN_BLOCK ? t - t0 : LN_BLOCK;
        for (int64_t i = 0; i < n; i++) mean[i] = rstd[i] = 0.0f;
        for (int64_t ch = 0; ch < c; ch++) {
            const float *xr = X + ch * t + t0;
            for (int64_t i = 0; i < n; i++) mean[i] += xr[i];
        }
        for (int64_t i = 0; i < n; i++) mean[i] /= (float)c;
        for (int64_t ch = 0; ch < c; ch++) {
            const float *xr = X + ch * t + t0;
            for (int64_t i = 0; i < n; i++) {
                float dv = xr[i] - mean[i];
                rstd[i] += dv * dv;
            }
        }
        for (int64_t i = 0; i < n; i++) rstd[i] = 1.0f / sqrtf(rstd[i] / (float)c + eps);
        for (int64_t ch = 0; ch < c; ch++) {
            const float *xr = X + ch * t + t0;
            float *yr = Y + ch * t + t0;
            float gv = G ? G[ch] : 1.0f, bv = Bt ? Bt[ch] : 0.0f;
            for (int64_t i = 0; i < n; i++) yr[i] = (xr[i] - mean[i]) * rstd[i] * gv + bv;
        }
    }
    return AVO_OK;
}

static avo_status cpu_group_norm(avo_backend *be, avo_arena *a, const avo_tensor *x, int groups,
                                 const avo_tensor *gamma, const avo_tensor *beta, float eps, avo_tensor *y,
                                 avo_error *err) {
    (void)a;
    (void)err;
    int64_t c = x->shape[0], t = x->shape[1], cg = c / groups, n = cg * t;
    const float *X = avo_tensor_f32(x), *G = gamma ? avo_tensor_f32(gamma) : NULL, *Bt = beta ? avo_tensor_f32(beta) : NULL;
    float *Y = avo_tensor_f32(y);
#pragma omp parallel for num_threads(nthreads(be)) if (c * t > 32768)
    for (int g = 0; g < groups; g++) {
        const float *xg = X + g * n;
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < n; i++) sum += xg[i];
        double mean = sum / (double)n;
        for (int64_t i = 0; i < n; i++) sq += (xg[i] - mean) * (xg[i] - mean);
        float m = (float)mean, r = (float)(1.0 / sqrt(sq / (double)n + eps));
        for (int64_t ch = g * cg; ch < (g + 1) * cg; ch++) {
            float sc = r * (G ? G[ch] : 1.0f), sh = (Bt ? Bt[ch] : 0.0f) - m * sc;
            const float *xr = X + ch * t;
            float *yr = Y + ch * t;
            for (int64_t i = 0; i < t; i++) yr[i] = xr[i] * sc + sh;
        }
    }
    return AVO_OK;
}

/* ---- elementwise ---------------------------------------------------------------------------- */

#define EW_CHUNK 16384

static avo_status cpu_act(avo_backend *be, const avo_tensor *x, avo_act act, float alpha, avo_tensor *y,
                          avo_error *err) {
    (void)err;
    int64_t n = avo_tensor_numel(x), nch = (n + EW_CHUNK - 1) / EW_CHUNK;
    const float *X = avo_tensor_f32(x);
    float *Y = avo_tensor_f32(y);
#pragma omp parallel for num_threads(nthreads(be)) if (n > 2 * EW_CHUNK)
    for (int64_t ch = 0; ch < nch; ch++) {
        int64_t i0 = ch * EW_CHUNK, i1 = i0 + EW_CHUNK < n ? i0 + EW_CHUNK : n;
        switch (act) {
        case AVO_ACT_RELU:
            for (int64_t i = i0; i < i1; i++) Y[i] = X[i] > 0.0f ? X[i] : 0.0f;
            break;
        case AVO_ACT_LEAKY_RELU:
            for (int64_t i = i0; i < i1; i++) Y[i] = X[i] > 0.0f ? X[i] : X[i] * alpha;
            break;
        case AVO_ACT_GELU: /* erf form, as PyTorch's default */
            cpu_math_gelu(X + i0, Y + i0, i1 - i0);
            break;
        case AVO_ACT_TANH:
            cpu_math_tanh(X + i0, Y + i0, i1 - i0);
            break;
        case AVO_ACT_SIGMOID:
            cpu_math_sigmoid(X + i0, Y + i0, i1 - i0);
            break;
        case AVO_ACT_SOFTPLUS: /* threshold 20, as PyTorch's */
            cpu_math_softplus(X + i0, Y + i0, i1 - i0);
            break;
        }
    }
    return AVO_OK;
}

static avo_status cpu_binary(avo_backend *be, int op, const avo_tensor *x, const avo_tensor *y, avo_tensor *out,
                             avo_error *err) {
    (void)err;
    int64_t n = avo_tensor_numel(x), ny = avo_tensor_numel(y);
    const float *X = avo_tensor_f32(x), *Yv = avo_tensor_f32(y);
    float *O = avo_tensor_f32(out);
    if (ny == n) {
#pragma omp parallel for num_threads(nthreads(be)) if (n > 2 * EW_CHUNK)
        for (int64_t ch = 0; ch < (n + EW_CHUNK - 1) / EW_CHUNK; ch++) {
            int64_t i0 = ch * EW_CHUNK, i1 = i0 + EW_CHUNK < n ? i0 + EW_CHUNK : n;
            if (op == 0)
                for (int64_t i = i0; i < i1; i++) O[i] = X[i] + Yv[i];
            else
                for (int64_t i = i0; i < i1; i++) O[i] = X[i] * Yv[i];
        }
        return AVO_OK;
    }
    int64_t inner = n / ny; /* y broadcasts over everything after x's first dimension */
#pragma omp parallel for num_threads(nthreads(be)) if (n > 2 * EW_CHUNK)
    for (int64_t r = 0; r < ny; r++) {
        const float *xr = X + r * inner;
        float *orow = O + r * inner, v = Yv[r];
        if (op == 0)
            for (int64_t i = 0; i < inner; i++) orow[i] = xr[i] + v;
        else
            for (int64_t i = 0; i < inner; i++) orow[i] = xr[i] * v;
    }
    return AVO_OK;
}

/* ---- relative-position attention ------------------------------------------------------------ */

/* Per head h, with Q, K, V the head's [kc, T] rows and E_k, E_v its [2w+1, kc] embeddings:
 *   S[i, j] = (Q[:, i] . K[:, j] + [|j-i| <= w] Q[:, i] . E_k[j-i+w]) / sqrt(kc)
 *   P = softmax over j;  O[:, i] = sum_j P[i, j] V[:, j] + sum_{|j-i|<=w} P[i, j] E_v[j-i+w]
 * which is what VITS's rel_to_abs / abs_to_rel reshapes compute (offsets past the window weigh 0). */
/* Score rows are computed for blocks of queries (softmax is per row, so blocks are exact) to keep
 * the scratch at about ATT_MAX_FLOATS instead of T x T. */
#define ATT_MAX_FLOATS (4 << 20)

/* S[i, j] = scale * sum_c Q[c, i] K[c, j] for the bq queries of a block (Q: column i0 of the head's
 * [kc, t] rows, stride t): a 1x1 convolution of K with the scaled, transposed queries as its weights. */
static avo_status att_scores_avx512(avo_arena *a, const float *Q, const float *K, int64_t t, int64_t kc, int64_t bq,
                                    float scale, float *Qt, float *S, int nt, avo_error *err) {
    for (int64_t i = 0; i < bq; i++)
        for (int64_t c = 0; c < kc; c++) Qt[i * kc + c] = scale * Q[c * t + i];
    cpu_conv1d_args cv = {.x = K, .cin = kc, .t = t, .w = Qt, .cout = bq, .k = 1, .y = S, .tout = t, .stride = 1,
                          .dilation = 1, .enabled = true, .nthreads = nt};
    return cpu_conv1d_direct(a, &cv, err);
}

/* O[c, i] = sum_j V[c, j] P[i, j] for the block (O: column i0 of the head's [kc, t] rows): the linear
 * Ot = P V^T ([bq, kc], into Ot), then transposed into place. */
static avo_status att_values_avx512(avo_arena *a, const float *P, const float *V, int64_t t, int64_t kc, int64_t bq,
                                    float *Ot, float *O, int nt, avo_error *err) {
    avo_status st = cpu_linear_f32(a, P, bq, t, V, kc, NULL, Ot, nt, err);
    if (st) return st;
    for (int64_t c = 0; c < kc; c++)
        for (int64_t i = 0; i < bq; i++) O[c * t + i] = Ot[i * kc + c];
    return AVO_OK;
}

static avo_status cpu_rel_attention(avo_backend *be, avo_arena *a, const avo_tensor *q, const avo_tensor *k,
                                    const avo_tensor *v, const avo_tensor *ek, const avo_tensor *ev, int heads,
                                    int window, avo_tensor *out, avo_error *err) {
    int64_t c = q->shape[0], t = q->shape[1], kc = c / heads, nr = 2 * (int64_t)window + 1;
    int64_t qb = ATT_MAX_FLOATS / (t > 0 ? t : 1);
    if (qb < 64) qb = 64;
    if (qb > t) qb = t;
    float *S = NULL, *R = NULL;
    avo_status st = engine_scratch(a, qb * t, &S, err);
    if (!st && window > 0) st = engine_scratch(a, qb * nr, &R, err);
    if (st) return st;
    float scale = 1.0f / sqrtf((float)kc);
    int nt = nthreads(be);
    /* The two T x T products on the AVX-512 kernels (sgemm here runs Haswell kernels) when long enough
     * to pay for their transposes; Qt: the transposed query block, then the transposed output block. */
    const bool fast = cpu_backend_direct_conv(be) && t >= 128 && kc >= 8;
    float *Qt = NULL;
    if (!st && fast) st = engine_scratch(a, qb * kc, &Qt, err);
    if (st) return st;
    for (int h = 0; h < heads; h++) {
        const float *Q = avo_tensor_f32(q) + h * kc * t, *K = avo_tensor_f32(k) + h * kc * t,
                    *V = avo_tensor_f32(v) + h * kc * t;
        float *O = avo_tensor_f32(out) + h * kc * t;
        const float *Ek = NULL, *Ev = NULL;
        if (window > 0) {
            Ek = avo_tensor_f32(ek) + (ek->shape[0] == 1 ? 0 : h * nr * kc);
            Ev = avo_tensor_f32(ev) + (ev->shape[0] == 1 ? 0 : h * nr * kc);
        }
        for (int64_t i0 = 0; i0 < t; i0 += qb) {
            int64_t bq = t - i0 < qb ? t - i0 : qb;
            avo_arena_mark mk = avo_arena_get_mark(a);
            if (fast) {
                st = att_scores_avx512(a, Q + i0, K, t, kc, bq, scale, Qt, S, nt, err);
                if (st) return st;
            } else {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)bq, (int)t, (int)kc, scale, Q + i0, (int)t, K,
                            (int)t, 0.0f, S, (int)t);
            }
            if (window > 0) /* R[i, r] = Q[:, i] . E_k[r] / sqrt(kc) */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, (int)bq, (int)nr, (int)kc, scale, Q + i0, (int)t, Ek,
                            (int)kc, 0.0f, R, (int)nr);
#pragma omp parallel for num_threads(nt) if (bq * t > 65536)
            for (int64_t ii = 0; ii < bq; ii++) {
                int64_t i = i0 + ii;
                float *srow = S + ii * t;
                if (window > 0) {
                    float *rrow = R + ii * nr;
                    for (int64_t r = 0; r < nr; r++) {
                        int64_t j = i + r - window;
                        if (j >= 0 && j < t) srow[j] += rrow[r];
                    }
                }
                if (fast) {
                    cpu_softmax_row_avx512(srow, t);
                } else {
                    float mx = srow[0];
                    for (int64_t j = 1; j < t; j++) mx = srow[j] > mx ? srow[j] : mx;
                    for (int64_t j = 0; j < t; j++) srow[j] -= mx;
                    cpu_math_exp(srow, srow, t);
                    float sum = 0.0f;
                    for (int64_t j = 0; j < t; j++) sum += srow[j];
                    float inv = 1.0f / sum;
                    for (int64_t j = 0; j < t; j++) srow[j] *= inv;
                }
                if (window > 0) { /* R becomes the band of P around the diagonal, by offset */
                    float *rrow = R + ii * nr;
                    for (int64_t r = 0; r < nr; r++) {
                        int64_t j = i + r - window;
                        rrow[r] = j >= 0 && j < t ? srow[j] : 0.0f;
                    }
                }
            }
            if (fast) {
                st = att_values_avx512(a, S, V, t, kc, bq, Qt, O + i0, nt, err);
                if (st) return st;
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)kc, (int)bq, (int)t, 1.0f, V, (int)t, S, (int)t,
                            0.0f, O + i0, (int)t);
            }
            if (window > 0)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, (int)kc, (int)bq, (int)nr, 1.0f, Ev, (int)kc, R, (int)nr,
                            1.0f, O + i0, (int)t);
            avo_arena_rewind(a, mk); /* the kernels' scratch, per block */
        }
    }
    return AVO_OK;
}

/* ---- lookup, resampling, pooling ------------------------------------------------------------ */

static avo_status cpu_embedding(avo_backend *be, const avo_tensor *table, const avo_tensor *ids, avo_tensor *out,
                                avo_error *err) {
    (void)be;
    int64_t n = avo_tensor_numel(ids), rows = table->shape[0], d = table->shape[1];
    const int32_t *idv = ids->data;
    for (int64_t i = 0; i < n; i++) {
        if (idv[i] < 0 || idv[i] >= rows)
            return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "embedding: id %d at %lld is outside [0, %lld)", (int)idv[i],
                                 (long long)i, (long long)rows);
        memcpy(avo_tensor_f32(out) + i * d, avo_tensor_f32(table) + (int64_t)idv[i] * d, (size_t)d * sizeof(float));
    }
    return AVO_OK;
}

static avo_status cpu_upsample(avo_backend *be, const avo_tensor *x, avo_upsample mode, avo_tensor *out,
                               avo_error *err) {
    (void)err;
    int64_t c = x->shape[0], tin = x->shape[1], tout = out->shape[1];
    /* The source position in float, as PyTorch computes it, so indices agree exactly. */
    float scale = (float)tin / (float)tout;
#pragma omp parallel for num_threads(nthreads(be)) if (c * tout > 65536)
    for (int64_t ch = 0; ch < c; ch++) {
        const float *xr = avo_tensor_f32(x) + ch * tin;
        float *yr = avo_tensor_f32(out) + ch * tout;
        for (int64_t i = 0; i < tout; i++) {
            if (mode == AVO_UPSAMPLE_NEAREST) {
                int64_t s = tout == tin ? i : (int64_t)floorf((float)i * scale);
                yr[i] = xr[s < tin - 1 ? s : tin - 1];
            } else {
                float src = scale * ((float)i + 0.5f) - 0.5f;
                if (src < 0.0f) src = 0.0f;
                int64_t i0 = (int64_t)src, i1 = i0 + (i0 < tin - 1 ? 1 : 0);
                float l1 = src - (float)i0;
                yr[i] = (1.0f - l1) * xr[i0] + l1 * xr[i1];
            }
        }
    }
    return AVO_OK;
}

static avo_status cpu_pool1d(avo_backend *be, const avo_tensor *x, avo_pool kind, int kernel, int stride, int padding,
                             avo_tensor *out, avo_error *err) {
    (void)err;
    int64_t c = x->shape[0], t = x->shape[1], tout = out->shape[1];
#pragma omp parallel for num_threads(nthreads(be)) if (c * tout * kernel > 65536)
    for (int64_t ch = 0; ch < c; ch++) {
        const float *xr = avo_tensor_f32(x) + ch * t;
        float *yr = avo_tensor_f32(out) + ch * tout;
        for (int64_t i = 0; i < tout; i++) {
            int64_t s0 = i * stride - padding, s1 = s0 + kernel;
            if (s0 < 0) s0 = 0;
            if (s1 > t) s1 = t;
            if (kind == AVO_POOL_MAX) {
                float m = -INFINITY;
                for (int64_t j = s0; j < s1; j++) m = xr[j] > m ? xr[j] : m;
                yr[i] = m;
            } else {
                float s = 0.0f;
                for (int64_t j = s0; j < s1; j++) s += xr[j];
                yr[i] = s / (float)kernel;
            }
        }
    }
    return AVO_OK;
}

/* ---- layout ---------------------------------------------------------------------------------- */

#define TR_BLOCK 32

static avo_status cpu_transpose(avo_backend *be, const avo_tensor *x, avo_tensor *out, avo_error *err) {
    (void)err;
    int64_t r = x->shape[0], c = x->shape[1], nb = (r + TR_BLOCK - 1) / TR_BLOCK;
    const float *X = avo_tensor_f32(x);
    float *Y = avo_tensor_f32(out);
    /* Square blocks keep both the reads and the writes within a few cache lines. */
#pragma omp parallel for num_threads(nthreads(be)) if (r * c > 65536)
    for (int64_t bi = 0; bi < nb; bi++)
        for (int64_t j0 = 0; j0 < c; j0 += TR_BLOCK) {
            int64_t i1 = (bi + 1) * TR_BLOCK < r ? (bi + 1) * TR_BLOCK : r, j1 = j0 + TR_BLOCK < c ? j0 + TR_BLOCK : c;
            for (int64_t i = bi * TR_BLOCK; i < i1; i++)
                for (int64_t j = j0; j < j1; j++) Y[j * r + i] = X[i * c + j];
        }
    return AVO_OK;
}

static avo_status cpu_copy(avo_backend *be, const avo_tensor *x, avo_tensor *out, avo_error *err) {
    (void)be;
    (void)err;
    if (out->data != x->data) memmove(out->data, x->data, (size_t)avo_tensor_numel(x) * sizeof(float));
    return AVO_OK;
}

/* ---- bidirectional GRU ---------------------------------------------------------------------- */

/* One direction: gx [T, 3H] holds W_ih x_t + b_ih; wt is W_hh transposed ([H, 3H]) so the
 * recurrent product is a sum of contiguous axpys (vectorises without a reduction); out has row
 * stride ostride. */
static void gru_direction(const float *gx, const float *wt, const float *bhh, int64_t t, int64_t h, bool reverse,
                          float *hs, float *gh, float *out, int64_t ostride) {
    int64_t h3 = 3 * h;
    for (int64_t i = 0; i < h; i++) hs[i] = 0.0f;
    for (int64_t step = 0; step < t; step++) {
        int64_t ti = reverse ? t - 1 - step : step;
        for (int64_t j = 0; j < h3; j++) gh[j] = bhh ? bhh[j] : 0.0f;
        int64_t k = 0;
        for (; k + 4 <= h; k += 4) { /* four rows per pass: a quarter of the loads and stores of gh */
            const float *w0 = wt + k * h3, *w1 = w0 + h3, *w2 = w1 + h3, *w3 = w2 + h3;
            float h0 = hs[k], h1 = hs[k + 1], h2 = hs[k + 2], hk3 = hs[k + 3];
            for (int64_t j = 0; j < h3; j++) gh[j] += w0[j] * h0 + w1[j] * h1 + w2[j] * h2 + w3[j] * hk3;
        }
        for (; k < h; k++) {
            const float *wr = wt + k * h3;
            float hk = hs[k];
            for (int64_t j = 0; j < h3; j++) gh[j] += wr[j] * hk;
        }
        const float *g = gx + ti * h3;
        float *o = out + ti * ostride;
        /* gates over whole rows of gh (scratch, rebuilt each step): r, z, then n */
        for (int64_t i = 0; i < 2 * h; i++) gh[i] += g[i];
        cpu_math_sigmoid(gh, gh, 2 * h);
        for (int64_t i = 0; i < h; i++) gh[2 * h + i] = g[2 * h + i] + gh[i] * gh[2 * h + i];
        cpu_math_tanh(gh + 2 * h, gh + 2 * h, h);
        for (int64_t i = 0; i < h; i++) {
            float z = gh[h + i], n = gh[2 * h + i];
            hs[i] = (1.0f - z) * n + z * hs[i];
            o[i] = hs[i];
        }
    }
}

static avo_status cpu_bigru(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_gru_weights *w,
                            avo_tensor *out, avo_error *err) {
    int64_t t = x->shape[0], in = x->shape[1], h = w->w_hh[0]->shape[1], h3 = 3 * h;
    float *gx = NULL, *state = NULL, *wt = NULL;
    avo_status st = engine_scratch(a, 2 * t * h3, &gx, err);
    if (!st) st = engine_scratch(a, 2 * 4 * h, &state, err);
    if (!st) st = engine_scratch(a, 2 * h3 * h, &wt, err);
    if (st) return st;
    /* Input projections for all frames at once: the only part that is not sequential. */
    for (int d = 0; d < 2; d++) {
        float *g = gx + d * t * h3;
        fill_rows(g, t, h3, NULL, 1);
        if (w->b_ih[d]) {
            const float *bih = avo_tensor_f32(w->b_ih[d]);
            for (int64_t i = 0; i < t; i++) memcpy(g + i * h3, bih, (size_t)h3 * sizeof(float));
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)t, (int)h3, (int)in, 1.0f, avo_tensor_f32(x), (int)in,
                    avo_tensor_f32(w->w_ih[d]), (int)in, 1.0f, g, (int)h3);
        const float *whh = avo_tensor_f32(w->w_hh[d]);
        float *wtd = wt + d * h3 * h;
        for (int64_t j = 0; j < h3; j++)
            for (int64_t k = 0; k < h; k++) wtd[k * h3 + j] = whh[j * h + k];
    }
    int nt = nthreads(be) >= 2 ? 2 : 1;
    /* The two directions are independent recurrences: one thread each. */
#pragma omp parallel for num_threads(nt)
    for (int d = 0; d < 2; d++)
        gru_direction(gx + d * t * h3, wt + d * h3 * h, w->b_hh[d] ? avo_tensor_f32(w->b_hh[d]) : NULL, t, h, d == 1,
                      state + d * 4 * h, state + d * 4 * h + h, avo_tensor_f32(out) + d * h, 2 * h);
    return AVO_OK;
}

/* The 2-D convolutions (cpu_ops2d.c) run FP32 sgemm: counted here so the precision counts are whole. */
static avo_status cpu_conv2d_counted(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                                     const avo_tensor *b, const avo_conv2d_params *p, const avo_tensor *residual,
                                     avo_tensor *y, avo_error *err) {
    impl_of(be)->gemm_fp32++;
    return cpu_conv2d(be, a, x, w, b, p, residual, y, err);
}

static avo_status cpu_conv_transpose2d_counted(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                                               const avo_tensor *b, const avo_conv_transpose2d_params *p, avo_tensor *y,
                                               avo_error *err) {
    impl_of(be)->gemm_fp32++;
    return cpu_conv_transpose2d(be, a, x, w, b, p, y, err);
}

static const avo_backend_ops cpu_ops = {
    .name = "cpu",
    .host_memory = true,
    .mem_alloc = cpu_alloc,
    .mem_free = cpu_free,
    .copy_in = cpu_copy_in,
    .copy_out = cpu_copy_out,
    .destroy = cpu_destroy,
    .linear = cpu_linear,
    .conv1d = cpu_conv1d,
    .conv_transpose1d = cpu_conv_transpose1d,
    .layer_norm = cpu_layer_norm,
    .group_norm = cpu_group_norm,
    .act = cpu_act,
    .binary = cpu_binary,
    .rel_attention = cpu_rel_attention,
    .embedding = cpu_embedding,
    .upsample = cpu_upsample,
    .pool1d = cpu_pool1d,
    .transpose = cpu_transpose,
    .copy = cpu_copy,
    .bigru = cpu_bigru,
    .conv2d = cpu_conv2d_counted,
    .conv_transpose2d = cpu_conv_transpose2d_counted,
    .pool2d = cpu_pool2d,
    .transpose01 = cpu_transpose01,
    .conv1d_fused = cpu_conv1d_fused,
};

static bool is_cpu(const avo_backend *be) { return be && be->ops == &cpu_ops; }

avo_status avo_backend_cpu_set_precision(avo_backend *be, avo_cpu_precision precision, avo_error *err) {
    if (!is_cpu(be)) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "cpu precision: not a CPU back end");
    if (precision != AVO_CPU_FP32 && precision != AVO_CPU_BF16)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "cpu precision: unknown value %d", (int)precision);
    if (precision == AVO_CPU_BF16 && !cpu_conv1d_bf16_available())
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "cpu precision: this CPU has no AVX512_BF16; staying FP32");
    impl_of(be)->precision = precision;
    return AVO_OK;
}

avo_status avo_backend_cpu_gemm_counts(const avo_backend *be, int64_t *fp32, int64_t *bf16, avo_error *err) {
    if (fp32) *fp32 = 0;
    if (bf16) *bf16 = 0;
    if (!is_cpu(be)) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "cpu gemm counts: not a CPU back end");
    if (fp32) *fp32 = impl_of(be)->gemm_fp32;
    if (bf16) *bf16 = impl_of(be)->gemm_bf16;
    return AVO_OK;
}

avo_status avo_backend_cpu_create(int n_threads, avo_backend **out, avo_error *err) {
    *out = NULL;
    avo_backend *be = calloc(1, sizeof *be);
    cpu_impl *impl = calloc(1, sizeof *impl);
    if (!be || !impl) {
        free(be);
        free(impl);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "engine: out of memory creating the CPU back end");
    }
    be->ops = &cpu_ops;
    be->n_threads = n_threads > 0 ? n_threads : omp_get_num_procs();
    be->impl = impl;
    *out = be;
    return AVO_OK;
}

avo_status avo_backend_cpu_worker(const avo_backend *be, int n_threads, avo_backend **out, avo_error *err) {
    *out = NULL;
    if (!be || be->ops != &cpu_ops)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "engine: only the CPU back end makes workers");
    if (be->observer)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "engine: a back end with a GEMM observer makes no workers");
    avo_status st = avo_backend_cpu_create(n_threads > 0 ? n_threads : 1, out, err);
    if (st) return st;
    cpu_impl *w = impl_of(*out);
    *w = *impl_of(be);
    w->gemm_fp32 = w->gemm_bf16 = 0;
    return AVO_OK;
}

void avo_backend_cpu_worker_merge(avo_backend *be, avo_backend *worker) {
    if (!be || !worker || be->ops != &cpu_ops || worker->ops != &cpu_ops) return;
    impl_of(be)->gemm_fp32 += impl_of(worker)->gemm_fp32;
    impl_of(be)->gemm_bf16 += impl_of(worker)->gemm_bf16;
    impl_of(worker)->gemm_fp32 = impl_of(worker)->gemm_bf16 = 0;
}

void cpu_backend_set_direct_conv(avo_backend *be, bool on) {
    if (be && be->ops == &cpu_ops) impl_of(be)->direct_off = !on;
}

void cpu_backend_set_fft_conv(avo_backend *be, cpu_fft_mode mode) {
    if (be && be->ops == &cpu_ops) impl_of(be)->fft_mode = mode;
}

bool cpu_backend_direct_conv(const avo_backend *be) {
    return be && be->ops == &cpu_ops && !impl_of(be)->direct_off && cpu_conv1d_avx512_available();
}
