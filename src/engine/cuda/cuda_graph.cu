/* CUDA Graphs for fixed-shape stretches of device work (engine_cuda.h).
 *
 * Replaying is only right if every address the captured kernels touch holds the same tensor again:
 * the weights (and their half / INT8 copies), which graph_gen guards (any dropped copy or freed
 * device block forgets every graph), and the arena's tensors, which the stretch allocates in the same
 * order from the same place when the arena starts it at the same address and mark with the same
 * chunks. The input the model uploaded before the stretch lands at the same address for the same
 * reason. A stretch is captured on its second identical run, never its first, so that one-time work
 * (half / INT8 weight copies, which read the weight back to the host, kernel attributes) has happened
 * outside the capture. Capture uses the relaxed mode: an arena chunk cudaMalloc'ed inside it is fine.
 * Measured on an H100, HuBERT FP16 at 30 s: 7.64 -> 7.14 ms a run (about 180 ops, interleaved A/B). */
#include "engine/cuda/cuda_internal.h"

extern "C" {
#include "autovoice/engine_cuda.h"
}

#include <string.h>

static void *arena_next(const avo_arena *a) {
    return a->cur < a->nchunks ? (void *)(a->chunks[a->cur].base + a->off) : NULL;
}

static bool same_mark(avo_arena_mark x, avo_arena_mark y) {
    return x.chunk == y.chunk && x.offset == y.offset && x.used == y.used;
}

static void graph_drop(cu_graph *g) {
    if (g->exec) cudaGraphExecDestroy(g->exec);
    memset(g, 0, sizeof *g);
}

void cu_graphs_forget(cu_impl *cu) {
    cu->graph_gen++;
    for (int i = 0; i < CU_GRAPHS; i++)
        if (cu->graphs[i].used && i != cu->capturing) graph_drop(&cu->graphs[i]);
}

/* The entry for key in a recorded in the back end's present state, or NULL. */
static cu_graph *graph_find(cu_impl *cu, const avo_arena *a, uint64_t key, void *start, avo_arena_mark m) {
    for (int i = 0; i < CU_GRAPHS; i++) {
        cu_graph *g = &cu->graphs[i];
        if (g->used && g->key == key && g->arena == a && g->start == start && same_mark(g->m0, m) &&
            g->precision == cu->precision && g->calib == (const void *)cu->calib && g->gen == cu->graph_gen)
            return g;
    }
    return NULL;
}

static bool chunks_same(const cu_graph *g, const avo_arena *a) {
    if (a->nchunks != g->nchunks) return false;
    for (size_t i = 0; i < a->nchunks; i++)
        if ((void *)a->chunks[i].base != g->bases[i]) return false;
    return true;
}

extern "C" avo_status avo_backend_graph_begin(avo_backend *be, avo_arena *a, uint64_t key, avo_tensor *out,
                                              bool *replayed, avo_error *err) {
    if (!replayed || !a || !out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "graph_begin: NULL argument");
    *replayed = false;
    cu_impl *cu = cu_checked(be);
    if (!cu) return AVO_OK;
    if (cu->graph_depth++ > 0 || cu->graphs_off || cu->prof || be->observer || cu->sticky) return AVO_OK;
    void *start = arena_next(a);
    avo_arena_mark m = avo_arena_get_mark(a);
    for (int i = 0; i < CU_GRAPHS; i++) /* entries of another state under this key are stale */
        if (cu->graphs[i].used && cu->graphs[i].key == key && cu->graphs[i].arena == a &&
            !graph_find(cu, a, key, start, m))
            graph_drop(&cu->graphs[i]);
    cu_graph *g = start ? graph_find(cu, a, key, start, m) : NULL;
    if (g && g->exec && chunks_same(g, a)) {
        cudaError_t e = cudaGraphLaunch(g->exec, cu->stream);
        if (e != cudaSuccess) {
            graph_drop(g);
            cu->graph_depth--;
            return cu_fail_cuda(err, "graph launch", e);
        }
        cu->graph_launches++;
        avo_arena_rewind(a, g->m1);
        if (a->used > a->peak) a->peak = a->used;
        *out = g->out;
        *replayed = true;
        cu->graph_depth--;
        return AVO_OK;
    }
    if (g && !g->exec) { /* the second identical run: capture it */
        cudaError_t e = cudaStreamBeginCapture(cu->stream, cudaStreamCaptureModeRelaxed);
        if (e == cudaSuccess) {
            cu->capturing = (int)(g - cu->graphs);
            return AVO_OK;
        }
        cudaGetLastError();
        graph_drop(g);
        return AVO_OK;
    }
    if (g) graph_drop(g);
    if (!start) return AVO_OK;
    /* the first run: remember where it starts (a free entry, else round robin) */
    int slot = -1;
    for (int i = 0; i < CU_GRAPHS && slot < 0; i++)
        if (!cu->graphs[i].used) slot = i;
    if (slot < 0) {
        slot = cu->graph_next;
        cu->graph_next = (cu->graph_next + 1) % CU_GRAPHS;
        graph_drop(&cu->graphs[slot]);
    }
    g = &cu->graphs[slot];
    g->used = 1;
    g->key = key;
    g->arena = a;
    g->start = start;
    g->m0 = m;
    g->precision = cu->precision;
    g->calib = (const void *)cu->calib;
    g->gen = cu->graph_gen;
    return AVO_OK;
}

extern "C" avo_status avo_backend_graph_end(avo_backend *be, avo_arena *a, uint64_t key, const avo_tensor *out,
                                            avo_status st, avo_error *err) {
    cu_impl *cu = cu_checked(be);
    if (!cu || !a) return st;
    if (cu->graph_depth > 0) cu->graph_depth--;
    if (cu->graph_depth > 0 || cu->capturing < 0) return st;
    cu_graph *g = &cu->graphs[cu->capturing];
    cu->capturing = -1;
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamEndCapture(cu->stream, &graph);
    if (st != AVO_OK || e != cudaSuccess || !graph || g->key != key || g->arena != a || !out) {
        if (graph) cudaGraphDestroy(graph);
        cudaGetLastError();
        graph_drop(g);
        if (st != AVO_OK) return st;
        cu->graphs_off = 1;
        return avo_error_set(err, AVO_ERR_INTERNAL,
                             "cuda: capturing a graph failed (%s); graphs are off on this back end now: run again",
                             e != cudaSuccess ? cudaGetErrorString(e) : "stretch mismatch");
    }
    cudaGraphExec_t exec = NULL;
    e = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    if (e == cudaSuccess) e = cudaGraphLaunch(exec, cu->stream);
    if (e != cudaSuccess) {
        if (exec) cudaGraphExecDestroy(exec);
        cudaGetLastError();
        graph_drop(g);
        cu->graphs_off = 1;
        return avo_error_set(err, AVO_ERR_INTERNAL,
                             "cuda: a captured graph could not run (%s); graphs are off on this back end now: run again",
                             cudaGetErrorString(e));
    }
    cu->graph_captures++;
    cu->graph_launches++;
    if (g->gen != cu->graph_gen) { /* memory it reads changed during the capture: run, never replay */
        cudaGraphExecDestroy(exec);
        graph_drop(g);
        return AVO_OK;
    }
    g->exec = exec;
    g->m1 = avo_arena_get_mark(a);
    g->nchunks = a->nchunks;
    for (size_t i = 0; i < a->nchunks; i++) g->bases[i] = a->chunks[i].base;
    g->out = *out;
    return AVO_OK;
}

extern "C" avo_status avo_backend_cuda_set_graphs(avo_backend *be, bool on, avo_error *err) {
    cu_impl *cu = cu_checked(be);
    if (!cu) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "cuda: set_graphs on a back end that is not CUDA");
    cu->graphs_off = on ? 0 : 1;
    if (!on) cu_graphs_forget(cu);
    return AVO_OK;
}

extern "C" avo_status avo_backend_cuda_graph_counts(const avo_backend *be, int64_t *launches, int64_t *captures,
                                                    avo_error *err) {
    cu_impl *cu = cu_checked(be);
    if (!cu) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "cuda: graph_counts on a back end that is not CUDA");
    if (launches) *launches = cu->graph_launches;
    if (captures) *captures = cu->graph_captures;
    return AVO_OK;
}
