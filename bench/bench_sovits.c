/* so-vits-svc generator benchmark: full-size parity, then speed against PyTorch.
 *
 * Parity: the full-size random 4.0 (vec256l9) and 4.1 (vec768l12, vol_embedding) generators of
 * tests/reference/make_sovits_models.py (written into the golden folder first if absent: about two
 * minutes and 1.1 GB) on their golden inputs (2 s of real singing: random-HuBERT units, f0 from the
 * clip "clip" and a synthetic "contour"), with the stored noise draws; relative error
 * max|a-b| / max|b| of x, m_p, logs_p, z_p, z, har_source and audio, and coarse pitch mismatches.
 * Speed: avo_sovits infer on FRAMES frames (default 2584 = 30 s at 44.1 kHz / 512) of the chosen
 * model with random units, a sung f0 contour and a volume track, median of RUNS runs after a
 * warm-up, split into text encoder, flows, host source and generator; the checkpoint's load time;
 * then the PyTorch reference (make_sovits_models.py --time, 2 torch threads) on the same checkpoint
 * and length, started from this program; ratio.
 *
 * Usage: bench_sovits [--golden DIR] [--model 40|41] [--frames N] [--runs N] [--torch-runs N]
 *                     [--threads N] [--chunk N] [--no-torch] [--no-parity] [--out PATH]
 *   DIR defaults to $AVO_SOVITS_GOLDEN or /tmp/sovits_golden; PATH to bench/out/sovits.json. Runs
 *   itself again with OMP_WAIT_POLICY=passive unless it is set (see engine.h). The machine is
 *   shared: numbers vary with its load. */
#include "autovoice/models.h"
#include "bench_common.h"
#include "models/sovits_internal.h"
#include "models/vits_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <unistd.h>

static char gdir[1024];
static cJSON *gidx;

static float *read_golden(const char *name, int64_t want) {
    const cJSON *e = cJSON_GetObjectItem(cJSON_GetObjectItem(gidx, "tensors"), name);
    char path[1200];
    snprintf(path, sizeof path, "%s/golden/%s", gdir, e ? cJSON_GetObjectItem(e, "file")->valuestring : name);
    FILE *f = e ? fopen(path, "rb") : NULL;
    if (!f) {
        fprintf(stderr, "bench_sovits: no golden tensor %s (%s)\n", name, path);
        exit(1);
    }
    float *d = malloc((size_t)want * sizeof(float));
    size_t got = d ? fread(d, sizeof(float), (size_t)want, f) : 0;
    fclose(f);
    if ((int64_t)got != want) {
        fprintf(stderr, "bench_sovits: %s has %zu values, expected %lld\n", path, got, (long long)want);
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
    char *cut = strstr(src, "/bench/bench_sovits.c");
    if (cut) *cut = 0;
    return src;
}

static const char *checkpoint_of(const char *tag, char *buf, size_t n) {
    const cJSON *info = cJSON_GetObjectItem(cJSON_GetObjectItem(gidx, "models"), tag);
    if (!info) {
        fprintf(stderr, "bench_sovits: the golden index has no model %s\n", tag);
        exit(1);
    }
    snprintf(buf, n, "%s/%s", gdir, cJSON_GetObjectItem(info, "checkpoint")->valuestring);
    return buf;
}

/* Parity of one model (tag "sovits40" / "sovits41") on both golden cases; adds {"case": {"stage": err}} to js.
 * Returns the worst error. */
static double parity(avo_backend *be, avo_arena *arena, const char *tag, cJSON *js) {
    char path[1200], name[160];
    avo_error err = {0};
    avo_sovits *m = NULL;
    if (avo_sovits_load(checkpoint_of(tag, path, sizeof path), NULL, be, &m, &err)) bench_die(&err);
    const avo_sovits_info *in = avo_sovits_get_info(m);
    int64_t T = (int64_t)cJSON_GetObjectItem(gidx, "frames")->valuedouble, C = in->inter_channels, H = sovits_hidden(m);
    int64_t N = T * in->hop;
    float *units = read_golden(in->version == 40 ? "units_vec256l9" : "units_vec768l12", T * in->ssl_dim);
    float *vol = read_golden("vol", T);
    snprintf(name, sizeof name, "%s_z_noise", tag);
    float *zn = read_golden(name, C * T);
    snprintf(name, sizeof name, "%s_rand_ini", tag);
    float *ini = read_golden(name, SOVITS_HARMONICS);
    snprintf(name, sizeof name, "%s_sine_noise", tag);
    float *sn = read_golden(name, N * SOVITS_HARMONICS);
    const char *stages[7] = {"x", "m_p", "logs_p", "z_p", "z", "har_source", "audio"};
    int64_t sizes[7] = {H * T, C * T, C * T, C * T, C * T, N, N};
    float *bufs[7];
    for (int i = 0; i < 7; i++) bufs[i] = malloc((size_t)sizes[i] * sizeof(float));
    int32_t *coarse = malloc((size_t)T * sizeof(int32_t));
    avo_sovits_noise nz = {.z = zn, .rand_ini = ini, .source = sn};
    double worst = 0;
    cJSON *mj = cJSON_AddObjectToObject(js, tag);
    const char *cases[2] = {"clip", "contour"};
    for (int c = 0; c < 2; c++) {
        snprintf(name, sizeof name, "%s_%s_f0", tag, cases[c]);
        float *f0 = read_golden(name, T);
        snprintf(name, sizeof name, "%s_%s_uv", tag, cases[c]);
        float *uv = read_golden(name, T);
        snprintf(name, sizeof name, "%s_%s_coarse", tag, cases[c]);
        float *cg = read_golden(name, T);
        sovits_taps taps = {.x = bufs[0], .coarse = coarse, .m_p = bufs[1], .logs_p = bufs[2], .z_p = bufs[3], .z = bufs[4],
                            .har_source = bufs[5]};
        avo_arena_reset(arena);
        if (sovits_infer_taps(m, arena, units, T, f0, uv, in->vol_embedding ? vol : NULL,
                              (int)cJSON_GetObjectItem(gidx, "sid")->valuedouble,
                              (float)cJSON_GetObjectItem(gidx, "noise_scale")->valuedouble, &nz, 0, bufs[6], &taps, &err))
            bench_die(&err);
        int bad = 0;
        for (int64_t i = 0; i < T; i++) bad += coarse[i] != (int32_t)cg[i];
        cJSON *cj = cJSON_AddObjectToObject(mj, cases[c]);
        cJSON_AddNumberToObject(cj, "coarse_mismatches", bad);
        printf("  %s %-8s coarse mismatches %d", tag, cases[c], bad);
        for (int i = 0; i < 7; i++) {
            snprintf(name, sizeof name, "%s_%s_%s", tag, cases[c], stages[i]);
            float *want = read_golden(name, sizes[i]);
            double e = rel_error(bufs[i], want, sizes[i]);
            free(want);
            worst = e > worst ? e : worst;
            cJSON_AddNumberToObject(cj, stages[i], e);
            printf(" %s %.2g", stages[i], e);
        }
        printf("\n");
        free(f0);
        free(uv);
        free(cg);
    }
    for (int i = 0; i < 7; i++) free(bufs[i]);
    free(coarse);
    free(units);
    free(vol);
    free(zn);
    free(ini);
    free(sn);
    avo_sovits_free(m);
    return worst;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static cJSON *read_index(void) {
    char path[1200];
    snprintf(path, sizeof path, "%s/golden/index.json", gdir);
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        text = n > 0 ? calloc((size_t)n + 1, 1) : NULL;
        if (text && fread(text, 1, (size_t)n, f) != (size_t)n) text[0] = 0;
        fclose(f);
    }
    cJSON *idx = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!idx) {
        fprintf(stderr, "bench_sovits: cannot read %s\n", path);
        exit(1);
    }
    return idx;
}

int main(int argc, char **argv) {
    if (!getenv("OMP_WAIT_POLICY") && setenv("OMP_WAIT_POLICY", "passive", 1) == 0) execv("/proc/self/exe", argv);
    const char *out = "bench/out/sovits.json", *env = getenv("AVO_SOVITS_GOLDEN");
    int64_t frames = 2584, chunk = 0;
    int runs = 3, torch_runs = 1, threads = 2, version = 41;
    bool do_torch = true, do_parity = true;
    snprintf(gdir, sizeof gdir, "%s", env && *env ? env : "/tmp/sovits_golden");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--golden") && i + 1 < argc)
            snprintf(gdir, sizeof gdir, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--model") && i + 1 < argc)
            version = atoi(argv[++i]);
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
        else if (!strcmp(argv[i], "--no-torch"))
            do_torch = false;
        else if (!strcmp(argv[i], "--no-parity"))
            do_parity = false;
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else {
            fprintf(stderr, "usage: bench_sovits [--golden DIR] [--model 40|41] [--frames N] [--runs N] [--torch-runs N] "
                            "[--threads N] [--chunk N] [--no-torch] [--no-parity] [--out PATH]\n");
            return 2;
        }
    }
    if (frames < 1 || runs < 1 || (version != 40 && version != 41)) return 2;
    char path[1200], cmd[4096];
    snprintf(path, sizeof path, "%s/golden/index.json", gdir);
    if (access(path, R_OK) != 0) {
        printf("writing the full-size random so-vits models and golden tensors into %s (about two minutes)\n", gdir);
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/reference/make_sovits_models.py' '%s' > '%s.log' 2>&1",
                 source_dir(), gdir, gdir);
        if (system(cmd) != 0) {
            fprintf(stderr, "bench_sovits: make_sovits_models.py failed, see %s.log\n", gdir);
            return 1;
        }
    }
    gidx = read_index();
    avo_error err = {0};
    avo_backend *be = NULL;
    avo_arena *arena = NULL;
    if (avo_backend_cpu_create(threads, &be, &err) || avo_arena_create(be, 64u << 20, &arena, &err)) bench_die(&err);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "bench", "sovits");
    cJSON_AddNumberToObject(root, "threads", threads);

    if (do_parity) {
        int64_t T = (int64_t)cJSON_GetObjectItem(gidx, "frames")->valuedouble;
        printf("parity on the full-size models (%lld frames, stored noise draws):\n", (long long)T);
        cJSON *pj = cJSON_AddObjectToObject(root, "parity_rel_error");
        double w = parity(be, arena, "sovits40", pj), w2 = parity(be, arena, "sovits41", pj);
        w = w2 > w ? w2 : w;
        cJSON_AddNumberToObject(root, "parity_worst", w);
        printf("  worst %.3g (target < 1e-4)\n", w);
        avo_arena_reset(arena);
    }

    /* speed: random units, a sung contour with vibrato, a volume track */
    const char *tag = version == 40 ? "sovits40" : "sovits41";
    checkpoint_of(tag, path, sizeof path);
    avo_sovits *m = NULL;
    double tl = avo_now_ms();
    if (avo_sovits_load(path, NULL, be, &m, &err)) bench_die(&err);
    tl = (avo_now_ms() - tl) / 1000.0;
    const avo_sovits_info *in = avo_sovits_get_info(m);
    int64_t hop = in->hop, N = frames * hop;
    double seconds = (double)N / in->sample_rate;
    float *units = malloc((size_t)(frames * in->ssl_dim) * sizeof(float)), *f0 = malloc((size_t)frames * sizeof(float));
    float *uv = malloc((size_t)frames * sizeof(float)), *vol = malloc((size_t)frames * sizeof(float));
    float *audio = malloc((size_t)N * sizeof(float));
    vits_rng rng;
    vits_rng_seed(&rng, 7);
    vits_rng_normal(&rng, units, frames * in->ssl_dim);
    for (int64_t i = 0; i < frames; i++) {
        double t = (double)i * hop / in->sample_rate;
        f0[i] = (float)(220.0 * pow(2.0, 0.5 * sin(2 * M_PI * 0.7 * t) + 0.03 * sin(2 * M_PI * 5.5 * t)));
        uv[i] = fmod(t, 4.0) < 3.6 ? 1.0f : 0.0f; /* a breath every 4 s */
        vol[i] = (float)(0.1 + 0.05 * sin(2 * M_PI * 0.3 * t));
    }
    double *secs = calloc((size_t)runs, sizeof(double)), enc = 0, flow = 0, src = 0, dec = 0;
    printf("%s (%s), %lld frames (%.1f s of audio), %d threads, chunk %lld; loaded in %.2f s:\n", tag, path,
           (long long)frames, seconds, threads, (long long)chunk, tl);
    for (int r = -1; r < runs; r++) {
        sovits_taps taps = {.chunk_frames = chunk};
        avo_arena_reset(arena);
        double t = avo_now_ms();
        if (sovits_infer_taps(m, arena, units, frames, f0, uv, vol, 1, 0.4f, NULL, 1, audio, &taps, &err)) bench_die(&err);
        t = (avo_now_ms() - t) / 1000.0;
        printf("  run %d: %.2f s (enc_p %.2f, flow %.2f, source %.2f, dec %.2f)%s\n", r + 1, t, taps.ms_enc / 1000,
               taps.ms_flow / 1000, taps.ms_source / 1000, taps.ms_dec / 1000, r < 0 ? " warm-up" : "");
        if (r < 0) continue;
        secs[r] = t;
        enc += taps.ms_enc / 1000 / runs;
        flow += taps.ms_flow / 1000 / runs;
        src += taps.ms_source / 1000 / runs;
        dec += taps.ms_dec / 1000 / runs;
    }
    double peak_arena = (double)avo_arena_peak(arena) / 1048576.0;
    qsort(secs, (size_t)runs, sizeof(double), cmp_double);
    double med = runs % 2 ? secs[runs / 2] : 0.5 * (secs[runs / 2 - 1] + secs[runs / 2]);
    printf("  median %.2f s = %.3fx real time; arena peak %.0f MB\n", med, med / seconds, peak_arena);
    cJSON *cj = cJSON_AddObjectToObject(root, "c");
    cJSON_AddStringToObject(cj, "model", tag);
    cJSON_AddNumberToObject(cj, "frames", (double)frames);
    cJSON_AddNumberToObject(cj, "audio_s", seconds);
    cJSON_AddNumberToObject(cj, "runs", runs);
    cJSON_AddNumberToObject(cj, "median_s", med);
    cJSON_AddNumberToObject(cj, "real_time_factor", med / seconds);
    cJSON_AddNumberToObject(cj, "enc_p_s", enc);
    cJSON_AddNumberToObject(cj, "flow_s", flow);
    cJSON_AddNumberToObject(cj, "source_s", src);
    cJSON_AddNumberToObject(cj, "dec_s", dec);
    cJSON_AddNumberToObject(cj, "load_s", tl);
    cJSON_AddNumberToObject(cj, "chunk_frames", (double)chunk);
    cJSON_AddNumberToObject(cj, "arena_peak_mb", peak_arena);
    cJSON_AddNumberToObject(cj, "peak_rss_mb", bench_peak_rss_mb());
    avo_sovits_free(m);

    if (do_torch && torch_runs > 0) {
        char tmp[] = "/tmp/bench_sovits_torch_XXXXXX";
        int fd = mkstemp(tmp);
        if (fd >= 0) close(fd);
        printf("PyTorch reference (2 threads), %d run(s) after a warm-up...\n", torch_runs);
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 '%s/tests/reference/make_sovits_models.py' --time '%s' --frames %lld --runs %d "
                 "--threads 2 > '%s'",
                 source_dir(), path, (long long)frames, torch_runs, tmp);
        char line[4096] = {0};
        FILE *f = system(cmd) == 0 ? fopen(tmp, "r") : NULL;
        cJSON *tj = f && fgets(line, sizeof line, f) ? cJSON_Parse(line) : NULL;
        if (f) fclose(f);
        unlink(tmp);
        const cJSON *tm_j = tj ? cJSON_GetObjectItem(tj, "median_s") : NULL;
        if (cJSON_IsNumber(tm_j)) {
            double tm = tm_j->valuedouble;
            printf("  torch median %.2f s; C is %.2fx faster\n", tm, tm / med);
            cJSON_AddItemToObject(root, "torch", tj);
            cJSON_AddNumberToObject(root, "speedup_vs_torch", tm / med);
        } else {
            printf("  PyTorch timing failed (is /usr/bin/python3 with torch installed?)\n");
            cJSON_Delete(tj);
        }
    }
    cJSON_AddStringToObject(root, "note", "shared 2-core machine: timings vary with its load");
    char *json = cJSON_Print(root);
    int rc = bench_write_json(out, json);
    free(json);
    cJSON_Delete(root);
    cJSON_Delete(gidx);
    free(units);
    free(f0);
    free(uv);
    free(vol);
    free(audio);
    free(secs);
    avo_arena_free(arena);
    avo_backend_free(be);
    return rc;
}
