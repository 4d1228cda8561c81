/* .safetensors: u64 little-endian header length N, N bytes of JSON, then the data section.
 * Header: {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *          "__metadata__": {"key": "string", ...}} with offsets relative to the data section.
 * Validated as strictly as the reference implementation: offsets inside the file, sizes equal
 * dtype size x shape, tensors cover the data section exactly (no overlap, no hole). */
#include "models/checkpoint_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_HEADER ((uint64_t)100 << 20) /* the format's own limit */

typedef struct {
    uint64_t begin, end;
    const char *name;
} st_range;

static int cmp_range(const void *a, const void *b) {
    const st_range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static bool parse_dtype(const char *s, avo_dtype *d) {
    static const struct {
        const char *name;
        avo_dtype dtype;
    } map[] = {{"F32", AVO_DTYPE_F32}, {"F16", AVO_DTYPE_F16}, {"BF16", AVO_DTYPE_BF16}, {"F64", AVO_DTYPE_F64},
               {"I64", AVO_DTYPE_I64}, {"I32", AVO_DTYPE_I32}, {"I16", AVO_DTYPE_I16},  {"I8", AVO_DTYPE_I8},
               {"U8", AVO_DTYPE_U8},   {"BOOL", AVO_DTYPE_BOOL}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(s, map[i].name)) {
            *d = map[i].dtype;
            return true;
        }
    return false;
}

/* A JSON number that is a whole value in [0, 2^53]. */
static bool json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double x = j->valuedouble;
    if (!(x >= 0) || x > 9007199254740992.0 || floor(x) != x) return false;
    *out = (uint64_t)x;
    return true;
}

static avo_ckpt_value *str_node(avo_ckpt *c, const char *s) {
    avo_ckpt_value *v = ckpt_node_new(c, AVO_CKPT_STRING);
    if (!v) return NULL;
    v->len = strlen(s);
    v->str = strdup(s);
    return v->str ? v : NULL;
}

static avo_status oom(avo_ckpt *c, avo_error *err) {
    return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", c->name);
}

static avo_status read_metadata(avo_ckpt *c, const cJSON *meta, avo_error *err) {
    for (size_t i = 0; i < c->root->count; i++)
        if (!strcmp(c->root->keys[i]->str, "__metadata__"))
            return avo_error_set(err, AVO_ERR_FORMAT, "%s: __metadata__ appears twice in the header", c->name);
    if (!cJSON_IsObject(meta))
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: safetensors __metadata__ is not an object", c->name);
    avo_ckpt_value *d = ckpt_node_new(c, AVO_CKPT_DICT), *k = str_node(c, "__metadata__");
    if (!d || !k || !ckpt_node_push(c->root, k, d)) return oom(c, err);
    const cJSON *e;
    cJSON_ArrayForEach(e, meta) {
        if (!cJSON_IsString(e) || !e->string)
            return avo_error_set(err, AVO_ERR_FORMAT, "%s: safetensors __metadata__ values must be strings", c->name);
        avo_ckpt_value *mk = str_node(c, e->string), *mv = str_node(c, e->valuestring);
        if (!mk || !mv || !ckpt_node_push(d, mk, mv)) return oom(c, err);
    }
    return AVO_OK;
}

/* One "name": {dtype, shape, data_offsets} entry. */
static avo_status read_tensor(avo_ckpt *c, const cJSON *e, uint64_t data_start, uint64_t data_size, st_range *r,
                              avo_error *err) {
    const char *name = e->string;
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsObject(e) || !cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo) ||
        cJSON_GetArraySize(jo) != 2)
        return avo_error_set(err, AVO_ERR_FORMAT,
                             "%s: safetensors entry '%.200s' needs dtype, shape and data_offsets [begin, end]", c->name,
                             name);
    avo_dtype dtype;
    if (!parse_dtype(jd->valuestring, &dtype))
        return avo_error_set(err, AVO_ERR_UNSUPPORTED,
                             "%s: tensor '%.200s' has dtype '%.32s', which this reader does not support "
                             "(F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL are)",
                             c->name, name, jd->valuestring);
    avo_ckpt_tensor *t = calloc(1, sizeof *t);
    avo_ckpt_value *v = ckpt_node_new(c, AVO_CKPT_TENSOR), *k = str_node(c, name);
    if (!t || !v || !k) {
        free(t);
        return oom(c, err);
    }
    v->tensor = t;
    t->dtype = dtype;
    int nd = cJSON_GetArraySize(js);
    if (nd > AVO_CKPT_MAX_DIMS)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: tensor '%.200s' has %d dimensions (at most %d)", c->name, name,
                             nd, AVO_CKPT_MAX_DIMS);
    t->ndim = nd;
    int64_t numel = 1;
    for (int d = 0; d < nd; d++) {
        uint64_t x;
        if (!json_uint(cJSON_GetArrayItem(js, d), &x) ||
            __builtin_mul_overflow(numel, (int64_t)x, &numel) || numel > CKPT_MAX_NUMEL)
            return avo_error_set(err, AVO_ERR_FORMAT,
                                 "%s: tensor '%.200s' has an invalid shape (dimensions must be whole numbers >= 0, "
                                 "at most 2^40 elements)",
                                 c->name, name);
        t->shape[d] = (int64_t)x;
    }
    int64_t acc = 1;
    for (int d = nd - 1; d >= 0; d--) {
        t->strides[d] = acc;
        acc *= t->shape[d];
    }
    uint64_t b, e2;
    if (!json_uint(cJSON_GetArrayItem(jo, 0), &b) || !json_uint(cJSON_GetArrayItem(jo, 1), &e2) || b > e2)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: tensor '%.200s' has invalid data_offsets", c->name, name);
    if (e2 > data_size)
        return avo_error_set(err, AVO_ERR_FORMAT,
                             "%s: tensor '%.200s' data [%llu, %llu) lies past the end of the data section (%llu "
                             "bytes): the file is truncated or corrupt",
                             c->name, name, (unsigned long long)b, (unsigned long long)e2,
                             (unsigned long long)data_size);
    uint64_t need = (uint64_t)numel * avo_dtype_size(dtype);
    if (e2 - b != need)
        return avo_error_set(err, AVO_ERR_FORMAT,
                             "%s: tensor '%.200s' spans %llu bytes but %s x %lld elements need %llu", c->name, name,
                             (unsigned long long)(e2 - b), avo_dtype_name(dtype), (long long)numel,
                             (unsigned long long)need);
    size_t before = c->storage_count;
    int idx = ckpt_storage_add(c, name, dtype, numel, err);
    if (idx < 0) return err ? err->code : AVO_ERR_FORMAT;
    if (c->storage_count == before)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: tensor name '%.200s' appears twice in the header", c->name,
                             name);
    c->storages[idx].offset = data_start + b;
    t->storage = idx;
    t->numel = numel;
    if (!ckpt_node_push(c->root, k, v)) return oom(c, err);
    r->begin = b;
    r->end = e2;
    r->name = name;
    return AVO_OK;
}

static avo_status check_coverage(avo_ckpt *c, st_range *r, size_t n, uint64_t data_size, avo_error *err) {
    qsort(r, n, sizeof *r, cmp_range);
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].begin < at)
            return avo_error_set(err, AVO_ERR_FORMAT,
                                 "%s: tensor '%.200s' overlaps the previous tensor's data (corrupt or hostile file)",
                                 c->name, r[i].name);
        if (r[i].begin > at)
            return avo_error_set(err, AVO_ERR_FORMAT,
                                 "%s: %llu unindexed bytes before tensor '%.200s' (the format allows no holes)",
                                 c->name, (unsigned long long)(r[i].begin - at), r[i].name);
        at = r[i].end;
    }
    if (at != data_size)
        return avo_error_set(err, AVO_ERR_FORMAT,
                             "%s: the data section has %llu bytes but the tensors cover %llu (corrupt file)", c->name,
                             (unsigned long long)data_size, (unsigned long long)at);
    return AVO_OK;
}

avo_status ckpt_safetensors_load(avo_ckpt *c, uint64_t file_size, avo_error *err) {
    uint8_t lb[8];
    if (file_size < 10) return avo_error_set(err, AVO_ERR_FORMAT, "%s: too short for a .safetensors file", c->name);
    avo_status s = ckpt_read_raw(c, 0, 8, lb, err);
    if (s != AVO_OK) return s;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | lb[i];
    if (n > ST_MAX_HEADER)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: safetensors header claims %llu bytes (limit %llu)", c->name,
                             (unsigned long long)n, (unsigned long long)ST_MAX_HEADER);
    if (n > file_size - 8)
        return avo_error_set(err, AVO_ERR_FORMAT,
                             "%s: safetensors header of %llu bytes runs past the end of the file (truncated)", c->name,
                             (unsigned long long)n);
    char *hdr = malloc((size_t)n + 1);
    if (!hdr) return oom(c, err);
    s = ckpt_read_raw(c, 8, (size_t)n, hdr, err);
    if (s != AVO_OK) {
        free(hdr);
        return s;
    }
    hdr[n] = '\0';
    const char *end = NULL;
    cJSON *j = memchr(hdr, 0, (size_t)n) ? NULL : cJSON_ParseWithLengthOpts(hdr, (size_t)n, &end, 0);
    bool trailing_ok = j && end;
    for (const char *p = end; trailing_ok && p < hdr + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') trailing_ok = false;
    if (!cJSON_IsObject(j) || !trailing_ok) {
        cJSON_Delete(j);
        free(hdr);
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: the safetensors header is not a valid JSON object", c->name);
    }
    uint64_t data_start = 8 + n, data_size = file_size - data_start;
    int count = cJSON_GetArraySize(j);
    st_range *ranges = calloc((size_t)count + 1, sizeof *ranges);
    c->root = ckpt_node_new(c, AVO_CKPT_DICT);
    if (!ranges || !c->root) s = oom(c, err);
    size_t nr = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, j) {
        if (s != AVO_OK) break;
        if (!e->string) s = avo_error_set(err, AVO_ERR_FORMAT, "%s: header entry without a name", c->name);
        else if (!strcmp(e->string, "__metadata__")) s = read_metadata(c, e, err);
        else s = read_tensor(c, e, data_start, data_size, &ranges[nr++], err);
    }
    if (s == AVO_OK) s = check_coverage(c, ranges, nr, data_size, err);
    free(ranges);
    cJSON_Delete(j);
    free(hdr);
    return s;
}
