/* Fuzzes the .safetensors reader from memory; every tensor is read back when the file opens. */
#include "autovoice/checkpoint.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    avo_error err;
    avo_ckpt *c = NULL;
    if (avo_ckpt_open_memory(data, size, "fuzz.safetensors", &c, &err) != AVO_OK) return 0;
    for (size_t i = 0; i < avo_ckpt_tensor_count(c); i++) {
        const avo_ckpt_tensor *t = avo_ckpt_tensor_at(c, i);
        float *buf = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *buf);
        if (buf) avo_ckpt_tensor_read_f32(c, t, buf, t->numel, &err);
        free(buf);
    }
    avo_ckpt_lookup(c, "__metadata__.format");
    avo_ckpt_free(c);
    return 0;
}
