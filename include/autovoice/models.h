/* Neural models built on the engine (engine.h): the HuBERT-base / ContentVec content encoder, the RMVPE
 * pitch network, the RVC synthesizer and the so-vits-svc 4.x generator.
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

/* ---- so-vits-svc 4.0 / 4.1 generator -----------------------------------------------------------
 * A so-vits-svc model: G_<step>.pth as train.py saves it ({"model": state_dict, "iteration",
 * "optimizer", "learning_rate"}, fp32; or compress_model.py's release file without enc_q, fp32 or
 * fp16) and the training config.json (data.sampling_rate, data.hop_length, model.*, spk). The
 * inference path of SynthesizerTrn.infer without f0 prediction: content units -> pre (Conv1d k5)
 * + uv embedding (+ volume embedding, 4.1 with vol_embedding) + coarse-f0 embedding -> relative-
 * attention text encoder -> prior sample -> 4 reverse coupling flows -> NSF-HiFiGAN with a 9-harmonic
 * sine source, hop samples per frame (512 at 44.1 kHz). Not supported (refused at load): the
 * tiny/depthwise-conv models, shared flow parameters, the VITS2 transformer flow, the
 * nsf-snake-hifigan vocoder; not run: the F0 predictor (auto_predict_f0), diffusion, the enhancer.
 *
 * Caller glue as so-vits' Svc does it: the model frame count is samples // hop of the model-rate
 * input; units (HuBERT/ContentVec at 16 kHz, 50 frames/s: layer 12 for vec768l12, final_proj of
 * layer 9 for vec256l9) are stretched to it (avo_sovits_expand_units); f0 per frame with unvoiced
 * frames filled by interpolation and uv marking the voiced ones (avo_sovits_fill_f0); the volume,
 * when the model uses it, by avo_sovits_volume. */
typedef struct avo_sovits avo_sovits;

typedef struct avo_sovits_info {
    int version;            /* 40 or 41 (a 4.1 config names model.speech_encoder) */
    int sample_rate;        /* data.sampling_rate (44100 in the shipped configs) */
    int hop;                /* data.hop_length: output samples per frame (512) */
    int ssl_dim;            /* unit width: 256 (vec256l9, hubertsoft), 768 (vec768l12), 1024, ... */
    int n_speakers;         /* speaker ids are 0..n_speakers-1 */
    int inter_channels;     /* prior channels (rows of the z draws) */
    bool vol_embedding;     /* the model takes a volume per frame */
    char speech_encoder[32];         /* model.speech_encoder, "vec256l9" for 4.0 configs (which name none) */
    char unit_interpolate_mode[16];  /* data.unit_interpolate_mode: "nearest", or "left" when absent */
} avo_sovits_info;

/* config_path NULL: config.json in the model's folder. The weights live in the model; be must
 * outlive it. */
avo_status avo_sovits_load(const char *model_path, const char *config_path, avo_backend *be, avo_sovits **out,
                           avo_error *err);
void avo_sovits_free(avo_sovits *m);
const avo_sovits_info *avo_sovits_get_info(const avo_sovits *m);
/* The config's "spk" map: id of a speaker name (-1 if absent), and the name of an id (NULL if none). */
int avo_sovits_speaker_id(const avo_sovits *m, const char *name);
const char *avo_sovits_speaker_name(const avo_sovits *m, int id);

/* The random draws of one run. Members left NULL are drawn from a normal RNG seeded with the
 * infer call's seed (z first, then rand_ini, then source). */
typedef struct avo_sovits_noise {
    const float *z;        /* [inter_channels * frames] channel-major standard normal: the prior sample's draws */
    const float *rand_ini; /* [9] initial phases in [0, 1) of the source harmonics; entry 0 is not used (0) */
    const float *source;   /* [frames * hop * 9] sample-major standard normal: the source noise per harmonic */
} avo_sovits_noise;

/* units [frames, ssl_dim] row-major at the model frame rate; f0_hz [frames] (Hz, unvoiced frames
 * filled; a 0 frame gives a noise-only source); uv [frames] (non-zero = voiced; NULL: f0_hz > 0); vol
 * [frames] (used only by vol_embedding models; NULL leaves the term out, as upstream with vol=None);
 * sid the speaker; noise_scale the prior's (so-vits' noice_scale, 0.4 by default in its inference).
 * audio gets frames * hop samples at sample_rate. Scratch comes from arena a. */
avo_status avo_sovits_infer(avo_sovits *m, avo_arena *a, const float *units, int64_t frames, const float *f0_hz,
                            const float *uv, const float *vol, int sid, float noise_scale,
                            const avo_sovits_noise *noise, uint64_t seed, float *audio, avo_error *err);

/* so-vits' f0_to_coarse: f0 (Hz) -> 1..255 on the mel scale between 50 and 1100 Hz. */
void avo_sovits_f0_coarse(const float *f0_hz, int64_t frames, int32_t *coarse);

/* utils.repeat_expand_2d: units [src_frames, dim] -> out [frames, dim]; mode "nearest" (F.interpolate)
 * or "left" (the info's unit_interpolate_mode). */
avo_status avo_sovits_expand_units(const float *units, int64_t src_frames, int dim, int64_t frames, const char *mode,
                                   float *out, avo_error *err);

/* The F0 predictors' post-processing: uv[i] = f0[i] > 0 (1 or 0); f0_out linearly interpolated in time
 * over unvoiced frames, held at the ends (all zero if no frame is voiced). f0_out may be f0_hz. */
void avo_sovits_fill_f0(const float *f0_hz, int64_t frames, float *f0_out, float *uv);

/* utils.Volume_Extractor: RMS per hop of samples (n values at the model rate) -> n / hop values, over
 * the squared signal reflect-padded by hop/2 left and (hop+1)/2 right. n must be >= hop / 2 + 1. */
avo_status avo_sovits_volume(const float *samples, int64_t n, int hop, float *vol, avo_error *err);

#ifdef __cplusplus
}
#endif
#endif
