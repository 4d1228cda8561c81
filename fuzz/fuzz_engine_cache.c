/* Fuzzes the engine file reader (engine_cache.h) from memory, three ways: the input as a whole file;
 * the same with its last 8 bytes made the right checksum (so that mutations reach the records); and
 * the input as the records after a valid header for the expected key, with the right checksum
 * appended. The reader must never crash, and must leave the arena as it found it on a miss; an
 * accepted file must have used the arena for its tensors (or hold none). */
#include "autovoice/engine_cache.h"

#include <stdlib.h>
#include <string.h>

static const char key[] = "autovoice engine\nformat=1\nlibrary=fuzz\nloader=fuzz/1\nmodel=m.pth\n"
                          "model_hash=0123456789abcdef\ndevice=cpu\nprecision=fp32\nprofile=default\n";

static avo_backend *be;
static avo_arena *arena;

static void check(const uint8_t *data, size_t size) {
    avo_error err;
    int64_t n = -1;
    avo_arena_reset(arena);
    avo_status st = avo_engine_read_memory(data, size, key, arena, &n, &err);
    if (st != AVO_OK && avo_arena_used(arena) != 0) abort();           /* a miss leaves nothing behind */
    if (st == AVO_OK && (n < 0 || (n > 0 && avo_arena_used(arena) == 0))) abort();
    if (st != AVO_OK && !err.message[0]) abort();                      /* a miss always says why */
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!be) {
        avo_error err;
        if (avo_backend_cpu_create(1, &be, &err) || avo_arena_create(be, 1 << 16, &arena, &err)) abort();
    }
    if (size > (1u << 20)) return 0;
    check(data, size);
    uint8_t *copy = malloc(size + 4096);
    if (!copy) return 0;
    if (size >= 8) { /* the checksum made right */
        memcpy(copy, data, size);
        put_u64(copy + size - 8, avo_engine_hash(copy, size - 8));
        check(copy, size);
    }
    /* a valid header for the key, the input as its records, the right checksum */
    size_t tl = strlen(key), head = (16 + tl + 63) / 64 * 64;
    memset(copy, 0, head);
    memcpy(copy, "AVENGINE", 8);
    copy[8] = AVO_ENGINE_FORMAT_VERSION;
    copy[12] = (uint8_t)tl, copy[13] = (uint8_t)(tl >> 8);
    memcpy(copy + 16, key, tl);
    memcpy(copy + head, data, size);
    put_u64(copy + head + size, avo_engine_hash(copy, head + size));
    check(copy, head + size + 8);
    free(copy);
    return 0;
}
