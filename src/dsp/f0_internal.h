/* F0 estimation internals shared by f0.c (driver), f0_yin.c (per-frame analysis) and f0_track.c
 * (frame decisions: YIN picking with smoothing, or pYIN-style candidates with Viterbi tracking). */
#ifndef AVO_F0_INTERNAL_H
#define AVO_F0_INTERNAL_H

#include "autovoice/f0.h"

#include <fftw3.h>

/* Most period candidates kept per frame. pYIN can only ever select troughs that are lower than every
 * trough at a shorter lag (prefix minima); there are rarely more than four. */
#define F0_MAX_CANDIDATES 8

/* Geometry and FFT plans of the per-frame difference function, shared read-only by all threads. */
typedef struct f0_analyzer {
    int fs;       /* analysis sample rate */
    int win;      /* integration window W of the difference function */
    int tau_min;  /* shortest lag searched (f0_max) */
    int tau_max;  /* longest lag searched (f0_min) */
    int span;     /* samples read per frame: win + tau_max + 2 */
    int nfft;
    fftwf_complex *half; /* nfft/2+1: e^{i pi k / nfft}, a half-sample lag */
    fftwf_plan r2c, c2r;
} f0_analyzer;

/* Scratch for one thread; every array is fftwf_malloc'ed so the shared plans run on it. */
typedef struct f0_work {
    float *x;            /* span samples of the frame */
    float *buf;          /* nfft reals: correlation at integer lags */
    float *buf2;         /* nfft reals: correlation at half lags */
    fftwf_complex *a;    /* nfft/2+1 */
    fftwf_complex *b;    /* nfft/2+1: cross spectrum conj(A) B, kept for sub-sample refinement */
    fftwf_complex *tmp;  /* nfft/2+1: c2r destroys its input */
    double *energy;      /* span+1 prefix sums of x^2 */
    double *d;           /* tau_max+2: difference function */
    double *q;           /* 2 tau_max+4: cumulative mean normalised difference at half-sample lags */
    double *run;         /* tau_max+2: running sum of d */
} f0_work;

/* What one frame offers the decision stage. */
typedef struct f0_frame {
    float rms;                         /* frame level (after DC removal) */
    int ncand;                         /* troughs that are prefix minima, ascending lag */
    float f0[F0_MAX_CANDIDATES];       /* refined frequency in Hz of the analysis rate */
    float cmnd[F0_MAX_CANDIDATES];     /* aperiodicity at the trough (0 = perfectly periodic) */
} f0_frame;

avo_status f0_analyzer_init(f0_analyzer *an, int fs, double f0_min, double f0_max, avo_error *err);
void f0_analyzer_destroy(f0_analyzer *an);
avo_status f0_work_alloc(const f0_analyzer *an, f0_work *w);
void f0_work_free(f0_work *w);

/* Analyses the frame centred at sample `centre` of x[0..n) (zeros outside). */
void f0_analyze_frame(const f0_analyzer *an, f0_work *w, const float *x, int64_t n, int64_t centre,
                      f0_frame *out);

/* Probability that a threshold drawn from Beta(2, b) lies above aperiodicity v: 1 - CDF(v). pYIN's
 * prior is b = 18 (mean threshold 0.1). Used for candidate probabilities and for confidence. */
double f0_beta_sf(double v, double b);

/* Noise-adaptive pre-filter (f0_denoise.c), in place on the analysis-rate signal. Leaves clean
 * clips untouched. */
typedef struct f0_noise_info {
    int64_t frames;       /* 0 when the clip was left alone */
    int hop;              /* samples between filter frames */
    int first_centre;     /* sample at the centre of frame 0 (negative) */
    float *snr;           /* frames: (frame power - floor power) / floor power */
} f0_noise_info;
avo_status f0_denoise(float *x, int64_t n, int fs, f0_noise_info *info, avo_error *err);

/* Frame decisions. gate[i] in [0, 1] scales voicing by level. Both fill f0_hz (Hz, 0 = unvoiced)
 * and confidence of the track. */
void f0_decide_fast(const f0_frame *frames, const float *gate, int64_t nframes, double hop_seconds,
                    avo_f0_track *out);
avo_status f0_decide_viterbi(const f0_frame *frames, const float *gate, int64_t nframes, double hop_seconds,
                             avo_f0_track *out, avo_error *err);

#endif
