/* RVC synthesizer (SynthesizerTrnMs256NSFsid / SynthesizerTrnMs768NSFsid and their _nono variants)
 * on the engine, built from the VITS blocks of vits_blocks.c (see models.h for the API).
 *
 * Everything is read from the .pth: "config" (18 entries: sizes, resblock type, kernels,
 * dilations, upsample rates, speaker count, gin, sample rate), "f0" (NSF decoder and pitch
 * embedding, or the plain HiFi-GAN decoder), "version" (v1: 256-d features, v2: 768-d; checked
 * against emb_phone's shape). The speaker count comes from emb_g as RVC does.
 *
 * enc_p's sqrt(hidden) scale is folded into emb_phone and emb_pitch at load time. The prior sample
 * z_p = m_p + exp(logs_p) * noise * 0.66666 is formed on the host (the engine has no exp). */
#include "autovoice/models.h"
#include "autovoice/engine_cache.h"

#include "models/vits_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RVC_CONFIG_LEN 18

struct avo_rvc {
    avo_backend *be;
    avo_arena *weights;
    avo_rvc_info info;
    int inter, hidden, gin;
    avo_tensor phone_w, phone_b; /* emb_phone [hidden, phone_dim], [hidden], times sqrt(hidden) */
    avo_tensor pitch_table;      /* emb_pitch [256, hidden] times sqrt(hidden); data NULL without f0 */
    vits_encoder enc;
    vits_conv proj;              /* enc_p.proj [2 * inter, hidden, 1] */
    vits_flow flow;
    vits_generator dec;
    avo_tensor emb_g;            /* [n_speakers, gin] */
    float src_w, src_b;          /* dec.m_source.l_linear */
};

/* ---- config ----------------------------------------------------------------------------------- */

typedef struct rvc_config {
    int inter, hidden, filter, heads, layers, kernel;
    int resblock;
    int n_kernels, kernels[VITS_MAX_KERNELS], n_dil, dil[VITS_MAX_KERNELS][VITS_MAX_DILATIONS];
    int n_ups, rates[VITS_MAX_UPS], up_kernels[VITS_MAX_UPS];
    int initial, spk, gin, sr;
} rvc_config;

static avo_status cfg_int(const avo_ckpt_value *v, const char *what, const char *file, int lo, int hi, int *out,
                          avo_error *err) {
    if (avo_ckpt_value_kind(v) != AVO_CKPT_INT)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: config entry %s is a %s, expected an integer", file, what,
                             avo_ckpt_kind_name(avo_ckpt_value_kind(v)));
    int64_t x = avo_ckpt_value_int(v);
    if (x < lo || x > hi)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: config entry %s is %lld, outside %d..%d", file, what, (long long)x, lo, hi);
    *out = (int)x;
    return AVO_OK;
}

/* An int list of 1..max entries. */
static avo_status cfg_list(const avo_ckpt_value *v, const char *what, const char *file, int max, int *n, int *out,
                           avo_error *err) {
    avo_ckpt_kind k = avo_ckpt_value_kind(v);
    size_t c = avo_ckpt_value_count(v);
    if ((k != AVO_CKPT_LIST && k != AVO_CKPT_TUPLE) || c < 1 || c > (size_t)max)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: config entry %s must be a list of 1 to %d integers", file, what, max);
    *n = (int)c;
    for (size_t i = 0; i < c; i++) {
        avo_status st = cfg_int(avo_ckpt_value_item(v, i), what, file, 1, 4096, &out[i], err);
        if (st) return st;
    }
    return AVO_OK;
}

static int sr_from_text(const char *s) {
    if (!s) return 0;
    if (!strcmp(s, "32k")) return 32000;
    if (!strcmp(s, "40k")) return 40000;
    if (!strcmp(s, "48k")) return 48000;
    return 0;
}

static avo_status parse_config(avo_ckpt *ckpt, const char *file, rvc_config *c, avo_error *err) {
    memset(c, 0, sizeof *c);
    const avo_ckpt_value *v = avo_ckpt_lookup(ckpt, "config");
    avo_ckpt_kind k = v ? avo_ckpt_value_kind(v) : AVO_CKPT_NONE;
    if (!v || (k != AVO_CKPT_LIST && k != AVO_CKPT_TUPLE))
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: no \"config\" list: not an RVC voice model", file);
    if (avo_ckpt_value_count(v) != RVC_CONFIG_LEN)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: \"config\" has %zu entries; an RVC voice model has %d", file,
                             avo_ckpt_value_count(v), RVC_CONFIG_LEN);
#define ITEM(i) avo_ckpt_value_item(v, i)
    avo_status st = cfg_int(ITEM(2), "inter_channels", file, 2, 4096, &c->inter, err);
    if (!st) st = cfg_int(ITEM(3), "hidden_channels", file, 1, 4096, &c->hidden, err);
    if (!st) st = cfg_int(ITEM(4), "filter_channels", file, 1, 65536, &c->filter, err);
    if (!st) st = cfg_int(ITEM(5), "n_heads", file, 1, 256, &c->heads, err);
    if (!st) st = cfg_int(ITEM(6), "n_layers", file, 1, 256, &c->layers, err);
    if (!st) st = cfg_int(ITEM(7), "kernel_size", file, 1, 64, &c->kernel, err);
    if (st) return st;
    const char *rb = avo_ckpt_value_kind(ITEM(9)) == AVO_CKPT_STRING ? avo_ckpt_value_string(ITEM(9)) : NULL;
    if (!rb || (strcmp(rb, "1") && strcmp(rb, "2")))
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: config entry resblock must be \"1\" or \"2\"", file);
    c->resblock = rb[0] - '0';
    st = cfg_list(ITEM(10), "resblock_kernel_sizes", file, VITS_MAX_KERNELS, &c->n_kernels, c->kernels, err);
    if (st) return st;
    const avo_ckpt_value *dl = ITEM(11);
    if (avo_ckpt_value_count(dl) != (size_t)c->n_kernels)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: config has %d resblock kernels but %zu dilation lists", file, c->n_kernels,
                             avo_ckpt_value_count(dl));
    for (int i = 0; i < c->n_kernels; i++) {
        int n = 0;
        st = cfg_list(avo_ckpt_value_item(dl, (size_t)i), "resblock_dilation_sizes", file, VITS_MAX_DILATIONS, &n, c->dil[i], err);
        if (st) return st;
        if (i > 0 && n != c->n_dil)
            return avo_error_set(err, AVO_ERR_FORMAT, "%s: resblock dilation lists differ in length", file);
        c->n_dil = n;
    }
    int nk = 0;
    st = cfg_list(ITEM(12), "upsample_rates", file, VITS_MAX_UPS, &c->n_ups, c->rates, err);
    if (!st) st = cfg_int(ITEM(13), "upsample_initial_channel", file, 1, 65536, &c->initial, err);
    if (!st) st = cfg_list(ITEM(14), "upsample_kernel_sizes", file, VITS_MAX_UPS, &nk, c->up_kernels, err);
    if (!st && nk != c->n_ups)
        st = avo_error_set(err, AVO_ERR_FORMAT, "%s: config has %d upsample rates but %d upsample kernels", file, c->n_ups, nk);
    if (!st) st = cfg_int(ITEM(15), "spk_embed_dim", file, 1, 1 << 20, &c->spk, err);
    if (!st) st = cfg_int(ITEM(16), "gin_channels", file, 0, 65536, &c->gin, err);
    if (st) return st;
    const avo_ckpt_value *sr = ITEM(17);
    if (avo_ckpt_value_kind(sr) == AVO_CKPT_STRING)
        c->sr = sr_from_text(avo_ckpt_value_string(sr));
    else if (avo_ckpt_value_kind(sr) == AVO_CKPT_INT)
        c->sr = (int)avo_ckpt_value_int(sr);
    if (c->sr <= 0 || c->sr > 384000)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: config entry sr must be a rate in Hz or \"32k\"/\"40k\"/\"48k\"", file);
#undef ITEM
    return AVO_OK;
}

/* ---- loading ---------------------------------------------------------------------------------- */

/* Loads a [rows, cols] tensor times scale. */
static avo_status load_scaled(const vits_loader *l, const char *name, int64_t rows, int64_t cols, float scale, avo_tensor *out,
                              avo_error *err) {
    int64_t want[2] = {rows, cols};
    int nd = cols > 0 ? 2 : 1;
    avo_arena_mark mk = avo_arena_get_mark(l->a);
    avo_tensor raw = {0};
    avo_status st = vits_load(l, name, nd, want, &raw, err);
    if (st) return st;
    /* scaled on the host (the weights may live in device memory); the unscaled copy is given back */
    int64_t n = avo_tensor_numel(&raw);
    float *h = malloc((size_t)n * sizeof(float));
    if (!h) return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", l->file);
    st = avo_tensor_to_host(l->a, &raw, h, n, err);
    for (int64_t i = 0; i < n; i++) h[i] *= scale;
    avo_arena_rewind(l->a, mk);
    if (!st) st = avo_tensor_from_host(l->a, raw.ndim, raw.shape, h, out, err);
    free(h);
    return st;
}

static avo_status load_scalar(const vits_loader *l, const char *name, float *out, avo_error *err) {
    const avo_ckpt_tensor *t = vits_find(l, name);
    if (!t || t->numel != 1)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: no one-value tensor '%s%s'", l->file, l->prefix, name);
    return avo_ckpt_tensor_read_f32(l->ckpt, t, out, 1, err);
}

static avo_status rvc_load_all(avo_ckpt *ckpt, const char *path, avo_engine_session *ec, avo_rvc *m, avo_error *err) {
    const avo_ckpt_value *w = avo_ckpt_lookup(ckpt, "weight");
    if (!w || avo_ckpt_value_kind(w) != AVO_CKPT_DICT) {
        if (avo_ckpt_lookup(ckpt, "model"))
            return avo_error_set(err, AVO_ERR_FORMAT,
                                 "%s: has \"model\" but no \"weight\": a training checkpoint (G_*.pth)? Use the small model "
                                 "RVC exports to weights/",
                                 path);
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: no \"weight\" dict: not an RVC voice model", path);
    }
    rvc_config c;
    avo_status st = parse_config(ckpt, path, &c, err);
    if (st) return st;
    vits_loader l = {ckpt, m->weights, "weight.", path, ec};

    int64_t f0 = 1;
    const avo_ckpt_value *fv = avo_ckpt_lookup(ckpt, "f0");
    if (fv) {
        if (avo_ckpt_value_kind(fv) != AVO_CKPT_INT && avo_ckpt_value_kind(fv) != AVO_CKPT_BOOL)
            return avo_error_set(err, AVO_ERR_FORMAT, "%s: \"f0\" must be 0 or 1", path);
        f0 = avo_ckpt_value_int(fv);
    }
    m->info.uses_f0 = f0 != 0;
    int version = 1; /* RVC reads a missing "version" as v1 */
    const avo_ckpt_value *vv = avo_ckpt_lookup(ckpt, "version");
    if (vv) {
        const char *vs = avo_ckpt_value_kind(vv) == AVO_CKPT_STRING ? avo_ckpt_value_string(vv) : NULL;
        if (!vs || (strcmp(vs, "v1") && strcmp(vs, "v2")))
            return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: \"version\" is %s; only v1 and v2 models are supported", path,
                                 vs ? vs : "not a string");
        version = vs[1] - '0';
    }
    const avo_ckpt_tensor *t = vits_find(&l, "enc_p.emb_phone.weight");
    if (!t || t->ndim != 2)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: no 2-D 'weight.enc_p.emb_phone.weight': not an RVC voice model", path);
    int phone_dim = (int)t->shape[1];
    if ((version == 1 && phone_dim != 256) || (version == 2 && phone_dim != 768))
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: a v%d model should take %d-d features, emb_phone takes %d", path, version,
                             version == 1 ? 256 : 768, phone_dim);
    m->info.version = version;
    m->info.phone_dim = phone_dim;
    m->info.sample_rate = c.sr;
    m->inter = c.inter;
    m->hidden = c.hidden;
    m->gin = c.gin;

    float scale = sqrtf((float)c.hidden);
    st = load_scaled(&l, "enc_p.emb_phone.weight", c.hidden, phone_dim, scale, &m->phone_w, err);
    if (!st) st = load_scaled(&l, "enc_p.emb_phone.bias", c.hidden, 0, scale, &m->phone_b, err);
    if (!st && m->info.uses_f0) {
        if (!vits_find(&l, "enc_p.emb_pitch.weight"))
            return avo_error_set(err, AVO_ERR_FORMAT, "%s: \"f0\" is 1 but there is no 'weight.enc_p.emb_pitch.weight'", path);
        st = load_scaled(&l, "enc_p.emb_pitch.weight", 256, c.hidden, scale, &m->pitch_table, err);
    }
    if (!st) st = vits_encoder_load(&l, "enc_p.encoder", c.heads, &m->enc, err);
    if (!st && (m->enc.hidden != c.hidden || m->enc.n_layers != c.layers || m->enc.filter != c.filter ||
                m->enc.kernel != c.kernel))
        st = avo_error_set(err, AVO_ERR_FORMAT,
                           "%s: the text encoder's weights (%d layers, hidden %d, filter %d, kernel %d) do not match the config "
                           "(%d, %d, %d, %d)",
                           path, m->enc.n_layers, m->enc.hidden, m->enc.filter, m->enc.kernel, c.layers, c.hidden, c.filter,
                           c.kernel);
    if (!st) st = vits_conv_load(&l, "enc_p.proj", 2 * (int64_t)c.inter, c.hidden, 1, true, (avo_conv1d_params){0}, &m->proj, err);
    if (!st) st = vits_flow_load(&l, "flow", 1, &m->flow, err);
    if (!st && (m->flow.channels != c.inter || m->flow.layers[0].wn.gin != c.gin))
        st = avo_error_set(err, AVO_ERR_FORMAT, "%s: the flow's weights (%d channels, gin %d) do not match the config (%d, %d)",
                           path, m->flow.channels, m->flow.layers[0].wn.gin, c.inter, c.gin);
    if (st) return st;

    vits_generator_config gc = {.resblock = c.resblock, .n_ups = c.n_ups, .n_kernels = c.n_kernels, .n_dilations = c.n_dil,
                                .nsf = m->info.uses_f0};
    for (int i = 0; i < c.n_ups; i++) gc.up_rates[i] = c.rates[i];
    for (int i = 0; i < c.n_kernels; i++)
        for (int j = 0; j < c.n_dil; j++) gc.dilations[i][j] = c.dil[i][j];
    st = vits_generator_load(&l, "dec", &gc, &m->dec, err);
    if (st) return st;
    if (m->dec.in_channels != c.inter || m->dec.initial_channels != c.initial || m->dec.gin != c.gin)
        return avo_error_set(err, AVO_ERR_FORMAT,
                             "%s: the decoder's weights (in %d, initial %d, gin %d) do not match the config (%d, %d, %d)", path,
                             m->dec.in_channels, m->dec.initial_channels, m->dec.gin, c.inter, c.initial, c.gin);
    for (int i = 0; i < c.n_ups; i++)
        if (m->dec.stage[i].up_kernel != c.up_kernels[i])
            return avo_error_set(err, AVO_ERR_FORMAT, "%s: decoder stage %d has kernel %d, the config says %d", path, i,
                                 m->dec.stage[i].up_kernel, c.up_kernels[i]);
    for (int i = 0; i < c.n_kernels; i++)
        if (m->dec.stage[0].rb[i].kernel != c.kernels[i])
            return avo_error_set(err, AVO_ERR_FORMAT, "%s: resblock %d has kernel %d, the config says %d", path, i,
                                 m->dec.stage[0].rb[i].kernel, c.kernels[i]);
    if ((int64_t)m->dec.upp * 100 != c.sr)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED,
                             "%s: upsampling by %d at %d Hz is not 100 frames per second (the RVC pipeline's frame rate)", path,
                             m->dec.upp, c.sr);
    m->info.hop = m->dec.upp;
    if (m->info.uses_f0) {
        st = load_scalar(&l, "dec.m_source.l_linear.weight", &m->src_w, err);
        if (!st) st = load_scalar(&l, "dec.m_source.l_linear.bias", &m->src_b, err);
        if (st) return st;
    }
    /* RVC takes the speaker count from emb_g, not from the config */
    t = vits_find(&l, "emb_g.weight");
    if (!t || t->ndim != 2 || t->shape[1] != c.gin || t->shape[0] < 1)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: 'weight.emb_g.weight' must be [speakers, %d]", path, c.gin);
    m->info.n_speakers = (int)t->shape[0];
    return vits_load(&l, "emb_g.weight", 2, (int64_t[]){t->shape[0], c.gin}, &m->emb_g, err);
}

static avo_status rvc_load_file(const char *path, avo_backend *be, avo_engine_session *ec, avo_rvc **out,
                                avo_error *err) {
    if (!path || !be || !out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_rvc_load: NULL argument");
    *out = NULL;
    avo_rvc *m = calloc(1, sizeof *m);
    if (!m) return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", path);
    m->be = be;
    avo_ckpt *ckpt = NULL;
    avo_status st = avo_ckpt_open(path, &ckpt, err);
    if (!st) st = avo_arena_create(be, 1u << 20, &m->weights, err);
    if (!st) st = avo_engine_attach(ec, m->weights, err);
    if (!st) st = rvc_load_all(ckpt, path, ec, m, err);
    avo_ckpt_free(ckpt);
    if (st) {
        avo_rvc_free(m);
        return st;
    }
    *out = m;
    return AVO_OK;
}

avo_status avo_rvc_load(const char *path, avo_backend *be, avo_rvc **out, avo_error *err) {
    return rvc_load_file(path, be, NULL, out, err);
}

/* avo_rvc_load_cached (engine_cache.h): the load above, run by the engine cache */
typedef struct rvc_args {
    const char *path;
    avo_backend *be;
    avo_rvc **out;
} rvc_args;

static avo_status rvc_load_cb(void *u, avo_engine_session *s, avo_error *err) {
    rvc_args *a = u;
    return rvc_load_file(a->path, a->be, s, a->out, err);
}

static void rvc_unload_cb(void *u) {
    rvc_args *a = u;
    avo_rvc_free(*a->out);
    *a->out = NULL;
}

avo_status avo_rvc_load_cached(const char *path, avo_backend *be, const avo_engine_request *req, avo_rvc **out,
                               avo_engine_result *res, avo_error *err) {
    if (!out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_rvc_load_cached: NULL argument");
    rvc_args a = {path, be, out};
    return avo_engine_load(req, path, NULL, "rvc/1", be, rvc_load_cb, rvc_unload_cb, &a, res, err);
}

void avo_rvc_free(avo_rvc *m) {
    if (!m) return;
    vits_encoder_free(&m->enc);
    vits_flow_free(&m->flow);
    vits_generator_free(&m->dec);
    avo_arena_free(m->weights);
    free(m);
}

const avo_rvc_info *avo_rvc_get_info(const avo_rvc *m) { return m ? &m->info : NULL; }

void avo_rvc_pitch_coarse(const float *f0_hz, int64_t frames, int32_t *coarse) {
    const double mel_min = 1127.0 * log(1.0 + 50.0 / 700.0), mel_max = 1127.0 * log(1.0 + 1100.0 / 700.0);
    for (int64_t i = 0; i < frames; i++) {
        double f = f0_hz[i];
        double mel = 1127.0 * log(1.0 + (f > 0 ? f : 0) / 700.0);
        if (mel > 0) mel = (mel - mel_min) * 254.0 / (mel_max - mel_min) + 1.0;
        if (!(mel > 1.0)) mel = 1.0; /* also NaN */
        if (mel > 255.0) mel = 255.0;
        coarse[i] = (int32_t)nearbyint(mel); /* np.rint: half to even */
    }
}

/* ---- inference -------------------------------------------------------------------------------- */

/* Ids as an I32 tensor. The engine uploads floats; int32 values travel as their bit patterns (the
 * copy is a plain memory copy on every back end). */
static avo_status upload_ids(avo_arena *a, const int32_t *ids, int64_t n, avo_tensor *out, avo_error *err) {
    float *tmp = malloc((size_t)n * sizeof(float));
    if (!tmp) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    memcpy(tmp, ids, (size_t)n * sizeof(float));
    avo_status st = avo_tensor_from_host(a, 1, &n, tmp, out, err);
    free(tmp);
    if (!st) out->dtype = AVO_DTYPE_I32;
    return st;
}

avo_status rvc_infer_taps(avo_rvc *m, avo_arena *a, const float *phone, int64_t frames, const int32_t *pitch,
                          const float *nsff0, int sid, const float *z_noise, const float *src_noise, uint64_t seed,
                          float *audio, rvc_taps *taps, avo_error *err) {
    if (!m || !a || !phone || !audio) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "RVC infer: NULL argument");
    const avo_rvc_info *in = &m->info;
    if (frames < 1 || frames > (int64_t)1 << 26)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "RVC infer: %lld frames", (long long)frames);
    if (sid < 0 || sid >= in->n_speakers)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "RVC infer: speaker id %d outside 0..%d", sid, in->n_speakers - 1);
    if (in->uses_f0) {
        if (!pitch || !nsff0)
            return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "RVC infer: this model uses f0: pitch and nsff0 are needed");
        for (int64_t i = 0; i < frames; i++) {
            if (pitch[i] < 0 || pitch[i] > 255)
                return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "RVC infer: coarse pitch %d at frame %lld outside 0..255",
                                     (int)pitch[i], (long long)i);
            if (!(nsff0[i] >= 0.0f) || !isfinite(nsff0[i]))
                return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "RVC infer: f0 %g Hz at frame %lld", (double)nsff0[i],
                                     (long long)i);
        }
    }
    int64_t T = frames, D = in->phone_dim, I = m->inter, hop = in->hop;
    for (int64_t i = 0; i < T * D; i++)
        if (!isfinite(phone[i]))
            return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "RVC infer: feature %lld of frame %lld is not finite",
                                 (long long)(i % D), (long long)(i / D));

    avo_backend *be = m->be;
    avo_arena_mark mk0 = avo_arena_get_mark(a);
    avo_status st = AVO_OK;
    float *zn_own = NULL, *sn_own = NULL, *mp = NULL, *lp = NULL, *src = NULL;
    const bool draw_noise = !z_noise || (in->uses_f0 && !src_noise);
    if (draw_noise) {
        zn_own = malloc((size_t)(I * T) * sizeof(float));
        sn_own = in->uses_f0 ? malloc((size_t)(T * hop) * sizeof(float)) : NULL;
        if (!zn_own || (in->uses_f0 && !sn_own)) {
            st = avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
            goto done;
        }
    }
    mp = malloc((size_t)(I * T) * sizeof(float));
    lp = malloc((size_t)(I * T) * sizeof(float));
    if (!mp || !lp) {
        st = avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
        goto done;
    }

    double t0 = avo_now_ms(), t1 = 0, t2 = 0;
    /* enc_p: (emb_phone(phone) + emb_pitch(pitch)) * sqrt(hidden) (folded), leaky ReLU 0.1 */
    avo_tensor ph = {0}, x = {0}, xt = {0}, enc = {0}, stats = {0}, zp = {0}, g = {0}, z = {0};
    {
        int64_t ps[2] = {T, D};
        avo_arena_mark mk = avo_arena_get_mark(a);
        if ((st = avo_tensor_from_host(a, 2, ps, phone, &ph, err))) goto done;
        if ((st = avo_op_linear(be, a, &ph, &m->phone_w, &m->phone_b, &x, err))) goto done;
        if (in->uses_f0) {
            avo_tensor ids = {0}, e = {0};
            if ((st = upload_ids(a, pitch, T, &ids, err))) goto done;
            if ((st = avo_op_embedding(be, a, &m->pitch_table, &ids, &e, err))) goto done;
            if ((st = avo_op_add(be, a, &x, &e, &x, err))) goto done;
        }
        if ((st = avo_op_act(be, a, &x, AVO_ACT_LEAKY_RELU, 0.1f, &x, err))) goto done;
        if ((st = avo_op_transpose(be, a, &x, &xt, err))) goto done;
        if ((st = vits_encoder_forward(be, a, &m->enc, &xt, &enc, err))) goto done;
        if ((st = vits_conv_run(be, a, &m->proj, &enc, &stats, err))) goto done;
        if (draw_noise) { /* while a GPU runs the encoder (launches are asynchronous there) */
            vits_rng rng;
            vits_rng_seed(&rng, seed);
            vits_rng_normal(&rng, zn_own, I * T); /* drawn in this order whether or not one is given */
            if (sn_own) vits_rng_normal(&rng, sn_own, T * hop);
            if (!z_noise) z_noise = zn_own;
            if (in->uses_f0 && !src_noise) src_noise = sn_own;
        }
        avo_tensor mr = avo_tensor_rows(&stats, 0, I), lr = avo_tensor_rows(&stats, I, I);
        if ((st = avo_tensor_to_host(a, &mr, mp, I * T, err))) goto done;
        if ((st = avo_tensor_to_host(a, &lr, lp, I * T, err))) goto done;
        avo_arena_rewind(a, mk);
    }
    /* z_p = m_p + exp(logs_p) * noise * 0.66666, in torch's order of float operations; lp becomes z_p */
    if (taps && taps->logs_p) memcpy(taps->logs_p, lp, (size_t)(I * T) * sizeof(float));
#pragma omp parallel for schedule(static) if (I * T > 65536)
    for (int64_t i = 0; i < I * T; i++) lp[i] = mp[i] + expf(lp[i]) * z_noise[i] * 0.66666f;
    if (taps && taps->m_p) memcpy(taps->m_p, mp, (size_t)(I * T) * sizeof(float));
    if (taps && taps->z_p) memcpy(taps->z_p, lp, (size_t)(I * T) * sizeof(float));
    t1 = avo_now_ms();
    {
        int64_t zs[2] = {I, T}, one = 1;
        int32_t sid32 = sid;
        avo_tensor ids = {0}, ge = {0};
        if ((st = avo_tensor_from_host(a, 2, zs, lp, &zp, err))) goto done;
        if ((st = upload_ids(a, &sid32, one, &ids, err))) goto done;
        if ((st = avo_op_embedding(be, a, &m->emb_g, &ids, &ge, err))) goto done;
        int64_t gs[2] = {m->gin, 1};
        if ((st = avo_tensor_reshape(&ge, 2, gs, &g, err))) goto done;
        if ((st = vits_flow_reverse(be, a, &m->flow, &zp, &g, &z, err))) goto done;
        if (taps && taps->z && (st = avo_tensor_to_host(a, &z, taps->z, I * T, err))) goto done;
    }
    t2 = avo_now_ms();
    if (in->uses_f0) {
        src = malloc((size_t)(T * hop) * sizeof(float));
        if (!src) {
            st = avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
            goto done;
        }
        vits_rvc_nsf_source(nsff0, T, (int)hop, in->sample_rate, src_noise, m->src_w, m->src_b, src);
        if (taps && taps->har_source) memcpy(taps->har_source, src, (size_t)(T * hop) * sizeof(float));
    }
    st = vits_generator_run(be, a, &m->dec, &z, &g, src, taps ? taps->chunk_frames : 0, audio, err);
    if (taps) {
        taps->ms_enc = t1 - t0;
        taps->ms_flow = t2 - t1;
        taps->ms_dec = avo_now_ms() - t2;
    }
done:
    if (st) avo_error_prefix(err, "RVC infer");
    free(zn_own);
    free(sn_own);
    free(mp);
    free(lp);
    free(src);
    avo_arena_rewind(a, mk0);
    return st;
}

avo_status avo_rvc_infer(avo_rvc *m, avo_arena *a, const float *phone, int64_t frames, const int32_t *pitch,
                         const float *nsff0, int sid, const float *z_noise, const float *src_noise, uint64_t seed,
                         float *audio, avo_error *err) {
    return rvc_infer_taps(m, a, phone, frames, pitch, nsff0, sid, z_noise, src_noise, seed, audio, NULL, err);
}
