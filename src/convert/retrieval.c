/* Frame retrieval: each source frame takes the timbre of the target frames that match it.
 *
 * Matching happens in a speaker-normalised space: mel-cepstra (DCT of the log envelope on the mel
 * grid, c0 dropped) with cepstral mean and variance normalisation per speaker, so that what is left
 * is mostly what is being sung (vowel, openness), not who sings it. The source has already been warped
 * to the target's vocal-tract length. Voiced frames are matched against the target's voiced frames
 * and take their envelope and aperiodicity; unvoiced frames with sound (consonants, breaths) are matched against the target's
 * unvoiced frames and take their envelope. The k nearest frames are blended with inverse-square-
 * distance weights, as RVC blends its index; "nearest" may be ranked with hubness reduction (CSLS,
 * see hub_radii) so that the output uses more of the target's frames. */
#include "converter_internal.h"

#include <cblas.h>
#include <omp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_NEIGHBOURS = 16, MAX_CEPSTRA = 24, BLOCK_ROWS = 128, MAX_GRID = 256, HUB_K = 10 };

/* One matching problem: source rows against target rows, both log envelopes on the first kc grid
 * points. Results: per source row, k target indices and normalised weights. */
typedef struct match_set {
    int kc, dims, k;       /* grid points used, feature dims, neighbours */
    int64_t ns, nt;
    int64_t *src_index;    /* source row -> params frame */
    float *src_env;        /* ns x kc */
    const float *tgt_env;  /* nt rows of stride tgt_stride */
    int tgt_stride;
    float *src_feat;       /* ns x dims */
    float *tgt_feat;       /* nt x dims */
    float *tgt_norm;       /* nt */
    int64_t *nn;           /* ns x k */
    float *nw;             /* ns x k */
} match_set;

static void set_free(match_set *m) {
    free(m->src_index);
    free(m->src_env);
    free(m->src_feat);
    free(m->tgt_feat);
    free(m->tgt_norm);
    free(m->nn);
    free(m->nw);
    memset(m, 0, sizeof *m);
}

/* features = env x dct^T (rows of stride dims), then per-dimension mean/variance normalisation. */
static void cepstra(const float *env, int64_t rows, int env_stride, int kc, const float *dct, int ceps, int dims,
                    float *feat) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, ceps, kc, 1.0f, env, env_stride, dct, kc, 0.0f,
                feat, dims);
    for (int d = 0; d < ceps; d++) {
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

/* Sets up features for the source rows already in m->src_env / m->src_index and the target rows. */
static avo_status set_features(match_set *m, const float *dct, int ceps, avo_error *err) {
    m->dims = ceps;
    const size_t ns = (size_t)m->ns, nt = (size_t)m->nt, dims = (size_t)m->dims;
    m->src_feat = malloc(sizeof(float) * ns * dims);
    m->tgt_feat = malloc(sizeof(float) * nt * dims);
    m->tgt_norm = malloc(sizeof(float) * nt);
    m->nn = malloc(sizeof(int64_t) * ns * (size_t)m->k);
    m->nw = malloc(sizeof(float) * ns * (size_t)m->k);
    if (!m->src_feat || !m->tgt_feat || !m->tgt_norm || !m->nn || !m->nw)
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory for frame retrieval");
    cepstra(m->src_env, m->ns, m->kc, m->kc, dct, ceps, m->dims, m->src_feat);
    cepstra(m->tgt_env, m->nt, m->tgt_stride, m->kc, dct, ceps, m->dims, m->tgt_feat);
    for (size_t i = 0; i < nt; i++) {
        double s = 0.0;
        for (size_t d = 0; d < dims; d++) s += (double)m->tgt_feat[i * dims + d] * m->tgt_feat[i * dims + d];
        m->tgt_norm[i] = (float)s;
    }
    return AVO_OK;
}

/* Keeps the k smallest distances of one row (insertion into a short sorted list). */
static void nearest(const float *dist, int64_t n, int k, int64_t *idx, float *best) {
    for (int q = 0; q < k; q++) best[q] = INFINITY, idx[q] = 0;
    for (int64_t j = 0; j < n; j++) {
        float d = dist[j];
        if (d >= best[k - 1]) continue;
        int q = k - 1;
        while (q > 0 && best[q - 1] > d) best[q] = best[q - 1], idx[q] = idx[q - 1], q--;
        best[q] = d, idx[q] = j;
    }
}

/* Squared distances of source rows [r0, r0 + rows) to every target row into gram (rows x nt). */
static void block_distances(const match_set *m, int64_t r0, int rows, float *gram, int threads) {
    const int dims = m->dims;
    /* -2 a.b + |b|^2 + |a|^2 */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, (int)m->nt, dims, -2.0f, m->src_feat + r0 * dims, dims,
                m->tgt_feat, dims, 0.0f, gram, (int)m->nt);
#pragma omp parallel for num_threads(threads > 0 ? threads : omp_get_max_threads()) schedule(static)
    for (int r = 0; r < rows; r++) {
        float *row = gram + (size_t)r * (size_t)m->nt;
        const float *a = m->src_feat + (r0 + r) * dims;
        float a2 = 0.0f;
        for (int d = 0; d < dims; d++) a2 += a[d] * a[d];
        for (int64_t j = 0; j < m->nt; j++) row[j] = fmaxf(row[j] + m->tgt_norm[j] + a2, 0.0f);
    }
}

/* Inserts d into the sorted (ascending) list of the HUB_K smallest values. */
static void keep_smallest(float *list, float d) {
    if (d >= list[HUB_K - 1]) return;
    int q = HUB_K - 1;
    while (q > 0 && list[q - 1] > d) list[q] = list[q - 1], q--;
    list[q] = d;
}

/* Hubness: with plain nearest neighbours a few target frames (central ones) are the nearest of very
 * many source frames and most of the target's frames are never used, so the output covers a small
 * part of the target's voice. Cross-domain similarity local scaling (CSLS, Conneau et al. 2018) ranks
 * by 2 d(x, y) - r_src(x) - r_tgt(y), r = mean distance to the HUB_K nearest rows of the other side: a
 * target frame close to everything (small r_tgt) is pushed back. hub_tgt[j] gets r_tgt of target j. */
static avo_status hub_radii(const match_set *m, float *gram, int threads, float *hub_tgt, avo_error *err) {
    float *lists = malloc(sizeof(float) * (size_t)m->nt * HUB_K);
    if (!lists) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory for frame retrieval");
    for (int64_t i = 0; i < m->nt * HUB_K; i++) lists[i] = INFINITY;
    for (int64_t r0 = 0; r0 < m->ns; r0 += BLOCK_ROWS) {
        const int rows = (int)(m->ns - r0 < BLOCK_ROWS ? m->ns - r0 : BLOCK_ROWS);
        block_distances(m, r0, rows, gram, threads);
#pragma omp parallel for num_threads(threads > 0 ? threads : omp_get_max_threads()) schedule(static)
        for (int64_t j = 0; j < m->nt; j++)
            for (int r = 0; r < rows; r++) keep_smallest(lists + j * HUB_K, gram[(size_t)r * (size_t)m->nt + j]);
    }
    for (int64_t j = 0; j < m->nt; j++) {
        double s = 0.0;
        int n = 0;
        for (int q = 0; q < HUB_K; q++)
            if (isfinite(lists[j * HUB_K + q])) s += lists[j * HUB_K + q], n++;
        hub_tgt[j] = n ? (float)(s / n) : 0.0f;
    }
    free(lists);
    return AVO_OK;
}

/* The k nearest target rows of every source row (CSLS-ranked when hub_tgt is given) and their
 * inverse-square-distance weights (plain distances). */
static avo_status set_search(match_set *m, int threads, int hub_reduction, avo_error *err) {
    const int k = m->k;
    float *gram = malloc(sizeof(float) * (size_t)BLOCK_ROWS * (size_t)m->nt);
    float *hub_tgt = hub_reduction ? malloc(sizeof(float) * (size_t)m->nt) : NULL;
    if (!gram || (hub_reduction && !hub_tgt)) {
        free(gram);
        free(hub_tgt);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory for frame retrieval");
    }
    avo_status st = hub_tgt ? hub_radii(m, gram, threads, hub_tgt, err) : AVO_OK;
    for (int64_t r0 = 0; r0 < m->ns && !st; r0 += BLOCK_ROWS) {
        const int rows = (int)(m->ns - r0 < BLOCK_ROWS ? m->ns - r0 : BLOCK_ROWS);
        block_distances(m, r0, rows, gram, threads);
#pragma omp parallel for num_threads(threads > 0 ? threads : omp_get_max_threads()) schedule(static)
        for (int r = 0; r < rows; r++) {
            float *row = gram + (size_t)r * (size_t)m->nt;
            int64_t *idx = m->nn + (r0 + r) * k;
            float best[MAX_NEIGHBOURS];
            if (hub_tgt) {
                float near[HUB_K];
                for (int q = 0; q < HUB_K; q++) near[q] = INFINITY;
                for (int64_t j = 0; j < m->nt; j++) keep_smallest(near, row[j]);
                double rs = 0.0;
                int n = 0;
                for (int q = 0; q < HUB_K; q++)
                    if (isfinite(near[q])) rs += near[q], n++;
                const float r_src = n ? (float)(rs / n) : 0.0f;
                /* rank in place by CSLS, then take the plain distances of the chosen back for the weights */
                for (int64_t j = 0; j < m->nt; j++) row[j] = 2.0f * row[j] - r_src - hub_tgt[j];
                nearest(row, m->nt, k, idx, best);
                for (int q = 0; q < k; q++) best[q] = 0.5f * (best[q] + r_src + hub_tgt[idx[q]]);
            } else {
                nearest(row, m->nt, k, idx, best);
            }
            double wsum = 0.0, wk[MAX_NEIGHBOURS];
            for (int q = 0; q < k; q++) wk[q] = 1.0 / (fmax(best[q], 0.0f) + 1e-3), wsum += wk[q];
            for (int q = 0; q < k; q++) m->nw[(r0 + r) * k + q] = (float)(wk[q] / wsum);
        }
    }
    free(gram);
    free(hub_tgt);
    return st;
}

avo_status retrieval_neighbours(const float *src_feat, int64_t ns, const float *tgt_feat, int64_t nt, int dims, int k,
                                int hub_reduction, int threads, int64_t *nn, float *nw, avo_error *err) {
    if (!src_feat || !tgt_feat || !nn || !nw || ns < 1 || nt < 1 || dims < 1 || k < 1 || k > MAX_NEIGHBOURS || k > nt)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "frame retrieval: bad neighbour search arguments");
    match_set m;
    memset(&m, 0, sizeof m);
    m.dims = dims, m.k = k, m.ns = ns, m.nt = nt;
    m.src_feat = (float *)src_feat; /* read only here */
    m.tgt_feat = (float *)tgt_feat;
    m.nn = nn, m.nw = nw;
    m.tgt_norm = malloc(sizeof(float) * (size_t)nt);
    if (!m.tgt_norm) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory for frame retrieval");
    for (int64_t i = 0; i < nt; i++) {
        double s2 = 0.0;
        for (int d = 0; d < dims; d++) s2 += (double)tgt_feat[i * dims + d] * tgt_feat[i * dims + d];
        m.tgt_norm[i] = (float)s2;
    }
    avo_status st = set_search(&m, threads, hub_reduction, err);
    free(m.tgt_norm);
    return st;
}

/* Blend of the neighbours' rows (values of stride `stride`, first kc used) for source row i. */
static void blend_row(const match_set *m, int64_t i, const float *values, int stride, float *out) {
    memset(out, 0, sizeof(float) * (size_t)m->kc);
    for (int q = 0; q < m->k; q++) {
        const float w = m->nw[i * m->k + q];
        const float *v = values + m->nn[i * m->k + q] * stride;
        for (int c = 0; c < m->kc; c++) out[c] += w * v[c];
    }
}

/* Correction per source row on the grid: retrieved minus source, levels equalised (the source keeps its
 * loudness), smoothed over +-2 neighbouring rows of the same run, scaled by amount and clamped to
 * +-20 dB of power. */
static void corrections(const match_set *m, double amount, float *corr) {
    const int kc = m->kc;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < m->ns; i++) {
        const float *s = m->src_env + i * kc;
        double acc[MAX_GRID];
        float r[MAX_GRID];
        for (int q = 0; q < kc; q++) acc[q] = 0.0;
        int used = 0;
        for (int64_t j = i - 2; j <= i + 2; j++) {
            if (j < 0 || j >= m->ns || m->src_index[j] - m->src_index[i] != j - i) continue;
            blend_row(m, j, m->tgt_env, m->tgt_stride, r);
            for (int q = 0; q < kc; q++) acc[q] += r[q];
            used++;
        }
        double rmean = 0.0, lvl = 0.0;
        for (int q = 0; q < kc; q++) acc[q] /= used, rmean += acc[q], lvl += s[q];
        const double shift = (lvl - rmean) / kc;
        for (int q = 0; q < kc; q++) {
            double c = amount * (acc[q] + shift - s[q]);
            corr[i * kc + q] = (float)(c > 4.6 ? 4.6 : c < -4.6 ? -4.6 : c);
        }
    }
}

/* Grid-to-bin interpolation table with a fade above band_top_hz. */
typedef struct bin_map {
    int *lo;
    float *frac, *fade;
} bin_map;

static int bin_map_make(bin_map *bm, const avo_voice_params *p, const float *grid, int kc, double band_top_hz) {
    const int bins = p->bins;
    const double hz_per_bin = (double)p->sample_rate / p->fft_size;
    bm->lo = malloc(sizeof(int) * (size_t)bins);
    bm->frac = malloc(sizeof(float) * (size_t)bins);
    bm->fade = malloc(sizeof(float) * (size_t)bins);
    if (!bm->lo || !bm->frac || !bm->fade) return -1;
    for (int b = 0; b < bins; b++) {
        double hz = b * hz_per_bin;
        int k = 0;
        while (k < kc - 2 && grid[k + 1] <= hz) k++;
        double f = (hz - grid[k]) / (grid[k + 1] - grid[k]);
        bm->lo[b] = k;
        bm->frac[b] = (float)(f < 0 ? 0 : f > 1 ? 1 : f);
        bm->fade[b] = hz <= band_top_hz ? 1.0f : (float)fmax(0.0, 1.0 - log2(hz / band_top_hz));
    }
    return 0;
}

static void bin_map_free(bin_map *bm) {
    free(bm->lo);
    free(bm->frac);
    free(bm->fade);
}

/* Applies grid corrections to the envelopes bin by bin, fading them out above band_top_hz. */
static void apply_env(avo_voice_params *p, const match_set *m, const bin_map *bm, const float *corr, int threads) {
    const int kc = m->kc, bins = p->bins;
#pragma omp parallel for num_threads(threads > 0 ? threads : omp_get_max_threads()) schedule(static)
    for (int64_t i = 0; i < m->ns; i++) {
        float *env = p->envelope + m->src_index[i] * bins;
        const float *c = corr + i * kc;
        for (int b = 0; b < bins; b++) {
            float g = c[bm->lo[b]] * (1.0f - bm->frac[b]) + c[bm->lo[b] + 1] * bm->frac[b];
            env[b] *= expf(g * bm->fade[b]);
        }
    }
}

/* Aperiodicity of voiced frames: the neighbours' blend (smoothed like the envelopes) mixed in by amount
 * below the band top. */
static void apply_ap(avo_voice_params *p, const match_set *m, const bin_map *bm, const float *tgt_ap, double amount,
                     int threads) {
    const int kc = m->kc, bins = p->bins;
#pragma omp parallel for num_threads(threads > 0 ? threads : omp_get_max_threads()) schedule(static)
    for (int64_t i = 0; i < m->ns; i++) {
        float r[MAX_GRID], acc[MAX_GRID];
        for (int q = 0; q < kc; q++) acc[q] = 0.0f;
        int used = 0;
        for (int64_t j = i - 2; j <= i + 2; j++) {
            if (j < 0 || j >= m->ns || m->src_index[j] - m->src_index[i] != j - i) continue;
            blend_row(m, j, tgt_ap, m->tgt_stride, r);
            for (int q = 0; q < kc; q++) acc[q] += r[q];
            used++;
        }
        for (int q = 0; q < kc; q++) acc[q] /= (float)used;
        float *ap = p->aperiodicity + m->src_index[i] * bins;
        for (int b = 0; b < bins; b++) {
            const float v = acc[bm->lo[b]] * (1.0f - bm->frac[b]) + acc[bm->lo[b] + 1] * bm->frac[b];
            const float w = (float)amount * bm->fade[b];
            ap[b] = (1.0f - w) * ap[b] + w * v;
        }
    }
}

/* Grid points below the band top, and the DCT of the cepstra. */
static int grid_points(const avo_voice_analysis *t, double band_top_hz) {
    int kc = 0;
    while (kc < t->grid_size && kc < MAX_GRID && t->grid_hz[kc] <= band_top_hz) kc++;
    return kc;
}

/* Matches, corrects and applies one set whose source rows are selected already (m->ns, src_index,
 * src_env filled; target rows set). */
static avo_status run_set(avo_voice_params *p, match_set *m, const avo_voice_analysis *t, const float *dct, int ceps,
                          const float *tgt_ap, const retrieval_options *opt, double amount, avo_error *err) {
    avo_status st = set_features(m, dct, ceps, err);
    if (!st) st = set_search(m, opt->threads, opt->hub_reduction, err);
    if (st) return st;
    float *corr = malloc(sizeof(float) * (size_t)(m->ns * m->kc));
    bin_map bm = {0};
    if (!corr || bin_map_make(&bm, p, t->grid_hz, m->kc, opt->band_top_hz)) {
        free(corr);
        bin_map_free(&bm);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory for frame retrieval");
    }
    corrections(m, amount, corr);
    apply_env(p, m, &bm, corr, opt->threads);
    if (tgt_ap && opt->ap_amount > 0.0) apply_ap(p, m, &bm, tgt_ap, opt->ap_amount, opt->threads);
    free(corr);
    bin_map_free(&bm);
    return AVO_OK;
}

/* Selects source frames (voiced, or unvoiced above floor_level) into m with their grid envelopes. */
static avo_status select_rows(const avo_voice_params *p, const avo_voice_analysis *t, int voiced, double floor_level,
                              match_set *m, avo_error *err) {
    m->ns = 0;
    m->src_index = malloc(sizeof(int64_t) * (size_t)(p->frames + 1));
    m->src_env = malloc(sizeof(float) * (size_t)(p->frames + 1) * (size_t)m->kc);
    if (!m->src_index || !m->src_env) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory for frame retrieval");
    for (int64_t i = 0; i < p->frames; i++) {
        if ((p->f0_hz[i] > 0.0f) != voiced) continue;
        float *row = m->src_env + m->ns * m->kc;
        envelope_on_grid(p, i, t->grid_hz, m->kc, row);
        if (!voiced) {
            double lvl = 0.0;
            for (int q = 0; q < m->kc; q++) lvl += row[q];
            if (lvl / m->kc <= floor_level) continue;
        }
        m->src_index[m->ns++] = i;
    }
    return AVO_OK;
}

avo_status retrieval_apply(avo_voice_params *p, const avo_voice_analysis *t, const retrieval_options *opt,
                           avo_error *err) {
    const int k = opt->neighbours < 1 ? 1 : opt->neighbours > MAX_NEIGHBOURS ? MAX_NEIGHBOURS : opt->neighbours;
    const int kc = grid_points(t, opt->band_top_hz);
    const int ceps = kc - 1 < MAX_CEPSTRA ? kc - 1 : MAX_CEPSTRA;
    if (kc < 16 || (opt->amount <= 0.0 && opt->unvoiced_amount <= 0.0 && opt->ap_amount <= 0.0)) return AVO_OK;
    float *dct = malloc(sizeof(float) * (size_t)ceps * (size_t)kc);
    if (!dct) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory for frame retrieval");
    for (int d = 0; d < ceps; d++)
        for (int q = 0; q < kc; q++) dct[d * kc + q] = (float)cos(M_PI * (double)(d + 1) * ((double)q + 0.5) / (double)kc);
    avo_status st = AVO_OK;
    double voiced_level = 0.0;
    int64_t voiced_rows = 0;

    /* voiced frames */
    match_set m;
    memset(&m, 0, sizeof m);
    m.kc = kc, m.k = k, m.nt = t->frame_count, m.tgt_env = t->frames, m.tgt_stride = t->grid_size;
    st = select_rows(p, t, 1, 0.0, &m, err);
    if (!st && m.ns > 0 && m.nt >= k) {
        for (int64_t i = 0; i < m.ns; i++)
            for (int q = 0; q < kc; q++) voiced_level += m.src_env[i * kc + q];
        voiced_rows = m.ns;
        st = run_set(p, &m, t, dct, ceps, opt->amount > 0.0 ? t->frame_ap : NULL, opt, opt->amount, err);
    }
    set_free(&m);

    /* unvoiced frames with sound: within 45 dB of the source's mean voiced level */
    if (!st && opt->unvoiced_amount > 0.0 && t->unvoiced_env && t->unvoiced_count >= k && voiced_rows > 0) {
        const double floor_level = voiced_level / ((double)voiced_rows * kc) - 45.0 / (10.0 / log(10.0));
        m.kc = kc, m.k = k, m.nt = t->unvoiced_count, m.tgt_env = t->unvoiced_env, m.tgt_stride = t->grid_size;
        st = select_rows(p, t, 0, floor_level, &m, err);
        if (!st && m.ns >= 2) {
            retrieval_options uopt = *opt;
            uopt.ap_amount = 0.0;
            st = run_set(p, &m, t, dct, ceps, NULL, &uopt, opt->unvoiced_amount, err);
        }
        set_free(&m);
    }
    free(dct);
    return st;
}

avo_status retrieval_correct(avo_voice_params *p, const avo_voice_analysis *target, double amount, double band_top_hz,
                             int threads, avo_error *err) {
    retrieval_options opt;
    memset(&opt, 0, sizeof opt);
    opt.amount = amount;
    opt.band_top_hz = band_top_hz;
    opt.neighbours = 4;
    opt.threads = threads;
    return retrieval_apply(p, target, &opt, err);
}
