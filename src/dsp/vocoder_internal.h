/* Vocoder internals shared by the analysis (envelope, aperiodicity) and synthesis files.
 *
 * The algorithms follow WORLD (M. Morise): CheapTrick for the envelope, D4C for the band
 * aperiodicity and pulse-by-pulse minimum-phase synthesis. This is an independent implementation
 * in single precision with FFTW plans made once per context. */
#ifndef AVO_VOCODER_INTERNAL_H
#define AVO_VOCODER_INTERNAL_H

#include "autovoice/vocoder.h"

#include <fftw3.h>
#include <math.h>
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

/* Single-precision exp, log and sincos in plain arithmetic (Cody-Waite reduction, Cephes
 * polynomials; relative error under 2e-7 for exp, absolute under 4e-6 for log and 2e-7 for sin
 * and cos), inline and branch-free so that the per-bin loops that call them vectorise: libm's
 * scalar calls were a fifth of the synthesis time. Domains: -87 <= x <= 88 for voc_expf (every
 * caller's argument is a log level above ln 1e-30 / 2 or a level in [-60, 0] dB); x >= 1.2e-38
 * (normal, positive) for voc_logf; |x| < 1e5 for voc_sincosf. voc_maxf / voc_minf: max and min
 * as arithmetic (fmaxf does not vectorise without -ffinite-math-only), exact to an ulp of the
 * larger operand. */
static inline __attribute__((always_inline)) float voc_maxf(float a, float b) {
    return 0.5f * (a + b + fabsf(a - b));
}

static inline __attribute__((always_inline)) float voc_minf(float a, float b) {
    return 0.5f * (a + b - fabsf(a - b));
}

static inline __attribute__((always_inline)) float voc_as_float(int32_t i) {
    float f;
    __builtin_memcpy(&f, &i, sizeof f);
    return f;
}

static inline __attribute__((always_inline)) int32_t voc_as_int(float f) {
    int32_t i;
    __builtin_memcpy(&i, &f, sizeof i);
    return i;
}

static inline __attribute__((always_inline)) float voc_expf(float x) {
    const float t = x * 1.44269504088896341f;
    const int n = (int)(t + copysignf(0.5f, t)); /* round to nearest */
    const float nf = (float)n;
    const float f = (x - nf * 0.693359375f) - nf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * f + 1.3981999507e-3f;
    p = p * f + 8.3334519073e-3f;
    p = p * f + 4.1665795894e-2f;
    p = p * f + 1.6666665459e-1f;
    p = p * f + 5.0000001201e-1f;
    p = p * f * f + f + 1.0f;
    return p * voc_as_float((n + 127) << 23);
}

static inline __attribute__((always_inline)) float voc_logf(float x) {
    const int32_t bits = voc_as_int(x);
    int e = ((bits >> 23) & 0xff) - 127;
    float m = voc_as_float((bits & 0x007fffff) | 0x3f800000); /* mantissa in [1, 2) */
    const int big = m > 1.41421356f;       /* to [sqrt(1/2), sqrt(2)) */
    m *= 1.0f - 0.5f * (float)big;
    e += big;
    const float f = m - 1.0f, f2 = f * f;
    float p = 7.0376836292e-2f;
    p = p * f - 1.1514610310e-1f;
    p = p * f + 1.1676998740e-1f;
    p = p * f - 1.2420140846e-1f;
    p = p * f + 1.4249322787e-1f;
    p = p * f - 1.6668057665e-1f;
    p = p * f + 2.0000714765e-1f;
    p = p * f - 2.4999993993e-1f;
    p = p * f + 3.3333331174e-1f;
    const float ef = (float)e;
    return (f + (f2 * f * p - 0.5f * f2 + ef * -2.12194440e-4f)) + ef * 0.693359375f;
}

typedef struct voc_sc {
    float s, c;
} voc_sc;

static inline __attribute__((always_inline)) voc_sc voc_sincosf(float x) {
    const float t = x * 0.636619772367581343f; /* 2 / pi */
    const int n = (int)(t + copysignf(0.5f, t));
    const float nf = (float)n;
    const float r = ((x - nf * 1.5703125f) - nf * 4.837512969970703125e-4f) - nf * 7.54978995489188216e-8f;
    const float r2 = r * r;
    const float s = r + r * r2 * (-1.6666654611e-1f + r2 * (8.3321608736e-3f + r2 * -1.9515295891e-4f));
    const float c = 1.0f - 0.5f * r2 + r2 * r2 * (4.166664568298827e-2f + r2 * (-1.388731625493765e-3f + r2 * 2.443315711809948e-5f));
    /* quadrant n & 3: (s, c), (c, -s), (-s, -c), (-c, s), in arithmetic so that it vectorises */
    const float swap = (float)(n & 1);
    const float bs = s + swap * (c - s), bc = c + swap * (s - c);
    voc_sc out = {bs * (1.0f - 2.0f * (float)((n >> 1) & 1)), bc * (1.0f - 2.0f * (float)(((n + 1) >> 1) & 1))};
    return out;
}

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
