/* Voice conversion, the conversion stage: source vocals + F0 in, vocals in the target voice out.
 *
 * One interface, several back ends: the DSP converter (no model files; learns the target from a
 * profile's recordings) and, later, neural models. A target is described by an avo_voice_analysis,
 * made once from the target's recordings and stored in the profile. */
#ifndef AUTOVOICE_CONVERT_H
#define AUTOVOICE_CONVERT_H

#include "autovoice/audio.h"
#include "autovoice/engine.h"
#include "autovoice/f0.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Target analysis (stored in a profile) ---- */

typedef struct avo_voice_analysis avo_voice_analysis;

typedef struct avo_voice_summary {
    int sample_rate;          /* rate of the analysed recordings */
    int64_t voiced_frames;
    double voiced_seconds;
    double f0_median_hz, f0_low_hz, f0_high_hz; /* median, 5th and 95th percentile */
} avo_voice_summary;

/* Analyses the target's recordings (mono or stereo, any rate of 16 kHz or more). */
avo_status avo_voice_analysis_create(const avo_audio *clips, int clip_count, avo_preset preset, int threads,
                                     avo_voice_analysis **out, avo_error *err);
void avo_voice_analysis_free(avo_voice_analysis *a);
void avo_voice_analysis_summary(const avo_voice_analysis *a, avo_voice_summary *out);

/* Versioned binary form for the profile store; load validates sizes and rejects other versions. */
avo_status avo_voice_analysis_save(const avo_voice_analysis *a, void **data, size_t *size, avo_error *err);
avo_status avo_voice_analysis_load(const void *data, size_t size, avo_voice_analysis **out, avo_error *err);

/* ---- Conversion ---- */

typedef struct avo_convert_options {
    double transpose_semitones;      /* added to the source melody */
    int auto_transpose;              /* 1: also move by octaves toward the target's range */
    double formant_shift_semitones;  /* extra envelope shift after matching the target, 0 = none */
    double retrieval_ratio;          /* 0..1: how much of the target's timbre to take (default 1) */
    double protect;                  /* 0..0.5: keep unvoiced consonants/breaths closer to the source (0.33) */
    double rms_mix;                  /* 0..1 as RVC: 0 takes the source loudness contour, 1 keeps the converted one (0.5) */
    avo_preset preset;
    int threads;                     /* 0 = as many as available */
} avo_convert_options;

void avo_convert_options_default(avo_convert_options *opt);

/* What ran, for the run metadata: never claims what did not run. */
typedef struct avo_converter_info {
    const char *name;       /* "dsp-warp-eq-knn", ... */
    const char *backend;    /* "cpu" */
    const char *device;     /* "cpu" or a GPU name */
    const char *precision;  /* "fp32", ... */
    double applied_transpose_semitones; /* after auto-transpose, set by the last run */
    double formant_warp_ratio;          /* envelope warp the last run applied */
    const char *fallback;               /* why a requested device was not used ("" if none) */
    /* Neural converters: where the content encoder ran (device, precision above are the voice model's);
     * NULL for the DSP converter. */
    const char *content_device;
    const char *content_precision;
    /* Engine cache per model: "off", "hit", "build", "rebuild" or "uncached" (engine_cache.h), and why
     * for rebuild / uncached ("" otherwise). */
    const char *content_engine, *content_engine_note;
    const char *voice_engine, *voice_engine_note;
    const char *calibration_cache;      /* the INT8 calibration cache that really ran, "" if none */
} avo_converter_info;

typedef struct avo_converter avo_converter;

/* The DSP converter for a target. The analysis must outlive the converter. */
avo_status avo_converter_create_dsp(const avo_voice_analysis *target, const avo_convert_options *opt,
                                    avo_converter **out, avo_error *err);
void avo_converter_free(avo_converter *c);

/* Converts mono vocals. f0 is the source F0 from the f0_extraction stage (any hop). out is allocated:
 * mono, the vocals' rate and length. progress (may be NULL) is called with stage "conversion". */
avo_status avo_converter_run(avo_converter *c, const avo_audio *vocals, const avo_f0_track *f0, avo_audio *out,
                             avo_progress_fn progress, void *user, avo_error *err);

void avo_converter_get_info(const avo_converter *c, avo_converter_info *out);

/* ---- neural converter (RVC v1/v2 and so-vits-svc 4.0/4.1 voice models) -------------------------------
 * RVC: the source vocals go to 16 kHz, through a 48 Hz high-pass, then the content encoder (HuBERT /
 * ContentVec: layer 9 + final_proj for v1 models, layer 12 for v2), optional index retrieval, x2 frame
 * repeat, the F0 track given to avo_converter_run (RMVPE's or the DSP tracker's, transposed), and the
 * model's synthesizer. so-vits-svc: units of the 16 kHz audio (vec256l9 or vec768l12) stretched to the
 * model's frames (hop 512 at 44.1 kHz), the F0 filled over unvoiced frames with a uv flag, the volume
 * for vol_embedding models, prior noise scale 0.4. Then, for both, the RMS envelope mix and resampling
 * to the vocals' rate. Songs run in segments of about 30 s cut at quiet points, each with about 1 s of
 * context on both sides. The family is told by the checkpoint's keys. */
typedef struct avo_neural_config {
    const char *model_path;           /* RVC .pth or so-vits-svc G_*.pth voice model (required) */
    const char *model_config_path;    /* so-vits-svc config.json; NULL: config.json beside the model */
    const char *content_encoder_path; /* hubert_base.pt / ContentVec checkpoint (required) */
    const char *index_path;           /* the model's feature rows as .npy (total_fea.npy), or NULL */
    double index_rate;                /* 0..1: share of retrieved features (RVC's default 0.75) */
    int speaker_id;                   /* 0 for single-speaker models */
    const char *device;               /* "cpu" (NULL too) or "cuda" */
    const char *precision;            /* "fp32" (NULL too), "fp16" (CUDA: half weight GEMMs) or "int8" */
    /* Per component, NULL: as precision. Vocoders and pitch trackers are numerically sensitive, so a
     * common choice is an INT8 content encoder with an FP16 synthesizer and pitch network. */
    const char *content_precision;    /* content encoder (HuBERT / ContentVec) */
    const char *pitch_precision;      /* pitch network (RMVPE, in the f0_extraction stage) */
    const char *vocoder_precision;    /* voice model: RVC / so-vits-svc synthesizer with its vocoder */
    const char *calibration_path;     /* INT8 calibration cache of the content encoder (autovoice calibrate) */
    int engine_cache;                 /* 1 (default): keep built engines (engine_cache.h) and reuse them */
    const char *engine_cache_dir;     /* NULL: $XDG_CACHE_HOME/autovoice/engines */
    int strict;                       /* 1: a device or precision that cannot be had is an error, not a
                                       * fallback to what can */
    uint64_t seed;                    /* the synthesizer's noise draws (runs are reproducible) */
} avo_neural_config;

void avo_neural_config_default(avo_neural_config *cfg);

/* The neural components, each with its own back end when their precisions differ. */
typedef enum avo_neural_component {
    AVO_NEURAL_CONTENT = 0, /* content encoder */
    AVO_NEURAL_PITCH,       /* pitch network */
    AVO_NEURAL_VOCODER      /* voice model (synthesizer) */
} avo_neural_component;

/* Parses a --precision value into cfg: one precision for every component ("fp16"), or a default and
 * per-component overrides, comma-separated ("fp16,content=int8", "content=int8,pitch=fp16,vocoder=fp16").
 * Precisions: fp32, fp16, int8, bf16. The fields point at constant strings, not into spec. */
avo_status avo_neural_parse_precision(const char *spec, avo_neural_config *cfg, avo_error *err);

/* The precision cfg asks of a component ("fp32" when none is set). */
const char *avo_neural_component_precision(const avo_neural_config *cfg, avo_neural_component component);

/* What a neural component really runs on: the back end's device name and precision, and why the request
 * was not met (empty if it was). */
typedef struct avo_neural_placement {
    char device[64];     /* "cpu", "cuda", "cuda-fp16" (the back end's name) */
    char backend[16];    /* "cpu" or "cuda" */
    char precision[16];  /* "fp32", or "fp16-gemm" once half GEMMs have really run */
    char fallback[320];
} avo_neural_placement;

/* Opens the back end cfg asks for (device, precision), or the CPU in fp32 with the reason in
 * placement->fallback; with cfg->strict an unmet request is an error. threads: CPU threads. */
avo_status avo_neural_backend_open(const avo_neural_config *cfg, int threads, avo_backend **be,
                                   avo_neural_placement *placement, avo_error *err);
/* The same for one component, at that component's precision. */
avo_status avo_neural_backend_open_component(const avo_neural_config *cfg, avo_neural_component component,
                                             int threads, avo_backend **be, avo_neural_placement *placement,
                                             avo_error *err);
/* After a run: what precision really ran on be (CUDA: from its GEMM counters). */
void avo_neural_backend_observe(avo_backend *be, avo_neural_placement *placement);

/* Checks that model_path is a voice model this build can run (config_path as in avo_neural_config) and,
 * when index_path is not NULL,
 * that the index matches it; describes the model in info (e.g. "RVC v2, 40000 Hz, pitch-guided,
 * 1 speaker"). Used when a profile is made from a model, so a bad file is refused early. */
avo_status avo_neural_model_check(const char *model_path, const char *config_path, const char *index_path,
                                  char *info, size_t cap, int *sample_rate, avo_error *err);

/* Loads the models (the slow part: do it once, then run many times). target may be NULL; when given,
 * --auto-transpose uses its pitch range. Options used: transpose, auto_transpose, protect, rms_mix,
 * threads (formant_shift and retrieval_ratio are DSP-only). */
avo_status avo_converter_create_neural(const avo_neural_config *cfg, const avo_voice_analysis *target,
                                       const avo_convert_options *opt, avo_converter **out, avo_error *err);

#ifdef __cplusplus
}
#endif
#endif
