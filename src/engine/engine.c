/* Engine front end: tensors, the arena, and the avo_op_* wrappers that check shapes, allocate
 * results and dispatch to the back end. Shape rules live here so every back end shares them. */
#include "engine/engine_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t avo_tensor_numel(const avo_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

avo_tensor avo_tensor_view(avo_dtype dtype, int ndim, const int64_t *shape, void *data) {
    avo_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dtype;
    t.ndim = ndim < 0 ? 0 : ndim > AVO_TENSOR_MAX_DIMS ? AVO_TENSOR_MAX_DIMS : ndim;
    for (int i = 0; i < t.ndim; i++) t.shape[i] = shape[i];
    t.scale = 1.0f;
    t.data = data;
    return t;
}

avo_tensor avo_tensor_view1(float *data, int64_t n0) { return avo_tensor_view(AVO_DTYPE_F32, 1, &n0, data); }

avo_tensor avo_tensor_view2(float *data, int64_t n0, int64_t n1) {
    int64_t s[2] = {n0, n1};
    return avo_tensor_view(AVO_DTYPE_F32, 2, s, data);
}

avo_tensor avo_tensor_rows(const avo_tensor *t, int64_t start, int64_t count) {
    avo_tensor v = *t;
    int64_t inner = t->ndim > 0 && t->shape[0] > 0 ? avo_tensor_numel(t) / t->shape[0] : 0;
    if (t->ndim < 1 || start < 0 || count < 0 || start + count > t->shape[0]) {
        v.data = NULL; /* refused by every op as a missing tensor */
        return v;
    }
    v.shape[0] = count;
    v.data = (char *)t->data + (size_t)(start * inner) * avo_dtype_size(t->dtype);
    return v;
}

avo_status avo_tensor_reshape(const avo_tensor *t, int ndim, const int64_t *shape, avo_tensor *out, avo_error *err) {
    avo_tensor v = avo_tensor_view(t->dtype, ndim, shape, t->data);
    if (ndim < 0 || ndim > AVO_TENSOR_MAX_DIMS || avo_tensor_numel(&v) != avo_tensor_numel(t))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "reshape: %lld values do not fit the new shape",
                             (long long)avo_tensor_numel(t));
    v.scale = t->scale;
    *out = v;
    return AVO_OK;
}

/* ---- back end ------------------------------------------------------------------------------- */

void avo_backend_free(avo_backend *be) {
    if (be && be->ops->destroy) be->ops->destroy(be);
}

int avo_backend_threads(const avo_backend *be) { return be && be->n_threads > 0 ? be->n_threads : 1; }

const char *avo_backend_name(const avo_backend *be) { return be ? be->ops->name : "none"; }

bool avo_backend_host_memory(const avo_backend *be) { return be && be->ops->host_memory; }

/* ---- arena ---------------------------------------------------------------------------------- */

static size_t align_up(size_t n) { return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1); }

static bool arena_add_chunk(avo_arena *a, size_t size) {
    if (a->nchunks >= ARENA_MAX_CHUNKS) return false;
    void *p = a->be->ops->mem_alloc(a->be, size);
    if (!p) return false;
    a->chunks[a->nchunks].base = p;
    a->chunks[a->nchunks].size = size;
    a->nchunks++;
    return true;
}

avo_status avo_arena_create(avo_backend *be, size_t initial_bytes, avo_arena **out, avo_error *err) {
    *out = NULL;
    if (!be) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "arena: no back end given");
    avo_arena *a = calloc(1, sizeof *a);
    if (!a) return avo_error_set(err, AVO_ERR_NO_MEMORY, "arena: out of memory");
    a->be = be;
    size_t size = align_up(initial_bytes < (1u << 20) ? (1u << 20) : initial_bytes);
    if (!arena_add_chunk(a, size)) {
        free(a);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "arena: cannot allocate %zu MB of %s memory", size >> 20,
                             be->ops->name);
    }
    *out = a;
    return AVO_OK;
}

avo_status avo_arena_create_within(avo_arena *parent, avo_backend *be, size_t bytes, avo_arena **out,
                                   avo_error *err) {
    *out = NULL;
    if (!parent || !be || !avo_backend_host_memory(be) || !avo_backend_host_memory(parent->be))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "arena: a worker arena needs host-memory back ends");
    void *block = NULL;
    avo_status st = avo_arena_alloc(parent, align_up(bytes ? bytes : 1), &block, err);
    if (st) return st;
    avo_arena *a = calloc(1, sizeof *a);
    if (!a) return avo_error_set(err, AVO_ERR_NO_MEMORY, "arena: out of memory");
    a->be = be;
    a->chunks[0].base = block;
    a->chunks[0].size = align_up(bytes ? bytes : 1);
    a->nchunks = 1;
    a->borrowed = 1;
    *out = a;
    return AVO_OK;
}

void avo_arena_free(avo_arena *a) {
    if (!a) return;
    for (size_t i = a->borrowed; i < a->nchunks; i++) a->be->ops->mem_free(a->be, a->chunks[i].base);
    free(a);
}

void avo_arena_reset(avo_arena *a) {
    /* A run that needed several chunks gets one block of its peak size, so the next run of the same
     * size allocates nothing. */
    if (a->nchunks > 1) {
        size_t total = align_up(a->peak + a->peak / 8);
        for (size_t i = a->borrowed; i < a->nchunks; i++) a->be->ops->mem_free(a->be, a->chunks[i].base);
        a->nchunks = 0;
        a->borrowed = 0;
        if (!arena_add_chunk(a, total)) arena_add_chunk(a, 1u << 20); /* next alloc will grow again */
    }
    a->cur = 0;
    a->off = 0;
    a->used = 0;
}

size_t avo_arena_used(const avo_arena *a) { return a->used; }
size_t avo_arena_peak(const avo_arena *a) { return a->peak; }

avo_arena_mark avo_arena_get_mark(const avo_arena *a) {
    avo_arena_mark m = {a->cur, a->off, a->used};
    return m;
}

void avo_arena_rewind(avo_arena *a, avo_arena_mark m) {
    a->cur = m.chunk;
    a->off = m.offset;
    a->used = m.used;
}

avo_status avo_arena_alloc(avo_arena *a, size_t bytes, void **out, avo_error *err) {
    size_t n = align_up(bytes ? bytes : 1);
    while (a->cur < a->nchunks) {
        arena_chunk *c = &a->chunks[a->cur];
        if (c->size - a->off >= n) {
            *out = c->base + a->off;
            a->off += n;
            a->used += n;
            if (a->used > a->peak) a->peak = a->used;
            return AVO_OK;
        }
        if (a->cur + 1 >= a->nchunks) break;
        a->used += c->size - a->off; /* the unused tail counts as used until a rewind */
        a->cur++;
        a->off = 0;
    }
    size_t last = a->nchunks ? a->chunks[a->nchunks - 1].size : 0;
    size_t size = align_up(n > last * 2 ? n : last * 2);
    if (!arena_add_chunk(a, size) && !arena_add_chunk(a, n))
        return avo_error_set(err, AVO_ERR_NO_MEMORY,
                             "arena: cannot grow by %zu MB (%zu MB in use on %s); use shorter input", size >> 20,
                             a->used >> 20, a->be->ops->name);
    if (a->nchunks > 1 && a->cur < a->nchunks - 1) a->used += a->chunks[a->cur].size - a->off;
    a->cur = a->nchunks - 1;
    a->off = n;
    a->used += n;
    if (a->used > a->peak) a->peak = a->used;
    *out = a->chunks[a->cur].base;
    return AVO_OK;
}

avo_status engine_scratch(avo_arena *a, int64_t count, float **out, avo_error *err) {
    void *p = NULL;
    avo_status st = avo_arena_alloc(a, (size_t)(count > 0 ? count : 1) * sizeof(float), &p, err);
    *out = p;
    return st;
}

avo_status avo_tensor_new(avo_arena *a, avo_dtype dtype, int ndim, const int64_t *shape, avo_tensor *out,
                          avo_error *err) {
    if (ndim < 0 || ndim > AVO_TENSOR_MAX_DIMS)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "tensor: %d dimensions (at most %d)", ndim,
                             AVO_TENSOR_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "tensor: negative dimension");
    *out = avo_tensor_view(dtype, ndim, shape, NULL);
    return avo_arena_alloc(a, (size_t)avo_tensor_numel(out) * avo_dtype_size(dtype), &out->data, err);
}

avo_status avo_tensor_from_host(avo_arena *a, int ndim, const int64_t *shape, const float *src, avo_tensor *out,
                                avo_error *err) {
    avo_status st = avo_tensor_new(a, AVO_DTYPE_F32, ndim, shape, out, err);
    if (st) return st;
    a->be->ops->copy_in(a->be, out->data, src, (size_t)avo_tensor_numel(out));
    return AVO_OK;
}

avo_status avo_tensor_to_host(avo_arena *a, const avo_tensor *t, float *dst, int64_t count, avo_error *err) {
    if (t->dtype != AVO_DTYPE_F32 || count != avo_tensor_numel(t))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "tensor_to_host: %lld f32 values asked for a %s tensor of %lld",
                             (long long)count, avo_dtype_name(t->dtype), (long long)avo_tensor_numel(t));
    a->be->ops->copy_out(a->be, dst, t->data, (size_t)count);
    return AVO_OK;
}

/* ---- weights -------------------------------------------------------------------------------- */

void avo_weight_norm_fold(const float *g, const float *v, int64_t out_ch, int64_t per_ch, float *w) {
    for (int64_t o = 0; o < out_ch; o++) {
        const float *vo = v + o * per_ch;
        double ss = 0;
        for (int64_t i = 0; i < per_ch; i++) ss += (double)vo[i] * vo[i];
        /* torch divides by the norm with no epsilon; an all-zero row stays zero here instead of NaN */
        float s = ss > 0 ? (float)(g[o] / sqrt(ss)) : 0.0f;
        float *wo = w + o * per_ch;
        for (int64_t i = 0; i < per_ch; i++) wo[i] = vo[i] * s;
    }
}

/* ---- shape checks --------------------------------------------------------------------------- */

static const char *shape_str(const avo_tensor *t, char *buf, size_t n) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

static avo_status need_f32(const char *op, const char *name, const avo_tensor *t, int ndim, avo_error *err) {
    char b[96];
    if (!t || !t->data)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s: tensor '%s' is missing", op, name);
    if (t->dtype != AVO_DTYPE_F32)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: tensor '%s' is %s; only f32 is supported", op, name,
                             avo_dtype_name(t->dtype));
    if (ndim > 0 && t->ndim != ndim)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s: tensor '%s' has shape %s, expected %d dimensions", op,
                             name, shape_str(t, b, sizeof b), ndim);
    return AVO_OK;
}

static avo_status need_len(const char *op, const char *name, const avo_tensor *t, int64_t n, avo_error *err) {
    if (!t) return AVO_OK;
    avo_status st = need_f32(op, name, t, 0, err);
    if (st) return st;
    if (avo_tensor_numel(t) != n)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s: tensor '%s' has %lld values, expected %lld", op, name,
                             (long long)avo_tensor_numel(t), (long long)n);
    return AVO_OK;
}

/* Allocates out with shape unless the caller gave memory; then its shape must match. */
static avo_status prepare_out(const char *op, avo_arena *a, int ndim, const int64_t *shape, avo_tensor *out,
                              avo_error *err) {
    if (!out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s: no output tensor", op);
    if (!out->data) return avo_tensor_new(a, AVO_DTYPE_F32, ndim, shape, out, err);
    avo_tensor want = avo_tensor_view(AVO_DTYPE_F32, ndim, shape, NULL);
    bool same = out->ndim == ndim && out->dtype == AVO_DTYPE_F32;
    for (int i = 0; same && i < ndim; i++) same = out->shape[i] == shape[i];
    if (!same) {
        char b1[96], b2[96];
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s: output has shape %s, the result is %s", op,
                             shape_str(out, b1, sizeof b1), shape_str(&want, b2, sizeof b2));
    }
    return AVO_OK;
}

#define TRY(expr)                       \
    do {                                \
        avo_status st_ = (expr);        \
        if (st_ != AVO_OK) return st_; \
    } while (0)

static avo_status need_args(const char *op, avo_backend *be, avo_arena *a, avo_error *err) {
    if (!be || !a) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s: back end or arena missing", op);
    if (a->be != be)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s: the arena belongs to another back end", op);
    return AVO_OK;
}

/* Runs a back-end call and gives its scratch back to the arena (the output stays below the mark). */
#define DISPATCH(call)                                     \
    do {                                                   \
        avo_arena_mark m_ = avo_arena_get_mark(a);         \
        avo_status st_ = (call);                           \
        avo_arena_rewind(a, m_);                           \
        return st_;                                        \
    } while (0)

/* ---- GEMM observer --------------------------------------------------------------------------- */

void avo_backend_set_gemm_observer(avo_backend *be, avo_gemm_observer fn, void *user) {
    if (!be) return;
    be->observer = fn;
    be->observer_user = fn ? user : NULL;
    be->observer_seq = 0;
}

void avo_backend_gemm_observer_reset(avo_backend *be) {
    if (be) be->observer_seq = 0;
}

static const char *const gemm_op_names[] = {"linear", "conv1d", "conv_transpose1d", "conv2d", "conv_transpose2d"};

/* Shows the observer an op's input and weight (host copies on a device back end). When it hands
 * back replacements, *x / *w are pointed at xs / ws, views of its arrays with the same shapes. */
static avo_status observe_gemm(avo_backend *be, avo_gemm_kind kind, int groups, const avo_tensor **x,
                               const avo_tensor **w, avo_tensor *xs, avo_tensor *ws, avo_error *err) {
    avo_gemm_event ev;
    memset(&ev, 0, sizeof ev);
    char name[48];
    ev.kind = kind;
    ev.op = gemm_op_names[kind];
    ev.seq = be->observer_seq++;
    snprintf(name, sizeof name, "%s#%lld", ev.op, (long long)ev.seq);
    ev.name = name;
    ev.groups = groups;
    ev.x = **x;
    ev.w = **w;
    ev.w_id = (*w)->data;
    float *hx = NULL, *hw = NULL;
    const bool host = be->ops->host_memory;
    if (!host) {
        size_t nx = (size_t)avo_tensor_numel(*x), nw = (size_t)avo_tensor_numel(*w);
        hx = malloc((nx ? nx : 1) * sizeof(float));
        hw = malloc((nw ? nw : 1) * sizeof(float));
        if (!hx || !hw) {
            free(hx);
            free(hw);
            return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: no host memory for the observer's copies", name);
        }
        be->ops->copy_out(be, hx, (*x)->data, nx);
        be->ops->copy_out(be, hw, (*w)->data, nw);
        ev.x.data = hx;
        ev.w.data = hw;
    }
    avo_status st = be->observer(be->observer_user, &ev, err);
    free(hx);
    free(hw);
    if (st) return st;
    if ((ev.x_replace || ev.w_replace) && !host)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: GEMM operands can be replaced on host back ends only, not '%s'",
                             name, be->ops->name);
    if (ev.x_replace) {
        *xs = **x;
        xs->data = (void *)ev.x_replace;
        *x = xs;
    }
    if (ev.w_replace) {
        *ws = **w;
        ws->data = (void *)ev.w_replace;
        *w = ws;
    }
    return AVO_OK;
}

/* In each weight-GEMM wrapper, after its checks: x and w may be swapped for the observer's arrays. */
#define OBSERVE(kind, groups)                                                  \
    avo_tensor xs_, ws_;                                                       \
    if (be->observer) TRY(observe_gemm(be, kind, groups, &x, &w, &xs_, &ws_, err))

avo_status avo_op_linear(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                         avo_tensor *out, avo_error *err) {
    const char *op = "linear";
    TRY(need_args(op, be, a, err));
    TRY(need_f32(op, "x", x, 0, err));
    TRY(need_f32(op, "weight", w, 2, err));
    if (x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "linear: input's last dimension is not the weight's %lld",
                             (long long)w->shape[1]);
    TRY(need_len(op, "bias", b, w->shape[0], err));
    int64_t shape[AVO_TENSOR_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = w->shape[0];
    TRY(prepare_out(op, a, x->ndim, shape, out, err));
    OBSERVE(AVO_GEMM_LINEAR, 1);
    DISPATCH(be->ops->linear(be, a, x, w, b, out, err));
}

static void conv_defaults(avo_conv1d_params *p) {
    if (p->stride <= 0) p->stride = 1;
    if (p->dilation <= 0) p->dilation = 1;
    if (p->groups <= 0) p->groups = 1;
    if (p->padding < 0) p->padding = 0;
}

/* The checks shared by conv1d and conv1d_fused: p gets the defaults filled, shape the result's. */
static avo_status conv1d_check(const char *op, avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                               const avo_tensor *b, const avo_conv1d_params *params, avo_conv1d_params *p,
                               int64_t shape[2], avo_error *err) {
    TRY(need_args(op, be, a, err));
    TRY(need_f32(op, "x", x, 2, err));
    TRY(need_f32(op, "weight", w, 3, err));
    avo_conv1d_params q = {0, 0, 0, 0};
    if (params) q = *params;
    conv_defaults(&q);
    int64_t cin = x->shape[0], t = x->shape[1], cout = w->shape[0], k = w->shape[2];
    if (cin % q.groups || cout % q.groups || w->shape[1] * q.groups != cin)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "%s: %lld input channels, weight [%lld, %lld, %lld] and groups %d do not fit", op,
                             (long long)cin, (long long)cout, (long long)w->shape[1], (long long)k, q.groups);
    TRY(need_len(op, "bias", b, cout, err));
    int64_t span = (int64_t)q.dilation * (k - 1) + 1;
    int64_t tout = (t + 2 * (int64_t)q.padding - span) / q.stride + 1;
    if (t + 2 * (int64_t)q.padding < span || tout <= 0)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s: input of %lld frames is shorter than the kernel span %lld", op,
                             (long long)t, (long long)span);
    *p = q;
    shape[0] = cout;
    shape[1] = tout;
    return AVO_OK;
}

avo_status avo_op_conv1d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                         const avo_conv1d_params *params, avo_tensor *out, avo_error *err) {
    const char *op = "conv1d";
    avo_conv1d_params p;
    int64_t shape[2];
    TRY(conv1d_check(op, be, a, x, w, b, params, &p, shape, err));
    TRY(prepare_out(op, a, 2, shape, out, err));
    OBSERVE(AVO_GEMM_CONV1D, p.groups);
    DISPATCH(be->ops->conv1d(be, a, x, w, b, &p, out, err));
}

/* Whether the f32 data of two tensors share any bytes (the same back end's memory). */
static bool overlaps(const avo_tensor *s, const avo_tensor *t) {
    const char *a0 = s->data, *a1 = a0 + avo_tensor_numel(s) * 4, *b0 = t->data, *b1 = b0 + avo_tensor_numel(t) * 4;
    return a0 < b1 && b0 < a1;
}

/* The body of avo_op_conv1d_fused after its checks; scratch stays in the arena (the caller rewinds). */
static avo_status conv1d_fused_run(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                                   const avo_tensor *b, const avo_conv1d_params *p, avo_conv1d_fuse f, avo_tensor *out,
                                   avo_error *err) {
    avo_tensor xa;
    /* The observer (INT8 calibration) must see, and may replace, what the GEMM multiplies: the
     * activated input. So with an observer the activation is made as its own pass first. */
    if (be->observer && f.input_leaky_relu) {
        TRY(avo_tensor_new(a, AVO_DTYPE_F32, 2, x->shape, &xa, err));
        TRY(be->ops->act(be, x, AVO_ACT_LEAKY_RELU, f.slope, &xa, err));
        x = &xa;
        f.input_leaky_relu = false;
    }
    OBSERVE(AVO_GEMM_CONV1D, p->groups);
    if (be->ops->conv1d_fused) return be->ops->conv1d_fused(be, a, x, w, b, p, &f, out, err);
    if (f.input_leaky_relu) {
        TRY(avo_tensor_new(a, AVO_DTYPE_F32, 2, x->shape, &xa, err));
        TRY(be->ops->act(be, x, AVO_ACT_LEAKY_RELU, f.slope, &xa, err));
        x = &xa;
    }
    TRY(be->ops->conv1d(be, a, x, w, b, p, out, err));
    if (f.residual) TRY(be->ops->binary(be, 0, out, f.residual, out, err));
    return AVO_OK;
}

avo_status avo_op_conv1d_fused(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                               const avo_tensor *b, const avo_conv1d_params *params, const avo_conv1d_fuse *f,
                               avo_tensor *out, avo_error *err) {
    const char *op = "conv1d_fused";
    avo_conv1d_params p;
    int64_t shape[2];
    TRY(conv1d_check(op, be, a, x, w, b, params, &p, shape, err));
    avo_conv1d_fuse fz = {false, 0.0f, NULL};
    if (f) fz = *f;
    if (fz.residual) {
        TRY(need_f32(op, "residual", fz.residual, 2, err));
        if (fz.residual->shape[0] != shape[0] || fz.residual->shape[1] != shape[1]) {
            char b1[96];
            return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s: residual has shape %s, the result is [%lld, %lld]", op,
                                 shape_str(fz.residual, b1, sizeof b1), (long long)shape[0], (long long)shape[1]);
        }
    }
    TRY(prepare_out(op, a, 2, shape, out, err));
    if (overlaps(out, x) || (fz.residual && overlaps(fz.residual, out)))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s: the output shares memory with x or the residual", op);
    DISPATCH(conv1d_fused_run(be, a, x, w, b, &p, fz, out, err));
}

avo_status avo_op_conv_transpose1d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                                   const avo_tensor *b, const avo_conv_transpose1d_params *params, avo_tensor *out,
                                   avo_error *err) {
    const char *op = "conv_transpose1d";
    TRY(need_args(op, be, a, err));
    TRY(need_f32(op, "x", x, 2, err));
    TRY(need_f32(op, "weight", w, 3, err));
    avo_conv_transpose1d_params p = {0, 0, 0, 0, 0};
    if (params) p = *params;
    if (p.stride <= 0) p.stride = 1;
    if (p.dilation <= 0) p.dilation = 1;
    if (p.groups <= 0) p.groups = 1;
    if (p.padding < 0) p.padding = 0;
    if (p.output_padding < 0) p.output_padding = 0;
    int64_t cin = x->shape[0], t = x->shape[1], k = w->shape[2], cout = w->shape[1] * p.groups;
    if (w->shape[0] != cin || cin % p.groups)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "conv_transpose1d: %lld input channels do not fit weight [%lld, %lld, %lld], groups %d",
                             (long long)cin, (long long)w->shape[0], (long long)w->shape[1], (long long)k, p.groups);
    if (p.output_padding >= p.stride && p.output_padding >= p.dilation)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "conv_transpose1d: output_padding %d must be below stride or dilation",
                             p.output_padding);
    TRY(need_len(op, "bias", b, cout, err));
    int64_t tout = (t - 1) * p.stride - 2 * (int64_t)p.padding + (int64_t)p.dilation * (k - 1) + p.output_padding + 1;
    if (tout <= 0 || t <= 0)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "conv_transpose1d: %lld frames give no output", (long long)t);
    int64_t shape[2] = {cout, tout};
    TRY(prepare_out(op, a, 2, shape, out, err));
    OBSERVE(AVO_GEMM_CONV_TRANSPOSE1D, p.groups);
    DISPATCH(be->ops->conv_transpose1d(be, a, x, w, b, &p, out, err));
}

avo_status avo_op_layer_norm(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *gamma,
                             const avo_tensor *beta, float eps, avo_tensor *out, avo_error *err) {
    const char *op = "layer_norm";
    TRY(need_args(op, be, a, err));
    TRY(need_f32(op, "x", x, 2, err));
    TRY(need_len(op, "gamma", gamma, x->shape[0], err));
    TRY(need_len(op, "beta", beta, x->shape[0], err));
    TRY(prepare_out(op, a, 2, x->shape, out, err));
    DISPATCH(be->ops->layer_norm(be, a, x, gamma, beta, eps, out, err));
}

avo_status avo_op_group_norm(avo_backend *be, avo_arena *a, const avo_tensor *x, int groups, const avo_tensor *gamma,
                             const avo_tensor *beta, float eps, avo_tensor *out, avo_error *err) {
    const char *op = "group_norm";
    TRY(need_args(op, be, a, err));
    TRY(need_f32(op, "x", x, 2, err));
    if (groups <= 0 || x->shape[0] % groups)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "group_norm: %lld channels do not split into %d groups",
                             (long long)x->shape[0], groups);
    TRY(need_len(op, "gamma", gamma, x->shape[0], err));
    TRY(need_len(op, "beta", beta, x->shape[0], err));
    TRY(prepare_out(op, a, 2, x->shape, out, err));
    DISPATCH(be->ops->group_norm(be, a, x, groups, gamma, beta, eps, out, err));
}

avo_status avo_op_act(avo_backend *be, avo_arena *a, const avo_tensor *x, avo_act act, float alpha, avo_tensor *out,
                      avo_error *err) {
    const char *op = "activation";
    TRY(need_args(op, be, a, err));
    TRY(need_f32(op, "x", x, 0, err));
    if ((int)act < 0 || act > AVO_ACT_SOFTPLUS)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "activation: unknown kind %d", (int)act);
    TRY(prepare_out(op, a, x->ndim, x->shape, out, err));
    return be->ops->act(be, x, act, alpha, out, err);
}

static avo_status binary(int kind, avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *y,
                         avo_tensor *out, avo_error *err) {
    const char *op = kind ? "mul" : "add";
    TRY(need_args(op, be, a, err));
    TRY(need_f32(op, "x", x, 0, err));
    TRY(need_f32(op, "y", y, 0, err));
    int64_t nx = avo_tensor_numel(x), ny = avo_tensor_numel(y);
    bool same = x->ndim == y->ndim;
    for (int i = 0; same && i < x->ndim; i++) same = x->shape[i] == y->shape[i];
    bool bcast = x->ndim >= 2 && ny == x->shape[0] && (y->ndim == 1 || (y->ndim == 2 && y->shape[1] == 1));
    if (!same && !bcast) {
        char b1[96], b2[96];
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s: shapes %s and %s do not match", op,
                             shape_str(x, b1, sizeof b1), shape_str(y, b2, sizeof b2));
    }
    (void)nx;
    TRY(prepare_out(op, a, x->ndim, x->shape, out, err));
    return be->ops->binary(be, kind, x, y, out, err);
}

avo_status avo_op_add(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *y, avo_tensor *out,
                      avo_error *err) {
    return binary(0, be, a, x, y, out, err);
}

avo_status avo_op_mul(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *y, avo_tensor *out,
                      avo_error *err) {
    return binary(1, be, a, x, y, out, err);
}

avo_status avo_op_rel_attention(avo_backend *be, avo_arena *a, const avo_tensor *q, const avo_tensor *k,
                                const avo_tensor *v, const avo_tensor *emb_rel_k, const avo_tensor *emb_rel_v,
                                int heads, int window, avo_tensor *out, avo_error *err) {
    const char *op = "rel_attention";
    TRY(need_args(op, be, a, err));
    TRY(need_f32(op, "q", q, 2, err));
    TRY(need_f32(op, "k", k, 2, err));
    TRY(need_f32(op, "v", v, 2, err));
    int64_t c = q->shape[0], t = q->shape[1];
    if (k->shape[0] != c || v->shape[0] != c || k->shape[1] != t || v->shape[1] != t)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "rel_attention: q, k and v must share one [C, T] shape");
    if (heads <= 0 || c % heads)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "rel_attention: %lld channels do not split into %d heads",
                             (long long)c, heads);
    if (window < 0) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "rel_attention: negative window");
    if (window > 0) {
        int64_t kc = c / heads;
        const avo_tensor *e[2] = {emb_rel_k, emb_rel_v};
        for (int i = 0; i < 2; i++) {
            TRY(need_f32(op, i ? "emb_rel_v" : "emb_rel_k", e[i], 3, err));
            if ((e[i]->shape[0] != 1 && e[i]->shape[0] != heads) || e[i]->shape[1] != 2 * (int64_t)window + 1 ||
                e[i]->shape[2] != kc)
                return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                                     "rel_attention: %s must be [1 or %d, %d, %lld] for window %d", i ? "emb_rel_v" : "emb_rel_k",
                                     heads, 2 * window + 1, (long long)kc, window);
        }
    }
    TRY(prepare_out(op, a, 2, q->shape, out, err));
    DISPATCH(be->ops->rel_attention(be, a, q, k, v, emb_rel_k, emb_rel_v, heads, window, out, err));
}

avo_status avo_op_embedding(avo_backend *be, avo_arena *a, const avo_tensor *table, const avo_tensor *ids,
                            avo_tensor *out, avo_error *err) {
    const char *op = "embedding";
    TRY(need_args(op, be, a, err));
    TRY(need_f32(op, "table", table, 2, err));
    if (!ids || !ids->data || ids->dtype != AVO_DTYPE_I32)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "embedding: ids must be an i32 tensor");
    int64_t shape[2] = {avo_tensor_numel(ids), table->shape[1]};
    TRY(prepare_out(op, a, 2, shape, out, err));
    return be->ops->embedding(be, table, ids, out, err);
}

avo_status avo_op_upsample(avo_backend *be, avo_arena *a, const avo_tensor *x, int64_t t_out, avo_upsample mode,
                           avo_tensor *out, avo_error *err) {
    const char *op = "upsample";
    TRY(need_args(op, be, a, err));
    TRY(need_f32(op, "x", x, 2, err));
    if (t_out <= 0 || x->shape[1] <= 0 || (mode != AVO_UPSAMPLE_NEAREST && mode != AVO_UPSAMPLE_LINEAR))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "upsample: bad length or mode");
    int64_t shape[2] = {x->shape[0], t_out};
    TRY(prepare_out(op, a, 2, shape, out, err));
    return be->ops->upsample(be, x, mode, out, err);
}

avo_status avo_op_pool1d(avo_backend *be, avo_arena *a, const avo_tensor *x, avo_pool kind, int kernel, int stride,
                         int padding, avo_tensor *out, avo_error *err) {
    const char *op = "pool1d";
    TRY(need_args(op, be, a, err));
    TRY(need_f32(op, "x", x, 2, err));
    if (stride <= 0) stride = kernel;
    if (kernel <= 0 || padding < 0 || padding * 2 > kernel || (kind != AVO_POOL_MAX && kind != AVO_POOL_AVG))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "pool1d: kernel %d, padding %d (at most half the kernel) or kind not valid", kernel, padding);
    int64_t tout = (x->shape[1] + 2 * (int64_t)padding - kernel) / stride + 1;
    if (x->shape[1] + 2 * (int64_t)padding < kernel || tout <= 0)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "pool1d: input shorter than the kernel");
    int64_t shape[2] = {x->shape[0], tout};
    TRY(prepare_out(op, a, 2, shape, out, err));
    return be->ops->pool1d(be, x, kind, kernel, stride, padding, out, err);
}

avo_status avo_op_transpose(avo_backend *be, avo_arena *a, const avo_tensor *x, avo_tensor *out, avo_error *err) {
    TRY(need_args("transpose", be, a, err));
    TRY(need_f32("transpose", "x", x, 2, err));
    int64_t shape[2] = {x->shape[1], x->shape[0]};
    TRY(prepare_out("transpose", a, 2, shape, out, err));
    return be->ops->transpose(be, x, out, err);
}

avo_status avo_op_copy(avo_backend *be, avo_arena *a, const avo_tensor *x, avo_tensor *out, avo_error *err) {
    TRY(need_args("copy", be, a, err));
    TRY(need_f32("copy", "x", x, 0, err));
    TRY(prepare_out("copy", a, x->ndim, x->shape, out, err));
    return be->ops->copy(be, x, out, err);
}

avo_status avo_op_bigru(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_gru_weights *w, avo_tensor *out,
                        avo_error *err) {
    const char *op = "bigru";
    TRY(need_args(op, be, a, err));
    TRY(need_f32(op, "x", x, 2, err));
    if (!w) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "bigru: no weights");
    int64_t in = x->shape[1];
    TRY(need_f32(op, "weight_hh", w->w_hh[0], 2, err));
    int64_t h = w->w_hh[0]->shape[1];
    for (int d = 0; d < 2; d++) {
        TRY(need_f32(op, "weight_ih", w->w_ih[d], 2, err));
        TRY(need_f32(op, "weight_hh", w->w_hh[d], 2, err));
        if (w->w_ih[d]->shape[0] != 3 * h || w->w_ih[d]->shape[1] != in || w->w_hh[d]->shape[0] != 3 * h ||
            w->w_hh[d]->shape[1] != h)
            return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                                 "bigru: direction %d weights do not fit input size %lld, hidden %lld", d, (long long)in,
                                 (long long)h);
        TRY(need_len(op, "bias_ih", w->b_ih[d], 3 * h, err));
        TRY(need_len(op, "bias_hh", w->b_hh[d], 3 * h, err));
    }
    int64_t shape[2] = {x->shape[0], 2 * h};
    TRY(prepare_out(op, a, 2, shape, out, err));
    DISPATCH(be->ops->bigru(be, a, x, w, out, err));
}

/* ---- 2-D operators -------------------------------------------------------------------------- */

static avo_status need_entry(const char *op, const avo_backend *be, bool present, avo_error *err) {
    if (!present) return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: back end '%s' does not have this operator", op, be->ops->name);
    return AVO_OK;
}

avo_status avo_op_conv2d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                         const avo_conv2d_params *params, const avo_tensor *residual, avo_tensor *out, avo_error *err) {
    const char *op = "conv2d";
    TRY(need_args(op, be, a, err));
    TRY(need_entry(op, be, be->ops->conv2d != NULL, err));
    TRY(need_f32(op, "x", x, 3, err));
    TRY(need_f32(op, "weight", w, 4, err));
    avo_conv2d_params p;
    memset(&p, 0, sizeof p);
    if (params) p = *params;
    for (int i = 0; i < 2; i++) {
        if (p.stride[i] <= 0) p.stride[i] = 1;
        if (p.dilation[i] <= 0) p.dilation[i] = 1;
        if (p.padding[i] < 0) p.padding[i] = 0;
    }
    if (p.groups <= 0) p.groups = 1;
    int64_t cin = x->shape[0], cout = w->shape[0];
    if (cin % p.groups || cout % p.groups || w->shape[1] * p.groups != cin)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "conv2d: %lld input channels, weight [%lld, %lld, %lld, %lld] and groups %d do not fit",
                             (long long)cin, (long long)cout, (long long)w->shape[1], (long long)w->shape[2],
                             (long long)w->shape[3], p.groups);
    TRY(need_len(op, "bias", b, cout, err));
    int64_t shape[3] = {cout, 0, 0};
    for (int i = 0; i < 2; i++) {
        int64_t n = x->shape[1 + i], span = (int64_t)p.dilation[i] * (w->shape[2 + i] - 1) + 1;
        if (n + 2 * (int64_t)p.padding[i] < span || n <= 0)
            return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "conv2d: input %s %lld is smaller than the kernel span %lld",
                                 i ? "width" : "height", (long long)n, (long long)span);
        shape[1 + i] = (n + 2 * (int64_t)p.padding[i] - span) / p.stride[i] + 1;
    }
    if (residual) {
        TRY(need_f32(op, "residual", residual, 3, err));
        if (residual->shape[0] != shape[0] || residual->shape[1] != shape[1] || residual->shape[2] != shape[2]) {
            char b1[96];
            return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "conv2d: residual has shape %s, the result is [%lld, %lld, %lld]",
                                 shape_str(residual, b1, sizeof b1), (long long)shape[0], (long long)shape[1],
                                 (long long)shape[2]);
        }
    }
    TRY(prepare_out(op, a, 3, shape, out, err));
    if (overlaps(out, x) || (residual && (overlaps(residual, out) || overlaps(residual, x))))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "conv2d: the output shares memory with x or the residual");
    OBSERVE(AVO_GEMM_CONV2D, p.groups);
    DISPATCH(be->ops->conv2d(be, a, x, w, b, &p, residual, out, err));
}

avo_status avo_op_conv_transpose2d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                                   const avo_tensor *b, const avo_conv_transpose2d_params *params, avo_tensor *out,
                                   avo_error *err) {
    const char *op = "conv_transpose2d";
    TRY(need_args(op, be, a, err));
    TRY(need_entry(op, be, be->ops->conv_transpose2d != NULL, err));
    TRY(need_f32(op, "x", x, 3, err));
    TRY(need_f32(op, "weight", w, 4, err));
    avo_conv_transpose2d_params p;
    memset(&p, 0, sizeof p);
    if (params) p = *params;
    int64_t cin = x->shape[0], cout = w->shape[1];
    if (w->shape[0] != cin)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "conv_transpose2d: %lld input channels do not fit weight [%lld, %lld, %lld, %lld]",
                             (long long)cin, (long long)w->shape[0], (long long)w->shape[1], (long long)w->shape[2],
                             (long long)w->shape[3]);
    TRY(need_len(op, "bias", b, cout, err));
    int64_t shape[3] = {cout, 0, 0};
    for (int i = 0; i < 2; i++) {
        if (p.stride[i] <= 0) p.stride[i] = 1;
        if (p.padding[i] < 0) p.padding[i] = 0;
        if (p.output_padding[i] < 0) p.output_padding[i] = 0;
        if (p.output_padding[i] >= p.stride[i])
            return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "conv_transpose2d: output_padding %d must be below the stride %d",
                                 p.output_padding[i], p.stride[i]);
        int64_t n = x->shape[1 + i];
        shape[1 + i] = (n - 1) * p.stride[i] - 2 * (int64_t)p.padding[i] + w->shape[2 + i] + p.output_padding[i];
        if (n <= 0 || shape[1 + i] <= 0)
            return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "conv_transpose2d: input %s %lld gives no output",
                                 i ? "width" : "height", (long long)n);
    }
    TRY(prepare_out(op, a, 3, shape, out, err));
    if (overlaps(out, x)) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "conv_transpose2d: the output shares memory with x");
    OBSERVE(AVO_GEMM_CONV_TRANSPOSE2D, 1);
    DISPATCH(be->ops->conv_transpose2d(be, a, x, w, b, &p, out, err));
}

avo_status avo_op_pool2d(avo_backend *be, avo_arena *a, const avo_tensor *x, avo_pool kind, const avo_pool2d_params *params,
                         avo_tensor *out, avo_error *err) {
    const char *op = "pool2d";
    TRY(need_args(op, be, a, err));
    TRY(need_entry(op, be, be->ops->pool2d != NULL, err));
    TRY(need_f32(op, "x", x, 3, err));
    if (!params) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "pool2d: no parameters");
    avo_pool2d_params p = *params;
    if (kind != AVO_POOL_MAX && kind != AVO_POOL_AVG)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "pool2d: unknown kind %d", (int)kind);
    int64_t shape[3] = {x->shape[0], 0, 0};
    for (int i = 0; i < 2; i++) {
        if (p.stride[i] <= 0) p.stride[i] = p.kernel[i];
        if (p.kernel[i] <= 0 || p.padding[i] < 0 || p.padding[i] * 2 > p.kernel[i])
            return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "pool2d: kernel %d, padding %d (at most half the kernel) not valid",
                                 p.kernel[i], p.padding[i]);
        int64_t n = x->shape[1 + i];
        if (n + 2 * (int64_t)p.padding[i] < p.kernel[i])
            return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "pool2d: input %s %lld is smaller than the kernel %d",
                                 i ? "width" : "height", (long long)n, p.kernel[i]);
        shape[1 + i] = (n + 2 * (int64_t)p.padding[i] - p.kernel[i]) / p.stride[i] + 1;
    }
    TRY(prepare_out(op, a, 3, shape, out, err));
    if (overlaps(out, x)) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "pool2d: the output shares memory with x");
    return be->ops->pool2d(be, x, kind, &p, out, err);
}

avo_status avo_op_transpose01(avo_backend *be, avo_arena *a, const avo_tensor *x, avo_tensor *out, avo_error *err) {
    const char *op = "transpose01";
    TRY(need_args(op, be, a, err));
    TRY(need_entry(op, be, be->ops->transpose01 != NULL, err));
    TRY(need_f32(op, "x", x, 3, err));
    int64_t shape[3] = {x->shape[1], x->shape[0], x->shape[2]};
    TRY(prepare_out(op, a, 3, shape, out, err));
    if (overlaps(out, x)) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "transpose01: the output shares memory with x");
    return be->ops->transpose01(be, x, out, err);
}
