/* Benchmark building blocks shared by `autovoice bench` and the bench programs: test songs from the shared
 * recordings, timed pipeline runs, child processes with their own peak memory. */
#include "autovoice/bench.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

const char *avo_bench_data_dir(void) {
    const char *d = getenv("AVO_TEST_DATA");
    return d && *d ? d : "../shared/data";
}

avo_status avo_bench_load(const char *path, int rate, int channels, avo_audio *out, avo_error *err) {
    avo_audio raw = {0}, rs = {0};
    memset(out, 0, sizeof *out);
    avo_status st = avo_audio_read(path, &raw, err);
    if (!st) st = avo_audio_resample(&raw, rate, &rs, err);
    if (!st) st = avo_audio_set_channels(&rs, channels, out, err);
    avo_audio_free(&raw);
    avo_audio_free(&rs);
    return st;
}

avo_status avo_bench_loop_to(const avo_audio *src, int64_t frames, avo_audio *out, avo_error *err) {
    const int64_t fade = src->sample_rate / 100, len = src->frames;
    if (len <= 2 * fade) return avo_error_set(err, AVO_ERR_INVALID_AUDIO, "loop source of %lld frames is too short", (long long)len);
    avo_status st = avo_audio_alloc(out, src->sample_rate, src->channels, frames, err);
    if (st) return st;
    for (int64_t pos = 0; pos < frames; pos += len - fade) {
        for (int c = 0; c < src->channels; c++) {
            const float *x = avo_audio_channel(src, c);
            float *y = avo_audio_channel(out, c);
            for (int64_t i = 0; i < len && pos + i < frames; i++) {
                float g = 1.0f;
                if (pos > 0 && i < fade) g = (float)i / (float)fade;
                if (len - i <= fade && pos + len < frames) g = (float)(len - i) / (float)fade;
                y[pos + i] += g * x[i];
            }
        }
    }
    return AVO_OK;
}

static void data_path(const char *data_dir, const char *rel, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s", data_dir ? data_dir : avo_bench_data_dir(), rel);
}

avo_status avo_bench_falcon_accompaniment(const char *data_dir, avo_audio *out, avo_error *err) {
    const char *parts[] = {"stems/falcon69/drums.flac", "stems/falcon69/bass.flac", "stems/falcon69/other.flac"};
    char path[4096];
    data_path(data_dir, parts[0], path, sizeof path);
    avo_status st = avo_bench_load(path, 44100, 2, out, err);
    for (int i = 1; i < 3 && !st; i++) {
        avo_audio p;
        data_path(data_dir, parts[i], path, sizeof path);
        st = avo_bench_load(path, 44100, 2, &p, err);
        if (st) break;
        int64_t n = p.frames < out->frames ? p.frames : out->frames;
        for (int c = 0; c < 2; c++)
            for (int64_t k = 0; k < n; k++) avo_audio_channel(out, c)[k] += avo_audio_channel(&p, c)[k];
        avo_audio_free(&p);
    }
    if (st) avo_audio_free(out);
    return st;
}

static const char *SINGING[] = {"NJAT_07", "NJAT_16", "MPOL_11", "MPOL_20", "KENN_04", "KENN_10", "SAMF_13",
                                "SAMF_18", "ZHIY_03", "ZHIY_06", "VKOW_11", "VKOW_19", "PMAR_11", "PMAR_15",
                                "MPUR_02", "MPUR_03", "JTAN_07", "JTAN_16"};

static double rms(const avo_audio *a) {
    double s = 0;
    for (int64_t i = 0; i < a->frames * a->channels; i++) s += (double)a->samples[i] * a->samples[i];
    return sqrt(s / (double)(a->frames * a->channels) + 1e-20);
}

/* The NUS-48E clips one after another, cut at frames. */
static avo_status sung_vocals(const char *data_dir, int64_t frames, avo_audio *vocals, avo_error *err) {
    avo_status st = avo_audio_alloc(vocals, 44100, 2, frames, err);
    int64_t pos = 0;
    for (size_t k = 0; pos < frames && !st; k = (k + 1) % (sizeof SINGING / sizeof SINGING[0])) {
        char rel[128], path[4096];
        snprintf(rel, sizeof rel, "singing/nus48e_%s.flac", SINGING[k]);
        data_path(data_dir, rel, path, sizeof path);
        avo_audio clip;
        st = avo_bench_load(path, 44100, 2, &clip, err);
        if (st) break;
        for (int c = 0; c < 2; c++)
            for (int64_t i = 0; i < clip.frames && pos + i < frames; i++)
                avo_audio_channel(vocals, c)[pos + i] = avo_audio_channel(&clip, c)[i];
        pos += clip.frames;
        avo_audio_free(&clip);
    }
    if (st) avo_audio_free(vocals);
    return st;
}

avo_status avo_bench_build_song(const char *data_dir, double seconds, avo_audio *song, avo_audio *vocals,
                                avo_audio *accompaniment, avo_error *err) {
    if (!(seconds > 0.1 && seconds < 36000))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "test song length %g s is out of range", seconds);
    const int64_t frames = (int64_t)(seconds * 44100);
    avo_audio acc_src = {0}, acc = {0}, voc = {0};
    memset(song, 0, sizeof *song);
    avo_status st = avo_bench_falcon_accompaniment(data_dir, &acc_src, err);
    if (!st) st = avo_bench_loop_to(&acc_src, frames, &acc, err);
    avo_audio_free(&acc_src);
    if (!st) st = sung_vocals(data_dir, frames, &voc, err);
    if (!st) st = avo_audio_alloc(song, 44100, 2, frames, err);
    if (!st) {
        /* 0 dB vocal-to-accompaniment ratio (RMS), both halved for headroom; stems keep the same scale. */
        const float g = (float)(rms(&acc) / rms(&voc));
        for (int64_t i = 0; i < 2 * frames; i++) {
            voc.samples[i] *= 0.5f * g;
            acc.samples[i] *= 0.5f;
            song->samples[i] = voc.samples[i] + acc.samples[i];
        }
    }
    if (!st && vocals) {
        *vocals = voc;
        memset(&voc, 0, sizeof voc);
    }
    if (!st && accompaniment) {
        *accompaniment = acc;
        memset(&acc, 0, sizeof acc);
    }
    if (st) avo_audio_free(song);
    avo_audio_free(&voc);
    avo_audio_free(&acc);
    return st;
}

avo_status avo_bench_make_target(const char *data_dir, const char *const *clip_paths, int clip_count,
                                 avo_voice_analysis **out, avo_error *err) {
    enum { MAX_CLIPS = 32 };
    char defaults[2][4096];
    const char *def_ptrs[2] = {defaults[0], defaults[1]};
    if (clip_count <= 0) {
        data_path(data_dir, "singing/nus48e_JLEE_11.flac", defaults[0], sizeof defaults[0]);
        data_path(data_dir, "singing/nus48e_JLEE_15.flac", defaults[1], sizeof defaults[1]);
        clip_paths = def_ptrs;
        clip_count = 2;
    }
    if (clip_count > MAX_CLIPS) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "at most %d target clips", MAX_CLIPS);
    avo_audio clips[MAX_CLIPS];
    memset(clips, 0, sizeof clips);
    avo_status st = AVO_OK;
    for (int i = 0; i < clip_count && !st; i++) st = avo_audio_read(clip_paths[i], &clips[i], err);
    if (!st) st = avo_voice_analysis_create(clips, clip_count, AVO_PRESET_BALANCED, 0, out, err);
    if (st) avo_error_prefix(err, "target voice");
    for (int i = 0; i < clip_count; i++) avo_audio_free(&clips[i]);
    return st;
}

/* VmHWM from /proc (resettable), else getrusage's high-water mark. */
double avo_bench_peak_rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) kb = atof(line + 6);
    if (f) fclose(f);
    if (kb < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kb = (double)ru.ru_maxrss;
    }
    return kb / 1024.0;
}

/* Starts a new high-water mark, so peak memory excludes building the inputs (Linux >= 4.0). */
static void reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return;
    fputs("5", f);
    fclose(f);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double avo_bench_median(double *v, int n) {
    if (n <= 0) return NAN;
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- child processes ---- */

typedef struct child_header {
    int status;
    char message[AVO_ERROR_MESSAGE_MAX];
} child_header;

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return 0;
        c += w;
        n -= (size_t)w;
    }
    return 1;
}

static int read_all(int fd, void *p, size_t n) {
    char *c = p;
    while (n > 0) {
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        c += r;
        n -= (size_t)r;
    }
    return 1;
}

avo_status avo_bench_run_in_child(avo_bench_child_fn fn, void *user, void *result, size_t size,
                                  double *peak_rss_mb, avo_error *err) {
    int fd[2];
    if (pipe(fd) != 0) return avo_error_set(err, AVO_ERR_INTERNAL, "pipe failed (%s)", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return avo_error_set(err, AVO_ERR_INTERNAL, "fork failed (%s)", strerror(errno));
    }
    if (pid == 0) {
        close(fd[0]);
        child_header h;
        memset(&h, 0, sizeof h);
        avo_error cerr;
        avo_error_clear(&cerr);
        h.status = fn(user, result, &cerr);
        snprintf(h.message, sizeof h.message, "%s", cerr.message);
        int ok = write_all(fd[1], &h, sizeof h) && write_all(fd[1], result, size);
        _exit(ok ? 0 : 1);
    }
    close(fd[1]);
    child_header h;
    int got = read_all(fd[0], &h, sizeof h) && read_all(fd[0], result, size);
    close(fd[0]);
    int wstatus = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &wstatus, 0, &ru) < 0 && errno == EINTR) {
    }
    if (peak_rss_mb) *peak_rss_mb = ru.ru_maxrss / 1024.0;
    if (!got) {
        if (WIFSIGNALED(wstatus))
            return avo_error_set(err, AVO_ERR_INTERNAL, "benchmark child died from signal %d (%s)", WTERMSIG(wstatus),
                                 strsignal(WTERMSIG(wstatus)));
        return avo_error_set(err, AVO_ERR_INTERNAL, "benchmark child exited (status %d) without a result",
                             WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
    }
    if (h.status != AVO_OK) return avo_error_set(err, (avo_status)h.status, "%s", h.message);
    return AVO_OK;
}

/* ---- timing ---- */

avo_status avo_bench_time_pipeline(const avo_pipeline_config *cfg, const avo_pipeline_input *in, int warmup,
                                   int runs, avo_bench_timing *out, avo_pipeline_output *last, avo_error *err) {
    if (runs < 1 || runs > AVO_BENCH_MAX_RUNS || warmup < 0)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "timed runs must be 1..%d", AVO_BENCH_MAX_RUNS);
    memset(out, 0, sizeof *out);
    reset_peak_rss();
    double stage[AVO_STAGE_COUNT][AVO_BENCH_MAX_RUNS];
    for (int k = 0; k < warmup + runs; k++) {
        avo_pipeline_output o;
        avo_run_metadata meta;
        avo_status st = avo_pipeline_run(cfg, in, &o, &meta, err);
        if (st) return st;
        if (k >= warmup) {
            const int r = k - warmup;
            for (int s = 0; s < AVO_STAGE_COUNT; s++) stage[s][r] = meta.stage_ms[s];
            out->run_total_ms[r] = meta.total_ms;
            out->audio_seconds = meta.audio_duration_seconds;
            snprintf(out->device, sizeof out->device, "%s", meta.device);
            snprintf(out->precision, sizeof out->precision, "%s", meta.precision);
            snprintf(out->backend, sizeof out->backend, "%s", meta.backend);
            snprintf(out->converter, sizeof out->converter, "%s", meta.converter);
            snprintf(out->separation_method, sizeof out->separation_method, "%s", meta.separation_method);
            snprintf(out->f0_method, sizeof out->f0_method, "%s", meta.f0_method);
        }
        if (last && k == warmup + runs - 1) *last = o;
        else avo_pipeline_output_free(&o);
    }
    out->runs = runs;
    /* Stages from the run with the median total (the lower one for an even count), so that they add
     * up to the total; independent per-stage medians need not. */
    int order[AVO_BENCH_MAX_RUNS];
    for (int r = 0; r < runs; r++) order[r] = r;
    for (int i = 1; i < runs; i++)
        for (int j = i; j > 0 && out->run_total_ms[order[j]] < out->run_total_ms[order[j - 1]]; j--) {
            int tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    const int mid = order[(runs - 1) / 2];
    for (int s = 0; s < AVO_STAGE_COUNT; s++) out->stage_ms[s] = stage[s][mid];
    out->total_ms = out->run_total_ms[mid];
    out->rtf = out->audio_seconds > 0 ? out->total_ms / 1000.0 / out->audio_seconds : 0;
    out->peak_rss_mb = avo_bench_peak_rss_mb();
    return AVO_OK;
}
