/* autovoice eval: objective scores of a conversion (melody, speaker similarity, MCD, naturalness). */
#include "cli.h"

#include "autovoice/eval.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char EVAL_HELP[] =
    "usage: autovoice eval --output OUT.wav --source SRC.wav --source-clips S1.wav [S2.wav ...]\n"
    "                      --target-clips T1.wav [T2.wav ...] [options]\n"
    "\n"
    "Scores a conversion: OUT is the converted vocal, SRC the vocal it was made from, S1.. other recordings\n"
    "of the source voice (not SRC), T1.. recordings of the target voice (a profile's clips). Prints a table;\n"
    "--json also writes a quality.json document.\n"
    "\n"
    "  -o, --output FILE         the converted vocal\n"
    "  -s, --source FILE         the source vocal it was converted from\n"
    "      --source-clips F...   held-out recordings of the source voice, other than SRC (every following\n"
    "                            argument up to the next option); without them there is no target/source verdict\n"
    "      --target-clips F...   recordings of the target voice (every following argument up to the next option)\n"
    "  -t, --transpose N         semitones the conversion moved the melody (-24..24, default 0)\n"
    "      --json FILE           also write the scores as JSON\n"
    "      --f0 METHOD           fast | accurate (default accurate)\n"
    "      --data DIR            recordings the speaker model is trained on (default $AVO_DATA, else\n"
    "                            $AVO_TEST_DATA, else ../shared/data): its singing/ and speech/ folders\n"
    "      --threads N           worker threads (default: all cores)\n"
    "\n"
    "Scores: F0 RMSE (cents) and log-F0 correlation against the transposed source on frames voiced in both,\n"
    "the share of those frames off by more than 20% (gross errors: octave slips of either F0 tracker) and the\n"
    "RMSE over the rest, voicing agreement; speaker similarity (cosine of GMM-UBM supervectors, 0..1) to the target and to the\n"
    "source, the similarity ratio sim(output, target) / sim(target clip, other target clip); mel-cepstral\n"
    "distortion to the nearest target frame (dB, with the source's as reference); naturalness distance (dB,\n"
    "modulation spectrum and spectral flatness against the target's recordings; lower is more natural).\n"
    "\n"
    "Speaker protocol (\"speaker_protocol\": \"heldout\" in the JSON): the output is compared with the target's\n"
    "recordings and with the source speaker's held-out recordings (--source-clips), never with SRC itself, and\n"
    "is classified as the target when it is closer to the target's. Both sides are treated alike: the mean\n"
    "over clips, or over the two halves of a lone clip. Scoring against SRC, the very recording the output was\n"
    "made from, measures shared content rather than the voice (an unchanged resynthesis scores about 0.85\n"
    "against its own recording, 0.2-0.3 against the same singer's other songs); it is still shown as the\n"
    "diagnostic \"content-matched\" score (sim_source_content_matched), not as the verdict.\n";

#define MAX_TARGETS 64

typedef struct eval_args {
    const char *output, *source, *json_path, *data_dir;
    const char *targets[MAX_TARGETS];
    int target_count;
    const char *source_refs[MAX_TARGETS];
    int source_ref_count;
    avo_eval_options opt;
} eval_args;

/* 1 if s looks like an option (not a lone "-" or a negative number). */
static int is_option(const char *s) { return s[0] == '-' && s[1] != 0 && !(s[1] >= '0' && s[1] <= '9'); }

static int option_value(int argc, char **argv, int *i, const char **out) {
    const char *name = argv[*i];
    if (*i + 1 >= argc || is_option(argv[*i + 1])) return cli_usage_error("eval", "option '%s' needs a value", name);
    *out = argv[++*i];
    return CLI_OK;
}

/* Returns CLI_OK, a usage error code, or -1 after printing help. */
static int parse_eval_args(int argc, char **argv, eval_args *a) {
    const char *cmd = "eval";
    memset(a, 0, sizeof *a);
    avo_eval_options_default(&a->opt);
    int rc = CLI_OK;
    for (int i = 1; i < argc && rc == CLI_OK; i++) {
        const char *arg = argv[i], *val = NULL;
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            fputs(EVAL_HELP, stdout);
            return -1;
        } else if (!strcmp(arg, "-o") || !strcmp(arg, "--output")) {
            rc = option_value(argc, argv, &i, &a->output);
        } else if (!strcmp(arg, "-s") || !strcmp(arg, "--source")) {
            rc = option_value(argc, argv, &i, &a->source);
        } else if (!strcmp(arg, "--source-clips")) {
            while (i + 1 < argc && !is_option(argv[i + 1])) {
                if (a->source_ref_count == MAX_TARGETS)
                    return cli_usage_error(cmd, "at most %d held-out source clips", MAX_TARGETS);
                a->source_refs[a->source_ref_count++] = argv[++i];
            }
        } else if (!strcmp(arg, "--target-clips")) {
            while (i + 1 < argc && !is_option(argv[i + 1])) {
                if (a->target_count == MAX_TARGETS)
                    return cli_usage_error(cmd, "at most %d target clips", MAX_TARGETS);
                a->targets[a->target_count++] = argv[++i];
            }
        } else if (!strcmp(arg, "-t") || !strcmp(arg, "--transpose")) {
            rc = option_value(argc, argv, &i, &val);
            if (!rc) rc = cli_parse_double(cmd, "--transpose", val, -24, 24, &a->opt.transpose_semitones);
        } else if (!strcmp(arg, "--json")) {
            rc = option_value(argc, argv, &i, &a->json_path);
        } else if (!strcmp(arg, "--data")) {
            rc = option_value(argc, argv, &i, &a->data_dir);
        } else if (!strcmp(arg, "--f0")) {
            rc = option_value(argc, argv, &i, &val);
            if (!rc && !strcmp(val, "fast")) a->opt.f0_method = AVO_F0_FAST;
            else if (!rc && !strcmp(val, "accurate")) a->opt.f0_method = AVO_F0_ACCURATE;
            else if (!rc) rc = cli_usage_error(cmd, "--f0 must be fast or accurate, got '%s'", val);
        } else if (!strcmp(arg, "--threads")) {
            rc = option_value(argc, argv, &i, &val);
            if (!rc) rc = cli_parse_int(cmd, "--threads", val, 1, 256, &a->opt.threads);
        } else if (is_option(arg)) {
            rc = cli_usage_error(cmd, "unknown option '%s'", arg);
        } else {
            rc = cli_usage_error(cmd, "unexpected argument '%s' (target clips go after --target-clips)", arg);
        }
    }
    if (rc) return rc;
    if (!a->output) return cli_usage_error(cmd, "no converted recording: add --output OUT.wav");
    if (!a->source) return cli_usage_error(cmd, "no source recording: add --source SRC.wav");
    if (a->target_count == 0) return cli_usage_error(cmd, "no target recordings: add --target-clips T1.wav [T2.wav ...]");
    if (!a->data_dir) a->data_dir = getenv("AVO_DATA");
    if (!a->data_dir || !*a->data_dir) a->data_dir = getenv("AVO_TEST_DATA");
    if (!a->data_dir || !*a->data_dir) a->data_dir = "../shared/data";
    return CLI_OK;
}

static void add_num(cJSON *o, const char *key, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

static char *result_json(const eval_args *a, const avo_eval_result *r) {
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "benchmark", "quality");
    cJSON *pairs = cJSON_AddArrayToObject(doc, "pairs");
    cJSON *p = cJSON_CreateObject();
    cJSON_AddItemToArray(pairs, p);
    size_t len = 1;
    for (int i = 0; i < a->target_count; i++) len += strlen(a->targets[i]) + 1;
    char *joined = calloc(len, 1);
    for (int i = 0; joined && i < a->target_count; i++) {
        if (i) strcat(joined, ",");
        strcat(joined, a->targets[i]);
    }
    cJSON_AddStringToObject(p, "source", a->source);
    cJSON_AddStringToObject(p, "target", joined ? joined : "");
    cJSON_AddStringToObject(p, "output", a->output);
    free(joined);
    cJSON *refs = cJSON_AddArrayToObject(p, "source_clips");
    for (int i = 0; i < a->source_ref_count; i++) cJSON_AddItemToArray(refs, cJSON_CreateString(a->source_refs[i]));
    cJSON_AddStringToObject(p, "speaker_protocol", avo_eval_protocol_name(r->protocol));
    add_num(p, "transpose_semitones", a->opt.transpose_semitones);
    add_num(p, "f0_rmse_cents", r->f0.rmse_cents);
    add_num(p, "f0_gross_error_rate", r->f0.gross_error_rate);
    add_num(p, "f0_rmse_fine_cents", r->f0.rmse_fine_cents);
    add_num(p, "f0_corr", r->f0.corr);
    add_num(p, "voicing_agreement", r->f0.voicing_agreement);
    add_num(p, "sim_target", r->sim_target);
    add_num(p, "sim_source", r->sim_source);
    if (r->classified_as_target < 0) cJSON_AddNullToObject(p, "classified_as_target");
    else cJSON_AddBoolToObject(p, "classified_as_target", r->classified_as_target);
    add_num(p, "similarity_ratio", r->similarity_ratio);
    add_num(p, "sim_target_self", r->sim_target_self);
    add_num(p, "sim_source_self", r->sim_source_self);
    add_num(p, "sim_source_content_matched", r->sim_source_content_matched);
    cJSON_AddBoolToObject(p, "classified_as_target_content_matched", r->classified_as_target_content_matched);
    add_num(p, "sim_source_target", r->sim_source_target);
    add_num(p, "mcd_to_target_db", r->mcd_to_target_db);
    add_num(p, "mcd_source_to_target_db", r->mcd_source_to_target_db);
    add_num(p, "naturalness_distance", r->naturalness_distance);
    add_num(p, "naturalness_source_distance", r->naturalness_source_distance);
    cJSON *s = cJSON_AddObjectToObject(doc, "summary");
    cJSON_AddNumberToObject(s, "pairs", 1);
    add_num(s, "mean_f0_rmse_cents", r->f0.rmse_cents);
    add_num(s, "mean_f0_corr", r->f0.corr);
    add_num(s, "mean_voicing_agreement", r->f0.voicing_agreement);
    add_num(s, "target_classification_rate", r->classified_as_target < 0 ? NAN : r->classified_as_target);
    add_num(s, "mean_similarity_ratio", r->similarity_ratio);
    add_num(s, "mean_mcd_to_target_db", r->mcd_to_target_db);
    add_num(s, "mean_naturalness_distance", r->naturalness_distance);
    cJSON_AddStringToObject(s, "speaker_protocol", avo_eval_protocol_name(r->protocol));
    cJSON_AddStringToObject(s, "speaker_protocol_description",
                            r->protocol == AVO_EVAL_PROTOCOL_HELDOUT
                                ? "output scored against the target's recordings and the source speaker's held-out recordings (never the converted source); classified as target when closer to the target's"
                                : "no held-out source recordings given: no target/source verdict; sim_source_content_matched (against the converted source itself) is a content-biased diagnostic");
    cJSON_AddStringToObject(s, "speaker_model",
                            "GMM-UBM, 64 diagonal components, MFCC c1-c19 + deltas c0-c19 with CMVN, MAP-adapted means (r=4), supervector cosine clipped to [0,1]; UBM trained on the shared recordings at each run");
    char *text = cJSON_Print(doc);
    cJSON_Delete(doc);
    return text;
}

static void print_table(const eval_args *a, const avo_eval_result *r) {
    printf("autovoice eval: %s (source %s, %d held-out source clip%s, %d target clip%s; speaker protocol %s)\n",
           a->output, a->source, a->source_ref_count, a->source_ref_count == 1 ? "" : "s", a->target_count,
           a->target_count == 1 ? "" : "s", avo_eval_protocol_name(r->protocol));
    printf("  %-28s %10s   %s\n", "measure", "value", "reference");
    printf("  %-28s %10.1f   transpose %+g semitones, %lld frames voiced in both\n", "F0 RMSE (cents)",
           r->f0.rmse_cents, a->opt.transpose_semitones, (long long)r->f0.both_voiced);
    printf("  %-28s %10.3f   RMSE %.1f cents on the other frames\n", "F0 gross errors (>20%)",
           r->f0.gross_error_rate, r->f0.rmse_fine_cents);
    printf("  %-28s %10.3f\n", "F0 correlation (log F0)", r->f0.corr);
    printf("  %-28s %10.3f   of %lld frames\n", "voicing agreement", r->f0.voicing_agreement, (long long)r->f0.frames);
    printf("  %-28s %10.3f   target vs itself %.3f, source vs target %.3f\n", "speaker similarity to target",
           r->sim_target, r->sim_target_self, r->sim_source_target);
    if (r->classified_as_target >= 0)
        printf("  %-28s %10.3f   held-out source clips, source vs itself %.3f: classified as %s\n",
               "speaker similarity to source", r->sim_source, r->sim_source_self,
               r->classified_as_target ? "target" : "source");
    else
        printf("  %-28s %10s   no held-out source clips (--source-clips): no verdict\n", "speaker similarity to source",
               "n/a");
    printf("  %-28s %10.3f   diagnostic only: against SRC itself, shared content inflates it (would say %s)\n",
           "content-matched to source", r->sim_source_content_matched,
           r->classified_as_target_content_matched ? "target" : "source");
    printf("  %-28s %10.3f   1 = as close as the target is to itself\n", "similarity ratio", r->similarity_ratio);
    printf("  %-28s %10.2f   source %.2f\n", "MCD to target (dB)", r->mcd_to_target_db, r->mcd_source_to_target_db);
    printf("  %-28s %10.2f   source %.2f (lower is more natural)\n", "naturalness distance (dB)",
           r->naturalness_distance, r->naturalness_source_distance);
}

int cli_eval(int argc, char **argv) {
    eval_args a;
    int rc = parse_eval_args(argc, argv, &a);
    if (rc == -1) return CLI_OK;
    if (rc) return rc;
    avo_error err;
    avo_error_clear(&err);
    if (a.json_path && cli_check_writable(a.json_path, &err)) return cli_fail(&err);

    avo_audio out = {0}, src = {0}, targets[MAX_TARGETS], refs[MAX_TARGETS];
    memset(targets, 0, sizeof targets);
    memset(refs, 0, sizeof refs);
    avo_evaluator *model = NULL;
    avo_eval_result res;
    avo_status st = avo_audio_read(a.output, &out, &err);
    if (!st) st = avo_audio_read(a.source, &src, &err);
    for (int i = 0; !st && i < a.target_count; i++) st = avo_audio_read(a.targets[i], &targets[i], &err);
    for (int i = 0; !st && i < a.source_ref_count; i++) st = avo_audio_read(a.source_refs[i], &refs[i], &err);
    if (!st) {
        avo_speaker_config cfg;
        avo_speaker_config_default(&cfg);
        cfg.threads = a.opt.threads;
        /* trained at each run from the shared recordings: deterministic and a few seconds */
        st = avo_evaluator_create_from_dir(a.data_dir, NULL, 0, &cfg, &model, &err);
    }
    if (!st)
        st = avo_eval_run(model, &out, &src, refs, a.source_ref_count, targets, a.target_count, &a.opt, &res, &err);
    if (!st) {
        print_table(&a, &res);
        if (a.json_path) {
            char *text = result_json(&a, &res);
            st = text ? cli_write_text_atomic(a.json_path, text, &err)
                      : avo_error_set(&err, AVO_ERR_NO_MEMORY, "eval: out of memory for the JSON report");
            free(text);
        }
    }
    avo_evaluator_free(model);
    avo_audio_free(&out);
    avo_audio_free(&src);
    for (int i = 0; i < a.target_count; i++) avo_audio_free(&targets[i]);
    for (int i = 0; i < a.source_ref_count; i++) avo_audio_free(&refs[i]);
    return st ? cli_fail(&err) : CLI_OK;
}
