/* Per-op timing of the CUDA back end, for benchmarks (C callers; defined in cuda_profile.cu, or
 * failing in cuda_stub.c). In profiling mode every op of the function table (and every host copy)
 * runs between two CUDA events on the back end's stream, so the times are device times, without the
 * host's launch work; the ops stay asynchronous. Not in engine.h yet: the lead decides whether the
 * run metadata wants it. */
#ifndef AVO_CUDA_PROFILE_H
#define AVO_CUDA_PROFILE_H

#include "autovoice/engine.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Turns profiling on or off (the records collected so far stay until the next _json call). */
avo_status avo_backend_cuda_profile(avo_backend *be, bool on, avo_error *err);

/* Waits for the device, then writes the records since the last call as one JSON object into buf and
 * forgets them: {"ops": calls, "device_ms": sum of op times, "span_ms": first start to last end,
 * "by_op": {"conv1d": {"ms", "calls"}, ...}, "by_shape": [{"key", "ms", "calls"}, ... the top_n]}.
 * A result longer than cap is cut at an entry boundary of by_shape. */
avo_status avo_backend_cuda_profile_json(avo_backend *be, int top_n, char *buf, size_t cap, avo_error *err);

/* Benchmark switch: on (the default), avo_op_conv1d_fused runs as one fused kernel; off, as the
 * engine's composition (activation, convolution, add: three passes over the data), for comparing the
 * two on this back end only. AVO_ERR_INVALID_ARGUMENT for a back end that is not CUDA. */
avo_status avo_backend_cuda_set_fused(avo_backend *be, bool on, avo_error *err);

/* Benchmark switch: on (the default), 3x3 stride-1 conv2d with at most 64 input and output channels
 * runs as a direct FP32 kernel (also in FP16 mode); off, through im2col and the precision's GEMM. */
avo_status avo_backend_cuda_set_direct_conv2d(avo_backend *be, bool on, avo_error *err);

/* Benchmark switch: on (the default), the BiGRU recurrence with H 256 runs as one thread-block cluster
 * per direction on sm_90; off, by the cooperative multi-block kernel (or the one-block fallback). */
avo_status avo_backend_cuda_set_gru_cluster(avo_backend *be, bool on, avo_error *err);

#ifdef __cplusplus
}
#endif
#endif
