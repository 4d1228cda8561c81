/* Neural models built on the engine (engine.h): the HuBERT-base / ContentVec content encoder.
 *
 * HuBERT (fairseq HubertModel, as RVC and so-vits-svc use it): 16 kHz mono audio -> conv feature
 * encoder (7 bias-free convs, GroupNorm after the first, GELU) -> LayerNorm -> post_extract_proj ->
 * weight-normed positional conv added -> encoder LayerNorm -> post-LN transformer layers; one
 * frame per 320 samples ((n - 400) / 320 + 1 frames). Dimensions come from the checkpoint's tensor
 * shapes, the layer count from its keys, the head count from cfg.model.encoder_attention_heads
 * (or args.encoder_attention_heads; dim / 64 when neither is stored, as in HuBERT base). */
#ifndef AUTOVOICE_MODELS_H
#define AUTOVOICE_MODELS_H

#include "autovoice/common.h"
#include "autovoice/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avo_hubert avo_hubert;

/* Loads a fairseq checkpoint ({"model": state_dict, ...}, fp16 or fp32, e.g. RVC's hubert_base.pt)
 * or a bare state_dict. The weights live in the model; be must outlive it. */
avo_status avo_hubert_load(const char *path, avo_backend *be, avo_hubert **out, avo_error *err);
void avo_hubert_free(avo_hubert *m);

/* Model sizes: transformer width, layer count, final_proj width (0 if the checkpoint has none). */
int avo_hubert_dim(const avo_hubert *m);
int avo_hubert_layers(const avo_hubert *m);
int avo_hubert_final_dim(const avo_hubert *m);

/* Features of samples (n values at 16 kHz, n >= 400) after transformer layer output_layer
 * (1-based, 1..layers; RVC v1 uses 9 with final_proj, v2 uses 12 without), optionally through
 * final_proj. *out is a new [frames, dim] (or [frames, final_dim]) tensor from arena a, valid until
 * a is reset. */
avo_status avo_hubert_extract(avo_hubert *m, avo_arena *a, const float *samples, int64_t n, int output_layer,
                              bool use_final_proj, avo_tensor *out, avo_error *err);

#ifdef __cplusplus
}
#endif
#endif
