/* Conversion quality benchmark (issue: retrieval-based DSP conversion and an objective evaluator).
 *
 * Every ordered pair of NUS-48E singers (source: the singer's first clip; target: a profile made from
 * the target's FIRST clip only, judged against the target's SECOND clip, which the converter never
 * saw), so singers with one clip (ADIZ, MCUR) are sources only: 10 targets x 11 sources = 110 pairs.
 * Plus speech profiles: LibriSpeech speakers, profile from utterances 0-2, judged against utterance 3,
 * converting singing from every NUS singer. Conversion is the DSP converter with auto-transpose (so
 * cross-gender pairs sing in the target's octave); the melody check compares the output F0 with the
 * source F0 moved by the transpose that was applied.
 *
 * usage: bench_conversion [--out FILE.json] [--preset fast|balanced|quality] [--quick] */
#include "autovoice/convert.h"
#include "autovoice/eval.h"
#include "bench_common.h"

#include <cjson/cJSON.h>
#include <math.h>

static const char *SINGERS[][3] = {
    {"ADIZ", "18", NULL}, {"MCUR", "17", NULL}, {"JLEE", "11", "15"}, {"JTAN", "07", "16"},
    {"KENN", "04", "10"}, {"MPOL", "11", "20"}, {"MPUR", "02", "03"}, {"NJAT", "07", "16"},
    {"PMAR", "11", "15"}, {"SAMF", "13", "18"}, {"VKOW", "11", "19"}, {"ZHIY", "03", "06"}};
static const char *FEMALE = "ADIZ MCUR MPOL MPUR NJAT PMAR";
static const char *SPEAKERS[] = {"1688-142285", "2033-164914", "3005-163389", "367-130732", "533-1066"};

enum { N_SINGERS = 12, N_SPEAKERS = 5 };

typedef struct summary {
    int pairs, classified;
    double *f0_rmse, *f0_corr, *ratio, *mcd, *mcd_src, *nat, *nat_src, *conv_rtf;
} summary;

static void read_clip(const char *rel, avo_audio *out) {
    char path[1024];
    avo_error err;
    snprintf(path, sizeof path, "%s/%s", bench_data_dir(), rel);
    if (avo_audio_read(path, out, &err)) {
        fprintf(stderr, "bench: %s\n", err.message);
        exit(1);
    }
}

static int is_female(const char *name) { return strstr(FEMALE, name) != NULL; }

static double median_of(double *v, int n) {
    double *c = malloc(sizeof(double) * (size_t)(n ? n : 1));
    int m = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) c[m++] = v[i];
    double r = m ? bench_median(c, m) : NAN;
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
static double g_protect = -1.0; /* bench option: override the default consonant protection */

static int run_pair(const avo_evaluator *ev, const char *src_name, const avo_audio *src, const char *tgt_name,
                    const avo_voice_analysis *profile, const avo_audio *held_out, avo_preset preset, summary *s,
                    cJSON *pairs) {
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
    if (g_protect >= 0.0) opt.protect = g_protect;
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
        ok = !avo_eval_run(ev, &out, src, held_out, 1, &eo, &r, &err);
    }
    if (!ok) fprintf(stderr, "bench: %s -> %s failed: %s\n", src_name, tgt_name, err.message);
    if (ok) {
        int i = s->pairs++;
        s->classified += r.classified_as_target != 0;
        s->f0_rmse[i] = r.f0.rmse_cents, s->f0_corr[i] = r.f0.corr, s->ratio[i] = r.similarity_ratio;
        s->mcd[i] = r.mcd_to_target_db, s->mcd_src[i] = r.mcd_source_to_target_db;
        s->nat[i] = r.naturalness_distance, s->nat_src[i] = r.naturalness_source_distance;
        s->conv_rtf[i] = conv_ms / 1000.0 / ((double)src->frames / src->sample_rate);
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "source", src_name);
        cJSON_AddStringToObject(p, "target", tgt_name);
        cJSON_AddNumberToObject(p, "transpose_semitones", info.applied_transpose_semitones);
        cJSON_AddNumberToObject(p, "f0_rmse_cents", r.f0.rmse_cents);
        cJSON_AddNumberToObject(p, "f0_corr", r.f0.corr);
        cJSON_AddNumberToObject(p, "voicing_agreement", r.f0.voicing_agreement);
        cJSON_AddNumberToObject(p, "sim_target", r.sim_target);
        cJSON_AddNumberToObject(p, "sim_source", r.sim_source);
        cJSON_AddNumberToObject(p, "sim_target_self", r.sim_target_self);
        cJSON_AddNumberToObject(p, "sim_source_target", r.sim_source_target);
        cJSON_AddBoolToObject(p, "classified_as_target", r.classified_as_target);
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

static avo_voice_analysis *make_profile(const avo_audio *clips, int count, avo_preset preset) {
    avo_voice_analysis *a = NULL;
    avo_error err;
    if (avo_voice_analysis_create(clips, count, preset, 0, &a, &err)) {
        fprintf(stderr, "bench: profile failed: %s\n", err.message);
        exit(1);
    }
    return a;
}

static void summarise(const char *label, summary *s, cJSON *root) {
    const int n = s->pairs;
    double cls = n ? (double)s->classified / n : NAN;
    printf("%-22s %5d %9.1f %9.1f %7.3f %7.3f %8.3f %8.3f %7.2f %7.2f %7.2f %7.2f %8.3f\n", label, n,
           median_of(s->f0_rmse, n), worst_of(s->f0_rmse, n, 1), median_of(s->f0_corr, n), worst_of(s->f0_corr, n, 0),
           cls, median_of(s->ratio, n), median_of(s->mcd, n), median_of(s->mcd_src, n), median_of(s->nat, n),
           median_of(s->nat_src, n), median_of(s->conv_rtf, n));
    cJSON *o = cJSON_AddObjectToObject(root, label);
    cJSON_AddNumberToObject(o, "pairs", n);
    cJSON_AddNumberToObject(o, "f0_rmse_cents_median", median_of(s->f0_rmse, n));
    cJSON_AddNumberToObject(o, "f0_rmse_cents_worst", worst_of(s->f0_rmse, n, 1));
    cJSON_AddNumberToObject(o, "f0_corr_median", median_of(s->f0_corr, n));
    cJSON_AddNumberToObject(o, "f0_corr_worst", worst_of(s->f0_corr, n, 0));
    cJSON_AddNumberToObject(o, "classified_as_target_rate", cls);
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
    double **arrays[] = {&s->f0_rmse, &s->f0_corr, &s->ratio, &s->mcd, &s->mcd_src, &s->nat, &s->nat_src, &s->conv_rtf};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) *arrays[i] = calloc((size_t)cap, sizeof(double));
}

static void summary_add(summary *dst, const summary *src) {
    for (int i = 0; i < src->pairs; i++) {
        int j = dst->pairs++;
        dst->f0_rmse[j] = src->f0_rmse[i], dst->f0_corr[j] = src->f0_corr[i], dst->ratio[j] = src->ratio[i];
        dst->mcd[j] = src->mcd[i], dst->mcd_src[j] = src->mcd_src[i], dst->nat[j] = src->nat[i];
        dst->nat_src[j] = src->nat_src[i], dst->conv_rtf[j] = src->conv_rtf[i];
    }
    dst->classified += src->classified;
}

int main(int argc, char **argv) {
    const char *out_path = "bench/out/quality.json";
    avo_preset preset = AVO_PRESET_BALANCED;
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(argv[i], "--preset") && i + 1 < argc) avo_preset_parse(argv[++i], &preset);
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--protect") && i + 1 < argc) g_protect = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--out FILE.json] [--preset P] [--quick]\n", argv[0]);
            return 2;
        }
    }
    avo_error err;
    avo_evaluator *ev = NULL;
    if (avo_evaluator_create_from_dir(bench_data_dir(), NULL, 0, NULL, &ev, &err)) {
        fprintf(stderr, "bench: evaluator: %s\n", err.message);
        return 1;
    }
    avo_audio first[N_SINGERS], second[N_SINGERS];
    avo_voice_analysis *profiles[N_SINGERS] = {0};
    for (int s = 0; s < N_SINGERS; s++) {
        char rel[256];
        snprintf(rel, sizeof rel, "singing/nus48e_%s_%s.flac", SINGERS[s][0], SINGERS[s][1]);
        read_clip(rel, &first[s]);
        memset(&second[s], 0, sizeof second[s]);
        if (SINGERS[s][2]) {
            snprintf(rel, sizeof rel, "singing/nus48e_%s_%s.flac", SINGERS[s][0], SINGERS[s][2]);
            read_clip(rel, &second[s]);
            profiles[s] = make_profile(&first[s], 1, preset);
        }
    }
    const int cap = N_SINGERS * N_SINGERS + N_SINGERS * N_SPEAKERS;
    summary same, cross, speech, all;
    summary_init(&same, cap), summary_init(&cross, cap), summary_init(&speech, cap), summary_init(&all, cap);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "benchmark", "quality");
    cJSON_AddStringToObject(root, "preset", avo_preset_name(preset));
    cJSON_AddStringToObject(root, "protocol",
                            "profile from the target's first clip (LibriSpeech: utterances 0-2), judged against a "
                            "held-out clip; source = each other NUS-48E singer's first clip; auto-transpose");
    cJSON *pairs = cJSON_AddArrayToObject(root, "pairs");
    for (int t = 0; t < N_SINGERS; t++) {
        if (!profiles[t]) continue;
        for (int s = 0; s < N_SINGERS; s++) {
            if (s == t || (quick && s % 4 != 1)) continue;
            summary *bucket = is_female(SINGERS[s][0]) == is_female(SINGERS[t][0]) ? &same : &cross;
            run_pair(ev, SINGERS[s][0], &first[s], SINGERS[t][0], profiles[t], &second[t], preset, bucket, pairs);
            fprintf(stderr, "\r%d pairs", same.pairs + cross.pairs);
        }
        if (quick && t > 4) break;
    }
    for (int k = 0; k < N_SPEAKERS && !quick; k++) {
        avo_audio utt[4];
        for (int u = 0; u < 4; u++) {
            char rel[256];
            snprintf(rel, sizeof rel, "speech/libri_%s-%04d.flac", SPEAKERS[k], u);
            read_clip(rel, &utt[u]);
        }
        avo_voice_analysis *prof = make_profile(utt, 3, preset);
        char name[64];
        snprintf(name, sizeof name, "libri_%s", SPEAKERS[k]);
        for (int s = 0; s < N_SINGERS; s += 2) run_pair(ev, SINGERS[s][0], &first[s], name, prof, &utt[3], preset, &speech, pairs);
        avo_voice_analysis_free(prof);
        for (int u = 0; u < 4; u++) avo_audio_free(&utt[u]);
    }
    fprintf(stderr, "\n");
    summary_add(&all, &same), summary_add(&all, &cross), summary_add(&all, &speech);
    printf("%-22s %5s %9s %9s %7s %7s %8s %8s %7s %7s %7s %7s %8s\n", "set", "pairs", "F0 rmse", "worst", "F0 r",
           "worst", "as tgt", "sim rat", "MCD", "MCDsrc", "nat", "natsrc", "conv RTF");
    cJSON *sum = cJSON_AddObjectToObject(root, "summary");
    summarise("same_gender", &same, sum);
    summarise("cross_gender", &cross, sum);
    summarise("speech_profile", &speech, sum);
    summarise("all", &all, sum);
    char *text = cJSON_Print(root);
    FILE *f = fopen(out_path, "w");
    if (f) {
        fprintf(f, "%s\n", text);
        fclose(f);
        printf("wrote %s\n", out_path);
    } else {
        fprintf(stderr, "bench: cannot write %s\n", out_path);
    }
    free(text);
    cJSON_Delete(root);
    for (int s = 0; s < N_SINGERS; s++) {
        avo_audio_free(&first[s]);
        avo_audio_free(&second[s]);
        avo_voice_analysis_free(profiles[s]);
    }
    avo_evaluator_free(ev);
    return 0;
}
