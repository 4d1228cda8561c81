/* Vocal mask for one block: an accompaniment magnitude model built from the repeating background
 * (REPET-SIM), the percussive part (median-filter HPSS) and, for stereo, the side channel; the vocal
 * model is what the mixture has beyond it; a soft Wiener-style mask splits the mid spectrum. */
#include "separate/sep_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Median of n small values (reorders v): Hoare's selection, then the largest of the lower part for even n. */
static float small_median(float *v, int n) {
    const int k = n / 2;
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        const float pivot = v[(lo + hi) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i <= j) {
                const float t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else break;
    }
    if (n % 2) return v[k];
    float below = v[0];
    for (int i = 1; i < k; i++)
        if (v[i] > below) below = v[i];
    return 0.5f * (below + v[k]);
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
static int repet_sim(const float *mag, int64_t T, int bins, int n_fft, int rate, int k, int gap, int geo,
                     float *model, int threads) {
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
    /* The geometric mean (a mean of logs) is nearly as robust to sparse vocal peaks as the median
     * and, unlike it, vectorises: a peak 20 dB up in one of 30 frames moves it by 0.7 dB. */
    float *lg = geo ? malloc(sizeof(float) * (size_t)T * (size_t)bins) : NULL;
    if (geo && !lg) {
        free(sim);
        return -1;
    }
    if (geo)
        for (size_t i = 0; i < (size_t)T * (size_t)bins; i++) lg[i] = logf(mag[i] + 1e-12f);
    if (k > 64) k = 64;
#pragma omp parallel num_threads(threads)
    {
        int cand[256], sel[64];
        float cs[256], vals[64];
#pragma omp for schedule(dynamic, 16)
        for (int64_t t = 0; t < T; t++) {
            const float *s = sim + t * T;
            /* Keep the best local maxima of the similarity row (frame t itself included). */
            int nc = 0;
            const int cap = 4 * k < 256 ? 4 * k : 256;
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
            if (geo) {
                float *mt = model + t * bins;
                const float *x = mag + t * bins;
                memset(mt, 0, sizeof(float) * (size_t)bins);
                for (int q = 0; q < ns; q++) {
                    const float *l = lg + (int64_t)sel[q] * bins;
                    for (int f = 0; f < bins; f++) mt[f] += l[f];
                }
                const float inv = 1.0f / (float)ns;
                for (int f = 0; f < bins; f++) {
                    const float m = expf(mt[f] * inv);
                    mt[f] = m < x[f] ? m : x[f];
                }
                continue;
            }
            for (int f = 0; f < bins; f++) {
                for (int q = 0; q < ns; q++) vals[q] = mag[(int64_t)sel[q] * bins + f];
                const float m = small_median(vals, ns);
                const float x = mag[t * bins + f];
                model[t * bins + f] = m < x ? m : x;
            }
        }
    }
    free(sim);
    free(lg);
    return 0;
}

int sep_side_cancel(fftwf_complex *mid, const fftwf_complex *side, int64_t T, int bins, int half, double max_gain,
                    int threads) {
    /* For each bin, the least-squares prediction of the mid from the side over +-half frames: any source
     * that is not centre-panned appears in both, the centre vocal only in the mid. Box sums via
     * running totals along time. */
    const double eps = 1e-12;
    int failed = 0;
#pragma omp parallel num_threads(threads)
    {
        double *cr = malloc(sizeof(double) * (size_t)(T + 1) * 3);
        if (!cr) {
#pragma omp atomic write
            failed = 1;
        } else {
#pragma omp for schedule(static)
            for (int f = 0; f < bins; f++) {
                double *ci = cr + (T + 1), *cs = cr + 2 * (T + 1);
                cr[0] = ci[0] = cs[0] = 0;
                for (int64_t t = 0; t < T; t++) {
                    const float *m = mid[t * bins + f], *s = side[t * bins + f];
                    /* M S* */
                    cr[t + 1] = cr[t] + (double)m[0] * s[0] + (double)m[1] * s[1];
                    ci[t + 1] = ci[t] + (double)m[1] * s[0] - (double)m[0] * s[1];
                    cs[t + 1] = cs[t] + (double)s[0] * s[0] + (double)s[1] * s[1];
                }
                for (int64_t t = 0; t < T; t++) {
                    const int64_t a = t - half < 0 ? 0 : t - half, b = t + half + 1 > T ? T : t + half + 1;
                    const double ss = cs[b] - cs[a];
                    double hr = (cr[b] - cr[a]) / (ss + eps), hi = (ci[b] - ci[a]) / (ss + eps);
                    const double mag = sqrt(hr * hr + hi * hi);
                    if (mag > max_gain) {
                        hr *= max_gain / mag;
                        hi *= max_gain / mag;
                    }
                    float *m = mid[t * bins + f];
                    const float *s = side[t * bins + f];
                    m[0] -= (float)(hr * s[0] - hi * s[1]);
                    m[1] -= (float)(hr * s[1] + hi * s[0]);
                }
            }
        }
        free(cr);
    }
    return failed ? -1 : 0;
}

int sep_vocal_mask(const sep_params *p, const fftwf_complex *mid, const fftwf_complex *side, int64_t T, int bins,
                   int n_fft, int hop, int rate, int threads, float *mask) {
    const size_t n = (size_t)T * (size_t)bins;
    const int iters = p->iterations < 1 ? 1 : p->iterations;
    float *mag = malloc(sizeof(float) * n);
    float *acc = malloc(sizeof(float) * n);
    float *tmp = malloc(sizeof(float) * n);
    float *share = p->use_hpss ? malloc(sizeof(float) * n) : NULL;
    float *rest = iters > 1 ? malloc(sizeof(float) * n) : NULL;
    int rc = 0;
    if (!mag || !acc || !tmp || (p->use_hpss && !share) || (iters > 1 && !rest)) {
        rc = -1;
        goto done;
    }
    for (size_t i = 0; i < n; i++) mag[i] = sqrtf(mid[i][0] * mid[i][0] + mid[i][1] * mid[i][1]);
    if (p->use_hpss) {
        /* Percussive share of each bin, from frequency- against time-median filtering. */
        median_time(mag, T, bins, p->hpss_time_len, tmp, threads);
        median_freq(mag, T, bins, p->hpss_freq_len, share, threads);
        for (size_t i = 0; i < n; i++) {
            const float h2 = tmp[i] * tmp[i], p2 = share[i] * share[i];
            share[i] = p2 / (h2 + p2 + 1e-20f);
        }
    }
    const float pw = (float)p->mask_power;
    const int cut = (int)(p->lowcut_hz * n_fft / rate);
    int gap = (int)(p->repet_min_gap_s * rate / hop + 0.5);
    if (gap < 1) gap = 1;
    for (int it = 0; it < iters; it++) {
        /* Later passes model the background from the accompaniment estimate of the previous pass, so
         * the vocals no longer pull the repeating model up. */
        const float *src = mag;
        if (it > 0) {
            for (size_t i = 0; i < n; i++) rest[i] = mag[i] * (1.0f - mask[i]);
            src = rest;
        }
        memset(acc, 0, sizeof(float) * n);
        if (p->use_repet) {
            if (repet_sim(src, T, bins, n_fft, rate, p->repet_k, gap, p->repet_geo, acc, threads)) {
                rc = -1;
                goto done;
            }
        }
        if (side && p->use_side) {
            const float g = (float)p->side_gain;
            for (size_t i = 0; i < n; i++) {
                const float sm = g * sqrtf(side[i][0] * side[i][0] + side[i][1] * side[i][1]);
                if (sm > acc[i]) acc[i] = sm;
            }
        }
        if (p->use_hpss) {
            for (size_t i = 0; i < n; i++) {
                const float a = mag[i] * share[i];
                if (a > acc[i]) acc[i] = a;
            }
        }
        /* Soft mask from the two magnitude models. */
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
    }
done:
    free(mag);
    free(acc);
    free(tmp);
    free(share);
    free(rest);
    return rc;
}
