/* INT8 entropy calibration (see calibrate.h): |x| histograms, KL thresholds, the cache file and the
 * fake-quantisation simulation, all on the host. */
#include "autovoice/calibrate.h"

#include "engine/engine_internal.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FNV64_PRIME 0x100000001b3ull
#define CACHE_MAGIC "AVO-INT8-CALIB"
#define SMOOTH_EPS 1e-4

/* ---- hashes --------------------------------------------------------------------------------- */

uint64_t avo_fnv1a64(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= FNV64_PRIME;
    }
    return h;
}

avo_status avo_calib_file_hash(const char *path, uint64_t *out, avo_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return avo_error_set(err, errno == ENOENT ? AVO_ERR_NOT_FOUND : AVO_ERR_IO, "%s: cannot open: %s", path,
                             strerror(errno));
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    if (!buf) {
        fclose(f);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", path);
    }
    uint64_t h = AVO_FNV64_INIT;
    size_t n;
    while ((n = fread(buf, 1, CHUNK, f)) > 0) h = avo_fnv1a64(h, buf, n);
    int bad = ferror(f);
    free(buf);
    fclose(f);
    if (bad) return avo_error_set(err, AVO_ERR_IO, "%s: read error", path);
    *out = h;
    return AVO_OK;
}

/* ---- histograms ----------------------------------------------------------------------------- */

void avo_calib_hist_init(avo_calib_hist *h) { memset(h, 0, sizeof *h); }

/* Doubles the range (merging bin pairs) until need fits. */
static void hist_grow(avo_calib_hist *h, double need) {
    while (h->range < need) {
        for (int i = 0; i < AVO_CALIB_BINS / 2; i++) h->bins[i] = h->bins[2 * i] + h->bins[2 * i + 1];
        memset(h->bins + AVO_CALIB_BINS / 2, 0, sizeof(h->bins[0]) * (AVO_CALIB_BINS / 2));
        h->range *= 2.0;
    }
}

void avo_calib_hist_add(avo_calib_hist *h, const float *x, int64_t n) {
    float m = 0.0f;
    uint64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (!(a <= FLT_MAX))
            bad++;
        else if (a > m)
            m = a;
    }
    h->nonfinite += bad;
    if (m > h->max) h->max = m;
    if (h->range == 0.0 && m > 0.0f)
        h->range = m;
    else if (m > h->range)
        hist_grow(h, m);
    uint64_t good = (uint64_t)n - bad;
    h->count += good;
    if (h->range == 0.0) { /* zeros so far: bin 0 of whatever range comes */
        h->bins[0] += good;
        return;
    }
    const double k = AVO_CALIB_BINS / h->range;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (!(a <= FLT_MAX)) continue;
        int64_t b = (int64_t)(a * k);
        h->bins[b < AVO_CALIB_BINS ? b : AVO_CALIB_BINS - 1]++;
    }
}

/* KL(P || Q) of n unnormalised bins after smoothing both (a zero bin gets SMOOTH_EPS of a count,
 * taken evenly from the non-zero ones, so the sums stay sp and sq). */
static double kl_smoothed(const double *p, const double *q, int n, double sp, double sq) {
    int pz = 0, qz = 0;
    for (int j = 0; j < n; j++) {
        pz += p[j] == 0.0;
        qz += q[j] == 0.0;
    }
    if (pz == n || qz == n) return INFINITY;
    const double pe = SMOOTH_EPS * pz / (n - pz), qe = SMOOTH_EPS * qz / (n - qz);
    double kl = 0.0;
    for (int j = 0; j < n; j++) {
        double ps = p[j] == 0.0 ? SMOOTH_EPS : p[j] - pe;
        double qs = q[j] == 0.0 ? SMOOTH_EPS : q[j] - qe;
        if (ps <= 0.0) ps = 1e-12;
        if (qs <= 0.0) qs = 1e-12;
        ps /= sp;
        kl += ps * log(ps / (qs / sq));
    }
    return kl;
}

double avo_calib_hist_threshold(const avo_calib_hist *h, double *kl_out) {
    enum { B = AVO_CALIB_BINS, L = AVO_CALIB_LEVELS };
    if (kl_out) *kl_out = 0.0;
    if (!(h->range > 0.0) || !(h->max > 0.0)) return 0.0;
    double *above = malloc(sizeof(double) * (B + 1)), *p = malloc(sizeof(double) * B), *q = malloc(sizeof(double) * B);
    if (!above || !p || !q) { /* no memory: no clipping at all is a safe answer */
        free(above);
        free(p);
        free(q);
        return h->max;
    }
    above[B] = 0.0;
    for (int j = B - 1; j >= 0; j--) above[j] = above[j + 1] + (double)h->bins[j];
    const double total = above[0];
    double best = INFINITY;
    int best_i = B;
    for (int i = L; i <= B; i++) {
        const double inside = total - above[i]; /* Q's mass: P's without the outliers */
        if (!(inside > 0.0)) continue;
        for (int j = 0; j < i; j++) p[j] = (double)h->bins[j];
        p[i - 1] += above[i];
        const int m = i / L;
        for (int l = 0; l < L; l++) {
            const int start = l * m, stop = l == L - 1 ? i : start + m;
            double sum = 0.0;
            int nz = 0;
            for (int j = start; j < stop; j++) {
                sum += (double)h->bins[j];
                nz += p[j] != 0.0;
            }
            const double v = nz ? sum / nz : 0.0;
            for (int j = start; j < stop; j++) q[j] = p[j] != 0.0 ? v : 0.0;
        }
        double kl = kl_smoothed(p, q, i, total, inside);
        if (kl < best) {
            best = kl;
            best_i = i;
        }
    }
    free(above);
    free(p);
    free(q);
    if (kl_out) *kl_out = isfinite(best) ? best : 0.0;
    /* bins above the maximum are empty (the range grows by doubling): never reach past it */
    const double thr = best_i * h->range / B;
    return thr < h->max ? thr : h->max;
}

float avo_calib_scale_from_threshold(double threshold) {
    if (!(threshold > 0.0) || !isfinite(threshold)) return 1.0f / 127.0f;
    float s = (float)(threshold / 127.0);
    return s >= FLT_MIN ? s : FLT_MIN;
}

/* ---- quantisation helpers ------------------------------------------------------------------- */

static bool is_transposed(avo_gemm_kind kind) {
    return kind == AVO_GEMM_CONV_TRANSPOSE1D || kind == AVO_GEMM_CONV_TRANSPOSE2D;
}

int64_t avo_calib_weight_out_channels(avo_gemm_kind kind, const avo_tensor *w, int groups) {
    if (!w || w->ndim < 2) return 0;
    return is_transposed(kind) ? w->shape[1] * (groups > 0 ? groups : 1) : w->shape[0];
}

/* Output channel of each weight element, as (first, step) runs: calls fn(o, ptr, count) on every
 * contiguous run of one channel's elements. */
typedef void (*channel_run_fn)(void *user, int64_t o, int64_t at, int64_t count);

static avo_status check_weight(avo_gemm_kind kind, const avo_tensor *w, int groups, avo_error *err) {
    if (!w || !w->data || w->dtype != AVO_DTYPE_F32 || w->ndim < 2)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "INT8 weights: need an f32 weight of 2 or more dimensions");
    if (is_transposed(kind) && w->shape[0] % (groups > 0 ? groups : 1))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "INT8 weights: %lld rows do not split into %d groups",
                             (long long)w->shape[0], groups);
    return AVO_OK;
}

static avo_status for_channel_runs(avo_gemm_kind kind, const avo_tensor *w, int groups, channel_run_fn fn, void *user,
                                   avo_error *err) {
    avo_status st = check_weight(kind, w, groups, err);
    if (st) return st;
    if (groups <= 0) groups = 1;
    int64_t inner = 1;
    for (int d = 2; d < w->ndim; d++) inner *= w->shape[d];
    if (!is_transposed(kind)) {
        const int64_t per = w->shape[1] * inner;
        for (int64_t o = 0; o < w->shape[0]; o++) fn(user, o, o * per, per);
        return AVO_OK;
    }
    const int64_t cin = w->shape[0], cout_g = w->shape[1];
    const int64_t cin_g = cin / groups;
    for (int64_t r = 0; r < cin; r++) {
        const int64_t g = r / cin_g;
        for (int64_t j = 0; j < cout_g; j++) fn(user, g * cout_g + j, (r * cout_g + j) * inner, inner);
    }
    return AVO_OK;
}

typedef struct absmax_ctx {
    const float *w;
    float *amax;
} absmax_ctx;

static void absmax_run(void *user, int64_t o, int64_t at, int64_t count) {
    absmax_ctx *c = user;
    float m = c->amax[o];
    for (int64_t i = 0; i < count; i++) {
        float a = fabsf(c->w[at + i]);
        m = a > m ? a : m;
    }
    c->amax[o] = m;
}

avo_status avo_calib_weight_scales(avo_gemm_kind kind, const avo_tensor *w, int groups, float *scales, avo_error *err) {
    avo_status st = check_weight(kind, w, groups, err);
    if (st) return st;
    const int64_t n = avo_calib_weight_out_channels(kind, w, groups);
    for (int64_t o = 0; o < n; o++) scales[o] = 0.0f;
    absmax_ctx c = {w->data, scales};
    st = for_channel_runs(kind, w, groups, absmax_run, &c, err);
    if (st) return st;
    for (int64_t o = 0; o < n; o++) scales[o] = avo_calib_scale_from_threshold(scales[o]);
    return AVO_OK;
}

static inline float quant_level(float v, float inv) {
    float r = rintf(v * inv);
    return r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r;
}

void avo_calib_quantize(const float *x, int64_t n, float scale, int8_t *q) {
    const float inv = 1.0f / scale;
    for (int64_t i = 0; i < n; i++) {
        float r = quant_level(x[i], inv);
        q[i] = r == r ? (int8_t)r : 0; /* NaN has no int8; the FP32 model would have failed first */
    }
}

void avo_calib_fake_quantize(const float *x, int64_t n, float scale, float *out) {
    const float inv = 1.0f / scale;
    for (int64_t i = 0; i < n; i++) out[i] = quant_level(x[i], inv) * scale;
}

typedef struct fakeq_ctx {
    const float *w;
    const float *scales;
    float *out;
} fakeq_ctx;

static void fakeq_run(void *user, int64_t o, int64_t at, int64_t count) {
    fakeq_ctx *c = user;
    avo_calib_fake_quantize(c->w + at, count, c->scales[o], c->out + at);
}

avo_status avo_calib_fake_quantize_weight(avo_gemm_kind kind, const avo_tensor *w, int groups, float *w_out,
                                          avo_error *err) {
    avo_status st = check_weight(kind, w, groups, err);
    if (st) return st;
    const int64_t n = avo_calib_weight_out_channels(kind, w, groups);
    float *scales = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!scales) return avo_error_set(err, AVO_ERR_NO_MEMORY, "INT8 weights: out of memory");
    st = avo_calib_weight_scales(kind, w, groups, scales, err);
    fakeq_ctx c = {w->data, scales, w_out};
    if (!st) st = for_channel_runs(kind, w, groups, fakeq_run, &c, err);
    free(scales);
    return st;
}

static const char *const kind_names[] = {"linear", "conv1d", "conv_transpose1d", "conv2d", "conv_transpose2d"};

void avo_calib_weight_name(avo_gemm_kind kind, const avo_tensor *w, char *name) {
    uint64_t h = AVO_FNV64_INIT;
    for (int d = 0; d < w->ndim; d++) {
        int64_t v = w->shape[d];
        unsigned char le[8];
        for (int b = 0; b < 8; b++) le[b] = (unsigned char)((uint64_t)v >> (8 * b));
        h = avo_fnv1a64(h, le, 8);
    }
    h = avo_fnv1a64(h, w->data, (size_t)avo_tensor_numel(w) * sizeof(float));
    size_t k = (size_t)snprintf(name, AVO_CALIB_NAME_MAX, "%s.",
                                (unsigned)kind < sizeof kind_names / sizeof kind_names[0] ? kind_names[kind] : "gemm");
    for (int d = 0; d < w->ndim && k < AVO_CALIB_NAME_MAX; d++)
        k += (size_t)snprintf(name + k, AVO_CALIB_NAME_MAX - k, d ? "x%lld" : "%lld", (long long)w->shape[d]);
    if (k < AVO_CALIB_NAME_MAX) snprintf(name + k, AVO_CALIB_NAME_MAX - k, ".%016llx", (unsigned long long)h);
}

/* ---- tables --------------------------------------------------------------------------------- */

typedef struct table_entry {
    char name[AVO_CALIB_NAME_MAX];
    float scale;
} table_entry;

struct avo_calib_table {
    uint64_t model_hash;
    table_entry *e;
    int n, cap;
    int *index; /* open addressing over names: entry + 1, 0 empty */
    int index_cap;
};

static uint64_t name_hash(const char *s, size_t n) { return avo_fnv1a64(AVO_FNV64_INIT, s, n); }

/* Slot of name in the index: the one holding it, or the empty one where it would go. */
static int table_slot(const avo_calib_table *t, const char *name, size_t len) {
    int mask = t->index_cap - 1, i = (int)(name_hash(name, len) & (uint64_t)mask);
    while (t->index[i] && strcmp(t->e[t->index[i] - 1].name, name) != 0) i = (i + 1) & mask;
    return i;
}

static bool table_reindex(avo_calib_table *t, int cap) {
    int *ix = calloc((size_t)cap, sizeof *ix);
    if (!ix) return false;
    free(t->index);
    t->index = ix;
    t->index_cap = cap;
    for (int k = 0; k < t->n; k++) t->index[table_slot(t, t->e[k].name, strlen(t->e[k].name))] = k + 1;
    return true;
}

avo_status avo_calib_table_create(uint64_t model_hash, avo_calib_table **out, avo_error *err) {
    *out = NULL;
    avo_calib_table *t = calloc(1, sizeof *t);
    if (!t || !table_reindex(t, 64)) {
        free(t);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "calibration table: out of memory");
    }
    t->model_hash = model_hash;
    *out = t;
    return AVO_OK;
}

void avo_calib_table_free(avo_calib_table *t) {
    if (!t) return;
    free(t->e);
    free(t->index);
    free(t);
}

uint64_t avo_calib_table_model_hash(const avo_calib_table *t) { return t ? t->model_hash : 0; }

/* 1..AVO_CALIB_NAME_MAX-1 characters in '!'..'~' other than ':'. */
static bool valid_name(const char *s, size_t n) {
    if (n == 0 || n >= AVO_CALIB_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '!' || s[i] > '~' || s[i] == ':') return false;
    return true;
}

avo_status avo_calib_table_set(avo_calib_table *t, const char *name, float scale, avo_error *err) {
    if (!t || !name) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "calibration table: NULL argument");
    size_t len = strlen(name);
    if (!valid_name(name, len))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "calibration table: tensor name '%.*s' is not 1-%d printable characters without ':' or spaces",
                             (int)(len < 200 ? len : 200), name, AVO_CALIB_NAME_MAX - 1);
    if (!(scale > 0.0f) || !isfinite(scale))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "calibration table: scale %g of %s is not a positive number",
                             (double)scale, name);
    int slot = table_slot(t, name, len);
    if (t->index[slot]) {
        t->e[t->index[slot] - 1].scale = scale;
        return AVO_OK;
    }
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 64;
        table_entry *e = realloc(t->e, sizeof *e * (size_t)cap);
        if (!e) return avo_error_set(err, AVO_ERR_NO_MEMORY, "calibration table: out of memory");
        t->e = e;
        t->cap = cap;
    }
    memcpy(t->e[t->n].name, name, len + 1);
    t->e[t->n].scale = scale;
    t->n++;
    if (t->n * 2 > t->index_cap) {
        if (!table_reindex(t, t->index_cap * 2)) {
            t->n--;
            return avo_error_set(err, AVO_ERR_NO_MEMORY, "calibration table: out of memory");
        }
    } else {
        t->index[slot] = t->n;
    }
    return AVO_OK;
}

bool avo_calib_table_find(const avo_calib_table *t, const char *name, float *scale) {
    if (!t || !name) return false;
    int slot = table_slot(t, name, strlen(name));
    if (!t->index[slot]) return false;
    if (scale) *scale = t->e[t->index[slot] - 1].scale;
    return true;
}

int avo_calib_table_count(const avo_calib_table *t) { return t ? t->n : 0; }

void avo_calib_table_entry(const avo_calib_table *t, int i, const char **name, float *scale) {
    const bool ok = t && i >= 0 && i < t->n;
    if (name) *name = ok ? t->e[i].name : NULL;
    if (scale) *scale = ok ? t->e[i].scale : 0.0f;
}

/* ---- cache file ----------------------------------------------------------------------------- */

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The header up to and including "checksum=" is hashed with the body, so neither can change unseen. */
avo_status avo_calib_cache_write(const char *path, const avo_calib_table *t, avo_error *err) {
    if (!path || !t) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "calibration cache: NULL argument");
    const size_t line_max = AVO_CALIB_NAME_MAX + 16;
    size_t cap = 160 + (size_t)t->n * line_max, n = 0;
    char *text = malloc(cap);
    if (!text) return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", path);
    n += (size_t)snprintf(text, cap, "%s %d model=fnv1a64:%016llx tensors=%d checksum=", CACHE_MAGIC,
                          AVO_CALIB_CACHE_VERSION, (unsigned long long)t->model_hash, t->n);
    const size_t head = n;
    n += 9; /* 8 hex digits and the newline, filled in below */
    for (int i = 0; i < t->n; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s: %08x\n", t->e[i].name, (unsigned)float_bits(t->e[i].scale));
    uint64_t h = avo_fnv1a64(AVO_FNV64_INIT, text, head);
    h = avo_fnv1a64(h, text + head + 9, n - head - 9);
    char sum[10];
    snprintf(sum, sizeof sum, "%08x\n", (unsigned)(h & 0xffffffffu));
    memcpy(text + head, sum, 9);

    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp) {
        free(text);
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "calibration cache: path too long");
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        avo_status st = avo_error_set(err, AVO_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(text);
        return st;
    }
    bool ok = fwrite(text, 1, n, f) == n;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    free(text);
    if (!ok || rename(tmp, path) != 0) {
        avo_status st = avo_error_set(err, AVO_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
        return st;
    }
    return AVO_OK;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Exactly digits hex digits at s[0..digits) (inside [s, end)). */
static bool parse_hex(const char *s, const char *end, int digits, uint64_t *out) {
    if (end - s < digits) return false;
    uint64_t v = 0;
    for (int i = 0; i < digits; i++) {
        int d = hexval(s[i]);
        if (d < 0) return false;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return true;
}

/* A decimal of 1..9 digits; advances *s. */
static bool parse_dec(const char **s, const char *end, long *out) {
    const char *p = *s;
    long v = 0;
    int k = 0;
    while (p < end && *p >= '0' && *p <= '9' && k < 10) {
        v = v * 10 + (*p++ - '0');
        k++;
    }
    if (k == 0 || k > 9) return false;
    *s = p;
    *out = v;
    return true;
}

static bool expect(const char **s, const char *end, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(end - *s) < n || memcmp(*s, lit, n) != 0) return false;
    *s += n;
    return true;
}

#define RECAL "run 'autovoice calibrate' again with --recalibrate"

avo_status avo_calib_cache_parse(const char *text, size_t size, const char *name, const uint64_t *expect_hash,
                                 avo_calib_table **out, avo_error *err) {
    *out = NULL;
    if (!name) name = "calibration cache";
    const char *end = text + size, *nl = memchr(text, '\n', size);
    const char *p = text;
    if (!expect(&p, end, CACHE_MAGIC " "))
        return avo_error_set(err, AVO_ERR_FORMAT, "%s is not an autovoice INT8 calibration cache (no '%s' header): %s", name,
                             CACHE_MAGIC, RECAL);
    long version = 0;
    if (!nl || !parse_dec(&p, nl, &version) || p >= nl || *p != ' ')
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: damaged header line: %s", name, RECAL);
    if (version != AVO_CALIB_CACHE_VERSION)
        return avo_error_set(err, AVO_ERR_VALIDATION,
                             "%s has calibration cache format version %ld; this build reads version %d: %s", name, version,
                             AVO_CALIB_CACHE_VERSION, RECAL);
    uint64_t model = 0, sum = 0;
    long tensors = 0;
    bool ok = expect(&p, nl, " model=fnv1a64:") && parse_hex(p, nl, 16, &model);
    if (ok) p += 16;
    ok = ok && expect(&p, nl, " tensors=") && parse_dec(&p, nl, &tensors) && expect(&p, nl, " checksum=");
    const char *sum_at = p;
    ok = ok && parse_hex(p, nl, 8, &sum) && p + 8 == nl;
    if (!ok) return avo_error_set(err, AVO_ERR_FORMAT, "%s: damaged header line: %s", name, RECAL);
    const char *body = nl + 1;
    uint64_t h = avo_fnv1a64(AVO_FNV64_INIT, text, (size_t)(sum_at - text));
    h = avo_fnv1a64(h, body, (size_t)(end - body));
    if ((h & 0xffffffffu) != sum)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s is damaged or was edited (checksum %08llx, expected %08llx): %s", name,
                             (unsigned long long)(h & 0xffffffffu), (unsigned long long)sum, RECAL);
    if (expect_hash && model != *expect_hash)
        return avo_error_set(err, AVO_ERR_VALIDATION,
                             "%s was made for another model (fnv1a64:%016llx, this one is fnv1a64:%016llx): %s", name,
                             (unsigned long long)model, (unsigned long long)*expect_hash, RECAL);
    avo_calib_table *t = NULL;
    avo_status st = avo_calib_table_create(model, &t, err);
    if (st) return st;
    int line = 1;
    for (p = body; p < end && !st;) {
        line++;
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) {
            st = avo_error_set(err, AVO_ERR_FORMAT, "%s: line %d is cut short (no newline): %s", name, line, RECAL);
            break;
        }
        const char *colon = memchr(p, ':', (size_t)(e - p));
        uint64_t bits = 0;
        char nm[AVO_CALIB_NAME_MAX];
        size_t len = colon ? (size_t)(colon - p) : 0;
        bool good = colon && valid_name(p, len) && e - colon == 10 && colon[1] == ' ' && parse_hex(colon + 2, e, 8, &bits);
        float scale = bits_float((uint32_t)bits);
        if (good && (!(scale > 0.0f) || !isfinite(scale))) good = false;
        if (!good) {
            st = avo_error_set(err, AVO_ERR_FORMAT, "%s: line %d is not 'tensor_name: <8 hex digits of a positive float32>': %s",
                               name, line, RECAL);
            break;
        }
        memcpy(nm, p, len);
        nm[len] = 0;
        if (avo_calib_table_find(t, nm, NULL)) {
            st = avo_error_set(err, AVO_ERR_FORMAT, "%s: line %d repeats tensor %s: %s", name, line, nm, RECAL);
            break;
        }
        st = avo_calib_table_set(t, nm, scale, err);
        p = e + 1;
    }
    if (!st && t->n != tensors)
        st = avo_error_set(err, AVO_ERR_FORMAT, "%s: has %d tensor lines, its header says %ld: %s", name, t->n, tensors, RECAL);
    if (st) {
        avo_calib_table_free(t);
        return st;
    }
    *out = t;
    return AVO_OK;
}

avo_status avo_calib_cache_read(const char *path, const uint64_t *expect_hash, avo_calib_table **out, avo_error *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return avo_error_set(err, errno == ENOENT ? AVO_ERR_NOT_FOUND : AVO_ERR_IO, "%s: cannot open: %s", path,
                             strerror(errno));
    /* a cache is small: a few hundred lines of about 60 bytes */
    enum { LIMIT = 64 << 20 };
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    avo_status st = AVO_OK;
    while (buf) {
        if (n == cap) {
            if (cap >= LIMIT) {
                st = avo_error_set(err, AVO_ERR_FORMAT, "%s: larger than %d MB, not a calibration cache", path, LIMIT >> 20);
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (!st && !buf) st = avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", path);
    if (!st && ferror(f)) st = avo_error_set(err, AVO_ERR_IO, "%s: read error", path);
    fclose(f);
    if (!st) st = avo_calib_cache_parse(buf, n, path, expect_hash, out, err);
    free(buf);
    return st;
}

/* ---- weights seen by an observer ------------------------------------------------------------ */

/* One weight (by address, kind and shape) and its name, found on first sight. */
typedef struct seen_weight {
    const void *id;
    avo_gemm_kind kind;
    int ndim;
    int64_t shape[AVO_TENSOR_MAX_DIMS];
    char name[AVO_CALIB_NAME_MAX];
    int entry;          /* collector: histogram index */
    bool has_scale;     /* simulation */
    float scale;
    float *wq;          /* simulation: the fake-quantised weight */
} seen_weight;

typedef struct seen_list {
    seen_weight *w;
    int n, cap;
    int last; /* where the previous lookup hit: runs repeat the same order */
} seen_list;

static seen_weight *seen_find(seen_list *l, const avo_gemm_event *ev) {
    for (int k = 0; k < l->n; k++) {
        int i = (l->last + k) % l->n;
        seen_weight *s = &l->w[i];
        if (s->id != ev->w_id || s->kind != ev->kind || s->ndim != ev->w.ndim) continue;
        bool same = true;
        for (int d = 0; d < s->ndim; d++) same = same && s->shape[d] == ev->w.shape[d];
        if (same) {
            l->last = i;
            return s;
        }
    }
    return NULL;
}

static seen_weight *seen_add(seen_list *l, const avo_gemm_event *ev, avo_error *err) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        seen_weight *w = realloc(l->w, sizeof *w * (size_t)cap);
        if (!w) {
            avo_error_set(err, AVO_ERR_NO_MEMORY, "INT8 calibration: out of memory");
            return NULL;
        }
        l->w = w;
        l->cap = cap;
    }
    seen_weight *s = &l->w[l->n];
    memset(s, 0, sizeof *s);
    s->id = ev->w_id;
    s->kind = ev->kind;
    s->ndim = ev->w.ndim;
    for (int d = 0; d < s->ndim; d++) s->shape[d] = ev->w.shape[d];
    avo_calib_weight_name(ev->kind, &ev->w, s->name);
    l->last = l->n;
    l->n++;
    return s;
}

/* ---- collector ------------------------------------------------------------------------------ */

typedef struct calib_entry {
    char name[AVO_CALIB_NAME_MAX];
    avo_calib_hist hist;
    double threshold;
    /* error pass */
    bool has_scale;
    float scale;
    uint64_t frames, bad;
    double err_sum;
} calib_entry;

struct avo_calib {
    calib_entry **e;
    int n, cap;
    seen_list seen;
    double seconds;
    const avo_calib_table *scales; /* set in the error pass */
    double *fa, *fd;               /* per-frame sums of x^2 and of the error^2 */
    int64_t f_cap;
};

avo_status avo_calib_create(avo_calib **out, avo_error *err) {
    *out = calloc(1, sizeof **out);
    return *out ? AVO_OK : avo_error_set(err, AVO_ERR_NO_MEMORY, "INT8 calibration: out of memory");
}

void avo_calib_free(avo_calib *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) free(c->e[i]);
    free(c->e);
    free(c->seen.w);
    free(c->fa);
    free(c->fd);
    free(c);
}

static int calib_entry_find(const avo_calib *c, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->e[i]->name, name) == 0) return i;
    return -1;
}

static int calib_entry_get(avo_calib *c, const char *name, avo_error *err) {
    int i = calib_entry_find(c, name);
    if (i >= 0) return i;
    size_t len = strlen(name);
    if (!valid_name(name, len)) {
        avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "INT8 calibration: tensor name '%.*s' is not valid",
                      (int)(len < 200 ? len : 200), name);
        return -1;
    }
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 64;
        calib_entry **e = realloc(c->e, sizeof *e * (size_t)cap);
        if (!e) {
            avo_error_set(err, AVO_ERR_NO_MEMORY, "INT8 calibration: out of memory");
            return -1;
        }
        c->e = e;
        c->cap = cap;
    }
    calib_entry *en = malloc(sizeof *en);
    if (!en) {
        avo_error_set(err, AVO_ERR_NO_MEMORY, "INT8 calibration: out of memory");
        return -1;
    }
    memset(en, 0, sizeof *en);
    memcpy(en->name, name, len + 1);
    avo_calib_hist_init(&en->hist);
    c->e[c->n] = en;
    return c->n++;
}

avo_status avo_calib_add(avo_calib *c, const char *name, const float *x, int64_t n, avo_error *err) {
    if (!c || !name || (!x && n > 0) || n < 0)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_calib_add: bad argument");
    int i = calib_entry_get(c, name, err);
    if (i < 0) return err ? err->code : AVO_ERR_INVALID_ARGUMENT;
    avo_calib_hist_add(&c->e[i]->hist, x, n);
    return AVO_OK;
}

/* x seen as [outer, frames, inner] (see calibrate.h for what a frame is). */
static void frame_layout(const avo_gemm_event *ev, int64_t *outer, int64_t *frames, int64_t *inner) {
    const avo_tensor *x = &ev->x;
    if (ev->kind == AVO_GEMM_LINEAR || x->ndim < 2) {
        *inner = x->ndim ? x->shape[x->ndim - 1] : 1;
        *outer = 1;
        *frames = *inner ? avo_tensor_numel(x) / *inner : 0;
    } else {
        *outer = x->shape[0];
        *frames = x->shape[1];
        *inner = 1;
        for (int d = 2; d < x->ndim; d++) *inner *= x->shape[d];
    }
}

/* The error pass for one op: per-frame relative error of its fake-quantised input. */
static avo_status measure_frames(avo_calib *c, calib_entry *en, const avo_gemm_event *ev, avo_error *err) {
    int64_t outer, nf, inner;
    frame_layout(ev, &outer, &nf, &inner);
    if (nf > c->f_cap) {
        double *a = realloc(c->fa, sizeof(double) * (size_t)nf), *d = a ? realloc(c->fd, sizeof(double) * (size_t)nf) : NULL;
        if (a) c->fa = a;
        if (d) c->fd = d;
        if (!a || !d) return avo_error_set(err, AVO_ERR_NO_MEMORY, "INT8 calibration: out of memory");
        c->f_cap = nf;
    }
    memset(c->fa, 0, sizeof(double) * (size_t)nf);
    memset(c->fd, 0, sizeof(double) * (size_t)nf);
    const float *x = ev->x.data, s = en->scale, inv = 1.0f / s;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t f = 0; f < nf; f++) {
            const float *r = x + (o * nf + f) * inner;
            double a = 0.0, d = 0.0;
            for (int64_t i = 0; i < inner; i++) {
                float q = quant_level(r[i], inv) * s - r[i];
                a += (double)r[i] * r[i];
                d += (double)q * q;
            }
            c->fa[f] += a;
            c->fd[f] += d;
        }
    for (int64_t f = 0; f < nf; f++) {
        if (!(c->fa[f] > 0.0)) continue;
        double e = sqrt(c->fd[f] / c->fa[f]);
        en->frames++;
        en->err_sum += e;
        en->bad += !(e <= AVO_CALIB_FRAME_ERROR);
    }
    return AVO_OK;
}

static avo_status calib_observe(void *user, avo_gemm_event *ev, avo_error *err) {
    avo_calib *c = user;
    if (ev->x.dtype != AVO_DTYPE_F32 || ev->w.dtype != AVO_DTYPE_F32) return AVO_OK;
    seen_weight *s = seen_find(&c->seen, ev);
    if (!s) {
        s = seen_add(&c->seen, ev, err);
        if (!s) return AVO_ERR_NO_MEMORY;
        s->entry = calib_entry_get(c, s->name, err);
        if (s->entry < 0) {
            c->seen.n--;
            return err ? err->code : AVO_ERR_NO_MEMORY;
        }
        calib_entry *en = c->e[s->entry];
        if (c->scales) en->has_scale = avo_calib_table_find(c->scales, en->name, &en->scale);
    }
    calib_entry *en = c->e[s->entry];
    if (!c->scales) {
        avo_calib_hist_add(&en->hist, ev->x.data, avo_tensor_numel(&ev->x));
        return AVO_OK;
    }
    return en->has_scale ? measure_frames(c, en, ev, err) : AVO_OK;
}

avo_status avo_calib_start_error_pass(avo_calib *c, const avo_calib_table *scales, avo_error *err) {
    if (!c || !scales) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_calib_start_error_pass: NULL argument");
    c->scales = scales;
    for (int i = 0; i < c->n; i++) {
        calib_entry *en = c->e[i];
        en->has_scale = avo_calib_table_find(scales, en->name, &en->scale);
        en->frames = en->bad = 0;
        en->err_sum = 0.0;
    }
    return AVO_OK;
}

avo_status avo_calib_select(const avo_calib *c, double max_bad_frames, avo_calib_table **out, avo_error *err) {
    *out = NULL;
    if (!c || !c->scales) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_calib_select: no error pass was run");
    if (!(max_bad_frames > 0.0)) max_bad_frames = AVO_CALIB_MAX_BAD_FRAMES;
    uint64_t seen = 0;
    for (int i = 0; i < c->n; i++) seen += c->e[i]->frames;
    if (seen == 0)
        return avo_error_set(err, AVO_ERR_VALIDATION, "INT8 calibration: the error pass measured no frame (run the model again after avo_calib_start_error_pass)");
    avo_calib_table *t = NULL;
    avo_status st = avo_calib_table_create(avo_calib_table_model_hash(c->scales), &t, err);
    for (int i = 0; i < c->n && !st; i++) {
        const calib_entry *en = c->e[i];
        if (en->has_scale && en->frames > 0 && (double)en->bad <= max_bad_frames * (double)en->frames)
            st = avo_calib_table_set(t, en->name, en->scale, err);
    }
    if (st) {
        avo_calib_table_free(t);
        return st;
    }
    *out = t;
    return AVO_OK;
}

void avo_calib_tensor_info(const avo_calib *c, int i, avo_calib_info *out) {
    memset(out, 0, sizeof *out);
    if (!c || i < 0 || i >= c->n) return;
    const calib_entry *en = c->e[i];
    out->name = en->name;
    out->values = en->hist.count;
    out->max = en->hist.max;
    out->threshold = en->threshold;
    out->frames = en->frames;
    out->mean_error = en->frames ? en->err_sum / (double)en->frames : 0.0;
    out->bad_frames = en->frames ? (double)en->bad / (double)en->frames : 0.0;
}

avo_status avo_calib_attach(avo_calib *c, avo_backend *be, avo_error *err) {
    if (!c || !be) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_calib_attach: NULL argument");
    if (be->observer && (be->observer != calib_observe || be->observer_user != c))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "INT8 calibration: the back end is already observed");
    avo_backend_set_gemm_observer(be, calib_observe, c);
    return AVO_OK;
}

void avo_calib_detach(avo_calib *c, avo_backend *be) {
    if (be && be->observer == calib_observe && be->observer_user == c) avo_backend_set_gemm_observer(be, NULL, NULL);
}

void avo_calib_note_audio(avo_calib *c, double seconds) {
    if (c && seconds > 0 && isfinite(seconds)) c->seconds += seconds;
}

double avo_calib_audio_seconds(const avo_calib *c) { return c ? c->seconds : 0.0; }
int avo_calib_tensor_count(const avo_calib *c) { return c ? c->n : 0; }

const avo_calib_hist *avo_calib_histogram(const avo_calib *c, const char *name) {
    int i = c && name ? calib_entry_find(c, name) : -1;
    return i >= 0 ? &c->e[i]->hist : NULL;
}

avo_status avo_calib_compute(avo_calib *c, double min_seconds, uint64_t model_hash, avo_calib_table **out,
                             avo_error *err) {
    *out = NULL;
    if (!c) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_calib_compute: NULL argument");
    if (!(min_seconds > 0)) min_seconds = AVO_CALIB_MIN_SECONDS;
    if (c->seconds < min_seconds)
        return avo_error_set(err, AVO_ERR_VALIDATION,
                             "INT8 calibration needs at least %.0f s of audio, got %.1f s: add %.1f s more (speech or "
                             "singing like what will be converted)",
                             min_seconds, c->seconds, min_seconds - c->seconds);
    if (c->n == 0)
        return avo_error_set(err, AVO_ERR_VALIDATION, "INT8 calibration: the model ran no weight GEMM, nothing to calibrate");
    for (int i = 0; i < c->n; i++)
        if (c->e[i]->hist.nonfinite)
            return avo_error_set(err, AVO_ERR_VALIDATION,
                                 "INT8 calibration: %llu non-finite values at the input of %s: the FP32 model overflows "
                                 "on this audio and cannot be calibrated",
                                 (unsigned long long)c->e[i]->hist.nonfinite, c->e[i]->name);
    avo_calib_table *t = NULL;
    avo_status st = avo_calib_table_create(model_hash, &t, err);
    for (int i = 0; i < c->n && !st; i++) {
        double thr = avo_calib_hist_threshold(&c->e[i]->hist, NULL);
        c->e[i]->threshold = thr;
        st = avo_calib_table_set(t, c->e[i]->name, avo_calib_scale_from_threshold(thr), err);
    }
    if (st) {
        avo_calib_table_free(t);
        return st;
    }
    *out = t;
    return AVO_OK;
}

/* ---- simulation ----------------------------------------------------------------------------- */

struct avo_calib_sim {
    const avo_calib_table *t;
    bool strict;
    seen_list seen;
    float *xq;
    int64_t xq_cap;
    int64_t quantised, skipped;
};

avo_status avo_calib_sim_create(const avo_calib_table *t, bool strict, avo_calib_sim **out, avo_error *err) {
    *out = NULL;
    if (!t) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "INT8 simulation: no calibration table");
    avo_calib_sim *s = calloc(1, sizeof *s);
    if (!s) return avo_error_set(err, AVO_ERR_NO_MEMORY, "INT8 simulation: out of memory");
    s->t = t;
    s->strict = strict;
    *out = s;
    return AVO_OK;
}

void avo_calib_sim_free(avo_calib_sim *s) {
    if (!s) return;
    for (int i = 0; i < s->seen.n; i++) free(s->seen.w[i].wq);
    free(s->seen.w);
    free(s->xq);
    free(s);
}

static avo_status sim_observe(void *user, avo_gemm_event *ev, avo_error *err) {
    avo_calib_sim *s = user;
    if (ev->x.dtype != AVO_DTYPE_F32 || ev->w.dtype != AVO_DTYPE_F32) return AVO_OK;
    seen_weight *w = seen_find(&s->seen, ev);
    if (!w) {
        w = seen_add(&s->seen, ev, err);
        if (!w) return AVO_ERR_NO_MEMORY;
        w->has_scale = avo_calib_table_find(s->t, w->name, &w->scale);
        if (!w->has_scale && s->strict) {
            s->seen.n--;
            return avo_error_set(err, AVO_ERR_VALIDATION,
                                 "INT8: the calibration has no scale for %s (%s): it was made for another model or "
                                 "another part of it; recalibrate",
                                 ev->name, w->name);
        }
        if (w->has_scale) {
            int64_t n = avo_tensor_numel(&ev->w);
            w->wq = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
            avo_status st = w->wq ? avo_calib_fake_quantize_weight(ev->kind, &ev->w, ev->groups, w->wq, err)
                                  : avo_error_set(err, AVO_ERR_NO_MEMORY, "INT8 simulation: out of memory");
            if (st) {
                free(w->wq);
                s->seen.n--;
                return st;
            }
        }
    }
    if (!w->has_scale) {
        s->skipped++;
        return AVO_OK;
    }
    const int64_t n = avo_tensor_numel(&ev->x);
    if (n > s->xq_cap) {
        float *b = realloc(s->xq, sizeof(float) * (size_t)n);
        if (!b) return avo_error_set(err, AVO_ERR_NO_MEMORY, "INT8 simulation: out of memory");
        s->xq = b;
        s->xq_cap = n;
    }
    avo_calib_fake_quantize(ev->x.data, n, w->scale, s->xq);
    ev->x_replace = s->xq;
    ev->w_replace = w->wq;
    s->quantised++;
    return AVO_OK;
}

avo_status avo_calib_sim_attach(avo_calib_sim *s, avo_backend *be, avo_error *err) {
    if (!s || !be) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_calib_sim_attach: NULL argument");
    if (!avo_backend_host_memory(be))
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "INT8 simulation runs on host back ends only, not '%s'",
                             avo_backend_name(be));
    if (be->observer && (be->observer != sim_observe || be->observer_user != s))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "INT8 simulation: the back end is already observed");
    avo_backend_set_gemm_observer(be, sim_observe, s);
    return AVO_OK;
}

void avo_calib_sim_detach(avo_calib_sim *s, avo_backend *be) {
    if (be && be->observer == sim_observe && be->observer_user == s) avo_backend_set_gemm_observer(be, NULL, NULL);
}

void avo_calib_sim_counts(const avo_calib_sim *s, int64_t *quantised, int64_t *skipped) {
    if (quantised) *quantised = s ? s->quantised : 0;
    if (skipped) *skipped = s ? s->skipped : 0;
}

double avo_calib_frame_cosine(const float *a, const float *b, int64_t frames, int64_t dim, double *worst) {
    double sum = 0;
    *worst = 1;
    for (int64_t f = 0; f < frames; f++) {
        double ab = 0, aa = 0, bb = 0;
        for (int64_t i = 0; i < dim; i++) {
            ab += (double)a[f * dim + i] * b[f * dim + i];
            aa += (double)a[f * dim + i] * a[f * dim + i];
            bb += (double)b[f * dim + i] * b[f * dim + i];
        }
        const double c = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : (aa == bb ? 1.0 : 0.0);
        sum += c;
        if (!(c >= *worst)) *worst = c;
    }
    return frames ? sum / (double)frames : 0;
}

bool avo_calib_cuda_int8_capable(const char *name) {
    if (!strncmp(name, "linear.", 7)) return true;
    if (strncmp(name, "conv1d.", 7)) return false;
    const char *dot = strchr(name + 7, '.');
    return dot && dot - name >= 9 && dot[-2] == 'x' && dot[-1] == '1';
}
