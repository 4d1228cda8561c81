/* F0 (fundamental frequency) estimation with voicing, the f0_extraction stage.
 *
 * Frame i is centred at time i * hop_seconds. f0_hz[i] > 0 means voiced; 0 means unvoiced.
 * Estimators: a fast one (YIN class) and an accurate one (pYIN/Harvest class with Viterbi tracking). */
#ifndef AUTOVOICE_F0_H
#define AUTOVOICE_F0_H

#include "autovoice/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum avo_f0_method {
    AVO_F0_FAST = 0,   /* YIN-class, frame-local decisions plus light smoothing */
    AVO_F0_ACCURATE    /* probabilistic candidates + Viterbi over pitch and voicing */
} avo_f0_method;

typedef struct avo_f0_config {
    avo_f0_method method;
    double hop_seconds;  /* default 0.010 */
    double f0_min_hz;    /* default 50 */
    double f0_max_hz;    /* default 1100 */
    int threads;         /* 0 = as many as available */
} avo_f0_config;

typedef struct avo_f0_track {
    int64_t frames;
    double hop_seconds;
    float *f0_hz;      /* frames values; 0 where unvoiced */
    float *confidence; /* frames values in [0, 1]: how sure the estimator is of voicing and pitch.
                        * It is the periodicity of the frame at the reported pitch (at the best
                        * candidate where unvoiced) times a level gate (and, on noisy clips where the noise filter is
                        * active, a noise-floor gate), so it is high on clean voiced
                        * frames (about 0.8 at 10 dB SNR) and near 0 on silence and noise. */
} avo_f0_track;

void avo_f0_config_default(avo_f0_config *cfg);

/* Method for a preset: fast -> AVO_F0_FAST, balanced and quality -> AVO_F0_ACCURATE. */
avo_f0_method avo_f0_method_for_preset(avo_preset preset);

/* Estimates F0 of a mono signal. out is allocated (free with avo_f0_track_free).
 * frames = floor(n / (hop_seconds * sample_rate)) + 1. Any rate from 1 kHz to 1 MHz: rates above
 * 16 kHz are analysed at 16 kHz (the result is in Hz either way). n must be >= 1 and every sample
 * finite (AVO_ERR_INVALID_AUDIO otherwise). Time and memory are linear in n. */
avo_status avo_f0_estimate(const float *samples, int64_t n, int sample_rate, const avo_f0_config *cfg,
                           avo_f0_track *out, avo_error *err);

avo_status avo_f0_track_alloc(avo_f0_track *t, int64_t frames, double hop_seconds, avo_error *err);
void avo_f0_track_free(avo_f0_track *t);

/* F0 at time t seconds by linear interpolation between voiced neighbours; 0 if unvoiced there. */
float avo_f0_track_at(const avo_f0_track *t, double seconds);

#ifdef __cplusplus
}
#endif
#endif
