/* FP32 linear speed on the CPU back end: the AVX-512 kernel (cpu_linear_f32.c) against OpenBLAS
 * sgemm (the back end's path with the direct kernels switched off), in the same run, interleaved
 * repeat by repeat, on HuBERT's transformer shapes (1500 frames = 30 s) and smaller row counts.
 * GFLOP/s counts 2 * rows * in * out per second of wall time and of process CPU time. The "avx512"
 * columns are the back end's own choice: where "auto" says sgemm (few rows) both columns run sgemm.
 *
 * Also avo_op_rel_attention at HuBERT's size (768 channels, 12 heads, 1500 frames, window 0) and at
 * RVC's text encoder's (192 channels, 2 heads, window 10), whose two T x T products take the same
 * AVX-512 kernels (on) or sgemm (off).
 *
 * And HuBERT's grouped positional conv (768 channels, 16 groups, k 128, 1500 frames): the direct
 * kernel per group (on) against im2col + sgemm (off).
 *
 * usage: bench_linear [--repeats N] [--threads N] [--out PATH]
 *        (default 7 repeats, 2 threads, bench/out/linear.json) */
#include "autovoice/engine.h"
#include "bench_common.h"
#include "engine/cpu_conv1d.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct lshape {
    const char *name;
    int rows, in, out;
} lshape;

static const lshape shapes[] = {
    {"hubert qkv/out 768->768", 1500, 768, 768}, {"hubert ffn1 768->3072", 1500, 768, 3072},
    {"hubert ffn2 3072->768", 1500, 3072, 768},  {"hubert proj 768->256", 1500, 768, 256},
    {"rvc emb 768->192", 1500, 768, 192},        {"short 100 rows 768->768", 100, 768, 768},
    {"short 30 rows 768->768", 30, 768, 768},    {"odd 1001 rows 500->333", 1001, 500, 333},
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))

static void fill(float *p, int64_t n, unsigned seed) {
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / 8388608.0f - 1.0f;
    }
}

static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void run_once(avo_backend *be, avo_arena *a, const avo_tensor *X, const avo_tensor *W, const avo_tensor *B,
                     bool direct, float *out, int64_t n, double *ms, double *cms) {
    avo_error err;
    cpu_backend_set_direct_conv(be, direct);
    avo_arena_mark m = avo_arena_get_mark(a);
    avo_tensor Y = {0};
    double t0 = avo_now_ms(), c0 = cpu_ms();
    if (avo_op_linear(be, a, X, W, B, &Y, &err)) bench_die(&err);
    *ms = avo_now_ms() - t0;
    *cms = cpu_ms() - c0;
    if (out && avo_tensor_to_host(a, &Y, out, n, &err)) bench_die(&err);
    avo_arena_rewind(a, m);
}

static void att_once(avo_backend *be, avo_arena *a, const avo_tensor *Q, const avo_tensor *K, const avo_tensor *V,
                     const avo_tensor *EK, const avo_tensor *EV, int heads, int window, bool direct, float *out, int64_t n,
                     double *ms, double *cms) {
    avo_error err;
    cpu_backend_set_direct_conv(be, direct);
    avo_arena_mark m = avo_arena_get_mark(a);
    avo_tensor Y = {0};
    double t0 = avo_now_ms(), c0 = cpu_ms();
    if (avo_op_rel_attention(be, a, Q, K, V, EK, EV, heads, window, &Y, &err)) bench_die(&err);
    *ms = avo_now_ms() - t0;
    *cms = cpu_ms() - c0;
    if (out && avo_tensor_to_host(a, &Y, out, n, &err)) bench_die(&err);
    avo_arena_rewind(a, m);
}

/* One attention row: median wall and CPU ms of sgemm (0) and the AVX-512 products (1). */
static int att_row(avo_backend *be, avo_arena *a, const char *name, int c, int heads, int window, int t, int repeats,
                   char *json, int len, size_t cap) {
    avo_error err;
    avo_arena_reset(a);
    int64_t xs[2] = {c, t}, es[3] = {1, 2 * window + 1, c / heads}, n = (int64_t)c * t;
    float *h = malloc(sizeof(float) * (size_t)n), *y0 = malloc(sizeof(float) * (size_t)n), *y1 = malloc(sizeof(float) * (size_t)n);
    avo_tensor T[5];
    for (int i = 0; i < 5; i++) {
        int64_t cnt = i < 3 ? n : es[1] * es[2];
        fill(h, cnt, 10 + (unsigned)i);
        if (i >= 3 && !window) break;
        if (avo_tensor_from_host(a, i < 3 ? 2 : 3, i < 3 ? xs : es, h, &T[i], &err)) bench_die(&err);
    }
    const avo_tensor *EK = window ? &T[3] : NULL, *EV = window ? &T[4] : NULL;
    double w0[64], w1[64], c0[64], c1[64], d;
    att_once(be, a, &T[0], &T[1], &T[2], EK, EV, heads, window, false, NULL, 0, &d, &d);
    att_once(be, a, &T[0], &T[1], &T[2], EK, EV, heads, window, true, NULL, 0, &d, &d);
    for (int r = 0; r < repeats; r++) {
        att_once(be, a, &T[0], &T[1], &T[2], EK, EV, heads, window, false, r == 0 ? y0 : NULL, n, &w0[r], &c0[r]);
        att_once(be, a, &T[0], &T[1], &T[2], EK, EV, heads, window, true, r == 0 ? y1 : NULL, n, &w1[r], &c1[r]);
    }
    double e = 0, mx = 0;
    for (int64_t j = 0; j < n; j++) {
        double df = fabs((double)y1[j] - y0[j]);
        e = df > e ? df : e;
        mx = fabs(y0[j]) > mx ? fabs(y0[j]) : mx;
    }
    double rel = mx > 0 ? e / mx : 0, flop = 4.0 * c * (double)t * t;
    double m0 = bench_median(w0, repeats), m1 = bench_median(w1, repeats), k0 = bench_median(c0, repeats),
           k1 = bench_median(c1, repeats);
    printf("%-26s %9.2f %9.2f %8.1f %8.1f %8.1f %8.1f %8.2f %9.1e %s\n", name, m0, m1, flop / m0 / 1e6, flop / m1 / 1e6,
           flop / k0 / 1e6, flop / k1 / 1e6, k0 / k1, rel, "avx512");
    len += snprintf(json + len, cap - (size_t)len,
                    ", {\"shape\": \"%s\", \"sgemm_ms\": %.3f, \"avx512_ms\": %.3f, \"sgemm_cpu_ms\": %.3f, "
                    "\"avx512_cpu_ms\": %.3f, \"gflop\": %.4f, \"rel_error\": %.2e, \"auto\": \"avx512\"}",
                    name, m0, m1, k0, k1, flop / 1e9, rel);
    free(h);
    free(y0);
    free(y1);
    return len;
}

static void pos_once(avo_backend *be, avo_arena *a, const avo_tensor *X, const avo_tensor *W, const avo_tensor *B,
                     bool direct, float *out, int64_t n, double *ms, double *cms) {
    avo_error err;
    cpu_backend_set_direct_conv(be, direct);
    avo_arena_mark m = avo_arena_get_mark(a);
    avo_tensor Y = {0};
    avo_conv1d_params p = {.stride = 1, .padding = 64, .dilation = 1, .groups = 16};
    double t0 = avo_now_ms(), c0 = cpu_ms();
    if (avo_op_conv1d(be, a, X, W, B, &p, &Y, &err)) bench_die(&err);
    *ms = avo_now_ms() - t0;
    *cms = cpu_ms() - c0;
    if (out && avo_tensor_to_host(a, &Y, out, n, &err)) bench_die(&err);
    avo_arena_rewind(a, m);
}

static int pos_row(avo_backend *be, avo_arena *a, int repeats, char *json, int len, size_t cap) {
    avo_error err;
    avo_arena_reset(a);
    const int c = 768, t = 1500, k = 128, cg = 48;
    int64_t xs[2] = {c, t}, ws[3] = {c, cg, k}, bs[1] = {c}, n = (int64_t)c * (t + 1);
    float *h = malloc(sizeof(float) * (size_t)(c * cg * k)), *y0 = malloc(sizeof(float) * (size_t)n),
          *y1 = malloc(sizeof(float) * (size_t)n);
    avo_tensor X, W, B;
    fill(h, (int64_t)c * t, 20);
    if (avo_tensor_from_host(a, 2, xs, h, &X, &err)) bench_die(&err);
    fill(h, (int64_t)c * cg * k, 21);
    if (avo_tensor_from_host(a, 3, ws, h, &W, &err)) bench_die(&err);
    fill(h, c, 22);
    if (avo_tensor_from_host(a, 1, bs, h, &B, &err)) bench_die(&err);
    double w0[64], w1[64], c0[64], c1[64], d;
    pos_once(be, a, &X, &W, &B, false, NULL, 0, &d, &d);
    pos_once(be, a, &X, &W, &B, true, NULL, 0, &d, &d);
    for (int r = 0; r < repeats; r++) {
        pos_once(be, a, &X, &W, &B, false, r == 0 ? y0 : NULL, n, &w0[r], &c0[r]);
        pos_once(be, a, &X, &W, &B, true, r == 0 ? y1 : NULL, n, &w1[r], &c1[r]);
    }
    double e = 0, mx = 0;
    for (int64_t j = 0; j < n; j++) {
        double df = fabs((double)y1[j] - y0[j]);
        e = df > e ? df : e;
        mx = fabs(y0[j]) > mx ? fabs(y0[j]) : mx;
    }
    double rel = mx > 0 ? e / mx : 0, flop = 2.0 * c * cg * k * (double)(t + 1);
    double m0 = bench_median(w0, repeats), m1 = bench_median(w1, repeats), k0 = bench_median(c0, repeats),
           k1 = bench_median(c1, repeats);
    printf("%-26s %9.2f %9.2f %8.1f %8.1f %8.1f %8.1f %8.2f %9.1e %s\n", "hubert pos conv g16 k128", m0, m1, flop / m0 / 1e6,
           flop / m1 / 1e6, flop / k0 / 1e6, flop / k1 / 1e6, k0 / k1, rel, "direct");
    len += snprintf(json + len, cap - (size_t)len,
                    ", {\"shape\": \"hubert pos conv g16 k128\", \"sgemm_ms\": %.3f, \"avx512_ms\": %.3f, "
                    "\"sgemm_cpu_ms\": %.3f, \"avx512_cpu_ms\": %.3f, \"gflop\": %.4f, \"rel_error\": %.2e, "
                    "\"auto\": \"direct\"}",
                    m0, m1, k0, k1, flop / 1e9, rel);
    free(h);
    free(y0);
    free(y1);
    return len;
}

int main(int argc, char **argv) {
    int repeats = 7, threads = 2;
    const char *outp = "bench/out/linear.json";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) outp = argv[++i];
        else {
            fprintf(stderr, "usage: bench_linear [--repeats N] [--threads N] [--out PATH]\n");
            return 2;
        }
    }
    if (repeats < 1) repeats = 1;
    if (repeats > 64) repeats = 64;
    avo_error err;
    avo_backend *be = NULL;
    avo_arena *a = NULL;
    if (avo_backend_cpu_create(threads, &be, &err) || avo_arena_create(be, (size_t)64 << 20, &a, &err)) bench_die(&err);
    printf("FP32 linear, %d threads, median of %d interleaved repeats (AVX-512 kernel %s)\n", threads, repeats,
           cpu_conv1d_avx512_available() ? "yes" : "no");
    printf("%-26s %9s %9s %8s %8s %8s %8s %8s %9s %s\n", "shape", "sgemm ms", "avx512 ms", "sgemm", "avx512", "sgemm",
           "avx512", "cpu", "rel err", "auto");
    printf("%-26s %9s %9s %8s %8s %8s %8s %8s %9s\n", "", "(wall)", "(wall)", "GF/s", "GF/s", "cpuGF/s", "cpuGF/s", "speedup",
           "");
    char json[8192];
    int len = snprintf(json, sizeof json, "{\"benchmark\": \"linear\", \"threads\": %d, \"repeats\": %d, \"rows\": [",
                       threads, repeats);
    for (int i = 0; i < NSHAPES; i++) {
        const lshape *s = &shapes[i];
        avo_arena_reset(a);
        int64_t xs[2] = {s->rows, s->in}, ws[2] = {s->out, s->in}, bs[1] = {s->out}, ny = (int64_t)s->rows * s->out;
        float *h = malloc(sizeof(float) * (size_t)((int64_t)s->rows * s->in + (int64_t)s->out * s->in));
        float *y0 = malloc(sizeof(float) * (size_t)ny), *y1 = malloc(sizeof(float) * (size_t)ny);
        avo_tensor X, W, B;
        fill(h, (int64_t)s->rows * s->in, 1);
        if (avo_tensor_from_host(a, 2, xs, h, &X, &err)) bench_die(&err);
        fill(h, (int64_t)s->out * s->in, 2);
        if (avo_tensor_from_host(a, 2, ws, h, &W, &err)) bench_die(&err);
        fill(h, s->out, 3);
        if (avo_tensor_from_host(a, 1, bs, h, &B, &err)) bench_die(&err);
        double w0[64], w1[64], c0[64], c1[64], d;
        run_once(be, a, &X, &W, &B, false, NULL, 0, &d, &d); /* warm-up */
        run_once(be, a, &X, &W, &B, true, NULL, 0, &d, &d);
        for (int r = 0; r < repeats; r++) {
            run_once(be, a, &X, &W, &B, false, r == 0 ? y0 : NULL, ny, &w0[r], &c0[r]);
            run_once(be, a, &X, &W, &B, true, r == 0 ? y1 : NULL, ny, &w1[r], &c1[r]);
        }
        double e = 0, mx = 0;
        for (int64_t j = 0; j < ny; j++) {
            double df = fabs((double)y1[j] - y0[j]);
            e = df > e ? df : e;
            mx = fabs(y0[j]) > mx ? fabs(y0[j]) : mx;
        }
        double rel = mx > 0 ? e / mx : 0, flop = 2.0 * s->rows * s->in * s->out;
        double m0 = bench_median(w0, repeats), m1 = bench_median(w1, repeats), k0 = bench_median(c0, repeats),
               k1 = bench_median(c1, repeats);
        bool pref = cpu_linear_f32_preferred(s->rows, s->in, s->out);
        printf("%-26s %9.2f %9.2f %8.1f %8.1f %8.1f %8.1f %8.2f %9.1e %s\n", s->name, m0, m1, flop / m0 / 1e6, flop / m1 / 1e6,
               flop / k0 / 1e6, flop / k1 / 1e6, k0 / k1, rel, pref ? "avx512" : "sgemm");
        len += snprintf(json + len, sizeof json - (size_t)len,
                        "%s{\"shape\": \"%s\", \"sgemm_ms\": %.3f, \"avx512_ms\": %.3f, \"sgemm_cpu_ms\": %.3f, "
                        "\"avx512_cpu_ms\": %.3f, \"gflop\": %.4f, \"rel_error\": %.2e, \"auto\": \"%s\"}",
                        i ? ", " : "", s->name, m0, m1, k0, k1, flop / 1e9, rel, pref ? "avx512" : "sgemm");
        free(h);
        free(y0);
        free(y1);
    }
    len = att_row(be, a, "attention hubert 12h w0", 768, 12, 0, 1500, repeats, json, len, sizeof json);
    len = att_row(be, a, "attention rvc enc 2h w10", 192, 2, 10, 1500, repeats, json, len, sizeof json);
    len = pos_row(be, a, repeats, json, len, sizeof json);
    cpu_backend_set_direct_conv(be, true);
    len += snprintf(json + len, sizeof json - (size_t)len, "]}");
    avo_arena_free(a);
    avo_backend_free(be);
    return bench_write_json(outp, json);
}
