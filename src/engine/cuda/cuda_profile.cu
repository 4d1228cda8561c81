/* Profiling mode of the CUDA back end (cuda_profile.h): a function table whose entries record an event,
 * call the plain table's entry and record a second event, keyed by op and shape. */
#include "engine/cuda/cuda_internal.h"

extern "C" {
#include "engine/cuda/cuda_profile.h"
}

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- records ---------------------------------------------------------------------------------- */

static long prof_begin(cu_impl *cu, const char *op, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static long prof_begin(cu_impl *cu, const char *op, const char *fmt, ...) {
    if (cu->n_prof == cu->cap_prof) {
        size_t cap = cu->cap_prof ? cu->cap_prof * 2 : 1024;
        if (cap > ((size_t)1 << 20)) return -1; /* a bound on events: the rest goes untimed */
        cu_prof_rec *p = (cu_prof_rec *)realloc(cu->prof_recs, cap * sizeof *p);
        if (!p) return -1;
        cu->prof_recs = p;
        for (size_t i = cu->cap_prof; i < cap; i++) {
            p[i].e0 = p[i].e1 = NULL;
            if (cudaEventCreate(&p[i].e0) != cudaSuccess || cudaEventCreate(&p[i].e1) != cudaSuccess) {
                cudaGetLastError();
                cu->cap_prof = i; /* keep what was made */
                return -1;
            }
        }
        cu->cap_prof = cap;
    }
    cu_prof_rec *r = &cu->prof_recs[cu->n_prof];
    r->op = op;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->key, sizeof r->key, fmt, ap);
    va_end(ap);
    cudaEventRecord(r->e0, cu->stream);
    return (long)cu->n_prof++;
}

static void prof_end(cu_impl *cu, long i) {
    if (i >= 0) cudaEventRecord(cu->prof_recs[i].e1, cu->stream);
}

void cu_profile_free(cu_impl *cu) {
    for (size_t i = 0; i < cu->cap_prof; i++) {
        if (cu->prof_recs[i].e0) cudaEventDestroy(cu->prof_recs[i].e0);
        if (cu->prof_recs[i].e1) cudaEventDestroy(cu->prof_recs[i].e1);
    }
    free(cu->prof_recs);
    cu->prof_recs = NULL;
    cu->n_prof = cu->cap_prof = 0;
}

#define LL(v) ((long long)(v))
#define PLAIN(be) cu_plain_ops(cu_of(be)->precision)

/* ---- wrappers --------------------------------------------------------------------------------- */

static void p_copy_in(avo_backend *be, void *dst, const float *src, size_t count) {
    cu_impl *cu = cu_of(be);
    long i = prof_begin(cu, "h2d", "h2d %lld", LL(count));
    PLAIN(be)->copy_in(be, dst, src, count);
    prof_end(cu, i);
}

static void p_copy_out(avo_backend *be, float *dst, const void *src, size_t count) {
    cu_impl *cu = cu_of(be);
    long i = prof_begin(cu, "d2h", "d2h %lld", LL(count));
    PLAIN(be)->copy_out(be, dst, src, count); /* returns when the copy is done: e1 follows at once */
    prof_end(cu, i);
}

static avo_status p_linear(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                           avo_tensor *y, avo_error *err) {
    cu_impl *cu = cu_of(be);
    long i = prof_begin(cu, "linear", "linear %lldx%lld->%lld", LL(avo_tensor_numel(x) / (w->shape[1] ? w->shape[1] : 1)),
                        LL(w->shape[1]), LL(w->shape[0]));
    avo_status st = PLAIN(be)->linear(be, a, x, w, b, y, err);
    prof_end(cu, i);
    return st;
}

static avo_status p_conv1d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                           const avo_conv1d_params *p, avo_tensor *y, avo_error *err) {
    cu_impl *cu = cu_of(be);
    long i = prof_begin(cu, "conv1d", "conv1d %lld->%lld k%lld s%d d%d g%d T%lld", LL(x->shape[0]), LL(w->shape[0]),
                        LL(w->shape[2]), p->stride, p->dilation, p->groups, LL(y->shape[1]));
    avo_status st = PLAIN(be)->conv1d(be, a, x, w, b, p, y, err);
    prof_end(cu, i);
    return st;
}

static avo_status p_conv1d_fused(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                                 const avo_tensor *b, const avo_conv1d_params *p, const avo_conv1d_fuse *f, avo_tensor *y,
                                 avo_error *err) {
    cu_impl *cu = cu_of(be);
    long i = prof_begin(cu, "conv1d_fused", "conv1d_fused %lld->%lld k%lld s%d d%d g%d T%lld%s%s", LL(x->shape[0]),
                        LL(w->shape[0]), LL(w->shape[2]), p->stride, p->dilation, p->groups, LL(y->shape[1]),
                        f->input_leaky_relu ? " lrelu" : "", f->residual ? " +res" : "");
    avo_status st = PLAIN(be)->conv1d_fused(be, a, x, w, b, p, f, y, err);
    prof_end(cu, i);
    return st;
}

static avo_status p_conv_transpose1d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                                     const avo_tensor *b, const avo_conv_transpose1d_params *p, avo_tensor *y,
                                     avo_error *err) {
    cu_impl *cu = cu_of(be);
    long i = prof_begin(cu, "conv_transpose1d", "convT1d %lld->%lld k%lld s%d T%lld", LL(x->shape[0]), LL(y->shape[0]),
                        LL(w->shape[2]), p->stride, LL(y->shape[1]));
    avo_status st = PLAIN(be)->conv_transpose1d(be, a, x, w, b, p, y, err);
    prof_end(cu, i);
    return st;
}

static avo_status p_layer_norm(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *gamma,
                               const avo_tensor *beta, float eps, avo_tensor *y, avo_error *err) {
    cu_impl *cu = cu_of(be);
    long i = prof_begin(cu, "layer_norm", "layer_norm %lldx%lld", LL(x->shape[0]), LL(x->shape[1]));
    avo_status st = PLAIN(be)->layer_norm(be, a, x, gamma, beta, eps, y, err);
    prof_end(cu, i);
    return st;
}

static avo_status p_group_norm(avo_backend *be, avo_arena *a, const avo_tensor *x, int groups, const avo_tensor *gamma,
                               const avo_tensor *beta, float eps, avo_tensor *y, avo_error *err) {
    cu_impl *cu = cu_of(be);
    long i = prof_begin(cu, "group_norm", "group_norm %lldx%lld g%d", LL(x->shape[0]), LL(x->shape[1]), groups);
    avo_status st = PLAIN(be)->group_norm(be, a, x, groups, gamma, beta, eps, y, err);
    prof_end(cu, i);
    return st;
}

static avo_status p_act(avo_backend *be, const avo_tensor *x, avo_act act, float alpha, avo_tensor *y, avo_error *err) {
    static const char *names[] = {"relu", "leaky_relu", "gelu", "tanh", "sigmoid", "softplus"};
    cu_impl *cu = cu_of(be);
    const char *nm = (int)act >= 0 && (int)act < 6 ? names[act] : "act";
    long i = prof_begin(cu, nm, "%s %lld", nm, LL(avo_tensor_numel(x)));
    avo_status st = PLAIN(be)->act(be, x, act, alpha, y, err);
    prof_end(cu, i);
    return st;
}

static avo_status p_binary(avo_backend *be, int op, const avo_tensor *x, const avo_tensor *y, avo_tensor *out,
                           avo_error *err) {
    cu_impl *cu = cu_of(be);
    const char *nm = op ? "mul" : "add";
    long i = prof_begin(cu, nm, "%s %lld (%lld)", nm, LL(avo_tensor_numel(x)), LL(avo_tensor_numel(y)));
    avo_status st = PLAIN(be)->binary(be, op, x, y, out, err);
    prof_end(cu, i);
    return st;
}

static avo_status p_rel_attention(avo_backend *be, avo_arena *a, const avo_tensor *q, const avo_tensor *k,
                                  const avo_tensor *v, const avo_tensor *ek, const avo_tensor *ev, int heads, int window,
                                  avo_tensor *out, avo_error *err) {
    cu_impl *cu = cu_of(be);
    long i = prof_begin(cu, "attention", "attention C%lld T%lld h%d w%d", LL(q->shape[0]), LL(q->shape[1]), heads, window);
    avo_status st = PLAIN(be)->rel_attention(be, a, q, k, v, ek, ev, heads, window, out, err);
    prof_end(cu, i);
    return st;
}

static avo_status p_embedding(avo_backend *be, const avo_tensor *table, const avo_tensor *ids, avo_tensor *out,
                              avo_error *err) {
    cu_impl *cu = cu_of(be);
    long i = prof_begin(cu, "embedding", "embedding %lld of %lld", LL(avo_tensor_numel(ids)), LL(table->shape[1]));
    avo_status st = PLAIN(be)->embedding(be, table, ids, out, err);
    prof_end(cu, i);
    return st;
}

static avo_status p_upsample(avo_backend *be, const avo_tensor *x, avo_upsample mode, avo_tensor *out, avo_error *err) {
    cu_impl *cu = cu_of(be);
    long i = prof_begin(cu, "upsample", "upsample %lldx%lld->%lld", LL(x->shape[0]), LL(x->shape[1]), LL(out->shape[1]));
    avo_status st = PLAIN(be)->upsample(be, x, mode, out, err);
    prof_end(cu, i);
    return st;
}

static avo_status p_pool1d(avo_backend *be, const avo_tensor *x, avo_pool kind, int kernel, int stride, int padding,
                           avo_tensor *out, avo_error *err) {
    cu_impl *cu = cu_of(be);
    long i = prof_begin(cu, "pool1d", "pool1d %lldx%lld k%d", LL(x->shape[0]), LL(x->shape[1]), kernel);
    avo_status st = PLAIN(be)->pool1d(be, x, kind, kernel, stride, padding, out, err);
    prof_end(cu, i);
    return st;
}

static avo_status p_transpose(avo_backend *be, const avo_tensor *x, avo_tensor *out, avo_error *err) {
    cu_impl *cu = cu_of(be);
    long i = prof_begin(cu, "transpose", "transpose %lldx%lld", LL(x->shape[0]), LL(x->shape[1]));
    avo_status st = PLAIN(be)->transpose(be, x, out, err);
    prof_end(cu, i);
    return st;
}

static avo_status p_copy(avo_backend *be, const avo_tensor *x, avo_tensor *out, avo_error *err) {
    cu_impl *cu = cu_of(be);
    long i = prof_begin(cu, "copy", "copy %lld", LL(avo_tensor_numel(x)));
    avo_status st = PLAIN(be)->copy(be, x, out, err);
    prof_end(cu, i);
    return st;
}

static avo_status p_bigru(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_gru_weights *w, avo_tensor *out,
                          avo_error *err) {
    cu_impl *cu = cu_of(be);
    long i = prof_begin(cu, "bigru", "bigru T%lld in%lld H%lld", LL(x->shape[0]), LL(x->shape[1]), LL(w->w_hh[0]->shape[1]));
    avo_status st = PLAIN(be)->bigru(be, a, x, w, out, err);
    prof_end(cu, i);
    return st;
}

static avo_status p_conv2d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                           const avo_conv2d_params *p, const avo_tensor *residual, avo_tensor *y, avo_error *err) {
    cu_impl *cu = cu_of(be);
    long i = prof_begin(cu, "conv2d", "conv2d %lld->%lld %lldx%lld k%lldx%lld s%d", LL(x->shape[0]), LL(w->shape[0]),
                        LL(x->shape[1]), LL(x->shape[2]), LL(w->shape[2]), LL(w->shape[3]), p->stride[0]);
    avo_status st = PLAIN(be)->conv2d(be, a, x, w, b, p, residual, y, err);
    prof_end(cu, i);
    return st;
}

static avo_status p_conv_transpose2d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                                     const avo_tensor *b, const avo_conv_transpose2d_params *p, avo_tensor *y,
                                     avo_error *err) {
    cu_impl *cu = cu_of(be);
    long i = prof_begin(cu, "conv_transpose2d", "convT2d %lld->%lld %lldx%lld", LL(x->shape[0]), LL(w->shape[1]),
                        LL(x->shape[1]), LL(x->shape[2]));
    avo_status st = PLAIN(be)->conv_transpose2d(be, a, x, w, b, p, y, err);
    prof_end(cu, i);
    return st;
}

static avo_status p_pool2d(avo_backend *be, const avo_tensor *x, avo_pool kind, const avo_pool2d_params *p, avo_tensor *y,
                           avo_error *err) {
    cu_impl *cu = cu_of(be);
    long i = prof_begin(cu, "pool2d", "pool2d %lldx%lldx%lld", LL(x->shape[0]), LL(x->shape[1]), LL(x->shape[2]));
    avo_status st = PLAIN(be)->pool2d(be, x, kind, p, y, err);
    prof_end(cu, i);
    return st;
}

static avo_status p_transpose01(avo_backend *be, const avo_tensor *x, avo_tensor *y, avo_error *err) {
    cu_impl *cu = cu_of(be);
    long i = prof_begin(cu, "transpose01", "transpose01 %lldx%lldx%lld", LL(x->shape[0]), LL(x->shape[1]), LL(x->shape[2]));
    avo_status st = PLAIN(be)->transpose01(be, x, y, err);
    prof_end(cu, i);
    return st;
}

void cu_profile_register(avo_backend_ops *o) {
    o->copy_in = p_copy_in;
    o->copy_out = p_copy_out;
    o->linear = p_linear;
    o->conv1d = p_conv1d;
    o->conv1d_fused = p_conv1d_fused;
    o->conv_transpose1d = p_conv_transpose1d;
    o->layer_norm = p_layer_norm;
    o->group_norm = p_group_norm;
    o->act = p_act;
    o->binary = p_binary;
    o->rel_attention = p_rel_attention;
    o->embedding = p_embedding;
    o->upsample = p_upsample;
    o->pool1d = p_pool1d;
    o->transpose = p_transpose;
    o->copy = p_copy;
    o->bigru = p_bigru;
    o->conv2d = p_conv2d;
    o->conv_transpose2d = p_conv_transpose2d;
    o->pool2d = p_pool2d;
    o->transpose01 = p_transpose01;
}

/* ---- report ----------------------------------------------------------------------------------- */

typedef struct prof_agg {
    const char *name;
    double ms;
    long calls;
} prof_agg;

static int by_ms_desc(const void *x, const void *y) {
    double a = ((const prof_agg *)x)->ms, b = ((const prof_agg *)y)->ms;
    return a < b ? 1 : a > b ? -1 : 0;
}

static void add_agg(prof_agg *v, size_t *n, const char *name, double ms) {
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(v[i].name, name)) {
            v[i].ms += ms;
            v[i].calls++;
            return;
        }
    v[*n].name = name;
    v[*n].ms = ms;
    v[*n].calls = 1;
    (*n)++;
}

extern "C" avo_status avo_backend_cuda_profile_json(avo_backend *be, int top_n, char *buf, size_t cap, avo_error *err) {
    if (!be || !buf || cap < 2) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "cuda: profile_json: bad arguments");
    cu_impl *cu = cu_checked(be);
    if (!cu) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "cuda: profile_json on a back end that is not CUDA");
    cudaError_t e = cudaStreamSynchronize(cu->stream);
    if (e != cudaSuccess) return cu_fail_cuda(err, "profile", e);
    size_t n = cu->n_prof;
    prof_agg *ops = (prof_agg *)calloc(n + 1, sizeof *ops), *keys = (prof_agg *)calloc(n + 1, sizeof *keys);
    if (!ops || !keys) {
        free(ops), free(keys);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "cuda: profile: out of memory");
    }
    size_t nops = 0, nkeys = 0;
    double total = 0.0, span = 0.0;
    for (size_t i = 0; i < n; i++) {
        float ms = 0.0f;
        if (cudaEventElapsedTime(&ms, cu->prof_recs[i].e0, cu->prof_recs[i].e1) != cudaSuccess) {
            cudaGetLastError();
            ms = 0.0f;
        }
        total += ms;
        add_agg(ops, &nops, cu->prof_recs[i].op, ms);
        add_agg(keys, &nkeys, cu->prof_recs[i].key, ms);
    }
    if (n > 0) {
        float ms = 0.0f;
        if (cudaEventElapsedTime(&ms, cu->prof_recs[0].e0, cu->prof_recs[n - 1].e1) == cudaSuccess) span = ms;
        cudaGetLastError();
    }
    qsort(ops, nops, sizeof *ops, by_ms_desc);
    qsort(keys, nkeys, sizeof *keys, by_ms_desc);
    size_t len = (size_t)snprintf(buf, cap, "{\"ops\": %lld, \"device_ms\": %.4f, \"span_ms\": %.4f, \"by_op\": {",
                                  (long long)n, total, span);
    for (size_t i = 0; i < nops && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s\"%s\": {\"ms\": %.4f, \"calls\": %ld}", i ? ", " : "",
                                ops[i].name, ops[i].ms, ops[i].calls);
    if (len < cap) len += (size_t)snprintf(buf + len, cap - len, "}, \"by_shape\": [");
    for (size_t i = 0; i < nkeys && (int)i < top_n && len + 200 < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s{\"key\": \"%s\", \"ms\": %.4f, \"calls\": %ld}", i ? ", " : "",
                                keys[i].name, keys[i].ms, keys[i].calls);
    if (len < cap) snprintf(buf + len, cap - len, "]}");
    free(ops), free(keys);
    cu->n_prof = 0;
    return AVO_OK;
}
