/* so-vits-svc 4.0 / 4.1 generator on the engine (models.h), built from the VITS blocks of
 * vits_internal.h. The graph of SynthesizerTrn.infer (predict_f0 False), with the upstream names:
 *
 *   units [T, ssl] -> pre: Conv1d(ssl, hidden, 5, padding 2) -> + emb_uv(uv) (+ emb_vol(vol), a
 *   Linear(1, hidden) run as a 1x1 convolution) -> + enc_p.f0_emb(f0_to_coarse(f0)) -> enc_p.enc_
 *   (relative attention, window 4) -> enc_p.proj -> m_p, logs_p -> z_p = m_p + z * exp(logs_p) *
 *   noise_scale -> flow (4 mean-only couplings, WN of n_flow_layer layers, run in reverse with the
 *   speaker embedding emb_g(sid)) -> dec: NSF-HiFiGAN whose excitation comes from the host.
 *
 * What differs from RVC's generator is all on the host side of the source: so-vits' SineGen
 * upsamples f0 to samples first and sums 9 harmonics (h * f0), each with its own initial phase and
 * its own noise draw, mixed by m_source.l_linear (9 -> 1) and tanh. The phase follows torch's
 * arithmetic: the per-sample increment frac(h f0 / sr) in float32, torch's CPU cumsum accumulating
 * float32 values in double, and the -1 wrap corrections found from the float32 running sum, so the
 * sine matches the reference to float rounding even for long inputs.
 *
 * Two steps pass through the host because the engine has no op for them: the integer ids of the
 * embeddings (uploaded as raw 32-bit patterns) and exp(logs_p) of the prior sample (a [inter, T]
 * round trip). Everything else runs as engine ops on any back end. */
#include "models/sovits_internal.h"

#include "autovoice/checkpoint.h"
#include "autovoice/engine_cache.h"
#include "models/vits_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SV_MAX_CONFIG_BYTES (4 << 20)
#define SV_F0_BINS 256
#define SV_SINE_AMP 0.1f
#define SV_NOISE_STD 0.003f
#define SV_MAX_SPEAKERS 100000

struct avo_sovits {
    avo_backend *be;
    avo_arena *weights; /* never reset */
    avo_sovits_info info;
    int hidden, gin, n_flow_layer;
    char **spk_names; /* by id (NULL where the config names none) */
    vits_conv pre, emb_vol;
    avo_tensor emb_uv, f0_emb, emb_g;
    vits_encoder enc;
    vits_conv proj;
    vits_flow flow;
    vits_generator dec;
    float lin_w[SOVITS_HARMONICS], lin_b; /* dec.m_source.l_linear, applied on the host with the source */
};

/* ---- config.json --------------------------------------------------------------------------- */

typedef struct sv_config {
    int sample_rate, hop;
    int inter, hidden, filter, heads, layers, kernel, gin, ssl_dim, n_speakers, n_flow_layer;
    int n_ups, up_rates[VITS_MAX_UPS], up_kernels[VITS_MAX_UPS], initial_channels;
    int n_kernels, res_kernels[VITS_MAX_KERNELS], n_dilations, dilations[VITS_MAX_KERNELS][VITS_MAX_DILATIONS];
    bool vol_embedding, is41;
    char speech_encoder[32], interp[16];
} sv_config;

static char *sv_read_text(const char *path, avo_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        avo_error_set(err, AVO_ERR_NOT_FOUND, "cannot open the so-vits config %s", path);
        return NULL;
    }
    char *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size >= 0 && size <= SV_MAX_CONFIG_BYTES && fseek(f, 0, SEEK_SET) == 0) buf = malloc((size_t)size + 1);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (!buf) {
        avo_error_set(err, size > SV_MAX_CONFIG_BYTES ? AVO_ERR_FORMAT : AVO_ERR_IO, "cannot read the so-vits config %s%s",
                      path, size > SV_MAX_CONFIG_BYTES ? " (over 4 MB: not a config.json)" : "");
        return NULL;
    }
    buf[size] = 0;
    return buf;
}

/* Integer member key of obj into *out; def < INT_MIN-ish sentinel (required) when absent. */
static avo_status sv_json_int(const cJSON *obj, const char *sect, const char *key, bool required, int def, int lo, int hi,
                              int *out, const char *path, avo_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        if (required)
            return avo_error_set(err, AVO_ERR_FORMAT, "%s: no %s.%s: not a so-vits-svc config.json", path, sect, key);
        *out = def;
        return AVO_OK;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= lo && d <= hi) || d != floor(d))
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: %s.%s must be an integer in %d..%d", path, sect, key, lo, hi);
    *out = (int)d;
    return AVO_OK;
}

static avo_status sv_json_bool(const cJSON *obj, const char *sect, const char *key, bool *out, const char *path,
                               avo_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = false;
    if (!v || cJSON_IsNull(v)) return AVO_OK;
    if (!cJSON_IsBool(v)) return avo_error_set(err, AVO_ERR_FORMAT, "%s: %s.%s must be true or false", path, sect, key);
    *out = cJSON_IsTrue(v);
    return AVO_OK;
}

/* An integer list (at most cap values, each in lo..hi) into out, its length into *n; what names it. */
static avo_status sv_json_ints(const cJSON *v, const char *what, int cap, int lo, int hi, int *out, int *n,
                               const char *path, avo_error *err) {
    const cJSON *e;
    if (!cJSON_IsArray(v)) return avo_error_set(err, AVO_ERR_FORMAT, "%s: %s must be a list of integers", path, what);
    int k = cJSON_GetArraySize(v);
    if (k < 1 || k > cap)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: %s has %d entries (1..%d supported)", path, what, k, cap);
    int i = 0;
    cJSON_ArrayForEach(e, v) {
        double d = cJSON_IsNumber(e) ? e->valuedouble : NAN;
        if (!(d >= lo && d <= hi) || d != floor(d))
            return avo_error_set(err, AVO_ERR_FORMAT, "%s: %s[%d] must be an integer in %d..%d", path, what, i, lo, hi);
        out[i++] = (int)d;
    }
    *n = k;
    return AVO_OK;
}

static avo_status sv_json_string(const cJSON *obj, const char *sect, const char *key, const char *def, char *out,
                                 size_t cap, const char *path, avo_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    const char *s = def;
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap)
            return avo_error_set(err, AVO_ERR_FORMAT, "%s: %s.%s must be a short string", path, sect, key);
        s = v->valuestring;
    }
    snprintf(out, cap, "%s", s);
    return AVO_OK;
}

/* Options of so-vits models this generator does not implement. */
static avo_status sv_refuse(const cJSON *model, const char *path, avo_error *err) {
    static const char *const flags[] = {"use_depthwise_conv", "flow_share_parameter", "use_transformer_flow"};
    static const char *const what[] = {"depthwise-separable convolutions (tiny models)", "shared flow parameters",
                                       "the VITS2 transformer flow"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        bool on = false;
        avo_status st = sv_json_bool(model, "model", flags[i], &on, path, err);
        if (st) return st;
        if (on)
            return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: model.%s is true: %s are not supported", path, flags[i], what[i]);
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, "vocoder_name");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && strcmp(v->valuestring, "nsf-hifigan") == 0))
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: model.vocoder_name %s%s%s: only nsf-hifigan is supported", path,
                             cJSON_IsString(v) ? "'" : "", cJSON_IsString(v) ? v->valuestring : "(not a string)",
                             cJSON_IsString(v) ? "'" : "");
    v = cJSON_GetObjectItemCaseSensitive(model, "resblock");
    if (!v || !((cJSON_IsString(v) && strcmp(v->valuestring, "1") == 0) || (cJSON_IsNumber(v) && v->valuedouble == 1)))
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: model.resblock must be \"1\" (every so-vits config uses it)", path);
    return AVO_OK;
}

static avo_status sv_parse_config(const cJSON *root, const char *path, sv_config *c, avo_error *err) {
    memset(c, 0, sizeof *c);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(data) || !cJSON_IsObject(model))
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: no \"data\" and \"model\" sections: not a so-vits-svc config.json",
                             path);
    avo_status st = sv_refuse(model, path, err);
#define SV_INT(obj, sect, key, req, def, lo, hi, dst) \
    if (!st) st = sv_json_int(obj, sect, key, req, def, lo, hi, dst, path, err)
    SV_INT(data, "data", "sampling_rate", true, 0, 8000, 192000, &c->sample_rate);
    SV_INT(data, "data", "hop_length", true, 0, 1, 4096, &c->hop);
    SV_INT(model, "model", "inter_channels", true, 0, 2, 4096, &c->inter);
    SV_INT(model, "model", "hidden_channels", true, 0, 1, 4096, &c->hidden);
    SV_INT(model, "model", "filter_channels", true, 0, 1, 16384, &c->filter);
    SV_INT(model, "model", "n_heads", true, 0, 1, 64, &c->heads);
    SV_INT(model, "model", "n_layers", true, 0, 1, 64, &c->layers);
    SV_INT(model, "model", "kernel_size", true, 0, 1, 31, &c->kernel);
    SV_INT(model, "model", "gin_channels", true, 0, 1, 4096, &c->gin);
    SV_INT(model, "model", "ssl_dim", true, 0, 1, 4096, &c->ssl_dim);
    SV_INT(model, "model", "n_speakers", true, 0, 1, SV_MAX_SPEAKERS, &c->n_speakers);
    SV_INT(model, "model", "n_flow_layer", false, 4, 1, 64, &c->n_flow_layer);
    SV_INT(model, "model", "upsample_initial_channel", true, 0, 1, 8192, &c->initial_channels);
#undef SV_INT
    if (!st) st = sv_json_bool(model, "model", "vol_embedding", &c->vol_embedding, path, err);
    c->is41 = cJSON_GetObjectItemCaseSensitive(model, "speech_encoder") != NULL;
    if (!st) st = sv_json_string(model, "model", "speech_encoder", "vec256l9", c->speech_encoder, sizeof c->speech_encoder, path, err);
    if (!st) st = sv_json_string(data, "data", "unit_interpolate_mode", "left", c->interp, sizeof c->interp, path, err);
    int nk = 0;
#define SV_LIST(key, cap, lo, hi, dst, n) \
    if (!st) st = sv_json_ints(cJSON_GetObjectItemCaseSensitive(model, key), "model." key, cap, lo, hi, dst, n, path, err)
    SV_LIST("upsample_rates", VITS_MAX_UPS, 1, 64, c->up_rates, &c->n_ups);
    SV_LIST("upsample_kernel_sizes", VITS_MAX_UPS, 1, 256, c->up_kernels, &nk);
    SV_LIST("resblock_kernel_sizes", VITS_MAX_KERNELS, 1, 63, c->res_kernels, &c->n_kernels);
#undef SV_LIST
    if (!st && nk != c->n_ups)
        st = avo_error_set(err, AVO_ERR_FORMAT, "%s: %d upsample_rates but %d upsample_kernel_sizes", path, c->n_ups, nk);
    if (st) return st;
    const cJSON *dl = cJSON_GetObjectItemCaseSensitive(model, "resblock_dilation_sizes"), *e;
    if (!cJSON_IsArray(dl) || cJSON_GetArraySize(dl) != c->n_kernels)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: model.resblock_dilation_sizes must hold one list per resblock kernel (%d)",
                             path, c->n_kernels);
    int j = 0;
    cJSON_ArrayForEach(e, dl) {
        int n = 0;
        st = sv_json_ints(e, "model.resblock_dilation_sizes", VITS_MAX_DILATIONS, 1, 1024, c->dilations[j], &n, path, err);
        if (st) return st;
        if (j == 0) c->n_dilations = n;
        if (n != c->n_dilations)
            return avo_error_set(err, AVO_ERR_FORMAT, "%s: the resblock_dilation_sizes lists differ in length", path);
        j++;
    }
    int upp = 1;
    for (int i = 0; i < c->n_ups; i++) upp *= c->up_rates[i];
    if (upp != c->hop)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: the upsample rates multiply to %d but data.hop_length is %d", path, upp,
                             c->hop);
    if (c->inter % 2) return avo_error_set(err, AVO_ERR_FORMAT, "%s: model.inter_channels %d is odd", path, c->inter);
    return AVO_OK;
}

static void sv_free_names(avo_sovits *m) {
    if (!m->spk_names) return;
    for (int i = 0; i < m->info.n_speakers; i++) free(m->spk_names[i]);
    free(m->spk_names);
    m->spk_names = NULL;
}

/* The "spk" map (name -> id); ids outside 0..n_speakers-1 are ignored, as upstream never uses them. */
static avo_status sv_read_speakers(const cJSON *root, avo_sovits *m, const char *path, avo_error *err) {
    m->spk_names = calloc((size_t)m->info.n_speakers, sizeof *m->spk_names);
    if (!m->spk_names) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory reading %s", path);
    const cJSON *spk = cJSON_GetObjectItemCaseSensitive(root, "spk"), *e;
    if (!cJSON_IsObject(spk)) return AVO_OK;
    cJSON_ArrayForEach(e, spk) {
        if (!cJSON_IsNumber(e) || !e->string) continue;
        double d = e->valuedouble;
        if (!(d >= 0 && d < m->info.n_speakers) || d != floor(d) || m->spk_names[(int)d]) continue;
        size_t n = strlen(e->string);
        char *s = malloc(n + 1);
        if (!s) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory reading %s", path);
        memcpy(s, e->string, n + 1);
        m->spk_names[(int)d] = s;
    }
    return AVO_OK;
}

/* ---- weights ---------------------------------------------------------------------------------- */

static avo_status sv_check(const char *file, const char *what, long long got, long long want, avo_error *err) {
    if (got == want) return AVO_OK;
    return avo_error_set(err, AVO_ERR_FORMAT, "%s: the weights have %s %lld, the config says %lld", file, what, got, want);
}

static avo_status sv_load_weights(const vits_loader *l, const sv_config *c, avo_sovits *m, avo_error *err) {
    const char *file = l->file;
    int64_t H = c->hidden;
    avo_status st;
    int64_t gs[2] = {c->n_speakers, c->gin};
    st = vits_load(l, "emb_g.weight", 2, gs, &m->emb_g, err);
    if (!st && c->vol_embedding) {
        if (!vits_find(l, "emb_vol.weight"))
            return avo_error_set(err, AVO_ERR_FORMAT, "%s: the config asks for vol_embedding but there is no 'emb_vol.weight'",
                                 file);
        st = vits_conv_load(l, "emb_vol", H, 1, 1, true, (avo_conv1d_params){0}, &m->emb_vol, err);
    }
    if (!st) st = vits_conv_load(l, "pre", H, c->ssl_dim, 5, true, (avo_conv1d_params){.padding = 2}, &m->pre, err);
    int64_t us[2] = {2, H}, fs[2] = {SV_F0_BINS, H};
    if (!st) st = vits_load(l, "emb_uv.weight", 2, us, &m->emb_uv, err);
    if (!st) st = vits_load(l, "enc_p.f0_emb.weight", 2, fs, &m->f0_emb, err);
    if (!st) st = vits_encoder_load(l, "enc_p.enc_", c->heads, &m->enc, err);
    if (st) return st;
    st = sv_check(file, "text encoder width", m->enc.hidden, c->hidden, err);
    if (!st) st = sv_check(file, "text encoder layers", m->enc.n_layers, c->layers, err);
    if (!st) st = sv_check(file, "FFN channels", m->enc.filter, c->filter, err);
    if (!st) st = sv_check(file, "FFN kernel", m->enc.kernel, c->kernel, err);
    if (!st) st = vits_conv_load(l, "enc_p.proj", 2 * (int64_t)c->inter, H, 1, true, (avo_conv1d_params){0}, &m->proj, err);
    if (!st) st = vits_flow_load(l, "flow", 1, &m->flow, err);
    if (st) return st;
    st = sv_check(file, "flow channels", m->flow.channels, c->inter, err);
    if (!st) st = sv_check(file, "coupling layers", m->flow.n_flows, 4, err);
    if (!st) st = sv_check(file, "flow WN width", m->flow.layers[0].wn.hidden, c->hidden, err);
    if (!st) st = sv_check(file, "WN layers per coupling (n_flow_layer)", m->flow.layers[0].wn.n_layers, c->n_flow_layer, err);
    if (!st) st = sv_check(file, "flow conditioning width", m->flow.layers[0].wn.gin, c->gin, err);
    if (st) return st;

    vits_generator_config gc = {.resblock = 1, .n_ups = c->n_ups, .n_kernels = c->n_kernels, .n_dilations = c->n_dilations,
                                .nsf = true};
    for (int i = 0; i < c->n_ups; i++) {
        gc.up_rates[i] = c->up_rates[i];
        /* 4.1 pads ups by (k - u + 1) / 2 and noise_convs by (s + 1) / 2, 4.0 (and the blocks) by (k - u) / 2 and
         * s / 2: the same for even values, which the blocks require and every shipped config has */
        if ((c->up_kernels[i] - c->up_rates[i]) % 2)
            return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: upsampling kernel %d with rate %d (kernel - rate must be even)",
                                 file, c->up_kernels[i], c->up_rates[i]);
    }
    for (int j = 0; j < c->n_kernels; j++)
        for (int d = 0; d < c->n_dilations; d++) gc.dilations[j][d] = c->dilations[j][d];
    /* the blocks take conv_post's bias as optional (RVC has none); so-vits always has one */
    if (!vits_find(l, "dec.conv_post.bias"))
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: no 'model.dec.conv_post.bias': not a so-vits-svc generator, or a damaged file",
                             file);
    st = vits_generator_load(l, "dec", &gc, &m->dec, err);
    if (st) return st;
    st = sv_check(file, "generator input channels", m->dec.in_channels, c->inter, err);
    if (!st) st = sv_check(file, "generator initial channels", m->dec.initial_channels, c->initial_channels, err);
    if (!st) st = sv_check(file, "generator conditioning width", m->dec.gin, c->gin, err);
    for (int i = 0; !st && i < c->n_ups; i++) st = sv_check(file, "upsampling kernel", m->dec.stage[i].up_kernel, c->up_kernels[i], err);
    for (int j = 0; !st && j < c->n_kernels; j++) st = sv_check(file, "resblock kernel", m->dec.stage[0].rb[j].kernel, c->res_kernels[j], err);
    if (st) return st;

    /* the source mixer runs on the host with the sine source */
    const avo_ckpt_tensor *w = vits_find(l, "dec.m_source.l_linear.weight"), *b = vits_find(l, "dec.m_source.l_linear.bias");
    if (!w || !b || w->numel != SOVITS_HARMONICS || b->numel != 1)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: dec.m_source.l_linear must be Linear(%d, 1) (harmonic_num 8)", file,
                             SOVITS_HARMONICS);
    st = avo_ckpt_tensor_read_f32(l->ckpt, w, m->lin_w, SOVITS_HARMONICS, err);
    if (!st) st = avo_ckpt_tensor_read_f32(l->ckpt, b, &m->lin_b, 1, err);
    return st;
}

static void sv_release(avo_sovits *m) {
    vits_encoder_free(&m->enc);
    vits_flow_free(&m->flow);
    vits_generator_free(&m->dec);
    sv_free_names(m);
    avo_arena_free(m->weights);
}

/* config_path, or config.json in the model's folder. */
static avo_status sv_config_path(const char *model_path, const char *config_path, char *cfg_path, size_t n,
                                 avo_error *err) {
    if (config_path) {
        snprintf(cfg_path, n, "%s", config_path);
    } else {
        const char *slash = strrchr(model_path, '/');
        int dir = slash ? (int)(slash - model_path) : 0;
        if (snprintf(cfg_path, n, "%.*s%sconfig.json", dir, model_path, slash ? "/" : "") >= (int)n)
            return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "sovits_load: path too long");
    }
    return AVO_OK;
}

static avo_status sv_load_file(const char *model_path, const char *config_path, avo_backend *be, avo_engine_session *ec,
                               avo_sovits **out, avo_error *err) {
    if (!model_path || !be || !out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "sovits_load: missing argument");
    *out = NULL;
    char cfg_path[4096];
    if (sv_config_path(model_path, config_path, cfg_path, sizeof cfg_path, err)) return err ? err->code : AVO_ERR_INVALID_ARGUMENT;
    char *text = sv_read_text(cfg_path, err);
    if (!text) return err ? err->code : AVO_ERR_IO;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) return avo_error_set(err, AVO_ERR_FORMAT, "%s: not valid JSON", cfg_path);
    sv_config c;
    avo_status st = sv_parse_config(root, cfg_path, &c, err);
    avo_sovits *m = NULL;
    avo_ckpt *ckpt = NULL;
    if (!st) {
        m = calloc(1, sizeof *m);
        if (!m) st = avo_error_set(err, AVO_ERR_NO_MEMORY, "sovits_load: out of memory");
    }
    if (!st) {
        m->be = be;
        avo_sovits_info *in = &m->info;
        in->version = c.is41 ? 41 : 40;
        in->sample_rate = c.sample_rate;
        in->hop = c.hop;
        in->ssl_dim = c.ssl_dim;
        in->n_speakers = c.n_speakers;
        in->inter_channels = c.inter;
        in->vol_embedding = c.vol_embedding;
        snprintf(in->speech_encoder, sizeof in->speech_encoder, "%s", c.speech_encoder);
        snprintf(in->unit_interpolate_mode, sizeof in->unit_interpolate_mode, "%s", c.interp);
        m->hidden = c.hidden;
        m->gin = c.gin;
        m->n_flow_layer = c.n_flow_layer;
        st = sv_read_speakers(root, m, cfg_path, err);
    }
    cJSON_Delete(root);
    if (!st) st = avo_ckpt_open(model_path, &ckpt, err);
    if (!st) {
        const avo_ckpt_value *sd = avo_ckpt_lookup(ckpt, "model");
        if (!sd || avo_ckpt_value_kind(sd) != AVO_CKPT_DICT)
            st = avo_error_set(err, AVO_ERR_FORMAT,
                               "%s: no \"model\" state_dict: not a so-vits-svc G_*.pth (an RVC voice model keeps its "
                               "weights under \"weight\")",
                               model_path);
    }
    if (!st) st = avo_arena_create(be, 64u << 20, &m->weights, err);
    if (!st) st = avo_engine_attach(ec, m->weights, err);
    if (!st) {
        vits_loader l = {.ckpt = ckpt, .a = m->weights, .prefix = "model.", .file = model_path, .ec = ec};
        st = sv_load_weights(&l, &c, m, err);
    }
    avo_ckpt_free(ckpt);
    if (st) {
        if (m) sv_release(m);
        free(m);
        return st;
    }
    *out = m;
    return AVO_OK;
}

avo_status avo_sovits_load(const char *model_path, const char *config_path, avo_backend *be, avo_sovits **out,
                           avo_error *err) {
    return sv_load_file(model_path, config_path, be, NULL, out, err);
}

/* avo_sovits_load_cached (engine_cache.h): the load above, run by the engine cache */
typedef struct sv_args {
    const char *model_path, *config_path;
    avo_backend *be;
    avo_sovits **out;
} sv_args;

static avo_status sv_load_cb(void *u, avo_engine_session *s, avo_error *err) {
    sv_args *a = u;
    return sv_load_file(a->model_path, a->config_path, a->be, s, a->out, err);
}

static void sv_unload_cb(void *u) {
    sv_args *a = u;
    avo_sovits_free(*a->out);
    *a->out = NULL;
}

avo_status avo_sovits_load_cached(const char *model_path, const char *config_path, avo_backend *be,
                                  const avo_engine_request *req, avo_sovits **out, avo_engine_result *res,
                                  avo_error *err) {
    if (!model_path || !out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_sovits_load_cached: NULL argument");
    char cfg_path[4096];
    avo_status st = sv_config_path(model_path, config_path, cfg_path, sizeof cfg_path, err);
    if (st) return st;
    sv_args a = {model_path, cfg_path, be, out};
    return avo_engine_load(req, model_path, cfg_path, "sovits/1", be, sv_load_cb, sv_unload_cb, &a, res, err);
}

void avo_sovits_free(avo_sovits *m) {
    if (!m) return;
    sv_release(m);
    free(m);
}

const avo_sovits_info *avo_sovits_get_info(const avo_sovits *m) { return m ? &m->info : NULL; }

int sovits_hidden(const avo_sovits *m) { return m ? m->hidden : 0; }

int avo_sovits_speaker_id(const avo_sovits *m, const char *name) {
    if (!m || !name) return -1;
    for (int i = 0; i < m->info.n_speakers; i++)
        if (m->spk_names[i] && strcmp(m->spk_names[i], name) == 0) return i;
    return -1;
}

const char *avo_sovits_speaker_name(const avo_sovits *m, int id) {
    return m && id >= 0 && id < m->info.n_speakers ? m->spk_names[id] : NULL;
}

/* ---- host glue -------------------------------------------------------------------------------- */

void avo_sovits_f0_coarse(const float *f0_hz, int64_t frames, int32_t *coarse) {
    /* utils.f0_to_coarse (4.1) in float32 as torch evaluates it: mel = 1127 log(1 + f0 / 700), then
     * mel * a - b for mel > 0, round half to even, clamp to 1..255 */
    const double mel_min = 1127.0 * log(1.0 + 50.0 / 700.0), mel_max = 1127.0 * log(1.0 + 1100.0 / 700.0);
    const double ad = (SV_F0_BINS - 2) / (mel_max - mel_min);
    const float a = (float)ad, b = (float)(mel_min * ad - 1.0);
    for (int64_t i = 0; i < frames; i++) {
        float mel = 1127.0f * logf(1.0f + f0_hz[i] / 700.0f);
        if (mel > 0.0f) mel = mel * a - b;
        float r = nearbyintf(mel); /* FE_TONEAREST: half to even, as torch.round */
        int32_t c = isnan(r) ? 1 : r < 1.0f ? 1 : r > SV_F0_BINS - 1 ? SV_F0_BINS - 1 : (int32_t)r;
        coarse[i] = c;
    }
}

avo_status avo_sovits_expand_units(const float *units, int64_t src_frames, int dim, int64_t frames, const char *mode,
                                   float *out, avo_error *err) {
    if (!units || !out || src_frames < 1 || dim < 1 || frames < 1 || !mode)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "sovits_expand_units: empty input");
    bool left = strcmp(mode, "left") == 0;
    if (!left && strcmp(mode, "nearest") != 0)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "sovits_expand_units: mode '%s' (nearest or left)", mode);
    /* nearest: F.interpolate's floor(i * (float)(S / T)); left: the walk over the edges (j + 1) * T / S
     * (computed in float32 by upstream), which moves at most one unit per frame */
    float scale = (float)((double)src_frames / (double)frames);
    int64_t j = 0;
    for (int64_t i = 0; i < frames; i++) {
        int64_t s;
        if (left) {
            float edge = (float)((double)((j + 1) * frames) / (double)src_frames);
            if (!((float)i < edge) && j + 1 < src_frames) j++;
            s = j;
        } else {
            s = (int64_t)floorf((float)i * scale);
            if (s > src_frames - 1) s = src_frames - 1;
        }
        memcpy(out + i * dim, units + s * dim, (size_t)dim * sizeof(float));
    }
    return AVO_OK;
}

void avo_sovits_fill_f0(const float *f0_hz, int64_t frames, float *f0_out, float *uv) {
    int64_t prev = -1; /* last voiced frame */
    for (int64_t i = 0; i < frames; i++) uv[i] = f0_hz[i] > 0.0f ? 1.0f : 0.0f;
    for (int64_t i = 0; i <= frames; i++) {
        if (i < frames && uv[i] == 0.0f) continue;
        /* frames prev+1 .. i-1 are unvoiced: hold or interpolate (np.interp in time, linear in frames) */
        float a = prev >= 0 ? f0_hz[prev] : (i < frames ? f0_hz[i] : 0.0f);
        float b = i < frames ? f0_hz[i] : a;
        for (int64_t k = prev + 1; k < i; k++)
            f0_out[k] = prev >= 0 && i < frames ? (float)(a + (double)(b - a) * (double)(k - prev) / (double)(i - prev)) : a;
        if (i < frames) f0_out[i] = f0_hz[i];
        prev = i;
    }
}

avo_status avo_sovits_volume(const float *samples, int64_t n, int hop, float *vol, avo_error *err) {
    if (!samples || !vol || hop < 1 || n <= (hop + 1) / 2)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "sovits_volume: need more than %d samples", (hop + 1) / 2);
    int64_t pad = hop / 2;
    for (int64_t f = 0; f < n / hop; f++) {
        double s = 0.0;
        for (int64_t k = f * hop; k < (f + 1) * hop; k++) {
            int64_t i = k - pad; /* reflect without repeating the edge sample */
            if (i < 0) i = -i;
            if (i >= n) i = 2 * (n - 1) - i;
            s += (double)samples[i] * samples[i];
        }
        vol[f] = (float)sqrt(s / hop);
    }
    return AVO_OK;
}

/* ---- inference -------------------------------------------------------------------------------- */

/* Uniform [0, 1) from a standard normal draw (its CDF), so one RNG serves every draw. */
static float sv_uniform_of(float z) {
    float u = (float)(0.5 * erfc(-(double)z / sqrt(2.0)));
    return u < 1.0f ? u : 0.99999994f;
}

/* so-vits' SineGen (9 harmonics) + l_linear + tanh on the host: out [frames * upp]. noise: [frames * upp * 9]
 * sample-major draws, or NULL to draw them per frame from rng. See the file comment for the arithmetic. */
static avo_status sv_source(const avo_sovits *m, const float *f0, int64_t frames, const float *ini, const float *noise,
                            vits_rng *rng, float *out, avo_error *err) {
    enum { H = SOVITS_HARMONICS };
    const int upp = m->info.hop;
    const float sr = (float)m->info.sample_rate, noise_uv = (float)(0.1 / 3.0);
    float *buf = NULL;
    if (!noise) {
        buf = malloc((size_t)upp * H * sizeof(float));
        if (!buf) return avo_error_set(err, AVO_ERR_NO_MEMORY, "sovits: out of memory for the source");
    }
    double run[H] = {0}, phase[H] = {0};
    float prev_frac[H] = {0};
    for (int64_t t = 0; t < frames; t++) {
        const float f = f0[t];
        const bool voiced = f > 0.0f;
        float inc[H];
        for (int h = 0; h < H; h++) {
            float q = f * (float)(h + 1) / sr;
            inc[h] = q - floorf(q); /* torch's remainder(x, 1) */
        }
        const float *nz = noise ? noise + t * (int64_t)upp * H : buf;
        if (!noise) vits_rng_normal(rng, buf, (int64_t)upp * H);
        for (int j = 0; j < upp; j++) {
            const int64_t n = t * upp + j;
            double acc = 0.0;
            for (int h = 0; h < H; h++) {
                float r = inc[h];
                if (n == 0 && h > 0) r += ini[h]; /* rand_ini joins the first sample's increment; 0 for h = 0 */
                run[h] += r;                      /* torch's cumsum: float32 values, double accumulator */
                float rf = (float)run[h];
                float fr = rf - floorf(rf);
                float shift = n > 0 && fr - prev_frac[h] < 0.0f ? -1.0f : 0.0f;
                prev_frac[h] = fr;
                phase[h] += (double)(r + shift);
                float p = (float)phase[h];
                float s = sinf(p * 2.0f * (float)M_PI) * SV_SINE_AMP;
                float e = voiced ? s + SV_NOISE_STD * nz[j * H + h] : noise_uv * nz[j * H + h];
                acc += (double)e * m->lin_w[h];
            }
            out[n] = tanhf((float)acc + m->lin_b);
        }
    }
    free(buf);
    return AVO_OK;
}

/* Integer ids as an engine I32 tensor: the 32-bit patterns go through the float upload unchanged. */
static avo_status sv_upload_ids(avo_arena *a, const int32_t *ids, int64_t n, avo_tensor *out, avo_error *err) {
    float *bits = malloc((size_t)n * sizeof(float));
    if (!bits) return avo_error_set(err, AVO_ERR_NO_MEMORY, "sovits: out of memory");
    memcpy(bits, ids, (size_t)n * sizeof(float));
    avo_status st = avo_tensor_from_host(a, 1, &n, bits, out, err);
    free(bits);
    if (!st) out->dtype = AVO_DTYPE_I32;
    return st;
}

/* table[ids] as [D, n] (embedding gives [n, D]); x += it when x is given, else out = it. */
static avo_status sv_embed_add(avo_backend *be, avo_arena *a, const avo_tensor *table, const int32_t *ids, int64_t n,
                               avo_tensor *x, avo_error *err) {
    avo_arena_mark mk = avo_arena_get_mark(a);
    avo_tensor id = {0}, e = {0}, et = {0};
    avo_status st = sv_upload_ids(a, ids, n, &id, err);
    if (!st) st = avo_op_embedding(be, a, table, &id, &e, err);
    if (!st) st = avo_op_transpose(be, a, &e, &et, err);
    if (!st) st = avo_op_add(be, a, x, &et, x, err);
    avo_arena_rewind(a, mk);
    return st;
}

static avo_status sv_tap(avo_arena *a, const avo_tensor *t, float *dst, avo_error *err) {
    return dst ? avo_tensor_to_host(a, t, dst, avo_tensor_numel(t), err) : AVO_OK;
}

#define TRY(expr)          \
    do {                   \
        st = (expr);       \
        if (st) goto done; \
    } while (0)

avo_status sovits_infer_taps(avo_sovits *m, avo_arena *a, const float *units, int64_t frames, const float *f0_hz,
                             const float *uv, const float *vol, int sid, float noise_scale,
                             const avo_sovits_noise *noise, uint64_t seed, float *audio, sovits_taps *taps,
                             avo_error *err) {
    if (!m || !a || !units || !f0_hz || !audio || frames < 1)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "sovits_infer: missing input or no frames");
    const avo_sovits_info *in = &m->info;
    if (sid < 0 || sid >= in->n_speakers)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "sovits_infer: speaker %d outside 0..%d", sid, in->n_speakers - 1);
    if (!(noise_scale >= 0.0f && noise_scale <= 100.0f))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "sovits_infer: noise_scale must be in 0..100");
    if (frames > ((int64_t)1 << 40) / in->hop)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "sovits_infer: %lld frames is too long", (long long)frames);
    for (int64_t i = 0; i < frames; i++)
        if (!(f0_hz[i] >= 0.0f && f0_hz[i] < 1e5f) || (vol && in->vol_embedding && !isfinite(vol[i])))
            return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "sovits_infer: f0 or volume of frame %lld is not usable",
                                 (long long)i);
    const avo_sovits_noise none = {0};
    if (!noise) noise = &none;
    const int64_t C = in->inter_channels, T = frames, N = frames * in->hop;
    avo_backend *be = m->be;
    avo_status st = AVO_OK;
    avo_arena_mark mk0 = avo_arena_get_mark(a);
    double t0 = avo_now_ms(), t1;
    int32_t *ids = malloc((size_t)T * sizeof(int32_t) * 2);
    float *zs = malloc((size_t)(C * T) * sizeof(float) * 2), *src = malloc((size_t)N * sizeof(float));
    vits_rng rng;
    vits_rng_seed(&rng, seed);
    if (!ids || !zs || !src) {
        st = avo_error_set(err, AVO_ERR_NO_MEMORY, "sovits_infer: out of memory for %lld frames", (long long)T);
        goto done;
    }
    int32_t *coarse = ids, *uvid = ids + T;
    float *zdraw = zs, *logs = zs + C * T;
    avo_sovits_f0_coarse(f0_hz, T, coarse);
    for (int64_t i = 0; i < T; i++) uvid[i] = (uv ? uv[i] != 0.0f : f0_hz[i] > 0.0f) ? 1 : 0;
    if (taps && taps->coarse) memcpy(taps->coarse, coarse, (size_t)T * sizeof(int32_t));

    /* draws, in a fixed order: z, rand_ini, then the source noise frame by frame */
    if (noise->z)
        memcpy(zdraw, noise->z, (size_t)(C * T) * sizeof(float));
    else
        vits_rng_normal(&rng, zdraw, C * T);
    float ini[SOVITS_HARMONICS] = {0};
    if (noise->rand_ini) {
        memcpy(ini, noise->rand_ini, sizeof ini);
    } else {
        vits_rng_normal(&rng, ini, SOVITS_HARMONICS);
        for (int h = 0; h < SOVITS_HARMONICS; h++) ini[h] = sv_uniform_of(ini[h]);
    }
    ini[0] = 0.0f;

    /* x = pre(units) + emb_uv(uv) (+ emb_vol(vol)) + f0_emb(coarse) */
    avo_tensor u = {0}, ut = {0}, x = {0}, h = {0}, stats = {0}, zp = {0}, zt = {0}, z = {0}, g = {0}, g2 = {0};
    int64_t us[2] = {T, in->ssl_dim};
    TRY(avo_tensor_from_host(a, 2, us, units, &u, err));
    TRY(avo_op_transpose(be, a, &u, &ut, err));
    TRY(vits_conv_run(be, a, &m->pre, &ut, &x, err));
    TRY(sv_embed_add(be, a, &m->emb_uv, uvid, T, &x, err));
    if (vol && in->vol_embedding) {
        avo_arena_mark mk = avo_arena_get_mark(a);
        avo_tensor v = {0}, ve = {0};
        int64_t vs[2] = {1, T};
        TRY(avo_tensor_from_host(a, 2, vs, vol, &v, err));
        TRY(vits_conv_run(be, a, &m->emb_vol, &v, &ve, err));
        TRY(avo_op_add(be, a, &x, &ve, &x, err));
        avo_arena_rewind(a, mk);
    }
    if (taps) TRY(sv_tap(a, &x, taps->x, err));
    TRY(sv_embed_add(be, a, &m->f0_emb, coarse, T, &x, err));

    /* enc_p: encoder, proj, prior sample z_p = m_p + z * exp(logs_p) * noise_scale */
    TRY(vits_encoder_forward(be, a, &m->enc, &x, &h, err));
    TRY(vits_conv_run(be, a, &m->proj, &h, &stats, err));
    avo_tensor mp = avo_tensor_rows(&stats, 0, C), lp = avo_tensor_rows(&stats, C, C);
    if (taps) TRY(sv_tap(a, &mp, taps->m_p, err));
    if (taps) TRY(sv_tap(a, &lp, taps->logs_p, err));
    TRY(avo_tensor_to_host(a, &lp, logs, C * T, err)); /* no exp op in the engine: one [inter, T] round trip */
    for (int64_t i = 0; i < C * T; i++) logs[i] = zdraw[i] * expf(logs[i]) * noise_scale;
    int64_t zs2[2] = {C, T};
    TRY(avo_tensor_from_host(a, 2, zs2, logs, &zt, err));
    TRY(avo_op_add(be, a, &mp, &zt, &zp, err));
    if (taps) TRY(sv_tap(a, &zp, taps->z_p, err));
    t1 = avo_now_ms();
    if (taps) taps->ms_enc = t1 - t0;

    /* speaker, flow, generator */
    int32_t sid32 = sid;
    int64_t gshape[2] = {m->gin, 1};
    TRY(sv_upload_ids(a, &sid32, 1, &g, err));
    TRY(avo_op_embedding(be, a, &m->emb_g, &g, &g2, err));
    TRY(avo_tensor_reshape(&g2, 2, gshape, &g, err));
    TRY(vits_flow_reverse(be, a, &m->flow, &zp, &g, &z, err));
    if (taps) TRY(sv_tap(a, &z, taps->z, err));
    t0 = avo_now_ms();
    if (taps) taps->ms_flow = t0 - t1;
    TRY(sv_source(m, f0_hz, T, ini, noise->source, &rng, src, err));
    if (taps && taps->har_source) memcpy(taps->har_source, src, (size_t)N * sizeof(float));
    t1 = avo_now_ms();
    if (taps) taps->ms_source = t1 - t0;
    TRY(vits_generator_run(be, a, &m->dec, &z, &g, src, taps ? taps->chunk_frames : 0, audio, err));
    if (taps) taps->ms_dec = avo_now_ms() - t1;
done:
    free(ids);
    free(zs);
    free(src);
    avo_arena_rewind(a, mk0);
    return st;
}

avo_status avo_sovits_infer(avo_sovits *m, avo_arena *a, const float *units, int64_t frames, const float *f0_hz,
                            const float *uv, const float *vol, int sid, float noise_scale,
                            const avo_sovits_noise *noise, uint64_t seed, float *audio, avo_error *err) {
    return sovits_infer_taps(m, a, units, frames, f0_hz, uv, vol, sid, noise_scale, noise, seed, audio, NULL, err);
}
