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

/* Benchmark switches of one CUDA back end (all on by default), for comparing a kernel with the path it
 * replaced on the same back end, interleaved:
 *   AVO_CUDA_SW_FUSED: avo_op_conv1d_fused as one fused kernel; off, the engine's composition
 *     (activation, convolution, add: three passes over the data).
 *   AVO_CUDA_SW_DIRECT_CONV2D: 3x3 stride-1 conv2d with at most 64 input and output channels (32 in
 *     FP16 mode) as a direct FP32 kernel; off, through im2col and the precision's GEMM.
 *   AVO_CUDA_SW_GRU_CLUSTER: the BiGRU recurrence with H 256 as one thread-block cluster per direction
 *     on sm_90; off, the cooperative multi-block kernel (or the one-block fallback).
 *   AVO_CUDA_SW_FLASH_REL: relative-position attention (window > 0: VITS's text encoder) in FP16 mode
 *     by the fused flash-style kernel; off, by GEMMs and a softmax pass in FP32 (plain attention always
 *     takes the fused kernel in FP16 mode).
 * AVO_ERR_INVALID_ARGUMENT for a back end that is not CUDA or an unknown switch. */
typedef enum avo_cuda_switch {
    AVO_CUDA_SW_FUSED = 0,
    AVO_CUDA_SW_DIRECT_CONV2D,
    AVO_CUDA_SW_GRU_CLUSTER,
    AVO_CUDA_SW_FLASH_REL
} avo_cuda_switch;
avo_status avo_backend_cuda_set_switch(avo_backend *be, avo_cuda_switch sw, bool on, avo_error *err);

#ifdef __cplusplus
}
#endif
#endif
