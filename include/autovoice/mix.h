/* Mixing: converted vocals back over the accompaniment, the mixing stage.
 *
 * The converted vocals are brought to the loudness of the original vocals (EBU R128), laid over the
 * accompaniment, and the sum passes a look-ahead true-peak limiter so the result stays under the
 * ceiling (default -1 dBTP). Output length and channel count equal the accompaniment's. */
#ifndef AUTOVOICE_MIX_H
#define AUTOVOICE_MIX_H

#include "autovoice/audio.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct avo_mix_config {
    double ceiling_dbtp;       /* true-peak ceiling, default -1.0 */
    double lookahead_ms;       /* limiter look-ahead, default 5 */
    double release_ms;         /* limiter release, default 80 */
    int match_loudness;        /* 1 (default): converted vocals take the original vocals' loudness */
    double vocal_gain_db;      /* extra gain on the vocals after matching, default 0 */
} avo_mix_config;

/* What the mixer did, for the run metadata. */
typedef struct avo_mix_report {
    double original_vocals_lufs;
    double converted_vocals_lufs;
    double vocal_gain_db;      /* gain applied to the converted vocals */
    double output_true_peak_dbtp;
    double limiter_max_reduction_db;
} avo_mix_report;

void avo_mix_config_default(avo_mix_config *cfg);

/* Mixes. converted may have any rate and channel count (it is resampled and up/down-mixed);
 * original_vocals (may be NULL) is the loudness reference; out is allocated like accompaniment. */
avo_status avo_mix(const avo_audio *converted, const avo_audio *original_vocals, const avo_audio *accompaniment,
                   const avo_mix_config *cfg, avo_audio *out, avo_mix_report *report, avo_error *err);

/* The same, adding into mix (the accompaniment, overwritten with the result) without a copy.
 * reference_lufs is the original vocals' loudness; not finite (e.g. -HUGE_VAL) leaves the level alone. */
avo_status avo_mix_in_place(const avo_audio *converted, double reference_lufs, avo_audio *mix,
                           const avo_mix_config *cfg, avo_mix_report *report, avo_error *err);

/* The limiter alone, in place: keeps the true peak of a under ceiling_dbtp. */
avo_status avo_limit_true_peak(avo_audio *a, const avo_mix_config *cfg, double *max_reduction_db, avo_error *err);

#ifdef __cplusplus
}
#endif
#endif
