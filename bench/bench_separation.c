/* Separation benchmark (issue: vocal separation that holds up on real songs, with a measured SDR).
 *
 * (a) falcon69: the mastered mixture against its true vocals and accompaniment (drums+bass+other).
 * (b) constructed: every singing clip in ../shared/data/singing (resampled to 44.1 kHz, centre-panned
 *     stereo) over the falcon69 accompaniment looped/trimmed to the clip length, at vocal-to-
 *     accompaniment ratios (RMS over the clip) of -6, 0 and +6 dB; mixture = vocals + accompaniment,
 *     so the truth is exact.
 * Scores: BSS Eval v4 SDR (museval images mode, 1 s windows and hops, median over windows) and SI-SDR of
 * vocals and accompaniment; per condition and preset the median and the worst over clips.
 * Speed: seconds to separate a 30 s stereo 44.1 kHz song (clips over the looped accompaniment at 0 dB),
 * median of 5 runs, per preset. Memory (--memory): peak RSS of a child process separating a 10 min song,
 * through avo_separator_run (mixture, stereo vocals and accompaniment) and avo_separator_run_in_place;
 * the child is this program re-executed (/proc/self/exe --memory-child PRESET), not a fork, because a
 * forked copy of a process whose OpenMP/OpenBLAS thread pools exist hangs on their locks.
 *
 * usage: bench_separation [--out FILE.json] [--presets fast,balanced,quality] [--vars -6,0,6] [--threads N]
 *                         [--half 0|1] [--no-speed] [--memory] [--set P=V ...]
 * --set edits internal parameters, for ablations; --half keeps one half of the singers (sorted singer
 * names alternate between halves 0 and 1): tune on one, confirm on the other.
 * Default output bench/out/separation_bench.json (`autovoice bench` writes its own separation.json). */
#include "autovoice/sdr.h"
#include "autovoice/separate.h"
#include "bench_common.h"
#include "separate/sep_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_CLIPS 64
#define MAX_SETS 16

typedef struct scores {
    double v_sdr, a_sdr, v_si, a_si;
} scores;

static const char *g_sets[MAX_SETS];
static int g_nsets = 0;

static double rms(const avo_audio *a) {
    double s = 0;
    for (int64_t i = 0; i < a->frames * a->channels; i++) s += (double)a->samples[i] * a->samples[i];
    return sqrt(s / (double)(a->frames * a->channels) + 1e-30);
}

static void apply_sets(avo_separator *sep) {
    sep_params *p = sep_separator_params(sep);
    for (int i = 0; i < g_nsets; i++) {
        char name[64];
        double v;
        if (sscanf(g_sets[i], "%63[^=]=%lf", name, &v) != 2) continue;
#define SETP(field)                                 \
    if (!strcmp(name, #field)) {                    \
        p->field = (__typeof__(p->field))v;         \
        continue;                                   \
    }
        SETP(use_repet) SETP(repet_geo) SETP(repet_k) SETP(repet_min_gap_s) SETP(use_hpss) SETP(hpss_time_len)
        SETP(hpss_freq_len) SETP(use_side) SETP(side_gain) SETP(use_f0) SETP(lowcut_hz) SETP(mask_power)
        SETP(iterations) SETP(side_cancel) SETP(cancel_half) SETP(cancel_max_gain) SETP(repet_stride)
        SETP(fft_seconds) SETP(f0_accurate) SETP(unvoiced_gain) SETP(f0_floor) SETP(f0_boost) SETP(f0_width) SETP(f0_max_hz) SETP(f0_min_conf)
        SETP(fit_max_hz) SETP(fit_chirp) SETP(fit_low_hz) SETP(f0_hangover) SETP(recancel) SETP(recancel_half) SETP(recancel_wpow) SETP(recancel_lag) SETP(recancel_iterations) SETP(fit_resid) SETP(fit_step) SETP(fit_span)
#undef SETP
        fprintf(stderr, "unknown parameter %s\n", name);
        exit(2);
    }
    sep_separator_params_changed(sep);
}

static avo_separator *make_sep(avo_preset preset, int threads) {
    avo_separator_config cfg;
    avo_separator_config_default(&cfg);
    cfg.preset = preset;
    cfg.threads = threads;
    avo_separator *sep;
    avo_error err;
    if (avo_separator_create(&cfg, &sep, &err)) {
        fprintf(stderr, "bench: %s\n", err.message);
        exit(1);
    }
    apply_sets(sep);
    return sep;
}

static scores evaluate(avo_separator *sep, const avo_audio *mix, const avo_audio *voc, const avo_audio *acc) {
    avo_audio ev, ea;
    avo_error err;
    scores s;
    if (avo_separator_run(sep, mix, &ev, &ea, NULL, NULL, &err)) {
        fprintf(stderr, "bench: %s\n", err.message);
        exit(1);
    }
    avo_audio refs[2] = {*voc, *acc}, ests[2] = {ev, ea};
    double med[2];
    if (avo_bss_eval_sdr(refs, ests, 2, 44100, 44100, NULL, med, &err)) {
        fprintf(stderr, "bench: %s\n", err.message);
        exit(1);
    }
    s.v_sdr = med[0];
    s.a_sdr = med[1];
    avo_si_sdr_audio(voc, &ev, &s.v_si, NULL);
    avo_si_sdr_audio(acc, &ea, &s.a_si, NULL);
    avo_audio_free(&ev);
    avo_audio_free(&ea);
    return s;
}

static int list_clips(char names[][128]) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/singing", bench_data_dir());
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "bench: cannot open %s\n", dir);
        exit(1);
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < MAX_CLIPS) {
        size_t l = strlen(e->d_name);
        /* Names that would not fit are skipped rather than cut. */
        if (l > 5 && l < 110 && !strcmp(e->d_name + l - 5, ".flac")) {
            memcpy(names[n], "singing/", 8);
            memcpy(names[n] + 8, e->d_name, l + 1);
            n++;
        }
    }
    closedir(d);
    qsort(names, (size_t)n, 128, (int (*)(const void *, const void *))strcmp);
    return n;
}

/* Keeps the clips of one half of the singers (the name before the last '_' is the singer; sorted
 * singers alternate between half 0 and half 1), for tuning on one half and confirming on the other.
 * half < 0 keeps all. Returns the new count. */
static int keep_half(char names[][128], int n, int half) {
    if (half < 0) return n;
    char singer[MAX_CLIPS][128];
    int nsing = 0, kept = 0;
    for (int i = 0; i < n; i++) {
        char s[128];
        memcpy(s, names[i], sizeof s);
        char *u = strrchr(s, '_');
        if (u) *u = 0;
        int j = 0;
        while (j < nsing && strcmp(singer[j], s)) j++;
        if (j == nsing) memcpy(singer[nsing++], s, sizeof s);
        /* names are sorted, so singers are numbered in sorted order */
        if (j % 2 == half) memmove(names[kept++], names[i], 128);
    }
    return kept;
}

/* vocals scaled to var_db against acc (RMS), mixture = sum. */
static void construct(const avo_audio *clip, const avo_audio *acc_src, double var_db, avo_audio *mix, avo_audio *voc,
                      avo_audio *acc) {
    bench_loop_to(acc_src, clip->frames, acc);
    avo_audio_copy(clip, voc, NULL);
    const float g = (float)(rms(acc) / rms(voc) * pow(10.0, var_db / 20.0));
    for (int64_t i = 0; i < voc->frames * 2; i++) voc->samples[i] *= g;
    avo_audio_alloc(mix, 44100, 2, clip->frames, NULL);
    for (int64_t i = 0; i < mix->frames * 2; i++) mix->samples[i] = voc->samples[i] + acc->samples[i];
}

/* The looped accompaniment plus the clips one after another, both at the same RMS, halved. Built in
 * the song buffer itself with one clip loaded at a time (the clips are read twice: once for the
 * vocal RMS, once to add them), so that building it does not raise the peak RSS that --memory
 * measures above the song buffer. */
static void build_song(double seconds, const avo_audio *acc_src, char names[][128], int nclips, avo_audio *song) {
    const int64_t frames = (int64_t)(seconds * 44100);
    bench_loop_to(acc_src, frames, song);
    const double acc_rms = rms(song);
    double g = 0;
    for (int pass = 0; pass < 2; pass++) {
        double ss = 0;
        int64_t pos = 0;
        for (int k = 0; pos < frames; k = (k + 1) % nclips) {
            avo_audio clip;
            bench_load(names[k], 44100, 2, &clip);
            for (int c = 0; c < 2; c++) {
                const float *x = avo_audio_channel(&clip, c);
                float *y = avo_audio_channel(song, c) + pos;
                for (int64_t i = 0; i < clip.frames && pos + i < frames; i++) {
                    if (pass == 0) ss += (double)x[i] * x[i];
                    else y[i] += (float)g * x[i];
                }
            }
            pos += clip.frames;
            avo_audio_free(&clip);
        }
        if (pass == 0) g = acc_rms / sqrt(ss / (double)(2 * frames) + 1e-30);
    }
    for (int64_t i = 0; i < 2 * frames; i++) song->samples[i] *= 0.5f;
}

/* User + system CPU seconds of this process so far: a load-independent companion to wall time. */
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

static double worst(const double *v, int n) {
    double w = INFINITY;
    for (int i = 0; i < n; i++)
        if (v[i] < w) w = v[i];
    return w;
}

static void add_condition(cJSON *arr, const char *set, double var_db, const char *preset, int n, double *vs,
                          double *as, double *vsi, double *asi) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "set", set);
    if (!isnan(var_db)) cJSON_AddNumberToObject(o, "var_db", var_db);
    cJSON_AddStringToObject(o, "preset", preset);
    cJSON_AddNumberToObject(o, "clips", n);
    double w[4] = {worst(vs, n), worst(as, n), worst(vsi, n), worst(asi, n)};
    double m[4] = {bench_median(vs, n), bench_median(as, n), bench_median(vsi, n), bench_median(asi, n)};
    cJSON_AddNumberToObject(o, "vocals_sdr_median", m[0]);
    cJSON_AddNumberToObject(o, "vocals_sdr_worst", w[0]);
    cJSON_AddNumberToObject(o, "accomp_sdr_median", m[1]);
    cJSON_AddNumberToObject(o, "accomp_sdr_worst", w[1]);
    cJSON_AddNumberToObject(o, "vocals_sisdr_median", m[2]);
    cJSON_AddNumberToObject(o, "vocals_sisdr_worst", w[2]);
    cJSON_AddNumberToObject(o, "accomp_sisdr_median", m[3]);
    cJSON_AddNumberToObject(o, "accomp_sisdr_worst", w[3]);
    cJSON_AddItemToArray(arr, o);
    char var[16] = "-";
    if (!isnan(var_db)) snprintf(var, sizeof var, "%+.0f", var_db);
    printf("%-12s %5s %-9s %3d | %7.2f %7.2f | %7.2f %7.2f | %7.2f %7.2f | %7.2f %7.2f\n", set, var, preset, n, m[0],
           w[0], m[1], w[1], m[2], w[2], m[3], w[3]);
    fflush(stdout);
}

/* --memory-child: separates a 10 min song with one preset and prints "base peak seconds" on stdout. */
static int memory_child(avo_preset preset, int threads, int max_clips, int in_place) {
    avo_audio acc_src;
    bench_falcon_accompaniment(&acc_src);
    char names[MAX_CLIPS][128];
    int nclips = list_clips(names);
    if (nclips > max_clips) nclips = max_clips;
    avo_audio song;
    build_song(600.0, &acc_src, names, nclips, &song);
    avo_audio_free(&acc_src);
    /* The caller's buffers alone first (in place: the song and one vocal channel). */
    avo_audio ev, ea;
    const int vch = in_place ? 1 : 2;
    avo_audio_alloc(&ev, 44100, vch, song.frames, NULL);
    memset(ev.samples, 0, sizeof(float) * (size_t)(vch * song.frames));
    memset(&ea, 0, sizeof ea);
    if (!in_place) {
        avo_audio_alloc(&ea, 44100, 2, song.frames, NULL);
        memset(ea.samples, 0, sizeof(float) * (size_t)(2 * song.frames));
    }
    const double base = bench_peak_rss_mb();
    avo_audio_free(&ev);
    avo_audio_free(&ea);
    avo_separator *sep = make_sep(preset, threads);
    const double t0 = avo_now_ms();
    avo_error err;
    if (in_place ? avo_separator_run_in_place(sep, &song, &ev, NULL, NULL, &err)
                 : avo_separator_run(sep, &song, &ev, &ea, NULL, NULL, &err))
        bench_die(&err);
    const double secs = (avo_now_ms() - t0) / 1000.0;
    printf("%.3f %.3f %.3f\n", base, bench_peak_rss_mb(), secs);
    avo_separator_free(sep);
    avo_audio_free(&ev);
    avo_audio_free(&ea);
    avo_audio_free(&song);
    return 0;
}

/* Runs `argv[0] --memory-child` for one preset (with this run's --threads, --clips and --set) and reads
 * its three numbers. Returns 0 or -1. */
static int spawn_memory_child(const char *preset, int threads, int max_clips, int in_place, double r[3]) {
    char th[32], cl[32];
    snprintf(th, sizeof th, "%d", threads);
    snprintf(cl, sizeof cl, "%d", max_clips);
    char *args[9 + 2 * MAX_SETS];
    int na = 0;
    args[na++] = "bench_separation";
    args[na++] = in_place ? "--memory-child-in-place" : "--memory-child";
    args[na++] = (char *)preset;
    args[na++] = "--threads";
    args[na++] = th;
    args[na++] = "--clips";
    args[na++] = cl;
    for (int i = 0; i < g_nsets; i++) {
        args[na++] = "--set";
        args[na++] = (char *)g_sets[i];
    }
    args[na] = NULL;
    int fd[2];
    if (pipe(fd)) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    pid_t pid;
    const int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    if (rc) {
        close(fd[0]);
        fprintf(stderr, "memory: cannot start /proc/self/exe: %s\n", strerror(rc));
        return -1;
    }
    char buf[256] = {0};
    size_t got = 0;
    ssize_t k;
    while (got + 1 < sizeof buf && (k = read(fd[0], buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)k;
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || sscanf(buf, "%lf %lf %lf", &r[0], &r[1], &r[2]) != 3) {
        fprintf(stderr, "memory: child for %s failed (status %d)\n", preset, status);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *out_path = "bench/out/separation_bench.json";
    const char *child_preset = NULL;
    char presets_arg[128] = "fast,balanced,quality", vars_arg[64] = "-6,0,6";
    int threads = 0, do_speed = 1, do_memory = 0, max_clips = MAX_CLIPS, child_in_place = 0, half = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(argv[i], "--presets") && i + 1 < argc) snprintf(presets_arg, sizeof presets_arg, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--vars") && i + 1 < argc) snprintf(vars_arg, sizeof vars_arg, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--clips") && i + 1 < argc) max_clips = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--half") && i + 1 < argc) half = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-speed")) do_speed = 0;
        else if (!strcmp(argv[i], "--memory")) do_memory = 1;
        else if (!strcmp(argv[i], "--memory-child") && i + 1 < argc) child_preset = argv[++i];
        else if (!strcmp(argv[i], "--memory-child-in-place") && i + 1 < argc) child_preset = argv[++i], child_in_place = 1;
        else if (!strcmp(argv[i], "--set") && i + 1 < argc && g_nsets < MAX_SETS) g_sets[g_nsets++] = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--out FILE] [--presets LIST] [--vars LIST] [--threads N] [--clips N] "
                            "[--half 0|1] [--no-speed] [--memory] [--set P=V]\n", argv[0]);
            return 2;
        }
    }
    if (child_preset) {
        avo_preset cp;
        if (avo_preset_parse(child_preset, &cp) != AVO_OK) return 2;
        return memory_child(cp, threads, max_clips, child_in_place);
    }
    avo_preset presets[3];
    int npresets = 0;
    for (char *tok = strtok(presets_arg, ","); tok && npresets < 3; tok = strtok(NULL, ","))
        if (avo_preset_parse(tok, &presets[npresets]) == AVO_OK) npresets++;
    double vars[8];
    int nvars = 0;
    for (char *tok = strtok(vars_arg, ","); tok && nvars < 8; tok = strtok(NULL, ",")) vars[nvars++] = atof(tok);

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "benchmark", "separation");
    cJSON_AddStringToObject(root, "metric", "BSS Eval v4 images SDR (museval), 1 s windows/hops, median over windows; SI-SDR whole clip");
    cJSON *conds = cJSON_AddArrayToObject(root, "conditions");

    avo_audio acc_src, falcon_mix, falcon_voc;
    bench_falcon_accompaniment(&acc_src);
    bench_load("stems/falcon69/mixture.flac", 44100, 2, &falcon_mix);
    bench_load("stems/falcon69/vocals.flac", 44100, 2, &falcon_voc);
    char names[MAX_CLIPS][128];
    int nclips = keep_half(names, list_clips(names), half);
    if (nclips > max_clips) nclips = max_clips;

    printf("%-12s %5s %-9s %3s | %-15s | %-15s | %-15s | %-15s\n", "set", "VAR", "preset", "n", "vocals SDR med/worst",
           "accomp SDR", "vocals SI-SDR", "accomp SI-SDR");
    for (int pi = 0; pi < npresets; pi++) {
        avo_separator *sep = make_sep(presets[pi], threads);
        const char *pname = avo_preset_name(presets[pi]);
        {
            /* falcon69's stems are 6 s long; the mixture is trimmed to them. */
            avo_audio m = falcon_mix, v = falcon_voc, a = acc_src;
            int64_t n = m.frames < v.frames ? m.frames : v.frames;
            if (a.frames < n) n = a.frames;
            avo_audio mm, vv, aa;
            avo_audio_alloc(&mm, 44100, 2, n, NULL);
            avo_audio_alloc(&vv, 44100, 2, n, NULL);
            avo_audio_alloc(&aa, 44100, 2, n, NULL);
            for (int c = 0; c < 2; c++) {
                memcpy(avo_audio_channel(&mm, c), avo_audio_channel(&m, c), sizeof(float) * (size_t)n);
                memcpy(avo_audio_channel(&vv, c), avo_audio_channel(&v, c), sizeof(float) * (size_t)n);
                memcpy(avo_audio_channel(&aa, c), avo_audio_channel(&a, c), sizeof(float) * (size_t)n);
            }
            scores s = evaluate(sep, &mm, &vv, &aa);
            add_condition(conds, "falcon69", NAN, pname, 1, &s.v_sdr, &s.a_sdr, &s.v_si, &s.a_si);
            avo_audio_free(&mm);
            avo_audio_free(&vv);
            avo_audio_free(&aa);
        }
        for (int vi = 0; vi < nvars; vi++) {
            double vs[MAX_CLIPS], as[MAX_CLIPS], vsi[MAX_CLIPS], asi[MAX_CLIPS];
            for (int k = 0; k < nclips; k++) {
                avo_audio clip, mix, voc, acc;
                bench_load(names[k], 44100, 2, &clip);
                construct(&clip, &acc_src, vars[vi], &mix, &voc, &acc);
                scores s = evaluate(sep, &mix, &voc, &acc);
                vs[k] = s.v_sdr;
                as[k] = s.a_sdr;
                vsi[k] = s.v_si;
                asi[k] = s.a_si;
                if (getenv("BENCH_VERBOSE"))
                    fprintf(stderr, "  %s %s %+g dB: vocals %.2f accomp %.2f\n", pname, names[k], vars[vi], s.v_sdr, s.a_sdr);
                avo_audio_free(&clip);
                avo_audio_free(&mix);
                avo_audio_free(&voc);
                avo_audio_free(&acc);
            }
            add_condition(conds, "constructed", vars[vi], pname, nclips, vs, as, vsi, asi);
        }
        avo_separator_free(sep);
    }

    cJSON *speed = cJSON_AddArrayToObject(root, "speed");
    if (do_speed) {
        avo_audio song;
        build_song(30.0, &acc_src, names, nclips, &song);
        printf("\nspeed: 30 s stereo 44.1 kHz song, median of 5 (threads %d)\n", threads);
        for (int pi = 0; pi < npresets; pi++) {
            avo_separator *sep = make_sep(presets[pi], threads);
            double t[5], cpu[5];
            for (int r = 0; r < 5; r++) {
                avo_audio ev, ea;
                const double t0 = avo_now_ms(), c0 = cpu_seconds();
                avo_separator_run(sep, &song, &ev, &ea, NULL, NULL, NULL);
                t[r] = (avo_now_ms() - t0) / 1000.0;
                cpu[r] = cpu_seconds() - c0;
                avo_audio_free(&ev);
                avo_audio_free(&ea);
            }
            const double med = bench_median(t, 5), cmed = bench_median(cpu, 5);
            printf("  %-9s %.3f s  (runs %.3f %.3f %.3f %.3f %.3f; CPU %.3f s)  %s\n", avo_preset_name(presets[pi]), med,
                   t[0], t[1], t[2], t[3], t[4], cmed,
                   med < 1.0 ? "meets < 1 s" : "misses < 1 s");
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "preset", avo_preset_name(presets[pi]));
            cJSON_AddNumberToObject(o, "song_seconds", 30.0);
            cJSON_AddNumberToObject(o, "seconds_median", med);
            cJSON_AddItemToObject(o, "seconds_runs", cJSON_CreateDoubleArray(t, 5));
            cJSON_AddNumberToObject(o, "cpu_seconds_median", cmed);
            cJSON_AddStringToObject(o, "method", avo_separator_method(sep));
            cJSON_AddItemToArray(speed, o);
            avo_separator_free(sep);
        }
        avo_audio_free(&song);
    }

    if (do_memory) {
        /* Each preset and API in a child so its peak RSS is its own. The caller-owned buffers alone
         * (10 min stereo float: 212 MB each) are mixture, vocals and accompaniment through
         * avo_separator_run, the mixture and one vocal channel in place; the separator's own working
         * memory is the difference between the peak with and without the run. */
        cJSON *mem = cJSON_AddArrayToObject(root, "memory");
        printf("\nmemory: 10 min stereo 44.1 kHz song\n");
        for (int pi = 0; pi < 2 * npresets; pi++) {
            const int in_place = pi % 2;
            double r[3] = {0, 0, 0};
            if (spawn_memory_child(avo_preset_name(presets[pi / 2]), threads, max_clips, in_place, r)) continue;
            printf("  %-9s %-22s peak RSS %.0f MB (buffers alone %.0f MB, separator working memory %.0f MB), %.1f s\n",
                   avo_preset_name(presets[pi / 2]), in_place ? "avo_separator_run_in_place" : "avo_separator_run", r[1],
                   r[0], r[1] - r[0], r[2]);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "preset", avo_preset_name(presets[pi / 2]));
            cJSON_AddStringToObject(o, "api", in_place ? "avo_separator_run_in_place" : "avo_separator_run");
            cJSON_AddNumberToObject(o, "song_seconds", 600.0);
            cJSON_AddNumberToObject(o, "peak_rss_mb", r[1]);
            cJSON_AddNumberToObject(o, "buffers_only_rss_mb", r[0]);
            cJSON_AddNumberToObject(o, "separator_working_mb", r[1] - r[0]);
            cJSON_AddNumberToObject(o, "seconds", r[2]);
            cJSON_AddItemToArray(mem, o);
        }
    }

    char *txt = cJSON_Print(root);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", out_path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        char cmd[1100];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
        if (system(cmd)) fprintf(stderr, "cannot create %s\n", dir);
    }
    FILE *f = fopen(out_path, "w");
    if (f) {
        fputs(txt, f);
        fputc('\n', f);
        fclose(f);
        printf("\nwrote %s\n", out_path);
    }
    free(txt);
    cJSON_Delete(root);
    avo_audio_free(&acc_src);
    avo_audio_free(&falcon_mix);
    avo_audio_free(&falcon_voc);
    return 0;
}
