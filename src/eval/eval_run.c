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

const char *avo_eval_protocol_name(avo_eval_protocol p) {
    return p == AVO_EVAL_PROTOCOL_HELDOUT ? "heldout" : "no_source_refs";
}

static avo_status check_clip(const avo_audio *a, const char *what, int index, avo_error *err) {
    if (a->samples && a->frames > 0 && a->channels > 0 && a->sample_rate >= 8000) return AVO_OK;
    if (index > 0)
        return avo_error_set(err, AVO_ERR_INVALID_AUDIO, "eval: %s recording %d is empty or has an unusable rate",
                             what, index);
    return avo_error_set(err, AVO_ERR_INVALID_AUDIO,
                         "eval: the %s recording is empty or has an unusable rate (%d Hz); need 8 kHz or more", what,
                         a->sample_rate);
}

/* 1 if a and b hold the same samples (same rate, layout and values). */
static int same_recording(const avo_audio *a, const avo_audio *b) {
    return a->sample_rate == b->sample_rate && a->channels == b->channels && a->frames == b->frames &&
           memcmp(a->samples, b->samples, sizeof(float) * (size_t)a->frames * (size_t)a->channels) == 0;
}

static avo_status check_inputs(const avo_evaluator *m, const avo_audio *output, const avo_audio *source,
                               const avo_audio *source_refs, int source_ref_count, const avo_audio *targets,
                               int target_count, avo_eval_result *out, avo_error *err) {
    if (!m || !output || !source || !targets || !out)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "eval: missing model, output, source or target recordings");
    if (target_count < 1)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "eval: give at least one target recording");
    if (source_ref_count < 0 || (source_ref_count > 0 && !source_refs))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "eval: source reference count %d without recordings",
                             source_ref_count);
    avo_status st;
    if ((st = check_clip(output, "output", 0, err)) || (st = check_clip(source, "source", 0, err))) return st;
    for (int i = 0; i < target_count; i++)
        if ((st = check_clip(&targets[i], "target", target_count > 1 ? i + 1 : 0, err))) return st;
    for (int i = 0; i < source_ref_count; i++) {
        if ((st = check_clip(&source_refs[i], "held-out source", source_ref_count > 1 ? i + 1 : 0, err))) return st;
        if (same_recording(&source_refs[i], source))
            return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                                 "eval: held-out source recording %d is the converted source itself; give other "
                                 "recordings of the source voice (scoring against the converted clip measures "
                                 "shared content, not the speaker)", i + 1);
    }
    return AVO_OK;
}

/* One side of the speaker test (target or source speaker) as enrolment units: the clips at 16 kHz mono,
 * or the two halves of a lone clip. The same rule on both sides keeps the verdict fair. */
typedef struct side {
    int clips, units;
    avo_audio *audio; /* clips, 16 kHz mono (kept for MCD and naturalness) */
    avo_audio *unit;  /* units */
    float *vec;       /* units x dim supervectors */
} side;

static void side_free(side *s) {
    for (int i = 0; s->audio && i < s->clips; i++) avo_audio_free(&s->audio[i]);
    for (int i = 0; s->unit && i < s->units; i++) avo_audio_free(&s->unit[i]);
    free(s->audio);
    free(s->unit);
    free(s->vec);
    memset(s, 0, sizeof *s);
}

static avo_status side_make(const avo_evaluator *m, const avo_audio *clips, int count, const char *what, side *s,
                            avo_error *err) {
    memset(s, 0, sizeof *s);
    if (count < 1) return AVO_OK;
    s->clips = count;
    s->units = count == 1 ? 2 : count;
    const int dim = avo_speaker_dim(m);
    s->audio = calloc((size_t)count, sizeof(avo_audio));
    s->unit = calloc((size_t)s->units, sizeof(avo_audio));
    s->vec = malloc(sizeof(float) * (size_t)dim * (size_t)s->units);
    if (!s->audio || !s->unit || !s->vec) return avo_error_set(err, AVO_ERR_NO_MEMORY, "eval: out of memory");
    avo_status st = AVO_OK;
    for (int i = 0; i < count && !st; i++) {
        st = ev_to_16k_mono(&clips[i], &s->audio[i], err);
        if (!st) st = avo_audio_check_finite(&s->audio[i], what, err);
    }
    if (!st && count == 1) {
        const int64_t h = s->audio[0].frames / 2;
        st = slice(&s->audio[0], 0, h, &s->unit[0], err);
        if (!st) st = slice(&s->audio[0], h, s->audio[0].frames - h, &s->unit[1], err);
    } else {
        for (int i = 0; i < count && !st; i++) st = avo_audio_copy(&s->audio[i], &s->unit[i], err);
    }
    for (int i = 0; i < s->units && !st; i++)
        if ((st = avo_speaker_embed(m, &s->unit[i], s->vec + (size_t)i * dim, err)))
            avo_error_prefix(err, "eval: %s %d", what, count == 1 ? 1 : i + 1);
    return st;
}

/* Mean similarity of vec to every unit of the side. */
static double side_mean_sim(const avo_evaluator *m, const side *s, const float *vec) {
    const int dim = avo_speaker_dim(m);
    double sum = 0.0;
    for (int i = 0; i < s->units; i++) sum += avo_speaker_similarity(m, vec, s->vec + (size_t)i * dim);
    return s->units ? sum / s->units : NAN;
}

/* Mean similarity over pairs of different units of the side. */
static double side_self_sim(const avo_evaluator *m, const side *s) {
    const int dim = avo_speaker_dim(m);
    double sum = 0.0;
    int pairs = 0;
    for (int i = 0; i < s->units; i++)
        for (int j = i + 1; j < s->units; j++, pairs++)
            sum += avo_speaker_similarity(m, s->vec + (size_t)i * dim, s->vec + (size_t)j * dim);
    return pairs ? sum / pairs : NAN;
}

avo_status avo_eval_run(const avo_evaluator *m, const avo_audio *output, const avo_audio *source,
                        const avo_audio *source_refs, int source_ref_count, const avo_audio *targets,
                        int target_count, const avo_eval_options *opt, avo_eval_result *out, avo_error *err) {
    avo_status st =
        check_inputs(m, output, source, source_refs, source_ref_count, targets, target_count, out, err);
    if (st) return st;
    avo_eval_options def;
    avo_eval_options_default(&def);
    if (!opt) opt = &def;
    if (!isfinite(opt->transpose_semitones) || fabs(opt->transpose_semitones) > 48.0)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "eval: transpose must be within +-48 semitones (got %g)",
                             opt->transpose_semitones);
    memset(out, 0, sizeof *out);

    avo_audio o = {0}, s = {0};
    side tgt = {0}, sref = {0};
    const int dim = avo_speaker_dim(m);
    float *vo = malloc(sizeof(float) * (size_t)dim), *vs = malloc(sizeof(float) * (size_t)dim);
    avo_f0_track fo = {0}, fs = {0};
    if (!vo || !vs) {
        st = avo_error_set(err, AVO_ERR_NO_MEMORY, "eval: out of memory");
        goto done;
    }
    if ((st = ev_to_16k_mono(output, &o, err)) || (st = avo_audio_check_finite(&o, "eval: output", err))) goto done;
    if ((st = ev_to_16k_mono(source, &s, err)) || (st = avo_audio_check_finite(&s, "eval: source", err))) goto done;

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
    if ((st = side_make(m, targets, target_count, "target recording", &tgt, err))) goto done;
    if ((st = side_make(m, source_refs, source_ref_count, "held-out source recording", &sref, err))) goto done;
    out->sim_target = side_mean_sim(m, &tgt, vo);
    out->sim_target_self = side_self_sim(m, &tgt);
    out->sim_source_target = side_mean_sim(m, &tgt, vs);
    out->similarity_ratio = out->sim_target_self > 0.0 ? out->sim_target / out->sim_target_self : NAN;
    out->sim_source_content_matched = avo_speaker_similarity(m, vo, vs);
    out->classified_as_target_content_matched = out->sim_target > out->sim_source_content_matched;
    if (source_ref_count > 0) {
        out->protocol = AVO_EVAL_PROTOCOL_HELDOUT;
        out->sim_source = side_mean_sim(m, &sref, vo);
        out->sim_source_self = side_self_sim(m, &sref);
        out->classified_as_target = out->sim_target > out->sim_source;
    } else {
        out->protocol = AVO_EVAL_PROTOCOL_NO_SOURCE_REFS;
        out->sim_source = NAN;
        out->sim_source_self = NAN;
        out->classified_as_target = -1;
    }

    /* spectrum */
    if ((st = avo_eval_mcd_nn(m, &o, &fo, tgt.audio, target_count, &out->mcd_to_target_db, err))) goto done;
    if ((st = avo_eval_mcd_nn(m, &s, &fs, tgt.audio, target_count, &out->mcd_source_to_target_db, err))) goto done;
    if ((st = avo_eval_naturalness(m, &o, tgt.audio, target_count, &out->naturalness_distance, err))) goto done;
    st = avo_eval_naturalness(m, &s, tgt.audio, target_count, &out->naturalness_source_distance, err);

done:
    avo_audio_free(&o);
    avo_audio_free(&s);
    side_free(&tgt);
    side_free(&sref);
    free(vo);
    free(vs);
    avo_f0_track_free(&fo);
    avo_f0_track_free(&fs);
    return st;
}
