/* Engine internals: the back-end function table and the arena layout. The avo_op_* wrappers in
 * engine.c check shapes and allocate results, so a back end's functions get valid, allocated
 * tensors and only compute. */
#ifndef AVO_ENGINE_INTERNAL_H
#define AVO_ENGINE_INTERNAL_H

#include "autovoice/engine.h"

typedef struct avo_backend_ops {
    const char *name;
    bool host_memory;
    void *(*mem_alloc)(avo_backend *be, size_t bytes); /* 64-byte aligned, NULL on failure */
    void (*mem_free)(avo_backend *be, void *p);
    void (*copy_in)(avo_backend *be, void *dst, const float *src, size_t count);
    void (*copy_out)(avo_backend *be, float *dst, const void *src, size_t count);
    void (*destroy)(avo_backend *be);

    /* Scratch comes from the arena a; a function may leave its scratch there (the wrapper rewinds). */
    avo_status (*linear)(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                         avo_tensor *y, avo_error *err);
    avo_status (*conv1d)(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                         const avo_conv1d_params *p, avo_tensor *y, avo_error *err);
    avo_status (*conv_transpose1d)(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                                   const avo_tensor *b, const avo_conv_transpose1d_params *p, avo_tensor *y,
                                   avo_error *err);
    avo_status (*layer_norm)(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *gamma,
                             const avo_tensor *beta, float eps, avo_tensor *y, avo_error *err);
    avo_status (*group_norm)(avo_backend *be, avo_arena *a, const avo_tensor *x, int groups, const avo_tensor *gamma,
                             const avo_tensor *beta, float eps, avo_tensor *y, avo_error *err);
    avo_status (*act)(avo_backend *be, const avo_tensor *x, avo_act act, float alpha, avo_tensor *y, avo_error *err);
    /* op 0 add, 1 mul; y has x's shape or x's leading dimension (broadcast over the rest) */
    avo_status (*binary)(avo_backend *be, int op, const avo_tensor *x, const avo_tensor *y, avo_tensor *out,
                         avo_error *err);
    avo_status (*rel_attention)(avo_backend *be, avo_arena *a, const avo_tensor *q, const avo_tensor *k,
                                const avo_tensor *v, const avo_tensor *ek, const avo_tensor *ev, int heads, int window,
                                avo_tensor *out, avo_error *err);
    avo_status (*embedding)(avo_backend *be, const avo_tensor *table, const avo_tensor *ids, avo_tensor *out,
                            avo_error *err);
    avo_status (*upsample)(avo_backend *be, const avo_tensor *x, avo_upsample mode, avo_tensor *out, avo_error *err);
    avo_status (*pool1d)(avo_backend *be, const avo_tensor *x, avo_pool kind, int kernel, int stride, int padding,
                         avo_tensor *out, avo_error *err);
    avo_status (*transpose)(avo_backend *be, const avo_tensor *x, avo_tensor *out, avo_error *err);
    avo_status (*copy)(avo_backend *be, const avo_tensor *x, avo_tensor *out, avo_error *err);
    avo_status (*bigru)(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_gru_weights *w, avo_tensor *out,
                        avo_error *err);

    /* 2-D operators on [C, H, W] tensors. The wrappers have checked shapes, filled the defaults of p
     * (strides and dilations >= 1, groups >= 1, paddings >= 0) and allocated y; a back end may leave
     * an entry NULL, and the op then fails with AVO_ERR_UNSUPPORTED.
     * conv2d: y = relu?(conv(x, w) + b) + residual; b and residual may be NULL, residual has y's shape
     * and never overlaps y or x. conv_transpose2d: y = relu?(convT(x, w) + b), w [Cin, Cout, KH, KW].
     * pool2d: kind max or avg (count_include_pad). transpose01: [A, B, C] -> [B, A, C]. */
    avo_status (*conv2d)(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                         const avo_conv2d_params *p, const avo_tensor *residual, avo_tensor *y, avo_error *err);
    avo_status (*conv_transpose2d)(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                                   const avo_tensor *b, const avo_conv_transpose2d_params *p, avo_tensor *y,
                                   avo_error *err);
    avo_status (*pool2d)(avo_backend *be, const avo_tensor *x, avo_pool kind, const avo_pool2d_params *p, avo_tensor *y,
                         avo_error *err);
    avo_status (*transpose01)(avo_backend *be, const avo_tensor *x, avo_tensor *y, avo_error *err);

    /* y = conv1d(leaky_relu?(x, f->slope), w) + b + f->residual (see avo_op_conv1d_fused). The wrapper
     * has checked shapes, filled p's defaults, allocated y, and made sure y overlaps neither x nor the
     * residual; f is never NULL. NULL: the wrapper composes act + conv1d + add. */
    avo_status (*conv1d_fused)(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                               const avo_tensor *b, const avo_conv1d_params *p, const avo_conv1d_fuse *f,
                               avo_tensor *y, avo_error *err);
} avo_backend_ops;

struct avo_backend {
    const avo_backend_ops *ops;
    int n_threads;
    void *impl;
    /* avo_backend_set_gemm_observer: NULL when none (the op wrappers then skip it) */
    avo_gemm_observer observer;
    void *observer_user;
    int64_t observer_seq;
};

#define ARENA_MAX_CHUNKS 48
#define ARENA_ALIGN 64

typedef struct arena_chunk {
    char *base;
    size_t size;
} arena_chunk;

struct avo_arena {
    avo_backend *be;
    arena_chunk chunks[ARENA_MAX_CHUNKS];
    size_t nchunks;
    size_t borrowed; /* leading chunks taken from a parent arena (avo_arena_create_within): not freed here */
    size_t cur, off; /* current chunk and offset in it */
    size_t used, peak;
};

/* Scratch float array from the arena (uninitialised). */
avo_status engine_scratch(avo_arena *a, int64_t count, float **out, avo_error *err);

/* CPU 2-D operators (cpu_ops2d.c), registered in cpu_backend.c's table. */
avo_status cpu_conv2d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                      const avo_conv2d_params *p, const avo_tensor *residual, avo_tensor *y, avo_error *err);
avo_status cpu_conv_transpose2d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                                const avo_tensor *b, const avo_conv_transpose2d_params *p, avo_tensor *y,
                                avo_error *err);
avo_status cpu_pool2d(avo_backend *be, const avo_tensor *x, avo_pool kind, const avo_pool2d_params *p, avo_tensor *y,
                      avo_error *err);
avo_status cpu_transpose01(avo_backend *be, const avo_tensor *x, avo_tensor *y, avo_error *err);

#endif
