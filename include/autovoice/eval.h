/* Objective evaluation of a conversion: melody kept, voice changed, spectrum natural.
 *
 * Given the converted output, its source and the target's own recordings:
 *   - F0: RMSE in cents and Pearson correlation of log F0 between the output and the source
 *     transposed by T semitones, on frames voiced in both; voicing agreement over all frames.
 *   - Speaker similarity from a GMM-UBM back end (see avo_evaluator below).
 *   - Mel-cepstral distortion (dB) of each voiced output frame to its nearest target frame (content
 *     differs, so no DTW), and the same figure for the source as the reference.
 *   - A naturalness distance of the output to the target's recordings, in dB (lower is more natural):
 *     spectral flatness (100 Hz..7 kHz; mean and spread in dB over active frames) and the modulation
 *     spectrum of the mel-cepstral trajectories (c1..c24 in 4 groups, 3..50 Hz, Hann-windowed 320 ms
 *     segments of continuous sound, dB). Over-smoothed, buzzy or noisy synthesis moves both. Distance =
 *     sqrt(0.5 * mean squared modulation-spectrum difference + 0.5 * mean squared flatness difference).
 *
 * All analysis runs at 16 kHz mono (inputs of any rate and channel count are converted). */
#ifndef AUTOVOICE_EVAL_H
#define AUTOVOICE_EVAL_H

#include "autovoice/audio.h"
#include "autovoice/f0.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- F0 metrics ---- */

typedef struct avo_eval_f0_result {
    double rmse_cents;        /* NaN when no frame is voiced in both */
    double corr;              /* Pearson r of log F0; NaN when fewer than 3 such frames or no variance */
    double voicing_agreement; /* share of frames whose voiced/unvoiced decision matches, in [0, 1] */
    int64_t frames;           /* frames compared (the shorter track) */
    int64_t both_voiced;      /* frames voiced in both */
    /* Gross pitch errors: frames voiced in both whose F0 differs by more than 20% (about 316 cents; octave
     * slips of either F0 tracker land here), as a share of both_voiced, and the RMSE over the other
     * frames. rmse_cents counts every frame: a 2% share of octave slips alone makes it about 170 cents. */
    double gross_error_rate;
    double rmse_fine_cents;   /* NaN when no frame is within 20% */
} avo_eval_f0_result;

/* Compares two tracks of the same hop, frame by frame (the shorter length wins). The source F0 is
 * multiplied by 2^(transpose_semitones/12) first. */
avo_status avo_eval_f0_compare(const avo_f0_track *output, const avo_f0_track *source, double transpose_semitones,
                               avo_eval_f0_result *out, avo_error *err);

/* ---- The evaluator context and its speaker model ----
 *
 * An avo_evaluator holds the FFT plans of the analysis and the speaker model; create it once (plans are
 * not created thread-safely) and reuse it: the functions below only read it. They also call
 * avo_f0_estimate, which plans its own FFTs per call, so run evaluations one at a time (each is
 * parallel inside).
 *
 * Speaker features: MFCC c1..c19 (the frame level c0 left out) + deltas of c0..c19 at 16 kHz, 25 ms
 * frames every 10 ms, energy-based activity (frames within 40 dB of the loudest), per-utterance cepstral
 * mean/variance normalisation.
 * Back end: a 64-component diagonal-covariance GMM universal background model trained by EM on pooled
 * recordings; an utterance is MAP-adapted (means only, relevance 4) and represented by its normalised
 * mean-offset supervector
 *   s_k = sqrt(w_k) * (m_k_adapted - m_k_ubm) / sigma_k,
 * the KL-divergence-based supervector of Campbell et al. Similarity of two utterances is the cosine
 * of their supervectors clipped to [0, 1]: 1 = same recording, about 0 = unrelated speakers (on the
 * shared data: same speaker about 0.3-0.45, different speakers about 0.05-0.1). The scale is bounded, so
 * "similarity ratio" = sim(output, target) / sim(target clip, other target clip) compares how close the
 * output is to the target with how close the target is to itself (1 = as close as another recording of
 * the target). bench/bench_eval_speaker measures EER and identification accuracy for this choice and for
 * classic LLR scoring. */

typedef struct avo_evaluator avo_evaluator;

typedef struct avo_speaker_config {
    int components;        /* GMM components (default 64) */
    int em_iterations;     /* default 12 */
    double relevance;      /* MAP relevance factor (default 4) */
    int threads;           /* 0 = as many as available */
    uint64_t seed;         /* seeding of the EM start; same seed and data, same model (default 1) */
    int f0_smoothing;      /* 1 (default): average each voiced frame's power spectrum over a band one F0 wide
                              before the mel filterbank (150 Hz on unvoiced frames), so speaker features and
                              mel cepstra follow the spectral envelope, not the harmonics; 0: raw spectra */
} avo_speaker_config;

void avo_speaker_config_default(avo_speaker_config *cfg);

/* Trains the UBM on the given recordings (at least a few seconds of sound in all). cfg may be NULL. */
avo_status avo_evaluator_create(const avo_audio *clips, int clip_count, const avo_speaker_config *cfg,
                                avo_evaluator **out, avo_error *err);

/* Trains on every .flac/.wav directly in data_dir/singing and data_dir/speech (the shared recordings: about
 * 13 minutes, a few seconds of work), skipping files whose name starts with one of the `exclude` prefixes
 * (may be NULL). */
avo_status avo_evaluator_create_from_dir(const char *data_dir, const char *const *exclude, int exclude_count,
                                         const avo_speaker_config *cfg, avo_evaluator **out, avo_error *err);
void avo_evaluator_free(avo_evaluator *ev);

/* Length of an utterance's supervector (components * 40). */
int avo_speaker_dim(const avo_evaluator *ev);

/* Supervector of one recording into vec[avo_speaker_dim(ev)]. Needs at least 0.5 s of sound. */
avo_status avo_speaker_embed(const avo_evaluator *ev, const avo_audio *clip, float *vec, avo_error *err);

/* Cosine of two supervectors clipped to [0, 1]. */
double avo_speaker_similarity(const avo_evaluator *ev, const float *a, const float *b);

/* Average log-likelihood ratio per test frame, log p(test | UBM MAP-adapted to enrol) - log p(test | UBM)
 * (classic GMM-UBM scoring; the bench compares it with the cosine). */
avo_status avo_speaker_llr(const avo_evaluator *ev, const avo_audio *enrol, const avo_audio *test, double *llr,
                           avo_error *err);

/* ---- Full evaluation ----
 *
 * Speaker protocol ("heldout"): the output is scored against recordings of the target speaker and
 * against recordings of the source speaker, neither of which is the recording that was converted, and
 * the output counts as "classified as target" when it is closer to the target's recordings. Both sides
 * are treated alike (several clips: mean over clips; a lone clip: mean over its two halves). Scoring
 * the source side against the converted recording itself measures shared content, not the speaker:
 * with this back end a resynthesis with no timbre change scores about 0.85 against its own recording
 * but 0.2-0.3 against the same singer's other clips, so every conversion looked like its source. That
 * content-matched score is still reported, as a diagnostic under its own name, never as the verdict. */

typedef enum avo_eval_protocol {
    AVO_EVAL_PROTOCOL_HELDOUT = 0,       /* both sides scored on held-out recordings: the verdict is valid */
    AVO_EVAL_PROTOCOL_NO_SOURCE_REFS = 1 /* no held-out source recordings were given: no verdict */
} avo_eval_protocol;

/* "heldout" or "no_source_refs" (the eval JSON's "speaker_protocol" field). */
const char *avo_eval_protocol_name(avo_eval_protocol p);

typedef struct avo_eval_options {
    double transpose_semitones; /* expected melody change from source to output */
    avo_f0_method f0_method;    /* default AVO_F0_ACCURATE */
    int threads;                /* 0 = as many as available */
} avo_eval_options;

void avo_eval_options_default(avo_eval_options *opt);

typedef struct avo_eval_result {
    avo_eval_f0_result f0;
    avo_eval_protocol protocol;
    double sim_target;          /* mean over target units of sim(output, unit) */
    double sim_source;          /* mean over held-out source units of sim(output, unit); NaN without them */
    double sim_target_self;     /* mean over pairs of different target units */
    double sim_source_self;     /* the same among held-out source units; NaN without them */
    double sim_source_target;   /* mean over target units of sim(source, unit): where the output started */
    int classified_as_target;   /* 1: sim_target > sim_source; 0: not; -1: no held-out source (no verdict) */
    double similarity_ratio;    /* sim_target / sim_target_self; NaN if sim_target_self is 0 */
    /* Diagnostic only: sim(output, the converted source recording) and the verdict it would give. Shared
     * content inflates it (see above); kept so that the old figure stays visible next to the new one. */
    double sim_source_content_matched;
    int classified_as_target_content_matched;
    double mcd_to_target_db;    /* mean over voiced output frames of MCD to the nearest target frame */
    double mcd_source_to_target_db;
    double naturalness_distance;        /* output vs target recordings, dB */
    double naturalness_source_distance; /* source vs target recordings, dB: the reference */
} avo_eval_result;

/* Evaluates one conversion. Target clips must be different recordings of the target voice; source_refs
 * (may be NULL with source_ref_count 0: then protocol is NO_SOURCE_REFS and there is no verdict) other
 * recordings of the source voice than `source`. A "unit" is a clip, or each half of a side's lone clip. A
 * source reference identical to the source recording is refused (that is the content-matched score). */
avo_status avo_eval_run(const avo_evaluator *ev, const avo_audio *output, const avo_audio *source,
                        const avo_audio *source_refs, int source_ref_count, const avo_audio *targets,
                        int target_count, const avo_eval_options *opt, avo_eval_result *out, avo_error *err);

/* ---- Building blocks (exposed for tests and benches) ---- */

/* Mean nearest-neighbour mel-cepstral distortion (dB) of the voiced frames of `a` to any active frame of
 * the references. Mel cepstrum: c1..c24 of the log-amplitude 40-band mel spectrum (DCT scaled so that
 * log|X| = c0 + 2 sum c_n cos(...)); MCD = 10/ln10 * sqrt(2 sum (dc_n)^2). voiced (a's F0 track,
 * 10 ms hop) may be NULL: then a's active frames are used. */
avo_status avo_eval_mcd_nn(const avo_evaluator *ev, const avo_audio *a, const avo_f0_track *voiced,
                           const avo_audio *refs, int ref_count, double *mcd_db, avo_error *err);

/* Naturalness distance (dB) of `a` to the references (see top of file). */
avo_status avo_eval_naturalness(const avo_evaluator *ev, const avo_audio *a, const avo_audio *refs, int ref_count,
                                double *distance_db, avo_error *err);

#ifdef __cplusplus
}
#endif
#endif
