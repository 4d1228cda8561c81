/* CUDA back end internals shared by its translation units: the back end's state, error helpers,
 * the row-major GEMM wrapper over cuBLAS and the kernel launchers of cuda_kernels.cu.
 *
 * Everything runs on one stream in issue order, so arena memory can be reused by the next op
 * without synchronising; only copy_out (and the embedding's id check) wait for the device. */
#ifndef AVO_CUDA_INTERNAL_H
#define AVO_CUDA_INTERNAL_H

extern "C" {
#include "engine/engine_internal.h"
}

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

/* A half copy of a weight tensor (FP16 mode), made on first use and dropped as soon as the back end
 * writes anywhere into the float original's memory (see cu_note_write). */
typedef struct cu_half_weight {
    uintptr_t lo, hi; /* the float original's bytes */
    __half *h;
} cu_half_weight;

/* A device block handed out by mem_alloc, or kept for reuse after mem_free. */
typedef struct cu_block {
    void *p;
    size_t size;
} cu_block;

typedef struct cu_impl {
    int device, n_sm;
    cudaStream_t stream;
    cublasHandle_t blas;
    int precision; /* avo_cuda_precision */

    /* pinned staging for copy_in/copy_out: two buffers so one fills while the other uploads */
    float *stage[2];
    size_t stage_floats;
    cudaEvent_t stage_ev[2];
    int stage_next;

    /* device blocks: live ones (sizes for cu_note_write on free) and a free pool */
    cu_block *live, *pool;
    size_t n_live, cap_live, n_pool, cap_pool, pool_bytes;

    cu_half_weight *hw;
    size_t n_hw, cap_hw;
    uintptr_t hw_lo, hw_hi; /* bounds of all cached originals: most writes are rejected by one test */

    int *flag_dev, *flag_host; /* the embedding's bad-id flag */

    int64_t gemm_fp32, gemm_fp16; /* GEMM calls made, by operand precision */

    /* An error of a call that cannot return one (copy_in/copy_out): every later op reports it. */
    avo_status sticky;
    char sticky_msg[256];
} cu_impl;

static inline cu_impl *cu_of(const avo_backend *be) { return (cu_impl *)be->impl; }

/* ---- errors --------------------------------------------------------------------------------- */

avo_status cu_fail_cuda(avo_error *err, const char *what, cudaError_t e);
avo_status cu_fail_blas(avo_error *err, const char *what, cublasStatus_t s);
/* The sticky error, if any, then the launch error of the kernels just queued. */
avo_status cu_check_sticky(cu_impl *cu, const char *op, avo_error *err);
avo_status cu_check_launch(const char *op, avo_error *err);

/* ---- memory --------------------------------------------------------------------------------- */

/* Forgets half copies of weights that overlap [p, p + bytes): the back end is about to write there. */
void cu_note_write(cu_impl *cu, const void *p, size_t bytes);
/* Uninitialised scratch from the arena (released by the op wrapper's rewind). */
avo_status cu_scratch(cu_impl *cu, avo_arena *a, size_t bytes, void **out, avo_error *err);

/* ---- GEMM ----------------------------------------------------------------------------------- */

/* Row-major, as cblas_sgemm: C[M, N] = alpha op(A)[M, K] op(B)[K, N] + beta C, repeated batch times
 * with element strides sA, sB, sC between the matrices (a stride may be 0 to share one). */
avo_status cu_sgemm(cu_impl *cu, bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                    long long sA, const float *B, int ldb, long long sB, float beta, float *C, int ldc, long long sC,
                    int batch, avo_error *err);
/* The same with half operands and float accumulation and output. */
avo_status cu_hgemm(cu_impl *cu, bool ta, bool tb, int M, int N, int K, float alpha, const __half *A, int lda,
                    long long sA, const __half *B, int ldb, long long sB, float beta, float *C, int ldc, long long sC,
                    int batch, avo_error *err);

/* ---- kernel launchers (cuda_kernels.cu); all on cu->stream ------------------------------------ */

void cu_launch_to_half(cu_impl *cu, const float *x, __half *y, int64_t n);
/* y[r, c] = bias[c] (bias along columns, as a linear's output rows) or bias[r] (along rows). */
void cu_launch_bias_cols(cu_impl *cu, float *y, int64_t rows, int64_t cols, const float *bias);
void cu_launch_bias_rows(cu_impl *cu, float *y, int64_t rows, int64_t cols, int64_t ld, const float *bias);
/* cols[g][c*k + kk][i] = x[g*cig + c, (i0+i)*s + kk*d - pad] (0 outside), i < n. */
void cu_launch_im2col(cu_impl *cu, const float *x, int64_t groups, int64_t cig, int64_t t, int64_t k, int64_t s,
                      int64_t d, int64_t pad, int64_t i0, int64_t n, float *cols);
void cu_launch_im2col_half(cu_impl *cu, const float *x, int64_t groups, int64_t cig, int64_t t, int64_t k, int64_t s,
                           int64_t d, int64_t pad, int64_t i0, int64_t n, __half *cols);
void cu_launch_conv_depthwise(cu_impl *cu, const float *x, const float *w, const float *b, float *y, int64_t cout,
                              int64_t cog, int64_t t, int64_t k, int64_t tout, int64_t s, int64_t d, int64_t pad);
/* Transposed conv: y[o, j] (+)= sum over taps of cols[g][(o%cog)*k + kk][i - i0] where
 * i*s + kk*d - pad = j and i0 <= i < i0 + n; first: y = bias + that, else y += that. */
void cu_launch_col2im(cu_impl *cu, const float *cols, const float *bias, float *y, int64_t cout, int64_t cog,
                      int64_t tout, int64_t k, int64_t s, int64_t d, int64_t pad, int64_t i0, int64_t n, bool first);

/* ---- the ops of the function table --------------------------------------------------------- */

/* cuda_gemm_ops.cu */
avo_status cu_linear(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                     avo_tensor *y, avo_error *err);
avo_status cu_conv1d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                     const avo_conv1d_params *p, avo_tensor *y, avo_error *err);
avo_status cu_conv_transpose1d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                               const avo_tensor *b, const avo_conv_transpose1d_params *p, avo_tensor *y, avo_error *err);
avo_status cu_rel_attention(avo_backend *be, avo_arena *a, const avo_tensor *q, const avo_tensor *k, const avo_tensor *v,
                            const avo_tensor *ek, const avo_tensor *ev, int heads, int window, avo_tensor *out,
                            avo_error *err);
avo_status cu_bigru(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_gru_weights *w, avo_tensor *out,
                    avo_error *err);
/* Drops every half copy (precision change, destroy). */
void cu_half_weights_clear(cu_impl *cu);
/* The cached half copy of weight w, made now if missing; NULL when the device has no memory for it
 * (the caller then runs FP32, and the GEMM counters say so). */
const __half *cu_half_weight_get(cu_impl *cu, const avo_tensor *w);
/* A half copy of n activations in arena scratch. */
avo_status cu_to_half_scratch(cu_impl *cu, avo_arena *a, const float *x, int64_t n, __half **out, avo_error *err);

/* cuda_ops2d.cu: fills the 2-D entries of the table. */
void cu_ops2d_register(avo_backend_ops *o);

/* cuda_kernels.cu */
avo_status cu_layer_norm(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *gamma,
                         const avo_tensor *beta, float eps, avo_tensor *y, avo_error *err);
avo_status cu_group_norm(avo_backend *be, avo_arena *a, const avo_tensor *x, int groups, const avo_tensor *gamma,
                         const avo_tensor *beta, float eps, avo_tensor *y, avo_error *err);
avo_status cu_act(avo_backend *be, const avo_tensor *x, avo_act act, float alpha, avo_tensor *y, avo_error *err);
avo_status cu_binary(avo_backend *be, int op, const avo_tensor *x, const avo_tensor *y, avo_tensor *out, avo_error *err);
avo_status cu_embedding(avo_backend *be, const avo_tensor *table, const avo_tensor *ids, avo_tensor *out, avo_error *err);
avo_status cu_upsample(avo_backend *be, const avo_tensor *x, avo_upsample mode, avo_tensor *out, avo_error *err);
avo_status cu_pool1d(avo_backend *be, const avo_tensor *x, avo_pool kind, int kernel, int stride, int padding,
                     avo_tensor *out, avo_error *err);
avo_status cu_transpose(avo_backend *be, const avo_tensor *x, avo_tensor *out, avo_error *err);
avo_status cu_copy(avo_backend *be, const avo_tensor *x, avo_tensor *out, avo_error *err);
/* Softmax of attention score rows with the relative-position band (see cu_rel_attention). */
void cu_launch_att_softmax(cu_impl *cu, float *S, float *R, int64_t rows, int64_t bq, int64_t i0, int64_t t,
                           int window);
/* The GRU recurrence of both directions: gx [2][T][3H] input projections (b_ih included),
 * whh [3H, H] per direction, bhh NULL or [3H]; out [T, 2H]. */
void cu_launch_gru(cu_impl *cu, const float *gx, const float *whh0, const float *whh1, const float *bhh0,
                   const float *bhh1, int64_t t, int64_t h, float *out);

#endif
