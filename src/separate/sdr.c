/* BSS Eval v4 images-mode SDR (museval's definition, see sdr.h for why no filters are needed) and SI-SDR. */
#include "autovoice/sdr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t avo_bss_eval_windows(int64_t n, int64_t window, int64_t hop) {
    if (n <= 0 || window <= 0 || hop <= 0) return 0;
    if (window >= n) return 1;
    return (n - window + hop) / hop;
}

/* Sample i of channel c of a, zero beyond its end (museval pads estimates with zeros). */
static inline double sample_at(const avo_audio *a, int c, int64_t i) {
    return i < a->frames ? (double)avo_audio_channel(a, c)[i] : 0.0;
}

/* museval's _any_source_silent for one source over [a, b): every sample's channel sum is 0. */
static int window_silent(const avo_audio *x, int64_t a, int64_t b) {
    for (int64_t i = a; i < b; i++) {
        double s = 0;
        for (int c = 0; c < x->channels; c++) s += sample_at(x, c, i);
        if (s != 0) return 0;
    }
    return 1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

avo_status avo_bss_eval_sdr(const avo_audio *refs, const avo_audio *ests, int nsrc, int64_t window, int64_t hop,
                            double *framewise, double *median, avo_error *err) {
    if (!refs || !ests || nsrc < 1)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "bss_eval: need at least one reference and estimate");
    const int64_t n = refs[0].frames;
    const int C = refs[0].channels;
    for (int j = 0; j < nsrc; j++) {
        if (refs[j].frames != n || refs[j].channels != C || ests[j].channels != C)
            return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                                 "bss_eval: source %d has %d/%d channels and %lld reference frames; all references "
                                 "must match reference 0 (%d channels, %lld frames)",
                                 j, refs[j].channels, ests[j].channels, (long long)refs[j].frames, C, (long long)n);
        if (n == 0 || window_silent(&refs[j], 0, n))
            return avo_error_set(err, AVO_ERR_INVALID_AUDIO,
                                 "bss_eval: reference %d is silent (or empty); SDR is undefined, drop that source", j);
    }
    if (window <= 0) window = refs[0].sample_rate;
    if (hop <= 0) hop = refs[0].sample_rate;
    const int64_t nwin = avo_bss_eval_windows(n, window, hop);
    double *vals = malloc(sizeof(double) * (size_t)nsrc * (size_t)nwin);
    if (!vals) return avo_error_set(err, AVO_ERR_NO_MEMORY, "bss_eval: out of memory");
    for (int64_t w = 0; w < nwin; w++) {
        const int64_t a = nwin == 1 && window >= n ? 0 : w * hop;
        const int64_t b = a + window < n && !(window >= n) ? a + window : n;
        int skip = 0;
        for (int j = 0; j < nsrc && !skip; j++) skip = window_silent(&refs[j], a, b) || window_silent(&ests[j], a, b);
        for (int j = 0; j < nsrc; j++) {
            if (skip) {
                vals[(size_t)j * nwin + w] = NAN;
                continue;
            }
            double es = 0, ee = 0;
            for (int c = 0; c < C; c++) {
                const float *s = avo_audio_channel(&refs[j], c);
                for (int64_t i = a; i < b; i++) {
                    const double d = sample_at(&ests[j], c, i) - s[i];
                    es += (double)s[i] * s[i];
                    ee += d * d;
                }
            }
            vals[(size_t)j * nwin + w] = ee == 0 ? INFINITY : 10.0 * log10(es / ee);
        }
    }
    if (framewise) memcpy(framewise, vals, sizeof(double) * (size_t)nsrc * (size_t)nwin);
    if (median) {
        for (int j = 0; j < nsrc; j++) {
            double *v = vals + (size_t)j * nwin;
            int64_t m = 0;
            for (int64_t w = 0; w < nwin; w++)
                if (!isnan(v[w])) v[m++] = v[w];
            qsort(v, (size_t)m, sizeof(double), cmp_double);
            median[j] = m == 0 ? NAN : (m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]));
        }
    }
    free(vals);
    return AVO_OK;
}

double avo_si_sdr(const float *ref, const float *est, int64_t n) {
    double rr = 0, re = 0, ee = 0;
    for (int64_t i = 0; i < n; i++) {
        rr += (double)ref[i] * ref[i];
        re += (double)ref[i] * est[i];
        ee += (double)est[i] * est[i];
    }
    if (rr == 0 || re == 0) return -INFINITY;
    /* |alpha s|^2 = re^2/rr and |alpha s - s_hat|^2 = ee - re^2/rr, without forming alpha s. */
    const double target = re * re / rr, noise = ee - target;
    if (noise <= target * 1e-15) return INFINITY;
    return 10.0 * log10(target / noise);
}

avo_status avo_si_sdr_audio(const avo_audio *ref, const avo_audio *est, double *out, avo_error *err) {
    if (!ref || !est || !out || ref->channels != est->channels || ref->frames <= 0)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "si_sdr: reference and estimate need the same channel count and a non-empty reference");
    double rr = 0, re = 0, ee = 0;
    for (int c = 0; c < ref->channels; c++) {
        const float *s = avo_audio_channel(ref, c);
        for (int64_t i = 0; i < ref->frames; i++) {
            const double e = sample_at(est, c, i);
            rr += (double)s[i] * s[i];
            re += (double)s[i] * e;
            ee += e * e;
        }
    }
    if (rr == 0 || re == 0) {
        *out = -INFINITY;
    } else {
        const double target = re * re / rr, noise = ee - target;
        *out = noise <= target * 1e-15 ? INFINITY : 10.0 * log10(target / noise);
    }
    return AVO_OK;
}
