/* F0 agreement, nearest-neighbour mel-cepstral distortion and the naturalness distance. */
#include "eval/eval_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MCD_CONST (10.0 / M_LN10 * M_SQRT2) /* 10/ln10 * sqrt(2): MCD in dB from cepstral distance */

/* ---- F0 ---- */

avo_status avo_eval_f0_compare(const avo_f0_track *output, const avo_f0_track *source, double transpose_semitones,
                               avo_eval_f0_result *out, avo_error *err) {
    if (!output || !source || !out || !isfinite(transpose_semitones))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "eval: F0 comparison needs two tracks and a finite transpose");
    memset(out, 0, sizeof *out);
    out->rmse_cents = out->corr = out->rmse_fine_cents = out->gross_error_rate = NAN;
    if (output->frames <= 0 || source->frames <= 0 || !output->f0_hz || !source->f0_hz)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "eval: F0 comparison of an empty track (%lld and %lld frames)",
                             (long long)output->frames, (long long)source->frames);
    if (fabs(output->hop_seconds - source->hop_seconds) > 1e-9)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "eval: F0 tracks have different hops (%g s and %g s)",
                             output->hop_seconds, source->hop_seconds);
    const int64_t n = output->frames < source->frames ? output->frames : source->frames;
    const double shift_cents = 100.0 * transpose_semitones;
    const double gross_cents = 1200.0 * log2(1.2);
    int64_t agree = 0, both = 0, gross = 0;
    double se_fine = 0.0, se = 0.0, sx = 0.0, sy = 0.0, sxx = 0.0, syy = 0.0, sxy = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float a = output->f0_hz[i], b = source->f0_hz[i];
        const int va = a > 0.0f && isfinite(a), vb = b > 0.0f && isfinite(b);
        agree += va == vb;
        if (!(va && vb)) continue;
        /* cents relative to 1 Hz keeps the sums well conditioned */
        const double x = 1200.0 * log2((double)a), y = 1200.0 * log2((double)b) + shift_cents;
        se += (x - y) * (x - y);
        if (fabs(x - y) > gross_cents) gross++;
        else se_fine += (x - y) * (x - y);
        sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y;
        both++;
    }
    out->frames = n;
    out->both_voiced = both;
    out->voicing_agreement = (double)agree / (double)n;
    if (both > 0) {
        out->rmse_cents = sqrt(se / (double)both);
        out->gross_error_rate = (double)gross / (double)both;
    }
    if (both > gross) out->rmse_fine_cents = sqrt(se_fine / (double)(both - gross));
    if (both >= 3) {
        const double cxx = sxx - sx * sx / both, cyy = syy - sy * sy / both, cxy = sxy - sx * sy / both;
        if (cxx > 1e-9 * both && cyy > 1e-9 * both) out->corr = cxy / sqrt(cxx * cyy);
    }
    return AVO_OK;
}

/* ---- mel cepstra of a recording ---- */

typedef struct mcep_seq {
    int64_t n;
    float *c;              /* n * EV_MCEP */
    unsigned char *active; /* energy activity */
    float *flat_db;        /* per frame */
} mcep_seq;

static void mcep_free(mcep_seq *s) {
    free(s->c);
    free(s->active);
    free(s->flat_db);
    memset(s, 0, sizeof *s);
}

static avo_status mcep_of(const avo_evaluator *ev, const avo_audio *a, const char *what, mcep_seq *s, avo_error *err) {
    memset(s, 0, sizeof *s);
    avo_audio m = {0};
    ev_frames fr = {0};
    avo_status st = ev_to_16k_mono(a, &m, err);
    if (!st) st = avo_audio_check_finite(&m, what, err);
    float *f0 = NULL;
    if (!st && ev->f0_smoothing) st = ev_frame_f0(m.samples, m.frames, ev->threads, &f0, err);
    if (!st) st = ev_analyse(&ev->plain, m.samples, m.frames, ev->threads, f0, &fr, err);
    free(f0);
    avo_audio_free(&m);
    if (st) return avo_error_prefix(err, "%s", what);
    s->n = fr.n;
    s->c = malloc(sizeof(float) * (size_t)fr.n * EV_MCEP);
    s->active = malloc((size_t)fr.n);
    s->flat_db = fr.flatness_db;
    fr.flatness_db = NULL;
    if (!s->c || !s->active) {
        ev_frames_free(&fr);
        mcep_free(s);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "eval: out of memory for mel cepstra");
    }
    ev_cepstra(fr.logmel, fr.n, 1, EV_MCEP, 1, s->c);
    ev_activity(&fr, s->active);
    ev_frames_free(&fr);
    return AVO_OK;
}

static int seq_frame_voiced(const mcep_seq *s, const avo_f0_track *v, int64_t t) {
    if (!v) return s->active[t];
    /* the F0 track may use another hop: look it up by time */
    if (fabs(v->hop_seconds - 0.010) < 1e-9) return t < v->frames && v->f0_hz[t] > 0.0f && s->active[t];
    return avo_f0_track_at(v, (double)t * EV_HOP / EV_RATE) > 0.0f && s->active[t];
}

avo_status avo_eval_mcd_nn(const avo_evaluator *ev, const avo_audio *a, const avo_f0_track *voiced,
                           const avo_audio *refs, int ref_count, double *mcd_db, avo_error *err) {
    if (!ev || !a || !refs || ref_count <= 0 || !mcd_db)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "eval: MCD needs a recording and at least one reference");
    *mcd_db = NAN;
    mcep_seq q = {0};
    avo_status st = mcep_of(ev, a, "eval: evaluated recording", &q, err);
    /* pool the references' active frames */
    int64_t cap = 0, nref = 0;
    float *pool = NULL;
    for (int r = 0; r < ref_count && !st; r++) {
        mcep_seq s;
        st = mcep_of(ev, &refs[r], "eval: reference recording", &s, err);
        if (st) break;
        if (nref + s.n > cap) {
            cap = 2 * (nref + s.n);
            float *p = realloc(pool, sizeof(float) * (size_t)cap * EV_MCEP);
            if (!p) {
                mcep_free(&s);
                st = avo_error_set(err, AVO_ERR_NO_MEMORY, "eval: out of memory for reference frames");
                break;
            }
            pool = p;
        }
        for (int64_t t = 0; t < s.n; t++)
            if (s.active[t]) memcpy(pool + (nref++) * EV_MCEP, s.c + t * EV_MCEP, sizeof(float) * EV_MCEP);
        mcep_free(&s);
    }
    if (!st && nref == 0) st = avo_error_set(err, AVO_ERR_VALIDATION, "eval: the reference recordings are silent");
    double sum = 0.0;
    int64_t count = 0;
    if (!st) {
        const int64_t nq = q.n;
#pragma omp parallel for num_threads(ev_threads(ev->threads)) schedule(dynamic, 16) reduction(+ : sum, count)
        for (int64_t t = 0; t < nq; t++) {
            if (!seq_frame_voiced(&q, voiced, t)) continue;
            const float *x = q.c + t * EV_MCEP;
            float best = INFINITY;
            for (int64_t j = 0; j < nref; j++) {
                const float *y = pool + j * EV_MCEP;
                float d = 0.0f;
                for (int k = 0; k < EV_MCEP; k++) d += (x[k] - y[k]) * (x[k] - y[k]);
                best = d < best ? d : best;
            }
            sum += MCD_CONST * sqrt((double)best);
            count++;
        }
        if (count == 0)
            st = avo_error_set(err, AVO_ERR_VALIDATION,
                               "eval: the evaluated recording has no voiced frames; check that it contains singing");
        else
            *mcd_db = sum / (double)count;
    }
    free(pool);
    mcep_free(&q);
    return st;
}

/* ---- naturalness ---- */

#define MS_SEG 32                  /* 320 ms segments of cepstral trajectories */
#define MS_BINS (MS_SEG / 2)       /* modulation bins 1..16 (3.1..50 Hz), DC dropped */
#define MS_GROUPS 4
static const int ms_group_lo[MS_GROUPS + 1] = {0, 4, 8, 16, EV_MCEP}; /* c1-4, c5-8, c9-16, c17-24 */

typedef struct nat_stats {
    double flat_mean, flat_std;          /* dB, over active frames */
    double ms[MS_GROUPS][MS_BINS];       /* mean modulation power (linear) per group and bin */
    int64_t flat_frames, segments;
} nat_stats;

static void nat_accumulate(const mcep_seq *s, nat_stats *ns, double *fsum, double *fsq) {
    for (int64_t t = 0; t < s->n; t++) {
        if (!s->active[t]) continue;
        *fsum += s->flat_db[t];
        *fsq += (double)s->flat_db[t] * s->flat_db[t];
        ns->flat_frames++;
    }
    double win[MS_SEG];
    for (int i = 0; i < MS_SEG; i++) win[i] = 0.5 - 0.5 * cos(2.0 * M_PI * (i + 0.5) / MS_SEG);
    for (int64_t start = 0; start + MS_SEG <= s->n; start += MS_SEG / 2) {
        int all = 1;
        for (int i = 0; i < MS_SEG && all; i++) all = s->active[start + i];
        if (!all) continue;
        for (int d = 0; d < EV_MCEP; d++) {
            int g = 0;
            while (d >= ms_group_lo[g + 1]) g++;
            double mean = 0.0, x[MS_SEG];
            for (int i = 0; i < MS_SEG; i++) mean += s->c[(start + i) * EV_MCEP + d];
            mean /= MS_SEG;
            for (int i = 0; i < MS_SEG; i++) x[i] = (s->c[(start + i) * EV_MCEP + d] - mean) * win[i];
            /* direct DFT: 16 bins x 32 points is cheaper than planning */
            for (int b = 1; b <= MS_BINS; b++) {
                double re = 0.0, im = 0.0;
                for (int i = 0; i < MS_SEG; i++) {
                    re += x[i] * cos(2.0 * M_PI * b * i / MS_SEG);
                    im -= x[i] * sin(2.0 * M_PI * b * i / MS_SEG);
                }
                ns->ms[g][b - 1] += (re * re + im * im) / (ms_group_lo[g + 1] - ms_group_lo[g]);
            }
        }
        ns->segments++;
    }
}

static avo_status nat_stats_of(const avo_evaluator *ev, const avo_audio *clips, int count, const char *what,
                               nat_stats *ns, avo_error *err) {
    memset(ns, 0, sizeof *ns);
    double fsum = 0.0, fsq = 0.0;
    for (int r = 0; r < count; r++) {
        mcep_seq s;
        avo_status st = mcep_of(ev, &clips[r], what, &s, err);
        if (st) return st;
        nat_accumulate(&s, ns, &fsum, &fsq);
        mcep_free(&s);
    }
    if (ns->segments == 0 || ns->flat_frames < 2)
        return avo_error_set(err, AVO_ERR_VALIDATION,
                             "%s: no 320 ms stretch of continuous sound to measure naturalness on; use a longer recording",
                             what);
    ns->flat_mean = fsum / ns->flat_frames;
    ns->flat_std = sqrt(fmax(fsq / ns->flat_frames - ns->flat_mean * ns->flat_mean, 0.0));
    for (int g = 0; g < MS_GROUPS; g++)
        for (int b = 0; b < MS_BINS; b++) ns->ms[g][b] /= (double)ns->segments;
    return AVO_OK;
}

/* Equal weight to the two families: RMS dB difference of the modulation spectra, and of flatness mean/std. */
static double nat_distance(const nat_stats *a, const nat_stats *b) {
    double ms = 0.0;
    for (int g = 0; g < MS_GROUPS; g++)
        for (int k = 0; k < MS_BINS; k++) {
            const double d = 10.0 * log10((a->ms[g][k] + 1e-12) / (b->ms[g][k] + 1e-12));
            ms += d * d;
        }
    ms /= MS_GROUPS * MS_BINS;
    const double dm = a->flat_mean - b->flat_mean, ds = a->flat_std - b->flat_std;
    const double fl = 0.5 * (dm * dm + ds * ds);
    return sqrt(0.5 * ms + 0.5 * fl);
}

avo_status avo_eval_naturalness(const avo_evaluator *ev, const avo_audio *a, const avo_audio *refs, int ref_count,
                                double *distance_db, avo_error *err) {
    if (!ev || !a || !refs || ref_count <= 0 || !distance_db)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "eval: naturalness needs a recording and references");
    *distance_db = NAN;
    nat_stats x, r;
    avo_status st = nat_stats_of(ev, a, 1, "eval: evaluated recording", &x, err);
    if (!st) st = nat_stats_of(ev, refs, ref_count, "eval: reference recordings", &r, err);
    if (!st) *distance_db = nat_distance(&x, &r);
    return st;
}
