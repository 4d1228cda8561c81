/* Separation quality measures: BSS Eval v4 SDR (as museval computes it for SiSEC/MUSDB) and SI-SDR.
 *
 * BSS Eval v4 "images" mode (museval.metrics.bss_eval with framewise_filters=False,
 * bsseval_sources_version=False) splits each estimate into s_true + e_spat + e_interf + e_artif using
 * 512-tap distortion filters fitted once on the whole signal, and reports per window
 *     SDR = 10 log10( sum s_true^2 / sum (e_spat + e_interf + e_artif)^2 ).
 * The three error terms telescope to (estimate - s_true), so the images-mode SDR of a window equals
 * 10 log10(|s|^2 / |s_hat - s|^2) over that window: the filters change ISR/SIR/SAR, never the SDR.
 * This module computes that identity directly (no filter fit), with museval's framing (window and hop
 * in samples, nwin = floor((n - win + hop) / hop), the last window cut at n, the whole signal as one
 * window when win >= n), museval's silent-window rule (a window where any reference or estimate has
 * every sample's channel sum equal to 0 is skipped, NaN) and museval's per-track summary, the median
 * over windows ignoring NaN. museval's defaults for MUSDB are 1 s windows and hops.
 *
 * SI-SDR (Le Roux et al. 2019): alpha = <s_hat, s> / <s, s>, SI-SDR = 10 log10(|alpha s|^2 / |alpha s -
 * s_hat|^2), over the whole signal with all channels concatenated, no mean removal. Unlike SDR it is
 * invariant to the estimate's gain. */
#ifndef AUTOVOICE_SDR_H
#define AUTOVOICE_SDR_H

#include "autovoice/audio.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Number of windows museval's framing gives for n samples. */
int64_t avo_bss_eval_windows(int64_t n, int64_t window, int64_t hop);

/* BSS Eval v4 images-mode SDR of nsrc estimates against nsrc references (same order; no permutation
 * search). Every reference and estimate must have the references' channel count; each estimate is
 * zero-padded or truncated to its reference's length (museval's pad_or_truncate); references must all
 * have the same length and no reference may be silent as a whole (museval rejects that too).
 * window and hop are in samples (0 = 1 s at the references' rate).
 * framewise (may be NULL): nsrc * avo_bss_eval_windows(...) values, source-major, NaN for skipped windows.
 * median (may be NULL): nsrc values, the NaN-ignoring median over windows (NaN if every window was skipped). */
avo_status avo_bss_eval_sdr(const avo_audio *references, const avo_audio *estimates, int nsrc, int64_t window,
                            int64_t hop, double *framewise, double *median, avo_error *err);

/* SI-SDR in dB of est against ref, n samples each. +inf when est is exactly a scaled ref; -inf when the
 * reference is silent or est is orthogonal to it. */
double avo_si_sdr(const float *ref, const float *est, int64_t n);

/* SI-SDR over all channels of two buffers of the same rate and channel count (est padded/truncated to
 * ref's length). */
avo_status avo_si_sdr_audio(const avo_audio *ref, const avo_audio *est, double *out, avo_error *err);

#ifdef __cplusplus
}
#endif
#endif
