/* RVC's feature index as a plain array: the training set's content features, one row per 20 ms frame,
 * saved by NumPy (.npy, float32 or float16, C order, 2-D). RVC keeps the same rows in a faiss IVF index
 * and also saves them as total_fea.npy; `faiss.read_index(p).reconstruct_n(0, ntotal)` exports any
 * .index file to this form.
 *
 * Search is exact: squared L2 distances through one sgemm per block of index rows, so the memory beyond
 * the index is one block of distances. */
#include "converter_internal.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INDEX_BLOCK_ROWS 4096
#define INDEX_MAX_K 16

struct feature_index {
    int64_t rows;
    int dim;
    float *vectors; /* rows * dim */
    float *norms;   /* rows: squared L2 norm of each row */
};

int64_t feature_index_rows(const feature_index *ix) { return ix->rows; }
int feature_index_dim(const feature_index *ix) { return ix->dim; }

void feature_index_free(feature_index *ix) {
    if (!ix) return;
    free(ix->vectors);
    free(ix->norms);
    free(ix);
}

/* Value of key in a NumPy header dict ("'descr': '<f4', ..."): pointer just after "'key':" and spaces. */
static const char *npy_field(const char *header, const char *key) {
    char pattern[32];
    snprintf(pattern, sizeof pattern, "'%s':", key);
    const char *p = strstr(header, pattern);
    if (!p) return NULL;
    p += strlen(pattern);
    while (*p == ' ') p++;
    return p;
}

static float half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) mant <<= 1, exp--;
            bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Parses the .npy header; on success *offset is where the data starts and *half says float16. */
static avo_status npy_header(const unsigned char *d, size_t size, const char *name, int64_t *rows, int *dim,
                             int *half, size_t *offset, avo_error *err) {
    if (size < 10 || memcmp(d, "\x93NUMPY", 6) != 0)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: not a NumPy .npy file (export the index rows with numpy.save)",
                             name);
    size_t hlen, start;
    if (d[6] == 1) {
        hlen = (size_t)d[8] | (size_t)d[9] << 8;
        start = 10;
    } else if (d[6] == 2 || d[6] == 3) {
        if (size < 12) return avo_error_set(err, AVO_ERR_FORMAT, "%s: truncated .npy header", name);
        hlen = (size_t)d[8] | (size_t)d[9] << 8 | (size_t)d[10] << 16 | (size_t)d[11] << 24;
        start = 12;
    } else {
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: unsupported .npy version %d", name, d[6]);
    }
    if (hlen > 65536 || start + hlen > size)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: truncated .npy header", name);
    char header[65537];
    memcpy(header, d + start, hlen);
    header[hlen] = '\0';

    const char *descr = npy_field(header, "descr");
    if (descr && (strncmp(descr, "'<f4'", 5) == 0 || strncmp(descr, "'=f4'", 5) == 0)) *half = 0;
    else if (descr && (strncmp(descr, "'<f2'", 5) == 0 || strncmp(descr, "'=f2'", 5) == 0)) *half = 1;
    else return avo_error_set(err, AVO_ERR_FORMAT, "%s: index rows must be little-endian float32 or float16", name);
    const char *fortran = npy_field(header, "fortran_order");
    if (!fortran || strncmp(fortran, "False", 5) != 0)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: index array must be in C order", name);
    const char *shape = npy_field(header, "shape");
    long long r = -1, c = -1;
    if (!shape || sscanf(shape, "(%lld, %lld)", &r, &c) != 2 || r <= 0 || c <= 0 || c > 4096 || r > (1LL << 31))
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: index must be a 2-D array [rows, feature dim]", name);
    const size_t need = (size_t)r * (size_t)c * (*half ? 2u : 4u);
    if (size - start - hlen < need)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: truncated: %lld x %lld values need %zu bytes, %zu present",
                             name, r, c, need, size - start - hlen);
    *rows = r;
    *dim = (int)c;
    *offset = start + hlen;
    return AVO_OK;
}

avo_status feature_index_load_memory(const void *data, size_t size, const char *name, feature_index **out,
                                     avo_error *err) {
    *out = NULL;
    int64_t rows = 0;
    int dim = 0, half = 0;
    size_t offset = 0;
    avo_status st = npy_header(data, size, name, &rows, &dim, &half, &offset, err);
    if (st) return st;
    feature_index *ix = calloc(1, sizeof *ix);
    if (ix) {
        ix->vectors = malloc(sizeof(float) * (size_t)rows * (size_t)dim);
        ix->norms = malloc(sizeof(float) * (size_t)rows);
    }
    if (!ix || !ix->vectors || !ix->norms) {
        feature_index_free(ix);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: no memory for %lld x %d index rows", name, (long long)rows,
                             dim);
    }
    ix->rows = rows;
    ix->dim = dim;
    const unsigned char *src = (const unsigned char *)data + offset;
    const size_t count = (size_t)rows * (size_t)dim;
    if (half) {
        for (size_t i = 0; i < count; i++) ix->vectors[i] = half_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
    } else {
        memcpy(ix->vectors, src, count * sizeof(float));
    }
    for (size_t i = 0; i < count; i++) {
        if (!isfinite(ix->vectors[i])) {
            feature_index_free(ix);
            return avo_error_set(err, AVO_ERR_FORMAT, "%s: index holds a non-finite value at row %zu", name,
                                 i / (size_t)dim);
        }
    }
    for (int64_t r = 0; r < rows; r++) {
        const float *v = ix->vectors + r * dim;
        double s = 0.0;
        for (int j = 0; j < dim; j++) s += (double)v[j] * v[j];
        ix->norms[r] = (float)s;
    }
    *out = ix;
    return AVO_OK;
}

avo_status feature_index_load(const char *path, feature_index **out, avo_error *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return avo_error_set(err, AVO_ERR_IO, "%s: cannot open the index: %s", path, strerror(errno));
    void *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size > 0 && fseek(f, 0, SEEK_SET) == 0) buf = malloc((size_t)size);
    const int ok = buf && fread(buf, 1, (size_t)size, f) == (size_t)size;
    fclose(f);
    if (!ok) {
        free(buf);
        return avo_error_set(err, AVO_ERR_IO, "%s: cannot read the index (empty or unreadable)", path);
    }
    avo_status st = feature_index_load_memory(buf, (size_t)size, path, out, err);
    free(buf);
    return st;
}

/* Keeps the k smallest (distance, row) pairs in ascending order. */
static void top_insert(float *dist, int64_t *row, int k, float d, int64_t r) {
    if (!(d < dist[k - 1])) return;
    int i = k - 1;
    while (i > 0 && dist[i - 1] > d) {
        dist[i] = dist[i - 1];
        row[i] = row[i - 1];
        i--;
    }
    dist[i] = d;
    row[i] = r;
}

avo_status feature_index_blend(const feature_index *ix, float *feats, int64_t frames, int dim, double rate, int k,
                               avo_error *err) {
    if (dim != ix->dim)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "the index holds %d-dim features but the model uses %d (an index of another model?)",
                             ix->dim, dim);
    if (rate <= 0.0 || frames <= 0) return AVO_OK;
    if (k > ix->rows) k = (int)ix->rows;
    if (k > INDEX_MAX_K) k = INDEX_MAX_K;
    const int64_t block = ix->rows < INDEX_BLOCK_ROWS ? ix->rows : INDEX_BLOCK_ROWS;
    float *dots = malloc(sizeof(float) * (size_t)frames * (size_t)block);
    float *best_d = malloc(sizeof(float) * (size_t)frames * INDEX_MAX_K);
    int64_t *best_r = malloc(sizeof(int64_t) * (size_t)frames * INDEX_MAX_K);
    float *qnorm = malloc(sizeof(float) * (size_t)frames);
    if (!dots || !best_d || !best_r || !qnorm) {
        free(dots), free(best_d), free(best_r), free(qnorm);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "no memory for the index search");
    }
    for (int64_t t = 0; t < frames; t++) {
        double s = 0.0;
        for (int j = 0; j < dim; j++) s += (double)feats[t * dim + j] * feats[t * dim + j];
        qnorm[t] = (float)s;
        for (int j = 0; j < k; j++) best_d[t * INDEX_MAX_K + j] = INFINITY, best_r[t * INDEX_MAX_K + j] = 0;
    }
    for (int64_t r0 = 0; r0 < ix->rows; r0 += block) {
        const int64_t nb = ix->rows - r0 < block ? ix->rows - r0 : block;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)frames, (int)nb, dim, 1.0f, feats, dim,
                    ix->vectors + r0 * dim, dim, 0.0f, dots, (int)nb);
        for (int64_t t = 0; t < frames; t++) {
            const float *row = dots + t * nb;
            float *bd = best_d + t * INDEX_MAX_K;
            int64_t *br = best_r + t * INDEX_MAX_K;
            for (int64_t j = 0; j < nb; j++) {
                float d = qnorm[t] + ix->norms[r0 + j] - 2.0f * row[j];
                top_insert(bd, br, k, d > 0.0f ? d : 0.0f, r0 + j);
            }
        }
    }
    /* RVC's weights: (1 / squared distance)^2, normalised; an exact match takes all the weight. */
    const float a = (float)(rate > 1.0 ? 1.0 : rate);
    float *acc = malloc(sizeof(float) * (size_t)dim);
    if (!acc) {
        free(dots), free(best_d), free(best_r), free(qnorm);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "no memory for the index search");
    }
    for (int64_t t = 0; t < frames; t++) {
        const float *bd = best_d + t * INDEX_MAX_K;
        const int64_t *br = best_r + t * INDEX_MAX_K;
        double w[INDEX_MAX_K], wsum = 0.0;
        int exact = -1;
        for (int j = 0; j < k; j++) {
            if (bd[j] <= 1e-12f) {
                exact = j;
                break;
            }
            w[j] = 1.0 / ((double)bd[j] * bd[j]);
            wsum += w[j];
        }
        memset(acc, 0, sizeof(float) * (size_t)dim);
        for (int j = 0; j < k; j++) {
            const float wj = exact >= 0 ? (j == exact) : (float)(w[j] / wsum);
            if (wj == 0.0f) continue;
            const float *v = ix->vectors + br[j] * dim;
            for (int c = 0; c < dim; c++) acc[c] += wj * v[c];
        }
        float *f = feats + t * dim;
        for (int c = 0; c < dim; c++) f[c] = a * acc[c] + (1.0f - a) * f[c];
    }
    free(acc);
    free(dots), free(best_d), free(best_r), free(qnorm);
    return AVO_OK;
}
