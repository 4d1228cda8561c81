/* Sample-rate conversion through libsoxr. */
#include "autovoice/audio.h"

#include <soxr.h>
#include <string.h>

avo_status avo_audio_resample(const avo_audio *in, int sample_rate, avo_audio *out, avo_error *err) {
    if (!in || !out || sample_rate <= 0)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "invalid resample request");
    if (sample_rate == in->sample_rate) return avo_audio_copy(in, out, err);
    const double ratio = (double)sample_rate / in->sample_rate;
    const int64_t out_frames = (int64_t)((double)in->frames * ratio + 0.5);
    avo_status st = avo_audio_alloc(out, sample_rate, in->channels, out_frames, err);
    if (st) return st;
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    for (int c = 0; c < in->channels; c++) {
        size_t done = 0;
        soxr_error_t e = soxr_oneshot(in->sample_rate, sample_rate, 1, avo_audio_channel(in, c),
                                      (size_t)in->frames, NULL, avo_audio_channel(out, c),
                                      (size_t)out_frames, &done, &io, &q, NULL);
        if (e) {
            avo_audio_free(out);
            return avo_error_set(err, AVO_ERR_INTERNAL, "resampling %d -> %d Hz failed: %s", in->sample_rate,
                                 sample_rate, e);
        }
        /* soxr may deliver a few frames fewer than requested; the rest stays zero. */
    }
    return AVO_OK;
}
