/* Loading weights from a checkpoint into engine tensors. The values go through a host buffer
 * (avo_ckpt_tensor_read_f32 converts dtype and strides) and then into the back end's memory. */
#include "autovoice/engine_cache.h"
#include "engine/engine_internal.h"

#include <stdio.h>
#include <stdlib.h>

/* Host copy of a checkpoint tensor as f32; *shape/ndim filled; caller frees. */
static avo_status read_host(avo_ckpt *ckpt, const char *path, float **out, int *ndim, int64_t *shape, avo_error *err) {
    const avo_ckpt_tensor *t = NULL;
    avo_status st = avo_ckpt_get_tensor(ckpt, path, &t, err);
    if (st) return st;
    if (t->ndim > AVO_TENSOR_MAX_DIMS)
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "loading '%s': %d dimensions, the engine takes at most %d", path,
                             t->ndim, AVO_TENSOR_MAX_DIMS);
    float *buf = malloc((size_t)(t->numel > 0 ? t->numel : 1) * sizeof(float));
    if (!buf) return avo_error_set(err, AVO_ERR_NO_MEMORY, "loading '%s': out of memory", path);
    st = avo_ckpt_tensor_read_f32(ckpt, t, buf, t->numel, err);
    if (st) {
        free(buf);
        avo_error_prefix(err, "loading '%s'", path);
        return st;
    }
    *ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++) shape[i] = t->shape[i];
    *out = buf;
    return AVO_OK;
}

avo_status avo_tensor_load(avo_arena *a, avo_ckpt *ckpt, const char *path, avo_tensor *out, avo_error *err) {
    float *buf = NULL;
    int ndim = 0;
    int64_t shape[AVO_TENSOR_MAX_DIMS];
    avo_status st = read_host(ckpt, path, &buf, &ndim, shape, err);
    if (st) return st;
    st = avo_tensor_from_host(a, ndim, shape, buf, out, err);
    free(buf);
    return st;
}

avo_status avo_tensor_load_weight(avo_arena *a, avo_ckpt *ckpt, const char *prefix, avo_tensor *out, avo_error *err) {
    char path[512], gpath[512];
    snprintf(path, sizeof path, "%s.weight", prefix);
    if (avo_ckpt_lookup(ckpt, path)) return avo_tensor_load(a, ckpt, path, out, err);
    snprintf(gpath, sizeof gpath, "%s.weight_g", prefix);
    snprintf(path, sizeof path, "%s.weight_v", prefix);
    if (!avo_ckpt_lookup(ckpt, gpath) || !avo_ckpt_lookup(ckpt, path))
        return avo_error_set(err, AVO_ERR_NOT_FOUND,
                             "checkpoint has neither '%s.weight' nor '%s.weight_g'/'.weight_v': is it the right model?",
                             prefix, prefix);
    float *g = NULL, *v = NULL;
    int gd = 0, vd = 0;
    int64_t gs[AVO_TENSOR_MAX_DIMS], vs[AVO_TENSOR_MAX_DIMS];
    avo_status st = read_host(ckpt, gpath, &g, &gd, gs, err);
    if (!st) st = read_host(ckpt, path, &v, &vd, vs, err);
    if (!st) {
        int64_t gn = 1, vn = 1;
        for (int i = 0; i < gd; i++) gn *= gs[i];
        for (int i = 0; i < vd; i++) vn *= vs[i];
        if (vd < 1 || gn != vs[0] || vn % (vs[0] ? vs[0] : 1))
            st = avo_error_set(err, AVO_ERR_FORMAT, "'%s': weight_g has %lld values for %lld rows of weight_v", prefix,
                               (long long)gn, (long long)(vd ? vs[0] : 0));
        else {
            avo_weight_norm_fold(g, v, vs[0], vn / vs[0], v);
            st = avo_tensor_from_host(a, vd, vs, v, out, err);
        }
    }
    free(g);
    free(v);
    return st;
}

/* Through an engine cache session: the recorded tensor when replaying (no checkpoint read), else
 * the load above, recorded. */
avo_status avo_engine_tensor_load(avo_engine_session *s, avo_arena *a, avo_ckpt *ckpt, const char *path,
                                  avo_tensor *out, avo_error *err) {
    if (avo_engine_replaying(s)) return avo_engine_take(s, path, out, err);
    avo_status st = avo_tensor_load(a, ckpt, path, out, err);
    return st ? st : avo_engine_put(s, path, out, err);
}

avo_status avo_engine_tensor_load_weight(avo_engine_session *s, avo_arena *a, avo_ckpt *ckpt, const char *prefix,
                                         avo_tensor *out, avo_error *err) {
    char name[512];
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (avo_engine_replaying(s)) return avo_engine_take(s, name, out, err);
    avo_status st = avo_tensor_load_weight(a, ckpt, prefix, out, err);
    return st ? st : avo_engine_put(s, name, out, err);
}
