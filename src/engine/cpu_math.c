/* Vectorised float math for the CPU back end: see cpu_math.h. The kernels live in
 * cpu_math_kernels.h and are compiled here once per instruction set (generic x86-64 or other
 * CPUs; AVX2 with FMA; AVX-512), picked at run time from what the CPU reports. Polynomial
 * coefficients are our own least-squares fits (relative error, near-minimax by reweighting),
 * rounded to float. */
#include "engine/cpu_math.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

static inline float cm_asf(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t cm_asu(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline double cm_asd(uint64_t u) {
    double f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint64_t cm_asu64(double f) {
    uint64_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* c ? a : b through bit masks: both sides are always computed, so under -ftrapping-math
 * (GCC's default) the vectoriser need not prove that computing the unused side is harmless. */
static inline float cm_sel(bool c, float a, float b) {
    uint32_t m = c ? 0xffffffffu : 0u;
    return cm_asf((cm_asu(a) & m) | (cm_asu(b) & ~m));
}

static inline double cm_seld(bool c, double a, double b) {
    uint64_t m = c ? ~(uint64_t)0 : 0u;
    return cm_asd((cm_asu64(a) & m) | (cm_asu64(b) & ~m));
}

#define CM_BLOCK 32

#define CM_SHIFT 12582912.0f /* 1.5 * 2^23: adding it rounds to an integer */
#define CM_LOG2E 1.44269504088896341f
#define CM_LN2_HI 0.693145751953125f /* 15 significant bits: k * CM_LN2_HI is exact */
#define CM_LN2_LO 1.42860682030941723e-6f

/* e^r = 1 + r + r^2 (P0 + P1 r + ... + P5 r^5) on |r| <= 0.35 */
#define CM_EXP_P0 5.000000000e-01f
#define CM_EXP_P1 1.666666716e-01f
#define CM_EXP_P2 4.166645557e-02f
#define CM_EXP_P3 8.333361708e-03f
#define CM_EXP_P4 1.393449726e-03f
#define CM_EXP_P5 1.985812705e-04f

/* tanh x = x + x^3 (P0 + P1 x^2 + ... + P5 x^10) on |x| < CM_TANH_SPLIT */
#define CM_TANH_SPLIT 0.625f
#define CM_TANH_P0 -3.333333433e-01f
#define CM_TANH_P1 1.333329380e-01f
#define CM_TANH_P2 -5.395703763e-02f
#define CM_TANH_P3 2.175140940e-02f
#define CM_TANH_P4 -8.288342506e-03f
#define CM_TANH_P5 2.231610706e-03f

/* Double-precision kernels (erf, GELU, softplus): float results then round once. */

/* e^r = 1 + r + r^2 (P0 + P1 r + ... + P5 r^5) on |r| <= 0.35 */
#define CM_EXPD_P0 0.50000000142017875
#define CM_EXPD_P1 0.16666666524085355
#define CM_EXPD_P2 0.041666457362653397
#define CM_EXPD_P3 0.0083333618337261498
#define CM_EXPD_P4 0.0013934496759584122
#define CM_EXPD_P5 0.00019858127126239598

/* erf a = a (P0 + P1 a^2 + ... + P5 a^10) on a <= 0.5 */
#define CM_ERF_P0 1.1283791670820797
#define CM_ERF_P1 -0.37612638519104635
#define CM_ERF_P2 0.11283773805306183
#define CM_ERF_P3 -0.026863119877316551
#define CM_ERF_P4 0.0052003083055631588
#define CM_ERF_P5 -0.00076928529350072511

/* (1 + a) erfc(a) e^(a^2) = sum Pi v^i, v = 1/(1 + a) - CM_ERFC_M, on 0.5 <= a <= 10.7 */
#define CM_ERFC_M 0.37606837606837606
#define CM_ERFC_P0 0.79070022600117074
#define CM_ERFC_P1 0.56154829116987959
#define CM_ERFC_P2 -0.29822637868104696
#define CM_ERFC_P3 -0.35173032981551716
#define CM_ERFC_P4 0.53614658068272036
#define CM_ERFC_P5 -0.030359374996072438
#define CM_ERFC_P6 -0.74797697448780764
#define CM_ERFC_P7 0.99693712351187558
#define CM_ERFC_P8 0.0037329592275571087
#define CM_ERFC_P9 -1.771712056359974
#define CM_ERFC_P10 1.8017690747293329

/* log1p(t) = 2s + s^3 (P0 + P1 s^2 + ... + P5 s^10), s = t / (2 + t) <= 1/3 */
#define CM_LOG1P_P0 0.66666666561724264
#define CM_LOG1P_P1 0.3999995667798435
#define CM_LOG1P_P2 0.28575623960388025
#define CM_LOG1P_P3 0.22115169978502716
#define CM_LOG1P_P4 0.19091051760520827
#define CM_LOG1P_P5 0.14732880012813282

/* Generic: plain multiply-add (no FMA before x86-64-v3; fmaf would be a libm call). */
#define CM_SFX generic
#define CM_FMA(a, b, c) ((a) * (b) + (c))
#include "engine/cpu_math_kernels.h"
#undef CM_FMA
#undef CM_SFX

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CM_MULTI 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define CM_SFX avx2
#define CM_FMA(a, b, c) _Generic((a) + (b) + (c), double: fma, default: fmaf)(a, b, c)
#include "engine/cpu_math_kernels.h"
#undef CM_FMA
#undef CM_SFX
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma,prefer-vector-width=512")
#define CM_SFX avx512
#define CM_FMA(a, b, c) _Generic((a) + (b) + (c), double: fma, default: fmaf)(a, b, c)
#include "engine/cpu_math_kernels.h"
#undef CM_FMA
#undef CM_SFX
#pragma GCC pop_options
#else
#define CM_MULTI 0
#endif

static int cm_forced = -1;

cpu_math_isa cpu_math_isa_best(void) {
#if CM_MULTI
    if (__builtin_cpu_supports("avx512f")) return CPU_MATH_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CPU_MATH_AVX2;
#endif
    return CPU_MATH_GENERIC;
}

cpu_math_isa cpu_math_force_isa(int isa) {
    cpu_math_isa best = cpu_math_isa_best();
    cm_forced = isa < 0 ? -1 : isa < (int)best ? isa : (int)best;
    return cm_forced < 0 ? best : (cpu_math_isa)cm_forced;
}

const char *cpu_math_isa_name(cpu_math_isa isa) {
    return isa == CPU_MATH_AVX512 ? "avx512" : isa == CPU_MATH_AVX2 ? "avx2" : "generic";
}

#if CM_MULTI
/* __builtin_cpu_supports reads a word that libgcc fills in before main: cheap enough per call. */
static inline cpu_math_isa cm_isa(void) { return cm_forced >= 0 ? (cpu_math_isa)cm_forced : cpu_math_isa_best(); }

#define CM_DISPATCH(fn)                                                                            \
    void cpu_math_##fn(const float *x, float *y, int64_t n) {                                      \
        switch (cm_isa()) {                                                                        \
        case CPU_MATH_AVX512: fn##_avx512(x, y, n); return;                                        \
        case CPU_MATH_AVX2: fn##_avx2(x, y, n); return;                                            \
        default: fn##_generic(x, y, n); return;                                                    \
        }                                                                                          \
    }
#else
#define CM_DISPATCH(fn)                                                                            \
    void cpu_math_##fn(const float *x, float *y, int64_t n) { fn##_generic(x, y, n); }
#endif
CM_DISPATCH(exp)
CM_DISPATCH(erf)
CM_DISPATCH(gelu)
CM_DISPATCH(tanh)
CM_DISPATCH(sigmoid)
CM_DISPATCH(softplus)
