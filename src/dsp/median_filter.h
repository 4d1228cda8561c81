/* Running medians over a row-major [rows x cols] matrix (internal to the DSP and separation code).
 *
 * The window is centred and len values long (len odd; an even len is treated as len + 1), clipped at
 * the matrix edges; a clipped window with an even count gives the mean of its two middle values. Full
 * windows run through a selection network, 16 outputs at a time, on CPUs with AVX-512; everything
 * else, and every output on other CPUs, through dsp_small_median. Both give the same values. */
#ifndef AUTOVOICE_DSP_MEDIAN_FILTER_H
#define AUTOVOICE_DSP_MEDIAN_FILTER_H

#include <stdint.h>

/* Median of n values (1 <= n); reorders v. */
float dsp_small_median(float *v, int n);

/* AUTO: the network where the CPU has AVX-512; SCALAR: dsp_small_median everywhere (for tests and
 * benches to compare against). */
typedef enum dsp_median_path { DSP_MEDIAN_AUTO = 0, DSP_MEDIAN_SCALAR } dsp_median_path;

/* out[r][c] = median of x[r][c - len/2 .. c + len/2] (along each row). threads: OpenMP threads. */
void dsp_median_along_rows(const float *x, int64_t rows, int cols, int len, int threads, dsp_median_path path,
                           float *out);

/* out[r][c] = median of x[r - len/2 .. r + len/2][c] (along each column). */
void dsp_median_along_cols(const float *x, int64_t rows, int cols, int len, int threads, dsp_median_path path,
                           float *out);

/* Whether AUTO takes the network on this CPU. */
int dsp_median_network_available(void);

#endif
