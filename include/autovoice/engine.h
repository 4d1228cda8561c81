/* Neural inference engine: tensors, a per-run arena, and the operators that RVC v2 and
 * so-vits-svc 4.x models are built from, behind a back-end interface (CPU now, CUDA later).
 *
 * Tensors are contiguous row-major arrays of up to 4 dimensions. Activations follow the VITS
 * layout of one utterance: [channels, time] (no batch dimension). Weights keep PyTorch's layouts
 * (nn.Linear [out, in], nn.Conv1d [out, in/groups, k], nn.ConvTranspose1d [in, out/groups, k]) so
 * they can be read from a checkpoint with avo_ckpt_tensor_read_f32 unchanged.
 *
 * Memory: every tensor made during a run comes from an avo_arena, a bump allocator owned by the
 * caller and reset between runs. The arena keeps its largest size across resets, so after the first
 * run nothing is allocated from the system in the hot path. Arena memory belongs to a back end
 * (host memory for the CPU one); tensors do not own their data.
 *
 * Operators: each avo_op_* checks shapes (the same for every back end), allocates its result from
 * the arena when out->data is NULL (otherwise out must already have the result's shape; elementwise
 * ops may then write in place, out == x), and dispatches to the back end's function table.
 * A back end is not thread-safe: use one per thread, or serialise calls; it threads internally.
 *
 * CPU threads: GEMMs are threaded by OpenBLAS (its own pthreads), everything else by OpenMP. Idle
 * OpenMP threads spin after each parallel region and take the cores OpenBLAS's threads need: with
 * 16 threads the GEMM-based ops ran 10-30x slower. Processes that use the CPU back end should run
 * with OMP_WAIT_POLICY=passive (it is read when the process starts, so set it before exec). */
#ifndef AUTOVOICE_ENGINE_H
#define AUTOVOICE_ENGINE_H

#include "autovoice/checkpoint.h" /* avo_dtype */
#include "autovoice/common.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AVO_TENSOR_MAX_DIMS 4

/* dtype is one of avo_dtype; the operators take AVO_DTYPE_F32 only for now. AVO_DTYPE_I8 uses
 * scale (value = scale * int8), AVO_DTYPE_I32 carries indices, AVO_DTYPE_BOOL masks. */
typedef struct avo_tensor {
    avo_dtype dtype;
    int ndim;
    int64_t shape[AVO_TENSOR_MAX_DIMS];
    float scale; /* AVO_DTYPE_I8 only */
    void *data;  /* arena (or caller) memory of the back end that made it */
} avo_tensor;

int64_t avo_tensor_numel(const avo_tensor *t);
static inline float *avo_tensor_f32(const avo_tensor *t) { return (float *)t->data; }

/* A tensor header over caller memory (shape[0..ndim-1]); nothing is copied. */
avo_tensor avo_tensor_view(avo_dtype dtype, int ndim, const int64_t *shape, void *data);
/* Shorthands for f32 views of 1 and 2 dims. */
avo_tensor avo_tensor_view1(float *data, int64_t n0);
avo_tensor avo_tensor_view2(float *data, int64_t n0, int64_t n1);

/* Rows [start, start+count) of dimension 0 as a view (same memory): channel slices of [C, T]
 * tensors, and concatenation without copies by giving row views of one tensor as op outputs. */
avo_tensor avo_tensor_rows(const avo_tensor *t, int64_t start, int64_t count);
/* The same data with another shape of the same number of elements. */
avo_status avo_tensor_reshape(const avo_tensor *t, int ndim, const int64_t *shape, avo_tensor *out, avo_error *err);

/* ---- back end ------------------------------------------------------------------------------- */

typedef struct avo_backend avo_backend;
typedef struct avo_arena avo_arena;

/* The CPU back end (OpenBLAS + OpenMP). n_threads <= 0 means all cores. */
avo_status avo_backend_cpu_create(int n_threads, avo_backend **out, avo_error *err);
/* The CUDA back end, built when CMake finds nvcc (AVO_HAVE_CUDA). device < 0 means device 0. Without
 * CUDA in the build, or without a usable GPU, it fails with a clear error and the caller stays on CPU. */
avo_status avo_backend_cuda_create(int device, avo_backend **out, avo_error *err);
/* Whether this build has the CUDA back end compiled in (a GPU may still be absent at run time). */
bool avo_backend_cuda_built(void);
/* Precision of the CUDA back end's weight GEMMs. AVO_CUDA_FP16: linear, conv1d, conv_transpose1d,
 * conv2d, conv_transpose2d and the GRU's input projection multiply half copies of weights and inputs
 * with FP32 accumulation and FP32 results (about 1e-3 relative error; inputs beyond +-65504
 * overflow); every other op, and all activations between ops, stay FP32. A weight's half copy is
 * made on its first use and dropped when the back end writes into the weight's memory.
 * avo_backend_name is "cuda" or "cuda-fp16" (depthwise convolutions have no GEMM and stay FP32). */
typedef enum avo_cuda_precision { AVO_CUDA_FP32 = 0, AVO_CUDA_FP16 = 1, AVO_CUDA_INT8 = 2 } avo_cuda_precision;
avo_status avo_backend_cuda_set_precision(avo_backend *be, avo_cuda_precision precision, avo_error *err);
/* GEMM calls run so far by operand precision: what really ran, whatever the mode says. */
avo_status avo_backend_cuda_gemm_counts(const avo_backend *be, int64_t *fp32, int64_t *fp16, avo_error *err);
/* AVO_CUDA_INT8 is FP16 mode in which avo_op_linear and the 1x1 avo_op_conv1d (groups 1, stride 1, no
 * padding: HuBERT's projections) run as INT8 x INT8 -> INT32 tensor-core GEMMs wherever the calibration
 * table (calibrate.h) has a scale for the op's tensor name: the input is quantised with that
 * per-tensor scale, the weight per output channel (max|w| / 127), by the quantiser of calibrate.h, and
 * the result is acc * x_scale * w_scale[o] + bias[o] in FP32, so the CPU simulation (avo_calib_sim)
 * predicts it up to the order of float additions. Those ops without a scale, or whose in / out sizes do
 * not meet the INT8 GEMM's alignment (in a multiple of 16, out of 4), and every other op run as in
 * FP16 mode. The INT8 weight copy is made on first use (the weight is read back to name it: one
 * synchronisation) and dropped like a half copy, and whenever a table is set. Setting AVO_CUDA_INT8
 * needs a table first (AVO_ERR_INVALID_ARGUMENT otherwise); avo_backend_name is "cuda-int8". */
typedef struct avo_calib_table avo_calib_table; /* calibrate.h */
/* The scales for INT8 mode (borrowed: t must outlive its use; NULL forgets it and, in INT8 mode,
 * returns the back end to FP16). Every call drops the INT8 weight copies. */
avo_status avo_backend_cuda_set_calibration(avo_backend *be, const avo_calib_table *t, avo_error *err);
/* Linear and 1x1 conv1d calls run as INT8 GEMMs, and such calls made in INT8 mode that ran FP16
 * instead (no scale in the table, sizes the INT8 GEMM does not take, or no INT8 GEMM on this GPU):
 * what really ran. Other ops of INT8 mode show in the FP16 count of avo_backend_cuda_gemm_counts. */
avo_status avo_backend_cuda_int8_counts(const avo_backend *be, int64_t *int8, int64_t *int8_skipped, avo_error *err);
/* Precision of the CPU back end's weight GEMMs. AVO_CPU_BF16: avo_op_linear and conv1d / conv1d_fused
 * (the direct AVX-512 kernel: groups 1) multiply bfloat16 copies of weights and inputs (rounded to
 * nearest even) with FP32 accumulation and FP32 results, about 1e-3..1e-2 relative error; every other
 * op (transposed and 2-D convolutions, attention products, grouped convolutions) stays FP32. Refused
 * with AVO_ERR_UNSUPPORTED on a CPU without AVX512_BF16 (the back end then stays FP32). */
typedef enum avo_cpu_precision { AVO_CPU_FP32 = 0, AVO_CPU_BF16 = 1 } avo_cpu_precision;
avo_status avo_backend_cpu_set_precision(avo_backend *be, avo_cpu_precision precision, avo_error *err);
/* Weight-GEMM calls (linear, convolutions) run so far on the CPU back end by operand precision:
 * what really ran (shapes the BF16 kernel does not take run FP32 and count there). */
avo_status avo_backend_cpu_gemm_counts(const avo_backend *be, int64_t *fp32, int64_t *bf16, avo_error *err);
/* Work split above the op level (the synthesizer's chunks): a CPU back end with be's settings
 * (precision, convolution paths) and n_threads threads, to run on a thread of its own next to other
 * workers. Refused (AVO_ERR_UNSUPPORTED) for back ends other than the CPU's and while be has a GEMM
 * observer (calibration sees every call in order); the caller then keeps to be. */
avo_status avo_backend_cpu_worker(const avo_backend *be, int n_threads, avo_backend **out, avo_error *err);
/* Adds a worker's GEMM counts to be's (what ran is counted where the caller looks), then zeroes them. */
void avo_backend_cpu_worker_merge(avo_backend *be, avo_backend *worker);
/* Threads a back end runs its ops on (1 for the CUDA back end's host side). */
int avo_backend_threads(const avo_backend *be);
/* The GPU a CUDA back end runs on, as engine-cache keys name it: "cuda:<GPU name>:sm_<major><minor>". */
avo_status avo_backend_cuda_device_key(const avo_backend *be, char *buf, size_t cap, avo_error *err);
/* Waits for the queued work (ops are asynchronous on the GPU; copies to the host wait already) and
 * reports a failure of it. For timing and error checks. */
avo_status avo_backend_cuda_sync(avo_backend *be, avo_error *err);
void avo_backend_free(avo_backend *be);
const char *avo_backend_name(const avo_backend *be);
/* Whether tensor data of this back end can be read by the host (true for the CPU back end). */
bool avo_backend_host_memory(const avo_backend *be);

/* ---- observing weight GEMMs (INT8 calibration and its simulation) -----------------------------
 * An observer sees the input activation and the weight of every weight GEMM op (avo_op_linear,
 * avo_op_conv1d, avo_op_conv_transpose1d, avo_op_conv2d, avo_op_conv_transpose2d) after its shapes
 * are checked and before it runs. With no observer set the ops pay one pointer test. */

typedef enum avo_gemm_kind {
    AVO_GEMM_LINEAR = 0,
    AVO_GEMM_CONV1D,
    AVO_GEMM_CONV_TRANSPOSE1D,
    AVO_GEMM_CONV2D,
    AVO_GEMM_CONV_TRANSPOSE2D
} avo_gemm_kind;

typedef struct avo_gemm_event {
    avo_gemm_kind kind;
    const char *op;   /* "linear", "conv1d", "conv_transpose1d", "conv2d", "conv_transpose2d" */
    const char *name; /* "<op>#<seq>", valid during the call */
    int64_t seq;      /* weight GEMMs seen since the observer was set (or the last reset) */
    int groups;       /* of a convolution (1 for linear and the 2-D transposed convolution) */
    /* Input and weight in host memory, read-only: the op's own tensors on a host back end, copies
     * otherwise (made only while an observer is set). Weight layouts are the ops' (see below). */
    avo_tensor x, w;
    /* The weight's own address in the back end's memory (w.data may be a fresh copy each call):
     * the same for every call with that weight while it lives. */
    const void *w_id;
    /* The observer may make the op compute on other values: host arrays with x's / w's element
     * count, which must stay valid until the op returns (its fake INT8 quantisation). Host back
     * ends only: elsewhere a replacement fails the op with AVO_ERR_UNSUPPORTED. */
    const float *x_replace, *w_replace;
} avo_gemm_event;

/* Returns AVO_OK to let the op run; any other status fails the op with err as filled. */
typedef avo_status (*avo_gemm_observer)(void *user, avo_gemm_event *ev, avo_error *err);

/* Sets (fn non-NULL) or clears the back end's one observer and restarts the sequence numbers. */
void avo_backend_set_gemm_observer(avo_backend *be, avo_gemm_observer fn, void *user);
/* Restarts the sequence numbers (at the start of a run, for names that count within it). */
void avo_backend_gemm_observer_reset(avo_backend *be);

/* ---- arena ---------------------------------------------------------------------------------- */

/* initial_bytes is a first guess; the arena grows when a run needs more and keeps the peak size
 * as one block after the next reset. */
avo_status avo_arena_create(avo_backend *be, size_t initial_bytes, avo_arena **out, avo_error *err);
/* An arena for back end be (host memory, like parent's) whose first block is bytes taken from parent,
 * so that a worker reuses memory the parent already holds; it grows with blocks of its own. parent
 * must not be rewound below that block, reset or freed while this arena lives. */
avo_status avo_arena_create_within(avo_arena *parent, avo_backend *be, size_t bytes, avo_arena **out,
                                   avo_error *err);
void avo_arena_free(avo_arena *a);
/* Forgets every tensor made since creation (or the last reset). */
void avo_arena_reset(avo_arena *a);
size_t avo_arena_used(const avo_arena *a); /* bytes handed out since the last reset */
size_t avo_arena_peak(const avo_arena *a); /* largest avo_arena_used seen */
/* Marks and rewinds free temporaries inside a run (a stack discipline). */
typedef struct avo_arena_mark { size_t chunk, offset, used; } avo_arena_mark;
avo_arena_mark avo_arena_get_mark(const avo_arena *a);
void avo_arena_rewind(avo_arena *a, avo_arena_mark m);

/* Raw aligned (64-byte) memory from the arena. */
avo_status avo_arena_alloc(avo_arena *a, size_t bytes, void **out, avo_error *err);
/* A new tensor of the given shape (contents undefined). */
avo_status avo_tensor_new(avo_arena *a, avo_dtype dtype, int ndim, const int64_t *shape, avo_tensor *out,
                          avo_error *err);
/* Copies host floats in / out (works for every back end). */
avo_status avo_tensor_from_host(avo_arena *a, int ndim, const int64_t *shape, const float *src, avo_tensor *out,
                                avo_error *err);
avo_status avo_tensor_to_host(avo_arena *a, const avo_tensor *t, float *dst, int64_t count, avo_error *err);

/* ---- weights (load time) -------------------------------------------------------------------- */

/* torch.nn.utils.weight_norm(dim=0) folding: w[o] = g[o] * v[o] / ||v[o]|| for each of out_ch rows of
 * per_ch values (g has out_ch values, as in weight_g of shape [out, 1, 1]). w may alias v. */
void avo_weight_norm_fold(const float *g, const float *v, int64_t out_ch, int64_t per_ch, float *w);

/* Weights live in an arena that is never reset (one per loaded model), apart from the per-run one.
 * Reads tensor path of the checkpoint (any stored dtype, converted to f32) into a. */
avo_status avo_tensor_load(avo_arena *a, avo_ckpt *ckpt, const char *path, avo_tensor *out, avo_error *err);

/* Loads prefix.weight, or folds prefix.weight_g / prefix.weight_v (torch weight_norm, dim=0) when the
 * module was saved with weight norm, so model code need not know which. */
avo_status avo_tensor_load_weight(avo_arena *a, avo_ckpt *ckpt, const char *prefix, avo_tensor *out, avo_error *err);

/* ---- operators ------------------------------------------------------------------------------ */

typedef enum avo_act {
    AVO_ACT_RELU = 0,
    AVO_ACT_LEAKY_RELU, /* alpha = negative slope */
    AVO_ACT_GELU,       /* exact (erf) form, as F.gelu's default */
    AVO_ACT_TANH,
    AVO_ACT_SIGMOID,
    AVO_ACT_SOFTPLUS /* beta 1, threshold 20, as F.softplus */
} avo_act;

typedef struct avo_conv1d_params {
    int stride, padding, dilation, groups; /* 0 is read as 1 (padding as 0) */
} avo_conv1d_params;

typedef struct avo_conv_transpose1d_params {
    int stride, padding, output_padding, groups, dilation; /* 0 is read as 1 (paddings as 0) */
} avo_conv_transpose1d_params;

typedef enum avo_pool { AVO_POOL_MAX = 0, AVO_POOL_AVG } avo_pool;
typedef enum avo_upsample { AVO_UPSAMPLE_NEAREST = 0, AVO_UPSAMPLE_LINEAR } avo_upsample;

/* x [..., in] * w[out, in]^T + b[out] (b may be NULL) -> [..., out]. */
avo_status avo_op_linear(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                         avo_tensor *out, avo_error *err);

/* x [Cin, T], w [Cout, Cin/groups, K], b [Cout] or NULL -> [Cout, Tout] as nn.Conv1d. */
avo_status avo_op_conv1d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                         const avo_conv1d_params *p, avo_tensor *out, avo_error *err);

/* conv1d with the passes around it fused: out = conv1d(leaky_relu?(x, slope), w) + b + residual, the
 * pre-activated convolution of a HiFi-GAN resblock in one pass over the data. Shapes as avo_op_conv1d;
 * f NULL is a plain conv1d. residual has the result's shape, may be NULL, and may not share memory
 * with out; out may not share memory with x. A GEMM observer sees the activated input. Back ends
 * without a fused kernel run the activation, the convolution and the add as separate ops. */
typedef struct avo_conv1d_fuse {
    bool input_leaky_relu;      /* y = conv(leaky_relu(x, slope)) ... */
    float slope;
    const avo_tensor *residual; /* ... + b + residual; residual has y's shape, may be NULL, may not alias y */
} avo_conv1d_fuse;
avo_status avo_op_conv1d_fused(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                               const avo_tensor *b, const avo_conv1d_params *p, const avo_conv1d_fuse *f,
                               avo_tensor *out, avo_error *err);

/* x [Cin, T], w [Cin, Cout/groups, K], b [Cout] or NULL -> [Cout, Tout] as nn.ConvTranspose1d:
 * Tout = (T-1)*stride - 2*padding + dilation*(K-1) + output_padding + 1. */
avo_status avo_op_conv_transpose1d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                                   const avo_tensor *b, const avo_conv_transpose1d_params *p, avo_tensor *out,
                                   avo_error *err);

/* VITS LayerNorm: x [C, T] normalised over C at each time step, then gamma[C], beta[C]. */
avo_status avo_op_layer_norm(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *gamma,
                             const avo_tensor *beta, float eps, avo_tensor *out, avo_error *err);

/* nn.GroupNorm on x [C, T]: statistics over (C/groups) x T; gamma/beta [C] (both NULL: no affine). */
avo_status avo_op_group_norm(avo_backend *be, avo_arena *a, const avo_tensor *x, int groups, const avo_tensor *gamma,
                             const avo_tensor *beta, float eps, avo_tensor *out, avo_error *err);

/* Elementwise activation; alpha is the leaky ReLU slope (ignored otherwise). */
avo_status avo_op_act(avo_backend *be, avo_arena *a, const avo_tensor *x, avo_act act, float alpha, avo_tensor *out,
                      avo_error *err);

/* x + y and x * y. y has x's shape, or is [C] / [C, 1] against x [C, T] (broadcast over time). */
avo_status avo_op_add(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *y, avo_tensor *out,
                      avo_error *err);
avo_status avo_op_mul(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *y, avo_tensor *out,
                      avo_error *err);

/* VITS relative-position multi-head self-attention core (attentions.MultiHeadAttention.attention
 * without the 1x1 projections, dropout or mask: every frame is valid). q, k, v [C, T] after
 * conv_q/conv_k/conv_v; emb_rel_k / emb_rel_v [1 or heads, 2*window+1, C/heads]; window 0 means
 * plain attention (embeddings may then be NULL). Result [C, T], to be passed to conv_o. */
avo_status avo_op_rel_attention(avo_backend *be, avo_arena *a, const avo_tensor *q, const avo_tensor *k,
                                const avo_tensor *v, const avo_tensor *emb_rel_k, const avo_tensor *emb_rel_v,
                                int heads, int window, avo_tensor *out, avo_error *err);

/* table [N, D], ids (AVO_DTYPE_I32, n values in [0, N)) -> [n, D]. */
avo_status avo_op_embedding(avo_backend *be, avo_arena *a, const avo_tensor *table, const avo_tensor *ids,
                            avo_tensor *out, avo_error *err);

/* x [C, T] -> [C, t_out] as F.interpolate(size=t_out, mode="nearest" | "linear", align_corners=False). */
avo_status avo_op_upsample(avo_backend *be, avo_arena *a, const avo_tensor *x, int64_t t_out, avo_upsample mode,
                           avo_tensor *out, avo_error *err);

/* x [C, T] -> [C, (T + 2*padding - kernel)/stride + 1] as nn.MaxPool1d / nn.AvgPool1d
 * (avg counts padding, as count_include_pad=True). stride 0 means stride = kernel. */
avo_status avo_op_pool1d(avo_backend *be, avo_arena *a, const avo_tensor *x, avo_pool kind, int kernel, int stride,
                         int padding, avo_tensor *out, avo_error *err);

/* x [A, B] -> [B, A] (between the [T, C] of linear/GRU layers and the [C, T] of convolutions). */
avo_status avo_op_transpose(avo_backend *be, avo_arena *a, const avo_tensor *x, avo_tensor *out, avo_error *err);
/* out = x (any shape; out may be a row view of a larger tensor). */
avo_status avo_op_copy(avo_backend *be, avo_arena *a, const avo_tensor *x, avo_tensor *out, avo_error *err);

/* Bidirectional one-layer GRU as nn.GRU(bidirectional=True, batch_first=True) for one sequence:
 * x [T, In] -> [T, 2H] (forward then backward half). Weights per direction d (0 forward, 1 reverse):
 * w_ih[d] [3H, In], w_hh[d] [3H, H], b_ih[d], b_hh[d] [3H] (NULL biases are zero), gate order r, z, n.
 * Initial state is zero. */
typedef struct avo_gru_weights {
    const avo_tensor *w_ih[2], *w_hh[2], *b_ih[2], *b_hh[2];
} avo_gru_weights;
avo_status avo_op_bigru(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_gru_weights *w, avo_tensor *out,
                        avo_error *err);

/* ---- 2-D operators (tensors [C, H, W]) -------------------------------------------------------
 * Image-like activations of one item: channels, height, width (RMVPE: [channels, frames, mel bins]).
 * Weights keep PyTorch's layouts: nn.Conv2d [out, in/groups, KH, KW], nn.ConvTranspose2d
 * [in, out, KH, KW]. Pairs are (height, width). Concatenation along channels needs no op: give row
 * views (avo_tensor_rows) of one [C1 + C2, H, W] tensor as the outputs of the two producers. */

typedef struct avo_conv2d_params {
    int stride[2], padding[2], dilation[2]; /* 0 is read as 1 (padding as 0) */
    int groups;                             /* 0 is read as 1 */
    bool relu;                              /* ReLU after the bias, before the residual */
} avo_conv2d_params;

typedef struct avo_conv_transpose2d_params {
    int stride[2], padding[2], output_padding[2]; /* stride 0 is read as 1; dilation 1, groups 1 */
    bool relu;                                    /* ReLU after the bias */
} avo_conv_transpose2d_params;

typedef struct avo_pool2d_params {
    int kernel[2], stride[2], padding[2]; /* stride 0 means stride = kernel */
} avo_pool2d_params;

/* out = relu?(conv2d(x, w) + b) + residual, as nn.Conv2d (zero padding) followed by nn.ReLU when
 * p->relu, then the residual added: the end of a ResNet block in one pass (BatchNorm in eval mode is
 * folded into w and b by the model at load time). x [Cin, H, W], w [Cout, Cin/groups, KH, KW],
 * b [Cout] or NULL, residual [Cout, Ho, Wo] or NULL, out [Cout, Ho, Wo] with
 * Ho = (H + 2*padding - dilation*(KH-1) - 1) / stride + 1 (Wo likewise). residual may not share
 * memory with out (or x). */
avo_status avo_op_conv2d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                         const avo_conv2d_params *p, const avo_tensor *residual, avo_tensor *out, avo_error *err);

/* out = relu?(conv_transpose2d(x, w) + b) as nn.ConvTranspose2d (dilation 1, groups 1): x [Cin, H, W],
 * w [Cin, Cout, KH, KW], b [Cout] or NULL -> [Cout, Ho, Wo] with
 * Ho = (H-1)*stride - 2*padding + KH + output_padding (Wo likewise); output_padding < stride. */
avo_status avo_op_conv_transpose2d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                                   const avo_tensor *b, const avo_conv_transpose2d_params *p, avo_tensor *out,
                                   avo_error *err);

/* x [C, H, W] -> [C, Ho, Wo] as nn.MaxPool2d / nn.AvgPool2d (floor mode; avg counts padding, as
 * count_include_pad=True), Ho = (H + 2*padding - kernel) / stride + 1; padding at most kernel / 2. */
avo_status avo_op_pool2d(avo_backend *be, avo_arena *a, const avo_tensor *x, avo_pool kind, const avo_pool2d_params *p,
                         avo_tensor *out, avo_error *err);

/* x [A, B, C] -> [B, A, C] (torch's x.transpose(0, 1).contiguous()): [channels, frames, bins] to
 * [frames, channels, bins], which reshapes to the [frames, channels * bins] rows of a linear or GRU. */
avo_status avo_op_transpose01(avo_backend *be, avo_arena *a, const avo_tensor *x, avo_tensor *out, avo_error *err);

#ifdef __cplusplus
}
#endif
#endif
