/* Analysis/synthesis vocoder (WORLD class): a voice as F0, spectral envelope and aperiodicity.
 *
 * Frame i is centred at i * frame_period. The envelope is a power spectrum on fft_size/2+1 bins
 * (linear power, not dB); aperiodicity is per bin in [0, 1] (0 = periodic, 1 = noise). */
#ifndef AUTOVOICE_VOCODER_H
#define AUTOVOICE_VOCODER_H

#include "autovoice/f0.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avo_vocoder_config {
    int sample_rate;
    double frame_period_seconds; /* default 0.005 */
    int fft_size;                /* 0 = chosen from sample_rate and the lowest F0 (as CheapTrick) */
    double f0_floor_hz;          /* lowest F0 the analysis window must cover; default 71 */
    int threads;                 /* 0 = as many as available */
    double q1;                   /* CheapTrick recovery lifter weight; default -1/24 (WORLD: -0.15). The
                                    smoothing lifter sinc(pi f0 q) loses (pi f0 q)^2 / 6 at low quefrency
                                    and the recovery lifter gives back -4 q1 (pi f0 q)^2: -1/24 makes the
                                    chain flat to second order, so a smooth envelope comes back unchanged
                                    and formant peaks do not grow with each analysis of a resynthesis
                                    (WORLD's -0.15 sharpens them by about 1 dB) */
} avo_vocoder_config;

typedef struct avo_voice_params {
    int sample_rate;
    int fft_size;
    int bins;                     /* fft_size / 2 + 1 */
    int64_t frames;
    double frame_period_seconds;
    float *f0_hz;                 /* frames; 0 = unvoiced */
    float *envelope;              /* frames * bins, row-major, linear power */
    float *aperiodicity;          /* frames * bins, row-major, [0, 1] */
} avo_voice_params;

typedef struct avo_vocoder avo_vocoder;

void avo_vocoder_config_default(avo_vocoder_config *cfg, int sample_rate);
avo_status avo_vocoder_create(const avo_vocoder_config *cfg, avo_vocoder **out, avo_error *err);
void avo_vocoder_free(avo_vocoder *v);

/* Analyses x (mono, at the vocoder's rate). f0 is the track to analyse with, at any hop: it is
 * resampled to the frame period; NULL runs the vocoder's own F0 estimator. */
avo_status avo_vocoder_analyze(avo_vocoder *v, const float *x, int64_t n, const avo_f0_track *f0,
                               avo_voice_params *out, avo_error *err);

/* Synthesises n samples from params (which may have been modified). */
avo_status avo_vocoder_synthesize(avo_vocoder *v, const avo_voice_params *params, float *y, int64_t n,
                                  avo_error *err);

avo_status avo_voice_params_alloc(avo_voice_params *p, int sample_rate, int fft_size, int64_t frames,
                                  double frame_period_seconds, avo_error *err);
void avo_voice_params_free(avo_voice_params *p);

/* Modifications the converter needs. */
/* Multiplies F0 by 2^(semitones/12) on voiced frames. */
void avo_voice_params_transpose(avo_voice_params *p, double semitones);
/* Warps every envelope along frequency: new(f) = old(f / ratio); ratio > 1 moves formants up. */
avo_status avo_voice_params_warp_envelope(avo_voice_params *p, double ratio, avo_error *err);

/* Distance between the envelopes of two parameter sets of the same shape, over frames voiced in
 * both (f0 > 0 in a and b). Mel-cepstral distortion: each envelope's log amplitude (0.5 ln power)
 * is resampled onto a uniform grid of the all-pass (mel) warped frequency with alpha =
 * avo_mel_alpha(rate), turned into mel-cepstral coefficients c_1..c_order by a cosine transform
 * (c0, the level, excluded), and MCD = 10/ln10 * sqrt(2 * sum (ca_m - cb_m)^2), averaged over the
 * frames. Log-spectral distance: the RMS over bins of 10 log10(Pa/Pb), averaged over the frames.
 * frames_used (may be NULL) receives the number of frames compared; with none, both are 0. */
avo_status avo_voice_params_distance(const avo_voice_params *a, const avo_voice_params *b, int order,
                                     double *mcd_db, double *lsd_db, int64_t *frames_used, avo_error *err);

/* All-pass warping constant that best approximates the mel scale at this rate (0.42 at 16 kHz). */
double avo_mel_alpha(int sample_rate);

#ifdef __cplusplus
}
#endif
#endif
