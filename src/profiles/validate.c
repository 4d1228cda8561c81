/* Clip validation: is a recording good enough to learn a voice from?
 *
 * Every figure is measured before any decision, so the report is complete even for a rejected clip.
 * SNR has no clean reference, so it is estimated from the clip itself: the energy of the louder half of
 * the voiced 20 ms frames (the voice) against the mean energy of the quietest 10% of the unvoiced
 * frames (the floor in the pauses). A clip without pauses only yields a lower bound; it is then not
 * rejected for noise, only warned about.
 */
#include "autovoice/f0.h"
#include "profiles_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_SAMPLE_RATE 16000
#define FULL_SCALE 0.999f
#define FLAT_RUN 3               /* equal samples at the peak that betray clipping */
#define CLIP_REJECT_FRACTION 0.01
#define CLIP_WARN_FRACTION 0.001
#define SNR_REJECT_DB 10.0
#define SNR_WARN_DB 20.0
#define SNR_CAP_DB 99.0          /* digital silence between phrases would give infinity */
#define SILENT_PEAK 0.001f       /* -60 dBFS */
#define QUIET_PEAK 0.0316f       /* -30 dBFS: usable but worth a warning */
#define MIN_VOICED_SECONDS 0.1   /* per clip; the profile as a whole needs AVO_PROFILE_MIN_VOICED_SECONDS */
#define FRAME_SECONDS 0.020
#define MIN_NOISE_FRAMES 10      /* 0.2 s of pauses to measure the background from */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Mean of channels into out[n]. */
static void mix_to_mono(const avo_audio *a, float *out) {
    const int64_t n = a->frames;
    memcpy(out, avo_audio_channel(a, 0), (size_t)n * sizeof *out);
    for (int c = 1; c < a->channels; c++) {
        const float *x = avo_audio_channel(a, c);
        for (int64_t i = 0; i < n; i++) out[i] += x[i];
    }
    if (a->channels > 1) {
        const float g = 1.0f / (float)a->channels;
        for (int64_t i = 0; i < n; i++) out[i] *= g;
    }
}

/* Share of samples (all channels) that are clipped, and the peak. Clipped means at full scale, or on a
 * flat top at the clip's own peak: FLAT_RUN or more equal samples there, which is what clipping leaves
 * after the take was turned down. Real recordings never showed such runs (all shared clips: none). */
static double clipped_fraction(const avo_audio *a, float *peak) {
    const int64_t n = a->frames * a->channels;
    float p = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float v = fabsf(a->samples[i]);
        p = v > p ? v : p;
    }
    *peak = p;
    const float flat_level = p * (1.0f - 1e-4f);
    int64_t clipped = 0;
    for (int c = 0; c < a->channels; c++) {
        const float *x = avo_audio_channel(a, c);
        int64_t run = 0, run_below = 0; /* current run at the peak, and how many of it are below full scale */
        for (int64_t i = 0; i <= a->frames; i++) {
            float v = i < a->frames ? fabsf(x[i]) : 0.0f;
            clipped += v >= FULL_SCALE;
            if (i < a->frames && p >= SILENT_PEAK && v >= flat_level) {
                run++;
                run_below += v < FULL_SCALE;
                continue;
            }
            if (run >= FLAT_RUN) clipped += run_below;
            run = run_below = 0;
        }
    }
    return n > 0 ? (double)clipped / (double)n : 0.0;
}

/* Voiced seconds and the median F0 over voiced frames. */
static void f0_summary(const avo_f0_track *t, double *voiced_seconds, double *median_hz) {
    float *v = malloc((size_t)(t->frames > 0 ? t->frames : 1) * sizeof *v);
    int64_t nv = 0;
    for (int64_t i = 0; v && i < t->frames; i++)
        if (t->f0_hz[i] > 0.0f) v[nv++] = t->f0_hz[i];
    *voiced_seconds = (double)nv * t->hop_seconds;
    *median_hz = 0.0;
    if (v && nv > 0) {
        qsort(v, (size_t)nv, sizeof *v, cmp_float);
        *median_hz = nv % 2 ? v[nv / 2] : 0.5 * ((double)v[nv / 2 - 1] + v[nv / 2]);
    }
    free(v);
}

static double mean_of(const double *v, int64_t from, int64_t to) {
    double sum = 0.0;
    for (int64_t k = from; k < to; k++) sum += v[k];
    return to > from ? sum / (double)(to - from) : 0.0;
}

/* SNR estimate in dB from 20 ms frame energies and the voicing of the F0 track (see the top). The
 * floor comes from the quietest 10% of unvoiced frames (pauses), so quiet sung notes are not taken for
 * noise. A clip with (almost) no pauses has no floor to measure: then the quietest 10% of all frames
 * stand in, which gives only a lower bound (*lower_bound set). */
static double estimate_snr_db(const float *x, int64_t n, int sample_rate, const avo_f0_track *t, int *lower_bound) {
    *lower_bound = 0;
    int64_t len = (int64_t)(FRAME_SECONDS * sample_rate);
    if (len < 1) len = 1;
    int64_t frames = n / len;
    if (frames < 1) return 0.0;
    double *all = malloc((size_t)frames * sizeof *all);
    double *voiced = malloc((size_t)frames * sizeof *voiced);
    double *unvoiced = malloc((size_t)frames * sizeof *unvoiced);
    double snr = 0.0;
    if (!all || !voiced || !unvoiced) goto done;
    int64_t nv = 0, nu = 0;
    for (int64_t k = 0; k < frames; k++) {
        const float *f = x + k * len;
        double e = 0.0;
        for (int64_t i = 0; i < len; i++) e += (double)f[i] * f[i];
        e /= (double)len;
        all[k] = e;
        /* The F0 frame nearest this frame's centre decides its voicing. */
        double centre = ((double)k + 0.5) * FRAME_SECONDS;
        int64_t j = (int64_t)floor(centre / t->hop_seconds + 0.5);
        if (j >= 0 && j < t->frames && t->f0_hz[j] > 0.0f) voiced[nv++] = e;
        else unvoiced[nu++] = e;
    }
    qsort(all, (size_t)frames, sizeof *all, cmp_double);
    qsort(voiced, (size_t)nv, sizeof *voiced, cmp_double);
    qsort(unvoiced, (size_t)nu, sizeof *unvoiced, cmp_double);

    double noise;
    if (nu >= MIN_NOISE_FRAMES) {
        noise = mean_of(unvoiced, 0, nu / 10 > 0 ? nu / 10 : 1);
    } else {
        noise = mean_of(all, 0, frames / 10 > 0 ? frames / 10 : 1);
        *lower_bound = 1;
    }
    /* Without voiced frames (noise, or a clip the F0 stage cannot follow) the loudest 10% stand in. */
    double signal = nv > 0 ? mean_of(voiced, nv / 2, nv) : mean_of(all, frames - (frames / 10 > 0 ? frames / 10 : 1), frames);
    if (signal <= 0.0) snr = 0.0;
    else if (noise <= signal * pow(10.0, -SNR_CAP_DB / 10.0)) snr = SNR_CAP_DB;
    else snr = 10.0 * log10(signal / noise);
done:
    free(all);
    free(voiced);
    free(unvoiced);
    return snr;
}

static void add_warning(avo_clip_report *r, const char *text) {
    size_t len = strlen(r->warning);
    snprintf(r->warning + len, sizeof r->warning - len, "%s%s", len ? "; " : "", text);
}

/* Measures everything; returns non-OK only when the clip cannot be measured at all. */
static avo_status measure(const avo_audio *clip, const char *name, avo_clip_report *r, float *peak_out,
                          int *snr_lower_bound, avo_error *err) {
    float peak = 0.0f;
    r->clipped_fraction = clipped_fraction(clip, &peak);
    *peak_out = peak;
    float *mono = malloc((size_t)clip->frames * sizeof *mono);
    if (!mono) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory validating %s", name);
    mix_to_mono(clip, mono);

    avo_f0_config cfg;
    avo_f0_config_default(&cfg);
    cfg.method = AVO_F0_FAST;
    avo_f0_track track;
    memset(&track, 0, sizeof track);
    avo_status st = avo_f0_estimate(mono, clip->frames, clip->sample_rate, &cfg, &track, err);
    if (st) {
        free(mono);
        return avo_error_prefix(err, "validating %s", name);
    }
    f0_summary(&track, &r->voiced_seconds, &r->f0_median_hz);
    r->snr_db = estimate_snr_db(mono, clip->frames, clip->sample_rate, &track, snr_lower_bound);
    avo_f0_track_free(&track);
    free(mono);

    char w[128];
    if (r->clipped_fraction > CLIP_WARN_FRACTION && r->clipped_fraction <= CLIP_REJECT_FRACTION) {
        snprintf(w, sizeof w, "clipping in %.2f%% of samples, lower the input gain", 100.0 * r->clipped_fraction);
        add_warning(r, w);
    }
    if (*snr_lower_bound && r->snr_db < SNR_WARN_DB) {
        snprintf(w, sizeof w, "no pauses to measure the background noise from (SNR at least %.0f dB)", r->snr_db);
        add_warning(r, w);
    } else if (r->snr_db >= SNR_REJECT_DB && r->snr_db < SNR_WARN_DB) {
        snprintf(w, sizeof w, "low SNR %.1f dB, a quieter room would give a cleaner voice", r->snr_db);
        add_warning(r, w);
    }
    if (peak >= SILENT_PEAK && peak < QUIET_PEAK) {
        snprintf(w, sizeof w, "very quiet (peak %.0f dBFS), record with more gain", 20.0 * log10(peak));
        add_warning(r, w);
    }
    return AVO_OK;
}

/* Applies the thresholds in order of what the user should fix first. */
static avo_status decide(const avo_clip_report *r, float peak, int snr_lower_bound, const char *name,
                         avo_error *err) {
    if (r->sample_rate < MIN_SAMPLE_RATE)
        return avo_error_set(err, AVO_ERR_VALIDATION,
                             "%s is sampled at %d Hz, too low for a voice profile; record or export at 16 kHz or "
                             "more (44.1 or 48 kHz is best)",
                             name, r->sample_rate);
    if (peak < SILENT_PEAK)
        return avo_error_set(err, AVO_ERR_VALIDATION,
                             "%s is silent (peak below -60 dBFS); check the microphone and input level and record "
                             "again",
                             name);
    if (r->clipped_fraction > CLIP_REJECT_FRACTION)
        return avo_error_set(err, AVO_ERR_VALIDATION,
                             "%s is clipped: %.1f%% of its samples are cut flat at the peak (at most 1%% is usable); "
                             "record again with lower input gain, peaks around -6 dBFS",
                             name, 100.0 * r->clipped_fraction);
    if (r->snr_db < SNR_REJECT_DB && !snr_lower_bound)
        return avo_error_set(err, AVO_ERR_VALIDATION,
                             "%s is too noisy: estimated SNR %.1f dB between the voice and the background (at least "
                             "%.0f dB is needed); record in a quieter room, closer to the microphone",
                             name, r->snr_db, SNR_REJECT_DB);
    if (r->voiced_seconds < MIN_VOICED_SECONDS)
        return avo_error_set(err, AVO_ERR_VALIDATION,
                             "%s holds no voiced singing or speech (%.2f s voiced); use a recording of the target "
                             "voice singing or speaking",
                             name, r->voiced_seconds);
    return AVO_OK;
}

avo_status avo_profile_validate_clip(const avo_audio *clip, const char *name, avo_clip_report *report,
                                     avo_error *err) {
    avo_clip_report local;
    avo_clip_report *r = report ? report : &local;
    memset(r, 0, sizeof *r);
    if (!name || !name[0]) name = "the recording";
    if (!clip || !clip->samples || clip->frames <= 0 || clip->channels <= 0 || clip->sample_rate <= 0)
        return avo_error_set(err, AVO_ERR_INVALID_AUDIO, "%s holds no audio; use a recording of a few seconds or more",
                             name);
    r->sample_rate = clip->sample_rate;
    r->duration_seconds = (double)clip->frames / clip->sample_rate;
    float peak = 0.0f;
    int snr_lower_bound = 0;
    avo_status st = avo_audio_check_finite(clip, name, err);
    if (!st) st = measure(clip, name, r, &peak, &snr_lower_bound, err);
    if (!st) st = decide(r, peak, snr_lower_bound, name, err);
    r->usable = st == AVO_OK;
    return st;
}
