/* Envelope distances: mel-cepstral distortion and log-spectral distance (see vocoder.h). */
#include "autovoice/vocoder.h"

#include <math.h>
#include <stdlib.h>

enum { MEL_GRID = 512 };

static double warp(double w, double alpha) {
    return w + 2.0 * atan(alpha * sin(w) / (1.0 - alpha * cos(w)));
}

double avo_mel_alpha(int sample_rate) {
    /* Least-squares match of the warped axis to the mel scale 1127 ln(1 + f/700) over 0..fs/2. */
    const double ny = sample_rate / 2.0, mel_ny = log(1.0 + ny / 700.0);
    double best = 0.0, best_err = HUGE_VAL;
    for (int i = 0; i < 1000; i++) {
        double alpha = i / 1000.0, e = 0.0;
        for (int j = 1; j <= 200; j++) {
            double f = ny * j / 200.0;
            double d = warp(M_PI * f / ny, alpha) / M_PI - log(1.0 + f / 700.0) / mel_ny;
            e += d * d;
        }
        if (e < best_err) {
            best_err = e;
            best = alpha;
        }
    }
    return best;
}

/* Mel-cepstrum c_1..c_order of one envelope row (linear power). pos/frac: the grid's bin positions. */
static void mel_cepstrum(const float *env, const int *idx, const float *frac, const double *cosines, int order,
                         double *c) {
    double logamp[MEL_GRID];
    for (int j = 0; j < MEL_GRID; j++) {
        double a = env[idx[j]], b = env[idx[j] + 1];
        double v = a + (b - a) * frac[j];
        logamp[j] = 0.5 * log(v > 1e-30 ? v : 1e-30);
    }
    for (int m = 1; m <= order; m++) {
        const double *cm = cosines + (size_t)(m - 1) * MEL_GRID;
        double s = 0.0;
        for (int j = 0; j < MEL_GRID; j++) s += logamp[j] * cm[j];
        c[m - 1] = s / MEL_GRID;
    }
}

avo_status avo_voice_params_distance(const avo_voice_params *a, const avo_voice_params *b, int order,
                                     double *mcd_db, double *lsd_db, int64_t *frames_used, avo_error *err) {
    if (!a || !b || !mcd_db || !lsd_db)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "envelope distance: NULL argument");
    if (a->bins != b->bins || a->frames != b->frames || a->sample_rate != b->sample_rate || a->bins < 2)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "envelope distance: shapes differ (%lld x %d at %d Hz vs %lld x %d at %d Hz)",
                             (long long)a->frames, a->bins, a->sample_rate, (long long)b->frames, b->bins,
                             b->sample_rate);
    if (order < 1 || order > 100)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "envelope distance: order %d must be in 1..100", order);
    const int bins = a->bins;
    const double alpha = avo_mel_alpha(a->sample_rate);
    int *idx = malloc(sizeof(int) * MEL_GRID);
    float *frac = malloc(sizeof(float) * MEL_GRID);
    double *cosines = malloc(sizeof(double) * (size_t)order * MEL_GRID);
    double *ca = malloc(sizeof(double) * (size_t)order * 2);
    if (!idx || !frac || !cosines || !ca) {
        free(idx);
        free(frac);
        free(cosines);
        free(ca);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "envelope distance: out of memory");
    }
    double *cb = ca + order;
    for (int j = 0; j < MEL_GRID; j++) {
        double wm = M_PI * (j + 0.5) / MEL_GRID;    /* uniform in warped frequency (midpoints) */
        double w = warp(wm, -alpha);                 /* the inverse all-pass maps back to linear */
        double pos = w / M_PI * (bins - 1);
        int i = (int)pos;
        if (i > bins - 2) i = bins - 2;
        idx[j] = i;
        frac[j] = (float)(pos - i);
        for (int m = 1; m <= order; m++) cosines[(size_t)(m - 1) * MEL_GRID + j] = cos(m * wm);
    }
    double mcd = 0.0, lsd = 0.0;
    int64_t used = 0;
    const double db = 10.0 / log(10.0);
    for (int64_t t = 0; t < a->frames; t++) {
        if (!(a->f0_hz[t] > 0.0f && b->f0_hz[t] > 0.0f)) continue;
        const float *ea = a->envelope + t * bins, *eb = b->envelope + t * bins;
        mel_cepstrum(ea, idx, frac, cosines, order, ca);
        mel_cepstrum(eb, idx, frac, cosines, order, cb);
        double s = 0.0;
        for (int m = 0; m < order; m++) s += (ca[m] - cb[m]) * (ca[m] - cb[m]);
        mcd += db * sqrt(2.0 * s);
        double l = 0.0;
        for (int k = 0; k < bins; k++) {
            double r = 10.0 * log10(((double)ea[k] + 1e-30) / ((double)eb[k] + 1e-30));
            l += r * r;
        }
        lsd += sqrt(l / bins);
        used++;
    }
    *mcd_db = used ? mcd / (double)used : 0.0;
    *lsd_db = used ? lsd / (double)used : 0.0;
    if (frames_used) *frames_used = used;
    free(idx);
    free(frac);
    free(cosines);
    free(ca);
    return AVO_OK;
}
