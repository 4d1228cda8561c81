/* Running medians at the separator's shapes (src/dsp/median_filter.c): the selection network against
 * one selection per output (the scalar path), same data, same process, interleaved, medians of --repeats.
 * A 30 s stereo song at the separator's 93 ms windows and 23 ms hop is about 1300 frames x 2049 bins
 * per channel; HPSS takes a 25-bin median along frequency and a 9-frame median along time.
 *
 * usage: bench_median_filter [--frames N] [--repeats N] [--threads N] [--out PATH]
 *        (default bench/out/median_filter.json) */
#include "bench_common.h"
#include "dsp/median_filter.h"

#include <time.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

int main(int argc, char **argv) {
    int64_t rows = 2600; /* both channels of a 30 s song */
    int repeats = 7, threads = 2;
    const char *out_path = "bench/out/median_filter.json";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--frames") && i + 1 < argc) rows = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
        else {
            fprintf(stderr, "usage: bench_median_filter [--frames N] [--repeats N] [--threads N] [--out PATH]\n");
            return 2;
        }
    }
    if (repeats < 1) repeats = 1;
    if (repeats > 64) repeats = 64;
    const int cols = 2049;
    float *x = malloc(sizeof(float) * (size_t)(rows * cols)), *y = malloc(sizeof(float) * (size_t)(rows * cols));
    if (!x || !y) return 1;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int64_t i = 0; i < rows * cols; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = (float)(s >> 40) / 16777216.0f;
    }
    const char *names[2] = {"25 bins along frequency", "9 frames along time"};
    const int lens[2] = {25, 9};
    double ms[2][2]; /* [filter][network, scalar] */
    for (int f = 0; f < 2; f++) {
        double t[2][64];
        for (int r = 0; r < repeats; r++)
            for (int p = 0; p < 2; p++) {
                const dsp_median_path path = p ? DSP_MEDIAN_SCALAR : DSP_MEDIAN_AUTO;
                const double t0 = now_ms();
                if (f == 0) dsp_median_along_rows(x, rows, cols, lens[f], threads, path, y);
                else dsp_median_along_cols(x, rows, cols, lens[f], threads, path, y);
                t[p][r] = now_ms() - t0;
            }
        ms[f][0] = bench_median(t[0], repeats);
        ms[f][1] = bench_median(t[1], repeats);
    }
    printf("running medians, %lld x %d, %d threads, medians of %d (network path %s)\n", (long long)rows, cols,
           threads, repeats, dsp_median_network_available() ? "available" : "not available: both columns scalar");
    printf("%-26s %12s %12s %9s\n", "filter", "network ms", "scalar ms", "speed-up");
    char json[2048];
    int len = snprintf(json, sizeof json,
                       "{\"benchmark\": \"median_filter\", \"rows\": %lld, \"cols\": %d, \"threads\": %d, "
                       "\"repeats\": %d, \"network_available\": %s, \"filters\": [",
                       (long long)rows, cols, threads, repeats, dsp_median_network_available() ? "true" : "false");
    for (int f = 0; f < 2; f++) {
        printf("%-26s %12.1f %12.1f %8.1fx\n", names[f], ms[f][0], ms[f][1], ms[f][1] / ms[f][0]);
        len += snprintf(json + len, sizeof json - (size_t)len,
                        "%s{\"name\": \"%s\", \"len\": %d, \"network_ms\": %.3f, \"scalar_ms\": %.3f}", f ? ", " : "",
                        names[f], lens[f], ms[f][0], ms[f][1]);
    }
    snprintf(json + len, sizeof json - (size_t)len, "]}\n");
    const int rc = bench_write_json(out_path, json);
    free(x), free(y);
    return rc;
}
