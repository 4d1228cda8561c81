/* retrieval: synthetic voices with known envelopes. Voiced source frames must take the envelope and the
 * aperiodicity of the target frames that sing the same vowel; unvoiced frames with sound take the
 * target's consonant of the same kind. */
#include "convert/converter_internal.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { GRID = 96, RATE = 16000, FFT = 1024, RUN = 20, RUNS = 8 };

static double bump(double hz, double centre, double width, double height) {
    const double z = (hz - centre) / width;
    return height * exp(-0.5 * z * z);
}

/* Natural-log power envelopes. voice 0 = target, 1 = source; cls 0/1 = vowels, 2/3 = consonants. */
static double shape(int voice, int cls, double hz) {
    const double tilt = voice == 0 ? -hz / 3000.0 : -hz / 1500.0;
    const double own = voice == 0 ? bump(hz, 3500, 400, 2.0) : bump(hz, 5000, 500, 2.0); /* speaker's mark */
    const double skew = voice == 0 ? 1.0 : 0.96;
    switch (cls) {
    case 0: return tilt + own + 3.0 * bump(hz, 500 * skew, 150, 1) + 2.5 * bump(hz, 1500 * skew, 200, 1);
    case 1: return tilt + own + 3.0 * bump(hz, 300 * skew, 100, 1) + 2.5 * bump(hz, 2300 * skew, 250, 1);
    case 2: return -4.0 + (voice == 0 ? bump(hz, 5500, 600, 3.0) : bump(hz, 5000, 800, 2.5));
    default: return -5.0 + hz / 4000.0 + (voice == 0 ? bump(hz, 1200, 500, 1.5) : bump(hz, 1500, 600, 0.8));
    }
}

static uint64_t rng = 12345;
static double noise(void) { /* uniform in [-0.5, 0.5) */
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) / 9007199254740992.0 - 0.5;
}

static void fill_row(float *row, const float *grid, int voice, int cls) {
    for (int k = 0; k < GRID; k++) row[k] = (float)(shape(voice, cls, grid[k]) + 0.1 * noise());
}

/* Target: vowels 0/1 at 200 Hz with aperiodicity 0.6 (vowel 0) and 0.2 (vowel 1); consonants 2/3 as
 * unvoiced frames. */
static avo_voice_analysis *make_target(void) {
    const int64_t nv = 600, nu = 300;
    avo_voice_analysis *t = calloc(1, sizeof *t);
    t->sample_rate = RATE;
    t->grid_size = GRID;
    t->grid_hz = calloc(GRID, sizeof(float));
    t->mean_log_env = calloc(GRID, sizeof(float));
    t->frame_count = nv;
    t->frames = calloc((size_t)(nv * GRID), sizeof(float));
    t->frame_f0 = calloc((size_t)nv, sizeof(float));
    t->frame_ap = calloc((size_t)(nv * GRID), sizeof(float));
    t->unvoiced_count = nu;
    t->unvoiced_env = calloc((size_t)(nu * GRID), sizeof(float));
    envelope_grid(t->grid_hz, GRID, 60.0, 0.45 * RATE);
    for (int64_t i = 0; i < nv; i++) {
        const int cls = (int)(i % 2);
        fill_row(t->frames + i * GRID, t->grid_hz, 0, cls);
        t->frame_f0[i] = 200.0f;
        for (int k = 0; k < GRID; k++) t->frame_ap[i * GRID + k] = cls == 0 ? 0.6f : 0.2f;
    }
    for (int64_t i = 0; i < nu; i++) fill_row(t->unvoiced_env + i * GRID, t->grid_hz, 0, 2 + (int)(i % 2));
    t->summary.voiced_frames = nv;
    t->summary.f0_median_hz = 300.0;
    return t;
}

/* Source: RUNS runs of RUN frames: vowel 0, vowel 1, consonant 2, consonant 3, ...; vowels at f0_hz. */
static void make_source(avo_voice_params *p, const float *grid, double f0_hz) {
    avo_error err;
    CHECK_OK(avo_voice_params_alloc(p, RATE, FFT, RUN * RUNS, 0.005, &err), &err);
    const double hz_per_bin = (double)RATE / FFT;
    for (int64_t i = 0; i < p->frames; i++) {
        const int cls = (int)((i / RUN) % 4);
        p->f0_hz[i] = cls < 2 ? (float)f0_hz : 0.0f;
        for (int b = 0; b < p->bins; b++) {
            double hz = b * hz_per_bin;
            if (hz > grid[GRID - 1]) hz = grid[GRID - 1];
            p->envelope[i * p->bins + b] = (float)exp(shape(1, cls, hz));
            p->aperiodicity[i * p->bins + b] = cls < 2 ? 0.05f : 1.0f;
        }
    }
}

/* Mean absolute difference in dB (levels removed) between frame i's envelope and a shape, below top_hz. */
static double shape_error_db(const avo_voice_params *p, int64_t i, const float *grid, int voice, int cls,
                             double top_hz) {
    float row[GRID];
    envelope_on_grid(p, i, grid, GRID, row);
    double d[GRID], mean = 0.0, sum = 0.0;
    int n = 0;
    for (int k = 0; k < GRID && grid[k] <= top_hz; k++, n++) d[k] = row[k] - shape(voice, cls, grid[k]), mean += d[k];
    mean /= n;
    for (int k = 0; k < n; k++) sum += fabs(d[k] - mean);
    return 10.0 / log(10.0) * sum / n;
}

static void default_options(retrieval_options *o) {
    memset(o, 0, sizeof *o);
    o->amount = 1.0;
    o->unvoiced_amount = 1.0;
    o->ap_amount = 1.0;
    o->band_top_hz = 0.45 * RATE;
    o->neighbours = 2;
    o->threads = 1;
}

static void test_takes_envelope_aperiodicity_and_consonants(const avo_voice_analysis *t, int hub_reduction) {
    avo_voice_params p;
    make_source(&p, t->grid_hz, 200.0);
    const double top = 6000.0;
    /* Before: the source is far from the target's sounds. */
    const double before = shape_error_db(&p, RUN / 2, t->grid_hz, 0, 0, top);
    retrieval_options o;
    default_options(&o);
    o.hub_reduction = hub_reduction; /* the converter's setting: matches must stay right */
    avo_error err;
    CHECK_OK(retrieval_apply(&p, t, &o, &err), &err);
    double worst_env = 0.0, worst_cons = 0.0, worst_ap = 0.0;
    for (int64_t i = 0; i < p.frames; i++) {
        const int cls = (int)((i / RUN) % 4), pos = (int)(i % RUN);
        if (pos < 3 || pos >= RUN - 3) continue; /* run edges are smoothed across */
        const double e = shape_error_db(&p, i, t->grid_hz, 0, cls, top);
        if (cls < 2) {
            worst_env = fmax(worst_env, e);
            const float want = cls == 0 ? 0.6f : 0.2f;
            for (int b = 0; b * (double)RATE / FFT < top; b++)
                worst_ap = fmax(worst_ap, fabs(p.aperiodicity[i * p.bins + b] - want));
        } else {
            worst_cons = fmax(worst_cons, e);
        }
    }
    fprintf(stderr, "vowel envelope error: before %.2f dB, after (worst) %.2f dB; consonants %.2f dB; ap %.3f\n",
            before, worst_env, worst_cons, worst_ap);
    CHECK(before > 2.0);
    CHECK_MSG(worst_env < 0.6, "vowels did not take the target's envelope: %.2f dB", worst_env);
    CHECK_MSG(worst_cons < 0.6, "consonants did not take the target's envelope: %.2f dB", worst_cons);
    CHECK_MSG(worst_ap < 0.02, "aperiodicity not taken from the matched frames: off by %.3f", worst_ap);
    avo_voice_params_free(&p);
}

static void test_no_unvoiced_when_protected(const avo_voice_analysis *t) {
    avo_voice_params p;
    make_source(&p, t->grid_hz, 200.0);
    retrieval_options o;
    default_options(&o);
    o.unvoiced_amount = 0.0;
    o.ap_amount = 0.0;
    avo_error err;
    CHECK_OK(retrieval_apply(&p, t, &o, &err), &err);
    /* Consonants keep the source's shape exactly; vowels keep the source's aperiodicity. */
    CHECK(shape_error_db(&p, 2 * RUN + RUN / 2, t->grid_hz, 1, 2, 6000.0) < 0.05);
    CHECK(fabsf(p.aperiodicity[(RUN / 2) * p.bins + 10] - 0.05f) < 1e-6f);
    avo_voice_params_free(&p);
}

static double gauss(void) { /* Box-Muller from the test's generator */
    const double u = noise() + 0.5 + 1e-12, v = noise() + 0.5;
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* Hubness reduction. In 24 dimensions the nearest target of many source rows is one of a few central
 * target rows (hubs) while most target rows are nobody's nearest; CSLS ranking spreads the matches over
 * the target's rows. Two independent draws of the same Gaussian: the most used target row is used far
 * less and more target rows are used at all. Also: each source row that is an exact copy of a target row
 * still finds it. */
static void test_hub_reduction(void) {
    enum { N = 600, D = 24 };
    float *src = malloc(sizeof(float) * N * D), *tgt = malloc(sizeof(float) * N * D), w[N];
    int64_t nn[2][N];
    for (int i = 0; i < N * D; i++) src[i] = (float)gauss(), tgt[i] = (float)gauss();
    int used_max[2] = {0, 0}, distinct[2] = {0, 0};
    for (int h = 0; h < 2; h++) {
        avo_error err;
        CHECK_OK(retrieval_neighbours(src, N, tgt, N, D, 1, h, 1, nn[h], w, &err), &err);
        int count[N] = {0};
        for (int i = 0; i < N; i++) count[nn[h][i]]++;
        for (int j = 0; j < N; j++) {
            used_max[h] = count[j] > used_max[h] ? count[j] : used_max[h];
            distinct[h] += count[j] > 0;
        }
        CHECK_NEAR(w[0], 1.0, 1e-6); /* k = 1: all weight on the one neighbour */
    }
    fprintf(stderr, "hubness: most used target row %d -> %d times, target rows used %d -> %d of %d\n", used_max[0],
            used_max[1], distinct[0], distinct[1], N);
    CHECK_MSG(used_max[1] * 2 <= used_max[0], "hub not reduced: %d -> %d", used_max[0], used_max[1]);
    CHECK(distinct[1] > distinct[0] + N / 20);
    /* plain search is the exact nearest neighbour: check a few rows by brute force */
    for (int i = 0; i < N; i += 97) {
        int best = 0;
        double bd = INFINITY;
        for (int j = 0; j < N; j++) {
            double d = 0;
            for (int c = 0; c < D; c++) d += (src[i * D + c] - tgt[j * D + c]) * (src[i * D + c] - tgt[j * D + c]);
            if (d < bd) bd = d, best = j;
        }
        CHECK(nn[0][i] == best);
    }
    /* copies of target rows among the sources are found with hub reduction too */
    for (int i = 0; i < N; i += 10) memcpy(src + i * D, tgt + (N - 1 - i) * D, sizeof(float) * D);
    avo_error err;
    CHECK_OK(retrieval_neighbours(src, N, tgt, N, D, 1, 1, 1, nn[1], w, &err), &err);
    int found = 0;
    for (int i = 0; i < N; i += 10) found += nn[1][i] == N - 1 - i;
    CHECK_MSG(found == N / 10, "exact copies found %d of %d", found, N / 10);
    CHECK(retrieval_neighbours(src, N, tgt, N, D, 0, 1, 1, nn[1], w, &err) == AVO_ERR_INVALID_ARGUMENT);
    free(src);
    free(tgt);
}

int main(void) {
    avo_voice_analysis *t = make_target();
    test_takes_envelope_aperiodicity_and_consonants(t, 0);
    test_takes_envelope_aperiodicity_and_consonants(t, 1);
    test_no_unvoiced_when_protected(t);
    test_hub_reduction();
    avo_voice_analysis_free(t);
    TEST_MAIN_END();
}
