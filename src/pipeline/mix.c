/* Mixing stage: loudness-matched vocals over the accompaniment, then a true-peak limiter. */
#include "autovoice/mix.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { OVERSAMPLE = 4 };

void avo_mix_config_default(avo_mix_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->ceiling_dbtp = -1.0;
    cfg->lookahead_ms = 5.0;
    cfg->release_ms = 80.0;
    cfg->match_loudness = 1;
    cfg->vocal_gain_db = 0.0;
}

/* Per-sample true-peak estimate: the largest |x| among the 4x oversampled values around each sample,
 * over all channels. The interpolator is a 47-tap windowed-sinc polyphase FIR, the kind BS.1770
 * describes for true-peak meters; processed in blocks from a zero-padded copy so loops stay simple. */
enum { TAPS_PER_PHASE = 12, PEAK_BLOCK = 32768 };

static void interpolator(float h[OVERSAMPLE][TAPS_PER_PHASE]) {
    /* Odd length: the centre tap falls on a sample, so the phases sit at offsets 0, 1/4, 1/2, 3/4. */
    const int len = OVERSAMPLE * TAPS_PER_PHASE - 1;
    const double centre = (len - 1) / 2.0;
    memset(h, 0, sizeof(float) * OVERSAMPLE * TAPS_PER_PHASE);
    for (int i = 0; i < len; i++) {
        double t = (i - centre) / OVERSAMPLE;
        double sinc = fabs(t) < 1e-12 ? 1.0 : sin(M_PI * t) / (M_PI * t);
        double w = 0.5 + 0.5 * cos(2.0 * M_PI * (i - centre) / (len + 1)); /* Hann */
        h[i % OVERSAMPLE][i / OVERSAMPLE] = (float)(sinc * w);
    }
}

/* True-peak estimate of samples [start, start+len) into pk[0..len): max over channels of |x| and the
 * three interpolated points after each sample. scratch holds PEAK_BLOCK + TAPS_PER_PHASE floats, acc
 * PEAK_BLOCK floats; len <= PEAK_BLOCK. */
static void peak_block(const avo_audio *a, float h[OVERSAMPLE][TAPS_PER_PHASE], int64_t start, int64_t len, float *pk,
                       float *pad, float *acc) {
    const int half = TAPS_PER_PHASE / 2;
    const int64_t n = a->frames;
    memset(pk, 0, sizeof(float) * (size_t)len);
    for (int c = 0; c < a->channels; c++) {
        const float *x = avo_audio_channel(a, c);
        for (int64_t i = 0; i < len + TAPS_PER_PHASE; i++) {
            int64_t src = start + i - half;
            pad[i] = src >= 0 && src < n ? x[src] : 0.0f;
        }
        for (int64_t i = 0; i < len; i++) {
            float v = fabsf(x[start + i]);
            pk[i] = v > pk[i] ? v : pk[i];
        }
        for (int p = 0; p < OVERSAMPLE; p++) {
            memset(acc, 0, sizeof(float) * (size_t)len);
            for (int j = 0; j < TAPS_PER_PHASE; j++) {
                const float hj = h[p][TAPS_PER_PHASE - 1 - j];
                const float *xs = pad + j + 1;
                for (int64_t i = 0; i < len; i++) acc[i] += hj * xs[i];
            }
            for (int64_t i = 0; i < len; i++) {
                float v = fabsf(acc[i]);
                pk[i] = v > pk[i] ? v : pk[i];
            }
        }
    }
}

typedef struct peak_scratch {
    float h[OVERSAMPLE][TAPS_PER_PHASE];
    float *pk, *pad, *acc;
} peak_scratch;

static avo_status scratch_init(peak_scratch *s, avo_error *err) {
    interpolator(s->h);
    s->pk = malloc(sizeof(float) * PEAK_BLOCK);
    s->pad = malloc(sizeof(float) * (PEAK_BLOCK + TAPS_PER_PHASE));
    s->acc = malloc(sizeof(float) * PEAK_BLOCK);
    if (s->pk && s->pad && s->acc) return AVO_OK;
    free(s->pk), free(s->pad), free(s->acc);
    return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory in the limiter");
}

static void scratch_free(peak_scratch *s) { free(s->pk), free(s->pad), free(s->acc); }

/* Highest true-peak estimate of the whole signal (linear). */
static float max_true_peak(const avo_audio *a, peak_scratch *s) {
    float m = 0.0f;
    for (int64_t start = 0; start < a->frames; start += PEAK_BLOCK) {
        const int64_t len = a->frames - start < PEAK_BLOCK ? a->frames - start : PEAK_BLOCK;
        peak_block(a, s->h, start, len, s->pk, s->pad, s->acc);
        for (int64_t i = 0; i < len; i++) m = s->pk[i] > m ? s->pk[i] : m;
    }
    return m;
}

/* The limiter runs as a stream with memory of one look-ahead window, not of the song:
 *   target gain g[j] = min(1, threshold / peak[j]);
 *   look-ahead minimum m[i] = min g[i .. i+L]   (monotonic deque over a ring of L+1);
 *   attack a[i] = mean m[i-L .. i]             (box filter; padded with 1 before the start);
 *   release r[i] = min(a[i], r[i-1] + (1 - r[i-1]) * coef).
 * Each step only lowers the gain where needed, so r[i] <= g[i]: no sample exceeds the threshold.
 * Sample i is scaled once g is known up to i+L; the peak estimate reads only samples ahead of i. */
typedef struct limiter_stream {
    int64_t window;        /* L + 1 */
    int64_t *dq_index;     /* ring of indices, capacity window */
    float *dq_value;
    int64_t head, count;   /* deque occupies ring[head .. head+count) */
    float *box;            /* ring of the last `window` look-ahead minima */
    double box_sum, released, coef;
    float min_gain;
} limiter_stream;

static void stream_push(limiter_stream *ls, int64_t j, float g) {
    while (ls->count > 0 && ls->dq_value[(ls->head + ls->count - 1) % ls->window] >= g) ls->count--;
    int64_t slot = (ls->head + ls->count) % ls->window;
    ls->dq_index[slot] = j, ls->dq_value[slot] = g;
    ls->count++;
}

/* Gain for sample i = j - L, once g[j] has been pushed. */
static float stream_gain(limiter_stream *ls, int64_t i) {
    while (ls->dq_index[ls->head] < i) ls->head = (ls->head + 1) % ls->window, ls->count--;
    const float m = ls->dq_value[ls->head];
    const int64_t slot = i % ls->window;
    ls->box_sum += (double)m - ls->box[slot];
    ls->box[slot] = m;
    const double attack = ls->box_sum / (double)ls->window;
    ls->released += (1.0 - ls->released) * ls->coef;
    if (attack < ls->released) ls->released = attack;
    const float g = (float)ls->released;
    if (g < ls->min_gain) ls->min_gain = g;
    return g;
}

static avo_status run_limiter(avo_audio *a, peak_scratch *s, float threshold, int64_t lookahead, double coef,
                              float *min_gain, avo_error *err) {
    limiter_stream ls;
    memset(&ls, 0, sizeof ls);
    ls.window = lookahead + 1;
    ls.dq_index = malloc(sizeof(int64_t) * (size_t)ls.window);
    ls.dq_value = malloc(sizeof(float) * (size_t)ls.window);
    ls.box = malloc(sizeof(float) * (size_t)ls.window);
    if (!ls.dq_index || !ls.dq_value || !ls.box) {
        free(ls.dq_index), free(ls.dq_value), free(ls.box);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory in the limiter");
    }
    for (int64_t k = 0; k < ls.window; k++) ls.box[k] = 1.0f;
    ls.box_sum = (double)ls.window;
    ls.released = 1.0;
    ls.coef = coef;
    ls.min_gain = 1.0f;
    const int64_t n = a->frames;
    int64_t block_start = -PEAK_BLOCK;
    for (int64_t j = 0; j < n + lookahead; j++) {
        float g = 1.0f;
        if (j < n) {
            if (j >= block_start + PEAK_BLOCK) {
                block_start = j;
                const int64_t len = n - j < PEAK_BLOCK ? n - j : PEAK_BLOCK;
                peak_block(a, s->h, j, len, s->pk, s->pad, s->acc);
            }
            const float p = s->pk[j - block_start];
            g = p > threshold ? threshold / p : 1.0f;
        }
        stream_push(&ls, j, g);
        const int64_t i = j - lookahead;
        if (i < 0) continue;
        const float gi = stream_gain(&ls, i);
        if (gi < 1.0f)
            for (int c = 0; c < a->channels; c++) avo_audio_channel(a, c)[i] *= gi;
    }
    *min_gain = ls.min_gain;
    free(ls.dq_index), free(ls.dq_value), free(ls.box);
    return AVO_OK;
}

avo_status avo_limit_true_peak(avo_audio *a, const avo_mix_config *cfg, double *max_reduction_db, avo_error *err) {
    avo_mix_config defaults;
    if (!cfg) {
        avo_mix_config_default(&defaults);
        cfg = &defaults;
    }
    if (max_reduction_db) *max_reduction_db = 0.0;
    if (a->frames == 0) return AVO_OK;
    peak_scratch s;
    avo_status st = scratch_init(&s, err);
    if (st) return st;
    /* Aim slightly under the ceiling: a 4x estimate can miss inter-sample peaks by ~0.1 dB. */
    const float threshold = (float)pow(10.0, (cfg->ceiling_dbtp - 0.15) / 20.0);
    const int64_t lookahead = (int64_t)(cfg->lookahead_ms * 1e-3 * a->sample_rate + 0.5);
    const double coef = 1.0 - exp(-1.0 / (cfg->release_ms * 1e-3 * a->sample_rate));
    float min_gain = 1.0f;
    if (max_true_peak(a, &s) > threshold) st = run_limiter(a, &s, threshold, lookahead, coef, &min_gain, err);
    if (!st) {
        if (max_reduction_db) *max_reduction_db = -20.0 * log10(min_gain);
        /* Verify; trim statically if an inter-sample peak still exceeds the ceiling. */
        const double tp = 20.0 * log10(fmax(max_true_peak(a, &s), 1e-12));
        if (tp > cfg->ceiling_dbtp - 0.1) {
            const float trim = (float)pow(10.0, (cfg->ceiling_dbtp - 0.15 - tp) / 20.0);
            for (size_t i = 0; i < (size_t)a->frames * (size_t)a->channels; i++) a->samples[i] *= trim;
        }
    }
    scratch_free(&s);
    return st;
}

avo_status avo_mix_in_place(const avo_audio *converted, double reference_lufs, avo_audio *mix,
                           const avo_mix_config *cfg, avo_mix_report *report, avo_error *err) {
    if (!converted || !mix || !mix->samples)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "mixing needs vocals and accompaniment");
    avo_mix_config defaults;
    if (!cfg) {
        avo_mix_config_default(&defaults);
        cfg = &defaults;
    }
    avo_mix_report rep;
    memset(&rep, 0, sizeof rep);
    rep.original_vocals_lufs = reference_lufs;
    rep.converted_vocals_lufs = -HUGE_VAL;
    /* Bring the vocals to the mix's rate; mono stays mono and is added to every channel. */
    avo_audio resampled = {0}, layout = {0};
    const avo_audio *src = converted;
    avo_status st = AVO_OK;
    if (src->sample_rate != mix->sample_rate) {
        st = avo_audio_resample(src, mix->sample_rate, &resampled, err);
        src = &resampled;
    }
    if (!st && src->channels != 1 && src->channels != mix->channels) {
        st = avo_audio_set_channels(src, mix->channels, &layout, err);
        src = &layout;
    }
    if (!st && cfg->match_loudness && isfinite(reference_lufs)) {
        st = avo_audio_loudness(src, &rep.converted_vocals_lufs, err);
        /* R128 sums channel powers: a mono voice duplicated into n channels reads 10 log10(n) dB louder. */
        if (src->channels == 1) rep.converted_vocals_lufs += 10.0 * log10((double)mix->channels);
        if (!st && isfinite(rep.converted_vocals_lufs)) {
            double g = reference_lufs - rep.converted_vocals_lufs;
            rep.vocal_gain_db = g > 24.0 ? 24.0 : g < -24.0 ? -24.0 : g;
        }
    }
    rep.vocal_gain_db += cfg->vocal_gain_db;
    if (!st) {
        const float g = (float)pow(10.0, rep.vocal_gain_db / 20.0);
        const int64_t n = src->frames < mix->frames ? src->frames : mix->frames;
        for (int c = 0; c < mix->channels; c++) {
            float *y = avo_audio_channel(mix, c);
            const float *v = avo_audio_channel(src, src->channels == 1 ? 0 : c);
            for (int64_t i = 0; i < n; i++) y[i] += g * v[i];
        }
        st = avo_limit_true_peak(mix, cfg, &rep.limiter_max_reduction_db, err);
    }
    avo_audio_free(&resampled);
    avo_audio_free(&layout);
    peak_scratch s;
    if (!st) st = scratch_init(&s, err);
    if (!st) {
        const float m = max_true_peak(mix, &s);
        rep.output_true_peak_dbtp = m > 0.0f ? 20.0 * log10(m) : -HUGE_VAL;
        scratch_free(&s);
    }
    if (!st && report) *report = rep;
    return st;
}

avo_status avo_mix(const avo_audio *converted, const avo_audio *original_vocals, const avo_audio *accompaniment,
                   const avo_mix_config *cfg, avo_audio *out, avo_mix_report *report, avo_error *err) {
    if (!converted || !accompaniment || !out)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "mixing needs vocals and accompaniment");
    double reference = -HUGE_VAL;
    avo_status st = original_vocals ? avo_audio_loudness(original_vocals, &reference, err) : AVO_OK;
    if (!st) st = avo_audio_copy(accompaniment, out, err);
    if (!st) st = avo_mix_in_place(converted, reference, out, cfg, report, err);
    if (st) avo_audio_free(out);
    return st;
}
