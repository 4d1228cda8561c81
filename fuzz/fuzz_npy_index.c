/* Fuzzes the .npy feature index reader (RVC's total_fea.npy) from memory, then one retrieval on it. */
#include "convert/converter_internal.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    avo_error err;
    feature_index *ix = NULL;
    if (feature_index_load_memory(data, size, "fuzz.npy", &ix, &err) != AVO_OK) return 0;
    const int dim = feature_index_dim(ix);
    float *q = calloc((size_t)dim * 2, sizeof *q);
    if (q) {
        for (int i = 0; i < dim * 2; i++) q[i] = (float)(i % 7) - 3.0f;
        feature_index_blend(ix, q, 2, dim, 0.75, 8, &err);
    }
    free(q);
    feature_index_free(ix);
    return 0;
}
