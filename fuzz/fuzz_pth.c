/* Fuzzes the torch checkpoint reader. Input starting with a zip local header ("PK\3\4") goes
 * through libzip from memory (avo_ckpt_open_memory), with every tensor read back when it opens;
 * anything else is fed to the pickle machine directly, so mutations reach it without having to
 * keep a zip archive consistent. */
#include "autovoice/checkpoint.h"
#include "models/checkpoint_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    avo_error err;
    if (size < 4 || memcmp(data, "PK\x03\x04", 4) != 0) {
        ckpt_parse_pickle_bytes(data, size, &err);
        return 0;
    }
    avo_ckpt *c = NULL;
    if (avo_ckpt_open_memory(data, size, "fuzz.pth", &c, &err) != AVO_OK) return 0;
    for (size_t i = 0; i < avo_ckpt_tensor_count(c); i++) {
        const avo_ckpt_tensor *t = avo_ckpt_tensor_at(c, i);
        if (t->numel > (1 << 22)) continue; /* a valid header may claim a large (sparse) span */
        float *buf = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *buf);
        if (buf) avo_ckpt_tensor_read_f32(c, t, buf, t->numel, &err);
        free(buf);
    }
    avo_ckpt_lookup(c, "weight.emb_g.weight");
    avo_ckpt_free(c);
    return 0;
}
