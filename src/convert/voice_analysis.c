/* Target voice analysis: what the DSP converter learns from a profile's recordings.
 *
 * Every voiced 10 ms frame of the target is kept as a log spectral envelope on a mel-spaced grid;
 * the converter retrieves from these the frames that best match each source frame. Their mean is
 * the target's average timbre, used for the vocal-tract warp and the equaliser. Since version 3 each
 * voiced frame also carries its F0 and aperiodicity (breathiness), and the unvoiced frames that carry
 * sound (consonants, breaths) are kept too, so conversion can take those from the target as well. */
#include "converter_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { GRID_SIZE = 96 };
static const char MAGIC[8] = {'A', 'V', 'O', 'V', 'O', 'I', 'C', 'E'};
static const uint32_t FORMAT_VERSION = 3;
static const uint32_t FORMAT_VERSION_V2 = 2; /* still read: envelopes only */

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

/* Growable collection of analysed frames (voiced and unvoiced): log envelope and aperiodicity on the
 * grid, and F0 (0 = unvoiced). */
typedef struct frame_pool {
    float *env;
    float *ap;
    float *f0;
    int64_t count, cap, voiced;
} frame_pool;

static avo_status pool_add(frame_pool *pool, const avo_voice_params *p, const float *grid, avo_error *err) {
    const double hz_per_bin = (double)p->sample_rate / p->fft_size;
    for (int64_t t = 0; t < p->frames; t++) {
        if (pool->count == pool->cap) {
            int64_t ncap = pool->cap ? pool->cap * 2 : 4096;
            float *e = realloc(pool->env, sizeof(float) * (size_t)(ncap * GRID_SIZE));
            if (e) pool->env = e;
            float *a = e ? realloc(pool->ap, sizeof(float) * (size_t)(ncap * GRID_SIZE)) : NULL;
            if (a) pool->ap = a;
            float *f = a ? realloc(pool->f0, sizeof(float) * (size_t)ncap) : NULL;
            if (f) pool->f0 = f;
            if (!e || !a || !f) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory analysing the recordings");
            pool->cap = ncap;
        }
        envelope_on_grid(p, t, grid, GRID_SIZE, pool->env + pool->count * GRID_SIZE);
        const float *ap = p->aperiodicity + t * p->bins;
        float *dst = pool->ap + pool->count * GRID_SIZE;
        for (int k = 0; k < GRID_SIZE; k++) {
            double pos = grid[k] / hz_per_bin;
            int b = (int)pos;
            if (b >= p->bins - 1) b = p->bins - 2;
            double frac = pos - b, v = ap[b] * (1.0 - frac) + ap[b + 1] * frac;
            dst[k] = (float)(v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v);
        }
        pool->f0[pool->count++] = p->f0_hz[t];
        pool->voiced += p->f0_hz[t] > 0.0f;
    }
    return AVO_OK;
}

/* Analyses one clip with the vocoder and adds its voiced frames to the pool. */
static avo_status analyse_clip(const avo_audio *clip, const float *grid, avo_preset preset, int threads,
                               frame_pool *pool, avo_error *err) {
    avo_audio mono = {0};
    avo_vocoder *voc = NULL;
    avo_f0_track track = {0};
    avo_voice_params params = {0};
    avo_status st = avo_audio_to_mono(clip, &mono, err);
    if (!st) {
        avo_f0_config fcfg;
        avo_f0_config_default(&fcfg);
        fcfg.method = avo_f0_method_for_preset(preset);
        fcfg.hop_seconds = VOICE_ANALYSIS_FRAME_PERIOD;
        fcfg.threads = threads;
        st = avo_f0_estimate(mono.samples, mono.frames, mono.sample_rate, &fcfg, &track, err);
    }
    if (!st) {
        avo_vocoder_config vcfg;
        avo_vocoder_config_default(&vcfg, mono.sample_rate);
        vcfg.frame_period_seconds = VOICE_ANALYSIS_FRAME_PERIOD;
        vcfg.threads = threads;
        st = avo_vocoder_create(&vcfg, &voc, err);
    }
    if (!st) st = avo_vocoder_analyze(voc, mono.samples, mono.frames, &track, &params, err);
    if (!st) st = pool_add(pool, &params, grid, err);
    avo_voice_params_free(&params);
    avo_vocoder_free(voc);
    avo_f0_track_free(&track);
    avo_audio_free(&mono);
    return st;
}

/* with_v3: also the F0, aperiodicity and unvoiced arrays (unvoiced_count rows). */
static avo_voice_analysis *analysis_alloc(int grid_size, int64_t frames, int with_v3, int64_t unvoiced) {
    avo_voice_analysis *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->grid_size = grid_size;
    a->frame_count = frames;
    a->grid_hz = calloc((size_t)grid_size, sizeof(float));
    a->mean_log_env = calloc((size_t)grid_size, sizeof(float));
    a->frames = calloc((size_t)(frames * grid_size + 1), sizeof(float));
    int ok = a->grid_hz && a->mean_log_env && a->frames;
    if (ok && with_v3) {
        a->unvoiced_count = unvoiced;
        a->frame_f0 = calloc((size_t)frames + 1, sizeof(float));
        a->frame_ap = calloc((size_t)(frames * grid_size + 1), sizeof(float));
        a->unvoiced_env = calloc((size_t)(unvoiced * grid_size + 1), sizeof(float));
        ok = a->frame_f0 && a->frame_ap && a->unvoiced_env;
    }
    if (!ok) {
        avo_voice_analysis_free(a);
        return NULL;
    }
    return a;
}

/* Mean of a log envelope row: its level. */
static double row_level(const float *row) {
    double s = 0.0;
    for (int k = 0; k < GRID_SIZE; k++) s += row[k];
    return s / GRID_SIZE;
}

/* Keeps at most VOICE_ANALYSIS_MAX_FRAMES voiced frames, evenly spread, and the unvoiced frames that
 * carry sound (level within 45 dB of the voiced median, so silence and hum stay out), at most
 * VOICE_ANALYSIS_MAX_UNVOICED; fills the mean and the F0 summary. */
static avo_status finish_analysis(const frame_pool *pool, int rate, const float *grid, avo_voice_analysis **out,
                                  avo_error *err) {
    const int64_t nv = pool->voiced;
    int64_t *vidx = malloc(sizeof(int64_t) * (size_t)(pool->count + 1));
    float *f0s = malloc(sizeof(float) * (size_t)(nv + 1));
    float *levels = malloc(sizeof(float) * (size_t)(nv + 1));
    if (!vidx || !f0s || !levels) {
        free(vidx), free(f0s), free(levels);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    }
    int64_t j = 0;
    for (int64_t i = 0; i < pool->count; i++)
        if (pool->f0[i] > 0.0f) levels[j] = (float)row_level(pool->env + i * GRID_SIZE), f0s[j] = pool->f0[i], vidx[j++] = i;
    qsort(levels, (size_t)nv, sizeof(float), compare_float);
    const double floor_level = levels[nv / 2] - 45.0 / (10.0 / log(10.0)); /* 45 dB below, natural log */
    free(levels);
    int64_t nu = 0;
    for (int64_t i = 0; i < pool->count; i++)
        nu += pool->f0[i] <= 0.0f && row_level(pool->env + i * GRID_SIZE) > floor_level;
    const int64_t keep = nv < VOICE_ANALYSIS_MAX_FRAMES ? nv : VOICE_ANALYSIS_MAX_FRAMES;
    const int64_t keep_u = nu < VOICE_ANALYSIS_MAX_UNVOICED ? nu : VOICE_ANALYSIS_MAX_UNVOICED;
    avo_voice_analysis *a = analysis_alloc(GRID_SIZE, keep, 1, keep_u);
    if (!a) {
        free(vidx), free(f0s);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    }
    a->sample_rate = rate;
    memcpy(a->grid_hz, grid, sizeof(float) * GRID_SIZE);
    double sum[GRID_SIZE] = {0};
    for (int64_t i = 0; i < keep; i++) {
        const int64_t f = vidx[i * nv / keep];
        const float *src = pool->env + f * GRID_SIZE;
        memcpy(a->frames + i * GRID_SIZE, src, sizeof(float) * GRID_SIZE);
        memcpy(a->frame_ap + i * GRID_SIZE, pool->ap + f * GRID_SIZE, sizeof(float) * GRID_SIZE);
        a->frame_f0[i] = pool->f0[f];
        for (int k = 0; k < GRID_SIZE; k++) sum[k] += src[k];
    }
    for (int k = 0; k < GRID_SIZE; k++) a->mean_log_env[k] = (float)(sum[k] / (double)keep);
    /* unvoiced frames with sound, evenly subsampled to keep_u */
    int64_t u = 0, seen = 0;
    for (int64_t i = 0; i < pool->count && u < keep_u; i++) {
        if (pool->f0[i] > 0.0f || row_level(pool->env + i * GRID_SIZE) <= floor_level) continue;
        if (seen++ * keep_u >= u * nu) /* take the frame when the even spread reaches it */
            memcpy(a->unvoiced_env + (u++) * GRID_SIZE, pool->env + i * GRID_SIZE, sizeof(float) * GRID_SIZE);
    }
    a->unvoiced_count = u;
    free(vidx);
    qsort(f0s, (size_t)nv, sizeof(float), compare_float);
    const size_t n = (size_t)nv;
    a->summary.sample_rate = rate;
    a->summary.voiced_frames = nv;
    a->summary.voiced_seconds = (double)nv * VOICE_ANALYSIS_FRAME_PERIOD;
    a->summary.f0_median_hz = f0s[n / 2];
    a->summary.f0_low_hz = f0s[n / 20];
    a->summary.f0_high_hz = f0s[n - 1 - n / 20];
    free(f0s);
    *out = a;
    return AVO_OK;
}

avo_status avo_voice_analysis_create(const avo_audio *clips, int clip_count, avo_preset preset, int threads,
                                     avo_voice_analysis **out, avo_error *err) {
    if (!clips || clip_count <= 0 || !out)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "no recordings to analyse");
    int min_rate = clips[0].sample_rate;
    for (int i = 1; i < clip_count; i++) min_rate = clips[i].sample_rate < min_rate ? clips[i].sample_rate : min_rate;
    float grid[GRID_SIZE];
    envelope_grid(grid, GRID_SIZE, 60.0, 0.45 * min_rate);
    frame_pool pool = {0};
    avo_status st = AVO_OK;
    for (int i = 0; i < clip_count && !st; i++) st = analyse_clip(&clips[i], grid, preset, threads, &pool, err);
    if (!st && pool.voiced == 0)
        st = avo_error_set(err, AVO_ERR_VALIDATION, "no voiced (sung or spoken) frames found in the recordings");
    if (!st) st = finish_analysis(&pool, min_rate, grid, out, err);
    free(pool.env);
    free(pool.ap);
    free(pool.f0);
    return st;
}

void avo_voice_analysis_free(avo_voice_analysis *a) {
    if (!a) return;
    free(a->grid_hz);
    free(a->mean_log_env);
    free(a->frames);
    free(a->frame_f0);
    free(a->frame_ap);
    free(a->unvoiced_env);
    free(a);
}

void avo_voice_analysis_summary(const avo_voice_analysis *a, avo_voice_summary *out) { *out = a->summary; }

/* Stored form (little-endian): header, then grid_hz[n], mean_log_env[n], frames[frame_count * n], all f32;
 * version 3 continues with frame_f0[frame_count], frame_ap[frame_count * n] and
 * unvoiced_env[unvoiced_count * n], the unvoiced count in the header's former reserved field. */
typedef struct stored_header {
    char magic[8];
    uint32_t version;
    uint32_t grid_size;
    int32_t sample_rate;
    int32_t unvoiced_count; /* version 2: reserved, 0 */
    int64_t voiced_frames;
    int64_t frame_count;
    double voiced_seconds, f0_median_hz, f0_low_hz, f0_high_hz;
} stored_header;

static size_t stored_size(uint32_t version, uint64_t grid, uint64_t frames, uint64_t unvoiced) {
    size_t floats = (size_t)(2 * grid + frames * grid);
    if (version >= 3) floats += (size_t)(frames + frames * grid + unvoiced * grid);
    return sizeof(stored_header) + sizeof(float) * floats;
}

avo_status avo_voice_analysis_save(const avo_voice_analysis *a, void **data, size_t *size, avo_error *err) {
    const int v3 = a->frame_f0 && a->frame_ap && a->unvoiced_env;
    const uint32_t version = v3 ? FORMAT_VERSION : FORMAT_VERSION_V2; /* a loaded v2 profile stays v2 */
    const size_t n = (size_t)a->grid_size, fc = (size_t)a->frame_count, uc = v3 ? (size_t)a->unvoiced_count : 0;
    const size_t total = stored_size(version, n, fc, uc);
    unsigned char *buf = malloc(total);
    if (!buf) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    stored_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, MAGIC, sizeof MAGIC);
    h.version = version;
    h.grid_size = (uint32_t)n;
    h.sample_rate = a->sample_rate;
    h.unvoiced_count = (int32_t)uc;
    h.voiced_frames = a->summary.voiced_frames;
    h.frame_count = a->frame_count;
    h.voiced_seconds = a->summary.voiced_seconds;
    h.f0_median_hz = a->summary.f0_median_hz;
    h.f0_low_hz = a->summary.f0_low_hz;
    h.f0_high_hz = a->summary.f0_high_hz;
    unsigned char *p = buf;
    memcpy(p, &h, sizeof h), p += sizeof h;
    memcpy(p, a->grid_hz, n * sizeof(float)), p += n * sizeof(float);
    memcpy(p, a->mean_log_env, n * sizeof(float)), p += n * sizeof(float);
    memcpy(p, a->frames, fc * n * sizeof(float)), p += fc * n * sizeof(float);
    if (v3) {
        memcpy(p, a->frame_f0, fc * sizeof(float)), p += fc * sizeof(float);
        memcpy(p, a->frame_ap, fc * n * sizeof(float)), p += fc * n * sizeof(float);
        memcpy(p, a->unvoiced_env, uc * n * sizeof(float));
    }
    *data = buf;
    *size = total;
    return AVO_OK;
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static int all_within(const float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++)
        if (!(x[i] >= lo && x[i] <= hi)) return 0;
    return 1;
}

avo_status avo_voice_analysis_load(const void *data, size_t size, avo_voice_analysis **out, avo_error *err) {
    stored_header h;
    if (!data || size < sizeof h)
        return avo_error_set(err, AVO_ERR_FORMAT, "voice analysis data is truncated; recreate the profile");
    memcpy(&h, data, sizeof h);
    if (memcmp(h.magic, MAGIC, sizeof MAGIC) != 0)
        return avo_error_set(err, AVO_ERR_FORMAT, "voice analysis data is not in AutoVoice's format");
    if (h.version != FORMAT_VERSION && h.version != FORMAT_VERSION_V2)
        return avo_error_set(err, AVO_ERR_FORMAT,
                             "voice analysis format version %u is not supported (this build reads %u and %u); "
                             "recreate the profile",
                             h.version, FORMAT_VERSION_V2, FORMAT_VERSION);
    const int v3 = h.version >= 3;
    if (!v3) h.unvoiced_count = 0; /* reserved in version 2 */
    if (h.grid_size < 2 || h.grid_size > 4096 || h.frame_count < 1 || h.frame_count > VOICE_ANALYSIS_MAX_FRAMES ||
        h.unvoiced_count < 0 || h.unvoiced_count > VOICE_ANALYSIS_MAX_UNVOICED ||
        size != stored_size(h.version, h.grid_size, (uint64_t)h.frame_count, (uint64_t)h.unvoiced_count) ||
        h.sample_rate < 8000 || h.sample_rate > 384000)
        return avo_error_set(err, AVO_ERR_FORMAT, "voice analysis data is damaged; recreate the profile");
    avo_voice_analysis *a = analysis_alloc((int)h.grid_size, h.frame_count, v3, h.unvoiced_count);
    if (!a) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    const unsigned char *p = (const unsigned char *)data + sizeof h;
    const size_t n = h.grid_size, fc = (size_t)h.frame_count, uc = (size_t)h.unvoiced_count;
    memcpy(a->grid_hz, p, n * sizeof(float)), p += n * sizeof(float);
    memcpy(a->mean_log_env, p, n * sizeof(float)), p += n * sizeof(float);
    memcpy(a->frames, p, fc * n * sizeof(float)), p += fc * n * sizeof(float);
    int ok = all_finite(a->grid_hz, n) && all_finite(a->mean_log_env, n) && all_finite(a->frames, fc * n);
    if (v3) {
        memcpy(a->frame_f0, p, fc * sizeof(float)), p += fc * sizeof(float);
        memcpy(a->frame_ap, p, fc * n * sizeof(float)), p += fc * n * sizeof(float);
        memcpy(a->unvoiced_env, p, uc * n * sizeof(float));
        ok = ok && all_within(a->frame_f0, fc, 1.0f, 20000.0f) && all_within(a->frame_ap, fc * n, 0.0f, 1.0f) &&
             all_finite(a->unvoiced_env, uc * n);
    }
    for (size_t k = 1; ok && k < n; k++) ok = a->grid_hz[k] > a->grid_hz[k - 1];
    if (!ok) {
        avo_voice_analysis_free(a);
        return avo_error_set(err, AVO_ERR_FORMAT, "voice analysis data is damaged; recreate the profile");
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
