/* Helpers shared by benchmarks: building long test songs from ../shared/data, timing, JSON output. */
#ifndef AVO_BENCH_COMMON_H
#define AVO_BENCH_COMMON_H

#include "autovoice/audio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static inline const char *bench_data_dir(void) {
    const char *d = getenv("AVO_TEST_DATA");
    return d && *d ? d : "../shared/data";
}

/* Reads data/<rel>, converted to rate and channel count. Exits on failure (benchmarks need their inputs). */
static inline void bench_load(const char *rel, int rate, int channels, avo_audio *out) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", bench_data_dir(), rel);
    avo_audio raw = {0}, rs = {0};
    avo_error err;
    if (avo_audio_read(path, &raw, &err) || avo_audio_resample(&raw, rate, &rs, &err) ||
        avo_audio_set_channels(&rs, channels, out, &err)) {
        fprintf(stderr, "bench: %s\n", err.message);
        exit(1);
    }
    avo_audio_free(&raw);
    avo_audio_free(&rs);
}

/* Sum of the falcon69 drums, bass and other stems: the accompaniment with no vocals. */
static inline void bench_falcon_accompaniment(avo_audio *out) {
    const char *parts[] = {"stems/falcon69/drums.flac", "stems/falcon69/bass.flac", "stems/falcon69/other.flac"};
    bench_load(parts[0], 44100, 2, out);
    for (int i = 1; i < 3; i++) {
        avo_audio p;
        bench_load(parts[i], 44100, 2, &p);
        int64_t n = p.frames < out->frames ? p.frames : out->frames;
        for (int c = 0; c < 2; c++)
            for (int64_t k = 0; k < n; k++) avo_audio_channel(out, c)[k] += avo_audio_channel(&p, c)[k];
        avo_audio_free(&p);
    }
}

/* Repeats src to exactly frames long; copies overlap by 10 ms with linear crossfades (gains sum to 1). */
static inline void bench_loop_to(const avo_audio *src, int64_t frames, avo_audio *out) {
    avo_audio_alloc(out, src->sample_rate, src->channels, frames, NULL);
    const int64_t fade = src->sample_rate / 100, len = src->frames;
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
}

/* Peak resident set size of this process in MB. */
static inline double bench_peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#endif
