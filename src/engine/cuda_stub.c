/* CUDA entry points of a build without CUDA (CMake found no nvcc, or AVO_CUDA=OFF): creating the
 * back end fails with a clear error so callers stay on the CPU. */
#include "autovoice/engine.h"
#include "autovoice/engine_cuda.h"
#include "engine/cuda/cuda_profile.h"

#include <stddef.h>

bool avo_backend_cuda_built(void) { return false; }

avo_status avo_backend_cuda_create(int device, avo_backend **out, avo_error *err) {
    (void)device;
    if (out) *out = NULL;
    return avo_error_set(err, AVO_ERR_UNSUPPORTED,
                         "cuda: this build of AutoVoice was built without CUDA (nvcc was not found or AVO_CUDA=OFF); "
                         "use the CPU back end");
}

static avo_status no_cuda(avo_error *err) {
    return avo_error_set(err, AVO_ERR_UNSUPPORTED, "cuda: this build of AutoVoice was built without CUDA");
}

avo_status avo_backend_cuda_set_precision(avo_backend *be, avo_cuda_precision precision, avo_error *err) {
    (void)be;
    (void)precision;
    return no_cuda(err);
}

avo_status avo_backend_cuda_gemm_counts(const avo_backend *be, int64_t *fp32, int64_t *fp16, avo_error *err) {
    (void)be;
    if (fp32) *fp32 = 0;
    if (fp16) *fp16 = 0;
    return no_cuda(err);
}

avo_status avo_backend_cuda_set_calibration(avo_backend *be, const avo_calib_table *t, avo_error *err) {
    (void)be;
    (void)t;
    return no_cuda(err);
}

avo_status avo_backend_cuda_int8_counts(const avo_backend *be, int64_t *int8, int64_t *int8_skipped, avo_error *err) {
    (void)be;
    if (int8) *int8 = 0;
    if (int8_skipped) *int8_skipped = 0;
    return no_cuda(err);
}

avo_status avo_backend_cuda_device_key(const avo_backend *be, char *buf, size_t cap, avo_error *err) {
    (void)be;
    if (buf && cap) buf[0] = 0;
    return no_cuda(err);
}

avo_status avo_backend_cuda_sync(avo_backend *be, avo_error *err) {
    (void)be;
    return no_cuda(err);
}

/* cuda_profile.h */
avo_status avo_backend_cuda_profile(avo_backend *be, bool on, avo_error *err) {
    (void)be;
    (void)on;
    return no_cuda(err);
}

avo_status avo_backend_cuda_profile_json(avo_backend *be, int top_n, char *buf, size_t cap, avo_error *err) {
    (void)be;
    (void)top_n;
    if (buf && cap) buf[0] = 0;
    return no_cuda(err);
}



/* engine_cuda.h: without CUDA every stretch runs as it is */
avo_status avo_backend_graph_begin(avo_backend *be, avo_arena *a, uint64_t key, avo_tensor *out, bool *replayed,
                                   avo_error *err) {
    (void)be, (void)a, (void)key, (void)out, (void)err;
    if (replayed) *replayed = false;
    return AVO_OK;
}

avo_status avo_backend_graph_end(avo_backend *be, avo_arena *a, uint64_t key, const avo_tensor *out, avo_status st,
                                 avo_error *err) {
    (void)be, (void)a, (void)key, (void)out, (void)err;
    return st;
}

avo_status avo_backend_cuda_set_graphs(avo_backend *be, bool on, avo_error *err) {
    (void)be, (void)on;
    return no_cuda(err);
}

avo_status avo_backend_cuda_graph_counts(const avo_backend *be, int64_t *launches, int64_t *captures, avo_error *err) {
    (void)be;
    if (launches) *launches = 0;
    if (captures) *captures = 0;
    return no_cuda(err);
}

avo_status avo_backend_cuda_set_switch(avo_backend *be, avo_cuda_switch sw, bool on, avo_error *err) {
    (void)be, (void)sw, (void)on;
    return no_cuda(err);
}
