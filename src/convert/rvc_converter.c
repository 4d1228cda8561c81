/* The neural converter: RVC v1/v2 voice models on the engine (see convert.h for the chain).
 *
 * Segments: the 16 kHz signal is reflect-padded by one second at both ends, then cut into segments of
 * about 30 s at the quietest 20 ms inside the last 5 s of each; every segment runs with one second of
 * real context on each side, which is dropped from its output. Cuts fall on multiples of 320 samples
 * (one content frame), so the 100 frames/s synthesizer grid stays aligned with the song. */
#include "converter_internal.h"

#include "autovoice/models.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RVC_RATE 16000
#define RVC_FRAME 160          /* samples per synthesizer frame at 16 kHz (10 ms) */
#define RVC_CONTEXT 16000      /* context on each side of a segment (1 s) */
#define RVC_SEGMENT 480000     /* longest segment (30 s) */
#define RVC_CUT_SEARCH 80000   /* a cut is searched in the last 5 s of a segment */
#define RVC_INDEX_K 8

typedef struct rvc_state {
    avo_backend *be;
    avo_arena *arena;
    avo_hubert *hubert;
    avo_rvc *rvc;
    feature_index *index;
    avo_neural_config cfg;
    const avo_voice_analysis *target;
    char device[64];
    char backend[32];
    char fallback[300];
} rvc_state;

void avo_neural_config_default(avo_neural_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->index_rate = 0.75;
    cfg->device = "cpu";
    cfg->seed = 1234;
}

/* ---- signal helpers ---- */

static void biquad_pass(float *x, int64_t n, const double b[3], const double a[3], int reverse) {
    double x1 = 0, x2 = 0, y1 = 0, y2 = 0;
    for (int64_t k = 0; k < n; k++) {
        const int64_t i = reverse ? n - 1 - k : k;
        const double in = x[i];
        const double y = b[0] * in + b[1] * x1 + b[2] * x2 - a[1] * y1 - a[2] * y2;
        x2 = x1, x1 = in, y2 = y1, y1 = y;
        x[i] = (float)y;
    }
}

void rvc_highpass_16k(float *x, int64_t n) {
    /* 4th-order Butterworth as two sections with Q = 1/(2 cos(pi/8)) and 1/(2 cos(3 pi/8)). */
    const double qs[2] = {0.54119610014619690, 1.3065629648763766};
    const double k = tan(M_PI * 48.0 / RVC_RATE);
    for (int s = 0; s < 2; s++) {
        const double q = qs[s], norm = 1.0 / (1.0 + k / q + k * k);
        const double b[3] = {norm, -2.0 * norm, norm};
        const double a[3] = {1.0, 2.0 * (k * k - 1.0) * norm, (1.0 - k / q + k * k) * norm};
        biquad_pass(x, n, b, a, 0);
        biquad_pass(x, n, b, a, 1);
    }
}

/* Content features [cf, dim] -> [2 * cf, dim] by repeating each frame (F.interpolate nearest, x2). */
static void repeat_x2(const float *in, int64_t cf, int dim, float *out) {
    for (int64_t t = 0; t < cf; t++) {
        memcpy(out + (2 * t) * dim, in + t * dim, sizeof(float) * (size_t)dim);
        memcpy(out + (2 * t + 1) * dim, in + t * dim, sizeof(float) * (size_t)dim);
    }
}

avo_status rvc_chain_segment(const rvc_chain *ch, avo_arena *a, const float *x, int64_t n, const float *f0_hz,
                             const float *z_noise, const float *src_noise, float *audio, int64_t *frames,
                             avo_error *err) {
    const avo_rvc_info *info = avo_rvc_get_info(ch->rvc);
    *frames = 0;
    if (n < 400) return AVO_OK; /* shorter than one content frame: nothing to say */
    const int v1 = info->version == 1;
    avo_tensor feat;
    /* RVC reads layer 9 (v1) or 12 (v2) of HuBERT base; smaller encoders give their last layer. */
    const int layers = avo_hubert_layers(ch->hubert), want = v1 ? 9 : 12;
    avo_status st = avo_hubert_extract(ch->hubert, a, x, n, want < layers ? want : layers, v1, &feat, err);
    if (st) return st;
    const int64_t cf = feat.shape[0];
    const int dim = (int)feat.shape[1];
    if (dim != info->phone_dim)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "the content encoder gives %d-dim features but the voice model takes %d (RVC v%d "
                             "needs %s)",
                             dim, info->phone_dim, info->version, v1 ? "HuBERT with final_proj" : "HuBERT base");
    const int protect = info->uses_f0 && ch->protect < 0.5;
    float *raw = malloc(sizeof(float) * (size_t)(cf * dim));
    float *blend = malloc(sizeof(float) * (size_t)(cf * dim));
    float *phone = malloc(sizeof(float) * (size_t)(2 * cf * dim));
    float *phone0 = protect ? malloc(sizeof(float) * (size_t)(2 * cf * dim)) : NULL;
    int64_t p_len = n / RVC_FRAME < 2 * cf ? n / RVC_FRAME : 2 * cf;
    float *nsff0 = malloc(sizeof(float) * (size_t)(p_len + 1));
    int32_t *pitch = malloc(sizeof(int32_t) * (size_t)(p_len + 1));
    if (!raw || !blend || !phone || (protect && !phone0) || !nsff0 || !pitch) {
        st = avo_error_set(err, AVO_ERR_NO_MEMORY, "no memory for a %lld-frame segment", (long long)cf);
        goto done;
    }
    st = avo_tensor_to_host(a, &feat, raw, cf * dim, err);
    if (st) goto done;
    memcpy(blend, raw, sizeof(float) * (size_t)(cf * dim));
    if (ch->index && ch->index_rate > 0.0) {
        st = feature_index_blend(ch->index, blend, cf, dim, ch->index_rate, RVC_INDEX_K, err);
        if (st) goto done;
    }
    repeat_x2(blend, cf, dim, phone);
    for (int64_t i = 0; i < p_len; i++) nsff0[i] = f0_hz ? f0_hz[i] : 0.0f;
    if (protect) {
        /* Unvoiced frames (consonants, breaths) lean back toward the unretrieved features. */
        repeat_x2(raw, cf, dim, phone0);
        for (int64_t i = 0; i < p_len; i++) {
            const float w = nsff0[i] > 0.0f ? 1.0f : (float)ch->protect;
            if (w == 1.0f) continue;
            float *p = phone + i * dim;
            const float *p0 = phone0 + i * dim;
            for (int c = 0; c < dim; c++) p[c] = p[c] * w + p0[c] * (1.0f - w);
        }
    }
    avo_rvc_pitch_coarse(nsff0, p_len, pitch);
    st = avo_rvc_infer(ch->rvc, a, phone, p_len, info->uses_f0 ? pitch : NULL, info->uses_f0 ? nsff0 : NULL,
                       ch->speaker_id, z_noise, src_noise, ch->seed, audio, err);
    if (!st) *frames = p_len;
done:
    free(raw), free(blend), free(phone), free(phone0), free(nsff0), free(pitch);
    return st;
}

/* ---- segmentation ---- */

/* Start of the quietest 20 ms (320 samples) in [lo, hi), on a multiple of 320. */
static int64_t quiet_cut(const float *x, int64_t lo, int64_t hi) {
    lo = (lo + 319) / 320 * 320;
    int64_t best = hi / 320 * 320;
    double best_e = INFINITY;
    for (int64_t s = lo; s + 320 <= hi; s += 320) {
        double e = 0.0;
        for (int i = 0; i < 320; i++) e += (double)x[s + i] * x[s + i];
        if (e < best_e) best_e = e, best = s;
    }
    return best;
}

/* Index j folded into [0, n) by reflection about the end samples (numpy's "reflect"). */
static int64_t mirror(int64_t j, int64_t n) {
    if (n == 1) return 0;
    const int64_t period = 2 * (n - 1);
    j %= period;
    if (j < 0) j += period;
    return j < n ? j : period - j;
}

/* x reflected by pad samples at both ends. */
static float *reflect_pad(const float *x, int64_t n, int64_t pad) {
    float *out = malloc(sizeof(float) * (size_t)(n + 2 * pad));
    if (!out) return NULL;
    for (int64_t i = 0; i < n + 2 * pad; i++) out[i] = x[mirror(i - pad, n)];
    return out;
}

/* RVC's RMS mix: out *= (rms_src / rms_out)^(1 - rate), both RMS contours taken over 1 s windows every
 * 0.5 s and interpolated linearly to every output sample. */
static void rms_mix(const float *src, int64_t n_src, int src_rate, float *out, int64_t n_out, int out_rate,
                    double rate) {
    if (rate >= 1.0 || n_src <= 0 || n_out <= 0) return;
    const double hop_s = 0.5;
    const int64_t points = (int64_t)(n_src / (src_rate * hop_s)) + 2;
    double *rs = malloc(sizeof(double) * (size_t)points), *ro = malloc(sizeof(double) * (size_t)points);
    if (!rs || !ro) {
        free(rs), free(ro);
        return;
    }
    for (int64_t p = 0; p < points; p++) {
        const double c = p * hop_s;
        double e = 0;
        int64_t lo = (int64_t)((c - hop_s) * src_rate), hi = (int64_t)((c + hop_s) * src_rate), cnt = 0;
        for (int64_t i = lo < 0 ? 0 : lo; i < hi && i < n_src; i++, cnt++) e += (double)src[i] * src[i];
        rs[p] = cnt ? sqrt(e / (double)cnt) : 0.0;
        e = 0, cnt = 0;
        lo = (int64_t)((c - hop_s) * out_rate), hi = (int64_t)((c + hop_s) * out_rate);
        for (int64_t i = lo < 0 ? 0 : lo; i < hi && i < n_out; i++, cnt++) e += (double)out[i] * out[i];
        ro[p] = cnt ? sqrt(e / (double)cnt) : 0.0;
    }
    for (int64_t i = 0; i < n_out; i++) {
        const double pos = (double)i / out_rate / hop_s;
        int64_t p = (int64_t)pos;
        if (p >= points - 1) p = points - 2;
        const double f = pos - (double)p;
        const double s = rs[p] * (1 - f) + rs[p + 1] * f, o = ro[p] * (1 - f) + ro[p + 1] * f;
        out[i] *= (float)(pow(s, 1.0 - rate) * pow(o > 1e-6 ? o : 1e-6, rate - 1.0));
    }
    free(rs), free(ro);
}

/* ---- the converter ---- */

static double neural_transpose(const avo_converter *c, const avo_f0_track *f0) {
    const rvc_state *s = c->state;
    if (!c->options.auto_transpose || !s->target) return c->options.transpose_semitones;
    float *v = malloc(sizeof(float) * (size_t)(f0->frames ? f0->frames : 1));
    size_t count = 0;
    for (int64_t i = 0; v && i < f0->frames; i++)
        if (f0->f0_hz[i] > 0.0f) v[count++] = f0->f0_hz[i];
    const pitch_range src = v ? pitch_range_of(v, count) : (pitch_range){0, 0, 0};
    free(v);
    const avo_voice_summary *t = &s->target->summary;
    const pitch_range tgt = {t->f0_low_hz, t->f0_median_hz, t->f0_high_hz};
    return choose_transpose(&c->options, src, tgt);
}

static avo_status rvc_run(avo_converter *c, const avo_audio *vocals, const avo_f0_track *f0, avo_audio *out,
                          avo_progress_fn progress, void *user, avo_error *err) {
    rvc_state *s = c->state;
    const avo_rvc_info *info = avo_rvc_get_info(s->rvc);
    memset(out, 0, sizeof *out);
    avo_audio mono = {0};
    avo_status st = avo_audio_to_mono(vocals, &mono, err);
    if (st) return st;
    const int64_t n = (int64_t)llround((double)mono.frames * RVC_RATE / mono.sample_rate);
    float *x = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!x) {
        avo_audio_free(&mono);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "no memory for the 16 kHz vocals");
    }
    st = avo_resample_buffer(mono.samples, mono.frames, mono.sample_rate, RVC_RATE, x, n, err);
    const int in_rate = mono.sample_rate;
    const int64_t in_frames = mono.frames;
    avo_audio_free(&mono);
    if (st) {
        free(x);
        return st;
    }
    rvc_highpass_16k(x, n);

    const double transpose = neural_transpose(c, f0);
    c->info.applied_transpose_semitones = transpose;
    const double factor = pow(2.0, transpose / 12.0);
    const int hop = info->hop;
    const int64_t total = (n + RVC_FRAME - 1) / RVC_FRAME * hop; /* output at the model rate */
    float *xp = reflect_pad(x, n, RVC_CONTEXT);
    float *y = calloc((size_t)total + 1, sizeof(float));
    float *seg_audio = malloc(sizeof(float) * (size_t)((RVC_SEGMENT + 2 * RVC_CONTEXT) / RVC_FRAME + 1) * hop);
    float *seg_f0 = malloc(sizeof(float) * (size_t)((RVC_SEGMENT + 2 * RVC_CONTEXT) / RVC_FRAME + 2));
    if (!xp || !y || !seg_audio || !seg_f0) {
        st = avo_error_set(err, AVO_ERR_NO_MEMORY, "no memory for the conversion buffers");
        goto done;
    }
    rvc_chain ch = {s->hubert, s->rvc, s->index, s->cfg.index_rate, c->options.protect, s->cfg.speaker_id,
                    s->cfg.seed};
    for (int64_t s0 = 0; s0 < n && !st;) {
        int64_t s1 = n - s0 <= RVC_SEGMENT ? n : quiet_cut(x, s0 + RVC_SEGMENT - RVC_CUT_SEARCH, s0 + RVC_SEGMENT);
        if (s1 <= s0) s1 = n;
        const int64_t len = (s1 - s0) + 2 * RVC_CONTEXT; /* xp[s0, s1 + 2 * context) */
        const int64_t nf = len / RVC_FRAME + 1;
        for (int64_t i = 0; i < nf; i++) {
            const double t = (double)(s0 - RVC_CONTEXT + RVC_FRAME * i) / RVC_RATE;
            seg_f0[i] = (float)(avo_f0_track_at(f0, t) * factor);
        }
        int64_t frames = 0;
        avo_arena_reset(s->arena);
        st = rvc_chain_segment(&ch, s->arena, xp + s0, len, seg_f0, NULL, NULL, seg_audio, &frames, err);
        if (st) break;
        /* Keep the frames of [s0, s1): skip the left context. */
        const int64_t skip = RVC_CONTEXT / RVC_FRAME, want = (s1 - s0 + RVC_FRAME - 1) / RVC_FRAME;
        const int64_t have = frames - skip < want ? frames - skip : want;
        const int64_t at = s0 / RVC_FRAME * hop;
        for (int64_t i = 0; i < have * hop && at + i < total; i++) y[at + i] = seg_audio[skip * hop + i];
        s0 = s1;
        if (progress) progress("conversion", (double)s0 / (double)n, user);
    }
    if (st) goto done;
    rms_mix(x, n, RVC_RATE, y, total, info->sample_rate, c->options.rms_mix);
    st = avo_audio_alloc(out, in_rate, 1, in_frames, err);
    if (!st) st = avo_resample_buffer(y, total, info->sample_rate, in_rate, out->samples, in_frames, err);
    if (st) avo_audio_free(out);
done:
    free(x), free(xp), free(y), free(seg_audio), free(seg_f0);
    return st;
}

static void rvc_destroy(void *state) {
    rvc_state *s = state;
    if (!s) return;
    avo_rvc_free(s->rvc);
    avo_hubert_free(s->hubert);
    feature_index_free(s->index);
    avo_arena_free(s->arena);
    avo_backend_free(s->be);
    free(s);
}

static const converter_ops rvc_ops = {rvc_run, rvc_destroy};

/* The back end the user asked for, or the CPU with a note in *fallback when that cannot be had. */
static avo_status open_backend(const avo_neural_config *cfg, int threads, rvc_state *s, avo_error *err) {
    const char *dev = cfg->device && *cfg->device ? cfg->device : "cpu";
    if (strcmp(dev, "cuda") == 0) {
        avo_error cerr = {0};
        if (avo_backend_cuda_create(-1, &s->be, &cerr) == AVO_OK) {
            snprintf(s->device, sizeof s->device, "%s", avo_backend_name(s->be));
            snprintf(s->backend, sizeof s->backend, "cuda");
            return AVO_OK;
        }
        if (cfg->strict)
            return avo_error_set(err, AVO_ERR_UNSUPPORTED, "--device cuda cannot be used: %s", cerr.message);
        snprintf(s->fallback, sizeof s->fallback, "cuda requested but not used: %.260s", cerr.message);
    } else if (strcmp(dev, "cpu") != 0) {
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "unknown device '%s' (use cpu or cuda)", dev);
    }
    snprintf(s->device, sizeof s->device, "cpu");
    snprintf(s->backend, sizeof s->backend, "cpu");
    return avo_backend_cpu_create(threads, &s->be, err);
}

avo_status avo_converter_create_rvc(const avo_neural_config *cfg, const avo_voice_analysis *target,
                                    const avo_convert_options *opt, avo_converter **out, avo_error *err) {
    *out = NULL;
    if (!cfg || !cfg->model_path || !*cfg->model_path)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "the neural converter needs a voice model (--model)");
    if (!cfg->content_encoder_path || !*cfg->content_encoder_path)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "RVC models need a content encoder: give --content-encoder hubert_base.pt");
    if (!(cfg->index_rate >= 0.0 && cfg->index_rate <= 1.0))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "index rate must be within 0..1");
    avo_convert_options defaults;
    if (!opt) {
        avo_convert_options_default(&defaults);
        opt = &defaults;
    }
    avo_converter *c = calloc(1, sizeof *c);
    rvc_state *s = calloc(1, sizeof *s);
    if (!c || !s) {
        free(c), free(s);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "no memory for the converter");
    }
    c->ops = &rvc_ops;
    c->state = s;
    c->options = *opt;
    s->cfg = *cfg;
    s->cfg.model_path = s->cfg.content_encoder_path = s->cfg.index_path = s->cfg.device = NULL;
    s->target = target;
    avo_status st = open_backend(cfg, opt->threads, s, err);
    if (!st) st = avo_arena_create(s->be, (size_t)64 << 20, &s->arena, err);
    if (!st) st = avo_rvc_load(cfg->model_path, s->be, &s->rvc, err);
    if (!st) st = avo_hubert_load(cfg->content_encoder_path, s->be, &s->hubert, err);
    if (!st && cfg->index_path && *cfg->index_path) st = feature_index_load(cfg->index_path, &s->index, err);
    if (!st) {
        const avo_rvc_info *info = avo_rvc_get_info(s->rvc);
        if (cfg->speaker_id < 0 || cfg->speaker_id >= info->n_speakers)
            st = avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s: speaker id %d is out of range (the model has %d)",
                               cfg->model_path, cfg->speaker_id, info->n_speakers);
        else if (s->index && feature_index_dim(s->index) != info->phone_dim)
            st = avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                               "%s: the index holds %d-dim features but the model takes %d (an index of another "
                               "model?)",
                               cfg->index_path, feature_index_dim(s->index), info->phone_dim);
    }
    if (st) {
        rvc_destroy(s);
        free(c);
        return st;
    }
    const avo_rvc_info *info = avo_rvc_get_info(s->rvc);
    c->info.name = info->version == 1 ? "rvc-v1" : "rvc-v2";
    c->info.backend = s->backend;
    c->info.device = s->device;
    c->info.precision = "fp32";
    c->info.applied_transpose_semitones = opt->transpose_semitones;
    c->info.formant_warp_ratio = 1.0;
    c->info.fallback = s->fallback;
    *out = c;
    return AVO_OK;
}

avo_status avo_neural_model_check(const char *model_path, const char *index_path, char *info, size_t cap,
                                  int *sample_rate, avo_error *err) {
    avo_backend *be = NULL;
    avo_rvc *rvc = NULL;
    feature_index *ix = NULL;
    avo_status st = avo_backend_cpu_create(1, &be, err);
    if (!st) st = avo_rvc_load(model_path, be, &rvc, err);
    if (!st && index_path) st = feature_index_load(index_path, &ix, err);
    if (!st) {
        const avo_rvc_info *ri = avo_rvc_get_info(rvc);
        if (ix && feature_index_dim(ix) != ri->phone_dim)
            st = avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                               "%s: the index holds %d-dim features but the model takes %d (an index of another "
                               "model?)",
                               index_path, feature_index_dim(ix), ri->phone_dim);
        if (!st && info)
            snprintf(info, cap, "RVC v%d, %d Hz, %s, %d speaker%s%s", ri->version, ri->sample_rate,
                     ri->uses_f0 ? "pitch-guided" : "no pitch input", ri->n_speakers, ri->n_speakers == 1 ? "" : "s",
                     ix ? ", with index" : "");
        if (!st && sample_rate) *sample_rate = ri->sample_rate;
    }
    feature_index_free(ix);
    avo_rvc_free(rvc);
    avo_backend_free(be);
    return st;
}
