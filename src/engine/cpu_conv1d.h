/* AVX-512 conv1d paths, FP32 or BF16 operands, with the resblock's input leaky ReLU, bias and
 * residual add fused: the direct (implicit-GEMM) kernel (cpu_conv1d_avx512.c), FFT overlap-save for
 * long, wide kernels (cpu_conv1d_fft.c) and Winograd F(4,3) for 3 taps (cpu_conv1d_wino.c). The CPU
 * back end calls them for groups == 1 when the CPU has AVX-512 and keeps im2col + sgemm otherwise. */
#ifndef AVO_CPU_CONV1D_H
#define AVO_CPU_CONV1D_H

#include "engine/engine_internal.h"

/* cpuid (and OS state) checks, made once. */
bool cpu_conv1d_avx512_available(void);
bool cpu_conv1d_bf16_available(void);

/* A CPU back end's switch of the direct kernel (default on where available), so tests and benches can
 * compare it with the im2col + sgemm path in one run (cpu_backend.c). */
void cpu_backend_set_direct_conv(avo_backend *be, bool on);
bool cpu_backend_direct_conv(const avo_backend *be);

typedef struct cpu_conv1d_args {
    const float *x; /* [cin, t] */
    int64_t cin, t;
    const float *w; /* [cout, cin, k] (groups 1) */
    int64_t cout, k;
    const float *bias;     /* [cout] or NULL */
    const float *residual; /* [cout, tout] or NULL, not overlapping y */
    float *y;              /* [cout, tout] */
    int64_t tout;
    int stride, padding, dilation;
    bool leaky; /* x -> leaky_relu(x, slope) before the convolution */
    float slope;
    bool bf16; /* bf16 operands (the caller checked cpu_conv1d_bf16_available) */
    bool enabled; /* the back end's switch (cpu_backend_direct_conv) */
    bool fft;       /* the back end's switch of the FFT path (cpu_backend_set_fft_conv) */
    bool fft_force; /* take the FFT path wherever it is supported, whatever its cost model says */
    int nthreads;
} cpu_conv1d_args;

/* Whether the direct kernel takes this convolution (groups must be 1: checked by the caller). */
bool cpu_conv1d_direct_supported(const cpu_conv1d_args *c);
/* Runs it; scratch (packed weights, per-thread input tiles) comes from a. */
avo_status cpu_conv1d_direct(avo_arena *a, const cpu_conv1d_args *c, avo_error *err);

/* A CPU back end's use of the FFT and Winograd paths: AUTO (default) where their cost models expect a
 * gain, OFF never (every conv1d to the direct kernel), ALWAYS the FFT path wherever it is supported:
 * tests and benches compare the paths in one run. */
typedef enum cpu_fft_mode { CPU_FFT_AUTO = 0, CPU_FFT_OFF, CPU_FFT_ALWAYS } cpu_fft_mode;
void cpu_backend_set_fft_conv(avo_backend *be, cpu_fft_mode mode);

/* FFT overlap-save conv1d (cpu_conv1d_fft.c): stride 1, FP32, kernel reach (k-1)*d+1 up to 64.
 * _supported: it can run the convolution; _preferred: it can and its cost model expects it to beat
 * the direct kernel (long inputs, wide kernels, enough channels). Same arguments and fusion as the
 * direct kernel; scratch from a. */
bool cpu_conv1d_fft_supported(const cpu_conv1d_args *c);
bool cpu_conv1d_fft_preferred(const cpu_conv1d_args *c);
avo_status cpu_conv1d_fft(avo_arena *a, const cpu_conv1d_args *c, avo_error *err);

/* Winograd F(4,3) conv1d (cpu_conv1d_wino.c): 3 taps, stride 1, dilation up to 8, FP32; under the
 * same back-end switch as the FFT path (OFF turns both off). _preferred: 1024+ outputs and the
 * channels and dilations where it measured faster, which differ between one and several threads. Same arguments and fusion as the direct kernel;
 * scratch from a. */
bool cpu_conv1d_wino_supported(const cpu_conv1d_args *c);
bool cpu_conv1d_wino_preferred(const cpu_conv1d_args *c);
avo_status cpu_conv1d_wino(avo_arena *a, const cpu_conv1d_args *c, avo_error *err);

/* y[rows, out] = x[rows, in] w[out, in]^T + b (b may be NULL) with bf16 operands (rounded to nearest
 * even) and fp32 accumulation: the BF16 mode of avo_op_linear. The caller checked
 * cpu_conv1d_bf16_available. Scratch (bf16 copies of x and w) comes from a. */
avo_status cpu_linear_bf16(avo_arena *a, const float *x, int64_t rows, int64_t in, const float *w, int64_t out,
                           const float *b, float *y, int nthreads, avo_error *err);

/* y[rows, out] = x[rows, in] w[out, in]^T + b (b may be NULL) in FP32 with an AVX-512 FMA kernel
 * (cpu_linear_f32.c): the FP32 mode of avo_op_linear where _preferred says it pays (enough rows to
 * pay for packing w). The caller checked cpu_conv1d_avx512_available. Scratch (packed w) from a. */
bool cpu_linear_f32_preferred(int64_t rows, int64_t in, int64_t out);
avo_status cpu_linear_f32(avo_arena *a, const float *x, int64_t rows, int64_t in, const float *w, int64_t out,
                          const float *b, float *y, int nthreads, avo_error *err);

/* row[0..n) -> softmax(row) in place with AVX-512 max / sum / scale passes and cpu_math_exp (the
 * attention's rows, whose scalar loops cost more than their exp). The caller checked
 * cpu_conv1d_avx512_available. */
void cpu_softmax_row_avx512(float *row, int64_t n);

#endif
