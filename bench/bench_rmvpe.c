/* RMVPE benchmark: speed of avo_rmvpe_f0 (mel front end + network + decoding) on a 30 s clip of real
 * singing against the PyTorch reference doing the same (tests/reference/rvc_models.py: RmvpeMel,
 * rmvpe_salience, decode_salience; torch threads = the back end's), both with the full-size random
 * rmvpe.pt of tests/reference/make_random_models.py, after a warm-up each. The reference runs as a
 * server process and the runs alternate (C, PyTorch, C, ...), so each pair sees about the same load
 * on a shared machine; the speed-up reported is the median of the pairs' ratios (medians and best
 * runs are reported too). Also the agreement of the two F0 tracks; also the clip in windows of 1024 frames against one pass (the
 * windowing's effect at full size). With --golden DIR it also checks the C model against that
 * script's golden tensors (rmvpe_mel, rmvpe_salience, rmvpe_f0) at full size.
 *
 * The clip: the nus48e_* singing clips of data/singing (16 kHz), in name order, concatenated to 30 s.
 * The machine may be shared: the JSON records the load average before and after.
 *
 * OpenMP's idle threads spin and starve OpenBLAS's threads, so unless OMP_WAIT_POLICY is set this
 * program re-runs itself with OMP_WAIT_POLICY=passive (as the CLI does).
 *
 * Usage: bench_rmvpe [--out PATH] [--model rmvpe.pt] [--golden DIR] [--runs N] [--seconds S]
 *                    [--threads N] [--no-torch]
 *   default bench/out/rmvpe.json. Without --model (or --golden DIR holding rmvpe.pt) the checkpoints
 *   are generated once into /tmp/avo_bench_rmvpe by make_random_models.py (about a minute, 480 MB). */
#include "autovoice/models.h"
#include "bench_common.h"
#include "models/rmvpe_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *source_dir(char *buf, size_t n) {
    const char *env = getenv("AVO_SOURCE_DIR");
    snprintf(buf, n, "%s", env && *env ? env : __FILE__);
    char *cut = env && *env ? NULL : strstr(buf, "bench/bench_rmvpe.c");
    if (cut) snprintf(cut, n - (size_t)(cut - buf), ".");
    return buf;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* 16 kHz mono: the nus48e clips in name order, concatenated and cut to seconds. */
static float *build_clip(double seconds, int64_t *n, int *clips) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/singing", bench_data_dir());
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "bench_rmvpe: cannot open %s (set AVO_TEST_DATA)\n", dir);
        exit(1);
    }
    char *names[256];
    int count = 0;
    for (struct dirent *e; (e = readdir(d)) && count < 256;)
        if (!strncmp(e->d_name, "nus48e_", 7) && strstr(e->d_name, ".flac")) names[count++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)count, sizeof *names, cmp_name);
    int64_t want = (int64_t)(seconds * 16000), have = 0;
    float *out = malloc((size_t)want * sizeof(float));
    *clips = 0;
    for (int i = 0; i < count && have < want; i++) {
        char rel[600];
        snprintf(rel, sizeof rel, "singing/%s", names[i]);
        avo_audio a = {0};
        bench_load(rel, 16000, 1, &a);
        int64_t take = a.frames < want - have ? a.frames : want - have;
        memcpy(out + have, a.samples, (size_t)take * sizeof(float));
        have += take;
        (*clips)++;
        avo_audio_free(&a);
    }
    for (int i = 0; i < count; i++) free(names[i]);
    if (have < want) {
        fprintf(stderr, "bench_rmvpe: only %.1f s of singing in %s\n", have / 16000.0, dir);
        exit(1);
    }
    *n = want;
    return out;
}

static float *read_f32(const char *path, int64_t n) {
    size_t size = 0;
    FILE *f = fopen(path, "rb");
    float *d = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (f) {
        size = fread(d, sizeof(float), (size_t)n, f);
        fclose(f);
    }
    if (size != (size_t)n) {
        fprintf(stderr, "bench_rmvpe: cannot read %lld floats from %s\n", (long long)n, path);
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

/* Frames whose F0 differs by more than 1 cent (or in voicing); worst difference among the others. */
static int f0_differ(const float *a, const float *b, int64_t n, double *worst_cents) {
    int differ = 0;
    *worst_cents = 0;
    for (int64_t i = 0; i < n; i++) {
        if ((a[i] > 0) != (b[i] > 0)) {
            differ++;
        } else if (a[i] > 0) {
            double c = fabs(1200.0 * log2((double)a[i] / b[i]));
            if (c > 1.0) differ++;
            else if (c > *worst_cents) *worst_cents = c;
        }
    }
    return differ;
}

/* Full-size parity against make_random_models.py's golden folder. */
static cJSON *golden_check(avo_rmvpe *m, avo_arena *a, const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/golden/index.json", dir);
    char *text = NULL;
    FILE *f = fopen(path, "rb");
    if (f) {
        fseek(f, 0, SEEK_END);
        long sz = ftell(f);
        fseek(f, 0, SEEK_SET);
        text = calloc(1, (size_t)sz + 1);
        if (fread(text, 1, (size_t)sz, f) != (size_t)sz) text[0] = 0;
        fclose(f);
    }
    cJSON *ix = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!ix) {
        fprintf(stderr, "bench_rmvpe: no %s\n", path);
        exit(1);
    }
    const cJSON *t = cJSON_GetObjectItem(ix, "tensors");
    int64_t n = (int64_t)cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(t, "audio_16k"), "shape"), 0)->valuedouble;
    int64_t frames = avo_rmvpe_frames(n);
    float threshold = (float)cJSON_GetObjectItem(ix, "rmvpe_threshold")->valuedouble;
    snprintf(path, sizeof path, "%s/golden/audio_16k.f32", dir);
    float *audio = read_f32(path, n);
    snprintf(path, sizeof path, "%s/golden/rmvpe_mel.f32", dir);
    float *mel = read_f32(path, RMVPE_MELS * frames);
    snprintf(path, sizeof path, "%s/golden/rmvpe_salience.f32", dir);
    float *sal = read_f32(path, RMVPE_BINS * frames);
    snprintf(path, sizeof path, "%s/golden/rmvpe_f0.f32", dir);
    float *f0 = read_f32(path, frames);
    float *cm = calloc((size_t)frames * RMVPE_MELS, sizeof(float)), *tr = calloc((size_t)frames * RMVPE_MELS, sizeof(float));
    float *cs = malloc((size_t)frames * RMVPE_BINS * sizeof(float)), *cf = malloc((size_t)frames * sizeof(float));
    avo_error err;
    rmvpe_mel *fe = NULL;
    if (rmvpe_mel_create(&fe, &err) || rmvpe_mel_frames(fe, audio, n, 0, frames, cm, &err)) bench_die(&err);
    rmvpe_mel_free(fe);
    for (int64_t i = 0; i < frames; i++)
        for (int b = 0; b < RMVPE_MELS; b++) tr[b * frames + i] = cm[i * RMVPE_MELS + b];
    double e_mel = rel_error(tr, mel, frames * RMVPE_MELS);
    for (int64_t i = 0; i < frames; i++) /* the network on the reference's own mel */
        for (int b = 0; b < RMVPE_MELS; b++) cm[i * RMVPE_MELS + b] = mel[b * frames + i];
    avo_arena_reset(a);
    if (rmvpe_salience(m, a, cm, frames, cs, &err)) bench_die(&err);
    double e_sal = rel_error(cs, sal, frames * RMVPE_BINS);
    avo_arena_reset(a);
    if (avo_rmvpe_f0(m, a, audio, n, threshold, cf, NULL, &err)) bench_die(&err);
    double worst = 0;
    int differ = f0_differ(cf, f0, frames, &worst);
    printf("full-size golden (%s): %lld frames; mel rel error %.3g, salience rel error %.3g, f0: %d frames differ, "
           "worst %.4f cents elsewhere\n",
           dir, (long long)frames, e_mel, e_sal, differ, worst);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "dir", dir);
    cJSON_AddNumberToObject(j, "frames", (double)frames);
    cJSON_AddNumberToObject(j, "mel_rel_error", e_mel);
    cJSON_AddNumberToObject(j, "salience_rel_error", e_sal);
    cJSON_AddNumberToObject(j, "f0_frames_differ", differ);
    cJSON_AddNumberToObject(j, "f0_worst_cents_elsewhere", worst);
    free(audio), free(mel), free(sal), free(f0), free(cm), free(tr), free(cs), free(cf);
    cJSON_Delete(ix);
    return j;
}

/* The PyTorch reference as a server on stdin/stdout, so that its runs interleave with the C runs and
 * both see the same load on a shared machine: "run" -> {"ms": ...}; "f0 PATH" writes the last F0
 * track. It loads and warms up first, then prints {"ready": ...}. */
static const char *torch_script =
    "import json, sys, time\n"
    "import numpy as np, torch\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "import rvc_models as R\n"
    "torch.set_num_threads(int(sys.argv[4]))\n"
    "sd = torch.load(sys.argv[2], map_location='cpu')\n"
    "model = R.E2E(4, 1, (2, 2))\n"
    "model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()}, strict=True)\n"
    "model.eval()\n"
    "audio = torch.from_numpy(np.fromfile(sys.argv[3], dtype='<f4'))[None]\n"
    "front = R.RmvpeMel()\n"
    "def run():\n"
    "    with torch.no_grad():\n"
    "        sal = R.rmvpe_salience(model, front(audio))\n"
    "    return R.decode_salience(sal[0].numpy(), 0.03)[0]\n"
    "f0 = run()\n"
    "print(json.dumps({'ready': True, 'torch': torch.__version__, 'threads': torch.get_num_threads()}), flush=True)\n"
    "for line in sys.stdin:\n"
    "    cmd = line.split()\n"
    "    if cmd and cmd[0] == 'run':\n"
    "        t = time.perf_counter()\n"
    "        f0 = run()\n"
    "        print(json.dumps({'ms': (time.perf_counter() - t) * 1e3}), flush=True)\n"
    "    elif cmd and cmd[0] == 'f0':\n"
    "        np.asarray(f0, dtype='<f4').tofile(cmd[1])\n"
    "        print(json.dumps({'ok': True}), flush=True)\n";

typedef struct torch_server {
    pid_t pid;
    FILE *in, *out; /* its stdin, its stdout */
} torch_server;

/* One JSON line from the server (NULL on EOF or garbage). */
static cJSON *torch_reply(torch_server *ts) {
    char line[8192];
    while (fgets(line, sizeof line, ts->out)) {
        cJSON *j = cJSON_Parse(line);
        if (j) return j;
        fputs(line, stderr); /* a warning printed by torch */
    }
    return NULL;
}

static bool torch_start(torch_server *ts, const char *script, const char *refdir, const char *model, const char *audio,
                        int threads) {
    int to[2], from[2];
    if (pipe(to) || pipe(from)) return false;
    char nt[16];
    snprintf(nt, sizeof nt, "%d", threads);
    fflush(stdout);
    ts->pid = fork();
    if (ts->pid < 0) return false;
    if (ts->pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[0]), close(to[1]), close(from[0]), close(from[1]);
        execl("/usr/bin/python3", "python3", script, refdir, model, audio, nt, (char *)NULL);
        _exit(127);
    }
    close(to[0]), close(from[1]);
    ts->in = fdopen(to[1], "w");
    ts->out = fdopen(from[0], "r");
    return ts->in && ts->out;
}

static void torch_stop(torch_server *ts) {
    if (ts->in) fclose(ts->in);
    if (ts->out) fclose(ts->out);
    int status;
    if (ts->pid > 0) waitpid(ts->pid, &status, 0);
}

static double load_average(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

int main(int argc, char **argv) {
    const char *out_path = "bench/out/rmvpe.json", *model = NULL, *golden = NULL;
    int runs = 3, threads = 2, no_torch = 0;
    double seconds = 30.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--golden") && i + 1 < argc) golden = argv[++i];
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch")) no_torch = 1;
        else {
            fprintf(stderr,
                    "usage: %s [--out PATH] [--model rmvpe.pt] [--golden DIR] [--runs N] [--seconds S] [--threads N] "
                    "[--no-torch]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
        fprintf(stderr, "bench_rmvpe: cannot re-run with OMP_WAIT_POLICY=passive; measuring as is\n");
    }
    if (runs < 1) runs = 1;
    if (runs > 32) runs = 32;
    if (threads < 1) threads = 1;
    if (!(seconds >= 1 && seconds <= 3600)) seconds = 30;
    char src[4096], gen_dir[] = "/tmp/avo_bench_rmvpe", model_buf[4200], cmd[9000];
    source_dir(src, sizeof src);
    if (!model && golden) {
        snprintf(model_buf, sizeof model_buf, "%s/rmvpe.pt", golden);
        model = model_buf;
    }
    if (!model) {
        snprintf(model_buf, sizeof model_buf, "%s/rmvpe.pt", gen_dir);
        if (access(model_buf, R_OK) != 0) {
            printf("generating the full-size random checkpoints into %s (about a minute)\n", gen_dir);
            snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/reference/make_random_models.py' '%s' > '%s.log' 2>&1", src,
                     gen_dir, gen_dir);
            if (system(cmd) != 0) {
                fprintf(stderr, "bench_rmvpe: make_random_models.py failed, see %s.log\n", gen_dir);
                return 1;
            }
        }
        model = model_buf;
        golden = gen_dir;
    }

    avo_error err;
    avo_backend *be = NULL;
    avo_arena *arena = NULL;
    avo_rmvpe *m = NULL;
    if (avo_backend_cpu_create(threads, &be, &err) || avo_arena_create(be, 64u << 20, &arena, &err)) bench_die(&err);
    double t0 = avo_now_ms();
    if (avo_rmvpe_load(model, be, &m, &err)) bench_die(&err);
    double load_ms = avo_now_ms() - t0;
    int win = 0, margin = 0;
    rmvpe_get_window(m, &win, &margin);
    printf("loaded %s in %.0f ms; window %d frames, margin %d\n", model, load_ms, win, margin);

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "bench", "rmvpe");
    cJSON_AddStringToObject(root, "model", model);
    cJSON_AddNumberToObject(root, "load_ms", load_ms);
    cJSON_AddNumberToObject(root, "threads", threads);
    cJSON_AddNumberToObject(root, "window_frames", win);
    cJSON_AddNumberToObject(root, "window_margin", margin);
    if (golden) cJSON_AddItemToObject(root, "golden_check", golden_check(m, arena, golden));

    int clips = 0;
    int64_t n = 0;
    float *audio = build_clip(seconds, &n, &clips);
    int64_t frames = avo_rmvpe_frames(n);
    float *f0 = malloc((size_t)frames * sizeof(float)), *f0_torch = malloc((size_t)frames * sizeof(float));
    double load_before = load_average(), ms[32], tms[32];
    char dir[] = "/tmp/avo_bench_rmvpe_XXXXXX", path[200], script[200], f0path[200];
    torch_server ts = {0, NULL, NULL};
    cJSON *info = NULL;
    if (!no_torch) {
        if (!mkdtemp(dir)) {
            fprintf(stderr, "bench_rmvpe: cannot make a temporary folder\n");
            return 1;
        }
        snprintf(path, sizeof path, "%s/audio.f32", dir);
        snprintf(script, sizeof script, "%s/run.py", dir);
        snprintf(f0path, sizeof f0path, "%s/f0.f32", dir);
        FILE *f = fopen(path, "wb"), *s = fopen(script, "w");
        if (!f || !s) {
            fprintf(stderr, "bench_rmvpe: cannot write into %s\n", dir);
            return 1;
        }
        fwrite(audio, sizeof(float), (size_t)n, f);
        fclose(f);
        fputs(torch_script, s);
        fclose(s);
        char refdir[4200];
        snprintf(refdir, sizeof refdir, "%s/tests/reference", src);
        printf("starting the PyTorch reference (%d threads)...\n", threads);
        if (!torch_start(&ts, script, refdir, model, path, threads) || !(info = torch_reply(&ts)) ||
            !cJSON_GetObjectItem(info, "ready")) {
            fprintf(stderr, "bench_rmvpe: the PyTorch reference did not start\n");
            return 1;
        }
    }
    /* warm-up (arena growth, thread pools), then runs of C and PyTorch in turn */
    avo_arena_reset(arena);
    if (avo_rmvpe_f0(m, arena, audio, n, 0.03f, f0, NULL, &err)) bench_die(&err);
    for (int r = 0; r < runs; r++) {
        avo_arena_reset(arena);
        t0 = avo_now_ms();
        if (avo_rmvpe_f0(m, arena, audio, n, 0.03f, f0, NULL, &err)) bench_die(&err);
        ms[r] = avo_now_ms() - t0;
        if (no_torch) {
            printf("  run %d: C %.0f ms\n", r + 1, ms[r]);
            continue;
        }
        fprintf(ts.in, "run\n");
        fflush(ts.in);
        cJSON *rep = torch_reply(&ts);
        const cJSON *v = rep ? cJSON_GetObjectItem(rep, "ms") : NULL;
        if (!cJSON_IsNumber(v)) {
            fprintf(stderr, "bench_rmvpe: the PyTorch run failed\n");
            return 1;
        }
        tms[r] = v->valuedouble;
        cJSON_Delete(rep);
        printf("  run %d: C %.0f ms, PyTorch %.0f ms (%.2fx)\n", r + 1, ms[r], tms[r], tms[r] / ms[r]);
    }
    double c_best = ms[0], ratios[32];
    for (int r = 1; r < runs; r++) c_best = ms[r] < c_best ? ms[r] : c_best;
    double c_sorted[32];
    memcpy(c_sorted, ms, sizeof ms);
    double c_ms = bench_median(c_sorted, runs);
    printf("C: %.1f s clip (%d clips, %lld frames): median %.0f ms, best %.0f ms (RTF %.3f), arena peak %.1f MB, peak RSS "
           "%.0f MB\n",
           seconds, clips, (long long)frames, c_ms, c_best, c_ms / 1000.0 / seconds, avo_arena_peak(arena) / 1048576.0,
           bench_peak_rss_mb());
    cJSON *c = cJSON_AddObjectToObject(root, "c");
    cJSON_AddNumberToObject(c, "median_ms", c_ms);
    cJSON_AddNumberToObject(c, "best_ms", c_best);
    cJSON_AddNumberToObject(c, "rtf", c_ms / 1000.0 / seconds);
    cJSON_AddNumberToObject(c, "arena_peak_mb", avo_arena_peak(arena) / 1048576.0);
    cJSON_AddNumberToObject(c, "peak_rss_mb", bench_peak_rss_mb());
    cJSON_AddItemToObject(c, "runs_ms", cJSON_CreateDoubleArray(ms, runs));
    cJSON *clip = cJSON_AddObjectToObject(root, "clip");
    cJSON_AddNumberToObject(clip, "seconds", seconds);
    cJSON_AddNumberToObject(clip, "frames", (double)frames);
    cJSON_AddStringToObject(clip, "source", "data/singing/nus48e_*.flac in name order, concatenated, 16 kHz");
    if (!no_torch) {
        fprintf(ts.in, "f0 %s\n", f0path);
        fflush(ts.in);
        cJSON_Delete(torch_reply(&ts));
        torch_stop(&ts);
        float *tf = read_f32(f0path, frames);
        memcpy(f0_torch, tf, (size_t)frames * sizeof(float));
        free(tf);
        double t_sorted[32], t_best = tms[0];
        for (int r = 0; r < runs; r++) ratios[r] = tms[r] / ms[r], t_best = tms[r] < t_best ? tms[r] : t_best;
        memcpy(t_sorted, tms, sizeof tms);
        double t_ms = bench_median(t_sorted, runs), ratio = bench_median(ratios, runs);
        double worst = 0;
        int differ = f0_differ(f0, f0_torch, frames, &worst);
        printf("PyTorch %s: median %.0f ms, best %.0f ms. C is faster by %.2fx (median of the paired runs; medians "
               "%.2fx, best runs %.2fx); F0: %d of %lld frames differ, worst %.4f cents elsewhere\n",
               cJSON_GetObjectItem(info, "torch")->valuestring, t_ms, t_best, ratio, t_ms / c_ms, t_best / c_best, differ,
               (long long)frames, worst);
        cJSON *tj = cJSON_AddObjectToObject(root, "torch");
        cJSON_AddNumberToObject(tj, "median_ms", t_ms);
        cJSON_AddNumberToObject(tj, "best_ms", t_best);
        cJSON_AddItemToObject(tj, "runs_ms", cJSON_CreateDoubleArray(tms, runs));
        cJSON_AddStringToObject(tj, "version", cJSON_GetObjectItem(info, "torch")->valuestring);
        cJSON_AddNumberToObject(tj, "threads", cJSON_GetObjectItem(info, "threads")->valuedouble);
        cJSON_AddNumberToObject(root, "speedup_vs_torch", ratio);
        cJSON_AddNumberToObject(root, "speedup_of_medians", t_ms / c_ms);
        cJSON_AddNumberToObject(root, "speedup_of_best_runs", t_best / c_best);
        cJSON_AddNumberToObject(root, "f0_frames_differ_vs_torch", differ);
        cJSON_AddNumberToObject(root, "f0_worst_cents_elsewhere_vs_torch", worst);
        cJSON_Delete(info);
        unlink(path), unlink(script), unlink(f0path), rmdir(dir);
    }
    /* windowed processing against one pass: the same clip in windows of 1024 frames, default margin */
    {
        float *fw = malloc((size_t)frames * sizeof(float)), *cw = malloc((size_t)frames * sizeof(float));
        float *c1 = malloc((size_t)frames * sizeof(float));
        int64_t one = (frames + 31) / 32 * 32;
        if (rmvpe_set_window(m, (int)(one > win ? one : win), margin, &err)) bench_die(&err);
        avo_arena_reset(arena);
        if (avo_rmvpe_f0(m, arena, audio, n, 0.03f, f0, c1, &err)) bench_die(&err);
        if (rmvpe_set_window(m, 1024, margin, &err)) bench_die(&err);
        avo_arena_reset(arena);
        if (avo_rmvpe_f0(m, arena, audio, n, 0.03f, fw, cw, &err)) bench_die(&err);
        if (rmvpe_set_window(m, win, margin, &err)) bench_die(&err);
        double worst_conf = 0, worst = 0;
        for (int64_t i = 0; i < frames; i++) worst_conf = fmax(worst_conf, fabs((double)c1[i] - cw[i]));
        int differ = f0_differ(fw, f0, frames, &worst);
        printf("windows of 1024 frames (margin %d) vs one pass: confidence differs by %.2e at most, %d F0 frames differ, "
               "worst %.4f cents elsewhere\n",
               margin, worst_conf, differ, worst);
        cJSON *wj = cJSON_AddObjectToObject(root, "windowed_vs_one_pass");
        cJSON_AddNumberToObject(wj, "window_frames", 1024);
        cJSON_AddNumberToObject(wj, "margin_frames", margin);
        cJSON_AddNumberToObject(wj, "max_confidence_difference", worst_conf);
        cJSON_AddNumberToObject(wj, "f0_frames_differ", differ);
        cJSON_AddNumberToObject(wj, "f0_worst_cents_elsewhere", worst);
        free(fw), free(cw), free(c1);
    }
    cJSON_AddNumberToObject(root, "load_average_before", load_before);
    cJSON_AddNumberToObject(root, "load_average_after", load_average());
    cJSON_AddStringToObject(root, "note",
                            "wall-clock times on a shared 2-core machine: other jobs may slow either side; compare runs_ms");
    char *json = cJSON_Print(root);
    int rc = bench_write_json(out_path, json);
    free(json);
    cJSON_Delete(root);
    free(audio), free(f0), free(f0_torch);
    avo_rmvpe_free(m);
    avo_arena_free(arena);
    avo_backend_free(be);
    return rc;
}
