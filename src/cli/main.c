/* autovoice: singing voice conversion from the command line. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void print_help(FILE *out) {
    fprintf(out,
            "autovoice %s - sing a song in another voice\n"
            "\n"
            "usage:\n"
            "  autovoice convert SONG --profile NAME -o OUT [options]   convert a song to a voice\n"
            "  autovoice profile create NAME CLIP... [--force]          make a voice profile from recordings\n"
            "  autovoice profile list | show NAME | delete NAME         manage voice profiles\n"
            "  autovoice eval --output OUT --source SRC --target-clips T1 [T2...] [--transpose N] [--json FILE]\n"
            "                                                       score a conversion: melody, voice, naturalness\n"
            "  autovoice bench [--device cpu|cuda] [--precision fp32|fp16|int8] [--out DIR] [--quick]\n"
            "                                                       measure speed, memory and quality\n"
            "  autovoice report --in DIR -o report.md [--html report.html]   validation report from benchmark JSON\n"
            "  autovoice calibrate --model M --data DIR|FILES -o M.calib [--recalibrate]\n"
            "                                                       INT8 calibration cache of a model from real audio\n"
            "  autovoice --version\n"
            "\n"
            "Run 'autovoice COMMAND --help' for a command's options.\n",
            avo_version());
}

int main(int argc, char **argv) {
    /* OpenMP wait policy and OpenBLAS kernels are read once at start-up (see common.h). */
    avo_runtime_reexec_with_preferred_env(argv);
    if (argc < 2) {
        print_help(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        print_help(stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("autovoice %s\n", avo_version());
        return CLI_OK;
    }
    if (strcmp(cmd, "convert") == 0) return cli_convert(argc - 1, argv + 1);
    if (strcmp(cmd, "profile") == 0) return cli_profile(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0) return cli_report(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0) return cli_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "eval") == 0) return cli_eval(argc - 1, argv + 1);
    if (strcmp(cmd, "calibrate") == 0) return cli_calibrate(argc - 1, argv + 1);
    fprintf(stderr, "autovoice: unknown command '%s' (see 'autovoice --help')\n", cmd);
    return CLI_USAGE;
}
