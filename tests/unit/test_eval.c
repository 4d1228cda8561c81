/* eval module: F0 metrics against known offsets, MCD/naturalness identities, speaker model on real
 * speakers, the full evaluation, and bad inputs. */
#include "autovoice/eval.h"
#include "autovoice/vocoder.h"
#include "test_util.h"

/* A sung-like tone: 8 harmonics with 1/k amplitudes, F0 gliding 200..300 Hz with 5 Hz vibrato. With rests:
 * 0.8 s notes with 30 ms raised-cosine fades and 0.2 s of silence; without: one legato phrase whose level
 * dips by 12 dB between notes. */
static void make_voice(avo_audio *a, int rate, double seconds, double cents, int rests) {
    avo_audio_alloc(a, rate, 1, (int64_t)(seconds * rate), NULL);
    double phase = 0.0;
    const double ratio = pow(2.0, cents / 1200.0);
    for (int64_t i = 0; i < a->frames; i++) {
        const double t = (double)i / rate;
        const double f = ratio * (200.0 + 100.0 * t / seconds) * (1.0 + 0.01 * sin(2 * M_PI * 5.0 * t));
        phase += 2 * M_PI * f / rate;
        const double p = fmod(t, 1.0), fade = 0.03;
        double gate = p < 0.8 ? 1.0 : 0.0;
        if (p < fade) gate = 0.5 - 0.5 * cos(M_PI * p / fade);
        else if (p < 0.8 && p > 0.8 - fade) gate = 0.5 - 0.5 * cos(M_PI * (0.8 - p) / fade);
        if (!rests) gate = 0.25 + 0.75 * gate;
        if (t < fade) gate *= 0.5 - 0.5 * cos(M_PI * t / fade);
        double v = 0.0;
        for (int k = 1; k <= 8; k++) v += sin(k * phase) / k;
        a->samples[i] = (float)(0.2 * gate * v);
    }
}

static void test_f0_compare_tracks(void) {
    avo_f0_track a, b;
    avo_error err;
    CHECK_OK(avo_f0_track_alloc(&a, 100, 0.01, &err), &err);
    CHECK_OK(avo_f0_track_alloc(&b, 100, 0.01, &err), &err);
    for (int i = 0; i < 100; i++) {
        b.f0_hz[i] = (float)(220.0 * pow(2.0, i / 100.0));
        a.f0_hz[i] = (float)(b.f0_hz[i] * pow(2.0, 100.0 / 1200.0)); /* +100 cents */
    }
    a.f0_hz[0] = 0.0f; /* voiced only in b */
    b.f0_hz[99] = 0.0f; /* voiced only in a */
    a.f0_hz[50] = b.f0_hz[50] = 0.0f; /* unvoiced in both: agrees */
    avo_eval_f0_result r;
    CHECK_OK(avo_eval_f0_compare(&a, &b, 0.0, &r, &err), &err);
    CHECK_NEAR(r.rmse_cents, 100.0, 0.01);
    CHECK_NEAR(r.corr, 1.0, 1e-6);
    CHECK_NEAR(r.voicing_agreement, 98.0 / 100.0, 1e-9);
    CHECK(r.both_voiced == 97 && r.frames == 100);
    CHECK_NEAR(r.gross_error_rate, 0.0, 1e-12);
    CHECK_NEAR(r.rmse_fine_cents, 100.0, 0.01);
    /* two octave slips among 97 frames: the RMSE jumps, the gross error rate names why */
    const float keep10 = a.f0_hz[10], keep20 = a.f0_hz[20];
    a.f0_hz[10] *= 2.0f;
    a.f0_hz[20] *= 0.5f;
    CHECK_OK(avo_eval_f0_compare(&a, &b, 0.0, &r, &err), &err);
    CHECK_NEAR(r.gross_error_rate, 2.0 / 97.0, 1e-9);
    CHECK_NEAR(r.rmse_fine_cents, 100.0, 0.01);
    CHECK_NEAR(r.rmse_cents, sqrt((95.0 * 100.0 * 100.0 + 1300.0 * 1300.0 + 1100.0 * 1100.0) / 97.0), 0.05);
    a.f0_hz[10] = keep10, a.f0_hz[20] = keep20;
    CHECK_OK(avo_eval_f0_compare(&a, &b, 1.0, &r, &err), &err);
    CHECK_NEAR(r.rmse_cents, 0.0, 0.01);
    CHECK_OK(avo_eval_f0_compare(&a, &b, -1.0, &r, &err), &err);
    CHECK_NEAR(r.rmse_cents, 200.0, 0.01);
    /* anti-correlated melody */
    for (int i = 0; i < 100; i++) a.f0_hz[i] = (float)(440.0 * pow(2.0, -i / 100.0));
    b.f0_hz[99] = 300.0f;
    b.f0_hz[50] = 300.0f;
    CHECK_OK(avo_eval_f0_compare(&a, &b, 0.0, &r, &err), &err);
    CHECK(r.corr < -0.95);
    /* nothing voiced in both: NaN metrics, no failure */
    for (int i = 0; i < 100; i++) a.f0_hz[i] = 0.0f;
    CHECK_OK(avo_eval_f0_compare(&a, &b, 0.0, &r, &err), &err);
    CHECK(isnan(r.rmse_cents) && isnan(r.corr) && r.both_voiced == 0);
    /* different hops are refused */
    a.hop_seconds = 0.005;
    CHECK(avo_eval_f0_compare(&a, &b, 0.0, &r, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "hop") != NULL);
    avo_f0_track_free(&a);
    avo_f0_track_free(&b);
}

/* Through the real F0 estimator: output = source raised by exactly 100 cents. */
static void test_f0_estimated_offset(int rests) {
    avo_audio src, out;
    make_voice(&src, 16000, 4.0, 0.0, rests);
    make_voice(&out, 16000, 4.0, 100.0, rests);
    avo_f0_config cfg;
    avo_f0_config_default(&cfg);
    cfg.method = AVO_F0_ACCURATE;
    avo_f0_track fs = {0}, fo = {0};
    avo_error err;
    CHECK_OK(avo_f0_estimate(src.samples, src.frames, 16000, &cfg, &fs, &err), &err);
    CHECK_OK(avo_f0_estimate(out.samples, out.frames, 16000, &cfg, &fo, &err), &err);
    avo_eval_f0_result r0, r1;
    CHECK_OK(avo_eval_f0_compare(&fo, &fs, 0.0, &r0, &err), &err);
    CHECK_OK(avo_eval_f0_compare(&fo, &fs, 1.0, &r1, &err), &err);
    /* share of both-voiced frames within 20 cents of the true offset: robust to a few estimator glitches */
    int64_t near = 0, both = 0;
    for (int64_t i = 0; i < fo.frames && i < fs.frames; i++) {
        if (!(fo.f0_hz[i] > 0 && fs.f0_hz[i] > 0)) continue;
        both++;
        near += fabs(1200.0 * log2(fo.f0_hz[i] / fs.f0_hz[i]) - 100.0) < 20.0;
    }
    fprintf(stderr, "estimated (%s): no transpose %.1f cents r=%.3f agree=%.3f; transpose 1: %.1f cents; %.1f%% within 20 c\n",
            rests ? "rests" : "legato", r0.rmse_cents, r0.corr, r0.voicing_agreement, r1.rmse_cents,
            100.0 * near / (both ? both : 1));
    CHECK(both > 200 && near > 0.95 * both);
    if (!rests) {
        /* no onsets from silence: the exact figures of the brief */
        CHECK_NEAR(r0.rmse_cents, 100.0, 10.0);
        CHECK(r1.rmse_cents < 10.0);
        CHECK(r0.corr > 0.98);
    }
    CHECK(r0.voicing_agreement > 0.9);
    CHECK(r1.rmse_cents < r0.rmse_cents);
    avo_f0_track_free(&fs);
    avo_f0_track_free(&fo);
    avo_audio_free(&src);
    avo_audio_free(&out);
}

static void load(const char *rel, avo_audio *a) {
    char path[1024];
    avo_error err;
    snprintf(path, sizeof path, "%s/%s", avo_test_data_dir(), rel);
    CHECK_OK(avo_audio_read(path, a, &err), &err);
}

static void test_mcd_and_naturalness(const avo_evaluator *ev) {
    avo_audio a = {0}, b = {0}, c = {0};
    avo_error err;
    load("singing/nus48e_JLEE_11.flac", &a);
    load("singing/nus48e_JLEE_15.flac", &b);
    load("singing/nus48e_MPOL_11.flac", &c);
    if (!a.samples || !b.samples || !c.samples) return;
    double mcd = -1, nat = -1;
    /* identical audio: every frame finds itself */
    CHECK_OK(avo_eval_mcd_nn(ev, &a, NULL, &a, 1, &mcd, &err), &err);
    CHECK_NEAR(mcd, 0.0, 1e-6);
    CHECK_OK(avo_eval_naturalness(ev, &a, &a, 1, &nat, &err), &err);
    CHECK_NEAR(nat, 0.0, 1e-6);
    /* a resampled copy is still very close; another singer is further than the same singer's other song */
    double same = 0, other = 0;
    CHECK_OK(avo_eval_mcd_nn(ev, &b, NULL, &a, 1, &same, &err), &err);
    CHECK_OK(avo_eval_mcd_nn(ev, &c, NULL, &a, 1, &other, &err), &err);
    fprintf(stderr, "MCD nn: same singer %.2f dB, other singer %.2f dB\n", same, other);
    CHECK(same > 1.0 && same < 15.0);
    CHECK(other > same);
    /* over-smoothed cepstra (a crude vocoder-like blur) are less natural than the original */
    avo_audio blur;
    CHECK_OK(avo_audio_copy(&a, &blur, &err), &err);
    for (int64_t i = 2; i < blur.frames; i++) blur.samples[i] = 0.5f * blur.samples[i] + 0.5f * blur.samples[i - 2];
    for (int64_t i = 0; i < blur.frames; i++) blur.samples[i] += 0.02f * (float)((i * 7919 % 2001) / 1000.0 - 1.0);
    double nat_blur = 0, nat_same = 0;
    CHECK_OK(avo_eval_naturalness(ev, &blur, &b, 1, &nat_blur, &err), &err);
    CHECK_OK(avo_eval_naturalness(ev, &a, &b, 1, &nat_same, &err), &err);
    fprintf(stderr, "naturalness: same singer %.2f dB, filtered+noisy %.2f dB\n", nat_same, nat_blur);
    CHECK(nat_blur > nat_same);
    avo_audio_free(&blur);
    avo_audio_free(&a);
    avo_audio_free(&b);
    avo_audio_free(&c);
}

static void test_bad_inputs(const avo_evaluator *ev) {
    avo_error err;
    double v;
    avo_audio empty = {0}, silent;
    avo_audio_alloc(&silent, 16000, 1, 16000, NULL);
    CHECK(avo_eval_mcd_nn(ev, NULL, NULL, &silent, 1, &v, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(avo_eval_mcd_nn(ev, &silent, NULL, &silent, 0, &v, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(avo_eval_mcd_nn(ev, &empty, NULL, &silent, 1, &v, &err) != AVO_OK);
    CHECK(avo_eval_naturalness(ev, &silent, &silent, 1, &v, &err) != AVO_OK);
    avo_audio nanbuf;
    avo_audio_alloc(&nanbuf, 16000, 1, 16000, NULL);
    nanbuf.samples[100] = NAN;
    CHECK(avo_eval_mcd_nn(ev, &nanbuf, NULL, &nanbuf, 1, &v, &err) == AVO_ERR_INVALID_AUDIO);
    CHECK(strlen(err.message) > 10);
    avo_eval_f0_result r;
    avo_f0_track t = {0};
    CHECK(avo_eval_f0_compare(&t, &t, 0.0, &r, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(avo_eval_f0_compare(NULL, &t, 0.0, &r, &err) == AVO_ERR_INVALID_ARGUMENT);
    avo_audio_free(&silent);
    avo_audio_free(&nanbuf);
}

/* Held-out speakers: the UBM never saw them; enrol on one utterance, test on others. */
static const char *held[] = {"libri_1688", "libri_2033", "nus48e_JLEE", "nus48e_MPOL"};

static void test_speaker_told_apart(const avo_evaluator *m) {
    avo_error err;
    const char *files[4][2] = {{"speech/libri_1688-142285-0000.flac", "speech/libri_1688-142285-0002.flac"},
                               {"speech/libri_2033-164914-0000.flac", "speech/libri_2033-164914-0002.flac"},
                               {"singing/nus48e_JLEE_11.flac", "singing/nus48e_JLEE_15.flac"},
                               {"singing/nus48e_MPOL_11.flac", "singing/nus48e_MPOL_20.flac"}};
    const int dim = avo_speaker_dim(m);
    CHECK(dim == 32 * 39); /* c1..c19 and the deltas of c0..c19 */
    float *v = malloc(sizeof(float) * (size_t)dim * 8);
    for (int s = 0; s < 4; s++)
        for (int k = 0; k < 2; k++) {
            avo_audio a = {0};
            load(files[s][k], &a);
            CHECK_OK(avo_speaker_embed(m, &a, v + (size_t)(2 * s + k) * dim, &err), &err);
            avo_audio_free(&a);
        }
    for (int s = 0; s < 4; s++) {
        const int p = s ^ 1; /* the other speaker of the same domain */
        const double same = avo_speaker_similarity(m, v + (size_t)(2 * s) * dim, v + (size_t)(2 * s + 1) * dim);
        const double diff1 = avo_speaker_similarity(m, v + (size_t)(2 * s) * dim, v + (size_t)(2 * p + 1) * dim);
        const double self = avo_speaker_similarity(m, v + (size_t)(2 * s) * dim, v + (size_t)(2 * s) * dim);
        fprintf(stderr, "%s: same %.3f, other %.3f\n", held[s], same, diff1);
        CHECK_MSG(same > diff1, "%s: same-speaker %.3f <= other-speaker %.3f", held[s], same, diff1);
        CHECK_NEAR(self, 1.0, 1e-6);
        CHECK(same >= 0.0 && same <= 1.0 && diff1 >= 0.0 && diff1 <= 1.0);
    }
    /* classic LLR agrees on one pair */
    avo_audio e = {0}, t1 = {0}, t2 = {0};
    load(files[0][0], &e);
    load(files[0][1], &t1);
    load(files[1][1], &t2);
    double l1 = 0, l2 = 0;
    CHECK_OK(avo_speaker_llr(m, &e, &t1, &l1, &err), &err);
    CHECK_OK(avo_speaker_llr(m, &e, &t2, &l2, &err), &err);
    CHECK_MSG(l1 > l2, "LLR same %.3f <= other %.3f", l1, l2);
    /* too little sound to embed */
    avo_audio quiet;
    avo_audio_alloc(&quiet, 16000, 1, 4000, NULL);
    CHECK(avo_speaker_embed(m, &quiet, v, &err) == AVO_ERR_VALIDATION);
    avo_audio_free(&quiet);
    avo_audio_free(&e);
    avo_audio_free(&t1);
    avo_audio_free(&t2);
    free(v);

    /* the full evaluation: output = one of the target's own recordings, source another singer whose
     * other clip is the held-out source reference */
    avo_audio tgt[2] = {{0}}, src = {0}, src_ref = {0};
    load("singing/nus48e_JLEE_11.flac", &tgt[0]);
    load("singing/nus48e_JLEE_15.flac", &tgt[1]);
    load("singing/nus48e_MPOL_11.flac", &src);
    load("singing/nus48e_MPOL_20.flac", &src_ref);
    avo_eval_options opt;
    avo_eval_options_default(&opt);
    avo_eval_result r;
    CHECK_OK(avo_eval_run(m, &tgt[1], &src, &src_ref, 1, tgt, 2, &opt, &r, &err), &err);
    fprintf(stderr, "eval(target clip as output): sim_t %.3f sim_s %.3f self %.3f ratio %.3f mcd %.2f (src %.2f) nat %.2f\n",
            r.sim_target, r.sim_source, r.sim_target_self, r.similarity_ratio, r.mcd_to_target_db,
            r.mcd_source_to_target_db, r.naturalness_distance);
    CHECK(r.protocol == AVO_EVAL_PROTOCOL_HELDOUT && strcmp(avo_eval_protocol_name(r.protocol), "heldout") == 0);
    CHECK(r.classified_as_target == 1);
    CHECK(r.sim_target > r.sim_source_target);
    CHECK_NEAR(r.mcd_to_target_db, 0.0, 1e-6); /* its frames are among the target's */
    CHECK(r.mcd_source_to_target_db > 1.0);
    CHECK(r.similarity_ratio > 1.0); /* includes sim with itself (1) */
    /* the source side is the mean over the two halves of the lone held-out clip, like a lone target clip */
    CHECK(r.sim_source_self > 0.0 && r.sim_source_self < 1.0);
    /* output = source: classified as the source, melody identical */
    CHECK_OK(avo_eval_run(m, &src, &src, &src_ref, 1, tgt, 2, &opt, &r, &err), &err);
    CHECK(r.classified_as_target == 0);
    CHECK_NEAR(r.sim_source_content_matched, 1.0, 1e-6);
    CHECK(r.sim_source < 0.9); /* a different recording of the source singer */
    CHECK_NEAR(r.f0.rmse_cents, 0.0, 1e-6);
    CHECK_NEAR(r.f0.voicing_agreement, 1.0, 1e-9);
    CHECK_NEAR(r.mcd_to_target_db, r.mcd_source_to_target_db, 1e-6);
    CHECK(r.similarity_ratio < 0.5);
    /* single target clip: its halves stand in for two clips */
    CHECK_OK(avo_eval_run(m, &tgt[1], &src, &src_ref, 1, tgt, 1, &opt, &r, &err), &err);
    CHECK(r.classified_as_target == 1 && r.sim_target_self > 0.0);
    /* no held-out source recordings: no verdict, the content-matched diagnostic only */
    CHECK_OK(avo_eval_run(m, &tgt[1], &src, NULL, 0, tgt, 2, &opt, &r, &err), &err);
    CHECK(r.protocol == AVO_EVAL_PROTOCOL_NO_SOURCE_REFS && r.classified_as_target == -1);
    CHECK(isnan(r.sim_source) && r.sim_source_content_matched >= 0.0);
    /* bad inputs */
    CHECK(avo_eval_run(m, &src, &src, &src_ref, 1, tgt, 0, &opt, &r, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(avo_eval_run(NULL, &src, &src, &src_ref, 1, tgt, 2, &opt, &r, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(avo_eval_run(m, &src, &src, NULL, 1, tgt, 2, &opt, &r, &err) == AVO_ERR_INVALID_ARGUMENT);
    /* the converted source itself is not a held-out reference */
    CHECK(avo_eval_run(m, &tgt[1], &src, &src, 1, tgt, 2, &opt, &r, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "held-out") != NULL);
    opt.transpose_semitones = NAN;
    CHECK(avo_eval_run(m, &src, &src, &src_ref, 1, tgt, 2, &opt, &r, &err) == AVO_ERR_INVALID_ARGUMENT);
    avo_audio empty = {0};
    opt.transpose_semitones = 0;
    CHECK(avo_eval_run(m, &empty, &src, &src_ref, 1, tgt, 2, &opt, &r, &err) == AVO_ERR_INVALID_AUDIO);
    CHECK(strstr(err.message, "output") != NULL);
    CHECK(avo_eval_run(m, &src, &src, &empty, 1, tgt, 2, &opt, &r, &err) == AVO_ERR_INVALID_AUDIO);
    CHECK(strstr(err.message, "source") != NULL);
    avo_audio_free(&tgt[0]);
    avo_audio_free(&tgt[1]);
    avo_audio_free(&src);
    avo_audio_free(&src_ref);
}

/* Vocoder analysis and resynthesis of a clip with nothing changed: the timbre stays the source's. */
static void resynthesise(const avo_audio *a, avo_audio *out) {
    avo_vocoder_config c;
    avo_vocoder_config_default(&c, a->sample_rate);
    avo_vocoder *v = NULL;
    avo_voice_params p = {0};
    avo_error err;
    CHECK_OK(avo_vocoder_create(&c, &v, &err), &err);
    CHECK_OK(avo_vocoder_analyze(v, a->samples, a->frames, NULL, &p, &err), &err);
    CHECK_OK(avo_audio_alloc(out, a->sample_rate, 1, a->frames, &err), &err);
    CHECK_OK(avo_vocoder_synthesize(v, &p, out->samples, out->frames, &err), &err);
    avo_voice_params_free(&p);
    avo_vocoder_free(v);
}

/* Why the source side uses held-out recordings. A resynthesis with no timbre change is the source singer
 * and must be classified as the source; a recording of the target singer must be classified as the
 * target. The content-matched score (output against the very recording it was made from) is far higher
 * than the same output against another recording of the same singer: shared content, not voice. Under
 * that score any real conversion, which keeps the source's words and melody, is pulled toward "source". */
static void test_speaker_protocol(const avo_evaluator *m) {
    avo_audio src = {0}, src_ref = {0}, tgt = {0}, tgt_other = {0}, resyn = {0};
    load("singing/nus48e_MPOL_11.flac", &src);
    load("singing/nus48e_MPOL_20.flac", &src_ref);
    load("singing/nus48e_JLEE_11.flac", &tgt);
    load("singing/nus48e_JLEE_15.flac", &tgt_other);
    if (!src.samples || !src_ref.samples || !tgt.samples || !tgt_other.samples) return;
    resynthesise(&src, &resyn);
    avo_eval_options opt;
    avo_eval_options_default(&opt);
    avo_eval_result r;
    avo_error err;
    CHECK_OK(avo_eval_run(m, &resyn, &src, &src_ref, 1, &tgt, 1, &opt, &r, &err), &err);
    fprintf(stderr, "resynthesis of the source: to target %.3f, to held-out source %.3f, content-matched %.3f\n",
            r.sim_target, r.sim_source, r.sim_source_content_matched);
    CHECK(r.protocol == AVO_EVAL_PROTOCOL_HELDOUT);
    CHECK(r.classified_as_target == 0);
    CHECK(r.sim_source > r.sim_target);
    /* the melody survives resynthesis: the F0 check is not what tells them apart */
    CHECK(r.f0.rmse_cents < 30.0);
    /* the content-matched score is dominated by shared content: well above the held-out one */
    CHECK_MSG(r.sim_source_content_matched > 1.5 * r.sim_source, "content-matched %.3f vs held-out %.3f",
              r.sim_source_content_matched, r.sim_source);
    /* a recording of the target singer (other song than the target clip) is the target */
    CHECK_OK(avo_eval_run(m, &tgt_other, &src, &src_ref, 1, &tgt, 1, &opt, &r, &err), &err);
    fprintf(stderr, "target singer's other clip: to target %.3f, to held-out source %.3f\n", r.sim_target,
            r.sim_source);
    CHECK(r.classified_as_target == 1);
    avo_audio_free(&src);
    avo_audio_free(&src_ref);
    avo_audio_free(&tgt);
    avo_audio_free(&tgt_other);
    avo_audio_free(&resyn);
}

static void test_create_errors(void) {
    avo_speaker_config cfg;
    avo_speaker_config_default(&cfg);
    avo_evaluator *m = (avo_evaluator *)&cfg; /* must be reset to NULL on failure */
    avo_error err;
    /* training refuses an empty folder with a message naming it */
    CHECK(avo_evaluator_create_from_dir("/nonexistent-avo", NULL, 0, &cfg, &m, &err) == AVO_ERR_NOT_FOUND);
    CHECK(strstr(err.message, "/nonexistent-avo") != NULL);
    CHECK(m == NULL);
    cfg.components = 0;
    CHECK(avo_evaluator_create_from_dir(avo_test_data_dir(), NULL, 0, &cfg, &m, &err) == AVO_ERR_INVALID_ARGUMENT);
    avo_speaker_config_default(&cfg);
    avo_audio silent;
    avo_audio_alloc(&silent, 16000, 1, 16000, NULL);
    CHECK(avo_evaluator_create(&silent, 1, &cfg, &m, &err) == AVO_ERR_VALIDATION);
    CHECK(avo_evaluator_create(NULL, 0, &cfg, &m, &err) == AVO_ERR_INVALID_ARGUMENT);
    avo_audio_free(&silent);
}

/* Harmonics of f0 shaped by a fixed envelope of three formants (600, 1200, 2600 Hz): same "voice" at any pitch. */
static void make_formant_voice(avo_audio *a, double f0, double seconds) {
    const int rate = 16000;
    avo_audio_alloc(a, rate, 1, (int64_t)(seconds * rate), NULL);
    const double fc[3] = {600, 1200, 2600}, bw[3] = {120, 150, 250}, gain[3] = {1.0, 0.6, 0.25};
    for (int k = 1; k * f0 < 7500; k++) {
        const double f = k * f0;
        double env = 0.02;
        for (int j = 0; j < 3; j++) env += gain[j] * exp(-0.5 * pow((f - fc[j]) / bw[j], 2));
        for (int64_t i = 0; i < a->frames; i++) a->samples[i] += (float)(0.1 * env * sin(2 * M_PI * f * i / rate + k));
    }
}

/* An octave transposition of the same envelope: with F0-adaptive smoothing the mel cepstra barely move. */
static void test_pitch_robust_mcd(void) {
    avo_audio lo, hi;
    make_formant_voice(&lo, 150.0, 2.0);
    make_formant_voice(&hi, 300.0, 2.0);
    avo_audio both[2] = {lo, hi};
    double mcd[2] = {0, 0};
    for (int smooth = 0; smooth < 2; smooth++) {
        avo_speaker_config cfg;
        avo_speaker_config_default(&cfg);
        cfg.components = 4;
        cfg.f0_smoothing = smooth;
        avo_evaluator *ev = NULL;
        avo_error err;
        CHECK_OK(avo_evaluator_create(both, 2, &cfg, &ev, &err), &err);
        if (!ev) continue;
        CHECK_OK(avo_eval_mcd_nn(ev, &hi, NULL, &lo, 1, &mcd[smooth], &err), &err);
        avo_evaluator_free(ev);
    }
    fprintf(stderr, "octave-apart, same envelope: MCD %.2f dB raw spectra, %.2f dB F0-smoothed\n", mcd[0], mcd[1]);
    CHECK(mcd[1] < 0.6 * mcd[0]);
    CHECK(mcd[1] < 3.0);
    avo_audio_free(&lo);
    avo_audio_free(&hi);
}

/* A singer's dynamics are not who they are: the same clip with a slow +-6 dB level swell (0.4 Hz, as
 * a crescendo/diminuendo would) must keep its embedding. With the frame level (static c0) among the
 * features the swell moved it to similarity 0.948 (32 components); without it, 0.996. */
static void test_speaker_level_contour(const avo_evaluator *m) {
    avo_error err;
    avo_audio a = {0}, b = {0};
    load("singing/nus48e_MPOL_11.flac", &a);
    CHECK_OK(avo_audio_alloc(&b, a.sample_rate, a.channels, a.frames, &err), &err);
    for (int64_t i = 0; i < a.frames; i++) {
        const double t = (double)i / a.sample_rate;
        const double g = pow(10.0, 6.0 * sin(2.0 * M_PI * 0.4 * t) / 20.0);
        for (int c = 0; c < a.channels; c++)
            b.samples[i * a.channels + c] = (float)(a.samples[i * a.channels + c] * g);
    }
    const int dim = avo_speaker_dim(m);
    float *va = malloc(sizeof(float) * (size_t)dim), *vb = malloc(sizeof(float) * (size_t)dim);
    CHECK_OK(avo_speaker_embed(m, &a, va, &err), &err);
    CHECK_OK(avo_speaker_embed(m, &b, vb, &err), &err);
    const double sim = avo_speaker_similarity(m, va, vb);
    fprintf(stderr, "level swell: similarity to the unchanged clip %.3f\n", sim);
    CHECK_MSG(sim > 0.98, "a level swell moved the speaker embedding: similarity %.3f", sim);
    free(va);
    free(vb);
    avo_audio_free(&a);
    avo_audio_free(&b);
}

int main(void) {
    test_f0_compare_tracks();
    test_f0_estimated_offset(0);
    test_f0_estimated_offset(1);
    test_pitch_robust_mcd();
    /* one evaluator for the rest; its UBM never saw the speakers the tests tell apart */
    avo_speaker_config cfg;
    avo_speaker_config_default(&cfg);
    cfg.components = 32; /* quicker to train; the bench validates the default */
    avo_evaluator *ev = NULL;
    avo_error err;
    CHECK_OK(avo_evaluator_create_from_dir(avo_test_data_dir(), held, 4, &cfg, &ev, &err), &err);
    if (ev) {
        test_mcd_and_naturalness(ev);
        test_bad_inputs(ev);
        test_speaker_told_apart(ev);
        test_speaker_level_contour(ev);
        test_speaker_protocol(ev);
        double v;
        CHECK(avo_eval_mcd_nn(NULL, NULL, NULL, NULL, 1, &v, &err) == AVO_ERR_INVALID_ARGUMENT);
    }
    avo_evaluator_free(ev);
    test_create_errors();
    TEST_MAIN_END();
}
