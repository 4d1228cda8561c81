/* Synthesis: one response per pitch pulse, overlap-added. Each response is the minimum-phase
 * filter of the periodic part of the envelope (envelope * (1 - ap^2)) plus white noise of one
 * period filtered by the minimum-phase filter of the aperiodic part (envelope * ap^2), as in
 * WORLD. Unvoiced stretches use pulses at 500 Hz carrying only noise. Both parts go through one
 * inverse transform; responses are made in parallel blocks and added in order. */
#include "vocoder_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct pulse {
    int64_t index;   /* sample at or just before the pulse */
    float shift;     /* fraction of a sample after index */
    int period;      /* samples to the next pulse: the noise length */
    int voiced;
} pulse;

typedef struct pulse_list {
    pulse *p;
    int64_t count, cap;
} pulse_list;

static int pulse_push(pulse_list *l, int64_t index, double shift, int voiced) {
    if (l->count == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 1024;
        pulse *np = realloc(l->p, sizeof(pulse) * (size_t)cap);
        if (!np) return -1;
        l->p = np;
        l->cap = cap;
    }
    l->p[l->count++] = (pulse){index, (float)shift, 0, voiced};
    return 0;
}

/* F0 at sample i: linear between voiced frames, held at voicing edges, 0 where the nearest
 * frame is unvoiced (so voicing switches half way between frames). */
static double f0_at(const avo_voice_params *p, double frame_pos, double lowest) {
    const int64_t last = p->frames - 1;
    if (frame_pos >= (double)last) {
        double f = p->f0_hz[last];
        return f >= lowest ? f : 0.0;
    }
    int64_t i0 = (int64_t)frame_pos;
    double fr = frame_pos - (double)i0;
    double a = p->f0_hz[i0], b = p->f0_hz[i0 + 1];
    int va = a >= lowest, vb = b >= lowest;
    if (va && vb) return a + (b - a) * fr;
    if (fr < 0.5) return va ? a : 0.0;
    return vb ? b : 0.0;
}

static avo_status find_pulses(const avo_voice_params *p, int fs, int64_t n, double lowest, pulse_list *out,
                              avo_error *err) {
    const double frames_per_sample = 1.0 / (p->frame_period_seconds * fs);
    double phase = 0.0; /* cycles, in [0, 1) */
    int prev_voiced = 0;
    for (int64_t i = 0; i < n; i++) {
        double f = f0_at(p, (double)i * frames_per_sample, lowest);
        int voiced = f > 0.0;
        if (!voiced) f = VOC_DEFAULT_F0;
        double next = phase + f / fs;
        if (i > 0 && next >= 1.0) {
            /* The phase crossed a whole cycle between samples i-1 and i. */
            double shift = (1.0 - phase) / (next - phase);
            if (pulse_push(out, i - 1, shift, prev_voiced))
                return avo_error_set(err, AVO_ERR_NO_MEMORY, "vocoder synthesis: out of memory for pulses");
        }
        phase = next - floor(next);
        prev_voiced = voiced;
    }
    for (int64_t k = 0; k < out->count; k++) {
        int64_t next = k + 1 < out->count ? out->p[k + 1].index : -1;
        int64_t period = next >= 0 ? next - out->p[k].index : 0;
        if (period <= 0) {
            double f = f0_at(p, (double)out->p[k].index * frames_per_sample, lowest);
            period = (int64_t)lround(fs / (f > 0.0 ? f : VOC_DEFAULT_F0));
        }
        out->p[k].period = (int)period;
    }
    return AVO_OK;
}

/* Response of one pulse (fft_size samples, the pulse at fft_size/2) into out. */
static void pulse_response(const avo_vocoder *v, voc_work *w, const avo_voice_params *p, const pulse *pl,
                           uint64_t seed, float *out) {
    const int fft = v->fft_size, half = fft / 2, bins = v->bins;
    const double t = (double)pl->index / v->fs;
    double pos = t / p->frame_period_seconds;
    int64_t f0i = (int64_t)floor(pos);
    if (f0i > p->frames - 1) f0i = p->frames - 1;
    int64_t f1i = f0i + 1 < p->frames ? f0i + 1 : f0i;
    float r = (float)(pos - (double)f0i);
    if (r > 1.0f) r = 1.0f;
    const float *e0 = p->envelope + f0i * bins, *e1 = p->envelope + f1i * bins;
    const float *a0 = p->aperiodicity + f0i * bins, *a1 = p->aperiodicity + f1i * bins;

    float *logp = w->a, *loga = w->b;
    float first_a2 = 1.0f;
    for (int k = 0; k < bins; k++) {
        float env = (1.0f - r) * fabsf(e0[k]) + r * fabsf(e1[k]);
        float s0 = fminf(fmaxf(a0[k], 0.001f), 1.0f), s1 = fminf(fmaxf(a1[k], 0.001f), 1.0f);
        float ap = (1.0f - r) * s0 + r * s1;
        float a2 = ap * ap;
        if (k == 0) first_a2 = a2;
        if (pl->voiced) {
            logp[k] = 0.5f * logf(env * (1.0f - a2) + 1e-12f);
            loga[k] = 0.5f * logf(env * a2 + 1e-30f);
        } else {
            loga[k] = 0.5f * logf(env + 1e-30f);
        }
    }
    const int periodic = pl->voiced && first_a2 <= 0.999f;

    /* Aperiodic part: one period of zero-mean white noise through the aperiodic filter. */
    voc_min_phase(v, w, loga, w->spec2);
    const int ns = pl->period < fft ? pl->period : fft;
    voc_gauss_fill(w->wave, ns, seed);
    double mean = 0.0;
    for (int j = 0; j < ns; j++) mean += w->wave[j];
    mean /= ns > 0 ? ns : 1;
    for (int j = 0; j < ns; j++) w->wave[j] -= (float)mean;
    for (int j = ns; j < fft; j++) w->wave[j] = 0.0f;
    fftwf_execute_dft_r2c(v->r2c, w->wave, w->spec3);
    for (int k = 0; k < bins; k++) {
        float hr = w->spec2[k][0], hi = w->spec2[k][1];
        float nr = w->spec3[k][0], ni = w->spec3[k][1];
        w->spec2[k][0] = hr * nr - hi * ni;
        w->spec2[k][1] = hr * ni + hi * nr;
    }

    /* Periodic part: the minimum-phase filter delayed by the pulse's fractional position, scaled
     * by sqrt(period) so that its power per unit time matches the noise part's. */
    float dc = 0.0f;
    if (periodic) {
        voc_min_phase(v, w, logp, w->spec);
        const float gain = sqrtf((float)pl->period);
        const double step = 2.0 * M_PI * pl->shift / fft;
        const double cs = cos(step), sn = sin(step);
        double c = 1.0, s = 0.0;
        for (int k = 0; k < bins; k++) {
            float re = w->spec[k][0] * gain, im = w->spec[k][1] * gain;
            /* multiply by exp(-j step k) */
            float pr = (float)(re * c + im * s), pi = (float)(im * c - re * s);
            w->spec2[k][0] += pr;
            w->spec2[k][1] += pi;
            if (k == 0) dc = pr;
            double nc = c * cs - s * sn;
            s = s * cs + c * sn;
            c = nc;
        }
    }
    fftwf_execute_dft_c2r(v->c2r, w->spec2, w->wave);
    const float scale = 1.0f / (float)fft;
    for (int j = 0; j < half; j++) {
        out[j] = w->wave[j + half] * scale;
        out[j + half] = w->wave[j] * scale;
    }
    /* The periodic response must not carry DC (it would build up as a drift at high F0). */
    if (periodic)
        for (int j = 0; j < fft; j++) out[j] -= dc * v->dc_remover[j];
}

avo_status avo_vocoder_synthesize(avo_vocoder *v, const avo_voice_params *params, float *y, int64_t n,
                                  avo_error *err) {
    if (!v || !params || (!y && n > 0) || n < 0)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "vocoder synthesis: NULL argument or negative length");
    if (n == 0) return AVO_OK;
    if (params->sample_rate != v->fs || params->fft_size != v->fft_size || params->bins != v->bins)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "vocoder synthesis: parameters are for %d Hz / FFT %d but the vocoder is %d Hz / FFT %d; "
                             "create the vocoder with the same configuration as the analysis",
                             params->sample_rate, params->fft_size, v->fs, v->fft_size);
    if (params->frames < 1 || params->frame_period_seconds <= 0.0 || !params->f0_hz || !params->envelope ||
        !params->aperiodicity)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "vocoder synthesis: parameters are empty");
    memset(y, 0, sizeof(float) * (size_t)n);

    pulse_list pulses = {0};
    const double lowest = (double)v->fs / v->fft_size + 1.0; /* lower F0 cannot be represented */
    avo_status st = find_pulses(params, v->fs, n, lowest, &pulses, err);
    if (st) {
        free(pulses.p);
        return st;
    }

    const int fft = v->fft_size, half = fft / 2;
    const int nt = v->threads;
    const int64_t block = 64 * (int64_t)nt;
    float *resp = fftwf_malloc(sizeof(float) * (size_t)(block * fft));
    if (!resp) {
        free(pulses.p);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "vocoder synthesis: out of memory");
    }
    for (int64_t b0 = 0; b0 < pulses.count; b0 += block) {
        const int64_t cnt = pulses.count - b0 < block ? pulses.count - b0 : block;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4)
        for (int64_t k = 0; k < cnt; k++) {
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            pulse_response(v, &v->work[tid], params, &pulses.p[b0 + k], (uint64_t)(b0 + k) + 0x5eedULL,
                           resp + k * fft);
        }
        for (int64_t k = 0; k < cnt; k++) {
            const float *r = resp + k * fft;
            const int64_t offset = pulses.p[b0 + k].index - half;
            int64_t lo = offset < 0 ? -offset : 0;
            int64_t hi = n - offset < fft ? n - offset : fft;
            for (int64_t j = lo; j < hi; j++) y[offset + j] += r[j];
        }
    }
    fftwf_free(resp);
    free(pulses.p);
    return AVO_OK;
}
