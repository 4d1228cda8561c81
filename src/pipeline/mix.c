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

static avo_status true_peak_envelope(const avo_audio *a, float *peak, avo_error *err) {
    float h[OVERSAMPLE][TAPS_PER_PHASE];
    interpolator(h);
    const int64_t n = a->frames;
    const int half = TAPS_PER_PHASE / 2;
    float *pad = malloc(sizeof(float) * (PEAK_BLOCK + TAPS_PER_PHASE));
    float *acc = malloc(sizeof(float) * PEAK_BLOCK);
    if (!pad || !acc) {
        free(pad);
        free(acc);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory in the limiter");
    }
    memset(peak, 0, sizeof(float) * (size_t)n);
    for (int c = 0; c < a->channels; c++) {
        const float *x = avo_audio_channel(a, c);
        for (int64_t start = 0; start < n; start += PEAK_BLOCK) {
            const int64_t len = n - start < PEAK_BLOCK ? n - start : PEAK_BLOCK;
            for (int64_t i = 0; i < len + TAPS_PER_PHASE; i++) {
                int64_t src = start + i - half;
                pad[i] = src >= 0 && src < n ? x[src] : 0.0f;
            }
            float *pk = peak + start;
            for (int64_t i = 0; i < len; i++) { float v = fabsf(x[start + i]); pk[i] = v > pk[i] ? v : pk[i]; }
            for (int p = 0; p < OVERSAMPLE; p++) {
                memset(acc, 0, sizeof(float) * (size_t)len);
                for (int j = 0; j < TAPS_PER_PHASE; j++) {
                    const float hj = h[p][TAPS_PER_PHASE - 1 - j];
                    const float *xs = pad + j + 1;
                    for (int64_t i = 0; i < len; i++) acc[i] += hj * xs[i];
                }
                for (int64_t i = 0; i < len; i++) { float v = fabsf(acc[i]); pk[i] = v > pk[i] ? v : pk[i]; }
            }
        }
    }
    free(pad);
    free(acc);
    return AVO_OK;
}

static float max_of(const float *x, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* out[i] = min(in[i .. i+width-1]) with a monotonic deque, O(n). */
static avo_status sliding_min_ahead(const float *in, float *out, size_t n, size_t width, avo_error *err) {
    size_t *dq = malloc(sizeof(size_t) * (n ? n : 1));
    if (!dq) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory in the limiter");
    size_t head = 0, tail = 0, next = 0;
    for (size_t i = 0; i < n; i++) {
        size_t end = i + width < n ? i + width : n;
        for (; next < end; next++) {
            while (tail > head && in[dq[tail - 1]] >= in[next]) tail--;
            dq[tail++] = next;
        }
        while (dq[head] < i) head++;
        out[i] = in[dq[head]];
    }
    free(dq);
    return AVO_OK;
}

/* Builds the limiter gain: look-ahead minimum, box-smoothed attack, exponential release.
 * Both smoothing steps only lower the gain where needed, so gain[i] <= target[i] holds. */
static avo_status limiter_gain(const float *target, float *gain, size_t n, size_t lookahead, double release_coef,
                               avo_error *err) {
    float *ahead = malloc(sizeof(float) * (n ? n : 1));
    if (!ahead) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory in the limiter");
    avo_status st = sliding_min_ahead(target, ahead, n, lookahead + 1, err);
    if (st) {
        free(ahead);
        return st;
    }
    double sum = 0.0, released = 1.0;
    for (size_t i = 0; i < n; i++) {
        sum += ahead[i];
        if (i > lookahead) sum -= ahead[i - lookahead - 1];
        size_t count = i < lookahead ? i + 1 : lookahead + 1;
        /* Before the window is full, pad with 1.0 (no reduction before the signal starts). */
        double attack = (sum + (double)(lookahead + 1 - count)) / (double)(lookahead + 1);
        released = released + (1.0 - released) * release_coef;
        if (attack < released) released = attack;
        gain[i] = (float)released;
    }
    free(ahead);
    return AVO_OK;
}

avo_status avo_limit_true_peak(avo_audio *a, const avo_mix_config *cfg, double *max_reduction_db, avo_error *err) {
    avo_mix_config defaults;
    if (!cfg) {
        avo_mix_config_default(&defaults);
        cfg = &defaults;
    }
    const size_t n = (size_t)a->frames;
    if (max_reduction_db) *max_reduction_db = 0.0;
    if (n == 0) return AVO_OK;
    /* Aim slightly under the ceiling: the 4x estimate can miss inter-sample peaks by ~0.1 dB. */
    const float threshold = (float)pow(10.0, (cfg->ceiling_dbtp - 0.15) / 20.0);
    float *peak = malloc(sizeof(float) * n);
    float *gain = malloc(sizeof(float) * n);
    avo_status st = peak && gain ? AVO_OK : avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory in the limiter");
    if (!st) st = true_peak_envelope(a, peak, err);
    if (!st) {
        for (size_t i = 0; i < n; i++) peak[i] = peak[i] > threshold ? threshold / peak[i] : 1.0f;
        size_t lookahead = (size_t)(cfg->lookahead_ms * 1e-3 * a->sample_rate + 0.5);
        double release_coef = 1.0 - exp(-1.0 / (cfg->release_ms * 1e-3 * a->sample_rate));
        st = limiter_gain(peak, gain, n, lookahead, release_coef, err);
    }
    if (!st) {
        float min_gain = 1.0f;
        for (size_t i = 0; i < n; i++) min_gain = gain[i] < min_gain ? gain[i] : min_gain;
        for (int c = 0; c < a->channels; c++) {
            float *x = avo_audio_channel(a, c);
            for (size_t i = 0; i < n; i++) x[i] *= gain[i];
        }
        if (max_reduction_db) *max_reduction_db = -20.0 * log10(min_gain);
        /* Verify; trim statically if an inter-sample peak still exceeds the ceiling. */
        st = true_peak_envelope(a, peak, err);
        const double tp = 20.0 * log10(fmax(max_of(peak, n), 1e-12));
        if (!st && tp > cfg->ceiling_dbtp - 0.1) {
            float trim = (float)pow(10.0, (cfg->ceiling_dbtp - 0.15 - tp) / 20.0);
            for (size_t i = 0; i < n * (size_t)a->channels; i++) a->samples[i] *= trim;
        }
    }
    free(peak);
    free(gain);
    return st;
}

/* Converted vocals at the accompaniment's rate, channel count and length. */
static avo_status conform(const avo_audio *in, const avo_audio *like, avo_audio *out, avo_error *err) {
    avo_audio resampled = {0}, chans = {0};
    avo_status st = avo_audio_resample(in, like->sample_rate, &resampled, err);
    if (!st) st = avo_audio_set_channels(&resampled, like->channels, &chans, err);
    avo_audio_free(&resampled);
    if (!st) st = avo_audio_alloc(out, like->sample_rate, like->channels, like->frames, err);
    if (!st) {
        int64_t n = chans.frames < like->frames ? chans.frames : like->frames;
        for (int c = 0; c < like->channels; c++)
            memcpy(avo_audio_channel(out, c), avo_audio_channel(&chans, c), sizeof(float) * (size_t)n);
    }
    avo_audio_free(&chans);
    return st;
}

avo_status avo_mix(const avo_audio *converted, const avo_audio *original_vocals, const avo_audio *accompaniment,
                   const avo_mix_config *cfg, avo_audio *out, avo_mix_report *report, avo_error *err) {
    if (!converted || !accompaniment || !out)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "mixing needs vocals and accompaniment");
    avo_mix_config defaults;
    if (!cfg) {
        avo_mix_config_default(&defaults);
        cfg = &defaults;
    }
    avo_mix_report rep;
    memset(&rep, 0, sizeof rep);
    rep.original_vocals_lufs = rep.converted_vocals_lufs = -HUGE_VAL;
    avo_status st = conform(converted, accompaniment, out, err);
    if (st) return st;
    if (cfg->match_loudness && original_vocals) {
        st = avo_audio_loudness(original_vocals, &rep.original_vocals_lufs, err);
        if (!st) st = avo_audio_loudness(out, &rep.converted_vocals_lufs, err);
        /* Silence on either side (R128 gives -inf) leaves the level alone. */
        if (!st && isfinite(rep.original_vocals_lufs) && isfinite(rep.converted_vocals_lufs)) {
            double g = rep.original_vocals_lufs - rep.converted_vocals_lufs;
            rep.vocal_gain_db = g > 24.0 ? 24.0 : g < -24.0 ? -24.0 : g;
        }
    }
    rep.vocal_gain_db += cfg->vocal_gain_db;
    if (!st) {
        const float g = (float)pow(10.0, rep.vocal_gain_db / 20.0);
        for (int c = 0; c < out->channels; c++) {
            float *y = avo_audio_channel(out, c);
            const float *acc = avo_audio_channel(accompaniment, c);
            for (int64_t i = 0; i < out->frames; i++) y[i] = y[i] * g + acc[i];
        }
        st = avo_limit_true_peak(out, cfg, &rep.limiter_max_reduction_db, err);
    }
    if (!st) {
        float *peak = malloc(sizeof(float) * (size_t)(out->frames ? out->frames : 1));
        st = peak ? true_peak_envelope(out, peak, err) : avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
        if (!st) {
            float m = max_of(peak, (size_t)out->frames);
            rep.output_true_peak_dbtp = m > 0.0f ? 20.0 * log10(m) : -HUGE_VAL;
        }
        free(peak);
    }
    if (st) {
        avo_audio_free(out);
        return st;
    }
    if (report) *report = rep;
    return AVO_OK;
}
