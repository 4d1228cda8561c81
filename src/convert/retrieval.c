/* Frame retrieval: each voiced source frame takes the timbre of the target frames that match it.
 *
 * Matching happens in a speaker-normalised space: mel-cepstra (DCT of the log envelope on the mel
 * grid, c0 dropped) with cepstral mean and variance normalisation per speaker, so that what is left
 * is mostly what is being sung (vowel, openness), not who sings it. The source has already been warped
 * to the target's vocal-tract length. The k nearest target frames are blended with inverse-square-
 * distance weights, as RVC blends its index. */
#include "converter_internal.h"

#include <cblas.h>
#include <omp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NEIGHBOURS = 4, MAX_CEPSTRA = 24, BLOCK_ROWS = 128 };

typedef struct retrieval_work {
    int kc, dims;
    int64_t ns, nt;        /* voiced source frames, target frames */
    int64_t *src_index;    /* voiced source frame -> params frame */
    float *dct;            /* dims x kc */
    float *src_env;        /* ns x kc */
    float *tgt_env;        /* nt x kc (grid prefix of the target frames) */
    float *src_feat;       /* ns x dims */
    float *tgt_feat;       /* nt x dims */
    float *tgt_norm;       /* nt: squared norms of tgt_feat rows */
    float *retrieved;      /* ns x kc */
} retrieval_work;

static void work_free(retrieval_work *w) {
    free(w->src_index);
    free(w->dct);
    free(w->src_env);
    free(w->tgt_env);
    free(w->src_feat);
    free(w->tgt_feat);
    free(w->tgt_norm);
    free(w->retrieved);
}

/* features = env x dct^T, then per-dimension mean/variance normalisation. */
static void cepstra(const float *env, int64_t rows, int kc, const float *dct, int dims, float *feat) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, dims, kc, 1.0f, env, kc, dct, kc, 0.0f, feat, dims);
    for (int d = 0; d < dims; d++) {
        double mean = 0.0, var = 0.0;
        for (int64_t i = 0; i < rows; i++) mean += feat[i * dims + d];
        mean /= (double)rows;
        for (int64_t i = 0; i < rows; i++) {
            double x = feat[i * dims + d] - mean;
            var += x * x;
        }
        const double inv = 1.0 / sqrt(var / (double)rows + 1e-9);
        for (int64_t i = 0; i < rows; i++) feat[i * dims + d] = (float)((feat[i * dims + d] - mean) * inv);
    }
}

static avo_status prepare(retrieval_work *w, const avo_voice_params *p, const avo_voice_analysis *t, double band_top_hz,
                          avo_error *err) {
    w->kc = 0;
    while (w->kc < t->grid_size && t->grid_hz[w->kc] <= band_top_hz) w->kc++;
    w->dims = w->kc - 1 < MAX_CEPSTRA ? w->kc - 1 : MAX_CEPSTRA;
    w->nt = t->frame_count;
    w->ns = 0;
    for (int64_t i = 0; i < p->frames; i++) w->ns += p->f0_hz[i] > 0.0f;
    if (w->kc < 16 || w->ns == 0 || w->nt < NEIGHBOURS) return AVO_OK; /* nothing to do */
    const size_t kc = (size_t)w->kc, dims = (size_t)w->dims, ns = (size_t)w->ns, nt = (size_t)w->nt;
    w->src_index = malloc(sizeof(int64_t) * ns);
    w->dct = malloc(sizeof(float) * dims * kc);
    w->src_env = malloc(sizeof(float) * ns * kc);
    w->tgt_env = malloc(sizeof(float) * nt * kc);
    w->src_feat = malloc(sizeof(float) * ns * dims);
    w->tgt_feat = malloc(sizeof(float) * nt * dims);
    w->tgt_norm = malloc(sizeof(float) * nt);
    w->retrieved = malloc(sizeof(float) * ns * kc);
    if (!w->src_index || !w->dct || !w->src_env || !w->tgt_env || !w->src_feat || !w->tgt_feat || !w->tgt_norm ||
        !w->retrieved)
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory for frame retrieval");
    for (size_t d = 0; d < dims; d++)
        for (size_t k = 0; k < kc; k++) w->dct[d * kc + k] = (float)cos(M_PI * (double)(d + 1) * ((double)k + 0.5) / (double)kc);
    int64_t j = 0;
    for (int64_t i = 0; i < p->frames; i++) {
        if (p->f0_hz[i] <= 0.0f) continue;
        w->src_index[j] = i;
        envelope_on_grid(p, i, t->grid_hz, w->kc, w->src_env + j * w->kc);
        j++;
    }
    for (size_t i = 0; i < nt; i++) memcpy(w->tgt_env + i * kc, t->frames + i * (size_t)t->grid_size, sizeof(float) * kc);
    cepstra(w->src_env, w->ns, w->kc, w->dct, w->dims, w->src_feat);
    cepstra(w->tgt_env, w->nt, w->kc, w->dct, w->dims, w->tgt_feat);
    for (size_t i = 0; i < nt; i++) {
        double s = 0.0;
        for (size_t d = 0; d < dims; d++) s += (double)w->tgt_feat[i * dims + d] * w->tgt_feat[i * dims + d];
        w->tgt_norm[i] = (float)s;
    }
    return AVO_OK;
}

/* Keeps the NEIGHBOURS smallest distances of one row (insertion into a short sorted list). */
static void nearest(const float *dist, int64_t n, int64_t *idx, float *best) {
    for (int k = 0; k < NEIGHBOURS; k++) best[k] = INFINITY, idx[k] = 0;
    for (int64_t j = 0; j < n; j++) {
        float d = dist[j];
        if (d >= best[NEIGHBOURS - 1]) continue;
        int k = NEIGHBOURS - 1;
        while (k > 0 && best[k - 1] > d) best[k] = best[k - 1], idx[k] = idx[k - 1], k--;
        best[k] = d, idx[k] = j;
    }
}

static avo_status retrieve(retrieval_work *w, int threads, avo_error *err) {
    const int kc = w->kc, dims = w->dims;
    float *gram = malloc(sizeof(float) * (size_t)BLOCK_ROWS * (size_t)w->nt);
    if (!gram) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory for frame retrieval");
    for (int64_t r0 = 0; r0 < w->ns; r0 += BLOCK_ROWS) {
        const int rows = (int)(w->ns - r0 < BLOCK_ROWS ? w->ns - r0 : BLOCK_ROWS);
        /* -2 a.b + |b|^2 ranks neighbours like the squared distance; |a|^2 is added back per row. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, (int)w->nt, dims, -2.0f, w->src_feat + r0 * dims, dims,
                    w->tgt_feat, dims, 0.0f, gram, (int)w->nt);
#pragma omp parallel for num_threads(threads > 0 ? threads : omp_get_max_threads()) schedule(static)
        for (int r = 0; r < rows; r++) {
            float *row = gram + (size_t)r * (size_t)w->nt;
            const float *a = w->src_feat + (r0 + r) * dims;
            float a2 = 0.0f;
            for (int d = 0; d < dims; d++) a2 += a[d] * a[d];
            for (int64_t j = 0; j < w->nt; j++) row[j] += w->tgt_norm[j] + a2;
            int64_t idx[NEIGHBOURS];
            float best[NEIGHBOURS];
            nearest(row, w->nt, idx, best);
            float *out = w->retrieved + (r0 + r) * kc;
            double wsum = 0.0;
            memset(out, 0, sizeof(float) * (size_t)kc);
            for (int k = 0; k < NEIGHBOURS; k++) {
                double wk = 1.0 / (fmax(best[k], 0.0f) + 1e-3);
                wsum += wk;
                const float *te = w->tgt_env + idx[k] * kc;
                for (int q = 0; q < kc; q++) out[q] += (float)(wk * te[q]);
            }
            for (int q = 0; q < kc; q++) out[q] = (float)(out[q] / wsum);
        }
    }
    free(gram);
    return AVO_OK;
}

/* Correction per voiced frame on the grid: retrieved minus source, levels equalised, smoothed over
 * neighbouring frames of the same voiced run, scaled by amount and clamped to +-20 dB of power. */
static void corrections(retrieval_work *w, double amount, float *corr) {
    const int kc = w->kc;
    for (int64_t i = 0; i < w->ns; i++) {
        double lvl = 0.0;
        const float *s = w->src_env + i * kc;
        double acc[256];
        for (int q = 0; q < kc; q++) acc[q] = 0.0;
        int used = 0;
        for (int64_t j = i - 2; j <= i + 2; j++) {
            if (j < 0 || j >= w->ns || w->src_index[j] - w->src_index[i] != j - i) continue;
            const float *r = w->retrieved + j * kc;
            for (int q = 0; q < kc; q++) acc[q] += r[q];
            used++;
        }
        double rmean = 0.0;
        for (int q = 0; q < kc; q++) acc[q] /= used, rmean += acc[q], lvl += s[q];
        const double shift = (lvl - rmean) / kc;
        for (int q = 0; q < kc; q++) {
            double c = amount * (acc[q] + shift - s[q]);
            corr[i * kc + q] = (float)(c > 4.6 ? 4.6 : c < -4.6 ? -4.6 : c);
        }
    }
}

/* Applies grid corrections to the envelopes bin by bin, fading them out above band_top_hz. */
static void apply(avo_voice_params *p, const retrieval_work *w, const float *grid, const float *corr, double band_top_hz,
                  int threads) {
    const int kc = w->kc, bins = p->bins;
    const double hz_per_bin = (double)p->sample_rate / p->fft_size;
    int *lo = malloc(sizeof(int) * (size_t)bins);
    float *frac = malloc(sizeof(float) * (size_t)bins), *fade = malloc(sizeof(float) * (size_t)bins);
    if (!lo || !frac || !fade) goto done;
    for (int b = 0; b < bins; b++) {
        double hz = b * hz_per_bin;
        int k = 0;
        while (k < kc - 2 && grid[k + 1] <= hz) k++;
        double f = (hz - grid[k]) / (grid[k + 1] - grid[k]);
        lo[b] = k;
        frac[b] = (float)(f < 0 ? 0 : f > 1 ? 1 : f);
        fade[b] = hz <= band_top_hz ? 1.0f : (float)fmax(0.0, 1.0 - log2(hz / band_top_hz));
    }
#pragma omp parallel for num_threads(threads > 0 ? threads : omp_get_max_threads()) schedule(static)
    for (int64_t i = 0; i < w->ns; i++) {
        float *env = p->envelope + w->src_index[i] * bins;
        const float *c = corr + i * kc;
        for (int b = 0; b < bins; b++) {
            float g = c[lo[b]] * (1.0f - frac[b]) + c[lo[b] + 1] * frac[b];
            env[b] *= expf(g * fade[b]);
        }
    }
done:
    free(lo);
    free(frac);
    free(fade);
}

avo_status retrieval_correct(avo_voice_params *p, const avo_voice_analysis *target, double amount, double band_top_hz,
                             int threads, avo_error *err) {
    if (amount <= 0.0) return AVO_OK;
    retrieval_work w;
    memset(&w, 0, sizeof w);
    avo_status st = prepare(&w, p, target, band_top_hz, err);
    if (!st && w.src_index) st = retrieve(&w, threads, err);
    if (!st && w.src_index) {
        float *corr = malloc(sizeof(float) * (size_t)(w.ns * w.kc));
        if (!corr) st = avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory for frame retrieval");
        else {
            corrections(&w, amount, corr);
            apply(p, &w, target->grid_hz, corr, band_top_hz, threads);
            free(corr);
        }
    }
    work_free(&w);
    return st;
}
