/* conv1d speed on the CPU back end: the direct AVX-512 kernel (FP32 and BF16) and the FFT
 * overlap-save path (FP32, cpu_conv1d_fft.c; -1000 where it does not take the shape) against the
 * im2col + sgemm path, in the same run, on the NSF-HiFiGAN resblock shapes of RVC v2 40k (256/128/64/32
 * channels, kernels 3/7/11, dilations 1/3/5) and HuBERT's strided feature-extractor convolutions.
 * "fused" rows time the resblock step y = x + conv(leaky_relu(x)) as one avo_op_conv1d_fused against
 * the composed act + conv1d + add of the old path. GFLOP/s counts 2 * cout * cin * k * tout (for the
 * FFT path too: its rate is the direct-equivalent one), per second
 * of wall time and per second of process CPU time ("cpu" columns: on a shared machine the wall time
 * includes waiting for the cores, the CPU time is closer to what the kernel costs).
 *
 * --sweep instead times every RVC v2 40k resblock shape through each AVX-512 path that takes it
 * (direct, FFT, Winograd), called directly, process CPU ms per call (--wall: wall ms), and marks where
 * the back end's rules pick another path than the fastest.
 *
 * usage: bench_conv1d [--repeats N] [--threads N] [--seconds S] [--out PATH] [--sweep [--wall]]
 *        (default 5 repeats, 2 threads, 1 s of audio per shape, bench/out/conv1d.json) */
#include "autovoice/engine.h"
#include "bench_common.h"
#include "engine/cpu_conv1d.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct cshape {
    const char *name;
    int cin, cout, rate, k, stride, dil; /* rate: frames per second of audio */
} cshape;

static const cshape shapes[] = {
    {"resblock 256ch k3 d1", 256, 256, 1000, 3, 1, 1},    {"resblock 256ch k11 d5", 256, 256, 1000, 11, 1, 5},
    {"resblock 128ch k7 d3", 128, 128, 10000, 7, 1, 3},   {"resblock 128ch k11 d1", 128, 128, 10000, 11, 1, 1},
    {"resblock 64ch k7 d5", 64, 64, 20000, 7, 1, 5},      {"resblock 64ch k3 d3", 64, 64, 20000, 3, 1, 3},
    {"resblock 32ch k11 d5", 32, 32, 40000, 11, 1, 5},    {"resblock 32ch k3 d1", 32, 32, 40000, 3, 1, 1},
    {"hubert fe 1->512 k10 s5", 1, 512, 16000, 10, 5, 1}, {"hubert fe 512 k3 s2", 512, 512, 3200, 3, 2, 1},
    {"hubert fe 512 k2 s2", 512, 512, 400, 2, 2, 1},
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))

static void fill(float *p, int64_t n, unsigned seed) {
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / 8388608.0f - 1.0f;
    }
}

/* mode 0: im2col + sgemm, 1: direct FP32, 2: direct BF16, 3: FFT FP32. fused: resblock step with
 * leaky + residual. */
/* max|a - b| / max|b| */
static double rel_diff(const float *a, const float *b, int64_t n) {
    double e = 0, mx = 0;
    for (int64_t j = 0; j < n; j++) {
        double d = fabs((double)a[j] - b[j]);
        e = d > e ? d : e;
        mx = fabs(b[j]) > mx ? fabs(b[j]) : mx;
    }
    return mx > 0 ? e / mx : 0;
}

static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Median wall seconds; *cpu_s gets the median process CPU seconds. */
static double time_conv(avo_backend *be, avo_arena *a, const cshape *s, int64_t t, int mode, bool fused, int repeats,
                        float *out_host, double *cpu_s) {
    avo_error err;
    cpu_backend_set_direct_conv(be, mode != 0);
    cpu_backend_set_fft_conv(be, mode == 3 ? CPU_FFT_ALWAYS : CPU_FFT_OFF);
    if (avo_backend_cpu_set_precision(be, mode == 2 ? AVO_CPU_BF16 : AVO_CPU_FP32, &err)) return -1;
    avo_arena_reset(a);
    int64_t xs[2] = {s->cin, t}, ws[3] = {s->cout, s->cin, s->k}, bs[1] = {s->cout};
    avo_tensor X, W, B;
    float *h = malloc(sizeof(float) * (size_t)(s->cin * t > s->cout * s->cin * s->k ? s->cin * t : s->cout * s->cin * s->k));
    fill(h, s->cin * t, 1);
    if (avo_tensor_from_host(a, 2, xs, h, &X, &err)) bench_die(&err);
    fill(h, s->cout * s->cin * s->k, 2);
    for (int64_t i = 0; i < s->cout * s->cin * s->k; i++) h[i] *= 0.05f;
    if (avo_tensor_from_host(a, 3, ws, h, &W, &err)) bench_die(&err);
    fill(h, s->cout, 3);
    if (avo_tensor_from_host(a, 1, bs, h, &B, &err)) bench_die(&err);
    free(h);
    int pad = s->stride == 1 ? s->dil * (s->k - 1) / 2 : 0;
    avo_conv1d_params p = {.stride = s->stride, .dilation = s->dil, .padding = pad};
    avo_conv1d_fuse f = {.input_leaky_relu = true, .slope = 0.1f, .residual = &X};
    avo_tensor Y = {0}, T = {0};
    double best[64], cpu[64];
    int n = repeats < 64 ? repeats : 64;
    for (int r = -1; r < n; r++) { /* one warm-up */
        avo_arena_mark m = avo_arena_get_mark(a);
        Y.data = NULL;
        T.data = NULL;
        double t0 = avo_now_ms(), c0 = cpu_ms();
        avo_status st;
        if (!fused)
            st = avo_op_conv1d(be, a, &X, &W, &B, &p, &Y, &err);
        else if (mode != 0)
            st = avo_op_conv1d_fused(be, a, &X, &W, &B, &p, &f, &Y, &err);
        else { /* what the resblock did before: three ops, two extra passes */
            st = avo_op_act(be, a, &X, AVO_ACT_LEAKY_RELU, 0.1f, &T, &err);
            if (!st) st = avo_op_conv1d(be, a, &T, &W, &B, &p, &Y, &err);
            if (!st) st = avo_op_add(be, a, &Y, &X, &Y, &err);
        }
        double ms = avo_now_ms() - t0, cms = cpu_ms() - c0;
        if (st) bench_die(&err);
        if (r >= 0) best[r] = ms, cpu[r] = cms;
        if (r == n - 1 && out_host) avo_tensor_to_host(a, &Y, out_host, avo_tensor_numel(&Y), &err);
        avo_arena_rewind(a, m);
    }
    *cpu_s = bench_median(cpu, n) / 1000.0;
    return bench_median(best, n) / 1000.0;
}

/* --sweep: every NSF-HiFiGAN resblock shape of RVC v2 40k (256/128/64/32 channels at their rates,
 * kernels 3/7/11, dilations 1/3/5), fused (leaky ReLU in, residual out), through each AVX-512 path
 * that takes it, called directly: direct, FFT, Winograd; the fastest and what the back end's rules
 * pick. Process CPU ms per call, median of repeats: the figures the preference rules are fitted to. */
static bool wall;
static double time_path(avo_arena *a, const cpu_conv1d_args *c, int path, int repeats) {
    double v[64];
    int n = repeats < 64 ? repeats : 64;
    avo_error err;
    for (int r = -1; r < n; r++) {
        avo_arena_mark m = avo_arena_get_mark(a);
        double c0 = wall ? avo_now_ms() : cpu_ms();
        avo_status st = path == 0 ? cpu_conv1d_direct(a, c, &err) : path == 1 ? cpu_conv1d_fft(a, c, &err)
                                                                              : cpu_conv1d_wino(a, c, &err);
        double ms = (wall ? avo_now_ms() : cpu_ms()) - c0;
        if (st) bench_die(&err);
        if (r >= 0) v[r] = ms;
        avo_arena_rewind(a, m);
    }
    return bench_median(v, n);
}

static int sweep(int repeats, int threads, double seconds) {
    static const int chans[4] = {256, 128, 64, 32}, rates[4] = {1000, 10000, 20000, 40000}, ks[3] = {3, 7, 11},
                     dils[3] = {1, 3, 5};
    static const char *const names[3] = {"direct", "fft", "wino"};
    avo_error err;
    avo_backend *be = NULL;
    avo_arena *a = NULL;
    if (avo_backend_cpu_create(threads, &be, &err) || avo_arena_create(be, (size_t)64 << 20, &a, &err)) bench_die(&err);
    printf("resblock conv1d paths, %d threads, %.1f s of audio, %s ms, median of %d\n", threads, seconds, wall ? "wall" : "process CPU", repeats);
    printf("%4s %3s %2s %9s %9s %9s %7s %7s\n", "ch", "k", "d", "direct", "fft", "wino", "best", "auto");
    double tot_auto = 0, tot_best = 0;
    for (int ci = 0; ci < 4; ci++)
        for (int ki = 0; ki < 3; ki++)
            for (int di = 0; di < 3; di++) {
                int ch = chans[ci], k = ks[ki], d = dils[di];
                int64_t t = (int64_t)(seconds * rates[ci]), pad = (int64_t)d * (k - 1) / 2;
                float *x = malloc(sizeof(float) * (size_t)(ch * t)), *w = malloc(sizeof(float) * (size_t)(ch * ch * k)),
                      *b = malloc(sizeof(float) * (size_t)ch), *y = malloc(sizeof(float) * (size_t)(ch * t)),
                      *res = malloc(sizeof(float) * (size_t)(ch * t));
                fill(x, ch * t, 1);
                fill(res, ch * t, 4);
                fill(w, ch * ch * k, 2);
                fill(b, ch, 3);
                cpu_conv1d_args c = {.x = x, .cin = ch, .t = t, .w = w, .cout = ch, .k = k, .bias = b, .residual = res,
                                     .y = y, .tout = t, .stride = 1, .padding = (int)pad, .dilation = d, .leaky = true,
                                     .slope = 0.1f, .enabled = true, .fft = true, .nthreads = threads};
                double ms[3] = {-1, -1, -1};
                ms[0] = time_path(a, &c, 0, repeats);
                if (cpu_conv1d_fft_supported(&c)) ms[1] = time_path(a, &c, 1, repeats);
                if (cpu_conv1d_wino_supported(&c)) ms[2] = time_path(a, &c, 2, repeats);
                int best = 0;
                for (int p = 1; p < 3; p++)
                    if (ms[p] > 0 && ms[p] < ms[best]) best = p;
                int pick = cpu_conv1d_fft_preferred(&c) ? 1 : cpu_conv1d_wino_preferred(&c) ? 2 : 0;
                tot_auto += ms[pick];
                tot_best += ms[best];
                printf("%4d %3d %2d %9.2f %9.2f %9.2f %7s %7s%s\n", ch, k, d, ms[0], ms[1], ms[2], names[best], names[pick],
                       pick != best ? "  <-" : "");
                free(x), free(w), free(b), free(y), free(res);
            }
    printf("sum of picks %.1f ms, of the fastest %.1f ms\n", tot_auto, tot_best);
    avo_arena_free(a);
    avo_backend_free(be);
    return 0;
}

int main(int argc, char **argv) {
    int repeats = 5, threads = 2;
    double seconds = 1.0;
    const char *out = "bench/out/conv1d.json";
    bool do_sweep = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--sweep")) do_sweep = true;
        else if (!strcmp(argv[i], "--wall")) wall = true;
        else {
            fprintf(stderr, "usage: bench_conv1d [--repeats N] [--threads N] [--seconds S] [--out PATH] [--sweep [--wall]]\n");
            return 2;
        }
    }
    if (repeats < 1) repeats = 1;
    if (do_sweep) return sweep(repeats, threads, seconds);
    avo_error err;
    avo_backend *be = NULL;
    avo_arena *a = NULL;
    if (avo_backend_cpu_create(threads, &be, &err) || avo_arena_create(be, (size_t)64 << 20, &a, &err)) bench_die(&err);
    const bool direct = cpu_conv1d_avx512_available(), bf16 = cpu_conv1d_bf16_available();
    printf("conv1d, %d threads, %.2f s of audio per shape, median of %d (direct kernel %s, bf16 %s)\n", threads, seconds,
           repeats, direct ? "yes" : "no", bf16 ? "yes" : "no");
    printf("%-24s %-5s %9s %9s %9s %9s %7s %7s %7s %7s %7s %7s %7s %7s %8s %8s\n", "shape", "op", "im2col ms", "fp32 ms",
           "bf16 ms", "fft ms", "im2col", "fp32", "bf16", "fft", "im2col", "fp32", "bf16", "fft", "bf16 err", "fft err");
    printf("%-24s %-5s %9s %9s %9s %9s %7s %7s %7s %7s %7s %7s %7s %7s %8s %8s\n", "", "", "(wall)", "(wall)", "(wall)",
           "(wall)", "GF/s", "GF/s", "GF/s", "GF/s", "cpuGF/s", "cpuGF/s", "cpuGF/s", "cpuGF/s", "vs fp32", "vs fp32");
    char json[16384];
    int len = snprintf(json, sizeof json, "{\"benchmark\": \"conv1d\", \"threads\": %d, \"seconds\": %.2f, \"repeats\": %d, "
                                          "\"rows\": [", threads, seconds, repeats);
    int rows = 0;
    for (int i = 0; i < NSHAPES; i++)
        for (int fused = 0; fused < 2; fused++) {
            const cshape *s = &shapes[i];
            if (fused && (s->stride != 1 || s->cin != s->cout)) continue;
            int64_t t = (int64_t)(seconds * s->rate);
            int pad = s->stride == 1 ? s->dil * (s->k - 1) / 2 : 0;
            int64_t tout = (t + 2 * pad - s->dil * (s->k - 1) - 1) / s->stride + 1;
            double flop = 2.0 * s->cout * s->cin * s->k * (double)tout;
            float *y32 = malloc(sizeof(float) * (size_t)(s->cout * tout)), *y16 = malloc(sizeof(float) * (size_t)(s->cout * tout)),
                  *yf = malloc(sizeof(float) * (size_t)(s->cout * tout));
            cpu_conv1d_args probe = {.cin = s->cin, .t = t, .cout = s->cout, .k = s->k, .tout = tout, .stride = s->stride,
                                     .padding = pad, .dilation = s->dil, .enabled = true, .fft = true, .nthreads = threads};
            const bool fft = cpu_conv1d_fft_supported(&probe);
            double c0 = 0, c1 = 0, c2 = 0, c3 = 0;
            double t0 = time_conv(be, a, s, t, 0, fused, repeats, NULL, &c0);
            double t1 = direct ? time_conv(be, a, s, t, 1, fused, repeats, y32, &c1) : -1;
            double t2 = bf16 ? time_conv(be, a, s, t, 2, fused, repeats, y16, &c2) : -1;
            double t3 = fft ? time_conv(be, a, s, t, 3, fused, repeats, yf, &c3) : -1;
            double rel = t1 > 0 && t2 > 0 ? rel_diff(y16, y32, s->cout * tout) : 0;
            double relf = t1 > 0 && t3 > 0 ? rel_diff(yf, y32, s->cout * tout) : 0;
            printf("%-24s %-5s %9.2f %9.2f %9.2f %9.2f %7.1f %7.1f %7.1f %7.1f %7.1f %7.1f %7.1f %7.1f %8.1e %8.1e%s\n", s->name,
                   fused ? "fused" : "conv", t0 * 1e3, t1 * 1e3, t2 * 1e3, t3 * 1e3, flop / t0 / 1e9, t1 > 0 ? flop / t1 / 1e9 : 0,
                   t2 > 0 ? flop / t2 / 1e9 : 0, t3 > 0 ? flop / t3 / 1e9 : 0, flop / c0 / 1e9, t1 > 0 ? flop / c1 / 1e9 : 0,
                   t2 > 0 ? flop / c2 / 1e9 : 0, t3 > 0 ? flop / c3 / 1e9 : 0, rel, relf,
                   fft && cpu_conv1d_fft_preferred(&probe) ? "  (auto: fft)"
                   : cpu_conv1d_wino_preferred(&probe)        ? "  (auto: winograd)"
                                                              : "");
            len += snprintf(json + len, sizeof json - (size_t)len,
                            "%s{\"shape\": \"%s\", \"op\": \"%s\", \"im2col_ms\": %.3f, \"direct_fp32_ms\": %.3f, "
                            "\"direct_bf16_ms\": %.3f, \"fft_fp32_ms\": %.3f, \"im2col_cpu_ms\": %.3f, "
                            "\"direct_fp32_cpu_ms\": %.3f, \"direct_bf16_cpu_ms\": %.3f, \"fft_fp32_cpu_ms\": %.3f, "
                            "\"gflop\": %.4f, \"bf16_rel_error\": %.2e, \"fft_rel_error\": %.2e, \"fft_chosen\": %s}",
                            rows++ ? ", " : "", s->name, fused ? "fused" : "conv", t0 * 1e3, t1 * 1e3, t2 * 1e3, t3 * 1e3,
                            c0 * 1e3, c1 * 1e3, c2 * 1e3, c3 * 1e3, flop / 1e9, rel, relf,
                            fft && cpu_conv1d_fft_preferred(&probe) ? "true" : "false");
            free(y32);
            free(y16);
            free(yf);
        }
    cpu_backend_set_direct_conv(be, true);
    cpu_backend_set_fft_conv(be, CPU_FFT_AUTO);
    len += snprintf(json + len, sizeof json - (size_t)len, "]}");
    avo_arena_free(a);
    avo_backend_free(be);
    return bench_write_json(out, json);
}
