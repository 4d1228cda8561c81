/* Spectral helpers shared by the vocoder's analysis and synthesis. */
#include "vocoder_internal.h"

#include <math.h>

/* Folds the part of the spectrum below F0 back onto itself (power at f gains the power at f0 - f),
 * so that the DC region of a short F0-adaptive window is not underestimated. tmp: bins floats. */
void voc_dc_correction(float *p, double f0, int fs, int fft_size, float *tmp) {
    const int half = fft_size / 2;
    const double df = (double)fs / fft_size;
    int upper = 2 + (int)(f0 / df);
    if (upper > half) upper = half; /* F0 near Nyquist: nothing sensible to fold beyond */
    const int count = upper - 1;
    const double pos0 = f0 / df;
    for (int i = 0; i < count; i++) {
        double pos = pos0 - i;
        int k = (int)pos;
        double fr = pos - k;
        if (k >= half) {
            k = half;
            fr = 0.0;
        }
        double y0 = p[k], y1 = k < upper ? p[k + 1] : p[k];
        tmp[i] = (float)(y0 + (y1 - y0) * fr);
    }
    for (int i = 0; i < count; i++) p[i] += tmp[i];
}

/* Replaces spec (bins values) by its average over a rectangular band of `width` Hz centred on each
 * bin, with the spectrum mirrored at 0 and Nyquist. Integrates with a running sum in double so
 * that narrow widths keep their precision. cum: at least fft_size/2 + 2*(fft_size/2) + 2 doubles. */
void voc_linear_smoothing(float *spec, double width, int fs, int fft_size, double *cum) {
    const int half = fft_size / 2;
    const double df = (double)fs / fft_size;
    if (width > df * (half - 1)) width = df * (half - 1);
    if (width <= 0.0) return;
    const int b = (int)(width / df) + 1;
    const int m = half + 2 * b + 1;
    double acc = 0.0;
    for (int i = 0; i < b; i++) cum[i] = (acc += spec[b - i] * df);
    for (int i = b; i < half + b; i++) cum[i] = (acc += spec[i - b] * df);
    for (int i = half + b; i < m; i++) cum[i] = (acc += spec[half - (i - half - b)] * df);
    /* cum[i] is the integral up to the upper edge of mirrored bin i, at (i - b + 0.5) * df Hz. Bin k
     * averages between positions start + k and start + k + w_bins: integer steps with a fixed
     * fraction, so both ends interpolate with constant weights (a loop that vectorises).
     * start >= (b - 1) / 2 >= 0 and the upper end stays below m - 1: no index needs clamping. */
    const double w_bins = width / df;
    const double start = b - 0.5 - 0.5 * w_bins;
    const int i_lo = (int)floor(start), i_hi = (int)floor(start + w_bins);
    const double f_lo = start - i_lo, f_hi = start + w_bins - i_hi;
    const double inv = 1.0 / width;
    const double *lo = cum + i_lo, *hi = cum + i_hi;
    for (int k = 0; k <= half; k++) {
        const double a = lo[k] + (lo[k + 1] - lo[k]) * f_lo;
        const double c = hi[k] + (hi[k + 1] - hi[k]) * f_hi;
        spec[k] = (float)((c - a) * inv);
    }
}

static inline uint64_t splitmix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Box-Muller on a counter-based generator: the noise of a pulse or frame depends only on its seed,
 * so results do not change with the number of threads. Single precision is plenty for noise. */
void voc_gauss_fill(float *out, int n, uint64_t seed) {
    const uint64_t key = splitmix64(seed);
    for (int i = 0; i < n; i += 2) {
        const uint64_t r = splitmix64(key + (uint64_t)i);
        const float u1 = ((float)(r >> 40) + 1.0f) * (1.0f / 16777216.0f); /* (0, 1] */
        const float u2 = (float)((r >> 16) & 0xffffff) * (1.0f / 16777216.0f);
        const float rad = sqrtf(-2.0f * logf(u1));
        const float ang = 6.28318530717958647692f * u2;
        out[i] = rad * cosf(ang);
        if (i + 1 < n) out[i + 1] = rad * sinf(ang);
    }
}

/* Uniform noise of unit variance (amplitude sqrt 3), cheap: for safeguard noise, whose only job is
 * to keep the spectra of digital silence away from zero. */
void voc_uniform_fill(float *out, int n, uint64_t seed) {
    uint64_t z = splitmix64(seed);
    for (int i = 0; i < n; i++) {
        z = z * 6364136223846793005ULL + 1442695040888963407ULL; /* LCG: its top bits are good enough */
        out[i] = ((float)(z >> 40) * (1.0f / 8388608.0f) - 1.0f) * 1.7320508f;
    }
}

void voc_dct1(const avo_vocoder *v, voc_work *w, const float *in, float *out) {
    const int n = v->fft_size, half = n / 2;
    float *m = w->dwave;
    for (int k = 0; k <= half; k++) m[k] = in[k];
    for (int k = 1; k < half; k++) m[n - k] = in[k];
    fftwf_execute_dft_r2c(v->r2c, m, w->dspec);
    for (int k = 0; k <= half; k++) out[k] = w->dspec[k][0];
}

/* The real cepstrum of an even log spectrum is its DCT-I (the DFT of the mirrored sequence), half
 * the cost of a full complex transform. Folding the cepstrum onto positive quefrencies and taking
 * the DFT gives the log of the minimum-phase spectrum. */
void voc_min_phase(const avo_vocoder *v, voc_work *w, float *log_amp, fftwf_complex *out) {
    const int n = v->fft_size, half = n / 2;
    float *cep = w->c;
    voc_dct1(v, w, log_amp, cep);
    const float scale = 1.0f / (float)n;
    float *causal = w->wave2;
    causal[0] = cep[0] * scale;
    for (int k = 1; k < half; k++) causal[k] = 2.0f * scale * cep[k];
    causal[half] = cep[half] * scale;
    for (int k = half + 1; k < n; k++) causal[k] = 0.0f;
    fftwf_execute_dft_r2c(v->r2c, causal, out);
    float *re = w->c, *im = w->wave2; /* free again (cepstrum, causal input): split parts so the loop vectorises */
    for (int k = 0; k <= half; k++) {
        re[k] = out[k][0];
        im[k] = out[k][1];
    }
#pragma omp simd
    for (int k = 0; k <= half; k++) {
        const float mag = voc_expf(re[k]);
        const voc_sc sc = voc_sincosf(im[k]);
        re[k] = mag * sc.c;
        im[k] = mag * sc.s;
    }
    for (int k = 0; k <= half; k++) {
        out[k][0] = re[k];
        out[k][1] = im[k];
    }
}

/* win[half + k] = c0 + c1 cos(a k) + c2 cos(2 a k) for k in [-half, half]. The cosines come from
 * the Chebyshev recurrence in double, which stays accurate over a few thousand steps. */
void voc_cos_window(float *win, int half, double a, double c0, double c1, double c2) {
    const double two_c = 2.0 * cos(a);
    double prev = cos(a), cur = 1.0; /* cos(-a), cos(0) */
    for (int k = 0; k <= half; k++) {
        double val = c0 + c1 * cur + c2 * (2.0 * cur * cur - 1.0);
        win[half + k] = win[half - k] = (float)val;
        double next = two_c * cur - prev;
        prev = cur;
        cur = next;
    }
}

/* wave[j] = x[origin - half + j] * win[j] (+ optional safeguard noise), indices clamped to the
 * signal, then the window-weighted mean is removed so that DC does not leak into low bins. */
void voc_windowed(const float *x, int64_t n, int64_t origin, int half, const float *win, float *wave,
                  double noise_amp, uint64_t seed) {
    const int len = 2 * half + 1;
    if (noise_amp > 0.0) {
        voc_uniform_fill(wave, len, seed);
        for (int j = 0; j < len; j++) wave[j] *= (float)noise_amp;
    } else {
        for (int j = 0; j < len; j++) wave[j] = 0.0f;
    }
    int64_t first = origin - half;
    if (first >= 0 && first + len <= n) {
        const float *src = x + first;
        for (int j = 0; j < len; j++) wave[j] += src[j] * win[j];
    } else {
        for (int j = 0; j < len; j++) {
            int64_t idx = first + j;
            idx = idx < 0 ? 0 : idx >= n ? n - 1 : idx;
            wave[j] += x[idx] * win[j];
        }
    }
    double sum_x = 0.0, sum_w = 0.0;
    for (int j = 0; j < len; j++) {
        sum_x += wave[j];
        sum_w += win[j];
    }
    const float coef = (float)(sum_x / sum_w);
    for (int j = 0; j < len; j++) wave[j] -= win[j] * coef;
}
