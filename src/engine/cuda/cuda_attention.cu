/* Plain scaled dot-product attention (rel_attention with window 0: HuBERT's self-attention) in FP16
 * and INT8 mode as one fused kernel: S = Q^T K, softmax and O = V P^T per block of 64 queries, with
 * the running maximum and sum of the online softmax, so S (heads x T x T floats: 108 MB per layer at
 * T 1500) never reaches memory. FP16 operands on the tensor cores (mma.sync m16n8k16), FP32
 * accumulation and softmax statistics.
 *
 * The FP32 path (three cuBLAS GEMM passes and a softmax kernel over S) took 4.7 ms of HuBERT's 12 ms
 * on an H100 at 30 s: about 39%, for 83 GFLOP that the tensor cores do in well under a millisecond.
 * Measured there: 4.78 -> 0.97 ms for HuBERT's 12 layers; RVC's text encoder (6 calls, 2 heads of 96
 * channels, window 10, 2998 frames) 2.41 -> 1.39 ms, where only 94 blocks of 4 warps run (2 heads x
 * 47 query tiles): splitting the keys over blocks would fill the chip.
 *
 * Layout. q, k, v are [C, T] with head h in rows h*64 .. h*64+63 (time contiguous). A pack kernel
 * writes Q (times scale * log2 e, so that the softmax is a base-2 exponential) and K as half
 * [H][Tp][64] (frame-major: the A operand of Q K^T and the "col" B operand), and V as half [H][64][Tp]
 * (its own order: the "col" B operand of P V), Tp = T rounded up to the 64-frame tile, padding zero.
 * Zero keys past T are masked to -inf in S; zero queries past T are computed and not stored.
 *
 * Relative positions (VITS's text encoder in RVC and so-vits-svc: window 10, 96-channel heads): the
 * band logits R[i][r] = q_i . E_k[r] (r = j - i + window) are computed per block into shared memory
 * and added to S where a key tile meets the band; the band's probabilities of each tile go through
 * shared memory (per warp) so that the thread holding O[i][d] adds sum_r P[i][i + r - window] E_v[r][d]
 * in that tile's scale, before the online softmax rescales it with the rest. */
#include "engine/cuda/cuda_internal.h"

#include <math.h>
#include <stdint.h>

#define FA_BQ 64      /* queries per block: 4 warps of 16 */
#define FA_BK 64      /* keys per tile */
#define FA_THREADS 128
#define FA_NR 24      /* relative offsets the kernel takes: window <= 11 */
#define FA_PACK_D 96  /* largest head size of the pack kernel's tile */

/* Q or K: x [H*D, T] float -> y [H][tp][D] half times scale, zero past T. One block per 64 frames
 * of one head, through shared memory so that reads (along T) and writes (along d) are coalesced. */
__global__ void __launch_bounds__(256) k_fa_pack_rows(const float *x, __half *y, int d_, int t, int tp, float scale) {
    __shared__ float tile[FA_PACK_D][65];
    const int h = blockIdx.y, t0 = blockIdx.x * 64;
    const float *xh = x + (int64_t)h * d_ * t;
    for (int i = threadIdx.x; i < d_ * 64; i += blockDim.x) {
        const int d = i >> 6, tt = i & 63;
        tile[d][tt] = t0 + tt < t ? xh[(int64_t)d * t + t0 + tt] * scale : 0.0f;
    }
    __syncthreads();
    __half2 *yh = (__half2 *)(y + ((int64_t)h * tp + t0) * d_);
    for (int i = threadIdx.x; i < 64 * d_ / 2; i += blockDim.x) {
        const int tt = i / (d_ / 2), d = 2 * (i % (d_ / 2));
        yh[i] = __floats2half2_rn(tile[d][tt], tile[d + 1][tt]);
    }
}

/* V: x [H*64, T] float -> y [H*64][tp] half, zero past T. */
__global__ void k_fa_pack_cols(const float *x, __half *y, int64_t rows, int t, int tp) {
    const int64_t n = rows * tp;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t r = i / tp;
        const int c = (int)(i - r * tp);
        y[i] = __float2half_rn(c < t ? x[r * t + c] : 0.0f);
    }
}

__device__ __forceinline__ void fa_mma(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    (void)c, (void)a, (void)b0, (void)b1; /* never launched below sm_80 (cu_attention_half checks) */
#endif
}

__device__ __forceinline__ uint32_t fa_h2(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi); /* lo in the low half: the lower column of a fragment pair */
    return *(uint32_t *)&v;
}

/* One block: 64 queries of head blockIdx.y; warp w owns queries q0 + 16 w .. + 15. Fragment layouts
 * of m16n8k16 (gid = lane / 4, tig = lane % 4): A rows gid and gid + 8, columns 2 tig (+1) and
 * 2 tig + 8 (+1); B column gid, rows 2 tig (+1) and 2 tig + 8 (+1); C rows gid, gid + 8, columns
 * 2 tig (+1). The S accumulators of two neighbouring key tiles are, as halves, the A fragment of
 * P V for those 16 keys. REL: ek, ev [nr][D] float of this head (window = (nr - 1) / 2). */
template <int D, bool REL>
__global__ void __launch_bounds__(FA_THREADS) k_flash_att(const __half *qh, const __half *kh, const __half *vh, float *o,
                                                         int t, int tp, const float *ek, const float *ev, long long ehs,
                                                         int nr) {
    constexpr int LDS = D + 8; /* (D + 8) / 2 words a row: rows 0..7 start 4 banks apart, + tig: 32 banks */
    __shared__ __align__(16) __half ks[FA_BK * LDS]; /* [key][d] */
    __shared__ __align__(16) __half vs[D * (FA_BK + 8)]; /* [d][key] */
    __shared__ float rb[REL ? FA_BQ : 1][REL ? FA_NR : 1];  /* band logits of the block's queries */
    __shared__ float pb[REL ? FA_BQ : 1][REL ? FA_NR : 1];  /* a tile's band probabilities */
    __shared__ __align__(16) __half evs[REL ? FA_NR : 1][REL ? D : 1];
    const int h = blockIdx.y, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gid = lane >> 2, tig = lane & 3;
    const int qb0 = blockIdx.x * FA_BQ, q0 = qb0 + warp * 16, win = (nr - 1) / 2;
    const __half *qr = qh + ((int64_t)h * tp + q0 + gid) * D + tig * 2;
    if (REL) { /* R[i][r] = q_i . E_k[r] (q already scaled), E_v in half */
        const float *ekh = ek + (int64_t)h * ehs, *evh = ev + (int64_t)h * ehs;
        for (int i = tid; i < FA_BQ * nr; i += FA_THREADS) {
            const int qi = i / nr, r = i - qi * nr;
            const __half *qrow = qh + ((int64_t)h * tp + qb0 + qi) * D;
            float acc = 0.0f;
            for (int d = 0; d < D; d++) acc += __half2float(qrow[d]) * ekh[r * D + d];
            rb[qi][r] = acc;
        }
        for (int i = tid; i < nr * D; i += FA_THREADS) evs[i / D][i % D] = __float2half_rn(evh[i]);
    }
    uint32_t qa[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        qa[kk][0] = *(const uint32_t *)(qr + kk * 16);
        qa[kk][1] = *(const uint32_t *)(qr + 8 * D + kk * 16);
        qa[kk][2] = *(const uint32_t *)(qr + kk * 16 + 8);
        qa[kk][3] = *(const uint32_t *)(qr + 8 * D + kk * 16 + 8);
    }
    float acc[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
    float mx[2] = {-INFINITY, -INFINITY}, sum[2] = {0.0f, 0.0f};
    const __half *kbase = kh + (int64_t)h * tp * D, *vbase = vh + (int64_t)h * D * tp;
    for (int k0 = 0; k0 < tp; k0 += FA_BK) {
        __syncthreads(); /* the previous tile's reads are done (and, first, rb / evs are written) */
        for (int i = tid; i < FA_BK * D / 8; i += FA_THREADS) {
            const int row = i / (D / 8), c = (i % (D / 8)) * 8;
            *(uint4 *)(ks + row * LDS + c) = *(const uint4 *)(kbase + (int64_t)(k0 + row) * D + c);
        }
        for (int i = tid; i < D * FA_BK / 8; i += FA_THREADS) {
            const int row = i >> 3, c = (i & 7) * 8;
            *(uint4 *)(vs + row * (FA_BK + 8) + c) = *(const uint4 *)(vbase + (int64_t)row * tp + k0 + c);
        }
        __syncthreads();
        float s[FA_BK / 8][4];
#pragma unroll
        for (int j = 0; j < FA_BK / 8; j++) {
            s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
            const __half *kr = ks + (j * 8 + gid) * LDS + tig * 2;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++)
                fa_mma(s[j], qa[kk], *(const uint32_t *)(kr + kk * 16), *(const uint32_t *)(kr + kk * 16 + 8));
        }
        /* this warp's queries meet the band in this tile */
        const bool band = REL && k0 <= q0 + 15 + win && k0 + FA_BK - 1 >= q0 - win;
        if (REL && band) {
#pragma unroll
            for (int j = 0; j < FA_BK / 8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int ql = warp * 16 + gid + 8 * (e >> 1), rel = k0 + j * 8 + tig * 2 + (e & 1) - (qb0 + ql) + win;
                    if (rel >= 0 && rel < nr) s[j][e] += rb[ql][rel];
                }
        }
        if (k0 + FA_BK > t) { /* the last tile: keys past T do not exist */
#pragma unroll
            for (int j = 0; j < FA_BK / 8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    if (k0 + j * 8 + tig * 2 + (e & 1) >= t) s[j][e] = -INFINITY;
        }
        /* online softmax, rows gid (r 0: elements 0, 1) and gid + 8 (r 1: elements 2, 3) */
        float corr[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float m = mx[r];
#pragma unroll
            for (int j = 0; j < FA_BK / 8; j++) m = fmaxf(m, fmaxf(s[j][2 * r], s[j][2 * r + 1]));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
            corr[r] = exp2f(mx[r] - m); /* 0 on the first tile (mx -inf); each tile has a real key */
            mx[r] = m;
            float ls = 0.0f;
#pragma unroll
            for (int j = 0; j < FA_BK / 8; j++) {
                s[j][2 * r] = exp2f(s[j][2 * r] - m);
                s[j][2 * r + 1] = exp2f(s[j][2 * r + 1] - m);
                ls += s[j][2 * r] + s[j][2 * r + 1];
            }
            sum[r] = sum[r] * corr[r] + ls; /* this thread's columns only; the quad adds up at the end */
        }
#pragma unroll
        for (int j = 0; j < D / 8; j++) {
            acc[j][0] *= corr[0], acc[j][1] *= corr[0];
            acc[j][2] *= corr[1], acc[j][3] *= corr[1];
        }
        if (REL && band) { /* O[i][d] += sum_r P[i][i + r - win] E_v[r][d], in this tile's scale */
            for (int i = lane; i < 16 * FA_NR; i += 32) pb[warp * 16 + i / FA_NR][i % FA_NR] = 0.0f;
            __syncwarp();
#pragma unroll
            for (int j = 0; j < FA_BK / 8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int ql = warp * 16 + gid + 8 * (e >> 1), rel = k0 + j * 8 + tig * 2 + (e & 1) - (qb0 + ql) + win;
                    if (rel >= 0 && rel < nr) pb[ql][rel] = s[j][e];
                }
            __syncwarp();
#pragma unroll
            for (int r = 0; r < 2; r++) {
                const float *prow = pb[warp * 16 + gid + 8 * r];
                for (int rr = 0; rr < nr; rr++) {
                    const float pv = prow[rr];
                    if (pv == 0.0f) continue;
#pragma unroll
                    for (int j = 0; j < D / 8; j++) {
                        const __half2 ev2 = *(const __half2 *)&evs[rr][j * 8 + tig * 2];
                        acc[j][2 * r] += pv * __low2float(ev2);
                        acc[j][2 * r + 1] += pv * __high2float(ev2);
                    }
                }
            }
            __syncwarp(); /* pb is rewritten by the next band tile */
        }
#pragma unroll
        for (int kk = 0; kk < FA_BK / 16; kk++) {
            uint32_t pa[4] = {fa_h2(s[2 * kk][0], s[2 * kk][1]), fa_h2(s[2 * kk][2], s[2 * kk][3]),
                              fa_h2(s[2 * kk + 1][0], s[2 * kk + 1][1]), fa_h2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int j = 0; j < D / 8; j++) {
                const __half *vr = vs + (j * 8 + gid) * (FA_BK + 8) + kk * 16 + tig * 2;
                fa_mma(acc[j], pa, *(const uint32_t *)vr, *(const uint32_t *)(vr + 8));
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        sum[r] += __shfl_xor_sync(0xffffffffu, sum[r], 1);
        sum[r] += __shfl_xor_sync(0xffffffffu, sum[r], 2);
        sum[r] = 1.0f / sum[r];
    }
    float *oh = o + (int64_t)h * D * t;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int q = q0 + gid + 8 * r;
        if (q >= t) continue;
#pragma unroll
        for (int j = 0; j < D / 8; j++) {
            const int d = j * 8 + tig * 2;
            oh[(int64_t)d * t + q] = acc[j][2 * r] * sum[r];
            oh[(int64_t)(d + 1) * t + q] = acc[j][2 * r + 1] * sum[r];
        }
    }
}

avo_status cu_attention_half(cu_impl *cu, avo_arena *a, const float *q, const float *k, const float *v, float *o,
                             int64_t heads, int64_t kc, int64_t t, float scale, const float *ek, const float *ev,
                             int64_t ek_heads, int64_t ev_heads, int window, bool *ran, avo_error *err) {
    *ran = false;
    if (cu->cc_major < 8 || (kc != 64 && kc != 96) || t < 1 || t > (INT32_MAX / 2) || heads < 1 || heads > 65535)
        return AVO_OK;
    if (window > 0 && (cu->no_flash_rel || 2 * window + 1 > FA_NR || ek_heads != ev_heads)) return AVO_OK;
    const int64_t tp = (t + FA_BQ - 1) / FA_BQ * FA_BQ, per = heads * tp * kc;
    void *buf = NULL;
    avo_status st = cu_scratch(cu, a, (size_t)(3 * per) * sizeof(__half), &buf, err);
    if (st) return st;
    __half *qh = (__half *)buf, *kh = qh + per, *vh = kh + per;
    const dim3 pg((unsigned)(tp / 64), (unsigned)heads);
    k_fa_pack_rows<<<pg, 256, 0, cu->stream>>>(q, qh, (int)kc, (int)t, (int)tp, scale * 1.4426950408889634f);
    k_fa_pack_rows<<<pg, 256, 0, cu->stream>>>(k, kh, (int)kc, (int)t, (int)tp, 1.0f);
    int64_t nb = (per + 255) / 256, cap = (int64_t)(cu->n_sm > 0 ? cu->n_sm : 80) * 16;
    k_fa_pack_cols<<<(unsigned)(nb < cap ? nb : cap), 256, 0, cu->stream>>>(v, vh, heads * kc, (int)t, (int)tp);
    const dim3 grid((unsigned)(tp / FA_BQ), (unsigned)heads);
    const int nr = 2 * window + 1;
    const long long ehs = window > 0 && ek_heads != 1 ? (long long)nr * kc : 0;
    const float *ekp = ek, *evp = ev; /* R = Q E_k^T from the packed Q: already in S's scale */
    if (kc == 64 && window == 0)
        k_flash_att<64, false><<<grid, FA_THREADS, 0, cu->stream>>>(qh, kh, vh, o, (int)t, (int)tp, NULL, NULL, 0, 1);
    else if (kc == 96 && window == 0)
        k_flash_att<96, false><<<grid, FA_THREADS, 0, cu->stream>>>(qh, kh, vh, o, (int)t, (int)tp, NULL, NULL, 0, 1);
    else if (kc == 64)
        k_flash_att<64, true><<<grid, FA_THREADS, 0, cu->stream>>>(qh, kh, vh, o, (int)t, (int)tp, ekp, evp, ehs, nr);
    else
        k_flash_att<96, true><<<grid, FA_THREADS, 0, cu->stream>>>(qh, kh, vh, o, (int)t, (int)tp, ekp, evp, ehs, nr);
    cu->gemm_fp16++; /* the products ran on half operands: counted as one half GEMM */
    *ran = true;
    return cu_check_launch("attention (fused, half)", err);
}
