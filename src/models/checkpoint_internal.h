/* Internals shared by the checkpoint reader files (checkpoint.c, checkpoint_zip.c, pickle.c,
 * safetensors.c). Not a public interface. */
#ifndef AVO_CHECKPOINT_INTERNAL_H
#define AVO_CHECKPOINT_INTERNAL_H

#include "autovoice/checkpoint.h"

#include <stdio.h>
#include <zip.h>

/* Limits: far above what RVC/so-vits/fairseq checkpoints need, low enough that a hostile file
 * cannot exhaust memory or stack. */
#define CKPT_MAX_PICKLE_BYTES ((size_t)256 << 20)
#define CKPT_MAX_NODES ((size_t)1 << 21)
#define CKPT_MAX_STACK ((size_t)1 << 20)
#define CKPT_MAX_MARKS 4096
#define CKPT_MAX_MEMO ((size_t)1 << 22)
#define CKPT_MAX_DEPTH 64 /* nesting of containers in the finished tree */
#define CKPT_MAX_STORAGES 1000000
#define CKPT_MAX_NUMEL ((int64_t)1 << 40)
#define CKPT_MAX_NAME 4096

/* Kinds used only while parsing; they show as AVO_CKPT_OBJECT to callers. */
enum { CK_INTERNAL = 100, CK_STORAGE, CK_NPDTYPE };

struct avo_ckpt_value {
    int kind;           /* avo_ckpt_kind or CK_* */
    int global_id;      /* for a bare class reference (GLOBAL), which whitelisted name */
    int visited;        /* tree walk marker */
    int64_t i;          /* int/bool value; storage index for CK_STORAGE */
    double f;
    char *str;          /* string/bytes payload, object class name, numpy dtype code */
    size_t len;
    avo_ckpt_value **items; /* list/tuple elements, dict values */
    avo_ckpt_value **keys;  /* dict keys (parallel to items) */
    size_t count, cap;
    avo_ckpt_value *fields; /* object state (dict) or BUILD state of a dict */
    avo_ckpt_tensor *tensor;
};

typedef enum { STORE_ZIP = 0, STORE_FILE, STORE_MEMORY } ckpt_source;

typedef struct ckpt_storage {
    char *key;          /* torch persistent id key ("0", "1", ...) or safetensors tensor name */
    avo_dtype dtype;
    int64_t numel;      /* elements the storage holds */
    int64_t zip_index;  /* entry in the archive (STORE_ZIP) */
    uint64_t offset;    /* byte offset in the file/memory (STORE_FILE/STORE_MEMORY) */
} ckpt_storage;

typedef struct node_chunk node_chunk;

struct avo_ckpt {
    char *name;         /* file name for messages */
    const char *format;
    ckpt_source source;
    zip_t *zip;
    zip_source_t *zsrc; /* memory source (owned by zip once opened) */
    int fd;             /* STORE_FILE */
    const uint8_t *mem; /* STORE_MEMORY */
    size_t mem_size;
    bool big_endian;    /* archive/byteorder says "big" */
    avo_ckpt_value *root;
    node_chunk *chunks; /* every node lives here; freed all at once */
    size_t node_count;
    ckpt_storage *storages;
    size_t storage_count, storage_cap;
    avo_ckpt_tensor **tensors; /* distinct tensors in walk order */
    size_t tensor_count;
};

/* Node allocation (zeroed, owned by ckpt). NULL when out of memory or over CKPT_MAX_NODES. */
avo_ckpt_value *ckpt_node_new(avo_ckpt *c, int kind);
/* Appends to a list/tuple (key == NULL) or dict. Returns false when out of memory. */
bool ckpt_node_push(avo_ckpt_value *v, avo_ckpt_value *key, avo_ckpt_value *item);
/* Registers a storage (or finds one with the same key). Returns its index or -1 with err set. */
int ckpt_storage_add(avo_ckpt *c, const char *key, avo_dtype dtype, int64_t numel, avo_error *err);

/* Checks shape/strides/offset against the storage and fills numel. */
avo_status ckpt_tensor_check(const avo_ckpt *c, avo_ckpt_tensor *t, avo_error *err);

/* Runs the whitelisted pickle machine over data; *root receives the result. */
avo_status ckpt_pickle_parse(avo_ckpt *c, const uint8_t *data, size_t size, avo_ckpt_value **root,
                             avo_error *err);

/* Parses a bare pickle (no archive, storages unresolved) and walks the tree; for fuzzing the
 * pickle machine directly. */
avo_status ckpt_parse_pickle_bytes(const uint8_t *data, size_t size, avo_error *err);

/* Format back ends: fill c->root and the storages from c->zip / the bytes. */
avo_status ckpt_zip_load(avo_ckpt *c, avo_error *err);
avo_status ckpt_safetensors_load(avo_ckpt *c, uint64_t file_size, avo_error *err);

/* Reads nbytes of storage s starting at byte off into dst. */
avo_status ckpt_read_bytes(avo_ckpt *c, const ckpt_storage *s, uint64_t off, size_t nbytes, void *dst,
                           avo_error *err);

/* Reads from the underlying file or memory (STORE_FILE/STORE_MEMORY) at an absolute offset. */
avo_status ckpt_read_raw(avo_ckpt *c, uint64_t off, size_t nbytes, void *dst, avo_error *err);

#endif
