/* RMVPE pitch network on the engine (models.h). The graph, as RVC's E2E(4, 1, (2, 2)) builds it:
 *
 *   log-mel [T, 128] -> BatchNorm(1) -> encoder: 5 stages of ConvBlockRes x n, each stage's output kept
 *   as a skip and 2x2 average-pooled (16, 32, .. 256 channels) -> intermediate: 4 stages at 512 ->
 *   decoder: 5 stages of ConvTranspose2d 3x3 stride 2 + BN + ReLU, concatenated with the skip, then
 *   ConvBlockRes x n -> cnn 3x3 to 3 channels -> [T, 3 * 128] -> BiGRU -> Linear(512, 360) -> sigmoid.
 *   ConvBlockRes: relu(bn(conv3x3(relu(bn(conv3x3(x)))))) + (1x1 conv of x when channels change, else x).
 *
 * Layout: activations are [C, frames, mel bins] tensors. Every BatchNorm (eval mode) is folded into
 * the preceding convolution at load time on the host; the input BatchNorm, which precedes a
 * zero-padded convolution and so cannot be folded into it, is applied to the host mel before upload.
 * The ReLUs and the residual add run inside avo_op_conv2d, and the concatenation is free: the skip
 * is written into the upper channel rows of a [2C, H, W] tensor whose lower rows receive the
 * transposed convolution. Apart from the skips, the U-Net runs in three work buffers sized for its
 * first level, reused at every level, and the GRU reuses the U-Net's memory, so a window of T frames
 * needs about (3 + 2 * 2) * 16 * 128 * 4 * T bytes of arena: measured 180 MB for 3008 frames (60 KB
 * per frame).
 *
 * Long inputs run in windows (rmvpe_set_window; default 3072 frames, 256 of margin): each window
 * starts on a multiple of the U-Net's stride (32 frames), so its pooling grid is the one of a single
 * pass, and reaches a margin into its neighbours whose frames are discarded. With the full-size random
 * model of tests/reference/make_random_models.py an edge changes the salience by < 1e-5 beyond 128
 * frames; trained weights were not available to measure. Long songs take T / (T - 2 * margin)
 * times the compute of one pass (1.2 with the defaults). Model code touches tensor data only
 * through engine ops; the host does the mel front end before upload and the decoding after download. */
#include "models/rmvpe_internal.h"

#include "autovoice/checkpoint.h"
#include "autovoice/engine_cache.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RM_BN_EPS 1e-5
#define RM_MAX_STAGES 8
#define RM_MAX_BLOCKS 16
#define RM_DEFAULT_WINDOW 3072 /* frames (30.72 s); see rmvpe_set_window */
#define RM_DEFAULT_MARGIN 256  /* frames (2.56 s) of context each side */
#define RM_CENTS0 1997.3794084376191
#define RM_CENTS_STEP 20.0

typedef struct rm_conv {
    avo_tensor w, b; /* BatchNorm folded in: the bias is the BN shift (or the conv's own bias) */
} rm_conv;

typedef struct rm_block { /* ConvBlockRes */
    rm_conv c1, c2, sc;
    bool has_sc;
    int cin, cout;
} rm_block;

typedef struct rm_stage { /* ResEncoderBlock, or the ConvBlockRes list of a ResDecoderBlock */
    rm_block blocks[RM_MAX_BLOCKS];
    int n, cin, cout;
    rm_conv up; /* decoder: ConvTranspose2d + BN (+ ReLU) */
} rm_stage;

struct avo_rmvpe {
    avo_backend *be;
    avo_arena *weights; /* never reset */
    rmvpe_mel *mel;
    int n_enc, n_inter, en_out, stride, hidden;
    float in_scale, in_shift; /* unet.encoder.bn folded to one affine map of the mel */
    rm_stage enc[RM_MAX_STAGES], inter[RM_MAX_STAGES], dec[RM_MAX_STAGES];
    rm_conv cnn;
    avo_tensor gru_wih[2], gru_whh[2], gru_bih[2], gru_bhh[2], fc_w, fc_b;
    int win_frames, win_margin;
};

/* ---- loading ------------------------------------------------------------------------------- */

typedef struct rm_loader {
    avo_ckpt *ckpt;
    avo_arena *a;
    const char *prefix; /* "" for the bare state_dict RVC ships, "model." if wrapped */
    const char *file;
    avo_engine_session *ec; /* engine cache: final weights taken from / recorded into it (NULL: none) */
} rm_loader;

static const avo_ckpt_tensor *rm_find(const rm_loader *l, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s%s", l->prefix, name);
    const avo_ckpt_value *v = avo_ckpt_lookup(l->ckpt, path);
    return v && avo_ckpt_value_kind(v) == AVO_CKPT_TENSOR ? avo_ckpt_value_tensor(v) : NULL;
}

static void shape_text(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++) k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* name as host floats (malloc'd, caller frees), after checking its shape against want[ndim]. */
static avo_status rm_read(const rm_loader *l, const char *name, int ndim, const int64_t *want, float **out,
                          avo_error *err) {
    *out = NULL;
    const avo_ckpt_tensor *t = rm_find(l, name);
    if (!t)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: no tensor '%s%s': is it an RMVPE checkpoint (rmvpe.pt)?", l->file,
                             l->prefix, name);
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == want[i];
    if (!ok) {
        char got[128], exp[128];
        shape_text(got, sizeof got, t->ndim, t->shape);
        shape_text(exp, sizeof exp, ndim, want);
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: tensor '%s%s' has shape %s, expected %s for this RMVPE", l->file,
                             l->prefix, name, got, exp);
    }
    float *d = malloc((size_t)(t->numel > 0 ? t->numel : 1) * sizeof(float));
    if (!d) return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory reading '%s'", l->file, name);
    avo_status st = avo_ckpt_tensor_read_f32(l->ckpt, t, d, t->numel, err);
    if (st) {
        free(d);
        return avo_error_prefix(err, "%s: reading '%s%s'", l->file, l->prefix, name);
    }
    *out = d;
    return AVO_OK;
}

static avo_status rm_upload(const rm_loader *l, int ndim, const int64_t *shape, const float *src, avo_tensor *out,
                            avo_error *err) {
    return avo_tensor_from_host(l->a, ndim, shape, src, out, err);
}

/* BatchNorm2d prefix (eval): y = x * scale + shift per channel. */
static avo_status rm_bn(const rm_loader *l, const char *prefix, int64_t c, float *scale, float *shift,
                        avo_error *err) {
    static const char *const part[4] = {"weight", "bias", "running_mean", "running_var"};
    float *v[4] = {NULL, NULL, NULL, NULL};
    avo_status st = AVO_OK;
    char name[256];
    for (int i = 0; i < 4 && !st; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, part[i]);
        st = rm_read(l, name, 1, &c, &v[i], err);
    }
    for (int64_t i = 0; i < c && !st; i++) {
        double s = v[0][i] / sqrt((double)v[3][i] + RM_BN_EPS);
        scale[i] = (float)s;
        shift[i] = (float)(v[1][i] - v[2][i] * s);
    }
    for (int i = 0; i < 4; i++) free(v[i]);
    return st;
}

/* Conv2d prefix_w (no bias) followed by BatchNorm2d bn: weight scaled per output channel, bias = shift.
 * transposed: ConvTranspose2d weight [cin, cout, k, k], whose output channel is the second index. */
static avo_status rm_conv_bn(const rm_loader *l, const char *wname, const char *bn, int64_t cin, int64_t cout,
                             bool transposed, rm_conv *out, avo_error *err) {
    int64_t ws[4] = {transposed ? cin : cout, transposed ? cout : cin, 3, 3};
    char kw[300], kb[300];
    snprintf(kw, sizeof kw, "%s%s", l->prefix, wname);
    snprintf(kb, sizeof kb, "%s%s.folded_bias", l->prefix, bn);
    if (avo_engine_replaying(l->ec)) {
        avo_status st = avo_engine_take_shaped(l->ec, kw, 4, ws, &out->w, err);
        return st ? st : avo_engine_take_shaped(l->ec, kb, 1, &cout, &out->b, err);
    }
    float *w = NULL, *scale = malloc((size_t)cout * sizeof(float)), *shift = malloc((size_t)cout * sizeof(float));
    avo_status st = scale && shift ? AVO_OK : avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", l->file);
    if (!st) st = rm_read(l, wname, 4, ws, &w, err);
    if (!st) st = rm_bn(l, bn, cout, scale, shift, err);
    if (!st) {
        for (int64_t i = 0; i < ws[0]; i++)
            for (int64_t j = 0; j < ws[1]; j++) {
                float s = scale[transposed ? j : i];
                float *k = w + (i * ws[1] + j) * 9;
                for (int t = 0; t < 9; t++) k[t] *= s;
            }
        st = rm_upload(l, 4, ws, w, &out->w, err);
    }
    if (!st) st = rm_upload(l, 1, &cout, shift, &out->b, err);
    if (!st) st = avo_engine_put(l->ec, kw, &out->w, err);
    if (!st) st = avo_engine_put(l->ec, kb, &out->b, err);
    free(w);
    free(scale);
    free(shift);
    return st;
}

/* A tensor used as stored: taken from the engine cache when replaying, else read, uploaded, recorded. */
static avo_status rm_load_as_is(const rm_loader *l, const char *name, int ndim, const int64_t *shape, avo_tensor *out,
                                avo_error *err) {
    char key[300];
    snprintf(key, sizeof key, "%s%s", l->prefix, name);
    if (avo_engine_replaying(l->ec)) return avo_engine_take_shaped(l->ec, key, ndim, shape, out, err);
    float *v = NULL;
    avo_status st = rm_read(l, name, ndim, shape, &v, err);
    if (!st) st = rm_upload(l, ndim, shape, v, out, err);
    if (!st) st = avo_engine_put(l->ec, key, out, err);
    free(v);
    return st;
}

/* Conv2d with its own bias: prefix.weight [cout, cin, k, k], prefix.bias [cout]. */
static avo_status rm_conv_plain(const rm_loader *l, const char *prefix, int64_t cin, int64_t cout, int64_t k,
                                rm_conv *out, avo_error *err) {
    char name[256];
    int64_t ws[4] = {cout, cin, k, k};
    snprintf(name, sizeof name, "%s.weight", prefix);
    avo_status st = rm_load_as_is(l, name, 4, ws, &out->w, err);
    snprintf(name, sizeof name, "%s.bias", prefix);
    if (!st) st = rm_load_as_is(l, name, 1, &cout, &out->b, err);
    return st;
}

static avo_status rm_block_load(const rm_loader *l, const char *prefix, int cin, int cout, rm_block *b,
                                avo_error *err) {
    char w[200], bn[200];
    b->cin = cin;
    b->cout = cout;
    b->has_sc = cin != cout;
    snprintf(w, sizeof w, "%s.conv.0.weight", prefix);
    snprintf(bn, sizeof bn, "%s.conv.1", prefix);
    avo_status st = rm_conv_bn(l, w, bn, cin, cout, false, &b->c1, err);
    snprintf(w, sizeof w, "%s.conv.3.weight", prefix);
    snprintf(bn, sizeof bn, "%s.conv.4", prefix);
    if (!st) st = rm_conv_bn(l, w, bn, cout, cout, false, &b->c2, err);
    snprintf(w, sizeof w, "%s.shortcut", prefix);
    if (!st && b->has_sc) st = rm_conv_plain(l, w, cin, cout, 1, &b->sc, err);
    return st;
}

/* Number of i with prefix.<i>.<suffix> present. */
static int rm_count(const rm_loader *l, const char *prefix, const char *suffix) {
    char name[256];
    int n = 0;
    for (;; n++) {
        snprintf(name, sizeof name, "%s.%d.%s", prefix, n, suffix);
        if (!rm_find(l, name)) return n;
    }
}

/* A list of ConvBlockRes at prefix.<i>: the first cin -> cout, the rest cout -> cout. */
static avo_status rm_stage_load(const rm_loader *l, const char *prefix, int cin, int cout, rm_stage *s, avo_error *err) {
    s->n = rm_count(l, prefix, "conv.0.weight");
    s->cin = cin;
    s->cout = cout;
    if (s->n < 1 || s->n > RM_MAX_BLOCKS)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: %d blocks under '%s%s' (expected 1..%d): not an RMVPE checkpoint",
                             l->file, s->n, l->prefix, prefix, RM_MAX_BLOCKS);
    avo_status st = AVO_OK;
    char name[160];
    for (int i = 0; i < s->n && !st; i++) {
        snprintf(name, sizeof name, "%s.%d", prefix, i);
        st = rm_block_load(l, name, i ? cout : cin, cout, &s->blocks[i], err);
    }
    return st;
}

static avo_status rm_load_all(const rm_loader *l, avo_rmvpe *m, avo_error *err) {
    const avo_ckpt_tensor *t = rm_find(l, "unet.encoder.layers.0.conv.0.conv.0.weight");
    if (!t || t->ndim != 4)
        return avo_error_set(err, AVO_ERR_FORMAT,
                             "%s: no tensor 'unet.encoder.layers.0.conv.0.conv.0.weight': is it an RMVPE checkpoint "
                             "(rmvpe.pt)?",
                             l->file);
    if (t->shape[1] != 1)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: RMVPE with %lld input channels; only 1 (a mel spectrogram) is supported",
                             l->file, (long long)t->shape[1]);
    m->en_out = (int)t->shape[0];
    m->n_enc = rm_count(l, "unet.encoder.layers", "conv.0.conv.0.weight");
    m->n_inter = rm_count(l, "unet.intermediate.layers", "conv.0.conv.0.weight");
    int n_dec = rm_count(l, "unet.decoder.layers", "conv1.0.weight");
    if (m->n_enc < 1 || m->n_enc > RM_MAX_STAGES || m->n_inter < 1 || m->n_inter > RM_MAX_STAGES || n_dec != m->n_enc ||
        (RMVPE_MELS >> m->n_enc) << m->n_enc != RMVPE_MELS || m->en_out < 1 || m->en_out > 4096)
        return avo_error_set(err, AVO_ERR_FORMAT,
                             "%s: RMVPE U-Net with %d encoder, %d intermediate and %d decoder stages, %d channels is not "
                             "supported (encoder and decoder must match, 128 mel bins must halve at each stage)",
                             l->file, m->n_enc, m->n_inter, n_dec, m->en_out);
    m->stride = 1 << m->n_enc;
    float scale = 1, shift = 0;
    avo_status st = rm_bn(l, "unet.encoder.bn", 1, &scale, &shift, err);
    m->in_scale = scale;
    m->in_shift = shift;
    char name[128];
    int c = 1, cout = m->en_out;
    for (int i = 0; i < m->n_enc && !st; i++, c = cout, cout *= 2) {
        snprintf(name, sizeof name, "unet.encoder.layers.%d.conv", i);
        st = rm_stage_load(l, name, c, cout, &m->enc[i], err);
    }
    /* Intermediate(c_enc / 2, c_enc) where c_enc = en_out << n_enc: the encoder's last output doubled */
    int ci = m->en_out << (m->n_enc - 1), co = m->en_out << m->n_enc;
    for (int i = 0; i < m->n_inter && !st; i++) {
        snprintf(name, sizeof name, "unet.intermediate.layers.%d.conv", i);
        st = rm_stage_load(l, name, i ? co : ci, co, &m->inter[i], err);
    }
    c = co;
    for (int i = 0; i < n_dec && !st; i++, c /= 2) {
        rm_stage *s = &m->dec[i];
        char w[128], bn[128];
        snprintf(w, sizeof w, "unet.decoder.layers.%d.conv1.0.weight", i);
        snprintf(bn, sizeof bn, "unet.decoder.layers.%d.conv1.1", i);
        st = rm_conv_bn(l, w, bn, c, c / 2, true, &s->up, err);
        snprintf(name, sizeof name, "unet.decoder.layers.%d.conv2", i);
        if (!st) st = rm_stage_load(l, name, c, c / 2, s, err);
    }
    if (!st) st = rm_conv_plain(l, "cnn", m->en_out, 3, 3, &m->cnn, err);
    if (st) return st;

    const avo_ckpt_tensor *g = rm_find(l, "fc.0.gru.weight_hh_l0");
    if (!g || g->ndim != 2 || g->shape[1] < 1 || g->shape[0] != 3 * g->shape[1])
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: no BiGRU 'fc.0.gru.weight_hh_l0' [3H, H]: is it an RMVPE checkpoint?",
                             l->file);
    if (rm_find(l, "fc.0.gru.weight_ih_l1"))
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: RMVPE with more than one GRU layer is not supported", l->file);
    int64_t h = g->shape[1], in = 3 * RMVPE_MELS, h3 = 3 * h;
    m->hidden = (int)h;
    static const char *const sfx[2] = {"", "_reverse"};
    for (int d = 0; d < 2 && !st; d++) {
        snprintf(name, sizeof name, "fc.0.gru.weight_ih_l0%s", sfx[d]);
        st = rm_load_as_is(l, name, 2, (int64_t[]){h3, in}, &m->gru_wih[d], err);
        snprintf(name, sizeof name, "fc.0.gru.weight_hh_l0%s", sfx[d]);
        if (!st) st = rm_load_as_is(l, name, 2, (int64_t[]){h3, h}, &m->gru_whh[d], err);
        snprintf(name, sizeof name, "fc.0.gru.bias_ih_l0%s", sfx[d]);
        if (!st) st = rm_load_as_is(l, name, 1, &h3, &m->gru_bih[d], err);
        snprintf(name, sizeof name, "fc.0.gru.bias_hh_l0%s", sfx[d]);
        if (!st) st = rm_load_as_is(l, name, 1, &h3, &m->gru_bhh[d], err);
    }
    int64_t fs[2] = {RMVPE_BINS, 2 * h}, nb = RMVPE_BINS;
    if (!st) st = rm_load_as_is(l, "fc.1.weight", 2, fs, &m->fc_w, err);
    if (!st) st = rm_load_as_is(l, "fc.1.bias", 1, &nb, &m->fc_b, err);
    return st;
}

static avo_status rm_load_file(const char *path, avo_backend *be, avo_engine_session *ec, avo_rmvpe **out,
                               avo_error *err) {
    if (!path || !be || !out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_rmvpe_load: NULL argument");
    *out = NULL;
    avo_rmvpe *m = calloc(1, sizeof *m);
    if (!m) return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", path);
    m->be = be;
    m->win_frames = RM_DEFAULT_WINDOW;
    m->win_margin = RM_DEFAULT_MARGIN;
    avo_ckpt *ckpt = NULL;
    avo_status st = avo_ckpt_open(path, &ckpt, err);
    if (!st) st = avo_arena_create(be, 1u << 20, &m->weights, err);
    if (!st) st = avo_engine_attach(ec, m->weights, err);
    if (!st) {
        const avo_ckpt_value *root = avo_ckpt_lookup(ckpt, "model");
        rm_loader l = {ckpt, m->weights, root && avo_ckpt_value_kind(root) == AVO_CKPT_DICT ? "model." : "", path, ec};
        st = rm_load_all(&l, m, err);
    }
    avo_ckpt_free(ckpt);
    if (!st) st = rmvpe_mel_create(&m->mel, err);
    if (st) {
        avo_rmvpe_free(m);
        return st;
    }
    *out = m;
    return AVO_OK;
}

avo_status avo_rmvpe_load(const char *path, avo_backend *be, avo_rmvpe **out, avo_error *err) {
    return rm_load_file(path, be, NULL, out, err);
}

/* avo_rmvpe_load_cached (engine_cache.h): the load above, run by the engine cache */
typedef struct rm_args {
    const char *path;
    avo_backend *be;
    avo_rmvpe **out;
} rm_args;

static avo_status rm_load_cb(void *u, avo_engine_session *s, avo_error *err) {
    rm_args *a = u;
    return rm_load_file(a->path, a->be, s, a->out, err);
}

static void rm_unload_cb(void *u) {
    rm_args *a = u;
    avo_rmvpe_free(*a->out);
    *a->out = NULL;
}

avo_status avo_rmvpe_load_cached(const char *path, avo_backend *be, const avo_engine_request *req, avo_rmvpe **out,
                                 avo_engine_result *res, avo_error *err) {
    if (!out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_rmvpe_load_cached: NULL argument");
    rm_args a = {path, be, out};
    return avo_engine_load(req, path, NULL, "rmvpe/1", be, rm_load_cb, rm_unload_cb, &a, res, err);
}

void avo_rmvpe_free(avo_rmvpe *m) {
    if (!m) return;
    avo_arena_free(m->weights);
    rmvpe_mel_free(m->mel);
    free(m);
}

int64_t avo_rmvpe_frames(int64_t n) { return n < 0 ? 0 : n / RMVPE_HOP + 1; }

avo_status rmvpe_set_window(avo_rmvpe *m, int frames, int margin, avo_error *err) {
    if (!m || frames <= 0 || margin < 0 || frames % m->stride || margin % m->stride || frames <= 2 * margin)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "RMVPE window of %d frames with margin %d: both must be multiples of %d, window > 2 * margin",
                             frames, margin, m ? m->stride : 32);
    m->win_frames = frames;
    m->win_margin = margin;
    return AVO_OK;
}

void rmvpe_get_window(const avo_rmvpe *m, int *frames, int *margin) {
    *frames = m->win_frames;
    *margin = m->win_margin;
}

/* ---- the network ---------------------------------------------------------------------------- */

static avo_tensor rm_view3(void *data, int64_t c, int64_t h, int64_t w) {
    int64_t s[3] = {c, h, w};
    return avo_tensor_view(AVO_DTYPE_F32, 3, s, data);
}

/* The three work buffers: [0] and [1] hold block inputs and outputs in turn, [2] the hidden
 * activation inside a block. */
typedef struct rm_work {
    void *buf[3];
} rm_work;

/* Which work buffer holds t, or -1 (an input, a skip). */
static int rm_slot(const rm_work *w, const avo_tensor *t) {
    for (int i = 0; i < 2; i++)
        if (t->data == w->buf[i]) return i;
    return -1;
}

/* One ConvBlockRes on x [cin, H, W]; the result goes to *dst if dst->data is set, else into a work
 * buffer (x's own when x is no longer needed, i.e. when a shortcut conv has consumed it). */
static avo_status rm_block_run(avo_rmvpe *m, avo_arena *a, const rm_block *b, const avo_tensor *x, rm_work *w,
                               avo_tensor *dst, avo_error *err) {
    int64_t h = x->shape[1], wd = x->shape[2];
    int in = rm_slot(w, x);
    avo_conv2d_params p3 = {{1, 1}, {1, 1}, {1, 1}, 1, true}, p1 = {{1, 1}, {0, 0}, {1, 1}, 1, false};
    avo_tensor sc = *x, hid = rm_view3(w->buf[2], b->cout, h, wd), out;
    avo_status st = AVO_OK;
    if (b->has_sc) {
        sc = rm_view3(w->buf[in == 1 ? 0 : 1], b->cout, h, wd);
        st = avo_op_conv2d(m->be, a, x, &b->sc.w, &b->sc.b, &p1, NULL, &sc, err);
    }
    if (!st) st = avo_op_conv2d(m->be, a, x, &b->c1.w, &b->c1.b, &p3, NULL, &hid, err);
    if (st) return st;
    if (dst->data)
        out = *dst;
    else if (b->has_sc) /* x is dead now (read by both convs): its buffer, or the one sc left free */
        out = rm_view3(w->buf[in < 0 ? 0 : in], b->cout, h, wd);
    else /* x is the residual: the other buffer */
        out = rm_view3(w->buf[in == 0 ? 1 : 0], b->cout, h, wd);
    st = avo_op_conv2d(m->be, a, &hid, &b->c2.w, &b->c2.b, &p3, &sc, &out, err);
    if (!st && !dst->data) *dst = out;
    return st;
}

/* The blocks of a stage; the last writes into *dst (a skip view) or, when dst->data is NULL, a work
 * buffer, and *dst describes the result. */
static avo_status rm_stage_run(avo_rmvpe *m, avo_arena *a, const rm_stage *s, const avo_tensor *x, rm_work *w,
                               avo_tensor *dst, avo_error *err) {
    avo_tensor cur = *x;
    avo_status st = AVO_OK;
    for (int i = 0; i < s->n && !st; i++) {
        avo_tensor out = {0};
        if (i == s->n - 1) out = *dst;
        st = rm_block_run(m, a, &s->blocks[i], &cur, w, &out, err);
        cur = out;
    }
    if (!st) *dst = cur;
    return st;
}

/* mel [T, 128] frame-major on the host, input BN applied, T a multiple of the stride -> salience
 * [T, 360] on the host. */
static avo_status rm_forward(avo_rmvpe *m, avo_arena *a, const float *mel, int64_t t, float *sal, avo_error *err) {
    avo_backend *be = m->be;
    int64_t wd = RMVPE_MELS, cap = (int64_t)m->en_out * t * wd;
    avo_tensor x, cat[RM_MAX_STAGES], tmp, c3 = {0};
    rm_work w;
    avo_status st = avo_tensor_from_host(a, 3, (int64_t[]){1, t, wd}, mel, &x, err);
    /* the cnn output is made before the U-Net's buffers, which are then given back to the GRU */
    if (!st) st = avo_tensor_new(a, AVO_DTYPE_F32, 3, (int64_t[]){3, t, wd}, &c3, err);
    avo_arena_mark unet = avo_arena_get_mark(a);
    for (int l = 0; l < m->n_enc && !st; l++) /* skip l lives in the upper half of cat[l] */
        st = avo_tensor_new(a, AVO_DTYPE_F32, 3, (int64_t[]){2 * m->enc[l].cout, t >> l, wd >> l}, &cat[l], err);
    for (int i = 0; i < 3 && !st; i++) {
        st = avo_tensor_new(a, AVO_DTYPE_F32, 1, &cap, &tmp, err);
        w.buf[i] = tmp.data;
    }
    avo_pool2d_params pool = {{2, 2}, {2, 2}, {0, 0}};
    for (int l = 0; l < m->n_enc && !st; l++) {
        const rm_stage *s = &m->enc[l];
        avo_tensor skip = avo_tensor_rows(&cat[l], s->cout, s->cout);
        st = rm_stage_run(m, a, s, &x, &w, &skip, err);
        x = rm_view3(w.buf[0], s->cout, (t >> l) / 2, (wd >> l) / 2);
        if (!st) st = avo_op_pool2d(be, a, &skip, AVO_POOL_AVG, &pool, &x, err);
    }
    for (int i = 0; i < m->n_inter && !st; i++) {
        avo_tensor out = {0};
        st = rm_stage_run(m, a, &m->inter[i], &x, &w, &out, err);
        x = out;
    }
    avo_conv_transpose2d_params up = {{2, 2}, {1, 1}, {1, 1}, true};
    for (int i = 0; i < m->n_enc && !st; i++) {
        int l = m->n_enc - 1 - i;
        const rm_stage *s = &m->dec[i];
        avo_tensor low = avo_tensor_rows(&cat[l], 0, s->cout), out = {0};
        st = avo_op_conv_transpose2d(be, a, &x, &s->up.w, &s->up.b, &up, &low, err);
        if (!st) st = rm_stage_run(m, a, s, &cat[l], &w, &out, err);
        x = out;
    }
    /* cnn -> [3, T, 128] -> [T, 3, 128] = [T, 384] -> BiGRU [T, 2H] -> Linear [T, 360] -> sigmoid */
    avo_tensor tr = {0}, seq, g = {0}, y = {0};
    avo_conv2d_params p3 = {{1, 1}, {1, 1}, {1, 1}, 1, false};
    if (!st) st = avo_op_conv2d(be, a, &x, &m->cnn.w, &m->cnn.b, &p3, NULL, &c3, err);
    avo_arena_rewind(a, unet);
    if (!st) st = avo_op_transpose01(be, a, &c3, &tr, err);
    if (!st) st = avo_tensor_reshape(&tr, 2, (int64_t[]){t, 3 * wd}, &seq, err);
    avo_gru_weights gw = {{&m->gru_wih[0], &m->gru_wih[1]}, {&m->gru_whh[0], &m->gru_whh[1]},
                          {&m->gru_bih[0], &m->gru_bih[1]}, {&m->gru_bhh[0], &m->gru_bhh[1]}};
    if (!st) st = avo_op_bigru(be, a, &seq, &gw, &g, err);
    if (!st) st = avo_op_linear(be, a, &g, &m->fc_w, &m->fc_b, &y, err);
    if (!st) st = avo_op_act(be, a, &y, AVO_ACT_SIGMOID, 0.0f, &y, err);
    if (!st) st = avo_tensor_to_host(a, &y, sal, t * RMVPE_BINS, err);
    return st;
}

/* Frames len..tpad-1 of mel (frame-major) mirrored from the ones before, as F.pad(mode="reflect") on
 * the time axis (repeatedly when the padding exceeds the frames, which torch refuses). */
static void rm_pad_reflect(float *mel, int64_t len, int64_t tpad) {
    for (int64_t f = len; f < tpad; f++) {
        int64_t src = 0;
        if (len > 1) {
            int64_t period = 2 * (len - 1), i = f % period;
            src = i < len ? i : period - i;
        }
        memcpy(mel + f * RMVPE_MELS, mel + src * RMVPE_MELS, RMVPE_MELS * sizeof(float));
    }
}

/* mel [tpad, 128] holds len frames; pads, normalises and runs them; salience [tpad, 360]. */
static avo_status rm_run_window(avo_rmvpe *m, avo_arena *a, float *mel, int64_t len, int64_t tpad, float *sal,
                                avo_error *err) {
    rm_pad_reflect(mel, len, tpad);
    for (int64_t i = 0; i < tpad * RMVPE_MELS; i++) mel[i] = mel[i] * m->in_scale + m->in_shift;
    avo_arena_mark mark = avo_arena_get_mark(a);
    avo_status st = rm_forward(m, a, mel, tpad, sal, err);
    avo_arena_rewind(a, mark);
    return st;
}

static int64_t round_up(int64_t v, int64_t k) { return (v + k - 1) / k * k; }

avo_status rmvpe_salience(avo_rmvpe *m, avo_arena *a, const float *mel, int64_t frames, float *salience,
                          avo_error *err) {
    if (!m || !a || !mel || frames < 1 || !salience)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "rmvpe_salience: bad arguments");
    int64_t tpad = round_up(frames, m->stride);
    float *buf = malloc((size_t)tpad * RMVPE_MELS * sizeof(float)), *sal = malloc((size_t)tpad * RMVPE_BINS * sizeof(float));
    avo_status st = buf && sal ? AVO_OK : avo_error_set(err, AVO_ERR_NO_MEMORY, "RMVPE: out of memory");
    if (!st) {
        memcpy(buf, mel, (size_t)frames * RMVPE_MELS * sizeof(float));
        st = rm_run_window(m, a, buf, frames, tpad, sal, err);
    }
    if (!st) memcpy(salience, sal, (size_t)frames * RMVPE_BINS * sizeof(float));
    free(buf);
    free(sal);
    return st ? avo_error_prefix(err, "RMVPE") : AVO_OK;
}

/* ---- decoding ------------------------------------------------------------------------------- */

float rmvpe_decode_frame(const float *s, float threshold, double *cents, float *f0_hz) {
    int best = 0;
    for (int i = 1; i < RMVPE_BINS; i++)
        if (s[i] > s[best]) best = i; /* first maximum, as np.argmax */
    int lo = best - 4 < 0 ? 0 : best - 4, hi = best + 5 > RMVPE_BINS ? RMVPE_BINS : best + 5;
    double num = 0, den = 0;
    for (int i = lo; i < hi; i++) {
        num += (double)s[i] * (RM_CENTS0 + RM_CENTS_STEP * i);
        den += s[i];
    }
    double c = s[best] > threshold && den > 0 ? num / den : 0.0;
    *cents = c;
    *f0_hz = c > 0 ? (float)(10.0 * pow(2.0, c / 1200.0)) : 0.0f;
    return s[best];
}

avo_status avo_rmvpe_f0(avo_rmvpe *m, avo_arena *a, const float *samples, int64_t n, float threshold, float *f0_hz,
                        float *confidence, avo_error *err) {
    if (!m || !a || !samples || !f0_hz)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_rmvpe_f0: NULL argument");
    if (n < 1) return avo_error_set(err, AVO_ERR_INVALID_AUDIO, "RMVPE: no samples");
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(samples[i]))
            return avo_error_set(err, AVO_ERR_INVALID_AUDIO, "RMVPE: sample %lld is not a finite number", (long long)i);
    int64_t frames = avo_rmvpe_frames(n), stride = m->stride;
    int64_t win = m->win_frames, margin = m->win_margin;
    if (round_up(frames, stride) <= win) win = round_up(frames, stride), margin = 0;
    float *mel = malloc((size_t)win * RMVPE_MELS * sizeof(float)), *sal = malloc((size_t)win * RMVPE_BINS * sizeof(float));
    avo_status st = mel && sal ? AVO_OK : avo_error_set(err, AVO_ERR_NO_MEMORY, "RMVPE: out of memory");
    /* Windows [ws, we) keep frames [pos, keep); each after the first starts margin frames before
     * pos, and the last is moved back to a full window when the input allows. */
    for (int64_t pos = 0; pos < frames && !st;) {
        int64_t ws = pos - margin < 0 ? 0 : pos - margin, we = ws + win, keep;
        if (we >= frames) { /* last window */
            int64_t full = round_up(frames, stride) - win;
            if (full > 0 && full < ws) ws = full;
            we = frames;
            keep = frames;
        } else {
            keep = we - margin;
        }
        int64_t len = we - ws;
        st = rmvpe_mel_frames(m->mel, samples, n, ws, len, mel, err);
        if (!st) st = rm_run_window(m, a, mel, len, round_up(len, stride), sal, err);
        for (int64_t f = pos; f < keep && !st; f++) {
            double cents;
            float peak = rmvpe_decode_frame(sal + (f - ws) * RMVPE_BINS, threshold, &cents, &f0_hz[f]);
            if (confidence) confidence[f] = peak;
        }
        pos = keep;
    }
    free(mel);
    free(sal);
    return st ? avo_error_prefix(err, "RMVPE") : AVO_OK;
}
