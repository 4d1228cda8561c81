/* Neural models built on the engine (engine.h): the HuBERT-base / ContentVec content encoder, the RMVPE
 * pitch network and the RVC synthesizer.
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

/* ---- RMVPE pitch network ---------------------------------------------------------------------
 * RVC's rmvpe.pt (the bare E2E state_dict, fp16 or fp32): 16 kHz audio -> 128-band log-mel (hop 160)
 * -> deep U-Net -> BiGRU -> 360 pitch bins of 20 cents -> local weighted average around the argmax.
 * One F0 value per 10 ms: frame i is centred on sample 160 * i, avo_rmvpe_frames(n) = n / 160 + 1.
 * Long inputs are processed in overlapping windows, so memory does not grow with the length. */
typedef struct avo_rmvpe avo_rmvpe;

avo_status avo_rmvpe_load(const char *path, avo_backend *be, avo_rmvpe **out, avo_error *err);
void avo_rmvpe_free(avo_rmvpe *m);
int64_t avo_rmvpe_frames(int64_t n);

/* samples: n values at 16 kHz (n >= 1). f0_hz gets avo_rmvpe_frames(n) values, 0 where the largest
 * salience is <= threshold (RVC uses 0.03); confidence (may be NULL) gets that largest salience.
 * Scratch comes from arena a (reset by the caller between runs). */
avo_status avo_rmvpe_f0(avo_rmvpe *m, avo_arena *a, const float *samples, int64_t n, float threshold, float *f0_hz,
                        float *confidence, avo_error *err);

/* ---- RVC synthesizer (v1 and v2, with or without F0) -----------------------------------------
 * An RVC voice model .pth as RVC saves it: {"weight": state_dict (fp16/fp32, no enc_q), "config": [18
 * values], "sr": "40k", "f0": 1, "version": "v2", ...}. v1 takes 256-dim content features (HuBERT layer
 * 9 through final_proj), v2 768-dim (layer 12). The content features come at 50 frames/s and are
 * repeated x2 by the caller: the synthesizer runs at 100 frames/s and writes hop samples per frame. */
typedef struct avo_rvc avo_rvc;

typedef struct avo_rvc_info {
    int version;      /* 1 or 2 */
    int sample_rate;  /* 32000, 40000 or 48000 */
    bool uses_f0;     /* "f0": 1 (NSF decoder, pitch inputs) or 0 */
    int phone_dim;    /* 256 (v1) or 768 (v2) */
    int n_speakers;   /* speaker ids are 0..n_speakers-1 */
    int hop;          /* output samples per frame: sample_rate / 100 */
} avo_rvc_info;

avo_status avo_rvc_load(const char *path, avo_backend *be, avo_rvc **out, avo_error *err);
void avo_rvc_free(avo_rvc *m);
const avo_rvc_info *avo_rvc_get_info(const avo_rvc *m);

/* RVC's coarse pitch: f0 (Hz, 0 unvoiced) -> 1..255 on the mel scale between 50 and 1100 Hz. */
void avo_rvc_pitch_coarse(const float *f0_hz, int64_t frames, int32_t *coarse);

/* phone [frames, phone_dim] row-major; pitch (coarse, 1..255) and nsff0 (Hz) [frames], both ignored
 * (may be NULL) when !uses_f0; sid the speaker. The two random draws of RVC's infer: z_noise
 * [192 * frames] (channel-major, as torch.randn_like(m_p) * 1) and src_noise [frames * hop] (the NSF
 * source noise); when NULL they are drawn from a normal RNG seeded with seed. audio gets frames * hop
 * samples at sample_rate. Scratch comes from arena a. */
avo_status avo_rvc_infer(avo_rvc *m, avo_arena *a, const float *phone, int64_t frames, const int32_t *pitch,
                         const float *nsff0, int sid, const float *z_noise, const float *src_noise, uint64_t seed,
                         float *audio, avo_error *err);

#ifdef __cplusplus
}
#endif
#endif
