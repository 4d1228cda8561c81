/* Running medians (src/dsp/median_filter.c): both paths against a sort of every window, on random data
 * with many ties, for the window lengths the separator uses and others, at shapes that put outputs in
 * the network's groups of 16, in its tails and at the clipped edges. */
#include "dsp/median_filter.h"
#include "test_util.h"

#include <stdlib.h>

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The median of window w (n values) by sorting: the middle, or the mean of the two middle ones. */
static float sorted_median(float *w, int n) {
    qsort(w, (size_t)n, sizeof *w, cmp_float);
    return n % 2 ? w[n / 2] : 0.5f * (w[n / 2 - 1] + w[n / 2]);
}

static float reference_at(const float *x, int64_t rows, int cols, int len, int along_rows, int64_t r, int c) {
    float w[256];
    const int h = len / 2;
    int n = 0;
    for (int k = -h; k <= h; k++) {
        const int64_t rr = along_rows ? r : r + k;
        const int cc = along_rows ? c + k : c;
        if (rr >= 0 && rr < rows && cc >= 0 && cc < cols) w[n++] = x[rr * cols + cc];
    }
    return sorted_median(w, n);
}

/* Compares one filter on one shape; returns the number of wrong outputs. */
static int64_t check_shape(uint64_t *rng, int64_t rows, int cols, int len, int along_rows, dsp_median_path path) {
    float *x = malloc(sizeof(float) * (size_t)(rows * cols));
    float *out = malloc(sizeof(float) * (size_t)(rows * cols));
    avo_test_fill(rng, x, rows * cols);
    for (int64_t i = 0; i < rows * cols; i++) x[i] = floorf(x[i] * 8.0f) / 8.0f; /* ties */
    if (along_rows) dsp_median_along_rows(x, rows, cols, len, 2, path, out);
    else dsp_median_along_cols(x, rows, cols, len, 2, path, out);
    int64_t wrong = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            if (out[r * cols + c] != reference_at(x, rows, cols, len, along_rows, r, c)) wrong++;
    free(x), free(out);
    return wrong;
}

static void test_against_sorting(void) {
    uint64_t rng = 0x5eed;
    const int lens[] = {1, 3, 5, 9, 17, 25, 33, 63};
    const int col_counts[] = {1, 7, 16, 31, 40, 67, 130};
    const int64_t row_counts[] = {1, 2, 9, 26, 70};
    for (int along = 0; along < 2; along++)
        for (int p = 0; p < 2; p++)
            for (size_t li = 0; li < sizeof lens / sizeof *lens; li++)
                for (size_t ci = 0; ci < sizeof col_counts / sizeof *col_counts; ci++)
                    for (size_t ri = 0; ri < sizeof row_counts / sizeof *row_counts; ri++) {
                        const dsp_median_path path = p ? DSP_MEDIAN_SCALAR : DSP_MEDIAN_AUTO;
                        const int64_t wrong =
                            check_shape(&rng, row_counts[ri], col_counts[ci], lens[li], along, path);
                        CHECK_MSG(wrong == 0, "%s, %s path, len %d, %lld x %d: %lld wrong",
                                  along ? "along rows" : "along columns", p ? "scalar" : "auto", lens[li],
                                  (long long)row_counts[ri], col_counts[ci], (long long)wrong);
                    }
}

/* The check itself must catch a wrong rank: a window's second smallest is not its median. */
static void test_reference_catches_wrong_rank(void) {
    float w[5] = {4, 1, 3, 5, 2};
    CHECK(sorted_median(w, 5) == 3.0f);
    float v[5] = {4, 1, 3, 5, 2};
    CHECK(dsp_small_median(v, 5) == 3.0f);
    float e[4] = {4, 1, 3, 2};
    CHECK(dsp_small_median(e, 4) == 2.5f);
}

/* The separator's shapes (2049 bins, 25-bin and 9-frame windows) on both paths, outputs equal. */
static void test_separator_shapes_agree(void) {
    uint64_t rng = 0xfeed;
    const int64_t rows = 40;
    const int cols = 2049;
    float *x = malloc(sizeof(float) * (size_t)(rows * cols));
    float *a = malloc(sizeof(float) * (size_t)(rows * cols)), *b = malloc(sizeof(float) * (size_t)(rows * cols));
    avo_test_fill(&rng, x, rows * cols);
    for (int along = 0; along < 2; along++) {
        const int len = along ? 25 : 9;
        if (along) {
            dsp_median_along_rows(x, rows, cols, len, 2, DSP_MEDIAN_AUTO, a);
            dsp_median_along_rows(x, rows, cols, len, 2, DSP_MEDIAN_SCALAR, b);
        } else {
            dsp_median_along_cols(x, rows, cols, len, 2, DSP_MEDIAN_AUTO, a);
            dsp_median_along_cols(x, rows, cols, len, 2, DSP_MEDIAN_SCALAR, b);
        }
        CHECK(memcmp(a, b, sizeof(float) * (size_t)(rows * cols)) == 0);
    }
    free(x), free(a), free(b);
    fprintf(stderr, "network path available: %s\n", dsp_median_network_available() ? "yes" : "no");
}

int main(void) {
    test_reference_catches_wrong_rank();
    test_against_sorting();
    test_separator_shapes_agree();
    TEST_MAIN_END();
}
