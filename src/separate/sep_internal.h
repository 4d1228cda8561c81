/* Internal pieces of the separation module: STFT, spectral models and masks. Not a public API. */
#ifndef AVO_SEP_INTERNAL_H
#define AVO_SEP_INTERNAL_H

#include <fftw3.h>
#include <stdint.h>

/* Short-time Fourier transform with a periodic Hann window, hop = n / 4. Frame t is centred on
 * sample t * hop, so a signal of len samples has len / hop + 1 frames. Spectra are stored frame by
 * frame: bin f of frame t is spec[t * bins + f]. */
typedef struct sep_stft {
    int n, hop, bins;
    float *win;       /* n: analysis and synthesis window */
    fftwf_plan fwd;   /* r2c of n, planned on aligned scratch; executed with new-array calls */
    fftwf_plan inv;   /* c2r of n */
} sep_stft;

int sep_stft_init(sep_stft *st, int n);
void sep_stft_free(sep_stft *st);
int64_t sep_stft_frames(const sep_stft *st, int64_t len);
/* x has len samples; spec gets sep_stft_frames(len) * bins values. Returns 0 or -1 (no memory). */
int sep_stft_forward(const sep_stft *st, const float *x, int64_t len, fftwf_complex *spec, int threads);
/* Weighted overlap-add back to len samples in y (overwritten). Returns 0 or -1 (no memory). */
int sep_stft_inverse(const sep_stft *st, const fftwf_complex *spec, int64_t len, float *y, int threads);

/* Settings of the vocal model for one preset (see separate.c for the values). */
typedef struct sep_params {
    int use_repet;        /* REPET-SIM repeating-background model */
    int repet_k;          /* similar frames per frame */
    double repet_min_gap_s;
    int repet_geo;        /* 1: geometric mean of the similar frames instead of their median */
    int use_hpss;         /* median-filter harmonic/percussive model */
    int hpss_time_len;    /* frames */
    int hpss_freq_len;    /* bins */
    int use_side;         /* stereo: side channel bounds the accompaniment in the mid */
    double side_gain;
    int side_cancel;      /* stereo: remove from the mid what the side predicts (panned sources) */
    int cancel_half;      /* frames either side for the prediction */
    int recancel;         /* passes that redo the side prediction from the mid less the previous vocal estimate */
    int recancel_half;    /* frames either side for those (0: cancel_half) */
    double recancel_wpow; /* > 0: each bin's part in those fits weighs (1 - previous vocal mask)^recancel_wpow */
    int recancel_iterations; /* mask re-estimation passes in those passes (0: iterations) */
    int recancel_lag;     /* > 0: then the side recancel_lag frames before and after predicts what is left */
    double cancel_max_gain;
    int repet_stride;     /* 2: neighbours searched for even frames only; odd frames reuse them shifted by one */
    int use_f0;           /* predominant-melody harmonic mask */
    int f0_accurate;      /* track it with AVO_F0_ACCURATE (Viterbi) instead of AVO_F0_FAST */
    double f0_floor;      /* mask gain between harmonics in voiced frames */
    double f0_boost;      /* mask exponent on harmonics (< 1 raises the mask there) */
    double f0_width;      /* harmonic half-width, bins (plus 1 % of the harmonic's frequency) */
    double f0_max_hz;     /* harmonics are shaped up to this frequency */
    double f0_min_conf;   /* frames whose F0 confidence is below this get unvoiced_gain, not the comb */
    double unvoiced_gain; /* mask gain in frames without a confident F0 (vocal-activity gating) */
    int f0_hangover;      /* frames this close to a confident one take its F0 (onsets, phrase ends) */
    double fit_max_hz;    /* voiced frames: harmonics up to this frequency are fitted as sinusoids (0: off) */
    double fit_resid;     /* share of what the fitted sinusoid leaves in its bins that still goes to the vocal */
    double fit_low_hz;    /* partials between this and lowcut_hz are fitted too, their sinusoid alone kept */
    double fit_step;      /* frequency search step around k * F0, bins (over +-fit_span) */
    double fit_span;
    int fit_chirp;        /* 1: partials fitted as linear chirps at the sweep the F0 slope predicts; 2: and +-1 bin */
    double lowcut_hz;     /* vocal mask is zero below this */
    double mask_power;    /* Wiener exponent */
    int iterations;       /* re-estimation passes */
    double fft_seconds;   /* the STFT size is the first power of two at least this long */
} sep_params;

/* Spectra of linear chirps through the analysis window, for the harmonic fit of gliding partials:
 * entry (c, d, q) is bin q - SEP_CHIRP_HALF relative to the nearest bin of a unit complex chirp whose
 * frequency is d / SEP_CHIRP_DSTEPS - 0.5 bins off that bin at the frame centre and moves c - SEP_CHIRP_C
 * bins over the window. */
#define SEP_CHIRP_HALF 2 /* bins either side: the Hann window's main lobe */
#define SEP_CHIRP_C 8
#define SEP_CHIRP_DSTEPS 16
typedef struct sep_chirps {
    int n;     /* window length it was made for (0: none) */
    float *k;  /* (2 SEP_CHIRP_C + 1) x (SEP_CHIRP_DSTEPS + 1) x (2 SEP_CHIRP_HALF + 1) complex */
} sep_chirps;
int sep_chirps_make(sep_chirps *ch, const sep_stft *st, int threads);
void sep_chirps_free(sep_chirps *ch);

/* Working memory of one block, kept in the separator between blocks and runs: large buffers that are
 * freshly mapped on every call cost more in page faults than the arithmetic done in them. */
typedef struct sep_work {
    int64_t cap_len, cap_frames; /* sizes the buffers were allocated for */
    int cap_bins;
    float *mid, *side;           /* cap_len time samples */
    fftwf_complex *M, *S;        /* cap_frames * cap_bins */
    fftwf_complex *E;            /* cap_frames * cap_bins, only with recancel (else NULL) */
    float *mask, *mag, *acc, *tmp, *share, *rest, *lg; /* cap_frames * cap_bins */
    float *feat;                 /* cap_frames * cap_bins (features use at most bins / 2 + 1 per frame) */
    float *sim;                  /* ceil(cap_frames / 2) * cap_frames, or cap_frames^2 for stride 1 */
    sep_chirps chirps;           /* for the harmonic fit with fit_chirp */
} sep_work;

/* Makes sure w holds buffers for len samples, frames x bins spectra (and w->E when with_e). Returns 0 or
 * -1 (no memory). */
int sep_work_reserve(sep_work *w, int64_t len, int64_t frames, int bins, int with_e);
void sep_work_free(sep_work *w);

/* Computes the vocal mask (T x bins, in [0, 1], into w->mask) for one block from the mid spectrum
 * (and the side spectrum, or NULL for mono). */
int sep_vocal_mask(const sep_params *p, const fftwf_complex *mid, const fftwf_complex *side, int64_t frames,
                   int bins, int n_fft, int hop, int rate, int threads, sep_work *w);

/* Harmonic comb on the mask in voiced frames: f0_hz[t] (0 = unvoiced) and conf[t] per STFT frame. */
void sep_f0_comb(const sep_params *p, const float *f0_hz, const float *conf, int64_t T, int bins, int n_fft, int rate,
                 int threads, float *mask);

/* Vocal estimate: V = mask * X, except that in voiced frames (f0_hz, conf as for sep_f0_comb) each
 * harmonic below p->fit_max_hz is fitted as one stationary sinusoid (complex amplitude and frequency
 * near k * f0, least squares over the window's main lobe) whose spectrum replaces the masked bins there,
 * plus p->fit_resid of the rest. X and V may be the same array. */
void sep_harmonic_fit(const sep_params *p, const float *f0_hz, const float *conf, const fftwf_complex *X,
                      const float *mask, int64_t T, int bins, int n_fft, int rate, const sep_chirps *chirps, int threads,
                      fftwf_complex *V);

/* Subtracts from mid the part linearly predictable from side (per bin, over +-half frames), where mid
 * frame t is predicted from side frame t + shift (0 outside the block). The prediction is fitted to est
 * (NULL: to mid itself); est = mid less a vocal estimate keeps the vocal, which the side cannot
 * predict but which pulls a fit to the mid off by chance, out of the fit. With update_est the same
 * prediction is subtracted from est too. wgt (T x bins, or NULL for 1) weights each frame's part in
 * the fit. */
int sep_side_cancel(fftwf_complex *mid, const fftwf_complex *side, int shift, fftwf_complex *est, int update_est,
                    const float *wgt, int64_t T, int bins, int half, double max_gain, int threads);

/* Ablation hooks for benchmarks: the parameters a separator runs with (editable between runs). */
struct avo_separator;
sep_params *sep_separator_params(struct avo_separator *sep);
void sep_separator_params_changed(struct avo_separator *sep);

#endif
