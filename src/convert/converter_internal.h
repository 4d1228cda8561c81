/* Converter back ends plug in through this table. */
#ifndef AVO_CONVERTER_INTERNAL_H
#define AVO_CONVERTER_INTERNAL_H

#include "autovoice/convert.h"
#include "autovoice/vocoder.h"

typedef struct converter_ops {
    avo_status (*run)(avo_converter *c, const avo_audio *vocals, const avo_f0_track *f0, avo_audio *out,
                      avo_progress_fn progress, void *user, avo_error *err);
    void (*destroy)(void *state);
} converter_ops;

struct avo_converter {
    const converter_ops *ops;
    void *state;
    avo_convert_options options;
    avo_converter_info info;
};

/* Target analysis as held in memory. Version 2 of the stored form. */
struct avo_voice_analysis {
    int sample_rate;        /* lowest rate among the analysed clips */
    int grid_size;
    float *grid_hz;         /* mel-spaced analysis frequencies, below 0.45 * sample_rate */
    float *mean_log_env;    /* mean natural-log power of the envelope over voiced frames, per grid point */
    int64_t frame_count;    /* voiced frames kept for retrieval */
    float *frames;          /* frame_count * grid_size log envelopes on the grid */
    avo_voice_summary summary;
    /* Version 3 additions (NULL / 0 in profiles stored as version 2): what retrieval copies besides the
     * envelope, and the unvoiced sounds (consonants, breaths) of the target. */
    float *frame_f0;         /* frame_count: F0 (Hz) of each kept voiced frame (for pitch-aware uses) */
    float *frame_ap;         /* frame_count * grid_size: aperiodicity in [0, 1] on the grid */
    int64_t unvoiced_count;  /* unvoiced frames kept (not silence: within 45 dB of the voiced median) */
    float *unvoiced_env;     /* unvoiced_count * grid_size log envelopes on the grid */
};

/* Most voiced frames a profile keeps (10 ms each: 8 minutes); longer material is subsampled evenly. */
#define VOICE_ANALYSIS_MAX_FRAMES 48000

/* Most unvoiced frames a profile keeps (subsampled evenly beyond that). */
#define VOICE_ANALYSIS_MAX_UNVOICED 16000

/* Frame period of profile analysis (seconds). */
#define VOICE_ANALYSIS_FRAME_PERIOD 0.010

/* Replaces the timbre of voiced frames with a blend of the target frames that match them best
 * (k nearest neighbours in a speaker-normalised cepstral space), as a smooth correction on top of
 * the current envelopes. amount in [0, 1]; band_top_hz limits the correction to what the target
 * recordings cover. */
avo_status retrieval_correct(avo_voice_params *p, const avo_voice_analysis *target, double amount,
                             double band_top_hz, int threads, avo_error *err);

/* Retrieval with every part a version 3 profile offers. Voiced frames: the k nearest target frames give
 * the envelope and the aperiodicity. Unvoiced frames that carry sound (within 45 dB of the source's
 * mean voiced level) take the envelope of the nearest target consonants/breaths. Parts the profile
 * lacks (version 2) are left as they are. */
typedef struct retrieval_options {
    double amount;           /* 0..1: share of the retrieved envelope (voiced frames) */
    double unvoiced_amount;  /* 0..1: the same for unvoiced frames with sound */
    double ap_amount;        /* 0..1: share of the retrieved aperiodicity */
    double band_top_hz;      /* corrections fade out above this */
    int neighbours;          /* k, 1..16 */
    int hub_reduction;       /* 1: rank neighbours by CSLS (retrieval.c) so that no target frame serves most
                                source frames; 0: plain nearest */
    int threads;
} retrieval_options;

avo_status retrieval_apply(avo_voice_params *p, const avo_voice_analysis *target, const retrieval_options *opt,
                           avo_error *err);

/* The neighbour search of retrieval_apply on feature rows (src ns x dims, tgt nt x dims): per source row
 * the k target indices into nn (ns x k) and normalised weights into nw. Exposed for tests. */
avo_status retrieval_neighbours(const float *src_feat, int64_t ns, const float *tgt_feat, int64_t nt, int dims, int k,
                                int hub_reduction, int threads, int64_t *nn, float *nw, avo_error *err);

/* Curve sampled on a grid, evaluated at hz (linear, clamped). */
double curve_at(const float *grid, const double *val, int n, double hz);

/* Mel-spaced grid of n points from lo to hi Hz. */
void envelope_grid(float *grid_hz, int n, double lo_hz, double hi_hz);

/* Log power of one envelope frame sampled at grid frequencies (linear interpolation between bins). */
void envelope_on_grid(const avo_voice_params *p, int64_t frame, const float *grid_hz, int n, float *out_log);

/* Mean log envelope over voiced frames; returns the number of voiced frames used. */
int64_t mean_voiced_log_envelope(const avo_voice_params *p, const float *grid_hz, int n, double *acc);

/* Vocoder frame period and working rate per preset. */
double converter_frame_period(avo_preset preset);

/* A voice's pitch range: median and 5th/95th percentiles of voiced F0 (Hz). */
typedef struct pitch_range {
    double low, median, high;
} pitch_range;

/* Range of count voiced F0 values (v is sorted in place). */
pitch_range pitch_range_of(float *v, size_t count);

/* Semitones to add: the user's transpose plus, with auto-transpose, whole octaves toward the target. */
double choose_transpose(const avo_convert_options *opt, pitch_range src, pitch_range tgt);

/* ---- RVC feature index (feature_index.c) ---- */
typedef struct feature_index feature_index;

/* A NumPy .npy array [rows, dim] of float32 or float16 (C order). */
avo_status feature_index_load(const char *path, feature_index **out, avo_error *err);
avo_status feature_index_load_memory(const void *data, size_t size, const char *name, feature_index **out,
                                     avo_error *err);
void feature_index_free(feature_index *ix);
int64_t feature_index_rows(const feature_index *ix);
int feature_index_dim(const feature_index *ix);

/* RVC's retrieval on feats [frames, dim] in place: the k nearest rows (squared L2), weighted by the
 * inverse square of their squared distances, blended as rate * retrieved + (1 - rate) * feats. */
avo_status feature_index_blend(const feature_index *ix, float *feats, int64_t frames, int dim, double rate, int k,
                               avo_error *err);

/* ---- RVC chain on one 16 kHz segment (neural_converter.c), exposed for the parity test ---- */
struct avo_hubert;
struct avo_rvc;
struct avo_arena;

typedef struct rvc_chain {
    struct avo_hubert *hubert;
    struct avo_rvc *rvc;
    const feature_index *index; /* may be NULL */
    double index_rate;
    double protect;             /* >= 0.5: off */
    int speaker_id;
    uint64_t seed;
} rvc_chain;

/* x: n samples at 16 kHz (already high-passed); f0_hz: the transposed F0 of frames centred on samples
 * 160 * i, i < n / 160 + 1. Writes *frames = min(n / 160, 2 * content frames) frames of hop samples
 * into audio (capacity (n / 160 + 1) * hop). z_noise / src_noise as avo_rvc_infer (NULL: seeded). */
avo_status rvc_chain_segment(const rvc_chain *ch, struct avo_arena *a, const float *x, int64_t n, const float *f0_hz,
                             const float *z_noise, const float *src_noise, float *audio, int64_t *frames,
                             avo_error *err);

/* RVC's zero-phase 48 Hz high-pass of the 16 kHz input (two biquads of a 4th-order Butterworth, run
 * forward and backward), in place. */
void rvc_highpass_16k(float *x, int64_t n);

#endif
