/* Vectorised float math (src/engine/cpu_math.c) against the scalar libm loops the CPU back end ran
 * before (erff for GELU, expf, tanhf, 1/(1+expf) for sigmoid, log1pf(expf) for softplus): ns per
 * element on one thread, n = 1M elements (4 MB, cache-resident at L2/L3), median of --runs, for
 * each code path this CPU runs. Inputs uniform in [-8, 8] (exp: [-80, 80]).
 *
 * usage: bench_cpu_math [--runs N] [--n N] [--out PATH]   (default bench/out/cpu_math.json) */
#include "autovoice/common.h"
#include "bench_common.h"
#include "engine/cpu_math.h"

#include <math.h>

typedef void (*arr_fn)(const float *, float *, int64_t);

static void libm_exp(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = expf(x[i]);
}
static void libm_erf(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = erff(x[i]);
}
static void libm_gelu(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}
static void libm_tanh(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}
static void libm_sigmoid(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}
static void libm_softplus(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 20.0f ? x[i] : log1pf(expf(x[i]));
}

/* median ns per element of fn over runs calls */
static double time_ns(arr_fn fn, const float *x, float *y, int64_t n, int runs) {
    double t[64];
    if (runs > 64) runs = 64;
    fn(x, y, n); /* warm-up: pages, caches, clocks */
    for (int r = 0; r < runs; r++) {
        double t0 = avo_now_ms();
        fn(x, y, n);
        t[r] = (avo_now_ms() - t0) * 1e6 / (double)n;
    }
    return bench_median(t, runs);
}

int main(int argc, char **argv) {
    int runs = 9;
    int64_t n = 1 << 20;
    const char *out = "bench/out/cpu_math.json";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--n") && i + 1 < argc) n = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else {
            fprintf(stderr, "usage: bench_cpu_math [--runs N] [--n N] [--out PATH]\n");
            return 2;
        }
    }
    if (runs < 1) runs = 1;
    if (n < 1) n = 1;
    struct {
        const char *name;
        arr_fn libm, fast;
        float range;
    } fns[] = {
        {"exp", libm_exp, cpu_math_exp, 80.0f},         {"erf", libm_erf, cpu_math_erf, 8.0f},
        {"gelu", libm_gelu, cpu_math_gelu, 8.0f},       {"tanh", libm_tanh, cpu_math_tanh, 8.0f},
        {"sigmoid", libm_sigmoid, cpu_math_sigmoid, 8.0f}, {"softplus", libm_softplus, cpu_math_softplus, 8.0f},
    };
    float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
    if (!x || !y) return 1;
    cpu_math_isa best = cpu_math_isa_best();
    char json[8192];
    int len = snprintf(json, sizeof json,
                       "{\"benchmark\": \"cpu_math\", \"n\": %lld, \"threads\": 1, \"runs\": %d, \"best_isa\": \"%s\", "
                       "\"unit\": \"ns per element (median)\", \"rows\": [",
                       (long long)n, runs, cpu_math_isa_name(best));
    printf("cpu_math: ns/element, 1 thread, n = %lld, median of %d (best path here: %s)\n", (long long)n, runs,
           cpu_math_isa_name(best));
    printf("%-9s %9s %9s %9s %9s %9s\n", "function", "libm", "generic", "avx2", "avx512", "speedup");
    for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++) {
        unsigned seed = 12345;
        for (int64_t i = 0; i < n; i++) {
            seed = seed * 1664525u + 1013904223u;
            x[i] = fns[f].range * ((float)(seed >> 8) / 8388608.0f - 1.0f);
        }
        double libm = time_ns(fns[f].libm, x, y, n, runs), path[3] = {NAN, NAN, NAN};
        for (int isa = 0; isa <= (int)best; isa++) {
            cpu_math_force_isa(isa);
            path[isa] = time_ns(fns[f].fast, x, y, n, runs);
        }
        cpu_math_force_isa(-1);
        double speedup = libm / path[best];
        printf("%-9s %9.3f %9.3f %9.3f %9.3f %8.1fx\n", fns[f].name, libm, path[0], path[1], path[2], speedup);
        len += snprintf(json + len, sizeof json - (size_t)len,
                        "%s{\"function\": \"%s\", \"libm_ns\": %.4f, \"generic_ns\": %.4f, \"avx2_ns\": %s%.4f, "
                        "\"avx512_ns\": %s%.4f, \"speedup_best\": %.2f}",
                        f ? ", " : "", fns[f].name, libm, path[0], "", isnan(path[1]) ? -1.0 : path[1], "",
                        isnan(path[2]) ? -1.0 : path[2], speedup);
    }
    snprintf(json + len, sizeof json - (size_t)len, "]}");
    free(x);
    free(y);
    return bench_write_json(out, json);
}
