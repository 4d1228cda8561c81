/* FFT (overlap-save) conv1d for AVX-512 CPUs (see cpu_conv1d.h), FP32 or BF16 bin GEMMs.
 *
 * Why: a k-tap convolution costs 2k real FLOPs per output sample and channel pair; in the frequency
 * domain it costs one complex multiply-add per bin, about 8 * 65 / L FLOPs per output with FFT size
 * 128 and L outputs per block. For the NSF-HiFiGAN resblocks (k 7 and 11, dilations 1/3/5) that is
 * 2.5-5x fewer multiplies, and the per-bin products are GEMMs that run near the FMA peak.
 *
 * Overlap-save: output block b (L = 128 - span + 1 outputs, span = (k-1)*d + 1) reads the 128 inputs
 * from b*L - pad; the circular convolution of that block with the time-reversed dilated kernel h
 * (h[(k-1-kk)*d] = w[kk]) is the wanted output at its last L samples, with no wrap-around.
 *
 * Layout: 16 blocks form a group, one block per vector lane, so every transform step is a plain
 * vector op on 16 blocks at once. The real 128-point FFT is a 64-point complex FFT of
 * z[n] = x[2n] + i x[2n+1] (radix 2, decimation in time) plus the usual split step. A chunk of groups
 * is transformed into X[cin][group][bin][re 16 | im 16] (a transform writes or reads one contiguous
 * run; BF16 stores 16 (re, im) bf16 pairs instead); per bin, Y[bin] = W[bin] X[bin] is a complex
 * GEMM (cout x cin by cin x 16*groups) with the weight pair broadcast and the blocks in the lanes; the
 * inverse transforms take Y back to time and add bias and residual as they store. The three phases
 * run over all threads with a barrier between them; the chunk size keeps X and Y near the caches.
 *
 * Scale: the forward split step yields 2 * DFT128(x), the inverse yields 128 * IDFT128 (normalised),
 * so the weights carry DFT128(h) / 256.
 *
 * Weights are transformed on every call into arena scratch (as the direct kernel packs BF16): about
 * 4 * 65 * k FLOPs and 520 bytes per channel pair, small next to the convolution at the lengths this
 * path takes, and it can never go stale. (Making each bin's weights just before its GEMM, from taps
 * in L2, was tried: at 256 channels it re-reads all taps per bin and measured slower.) */
#include "engine/cpu_conv1d.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#define FN 128     /* real FFT size */
#define FH 64      /* complex FFT size */
#define NBIN 65    /* bins 0..64 */
#define LANES 16   /* blocks per group */
#define GF (2 * LANES) /* floats per (bin, channel, group): re 16, im 16 */
#define FMR 4      /* output channels per GEMM microkernel */
#define FNV 3      /* groups per GEMM microkernel */
#define MAX_SPAN 64
#define CHUNK_BYTES (16 << 20) /* X and Y of one chunk together: larger chunks measured faster up to ~12 MB */
#define MAX_CHUNK_GROUPS 8

#define TGT __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
#define TGT16 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,avx512bf16")))
#define INLINE __attribute__((always_inline)) inline

typedef struct fft_tab {
    float c64[32], s64[32];   /* cos, sin(2 pi m / 64) */
    float c128[65], s128[65]; /* cos, sin(2 pi k / 128) */
    int br[FH];               /* 6-bit reversal */
} fft_tab;

typedef struct fctx {
    const cpu_conv1d_args *c;
    fft_tab tab;
    int64_t span, L, nblk, ngroups, cg, nob;
    int64_t gx; /* floats per (channel, group, bin) record of X: 32 FP32 (re 16 | im 16), 16 BF16 (16 pairs) */
    float *wf;   /* [bin][ob][cin][FMR][2] */
    float *X, *Y; /* [cin][cg][bin][GF], [nob*FMR][cg][bin][GF]: a transform reads or writes one run */
} fctx;

static int64_t span_of(const cpu_conv1d_args *c) { return (c->k - 1) * (int64_t)c->dilation + 1; }

bool cpu_conv1d_fft_supported(const cpu_conv1d_args *c) {
    return c->enabled && c->fft && (!c->bf16 || cpu_conv1d_bf16_available()) && cpu_conv1d_avx512_available() &&
           c->stride == 1 && c->k >= 2 &&
           span_of(c) <= MAX_SPAN && c->cin >= 1 && c->cout >= 1 && c->tout >= 1 && c->dilation >= 1 &&
           c->tout <= INT32_MAX / 2 && c->t <= INT32_MAX / 2;
}

/* Estimated costs in direct-kernel FLOP equivalents, fitted to single-thread CPU times on Zen5 (a
 * driver timing both paths on the RVC resblock shapes, 32..256 channels; shared, noisy machine): the
 * bin GEMM runs its 8 * 65 FLOPs per pair and block at about 1/1.44 of the direct kernel's rate, one
 * channel-block transform (forward or inverse, with its loads and stores) costs about 5900 direct
 * FLOPs, the weight transform 4 * 65 * k per pair. Blocks count in whole groups of 16. The FFT path
 * must win by 15%, so near-ties (k = 3) stay on the direct kernel. In BF16 (vdpbf16ps in both) the
 * FFT path wins only for k = 11 at 64..256 channels. */
bool cpu_conv1d_fft_preferred(const cpu_conv1d_args *c) {
    if (!cpu_conv1d_fft_supported(c)) return false;
    int64_t L = FN - span_of(c) + 1;
    double pairs = (double)c->cin * (double)c->cout;
    double nblk = (double)(((c->tout + L - 1) / L + LANES - 1) / LANES * LANES);
    double direct = 2.0 * (double)c->k * pairs * (double)c->tout;
    /* BF16: the direct kernel measured ~1.8x its FP32 rate, the bin GEMM only ~1.3x */
    double gemm = 1.44 * 8.0 * NBIN * pairs * nblk / (c->bf16 ? 1.3 : 1.0);
    if (c->bf16) direct /= 1.8;
    double fft = gemm + 5900.0 * (double)(c->cin + c->cout) * nblk + 4.0 * NBIN * (double)c->k * pairs;
    return fft < 0.85 * direct;
}

static void make_tab(fft_tab *t) {
    const double pi = 3.14159265358979323846;
    for (int m = 0; m < 32; m++) {
        t->c64[m] = (float)cos(2 * pi * m / 64);
        t->s64[m] = (float)sin(2 * pi * m / 64);
    }
    for (int k = 0; k <= 64; k++) {
        t->c128[k] = (float)cos(2 * pi * k / 128);
        t->s128[k] = (float)sin(2 * pi * k / 128);
    }
    for (int n = 0; n < FH; n++) {
        int r = 0;
        for (int b = 0; b < 6; b++) r |= ((n >> b) & 1) << (5 - b);
        t->br[n] = r;
    }
}

/* a * w (complex, 16 lanes) */
#define CMUL(ar, ai, wr, wi, rr, ri)                                                                       \
    do {                                                                                                   \
        rr = _mm512_fmsub_ps(wr, ar, _mm512_mul_ps(wi, ai));                                               \
        ri = _mm512_fmadd_ps(wr, ai, _mm512_mul_ps(wi, ar));                                               \
    } while (0)

/* In-place 64-point complex FFT of 16 lanes, input in bit-reversed order, output natural; inverse
 * uses e^{+i...} and is not normalised. re, im: [64][16]. Radix 2^2: each pass does two radix-2
 * stages (lengths L/2 and L, L = 4, 16, 64) on quadruples a, a+L/4, a+L/2, a+3L/4 held in
 * registers, so the buffer is read and written 3 times instead of 6. */
TGT static void fft64(float *re, float *im, const fft_tab *tb, bool inverse) {
    const float sg = inverse ? 1.0f : -1.0f; /* sign of the twiddles' sines */
    for (int L = 4; L <= FH; L *= 4) {
        const int q = L / 4, h = L / 2, step1 = 2 * FH / L, step2 = FH / L;
        for (int j = 0; j < q; j++) {
            const __m512 w1r = _mm512_set1_ps(tb->c64[j * step1]), w1i = _mm512_set1_ps(sg * tb->s64[j * step1]);
            const __m512 w2r = _mm512_set1_ps(tb->c64[j * step2]), w2i = _mm512_set1_ps(sg * tb->s64[j * step2]);
            for (int s0 = 0; s0 < FH; s0 += L) {
                float *pa = re + (s0 + j) * 16, *qa = im + (s0 + j) * 16;
                const int ob = q * 16, oc = h * 16, od = (h + q) * 16;
                __m512 ar = _mm512_load_ps(pa), ai = _mm512_load_ps(qa), br = _mm512_load_ps(pa + ob),
                       bi = _mm512_load_ps(qa + ob), cr = _mm512_load_ps(pa + oc), ci = _mm512_load_ps(qa + oc),
                       dr = _mm512_load_ps(pa + od), di = _mm512_load_ps(qa + od), tr, ti;
                /* stage L/2: (a, b) and (c, d) with W_{L/2}^j (1 when j = 0) */
                if (j) {
                    CMUL(br, bi, w1r, w1i, tr, ti);
                    br = tr, bi = ti;
                    CMUL(dr, di, w1r, w1i, tr, ti);
                    dr = tr, di = ti;
                }
                __m512 a1r = _mm512_add_ps(ar, br), a1i = _mm512_add_ps(ai, bi), b1r = _mm512_sub_ps(ar, br),
                       b1i = _mm512_sub_ps(ai, bi), c1r = _mm512_add_ps(cr, dr), c1i = _mm512_add_ps(ci, di),
                       d1r = _mm512_sub_ps(cr, dr), d1i = _mm512_sub_ps(ci, di);
                /* stage L: (a, c) with W_L^j, (b, d) with W_L^(j + L/4) = W_L^j * (-+i) */
                if (j) {
                    CMUL(c1r, c1i, w2r, w2i, tr, ti);
                    c1r = tr, c1i = ti;
                    CMUL(d1r, d1i, w2r, w2i, tr, ti);
                    d1r = tr, d1i = ti;
                }
                __m512 er = inverse ? _mm512_sub_ps(_mm512_setzero_ps(), d1i) : d1i; /* (-+i) d1 */
                __m512 ei = inverse ? d1r : _mm512_sub_ps(_mm512_setzero_ps(), d1r);
                _mm512_store_ps(pa, _mm512_add_ps(a1r, c1r));
                _mm512_store_ps(qa, _mm512_add_ps(a1i, c1i));
                _mm512_store_ps(pa + oc, _mm512_sub_ps(a1r, c1r));
                _mm512_store_ps(qa + oc, _mm512_sub_ps(a1i, c1i));
                _mm512_store_ps(pa + ob, _mm512_add_ps(b1r, er));
                _mm512_store_ps(qa + ob, _mm512_add_ps(b1i, ei));
                _mm512_store_ps(pa + od, _mm512_sub_ps(b1r, er));
                _mm512_store_ps(qa + od, _mm512_sub_ps(b1i, ei));
            }
        }
    }
}

/* ---- weights ------------------------------------------------------------------------------------ */

/* re, im (FP32, 16 channels) -> re = bf16 pairs (re, -im), im = bf16 pairs (im, re) as 32-bit lanes:
 * one vdpbf16ps of a pair with an X pair (xr, xi) gives xr re - xi im, the other xr im + xi re. */
TGT16 static void bf16_weight_pairs(__m512 *re, __m512 *im) {
    static const uint16_t il_idx[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                        8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512i il = _mm512_loadu_si512(il_idx);
    __m512 nim = _mm512_sub_ps(_mm512_setzero_ps(), *im);
    /* cvtne2ps_pbh(b, a): a's values in the low half; the permute interleaves the halves into pairs */
    __m512i p = _mm512_permutexvar_epi16(il, (__m512i)_mm512_cvtne2ps_pbh(nim, *re));
    __m512i q = _mm512_permutexvar_epi16(il, (__m512i)_mm512_cvtne2ps_pbh(*re, *im));
    *re = _mm512_castsi512_ps(p);
    *im = _mm512_castsi512_ps(q);
}

/* X record of one bin in BF16: pairs (xr, xi) per lane. */
TGT16 static void store_bf16_bin(float *dst, __m512 xr, __m512 xi) {
    static const uint16_t il_idx[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                        8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512i il = _mm512_loadu_si512(il_idx);
    _mm512_store_si512(dst, _mm512_permutexvar_epi16(il, (__m512i)_mm512_cvtne2ps_pbh(xi, xr)));
}

/* wf[bin][ob][ci][m][re, im] = DFT128(h)[bin] / 256 for o = ob*FMR + m (0 past cout), 16 output
 * channels per vector: taps gathered from w[o, ci, :], one FMA per tap and bin. */
TGT static void weights_part(const fctx *F, int64_t ov, int64_t ci, const float *ct, const float *st) {
    const cpu_conv1d_args *c = F->c;
    const int64_t k = c->k;
    int64_t o0 = ov * 16, rem = c->cout - o0;
    __mmask16 mk = rem >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem) - 1u);
    __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                     _mm512_set1_epi32((int)(c->cin * k)));
    __m512 taps[MAX_SPAN];
    const float *base = c->w + (o0 * c->cin + ci) * k;
    for (int64_t kk = 0; kk < k; kk++)
        taps[kk] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mk, idx, base + kk, 4);
    static const int lo_idx[16] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
    static const int hi_idx[16] = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512i il = _mm512_loadu_si512(lo_idx), ih = _mm512_loadu_si512(hi_idx);
    int64_t nob_here = (c->cout - o0 + FMR - 1) / FMR;
    if (nob_here > 16 / FMR) nob_here = 16 / FMR;
    for (int f = 0; f < NBIN; f++) {
        __m512 re = _mm512_setzero_ps(), im = _mm512_setzero_ps();
        for (int64_t kk = 0; kk < k; kk++) {
            re = _mm512_fmadd_ps(taps[kk], _mm512_set1_ps(ct[kk * NBIN + f]), re);
            im = _mm512_fmadd_ps(taps[kk], _mm512_set1_ps(st[kk * NBIN + f]), im);
        }
        /* pairs (re, im) of 16 channels: lanes 0..7 then 8..15, 4 channels (8 floats) per ob; BF16 packs
         * (re, -im) and (im, re) as bf16 pairs in their place */
        if (c->bf16) bf16_weight_pairs(&re, &im);
        __m512 a = _mm512_permutex2var_ps(re, il, im), b = _mm512_permutex2var_ps(re, ih, im);
        float *dst = F->wf + (((int64_t)f * F->nob + ov * (16 / FMR)) * c->cin + ci) * (FMR * 2);
        const int64_t qs = c->cin * FMR * 2; /* floats between blocks */
        _mm256_storeu_ps(dst, _mm512_castps512_ps256(a));
        if (nob_here > 1) _mm256_storeu_ps(dst + qs, _mm512_extractf32x8_ps(a, 1));
        if (nob_here > 2) _mm256_storeu_ps(dst + 2 * qs, _mm512_castps512_ps256(b));
        if (nob_here > 3) _mm256_storeu_ps(dst + 3 * qs, _mm512_extractf32x8_ps(b, 1));
    }
}

static void weights_tables(const fctx *F, float *ct, float *st) {
    const cpu_conv1d_args *c = F->c;
    const double pi = 3.14159265358979323846;
    for (int64_t kk = 0; kk < c->k; kk++) {
        int64_t m = (c->k - 1 - kk) * (int64_t)c->dilation;
        for (int f = 0; f < NBIN; f++) {
            int64_t q = (m * f) % FN;
            ct[kk * NBIN + f] = (float)(cos(2 * pi * (double)q / FN) / 256.0);
            st[kk * NBIN + f] = (float)(-sin(2 * pi * (double)q / FN) / 256.0);
        }
    }
}

/* ---- transforms ------------------------------------------------------------------------------- */

/* 16x16 transpose in registers: r[i][j] -> r[j][i]. */
TGT static INLINE void tr16(__m512 r[16]) {
    __m512 t[16];
    _Pragma("GCC unroll 8") for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    /* u[4g + c]: columns c, c+4, c+8, c+12 (one per 128-bit lane) of rows 4g..4g+3 */
    __m512 u[16];
    _Pragma("GCC unroll 4") for (int g = 0; g < 16; g += 4) {
        __m512d a = _mm512_castps_pd(t[g]), b = _mm512_castps_pd(t[g + 2]), c = _mm512_castps_pd(t[g + 1]),
                d = _mm512_castps_pd(t[g + 3]);
        u[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        u[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        u[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        u[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
        __m512 v = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44), w = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
        __m512 v2 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE), w2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
        r[c] = _mm512_shuffle_f32x4(v, w, 0x88);
        r[4 + c] = _mm512_shuffle_f32x4(v, w, 0xDD);
        r[8 + c] = _mm512_shuffle_f32x4(v2, w2, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(v2, w2, 0xDD);
    }
}

/* Lanes [lo, hi) of 16 as a mask (clamped to 0..16). */
static inline __mmask16 lane_mask(int64_t lo, int64_t hi) {
    if (lo < 0) lo = 0;
    if (hi > 16) hi = 16;
    if (hi <= lo) return 0;
    return (__mmask16)(((1u << (hi - lo)) - 1u) << lo);
}

/* X[bin][ci][gl] = 2 * DFT128 of the 16 blocks of group g (absolute), leaky ReLU applied. Each block's
 * 128 inputs are read as rows of 16 and turned into lanes by 16x16 transposes. */
TGT static void forward_group(const fctx *F, int64_t ci, int64_t g, int64_t gl, float *re, float *im) {
    const cpu_conv1d_args *c = F->c;
    const float *xr = c->x + ci * c->t;
    const int64_t p0 = g * LANES * F->L - c->padding, L = F->L, t = c->t;
    const __m512 slope = _mm512_set1_ps(c->leaky ? c->slope : 1.0f), zero = _mm512_setzero_ps();
    const bool inside = p0 >= 0 && p0 + (LANES - 1) * L + FN <= t;
    for (int i0 = 0; i0 < FN; i0 += 16) {
        __m512 r[16];
        _Pragma("GCC unroll 16") for (int j = 0; j < 16; j++) {
            int64_t st = p0 + j * L + i0;
            if (inside) {
                r[j] = _mm512_loadu_ps(xr + st);
            } else {
                __mmask16 m = lane_mask(-st, t - st);
                /* masked-off lanes are not read (no fault), so the row may start before x */
                r[j] = m ? _mm512_maskz_loadu_ps(m, xr + st) : zero;
            }
        }
        tr16(r);
        _Pragma("GCC unroll 16") for (int i = 0; i < 16; i++) {
            __m512 v = r[i];
            if (c->leaky) v = _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, slope);
            int n = i0 + i;
            _mm512_store_ps((n & 1 ? im : re) + F->tab.br[n >> 1] * 16, v);
        }
    }
    fft64(re, im, &F->tab, false);
    const int64_t bs = F->gx; /* floats between bins */
    const bool bf16 = c->bf16;
    float *dst = F->X + (ci * F->cg + gl) * NBIN * bs;
    __m512 r0 = _mm512_load_ps(re), i0 = _mm512_load_ps(im), two = _mm512_set1_ps(2.0f);
    __m512 x0 = _mm512_mul_ps(two, _mm512_add_ps(r0, i0)), x64 = _mm512_mul_ps(two, _mm512_sub_ps(r0, i0));
    if (bf16) {
        store_bf16_bin(dst, x0, zero);
        store_bf16_bin(dst + 64 * bs, x64, zero);
    } else {
        _mm512_store_ps(dst, x0);
        _mm512_store_ps(dst + 16, zero);
        _mm512_store_ps(dst + 64 * bs, x64);
        _mm512_store_ps(dst + 64 * bs + 16, zero);
    }
    for (int k = 1; k < FH; k++) {
        __m512 ar = _mm512_load_ps(re + k * 16), ai = _mm512_load_ps(im + k * 16);
        __m512 br = _mm512_load_ps(re + (FH - k) * 16), bi = _mm512_load_ps(im + (FH - k) * 16);
        __m512 er = _mm512_add_ps(ar, br), ei = _mm512_sub_ps(ai, bi), dr = _mm512_sub_ps(ar, br), di = _mm512_add_ps(ai, bi);
        __m512 cv = _mm512_set1_ps(F->tab.c128[k]), sv = _mm512_set1_ps(F->tab.s128[k]);
        /* X' = E + e^{-i theta} (-i) D */
        __m512 xr_ = _mm512_fnmadd_ps(sv, dr, _mm512_fmadd_ps(cv, di, er));
        __m512 xi_ = _mm512_fnmadd_ps(sv, di, _mm512_fnmadd_ps(cv, dr, ei));
        if (bf16) {
            store_bf16_bin(dst + k * bs, xr_, xi_);
        } else {
            _mm512_store_ps(dst + k * bs, xr_);
            _mm512_store_ps(dst + k * bs + 16, xi_);
        }
    }
}

/* y[co, blocks of group g] = last L samples of 128 * IDFT128(Y[.][co][gl]) + bias + residual. */
TGT static void inverse_group(const fctx *F, int64_t co, int64_t g, int64_t gl, float *re, float *im) {
    const cpu_conv1d_args *c = F->c;
    const int64_t bs = GF;
    const float *src = F->Y + (co * F->cg + gl) * NBIN * GF;
    for (int k = 0; k < FH; k++) {
        __m512 ar = _mm512_load_ps(src + k * bs), ai = _mm512_load_ps(src + k * bs + 16);
        __m512 br = _mm512_load_ps(src + (FH - k) * bs), bi = _mm512_load_ps(src + (FH - k) * bs + 16);
        __m512 er = _mm512_add_ps(ar, br), ei = _mm512_sub_ps(ai, bi), dr = _mm512_sub_ps(ar, br), di = _mm512_add_ps(ai, bi);
        __m512 cv = _mm512_set1_ps(F->tab.c128[k]), sv = _mm512_set1_ps(F->tab.s128[k]);
        /* Z = E + i e^{+i theta} D */
        __m512 zr = _mm512_fnmadd_ps(sv, dr, _mm512_fnmadd_ps(cv, di, er));
        __m512 zi = _mm512_fnmadd_ps(sv, di, _mm512_fmadd_ps(cv, dr, ei));
        int b = F->tab.br[k];
        _mm512_store_ps(re + b * 16, zr);
        _mm512_store_ps(im + b * 16, zi);
    }
    fft64(re, im, &F->tab, true);
    const int64_t t0 = g * LANES * F->L, tout = c->tout, L = F->L;
    float *yr = c->y + co * tout;
    const float *rr = c->residual ? c->residual + co * tout : NULL;
    const __m512 bv = _mm512_set1_ps(c->bias ? c->bias[co] : 0.0f);
    /* outputs i of every lane, 16 at a time, turned into rows (one per block) by a transpose */
    for (int64_t i0 = 0; i0 < L; i0 += 16) {
        __m512 r[16];
        _Pragma("GCC unroll 16") for (int i = 0; i < 16; i++) {
            int64_t n = F->span - 1 + i0 + i;
            r[i] = n < FN ? _mm512_load_ps((n & 1 ? im : re) + (n >> 1) * 16) : _mm512_setzero_ps();
        }
        tr16(r);
        _Pragma("GCC unroll 16") for (int j = 0; j < 16; j++) {
            int64_t tb = t0 + j * L + i0, lim = L - i0 < tout - tb ? L - i0 : tout - tb;
            if (lim <= 0) break;
            __m512 v = _mm512_add_ps(r[j], bv);
            if (lim >= 16) { /* plain stores where the whole row is inside: masked ones are slower */
                if (rr) v = _mm512_add_ps(v, _mm512_loadu_ps(rr + tb));
                _mm512_storeu_ps(yr + tb, v);
            } else {
                __mmask16 m = (__mmask16)((1u << lim) - 1u);
                if (rr) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, rr + tb));
                _mm512_mask_storeu_ps(yr + tb, m, v);
            }
        }
    }
}

/* ---- bin GEMM ----------------------------------------------------------------------------------- */

/* Y[f][ob*FMR + m][g0 + v] = sum_ci W[f][ob][ci][m] X[f][ci][g0 + v] (complex), nv <= FNV groups. */
TGT static INLINE void cgemm_kernel(const float *wp, const float *xp, int64_t cin, int64_t xs, float *yp, int64_t ys,
                                    int64_t vs, const int nv) {
    __m512 ar[FMR][FNV], ai[FMR][FNV];
    _Pragma("GCC unroll 4") for (int m = 0; m < FMR; m++) _Pragma("GCC unroll 3") for (int v = 0; v < FNV; v++) {
        ar[m][v] = _mm512_setzero_ps();
        ai[m][v] = _mm512_setzero_ps();
    }
    for (int64_t ci = 0; ci < cin; ci++) {
        __m512 xr[FNV], xi[FNV];
        _Pragma("GCC unroll 3") for (int v = 0; v < FNV; v++) if (v < nv) {
            xr[v] = _mm512_load_ps(xp + v * vs);
            xi[v] = _mm512_load_ps(xp + v * vs + 16);
        }
        _Pragma("GCC unroll 4") for (int m = 0; m < FMR; m++) {
            __m512 wr = _mm512_set1_ps(wp[2 * m]), wi = _mm512_set1_ps(wp[2 * m + 1]);
            _Pragma("GCC unroll 3") for (int v = 0; v < FNV; v++) if (v < nv) {
                ar[m][v] = _mm512_fmadd_ps(wr, xr[v], ar[m][v]);
                ar[m][v] = _mm512_fnmadd_ps(wi, xi[v], ar[m][v]);
                ai[m][v] = _mm512_fmadd_ps(wr, xi[v], ai[m][v]);
                ai[m][v] = _mm512_fmadd_ps(wi, xr[v], ai[m][v]);
            }
        }
        wp += FMR * 2;
        xp += xs;
    }
    _Pragma("GCC unroll 4") for (int m = 0; m < FMR; m++) _Pragma("GCC unroll 3") for (int v = 0; v < FNV; v++) if (v < nv) {
        _mm512_store_ps(yp + m * ys + v * vs, ar[m][v]);
        _mm512_store_ps(yp + m * ys + v * vs + 16, ai[m][v]);
    }
}

/* BF16: X records hold (xr, xi) pairs, wp holds per (ci, m) the pairs (wr, -wi) and (wi, wr):
 * one vdpbf16ps each for the real and the imaginary part, FP32 accumulation; xs, xv: X strides
 * between channels and groups; ys, yv: Y's. */
TGT16 static INLINE void cgemm_kernel_bf16(const float *wp, const float *xp, int64_t cin, int64_t xs, int64_t xv,
                                           float *yp, int64_t ys, int64_t yv, const int nv) {
    __m512 ar[FMR][FNV], ai[FMR][FNV];
    _Pragma("GCC unroll 4") for (int m = 0; m < FMR; m++) _Pragma("GCC unroll 3") for (int v = 0; v < FNV; v++) {
        ar[m][v] = _mm512_setzero_ps();
        ai[m][v] = _mm512_setzero_ps();
    }
    const int32_t *wq = (const int32_t *)wp;
    for (int64_t ci = 0; ci < cin; ci++) {
        __m512bh x[FNV];
        _Pragma("GCC unroll 3") for (int v = 0; v < FNV; v++) if (v < nv) x[v] = (__m512bh)_mm512_load_si512(xp + v * xv);
        _Pragma("GCC unroll 4") for (int m = 0; m < FMR; m++) {
            __m512bh p = (__m512bh)_mm512_set1_epi32(wq[2 * m]), q = (__m512bh)_mm512_set1_epi32(wq[2 * m + 1]);
            _Pragma("GCC unroll 3") for (int v = 0; v < FNV; v++) if (v < nv) {
                ar[m][v] = _mm512_dpbf16_ps(ar[m][v], p, x[v]);
                ai[m][v] = _mm512_dpbf16_ps(ai[m][v], q, x[v]);
            }
        }
        wq += FMR * 2;
        xp += xs;
    }
    _Pragma("GCC unroll 4") for (int m = 0; m < FMR; m++) _Pragma("GCC unroll 3") for (int v = 0; v < FNV; v++) if (v < nv) {
        _mm512_store_ps(yp + m * ys + v * yv, ar[m][v]);
        _mm512_store_ps(yp + m * ys + v * yv + 16, ai[m][v]);
    }
}

TGT16 static void gemm_unit_bf16(const fctx *F, int f, int64_t ob, int64_t ng) {
    const int64_t cin = F->c->cin, cg = F->cg;
    const float *wp = F->wf + ((int64_t)f * F->nob + ob) * cin * FMR * 2;
    const int64_t xv = NBIN * F->gx, xs = cg * xv, yv = NBIN * GF, ys = cg * yv;
    const float *xb = F->X + (int64_t)f * F->gx;
    float *yb = F->Y + ob * FMR * ys + (int64_t)f * GF;
    int64_t g0 = 0;
    for (; g0 + 3 <= ng; g0 += 3) cgemm_kernel_bf16(wp, xb + g0 * xv, cin, xs, xv, yb + g0 * yv, ys, yv, 3);
    if (ng - g0 == 2) cgemm_kernel_bf16(wp, xb + g0 * xv, cin, xs, xv, yb + g0 * yv, ys, yv, 2);
    if (ng - g0 == 1) cgemm_kernel_bf16(wp, xb + g0 * xv, cin, xs, xv, yb + g0 * yv, ys, yv, 1);
}

TGT static void gemm_unit(const fctx *F, int f, int64_t ob, int64_t ng) {
    const int64_t cin = F->c->cin, cg = F->cg;
    const float *wp = F->wf + ((int64_t)f * F->nob + ob) * cin * FMR * 2;
    const int64_t vs = NBIN * GF, cs = cg * vs; /* floats between groups, between channels */
    const float *xb = F->X + (int64_t)f * GF;
    float *yb = F->Y + ob * FMR * cs + (int64_t)f * GF;
    int64_t g0 = 0;
    for (; g0 + 3 <= ng; g0 += 3) cgemm_kernel(wp, xb + g0 * vs, cin, cs, yb + g0 * vs, cs, vs, 3);
    if (ng - g0 == 2) cgemm_kernel(wp, xb + g0 * vs, cin, cs, yb + g0 * vs, cs, vs, 2);
    if (ng - g0 == 1) cgemm_kernel(wp, xb + g0 * vs, cin, cs, yb + g0 * vs, cs, vs, 1);
}

/* ---- driver ------------------------------------------------------------------------------------- */

avo_status cpu_conv1d_fft(avo_arena *a, const cpu_conv1d_args *c, avo_error *err) {
    fctx F;
    memset(&F, 0, sizeof F);
    F.c = c;
    make_tab(&F.tab);
    F.span = span_of(c);
    F.L = FN - F.span + 1;
    F.nblk = (c->tout + F.L - 1) / F.L;
    F.ngroups = (F.nblk + LANES - 1) / LANES;
    F.nob = (c->cout + FMR - 1) / FMR;
    F.gx = c->bf16 ? GF / 2 : GF;
    int64_t per_group = (int64_t)NBIN * (c->cin * F.gx + F.nob * FMR * GF) * 4;
    F.cg = CHUNK_BYTES / per_group;
    if (F.cg < 1) F.cg = 1;
    if (F.cg > MAX_CHUNK_GROUPS) F.cg = MAX_CHUNK_GROUPS;
    if (F.cg > F.ngroups) F.cg = F.ngroups;
    int nt = c->nthreads > 0 ? c->nthreads : 1;

    void *wf = NULL, *X = NULL, *Y = NULL, *tabs = NULL;
    avo_status st = avo_arena_alloc(a, (size_t)NBIN * (size_t)(F.nob * c->cin) * FMR * 2 * 4, &wf, err);
    if (!st) st = avo_arena_alloc(a, (size_t)NBIN * (size_t)(c->cin * F.cg) * (size_t)F.gx * 4, &X, err);
    if (!st) st = avo_arena_alloc(a, (size_t)NBIN * (size_t)(F.nob * FMR * F.cg) * GF * 4, &Y, err);
    if (!st) st = avo_arena_alloc(a, (size_t)(2 * NBIN * c->k) * 4, &tabs, err);
    if (st) return st;
    F.wf = wf;
    F.X = X;
    F.Y = Y;
    float *ct = tabs, *stab = (float *)tabs + NBIN * c->k;
    weights_tables(&F, ct, stab);
    const int64_t nov = (F.nob * FMR + 15) / 16, ncg = (F.ngroups + F.cg - 1) / F.cg;
#pragma omp parallel num_threads(nt)
    {
        float re[FH * 16] __attribute__((aligned(64))), im[FH * 16] __attribute__((aligned(64)));
#pragma omp for schedule(static)
        for (int64_t u = 0; u < nov * c->cin; u++) weights_part(&F, u / c->cin, u % c->cin, ct, stab);
        for (int64_t ch = 0; ch < ncg; ch++) {
            int64_t gfirst = ch * F.cg, ng = F.ngroups - gfirst < F.cg ? F.ngroups - gfirst : F.cg;
#pragma omp for schedule(static)
            for (int64_t u = 0; u < c->cin * ng; u++) forward_group(&F, u / ng, gfirst + u % ng, u % ng, re, im);
#pragma omp for schedule(dynamic, 1)
            for (int64_t u = 0; u < NBIN * F.nob; u++) {
                if (c->bf16)
                    gemm_unit_bf16(&F, (int)(u / F.nob), u % F.nob, ng);
                else
                    gemm_unit(&F, (int)(u / F.nob), u % F.nob, ng);
            }
#pragma omp for schedule(static)
            for (int64_t u = 0; u < c->cout * ng; u++) inverse_group(&F, u / ng, gfirst + u % ng, u % ng, re, im);
        }
    }
    return AVO_OK;
}
