/* Mixing stage: loudness-matched vocals over the accompaniment, then a true-peak limiter. */
#include "autovoice/mix.h"

#include <math.h>
#include <soxr.h>
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
 * over all channels. */
static avo_status true_peak_envelope(const avo_audio *a, float *peak, avo_error *err) {
    const size_t n = (size_t)a->frames;
    const size_t up_n = n * OVERSAMPLE;
    float *up = malloc(sizeof(float) * (up_n ? up_n : 1));
    if (!up) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory in the limiter");
    memset(peak, 0, sizeof(float) * n);
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    for (int c = 0; c < a->channels; c++) {
        const float *x = avo_audio_channel(a, c);
        size_t done = 0;
        memset(up, 0, sizeof(float) * up_n);
        soxr_error_t e = soxr_oneshot(1.0, OVERSAMPLE, 1, x, n, NULL, up, up_n, &done, &io, &q, NULL);
        if (e) {
            free(up);
            return avo_error_set(err, AVO_ERR_INTERNAL, "limiter oversampling failed: %s", e);
        }
        for (size_t i = 0; i < n; i++) {
            float m = fabsf(x[i]);
            for (int k = 0; k < OVERSAMPLE; k++) {
                float v = fabsf(up[i * OVERSAMPLE + (size_t)k]);
                m = v > m ? v : m;
            }
            peak[i] = m > peak[i] ? m : peak[i];
        }
    }
    free(up);
    return AVO_OK;
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
        /* Verify with the R128 meter; trim statically if an inter-sample peak still exceeds the ceiling. */
        double tp = 0.0;
        st = avo_audio_true_peak(a, &tp, err);
        if (!st && tp > cfg->ceiling_dbtp) {
            float trim = (float)pow(10.0, (cfg->ceiling_dbtp - 0.05 - tp) / 20.0);
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
    if (!st) st = avo_audio_true_peak(out, &rep.output_true_peak_dbtp, err);
    if (st) {
        avo_audio_free(out);
        return st;
    }
    if (report) *report = rep;
    return AVO_OK;
}
