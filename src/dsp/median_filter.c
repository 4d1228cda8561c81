/* Running medians (median_filter.h). The separator's HPSS takes a 25-bin median along frequency and a
 * 9-frame median along time at every time-frequency point of a song; one selection per point was a
 * quarter of a whole `autovoice convert` run. Full windows now go through a comparator network that
 * sorts just enough to fix the middle value, evaluated on 16 neighbouring outputs at once: along a row
 * the 16 windows are 16 overlapping unaligned loads, along a column 16 adjacent columns. */
#include "dsp/median_filter.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MF_AVX512 1
#else
#define MF_AVX512 0
#endif

#define MF_MAX_WIRES 64 /* longest window the network takes; longer ones stay scalar */
#define MF_MAX_PAIRS 1024

float dsp_small_median(float *v, int n) {
    /* Hoare's selection of rank n/2, then for even n the largest of the lower part. */
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

/* ---- the selection network ---- */

typedef struct mf_network {
    int n;                          /* wires that carry values (the window) */
    int pairs;                      /* comparators kept */
    unsigned char lo[MF_MAX_PAIRS]; /* each comparator leaves min on lo, max on hi */
    unsigned char hi[MF_MAX_PAIRS];
} mf_network;

/* Batcher's odd-even merge sort on the next power of two, without the comparators that touch a
 * padding wire (padding holds +inf above the window, so those never move anything) and without those
 * the middle output does not depend on (walking back from it). */
static int mf_network_build(int n, mf_network *net) {
    int p = 1;
    while (p < n) p <<= 1;
    static const int cap = 4096;
    unsigned char *lo = malloc(cap), *hi = malloc(cap);
    if (!lo || !hi) {
        free(lo), free(hi);
        return 0;
    }
    int count = 0;
    for (int half = 1; half < p; half <<= 1)
        for (int step = half; step >= 1; step >>= 1)
            for (int j = step % half; j + step < p; j += 2 * step)
                for (int i = 0; i < step && i + j + step < p; i++)
                    if ((i + j) / (2 * half) == (i + j + step) / (2 * half) && i + j + step < n && count < cap) {
                        lo[count] = (unsigned char)(i + j);
                        hi[count] = (unsigned char)(i + j + step);
                        count++;
                    }
    unsigned char needed[MF_MAX_WIRES] = {0};
    unsigned char keep[4096];
    needed[n / 2] = 1;
    for (int c = count - 1; c >= 0; c--) {
        keep[c] = needed[lo[c]] || needed[hi[c]];
        if (keep[c]) needed[lo[c]] = needed[hi[c]] = 1;
    }
    net->n = n;
    net->pairs = 0;
    for (int c = 0; c < count; c++)
        if (keep[c] && net->pairs < MF_MAX_PAIRS) {
            net->lo[net->pairs] = lo[c];
            net->hi[net->pairs] = hi[c];
            net->pairs++;
        }
    free(lo), free(hi);
    return net->pairs < MF_MAX_PAIRS;
}

#if MF_AVX512
#define MF_TGT __attribute__((target("avx512f")))

/* The middle of 16 windows whose k-th values are at src + k * stride + lane (lane 0..15). */
MF_TGT static inline __m512 mf_select16(const mf_network *net, const float *src, int64_t stride) {
    __m512 w[MF_MAX_WIRES];
    for (int k = 0; k < net->n; k++) w[k] = _mm512_loadu_ps(src + k * stride);
    for (int c = 0; c < net->pairs; c++) {
        const __m512 a = w[net->lo[c]], b = w[net->hi[c]];
        w[net->lo[c]] = _mm512_min_ps(a, b);
        w[net->hi[c]] = _mm512_max_ps(a, b);
    }
    return w[net->n / 2];
}

/* Along row r: outputs c in [h, cols - h) in groups of 16; returns the first column not done. */
MF_TGT static int mf_row_network(const mf_network *net, const float *row, int cols, float *out) {
    const int h = net->n / 2;
    int c = h;
    for (; c + 16 <= cols - h; c += 16) _mm512_storeu_ps(out + c, mf_select16(net, row + c - h, 1));
    return c;
}

/* Along columns for output row r (its window rows r - h .. r + h all exist): columns in groups of 16;
 * returns the first column not done. */
MF_TGT static int mf_col_network(const mf_network *net, const float *top, int cols, float *out) {
    int c = 0;
    for (; c + 16 <= cols; c += 16) _mm512_storeu_ps(out + c, mf_select16(net, top + c, cols));
    return c;
}

int dsp_median_network_available(void) { return __builtin_cpu_supports("avx512f"); }
#else
int dsp_median_network_available(void) { return 0; }
#endif

/* Is the network worth building for this window, and can it be? */
static int mf_prepare(int len, dsp_median_path path, mf_network *net) {
    const int n = 2 * (len / 2) + 1;
    if (path != DSP_MEDIAN_AUTO || n < 3 || n > MF_MAX_WIRES || !dsp_median_network_available()) return 0;
    return mf_network_build(n, net);
}

static float mf_scalar_row(const float *row, int cols, int c, int h) {
    float win[2 * MF_MAX_WIRES + 2];
    float *w = 2 * h + 1 <= (int)(sizeof win / sizeof *win) ? win : malloc(sizeof(float) * (size_t)(2 * h + 1));
    if (!w) return row[c]; /* no memory for a very long window: the value itself */
    const int a = c - h < 0 ? 0 : c - h, b = c + h >= cols ? cols - 1 : c + h;
    int n = 0;
    for (int k = a; k <= b; k++) w[n++] = row[k];
    const float m = dsp_small_median(w, n);
    if (w != win) free(w);
    return m;
}

void dsp_median_along_rows(const float *x, int64_t rows, int cols, int len, int threads, dsp_median_path path,
                           float *out) {
    const int h = len / 2;
    mf_network *net = malloc(sizeof *net);
    const int use_net = net && mf_prepare(len, path, net);
    (void)use_net;
#pragma omp parallel for schedule(static) num_threads(threads > 0 ? threads : 1) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * cols;
        float *o = out + r * cols;
        int c0 = h, c1 = h; /* [c0, c1): done by the network */
#if MF_AVX512
        if (use_net && cols > 2 * h) c1 = mf_row_network(net, row, cols, o);
#endif
        for (int c = 0; c < cols; c++)
            if (c < c0 || c >= c1) o[c] = mf_scalar_row(row, cols, c, h);
    }
    free(net);
}

static float mf_scalar_col(const float *x, int64_t rows, int cols, int64_t r, int c, int h) {
    float win[2 * MF_MAX_WIRES + 2];
    float *w = 2 * h + 1 <= (int)(sizeof win / sizeof *win) ? win : malloc(sizeof(float) * (size_t)(2 * h + 1));
    if (!w) return x[r * cols + c];
    const int64_t a = r - h < 0 ? 0 : r - h, b = r + h >= rows ? rows - 1 : r + h;
    int n = 0;
    for (int64_t k = a; k <= b; k++) w[n++] = x[k * cols + c];
    const float m = dsp_small_median(w, n);
    if (w != win) free(w);
    return m;
}

void dsp_median_along_cols(const float *x, int64_t rows, int cols, int len, int threads, dsp_median_path path,
                           float *out) {
    const int h = len / 2;
    mf_network *net = malloc(sizeof *net);
    const int use_net = net && mf_prepare(len, path, net);
    (void)use_net;
#pragma omp parallel for schedule(static) num_threads(threads > 0 ? threads : 1) if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; r++) {
        float *o = out + r * cols;
        int done = 0; /* columns [0, done) by the network */
#if MF_AVX512
        if (use_net && r - h >= 0 && r + h < rows) done = mf_col_network(net, x + (r - h) * cols, cols, o);
#endif
        for (int c = done; c < cols; c++) o[c] = mf_scalar_col(x, rows, cols, r, c, h);
    }
    free(net);
}
