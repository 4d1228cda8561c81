/* torch.save zip layout: <prefix>/data.pkl, <prefix>/data/<key>, <prefix>/byteorder, <prefix>/version.
 * The prefix is "archive" in recent torch and the file's stem in older releases. */
#include "models/checkpoint_internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_ENTRIES 10000000

/* Reads a whole (small) entry; *out is malloc'd and NUL-terminated. */
static avo_status read_entry(avo_ckpt *c, zip_int64_t idx, size_t limit, uint8_t **out, size_t *size,
                             avo_error *err) {
    zip_stat_t st;
    *out = NULL;
    if (zip_stat_index(c->zip, (zip_uint64_t)idx, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: unreadable zip entry (%s)", c->name, zip_strerror(c->zip));
    if (st.size > limit)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: entry '%s' claims %llu bytes, more than the %zu allowed",
                             c->name, st.name ? st.name : "?", (unsigned long long)st.size, limit);
    /* Grow with the data actually read: the claimed size of a compressed entry costs nothing to fake. */
    zip_file_t *zf = zip_fopen_index(c->zip, (zip_uint64_t)idx, 0);
    if (!zf)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: cannot open entry '%s': %s", c->name, st.name ? st.name : "?",
                             zip_strerror(c->zip));
    size_t cap = st.size < 65536 ? (size_t)st.size + 1 : 65536, n = 0;
    uint8_t *buf = malloc(cap);
    avo_status s = buf ? AVO_OK : avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", c->name);
    while (s == AVO_OK && n < st.size) {
        if (n + 1 >= cap) {
            size_t ncap = cap * 2 > st.size + 1 ? (size_t)st.size + 1 : cap * 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                s = avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", c->name);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        zip_int64_t got = zip_fread(zf, buf + n, cap - 1 - n);
        if (got <= 0)
            s = avo_error_set(err, AVO_ERR_FORMAT, "%s: entry '%s' is truncated or corrupt (%s)", c->name,
                              st.name ? st.name : "?", got < 0 ? zip_file_strerror(zf) : "short read");
        else
            n += (size_t)got;
    }
    zip_fclose(zf);
    if (s != AVO_OK) {
        free(buf);
        return s;
    }
    buf[n] = 0;
    *out = buf;
    *size = n;
    return AVO_OK;
}

/* Finds "<prefix>/data.pkl" (one level deep). */
static avo_status find_pickle(avo_ckpt *c, zip_int64_t *pkl, char *prefix, size_t psize, avo_error *err) {
    zip_int64_t n = zip_get_num_entries(c->zip, 0);
    if (n < 0 || n > MAX_ENTRIES)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: zip archive with an invalid entry count", c->name);
    bool torchscript = false;
    *pkl = -1;
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(c->zip, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
        if (!name) continue;
        const char *slash = strchr(name, '/');
        const char *base = slash ? slash + 1 : name;
        if (slash && (strstr(base, "constants.pkl") == base || strncmp(base, "code/", 5) == 0)) torchscript = true;
        if (strcmp(base, "data.pkl") != 0) continue;
        size_t plen = slash ? (size_t)(slash - name) : 0;
        if (plen >= psize) continue;
        if (*pkl >= 0)
            return avo_error_set(err, AVO_ERR_FORMAT, "%s: zip archive holds more than one data.pkl", c->name);
        memcpy(prefix, name, plen);
        prefix[plen] = '\0';
        *pkl = i;
    }
    if (*pkl >= 0) return AVO_OK;
    if (torchscript)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED,
                             "%s is a TorchScript archive (torch.jit.save), not a torch.save checkpoint: save the "
                             "model's state_dict with torch.save instead",
                             c->name);
    return avo_error_set(err, AVO_ERR_FORMAT, "%s: zip archive without data.pkl, not a torch.save checkpoint",
                         c->name);
}

static avo_status read_byteorder(avo_ckpt *c, const char *prefix, avo_error *err) {
    char name[600];
    snprintf(name, sizeof name, "%s%sbyteorder", prefix, *prefix ? "/" : "");
    zip_int64_t idx = zip_name_locate(c->zip, name, ZIP_FL_ENC_RAW);
    if (idx < 0) return AVO_OK; /* torch before 2.1 wrote none: always little-endian */
    uint8_t *txt;
    size_t n;
    avo_status s = read_entry(c, idx, 64, &txt, &n, err);
    if (s != AVO_OK) return s;
    if (!strcmp((char *)txt, "big")) c->big_endian = true;
    else if (strcmp((char *)txt, "little"))
        s = avo_error_set(err, AVO_ERR_FORMAT, "%s: byteorder entry says '%.16s', expected little or big", c->name,
                          (char *)txt);
    free(txt);
    return s;
}

/* Maps every storage key to its zip entry and checks the entry holds enough bytes. */
static avo_status resolve_storages(avo_ckpt *c, const char *prefix, avo_error *err) {
    for (size_t i = 0; i < c->storage_count; i++) {
        ckpt_storage *s = &c->storages[i];
        for (const char *k = s->key; *k; k++)
            if (*k == '/' || *k == '\\' || (unsigned char)*k < 0x20)
                return avo_error_set(err, AVO_ERR_FORMAT, "%s: storage key with invalid characters", c->name);
        char name[CKPT_MAX_NAME + 700];
        snprintf(name, sizeof name, "%s%sdata/%s", prefix, *prefix ? "/" : "", s->key);
        zip_int64_t idx = zip_name_locate(c->zip, name, ZIP_FL_ENC_RAW);
        if (idx < 0)
            return avo_error_set(err, AVO_ERR_FORMAT,
                                 "%s: the pickle refers to storage '%s' but the archive has no %s (truncated or "
                                 "incomplete file)",
                                 c->name, s->key, name);
        zip_stat_t st;
        if (zip_stat_index(c->zip, (zip_uint64_t)idx, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
            return avo_error_set(err, AVO_ERR_FORMAT, "%s: cannot stat %s", c->name, name);
        uint64_t need = (uint64_t)s->numel * avo_dtype_size(s->dtype);
        if (st.size < need)
            return avo_error_set(err, AVO_ERR_FORMAT, "%s: storage %s holds %llu bytes but %llu are needed (%lld x %s)",
                                 c->name, name, (unsigned long long)st.size, (unsigned long long)need,
                                 (long long)s->numel, avo_dtype_name(s->dtype));
        s->zip_index = idx;
    }
    return AVO_OK;
}

avo_status ckpt_zip_load(avo_ckpt *c, avo_error *err) {
    char prefix[512];
    zip_int64_t pkl = -1;
    avo_status s = find_pickle(c, &pkl, prefix, sizeof prefix, err);
    if (s == AVO_OK) s = read_byteorder(c, prefix, err);
    if (s != AVO_OK) return s;
    uint8_t *data;
    size_t size;
    s = read_entry(c, pkl, CKPT_MAX_PICKLE_BYTES, &data, &size, err);
    if (s != AVO_OK) return s;
    s = ckpt_pickle_parse(c, data, size, &c->root, err);
    free(data);
    if (s == AVO_OK) s = resolve_storages(c, prefix, err);
    return s;
}
