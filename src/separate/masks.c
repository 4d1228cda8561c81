/* Vocal mask for one block: an accompaniment magnitude model built from the repeating background
 * (REPET-SIM), the percussive part (median-filter HPSS) and, for stereo, the side channel; the vocal
 * model is what the mixture has beyond it; a soft Wiener-style mask splits the mid spectrum. A
 * harmonic comb along the lead vocal's F0 (sep_f0_comb) then reshapes the mask in voiced frames, and
 * the low partials are fitted as sinusoids or linear chirps (sep_harmonic_fit): a fitted partial
 * takes one complex amplitude from its five bins, so less of the accompaniment under it goes along
 * than with a mask near 1 there. */
#include "separate/sep_internal.h"

#include "dsp/median_filter.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Picks, for frame t, up to k frames most similar to it (best local maxima of its similarity row s,
 * t itself included, at least gap frames apart). Returns how many. */
static int repet_neighbours(const float *s, int64_t T, int64_t t, int k, int gap, int *sel) {
    int cand[256];
    float cs[256];
    int nc = 0;
    const int cap = 4 * k < 256 ? 4 * k : 256;
    for (int64_t j = 0; j < T; j++) {
        const float v = s[j];
        if (nc == cap && v <= cs[nc - 1]) continue;
        if ((j > 0 && s[j - 1] > v) || (j + 1 < T && s[j + 1] > v)) continue;
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
    return ns;
}

/* Background model of frame t from its neighbours sel[0..ns): their geometric mean (mean of lg, the
 * log magnitudes) or median, never above the frame itself. */
static void repet_model_frame(const float *mag, const float *lg, int bins, int64_t t, const int *sel, int ns, int geo,
                              float *model) {
    float *mt = model + t * bins;
    const float *x = mag + t * bins;
    if (geo) {
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
        return;
    }
    float vals[64];
    for (int f = 0; f < bins; f++) {
        for (int q = 0; q < ns; q++) vals[q] = mag[(int64_t)sel[q] * bins + f];
        const float m = dsp_small_median(vals, ns);
        mt[f] = m < x[f] ? m : x[f];
    }
}

/* REPET-SIM: for every frame, the geometric mean (or median) of the k most similar frames (cosine
 * similarity of band-summed magnitudes, at least `gap` frames apart) models the repeating background.
 * With stride 2 only even frames search; frame t + 1 takes the neighbours of t shifted by one frame,
 * which at a 12 ms hop is the same place in the repeat. This halves the similarity matrix. */
static int repet_sim(const float *mag, int64_t T, int bins, int n_fft, int rate, int k, int gap, int geo, int stride,
                     float *model, sep_work *w, int threads) {
    /* Features: magnitudes below ~6 kHz summed in pairs of bins; enough to tell frames apart. */
    int fmax = (int)(6000.0 * n_fft / rate);
    if (fmax > bins) fmax = bins;
    const int d = (fmax + 1) / 2;
    float *feat = w->feat, *sim = w->sim, *lg = w->lg;
    if (stride != 2) stride = 1;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t t = 0; t < T; t++) {
        float *ft = feat + t * d;
        const float *m = mag + t * bins;
        float norm = 0;
        for (int i = 0; i < d; i++) {
            const float s = m[2 * i] + (2 * i + 1 < fmax ? m[2 * i + 1] : 0.0f);
            ft[i] = s;
            norm += s * s;
        }
        const float g = norm > 0 ? 1.0f / sqrtf(norm) : 0.0f;
        for (int i = 0; i < d; i++) ft[i] *= g;
        /* The geometric mean (a mean of logs) is nearly as robust to sparse vocal peaks as the median
         * and, unlike it, vectorises: a peak 20 dB up in one of 30 frames moves it by 0.7 dB. */
        if (geo) {
            float *l = lg + t * bins;
            for (int f = 0; f < bins; f++) l[f] = logf(m[f] + 1e-12f);
        }
    }
    /* Rows of the searching frames only: with stride 2 the even rows of feat, via a doubled lda. */
    const int64_t R = (T + stride - 1) / stride;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)T, d, 1.0f, feat, d * stride, feat, d, 0.0f, sim,
                (int)T);
    if (k > 64) k = 64;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 8)
    for (int64_t r = 0; r < R; r++) {
        int sel[64];
        const int64_t t = r * stride;
        const int ns = repet_neighbours(sim + r * T, T, t, k, gap, sel);
        repet_model_frame(mag, lg, bins, t, sel, ns, geo, model);
        if (stride == 2 && t + 1 < T) {
            for (int q = 0; q < ns; q++) sel[q] = sel[q] + 1 < T ? sel[q] + 1 : (int)T - 1;
            repet_model_frame(mag, lg, bins, t + 1, sel, ns, geo, model);
        }
    }
    return 0;
}

#define CANCEL_TILE 16
/* The prediction's window: a plain box over +-half frames let frames at its edges, where the mix may
 * already have changed, count as much as frame t itself; three nested boxes (weights 3, 2, 1 from the
 * centre out, same extent) gave +0.3 dB accompaniment SDR on both singer halves (fast, 0 dB): 12.36 ->
 * 12.69 and 11.25 -> 11.59; two boxes 12.67 / 11.48, three over 1.5x the extent 12.58 / 11.40. */
#define CANCEL_BOXES 3

int sep_side_cancel(fftwf_complex *mid, const fftwf_complex *side, int shift, fftwf_complex *est, int update_est,
                    const float *wgt, int64_t T, int bins, int half, double max_gain, int threads) {
    /* For each bin, the least-squares prediction of the mid from the side over +-half frames: any source
     * that is not centre-panned appears in both, the centre vocal only in the mid. Box sums via
     * running totals along time, CANCEL_TILE neighbouring bins at a time so that each frame's access
     * is one contiguous run instead of a stride of a whole spectrum. */
    if (!est) est = mid, update_est = 0;
    const double eps = 1e-12;
    static const fftwf_complex zero = {0.0f, 0.0f};
    const int ntiles = (bins + CANCEL_TILE - 1) / CANCEL_TILE;
    int failed = 0;
#pragma omp parallel num_threads(threads)
    {
        double *cr = malloc(sizeof(double) * (size_t)(T + 1) * 3 * CANCEL_TILE);
        if (!cr) {
#pragma omp atomic write
            failed = 1;
        } else {
            double *ci = cr + (size_t)(T + 1) * CANCEL_TILE, *cs = ci + (size_t)(T + 1) * CANCEL_TILE;
#pragma omp for schedule(static)
            for (int tile = 0; tile < ntiles; tile++) {
                const int f0 = tile * CANCEL_TILE;
                const int nf = bins - f0 < CANCEL_TILE ? bins - f0 : CANCEL_TILE;
                for (int j = 0; j < CANCEL_TILE; j++) cr[j] = ci[j] = cs[j] = 0;
                for (int64_t t = 0; t < T; t++) {
                    const int64_t u = t + shift;
                    const fftwf_complex *m = est + t * bins + f0, *s = u >= 0 && u < T ? side + u * bins + f0 : NULL;
                    const double *pr = cr + t * CANCEL_TILE, *pi = ci + t * CANCEL_TILE, *ps = cs + t * CANCEL_TILE;
                    double *nr = cr + (t + 1) * CANCEL_TILE, *ni = ci + (t + 1) * CANCEL_TILE,
                           *ns = cs + (t + 1) * CANCEL_TILE;
                    const float *wt = wgt ? wgt + t * bins + f0 : NULL;
                    for (int j = 0; j < nf; j++) {
                        /* M S*, weighted; the side past the block's ends counts as silent */
                        const double g = s && wt ? wt[j] : s ? 1.0 : 0.0;
                        const float *sj = s ? s[j] : zero;
                        nr[j] = pr[j] + g * ((double)m[j][0] * sj[0] + (double)m[j][1] * sj[1]);
                        ni[j] = pi[j] + g * ((double)m[j][1] * sj[0] - (double)m[j][0] * sj[1]);
                        ns[j] = ps[j] + g * ((double)sj[0] * sj[0] + (double)sj[1] * sj[1]);
                    }
                }
                for (int64_t t = 0; t < T; t++) {
                    /* Window: CANCEL_BOXES nested boxes of half * (q + 1) / CANCEL_BOXES frames either side,
                     * summed, so frames near t weigh more (a stepped pyramid) */
                    int64_t ab[CANCEL_BOXES], bb[CANCEL_BOXES];
                    for (int q = 0; q < CANCEL_BOXES; q++) {
                        const int hq = (half * (q + 1) + CANCEL_BOXES / 2) / CANCEL_BOXES;
                        ab[q] = t - hq < 0 ? 0 : t - hq;
                        bb[q] = t + hq + 1 > T ? T : t + hq + 1;
                    }
                    fftwf_complex *m = mid + t * bins + f0;
                    const int64_t u = t + shift;
                    if (u < 0 || u >= T) continue;
                    const fftwf_complex *s = side + u * bins + f0;
                    for (int j = 0; j < nf; j++) {
                        double ss = eps, hr = 0, hi = 0;
                        for (int q = 0; q < CANCEL_BOXES; q++) {
                            ss += cs[bb[q] * CANCEL_TILE + j] - cs[ab[q] * CANCEL_TILE + j];
                            hr += cr[bb[q] * CANCEL_TILE + j] - cr[ab[q] * CANCEL_TILE + j];
                            hi += ci[bb[q] * CANCEL_TILE + j] - ci[ab[q] * CANCEL_TILE + j];
                        }
                        hr /= ss;
                        hi /= ss;
                        const double g2 = hr * hr + hi * hi;
                        if (g2 > max_gain * max_gain) {
                            const double sc = max_gain / sqrt(g2);
                            hr *= sc;
                            hi *= sc;
                        }
                        const float pr = (float)(hr * s[j][0] - hi * s[j][1]), pim = (float)(hr * s[j][1] + hi * s[j][0]);
                        m[j][0] -= pr;
                        m[j][1] -= pim;
                        if (update_est) {
                            /* this tile's sums are complete, so est may change under them now */
                            est[t * bins + f0 + j][0] -= pr;
                            est[t * bins + f0 + j][1] -= pim;
                        }
                    }
                }
            }
        }
        free(cr);
    }
    return failed ? -1 : 0;
}

int sep_vocal_mask(const sep_params *p, const fftwf_complex *mid, const fftwf_complex *side, int64_t T, int bins,
                   int n_fft, int hop, int rate, int threads, sep_work *w) {
    const int64_t n = T * (int64_t)bins;
    const int iters = p->iterations < 1 ? 1 : p->iterations;
    float *mag = w->mag, *acc = w->acc, *tmp = w->tmp, *share = w->share, *rest = w->rest, *mask = w->mask;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; i++) mag[i] = sqrtf(mid[i][0] * mid[i][0] + mid[i][1] * mid[i][1]);
    if (p->use_hpss) {
        /* Percussive share of each bin, from frequency- against time-median filtering. */
        dsp_median_along_cols(mag, T, bins, p->hpss_time_len, threads, DSP_MEDIAN_AUTO, tmp);
        dsp_median_along_rows(mag, T, bins, p->hpss_freq_len, threads, DSP_MEDIAN_AUTO, share);
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            const float h2 = tmp[i] * tmp[i], p2 = share[i] * share[i];
            share[i] = p2 / (h2 + p2 + 1e-20f);
        }
    }
    const float pw = (float)p->mask_power;
    const int cut = (int)(p->lowcut_hz * n_fft / rate);
    int gap = (int)(p->repet_min_gap_s * rate / hop + 0.5);
    if (gap < 1) gap = 1;
    const int use_side = side && p->use_side;
    const float sg = (float)p->side_gain;
    for (int it = 0; it < iters; it++) {
        /* Later passes model the background from the accompaniment estimate of the previous pass, so
         * the vocals no longer pull the repeating model up. */
        const float *src = mag;
        if (it > 0) {
#pragma omp parallel for num_threads(threads) schedule(static)
            for (int64_t i = 0; i < n; i++) rest[i] = mag[i] * (1.0f - mask[i]);
            src = rest;
        }
        if (p->use_repet) {
            if (repet_sim(src, T, bins, n_fft, rate, p->repet_k, gap, p->repet_geo, p->repet_stride, acc, w, threads))
                return -1;
        } else {
            memset(acc, 0, sizeof(float) * (size_t)n);
        }
        /* Accompaniment model = the largest of the cues; soft mask from the two magnitude models. */
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t t = 0; t < T; t++) {
            for (int f = 0; f < bins; f++) {
                const int64_t i = t * bins + f;
                float a = acc[i];
                if (use_side) {
                    const float sm = sg * sqrtf(side[i][0] * side[i][0] + side[i][1] * side[i][1]);
                    a = sm > a ? sm : a;
                }
                if (p->use_hpss) {
                    const float ph = mag[i] * share[i];
                    a = ph > a ? ph : a;
                }
                float v = mag[i] - a;
                if (v < 0) v = 0;
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
    return 0;
}

void sep_f0_comb(const sep_params *p, const float *f0_hz, const float *conf, int64_t T, int bins, int n_fft, int rate,
                 int threads, float *mask) {
    const float bin_hz = (float)rate / (float)n_fft, floor_g = (float)p->f0_floor, boost = (float)p->f0_boost;
    int fmax = (int)(p->f0_max_hz / bin_hz);
    if (fmax > bins) fmax = bins;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t t = 0; t < T; t++) {
        const float minc = (float)p->f0_min_conf;
        float *m = mask + t * bins;
        float f0 = f0_hz[t] > 0 && conf[t] >= minc ? f0_hz[t] : 0.0f;
        /* Next to a confident frame the voice is usually still (or already) there, with a pitch the
         * tracker is unsure of: such frames take the nearest confident frame's F0. */
        for (int64_t d = 1; !(f0 > 0) && d <= p->f0_hangover; d++) {
            if (t - d >= 0 && f0_hz[t - d] > 0 && conf[t - d] >= minc) f0 = f0_hz[t - d];
            else if (t + d < T && f0_hz[t + d] > 0 && conf[t + d] >= minc) f0 = f0_hz[t + d];
        }
        if (!(f0 > 0)) {
            /* No confident melody: mostly the singer's rests, where any vocal estimate is leakage
             * (consonants are too, but they carry little energy). */
            if (p->unvoiced_gain != 1.0)
                for (int f = 0; f < bins; f++) m[f] *= (float)p->unvoiced_gain;
            continue;
        }
        for (int f = 1; f < fmax; f++) {
            const float fr = (float)f * bin_hz;
            float k = floorf(fr / f0 + 0.5f);
            if (k < 1) k = 1;
            /* Width in bins: the window's main lobe plus the vibrato spread, which grows with k. */
            const float d = (fr - k * f0) / bin_hz, wd = (float)p->f0_width + 0.01f * k * f0 / bin_hz;
            const float c = expf(-0.5f * d * d / (wd * wd));
            const float on = boost == 1.0f ? m[f] : powf(m[f], boost);
            m[f] = c * on + (1.0f - c) * floor_g * m[f];
        }
    }
}

/* Spectrum (up to a constant) of a unit complex exponential at `nu` bins seen through the periodic
 * Hann window of n, in bin f: the window's three-term Dirichlet kernel, phase included, since the fit
 * adds it to the mixture's complex bins. */
static void hann_kernel(double d, int n, double *re, double *im) {
    double acc_r = 0, acc_i = 0;
    const double wts[3] = {0.5, -0.25, -0.25}, sh[3] = {0.0, -1.0, 1.0};
    for (int q = 0; q < 3; q++) {
        const double e = d + sh[q]; /* D(e) = sum_i exp(-2 pi i e i / n) */
        double mag;
        if (fabs(e) < 1e-9) mag = n;
        else mag = sin(M_PI * e) / sin(M_PI * e / n);
        const double ph = -M_PI * e * (n - 1) / n;
        acc_r += wts[q] * mag * cos(ph);
        acc_i += wts[q] * mag * sin(ph);
    }
    *re = acc_r;
    *im = acc_i;
}

#define FIT_HALF SEP_CHIRP_HALF
#define FIT_MAXH SEP_CHIRP_HALF

int sep_chirps_make(sep_chirps *ch, const sep_stft *st, int threads) {
    if (ch->n == st->n && ch->k) return 0;
    sep_chirps_free(ch);
    const int nc = 2 * SEP_CHIRP_C + 1, nd = SEP_CHIRP_DSTEPS + 1, nq = 2 * SEP_CHIRP_HALF + 1, n = st->n;
    ch->k = malloc(sizeof(float) * 2 * (size_t)(nc * nd * nq));
    if (!ch->k) return -1;
    ch->n = n;
#pragma omp parallel for num_threads(threads) schedule(dynamic) collapse(2)
    for (int c = 0; c < nc; c++)
        for (int d = 0; d < nd; d++) {
            const double rate_c = c - SEP_CHIRP_C, delta = (double)d / SEP_CHIRP_DSTEPS - 0.5;
            for (int q = 0; q < nq; q++) {
                /* sum_i win[i] exp(j phi(i)), phi(i) = 2 pi / n (delta u - off i + rate_c u^2 / (2 n)), u = i - n / 2:
                 * phi is quadratic in i, so exp(j phi) follows from two rotations per sample */
                const double off = q - SEP_CHIRP_HALF, w0 = 2.0 * M_PI / n, u0 = -0.5 * n;
                const double ph0 = w0 * (delta * u0 + 0.5 * rate_c * u0 * u0 / n);
                const double d0 = w0 * (delta - off + 0.5 * rate_c * (2.0 * u0 + 1.0) / n), dd = w0 * rate_c / n;
                double zr = cos(ph0), zi = sin(ph0), rr = cos(d0), ri = sin(d0);
                const double gr = cos(dd), gi = sin(dd);
                double re = 0, im = 0;
                for (int i = 0; i < n; i++) {
                    re += st->win[i] * zr;
                    im += st->win[i] * zi;
                    const double tr = zr * rr - zi * ri;
                    zi = zr * ri + zi * rr;
                    zr = tr;
                    const double sr = rr * gr - ri * gi;
                    ri = rr * gi + ri * gr;
                    rr = sr;
                }
                float *e = ch->k + 2 * (((size_t)c * nd + d) * nq + q);
                e[0] = (float)re;
                e[1] = (float)im;
            }
        }
    return 0;
}

void sep_chirps_free(sep_chirps *ch) {
    free(ch->k);
    ch->k = NULL;
    ch->n = 0;
}

void sep_harmonic_fit(const sep_params *p, const float *f0_hz, const float *conf, const fftwf_complex *X,
                      const float *mask, int64_t T, int bins, int n_fft, int rate, const sep_chirps *chirps, int threads,
                      fftwf_complex *V) {
    const double bin_hz = (double)rate / n_fft;
    const double low = p->fit_low_hz > 0 && p->fit_low_hz < p->lowcut_hz ? p->fit_low_hz : p->lowcut_hz;
    const int cut = (int)(low / bin_hz), cut_mask = (int)(p->lowcut_hz / bin_hz);
    const double step = p->fit_step > 0 ? p->fit_step : 0.125, span = p->fit_span;
    const int nsteps = (int)floor(span / step + 1e-9);
    const float resid = (float)p->fit_resid;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t t = 0; t < T; t++) {
        const fftwf_complex *x = X + t * bins;
        fftwf_complex *v = V + t * bins;
        const float *m = mask + t * bins;
        const float f0 = f0_hz[t];
        const int voiced = p->fit_max_hz > 0 && f0 > 0 && conf[t] >= (float)p->f0_min_conf;
        /* Fits first (they read the mixture's bins, which V may alias), then the masked frame. */
        enum { MAXP = 64 };
        int jc[MAXP], jh[MAXP];
        double cr[MAXP][2 * FIT_MAXH + 1], ci[MAXP][2 * FIT_MAXH + 1];
        int np = 0;
        /* F0 change per hop (Hz) from the neighbouring voiced frames: partial k sweeps k times it per hop */
        double slope = 0;
        if (chirps && chirps->k && voiced) {
            const int a = t > 0 && f0_hz[t - 1] > 0, b = t + 1 < T && f0_hz[t + 1] > 0;
            if (a || b) slope = ((b ? f0_hz[t + 1] : f0) - (a ? f0_hz[t - 1] : f0)) / (a + b);
        }
        for (int k = 1; voiced && np < MAXP; k++) {
            const double nu0 = k * f0 / bin_hz;
            int c0 = 0, c1 = 0;
            const int hf = FIT_HALF;
            if (chirps && chirps->k) { /* sweep over the window (4 hops), bins */
                const double sw = k * slope * 4.0 / bin_hz;
                int cc = (int)floor(sw + 0.5);
                cc = cc < -SEP_CHIRP_C ? -SEP_CHIRP_C : cc > SEP_CHIRP_C ? SEP_CHIRP_C : cc;
                c0 = c1 = cc;
                if (p->fit_chirp > 1) {
                    c0 = cc > -SEP_CHIRP_C ? cc - 1 : cc;
                    c1 = cc < SEP_CHIRP_C ? cc + 1 : cc;
                }
            }
            if (nu0 * bin_hz > p->fit_max_hz || nu0 + span + FIT_HALF + 1 >= bins) break;
            if (nu0 < cut + FIT_HALF) continue;
            double best = -1, kr_b[2 * FIT_MAXH + 1], ki_b[2 * FIT_MAXH + 1], ar_b = 0, ai_b = 0;
            int bj = 0;
            for (int cs = c0; cs <= c1; cs++)
            for (int s = -nsteps; s <= nsteps; s++) {
                const double nu = nu0 + s * step;
                const int j0 = (int)floor(nu + 0.5);
                double kr[2 * FIT_MAXH + 1], ki[2 * FIT_MAXH + 1], pr = 0, pi = 0, kk = 0;
                const float *tab = NULL;
                if (chirps && chirps->k) {
                    int di = (int)floor((nu - j0 + 0.5) * SEP_CHIRP_DSTEPS + 0.5);
                    di = di < 0 ? 0 : di > SEP_CHIRP_DSTEPS ? SEP_CHIRP_DSTEPS : di;
                    tab = chirps->k + 2 * (((size_t)(cs + SEP_CHIRP_C) * (SEP_CHIRP_DSTEPS + 1) + di) *
                                               (2 * SEP_CHIRP_HALF + 1) + SEP_CHIRP_HALF);
                }
                for (int q = -hf; q <= hf; q++) {
                    const int f = j0 + q, e = q + hf;
                    if (tab) kr[e] = tab[2 * q], ki[e] = tab[2 * q + 1];
                    else hann_kernel(f - nu, n_fft, &kr[e], &ki[e]);
                    /* <K, X> = sum conj(K) X */
                    pr += kr[e] * x[f][0] + ki[e] * x[f][1];
                    pi += kr[e] * x[f][1] - ki[e] * x[f][0];
                    kk += kr[e] * kr[e] + ki[e] * ki[e];
                }
                const double e = (pr * pr + pi * pi) / (kk + 1e-30);
                if (e > best) {
                    best = e, bj = j0;
                    ar_b = pr / (kk + 1e-30), ai_b = pi / (kk + 1e-30);
                    memcpy(kr_b, kr, sizeof kr);
                    memcpy(ki_b, ki, sizeof ki);
                }
            }
            jc[np] = bj;
            jh[np] = hf;
            for (int q = 0; q < 2 * hf + 1; q++) { /* c K */
                cr[np][q] = ar_b * kr_b[q] - ai_b * ki_b[q];
                ci[np][q] = ar_b * ki_b[q] + ai_b * kr_b[q];
            }
            np++;
        }
        /* Lobes of neighbouring partials may touch at a low F0; the later one then wins those bins. */
        float keep[2 * MAXP * (2 * FIT_MAXH + 1)];
        int nk = 0;
        for (int i = 0; i < np; i++)
            for (int q = -jh[i]; q <= jh[i]; q++) {
                const int f = jc[i] + q;
                keep[nk++] = x[f][0];
                keep[nk++] = x[f][1];
            }
        for (int f = 0; f < bins; f++) {
            v[f][0] = x[f][0] * m[f];
            v[f][1] = x[f][1] * m[f];
        }
        nk = 0;
        for (int i = 0; i < np; i++)
            for (int q = 0; q < 2 * jh[i] + 1; q++) {
                const int f = jc[i] + q - jh[i];
                const float xr = keep[nk++], xi = keep[nk++];
                const float sr = (float)cr[i][q], si = (float)ci[i][q];
                /* under the low cut (a low voice's fundamental over the bass) only the sinusoid */
                const float rs = jc[i] < cut_mask ? 0.0f : resid;
                v[f][0] = sr + rs * (xr - sr);
                v[f][1] = si + rs * (xi - si);
            }
    }
}

static void *grow(void *p, size_t bytes, int fft) {
    if (fft) {
        fftwf_free(p);
        return fftwf_malloc(bytes);
    }
    free(p);
    return malloc(bytes);
}

int sep_work_reserve(sep_work *w, int64_t len, int64_t frames, int bins, int with_e) {
    if (len <= w->cap_len && frames <= w->cap_frames && bins <= w->cap_bins && w->sim && (!with_e || w->E)) return 0;
    if (len < w->cap_len) len = w->cap_len;
    if (frames < w->cap_frames) frames = w->cap_frames;
    if (bins < w->cap_bins) bins = w->cap_bins;
    const size_t n = (size_t)frames * (size_t)bins, fl = sizeof(float);
    int ok = 1;
    ok &= !!(w->mid = grow(w->mid, fl * (size_t)len, 0));
    ok &= !!(w->side = grow(w->side, fl * (size_t)len, 0));
    ok &= !!(w->M = grow(w->M, sizeof(fftwf_complex) * n, 1));
    ok &= !!(w->S = grow(w->S, sizeof(fftwf_complex) * n, 1));
    fftwf_free(w->E);
    w->E = NULL;
    if (with_e) ok &= !!(w->E = fftwf_malloc(sizeof(fftwf_complex) * n));
    float **bufs[] = {&w->mask, &w->mag, &w->acc, &w->tmp, &w->share, &w->rest, &w->lg, &w->feat};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ok &= !!(*bufs[i] = grow(*bufs[i], fl * n, 0));
    ok &= !!(w->sim = grow(w->sim, fl * (size_t)frames * (size_t)frames, 0));
    if (!ok) {
        sep_work_free(w);
        return -1;
    }
    w->cap_len = len;
    w->cap_frames = frames;
    w->cap_bins = bins;
    return 0;
}

void sep_work_free(sep_work *w) {
    sep_chirps_free(&w->chirps);
    free(w->mid);
    free(w->side);
    fftwf_free(w->M);
    fftwf_free(w->S);
    fftwf_free(w->E);
    float *bufs[] = {w->mask, w->mag, w->acc, w->tmp, w->share, w->rest, w->lg, w->feat, w->sim};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    memset(w, 0, sizeof *w);
}
