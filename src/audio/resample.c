/* Sample-rate conversion through libsoxr, streamed in blocks: one-shot calls on long signals
 * spend their time moving soxr's internal FIFO around (measured: 16 s for 2 minutes at 4x). */
#include "autovoice/audio.h"

#include <soxr.h>
#include <string.h>

enum { RESAMPLE_BLOCK = 16384 };

avo_status avo_resample_buffer(const float *in, int64_t n_in, double in_rate, double out_rate, float *out,
                               int64_t n_out, avo_error *err) {
    soxr_error_t e = NULL;
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    soxr_t s = soxr_create(in_rate, out_rate, 1, &e, &io, &q, NULL);
    if (!s) return avo_error_set(err, AVO_ERR_INTERNAL, "resampler setup failed: %s", e ? e : "unknown");
    int64_t fed = 0, made = 0;
    while (made < n_out) {
        size_t idone = 0, odone = 0;
        const int64_t chunk = n_in - fed < RESAMPLE_BLOCK ? n_in - fed : RESAMPLE_BLOCK;
        /* A NULL input tells soxr the signal has ended, so it flushes what it still holds. */
        e = soxr_process(s, chunk > 0 ? in + fed : NULL, (size_t)(chunk > 0 ? chunk : 0), &idone, out + made,
                         (size_t)(n_out - made), &odone);
        if (e) break;
        fed += (int64_t)idone;
        made += (int64_t)odone;
        if (chunk <= 0 && odone == 0) break; /* flushed: soxr may deliver a few samples fewer */
    }
    soxr_delete(s);
    if (e) return avo_error_set(err, AVO_ERR_INTERNAL, "resampling %.0f -> %.0f Hz failed: %s", in_rate, out_rate, e);
    if (made < n_out) memset(out + made, 0, sizeof(float) * (size_t)(n_out - made));
    return AVO_OK;
}

avo_status avo_audio_resample(const avo_audio *in, int sample_rate, avo_audio *out, avo_error *err) {
    if (!in || !out || sample_rate <= 0)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "invalid resample request");
    if (sample_rate == in->sample_rate) return avo_audio_copy(in, out, err);
    const double ratio = (double)sample_rate / in->sample_rate;
    const int64_t out_frames = (int64_t)((double)in->frames * ratio + 0.5);
    avo_status st = avo_audio_alloc(out, sample_rate, in->channels, out_frames, err);
    for (int c = 0; c < in->channels && !st; c++)
        st = avo_resample_buffer(avo_audio_channel(in, c), in->frames, in->sample_rate, sample_rate,
                                 avo_audio_channel(out, c), out_frames, err);
    if (st) avo_audio_free(out);
    return st;
}
