/* CUDA Graphs for fixed-shape stretches of a model's forward pass (issue 8).
 *
 * A model brackets a stretch of engine ops that does only device work (no copies to or from the
 * host inside it) with avo_backend_graph_begin / avo_backend_graph_end, under a key that names
 * everything that decides the stretch's shapes (model, input length, options). On a CUDA back end
 * the first run of a key runs plainly, the second identical run is captured into a CUDA graph as it
 * runs, and later runs whose arena is in the same state (same device address and mark where the
 * stretch starts: the same tensors will come out at the same places) replay the graph instead of
 * issuing the ops: begin launches it, moves the arena past the stretch's tensors, returns the
 * stretch's result tensor and says replayed, and the model skips the stretch. Anything that could
 * leave a graph reading stale memory (a weight's half copy dropped, a device block freed, precision
 * or calibration changed) forgets every graph. Profiling mode, an attached GEMM observer and nested
 * stretches run plainly.
 *
 * Every other back end (and a CUDA back end with graphs switched off) runs the stretch as it is:
 * begin says not replayed, end returns the stretch's status. */
#ifndef AUTOVOICE_ENGINE_CUDA_H
#define AUTOVOICE_ENGINE_CUDA_H

#include "autovoice/engine.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Starts a stretch of device work under key. *replayed true: the graph ran, *out holds the result
 * tensor the stretch made when it was captured (in a), and the caller skips the stretch (and
 * avo_backend_graph_end). */
avo_status avo_backend_graph_begin(avo_backend *be, avo_arena *a, uint64_t key, avo_tensor *out, bool *replayed,
                                   avo_error *err);

/* Ends the stretch begun with key: st is the stretch's status, out its result tensor. When the
 * stretch was being captured, its work is launched now as a graph (nothing ran during capture); a
 * capture that failed returns an error and switches graphs off on this back end. Returns st
 * otherwise. */
avo_status avo_backend_graph_end(avo_backend *be, avo_arena *a, uint64_t key, const avo_tensor *out, avo_status st,
                                 avo_error *err);

/* Graphs on (the default) or off for this CUDA back end; off forgets every graph.
 * AVO_ERR_INVALID_ARGUMENT for a back end that is not CUDA. */
avo_status avo_backend_cuda_set_graphs(avo_backend *be, bool on, avo_error *err);

/* Graph launches (replays and first launches after a capture) and captures so far. */
avo_status avo_backend_cuda_graph_counts(const avo_backend *be, int64_t *launches, int64_t *captures, avo_error *err);

#ifdef __cplusplus
}
#endif
#endif
