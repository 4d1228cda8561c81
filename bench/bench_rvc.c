/* RVC synthesizer benchmark: full-size parity, then speed against PyTorch.
 *
 * Parity: the full-size random RVC v2 40k and 48k models of tests/reference/make_random_models.py
 * (written into the golden folder first if absent, about a minute) on their golden inputs (1.5 s
 * of singing: v2 features, f0 from RMVPE "e2e" and a synthetic "contour"), with the stored noise
 * draws; relative error max|a-b| / max|b| of m_p, logs_p, z_p, z, har_source and audio.
 * Speed: avo_rvc_infer on FRAMES frames (default 3000 = 30 s) of the 40k model with random
 * features and a sung f0 contour, median of RUNS runs (one warm-up first), with the time split into
 * text encoder, flows and decoder; then the PyTorch reference (tests/reference/rvc_golden.py
 * --time, 2 torch threads) on the same model and length, started from this program; ratio.
 *
 * Usage: bench_rvc [--golden DIR] [--frames N] [--runs N] [--torch-runs N] [--threads N]
 *                  [--chunk N] [--no-torch] [--no-parity] [--cpu-precision fp32|bf16] [--out PATH]
 *   --cpu-precision bf16: the CPU back end in BF16 mode (avo_backend_cpu_set_precision) for parity and
 *   speed; parity is then BF16 against the FP32 PyTorch reference.
 *   DIR defaults to $AVO_RVC_GOLDEN or /tmp/rvc_golden; PATH to bench/out/rvc.json. Run with
 *   OMP_WAIT_POLICY=passive (see engine.h). The machine is shared: numbers vary with its load. */
#include "autovoice/models.h"
#include "bench_common.h"
#include "models/vits_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

static char gdir[1024];

static float *read_golden(const char *name, int64_t want) {
    char path[1200];
    snprintf(path, sizeof path, "%s/golden/%s.f32", gdir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "bench_rvc: cannot open %s\n", path);
        exit(1);
    }
    float *d = malloc((size_t)want * sizeof(float));
    size_t got = fread(d, sizeof(float), (size_t)want, f);
    fclose(f);
    if ((int64_t)got != want) {
        fprintf(stderr, "bench_rvc: %s has %zu values, expected %lld\n", path, got, (long long)want);
        exit(1);
    }
    return d;
}

static double rel_error(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= num)) num = d;
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return den > 0 ? num / den : num;
}

static const char *source_dir(void) {
    static char src[1024];
    snprintf(src, sizeof src, "%s", __FILE__);
    char *cut = strstr(src, "/bench/bench_rvc.c");
    if (cut) *cut = 0;
    return src;
}

/* Parity of one model (sr "40k"/"48k") on both golden cases; adds {"case": {"tensor": err}} to js.
 * Returns the worst error. */
static double parity(avo_backend *be, avo_arena *arena, const char *sr, int64_t T, cJSON *js) {
    char path[1200], name[128];
    snprintf(path, sizeof path, "%s/rvc_v2_%s.pth", gdir, sr);
    avo_error err = {0};
    avo_rvc *m = NULL;
    if (avo_rvc_load(path, be, &m, &err)) bench_die(&err);
    const avo_rvc_info *info = avo_rvc_get_info(m);
    int64_t I = 192, hop = info->hop;
    float *phone = read_golden("rvc_phone", T * 768);
    snprintf(name, sizeof name, "rvc%s_z_noise", sr);
    float *zn = read_golden(name, I * T);
    snprintf(name, sizeof name, "rvc%s_src_noise", sr);
    float *sn = read_golden(name, T * hop);
    float *audio = malloc((size_t)(T * hop) * sizeof(float));
    int32_t *pitch = malloc((size_t)T * sizeof(int32_t));
    rvc_taps taps = {0};
    float *bufs[5];
    int64_t sizes[5] = {I * T, I * T, I * T, I * T, T * hop};
    const char *names[6] = {"m_p", "logs_p", "z_p", "z", "har_source", "audio"};
    for (int i = 0; i < 5; i++) bufs[i] = malloc((size_t)sizes[i] * sizeof(float));
    taps.m_p = bufs[0];
    taps.logs_p = bufs[1];
    taps.z_p = bufs[2];
    taps.z = bufs[3];
    taps.har_source = bufs[4];
    double worst = 0;
    cJSON *mj = cJSON_AddObjectToObject(js, sr);
    const char *cases[2] = {"e2e", "contour"};
    for (int c = 0; c < 2; c++) {
        snprintf(name, sizeof name, "rvc%s_%s_nsff0", sr, cases[c]);
        float *f0 = read_golden(name, T);
        snprintf(name, sizeof name, "rvc%s_%s_pitch", sr, cases[c]);
        float *pf = read_golden(name, T);
        int bad = 0;
        avo_rvc_pitch_coarse(f0, T, pitch);
        for (int64_t i = 0; i < T; i++) bad += pitch[i] != (int32_t)pf[i];
        if (bad) printf("  %s %s: %d coarse pitch values differ from the reference's\n", sr, cases[c], bad);
        for (int64_t i = 0; i < T; i++) pitch[i] = (int32_t)pf[i];
        if (rvc_infer_taps(m, arena, phone, T, pitch, f0, 0, zn, sn, 0, audio, &taps, &err)) bench_die(&err);
        cJSON *cj = cJSON_AddObjectToObject(mj, cases[c]);
        cJSON_AddNumberToObject(cj, "pitch_mismatches", bad);
        printf("  %s %-8s", sr, cases[c]);
        for (int i = 0; i < 6; i++) {
            snprintf(name, sizeof name, "rvc%s_%s_%s", sr, cases[c], names[i]);
            int64_t n = i < 5 ? sizes[i] : T * hop;
            float *want = read_golden(name, n);
            double e = rel_error(i < 5 ? bufs[i] : audio, want, n);
            free(want);
            worst = e > worst ? e : worst;
            cJSON_AddNumberToObject(cj, names[i], e);
            printf(" %s %.2g", names[i], e);
        }
        printf("\n");
        free(f0);
        free(pf);
    }
    for (int i = 0; i < 5; i++) free(bufs[i]);
    free(phone);
    free(zn);
    free(sn);
    free(audio);
    free(pitch);
    avo_rvc_free(m);
    return worst;
}

static double cpu_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}


/* ---- --conv-proto: what a fused convolution would save ------------------------------------------
 * One ResBlock1 (kernel 11, dilations 1, 3, 5) of the 40k decoder's second stage (128 channels,
 * 512 frames = 51200 samples), computed (a) with engine ops as vits_blocks.c does (leaky ReLU pass,
 * conv1d = bias fill + im2col + sgemm, leaky ReLU in place, conv1d, residual add) and (b) with a
 * prototype of a fused conv: leaky ReLU applied while building the columns, the bias as an extra
 * row of ones, the residual accumulated by sgemm (beta 1). Same tiling of 2M floats of columns. */
#include <cblas.h>

#define PROTO_COLS (2 << 20)

static void proto_conv(const float *x, int64_t C, int64_t L, int k, int d, const float *wb, float slope, float *out,
                       float beta, float *cols, const float *bias) {
    int64_t rows = C * k + (bias ? 0 : 1), tile = PROTO_COLS / rows, pad = (int64_t)(k - 1) / 2 * d;
    if (bias) { /* bias added to the output rows first (beta 1 below), K stays a multiple of 16 */
        for (int64_t c = 0; c < C; c++) {
            float *o = out + c * L;
            if (beta == 0.0f)
                for (int64_t i = 0; i < L; i++) o[i] = bias[c];
            else
                for (int64_t i = 0; i < L; i++) o[i] += bias[c];
        }
        beta = 1.0f;
    }
    for (int64_t i0 = 0; i0 < L; i0 += tile) {
        int64_t n = L - i0 < tile ? L - i0 : tile;
        for (int64_t c = 0; c < C; c++)
            for (int kk = 0; kk < k; kk++) {
                float *cr = cols + (c * k + kk) * n;
                const float *xr = x + c * L;
                int64_t off = kk * d - pad;
                int64_t lo = -(i0 + off), hi = L - (i0 + off); /* valid i: 0 <= i0 + i + off < L */
                lo = lo < 0 ? 0 : lo > n ? n : lo;
                hi = hi > n ? n : hi < lo ? lo : hi;
                const float *xs = xr + i0 + off;
                for (int64_t i = 0; i < lo; i++) cr[i] = 0.0f;
                for (int64_t i = lo; i < hi; i++) cr[i] = xs[i] > 0.0f ? xs[i] : xs[i] * slope;
                for (int64_t i = hi; i < n; i++) cr[i] = 0.0f;
            }
        if (!bias)
            for (int64_t i = 0; i < n; i++) cols[(rows - 1) * n + i] = 1.0f;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)C, (int)n, (int)rows, 1.0f, wb, (int)rows, cols, (int)n,
                    beta, out + i0, (int)L);
    }
}

static int conv_proto(int threads) {
    const int64_t C = 128, L = 51200;
    const int k = 11, dil[3] = {1, 3, 5};
    avo_error err = {0};
    avo_backend *be = NULL;
    avo_arena *a = NULL;
    if (avo_backend_cpu_create(threads, &be, &err) || avo_arena_create(be, 256u << 20, &a, &err)) bench_die(&err);
    vits_rng rng;
    vits_rng_seed(&rng, 3);
    float *x = malloc((size_t)(C * L) * sizeof(float)), *w[6], *b[6], *wb[6];
    vits_rng_normal(&rng, x, C * L);
    for (int i = 0; i < 6; i++) {
        w[i] = malloc((size_t)(C * C * k) * sizeof(float));
        b[i] = malloc((size_t)C * sizeof(float));
        wb[i] = malloc((size_t)(C * (C * k + 1)) * sizeof(float));
        vits_rng_normal(&rng, w[i], C * C * k);
        vits_rng_normal(&rng, b[i], C);
        for (int64_t j = 0; j < C * C * k; j++) w[i][j] *= 0.3f / sqrtf((float)(C * k));
        for (int64_t o = 0; o < C; o++) {
            memcpy(wb[i] + o * (C * k + 1), w[i] + o * C * k, (size_t)(C * k) * sizeof(float));
            wb[i][o * (C * k + 1) + C * k] = b[i][o];
        }
    }
    /* (a) engine ops */
    int64_t ws[3] = {C, C, k}, xs[2] = {C, L};
    avo_tensor tw[6], tb[6], tx = {0}, run = {0}, t1 = {0}, u = {0};
    for (int i = 0; i < 6; i++) {
        tw[i] = avo_tensor_view(AVO_DTYPE_F32, 3, ws, w[i]);
        tb[i] = avo_tensor_view1(b[i], C);
    }
    tx = avo_tensor_view2(x, C, L);
    float *ref = malloc((size_t)(C * L) * sizeof(float)), *got = malloc((size_t)(C * L) * sizeof(float));
    float *tmp = malloc((size_t)(C * L) * sizeof(float)), *cols = malloc((size_t)PROTO_COLS * sizeof(float));
    double best_a = 1e9, best_b = 1e9, best_c = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        avo_arena_reset(a);
        run = avo_tensor_view2(ref, C, L);
        t1 = (avo_tensor){0};
        u = (avo_tensor){0};
        if (avo_tensor_new(a, AVO_DTYPE_F32, 2, xs, &t1, &err) || avo_tensor_new(a, AVO_DTYPE_F32, 2, xs, &u, &err))
            bench_die(&err);
        double c0 = cpu_now_s();
        for (int dd = 0; dd < 3; dd++) {
            const avo_tensor *cur = dd == 0 ? &tx : &run;
            avo_conv1d_params p1 = {.dilation = dil[dd], .padding = (k - 1) / 2 * dil[dd]}, p2 = {.padding = (k - 1) / 2};
            if (avo_op_act(be, a, cur, AVO_ACT_LEAKY_RELU, 0.1f, &t1, &err) ||
                avo_op_conv1d(be, a, &t1, &tw[2 * dd], &tb[2 * dd], &p1, &u, &err) ||
                avo_op_act(be, a, &u, AVO_ACT_LEAKY_RELU, 0.1f, &u, &err) ||
                avo_op_conv1d(be, a, &u, &tw[2 * dd + 1], &tb[2 * dd + 1], &p2, &t1, &err) ||
                avo_op_add(be, a, cur, &t1, &run, &err))
                bench_die(&err);
        }
        double ta = cpu_now_s() - c0;
        /* (b) prototype, bias as a ones row; (c) bias added to the output first */
        c0 = cpu_now_s();
        memcpy(got, x, (size_t)(C * L) * sizeof(float));
        for (int dd = 0; dd < 3; dd++) {
            proto_conv(got, C, L, k, dil[dd], wb[2 * dd], 0.1f, tmp, 0.0f, cols, NULL);
            proto_conv(tmp, C, L, k, 1, wb[2 * dd + 1], 0.1f, got, 1.0f, cols, NULL);
        }
        double tb2 = cpu_now_s() - c0;
        c0 = cpu_now_s();
        memcpy(got, x, (size_t)(C * L) * sizeof(float));
        for (int dd = 0; dd < 3; dd++) {
            proto_conv(got, C, L, k, dil[dd], w[2 * dd], 0.1f, tmp, 0.0f, cols, b[2 * dd]);
            proto_conv(tmp, C, L, k, 1, w[2 * dd + 1], 0.1f, got, 1.0f, cols, b[2 * dd + 1]);
        }
        double tc = cpu_now_s() - c0;
        best_c = tc < best_c ? tc : best_c;
        best_a = ta < best_a ? ta : best_a;
        best_b = tb2 < best_b ? tb2 : best_b;
    }
    double e = rel_error(got, ref, C * L), gflop = 6.0 * 2.0 * C * C * k * L / 1e9;
    printf("one ResBlock1 (k 11, 128 ch, 51200 samples, %.1f GFLOP), cpu time, best of 3:\n", gflop);
    printf("  engine ops: %.3f s (%.1f GFLOP/s)\n  fused conv prototype: %.3f s (%.1f GFLOP/s), %.0f%% less; rel diff %.2g\n",
           best_a, gflop / best_a, best_b, gflop / best_b, 100.0 * (1.0 - best_b / best_a), e);
    printf("  fused, bias added to the output first: %.3f s (%.1f GFLOP/s), %.0f%% less; rel diff %.2g\n", best_c,
           gflop / best_c, 100.0 * (1.0 - best_c / best_a), rel_error(got, ref, C * L));
    for (int i = 0; i < 6; i++) {
        free(w[i]);
        free(b[i]);
        free(wb[i]);
    }
    free(x);
    free(ref);
    free(got);
    free(tmp);
    free(cols);
    avo_arena_free(a);
    avo_backend_free(be);
    return 0;
}

int main(int argc, char **argv) {
    const char *out = "bench/out/rvc.json", *env = getenv("AVO_RVC_GOLDEN");
    int64_t frames = 3000, chunk = 0;
    int runs = 3, torch_runs = 1, threads = 2;
    bool do_torch = true, do_parity = true, bf16 = false;
    snprintf(gdir, sizeof gdir, "%s", env && *env ? env : "/tmp/rvc_golden");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--golden") && i + 1 < argc)
            snprintf(gdir, sizeof gdir, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--frames") && i + 1 < argc)
            frames = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--torch-runs") && i + 1 < argc)
            torch_runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
            chunk = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--conv-proto"))
            return conv_proto(threads);
        else if (!strcmp(argv[i], "--no-torch"))
            do_torch = false;
        else if (!strcmp(argv[i], "--no-parity"))
            do_parity = false;
        else if (!strcmp(argv[i], "--cpu-precision") && i + 1 < argc && !strcmp(argv[i + 1], "bf16"))
            bf16 = true, i++;
        else if (!strcmp(argv[i], "--cpu-precision") && i + 1 < argc && !strcmp(argv[i + 1], "fp32"))
            bf16 = false, i++;
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else {
            fprintf(stderr, "usage: bench_rvc [--golden DIR] [--frames N] [--runs N] [--torch-runs N] [--threads N] "
                            "[--chunk N] [--no-torch] [--no-parity] [--cpu-precision fp32|bf16] [--out PATH]\n");
            return 2;
        }
    }
    if (frames < 1 || runs < 1) return 2;
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress shows up when redirected */
    char path[1200], cmd[4096];
    snprintf(path, sizeof path, "%s/rvc_v2_40k.pth", gdir);
    if (access(path, R_OK) != 0) {
        printf("writing the full-size random models and golden tensors into %s (about a minute)\n", gdir);
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/reference/make_random_models.py' '%s' > '%s.log' 2>&1",
                 source_dir(), gdir, gdir);
        if (system(cmd) != 0) {
            fprintf(stderr, "bench_rvc: make_random_models.py failed, see %s.log\n", gdir);
            return 1;
        }
    }
    avo_error err = {0};
    avo_backend *be = NULL;
    avo_arena *arena = NULL;
    if (avo_backend_cpu_create(threads, &be, &err) || avo_arena_create(be, 64u << 20, &arena, &err)) bench_die(&err);
    if (bf16 && avo_backend_cpu_set_precision(be, AVO_CPU_BF16, &err)) bench_die(&err);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "bench", "rvc");
    cJSON_AddStringToObject(root, "cpu_precision", bf16 ? "bf16" : "fp32");
    cJSON_AddNumberToObject(root, "threads", threads);

    if (do_parity) {
        snprintf(path, sizeof path, "%s/golden/index.json", gdir);
        char *text = NULL;
        FILE *f = fopen(path, "rb");
        if (f) {
            fseek(f, 0, SEEK_END);
            long n = ftell(f);
            fseek(f, 0, SEEK_SET);
            text = calloc((size_t)n + 1, 1);
            if (fread(text, 1, (size_t)n, f) != (size_t)n) text[0] = 0;
            fclose(f);
        }
        cJSON *idx = text ? cJSON_Parse(text) : NULL;
        free(text);
        if (!idx) {
            fprintf(stderr, "bench_rvc: cannot read %s\n", path);
            return 1;
        }
        int64_t T = (int64_t)cJSON_GetObjectItem(idx, "p_len")->valuedouble;
        cJSON_Delete(idx);
        printf("parity on the full-size models (%lld frames, stored noise draws), %s:\n", (long long)T,
               bf16 ? "BF16 convolutions and linears against the FP32 PyTorch reference" : "FP32");
        cJSON *pj = cJSON_AddObjectToObject(root, "parity_rel_error");
        double w = parity(be, arena, "40k", T, pj);
        double w2 = parity(be, arena, "48k", T, pj);
        w = w2 > w ? w2 : w;
        cJSON_AddNumberToObject(root, "parity_worst", w);
        printf("  worst %.3g (%s)\n", w, bf16 ? "BF16: no target" : "target < 1e-4");
        avo_arena_reset(arena);
    }

    /* speed: 40k model, random features, a sung contour with vibrato */
    snprintf(path, sizeof path, "%s/rvc_v2_40k.pth", gdir);
    avo_rvc *m = NULL;
    if (avo_rvc_load(path, be, &m, &err)) bench_die(&err);
    int64_t hop = avo_rvc_get_info(m)->hop;
    float *phone = malloc((size_t)(frames * 768) * sizeof(float)), *f0 = malloc((size_t)frames * sizeof(float));
    float *audio = malloc((size_t)(frames * hop) * sizeof(float));
    int32_t *pitch = malloc((size_t)frames * sizeof(int32_t));
    vits_rng rng;
    vits_rng_seed(&rng, 7);
    vits_rng_normal(&rng, phone, frames * 768);
    for (int64_t i = 0; i < frames; i++) f0[i] = (float)(220.0 * pow(2.0, 0.5 * sin(2 * M_PI * 0.7 * i / 100.0)));
    avo_rvc_pitch_coarse(f0, frames, pitch);
    double *secs = calloc((size_t)runs, sizeof(double)), *cpu = calloc((size_t)runs, sizeof(double)), enc = 0, flow = 0,
           dec = 0;
    printf("avo_rvc_infer, %lld frames (%.1f s of audio), %d threads, chunk %lld:\n", (long long)frames, frames / 100.0,
           threads, (long long)chunk);
    for (int r = -1; r < runs; r++) {
        rvc_taps taps = {.chunk_frames = chunk};
        avo_arena_reset(arena);
        double t = avo_now_ms(), c = cpu_now_s();
        if (rvc_infer_taps(m, arena, phone, frames, pitch, f0, 0, NULL, NULL, 1, audio, &taps, &err)) bench_die(&err);
        t = (avo_now_ms() - t) / 1000.0;
        c = cpu_now_s() - c;
        printf("  run %d: %.2f s, cpu %.2f s (enc_p %.2f, flow %.2f, dec %.2f)%s\n", r + 1, t, c, taps.ms_enc / 1000,
               taps.ms_flow / 1000, taps.ms_dec / 1000, r < 0 ? " warm-up" : "");
        cpu[r < 0 ? 0 : r] = c;
        if (r < 0) continue;
        secs[r] = t;
        enc += taps.ms_enc / 1000 / runs;
        flow += taps.ms_flow / 1000 / runs;
        dec += taps.ms_dec / 1000 / runs;
    }
    double peak_arena = (double)avo_arena_peak(arena) / 1048576.0;
    qsort(secs, (size_t)runs, sizeof(double), cmp_double);
    qsort(cpu, (size_t)runs, sizeof(double), cmp_double);
    double med = runs % 2 ? secs[runs / 2] : 0.5 * (secs[runs / 2 - 1] + secs[runs / 2]);
    double med_cpu = runs % 2 ? cpu[runs / 2] : 0.5 * (cpu[runs / 2 - 1] + cpu[runs / 2]);
    printf("  median %.2f s = %.2fx real time (cpu %.2f s); arena peak %.0f MB\n", med, med / (frames / 100.0), med_cpu,
           peak_arena);
    cJSON *cj = cJSON_AddObjectToObject(root, "c");
    cJSON_AddNumberToObject(cj, "frames", (double)frames);
    cJSON_AddNumberToObject(cj, "runs", runs);
    cJSON_AddNumberToObject(cj, "median_s", med);
    cJSON_AddNumberToObject(cj, "median_cpu_s", med_cpu);
    cJSON_AddNumberToObject(cj, "enc_p_s", enc);
    cJSON_AddNumberToObject(cj, "flow_s", flow);
    cJSON_AddNumberToObject(cj, "dec_s", dec);
    cJSON_AddNumberToObject(cj, "chunk_frames", (double)chunk);
    cJSON_AddNumberToObject(cj, "arena_peak_mb", peak_arena);
    cJSON_AddNumberToObject(cj, "peak_rss_mb", bench_peak_rss_mb());
    avo_rvc_free(m);

    if (do_torch && torch_runs > 0) {
        char tmp[] = "/tmp/bench_rvc_torch_XXXXXX";
        int fd = mkstemp(tmp);
        if (fd >= 0) close(fd);
        printf("PyTorch reference (2 threads), %d run(s)...\n", torch_runs);
        snprintf(cmd, sizeof cmd,
                 "OMP_WAIT_POLICY=passive /usr/bin/python3 '%s/tests/reference/rvc_golden.py' --time '%s' %lld %d > '%s'",
                 source_dir(), path, (long long)frames, torch_runs, tmp);
        char line[4096] = {0};
        FILE *f = system(cmd) == 0 ? fopen(tmp, "r") : NULL;
        cJSON *tj = f && fgets(line, sizeof line, f) ? cJSON_Parse(line) : NULL;
        if (f) fclose(f);
        unlink(tmp);
        if (tj) {
            double tm = cJSON_GetObjectItem(tj, "median_s")->valuedouble;
            printf("  torch median %.2f s; C is %.2fx faster\n", tm, tm / med);
            cJSON_AddItemToObject(root, "torch", tj);
            cJSON_AddNumberToObject(root, "speedup_vs_torch", tm / med);
        } else {
            printf("  PyTorch timing failed (is /usr/bin/python3 with torch installed?)\n");
        }
    }
    cJSON_AddStringToObject(root, "note", "shared 2-core machine: timings vary with its load");
    char *json = cJSON_Print(root);
    int rc = bench_write_json(out, json);
    free(json);
    cJSON_Delete(root);
    free(phone);
    free(f0);
    free(audio);
    free(pitch);
    free(secs);
    free(cpu);
    avo_arena_free(arena);
    avo_backend_free(be);
    return rc;
}
