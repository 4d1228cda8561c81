/* Direct conv1d for AVX-512 (see cpu_conv1d.h).
 *
 * y[o, t] = sum_{c, kk} w[o, c, kk] * x[c, t*s + kk*d - pad]. The output is cut into time tiles; each
 * work item copies its tile of x once (zero padding, leaky ReLU, BF16 rounding applied there) into a
 * per-thread buffer sized for L2, then a register-blocked microkernel computes MR output channels x
 * NV vectors of 16 time steps. The reduction runs over L1-sized chunks of input channels (partial
 * sums wait in y); the last chunk adds bias and residual as it stores the accumulators.
 * A stride s splits the input into s phases (input index s*j + r in phase r, column j): tap kk then
 * reads phase (kk*d - pad) mod s at a fixed column offset, and every load stays contiguous.
 *
 * BF16: vdpbf16ps multiplies pairs along the reduction, so the tile holds channel pairs interleaved
 * (c even, c odd) per time step and the packed weights hold the matching pairs as 32-bit values.
 *
 * Weights: FP32 reads them in place (four output rows walked in order, each value broadcast from
 * memory), so nothing is packed or cached. BF16 needs bf16 pairs and repacks them on every call into
 * arena scratch: one pass over the weights per call, small next to the convolution at audio-rate
 * lengths, and it can never go stale. A cache keyed on weight addresses could serve a freed model's
 * packing to another model that got the same memory, or miss an in-place rewrite of a weight. */
#include "engine/cpu_conv1d.h"

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#define MR 4              /* output channels per microkernel */
#define NV 6              /* 16-float vectors of time steps per microkernel */
#define NT (NV * 16)      /* time steps per microkernel */
#define MAX_K 128         /* longest kernel taken (the per-tap offsets live on the stack): HuBERT's positional conv */
#define MAX_STRIDE 16
#define TILE_BYTES 196608 /* input tile per thread: well inside L2 with the weight block */

#define TGT __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
#define TGT16 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,avx512bf16")))


bool cpu_conv1d_avx512_available(void) {
    static int v = -1;
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    }
    return v;
}

bool cpu_conv1d_bf16_available(void) {
    static int v = -1;
    if (v < 0) {
        __builtin_cpu_init();
        v = cpu_conv1d_avx512_available() && __builtin_cpu_supports("avx512bf16");
    }
    return v;
}

bool cpu_conv1d_direct_supported(const cpu_conv1d_args *c) {
    return c->enabled && cpu_conv1d_avx512_available() && c->k >= 1 && c->k <= MAX_K && c->stride >= 1 && c->stride <= MAX_STRIDE &&
           c->cin >= 1 && c->cout >= 1 && c->tout >= 1 && (!c->bf16 || cpu_conv1d_bf16_available());
}

static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

typedef struct geom {
    const cpu_conv1d_args *c;
    int64_t cinp;   /* cin rounded up to the reduction step (1 FP32, 2 BF16) */
    int64_t qmin;   /* column of phase data at tile column 0, relative to the tile's first output */
    int64_t cols;   /* columns per phase row of a tile */
    int64_t tt;     /* output steps per tile (multiple of NT) */
    int64_t nob;    /* blocks of MR output channels */
    const void *wp; /* packed weights */
    int64_t koff[MAX_K]; /* per tap: phase row and column offset inside a channel's rows */
} geom;

/* Round to nearest even, NaN kept quiet. */
static uint16_t f2bf(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static float act(const cpu_conv1d_args *c, float v) { return c->leaky && v < 0.0f ? v * c->slope : v; }

/* ---- weight packing ---------------------------------------------------------------------------- */

/* BF16: wp[ob][cp][kk][m] = (bf16 w[o, 2cp, kk]) | (bf16 w[o, 2cp+1, kk]) << 16, o = ob*MR + m (0 past
 * cout or cin). Kernels up to 16 taps convert a row pair in one vector and scatter it with stride MR. */
TGT16 static void pack_bf16(const geom *g, uint32_t *wp) {
    const cpu_conv1d_args *c = g->c;
    const int64_t cin = c->cin, k = c->k, ncp = g->cinp / 2;
    static const uint16_t il_idx[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                        8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512i il = _mm512_loadu_si512(il_idx);
    const __m512i sc = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                          _mm512_set1_epi32(MR));
    const __mmask16 km = k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << k) - 1u);
#pragma omp parallel for num_threads(c->nthreads) if (g->nob * cin * k > 65536)
    for (int64_t ob = 0; ob < g->nob; ob++)
        for (int m = 0; m < MR; m++) {
            int64_t o = ob * MR + m;
            for (int64_t cp = 0; cp < ncp; cp++) {
                uint32_t *dst = wp + ((ob * ncp + cp) * k) * MR + m;
                int64_t c0 = 2 * cp, c1 = c0 + 1;
                if (o >= c->cout) {
                    for (int64_t kk = 0; kk < k; kk++) dst[kk * MR] = 0;
                } else if (k <= 16) {
                    const float *r0 = c->w + (o * cin + c0) * k;
                    __m512 a = _mm512_maskz_loadu_ps(km, r0);
                    __m512 b = c1 < cin ? _mm512_maskz_loadu_ps(km, r0 + k) : _mm512_setzero_ps();
                    __m512i v = _mm512_permutexvar_epi16(il, (__m512i)_mm512_cvtne2ps_pbh(b, a));
                    _mm512_mask_i32scatter_epi32(dst, km, sc, v, 4);
                } else {
                    for (int64_t kk = 0; kk < k; kk++) {
                        uint16_t lo = f2bf(c->w[(o * cin + c0) * k + kk]);
                        uint16_t hi = c1 < cin ? f2bf(c->w[(o * cin + c1) * k + kk]) : 0;
                        dst[kk * MR] = (uint32_t)lo | (uint32_t)hi << 16;
                    }
                }
            }
        }
}

/* ---- input tiles ------------------------------------------------------------------------------- */

/* Valid columns [lo, hi) of a phase row: input index s*(t0 + qmin + j) + r inside [0, t). */
static void tile_range(const geom *g, int64_t t0, int64_t r, int64_t *lo, int64_t *hi) {
    const cpu_conv1d_args *c = g->c;
    int64_t s = c->stride, base = s * (t0 + g->qmin) + r; /* index of column 0 */
    int64_t l = base >= 0 ? 0 : (-base + s - 1) / s;
    int64_t h = c->t - base <= 0 ? 0 : (c->t - base + s - 1) / s;
    if (h > g->cols) h = g->cols;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* buf[(ci*s + r)*cols + j] = act(x[ci, s*(t0 + qmin + j) + r]), 0 outside x. */
TGT static void copy_tile_f32(const geom *g, int64_t t0, float *buf) {
    const cpu_conv1d_args *c = g->c;
    int64_t s = c->stride, cols = g->cols;
    const __m512 slope = _mm512_set1_ps(c->leaky ? c->slope : 1.0f), zero = _mm512_setzero_ps();
    for (int64_t ci = 0; ci < c->cin; ci++)
        for (int64_t r = 0; r < s; r++) {
            float *dst = buf + (ci * s + r) * cols;
            const float *src = c->x + ci * c->t + s * (t0 + g->qmin) + r;
            int64_t lo, hi;
            tile_range(g, t0, r, &lo, &hi);
            for (int64_t j = 0; j < lo; j++) dst[j] = 0.0f;
            if (s == 1) {
                int64_t j = lo;
                for (; j + 16 <= hi; j += 16) {
                    __m512 v = _mm512_loadu_ps(src + j);
                    v = _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, slope);
                    _mm512_storeu_ps(dst + j, v);
                }
                for (; j < hi; j++) dst[j] = act(c, src[j]);
            } else {
                for (int64_t j = lo; j < hi; j++) dst[j] = act(c, src[j * s]);
            }
            for (int64_t j = hi; j < cols; j++) dst[j] = 0.0f;
        }
}

/* buf (uint16) [((cp*s + r)*cols + j)*2 + (ci & 1)] = bf16(act(x[ci, ...])), 0 outside x and for
 * the padding channel of an odd cin. */
TGT16 static void copy_tile_bf16(const geom *g, int64_t t0, uint16_t *buf) {
    const cpu_conv1d_args *c = g->c;
    int64_t s = c->stride, cols = g->cols, ncp = g->cinp / 2;
    const __m512 slope = _mm512_set1_ps(c->leaky ? c->slope : 1.0f), zero = _mm512_setzero_ps();
    /* interleave two 16-value halves: out[2i] = first[i], out[2i+1] = second[i] */
    static const uint16_t il_idx[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                        8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512i il = _mm512_loadu_si512(il_idx);
    for (int64_t cp = 0; cp < ncp; cp++)
        for (int64_t r = 0; r < s; r++) {
            uint16_t *dst = buf + (cp * s + r) * cols * 2;
            int64_t c0 = 2 * cp, c1 = c0 + 1, lo, hi;
            const float *s0 = c->x + c0 * c->t + s * (t0 + g->qmin) + r;
            const float *s1 = c1 < c->cin ? s0 + c->t : NULL;
            tile_range(g, t0, r, &lo, &hi);
            memset(dst, 0, (size_t)lo * 2 * sizeof(uint16_t));
            int64_t j = lo;
            if (s == 1 && s1) {
                for (; j + 16 <= hi; j += 16) {
                    __m512 a = _mm512_loadu_ps(s0 + j), b = _mm512_loadu_ps(s1 + j);
                    a = _mm512_mask_mul_ps(a, _mm512_cmp_ps_mask(a, zero, _CMP_LT_OQ), a, slope);
                    b = _mm512_mask_mul_ps(b, _mm512_cmp_ps_mask(b, zero, _CMP_LT_OQ), b, slope);
                    /* cvtne2ps: values of the second operand first */
                    __m512i v = (__m512i)_mm512_cvtne2ps_pbh(b, a);
                    _mm512_storeu_si512(dst + 2 * j, _mm512_permutexvar_epi16(il, v));
                }
            }
            for (; j < hi; j++) {
                dst[2 * j] = f2bf(act(c, s0[j * s]));
                dst[2 * j + 1] = s1 ? f2bf(act(c, s1[j * s])) : 0;
            }
            memset(dst + 2 * hi, 0, (size_t)(cols - hi) * 2 * sizeof(uint16_t));
        }
}

/* ---- microkernels ------------------------------------------------------------------------------ */

/* The reduction is cut into chunks of input channels whose part of the tile fits L1 (every output
 * block then reuses it from there); partial sums wait in y between chunks. The first chunk starts
 * from zero, later ones from y; the last adds bias and residual. */
#define LOAD_ACC(acc)                                                                                       \
    do {                                                                                                    \
        const cpu_conv1d_args *c_ = g->c;                                                                   \
        _Pragma("GCC unroll 4") for (int m = 0; m < MR; m++) _Pragma("GCC unroll 6") for (int v = 0; v < NV; \
                                                                                       v++) {               \
            int64_t o = ob * MR + m, col = t0 + tsub + 16 * v, rem = c_->tout - col;                        \
            acc[m][v] = _mm512_setzero_ps();                                                                \
            if (!first && o < c_->cout && rem >= 16) {                                                      \
                acc[m][v] = _mm512_loadu_ps(c_->y + o * c_->tout + col);                                    \
            } else if (!first && o < c_->cout && rem > 0) {                                                 \
                acc[m][v] = _mm512_maskz_loadu_ps((__mmask16)((1u << rem) - 1u), c_->y + o * c_->tout + col); \
            }                                                                                               \
        }                                                                                                   \
    } while (0)

/* Stores the MR x NV accumulators that lie inside y; on the last chunk with bias and residual. */
#define STORE_ACC(acc)                                                                                      \
    do {                                                                                                    \
        const cpu_conv1d_args *c_ = g->c;                                                                   \
        _Pragma("GCC unroll 4") for (int m = 0; m < MR; m++) {                                              \
            int64_t o = ob * MR + m;                                                                        \
            if (o >= c_->cout) break;                                                                       \
            __m512 bv = _mm512_set1_ps(last && c_->bias ? c_->bias[o] : 0.0f);                              \
            float *yr = c_->y + o * c_->tout;                                                               \
            const float *rr = last && c_->residual ? c_->residual + o * c_->tout : NULL;                    \
            _Pragma("GCC unroll 6") for (int v = 0; v < NV; v++) {                                          \
                int64_t col = t0 + tsub + 16 * v, rem = c_->tout - col;                                     \
                if (rem <= 0) break;                                                                        \
                __m512 val = _mm512_add_ps(acc[m][v], bv);                                                  \
                if (rem >= 16) { /* plain where the vector is inside: masked stores are slower on Zen */    \
                    if (rr) val = _mm512_add_ps(val, _mm512_loadu_ps(rr + col));                            \
                    _mm512_storeu_ps(yr + col, val);                                                        \
                } else {                                                                                    \
                    __mmask16 mk = (__mmask16)((1u << rem) - 1u);                                           \
                    if (rr) val = _mm512_add_ps(val, _mm512_maskz_loadu_ps(mk, rr + col));                  \
                    _mm512_mask_storeu_ps(yr + col, mk, val);                                               \
                }                                                                                           \
            }                                                                                               \
        }                                                                                                   \
    } while (0)

/* FP32 reads the weights in PyTorch's layout: four rows, each walked in order (c, kk), broadcast
 * straight from memory; rows past cout repeat the last one and are not stored. */
TGT static void kernel_f32(const geom *g, const float *buf, int64_t ob, int64_t t0, int64_t tsub, int64_t c0,
                           int64_t c1, bool first, bool last) {
    __m512 acc[MR][NV];
    LOAD_ACC(acc);
    const int64_t k = g->c->k, rs = g->c->stride * g->cols, cin = g->c->cin;
    const float *wr[MR];
    _Pragma("GCC unroll 4") for (int m = 0; m < MR; m++) {
        int64_t o = ob * MR + m < g->c->cout ? ob * MR + m : g->c->cout - 1;
        wr[m] = g->c->w + (o * cin + c0) * k;
    }
    int64_t wi = 0;
    for (int64_t ci = c0; ci < c1; ci++) {
        const float *xr = buf + ci * rs + tsub;
        for (int64_t kk = 0; kk < k; kk++, wi++) {
            const float *xp = xr + g->koff[kk];
            __m512 xv[NV];
            _Pragma("GCC unroll 6") for (int v = 0; v < NV; v++) xv[v] = _mm512_loadu_ps(xp + 16 * v);
            _Pragma("GCC unroll 4") for (int m = 0; m < MR; m++) {
                __m512 wv = _mm512_set1_ps(wr[m][wi]);
                _Pragma("GCC unroll 6") for (int v = 0; v < NV; v++) acc[m][v] = _mm512_fmadd_ps(wv, xv[v], acc[m][v]);
            }
        }
    }
    STORE_ACC(acc);
}

/* c0, c1: channel pairs. */
TGT16 static void kernel_bf16(const geom *g, const uint16_t *buf, int64_t ob, int64_t t0, int64_t tsub, int64_t c0,
                              int64_t c1, bool first, bool last) {
    __m512 acc[MR][NV];
    LOAD_ACC(acc);
    const int64_t k = g->c->k, rs = g->c->stride * g->cols * 2, ncp = g->cinp / 2;
    const uint32_t *wq = (const uint32_t *)g->wp + (ob * ncp + c0) * k * MR;
    for (int64_t cp = c0; cp < c1; cp++) {
        const uint16_t *xr = buf + cp * rs + 2 * tsub;
        for (int64_t kk = 0; kk < k; kk++) {
            const uint16_t *xp = xr + 2 * g->koff[kk];
            __m512bh xv[NV];
            _Pragma("GCC unroll 6") for (int v = 0; v < NV; v++) xv[v] = (__m512bh)_mm512_loadu_si512(xp + 32 * v);
            _Pragma("GCC unroll 4") for (int m = 0; m < MR; m++) {
                __m512bh wv = (__m512bh)_mm512_set1_epi32((int)wq[m]);
                _Pragma("GCC unroll 6") for (int v = 0; v < NV; v++) acc[m][v] = _mm512_dpbf16_ps(acc[m][v], wv, xv[v]);
            }
            wq += MR;
        }
    }
    STORE_ACC(acc);
}

/* L1 blocking: the kernel calls of one block read cc reduction units (channels, or channel pairs in
 * BF16; 4 bytes per column and phase either way) over w output columns plus the kernel's reach,
 * about L1_CHUNK_BYTES. Units come first (deep reductions between the partial-sum round trips
 * through y), then the width is what is left, in whole microkernels. */
#define L1_CHUNK_BYTES 32768
static void l1_block(const geom *g, int64_t units, int64_t *cc, int64_t *w) {
    int64_t s = g->c->stride, span = g->cols - g->tt;
    int64_t per = L1_CHUNK_BYTES / (s * (NT + span) * 4);
    if (per < 1) per = 1;
    int64_t nch = (units + per - 1) / per;
    *cc = (units + nch - 1) / nch; /* even chunks */
    int64_t width = L1_CHUNK_BYTES / (*cc * s * 4) - span;
    *w = width >= NT ? width / NT * NT : NT;
}

/* One work item: tile `tile` of the output, output-channel blocks [ob0, ob1). */
TGT static void work_f32(const geom *g, float *buf, int64_t tile, int64_t ob0, int64_t ob1) {
    int64_t t0 = tile * g->tt, n = g->c->tout - t0 < g->tt ? g->c->tout - t0 : g->tt, cin = g->c->cin, cc, wd;
    copy_tile_f32(g, t0, buf);
    l1_block(g, cin, &cc, &wd);
    for (int64_t w0 = 0; w0 < n; w0 += wd)
        for (int64_t c0 = 0; c0 < cin; c0 += cc) {
            int64_t c1 = c0 + cc < cin ? c0 + cc : cin, w1 = w0 + wd < n ? w0 + wd : n;
            for (int64_t ob = ob0; ob < ob1; ob++)
                for (int64_t tsub = w0; tsub < w1; tsub += NT) kernel_f32(g, buf, ob, t0, tsub, c0, c1, c0 == 0, c1 == cin);
        }
}

TGT16 static void work_bf16(const geom *g, uint16_t *buf, int64_t tile, int64_t ob0, int64_t ob1) {
    int64_t t0 = tile * g->tt, n = g->c->tout - t0 < g->tt ? g->c->tout - t0 : g->tt, ncp = g->cinp / 2, cc, wd;
    copy_tile_bf16(g, t0, buf);
    l1_block(g, ncp, &cc, &wd);
    for (int64_t w0 = 0; w0 < n; w0 += wd)
        for (int64_t c0 = 0; c0 < ncp; c0 += cc) {
            int64_t c1 = c0 + cc < ncp ? c0 + cc : ncp, w1 = w0 + wd < n ? w0 + wd : n;
            for (int64_t ob = ob0; ob < ob1; ob++)
                for (int64_t tsub = w0; tsub < w1; tsub += NT) kernel_bf16(g, buf, ob, t0, tsub, c0, c1, c0 == 0, c1 == ncp);
        }
}

avo_status cpu_conv1d_direct(avo_arena *a, const cpu_conv1d_args *c, avo_error *err) {
    geom g;
    memset(&g, 0, sizeof g);
    g.c = c;
    int64_t s = c->stride, d = c->dilation, esize = c->bf16 ? 2 : 4;
    g.cinp = c->bf16 ? round_up(c->cin, 2) : c->cin;
    g.qmin = floor_div(-(int64_t)c->padding, s);
    int64_t qmax = floor_div((c->k - 1) * d - c->padding, s);
    /* tile length: the copy of one tile (all channels, all phases) within TILE_BYTES */
    int64_t span = qmax - g.qmin, per_col = g.cinp * s * esize;
    int64_t fit = TILE_BYTES / per_col - span;
    g.tt = fit >= NT ? fit / NT * NT : NT;
    if (g.tt > round_up(c->tout, NT)) g.tt = round_up(c->tout, NT);
    g.cols = g.tt + span;
    for (int64_t kk = 0; kk < c->k; kk++) {
        int64_t off = kk * d - c->padding, q = floor_div(off, s), r = off - q * s;
        g.koff[kk] = r * g.cols + (q - g.qmin);
    }
    g.nob = (c->cout + MR - 1) / MR;
    int nt = c->nthreads > 0 ? c->nthreads : 1;
    int64_t ntiles = (c->tout + g.tt - 1) / g.tt;
    /* Few tiles (short sequences): split the output channels too so every thread has work. */
    int64_t ng = 1;
    while (ntiles * ng < 4 * nt && ng * 2 <= g.nob) ng *= 2;
    int64_t nwork = ntiles * ng, obg = (g.nob + ng - 1) / ng;

    void *wp = NULL, *bufs = NULL;
    int64_t wcount = c->bf16 ? g.nob * (g.cinp / 2) * c->k * MR : 1; /* 32-bit values; FP32 needs no copy */
    int64_t buf_elems = round_up(g.cinp * s * g.cols + 32, 32);       /* + slack for the 16-wide tail loads */
    avo_status st = avo_arena_alloc(a, (size_t)wcount * 4, &wp, err);
    if (!st) st = avo_arena_alloc(a, (size_t)(buf_elems * esize * nt), &bufs, err);
    if (st) return st;
    g.wp = wp;
    if (c->bf16) pack_bf16(&g, wp);
#pragma omp parallel num_threads(nt)
    {
        char *buf = (char *)bufs + (size_t)(buf_elems * esize) * (size_t)omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
        for (int64_t wi = 0; wi < nwork; wi++) {
            int64_t tile = wi / ng, gi = wi % ng, ob0 = gi * obg, ob1 = ob0 + obg < g.nob ? ob0 + obg : g.nob;
            if (ob0 >= ob1) continue;
            if (c->bf16)
                work_bf16(&g, (uint16_t *)buf, tile, ob0, ob1);
            else
                work_f32(&g, (float *)buf, tile, ob0, ob1);
        }
    }
    return AVO_OK;
}

/* ---- BF16 linear ------------------------------------------------------------------------------- */

/* y[r, o] = sum_i x[r, i] w[o, i] + b[o]. The microkernel holds LR rows x LV vectors of 16 outputs;
 * per pair of inputs it loads LV vectors of packed weight pairs and broadcasts LR input pairs. x is
 * first copied to bf16 (rows padded to LR with zeros, in padded to even), w packed as
 * wp[ob][ip][LV*16 outputs] of 32-bit pairs, both into arena scratch on every call. */
#define LR 6
#define LV 4
#define LO (LV * 16)
#define LIN_TILE_BYTES 196608

typedef struct lin_geom {
    const uint32_t *xb; /* [rows_p][ipn] */
    const uint32_t *wp; /* [nob][ipn][LO] */
    const float *b;
    float *y;
    int64_t rows, out, ipn;
} lin_geom;

static uint32_t bf16_pair(float lo, float hi) { return (uint32_t)f2bf(lo) | (uint32_t)f2bf(hi) << 16; }

TGT16 static void lin_kernel(const lin_geom *g, int64_t ob, int64_t r0) {
    __m512 acc[LR][LV];
    _Pragma("GCC unroll 6") for (int r = 0; r < LR; r++) _Pragma("GCC unroll 4") for (int v = 0; v < LV; v++) acc[r][v] =
        _mm512_setzero_ps();
    const uint32_t *wq = g->wp + ob * g->ipn * LO, *xq = g->xb + r0 * g->ipn;
    for (int64_t ip = 0; ip < g->ipn; ip++) {
        __m512bh wv[LV];
        _Pragma("GCC unroll 4") for (int v = 0; v < LV; v++) wv[v] = (__m512bh)_mm512_loadu_si512(wq + 16 * v);
        _Pragma("GCC unroll 6") for (int r = 0; r < LR; r++) {
            __m512bh xv = (__m512bh)_mm512_set1_epi32((int)xq[r * g->ipn + ip]);
            _Pragma("GCC unroll 4") for (int v = 0; v < LV; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], xv, wv[v]);
        }
        wq += LO;
    }
    _Pragma("GCC unroll 6") for (int r = 0; r < LR; r++) {
        if (r0 + r >= g->rows) break;
        float *yr = g->y + (r0 + r) * g->out;
        _Pragma("GCC unroll 4") for (int v = 0; v < LV; v++) {
            int64_t o = ob * LO + 16 * v, rem = g->out - o;
            if (rem <= 0) break;
            __mmask16 mk = rem >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem) - 1u);
            __m512 val = acc[r][v];
            if (g->b) val = _mm512_add_ps(val, _mm512_maskz_loadu_ps(mk, g->b + o));
            _mm512_mask_storeu_ps(yr + o, mk, val);
        }
    }
}

/* bf16 of n floats in order (pairs of neighbours become the 32-bit values the kernel broadcasts or
 * loads); n may be odd, the missing partner is 0. */
TGT16 static void row_to_bf16(const float *src, int64_t n, uint16_t *dst) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 a = _mm512_loadu_ps(src + i), b = _mm512_loadu_ps(src + i + 16);
        _mm512_storeu_si512(dst + i, (__m512i)_mm512_cvtne2ps_pbh(b, a));
    }
    for (; i < n; i++) dst[i] = f2bf(src[i]);
    if (n & 1) dst[n] = 0;
}

/* x -> xq [rows_p][ipn] pairs (rows past `rows` zero); w -> wq [nob][ipn][LO] pairs (outputs past
 * `out` zero), each weight row converted in order, then its pairs spread with stride LO. */
TGT16 static void lin_pack(const float *x, int64_t rows, int64_t rows_p, int64_t in, const float *w, int64_t out,
                           int64_t nob, int64_t ipn, uint32_t *xq, uint32_t *wq, int nt) {
#pragma omp parallel num_threads(nt) if (rows_p * ipn + nob * LO * ipn > 65536)
    {
#pragma omp for
        for (int64_t r = 0; r < rows_p; r++) {
            if (r < rows)
                row_to_bf16(x + r * in, in, (uint16_t *)(xq + r * ipn));
            else
                memset(xq + r * ipn, 0, (size_t)ipn * 4);
        }
        uint16_t tmp[2 * 4096 + 32];
        const __m512i sc = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                              _mm512_set1_epi32(LO));
#pragma omp for
        for (int64_t o = 0; o < nob * LO; o++) {
            uint32_t *dst = wq + (o / LO) * ipn * LO + o % LO;
            if (o >= out) {
                for (int64_t ip = 0; ip < ipn; ip++) dst[ip * LO] = 0;
                continue;
            }
            if (in > 2 * 4096) { /* longer rows than the stack copy: scalar */
                for (int64_t ip = 0; ip < ipn; ip++)
                    dst[ip * LO] = bf16_pair(w[o * in + 2 * ip], 2 * ip + 1 < in ? w[o * in + 2 * ip + 1] : 0.0f);
                continue;
            }
            row_to_bf16(w + o * in, in, tmp);
            const uint32_t *pairs = (const uint32_t *)tmp;
            int64_t ip = 0;
            for (; ip + 16 <= ipn; ip += 16)
                _mm512_i32scatter_epi32(dst + ip * LO, sc, _mm512_loadu_si512(pairs + ip), 4);
            for (; ip < ipn; ip++) dst[ip * LO] = pairs[ip];
        }
    }
}

avo_status cpu_linear_bf16(avo_arena *a, const float *x, int64_t rows, int64_t in, const float *w, int64_t out,
                           const float *b, float *y, int nthreads, avo_error *err) {
    int nt = nthreads > 0 ? nthreads : 1;
    int64_t ipn = (in + 1) / 2, rows_p = round_up(rows, LR), nob = (out + LO - 1) / LO;
    void *xb = NULL, *wp = NULL;
    avo_status st = avo_arena_alloc(a, (size_t)(rows_p * ipn) * 4, &xb, err);
    if (!st) st = avo_arena_alloc(a, (size_t)(nob * ipn * LO) * 4, &wp, err);
    if (st) return st;
    uint32_t *xq = xb, *wq = wp;
    lin_pack(x, rows, rows_p, in, w, out, nob, ipn, xq, wq, nt);
    lin_geom g = {xq, wq, b, y, rows, out, ipn};
    /* row tiles whose bf16 copy stays in L2 while every output block passes over them */
    int64_t tr = LIN_TILE_BYTES / (ipn * 4) / LR * LR;
    if (tr < LR) tr = LR;
    if (tr > rows_p) tr = rows_p;
    int64_t ntiles = (rows_p + tr - 1) / tr, ng = 1;
    while (ntiles * ng < 4 * nt && ng * 2 <= nob) ng *= 2;
    int64_t obg = (nob + ng - 1) / ng;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t wi = 0; wi < ntiles * ng; wi++) {
        int64_t tile = wi / ng, gi = wi % ng, ob0 = gi * obg, ob1 = ob0 + obg < nob ? ob0 + obg : nob;
        int64_t r0 = tile * tr, r1 = r0 + tr < rows_p ? r0 + tr : rows_p;
        for (int64_t ob = ob0; ob < ob1; ob++)
            for (int64_t r = r0; r < r1; r += LR) lin_kernel(&g, ob, r);
    }
    return AVO_OK;
}
