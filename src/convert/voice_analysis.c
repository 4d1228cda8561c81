/* Target voice analysis: what the DSP converter learns from a profile's recordings. */
#include "converter_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { GRID_SIZE = 96 };
static const char MAGIC[8] = {'A', 'V', 'O', 'V', 'O', 'I', 'C', 'E'};
static const uint32_t FORMAT_VERSION = 1;

static double hz_to_mel(double hz) { return 1127.0 * log(1.0 + hz / 700.0); }
static double mel_to_hz(double mel) { return 700.0 * (exp(mel / 1127.0) - 1.0); }

void envelope_grid(float *grid_hz, int n, double lo_hz, double hi_hz) {
    const double lo = hz_to_mel(lo_hz), hi = hz_to_mel(hi_hz);
    for (int k = 0; k < n; k++) grid_hz[k] = (float)mel_to_hz(lo + (hi - lo) * k / (n - 1));
}

void envelope_on_grid(const avo_voice_params *p, int64_t frame, const float *grid_hz, int n, float *out_log) {
    const float *env = p->envelope + frame * p->bins;
    const double hz_per_bin = (double)p->sample_rate / p->fft_size;
    for (int k = 0; k < n; k++) {
        double pos = grid_hz[k] / hz_per_bin;
        int b = (int)pos;
        if (b >= p->bins - 1) b = p->bins - 2;
        double frac = pos - b;
        double v = env[b] * (1.0 - frac) + env[b + 1] * frac;
        out_log[k] = (float)log(v > 1e-20 ? v : 1e-20);
    }
}

int64_t mean_voiced_log_envelope(const avo_voice_params *p, const float *grid_hz, int n, double *acc) {
    float *row = malloc(sizeof(float) * (size_t)n);
    int64_t used = 0;
    memset(acc, 0, sizeof(double) * (size_t)n);
    for (int64_t t = 0; row && t < p->frames; t++) {
        if (p->f0_hz[t] <= 0.0f) continue;
        envelope_on_grid(p, t, grid_hz, n, row);
        for (int k = 0; k < n; k++) acc[k] += row[k];
        used++;
    }
    for (int k = 0; used && k < n; k++) acc[k] /= (double)used;
    free(row);
    return used;
}

double converter_frame_period(avo_preset preset) { return preset == AVO_PRESET_FAST ? 0.010 : 0.005; }

static int compare_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Analyses one clip and adds its voiced frames to the running sums. */
static avo_status analyse_clip(const avo_audio *clip, const float *grid, avo_preset preset, int threads,
                               double *sum_env, int64_t *voiced, float **f0s, size_t *f0_count, size_t *f0_cap,
                               avo_error *err) {
    avo_audio mono = {0};
    avo_vocoder *voc = NULL;
    avo_f0_track track = {0};
    avo_voice_params params = {0};
    avo_vocoder_config vcfg;
    avo_f0_config fcfg;
    double *acc = malloc(sizeof(double) * GRID_SIZE);
    avo_status st = acc ? avo_audio_to_mono(clip, &mono, err) : avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    if (!st) {
        avo_f0_config_default(&fcfg);
        fcfg.method = avo_f0_method_for_preset(preset);
        fcfg.hop_seconds = converter_frame_period(preset);
        fcfg.threads = threads;
        st = avo_f0_estimate(mono.samples, mono.frames, mono.sample_rate, &fcfg, &track, err);
    }
    if (!st) {
        avo_vocoder_config_default(&vcfg, mono.sample_rate);
        vcfg.frame_period_seconds = converter_frame_period(preset);
        vcfg.threads = threads;
        st = avo_vocoder_create(&vcfg, &voc, err);
    }
    if (!st) st = avo_vocoder_analyze(voc, mono.samples, mono.frames, &track, &params, err);
    if (!st) {
        int64_t used = mean_voiced_log_envelope(&params, grid, GRID_SIZE, acc);
        for (int k = 0; k < GRID_SIZE; k++) sum_env[k] += acc[k] * (double)used;
        *voiced += used;
        for (int64_t t = 0; t < params.frames && !st; t++) {
            if (params.f0_hz[t] <= 0.0f) continue;
            if (*f0_count == *f0_cap) {
                size_t ncap = *f0_cap ? *f0_cap * 2 : 4096;
                float *p = realloc(*f0s, ncap * sizeof(float));
                if (!p) {
                    st = avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
                    break;
                }
                *f0s = p;
                *f0_cap = ncap;
            }
            (*f0s)[(*f0_count)++] = params.f0_hz[t];
        }
    }
    avo_voice_params_free(&params);
    avo_vocoder_free(voc);
    avo_f0_track_free(&track);
    avo_audio_free(&mono);
    free(acc);
    return st;
}

static avo_voice_analysis *analysis_alloc(int grid_size) {
    avo_voice_analysis *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->grid_size = grid_size;
    a->grid_hz = calloc((size_t)grid_size, sizeof(float));
    a->mean_log_env = calloc((size_t)grid_size, sizeof(float));
    if (!a->grid_hz || !a->mean_log_env) {
        avo_voice_analysis_free(a);
        return NULL;
    }
    return a;
}

avo_status avo_voice_analysis_create(const avo_audio *clips, int clip_count, avo_preset preset, int threads,
                                     avo_voice_analysis **out, avo_error *err) {
    if (!clips || clip_count <= 0 || !out)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "no recordings to analyse");
    int min_rate = clips[0].sample_rate;
    for (int i = 1; i < clip_count; i++) min_rate = clips[i].sample_rate < min_rate ? clips[i].sample_rate : min_rate;
    avo_voice_analysis *a = analysis_alloc(GRID_SIZE);
    double *sum = calloc(GRID_SIZE, sizeof(double));
    if (!a || !sum) {
        avo_voice_analysis_free(a);
        free(sum);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    }
    a->sample_rate = min_rate;
    envelope_grid(a->grid_hz, GRID_SIZE, 60.0, 0.45 * min_rate);
    float *f0s = NULL;
    size_t f0_count = 0, f0_cap = 0;
    int64_t voiced = 0;
    avo_status st = AVO_OK;
    for (int i = 0; i < clip_count && !st; i++)
        st = analyse_clip(&clips[i], a->grid_hz, preset, threads, sum, &voiced, &f0s, &f0_count, &f0_cap, err);
    if (!st && voiced == 0)
        st = avo_error_set(err, AVO_ERR_VALIDATION, "no voiced (sung or spoken) frames found in the recordings");
    if (!st) {
        for (int k = 0; k < GRID_SIZE; k++) a->mean_log_env[k] = (float)(sum[k] / (double)voiced);
        qsort(f0s, f0_count, sizeof(float), compare_float);
        a->summary.sample_rate = min_rate;
        a->summary.voiced_frames = voiced;
        a->summary.voiced_seconds = (double)voiced * converter_frame_period(preset);
        a->summary.f0_median_hz = f0s[f0_count / 2];
        a->summary.f0_low_hz = f0s[f0_count / 20];
        a->summary.f0_high_hz = f0s[f0_count - 1 - f0_count / 20];
    }
    free(sum);
    free(f0s);
    if (st) {
        avo_voice_analysis_free(a);
        return st;
    }
    *out = a;
    return AVO_OK;
}

void avo_voice_analysis_free(avo_voice_analysis *a) {
    if (!a) return;
    free(a->grid_hz);
    free(a->mean_log_env);
    free(a);
}

void avo_voice_analysis_summary(const avo_voice_analysis *a, avo_voice_summary *out) { *out = a->summary; }

/* Stored form (little-endian): magic, u32 version, u32 grid size, i32 rate, i64 voiced frames,
 * f64 voiced seconds, f64 f0 median/low/high, then grid_hz[n] and mean_log_env[n] as f32. */
typedef struct stored_header {
    char magic[8];
    uint32_t version;
    uint32_t grid_size;
    int32_t sample_rate;
    int32_t reserved;
    int64_t voiced_frames;
    double voiced_seconds, f0_median_hz, f0_low_hz, f0_high_hz;
} stored_header;

avo_status avo_voice_analysis_save(const avo_voice_analysis *a, void **data, size_t *size, avo_error *err) {
    const size_t n = (size_t)a->grid_size;
    const size_t total = sizeof(stored_header) + 2 * n * sizeof(float);
    unsigned char *buf = malloc(total);
    if (!buf) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    stored_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, MAGIC, sizeof MAGIC);
    h.version = FORMAT_VERSION;
    h.grid_size = (uint32_t)n;
    h.sample_rate = a->sample_rate;
    h.voiced_frames = a->summary.voiced_frames;
    h.voiced_seconds = a->summary.voiced_seconds;
    h.f0_median_hz = a->summary.f0_median_hz;
    h.f0_low_hz = a->summary.f0_low_hz;
    h.f0_high_hz = a->summary.f0_high_hz;
    memcpy(buf, &h, sizeof h);
    memcpy(buf + sizeof h, a->grid_hz, n * sizeof(float));
    memcpy(buf + sizeof h + n * sizeof(float), a->mean_log_env, n * sizeof(float));
    *data = buf;
    *size = total;
    return AVO_OK;
}

avo_status avo_voice_analysis_load(const void *data, size_t size, avo_voice_analysis **out, avo_error *err) {
    stored_header h;
    if (!data || size < sizeof h)
        return avo_error_set(err, AVO_ERR_FORMAT, "voice analysis data is truncated; recreate the profile");
    memcpy(&h, data, sizeof h);
    if (memcmp(h.magic, MAGIC, sizeof MAGIC) != 0)
        return avo_error_set(err, AVO_ERR_FORMAT, "voice analysis data is not in AutoVoice's format");
    if (h.version != FORMAT_VERSION)
        return avo_error_set(err, AVO_ERR_FORMAT,
                             "voice analysis format version %u is not supported (this build reads %u); "
                             "recreate the profile",
                             h.version, FORMAT_VERSION);
    if (h.grid_size < 2 || h.grid_size > 4096 || size != sizeof h + 2 * (size_t)h.grid_size * sizeof(float) ||
        h.sample_rate < 8000 || h.sample_rate > 384000)
        return avo_error_set(err, AVO_ERR_FORMAT, "voice analysis data is damaged; recreate the profile");
    avo_voice_analysis *a = analysis_alloc((int)h.grid_size);
    if (!a) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    const unsigned char *p = (const unsigned char *)data + sizeof h;
    memcpy(a->grid_hz, p, h.grid_size * sizeof(float));
    memcpy(a->mean_log_env, p + h.grid_size * sizeof(float), h.grid_size * sizeof(float));
    for (uint32_t k = 0; k < h.grid_size; k++) {
        if (!isfinite(a->grid_hz[k]) || !isfinite(a->mean_log_env[k]) || (k && a->grid_hz[k] <= a->grid_hz[k - 1])) {
            avo_voice_analysis_free(a);
            return avo_error_set(err, AVO_ERR_FORMAT, "voice analysis data is damaged; recreate the profile");
        }
    }
    a->sample_rate = h.sample_rate;
    a->summary.sample_rate = h.sample_rate;
    a->summary.voiced_frames = h.voiced_frames;
    a->summary.voiced_seconds = h.voiced_seconds;
    a->summary.f0_median_hz = h.f0_median_hz;
    a->summary.f0_low_hz = h.f0_low_hz;
    a->summary.f0_high_hz = h.f0_high_hz;
    *out = a;
    return AVO_OK;
}
