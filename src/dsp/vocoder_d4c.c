/* Band aperiodicity, D4C class (Morise 2016). The group delay of a periodic signal, measured with
 * two windows a half period apart, is flat after removing its F0-scale trend; noise makes it
 * ragged. In each 3 kHz band the share of the group delay's "spectrum" outside its strongest
 * components measures that raggedness, in dB. A separate check (power above 4 kHz against the
 * whole band) declares frames with mostly high-frequency energy aperiodic. */
#include "vocoder_internal.h"

#include <math.h>

/* Sum of the m largest values of a[0..len); reorders a (quickselect, linear time). */
static double sum_largest(float *a, int len, int m) {
    if (m <= 0) return 0.0;
    if (m >= len) {
        double s = 0.0;
        for (int i = 0; i < len; i++) s += a[i];
        return s;
    }
    int lo = 0, hi = len - 1;
    const int target = len - m; /* a[target..len) will hold the m largest */
    while (lo < hi) {
        float pivot = a[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                float tmp = a[i];
                a[i] = a[j];
                a[j] = tmp;
                i++;
                j--;
            }
        }
        if (target <= j) hi = j;
        else if (target >= i) lo = i;
        else break;
    }
    double s = 0.0;
    for (int i = target; i < len; i++) s += a[i];
    return s;
}

/* Share of power between 100 Hz and 4 kHz of the power up to 7.9 kHz (3-period Blackman window). */
static double low_band_ratio(const avo_vocoder *v, voc_work *w, const float *x, int64_t n, double t, double f0,
                             uint64_t seed) {
    const int fft = v->lt_fft, half = fft / 2, fs = v->fs;
    const double f0l = f0 < 40.0 ? 40.0 : f0;
    const int wh = (int)lround(1.5 * fs / f0l);
    voc_cos_window(w->win, wh, 2.0 * M_PI * f0l / (3.0 * fs), 0.42, 0.5, 0.08);
    voc_windowed(x, n, llround(t * fs + 0.001), wh, w->win, w->wave, VOC_D4C_GUARD, seed);
    for (int j = 2 * wh + 1; j < fft; j++) w->wave[j] = 0.0f;
    fftwf_execute_dft_r2c(v->lt_r2c, w->wave, w->spec);
    int b0 = (int)ceil(100.0 * fft / fs), b1 = (int)ceil(4000.0 * fft / fs), b2 = (int)ceil(7900.0 * fft / fs);
    if (b2 > half) b2 = half;
    if (b1 > b2) b1 = b2;
    double acc = 0.0, at_b1 = 0.0;
    for (int k = b0 + 1; k <= b2; k++) {
        acc += (double)w->spec[k][0] * w->spec[k][0] + (double)w->spec[k][1] * w->spec[k][1];
        if (k == b1) at_b1 = acc;
    }
    return acc > 0.0 ? at_b1 / acc : 1.0;
}

/* Power-weighted group delay: Re(X conj-free product) of the spectra of w(t)x(t) and t w(t)x(t). */
static void centroid(const avo_vocoder *v, voc_work *w, const float *x, int64_t n, double t, double f0,
                     uint64_t seed, float *out) {
    const int fft = v->d4c_fft, half = fft / 2, fs = v->fs;
    const int wh = (int)lround(2.0 * fs / f0);
    const int len = 2 * wh + 1;
    voc_cos_window(w->win, wh, M_PI * f0 / (2.0 * fs), 0.42, 0.5, 0.08);
    voc_windowed(x, n, llround(t * fs + 0.001), wh, w->win, w->wave, VOC_D4C_GUARD, seed);
    double energy = 0.0;
    for (int j = 0; j < len; j++) energy += (double)w->wave[j] * w->wave[j];
    const float norm = (float)(1.0 / sqrt(energy));
    for (int j = 0; j < len; j++) {
        w->wave[j] *= norm;
        w->wave2[j] = w->wave[j] * (float)(j + 1);
    }
    for (int j = len; j < fft; j++) w->wave[j] = w->wave2[j] = 0.0f;
    fftwf_execute_dft_r2c(v->d4c_r2c, w->wave, w->spec);
    fftwf_execute_dft_r2c(v->d4c_r2c, w->wave2, w->spec2);
    for (int k = 0; k <= half; k++) out[k] = w->spec[k][0] * w->spec2[k][0] + w->spec[k][1] * w->spec2[k][1];
}

void voc_aperiodicity_frame(const avo_vocoder *v, voc_work *w, const float *x, int64_t n, double t, double f0,
                            uint64_t seed, float *ap) {
    const int bins = v->bins, fs = v->fs;
    if (f0 <= 0.0 || low_band_ratio(v, w, x, n, t, f0, seed) <= VOC_D4C_THRESHOLD) {
        for (int k = 0; k < bins; k++) ap[k] = 1.0f;
        return;
    }
    const double f0c = f0 < VOC_D4C_FLOOR_F0 ? VOC_D4C_FLOOR_F0 : f0;
    const int fft = v->d4c_fft, half = fft / 2;
    float *gd = w->a, *pw = w->b;

    /* Static centroid: two windows a half period apart cancel the periodic ripple. */
    centroid(v, w, x, n, t - 0.25 / f0c, f0c, seed * 4 + 1, gd);
    centroid(v, w, x, n, t + 0.25 / f0c, f0c, seed * 4 + 2, pw);
    for (int k = 0; k <= half; k++) gd[k] += pw[k];
    voc_dc_correction(gd, f0c, fs, fft, w->c);

    /* Smoothed power spectrum with a 4-period Hann window. */
    const int wh = (int)lround(2.0 * fs / f0c);
    voc_cos_window(w->win, wh, M_PI * f0c / (2.0 * fs), 0.5, 0.5, 0.0);
    voc_windowed(x, n, llround(t * fs + 0.001), wh, w->win, w->wave, VOC_D4C_GUARD, seed * 4 + 3);
    for (int j = 2 * wh + 1; j < fft; j++) w->wave[j] = 0.0f;
    fftwf_execute_dft_r2c(v->d4c_r2c, w->wave, w->spec);
    for (int k = 0; k <= half; k++) pw[k] = w->spec[k][0] * w->spec[k][0] + w->spec[k][1] * w->spec[k][1];
    voc_dc_correction(pw, f0c, fs, fft, w->c);
    voc_linear_smoothing(pw, f0c, fs, fft, w->cum);

    /* Static group delay minus its F0-wide trend. */
    for (int k = 0; k <= half; k++) gd[k] = pw[k] > 0.0f ? gd[k] / pw[k] : 0.0f;
    voc_linear_smoothing(gd, f0c * 0.5, fs, fft, w->cum);
    for (int k = 0; k <= half; k++) pw[k] = gd[k];
    voc_linear_smoothing(pw, f0c, fs, fft, w->cum);
    for (int k = 0; k <= half; k++) gd[k] -= pw[k];

    /* Per band: 10 log10 of the power outside the strongest components of the windowed delay. */
    const int nb = v->d4c_bands;
    double coarse[16];
    const int wl = v->d4c_win_len, hw = wl / 2;
    const int boundary = (int)lround(fft * 8.0 / wl);
    for (int i = 0; i < nb; i++) {
        int center = (int)(VOC_D4C_BAND_HZ * (i + 1) * fft / fs);
        const float *seg = gd + center - hw;
        for (int j = 0; j < wl; j++) w->wave[j] = seg[j] * v->d4c_win[j];
        for (int j = wl; j < fft; j++) w->wave[j] = 0.0f;
        fftwf_execute_dft_r2c(v->d4c_r2c, w->wave, w->spec);
        double total = 0.0;
        for (int k = 0; k <= half; k++) {
            pw[k] = w->spec[k][0] * w->spec[k][0] + w->spec[k][1] * w->spec[k][1];
            total += pw[k];
        }
        double top = sum_largest(pw, half + 1, boundary + 1);
        double rest = total - top;
        double db = total > 0.0 && rest > 0.0 ? 10.0 * log10(rest / total) : -60.0;
        db += (f0c - 100.0) / 50.0; /* WORLD's empirical F0 revision */
        coarse[i] = db < 0.0 ? db : 0.0;
    }

    /* Linear interpolation in dB between band centres, -60 dB at DC and 0 dB at Nyquist. */
    const double df = (double)fs / v->fft_size;
    const double ny = fs / 2.0;
    const float ln10_20 = (float)(log(10.0) / 20.0);
    /* Segment by segment: the level in dB is linear in the bin, then one vectorised exp pass. */
    float *level = w->c;
    int k = 0;
    for (int seg = 0; seg <= nb && k < bins; seg++) {
        const double x0 = seg * VOC_D4C_BAND_HZ, x1 = seg < nb ? x0 + VOC_D4C_BAND_HZ : ny;
        const double y0 = seg == 0 ? -60.0 : coarse[seg - 1], y1 = seg < nb ? coarse[seg] : 0.0;
        const double slope = x1 > x0 ? (y1 - y0) / (x1 - x0) : 0.0;
        /* bins whose frequency is below x1 (the last segment takes the rest, Nyquist included) */
        const int end = seg < nb ? (int)ceil(x1 / df - 1e-9) : bins;
        for (; k < end && k < bins; k++) level[k] = (float)(y0 + slope * (k * df - x0)) * ln10_20;
    }
#pragma omp simd
    for (int j = 0; j < bins; j++) ap[j] = voc_expf(level[j]);
}
