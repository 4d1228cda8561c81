/* Vocoder context, parameter storage, analysis driver and parameter modifications. */
#include "vocoder_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static int pow2_above(double x) {
    /* 2^(1 + floor(log2(x))): the size WORLD picks so that x samples fit with room to spare */
    int p = 1;
    while (p <= x / 2.0 && p < (1 << 24)) p *= 2;
    return p * 2 > 1 << 24 ? 1 << 24 : p * 2;
}

void avo_vocoder_config_default(avo_vocoder_config *cfg, int sample_rate) {
    memset(cfg, 0, sizeof *cfg);
    cfg->sample_rate = sample_rate;
    cfg->frame_period_seconds = 0.005;
    cfg->fft_size = 0;
    cfg->f0_floor_hz = 71.0;
    cfg->threads = 0;
    cfg->q1 = -1.0 / 24.0;
}

static void work_free(voc_work *w) {
    fftwf_free(w->wave);
    fftwf_free(w->wave2);
    fftwf_free(w->spec);
    fftwf_free(w->spec2);
    fftwf_free(w->spec3);
    fftwf_free(w->a);
    fftwf_free(w->b);
    fftwf_free(w->c);
    fftwf_free(w->cum);
    fftwf_free(w->win);
    fftwf_free(w->dwave);
    fftwf_free(w->dspec);
    fftwf_free(w->resp);
    fftwf_free(w->logs);
}

static int work_alloc(voc_work *w, int max_fft) {
    const size_t nb = (size_t)max_fft / 2 + 1;
    w->wave = fftwf_malloc(sizeof(float) * (size_t)max_fft);
    w->wave2 = fftwf_malloc(sizeof(float) * (size_t)max_fft);
    w->spec = fftwf_malloc(sizeof(fftwf_complex) * nb);
    w->spec2 = fftwf_malloc(sizeof(fftwf_complex) * nb);
    w->spec3 = fftwf_malloc(sizeof(fftwf_complex) * nb);
    w->a = fftwf_malloc(sizeof(float) * nb);
    w->b = fftwf_malloc(sizeof(float) * nb);
    w->c = fftwf_malloc(sizeof(float) * nb);
    w->cum = fftwf_malloc(sizeof(double) * (size_t)(2 * max_fft + 8));
    w->win = fftwf_malloc(sizeof(float) * (size_t)(max_fft + 2));
    w->dwave = fftwf_malloc(sizeof(float) * (size_t)max_fft);
    w->dspec = fftwf_malloc(sizeof(fftwf_complex) * nb);
    w->resp = fftwf_malloc(sizeof(float) * (size_t)max_fft);
    w->logs = fftwf_malloc(sizeof(float) * 4 * nb);
    return w->wave && w->wave2 && w->spec && w->spec2 && w->spec3 && w->a && w->b && w->c && w->cum && w->win &&
           w->dwave && w->dspec && w->resp && w->logs;
}

void avo_vocoder_free(avo_vocoder *v) {
    if (!v) return;
    if (v->work)
        for (int i = 0; i < v->threads; i++) work_free(&v->work[i]);
    free(v->work);
    if (v->r2c) fftwf_destroy_plan(v->r2c);
    if (v->c2r) fftwf_destroy_plan(v->c2r);
    if (v->d4c_r2c) fftwf_destroy_plan(v->d4c_r2c);
    if (v->lt_r2c) fftwf_destroy_plan(v->lt_r2c);
    fftwf_free(v->dc_remover);
    fftwf_free(v->d4c_win);
    free(v);
}

/* Plans are made on scratch arrays of the same alignment as every work buffer (fftwf_malloc).
 * FFTW_ESTIMATE: FFTW_MEASURE cost 0.5-2 s of planning per new set of sizes in each process (a
 * CLI run converts one song) and gave no consistent gain at these sizes (1024-8192 points, within
 * +-15% either way in a micro-benchmark), so it would not pay back on a 30 s song. */
static int make_plans(avo_vocoder *v) {
    voc_work *w = &v->work[0];
    const unsigned flags = FFTW_ESTIMATE;
    v->r2c = fftwf_plan_dft_r2c_1d(v->fft_size, w->wave, w->spec, flags);
    v->c2r = fftwf_plan_dft_c2r_1d(v->fft_size, w->spec, w->wave, flags);
    v->d4c_r2c = fftwf_plan_dft_r2c_1d(v->d4c_fft, w->wave, w->spec, flags);
    v->lt_r2c = fftwf_plan_dft_r2c_1d(v->lt_fft, w->wave, w->spec, flags);
    return v->r2c && v->c2r && v->d4c_r2c && v->lt_r2c;
}

avo_status avo_vocoder_create(const avo_vocoder_config *cfg, avo_vocoder **out, avo_error *err) {
    if (!cfg || !out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "vocoder: NULL config or output");
    *out = NULL;
    const int fs = cfg->sample_rate;
    if (fs < 4000 || fs > 384000)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "vocoder: sample rate %d Hz is outside 4000..384000 Hz; resample the input first", fs);
    if (!(cfg->frame_period_seconds > 0.0) || cfg->frame_period_seconds > 1.0)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "vocoder: frame period %g s must be in (0, 1] s (0.005 is usual)",
                             cfg->frame_period_seconds);
    const double floor_hz = cfg->f0_floor_hz > 0.0 ? cfg->f0_floor_hz : 71.0;
    if (floor_hz < 20.0 || floor_hz > fs / 8.0)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "vocoder: F0 floor %g Hz must be in 20..%g Hz",
                             floor_hz, fs / 8.0);
    if (!(cfg->q1 > -0.5 && cfg->q1 <= 0.0))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "vocoder: q1 %g must be in (-0.5, 0] (start from avo_vocoder_config_default)", cfg->q1);
    int fft = cfg->fft_size;
    if (fft == 0) fft = pow2_above(3.0 * fs / floor_hz + 1.0);
    if (fft < 64 || fft > (1 << 20) || (fft & 1))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "vocoder: FFT size %d must be even and in 64..1048576 (0 picks one)", fft);

    avo_vocoder *v = calloc(1, sizeof *v);
    if (!v) return avo_error_set(err, AVO_ERR_NO_MEMORY, "vocoder: out of memory");
    v->cfg = *cfg;
    v->cfg.f0_floor_hz = floor_hz;
    v->cfg.fft_size = fft;
    v->fs = fs;
    v->fft_size = fft;
    v->bins = fft / 2 + 1;
    v->ct_f0_floor = 3.0 * fs / (fft - 3.0);
#ifdef _OPENMP
    v->threads = cfg->threads > 0 ? cfg->threads : omp_get_max_threads();
#else
    v->threads = 1;
#endif
    if (v->threads < 1) v->threads = 1;
    v->cfg.threads = v->threads;

    v->d4c_fft = pow2_above(4.0 * fs / VOC_D4C_FLOOR_F0 + 1.0);
    v->lt_fft = pow2_above(3.0 * fs / 40.0 + 1.0);
    double top = fs / 2.0 - VOC_D4C_BAND_HZ;
    if (top > VOC_D4C_UPPER_HZ) top = VOC_D4C_UPPER_HZ;
    v->d4c_bands = top > 0.0 ? (int)(top / VOC_D4C_BAND_HZ) : 0;
    if (v->d4c_bands > 16) v->d4c_bands = 16;
    v->d4c_win_len = (int)(VOC_D4C_BAND_HZ * v->d4c_fft / fs) * 2 + 1;
    v->max_fft = fft;
    if (v->d4c_fft > v->max_fft) v->max_fft = v->d4c_fft;
    if (v->lt_fft > v->max_fft) v->max_fft = v->lt_fft;

    v->work = calloc((size_t)v->threads, sizeof(voc_work));
    v->dc_remover = fftwf_malloc(sizeof(float) * (size_t)fft);
    v->d4c_win = fftwf_malloc(sizeof(float) * (size_t)v->d4c_win_len);
    int ok = v->work && v->dc_remover && v->d4c_win;
    for (int i = 0; ok && i < v->threads; i++) ok = work_alloc(&v->work[i], v->max_fft);
    if (!ok) {
        avo_vocoder_free(v);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "vocoder: out of memory for %d thread buffers", cfg->threads);
    }
    if (!make_plans(v)) {
        avo_vocoder_free(v);
        return avo_error_set(err, AVO_ERR_INTERNAL, "vocoder: FFTW could not plan size %d", fft);
    }

    /* Hann-shaped DC remover over the response, normalised to sum 1. */
    double sum = 0.0;
    for (int i = 0; i < fft / 2; i++) {
        double h = 0.5 - 0.5 * cos(2.0 * M_PI * (i + 1.0) / (fft + 1.0));
        v->dc_remover[i] = v->dc_remover[fft - 1 - i] = (float)h;
        sum += 2.0 * h;
    }
    for (int i = 0; i < fft; i++) v->dc_remover[i] = (float)(v->dc_remover[i] / sum);
    /* Nuttall window across one aperiodicity band. */
    const int wl = v->d4c_win_len;
    for (int i = 0; i < wl; i++) {
        double t = wl > 1 ? i / (wl - 1.0) : 0.0;
        v->d4c_win[i] = (float)(0.355768 - 0.487396 * cos(2.0 * M_PI * t) + 0.144232 * cos(4.0 * M_PI * t) -
                                0.012604 * cos(6.0 * M_PI * t));
    }
    *out = v;
    return AVO_OK;
}

avo_status avo_voice_params_alloc(avo_voice_params *p, int sample_rate, int fft_size, int64_t frames,
                                  double frame_period_seconds, avo_error *err) {
    if (!p) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "voice params: NULL output");
    memset(p, 0, sizeof *p);
    if (sample_rate <= 0 || fft_size < 2 || frames < 1 || !(frame_period_seconds > 0.0))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "voice params: need rate > 0, FFT size >= 2, frames >= 1, frame period > 0 "
                             "(got %d, %d, %lld, %g)",
                             sample_rate, fft_size, (long long)frames, frame_period_seconds);
    const int bins = fft_size / 2 + 1;
    p->sample_rate = sample_rate;
    p->fft_size = fft_size;
    p->bins = bins;
    p->frames = frames;
    p->frame_period_seconds = frame_period_seconds;
    p->f0_hz = calloc((size_t)frames, sizeof(float));
    p->envelope = calloc((size_t)frames * (size_t)bins, sizeof(float));
    p->aperiodicity = calloc((size_t)frames * (size_t)bins, sizeof(float));
    if (!p->f0_hz || !p->envelope || !p->aperiodicity) {
        avo_voice_params_free(p);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "voice params: out of memory for %lld frames x %d bins",
                             (long long)frames, bins);
    }
    return AVO_OK;
}

void avo_voice_params_free(avo_voice_params *p) {
    if (!p) return;
    free(p->f0_hz);
    free(p->envelope);
    free(p->aperiodicity);
    memset(p, 0, sizeof *p);
}

void avo_voice_params_transpose(avo_voice_params *p, double semitones) {
    const float ratio = (float)pow(2.0, semitones / 12.0);
    for (int64_t i = 0; i < p->frames; i++)
        if (p->f0_hz[i] > 0.0f) p->f0_hz[i] *= ratio;
}

avo_status avo_voice_params_warp_envelope(avo_voice_params *p, double ratio, avo_error *err) {
    if (!p || !(ratio > 0.0) || !isfinite(ratio))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "envelope warp: ratio %g must be a positive number", ratio);
    const int bins = p->bins;
    float *row = malloc(sizeof(float) * (size_t)bins);
    if (!row) return avo_error_set(err, AVO_ERR_NO_MEMORY, "envelope warp: out of memory");
    const double inv = 1.0 / ratio;
    for (int64_t t = 0; t < p->frames; t++) {
        float *env = p->envelope + t * bins;
        memcpy(row, env, sizeof(float) * (size_t)bins);
        for (int k = 0; k < bins; k++) {
            double pos = k * inv; /* new(f) = old(f / ratio); beyond Nyquist holds the last bin */
            int i = (int)pos;
            if (i >= bins - 1) {
                env[k] = row[bins - 1];
                continue;
            }
            float fr = (float)(pos - i);
            /* interpolate in log power: formant peaks keep their shape */
            float l0 = logf(row[i] + 1e-30f), l1 = logf(row[i + 1] + 1e-30f);
            env[k] = expf(l0 + (l1 - l0) * fr);
        }
    }
    free(row);
    return AVO_OK;
}

/* F0 of track at time t: linear between voiced neighbours, 0 where the nearest frame is unvoiced. */
static double track_f0_at(const avo_f0_track *tr, double t) {
    if (tr->frames < 1 || !(tr->hop_seconds > 0.0)) return 0.0;
    double pos = t / tr->hop_seconds;
    if (pos <= 0.0) return tr->f0_hz[0] > 0.0f ? tr->f0_hz[0] : 0.0;
    int64_t i0 = (int64_t)pos;
    if (i0 >= tr->frames - 1) return tr->f0_hz[tr->frames - 1] > 0.0f ? tr->f0_hz[tr->frames - 1] : 0.0;
    double fr = pos - (double)i0;
    double a = tr->f0_hz[i0], b = tr->f0_hz[i0 + 1];
    if (a > 0.0 && b > 0.0) return a + (b - a) * fr;
    double nearest = fr < 0.5 ? a : b;
    return nearest > 0.0 ? nearest : 0.0;
}

avo_status avo_vocoder_analyze(avo_vocoder *v, const float *x, int64_t n, const avo_f0_track *f0,
                               avo_voice_params *out, avo_error *err) {
    if (out) memset(out, 0, sizeof *out);
    if (!v || !x || !out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "vocoder analysis: NULL argument");
    if (n < 1)
        return avo_error_set(err, AVO_ERR_INVALID_AUDIO, "vocoder analysis: the signal is empty; pass at least 1 sample");
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return avo_error_set(err, AVO_ERR_INVALID_AUDIO,
                                 "vocoder analysis: sample %lld is not finite (NaN or Inf); clean the input first",
                                 (long long)i);
    if (f0 && (f0->frames < 1 || !(f0->hop_seconds > 0.0) || !f0->f0_hz))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "vocoder analysis: the F0 track is empty");

    const double fp = v->cfg.frame_period_seconds;
    const int64_t frames = (int64_t)floor((double)n / (fp * v->fs)) + 1;
    avo_status st = avo_voice_params_alloc(out, v->fs, v->fft_size, frames, fp, err);
    if (st) return st;

    avo_f0_track own = {0};
    const avo_f0_track *track = f0;
    if (!track) {
        avo_f0_config fc;
        avo_f0_config_default(&fc);
        fc.method = AVO_F0_ACCURATE;
        fc.hop_seconds = fp;
        fc.threads = v->threads;
        st = avo_f0_estimate(x, n, v->fs, &fc, &own, err);
        if (st) {
            avo_voice_params_free(out);
            return avo_error_prefix(err, "vocoder analysis");
        }
        track = &own;
    }
    for (int64_t i = 0; i < frames; i++) out->f0_hz[i] = (float)track_f0_at(track, (double)i * fp);
    avo_f0_track_free(&own);

    const int nt = v->threads, bins = v->bins;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 8)
    for (int64_t i = 0; i < frames; i++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        voc_work *w = &v->work[tid];
        const double t = (double)i * fp;
        voc_envelope_frame(v, w, x, n, t, out->f0_hz[i], out->envelope + i * bins);
        voc_aperiodicity_frame(v, w, x, n, t, out->f0_hz[i], (uint64_t)i, out->aperiodicity + i * bins);
    }
    return AVO_OK;
}
