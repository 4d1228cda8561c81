/* Synthetic singing with a known F0, shared by tests/unit/test_f0.c and bench/bench_f0.c.
 *
 * A voice is a per-sample F0 contour (0 = silent) rendered as a band-limited harmonic series with a
 * smooth spectral envelope, optionally with pitch-synchronous aspiration noise, then white or pink
 * noise at a chosen SNR. The truth per analysis frame is the contour at the frame centre; frames
 * within SYNTH_EDGE_SECONDS of a voicing change are marked -1 (don't care). */
#ifndef AVO_SYNTH_VOICE_H
#define AVO_SYNTH_VOICE_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SYNTH_EDGE_SECONDS 0.03

typedef struct synth_rng {
    uint64_t s;
} synth_rng;

static inline double synth_uniform(synth_rng *r) { /* xorshift64*, in [0, 1) */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (double)((r->s * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
}

static inline double synth_gauss(synth_rng *r) {
    double u = synth_uniform(r), v = synth_uniform(r);
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* One sung note: F0 glides from glide_from_hz (0 = no glide) to f0_hz over glide_seconds, with
 * sinusoidal vibrato of vib_cents depth (peak) at vib_hz. */
typedef struct synth_note {
    double start, dur;
    double f0_hz;
    double vib_hz, vib_cents;
    double glide_from_hz, glide_seconds;
} synth_note;

/* Fills f0[0..n) with the contour of the notes (0 outside them). */
static inline void synth_contour(const synth_note *notes, int count, int fs, int64_t n, double *f0) {
    memset(f0, 0, sizeof(double) * (size_t)n);
    for (int k = 0; k < count; k++) {
        const synth_note *nt = &notes[k];
        int64_t a = (int64_t)llround(nt->start * fs), b = (int64_t)llround((nt->start + nt->dur) * fs);
        if (a < 0) a = 0;
        if (b > n) b = n;
        for (int64_t i = a; i < b; i++) {
            const double t = (double)(i - a) / fs;
            double c = 0;
            if (nt->glide_from_hz > 0 && t < nt->glide_seconds) {
                const double u = t / nt->glide_seconds, s = u * u * (3 - 2 * u);
                c = (1.0 - s) * 1200.0 * log2(nt->glide_from_hz / nt->f0_hz);
            }
            c += nt->vib_cents * sin(2.0 * M_PI * nt->vib_hz * t);
            f0[i] = nt->f0_hz * pow(2.0, c / 1200.0);
        }
    }
}

typedef struct synth_voice_params {
    int max_harmonics;   /* 0 = all below 0.45 fs; 1 = pure sinusoid */
    double tilt_db_oct;  /* source slope per octave (0 = flat pulse train, -12 = soft voice) */
    int formants;        /* 1: add three vowel-like resonances */
    double amplitude;    /* peak-ish level of the harmonic part */
    double breath_db;    /* aspiration noise relative to the harmonic part; <= -100 for none */
} synth_voice_params;

static inline double synth_envelope(const synth_voice_params *p, double f, double f0) {
    double g = pow(10.0, p->tilt_db_oct * log2(f / f0) / 20.0);
    if (p->formants) {
        static const double fc[3] = {650, 1150, 2700}, bw[3] = {110, 160, 250}, gain[3] = {6, 4, 2};
        double r = 0.3;
        for (int i = 0; i < 3; i++) r += gain[i] / (1.0 + ((f - fc[i]) / bw[i]) * ((f - fc[i]) / bw[i]));
        g *= r;
    }
    return g;
}

/* Renders the contour into out[0..n) (overwrites). Amplitudes follow the envelope, recomputed every
 * 32 samples; 10 ms raised-cosine fades at voicing changes avoid clicks. */
static inline void synth_render(const double *f0, int64_t n, int fs, const synth_voice_params *p, synth_rng *rng,
                                float *out) {
    enum { MAXH = 512 };
    double amp[MAXH];
    int nh = 0;
    double phase = 0, level = 0;
    const double fade_step = 1.0 / (0.010 * fs);
    /* Aspiration: white noise through a one-pole high-pass, gated by the glottal cycle. */
    double nprev = 0, nhp = 0;
    const double breath = p->breath_db > -100 ? pow(10.0, p->breath_db / 20.0) : 0.0;
    double prev_f0 = 0;
    for (int64_t i = 0; i < n; i++) {
        const double f = f0[i] > 0 ? f0[i] : prev_f0;
        const int on = f0[i] > 0;
        level += on ? fade_step : -fade_step;
        level = level < 0 ? 0 : level > 1 ? 1 : level;
        if (f > 0) prev_f0 = f;
        if (level <= 0 || f <= 0) {
            out[i] = 0;
            if (!on) phase = 0;
            continue;
        }
        if (i % 32 == 0 || nh == 0) {
            nh = (int)floor(0.45 * fs / f);
            if (p->max_harmonics > 0 && nh > p->max_harmonics) nh = p->max_harmonics;
            if (nh > MAXH) nh = MAXH;
            if (nh < 1) nh = 1;
            double norm = 0;
            for (int k = 1; k <= nh; k++) {
                amp[k - 1] = synth_envelope(p, k * f, f);
                norm += amp[k - 1] * amp[k - 1];
            }
            norm = 1.0 / sqrt(2.0 * norm); /* unit RMS before amplitude */
            for (int k = 0; k < nh; k++) amp[k] *= norm;
        }
        phase += 2.0 * M_PI * f / fs;
        if (phase > 2.0 * M_PI) phase -= 2.0 * M_PI;
        /* sin(k phase) by the Chebyshev recurrence. */
        const double c2 = 2.0 * cos(phase);
        double s_prev = 0, s_cur = sin(phase), acc = 0;
        for (int k = 0; k < nh; k++) {
            acc += amp[k] * s_cur;
            const double s_next = c2 * s_cur - s_prev;
            s_prev = s_cur;
            s_cur = s_next;
        }
        double y = acc;
        if (breath > 0) {
            const double wn = synth_gauss(rng);
            nhp = 0.9 * (nhp + wn - nprev);
            nprev = wn;
            const double pulse = 0.5 + 0.5 * cos(phase); /* noise bursts around glottal closure */
            y += breath * nhp * pulse * 1.2;
        }
        out[i] = (float)(p->amplitude * level * y);
    }
}

/* Adds white (pink = 0) or pink (pink = 1) noise so that signal power over voiced samples over noise
 * power is snr_db. */
static inline void synth_add_noise(float *x, const double *f0, int64_t n, double snr_db, int pink, synth_rng *rng) {
    double ps = 0;
    int64_t nv = 0;
    for (int64_t i = 0; i < n; i++)
        if (f0[i] > 0) {
            ps += (double)x[i] * x[i];
            nv++;
        }
    if (nv == 0) return;
    ps /= nv;
    float *noise = malloc(sizeof(float) * (size_t)n);
    if (!noise) return;
    double b[7] = {0}, pn = 0;
    for (int64_t i = 0; i < n; i++) {
        const double w = synth_gauss(rng);
        double v = w;
        if (pink) { /* Paul Kellet's pink filter */
            b[0] = 0.99886 * b[0] + w * 0.0555179;
            b[1] = 0.99332 * b[1] + w * 0.0750759;
            b[2] = 0.96900 * b[2] + w * 0.1538520;
            b[3] = 0.86650 * b[3] + w * 0.3104856;
            b[4] = 0.55000 * b[4] + w * 0.5329522;
            b[5] = -0.7616 * b[5] - w * 0.0168980;
            v = b[0] + b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + w * 0.5362;
            b[6] = w * 0.115926;
        }
        noise[i] = (float)v;
        pn += v * v;
    }
    pn /= n;
    const double g = sqrt(ps / (pn * pow(10.0, snr_db / 10.0)));
    for (int64_t i = 0; i < n; i++) x[i] += (float)(g * noise[i]);
    free(noise);
}

/* Truth per frame (frame i centred at i * hop): F0 in Hz, 0 unvoiced, -1 near a voicing change. */
static inline void synth_truth(const double *f0, int64_t n, int fs, double hop, int64_t frames, float *truth) {
    const int64_t edge = (int64_t)(SYNTH_EDGE_SECONDS * fs);
    for (int64_t t = 0; t < frames; t++) {
        const int64_t c = (int64_t)llround(t * hop * fs);
        if (c >= n) {
            truth[t] = -1;
            continue;
        }
        const int v = f0[c] > 0;
        int mixed = 0;
        for (int64_t k = c - edge; k <= c + edge && !mixed; k += 8)
            if (k >= 0 && k < n && (f0[k] > 0) != v) mixed = 1;
        truth[t] = mixed ? -1.0f : (float)f0[c];
    }
}

/* A random melody of `count` notes in [lo_hz, hi_hz]: a random walk of intervals up to 7 semitones
 * (a fifth; leaps beyond that are rare in singing), with gaps, vibrato and glides. */
static inline int synth_melody(synth_note *notes, int count, double lo_hz, double hi_hz, double vib_cents,
                               int glides, synth_rng *rng, double *total_seconds) {
    double t = 0.1;
    const double span = 1200.0 * log2(hi_hz / lo_hz);
    double pos = span * (0.2 + 0.6 * synth_uniform(rng)), prev = 0;
    for (int k = 0; k < count; k++) {
        synth_note *nt = &notes[k];
        memset(nt, 0, sizeof *nt);
        nt->start = t;
        nt->dur = 0.4 + 0.8 * synth_uniform(rng);
        if (k > 0) pos += 100.0 * floor(15.0 * synth_uniform(rng) - 7.0);
        if (pos < 0.05 * span) pos = 0.05 * span + 300.0;
        if (pos > 0.95 * span) pos = 0.95 * span - 300.0;
        nt->f0_hz = lo_hz * pow(2.0, pos / 1200.0);
        nt->vib_hz = 5.0 + 2.0 * synth_uniform(rng);
        nt->vib_cents = vib_cents * (0.5 + 0.5 * synth_uniform(rng));
        if (glides && prev > 0 && synth_uniform(rng) < 0.7) {
            nt->glide_from_hz = prev;
            nt->glide_seconds = 0.08 + 0.15 * synth_uniform(rng);
        }
        prev = nt->f0_hz;
        /* Legato (no gap) for some notes, else a short breath. */
        const int legato = glides && synth_uniform(rng) < 0.5;
        t += nt->dur + (legato ? 0.0 : 0.1 + 0.2 * synth_uniform(rng));
    }
    *total_seconds = t + 0.2;
    return count;
}

#endif
