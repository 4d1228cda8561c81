/* Checkpoint reader: format detection, the value tree, tensor listing and float32 conversion. */
#include "models/checkpoint_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- nodes -------------------------------------------------------------------------------- */

#define CHUNK_NODES 1024

struct node_chunk {
    node_chunk *next;
    size_t used;
    avo_ckpt_value nodes[CHUNK_NODES];
};

avo_ckpt_value *ckpt_node_new(avo_ckpt *c, int kind) {
    if (c->node_count >= CKPT_MAX_NODES) return NULL;
    if (!c->chunks || c->chunks->used == CHUNK_NODES) {
        node_chunk *ch = calloc(1, sizeof *ch);
        if (!ch) return NULL;
        ch->next = c->chunks;
        c->chunks = ch;
    }
    avo_ckpt_value *v = &c->chunks->nodes[c->chunks->used++];
    c->node_count++;
    v->kind = kind;
    return v;
}

bool ckpt_node_push(avo_ckpt_value *v, avo_ckpt_value *key, avo_ckpt_value *item) {
    if (v->count == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        avo_ckpt_value **it = realloc(v->items, cap * sizeof *it);
        if (!it) return false;
        v->items = it;
        if (v->kind == AVO_CKPT_DICT) {
            avo_ckpt_value **ks = realloc(v->keys, cap * sizeof *ks);
            if (!ks) return false;
            v->keys = ks;
        }
        v->cap = cap;
    }
    if (v->kind == AVO_CKPT_DICT) v->keys[v->count] = key;
    v->items[v->count++] = item;
    return true;
}

static void free_nodes(avo_ckpt *c) {
    node_chunk *ch = c->chunks;
    while (ch) {
        for (size_t i = 0; i < ch->used; i++) {
            avo_ckpt_value *v = &ch->nodes[i];
            free(v->str);
            free(v->items);
            free(v->keys);
            if (v->tensor) free((char *)v->tensor->name);
            free(v->tensor);
        }
        node_chunk *next = ch->next;
        free(ch);
        ch = next;
    }
    c->chunks = NULL;
}

/* ---- dtypes, storages, tensor geometry ---------------------------------------------------- */

const char *avo_dtype_name(avo_dtype d) {
    static const char *names[] = {"f32", "f16", "bf16", "f64", "i64", "i32", "i16", "i8", "u8", "bool"};
    return (unsigned)d < sizeof names / sizeof names[0] ? names[d] : "?";
}

size_t avo_dtype_size(avo_dtype d) {
    static const size_t sizes[] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};
    return (unsigned)d < sizeof sizes / sizeof sizes[0] ? sizes[d] : 0;
}

int ckpt_storage_add(avo_ckpt *c, const char *key, avo_dtype dtype, int64_t numel, avo_error *err) {
    size_t klen = strlen(key);
    if (klen == 0 || klen > CKPT_MAX_NAME) {
        avo_error_set(err, AVO_ERR_FORMAT, "%s: storage key of %zu bytes is not valid", c->name, klen);
        return -1;
    }
    if (numel < 0 || numel > CKPT_MAX_NUMEL) {
        avo_error_set(err, AVO_ERR_FORMAT, "%s: storage '%s' claims %lld elements, more than the %lld allowed",
                      c->name, key, (long long)numel, (long long)CKPT_MAX_NUMEL);
        return -1;
    }
    for (size_t i = 0; i < c->storage_count; i++) {
        if (strcmp(c->storages[i].key, key)) continue;
        if (c->storages[i].dtype != dtype || c->storages[i].numel != numel) {
            avo_error_set(err, AVO_ERR_FORMAT,
                          "%s: storage '%s' is referenced with two different types or sizes (corrupt file)",
                          c->name, key);
            return -1;
        }
        return (int)i;
    }
    if (c->storage_count >= CKPT_MAX_STORAGES) {
        avo_error_set(err, AVO_ERR_FORMAT, "%s: more than %d storages", c->name, CKPT_MAX_STORAGES);
        return -1;
    }
    if (c->storage_count == c->storage_cap) {
        size_t cap = c->storage_cap ? c->storage_cap * 2 : 64;
        ckpt_storage *s = realloc(c->storages, cap * sizeof *s);
        if (!s) {
            avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", c->name);
            return -1;
        }
        c->storages = s;
        c->storage_cap = cap;
    }
    ckpt_storage *s = &c->storages[c->storage_count];
    memset(s, 0, sizeof *s);
    s->key = strdup(key);
    if (!s->key) {
        avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", c->name);
        return -1;
    }
    s->dtype = dtype;
    s->numel = numel;
    s->zip_index = -1;
    return (int)c->storage_count++;
}

avo_status ckpt_tensor_check(const avo_ckpt *c, avo_ckpt_tensor *t, avo_error *err) {
    const ckpt_storage *s = &c->storages[t->storage];
    int64_t numel = 1, last = t->storage_offset;
    if (t->ndim < 0 || t->ndim > AVO_CKPT_MAX_DIMS)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: tensor with %d dimensions (at most %d supported)", c->name,
                             t->ndim, AVO_CKPT_MAX_DIMS);
    if (t->storage_offset < 0) goto bad;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0 || t->strides[d] < 0) goto bad;
        if (__builtin_mul_overflow(numel, t->shape[d], &numel) || numel > CKPT_MAX_NUMEL) goto bad;
    }
    if (numel > 0) {
        for (int d = 0; d < t->ndim; d++) {
            int64_t span;
            if (__builtin_mul_overflow(t->shape[d] - 1, t->strides[d], &span) ||
                __builtin_add_overflow(last, span, &last))
                goto bad;
        }
        if (last >= s->numel) goto bad;
    }
    t->numel = numel;
    return AVO_OK;
bad:
    return avo_error_set(err, AVO_ERR_FORMAT,
                         "%s: a tensor's shape, strides or offset reach outside its storage '%s' of %lld "
                         "elements (corrupt file)",
                         c->name, s->key, (long long)s->numel);
}

/* ---- open / free -------------------------------------------------------------------------- */

static const uint8_t k_legacy_magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                         0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

static avo_status zip_error_status(avo_ckpt *c, int zerr, avo_error *err) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, zerr);
    avo_status s = avo_error_set(err, zerr == ZIP_ER_MEMORY ? AVO_ERR_NO_MEMORY : AVO_ERR_FORMAT,
                                 "%s: not a readable zip archive (%s); the file is truncated or corrupt, "
                                 "download or export it again",
                                 c->name, zip_error_strerror(&ze));
    zip_error_fini(&ze);
    return s;
}

/* Decides the format from the first bytes and loads the tree. */
static avo_status load(avo_ckpt *c, const uint8_t *head, size_t nhead, uint64_t file_size, const char *path,
                       avo_error *err) {
    if (nhead >= 4 && !memcmp(head, "PK\x03\x04", 4)) {
        int zerr = 0;
        if (path) {
            c->zip = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
        } else {
            zip_error_t ze;
            zip_error_init(&ze);
            c->zsrc = zip_source_buffer_create(c->mem, c->mem_size, 0, &ze);
            if (c->zsrc) {
                c->zip = zip_open_from_source(c->zsrc, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
                if (!c->zip) {
                    zip_source_free(c->zsrc);
                }
                c->zsrc = NULL; /* owned by the archive once opened */
            }
            zerr = zip_error_code_zip(&ze);
            zip_error_fini(&ze);
        }
        if (!c->zip) return zip_error_status(c, zerr, err);
        c->format = "pth";
        c->source = STORE_ZIP;
        return ckpt_zip_load(c, err);
    }
    if (nhead >= sizeof k_legacy_magic && !memcmp(head, k_legacy_magic, sizeof k_legacy_magic))
        return avo_error_set(err, AVO_ERR_UNSUPPORTED,
                             "%s uses the legacy (pre-1.6) torch serialization format, which is not supported: "
                             "convert it in Python with torch.save(torch.load(old_path), new_path) using "
                             "torch.save's default settings (zip format), or export it as .safetensors",
                             c->name);
    if (nhead >= 2 && head[0] == 0x80 && head[1] <= 5)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED,
                             "%s is a bare pickle, not a torch.save checkpoint: re-save it with torch.save "
                             "(default settings) or as .safetensors",
                             c->name);
    if (nhead >= 9 && head[8] == '{') {
        c->format = "safetensors";
        return ckpt_safetensors_load(c, file_size, err);
    }
    return avo_error_set(err, AVO_ERR_FORMAT,
                         "%s is neither a torch checkpoint (zip) nor a .safetensors file (wrong magic bytes)",
                         c->name);
}

static avo_ckpt *ckpt_new(const char *name) {
    avo_ckpt *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->fd = -1;
    c->name = strdup(name && *name ? name : "checkpoint");
    if (!c->name) {
        free(c);
        return NULL;
    }
    return c;
}

static avo_status walk_tree(avo_ckpt *c, avo_error *err);

avo_status avo_ckpt_open(const char *path, avo_ckpt **out, avo_error *err) {
    if (!path || !out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_ckpt_open: NULL argument");
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return avo_error_set(err, errno == ENOENT ? AVO_ERR_NOT_FOUND : AVO_ERR_IO, "cannot open checkpoint %s: %s",
                             path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return avo_error_set(err, AVO_ERR_IO, "cannot open checkpoint %s: not a regular file", path);
    avo_ckpt *c = ckpt_new(path);
    if (!c) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory opening %s", path);
    c->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (c->fd < 0) {
        avo_status s = avo_error_set(err, AVO_ERR_IO, "cannot open checkpoint %s: %s", path, strerror(errno));
        avo_ckpt_free(c);
        return s;
    }
    c->source = STORE_FILE;
    uint8_t head[16] = {0};
    ssize_t n = pread(c->fd, head, sizeof head, 0);
    if (n < 0) n = 0;
    avo_status s = load(c, head, (size_t)n, (uint64_t)st.st_size, path, err);
    if (s == AVO_OK) s = walk_tree(c, err);
    if (s != AVO_OK) {
        avo_ckpt_free(c);
        return s;
    }
    *out = c;
    return AVO_OK;
}

avo_status avo_ckpt_open_memory(const void *data, size_t size, const char *name, avo_ckpt **out,
                                avo_error *err) {
    if (!out || (!data && size)) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_ckpt_open_memory: NULL argument");
    *out = NULL;
    avo_ckpt *c = ckpt_new(name);
    if (!c) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory opening %s", name ? name : "checkpoint");
    c->source = STORE_MEMORY;
    c->mem = data;
    c->mem_size = size;
    avo_status s = load(c, data, size < 16 ? size : 16, size, NULL, err);
    if (s == AVO_OK) s = walk_tree(c, err);
    if (s != AVO_OK) {
        avo_ckpt_free(c);
        return s;
    }
    *out = c;
    return AVO_OK;
}

avo_status ckpt_parse_pickle_bytes(const uint8_t *data, size_t size, avo_error *err) {
    avo_ckpt *c = ckpt_new("pickle");
    if (!c) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    avo_status s = ckpt_pickle_parse(c, data, size, &c->root, err);
    if (s == AVO_OK) s = walk_tree(c, err);
    avo_ckpt_free(c);
    return s;
}

void avo_ckpt_free(avo_ckpt *c) {
    if (!c) return;
    if (c->zip) zip_discard(c->zip);
    if (c->fd >= 0) close(c->fd);
    free_nodes(c);
    for (size_t i = 0; i < c->storage_count; i++) free(c->storages[i].key);
    free(c->storages);
    free(c->tensors);
    free(c->name);
    free(c);
}

const char *avo_ckpt_format(const avo_ckpt *c) { return c && c->format ? c->format : "?"; }
const avo_ckpt_value *avo_ckpt_root(const avo_ckpt *c) { return c ? c->root : NULL; }

/* ---- naming walk -------------------------------------------------------------------------- */

typedef struct {
    avo_ckpt *c;
    char path[CKPT_MAX_NAME];
    size_t cap;
    avo_error *err;
} walker;

/* Text of a dict key for paths: strings as they are, ints in decimal, other kinds skipped. */
static bool key_text(const avo_ckpt_value *k, char *buf, size_t n, const char **out) {
    if (!k) return false;
    if (k->kind == AVO_CKPT_STRING) {
        *out = k->str;
        return true;
    }
    if (k->kind == AVO_CKPT_INT) {
        snprintf(buf, n, "%lld", (long long)k->i);
        *out = buf;
        return true;
    }
    return false;
}

static avo_status walk(walker *w, avo_ckpt_value *v, size_t plen, int depth) {
    if (!v || v->visited) return AVO_OK;
    if (depth > CKPT_MAX_DEPTH)
        return avo_error_set(w->err, AVO_ERR_FORMAT,
                             "%s: values nested deeper than %d levels (corrupt or hostile checkpoint)", w->c->name,
                             CKPT_MAX_DEPTH);
    v->visited = 1;
    if (v->kind == AVO_CKPT_TENSOR) {
        if (w->c->tensor_count == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 256;
            avo_ckpt_tensor **t = realloc(w->c->tensors, cap * sizeof *t);
            if (!t) return avo_error_set(w->err, AVO_ERR_NO_MEMORY, "%s: out of memory", w->c->name);
            w->c->tensors = t;
            w->cap = cap;
        }
        v->tensor->name = strdup(w->path);
        if (!v->tensor->name) return avo_error_set(w->err, AVO_ERR_NO_MEMORY, "%s: out of memory", w->c->name);
        w->c->tensors[w->c->tensor_count++] = v->tensor;
        return AVO_OK;
    }
    avo_ckpt_value *children = v;
    if (v->kind == AVO_CKPT_OBJECT) children = v->fields;
    if (!children || !(children->kind == AVO_CKPT_DICT || children->kind == AVO_CKPT_LIST ||
                       children->kind == AVO_CKPT_TUPLE))
        return AVO_OK;
    if (children != v) children->visited = 1;
    for (size_t i = 0; i < children->count; i++) {
        char num[32];
        const char *seg = num;
        if (children->kind == AVO_CKPT_DICT) {
            if (!key_text(children->keys[i], num, sizeof num, &seg)) seg = "?";
        } else {
            snprintf(num, sizeof num, "%zu", i);
        }
        size_t n = strlen(seg);
        size_t need = plen + (plen ? 1 : 0) + n;
        if (need >= sizeof w->path) {
            /* Absurdly long names are cut; the tensor stays reachable by index. */
            n = 0;
            need = plen;
        }
        size_t at = plen;
        if (plen && n) w->path[at++] = '.';
        memcpy(w->path + at, seg, n);
        w->path[at + n] = '\0';
        avo_status s = walk(w, children->items[i], at + n, depth + 1);
        w->path[plen] = '\0';
        if (s != AVO_OK) return s;
        (void)need;
    }
    return AVO_OK;
}

static avo_status walk_tree(avo_ckpt *c, avo_error *err) {
    walker *w = calloc(1, sizeof *w);
    if (!w) return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", c->name);
    w->c = c;
    w->err = err;
    avo_status s = walk(w, c->root, 0, 0);
    free(w);
    return s;
}

size_t avo_ckpt_tensor_count(const avo_ckpt *c) { return c ? c->tensor_count : 0; }

const avo_ckpt_tensor *avo_ckpt_tensor_at(const avo_ckpt *c, size_t i) {
    return c && i < c->tensor_count ? c->tensors[i] : NULL;
}

/* ---- lookup ------------------------------------------------------------------------------- */

static bool seg_equals(const avo_ckpt_value *k, const char *s, size_t n) {
    char buf[32];
    const char *t;
    if (!key_text(k, buf, sizeof buf, &t)) return false;
    size_t tl = k->kind == AVO_CKPT_STRING ? k->len : strlen(t);
    return tl == n && !memcmp(t, s, n);
}

static const avo_ckpt_value *lookup(const avo_ckpt_value *v, const char *p, size_t n, int *budget) {
    if (n == 0) return v;
    if (!v || --*budget < 0) return NULL;
    if (v->kind == AVO_CKPT_OBJECT) return lookup(v->fields, p, n, budget);
    if (v->kind == AVO_CKPT_LIST || v->kind == AVO_CKPT_TUPLE) {
        const char *dot = memchr(p, '.', n);
        size_t sl = dot ? (size_t)(dot - p) : n;
        if (sl == 0 || sl > 18) return NULL;
        size_t idx = 0;
        for (size_t i = 0; i < sl; i++) {
            if (p[i] < '0' || p[i] > '9') return NULL;
            idx = idx * 10 + (size_t)(p[i] - '0');
        }
        if (idx >= v->count) return NULL;
        return dot ? lookup(v->items[idx], dot + 1, n - sl - 1, budget) : v->items[idx];
    }
    if (v->kind != AVO_CKPT_DICT) return NULL;
    /* Longest key first: "enc_p.encoder.attn_layers.0.conv_q.weight" is usually one key.
     * Keys are scanned from the end so a repeated key gives its last value, as in Python. */
    for (size_t sl = n;; sl--) {
        if (sl == n || p[sl] == '.') {
            for (size_t i = v->count; i-- > 0;) {
                if (!seg_equals(v->keys[i], p, sl)) continue;
                if (sl == n) return v->items[i];
                const avo_ckpt_value *r = lookup(v->items[i], p + sl + 1, n - sl - 1, budget);
                if (r) return r;
            }
        }
        if (sl == 0) break;
    }
    return NULL;
}

const avo_ckpt_value *avo_ckpt_value_lookup(const avo_ckpt_value *v, const char *path) {
    if (!v || !path) return NULL;
    int budget = 10000; /* bounds backtracking on hostile key sets */
    return lookup(v, path, strlen(path), &budget);
}

const avo_ckpt_value *avo_ckpt_lookup(const avo_ckpt *c, const char *path) {
    return c ? avo_ckpt_value_lookup(c->root, path) : NULL;
}

static avo_status get_kind(const avo_ckpt *c, const char *path, const avo_ckpt_value **v, const char *want,
                           bool ok_fn(const avo_ckpt_value *), avo_error *err) {
    if (!c || !path) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "checkpoint lookup: NULL argument");
    *v = avo_ckpt_lookup(c, path);
    if (!*v)
        return avo_error_set(err, AVO_ERR_NOT_FOUND, "%s has no '%s' (is it the right kind of model file?)", c->name,
                             path);
    if (!ok_fn(*v))
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: '%s' is a %s, expected %s", c->name, path,
                             avo_ckpt_kind_name(avo_ckpt_value_kind(*v)), want);
    return AVO_OK;
}

static bool is_intlike(const avo_ckpt_value *v) { return v->kind == AVO_CKPT_INT || v->kind == AVO_CKPT_BOOL; }
static bool is_number(const avo_ckpt_value *v) { return is_intlike(v) || v->kind == AVO_CKPT_FLOAT; }
static bool is_string(const avo_ckpt_value *v) { return v->kind == AVO_CKPT_STRING; }
static bool is_tensor(const avo_ckpt_value *v) { return v->kind == AVO_CKPT_TENSOR; }

avo_status avo_ckpt_get_int(const avo_ckpt *c, const char *path, int64_t *out, avo_error *err) {
    const avo_ckpt_value *v;
    avo_status s = get_kind(c, path, &v, "an integer", is_intlike, err);
    if (s == AVO_OK) *out = v->i;
    return s;
}

avo_status avo_ckpt_get_float(const avo_ckpt *c, const char *path, double *out, avo_error *err) {
    const avo_ckpt_value *v;
    avo_status s = get_kind(c, path, &v, "a number", is_number, err);
    if (s == AVO_OK) *out = avo_ckpt_value_float(v);
    return s;
}

avo_status avo_ckpt_get_string(const avo_ckpt *c, const char *path, const char **out, avo_error *err) {
    const avo_ckpt_value *v;
    avo_status s = get_kind(c, path, &v, "a string", is_string, err);
    if (s == AVO_OK) *out = v->str;
    return s;
}

avo_status avo_ckpt_get_tensor(const avo_ckpt *c, const char *path, const avo_ckpt_tensor **out,
                               avo_error *err) {
    const avo_ckpt_value *v;
    avo_status s = get_kind(c, path, &v, "a tensor", is_tensor, err);
    if (s == AVO_OK) *out = v->tensor;
    return s;
}

/* ---- accessors ---------------------------------------------------------------------------- */

avo_ckpt_kind avo_ckpt_value_kind(const avo_ckpt_value *v) {
    if (!v) return AVO_CKPT_NONE;
    return v->kind >= CK_INTERNAL ? AVO_CKPT_OBJECT : (avo_ckpt_kind)v->kind;
}

const char *avo_ckpt_kind_name(avo_ckpt_kind k) {
    static const char *names[] = {"none", "bool", "int",  "float",  "string", "bytes",
                                  "list", "tuple", "dict", "tensor", "object"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

bool avo_ckpt_value_bool(const avo_ckpt_value *v) { return v && is_intlike(v) && v->i != 0; }
int64_t avo_ckpt_value_int(const avo_ckpt_value *v) { return v && is_intlike(v) ? v->i : 0; }

double avo_ckpt_value_float(const avo_ckpt_value *v) {
    if (!v) return 0;
    if (v->kind == AVO_CKPT_FLOAT) return v->f;
    return is_intlike(v) ? (double)v->i : 0;
}

const char *avo_ckpt_value_string(const avo_ckpt_value *v) {
    if (!v) return NULL;
    if (v->kind == AVO_CKPT_STRING || v->kind == AVO_CKPT_BYTES) return v->str;
    if (v->kind == AVO_CKPT_OBJECT) return v->str;
    if (v->kind == CK_STORAGE) return "torch.storage";
    if (v->kind == CK_NPDTYPE) return "numpy.dtype";
    return NULL;
}

size_t avo_ckpt_value_size(const avo_ckpt_value *v) {
    return v && (v->kind == AVO_CKPT_STRING || v->kind == AVO_CKPT_BYTES) ? v->len : 0;
}

size_t avo_ckpt_value_count(const avo_ckpt_value *v) {
    return v && (v->kind == AVO_CKPT_LIST || v->kind == AVO_CKPT_TUPLE || v->kind == AVO_CKPT_DICT) ? v->count : 0;
}

const avo_ckpt_value *avo_ckpt_value_item(const avo_ckpt_value *v, size_t i) {
    return i < avo_ckpt_value_count(v) ? v->items[i] : NULL;
}

const avo_ckpt_value *avo_ckpt_value_key(const avo_ckpt_value *v, size_t i) {
    return v && v->kind == AVO_CKPT_DICT && i < v->count ? v->keys[i] : NULL;
}

const avo_ckpt_value *avo_ckpt_value_fields(const avo_ckpt_value *v) {
    return v && v->kind == AVO_CKPT_OBJECT ? v->fields : NULL;
}

const avo_ckpt_tensor *avo_ckpt_value_tensor(const avo_ckpt_value *v) {
    return v && v->kind == AVO_CKPT_TENSOR ? v->tensor : NULL;
}

/* ---- reading tensors ---------------------------------------------------------------------- */

avo_status ckpt_read_raw(avo_ckpt *c, uint64_t off, size_t nbytes, void *dst, avo_error *err) {
    if (c->source == STORE_MEMORY) {
        if (off > c->mem_size || nbytes > c->mem_size - off)
            return avo_error_set(err, AVO_ERR_FORMAT, "%s: data range past the end of the file", c->name);
        memcpy(dst, c->mem + off, nbytes);
        return AVO_OK;
    }
    uint8_t *d = dst;
    while (nbytes) {
        ssize_t n = pread(c->fd, d, nbytes, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            return avo_error_set(err, AVO_ERR_IO, "%s: cannot read %zu bytes at offset %llu: %s", c->name, nbytes,
                                 (unsigned long long)off, n < 0 ? strerror(errno) : "file is truncated");
        d += n;
        off += (uint64_t)n;
        nbytes -= (size_t)n;
    }
    return AVO_OK;
}

avo_status ckpt_read_bytes(avo_ckpt *c, const ckpt_storage *s, uint64_t off, size_t nbytes, void *dst,
                           avo_error *err) {
    if (c->source != STORE_ZIP) return ckpt_read_raw(c, s->offset + off, nbytes, dst, err);
    zip_file_t *zf = zip_fopen_index(c->zip, (zip_uint64_t)s->zip_index, 0);
    if (!zf)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: cannot open storage '%s': %s", c->name, s->key,
                             zip_strerror(c->zip));
    avo_status st = AVO_OK;
    if (off && zip_fseek(zf, (zip_int64_t)off, SEEK_SET) != 0) {
        /* Compressed entries cannot seek: read and drop the prefix. */
        uint8_t junk[65536];
        uint64_t left = off;
        while (left && st == AVO_OK) {
            zip_uint64_t want = left < sizeof junk ? left : sizeof junk;
            zip_int64_t got = zip_fread(zf, junk, want);
            if (got != (zip_int64_t)want)
                st = avo_error_set(err, AVO_ERR_FORMAT, "%s: storage '%s' is truncated", c->name, s->key);
            left -= want;
        }
    }
    uint8_t *d = dst;
    while (nbytes && st == AVO_OK) {
        zip_int64_t got = zip_fread(zf, d, nbytes);
        if (got <= 0)
            st = avo_error_set(err, AVO_ERR_FORMAT, "%s: storage '%s' is truncated or corrupt (%s)", c->name, s->key,
                               got < 0 ? zip_file_strerror(zf) : "short read");
        else {
            d += got;
            nbytes -= (size_t)got;
        }
    }
    zip_fclose(zf);
    return st;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* One element of raw little-endian storage as float. */
static float elem_to_float(const uint8_t *p, avo_dtype d) {
    switch (d) {
    case AVO_DTYPE_F32: {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    case AVO_DTYPE_F16: return half_to_float((uint16_t)(p[0] | p[1] << 8));
    case AVO_DTYPE_BF16: {
        uint32_t bits = (uint32_t)(p[0] | p[1] << 8) << 16;
        float f;
        memcpy(&f, &bits, 4);
        return f;
    }
    case AVO_DTYPE_F64: {
        double x;
        memcpy(&x, p, 8);
        return (float)x;
    }
    case AVO_DTYPE_I64: {
        int64_t x;
        memcpy(&x, p, 8);
        return (float)x;
    }
    case AVO_DTYPE_I32: {
        int32_t x;
        memcpy(&x, p, 4);
        return (float)x;
    }
    case AVO_DTYPE_I16: {
        int16_t x;
        memcpy(&x, p, 2);
        return (float)x;
    }
    case AVO_DTYPE_I8: return (float)(int8_t)p[0];
    case AVO_DTYPE_U8: return (float)p[0];
    case AVO_DTYPE_BOOL: return p[0] ? 1.0f : 0.0f;
    }
    return 0;
}

static void swap_bytes(uint8_t *p, size_t n, size_t es) {
    if (es < 2) return;
    for (size_t i = 0; i + es <= n; i += es)
        for (size_t a = 0, b = es - 1; a < b; a++, b--) {
            uint8_t t = p[i + a];
            p[i + a] = p[i + b];
            p[i + b] = t;
        }
}

/* Half to float without branches: shifting exponent+mantissa into place and scaling by 2^112
 * rebiases normals and turns subnormals into exact normals; inf/NaN are selected separately. */
static inline uint32_t half_bits_fast(uint32_t h) {
    uint32_t em = h & 0x7fffu, bits = em << 13;
    float f;
    memcpy(&f, &bits, 4);
    f *= 0x1p112f;
    uint32_t out;
    memcpy(&out, &f, 4);
    out = em >= 0x7c00u ? 0x7f800000u | ((em & 0x3ffu) << 13) : out;
    return out | ((h & 0x8000u) << 16);
}

/* Contiguous conversion loops kept simple so they vectorise. */
static void convert_run(const uint8_t *src, avo_dtype d, float *dst, int64_t n) {
    if (d == AVO_DTYPE_F32) {
        memcpy(dst, src, (size_t)n * 4);
    } else if (d == AVO_DTYPE_F16) {
        for (int64_t i = 0; i < n; i++) {
            uint32_t bits = half_bits_fast((uint32_t)(src[2 * i] | src[2 * i + 1] << 8));
            memcpy(&dst[i], &bits, 4);
        }
    } else if (d == AVO_DTYPE_BF16) {
        for (int64_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)(src[2 * i] | src[2 * i + 1] << 8) << 16;
            memcpy(&dst[i], &bits, 4);
        }
    } else {
        size_t es = avo_dtype_size(d);
        for (int64_t i = 0; i < n; i++) dst[i] = elem_to_float(src + (size_t)i * es, d);
    }
}

avo_status avo_ckpt_tensor_read_f32(avo_ckpt *c, const avo_ckpt_tensor *t, float *dst, int64_t count,
                                    avo_error *err) {
    if (!c || !t || (!dst && count))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_ckpt_tensor_read_f32: NULL argument");
    if (count != t->numel)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "%s: tensor '%s' has %lld elements but the buffer holds %lld", c->name,
                             t->name ? t->name : "?", (long long)t->numel, (long long)count);
    if (t->numel == 0) return AVO_OK;
    const ckpt_storage *s = &c->storages[t->storage];
    size_t es = avo_dtype_size(t->dtype);
    /* Span of storage elements the view touches (checked against the storage at parse time). */
    int64_t last = t->storage_offset;
    bool contiguous = true;
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        last += (t->shape[d] - 1) * t->strides[d];
        if (t->shape[d] != 1 && t->strides[d] != expect) contiguous = false;
        expect *= t->shape[d];
    }
    size_t span = (size_t)(last - t->storage_offset + 1);
    if (contiguous && t->dtype == AVO_DTYPE_F32) { /* straight into the caller's buffer */
        avo_status st = ckpt_read_bytes(c, s, (uint64_t)t->storage_offset * es, span * es, dst, err);
        if (st == AVO_OK && c->big_endian) swap_bytes((uint8_t *)dst, span * es, es);
        return st;
    }
    uint8_t *buf = malloc(span * es);
    if (!buf) return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory reading '%s'", c->name, t->name);
    avo_status st = ckpt_read_bytes(c, s, (uint64_t)t->storage_offset * es, span * es, buf, err);
    if (st != AVO_OK) {
        free(buf);
        return st;
    }
    if (c->big_endian) swap_bytes(buf, span * es, es);
    if (contiguous) {
        convert_run(buf, t->dtype, dst, t->numel);
    } else {
        /* Walk the index space row-major; the innermost dimension is a strided run. */
        int nd = t->ndim;
        int64_t idx[AVO_CKPT_MAX_DIMS] = {0};
        int64_t inner = t->shape[nd - 1], istride = t->strides[nd - 1];
        for (int64_t o = 0; o < t->numel; o += inner) {
            int64_t base = 0;
            for (int d = 0; d < nd - 1; d++) base += idx[d] * t->strides[d];
            for (int64_t k = 0; k < inner; k++)
                dst[o + k] = elem_to_float(buf + (size_t)(base + k * istride) * es, t->dtype);
            for (int d = nd - 2; d >= 0; d--) {
                if (++idx[d] < t->shape[d]) break;
                idx[d] = 0;
            }
        }
    }
    free(buf);
    return AVO_OK;
}
