/* Report inputs: reading benchmark JSON and checking every field the report uses, so that a bad file
 * is rejected once, here, with its name and the field, and rendering can trust what it reads. */
#include "report_internal.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- growable string ---- */

void sb_init(sbuf *b) { memset(b, 0, sizeof *b); }

void sb_free(sbuf *b) {
    free(b->data);
    sb_init(b);
}

static int sb_reserve(sbuf *b, size_t extra) {
    if (b->failed) return 0;
    if (b->len + extra + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return 0;
    }
    b->data = p;
    b->cap = cap;
    return 1;
}

void sb_putn(sbuf *b, const char *s, size_t n) {
    if (!sb_reserve(b, n)) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void sb_put(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

void sb_printf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !sb_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

avo_status report_write_file(const char *path, const void *data, size_t size, avo_error *err) {
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (!tmp) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    snprintf(tmp, len + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        avo_status st = avo_error_set(err, AVO_ERR_IO, "%s: cannot write (%s); check that the folder exists and is writable",
                                      path, strerror(errno));
        free(tmp);
        return st;
    }
    avo_status st = AVO_OK;
    const char *p = data;
    size_t left = size;
    while (left > 0 && !st) {
        ssize_t w = write(fd, p, left);
        if (w <= 0) st = avo_error_set(err, AVO_ERR_IO, "%s: write failed (%s)", path, strerror(errno));
        else {
            p += w;
            left -= (size_t)w;
        }
    }
    /* Readable like any file the user creates (mkstemp makes it 0600). */
    if (!st && fchmod(fd, 0644) != 0) st = avo_error_set(err, AVO_ERR_IO, "%s: chmod failed (%s)", path, strerror(errno));
    if (close(fd) != 0 && !st) st = avo_error_set(err, AVO_ERR_IO, "%s: write failed (%s)", path, strerror(errno));
    if (!st && rename(tmp, path) != 0)
        st = avo_error_set(err, AVO_ERR_IO, "%s: cannot move into place (%s)", path, strerror(errno));
    if (st) unlink(tmp);
    free(tmp);
    return st;
}

/* ---- the report object ---- */

avo_status avo_report_create(avo_report **out, avo_error *err) {
    *out = calloc(1, sizeof **out);
    return *out ? AVO_OK : avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
}

void avo_report_free(avo_report *r) {
    if (!r) return;
    for (int i = 0; i < r->count; i++) cJSON_Delete(r->docs[i].json);
    free(r->dir);
    free(r);
}

int avo_report_document_count(const avo_report *r) {
    int n = 0;
    for (int i = 0; i < r->count; i++) n += r->docs[i].kind != DOC_IGNORED;
    return n;
}

/* ---- field checks ---- */

typedef struct checker {
    const char *file;
    avo_error *err;
} checker;

static const char *type_name(const cJSON *v) {
    if (!v) return "missing";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsArray(v)) return "an array";
    return "an object";
}

static avo_status bad_field(checker *c, const char *path, const char *key, const cJSON *v, const char *expected) {
    return avo_error_set(c->err, AVO_ERR_FORMAT, "%s: field '%s%s%s' is %s; expected %s (re-run the benchmark or fix the file)",
                         c->file, path, *path ? "." : "", key, v ? type_name(v) : "missing", expected);
}

/* A number in [lo, hi]; absent is fine when !required. */
static avo_status check_num(checker *c, const cJSON *obj, const char *path, const char *key, int required, double lo,
                            double hi) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v && !required) return AVO_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return bad_field(c, path, key, v, "a finite number");
    if (v->valuedouble < lo || v->valuedouble > hi) {
        char what[96];
        snprintf(what, sizeof what, "a number from %g to %g, not %g", lo, hi, v->valuedouble);
        return bad_field(c, path, key, v, what);
    }
    return AVO_OK;
}

static avo_status check_str(checker *c, const cJSON *obj, const char *path, const char *key, int required) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v && !required) return AVO_OK;
    return cJSON_IsString(v) ? AVO_OK : bad_field(c, path, key, v, "a string");
}

static avo_status check_bool(checker *c, const cJSON *obj, const char *path, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return !v || cJSON_IsBool(v) ? AVO_OK : bad_field(c, path, key, v, "true or false");
}

/* An array of finite numbers >= lo. */
static avo_status check_num_array(checker *c, const cJSON *obj, const char *path, const char *key, int required,
                                  double lo) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v && !required) return AVO_OK;
    if (!cJSON_IsArray(v)) return bad_field(c, path, key, v, "an array of numbers");
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble) || e->valuedouble < lo) {
            char k[96];
            snprintf(k, sizeof k, "%s[%d]", key, i);
            char what[64];
            snprintf(what, sizeof what, "a finite number >= %g", lo);
            return bad_field(c, path, k, e, what);
        }
    }
    return AVO_OK;
}

static avo_status check_f0_series(checker *c, const cJSON *doc) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(doc, "f0_series");
    if (!s) return AVO_OK;
    if (!cJSON_IsObject(s)) return bad_field(c, "", "f0_series", s, "an object {hop_seconds, source_hz, output_hz}");
    avo_status st = check_num(c, s, "f0_series", "hop_seconds", 1, 1e-5, 10.0);
    if (!st) st = check_num_array(c, s, "f0_series", "source_hz", 1, 0.0);
    if (!st) st = check_num_array(c, s, "f0_series", "output_hz", 0, 0.0);
    return st;
}

static avo_status check_system(checker *c, const cJSON *d) {
    avo_status st = check_str(c, d, "", "cpu_model", 1);
    if (!st) st = check_num(c, d, "", "cores", 1, 1, 1e6);
    if (!st) st = check_num(c, d, "", "memory_mb", 0, 0, 1e12);
    const char *strs[] = {"os", "compiler", "build_type", "autovoice_version"};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0] && !st; i++) st = check_str(c, d, "", strs[i], 0);
    const cJSON *libs = cJSON_GetObjectItemCaseSensitive(d, "libraries");
    if (!st && libs) {
        if (!cJSON_IsObject(libs)) return bad_field(c, "", "libraries", libs, "an object of name: version strings");
        for (const cJSON *e = libs->child; e && !st; e = e->next)
            if (!cJSON_IsString(e)) st = bad_field(c, "libraries", e->string ? e->string : "?", e, "a string");
    }
    return st;
}

static avo_status check_perf_case(checker *c, const cJSON *k, const char *path) {
    if (!cJSON_IsObject(k)) return avo_error_set(c->err, AVO_ERR_FORMAT, "%s: field '%s' is %s; expected an object",
                                                 c->file, path, type_name(k));
    if (cJSON_GetObjectItemCaseSensitive(k, "error")) return check_str(c, k, path, "error", 1);
    avo_status st = check_num(c, k, path, "audio_duration_seconds", 1, 1e-3, 1e7);
    if (!st) st = check_str(c, k, path, "preset", 1);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(k, "stage_timings_ms");
    if (!st && !cJSON_IsObject(t)) st = bad_field(c, path, "stage_timings_ms", t, "an object of stage: milliseconds");
    char tpath[96];
    snprintf(tpath, sizeof tpath, "%s.stage_timings_ms", path);
    const char *stages[] = {"separation", "f0_extraction", "conversion", "mixing", "total"};
    for (size_t i = 0; i < 5 && !st; i++) st = check_num(c, t, tpath, stages[i], 1, 0, 1e12);
    if (!st) st = check_num(c, k, path, "rtf", 0, 0, 1e9);
    if (!st) st = check_num(c, k, path, "peak_rss_mb", 0, 0, 1e9);
    if (!st) st = check_num(c, k, path, "repeats", 0, 0, 1e6);
    if (!st) st = check_str(c, k, path, "device", 0);
    if (!st) st = check_str(c, k, path, "precision", 0);
    return st;
}

static avo_status check_perf(checker *c, const cJSON *d) {
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(d, "cases");
    if (!cJSON_IsArray(cases)) return bad_field(c, "", "cases", cases, "an array of timed cases");
    int i = 0;
    for (const cJSON *k = cases->child; k; k = k->next, i++) {
        char path[32];
        snprintf(path, sizeof path, "cases[%d]", i);
        avo_status st = check_perf_case(c, k, path);
        if (st) return st;
    }
    return AVO_OK;
}

static avo_status check_latency(checker *c, const cJSON *d) {
    if (cJSON_GetObjectItemCaseSensitive(d, "error")) return check_str(c, d, "", "error", 1);
    avo_status st = check_num(c, d, "", "song_seconds", 1, 1e-3, 1e7);
    if (!st) st = check_str(c, d, "", "preset", 1);
    if (!st) st = check_num(c, d, "", "elapsed_ms", 1, 0, 1e12);
    if (!st) st = check_num(c, d, "", "rtf", 1, 0, 1e9);
    if (!st) st = check_str(c, d, "", "device", 1);
    if (!st) st = check_str(c, d, "", "precision", 1);
    if (!st) st = check_str(c, d, "", "requested_device", 0);
    if (!st) st = check_str(c, d, "", "requested_precision", 0);
    if (!st) st = check_num(c, d, "", "target_seconds", 0, 0, 1e9);
    if (!st) st = check_bool(c, d, "", "target_met");
    if (!st) st = check_num(c, d, "", "warmup_runs", 0, 0, 1e6);
    if (!st) st = check_num(c, d, "", "timed_runs", 0, 0, 1e6);
    if (!st) st = check_num(c, d, "", "peak_rss_mb", 0, 0, 1e9);
    if (!st) st = check_num_array(c, d, "", "elapsed_ms_runs", 0, 0);
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(d, "excerpts");
    if (!st && ex) {
        if (!cJSON_IsObject(ex)) return bad_field(c, "", "excerpts", ex, "an object of name: audio file");
        for (const cJSON *e = ex->child; e && !st; e = e->next) {
            if (!cJSON_IsString(e) && !cJSON_IsNumber(e)) st = bad_field(c, "excerpts", e->string ? e->string : "?", e, "a file name");
            else if (cJSON_IsString(e) && (strstr(e->valuestring, "..") || e->valuestring[0] == '/'))
                st = avo_error_set(c->err, AVO_ERR_FORMAT, "%s: field 'excerpts.%s' must be a path inside the input folder, not '%s'",
                                   c->file, e->string ? e->string : "?", e->valuestring);
        }
    }
    return st;
}

static avo_status check_separation(checker *c, const cJSON *d) {
    avo_status st = check_str(c, d, "", "not_measured", 0);
    const cJSON *stems = cJSON_GetObjectItemCaseSensitive(d, "stems");
    if (st || !stems) return st;
    if (!cJSON_IsArray(stems)) return bad_field(c, "", "stems", stems, "an array of {name, sdr_db, ...}");
    int i = 0;
    for (const cJSON *k = stems->child; k && !st; k = k->next, i++) {
        char path[32];
        snprintf(path, sizeof path, "stems[%d]", i);
        if (!cJSON_IsObject(k))
            return avo_error_set(c->err, AVO_ERR_FORMAT, "%s: field '%s' is %s; expected an object", c->file, path, type_name(k));
        st = check_str(c, k, path, "name", 1);
        if (!st) st = check_num(c, k, path, "sdr_db", 1, -1e4, 1e4);
        if (!st) st = check_num(c, k, path, "sir_db", 0, -1e4, 1e4);
        if (!st) st = check_num(c, k, path, "sar_db", 0, -1e4, 1e4);
        if (!st) st = check_num(c, k, path, "si_sdr_db", 0, -1e4, 1e4);
    }
    return st;
}

/* ---- recognising documents ---- */

static const struct {
    const char *name;
    doc_kind kind;
} KINDS[] = {{"system", DOC_SYSTEM},         {"performance_breakdown", DOC_PERF}, {"pipeline", DOC_PERF},
             {"latency", DOC_LATENCY},       {"separation", DOC_SEPARATION},     {"quality", DOC_QUALITY},
             {"f0", DOC_F0},                 {"vocoder", DOC_VOCODER},           {"calibration", DOC_CALIBRATION},
             {"neural", DOC_NEURAL}};

static int kind_by_name(const char *name, size_t len, doc_kind *out) {
    for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++)
        if (strlen(KINDS[i].name) == len && strncmp(KINDS[i].name, name, len) == 0) {
            *out = KINDS[i].kind;
            return 1;
        }
    return 0;
}

static doc_kind recognise(const cJSON *doc, const char *base) {
    doc_kind k;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(doc, "benchmark");
    if (cJSON_IsString(b)) return kind_by_name(b->valuestring, strlen(b->valuestring), &k) ? k : DOC_OTHER;
    const char *dot = strrchr(base, '.');
    size_t len = dot ? (size_t)(dot - base) : strlen(base);
    return kind_by_name(base, len, &k) ? k : DOC_IGNORED;
}

/* Names the key being written where a syntax error stopped the parser: the last "key": before it. */
static void key_before(const char *text, size_t pos, char *key, size_t n) {
    key[0] = 0;
    for (size_t i = pos; i-- > 0;) {
        if (text[i] != ':') continue;
        size_t j = i;
        while (j > 0 && (text[j - 1] == ' ' || text[j - 1] == '\t' || text[j - 1] == '\n' || text[j - 1] == '\r')) j--;
        if (j == 0 || text[j - 1] != '"') continue;
        size_t end = j - 1, start = end;
        while (start > 0 && text[start - 1] != '"' && end - start < 64) start--;
        if (start == 0 || text[start - 1] != '"') continue;
        size_t len = end - start < n - 1 ? end - start : n - 1;
        memcpy(key, text + start, len);
        key[len] = 0;
        for (size_t q = 0; q < len; q++)
            if ((unsigned char)key[q] < 32) key[q] = '?';
        return;
    }
}

static avo_status parse_error(const char *file, const char *text, size_t size, size_t pos, avo_error *err) {
    if (pos > size) pos = size;
    int line = 1;
    for (size_t i = 0; i < pos; i++) line += text[i] == '\n';
    char key[72];
    key_before(text, pos, key, sizeof key);
    if (size == 0) return avo_error_set(err, AVO_ERR_FORMAT, "%s: empty file; expected a JSON object", file);
    if (key[0])
        return avo_error_set(err, AVO_ERR_FORMAT,
                             "%s: not valid JSON at line %d (byte %zu), in field '%s'; the file may be truncated or hand-edited",
                             file, line, pos, key);
    return avo_error_set(err, AVO_ERR_FORMAT, "%s: not valid JSON at line %d (byte %zu); the file may be truncated",
                         file, line, pos);
}

static avo_status check_doc(checker *c, doc_kind kind, const cJSON *doc) {
    avo_status st = check_str(c, doc, "", "benchmark", 0);
    if (!st) st = check_f0_series(c, doc);
    if (st) return st;
    switch (kind) {
    case DOC_SYSTEM: return check_system(c, doc);
    case DOC_PERF: return check_perf(c, doc);
    case DOC_LATENCY: return check_latency(c, doc);
    case DOC_SEPARATION: return check_separation(c, doc);
    default: return AVO_OK;
    }
}

avo_status avo_report_add_json(avo_report *r, const char *name, const char *text, size_t size, avo_error *err) {
    if (!r || !name || (!text && size))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_report_add_json: missing argument");
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(text ? text : "", size, &end, 0);
    if (!doc) return parse_error(name, text ? text : "", size, end ? (size_t)(end - (text ? text : "")) : 0, err);
    /* Only whitespace may follow the document. */
    size_t pos = (size_t)(end - text);
    while (pos < size && (text[pos] == ' ' || text[pos] == '\n' || text[pos] == '\r' || text[pos] == '\t')) pos++;
    if (pos < size && text[pos] != 0) {
        cJSON_Delete(doc);
        return parse_error(name, text, size, pos, err);
    }
    if (!cJSON_IsObject(doc)) {
        avo_status st = avo_error_set(err, AVO_ERR_FORMAT, "%s: the document is %s; expected a JSON object", name,
                                      type_name(doc));
        cJSON_Delete(doc);
        return st;
    }
    doc_kind kind = recognise(doc, base);
    checker c = {name, err};
    avo_status st = check_doc(&c, kind, doc);
    if (st) {
        cJSON_Delete(doc);
        return st;
    }
    int slot = r->count;
    if (kind != DOC_PERF && kind != DOC_OTHER && kind != DOC_IGNORED)
        for (int i = 0; i < r->count; i++)
            if (r->docs[i].kind == kind) slot = i;
    if (slot == REPORT_MAX_DOCS) {
        cJSON_Delete(doc);
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s: too many JSON files (at most %d)", name, REPORT_MAX_DOCS);
    }
    if (slot < r->count) cJSON_Delete(r->docs[slot].json);
    else r->count++;
    r->docs[slot].kind = kind;
    snprintf(r->docs[slot].name, sizeof r->docs[slot].name, "%s", base);
    r->docs[slot].json = kind == DOC_IGNORED ? NULL : doc;
    if (kind == DOC_IGNORED) cJSON_Delete(doc);
    return AVO_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static avo_status read_text(const char *path, char **text, size_t *size, avo_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return avo_error_set(err, AVO_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    sbuf b;
    sb_init(&b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < ((size_t)64 << 20)) sb_putn(&b, chunk, n);
    int bad = ferror(f);
    fclose(f);
    if (bad || b.failed) {
        sb_free(&b);
        return avo_error_set(err, bad ? AVO_ERR_IO : AVO_ERR_NO_MEMORY, "%s: cannot read", path);
    }
    if (b.len >= ((size_t)64 << 20)) {
        sb_free(&b);
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: larger than 64 MB; not a benchmark result", path);
    }
    *text = b.data;
    *size = b.len;
    return AVO_OK;
}

avo_status avo_report_load_dir(avo_report *r, const char *dir, avo_error *err) {
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return avo_error_set(err, AVO_ERR_NOT_FOUND, "%s: no such folder; run 'autovoice bench --out %s' first", dir, dir);
    if (!S_ISDIR(sb.st_mode)) return avo_error_set(err, AVO_ERR_IO, "%s: not a folder; --in takes the bench output folder", dir);
    DIR *d = opendir(dir);
    if (!d) return avo_error_set(err, AVO_ERR_IO, "%s: cannot list (%s)", dir, strerror(errno));
    free(r->dir);
    r->dir = strdup(dir);
    char *names[REPORT_MAX_DOCS * 2];
    int n = 0;
    avo_status st = r->dir ? AVO_OK : avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    struct dirent *e;
    while (!st && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0 || e->d_name[0] == '.') continue;
        if (n == REPORT_MAX_DOCS * 2) {
            st = avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s: too many JSON files (at most %d)", dir, REPORT_MAX_DOCS);
            break;
        }
        if (!(names[n++] = strdup(e->d_name))) st = avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    }
    closedir(d);
    if (!st) qsort(names, (size_t)n, sizeof names[0], cmp_str);
    for (int i = 0; i < n && !st; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        char *text = NULL;
        size_t size = 0;
        st = read_text(path, &text, &size, err);
        if (!st) st = avo_report_add_json(r, path, text, size, err);
        free(text);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    return st;
}

int report_find_f0_series(const avo_report *r, f0_series *out) {
    /* The latency run's series first: it is the one `autovoice bench` records. */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < r->count; i++) {
            if (!r->docs[i].json || (pass == 0) != (r->docs[i].kind == DOC_LATENCY)) continue;
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(r->docs[i].json, "f0_series");
            if (!s) continue;
            out->hop = cJSON_GetObjectItemCaseSensitive(s, "hop_seconds")->valuedouble;
            out->source = cJSON_GetObjectItemCaseSensitive(s, "source_hz");
            out->output = cJSON_GetObjectItemCaseSensitive(s, "output_hz");
            return 1;
        }
    return 0;
}
