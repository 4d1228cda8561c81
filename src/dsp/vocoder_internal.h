/* Vocoder internals shared by the analysis (envelope, aperiodicity) and synthesis files.
 *
 * The algorithms follow WORLD (M. Morise): CheapTrick for the envelope, D4C for the band
 * aperiodicity and pulse-by-pulse minimum-phase synthesis. This is an independent implementation
 * in single precision with FFTW plans made once per context. */
#ifndef AVO_VOCODER_INTERNAL_H
#define AVO_VOCODER_INTERNAL_H

#include "autovoice/vocoder.h"

#include <fftw3.h>
#include <stdint.h>

/* Scratch memory for one thread. Every array comes from fftwf_malloc so that the shared plans can
 * run on it with the new-array execute functions. Sized for the largest transform in use. */
typedef struct voc_work {
    float *wave;           /* max_fft real samples */
    float *wave2;          /* max_fft real samples */
    fftwf_complex *spec;   /* max_fft/2+1 */
    fftwf_complex *spec2;  /* max_fft/2+1 */
    fftwf_complex *spec3;  /* max_fft/2+1 */
    float *a, *b, *c;      /* max_fft/2+1 each: spectra on bins */
    double *cum;           /* max_fft + extra: cumulative sums for smoothing */
    float *win;            /* max_fft: window */
    float *dwave;          /* max_fft: mirrored input of voc_dct1 */
    fftwf_complex *dspec;  /* max_fft/2+1: its transform */
    float *resp;           /* fft_size: one pulse response (synthesis) */
    float *logs;           /* 4 * bins: two frames of 0.5 ln(envelope) and ln(aperiodicity) */
    int64_t log_frame[2];  /* the frames held in logs, -1 for none */
    int log_next;          /* the slot to fill next */
} voc_work;

struct avo_vocoder {
    avo_vocoder_config cfg;
    int fs;
    int fft_size;      /* envelope / synthesis transform */
    int bins;          /* fft_size / 2 + 1 */
    double ct_f0_floor; /* F0 below this uses the default F0 in CheapTrick (3 fs / (N - 3)) */
    int threads;

    /* D4C */
    int d4c_fft;          /* transform for group delay (covers 4 periods at 47 Hz) */
    int lt_fft;           /* transform for the voicing check (3 periods at 40 Hz) */
    int d4c_bands;        /* number of 3 kHz bands */
    int d4c_win_len;      /* Nuttall window over one band, in d4c_fft bins */
    float *d4c_win;

    int max_fft;
    fftwf_plan r2c;       /* fft_size, real -> complex */
    fftwf_plan c2r;       /* fft_size, complex -> real (unnormalised) */
    fftwf_plan d4c_r2c;   /* d4c_fft */
    fftwf_plan lt_r2c;    /* lt_fft */

    float *dc_remover;    /* fft_size: Hann-shaped, sums to 1 */
    voc_work *work;       /* threads */
};

/* Constants from WORLD (see its constantnumbers.h). */
#define VOC_DEFAULT_F0 500.0
#define VOC_D4C_FLOOR_F0 47.0
#define VOC_D4C_BAND_HZ 3000.0
#define VOC_D4C_UPPER_HZ 15000.0
#define VOC_D4C_THRESHOLD 0.85
#define VOC_D4C_GUARD 1e-6

/* Shared helpers (vocoder_util.c). */
void voc_dc_correction(float *power, double f0, int fs, int fft_size, float *tmp);
void voc_linear_smoothing(float *spec, double width, int fs, int fft_size, double *cum);
/* Deterministic Gaussian noise: fills out[n] from a counter-based generator keyed by seed. */
void voc_gauss_fill(float *out, int n, uint64_t seed);
/* Uniform noise of unit variance from the same kind of generator (safeguard noise). */
void voc_uniform_fill(float *out, int n, uint64_t seed);
void voc_cos_window(float *win, int half, double a, double c0, double c1, double c2);
void voc_windowed(const float *x, int64_t n, int64_t origin, int half, const float *win, float *wave,
                  double noise_amp, uint64_t seed);
/* DCT-I of bins = fft_size/2+1 values (out[k] = in[0] + (-1)^k in[half] + 2 sum in[j] cos(pi j k / half)):
 * the DFT of the even sequence, through the real transform of the mirrored input. About 2.5x
 * faster than FFTW's own REDFT00, which pads and copies. out may be in. */
void voc_dct1(const avo_vocoder *v, voc_work *w, const float *in, float *out);
/* Minimum-phase spectrum (bins complex values) of the amplitude exp(log_amp). log_amp is destroyed. */
void voc_min_phase(const avo_vocoder *v, voc_work *w, float *log_amp, fftwf_complex *out);

/* One frame of CheapTrick: envelope (bins values, linear power) at time t with F0 f0 (0 = unvoiced). */
void voc_envelope_frame(const avo_vocoder *v, voc_work *w, const float *x, int64_t n, double t, double f0,
                        float *env);
/* One frame of D4C: aperiodicity (bins values) at time t; frame_seed makes its safeguard noise repeatable. */
void voc_aperiodicity_frame(const avo_vocoder *v, voc_work *w, const float *x, int64_t n, double t, double f0,
                            uint64_t frame_seed, float *ap);

#endif
