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
};

/* Most voiced frames a profile keeps (10 ms each: 8 minutes); longer material is subsampled evenly. */
#define VOICE_ANALYSIS_MAX_FRAMES 48000

/* Frame period of profile analysis (seconds). */
#define VOICE_ANALYSIS_FRAME_PERIOD 0.010

/* Replaces the timbre of voiced frames with a blend of the target frames that match them best
 * (k nearest neighbours in a speaker-normalised cepstral space), as a smooth correction on top of
 * the current envelopes. amount in [0, 1]; band_top_hz limits the correction to what the target
 * recordings cover. */
avo_status retrieval_correct(avo_voice_params *p, const avo_voice_analysis *target, double amount,
                             double band_top_hz, int threads, avo_error *err);

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

#endif
