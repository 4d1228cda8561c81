/* Engine cache (engine_cache.h): key, file format, atomic writer, strict reader, and the session a
 * model loader records into or replays from. */
#include "autovoice/engine_cache.h"
#include "engine/engine_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef AVO_VERSION_STRING
#define AVO_VERSION_STRING "unknown"
#endif

#define EC_ALIGN 64
#define EC_REC_FIXED 48    /* "AREC" u16 u8 u8 i64[4] u64 */
#define EC_FOOTER 16       /* "AEND" u32 u64 */
#define EC_TEXT_MAX 4096   /* key text bytes */
#define EC_MAX_RECORDS (1 << 20)

/* ---- hash: 64-bit words in four independent multiply lanes --------------------------------- */

#define EH_MUL 0x9e3779b97f4a7c15ull /* odd: each lane step is a bijection of the lane state */

typedef struct eh_state {
    uint64_t lane[4];
    unsigned char buf[32];
    size_t nbuf;
    uint64_t total;
} eh_state;

static void eh_init(eh_state *h) {
    for (int i = 0; i < 4; i++) h->lane[i] = 0xcbf29ce484222325ull ^ ((uint64_t)(i + 1) * 0x100000001b3ull);
    h->nbuf = 0;
    h->total = 0;
}

static inline uint64_t eh_le64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8); /* one load; the byte order is fixed (little-endian) on every host */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static void eh_blocks(eh_state *h, const unsigned char *p, size_t nblocks) {
    uint64_t a = h->lane[0], b = h->lane[1], c = h->lane[2], d = h->lane[3];
    for (size_t i = 0; i < nblocks; i++, p += 32) {
        a = (a ^ eh_le64(p)) * EH_MUL;
        b = (b ^ eh_le64(p + 8)) * EH_MUL;
        c = (c ^ eh_le64(p + 16)) * EH_MUL;
        d = (d ^ eh_le64(p + 24)) * EH_MUL;
    }
    h->lane[0] = a, h->lane[1] = b, h->lane[2] = c, h->lane[3] = d;
}

static void eh_update(eh_state *h, const void *data, size_t n) {
    const unsigned char *p = data;
    h->total += n;
    if (h->nbuf) {
        size_t k = 32 - h->nbuf < n ? 32 - h->nbuf : n;
        memcpy(h->buf + h->nbuf, p, k);
        h->nbuf += k, p += k, n -= k;
        if (h->nbuf < 32) return;
        eh_blocks(h, h->buf, 1);
        h->nbuf = 0;
    }
    eh_blocks(h, p, n / 32);
    p += n / 32 * 32;
    n %= 32;
    memcpy(h->buf, p, n);
    h->nbuf = n;
}

static uint64_t eh_mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t eh_final(const eh_state *h0) {
    eh_state h = *h0;
    if (h.nbuf) { /* zero-padded last block; the length below tells paddings apart */
        memset(h.buf + h.nbuf, 0, 32 - h.nbuf);
        eh_blocks(&h, h.buf, 1);
    }
    uint64_t r = eh_mix(h.total);
    for (int i = 0; i < 4; i++) r = eh_mix(r ^ h.lane[i]);
    return r;
}

uint64_t avo_engine_hash(const void *data, size_t n) {
    eh_state h;
    eh_init(&h);
    eh_update(&h, data, n);
    return eh_final(&h);
}

avo_status avo_engine_file_hash(const char *path, uint64_t *out, avo_error *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return avo_error_set(err, errno == ENOENT ? AVO_ERR_NOT_FOUND : AVO_ERR_IO, "%s: cannot open: %s", path,
                             strerror(errno));
    enum { CHUNK = 4 << 20 };
    unsigned char *buf = malloc(CHUNK);
    if (!buf) {
        close(fd);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", path);
    }
    eh_state h;
    eh_init(&h);
    ssize_t n;
    while ((n = read(fd, buf, CHUNK)) > 0) eh_update(&h, buf, (size_t)n);
    int e = n < 0 ? errno : 0;
    free(buf);
    close(fd);
    if (e) return avo_error_set(err, AVO_ERR_IO, "%s: read error: %s", path, strerror(e));
    *out = eh_final(&h);
    return AVO_OK;
}

/* ---- little-endian fields ------------------------------------------------------------------- */

static void put_u16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8); }
static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint16_t get_u16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const unsigned char *p) { return eh_le64(p); }

static size_t pad_to(size_t off) { return (EC_ALIGN - off % EC_ALIGN) % EC_ALIGN; }

static const unsigned char zeros[EC_ALIGN];

/* ---- the cache directory ------------------------------------------------------------------- */

struct avo_engine_cache {
    char *dir;
};

avo_status avo_engine_cache_open(const char *dir, avo_engine_cache **out, avo_error *err) {
    if (!out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_engine_cache_open: NULL argument");
    *out = NULL;
    char buf[4096];
    if (dir && *dir) {
        snprintf(buf, sizeof buf, "%s", dir);
    } else {
        const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        if (x && x[0] == '/') /* the XDG spec: a relative value is invalid and ignored */
            snprintf(buf, sizeof buf, "%s/autovoice/engines", x);
        else if (home && *home)
            snprintf(buf, sizeof buf, "%s/.cache/autovoice/engines", home);
        else
            return avo_error_set(err, AVO_ERR_NOT_FOUND,
                                 "engine cache: neither XDG_CACHE_HOME nor HOME is set; give a cache directory");
    }
    avo_engine_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->dir = strdup(buf))) {
        free(c);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "engine cache: out of memory");
    }
    *out = c;
    return AVO_OK;
}

void avo_engine_cache_free(avo_engine_cache *c) {
    if (!c) return;
    free(c->dir);
    free(c);
}

const char *avo_engine_cache_dir(const avo_engine_cache *c) { return c ? c->dir : NULL; }

const char *avo_engine_outcome_name(avo_engine_outcome o) {
    switch (o) {
    case AVO_ENGINE_OFF: return "off";
    case AVO_ENGINE_HIT: return "hit";
    case AVO_ENGINE_BUILT: return "build";
    case AVO_ENGINE_REBUILT: return "rebuild";
    case AVO_ENGINE_UNCACHED: return "uncached";
    }
    return "unknown";
}

/* mkdir -p */
static int make_dirs(const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) && errno != EEXIST) return -1;
        *s = '/';
    }
    if (mkdir(p, 0755) && errno != EEXIST) return -1;
    struct stat st;
    if (stat(p, &st) || !S_ISDIR(st.st_mode)) {
        if (!errno) errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* ---- the tensor table ----------------------------------------------------------------------- */

typedef struct ec_entry {
    char *name;
    avo_tensor t;
    bool taken;
} ec_entry;

typedef struct ec_table {
    ec_entry *e;
    int64_t n, cap;
    int64_t *slot; /* open addressing: index + 1, 0 empty */
    int64_t nslot; /* power of two, > 2 n */
} ec_table;

static void table_clear(ec_table *t) {
    for (int64_t i = 0; i < t->n; i++) free(t->e[i].name);
    free(t->e);
    free(t->slot);
    memset(t, 0, sizeof *t);
}

static int64_t *table_find_slot(const ec_table *t, const char *name) {
    if (!t->nslot) return NULL;
    uint64_t h = avo_engine_hash(name, strlen(name));
    for (uint64_t i = h & (uint64_t)(t->nslot - 1);; i = (i + 1) & (uint64_t)(t->nslot - 1)) {
        int64_t *s = &t->slot[i];
        if (!*s || strcmp(t->e[*s - 1].name, name) == 0) return s;
    }
}

static ec_entry *table_get(const ec_table *t, const char *name) {
    int64_t *s = table_find_slot(t, name);
    return s && *s ? &t->e[*s - 1] : NULL;
}

/* Adds name (a copy); false on duplicate (*dup set) or out of memory. */
static bool table_add(ec_table *t, const char *name, const avo_tensor *tensor, bool *dup) {
    *dup = false;
    if (table_get(t, name)) {
        *dup = true;
        return false;
    }
    if (t->n == t->cap) {
        int64_t cap = t->cap ? 2 * t->cap : 256;
        ec_entry *e = realloc(t->e, (size_t)cap * sizeof *e);
        if (!e) return false;
        t->e = e, t->cap = cap;
    }
    if (2 * (t->n + 1) >= t->nslot) {
        int64_t ns = t->nslot ? 2 * t->nslot : 1024;
        int64_t *slot = calloc((size_t)ns, sizeof *slot);
        if (!slot) return false;
        free(t->slot);
        t->slot = slot, t->nslot = ns;
        for (int64_t i = 0; i < t->n; i++) *table_find_slot(t, t->e[i].name) = i + 1;
    }
    char *copy = strdup(name);
    if (!copy) return false;
    t->e[t->n] = (ec_entry){copy, tensor ? *tensor : (avo_tensor){0}, false};
    *table_find_slot(t, name) = t->n + 1;
    t->n++;
    return true;
}

/* ---- reader ---------------------------------------------------------------------------------- */

typedef struct ec_src {
    int fd;                   /* or -1: mem */
    const unsigned char *mem;
    uint64_t size, pos;
    eh_state h;
} ec_src;

/* Reads n bytes (hashed) or fails as truncated. */
static bool src_read(ec_src *s, void *dst, size_t n) {
    if (n > s->size - s->pos) return false;
    if (s->fd < 0) {
        memcpy(dst, s->mem + s->pos, n);
        eh_update(&s->h, dst, n);
    } else { /* in pieces that are hashed while they are still in the cache */
        size_t got = 0;
        while (got < n) {
            size_t want = n - got < ((size_t)1 << 18) ? n - got : (size_t)1 << 18;
            ssize_t r = pread(s->fd, (char *)dst + got, want, (off_t)(s->pos + got));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return false;
            eh_update(&s->h, (char *)dst + got, (size_t)r);
            got += (size_t)r;
        }
    }
    s->pos += n;
    return true;
}

static bool src_zeros(ec_src *s, size_t n) {
    unsigned char b[EC_ALIGN];
    if (n > sizeof b || !src_read(s, b, n)) return false;
    return memcmp(b, zeros, n) == 0;
}

/* Reason of a key text mismatch: the first line that differs. */
static void key_mismatch(const char *got, size_t got_n, const char *want, char *out, size_t n) {
    const char *g = got, *w = want, *ge = got + got_n;
    while (g < ge && *w) {
        const char *gl = memchr(g, '\n', (size_t)(ge - g)), *wl = strchr(w, '\n');
        size_t glen = gl ? (size_t)(gl - g) : (size_t)(ge - g), wlen = wl ? (size_t)(wl - w) : strlen(w);
        if (glen != wlen || memcmp(g, w, glen)) {
            const char *eq = memchr(w, '=', wlen);
            int klen = eq ? (int)(eq - w) : (int)wlen;
            int gshow = glen > 120 ? 120 : (int)glen, wshow = wlen > 120 ? 120 : (int)wlen;
            /* strip the "key=" part of the file's line when it names the same key */
            const char *gv = g;
            if (eq && glen > (size_t)klen && memcmp(g, w, (size_t)klen + 1) == 0) gv += klen + 1, gshow -= klen + 1;
            if (gshow < 0) gshow = 0;
            snprintf(out, n, "other %.*s: the file has '%.*s', this load wants '%.*s'", klen, w, gshow, gv,
                     eq ? wshow - klen - 1 : wshow, eq ? eq + 1 : w);
            for (char *c = out; *c; c++)
                if ((unsigned char)*c < 32 || (unsigned char)*c > 126) *c = '?';
            return;
        }
        g += glen + (gl ? 1 : 0);
        w += wlen + (wl ? 1 : 0);
    }
    snprintf(out, n, "other key: the file's key text has another length");
}

static avo_status miss(avo_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static avo_status miss(avo_error *err, const char *fmt, ...) {
    char m[AVO_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    return avo_error_set(err, AVO_ERR_FORMAT, "%s", m);
}

/* Reads the whole file into arena a and the table; on failure the arena is rewound. */
static avo_status ec_read(ec_src *s, const char *key_text, avo_arena *a, ec_table *tab, avo_error *err) {
    avo_arena_mark mark = avo_arena_get_mark(a);
    const bool host = avo_backend_host_memory(a->be);
    eh_init(&s->h);
    unsigned char fix[EC_REC_FIXED];
    char *text = NULL;
    float *tmp = NULL;
    size_t tmp_n = 0;
    avo_status st = AVO_OK;
    if (!src_read(s, fix, 16)) {
        st = miss(err, "truncated: %llu bytes, shorter than the header", (unsigned long long)s->size);
        goto fail;
    }
    if (memcmp(fix, "AVENGINE", 8)) {
        st = miss(err, "not an engine file (no AVENGINE magic)");
        goto fail;
    }
    uint32_t version = get_u32(fix + 8), tlen = get_u32(fix + 12);
    if (version != AVO_ENGINE_FORMAT_VERSION) {
        st = miss(err, "engine format version %u, this build reads version %d", version, AVO_ENGINE_FORMAT_VERSION);
        goto fail;
    }
    if (tlen == 0 || tlen > EC_TEXT_MAX) {
        st = miss(err, "corrupt header: key text of %u bytes", tlen);
        goto fail;
    }
    text = malloc(tlen);
    if (!text) {
        st = avo_error_set(err, AVO_ERR_NO_MEMORY, "engine file: out of memory");
        goto fail;
    }
    if (!src_read(s, text, tlen)) {
        st = miss(err, "truncated in the header");
        goto fail;
    }
    if (tlen != strlen(key_text) || memcmp(text, key_text, tlen)) {
        char why[400];
        key_mismatch(text, tlen, key_text, why, sizeof why);
        st = miss(err, "%s", why);
        goto fail;
    }
    if (!src_zeros(s, pad_to(16 + tlen))) {
        st = miss(err, "corrupt header padding (or truncated)");
        goto fail;
    }
    for (;;) {
        if (!src_read(s, fix, 4)) {
            st = miss(err, "truncated after %lld tensors (no end record)", (long long)tab->n);
            goto fail;
        }
        if (memcmp(fix, "AEND", 4) == 0) break;
        if (memcmp(fix, "AREC", 4)) {
            st = miss(err, "corrupt: no record tag at byte %llu", (unsigned long long)(s->pos - 4));
            goto fail;
        }
        if (tab->n >= EC_MAX_RECORDS) {
            st = miss(err, "corrupt: more than %d tensors", EC_MAX_RECORDS);
            goto fail;
        }
        if (!src_read(s, fix + 4, EC_REC_FIXED - 4)) {
            st = miss(err, "truncated in tensor %lld", (long long)tab->n);
            goto fail;
        }
        unsigned nlen = get_u16(fix + 4), dtype = fix[6], ndim = fix[7];
        int64_t shape[AVO_TENSOR_MAX_DIMS];
        uint64_t numel = 1;
        bool ok = nlen >= 1 && nlen <= AVO_ENGINE_NAME_MAX && dtype == AVO_DTYPE_F32 && ndim <= AVO_TENSOR_MAX_DIMS;
        for (int i = 0; i < AVO_TENSOR_MAX_DIMS; i++) {
            shape[i] = (int64_t)get_u64(fix + 8 + 8 * i);
            if (i >= (int)ndim) ok = ok && shape[i] == 0;
            else if (shape[i] < 0 || shape[i] > (int64_t)1 << 40 || (shape[i] && numel > (UINT64_MAX >> 3) / (uint64_t)shape[i]))
                ok = false;
            else numel *= (uint64_t)shape[i];
        }
        uint64_t nbytes = get_u64(fix + 40);
        if (!ok || nbytes != numel * sizeof(float)) {
            st = miss(err, "corrupt record %lld (name length %u, dtype %u, rank %u, %llu bytes)", (long long)tab->n, nlen,
                      dtype, ndim, (unsigned long long)nbytes);
            goto fail;
        }
        char name[AVO_ENGINE_NAME_MAX + 1];
        if (!src_read(s, name, nlen)) {
            st = miss(err, "truncated in tensor %lld", (long long)tab->n);
            goto fail;
        }
        name[nlen] = 0;
        if (strlen(name) != nlen) {
            st = miss(err, "corrupt record %lld: NUL in its name", (long long)tab->n);
            goto fail;
        }
        if (!src_zeros(s, pad_to(EC_REC_FIXED + nlen))) {
            st = miss(err, "corrupt padding in record '%s' (or truncated)", name);
            goto fail;
        }
        if (nbytes > s->size - s->pos || s->size - s->pos - nbytes < EC_FOOTER) {
            st = miss(err, "truncated in tensor '%s'", name);
            goto fail;
        }
        avo_tensor t;
        if (host) { /* straight into the tensor */
            st = avo_tensor_new(a, AVO_DTYPE_F32, (int)ndim, shape, &t, err);
            if (st) goto fail;
            ok = src_read(s, t.data, (size_t)nbytes);
        } else { /* device memory: through a host buffer */
            if (numel > tmp_n) {
                float *p = realloc(tmp, (size_t)(numel ? numel : 1) * sizeof(float));
                if (!p) {
                    st = avo_error_set(err, AVO_ERR_NO_MEMORY, "engine file: out of memory");
                    goto fail;
                }
                tmp = p, tmp_n = numel;
            }
            ok = src_read(s, tmp, (size_t)nbytes);
            if (ok && (st = avo_tensor_from_host(a, (int)ndim, shape, tmp, &t, err))) goto fail;
        }
        if (!ok || !src_zeros(s, pad_to((size_t)nbytes))) {
            st = miss(err, "truncated in tensor '%s'", name);
            goto fail;
        }
        bool dup = false;
        if (!table_add(tab, name, &t, &dup)) {
            st = dup ? miss(err, "corrupt: tensor '%s' twice", name)
                     : avo_error_set(err, AVO_ERR_NO_MEMORY, "engine file: out of memory");
            goto fail;
        }
    }
    if (!src_read(s, fix + 4, 4)) {
        st = miss(err, "truncated in the end record");
        goto fail;
    }
    uint32_t count = get_u32(fix + 4);
    uint64_t sum = eh_final(&s->h);
    unsigned char cs[8];
    if (s->size - s->pos < 8) {
        st = miss(err, "truncated in the checksum");
        goto fail;
    }
    if (!src_read(s, cs, 8)) {
        st = miss(err, "truncated in the checksum");
        goto fail;
    }
    if ((int64_t)count != tab->n) {
        st = miss(err, "corrupt: the end record counts %u tensors, the file has %lld", count, (long long)tab->n);
        goto fail;
    }
    if (get_u64(cs) != sum) {
        st = miss(err, "checksum mismatch (file %016llx, contents %016llx): damaged", (unsigned long long)get_u64(cs),
                  (unsigned long long)sum);
        goto fail;
    }
    if (s->pos != s->size) {
        st = miss(err, "%llu bytes after the end record", (unsigned long long)(s->size - s->pos));
        goto fail;
    }
    free(text);
    free(tmp);
    return AVO_OK;
fail:
    free(text);
    free(tmp);
    table_clear(tab);
    avo_arena_rewind(a, mark);
    return st ? st : AVO_ERR_FORMAT;
}

avo_status avo_engine_read_memory(const void *data, size_t size, const char *key_text, avo_arena *a, int64_t *tensors,
                                  avo_error *err) {
    if ((!data && size) || !key_text || !a)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_engine_read_memory: NULL argument");
    ec_src s = {.fd = -1, .mem = data, .size = size};
    ec_table tab = {0};
    avo_status st = ec_read(&s, key_text, a, &tab, err);
    if (!st && tensors) *tensors = tab.n;
    table_clear(&tab);
    return st;
}

/* ---- the session ------------------------------------------------------------------------------ */

typedef enum ec_mode { EC_BUILD = 0, EC_REPLAY_PENDING, EC_REPLAY } ec_mode;

struct avo_engine_session {
    ec_mode mode;
    bool file_existed; /* an engine file was there at the start */
    bool caching;      /* building: the file is still being written */
    char reason[512];  /* why the file was rebuilt / not written */
    const char *dir;
    char path[1024], tmp[1100];
    char *key_text;
    avo_arena *a;
    ec_table tab;
    /* writer */
    FILE *f;
    eh_state h;
    uint64_t off;
    float *buf;
    size_t buf_n;
    int64_t tensors, bytes;
};

static void add_reason(avo_engine_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_reason(avo_engine_session *s, const char *fmt, ...) {
    size_t k = strlen(s->reason);
    if (k && k + 3 < sizeof s->reason) {
        memcpy(s->reason + k, "; ", 3);
        k += 2;
    }
    if (k + 1 >= sizeof s->reason) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->reason + k, sizeof s->reason - k, fmt, ap);
    va_end(ap);
}

static void w_abort(avo_engine_session *s) {
    if (s->f) {
        fclose(s->f);
        s->f = NULL;
        unlink(s->tmp);
    }
}

/* Stops writing (the load goes on without caching) and says why. */
static void w_stop(avo_engine_session *s, const char *what) {
    if (s->caching) add_reason(s, "not cached: %s", what);
    s->caching = false;
    w_abort(s);
}

static void w_bytes(avo_engine_session *s, const void *p, size_t n) {
    if (!s->caching || !s->f) return;
    if (n && fwrite(p, 1, n, s->f) != n) {
        char m[1200];
        snprintf(m, sizeof m, "writing %s failed: %s", s->tmp, strerror(errno));
        w_stop(s, m);
        return;
    }
    eh_update(&s->h, p, n);
    s->off += n;
}

static void w_open(avo_engine_session *s) {
    char m[1400];
    if (make_dirs(s->dir)) {
        snprintf(m, sizeof m, "cannot create the cache directory %s: %s", s->dir, strerror(errno));
        w_stop(s, m);
        return;
    }
    static unsigned serial;
    snprintf(s->tmp, sizeof s->tmp, "%s.tmp.%ld.%u", s->path, (long)getpid(), __atomic_fetch_add(&serial, 1, __ATOMIC_RELAXED));
    int fd = open(s->tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0 || !(s->f = fdopen(fd, "wb"))) {
        snprintf(m, sizeof m, "cannot write in the cache directory %s: %s", s->dir, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(s->tmp);
        }
        w_stop(s, m);
        return;
    }
    setvbuf(s->f, NULL, _IOFBF, 1 << 20);
    eh_init(&s->h);
    s->off = 0;
    unsigned char head[16];
    memcpy(head, "AVENGINE", 8);
    uint32_t tlen = (uint32_t)strlen(s->key_text);
    put_u32(head + 8, AVO_ENGINE_FORMAT_VERSION);
    put_u32(head + 12, tlen);
    w_bytes(s, head, 16);
    w_bytes(s, s->key_text, tlen);
    w_bytes(s, zeros, pad_to(s->off));
}

/* Footer, fsync, rename over the final name, fsync of the directory. */
static bool w_finish(avo_engine_session *s) {
    if (!s->caching || !s->f) return false;
    unsigned char end[8];
    memcpy(end, "AEND", 4);
    put_u32(end + 4, (uint32_t)s->tensors);
    w_bytes(s, end, 8);
    if (!s->caching) return false;
    unsigned char cs[8];
    put_u64(cs, eh_final(&s->h));
    char m[2400];
    if (fwrite(cs, 1, 8, s->f) != 8 || fflush(s->f) || fsync(fileno(s->f))) {
        snprintf(m, sizeof m, "writing %s failed: %s", s->tmp, strerror(errno));
        w_stop(s, m);
        return false;
    }
    int e = fclose(s->f);
    s->f = NULL;
    if (e || rename(s->tmp, s->path)) {
        snprintf(m, sizeof m, "cannot put %s in place: %s", s->path, strerror(errno));
        unlink(s->tmp);
        s->caching = true; /* so that w_stop records the reason */
        w_stop(s, m);
        return false;
    }
    int dfd = open(s->dir, O_RDONLY);
    if (dfd >= 0) { /* the rename itself survives a crash */
        fsync(dfd);
        close(dfd);
    }
    return true;
}

/* Reads the engine file into the arena; false with the reason when it cannot be used. */
static bool replay_open(avo_engine_session *s) {
    avo_error e;
    int fd = open(s->path, O_RDONLY);
    struct stat stt;
    if (fd < 0 || fstat(fd, &stt)) {
        add_reason(s, "%s: cannot read: %s", s->path, strerror(errno));
        if (fd >= 0) close(fd);
        return false;
    }
    ec_src src = {.fd = fd, .size = (uint64_t)stt.st_size};
    avo_status st = ec_read(&src, s->key_text, s->a, &s->tab, &e);
    close(fd);
    if (st) {
        add_reason(s, "%s: %s", s->path, e.message);
        return false;
    }
    s->tensors = s->tab.n;
    s->bytes = 0;
    for (int64_t i = 0; i < s->tab.n; i++) s->bytes += avo_tensor_numel(&s->tab.e[i].t) * (int64_t)sizeof(float);
    return true;
}

avo_status avo_engine_attach(avo_engine_session *s, avo_arena *weights, avo_error *err) {
    if (!s) return AVO_OK;
    if (!weights) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_engine_attach: NULL arena");
    s->a = weights;
    if (s->mode == EC_REPLAY_PENDING) {
        if (replay_open(s)) {
            s->mode = EC_REPLAY;
            return AVO_OK;
        }
        s->mode = EC_BUILD;
    }
    if (s->caching) w_open(s);
    return AVO_OK;
}

bool avo_engine_replaying(const avo_engine_session *s) { return s && s->mode == EC_REPLAY; }

avo_status avo_engine_take(avo_engine_session *s, const char *name, avo_tensor *out, avo_error *err) {
    if (!s || s->mode != EC_REPLAY || !name || !out)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_engine_take: not replaying an engine file");
    ec_entry *e = table_get(&s->tab, name);
    if (!e) return avo_error_set(err, AVO_ERR_NOT_FOUND, "the engine file has no tensor '%s'", name);
    if (e->taken) return avo_error_set(err, AVO_ERR_FORMAT, "the loader took tensor '%s' twice", name);
    e->taken = true;
    *out = e->t;
    return AVO_OK;
}

avo_status avo_engine_take_shaped(avo_engine_session *s, const char *name, int ndim, const int64_t *want,
                                  avo_tensor *out, avo_error *err) {
    avo_tensor t;
    avo_status st = avo_engine_take(s, name, &t, err);
    if (st) return st;
    bool ok = t.ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = want[i] < 0 || t.shape[i] == want[i];
    if (!ok)
        return avo_error_set(err, AVO_ERR_FORMAT, "the engine file's tensor '%s' has another shape than the loader expects",
                             name);
    *out = t;
    return AVO_OK;
}

avo_status avo_engine_put(avo_engine_session *s, const char *name, const avo_tensor *t, avo_error *err) {
    if (!s || s->mode != EC_BUILD || !s->caching || !s->f) return AVO_OK;
    if (!name || !t) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_engine_put: NULL argument");
    char m[600];
    size_t nlen = strlen(name);
    if (t->dtype != AVO_DTYPE_F32 || t->ndim < 0 || t->ndim > AVO_TENSOR_MAX_DIMS || nlen < 1 ||
        nlen > AVO_ENGINE_NAME_MAX) {
        snprintf(m, sizeof m, "tensor '%.300s' cannot be stored (dtype %d, rank %d, name of %zu bytes)", name,
                 (int)t->dtype, t->ndim, nlen);
        w_stop(s, m);
        return AVO_OK;
    }
    bool dup = false;
    if (!table_add(&s->tab, name, NULL, &dup)) {
        snprintf(m, sizeof m, dup ? "the loader gave tensor '%.300s' twice" : "out of memory at tensor '%.300s'", name);
        w_stop(s, m);
        return AVO_OK;
    }
    const int64_t numel = avo_tensor_numel(t);
    const uint64_t nbytes = (uint64_t)numel * sizeof(float);
    const float *data = t->data;
    if (!avo_backend_host_memory(s->a->be)) { /* weights in device memory: copied out once */
        if ((size_t)numel > s->buf_n) {
            float *p = realloc(s->buf, (size_t)(numel ? numel : 1) * sizeof(float));
            if (!p) {
                w_stop(s, "out of memory");
                return AVO_OK;
            }
            s->buf = p, s->buf_n = (size_t)numel;
        }
        avo_error e;
        if (avo_tensor_to_host(s->a, t, s->buf, numel, &e)) {
            snprintf(m, sizeof m, "reading tensor '%.200s' back: %.300s", name, e.message);
            w_stop(s, m);
            return AVO_OK;
        }
        data = s->buf;
    }
    unsigned char fix[EC_REC_FIXED] = {0};
    memcpy(fix, "AREC", 4);
    put_u16(fix + 4, (uint16_t)nlen);
    fix[6] = (unsigned char)AVO_DTYPE_F32;
    fix[7] = (unsigned char)t->ndim;
    for (int i = 0; i < t->ndim; i++) put_u64(fix + 8 + 8 * i, (uint64_t)t->shape[i]);
    put_u64(fix + 40, nbytes);
    w_bytes(s, fix, sizeof fix);
    w_bytes(s, name, nlen);
    w_bytes(s, zeros, pad_to(s->off));
    w_bytes(s, data, (size_t)nbytes);
    w_bytes(s, zeros, pad_to(s->off));
    if (s->caching) {
        s->tensors++;
        s->bytes += (int64_t)nbytes;
    }
    return AVO_OK;
}

/* ---- the key and the load driver ------------------------------------------------------------ */

/* The value of "key=" in a key text (len bytes), copied to out; false if absent. */
static bool text_value(const char *text, size_t len, const char *key, char *out, size_t n) {
    size_t kl = strlen(key);
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - text) : len;
        if (e - i > kl && memcmp(text + i, key, kl) == 0 && text[i + kl] == '=') {
            snprintf(out, n, "%.*s", (int)(e - i - kl - 1), text + i + kl + 1);
            return true;
        }
        i = e + 1;
    }
    return false;
}

/* Engine files in dir for the same model name, device, precision and profile as key text but
 * another key (the model file changed, or the format, library or loader): stale. Their paths go to
 * stale[] (up to max), the reason of the first to why. */
static int find_stale(const char *dir, const char *stem, const char *self, const char *key, char stale[][1024], int max,
                      char *why, size_t why_n) {
    static const char *const same[] = {"model", "device", "precision", "profile"};
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    size_t sl = strlen(stem), kl = strlen(key);
    struct dirent *e;
    while (n < max && (e = readdir(d))) {
        size_t el = strlen(e->d_name);
        if (el != sl + 1 + 16 + 6 || strncmp(e->d_name, stem, sl) || e->d_name[sl] != '-' ||
            strcmp(e->d_name + el - 6, ".aveng"))
            continue;
        char p[1024];
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p || strcmp(p, self) == 0) continue;
        FILE *f = fopen(p, "rb");
        unsigned char head[16];
        char text[EC_TEXT_MAX];
        size_t tl = 0;
        bool ok = f && fread(head, 1, 16, f) == 16 && memcmp(head, "AVENGINE", 8) == 0 &&
                  (tl = get_u32(head + 12)) > 0 && tl <= sizeof text && fread(text, 1, tl, f) == tl;
        if (f) fclose(f);
        for (size_t i = 0; ok && i < sizeof same / sizeof same[0]; i++) {
            char a[200], b[200];
            ok = text_value(text, tl, same[i], a, sizeof a) && text_value(key, kl, same[i], b, sizeof b) &&
                 strcmp(a, b) == 0;
        }
        if (!ok) continue;
        if (!n) key_mismatch(text, tl, key, why, why_n);
        snprintf(stale[n++], 1024, "%s", p);
    }
    closedir(d);
    return n;
}

/* src without control characters (one key line each). */
static void clean_copy(char *dst, size_t n, const char *src) {
    size_t k = 0;
    for (; src && *src && k + 1 < n; src++) dst[k++] = (unsigned char)*src < 32 || *src == 127 ? '?' : *src;
    dst[k] = 0;
}

static void reset_session(avo_engine_session *s) {
    w_abort(s);
    table_clear(&s->tab);
    s->a = NULL;
    s->tensors = s->bytes = 0;
}

avo_status avo_engine_load(const avo_engine_request *req, const char *model_path, const char *extra_path,
                           const char *loader_tag, avo_backend *be, avo_engine_loader load, void (*unload)(void *user),
                           void *user, avo_engine_result *res, avo_error *err) {
    avo_engine_result local;
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    if (!load || !model_path || !be) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_engine_load: NULL argument");
    if (!req || !req->cache) {
        res->outcome = AVO_ENGINE_OFF;
        return load(user, NULL, err);
    }
    /* the key: every byte of the model (and config) file, device, precision, profile, code */
    uint64_t mh = 0, xh = 0;
    avo_error e;
    avo_status hst = avo_engine_file_hash(model_path, &mh, &e);
    if (!hst && extra_path) hst = avo_engine_file_hash(extra_path, &xh, &e);
    if (hst) { /* the loader will report the missing file itself */
        res->outcome = AVO_ENGINE_UNCACHED;
        snprintf(res->reason, sizeof res->reason, "not cached: cannot hash the model: %.400s", e.message);
        return load(user, NULL, err);
    }
    const char *bname = avo_backend_name(be), *dash = strchr(bname, '-');
    char device[160], precision[40], profile[160], tag[80], model[1024], hashes[40];
    char gpu[160];
    if (req->device) clean_copy(device, sizeof device, req->device);
    else if (avo_backend_cuda_device_key(be, gpu, sizeof gpu, NULL) == AVO_OK) clean_copy(device, sizeof device, gpu);
    else snprintf(device, sizeof device, "%.*s", dash ? (int)(dash - bname) : (int)strlen(bname), bname);
    clean_copy(precision, sizeof precision, req->precision ? req->precision : dash ? dash + 1 : "fp32");
    clean_copy(profile, sizeof profile, req->profile ? req->profile : "default");
    clean_copy(tag, sizeof tag, loader_tag ? loader_tag : "?");
    const char *base = strrchr(model_path, '/');
    base = base ? base + 1 : model_path;
    /* the model by its resolved path: two models of one name in two folders (so-vits' G_*.pth) are
     * two keys, and a file at this path with other contents makes the old engine file stale */
    char *real = realpath(model_path, NULL);
    clean_copy(model, sizeof model, real ? real : model_path);
    free(real);
    if (extra_path)
        snprintf(hashes, sizeof hashes, "%016llx+%016llx", (unsigned long long)mh, (unsigned long long)xh);
    else
        snprintf(hashes, sizeof hashes, "%016llx", (unsigned long long)mh);
    char text[EC_TEXT_MAX];
    int tl = snprintf(text, sizeof text,
                      "autovoice engine\nformat=%d\nlibrary=%s\nloader=%s\nmodel=%s\nmodel_hash=%s\ndevice=%s\n"
                      "precision=%s\nprofile=%s\n",
                      AVO_ENGINE_FORMAT_VERSION, AVO_VERSION_STRING, tag, model, hashes, device, precision, profile);
    if (tl < 0 || tl >= (int)sizeof text) tl = (int)sizeof text - 1;
    /* file name: the model's base name without its extension, [A-Za-z0-9._-] only */
    char stem[72];
    size_t k = 0;
    for (const char *p = base; *p && k + 1 < sizeof stem; p++) {
        if (*p == '.' && !strchr(p + 1, '.')) break;
        stem[k++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
                            *p == '_' || *p == '-'
                        ? *p
                        : '_';
    }
    stem[k] = 0;
    res->key = avo_engine_hash(text, (size_t)tl);

    avo_engine_session s;
    memset(&s, 0, sizeof s);
    s.dir = req->cache->dir;
    s.key_text = text;
    s.caching = true;
    snprintf(s.path, sizeof s.path, "%s/%s-%016llx.aveng", s.dir, k ? stem : "model", (unsigned long long)res->key);
    snprintf(res->path, sizeof res->path, "%s", s.path);
    s.file_existed = access(s.path, F_OK) == 0;
    s.mode = s.file_existed ? EC_REPLAY_PENDING : EC_BUILD;
    /* no file for this key: one for an older model file (or build) is stale, replaced below */
    char stale[4][1024], stale_why[400] = "";
    int n_stale = s.file_existed ? 0 : find_stale(s.dir, k ? stem : "model", s.path, text, stale, 4, stale_why,
                                                  sizeof stale_why);

    avo_status st = load(user, &s, err);
    if (s.mode == EC_REPLAY) {
        int64_t unused = 0;
        for (int64_t i = 0; !st && i < s.tab.n; i++) unused += !s.tab.e[i].taken;
        if (st || unused) { /* the file does not fit this loader: build instead */
            if (st) add_reason(&s, "%s does not fit the loader: %.300s", s.path, err ? err->message : "error");
            else add_reason(&s, "%s has %lld tensors the loader did not ask for", s.path, (long long)unused);
            if (unload) unload(user);
            reset_session(&s);
            s.mode = EC_BUILD;
            st = load(user, &s, err);
        }
    }
    if (st) {
        reset_session(&s);
        free(s.buf);
        return st;
    }
    if (s.mode == EC_REPLAY) {
        res->outcome = AVO_ENGINE_HIT;
    } else if (s.caching && s.f && w_finish(&s)) {
        res->outcome = s.file_existed || n_stale ? AVO_ENGINE_REBUILT : AVO_ENGINE_BUILT;
        if (n_stale) add_reason(&s, "replaces %s (%s)", stale[0], stale_why);
        for (int i = 0; i < n_stale; i++) unlink(stale[i]);
    } else {
        if (s.caching) add_reason(&s, "not cached: the loader did not attach its weights");
        res->outcome = AVO_ENGINE_UNCACHED;
    }
    snprintf(res->reason, sizeof res->reason, "%s", s.reason);
    res->tensors = s.tensors;
    res->bytes = s.bytes;
    reset_session(&s);
    free(s.buf);
    return AVO_OK;
}
