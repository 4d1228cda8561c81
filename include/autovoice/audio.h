/* Audio buffers, decoding/encoding, resampling and loudness.
 *
 * avo_audio holds planar float samples in [-1, 1]: channel c starts at samples + c * frames.
 * The caller owns an avo_audio and releases it with avo_audio_free. */
#ifndef AUTOVOICE_AUDIO_H
#define AUTOVOICE_AUDIO_H

#include "autovoice/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avo_audio {
    int sample_rate;
    int channels;
    int64_t frames;
    float *samples; /* channels * frames floats, planar */
} avo_audio;

/* Pointer to the first sample of channel c. */
static inline float *avo_audio_channel(const avo_audio *a, int c) {
    return a->samples + (int64_t)c * a->frames;
}

/* Allocates zeroed storage. frames may be 0. */
avo_status avo_audio_alloc(avo_audio *a, int sample_rate, int channels, int64_t frames, avo_error *err);
void avo_audio_free(avo_audio *a);
avo_status avo_audio_copy(const avo_audio *in, avo_audio *out, avo_error *err);

/* Decodes WAV, FLAC, OGG/Vorbis, Opus, MP3 (anything libsndfile reads). Rejects directories,
 * empty or truncated files, zero-length audio and non-finite samples with a message naming the file. */
avo_status avo_audio_read(const char *path, avo_audio *out, avo_error *err);

/* Decodes from memory (same checks as avo_audio_read); name is used in messages. */
avo_status avo_audio_read_memory(const void *data, size_t size, const char *name, avo_audio *out,
                                 avo_error *err);

/* Output encodings. AVO_AUDIO_AUTO picks by extension: .wav -> 24-bit PCM, .flac -> 24-bit FLAC. */
typedef enum avo_audio_encoding {
    AVO_AUDIO_AUTO = 0,
    AVO_AUDIO_WAV_PCM16,
    AVO_AUDIO_WAV_PCM24,
    AVO_AUDIO_WAV_FLOAT,
    AVO_AUDIO_FLAC_PCM16,
    AVO_AUDIO_FLAC_PCM24
} avo_audio_encoding;

/* Writes atomically: a temporary file beside path, renamed over path only when complete.
 * On failure nothing is left at path (an existing file there is untouched). */
avo_status avo_audio_write(const char *path, const avo_audio *a, avo_audio_encoding encoding,
                           avo_error *err);

/* Resamples every channel with libsoxr (high quality). out is allocated. */
avo_status avo_audio_resample(const avo_audio *in, int sample_rate, avo_audio *out, avo_error *err);

/* Resamples one channel of n_in samples into exactly n_out samples (zero-padded if the resampler
 * delivers fewer). Streams in blocks, so memory beyond the two buffers stays small. */
avo_status avo_resample_buffer(const float *in, int64_t n_in, double in_rate, double out_rate, float *out,
                               int64_t n_out, avo_error *err);

/* Average of all channels into a new mono buffer. */
avo_status avo_audio_to_mono(const avo_audio *in, avo_audio *out, avo_error *err);

/* New buffer with `channels` channels: mono is duplicated, more channels are averaged down. */
avo_status avo_audio_set_channels(const avo_audio *in, int channels, avo_audio *out, avo_error *err);

/* Integrated loudness (EBU R128, LUFS). Silence gives -HUGE_VAL. */
avo_status avo_audio_loudness(const avo_audio *a, double *lufs, avo_error *err);

/* True peak in dBTP (4x oversampled, libebur128). Silence gives -HUGE_VAL. */
avo_status avo_audio_true_peak(const avo_audio *a, double *dbtp, avo_error *err);

/* Peak absolute sample value across channels. */
float avo_audio_peak(const avo_audio *a);

/* Returns AVO_OK if every sample is finite; otherwise AVO_ERR_INVALID_AUDIO naming the first bad one. */
avo_status avo_audio_check_finite(const avo_audio *a, const char *name, avo_error *err);

#ifdef __cplusplus
}
#endif
#endif
