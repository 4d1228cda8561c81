/* Pipeline benchmark (issue: end-to-end product): per-stage wall time, RTF and peak RSS for a 30 s and
 * a 4 min song, presets fast and balanced, each case in its own child process. The songs and the timing
 * are the bench module's (autovoice/bench.h), the same as `autovoice bench` uses.
 *
 * usage: bench_pipeline [--out FILE.json] [--repeats N] [--threads N] [--quick] */
#include "autovoice/bench.h"
#include "bench_common.h"


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
    const int rc = bench_write_json(out_path, json);
    free(json);
    return rc;
}
