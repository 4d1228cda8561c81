/* conv1d in FP16 mode as an implicit GEMM on the tensor cores: Y[co, n] = b[co] + sum over taps kk and
 * input channels ci of W[co, ci, kk] X[ci, n*s + kk*d - pad], per group.
 *
 * The im2col path writes and reads a column matrix K times the size of x (11x for HiFi-GAN's widest
 * resblock kernel), which made the vocoder's convolutions memory-bound. Here a block stages one
 * window of x (the input frames its output tile reads, all taps together) and the weights of a few
 * taps in shared memory, in half, and every tap's product reads the same window at a shifted row.
 *
 * Tile: 64 output channels x 128 output frames per block of 8 warps (2 x 4), each warp 32 x 32 as
 * 2 x 4 mma.sync.m16n8k16 (f16 operands, f32 accumulators); input channels in chunks of 32, taps in
 * groups of 4. Shared rows are 40 halves (80 bytes): the fragment loads of a warp hit 32 distinct
 * banks at stride 1. x is stored frame-major ([frame][channel]) so that a fragment's two halves
 * along K are one aligned 32-bit load whatever the shift.
 *
 * Fused form (conv1d_fused): the input's leaky ReLU is applied as the window is staged (each x value
 * once per block, where a separate pass would write and read all of x again) and a residual is added
 * with the bias in the epilogue. */
#include "engine/cuda/cuda_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MMA_BM 64
#define MMA_BN 128
#define MMA_BK 32
#define MMA_LDS (MMA_BK + 8)
#define MMA_THREADS 256
#define MMA_SMEM_MAX ((size_t)100 * 1024) /* two blocks per SM */

__global__ void k_repack_taps(const float *w, __half *wt, int64_t g, int64_t cog, int64_t cig, int64_t k) {
    int64_t n = g * cog * cig * k;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ci = i % cig, co = (i / cig) % cog, kk = (i / (cig * cog)) % k, gg = i / (cig * cog * k);
        wt[i] = __float2half_rn(w[((gg * cog + co) * cig + ci) * k + kk]);
    }
}

void cu_launch_repack_taps(cu_impl *cu, const float *w, __half *wt, int64_t g, int64_t cog, int64_t cig, int64_t k) {
    int64_t n = g * cog * cig * k, b = (n + 255) / 256, cap = (int64_t)(cu->n_sm > 0 ? cu->n_sm : 80) * 16;
    if (n <= 0) return;
    k_repack_taps<<<(unsigned)(b < cap ? b : cap), 256, 0, cu->stream>>>(w, wt, g, cog, cig, k);
}

__device__ __forceinline__ uint32_t ld_h2(const __half *p) { return *(const uint32_t *)p; }

__device__ __forceinline__ void mma_16816(float c[4], const uint32_t a[4], const uint32_t b[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    (void)c, (void)a, (void)b; /* never launched below sm_80 (cu_conv1d_mma checks) */
#endif
}

/* span = (MMA_BN - 1) * s + (k - 1) * d + 1 input frames per output tile; kt taps of weights staged per
 * round (all of them when they fit). VEC_W: 16-byte weight loads (input channels per group a multiple
 * of 8). Loads of a stage are unrolled so that several are in flight per thread: the kernel's time
 * went to serialised global-memory latency when each iteration waited for its load. */
template <bool VEC_W>
__global__ void __launch_bounds__(MMA_THREADS) k_conv1d_mma(const float *x, const __half *wt, const float *bias, float *y,
                                                            int cig, int cog, int t, int tout, int k, int s, int d,
                                                            int pad, int span, int kt, bool act, float slope,
                                                            const float *res) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __half *xs = (__half *)smem_raw;              /* [span][MMA_LDS] */
    __half *ws = xs + (size_t)span * MMA_LDS;     /* [kt][MMA_BM][MMA_LDS] */
    const int g = blockIdx.z, n0 = blockIdx.x * MMA_BN, co0 = blockIdx.y * MMA_BM;
    const float *xg = x + (int64_t)g * cig * t;
    const __half *wg = wt + (int64_t)g * k * cog * cig;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp >> 2, wn = warp & 3, gid = lane >> 2, tig = lane & 3;
    float acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;
    const int64_t src0 = (int64_t)n0 * s - pad;
    for (int ci0 = 0; ci0 < cig; ci0 += MMA_BK) {
        __syncthreads(); /* the previous chunk's reads of xs and ws are done */
        /* x window: warp w stages channel pairs w and w + 8 of the chunk, lanes along the frames */
        for (int pp = warp; pp < MMA_BK / 2; pp += MMA_THREADS / 32) {
            const int c = 2 * pp;
            const bool ok0 = ci0 + c < cig, ok1 = ci0 + c + 1 < cig;
            const float *x0 = xg + (int64_t)(ci0 + (ok0 ? c : 0)) * t, *x1 = xg + (int64_t)(ci0 + (ok1 ? c + 1 : 0)) * t;
#pragma unroll 4
            for (int r = lane; r < span; r += 32) {
                const int64_t src = src0 + r;
                const bool in = src >= 0 && src < t;
                float v0 = in && ok0 ? __ldg(x0 + src) : 0.0f, v1 = in && ok1 ? __ldg(x1 + src) : 0.0f;
                if (act) { /* the fused input activation (zero padding stays zero) */
                    v0 = v0 > 0.0f ? v0 : v0 * slope;
                    v1 = v1 > 0.0f ? v1 : v1 * slope;
                }
                *(__half2 *)(xs + r * MMA_LDS + c) = __floats2half2_rn(v0, v1);
            }
        }
        for (int kk0 = 0; kk0 < k; kk0 += kt) {
            const int nt = k - kk0 < kt ? k - kk0 : kt;
            if (kk0 > 0) __syncthreads(); /* the previous taps' reads of ws are done */
            if (VEC_W) {
                const int nvec = nt * MMA_BM * (MMA_BK / 8);
#pragma unroll 4
                for (int i = tid; i < nvec; i += MMA_THREADS) {
                    const int v = i & 3, m = (i >> 2) & (MMA_BM - 1), j = i >> 8;
                    const int co = co0 + m, ci = ci0 + v * 8;
                    uint4 val = make_uint4(0u, 0u, 0u, 0u);
                    if (co < cog && ci < cig) val = __ldg((const uint4 *)(wg + ((int64_t)(kk0 + j) * cog + co) * cig + ci));
                    *(uint4 *)(ws + (j * MMA_BM + m) * MMA_LDS + v * 8) = val;
                }
            } else {
#pragma unroll 4
                for (int i = tid; i < nt * MMA_BM * MMA_BK; i += MMA_THREADS) {
                    const int c = i % MMA_BK, m = (i / MMA_BK) % MMA_BM, j = i / (MMA_BK * MMA_BM);
                    const int co = co0 + m, ci = ci0 + c;
                    __half v = __float2half_rn(0.0f);
                    if (co < cog && ci < cig) v = wg[((int64_t)(kk0 + j) * cog + co) * cig + ci];
                    ws[(j * MMA_BM + m) * MMA_LDS + c] = v;
                }
            }
            __syncthreads();
            for (int j = 0; j < nt; j++) {
                const int roff = (kk0 + j) * d;
                const __half *wj = ws + (size_t)j * MMA_BM * MMA_LDS;
#pragma unroll
                for (int kb = 0; kb < MMA_BK; kb += 16) {
                    uint32_t a[2][4], b[4][2];
#pragma unroll
                    for (int mt = 0; mt < 2; mt++) {
                        const __half *ar = wj + (wm * 32 + mt * 16 + gid) * MMA_LDS + kb + tig * 2;
                        a[mt][0] = ld_h2(ar);
                        a[mt][1] = ld_h2(ar + 8 * MMA_LDS);
                        a[mt][2] = ld_h2(ar + 8);
                        a[mt][3] = ld_h2(ar + 8 * MMA_LDS + 8);
                    }
#pragma unroll
                    for (int q = 0; q < 4; q++) {
                        const int n = wn * 32 + q * 8 + gid;
                        const __half *br = xs + (n * s + roff) * MMA_LDS + kb + tig * 2;
                        b[q][0] = ld_h2(br);
                        b[q][1] = ld_h2(br + 8);
                    }
#pragma unroll
                    for (int mt = 0; mt < 2; mt++)
#pragma unroll
                        for (int q = 0; q < 4; q++) mma_16816(acc[mt][q], a[mt], b[q]);
                }
            }
        }
    }
    const bool pair = (tout & 1) == 0; /* n is even: two neighbours are one aligned 8-byte store */
#pragma unroll
    for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int hrow = 0; hrow < 2; hrow++) {
            const int co = co0 + wm * 32 + mt * 16 + gid + hrow * 8;
            if (co >= cog) continue;
            const float bv = bias ? bias[(int64_t)g * cog + co] : 0.0f;
            float *yr = y + ((int64_t)g * cog + co) * tout;
            const float *rr = res ? res + ((int64_t)g * cog + co) * tout : NULL;
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const int n = n0 + wn * 32 + q * 8 + tig * 2;
                float v0 = acc[mt][q][hrow * 2] + bv, v1 = acc[mt][q][hrow * 2 + 1] + bv;
                if (rr) { /* the fused residual */
                    if (n < tout) v0 += rr[n];
                    if (n + 1 < tout) v1 += rr[n + 1];
                }
                if (pair && n + 1 < tout) {
                    *(float2 *)(yr + n) = make_float2(v0, v1);
                } else {
                    if (n < tout) yr[n] = v0;
                    if (n + 1 < tout) yr[n + 1] = v1;
                }
            }
        }
}

static bool env_off(const char *name) {
    const char *v = getenv(name);
    return v && (!strcmp(v, "0") || !strcmp(v, "off"));
}

bool cu_conv1d_mma(cu_impl *cu, const float *x, const avo_tensor *w, const float *bias, float *y, int64_t cin,
                   int64_t t, int64_t cout, int64_t k, int64_t tout, int64_t g, int64_t s, int64_t d, int64_t pad,
                   bool act, float slope, const float *res) {
    if (cu->conv_mma == 0) cu->conv_mma = cu->cc_major >= 8 && !env_off("AVO_CUDA_CONV_MMA") ? 1 : -1;
    if (cu->conv_mma < 0) return false;
    int64_t cig = cin / g, cog = cout / g;
    /* narrow inputs leave most of each K step empty: the column path does better there */
    if (cig < 16 || k < 1 || t > INT32_MAX / 2 || tout > INT32_MAX / 2 || cig * t > ((int64_t)1 << 40)) return false;
    int64_t span = (int64_t)(MMA_BN - 1) * s + (k - 1) * d + 1;
    const size_t row = MMA_LDS * sizeof(__half), tap = (size_t)MMA_BM * row;
    /* all taps' weights at once when they fit in the budget (at most 2 blocks per SM otherwise) */
    if ((size_t)span * row + tap > MMA_SMEM_MAX) return false;
    int64_t kt = (int64_t)((MMA_SMEM_MAX - (size_t)span * row) / tap);
    if (kt > k) kt = k;
    size_t smem = (size_t)span * row + (size_t)kt * tap;
    if (smem > (size_t)cu->smem_optin) return false;
    if ((int64_t)cu->conv_mma_smem < (int64_t)smem) {
        int want = (int)(cu->smem_optin < (int)MMA_SMEM_MAX ? cu->smem_optin : (int)MMA_SMEM_MAX);
        if (cudaFuncSetAttribute(k_conv1d_mma<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, want) != cudaSuccess ||
            cudaFuncSetAttribute(k_conv1d_mma<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, want) != cudaSuccess) {
            cudaGetLastError();
            cu->conv_mma = -1;
            return false;
        }
        cu->conv_mma_smem = want;
    }
    const __half *wt = cu_half_weight_taps(cu, w, g);
    if (!wt) return false;
    int64_t gx = (tout + MMA_BN - 1) / MMA_BN, gy = (cog + MMA_BM - 1) / MMA_BM;
    if (gx > INT32_MAX || gy > 65535 || g > 65535) return false;
    dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)g);
    if (cig % 8 == 0)
        k_conv1d_mma<true><<<grid, MMA_THREADS, smem, cu->stream>>>(x, wt, bias, y, (int)cig, (int)cog, (int)t, (int)tout,
                                                                    (int)k, (int)s, (int)d, (int)pad, (int)span, (int)kt, act, slope,
                                                                    res);
    else
        k_conv1d_mma<false><<<grid, MMA_THREADS, smem, cu->stream>>>(x, wt, bias, y, (int)cig, (int)cog, (int)t, (int)tout,
                                                                     (int)k, (int)s, (int)d, (int)pad, (int)span, (int)kt, act, slope,
                                                                     res);
    cu->gemm_fp16++;
    return true;
}
