/* Neural engine benchmark (issue 7): each component of the RVC v2 chain on a 30 s vocal, in C on the
 * CPU back end and in PyTorch (tests/reference models, same thread count) in the same run, and the
 * whole neural conversion (16 kHz, content features, RMVPE F0 track given, index-free synthesis, RMS
 * mix, resampling) as the pipeline runs it. Models are random-weight checkpoints of the real sizes,
 * written by tests/reference/make_random_models.py (--make runs it into --models).
 *
 * The vocal: the singing clips of data/singing, concatenated at 16 kHz until --seconds long.
 * Times are medians of --repeats runs after one warm-up; RTF = seconds of compute per second of audio.
 *
 * --cpu-precision bf16 runs the three components with BF16 convolutions (avo_backend_cpu_set_precision)
 * after an FP32 run of the synthesizer, and reports the audio's relative error against it; the whole
 * conversion stage makes its own back end and stays FP32. --conv im2col turns the direct AVX-512
 * conv1d kernel off (the old im2col + sgemm path, for before/after comparisons in one build); --conv
 * nofft keeps the direct kernel but turns the FFT conv1d path off (components only).
 *
 * usage: bench_neural [--models DIR] [--make] [--seconds S] [--repeats N] [--threads N] [--no-torch]
 *                     [--cpu-precision fp32|bf16] [--conv direct|nofft|im2col]
 *                     [--out PATH]   (default bench/out/neural.json) */
#include "autovoice/convert.h"
#include "autovoice/models.h"
#include "bench_common.h"
#include "engine/cpu_conv1d.h"

#include <dirent.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

typedef struct bench_args {
    const char *models, *out;
    double seconds;
    int repeats, threads, make, torch, bf16, im2col, nofft;
} bench_args;

static void parse(int argc, char **argv, bench_args *a) {
    a->models = "/tmp/autovoice-neural-models";
    a->out = "bench/out/neural.json";
    a->seconds = 30;
    a->repeats = 3;
    a->threads = 2;
    a->torch = 1;
    a->make = 0;
    a->bf16 = 0;
    a->im2col = 0;
    a->nofft = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--models") && i + 1 < argc) a->models = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) a->out = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) a->seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) a->repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) a->threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--make")) a->make = 1;
        else if (!strcmp(argv[i], "--no-torch")) a->torch = 0;
        else if (!strcmp(argv[i], "--cpu-precision") && i + 1 < argc && !strcmp(argv[i + 1], "bf16")) a->bf16 = 1, i++;
        else if (!strcmp(argv[i], "--cpu-precision") && i + 1 < argc && !strcmp(argv[i + 1], "fp32")) a->bf16 = 0, i++;
        else if (!strcmp(argv[i], "--conv") && i + 1 < argc && !strcmp(argv[i + 1], "im2col")) a->im2col = 1, i++;
        else if (!strcmp(argv[i], "--conv") && i + 1 < argc && !strcmp(argv[i + 1], "direct")) a->im2col = 0, i++;
        else if (!strcmp(argv[i], "--conv") && i + 1 < argc && !strcmp(argv[i + 1], "nofft")) a->nofft = 1, i++;
        else {
            fprintf(stderr, "usage: bench_neural [--models DIR] [--make] [--seconds S] [--repeats N] [--threads N] "
                            "[--no-torch] [--cpu-precision fp32|bf16] [--conv direct|nofft|im2col] [--out PATH]\n");
            exit(2);
        }
    }
    if (a->repeats < 1) a->repeats = 1;
}

static int cmp_names(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }

/* Singing clips at 16 kHz, concatenated to exactly seconds long. */
static void build_vocal(double seconds, avo_audio *out) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/singing", bench_data_dir());
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "bench: no %s\n", dir);
        exit(1);
    }
    char *names[512];
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) && count < 512)
        if (strstr(e->d_name, ".flac") || strstr(e->d_name, ".wav")) names[count++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)count, sizeof *names, cmp_names);
    avo_error err;
    const int64_t total = (int64_t)(seconds * 16000);
    if (avo_audio_alloc(out, 16000, 1, total, &err)) bench_die(&err);
    int64_t at = 0;
    for (int i = 0; at < total; i = (i + 1) % count) {
        char rel[600];
        snprintf(rel, sizeof rel, "singing/%s", names[i]);
        avo_audio clip = {0};
        bench_load(rel, 16000, 1, &clip);
        const int64_t take = clip.frames < total - at ? clip.frames : total - at;
        memcpy(out->samples + at, clip.samples, sizeof(float) * (size_t)take);
        at += take;
        avo_audio_free(&clip);
    }
    for (int i = 0; i < count; i++) free(names[i]);
}

static void model_path(const bench_args *a, const char *file, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", a->models, file);
}

static void ensure_models(const bench_args *a) {
    char p[4096];
    model_path(a, "rvc_v2_40k.pth", p, sizeof p);
    if (access(p, R_OK) == 0) return;
    if (!a->make) {
        fprintf(stderr, "bench: no models in %s; run with --make (writes 480 MB there)\n", a->models);
        exit(1);
    }
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/reference/make_random_models.py '%s' > '%s.log' 2>&1",
             a->models, a->models);
    printf("writing random models of the real sizes into %s ...\n", a->models);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench: make_random_models.py failed (see %s.log)\n", a->models);
        exit(1);
    }
}

typedef struct timing {
    double c_s, torch_s; /* medians; torch_s 0 when not run */
} timing;

static double cpu_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Median wall seconds into result and median process CPU seconds into cpu_result (on a shared
 * machine the wall time includes waiting for the cores; the CPU time does not). */
#define TIME_MEDIAN(result, cpu_result, repeats, body)               \
    do {                                                             \
        double t_[64], c_[64];                                       \
        int r_n = (repeats) + 1 > 64 ? 64 : (repeats) + 1;           \
        for (int r_ = 0; r_ < r_n; r_++) {                           \
            double t0_ = avo_now_ms(), c0_ = cpu_now_s();            \
            body;                                                    \
            t_[r_] = (avo_now_ms() - t0_) / 1000.0;                  \
            c_[r_] = cpu_now_s() - c0_;                              \
        }                                                            \
        result = bench_median(t_ + 1, r_n - 1); /* after a warm-up */ \
        cpu_result = bench_median(c_ + 1, r_n - 1);                  \
    } while (0)

static void check(avo_status st, const avo_error *err) {
    if (st) bench_die(err);
}

/* Runs the PyTorch timing script; fills t[0..2] (hubert, rmvpe, rvc) and the torch version. */
static int run_torch(const bench_args *a, const avo_audio *v, double t[3], char *version, size_t cap) {
    char raw[] = "/tmp/bench_neural_XXXXXX";
    int fd = mkstemp(raw);
    if (fd < 0) return 0;
    const ssize_t bytes = (ssize_t)(sizeof(float) * (size_t)v->frames);
    const int ok = write(fd, v->samples, (size_t)bytes) == bytes;
    close(fd);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 bench/torch_neural_timing.py '%s' '%s' %d %d 2>/dev/null",
             a->models, raw, a->repeats, a->threads);
    FILE *p = ok ? popen(cmd, "r") : NULL;
    char line[4096] = "";
    int got = 0;
    if (p) {
        while (fgets(line, sizeof line, p))
            if (sscanf(line, "{\"hubert_s\": %lf, \"rmvpe_s\": %lf, \"rvc_s\": %lf", &t[0], &t[1], &t[2]) == 3) {
                got = 1;
                const char *tv = strstr(line, "\"torch\": \"");
                if (tv) snprintf(version, cap, "%.*s", (int)strcspn(tv + 10, "\""), tv + 10);
            }
        pclose(p);
    }
    unlink(raw);
    return got;
}

int main(int argc, char **argv) {
    bench_args a;
    parse(argc, argv, &a);
    ensure_models(&a);
    avo_audio v = {0};
    build_vocal(a.seconds, &v);
    avo_error err;
    avo_backend *be = NULL;
    avo_arena *arena = NULL;
    check(avo_backend_cpu_create(a.threads, &be, &err), &err);
    check(avo_arena_create(be, (size_t)256 << 20, &arena, &err), &err);
    if (a.im2col) cpu_backend_set_direct_conv(be, false);
    if (a.nofft) cpu_backend_set_fft_conv(be, CPU_FFT_OFF);
    printf("conv1d path: %s (components; the whole-stage converter uses its own back ends: direct + fft); "
           "cpu precision: %s\n",
           !cpu_backend_direct_conv(be) ? "im2col + sgemm" : a.nofft ? "direct avx512, no fft" : "direct avx512 + fft",
           a.bf16 ? "bf16" : "fp32");
    double bf16_rel = -1;
    float *audio32 = NULL;
    char path[4096];
    timing hub = {0, 0}, rmv = {0, 0}, syn = {0, 0};
    double hub_cpu = 0, rmv_cpu = 0, syn_cpu = 0, convert_cpu = 0;

    if (a.bf16) check(avo_backend_cpu_set_precision(be, AVO_CPU_BF16, &err), &err);
    /* Content features: HuBERT layer 12 on the whole input. */
    avo_hubert *h = NULL;
    model_path(&a, "hubert_base.pt", path, sizeof path);
    check(avo_hubert_load(path, be, &h, &err), &err);
    avo_tensor feat;
    TIME_MEDIAN(hub.c_s, hub_cpu, a.repeats, {
        avo_arena_reset(arena);
        check(avo_hubert_extract(h, arena, v.samples, v.frames, 12, false, &feat, &err), &err);
    });
    const int64_t cf = feat.shape[0];
    float *feats = malloc(sizeof(float) * (size_t)(cf * 768));
    check(avo_tensor_to_host(arena, &feat, feats, cf * 768, &err), &err);
    avo_hubert_free(h);
    printf("hubert   %.3f s (cpu %.3f s)\n", hub.c_s, hub_cpu);

    /* Pitch: RMVPE on the whole input. */
    avo_rmvpe *rm = NULL;
    model_path(&a, "rmvpe.pt", path, sizeof path);
    check(avo_rmvpe_load(path, be, &rm, &err), &err);
    float *f0 = malloc(sizeof(float) * (size_t)avo_rmvpe_frames(v.frames));
    TIME_MEDIAN(rmv.c_s, rmv_cpu, a.repeats, {
        avo_arena_reset(arena);
        check(avo_rmvpe_f0(rm, arena, v.samples, v.frames, 0.03f, f0, NULL, &err), &err);
    });
    avo_rmvpe_free(rm);
    printf("rmvpe    %.3f s (cpu %.3f s)\n", rmv.c_s, rmv_cpu);

    /* Synthesizer: features x2, a sung F0 contour (as the PyTorch script). */
    avo_rvc *rvc = NULL;
    model_path(&a, "rvc_v2_40k.pth", path, sizeof path);
    check(avo_rvc_load(path, be, &rvc, &err), &err);
    const avo_rvc_info *info = avo_rvc_get_info(rvc);
    const int64_t p_len = v.frames / 160 < 2 * cf ? v.frames / 160 : 2 * cf;
    float *phone = malloc(sizeof(float) * (size_t)(2 * cf * 768));
    for (int64_t t = 0; t < cf; t++) {
        memcpy(phone + 2 * t * 768, feats + t * 768, 768 * sizeof(float));
        memcpy(phone + (2 * t + 1) * 768, feats + t * 768, 768 * sizeof(float));
    }
    float *nsf = malloc(sizeof(float) * (size_t)p_len);
    int32_t *coarse = malloc(sizeof(int32_t) * (size_t)p_len);
    for (int64_t i = 0; i < p_len; i++) nsf[i] = (float)(220.0 * pow(2.0, 3.0 * sin(2 * M_PI * 0.3 * i / 100.0) / 12.0));
    avo_rvc_pitch_coarse(nsf, p_len, coarse);
    float *audio = malloc(sizeof(float) * (size_t)(p_len * info->hop));
    if (a.bf16) { /* the FP32 reference audio, then BF16 again */
        audio32 = malloc(sizeof(float) * (size_t)(p_len * info->hop));
        check(avo_backend_cpu_set_precision(be, AVO_CPU_FP32, &err), &err);
        avo_arena_reset(arena);
        check(avo_rvc_infer(rvc, arena, phone, p_len, coarse, nsf, 0, NULL, NULL, 1, audio32, &err), &err);
        check(avo_backend_cpu_set_precision(be, AVO_CPU_BF16, &err), &err);
    }
    TIME_MEDIAN(syn.c_s, syn_cpu, a.repeats, {
        avo_arena_reset(arena);
        check(avo_rvc_infer(rvc, arena, phone, p_len, coarse, nsf, 0, NULL, NULL, 1, audio, &err), &err);
    });
    avo_rvc_free(rvc);
    printf("rvc      %.3f s (cpu %.3f s)\n", syn.c_s, syn_cpu);
    if (a.bf16) {
        double num = 0, den = 0;
        for (int64_t i = 0; i < p_len * info->hop; i++) {
            double d = fabs((double)audio[i] - audio32[i]);
            num = d > num ? d : num;
            den = fabs(audio32[i]) > den ? fabs(audio32[i]) : den;
        }
        bf16_rel = den > 0 ? num / den : num;
        int64_t n32 = 0, n16 = 0;
        check(avo_backend_cpu_gemm_counts(be, &n32, &n16, &err), &err);
        printf("rvc audio bf16 vs fp32: max relative error %.3g (weight GEMMs so far: %lld fp32, %lld bf16)\n", bf16_rel,
               (long long)n32, (long long)n16);
        free(audio32);
    }
    avo_arena_free(arena);
    avo_backend_free(be);

    /* The whole conversion stage as the pipeline runs it (44.1 kHz vocals, RMVPE's track given). */
    avo_audio v44 = {0};
    check(avo_audio_resample(&v, 44100, &v44, &err), &err);
    avo_f0_track track = {0};
    const int64_t nf = avo_rmvpe_frames(v.frames);
    check(avo_f0_track_alloc(&track, nf, 0.010, &err), &err);
    memcpy(track.f0_hz, f0, sizeof(float) * (size_t)nf);
    avo_neural_config nc;
    avo_neural_config_default(&nc);
    char mp[4096], ep[4096];
    model_path(&a, "rvc_v2_40k.pth", mp, sizeof mp);
    model_path(&a, "hubert_base.pt", ep, sizeof ep);
    nc.model_path = mp;
    nc.content_encoder_path = ep;
    nc.precision = a.bf16 ? "bf16" : "fp32"; /* the converter's own back ends, as --precision bf16 gives them */
    nc.engine_cache = 0;                     /* load time as the plain checkpoint load */
    avo_convert_options opt;
    avo_convert_options_default(&opt);
    opt.threads = a.threads;
    avo_converter *conv = NULL;
    double load_s = avo_now_ms();
    check(avo_converter_create_neural(&nc, NULL, &opt, &conv, &err), &err);
    load_s = (avo_now_ms() - load_s) / 1000.0;
    double convert_s = 0;
    avo_audio out = {0};
    TIME_MEDIAN(convert_s, convert_cpu, a.repeats, {
        avo_audio_free(&out);
        check(avo_converter_run(conv, &v44, &track, &out, NULL, NULL, &err), &err);
    });
    avo_converter_info ci;
    avo_converter_get_info(conv, &ci);
    printf("convert  %.3f s (cpu %.3f s) (+%.2f s model loading); ran: content encoder %s, voice model %s%s%s\n",
           convert_s, convert_cpu, load_s, ci.content_precision, ci.precision, ci.fallback[0] ? "; " : "", ci.fallback);
    avo_converter_free(conv);

    char torch_version[64] = "not run";
    double tt[3] = {0, 0, 0};
    if (a.torch && run_torch(&a, &v, tt, torch_version, sizeof torch_version)) {
        hub.torch_s = tt[0], rmv.torch_s = tt[1], syn.torch_s = tt[2];
    } else if (a.torch) {
        fprintf(stderr, "bench: the PyTorch timing script failed; its columns stay empty\n");
    }

    const double sec = a.seconds;
    const char *names[3] = {"content encoder (HuBERT base, layer 12)", "pitch (RMVPE)", "synthesizer (RVC v2 40k)"};
    timing *rows[3] = {&hub, &rmv, &syn};
    printf("\n%-40s %10s %8s %12s %10s\n", "component", "C s", "C RTF", "PyTorch s", "speed-up");
    char json[8192];
    int len = snprintf(json, sizeof json,
                       "{\"benchmark\": \"neural\", \"seconds\": %.1f, \"threads\": %d, \"repeats\": %d, "
                       "\"torch\": \"%s\", \"models\": \"random weights, real sizes (make_random_models.py)\", "
                       "\"conv1d\": \"%s\", \"cpu_precision\": \"%s\", \"rvc_bf16_rel_error\": %.4g, "
                       "\"components\": [",
                       sec, a.threads, a.repeats, torch_version, a.im2col ? "im2col" : a.nofft ? "direct-nofft" : "direct+fft",
                       a.bf16 ? "bf16" : "fp32", bf16_rel);
    for (int i = 0; i < 3; i++) {
        const double ratio = rows[i]->torch_s > 0 ? rows[i]->torch_s / rows[i]->c_s : 0;
        printf("%-40s %10.3f %8.3f %12.3f %9.2fx\n", names[i], rows[i]->c_s, rows[i]->c_s / sec, rows[i]->torch_s,
               ratio);
        len += snprintf(json + len, sizeof json - (size_t)len,
                        "%s{\"name\": \"%s\", \"c_seconds\": %.4f, \"c_rtf\": %.5f, \"torch_seconds\": %.4f, "
                        "\"speedup_vs_torch\": %.3f}",
                        i ? ", " : "", names[i], rows[i]->c_s, rows[i]->c_s / sec, rows[i]->torch_s, ratio);
    }
    printf("%-40s %10.3f %8.3f   (model loading %.2f s, not included)\n", "whole conversion stage (C)", convert_s,
           convert_s / sec, load_s);
    len += snprintf(json + len, sizeof json - (size_t)len,
                    "], \"conversion\": {\"seconds\": %.4f, \"rtf\": %.5f, \"model_loading_seconds\": %.3f, "
                    "\"target_seconds\": 10.0, \"cpu_seconds\": %.4f}, \"component_cpu_seconds\": [%.4f, %.4f, %.4f], "
                    "\"peak_rss_mb\": %.1f}",
                    convert_s, convert_s / sec, load_s, convert_cpu, hub_cpu, rmv_cpu, syn_cpu, bench_peak_rss_mb());
    avo_audio_free(&out);
    avo_audio_free(&v44);
    avo_audio_free(&v);
    avo_f0_track_free(&track);
    free(feats), free(f0), free(phone), free(nsf), free(coarse), free(audio);
    return bench_write_json(a.out, json);
}
