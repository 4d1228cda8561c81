/* Benchmark report: reads the JSON that `autovoice bench` and the bench/ programs write and turns it
 * into a Markdown report (and optionally an HTML page) with plots written beside it.
 *
 * Inputs (any subset; what is missing becomes a "not measured" section, never an error):
 *   system.json                  machine, OS, compiler, build type, library versions
 *   performance_breakdown.json   per-stage timings per song length and preset ("cases" array)
 *   pipeline.json                the same shape, from bench/bench_pipeline
 *   latency.json                 warm latency test: elapsed, RTF, requested vs. actual device/precision,
 *                                optional "f0_series" and "excerpts"
 *   separation.json              separation figures (SDR/SIR/SAR) on a mixture with known truth
 *   quality.json, f0.json, vocoder.json and other *.json with a "benchmark" key: shown as tables
 * A document is recognised by its "benchmark" key, else by its file name.
 *
 * Optional F0 series (latency.json or any document): "f0_series": {"hop_seconds": h, "source_hz": [...],
 * "output_hz": [...]} with 0 for unvoiced frames; drawn as source vs. output F0 over time.
 * Optional excerpts (latency.json): "excerpts": {"source": "a.wav", "target": "b.wav", "output": "c.wav"},
 * paths relative to the input folder; drawn as spectrograms (PNG).
 *
 * Malformed documents (bad syntax, a required field missing or of the wrong type) are rejected with
 * AVO_ERR_FORMAT and a message naming the file and the field. */
#ifndef AUTOVOICE_REPORT_H
#define AUTOVOICE_REPORT_H

#include "autovoice/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avo_report avo_report;

avo_status avo_report_create(avo_report **out, avo_error *err);
void avo_report_free(avo_report *r);

/* Parses and checks one document. name is its file name (for recognition and messages); size bytes of
 * text need not be NUL-terminated. A second document of the same kind replaces the first, except that
 * performance_breakdown.json and pipeline.json are both kept. */
avo_status avo_report_add_json(avo_report *r, const char *name, const char *text, size_t size, avo_error *err);

/* Reads every *.json file directly in dir (sorted by name). Excerpt paths are resolved against dir.
 * A missing or unreadable folder is AVO_ERR_NOT_FOUND / AVO_ERR_IO. */
avo_status avo_report_load_dir(avo_report *r, const char *dir, avo_error *err);

/* Number of documents loaded so far. */
int avo_report_document_count(const avo_report *r);

/* Renders the report into malloc'd strings (either pointer may be NULL to skip that form). Plots are
 * referenced as <plot_prefix>stages.svg, <plot_prefix>f0.svg, <plot_prefix>spec_<name>.png but not
 * written; plot_prefix may be NULL (""). */
avo_status avo_report_render(const avo_report *r, const char *plot_prefix, char **markdown, char **html,
                             avo_error *err);

/* Writes markdown_path, html_path (may be NULL) and the plot files beside each of them: for report.md
 * the plots are report_stages.svg, report_f0.svg, report_spec_source.png, ... Every file is written
 * atomically (temporary file, then rename). */
avo_status avo_report_write(const avo_report *r, const char *markdown_path, const char *html_path, avo_error *err);

/* Loads in_dir and writes the report: the whole `autovoice report` command. */
avo_status avo_report_generate(const char *in_dir, const char *markdown_path, const char *html_path,
                               avo_error *err);

#ifdef __cplusplus
}
#endif
#endif
