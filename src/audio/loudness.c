/* EBU R128 loudness and true peak through libebur128. */
#include "autovoice/audio.h"

#include <ebur128.h>
#include <math.h>
#include <stdlib.h>

static avo_status measure(const avo_audio *a, int mode, ebur128_state **out, avo_error *err) {
    ebur128_state *s = ebur128_init((unsigned)a->channels, (unsigned long)a->sample_rate, mode);
    if (!s) return avo_error_set(err, AVO_ERR_NO_MEMORY, "cannot start loudness measurement");
    enum { BLOCK = 8192 };
    float *inter = malloc(sizeof(float) * BLOCK * (size_t)a->channels);
    if (!inter) {
        ebur128_destroy(&s);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    }
    for (int64_t start = 0; start < a->frames; start += BLOCK) {
        int64_t n = a->frames - start < BLOCK ? a->frames - start : BLOCK;
        for (int c = 0; c < a->channels; c++) {
            const float *x = avo_audio_channel(a, c) + start;
            for (int64_t i = 0; i < n; i++) inter[i * a->channels + c] = x[i];
        }
        ebur128_add_frames_float(s, inter, (size_t)n);
    }
    free(inter);
    *out = s;
    return AVO_OK;
}

avo_status avo_audio_loudness(const avo_audio *a, double *lufs, avo_error *err) {
    ebur128_state *s = NULL;
    avo_status st = measure(a, EBUR128_MODE_I, &s, err);
    if (st) return st;
    double v = -HUGE_VAL;
    if (ebur128_loudness_global(s, &v) != EBUR128_SUCCESS) v = -HUGE_VAL;
    ebur128_destroy(&s);
    *lufs = v;
    return AVO_OK;
}

avo_status avo_audio_true_peak(const avo_audio *a, double *dbtp, avo_error *err) {
    ebur128_state *s = NULL;
    avo_status st = measure(a, EBUR128_MODE_TRUE_PEAK, &s, err);
    if (st) return st;
    double peak = 0.0;
    for (int c = 0; c < a->channels; c++) {
        double p = 0.0;
        if (ebur128_true_peak(s, (unsigned)c, &p) == EBUR128_SUCCESS && p > peak) peak = p;
    }
    ebur128_destroy(&s);
    *dbtp = peak > 0.0 ? 20.0 * log10(peak) : -HUGE_VAL;
    return AVO_OK;
}
