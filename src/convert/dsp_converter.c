/* The DSP converter: vocoder analysis of the source, target timbre from the profile, resynthesis.
 *
 * Timbre moves in two steps. First a vocal-tract-length warp: the whole envelope is stretched along
 * frequency by the ratio that best maps the source's average envelope onto the target's (formants
 * move). Then a smooth equaliser takes what difference remains. The melody is the source F0,
 * transposed; timing and dynamics are the source's. */
#include "converter_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct dsp_state {
    const avo_voice_analysis *target;
} dsp_state;

static int working_rate(avo_preset preset, int input_rate) {
    int w = preset == AVO_PRESET_FAST ? 24000 : preset == AVO_PRESET_BALANCED ? 32000 : 48000;
    return input_rate < w ? input_rate : w;
}

static double median_voiced_f0(const avo_voice_params *p) {
    float *v = malloc(sizeof(float) * (size_t)(p->frames ? p->frames : 1));
    size_t n = 0;
    for (int64_t t = 0; v && t < p->frames; t++)
        if (p->f0_hz[t] > 0.0f) v[n++] = p->f0_hz[t];
    double med = 0.0;
    if (n) {
        /* partial selection is enough, but sorting a few thousand values costs nothing here */
        for (size_t i = 1; i < n; i++) {
            float x = v[i];
            size_t j = i;
            while (j > 0 && v[j - 1] > x) v[j] = v[j - 1], j--;
            v[j] = x;
        }
        med = v[n / 2];
    }
    free(v);
    return med;
}

/* Semitones to add so the source's median lands in the target's octave, plus the user's transpose. */
static double choose_transpose(const avo_convert_options *opt, double source_median, double target_median) {
    double t = opt->transpose_semitones;
    if (opt->auto_transpose && source_median > 0.0 && target_median > 0.0) {
        double shifted = source_median * pow(2.0, t / 12.0);
        double octaves = round(log2(target_median / shifted));
        t += 12.0 * octaves;
    }
    return t;
}

/* Value of a grid-sampled curve at frequency hz (linear in frequency, clamped at the ends). */
double curve_at(const float *grid, const double *val, int n, double hz) {
    if (hz <= grid[0]) return val[0];
    if (hz >= grid[n - 1]) return val[n - 1];
    int lo = 0, hi = n - 1;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (grid[mid] <= hz) lo = mid;
        else hi = mid;
    }
    double frac = (hz - grid[lo]) / (grid[hi] - grid[lo]);
    return val[lo] * (1.0 - frac) + val[hi] * frac;
}

/* Warp ratio that best maps the source's mean log envelope onto the target's, shape only (levels removed). */
static double best_warp(const float *grid, const double *src, const double *tgt, int n) {
    double best_ratio = 1.0, best_cost = HUGE_VAL;
    for (double ratio = 0.80; ratio <= 1.25 + 1e-9; ratio += 0.005) {
        double diff_sum = 0.0, diff_sq = 0.0;
        int used = 0;
        for (int k = 0; k < n; k++) {
            double f = grid[k] / ratio;
            if (f < grid[0] || f > grid[n - 1]) continue;
            double d = tgt[k] - curve_at(grid, src, n, f);
            diff_sum += d;
            diff_sq += d * d;
            used++;
        }
        if (used < n / 2) continue;
        double cost = diff_sq / used - (diff_sum / used) * (diff_sum / used); /* variance: level-free */
        if (cost < best_cost) best_cost = cost, best_ratio = ratio;
    }
    return best_ratio;
}

/* Smooth per-grid-point gains (log power) that take the warped source's average envelope to the target's. */
static void equaliser_curve(const float *grid, const double *src, const double *tgt, int n, double amount, double *eq) {
    double mean = 0.0;
    for (int k = 0; k < n; k++) mean += tgt[k] - src[k];
    mean /= n;
    for (int k = 0; k < n; k++) {
        double acc = 0.0;
        int cnt = 0;
        for (int j = k - 3; j <= k + 3; j++) {
            if (j < 0 || j >= n) continue;
            acc += tgt[j] - src[j] - mean;
            cnt++;
        }
        /* Keep the correction within +-12 dB of power: beyond that it is more likely noise than timbre. */
        double v = amount * acc / cnt;
        eq[k] = v > 2.76 ? 2.76 : v < -2.76 ? -2.76 : v;
    }
    (void)grid;
}

/* Applies eq (log power on the grid) to every frame; unvoiced frames get it scaled by 2*protect. */
static void apply_equaliser(avo_voice_params *p, const float *grid, const double *eq, int n, double band_top_hz,
                            double protect) {
    const double hz_per_bin = (double)p->sample_rate / p->fft_size;
    double *gain = malloc(sizeof(double) * (size_t)p->bins);
    double *gain_unvoiced = malloc(sizeof(double) * (size_t)p->bins);
    if (!gain || !gain_unvoiced) {
        free(gain);
        free(gain_unvoiced);
        return;
    }
    const double unvoiced_amount = protect >= 0.5 ? 1.0 : protect <= 0.0 ? 0.0 : 2.0 * protect;
    for (int b = 0; b < p->bins; b++) {
        double hz = b * hz_per_bin;
        double g = curve_at(grid, eq, n, hz);
        /* Above the target's band we know nothing of its timbre: fade the correction out over an octave. */
        if (hz > band_top_hz) g *= fmax(0.0, 1.0 - log2(hz / band_top_hz));
        gain[b] = exp(g);
        gain_unvoiced[b] = exp(g * unvoiced_amount);
    }
    for (int64_t t = 0; t < p->frames; t++) {
        float *env = p->envelope + t * p->bins;
        const double *gb = p->f0_hz[t] > 0.0f ? gain : gain_unvoiced;
        for (int b = 0; b < p->bins; b++) env[b] = (float)(env[b] * gb[b]);
    }
    free(gain);
    free(gain_unvoiced);
}

/* Blends the output's loudness contour toward the source's: gain = (rms_src / rms_out)^(1 - rms_mix). */
static void mix_rms(const float *src, float *out, int64_t n, int rate, double rms_mix) {
    if (rms_mix >= 1.0) return;
    const int hop = rate / 100;
    const int64_t frames = n / hop + 1;
    float *g = malloc(sizeof(float) * (size_t)frames);
    if (!g) return;
    for (int64_t f = 0; f < frames; f++) {
        int64_t a = f * hop - hop, b = f * hop + hop;
        if (a < 0) a = 0;
        if (b > n) b = n;
        double es = 1e-10, eo = 1e-10;
        for (int64_t i = a; i < b; i++) es += (double)src[i] * src[i], eo += (double)out[i] * out[i];
        double r = pow(sqrt(es / eo), 1.0 - rms_mix);
        g[f] = (float)(r > 8.0 ? 8.0 : r);
    }
    for (int64_t i = 0; i < n; i++) {
        double pos = (double)i / hop;
        int64_t f = (int64_t)pos;
        double frac = pos - (double)f;
        float gf = f + 1 < frames ? (float)(g[f] * (1.0 - frac) + g[f + 1] * frac) : g[frames - 1];
        out[i] *= gf;
    }
    free(g);
}

typedef struct conversion_buffers {
    avo_audio mono, work, synth, back;
    avo_vocoder *vocoder;
    avo_voice_params params;
    double *src_env, *tgt_env, *eq;
    float *grid;
} conversion_buffers;

static void buffers_free(conversion_buffers *b) {
    avo_audio_free(&b->mono);
    avo_audio_free(&b->work);
    avo_audio_free(&b->synth);
    avo_audio_free(&b->back);
    avo_vocoder_free(b->vocoder);
    avo_voice_params_free(&b->params);
    free(b->src_env);
    free(b->tgt_env);
    free(b->eq);
    free(b->grid);
}

/* Moves the analysed source toward the target: warp, equalise, transpose. */
static avo_status shape_timbre(avo_converter *c, conversion_buffers *b, avo_error *err) {
    const avo_voice_analysis *target = ((dsp_state *)c->state)->target;
    const avo_convert_options *opt = &c->options;
    const int n = target->grid_size;
    double top = target->grid_hz[n - 1];
    if (top > 0.45 * b->params.sample_rate) top = 0.45 * b->params.sample_rate;
    /* Grid over the band both sides know. */
    envelope_grid(b->grid, n, target->grid_hz[0], top);
    double *tgt_full = malloc(sizeof(double) * (size_t)n);
    if (!tgt_full) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    for (int k = 0; k < n; k++) tgt_full[k] = target->mean_log_env[k];
    for (int k = 0; k < n; k++) b->tgt_env[k] = curve_at(target->grid_hz, tgt_full, n, b->grid[k]);
    free(tgt_full);

    double ratio = 1.0;
    if (mean_voiced_log_envelope(&b->params, b->grid, n, b->src_env) > 0)
        ratio = best_warp(b->grid, b->src_env, b->tgt_env, n);
    double amount = opt->retrieval_ratio < 0 ? 0 : opt->retrieval_ratio > 1 ? 1 : opt->retrieval_ratio;
    double applied = pow(ratio, amount) * pow(2.0, opt->formant_shift_semitones / 12.0);
    avo_status st = AVO_OK;
    if (fabs(applied - 1.0) > 1e-6) st = avo_voice_params_warp_envelope(&b->params, applied, err);
    if (st) return st;
    c->info.formant_warp_ratio = applied;
    if (mean_voiced_log_envelope(&b->params, b->grid, n, b->src_env) > 0) {
        equaliser_curve(b->grid, b->src_env, b->tgt_env, n, amount, b->eq);
        apply_equaliser(&b->params, b->grid, b->eq, n, top, opt->protect);
    }
    st = retrieval_correct(&b->params, target, amount, top, opt->threads, err);
    if (st) return st;
    double t = choose_transpose(opt, median_voiced_f0(&b->params), target->summary.f0_median_hz);
    c->info.applied_transpose_semitones = t;
    avo_voice_params_transpose(&b->params, t);
    return AVO_OK;
}

static avo_status dsp_run(avo_converter *c, const avo_audio *vocals, const avo_f0_track *f0, avo_audio *out,
                          avo_progress_fn progress, void *user, avo_error *err) {
    const avo_convert_options *opt = &c->options;
    const int n = ((dsp_state *)c->state)->target->grid_size;
    conversion_buffers b;
    memset(&b, 0, sizeof b);
    b.src_env = calloc((size_t)n, sizeof(double));
    b.tgt_env = calloc((size_t)n, sizeof(double));
    b.eq = calloc((size_t)n, sizeof(double));
    b.grid = calloc((size_t)n, sizeof(float));
    avo_status st = b.src_env && b.tgt_env && b.eq && b.grid ? AVO_OK
                                                              : avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    if (!st) st = avo_audio_to_mono(vocals, &b.mono, err);
    if (!st) st = avo_audio_resample(&b.mono, working_rate(opt->preset, vocals->sample_rate), &b.work, err);
    if (!st) {
        avo_vocoder_config vcfg;
        avo_vocoder_config_default(&vcfg, b.work.sample_rate);
        vcfg.frame_period_seconds = converter_frame_period(opt->preset);
        vcfg.threads = opt->threads;
        st = avo_vocoder_create(&vcfg, &b.vocoder, err);
    }
    if (progress) progress("conversion", 0.05, user);
    if (!st) st = avo_vocoder_analyze(b.vocoder, b.work.samples, b.work.frames, f0, &b.params, err);
    if (progress) progress("conversion", 0.5, user);
    if (!st) st = shape_timbre(c, &b, err);
    if (!st) st = avo_audio_alloc(&b.synth, b.work.sample_rate, 1, b.work.frames, err);
    if (!st) st = avo_vocoder_synthesize(b.vocoder, &b.params, b.synth.samples, b.synth.frames, err);
    if (progress) progress("conversion", 0.9, user);
    if (!st) {
        mix_rms(b.work.samples, b.synth.samples, b.work.frames, b.work.sample_rate, opt->rms_mix);
        st = avo_audio_resample(&b.synth, vocals->sample_rate, &b.back, err);
    }
    if (!st) st = avo_audio_alloc(out, vocals->sample_rate, 1, vocals->frames, err);
    if (!st) {
        int64_t m = b.back.frames < out->frames ? b.back.frames : out->frames;
        memcpy(out->samples, b.back.samples, sizeof(float) * (size_t)m);
    }
    buffers_free(&b);
    if (progress && !st) progress("conversion", 1.0, user);
    return st;
}

static void dsp_destroy(void *state) { free(state); }

static const converter_ops DSP_OPS = {dsp_run, dsp_destroy};

void avo_convert_options_default(avo_convert_options *opt) {
    memset(opt, 0, sizeof *opt);
    opt->retrieval_ratio = 1.0;
    opt->protect = 0.33;
    opt->rms_mix = 0.5;
    opt->preset = AVO_PRESET_BALANCED;
}

avo_status avo_converter_create_dsp(const avo_voice_analysis *target, const avo_convert_options *opt,
                                    avo_converter **out, avo_error *err) {
    if (!target || !out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "converter needs a target voice");
    avo_converter *c = calloc(1, sizeof *c);
    dsp_state *s = calloc(1, sizeof *s);
    if (!c || !s) {
        free(c);
        free(s);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    }
    s->target = target;
    c->ops = &DSP_OPS;
    c->state = s;
    if (opt) c->options = *opt;
    else avo_convert_options_default(&c->options);
    c->info.name = "dsp-envelope-warp";
    c->info.backend = "cpu";
    c->info.device = "cpu";
    c->info.precision = "fp32";
    c->info.formant_warp_ratio = 1.0;
    *out = c;
    return AVO_OK;
}

void avo_converter_free(avo_converter *c) {
    if (!c) return;
    if (c->ops && c->ops->destroy) c->ops->destroy(c->state);
    free(c);
}

avo_status avo_converter_run(avo_converter *c, const avo_audio *vocals, const avo_f0_track *f0, avo_audio *out,
                             avo_progress_fn progress, void *user, avo_error *err) {
    if (!c || !vocals || !out || vocals->frames <= 0)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "nothing to convert");
    return c->ops->run(c, vocals, f0, out, progress, user, err);
}

void avo_converter_get_info(const avo_converter *c, avo_converter_info *out) { *out = c->info; }
