/* F0 estimation driver: argument checks, conversion to a 16 kHz analysis rate, DC/rumble high-pass,
 * noise-adaptive pre-filter (f0_denoise.c; idle on clean clips), per-frame analysis over OpenMP
 * threads, level and noise-floor gates, then the method's decision stage. */
#include "autovoice/audio.h"
#include "dsp/f0_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Pitch needs nothing above 8 kHz; analysing at 16 kHz keeps every rate equally fast. */
#define ANALYSIS_RATE 16000
#define GATE_FLOOR_DB (-60.0) /* frames this far below the loudest are unvoiced */
#define GATE_FULL_DB (-45.0)  /* and from here up the level does not matter */
#define ABS_FLOOR_RMS 1e-5    /* about -100 dBFS: digital silence and dither */
#define SNR_GATE_FLOOR_DB (-10.0) /* frame power over a known noise floor: unvoiced at or below */
#define SNR_GATE_FULL_DB (-3.0)   /* and from here up it does not matter */

void avo_f0_config_default(avo_f0_config *cfg) {
    cfg->method = AVO_F0_FAST;
    cfg->hop_seconds = 0.010;
    cfg->f0_min_hz = 50.0;
    cfg->f0_max_hz = 1100.0;
    cfg->threads = 0;
}

avo_f0_method avo_f0_method_for_preset(avo_preset preset) {
    return preset == AVO_PRESET_FAST ? AVO_F0_FAST : AVO_F0_ACCURATE;
}

avo_status avo_f0_track_alloc(avo_f0_track *t, int64_t frames, double hop_seconds, avo_error *err) {
    memset(t, 0, sizeof *t);
    if (frames < 0 || !(hop_seconds > 0))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "f0 track: invalid size (%lld frames, hop %g s)",
                             (long long)frames, hop_seconds);
    const size_t n = frames > 0 ? (size_t)frames : 1;
    t->f0_hz = calloc(n, sizeof(float));
    t->confidence = calloc(n, sizeof(float));
    if (!t->f0_hz || !t->confidence) {
        avo_f0_track_free(t);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "f0 track: out of memory for %lld frames", (long long)frames);
    }
    t->frames = frames;
    t->hop_seconds = hop_seconds;
    return AVO_OK;
}

void avo_f0_track_free(avo_f0_track *t) {
    if (!t) return;
    free(t->f0_hz);
    free(t->confidence);
    memset(t, 0, sizeof *t);
}

float avo_f0_track_at(const avo_f0_track *t, double seconds) {
    if (!t || t->frames <= 0 || !(t->hop_seconds > 0) || !(seconds >= 0)) return 0.0f;
    const double pos = seconds / t->hop_seconds;
    const int64_t i = (int64_t)floor(pos);
    if (i >= t->frames) return 0.0f;
    if (i + 1 >= t->frames) return pos - (double)i < 0.5 ? t->f0_hz[i] : 0.0f;
    const float a = t->f0_hz[i], b = t->f0_hz[i + 1];
    const double frac = pos - (double)i;
    if (a > 0 && b > 0) return (float)(a + (b - a) * frac);
    /* At a voicing boundary the nearer frame decides. */
    return frac < 0.5 ? a : b;
}

/* Second-order Butterworth high-pass, in place: removes DC and rumble below the pitch range. */
static void highpass(float *x, int64_t n, double fc, int fs) {
    const double k = tan(M_PI * fc / fs), q = M_SQRT1_2, norm = 1.0 / (1.0 + k / q + k * k);
    const double b0 = norm, b1 = -2.0 * norm, b2 = norm;
    const double a1 = 2.0 * (k * k - 1.0) * norm, a2 = (1.0 - k / q + k * k) * norm;
    double z1 = 0, z2 = 0;
    for (int64_t i = 0; i < n; i++) {
        const double in = x[i], y = b0 * in + z1;
        z1 = b1 * in - a1 * y + z2;
        z2 = b2 * in - a2 * y;
        x[i] = (float)y;
    }
}

static avo_status check_args(const float *samples, int64_t n, int sample_rate, const avo_f0_config *cfg,
                             avo_f0_track *out, avo_error *err) {
    if (!samples || !out || !cfg)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "f0: samples, config and output must not be NULL");
    if (n <= 0) return avo_error_set(err, AVO_ERR_INVALID_AUDIO, "f0: input has no samples");
    if (sample_rate < 1000 || sample_rate > 1000000)
        return avo_error_set(err, AVO_ERR_INVALID_AUDIO,
                             "f0: sample rate %d Hz is outside 1000..1000000 Hz; resample the input first",
                             sample_rate);
    if (!(cfg->hop_seconds >= 0.0005 && cfg->hop_seconds <= 1.0))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "f0: hop %g s is outside 0.0005..1 s",
                             cfg->hop_seconds);
    if (!(cfg->f0_min_hz >= 20.0 && cfg->f0_max_hz > cfg->f0_min_hz * 1.5 && cfg->f0_max_hz <= 5000.0))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "f0: range %g..%g Hz is invalid; use 20 <= min, max > 1.5 min, max <= 5000",
                             cfg->f0_min_hz, cfg->f0_max_hz);
    if (cfg->method != AVO_F0_FAST && cfg->method != AVO_F0_ACCURATE)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "f0: unknown method %d", (int)cfg->method);
    if (cfg->threads < 0) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "f0: threads must be >= 0");
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(samples[i]))
            return avo_error_set(err, AVO_ERR_INVALID_AUDIO, "f0: sample %lld is not finite (NaN or Inf)",
                                 (long long)i);
    return AVO_OK;
}

/* The signal at the analysis rate in a new buffer (higher rates resampled, lower ones copied). */
static avo_status to_analysis_rate(const float *samples, int64_t n, int sample_rate, avo_audio *out,
                                   avo_error *err) {
    if (sample_rate <= ANALYSIS_RATE) {
        avo_status st = avo_audio_alloc(out, sample_rate, 1, n, err);
        if (!st) memcpy(out->samples, samples, sizeof(float) * (size_t)n);
        return st;
    }
    /* avo_audio_resample only reads its input. */
    const avo_audio in = {.sample_rate = sample_rate, .channels = 1, .frames = n, .samples = (float *)samples};
    return avo_audio_resample(&in, ANALYSIS_RATE, out, err);
}

/* Level gate per frame in [0, 1], relative to the loudest frame. */
static void level_gate(const f0_frame *frames, int64_t nframes, float *gate) {
    float ref = 0;
    for (int64_t i = 0; i < nframes; i++) ref = fmaxf(ref, frames[i].rms);
    for (int64_t i = 0; i < nframes; i++) {
        const double rms = frames[i].rms;
        if (rms < ABS_FLOOR_RMS || ref <= 0) {
            gate[i] = 0;
            continue;
        }
        const double db = 20.0 * log10(rms / ref);
        const double g = (db - GATE_FLOOR_DB) / (GATE_FULL_DB - GATE_FLOOR_DB);
        gate[i] = (float)(g < 0 ? 0 : g > 1 ? 1 : g);
    }
}

/* With a noise floor known, a frame whose power hardly exceeds it is not voiced however periodic
 * the filter's residue looks (a few surviving noise peaks read as a low pitch). */
static void snr_gate(const f0_noise_info *nz, double step, int64_t nframes, float *gate) {
    if (nz->frames <= 0) return;
    const double lo = SNR_GATE_FLOOR_DB, hi = SNR_GATE_FULL_DB;
    for (int64_t i = 0; i < nframes; i++) {
        int64_t t = llround(((double)i * step - nz->first_centre) / nz->hop);
        if (t < 0) t = 0;
        if (t >= nz->frames) t = nz->frames - 1;
        const double e = nz->snr[t];
        const double db = 10.0 * log10(e > 1e-6 ? e : 1e-6);
        const double g = (db - lo) / (hi - lo);
        gate[i] *= (float)(g < 0 ? 0 : g > 1 ? 1 : g);
    }
}

/* The difference function at lag T compares x[s, s+W) with x[s+T, s+T+W): its estimate belongs to the
 * time s + (W + T) / 2, which is (T - tau_max - 2) / 2 samples before the frame centre. Each voiced
 * run is resampled from those true times back onto the frame grid (log-linear, held at the ends), so
 * glides and vibrato are not reported late by up to half the longest period. */
static avo_status align_times(avo_f0_track *t, const f0_analyzer *an, avo_error *err) {
    const int64_t n = t->frames;
    double *when = malloc(sizeof(double) * (size_t)n);
    float *src = malloc(sizeof(float) * (size_t)n);
    if (!when || !src) {
        free(when);
        free(src);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "f0: out of memory for %lld frames", (long long)n);
    }
    memcpy(src, t->f0_hz, sizeof(float) * (size_t)n);
    const double hop_samples = t->hop_seconds * an->fs;
    for (int64_t i = 0; i < n; i++)
        when[i] = src[i] > 0 ? i + (an->fs / src[i] - an->tau_max - 2) * 0.5 / hop_samples : (double)i;
    for (int64_t a = 0; a < n;) {
        if (src[a] <= 0) {
            a++;
            continue;
        }
        int64_t b = a;
        while (b + 1 < n && src[b + 1] > 0) b++;
        int64_t j = a;
        for (int64_t i = a; i <= b; i++) {
            while (j < b && when[j + 1] <= (double)i) j++;
            if ((double)i <= when[a]) t->f0_hz[i] = src[a];
            else if (j >= b) t->f0_hz[i] = src[b];
            else {
                const double span = when[j + 1] - when[j];
                const double u = span > 1e-9 ? ((double)i - when[j]) / span : 0.0;
                t->f0_hz[i] = (float)(src[j] * pow(src[j + 1] / src[j], u < 0 ? 0 : u > 1 ? 1 : u));
            }
        }
        a = b + 1;
    }
    free(when);
    free(src);
    return AVO_OK;
}

avo_status avo_f0_estimate(const float *samples, int64_t n, int sample_rate, const avo_f0_config *cfg,
                           avo_f0_track *out, avo_error *err) {
    if (out) memset(out, 0, sizeof *out);
    avo_status st = check_args(samples, n, sample_rate, cfg, out, err);
    if (st) return st;
    const double hop = cfg->hop_seconds;
    const int64_t nframes = (int64_t)floor((double)n / (hop * sample_rate) + 1e-9) + 1;
    st = avo_f0_track_alloc(out, nframes, hop, err);
    if (st) return st;

    avo_audio sig = {0};
    f0_analyzer an = {0};
    f0_noise_info noise = {0};
    f0_frame *frames = calloc((size_t)nframes, sizeof(f0_frame));
    float *gate = malloc(sizeof(float) * (size_t)nframes);
    if (!frames || !gate) st = avo_error_set(err, AVO_ERR_NO_MEMORY, "f0: out of memory for %lld frames",
                                             (long long)nframes);
    if (!st) st = to_analysis_rate(samples, n, sample_rate, &sig, err);
    if (!st) {
        const int fs = sig.sample_rate;
        const double hi = fmin(cfg->f0_max_hz, fs / 4.0);
        const double lo = fmin(cfg->f0_min_hz, hi / 1.5);
        highpass(sig.samples, sig.frames, 0.6 * lo, fs);
        st = f0_denoise(sig.samples, sig.frames, fs, &noise, err);
        if (!st) st = f0_analyzer_init(&an, fs, lo, hi, err);
    }
    if (!st) {
        int nt = cfg->threads > 0 ? cfg->threads : omp_get_max_threads();
        if ((int64_t)nt > nframes) nt = (int)nframes;
        if (nt < 1) nt = 1;
        int failed = 0;
        const double step = hop * sig.sample_rate;
#pragma omp parallel num_threads(nt)
        {
            f0_work w;
            const int ok = f0_work_alloc(&an, &w) == AVO_OK;
            if (!ok) {
#pragma omp atomic write
                failed = 1;
            }
#pragma omp for schedule(dynamic, 256)
            for (int64_t i = 0; i < nframes; i++)
                if (ok) f0_analyze_frame(&an, &w, sig.samples, sig.frames, llround((double)i * step), &frames[i]);
            if (ok) f0_work_free(&w);
        }
        if (failed) st = avo_error_set(err, AVO_ERR_NO_MEMORY, "f0: out of memory for analysis buffers");
    }
    if (!st) {
        level_gate(frames, nframes, gate);
        snr_gate(&noise, hop * sig.sample_rate, nframes, gate);
        if (cfg->method == AVO_F0_FAST)
            f0_decide_fast(frames, gate, nframes, hop, out);
        else
            st = f0_decide_viterbi(frames, gate, nframes, hop, out, err);
    }
    if (!st) st = align_times(out, &an, err);
    f0_analyzer_destroy(&an);
    avo_audio_free(&sig);
    free(noise.snr);
    free(frames);
    free(gate);
    if (st) avo_f0_track_free(out);
    return st;
}
