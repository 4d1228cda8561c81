/* autovoice report: benchmark JSON in, Markdown (and HTML) report with plots out. */
#include "cli.h"

#include "autovoice/report.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char REPORT_HELP[] =
    "usage: autovoice report --in DIR -o REPORT.md [--html REPORT.html]\n"
    "\n"
    "Reads the benchmark results in DIR (system.json, performance_breakdown.json, latency.json,\n"
    "separation.json, quality.json and the bench/*.json files: f0.json, vocoder.json, pipeline.json)\n"
    "and writes a Markdown report, optionally an HTML page, with plots (SVG, PNG) beside each.\n"
    "Results that are missing are reported as not measured; a malformed file is an error.\n"
    "\n"
    "  -i, --in DIR        benchmark output folder (default bench/out)\n"
    "  -o, --output FILE   the Markdown report\n"
    "      --html FILE     also write an HTML page\n"
    "  -q, --quiet         no summary line\n";

enum { OPT_HTML = 256 };

int cli_report(int argc, char **argv) {
    static const struct option opts[] = {{"in", required_argument, 0, 'i'},   {"output", required_argument, 0, 'o'},
                                         {"html", required_argument, 0, OPT_HTML}, {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *cmd = "report", *in = "bench/out", *md = NULL, *html = NULL;
    int quiet = 0, ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":i:o:qh", opts, NULL)) != -1) {
        switch (ch) {
        case 'i': in = optarg; break;
        case 'o': md = optarg; break;
        case OPT_HTML: html = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(REPORT_HELP, stdout); return CLI_OK;
        case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!md) return cli_usage_error(cmd, "no output file: add -o report.md");
    avo_error err;
    avo_error_clear(&err);
    avo_status st = cli_check_writable(md, &err);
    if (!st && html) st = cli_check_writable(html, &err);
    avo_report *r = NULL;
    if (!st) st = avo_report_create(&r, &err);
    if (!st) st = avo_report_load_dir(r, in, &err);
    if (!st) st = avo_report_write(r, md, html, &err);
    if (!st && !quiet)
        fprintf(stderr, "wrote %s%s%s from %d result file(s) in %s\n", md, html ? " and " : "", html ? html : "",
                avo_report_document_count(r), in);
    avo_report_free(r);
    return st ? cli_fail(&err) : CLI_OK;
}
