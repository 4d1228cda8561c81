/* RMVPE internals shared by rmvpe.c, rmvpe_mel.c and the tests: the log-mel front end and the
 * window knobs. Not a public interface. */
#ifndef AVO_RMVPE_INTERNAL_H
#define AVO_RMVPE_INTERNAL_H

#include "autovoice/models.h"

#define RMVPE_SR 16000
#define RMVPE_NFFT 1024
#define RMVPE_HOP 160
#define RMVPE_MELS 128
#define RMVPE_BINS 360

/* Log-mel front end of RMVPE: periodic Hann 1024, hop 160, frames centred on 160 * i with reflect
 * padding, magnitude spectrum, 128 HTK-mel bands 30-8000 Hz with Slaney area normalisation,
 * log(max(x, 1e-5)). Holds an FFTW plan: create it where FFTW planning is allowed (not concurrently
 * with other planning); running it is thread-safe. */
typedef struct rmvpe_mel rmvpe_mel;

avo_status rmvpe_mel_create(rmvpe_mel **out, avo_error *err);
void rmvpe_mel_free(rmvpe_mel *m);

/* Log-mel frames first .. first + count - 1 of samples (n >= 1 values at 16 kHz; frames may run past
 * the last one, n / 160) into out, frame-major: out[(f - first) * 128 + band]. Samples outside
 * [0, n) are mirrored at the ends as torch's reflect padding does (repeatedly, for inputs shorter
 * than half a window). */
avo_status rmvpe_mel_frames(const rmvpe_mel *m, const float *samples, int64_t n, int64_t first, int64_t count,
                            float *out, avo_error *err);

/* Long inputs are processed in windows of `frames` mel frames (a multiple of the U-Net's 2^levels,
 * normally 32), each reaching `margin` frames (same multiple) into its neighbours, whose outputs
 * are thrown away. Inputs up to one window run in one pass, exactly as the reference. Returns
 * AVO_ERR_INVALID_ARGUMENT unless frames > 2 * margin and both are multiples of the U-Net's
 * stride. */
avo_status rmvpe_set_window(avo_rmvpe *m, int frames, int margin, avo_error *err);
void rmvpe_get_window(const avo_rmvpe *m, int *frames, int *margin);

/* The network alone: mel [frames, 128] frame-major (the model's input BatchNorm not applied yet;
 * frames padded as the reference does inside), salience [frames, 360] out. For tests. */
avo_status rmvpe_salience(avo_rmvpe *m, avo_arena *a, const float *mel, int64_t frames, float *salience,
                          avo_error *err);

/* Cents and Hz of one salience row as RVC decodes it (argmax, 9-bin weighted mean); returns the peak. */
float rmvpe_decode_frame(const float *salience, float threshold, double *cents, float *f0_hz);

#endif
