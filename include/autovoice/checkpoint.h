/* Safe reader for PyTorch checkpoints (.pth/.pt written by torch.save) and .safetensors files.
 *
 * torch.save writes a zip archive holding a pickle (<prefix>/data.pkl) and one raw storage per tensor
 * (<prefix>/data/<key>). A pickle is a small program; Python's loader runs whatever callables it names.
 * This reader never runs anything: it interprets a fixed whitelist of names as data
 * (containers, torch._utils._rebuild_tensor_v2/_rebuild_parameter, torch.*Storage, bytes helpers,
 * numpy scalars, argparse.Namespace / omegaconf records kept as opaque objects) and refuses every
 * other GLOBAL with an error naming it ("refusing to load x.pth: the checkpoint asks to run
 * 'os.system' which is not allowed"). Sizes, nesting depth, memo and node counts are bounded.
 *
 * The file becomes a tree of values (dict/list/tuple/scalars/strings/tensors). Tensors keep their
 * dtype, shape, strides and storage offset; avo_ckpt_tensor_read_f32 converts any of them to a
 * contiguous float32 array. A .safetensors file gives a root dict of name -> tensor (and
 * "__metadata__" -> dict of strings when present).
 *
 * Opaque records: argparse.Namespace and omegaconf objects (fairseq "args"/"cfg") become
 * AVO_CKPT_OBJECT values whose class name is kept and whose pickled state (a dict) is readable
 * through avo_ckpt_value_fields; nothing of the class is executed or interpreted further.
 *
 * Tensor data stays in the file until read (the file is kept open). A key repeated in one pickled
 * dict is kept twice; lookups give the last value, as Python would.
 * An avo_ckpt is not thread-safe (reads go through one file handle); use one per thread. */
#ifndef AUTOVOICE_CHECKPOINT_H
#define AUTOVOICE_CHECKPOINT_H

#include "autovoice/common.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AVO_CKPT_MAX_DIMS 8

typedef struct avo_ckpt avo_ckpt;             /* an open checkpoint (tree + storage access) */
typedef struct avo_ckpt_value avo_ckpt_value; /* a node of the tree, owned by its avo_ckpt */

typedef enum avo_ckpt_kind {
    AVO_CKPT_NONE = 0,
    AVO_CKPT_BOOL,
    AVO_CKPT_INT,    /* fits int64; larger Python ints are read as AVO_CKPT_FLOAT (approximate) */
    AVO_CKPT_FLOAT,
    AVO_CKPT_STRING, /* UTF-8, NUL-terminated (may contain NULs: use avo_ckpt_value_size) */
    AVO_CKPT_BYTES,
    AVO_CKPT_LIST,   /* also Python set/frozenset */
    AVO_CKPT_TUPLE,
    AVO_CKPT_DICT,   /* dict and collections.OrderedDict; keys of any kind, insertion order */
    AVO_CKPT_TENSOR,
    AVO_CKPT_OBJECT  /* opaque record (class name + fields) or a bare class reference */
} avo_ckpt_kind;

typedef enum avo_dtype {
    AVO_DTYPE_F32 = 0,
    AVO_DTYPE_F16,
    AVO_DTYPE_BF16,
    AVO_DTYPE_F64,
    AVO_DTYPE_I64,
    AVO_DTYPE_I32,
    AVO_DTYPE_I16,
    AVO_DTYPE_I8,
    AVO_DTYPE_U8,
    AVO_DTYPE_BOOL
} avo_dtype;

/* "f32", "f16", ... and the size of one element in bytes. */
const char *avo_dtype_name(avo_dtype dtype);
size_t avo_dtype_size(avo_dtype dtype);

/* A tensor as stored: element (not byte) strides and offset into its storage. Read-only. */
typedef struct avo_ckpt_tensor {
    const char *name; /* dotted path from the root where first found, e.g. "weight.emb_g.weight" */
    avo_dtype dtype;
    int ndim;         /* 0 for a scalar tensor */
    int64_t shape[AVO_CKPT_MAX_DIMS];
    int64_t strides[AVO_CKPT_MAX_DIMS];
    int64_t storage_offset;
    int64_t numel;
    int storage;      /* index of its storage: tensors that share memory share this */
} avo_ckpt_tensor;

/* Opens a .pth/.pt (torch zip format) or .safetensors file, recognised by content, not name.
 * A legacy (pre-1.6, non-zip) torch file, a TorchScript archive or a raw pickle is refused with a
 * message saying how to convert it. */
avo_status avo_ckpt_open(const char *path, avo_ckpt **out, avo_error *err);

/* Same from memory; data must stay valid and unchanged until avo_ckpt_free. name is for messages. */
avo_status avo_ckpt_open_memory(const void *data, size_t size, const char *name, avo_ckpt **out,
                                avo_error *err);

void avo_ckpt_free(avo_ckpt *ckpt);

/* "pth" or "safetensors". */
const char *avo_ckpt_format(const avo_ckpt *ckpt);

const avo_ckpt_value *avo_ckpt_root(const avo_ckpt *ckpt);

/* Follows a dotted path from the root. A dict step matches the longest key that lets the rest of
 * the path resolve, so "weight.enc_p.encoder.attn_layers.0.conv_q.weight" finds the key
 * "enc_p.encoder.attn_layers.0.conv_q.weight" inside the dict "weight". Integer keys match their
 * decimal text; list/tuple steps are indices; an object step looks in its fields. NULL if absent. */
const avo_ckpt_value *avo_ckpt_lookup(const avo_ckpt *ckpt, const char *path);
const avo_ckpt_value *avo_ckpt_value_lookup(const avo_ckpt_value *v, const char *path);

/* Typed lookups with a clear error when missing or of another kind. get_float accepts ints. */
avo_status avo_ckpt_get_int(const avo_ckpt *ckpt, const char *path, int64_t *out, avo_error *err);
avo_status avo_ckpt_get_float(const avo_ckpt *ckpt, const char *path, double *out, avo_error *err);
avo_status avo_ckpt_get_string(const avo_ckpt *ckpt, const char *path, const char **out,
                               avo_error *err);
avo_status avo_ckpt_get_tensor(const avo_ckpt *ckpt, const char *path, const avo_ckpt_tensor **out,
                               avo_error *err);

/* Value accessors (never fail; wrong kinds give 0/NULL). */
avo_ckpt_kind avo_ckpt_value_kind(const avo_ckpt_value *v);
const char *avo_ckpt_kind_name(avo_ckpt_kind kind);
bool avo_ckpt_value_bool(const avo_ckpt_value *v);
int64_t avo_ckpt_value_int(const avo_ckpt_value *v);    /* int or bool */
double avo_ckpt_value_float(const avo_ckpt_value *v);   /* float, int or bool */
const char *avo_ckpt_value_string(const avo_ckpt_value *v); /* string, bytes, or object class name */
size_t avo_ckpt_value_size(const avo_ckpt_value *v);    /* bytes of a string/bytes */
size_t avo_ckpt_value_count(const avo_ckpt_value *v);   /* items of a list/tuple/dict */
const avo_ckpt_value *avo_ckpt_value_item(const avo_ckpt_value *v, size_t i); /* element or dict value */
const avo_ckpt_value *avo_ckpt_value_key(const avo_ckpt_value *v, size_t i);  /* dict key */
const avo_ckpt_value *avo_ckpt_value_fields(const avo_ckpt_value *v); /* object state dict or NULL */
const avo_ckpt_tensor *avo_ckpt_value_tensor(const avo_ckpt_value *v);

/* Every distinct tensor of the file, in the order a depth-first walk of the tree meets them. */
size_t avo_ckpt_tensor_count(const avo_ckpt *ckpt);
const avo_ckpt_tensor *avo_ckpt_tensor_at(const avo_ckpt *ckpt, size_t i);

/* Converts the tensor to contiguous row-major float32 in dst (count must equal t->numel),
 * honouring strides, storage offset and the file's byte order. */
avo_status avo_ckpt_tensor_read_f32(avo_ckpt *ckpt, const avo_ckpt_tensor *t, float *dst, int64_t count,
                                    avo_error *err);

#ifdef __cplusplus
}
#endif
#endif
