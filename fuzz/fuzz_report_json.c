/* Fuzzes the report's JSON readers (syntax, field checks for every document kind) and, for documents
 * they accept, the renderer and plot makers that trust those checks. The first byte picks the file name
 * (which decides the kind when there is no "benchmark" key); the rest is the document. */
#include "autovoice/report.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *NAMES[] = {"system.json",     "performance_breakdown.json", "pipeline.json", "latency.json",
                              "separation.json", "quality.json",               "f0.json",       "vocoder.json",
                              "calibration.json", "other.json"};

static int contains(const char *text, size_t n, const char *word) {
    size_t w = strlen(word);
    for (size_t i = 0; i + w <= n; i++)
        if (memcmp(text + i, word, w) == 0) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *name = NAMES[data[0] % (sizeof NAMES / sizeof NAMES[0])];
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    avo_report *r = NULL;
    avo_error err;
    if (avo_report_create(&r, &err)) return 0;
    if (avo_report_add_json(r, name, text, n, &err) == AVO_OK) {
        /* Rendering would read excerpt audio named by the input from the current folder: skip those. */
        if (!contains(text, n, "excerpts")) {
            char *md = NULL, *html = NULL;
            if (avo_report_render(r, "f_", &md, &html, &err) == AVO_OK) {
                volatile size_t sink = strlen(md) + strlen(html);
                (void)sink;
            }
            free(md);
            free(html);
        }
    } else if (err.code != AVO_ERR_FORMAT && err.code != AVO_ERR_NO_MEMORY) {
        abort(); /* a rejected document must be a format error */
    }
    avo_report_free(r);
    return 0;
}
