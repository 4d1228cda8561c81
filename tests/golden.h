/* Reading the golden outputs the PyTorch reference scripts write: DIR/golden.json names each tensor's
 * raw little-endian float32 file and shape ({"tensors": {"name": {"file": ..., "shape": [...]}}}).
 * Shared by the model parity tests; failures are CHECKs, so a missing or short file fails the test. */
#ifndef AVO_TEST_GOLDEN_H
#define AVO_TEST_GOLDEN_H

#include <cjson/cJSON.h>

#include "test_util.h"

/* Parses DIR/golden.json; NULL (and a failed CHECK) if it cannot be read. Free with cJSON_Delete. */
static inline cJSON *avo_golden_open(const char *dir) {
    char path[900];
    snprintf(path, sizeof path, "%s/golden.json", dir);
    size_t size = 0;
    char *text = avo_test_read_file(path, &size);
    cJSON *js = text ? cJSON_ParseWithLength(text, size) : NULL;
    free(text);
    CHECK_MSG(js != NULL, "cannot read %s", path);
    return js;
}

/* Tensor NAME as malloc'd floats. *count gets its element count; rows / cols (either may be NULL) get
 * the first dimension and the product of the rest (1 for a 1-D tensor). The file's size must match
 * the shape. */
static inline float *avo_golden_tensor(const cJSON *js, const char *dir, const char *name, int64_t *count,
                                       int64_t *rows, int64_t *cols) {
    const cJSON *e = cJSON_GetObjectItem(cJSON_GetObjectItem(js, "tensors"), name);
    const cJSON *file = e ? cJSON_GetObjectItem(e, "file") : NULL;
    const cJSON *shape = e ? cJSON_GetObjectItem(e, "shape") : NULL;
    CHECK_MSG(cJSON_IsString(file) && cJSON_IsArray(shape), "golden.json has no tensor %s", name);
    if (!cJSON_IsString(file) || !cJSON_IsArray(shape)) return NULL;
    int64_t first = 1, rest = 1;
    for (int i = 0; i < cJSON_GetArraySize(shape); i++) {
        int64_t d = (int64_t)cJSON_GetArrayItem(shape, i)->valuedouble;
        if (i == 0) first = d;
        else rest *= d;
    }
    char path[900];
    snprintf(path, sizeof path, "%s/%s", dir, file->valuestring);
    size_t size = 0;
    float *d = (float *)avo_test_read_file(path, &size);
    CHECK_MSG(d && size == (size_t)(first * rest) * 4, "bad golden file %s", path);
    if (!d || size != (size_t)(first * rest) * 4) {
        free(d);
        return NULL;
    }
    if (count) *count = first * rest;
    if (rows) *rows = first;
    if (cols) *cols = rest;
    return d;
}

#endif
