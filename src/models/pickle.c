/* A pickle interpreter that only builds data.
 *
 * Python's unpickler calls whatever GLOBAL names; this one maps a short whitelist of names to
 * data constructors written here (containers, torch tensor rebuild, storage types, bytes helpers,
 * numpy scalars, inert records) and refuses every other name before anything else happens.
 * Protocols 2-4 opcodes that torch.save and plain containers use are implemented; anything else
 * is an error naming the opcode. */
#include "models/checkpoint_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ---- whitelist ---------------------------------------------------------------------------- */

typedef enum {
    G_NONE = 0,
    G_ORDERED_DICT,
    G_REBUILD_TENSOR_V2,
    G_REBUILD_PARAMETER,
    G_REBUILD_PARAMETER_STATE,
    G_STORAGE,      /* torch.<X>Storage: dtype in the table */
    G_BYTES,        /* builtins.bytes */
    G_CODECS_ENCODE,
    G_SET,          /* builtins.set / frozenset -> list */
    G_NP_DTYPE,
    G_NP_SCALAR,
    G_RECORD,       /* inert record: argparse.Namespace, omegaconf containers */
    G_TOKEN,        /* a class used only as a value (torch.strided, typing.Any) */
    G_GET_LAYOUT
} global_kind;

typedef struct {
    const char *module, *name;
    global_kind kind;
    avo_dtype dtype;
} global_entry;

static const global_entry k_globals[] = {
    {"collections", "OrderedDict", G_ORDERED_DICT, 0},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR_V2, 0},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, 0},
    {"torch._utils", "_rebuild_parameter_with_state", G_REBUILD_PARAMETER_STATE, 0},
    {"torch", "FloatStorage", G_STORAGE, AVO_DTYPE_F32},
    {"torch", "HalfStorage", G_STORAGE, AVO_DTYPE_F16},
    {"torch", "BFloat16Storage", G_STORAGE, AVO_DTYPE_BF16},
    {"torch", "DoubleStorage", G_STORAGE, AVO_DTYPE_F64},
    {"torch", "LongStorage", G_STORAGE, AVO_DTYPE_I64},
    {"torch", "IntStorage", G_STORAGE, AVO_DTYPE_I32},
    {"torch", "ShortStorage", G_STORAGE, AVO_DTYPE_I16},
    {"torch", "CharStorage", G_STORAGE, AVO_DTYPE_I8},
    {"torch", "ByteStorage", G_STORAGE, AVO_DTYPE_U8},
    {"torch", "BoolStorage", G_STORAGE, AVO_DTYPE_BOOL},
    {"torch", "strided", G_TOKEN, 0},
    {"torch.serialization", "_get_layout", G_GET_LAYOUT, 0},
    {"builtins", "bytes", G_BYTES, 0},
    {"__builtin__", "bytes", G_BYTES, 0},
    {"_codecs", "encode", G_CODECS_ENCODE, 0},
    {"builtins", "set", G_SET, 0},
    {"__builtin__", "set", G_SET, 0},
    {"builtins", "frozenset", G_SET, 0},
    {"__builtin__", "frozenset", G_SET, 0},
    {"numpy", "dtype", G_NP_DTYPE, 0},
    {"numpy.core.multiarray", "scalar", G_NP_SCALAR, 0},
    {"numpy._core.multiarray", "scalar", G_NP_SCALAR, 0},
    {"argparse", "Namespace", G_RECORD, 0},
    {"omegaconf.dictconfig", "DictConfig", G_RECORD, 0},
    {"omegaconf.listconfig", "ListConfig", G_RECORD, 0},
    {"omegaconf.base", "ContainerMetadata", G_RECORD, 0},
    {"omegaconf.base", "Metadata", G_RECORD, 0},
    {"omegaconf.nodes", "AnyNode", G_RECORD, 0},
    {"omegaconf.nodes", "StringNode", G_RECORD, 0},
    {"omegaconf.nodes", "IntegerNode", G_RECORD, 0},
    {"omegaconf.nodes", "FloatNode", G_RECORD, 0},
    {"omegaconf.nodes", "BooleanNode", G_RECORD, 0},
    {"typing", "Any", G_TOKEN, 0},
};
#define N_GLOBALS (sizeof k_globals / sizeof k_globals[0])

/* ---- machine state ------------------------------------------------------------------------ */

typedef struct {
    avo_ckpt *c;
    const uint8_t *p, *end, *start;
    avo_ckpt_value **stack;
    size_t sp, stack_cap;
    size_t marks[CKPT_MAX_MARKS];
    size_t nmarks;
    avo_ckpt_value **memo;
    size_t memo_cap, memo_count;
    avo_error *err;
} machine;

static avo_status fail(machine *m, avo_status code, const char *fmt, const char *detail) {
    char what[512];
    snprintf(what, sizeof what, fmt, detail ? detail : "");
    return avo_error_set(m->err, code, "%s at pickle byte %zu: %s", m->c->name, (size_t)(m->p - m->start),
                         what);
}

static avo_status corrupt(machine *m, const char *why) {
    return fail(m, AVO_ERR_FORMAT, "%s (the checkpoint is corrupt or not a torch checkpoint)", why);
}

static avo_status no_mem(machine *m) {
    return avo_error_set(m->err, AVO_ERR_NO_MEMORY,
                         "%s: out of memory or more than %zu values in the pickle", m->c->name,
                         (size_t)CKPT_MAX_NODES);
}

static avo_status push(machine *m, avo_ckpt_value *v) {
    if (!v) return no_mem(m);
    if (m->sp == m->stack_cap) {
        if (m->stack_cap >= CKPT_MAX_STACK) return corrupt(m, "pickle stack too deep");
        size_t cap = m->stack_cap ? m->stack_cap * 2 : 256;
        avo_ckpt_value **s = realloc(m->stack, cap * sizeof *s);
        if (!s) return no_mem(m);
        m->stack = s;
        m->stack_cap = cap;
    }
    m->stack[m->sp++] = v;
    return AVO_OK;
}

static size_t mark_base(machine *m) { return m->nmarks ? m->marks[m->nmarks - 1] : 0; }

/* Pops one value above the current mark; NULL if none. */
static avo_ckpt_value *pop(machine *m) {
    if (m->sp <= mark_base(m)) return NULL;
    return m->stack[--m->sp];
}

static avo_ckpt_value *top(machine *m) { return m->sp > mark_base(m) ? m->stack[m->sp - 1] : NULL; }

static bool need(machine *m, size_t n) { return (size_t)(m->end - m->p) >= n; }

static uint64_t rd_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static avo_ckpt_value *new_str(machine *m, int kind, const uint8_t *s, size_t n) {
    avo_ckpt_value *v = ckpt_node_new(m->c, kind);
    if (!v) return NULL;
    v->str = malloc(n + 1);
    if (!v->str) return NULL;
    if (n) memcpy(v->str, s, n);
    v->str[n] = '\0';
    v->len = n;
    return v;
}

static avo_ckpt_value *new_int(machine *m, int64_t x) {
    avo_ckpt_value *v = ckpt_node_new(m->c, AVO_CKPT_INT);
    if (v) v->i = x;
    return v;
}

static avo_status memo_put(machine *m, uint64_t idx) {
    avo_ckpt_value *v = top(m);
    if (!v) return corrupt(m, "memo store with an empty stack");
    if (idx >= CKPT_MAX_MEMO) return corrupt(m, "memo index too large");
    if (idx >= m->memo_cap) {
        size_t cap = m->memo_cap ? m->memo_cap : 64;
        while (cap <= idx) cap *= 2;
        avo_ckpt_value **mm = realloc(m->memo, cap * sizeof *mm);
        if (!mm) return no_mem(m);
        memset(mm + m->memo_cap, 0, (cap - m->memo_cap) * sizeof *mm);
        m->memo = mm;
        m->memo_cap = cap;
    }
    if (!m->memo[idx]) m->memo_count++;
    m->memo[idx] = v;
    return AVO_OK;
}

static avo_status memo_get(machine *m, uint64_t idx) {
    if (idx >= m->memo_cap || !m->memo[idx]) return corrupt(m, "memo fetch of an unset index");
    return push(m, m->memo[idx]);
}

/* Items above the top mark, which is removed. */
static avo_status pop_mark(machine *m, avo_ckpt_value ***items, size_t *n) {
    if (!m->nmarks) return corrupt(m, "missing MARK");
    size_t base = m->marks[--m->nmarks];
    *items = m->stack ? m->stack + base : NULL; /* no arithmetic on a NULL stack */
    *n = m->sp - base;
    m->sp = base;
    return AVO_OK;
}

static bool is_str(const avo_ckpt_value *v) { return v && v->kind == AVO_CKPT_STRING; }
static bool is_int(const avo_ckpt_value *v) { return v && v->kind == AVO_CKPT_INT; }
static bool is_seq(const avo_ckpt_value *v) {
    return v && (v->kind == AVO_CKPT_TUPLE || v->kind == AVO_CKPT_LIST);
}

/* ---- GLOBAL ------------------------------------------------------------------------------- */

static bool printable_name(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.') return false;
    return n > 0;
}

static avo_status push_global(machine *m, const char *module, size_t mlen, const char *name, size_t nlen) {
    char full[300];
    if (mlen > 128 || nlen > 128 || !printable_name(module, mlen) || !printable_name(name, nlen))
        return corrupt(m, "GLOBAL with an invalid module or class name");
    snprintf(full, sizeof full, "%.*s.%.*s", (int)mlen, module, (int)nlen, name);
    for (size_t i = 0; i < N_GLOBALS; i++) {
        if (strlen(k_globals[i].module) == mlen && strlen(k_globals[i].name) == nlen &&
            !memcmp(k_globals[i].module, module, mlen) && !memcmp(k_globals[i].name, name, nlen)) {
            avo_ckpt_value *v = new_str(m, AVO_CKPT_OBJECT, (const uint8_t *)full, strlen(full));
            if (!v) return no_mem(m);
            v->global_id = (int)i + 1;
            return push(m, v);
        }
    }
    return avo_error_set(m->err, AVO_ERR_VALIDATION,
                         "refusing to load %s: the checkpoint asks to run '%s' which is not allowed "
                         "(only tensors, containers and plain values are read; if you trust the file, "
                         "re-save just its weights with torch.save(state_dict) or as .safetensors)",
                         m->c->name, full);
}

static const global_entry *global_of(const avo_ckpt_value *v) {
    if (!v || v->kind != AVO_CKPT_OBJECT || v->global_id <= 0 || (size_t)v->global_id > N_GLOBALS) return NULL;
    return &k_globals[v->global_id - 1];
}

/* ---- REDUCE / NEWOBJ / BUILD handlers ----------------------------------------------------- */

static avo_status bad_args(machine *m, const char *fn) {
    return fail(m, AVO_ERR_FORMAT, "unexpected arguments to %s (corrupt or unsupported checkpoint)", fn);
}

static avo_status int_tuple(machine *m, const avo_ckpt_value *v, int64_t *out, int *n, const char *fn) {
    if (!is_seq(v) || v->count > AVO_CKPT_MAX_DIMS) return bad_args(m, fn);
    for (size_t i = 0; i < v->count; i++) {
        if (!is_int(v->items[i])) return bad_args(m, fn);
        out[i] = v->items[i]->i;
    }
    *n = (int)v->count;
    return AVO_OK;
}

static avo_status rebuild_tensor(machine *m, const avo_ckpt_value *a) {
    /* (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
    const char *fn = "torch._utils._rebuild_tensor_v2";
    if (a->count < 6 || a->count > 7) return bad_args(m, fn);
    const avo_ckpt_value *st = a->items[0];
    if (!st || st->kind != CK_STORAGE || !is_int(a->items[1])) return bad_args(m, fn);
    avo_ckpt_tensor *t = calloc(1, sizeof *t);
    avo_ckpt_value *v = ckpt_node_new(m->c, AVO_CKPT_TENSOR);
    if (!t || !v) {
        free(t);
        return no_mem(m);
    }
    v->tensor = t;
    t->storage = (int)st->i;
    t->dtype = m->c->storages[t->storage].dtype;
    t->storage_offset = a->items[1]->i;
    int ns = 0, nd = 0;
    avo_status s = int_tuple(m, a->items[2], t->shape, &ns, fn);
    if (s == AVO_OK) s = int_tuple(m, a->items[3], t->strides, &nd, fn);
    if (s != AVO_OK) return s;
    if (ns != nd) return bad_args(m, fn);
    t->ndim = ns;
    s = ckpt_tensor_check(m->c, t, m->err);
    if (s != AVO_OK) return s;
    return push(m, v);
}

static avo_ckpt_value *copy_container(machine *m, const avo_ckpt_value *src, int kind) {
    avo_ckpt_value *v = ckpt_node_new(m->c, kind);
    if (!v) return NULL;
    for (size_t i = 0; i < src->count; i++)
        if (!ckpt_node_push(v, NULL, src->items[i])) return NULL;
    return v;
}

/* UTF-8 text whose code points are all < 256, encoded as latin-1 bytes. */
static avo_ckpt_value *latin1_bytes(machine *m, const avo_ckpt_value *s) {
    avo_ckpt_value *v = new_str(m, AVO_CKPT_BYTES, NULL, 0);
    if (!v) return NULL;
    char *out = realloc(v->str, s->len + 1);
    if (!out) return NULL;
    v->str = out;
    size_t n = 0;
    const uint8_t *p = (const uint8_t *)s->str, *e = p + s->len;
    while (p < e) {
        if (*p < 0x80) {
            out[n++] = (char)*p++;
        } else if ((*p & 0xE0) == 0xC0 && p + 1 < e && (p[1] & 0xC0) == 0x80 && *p <= 0xC3 && *p >= 0xC2) {
            out[n++] = (char)(((p[0] & 0x1F) << 6) | (p[1] & 0x3F));
            p += 2;
        } else {
            return NULL;
        }
    }
    out[n] = '\0';
    v->len = n;
    return v;
}

/* numpy scalar: (dtype, bytes) -> int/float/bool. */
static avo_status np_scalar(machine *m, const avo_ckpt_value *a) {
    const char *fn = "numpy.core.multiarray.scalar";
    if (a->count != 2 || !a->items[0] || a->items[0]->kind != CK_NPDTYPE || !a->items[1] ||
        a->items[1]->kind != AVO_CKPT_BYTES)
        return bad_args(m, fn);
    const avo_ckpt_value *dt = a->items[0], *b = a->items[1];
    const char *code = dt->str;
    char type = code[0];
    int size = atoi(code + 1);
    bool big = dt->i == '>';
    if (!(type == 'f' || type == 'i' || type == 'u' || type == 'b') || (size_t)size != b->len ||
        !(size == 1 || size == 2 || size == 4 || size == 8) || (type == 'b' && size != 1) ||
        (type == 'f' && size == 1))
        return fail(m, AVO_ERR_UNSUPPORTED, "numpy scalar of dtype '%s' is not supported", code);
    uint8_t raw[8];
    for (int i = 0; i < size; i++) raw[i] = (uint8_t)b->str[big ? size - 1 - i : i];
    uint64_t u = rd_le(raw, size);
    avo_ckpt_value *v;
    if (type == 'f') {
        double x;
        if (size == 8) {
            memcpy(&x, &u, 8);
        } else if (size == 4) {
            uint32_t w = (uint32_t)u;
            float f;
            memcpy(&f, &w, 4);
            x = f;
        } else {
            return fail(m, AVO_ERR_UNSUPPORTED, "numpy scalar of dtype '%s' is not supported", code);
        }
        v = ckpt_node_new(m->c, AVO_CKPT_FLOAT);
        if (v) v->f = x;
    } else if (type == 'b') {
        v = ckpt_node_new(m->c, AVO_CKPT_BOOL);
        if (v) v->i = u != 0;
    } else {
        int64_t x = (int64_t)u;
        if (type == 'i' && size < 8 && (u >> (size * 8 - 1)) & 1) x = (int64_t)(u | (~(uint64_t)0 << (size * 8)));
        if (type == 'u' && size == 8 && x < 0) {
            v = ckpt_node_new(m->c, AVO_CKPT_FLOAT);
            if (v) v->f = (double)u;
            return push(m, v);
        }
        v = new_int(m, x);
    }
    return push(m, v);
}

static avo_status np_dtype(machine *m, const avo_ckpt_value *a) {
    if (a->count < 1 || !is_str(a->items[0]) || a->items[0]->len < 2 || a->items[0]->len > 8)
        return bad_args(m, "numpy.dtype");
    avo_ckpt_value *v = new_str(m, CK_NPDTYPE, (const uint8_t *)a->items[0]->str, a->items[0]->len);
    if (!v) return no_mem(m);
    v->i = '<';
    return push(m, v);
}

static avo_ckpt_value *new_record(machine *m, const global_entry *g, const avo_ckpt_value *args) {
    char full[300];
    snprintf(full, sizeof full, "%s.%s", g->module, g->name);
    avo_ckpt_value *v = new_str(m, AVO_CKPT_OBJECT, (const uint8_t *)full, strlen(full));
    if (!v) return NULL;
    v->fields = ckpt_node_new(m->c, AVO_CKPT_DICT);
    if (!v->fields) return NULL;
    if (args && args->count) {
        avo_ckpt_value *k = new_str(m, AVO_CKPT_STRING, (const uint8_t *)"__args__", 8);
        if (!k || !ckpt_node_push(v->fields, k, (avo_ckpt_value *)args)) return NULL;
    }
    return v;
}

static avo_status op_reduce(machine *m) {
    avo_ckpt_value *args = pop(m), *fnv = pop(m);
    if (!args || !fnv) return corrupt(m, "REDUCE with too few values");
    const global_entry *g = global_of(fnv);
    if (!g) {
        return fail(m, AVO_ERR_VALIDATION, "refusing to load: REDUCE on a %s value, not a whitelisted function",
                    avo_ckpt_kind_name(avo_ckpt_value_kind(fnv)));
    }
    if (args->kind != AVO_CKPT_TUPLE) return bad_args(m, fnv->str);
    avo_ckpt_value *v = NULL;
    switch (g->kind) {
    case G_ORDERED_DICT:
        v = ckpt_node_new(m->c, AVO_CKPT_DICT);
        if (!v) return no_mem(m);
        if (args->count == 1 && is_seq(args->items[0])) {
            const avo_ckpt_value *pairs = args->items[0];
            for (size_t i = 0; i < pairs->count; i++) {
                const avo_ckpt_value *pr = pairs->items[i];
                if (!is_seq(pr) || pr->count != 2) return bad_args(m, fnv->str);
                if (!ckpt_node_push(v, pr->items[0], pr->items[1])) return no_mem(m);
            }
        } else if (args->count != 0) {
            return bad_args(m, fnv->str);
        }
        return push(m, v);
    case G_REBUILD_TENSOR_V2: return rebuild_tensor(m, args);
    case G_REBUILD_PARAMETER:
    case G_REBUILD_PARAMETER_STATE:
        if (args->count < 3 || args->count > 4 || !args->items[0] || args->items[0]->kind != AVO_CKPT_TENSOR)
            return bad_args(m, fnv->str);
        return push(m, args->items[0]);
    case G_BYTES:
        if (args->count != 0) return bad_args(m, fnv->str);
        return push(m, new_str(m, AVO_CKPT_BYTES, NULL, 0));
    case G_CODECS_ENCODE:
        if (args->count != 2 || !is_str(args->items[0]) || !is_str(args->items[1]) ||
            (strcmp(args->items[1]->str, "latin1") && strcmp(args->items[1]->str, "latin-1")))
            return bad_args(m, fnv->str);
        v = latin1_bytes(m, args->items[0]);
        if (!v) return corrupt(m, "_codecs.encode of text that is not latin-1");
        return push(m, v);
    case G_SET:
        if (args->count == 0) return push(m, ckpt_node_new(m->c, AVO_CKPT_LIST));
        if (args->count != 1 || !is_seq(args->items[0])) return bad_args(m, fnv->str);
        return push(m, copy_container(m, args->items[0], AVO_CKPT_LIST));
    case G_NP_DTYPE: return np_dtype(m, args);
    case G_NP_SCALAR: return np_scalar(m, args);
    case G_RECORD:
        v = new_record(m, g, args);
        if (!v) return no_mem(m);
        return push(m, v);
    case G_GET_LAYOUT:
        if (args->count != 1 || !is_str(args->items[0]) || strcmp(args->items[0]->str, "torch.strided"))
            return bad_args(m, fnv->str);
        v = new_str(m, AVO_CKPT_OBJECT, (const uint8_t *)"torch.strided", 13);
        return push(m, v);
    default:
        return fail(m, AVO_ERR_VALIDATION, "refusing to load: '%s' may not be called", fnv->str);
    }
}

static avo_status op_newobj(machine *m) {
    avo_ckpt_value *args = pop(m), *cls = pop(m);
    if (!args || !cls) return corrupt(m, "NEWOBJ with too few values");
    const global_entry *g = global_of(cls);
    if (!g || g->kind != G_RECORD)
        return fail(m, AVO_ERR_VALIDATION, "refusing to load: the checkpoint asks to create '%s' which is not allowed",
                    cls->kind == AVO_CKPT_OBJECT ? cls->str : "a non-class value");
    if (args->kind != AVO_CKPT_TUPLE) return bad_args(m, cls->str);
    avo_ckpt_value *v = new_record(m, g, args);
    if (!v) return no_mem(m);
    return push(m, v);
}

static avo_status op_build(machine *m) {
    avo_ckpt_value *state = pop(m), *obj = top(m);
    if (!state || !obj) return corrupt(m, "BUILD with too few values");
    if (obj->kind == CK_NPDTYPE) {
        /* state: (version, byteorder, ...); only the byte order matters */
        if (!is_seq(state) || state->count < 2 || !is_str(state->items[1]) || state->items[1]->len != 1)
            return bad_args(m, "numpy.dtype state");
        obj->i = state->items[1]->str[0];
        return AVO_OK;
    }
    if ((obj->kind == AVO_CKPT_OBJECT && !obj->global_id && obj->fields) || obj->kind == AVO_CKPT_DICT) {
        /* Records keep their state as data; a state_dict's _metadata arrives this way too. */
        if (state->kind == AVO_CKPT_TUPLE && state->count == 2 && state->items[0] &&
            state->items[0]->kind == AVO_CKPT_DICT)
            state = state->items[0];
        if (state->kind != AVO_CKPT_DICT && state->kind != AVO_CKPT_NONE) return bad_args(m, "BUILD");
        if (obj->kind == AVO_CKPT_DICT) {
            obj->fields = state;
        } else {
            for (size_t i = 0; i < state->count; i++)
                if (!ckpt_node_push(obj->fields, state->keys[i], state->items[i])) return no_mem(m);
        }
        return AVO_OK;
    }
    return fail(m, AVO_ERR_VALIDATION, "refusing to load: BUILD on a %s is not allowed",
                obj->kind == AVO_CKPT_OBJECT ? obj->str : avo_ckpt_kind_name(avo_ckpt_value_kind(obj)));
}

static avo_status op_persid(machine *m) {
    /* ('storage', storage_type, key, location, numel) */
    avo_ckpt_value *pid = pop(m);
    if (!pid) return corrupt(m, "BINPERSID with an empty stack");
    const global_entry *g = pid->kind == AVO_CKPT_TUPLE && pid->count == 5 ? global_of(pid->items[1]) : NULL;
    if (!g || g->kind != G_STORAGE || !is_str(pid->items[0]) || strcmp(pid->items[0]->str, "storage") ||
        !is_str(pid->items[2]) || !is_int(pid->items[4]))
        return corrupt(m, "persistent id is not a torch storage reference");
    int idx = ckpt_storage_add(m->c, pid->items[2]->str, g->dtype, pid->items[4]->i, m->err);
    if (idx < 0) return m->err ? m->err->code : AVO_ERR_FORMAT;
    avo_ckpt_value *v = ckpt_node_new(m->c, CK_STORAGE);
    if (!v) return no_mem(m);
    v->i = idx;
    return push(m, v);
}

/* ---- opcode loop -------------------------------------------------------------------------- */

static avo_status op_string(machine *m, int kind, size_t lenbytes) {
    if (!need(m, lenbytes)) return corrupt(m, "truncated pickle");
    uint64_t n = rd_le(m->p, (int)lenbytes);
    m->p += lenbytes;
    if (n > (uint64_t)(m->end - m->p)) return corrupt(m, "string longer than the pickle");
    avo_ckpt_value *v = new_str(m, kind, m->p, (size_t)n);
    m->p += n;
    return push(m, v);
}

static avo_status op_long(machine *m, size_t lenbytes) {
    if (!need(m, lenbytes)) return corrupt(m, "truncated pickle");
    uint64_t n = rd_le(m->p, (int)lenbytes);
    m->p += lenbytes;
    if (n > (uint64_t)(m->end - m->p)) return corrupt(m, "integer longer than the pickle");
    if (n > 1024) return corrupt(m, "integer with more than 1024 bytes");
    const uint8_t *b = m->p;
    m->p += n;
    if (n == 0) return push(m, new_int(m, 0));
    bool neg = b[n - 1] & 0x80;
    if (n <= 8) {
        uint64_t u = rd_le(b, (int)n);
        if (neg && n < 8) u |= ~(uint64_t)0 << (8 * n);
        return push(m, new_int(m, (int64_t)u));
    }
    /* Wider than int64: keep an approximate float (two's complement, little-endian). */
    double x = 0;
    for (size_t i = n; i-- > 0;) x = x * 256.0 + (neg ? (double)(uint8_t)~b[i] : (double)b[i]);
    if (neg) x = -(x + 1);
    avo_ckpt_value *v = ckpt_node_new(m->c, AVO_CKPT_FLOAT);
    if (v) v->f = x;
    return push(m, v);
}

static avo_status op_tuple_n(machine *m, size_t n) {
    avo_ckpt_value *v = ckpt_node_new(m->c, AVO_CKPT_TUPLE);
    if (!v) return no_mem(m);
    if (m->sp < mark_base(m) + n) return corrupt(m, "tuple with too few values");
    for (size_t i = 0; i < n; i++)
        if (!ckpt_node_push(v, NULL, m->stack[m->sp - n + i])) return no_mem(m);
    m->sp -= n;
    return push(m, v);
}

static avo_status op_appends(machine *m, bool marked) {
    avo_ckpt_value **items = NULL, *one;
    size_t n = 0;
    if (marked) {
        avo_status s = pop_mark(m, &items, &n);
        if (s) return s;
    } else {
        one = pop(m);
        if (!one) return corrupt(m, "APPEND with an empty stack");
        items = &one;
        n = 1;
    }
    avo_ckpt_value *list = top(m);
    if (!list || list->kind != AVO_CKPT_LIST) return corrupt(m, "APPEND to something that is not a list");
    for (size_t i = 0; i < n; i++)
        if (!ckpt_node_push(list, NULL, items[i])) return no_mem(m);
    return AVO_OK;
}

static avo_status op_setitems(machine *m, bool marked) {
    avo_ckpt_value **items = NULL, *kv[2];
    size_t n = 0;
    if (marked) {
        avo_status s = pop_mark(m, &items, &n);
        if (s) return s;
    } else {
        kv[1] = pop(m);
        kv[0] = pop(m);
        if (!kv[0] || !kv[1]) return corrupt(m, "SETITEM with too few values");
        items = kv;
        n = 2;
    }
    if (n % 2) return corrupt(m, "SETITEMS with an odd number of values");
    avo_ckpt_value *d = top(m);
    if (!d || d->kind != AVO_CKPT_DICT) return corrupt(m, "SETITEM on something that is not a dict");
    /* A repeated key is kept as a second entry (checking would be quadratic on hostile input);
     * lookups take the last one, as Python's dict would. */
    for (size_t i = 0; i < n; i += 2)
        if (!ckpt_node_push(d, items[i], items[i + 1])) return no_mem(m);
    return AVO_OK;
}

static avo_status op_global(machine *m) {
    const uint8_t *nl1 = memchr(m->p, '\n', (size_t)(m->end - m->p));
    if (!nl1) return corrupt(m, "truncated GLOBAL");
    const uint8_t *nl2 = memchr(nl1 + 1, '\n', (size_t)(m->end - nl1 - 1));
    if (!nl2) return corrupt(m, "truncated GLOBAL");
    const char *mod = (const char *)m->p, *name = (const char *)nl1 + 1;
    size_t ml = (size_t)(nl1 - m->p), nl = (size_t)(nl2 - nl1 - 1);
    m->p = nl2 + 1;
    return push_global(m, mod, ml, name, nl);
}

static avo_status step(machine *m, uint8_t op) {
    avo_ckpt_value *v;
    avo_ckpt_value **items = NULL;
    size_t n = 0;
    avo_status s;
    switch (op) {
    case 0x80: /* PROTO */
        if (!need(m, 1)) return corrupt(m, "truncated pickle");
        if (*m->p > 5) return corrupt(m, "unknown pickle protocol");
        m->p++;
        return AVO_OK;
    case 0x95: /* FRAME: a length hint only */
        if (!need(m, 8)) return corrupt(m, "truncated pickle");
        m->p += 8;
        return AVO_OK;
    case '(': /* MARK */
        if (m->nmarks >= CKPT_MAX_MARKS) return corrupt(m, "containers nested too deeply");
        m->marks[m->nmarks++] = m->sp;
        return AVO_OK;
    case '0': /* POP */
        if (m->sp > mark_base(m)) m->sp--;
        else if (m->nmarks) m->nmarks--; /* Python pops a mark here */
        else return corrupt(m, "POP with an empty stack");
        return AVO_OK;
    case '1': /* POP_MARK */ return pop_mark(m, &items, &n);
    case '2': /* DUP */
        v = top(m);
        if (!v) return corrupt(m, "DUP with an empty stack");
        return push(m, v);
    case 'N': return push(m, ckpt_node_new(m->c, AVO_CKPT_NONE));
    case 0x88:
    case 0x89:
        v = ckpt_node_new(m->c, AVO_CKPT_BOOL);
        if (v) v->i = op == 0x88;
        return push(m, v);
    case 'J':
        if (!need(m, 4)) return corrupt(m, "truncated pickle");
        v = new_int(m, (int32_t)(uint32_t)rd_le(m->p, 4));
        m->p += 4;
        return push(m, v);
    case 'K':
        if (!need(m, 1)) return corrupt(m, "truncated pickle");
        return push(m, new_int(m, *m->p++));
    case 'M':
        if (!need(m, 2)) return corrupt(m, "truncated pickle");
        v = new_int(m, (int64_t)rd_le(m->p, 2));
        m->p += 2;
        return push(m, v);
    case 0x8a: return op_long(m, 1);
    case 0x8b: return op_long(m, 4);
    case 'G': {
        if (!need(m, 8)) return corrupt(m, "truncated pickle");
        uint64_t u = 0;
        for (int i = 0; i < 8; i++) u = (u << 8) | m->p[i]; /* big-endian */
        m->p += 8;
        v = ckpt_node_new(m->c, AVO_CKPT_FLOAT);
        if (v) memcpy(&v->f, &u, 8);
        return push(m, v);
    }
    case 'X': return op_string(m, AVO_CKPT_STRING, 4);
    case 0x8c: return op_string(m, AVO_CKPT_STRING, 1);
    case 0x8d: return op_string(m, AVO_CKPT_STRING, 8);
    case 'T': return op_string(m, AVO_CKPT_STRING, 4); /* protocol-2 byte strings from Python 2 */
    case 'U': return op_string(m, AVO_CKPT_STRING, 1);
    case 'B': return op_string(m, AVO_CKPT_BYTES, 4);
    case 'C': return op_string(m, AVO_CKPT_BYTES, 1);
    case 0x8e: return op_string(m, AVO_CKPT_BYTES, 8);
    case ')': return push(m, ckpt_node_new(m->c, AVO_CKPT_TUPLE));
    case 0x85: return op_tuple_n(m, 1);
    case 0x86: return op_tuple_n(m, 2);
    case 0x87: return op_tuple_n(m, 3);
    case 't':
    case 'l':
    case 0x91: /* FROZENSET */
        s = pop_mark(m, &items, &n);
        if (s) return s;
        v = ckpt_node_new(m->c, op == 't' ? AVO_CKPT_TUPLE : AVO_CKPT_LIST);
        if (!v) return no_mem(m);
        for (size_t i = 0; i < n; i++)
            if (!ckpt_node_push(v, NULL, items[i])) return no_mem(m);
        return push(m, v);
    case ']':
    case 0x8f: /* EMPTY_SET */ return push(m, ckpt_node_new(m->c, AVO_CKPT_LIST));
    case 'a': return op_appends(m, false);
    case 'e':
    case 0x90: /* ADDITEMS */ return op_appends(m, true);
    case '}': return push(m, ckpt_node_new(m->c, AVO_CKPT_DICT));
    case 'd':
        s = pop_mark(m, &items, &n);
        if (s) return s;
        if (n % 2) return corrupt(m, "DICT with an odd number of values");
        v = ckpt_node_new(m->c, AVO_CKPT_DICT);
        if (!v) return no_mem(m);
        for (size_t i = 0; i < n; i += 2)
            if (!ckpt_node_push(v, items[i], items[i + 1])) return no_mem(m);
        return push(m, v);
    case 's': return op_setitems(m, false);
    case 'u': return op_setitems(m, true);
    case 'h':
        if (!need(m, 1)) return corrupt(m, "truncated pickle");
        return memo_get(m, *m->p++);
    case 'j':
        if (!need(m, 4)) return corrupt(m, "truncated pickle");
        m->p += 4;
        return memo_get(m, rd_le(m->p - 4, 4));
    case 'q':
        if (!need(m, 1)) return corrupt(m, "truncated pickle");
        return memo_put(m, *m->p++);
    case 'r':
        if (!need(m, 4)) return corrupt(m, "truncated pickle");
        m->p += 4;
        return memo_put(m, rd_le(m->p - 4, 4));
    case 0x94: /* MEMOIZE: the next index is the number of memo entries, as in Python */
        return memo_put(m, m->memo_count);
    case 'c': return op_global(m);
    case 0x93: { /* STACK_GLOBAL */
        avo_ckpt_value *name = pop(m), *mod = pop(m);
        if (!is_str(name) || !is_str(mod)) return corrupt(m, "STACK_GLOBAL without two strings");
        return push_global(m, mod->str, mod->len, name->str, name->len);
    }
    case 'R': return op_reduce(m);
    case 0x81: return op_newobj(m);
    case 'b': return op_build(m);
    case 'Q': return op_persid(m);
    default: {
        char what[64];
        snprintf(what, sizeof what, "0x%02x", op);
        return fail(m, AVO_ERR_UNSUPPORTED,
                    "unsupported pickle opcode %s (only what torch.save writes is understood)", what);
    }
    }
}

avo_status ckpt_pickle_parse(avo_ckpt *c, const uint8_t *data, size_t size, avo_ckpt_value **root,
                             avo_error *err) {
    machine m = {.c = c, .p = data, .end = data + size, .start = data, .err = err};
    avo_status s = AVO_OK;
    *root = NULL;
    if (size > CKPT_MAX_PICKLE_BYTES)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: pickle of %zu bytes is larger than the %zu allowed",
                             c->name, size, CKPT_MAX_PICKLE_BYTES);
    for (;;) {
        if (m.p >= m.end) {
            s = corrupt(&m, "pickle ends without STOP (truncated file)");
            break;
        }
        uint8_t op = *m.p++;
        if (op == '.') { /* STOP */
            avo_ckpt_value *v = pop(&m);
            if (!v || m.nmarks) s = corrupt(&m, "STOP with an empty stack or an open MARK");
            else *root = v;
            break;
        }
        s = step(&m, op);
        if (s != AVO_OK) break;
    }
    free(m.stack);
    free(m.memo);
    return s;
}
