/* INT8 mode of the CUDA back end: avo_op_linear as an INT8 x INT8 -> INT32 GEMM on the tensor cores
 * (cuBLAS, CUBLAS_COMPUTE_32I), with the quantiser of calibrate.h so that the CPU simulation
 * (avo_calib_sim) predicts the result:
 *   x_q = clamp(rint(x * (1 / x_scale)), -127, 127)      x_scale from the calibration table
 *   w_q[o] = clamp(rint(w[o] * (1 / w_scale[o])), ...)   w_scale[o] = max|w[o]| / 127
 *   y[r, o] = (float)sum_i x_q[r, i] w_q[o, i] * (x_scale * w_scale[o]) + bias[o]
 * The sum is exact in int32 (|x_q w_q| <= 127^2, so up to 133 000 terms); the simulation adds the same
 * products in float, so the two differ only by the simulation's float rounding.
 *
 * The weight is quantised on the host by calibrate.c's own functions, once per weight (its tensor name
 * needs the weight's bytes, so it is read back: one synchronisation on first use), and cached beside
 * the half copies (dropped when the weight's memory is written). */
#include "engine/cuda/cuda_internal.h"

#include "autovoice/calibrate.h"

#include <stdlib.h>
#include <string.h>

#define TRY(expr)                       \
    do {                                \
        avo_status st_ = (expr);        \
        if (st_ != AVO_OK) return st_; \
    } while (0)

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* calibrate.c's quant_level: rintf of the float product (round half to even), clamped; NaN -> 0.
 * __fmul_rn keeps the product a separate rounding as on the host (no contraction into anything). */
__device__ __forceinline__ signed char quant1(float v, float inv) {
    float r = rintf(__fmul_rn(v, inv));
    r = r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r;
    return r == r ? (signed char)(int)r : (signed char)0;
}

__global__ void k_quant(const float *x, signed char *q, int64_t n, float inv) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        q[i] = quant1(x[i], inv);
}

/* In place: y holds the int32 sums on entry (the GEMM wrote them into y's own memory). */
__global__ void k_dequant(float *y, int64_t rows, int64_t cols, float xs, const float *ws, const float *bias) {
    const int *acc = (const int *)y;
    ROW_LOOP(r, rows) COL_LOOP(c, cols) {
        int64_t i = r * cols + c;
        float v = (float)acc[i] * (xs * ws[c]);
        y[i] = bias ? v + bias[c] : v;
    }
}

/* 1x1 convolution: x [in, t] quantised into xq [t, in] (the GEMM's rows are frames), through a
 * 32 x 32 shared tile so that both the float reads and the byte writes are coalesced. */
#define TT 32
__global__ void k_quant_t(const float *x, signed char *xq, int64_t in, int64_t t, float inv) {
    __shared__ signed char tile[TT][TT + 4];
    const int64_t t0 = (int64_t)blockIdx.x * TT, c0 = (int64_t)blockIdx.y * TT;
    for (int j = threadIdx.y; j < TT; j += blockDim.y) {
        int64_t c = c0 + j, f = t0 + threadIdx.x;
        tile[j][threadIdx.x] = c < in && f < t ? quant1(x[c * t + f], inv) : (signed char)0;
    }
    __syncthreads();
    for (int j = threadIdx.y; j < TT; j += blockDim.y) {
        int64_t f = t0 + j, c = c0 + threadIdx.x;
        if (f < t && c < in) xq[f * in + c] = tile[threadIdx.x][j];
    }
}

/* acc [t, out] (int32) -> y [out, t] = acc * (xs * ws[o]) + bias[o], transposed through a tile. */
__global__ void k_dequant_t(const int *acc, float *y, int64_t out, int64_t t, float xs, const float *ws,
                            const float *bias) {
    __shared__ float tile[TT][TT + 1];
    const int64_t t0 = (int64_t)blockIdx.x * TT, o0 = (int64_t)blockIdx.y * TT;
    for (int j = threadIdx.y; j < TT; j += blockDim.y) {
        int64_t f = t0 + j, o = o0 + threadIdx.x;
        tile[j][threadIdx.x] = f < t && o < out ? (float)acc[f * out + o] : 0.0f;
    }
    __syncthreads();
    for (int j = threadIdx.y; j < TT; j += blockDim.y) {
        int64_t o = o0 + j, f = t0 + threadIdx.x;
        if (o < out && f < t) {
            float v = tile[threadIdx.x][j] * (xs * ws[o]);
            y[o * t + f] = bias ? v + bias[o] : v;
        }
    }
}

/* The INT8 cache entry of w (kind: how calibrate.h names it): made now (weight read back, named, looked
 * up, quantised and uploaded) when missing. NULL only when the host or the device has no memory. */
static const cu_half_weight *int8_weight(cu_impl *cu, const avo_tensor *w, avo_gemm_kind kind, avo_error *err) {
    const cu_half_weight *e = cu_weight_cache_find(cu, w, CU_I8_ROWS);
    if (e) return e;
    const int64_t out = w->shape[0], n = avo_tensor_numel(w), in = out ? n / out : 0;
    float *hw = (float *)malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!hw) {
        avo_error_set(err, AVO_ERR_NO_MEMORY, "cuda int8: out of host memory reading a weight");
        return NULL;
    }
    cudaError_t ce = cudaMemcpyAsync(hw, w->data, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost, cu->stream);
    if (ce == cudaSuccess) ce = cudaStreamSynchronize(cu->stream);
    if (ce != cudaSuccess) {
        cu_fail_cuda(err, "int8 weight read-back", ce);
        free(hw);
        return NULL;
    }
    avo_tensor hv = *w;
    hv.data = hw;
    char name[AVO_CALIB_NAME_MAX];
    avo_calib_weight_name(kind, &hv, name);
    float xs = 0.0f;
    void *blk = NULL;
    if (avo_calib_table_find(cu->calib, name, &xs)) {
        const size_t qbytes = round16((size_t)n), bytes = qbytes + (size_t)out * sizeof(float);
        unsigned char *host = (unsigned char *)malloc(bytes);
        if (!host) {
            free(hw);
            avo_error_set(err, AVO_ERR_NO_MEMORY, "cuda int8: out of host memory quantising a weight");
            return NULL;
        }
        float *ws = (float *)(host + qbytes);
        avo_status st = avo_calib_weight_scales(kind, &hv, 1, ws, err);
        for (int64_t o = 0; !st && o < out; o++) avo_calib_quantize(hw + o * in, in, ws[o], (int8_t *)host + o * in);
        if (!st) {
            ce = cudaMallocAsync(&blk, bytes, cu->stream);
            if (ce == cudaSuccess) ce = cudaMemcpyAsync(blk, host, bytes, cudaMemcpyHostToDevice, cu->stream);
            if (ce == cudaSuccess) ce = cudaStreamSynchronize(cu->stream); /* host is freed next */
            if (ce != cudaSuccess) st = cu_fail_cuda(err, "int8 weight upload", ce);
        }
        free(host);
        if (st) {
            if (blk) cudaFreeAsync(blk, cu->stream);
            free(hw);
            return NULL;
        }
    }
    free(hw);
    if (!cu_weight_cache_add(cu, w, CU_I8_ROWS, blk, xs)) {
        if (blk) cudaFreeAsync(blk, cu->stream);
        avo_error_set(err, AVO_ERR_NO_MEMORY, "cuda int8: out of host memory");
        return NULL;
    }
    return cu_weight_cache_find(cu, w, CU_I8_ROWS);
}

/* Whether an op of these sizes may run INT8 (IMMA kernels want 16-byte rows of int8, in % 16, and
 * 4-aligned output rows), and its weight's entry with a scale; false: count it as skipped. */
static bool int8_ready(cu_impl *cu, const avo_tensor *w, avo_gemm_kind kind, int64_t rows, int64_t in, int64_t out,
                       const cu_half_weight **e, avo_status *st, avo_error *err) {
    *st = AVO_OK;
    *e = NULL;
    if (!cu->calib || cu->int8_ok < 0 || rows <= 0 || in <= 0 || in % 16 || out % 4 || rows > INT32_MAX ||
        in > INT32_MAX || out > INT32_MAX)
        return false;
    *e = int8_weight(cu, w, kind, err);
    if (!*e) {
        *st = err && err->code ? err->code : AVO_ERR_NO_MEMORY;
        return false;
    }
    return (*e)->h != NULL;
}

/* acc[rows, out] = xq[rows, in] wq[out, in]^T in int32. Row-major acc = Xq Wq^T is column-major
 * acc^T[out, rows] = Wq^T(T) Xq^T(N): the TN layout of the IMMA kernels. *ran false when cuBLAS
 * refuses INT8 here (then never asked again: FP16 from now on, and the counts say so). */
static avo_status int8_gemm(cu_impl *cu, const cu_half_weight *e, const void *xq, int64_t rows, int64_t in, int64_t out,
                            int *acc, bool *ran, avo_error *err) {
    const int alpha = 1, beta = 0;
    cublasStatus_t s = cublasGemmEx(cu->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)out, (int)rows, (int)in, &alpha, e->h,
                                    CUDA_R_8I, (int)in, xq, CUDA_R_8I, (int)in, &beta, acc, CUDA_R_32I, (int)out,
                                    CUBLAS_COMPUTE_32I, CUBLAS_GEMM_DEFAULT);
    *ran = false;
    if (s == CUBLAS_STATUS_NOT_SUPPORTED || s == CUBLAS_STATUS_ARCH_MISMATCH || s == CUBLAS_STATUS_INVALID_VALUE) {
        cu->int8_ok = -1;
        return AVO_OK;
    }
    if (s != CUBLAS_STATUS_SUCCESS) return cu_fail_blas(err, "int8 gemm", s);
    cu->int8_ok = 1;
    *ran = true;
    return AVO_OK;
}

static const float *w_scales(const cu_half_weight *e, int64_t n) {
    return (const float *)((const unsigned char *)e->h + round16((size_t)n));
}

static unsigned grid1(const cu_impl *cu, int64_t n) {
    int64_t nb = (n + 255) / 256, cap = (int64_t)(cu->n_sm > 0 ? cu->n_sm : 80) * 32;
    return (unsigned)(nb < 1 ? 1 : nb < cap ? nb : cap);
}

avo_status cu_linear_int8(cu_impl *cu, avo_arena *a, const float *X, int64_t rows, const avo_tensor *w,
                          const float *bias, float *Y, bool *ran, avo_error *err) {
    *ran = false;
    const int64_t out = w->shape[0], in = w->shape[1];
    const cu_half_weight *e = NULL;
    avo_status st;
    if (!int8_ready(cu, w, AVO_GEMM_LINEAR, rows, in, out, &e, &st, err)) {
        if (!st) cu->int8_skipped++;
        return st;
    }
    void *xq = NULL;
    TRY(cu_scratch(cu, a, (size_t)(rows * in), &xq, err));
    const float inv = 1.0f / e->x_scale; /* as the host quantiser: 1/scale in float, then v * inv */
    k_quant<<<grid1(cu, rows * in), 256, 0, cu->stream>>>(X, (signed char *)xq, rows * in, inv);
    TRY(int8_gemm(cu, e, xq, rows, in, out, (int *)Y, ran, err)); /* the int32 sums land in Y's own memory */
    if (!*ran) {
        cu->int8_skipped++;
        return AVO_OK;
    }
    k_dequant<<<CU_ROWS(cu, rows, out), 0, cu->stream>>>(Y, rows, out, e->x_scale, w_scales(e, out * in), bias);
    cu->gemm_int8++;
    return cu_check_launch("linear int8", err);
}

avo_status cu_conv1x1_int8(cu_impl *cu, avo_arena *a, const float *X, int64_t t, const avo_tensor *w, const float *bias,
                           float *Y, bool *ran, avo_error *err) {
    *ran = false;
    const int64_t out = w->shape[0], in = w->shape[1];
    const cu_half_weight *e = NULL;
    avo_status st;
    if (!int8_ready(cu, w, AVO_GEMM_CONV1D, t, in, out, &e, &st, err)) {
        if (!st) cu->int8_skipped++;
        return st;
    }
    void *xq = NULL, *acc = NULL;
    TRY(cu_scratch(cu, a, (size_t)(t * in), &xq, err));
    TRY(cu_scratch(cu, a, (size_t)(t * out) * sizeof(int), &acc, err));
    const float inv = 1.0f / e->x_scale;
    dim3 blk(TT, 8), gq((unsigned)((t + TT - 1) / TT), (unsigned)((in + TT - 1) / TT));
    if (gq.y > 65535) return avo_error_set(err, AVO_ERR_UNSUPPORTED, "cuda int8: %lld input channels", (long long)in);
    k_quant_t<<<gq, blk, 0, cu->stream>>>(X, (signed char *)xq, in, t, inv);
    TRY(int8_gemm(cu, e, xq, t, in, out, (int *)acc, ran, err));
    if (!*ran) {
        cu->int8_skipped++;
        return AVO_OK;
    }
    dim3 gd((unsigned)((t + TT - 1) / TT), (unsigned)((out + TT - 1) / TT));
    if (gd.y > 65535) return avo_error_set(err, AVO_ERR_UNSUPPORTED, "cuda int8: %lld output channels", (long long)out);
    k_dequant_t<<<gd, blk, 0, cu->stream>>>((const int *)acc, Y, out, t, e->x_scale, w_scales(e, out * in), bias);
    cu->gemm_int8++;
    return cu_check_launch("conv1d int8", err);
}

/* ---- FP16 1x1 convolution over frames-major operands ----------------------------------------
 * x [in, t] with t not a multiple of 8 gives cuBLAS half operands whose rows are not 16-byte aligned,
 * and its kernels for them ran HuBERT's 768 -> 768 projection (t 1499) at 47 us where the aligned
 * INT8 layout above took 24 us. So the same layout in half: x converted and transposed to [t, in],
 * acc [t, out] = xh w^T (rows of in and out halves, aligned), then transposed into y with bias and
 * residual. */

__global__ void k_half_t(const float *x, __half *xh, int64_t in, int64_t t, bool act, float slope) {
    __shared__ float tile[TT][TT + 1];
    const int64_t t0 = (int64_t)blockIdx.x * TT, c0 = (int64_t)blockIdx.y * TT;
    for (int j = threadIdx.y; j < TT; j += blockDim.y) {
        int64_t c = c0 + j, f = t0 + threadIdx.x;
        float v = c < in && f < t ? x[c * t + f] : 0.0f;
        tile[j][threadIdx.x] = act && v < 0.0f ? v * slope : v;
    }
    __syncthreads();
    for (int j = threadIdx.y; j < TT; j += blockDim.y) {
        int64_t f = t0 + j, c = c0 + threadIdx.x;
        if (f < t && c < in) xh[f * in + c] = __float2half_rn(tile[threadIdx.x][j]);
    }
}

__global__ void k_unt_bias(const float *acc, float *y, int64_t out, int64_t t, const float *bias, const float *res) {
    __shared__ float tile[TT][TT + 1];
    const int64_t t0 = (int64_t)blockIdx.x * TT, o0 = (int64_t)blockIdx.y * TT;
    for (int j = threadIdx.y; j < TT; j += blockDim.y) {
        int64_t f = t0 + j, o = o0 + threadIdx.x;
        tile[j][threadIdx.x] = f < t && o < out ? acc[f * out + o] : 0.0f;
    }
    __syncthreads();
    for (int j = threadIdx.y; j < TT; j += blockDim.y) {
        int64_t o = o0 + j, f = t0 + threadIdx.x;
        if (o < out && f < t) {
            float v = tile[threadIdx.x][j];
            if (bias) v += bias[o];
            if (res) v += res[o * t + f];
            y[o * t + f] = v;
        }
    }
}

avo_status cu_conv1x1_half_t(cu_impl *cu, avo_arena *a, const float *X, int64_t t, const avo_tensor *w,
                             const __half *wh, const float *bias, bool act, float slope, const float *res, float *Y,
                             bool *ran, avo_error *err) {
    *ran = false;
    const int64_t out = w->shape[0], in = w->shape[1];
    if (!wh || t % 8 == 0 || in % 8 || out % 8 || t <= 0 || t > INT32_MAX || in > INT32_MAX || out > INT32_MAX ||
        (in + TT - 1) / TT > 65535 || (out + TT - 1) / TT > 65535)
        return AVO_OK;
    void *xh = NULL, *acc = NULL;
    TRY(cu_scratch(cu, a, (size_t)(t * in) * sizeof(__half), &xh, err));
    TRY(cu_scratch(cu, a, (size_t)(t * out) * sizeof(float), &acc, err));
    dim3 blk(TT, 8), gq((unsigned)((t + TT - 1) / TT), (unsigned)((in + TT - 1) / TT));
    k_half_t<<<gq, blk, 0, cu->stream>>>(X, (__half *)xh, in, t, act, slope);
    TRY(cu_hgemm(cu, false, true, (int)t, (int)out, (int)in, 1.0f, (const __half *)xh, (int)in, 0, wh, (int)in, 0, 0.0f,
                 (float *)acc, (int)out, 0, 1, err));
    dim3 gd((unsigned)((t + TT - 1) / TT), (unsigned)((out + TT - 1) / TT));
    k_unt_bias<<<gd, blk, 0, cu->stream>>>((const float *)acc, Y, out, t, bias, res);
    *ran = true;
    return cu_check_launch("conv1d", err);
}
