/* autovoice bench: the standard benchmark suite, written as JSON for `autovoice report`. */
#include "cli.h"

#include "autovoice/bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char BENCH_HELP[] =
    "usage: autovoice bench [--device cpu|cuda] [--precision fp32|fp16|int8] [--out DIR] [--quick]\n"
    "                       [--song FILE --profile-clips FILE...] [--data DIR] [--threads N] [--repeats N]\n"
    "\n"
    "Times the pipeline per stage on 30 s and 4 min songs (fast and balanced presets), runs the latency\n"
    "test (30 s song, warm, fast preset; target 3 s on CPU), scores separation on a mixture with known\n"
    "stems, and describes the machine. Songs are built from the shared recordings unless --song is given.\n"
    "Writes performance_breakdown.json, latency.json, separation.json, system.json and excerpts/ to DIR;\n"
    "then run 'autovoice report --in DIR -o report.md'.\n"
    "\n"
    "  --device D           device to ask for: cpu or cuda. This build runs on the CPU only; the\n"
    "                       results record what was asked and what really ran\n"
    "  --precision P        fp32, fp16 or int8, recorded the same way\n"
    "  --out DIR            output folder (default bench/out; created if missing)\n"
    "  --quick              10 s songs, one timed run: a short check, not a measurement\n"
    "  --song FILE          time this song instead of the built ones\n"
    "  --profile-clips F... target voice recordings (default: NUS-48E singer JLEE)\n"
    "  --data DIR           shared recordings (default $AVO_TEST_DATA or ../shared/data)\n"
    "  --threads N          worker threads (default: all cores)\n"
    "  --repeats N          timed runs per short case (default 3, median reported)\n"
    "  -q, --quiet          no progress table\n";

static int one_of(const char *v, const char *const *allowed, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(v, allowed[i]) == 0) return 1;
    return 0;
}

int cli_bench(int argc, char **argv) {
    static const char *const devices[] = {"cpu", "cuda"}, *const precisions[] = {"fp32", "fp16", "int8"};
    const char *cmd = "bench";
    avo_bench_options opt;
    avo_bench_options_default(&opt);
    opt.log = stdout;
    const char **clips = calloc((size_t)(argc > 0 ? argc : 1), sizeof *clips);
    if (!clips) return CLI_FAILED;
    int rc = CLI_OK;
    /* Hand-parsed: --profile-clips takes every following argument up to the next option. */
    for (int i = 1; i < argc && rc == CLI_OK; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes_value = !strcmp(a, "--device") || !strcmp(a, "--precision") || !strcmp(a, "--out") ||
                          !strcmp(a, "--song") || !strcmp(a, "--data") || !strcmp(a, "--threads") || !strcmp(a, "--repeats");
        if (takes_value && !v) {
            rc = cli_usage_error(cmd, "option '%s' needs a value", a);
            break;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(BENCH_HELP, stdout);
            free(clips);
            return CLI_OK;
        } else if (!strcmp(a, "--device")) {
            if (!one_of(v, devices, 2)) rc = cli_usage_error(cmd, "--device must be cpu or cuda, got '%s'", v);
            opt.requested_device = v;
        } else if (!strcmp(a, "--precision")) {
            if (!one_of(v, precisions, 3)) rc = cli_usage_error(cmd, "--precision must be fp32, fp16 or int8, got '%s'", v);
            opt.requested_precision = v;
        } else if (!strcmp(a, "--out")) {
            opt.out_dir = v;
        } else if (!strcmp(a, "--song")) {
            opt.song_path = v;
        } else if (!strcmp(a, "--data")) {
            opt.data_dir = v;
        } else if (!strcmp(a, "--threads")) {
            rc = cli_parse_int(cmd, "--threads", v, 1, 256, &opt.threads);
        } else if (!strcmp(a, "--repeats")) {
            rc = cli_parse_int(cmd, "--repeats", v, 1, AVO_BENCH_MAX_RUNS, &opt.repeats);
        } else if (!strcmp(a, "--quick")) {
            opt.quick = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            opt.log = NULL;
        } else if (!strcmp(a, "--profile-clips")) {
            while (i + 1 < argc && argv[i + 1][0] != '-') clips[opt.clip_count++] = argv[++i];
            if (opt.clip_count == 0) rc = cli_usage_error(cmd, "--profile-clips needs at least one file");
        } else {
            rc = cli_usage_error(cmd, "unknown argument '%s'", a);
        }
        if (takes_value) i++;
    }
    opt.clip_paths = clips;
    avo_error err;
    avo_error_clear(&err);
    avo_status st = AVO_OK;
    /* Unreadable user files fail now, not minutes later inside a timed run. */
    for (int i = -1; rc == CLI_OK && !st && i < opt.clip_count; i++) {
        const char *path = i < 0 ? opt.song_path : opt.clip_paths[i];
        if (path && access(path, R_OK) != 0) st = avo_error_set(&err, AVO_ERR_NOT_FOUND, "%s: cannot read (%s)", path, strerror(errno));
    }
    if (rc == CLI_OK && !st) {
        if (opt.log)
            fprintf(opt.log, "autovoice bench: requested %s/%s, output %s%s\n", opt.requested_device, opt.requested_precision,
                    opt.out_dir, opt.quick ? " (quick)" : "");
        st = avo_bench_run_suite(&opt, &err);
        if (!st && opt.log) fprintf(opt.log, "wrote %s/{system,performance_breakdown,latency,separation,quality}.json\n", opt.out_dir);
    }
    free(clips);
    if (rc) return rc;
    return st ? cli_fail(&err) : CLI_OK;
}
