/* Model load time with the engine cache (engine_cache.h), CPU back end: the plain load from the
 * checkpoint, a cold cached load (no engine file: build and write it) and a warm one (hit), median
 * of N each, wall and CPU (user + system) time, for the real-size random models of bench_neural
 * (make_random_models.py: HuBERT base, RMVPE, RVC v2 40k). The warm model's output is compared
 * with the plain model's, bit for bit, on one input.
 * --cuda: the same on the CUDA back end (weights uploaded to the GPU; FP32).
 * usage: bench_engine_cache [--models DIR] [--repeats N] [--cache DIR] [--out PATH] [--cuda] */
#include "bench_common.h"

#include "autovoice/engine_cache.h"

#include <dirent.h>
#include <math.h>
#include <sys/resource.h>
#include <unistd.h>

enum { M_HUBERT, M_RMVPE, M_RVC, M_COUNT };
static const char *const model_file[M_COUNT] = {"hubert_base.pt", "rmvpe.pt", "rvc_v2_40k.pth"};
static const char *const model_label[M_COUNT] = {"HuBERT base", "RMVPE", "RVC v2 40k"};

typedef struct loaded {
    void *m;
} loaded;

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void die(const avo_error *e) {
    fprintf(stderr, "bench_engine_cache: %s\n", e->message);
    exit(1);
}

/* req NULL: the plain load. */
static void *load(int which, const char *path, avo_backend *be, const avo_engine_request *req, avo_engine_result *res) {
    avo_error err;
    void *m = NULL;
    avo_status st;
    switch (which) {
    case M_HUBERT: st = req ? avo_hubert_load_cached(path, be, req, (avo_hubert **)&m, res, &err)
                            : avo_hubert_load(path, be, (avo_hubert **)&m, &err); break;
    case M_RMVPE: st = req ? avo_rmvpe_load_cached(path, be, req, (avo_rmvpe **)&m, res, &err)
                           : avo_rmvpe_load(path, be, (avo_rmvpe **)&m, &err); break;
    default: st = req ? avo_rvc_load_cached(path, be, req, (avo_rvc **)&m, res, &err)
                      : avo_rvc_load(path, be, (avo_rvc **)&m, &err); break;
    }
    if (st) die(&err);
    return m;
}

static void unload(int which, void *m) {
    if (which == M_HUBERT) avo_hubert_free(m);
    else if (which == M_RMVPE) avo_rmvpe_free(m);
    else avo_rvc_free(m);
}

/* One small run of the model; out gets n floats (n returned). */
static int64_t run(int which, void *m, avo_arena *a, float *out, int64_t cap) {
    avo_error err;
    float x[16000];
    uint64_t s = 12345;
    for (int i = 0; i < 16000; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = 0.1f * (float)sin(2 * M_PI * 220.0 * i / 16000.0) + 0.01f * (float)((s >> 40) / (double)(1 << 24) - 0.5);
    }
    avo_arena_reset(a);
    if (which == M_HUBERT) {
        avo_tensor f;
        if (avo_hubert_extract(m, a, x, 16000, 12, false, &f, &err)) die(&err);
        int64_t n = avo_tensor_numel(&f);
        if (n > cap || avo_tensor_to_host(a, &f, out, n, &err)) die(&err);
        return n;
    }
    if (which == M_RMVPE) {
        int64_t n = avo_rmvpe_frames(16000);
        if (avo_rmvpe_f0(m, a, x, 16000, 0.03f, out, NULL, &err)) die(&err);
        return n;
    }
    const avo_rvc_info *info = avo_rvc_get_info(m);
    enum { T = 20 };
    static float phone[T * 768];
    float f0[T];
    int32_t coarse[T];
    for (int i = 0; i < T * info->phone_dim; i++) phone[i] = 0.01f * (float)(i % 97) - 0.4f;
    for (int i = 0; i < T; i++) f0[i] = 200.0f + 5.0f * i;
    avo_rvc_pitch_coarse(f0, T, coarse);
    if ((int64_t)T * info->hop > cap) return 0;
    if (avo_rvc_infer(m, a, phone, T, coarse, f0, 0, NULL, NULL, 7, out, &err)) die(&err);
    return (int64_t)T * info->hop;
}

static void clear_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4400];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
}

int main(int argc, char **argv) {
    const char *models = "/tmp/autovoice-neural-models", *out_path = "bench/out/engine_cache.json", *cache_arg = NULL;
    int repeats = 5;
    bool cuda = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--models") && i + 1 < argc) models = argv[++i];
        else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cache") && i + 1 < argc) cache_arg = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(argv[i], "--cuda")) cuda = true;
        else {
            fprintf(stderr, "usage: bench_engine_cache [--models DIR] [--repeats N] [--cache DIR] [--out PATH] [--cuda]\n");
            return 2;
        }
    }
    if (repeats < 1 || repeats > 50) repeats = 5;
    char cache_dir[4096];
    if (cache_arg) snprintf(cache_dir, sizeof cache_dir, "%s", cache_arg);
    else {
        snprintf(cache_dir, sizeof cache_dir, "/tmp/avo-bench-engines-XXXXXX");
        if (!mkdtemp(cache_dir)) {
            perror("mkdtemp");
            return 1;
        }
    }
    avo_error err;
    avo_backend *be = NULL;
    avo_arena *arena = NULL;
    avo_engine_cache *cache = NULL;
    if ((cuda ? avo_backend_cuda_create(0, &be, &err) : avo_backend_cpu_create(0, &be, &err)) || avo_arena_create(be, 64u << 20, &arena, &err) ||
        avo_engine_cache_open(cache_dir, &cache, &err))
        die(&err);
    avo_engine_request req = {.cache = cache};
    const int64_t cap = 1 << 20;
    float *ref = malloc(cap * sizeof(float)), *got = malloc(cap * sizeof(float));
    double med[M_COUNT][3][2]; /* [model][plain, cold, warm][wall, cpu] */
    double file_mb[M_COUNT], engine_mb[M_COUNT];
    bool identical[M_COUNT];
    printf("engine cache dir %s, %d repeats, %s back end\n", cache_dir, repeats, avo_backend_name(be));
    for (int w = 0; w < M_COUNT; w++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", models, model_file[w]);
        if (access(path, R_OK)) {
            fprintf(stderr, "bench_engine_cache: %s missing (make it with bench_neural --make)\n", path);
            return 1;
        }
        struct stat sb;
        stat(path, &sb);
        file_mb[w] = sb.st_size / 1e6;
        double t[3][2][50];
        for (int mode = 0; mode < 3; mode++)
            for (int r = 0; r < repeats; r++) {
                if (mode == 1) clear_dir(cache_dir);
                avo_engine_result res;
                double c0 = cpu_s(), t0 = avo_now_ms();
                void *m = load(w, path, be, mode ? &req : NULL, &res);
                if (cuda && avo_backend_cuda_sync(be, &err)) die(&err); /* uploads finished */
                t[mode][0][r] = (avo_now_ms() - t0) / 1000.0;
                t[mode][1][r] = cpu_s() - c0;
                avo_engine_outcome want = mode == 1 ? AVO_ENGINE_BUILT : AVO_ENGINE_HIT;
                if (mode && res.outcome != want) {
                    fprintf(stderr, "bench_engine_cache: %s: %s, expected %s (%s)\n", model_file[w],
                            avo_engine_outcome_name(res.outcome), avo_engine_outcome_name(want), res.reason);
                    return 1;
                }
                if (mode == 2) {
                    struct stat es;
                    engine_mb[w] = stat(res.path, &es) ? 0 : es.st_size / 1e6;
                }
                if (r == 0 && mode != 1) { /* plain and warm models must compute the same bits */
                    int64_t n = run(w, m, arena, mode ? got : ref, cap);
                    if (mode == 2) identical[w] = memcmp(ref, got, (size_t)n * sizeof(float)) == 0;
                }
                unload(w, m);
            }
        for (int mode = 0; mode < 3; mode++)
            for (int k = 0; k < 2; k++) med[w][mode][k] = bench_median(t[mode][k], repeats);
        printf("%-12s plain %.3f s (cpu %.3f)  build %.3f s (cpu %.3f)  hit %.3f s (cpu %.3f)  output %s\n",
               model_label[w], med[w][0][0], med[w][0][1], med[w][1][0], med[w][1][1], med[w][2][0], med[w][2][1],
               identical[w] ? "bit-identical" : "DIFFERS");
    }
    printf("\n%-12s %9s %9s %10s %10s %10s %10s %10s %9s\n", "model", "file MB", "engine MB", "plain s", "build s",
           "hit s", "hit cpu s", "plain/hit", "output");
    char json[8192];
    int len = snprintf(json, sizeof json,
                       "{\"benchmark\": \"engine_cache\", \"backend\": \"%s\", \"repeats\": %d, \"statistic\": \"median\", "
                       "\"models\": \"random weights, real sizes (make_random_models.py)\", \"components\": [",
                       avo_backend_name(be), repeats);
    for (int w = 0; w < M_COUNT; w++) {
        printf("%-12s %9.1f %9.1f %10.3f %10.3f %10.3f %10.3f %9.2fx %9s\n", model_label[w], file_mb[w], engine_mb[w],
               med[w][0][0], med[w][1][0], med[w][2][0], med[w][2][1], med[w][0][0] / med[w][2][0],
               identical[w] ? "same" : "DIFFERS");
        len += snprintf(json + len, sizeof json - (size_t)len,
                        "%s{\"name\": \"%s\", \"file\": \"%s\", \"file_mb\": %.1f, \"engine_mb\": %.1f, "
                        "\"plain_s\": %.4f, \"plain_cpu_s\": %.4f, \"build_s\": %.4f, \"build_cpu_s\": %.4f, "
                        "\"hit_s\": %.4f, \"hit_cpu_s\": %.4f, \"hit_output_bit_identical\": %s}",
                        w ? ", " : "", model_label[w], model_file[w], file_mb[w], engine_mb[w], med[w][0][0],
                        med[w][0][1], med[w][1][0], med[w][1][1], med[w][2][0], med[w][2][1],
                        identical[w] ? "true" : "false");
    }
    snprintf(json + len, sizeof json - (size_t)len, "]}");
    if (!cache_arg) {
        clear_dir(cache_dir);
        rmdir(cache_dir);
    }
    avo_engine_cache_free(cache);
    avo_arena_free(arena);
    avo_backend_free(be);
    free(ref);
    free(got);
    int rc = bench_write_json(out_path, json);
    for (int w = 0; w < M_COUNT; w++) rc |= !identical[w];
    return rc;
}
