/* HuBERT-base / ContentVec content encoder on the engine (see models.h). Activations stay in the
 * engine's [channels, time] layout; nn.Linear weights [out, in] are viewed as k=1 convolutions
 * [out, in, 1], so every projection is one GEMM and LayerNorm over channels is avo_op_layer_norm. */
#include "autovoice/models.h"

#include "autovoice/checkpoint.h"
#include "autovoice/engine_cache.h"
#include "autovoice/engine_cuda.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HB_CONV_LAYERS 7
#define HB_EPS 1e-5f

/* fairseq's "default" extractor: [(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2. Strides are not
 * stored in the state_dict, so the kernels read from it are checked against this table. */
static const int hb_kernel[HB_CONV_LAYERS] = {10, 3, 3, 3, 3, 2, 2};
static const int hb_stride[HB_CONV_LAYERS] = {5, 2, 2, 2, 2, 2, 2};

typedef struct hb_layer {
    avo_tensor wq, bq, wk, bk, wv, bv, wo, bo; /* projections as [out, in, 1] */
    avo_tensor ln1_g, ln1_b, w1, b1, w2, b2, ln2_g, ln2_b;
} hb_layer;

struct avo_hubert {
    avo_backend *be;
    avo_arena *weights; /* never reset */
    int feat, dim, heads, n_layers, final_dim, pos_kernel, pos_groups;
    avo_tensor conv_w[HB_CONV_LAYERS], gn_g, gn_b;
    avo_tensor ln_g, ln_b, proj_w, proj_b;
    avo_tensor pos_w, pos_b, enc_ln_g, enc_ln_b;
    avo_tensor fp_w, fp_b;
    hb_layer *layers;
};

/* ---- loading ------------------------------------------------------------------------------- */

typedef struct hb_loader {
    avo_ckpt *ckpt;
    avo_arena *a;
    const char *prefix; /* "model." for fairseq files, "" for a bare state_dict */
    const char *file;
    avo_engine_session *ec; /* engine cache: final weights taken from / recorded into it (NULL: none) */
} hb_loader;

static const avo_ckpt_tensor *hb_find(const hb_loader *l, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s%s", l->prefix, name);
    const avo_ckpt_value *v = avo_ckpt_lookup(l->ckpt, path);
    return v && avo_ckpt_value_kind(v) == AVO_CKPT_TENSOR ? avo_ckpt_value_tensor(v) : NULL;
}

/* Loads name; when want_ndim > 0 checks the rank and each want[i] >= 0. */
static avo_status hb_load(const hb_loader *l, const char *name, int want_ndim, const int64_t *want, avo_tensor *out,
                          avo_error *err) {
    char path[512];
    snprintf(path, sizeof path, "%s%s", l->prefix, name);
    const avo_ckpt_tensor *t = hb_find(l, name);
    if (!t)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: no tensor '%s': is it a HuBERT / ContentVec checkpoint?", l->file,
                             path);
    bool ok = want_ndim <= 0 || t->ndim == want_ndim;
    for (int i = 0; ok && i < want_ndim; i++) ok = want[i] < 0 || t->shape[i] == want[i];
    if (!ok)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: tensor '%s' has an unexpected shape (rank %d, first dim %lld)",
                             l->file, path, t->ndim, (long long)(t->ndim ? t->shape[0] : 0));
    avo_status st = avo_engine_tensor_load(l->ec, l->a, l->ckpt, path, out, err);
    return st ? avo_error_prefix(err, "%s", l->file) : AVO_OK;
}

static avo_status hb_load_vec(const hb_loader *l, const char *name, int64_t n, avo_tensor *out, avo_error *err) {
    return hb_load(l, name, 1, &n, out, err);
}

/* nn.Linear prefix.weight [out, in] (viewed as [out, in, 1]) and prefix.bias [out]. */
static avo_status hb_load_linear(const hb_loader *l, const char *prefix, int64_t out_dim, int64_t in_dim,
                                 avo_tensor *w, avo_tensor *b, avo_error *err) {
    char name[256];
    int64_t ws[2] = {out_dim, in_dim};
    avo_tensor w2;
    snprintf(name, sizeof name, "%s.weight", prefix);
    avo_status st = hb_load(l, name, 2, ws, &w2, err);
    int64_t s3[3] = {w2.shape[0], w2.shape[1], 1};
    if (!st) st = avo_tensor_reshape(&w2, 3, s3, w, err);
    snprintf(name, sizeof name, "%s.bias", prefix);
    if (!st) st = hb_load_vec(l, name, w2.shape[0], b, err);
    return st;
}

static avo_status hb_load_ln(const hb_loader *l, const char *prefix, int64_t n, avo_tensor *g, avo_tensor *b,
                             avo_error *err) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    avo_status st = hb_load_vec(l, name, n, g, err);
    snprintf(name, sizeof name, "%s.bias", prefix);
    return st ? st : hb_load_vec(l, name, n, b, err);
}

/* encoder.pos_conv.0 uses weight_norm(dim=2): w[o, i, k] = g[k] * v[o, i, k] / ||v[:, :, k]||,
 * which avo_tensor_load_weight (dim 0) does not cover. */
static avo_status hb_load_pos_conv(const hb_loader *l, avo_hubert *m, avo_error *err) {
    const avo_ckpt_tensor *w = hb_find(l, "encoder.pos_conv.0.weight");
    if (w) return hb_load(l, "encoder.pos_conv.0.weight", 3, (int64_t[]){m->dim, -1, -1}, &m->pos_w, err);
    const avo_ckpt_tensor *g = hb_find(l, "encoder.pos_conv.0.weight_g");
    const avo_ckpt_tensor *v = hb_find(l, "encoder.pos_conv.0.weight_v");
    if (!g || !v || v->ndim != 3 || v->shape[0] != m->dim || g->numel != v->shape[2])
        return avo_error_set(err, AVO_ERR_FORMAT,
                             "%s: encoder.pos_conv.0 needs weight, or weight_g [1, 1, K] with weight_v [%d, C/groups, K]",
                             l->file, m->dim);
    char key[512];
    snprintf(key, sizeof key, "%sencoder.pos_conv.0.weight", l->prefix);
    if (avo_engine_replaying(l->ec)) return avo_engine_take(l->ec, key, &m->pos_w, err);
    int64_t K = v->shape[2], rows = v->shape[0] * v->shape[1];
    float *gb = malloc((size_t)K * sizeof(float)), *vb = malloc((size_t)v->numel * sizeof(float));
    double *norm = calloc((size_t)K, sizeof(double));
    avo_status st = AVO_OK;
    if (!gb || !vb || !norm) st = avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory for pos_conv", l->file);
    if (!st) st = avo_ckpt_tensor_read_f32(l->ckpt, g, gb, K, err);
    if (!st) st = avo_ckpt_tensor_read_f32(l->ckpt, v, vb, v->numel, err);
    if (!st) {
        for (int64_t r = 0; r < rows; r++)
            for (int64_t k = 0; k < K; k++) norm[k] += (double)vb[r * K + k] * vb[r * K + k];
        for (int64_t k = 0; k < K; k++) norm[k] = norm[k] > 0 ? gb[k] / sqrt(norm[k]) : 0.0;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t k = 0; k < K; k++) vb[r * K + k] = (float)(vb[r * K + k] * norm[k]);
        st = avo_tensor_from_host(l->a, 3, v->shape, vb, &m->pos_w, err);
        if (!st) st = avo_engine_put(l->ec, key, &m->pos_w, err);
    }
    free(gb);
    free(vb);
    free(norm);
    return st;
}

/* Head count: fairseq stores it in cfg.model (hydra) or args (older Namespace); else dim / 64. */
static int hb_heads(avo_ckpt *ckpt, int dim) {
    static const char *const keys[] = {"cfg.model.encoder_attention_heads", "args.encoder_attention_heads"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int64_t h = 0;
        if (avo_ckpt_get_int(ckpt, keys[i], &h, NULL) == AVO_OK && h > 0 && dim % h == 0) return (int)h;
    }
    return dim % 64 == 0 ? dim / 64 : 1;
}

static avo_status hb_load_all(hb_loader *l, avo_hubert *m, avo_error *err) {
    avo_status st = AVO_OK;
    char name[256];
    const avo_ckpt_tensor *t;
    int64_t cin = 1;
    for (int i = 0; i < HB_CONV_LAYERS && !st; i++) {
        snprintf(name, sizeof name, "feature_extractor.conv_layers.%d.0.weight", i);
        t = hb_find(l, name);
        if (t && t->ndim == 3 && t->shape[2] != hb_kernel[i])
            return avo_error_set(err, AVO_ERR_UNSUPPORTED,
                                 "%s: conv layer %d has kernel %lld; only HuBERT base's extractor (kernels 10,3,3,3,3,2,2) "
                                 "is supported",
                                 l->file, i, (long long)t->shape[2]);
        st = hb_load(l, name, 3, (int64_t[]){-1, cin, hb_kernel[i]}, &m->conv_w[i], err);
        if (!st) cin = m->conv_w[i].shape[0];
    }
    if (st) return st;
    snprintf(name, sizeof name, "feature_extractor.conv_layers.%d.0.weight", HB_CONV_LAYERS);
    if (hb_find(l, name))
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: more than %d conv layers; not HuBERT base's extractor",
                             l->file, HB_CONV_LAYERS);
    m->feat = (int)cin;
    st = hb_load_ln(l, "feature_extractor.conv_layers.0.2", m->conv_w[0].shape[0], &m->gn_g, &m->gn_b, err);
    if (!st) st = hb_load_ln(l, "layer_norm", m->feat, &m->ln_g, &m->ln_b, err);
    if (st) return st;
    t = hb_find(l, "post_extract_proj.weight");
    if (!t || t->ndim != 2)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: no post_extract_proj.weight [dim, %d]", l->file, m->feat);
    m->dim = (int)t->shape[0];
    m->heads = hb_heads(l->ckpt, m->dim);
    st = hb_load_linear(l, "post_extract_proj", m->dim, m->feat, &m->proj_w, &m->proj_b, err);
    if (!st) st = hb_load_pos_conv(l, m, err);
    if (st) return st;
    m->pos_kernel = (int)m->pos_w.shape[2];
    m->pos_groups = (int)(m->dim / m->pos_w.shape[1]);
    if (m->pos_w.shape[1] * m->pos_groups != m->dim || m->pos_kernel % 2)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: encoder.pos_conv.0 weight [%d, %lld, %d] does not fit dim %d",
                             l->file, m->dim, (long long)m->pos_w.shape[1], m->pos_kernel, m->dim);
    st = hb_load_vec(l, "encoder.pos_conv.0.bias", m->dim, &m->pos_b, err);
    if (!st) st = hb_load_ln(l, "encoder.layer_norm", m->dim, &m->enc_ln_g, &m->enc_ln_b, err);
    if (st) return st;

    for (m->n_layers = 0;; m->n_layers++) {
        snprintf(name, sizeof name, "encoder.layers.%d.self_attn.q_proj.weight", m->n_layers);
        if (!hb_find(l, name)) break;
    }
    if (m->n_layers == 0) return avo_error_set(err, AVO_ERR_FORMAT, "%s: no encoder.layers.*", l->file);
    m->layers = calloc((size_t)m->n_layers, sizeof *m->layers);
    if (!m->layers) return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", l->file);
    for (int i = 0; i < m->n_layers && !st; i++) {
        hb_layer *L = &m->layers[i];
        char p[128];
        int64_t d = m->dim;
#define HB_LIN(field, wname, bname, o, in)                                                  \
    if (!st) {                                                                            \
        snprintf(p, sizeof p, "encoder.layers.%d.%s", i, field);                          \
        st = hb_load_linear(l, p, o, in, &L->wname, &L->bname, err);                      \
    }
        HB_LIN("self_attn.q_proj", wq, bq, d, d)
        HB_LIN("self_attn.k_proj", wk, bk, d, d)
        HB_LIN("self_attn.v_proj", wv, bv, d, d)
        HB_LIN("self_attn.out_proj", wo, bo, d, d)
        HB_LIN("fc1", w1, b1, -1, d)
        if (!st) {
            int64_t ffn = L->w1.shape[0];
            HB_LIN("fc2", w2, b2, d, ffn)
        }
#undef HB_LIN
        snprintf(p, sizeof p, "encoder.layers.%d.self_attn_layer_norm", i);
        if (!st) st = hb_load_ln(l, p, d, &L->ln1_g, &L->ln1_b, err);
        snprintf(p, sizeof p, "encoder.layers.%d.final_layer_norm", i);
        if (!st) st = hb_load_ln(l, p, d, &L->ln2_g, &L->ln2_b, err);
    }
    if (st) return st;
    t = hb_find(l, "final_proj.weight");
    if (t && t->ndim == 2) {
        m->final_dim = (int)t->shape[0];
        st = hb_load_linear(l, "final_proj", m->final_dim, m->dim, &m->fp_w, &m->fp_b, err);
    }
    return st;
}

static avo_status hb_load_file(const char *path, avo_backend *be, avo_engine_session *ec, avo_hubert **out,
                               avo_error *err) {
    if (!path || !be || !out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_hubert_load: NULL argument");
    *out = NULL;
    avo_hubert *m = calloc(1, sizeof *m);
    if (!m) return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", path);
    m->be = be;
    avo_ckpt *ckpt = NULL;
    avo_status st = avo_ckpt_open(path, &ckpt, err);
    if (!st) st = avo_arena_create(be, 1u << 20, &m->weights, err);
    if (!st) st = avo_engine_attach(ec, m->weights, err);
    if (!st) {
        const avo_ckpt_value *root = avo_ckpt_lookup(ckpt, "model");
        hb_loader l = {ckpt, m->weights, root && avo_ckpt_value_kind(root) == AVO_CKPT_DICT ? "model." : "", path, ec};
        st = hb_load_all(&l, m, err);
    }
    avo_ckpt_free(ckpt);
    if (st) {
        avo_hubert_free(m);
        return st;
    }
    *out = m;
    return AVO_OK;
}

avo_status avo_hubert_load(const char *path, avo_backend *be, avo_hubert **out, avo_error *err) {
    return hb_load_file(path, be, NULL, out, err);
}

/* avo_hubert_load_cached (engine_cache.h): the load above, run by the engine cache */
typedef struct hb_args {
    const char *path;
    avo_backend *be;
    avo_hubert **out;
} hb_args;

static avo_status hb_load_cb(void *u, avo_engine_session *s, avo_error *err) {
    hb_args *a = u;
    return hb_load_file(a->path, a->be, s, a->out, err);
}

static void hb_unload_cb(void *u) {
    hb_args *a = u;
    avo_hubert_free(*a->out);
    *a->out = NULL;
}

avo_status avo_hubert_load_cached(const char *path, avo_backend *be, const avo_engine_request *req, avo_hubert **out,
                                  avo_engine_result *res, avo_error *err) {
    if (!out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_hubert_load_cached: NULL argument");
    hb_args a = {path, be, out};
    return avo_engine_load(req, path, NULL, "hubert/1", be, hb_load_cb, hb_unload_cb, &a, res, err);
}

void avo_hubert_free(avo_hubert *m) {
    if (!m) return;
    avo_arena_free(m->weights);
    free(m->layers);
    free(m);
}

int avo_hubert_dim(const avo_hubert *m) { return m ? m->dim : 0; }
int avo_hubert_layers(const avo_hubert *m) { return m ? m->n_layers : 0; }
int avo_hubert_final_dim(const avo_hubert *m) { return m ? m->final_dim : 0; }

/* ---- inference ----------------------------------------------------------------------------- */

static avo_status hb_linear(avo_hubert *m, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                            const avo_tensor *b, avo_tensor *out, avo_error *err) {
    avo_conv1d_params p = {1, 0, 1, 1};
    out->data = NULL;
    return avo_op_conv1d(m->be, a, x, w, b, &p, out, err);
}

static avo_status hb_norm(avo_hubert *m, avo_arena *a, const avo_tensor *x, const avo_tensor *g,
                          const avo_tensor *b, avo_tensor *out, avo_error *err) {
    out->data = NULL;
    return avo_op_layer_norm(m->be, a, x, g, b, HB_EPS, out, err);
}

/* x [D, T] += pos [D, T + 1] without its last frame (fairseq's SamePad for an even kernel). Through
 * two transposes, so that it runs on any back end: the first T rows of pos^T are the frames to add. */
static avo_status hb_add_same_pad(avo_hubert *m, avo_arena *a, avo_tensor *x, const avo_tensor *pos, avo_error *err) {
    avo_tensor pt = {0}, back = {0};
    avo_status st = avo_op_transpose(m->be, a, pos, &pt, err); /* [T + 1, D] */
    avo_tensor rows = avo_tensor_rows(&pt, 0, x->shape[1]);   /* [T, D] */
    if (!st) st = avo_op_transpose(m->be, a, &rows, &back, err);
    if (!st) st = avo_op_add(m->be, a, x, &back, x, err);
    return st;
}

/* One post-LN transformer layer: x [D, T] -> result (new tensor). */
static avo_status hb_layer_run(avo_hubert *m, avo_arena *a, const hb_layer *L, const avo_tensor *x, avo_tensor *out,
                               avo_error *err) {
    avo_tensor q, k, v, att = {0}, o, y, h, f;
    avo_status st = hb_linear(m, a, x, &L->wq, &L->bq, &q, err);
    if (!st) st = hb_linear(m, a, x, &L->wk, &L->bk, &k, err);
    if (!st) st = hb_linear(m, a, x, &L->wv, &L->bv, &v, err);
    /* window 0: plain scaled dot-product attention, q scaled by head_dim^-0.5 after its bias */
    if (!st) st = avo_op_rel_attention(m->be, a, &q, &k, &v, NULL, NULL, m->heads, 0, &att, err);
    if (!st) st = hb_linear(m, a, &att, &L->wo, &L->bo, &o, err);
    if (!st) st = avo_op_add(m->be, a, &o, x, &o, err);
    if (!st) st = hb_norm(m, a, &o, &L->ln1_g, &L->ln1_b, &y, err);
    if (!st) st = hb_linear(m, a, &y, &L->w1, &L->b1, &h, err);
    if (!st) st = avo_op_act(m->be, a, &h, AVO_ACT_GELU, 0.0f, &h, err);
    if (!st) st = hb_linear(m, a, &h, &L->w2, &L->b2, &f, err);
    if (!st) st = avo_op_add(m->be, a, &f, &y, &f, err);
    if (!st) st = hb_norm(m, a, &f, &L->ln2_g, &L->ln2_b, out, err);
    return st;
}

avo_status avo_hubert_extract(avo_hubert *m, avo_arena *a, const float *samples, int64_t n, int output_layer,
                              bool use_final_proj, avo_tensor *out, avo_error *err) {
    if (!m || !a || !samples || !out)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_hubert_extract: NULL argument");
    if (n < 400)
        return avo_error_set(err, AVO_ERR_INVALID_AUDIO,
                             "HuBERT needs at least 400 samples at 16 kHz (25 ms), got %lld: pass longer audio",
                             (long long)n);
    if (output_layer < 1 || output_layer > m->n_layers)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "HuBERT output_layer %d is outside 1..%d", output_layer,
                             m->n_layers);
    if (use_final_proj && m->final_dim == 0)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "HuBERT checkpoint has no final_proj; extract without it");

    avo_tensor x, y;
    avo_status st = avo_tensor_from_host(a, 2, (int64_t[]){1, n}, samples, &x, err);
    /* the rest is device work only: a CUDA back end replays it as one graph once it has run twice with
     * the same shapes (engine_cuda.h); the key names what decides them */
    uint64_t gkey = ((uint64_t)(uintptr_t)m * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)n << 8) ^
                    ((uint64_t)output_layer << 1) ^ (uint64_t)use_final_proj;
    bool replayed = false;
    if (!st) st = avo_backend_graph_begin(m->be, a, gkey, out, &replayed, err);
    if (!st && replayed) return AVO_OK;
    for (int i = 0; i < HB_CONV_LAYERS && !st; i++) {
        avo_conv1d_params p = {hb_stride[i], 0, 1, 1};
        y.data = NULL;
        st = avo_op_conv1d(m->be, a, &x, &m->conv_w[i], NULL, &p, &y, err);
        if (!st && i == 0) st = avo_op_group_norm(m->be, a, &y, (int)y.shape[0], &m->gn_g, &m->gn_b, HB_EPS, &y, err);
        if (!st) st = avo_op_act(m->be, a, &y, AVO_ACT_GELU, 0.0f, &y, err);
        x = y;
    }
    if (!st) st = hb_norm(m, a, &x, &m->ln_g, &m->ln_b, &y, err);
    if (!st) st = hb_linear(m, a, &y, &m->proj_w, &m->proj_b, &x, err); /* [D, T] */

    avo_tensor pos = {0};
    avo_conv1d_params pp = {1, m->pos_kernel / 2, 1, m->pos_groups};
    if (!st) st = avo_op_conv1d(m->be, a, &x, &m->pos_w, &m->pos_b, &pp, &pos, err);
    if (!st) st = avo_op_act(m->be, a, &pos, AVO_ACT_GELU, 0.0f, &pos, err);
    if (!st) st = hb_add_same_pad(m, a, &x, &pos, err);

    avo_tensor cur = {0};
    if (!st) st = hb_norm(m, a, &x, &m->enc_ln_g, &m->enc_ln_b, &cur, err);
    /* each layer's temporaries are rewound; its result is copied back into cur */
    for (int i = 0; i < output_layer && !st; i++) {
        avo_arena_mark mark = avo_arena_get_mark(a);
        avo_tensor next = {0};
        st = hb_layer_run(m, a, &m->layers[i], &cur, &next, err);
        if (!st) st = avo_op_copy(m->be, a, &next, &cur, err);
        avo_arena_rewind(a, mark);
    }
    if (!st && use_final_proj) {
        st = hb_linear(m, a, &cur, &m->fp_w, &m->fp_b, &y, err);
        cur = y;
    }
    if (!st) {
        out->data = NULL;
        st = avo_op_transpose(m->be, a, &cur, out, err); /* [T, C] as fairseq returns it */
    }
    st = avo_backend_graph_end(m->be, a, gkey, out, st, err);
    return st ? avo_error_prefix(err, "HuBERT") : AVO_OK;
}
