/* The neural converter: RVC v1/v2 and so-vits-svc 4.0/4.1 voice models on the engine (convert.h).
 *
 * Segments: the working signal (16 kHz for RVC, the model's rate for so-vits) is reflect-padded by
 * about one second at both ends, then cut into segments of about 30 s at the quietest spot inside the
 * last 5 s of each; every segment runs with its second of real context on each side, which is dropped
 * from its output. Cuts fall on whole frames (320 samples at 16 kHz for RVC's content frames, the hop
 * for so-vits), so the synthesizer's frame grid stays aligned with the song. */
#include "converter_internal.h"

#include "autovoice/calibrate.h"
#include "autovoice/checkpoint.h"
#include "autovoice/engine_cache.h"
#include "autovoice/models.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RVC_RATE 16000
#define RVC_FRAME 160          /* samples per synthesizer frame at 16 kHz (10 ms) */
#define RVC_CONTEXT 16000      /* context on each side of a segment (1 s) */
#define RVC_INDEX_K 8


void avo_neural_config_default(avo_neural_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->index_rate = 0.75;
    cfg->device = "cpu";
    cfg->seed = 1234;
    cfg->engine_cache = 1;
}

static const char *canonical_precision(const char *name, size_t len) {
    static const char *const known[] = {"fp32", "fp16", "int8", "bf16"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strlen(known[i]) == len && strncmp(name, known[i], len) == 0) return known[i];
    return NULL;
}

avo_status avo_neural_parse_precision(const char *spec, avo_neural_config *cfg, avo_error *err) {
    const char *all = NULL, *part[3] = {NULL, NULL, NULL};
    static const char *const names[3] = {"content", "pitch", "vocoder"};
    for (const char *p = spec ? spec : ""; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        const char *value = eq ? eq + 1 : p;
        const char *prec = canonical_precision(value, len - (size_t)(value - p));
        if (!prec)
            return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                                 "precision '%.*s': use fp32, fp16, int8 or bf16, alone or as COMPONENT=PRECISION "
                                 "with COMPONENT content, pitch or vocoder (e.g. fp16,content=int8)",
                                 (int)len, p);
        if (!eq) {
            all = prec;
        } else {
            int c = 0;
            while (c < 3 && !(strlen(names[c]) == (size_t)(eq - p) && strncmp(p, names[c], (size_t)(eq - p)) == 0)) c++;
            if (c == 3)
                return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                                     "precision '%.*s': unknown component '%.*s' (use content, pitch or vocoder)",
                                     (int)len, p, (int)(eq - p), p);
            part[c] = prec;
        }
        p = end ? end + 1 : p + len;
    }
    if (!all && !part[0] && !part[1] && !part[2])
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "empty precision (use fp32, fp16, int8 or bf16)");
    cfg->precision = all ? all : "fp32";
    cfg->content_precision = part[0];
    cfg->pitch_precision = part[1];
    cfg->vocoder_precision = part[2];
    return AVO_OK;
}

const char *avo_neural_component_precision(const avo_neural_config *cfg, avo_neural_component component) {
    const char *p = component == AVO_NEURAL_CONTENT ? cfg->content_precision
                    : component == AVO_NEURAL_PITCH ? cfg->pitch_precision
                                                    : cfg->vocoder_precision;
    if (!p || !*p) p = cfg->precision;
    return p && *p ? p : "fp32";
}

/* ---- signal helpers ---- */

/* One biquad step; the previous output y1 enters last, so the serial chain is one multiply-add per
 * sample and the rest overlaps. */
typedef struct biquad {
    double b0, b1, b2, a1, a2;
    double x1, x2, y1, y2;
} biquad;

static inline double biquad_step(biquad *q, double in) {
    const double y = (q->b0 * in + q->b1 * q->x1 + q->b2 * q->x2 - q->a2 * q->y2) - q->a1 * q->y1;
    q->x2 = q->x1, q->x1 = in, q->y2 = q->y1, q->y1 = y;
    return y;
}

/* Both sections in one pass: the second's chain runs alongside the first's instead of after it. */
static void biquad_pair_pass(float *x, int64_t n, const biquad proto[2], int reverse) {
    biquad s0 = proto[0], s1 = proto[1];
    for (int64_t k = 0; k < n; k++) {
        const int64_t i = reverse ? n - 1 - k : k;
        x[i] = (float)biquad_step(&s1, biquad_step(&s0, x[i]));
    }
}

void rvc_highpass_16k(float *x, int64_t n) {
    /* 4th-order Butterworth as two sections with Q = 1/(2 cos(pi/8)) and 1/(2 cos(3 pi/8)), run forward
     * then backward (zero phase, 8th order in magnitude). Both forward sections share a pass and so do
     * both backward ones: 8.0 -> about 2 ms for 32 s at 16 kHz. */
    const double qs[2] = {0.54119610014619690, 1.3065629648763766};
    const double k = tan(M_PI * 48.0 / RVC_RATE);
    biquad sec[2];
    for (int s = 0; s < 2; s++) {
        const double q = qs[s], norm = 1.0 / (1.0 + k / q + k * k);
        sec[s] = (biquad){norm, -2.0 * norm, norm, 2.0 * (k * k - 1.0) * norm, (1.0 - k / q + k * k) * norm,
                          0, 0, 0, 0};
    }
    biquad_pair_pass(x, n, sec, 0);
    biquad_pair_pass(x, n, sec, 1);
}

/* Content features [cf, dim] -> [2 * cf, dim] by repeating each frame (F.interpolate nearest, x2). */
static void repeat_x2(const float *in, int64_t cf, int dim, float *out) {
    for (int64_t t = 0; t < cf; t++) {
        memcpy(out + (2 * t) * dim, in + t * dim, sizeof(float) * (size_t)dim);
        memcpy(out + (2 * t + 1) * dim, in + t * dim, sizeof(float) * (size_t)dim);
    }
}

/* rvc_chain_segment with the content encoder on its own arena ca (its own back end). */
static avo_status rvc_chain_segment_split(const rvc_chain *ch, avo_arena *ca, avo_arena *a, const float *x, int64_t n,
                                          const float *f0_hz, const float *z_noise, const float *src_noise,
                                          float *audio, int64_t *frames, avo_error *err) {
    const avo_rvc_info *info = avo_rvc_get_info(ch->rvc);
    *frames = 0;
    if (n < 400) return AVO_OK; /* shorter than one content frame: nothing to say */
    const int v1 = info->version == 1;
    avo_tensor feat;
    /* RVC reads layer 9 (v1) or 12 (v2) of HuBERT base; smaller encoders give their last layer. */
    const int layers = avo_hubert_layers(ch->hubert), want = v1 ? 9 : 12;
    const avo_arena_mark before_content = avo_arena_get_mark(ca);
    avo_status st = avo_hubert_extract(ch->hubert, ca, x, n, want < layers ? want : layers, v1, &feat, err);
    if (st) return st;
    const int64_t cf = feat.shape[0];
    const int dim = (int)feat.shape[1];
    if (dim != info->phone_dim)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "the content encoder gives %d-dim features but the voice model takes %d (RVC v%d "
                             "needs %s)",
                             dim, info->phone_dim, info->version, v1 ? "HuBERT with final_proj" : "HuBERT base");
    const int protect = info->uses_f0 && ch->protect < 0.5;
    const int retrieve = ch->index && ch->index_rate > 0.0;
    float *raw = malloc(sizeof(float) * (size_t)(cf * dim));
    float *blend = retrieve ? malloc(sizeof(float) * (size_t)(cf * dim)) : raw;
    float *phone = malloc(sizeof(float) * (size_t)(2 * cf * dim));
    int64_t p_len = n / RVC_FRAME < 2 * cf ? n / RVC_FRAME : 2 * cf;
    float *nsff0 = malloc(sizeof(float) * (size_t)(p_len + 1));
    int32_t *pitch = malloc(sizeof(int32_t) * (size_t)(p_len + 1));
    if (!raw || !blend || !phone || !nsff0 || !pitch) {
        st = avo_error_set(err, AVO_ERR_NO_MEMORY, "no memory for a %lld-frame segment", (long long)cf);
        goto done;
    }
    st = avo_tensor_to_host(ca, &feat, raw, cf * dim, err);
    if (st) goto done;
    /* The features are on the host now: the synthesizer reuses the content encoder's memory (when both
     * share an arena) instead of stacking its peak on top, which first-touches another GB or so. */
    avo_arena_rewind(ca, before_content);
    if (retrieve) {
        memcpy(blend, raw, sizeof(float) * (size_t)(cf * dim));
        st = feature_index_blend(ch->index, blend, cf, dim, ch->index_rate, RVC_INDEX_K, err);
        if (st) goto done;
    }
    repeat_x2(blend, cf, dim, phone);
    for (int64_t i = 0; i < p_len; i++) nsff0[i] = f0_hz ? f0_hz[i] : 0.0f;
    if (protect) {
        /* Unvoiced frames (consonants, breaths) lean back toward the unretrieved features (frame i of
         * the doubled rate is content frame i / 2). */
        for (int64_t i = 0; i < p_len; i++) {
            const float w = nsff0[i] > 0.0f ? 1.0f : (float)ch->protect;
            if (w == 1.0f) continue;
            float *p = phone + i * dim;
            const float *p0 = raw + (i / 2) * dim;
            for (int c = 0; c < dim; c++) p[c] = p[c] * w + p0[c] * (1.0f - w);
        }
    }
    avo_rvc_pitch_coarse(nsff0, p_len, pitch);
    st = avo_rvc_infer(ch->rvc, a, phone, p_len, info->uses_f0 ? pitch : NULL, info->uses_f0 ? nsff0 : NULL,
                       ch->speaker_id, z_noise, src_noise, ch->seed, audio, err);
    if (!st) *frames = p_len;
done:
    if (blend != raw) free(blend);
    free(raw), free(phone), free(nsff0), free(pitch);
    return st;
}

avo_status rvc_chain_segment(const rvc_chain *ch, avo_arena *a, const float *x, int64_t n, const float *f0_hz,
                             const float *z_noise, const float *src_noise, float *audio, int64_t *frames,
                             avo_error *err) {
    return rvc_chain_segment_split(ch, a, a, x, n, f0_hz, z_noise, src_noise, audio, frames, err);
}

/* ---- segmentation ---- */

/* Start of the quietest align-long stretch in [lo, hi), on a multiple of align. */
static int64_t quiet_cut(const float *x, int64_t lo, int64_t hi, int align) {
    lo = (lo + align - 1) / align * align;
    int64_t best = hi / align * align;
    double best_e = INFINITY;
    for (int64_t s = lo; s + align <= hi; s += align) {
        double e = 0.0;
        for (int i = 0; i < align; i++) e += (double)x[s + i] * x[s + i];
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

/* rms[p]: the RMS of x over [(p - 1) hop, (p + 1) hop) seconds, clipped to the signal, for p < points. */
static void block_rms(const float *x, int64_t n, int rate, double hop_s, int64_t points, double *rms) {
    double prev_e = 0;
    int64_t prev_cnt = 0;
    for (int64_t p = 0; p < points; p++) {
        int64_t lo = (int64_t)(p * hop_s * rate), hi = (int64_t)((p + 1) * hop_s * rate);
        lo = lo < n ? lo : n, hi = hi < n ? hi : n;
        double e = 0;
        for (int64_t i = lo; i < hi; i++) e += (double)x[i] * x[i];
        const int64_t cnt = prev_cnt + (hi - lo);
        rms[p] = cnt ? sqrt((prev_e + e) / (double)cnt) : 0.0;
        prev_e = e, prev_cnt = hi - lo;
    }
}

/* RVC's RMS mix: out *= (rms_src / rms_out)^(1 - rate), both RMS contours taken over 1 s windows every
 * 0.5 s; the gain is interpolated linearly to every output sample. */
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
    /* The window of point p spans hop blocks p - 1 and p, so each sample is squared once, not twice. */
    block_rms(src, n_src, src_rate, hop_s, points, rs);
    block_rms(out, n_out, out_rate, hop_s, points, ro);
    /* The gain at each point, interpolated linearly between points (two pow() per point, not per
     * sample: the contours are smooth at this scale). */
    for (int64_t p = 0; p < points; p++) rs[p] = pow(rs[p], 1.0 - rate) * pow(ro[p] > 1e-6 ? ro[p] : 1e-6, rate - 1.0);
#pragma omp parallel for schedule(static) if (n_out > 65536)
    for (int64_t i = 0; i < n_out; i++) {
        const double pos = (double)i / out_rate / hop_s;
        int64_t p = (int64_t)pos;
        if (p >= points - 1) p = points - 2;
        const double f = pos - (double)p;
        out[i] *= (float)(rs[p] * (1 - f) + rs[p + 1] * f);
    }
    free(rs), free(ro);
}

/* ---- the converter ---- */

typedef enum neural_kind { NEURAL_RVC = 0, NEURAL_SOVITS } neural_kind;

typedef struct neural_state {
    neural_kind kind;
    avo_backend *be;            /* the voice model's */
    avo_arena *arena;
    avo_backend *be_content;    /* the content encoder's: be itself when both run alike */
    avo_arena *arena_content;
    avo_neural_placement place_content;
    avo_calib_table *calib;     /* the content encoder's INT8 scales (CUDA INT8 only) */
    avo_engine_cache *engines;  /* NULL: no engine cache */
    avo_engine_result engine_content, engine_voice;
    char calib_path[512];       /* cfg's calibration cache, kept for the report */
    char calib_used[512];
    avo_hubert *hubert;
    avo_rvc *rvc;
    avo_sovits *sovits;
    feature_index *index;
    avo_neural_config cfg;
    const avo_voice_analysis *target;
    avo_neural_placement place;
    char name[32];
} neural_state;

/* How one model family runs a segment: the working signal (its rate, frame and cut alignment) and the
 * function that turns one padded segment of it into frames of hop output samples. */
typedef struct segment_plan {
    int work_rate;      /* rate of the working signal */
    int work_frame;     /* working samples per output frame */
    int align;          /* cut points fall on multiples of this */
    int64_t context;    /* working samples of context on each side (a multiple of work_frame) */
    int out_rate, hop;  /* model output rate, output samples per frame */
} segment_plan;

typedef avo_status (*segment_fn)(neural_state *s, const avo_converter *c, const float *x, int64_t len,
                                 const float *f0_hz, float *audio, int64_t *frames, avo_error *err);

/* The transposed F0 of frame i of a segment whose padded start is at working sample start. */
static void segment_f0(const avo_f0_track *f0, double factor, int64_t start, int64_t nf, const segment_plan *p,
                       float *out) {
    for (int64_t i = 0; i < nf; i++) {
        const double t = (double)(start + (int64_t)p->work_frame * i) / p->work_rate;
        out[i] = (float)(avo_f0_track_at(f0, t) * factor);
    }
}

static avo_status rvc_segment(neural_state *s, const avo_converter *c, const float *x, int64_t len,
                              const float *f0_hz, float *audio, int64_t *frames, avo_error *err) {
    rvc_chain ch = {s->hubert, s->rvc, s->index, s->cfg.index_rate, c->options.protect, s->cfg.speaker_id,
                    s->cfg.seed};
    return rvc_chain_segment_split(&ch, s->arena_content, s->arena, x, len, f0_hz, NULL, NULL, audio, frames, err);
}

/* so-vits-svc as its Svc.infer runs a slice: units of the 16 kHz audio stretched to the model's
 * frames, F0 filled over unvoiced frames with a uv flag, the volume when the model takes it. */
static avo_status sovits_segment(neural_state *s, const avo_converter *c, const float *x, int64_t len,
                                 const float *f0_hz, float *audio, int64_t *frames, avo_error *err) {
    (void)c;
    const avo_sovits_info *info = avo_sovits_get_info(s->sovits);
    const int64_t nf = len / info->hop;
    *frames = 0;
    const int64_t n16 = (int64_t)llround((double)len * 16000.0 / info->sample_rate);
    if (nf < 1 || n16 < 400) return AVO_OK;
    float *x16 = malloc(sizeof(float) * (size_t)n16);
    float *f0 = malloc(sizeof(float) * (size_t)nf), *uv = malloc(sizeof(float) * (size_t)nf);
    float *vol = info->vol_embedding ? malloc(sizeof(float) * (size_t)nf) : NULL;
    float *units = NULL, *expanded = NULL;
    avo_status st = AVO_OK;
    if (!x16 || !f0 || !uv || (info->vol_embedding && !vol)) {
        st = avo_error_set(err, AVO_ERR_NO_MEMORY, "no memory for a segment");
        goto done;
    }
    st = avo_resample_buffer(x, len, info->sample_rate, 16000.0, x16, n16, err);
    const int v256 = strcmp(info->speech_encoder, "vec256l9") == 0;
    const int layers = avo_hubert_layers(s->hubert), want = v256 ? 9 : 12;
    avo_tensor feat;
    const avo_arena_mark before_content = avo_arena_get_mark(s->arena_content);
    if (!st)
        st = avo_hubert_extract(s->hubert, s->arena_content, x16, n16, want < layers ? want : layers, v256, &feat, err);
    if (st) goto done;
    const int64_t cf = feat.shape[0];
    const int dim = (int)feat.shape[1];
    if (dim != info->ssl_dim) {
        st = avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                           "the content encoder gives %d-dim units but the so-vits model takes %d (%s)", dim,
                           info->ssl_dim, info->speech_encoder);
        goto done;
    }
    units = malloc(sizeof(float) * (size_t)(cf * dim));
    expanded = malloc(sizeof(float) * (size_t)(nf * dim));
    if (!units || !expanded) {
        st = avo_error_set(err, AVO_ERR_NO_MEMORY, "no memory for a segment's units");
        goto done;
    }
    st = avo_tensor_to_host(s->arena_content, &feat, units, cf * dim, err);
    avo_arena_rewind(s->arena_content, before_content); /* units on the host: the generator reuses the memory */
    if (!st) st = avo_sovits_expand_units(units, cf, dim, nf, info->unit_interpolate_mode, expanded, err);
    if (st) goto done;
    avo_sovits_fill_f0(f0_hz, nf, f0, uv);
    if (vol) st = avo_sovits_volume(x, nf * info->hop, info->hop, vol, err);
    if (!st)
        st = avo_sovits_infer(s->sovits, s->arena, expanded, nf, f0, uv, vol, s->cfg.speaker_id, 0.4f, NULL, s->cfg.seed,
                              audio, err);
    if (!st) *frames = nf;
done:
    free(x16), free(f0), free(uv), free(vol), free(units), free(expanded);
    return st;
}

static double neural_transpose(const avo_converter *c, const avo_f0_track *f0) {
    const neural_state *s = c->state;
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

/* The segment loop shared by both families: x (n working samples) is reflect-padded by the context,
 * cut into segments of about 30 s at quiet points, and each segment's output frames (minus the
 * context's) land at their place in y (total samples at the model rate). */
static avo_status run_segments(neural_state *s, avo_converter *c, const segment_plan *p, segment_fn fn,
                               const float *x, int64_t n, const avo_f0_track *f0, double factor, float *y,
                               int64_t total, avo_progress_fn progress, void *user, avo_error *err) {
    const int64_t max_seg = (int64_t)p->work_rate * 30 / p->align * p->align;
    const int64_t search = (int64_t)p->work_rate * 5;
    const int64_t cap_frames = (max_seg + 2 * p->context) / p->work_frame + 2;
    float *xp = reflect_pad(x, n, p->context);
    float *seg_audio = malloc(sizeof(float) * (size_t)(cap_frames * p->hop));
    float *seg_f0 = malloc(sizeof(float) * (size_t)cap_frames);
    avo_status st = AVO_OK;
    if (!xp || !seg_audio || !seg_f0) st = avo_error_set(err, AVO_ERR_NO_MEMORY, "no memory for the conversion buffers");
    for (int64_t s0 = 0; s0 < n && !st;) {
        int64_t s1 = n - s0 <= max_seg ? n : quiet_cut(x, s0 + max_seg - search, s0 + max_seg, p->align);
        if (s1 <= s0) s1 = n;
        const int64_t len = (s1 - s0) + 2 * p->context; /* xp[s0, s1 + 2 * context) */
        segment_f0(f0, factor, s0 - p->context, len / p->work_frame + 1, p, seg_f0);
        int64_t frames = 0;
        avo_arena_reset(s->arena);
        if (s->arena_content != s->arena) avo_arena_reset(s->arena_content);
        st = fn(s, c, xp + s0, len, seg_f0, seg_audio, &frames, err);
        if (st) break;
        const int64_t skip = p->context / p->work_frame, want = (s1 - s0 + p->work_frame - 1) / p->work_frame;
        const int64_t have = frames - skip < want ? frames - skip : want;
        const int64_t at = s0 / p->work_frame * p->hop;
        for (int64_t i = 0; i < have * p->hop && at + i < total; i++) y[at + i] = seg_audio[skip * p->hop + i];
        s0 = s1;
        if (progress) progress("conversion", (double)s0 / (double)n, user);
    }
    free(xp), free(seg_audio), free(seg_f0);
    return st;
}

static avo_status neural_run(avo_converter *c, const avo_audio *vocals, const avo_f0_track *f0, avo_audio *out,
                             avo_progress_fn progress, void *user, avo_error *err) {
    neural_state *s = c->state;
    memset(out, 0, sizeof *out);
    segment_plan p;
    segment_fn fn;
    if (s->kind == NEURAL_RVC) {
        const avo_rvc_info *info = avo_rvc_get_info(s->rvc);
        p = (segment_plan){RVC_RATE, RVC_FRAME, 320, RVC_CONTEXT, info->sample_rate, info->hop};
        fn = rvc_segment;
    } else {
        const avo_sovits_info *info = avo_sovits_get_info(s->sovits);
        const int64_t ctx = ((int64_t)info->sample_rate + info->hop - 1) / info->hop * info->hop;
        p = (segment_plan){info->sample_rate, info->hop, info->hop, ctx, info->sample_rate, info->hop};
        fn = sovits_segment;
    }
    avo_audio mono = {0};
    avo_status st = avo_audio_to_mono(vocals, &mono, err);
    if (st) return st;
    const int64_t n = (int64_t)llround((double)mono.frames * p.work_rate / mono.sample_rate);
    float *x = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    const int64_t total = (n + p.work_frame - 1) / p.work_frame * p.hop; /* output at the model rate */
    float *y = calloc((size_t)total + 1, sizeof(float));
    if (!x || !y) st = avo_error_set(err, AVO_ERR_NO_MEMORY, "no memory for the working signal");
    if (!st) st = avo_resample_buffer(mono.samples, mono.frames, mono.sample_rate, p.work_rate, x, n, err);
    const int in_rate = mono.sample_rate;
    const int64_t in_frames = mono.frames;
    avo_audio_free(&mono);
    if (!st && s->kind == NEURAL_RVC) rvc_highpass_16k(x, n);
    const double transpose = neural_transpose(c, f0);
    c->info.applied_transpose_semitones = transpose;
    if (!st)
        st = run_segments(s, c, &p, fn, x, n, f0, pow(2.0, transpose / 12.0), y, total, progress, user, err);
    avo_neural_backend_observe(s->be, &s->place);
    avo_neural_backend_observe(s->be_content, &s->place_content);
    if (strcmp(s->place_content.precision, "int8-gemm") == 0)
        snprintf(s->calib_used, sizeof s->calib_used, "%s", s->calib_path);
    if (!st) rms_mix(x, n, p.work_rate, y, total, p.out_rate, c->options.rms_mix);
    if (!st) st = avo_audio_alloc(out, in_rate, 1, in_frames, err);
    if (!st) st = avo_resample_buffer(y, total, p.out_rate, in_rate, out->samples, in_frames, err);
    if (st) avo_audio_free(out);
    free(x), free(y);
    return st;
}

static void neural_destroy(void *state) {
    neural_state *s = state;
    if (!s) return;
    avo_rvc_free(s->rvc);
    avo_sovits_free(s->sovits);
    avo_hubert_free(s->hubert);
    feature_index_free(s->index);
    if (s->arena_content != s->arena) avo_arena_free(s->arena_content);
    if (s->be_content != s->be) avo_backend_free(s->be_content);
    avo_arena_free(s->arena);
    avo_backend_free(s->be);
    avo_calib_table_free(s->calib);
    avo_engine_cache_free(s->engines);
    free(s);
}

static const converter_ops neural_ops = {neural_run, neural_destroy};

static avo_status unmet(const avo_neural_config *cfg, avo_neural_placement *pl, avo_error *err, const char *why) {
    if (cfg->strict) return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s (--strict)", why);
    const size_t used = strlen(pl->fallback);
    snprintf(pl->fallback + used, sizeof pl->fallback - used, "%s%.200s", used ? "; " : "", why);
    return AVO_OK;
}

/* Opens cfg's device at precision prec (what, e.g. "content encoder", names the component in notes). */
/* INT8 on CUDA: the content encoder's calibration cache, checked against the encoder file, handed to
 * the back end. Returns AVO_OK with *why set when INT8 cannot run (the back end then stays FP16). */
static avo_status cuda_int8(const avo_neural_config *cfg, avo_backend *be, avo_calib_table **table, char *why,
                            size_t cap, avo_error *err) {
    why[0] = 0;
    if (!table) return snprintf(why, cap, "int8 is for the content encoder only; ran fp16"), AVO_OK;
    if (!cfg->calibration_path || !*cfg->calibration_path)
        return snprintf(why, cap, "int8 needs a calibration cache (--calib FILE, made by autovoice calibrate); ran fp16"),
               AVO_OK;
    uint64_t hash = 0;
    avo_error cerr = {0};
    avo_status st = avo_calib_file_hash(cfg->content_encoder_path, &hash, &cerr);
    if (!st) st = avo_calib_cache_read(cfg->calibration_path, &hash, table, &cerr);
    if (!st) st = avo_backend_cuda_set_calibration(be, *table, &cerr);
    if (!st) st = avo_backend_cuda_set_precision(be, AVO_CUDA_INT8, &cerr);
    if (st == AVO_ERR_NO_MEMORY) return avo_error_set(err, st, "%s", cerr.message);
    if (st) snprintf(why, cap, "int8 not used (%.200s); ran fp16", cerr.message);
    return AVO_OK;
}

/* Opens cfg's device at precision prec; what (e.g. "content encoder") names the component in notes.
 * table: where an INT8 calibration table is kept for the back end's life (NULL: INT8 not offered). */
static avo_status backend_open(const avo_neural_config *cfg, const char *prec, const char *what, int threads,
                               avo_calib_table **table, avo_backend **be, avo_neural_placement *pl, avo_error *err) {
    *be = NULL;
    memset(pl, 0, sizeof *pl);
    const char *dev = cfg->device && *cfg->device ? cfg->device : "cpu";
    if (!prec || !*prec) prec = "fp32";
    if (strcmp(dev, "cpu") != 0 && strcmp(dev, "cuda") != 0)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "unknown device '%s' (use cpu or cuda)", dev);
    if (!canonical_precision(prec, strlen(prec)))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "unknown precision '%s' (use fp32, fp16, int8 or bf16)",
                             prec);
    avo_status st = AVO_OK;
    char why[400];
    if (strcmp(dev, "cuda") == 0) {
        avo_error cerr = {0};
        if (avo_backend_cuda_create(-1, be, &cerr) == AVO_OK) {
            snprintf(pl->backend, sizeof pl->backend, "cuda");
            why[0] = 0;
            if (strcmp(prec, "fp16") == 0 || strcmp(prec, "int8") == 0)
                st = avo_backend_cuda_set_precision(*be, AVO_CUDA_FP16, err);
            if (!st && strcmp(prec, "int8") == 0) st = cuda_int8(cfg, *be, table, why, 300, err);
            else if (!st && strcmp(prec, "bf16") == 0) snprintf(why, sizeof why, "bf16 is a CPU precision; ran fp32");
            if (!st && why[0]) {
                char note[440];
                snprintf(note, sizeof note, "%s: %s", what, why);
                st = unmet(cfg, pl, err, note);
            }
            if (!st) {
                snprintf(pl->device, sizeof pl->device, "%s", avo_backend_name(*be));
                snprintf(pl->precision, sizeof pl->precision, "fp32");
                return AVO_OK;
            }
            avo_backend_free(*be);
            *be = NULL;
            return st;
        }
        snprintf(why, sizeof why, "%s: cuda requested but not usable: %.230s", what, cerr.message);
        st = unmet(cfg, pl, err, why);
    }
    if (st) return st;
    snprintf(pl->device, sizeof pl->device, "cpu");
    snprintf(pl->backend, sizeof pl->backend, "cpu");
    snprintf(pl->precision, sizeof pl->precision, "fp32");
    st = avo_backend_cpu_create(threads, be, err);
    if (st) return st;
    if (strcmp(prec, "bf16") == 0) {
        avo_error cerr = {0};
        if (avo_backend_cpu_set_precision(*be, AVO_CPU_BF16, &cerr) == AVO_OK) return AVO_OK;
        snprintf(why, sizeof why, "%s: bf16 not available (%.200s); ran fp32", what, cerr.message);
    } else if (strcmp(prec, "fp32") != 0) {
        snprintf(why, sizeof why, "%s: %s requested but the CPU back end runs fp32 (or bf16)", what, prec);
    } else {
        return AVO_OK;
    }
    st = unmet(cfg, pl, err, why);
    if (st) {
        avo_backend_free(*be);
        *be = NULL;
    }
    return st;
}

avo_status avo_neural_backend_open(const avo_neural_config *cfg, int threads, avo_backend **be,
                                   avo_neural_placement *pl, avo_error *err) {
    return backend_open(cfg, cfg->precision, "neural models", threads, NULL, be, pl, err);
}

avo_status avo_neural_backend_open_component(const avo_neural_config *cfg, avo_neural_component component,
                                             int threads, avo_backend **be, avo_neural_placement *pl,
                                             avo_error *err) {
    static const char *const what[] = {"content encoder", "pitch network", "voice model"};
    return backend_open(cfg, avo_neural_component_precision(cfg, component), what[component], threads, NULL, be, pl,
                        err);
}

void avo_neural_backend_observe(avo_backend *be, avo_neural_placement *pl) {
    int64_t a = 0, b = 0;
    if (strcmp(pl->backend, "cpu") == 0) {
        if (avo_backend_cpu_gemm_counts(be, &a, &b, NULL) == AVO_OK && b > 0)
            snprintf(pl->precision, sizeof pl->precision, "bf16-conv");
        return;
    }
    if (avo_backend_cuda_gemm_counts(be, &a, &b, NULL) != AVO_OK) return;
    snprintf(pl->precision, sizeof pl->precision, "%s", b > 0 ? "fp16-gemm" : "fp32");
    int64_t q = 0, skipped = 0;
    if (avo_backend_cuda_int8_counts(be, &q, &skipped, NULL) == AVO_OK && q > 0)
        snprintf(pl->precision, sizeof pl->precision, "int8-gemm");
}

/* RVC files hold {"weight", "config"}; so-vits files {"model"} with a config.json. */
static avo_status detect_kind(const char *path, neural_kind *kind, avo_error *err) {
    avo_ckpt *ck = NULL;
    avo_status st = avo_ckpt_open(path, &ck, err);
    if (st) return st;
    if (avo_ckpt_lookup(ck, "weight") && avo_ckpt_lookup(ck, "config")) *kind = NEURAL_RVC;
    else if (avo_ckpt_lookup(ck, "model")) *kind = NEURAL_SOVITS;
    else
        st = avo_error_set(err, AVO_ERR_FORMAT,
                           "%s: not a voice model this build knows (RVC .pth files hold 'weight' and 'config', "
                           "so-vits-svc G_*.pth files hold 'model')",
                           path);
    avo_ckpt_free(ck);
    return st;
}

/* Loads the voice model of either family and checks the speaker id and index against it. */
static avo_status load_voice(neural_state *s, const avo_neural_config *cfg, avo_error *err) {
    avo_status st = detect_kind(cfg->model_path, &s->kind, err);
    const avo_engine_request req = {s->engines, NULL, NULL, NULL};
    int speakers = 0, dim = 0;
    if (!st && s->kind == NEURAL_RVC) {
        st = avo_rvc_load_cached(cfg->model_path, s->be, &req, &s->rvc, &s->engine_voice, err);
        if (!st) {
            const avo_rvc_info *info = avo_rvc_get_info(s->rvc);
            speakers = info->n_speakers, dim = info->phone_dim;
            snprintf(s->name, sizeof s->name, "rvc-v%d", info->version);
        }
    } else if (!st) {
        st = avo_sovits_load_cached(cfg->model_path, cfg->model_config_path, s->be, &req, &s->sovits, &s->engine_voice,
                                    err);
        if (!st) {
            const avo_sovits_info *info = avo_sovits_get_info(s->sovits);
            speakers = info->n_speakers, dim = info->ssl_dim;
            snprintf(s->name, sizeof s->name, "so-vits-svc-%d.%d", info->version / 10, info->version % 10);
            if (cfg->index_path && *cfg->index_path)
                st = avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                                   "%s: feature indexes are for RVC models; so-vits-svc models take none",
                                   cfg->index_path);
        }
    }
    if (!st && cfg->index_path && *cfg->index_path) st = feature_index_load(cfg->index_path, &s->index, err);
    if (!st && (cfg->speaker_id < 0 || cfg->speaker_id >= speakers))
        st = avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s: speaker id %d is out of range (the model has %d)",
                           cfg->model_path, cfg->speaker_id, speakers);
    if (!st && s->index && feature_index_dim(s->index) != dim)
        st = avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                           "%s: the index holds %d-dim features but the model takes %d (an index of another model?)",
                           cfg->index_path, feature_index_dim(s->index), dim);
    return st;
}

avo_status avo_converter_create_neural(const avo_neural_config *cfg, const avo_voice_analysis *target,
                                       const avo_convert_options *opt, avo_converter **out, avo_error *err) {
    *out = NULL;
    if (!cfg || !cfg->model_path || !*cfg->model_path)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "the neural converter needs a voice model (--model)");
    if (!cfg->content_encoder_path || !*cfg->content_encoder_path)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "neural voice models need a content encoder: give --content-encoder hubert_base.pt");
    if (!(cfg->index_rate >= 0.0 && cfg->index_rate <= 1.0))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "index rate must be within 0..1");
    avo_convert_options defaults;
    if (!opt) {
        avo_convert_options_default(&defaults);
        opt = &defaults;
    }
    avo_converter *c = calloc(1, sizeof *c);
    neural_state *s = calloc(1, sizeof *s);
    if (!c || !s) {
        free(c), free(s);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "no memory for the converter");
    }
    c->ops = &neural_ops;
    c->state = s;
    c->options = *opt;
    s->cfg = *cfg;
    s->cfg.model_path = s->cfg.content_encoder_path = s->cfg.index_path = s->cfg.device = NULL;
    s->cfg.model_config_path = s->cfg.precision = s->cfg.calibration_path = NULL;
    s->cfg.content_precision = s->cfg.pitch_precision = s->cfg.vocoder_precision = NULL;
    s->target = target;
    if (cfg->calibration_path) snprintf(s->calib_path, sizeof s->calib_path, "%s", cfg->calibration_path);
    if (cfg->engine_cache && avo_engine_cache_open(cfg->engine_cache_dir, &s->engines, NULL) != AVO_OK)
        s->engines = NULL; /* no place for a cache (no home directory): load from the checkpoints */
    avo_status st = avo_neural_backend_open_component(cfg, AVO_NEURAL_VOCODER, opt->threads, &s->be, &s->place, err);
    if (!st) st = avo_arena_create(s->be, (size_t)64 << 20, &s->arena, err);
    const char *content_prec = avo_neural_component_precision(cfg, AVO_NEURAL_CONTENT);
    if (!st && strcmp(content_prec, avo_neural_component_precision(cfg, AVO_NEURAL_VOCODER)) == 0 &&
        strcmp(content_prec, "int8") != 0) { /* INT8 scales are the content encoder's own */
        s->be_content = s->be, s->arena_content = s->arena, s->place_content = s->place;
    } else if (!st) {
        st = backend_open(cfg, content_prec, "content encoder", opt->threads, &s->calib, &s->be_content,
                          &s->place_content, err);
        if (!st) st = avo_arena_create(s->be_content, (size_t)64 << 20, &s->arena_content, err);
        if (!st && s->place_content.fallback[0]) /* one list of notes for the run */
            unmet(cfg, &s->place, err, s->place_content.fallback);
    }
    if (!st) st = load_voice(s, cfg, err);
    if (!st) {
        const avo_engine_request req = {s->engines, NULL, NULL, NULL};
        st = avo_hubert_load_cached(cfg->content_encoder_path, s->be_content, &req, &s->hubert, &s->engine_content, err);
    }
    if (st) {
        neural_destroy(s);
        free(c);
        return st;
    }
    c->info.name = s->name;
    c->info.backend = s->place.backend;
    c->info.device = s->place.device;
    c->info.precision = s->place.precision;
    c->info.applied_transpose_semitones = opt->transpose_semitones;
    c->info.formant_warp_ratio = 1.0;
    c->info.fallback = s->place.fallback;
    c->info.content_device = s->place_content.device;
    c->info.content_precision = s->place_content.precision;
    c->info.content_engine = avo_engine_outcome_name(s->engine_content.outcome);
    c->info.content_engine_note = s->engine_content.reason;
    c->info.voice_engine = avo_engine_outcome_name(s->engine_voice.outcome);
    c->info.voice_engine_note = s->engine_voice.reason;
    c->info.calibration_cache = s->calib_used;
    *out = c;
    return AVO_OK;
}

avo_status avo_neural_model_check(const char *model_path, const char *config_path, const char *index_path,
                                  char *info, size_t cap, int *sample_rate, avo_error *err) {
    neural_state s;
    memset(&s, 0, sizeof s);
    avo_neural_config cfg;
    avo_neural_config_default(&cfg);
    cfg.model_path = model_path;
    cfg.model_config_path = config_path;
    cfg.index_path = index_path;
    avo_status st = avo_backend_cpu_create(1, &s.be, err);
    if (!st) st = load_voice(&s, &cfg, err);
    if (!st && s.kind == NEURAL_RVC) {
        const avo_rvc_info *ri = avo_rvc_get_info(s.rvc);
        if (info)
            snprintf(info, cap, "RVC v%d, %d Hz, %s, %d speaker%s%s", ri->version, ri->sample_rate,
                     ri->uses_f0 ? "pitch-guided" : "no pitch input", ri->n_speakers, ri->n_speakers == 1 ? "" : "s",
                     s.index ? ", with index" : "");
        if (sample_rate) *sample_rate = ri->sample_rate;
    } else if (!st) {
        const avo_sovits_info *si = avo_sovits_get_info(s.sovits);
        if (info)
            snprintf(info, cap, "so-vits-svc %d.%d, %d Hz, %s units, %d speaker%s", si->version / 10, si->version % 10,
                     si->sample_rate, si->speech_encoder, si->n_speakers, si->n_speakers == 1 ? "" : "s");
        if (sample_rate) *sample_rate = si->sample_rate;
    }
    feature_index_free(s.index);
    avo_rvc_free(s.rvc);
    avo_sovits_free(s.sovits);
    avo_backend_free(s.be);
    return st;
}
