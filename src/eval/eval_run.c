/* The full evaluation of one conversion: F0, speaker similarity, MCD and naturalness. */
#include "eval/eval_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void avo_eval_options_default(avo_eval_options *opt) {
    opt->transpose_semitones = 0.0;
    opt->f0_method = AVO_F0_ACCURATE;
    opt->threads = 0;
}

static avo_status f0_of(const avo_audio *mono16k, const avo_eval_options *opt, avo_f0_track *t, avo_error *err) {
    avo_f0_config cfg;
    avo_f0_config_default(&cfg);
    cfg.method = opt->f0_method;
    cfg.hop_seconds = 0.010;
    cfg.threads = opt->threads;
    return avo_f0_estimate(mono16k->samples, mono16k->frames, mono16k->sample_rate, &cfg, t, err);
}

/* The half [from, from+len) of a as a new buffer. */
static avo_status slice(const avo_audio *a, int64_t from, int64_t len, avo_audio *out, avo_error *err) {
    avo_status st = avo_audio_alloc(out, a->sample_rate, 1, len, err);
    if (!st) memcpy(out->samples, a->samples + from, sizeof(float) * (size_t)len);
    return st;
}

static avo_status check_inputs(const avo_evaluator *m, const avo_audio *output, const avo_audio *source,
                               const avo_audio *targets, int target_count, avo_eval_result *out, avo_error *err) {
    if (!m || !output || !source || !targets || !out)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "eval: missing model, output, source or target recordings");
    if (target_count < 1)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "eval: give at least one target recording");
    const avo_audio *all[3] = {output, source, targets};
    const char *names[3] = {"output", "source", "target"};
    for (int i = 0; i < 3; i++)
        if (!all[i]->samples || all[i]->frames <= 0 || all[i]->channels <= 0 || all[i]->sample_rate < 8000)
            return avo_error_set(err, AVO_ERR_INVALID_AUDIO,
                                 "eval: the %s recording is empty or has an unusable rate (%d Hz); need 8 kHz or more",
                                 names[i], all[i]->sample_rate);
    for (int i = 1; i < target_count; i++)
        if (!targets[i].samples || targets[i].frames <= 0 || targets[i].sample_rate < 8000)
            return avo_error_set(err, AVO_ERR_INVALID_AUDIO, "eval: target recording %d is empty or has an unusable rate",
                                 i + 1);
    return AVO_OK;
}

avo_status avo_eval_run(const avo_evaluator *m, const avo_audio *output, const avo_audio *source,
                        const avo_audio *targets, int target_count, const avo_eval_options *opt,
                        avo_eval_result *out, avo_error *err) {
    avo_status st = check_inputs(m, output, source, targets, target_count, out, err);
    if (st) return st;
    avo_eval_options def;
    avo_eval_options_default(&def);
    if (!opt) opt = &def;
    if (!isfinite(opt->transpose_semitones) || fabs(opt->transpose_semitones) > 48.0)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "eval: transpose must be within +-48 semitones (got %g)",
                             opt->transpose_semitones);
    memset(out, 0, sizeof *out);

    /* everything at 16 kHz mono once; target clips become "enrolment units" (halves of a lone clip) */
    const int units = target_count == 1 ? 2 : target_count;
    avo_audio o = {0}, s = {0};
    avo_audio *t = calloc((size_t)target_count, sizeof(avo_audio));
    avo_audio *u = calloc((size_t)units, sizeof(avo_audio));
    const int dim = avo_speaker_dim(m);
    float *vo = malloc(sizeof(float) * (size_t)dim), *vs = malloc(sizeof(float) * (size_t)dim);
    float *vu = malloc(sizeof(float) * (size_t)dim * units);
    avo_f0_track fo = {0}, fs = {0};
    if (!t || !u || !vo || !vs || !vu) {
        st = avo_error_set(err, AVO_ERR_NO_MEMORY, "eval: out of memory");
        goto done;
    }
    if ((st = ev_to_16k_mono(output, &o, err)) || (st = avo_audio_check_finite(&o, "eval: output", err))) goto done;
    if ((st = ev_to_16k_mono(source, &s, err)) || (st = avo_audio_check_finite(&s, "eval: source", err))) goto done;
    for (int i = 0; i < target_count; i++) {
        if ((st = ev_to_16k_mono(&targets[i], &t[i], err))) goto done;
        if ((st = avo_audio_check_finite(&t[i], "eval: target recording", err))) goto done;
    }
    if (target_count == 1) {
        const int64_t h = t[0].frames / 2;
        if ((st = slice(&t[0], 0, h, &u[0], err)) || (st = slice(&t[0], h, t[0].frames - h, &u[1], err))) goto done;
    } else {
        for (int i = 0; i < units; i++)
            if ((st = avo_audio_copy(&t[i], &u[i], err))) goto done;
    }

    /* melody */
    if ((st = f0_of(&o, opt, &fo, err))) goto done;
    if ((st = f0_of(&s, opt, &fs, err))) goto done;
    if ((st = avo_eval_f0_compare(&fo, &fs, opt->transpose_semitones, &out->f0, err))) goto done;

    /* speaker */
    if ((st = avo_speaker_embed(m, &o, vo, err))) {
        avo_error_prefix(err, "eval: output");
        goto done;
    }
    if ((st = avo_speaker_embed(m, &s, vs, err))) {
        avo_error_prefix(err, "eval: source");
        goto done;
    }
    for (int i = 0; i < units; i++)
        if ((st = avo_speaker_embed(m, &u[i], vu + (size_t)i * dim, err))) {
            avo_error_prefix(err, "eval: target recording %d", target_count == 1 ? 1 : i + 1);
            goto done;
        }
    double st_sum = 0.0, ss_sum = 0.0, self_sum = 0.0;
    int pairs = 0;
    for (int i = 0; i < units; i++) {
        st_sum += avo_speaker_similarity(m, vo, vu + (size_t)i * dim);
        ss_sum += avo_speaker_similarity(m, vs, vu + (size_t)i * dim);
        for (int j = i + 1; j < units; j++, pairs++)
            self_sum += avo_speaker_similarity(m, vu + (size_t)i * dim, vu + (size_t)j * dim);
    }
    out->sim_target = st_sum / units;
    out->sim_source_target = ss_sum / units;
    out->sim_target_self = self_sum / pairs;
    out->sim_source = avo_speaker_similarity(m, vo, vs);
    out->classified_as_target = out->sim_target > out->sim_source;
    out->similarity_ratio = out->sim_target_self > 0.0 ? out->sim_target / out->sim_target_self : NAN;

    /* spectrum */
    if ((st = avo_eval_mcd_nn(m, &o, &fo, t, target_count, &out->mcd_to_target_db, err))) goto done;
    if ((st = avo_eval_mcd_nn(m, &s, &fs, t, target_count, &out->mcd_source_to_target_db, err))) goto done;
    if ((st = avo_eval_naturalness(m, &o, t, target_count, &out->naturalness_distance, err))) goto done;
    st = avo_eval_naturalness(m, &s, t, target_count, &out->naturalness_source_distance, err);

done:
    avo_audio_free(&o);
    avo_audio_free(&s);
    for (int i = 0; t && i < target_count; i++) avo_audio_free(&t[i]);
    for (int i = 0; u && i < units; i++) avo_audio_free(&u[i]);
    free(t);
    free(u);
    free(vo);
    free(vs);
    free(vu);
    avo_f0_track_free(&fo);
    avo_f0_track_free(&fs);
    return st;
}
