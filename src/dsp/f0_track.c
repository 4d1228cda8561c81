/* Frame decisions over the per-frame YIN analysis.
 *
 * Fast: YIN's absolute threshold (first trough below FAST_PICK_THRESHOLD, else the deepest), voiced
 * when the trough is periodic enough and the frame loud enough, then a light clean-up (outliers
 * against a median over +-20 ms, voiced blips shorter than 15 ms). Both spans are in seconds so that
 * a 5 ms hop decides as a 10 ms hop does.
 *
 * Accurate: pYIN. Each trough that some threshold of the Beta(2, 18) prior would select gets that
 * threshold mass as its probability; Viterbi then runs over a lattice whose states per frame are the
 * candidates plus one unvoiced state. This is pYIN's pitch-bin x voicing HMM with the empty bins
 * dropped (their emission probability is zero, so no best path passes through them) and the unvoiced
 * bins merged; the pitch transition is a triangle limited to F0_MAX_RATE cents per second, and the
 * output keeps each candidate's sub-sample frequency rather than a bin centre.
 *
 * Hop independence: every per-frame log term (emissions, staying voiced or unvoiced, the pitch
 * triangle) is weighted by hop / REF_HOP, so a second of evidence weighs the same at any hop, while a
 * voicing switch is an event and costs log(SWITCH_PROB) once. Hops longer than REF_HOP are not weighted
 * up (the weight is capped at 1). Unweighted, at a 5 ms hop an octave
 * jump through a one-frame unvoiced gap cost half as much, relative to the evidence, as at 10 ms. */
#include "dsp/f0_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FAST_PICK_THRESHOLD 0.15 /* YIN absolute threshold */
#define FAST_VOICED_MAX 0.35     /* aperiodicity above this is unvoiced */
#define FAST_NEAR_RATIO 1.15     /* with no trough under the threshold: first trough this close */
#define FAST_NEAR_SLACK 0.03     /* to the deepest (ratio and absolute slack) */
#define FAST_MEDIAN_SECONDS 0.020 /* half-width of the outlier median (2 frames at 10 ms) */
#define FAST_MEDIAN_MAX 40        /* frames either side at most (the 0.5 ms hop) */
#define FAST_MIN_VOICED_SECONDS 0.015 /* shorter voiced runs are noise (one frame at 10 ms) */
#define NO_TROUGH_WEIGHT 0.01    /* pYIN: share of unselected threshold mass given to the deepest trough */
#define SWITCH_PROB 0.01         /* voiced <-> unvoiced transition probability per event */
#define REF_HOP 0.010            /* per-frame log terms count in units of this frame length */
#define UNVOICED_SCALE 0.05      /* emission weight of the single unvoiced state */
#define F0_MAX_RATE 30000.0      /* largest pitch change that stays voiced, cents per second */
#define PRIOR_B 8.0              /* threshold prior Beta(2, PRIOR_B), mean 0.2: pYIN's Beta(2, 18)
                                    (mean 0.1) loses most voiced frames below 10 dB SNR */


static double cents(double a, double b) { return 1200.0 * log2(a / b); }

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void f0_decide_fast(const f0_frame *frames, const float *gate, int64_t nframes, double hop_seconds,
                    avo_f0_track *out) {
    float *f0 = out->f0_hz, *conf = out->confidence;
    for (int64_t i = 0; i < nframes; i++) {
        const f0_frame *fr = &frames[i];
        f0[i] = 0;
        conf[i] = 0;
        if (fr->ncand == 0) continue;
        /* Prefix minima: the last one is the deepest. Without a trough under the absolute threshold,
         * take the first one nearly as deep as the deepest: in noise the deepest is often a multiple
         * of the period. */
        const double deepest = fr->cmnd[fr->ncand - 1];
        double thr = FAST_PICK_THRESHOLD;
        if (deepest >= thr) thr = deepest * FAST_NEAR_RATIO + FAST_NEAR_SLACK;
        int pick = fr->ncand - 1;
        for (int j = 0; j < fr->ncand; j++)
            if (fr->cmnd[j] < thr) {
                pick = j;
                break;
            }
        const double v = fr->cmnd[pick];
        conf[i] = (float)(f0_beta_sf(v, PRIOR_B) * gate[i]);
        if (v < FAST_VOICED_MAX && gate[i] > 0.5f) f0[i] = fr->f0[pick];
    }

    /* Outliers (octave slips) against the median of the voiced frames within +-20 ms (five frames
     * at 10 ms). */
    long hw = lround(FAST_MEDIAN_SECONDS / hop_seconds);
    if (hw < 2) hw = 2;
    if (hw > FAST_MEDIAN_MAX) hw = FAST_MEDIAN_MAX;
    float *orig = malloc(sizeof(float) * (size_t)nframes);
    if (orig) {
        memcpy(orig, f0, sizeof(float) * (size_t)nframes);
        for (int64_t i = 0; i < nframes; i++) {
            if (orig[i] <= 0) continue;
            float v[2 * FAST_MEDIAN_MAX + 1];
            int m = 0;
            for (int64_t k = i - hw; k <= i + hw; k++)
                if (k >= 0 && k < nframes && orig[k] > 0) v[m++] = orig[k];
            if (m < hw + 1) continue;
            qsort(v, (size_t)m, sizeof(float), cmp_float);
            const float med = m % 2 ? v[m / 2] : v[m / 2 - 1]; /* a real value, never an average */
            if (fabs(cents(orig[i], med)) > 100.0) f0[i] = med;
        }
        free(orig);
    }
    /* A voiced run shorter than 15 ms (a single frame at 10 ms or more) is almost always noise. */
    int64_t min_run = (int64_t)ceil(FAST_MIN_VOICED_SECONDS / hop_seconds - 1e-9);
    if (min_run < 2) min_run = 2; /* longer hops: still a single frame */
    for (int64_t a = 0; a < nframes && nframes > 1;) {
        if (f0[a] <= 0) {
            a++;
            continue;
        }
        int64_t b = a;
        while (b < nframes && f0[b] > 0) b++;
        if (b - a < min_run)
            for (int64_t k = a; k < b; k++) f0[k] = 0;
        a = b;
    }
}

/* Candidate probabilities of one frame under the threshold prior, scaled by the level gate. */
static double candidate_probs(const f0_frame *fr, double gate, double *p) {
    double prev_sf = 0, total = 0;
    for (int j = 0; j < fr->ncand; j++) {
        const double sf = f0_beta_sf(fr->cmnd[j], PRIOR_B);
        p[j] = sf - prev_sf; /* thresholds in (cmnd[j], cmnd[j-1]] select trough j */
        prev_sf = sf;
    }
    if (fr->ncand > 0) p[fr->ncand - 1] += NO_TROUGH_WEIGHT * (1.0 - prev_sf);
    for (int j = 0; j < fr->ncand; j++) {
        p[j] *= gate;
        total += p[j];
    }
    return total;
}

avo_status f0_decide_viterbi(const f0_frame *frames, const float *gate, int64_t nframes, double hop_seconds,
                             avo_f0_track *out, avo_error *err) {
    enum { NS = F0_MAX_CANDIDATES + 1, UV = F0_MAX_CANDIDATES };
    unsigned char *back = malloc((size_t)nframes * NS);
    if (!back) return avo_error_set(err, AVO_ERR_NO_MEMORY, "f0: out of memory for %lld frames", (long long)nframes);
    const double max_jump = F0_MAX_RATE * hop_seconds;
    /* weight of per-frame terms; hops longer than REF_HOP keep per-frame terms (the separator's 23 ms
     * hop was tuned that way, and weighting them up cost it 0.3 dB of accompaniment SDR) */
    const double wf = fmin(hop_seconds / REF_HOP, 1.0);
    const double log_sw = log(SWITCH_PROB), log_stay = wf * log(1.0 - SWITCH_PROB);
    const double floor_lp = -1e30;
    double delta[NS], nd[NS], p[F0_MAX_CANDIDATES];

    for (int64_t t = 0; t < nframes; t++) {
        const f0_frame *fr = &frames[t];
        const double pv = candidate_probs(fr, gate[t], p);
        double emit[NS];
        for (int s = 0; s < NS; s++) emit[s] = floor_lp;
        for (int j = 0; j < fr->ncand; j++) emit[j] = p[j] > 1e-12 ? wf * log(p[j]) : floor_lp;
        emit[UV] = wf * log(fmax(1.0 - pv, 1e-12) * UNVOICED_SCALE);
        unsigned char *bp = back + (size_t)t * NS;
        if (t == 0) {
            for (int s = 0; s < NS; s++) {
                delta[s] = emit[s];
                bp[s] = UV;
            }
            continue;
        }
        const f0_frame *pf = &frames[t - 1];
        for (int s = 0; s < NS; s++) {
            nd[s] = floor_lp;
            bp[s] = UV;
            if (emit[s] <= floor_lp) continue;
            const int voiced = s != UV;
            double best = delta[UV] + (voiced ? log_sw : log_stay);
            int arg = UV;
            for (int j = 0; j < pf->ncand; j++) {
                if (delta[j] <= floor_lp) continue;
                double tr;
                if (voiced) {
                    const double jump = fabs(cents(fr->f0[s], pf->f0[j]));
                    if (jump >= max_jump) continue;
                    tr = log_stay + wf * log(1.0 - jump / max_jump);
                } else {
                    tr = log_sw;
                }
                if (delta[j] + tr > best) {
                    best = delta[j] + tr;
                    arg = j;
                }
            }
            nd[s] = best + emit[s];
            bp[s] = (unsigned char)arg;
        }
        memcpy(delta, nd, sizeof delta);
    }

    int s = UV;
    for (int k = 0; k < NS; k++)
        if (delta[k] > delta[s]) s = k;
    for (int64_t t = nframes - 1; t >= 0; t--) {
        const f0_frame *fr = &frames[t];
        double mind = 1.0;
        for (int j = 0; j < fr->ncand; j++) mind = fmin(mind, fr->cmnd[j]);
        if (s != UV) {
            out->f0_hz[t] = fr->f0[s];
            out->confidence[t] = (float)(f0_beta_sf(fr->cmnd[s], PRIOR_B) * gate[t]);
        } else {
            out->f0_hz[t] = 0;
            out->confidence[t] = (float)(f0_beta_sf(mind, PRIOR_B) * gate[t]);
        }
        s = back[(size_t)t * NS + s];
    }
    free(back);
    return AVO_OK;
}
