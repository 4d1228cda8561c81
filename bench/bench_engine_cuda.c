/* Engine operators on the CUDA back end (FP32 and FP16 mode) next to the CPU back end, at the sizes
 * HuBERT, RVC v2 and RMVPE run them on about 10-20 s of audio, plus the two ceilings of the GPU as
 * this back end reaches them: device copy bandwidth (bytes read + written) and the SGEMM / half GEMM
 * rate of a 4096^3 product through the linear op. scripts/gpu-check.sh runs it (and PyTorch on the
 * same cases) and prints the table.
 *
 * GPU times: a warm-up, then the median over 5 batches of back-to-back runs between two syncs, so
 * launch overhead counts as it would in a model. CPU times: median of 3 after a warm-up.
 *
 * Usage: bench_engine_cuda [--out PATH] [--no-cpu] [--threads N] (default bench/out/engine_cuda.json) */
#include "autovoice/engine.h"

#include "bench_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(const char *what, const avo_error *err) {
    fprintf(stderr, "bench_engine_cuda: %s: %s\n", what, err->message);
    exit(1);
}

static uint32_t rng = 99u;
static float *host_rand(int64_t n, float scale) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_engine_cuda: out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < n; i++) {
        rng = rng * 1664525u + 1013904223u;
        p[i] = scale * ((float)((rng >> 8) & 0xffffff) / 8388608.0f - 1.0f);
    }
    return p;
}

/* ---- cases ---------------------------------------------------------------------------------- */

enum { OP_LINEAR, OP_CONV1D, OP_CONVT1D, OP_LN, OP_GN, OP_GELU, OP_ADD, OP_ATT, OP_GRU, OP_CONV2D, OP_CONVT2D,
       OP_POOL2D, OP_TRANSPOSE, OP_UPSAMPLE, OP_COPY };

typedef struct bcase {
    const char *name;
    int op;
    int64_t d[8]; /* sizes, per op (see setup) */
    bool gemm;    /* worth an FP16 run */
    bool cpu;     /* worth a CPU run */
} bcase;

static const bcase cases[] = {
    {"linear 1000x768 -> 768", OP_LINEAR, {1000, 768, 768}, true, true},
    {"linear 1000x768 -> 3072", OP_LINEAR, {1000, 768, 3072}, true, true},
    {"conv1d 192->192 k3 T3000", OP_CONV1D, {192, 192, 3000, 3, 1, 1, 1, 1}, true, true},
    {"conv1d 192->192 k5 T3000", OP_CONV1D, {192, 192, 3000, 5, 1, 2, 1, 1}, true, true},
    {"conv1d 512->512 k3 s2 T64000", OP_CONV1D, {512, 512, 64000, 3, 2, 0, 1, 1}, true, true},
    {"conv1d 768->768 k128 g16 T1000", OP_CONV1D, {768, 768, 1000, 128, 1, 64, 1, 16}, true, true},
    {"conv1d 256->256 k3 d3 T10000", OP_CONV1D, {256, 256, 10000, 3, 1, 3, 3, 1}, true, true},
    {"conv_transpose1d 512->256 k16 s10 T1000", OP_CONVT1D, {512, 256, 1000, 16, 10, 3}, true, true},
    {"conv_transpose1d 128->64 k4 s2 T40000", OP_CONVT1D, {128, 64, 40000, 4, 2, 1}, true, true},
    {"layer_norm 768x1000", OP_LN, {768, 1000}, false, true},
    {"group_norm 512x64000 g512", OP_GN, {512, 64000, 512}, false, true},
    {"gelu 3072x1000", OP_GELU, {3072, 1000}, false, true},
    {"add 768x1000", OP_ADD, {768, 1000}, false, true},
    {"attention C768 h12 T1000", OP_ATT, {768, 1000, 12, 0}, false, true},
    {"attention C192 h2 T3000 w10", OP_ATT, {192, 3000, 2, 10}, false, true},
    {"bigru T1000 in384 H256", OP_GRU, {1000, 384, 256}, true, true},
    {"conv2d 16->16 3x3 1000x128 relu+res", OP_CONV2D, {16, 16, 1000, 128}, true, true},
    {"conv2d 128->128 3x3 250x16 relu+res", OP_CONV2D, {128, 128, 250, 16}, true, true},
    {"conv_transpose2d 64->32 3x3 s2 250x16", OP_CONVT2D, {64, 32, 250, 16}, true, true},
    {"pool2d avg 2x2 16x1000x128", OP_POOL2D, {16, 1000, 128}, false, true},
    {"transpose 768x1000", OP_TRANSPOSE, {768, 1000}, false, true},
    {"upsample linear 192x1000 -> 2000", OP_UPSAMPLE, {192, 1000, 2000}, false, true},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

typedef struct ctx {
    avo_backend *be;
    avo_arena *a;
    avo_tensor t[8];
    avo_gru_weights gw;
    double flops, bytes;
} ctx;

static avo_tensor up(ctx *c, int ndim, const int64_t *shape, float scale) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *h = host_rand(n, scale);
    avo_tensor t;
    avo_error err;
    if (avo_tensor_from_host(c->a, ndim, shape, h, &t, &err)) die("tensor", &err);
    free(h);
    return t;
}
#define UP(c, scale, ...) \
    up(c, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}, scale)

/* Inputs of case k in c's arena, and its operation and byte counts (each input read, output written once). */
static void setup(ctx *c, const bcase *k) {
    const int64_t *d = k->d;
    c->flops = c->bytes = 0;
    switch (k->op) {
    case OP_LINEAR:
        c->t[0] = UP(c, 1.0f, d[0], d[1]), c->t[1] = UP(c, 0.05f, d[2], d[1]), c->t[2] = UP(c, 0.1f, d[2]);
        c->flops = 2.0 * d[0] * d[1] * d[2];
        c->bytes = 4.0 * (d[0] * d[1] + d[2] * d[1] + d[0] * d[2]);
        break;
    case OP_CONV1D: {
        int64_t tout = (d[2] + 2 * d[5] - d[6] * (d[3] - 1) - 1) / d[4] + 1;
        c->t[0] = UP(c, 1.0f, d[0], d[2]), c->t[1] = UP(c, 0.05f, d[1], d[0] / d[7], d[3]), c->t[2] = UP(c, 0.1f, d[1]);
        c->flops = 2.0 * d[1] * (d[0] / d[7]) * d[3] * tout;
        c->bytes = 4.0 * (d[0] * d[2] + d[1] * d[0] / d[7] * d[3] + d[1] * tout);
        break;
    }
    case OP_CONVT1D: {
        int64_t tout = (d[2] - 1) * d[4] - 2 * d[5] + d[3];
        c->t[0] = UP(c, 1.0f, d[0], d[2]), c->t[1] = UP(c, 0.05f, d[0], d[1], d[3]), c->t[2] = UP(c, 0.1f, d[1]);
        c->flops = 2.0 * d[0] * d[1] * d[3] * d[2];
        c->bytes = 4.0 * (d[0] * d[2] + d[0] * d[1] * d[3] + d[1] * tout);
        break;
    }
    case OP_LN:
    case OP_GN:
        c->t[0] = UP(c, 1.0f, d[0], d[1]), c->t[1] = UP(c, 1.0f, d[0]), c->t[2] = UP(c, 1.0f, d[0]);
        c->bytes = 8.0 * d[0] * d[1];
        break;
    case OP_GELU:
    case OP_TRANSPOSE:
        c->t[0] = UP(c, 1.0f, d[0], d[1]);
        c->bytes = 8.0 * d[0] * d[1];
        break;
    case OP_ADD:
        c->t[0] = UP(c, 1.0f, d[0], d[1]), c->t[1] = UP(c, 1.0f, d[0], d[1]);
        c->bytes = 12.0 * d[0] * d[1];
        break;
    case OP_ATT: {
        int64_t kc = d[0] / d[2], nr = 2 * d[3] + 1;
        c->t[0] = UP(c, 1.0f, d[0], d[1]), c->t[1] = UP(c, 1.0f, d[0], d[1]), c->t[2] = UP(c, 1.0f, d[0], d[1]);
        c->t[3] = UP(c, 0.5f, 1, nr, kc), c->t[4] = UP(c, 0.5f, 1, nr, kc);
        c->flops = 4.0 * d[0] * d[1] * d[1];
        c->bytes = 16.0 * d[0] * d[1];
        break;
    }
    case OP_GRU:
        c->t[0] = UP(c, 1.0f, d[0], d[1]);
        for (int dir = 0; dir < 2; dir++) {
            c->t[1 + dir * 3] = UP(c, 0.05f, 3 * d[2], d[1]);
            c->t[2 + dir * 3] = UP(c, 0.06f, 3 * d[2], d[2]);
            c->t[3 + dir * 3] = UP(c, 0.1f, 3 * d[2]);
            c->gw.w_ih[dir] = &c->t[1 + dir * 3];
            c->gw.w_hh[dir] = &c->t[2 + dir * 3];
            c->gw.b_ih[dir] = c->gw.b_hh[dir] = &c->t[3 + dir * 3];
        }
        c->flops = 2.0 * 2 * d[0] * 3 * d[2] * (d[1] + d[2]);
        c->bytes = 4.0 * (d[0] * d[1] + 2 * d[0] * d[2]);
        break;
    case OP_CONV2D:
        c->t[0] = UP(c, 1.0f, d[0], d[2], d[3]), c->t[1] = UP(c, 0.05f, d[1], d[0], 3, 3), c->t[2] = UP(c, 0.1f, d[1]);
        c->t[3] = UP(c, 1.0f, d[1], d[2], d[3]);
        c->flops = 2.0 * d[1] * d[0] * 9 * d[2] * d[3];
        c->bytes = 4.0 * (d[0] + 2 * d[1]) * d[2] * d[3];
        break;
    case OP_CONVT2D:
        c->t[0] = UP(c, 1.0f, d[0], d[2], d[3]), c->t[1] = UP(c, 0.05f, d[0], d[1], 3, 3), c->t[2] = UP(c, 0.1f, d[1]);
        c->flops = 2.0 * d[0] * d[1] * 9 * d[2] * d[3];
        c->bytes = 4.0 * (d[0] * d[2] * d[3] + d[1] * 4 * d[2] * d[3]);
        break;
    case OP_POOL2D:
        c->t[0] = UP(c, 1.0f, d[0], d[1], d[2]);
        c->bytes = 4.0 * d[0] * d[1] * d[2] * 1.25;
        break;
    case OP_UPSAMPLE:
        c->t[0] = UP(c, 1.0f, d[0], d[1]);
        c->bytes = 4.0 * d[0] * (d[1] + d[2]);
        break;
    }
}

static void run(ctx *c, const bcase *k) {
    const int64_t *d = k->d;
    avo_error err;
    avo_tensor y = {0};
    avo_status st = AVO_OK;
    avo_arena_mark m = avo_arena_get_mark(c->a);
    switch (k->op) {
    case OP_LINEAR: st = avo_op_linear(c->be, c->a, &c->t[0], &c->t[1], &c->t[2], &y, &err); break;
    case OP_CONV1D: {
        avo_conv1d_params p = {(int)d[4], (int)d[5], (int)d[6], (int)d[7]};
        st = avo_op_conv1d(c->be, c->a, &c->t[0], &c->t[1], &c->t[2], &p, &y, &err);
        break;
    }
    case OP_CONVT1D: {
        avo_conv_transpose1d_params p = {(int)d[4], (int)d[5], 0, 1, 1};
        st = avo_op_conv_transpose1d(c->be, c->a, &c->t[0], &c->t[1], &c->t[2], &p, &y, &err);
        break;
    }
    case OP_LN: st = avo_op_layer_norm(c->be, c->a, &c->t[0], &c->t[1], &c->t[2], 1e-5f, &y, &err); break;
    case OP_GN: st = avo_op_group_norm(c->be, c->a, &c->t[0], (int)d[2], &c->t[1], &c->t[2], 1e-5f, &y, &err); break;
    case OP_GELU: st = avo_op_act(c->be, c->a, &c->t[0], AVO_ACT_GELU, 0.0f, &y, &err); break;
    case OP_ADD: st = avo_op_add(c->be, c->a, &c->t[0], &c->t[1], &y, &err); break;
    case OP_ATT:
        st = avo_op_rel_attention(c->be, c->a, &c->t[0], &c->t[1], &c->t[2], &c->t[3], &c->t[4], (int)d[2], (int)d[3], &y,
                                  &err);
        break;
    case OP_GRU: st = avo_op_bigru(c->be, c->a, &c->t[0], &c->gw, &y, &err); break;
    case OP_CONV2D: {
        avo_conv2d_params p = {{1, 1}, {1, 1}, {1, 1}, 1, true};
        st = avo_op_conv2d(c->be, c->a, &c->t[0], &c->t[1], &c->t[2], &p, &c->t[3], &y, &err);
        break;
    }
    case OP_CONVT2D: {
        avo_conv_transpose2d_params p = {{2, 2}, {1, 1}, {1, 1}, true};
        st = avo_op_conv_transpose2d(c->be, c->a, &c->t[0], &c->t[1], &c->t[2], &p, &y, &err);
        break;
    }
    case OP_POOL2D: {
        avo_pool2d_params p = {{2, 2}, {2, 2}, {0, 0}};
        st = avo_op_pool2d(c->be, c->a, &c->t[0], AVO_POOL_AVG, &p, &y, &err);
        break;
    }
    case OP_TRANSPOSE: st = avo_op_transpose(c->be, c->a, &c->t[0], &y, &err); break;
    case OP_UPSAMPLE: st = avo_op_upsample(c->be, c->a, &c->t[0], d[2], AVO_UPSAMPLE_LINEAR, &y, &err); break;
    case OP_COPY: break;
    }
    avo_arena_rewind(c->a, m);
    if (st) die(k->name, &err);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void gpu_sync(avo_backend *be) {
    avo_error err;
    if (avo_backend_cuda_sync(be, &err)) die("sync", &err);
}

/* GPU: ms per run, median of 5 batches sized to about 20 ms each. */
static double time_gpu(ctx *c, const bcase *k) {
    run(c, k);
    gpu_sync(c->be);
    double t0 = avo_now_ms();
    run(c, k);
    gpu_sync(c->be);
    double one = avo_now_ms() - t0;
    int reps = one > 0 ? (int)(20.0 / one) : 50;
    if (reps < 1) reps = 1;
    if (reps > 200) reps = 200;
    double v[5];
    for (int i = 0; i < 5; i++) {
        t0 = avo_now_ms();
        for (int r = 0; r < reps; r++) run(c, k);
        gpu_sync(c->be);
        v[i] = (avo_now_ms() - t0) / reps;
    }
    return median(v, 5);
}

static double time_cpu(ctx *c, const bcase *k) {
    run(c, k);
    double v[3];
    for (int i = 0; i < 3; i++) {
        double t0 = avo_now_ms();
        run(c, k);
        v[i] = avo_now_ms() - t0;
    }
    return median(v, 3);
}

int main(int argc, char **argv) {
    const char *out = "bench/out/engine_cuda.json";
    bool with_cpu = true;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--no-cpu")) with_cpu = false;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_engine_cuda [--out PATH] [--no-cpu] [--threads N]\n");
            return 2;
        }
    }
    if (with_cpu && !getenv("OMP_WAIT_POLICY")) { /* see engine.h: spinning OpenMP threads starve OpenBLAS */
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
    }
    avo_error err;
    ctx g = {0}, cpu = {0};
    if (avo_backend_cuda_create(-1, &g.be, &err)) die("CUDA back end", &err);
    if (avo_arena_create(g.be, 64u << 20, &g.a, &err)) die("arena", &err);
    if (with_cpu) {
        if (avo_backend_cpu_create(threads, &cpu.be, &err)) die("CPU back end", &err);
        if (avo_arena_create(cpu.be, 64u << 20, &cpu.a, &err)) die("arena", &err);
    }
    size_t cap = 1u << 16, len = 0;
    char *js = malloc(cap);
#define EMIT(...)                                                               \
    do {                                                                        \
        int n_ = snprintf(js + len, cap - len, __VA_ARGS__);                    \
        while (n_ >= 0 && (size_t)n_ >= cap - len) {                           \
            cap *= 2;                                                           \
            js = realloc(js, cap);                                              \
            n_ = snprintf(js + len, cap - len, __VA_ARGS__);                    \
        }                                                                       \
        len += (size_t)n_;                                                      \
    } while (0)

    /* ceilings: device copy of 256 MB, host copies through the staging buffers, 4096^3 GEMMs */
    EMIT("{\n \"ceilings\": {");
    {
        avo_arena_reset(g.a);
        int64_t n = 64 << 20;
        avo_tensor x = UP(&g, 1.0f, n), y = {0};
        if (avo_tensor_new(g.a, AVO_DTYPE_F32, 1, &n, &y, &err)) die("copy", &err);
        double v[5];
        for (int i = 0; i < 6; i++) {
            double t0 = avo_now_ms();
            for (int r = 0; r < 10; r++)
                if (avo_op_copy(g.be, g.a, &x, &y, &err)) die("copy", &err);
            gpu_sync(g.be);
            if (i) v[i - 1] = (avo_now_ms() - t0) / 10;
        }
        double ms = median(v, 5), gbs = 2.0 * n * 4 / (ms * 1e6);
        float *h = malloc((size_t)n * 4);
        for (int64_t i = 0; i < n; i++) h[i] = (float)i;
        double t0 = avo_now_ms();
        if (avo_tensor_to_host(g.a, &x, h, n, &err)) die("to_host", &err);
        double d2h = n * 4 / ((avo_now_ms() - t0) * 1e6);
        avo_tensor z;
        t0 = avo_now_ms();
        if (avo_tensor_from_host(g.a, 1, &n, h, &z, &err)) die("from_host", &err);
        gpu_sync(g.be);
        double h2d = n * 4 / ((avo_now_ms() - t0) * 1e6);
        free(h);
        printf("device copy %.0f GB/s (read + write), host->device %.1f GB/s, device->host %.1f GB/s\n", gbs, h2d, d2h);
        EMIT("\"copy_gbs\": %.1f, \"h2d_gbs\": %.2f, \"d2h_gbs\": %.2f", gbs, h2d, d2h);
        bcase gemm = {"sgemm", OP_LINEAR, {4096, 4096, 4096}, true, false};
        for (int half = 0; half < 2; half++) {
            avo_arena_reset(g.a);
            if (avo_backend_cuda_set_precision(g.be, half ? AVO_CUDA_FP16 : AVO_CUDA_FP32, &err)) die("precision", &err);
            setup(&g, &gemm);
            double ms2 = time_gpu(&g, &gemm), tf = g.flops / (ms2 * 1e9);
            printf("%s 4096^3 through linear: %.3f ms, %.1f TFLOP/s\n", half ? "half GEMM (fp32 acc)" : "SGEMM", ms2, tf);
            EMIT(", \"%s_tflops\": %.2f", half ? "hgemm" : "sgemm", tf);
        }
        if (avo_backend_cuda_set_precision(g.be, AVO_CUDA_FP32, &err)) die("precision", &err);
    }
    EMIT("},\n \"cases\": [");
    printf("\n%-42s %10s %10s %10s %9s %8s\n", "case", "cuda ms", "fp16 ms", "cpu ms", "GB/s|TF", "x cpu");
    for (int i = 0; i < NCASES; i++) {
        const bcase *k = &cases[i];
        avo_arena_reset(g.a);
        setup(&g, k);
        double ms = time_gpu(&g, k), ms16 = -1, msc = -1;
        if (k->gemm) {
            if (avo_backend_cuda_set_precision(g.be, AVO_CUDA_FP16, &err)) die("precision", &err);
            ms16 = time_gpu(&g, k);
            if (avo_backend_cuda_set_precision(g.be, AVO_CUDA_FP32, &err)) die("precision", &err);
        }
        if (with_cpu && k->cpu) {
            avo_arena_reset(cpu.a);
            setup(&cpu, k);
            msc = time_cpu(&cpu, k);
        }
        double rate = g.flops > 0 ? g.flops / (ms * 1e9) : g.bytes / (ms * 1e6);
        printf("%-42s %10.3f %10.3f %10.2f %8.1f%s %8.1f\n", k->name, ms, ms16, msc, rate, g.flops > 0 ? "T" : "G",
               msc > 0 ? msc / ms : 0.0);
        fflush(stdout);
        EMIT("%s\n  {\"name\": \"%s\", \"flops\": %.0f, \"bytes\": %.0f, \"cuda_ms\": %.4f, \"cuda_fp16_ms\": %.4f, "
             "\"cpu_ms\": %.3f}",
             i ? "," : "", k->name, g.flops, g.bytes, ms, ms16, msc);
    }
    int64_t n32 = 0, n16 = 0;
    avo_backend_cuda_gemm_counts(g.be, &n32, &n16, &err);
    EMIT("\n ],\n \"gemm_calls\": {\"fp32\": %lld, \"fp16\": %lld},\n \"cpu_threads\": %d\n}", (long long)n32,
         (long long)n16, threads);
    int rc = bench_write_json(out, js);
    free(js);
    avo_arena_free(g.a);
    avo_backend_free(g.be);
    if (cpu.be) {
        avo_arena_free(cpu.a);
        avo_backend_free(cpu.be);
    }
    return rc;
}
