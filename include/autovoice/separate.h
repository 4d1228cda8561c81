/* Vocal separation, the separation stage: mixture in, vocals and accompaniment out.
 *
 * The accompaniment is always the mixture minus the vocals, sample for sample, so that mixing the
 * two back gives the input exactly when nothing is converted. */
#ifndef AUTOVOICE_SEPARATE_H
#define AUTOVOICE_SEPARATE_H

#include "autovoice/audio.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avo_separator_config {
    avo_preset preset;
    int threads;           /* 0 = as many as available */
    double block_seconds;  /* long inputs are processed in overlapping blocks of this length; 0 = default */
} avo_separator_config;

typedef struct avo_separator avo_separator;

void avo_separator_config_default(avo_separator_config *cfg);
avo_status avo_separator_create(const avo_separator_config *cfg, avo_separator **out, avo_error *err);
void avo_separator_free(avo_separator *sep);

/* Separates `mixture` (any rate, mono or stereo). vocals and accompaniment are allocated with the
 * mixture's rate, channel count and length. progress (may be NULL) is called with stage "separation".
 * The separator keeps its block working memory (about 110-145 MB for 30 s blocks at 44.1 kHz) between
 * runs until avo_separator_free. Not for concurrent use: one run at a time per separator, and since
 * the F0 step plans FFTs, not concurrently with other code that creates FFTW plans. */
avo_status avo_separator_run(avo_separator *sep, const avo_audio *mixture, avo_audio *vocals,
                             avo_audio *accompaniment, avo_progress_fn progress, void *user, avo_error *err);

/* The same, but a stereo mixture's vocals come back as one channel: the centre estimate that both
 * channels of avo_separator_run's vocals carry identically. The accompaniment is unchanged (the
 * mixture minus that estimate, per channel). Saves a song-length channel of memory. */
avo_status avo_separator_run_centre(avo_separator *sep, const avo_audio *mixture, avo_audio *vocals,
                                    avo_audio *accompaniment, avo_progress_fn progress, void *user, avo_error *err);

/* The same as avo_separator_run_centre, but in place: audio (the mixture) is overwritten with the
 * accompaniment, which saves a song-length buffer: a 10-minute stereo song at 44.1 kHz then needs
 * 212 MB for audio, 106 MB for the vocals and the separator's block memory. On an error audio is
 * left unchanged. */
avo_status avo_separator_run_in_place(avo_separator *sep, avo_audio *audio, avo_audio *vocals, avo_progress_fn progress,
                                      void *user, avo_error *err);

/* Human-readable name of the method that ran, e.g. "hpss+repet+f0-harmonic". */
const char *avo_separator_method(const avo_separator *sep);

#ifdef __cplusplus
}
#endif
#endif
