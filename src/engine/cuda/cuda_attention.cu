/* Plain scaled dot-product attention (rel_attention with window 0: HuBERT's self-attention) in FP16
 * and INT8 mode as one fused kernel: S = Q^T K, softmax and O = V P^T per block of 64 queries, with
 * the running maximum and sum of the online softmax, so S (heads x T x T floats: 108 MB per layer at
 * T 1500) never reaches memory. FP16 operands on the tensor cores (mma.sync m16n8k16), FP32
 * accumulation and softmax statistics.
 *
 * The FP32 path (three cuBLAS GEMM passes and a softmax kernel over S) took 4.7 ms of HuBERT's 12 ms
 * on an H100 at 30 s: about 39%, for 83 GFLOP that the tensor cores do in well under a millisecond.
 *
 * Layout. q, k, v are [C, T] with head h in rows h*64 .. h*64+63 (time contiguous). A pack kernel
 * writes Q (times scale * log2 e, so that the softmax is a base-2 exponential) and K as half
 * [H][Tp][64] (frame-major: the A operand of Q K^T and the "col" B operand), and V as half [H][64][Tp]
 * (its own order: the "col" B operand of P V), Tp = T rounded up to the 64-frame tile, padding zero.
 * Zero keys past T are masked to -inf in S; zero queries past T are computed and not stored. */
#include "engine/cuda/cuda_internal.h"

#include <math.h>
#include <stdint.h>

#define FA_D 64       /* head size the kernel takes */
#define FA_BQ 64      /* queries per block: 4 warps of 16 */
#define FA_BK 64      /* keys per tile */
#define FA_LDS 72     /* shared row in halves: 144 bytes, so a warp's fragment loads hit 32 banks */
#define FA_THREADS 128

/* Q or K: x [H*64, T] float -> y [H][tp][64] half times scale, zero past T. One block per 64 frames
 * of one head, through shared memory so that reads (along T) and writes (along d) are coalesced. */
__global__ void __launch_bounds__(256) k_fa_pack_rows(const float *x, __half *y, int t, int tp, float scale) {
    __shared__ float tile[FA_D][65];
    const int h = blockIdx.y, t0 = blockIdx.x * 64;
    const float *xh = x + (int64_t)h * FA_D * t;
    for (int i = threadIdx.x; i < FA_D * 64; i += blockDim.x) {
        const int d = i >> 6, tt = i & 63;
        tile[d][tt] = t0 + tt < t ? xh[(int64_t)d * t + t0 + tt] * scale : 0.0f;
    }
    __syncthreads();
    __half2 *yh = (__half2 *)(y + ((int64_t)h * tp + t0) * FA_D);
    for (int i = threadIdx.x; i < 64 * FA_D / 2; i += blockDim.x) {
        const int tt = i / (FA_D / 2), d = 2 * (i % (FA_D / 2));
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
 * P V for those 16 keys. */
__global__ void __launch_bounds__(FA_THREADS) k_flash_att(const __half *qh, const __half *kh, const __half *vh, float *o,
                                                         int t, int tp) {
    __shared__ __align__(16) __half ks[FA_BK * FA_LDS]; /* [key][d] */
    __shared__ __align__(16) __half vs[FA_D * FA_LDS];  /* [d][key] */
    const int h = blockIdx.y, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, gid = lane >> 2, tig = lane & 3;
    const int q0 = blockIdx.x * FA_BQ + warp * 16;
    const __half *qr = qh + ((int64_t)h * tp + q0 + gid) * FA_D + tig * 2;
    uint32_t qa[FA_D / 16][4];
#pragma unroll
    for (int kk = 0; kk < FA_D / 16; kk++) {
        qa[kk][0] = *(const uint32_t *)(qr + kk * 16);
        qa[kk][1] = *(const uint32_t *)(qr + 8 * FA_D + kk * 16);
        qa[kk][2] = *(const uint32_t *)(qr + kk * 16 + 8);
        qa[kk][3] = *(const uint32_t *)(qr + 8 * FA_D + kk * 16 + 8);
    }
    float acc[FA_D / 8][4];
#pragma unroll
    for (int j = 0; j < FA_D / 8; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
    float mx[2] = {-INFINITY, -INFINITY}, sum[2] = {0.0f, 0.0f};
    const __half *kbase = kh + (int64_t)h * tp * FA_D, *vbase = vh + (int64_t)h * FA_D * tp;
    for (int k0 = 0; k0 < tp; k0 += FA_BK) {
        __syncthreads(); /* the previous tile's reads are done */
#pragma unroll
        for (int r = 0; r < FA_BK * FA_D / 8 / FA_THREADS; r++) {
            const int i = tid + r * FA_THREADS, row = i >> 3, c = (i & 7) * 8;
            *(uint4 *)(ks + row * FA_LDS + c) = *(const uint4 *)(kbase + (int64_t)(k0 + row) * FA_D + c);
            *(uint4 *)(vs + row * FA_LDS + c) = *(const uint4 *)(vbase + (int64_t)row * tp + k0 + c);
        }
        __syncthreads();
        float s[FA_BK / 8][4];
#pragma unroll
        for (int j = 0; j < FA_BK / 8; j++) {
            s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
            const __half *kr = ks + (j * 8 + gid) * FA_LDS + tig * 2;
#pragma unroll
            for (int kk = 0; kk < FA_D / 16; kk++)
                fa_mma(s[j], qa[kk], *(const uint32_t *)(kr + kk * 16), *(const uint32_t *)(kr + kk * 16 + 8));
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
        for (int j = 0; j < FA_D / 8; j++) {
            acc[j][0] *= corr[0], acc[j][1] *= corr[0];
            acc[j][2] *= corr[1], acc[j][3] *= corr[1];
        }
#pragma unroll
        for (int kk = 0; kk < FA_BK / 16; kk++) {
            uint32_t pa[4] = {fa_h2(s[2 * kk][0], s[2 * kk][1]), fa_h2(s[2 * kk][2], s[2 * kk][3]),
                              fa_h2(s[2 * kk + 1][0], s[2 * kk + 1][1]), fa_h2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int j = 0; j < FA_D / 8; j++) {
                const __half *vr = vs + (j * 8 + gid) * FA_LDS + kk * 16 + tig * 2;
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
    float *oh = o + (int64_t)h * FA_D * t;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int q = q0 + gid + 8 * r;
        if (q >= t) continue;
#pragma unroll
        for (int j = 0; j < FA_D / 8; j++) {
            const int d = j * 8 + tig * 2;
            oh[(int64_t)d * t + q] = acc[j][2 * r] * sum[r];
            oh[(int64_t)(d + 1) * t + q] = acc[j][2 * r + 1] * sum[r];
        }
    }
}

avo_status cu_attention_half(cu_impl *cu, avo_arena *a, const float *q, const float *k, const float *v, float *o,
                             int64_t heads, int64_t kc, int64_t t, float scale, bool *ran, avo_error *err) {
    *ran = false;
    if (cu->cc_major < 8 || kc != FA_D || t < 1 || t > (INT32_MAX / 2) || heads < 1 || heads > 65535) return AVO_OK;
    const int64_t tp = (t + FA_BQ - 1) / FA_BQ * FA_BQ, per = heads * tp * FA_D;
    void *buf = NULL;
    avo_status st = cu_scratch(cu, a, (size_t)(3 * per) * sizeof(__half), &buf, err);
    if (st) return st;
    __half *qh = (__half *)buf, *kh = qh + per, *vh = kh + per;
    const dim3 pg((unsigned)(tp / 64), (unsigned)heads);
    k_fa_pack_rows<<<pg, 256, 0, cu->stream>>>(q, qh, (int)t, (int)tp, scale * 1.4426950408889634f);
    k_fa_pack_rows<<<pg, 256, 0, cu->stream>>>(k, kh, (int)t, (int)tp, 1.0f);
    int64_t nb = (per + 255) / 256, cap = (int64_t)(cu->n_sm > 0 ? cu->n_sm : 80) * 16;
    k_fa_pack_cols<<<(unsigned)(nb < cap ? nb : cap), 256, 0, cu->stream>>>(v, vh, heads * FA_D, (int)t, (int)tp);
    k_flash_att<<<dim3((unsigned)(tp / FA_BQ), (unsigned)heads), FA_THREADS, 0, cu->stream>>>(qh, kh, vh, o, (int)t,
                                                                                            (int)tp);
    cu->gemm_fp16++; /* the products ran on half operands: counted as one half GEMM */
    *ran = true;
    return cu_check_launch("attention (fused, half)", err);
}
