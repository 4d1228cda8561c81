/* Engine operator speed on the CPU back end at the sizes RVC v2 / so-vits-svc run them, as GFLOP/s
 * next to the sgemm rate this machine reaches in the same run (the ceiling for GEMM-shaped work).
 * A plain direct-loop conv1d is timed too: it is the alternative to im2col + sgemm.
 *
 * OpenMP's idle threads spin after each parallel region and then compete with OpenBLAS's own threads
 * for the cores (measured 10-30x slower GEMM-based ops at 16 threads), so unless OMP_WAIT_POLICY is
 * set already this program re-runs itself with OMP_WAIT_POLICY=passive; --as-is keeps the
 * environment to measure the difference.
 *
 * Usage: bench_engine_ops [--out PATH] [--runs N] [--threads N] [--as-is]
 *        (default bench/out/engine_ops.json) */
#include "autovoice/engine.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int runs = 5;
static int direct_threads = 1; /* threads for the direct-loop comparison: the back end's count */

static void die(const avo_error *err) {
    fprintf(stderr, "bench_engine_ops: %s\n", err->message);
    exit(1);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void fill_random(float *x, int64_t n, unsigned *seed) {
    for (int64_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        x[i] = (float)((*seed >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
}

/* A random f32 tensor in the arena. */
static avo_tensor rnd(avo_arena *a, int ndim, int64_t d0, int64_t d1, int64_t d2, unsigned *seed) {
    int64_t s[3] = {d0, d1, d2};
    avo_tensor t;
    avo_error err;
    if (avo_tensor_new(a, AVO_DTYPE_F32, ndim, s, &t, &err)) die(&err);
    fill_random(avo_tensor_f32(&t), avo_tensor_numel(&t), seed);
    return t;
}

typedef struct row {
    char name[64];
    double flops, ms;
} row;

static row rows[16];
static int nrows;

/* Times fn(user) runs times after one warm-up; the median in ms goes into a new row. */
typedef void (*bench_fn)(void *user);
static void timeit(const char *name, double flops, bench_fn fn, void *user) {
    double t[64];
    fn(user);
    for (int i = 0; i < runs; i++) {
        double t0 = avo_now_ms();
        fn(user);
        t[i] = avo_now_ms() - t0;
    }
    row *r = &rows[nrows++];
    snprintf(r->name, sizeof r->name, "%s", name);
    r->flops = flops;
    r->ms = median(t, runs);
}

/* ---- cases ---------------------------------------------------------------------------------- */

typedef struct ctx {
    avo_backend *be;
    avo_arena *a;
    avo_tensor x, w, b, y;
    avo_conv1d_params cp;
    avo_conv_transpose1d_params tp;
    avo_tensor g[8];
    avo_gru_weights gw;
    int heads, window;
    float *A, *B, *C;
    int m, n, k;
} ctx;

static void run_sgemm(void *u) {
    ctx *c = u;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->m, c->n, c->k, 1.0f, c->A, c->k, c->B, c->n, 0.0f, c->C, c->n);
}
static void run_conv(void *u) {
    ctx *c = u;
    avo_error err;
    avo_arena_mark m = avo_arena_get_mark(c->a);
    avo_tensor y = {0};
    if (avo_op_conv1d(c->be, c->a, &c->x, &c->w, &c->b, &c->cp, &y, &err)) die(&err);
    avo_arena_rewind(c->a, m);
}
/* The alternative to im2col: a direct loop, vectorised over time, threaded over output channels. */
static void run_conv_direct(void *u) {
    ctx *c = u;
    int64_t cin = c->x.shape[0], t = c->x.shape[1], cout = c->w.shape[0], k = c->w.shape[2], pad = c->cp.padding;
    const float *X = c->x.data, *W = c->w.data, *B = c->b.data;
    float *Y = c->y.data;
#pragma omp parallel for num_threads(direct_threads)
    for (int64_t o = 0; o < cout; o++) {
        float *yr = Y + o * t;
        for (int64_t i = 0; i < t; i++) yr[i] = B[o];
        for (int64_t ci = 0; ci < cin; ci++)
            for (int64_t kk = 0; kk < k; kk++) {
                float wv = W[(o * cin + ci) * k + kk];
                int64_t off = kk - pad, lo = off < 0 ? -off : 0, hi = t - off < t ? t - off : t;
                const float *xs = X + ci * t + off;
                for (int64_t i = lo; i < hi; i++) yr[i] += wv * xs[i];
            }
    }
}
static void run_convt(void *u) {
    ctx *c = u;
    avo_error err;
    avo_arena_mark m = avo_arena_get_mark(c->a);
    avo_tensor y = {0};
    if (avo_op_conv_transpose1d(c->be, c->a, &c->x, &c->w, &c->b, &c->tp, &y, &err)) die(&err);
    avo_arena_rewind(c->a, m);
}
static void run_linear(void *u) {
    ctx *c = u;
    avo_error err;
    avo_arena_mark m = avo_arena_get_mark(c->a);
    avo_tensor y = {0};
    if (avo_op_linear(c->be, c->a, &c->x, &c->w, &c->b, &y, &err)) die(&err);
    avo_arena_rewind(c->a, m);
}
static void run_gru(void *u) {
    ctx *c = u;
    avo_error err;
    avo_arena_mark m = avo_arena_get_mark(c->a);
    avo_tensor y = {0};
    if (avo_op_bigru(c->be, c->a, &c->x, &c->gw, &y, &err)) die(&err);
    avo_arena_rewind(c->a, m);
}
static void run_attn(void *u) {
    ctx *c = u;
    avo_error err;
    avo_arena_mark m = avo_arena_get_mark(c->a);
    avo_tensor y = {0};
    if (avo_op_rel_attention(c->be, c->a, &c->x, &c->x, &c->x, &c->g[0], &c->g[1], c->heads, c->window, &y, &err))
        die(&err);
    avo_arena_rewind(c->a, m);
}

int main(int argc, char **argv) {
    const char *out = "bench/out/engine_ops.json";
    int threads = 0;
    bool as_is = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--as-is")) as_is = true;
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_engine_ops [--out PATH] [--runs N] [--threads N]\n");
            return 2;
        }
    }
    if (!as_is && !getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
        fprintf(stderr, "bench_engine_ops: cannot re-run with OMP_WAIT_POLICY=passive; measuring as is\n");
    }
    const char *policy = getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "unset";
    direct_threads = threads > 0 ? threads : omp_get_num_procs();
    if (runs < 1) runs = 1;
    if (runs > 64) runs = 64;
    avo_error err;
    ctx c;
    memset(&c, 0, sizeof c);
    if (avo_backend_cpu_create(threads, &c.be, &err)) die(&err);
    if (avo_arena_create(c.be, 256u << 20, &c.a, &err)) die(&err);
    unsigned seed = 7;

    /* sgemm ceiling: a square-ish product of the size the ops below reduce to */
    c.m = 768, c.n = 1536, c.k = 768;
    c.A = malloc(sizeof(float) * 768 * 768), c.B = malloc(sizeof(float) * 768 * 1536), c.C = malloc(sizeof(float) * 768 * 1536);
    fill_random(c.A, 768 * 768, &seed), fill_random(c.B, 768 * 1536, &seed);
    timeit("sgemm 768x768x1536 (ceiling)", 2.0 * c.m * c.n * c.k, run_sgemm, &c);

    for (int k = 3; k <= 5; k += 2) {
        avo_arena_reset(c.a);
        c.x = rnd(c.a, 2, 192, 3000, 0, &seed), c.w = rnd(c.a, 3, 192, 192, k, &seed), c.b = rnd(c.a, 1, 192, 0, 0, &seed);
        c.y = rnd(c.a, 2, 192, 3000, 0, &seed);
        c.cp = (avo_conv1d_params){1, k / 2, 1, 1};
        char name[64];
        double fl = 2.0 * 192 * 192 * k * 3000;
        snprintf(name, sizeof name, "conv1d 192->192 k=%d T=3000", k);
        timeit(name, fl, run_conv, &c);
        snprintf(name, sizeof name, "  direct loop, same conv k=%d", k);
        timeit(name, fl, run_conv_direct, &c);
    }
    avo_arena_reset(c.a);
    c.x = rnd(c.a, 2, 192, 3000, 0, &seed), c.w = rnd(c.a, 3, 192, 1, 3, &seed), c.b = rnd(c.a, 1, 192, 0, 0, &seed);
    c.cp = (avo_conv1d_params){1, 2, 2, 192};
    timeit("conv1d depthwise 192 k=3 d=2 T=3000", 2.0 * 192 * 3 * 3000, run_conv, &c);

    avo_arena_reset(c.a);
    c.x = rnd(c.a, 2, 512, 500, 0, &seed), c.w = rnd(c.a, 3, 512, 256, 16, &seed), c.b = rnd(c.a, 1, 256, 0, 0, &seed);
    c.tp = (avo_conv_transpose1d_params){8, 4, 0, 1, 1};
    timeit("conv_transpose1d 512->256 k=16 s=8 T=500", 2.0 * 512 * 256 * 16 * 500, run_convt, &c);

    avo_arena_reset(c.a);
    c.x = rnd(c.a, 2, 1500, 768, 0, &seed), c.w = rnd(c.a, 2, 768, 768, 0, &seed), c.b = rnd(c.a, 1, 768, 0, 0, &seed);
    timeit("linear 768x768 T=1500", 2.0 * 1500 * 768 * 768, run_linear, &c);

    avo_arena_reset(c.a);
    c.x = rnd(c.a, 2, 3000, 384, 0, &seed);
    for (int d = 0; d < 2; d++) {
        c.g[4 * d + 0] = rnd(c.a, 2, 768, 384, 0, &seed), c.g[4 * d + 1] = rnd(c.a, 2, 768, 256, 0, &seed);
        c.g[4 * d + 2] = rnd(c.a, 1, 768, 0, 0, &seed), c.g[4 * d + 3] = rnd(c.a, 1, 768, 0, 0, &seed);
        c.gw.w_ih[d] = &c.g[4 * d], c.gw.w_hh[d] = &c.g[4 * d + 1], c.gw.b_ih[d] = &c.g[4 * d + 2],
        c.gw.b_hh[d] = &c.g[4 * d + 3];
    }
    timeit("bigru in=384 h=256 T=3000", 2.0 * 2 * 3000 * (384.0 * 768 + 256.0 * 768), run_gru, &c);

    avo_arena_reset(c.a);
    c.x = rnd(c.a, 2, 192, 1000, 0, &seed), c.g[0] = rnd(c.a, 3, 1, 21, 96, &seed), c.g[1] = rnd(c.a, 3, 1, 21, 96, &seed);
    c.heads = 2, c.window = 10;
    timeit("rel_attention C=192 h=2 w=10 T=1000", 2.0 * 2 * (2.0 * 1000 * 1000 * 96 + 2.0 * 1000 * 21 * 96), run_attn, &c);

    double peak = rows[0].flops / (rows[0].ms * 1e6);
    printf("CPU back end, %d threads, OMP_WAIT_POLICY=%s, median of %d runs\n", threads > 0 ? threads : omp_get_num_procs(),
           policy, runs);
    printf("%-42s %10s %10s %8s\n", "op", "ms", "GFLOP/s", "of sgemm");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        mkdir(dir, 0755);
    }
    FILE *f = fopen(out, "w");
    if (!f) fprintf(stderr, "bench_engine_ops: cannot write %s\n", out);
    if (f)
        fprintf(f, "{\n  \"backend\": \"%s\",\n  \"omp_wait_policy\": \"%s\",\n  \"threads\": %d,\n  \"runs\": %d,\n  \"sgemm_gflops\": %.3f,\n  \"ops\": [\n",
                avo_backend_name(c.be), policy, threads > 0 ? threads : omp_get_num_procs(), runs, peak);
    for (int i = 0; i < nrows; i++) {
        double gf = rows[i].flops / (rows[i].ms * 1e6);
        const char *name = rows[i].name[0] == ' ' ? rows[i].name + 2 : rows[i].name;
        printf("%-42s %10.2f %10.2f %7.0f%%\n", rows[i].name, rows[i].ms, gf, 100.0 * gf / peak);
        if (f)
            fprintf(f, "    {\"op\": \"%s\", \"median_ms\": %.4f, \"gflops\": %.3f, \"fraction_of_sgemm\": %.4f}%s\n",
                    name, rows[i].ms, gf, gf / peak, i + 1 < nrows ? "," : "");
    }
    if (f) {
        fprintf(f, "  ]\n}\n");
        fclose(f);
        printf("wrote %s\n", out);
    }
    free(c.A), free(c.B), free(c.C);
    avo_arena_free(c.a);
    avo_backend_free(c.be);
    return 0;
}
