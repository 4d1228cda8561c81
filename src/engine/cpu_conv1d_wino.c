/* Winograd F(4,3) conv1d for AVX-512 CPUs (see cpu_conv1d.h): 3-tap, stride-1 convolutions (the
 * NSF-HiFiGAN resblocks' k = 3 convs at dilations 1, 3, 5), FP32.
 *
 * Why: a tile of 4 outputs of a 3-tap convolution costs 12 multiply-adds per channel pair directly
 * and 6 in the Winograd domain (points 0, +-1, +-2, inf), so the per-point GEMMs do half the work of
 * the direct kernel; the transforms are a few adds per tile and channel. The FFT path does not pay
 * off for 3 taps (its 65 complex bins cost more than 3 taps), this does. F(4,3)'s transforms have
 * small integer entries (errors stay near FP32 rounding), unlike the larger tiles.
 *
 * Tiles with dilation d: output t, t+d, t+2d, t+3d from inputs t - pad + j*d, j = 0..5. A block of
 * 4d consecutive outputs holds d such tiles (phases p = 0..d-1); 16 consecutive blocks of one phase
 * form a group (one tile per vector lane, inputs at lane stride 4d). A work item of the forward step
 * copies the 66d inputs of 16 blocks (all phases) once into a stack buffer (leaky ReLU, zero
 * padding), then gathers each phase's tiles from there and transforms them into
 * X[cin][group][6 points][16]; per point, Y = U X is a real GEMM (cout x cin by cin x 16*groups,
 * weights broadcast, tiles in lanes); the inverse step transforms each group's 6 points back to 4
 * outputs per lane, spreads them into a stack buffer in time order, and stores 64d outputs with bias
 * and residual. Chunks of groups and the three phases over all threads as in cpu_conv1d_fft.c.
 *
 * Weights U[point][cout block][cin][4] = G w are made on every call (18 FLOPs per pair). */
#include "engine/cpu_conv1d.h"

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#define WP 6            /* Winograd points */
#define WLANES 16       /* tiles per group */
#define WREC (WP * 16)  /* floats per (channel, group) record */
#define WMR 4           /* output channels per GEMM microkernel */
#define WNV 6           /* groups per GEMM microkernel */
#define WMAX_DIL 8
#define WCHUNK_BYTES (8 << 20)

#define TGT __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
#define INLINE __attribute__((always_inline)) inline

typedef struct wctx {
    const cpu_conv1d_args *c;
    int64_t d, nb, nbg, cbg, nob, ng; /* dilation, blocks, block groups, block groups per chunk, cout blocks, groups per chunk */
    float *U;                          /* [WP][nob][cin][WMR] */
    float *X, *Y;                      /* [cin][ng][WP][16], [nob*WMR][ng][WP][16] */
} wctx;

bool cpu_conv1d_wino_supported(const cpu_conv1d_args *c) {
    return c->enabled && c->fft && !c->bf16 && cpu_conv1d_avx512_available() && c->stride == 1 && c->k == 3 &&
           c->dilation >= 1 && c->dilation <= WMAX_DIL && c->cin >= 1 && c->cout >= 1 && c->tout >= 1 &&
           c->t <= INT32_MAX / 2 && c->tout <= INT32_MAX / 2;
}

/* Half the GEMM work of the direct kernel, but the transforms (and, for dilations above 1, the
 * gathers and scatters between phases) eat most of it. Process CPU time per call, one thread (the
 * synthesizer's chunks run on single-threaded workers), 5 s of audio at each RVC stage's rate
 * (bench_conv1d --sweep --threads 1, two rounds): Winograd beats the direct kernel at 256 channels by
 * 12-25% (dilations 1-5), at 128 by 8-20%, at 64 by 5-7% at dilation 1 only (slower at 3 and 5), and
 * loses at 32 channels; with two threads per call it had measured ahead only at dilation 1 with 128+. */
bool cpu_conv1d_wino_preferred(const cpu_conv1d_args *c) {
    if (!cpu_conv1d_wino_supported(c) || c->tout < 1024) return false;
    int64_t ch = c->cin < c->cout ? c->cin : c->cout;
    if (c->nthreads > 1) return c->dilation == 1 && ch >= 128;
    return ch >= 128 ? c->dilation <= 5 : ch >= 64 && c->dilation == 1;
}

/* U[xi][ob][ci][m] = (G w[o, ci, :])[xi], o = ob*WMR + m (0 past cout). */
static void weights(const wctx *W, int nt) {
    const cpu_conv1d_args *c = W->c;
    static const float G[WP][3] = {{0.25f, 0.0f, 0.0f},
                                   {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                                   {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                                   {1.0f / 24, 1.0f / 12, 1.0f / 6},
                                   {1.0f / 24, -1.0f / 12, 1.0f / 6},
                                   {0.0f, 0.0f, 1.0f}};
#pragma omp parallel for num_threads(nt) if (W->nob * c->cin > 4096)
    for (int64_t ob = 0; ob < W->nob; ob++)
        for (int64_t ci = 0; ci < c->cin; ci++)
            for (int m = 0; m < WMR; m++) {
                int64_t o = ob * WMR + m;
                const float *g = o < c->cout ? c->w + (o * c->cin + ci) * 3 : NULL;
                for (int xi = 0; xi < WP; xi++)
                    W->U[((xi * W->nob + ob) * c->cin + ci) * WMR + m] =
                        g ? G[xi][0] * g[0] + G[xi][1] * g[1] + G[xi][2] * g[2] : 0.0f;
            }
}

/* Forward step of block group bg (absolute; bl: its index in the chunk) for channel ci. */
TGT static void forward_bg(const wctx *W, int64_t ci, int64_t bg, int64_t bl, float *buf) {
    const cpu_conv1d_args *c = W->c;
    const int64_t d = W->d, span = 66 * d, start = bg * 64 * d - c->padding, t = c->t;
    const float *xr = c->x + ci * t;
    const __m512 slope = _mm512_set1_ps(c->leaky ? c->slope : 1.0f), zero = _mm512_setzero_ps();
    for (int64_t i = 0; i < span; i += 16) { /* buf[i] = act(x[start + i]), 0 outside x */
        int64_t p0 = start + i, lo = p0 < 0 ? -p0 : 0, hi = t - p0 < 16 ? t - p0 : 16;
        __m512 v;
        if (lo == 0 && hi == 16)
            v = _mm512_loadu_ps(xr + p0);
        else if (hi > lo)
            v = _mm512_maskz_loadu_ps((__mmask16)(((1u << (hi - lo)) - 1u) << lo), xr + p0); /* masked lanes not read */
        else
            v = zero;
        if (c->leaky) v = _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, slope);
        _mm512_storeu_ps(buf + i, v);
    }
    const __m512i lane = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32((int)(4 * d)));
    const __m512 two = _mm512_set1_ps(2.0f), four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f);
    for (int64_t p = 0; p < d; p++) {
        __m512 v[WP];
        if (d == 1) { /* v[j][l] = buf[4l + j]: a stride-4 deinterleave in registers, v4/v5 shifted v0/v1 */
            __m512 a0 = _mm512_loadu_ps(buf), a1 = _mm512_loadu_ps(buf + 16), a2 = _mm512_loadu_ps(buf + 32),
                   a3 = _mm512_loadu_ps(buf + 48);
            __m512 s0 = _mm512_shuffle_f32x4(a0, a1, 0x44), s1 = _mm512_shuffle_f32x4(a2, a3, 0x44),
                   s2 = _mm512_shuffle_f32x4(a0, a1, 0xEE), s3 = _mm512_shuffle_f32x4(a2, a3, 0xEE);
            __m512 b0 = _mm512_shuffle_f32x4(s0, s1, 0x88), b1 = _mm512_shuffle_f32x4(s0, s1, 0xDD),
                   b2 = _mm512_shuffle_f32x4(s2, s3, 0x88), b3 = _mm512_shuffle_f32x4(s2, s3, 0xDD);
            __m512d t0 = _mm512_castps_pd(_mm512_unpacklo_ps(b0, b1)), t1 = _mm512_castps_pd(_mm512_unpackhi_ps(b0, b1)),
                    t2 = _mm512_castps_pd(_mm512_unpacklo_ps(b2, b3)), t3 = _mm512_castps_pd(_mm512_unpackhi_ps(b2, b3));
            v[0] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
            v[1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
            v[2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
            v[3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
            v[4] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(_mm512_set1_ps(buf[64])),
                                                           _mm512_castps_si512(v[0]), 1));
            v[5] = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(_mm512_set1_ps(buf[65])),
                                                           _mm512_castps_si512(v[1]), 1));
        } else {
            for (int j = 0; j < WP; j++) v[j] = _mm512_i32gather_ps(lane, buf + p + j * d, 4);
        }
        float *dst = W->X + (ci * W->ng + bl * d + p) * WREC;
        /* B^T v */
        __m512 s24 = _mm512_sub_ps(v[4], v[2]), s13 = _mm512_sub_ps(v[3], v[1]);
        _mm512_store_ps(dst, _mm512_fmadd_ps(four, v[0], _mm512_fnmadd_ps(five, v[2], v[4])));
        _mm512_store_ps(dst + 16, _mm512_fnmadd_ps(four, _mm512_add_ps(v[1], v[2]), _mm512_add_ps(v[3], v[4])));
        _mm512_store_ps(dst + 32, _mm512_fmadd_ps(four, _mm512_sub_ps(v[1], v[2]), _mm512_sub_ps(v[4], v[3])));
        _mm512_store_ps(dst + 48, _mm512_fmadd_ps(two, s13, s24));
        _mm512_store_ps(dst + 64, _mm512_fnmadd_ps(two, s13, s24));
        _mm512_store_ps(dst + 80, _mm512_fmadd_ps(four, v[1], _mm512_fnmadd_ps(five, v[3], v[5])));
    }
}

/* Inverse step of block group bg for output channel co: 64d outputs from bg*64d. */
TGT static void inverse_bg(const wctx *W, int64_t co, int64_t bg, int64_t bl, float *buf) {
    const cpu_conv1d_args *c = W->c;
    const int64_t d = W->d, t0 = bg * 64 * d, tout = c->tout;
    const __m512i lane = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32((int)(4 * d)));
    const __m512 two = _mm512_set1_ps(2.0f), four = _mm512_set1_ps(4.0f), eight = _mm512_set1_ps(8.0f);
    for (int64_t p = 0; p < d; p++) {
        const float *src = W->Y + (co * W->ng + bl * d + p) * WREC;
        __m512 m0 = _mm512_load_ps(src), m1 = _mm512_load_ps(src + 16), m2 = _mm512_load_ps(src + 32),
               m3 = _mm512_load_ps(src + 48), m4 = _mm512_load_ps(src + 64), m5 = _mm512_load_ps(src + 80);
        __m512 a12 = _mm512_add_ps(m1, m2), s12 = _mm512_sub_ps(m1, m2), a34 = _mm512_add_ps(m3, m4),
               s34 = _mm512_sub_ps(m3, m4);
        /* A^T m: lane l's outputs (4l + i) d + p of the group */
        __m512 o0 = _mm512_add_ps(_mm512_add_ps(m0, a12), a34), o1 = _mm512_fmadd_ps(two, s34, s12),
               o2 = _mm512_fmadd_ps(four, a34, a12), o3 = _mm512_add_ps(_mm512_fmadd_ps(eight, s34, s12), m5);
        if (d == 1) { /* buf[4l + i] = o_i[l]: a stride-4 interleave in registers */
            __m512d t0 = _mm512_castps_pd(_mm512_unpacklo_ps(o0, o1)), t1 = _mm512_castps_pd(_mm512_unpackhi_ps(o0, o1)),
                    t2 = _mm512_castps_pd(_mm512_unpacklo_ps(o2, o3)), t3 = _mm512_castps_pd(_mm512_unpackhi_ps(o2, o3));
            __m512 u0 = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2)), u1 = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2)),
                   u2 = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3)), u3 = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
            __m512 v0 = _mm512_shuffle_f32x4(u0, u1, 0x44), w0 = _mm512_shuffle_f32x4(u2, u3, 0x44),
                   v1 = _mm512_shuffle_f32x4(u0, u1, 0xEE), w1 = _mm512_shuffle_f32x4(u2, u3, 0xEE);
            _mm512_storeu_ps(buf, _mm512_shuffle_f32x4(v0, w0, 0x88));
            _mm512_storeu_ps(buf + 16, _mm512_shuffle_f32x4(v0, w0, 0xDD));
            _mm512_storeu_ps(buf + 32, _mm512_shuffle_f32x4(v1, w1, 0x88));
            _mm512_storeu_ps(buf + 48, _mm512_shuffle_f32x4(v1, w1, 0xDD));
        } else {
            _mm512_i32scatter_ps(buf + p, lane, o0, 4);
            _mm512_i32scatter_ps(buf + p + d, lane, o1, 4);
            _mm512_i32scatter_ps(buf + p + 2 * d, lane, o2, 4);
            _mm512_i32scatter_ps(buf + p + 3 * d, lane, o3, 4);
        }
    }
    float *yr = c->y + co * tout + t0;
    const float *rr = c->residual ? c->residual + co * tout + t0 : NULL;
    const __m512 bv = _mm512_set1_ps(c->bias ? c->bias[co] : 0.0f);
    for (int64_t i = 0; i < 64 * d; i += 16) {
        int64_t lim = tout - t0 - i;
        if (lim <= 0) break;
        __m512 v = _mm512_add_ps(_mm512_loadu_ps(buf + i), bv);
        if (lim >= 16) {
            if (rr) v = _mm512_add_ps(v, _mm512_loadu_ps(rr + i));
            _mm512_storeu_ps(yr + i, v);
        } else {
            __mmask16 m = (__mmask16)((1u << lim) - 1u);
            if (rr) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, rr + i));
            _mm512_mask_storeu_ps(yr + i, m, v);
        }
    }
}

/* Y[xi][ob*WMR + m][g0 + v] = sum_ci U[xi][ob][ci][m] X[xi][ci][g0 + v], nv <= WNV groups. */
TGT static INLINE void rgemm_kernel(const float *wp, const float *xp, int64_t cin, int64_t xs, float *yp, int64_t ys,
                                    const int nv) {
    __m512 acc[WMR][WNV];
    _Pragma("GCC unroll 4") for (int m = 0; m < WMR; m++) _Pragma("GCC unroll 6") for (int v = 0; v < WNV; v++) acc[m][v] =
        _mm512_setzero_ps();
    for (int64_t ci = 0; ci < cin; ci++) {
        __m512 x[WNV];
        _Pragma("GCC unroll 6") for (int v = 0; v < WNV; v++) if (v < nv) x[v] = _mm512_load_ps(xp + v * WREC);
        _Pragma("GCC unroll 4") for (int m = 0; m < WMR; m++) {
            __m512 w = _mm512_set1_ps(wp[m]);
            _Pragma("GCC unroll 6") for (int v = 0; v < WNV; v++) if (v < nv) acc[m][v] = _mm512_fmadd_ps(w, x[v], acc[m][v]);
        }
        wp += WMR;
        xp += xs;
    }
    _Pragma("GCC unroll 4") for (int m = 0; m < WMR; m++) _Pragma("GCC unroll 6") for (int v = 0; v < WNV; v++) if (v < nv)
        _mm512_store_ps(yp + m * ys + v * WREC, acc[m][v]);
}

TGT static void gemm_unit(const wctx *W, int xi, int64_t ob, int64_t ngroups) {
    const int64_t cin = W->c->cin, cs = W->ng * WREC;
    const float *wp = W->U + ((int64_t)xi * W->nob + ob) * cin * WMR;
    const float *xb = W->X + xi * 16;
    float *yb = W->Y + ob * WMR * cs + xi * 16;
    int64_t g0 = 0;
    for (; g0 + WNV <= ngroups; g0 += WNV) rgemm_kernel(wp, xb + g0 * WREC, cin, cs, yb + g0 * WREC, cs, WNV);
    switch (ngroups - g0) {
    case 5: rgemm_kernel(wp, xb + g0 * WREC, cin, cs, yb + g0 * WREC, cs, 5); break;
    case 4: rgemm_kernel(wp, xb + g0 * WREC, cin, cs, yb + g0 * WREC, cs, 4); break;
    case 3: rgemm_kernel(wp, xb + g0 * WREC, cin, cs, yb + g0 * WREC, cs, 3); break;
    case 2: rgemm_kernel(wp, xb + g0 * WREC, cin, cs, yb + g0 * WREC, cs, 2); break;
    case 1: rgemm_kernel(wp, xb + g0 * WREC, cin, cs, yb + g0 * WREC, cs, 1); break;
    default: break;
    }
}

avo_status cpu_conv1d_wino(avo_arena *a, const cpu_conv1d_args *c, avo_error *err) {
    wctx W;
    memset(&W, 0, sizeof W);
    W.c = c;
    W.d = c->dilation;
    W.nb = (c->tout + 4 * W.d - 1) / (4 * W.d);
    W.nbg = (W.nb + WLANES - 1) / WLANES;
    W.nob = (c->cout + WMR - 1) / WMR;
    int64_t per_bg = W.d * (c->cin + W.nob * WMR) * WREC * 4;
    W.cbg = WCHUNK_BYTES / per_bg;
    if (W.cbg < 1) W.cbg = 1;
    if (W.cbg > W.nbg) W.cbg = W.nbg;
    W.ng = W.cbg * W.d;
    int nt = c->nthreads > 0 ? c->nthreads : 1;
    void *U = NULL, *X = NULL, *Y = NULL;
    avo_status st = avo_arena_alloc(a, (size_t)(WP * W.nob * c->cin * WMR) * 4, &U, err);
    if (!st) st = avo_arena_alloc(a, (size_t)(c->cin * W.ng) * WREC * 4, &X, err);
    if (!st) st = avo_arena_alloc(a, (size_t)(W.nob * WMR * W.ng) * WREC * 4, &Y, err);
    if (st) return st;
    W.U = U;
    W.X = X;
    W.Y = Y;
    weights(&W, nt);
    const int64_t nch = (W.nbg + W.cbg - 1) / W.cbg;
#pragma omp parallel num_threads(nt)
    {
        float buf[66 * WMAX_DIL + 16];
        for (int64_t ch = 0; ch < nch; ch++) {
            int64_t bg0 = ch * W.cbg, nbl = W.nbg - bg0 < W.cbg ? W.nbg - bg0 : W.cbg;
#pragma omp for schedule(static)
            for (int64_t u = 0; u < c->cin * nbl; u++) forward_bg(&W, u / nbl, bg0 + u % nbl, u % nbl, buf);
#pragma omp for schedule(dynamic, 1)
            for (int64_t u = 0; u < WP * W.nob; u++) gemm_unit(&W, (int)(u / W.nob), u % W.nob, nbl * W.d);
#pragma omp for schedule(static)
            for (int64_t u = 0; u < c->cout * nbl; u++) inverse_bg(&W, u / nbl, bg0 + u % nbl, u % nbl, buf);
        }
    }
    return AVO_OK;
}
