/* Conversion quality: DSP conversions between the shared singers (and speech profiles), scored by the
 * evaluator. Shared by `autovoice bench` (a standard subset) and bench/bench_conversion (every pair).
 *
 * Protocol: the target profile is made from the target's FIRST clip only and the output is judged
 * against the target's SECOND clip, which the converter never saw; singers with one clip (ADIZ, MCUR)
 * are sources only. Speech profiles: LibriSpeech speakers, profile from utterances 0-2, judged against
 * utterance 3. Conversion uses auto-transpose; the melody check compares the output F0 with the source
 * F0 moved by the transpose that was applied.
 *
 * Speaker verdict (avo_eval_run's "heldout" protocol): the output is compared with the target's held-out
 * clip and with the source singer's OTHER clip (its second), never with the converted clip itself, so
 * both sides are scored on recordings of different content. One-clip singers (ADIZ, MCUR) have no
 * held-out clip: their pairs get no verdict and are left out of the classification rate (the set's
 * "classified_pairs" says how many were judged). The old content-matched verdict (output vs the converted
 * clip) is kept as a diagnostic rate. */
#include "autovoice/bench.h"
#include "autovoice/convert.h"
#include "autovoice/eval.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *SINGERS[][3] = {
    {"ADIZ", "18", NULL}, {"MCUR", "17", NULL}, {"JLEE", "11", "15"}, {"JTAN", "07", "16"},
    {"KENN", "04", "10"}, {"MPOL", "11", "20"}, {"MPUR", "02", "03"}, {"NJAT", "07", "16"},
    {"PMAR", "11", "15"}, {"SAMF", "13", "18"}, {"VKOW", "11", "19"}, {"ZHIY", "03", "06"}};
static const char *FEMALE = "ADIZ MCUR MPOL MPUR NJAT PMAR";
static const char *SPEAKERS[] = {"1688-142285", "2033-164914", "3005-163389", "367-130732", "533-1066"};

enum { N_SINGERS = 12, N_SPEAKERS = 5 };

typedef struct summary {
    int pairs, classified, judged, classified_content;
    double *f0_rmse, *f0_gross, *f0_corr, *ratio, *mcd, *mcd_src, *nat, *nat_src, *conv_rtf;
} summary;

static avo_status read_clip(const char *data_dir, const char *rel, avo_audio *out, avo_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", data_dir, rel);
    return avo_audio_read(path, out, err);
}

static int is_female(const char *name) { return strstr(FEMALE, name) != NULL; }

/* 1 if name is in the comma-separated list (or there is no list). */
static int listed(const char *list, const char *name) {
    if (!list) return 1;
    const size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        const size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

static double median_of(double *v, int n) {
    double *c = malloc(sizeof(double) * (size_t)(n ? n : 1));
    int m = 0;
    for (int i = 0; c && i < n; i++)
        if (isfinite(v[i])) c[m++] = v[i];
    double r = m ? avo_bench_median(c, m) : NAN;
    free(c);
    return r;
}

static double worst_of(const double *v, int n, int highest) {
    double w = NAN;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]) && (isnan(w) || (highest ? v[i] > w : v[i] < w))) w = v[i];
    return w;
}

/* Converts source to the target profile and evaluates against the held-out target clip. */
static int run_pair(const avo_evaluator *ev, const char *src_name, const avo_audio *src, const avo_audio *src_ref,
                    const char *tgt_name,
                    const avo_voice_analysis *profile, const avo_audio *held_out, avo_preset preset, double protect,
                    summary *s, cJSON *pairs, FILE *log, int verbose) {
    avo_error err;
    avo_f0_config fcfg;
    avo_f0_config_default(&fcfg);
    fcfg.method = avo_f0_method_for_preset(preset);
    fcfg.hop_seconds = preset == AVO_PRESET_FAST ? 0.010 : 0.005;
    avo_f0_track f0 = {0};
    avo_convert_options opt;
    avo_convert_options_default(&opt);
    opt.preset = preset;
    opt.auto_transpose = 1;
    if (protect >= 0.0) opt.protect = protect;
    avo_converter *conv = NULL;
    avo_audio out = {0};
    double t0 = avo_now_ms();
    int ok = !avo_f0_estimate(src->samples, src->frames, src->sample_rate, &fcfg, &f0, &err) &&
             !avo_converter_create_dsp(profile, &opt, &conv, &err) &&
             !avo_converter_run(conv, src, &f0, &out, NULL, NULL, &err);
    double conv_ms = avo_now_ms() - t0;
    avo_converter_info info = {0};
    if (conv) avo_converter_get_info(conv, &info);
    avo_eval_result r;
    memset(&r, 0, sizeof r);
    if (ok) {
        avo_eval_options eo;
        avo_eval_options_default(&eo);
        eo.transpose_semitones = info.applied_transpose_semitones;
        ok = !avo_eval_run(ev, &out, src, src_ref && src_ref->samples ? src_ref : NULL,
                           src_ref && src_ref->samples ? 1 : 0, held_out, 1, &eo, &r, &err);
    }
    if (!ok && log) fprintf(log, "quality: %s -> %s failed: %s\n", src_name, tgt_name, err.message);
    if (ok && verbose && log)
        fprintf(log, "pair %-6s -> %-18s %+4.0f st  F0 %6.1f c r %.3f  sim tgt %.3f src %.3f (content %.3f) %-6s ratio %.3f  "
                "MCD %.2f\n", src_name, tgt_name, info.applied_transpose_semitones, r.f0.rmse_cents, r.f0.corr,
                r.sim_target, r.sim_source, r.sim_source_content_matched,
                r.classified_as_target < 0 ? "n/a" : r.classified_as_target ? "target" : "source", r.similarity_ratio,
                r.mcd_to_target_db);
    if (ok) {
        int i = s->pairs++;
        s->classified += r.classified_as_target > 0;
        s->judged += r.classified_as_target >= 0;
        s->classified_content += r.classified_as_target_content_matched != 0;
        s->f0_rmse[i] = r.f0.rmse_cents, s->f0_gross[i] = r.f0.gross_error_rate, s->f0_corr[i] = r.f0.corr, s->ratio[i] = r.similarity_ratio;
        s->mcd[i] = r.mcd_to_target_db, s->mcd_src[i] = r.mcd_source_to_target_db;
        s->nat[i] = r.naturalness_distance, s->nat_src[i] = r.naturalness_source_distance;
        s->conv_rtf[i] = conv_ms / 1000.0 / ((double)src->frames / src->sample_rate);
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "source", src_name);
        cJSON_AddStringToObject(p, "target", tgt_name);
        cJSON_AddNumberToObject(p, "transpose_semitones", info.applied_transpose_semitones);
        cJSON_AddNumberToObject(p, "f0_rmse_cents", r.f0.rmse_cents);
        cJSON_AddNumberToObject(p, "f0_gross_error_rate", r.f0.gross_error_rate);
        if (isfinite(r.f0.rmse_fine_cents)) cJSON_AddNumberToObject(p, "f0_rmse_fine_cents", r.f0.rmse_fine_cents);
        cJSON_AddNumberToObject(p, "f0_corr", r.f0.corr);
        cJSON_AddNumberToObject(p, "voicing_agreement", r.f0.voicing_agreement);
        cJSON_AddNumberToObject(p, "sim_target", r.sim_target);
        cJSON_AddStringToObject(p, "speaker_protocol", avo_eval_protocol_name(r.protocol));
        if (isfinite(r.sim_source)) cJSON_AddNumberToObject(p, "sim_source", r.sim_source);
        else cJSON_AddNullToObject(p, "sim_source");
        cJSON_AddNumberToObject(p, "sim_source_content_matched", r.sim_source_content_matched);
        cJSON_AddNumberToObject(p, "sim_target_self", r.sim_target_self);
        cJSON_AddNumberToObject(p, "sim_source_target", r.sim_source_target);
        if (r.classified_as_target < 0) cJSON_AddNullToObject(p, "classified_as_target");
        else cJSON_AddBoolToObject(p, "classified_as_target", r.classified_as_target);
        cJSON_AddBoolToObject(p, "classified_as_target_content_matched", r.classified_as_target_content_matched);
        cJSON_AddNumberToObject(p, "similarity_ratio", r.similarity_ratio);
        cJSON_AddNumberToObject(p, "mcd_to_target_db", r.mcd_to_target_db);
        cJSON_AddNumberToObject(p, "mcd_source_to_target_db", r.mcd_source_to_target_db);
        cJSON_AddNumberToObject(p, "naturalness_distance", r.naturalness_distance);
        cJSON_AddNumberToObject(p, "naturalness_source_distance", r.naturalness_source_distance);
        cJSON_AddNumberToObject(p, "conversion_rtf", s->conv_rtf[i]);
        cJSON_AddItemToArray(pairs, p);
    }
    avo_converter_free(conv);
    avo_audio_free(&out);
    avo_f0_track_free(&f0);
    return ok;
}



static void summarise(const char *label, summary *s, cJSON *root, FILE *log) {
    const int n = s->pairs;
    double cls = s->judged ? (double)s->classified / s->judged : NAN;
    double cls_content = n ? (double)s->classified_content / n : NAN;
    if (log) fprintf(log, "%-22s %5d %9.1f %9.1f %7.1f %7.3f %7.3f %8.3f %4d %8.3f %8.3f %7.3f %7.2f %7.2f %7.2f %7.2f %8.3f\n",
           label, n, median_of(s->f0_rmse, n), worst_of(s->f0_rmse, n, 1), 100.0 * worst_of(s->f0_gross, n, 1),
           median_of(s->f0_corr, n),
           worst_of(s->f0_corr, n, 0), cls, s->judged, cls_content, median_of(s->ratio, n), worst_of(s->ratio, n, 0),
           median_of(s->mcd, n), median_of(s->mcd_src, n), median_of(s->nat, n), median_of(s->nat_src, n),
           median_of(s->conv_rtf, n));
    cJSON *o = cJSON_AddObjectToObject(root, label);
    cJSON_AddNumberToObject(o, "pairs", n);
    cJSON_AddNumberToObject(o, "f0_rmse_cents_median", median_of(s->f0_rmse, n));
    cJSON_AddNumberToObject(o, "f0_rmse_cents_worst", worst_of(s->f0_rmse, n, 1));
    cJSON_AddNumberToObject(o, "f0_gross_error_rate_median", median_of(s->f0_gross, n));
    cJSON_AddNumberToObject(o, "f0_gross_error_rate_worst", worst_of(s->f0_gross, n, 1));
    cJSON_AddNumberToObject(o, "f0_corr_median", median_of(s->f0_corr, n));
    cJSON_AddNumberToObject(o, "f0_corr_worst", worst_of(s->f0_corr, n, 0));
    if (isfinite(cls)) cJSON_AddNumberToObject(o, "classified_as_target_rate", cls);
    else cJSON_AddNullToObject(o, "classified_as_target_rate");
    cJSON_AddNumberToObject(o, "classified_pairs", s->judged);
    cJSON_AddNumberToObject(o, "classified_as_target_rate_content_matched", cls_content);
    cJSON_AddNumberToObject(o, "similarity_ratio_median", median_of(s->ratio, n));
    cJSON_AddNumberToObject(o, "similarity_ratio_worst", worst_of(s->ratio, n, 0));
    cJSON_AddNumberToObject(o, "mcd_to_target_db_median", median_of(s->mcd, n));
    cJSON_AddNumberToObject(o, "mcd_source_to_target_db_median", median_of(s->mcd_src, n));
    cJSON_AddNumberToObject(o, "naturalness_distance_median", median_of(s->nat, n));
    cJSON_AddNumberToObject(o, "naturalness_source_distance_median", median_of(s->nat_src, n));
    cJSON_AddNumberToObject(o, "conversion_rtf_median", median_of(s->conv_rtf, n));
}

static void summary_init(summary *s, int cap) {
    memset(s, 0, sizeof *s);
    double **arrays[] = {&s->f0_rmse, &s->f0_gross, &s->f0_corr, &s->ratio, &s->mcd, &s->mcd_src, &s->nat, &s->nat_src, &s->conv_rtf};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) *arrays[i] = calloc((size_t)cap, sizeof(double));
}

static void summary_free(summary *s) {
    free(s->f0_rmse), free(s->f0_gross), free(s->f0_corr), free(s->ratio), free(s->mcd);
    free(s->mcd_src), free(s->nat), free(s->nat_src), free(s->conv_rtf);
}

static void summary_add(summary *dst, const summary *src) {
    for (int i = 0; i < src->pairs; i++) {
        int j = dst->pairs++;
        dst->f0_rmse[j] = src->f0_rmse[i], dst->f0_gross[j] = src->f0_gross[i], dst->f0_corr[j] = src->f0_corr[i], dst->ratio[j] = src->ratio[i];
        dst->mcd[j] = src->mcd[i], dst->mcd_src[j] = src->mcd_src[i], dst->nat[j] = src->nat[i];
        dst->nat_src[j] = src->nat_src[i], dst->conv_rtf[j] = src->conv_rtf[i];
    }
    dst->classified += src->classified;
    dst->judged += src->judged;
    dst->classified_content += src->classified_content;
}


/* Which pairs a scope runs: all ordered pairs; a standard set where every singer is a source once
 * (target three places on, skipping one-clip singers) plus two speech profiles; or three pairs. */
static int pair_selected(avo_bench_quality_scope scope, int s, int t) {
    if (scope == AVO_QUALITY_ALL) return 1;
    if (scope == AVO_QUALITY_QUICK) return (s == 7 && t == 2) || (s == 2 && t == 5) || (s == 9 && t == 4);
    int want = (s + 3) % N_SINGERS;
    while (!SINGERS[want][2] || want == s) want = (want + 1) % N_SINGERS;
    return t == want;
}

typedef struct quality_data {
    avo_audio first[N_SINGERS], second[N_SINGERS];
    avo_voice_analysis *profiles[N_SINGERS];
} quality_data;

static void data_free(quality_data *d) {
    for (int s = 0; s < N_SINGERS; s++) {
        avo_audio_free(&d->first[s]);
        avo_audio_free(&d->second[s]);
        avo_voice_analysis_free(d->profiles[s]);
    }
}

static avo_status load_singers(const char *data_dir, avo_preset preset, quality_data *d, avo_error *err) {
    avo_status st = AVO_OK;
    for (int s = 0; s < N_SINGERS && !st; s++) {
        char rel[256];
        snprintf(rel, sizeof rel, "singing/nus48e_%s_%s.flac", SINGERS[s][0], SINGERS[s][1]);
        st = read_clip(data_dir, rel, &d->first[s], err);
        if (!st && SINGERS[s][2]) {
            snprintf(rel, sizeof rel, "singing/nus48e_%s_%s.flac", SINGERS[s][0], SINGERS[s][2]);
            st = read_clip(data_dir, rel, &d->second[s], err);
            if (!st) st = avo_voice_analysis_create(&d->first[s], 1, preset, 0, &d->profiles[s], err);
        }
    }
    return st;
}

static avo_status speech_pairs(const avo_bench_quality_options *opt, const avo_evaluator *ev, const quality_data *d,
                               summary *speech, cJSON *pairs, avo_error *err) {
    const int speakers = opt->scope == AVO_QUALITY_ALL ? N_SPEAKERS : opt->scope == AVO_QUALITY_STANDARD ? 2 : 0;
    avo_status st = AVO_OK;
    for (int k = 0; k < speakers && !st; k++) {
        if (!listed(opt->only, SPEAKERS[k])) continue;
        avo_audio utt[4];
        memset(utt, 0, sizeof utt);
        for (int u = 0; u < 4 && !st; u++) {
            char rel[256];
            snprintf(rel, sizeof rel, "speech/libri_%s-%04d.flac", SPEAKERS[k], u);
            st = read_clip(opt->data_dir, rel, &utt[u], err);
        }
        avo_voice_analysis *prof = NULL;
        if (!st) st = avo_voice_analysis_create(utt, 3, opt->preset, 0, &prof, err);
        char name[64];
        snprintf(name, sizeof name, "libri_%s", SPEAKERS[k]);
        const int step = opt->scope == AVO_QUALITY_ALL ? 2 : 4;
        for (int s = 0; s < N_SINGERS && !st; s += step)
            if (listed(opt->only, SINGERS[s][0]))
                run_pair(ev, SINGERS[s][0], &d->first[s], &d->second[s], name, prof, &utt[3], opt->preset,
                         opt->protect, speech, pairs, opt->log, opt->verbose);
        avo_voice_analysis_free(prof);
        for (int u = 0; u < 4; u++) avo_audio_free(&utt[u]);
    }
    return st;
}

void avo_bench_quality_options_default(avo_bench_quality_options *opt) {
    memset(opt, 0, sizeof *opt);
    opt->data_dir = "../shared/data";
    opt->preset = AVO_PRESET_BALANCED;
    opt->protect = -1.0;
    opt->scope = AVO_QUALITY_STANDARD;
}

avo_status avo_bench_quality(const avo_bench_quality_options *opt, char **json, avo_error *err) {
    avo_evaluator *ev = NULL;
    quality_data d;
    memset(&d, 0, sizeof d);
    avo_status st = avo_evaluator_create_from_dir(opt->data_dir, NULL, 0, NULL, &ev, err);
    if (!st) st = load_singers(opt->data_dir, opt->preset, &d, err);
    const int cap = N_SINGERS * N_SINGERS + N_SINGERS * N_SPEAKERS;
    summary same, cross, speech, all;
    summary_init(&same, cap), summary_init(&cross, cap), summary_init(&speech, cap), summary_init(&all, cap);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "benchmark", "quality");
    cJSON_AddStringToObject(root, "preset", avo_preset_name(opt->preset));
    cJSON_AddStringToObject(root, "scope", opt->scope == AVO_QUALITY_ALL ? "all pairs" : opt->scope == AVO_QUALITY_QUICK ? "quick" : "standard");
    cJSON_AddStringToObject(root, "protocol",
                            "profile from the target's first clip (LibriSpeech: utterances 0-2), judged against a "
                            "held-out clip; source = another NUS-48E singer's first clip; auto-transpose");
    cJSON_AddStringToObject(root, "speaker_protocol",
                            "heldout: output vs the target's held-out clip and vs the source singer's other clip "
                            "(never the converted clip); one-clip source singers (ADIZ, MCUR) get no verdict; "
                            "classified_as_target_rate_content_matched = old verdict vs the converted clip itself");
    cJSON *pairs = cJSON_AddArrayToObject(root, "pairs");
    for (int t = 0; t < N_SINGERS && !st; t++) {
        if (!d.profiles[t]) continue;
        for (int s = 0; s < N_SINGERS; s++) {
            if (s == t || !pair_selected(opt->scope, s, t)) continue;
            if (!listed(opt->only, SINGERS[s][0]) || !listed(opt->only, SINGERS[t][0])) continue;
            summary *bucket = is_female(SINGERS[s][0]) == is_female(SINGERS[t][0]) ? &same : &cross;
            run_pair(ev, SINGERS[s][0], &d.first[s], &d.second[s], SINGERS[t][0], d.profiles[t], &d.second[t],
                     opt->preset, opt->protect, bucket, pairs, opt->log, opt->verbose);
        }
    }
    if (!st) st = speech_pairs(opt, ev, &d, &speech, pairs, err);
    if (!st) {
        summary_add(&all, &same), summary_add(&all, &cross), summary_add(&all, &speech);
        if (opt->log)
            fprintf(opt->log, "%-22s %5s %9s %9s %7s %7s %7s %8s %4s %8s %8s %7s %7s %7s %7s %7s %8s\n", "set",
                    "pairs", "F0 rmse", "worst", "gross%", "F0 r", "worst", "as tgt", "of", "(cont.)", "sim rat", "worst", "MCD", "MCDsrc",
                    "nat", "natsrc", "conv RTF");
        cJSON *sum = cJSON_AddObjectToObject(root, "summary");
        summarise("same_gender", &same, sum, opt->log);
        summarise("cross_gender", &cross, sum, opt->log);
        summarise("speech_profile", &speech, sum, opt->log);
        summarise("all", &all, sum, opt->log);
        *json = cJSON_Print(root);
        if (!*json) st = avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    }
    cJSON_Delete(root);
    summary_free(&same), summary_free(&cross), summary_free(&speech), summary_free(&all);
    data_free(&d);
    avo_evaluator_free(ev);
    return st;
}
