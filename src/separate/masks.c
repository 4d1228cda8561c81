/* Vocal mask for one block: an accompaniment magnitude model built from the repeating background
 * (REPET-SIM), the percussive part (median-filter HPSS) and, for stereo, the side channel; the vocal
 * model is what the mixture has beyond it; a soft Wiener-style mask splits the mid spectrum. */
#include "separate/sep_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Median of n small values (sorts in place). */
static float small_median(float *v, int n) {
    for (int i = 1; i < n; i++) {
        float x = v[i];
        int j = i - 1;
        while (j >= 0 && v[j] > x) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = x;
    }
    return n % 2 ? v[n / 2] : 0.5f * (v[n / 2 - 1] + v[n / 2]);
}

/* Median along time (len frames, centred) for every bin. */
static void median_time(const float *mag, int64_t T, int bins, int len, float *out, int threads) {
    const int h = len / 2;
#pragma omp parallel num_threads(threads)
    {
        float win[64];
#pragma omp for schedule(static)
        for (int64_t t = 0; t < T; t++) {
            const int64_t a = t - h < 0 ? 0 : t - h, b = t + h >= T ? T - 1 : t + h;
            for (int f = 0; f < bins; f++) {
                int n = 0;
                for (int64_t k = a; k <= b; k++) win[n++] = mag[k * bins + f];
                out[t * bins + f] = small_median(win, n);
            }
        }
    }
}

/* Median along frequency (len bins, centred) for every frame. */
static void median_freq(const float *mag, int64_t T, int bins, int len, float *out, int threads) {
    const int h = len / 2;
#pragma omp parallel num_threads(threads)
    {
        float win[64];
#pragma omp for schedule(static)
        for (int64_t t = 0; t < T; t++) {
            const float *m = mag + t * bins;
            for (int f = 0; f < bins; f++) {
                const int a = f - h < 0 ? 0 : f - h, b = f + h >= bins ? bins - 1 : f + h;
                int n = 0;
                for (int k = a; k <= b; k++) win[n++] = m[k];
                out[t * bins + f] = small_median(win, n);
            }
        }
    }
}

/* REPET-SIM: for every frame, the median of the k most similar frames (cosine similarity of
 * band-summed magnitudes, at least `gap` frames apart) models the repeating background. */
static int repet_sim(const float *mag, int64_t T, int bins, int n_fft, int rate, int k, int gap, float *model,
                     int threads) {
    /* Features: magnitudes below ~6 kHz summed in pairs of bins; enough to tell frames apart. */
    int fmax = (int)(6000.0 * n_fft / rate);
    if (fmax > bins) fmax = bins;
    const int d = (fmax + 1) / 2;
    float *feat = malloc(sizeof(float) * (size_t)T * (size_t)d);
    float *sim = malloc(sizeof(float) * (size_t)T * (size_t)T);
    if (!feat || !sim) {
        free(feat);
        free(sim);
        return -1;
    }
    for (int64_t t = 0; t < T; t++) {
        float *ft = feat + t * d;
        double norm = 0;
        for (int i = 0; i < d; i++) {
            float s = mag[t * bins + 2 * i] + (2 * i + 1 < fmax ? mag[t * bins + 2 * i + 1] : 0.0f);
            ft[i] = s;
            norm += (double)s * s;
        }
        const float g = norm > 0 ? (float)(1.0 / sqrt(norm)) : 0.0f;
        for (int i = 0; i < d; i++) ft[i] *= g;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, d, 1.0f, feat, d, feat, d, 0.0f, sim,
                (int)T);
    free(feat);
    if (k > 32) k = 32;
#pragma omp parallel num_threads(threads)
    {
        int cand[128], sel[32];
        float cs[128], vals[32];
#pragma omp for schedule(dynamic, 16)
        for (int64_t t = 0; t < T; t++) {
            const float *s = sim + t * T;
            /* Keep the best local maxima of the similarity row (frame t itself included). */
            int nc = 0;
            const int cap = 4 * k < 128 ? 4 * k : 128;
            for (int64_t j = 0; j < T; j++) {
                const float v = s[j];
                if ((j > 0 && s[j - 1] > v) || (j + 1 < T && s[j + 1] > v)) continue;
                if (nc == cap && v <= cs[nc - 1]) continue;
                int i = nc < cap ? nc++ : cap - 1;
                while (i > 0 && cs[i - 1] < v) {
                    cs[i] = cs[i - 1];
                    cand[i] = cand[i - 1];
                    i--;
                }
                cs[i] = v;
                cand[i] = (int)j;
            }
            int ns = 0;
            for (int i = 0; i < nc && ns < k; i++) {
                int ok = 1;
                for (int q = 0; q < ns && ok; q++) ok = abs(cand[i] - sel[q]) >= gap;
                if (ok) sel[ns++] = cand[i];
            }
            if (ns == 0) sel[ns++] = (int)t;
            for (int f = 0; f < bins; f++) {
                for (int q = 0; q < ns; q++) vals[q] = mag[(int64_t)sel[q] * bins + f];
                const float m = small_median(vals, ns);
                const float x = mag[t * bins + f];
                model[t * bins + f] = m < x ? m : x;
            }
        }
    }
    free(sim);
    return 0;
}

int sep_vocal_mask(const sep_params *p, const fftwf_complex *mid, const fftwf_complex *side, int64_t T, int bins,
                   int n_fft, int hop, int rate, int threads, float *mask) {
    const size_t n = (size_t)T * (size_t)bins;
    float *mag = malloc(sizeof(float) * n);
    float *acc = malloc(sizeof(float) * n);
    float *tmp = malloc(sizeof(float) * n);
    float *tmp2 = p->use_hpss ? malloc(sizeof(float) * n) : NULL;
    int rc = 0;
    if (!mag || !acc || !tmp || (p->use_hpss && !tmp2)) {
        rc = -1;
        goto done;
    }
    for (size_t i = 0; i < n; i++) mag[i] = sqrtf(mid[i][0] * mid[i][0] + mid[i][1] * mid[i][1]);
    memset(acc, 0, sizeof(float) * n);

    if (p->use_repet) {
        int gap = (int)(p->repet_min_gap_s * rate / hop + 0.5);
        if (gap < 1) gap = 1;
        if (repet_sim(mag, T, bins, n_fft, rate, p->repet_k, gap, tmp, threads)) {
            rc = -1;
            goto done;
        }
        for (size_t i = 0; i < n; i++) acc[i] = tmp[i];
    }
    if (side && p->use_side) {
        const float g = (float)p->side_gain;
        for (size_t i = 0; i < n; i++) {
            const float s = g * sqrtf(side[i][0] * side[i][0] + side[i][1] * side[i][1]);
            if (s > acc[i]) acc[i] = s;
        }
    }
    if (p->use_hpss) {
        /* Percussive share of each bin, from the ratio of frequency- to time-median filtering. */
        median_time(mag, T, bins, p->hpss_time_len, tmp, threads);
        median_freq(mag, T, bins, p->hpss_freq_len, tmp2, threads);
        for (size_t i = 0; i < n; i++) {
            const float h2 = tmp[i] * tmp[i], p2 = tmp2[i] * tmp2[i];
            const float share = p2 / (h2 + p2 + 1e-20f);
            const float a = mag[i] * share;
            if (a > acc[i]) acc[i] = a;
        }
    }
    /* Soft mask from the two magnitude models. */
    const float pw = (float)p->mask_power;
    const int cut = (int)(p->lowcut_hz * n_fft / rate);
    for (int64_t t = 0; t < T; t++) {
        for (int f = 0; f < bins; f++) {
            const size_t i = (size_t)t * bins + f;
            float v = mag[i] - acc[i];
            if (v < 0) v = 0;
            const float a = acc[i];
            float m;
            if (pw == 2.0f) {
                const float v2 = v * v, a2 = a * a;
                m = v2 + a2 > 1e-30f ? v2 / (v2 + a2) : 0.0f;
            } else {
                const float vp = powf(v, pw), ap = powf(a, pw);
                m = vp + ap > 1e-30f ? vp / (vp + ap) : 0.0f;
            }
            mask[i] = f < cut ? 0.0f : m;
        }
    }
done:
    free(mag);
    free(acc);
    free(tmp);
    free(tmp2);
    return rc;
}
