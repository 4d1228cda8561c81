/* CUDA back end: device memory (a pool of cudaMalloc blocks for the arenas' chunks), copies through
 * pinned staging buffers, one stream, cuBLAS, and the function table. The ops themselves are in
 * cuda_gemm_ops.cu (cuBLAS-based) and cuda_kernels.cu (own kernels). */
#include "engine/cuda/cuda_internal.h"

extern "C" {
#include "engine/cuda/cuda_profile.h"
}

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Staging buffers of 4 MB: large enough for full PCIe rate, small enough to overlap the host copy
 * into one with the upload of the other. */
#define CU_STAGE_FLOATS (1u << 20)
/* Freed blocks kept for reuse (arena resets free and allocate chunks; cudaFree synchronises). */
#define CU_POOL_MAX_BYTES ((size_t)2 << 30)

/* ---- errors --------------------------------------------------------------------------------- */

avo_status cu_fail_cuda(avo_error *err, const char *what, cudaError_t e) {
    return avo_error_set(err, e == cudaErrorMemoryAllocation ? AVO_ERR_NO_MEMORY : AVO_ERR_INTERNAL, "cuda: %s: %s (%s)",
                         what, cudaGetErrorString(e), cudaGetErrorName(e));
}

avo_status cu_fail_blas(avo_error *err, const char *what, cublasStatus_t s) {
    return avo_error_set(err, s == CUBLAS_STATUS_ALLOC_FAILED ? AVO_ERR_NO_MEMORY : AVO_ERR_INTERNAL, "cuda: %s: %s",
                         what, cublasGetStatusString(s));
}

static void cu_set_sticky(cu_impl *cu, const char *what, cudaError_t e) {
    if (cu->sticky) return;
    cu->sticky = AVO_ERR_INTERNAL;
    snprintf(cu->sticky_msg, sizeof cu->sticky_msg, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

avo_status cu_check_sticky(cu_impl *cu, const char *op, avo_error *err) {
    if (cu->sticky) return avo_error_set(err, cu->sticky, "cuda: %s: an earlier copy failed: %s", op, cu->sticky_msg);
    return AVO_OK;
}

avo_status cu_check_launch(const char *op, avo_error *err) {
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? AVO_OK : cu_fail_cuda(err, op, e);
}

/* ---- memory --------------------------------------------------------------------------------- */

static bool grow(void **arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t n = *cap ? *cap * 2 : 16;
    while (n < need) n *= 2;
    void *p = realloc(*arr, n * elem);
    if (!p) return false;
    *arr = p;
    *cap = n;
    return true;
}

void cu_note_write(cu_impl *cu, const void *p, size_t bytes) {
    uintptr_t lo = (uintptr_t)p, hi = lo + bytes;
    if (!cu->n_hw || hi <= cu->hw_lo || lo >= cu->hw_hi) return;
    size_t k = 0;
    uintptr_t nlo = UINTPTR_MAX, nhi = 0;
    for (size_t i = 0; i < cu->n_hw; i++) {
        cu_half_weight *h = &cu->hw[i];
        if (h->lo < hi && lo < h->hi) {
            if (h->h) cudaFreeAsync(h->h, cu->stream); /* ops already queued that read it run first */
            if (k == i) cu_graphs_forget(cu);            /* the first one dropped: graphs may read it */
            continue;
        }
        if (h->lo < nlo) nlo = h->lo;
        if (h->hi > nhi) nhi = h->hi;
        cu->hw[k++] = *h;
    }
    cu->n_hw = k;
    cu->hw_lo = nlo;
    cu->hw_hi = nhi;
}

avo_status cu_scratch(cu_impl *cu, avo_arena *a, size_t bytes, void **out, avo_error *err) {
    float *p = NULL;
    avo_status st = engine_scratch(a, (int64_t)((bytes + 3) / 4), &p, err);
    *out = p;
    if (!st) cu_note_write(cu, p, bytes);
    return st;
}

static void cu_pool_release_all(cu_impl *cu) {
    for (size_t i = 0; i < cu->n_pool; i++) cudaFree(cu->pool[i].p);
    cu->n_pool = 0;
    cu->pool_bytes = 0;
}

static void *cu_mem_alloc(avo_backend *be, size_t bytes) {
    cu_impl *cu = cu_of(be);
    if (!bytes) bytes = 256;
    if (!grow((void **)&cu->live, &cu->cap_live, cu->n_live + 1, sizeof(cu_block))) return NULL;
    /* the smallest pooled block that fits without wasting more than half of it */
    size_t best = cu->n_pool;
    for (size_t i = 0; i < cu->n_pool; i++)
        if (cu->pool[i].size >= bytes && cu->pool[i].size / 2 <= bytes &&
            (best == cu->n_pool || cu->pool[i].size < cu->pool[best].size))
            best = i;
    cu_block blk = {NULL, 0};
    if (best < cu->n_pool) {
        blk = cu->pool[best];
        cu->pool[best] = cu->pool[--cu->n_pool];
        cu->pool_bytes -= blk.size;
    } else {
        cudaError_t e = cudaMalloc(&blk.p, bytes);
        if (e != cudaSuccess && cu->n_pool) {
            cudaGetLastError(); /* clear it, give the pool back and try once more */
            cu_pool_release_all(cu);
            e = cudaMalloc(&blk.p, bytes);
        }
        if (e != cudaSuccess) {
            cudaGetLastError();
            return NULL;
        }
        blk.size = bytes;
    }
    cu_note_write(cu, blk.p, blk.size); /* reused memory: no half copy may survive in it */
    cu->live[cu->n_live++] = blk;
    return blk.p;
}

static void cu_mem_free(avo_backend *be, void *p) {
    cu_impl *cu = cu_of(be);
    if (!p) return;
    for (size_t i = 0; i < cu->n_live; i++) {
        if (cu->live[i].p != p) continue;
        cu_block blk = cu->live[i];
        cu->live[i] = cu->live[--cu->n_live];
        cu_note_write(cu, blk.p, blk.size);
        cu_graphs_forget(cu); /* a graph may read this block: never replay one after a free */
        /* Reuse is safe without a sync: every later user of the block runs on the same stream. */
        while (cu->n_pool && cu->pool_bytes + blk.size > CU_POOL_MAX_BYTES) {
            cu->pool_bytes -= cu->pool[0].size;
            cudaFree(cu->pool[0].p);
            cu->pool[0] = cu->pool[--cu->n_pool];
        }
        if (blk.size <= CU_POOL_MAX_BYTES && grow((void **)&cu->pool, &cu->cap_pool, cu->n_pool + 1, sizeof(cu_block))) {
            cu->pool[cu->n_pool++] = blk;
            cu->pool_bytes += blk.size;
        } else {
            cudaFree(blk.p);
        }
        return;
    }
    cudaFree(p); /* not ours: should not happen */
}

/* Waits until staging buffer i may be overwritten (its last upload is done). */
static bool stage_wait(cu_impl *cu, int i) {
    cudaError_t e = cudaEventSynchronize(cu->stage_ev[i]);
    if (e != cudaSuccess) {
        cu_set_sticky(cu, "copy_in", e);
        return false;
    }
    return true;
}

static void cu_copy_in(avo_backend *be, void *dst, const float *src, size_t count) {
    cu_impl *cu = cu_of(be);
    cu_note_write(cu, dst, count * sizeof(float));
    /* Returns once src has been read: the uploads from the staging buffers finish in stream order. */
    for (size_t off = 0; off < count; off += cu->stage_floats) {
        size_t n = count - off < cu->stage_floats ? count - off : cu->stage_floats;
        int i = cu->stage_next;
        cu->stage_next ^= 1;
        if (!stage_wait(cu, i)) return;
        memcpy(cu->stage[i], src + off, n * sizeof(float));
        cudaError_t e = cudaMemcpyAsync((float *)dst + off, cu->stage[i], n * sizeof(float), cudaMemcpyHostToDevice,
                                        cu->stream);
        if (e == cudaSuccess) e = cudaEventRecord(cu->stage_ev[i], cu->stream);
        if (e != cudaSuccess) {
            cu_set_sticky(cu, "copy_in", e);
            return;
        }
    }
}

static void cu_copy_out(avo_backend *be, float *dst, const void *src, size_t count) {
    cu_impl *cu = cu_of(be);
    /* Two buffers in flight: the host copies one out while the next downloads. */
    size_t nchunks = (count + cu->stage_floats - 1) / cu->stage_floats;
    for (size_t c = 0; c <= nchunks; c++) {
        if (c < nchunks) {
            size_t off = c * cu->stage_floats, n = count - off < cu->stage_floats ? count - off : cu->stage_floats;
            int i = (int)(c & 1);
            if (!stage_wait(cu, i)) break;
            cudaError_t e = cudaMemcpyAsync(cu->stage[i], (const float *)src + off, n * sizeof(float),
                                            cudaMemcpyDeviceToHost, cu->stream);
            if (e == cudaSuccess) e = cudaEventRecord(cu->stage_ev[i], cu->stream);
            if (e != cudaSuccess) {
                cu_set_sticky(cu, "copy_out", e);
                break;
            }
        }
        if (c > 0) {
            size_t off = (c - 1) * cu->stage_floats, n = count - off < cu->stage_floats ? count - off : cu->stage_floats;
            int i = (int)((c - 1) & 1);
            if (!stage_wait(cu, i)) break;
            memcpy(dst + off, cu->stage[i], n * sizeof(float));
        }
    }
    if (count == 0) {
        cudaError_t e = cudaStreamSynchronize(cu->stream);
        if (e != cudaSuccess) cu_set_sticky(cu, "copy_out", e);
    }
    if (cu->sticky) memset(dst, 0xff, count * sizeof(float)); /* NaNs rather than stale data */
}

static void cu_destroy(avo_backend *be) {
    if (!be) return;
    cu_impl *cu = cu_of(be);
    if (cu) {
        cudaSetDevice(cu->device);
        if (cu->stream) cudaStreamSynchronize(cu->stream);
        cu_half_weights_clear(cu);
        cu->capturing = -1;
        cu_graphs_forget(cu);
        if (cu->stream) cudaStreamSynchronize(cu->stream);
        for (size_t i = 0; i < cu->n_live; i++) cudaFree(cu->live[i].p);
        cu_pool_release_all(cu);
        for (int i = 0; i < 2; i++) {
            if (cu->stage[i]) cudaFreeHost(cu->stage[i]);
            if (cu->stage_ev[i]) cudaEventDestroy(cu->stage_ev[i]);
        }
        cu_profile_free(cu);
        if (cu->flag_host) cudaFreeHost(cu->flag_host);
        if (cu->flag_dev) cudaFree(cu->flag_dev);
        if (cu->blas) cublasDestroy(cu->blas);
        if (cu->stream) cudaStreamDestroy(cu->stream);
        free(cu->live);
        free(cu->pool);
        free(cu->hw);
        free(cu);
    }
    free(be);
}

/* ---- GEMM ----------------------------------------------------------------------------------- */

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: B goes first, untransposed flags
 * stay as they are because a row-major buffer read column-major is already the transpose. */
avo_status cu_sgemm(cu_impl *cu, bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                    long long sA, const float *B, int ldb, long long sB, float beta, float *C, int ldc, long long sC,
                    int batch, avo_error *err) {
    cublasOperation_t oa = tb ? CUBLAS_OP_T : CUBLAS_OP_N, ob = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasStatus_t s;
    if (batch == 1)
        s = cublasSgemm(cu->blas, oa, ob, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc);
    else
        s = cublasSgemmStridedBatched(cu->blas, oa, ob, N, M, K, &alpha, B, ldb, sB, A, lda, sA, &beta, C, ldc, sC,
                                      batch);
    cu->gemm_fp32++;
    return s == CUBLAS_STATUS_SUCCESS ? AVO_OK : cu_fail_blas(err, "sgemm", s);
}

avo_status cu_hgemm(cu_impl *cu, bool ta, bool tb, int M, int N, int K, float alpha, const __half *A, int lda,
                    long long sA, const __half *B, int ldb, long long sB, float beta, float *C, int ldc, long long sC,
                    int batch, avo_error *err) {
    cublasOperation_t oa = tb ? CUBLAS_OP_T : CUBLAS_OP_N, ob = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasStatus_t s;
    if (batch == 1)
        s = cublasGemmEx(cu->blas, oa, ob, N, M, K, &alpha, B, CUDA_R_16F, ldb, A, CUDA_R_16F, lda, &beta, C, CUDA_R_32F,
                         ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    else
        s = cublasGemmStridedBatchedEx(cu->blas, oa, ob, N, M, K, &alpha, B, CUDA_R_16F, ldb, sB, A, CUDA_R_16F, lda, sA,
                                       &beta, C, CUDA_R_32F, ldc, sC, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    cu->gemm_fp16++;
    return s == CUBLAS_STATUS_SUCCESS ? AVO_OK : cu_fail_blas(err, "half gemm", s);
}

/* ---- function table ------------------------------------------------------------------------- */

static avo_backend_ops make_ops(const char *name) {
    avo_backend_ops o;
    memset(&o, 0, sizeof o);
    o.name = name;
    o.host_memory = false;
    o.mem_alloc = cu_mem_alloc;
    o.mem_free = cu_mem_free;
    o.copy_in = cu_copy_in;
    o.copy_out = cu_copy_out;
    o.destroy = cu_destroy;
    o.linear = cu_linear;
    o.conv1d = cu_conv1d;
    o.conv1d_fused = cu_conv1d_fused;
    o.conv_transpose1d = cu_conv_transpose1d;
    o.layer_norm = cu_layer_norm;
    o.group_norm = cu_group_norm;
    o.act = cu_act;
    o.binary = cu_binary;
    o.rel_attention = cu_rel_attention;
    o.embedding = cu_embedding;
    o.upsample = cu_upsample;
    o.pool1d = cu_pool1d;
    o.transpose = cu_transpose;
    o.copy = cu_copy;
    o.bigru = cu_bigru;
    cu_ops2d_register(&o);
    return o;
}

/* One table per precision, so that avo_backend_name says which one is selected, and a profiling
 * twin of each (cuda_profile.cu) whose entries time the plain ones. */
static const avo_backend_ops *ops_for(int precision, int prof) {
    static const char *const names[3] = {"cuda", "cuda-fp16", "cuda-int8"};
    static avo_backend_ops plain[3], profiled[3];
    static bool init = false;
    if (!init) { /* one back end per thread, but creation may race: the tables are only ever written the same */
        for (int i = 0; i < 3; i++) {
            plain[i] = make_ops(names[i]);
            profiled[i] = make_ops(names[i]);
            cu_profile_register(&profiled[i]);
        }
        init = true;
    }
    int i = precision == AVO_CUDA_INT8 ? 2 : precision == AVO_CUDA_FP16 ? 1 : 0;
    return prof ? &profiled[i] : &plain[i];
}

const avo_backend_ops *cu_plain_ops(int precision) { return ops_for(precision, 0); }

cu_impl *cu_checked(const avo_backend *be) {
    if (!be) return NULL;
    for (int p = 0; p < 3; p++)
        for (int q = 0; q < 2; q++)
            if (be->ops == ops_for(p, q)) return cu_of(be);
    return NULL;
}

static cu_impl *cuda_impl_of(const avo_backend *be) { return cu_checked(be); }

/* ---- public --------------------------------------------------------------------------------- */

bool avo_backend_cuda_built(void) { return true; }

avo_status avo_backend_cuda_create(int device, avo_backend **out, avo_error *err) {
    if (!out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "cuda: no output pointer");
    *out = NULL;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError();
        return avo_error_set(err, AVO_ERR_UNSUPPORTED, "cuda: no usable GPU (%s); staying on the CPU",
                             e != cudaSuccess ? cudaGetErrorString(e) : "no device found");
    }
    if (device < 0) device = 0;
    if (device >= count)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "cuda: device %d asked for, %d present", device, count);
    avo_backend *be = (avo_backend *)calloc(1, sizeof *be);
    cu_impl *cu = (cu_impl *)calloc(1, sizeof *cu);
    if (!be || !cu) {
        free(be);
        free(cu);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "cuda: out of memory creating the back end");
    }
    be->ops = ops_for(AVO_CUDA_FP32, 0);
    be->n_threads = 1;
    be->impl = cu;
    cu->device = device;
    cu->stage_floats = CU_STAGE_FLOATS;
    cu->capturing = -1;
    const char *what = "cudaSetDevice";
    e = cudaSetDevice(device);
    cudaDeviceProp prop;
    if (e == cudaSuccess) {
        what = "cudaGetDeviceProperties";
        e = cudaGetDeviceProperties(&prop, device);
    }
    if (e == cudaSuccess) {
        cu->n_sm = prop.multiProcessorCount;
        cu->cc_major = prop.major;
        cu->cc_minor = prop.minor;
        snprintf(cu->gpu_name, sizeof cu->gpu_name, "%s", prop.name);
        cu->coop = prop.cooperativeLaunch;
        cu->smem_optin = (int)prop.sharedMemPerBlockOptin;
        what = "cudaStreamCreate";
        e = cudaStreamCreateWithFlags(&cu->stream, cudaStreamNonBlocking);
    }
    for (int i = 0; i < 2 && e == cudaSuccess; i++) {
        what = "pinned staging buffer";
        e = cudaMallocHost((void **)&cu->stage[i], cu->stage_floats * sizeof(float));
        if (e == cudaSuccess) e = cudaEventCreateWithFlags(&cu->stage_ev[i], cudaEventDisableTiming);
    }
    if (e == cudaSuccess) {
        what = "flag";
        e = cudaMalloc((void **)&cu->flag_dev, sizeof(int));
        if (e == cudaSuccess) e = cudaMallocHost((void **)&cu->flag_host, sizeof(int));
    }
    if (e != cudaSuccess) {
        avo_status st = cu_fail_cuda(err, what, e);
        cudaGetLastError();
        cu_destroy(be);
        return st;
    }
    cublasStatus_t s = cublasCreate(&cu->blas);
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasSetStream(cu->blas, cu->stream);
    /* FP32 means FP32: no TF32 tensor-core shortcut (cuBLAS's default math mode already refuses it,
     * unless NVIDIA_TF32_OVERRIDE says otherwise; pedantic would also forbid faster exact paths). */
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasSetMathMode(cu->blas, CUBLAS_DEFAULT_MATH);
    if (s != CUBLAS_STATUS_SUCCESS) {
        avo_status st = cu_fail_blas(err, "cuBLAS set-up", s);
        cu_destroy(be);
        return st;
    }
    /* Test and benchmark hooks, read once here: AVO_CUDA_PRECISION=fp16 starts in FP16 mode (for
     * callers that cannot reach the back end, such as the converter before it takes a precision),
     * AVO_CUDA_PROFILE=1 starts in profiling mode. */
    const char *pv = getenv("AVO_CUDA_PRECISION");
    if (pv && !strcmp(pv, "fp16")) avo_backend_cuda_set_precision(be, AVO_CUDA_FP16, NULL);
    const char *pf = getenv("AVO_CUDA_PROFILE");
    if (pf && !strcmp(pf, "1")) avo_backend_cuda_profile(be, true, NULL);
    *out = be;
    return AVO_OK;
}

avo_status avo_backend_cuda_profile(avo_backend *be, bool on, avo_error *err) {
    cu_impl *cu = cuda_impl_of(be);
    if (!cu) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "cuda: profile on a back end that is not CUDA");
    cu->prof = on ? 1 : 0;
    be->ops = ops_for(cu->precision, cu->prof);
    return AVO_OK;
}

avo_status avo_backend_cuda_set_precision(avo_backend *be, avo_cuda_precision precision, avo_error *err) {
    cu_impl *cu = cuda_impl_of(be);
    if (!cu) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "cuda: set_precision on a back end that is not CUDA");
    if (precision != AVO_CUDA_FP32 && precision != AVO_CUDA_FP16 && precision != AVO_CUDA_INT8)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "cuda: unknown precision %d", (int)precision);
    if (precision == AVO_CUDA_INT8 && !cu->calib)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "cuda: INT8 needs a calibration table first (avo_backend_cuda_set_calibration)");
    if (cu->precision != (int)precision) cu_half_weights_clear(cu);
    cu->precision = (int)precision;
    be->ops = ops_for(precision, cu->prof);
    return AVO_OK;
}

avo_status avo_backend_cuda_set_switch(avo_backend *be, avo_cuda_switch sw, bool on, avo_error *err) {
    cu_impl *cu = cuda_impl_of(be);
    if (!cu) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "cuda: set_switch on a back end that is not CUDA");
    int off = on ? 0 : 1;
    switch (sw) {
    case AVO_CUDA_SW_FUSED: cu->no_fuse = off; break;
    case AVO_CUDA_SW_DIRECT_CONV2D: cu->no_direct2d = off; break;
    case AVO_CUDA_SW_GRU_CLUSTER: cu->no_gru_cluster = off; break;
    case AVO_CUDA_SW_FLASH_REL: cu->no_flash_rel = off; break;
    default: return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "cuda: unknown switch %d", (int)sw);
    }
    return AVO_OK;
}

avo_status avo_backend_cuda_gemm_counts(const avo_backend *be, int64_t *fp32, int64_t *fp16, avo_error *err) {
    cu_impl *cu = cuda_impl_of(be);
    if (!cu) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "cuda: gemm_counts on a back end that is not CUDA");
    if (fp32) *fp32 = cu->gemm_fp32;
    if (fp16) *fp16 = cu->gemm_fp16;
    return AVO_OK;
}

avo_status avo_backend_cuda_set_calibration(avo_backend *be, const avo_calib_table *t, avo_error *err) {
    cu_impl *cu = cuda_impl_of(be);
    if (!cu) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "cuda: set_calibration on a back end that is not CUDA");
    cu_half_weights_clear(cu); /* INT8 copies carry the old table's scales (a new table may reuse its address) */
    cu->calib = t;
    if (!t && cu->precision == AVO_CUDA_INT8) {
        cu->precision = AVO_CUDA_FP16;
        be->ops = ops_for(cu->precision, cu->prof);
    }
    return AVO_OK;
}

avo_status avo_backend_cuda_int8_counts(const avo_backend *be, int64_t *int8, int64_t *int8_skipped, avo_error *err) {
    cu_impl *cu = cuda_impl_of(be);
    if (!cu) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "cuda: int8_counts on a back end that is not CUDA");
    if (int8) *int8 = cu->gemm_int8;
    if (int8_skipped) *int8_skipped = cu->int8_skipped;
    return AVO_OK;
}

avo_status avo_backend_cuda_device_key(const avo_backend *be, char *buf, size_t cap, avo_error *err) {
    cu_impl *cu = cuda_impl_of(be);
    if (!cu) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "cuda: device_key on a back end that is not CUDA");
    snprintf(buf, cap, "cuda:%s:sm_%d%d", cu->gpu_name, cu->cc_major, cu->cc_minor);
    return AVO_OK;
}

avo_status avo_backend_cuda_sync(avo_backend *be, avo_error *err) {
    cu_impl *cu = cuda_impl_of(be);
    if (!cu) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "cuda: sync on a back end that is not CUDA");
    cudaError_t e = cudaStreamSynchronize(cu->stream);
    if (e != cudaSuccess) return cu_fail_cuda(err, "sync", e);
    return cu_check_sticky(cu, "sync", err);
}
