/* autovoice profile: create, list, show, delete voice profiles. */
#include "cli.h"

#include "autovoice/convert.h"
#include "autovoice/profiles.h"

#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char PROFILE_HELP[] =
    "usage:\n"
    "  autovoice profile create NAME CLIP... [--force] [--preset P]   analyse recordings into a profile\n"
    "  autovoice profile create NAME --model VOICE.pth [--index FEATS.npy] [--model-config CFG] [CLIP...]\n"
    "                                        keep an RVC or so-vits-svc voice model (and its index or\n"
    "                                        config.json, by default the one beside it) as a profile;\n"
    "                                        clips, if given, add the voice's range for --auto-transpose\n"
    "  autovoice profile list [--json]\n"
    "  autovoice profile show NAME [--json]\n"
    "  autovoice profile delete NAME\n"
    "\n"
    "A profile needs at least 10 s of voiced singing or speech in total (a few minutes is better),\n"
    "recorded at 16 kHz or more, without clipping or loud background noise.\n"
    "\n"
    "      --store DIR   profile store (default $XDG_DATA_HOME/autovoice)\n"
    "      --force       replace an existing profile of the same name\n"
    "      --json        machine-readable output\n"
    "  -q, --quiet       no progress line\n";

typedef struct profile_args {
    const char *store, *model, *index, *model_config;
    int force, json, quiet, threads;
    avo_preset preset;
    int positional_count;
    char **positional;
} profile_args;

enum { OPT_STORE = 300, OPT_FORCE, OPT_JSON, OPT_PRESET, OPT_THREADS, OPT_MODEL, OPT_INDEX, OPT_MODEL_CONFIG };

static int parse_profile_args(int argc, char **argv, profile_args *a) {
    static const struct option opts[] = {{"store", required_argument, 0, OPT_STORE}, {"force", no_argument, 0, OPT_FORCE},
                                         {"json", no_argument, 0, OPT_JSON},         {"preset", required_argument, 0, OPT_PRESET},
                                         {"threads", required_argument, 0, OPT_THREADS}, {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},              {"model", required_argument, 0, OPT_MODEL},
                                         {"index", required_argument, 0, OPT_INDEX},
                                         {"model-config", required_argument, 0, OPT_MODEL_CONFIG}, {0, 0, 0, 0}};
    a->preset = AVO_PRESET_BALANCED;
    optind = 1;
    opterr = 0;
    int ch, rc = CLI_OK;
    while (rc == CLI_OK && (ch = getopt_long(argc, argv, ":qh", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_STORE: a->store = optarg; break;
        case OPT_FORCE: a->force = 1; break;
        case OPT_JSON: a->json = 1; break;
        case OPT_PRESET:
            if (avo_preset_parse(optarg, &a->preset))
                rc = cli_usage_error("profile", "--preset must be fast, balanced or quality, got '%s'", optarg);
            break;
        case OPT_THREADS: rc = cli_parse_int("profile", "--threads", optarg, 1, 256, &a->threads); break;
        case OPT_MODEL: a->model = optarg; break;
        case OPT_INDEX: a->index = optarg; break;
        case OPT_MODEL_CONFIG: a->model_config = optarg; break;
        case 'q': a->quiet = 1; break;
        case 'h': fputs(PROFILE_HELP, stdout); return -1;
        case ':': rc = cli_usage_error("profile", "option '%s' needs a value", argv[optind - 1]); break;
        default: rc = cli_usage_error("profile", "unknown option '%s'", argv[optind - 1]); break;
        }
    }
    a->positional = argv + optind;
    a->positional_count = argc - optind;
    return rc;
}

static void print_info(const avo_profile_info *p) {
    char when[64];
    time_t t = (time_t)p->created_unix;
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
    printf("name:            %s\n", p->name);
    printf("kind:            %s\n", p->kind);
    printf("created:         %s\n", when);
    printf("recordings:      %d (%s)\n", p->clip_count, p->sources);
    printf("audio:           %.1f s, %.1f s voiced, analysed at %d Hz\n", p->total_seconds, p->voiced_seconds,
           p->sample_rate);
    printf("pitch:           median %.1f Hz, range %.1f-%.1f Hz (5th-95th percentile)\n", p->f0_median_hz,
           p->f0_low_hz, p->f0_high_hz);
    printf("lowest SNR:      %.1f dB\n", p->snr_db);
    if (p->model_path[0]) printf("model:           %s\n", p->model_path);
    if (p->warnings[0]) printf("warnings:        %s\n", p->warnings);
}

static void print_info_json(const avo_profile_info *p, int last) {
    /* Names and file names are restricted to safe characters by the store; sources are escaped here. */
    printf("  {\"name\": \"%s\", \"kind\": \"%s\", \"created_unix\": %lld, \"clip_count\": %d, "
           "\"total_seconds\": %.3f, \"voiced_seconds\": %.3f, \"sample_rate\": %d, \"f0_median_hz\": %.2f, "
           "\"f0_low_hz\": %.2f, \"f0_high_hz\": %.2f, \"snr_db\": %.2f, \"sources\": \"",
           p->name, p->kind, (long long)p->created_unix, p->clip_count, p->total_seconds, p->voiced_seconds,
           p->sample_rate, p->f0_median_hz, p->f0_low_hz, p->f0_high_hz, p->snr_db);
    for (const char *c = p->sources; *c; c++) {
        if (*c == '"' || *c == '\\') putchar('\\');
        if ((unsigned char)*c >= 0x20) putchar(*c);
    }
    printf("\"}%s\n", last ? "" : ",");
}

static void append_text(char *dst, size_t cap, const char *sep, const char *text) {
    size_t len = strlen(dst);
    if (len && len + strlen(sep) < cap) strcat(dst, sep), len += strlen(sep);
    snprintf(dst + len, cap - len, "%s", text);
}

/* Reads and validates every clip; fills the summary fields of info. */
static avo_status load_clips(const profile_args *a, avo_audio *clips, int count, avo_profile_info *info,
                             cli_progress *progress, avo_error *err) {
    info->snr_db = HUGE_VAL;
    double voiced = 0.0;
    for (int i = 0; i < count; i++) {
        const char *path = a->positional[i + 2];
        avo_clip_report rep;
        avo_status st = cli_read_audio(path, &clips[i], err);
        if (!st) st = avo_profile_validate_clip(&clips[i], path, &rep, err);
        if (st) return st;
        voiced += rep.voiced_seconds;
        info->total_seconds += rep.duration_seconds;
        if (rep.snr_db < info->snr_db) info->snr_db = rep.snr_db;
        char *copy = strdup(path);
        if (copy) append_text(info->sources, sizeof info->sources, ";", basename(copy));
        free(copy);
        if (rep.warning[0]) {
            char w[512];
            snprintf(w, sizeof w, "%s: %s", path, rep.warning);
            append_text(info->warnings, sizeof info->warnings, "; ", w);
            if (!a->quiet) fprintf(stderr, "autovoice: warning: %s\n", w);
        }
        cli_progress_update("reading", (i + 1.0) / count * 0.3, progress);
    }
    if (voiced >= AVO_PROFILE_MIN_VOICED_SECONDS && voiced < 60.0 && !a->quiet)
        fprintf(stderr, "autovoice: warning: only %.1f s of voiced audio; the profile will work, but a few "
                        "minutes of recordings give a closer likeness\n", voiced);
    if (voiced < AVO_PROFILE_MIN_VOICED_SECONDS)
        return avo_error_set(err, AVO_ERR_VALIDATION,
                             "the recordings hold only %.1f s of voiced audio; a profile needs at least %.0f s "
                             "(add %.1f s more singing or speech, a few minutes is best)",
                             voiced, AVO_PROFILE_MIN_VOICED_SECONDS, AVO_PROFILE_MIN_VOICED_SECONDS - voiced);
    return AVO_OK;
}

/* Whole file into memory (a profile keeps its own copy of the model). */
static avo_status read_whole(const char *path, void **data, size_t *size, avo_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return avo_error_set(err, AVO_ERR_NOT_FOUND, "%s: cannot open", path);
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    *data = n > 0 && fseek(f, 0, SEEK_SET) == 0 ? malloc((size_t)n) : NULL;
    const int ok = *data && fread(*data, 1, (size_t)n, f) == (size_t)n;
    fclose(f);
    if (!ok) {
        free(*data);
        *data = NULL;
        return avo_error_set(err, AVO_ERR_IO, "%s: cannot read (empty or unreadable)", path);
    }
    *size = (size_t)n;
    return AVO_OK;
}

/* A neural profile: the checked voice model, its index, and an analysis of any clips given. */
static avo_status create_neural(profile_args *a, const char *name, avo_profile_store *store, avo_profile_info *info,
                                cli_progress *progress, avo_error *err) {
    const int count = a->positional_count - 2;
    avo_audio *clips = count > 0 ? calloc((size_t)count, sizeof *clips) : NULL;
    avo_voice_analysis *analysis = NULL;
    void *model = NULL, *index = NULL, *an = NULL, *config = NULL;
    size_t model_size = 0, index_size = 0, an_size = 0, config_size = 0;
    char desc[256] = "";
    avo_status st = count > 0 && !clips ? avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory") : AVO_OK;
    if (!st) st = avo_neural_model_check(a->model, a->model_config, a->index, desc, sizeof desc, &info->sample_rate, err);
    if (!st) st = read_whole(a->model, &model, &model_size, err);
    if (!st && a->index) st = read_whole(a->index, &index, &index_size, err);
    if (!st && strncmp(desc, "so-vits", 7) == 0) { /* its config.json goes with it */
        char beside[4096];
        const char *slash = strrchr(a->model, '/');
        snprintf(beside, sizeof beside, "%.*sconfig.json", slash ? (int)(slash - a->model + 1) : 0, a->model);
        st = read_whole(a->model_config ? a->model_config : beside, &config, &config_size, err);
    }
    cli_progress_update("reading", 0.3, progress);
    if (!st && count > 0) {
        st = load_clips(a, clips, count, info, progress, err);
        if (!st) st = avo_voice_analysis_create(clips, count, a->preset, a->threads, &analysis, err);
        if (!st) st = avo_voice_analysis_save(analysis, &an, &an_size, err);
        if (!st) {
            avo_voice_summary sum;
            avo_voice_analysis_summary(analysis, &sum);
            info->voiced_seconds = sum.voiced_seconds;
            info->f0_median_hz = sum.f0_median_hz;
            info->f0_low_hz = sum.f0_low_hz;
            info->f0_high_hz = sum.f0_high_hz;
        }
    }
    if (!st) {
        snprintf(info->name, sizeof info->name, "%s", name);
        snprintf(info->kind, sizeof info->kind, "neural");
        info->created_unix = (int64_t)time(NULL);
        info->clip_count = count;
        char *abs = realpath(a->model, NULL);
        snprintf(info->model_path, sizeof info->model_path, "%s (%s)", abs ? abs : a->model, desc);
        free(abs);
        avo_profile_blob b[4] = {{"model.pth", model, model_size}};
        int nb = 1;
        if (config) b[nb++] = (avo_profile_blob){"config.json", config, config_size};
        if (index) b[nb++] = (avo_profile_blob){"index.npy", index, index_size};
        if (an) b[nb++] = (avo_profile_blob){"analysis.bin", an, an_size};
        st = avo_profile_store_put(store, info, b, nb, a->force, err);
    }
    for (int i = 0; i < count; i++) avo_audio_free(&clips[i]);
    free(clips), free(model), free(index), free(an), free(config);
    avo_voice_analysis_free(analysis);
    return st;
}

static int profile_create(profile_args *a) {
    if (a->positional_count < 2 || (a->positional_count < 3 && !a->model))
        return cli_usage_error("profile", "create needs a name and at least one recording (or --model)");
    if ((a->index || a->model_config) && !a->model)
        return cli_usage_error("profile", "--index and --model-config go with --model");
    const char *name = a->positional[1];
    if (!avo_profile_name_is_valid(name))
        return cli_usage_error("profile", "'%s' is not a valid profile name (letters, digits, '_' and '-', up to 63)", name);
    const int count = a->positional_count - 2;
    avo_audio *clips = calloc((size_t)(count > 0 ? count : 1), sizeof *clips);
    if (!clips) return CLI_FAILED;
    avo_error err;
    avo_error_clear(&err);
    avo_profile_store *store = NULL;
    avo_voice_analysis *analysis = NULL;
    void *blob = NULL;
    size_t blob_size = 0;
    avo_profile_info info;
    memset(&info, 0, sizeof info);
    avo_profile_info existing;
    cli_progress progress;
    cli_progress_init(&progress, "creating profile", a->quiet);
    avo_status st = avo_profile_store_open(a->store, &store, &err);
    /* Refuse early, before minutes of analysis, if the name is taken. */
    if (!st && !a->force && avo_profile_store_get(store, name, &existing, NULL) == AVO_OK)
        st = avo_error_set(&err, AVO_ERR_EXISTS,
                           "profile '%s' already exists; use --force to replace it or 'autovoice profile delete %s'",
                           name, name);
    if (!st && a->model) {
        st = create_neural(a, name, store, &info, &progress, &err);
        goto finish;
    }
    if (!st) st = load_clips(a, clips, count, &info, &progress, &err);
    if (!st) st = avo_voice_analysis_create(clips, count, a->preset, a->threads, &analysis, &err);
    cli_progress_update("analysing", 0.9, &progress);
    if (!st) st = avo_voice_analysis_save(analysis, &blob, &blob_size, &err);
    if (!st) {
        avo_voice_summary sum;
        avo_voice_analysis_summary(analysis, &sum);
        snprintf(info.name, sizeof info.name, "%s", name);
        snprintf(info.kind, sizeof info.kind, "dsp");
        info.created_unix = (int64_t)time(NULL);
        info.clip_count = count;
        info.sample_rate = sum.sample_rate;
        info.voiced_seconds = sum.voiced_seconds;
        info.f0_median_hz = sum.f0_median_hz;
        info.f0_low_hz = sum.f0_low_hz;
        info.f0_high_hz = sum.f0_high_hz;
        avo_profile_blob b = {"analysis.bin", blob, blob_size};
        st = avo_profile_store_put(store, &info, &b, 1, a->force, &err);
    }
finish:
    cli_progress_finish(&progress);
    if (!st && !a->quiet) print_info(&info);
    for (int i = 0; i < count; i++) avo_audio_free(&clips[i]);
    free(clips);
    free(blob);
    avo_voice_analysis_free(analysis);
    avo_profile_store_close(store);
    return st ? cli_fail(&err) : CLI_OK;
}

static int profile_list(profile_args *a) {
    avo_error err;
    avo_profile_store *store = NULL;
    avo_profile_info *all = NULL;
    size_t n = 0;
    avo_status st = avo_profile_store_open(a->store, &store, &err);
    if (!st) st = avo_profile_store_list(store, &all, &n, &err);
    if (!st && a->json) {
        printf("[\n");
        for (size_t i = 0; i < n; i++) print_info_json(&all[i], i + 1 == n);
        printf("]\n");
    } else if (!st) {
        if (n == 0) printf("no profiles yet in %s; create one with 'autovoice profile create NAME CLIP...'\n",
                           avo_profile_store_dir(store));
        for (size_t i = 0; i < n; i++)
            printf("%-24s %-7s %6.1f s voiced  median F0 %6.1f Hz  %d clip%s\n", all[i].name, all[i].kind,
                   all[i].voiced_seconds, all[i].f0_median_hz, all[i].clip_count, all[i].clip_count == 1 ? "" : "s");
    }
    free(all);
    avo_profile_store_close(store);
    return st ? cli_fail(&err) : CLI_OK;
}

static int profile_show_or_delete(profile_args *a, int delete) {
    if (a->positional_count != 2)
        return cli_usage_error("profile", "%s needs exactly one profile name", delete ? "delete" : "show");
    avo_error err;
    avo_profile_store *store = NULL;
    avo_profile_info info;
    avo_status st = avo_profile_store_open(a->store, &store, &err);
    if (!st && delete) st = avo_profile_store_delete(store, a->positional[1], &err);
    else if (!st) st = avo_profile_store_get(store, a->positional[1], &info, &err);
    if (!st && delete && !a->quiet) printf("deleted profile '%s'\n", a->positional[1]);
    if (!st && !delete && a->json) {
        printf("[\n");
        print_info_json(&info, 1);
        printf("]\n");
    } else if (!st && !delete) {
        print_info(&info);
    }
    avo_profile_store_close(store);
    return st ? cli_fail(&err) : CLI_OK;
}

int cli_profile(int argc, char **argv) {
    profile_args a;
    memset(&a, 0, sizeof a);
    int rc = parse_profile_args(argc, argv, &a);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (a.positional_count < 1) return cli_usage_error("profile", "say create, list, show or delete");
    const char *sub = a.positional[0];
    if (strcmp(sub, "create") == 0) return profile_create(&a);
    if (strcmp(sub, "list") == 0) return profile_list(&a);
    if (strcmp(sub, "show") == 0) return profile_show_or_delete(&a, 0);
    if (strcmp(sub, "delete") == 0) return profile_show_or_delete(&a, 1);
    return cli_usage_error("profile", "unknown subcommand '%s' (create, list, show, delete)", sub);
}
