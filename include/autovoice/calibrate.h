/* INT8 entropy calibration: activation histograms, KL-divergence thresholds (the entropy
 * calibration of TensorRT), the calibration cache file, and an INT8 simulation ("fake
 * quantisation") on host back ends that measures what the calibration costs in accuracy without
 * an INT8 kernel.
 *
 * What is quantised: the weight GEMMs of the engine (avo_op_linear, conv1d, conv_transpose1d,
 * conv2d, conv_transpose2d; see avo_backend_set_gemm_observer). Each one's INPUT activation gets one
 * symmetric per-tensor scale from calibration; its WEIGHT gets one symmetric scale per output
 * channel (max |w| / 127), computed from the weight itself and so not stored. Outputs stay float
 * (an IMMA GEMM accumulates in int32 and dequantises with x_scale * w_scale[o]).
 *
 * The quantiser (the contract an INT8 kernel must follow to reproduce the simulation):
 *   q = clamp(rint(v * (1 / scale)), -127, 127)   (round half to even, 1/scale in float)
 *   v' = q * scale
 *
 * Tensor names: an op is named by its weight, "<op>.<d0>x<d1>[x...].<16 hex digits>", the op's
 * name, the weight's shape and the FNV-1a-64 hash of the shape (int64 little-endian) followed by
 * the weight's float32 bytes (avo_calib_weight_name). So a name does not depend on the order of
 * calls, on how a model splits long input into windows or on which layers a run reads; a changed
 * weight (another model, other load-time folding) gives another name, and a cache without it is
 * caught instead of being applied to the wrong op. Weights must not move or change while an
 * observer is attached (they are named once per address).
 *
 * The calibration cache (text, written atomically, read strictly):
 *   AVO-INT8-CALIB <version> model=fnv1a64:<16 hex> tensors=<N> checksum=<8 hex>
 *   <tensor name>: <8 hex digits: the IEEE-754 bits of the float32 scale>
 *   ...
 * The model hash is FNV-1a-64 of the checkpoint file's bytes (avo_calib_file_hash): it tells
 * files apart, it is not a defence against a forger. checksum is the low 32 bits of FNV-1a-64 over
 * every byte after the header line: a truncated or edited file is rejected, never half-used. */
#ifndef AUTOVOICE_CALIBRATE_H
#define AUTOVOICE_CALIBRATE_H

#include "autovoice/common.h"
#include "autovoice/engine.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AVO_CALIB_BINS 2048         /* histogram bins of |x| */
#define AVO_CALIB_LEVELS 128        /* quantised magnitudes 0..127 of int8 [-127, 127] */
#define AVO_CALIB_CACHE_VERSION 1
#define AVO_CALIB_NAME_MAX 96       /* tensor names, with the terminating 0 */
/* Least audio a calibration accepts, in seconds at the model's input. Measured on HuBERT base
 * (random weights, real size) and the small test model, calibrating on 3 s to 5 min of speech and
 * singing and comparing simulated INT8 with FP32 on other voices: from 27 s (one sung and one
 * spoken clip) the held-out per-frame cosine is that of a 5-minute calibration and the median
 * threshold is within 1.4% (base) / 8% (small) of it, 0.5% / 1.4% from 60 s; from 3-12 s (one
 * voice) the thresholds are 11-14% / 25-32% off and the worst frames measurably worse. */
#define AVO_CALIB_MIN_SECONDS 30.0

/* ---- hashes --------------------------------------------------------------------------------- */

/* FNV-1a-64 over bytes, continuing from h (start with AVO_FNV64_INIT). */
#define AVO_FNV64_INIT 0xcbf29ce484222325ull
uint64_t avo_fnv1a64(uint64_t h, const void *data, size_t n);
/* FNV-1a-64 of a file's bytes. */
avo_status avo_calib_file_hash(const char *path, uint64_t *out, avo_error *err);

/* ---- histograms and thresholds -------------------------------------------------------------- */

/* Histogram of |x| over [0, range] in AVO_CALIB_BINS equal bins. The first values with a
 * non-zero maximum set range to that maximum; a later maximum beyond it doubles range (merging
 * pairs of bins, which is exact) until it fits, so no value is ever clipped. */
typedef struct avo_calib_hist {
    double range;     /* 0 until a non-zero value arrives */
    double max;       /* largest |x| seen */
    uint64_t count;   /* finite values seen */
    uint64_t nonfinite;
    uint64_t bins[AVO_CALIB_BINS];
} avo_calib_hist;

void avo_calib_hist_init(avo_calib_hist *h);
void avo_calib_hist_add(avo_calib_hist *h, const float *x, int64_t n);

/* The clipping threshold of |x| that minimises KL(P || Q): for each candidate i in
 * AVO_CALIB_LEVELS..AVO_CALIB_BINS bins, P is the first i bins with the counts above them added to
 * bin i-1, Q the first i bins (without those) merged into 128 levels and spread back evenly over
 * the bins where P is non-zero; both are smoothed (zero bins get 1e-4 of a count) before the
 * divergence. The threshold is the upper edge of bin i-1, i * range / AVO_CALIB_BINS, at most the
 * maximum; 0 for a histogram of zeros. With outliers far above the bulk, the bulk may span fewer
 * than 128 bins and the threshold cannot go below 128 bins' width (as in TensorRT). kl_out (may be NULL) receives the divergence at the threshold. */
double avo_calib_hist_threshold(const avo_calib_hist *h, double *kl_out);

/* threshold / 127, or 1/127 for a zero threshold (a tensor of zeros quantises to zeros with any
 * positive scale). Never 0, never denormal. */
float avo_calib_scale_from_threshold(double threshold);

/* ---- quantisation helpers (shared by the simulation and an INT8 back end) ------------------- */

/* Number of output channels of a weight GEMM's weight: w->shape[0] for linear and convolutions,
 * w->shape[1] * groups for the transposed ones (w [Cin, Cout/groups, K...]). */
int64_t avo_calib_weight_out_channels(avo_gemm_kind kind, const avo_tensor *w, int groups);
/* Per output channel scales max|w| / 127 (host f32 weight, PyTorch layouts); a channel of zeros
 * gets 1/127. scales has avo_calib_weight_out_channels values. */
avo_status avo_calib_weight_scales(avo_gemm_kind kind, const avo_tensor *w, int groups, float *scales, avo_error *err);
/* v -> int8 with the quantiser above (NaN -> 0); and the same rounded back to floats (fake
 * quantisation, out may be x; NaN stays NaN). */
void avo_calib_quantize(const float *x, int64_t n, float scale, int8_t *q);
void avo_calib_fake_quantize(const float *x, int64_t n, float scale, float *out);
/* The weight per output channel, quantised and dequantised (w_out has w's element count). */
avo_status avo_calib_fake_quantize_weight(avo_gemm_kind kind, const avo_tensor *w, int groups, float *w_out,
                                          avo_error *err);
/* The tensor name of an op (see above); name has AVO_CALIB_NAME_MAX bytes. w is host f32. */
void avo_calib_weight_name(avo_gemm_kind kind, const avo_tensor *w, char *name);

/* ---- scale tables and the cache file -------------------------------------------------------- */

typedef struct avo_calib_table avo_calib_table;

avo_status avo_calib_table_create(uint64_t model_hash, avo_calib_table **out, avo_error *err);
void avo_calib_table_free(avo_calib_table *t);
uint64_t avo_calib_table_model_hash(const avo_calib_table *t);
/* Adds or replaces; the name must be 1..AVO_CALIB_NAME_MAX-1 printable characters without spaces
 * or ':', the scale finite and > 0. */
avo_status avo_calib_table_set(avo_calib_table *t, const char *name, float scale, avo_error *err);
bool avo_calib_table_find(const avo_calib_table *t, const char *name, float *scale);
int avo_calib_table_count(const avo_calib_table *t);
/* Entry i in insertion order (the order of a model's graph for a calibration); a NULL name and
 * scale 0 outside 0..count-1. */
void avo_calib_table_entry(const avo_calib_table *t, int i, const char **name, float *scale);

/* Writes the cache (temporary file beside path, then rename). */
avo_status avo_calib_cache_write(const char *path, const avo_calib_table *t, avo_error *err);
/* Reads and checks a cache: the format version, the model hash (unless expect_hash is NULL), every
 * line's syntax, the count and the checksum. Errors say which and what to do: AVO_ERR_VALIDATION
 * for a cache of another version or model, AVO_ERR_FORMAT for a damaged file, AVO_ERR_NOT_FOUND /
 * AVO_ERR_IO when it cannot be read. */
avo_status avo_calib_cache_read(const char *path, const uint64_t *expect_hash, avo_calib_table **out,
                                avo_error *err);
/* The same from memory (name is used in messages). */
avo_status avo_calib_cache_parse(const char *text, size_t size, const char *name, const uint64_t *expect_hash,
                                 avo_calib_table **out, avo_error *err);

/* ---- collecting activations ----------------------------------------------------------------- */

typedef struct avo_calib avo_calib;

avo_status avo_calib_create(avo_calib **out, avo_error *err);
void avo_calib_free(avo_calib *c);
/* Observes every weight GEMM of be (any back end: device data is copied to the host) until
 * detached. One back end per collector, one observer per back end. */
avo_status avo_calib_attach(avo_calib *c, avo_backend *be, avo_error *err);
void avo_calib_detach(avo_calib *c, avo_backend *be);
/* Adds values to the histogram of a tensor name directly (tests, other sources of activations). */
avo_status avo_calib_add(avo_calib *c, const char *name, const float *x, int64_t n, avo_error *err);
/* Accounts the audio that produced the observed activations (for the minimum). */
void avo_calib_note_audio(avo_calib *c, double seconds);
double avo_calib_audio_seconds(const avo_calib *c);
int avo_calib_tensor_count(const avo_calib *c);
/* The histogram of a name, or NULL. */
const avo_calib_hist *avo_calib_histogram(const avo_calib *c, const char *name);

/* KL thresholds of every tensor into a new table (and into avo_calib_tensor_info). Fails with AVO_ERR_VALIDATION, saying how much
 * more audio is needed, when fewer than min_seconds were noted (min_seconds <= 0 means
 * AVO_CALIB_MIN_SECONDS), and when a tensor saw non-finite values or nothing was observed. */
avo_status avo_calib_compute(avo_calib *c, double min_seconds, uint64_t model_hash, avo_calib_table **out,
                             avo_error *err);

/* ---- choosing the ops that run in INT8 ------------------------------------------------------
 * One static scale per tensor spans 48 dB. Activations that are not normalised per frame (HuBERT's
 * waveform convolutions, whose size follows the loudness of the audio) lose their quiet frames
 * entirely: measured on HuBERT, quantising its 7 feature-extractor convolutions drops the median
 * per-frame cosine of the content features to 0.95, the minimum below 0. So a second pass over the
 * calibration audio measures, per tensor, the quantisation error of every frame of its input,
 * e = ||fq(x_f) - x_f|| / ||x_f|| (fq: the quantiser above with the tensor's scale; frames of zeros
 * are skipped), and only tensors whose frames mostly stay above 20 dB SNR are kept for INT8; the
 * others stay at the higher precision (FP16 on the GPU). A frame is: a row of a linear's input
 * [..., in]; a column x[:, t] of a 1-D convolution's [C, T]; x[:, h, :] of a 2-D convolution's
 * [C, H, W] (H is time in RMVPE). */

#define AVO_CALIB_FRAME_ERROR 0.1     /* e above this is a bad frame (SNR below 20 dB) */
#define AVO_CALIB_MAX_BAD_FRAMES 0.01 /* INT8 only when at most this fraction of frames is bad */

/* Switches an attached collector to the error pass: from now on it measures each op's frames
 * against scales (borrowed until avo_calib_select) instead of adding to histograms. Run the model
 * over the calibration audio again, then call avo_calib_select. */
avo_status avo_calib_start_error_pass(avo_calib *c, const avo_calib_table *scales, avo_error *err);

/* A new table with the tensors of the error pass's scales whose bad-frame fraction is at most
 * max_bad_frames (<= 0: AVO_CALIB_MAX_BAD_FRAMES) and that the pass saw; the same model hash.
 * Fails if the error pass saw nothing. */
avo_status avo_calib_select(const avo_calib *c, double max_bad_frames, avo_calib_table **out, avo_error *err);

/* What calibration learnt about tensor i (0 .. avo_calib_tensor_count-1, in the order first seen). */
typedef struct avo_calib_info {
    const char *name;
    uint64_t values;     /* values in the histogram */
    double max;          /* largest |x| */
    double threshold;    /* 0 before avo_calib_compute */
    uint64_t frames;     /* error pass: frames measured */
    double mean_error;   /* error pass: mean e */
    double bad_frames;   /* error pass: fraction of frames with e > AVO_CALIB_FRAME_ERROR */
} avo_calib_info;
void avo_calib_tensor_info(const avo_calib *c, int i, avo_calib_info *out);

/* ---- INT8 simulation on a host back end ----------------------------------------------------- */

typedef struct avo_calib_sim avo_calib_sim;

/* A simulation over table's scales (borrowed; it must outlive the simulation). strict: an op whose
 * name has no scale fails the run (a cache from another graph); otherwise it runs in FP32 and is
 * counted as skipped. */
avo_status avo_calib_sim_create(const avo_calib_table *t, bool strict, avo_calib_sim **out, avo_error *err);
void avo_calib_sim_free(avo_calib_sim *s);
/* While attached, each weight GEMM of be runs on its input fake-quantised with the table's scale
 * and its weight fake-quantised per output channel (weights are quantised once per address). Host
 * back ends only (AVO_ERR_UNSUPPORTED otherwise). */
avo_status avo_calib_sim_attach(avo_calib_sim *s, avo_backend *be, avo_error *err);
void avo_calib_sim_detach(avo_calib_sim *s, avo_backend *be);
/* Ops run quantised / in FP32 for want of a scale since creation. */
void avo_calib_sim_counts(const avo_calib_sim *s, int64_t *quantised, int64_t *skipped);

/* ---- checking INT8 results ------------------------------------------------------------------ */

/* Mean cosine similarity of frames [frames, dim] of a against b (the INT8 content-feature
 * measure); *worst gets the lowest (a NaN frame counts as worst). Zero frames count as 1 when both are. */
double avo_calib_frame_cosine(const float *a, const float *b, int64_t frames, int64_t dim, double *worst);

/* Whether the CUDA back end's INT8 mode can run the op of this tensor name: a linear, or a 1x1 conv1d
 * ("conv1d.<out>x<in>x1.<hash>"); every other op stays FP16 there. */
bool avo_calib_cuda_int8_capable(const char *name);

#ifdef __cplusplus
}
#endif
#endif
