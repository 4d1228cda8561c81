/* Private pieces of the report module: the loaded documents, a growable string, plot writers. */
#ifndef AVO_REPORT_INTERNAL_H
#define AVO_REPORT_INTERNAL_H

#include "autovoice/report.h"

#include <cjson/cJSON.h>
#include <stdarg.h>

typedef enum doc_kind {
    DOC_SYSTEM = 0,
    DOC_PERF,        /* performance_breakdown.json, pipeline.json */
    DOC_LATENCY,
    DOC_SEPARATION,
    DOC_QUALITY,
    DOC_F0,
    DOC_VOCODER,
    DOC_CALIBRATION,
    DOC_NEURAL,      /* neural.json: the neural engine's components against PyTorch */
    DOC_OTHER,       /* has a "benchmark" key this report does not know: shown as tables */
    DOC_IGNORED      /* no "benchmark" key and an unknown file name: listed, not shown */
} doc_kind;

#define REPORT_MAX_DOCS 64

typedef struct report_doc {
    doc_kind kind;
    char name[128];   /* file name */
    cJSON *json;      /* NULL for DOC_IGNORED */
} report_doc;

struct avo_report {
    char *dir;        /* input folder, for excerpt paths; NULL = current folder */
    int count;
    report_doc docs[REPORT_MAX_DOCS];
};

/* Growable NUL-terminated string; on allocation failure `failed` is set and appends do nothing. */
typedef struct sbuf {
    char *data;
    size_t len, cap;
    int failed;
} sbuf;

void sb_init(sbuf *b);
void sb_free(sbuf *b);
void sb_put(sbuf *b, const char *s);
void sb_putn(sbuf *b, const char *s, size_t n);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes size bytes to path through a temporary file and a rename. */
avo_status report_write_file(const char *path, const void *data, size_t size, avo_error *err);

/* F0 series checked at load: hop_seconds > 0, arrays of finite numbers >= 0. */
typedef struct f0_series {
    double hop;
    const cJSON *source, *output;  /* arrays; output may be NULL */
} f0_series;

int report_find_f0_series(const avo_report *r, f0_series *out);

/* Stage bar chart: one 100%-stacked bar per case, labelled, with the total at the right. */
typedef struct stage_bar {
    char label[64];
    double stage_ms[4];
    double total_ms;
} stage_bar;

void plot_stage_bars_svg(const stage_bar *bars, int count, sbuf *svg);
void plot_f0_svg(const f0_series *s, sbuf *svg);

/* Spectrogram of an audio file (first channel mix, up to 8 kHz) as an RGB PNG in *png (malloc'd). */
avo_status plot_spectrogram_png(const char *audio_path, unsigned char **png, size_t *size, avo_error *err);

/* Minimal PNG encoder (stored deflate blocks): rgb is width*height*3 bytes, row-major. */
avo_status png_encode_rgb(const unsigned char *rgb, int width, int height, unsigned char **png, size_t *size,
                          avo_error *err);

#endif
