/* convert module: RVC's feature index read from .npy and its retrieval blend, against a direct
 * computation in the test (every distance, a full sort, RVC's (1/d^2)^2 weights in double); .npy
 * header variants, float16 rows and bad files; the 48 Hz high-pass's response. */
#define _GNU_SOURCE /* memmem */
#include "convert/converter_internal.h"
#include "test_util.h"

#include <stdint.h>

/* A .npy image (version 1) of rows x dim values, float32 or float16 (values given as floats). */
static unsigned char *make_npy(const float *v, int64_t rows, int dim, int half, const char *descr_override,
                               size_t *size) {
    char header[256];
    int len = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (%lld, %d), }",
                       descr_override ? descr_override : half ? "<f2" : "<f4", (long long)rows, dim);
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    const size_t hlen = (size_t)(len + pad + 1);
    const size_t data = (size_t)rows * (size_t)dim * (half ? 2u : 4u);
    unsigned char *d = malloc(10 + hlen + data);
    memcpy(d, "\x93NUMPY\x01\x00", 8);
    d[8] = (unsigned char)(hlen & 0xff);
    d[9] = (unsigned char)(hlen >> 8);
    memcpy(d + 10, header, (size_t)len);
    memset(d + 10 + len, ' ', (size_t)pad);
    d[10 + hlen - 1] = '\n';
    unsigned char *p = d + 10 + hlen;
    for (int64_t i = 0; i < rows * dim; i++) {
        if (half) {
            /* exact for the values used here: small integers / 8 */
            float f = v[i];
            uint32_t bits;
            memcpy(&bits, &f, 4);
            uint16_t h = (uint16_t)(((bits >> 16) & 0x8000) | ((((bits >> 23) & 0xff) - 112) << 10) |
                                    ((bits >> 13) & 0x3ff));
            if (f == 0.0f) h = 0;
            p[2 * i] = (unsigned char)(h & 0xff);
            p[2 * i + 1] = (unsigned char)(h >> 8);
        } else {
            memcpy(p + 4 * i, &v[i], 4);
        }
    }
    *size = 10 + hlen + data;
    return d;
}

static uint64_t rng_state = 88172645463325252ull;
static float urand(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0));
}

/* What RVC computes, directly: k nearest by squared distance, weights (1/d2)^2, then the blend. */
static void reference_blend(const float *ix, int64_t rows, int dim, const float *q, int64_t frames, double rate,
                            int k, double *out) {
    double *d2 = malloc(sizeof(double) * (size_t)rows);
    int64_t *order = malloc(sizeof(int64_t) * (size_t)rows);
    for (int64_t t = 0; t < frames; t++) {
        for (int64_t r = 0; r < rows; r++) {
            double s = 0;
            for (int c = 0; c < dim; c++) s += ((double)q[t * dim + c] - ix[r * dim + c]) * ((double)q[t * dim + c] - ix[r * dim + c]);
            d2[r] = s;
            order[r] = r;
        }
        for (int i = 0; i < k; i++) /* partial selection sort */
            for (int64_t j = i + 1; j < rows; j++)
                if (d2[order[j]] < d2[order[i]]) {
                    int64_t tmp = order[i];
                    order[i] = order[j], order[j] = tmp;
                }
        double w[16], ws = 0;
        for (int i = 0; i < k; i++) w[i] = 1.0 / (d2[order[i]] * d2[order[i]]), ws += w[i];
        for (int c = 0; c < dim; c++) {
            double acc = 0;
            for (int i = 0; i < k; i++) acc += w[i] / ws * ix[order[i] * dim + c];
            out[t * dim + c] = rate * acc + (1 - rate) * q[t * dim + c];
        }
    }
    free(d2);
    free(order);
}

static void test_blend_matches_reference(int64_t rows, int dim, int64_t frames, double rate) {
    float *ix = malloc(sizeof(float) * (size_t)(rows * dim));
    float *q = malloc(sizeof(float) * (size_t)(frames * dim));
    for (int64_t i = 0; i < rows * dim; i++) ix[i] = urand() * 2 - 1;
    for (int64_t i = 0; i < frames * dim; i++) q[i] = urand() * 2 - 1;
    size_t size = 0;
    unsigned char *npy = make_npy(ix, rows, dim, 0, NULL, &size);
    feature_index *fi = NULL;
    avo_error err = {0};
    CHECK_MSG(feature_index_load_memory(npy, size, "mem.npy", &fi, &err) == AVO_OK, "%s", err.message);
    if (fi) {
        CHECK(feature_index_rows(fi) == rows && feature_index_dim(fi) == dim);
        double *want = malloc(sizeof(double) * (size_t)(frames * dim));
        reference_blend(ix, rows, dim, q, frames, rate, rows < 8 ? (int)rows : 8, want);
        CHECK(feature_index_blend(fi, q, frames, dim, rate, 8, &err) == AVO_OK);
        double worst = 0;
        for (int64_t i = 0; i < frames * dim; i++) worst = fmax(worst, fabs(q[i] - want[i]));
        CHECK_MSG(worst < 1e-4, "blend differs from the direct computation by %g (rows %lld)", worst, (long long)rows);
        free(want);
    }
    feature_index_free(fi);
    free(npy), free(ix), free(q);
}

static void test_exact_match_and_half(void) {
    /* Rows of eighths are exact in float16; a query equal to a row takes that row entirely. */
    const int rows = 20, dim = 6;
    float ix[20 * 6];
    for (int i = 0; i < rows * dim; i++) ix[i] = (float)((i * 7 % 23) - 11) / 8.0f;
    size_t size = 0;
    unsigned char *npy = make_npy(ix, rows, dim, 1, NULL, &size);
    feature_index *fi = NULL;
    avo_error err = {0};
    CHECK_MSG(feature_index_load_memory(npy, size, "half.npy", &fi, &err) == AVO_OK, "%s", err.message);
    if (fi) {
        float q[6];
        memcpy(q, ix + 5 * dim, sizeof q);
        CHECK(feature_index_blend(fi, q, 1, dim, 1.0, 8, &err) == AVO_OK);
        for (int c = 0; c < dim; c++) CHECK_NEAR(q[c], ix[5 * dim + c], 1e-6);
        /* rate 0 leaves the features alone; another dimension is refused */
        float q2[6] = {1, 2, 3, 4, 5, 6};
        CHECK(feature_index_blend(fi, q2, 1, dim, 0.0, 8, &err) == AVO_OK && q2[3] == 4.0f);
        CHECK(feature_index_blend(fi, q2, 1, dim - 1, 0.5, 8, &err) == AVO_ERR_INVALID_ARGUMENT);
        CHECK(strstr(err.message, "another model") != NULL);
    }
    feature_index_free(fi);
    free(npy);
}

static void expect_bad(const unsigned char *d, size_t size, const char *what, const char *needle) {
    feature_index *fi = NULL;
    avo_error err = {0};
    avo_status st = feature_index_load_memory(d, size, what, &fi, &err);
    CHECK_MSG(st == AVO_ERR_FORMAT && fi == NULL, "%s accepted (status %d)", what, st);
    CHECK_MSG(strstr(err.message, needle) != NULL, "%s: message '%s' lacks '%s'", what, err.message, needle);
    feature_index_free(fi);
}

static void test_bad_files(void) {
    float v[12] = {0};
    size_t size = 0;
    unsigned char *good = make_npy(v, 3, 4, 0, NULL, &size);
    expect_bad(good, 6, "short.npy", "not a NumPy");
    expect_bad((const unsigned char *)"PK\x03\x04 zip file here", 20, "zip.npy", "not a NumPy");
    expect_bad(good, size - 1, "truncated.npy", "truncated");
    expect_bad(good, 12, "cut-header.npy", "truncated");
    unsigned char *f8 = make_npy(v, 3, 4, 0, "<f8", &size);
    expect_bad(f8, size, "double.npy", "float32 or float16");
    unsigned char *be = make_npy(v, 3, 4, 0, ">f4", &size);
    expect_bad(be, size, "bigendian.npy", "float32 or float16");
    /* 1-D shape */
    unsigned char *one = make_npy(v, 3, 4, 0, NULL, &size);
    char *sh = memmem(one, size, "(3, 4)", 6);
    CHECK(sh != NULL);
    if (sh) memcpy(sh, "(12,) ", 6);
    expect_bad(one, size, "flat.npy", "2-D");
    /* a NaN row */
    v[5] = NAN;
    unsigned char *nan = make_npy(v, 3, 4, 0, NULL, &size);
    expect_bad(nan, size, "nan.npy", "non-finite");
    free(good), free(f8), free(be), free(one), free(nan);
    feature_index *fi = NULL;
    avo_error err = {0};
    CHECK(feature_index_load("/nonexistent/index.npy", &fi, &err) == AVO_ERR_IO && fi == NULL);
    CHECK(strstr(err.message, "/nonexistent/index.npy") != NULL);
}

/* Magnitude of the high-pass at f: steady-state amplitude of a unit sine through it. */
static double highpass_gain(double f) {
    const int64_t n = 32000;
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = (float)sin(2 * M_PI * f * (double)i / 16000.0);
    rvc_highpass_16k(x, n);
    double peak = 0;
    for (int64_t i = n / 4; i < 3 * n / 4; i++) peak = fmax(peak, fabs(x[i]));
    free(x);
    return peak;
}

static void test_highpass(void) {
    /* 4th-order Butterworth run twice (zero phase): -6 dB at 48 Hz, about -48 dB an octave below. */
    CHECK_NEAR(20 * log10(highpass_gain(48.0)), -6.02, 0.3);
    CHECK(20 * log10(highpass_gain(24.0)) < -45.0);
    CHECK_NEAR(highpass_gain(200.0), 1.0, 0.01);
    CHECK_NEAR(highpass_gain(3000.0), 1.0, 0.01);
}

int main(void) {
    test_blend_matches_reference(5, 4, 3, 0.75);      /* fewer rows than k */
    test_blend_matches_reference(300, 16, 40, 0.75);  /* one block */
    test_blend_matches_reference(9000, 8, 20, 1.0);   /* several blocks of the sgemm search */
    test_exact_match_and_half();
    test_bad_files();
    test_highpass();
    TEST_MAIN_END();
}
