/* Vocal separation without model files.
 *
 * Each block of the song goes through an STFT of the mid channel ((L+R)/2; the only channel for mono).
 * Lead vocals are usually panned centre, so the vocal estimate is taken from the mid only and the
 * side channel goes to the accompaniment; the side also bounds how much accompaniment the mid holds.
 * A soft mask (sep_vocal_mask) keeps the vocal part of the mid. Blocks overlap and the vocal
 * estimates are cross-faded; accompaniment = mixture - vocals sample for sample. */
#include "autovoice/separate.h"
#include "autovoice/f0.h"
#include "separate/sep_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define SEP_MIN_FFT_LOG2 8
#define SEP_MAX_FFT_LOG2 13
#define SEP_NPLANS (SEP_MAX_FFT_LOG2 - SEP_MIN_FFT_LOG2 + 1)

struct avo_separator {
    avo_separator_config cfg;
    sep_params params;
    sep_stft stft[SEP_NPLANS]; /* one per FFT size, so any sample rate finds its plan */
    sep_work work;             /* block buffers, reused across blocks and runs */
    char method[96];
};

void avo_separator_config_default(avo_separator_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->preset = AVO_PRESET_BALANCED;
    cfg->threads = 0;
    cfg->block_seconds = 0;
}

/* Values chosen on bench_separation (constructed mixtures at 0 dB, falcon69): a wide REPET-SIM
 * neighbourhood (30 frames >= 0.25 s apart) beat small ones by 3-4 dB; side cancellation over +-30
 * frames (0.35 s) gave +1.6 dB; a second pass on the accompaniment estimate +1.2 dB. Searching
 * neighbours on even frames only (stride 2) cost nothing (+0.1 dB). The F0 comb (fast preset, 0 dB):
 * vocals 6.8 -> 8.2 dB, accompaniment 7.6 -> 8.9 dB; nearly all of it from raising the mask on the
 * harmonics (boost 0.7 -> 0.05 went 7.2 -> 8.2 dB), 0.2 dB from the floor between them (1 -> 0.5);
 * a softer Wiener mask alone (power 1) lost 0.2 dB, so the gain is the comb's, not just softness.
 * Floor 0.3 with 1-bin width scored the same on real clips with the fast preset but cost 3 dB on the
 * synthetic song's +-3 % vibrato, so fast keeps the gentler floor and wider harmonics; after HPSS and
 * a second pass (balanced) the narrow comb was 0.45 dB better on real clips (8.81 against 8.36).
 * Later, tuned on half of the singers and checked on the other half (0 dB, accompaniment SDR):
 * halving the mask where no confident F0 is found (unvoiced_gain 0.5; 0.3 and below lost the
 * consonants and scored worse) with the Viterbi F0 tracker (f0_accurate) and, for fast, the narrow
 * comb with floor 0.2: fast 9.11 -> 9.89 (tuning half), 8.79 -> 9.43 (held-out half), falcon69
 * 7.95 -> 8.94; balanced 10.13 -> 10.43 and 9.41 -> 9.45, falcon69 8.57 -> 9.00. Then 93 ms
 * windows instead of 46 ms (the comb and the masks resolve a voice's low harmonics from the bass and
 * guitars between them; frame and bin counts above rescaled to the same seconds and hertz): fast
 * 9.89 -> 10.98 and 9.43 -> 10.21 (falcon69 8.94 -> 8.63); 186 ms lost 1 dB. With them a lower F0
 * confidence bar (0.3 -> 0.2) and 45 REPET-SIM neighbours (30 -> 45; 60 found no more): fast
 * 11.38 / 10.62, balanced 11.57 / 10.73 (tuning / held-out half). Tried and not
 * kept (no gain): re-estimating the side prediction from the accompaniment estimate (+-0.1 dB, a
 * whole extra mask pass), pooling it over neighbouring bins (-0.7 dB), side magnitudes in the
 * REPET-SIM similarity (+-0.1 dB), letting a low male fundamental through under the low cut
 * (-0.15 dB: the bass sits there).
 * Then (singer halves by bench_separation --half: 0 tunes, 1 confirms; balanced, 0 dB, accompaniment
 * SDR median): harmonics up to 1.2 kHz fitted as stationary sinusoids in voiced frames, the fit plus
 * half of what it leaves in the partial's five bins instead of the comb-masked bins, and a low
 * voice's fundamental down to 70 Hz kept as its sinusoid alone (the bass around it stays out); the
 * comb's F0 held one frame past a confident frame, unvoiced gain 0.4, floor 0.2, side prediction
 * over +-10 frames: 11.56 -> 11.92 (tuning half), 10.74 -> 11.02 (held-out half), worst clip
 * 6.70 -> 7.82. Then the partials fitted as linear chirps at the sweep the F0 track's slope
 * predicts (a singer's vibrato moves a partial by bins within one 93 ms window), from 100 Hz:
 * 11.92 -> 12.11 and 11.02 -> 11.17. Tried and not kept: comb harmonics widened by the F0 slope (-0.3 to -0.8 dB),
 * REPET-SIM neighbours weighted by similarity (-0.3 dB and far worse when sharper), a further
 * mask pass on what the fitted estimate leaves (-0.06), a second F0 track on the fitted estimate
 * (-0.07 / +0.05), the fit over 3 or 9 bins instead of 5 (0 / -0.1, -0.36), a harmonic cap from
 * the neighbouring partials' levels (-4 dB: formants make neighbours differ); with chirps: searching
 * +-1 bin of sweep around the predicted one (-0.02), wider fits for fast sweeps (+0.02), fits up to
 * 3 or 5 kHz (+0.06 / -0.01 on the held-out half), bending the chirps by the F0 track's curvature
 * (+0.01 / -0.01), other floors, gains and mask powers (+-0.04).
 * Then (same halves, 0 dB, accompaniment SDR median / worst): the side prediction fitted again, to the
 * mid less the first vocal estimate and weighted by 1 - its mask (recancel; an oracle fit to the true
 * accompaniment alone was +1 dB on fast, half 0): fast 11.81 -> 12.03 and 10.99 -> 11.17, balanced
 * 12.10 -> 12.20 and 10.90 -> 11.12 (worst 7.87 -> 8.72), quality 12.04 -> 12.13 and 11.06 -> 11.27.
 * Fitting to the mid less the estimate alone gave 11.90 (fast, half 0), weighting alone 12.01, a
 * second recancel pass 12.04 (no more); shrinking h towards a +-40 frame or whole-block fit, or by its
 * variance, +-0.07 at best. Then what is left predicted again from the side 2 frames (46 ms) before and
 * after (recancel_lag; stereo delays and reverbs): fast 12.03 -> 12.36 and 11.17 -> 11.25, balanced
 * 12.20 -> 12.57 and 11.12 -> 11.61, quality 12.13 -> 12.53 and 11.27 -> 11.61, worst clips +0.4 to
 * +0.9 on the held-out half; lags of 1 or 3 frames gave less (12.18, 12.22 fast), 1 and 2 together
 * 12.05, a frequency-neighbour side bin as predictor 12.06. Caveat: every constructed mixture has the
 * same accompaniment (falcon69), so the halves split singers, not mixes; the side's lag before alone
 * gave nothing (12.05) and after alone 12.40, which is that mix's stereo, kept symmetric here.
 * Then both predictions over a stepped-pyramid window (masks.c, CANCEL_BOXES): fast 12.69 / 11.59,
 * balanced 12.64 / 11.96, quality 12.58 / 11.88; all 24 clips 12.13, 12.12, 12.08 (from 11.52, 11.35,
 * 11.27 before recancel). Keeping the first pass's F0 track in the second pass instead of tracking
 * again lost 0.13-0.19 dB and saved little time. One mask re-estimation pass in the second vocal
 * pass (recancel_iterations) instead of the preset's 2 or 3 was both faster and better: balanced
 * 12.64 -> 12.78 and 11.96 -> 11.99, quality 12.58 -> 12.72 and 11.88 -> 12.13 (halves 0 / 1); all
 * 24 clips: fast 12.13, balanced 12.12, quality 12.20. */
static void params_for_preset(avo_preset preset, sep_params *p) {
    memset(p, 0, sizeof *p);
    p->use_repet = 1;
    p->repet_k = 45;
    p->repet_min_gap_s = 0.25;
    p->repet_geo = 1;
    p->use_hpss = preset != AVO_PRESET_FAST;
    p->hpss_time_len = 9;  /* 0.2 s at the 23 ms hop */
    p->hpss_freq_len = 25; /* 270 Hz (33 scored the same, slower) */
    p->use_side = 1;
    p->side_gain = 1.0;
    p->side_cancel = 1;
    p->cancel_half = 10;
    p->cancel_max_gain = 4.0;
    p->recancel = 1;
    p->recancel_wpow = 1.0;
    p->recancel_lag = 2;
    p->recancel_iterations = 1;
    p->repet_stride = 2;
    p->use_f0 = 1;
    p->f0_accurate = 1;
    p->f0_floor = 0.2;
    p->f0_boost = 0.05;
    p->f0_width = 1.0;
    p->f0_max_hz = 5000.0;
    p->f0_min_conf = 0.2;
    p->unvoiced_gain = 0.4;
    p->f0_hangover = 1;
    p->fit_max_hz = 1200.0;
    p->fit_resid = 0.5;
    p->fit_low_hz = 100.0;
    p->fit_chirp = 1;
    p->fit_step = 0.125;
    p->fit_span = 0.5;
    p->fft_seconds = 0.07;
    p->lowcut_hz = 150.0;
    p->mask_power = 2.0;
    p->iterations = preset == AVO_PRESET_FAST ? 1 : preset == AVO_PRESET_BALANCED ? 2 : 3;
}

static void describe(avo_separator *sep) {
    const sep_params *p = &sep->params;
    snprintf(sep->method, sizeof sep->method, "%s%s%s%s%s%s x%d", p->side_cancel ? "side-cancel+centre" : "centre",
             p->side_cancel && p->recancel > 0 ? "+recancel" : "",
             p->use_repet ? "+repet-sim" : "", p->use_hpss ? "+hpss" : "", p->use_f0 ? "+f0-harmonic" : "",
             p->use_f0 && p->fit_max_hz > 0 ? "+sinusoid-fit" : "", p->iterations);
}

avo_status avo_separator_create(const avo_separator_config *cfg, avo_separator **out, avo_error *err) {
    if (!out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_separator_create: out is NULL");
    *out = NULL;
    avo_separator_config def;
    avo_separator_config_default(&def);
    if (!cfg) cfg = &def;
    if (cfg->preset < AVO_PRESET_FAST || cfg->preset > AVO_PRESET_QUALITY)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "separator: unknown preset %d; use fast, balanced or quality",
                             (int)cfg->preset);
    if (cfg->threads < 0 || !(cfg->block_seconds >= 0) || cfg->block_seconds > 3600)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "separator: threads (%d) must be >= 0 and block_seconds (%g) in [0, 3600]; 0 picks defaults",
                             cfg->threads, cfg->block_seconds);
    avo_separator *sep = calloc(1, sizeof *sep);
    if (!sep) return avo_error_set(err, AVO_ERR_NO_MEMORY, "separator: out of memory creating the context");
    sep->cfg = *cfg;
    if (sep->cfg.block_seconds == 0) sep->cfg.block_seconds = 30.0;
    if (sep->cfg.block_seconds < 4.0) sep->cfg.block_seconds = 4.0;
    params_for_preset(cfg->preset, &sep->params);
    for (int i = 0; i < SEP_NPLANS; i++) {
        if (sep_stft_init(&sep->stft[i], 1 << (SEP_MIN_FFT_LOG2 + i))) {
            avo_separator_free(sep);
            return avo_error_set(err, AVO_ERR_NO_MEMORY, "separator: cannot create FFT plans (out of memory)");
        }
    }
    describe(sep);
    *out = sep;
    return AVO_OK;
}

void avo_separator_free(avo_separator *sep) {
    if (!sep) return;
    for (int i = 0; i < SEP_NPLANS; i++) sep_stft_free(&sep->stft[i]);
    sep_work_free(&sep->work);
    free(sep);
}

const char *avo_separator_method(const avo_separator *sep) { return sep ? sep->method : "none"; }

sep_params *sep_separator_params(avo_separator *sep) { return &sep->params; }

void sep_separator_params_changed(avo_separator *sep) { describe(sep); }

/* About 93 ms windows at any rate (4096 at 44.1 and 48 kHz). */
static const sep_stft *stft_for_rate(const avo_separator *sep, int rate) {
    int lg = SEP_MIN_FFT_LOG2;
    while (lg < SEP_MAX_FFT_LOG2 && (1 << lg) < sep->params.fft_seconds * rate) lg++;
    return &sep->stft[lg - SEP_MIN_FFT_LOG2];
}

/* Shapes the mask with the lead vocal's harmonics: F0 of the current vocal estimate (written to v, as
 * scratch), then a comb along its harmonics. The estimate's accompaniment leakage is far weaker than
 * the vocal, so the melody tracker follows the voice rather than the instruments. */
static int apply_f0(avo_separator *sep, const sep_stft *st, int64_t len, int rate, int threads, float *v) {
    sep_work *w = &sep->work;
    const int64_t T = sep_stft_frames(st, len), nb = T * (int64_t)st->bins;
    const float *mask = w->mask;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < nb; i++) {
        w->S[i][0] = w->M[i][0] * mask[i];
        w->S[i][1] = w->M[i][1] * mask[i];
    }
    if (sep_stft_inverse(st, w->S, len, v, threads)) return -1;
    avo_f0_config fc;
    avo_f0_config_default(&fc);
    fc.method = AVO_F0_FAST;
    fc.hop_seconds = (double)st->hop / rate; /* one F0 frame per STFT frame, both centred on t * hop */
    fc.f0_min_hz = 70;
    fc.f0_max_hz = 1000;
    fc.threads = threads;
    avo_f0_track tr;
    if (sep->params.f0_accurate) fc.method = AVO_F0_ACCURATE;
    if (avo_f0_estimate(v, len, rate, &fc, &tr, NULL)) return -1;
    /* Frame counts agree up to rounding of the hop; frames past the track's end count as unvoiced. */
    float *f0 = w->tmp, *conf = w->tmp + T;
    for (int64_t t = 0; t < T; t++) {
        f0[t] = t < tr.frames ? tr.f0_hz[t] : 0.0f;
        conf[t] = t < tr.frames ? tr.confidence[t] : 0.0f;
    }
    avo_f0_track_free(&tr);
    sep_f0_comb(&sep->params, f0, conf, T, st->bins, st->n, rate, threads, w->mask);
    return 0;
}

/* Vocal estimate from the (side-cancelled) mid spectrum in w->M (and the side spectrum in w->S, or
 * NULL for mono) into v (len samples): mask, F0 comb, harmonic fit. Leaves the vocal spectrum in w->M
 * and its mask in w->mask; overwrites w->S. */
static int vocal_from_mid(avo_separator *sep, const sep_stft *st, int64_t len, int rate, int threads, int stereo,
                          float *v) {
    const int64_t T = sep_stft_frames(st, len);
    const int64_t nb = T * (int64_t)st->bins;
    sep_work *w = &sep->work;
    fftwf_complex *M = w->M;
    if (sep_vocal_mask(&sep->params, M, stereo ? w->S : NULL, T, st->bins, st->n, st->hop, rate, threads, w))
        return -1;
    if (sep->params.use_f0 && apply_f0(sep, st, len, rate, threads, v)) return -1;
    const float *mask = w->mask;
    if (sep->params.use_f0 && sep->params.fit_max_hz > 0) {
        /* apply_f0 left the F0 track in w->tmp; the fit writes the vocal spectrum over M */
        if (sep->params.fit_chirp && sep_chirps_make(&w->chirps, st, threads)) return -1;
        sep_harmonic_fit(&sep->params, w->tmp, w->tmp + T, M, mask, T, st->bins, st->n, rate,
                         sep->params.fit_chirp ? &w->chirps : NULL, threads, M);
    } else {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t i = 0; i < nb; i++) {
            M[i][0] *= mask[i];
            M[i][1] *= mask[i];
        }
    }
    return sep_stft_inverse(st, M, len, v, threads);
}

/* A second side prediction for the mid (spectrum into w->M, side spectrum into w->S), once
 * vocal_from_mid has left a vocal estimate in w->M and its mask in w->mask. The first prediction was
 * fitted to the mid itself, vocal included: over +-cancel_half frames the vocal correlates with the
 * side by chance, and the fit then subtracts a side-shaped piece from the vocal's bins (oracle test:
 * fitting to the true accompaniment alone was worth +1 dB). This one is fitted to the mid less the
 * vocal estimate, each bin weighted by how little of it the mask gave the vocal. */
static int recancel_mid(avo_separator *sep, const sep_stft *st, int64_t len, int threads) {
    const int64_t T = sep_stft_frames(st, len);
    const int64_t nb = T * (int64_t)st->bins;
    sep_work *w = &sep->work;
    const sep_params *p = &sep->params;
    fftwf_complex *M = w->M, *S = w->S, *E = w->E;
    float *wgt = NULL;
    if (sep_stft_forward(st, w->mid, len, S, threads)) return -1;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < nb; i++) {
        E[i][0] = S[i][0] - M[i][0];
        E[i][1] = S[i][1] - M[i][1];
        M[i][0] = S[i][0];
        M[i][1] = S[i][1];
    }
    if (p->recancel_wpow > 0) {
        /* w->mask is rebuilt from the new mid afterwards, so it can hold the weights meanwhile */
        wgt = w->mask;
        const float q = (float)p->recancel_wpow;
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t i = 0; i < nb; i++) {
            const float a = 1.0f - wgt[i] > 0.0f ? 1.0f - wgt[i] : 0.0f;
            wgt[i] = q == 1.0f ? a : powf(a, q);
        }
    }
    if (sep_stft_forward(st, w->side, len, S, threads)) return -1;
    const int half = p->recancel_half > 0 ? p->recancel_half : p->cancel_half;
    if (sep_side_cancel(M, S, 0, E, p->recancel_lag > 0, wgt, T, st->bins, half, p->cancel_max_gain, threads))
        return -1;
    if (p->recancel_lag <= 0) return 0;
    /* What the side predicts from recancel_lag frames before and after, fitted to what is left of E
     * after each step (E is cancelled with the same prediction as the mid). Stereo delays and reverbs
     * put part of a panned source's mid into side frames around it; one greedy sweep, not a joint fit:
     * sweeping twice (closer to the joint fit) overfitted and lost 0.5 dB. */
    const int lags[2] = {-p->recancel_lag, p->recancel_lag};
    for (int k = 0; k < 2; k++)
        if (sep_side_cancel(M, S, lags[k], E, k == 0, wgt, T, st->bins, half, p->cancel_max_gain, threads)) return -1;
    return 0;
}

/* Vocal estimate for channels of one block x[c] (len samples) into v (len samples, the centre vocal).
 * For stereo, mid and side are formed here; more than two channels never reach this function. */
static int separate_block(avo_separator *sep, const sep_stft *st, const float *l, const float *r, int64_t len,
                          int rate, int threads, float *v) {
    const int64_t T = sep_stft_frames(st, len);
    sep_work *w = &sep->work;
    const sep_params *p = &sep->params;
    const int recancel = r && p->side_cancel ? p->recancel : 0;
    if (sep_work_reserve(w, len, T, st->bins, recancel > 0)) return -1;
    float *mid = w->mid, *sidet = w->side;
    fftwf_complex *M = w->M, *S = r ? w->S : NULL;
    if (r) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t i = 0; i < len; i++) {
            mid[i] = 0.5f * (l[i] + r[i]);
            sidet[i] = 0.5f * (l[i] - r[i]);
        }
    } else {
        memcpy(mid, l, sizeof(float) * (size_t)len);
    }
    if (sep_stft_forward(st, mid, len, M, threads)) return -1;
    if (r && sep_stft_forward(st, sidet, len, S, threads)) return -1;
    if (r && p->side_cancel && sep_side_cancel(M, S, 0, NULL, 0, NULL, T, st->bins, p->cancel_half, p->cancel_max_gain, threads))
        return -1;
    if (vocal_from_mid(sep, st, len, rate, threads, r != NULL, v)) return -1;
    for (int pass = 0; pass < recancel; pass++)
    {
        if (recancel_mid(sep, st, len, threads)) return -1;
        /* the later mask passes: recancel_iterations re-estimation passes (0: the preset's) */
        const int it = sep->params.iterations;
        if (p->recancel_iterations > 0) sep->params.iterations = p->recancel_iterations;
        const int rc = vocal_from_mid(sep, st, len, rate, threads, 1, v);
        sep->params.iterations = it;
        if (rc) return -1;
    }
    return 0;
}

/* centre_only: a stereo mixture's vocals come back as one channel (the centre estimate, which both
 * channels would carry identically), saving a full-length channel of memory. */
static avo_status separate_to(avo_separator *sep, const avo_audio *mixture, avo_audio *vocals, avo_audio *accompaniment,
                              int centre_only, avo_progress_fn progress, void *user, avo_error *err) {
    /* accompaniment == mixture: in place, the mixture is overwritten with the accompaniment at the
     * end, after every block has read it. */
    const int in_place = accompaniment == mixture;
    if (!sep || !mixture || !vocals || !accompaniment)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_separator_run: NULL argument");
    if (vocals == mixture) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_separator_run: vocals is the mixture");
    memset(vocals, 0, sizeof *vocals);
    if (!in_place) memset(accompaniment, 0, sizeof *accompaniment);
    if (mixture->sample_rate < 4000 || mixture->sample_rate > 768000 || mixture->channels < 1 ||
        mixture->channels > 64 || mixture->frames < 0 || (mixture->frames > 0 && !mixture->samples))
        return avo_error_set(err, AVO_ERR_INVALID_AUDIO,
                             "separation: unusable input (%d Hz, %d channels, %lld frames); need 4-768 kHz, 1-64 channels",
                             mixture->sample_rate, mixture->channels, (long long)mixture->frames);
    avo_status st = avo_audio_check_finite(mixture, "separation input", err);
    if (st) return st;
    const int rate = mixture->sample_rate, C = mixture->channels;
    const int VC = centre_only && C == 2 ? 1 : C;
    const int64_t N = mixture->frames;
    if ((st = avo_audio_alloc(vocals, rate, VC, N, err)) ||
        (!in_place && (st = avo_audio_alloc(accompaniment, rate, C, N, err)))) {
        avo_audio_free(vocals);
        return st;
    }
    const int threads = sep->cfg.threads > 0 ? sep->cfg.threads : omp_get_max_threads();
    const sep_stft *stf = stft_for_rate(sep, rate);

    /* Blocks of block_seconds overlapping by `fade` samples; vocal estimates are cross-faded linearly
     * there so joins have no steps. */
    int64_t block = (int64_t)(sep->cfg.block_seconds * rate);
    const int64_t fade = (int64_t)(1.0 * rate);
    if (block >= N) block = N;
    const int64_t step = block - fade;
    const int pairs = C == 2 ? 1 : C; /* stereo is one mid/side pass; other counts go channel by channel */
    float *v = malloc(sizeof(float) * (size_t)(block > 0 ? block : 1));
    if (!v) {
        avo_audio_free(vocals);
        if (!in_place) avo_audio_free(accompaniment);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "separation: out of memory for a %.0f s block", sep->cfg.block_seconds);
    }
    int64_t nblocks = N <= block ? 1 : 1 + (N - block + step - 1) / step;
    int64_t done_blocks = 0;
    for (int64_t start = 0; start < N; start += step) {
        int64_t len = N - start < block ? N - start : block;
        for (int c = 0; c < pairs; c++) {
            const float *l = avo_audio_channel(mixture, C == 2 ? 0 : c) + start;
            const float *r = C == 2 ? avo_audio_channel(mixture, 1) + start : NULL;
            if (separate_block(sep, stf, l, r, len, rate, threads, v)) {
                free(v);
                avo_audio_free(vocals);
                if (!in_place) avo_audio_free(accompaniment);
                return avo_error_set(err, AVO_ERR_NO_MEMORY,
                                     "separation: out of memory in a %.0f s block; lower block_seconds",
                                     sep->cfg.block_seconds);
            }
            const int c0 = C == 2 ? 0 : c, c1 = C == 2 ? VC - 1 : c;
            for (int cc = c0; cc <= c1; cc++) {
                float *out = avo_audio_channel(vocals, cc) + start;
                const int64_t ov = start > 0 ? (fade < len ? fade : len) : 0;
                for (int64_t i = 0; i < ov; i++) {
                    const float w = (float)(i + 1) / (float)(ov + 1);
                    out[i] = (1.0f - w) * out[i] + w * v[i];
                }
                memcpy(out + ov, v + ov, sizeof(float) * (size_t)(len - ov));
            }
        }
        done_blocks++;
        if (progress) progress("separation", (double)done_blocks / (double)nblocks, user);
        if (start + len >= N) break;
    }
    free(v);
    for (int c = 0; c < C; c++) {
        const float *m = avo_audio_channel(mixture, c), *vo = avo_audio_channel(vocals, VC == 1 ? 0 : c);
        float *a = avo_audio_channel(accompaniment, c);
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t i = 0; i < N; i++) a[i] = m[i] - vo[i];
    }
    return AVO_OK;
}

avo_status avo_separator_run(avo_separator *sep, const avo_audio *mixture, avo_audio *vocals,
                             avo_audio *accompaniment, avo_progress_fn progress, void *user, avo_error *err) {
    return separate_to(sep, mixture, vocals, accompaniment, 0, progress, user, err);
}

avo_status avo_separator_run_centre(avo_separator *sep, const avo_audio *mixture, avo_audio *vocals,
                                    avo_audio *accompaniment, avo_progress_fn progress, void *user, avo_error *err) {
    return separate_to(sep, mixture, vocals, accompaniment, 1, progress, user, err);
}

avo_status avo_separator_run_in_place(avo_separator *sep, avo_audio *audio, avo_audio *vocals, avo_progress_fn progress,
                                      void *user, avo_error *err) {
    return separate_to(sep, audio, vocals, audio, 1, progress, user, err);
}
