/* Helpers shared by the bench/ programs: thin wrappers over the bench module (autovoice/bench.h) that
 * exit on failure, since a benchmark without its inputs has nothing to measure. */
#ifndef AVO_BENCH_COMMON_H
#define AVO_BENCH_COMMON_H

#include "autovoice/audio.h"
#include "autovoice/bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Every benchmark runs with the environment the CLI gives itself (OpenMP wait policy, OpenBLAS kernels:
 * see avo_runtime_prefer_env), so its numbers are the product's. Runs before main. */
__attribute__((constructor)) static void bench_prefer_runtime_env(int argc, char **argv) {
    (void)argc;
    avo_runtime_reexec_with_preferred_env(argv);
}

static inline const char *bench_data_dir(void) { return avo_bench_data_dir(); }

static inline void bench_die(const avo_error *err) {
    fprintf(stderr, "bench: %s\n", err->message);
    exit(1);
}

/* Reads data/<rel>, converted to rate and channel count. */
static inline void bench_load(const char *rel, int rate, int channels, avo_audio *out) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", bench_data_dir(), rel);
    avo_error err;
    if (avo_bench_load(path, rate, channels, out, &err)) bench_die(&err);
}

/* Sum of the falcon69 drums, bass and other stems: the accompaniment with no vocals. */
static inline void bench_falcon_accompaniment(avo_audio *out) {
    avo_error err;
    if (avo_bench_falcon_accompaniment(NULL, out, &err)) bench_die(&err);
}

/* Repeats src to exactly frames long; copies overlap by 10 ms with linear crossfades (gains sum to 1). */
static inline void bench_loop_to(const avo_audio *src, int64_t frames, avo_audio *out) {
    avo_error err;
    if (avo_bench_loop_to(src, frames, out, &err)) bench_die(&err);
}

/* Peak resident set size of this process in MB. */
static inline double bench_peak_rss_mb(void) { return avo_bench_peak_rss_mb(); }

static inline double bench_median(double *v, int n) { return avo_bench_median(v, n); }

/* Writes a benchmark's JSON document to path, creating the folders above it; returns the exit code
 * for main (0, or 1 with a message). */
static inline int bench_write_json(const char *path, const char *json) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(dir, 0755);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(f, "%s\n", json);
    fclose(f);
    printf("wrote %s\n", path);
    return 0;
}

#endif
