/* Noise-adaptive pre-filter for F0 estimation: a short-time spectral gain against a stationary noise
 * floor estimated from the clip itself, and the frame SNR against that floor for the voicing gate.
 *
 * YIN's aperiodicity counts noise over the whole band while a voice's harmonics sit in few bins,
 * mostly low: at 10 dB SNR of white noise the quiet half of a phrase reads as aperiodic and its
 * troughs wander. The floor of a bin is a low quantile of its power over the clip (noise power in a
 * bin is exponentially distributed, so the quantile is scaled to the mean), then a median across
 * frequency. Bins whose power hardly varies over the clip hold a steady sound (a held tone, a pulse
 * train) and stay out of the floor: noise is never steady at this resolution. Clips whose floor lies
 * far under their loud frames (clean recordings, digital silence) are left untouched, so clean
 * behaviour does not change at all.
 *
 * The gain is power spectral subtraction with over-subtraction and a floor: g = max(1 - a N / P,
 * g_min) on the amplitude. It leaves isolated random peaks in noise-only stretches ("musical
 * noise") that can read as a low pitch, which is why the driver also gates voicing by the frame
 * SNR returned here. */
#include "dsp/f0_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DN_FRAME_SECONDS 0.032 /* at least this long (power of two samples), 75% overlap */
#define DN_QUANTILE 0.10       /* of each bin's power over the clip: the noise floor */
#define DN_STEADY_RATIO 0.4    /* that quantile over the median above this: a steady sound */
#define DN_MEDIAN_HALF 4       /* bins either side in the median across frequency */
#define DN_OVERSUB 1.5         /* over-subtraction a: measured best of 1, 1.5, 2 at 0-10 dB SNR */
#define DN_GAIN_MIN 0.1        /* -20 dB */
#define DN_ACTIVE_DB (-30.0)   /* floor (all bins) this far under the loud frames: leave the clip */
#define DN_DB_LO (-200.0)      /* histogram of bin power in dB: range and step */
#define DN_DB_STEP 0.25
#define DN_DB_SLOTS 1040       /* up to +60 dB */

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Histogram slot of a power: 10 log10 from the float's exponent and a quadratic in its mantissa
 * (error under 0.01 dB; libm's log10 per bin was most of this file's time). */
static int slot_of(float p) {
    if (!(p > 1e-20f)) return 0;
    int32_t bits;
    memcpy(&bits, &p, sizeof bits);
    const int e = ((bits >> 23) & 0xff) - 127;
    const int32_t mb = (bits & 0x007fffff) | 0x3f800000;
    float m;
    memcpy(&m, &mb, sizeof m);
    const float f = m - 1.0f;
    const float u = f * (1.0f - f);
    const float log2p = (float)e + f + u * (0.34267f - 0.07819f * (2.0f * f - 1.0f));
    const int s = (int)((3.0103f * log2p - (float)DN_DB_LO) * (float)(1.0 / DN_DB_STEP));
    return s < 0 ? 0 : s >= DN_DB_SLOTS ? DN_DB_SLOTS - 1 : s;
}

/* Power at quantile q of a histogram of count values. */
static double hist_quantile(const uint32_t *h, double q, int64_t count) {
    const int64_t want = (int64_t)(q * (double)count);
    int64_t acc = 0;
    int s = 0;
    while (s < DN_DB_SLOTS - 1 && acc + h[s] <= want) acc += h[s++];
    return pow(10.0, (DN_DB_LO + (s + 0.5) * DN_DB_STEP) / 10.0);
}

/* Windowed frame t (sqrt-Hann; frames start N - hop before the signal so that every sample is
 * covered by four) into buf. */
static void load_frame(const float *x, int64_t n, int64_t t, int N, int hop, const float *win, float *buf) {
    const int64_t s0 = t * hop - (N - hop);
    for (int i = 0; i < N; i++) {
        const int64_t k = s0 + i;
        buf[i] = k >= 0 && k < n ? x[k] * win[i] : 0.0f;
    }
}

avo_status f0_denoise(float *x, int64_t n, int fs, f0_noise_info *info, avo_error *err) {
    memset(info, 0, sizeof *info);
    int N = 16;
    while (N < DN_FRAME_SECONDS * fs) N *= 2;
    const int hop = N / 4, bins = N / 2 + 1;
    const int64_t T = (n + N - 2 * hop) / hop + 1;
    if (T < 16) return AVO_OK; /* too short for a floor */
    float *buf = fftwf_malloc(sizeof(float) * (size_t)N);
    fftwf_complex *spec = fftwf_malloc(sizeof(fftwf_complex) * (size_t)bins);
    float *win = malloc(sizeof(float) * (size_t)N);
    uint32_t *hist = calloc((size_t)bins * DN_DB_SLOTS, sizeof(uint32_t));
    float *floor_k = malloc(sizeof(float) * (size_t)bins), *raw = malloc(sizeof(float) * (size_t)bins);
    float *ftot = malloc(sizeof(float) * (size_t)T);
    float *y = NULL;
    fftwf_plan r2c = NULL, c2r = NULL;
    avo_status st = AVO_OK;
    if (!buf || !spec || !win || !hist || !floor_k || !raw || !ftot) goto oom;
    r2c = fftwf_plan_dft_r2c_1d(N, buf, spec, FFTW_ESTIMATE);
    c2r = fftwf_plan_dft_c2r_1d(N, spec, buf, FFTW_ESTIMATE);
    if (!r2c || !c2r) goto oom;
    for (int i = 0; i < N; i++) win[i] = (float)sin(M_PI * (i + 0.5) / N); /* squares sum to 2 at hop N/4 */

    /* Pass 1: histogram of each bin's power, total power of each frame. */
    for (int64_t t = 0; t < T; t++) {
        load_frame(x, n, t, N, hop, win, buf);
        fftwf_execute(r2c);
        double tot = 0;
        for (int k = 0; k < bins; k++) {
            const float p = spec[k][0] * spec[k][0] + spec[k][1] * spec[k][1];
            hist[(size_t)k * DN_DB_SLOTS + slot_of(p)]++;
            tot += p;
        }
        ftot[t] = (float)tot;
    }
    const double to_mean = -1.0 / log(1.0 - DN_QUANTILE); /* exponential: mean over quantile */
    for (int k = 0; k < bins; k++) {
        const uint32_t *h = hist + (size_t)k * DN_DB_SLOTS;
        const double lo = hist_quantile(h, DN_QUANTILE, T), med = hist_quantile(h, 0.5, T);
        raw[k] = lo > DN_STEADY_RATIO * med ? -1.0f : (float)(lo * to_mean); /* -1: steady, not noise */
    }
    double floor_total = 0;
    for (int k = 0; k < bins; k++) {
        float v[2 * DN_MEDIAN_HALF + 1];
        int m = 0;
        for (int j = k - DN_MEDIAN_HALF; j <= k + DN_MEDIAN_HALF; j++)
            if (j >= 0 && j < bins && raw[j] >= 0) v[m++] = raw[j];
        floor_k[k] = 0;
        if (raw[k] < 0 || m == 0) continue;
        qsort(v, (size_t)m, sizeof(float), cmp_float);
        floor_k[k] = v[m / 2];
        floor_total += floor_k[k];
    }
    /* Loud frames: the 90th percentile of frame power (ftot is not needed after this). */
    qsort(ftot, (size_t)T, sizeof(float), cmp_float);
    const double loud = ftot[(int64_t)(0.9 * (double)(T - 1))];
    if (!(loud > 0) || floor_total < loud * pow(10.0, DN_ACTIVE_DB / 10.0)) goto done;

    y = calloc((size_t)n, sizeof(float));
    info->snr = malloc(sizeof(float) * (size_t)T);
    if (!y || !info->snr) goto oom;
    info->frames = T;
    info->hop = hop;
    info->first_centre = N / 2 - (N - hop);

    /* Pass 2: gain, inverse transform, overlap-add. */
    const float scale = 1.0f / (2.0f * (float)N);
    for (int64_t t = 0; t < T; t++) {
        load_frame(x, n, t, N, hop, win, buf);
        fftwf_execute(r2c);
        double tot = 0;
        for (int k = 0; k < bins; k++) {
            const float p = spec[k][0] * spec[k][0] + spec[k][1] * spec[k][1];
            tot += p;
            float g = p > 0.0f ? 1.0f - (float)DN_OVERSUB * floor_k[k] / p : 0.0f;
            g = g > (float)DN_GAIN_MIN ? g : (float)DN_GAIN_MIN;
            spec[k][0] *= g;
            spec[k][1] *= g;
        }
        info->snr[t] = (float)(tot / floor_total - 1.0);
        fftwf_execute(c2r);
        const int64_t s0 = t * hop - (N - hop);
        for (int i = 0; i < N; i++) {
            const int64_t k = s0 + i;
            if (k >= 0 && k < n) y[k] += buf[i] * win[i] * scale;
        }
    }
    memcpy(x, y, sizeof(float) * (size_t)n);
    goto done;
oom:
    free(info->snr);
    memset(info, 0, sizeof *info);
    st = avo_error_set(err, AVO_ERR_NO_MEMORY, "f0: out of memory for the noise filter (%lld samples)", (long long)n);
done:
    if (r2c) fftwf_destroy_plan(r2c);
    if (c2r) fftwf_destroy_plan(c2r);
    fftwf_free(buf);
    fftwf_free(spec);
    free(win);
    free(hist);
    free(floor_k);
    free(raw);
    free(ftot);
    free(y);
    return st;
}
