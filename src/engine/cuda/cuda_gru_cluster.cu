/* BiGRU recurrence on Hopper (sm_90) as one thread-block cluster per direction.
 *
 * The cooperative kernel (cuda_kernels.cu) spreads W_hh over blocks and meets at a grid-wide barrier
 * every step: RMVPE's BiGRU (H 256, 3008 steps) took 25 ms of its 36 ms of device time on an H100,
 * about 8 us a step, most of it the grid barrier and the round trip of h through L2.
 *
 * Here a direction is a cluster of 8 blocks. Block r owns units [32 r, 32 r + 32): its 96 rows of
 * W_hh (r, z, n gates) live in registers (warp w holds rows 12 w .. 12 w + 11, lane l columns
 * l + 32 j), and every block keeps a full copy of h in its shared memory. A step: each warp's 12 dot
 * products (h from shared memory), the 32 units' gates by the first warp, the new h values written
 * into all 8 blocks' shared memory (distributed shared memory, two buffers by step parity), then one
 * cluster barrier. h never leaves the SMs and no block waits on the rest of the grid. FP32 throughout,
 * the gate formulas as the other kernels. Measured on an H100: RMVPE's BiGRU 25.1 -> 3.5 ms (about
 * 1.2 us a step), RMVPE FP16 end to end 48.9 -> 24.6 ms. */
#include "engine/cuda/cuda_internal.h"

#include <cooperative_groups.h>
#include <math.h>

#define GC_BLOCKS 8 /* blocks per cluster (the portable maximum) */
#define GC_H 256    /* hidden size this kernel takes */
#define GC_UNITS (GC_H / GC_BLOCKS)
#define GC_THREADS 256
#define GC_ROWS_PER_WARP (3 * GC_UNITS / (GC_THREADS / 32))
#define GC_COLS (GC_H / 32)

__device__ __forceinline__ float gc_sigm(float v) { return 1.0f / (1.0f + expf(-v)); }

/* gx [2][t][3H]: the input projections with b_ih; out [t, 2H]. Grid 2 clusters of GC_BLOCKS. */
__global__ void __launch_bounds__(GC_THREADS, 1) k_gru_cluster(const float *gx, const float *whh0, const float *whh1,
                                                               const float *bhh0, const float *bhh1, int t, float *out) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    __shared__ float hb[2][GC_H];
    __shared__ float gh[3 * GC_UNITS];
    const int rank = (int)cluster.block_rank(), d = blockIdx.x / GC_BLOCKS;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, u0 = rank * GC_UNITS;
    const float *W = d ? whh1 : whh0, *bh = d ? bhh1 : bhh0, *G = gx + (int64_t)d * t * 3 * GC_H;
    float w[GC_ROWS_PER_WARP][GC_COLS], bias[GC_ROWS_PER_WARP];
#pragma unroll
    for (int i = 0; i < GC_ROWS_PER_WARP; i++) {
        const int r = warp * GC_ROWS_PER_WARP + i, g = r / GC_UNITS, u = u0 + r % GC_UNITS;
        const float *wr = W + ((int64_t)g * GC_H + u) * GC_H;
#pragma unroll
        for (int j = 0; j < GC_COLS; j++) w[i][j] = wr[lane + 32 * j];
        bias[i] = bh ? bh[g * GC_H + u] : 0.0f;
    }
    for (int k = tid; k < GC_H; k += GC_THREADS) hb[0][k] = 0.0f;
    float *remote[GC_BLOCKS]; /* hb[0] of every block of the cluster, this one included */
#pragma unroll
    for (int q = 0; q < GC_BLOCKS; q++) remote[q] = cluster.map_shared_rank(&hb[0][0], q);
    /* the gate inputs of the first step, then always one step ahead */
    float gr = 0.0f, gz = 0.0f, gn = 0.0f;
    if (tid < GC_UNITS) {
        const float *g0 = G + (int64_t)(d ? t - 1 : 0) * 3 * GC_H + u0 + tid;
        gr = g0[0], gz = g0[GC_H], gn = g0[2 * GC_H];
    }
    cluster.sync(); /* every block runs and has zeroed h before anyone writes into it */
    for (int step = 0; step < t; step++) {
        const int cur = step & 1, ti = d ? t - 1 - step : step;
        float hv[GC_COLS];
#pragma unroll
        for (int j = 0; j < GC_COLS; j++) hv[j] = hb[cur][lane + 32 * j];
#pragma unroll
        for (int i = 0; i < GC_ROWS_PER_WARP; i++) {
            float acc = 0.0f;
#pragma unroll
            for (int j = 0; j < GC_COLS; j++) acc += w[i][j] * hv[j];
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
            if (lane == i) gh[warp * GC_ROWS_PER_WARP + i] = acc + bias[i];
        }
        __syncthreads();
        if (tid < GC_UNITS) {
            const int u = u0 + tid;
            const float r = gc_sigm(gr + gh[tid]);
            const float z = gc_sigm(gz + gh[GC_UNITS + tid]);
            const float n = tanhf(gn + r * gh[2 * GC_UNITS + tid]);
            const float hn = (1.0f - z) * n + z * hb[cur][u];
            out[(int64_t)ti * 2 * GC_H + (int64_t)d * GC_H + u] = hn;
            const int nxt = (cur ^ 1) * GC_H + u;
#pragma unroll
            for (int q = 0; q < GC_BLOCKS; q++) remote[q][nxt] = hn;
            if (step + 1 < t) { /* next step's gate inputs, loaded while the cluster meets */
                const float *g1 = G + (int64_t)(d ? ti - 1 : ti + 1) * 3 * GC_H + u;
                gr = g1[0], gz = g1[GC_H], gn = g1[2 * GC_H];
            }
        }
        cluster.sync(); /* the new h is in every block; gh and hb[cur] may be overwritten */
    }
#else
    (void)gx, (void)whh0, (void)whh1, (void)bhh0, (void)bhh1, (void)t, (void)out;
#endif
}

bool cu_gru_cluster(cu_impl *cu, const float *gx, const float *whh0, const float *whh1, const float *bhh0,
                    const float *bhh1, int64_t t, int64_t h, float *out) {
    if (cu->cc_major < 9 || h != GC_H || t < 1 || t > INT32_MAX / 2 || cu->gru_cluster < 0 || cu->no_gru_cluster)
        return false;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(2 * GC_BLOCKS);
    cfg.blockDim = dim3(GC_THREADS);
    cfg.dynamicSmemBytes = 0;
    cfg.stream = cu->stream;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeClusterDimension;
    at[0].val.clusterDim.x = GC_BLOCKS;
    at[0].val.clusterDim.y = 1;
    at[0].val.clusterDim.z = 1;
    cfg.attrs = at;
    cfg.numAttrs = 1;
    int ti = (int)t;
    if (cudaLaunchKernelEx(&cfg, k_gru_cluster, gx, whh0, whh1, bhh0, bhh1, ti, out) != cudaSuccess) {
        cudaGetLastError(); /* no clusters here after all: the other kernels from now on */
        cu->gru_cluster = -1;
        return false;
    }
    return true;
}
