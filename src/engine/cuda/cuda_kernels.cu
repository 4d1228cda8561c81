/* CUDA kernels: the helpers of the GEMM-based ops (bias fill, im2col, col2im, half conversion), the
 * ops that are not GEMMs (norms, activations, broadcast add/mul, embedding, resampling, pooling,
 * transposes, copies), the attention softmax and the GRU recurrence.
 *
 * Rows of [C, T] tensors map to y and time to x (CU_ROWS in cuda_internal.h). Formulas follow cpu_backend.c step by step;
 * where the CPU's float rounding decides an index (upsampling), the same rounded operations are
 * spelled out with __f*_rn so that nvcc cannot fuse them into an FMA. */
#include "engine/cuda/cuda_internal.h"

#include <cooperative_groups.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CU_THREADS 256
#define CU_MAX_GRID_Y 65535

#define TRY(expr)                       \
    do {                                \
        avo_status st_ = (expr);        \
        if (st_ != AVO_OK) return st_; \
    } while (0)

/* Blocks for a flat loop over n elements (grid-stride beyond a few waves). */
static unsigned flat_blocks(const cu_impl *cu, int64_t n) {
    int64_t b = (n + CU_THREADS - 1) / CU_THREADS, cap = (int64_t)(cu->n_sm > 0 ? cu->n_sm : 80) * 16;
    if (b > cap) b = cap;
    return (unsigned)(b < 1 ? 1 : b);
}

#define FLAT_LOOP(i, n) for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* ---- reductions ------------------------------------------------------------------------------ */

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Block-wide sum / max for blockDim.x a multiple of 32 (<= 1024); every thread gets the result. */
__device__ float block_sum(float v, float *sh) {
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); /* sh may still be read by a previous reduction */
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.0f;
    return warp_sum(v);
}
__device__ float block_max(float v, float *sh) {
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : -INFINITY;
    return warp_max(v);
}

/* ---- GEMM helpers ----------------------------------------------------------------------------- */

__global__ void k_to_half(const float *x, __half *y, int64_t n) {
    FLAT_LOOP(i, n) y[i] = __float2half_rn(x[i]);
}

void cu_launch_to_half(cu_impl *cu, const float *x, __half *y, int64_t n) {
    if (n > 0) k_to_half<<<flat_blocks(cu, n), CU_THREADS, 0, cu->stream>>>(x, y, n);
}

__global__ void k_bias_cols(float *y, int64_t rows, int64_t cols, const float *bias) {
    ROW_LOOP(r, rows) COL_LOOP(c, cols) y[r * cols + c] = bias[c];
}

void cu_launch_bias_cols(cu_impl *cu, float *y, int64_t rows, int64_t cols, const float *bias) {
    if (rows > 0 && cols > 0) k_bias_cols<<<CU_ROWS(cu, rows, cols), 0, cu->stream>>>(y, rows, cols, bias);
}

__global__ void k_bias_rows(float *y, int64_t rows, int64_t cols, int64_t ld, const float *bias) {
    ROW_LOOP(r, rows) {
        float v = bias[r];
        COL_LOOP(c, cols) y[r * ld + c] = v;
    }
}

void cu_launch_bias_rows(cu_impl *cu, float *y, int64_t rows, int64_t cols, int64_t ld, const float *bias) {
    if (rows > 0 && cols > 0)
        k_bias_rows<<<CU_ROWS(cu, rows, cols), 0, cu->stream>>>(y, rows, cols, ld, bias);
}

/* Rows of cols are (input channel, tap) pairs: [g][c*k + kk] is global row (g*cig + c)*k + kk. */
template <typename T>
__global__ void k_im2col(const float *x, int64_t rows, int64_t t, int64_t k, int64_t s, int64_t d, int64_t pad,
                         int64_t i0, int64_t n, T *cols, bool act, float slope) {
    ROW_LOOP(row, rows) {
        int64_t kk = row % k, ch = row / k, off = kk * d - pad;
        const float *xr = x + ch * t;
        T *cr = cols + row * n;
        COL_LOOP(i, n) {
            int64_t src = (i0 + i) * s + off;
            float v = src >= 0 && src < t ? xr[src] : 0.0f;
            if (act) v = v > 0.0f ? v : v * slope;
            if constexpr (sizeof(T) == 2)
                cr[i] = __float2half_rn(v);
            else
                cr[i] = v;
        }
    }
}

void cu_launch_im2col(cu_impl *cu, const float *x, int64_t groups, int64_t cig, int64_t t, int64_t k, int64_t s,
                      int64_t d, int64_t pad, int64_t i0, int64_t n, float *cols, bool act, float slope) {
    int64_t rows = groups * cig * k;
    if (rows > 0 && n > 0)
        k_im2col<float><<<CU_ROWS(cu, rows, n), 0, cu->stream>>>(x, rows, t, k, s, d, pad, i0, n, cols, act, slope);
}

void cu_launch_im2col_half(cu_impl *cu, const float *x, int64_t groups, int64_t cig, int64_t t, int64_t k, int64_t s,
                           int64_t d, int64_t pad, int64_t i0, int64_t n, __half *cols, bool act, float slope) {
    int64_t rows = groups * cig * k;
    if (rows > 0 && n > 0)
        k_im2col<__half><<<CU_ROWS(cu, rows, n), 0, cu->stream>>>(x, rows, t, k, s, d, pad, i0, n, cols, act, slope);
}

__global__ void k_bias_res_rows(float *y, int64_t rows, int64_t cols, const float *bias, const float *res) {
    ROW_LOOP(r, rows) {
        float v = bias ? bias[r] : 0.0f;
        COL_LOOP(c, cols) y[r * cols + c] = v + res[r * cols + c];
    }
}

void cu_launch_bias_res_rows(cu_impl *cu, float *y, int64_t rows, int64_t cols, const float *bias, const float *res) {
    if (rows > 0 && cols > 0)
        k_bias_res_rows<<<CU_ROWS(cu, rows, cols), 0, cu->stream>>>(y, rows, cols, bias, res);
}

__global__ void k_conv_dw(const float *x, const float *w, const float *b, float *y, int64_t cout, int64_t cog,
                          int64_t t, int64_t k, int64_t tout, int64_t s, int64_t d, int64_t pad) {
    ROW_LOOP(o, cout) {
        const float *xr = x + (o / cog) * t, *wr = w + o * k;
        float bias = b ? b[o] : 0.0f;
        COL_LOOP(i, tout) {
            float acc = bias;
            int64_t base = i * s - pad;
            for (int64_t kk = 0; kk < k; kk++) {
                int64_t src = base + kk * d;
                if (src >= 0 && src < t) acc += wr[kk] * xr[src];
            }
            y[o * tout + i] = acc;
        }
    }
}

/* The same for k <= DW_KMAX taps and 32-bit sizes: the taps' weights in registers, and away from the
 * edges no bounds tests (HuBERT's first layer, 1 -> 512 k10 s5 over 96000 frames, took 0.56 ms in
 * the kernel above: 64-bit index arithmetic and a test per tap for 10 multiply-adds an output; 0.36 ms
 * here). */
#define DW_KMAX 16
__global__ void k_conv_dw_small(const float *x, const float *w, const float *b, float *y, int cout, int cog, int t,
                                int k, int tout, int s, int d, int pad) {
    for (int o = blockIdx.y * blockDim.y + threadIdx.y; o < cout; o += gridDim.y * blockDim.y) {
        const float *xr = x + (int64_t)(o / cog) * t;
        float wk[DW_KMAX];
#pragma unroll
        for (int kk = 0; kk < DW_KMAX; kk++) wk[kk] = kk < k ? w[(int64_t)o * k + kk] : 0.0f;
        const float bias = b ? b[o] : 0.0f;
        float *yr = y + (int64_t)o * tout;
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < tout; i += gridDim.x * blockDim.x) {
            const int base = i * s - pad;
            float acc = bias;
            if (base >= 0 && base + (k - 1) * d < t) {
#pragma unroll
                for (int kk = 0; kk < DW_KMAX; kk++)
                    if (kk < k) acc += wk[kk] * __ldg(xr + base + kk * d);
            } else {
#pragma unroll
                for (int kk = 0; kk < DW_KMAX; kk++) {
                    const int src = base + kk * d;
                    if (kk < k && src >= 0 && src < t) acc += wk[kk] * xr[src];
                }
            }
            yr[i] = acc;
        }
    }
}

void cu_launch_conv_depthwise(cu_impl *cu, const float *x, const float *w, const float *b, float *y, int64_t cout,
                              int64_t cog, int64_t t, int64_t k, int64_t tout, int64_t s, int64_t d, int64_t pad) {
    const int64_t lim = (int64_t)1 << 30;
    if (k <= DW_KMAX && cout < lim && t < lim && tout < lim && tout * s < lim && k * d < lim && pad < lim) {
        k_conv_dw_small<<<CU_ROWS(cu, cout, tout), 0, cu->stream>>>(x, w, b, y, (int)cout, (int)cog, (int)t, (int)k,
                                                                 (int)tout, (int)s, (int)d, (int)pad);
        return;
    }
    k_conv_dw<<<CU_ROWS(cu, cout, tout), 0, cu->stream>>>(x, w, b, y, cout, cog, t, k, tout, s, d, pad);
}

/* Gathers instead of scattering: each output sums its taps, so no atomics and a fixed order. cols
 * rows are [g][o*k + kk] = global output channel times k plus tap. */
__global__ void k_col2im(const float *cols, const float *bias, float *y, int64_t cout, int64_t tout, int64_t k, int64_t s,
                         int64_t d, int64_t pad, int64_t i0, int64_t n, bool first) {
    ROW_LOOP(o, cout) {
        const float *base = cols + o * k * n;
        float b0 = first && bias ? bias[o] : 0.0f;
        COL_LOOP(j, tout) {
            float acc = 0.0f;
            /* with dilation 1 the taps that land on j are kk = (j + pad) mod s, then every s-th */
            int64_t kstep = d == 1 ? s : 1, kk0 = d == 1 ? (j + pad) % s : 0;
            for (int64_t kk = kk0; kk < k; kk += kstep) {
                int64_t num = j + pad - kk * d; /* = i*s for the input frame i this tap would come from */
                if (num < 0) break;             /* num only falls as kk grows */
                if (d != 1 && num % s) continue;
                int64_t i = num / s;
                if (i >= i0 + n) continue;
                if (i < i0) break;
                acc += base[kk * n + (i - i0)];
            }
            float *yo = y + o * tout + j;
            *yo = first ? b0 + acc : *yo + acc;
        }
    }
}

void cu_launch_col2im(cu_impl *cu, const float *cols, const float *bias, float *y, int64_t cout, int64_t cog,
                      int64_t tout, int64_t k, int64_t s, int64_t d, int64_t pad, int64_t i0, int64_t n, bool first) {
    (void)cog;
    k_col2im<<<CU_ROWS(cu, cout, tout), 0, cu->stream>>>(cols, bias, y, cout, tout, k, s, d, pad, i0, n,
                                                                         first);
}

/* ---- normalisation -------------------------------------------------------------------------- */

#define LN_TX 32
#define LN_TY 16

/* One block per 32 time steps; 16 lanes of threads split the channels and meet in shared memory.
 * Two passes over x like the CPU (mean, then centred squares). */
__global__ void k_layer_norm(const float *x, const float *g, const float *b, float *y, int64_t c, int64_t t, float eps) {
    __shared__ float red[LN_TY][LN_TX + 1];
    __shared__ float stat[2][LN_TX];
    int tx = threadIdx.x, ty = threadIdx.y;
    int64_t col = blockIdx.x * (int64_t)LN_TX + tx;
    bool ok = col < t;
    float s = 0.0f;
    if (ok)
        for (int64_t ch = ty; ch < c; ch += LN_TY) s += x[ch * t + col];
    red[ty][tx] = s;
    __syncthreads();
    if (ty == 0) {
        float m = 0.0f;
        for (int i = 0; i < LN_TY; i++) m += red[i][tx];
        stat[0][tx] = m / (float)c;
    }
    __syncthreads();
    float mean = stat[0][tx];
    s = 0.0f;
    if (ok)
        for (int64_t ch = ty; ch < c; ch += LN_TY) {
            float dv = x[ch * t + col] - mean;
            s += dv * dv;
        }
    red[ty][tx] = s;
    __syncthreads();
    if (ty == 0) {
        float v = 0.0f;
        for (int i = 0; i < LN_TY; i++) v += red[i][tx];
        stat[1][tx] = 1.0f / sqrtf(v / (float)c + eps);
    }
    __syncthreads();
    float rstd = stat[1][tx];
    if (ok)
        for (int64_t ch = ty; ch < c; ch += LN_TY) {
            float gv = g ? g[ch] : 1.0f, bv = b ? b[ch] : 0.0f;
            y[ch * t + col] = (x[ch * t + col] - mean) * rstd * gv + bv;
        }
}

/* The same with x read once: 16 time steps per block (twice the blocks of the kernel above: HuBERT's
 * 768 x 1499 gave it 47 blocks for 132 SMs and it took 26 us), 32 lanes of threads over the channels,
 * each thread's values (at most LN_REG_MAX) held in registers for the mean, the centred squares and
 * the output. Measured: 26 -> 17 us a call on an H100. */
#define LN_REG_TX 16
#define LN_REG_TY 32
#define LN_REG_MAX 32
__global__ void __launch_bounds__(LN_REG_TX *LN_REG_TY) k_layer_norm_reg(const float *x, const float *g, const float *b,
                                                                        float *y, int c, int64_t t, float eps) {
    __shared__ float red[LN_REG_TY][LN_REG_TX + 1];
    __shared__ float stat[2][LN_REG_TX];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int64_t col = blockIdx.x * (int64_t)LN_REG_TX + tx;
    const bool ok = col < t;
    float v[LN_REG_MAX];
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < LN_REG_MAX; i++) {
        const int ch = ty + i * LN_REG_TY;
        v[i] = ok && ch < c ? x[(int64_t)ch * t + col] : 0.0f;
        s += v[i];
    }
    red[ty][tx] = s;
    __syncthreads();
    if (ty == 0) {
        float m = 0.0f;
        for (int i = 0; i < LN_REG_TY; i++) m += red[i][tx];
        stat[0][tx] = m / (float)c;
    }
    __syncthreads();
    const float mean = stat[0][tx];
    s = 0.0f;
#pragma unroll
    for (int i = 0; i < LN_REG_MAX; i++) {
        const int ch = ty + i * LN_REG_TY;
        const float dv = v[i] - mean;
        if (ch < c) s += dv * dv;
    }
    __syncthreads(); /* red's first use is read */
    red[ty][tx] = s;
    __syncthreads();
    if (ty == 0) {
        float q = 0.0f;
        for (int i = 0; i < LN_REG_TY; i++) q += red[i][tx];
        stat[1][tx] = 1.0f / sqrtf(q / (float)c + eps);
    }
    __syncthreads();
    const float rstd = stat[1][tx];
    if (!ok) return;
#pragma unroll
    for (int i = 0; i < LN_REG_MAX; i++) {
        const int ch = ty + i * LN_REG_TY;
        if (ch < c) y[(int64_t)ch * t + col] = (v[i] - mean) * rstd * (g ? g[ch] : 1.0f) + (b ? b[ch] : 0.0f);
    }
}

avo_status cu_layer_norm(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *gamma,
                         const avo_tensor *beta, float eps, avo_tensor *y, avo_error *err) {
    (void)a;
    cu_impl *cu = cu_of(be);
    TRY(cu_check_sticky(cu, "layer_norm", err));
    int64_t c = x->shape[0], t = x->shape[1];
    cu_note_write(cu, y->data, (size_t)(c * t) * sizeof(float));
    if (c == 0 || t == 0) return AVO_OK;
    if (c <= (int64_t)LN_REG_TY * LN_REG_MAX && c >= LN_REG_TY * LN_REG_MAX / 4) {
        /* channels enough that the registers are mostly used (narrow ones keep the loop kernel) */
        dim3 grid((unsigned)((t + LN_REG_TX - 1) / LN_REG_TX)), block(LN_REG_TX, LN_REG_TY);
        k_layer_norm_reg<<<grid, block, 0, cu->stream>>>((const float *)x->data,
                                                         gamma ? (const float *)gamma->data : NULL,
                                                         beta ? (const float *)beta->data : NULL, (float *)y->data,
                                                         (int)c, t, eps);
        return cu_check_launch("layer_norm", err);
    }
    dim3 grid((unsigned)((t + LN_TX - 1) / LN_TX)), block(LN_TX, LN_TY);
    k_layer_norm<<<grid, block, 0, cu->stream>>>((const float *)x->data, gamma ? (const float *)gamma->data : NULL,
                                                 beta ? (const float *)beta->data : NULL, (float *)y->data, c, t, eps);
    return cu_check_launch("layer_norm", err);
}

/* Group statistics in double (as the CPU), one pass of sum and sum of squares per block slice; the
 * partials are added in a fixed order, so the result does not depend on scheduling. */
__global__ void k_gn_stats(const float *x, int64_t n, int nb, double *part) {
    __shared__ double sh[2][32];
    int64_t g = blockIdx.y, bl = blockIdx.x, chunk = (n + nb - 1) / nb, lo = bl * chunk,
            hi = lo + chunk < n ? lo + chunk : n;
    const float *xg = x + g * n;
    double s = 0.0, q = 0.0;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
        double v = xg[i];
        s += v;
        q += v * v;
    }
    s = warp_sum_d(s);
    q = warp_sum_d(q);
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0) {
        sh[0][wid] = s;
        sh[1][wid] = q;
    }
    __syncthreads();
    if (wid == 0) {
        s = lane < nw ? sh[0][lane] : 0.0;
        q = lane < nw ? sh[1][lane] : 0.0;
        s = warp_sum_d(s);
        q = warp_sum_d(q);
        if (lane == 0) {
            part[(g * nb + bl) * 2] = s;
            part[(g * nb + bl) * 2 + 1] = q;
        }
    }
}

__global__ void k_gn_final(const double *part, int64_t groups, int nb, int64_t n, float eps, float *stat) {
    FLAT_LOOP(g, groups) {
        double s = 0.0, q = 0.0;
        for (int b = 0; b < nb; b++) {
            s += part[(g * nb + b) * 2];
            q += part[(g * nb + b) * 2 + 1];
        }
        double mean = s / (double)n, var = q / (double)n - mean * mean;
        if (var < 0.0) var = 0.0;
        stat[2 * g] = (float)mean;
        stat[2 * g + 1] = (float)(1.0 / sqrt(var + eps));
    }
}

__global__ void k_gn_apply(const float *x, const float *stat, const float *gm, const float *bt, float *y, int64_t c,
                           int64_t cg, int64_t t) {
    ROW_LOOP(ch, c) {
        int64_t g = ch / cg;
        float m = stat[2 * g], r = stat[2 * g + 1];
        float sc = r * (gm ? gm[ch] : 1.0f), sh = (bt ? bt[ch] : 0.0f) - m * sc;
        COL_LOOP(i, t) y[ch * t + i] = x[ch * t + i] * sc + sh;
    }
}

avo_status cu_group_norm(avo_backend *be, avo_arena *a, const avo_tensor *x, int groups, const avo_tensor *gamma,
                         const avo_tensor *beta, float eps, avo_tensor *y, avo_error *err) {
    cu_impl *cu = cu_of(be);
    TRY(cu_check_sticky(cu, "group_norm", err));
    int64_t c = x->shape[0], t = x->shape[1], cg = c / groups, n = cg * t;
    cu_note_write(cu, y->data, (size_t)(c * t) * sizeof(float));
    if (c == 0 || t == 0) return AVO_OK;
    /* enough blocks per group to fill the chip when groups are few and long */
    int64_t nb = (n + 8191) / 8192, want = (int64_t)cu->n_sm * 4 / groups;
    if (nb > want) nb = want;
    if (nb > 1024) nb = 1024;
    if (nb < 1) nb = 1;
    void *part = NULL, *stat = NULL;
    TRY(cu_scratch(cu, a, (size_t)(groups * nb * 2) * sizeof(double), &part, err));
    TRY(cu_scratch(cu, a, (size_t)(groups * 2) * sizeof(float), &stat, err));
    dim3 sg((unsigned)nb, (unsigned)groups);
    if (groups > CU_MAX_GRID_Y) return avo_error_set(err, AVO_ERR_UNSUPPORTED, "cuda: group_norm: %d groups", groups);
    k_gn_stats<<<sg, CU_THREADS, 0, cu->stream>>>((const float *)x->data, n, (int)nb, (double *)part);
    k_gn_final<<<flat_blocks(cu, groups), CU_THREADS, 0, cu->stream>>>((const double *)part, groups, (int)nb, n, eps,
                                                                       (float *)stat);
    k_gn_apply<<<CU_ROWS(cu, c, t), 0, cu->stream>>>(
        (const float *)x->data, (const float *)stat, gamma ? (const float *)gamma->data : NULL,
        beta ? (const float *)beta->data : NULL, (float *)y->data, c, cg, t);
    return cu_check_launch("group_norm", err);
}

/* ---- elementwise ---------------------------------------------------------------------------- */

template <int ACT>
__device__ __forceinline__ float act1(float v, float alpha) {
    switch (ACT) {
    case AVO_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case AVO_ACT_LEAKY_RELU: return v > 0.0f ? v : v * alpha;
    case AVO_ACT_GELU: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    case AVO_ACT_TANH: return tanhf(v);
    case AVO_ACT_SIGMOID: return 1.0f / (1.0f + expf(-v));
    default: return v > 20.0f ? v : log1pf(expf(v)); /* softplus */
    }
}

/* VEC: 16-byte loads and stores (n a multiple of 4, both pointers 16-byte aligned): these passes are
 * bound by memory, and the vector form moved about a third more bytes per second. */
template <int ACT, bool VEC>
__global__ void k_act(const float *x, float *y, int64_t n, float alpha) {
    if (VEC) {
        const float4 *x4 = (const float4 *)x;
        float4 *y4 = (float4 *)y;
        FLAT_LOOP(i, n / 4) {
            float4 v = x4[i];
            v.x = act1<ACT>(v.x, alpha), v.y = act1<ACT>(v.y, alpha), v.z = act1<ACT>(v.z, alpha), v.w = act1<ACT>(v.w, alpha);
            y4[i] = v;
        }
    } else {
        FLAT_LOOP(i, n) y[i] = act1<ACT>(x[i], alpha);
    }
}

static bool al16(const void *p) { return ((uintptr_t)p & 15) == 0; }

template <int ACT>
static void launch_act(cu_impl *cu, const float *X, float *Y, int64_t n, float alpha) {
    if (n % 4 == 0 && al16(X) && al16(Y))
        k_act<ACT, true><<<flat_blocks(cu, n / 4), CU_THREADS, 0, cu->stream>>>(X, Y, n, alpha);
    else
        k_act<ACT, false><<<flat_blocks(cu, n), CU_THREADS, 0, cu->stream>>>(X, Y, n, alpha);
}

void cu_launch_leaky(cu_impl *cu, const float *x, float *y, int64_t n, float slope) {
    if (n > 0) launch_act<AVO_ACT_LEAKY_RELU>(cu, x, y, n, slope);
}

avo_status cu_act(avo_backend *be, const avo_tensor *x, avo_act act, float alpha, avo_tensor *y, avo_error *err) {
    cu_impl *cu = cu_of(be);
    TRY(cu_check_sticky(cu, "activation", err));
    int64_t n = avo_tensor_numel(x);
    cu_note_write(cu, y->data, (size_t)n * sizeof(float));
    if (n == 0) return AVO_OK;
    const float *X = (const float *)x->data;
    float *Y = (float *)y->data;
    switch (act) {
    case AVO_ACT_RELU: launch_act<AVO_ACT_RELU>(cu, X, Y, n, alpha); break;
    case AVO_ACT_LEAKY_RELU: launch_act<AVO_ACT_LEAKY_RELU>(cu, X, Y, n, alpha); break;
    case AVO_ACT_GELU: launch_act<AVO_ACT_GELU>(cu, X, Y, n, alpha); break;
    case AVO_ACT_TANH: launch_act<AVO_ACT_TANH>(cu, X, Y, n, alpha); break;
    case AVO_ACT_SIGMOID: launch_act<AVO_ACT_SIGMOID>(cu, X, Y, n, alpha); break;
    case AVO_ACT_SOFTPLUS: launch_act<AVO_ACT_SOFTPLUS>(cu, X, Y, n, alpha); break;
    }
    return cu_check_launch("activation", err);
}

template <int OP>
__device__ __forceinline__ float bin1(float a, float b) { return OP == 0 ? a + b : a * b; }

template <int OP, bool VEC>
__global__ void k_binary_same(const float *x, const float *y, float *o, int64_t n) {
    if (VEC) {
        const float4 *x4 = (const float4 *)x, *y4 = (const float4 *)y;
        float4 *o4 = (float4 *)o;
        FLAT_LOOP(i, n / 4) {
            float4 a = x4[i], b = y4[i];
            o4[i] = make_float4(bin1<OP>(a.x, b.x), bin1<OP>(a.y, b.y), bin1<OP>(a.z, b.z), bin1<OP>(a.w, b.w));
        }
    } else {
        FLAT_LOOP(i, n) o[i] = bin1<OP>(x[i], y[i]);
    }
}

template <int OP, bool VEC>
__global__ void k_binary_rows(const float *x, const float *y, float *o, int64_t rows, int64_t inner) {
    ROW_LOOP(r, rows) {
        float v = y[r];
        if (VEC) {
            const float4 *x4 = (const float4 *)(x + r * inner);
            float4 *o4 = (float4 *)(o + r * inner);
            COL_LOOP(i, inner / 4) {
                float4 a = x4[i];
                o4[i] = make_float4(bin1<OP>(a.x, v), bin1<OP>(a.y, v), bin1<OP>(a.z, v), bin1<OP>(a.w, v));
            }
        } else {
            COL_LOOP(i, inner) o[r * inner + i] = bin1<OP>(x[r * inner + i], v);
        }
    }
}

template <int OP>
static void launch_binary(cu_impl *cu, const float *X, const float *Yv, float *O, int64_t n, int64_t ny) {
    if (ny == n) {
        if (n % 4 == 0 && al16(X) && al16(Yv) && al16(O))
            k_binary_same<OP, true><<<flat_blocks(cu, n / 4), CU_THREADS, 0, cu->stream>>>(X, Yv, O, n);
        else
            k_binary_same<OP, false><<<flat_blocks(cu, n), CU_THREADS, 0, cu->stream>>>(X, Yv, O, n);
    } else {
        int64_t inner = n / ny; /* y broadcasts over everything after x's first dimension */
        if (inner % 4 == 0 && al16(X) && al16(O))
            k_binary_rows<OP, true><<<CU_ROWS(cu, ny, inner / 4), 0, cu->stream>>>(X, Yv, O, ny, inner);
        else
            k_binary_rows<OP, false><<<CU_ROWS(cu, ny, inner), 0, cu->stream>>>(X, Yv, O, ny, inner);
    }
}

avo_status cu_binary(avo_backend *be, int op, const avo_tensor *x, const avo_tensor *y, avo_tensor *out, avo_error *err) {
    cu_impl *cu = cu_of(be);
    TRY(cu_check_sticky(cu, op ? "mul" : "add", err));
    int64_t n = avo_tensor_numel(x), ny = avo_tensor_numel(y);
    cu_note_write(cu, out->data, (size_t)n * sizeof(float));
    if (n == 0) return AVO_OK;
    if (op == 0)
        launch_binary<0>(cu, (const float *)x->data, (const float *)y->data, (float *)out->data, n, ny);
    else
        launch_binary<1>(cu, (const float *)x->data, (const float *)y->data, (float *)out->data, n, ny);
    return cu_check_launch(op ? "mul" : "add", err);
}

/* ---- attention softmax ---------------------------------------------------------------------- */

/* One block per score row (head h, query i0 + ii): add the band R (scores against the relative
 * embeddings), softmax over j, then leave P's band in R for the E_v term. */
__global__ void k_att_softmax(float *S, float *R, int64_t bq, int64_t i0, int64_t t, int window) {
    __shared__ float sh[32];
    int64_t row = blockIdx.x, i = i0 + row % bq, nr = 2 * (int64_t)window + 1;
    float *srow = S + row * t, *rrow = window > 0 ? R + row * nr : NULL;
    if (window > 0) {
        for (int64_t r = threadIdx.x; r < nr; r += blockDim.x) {
            int64_t j = i + r - window;
            if (j >= 0 && j < t) srow[j] += rrow[r];
        }
        __syncthreads();
    }
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < t; j += blockDim.x) mx = fmaxf(mx, srow[j]);
    mx = block_max(mx, sh);
    float sum = 0.0f;
    for (int64_t j = threadIdx.x; j < t; j += blockDim.x) {
        float e = expf(srow[j] - mx);
        srow[j] = e;
        sum += e;
    }
    sum = block_sum(sum, sh);
    float inv = 1.0f / sum;
    for (int64_t j = threadIdx.x; j < t; j += blockDim.x) srow[j] *= inv;
    if (window > 0) {
        __syncthreads();
        for (int64_t r = threadIdx.x; r < nr; r += blockDim.x) {
            int64_t j = i + r - window;
            rrow[r] = j >= 0 && j < t ? srow[j] : 0.0f;
        }
    }
}

void cu_launch_att_softmax(cu_impl *cu, float *S, float *R, int64_t rows, int64_t bq, int64_t i0, int64_t t,
                           int window) {
    int threads = t >= 1024 ? 256 : t >= 256 ? 128 : 64;
    k_att_softmax<<<(unsigned)rows, threads, 0, cu->stream>>>(S, R, bq, i0, t, window);
}

/* ---- lookup, resampling, pooling ------------------------------------------------------------ */

__global__ void k_embedding(const float *table, const int32_t *ids, float *out, int64_t n, int64_t rows, int64_t d,
                            int *bad) {
    ROW_LOOP(i, n) {
        int32_t id = ids[i];
        bool ok = id >= 0 && id < rows;
        if (!ok && blockIdx.x == 0 && threadIdx.x == 0) atomicMin(bad, (int)i);
        COL_LOOP(j, d) out[i * d + j] = ok ? table[(int64_t)id * d + j] : 0.0f;
    }
}

avo_status cu_embedding(avo_backend *be, const avo_tensor *table, const avo_tensor *ids, avo_tensor *out, avo_error *err) {
    cu_impl *cu = cu_of(be);
    TRY(cu_check_sticky(cu, "embedding", err));
    int64_t n = avo_tensor_numel(ids), rows = table->shape[0], d = table->shape[1];
    cu_note_write(cu, out->data, (size_t)(n * d) * sizeof(float));
    if (n == 0) return AVO_OK;
    /* Ids live on the device: a flag comes back with the first bad position, as the CPU reports it.
     * It starts as bytes 0x7f (above any position that can occur here). */
    const int none = 0x7f7f7f7f;
    if (n >= none) return avo_error_set(err, AVO_ERR_UNSUPPORTED, "cuda: embedding of %lld ids", (long long)n);
    cudaError_t e = cudaMemsetAsync(cu->flag_dev, 0x7f, sizeof(int), cu->stream);
    if (e != cudaSuccess) return cu_fail_cuda(err, "embedding", e);
    k_embedding<<<CU_ROWS(cu, n, d), 0, cu->stream>>>((const float *)table->data,
                                                                   (const int32_t *)ids->data, (float *)out->data, n,
                                                                   rows, d, cu->flag_dev);
    TRY(cu_check_launch("embedding", err));
    e = cudaMemcpyAsync(cu->flag_host, cu->flag_dev, sizeof(int), cudaMemcpyDeviceToHost, cu->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(cu->stream);
    if (e != cudaSuccess) return cu_fail_cuda(err, "embedding", e);
    if (*cu->flag_host != none) {
        int64_t at = *cu->flag_host;
        int32_t id = 0;
        e = cudaMemcpy(&id, (const int32_t *)ids->data + at, sizeof id, cudaMemcpyDeviceToHost);
        if (e != cudaSuccess) return cu_fail_cuda(err, "embedding", e);
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "embedding: id %d at %lld is outside [0, %lld)", (int)id,
                             (long long)at, (long long)rows);
    }
    return AVO_OK;
}

__global__ void k_upsample(const float *x, float *y, int64_t c, int64_t tin, int64_t tout, float scale, int linear) {
    ROW_LOOP(ch, c) {
        const float *xr = x + ch * tin;
        float *yr = y + ch * tout;
        COL_LOOP(i, tout) {
            if (!linear) {
                int64_t s = tout == tin ? i : (int64_t)floorf(__fmul_rn((float)i, scale));
                yr[i] = xr[s < tin - 1 ? s : tin - 1];
            } else {
                float src = __fsub_rn(__fmul_rn(scale, __fadd_rn((float)i, 0.5f)), 0.5f);
                if (src < 0.0f) src = 0.0f;
                int64_t a0 = (int64_t)src, a1 = a0 + (a0 < tin - 1 ? 1 : 0);
                float l1 = __fsub_rn(src, (float)a0);
                yr[i] = __fadd_rn(__fmul_rn(__fsub_rn(1.0f, l1), xr[a0]), __fmul_rn(l1, xr[a1]));
            }
        }
    }
}

avo_status cu_upsample(avo_backend *be, const avo_tensor *x, avo_upsample mode, avo_tensor *out, avo_error *err) {
    cu_impl *cu = cu_of(be);
    TRY(cu_check_sticky(cu, "upsample", err));
    int64_t c = x->shape[0], tin = x->shape[1], tout = out->shape[1];
    cu_note_write(cu, out->data, (size_t)(c * tout) * sizeof(float));
    if (c == 0) return AVO_OK;
    float scale = (float)tin / (float)tout; /* in float, as PyTorch and the CPU back end */
    k_upsample<<<CU_ROWS(cu, c, tout), 0, cu->stream>>>((const float *)x->data, (float *)out->data, c, tin,
                                                                      tout, scale, mode == AVO_UPSAMPLE_LINEAR);
    return cu_check_launch("upsample", err);
}

__global__ void k_pool1d(const float *x, float *y, int64_t c, int64_t t, int64_t tout, int kernel, int stride,
                         int padding, int is_max) {
    ROW_LOOP(ch, c) {
        const float *xr = x + ch * t;
        COL_LOOP(i, tout) {
            int64_t s0 = i * stride - padding, s1 = s0 + kernel;
            if (s0 < 0) s0 = 0;
            if (s1 > t) s1 = t;
            float r;
            if (is_max) {
                r = -INFINITY;
                for (int64_t j = s0; j < s1; j++) r = xr[j] > r ? xr[j] : r;
            } else {
                float s = 0.0f;
                for (int64_t j = s0; j < s1; j++) s += xr[j];
                r = s / (float)kernel;
            }
            y[ch * tout + i] = r;
        }
    }
}

avo_status cu_pool1d(avo_backend *be, const avo_tensor *x, avo_pool kind, int kernel, int stride, int padding,
                     avo_tensor *out, avo_error *err) {
    cu_impl *cu = cu_of(be);
    TRY(cu_check_sticky(cu, "pool1d", err));
    int64_t c = x->shape[0], t = x->shape[1], tout = out->shape[1];
    cu_note_write(cu, out->data, (size_t)(c * tout) * sizeof(float));
    if (c == 0) return AVO_OK;
    k_pool1d<<<CU_ROWS(cu, c, tout), 0, cu->stream>>>((const float *)x->data, (float *)out->data, c, t, tout,
                                                                    kernel, stride, padding, kind == AVO_POOL_MAX);
    return cu_check_launch("pool1d", err);
}

/* ---- layout ---------------------------------------------------------------------------------- */

#define TR_TILE 32
#define TR_ROWS 8

/* Through a padded shared tile so that both the reads and the writes are coalesced. */
__global__ void k_transpose(const float *x, float *y, int64_t r, int64_t c) {
    __shared__ float tile[TR_TILE][TR_TILE + 1];
    int64_t nby = (r + TR_TILE - 1) / TR_TILE;
    int64_t c0 = blockIdx.x * (int64_t)TR_TILE;
    for (int64_t by = blockIdx.y; by < nby; by += gridDim.y) {
        int64_t r0 = by * TR_TILE;
        for (int j = threadIdx.y; j < TR_TILE; j += TR_ROWS) {
            int64_t row = r0 + j, col = c0 + threadIdx.x;
            if (row < r && col < c) tile[j][threadIdx.x] = x[row * c + col];
        }
        __syncthreads();
        for (int j = threadIdx.y; j < TR_TILE; j += TR_ROWS) {
            int64_t orow = c0 + j, ocol = r0 + threadIdx.x; /* y is [c, r] */
            if (orow < c && ocol < r) y[orow * r + ocol] = tile[threadIdx.x][j];
        }
        __syncthreads();
    }
}

avo_status cu_transpose(avo_backend *be, const avo_tensor *x, avo_tensor *out, avo_error *err) {
    cu_impl *cu = cu_of(be);
    TRY(cu_check_sticky(cu, "transpose", err));
    int64_t r = x->shape[0], c = x->shape[1];
    cu_note_write(cu, out->data, (size_t)(r * c) * sizeof(float));
    if (r == 0 || c == 0) return AVO_OK;
    int64_t gx = (c + TR_TILE - 1) / TR_TILE, gy = (r + TR_TILE - 1) / TR_TILE;
    if (gx > INT_MAX) return avo_error_set(err, AVO_ERR_UNSUPPORTED, "cuda: transpose of %lld columns", (long long)c);
    dim3 grid((unsigned)gx, (unsigned)(gy < CU_MAX_GRID_Y ? gy : CU_MAX_GRID_Y)), block(TR_TILE, TR_ROWS);
    k_transpose<<<grid, block, 0, cu->stream>>>((const float *)x->data, (float *)out->data, r, c);
    return cu_check_launch("transpose", err);
}

avo_status cu_copy(avo_backend *be, const avo_tensor *x, avo_tensor *out, avo_error *err) {
    cu_impl *cu = cu_of(be);
    TRY(cu_check_sticky(cu, "copy", err));
    size_t bytes = (size_t)avo_tensor_numel(x) * sizeof(float);
    cu_note_write(cu, out->data, bytes);
    if (out->data == x->data || bytes == 0) return AVO_OK;
    uintptr_t s = (uintptr_t)x->data, d = (uintptr_t)out->data;
    cudaError_t e;
    if (s < d + bytes && d < s + bytes) { /* overlapping row views: memmove through a temporary */
        void *tmp = NULL;
        e = cudaMallocAsync(&tmp, bytes, cu->stream);
        if (e == cudaSuccess) e = cudaMemcpyAsync(tmp, x->data, bytes, cudaMemcpyDeviceToDevice, cu->stream);
        if (e == cudaSuccess) e = cudaMemcpyAsync(out->data, tmp, bytes, cudaMemcpyDeviceToDevice, cu->stream);
        if (tmp) cudaFreeAsync(tmp, cu->stream);
    } else {
        e = cudaMemcpyAsync(out->data, x->data, bytes, cudaMemcpyDeviceToDevice, cu->stream);
    }
    return e == cudaSuccess ? AVO_OK : cu_fail_cuda(err, "copy", e);
}

/* ---- GRU recurrence --------------------------------------------------------------------------- */

__device__ __forceinline__ float sigm(float v) { return 1.0f / (1.0f + expf(-v)); }

/* The recurrence is sequential in time; what can be spread is each step's W_hh h (3H x H).
 *
 * Main kernel: nb blocks per direction, launched cooperatively. Block b owns units [u0, u1) of h,
 * that is rows u, H+u, 2H+u of W_hh, kept in shared memory for the whole sequence, so a step reads
 * only h (H floats) from L2: the block computes its gates, writes its units of the new h to a global
 * buffer (two, by step parity) and the grid waits at a barrier. W_hh never leaves the chip.
 *
 * Fallback (no cooperative launch, or W_hh too large for the SMs' shared memory): one block per
 * direction reading W_hh from L2 every step, warp per row. */
__global__ void __launch_bounds__(256) k_gru_coop(const float *gx, const float *whh0, const float *whh1,
                                                  const float *bhh0, const float *bhh1, int64_t t, int h, int units,
                                                  float *hbuf, float *out) {
    cooperative_groups::grid_group grid = cooperative_groups::this_grid();
    extern __shared__ float sm[];
    int nb = gridDim.x / 2, d = blockIdx.x / nb, b = blockIdx.x - d * nb;
    int u0 = b * units, u1 = u0 + units < h ? u0 + units : h, nu = u1 > u0 ? u1 - u0 : 0;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const float *W = d ? whh1 : whh0, *bh = d ? bhh1 : bhh0, *G = gx + (int64_t)d * t * 3 * h;
    float *w = sm, *hs = sm + (size_t)3 * units * h, *gh = hs + h; /* w: row g*nu + i is W_hh row g*H + u0 + i */
    float *hb = hbuf + (int64_t)d * 2 * h;
    for (int r = warp; r < 3 * nu; r += nw) {
        int g = r / nu, u = u0 + r - g * nu;
        for (int k = lane; k < h; k += 32) w[(size_t)r * h + k] = W[((int64_t)g * h + u) * h + k];
    }
    for (int i = threadIdx.x; i < nu; i += blockDim.x) hb[u0 + i] = 0.0f;
    grid.sync();
    for (int64_t step = 0; step < t; step++) {
        int64_t ti = d ? t - 1 - step : step;
        const float *hp = hb + (step & 1) * h;
        float *hn = hb + ((step + 1) & 1) * h;
        for (int k = threadIdx.x; k < h; k += blockDim.x) hs[k] = __ldcg(hp + k); /* other SMs wrote it: skip L1 */
        __syncthreads();
        for (int r = warp; r < 3 * nu; r += nw) {
            const float *wr = w + (size_t)r * h;
            float acc = 0.0f;
            for (int k = lane; k < h; k += 32) acc += wr[k] * hs[k];
            acc = warp_sum(acc);
            if (lane == 0) {
                int g = r / nu, u = u0 + r - g * nu;
                gh[r] = acc + (bh ? bh[g * h + u] : 0.0f);
            }
        }
        __syncthreads();
        const float *gt = G + ti * 3 * h;
        for (int i = threadIdx.x; i < nu; i += blockDim.x) {
            int u = u0 + i;
            float rg = sigm(gt[u] + gh[i]);
            float z = sigm(gt[h + u] + gh[nu + i]);
            float n = tanhf(gt[2 * h + u] + rg * gh[2 * nu + i]);
            float hv = (1.0f - z) * n + z * hs[u];
            hn[u] = hv;
            out[ti * 2 * h + (int64_t)d * h + u] = hv;
        }
        grid.sync();
    }
}

__global__ void __launch_bounds__(1024) k_gru(const float *gx, const float *whh0, const float *whh1, const float *bhh0,
                                              const float *bhh1, int64_t t, int64_t h, float *out) {
    extern __shared__ float sm[];
    int d = blockIdx.x;
    const float *W = d ? whh1 : whh0, *bh = d ? bhh1 : bhh0, *G = gx + (int64_t)d * t * 3 * h;
    float *hs = sm, *gh = sm + h;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    int64_t h3 = 3 * h;
    for (int64_t i = threadIdx.x; i < h; i += blockDim.x) hs[i] = 0.0f;
    __syncthreads();
    for (int64_t step = 0; step < t; step++) {
        int64_t ti = d ? t - 1 - step : step;
        for (int64_t j = warp; j < h3; j += nw) {
            const float *wr = W + j * h;
            float acc = 0.0f;
            for (int64_t k = lane; k < h; k += 32) acc += wr[k] * hs[k];
            acc = warp_sum(acc);
            if (lane == 0) gh[j] = acc + (bh ? bh[j] : 0.0f);
        }
        __syncthreads();
        const float *g = G + ti * h3;
        float *o = out + ti * 2 * h + (int64_t)d * h;
        for (int64_t i = threadIdx.x; i < h; i += blockDim.x) {
            float r = sigm(g[i] + gh[i]);
            float z = sigm(g[h + i] + gh[h + i]);
            float n = tanhf(g[2 * h + i] + r * gh[2 * h + i]);
            float hn = (1.0f - z) * n + z * hs[i];
            hs[i] = hn;
            o[i] = hn;
        }
        __syncthreads();
    }
}

/* Shared memory of W_hh per block that the cooperative kernel aims for: a fraction of the SM's, so
 * that the slices stay small and the blocks many (each step's work shrinks with them). */
#define GRU_SLICE_BYTES (96 * 1024)
#define GRU_COOP_THREADS 256

void cu_launch_gru(cu_impl *cu, const float *gx, const float *whh0, const float *whh1, const float *bhh0,
                   const float *bhh1, int64_t t, int64_t h, float *hbuf, float *out) {
    const char *env = getenv("AVO_CUDA_GRU_COOP"); /* "0": the one-block kernel (for comparisons) */
    if (!(env && !strcmp(env, "0")) && cu_gru_cluster(cu, gx, whh0, whh1, bhh0, bhh1, t, h, out)) return;
    if (cu->coop && h > 0 && h <= 8192 && !(env && !strcmp(env, "0"))) {
        int64_t nb = ((int64_t)3 * h * h * 4 + GRU_SLICE_BYTES - 1) / GRU_SLICE_BYTES;
        if (nb < 1) nb = 1;
        if (nb > h) nb = h;
        int units = (int)((h + nb - 1) / nb);
        nb = (h + units - 1) / units;
        size_t smem = ((size_t)3 * units * h + h + 3 * units) * sizeof(float);
        int per_sm = 0;
        if (smem <= (size_t)cu->smem_optin &&
            cudaFuncSetAttribute(k_gru_coop, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem) == cudaSuccess &&
            cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, k_gru_coop, GRU_COOP_THREADS, smem) == cudaSuccess &&
            (int64_t)per_sm * cu->n_sm >= 2 * nb) {
            int hh = (int)h;
            void *args[] = {(void *)&gx, (void *)&whh0, (void *)&whh1, (void *)&bhh0, (void *)&bhh1,
                            (void *)&t,  (void *)&hh,   (void *)&units, (void *)&hbuf, (void *)&out};
            if (cudaLaunchCooperativeKernel((const void *)k_gru_coop, dim3((unsigned)(2 * nb)), dim3(GRU_COOP_THREADS),
                                            args, smem, cu->stream) == cudaSuccess)
                return;
        }
        cudaGetLastError(); /* not possible here: the fallback below */
    }
    size_t smem = (size_t)(4 * h) * sizeof(float);
    if (smem > 48 * 1024) cudaFuncSetAttribute(k_gru, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    k_gru<<<2, 1024, smem, cu->stream>>>(gx, whh0, whh1, bhh0, bhh1, t, h, out);
}
