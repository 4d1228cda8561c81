/* Engine cache: a model's weights as they are after every load-time rewrite (weight norm folded,
 * BatchNorm folded, scales folded, layouts changed), stored per (engine format, model file, device,
 * precision, shape profile), so that a later load reads them straight into tensors instead of
 * reading, converting and folding the checkpoint's tensors.
 *
 * Where: $XDG_CACHE_HOME/autovoice/engines ($HOME/.cache/autovoice/engines when XDG_CACHE_HOME is
 * unset or not absolute), or a directory given to avo_engine_cache_open. One file per key:
 *   <model file base name>-<16 hex digits of the key hash>.aveng
 *
 * File format (version AVO_ENGINE_FORMAT_VERSION, integers little-endian):
 *   "AVENGINE" | u32 version | u32 text length | text | zero padding to 64
 *     the text is the full key, readable: "autovoice engine\n" then key=value lines (format, library,
 *     loader, model (the model file's resolved path), model_hash, device, precision, profile); a file
 *     whose text differs from the expected key in any line is a miss naming that line
 *   per tensor: "AREC" | u16 name length | u8 dtype | u8 ndim | i64 shape[4] | u64 data bytes |
 *     name | zero padding to 64 | data | zero padding to 64
 *     (data starts 64-byte aligned, so a record can be read straight into tensor memory)
 *   "AEND" | u32 tensor count | u64 checksum of every byte before the checksum, then end of file.
 * The checksum and the model hash are avo_engine_hash (64-bit words in four FNV-1a-style lanes,
 * mixed at the end: any change of one 8-byte word changes it, and it runs at memory speed; it tells
 * files apart and catches damage, it is not a defence against a forger).
 *
 * A file is written atomically (a temporary file in the same directory, fsync, rename), read
 * strictly: wrong magic or version, another key, a truncated or over-long file, a bad record or a
 * checksum mismatch make a miss with the reason, and the model is rebuilt from the checkpoint and
 * the file overwritten. No tensor of a file is used before its checksum has been checked. A cache
 * directory that cannot be created or written is not an error: the model loads without caching and
 * the result says why. When a model file changes (another hash at the same path), the new engine
 * file replaces the old one (outcome "rebuild", naming it); files of other devices, precisions or
 * profiles stay. A model moved to another path is built again (its old file is left).
 *
 * What a replay skips: reading, converting (fp16 -> f32, strides) and folding tensor data. The
 * checkpoint is still opened for its structure and config (names, shapes, hyper-parameters), so a
 * load with a hit needs the model file, and hashes all of it for the key (every load).
 * What it stores today: every checkpoint-derived f32 weight after its load-time rewrites, as the
 * loaders hand them to avo_engine_put; what a loader makes without reading tensor data (the VITS
 * flow's flip matrix) and a few host-side scalars are made again on a hit. Copies a back end makes
 * lazily from them (CUDA half / INT8 copies, packed CPU weights) are not in the file; the precision
 * is in the key so that such packs can be added without mixing files. The loader tag names the
 * load-time folding code: a change to what a loader computes must change its tag. */
#ifndef AUTOVOICE_ENGINE_CACHE_H
#define AUTOVOICE_ENGINE_CACHE_H

#include "autovoice/checkpoint.h"
#include "autovoice/common.h"
#include "autovoice/engine.h"
#include "autovoice/models.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AVO_ENGINE_FORMAT_VERSION 1
#define AVO_ENGINE_NAME_MAX 255 /* bytes of a tensor name */

/* ---- the cache directory ------------------------------------------------------------------- */

typedef struct avo_engine_cache avo_engine_cache;

/* dir NULL: the XDG location above. Nothing is created yet (the directory is made on the first
 * write); fails only for a bad argument, no home directory to derive the default from, or memory. */
avo_status avo_engine_cache_open(const char *dir, avo_engine_cache **out, avo_error *err);
void avo_engine_cache_free(avo_engine_cache *c);
const char *avo_engine_cache_dir(const avo_engine_cache *c);

/* ---- one load ------------------------------------------------------------------------------- */

typedef enum avo_engine_outcome {
    AVO_ENGINE_OFF = 0,  /* no cache asked for: loaded from the checkpoint */
    AVO_ENGINE_HIT,      /* loaded from the engine file */
    AVO_ENGINE_BUILT,    /* no engine file yet: built from the checkpoint and written */
    AVO_ENGINE_REBUILT,  /* engine file stale or damaged (reason): built and overwritten */
    AVO_ENGINE_UNCACHED  /* built from the checkpoint; no file could be written (reason) */
} avo_engine_outcome;

/* "off", "hit", "build", "rebuild", "uncached" (for run metadata). */
const char *avo_engine_outcome_name(avo_engine_outcome o);

typedef struct avo_engine_request {
    avo_engine_cache *cache; /* NULL: no engine file (outcome AVO_ENGINE_OFF) */
    /* The device of the key. NULL: a CUDA back end's GPU and compute capability
     * (avo_backend_cuda_device_key, e.g. "cuda:NVIDIA H100 80GB HBM3:sm_90"), else avo_backend_name up
     * to its '-' ("cpu"). */
    const char *device;
    const char *precision; /* NULL: the back end name's suffix ("fp16" of "cuda-fp16"), else "fp32" */
    const char *profile;   /* shape profile; NULL: "default" */
} avo_engine_request;

typedef struct avo_engine_result {
    avo_engine_outcome outcome;
    char reason[512];   /* why rebuilt / uncached; empty otherwise */
    char path[1024];    /* the engine file (empty when off) */
    uint64_t key;       /* hash of the key text */
    int64_t tensors;    /* tensors read (hit) or written (build) */
    int64_t bytes;      /* tensor bytes read or written */
} avo_engine_result;

/* The model loads of models.h with an engine cache. req NULL or req->cache NULL is the plain load.
 * res (may be NULL) gets what happened; a cache problem never fails the load. */
avo_status avo_hubert_load_cached(const char *path, avo_backend *be, const avo_engine_request *req, avo_hubert **out,
                                  avo_engine_result *res, avo_error *err);
avo_status avo_rmvpe_load_cached(const char *path, avo_backend *be, const avo_engine_request *req, avo_rmvpe **out,
                                 avo_engine_result *res, avo_error *err);
avo_status avo_rvc_load_cached(const char *path, avo_backend *be, const avo_engine_request *req, avo_rvc **out,
                               avo_engine_result *res, avo_error *err);
/* The config file is part of the key (its hash joins the model's). */
avo_status avo_sovits_load_cached(const char *model_path, const char *config_path, avo_backend *be,
                                  const avo_engine_request *req, avo_sovits **out, avo_engine_result *res,
                                  avo_error *err);

/* ---- for model loaders ----------------------------------------------------------------------
 * A session is one model load. avo_engine_load computes the key, then calls load(user, session):
 * the loader creates its weights arena, calls avo_engine_attach, and for each final weight tensor
 * either takes it (avo_engine_replaying) or computes it and puts it. If a replaying load fails (the
 * file does not fit the loader), unload(user) undoes it and load runs again building. A NULL
 * session is valid everywhere: never replaying, put does nothing. */
typedef struct avo_engine_session avo_engine_session;

typedef avo_status (*avo_engine_loader)(void *user, avo_engine_session *s, avo_error *err);

/* extra_path (may be NULL): a second file of the key (a config). loader_tag: the loader and the
 * version of its load-time folding ("rvc/1"). */
avo_status avo_engine_load(const avo_engine_request *req, const char *model_path, const char *extra_path,
                           const char *loader_tag, avo_backend *be, avo_engine_loader load, void (*unload)(void *user),
                           void *user, avo_engine_result *res, avo_error *err);

/* Binds the session to the model's (empty) weights arena. A valid engine file is then read into it
 * (checksum checked before returning); a bad one leaves the arena as it was and the session
 * building. Building: opens the temporary file. Fails only as the arena fails (memory). */
avo_status avo_engine_attach(avo_engine_session *s, avo_arena *weights, avo_error *err);
bool avo_engine_replaying(const avo_engine_session *s);
/* Replay: the tensor recorded as name (AVO_ERR_NOT_FOUND: the file does not fit the loader). */
avo_status avo_engine_take(avo_engine_session *s, const char *name, avo_tensor *out, avo_error *err);
/* The same, checking the rank and each want[i] >= 0 (a mismatch is AVO_ERR_FORMAT: the file does not fit). */
avo_status avo_engine_take_shaped(avo_engine_session *s, const char *name, int ndim, const int64_t *want,
                                  avo_tensor *out, avo_error *err);
/* Build: records t (a final f32 weight in the attached arena) as name. Returns AVO_OK even when the
 * file cannot be written (the session then stops caching and says why in the result). */
avo_status avo_engine_put(avo_engine_session *s, const char *name, const avo_tensor *t, avo_error *err);

/* avo_tensor_load / avo_tensor_load_weight through a session: taken when replaying, else loaded
 * and put (name: path; prefix + ".weight"). */
avo_status avo_engine_tensor_load(avo_engine_session *s, avo_arena *a, avo_ckpt *ckpt, const char *path,
                                  avo_tensor *out, avo_error *err);
avo_status avo_engine_tensor_load_weight(avo_engine_session *s, avo_arena *a, avo_ckpt *ckpt, const char *prefix,
                                         avo_tensor *out, avo_error *err);

/* ---- hashes and the file name (tests, tools) ------------------------------------------------ */

uint64_t avo_engine_hash(const void *data, size_t n);
avo_status avo_engine_file_hash(const char *path, uint64_t *out, avo_error *err);

/* The reader alone, from memory (tests, the fuzzer): engine file data[0, size) whose key text should
 * be key_text, read into arena a (rewound to where it was on failure). AVO_OK with the tensor count,
 * or an error whose message is the reason of the miss. */
avo_status avo_engine_read_memory(const void *data, size_t size, const char *key_text, avo_arena *a, int64_t *tensors,
                                  avo_error *err);

#ifdef __cplusplus
}
#endif
#endif
