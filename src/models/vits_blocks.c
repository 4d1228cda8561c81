/* VITS blocks on the engine (see vits_internal.h): relative-attention text encoder, reverse coupling
 * flows, HiFi-GAN / NSF-HiFiGAN generator, RVC's NSF source and a seeded normal RNG.
 *
 * Weights go through host buffers at load time, where a few exact rewrites are made so the run
 * needs fewer passes over the data:
 *  - a coupling layer that the reverse pass applies to channel-reversed data gets its pre columns
 *    and post rows reversed instead, so Flip never moves data;
 *  - post is negated, so the reverse coupling x1 - m is one add;
 *  - the mean over a stage's resblocks (xs / n_kernels) is folded into the weights of the next
 *    convolution (leaky ReLU is positively homogeneous, the next op is linear);
 *  - noise_convs (kernel 2s, stride s, padding s/2 over the 1-channel source) become kernel-2
 *    convolutions over the source laid out as [s, samples/s + 1], i.e. a plain GEMM. */
#include "models/vits_internal.h"

#include "autovoice/engine_cache.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LRELU_SLOPE 0.1f
#define LN_EPS 1e-5f

/* ---- host-side loading ------------------------------------------------------------------------ */

typedef struct host_tensor {
    float *d;
    int ndim;
    int64_t shape[AVO_TENSOR_MAX_DIMS];
} host_tensor;

static void key_of(const vits_loader *l, const char *name, char *buf, size_t n) {
    snprintf(buf, n, "%s%s", l->prefix ? l->prefix : "", name);
}

const avo_ckpt_tensor *vits_find(const vits_loader *l, const char *name) {
    char key[512];
    key_of(l, name, key, sizeof key);
    const avo_ckpt_value *v = avo_ckpt_lookup(l->ckpt, key);
    return v && avo_ckpt_value_kind(v) == AVO_CKPT_TENSOR ? avo_ckpt_value_tensor(v) : NULL;
}

bool vits_has(const vits_loader *l, const char *name) {
    if (vits_find(l, name)) return true;
    size_t n = strlen(name);
    if (n < 6 || strcmp(name + n - 6, "weight") != 0) return false;
    char g[512];
    snprintf(g, sizeof g, "%s_g", name);
    return vits_find(l, g) != NULL;
}

static const char *shape_text(int ndim, const int64_t *shape, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++) {
        if (shape[i] < 0)
            k += (size_t)snprintf(buf + k, n - k, i ? ", *" : "*");
        else
            k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    }
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

static void host_free(host_tensor *h) {
    free(h->d);
    h->d = NULL;
}

static int64_t host_numel(const host_tensor *h) {
    int64_t n = 1;
    for (int i = 0; i < h->ndim; i++) n *= h->shape[i];
    return n;
}

/* Reads tensor name (prefix added) to host f32. */
static avo_status read_tensor(const vits_loader *l, const char *name, host_tensor *h, avo_error *err) {
    char key[512];
    key_of(l, name, key, sizeof key);
    memset(h, 0, sizeof *h);
    const avo_ckpt_tensor *t = vits_find(l, name);
    if (!t) return avo_error_set(err, AVO_ERR_FORMAT, "%s: no tensor '%s' (not this kind of model, or a damaged file)", l->file, key);
    if (t->ndim > AVO_TENSOR_MAX_DIMS)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: tensor '%s' has %d dimensions", l->file, key, t->ndim);
    h->d = malloc((size_t)(t->numel > 0 ? t->numel : 1) * sizeof(float));
    if (!h->d) return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory reading '%s'", l->file, key);
    avo_status st = avo_ckpt_tensor_read_f32(l->ckpt, t, h->d, t->numel, err);
    if (st) {
        host_free(h);
        return avo_error_prefix(err, "%s: reading '%s'", l->file, key);
    }
    h->ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++) h->shape[i] = t->shape[i];
    return AVO_OK;
}

/* Module weight: name.weight, or name.weight_g / name.weight_v folded (torch weight_norm, dim 0). */
static avo_status read_weight(const vits_loader *l, const char *module, host_tensor *h, avo_error *err) {
    char name[512], gname[512];
    snprintf(name, sizeof name, "%s.weight", module);
    if (vits_find(l, name)) return read_tensor(l, name, h, err);
    snprintf(gname, sizeof gname, "%s.weight_g", module);
    snprintf(name, sizeof name, "%s.weight_v", module);
    if (!vits_find(l, gname) || !vits_find(l, name)) {
        char key[512];
        key_of(l, module, key, sizeof key);
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: no '%s.weight' (nor weight_g / weight_v): not this kind of model, or a damaged file",
                             l->file, key);
    }
    host_tensor g;
    avo_status st = read_tensor(l, gname, &g, err);
    if (!st) st = read_tensor(l, name, h, err);
    if (!st) {
        int64_t rows = h->ndim ? h->shape[0] : 0, n = host_numel(h);
        if (rows <= 0 || host_numel(&g) != rows) {
            char key[512];
            key_of(l, module, key, sizeof key);
            st = avo_error_set(err, AVO_ERR_FORMAT, "%s: '%s': weight_g has %lld values for %lld rows of weight_v", l->file,
                               key, (long long)host_numel(&g), (long long)rows);
        } else {
            avo_weight_norm_fold(g.d, h->d, rows, n / rows, h->d);
        }
    }
    host_free(&g);
    if (st) host_free(h);
    return st;
}

static avo_status check_shape(const vits_loader *l, const char *name, const host_tensor *h, int ndim, const int64_t *want,
                              avo_error *err) {
    bool ok = h->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = want[i] < 0 || h->shape[i] == want[i];
    if (ok) return AVO_OK;
    char key[512], b1[96], b2[96];
    key_of(l, name, key, sizeof key);
    return avo_error_set(err, AVO_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %s (weights and config disagree)",
                         l->file, key, shape_text(h->ndim, h->shape, b1, sizeof b1), shape_text(ndim, want, b2, sizeof b2));
}

static avo_status upload(const vits_loader *l, const host_tensor *h, avo_tensor *out, avo_error *err) {
    return avo_tensor_from_host(l->a, h->ndim, h->shape, h->d, out, err);
}

avo_status vits_load(const vits_loader *l, const char *name, int ndim, const int64_t *want, avo_tensor *out,
                     avo_error *err) {
    char key[512];
    key_of(l, name, key, sizeof key);
    if (avo_engine_replaying(l->ec)) return avo_engine_take_shaped(l->ec, key, ndim, want, out, err);
    host_tensor h;
    avo_status st = read_tensor(l, name, &h, err);
    if (!st) st = check_shape(l, name, &h, ndim, want, err);
    if (!st) st = upload(l, &h, out, err);
    if (!st) st = avo_engine_put(l->ec, key, out, err);
    host_free(&h);
    return st;
}

/* Engine cache (engine_cache.h): the weight and bias of module as recorded after their rewrites. */
static avo_status engine_pair(const vits_loader *l, const char *module, bool put, avo_tensor *w, avo_tensor *b,
                              avo_error *err) {
    char kw[600], kb[600];
    snprintf(kw, sizeof kw, "%s%.500s.weight", l->prefix ? l->prefix : "", module);
    snprintf(kb, sizeof kb, "%s%.500s.bias", l->prefix ? l->prefix : "", module);
    avo_status st = put ? avo_engine_put(l->ec, kw, w, err) : avo_engine_take(l->ec, kw, w, err);
    if (!st && b && (b->data || !put)) st = put ? avo_engine_put(l->ec, kb, b, err) : avo_engine_take(l->ec, kb, b, err);
    return st;
}

/* Exact rewrites of a convolution's weights made on the host before upload. */
typedef struct conv_rewrite {
    float w_scale, b_scale; /* 0 means 1 */
    bool rev_in, rev_out;   /* reverse the input channels / the output channels (rows and bias) */
    bool transposed;        /* ConvTranspose1d weight [cin, cout, K]: the bias has cout = dimension 1 */
} conv_rewrite;

static avo_status conv_load_rw(const vits_loader *l, const char *module, int64_t cout, int64_t cin, int64_t k,
                               bool has_bias, avo_conv1d_params p, const conv_rewrite *rw, vits_conv *c, avo_error *err) {
    memset(c, 0, sizeof *c);
    c->p = p;
    if (avo_engine_replaying(l->ec)) {
        avo_status st = engine_pair(l, module, false, &c->w, has_bias ? &c->b : NULL, err);
        const int64_t want[3] = {cout, cin, k};
        bool ok = st || c->w.ndim == 3;
        for (int i = 0; ok && !st && i < 3; i++) ok = want[i] < 0 || c->w.shape[i] == want[i];
        return ok ? st : avo_error_set(err, AVO_ERR_FORMAT, "%s: engine file: '%s' has another shape", l->file, module);
    }
    host_tensor w = {0}, b = {0};
    char name[512];
    snprintf(name, sizeof name, "%s.weight", module);
    avo_status st = read_weight(l, module, &w, err);
    if (st) return st;
    if (w.ndim == 2) { /* nn.Linear [out, in] as a kernel-1 convolution */
        w.shape[2] = 1;
        w.ndim = 3;
    }
    int64_t want[3] = {cout, cin, k};
    st = check_shape(l, name, &w, 3, want, err);
    if (!st && has_bias) {
        snprintf(name, sizeof name, "%s.bias", module);
        st = read_tensor(l, name, &b, err);
        if (!st) st = check_shape(l, name, &b, 1, &w.shape[rw && rw->transposed ? 1 : 0], err);
    }
    if (!st && rw) {
        int64_t o_n = w.shape[0], i_n = w.shape[1], kk = w.shape[2];
        float ws = rw->w_scale != 0.0f ? rw->w_scale : 1.0f, bs = rw->b_scale != 0.0f ? rw->b_scale : 1.0f;
        if (ws != 1.0f)
            for (int64_t i = 0; i < o_n * i_n * kk; i++) w.d[i] *= ws;
        if (b.d && bs != 1.0f)
            for (int64_t i = 0; i < o_n; i++) b.d[i] *= bs;
        if (rw->rev_in)
            for (int64_t o = 0; o < o_n; o++)
                for (int64_t i = 0; i < i_n / 2; i++)
                    for (int64_t t = 0; t < kk; t++) {
                        float *x = w.d + (o * i_n + i) * kk + t, *y = w.d + (o * i_n + (i_n - 1 - i)) * kk + t, v = *x;
                        *x = *y;
                        *y = v;
                    }
        if (rw->rev_out) {
            for (int64_t o = 0; o < o_n / 2; o++)
                for (int64_t i = 0; i < i_n * kk; i++) {
                    float *x = w.d + o * i_n * kk + i, *y = w.d + (o_n - 1 - o) * i_n * kk + i, v = *x;
                    *x = *y;
                    *y = v;
                }
            if (b.d)
                for (int64_t o = 0; o < o_n / 2; o++) {
                    float v = b.d[o];
                    b.d[o] = b.d[o_n - 1 - o];
                    b.d[o_n - 1 - o] = v;
                }
        }
    }
    if (!st) st = upload(l, &w, &c->w, err);
    if (!st && b.d) st = upload(l, &b, &c->b, err);
    if (!st) st = engine_pair(l, module, true, &c->w, &c->b, err);
    host_free(&w);
    host_free(&b);
    c->p = p;
    return st;
}

avo_status vits_conv_load(const vits_loader *l, const char *name, int64_t cout, int64_t cin, int64_t k,
                          bool has_bias, avo_conv1d_params p, vits_conv *c, avo_error *err) {
    return conv_load_rw(l, name, cout, cin, k, has_bias, p, NULL, c, err);
}

avo_status vits_conv_run(avo_backend *be, avo_arena *a, const vits_conv *c, const avo_tensor *x, avo_tensor *out,
                         avo_error *err) {
    return avo_op_conv1d(be, a, x, &c->w, c->b.data ? &c->b : NULL, &c->p, out, err);
}

/* Shape of a module's weight without loading it (weight or weight_v), or NULL. */
static const avo_ckpt_tensor *weight_shape(const vits_loader *l, const char *module) {
    char name[512];
    snprintf(name, sizeof name, "%s.weight", module);
    const avo_ckpt_tensor *t = vits_find(l, name);
    if (t) return t;
    snprintf(name, sizeof name, "%s.weight_v", module);
    return vits_find(l, name);
}

static avo_status need_weight(const vits_loader *l, const char *module, int ndim, const avo_ckpt_tensor **out,
                              avo_error *err) {
    const avo_ckpt_tensor *t = weight_shape(l, module);
    char key[512];
    key_of(l, module, key, sizeof key);
    if (!t) return avo_error_set(err, AVO_ERR_FORMAT, "%s: no '%s.weight': not this kind of model, or a damaged file", l->file, key);
    if (t->ndim != ndim)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: '%s.weight' has %d dimensions, expected %d", l->file, key, t->ndim, ndim);
    *out = t;
    return AVO_OK;
}

/* ---- text encoder ----------------------------------------------------------------------------- */

static avo_status load_vec(const vits_loader *l, const char *name, int64_t n, avo_tensor *out, avo_error *err) {
    return vits_load(l, name, 1, &n, out, err);
}

avo_status vits_encoder_load(const vits_loader *l, const char *prefix, int heads, vits_encoder *e, avo_error *err) {
    memset(e, 0, sizeof *e);
    char m[400], n[400];
    for (;; e->n_layers++) {
        snprintf(m, sizeof m, "%s.attn_layers.%d.conv_q.weight", prefix, e->n_layers);
        if (!vits_has(l, m)) break;
    }
    if (e->n_layers == 0) {
        key_of(l, prefix, n, sizeof n);
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: no '%s.attn_layers.0.*': not a VITS text encoder", l->file, n);
    }
    const avo_ckpt_tensor *t;
    snprintf(m, sizeof m, "%s.attn_layers.0.conv_q", prefix);
    avo_status st = need_weight(l, m, 3, &t, err);
    if (st) return st;
    e->hidden = (int)t->shape[0];
    snprintf(m, sizeof m, "%s.attn_layers.0.emb_rel_k", prefix);
    t = vits_find(l, m);
    if (!t || t->ndim != 3 || t->shape[2] <= 0 || t->shape[1] % 2 == 0 || e->hidden % t->shape[2]) {
        key_of(l, m, n, sizeof n);
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: '%s' must be [1 or heads, 2 * window + 1, hidden / heads]", l->file, n);
    }
    e->window = (int)(t->shape[1] - 1) / 2;
    e->heads = (int)(e->hidden / t->shape[2]);
    if (heads > 0 && heads != e->heads)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: the config says %d attention heads, the weights have %d", l->file, heads,
                             e->heads);
    int64_t nrel = t->shape[0], kc = t->shape[2], H = e->hidden;
    if (nrel != 1 && nrel != e->heads)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: emb_rel_k has %lld tables for %d heads", l->file, (long long)nrel,
                             e->heads);
    snprintf(m, sizeof m, "%s.ffn_layers.0.conv_1", prefix);
    st = need_weight(l, m, 3, &t, err);
    if (st) return st;
    e->filter = (int)t->shape[0];
    e->kernel = (int)t->shape[2];
    if (e->kernel % 2 == 0)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: FFN kernel %d is even; only odd ('same') kernels are supported",
                             l->file, e->kernel);
    e->layers = calloc((size_t)e->n_layers, sizeof *e->layers);
    if (!e->layers) return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", l->file);
    avo_conv1d_params p1 = {0}, pf = {.padding = (e->kernel - 1) / 2};
    for (int i = 0; i < e->n_layers && !st; i++) {
        vits_attn_layer *L = &e->layers[i];
        const char *cn[4] = {"conv_q", "conv_k", "conv_v", "conv_o"};
        vits_conv *cv[4] = {&L->q, &L->k, &L->v, &L->o};
        for (int j = 0; j < 4 && !st; j++) {
            snprintf(m, sizeof m, "%s.attn_layers.%d.%s", prefix, i, cn[j]);
            st = vits_conv_load(l, m, H, H, 1, true, p1, cv[j], err);
        }
        int64_t rs[3] = {nrel, 2 * e->window + 1, kc};
        snprintf(m, sizeof m, "%s.attn_layers.%d.emb_rel_k", prefix, i);
        if (!st) st = vits_load(l, m, 3, rs, &L->rel_k, err);
        snprintf(m, sizeof m, "%s.attn_layers.%d.emb_rel_v", prefix, i);
        if (!st) st = vits_load(l, m, 3, rs, &L->rel_v, err);
        snprintf(m, sizeof m, "%s.norm_layers_1.%d.gamma", prefix, i);
        if (!st) st = load_vec(l, m, H, &L->ln1_g, err);
        snprintf(m, sizeof m, "%s.norm_layers_1.%d.beta", prefix, i);
        if (!st) st = load_vec(l, m, H, &L->ln1_b, err);
        snprintf(m, sizeof m, "%s.ffn_layers.%d.conv_1", prefix, i);
        if (!st) st = vits_conv_load(l, m, e->filter, H, e->kernel, true, pf, &L->ffn1, err);
        snprintf(m, sizeof m, "%s.ffn_layers.%d.conv_2", prefix, i);
        if (!st) st = vits_conv_load(l, m, H, e->filter, e->kernel, true, pf, &L->ffn2, err);
        snprintf(m, sizeof m, "%s.norm_layers_2.%d.gamma", prefix, i);
        if (!st) st = load_vec(l, m, H, &L->ln2_g, err);
        snprintf(m, sizeof m, "%s.norm_layers_2.%d.beta", prefix, i);
        if (!st) st = load_vec(l, m, H, &L->ln2_b, err);
    }
    if (st) vits_encoder_free(e);
    return st;
}

void vits_encoder_free(vits_encoder *e) {
    if (!e) return;
    free(e->layers);
    e->layers = NULL;
}

#define TRY(expr)                   \
    do {                            \
        st = (expr);                \
        if (st) goto done;          \
    } while (0)

avo_status vits_encoder_forward(avo_backend *be, avo_arena *a, const vits_encoder *e, const avo_tensor *x,
                                avo_tensor *out, avo_error *err) {
    if (x->ndim != 2 || x->shape[0] != e->hidden)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "text encoder: input must be [%d, T]", e->hidden);
    avo_status st = avo_tensor_new(a, AVO_DTYPE_F32, 2, x->shape, out, err);
    if (st) return st;
    const avo_tensor *cur = x;
    for (int i = 0; i < e->n_layers; i++) {
        const vits_attn_layer *L = &e->layers[i];
        avo_arena_mark mk = avo_arena_get_mark(a);
        avo_tensor q = {0}, k = {0}, v = {0}, att = {0}, y = {0}, h = {0}, y2 = {0};
        TRY(vits_conv_run(be, a, &L->q, cur, &q, err));
        TRY(vits_conv_run(be, a, &L->k, cur, &k, err));
        TRY(vits_conv_run(be, a, &L->v, cur, &v, err));
        TRY(avo_op_rel_attention(be, a, &q, &k, &v, &L->rel_k, &L->rel_v, e->heads, e->window, &att, err));
        TRY(vits_conv_run(be, a, &L->o, &att, &y, err));
        TRY(avo_op_add(be, a, &y, cur, &y, err));
        TRY(avo_op_layer_norm(be, a, &y, &L->ln1_g, &L->ln1_b, LN_EPS, out, err)); /* cur is not read again */
        TRY(vits_conv_run(be, a, &L->ffn1, out, &h, err));
        TRY(avo_op_act(be, a, &h, AVO_ACT_RELU, 0.0f, &h, err));
        TRY(vits_conv_run(be, a, &L->ffn2, &h, &y2, err));
        TRY(avo_op_add(be, a, &y2, out, &y2, err));
        TRY(avo_op_layer_norm(be, a, &y2, &L->ln2_g, &L->ln2_b, LN_EPS, out, err));
        avo_arena_rewind(a, mk);
        cur = out;
    }
    return AVO_OK;
done:
    return st;
}

/* ---- WN and flows ----------------------------------------------------------------------------- */

static avo_status wn_load(const vits_loader *l, const char *prefix, int hidden, int dilation_rate, vits_wn *w,
                          avo_error *err) {
    memset(w, 0, sizeof *w);
    char m[400];
    w->hidden = hidden;
    for (;; w->n_layers++) {
        snprintf(m, sizeof m, "%s.in_layers.%d.weight", prefix, w->n_layers);
        if (!vits_has(l, m)) break;
    }
    if (w->n_layers == 0) {
        char key[512];
        key_of(l, prefix, key, sizeof key);
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: no '%s.in_layers.0.weight': not a WN block", l->file, key);
    }
    const avo_ckpt_tensor *t;
    snprintf(m, sizeof m, "%s.in_layers.0", prefix);
    avo_status st = need_weight(l, m, 3, &t, err);
    if (st) return st;
    w->kernel = (int)t->shape[2];
    if (w->kernel % 2 == 0)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: WN kernel %d is even; only odd kernels are supported", l->file,
                             w->kernel);
    snprintf(m, sizeof m, "%s.cond_layer", prefix);
    t = weight_shape(l, m);
    if (t) {
        if (t->ndim != 3) return avo_error_set(err, AVO_ERR_FORMAT, "%s: %s.weight must be 3-D", l->file, m);
        w->gin = (int)t->shape[1];
        st = vits_conv_load(l, m, 2 * (int64_t)hidden * w->n_layers, w->gin, 1, true, (avo_conv1d_params){0}, &w->cond, err);
        if (st) return st;
    }
    w->in_layers = calloc((size_t)w->n_layers, sizeof *w->in_layers);
    w->res_skip = calloc((size_t)w->n_layers, sizeof *w->res_skip);
    if (!w->in_layers || !w->res_skip) return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", l->file);
    int d = 1;
    for (int i = 0; i < w->n_layers && !st; i++, d *= dilation_rate) {
        avo_conv1d_params p = {.dilation = d, .padding = (w->kernel * d - d) / 2};
        snprintf(m, sizeof m, "%s.in_layers.%d", prefix, i);
        st = vits_conv_load(l, m, 2 * (int64_t)hidden, hidden, w->kernel, true, p, &w->in_layers[i], err);
        snprintf(m, sizeof m, "%s.res_skip_layers.%d", prefix, i);
        int64_t rs = i < w->n_layers - 1 ? 2 * (int64_t)hidden : hidden;
        if (!st) st = vits_conv_load(l, m, rs, hidden, 1, true, (avo_conv1d_params){0}, &w->res_skip[i], err);
    }
    return st;
}

static void wn_free(vits_wn *w) {
    free(w->in_layers);
    free(w->res_skip);
    w->in_layers = w->res_skip = NULL;
}

/* WN on h [hidden, T] (overwritten: it is the running x), gc = cond_layer(g) [2*hidden*layers, 1] or
 * NULL; out [hidden, T] must be allocated by the caller. */
static avo_status wn_forward(avo_backend *be, avo_arena *a, const vits_wn *w, avo_tensor *h, const avo_tensor *gc,
                             avo_tensor *out, avo_error *err) {
    avo_status st = AVO_OK;
    int64_t hid = w->hidden;
    for (int i = 0; i < w->n_layers; i++) {
        avo_arena_mark mk = avo_arena_get_mark(a);
        avo_tensor in = {0}, rs = {0};
        TRY(vits_conv_run(be, a, &w->in_layers[i], h, &in, err));
        if (gc) {
            avo_tensor gs = avo_tensor_rows(gc, 2 * hid * i, 2 * hid);
            TRY(avo_op_add(be, a, &in, &gs, &in, err));
        }
        avo_tensor ta = avo_tensor_rows(&in, 0, hid), sa = avo_tensor_rows(&in, hid, hid);
        TRY(avo_op_act(be, a, &ta, AVO_ACT_TANH, 0.0f, &ta, err));
        TRY(avo_op_act(be, a, &sa, AVO_ACT_SIGMOID, 0.0f, &sa, err));
        TRY(avo_op_mul(be, a, &ta, &sa, &ta, err));
        TRY(vits_conv_run(be, a, &w->res_skip[i], &ta, &rs, err));
        avo_tensor skip = rs;
        if (i < w->n_layers - 1) {
            avo_tensor res = avo_tensor_rows(&rs, 0, hid);
            skip = avo_tensor_rows(&rs, hid, hid);
            TRY(avo_op_add(be, a, h, &res, h, err));
        }
        if (i == 0)
            TRY(avo_op_copy(be, a, &skip, out, err));
        else
            TRY(avo_op_add(be, a, out, &skip, out, err));
        avo_arena_rewind(a, mk);
    }
done:
    return st;
}

avo_status vits_flow_load(const vits_loader *l, const char *prefix, int dilation_rate, vits_flow *f, avo_error *err) {
    memset(f, 0, sizeof *f);
    char m[256];
    for (;; f->n_flows++) {
        snprintf(m, sizeof m, "%s.flows.%d.pre.weight", prefix, 2 * f->n_flows);
        if (!vits_has(l, m)) break;
    }
    if (f->n_flows == 0) {
        char key[512];
        key_of(l, prefix, key, sizeof key);
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: no '%s.flows.0.pre.weight': not a VITS flow", l->file, key);
    }
    const avo_ckpt_tensor *t;
    snprintf(m, sizeof m, "%s.flows.0.pre", prefix);
    avo_status st = need_weight(l, m, 3, &t, err);
    if (st) return st;
    int64_t hidden = t->shape[0], half = t->shape[1];
    f->channels = (int)(2 * half);
    snprintf(m, sizeof m, "%s.flows.0.post", prefix);
    st = need_weight(l, m, 3, &t, err);
    if (st) return st;
    if (t->shape[0] != half)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED,
                             "%s: flow post layer has %lld outputs for %lld channels; only mean-only couplings are supported",
                             l->file, (long long)t->shape[0], (long long)half);
    f->layers = calloc((size_t)f->n_flows, sizeof *f->layers);
    if (!f->layers) return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", l->file);
    for (int i = 0; i < f->n_flows && !st; i++) {
        vits_coupling *c = &f->layers[i];
        /* The reverse pass meets flows[2i+1] (a flip) n_flows - i times before coupling i. */
        c->flipped = (f->n_flows - i) % 2 == 1;
        conv_rewrite pre_rw = {.rev_in = c->flipped}, post_rw = {.w_scale = -1.0f, .b_scale = -1.0f, .rev_out = c->flipped};
        snprintf(m, sizeof m, "%s.flows.%d.pre", prefix, 2 * i);
        st = conv_load_rw(l, m, hidden, half, 1, true, (avo_conv1d_params){0}, &pre_rw, &c->pre, err);
        snprintf(m, sizeof m, "%s.flows.%d.enc", prefix, 2 * i);
        if (!st) st = wn_load(l, m, (int)hidden, dilation_rate, &c->wn, err);
        snprintf(m, sizeof m, "%s.flows.%d.post", prefix, 2 * i);
        if (!st) st = conv_load_rw(l, m, half, hidden, 1, true, (avo_conv1d_params){0}, &post_rw, &c->post, err);
        if (!st && i > 0 && c->wn.gin != f->layers[0].wn.gin)
            st = avo_error_set(err, AVO_ERR_FORMAT, "%s: flows disagree on the conditioning size", l->file);
    }
    f->final_flip = f->n_flows % 2 == 1;
    if (!st && f->final_flip) {
        int64_t C = f->channels, shape[3] = {C, C, 1};
        float *w = calloc((size_t)(C * C), sizeof(float));
        if (!w) st = avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", l->file);
        for (int64_t o = 0; w && o < C; o++) w[o * C + (C - 1 - o)] = 1.0f;
        if (!st) st = avo_tensor_from_host(l->a, 3, shape, w, &f->flip.w, err);
        free(w);
    }
    if (st) vits_flow_free(f);
    return st;
}

void vits_flow_free(vits_flow *f) {
    if (!f) return;
    for (int i = 0; f->layers && i < f->n_flows; i++) wn_free(&f->layers[i].wn);
    free(f->layers);
    f->layers = NULL;
}

avo_status vits_flow_reverse(avo_backend *be, avo_arena *a, const vits_flow *f, const avo_tensor *x,
                             const avo_tensor *g, avo_tensor *out, avo_error *err) {
    if (x->ndim != 2 || x->shape[0] != f->channels)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "flow: input must be [%d, T]", f->channels);
    int gin = f->layers[0].wn.gin;
    if (gin > 0 && (!g || avo_tensor_numel(g) != gin))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "flow: needs a [%d, 1] speaker embedding", gin);
    avo_status st = avo_tensor_new(a, AVO_DTYPE_F32, 2, x->shape, out, err);
    if (st) return st;
    TRY(avo_op_copy(be, a, x, out, err));
    int64_t half = f->channels / 2, T = x->shape[1];
    avo_tensor g2 = {0};
    if (gin > 0) {
        int64_t gs[2] = {gin, 1};
        TRY(avo_tensor_reshape(g, 2, gs, &g2, err));
    }
    for (int i = f->n_flows - 1; i >= 0; i--) {
        const vits_coupling *c = &f->layers[i];
        avo_arena_mark mk = avo_arena_get_mark(a);
        /* In stored orientation a flipped coupling reads the upper half and updates the lower one. */
        avo_tensor src = avo_tensor_rows(out, c->flipped ? half : 0, half);
        avo_tensor dst = avo_tensor_rows(out, c->flipped ? 0 : half, half);
        avo_tensor h = {0}, gc = {0}, hw = {0}, m = {0};
        TRY(vits_conv_run(be, a, &c->pre, &src, &h, err));
        if (c->wn.cond.w.data) TRY(vits_conv_run(be, a, &c->wn.cond, &g2, &gc, err));
        int64_t hs[2] = {c->wn.hidden, T};
        TRY(avo_tensor_new(a, AVO_DTYPE_F32, 2, hs, &hw, err));
        TRY(wn_forward(be, a, &c->wn, &h, c->wn.cond.w.data ? &gc : NULL, &hw, err));
        TRY(vits_conv_run(be, a, &c->post, &hw, &m, err)); /* post is negated: dst + m = x1 - post(h) */
        TRY(avo_op_add(be, a, &dst, &m, &dst, err));
        avo_arena_rewind(a, mk);
    }
    if (f->final_flip) {
        avo_arena_mark mk = avo_arena_get_mark(a);
        avo_tensor fl = {0};
        TRY(vits_conv_run(be, a, &f->flip, out, &fl, err));
        TRY(avo_op_copy(be, a, &fl, out, err));
        avo_arena_rewind(a, mk);
    }
done:
    return st;
}

/* ---- generator -------------------------------------------------------------------------------- */

static avo_status resblock_load(const vits_loader *l, const char *prefix, int type, int n_dil, const int *dil,
                                int64_t ch, vits_resblock *r, avo_error *err) {
    memset(r, 0, sizeof *r);
    char m[400];
    const avo_ckpt_tensor *t;
    snprintf(m, sizeof m, type == 1 ? "%s.convs1.0" : "%s.convs.0", prefix);
    avo_status st = need_weight(l, m, 3, &t, err);
    if (st) return st;
    r->kernel = (int)t->shape[2];
    r->n = n_dil;
    if (r->kernel % 2 == 0)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: resblock kernel %d is even; only odd kernels are supported", l->file,
                             r->kernel);
    snprintf(m, sizeof m, type == 1 ? "%s.convs1.%d.weight" : "%s.convs.%d.weight", prefix, n_dil);
    if (vits_has(l, m))
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: %s has more convolutions than the config's %d dilations", l->file, prefix,
                             n_dil);
    for (int d = 0; d < n_dil && !st; d++) {
        r->dil[d] = dil[d];
        if (dil[d] <= 0) return avo_error_set(err, AVO_ERR_FORMAT, "%s: dilation %d in the config", l->file, dil[d]);
        avo_conv1d_params p1 = {.dilation = dil[d], .padding = (r->kernel * dil[d] - dil[d]) / 2};
        avo_conv1d_params p2 = {.padding = (r->kernel - 1) / 2};
        snprintf(m, sizeof m, type == 1 ? "%s.convs1.%d" : "%s.convs.%d", prefix, d);
        st = vits_conv_load(l, m, ch, ch, r->kernel, true, p1, &r->c1[d], err);
        if (!st && type == 1) {
            snprintf(m, sizeof m, "%s.convs2.%d", prefix, d);
            st = vits_conv_load(l, m, ch, ch, r->kernel, true, p2, &r->c2[d], err);
        }
    }
    return st;
}

/* One side of the receptive field of a resblock, in samples of its stage. */
static int resblock_reach(const vits_resblock *r, int type) {
    int half = (r->kernel - 1) / 2, s = 0;
    for (int d = 0; d < r->n; d++) s += half * r->dil[d] + (type == 1 ? half : 0);
    return s;
}

avo_status vits_generator_load(const vits_loader *l, const char *prefix, const vits_generator_config *cfg,
                               vits_generator *gen, avo_error *err) {
    memset(gen, 0, sizeof *gen);
    gen->cfg = *cfg;
    if (cfg->resblock != 1 && cfg->resblock != 2)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: resblock type %d (only 1 and 2 exist)", l->file, cfg->resblock);
    if (cfg->n_ups < 1 || cfg->n_ups > VITS_MAX_UPS || cfg->n_kernels < 1 || cfg->n_kernels > VITS_MAX_KERNELS ||
        cfg->n_dilations < 1 || cfg->n_dilations > VITS_MAX_DILATIONS)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED,
                             "%s: generator with %d upsampling stages, %d resblocks of %d dilations is outside the supported "
                             "1..%d, 1..%d, 1..%d",
                             l->file, cfg->n_ups, cfg->n_kernels, cfg->n_dilations, VITS_MAX_UPS, VITS_MAX_KERNELS,
                             VITS_MAX_DILATIONS);
    char m[256];
    const avo_ckpt_tensor *t;
    snprintf(m, sizeof m, "%s.conv_pre", prefix);
    avo_status st = need_weight(l, m, 3, &t, err);
    if (st) return st;
    gen->initial_channels = (int)t->shape[0];
    gen->in_channels = (int)t->shape[1];
    int kpre = (int)t->shape[2];
    if (kpre % 2 == 0) return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: conv_pre kernel %d is even", l->file, kpre);
    st = vits_conv_load(l, m, gen->initial_channels, gen->in_channels, kpre, true,
                        (avo_conv1d_params){.padding = (kpre - 1) / 2}, &gen->pre, err);
    if (st) return st;
    snprintf(m, sizeof m, "%s.cond", prefix);
    t = weight_shape(l, m);
    if (t) {
        if (t->ndim != 3) return avo_error_set(err, AVO_ERR_FORMAT, "%s: %s.weight must be 3-D", l->file, m);
        gen->gin = (int)t->shape[1];
        st = vits_conv_load(l, m, gen->initial_channels, gen->gin, 1, true, (avo_conv1d_params){0}, &gen->cond, err);
        if (st) return st;
    }
    double reach = (kpre - 1) / 2.0; /* frames */
    int64_t ch = gen->initial_channels;
    double rate = 1.0; /* samples per frame before this stage */
    float mean_scale = 1.0f / (float)cfg->n_kernels;
    int64_t upp = 1;
    for (int i = 0; i < cfg->n_ups; i++) {
        upp *= cfg->up_rates[i] > 0 ? cfg->up_rates[i] : 1;
        if (upp > 1 << 16) return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: upsampling by more than 65536", l->file);
    }
    gen->upp = (int)upp;
    int src_stride = gen->upp;
    for (int i = 0; i < cfg->n_ups && !st; i++) {
        vits_gen_stage *s = &gen->stage[i];
        int u = cfg->up_rates[i];
        if (u <= 0) return avo_error_set(err, AVO_ERR_FORMAT, "%s: upsample rate %d in the config", l->file, u);
        s->rate = u;
        snprintf(m, sizeof m, "%s.ups.%d", prefix, i);
        st = need_weight(l, m, 3, &t, err);
        if (st) return st;
        if (t->shape[0] != ch)
            return avo_error_set(err, AVO_ERR_FORMAT, "%s: %s has %lld input channels, the previous stage gives %lld", l->file, m,
                                 (long long)t->shape[0], (long long)ch);
        s->channels = (int)t->shape[1];
        s->up_kernel = (int)t->shape[2];
        if (s->up_kernel < u || (s->up_kernel - u) % 2)
            return avo_error_set(err, AVO_ERR_UNSUPPORTED,
                                 "%s: upsampling kernel %d with stride %d (kernel - stride must be even and >= 0)", l->file,
                                 s->up_kernel, u);
        /* ConvTranspose1d weights [cin, cout, K]: the previous stage's resblock mean folds in here */
        conv_rewrite rw = {.w_scale = i > 0 ? mean_scale : 1.0f, .transposed = true};
        st = conv_load_rw(l, m, ch, s->channels, s->up_kernel, true, (avo_conv1d_params){0}, &rw, &s->up, err);
        if (st) return st;
        s->up.p.stride = u;
        s->up.p.padding = (s->up_kernel - u) / 2;
        src_stride /= u;
        s->src_stride = src_stride;
        if (cfg->nsf) {
            snprintf(m, sizeof m, "%s.noise_convs.%d", prefix, i);
            if (avo_engine_replaying(l->ec)) {
                st = engine_pair(l, m, false, &s->noise.w, &s->noise.b, err);
                if (st) return st;
                goto noise_done;
            }
            host_tensor w = {0}, b = {0};
            int kn = src_stride > 1 ? 2 * src_stride : 1;
            if (src_stride > 1 && src_stride % 2)
                return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: odd source stride %d at stage %d (upstream needs it even)",
                                     l->file, src_stride, i);
            st = read_weight(l, m, &w, err);
            int64_t want[3] = {s->channels, 1, kn};
            char name[420];
            snprintf(name, sizeof name, "%s.weight", m);
            if (!st) st = check_shape(l, name, &w, 3, want, err);
            snprintf(name, sizeof name, "%s.bias", m);
            if (!st) st = read_tensor(l, name, &b, err);
            if (!st) st = check_shape(l, name, &b, 1, want, err);
            if (!st && src_stride > 1) { /* [C, 1, 2s] -> [C, s, 2]: w2[o, c, j] = w[o, 0, j*s + c] */
                float *w2 = malloc((size_t)host_numel(&w) * sizeof(float));
                if (!w2) st = avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", l->file);
                for (int64_t o = 0; w2 && o < s->channels; o++)
                    for (int c = 0; c < src_stride; c++)
                        for (int j = 0; j < 2; j++)
                            w2[(o * src_stride + c) * 2 + j] = w.d[o * kn + j * src_stride + c];
                if (w2) {
                    free(w.d);
                    w.d = w2;
                    w.shape[1] = src_stride;
                    w.shape[2] = 2;
                }
            }
            if (!st) st = upload(l, &w, &s->noise.w, err);
            if (!st) st = upload(l, &b, &s->noise.b, err);
            if (!st) st = engine_pair(l, m, true, &s->noise.w, &s->noise.b, err);
            host_free(&w);
            host_free(&b);
            if (st) return st;
        }
    noise_done:
        for (int j = 0; j < cfg->n_kernels && !st; j++) {
            snprintf(m, sizeof m, "%s.resblocks.%d", prefix, i * cfg->n_kernels + j);
            st = resblock_load(l, m, cfg->resblock, cfg->n_dilations, cfg->dilations[j], s->channels, &s->rb[j], err);
        }
        if (st) return st;
        /* receptive field, in frames: output sample n of the transposed conv reads inputs within
         * max(K-1-pad, pad)/u input samples of n/u; the source conv is exact except within 2 samples
         * of a chunk edge; the resblocks add their reach */
        double up_reach = (s->up_kernel - 1 - s->up.p.padding > s->up.p.padding ? s->up_kernel - 1 - s->up.p.padding
                                                                                   : s->up.p.padding) /
                              (double)u +
                          1.0;
        reach += up_reach / rate;
        rate *= u;
        int rb = 0;
        for (int j = 0; j < cfg->n_kernels; j++) {
            int r = resblock_reach(&s->rb[j], cfg->resblock);
            rb = r > rb ? r : rb;
        }
        reach += (rb + (cfg->nsf ? 2 : 0)) / rate;
        ch = s->channels;
    }
    snprintf(m, sizeof m, "%s.resblocks.%d.%s", prefix, cfg->n_ups * cfg->n_kernels, cfg->resblock == 1 ? "convs1.0.weight" : "convs.0.weight");
    if (!st && vits_has(l, m))
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: more resblocks than the config's %d stages x %d kernels", l->file,
                             cfg->n_ups, cfg->n_kernels);
    snprintf(m, sizeof m, "%s.conv_post", prefix);
    if (!st) st = need_weight(l, m, 3, &t, err);
    if (st) return st;
    int kpost = (int)t->shape[2];
    if (kpost % 2 == 0) return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: conv_post kernel %d is even", l->file, kpost);
    char bname[420];
    snprintf(bname, sizeof bname, "%s.bias", m);
    conv_rewrite rw = {.w_scale = mean_scale};
    st = conv_load_rw(l, m, 1, ch, kpost, vits_find(l, bname) != NULL, (avo_conv1d_params){.padding = (kpost - 1) / 2}, &rw,
                      &gen->post, err);
    reach += (kpost - 1) / 2.0 / rate;
    gen->margin = (int)ceil(reach) + 1;
    return st;
}

void vits_generator_free(vits_generator *gen) { (void)gen; }

/* A view of shape [c, t] over the start of buffer buf (which holds at least c * t floats). */
static avo_tensor view2(const avo_tensor *buf, int64_t c, int64_t t) {
    int64_t s[2] = {c, t};
    return avo_tensor_view(AVO_DTYPE_F32, 2, s, buf->data);
}

/* out = conv(leaky_relu(x, slope)) + bias + res (res may be NULL): one fused pass. */
static avo_status conv_lrelu(avo_backend *be, avo_arena *a, const vits_conv *c, const avo_tensor *x, float slope,
                             const avo_tensor *res, avo_tensor *out, avo_error *err) {
    avo_conv1d_fuse f = {.input_leaky_relu = true, .slope = slope, .residual = res};
    return avo_op_conv1d_fused(be, a, x, &c->w, c->b.data ? &c->b : NULL, &c->p, &f, out, err);
}

/* One chunk: xc [in_channels, n] -> y [1, n * upp] (tanh applied). src: the chunk's n * upp source
 * samples (NULL without NSF); host scratch holds at least n * upp + 2 * upp floats. */
static avo_status generator_chunk(avo_backend *be, avo_arena *a, const vits_generator *gen, const avo_tensor *xc,
                                  const avo_tensor *gcond, const float *src, float *host, avo_tensor *y, avo_error *err) {
    avo_status st = AVO_OK;
    int64_t n = xc->shape[1], len = n, maxf = (int64_t)gen->initial_channels * n;
    for (int i = 0; i < gen->cfg.n_ups; i++) {
        len *= gen->stage[i].rate;
        int64_t f = (int64_t)gen->stage[i].channels * len;
        maxf = f > maxf ? f : maxf;
    }
    /* xin in P, the resblock sum in Q; R, T, U are resblock work buffers */
    avo_tensor P = {0}, Q = {0}, R = {0}, Tb = {0}, U = {0}, h = {0};
    TRY(avo_tensor_new(a, AVO_DTYPE_F32, 1, &maxf, &P, err));
    TRY(avo_tensor_new(a, AVO_DTYPE_F32, 1, &maxf, &Q, err));
    TRY(avo_tensor_new(a, AVO_DTYPE_F32, 1, &maxf, &R, err));
    TRY(avo_tensor_new(a, AVO_DTYPE_F32, 1, &maxf, &Tb, err));
    TRY(avo_tensor_new(a, AVO_DTYPE_F32, 1, &maxf, &U, err));
    h = view2(&Q, gen->initial_channels, n);
    TRY(vits_conv_run(be, a, &gen->pre, xc, &h, err));
    if (gcond) TRY(avo_op_add(be, a, &h, gcond, &h, err));
    len = n;
    int64_t ch = gen->initial_channels;
    for (int i = 0; i < gen->cfg.n_ups; i++) {
        const vits_gen_stage *s = &gen->stage[i];
        avo_tensor acc_prev = view2(&Q, ch, len);
        TRY(avo_op_act(be, a, &acc_prev, AVO_ACT_LEAKY_RELU, LRELU_SLOPE, &acc_prev, err));
        len *= s->rate;
        ch = s->channels;
        avo_tensor xin = view2(&P, ch, len);
        avo_conv_transpose1d_params up = {.stride = s->up.p.stride, .padding = s->up.p.padding};
        TRY(avo_op_conv_transpose1d(be, a, &acc_prev, &s->up.w, &s->up.b, &up, &xin, err));
        if (src) {
            avo_arena_mark mk = avo_arena_get_mark(a);
            int64_t ss = s->src_stride, total = n * gen->upp, nf;
            avo_tensor sx = {0}, nz = view2(&R, ch, len);
            if (ss > 1) { /* host layout [s, total/s + 1] of the source padded by s/2 zeros on both sides */
                nf = total / ss + 1;
                for (int64_t c = 0; c < ss; c++)
                    for (int64_t q = 0; q < nf; q++) {
                        int64_t idx = q * ss + c - ss / 2;
                        host[c * nf + q] = idx >= 0 && idx < total ? src[idx] : 0.0f;
                    }
                int64_t shp[2] = {ss, nf};
                TRY(avo_tensor_from_host(a, 2, shp, host, &sx, err));
            } else {
                int64_t shp[2] = {1, total};
                TRY(avo_tensor_from_host(a, 2, shp, src, &sx, err));
            }
            TRY(vits_conv_run(be, a, &s->noise, &sx, &nz, err));
            TRY(avo_op_add(be, a, &xin, &nz, &xin, err));
            avo_arena_rewind(a, mk);
        }
        avo_tensor acc = view2(&Q, ch, len), r = view2(&R, ch, len), tb = view2(&Tb, ch, len), u = view2(&U, ch, len);
        for (int j = 0; j < gen->cfg.n_kernels; j++) {
            const vits_resblock *rb = &s->rb[j];
            /* Each dilation computes x + conv2(lrelu(conv1(lrelu(x)))) (ResBlock2: x + conv1(lrelu(x))) with
             * the activations and the add fused into the convolutions. The fused op cannot write over its
             * residual x, so the steps alternate between two buffers, chosen so that the first resblock's
             * chain ends in acc (the stage's sum) and the others' in r or tb, which is then added to it. */
            avo_tensor *bufs[2] = {j == 0 ? &acc : &r, j == 0 ? &r : &tb};
            const avo_tensor *cur = &xin;
            for (int d = 0; d < rb->n; d++) {
                avo_tensor *dst = bufs[(rb->n - 1 - d) % 2];
                if (gen->cfg.resblock == 1) {
                    TRY(conv_lrelu(be, a, &rb->c1[d], cur, LRELU_SLOPE, NULL, &u, err));
                    TRY(conv_lrelu(be, a, &rb->c2[d], &u, LRELU_SLOPE, cur, dst, err));
                } else {
                    TRY(conv_lrelu(be, a, &rb->c1[d], cur, LRELU_SLOPE, cur, dst, err));
                }
                cur = dst;
            }
            if (j > 0) TRY(avo_op_add(be, a, &acc, cur, &acc, err));
        }
    }
    {
        avo_tensor acc = view2(&Q, ch, len);
        avo_tensor out = view2(&P, 1, len);
        /* torch's default slope 0.01 before conv_post, as upstream */
        TRY(conv_lrelu(be, a, &gen->post, &acc, 0.01f, NULL, &out, err));
        TRY(avo_op_act(be, a, &out, AVO_ACT_TANH, 0.0f, &out, err));
        *y = out;
    }
done:
    return st;
}

#define VITS_CPU_CHUNK_FRAMES 1024
#define VITS_MAX_WORKERS 64
#define VITS_MIN_WORKER_FRAMES 64 /* frames per worker below which the margins cost more than workers gain */

/* What every chunk reads: the input by rows (xt, [T, C]) or whole (x), the speaker term, the source. */
typedef struct gen_chunks {
    const vits_generator *gen;
    const avo_tensor *x, *xt, *gcond;
    const float *source;
    int64_t T, chunk, margin;
    float *audio;
} gen_chunks;

/* Chunk ci of the plan: frames [s, e) of the output from frames [f0, f0 + n) of the input. */
static avo_status run_chunk(avo_backend *be, avo_arena *a, const gen_chunks *p, int64_t ci, float *host,
                            avo_error *err) {
    const int64_t upp = p->gen->upp, s = ci * p->chunk, e = s + p->chunk < p->T ? s + p->chunk : p->T;
    const int64_t f0 = s - p->margin > 0 ? s - p->margin : 0, f1 = e + p->margin < p->T ? e + p->margin : p->T,
                  n = f1 - f0;
    avo_arena_mark mk = avo_arena_get_mark(a);
    avo_status st = AVO_OK;
    avo_tensor xc = *p->x, y = {0}, yc = {0};
    if (p->xt) {
        avo_tensor rows = avo_tensor_rows(p->xt, f0, n);
        xc = (avo_tensor){0};
        TRY(avo_op_transpose(be, a, &rows, &xc, err));
    }
    TRY(generator_chunk(be, a, p->gen, &xc, p->gcond, p->source ? p->source + f0 * upp : NULL, host, &y, err));
    int64_t col[2] = {n * upp, 1};
    TRY(avo_tensor_reshape(&y, 2, col, &yc, err));
    avo_tensor part = avo_tensor_rows(&yc, (s - f0) * upp, (e - s) * upp);
    TRY(avo_tensor_to_host(a, &part, p->audio + s * upp, (e - s) * upp, err));
done:
    avo_arena_rewind(a, mk);
    return st;
}

/* Bytes a chunk of n input frames takes from the arena: generator_chunk's five stage buffers plus the
 * convolutions' scratch (the FFT path's packed weights and spectra: tens of MB at 256 channels). */
static size_t chunk_arena_bytes(const vits_generator *gen, int64_t n) {
    int64_t len = n, maxf = (int64_t)gen->initial_channels * n;
    for (int i = 0; i < gen->cfg.n_ups; i++) {
        len *= gen->stage[i].rate;
        int64_t f = (int64_t)gen->stage[i].channels * len;
        maxf = f > maxf ? f : maxf;
    }
    return (size_t)(5 * maxf + 2 * (int64_t)gen->in_channels * n) * sizeof(float) + ((size_t)80 << 20);
}

/* The chunks over nw CPU workers, each a single-threaded back end with its own arena (carved from a,
 * so the memory the content encoder used is reused) that takes chunks w, w + nw, ...: no barrier
 * inside an op and each core on its own data. RVC v2 40k, 3000 frames, 750-frame chunks: two
 * single-threaded workers 5.3-5.6 s against 7.1 s for one two-threaded back end (this 2-core VM).
 * Returns AVO_ERR_UNSUPPORTED untouched when workers cannot be made (the caller runs serially). */
static avo_status run_chunks_parallel(avo_backend *be, avo_arena *a, const gen_chunks *p, int64_t nchunks, int nw,
                                      avo_error *err) {
    avo_backend *wb[VITS_MAX_WORKERS] = {0};
    avo_arena *wa[VITS_MAX_WORKERS] = {0};
    float *host[VITS_MAX_WORKERS] = {0};
    avo_error werr[VITS_MAX_WORKERS];
    avo_status wst[VITS_MAX_WORKERS] = {0}, st = AVO_OK;
    const size_t bytes = chunk_arena_bytes(p->gen, p->chunk + 2 * p->margin);
    for (int w = 0; w < nw && !st; w++) {
        st = avo_backend_cpu_worker(be, 1, &wb[w], err);
        if (!st) st = avo_arena_create_within(a, wb[w], bytes, &wa[w], err);
        if (!st && !(host[w] = malloc((size_t)((p->chunk + 2 * p->margin + 2) * p->gen->upp) * sizeof(float))))
            st = avo_error_set(err, AVO_ERR_NO_MEMORY, "generator: out of memory");
    }
    if (!st) {
#pragma omp parallel num_threads(nw)
        {
            int w = omp_get_thread_num();
            for (int64_t ci = w; ci < nchunks && !wst[w]; ci += nw) wst[w] = run_chunk(wb[w], wa[w], p, ci, host[w], &werr[w]);
        }
        for (int w = 0; w < nw && !st; w++)
            if (wst[w]) {
                *err = werr[w];
                st = wst[w];
            }
    }
    for (int w = 0; w < nw; w++) {
        if (wb[w]) avo_backend_cpu_worker_merge(be, wb[w]);
        avo_arena_free(wa[w]);
        avo_backend_free(wb[w]);
        free(host[w]);
    }
    return st;
}

avo_status vits_generator_run(avo_backend *be, avo_arena *a, const vits_generator *gen, const avo_tensor *x,
                              const avo_tensor *g, const float *source, int64_t chunk_frames, float *audio,
                              avo_error *err) {
    if (!x || x->ndim != 2 || x->shape[0] != gen->in_channels || x->shape[1] < 1)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "generator: input must be [%d, T >= 1]", gen->in_channels);
    if (gen->cfg.nsf && !source)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "generator: an NSF generator needs its source signal");
    if (gen->cond.w.data && (!g || avo_tensor_numel(g) != gen->gin))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "generator: needs a [%d, 1] speaker embedding", gen->gin);
    int64_t T = x->shape[1];
    /* Chunks bound a CPU's working set; a GPU gains nothing from them and would pay a blocking copy and
     * the margins' recomputation per chunk, so it takes the whole segment at once. Each chunk also redoes
     * the FFT convolutions' weight transforms, so with the arena on huge pages longer chunks won: RVC v2
     * 40k, 3000 frames, 2 threads (bench_rvc --chunk), 512: 7.26-8.53 s (arena peak 188 MB), 1024:
     * 6.21-6.75 s (351 MB), 2048: 6.71 s (755 MB), whole: 6.55 s (948 MB). On a CPU with several
     * threads the chunks go to single-threaded workers (run_chunks_parallel), their count a multiple
     * of the workers' so that none idles at the end. */
    const bool cpu = avo_backend_host_memory(be);
    int nw = cpu ? avo_backend_threads(be) : 1;
    if (nw > VITS_MAX_WORKERS) nw = VITS_MAX_WORKERS;
    const bool asked = chunk_frames > 0; /* a caller's chunk of T or more means one pass, as before */
    if (!asked) chunk_frames = cpu ? VITS_CPU_CHUNK_FRAMES : T;
    if (chunk_frames >= T) chunk_frames = T;
    int64_t nchunks = (T + chunk_frames - 1) / chunk_frames;
    if (nw > 1 && (nchunks > 1 || (!asked && T >= (int64_t)nw * VITS_MIN_WORKER_FRAMES))) {
        nchunks = (nchunks + nw - 1) / nw * nw;
        chunk_frames = (T + nchunks - 1) / nchunks;
        nchunks = (T + chunk_frames - 1) / chunk_frames;
    } else {
        nw = 1;
    }
    gen_chunks p = {.gen = gen, .x = x, .source = source, .T = T, .chunk = chunk_frames,
                    .margin = chunk_frames >= T ? 0 : gen->margin, .audio = audio};
    avo_arena_mark mk0 = avo_arena_get_mark(a);
    avo_status st = AVO_OK;
    float *host = NULL;
    avo_tensor gcond = {0}, xt = {0};
    if (gen->cond.w.data) {
        int64_t gs[2] = {gen->gin, 1};
        avo_tensor g2 = {0};
        TRY(avo_tensor_reshape(g, 2, gs, &g2, err));
        TRY(vits_conv_run(be, a, &gen->cond, &g2, &gcond, err));
        p.gcond = &gcond;
    }
    if (p.margin > 0) {
        TRY(avo_op_transpose(be, a, x, &xt, err)); /* [T, C]: chunks are row ranges */
        p.xt = &xt;
    }
    if (nw > 1) {
        avo_error werr;
        st = run_chunks_parallel(be, a, &p, nchunks, nw, &werr);
        if (st != AVO_ERR_UNSUPPORTED) {
            if (st) *err = werr;
            goto done;
        }
        st = AVO_OK; /* no workers (a GEMM observer is watching): one back end, as below */
    }
    host = malloc((size_t)((chunk_frames + 2 * p.margin + 2) * gen->upp) * sizeof(float));
    if (!host) {
        st = avo_error_set(err, AVO_ERR_NO_MEMORY, "generator: out of memory");
        goto done;
    }
    for (int64_t ci = 0; ci < nchunks; ci++) TRY(run_chunk(be, a, &p, ci, host, err));
done:
    free(host);
    avo_arena_rewind(a, mk0);
    return st;
}

/* ---- RVC NSF source --------------------------------------------------------------------------- */

/* Frame of output sample n as torch's nearest upsampling by scale_factor upp finds it: floor(n * (float)(1 / upp))
 * in float, clamped to the last frame. */
static inline int64_t nsf_frame(int64_t n, float scale, int64_t frames) {
    int64_t i = (int64_t)floorf((float)n * scale);
    return i > frames - 1 ? frames - 1 : i;
}

static inline float nsf_rad(float f, float sr) {
    float rad = fmodf(f / sr, 1.0f); /* as SineGen: (f0 / sr) % 1 in float32 */
    return rad < 0.0f ? rad + 1.0f : rad;
}

#define NSF_BLOCK 16384

/* Two parallel passes over blocks of samples: the phase each block adds (its rads summed in double),
 * a short serial prefix over the blocks, then every sample from its block's starting phase. The phase
 * is only ever used modulo 1 (SineGen's wrap bookkeeping removes whole cycles), so the sums are kept
 * reduced. */
void vits_rvc_nsf_source(const float *f0, int64_t frames, int upp, int sample_rate, const float *noise, float lin_w,
                         float lin_b, float *out) {
    const float scale = (float)(1.0 / (double)upp);
    const float sr = (float)sample_rate, noise_uv = (float)(0.1 / 3.0);
    const int64_t total = frames * upp, blocks = (total + NSF_BLOCK - 1) / NSF_BLOCK;
    double *start = malloc(sizeof(double) * (size_t)(blocks + 1));
    if (!start) { /* fall back to one serial block */
        double phase = 0.0;
        for (int64_t n = 0; n < total; n++) {
            const float f = f0[nsf_frame(n, scale, frames)];
            phase += nsf_rad(f, sr);
            if (phase >= 1.0) phase -= floor(phase);
            float e = f > 0.0f ? (float)sin(2.0 * M_PI * phase) * 0.1f : 0.0f;
            if (noise) e += (f > 0.0f ? 0.003f : noise_uv) * noise[n];
            out[n] = tanhf(e * lin_w + lin_b);
        }
        return;
    }
#pragma omp parallel for schedule(static) if (blocks > 1)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t hi = (b + 1) * NSF_BLOCK < total ? (b + 1) * NSF_BLOCK : total;
        double sum = 0.0;
        for (int64_t n = b * NSF_BLOCK; n < hi; n++) sum += nsf_rad(f0[nsf_frame(n, scale, frames)], sr);
        start[b + 1] = sum - floor(sum);
    }
    start[0] = 0.0;
    for (int64_t b = 1; b <= blocks; b++) {
        start[b] += start[b - 1];
        start[b] -= floor(start[b]);
    }
#pragma omp parallel for schedule(static) if (blocks > 1)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t hi = (b + 1) * NSF_BLOCK < total ? (b + 1) * NSF_BLOCK : total;
        double phase = start[b];
        for (int64_t n = b * NSF_BLOCK; n < hi; n++) {
            const float f = f0[nsf_frame(n, scale, frames)];
            phase += nsf_rad(f, sr);
            if (phase >= 1.0) phase -= floor(phase);
            const bool voiced = f > 0.0f;
            float e = voiced ? (float)sin(2.0 * M_PI * phase) * 0.1f : 0.0f;
            if (noise) e += (voiced ? 0.003f : noise_uv) * noise[n];
            out[n] = tanhf(e * lin_w + lin_b);
        }
    }
    free(start);
}

/* ---- RNG ------------------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void vits_rng_seed(vits_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    r->has_spare = false;
    r->spare = 0.0;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro(vits_rng *r) {
    uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

#define RNG_BLOCK 65536

/* Box-Muller pairs in blocks of RNG_BLOCK draws, each block from its own xoshiro stream seeded from one
 * value of r, so blocks run in parallel and the result does not depend on the thread count. */
void vits_rng_normal(vits_rng *r, float *out, int64_t n) {
    const uint64_t base = xoshiro(r);
    const int64_t blocks = (n + RNG_BLOCK - 1) / RNG_BLOCK;
#pragma omp parallel for schedule(static) if (blocks > 1)
    for (int64_t b = 0; b < blocks; b++) {
        vits_rng br;
        vits_rng_seed(&br, base ^ (0x9E3779B97F4A7C15ull * (uint64_t)(b + 1)));
        const int64_t hi = (b + 1) * RNG_BLOCK < n ? (b + 1) * RNG_BLOCK : n;
        for (int64_t i = b * RNG_BLOCK; i < hi; i += 2) {
            const float u1 = ((float)(xoshiro(&br) >> 40) + 1.0f) * 0x1.0p-24f; /* (0, 1] */
            const float u2 = (float)(xoshiro(&br) >> 40) * 0x1.0p-24f;
            const float rad = sqrtf(-2.0f * logf(u1));
            out[i] = rad * cosf(2.0f * (float)M_PI * u2);
            if (i + 1 < hi) out[i + 1] = rad * sinf(2.0f * (float)M_PI * u2);
        }
    }
}
