/* CUDA 2-D operators on [C, H, W] tensors (engine.h, "2-D operators"), as cpu_ops2d.c:
 * conv2d by im2col over tiles of output pixels + cuBLAS GEMMs batched over groups, then one
 * epilogue pass for bias, ReLU and residual in the CPU's order; conv_transpose2d by one GEMM per
 * tile of input rows (each input pixel's contribution per tap) and a gather (col2im without atomics)
 * that adds the bias first and applies the ReLU after the last tile; pool2d and transpose01 as
 * direct kernels. FP16 mode covers the two GEMM-based ones like conv1d. */
#include "engine/cuda/cuda_internal.h"

#include <limits.h>
#include <math.h>

#define CU_COLS2D_MAX ((int64_t)32 << 20) /* column scratch elements per tile */

#define TRY(expr)                       \
    do {                                \
        avo_status st_ = (expr);        \
        if (st_ != AVO_OK) return st_; \
    } while (0)

static size_t f32_bytes(const avo_tensor *t) { return (size_t)avo_tensor_numel(t) * sizeof(float); }

/* ---- conv2d --------------------------------------------------------------------------------- */

/* cols[(ch*KH + kh)*KW + kw][p - p0] = x[ch, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw] (0 outside) for
 * output pixels p = oh*Wo + ow in [p0, p0 + n); ch runs over all input channels (groups in order). */
template <typename T>
__global__ void k_im2col2d(const float *x, int64_t rows, int h, int w, int kh_, int kw_, int wo, int sh, int sw, int ph,
                           int pw, int dh, int dw, int64_t p0, int64_t n, T *cols) {
    ROW_LOOP(row, rows) {
        int kw = (int)(row % kw_), kh = (int)(row / kw_ % kh_);
        int64_t ch = row / ((int64_t)kh_ * kw_);
        const float *xc = x + ch * h * w;
        T *cr = cols + row * n;
        COL_LOOP(i, n) {
            int pix = (int)(p0 + i), oh = pix / wo, ow = pix - oh * wo;
            int iy = oh * sh - ph + kh * dh, ix = ow * sw - pw + kw * dw;
            float v = iy >= 0 && iy < h && ix >= 0 && ix < w ? xc[(int64_t)iy * w + ix] : 0.0f;
            if constexpr (sizeof(T) == 2)
                cr[i] = __float2half_rn(v);
            else
                cr[i] = v;
        }
    }
}

/* y = relu?(y + b) + r, in the CPU epilogue's order. */
__global__ void k_epilogue2d(float *y, const float *b, const float *r, int relu, int64_t rows, int64_t n) {
    ROW_LOOP(o, rows) {
        float bias = b ? b[o] : 0.0f;
        COL_LOOP(i, n) {
            int64_t at = o * n + i;
            float v = y[at];
            if (relu && r)
                v = fmaxf(v + bias, 0.0f) + r[at];
            else if (relu)
                v = fmaxf(v + bias, 0.0f);
            else if (r)
                v = v + bias + r[at];
            else
                v += bias;
            y[at] = v;
        }
    }
}

/* 3x3, stride 1, padding 1, groups 1 with few channels (RMVPE's encoder and decoder levels of 16 to 64
 * channels over 3008 x 128 down to 752 x 32 pixels) as a direct FP32 kernel: there the im2col matrix is
 * 9 times the input and the GEMM has 16 to 64 rows, which left cuBLAS at 7 TFLOP/s (247 us for a
 * 16 -> 16 layer at 3008 x 128 in FP16 mode, 14 such calls). A block computes a 32 x 32 pixel tile for
 * 16 output channels, each thread a column of 4 pixels: input channels in chunks of 8 staged with
 * their halo in shared memory, each chunk's weights beside them padded to 12 per (output, input)
 * channel so that a thread reads them as three 16-byte broadcasts, 576 multiply-adds per thread and
 * input channel from 18 + 48 shared loads. Bias, ReLU and residual in the epilogue in the CPU's order.
 * Measured on an H100 (14 calls each, FP16 mode): 16 -> 16 at 3008 x 128 1.58 ms (im2col + half GEMM
 * 3.46 ms), 32 -> 32 at 1504 x 64 1.47 ms (1.72); RMVPE FP16 28.0 -> 24.6 ms. A first version with one
 * pixel a thread was within 6% of this one: the staging of each chunk, not the shared loads, bounds
 * it now. */
#define C2_TW 32
#define C2_RT 4 /* rows per thread */
#define C2_TH (8 * C2_RT)
#define C2_CO 16
#define C2_CI 8
#define C2_WK 12
__global__ void __launch_bounds__(C2_TW * 8) k_conv2d_3x3(const float *x, const float *w, const float *b, const float *r,
                                                         float *y, int cin, int cout, int h, int wd, int relu) {
    __shared__ float xs[C2_CI][C2_TH + 2][C2_TW + 2];
    __shared__ __align__(16) float ws[C2_CO][C2_CI][C2_WK];
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * C2_TW + tx, nt = C2_TW * 8;
    const int x0 = blockIdx.x * C2_TW, y0 = blockIdx.y * C2_TH, co0 = blockIdx.z * C2_CO;
    const int64_t plane = (int64_t)h * wd;
    float acc[C2_CO][C2_RT];
#pragma unroll
    for (int c = 0; c < C2_CO; c++)
#pragma unroll
        for (int q = 0; q < C2_RT; q++) acc[c][q] = 0.0f;
    for (int ci0 = 0; ci0 < cin; ci0 += C2_CI) {
        __syncthreads(); /* the previous chunk's reads are done */
        for (int i = tid; i < C2_CI * (C2_TH + 2) * (C2_TW + 2); i += nt) {
            const int c = i / ((C2_TH + 2) * (C2_TW + 2)), rem = i - c * (C2_TH + 2) * (C2_TW + 2);
            const int yy = rem / (C2_TW + 2), xx = rem - yy * (C2_TW + 2);
            const int iy = y0 + yy - 1, ix = x0 + xx - 1;
            float v = 0.0f;
            if (ci0 + c < cin && iy >= 0 && iy < h && ix >= 0 && ix < wd) v = x[(ci0 + c) * plane + (int64_t)iy * wd + ix];
            xs[c][yy][xx] = v;
        }
        for (int i = tid; i < C2_CO * C2_CI * C2_WK; i += nt) {
            const int co = i / (C2_CI * C2_WK), rem = i - co * C2_CI * C2_WK, c = rem / C2_WK, k = rem - c * C2_WK;
            ws[co][c][k] = k < 9 && co0 + co < cout && ci0 + c < cin
                               ? w[((int64_t)(co0 + co) * cin + ci0 + c) * 9 + k]
                               : 0.0f;
        }
        __syncthreads();
        for (int c = 0; c < C2_CI; c++) {
            float v[C2_RT + 2][3];
#pragma unroll
            for (int i = 0; i < C2_RT + 2; i++)
#pragma unroll
                for (int j = 0; j < 3; j++) v[i][j] = xs[c][ty * C2_RT + i][tx + j];
#pragma unroll
            for (int co = 0; co < C2_CO; co++) {
                const float4 *wp = (const float4 *)&ws[co][c][0];
                const float4 a = wp[0], bb = wp[1], cc = wp[2];
#pragma unroll
                for (int q = 0; q < C2_RT; q++) {
                    float s = acc[co][q];
                    s += a.x * v[q][0] + a.y * v[q][1] + a.z * v[q][2];
                    s += a.w * v[q + 1][0] + bb.x * v[q + 1][1] + bb.y * v[q + 1][2];
                    s += bb.z * v[q + 2][0] + bb.w * v[q + 2][1] + cc.x * v[q + 2][2];
                    acc[co][q] = s;
                }
            }
        }
    }
    const int ox = x0 + tx;
    if (ox >= wd) return;
#pragma unroll
    for (int co = 0; co < C2_CO; co++) {
        if (co0 + co >= cout) break;
        const float bias = b ? b[co0 + co] : 0.0f;
#pragma unroll
        for (int q = 0; q < C2_RT; q++) {
            const int oy = y0 + ty * C2_RT + q;
            if (oy >= h) break;
            const int64_t at = (co0 + co) * plane + (int64_t)oy * wd + ox;
            float v = acc[co][q];
            if (relu && r)
                v = fmaxf(v + bias, 0.0f) + r[at];
            else if (relu)
                v = fmaxf(v + bias, 0.0f);
            else if (r)
                v = v + bias + r[at];
            else
                v += bias;
            y[at] = v;
        }
    }
}

/* FP32 mode: up to 64 channels (faster than im2col + SGEMM at all three RMVPE levels); FP16 mode: up to
 * 32, since the half GEMM was faster at 64 channels (0.88 ms against 1.36 for 14 calls, H100). */
static bool conv2d_direct_fits(int64_t cin, int64_t cout, int64_t kh, int64_t kw, const avo_conv2d_params *p, int64_t h,
                               int64_t wd, int64_t ho, int64_t wo, bool half) {
    const int64_t cmax = half ? 32 : 64;
    return kh == 3 && kw == 3 && p->stride[0] == 1 && p->stride[1] == 1 && p->padding[0] == 1 && p->padding[1] == 1 &&
           p->dilation[0] == 1 && p->dilation[1] == 1 && p->groups == 1 && ho == h && wo == wd && cin >= 1 &&
           cin <= cmax && cout <= cmax && (h + C2_TH - 1) / C2_TH <= 65535 && cin * h * wd < ((int64_t)1 << 31) &&
           cout * h * wd < ((int64_t)1 << 31);
}

static avo_status cu_conv2d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w, const avo_tensor *b,
                            const avo_conv2d_params *p, const avo_tensor *residual, avo_tensor *y, avo_error *err) {
    cu_impl *cu = cu_of(be);
    TRY(cu_check_sticky(cu, "conv2d", err));
    int64_t cin = x->shape[0], h = x->shape[1], wd = x->shape[2];
    int64_t cout = w->shape[0], kh = w->shape[2], kw = w->shape[3];
    int64_t ho = y->shape[1], wo = y->shape[2], hw = ho * wo;
    int64_t g = p->groups, cig = cin / g, cog = cout / g, kdim = cig * kh * kw;
    const float *X = (const float *)x->data, *W = (const float *)w->data, *B = b ? (const float *)b->data : NULL;
    const float *R = residual ? (const float *)residual->data : NULL;
    float *Y = (float *)y->data;
    cu_note_write(cu, Y, f32_bytes(y));
    if (cout == 0 || hw == 0) return AVO_OK;
    if (h * wd > INT_MAX || hw > INT_MAX)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "cuda: conv2d planes of more than 2^31 pixels");
    if (!cu->no_direct2d && conv2d_direct_fits(cin, cout, kh, kw, p, x->shape[1], x->shape[2], ho, wo, cu_half_mode(cu))) {
        dim3 grid((unsigned)((wd + C2_TW - 1) / C2_TW), (unsigned)((h + C2_TH - 1) / C2_TH),
                  (unsigned)((cout + C2_CO - 1) / C2_CO)),
            block(C2_TW, 8);
        k_conv2d_3x3<<<grid, block, 0, cu->stream>>>(X, W, B, R, Y, (int)cin, (int)cout, (int)h, (int)wd, p->relu ? 1 : 0);
        return cu_check_launch("conv2d", err);
    }
    const __half *wh = cu_half_mode(cu) && kdim > 0 ? cu_half_weight_get(cu, w) : NULL;
    bool plain = kh == 1 && kw == 1 && p->stride[0] == 1 && p->stride[1] == 1 && p->padding[0] == 0 && p->padding[1] == 0;
    if (kdim == 0) {
        cudaMemsetAsync(Y, 0, f32_bytes(y), cu->stream);
    } else if (plain) { /* x is already the column matrix */
        if (wh) {
            __half *xh = NULL;
            TRY(cu_to_half_scratch(cu, a, X, cin * h * wd, &xh, err));
            TRY(cu_hgemm(cu, false, false, (int)cog, (int)hw, (int)cig, 1.0f, wh, (int)cig, cog * cig, xh, (int)hw, cig * hw,
                         0.0f, Y, (int)hw, cog * hw, (int)g, err));
        } else {
            TRY(cu_sgemm(cu, false, false, (int)cog, (int)hw, (int)cig, 1.0f, W, (int)cig, cog * cig, X, (int)hw, cig * hw,
                         0.0f, Y, (int)hw, cog * hw, (int)g, err));
        }
    } else {
        int64_t tile = CU_COLS2D_MAX / (g * kdim);
        if (tile < 256) tile = 256;
        if (tile > hw) tile = hw;
        void *cols = NULL;
        TRY(cu_scratch(cu, a, (size_t)(g * kdim * tile) * (wh ? sizeof(__half) : sizeof(float)), &cols, err));
        int64_t rows = g * kdim;
        for (int64_t p0 = 0; p0 < hw; p0 += tile) {
            int64_t n = hw - p0 < tile ? hw - p0 : tile;
            if (wh) {
                k_im2col2d<__half><<<CU_ROWS(cu, rows, n), 0, cu->stream>>>(
                    X, rows, (int)h, (int)wd, (int)kh, (int)kw, (int)wo, p->stride[0], p->stride[1], p->padding[0],
                    p->padding[1], p->dilation[0], p->dilation[1], p0, n, (__half *)cols);
                TRY(cu_hgemm(cu, false, false, (int)cog, (int)n, (int)kdim, 1.0f, wh, (int)kdim, cog * kdim,
                             (const __half *)cols, (int)n, kdim * n, 0.0f, Y + p0, (int)hw, cog * hw, (int)g, err));
            } else {
                k_im2col2d<float><<<CU_ROWS(cu, rows, n), 0, cu->stream>>>(
                    X, rows, (int)h, (int)wd, (int)kh, (int)kw, (int)wo, p->stride[0], p->stride[1], p->padding[0],
                    p->padding[1], p->dilation[0], p->dilation[1], p0, n, (float *)cols);
                TRY(cu_sgemm(cu, false, false, (int)cog, (int)n, (int)kdim, 1.0f, W, (int)kdim, cog * kdim,
                             (const float *)cols, (int)n, kdim * n, 0.0f, Y + p0, (int)hw, cog * hw, (int)g, err));
            }
        }
    }
    if (B || R || p->relu)
        k_epilogue2d<<<CU_ROWS(cu, cout, hw), 0, cu->stream>>>(Y, B, R, p->relu ? 1 : 0, cout, hw);
    return cu_check_launch("conv2d", err);
}

/* ---- conv_transpose2d ------------------------------------------------------------------------ */

/* Output (o, oy, ox) gathers tap (kh, kw) of input pixel (iy, ix) when iy*sh - ph + kh = oy and
 * ix*sw - pw + kw = ox, for input rows r0 <= iy < r1 of this tile. cols rows are o*KH*KW + kh*KW + kw
 * with (iy - r0)*W + ix along them. */
__global__ void k_col2im2d(const float *cols, const float *bias, float *y, int64_t cout, int ho, int wo, int kh_, int kw_,
                           int sh, int sw, int ph, int pw, int w, int r0, int r1, bool first, bool last, int relu) {
    int64_t n = (int64_t)(r1 - r0) * w, taps = (int64_t)kh_ * kw_;
    ROW_LOOP(row, cout * ho) {
        int64_t o = row / ho;
        int oy = (int)(row - o * ho);
        const float *co = cols + o * taps * n;
        float b0 = first && bias ? bias[o] : 0.0f;
        float *yr = y + row * wo;
        COL_LOOP(ox, wo) {
            float acc = 0.0f;
            /* the taps that land here: kh = (oy + ph) mod sh, then every sh-th (kw likewise) */
            for (int kh = (oy + ph) % sh; kh < kh_; kh += sh) {
                int ny = oy + ph - kh;
                if (ny < 0) break;
                int iy = ny / sh;
                if (iy >= r1) continue;
                if (iy < r0) break;
                for (int kw = ((int)ox + pw) % sw; kw < kw_; kw += sw) {
                    int nx = (int)ox + pw - kw;
                    if (nx < 0) break;
                    int ix = nx / sw;
                    if (ix >= w) continue;
                    acc += co[((int64_t)kh * kw_ + kw) * n + (int64_t)(iy - r0) * w + ix];
                }
            }
            float v = (first ? b0 : yr[ox]) + acc;
            if (last && relu) v = fmaxf(v, 0.0f);
            yr[ox] = v;
        }
    }
}

static avo_status cu_conv_transpose2d(avo_backend *be, avo_arena *a, const avo_tensor *x, const avo_tensor *w,
                                      const avo_tensor *b, const avo_conv_transpose2d_params *p, avo_tensor *y,
                                      avo_error *err) {
    cu_impl *cu = cu_of(be);
    TRY(cu_check_sticky(cu, "conv_transpose2d", err));
    int64_t cin = x->shape[0], h = x->shape[1], wd = x->shape[2];
    int64_t cout = w->shape[1], kh = w->shape[2], kw = w->shape[3], ho = y->shape[1], wo = y->shape[2];
    int64_t taps = kh * kw, rows = cout * taps;
    const float *X = (const float *)x->data, *W = (const float *)w->data, *B = b ? (const float *)b->data : NULL;
    float *Y = (float *)y->data;
    cu_note_write(cu, Y, f32_bytes(y));
    if (cout == 0 || ho * wo == 0) return AVO_OK;
    if (h * wd > INT_MAX || ho * wo > INT_MAX || ho > INT_MAX / 2)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "cuda: conv_transpose2d planes of more than 2^31 pixels");
    const __half *wh = cu_half_mode(cu) && cin > 0 ? cu_half_weight_get(cu, w) : NULL;
    __half *xh = NULL;
    if (wh) TRY(cu_to_half_scratch(cu, a, X, cin * h * wd, &xh, err));
    int64_t tile = CU_COLS2D_MAX / (rows * wd > 0 ? rows * wd : 1); /* input rows per tile */
    if (tile < 1) tile = 1;
    if (tile > h) tile = h;
    void *cols = NULL;
    TRY(cu_scratch(cu, a, (size_t)(rows * tile * wd) * sizeof(float), &cols, err));
    for (int64_t r0 = 0; r0 < h; r0 += tile) {
        int64_t r1 = r0 + tile < h ? r0 + tile : h, n = (r1 - r0) * wd;
        if (cin == 0)
            cudaMemsetAsync(cols, 0, (size_t)(rows * n) * sizeof(float), cu->stream);
        else if (wh)
            TRY(cu_hgemm(cu, true, false, (int)rows, (int)n, (int)cin, 1.0f, wh, (int)rows, 0, xh + r0 * wd, (int)(h * wd), 0,
                         0.0f, (float *)cols, (int)n, 0, 1, err));
        else
            TRY(cu_sgemm(cu, true, false, (int)rows, (int)n, (int)cin, 1.0f, W, (int)rows, 0, X + r0 * wd, (int)(h * wd), 0,
                         0.0f, (float *)cols, (int)n, 0, 1, err));
        k_col2im2d<<<CU_ROWS(cu, cout * ho, wo), 0, cu->stream>>>(
            (const float *)cols, B, Y, cout, (int)ho, (int)wo, (int)kh, (int)kw, p->stride[0], p->stride[1],
            p->padding[0], p->padding[1], (int)wd, (int)r0, (int)r1, r0 == 0, r1 == h, p->relu ? 1 : 0);
    }
    return cu_check_launch("conv_transpose2d", err);
}

/* ---- pool2d, transpose01 --------------------------------------------------------------------- */

__global__ void k_pool2d(const float *x, float *y, int64_t c, int h, int w, int ho, int wo, int kh, int kw, int sh,
                         int sw, int ph, int pw, int is_max, float inv) {
    ROW_LOOP(row, c * ho) {
        int64_t ch = row / ho;
        int i = (int)(row - ch * ho);
        const float *xc = x + ch * h * w;
        int i0 = i * sh - ph, i1 = i0 + kh;
        if (i0 < 0) i0 = 0;
        if (i1 > h) i1 = h;
        COL_LOOP(j, wo) {
            int j0 = (int)j * sw - pw, j1 = j0 + kw;
            if (j0 < 0) j0 = 0;
            if (j1 > w) j1 = w;
            float acc = is_max ? -INFINITY : 0.0f;
            for (int r = i0; r < i1; r++)
                for (int s = j0; s < j1; s++) {
                    float v = xc[(int64_t)r * w + s];
                    acc = is_max ? (v > acc ? v : acc) : acc + v;
                }
            y[row * wo + j] = is_max ? acc : acc * inv;
        }
    }
}

static avo_status cu_pool2d(avo_backend *be, const avo_tensor *x, avo_pool kind, const avo_pool2d_params *p, avo_tensor *y,
                            avo_error *err) {
    cu_impl *cu = cu_of(be);
    TRY(cu_check_sticky(cu, "pool2d", err));
    int64_t c = x->shape[0], h = x->shape[1], w = x->shape[2], ho = y->shape[1], wo = y->shape[2];
    cu_note_write(cu, y->data, f32_bytes(y));
    if (c == 0 || ho * wo == 0) return AVO_OK;
    if (h * w > INT_MAX || ho * wo > INT_MAX)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "cuda: pool2d planes of more than 2^31 pixels");
    float inv = 1.0f / (float)(p->kernel[0] * p->kernel[1]);
    k_pool2d<<<CU_ROWS(cu, c * ho, wo), 0, cu->stream>>>(
        (const float *)x->data, (float *)y->data, c, (int)h, (int)w, (int)ho, (int)wo, p->kernel[0], p->kernel[1],
        p->stride[0], p->stride[1], p->padding[0], p->padding[1], kind == AVO_POOL_MAX, inv);
    return cu_check_launch("pool2d", err);
}

__global__ void k_transpose01(const float *x, float *y, int64_t na, int64_t nb, int64_t nc) {
    ROW_LOOP(r, na * nb) { /* output row r = j*na + i holds x[i, j, :] */
        int64_t j = r / na, i = r - j * na;
        const float *src = x + (i * nb + j) * nc;
        float *dst = y + r * nc;
        COL_LOOP(k, nc) dst[k] = src[k];
    }
}

static avo_status cu_transpose01(avo_backend *be, const avo_tensor *x, avo_tensor *y, avo_error *err) {
    cu_impl *cu = cu_of(be);
    TRY(cu_check_sticky(cu, "transpose01", err));
    int64_t na = x->shape[0], nb = x->shape[1], nc = x->shape[2];
    cu_note_write(cu, y->data, f32_bytes(y));
    if (na * nb * nc == 0) return AVO_OK;
    k_transpose01<<<CU_ROWS(cu, na * nb, nc), 0, cu->stream>>>((const float *)x->data, (float *)y->data, na, nb,
                                                                         nc);
    return cu_check_launch("transpose01", err);
}

void cu_ops2d_register(avo_backend_ops *o) {
    o->conv2d = cu_conv2d;
    o->conv_transpose2d = cu_conv_transpose2d;
    o->pool2d = cu_pool2d;
    o->transpose01 = cu_transpose01;
}
