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

/* A half copy of a weight tensor (FP16 mode), or its INT8 copy (INT8 mode), made on first use and
 * dropped as soon as the back end writes anywhere into the float original's memory (see cu_note_write). */
typedef struct cu_half_weight {
    uintptr_t lo, hi; /* the float original's bytes */
    int layout;       /* CU_HALF_PLAIN, CU_HALF_TAPS or CU_I8_ROWS */
    void *h;          /* device copy; NULL for a CU_I8_ROWS entry whose weight has no scale */
    float x_scale;    /* CU_I8_ROWS: the input's calibrated scale */
} cu_half_weight;

/* Half weight layouts: the original's order, or a conv1d weight [Cout, Cin/g, K] regrouped as
 * [g][K][Cout/g][Cin/g] (input channels contiguous per tap) for the implicit-GEMM convolution. */
#define CU_HALF_PLAIN 0
#define CU_HALF_TAPS 1
/* A linear's weight [out, in] as int8 rows (quantised per output channel, calibrate.h), then the out
 * float scales, at a 16-byte aligned offset. */
#define CU_I8_ROWS 2

/* One op timed by CUDA events (profiling mode). */
typedef struct cu_prof_rec {
    const char *op;
    char key[72];
    cudaEvent_t e0, e1;
} cu_prof_rec;

/* A device block handed out by mem_alloc, or kept for reuse after mem_free. */
typedef struct cu_block {
    void *p;
    size_t size;
} cu_block;

/* A captured stretch of device work (cuda_graph.cu, engine_cuda.h): its key, the state it was
 * recorded in, and the graph (exec NULL: seen once, captured on the next identical run). */
#define CU_GRAPHS 8
typedef struct cu_graph {
    uint64_t key;
    avo_arena *arena;
    void *start;            /* the arena's next address where the stretch began */
    avo_arena_mark m0, m1;  /* the arena's marks at its start and end */
    size_t nchunks;         /* the arena's chunks at the end of the capture */
    void *bases[ARENA_MAX_CHUNKS];
    int precision;
    const void *calib;
    uint64_t gen;           /* cu_impl.graph_gen when recorded */
    avo_tensor out;         /* the stretch's result */
    cudaGraphExec_t exec;
    int used;
} cu_graph;

typedef struct cu_impl {
    int device, n_sm;
    int coop;       /* cooperative launches (grid barriers) supported */
    int smem_optin; /* shared memory a block may ask for */
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

    /* INT8 mode (cuda_int8.cu): the calibration's scales (borrowed), linears run INT8 and linears of
     * INT8 mode that ran FP16; int8_ok 0 until the first INT8 GEMM, -1 once cuBLAS refused one */
    const avo_calib_table *calib;
    int64_t gemm_int8, int8_skipped;
    int int8_ok;
    /* benchmark switches (avo_backend_cuda_set_switch), 1 = off: conv1d_fused as separate passes */
    int no_fuse;

    int cc_major;     /* compute capability: the mma.sync convolution needs 8 or more */
    int cc_minor;
    char gpu_name[256];
    int conv_mma;     /* FP16 convolutions by the implicit-GEMM kernel (AVO_CUDA_CONV_MMA=0 turns it off) */
    int conv_mma_smem; /* dynamic shared memory the kernel was allowed (0: not yet asked) */
    int no_direct2d;        /* 3x3 conv2d through im2col + GEMM only */
    int gru_cluster;    /* -1 once a cluster launch of the GRU kernel failed (cuda_gru_cluster.cu) */
    int no_gru_cluster; /* the cooperative GRU kernel */
    int no_flash_rel;   /* windowed (relative-position) attention by the GEMM path */
    /* CUDA Graphs (cuda_graph.cu): graphs_off by avo_backend_cuda_set_graphs; graph_gen grows whenever
     * memory a graph may read could change (weight copies dropped, blocks freed); capturing: the entry
     * being captured or -1; depth: stretches begun and not ended (inner ones run plainly) */
    cu_graph graphs[CU_GRAPHS];
    int graphs_off, capturing, graph_depth, graph_next;
    uint64_t graph_gen;
    int64_t graph_launches, graph_captures;

    /* profiling mode: every op between two events, collected until avo_backend_cuda_profile_json */
    int prof;
    cu_prof_rec *prof_recs;
    size_t n_prof, cap_prof;

    /* An error of a call that cannot return one (copy_in/copy_out): every later op reports it. */
    avo_status sticky;
    char sticky_msg[256];
} cu_impl;

static inline cu_impl *cu_of(const avo_backend *be) { return (cu_impl *)be->impl; }
/* FP16 and INT8 mode: the weight GEMMs that do not run INT8 take half operands. */
static inline bool cu_half_mode(const cu_impl *cu) { return cu->precision != AVO_CUDA_FP32; }

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

/* ---- row kernels ------------------------------------------------------------------------------ */

/* Kernels over the rows of a [rows, cols] layout take rows on y and columns on x (both strided past
 * the grid), so no thread divides 64-bit indices in its inner loop. Short rows get narrow blocks
 * that hold several rows, so that no thread idles: launch as k<<<CU_ROWS(cu, rows, cols), 0, s>>>. */
#define CU_ROW_THREADS 256
static inline dim3 cu_rows_block(int64_t cols) {
    int bx = cols >= CU_ROW_THREADS ? CU_ROW_THREADS : (int)((cols + 31) / 32 * 32);
    if (bx < 32) bx = 32;
    return dim3((unsigned)bx, (unsigned)(CU_ROW_THREADS / bx));
}
static inline dim3 cu_rows_grid(const cu_impl *cu, int64_t rows, int64_t cols) {
    dim3 b = cu_rows_block(cols);
    int64_t gx = (cols + b.x - 1) / b.x, gy = (rows + b.y - 1) / b.y;
    int64_t cap = (int64_t)(cu->n_sm > 0 ? cu->n_sm : 80) * 16;
    if (gy > 65535) gy = 65535;
    if (gx * gy > cap) gx = cap / (gy > 0 ? gy : 1);
    return dim3((unsigned)(gx < 1 ? 1 : gx), (unsigned)(gy < 1 ? 1 : gy));
}
#define CU_ROWS(cu, rows, cols) cu_rows_grid(cu, rows, cols), cu_rows_block(cols)
#define ROW_LOOP(r, rows) \
    for (int64_t r = blockIdx.y * (int64_t)blockDim.y + threadIdx.y; r < (rows); r += (int64_t)gridDim.y * blockDim.y)
#define COL_LOOP(i, n) \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* ---- kernel launchers (cuda_kernels.cu); all on cu->stream ------------------------------------ */

void cu_launch_to_half(cu_impl *cu, const float *x, __half *y, int64_t n);
/* y[r, c] = bias[c] (bias along columns, as a linear's output rows) or bias[r] (along rows). */
void cu_launch_bias_cols(cu_impl *cu, float *y, int64_t rows, int64_t cols, const float *bias);
void cu_launch_bias_rows(cu_impl *cu, float *y, int64_t rows, int64_t cols, int64_t ld, const float *bias);
/* cols[g][c*k + kk][i] = x[g*cig + c, (i0+i)*s + kk*d - pad] (0 outside), i < n. */
/* act: x goes through leaky_relu(x, slope) on its way (the fused convolution's input activation). */
void cu_launch_im2col(cu_impl *cu, const float *x, int64_t groups, int64_t cig, int64_t t, int64_t k, int64_t s,
                      int64_t d, int64_t pad, int64_t i0, int64_t n, float *cols, bool act = false, float slope = 0.0f);
void cu_launch_im2col_half(cu_impl *cu, const float *x, int64_t groups, int64_t cig, int64_t t, int64_t k, int64_t s,
                           int64_t d, int64_t pad, int64_t i0, int64_t n, __half *cols, bool act = false,
                           float slope = 0.0f);
/* y[r, c] = (bias ? bias[r] : 0) + res[r, c] (rows of cols values, contiguous). */
void cu_launch_bias_res_rows(cu_impl *cu, float *y, int64_t rows, int64_t cols, const float *bias, const float *res);
/* y = leaky_relu(x, slope), n values. */
void cu_launch_leaky(cu_impl *cu, const float *x, float *y, int64_t n, float slope);
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
/* y = conv1d(leaky_relu?(x), w) + b + residual with the activation applied while the input is staged
 * (mma kernel, im2col) and bias and residual in the epilogue / the GEMM's C (engine_internal.h). */
avo_status cu_conv1d_fused(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                           const avo_conv1d_params *p, const avo_conv1d_fuse *f, avo_tensor *y, avo_error *err);
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
/* The same in the CU_HALF_TAPS layout of a conv1d weight with groups groups. */
const __half *cu_half_weight_taps(cu_impl *cu, const avo_tensor *w, int64_t groups);
/* A half copy of n activations in arena scratch. */
avo_status cu_to_half_scratch(cu_impl *cu, avo_arena *a, const float *x, int64_t n, __half **out, avo_error *err);
/* Adds a device copy to the weight cache (h may be NULL: an INT8 entry without a scale); false when
 * the table cannot grow. */
bool cu_weight_cache_add(cu_impl *cu, const avo_tensor *w, int layout, void *h, float x_scale);
/* The cache entry of w in layout, or NULL. */
const cu_half_weight *cu_weight_cache_find(const cu_impl *cu, const avo_tensor *w, int layout);

/* cuda_int8.cu: Y[rows, out] = X W^T + bias as an INT8 GEMM when INT8 mode has a scale for w (see
 * avo_backend_cuda_set_calibration); *ran false (the caller runs FP16; counted as skipped) otherwise. */
avo_status cu_linear_int8(cu_impl *cu, avo_arena *a, const float *X, int64_t rows, const avo_tensor *w,
                          const float *bias, float *Y, bool *ran, avo_error *err);
/* The same for a 1x1 convolution (groups 1, stride 1, no padding): x [in, t], w [out, in, 1], Y [out, t]. */
avo_status cu_conv1x1_int8(cu_impl *cu, avo_arena *a, const float *X, int64_t t, const avo_tensor *w, const float *bias,
                           float *Y, bool *ran, avo_error *err);
/* FP16 1x1 convolution (groups 1) through frames-major half operands when t is not a multiple of 8
 * (cuBLAS's half kernels are slow on unaligned rows); wh: w's half copy. leaky ReLU on the input and
 * a residual as conv1d_fused. *ran false (nothing queued) for shapes it does not take. */
avo_status cu_conv1x1_half_t(cu_impl *cu, avo_arena *a, const float *X, int64_t t, const avo_tensor *w,
                             const __half *wh, const float *bias, bool act, float slope, const float *res, float *Y,
                             bool *ran, avo_error *err);

/* cuda_attention.cu: rel_attention as one fused flash-style kernel on half operands with FP32
 * accumulation and softmax: q, k, v, o [heads * kc, t]; ek, ev [ek_heads (1 or heads), 2 window + 1,
 * kc] (unused for window 0). *ran false (nothing queued) for shapes or devices it does not take (kc
 * other than 64 or 96, window over 11, below sm_80; windowed with AVO_CUDA_SW_FLASH_REL off). */
avo_status cu_attention_half(cu_impl *cu, avo_arena *a, const float *q, const float *k, const float *v, float *o,
                             int64_t heads, int64_t kc, int64_t t, float scale, const float *ek, const float *ev,
                             int64_t ek_heads, int64_t ev_heads, int window, bool *ran, avo_error *err);

/* cuda_graph.cu: forgets every graph (and bumps graph_gen). */
void cu_graphs_forget(cu_impl *cu);

/* cuda_gru_cluster.cu: the BiGRU recurrence (H 256, sm_90) as one 8-block cluster per direction;
 * false (nothing queued) where it does not apply, the caller then runs the other kernels. */
bool cu_gru_cluster(cu_impl *cu, const float *gx, const float *whh0, const float *whh1, const float *bhh0,
                    const float *bhh1, int64_t t, int64_t h, float *out);

/* cuda_ops2d.cu: fills the 2-D entries of the table. */
void cu_ops2d_register(avo_backend_ops *o);

/* cuda_conv_mma.cu: conv1d in FP16 by an implicit GEMM on the tensor cores (mma.sync m16n8k16, FP32
 * accumulation, bias in the epilogue): no column matrix in memory. Returns false (nothing queued)
 * when the shape or the device does not suit it; the caller then takes the im2col path. */
bool cu_conv1d_mma(cu_impl *cu, const float *x, const avo_tensor *w, const float *bias, float *y, int64_t cin,
                   int64_t t, int64_t cout, int64_t k, int64_t tout, int64_t g, int64_t s, int64_t d, int64_t pad,
                   bool act = false, float slope = 0.0f, const float *res = NULL);
/* W [g*cog, cig, k] -> [g][k][cog][cig] in half. */
void cu_launch_repack_taps(cu_impl *cu, const float *w, __half *wt, int64_t g, int64_t cog, int64_t cig, int64_t k);

/* cuda_profile.cu: the profiling table's wrappers (they call the plain table of the precision). */
void cu_profile_register(avo_backend_ops *o);
void cu_profile_free(cu_impl *cu);
const avo_backend_ops *cu_plain_ops(int precision);
/* The back end's state if be is a CUDA back end, else NULL. */
cu_impl *cu_checked(const avo_backend *be);

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
 * whh [3H, H] per direction, bhh NULL or [3H]; hbuf scratch of 4H floats; out [T, 2H]. */
void cu_launch_gru(cu_impl *cu, const float *gx, const float *whh0, const float *whh1, const float *bhh0,
                   const float *bhh1, int64_t t, int64_t h, float *hbuf, float *out);

#endif
