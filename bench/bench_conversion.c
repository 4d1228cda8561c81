/* Conversion quality benchmark over every ordered pair of NUS-48E singers plus speech profiles (see
 * src/report/bench_quality.c for the protocol). Prints a table and writes quality.json.
 *
 * usage: bench_conversion [--out FILE.json] [--preset fast|balanced|quality] [--protect P] [--quick] */
#include "autovoice/bench.h"
#include "bench_common.h"

int main(int argc, char **argv) {
    const char *out_path = "bench/out/quality.json";
    avo_bench_quality_options opt;
    avo_bench_quality_options_default(&opt);
    opt.data_dir = bench_data_dir();
    opt.scope = AVO_QUALITY_ALL;
    opt.log = stdout;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(argv[i], "--preset") && i + 1 < argc) avo_preset_parse(argv[++i], &opt.preset);
        else if (!strcmp(argv[i], "--protect") && i + 1 < argc) opt.protect = atof(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) opt.scope = AVO_QUALITY_STANDARD;
        else {
            fprintf(stderr, "usage: %s [--out FILE.json] [--preset P] [--protect P] [--quick]\n", argv[0]);
            return 2;
        }
    }
    char *json = NULL;
    avo_error err;
    if (avo_bench_quality(&opt, &json, &err)) {
        fprintf(stderr, "bench_conversion: %s\n", err.message);
        return 1;
    }
    const int rc = bench_write_json(out_path, json);
    free(json);
    return rc;
}
