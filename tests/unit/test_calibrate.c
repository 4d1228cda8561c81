/* calibrate module: INT8 entropy calibration.
 * - FNV-1a-64 against published vectors; |x| histograms (binning, growth by exact pair merging,
 *   non-finite values);
 * - KL thresholds on known distributions: uniform (keeps the maximum), Gaussian (about 4 sigma,
 *   where 8-bit clipping studies put it), Laplace (well inside the maximum), a Gaussian with a few
 *   huge outliers (they are clipped, the threshold stays with the bulk);
 * - the quantiser (round half to even, clamp to +-127) and per-output-channel weight scales in
 *   every weight layout, transposed grouped convolutions included;
 * - the cache: round trip, and rejection of another model, another version, damaged or edited
 *   files, truncation, repeated and malformed lines, a missing file;
 * - the collector: too little audio is an error saying how much more, non-finite activations;
 * - the engine's GEMM observer: names, sequence, shapes, operand replacement, errors;
 * - the simulation against a hand-computed fake-quantised linear, strict and lenient tables, and
 *   the error pass that keeps badly quantised tensors out of INT8;
 * - HuBERT (small random model of tests/reference/hubert_golden.py): calibrated on real speech and
 *   singing, simulated INT8 content features against FP32 on OTHER clips: per-frame cosine
 *   similarity, median and minimum >= 0.99. SKIPs without torch. */
#include "autovoice/audio.h"
#include "autovoice/calibrate.h"
#include "autovoice/models.h"
#include "test_util.h"

#include <unistd.h>

static char tmpdir[600];

/* ---- deterministic random numbers ---- */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) * (1.0 / 9007199254740992.0);
}
static double gauss(void) {
    double u = urand(), v = urand();
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

static void test_hash(void) {
    CHECK(avo_fnv1a64(AVO_FNV64_INIT, "", 0) == 0xcbf29ce484222325ull);
    CHECK(avo_fnv1a64(AVO_FNV64_INIT, "a", 1) == 0xaf63dc4c8601ec8cull);
    CHECK(avo_fnv1a64(AVO_FNV64_INIT, "foobar", 6) == 0x85944171f73967e8ull);
    /* continuation equals one pass */
    CHECK(avo_fnv1a64(avo_fnv1a64(AVO_FNV64_INIT, "foo", 3), "bar", 3) == 0x85944171f73967e8ull);
    char path[700];
    snprintf(path, sizeof path, "%s/hash.txt", tmpdir);
    FILE *f = fopen(path, "wb");
    fputs("foobar", f);
    fclose(f);
    uint64_t h = 0;
    avo_error err = {0};
    CHECK_OK(avo_calib_file_hash(path, &h, &err), &err);
    CHECK(h == 0x85944171f73967e8ull);
    snprintf(path, sizeof path, "%s/no_such_file", tmpdir);
    CHECK(avo_calib_file_hash(path, &h, &err) == AVO_ERR_NOT_FOUND);
}

static void test_histogram(void) {
    avo_calib_hist *h = malloc(sizeof *h);
    avo_calib_hist_init(h);
    const float v[3] = {0.5f, -1.0f, 0.25f};
    avo_calib_hist_add(h, v, 3);
    CHECK(h->range == 1.0 && h->max == 1.0 && h->count == 3);
    CHECK(h->bins[1024] == 1 && h->bins[512] == 1 && h->bins[AVO_CALIB_BINS - 1] == 1);
    const float bad[3] = {NAN, INFINITY, 0.0f};
    avo_calib_hist_add(h, bad, 3);
    CHECK(h->nonfinite == 2 && h->count == 4 && h->bins[0] == 1 && h->range == 1.0);

    /* growth: a histogram that grew from range 1 to 4 holds the counts of one made at range 4
     * from the start, apart from the first maximum (clamped into the top bin at range 1, it is
     * in bin 511 instead of 512) */
    enum { N = 20000 };
    float *a = malloc(sizeof(float) * N), *b = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) {
        a[i] = (float)(urand() * 2.0 - 1.0);
        b[i] = (float)(urand() * 7.0 - 3.5);
    }
    a[0] = 1.0f;
    b[0] = 3.5f;
    avo_calib_hist *g = malloc(sizeof *g), *d = malloc(sizeof *d);
    avo_calib_hist_init(g);
    avo_calib_hist_add(g, a, N);
    CHECK(g->range == 1.0);
    avo_calib_hist_add(g, b, N);
    CHECK_MSG(g->range == 4.0, "range %g after growth, want 4", g->range);
    CHECK(g->max == 3.5 && g->count == 2 * N);
    avo_calib_hist_init(d);
    const float four = 4.0f;
    avo_calib_hist_add(d, &four, 1);
    avo_calib_hist_add(d, a, N);
    avo_calib_hist_add(d, b, N);
    int differ = 0;
    uint64_t sum = 0;
    for (int j = 0; j < AVO_CALIB_BINS; j++) {
        sum += g->bins[j];
        if (j == 511 || j == 512 || j == AVO_CALIB_BINS - 1) continue;
        differ += g->bins[j] != d->bins[j];
    }
    CHECK_MSG(differ == 0, "%d bins differ between a grown and a direct histogram", differ);
    CHECK(sum == 2 * N);
    CHECK(g->bins[511] == d->bins[511] + 1 && g->bins[512] + 1 == d->bins[512]);
    CHECK(d->bins[AVO_CALIB_BINS - 1] == g->bins[AVO_CALIB_BINS - 1] + 1);
    /* a far larger value: the range doubles as often as needed, nothing is lost */
    const float big = 1e6f;
    avo_calib_hist_add(g, &big, 1);
    CHECK(g->range == 4.0 * (1 << 18) && g->bins[(int)(1e6 * AVO_CALIB_BINS / g->range)] == 1);
    sum = 0;
    for (int j = 0; j < AVO_CALIB_BINS; j++) sum += g->bins[j];
    CHECK(sum == 2 * N + 1 && g->bins[0] >= 2 * N - 10);
    free(a);
    free(b);
    free(g);
    free(d);
    free(h);
}

/* Threshold of n samples of a distribution (0 Gaussian, 1 uniform, 2 Laplace b=1, 3 Gaussian with
 * 10 values at 100), fed in 8 batches; also the sample maximum. */
static double threshold_of(int kind, int n, double *max) {
    float *x = malloc(sizeof(float) * (size_t)n);
    *max = 0.0;
    for (int i = 0; i < n; i++) {
        double v = kind == 1 ? urand() * 2.0 - 1.0
                 : kind == 2 ? (urand() < 0.5 ? -1.0 : 1.0) * -log(1.0 - urand())
                             : gauss();
        if (kind == 3 && i % (n / 10) == 0) v = 100.0;
        x[i] = (float)v;
        if (fabs(x[i]) > *max) *max = fabs(x[i]);
    }
    avo_calib_hist *h = malloc(sizeof *h);
    avo_calib_hist_init(h);
    for (int b = 0; b < 8; b++) avo_calib_hist_add(h, x + (size_t)b * (n / 8), n / 8);
    double kl = -1.0, t = avo_calib_hist_threshold(h, &kl);
    CHECK(kl >= 0.0 && isfinite(kl));
    free(h);
    free(x);
    return t;
}

static void test_thresholds(void) {
    double max = 0.0, t;
    t = threshold_of(1, 1000000, &max);
    fprintf(stderr, "uniform:  threshold %.3f, max %.3f\n", t, max);
    CHECK_MSG(t >= 0.98 * max && t <= max, "uniform threshold %g, max %g", t, max);
    t = threshold_of(0, 1000000, &max);
    fprintf(stderr, "gaussian: threshold %.3f sigma, max %.3f\n", t, max);
    CHECK_MSG(t > 3.5 && t < 0.97 * max, "gaussian threshold %g sigma, max %g", t, max);
    t = threshold_of(2, 1000000, &max);
    fprintf(stderr, "laplace:  threshold %.3f b, max %.3f\n", t, max);
    CHECK_MSG(t > 7.0 && t < 14.0 && t < 0.75 * max, "laplace threshold %g, max %g", t, max);
    t = threshold_of(3, 1000000, &max);
    fprintf(stderr, "gaussian + outliers at 100: threshold %.3f\n", t);
    /* 2048 bins over [0, 100] leave the bulk under 128 bins, the least a threshold can span (6.25) */
    CHECK_MSG(t > 3.0 && t < 0.2 * max, "outliers pulled the threshold to %g", t);
    /* zeros only: threshold 0, a harmless positive scale */
    avo_calib_hist *h = malloc(sizeof *h);
    avo_calib_hist_init(h);
    const float z[4] = {0};
    avo_calib_hist_add(h, z, 4);
    CHECK(avo_calib_hist_threshold(h, NULL) == 0.0);
    free(h);
    CHECK(avo_calib_scale_from_threshold(0.0) == 1.0f / 127.0f);
    CHECK(avo_calib_scale_from_threshold(127.0) == 1.0f);
    CHECK(avo_calib_scale_from_threshold(1e-300) >= 1.17e-38f);
}

static void test_quantize(void) {
    const float x[8] = {0.25f, 0.75f, -0.25f, -0.75f, 100.0f, -100.0f, 1.3f, 0.0f};
    /* with scale 0.5: x/0.5 = 0.5 -> 0 (half to even), 1.5 -> 2, -0.5 -> 0, -1.5 -> -2, clamps, 2.6 -> 3 */
    const int8_t want_q[8] = {0, 2, 0, -2, 127, -127, 3, 0};
    int8_t q[8];
    float f[8];
    avo_calib_quantize(x, 8, 0.5f, q);
    avo_calib_fake_quantize(x, 8, 0.5f, f);
    for (int i = 0; i < 8; i++) {
        CHECK_MSG(q[i] == want_q[i], "q[%d] = %d, want %d", i, q[i], want_q[i]);
        CHECK(f[i] == want_q[i] * 0.5f);
    }
}

static void test_weight_scales(void) {
    avo_error err = {0};
    /* linear [3, 4]: one scale per row, a zero row keeps 1/127 and stays zero */
    float w[12] = {1, -2, 0.5f, 0.1f, 0, 0, 0, 0, -0.3f, 0.2f, 0.25f, 0.1f};
    avo_tensor tw = avo_tensor_view2(w, 3, 4);
    float s[3], fq[12];
    CHECK(avo_calib_weight_out_channels(AVO_GEMM_LINEAR, &tw, 1) == 3);
    CHECK_OK(avo_calib_weight_scales(AVO_GEMM_LINEAR, &tw, 1, s, &err), &err);
    CHECK(s[0] == 2.0f / 127.0f && s[1] == 1.0f / 127.0f && s[2] == 0.3f / 127.0f);
    CHECK_OK(avo_calib_fake_quantize_weight(AVO_GEMM_LINEAR, &tw, 1, fq, &err), &err);
    for (int i = 0; i < 12; i++) {
        float sc = s[i / 4], want = rintf(w[i] * (1.0f / sc)) * sc;
        CHECK_MSG(fq[i] == want, "linear w[%d]: %g, want %g", i, fq[i], want);
    }
    CHECK(fq[1] == -2.0f && fq[4] == 0.0f);

    /* conv_transpose1d [Cin 4, Cout/groups 3, K 2], groups 2: output channel g * 3 + j holds
     * w[r, j, k] for the rows r of group g */
    float wt[24];
    for (int i = 0; i < 24; i++) wt[i] = (float)(gauss() * (1 + i % 5));
    int64_t shape[3] = {4, 3, 2};
    avo_tensor tt = avo_tensor_view(AVO_DTYPE_F32, 3, shape, wt);
    CHECK(avo_calib_weight_out_channels(AVO_GEMM_CONV_TRANSPOSE1D, &tt, 2) == 6);
    float st[6], want_s[6] = {0};
    CHECK_OK(avo_calib_weight_scales(AVO_GEMM_CONV_TRANSPOSE1D, &tt, 2, st, &err), &err);
    for (int r = 0; r < 4; r++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 2; k++) {
                int o = (r / 2) * 3 + j;
                float a = fabsf(wt[(r * 3 + j) * 2 + k]);
                if (a > want_s[o]) want_s[o] = a;
            }
    for (int o = 0; o < 6; o++) CHECK_MSG(st[o] == want_s[o] / 127.0f, "channel %d: %g, want %g", o, st[o], want_s[o] / 127.0f);
    float fqt[24];
    CHECK_OK(avo_calib_fake_quantize_weight(AVO_GEMM_CONV_TRANSPOSE1D, &tt, 2, fqt, &err), &err);
    for (int r = 0; r < 4; r++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 2; k++) {
                int i = (r * 3 + j) * 2 + k;
                float sc = st[(r / 2) * 3 + j];
                CHECK(fqt[i] == rintf(wt[i] * (1.0f / sc)) * sc);
            }
    /* conv2d [2, 1, 2, 2]: rows; conv_transpose2d [2, 3, 1, 2]: columns of dimension 1 */
    float w2[8] = {1, 2, 3, 4, -8, 1, 1, 1};
    int64_t s2[4] = {2, 1, 2, 2};
    avo_tensor t2 = avo_tensor_view(AVO_DTYPE_F32, 4, s2, w2);
    float sc2[2];
    CHECK_OK(avo_calib_weight_scales(AVO_GEMM_CONV2D, &t2, 1, sc2, &err), &err);
    CHECK(sc2[0] == 4.0f / 127.0f && sc2[1] == 8.0f / 127.0f);
    float w3[12] = {1, 9, 2, 2, 3, 3, -4, 0, 5, 5, 6, -7};
    int64_t s3[4] = {2, 3, 1, 2};
    avo_tensor t3 = avo_tensor_view(AVO_DTYPE_F32, 4, s3, w3);
    float sc3[3];
    CHECK(avo_calib_weight_out_channels(AVO_GEMM_CONV_TRANSPOSE2D, &t3, 1) == 3);
    CHECK_OK(avo_calib_weight_scales(AVO_GEMM_CONV_TRANSPOSE2D, &t3, 1, sc3, &err), &err);
    CHECK(sc3[0] == 9.0f / 127.0f && sc3[1] == 5.0f / 127.0f && sc3[2] == 7.0f / 127.0f);
    /* bad groups */
    CHECK(avo_calib_weight_scales(AVO_GEMM_CONV_TRANSPOSE1D, &tt, 3, st, &err) == AVO_ERR_INVALID_ARGUMENT);

    /* names: op, shape and a hash of the values */
    char n1[AVO_CALIB_NAME_MAX], n2[AVO_CALIB_NAME_MAX], n3[AVO_CALIB_NAME_MAX];
    avo_calib_weight_name(AVO_GEMM_LINEAR, &tw, n1);
    CHECK_MSG(strncmp(n1, "linear.3x4.", 11) == 0 && strlen(n1) == 11 + 16, "name %s", n1);
    avo_calib_weight_name(AVO_GEMM_CONV_TRANSPOSE1D, &tt, n2);
    CHECK_MSG(strncmp(n2, "conv_transpose1d.4x3x2.", 23) == 0, "name %s", n2);
    w[0] = 1.0001f;
    avo_calib_weight_name(AVO_GEMM_LINEAR, &tw, n3);
    CHECK(strcmp(n1, n3) != 0);
}

/* Rewrites the checksum of a cache text after an edit (as a careful forger would). */
static void fix_checksum(char *text, size_t n) {
    char *sum = strstr(text, "checksum=");
    char *nl = strchr(text, '\n');
    if (!sum || !nl) return;
    sum += 9;
    uint64_t h = avo_fnv1a64(AVO_FNV64_INIT, text, (size_t)(sum - text));
    h = avo_fnv1a64(h, nl + 1, n - (size_t)(nl + 1 - text));
    char hex[9];
    snprintf(hex, sizeof hex, "%08x", (unsigned)(h & 0xffffffffu));
    memcpy(sum, hex, 8);
}

static avo_status parse(const char *text, uint64_t hash, avo_error *err) {
    avo_calib_table *t = NULL;
    avo_status st = avo_calib_cache_parse(text, strlen(text), "test.calib", &hash, &t, err);
    avo_calib_table_free(t);
    return st;
}

/* Applies an edit (replace the first from with to) and the checksum fix when asked; checks the status and a word of the message. */
static void expect_reject(const char *good, const char *from, const char *to, bool fix, avo_status want, const char *word) {
    const char *at = strstr(good, from);
    CHECK_MSG(at != NULL, "'%s' not in the cache", from);
    if (!at) return;
    size_t size = strlen(good) + strlen(to) + 1;
    char *text = malloc(size);
    snprintf(text, size, "%.*s%s%s", (int)(at - good), good, to, at + strlen(from));
    if (fix) fix_checksum(text, strlen(text));
    avo_error err = {0};
    avo_status st = parse(text, 0x0123456789abcdefull, &err);
    CHECK_MSG(st == want && strstr(err.message, word), "edit '%s' -> '%s': status %d (%s), want %d with '%s'", from, to, st,
              err.message, want, word);
    free(text);
}

static void test_cache(void) {
    avo_error err = {0};
    avo_calib_table *t = NULL;
    const uint64_t hash = 0x0123456789abcdefull;
    CHECK_OK(avo_calib_table_create(hash, &t, &err), &err);
    CHECK_OK(avo_calib_table_set(t, "conv1d.512x1x10.00000000000000aa", 0.25f, &err), &err);
    CHECK_OK(avo_calib_table_set(t, "linear#7", 3.0e-3f, &err), &err);
    CHECK_OK(avo_calib_table_set(t, "x", 1.0f / 127.0f, &err), &err);
    CHECK_OK(avo_calib_table_set(t, "linear#7", 2.5e-3f, &err), &err); /* replaces */
    CHECK(avo_calib_table_count(t) == 3);
    float s = 0;
    CHECK(avo_calib_table_find(t, "linear#7", &s) && s == 2.5e-3f);
    CHECK(!avo_calib_table_find(t, "linear#8", &s));
    CHECK(avo_calib_table_set(t, "has space", 1.0f, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(avo_calib_table_set(t, "a:b", 1.0f, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(avo_calib_table_set(t, "", 1.0f, &err) == AVO_ERR_INVALID_ARGUMENT);
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    CHECK(avo_calib_table_set(t, longname, 1.0f, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(avo_calib_table_set(t, "z", 0.0f, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(avo_calib_table_set(t, "z", -1.0f, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(avo_calib_table_set(t, "z", NAN, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(avo_calib_table_set(t, "z", INFINITY, &err) == AVO_ERR_INVALID_ARGUMENT);
    /* many names: the index grows */
    for (int i = 0; i < 300; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "op#%d", i);
        CHECK_OK(avo_calib_table_set(t, nm, (float)(i + 1) * 1e-3f, &err), &err);
    }
    CHECK(avo_calib_table_count(t) == 303 && avo_calib_table_find(t, "op#123", &s) && s == (float)124 * 1e-3f);

    char path[700];
    snprintf(path, sizeof path, "%s/model.calib", tmpdir);
    CHECK_OK(avo_calib_cache_write(path, t, &err), &err);
    avo_calib_table *r = NULL;
    CHECK_OK(avo_calib_cache_read(path, &hash, &r, &err), &err);
    if (r) {
        CHECK(avo_calib_table_count(r) == avo_calib_table_count(t) && avo_calib_table_model_hash(r) == hash);
        for (int i = 0; i < avo_calib_table_count(t); i++) {
            const char *n1, *n2;
            float s1, s2;
            avo_calib_table_entry(t, i, &n1, &s1);
            avo_calib_table_entry(r, i, &n2, &s2);
            CHECK_MSG(strcmp(n1, n2) == 0 && memcmp(&s1, &s2, 4) == 0, "entry %d: %s %g vs %s %g", i, n1, s1, n2, s2);
        }
    }
    avo_calib_table_free(r);
    r = NULL;
    /* any model when no hash is expected */
    CHECK_OK(avo_calib_cache_read(path, NULL, &r, &err), &err);
    avo_calib_table_free(r);
    r = NULL;
    char *text = avo_test_read_file(path, NULL);
    const char *head = "AVO-INT8-CALIB 1 model=fnv1a64:0123456789abcdef tensors=303 checksum=";
    CHECK(text && strncmp(text, head, strlen(head)) == 0);
    CHECK(text && strstr(text, "\nlinear#7: 3b23d70a\n")); /* 2.5e-3f */
    char tmpname[800];
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", path, (long)getpid());
    CHECK(access(tmpname, F_OK) != 0);

    /* another model */
    uint64_t other = hash ^ 1;
    CHECK(avo_calib_cache_read(path, &other, &r, &err) == AVO_ERR_VALIDATION && r == NULL);
    CHECK_MSG(strstr(err.message, "another model") && strstr(err.message, "--recalibrate"), "%s", err.message);
    if (text) {
        /* another version (with a valid checksum: the version is checked first anyway) */
        expect_reject(text, "AVO-INT8-CALIB 1 ", "AVO-INT8-CALIB 2 ", true, AVO_ERR_VALIDATION, "version 2");
        expect_reject(text, "AVO-INT8-CALIB 1 ", "AVO-INT8-CALIB 2 ", false, AVO_ERR_VALIDATION, "version 2");
        /* damaged body or header without a checksum fix */
        expect_reject(text, "linear#7: 3b23d70a", "linear#7: 3b23d70b", false, AVO_ERR_FORMAT, "damaged");
        expect_reject(text, "tensors=303", "tensors=302", false, AVO_ERR_FORMAT, "damaged");
        expect_reject(text, "fnv1a64:0123", "fnv1a64:1123", false, AVO_ERR_FORMAT, "damaged");
        /* edits that keep the checksum right are still caught line by line */
        expect_reject(text, "linear#7: 3b23d70a", "linear#7 3b23d70a", true, AVO_ERR_FORMAT, "line");
        expect_reject(text, "linear#7: 3b23d70a", "linear#7: 3b23d70", true, AVO_ERR_FORMAT, "line");
        expect_reject(text, "linear#7: 3b23d70a", "linear#7: 3b23d70g", true, AVO_ERR_FORMAT, "line");
        expect_reject(text, "linear#7: 3b23d70a", "linear#7: 00000000", true, AVO_ERR_FORMAT, "line");   /* zero scale */
        expect_reject(text, "linear#7: 3b23d70a", "linear#7: 7fc00000", true, AVO_ERR_FORMAT, "line");   /* NaN */
        expect_reject(text, "linear#7: 3b23d70a", "linear#7: bb23d70a", true, AVO_ERR_FORMAT, "line");   /* negative */
        expect_reject(text, "linear#7: 3b23d70a", "op#1: 3b23d70a", true, AVO_ERR_FORMAT, "repeats");
        expect_reject(text, "linear#7: 3b23d70a\n", "", true, AVO_ERR_FORMAT, "header says 303");
        expect_reject(text, "linear#7: 3b23d70a\n", "linear#7: 3b23d70a\n\n", true, AVO_ERR_FORMAT, "line");
        expect_reject(text, "tensors=303", "tensors=3o3", true, AVO_ERR_FORMAT, "header");
        expect_reject(text, "AVO-INT8-CALIB", "TRT-8601-EntropyCalibration2", true, AVO_ERR_FORMAT, "not an autovoice");
        /* cut short inside the last line */
        size_t n = strlen(text);
        text[n - 3] = 0;
        fix_checksum(text, n - 3);
        avo_error e2 = {0};
        CHECK(parse(text, hash, &e2) == AVO_ERR_FORMAT && strstr(e2.message, "cut short"));
        CHECK(parse("", hash, &e2) == AVO_ERR_FORMAT);
        CHECK(parse("AVO-INT8-CALIB 1", hash, &e2) == AVO_ERR_FORMAT);
    }
    free(text);
    snprintf(path, sizeof path, "%s/missing.calib", tmpdir);
    CHECK(avo_calib_cache_read(path, &hash, &r, &err) == AVO_ERR_NOT_FOUND);
    /* a folder that cannot be written: an I/O error, nothing left behind */
    CHECK(avo_calib_cache_write("/nonexistent-dir/x.calib", t, &err) == AVO_ERR_IO);
    avo_calib_table_free(t);
}

static void test_minimum(void) {
    avo_error err = {0};
    avo_calib *c = NULL;
    avo_calib_table *t = NULL;
    CHECK_OK(avo_calib_create(&c, &err), &err);
    float x[1000];
    for (int i = 0; i < 1000; i++) x[i] = (float)gauss();
    CHECK_OK(avo_calib_add(c, "op#0", x, 1000, &err), &err);
    CHECK(avo_calib_add(c, "bad name", x, 1000, &err) == AVO_ERR_INVALID_ARGUMENT);
    avo_calib_note_audio(c, 5.0);
    CHECK(avo_calib_compute(c, 0, 7, &t, &err) == AVO_ERR_VALIDATION && t == NULL);
    char want[64];
    snprintf(want, sizeof want, "add %.1f s more", AVO_CALIB_MIN_SECONDS - 5.0);
    CHECK_MSG(strstr(err.message, "at least") && strstr(err.message, "got 5.0 s") && strstr(err.message, want), "%s",
              err.message);
    avo_calib_note_audio(c, AVO_CALIB_MIN_SECONDS - 5.0);
    CHECK(avo_calib_audio_seconds(c) == AVO_CALIB_MIN_SECONDS);
    CHECK_OK(avo_calib_compute(c, 0, 7, &t, &err), &err);
    float s = 0;
    CHECK(t && avo_calib_table_count(t) == 1 && avo_calib_table_find(t, "op#0", &s) && avo_calib_table_model_hash(t) == 7);
    avo_calib_info info;
    avo_calib_tensor_info(c, 0, &info);
    CHECK(info.values == 1000 && info.threshold > 0 && info.threshold <= info.max && s == (float)(info.threshold / 127.0));
    avo_calib_table_free(t);
    t = NULL;
    /* a lower minimum when the caller knows better */
    CHECK_OK(avo_calib_compute(c, 1.0, 7, &t, &err), &err);
    avo_calib_table_free(t);
    t = NULL;
    /* non-finite activations cannot be calibrated */
    const float inf = INFINITY;
    CHECK_OK(avo_calib_add(c, "op#1", &inf, 1, &err), &err);
    CHECK(avo_calib_compute(c, 0, 7, &t, &err) == AVO_ERR_VALIDATION && strstr(err.message, "op#1"));
    avo_calib_free(c);
    /* nothing observed */
    CHECK_OK(avo_calib_create(&c, &err), &err);
    avo_calib_note_audio(c, 100.0);
    CHECK(avo_calib_compute(c, 0, 7, &t, &err) == AVO_ERR_VALIDATION);
    avo_calib_free(c);
}

/* ---- the engine's observer ---- */

typedef struct seen_log {
    int n;
    char names[8][48];
    int kinds[8], groups[8];
    int64_t seq[8], xn[8], wn[8];
    const void *wid[8];
    const float *replace_x; /* handed back when set */
    avo_status fail;
} seen_log;

static avo_status log_observer(void *user, avo_gemm_event *ev, avo_error *err) {
    seen_log *l = user;
    if (l->fail) return avo_error_set(err, l->fail, "observer says no to %s", ev->name);
    if (l->n < 8) {
        snprintf(l->names[l->n], 48, "%s", ev->name);
        l->kinds[l->n] = ev->kind;
        l->groups[l->n] = ev->groups;
        l->seq[l->n] = ev->seq;
        l->xn[l->n] = avo_tensor_numel(&ev->x);
        l->wn[l->n] = avo_tensor_numel(&ev->w);
        l->wid[l->n] = ev->w_id;
        l->n++;
    }
    if (l->replace_x) ev->x_replace = l->replace_x;
    return AVO_OK;
}

static void fill(float *p, int64_t n, double sd) {
    for (int64_t i = 0; i < n; i++) p[i] = (float)(gauss() * sd);
}

static void test_observer(avo_backend *be, avo_arena *a) {
    avo_error err = {0};
    avo_arena_reset(a);
    static float xl[6 * 8], wl[5 * 8], bl[5], x1[4 * 20], w1[6 * 2 * 3], wt[4 * 3 * 2], x2[2 * 5 * 6], w2[3 * 2 * 3 * 3],
        wt2[2 * 3 * 2 * 2];
    fill(xl, 48, 1);
    fill(wl, 40, 1);
    fill(bl, 5, 1);
    fill(x1, 80, 1);
    fill(w1, 36, 1);
    fill(wt, 24, 1);
    fill(x2, 60, 1);
    fill(w2, 54, 1);
    fill(wt2, 24, 1);
    avo_tensor X = avo_tensor_view2(xl, 6, 8), W = avo_tensor_view2(wl, 5, 8), Bv = avo_tensor_view1(bl, 5);
    avo_tensor X1 = avo_tensor_view2(x1, 4, 20);
    avo_tensor W1 = avo_tensor_view(AVO_DTYPE_F32, 3, (int64_t[]){6, 2, 3}, w1);
    avo_tensor WT = avo_tensor_view(AVO_DTYPE_F32, 3, (int64_t[]){4, 3, 2}, wt);
    avo_tensor X2 = avo_tensor_view(AVO_DTYPE_F32, 3, (int64_t[]){2, 5, 6}, x2);
    avo_tensor W2 = avo_tensor_view(AVO_DTYPE_F32, 4, (int64_t[]){3, 2, 3, 3}, w2);
    avo_tensor WT2 = avo_tensor_view(AVO_DTYPE_F32, 4, (int64_t[]){2, 3, 2, 2}, wt2);
    seen_log log;
    memset(&log, 0, sizeof log);
    avo_backend_set_gemm_observer(be, log_observer, &log);
    avo_tensor y0 = {0}, y1 = {0}, y2 = {0}, y3 = {0}, y4 = {0};
    CHECK_OK(avo_op_linear(be, a, &X, &W, &Bv, &y0, &err), &err);
    avo_conv1d_params p1 = {1, 1, 1, 2};
    CHECK_OK(avo_op_conv1d(be, a, &X1, &W1, NULL, &p1, &y1, &err), &err);
    avo_conv_transpose1d_params pt = {2, 0, 0, 2, 1};
    CHECK_OK(avo_op_conv_transpose1d(be, a, &X1, &WT, NULL, &pt, &y2, &err), &err);
    avo_conv2d_params p2 = {{1, 1}, {1, 1}, {1, 1}, 1, false};
    CHECK_OK(avo_op_conv2d(be, a, &X2, &W2, NULL, &p2, NULL, &y3, &err), &err);
    avo_conv_transpose2d_params pt2 = {{2, 2}, {0, 0}, {0, 0}, false};
    CHECK_OK(avo_op_conv_transpose2d(be, a, &X2, &WT2, NULL, &pt2, &y4, &err), &err);
    /* ops without weights are not observed */
    avo_tensor z = {0};
    CHECK_OK(avo_op_act(be, a, &y0, AVO_ACT_RELU, 0, &z, &err), &err);
    CHECK_MSG(log.n == 5, "%d events", log.n);
    const char *want[5] = {"linear#0", "conv1d#1", "conv_transpose1d#2", "conv2d#3", "conv_transpose2d#4"};
    const int64_t xn[5] = {48, 80, 80, 60, 60}, wn[5] = {40, 36, 24, 54, 24};
    const void *wid[5] = {wl, w1, wt, w2, wt2};
    const int groups[5] = {1, 2, 2, 1, 1};
    for (int i = 0; i < 5 && i < log.n; i++) {
        CHECK_MSG(strcmp(log.names[i], want[i]) == 0, "event %d is %s, want %s", i, log.names[i], want[i]);
        CHECK(log.kinds[i] == i && log.seq[i] == i && log.xn[i] == xn[i] && log.wn[i] == wn[i] && log.wid[i] == wid[i] &&
              log.groups[i] == groups[i]);
    }
    /* a reset restarts the numbers; replacing x with zeros leaves the bias alone */
    avo_backend_gemm_observer_reset(be);
    static float zeros[48];
    log.n = 0;
    log.replace_x = zeros;
    avo_tensor y5 = {0};
    CHECK_OK(avo_op_linear(be, a, &X, &W, &Bv, &y5, &err), &err);
    CHECK(log.n == 1 && strcmp(log.names[0], "linear#0") == 0);
    bool bias_only = y5.data != NULL;
    for (int r = 0; r < 6 && bias_only; r++)
        for (int o = 0; o < 5; o++) bias_only = bias_only && avo_tensor_f32(&y5)[r * 5 + o] == bl[o];
    CHECK(bias_only);
    log.replace_x = NULL;
    /* an observer's error fails the op */
    log.fail = AVO_ERR_VALIDATION;
    avo_tensor y6 = {0};
    CHECK(avo_op_linear(be, a, &X, &W, &Bv, &y6, &err) == AVO_ERR_VALIDATION && strstr(err.message, "linear#1"));
    log.fail = AVO_OK;
    /* cleared: nothing more is seen */
    avo_backend_set_gemm_observer(be, NULL, NULL);
    log.n = 0;
    avo_tensor y7 = {0};
    CHECK_OK(avo_op_linear(be, a, &X, &W, &Bv, &y7, &err), &err);
    CHECK(log.n == 0);
}

/* The simulation of one linear against a hand computation, strict and lenient tables, and the error
 * pass's choice between a tensor normalised per frame and one whose frames span 80 dB. */
static void test_simulation(avo_backend *be, avo_arena *a) {
    avo_error err = {0};
    avo_arena_reset(a);
    enum { R = 100, I = 64, O = 8 };
    static float x[R * I], w[O * I], b[O], x2[R * I], w2[O * I];
    fill(x, R * I, 1);
    fill(w, O * I, 0.3);
    fill(b, O, 0.1);
    fill(w2, O * I, 0.3);
    for (int r = 0; r < R; r++) /* rows from 1 down to 1e-4 */
        for (int i = 0; i < I; i++) x2[r * I + i] = (float)(gauss() * pow(10.0, -4.0 * r / (R - 1)));
    avo_tensor X = avo_tensor_view2(x, R, I), W = avo_tensor_view2(w, O, I), Bv = avo_tensor_view1(b, O);
    avo_tensor X2 = avo_tensor_view2(x2, R, I), W2 = avo_tensor_view2(w2, O, I);
    avo_calib *c = NULL;
    CHECK_OK(avo_calib_create(&c, &err), &err);
    CHECK_OK(avo_calib_attach(c, be, &err), &err);
    CHECK(avo_calib_attach(c, be, &err) == AVO_OK); /* again: the same observer */
    avo_tensor y = {0};
    for (int k = 0; k < 3; k++) {
        y.data = NULL;
        CHECK_OK(avo_op_linear(be, a, &X, &W, &Bv, &y, &err), &err);
        y.data = NULL;
        CHECK_OK(avo_op_linear(be, a, &X2, &W2, NULL, &y, &err), &err);
    }
    avo_calib_note_audio(c, 30);
    CHECK(avo_calib_tensor_count(c) == 2);
    char name[AVO_CALIB_NAME_MAX], name2[AVO_CALIB_NAME_MAX];
    avo_calib_weight_name(AVO_GEMM_LINEAR, &W, name);
    avo_calib_weight_name(AVO_GEMM_LINEAR, &W2, name2);
    const avo_calib_hist *h = avo_calib_histogram(c, name);
    CHECK(h && h->count == 3 * R * I);
    avo_calib_table *t = NULL, *sel = NULL;
    CHECK_OK(avo_calib_compute(c, 0, 1, &t, &err), &err);
    /* the error pass keeps the per-frame normalised tensor, drops the 80 dB one */
    CHECK_OK(avo_calib_start_error_pass(c, t, &err), &err);
    y.data = NULL;
    CHECK_OK(avo_op_linear(be, a, &X, &W, &Bv, &y, &err), &err);
    y.data = NULL;
    CHECK_OK(avo_op_linear(be, a, &X2, &W2, NULL, &y, &err), &err);
    avo_calib_detach(c, be);
    CHECK_OK(avo_calib_select(c, 0, &sel, &err), &err);
    avo_calib_info i1, i2;
    avo_calib_tensor_info(c, 0, &i1);
    avo_calib_tensor_info(c, 1, &i2);
    fprintf(stderr, "error pass: normalised rows mean e %.4f bad %.3f; 80 dB rows mean e %.4f bad %.3f\n", i1.mean_error,
            i1.bad_frames, i2.mean_error, i2.bad_frames);
    CHECK(i1.frames == R && i2.frames == R && i1.bad_frames == 0.0 && i1.mean_error < 0.05 && i2.bad_frames > 0.3);
    CHECK(sel && avo_calib_table_count(sel) == 1 && avo_calib_table_find(sel, name, NULL) && !avo_calib_table_find(sel, name2, NULL));

    float sx = 0;
    CHECK(avo_calib_table_find(t, name, &sx));
    /* the simulated op equals fq(x) fq(w)^T + b computed here */
    avo_calib_sim *sim = NULL;
    CHECK_OK(avo_calib_sim_create(sel, true, &sim, &err), &err);
    CHECK_OK(avo_calib_sim_attach(sim, be, &err), &err);
    avo_tensor yq = {0};
    CHECK_OK(avo_op_linear(be, a, &X, &W, &Bv, &yq, &err), &err);
    float ws[O];
    CHECK_OK(avo_calib_weight_scales(AVO_GEMM_LINEAR, &W, 1, ws, &err), &err);
    double worst = 0, peak = 0;
    for (int r = 0; r < R; r++)
        for (int o = 0; o < O; o++) {
            double acc = b[o];
            for (int i = 0; i < I; i++) {
                float xq = fminf(fmaxf(rintf(x[r * I + i] * (1.0f / sx)), -127.0f), 127.0f) * sx;
                float wq = fminf(fmaxf(rintf(w[o * I + i] * (1.0f / ws[o])), -127.0f), 127.0f) * ws[o];
                acc += (double)xq * wq;
            }
            double d = fabs(acc - avo_tensor_f32(&yq)[r * O + o]);
            worst = d > worst ? d : worst;
            peak = fabs(acc) > peak ? fabs(acc) : peak;
        }
    CHECK_MSG(worst <= 1e-5 * peak, "simulated linear differs from the hand computation by %g (peak %g)", worst, peak);
    /* and differs from FP32 (it did quantise) */
    avo_calib_sim_detach(sim, be);
    avo_tensor yf = {0};
    CHECK_OK(avo_op_linear(be, a, &X, &W, &Bv, &yf, &err), &err);
    double diff = 0;
    for (int k = 0; k < R * O; k++) diff = fmax(diff, fabs(avo_tensor_f32(&yf)[k] - avo_tensor_f32(&yq)[k]));
    CHECK(diff > 0 && diff < 0.05 * peak);
    /* strict: an op without a scale fails; lenient: it runs in FP32, counted */
    CHECK_OK(avo_calib_sim_attach(sim, be, &err), &err);
    avo_tensor y2 = {0};
    CHECK(avo_op_linear(be, a, &X2, &W2, NULL, &y2, &err) == AVO_ERR_VALIDATION && strstr(err.message, "no scale"));
    avo_calib_sim_detach(sim, be);
    int64_t nq = 0, ns = 0;
    avo_calib_sim_counts(sim, &nq, &ns);
    CHECK(nq == 1 && ns == 0);
    avo_calib_sim_free(sim);
    CHECK_OK(avo_calib_sim_create(sel, false, &sim, &err), &err);
    CHECK_OK(avo_calib_sim_attach(sim, be, &err), &err);
    /* one observer per back end */
    CHECK(avo_calib_attach(c, be, &err) == AVO_ERR_INVALID_ARGUMENT);
    y2.data = NULL;
    CHECK_OK(avo_op_linear(be, a, &X2, &W2, NULL, &y2, &err), &err);
    avo_tensor y2f = {0};
    avo_calib_sim_detach(sim, be);
    CHECK_OK(avo_op_linear(be, a, &X2, &W2, NULL, &y2f, &err), &err);
    CHECK(memcmp(y2.data, y2f.data, sizeof(float) * R * O) == 0);
    avo_calib_sim_counts(sim, &nq, &ns);
    CHECK(nq == 0 && ns == 1);
    avo_calib_sim_free(sim);
    avo_calib_table_free(sel);
    avo_calib_table_free(t);
    avo_calib_free(c);
}

/* ---- HuBERT ---- */

/* Runs hubert_golden.py into dir; 1 if the model exists, 0 if torch is missing, -1 on failure. */
static int make_small_hubert(const char *dir) {
    return avo_test_run_reference(__FILE__, "hubert_golden.py", dir, "");
}

/* A clip of the shared data as 16 kHz mono (the content encoder's input). */
static float *load_16k(const char *name, int64_t *n) {
    char path[900];
    snprintf(path, sizeof path, "%s/%s", avo_test_data_dir(), name);
    avo_audio in = {0}, mono = {0};
    avo_error err = {0};
    float *x = NULL;
    *n = 0;
    avo_status st = avo_audio_read(path, &in, &err);
    if (!st) st = avo_audio_to_mono(&in, &mono, &err);
    if (!st) {
        *n = (int64_t)llround((double)mono.frames * 16000.0 / mono.sample_rate);
        x = malloc(sizeof(float) * (size_t)*n);
        st = avo_resample_buffer(mono.samples, mono.frames, mono.sample_rate, 16000.0, x, *n, &err);
    }
    CHECK_MSG(st == AVO_OK, "%s: %s (set AVO_TEST_DATA)", path, err.message);
    avo_audio_free(&in);
    avo_audio_free(&mono);
    if (st) {
        free(x);
        return NULL;
    }
    return x;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_hubert_int8(avo_backend *be, avo_arena *a, const char *model_path) {
    /* calibration: two singers and two speakers; evaluation: other singers and speakers */
    static const char *const cal[] = {"singing/nus48e_JLEE_11.flac", "singing/nus48e_MPOL_11.flac",
                                      "speech/libri_1688-142285-0000.flac", "speech/libri_2609-156975-0002.flac"};
    static const char *const eval[] = {"singing/nus48e_ZHIY_03.flac", "singing/vocadito_10.flac",
                                       "speech/libri_367-130732-0001.flac", "speech/vctk_p335_ref.flac"};
    const int n_cal = 4, n_eval = 4, layers = 2;
    avo_error err = {0};
    avo_hubert *m = NULL;
    CHECK_OK(avo_hubert_load(model_path, be, &m, &err), &err);
    if (!m) return;
    uint64_t model_hash = 0;
    CHECK_OK(avo_calib_file_hash(model_path, &model_hash, &err), &err);
    avo_calib *c = NULL;
    avo_calib_table *all = NULL, *sel = NULL;
    CHECK_OK(avo_calib_create(&c, &err), &err);
    CHECK_OK(avo_calib_attach(c, be, &err), &err);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            CHECK_OK(avo_calib_compute(c, 0, model_hash, &all, &err), &err);
            if (!all) break;
            CHECK_OK(avo_calib_start_error_pass(c, all, &err), &err);
        }
        for (int i = 0; i < n_cal; i++) {
            int64_t n = 0;
            float *x = load_16k(cal[i], &n);
            if (!x) continue;
            avo_tensor out = {0};
            avo_arena_reset(a);
            CHECK_OK(avo_hubert_extract(m, a, x, n, layers, true, &out, &err), &err);
            if (pass == 0) avo_calib_note_audio(c, n / 16000.0);
            free(x);
        }
    }
    avo_calib_detach(c, be);
    fprintf(stderr, "HuBERT calibration: %.1f s of audio, %d tensors\n", avo_calib_audio_seconds(c), avo_calib_tensor_count(c));
    CHECK(avo_calib_audio_seconds(c) >= AVO_CALIB_MIN_SECONDS);
    /* 7 waveform convolutions + projection + positional conv + 6 per layer + final_proj */
    CHECK_MSG(avo_calib_tensor_count(c) == 7 + 2 + 6 * layers + 1, "%d tensors", avo_calib_tensor_count(c));
    if (all) CHECK_OK(avo_calib_select(c, 0, &sel, &err), &err);
    if (!sel) {
        avo_calib_free(c);
        avo_calib_table_free(all);
        avo_hubert_free(m);
        return;
    }
    for (int i = 0; i < avo_calib_tensor_count(c); i++) {
        avo_calib_info in;
        avo_calib_tensor_info(c, i, &in);
        fprintf(stderr, "  %-42s threshold %.4g (max %.4g)  frames %-6llu mean error %.4f  bad %.2f%%  %s\n", in.name,
                in.threshold, in.max, (unsigned long long)in.frames, in.mean_error, 100.0 * in.bad_frames,
                avo_calib_table_find(sel, in.name, NULL) ? "INT8" : "kept FP");
    }
    /* the waveform convolutions scale with loudness and must stay out; the transformer goes INT8 */
    int n_sel = avo_calib_table_count(sel);
    CHECK_MSG(n_sel >= 2 + 6 * layers && n_sel < avo_calib_tensor_count(c), "%d of %d tensors selected", n_sel,
              avo_calib_tensor_count(c));
    for (int i = 0; i < n_sel; i++) {
        const char *nm;
        avo_calib_table_entry(sel, i, &nm, NULL);
        CHECK_MSG(strncmp(nm, "conv1d.32x1x10.", 15) != 0, "the waveform's first convolution was chosen for INT8");
    }

    /* cache round trip on the way, as the CLI does */
    char path[700];
    snprintf(path, sizeof path, "%s/hubert_small.calib", tmpdir);
    avo_calib_table *back = NULL;
    CHECK_OK(avo_calib_cache_write(path, sel, &err), &err);
    CHECK_OK(avo_calib_cache_read(path, &model_hash, &back, &err), &err);

    avo_calib_sim *sim = NULL;
    if (back) CHECK_OK(avo_calib_sim_create(back, false, &sim, &err), &err);
    double *cos = NULL;
    int64_t n_cos = 0;
    for (int i = 0; i < n_eval && sim; i++) {
        int64_t n = 0;
        float *x = load_16k(eval[i], &n);
        if (!x) continue;
        for (int proj = 0; proj < 2; proj++) {
            avo_tensor out = {0};
            avo_arena_reset(a);
            CHECK_OK(avo_hubert_extract(m, a, x, n, layers, proj, &out, &err), &err);
            int64_t T = out.shape[0], D = out.shape[1];
            float *ref = malloc(sizeof(float) * (size_t)(T * D));
            memcpy(ref, out.data, sizeof(float) * (size_t)(T * D));
            avo_arena_reset(a);
            CHECK_OK(avo_calib_sim_attach(sim, be, &err), &err);
            out.data = NULL;
            CHECK_OK(avo_hubert_extract(m, a, x, n, layers, proj, &out, &err), &err);
            avo_calib_sim_detach(sim, be);
            const float *q = out.data;
            cos = realloc(cos, sizeof(double) * (size_t)(n_cos + T));
            double lo = 1.0;
            for (int64_t t = 0; t < T && q; t++) {
                double ab = 0, aa = 0, bb = 0;
                for (int64_t d = 0; d < D; d++) {
                    ab += (double)ref[t * D + d] * q[t * D + d];
                    aa += (double)ref[t * D + d] * ref[t * D + d];
                    bb += (double)q[t * D + d] * q[t * D + d];
                }
                double cs = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : (aa == bb ? 1.0 : 0.0);
                cos[n_cos++] = cs;
                lo = cs < lo ? cs : lo;
            }
            fprintf(stderr, "  %-36s %s: %lld frames, min cosine %.5f\n", eval[i], proj ? "final_proj" : "layer 2  ",
                    (long long)T, lo);
            free(ref);
        }
        free(x);
    }
    if (n_cos > 0) {
        qsort(cos, (size_t)n_cos, sizeof(double), cmp_double);
        double median = cos[n_cos / 2], lo = cos[0];
        int64_t nq = 0, ns = 0;
        avo_calib_sim_counts(sim, &nq, &ns);
        fprintf(stderr, "HuBERT simulated INT8 vs FP32 on held-out clips: %lld frames, cosine median %.5f, min %.5f "
                        "(%lld ops in INT8, %lld kept FP32)\n",
                (long long)n_cos, median, lo, (long long)nq, (long long)ns);
        CHECK(nq > 0 && ns > 0);
        CHECK_MSG(median >= 0.99 && lo >= 0.99, "INT8 content features: cosine median %.5f, min %.5f (want >= 0.99)", median, lo);
    }
    CHECK(n_cos > 1000);
    free(cos);
    avo_calib_sim_free(sim);
    avo_calib_table_free(back);
    avo_calib_table_free(sel);
    avo_calib_table_free(all);
    avo_calib_free(c);
    avo_hubert_free(m);
}

/* The INT8 checking helpers shared by the GPU test and bench. */
static void test_check_helpers(void) {
    const float a[6] = {1, 0, 0, 3, 4, 0}, b[6] = {2, 0, 0, -3, -4, 0}, z[6] = {0};
    double worst = 0;
    CHECK_NEAR(avo_calib_frame_cosine(a, a, 2, 3, &worst), 1.0, 1e-12);
    CHECK_NEAR(worst, 1.0, 1e-12);
    CHECK_NEAR(avo_calib_frame_cosine(a, b, 2, 3, &worst), 0.0, 1e-12); /* +1 and -1 */
    CHECK_NEAR(worst, -1.0, 1e-12);
    CHECK_NEAR(avo_calib_frame_cosine(z, z, 2, 3, &worst), 1.0, 1e-12);
    CHECK_NEAR(avo_calib_frame_cosine(a, z, 2, 3, &worst), 0.0, 1e-12);
    const float nan_frame[3] = {NAN, 1, 0};
    avo_calib_frame_cosine(nan_frame, a, 1, 3, &worst);
    CHECK(isnan(worst) || worst < 1.0);
    CHECK(avo_calib_cuda_int8_capable("linear.768x768.0123456789abcdef"));
    CHECK(avo_calib_cuda_int8_capable("conv1d.768x512x1.0123456789abcdef"));
    CHECK(!avo_calib_cuda_int8_capable("conv1d.512x512x3.0123456789abcdef"));
    CHECK(!avo_calib_cuda_int8_capable("conv1d.512x512x11.0123456789abcdef"));
    CHECK(!avo_calib_cuda_int8_capable("conv2d.16x1x3x3.0123456789abcdef"));
}

int main(void) {
    avo_error err = {0};
    avo_test_tmp_dir("calibrate", tmpdir, sizeof tmpdir);
    test_hash();
    test_histogram();
    test_thresholds();
    test_quantize();
    test_weight_scales();
    test_cache();
    test_minimum();

    avo_backend *be = NULL;
    avo_arena *arena = NULL;
    CHECK_OK(avo_backend_cpu_create(2, &be, &err), &err);
    CHECK_OK(avo_arena_create(be, 8u << 20, &arena, &err), &err);
    if (!be || !arena) TEST_MAIN_END();
    test_observer(be, arena);
    test_simulation(be, arena);

    char dir[700];
    snprintf(dir, sizeof dir, "%s/hubert", tmpdir);
    mkdir(dir, 0755);
    int torch = make_small_hubert(dir);
    CHECK(torch >= 0);
    if (torch == 1) {
        char model[800];
        snprintf(model, sizeof model, "%s/hubert_small.pt", dir);
        test_hubert_int8(be, arena, model);
    } else if (torch == 0) {
        const char *req = getenv("AVO_REQUIRE_TORCH");
        if (req && *req)
            CHECK_MSG(0, "python3-torch is missing but AVO_REQUIRE_TORCH is set");
        else
            fprintf(stderr, "SKIP: python3-torch not installed; HuBERT simulated INT8 not tested "
                            "(install python3-torch, or set AVO_REQUIRE_TORCH=1 to make this a failure)\n");
    }
    avo_arena_free(arena);
    avo_backend_free(be);
    test_check_helpers();
    TEST_MAIN_END();
}
