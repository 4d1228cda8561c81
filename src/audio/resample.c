/* Sample-rate conversion through libsoxr, streamed in blocks: one-shot calls on long signals
 * spend their time moving soxr's internal FIFO around (measured: 16 s for 2 minutes at 4x). */
#include "autovoice/audio.h"

#include <omp.h>
#include <soxr.h>
#include <stdlib.h>
#include <string.h>

enum { RESAMPLE_BLOCK = 16384 };

static avo_status resample_serial(const float *in, int64_t n_in, double in_rate, double out_rate, float *out,
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

static int64_t gcd64(int64_t a, int64_t b) {
    while (b) {
        const int64_t t = a % b;
        a = b, b = t;
    }
    return a;
}

/* Long signals at whole-number rates run in parallel pieces. Pieces start on multiples of the rates'
 * reduced input step, where input and output samples fall at the same instant, so each piece's output
 * lands exactly in place; each piece is resampled with 0.1 s of real signal on both sides (more than
 * the HQ filter's reach) and that margin is dropped, so the joins match one pass to float rounding. */
avo_status avo_resample_buffer(const float *in, int64_t n_in, double in_rate, double out_rate, float *out,
                               int64_t n_out, avo_error *err) {
    const int64_t ir = (int64_t)in_rate, orr = (int64_t)out_rate;
    const int threads = omp_get_max_threads();
    if (threads < 2 || ir != in_rate || orr != out_rate || ir <= 0 || orr <= 0 || n_in < 8 * ir)
        return resample_serial(in, n_in, in_rate, out_rate, out, n_out, err);
    const int64_t g = gcd64(ir, orr), step_in = ir / g, step_out = orr / g;
    const int64_t ctx = (ir / 10 / step_in + 1) * step_in;
    int64_t pieces = n_in / (4 * ir);
    if (pieces > 4 * threads) pieces = 4 * threads;
    const int64_t piece_in = ((n_in + pieces - 1) / pieces + step_in - 1) / step_in * step_in;
    pieces = (n_in + piece_in - 1) / piece_in;
    avo_status st = AVO_OK;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t p = 0; p < pieces; p++) {
        const int64_t a = p * piece_in, b = a + piece_in < n_in ? a + piece_in : n_in;
        const int64_t a_out = a / step_in * step_out;
        const int64_t b_out = b == n_in ? n_out : (b / step_in * step_out < n_out ? b / step_in * step_out : n_out);
        if (a_out >= b_out) continue;
        const int64_t l = a - ctx > 0 ? a - ctx : 0, r = b + ctx < n_in ? b + ctx : n_in;
        const int64_t skip = (a - l) / step_in * step_out, want = skip + (b_out - a_out);
        float *tmp = malloc(sizeof(float) * (size_t)want);
        avo_error e = {0};
        avo_status ps = tmp ? resample_serial(in + l, r - l, in_rate, out_rate, tmp, want, &e) : AVO_ERR_NO_MEMORY;
        if (!ps) memcpy(out + a_out, tmp + skip, sizeof(float) * (size_t)(b_out - a_out));
        free(tmp);
        if (ps) {
#pragma omp critical(avo_resample_error)
            if (!st) st = avo_error_set(err, ps, "resampling %.0f -> %.0f Hz failed%s%s", in_rate, out_rate,
                                        e.message[0] ? ": " : "", e.message);
        }
    }
    return st;
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
