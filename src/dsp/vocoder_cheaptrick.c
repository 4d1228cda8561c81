/* Spectral envelope, CheapTrick class (Morise 2015): a Hann window three periods long, the power
 * spectrum folded below F0 and smoothed over 2F0/3, then liftered in the cepstrum with a sinc
 * smoothing lifter and the q1 recovery lifter that restores the harmonic peaks. */
#include "vocoder_internal.h"

#include <math.h>

/* Power floor: -140 dB re full scale, keeps log() finite on digital silence. */
#define ENVELOPE_FLOOR 1e-14f
/* Dynamic range kept below each frame's peak: 90 dB. */
#define ENVELOPE_RANGE 1e-9f

void voc_envelope_frame(const avo_vocoder *v, voc_work *w, const float *x, int64_t n, double t, double f0,
                        float *env) {
    const int fft = v->fft_size, half = fft / 2, fs = v->fs;
    const double f0c = f0 <= v->ct_f0_floor ? VOC_DEFAULT_F0 : f0;

    /* Window of 3 periods; unit energy so that the envelope level does not depend on F0. */
    const int wh = (int)lround(1.5 * fs / f0c);
    voc_cos_window(w->win, wh, M_PI * f0c / (1.5 * fs), 0.5, 0.5, 0.0);
    double energy = 0.0;
    for (int j = 0; j <= 2 * wh; j++) energy += (double)w->win[j] * w->win[j];
    const float norm = (float)(1.0 / sqrt(energy));
    for (int j = 0; j <= 2 * wh; j++) w->win[j] *= norm;

    const int64_t origin = llround(t * fs + 0.001);
    voc_windowed(x, n, origin, wh, w->win, w->wave, 0.0, 0);
    for (int j = 2 * wh + 1; j < fft; j++) w->wave[j] = 0.0f;
    fftwf_execute_dft_r2c(v->r2c, w->wave, w->spec);

    float *p = w->a;
    for (int k = 0; k <= half; k++) p[k] = w->spec[k][0] * w->spec[k][0] + w->spec[k][1] * w->spec[k][1];
    voc_dc_correction(p, f0c, fs, fft, w->c);
    voc_linear_smoothing(p, f0c * 2.0 / 3.0, fs, fft, w->cum);
    /* Nothing 90 dB under the frame's strongest band is audible, and the synthesis cannot render
     * it: responses that change from pulse to pulse leak about that much into empty bands (the
     * top of an upsampled or low-passed recording). Flooring there keeps a re-analysis of the
     * output consistent with the parameters instead of reading leakage as 50 dB of change. */
    float peak = 0.0f;
    for (int k = 0; k <= half; k++) peak = fmaxf(peak, p[k]);
    const float floor_p = fmaxf(peak * ENVELOPE_RANGE, ENVELOPE_FLOOR);
#pragma omp simd
    for (int k = 0; k <= half; k++) p[k] = voc_logf(voc_maxf(p[k], floor_p));

    /* Cepstrum of the even log spectrum = DCT-I / fft. */
    float *cep = w->b;
    voc_dct1(v, w, p, cep);
    const double q1 = v->cfg.q1;
    const double theta = 2.0 * M_PI * f0c / fs; /* rotation per quefrency sample, for cos(2 pi f0 q) */
    const double ct = cos(theta), st = sin(theta);
    const double ch = cos(0.5 * theta), sh = sin(0.5 * theta);
    double c = 1.0, s = 0.0;   /* cos, sin of theta * k */
    double hs = 0.0, hc = 1.0; /* sin, cos of theta * k / 2 (rotations: no sin() per bin) */
    cep[0] *= 1.0f / (float)fft;
    for (int k = 1; k <= half; k++) {
        double nc = c * ct - s * st;
        s = s * ct + c * st;
        c = nc;
        double nhc = hc * ch - hs * sh;
        hs = hs * ch + hc * sh;
        hc = nhc;
        /* smoothing lifter: sinc(f0 q), the transform of the F0-wide rectangular smoothing in the log domain */
        double xk = 0.5 * theta * k;
        double smooth = hs / xk;
        double recover = (1.0 - 2.0 * q1) + 2.0 * q1 * c;
        cep[k] *= (float)(smooth * recover / fft);
    }
    voc_dct1(v, w, cep, p);
#pragma omp simd
    for (int k = 0; k <= half; k++) env[k] = voc_expf(p[k]);
}
