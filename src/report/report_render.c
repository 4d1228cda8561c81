/* Report rendering: one pass writes Markdown and HTML side by side, and makes the plots it refers to.
 * Every section exists whether or not its input does: missing input says what was not measured. */
#include "report_internal.h"

#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_PLOTS 12
#define MAX_MISSING 16

typedef struct plot {
    char file[160];
    unsigned char *data;
    size_t size;
} plot;

typedef struct out {
    sbuf md, html;
    const avo_report *r;
    const char *prefix;
    plot plots[MAX_PLOTS];
    int plot_count;
    char missing[MAX_MISSING][160];
    int missing_count;
} out;

/* ---- formatting ---- */

static const char *fmt_num(double v, char *buf, size_t n) {
    double a = fabs(v);
    if (!isfinite(v)) snprintf(buf, n, "n/a");
    else if (a == floor(a) && a < 1e12) snprintf(buf, n, "%.0f", v);
    else if (a >= 100) snprintf(buf, n, "%.1f", v);
    else if (a >= 0.01) snprintf(buf, n, "%.3g", v);
    else snprintf(buf, n, "%.2e", v);
    return buf;
}

static void md_escape(sbuf *b, const char *s) {
    for (; *s; s++) {
        if (*s == '|' || *s == '*' || *s == '_' || *s == '`' || *s == '<' || *s == '[' || *s == ']' || *s == '\\') {
            char e[3] = {'\\', *s, 0};
            sb_put(b, e);
        } else if (*s == '\n' || *s == '\r' || *s == '\t') {
            sb_put(b, " ");
        } else if ((unsigned char)*s >= 32) {
            sb_putn(b, s, 1);
        }
    }
}

static void html_escape(sbuf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': sb_put(b, "&amp;"); break;
        case '<': sb_put(b, "&lt;"); break;
        case '>': sb_put(b, "&gt;"); break;
        case '"': sb_put(b, "&quot;"); break;
        default:
            if ((unsigned char)*s >= 32 || *s == '\n') sb_putn(b, s, 1);
        }
    }
}

/* ---- document building blocks (both forms at once) ---- */

static void o_heading(out *o, int level, const char *text) {
    if (o->md.len >= 2 && !(o->md.data[o->md.len - 1] == '\n' && o->md.data[o->md.len - 2] == '\n')) sb_put(&o->md, "\n");
    sb_printf(&o->md, "%.*s ", level, "######");
    md_escape(&o->md, text);
    sb_put(&o->md, "\n\n");
    sb_printf(&o->html, "<h%d>", level);
    html_escape(&o->html, text);
    sb_printf(&o->html, "</h%d>\n", level);
}

static void o_para(out *o, const char *text) {
    md_escape(&o->md, text);
    sb_put(&o->md, "\n\n");
    sb_put(&o->html, "<p>");
    html_escape(&o->html, text);
    sb_put(&o->html, "</p>\n");
}

/* "Not measured: why." and remembered for the closing list. */
static void o_not_measured(out *o, const char *what, const char *why) {
    sb_put(&o->md, "**Not measured:** ");
    md_escape(&o->md, why);
    sb_put(&o->md, "\n\n");
    sb_put(&o->html, "<p class=\"missing\"><b>Not measured:</b> ");
    html_escape(&o->html, why);
    sb_put(&o->html, "</p>\n");
    if (o->missing_count < MAX_MISSING) {
        snprintf(o->missing[o->missing_count], sizeof o->missing[0], "%s", what);
        o->missing_count++;
    }
}

static void o_table_begin(out *o, int ncols, const char *const *head) {
    sb_put(&o->md, "|");
    sb_put(&o->html, "<table>\n<tr>");
    for (int i = 0; i < ncols; i++) {
        sb_put(&o->md, " ");
        md_escape(&o->md, head[i]);
        sb_put(&o->md, " |");
        sb_put(&o->html, "<th>");
        html_escape(&o->html, head[i]);
        sb_put(&o->html, "</th>");
    }
    sb_put(&o->md, "\n|");
    for (int i = 0; i < ncols; i++) sb_put(&o->md, i == 0 ? "---|" : "---:|");
    sb_put(&o->md, "\n");
    sb_put(&o->html, "</tr>\n");
}

static const char *cell_class(const char *text) {
    if (strncmp(text, "PASS", 4) == 0) return " class=\"pass\"";
    if (strncmp(text, "FAIL", 4) == 0 || strncmp(text, "NOT PASSED", 10) == 0) return " class=\"fail\"";
    if ((text[0] >= '0' && text[0] <= '9') || (text[0] == '-' && text[1] >= '0' && text[1] <= '9')) return " class=\"num\"";
    return "";
}

static void o_row(out *o, int ncols, const char *const *cells) {
    sb_put(&o->md, "|");
    sb_put(&o->html, "<tr>");
    for (int i = 0; i < ncols; i++) {
        const char *c = cells[i] ? cells[i] : "";
        sb_put(&o->md, " ");
        md_escape(&o->md, c);
        sb_put(&o->md, " |");
        sb_printf(&o->html, "<td%s>", cell_class(c));
        html_escape(&o->html, c);
        sb_put(&o->html, "</td>");
    }
    sb_put(&o->md, "\n");
    sb_put(&o->html, "</tr>\n");
}

static void o_table_end(out *o) {
    sb_put(&o->md, "\n");
    sb_put(&o->html, "</table>\n");
}

static void o_kv(out *o, const char *key, const char *value) {
    const char *cells[2] = {key, value};
    o_row(o, 2, cells);
}

/* Keeps a plot and refers to it from both forms. data is taken over. */
static void o_plot(out *o, const char *name, unsigned char *data, size_t size, const char *alt) {
    if (o->plot_count == MAX_PLOTS) {
        free(data);
        return;
    }
    plot *p = &o->plots[o->plot_count++];
    snprintf(p->file, sizeof p->file, "%s%s", o->prefix, name);
    p->data = data;
    p->size = size;
    sb_put(&o->md, "![");
    md_escape(&o->md, alt);
    sb_printf(&o->md, "](%s)\n\n", p->file);
    sb_put(&o->html, "<figure><img src=\"");
    html_escape(&o->html, p->file);
    sb_put(&o->html, "\" alt=\"");
    html_escape(&o->html, alt);
    sb_put(&o->html, "\"><figcaption>");
    html_escape(&o->html, alt);
    sb_put(&o->html, "</figcaption></figure>\n");
}

static void o_plot_svg(out *o, const char *name, sbuf *svg, const char *alt) {
    if (svg->failed) {
        sb_free(svg);
        return;
    }
    size_t size = svg->len;
    o_plot(o, name, (unsigned char *)svg->data, size, alt);
    sb_init(svg);
}

/* ---- JSON access (fields were checked at load) ---- */

static const cJSON *get(const cJSON *obj, const char *key) { return cJSON_GetObjectItemCaseSensitive(obj, key); }

static double num(const cJSON *obj, const char *key, double fallback) {
    const cJSON *v = get(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

static const char *str(const cJSON *obj, const char *key, const char *fallback) {
    const cJSON *v = get(obj, key);
    return cJSON_IsString(v) ? v->valuestring : fallback;
}

static const report_doc *find_doc(const avo_report *r, doc_kind kind) {
    for (int i = 0; i < r->count; i++)
        if (r->docs[i].kind == kind) return &r->docs[i];
    return NULL;
}

/* ---- generic tables for documents without a fixed layout ---- */

static int is_scalar(const cJSON *v) { return cJSON_IsNumber(v) || cJSON_IsString(v) || cJSON_IsBool(v) || cJSON_IsNull(v); }

static const char *scalar_text(const cJSON *v, char *buf, size_t n) {
    if (cJSON_IsNumber(v)) return fmt_num(v->valuedouble, buf, n);
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v) ? "yes" : "no";
    return "n/a";
}

static const char *array_summary(const cJSON *arr, char *buf, size_t n) {
    int count = cJSON_GetArraySize(arr), numbers = 0;
    double lo = INFINITY, hi = -INFINITY;
    buf[0] = 0;
    size_t len = 0;
    for (const cJSON *e = arr->child; e; e = e->next) {
        if (cJSON_IsNumber(e)) {
            numbers++;
            lo = fmin(lo, e->valuedouble);
            hi = fmax(hi, e->valuedouble);
        }
        if (count <= 8 && is_scalar(e) && len + 2 < n) {
            char t[48];
            len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? ", " : "", scalar_text(e, t, sizeof t));
            if (len >= n) len = n - 1;
        }
    }
    if (count > 8 || len == 0) {
        char a[32], b[32];
        if (numbers == count && count > 0)
            snprintf(buf, n, "%d values, %s to %s", count, fmt_num(lo, a, sizeof a), fmt_num(hi, b, sizeof b));
        else snprintf(buf, n, "%d items", count);
    }
    return buf;
}

static const char *value_text(const cJSON *v, char *buf, size_t n) {
    if (is_scalar(v)) return scalar_text(v, buf, n);
    if (cJSON_IsArray(v)) return array_summary(v, buf, n);
    snprintf(buf, n, "(%d fields)", cJSON_GetArraySize(v));
    return buf;
}

static int skip_key(const char *k) {
    return !k || !strcmp(k, "benchmark") || !strcmp(k, "f0_series") || !strcmp(k, "excerpts");
}

#define GEN_MAX_COLS 10

/* Columns of an array of objects: scalar members, and members of nested objects as "a.b". */
static int collect_columns(const cJSON *arr, char cols[GEN_MAX_COLS][64]) {
    int n = 0;
    for (const cJSON *row = arr->child; row; row = row->next) {
        for (const cJSON *m = row->child; m; m = m->next) {
            if (!m->string) continue;
            const cJSON *subs = cJSON_IsObject(m) ? m->child : m;
            for (const cJSON *s = subs; s; s = cJSON_IsObject(m) ? s->next : NULL) {
                char name[64];
                if (cJSON_IsObject(m)) {
                    if (!s->string || !is_scalar(s)) continue;
                    snprintf(name, sizeof name, "%s.%s", m->string, s->string);
                } else {
                    if (!is_scalar(m) && !cJSON_IsArray(m)) break;
                    snprintf(name, sizeof name, "%s", m->string);
                }
                int seen = 0;
                for (int c = 0; c < n && !seen; c++) seen = !strcmp(cols[c], name);
                if (!seen && n < GEN_MAX_COLS) snprintf(cols[n++], 64, "%s", name);
                if (!cJSON_IsObject(m)) break;
            }
        }
    }
    return n;
}

static const cJSON *column_value(const cJSON *row, const char *col) {
    const cJSON *v = get(row, col);
    if (v) return v;
    const char *dot = strchr(col, '.');
    if (!dot) return NULL;
    char head[64];
    snprintf(head, sizeof head, "%.*s", (int)(dot - col), col);
    return get(get(row, head), dot + 1);
}

static void render_object_table(out *o, const cJSON *arr) {
    char cols[GEN_MAX_COLS][64];
    int ncols = collect_columns(arr, cols);
    if (ncols == 0) return;
    const char *head[GEN_MAX_COLS];
    for (int c = 0; c < ncols; c++) head[c] = cols[c];
    o_table_begin(o, ncols, head);
    int rows = 0;
    for (const cJSON *row = arr->child; row && rows < 500; row = row->next, rows++) {
        char bufs[GEN_MAX_COLS][96];
        const char *cells[GEN_MAX_COLS];
        for (int c = 0; c < ncols; c++) {
            const cJSON *v = cJSON_IsObject(row) ? column_value(row, cols[c]) : NULL;
            cells[c] = v ? value_text(v, bufs[c], sizeof bufs[c]) : "";
        }
        o_row(o, ncols, cells);
    }
    o_table_end(o);
}

static int all_objects(const cJSON *arr) {
    if (!arr->child) return 0;
    for (const cJSON *e = arr->child; e; e = e->next)
        if (!cJSON_IsObject(e)) return 0;
    return 1;
}

/* key/value rows for v, nested objects flattened as "a.b.c" (three levels, then summarised). */
static void kv_flatten(out *o, const char *key, const cJSON *v, int depth) {
    if (cJSON_IsObject(v) && depth < 3) {
        for (const cJSON *s = v->child; s; s = s->next) {
            char sub[200];
            snprintf(sub, sizeof sub, "%s.%s", key, s->string ? s->string : "?");
            kv_flatten(o, sub, s, depth + 1);
        }
        return;
    }
    char buf[160];
    o_kv(o, key, value_text(v, buf, sizeof buf));
}

static void render_generic(out *o, const cJSON *doc) {
    int any = 0;
    for (const cJSON *m = doc->child; m; m = m->next) {
        if (skip_key(m->string) || (cJSON_IsArray(m) && all_objects(m))) continue;
        if (!any) {
            const char *head[2] = {"Field", "Value"};
            o_table_begin(o, 2, head);
            any = 1;
        }
        kv_flatten(o, m->string, m, 0);
    }
    if (any) o_table_end(o);
    for (const cJSON *m = doc->child; m; m = m->next) {
        if (skip_key(m->string) || !cJSON_IsArray(m) || !all_objects(m)) continue;
        sb_printf(&o->md, "%s:\n\n", m->string);
        sb_put(&o->html, "<p>");
        html_escape(&o->html, m->string);
        sb_put(&o->html, ":</p>\n");
        render_object_table(o, m);
    }
    if (!doc->child || (!any && !doc->child->next && skip_key(doc->child->string))) o_para(o, "(the file holds no figures)");
}

/* ---- sections ---- */

static void section_system(out *o) {
    o_heading(o, 2, "System and build");
    const report_doc *d = find_doc(o->r, DOC_SYSTEM);
    if (!d) {
        o_not_measured(o, "system and build", "system.json not found (run 'autovoice bench').");
        return;
    }
    const cJSON *j = d->json;
    char buf[64];
    const char *head[2] = {"Item", "Value"};
    o_table_begin(o, 2, head);
    o_kv(o, "CPU", str(j, "cpu_model", "?"));
    o_kv(o, "Cores", fmt_num(num(j, "cores", 0), buf, sizeof buf));
    if (get(j, "memory_mb")) {
        snprintf(buf, sizeof buf, "%.1f GB", num(j, "memory_mb", 0) / 1024.0);
        o_kv(o, "Memory", buf);
    }
    const char *keys[][2] = {{"os", "OS"}, {"compiler", "Compiler"}, {"build_type", "Build type"},
                             {"autovoice_version", "AutoVoice"}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (get(j, keys[i][0])) o_kv(o, keys[i][1], str(j, keys[i][0], ""));
    for (const cJSON *l = get(j, "libraries") ? get(j, "libraries")->child : NULL; l; l = l->next) o_kv(o, l->string, l->valuestring);
    o_table_end(o);
}

static const char *STAGES[4] = {"separation", "f0_extraction", "conversion", "mixing"};

static int perf_doc_count(const avo_report *r) {
    int n = 0;
    for (int i = 0; i < r->count; i++) n += r->docs[i].kind == DOC_PERF;
    return n;
}

static double case_rtf(const cJSON *k) {
    const double total = num(get(k, "stage_timings_ms"), "total", 0), secs = num(k, "audio_duration_seconds", 1);
    return get(k, "rtf") ? num(k, "rtf", 0) : total / 1000.0 / secs;
}

static void case_label(const cJSON *k, char *buf, size_t n) {
    snprintf(buf, n, "%.0f s, %s", num(k, "audio_duration_seconds", 0), str(k, "preset", "?"));
}

static void section_stages(out *o) {
    o_heading(o, 2, "Stage breakdown");
    if (perf_doc_count(o->r) == 0) {
        o_not_measured(o, "stage breakdown", "no performance_breakdown.json or pipeline.json (run 'autovoice bench').");
        return;
    }
    stage_bar bars[64];
    int nbars = 0;
    for (int i = 0; i < o->r->count; i++) {
        const report_doc *d = &o->r->docs[i];
        if (d->kind != DOC_PERF) continue;
        char title[200];
        snprintf(title, sizeof title, "From %s", d->name);
        o_heading(o, 3, title);
        if (get(d->json, "song")) {
            snprintf(title, sizeof title, "Song: %s", str(d->json, "song", ""));
            o_para(o, title);
        }
        const char *head[] = {"Song", "Preset", "Separation ms (%)", "F0 ms (%)", "Conversion ms (%)", "Mixing ms (%)",
                              "Total ms", "RTF", "Peak RSS MB", "Ran on"};
        o_table_begin(o, 10, head);
        int rows = 0;
        for (const cJSON *k = get(d->json, "cases")->child; k; k = k->next, rows++) {
            char b[10][64];
            const char *cells[10];
            if (get(k, "error")) {
                if (get(k, "audio_duration_seconds")) snprintf(b[0], 64, "%.1f s", num(k, "audio_duration_seconds", 0));
                else snprintf(b[0], 64, "?");
                snprintf(b[2], 64, "FAILED: %.50s", str(k, "error", ""));
                const char *fc[10] = {b[0], str(k, "preset", "?"), b[2], "", "", "", "", "", "", ""};
                o_row(o, 10, fc);
                continue;
            }
            const cJSON *t = get(k, "stage_timings_ms");
            const double total = num(t, "total", 0);
            snprintf(b[0], 64, "%.1f s", num(k, "audio_duration_seconds", 0));
            cells[0] = b[0];
            cells[1] = str(k, "preset", "?");
            for (int s = 0; s < 4; s++) {
                double ms = num(t, STAGES[s], 0);
                snprintf(b[2 + s], 64, "%.1f (%.1f%%)", ms, total > 0 ? 100.0 * ms / total : 0.0);
                cells[2 + s] = b[2 + s];
            }
            snprintf(b[6], 64, "%.1f", total);
            cells[6] = b[6];
            snprintf(b[7], 64, "%.4f", case_rtf(k));
            cells[7] = b[7];
            if (get(k, "peak_rss_mb")) snprintf(b[8], 64, "%.1f", num(k, "peak_rss_mb", 0));
            else snprintf(b[8], 64, "not measured");
            cells[8] = b[8];
            snprintf(b[9], 64, "%s %s", str(k, "device", "?"), str(k, "precision", ""));
            cells[9] = b[9];
            o_row(o, 10, cells);
            if (nbars < 64) {
                stage_bar *bar = &bars[nbars++];
                char lab[48];
                case_label(k, lab, sizeof lab);
                if (perf_doc_count(o->r) > 1) snprintf(bar->label, sizeof bar->label, "%.14s: %s", d->name, lab);
                else snprintf(bar->label, sizeof bar->label, "%s", lab);
                for (int s = 0; s < 4; s++) bar->stage_ms[s] = num(t, STAGES[s], 0);
                bar->total_ms = total;
            }
        }
        o_table_end(o);
        if (rows == 0) o_para(o, "(no cases in this file)");
    }
    if (nbars > 0) {
        sbuf svg;
        sb_init(&svg);
        plot_stage_bars_svg(bars, nbars, &svg);
        o_plot_svg(o, "stages.svg", &svg, "Share of run time per stage, per song and preset");
    }
}

static void section_rtf(out *o) {
    o_heading(o, 2, "Real-time factor");
    if (perf_doc_count(o->r) == 0) {
        o_not_measured(o, "real-time factor", "no timed pipeline runs.");
        return;
    }
    o_para(o, "RTF = processing time / audio duration; below 1 is faster than real time.");
    const char *head[] = {"Source", "Song", "Preset", "RTF", "Speed"};
    o_table_begin(o, 5, head);
    for (int i = 0; i < o->r->count; i++) {
        const report_doc *d = &o->r->docs[i];
        if (d->kind != DOC_PERF) continue;
        for (const cJSON *k = get(d->json, "cases")->child; k; k = k->next) {
            if (get(k, "error")) continue;
            char song[32], rtf[32], speed[48];
            snprintf(song, sizeof song, "%.1f s", num(k, "audio_duration_seconds", 0));
            double v = case_rtf(k);
            snprintf(rtf, sizeof rtf, "%.4f", v);
            if (v > 0) snprintf(speed, sizeof speed, "%.1fx real time", 1.0 / v);
            else snprintf(speed, sizeof speed, "n/a");
            const char *cells[] = {d->name, song, str(k, "preset", "?"), rtf, speed};
            o_row(o, 5, cells);
        }
    }
    o_table_end(o);
}

/* The verdict never passes a run that did not use what was asked for. */
static void latency_verdict(const cJSON *j, char *buf, size_t n) {
    const char *dev = str(j, "device", "?"), *prec = str(j, "precision", "?");
    const char *req_dev = str(j, "requested_device", dev), *req_prec = str(j, "requested_precision", prec);
    const double elapsed_s = num(j, "elapsed_ms", 0) / 1000.0;
    char mismatch[160] = "";
    if (strcmp(req_dev, dev) != 0) snprintf(mismatch, sizeof mismatch, "requested %s, ran %s", req_dev, dev);
    if (strcmp(req_prec, prec) != 0) {
        size_t len = strlen(mismatch);
        snprintf(mismatch + len, sizeof mismatch - len, "%srequested %s, ran %s", len ? "; " : "", req_prec, prec);
    }
    if (mismatch[0]) snprintf(buf, n, "NOT PASSED: %s", mismatch);
    else if (!get(j, "target_seconds")) snprintf(buf, n, "no target set");
    else if (elapsed_s <= num(j, "target_seconds", 0))
        snprintf(buf, n, "PASS (%.2f s, target %.2f s)", elapsed_s, num(j, "target_seconds", 0));
    else snprintf(buf, n, "FAIL (%.2f s, over the %.2f s target)", elapsed_s, num(j, "target_seconds", 0));
}

static void section_latency(out *o) {
    o_heading(o, 2, "Latency test");
    const report_doc *d = find_doc(o->r, DOC_LATENCY);
    if (!d) {
        o_not_measured(o, "latency test", "latency.json not found (run 'autovoice bench').");
        return;
    }
    const cJSON *j = d->json;
    if (get(j, "error")) {
        char why[300];
        snprintf(why, sizeof why, "the latency run failed: %s", str(j, "error", ""));
        o_not_measured(o, "latency test", why);
        return;
    }
    char b[12][200];
    const char *head[2] = {"Item", "Value"};
    o_table_begin(o, 2, head);
    snprintf(b[0], 200, "%.1f s, preset %s", num(j, "song_seconds", 0), str(j, "preset", "?"));
    o_kv(o, "Song", b[0]);
    snprintf(b[1], 200, "%s untimed warm-up, %s timed (median)", get(j, "warmup_runs") ? fmt_num(num(j, "warmup_runs", 0), b[10], 32) : "?",
             get(j, "timed_runs") ? fmt_num(num(j, "timed_runs", 0), b[11], 32) : "?");
    o_kv(o, "Runs", b[1]);
    snprintf(b[2], 200, "%.3f s", num(j, "elapsed_ms", 0) / 1000.0);
    o_kv(o, "Elapsed", b[2]);
    snprintf(b[3], 200, "%.4f", num(j, "rtf", 0));
    o_kv(o, "RTF", b[3]);
    snprintf(b[4], 200, "%s / %s", str(j, "requested_device", "(not recorded)"), str(j, "requested_precision", "(not recorded)"));
    o_kv(o, "Requested device / precision", b[4]);
    snprintf(b[5], 200, "%s / %s", str(j, "device", "?"), str(j, "precision", "?"));
    o_kv(o, "Ran on device / precision", b[5]);
    if (get(j, "backend")) o_kv(o, "Back end", str(j, "backend", ""));
    if (get(j, "target_seconds")) snprintf(b[6], 200, "%.2f s", num(j, "target_seconds", 0));
    else snprintf(b[6], 200, "none");
    o_kv(o, "Target", b[6]);
    if (get(j, "peak_rss_mb")) {
        snprintf(b[7], 200, "%.1f MB", num(j, "peak_rss_mb", 0));
        o_kv(o, "Peak RSS", b[7]);
    }
    latency_verdict(j, b[8], 200);
    o_kv(o, "Result", b[8]);
    o_table_end(o);
    const cJSON *claimed = get(j, "target_met");
    if (cJSON_IsTrue(claimed) && strncmp(b[8], "PASS", 4) != 0)
        o_para(o, "Note: latency.json says the target was met; this report does not count it as passed (see Result).");
}

static void section_precision(out *o) {
    o_heading(o, 2, "Precision and calibration");
    const report_doc *lat = find_doc(o->r, DOC_LATENCY);
    int rows = 0;
    const char *head[] = {"Run", "Requested", "Ran"};
    if (lat && !get(lat->json, "error")) {
        o_table_begin(o, 3, head);
        rows++;
        char req[64], ran[64];
        snprintf(req, sizeof req, "%s", str(lat->json, "requested_precision", "(not recorded)"));
        snprintf(ran, sizeof ran, "%s on %s", str(lat->json, "precision", "?"), str(lat->json, "device", "?"));
        const char *cells[] = {"latency test", req, ran};
        o_row(o, 3, cells);
    }
    for (int i = 0; i < o->r->count; i++) {
        const report_doc *d = &o->r->docs[i];
        if (d->kind != DOC_PERF) continue;
        for (const cJSON *k = get(d->json, "cases")->child; k; k = k->next) {
            if (get(k, "error") || !get(k, "precision")) continue;
            if (!rows++) o_table_begin(o, 3, head);
            char lab[64], ran[64];
            case_label(k, lab, sizeof lab);
            snprintf(ran, sizeof ran, "%s on %s", str(k, "precision", "?"), str(k, "device", "?"));
            const char *cells[] = {lab, str(k, "requested_precision", "(not recorded)"), ran};
            o_row(o, 3, cells);
        }
    }
    if (rows) o_table_end(o);
    else o_not_measured(o, "precision", "no run recorded which precision it used.");
    const report_doc *cal = find_doc(o->r, DOC_CALIBRATION);
    if (cal) {
        o_heading(o, 3, "Calibration");
        render_generic(o, cal->json);
    } else {
        o_not_measured(o, "calibration", "no calibration.json: reduced-precision (fp16/int8) calibration was not run.");
    }
}

static void section_generic(out *o, doc_kind kind, const char *title, const char *what, const char *why) {
    o_heading(o, 2, title);
    const report_doc *d = find_doc(o->r, kind);
    if (!d) {
        o_not_measured(o, what, why);
        return;
    }
    char src[200];
    snprintf(src, sizeof src, "From %s.", d->name);
    o_para(o, src);
    render_generic(o, d->json);
}

/* Quality: one row per set of pairs (the summary), then the pairs themselves as a table. */
static void section_quality(out *o) {
    o_heading(o, 2, "Quality");
    const report_doc *d = find_doc(o->r, DOC_QUALITY);
    if (!d) {
        o_not_measured(o, "quality", "quality.json not found (it comes from the quality evaluator).");
        return;
    }
    const cJSON *j = d->json;
    if (get(j, "not_measured") && !get(j, "summary")) {
        o_not_measured(o, "quality", str(j, "not_measured", ""));
        return;
    }
    const cJSON *sum = get(j, "summary");
    if (!cJSON_IsObject(sum)) {
        section_generic(o, DOC_QUALITY, "Quality (raw)", "quality", "");
        return;
    }
    char line[600];
    snprintf(line, sizeof line, "From %s, preset %s, %s. Protocol: %s.", d->name, str(j, "preset", "?"),
             str(j, "scope", "?"), str(j, "protocol", "(not recorded)"));
    o_para(o, line);
    const char *head[] = {"Set", "Pairs", "F0 RMSE (cents, median / worst)", "F0 corr (median / worst)",
                          "Classified as target", "Similarity ratio (median)", "MCD to target dB (source)",
                          "Naturalness dist. dB (source)"};
    o_table_begin(o, 8, head);
    for (const cJSON *k = sum->child; k; k = k->next) {
        char b[7][64];
        if (num(k, "pairs", 0) <= 0) continue;
        snprintf(b[0], 64, "%.0f", num(k, "pairs", 0));
        snprintf(b[1], 64, "%.1f / %.1f", num(k, "f0_rmse_cents_median", NAN), num(k, "f0_rmse_cents_worst", NAN));
        snprintf(b[2], 64, "%.3f / %.3f", num(k, "f0_corr_median", NAN), num(k, "f0_corr_worst", NAN));
        /* the rate is over pairs with a verdict (a held-out source clip exists); say how many */
        double judged = num(k, "classified_pairs", NAN);
        if (isfinite(judged))
            snprintf(b[3], 64, "%.0f%% of %.0f (content-matched: %.0f%%)", 100.0 * num(k, "classified_as_target_rate", NAN),
                     judged, 100.0 * num(k, "classified_as_target_rate_content_matched", NAN));
        else
            snprintf(b[3], 64, "%.0f%%", 100.0 * num(k, "classified_as_target_rate", NAN));
        snprintf(b[4], 64, "%.2f", num(k, "similarity_ratio_median", NAN));
        snprintf(b[5], 64, "%.2f (%.2f)", num(k, "mcd_to_target_db_median", NAN), num(k, "mcd_source_to_target_db_median", NAN));
        snprintf(b[6], 64, "%.2f (%.2f)", num(k, "naturalness_distance_median", NAN),
                 num(k, "naturalness_source_distance_median", NAN));
        const char *cells[8] = {k->string, b[0], b[1], b[2], b[3], b[4], b[5], b[6]};
        o_row(o, 8, cells);
    }
    o_table_end(o);
    const cJSON *pairs = get(j, "pairs");
    if (cJSON_IsArray(pairs) && cJSON_GetArraySize(pairs) > 0) {
        o_para(o, "Pairs:");
        render_object_table(o, pairs);
    }
}

static void section_separation(out *o) {
    o_heading(o, 2, "Separation");
    const report_doc *d = find_doc(o->r, DOC_SEPARATION);
    if (!d) {
        o_not_measured(o, "separation", "separation.json not found.");
        return;
    }
    const cJSON *j = d->json;
    if (get(j, "not_measured") && !get(j, "stems")) {
        o_not_measured(o, "separation", str(j, "not_measured", ""));
        return;
    }
    if (!get(j, "stems")) {
        char src[200];
        snprintf(src, sizeof src, "From %s.", d->name);
        o_para(o, src);
        render_generic(o, j);
        return;
    }
    char line[400];
    snprintf(line, sizeof line, "Mixture: %s. Method: %s. Scored with: %s.", str(j, "mixture", "(not recorded)"),
             str(j, "method", "(not recorded)"), str(j, "sdr_tool", "(not recorded)"));
    o_para(o, line);
    const char *head[] = {"Stem", "SDR dB", "SIR dB", "SAR dB", "SI-SDR dB"};
    const char *keys[] = {"sdr_db", "sir_db", "sar_db", "si_sdr_db"};
    o_table_begin(o, 5, head);
    for (const cJSON *k = get(j, "stems")->child; k; k = k->next) {
        char b[4][32];
        const char *cells[5] = {str(k, "name", "?")};
        for (int c = 0; c < 4; c++) {
            if (get(k, keys[c])) snprintf(b[c], 32, "%.2f", num(k, keys[c], 0));
            else snprintf(b[c], 32, "not measured");
            cells[c + 1] = b[c];
        }
        o_row(o, 5, cells);
    }
    o_table_end(o);
}

static void section_f0_plot(out *o) {
    o_heading(o, 2, "F0 of source vs output");
    f0_series s;
    if (!report_find_f0_series(o->r, &s)) {
        o_not_measured(o, "F0 plot", "no document carries an f0_series.");
        return;
    }
    sbuf svg;
    sb_init(&svg);
    plot_f0_svg(&s, &svg);
    o_plot_svg(o, "f0.svg", &svg, "F0 of the source vocals and of the converted vocals over time");
}

static void sanitize(const char *in, char *out, size_t n) {
    size_t k = 0;
    for (; *in && k + 1 < n; in++) {
        char c = *in;
        out[k++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ? c : '_';
    }
    out[k] = 0;
}

static void section_spectrograms(out *o) {
    o_heading(o, 2, "Spectrograms");
    const report_doc *d = find_doc(o->r, DOC_LATENCY);
    const cJSON *ex = d ? get(d->json, "excerpts") : NULL;
    if (!ex || !ex->child) {
        o_not_measured(o, "spectrograms", "the latency run stored no audio excerpts.");
        return;
    }
    o_para(o, "0 to 8 kHz (linear), 80 dB range; brighter is louder.");
    int drawn = 0;
    for (const cJSON *e = ex->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !e->string) continue;
        char path[4096], name[96], alt[200];
        snprintf(path, sizeof path, "%s/%s", o->r->dir ? o->r->dir : ".", e->valuestring);
        sanitize(e->string, name, 64);
        avo_error err;
        unsigned char *png = NULL;
        size_t size = 0;
        if (plot_spectrogram_png(path, &png, &size, &err) != AVO_OK) {
            snprintf(alt, sizeof alt, "%s excerpt: not drawn (%.120s)", e->string, err.message);
            o_para(o, alt);
            continue;
        }
        char file[120];
        snprintf(file, sizeof file, "spec_%s.png", name);
        snprintf(alt, sizeof alt, "Spectrogram of the %s excerpt (%.80s)", e->string, e->valuestring);
        o_plot(o, file, png, size, alt);
        drawn++;
    }
    if (!drawn) o_not_measured(o, "spectrograms", "no excerpt could be read.");
}

static void section_others(out *o) {
    int any = 0;
    for (int i = 0; i < o->r->count; i++) {
        const report_doc *d = &o->r->docs[i];
        if (d->kind != DOC_OTHER) continue;
        if (!any++) o_heading(o, 2, "Other benchmarks");
        char title[200];
        snprintf(title, sizeof title, "%s (%s)", str(d->json, "benchmark", d->name), d->name);
        o_heading(o, 3, title);
        render_generic(o, d->json);
    }
}

static const char HTML_HEAD[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>AutoVoice benchmark report</title>\n"
    "<style>\nbody{font-family:'DejaVu Sans',Arial,sans-serif;max-width:1100px;margin:24px auto;padding:0 16px;color:#222;}\n"
    "h1{border-bottom:2px solid #4c78a8;padding-bottom:6px;}h2{margin-top:32px;border-bottom:1px solid #ccc;}\n"
    "table{border-collapse:collapse;margin:8px 0 16px;}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;}\n"
    "th{background:#f0f3f8;}td.num{text-align:right;white-space:nowrap;}\n"
    ".pass{color:#1a7f37;font-weight:bold;}.fail{color:#c62828;font-weight:bold;}.missing{color:#8a6d3b;}\n"
    "figure{margin:12px 0;}img{max-width:100%;border:1px solid #ddd;}figcaption{font-size:90%;color:#555;}\n"
    "</style>\n</head>\n<body>\n";

static void render_all(const avo_report *r, out *o) {
    sb_put(&o->html, HTML_HEAD);
    sb_put(&o->md, "# AutoVoice benchmark report\n\n");
    sb_put(&o->html, "<h1>AutoVoice benchmark report</h1>\n");
    char line[1200];
    size_t len = (size_t)snprintf(line, sizeof line, "Report by autovoice %s from %s: ", avo_version(), r->dir ? r->dir : "(memory)");
    int shown = 0;
    for (int i = 0; i < r->count && len < sizeof line - 100; i++) {
        if (r->docs[i].kind == DOC_IGNORED) continue;
        len += (size_t)snprintf(line + len, sizeof line - len, "%s%s", shown++ ? ", " : "", r->docs[i].name);
    }
    if (!shown) snprintf(line + len, sizeof line - len, "no benchmark results found.");
    o_para(o, line);
    section_system(o);
    section_stages(o);
    section_rtf(o);
    section_latency(o);
    section_precision(o);
    section_quality(o);
    section_separation(o);
    section_generic(o, DOC_F0, "F0 estimation", "F0 estimation", "f0.json not found (run bench/bench_f0).");
    section_generic(o, DOC_VOCODER, "Vocoder", "vocoder", "vocoder.json not found (run bench/bench_vocoder).");
    section_generic(o, DOC_NEURAL, "Neural engine (CPU, against PyTorch)", "neural engine",
                    "neural.json not found (run bench/bench_neural --make).");
    section_f0_plot(o);
    section_spectrograms(o);
    section_others(o);
    o_heading(o, 2, "Not measured");
    if (o->missing_count == 0) o_para(o, "Everything this report covers was measured.");
    else {
        sb_put(&o->html, "<ul>\n");
        for (int i = 0; i < o->missing_count; i++) {
            sb_put(&o->md, "- ");
            md_escape(&o->md, o->missing[i]);
            sb_put(&o->md, "\n");
            sb_put(&o->html, "<li>");
            html_escape(&o->html, o->missing[i]);
            sb_put(&o->html, "</li>\n");
        }
        sb_put(&o->md, "\n");
        sb_put(&o->html, "</ul>\n");
    }
    for (int i = 0; i < r->count; i++)
        if (r->docs[i].kind == DOC_IGNORED) {
            snprintf(line, sizeof line, "Ignored %s: no \"benchmark\" key and not a known file name.", r->docs[i].name);
            o_para(o, line);
        }
    sb_put(&o->html, "</body>\n</html>\n");
}

static void out_free(out *o) {
    sb_free(&o->md);
    sb_free(&o->html);
    for (int i = 0; i < o->plot_count; i++) free(o->plots[i].data);
}

static avo_status render(const avo_report *r, const char *prefix, out *o, avo_error *err) {
    memset(o, 0, sizeof *o);
    o->r = r;
    o->prefix = prefix ? prefix : "";
    render_all(r, o);
    if (o->md.failed || o->html.failed) {
        out_free(o);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory while rendering the report");
    }
    return AVO_OK;
}

avo_status avo_report_render(const avo_report *r, const char *plot_prefix, char **markdown, char **html,
                             avo_error *err) {
    if (!r) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_report_render: no report");
    out o;
    avo_status st = render(r, plot_prefix, &o, err);
    if (st) return st;
    if (markdown) {
        *markdown = o.md.data;
        sb_init(&o.md);
    }
    if (html) {
        *html = o.html.data;
        sb_init(&o.html);
    }
    out_free(&o);
    return AVO_OK;
}

/* Folder part of path, or "." */
static void dir_of(const char *path, char *buf, size_t n) {
    char *copy = strdup(path);
    snprintf(buf, n, "%s", copy ? dirname(copy) : ".");
    free(copy);
}

static avo_status write_plots(const out *o, const char *dir, avo_error *err) {
    for (int i = 0; i < o->plot_count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, o->plots[i].file);
        avo_status st = report_write_file(path, o->plots[i].data, o->plots[i].size, err);
        if (st) return st;
    }
    return AVO_OK;
}

avo_status avo_report_write(const avo_report *r, const char *markdown_path, const char *html_path, avo_error *err) {
    if (!r || !markdown_path) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_report_write: no output path");
    /* Plot names start with the report's own name so two reports can share a folder. */
    char prefix[160], md_dir[4096], html_dir[4096];
    const char *base = strrchr(markdown_path, '/');
    base = base ? base + 1 : markdown_path;
    const char *dot = strrchr(base, '.');
    char stem[128];
    snprintf(stem, sizeof stem, "%.*s", (int)(dot && dot != base ? dot - base : (long)strlen(base)), base);
    snprintf(prefix, sizeof prefix, "%s_", stem);
    out o;
    avo_status st = render(r, prefix, &o, err);
    if (st) return st;
    dir_of(markdown_path, md_dir, sizeof md_dir);
    st = write_plots(&o, md_dir, err);
    if (!st && html_path) {
        dir_of(html_path, html_dir, sizeof html_dir);
        if (strcmp(html_dir, md_dir) != 0) st = write_plots(&o, html_dir, err);
    }
    if (!st) st = report_write_file(markdown_path, o.md.data, o.md.len, err);
    if (!st && html_path) st = report_write_file(html_path, o.html.data, o.html.len, err);
    out_free(&o);
    return st;
}

avo_status avo_report_generate(const char *in_dir, const char *markdown_path, const char *html_path,
                               avo_error *err) {
    avo_report *r = NULL;
    avo_status st = avo_report_create(&r, err);
    if (!st) st = avo_report_load_dir(r, in_dir, err);
    if (!st) st = avo_report_write(r, markdown_path, html_path, err);
    avo_report_free(r);
    return st;
}
