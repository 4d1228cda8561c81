/* Reusable VITS blocks on the engine, shared by the RVC synthesizer (rvc.c) and the so-vits-svc 4.x
 * generator: the relative-attention text encoder (attentions.Encoder), the mean-only residual
 * coupling flows with WN run in reverse (modules.WN / ResidualCouplingLayer / Flip), and the
 * HiFi-GAN / NSF-HiFiGAN generator (ResBlock1 / ResBlock2, ConvTranspose upsampling, the source
 * added through noise_convs after every upsampling).
 *
 * Activations are [channels, time] engine tensors of one utterance; every frame is valid (the VITS
 * masks are all ones at inference). Weights are loaded by key prefix from a checkpoint with the
 * upstream names; weight norm is folded at load time (avo_tensor_load_weight). Sizes come from the
 * tensor shapes; what a state_dict does not store (upsample strides, dilations, the flow WN
 * dilation rate) comes from the caller's config.
 *
 * Model code touches tensor data only through engine ops, so any back end runs the same graph;
 * the NSF source is computed on the host from f0 (phase accumulated per sample in double) and the
 * generator uploads it chunk by chunk. Scratch comes from the caller's run arena; the forward
 * functions rewind their temporaries, so only results stay allocated.
 *
 * The block structs are plain data owned by their model; *_free releases what *_load allocated on
 * the heap (tensors live in the model's weights arena and go with it). */
#ifndef AVO_VITS_INTERNAL_H
#define AVO_VITS_INTERNAL_H

#include "autovoice/checkpoint.h"
#include "autovoice/engine.h"

#include <stdbool.h>

/* ---- loading ------------------------------------------------------------------------------- */

typedef struct vits_loader {
    avo_ckpt *ckpt;
    avo_arena *a;       /* the model's weights arena (never reset) */
    const char *prefix; /* prepended to every key: "weight." for an RVC .pth, "" for a bare state_dict */
    const char *file;   /* for messages */
    struct avo_engine_session *ec; /* engine cache (engine_cache.h): final weights taken / recorded; NULL: none */
} vits_loader;

/* prefix + name as a tensor, or NULL when absent (or not a tensor). */
const avo_ckpt_tensor *vits_find(const vits_loader *l, const char *name);
/* Whether prefix + name (or its weight-norm pair name_g / name_v when name ends in "weight") exists. */
bool vits_has(const vits_loader *l, const char *name);

/* Loads tensor prefix + name of rank ndim; want[i] < 0 leaves dimension i free. Missing key or wrong
 * shape give AVO_ERR_FORMAT naming the key, the shape found and the shape expected. */
avo_status vits_load(const vits_loader *l, const char *name, int ndim, const int64_t *want, avo_tensor *out,
                     avo_error *err);

/* A convolution (or a Linear viewed as a kernel-1 convolution) with its parameters. b.data is NULL
 * when the layer has no bias. */
typedef struct vits_conv {
    avo_tensor w, b;
    avo_conv1d_params p;
} vits_conv;

/* Loads module name: name.weight (or folded weight_g / weight_v) of shape [cout, cin, k] (any of
 * them < 0: free; a 2-D Linear weight is viewed as [out, in, 1]) and name.bias when has_bias.
 * p sets stride / padding / dilation (groups 1). */
avo_status vits_conv_load(const vits_loader *l, const char *name, int64_t cout, int64_t cin, int64_t k,
                          bool has_bias, avo_conv1d_params p, vits_conv *c, avo_error *err);
/* out = conv(x) (out->data NULL: allocated from a). */
avo_status vits_conv_run(avo_backend *be, avo_arena *a, const vits_conv *c, const avo_tensor *x, avo_tensor *out,
                         avo_error *err);

/* ---- text encoder: attentions.Encoder (post-LN, relative attention, FFN) -------------------- */

typedef struct vits_attn_layer {
    vits_conv q, k, v, o;           /* attn_layers.i.conv_* */
    avo_tensor rel_k, rel_v;        /* attn_layers.i.emb_rel_k / emb_rel_v [1 or heads, 2W+1, C/heads] */
    avo_tensor ln1_g, ln1_b;        /* norm_layers_1.i.gamma / beta */
    vits_conv ffn1, ffn2;           /* ffn_layers.i.conv_1 / conv_2 ('same' padding, ReLU between) */
    avo_tensor ln2_g, ln2_b;        /* norm_layers_2.i.gamma / beta */
} vits_attn_layer;

typedef struct vits_encoder {
    int hidden, filter, heads, n_layers, kernel, window;
    vits_attn_layer *layers;
} vits_encoder;

/* Loads prefix.attn_layers.* etc. (prefix e.g. "enc_p.encoder"); the layer count comes from the
 * keys, the window and head size from emb_rel_k's shape; heads (from the model config) is checked
 * against it. The FFN kernel must be odd (VITS pads (k-1)/2 left and k/2 right). */
avo_status vits_encoder_load(const vits_loader *l, const char *prefix, int heads, vits_encoder *e, avo_error *err);
void vits_encoder_free(vits_encoder *e);
/* x [hidden, T] -> out [hidden, T] (allocated from a). */
avo_status vits_encoder_forward(avo_backend *be, avo_arena *a, const vits_encoder *e, const avo_tensor *x,
                                avo_tensor *out, avo_error *err);

/* ---- flows: ResidualCouplingBlock (mean-only couplings with WN, interleaved with Flip) -------- */

typedef struct vits_wn {
    int hidden, n_layers, kernel, gin;
    vits_conv *in_layers, *res_skip; /* n_layers each */
    vits_conv cond;                  /* cond_layer [2*hidden*n_layers, gin, 1]; w.data NULL when gin == 0 */
} vits_wn;

typedef struct vits_coupling {
    vits_conv pre, post;
    vits_wn wn;
    bool flipped; /* applied to channel-reversed data: weights permuted at load instead (see .c) */
} vits_coupling;

typedef struct vits_flow {
    int channels, n_flows;
    vits_coupling *layers; /* flows.0, flows.2, ... (the odd entries are weightless flips) */
    bool final_flip;       /* odd number of flips: reverse the channel order at the end */
    vits_conv flip;        /* anti-identity 1x1 used for final_flip */
} vits_flow;

/* Loads prefix.flows.{0,2,4,...} (prefix e.g. "flow"); channels, hidden size, kernel, layer counts
 * and gin come from the shapes; dilation_rate (not stored; 1 in RVC and so-vits) from the caller. */
avo_status vits_flow_load(const vits_loader *l, const char *prefix, int dilation_rate, vits_flow *f, avo_error *err);
void vits_flow_free(vits_flow *f);
/* Inference direction (reverse=True): z_p [channels, T] -> z [channels, T] (allocated from a).
 * g: speaker embedding [gin, 1], or NULL for models without conditioning. */
avo_status vits_flow_reverse(avo_backend *be, avo_arena *a, const vits_flow *f, const avo_tensor *x,
                             const avo_tensor *g, avo_tensor *out, avo_error *err);

/* ---- generator: HiFi-GAN (Generator) and NSF-HiFiGAN (GeneratorNSF) --------------------------- */

#define VITS_MAX_UPS 8
#define VITS_MAX_KERNELS 4
#define VITS_MAX_DILATIONS 4

typedef struct vits_generator_config {
    int resblock;                      /* 1 (ResBlock1) or 2 (ResBlock2) */
    int n_ups;                         /* upsample stages */
    int up_rates[VITS_MAX_UPS];        /* ConvTranspose strides (upsample_rates) */
    int n_kernels;                     /* resblocks per stage (len(resblock_kernel_sizes)) */
    int n_dilations;                   /* dilations per resblock (3 for ResBlock1, 2 for ResBlock2) */
    int dilations[VITS_MAX_KERNELS][VITS_MAX_DILATIONS];
    bool nsf;                          /* noise_convs present: the source is added after each upsampling */
} vits_generator_config;

typedef struct vits_resblock {
    int kernel, n;                     /* kernel size, number of (dilated) convs */
    int dil[VITS_MAX_DILATIONS];
    vits_conv c1[VITS_MAX_DILATIONS];  /* ResBlock1 convs1 / ResBlock2 convs */
    vits_conv c2[VITS_MAX_DILATIONS];  /* ResBlock1 convs2 (unused for ResBlock2) */
} vits_resblock;

typedef struct vits_gen_stage {
    int rate;                          /* upsampling factor */
    int channels;                      /* after upsampling */
    vits_conv up;                      /* ConvTranspose1d weight [cin, cout, K]; p.stride/padding used */
    int up_kernel;
    /* NSF: noise_convs.i; src_stride s (product of the later rates) > 1 is run as a kernel-2 conv
     * over the source reshaped to [s, samples/s + 1] (same sums, no strided im2col). */
    vits_conv noise;
    int src_stride;
    vits_resblock rb[VITS_MAX_KERNELS];
} vits_gen_stage;

typedef struct vits_generator {
    vits_generator_config cfg;
    int in_channels, initial_channels, gin, upp;
    vits_conv pre, cond, post;         /* cond.w.data NULL without conditioning; post may have a bias */
    vits_gen_stage stage[VITS_MAX_UPS];
    int margin;                        /* receptive field in frames on either side (for chunking) */
} vits_generator;

/* Loads prefix.conv_pre / ups.i / resblocks.j / noise_convs.i / conv_post / cond (prefix e.g. "dec").
 * The mean over each stage's resblocks (1 / n_kernels) is folded into the next convolution. */
avo_status vits_generator_load(const vits_loader *l, const char *prefix, const vits_generator_config *cfg,
                               vits_generator *gen, avo_error *err);
void vits_generator_free(vits_generator *gen);

/* x [in_channels, T] (z), g [gin, 1] or NULL, source (NSF only, else NULL): the merged excitation
 * (after the source module's linear + tanh) as T * upp host samples. Writes T * upp samples of
 * tanh output into audio (host). Runs in chunks of chunk_frames frames (<= 0: a default) with
 * gen->margin frames of context on either side, which keeps the working set small; the result
 * equals one pass over the whole input up to float rounding. */
avo_status vits_generator_run(avo_backend *be, avo_arena *a, const vits_generator *gen, const avo_tensor *x,
                              const avo_tensor *g, const float *source, int64_t chunk_frames, float *audio,
                              avo_error *err);

/* ---- NSF source (host) ------------------------------------------------------------------------ */

/* RVC's SourceModuleHnNSF with harmonic_num 0: f0 [frames] Hz (0 = unvoiced) -> out [frames * upp]
 * = tanh(lin_w * e + lin_b) with e = 0.1 sin(2 pi phase) on voiced samples plus noise * (0.003
 * voiced, 0.1/3 unvoiced); phase = running sum of frac(f0 / sr) of each sample's frame (nearest
 * upsampling as torch computes it), accumulated in double. noise: frames * upp standard normal
 * draws, or NULL for none. */
void vits_rvc_nsf_source(const float *f0, int64_t frames, int upp, int sample_rate, const float *noise, float lin_w,
                         float lin_b, float *out);

/* ---- normal draws ------------------------------------------------------------------------------ */

/* A small seeded normal RNG (xoshiro256** + Box-Muller), no global state. */
typedef struct vits_rng {
    uint64_t s[4];
    double spare;
    bool has_spare;
} vits_rng;
void vits_rng_seed(vits_rng *r, uint64_t seed);
void vits_rng_normal(vits_rng *r, float *out, int64_t n);

/* ---- RVC test hook (rvc.c) --------------------------------------------------------------------- */

struct avo_rvc;
/* Host copies of intermediates of one avo_rvc_infer run (NULL members are skipped): m_p, logs_p,
 * z_p, z as [inter, frames]; har_source [frames * hop] (NSF models only). */
typedef struct rvc_taps {
    float *m_p, *logs_p, *z_p, *z, *har_source;
    int64_t chunk_frames; /* generator chunk length for this run (<= 0: default) */
    double ms_enc, ms_flow, ms_dec; /* filled in: wall time of enc_p (+ z_p), the flows, the decoder */
} rvc_taps;
avo_status rvc_infer_taps(struct avo_rvc *m, avo_arena *a, const float *phone, int64_t frames, const int32_t *pitch,
                          const float *nsff0, int sid, const float *z_noise, const float *src_noise, uint64_t seed,
                          float *audio, rvc_taps *taps, avo_error *err);

#endif
