/* FP32 linear for AVX-512 (see cpu_conv1d.h): y[r, o] = sum_i x[r, i] w[o, i] + b[o].
 *
 * Why not sgemm: this environment pins OpenBLAS to its Haswell (AVX2) kernels, about half the FP32
 * rate of an AVX-512 FMA loop on this CPU. The microkernel holds LR rows x LV vectors of 16 outputs
 * (24 of the 32 registers); per input it loads LV vectors of packed weights and broadcasts LR inputs
 * straight from x (no copy of x). The reduction runs in chunks of KC inputs so a chunk of one output
 * block's packed weights (KC x 64 floats, 32 KB) stays in L1 while every row of a tile passes over
 * it; partial sums wait in y between chunks (the first chunk starts from zero, the last adds bias).
 * w is packed as wp[ob][i][64] into arena scratch on every call: one pass over the weights, small
 * next to the product at the row counts it is taken for, and it can never go stale. */
#include "engine/cpu_conv1d.h"
#include "engine/cpu_math.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#define LR 6
#define LV 4
#define LO (LV * 16)
#define KC 128       /* inputs per reduction chunk: KC * LO * 4 bytes of weights in L1 */
#define TILE_ROWS 48 /* rows per work item (a multiple of LR) */

#define TGT __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))

typedef struct linf_geom {
    const float *x, *wp, *b;
    float *y;
    int64_t rows, in, out;
} linf_geom;

/* Rows r0 .. r0+LR-1 (rows past the end read the last row and are not stored), output block ob,
 * inputs [k0, k1). */
TGT static void linf_kernel(const linf_geom *g, int64_t ob, int64_t r0, int64_t k0, int64_t k1) {
    __m512 acc[LR][LV];
    const bool first = k0 == 0, last = k1 == g->in;
    const float *xr[LR];
    _Pragma("GCC unroll 6") for (int r = 0; r < LR; r++) {
        int64_t row = r0 + r < g->rows ? r0 + r : g->rows - 1;
        xr[r] = g->x + row * g->in;
        _Pragma("GCC unroll 4") for (int v = 0; v < LV; v++) {
            int64_t o = ob * LO + 16 * v, rem = g->out - o;
            acc[r][v] = _mm512_setzero_ps();
            if (!first && r0 + r < g->rows && rem > 0) {
                __mmask16 mk = rem >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem) - 1u);
                acc[r][v] = _mm512_maskz_loadu_ps(mk, g->y + (r0 + r) * g->out + o);
            }
        }
    }
    const float *wq = g->wp + (ob * g->in + k0) * LO;
    for (int64_t i = k0; i < k1; i++, wq += LO) {
        __m512 wv[LV];
        _Pragma("GCC unroll 4") for (int v = 0; v < LV; v++) wv[v] = _mm512_loadu_ps(wq + 16 * v);
        _Pragma("GCC unroll 6") for (int r = 0; r < LR; r++) {
            __m512 xv = _mm512_set1_ps(xr[r][i]);
            _Pragma("GCC unroll 4") for (int v = 0; v < LV; v++) acc[r][v] = _mm512_fmadd_ps(xv, wv[v], acc[r][v]);
        }
    }
    _Pragma("GCC unroll 6") for (int r = 0; r < LR; r++) {
        if (r0 + r >= g->rows) break;
        float *yr = g->y + (r0 + r) * g->out;
        _Pragma("GCC unroll 4") for (int v = 0; v < LV; v++) {
            int64_t o = ob * LO + 16 * v, rem = g->out - o;
            if (rem <= 0) break;
            __mmask16 mk = rem >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem) - 1u);
            __m512 val = acc[r][v];
            if (last && g->b) val = _mm512_add_ps(val, _mm512_maskz_loadu_ps(mk, g->b + o));
            if (rem >= 16)
                _mm512_storeu_ps(yr + o, val);
            else
                _mm512_mask_storeu_ps(yr + o, mk, val);
        }
    }
}

/* wp[ob][i][m] = w[ob*LO + m, i], 0 for outputs past `out`. Blocks of PI inputs: the PI packed rows
 * being written (PI * 256 bytes) stay in L1 while the 64 weight rows are read along. */
#define PI 16
static void linf_pack(const float *w, int64_t in, int64_t out, int64_t nob, float *wp, int nt) {
#pragma omp parallel for num_threads(nt) if (nob * in * LO > 65536)
    for (int64_t ob = 0; ob < nob; ob++) {
        float *dst = wp + ob * in * LO;
        int64_t mmax = out - ob * LO < LO ? out - ob * LO : LO;
        if (mmax < LO) memset(dst, 0, (size_t)(in * LO) * sizeof(float));
        for (int64_t i0 = 0; i0 < in; i0 += PI) {
            int64_t n = in - i0 < PI ? in - i0 : PI;
            for (int64_t m = 0; m < mmax; m++) {
                const float *src = w + (ob * LO + m) * in + i0;
                for (int64_t ii = 0; ii < n; ii++) dst[(i0 + ii) * LO + m] = src[ii];
            }
        }
    }
}

bool cpu_linear_f32_preferred(int64_t rows, int64_t in, int64_t out) {
    /* Below about a hundred rows the weight packing is not paid back (sgemm reads w in place):
     * measured equal at 100 rows of 768 -> 768, slower at 30 (bench_linear). */
    return cpu_conv1d_avx512_available() && rows >= 128 && in >= 16 && out >= 16;
}

TGT avo_status cpu_linear_f32(avo_arena *a, const float *x, int64_t rows, int64_t in, const float *w, int64_t out,
                              const float *b, float *y, int nthreads, avo_error *err) {
    int nt = nthreads > 0 ? nthreads : 1;
    int64_t nob = (out + LO - 1) / LO;
    void *wp = NULL;
    avo_status st = avo_arena_alloc(a, (size_t)(nob * in * LO) * sizeof(float), &wp, err);
    if (st) return st;
    linf_pack(w, in, out, nob, wp, nt);
    linf_geom g = {x, wp, b, y, rows, in, out};
    int64_t ntiles = (rows + TILE_ROWS - 1) / TILE_ROWS, ng = 1;
    while (ntiles * ng < 4 * nt && ng * 2 <= nob) ng *= 2;
    int64_t obg = (nob + ng - 1) / ng;
    int64_t nch = (in + KC - 1) / KC, kc = (in + nch - 1) / nch; /* even chunks */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t wi = 0; wi < ntiles * ng; wi++) {
        int64_t tile = wi / ng, gi = wi % ng, ob0 = gi * obg, ob1 = ob0 + obg < nob ? ob0 + obg : nob;
        int64_t r0 = tile * TILE_ROWS, r1 = r0 + TILE_ROWS < rows ? r0 + TILE_ROWS : rows;
        for (int64_t k0 = 0; k0 < in; k0 += kc) {
            int64_t k1 = k0 + kc < in ? k0 + kc : in;
            for (int64_t ob = ob0; ob < ob1; ob++)
                for (int64_t r = r0; r < r1; r += LR) linf_kernel(&g, ob, r, k0, k1);
        }
    }
    return AVO_OK;
}

/* ---- softmax row (the attention's, next to its products) ------------------------------------- */

TGT static float row_max(const float *x, int64_t n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + j));
    float mx = _mm512_reduce_max_ps(m);
    for (; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    return mx;
}

TGT static void row_add(float *x, int64_t n, float v) {
    const __m512 vv = _mm512_set1_ps(v);
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) _mm512_storeu_ps(x + j, _mm512_add_ps(_mm512_loadu_ps(x + j), vv));
    for (; j < n; j++) x[j] += v;
}

TGT static float row_sum(const float *x, int64_t n) {
    __m512 s = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) s = _mm512_add_ps(s, _mm512_loadu_ps(x + j));
    float sum = _mm512_reduce_add_ps(s);
    for (; j < n; j++) sum += x[j];
    return sum;
}

TGT static void row_scale(float *x, int64_t n, float v) {
    const __m512 vv = _mm512_set1_ps(v);
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) _mm512_storeu_ps(x + j, _mm512_mul_ps(_mm512_loadu_ps(x + j), vv));
    for (; j < n; j++) x[j] *= v;
}

void cpu_softmax_row_avx512(float *row, int64_t n) {
    if (n < 1) return;
    row_add(row, n, -row_max(row, n));
    cpu_math_exp(row, row, n);
    row_scale(row, n, 1.0f / row_sum(row, n));
}
