/* Evaluation module internals: the 16 kHz spectral front end shared by the speaker model, MCD and the
 * naturalness measure. */
#ifndef AVO_EVAL_INTERNAL_H
#define AVO_EVAL_INTERNAL_H

#include "autovoice/eval.h"

#include <fftw3.h>

#define EV_RATE 16000
#define EV_WIN 400  /* 25 ms */
#define EV_HOP 160  /* 10 ms, the F0 tracks' hop: frame i is centred at i * 10 ms */
#define EV_NFFT 512
#define EV_NBINS (EV_NFFT / 2 + 1)
#define EV_NMEL 40
#define EV_MCEP 24  /* c1..c24 for MCD and modulation spectra */

typedef struct ev_frontend {
    fftwf_plan plan;
    float *window;          /* EV_WIN Hamming */
    float fb[EV_NMEL][EV_NBINS]; /* triangular mel weights (times pre-emphasis gain when asked) */
    int lo[EV_NMEL], hi[EV_NMEL]; /* non-zero bin range of each band, hi exclusive */
} ev_frontend;

typedef struct ev_frames {
    int64_t n;
    float *logmel;      /* n * EV_NMEL, natural log of mel-band power */
    float *energy_db;   /* n, frame mean-square in dB */
    float *flatness_db; /* n, spectral flatness 100 Hz..7 kHz in dB (<= 0) */
} ev_frames;

/* The evaluator: FFT plans (created once) and the speaker model. */
struct avo_evaluator {
    int K, D;
    double relevance;
    int threads;
    float *w;      /* K */
    float *mean;   /* K * D */
    float *var;    /* K * D */
    float *ivar;   /* K * D */
    float *gconst; /* K: log w - 0.5 (D log 2pi + sum log var) */
    int f0_smoothing;  /* average spectra over F0 before the mel bands (see avo_speaker_config) */
    ev_frontend fe;    /* with pre-emphasis, for speaker features */
    ev_frontend plain; /* without, for mel cepstra (MCD, naturalness) */
};

/* preemph: fold a 0.97 first-difference pre-emphasis into the filterbank (MFCC style). */
avo_status ev_frontend_create(ev_frontend *fe, int preemph, avo_error *err);
void ev_frontend_free(ev_frontend *fe);

/* Mono at 16 kHz (a copy even when the input already is). */
avo_status ev_to_16k_mono(const avo_audio *in, avo_audio *out, avo_error *err);

/* Frames centred at i * EV_HOP, i = 0 .. n / EV_HOP (zero padding at the edges). smooth_hz (may be NULL:
 * none) gives per frame the width in Hz over which the power spectrum is averaged before the mel bands. */
avo_status ev_analyse(const ev_frontend *fe, const float *x, int64_t n, int threads, const float *smooth_hz,
                      ev_frames *out, avo_error *err);

/* Per-frame smoothing widths for ev_analyse: the F0 (fast estimator) on voiced frames, 150 Hz elsewhere.
 * *f0 gets n / EV_HOP + 1 values (malloc'd). */
avo_status ev_frame_f0(const float *x, int64_t n, int threads, float **f0, avo_error *err);
void ev_frames_free(ev_frames *f);

/* Energy-based activity: louder than (loudest - 40 dB) and above -70 dBFS. active has f->n bytes. Returns
 * the number of active frames. */
int64_t ev_activity(const ev_frames *f, unsigned char *active);

/* Cepstra c[first .. first+count-1] of every frame of logmel (n * EV_NMEL) into out (n * count).
 * true_scale: log-amplitude cepstrum with log|X| = c0 + 2 sum c_k cos(.) (for MCD); otherwise
 * orthonormal DCT-II of log power (MFCC). */
void ev_cepstra(const float *logmel, int64_t n, int first, int count, int true_scale, float *out);

/* Default thread count: threads or the OpenMP maximum. */
int ev_threads(int threads);

#endif
