/* cpu_math (vectorised exp, erf, GELU, tanh, sigmoid, softplus) against double-precision libm:
 * dense sweeps over each function's useful range, every binade through strided bit patterns
 * (tails, tiny and denormal inputs and outputs), special values, in-place calls and every block
 * tail length, on each code path this CPU runs (generic, AVX2, AVX-512). */
#include "engine/cpu_math.h"
#include "test_util.h"

#include <float.h>

typedef void (*arr_fn)(const float *, float *, int64_t);

static double ref_exp(double x) { return exp(x); }
static double ref_erf(double x) { return erf(x); }
static double ref_gelu(double x) { return 0.5 * x * erfc(-x * 0.70710678118654752440); }
static double ref_tanh(double x) { return tanh(x); }
static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double ref_softplus(double x) { return x > 20.0 ? x : log1p(exp(x)); }

typedef struct fn_case {
    const char *name;
    arr_fn fn;
    double (*ref)(double);
    double lo, hi;  /* dense sweep range */
    double rel_tol; /* on results of normal magnitude (or absolute, if abs_tol) */
    int absolute;
    /* the same in float ulps of the exact value: tighter than rel_tol, so that a polynomial
     * coefficient off in its 4th digit fails (the double-precision kernels round nearly correctly) */
    double ulp_tol;
} fn_case;

/* Results below FLT_MIN are denormal: a few denormal steps of error are all they can carry. */
#define DENORMAL_TOL (16.0 * 1.4012984643248171e-45)

typedef struct err_stat {
    double worst, worst_ulp;
    float at, at_ulp;
    int64_t bad;
} err_stat;

/* float ulp at the exact value r (denormal spacing below FLT_MIN) */
static double ulp_of(double r) {
    int e;
    frexp(fabs(r), &e);
    return fabs(r) < FLT_MIN ? ldexp(1.0, -149) : ldexp(1.0, e - 24);
}

static void measure(const fn_case *c, const float *x, int64_t n, float *y, err_stat *st) {
    c->fn(x, y, n);
    for (int64_t i = 0; i < n; i++) {
        double r = c->ref((double)x[i]);
        double e;
        if (isnan(r)) e = isnan(y[i]) ? 0.0 : INFINITY;
        else if (isinf(r)) e = (double)y[i] == r ? 0.0 : INFINITY;
        else if (c->absolute) e = fabs((double)y[i] - r) / c->rel_tol;
        else if (fabs(r) < FLT_MIN) e = fabs((double)y[i] - r) <= DENORMAL_TOL ? 0.0 : INFINITY;
        else if (fabs(r) > FLT_MAX) e = isinf(y[i]) || fabs((double)y[i] - r) / fabs(r) <= c->rel_tol ? 0.0 : INFINITY;
        else e = fabs((double)y[i] - r) / fabs(r) / c->rel_tol;
        if (!(e <= st->worst)) {
            st->worst = e;
            st->at = x[i];
        }
        double eu = isnan(r) || isinf(r) || fabs(r) > FLT_MAX ? 0.0 : fabs((double)y[i] - r) / ulp_of(r);
        if (!(eu <= st->worst_ulp)) {
            st->worst_ulp = eu;
            st->at_ulp = x[i];
        }
        if (!(e <= 1.0) || !(eu <= c->ulp_tol)) st->bad++;
    }
}

static void sweep(const fn_case *c, cpu_math_isa isa) {
    enum { N = 1 << 20 };
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    err_stat st = {0, 0, 0, 0, 0};
    /* dense, evenly spaced over the useful range (two offsets: 2^21 points) */
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t i = 0; i < N; i++) x[i] = (float)(c->lo + (c->hi - c->lo) * ((double)i + 0.5 * pass) / (N - 1));
        measure(c, x, N, y, &st);
    }
    /* every binade, both signs: bit patterns 0 .. +inf with a prime stride */
    int64_t m = 0;
    for (uint32_t b = 0; b < 0x7f800000u; b += 2053) {
        for (int s = 0; s < 2; s++) {
            uint32_t u = b | (s ? 0x80000000u : 0u);
            memcpy(&x[m++], &u, sizeof u);
            if (m == N) {
                measure(c, x, m, y, &st);
                m = 0;
            }
        }
    }
    measure(c, x, m, y, &st);
    CHECK_MSG(st.bad == 0, "%s/%s: %lld points over tolerance, worst %.3g x tol at x = %.9g", c->name,
              cpu_math_isa_name(isa), (long long)st.bad, st.worst, (double)st.at);
    fprintf(stderr, "%-9s %-8s worst error %.3f of the %s tolerance %.1e (at x = %.9g), %.3f ulp (at x = %.9g)\n",
            c->name, cpu_math_isa_name(isa), st.worst, c->absolute ? "absolute" : "relative", c->rel_tol, (double)st.at,
            st.worst_ulp, (double)st.at_ulp);
    free(x);
    free(y);
}

static float one(arr_fn fn, float v) {
    float y;
    fn(&v, &y, 1);
    return y;
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

static void specials(cpu_math_isa isa) {
    const char *in = cpu_math_isa_name(isa);
    arr_fn fns[] = {cpu_math_exp, cpu_math_erf, cpu_math_gelu, cpu_math_tanh, cpu_math_sigmoid, cpu_math_softplus};
    for (int f = 0; f < 6; f++) CHECK_MSG(isnan(one(fns[f], NAN)) && isnan(one(fns[f], -NAN)), "fn %d NaN (%s)", f, in);
    CHECK(one(cpu_math_exp, INFINITY) == INFINITY);
    CHECK(same_bits(one(cpu_math_exp, -INFINITY), 0.0f));
    CHECK(one(cpu_math_exp, 0.0f) == 1.0f && one(cpu_math_exp, -0.0f) == 1.0f);
    CHECK(one(cpu_math_exp, 89.0f) == INFINITY && one(cpu_math_exp, 1000.0f) == INFINITY);
    CHECK(same_bits(one(cpu_math_exp, -110.0f), 0.0f));
    CHECK(one(cpu_math_exp, -100.0f) > 0.0f && one(cpu_math_exp, -100.0f) < FLT_MIN); /* gradual, not flushed */
    CHECK(one(cpu_math_erf, INFINITY) == 1.0f && one(cpu_math_erf, -INFINITY) == -1.0f);
    CHECK(same_bits(one(cpu_math_erf, -0.0f), -0.0f) && same_bits(one(cpu_math_erf, 0.0f), 0.0f));
    CHECK(one(cpu_math_erf, 5.0f) == 1.0f && one(cpu_math_erf, 1e30f) == 1.0f);
    CHECK(one(cpu_math_gelu, INFINITY) == INFINITY);
    CHECK(one(cpu_math_gelu, -INFINITY) == 0.0f && one(cpu_math_gelu, -1e30f) == 0.0f);
    CHECK(one(cpu_math_gelu, 0.0f) == 0.0f && one(cpu_math_gelu, 1e30f) == 1e30f);
    CHECK(one(cpu_math_tanh, INFINITY) == 1.0f && one(cpu_math_tanh, -INFINITY) == -1.0f);
    CHECK(same_bits(one(cpu_math_tanh, -0.0f), -0.0f));
    CHECK(one(cpu_math_tanh, 1e-30f) == 1e-30f && one(cpu_math_tanh, 1e-42f) == 1e-42f);
    CHECK(one(cpu_math_sigmoid, INFINITY) == 1.0f && one(cpu_math_sigmoid, -INFINITY) == 0.0f);
    CHECK(one(cpu_math_sigmoid, 0.0f) == 0.5f);
    CHECK(one(cpu_math_softplus, INFINITY) == INFINITY && one(cpu_math_softplus, -INFINITY) == 0.0f);
    CHECK(one(cpu_math_softplus, 20.5f) == 20.5f); /* PyTorch's threshold: exactly x above 20 */
}

/* Every length 1..70 (tails of the 32-wide blocks) and in-place calls give the same values as
 * one long out-of-place call. */
static void lengths(cpu_math_isa isa) {
    enum { L = 70 };
    float x[L], full[L], part[L], inpl[L];
    for (int i = 0; i < L; i++) x[i] = -9.0f + 0.27f * (float)i;
    arr_fn fns[] = {cpu_math_exp, cpu_math_erf, cpu_math_gelu, cpu_math_tanh, cpu_math_sigmoid, cpu_math_softplus};
    int bad = 0;
    for (int f = 0; f < 6; f++) {
        fns[f](x, full, L);
        for (int n = 1; n <= L; n++) {
            for (int i = 0; i < L; i++) part[i] = inpl[i] = -1234.0f;
            fns[f](x, part, n);
            memcpy(inpl, x, sizeof(float) * (size_t)n);
            fns[f](inpl, inpl, n);
            for (int i = 0; i < L; i++) {
                float want = i < n ? full[i] : -1234.0f;
                bad += !same_bits(part[i], want) || !same_bits(inpl[i], i < n ? full[i] : -1234.0f);
            }
        }
    }
    CHECK_MSG(bad == 0, "%s: %d values differ between lengths / in place", cpu_math_isa_name(isa), bad);
}

int main(void) {
    const fn_case cases[] = {
        {"exp", cpu_math_exp, ref_exp, -104.0, 89.0, 2e-7, 0, 1.2},
        {"erf", cpu_math_erf, ref_erf, -6.0, 6.0, 1e-7, 1, 0.6},
        {"gelu", cpu_math_gelu, ref_gelu, -15.0, 15.0, 2e-7, 0, 0.6},
        {"tanh", cpu_math_tanh, ref_tanh, -10.0, 10.0, 2e-7, 0, 1.6},
        {"sigmoid", cpu_math_sigmoid, ref_sigmoid, -104.0, 20.0, 2e-7, 0, 2.4},
        {"softplus", cpu_math_softplus, ref_softplus, -104.0, 30.0, 2e-7, 0, 0.6},
    };
    cpu_math_isa best = cpu_math_isa_best();
    fprintf(stderr, "best code path on this CPU: %s\n", cpu_math_isa_name(best));
    for (int isa = (int)best; isa >= 0; isa--) {
        CHECK(cpu_math_force_isa(isa) == (cpu_math_isa)isa);
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) sweep(&cases[c], (cpu_math_isa)isa);
        specials((cpu_math_isa)isa);
        lengths((cpu_math_isa)isa);
    }
    cpu_math_force_isa(-1);
    TEST_MAIN_END();
}
