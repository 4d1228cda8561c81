/* so-vits-svc generator internals shared by sovits.c and its tests: a run with host copies of the
 * intermediates, for stage-by-stage comparison with the PyTorch reference
 * (tests/reference/sovits_models.py). Not a public interface. */
#ifndef AVO_SOVITS_INTERNAL_H
#define AVO_SOVITS_INTERNAL_H

#include "autovoice/models.h"

#define SOVITS_HARMONICS 9 /* SourceModuleHnNSF(harmonic_num=8): the fundamental and 8 overtones */

/* Host copies of one run's intermediates (NULL members are skipped). */
typedef struct sovits_taps {
    float *x;          /* [hidden, frames]: pre(units) + emb_uv(uv) (+ emb_vol(vol)) */
    int32_t *coarse;   /* [frames]: f0_to_coarse of the f0 given */
    float *m_p, *logs_p, *z_p, *z; /* [inter, frames] */
    float *har_source; /* [frames * hop]: tanh(l_linear(harmonics)), the generator's excitation */
    int64_t chunk_frames; /* generator chunk length for this run (<= 0: the default) */
    double ms_enc, ms_flow, ms_source, ms_dec; /* filled in: wall time of enc_p (with z_p), the flows, the
                                                  host source and the generator */
} sovits_taps;

avo_status sovits_infer_taps(avo_sovits *m, avo_arena *a, const float *units, int64_t frames, const float *f0_hz,
                             const float *uv, const float *vol, int sid, float noise_scale,
                             const avo_sovits_noise *noise, uint64_t seed, float *audio, sovits_taps *taps,
                             avo_error *err);

/* The hidden width (rows of sovits_taps.x). */
int sovits_hidden(const avo_sovits *m);

#endif
