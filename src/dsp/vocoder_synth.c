/* Synthesis: one response per pitch pulse, overlap-added. Each response is the minimum-phase
 * filter of the periodic part of the envelope (envelope * (1 - ap^2)) plus one period of noise
 * filtered by the minimum-phase filter of the aperiodic part (envelope * ap^2), as in WORLD.
 * Unvoiced stretches use pulses at 500 Hz carrying only noise. Both parts go through one inverse
 * transform.
 *
 * Three choices differ from WORLD; each keeps a re-analysis of the output closer to the
 * parameters it was made from (round-trip MCD on speech about 0.1 dB lower):
 * - Envelope and aperiodicity are interpolated between frames in the log domain. Linear power
 *   interpolation raises the level wherever the envelope changes (the mean of powers exceeds
 *   their geometric mean), and a re-analysis then reads formant peaks too high.
 * - A voiced pulse next to an unvoiced frame uses the voiced frame alone: the unvoiced frame's
 *   envelope comes from a different (500 Hz) window and is not a continuation of the voice.
 * - The noise of a voiced pulse keeps the phases of its zero-mean white-noise burst but has a
 *   flat magnitude (phase-only noise). It stays random and unrepeatable from pulse to pulse and
 *   90% of its energy stays in its period, but its short-time spectrum lacks the chi-square
 *   ripple of Gaussian noise, which a re-analysis reads as envelope detail. Unvoiced pulses
 *   (32 samples at 16 kHz) keep Gaussian noise: flattening so short a burst spreads it in time
 *   and blurs voicing edges, which measured worse.
 * Pulses go in fixed segments (see avo_vocoder_synthesize), so the output is the same for any
 * number of threads. */
#include "vocoder_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

enum { SYNTH_SEGMENT = 128 }; /* pulses per segment: fixed, so the output does not depend on threads */

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

/* 0.5 ln(envelope) and ln(aperiodicity) (clamped to [0.001, 1]) of one frame, so that a pulse
 * interpolates between frames without logarithms of its own. Each thread keeps the last two frames
 * it computed: consecutive pulses mostly share them. */
static void frame_logs(const avo_voice_params *p, int64_t f, float *le, float *la) {
    const int bins = p->bins;
    const float *env = p->envelope + f * bins, *ap = p->aperiodicity + f * bins;
#pragma omp simd
    for (int k = 0; k < bins; k++) {
        le[k] = 0.5f * voc_logf(fabsf(env[k]) + 1e-30f);
        la[k] = voc_logf(voc_minf(voc_maxf(ap[k], 0.001f), 1.0f));
    }
}

static void cached_logs(const avo_voice_params *p, voc_work *w, int64_t f, const float **le, const float **la) {
    const int bins = p->bins;
    int slot = w->log_frame[0] == f ? 0 : w->log_frame[1] == f ? 1 : -1;
    if (slot < 0) {
        slot = w->log_next;
        w->log_next ^= 1;
        w->log_frame[slot] = f;
        frame_logs(p, f, w->logs + (size_t)slot * 2 * bins, w->logs + ((size_t)slot * 2 + 1) * bins);
    }
    *le = w->logs + (size_t)slot * 2 * bins;
    *la = w->logs + ((size_t)slot * 2 + 1) * bins;
}

/* Response of one pulse (fft_size samples, the pulse at fft_size/2) into out. */
static void pulse_response(const avo_vocoder *v, voc_work *w, const avo_voice_params *p, double lowest,
                           const pulse *pl, uint64_t seed, float *out) {
    const int fft = v->fft_size, half = fft / 2, bins = v->bins;
    const double t = (double)pl->index / v->fs;
    double pos = t / p->frame_period_seconds;
    int64_t f0i = (int64_t)floor(pos);
    if (f0i > p->frames - 1) f0i = p->frames - 1;
    int64_t f1i = f0i + 1 < p->frames ? f0i + 1 : f0i;
    float r = (float)(pos - (double)f0i);
    if (r > 1.0f) r = 1.0f;
    if (pl->voiced) {
        const int v0 = p->f0_hz[f0i] >= lowest, v1 = p->f0_hz[f1i] >= lowest;
        if (v0 && !v1) r = 0.0f;
        else if (!v0 && v1) r = 1.0f;
    }
    const float q = 1.0f - r;
    const float *le0, *le1, *la0, *la1;
    cached_logs(p, w, f0i, &le0, &la0);
    cached_logs(p, w, f1i, &le1, &la1);

    float *logp = w->a, *loga = w->b;
    int periodic = 0;
    if (pl->voiced) {
#pragma omp simd
        for (int k = 0; k < bins; k++) {
            const float le = q * le0[k] + r * le1[k], la = q * la0[k] + r * la1[k];
            const float a2 = voc_expf(2.0f * la);
            logp[k] = le + 0.5f * voc_logf(voc_maxf(1.0f - a2, 1e-12f));
            loga[k] = le + la;
        }
        periodic = q * la0[0] + r * la1[0] < 0.5f * logf(0.999f);
    } else {
        for (int k = 0; k < bins; k++) loga[k] = q * le0[k] + r * le1[k];
    }

    /* Aperiodic part: one period of phase-only noise through the aperiodic filter. */
    voc_min_phase(v, w, loga, w->spec2);
    const int ns = pl->period < fft ? pl->period : fft;
    voc_gauss_fill(w->wave, ns, seed);
    {
        /* zero mean: a burst's mean has the same rectangle spectrum and phase in every pulse,
         * which would survive the flattening below as a low-frequency component coherent from
         * pulse to pulse */
        double mean = 0.0;
        for (int j = 0; j < ns; j++) mean += w->wave[j];
        mean /= ns > 0 ? ns : 1;
        for (int j = 0; j < ns; j++) w->wave[j] -= (float)mean;
    }
    for (int j = ns; j < fft; j++) w->wave[j] = 0.0f;
    fftwf_execute_dft_r2c(v->r2c, w->wave, w->spec3);
    const float level = sqrtf((float)ns); /* the expected magnitude of unit-variance noise of ns samples */
    w->spec2[0][0] = w->spec2[0][1] = 0.0f; /* zero-mean noise */
    for (int k = 1; k < bins; k++) {
        const float nr = w->spec3[k][0], ni = w->spec3[k][1];
        const float m2 = nr * nr + ni * ni;
        const float g = !pl->voiced ? 1.0f : m2 > 0.0f ? level / sqrtf(m2) : 0.0f; /* phase-only */
        const float hr = w->spec2[k][0] * g, hi = w->spec2[k][1] * g;
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
    /* Segments of SYNTH_SEGMENT pulses, each overlap-added into its own span of a scratch buffer in
     * pulse order, then the spans added into y in segment order: one parallel region with a single
     * barrier (barriers are what a loaded machine makes expensive), and the same output for any
     * number of threads. */
    const int64_t nseg = (pulses.count + SYNTH_SEGMENT - 1) / SYNTH_SEGMENT;
    int64_t *span_at = malloc(sizeof(int64_t) * (size_t)(nseg + 1));
    if (!span_at) {
        free(pulses.p);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "vocoder synthesis: out of memory");
    }
    span_at[0] = 0;
    for (int64_t g = 0; g < nseg; g++) {
        const int64_t first = g * SYNTH_SEGMENT, last = (first + SYNTH_SEGMENT < pulses.count ? first + SYNTH_SEGMENT : pulses.count) - 1;
        span_at[g + 1] = span_at[g] + pulses.p[last].index - pulses.p[first].index + fft;
    }
    const int64_t span_total = span_at[nseg];
    float *spans = malloc(sizeof(float) * (size_t)(span_total > 0 ? span_total : 1));
    if (!spans) {
        free(span_at);
        free(pulses.p);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "vocoder synthesis: out of memory for %lld samples",
                             (long long)span_total);
    }
    const int64_t chunk = 8192, nchunks = (n + chunk - 1) / chunk;
#pragma omp parallel num_threads(nt)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        voc_work *w = &v->work[tid];
        w->log_frame[0] = w->log_frame[1] = -1;
        w->log_next = 0;
        float *resp = w->resp;
#pragma omp for schedule(dynamic, 1)
        for (int64_t g = 0; g < nseg; g++) {
            const int64_t first = g * SYNTH_SEGMENT;
            const int64_t end = first + SYNTH_SEGMENT < pulses.count ? first + SYNTH_SEGMENT : pulses.count;
            float *span = spans + span_at[g];
            const int64_t origin = pulses.p[first].index; /* span[0] is sample origin - half */
            memset(span, 0, sizeof(float) * (size_t)(span_at[g + 1] - span_at[g]));
            for (int64_t k = first; k < end; k++) {
                pulse_response(v, w, params, lowest, &pulses.p[k], (uint64_t)k + 0x5eedULL, resp);
                float *dst = span + (pulses.p[k].index - origin);
                for (int j = 0; j < fft; j++) dst[j] += resp[j];
            }
        }
        /* Output chunks: each sample receives the spans covering it in segment order. */
#pragma omp for schedule(static)
        for (int64_t c = 0; c < nchunks; c++) {
            const int64_t c_lo = c * chunk, c_hi = c_lo + chunk < n ? c_lo + chunk : n;
            for (int64_t g = 0; g < nseg; g++) {
                const int64_t s_lo = pulses.p[g * SYNTH_SEGMENT].index - half;
                const int64_t s_hi = s_lo + (span_at[g + 1] - span_at[g]);
                if (s_hi <= c_lo) continue;
                if (s_lo >= c_hi) break; /* spans start in increasing order */
                const int64_t lo = s_lo > c_lo ? s_lo : c_lo, hi = s_hi < c_hi ? s_hi : c_hi;
                const float *src = spans + span_at[g] - s_lo;
                for (int64_t j = lo; j < hi; j++) y[j] += src[j];
            }
        }
    }
    free(spans);
    free(span_at);
    free(pulses.p);
    return AVO_OK;
}
