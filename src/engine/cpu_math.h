/* Vectorised float math for the CPU back end (internal): whole-array versions of the
 * transcendental functions the neural ops need, so that GELU, softmax and the GRU gates run in
 * SIMD registers instead of one scalar libm call per element.
 *
 * Every function maps x[0..n) to y[0..n); y may equal x (in place), other overlaps are not
 * allowed. Results are within a few float ulps of the exact value (see test_cpu_math.c for the
 * bounds that are checked), NaN in gives NaN out, +-inf give the limits. One binary carries
 * generic x86-64, AVX2+FMA and AVX-512 code; the best one the CPU supports is used. */
#ifndef AVO_ENGINE_CPU_MATH_H
#define AVO_ENGINE_CPU_MATH_H

#include <stdint.h>

void cpu_math_exp(const float *x, float *y, int64_t n);
void cpu_math_erf(const float *x, float *y, int64_t n);
/* GELU in its erf form (PyTorch's default): x/2 (1 + erf(x / sqrt 2)); the negative tail goes
 * through erfc so that it keeps its relative accuracy where 1 + erf would cancel. */
void cpu_math_gelu(const float *x, float *y, int64_t n);
void cpu_math_tanh(const float *x, float *y, int64_t n);
void cpu_math_sigmoid(const float *x, float *y, int64_t n);
/* PyTorch's softplus with beta 1, threshold 20: x above 20, else log(1 + e^x). */
void cpu_math_softplus(const float *x, float *y, int64_t n);

/* Code paths, for tests and benchmarks. */
typedef enum cpu_math_isa { CPU_MATH_GENERIC = 0, CPU_MATH_AVX2 = 1, CPU_MATH_AVX512 = 2 } cpu_math_isa;
/* The best path this CPU runs. */
cpu_math_isa cpu_math_isa_best(void);
/* Force a path (clamped to what the CPU runs) or, with -1, go back to the best; not thread-safe:
 * call it only while no cpu_math function runs. Returns the path now in use. */
cpu_math_isa cpu_math_force_isa(int isa);
const char *cpu_math_isa_name(cpu_math_isa isa);

#endif
