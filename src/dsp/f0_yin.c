/* Per-frame YIN analysis: difference function through FFT cross-correlation, cumulative mean
 * normalisation, trough search, and sub-sample refinement of each trough.
 *
 * The difference function is d(tau) = E0 + E(tau) - 2 r(tau), with E prefix energies and r the cross
 * correlation of the first W samples with the whole frame (one r2c of each, one c2r). Refinement
 * minimises d at fractional lags: r(tau) is evaluated exactly from the cross spectrum as a trigonometric
 * sum (band-limited interpolation) and E(tau) by cubic interpolation, with a few Newton steps. Parabolic
 * interpolation alone is biased by up to a tenth of a sample on harmonic-rich signals, which is tens of
 * cents at high pitch. */
#include "dsp/f0_internal.h"

#include <math.h>
#include <string.h>

/* Two dips of the normalised difference function belong to one trough when the longer lag is
 * within this ratio of the shorter (about 3 semitones: the troughs of distinct period candidates
 * are an octave or a large fraction of a period apart) and q rises less than VALLEY_RISE between
 * them (distinct troughs are separated by a high peak; noise ripple is a few hundredths). */
#define VALLEY_LAG_RATIO 1.2
#define VALLEY_RISE 0.1

/* Lower-octave check. A trough at lag 2L that is much more periodic than the trough at L means the
 * signal repeats only every 2L: its odd harmonics (of the lower pitch) fill the dip at L, which a
 * strong 2nd harmonic makes shallow but not periodic. Over the 24 clips of data/singing, octave
 * pairs of candidates whose lower pitch a spectral check confirms (odd harmonics 10 dB over the gaps
 * between them) had an aperiodicity ratio of at least 4 in 95% of frames; pairs where the upper
 * pitch is right had a ratio under 1.35 in 95% (1 of 822 reached 3).
 * The difference function weighs all harmonics alike, so period doubling confined to the upper
 * harmonics (NUS-48E MPOL_11 at 6.29 s: odd multiples of 181 Hz 15 dB under the even ones up to
 * 4 kHz but 32 dB under them below 1.5 kHz, heard as 362 Hz) passes the ratio test as well. The
 * lower pitch is therefore also required to show its odd harmonics among the first eight, where
 * pitch is heard: JTAN_07's 217 Hz voice has them 10-14 dB under the even ones. */
#define OCTAVE_RATIO 3.0       /* aperiodicity at L over that at 2L from which 2L is the period */
#define OCTAVE_MARGIN 0.05     /* and the least difference: two near-perfect troughs prove nothing (the
                                  refinement can leave ~0.04 on a sharp dip of a flat pulse train) */
#define OCTAVE_TOLERANCE 1.06  /* 2L within a semitone of twice L */
#define OCTAVE_ODD_DB (-20.0)  /* odd over even harmonics 1-8 of the lower pitch, at least */

/* Smallest 2^a 3^b 5^c >= n: sizes FFTW handles fastest. */
static int nice_fft_size(int n) {
    for (int m = n > 2 ? n : 2;; m++) {
        int r = m;
        while (r % 2 == 0) r /= 2;
        while (r % 3 == 0) r /= 3;
        while (r % 5 == 0) r /= 5;
        if (r == 1) return m;
    }
}

avo_status f0_analyzer_init(f0_analyzer *an, int fs, double f0_min, double f0_max, avo_error *err) {
    memset(an, 0, sizeof *an);
    an->fs = fs;
    an->tau_min = (int)floor(fs / f0_max);
    if (an->tau_min < 2) an->tau_min = 2;
    an->tau_max = (int)ceil(fs / f0_min) + 1;
    if (an->tau_max < an->tau_min + 2) an->tau_max = an->tau_min + 2;
    /* One period of the lowest pitch: long enough for a stable difference function at f0_min,
     * short enough to follow vibrato at high pitch. */
    an->win = an->tau_max;
    an->span = an->win + an->tau_max + 2;
    /* Room for the whole linear correlation (lags -W..span) so the trigonometric sum used for
     * refinement interpolates it without wrap-around. */
    an->nfft = nice_fft_size(an->win + an->span + 1);
    float *buf = fftwf_malloc(sizeof(float) * (size_t)an->nfft);
    fftwf_complex *spec = fftwf_malloc(sizeof(fftwf_complex) * (size_t)(an->nfft / 2 + 1));
    if (buf && spec) {
        an->r2c = fftwf_plan_dft_r2c_1d(an->nfft, buf, spec, FFTW_ESTIMATE);
        an->c2r = fftwf_plan_dft_c2r_1d(an->nfft, spec, buf, FFTW_ESTIMATE);
    }
    fftwf_free(buf);
    fftwf_free(spec);
    an->half = fftwf_malloc(sizeof(fftwf_complex) * (size_t)(an->nfft / 2 + 1));
    if (an->half)
        for (int k = 0; k <= an->nfft / 2; k++) {
            an->half[k][0] = (float)cos(M_PI * k / an->nfft);
            an->half[k][1] = (float)sin(M_PI * k / an->nfft);
        }
    if (!an->r2c || !an->c2r || !an->half) {
        f0_analyzer_destroy(an);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "f0: cannot create FFT plans of size %d (out of memory?)",
                             an->nfft);
    }
    return AVO_OK;
}

void f0_analyzer_destroy(f0_analyzer *an) {
    if (an->r2c) fftwf_destroy_plan(an->r2c);
    if (an->c2r) fftwf_destroy_plan(an->c2r);
    an->r2c = an->c2r = NULL;
    fftwf_free(an->half);
    an->half = NULL;
}

avo_status f0_work_alloc(const f0_analyzer *an, f0_work *w) {
    const size_t nc = (size_t)(an->nfft / 2 + 1);
    memset(w, 0, sizeof *w);
    w->x = fftwf_malloc(sizeof(float) * (size_t)an->span);
    w->buf = fftwf_malloc(sizeof(float) * (size_t)an->nfft);
    w->a = fftwf_malloc(sizeof(fftwf_complex) * nc);
    w->b = fftwf_malloc(sizeof(fftwf_complex) * nc);
    w->tmp = fftwf_malloc(sizeof(fftwf_complex) * nc);
    w->energy = fftwf_malloc(sizeof(double) * (size_t)(an->span + 1));
    w->d = fftwf_malloc(sizeof(double) * (size_t)(an->tau_max + 2));
    w->buf2 = fftwf_malloc(sizeof(float) * (size_t)an->nfft);
    w->q = fftwf_malloc(sizeof(double) * (size_t)(2 * an->tau_max + 4));
    w->run = fftwf_malloc(sizeof(double) * (size_t)(an->tau_max + 2));
    if (!w->run || !w->x || !w->buf || !w->a || !w->b || !w->tmp || !w->energy || !w->d || !w->q || !w->buf2) {
        f0_work_free(w);
        return AVO_ERR_NO_MEMORY;
    }
    return AVO_OK;
}

void f0_work_free(f0_work *w) {
    fftwf_free(w->x);
    fftwf_free(w->buf);
    fftwf_free(w->a);
    fftwf_free(w->b);
    fftwf_free(w->tmp);
    fftwf_free(w->energy);
    fftwf_free(w->d);
    fftwf_free(w->q);
    fftwf_free(w->buf2);
    fftwf_free(w->run);
    memset(w, 0, sizeof *w);
}

double f0_beta_sf(double v, double b) {
    /* Beta(2, b) survival function in closed form: (1 - v)^b (1 + b v). */
    if (v <= 0) return 1.0;
    if (v >= 1) return 0.0;
    return pow(1.0 - v, b) * (1.0 + b * v);
}

/* r(tau) and its first two derivatives at a fractional lag, from the cross spectrum (unnormalised). */
static void corr_at(const fftwf_complex *c, int nfft, double tau, double *r, double *r1, double *r2) {
    const double th = 2.0 * M_PI / nfft;
    const double step_re = cos(th * tau), step_im = sin(th * tau);
    double zr = step_re, zi = step_im; /* e^{i th k tau} for k = 1 */
    double s0 = 0, s1 = 0, s2 = 0;
    const int half = nfft / 2;
    for (int k = 1; k < half; k++) {
        const double cr = c[k][0], ci = c[k][1];
        const double re = cr * zr - ci * zi, im = cr * zi + ci * zr;
        s0 += re;
        s1 -= k * im;
        s2 -= (double)k * k * re;
        const double nzr = zr * step_re - zi * step_im;
        zi = zr * step_im + zi * step_re;
        zr = nzr;
    }
    /* Signals reaching here are low-passed well below Nyquist, so the k = N/2 term is negligible. */
    const double norm = 1.0 / nfft;
    *r = (c[0][0] + 2.0 * s0) * norm;
    *r1 = 2.0 * s1 * th * norm;
    *r2 = 2.0 * s2 * th * th * norm;
}

/* E(tau) = energy of x[tau, tau + W) at a fractional lag: Catmull-Rom through the integer values. */
static void energy_at(const double *prefix, int win, int span, double tau, double *e, double *e1, double *e2) {
    int i = (int)floor(tau);
    if (i < 1) i = 1;
    if (i > span - win - 3) i = span - win - 3;
    const double t = tau - i;
    double p[4];
    for (int k = 0; k < 4; k++) p[k] = prefix[i - 1 + k + win] - prefix[i - 1 + k];
    const double a = -0.5 * p[0] + 1.5 * p[1] - 1.5 * p[2] + 0.5 * p[3];
    const double b = p[0] - 2.5 * p[1] + 2.0 * p[2] - 0.5 * p[3];
    const double cc = -0.5 * p[0] + 0.5 * p[2];
    *e = ((a * t + b) * t + cc) * t + p[1];
    *e1 = (3.0 * a * t + 2.0 * b) * t + cc;
    *e2 = 6.0 * a * t + 2.0 * b;
}

/* Cumulative sum of d at a fractional lag (linear between integer lags). */
static double run_at(const f0_work *w, double lag) {
    const int i = (int)floor(lag);
    return w->run[i] + (w->run[i + 1] - w->run[i]) * (lag - i);
}

/* Newton steps on d from lag0 (within half a sample); *dmin receives the smallest d seen. */
static double refine_lag(const f0_analyzer *an, const f0_work *w, double lag0, double e0, double *dmin) {
    double tau = lag0;
    *dmin = HUGE_VAL;
    for (int it = 0; it < 5; it++) {
        double r, r1, r2, e, e1, e2;
        corr_at(w->b, an->nfft, tau, &r, &r1, &r2);
        energy_at(w->energy, an->win, an->span, tau, &e, &e1, &e2);
        const double g = e1 - 2.0 * r1, h = e2 - 2.0 * r2;
        const double val = e0 + e - 2.0 * r;
        if (val < *dmin) *dmin = val;
        if (!(h > 0)) return lag0;
        double step = -g / h;
        if (step > 0.25) step = 0.25;
        if (step < -0.25) step = -0.25;
        tau += step;
        if (fabs(tau - lag0) > 0.5) return lag0;
        if (fabs(step) < 1e-4) break;
    }
    if (*dmin < 0) *dmin = 0;
    return tau;
}

/* Energy of the first eight harmonics of f (below 0.45 fs) in the frame, odd and even multiples
 * apart; xw is the Hann-windowed frame. Each harmonic's phasor advances by rotation, all eight as
 * one vector of floats (single precision drifts by ~1e-4 over a frame, far below the dB margins). */
static void harmonic_parity(const float *xw, int len, int fs, double f, double *odd, double *even) {
    enum { H = 8 };
    float cw[H], sw[H], zr[H], zi[H], re[H], im[H];
    for (int k = 0; k < H; k++) {
        const double w = 2.0 * M_PI * (k + 1) * f / fs;
        cw[k] = (float)cos(w);
        sw[k] = (float)sin(w);
        zr[k] = 1;
        zi[k] = re[k] = im[k] = 0;
    }
    for (int i = 0; i < len; i++) {
        const float v = xw[i];
        for (int k = 0; k < H; k++) {
            re[k] += v * zr[k];
            im[k] += v * zi[k];
            const float nzr = zr[k] * cw[k] - zi[k] * sw[k];
            zi[k] = zr[k] * sw[k] + zi[k] * cw[k];
            zr[k] = nzr;
        }
    }
    *odd = *even = 0;
    for (int k = 0; k < H && (k + 1) * f < 0.45 * fs; k++) /* k = 0 is the 1st harmonic */
        *(k % 2 ? even : odd) += (double)re[k] * re[k] + (double)im[k] * im[k];
}

/* Drops every candidate that has a much more periodic one an octave below it whose odd harmonics
 * are audible, so that the lower octave takes its threshold mass (pYIN) and is the first trough
 * under the threshold (YIN). x is the frame (len samples); xw receives it Hann-windowed when a pair
 * passes the ratio test (a few percent of frames of real singing, ~15% of bench_f0's synthetic
 * formant voices, whose half-period dip sits at aperiodicity ~0.4). */
static void prefer_lower_octaves(f0_frame *fr, const float *x, float *xw, int len, int fs) {
    int kept = 0, windowed = 0;
    for (int j = 0; j < fr->ncand; j++) {
        int drop = 0;
        for (int k = j + 1; k < fr->ncand && !drop; k++) {
            const double r = fr->f0[j] / fr->f0[k];
            if (!(r > 2.0 / OCTAVE_TOLERANCE && r < 2.0 * OCTAVE_TOLERANCE &&
                  fr->cmnd[j] >= OCTAVE_RATIO * fr->cmnd[k] && fr->cmnd[j] - fr->cmnd[k] >= OCTAVE_MARGIN))
                continue;
            if (!windowed) {
                for (int i = 0; i < len; i++) xw[i] = (float)((0.5 - 0.5 * cos(2.0 * M_PI * (i + 0.5) / len)) * x[i]);
                windowed = 1;
            }
            double odd, even;
            harmonic_parity(xw, len, fs, fr->f0[k], &odd, &even);
            drop = odd > 0 && odd >= even * pow(10.0, OCTAVE_ODD_DB / 10.0);
        }
        if (drop) continue;
        fr->f0[kept] = fr->f0[j];
        fr->cmnd[kept] = fr->cmnd[j];
        kept++;
    }
    fr->ncand = kept;
}

void f0_analyze_frame(const f0_analyzer *an, f0_work *w, const float *x, int64_t n, int64_t centre,
                      f0_frame *out) {
    const int span = an->span, win = an->win, nfft = an->nfft, tmax = an->tau_max;
    const int64_t start = centre - span / 2;
    memset(out, 0, sizeof *out);

    /* Copy the frame (zeros beyond the signal) and remove its mean so DC never looks periodic. */
    double mean = 0, quarter[4] = {0, 0, 0, 0};
    for (int i = 0; i < span; i++) {
        const int64_t k = start + i;
        w->x[i] = (k >= 0 && k < n) ? x[k] : 0.0f;
        mean += w->x[i];
        quarter[4 * i / span] += (double)w->x[i] * w->x[i];
    }
    mean /= span;
    double e = 0;
    w->energy[0] = 0;
    for (int i = 0; i < span; i++) {
        w->x[i] -= (float)mean;
        e += (double)w->x[i] * w->x[i];
        w->energy[i + 1] = e;
    }
    out->rms = (float)sqrt(e / span);
    const double e0 = w->energy[win];
    if (!(e0 > 1e-20) || !(w->energy[span] - w->energy[win] > 1e-20)) return;
    /* A frame that straddles the edge of (near-)silence compares sound with nothing: the difference
     * function then dips at short lags and reads as a confident ~1 kHz pitch. Leave such frames
     * without candidates (unvoiced): one quarter 40 dB below another (measured before the mean is
     * removed, which would fill the silent part with the offset) marks them. */
    double qmin = INFINITY, qmax = 0;
    for (int q = 0; q < 4; q++) {
        qmin = quarter[q] < qmin ? quarter[q] : qmin;
        qmax = quarter[q] > qmax ? quarter[q] : qmax;
    }
    if (qmin < 1e-4 * qmax) return;

    /* Cross-correlation of the first W samples with the whole frame. */
    memset(w->buf, 0, sizeof(float) * (size_t)nfft);
    memcpy(w->buf, w->x, sizeof(float) * (size_t)win);
    fftwf_execute_dft_r2c(an->r2c, w->buf, w->a);
    memset(w->buf, 0, sizeof(float) * (size_t)nfft);
    memcpy(w->buf, w->x, sizeof(float) * (size_t)span);
    fftwf_execute_dft_r2c(an->r2c, w->buf, w->b);
    const int nc = nfft / 2 + 1;
    for (int k = 0; k < nc; k++) {
        const float ar = w->a[k][0], ai = w->a[k][1], br = w->b[k][0], bi = w->b[k][1];
        w->b[k][0] = ar * br + ai * bi;
        w->b[k][1] = ar * bi - ai * br;
    }
    memcpy(w->tmp, w->b, sizeof(fftwf_complex) * (size_t)nc);
    fftwf_execute_dft_c2r(an->c2r, w->tmp, w->buf);
    /* The same correlation half a sample later: integer lags alone miss sharp dips of harmonic-rich
     * signals with few samples per period by up to 0.5 * (mean squared frequency) * 0.25 in CMNDF. */
    for (int k = 0; k < nc; k++) {
        const float cr = w->b[k][0], ci = w->b[k][1], hr = an->half[k][0], hi = an->half[k][1];
        w->tmp[k][0] = cr * hr - ci * hi;
        w->tmp[k][1] = cr * hi + ci * hr;
    }
    fftwf_execute_dft_c2r(an->c2r, w->tmp, w->buf2);

    /* Difference function and its cumulative mean normalisation, at integer lags (q[2 tau]) and
     * half lags (q[2 tau + 1]). */
    const double inv = 1.0 / nfft;
    const double *en = w->energy;
    double *d = w->d, *q = w->q, run = 0;
    d[0] = 0;
    w->run[0] = 0;
    for (int tau = 1; tau <= tmax + 1; tau++) {
        double v = e0 + (en[tau + win] - en[tau]) - 2.0 * w->buf[tau] * inv;
        d[tau] = v > 0 ? v : 0;
        run += d[tau];
        w->run[tau] = run;
    }
    q[0] = q[1] = 1;
    for (int tau = 1; tau <= tmax; tau++) {
        const double r0 = w->run[tau], rh = r0 + 0.5 * d[tau + 1];
        q[2 * tau] = r0 > 1e-12 * e0 ? d[tau] * tau / r0 : 1.0;
        const double eh = (9.0 * (en[tau + win] - en[tau] + en[tau + 1 + win] - en[tau + 1]) -
                           (en[tau - 1 + win] - en[tau - 1]) - (en[tau + 2 + win] - en[tau + 2])) / 16.0;
        double dh = e0 + eh - 2.0 * w->buf2[tau] * inv;
        if (dh < 0) dh = 0;
        q[2 * tau + 1] = rh > 1e-12 * e0 ? dh * (tau + 0.5) / rh : 1.0;
    }

    /* Troughs in [tau_min, tau_max] lower than every trough at a shorter lag (the only ones pYIN's
     * thresholds can select). After a near-perfect trough the rest cannot take noticeable threshold
     * mass, so the search stops there. */
    double best = 0.6; /* shallower than this takes no threshold mass worth keeping (S(0.6) < 1e-7) */
    int last_j = -1;     /* half-lag index of the latest candidate */
    double peak = 0;     /* highest q since then */
    for (int j = 2 * an->tau_min; j <= 2 * tmax - 1 && out->ncand < F0_MAX_CANDIDATES; j++) {
        if (q[j] > peak) peak = q[j];
        if (!(q[j] < q[j - 1] && q[j] <= q[j + 1])) continue;
        const double den = q[j - 1] - 2.0 * q[j] + q[j + 1];
        double off = den > 0 ? 0.5 * (q[j - 1] - q[j + 1]) / den : 0;
        if (off > 1) off = 1;
        if (off < -1) off = -1;
        double v = q[j] - 0.25 * (q[j - 1] - q[j + 1]) * off;
        if (v >= best) continue;
        double dmin;
        const double lag = refine_lag(an, w, 0.5 * (j + off), e0, &dmin);
        const double rl = run_at(w, lag);
        if (rl > 1e-12 * e0) v = fmin(v, dmin * lag / rl);
        if (v < 0) v = 0;
        if (v >= best) continue;
        /* Noise roughens the floor of a broad trough into several dips; as prefix minima the first of
         * them would be picked, which biases the pitch sharp (tens of cents at 5-10 dB SNR). A dip
         * close in lag to the previous candidate with no real peak between them is the same trough:
         * the deeper dip replaces the earlier one. */
        const int same = last_j >= 0 && j < VALLEY_LAG_RATIO * last_j &&
                         peak - fmax(q[last_j], q[j]) < VALLEY_RISE;
        best = v;
        const int slot = same ? out->ncand - 1 : out->ncand;
        out->f0[slot] = (float)(an->fs / lag);
        out->cmnd[slot] = (float)v;
        out->ncand = slot + 1;
        last_j = j;
        peak = q[j];
        if (best < 0.01) break;
    }
    prefer_lower_octaves(out, w->x, w->buf2, span, an->fs); /* buf2 (nfft >= span) is free by now */
}
