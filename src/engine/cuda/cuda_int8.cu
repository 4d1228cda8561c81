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

/* The INT8 cache entry of w: made now (weight read back, named, looked up, quantised and uploaded)
 * when missing. NULL only when the host or the device has no memory. */
static const cu_half_weight *int8_weight(cu_impl *cu, const avo_tensor *w, avo_error *err) {
    const cu_half_weight *e = cu_weight_cache_find(cu, w, CU_I8_ROWS);
    if (e) return e;
    const int64_t out = w->shape[0], in = w->shape[1], n = out * in;
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
    avo_calib_weight_name(AVO_GEMM_LINEAR, &hv, name);
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
        avo_status st = avo_calib_weight_scales(AVO_GEMM_LINEAR, &hv, 1, ws, err);
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

avo_status cu_linear_int8(cu_impl *cu, avo_arena *a, const float *X, int64_t rows, const avo_tensor *w,
                          const float *bias, float *Y, bool *ran, avo_error *err) {
    *ran = false;
    const int64_t out = w->shape[0], in = w->shape[1];
    /* IMMA kernels want 16-byte rows of int8 (in % 16) and 4-aligned output rows; others stay FP16 */
    bool ok = cu->calib && cu->int8_ok >= 0 && rows > 0 && in > 0 && in % 16 == 0 && out % 4 == 0 &&
              rows <= INT32_MAX && in <= INT32_MAX && out <= INT32_MAX;
    const cu_half_weight *e = NULL;
    if (ok) {
        e = int8_weight(cu, w, err);
        if (!e) return err ? err->code : AVO_ERR_NO_MEMORY;
        ok = e->h != NULL;
    }
    if (!ok) {
        cu->int8_skipped++;
        return AVO_OK;
    }
    void *xq = NULL;
    TRY(cu_scratch(cu, a, (size_t)(rows * in), &xq, err));
    const float inv = 1.0f / e->x_scale; /* as the host quantiser: 1/scale in float, then v * inv */
    int64_t nb = (rows * in + 255) / 256, cap = (int64_t)(cu->n_sm > 0 ? cu->n_sm : 80) * 32;
    k_quant<<<(unsigned)(nb < cap ? nb : cap), 256, 0, cu->stream>>>(X, (signed char *)xq, rows * in, inv);
    const signed char *wq = (const signed char *)e->h;
    const float *ws = (const float *)((const unsigned char *)e->h + round16((size_t)(out * in)));
    const int alpha = 1, beta = 0;
    /* row-major Y[rows, out] = Xq Wq^T is column-major Y^T[out, rows] = Wq^T(T) Xq^T(N): the TN layout */
    cublasStatus_t s = cublasGemmEx(cu->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)out, (int)rows, (int)in, &alpha, wq, CUDA_R_8I,
                                    (int)in, xq, CUDA_R_8I, (int)in, &beta, Y, CUDA_R_32I, (int)out, CUBLAS_COMPUTE_32I,
                                    CUBLAS_GEMM_DEFAULT);
    if (s == CUBLAS_STATUS_NOT_SUPPORTED || s == CUBLAS_STATUS_ARCH_MISMATCH || s == CUBLAS_STATUS_INVALID_VALUE) {
        cu->int8_ok = -1; /* this GPU / cuBLAS takes no INT8 GEMM: FP16 from now on, and the counts say so */
        cu->int8_skipped++;
        return AVO_OK;
    }
    if (s != CUBLAS_STATUS_SUCCESS) return cu_fail_blas(err, "int8 gemm", s);
    cu->int8_ok = 1;
    k_dequant<<<CU_ROWS(cu, rows, out), 0, cu->stream>>>(Y, rows, out, e->x_scale, ws, bias);
    cu->gemm_int8++;
    *ran = true;
    return cu_check_launch("linear int8", err);
}
