/* .safetensors reader (filled in next). */
#include "models/checkpoint_internal.h"

avo_status ckpt_safetensors_load(avo_ckpt *c, uint64_t file_size, avo_error *err) {
    (void)file_size;
    return avo_error_set(err, AVO_ERR_UNSUPPORTED, "%s: .safetensors is not supported yet", c->name);
}
