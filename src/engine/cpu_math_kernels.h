/* Element kernels and array loops of cpu_math.c, included once per instruction set with
 * CM_SFX (name suffix) and CM_FMA (fused where the target has it) defined. Everything is
 * straight-line float code with selects instead of branches and no table lookups, so that GCC
 * vectorises the fixed-length block loops below at -O2. Not a public header. */
#define CM_CAT2(a, b) a##_##b
#define CM_CAT(a, b) CM_CAT2(a, b)
#define CM_NAME(f) CM_CAT(f, CM_SFX)

/* e^(hi + lo) for hi in [-105, 89] and |lo| < 0.05: hi - k ln2 is exact (Cody-Waite split of
 * ln 2 with 15 bits in the high part), e^r = 1 + r + r^2 P(r) on |r| <= ln2/2 (P: least-squares
 * fit, 3e-9 relative), and 2^k is applied in two halves so that denormal results round once
 * and 2^128 does not overflow the exponent field before the product does. */
static inline __attribute__((always_inline)) float CM_NAME(k_exp2)(float hi, float lo) {
    float j = CM_FMA(hi, CM_LOG2E, CM_SHIFT);
    float k = j - CM_SHIFT;
    float r = CM_FMA(-k, CM_LN2_HI, hi);
    r = CM_FMA(-k, CM_LN2_LO, r) + lo;
    float p = CM_FMA(r, CM_EXP_P5, CM_EXP_P4);
    p = CM_FMA(r, p, CM_EXP_P3);
    p = CM_FMA(r, p, CM_EXP_P2);
    p = CM_FMA(r, p, CM_EXP_P1);
    p = CM_FMA(r, p, CM_EXP_P0);
    p = 1.0f + CM_FMA(r * r, p, r);
    float k1 = (k * 0.5f + CM_SHIFT) - CM_SHIFT, k2 = k - k1;
    float s1 = cm_asf((uint32_t)((int32_t)k1 + 127) << 23), s2 = cm_asf((uint32_t)((int32_t)k2 + 127) << 23);
    return p * s1 * s2;
}

/* e^t in double for t in [-110, 0] (the callers' range): r = t - k ln2 is exact enough in
 * double, e^r = 1 + r + r^2 P(r) (3e-9 relative, far below a float ulp), 2^k from the bits of the
 * rounding shift (no int64 conversion, which AVX2 lacks). */
static inline __attribute__((always_inline)) double CM_NAME(k_expd)(double t) {
    double j = CM_FMA(t, 1.4426950408889634, 6755399441055744.0); /* 1.5 * 2^52 */
    double k = j - 6755399441055744.0;
    double r = CM_FMA(-k, 0.69314718055994531, t);
    double p = CM_FMA(r, CM_EXPD_P5, CM_EXPD_P4);
    p = CM_FMA(r, p, CM_EXPD_P3);
    p = CM_FMA(r, p, CM_EXPD_P2);
    p = CM_FMA(r, p, CM_EXPD_P1);
    p = CM_FMA(r, p, CM_EXPD_P0);
    p = 1.0 + CM_FMA(r * r, p, r);
    return p * cm_asd((cm_asu64(j) + 1023u) << 52);
}

/* erf(a) and erfc(a) for a >= 0 (clamped at 10.7, past which erfc is below any float result), in
 * double so that the float results round once: a P(a^2) below 0.5 (1e-11 relative), above it
 * erfc(a) = G(v) / (1 + a) e^-a^2 with G a degree-10 fit in v = 1/(1 + a) - m (2e-9), a^2 exact. */
static inline __attribute__((always_inline)) double CM_NAME(k_erfd)(double a, double *erfc_out) {
    double as = cm_seld(a < 0.5, a, 0.5), u = as * as;
    double e = CM_FMA(u, CM_ERF_P5, CM_ERF_P4);
    e = CM_FMA(u, e, CM_ERF_P3);
    e = CM_FMA(u, e, CM_ERF_P2);
    e = CM_FMA(u, e, CM_ERF_P1);
    e = CM_FMA(u, e, CM_ERF_P0);
    e *= as;
    double at = cm_seld(a < 0.5, 0.5, cm_seld(a < 10.7, a, 10.7));
    double w = 1.0 / (1.0 + at), v = w - CM_ERFC_M;
    double q = CM_FMA(v, CM_ERFC_P10, CM_ERFC_P9);
    q = CM_FMA(v, q, CM_ERFC_P8);
    q = CM_FMA(v, q, CM_ERFC_P7);
    q = CM_FMA(v, q, CM_ERFC_P6);
    q = CM_FMA(v, q, CM_ERFC_P5);
    q = CM_FMA(v, q, CM_ERFC_P4);
    q = CM_FMA(v, q, CM_ERFC_P3);
    q = CM_FMA(v, q, CM_ERFC_P2);
    q = CM_FMA(v, q, CM_ERFC_P1);
    q = CM_FMA(v, q, CM_ERFC_P0);
    double c = q * w * CM_NAME(k_expd)(-at * at);
    bool small = a < 0.5;
    *erfc_out = cm_seld(small, 1.0 - e, c);
    return cm_seld(small, e, 1.0 - c);
}

static inline __attribute__((always_inline)) float CM_NAME(k_exp)(float x) {
    float c = cm_sel(x > -105.0f, x, -105.0f); /* NaN lands here too; it is put back below */
    c = cm_sel(c < 89.0f, c, 89.0f);
    float y = CM_NAME(k_exp2)(c, 0.0f);
    return cm_sel(x == x, y, x);
}

static inline __attribute__((always_inline)) float CM_NAME(k_sigmoid)(float x) {
    /* e^-|x| never overflows; x < 0 takes e^x / (1 + e^x), which also keeps denormal results. */
    float a = fabsf(x);
    float t = CM_NAME(k_exp2)(cm_sel(a < 105.0f, -a, -105.0f), 0.0f);
    float y = cm_sel(x >= 0.0f, 1.0f, t) / (1.0f + t);
    return cm_sel(x == x, y, x);
}

static inline __attribute__((always_inline)) float CM_NAME(k_tanh)(float x) {
    float a = fabsf(x);
    /* small |x|: x + x^3 P(x^2) (P: degree 5 fit to 2e-8); else 1 - 2 t / (1 + t), t = e^-2|x| */
    float u = a * a;
    float p = CM_FMA(u, CM_TANH_P5, CM_TANH_P4);
    p = CM_FMA(u, p, CM_TANH_P3);
    p = CM_FMA(u, p, CM_TANH_P2);
    p = CM_FMA(u, p, CM_TANH_P1);
    p = CM_FMA(u, p, CM_TANH_P0);
    float small = CM_FMA(a * u, p, a);
    float t = CM_NAME(k_exp2)(cm_sel(a < 10.0f, -2.0f * a, -20.0f), 0.0f);
    float big = 1.0f - 2.0f * t / (1.0f + t);
    float y = cm_sel(a < CM_TANH_SPLIT, small, big);
    y = cm_asf(cm_asu(y) | (cm_asu(x) & 0x80000000u));
    return cm_sel(x == x, y, x);
}

static inline __attribute__((always_inline)) float CM_NAME(k_erf)(float x) {
    /* every select in double: mixed-width masks keep SSE2 from vectorising */
    double d = (double)x, c, e = CM_NAME(k_erfd)(fabs(d), &c); /* NaN: a stand-in; put back below */
    e = cm_asd(cm_asu64(e) | (cm_asu64(d) & 0x8000000000000000u));
    return (float)cm_seld(d == d, e, d);
}

static inline __attribute__((always_inline)) float CM_NAME(k_gelu)(float x) {
    /* x/2 (1 + erf(z)), z = x / sqrt2: 1 + erf(|z|) for x >= 0, erfc(|z|) for x < 0 (no cancellation) */
    double d = (double)x, c, e = CM_NAME(k_erfd)(fabs(d) * 0.70710678118654752, &c);
    double y = 0.5 * d * cm_seld(d >= 0.0, 1.0 + e, c);
    y = cm_seld(d > -15.0, y, -0.0); /* also -inf, where x * 0 would be NaN */
    return (float)cm_seld(d == d, y, d);
}

static inline __attribute__((always_inline)) float CM_NAME(k_softplus)(float x) {
    /* max(x, 0) + log1p(e^-|x|) in double; log1p(t) = 2 atanh(s), s = t / (2 + t) <= 1/3, as
     * 2s + s^3 P(s^2) (5e-9 relative). */
    double d = (double)x, a = fabs(d);
    double t = CM_NAME(k_expd)(cm_seld(a < 110.0, -a, -110.0));
    double s = t / (2.0 + t), u = s * s;
    double p = CM_FMA(u, CM_LOG1P_P5, CM_LOG1P_P4);
    p = CM_FMA(u, p, CM_LOG1P_P3);
    p = CM_FMA(u, p, CM_LOG1P_P2);
    p = CM_FMA(u, p, CM_LOG1P_P1);
    p = CM_FMA(u, p, CM_LOG1P_P0);
    double y = cm_seld(d > 0.0, d, 0.0) + CM_FMA(s * u, p, 2.0 * s);
    y = cm_seld(d > 20.0, d, y); /* PyTorch's threshold: the identity above 20 */
    return (float)cm_seld(d == d, y, d);
}

/* Array loops: whole blocks of CM_BLOCK through a local buffer (a fixed trip count the cheap
 * vectoriser accepts, and no aliasing question when y == x), the tail padded with zeros. */
#define CM_ARRAY(fn)                                                                               \
    static void CM_NAME(fn)(const float *x, float *y, int64_t n) {                                 \
        float buf[CM_BLOCK];                                                                       \
        int64_t i = 0;                                                                             \
        for (; i + CM_BLOCK <= n; i += CM_BLOCK) {                                                 \
            memcpy(buf, x + i, sizeof buf);                                                        \
            for (int j = 0; j < CM_BLOCK; j++) buf[j] = CM_NAME(k_##fn)(buf[j]);                  \
            memcpy(y + i, buf, sizeof buf);                                                        \
        }                                                                                          \
        if (i < n) {                                                                               \
            memset(buf, 0, sizeof buf);                                                            \
            memcpy(buf, x + i, (size_t)(n - i) * sizeof(float));                                   \
            for (int j = 0; j < CM_BLOCK; j++) buf[j] = CM_NAME(k_##fn)(buf[j]);                  \
            memcpy(y + i, buf, (size_t)(n - i) * sizeof(float));                                   \
        }                                                                                          \
    }
CM_ARRAY(exp)
CM_ARRAY(erf)
CM_ARRAY(gelu)
CM_ARRAY(tanh)
CM_ARRAY(sigmoid)
CM_ARRAY(softplus)
#undef CM_ARRAY
#undef CM_NAME
#undef CM_CAT
#undef CM_CAT2
