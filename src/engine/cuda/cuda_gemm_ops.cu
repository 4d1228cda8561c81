/* CUDA ops built on cuBLAS: linear, conv1d (im2col + GEMM, batched over groups), conv_transpose1d
 * (GEMM + col2im gather), relative attention (batched over heads) and the BiGRU (input projections
 * by GEMM, then the recurrence kernel). In FP16 mode the weight GEMMs take half copies of the
 * weights (cached) and of their inputs, with FP32 accumulation. */
#include "engine/cuda/cuda_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Column scratch cap (elements) for im2col / col2im tiles: 128 MB as floats. */
#define CU_COLS_MAX ((int64_t)32 << 20)
/* Attention score scratch cap (floats): heads x query block x T. */
#define CU_ATT_MAX ((int64_t)32 << 20)

#define TRY(expr)                       \
    do {                                \
        avo_status st_ = (expr);        \
        if (st_ != AVO_OK) return st_; \
    } while (0)

static size_t f32_bytes(const avo_tensor *t) { return (size_t)avo_tensor_numel(t) * sizeof(float); }

/* ---- half copies of weights ------------------------------------------------------------------ */

void cu_half_weights_clear(cu_impl *cu) {
    cu_graphs_forget(cu); /* graphs may read the copies */
    for (size_t i = 0; i < cu->n_hw; i++)
        if (cu->hw[i].h) cudaFreeAsync(cu->hw[i].h, cu->stream);
    cu->n_hw = 0;
    cu->hw_lo = cu->hw_hi = 0;
}

const cu_half_weight *cu_weight_cache_find(const cu_impl *cu, const avo_tensor *w, int layout) {
    uintptr_t lo = (uintptr_t)w->data, hi = lo + (uintptr_t)avo_tensor_numel(w) * sizeof(float);
    for (size_t i = 0; i < cu->n_hw; i++)
        if (cu->hw[i].lo == lo && cu->hw[i].hi == hi && cu->hw[i].layout == layout) return &cu->hw[i];
    return NULL;
}

bool cu_weight_cache_add(cu_impl *cu, const avo_tensor *w, int layout, void *h, float x_scale) {
    uintptr_t lo = (uintptr_t)w->data, hi = lo + (uintptr_t)avo_tensor_numel(w) * sizeof(float);
    if (cu->n_hw + 1 > cu->cap_hw) {
        size_t cap = cu->cap_hw ? cu->cap_hw * 2 : 64;
        void *p = realloc(cu->hw, cap * sizeof *cu->hw);
        if (!p) return false;
        cu->hw = (cu_half_weight *)p;
        cu->cap_hw = cap;
    }
    cu_half_weight e = {lo, hi, layout, h, x_scale};
    cu->hw[cu->n_hw++] = e;
    if (cu->n_hw == 1 || lo < cu->hw_lo) cu->hw_lo = lo;
    if (cu->n_hw == 1 || hi > cu->hw_hi) cu->hw_hi = hi;
    return true;
}

/* The half copy of w in the given layout, made now if there is none; NULL if the device has no
 * memory for it (the caller then runs the FP32 path, and the GEMM counters say so). */
static const __half *half_weight(cu_impl *cu, const avo_tensor *w, int layout, int64_t groups) {
    const cu_half_weight *e = cu_weight_cache_find(cu, w, layout);
    if (e) return (const __half *)e->h;
    int64_t n = avo_tensor_numel(w);
    __half *h = NULL;
    if (cudaMallocAsync((void **)&h, (size_t)(n > 0 ? n : 1) * sizeof(__half), cu->stream) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    if (layout == CU_HALF_TAPS)
        cu_launch_repack_taps(cu, (const float *)w->data, h, groups, w->shape[0] / groups, w->shape[1], w->shape[2]);
    else
        cu_launch_to_half(cu, (const float *)w->data, h, n);
    if (!cu_weight_cache_add(cu, w, layout, h, 0.0f)) {
        cudaFreeAsync(h, cu->stream);
        return NULL;
    }
    return h;
}

const __half *cu_half_weight_get(cu_impl *cu, const avo_tensor *w) { return half_weight(cu, w, CU_HALF_PLAIN, 1); }

const __half *cu_half_weight_taps(cu_impl *cu, const avo_tensor *w, int64_t groups) {
    return half_weight(cu, w, CU_HALF_TAPS, groups);
}

/* A half copy of activations in arena scratch. */
avo_status cu_to_half_scratch(cu_impl *cu, avo_arena *a, const float *x, int64_t n, __half **out, avo_error *err) {
    void *p = NULL;
    TRY(cu_scratch(cu, a, (size_t)(n > 0 ? n : 1) * sizeof(__half), &p, err));
    cu_launch_to_half(cu, x, (__half *)p, n);
    *out = (__half *)p;
    return AVO_OK;
}

static bool use_half(const cu_impl *cu) { return cu_half_mode(cu); }

/* ---- linear --------------------------------------------------------------------------------- */

/* Y[rows, out] = X[rows, in] W[out, in]^T + bias[out]. */
static avo_status gemm_xwT(cu_impl *cu, avo_arena *a, const float *X, int64_t rows, const avo_tensor *w,
                           const float *bias, float *Y, avo_error *err) {
    int64_t out = w->shape[0], in = w->shape[1];
    if (rows == 0 || out == 0) return AVO_OK;
    if (bias)
        cu_launch_bias_cols(cu, Y, rows, out, bias);
    else if (in == 0)
        cudaMemsetAsync(Y, 0, (size_t)(rows * out) * sizeof(float), cu->stream);
    if (in == 0) return cu_check_launch("linear", err);
    float beta = bias ? 1.0f : 0.0f;
    const __half *wh = use_half(cu) ? cu_half_weight_get(cu, w) : NULL;
    if (wh) {
        __half *xh = NULL;
        TRY(cu_to_half_scratch(cu, a, X, rows * in, &xh, err));
        TRY(cu_hgemm(cu, false, true, (int)rows, (int)out, (int)in, 1.0f, xh, (int)in, 0, wh, (int)in, 0, beta, Y,
                     (int)out, 0, 1, err));
    } else {
        TRY(cu_sgemm(cu, false, true, (int)rows, (int)out, (int)in, 1.0f, X, (int)in, 0, (const float *)w->data, (int)in,
                     0, beta, Y, (int)out, 0, 1, err));
    }
    return cu_check_launch("linear", err);
}

avo_status cu_linear(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                     avo_tensor *y, avo_error *err) {
    cu_impl *cu = cu_of(be);
    TRY(cu_check_sticky(cu, "linear", err));
    int64_t out = w->shape[0], rows = out ? avo_tensor_numel(y) / out : 0;
    cu_note_write(cu, y->data, f32_bytes(y));
    const float *B = b ? (const float *)b->data : NULL;
    if (cu->precision == AVO_CUDA_INT8) {
        bool ran = false;
        TRY(cu_linear_int8(cu, a, (const float *)x->data, rows, w, B, (float *)y->data, &ran, err));
        if (ran) return AVO_OK;
    }
    return gemm_xwT(cu, a, (const float *)x->data, rows, w, B, (float *)y->data, err);
}

/* ---- conv1d --------------------------------------------------------------------------------- */

static int64_t tile_len(int64_t per_frame, int64_t total) {
    int64_t n = CU_COLS_MAX / (per_frame > 0 ? per_frame : 1);
    if (n < 32) n = 32;
    return n < total ? n : total;
}

/* conv1d with the fused extras of cu_conv1d_fused: the input through leaky_relu(x, slope) when act,
 * and res (NULL or y's shape) added with the bias. Paths that read x directly (depthwise, 1x1)
 * activate a scratch copy first and the depthwise one adds res as its own pass. */
static avo_status conv1d_run(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                             const avo_conv1d_params *p, bool act, float slope, const float *res, avo_tensor *y,
                             avo_error *err) {
    cu_impl *cu = cu_of(be);
    TRY(cu_check_sticky(cu, "conv1d", err));
    int64_t cin = x->shape[0], t = x->shape[1], cout = w->shape[0], k = w->shape[2], tout = y->shape[1];
    int64_t g = p->groups, cig = cin / g, cog = cout / g, s = p->stride, d = p->dilation, pad = p->padding;
    const float *X = (const float *)x->data, *W = (const float *)w->data, *B = b ? (const float *)b->data : NULL;
    float *Y = (float *)y->data;
    cu_note_write(cu, Y, f32_bytes(y));
    if (cout == 0 || tout == 0) return AVO_OK;
    bool plain = k == 1 && s == 1 && pad == 0; /* x is already the column matrix */
    if (cu->precision == AVO_CUDA_INT8 && plain && g == 1 && !act && !res) { /* HuBERT's projections */
        bool ran = false;
        TRY(cu_conv1x1_int8(cu, a, X, t, w, B, Y, &ran, err));
        if (ran) return AVO_OK;
    }
    if (use_half(cu) && plain && g == 1 && cin >= 8) { /* frames-major half operands when t is unaligned */
        bool ran = false;
        TRY(cu_conv1x1_half_t(cu, a, X, t, w, cu_half_weight_get(cu, w), B, act, slope, res, Y, &ran, err));
        if (ran) return AVO_OK;
    }
    /* (HuBERT's strided feature-extractor layers through im2col + cuBLAS instead were no faster on an
     * H100: 0.99 against 0.94 ms for 512 -> 512 k3 s2 over 48000 frames, the whole encoder 7.64 against
     * 7.56 ms, so every FP16 convolution with 16+ input channels per group takes the mma kernel.) */
    if (use_half(cu) && !plain && cig > 1 &&
        cu_conv1d_mma(cu, X, w, B, Y, cin, t, cout, k, tout, g, s, d, pad, act, slope, res))
        return cu_check_launch("conv1d", err);
    if (act && (cig == 1 || plain)) { /* these read x in place: activate a copy */
        void *xa = NULL;
        TRY(cu_scratch(cu, a, (size_t)(cin * t) * sizeof(float), &xa, err));
        cu_launch_leaky(cu, X, (float *)xa, cin * t, slope);
        X = (const float *)xa;
        act = false;
    }
    if (cig == 1) { /* depthwise: a direct kernel, no GEMM worth the name */
        cu_launch_conv_depthwise(cu, X, W, B, Y, cout, cog, t, k, tout, s, d, pad);
        if (res) {
            avo_tensor rt = *y;
            rt.data = (void *)res;
            TRY(cu_binary(be, 0, y, &rt, y, err));
        }
        return cu_check_launch("conv1d", err);
    }
    if (res)
        cu_launch_bias_res_rows(cu, Y, cout, tout, B, res);
    else if (B)
        cu_launch_bias_rows(cu, Y, cout, tout, tout, B);
    float beta = B || res ? 1.0f : 0.0f;
    int64_t rk = cig * k;
    const __half *wh = use_half(cu) ? cu_half_weight_get(cu, w) : NULL;
    if (plain) {
        if (wh) {
            __half *xh = NULL;
            TRY(cu_to_half_scratch(cu, a, X, cin * t, &xh, err));
            TRY(cu_hgemm(cu, false, false, (int)cog, (int)tout, (int)cig, 1.0f, wh, (int)cig, cog * cig, xh, (int)t,
                         cig * t, beta, Y, (int)tout, cog * tout, (int)g, err));
        } else {
            TRY(cu_sgemm(cu, false, false, (int)cog, (int)tout, (int)cig, 1.0f, W, (int)cig, cog * cig, X, (int)t, cig * t,
                         beta, Y, (int)tout, cog * tout, (int)g, err));
        }
        return cu_check_launch("conv1d", err);
    }
    int64_t tile = tile_len(g * rk, tout);
    void *cols = NULL;
    TRY(cu_scratch(cu, a, (size_t)(g * rk * tile) * (wh ? sizeof(__half) : sizeof(float)), &cols, err));
    for (int64_t i0 = 0; i0 < tout; i0 += tile) {
        int64_t n = tout - i0 < tile ? tout - i0 : tile;
        if (wh) {
            cu_launch_im2col_half(cu, X, g, cig, t, k, s, d, pad, i0, n, (__half *)cols, act, slope);
            TRY(cu_hgemm(cu, false, false, (int)cog, (int)n, (int)rk, 1.0f, wh, (int)rk, cog * rk, (const __half *)cols,
                         (int)n, rk * n, beta, Y + i0, (int)tout, cog * tout, (int)g, err));
        } else {
            cu_launch_im2col(cu, X, g, cig, t, k, s, d, pad, i0, n, (float *)cols, act, slope);
            TRY(cu_sgemm(cu, false, false, (int)cog, (int)n, (int)rk, 1.0f, W, (int)rk, cog * rk, (const float *)cols,
                         (int)n, rk * n, beta, Y + i0, (int)tout, cog * tout, (int)g, err));
        }
    }
    return cu_check_launch("conv1d", err);
}

avo_status cu_conv1d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                     const avo_conv1d_params *p, avo_tensor *y, avo_error *err) {
    return conv1d_run(be, a, x, w, b, p, false, 0.0f, NULL, y, err);
}

avo_status cu_conv1d_fused(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                           const avo_conv1d_params *p, const avo_conv1d_fuse *f, avo_tensor *y, avo_error *err) {
    cu_impl *cu = cu_of(be);
    if (cu->no_fuse) { /* the engine's composition: three passes over the data */
        avo_tensor xa = *x;
        if (f->input_leaky_relu) {
            TRY(cu_scratch(cu, a, f32_bytes(x), &xa.data, err));
            TRY(cu_act(be, x, AVO_ACT_LEAKY_RELU, f->slope, &xa, err));
        }
        TRY(conv1d_run(be, a, &xa, w, b, p, false, 0.0f, NULL, y, err));
        return f->residual ? cu_binary(be, 0, y, f->residual, y, err) : AVO_OK;
    }
    return conv1d_run(be, a, x, w, b, p, f->input_leaky_relu, f->slope,
                      f->residual ? (const float *)f->residual->data : NULL, y, err);
}

/* ---- conv_transpose1d ------------------------------------------------------------------------ */

avo_status cu_conv_transpose1d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                               const avo_tensor *b, const avo_conv_transpose1d_params *p, avo_tensor *y, avo_error *err) {
    cu_impl *cu = cu_of(be);
    TRY(cu_check_sticky(cu, "conv_transpose1d", err));
    int64_t cin = x->shape[0], t = x->shape[1], k = w->shape[2], cout = y->shape[0], tout = y->shape[1];
    int64_t g = p->groups, cig = cin / g, cog = cout / g, s = p->stride, d = p->dilation, pad = p->padding;
    const float *X = (const float *)x->data, *W = (const float *)w->data, *B = b ? (const float *)b->data : NULL;
    float *Y = (float *)y->data;
    cu_note_write(cu, Y, f32_bytes(y));
    if (cout == 0 || tout == 0) return AVO_OK;
    int64_t rk = cog * k;
    if (cig == 0 || rk == 0) { /* nothing to add to the bias */
        if (B)
            cu_launch_bias_rows(cu, Y, cout, tout, tout, B);
        else
            cudaMemsetAsync(Y, 0, f32_bytes(y), cu->stream);
        return cu_check_launch("conv_transpose1d", err);
    }
    const __half *wh = use_half(cu) ? cu_half_weight_get(cu, w) : NULL;
    __half *xh = NULL;
    if (wh) TRY(cu_to_half_scratch(cu, a, X, cin * t, &xh, err));
    int64_t tile = tile_len(g * rk, t);
    void *cols = NULL;
    TRY(cu_scratch(cu, a, (size_t)(g * rk * tile) * sizeof(float), &cols, err));
    for (int64_t i0 = 0; i0 < t; i0 += tile) { /* tiles of input frames; their contributions add */
        int64_t n = t - i0 < tile ? t - i0 : tile;
        /* cols[g][(o*k + kk), i] = sum_c w[c, o, kk] x[c, i0 + i]: each input frame's share per tap */
        if (wh)
            TRY(cu_hgemm(cu, true, false, (int)rk, (int)n, (int)cig, 1.0f, wh, (int)rk, cig * rk, xh + i0, (int)t, cig * t,
                         0.0f, (float *)cols, (int)n, rk * n, (int)g, err));
        else
            TRY(cu_sgemm(cu, true, false, (int)rk, (int)n, (int)cig, 1.0f, W, (int)rk, cig * rk, X + i0, (int)t, cig * t,
                         0.0f, (float *)cols, (int)n, rk * n, (int)g, err));
        cu_launch_col2im(cu, (const float *)cols, B, Y, cout, cog, tout, k, s, d, pad, i0, n, i0 == 0);
    }
    return cu_check_launch("conv_transpose1d", err);
}

/* ---- relative-position attention ------------------------------------------------------------ */

/* As the CPU back end (see cpu_rel_attention for the formula), with every head in one batched GEMM:
 * S = Q^T K / sqrt(kc) and R = Q^T E_k / sqrt(kc) for a block of queries, a softmax kernel that adds
 * R's band to S and leaves P's band in R, then O = V P^T + E_v^T R^T. */
avo_status cu_rel_attention(avo_backend *be, avo_arena *a, const avo_tensor *q, const avo_tensor *k, const avo_tensor *v,
                            const avo_tensor *ek, const avo_tensor *ev, int heads, int window, avo_tensor *out,
                            avo_error *err) {
    cu_impl *cu = cu_of(be);
    TRY(cu_check_sticky(cu, "rel_attention", err));
    int64_t c = q->shape[0], t = q->shape[1], kc = c / heads, nr = 2 * (int64_t)window + 1;
    cu_note_write(cu, out->data, f32_bytes(out));
    if (t == 0 || c == 0) return AVO_OK;
    if (use_half(cu)) { /* FP16 / INT8 mode: the fused kernel where it takes the shape */
        bool ran = false;
        TRY(cu_attention_half(cu, a, (const float *)q->data, (const float *)k->data, (const float *)v->data,
                              (float *)out->data, heads, kc, t, 1.0f / sqrtf((float)kc),
                              window > 0 ? (const float *)ek->data : NULL, window > 0 ? (const float *)ev->data : NULL,
                              window > 0 ? ek->shape[0] : 0, window > 0 ? ev->shape[0] : 0, window, &ran, err));
        if (ran) return AVO_OK;
    }
    int64_t qb = CU_ATT_MAX / (heads * t);
    if (qb < 1) qb = 1;
    if (qb > t) qb = t;
    void *S = NULL, *R = NULL;
    TRY(cu_scratch(cu, a, (size_t)(heads * qb * t) * sizeof(float), &S, err));
    if (window > 0) TRY(cu_scratch(cu, a, (size_t)(heads * qb * nr) * sizeof(float), &R, err));
    float scale = 1.0f / sqrtf((float)kc);
    const float *Q = (const float *)q->data, *K = (const float *)k->data, *V = (const float *)v->data;
    const float *Ek = window > 0 ? (const float *)ek->data : NULL, *Ev = window > 0 ? (const float *)ev->data : NULL;
    long long sek = window > 0 && ek->shape[0] != 1 ? nr * kc : 0, sev = window > 0 && ev->shape[0] != 1 ? nr * kc : 0;
    float *O = (float *)out->data, *Sf = (float *)S, *Rf = (float *)R;
    long long hs = kc * t;
    for (int64_t i0 = 0; i0 < t; i0 += qb) {
        int64_t bq = t - i0 < qb ? t - i0 : qb;
        TRY(cu_sgemm(cu, true, false, (int)bq, (int)t, (int)kc, scale, Q + i0, (int)t, hs, K, (int)t, hs, 0.0f, Sf, (int)t,
                     bq * t, heads, err));
        if (window > 0)
            TRY(cu_sgemm(cu, true, true, (int)bq, (int)nr, (int)kc, scale, Q + i0, (int)t, hs, Ek, (int)kc, sek, 0.0f, Rf,
                         (int)nr, bq * nr, heads, err));
        cu_launch_att_softmax(cu, Sf, Rf, heads * bq, bq, i0, t, window);
        TRY(cu_sgemm(cu, false, true, (int)kc, (int)bq, (int)t, 1.0f, V, (int)t, hs, Sf, (int)t, bq * t, 0.0f, O + i0,
                     (int)t, hs, heads, err));
        if (window > 0)
            TRY(cu_sgemm(cu, true, true, (int)kc, (int)bq, (int)nr, 1.0f, Ev, (int)kc, sev, Rf, (int)nr, bq * nr, 1.0f,
                         O + i0, (int)t, hs, heads, err));
    }
    return cu_check_launch("rel_attention", err);
}

/* ---- bidirectional GRU ---------------------------------------------------------------------- */

avo_status cu_bigru(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_gru_weights *w, avo_tensor *out,
                    avo_error *err) {
    cu_impl *cu = cu_of(be);
    TRY(cu_check_sticky(cu, "bigru", err));
    int64_t t = x->shape[0], h = w->w_hh[0]->shape[1], h3 = 3 * h;
    cu_note_write(cu, out->data, f32_bytes(out));
    if (t == 0 || h == 0) return AVO_OK;
    void *gx = NULL, *hbuf = NULL;
    TRY(cu_scratch(cu, a, (size_t)(2 * t * h3) * sizeof(float), &gx, err));
    TRY(cu_scratch(cu, a, (size_t)(4 * h) * sizeof(float), &hbuf, err));
    /* Input projections for all frames at once: the only part that is not sequential. */
    for (int d = 0; d < 2; d++)
        TRY(gemm_xwT(cu, a, (const float *)x->data, t, w->w_ih[d], w->b_ih[d] ? (const float *)w->b_ih[d]->data : NULL,
                     (float *)gx + d * t * h3, err));
    cu_launch_gru(cu, (const float *)gx, (const float *)w->w_hh[0]->data, (const float *)w->w_hh[1]->data,
                  w->b_hh[0] ? (const float *)w->b_hh[0]->data : NULL, w->b_hh[1] ? (const float *)w->b_hh[1]->data : NULL,
                  t, h, (float *)hbuf, (float *)out->data);
    return cu_check_launch("bigru", err);
}
