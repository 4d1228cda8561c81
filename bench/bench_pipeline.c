/* Pipeline benchmark (issue: end-to-end product): per-stage wall time, RTF and peak RSS for a 30 s and
 * a 4 min song, presets fast and balanced, each case in its own child process. The songs and the timing
 * are the bench module's (autovoice/bench.h), the same as `autovoice bench` uses.
 *
 * usage: bench_pipeline [--out FILE.json] [--repeats N] [--threads N] [--quick] */
#include "autovoice/bench.h"
#include "bench_common.h"

#include <errno.h>
#include <sys/stat.h>

/* Creates the folders above path. */
static void mkdirs_for(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(buf, 0755);
        *p = '/';
    }
}

int main(int argc, char **argv) {
    const char *out_path = "bench/out/pipeline.json";
    avo_bench_options opt;
    avo_bench_options_default(&opt);
    opt.log = stdout;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) opt.repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) opt.threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) opt.quick = 1;
        else {
            fprintf(stderr, "usage: %s [--out FILE.json] [--repeats N] [--threads N] [--quick]\n", argv[0]);
            return 2;
        }
    }
    if (opt.repeats < 0 || opt.repeats > AVO_BENCH_MAX_RUNS) opt.repeats = 0;
    const double full[] = {30.0, 240.0}, quick[] = {10.0};
    char *json = NULL;
    avo_error err;
    if (avo_bench_stage_cases(&opt, "pipeline", opt.quick ? quick : full, opt.quick ? 1 : 2, &json, &err)) bench_die(&err);
    mkdirs_for(out_path);
    FILE *f = fopen(out_path, "w");
    if (!f) {
        fprintf(stderr, "bench: cannot write %s: %s\n", out_path, strerror(errno));
        free(json);
        return 1;
    }
    fprintf(f, "%s\n", json);
    fclose(f);
    printf("wrote %s\n", out_path);
    free(json);
    return 0;
}
