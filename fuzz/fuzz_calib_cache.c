/* Fuzzes the INT8 calibration cache parser (calibrate.h) from memory, with and without an expected
 * model hash, as given and with its checksum made right (so that mutations reach the line parser);
 * an accepted table must hold valid entries that its own lookup finds. */
#include "autovoice/calibrate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void check(const char *text, size_t size) {
    avo_error err;
    avo_calib_table *t = NULL;
    const uint64_t want = 0x0123456789abcdefull;
    avo_calib_cache_parse(text, size, "fuzz.calib", &want, &t, &err);
    avo_calib_table_free(t);
    t = NULL;
    if (avo_calib_cache_parse(text, size, "fuzz.calib", NULL, &t, &err) != AVO_OK) return;
    for (int i = 0; i < avo_calib_table_count(t); i++) {
        const char *name;
        float s, s2;
        avo_calib_table_entry(t, i, &name, &s);
        size_t n = strlen(name);
        if (n == 0 || n >= AVO_CALIB_NAME_MAX || strchr(name, ':') || strchr(name, ' ')) abort();
        if (!(s > 0.0f) || !isfinite(s)) abort();
        if (!avo_calib_table_find(t, name, &s2) || s2 != s) abort();
    }
    avo_calib_table_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check((const char *)data, size);
    /* the same with the checksum of the first line's "checksum=" field recomputed */
    const char *nl = memchr(data, '\n', size);
    if (!nl) return 0;
    char *copy = malloc(size);
    if (!copy) return 0;
    memcpy(copy, data, size);
    const size_t head = (size_t)(nl - (const char *)data);
    for (size_t i = 0; i + 9 + 8 <= head; i++) {
        if (memcmp(copy + i, "checksum=", 9) != 0) continue;
        uint64_t h = avo_fnv1a64(AVO_FNV64_INIT, copy, i + 9);
        h = avo_fnv1a64(h, copy + head + 1, size - head - 1);
        static const char hex[] = "0123456789abcdef";
        for (int k = 0; k < 8; k++) copy[i + 9 + k] = hex[(h >> (28 - 4 * k)) & 15];
        check(copy, size);
        break;
    }
    free(copy);
    return 0;
}
