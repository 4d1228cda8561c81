/* autovoice convert: the whole pipeline from song file to converted song file. */
#include "cli.h"

#include "autovoice/pipeline.h"
#include "autovoice/profiles.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char CONVERT_HELP[] =
    "usage: autovoice convert SONG --profile NAME -o OUT [options]\n"
    "       autovoice convert SONG --model VOICE.pth -o OUT [options]\n"
    "\n"
    "Separates the vocals of SONG (WAV, FLAC, OGG or MP3), sings them in the target voice and mixes\n"
    "them back over the music. OUT is .wav or .flac (24-bit), at SONG's rate unless --sample-rate.\n"
    "The target is a profile (DSP, made from recordings, or neural, holding a voice model) or an RVC\n"
    "v1/v2 voice model given directly.\n"
    "\n"
    "  -p, --profile NAME        target voice (see 'autovoice profile list')\n"
    "  -m, --model FILE          voice model to sing with instead of a profile's: RVC v1/v2 .pth or\n"
    "                            so-vits-svc 4.0/4.1 G_*.pth\n"
    "      --model-config FILE   so-vits-svc config.json (default: the one beside the model)\n"
    "      --content-encoder F   HuBERT/ContentVec checkpoint for neural models (RVC's hubert_base.pt;\n"
    "                            default $AUTOVOICE_CONTENT_ENCODER or <data dir>/models/hubert_base.pt)\n"
    "      --pitch-model FILE    RMVPE checkpoint (rmvpe.pt) for the F0 stage (default\n"
    "                            $AUTOVOICE_PITCH_MODEL or <data dir>/models/rmvpe.pt if present, else\n"
    "                            the built-in DSP tracker)\n"
    "      --index FILE          the model's feature rows as .npy (RVC's total_fea.npy)\n"
    "      --index-rate R        0..1, share of retrieved features (default 0.75)\n"
    "      --speaker-id N        speaker of a multi-speaker model (default 0)\n"
    "      --device D            cpu | cuda (default cpu)\n"
    "      --precision P         fp32 | fp16 | int8 | bf16 for every neural component, or per component:\n"
    "                            fp16,content=int8 or content=int8,pitch=fp16,vocoder=fp16 (components:\n"
    "                            content encoder, pitch network, vocoder = voice model; default fp32;\n"
    "                            fp16 and int8 need cuda, bf16 a CPU with AVX512-BF16)\n"
    "      --calib FILE          INT8 calibration cache of the content encoder (autovoice calibrate)\n"
    "      --engine-cache DIR    where built model engines are kept and reused (default\n"
    "                            $XDG_CACHE_HOME/autovoice/engines)\n"
    "      --no-engine-cache     load every model from its checkpoint\n"
    "      --strict              fail instead of falling back to the CPU or to fp32\n"
    "  -o, --output FILE         where to write the result\n"
    "  -t, --transpose N         move the melody by N semitones (-24..24)\n"
    "      --auto-transpose      also move it by octaves into the target's range\n"
    "      --formant-shift N     extra formant shift in semitones (-12..12)\n"
    "      --retrieval-ratio R   0..1, how much of the target's timbre to take (default 1)\n"
    "      --protect P           0..0.5, keep breaths and consonants closer to the source (default 0.33)\n"
    "      --rms-mix R           0..1, 0 follows the source's loudness contour, 1 the converted one (0.5)\n"
    "      --preset P            fast | balanced | quality (default balanced)\n"
    "      --stems-dir DIR       also write vocals.wav, accompaniment.wav and converted_vocals.wav there\n"
    "      --vocals FILE         use this vocal stem (with --accompaniment) instead of separating\n"
    "      --accompaniment FILE  the matching accompaniment stem\n"
    "      --no-separation       SONG is already a dry vocal\n"
    "      --profile-json FILE   write stage timings, real-time factor and what ran as JSON\n"
    "      --sample-rate HZ      output rate (default: the input's)\n"
    "      --threads N           worker threads (default: all cores)\n"
    "      --store DIR           profile store (default $XDG_DATA_HOME/autovoice)\n"
    "  -q, --quiet               no progress line\n";

typedef struct convert_args {
    const char *song, *profile, *output, *stems_dir, *vocals, *accompaniment, *json_path, *store;
    const char *model, *content_encoder, *pitch_model, *index, *model_config;
    int sample_rate, quiet;
    avo_pipeline_config cfg;
    avo_neural_config neural;
    char model_buf[4096], index_buf[4096], encoder_buf[4096], pitch_buf[4096];
} convert_args;

enum {
    OPT_AUTO_TRANSPOSE = 256, OPT_FORMANT, OPT_RETRIEVAL, OPT_PROTECT, OPT_RMS, OPT_PRESET, OPT_STEMS, OPT_VOCALS,
    OPT_ACCOMP, OPT_NO_SEP, OPT_JSON, OPT_RATE, OPT_THREADS, OPT_STORE, OPT_ENCODER, OPT_PITCH, OPT_INDEX,
    OPT_INDEX_RATE, OPT_SPEAKER, OPT_DEVICE, OPT_STRICT, OPT_MODEL_CONFIG, OPT_PRECISION, OPT_CALIB,
    OPT_ENGINE_DIR, OPT_NO_ENGINE
};

static int parse_convert_args(int argc, char **argv, convert_args *a) {
    static const struct option opts[] = {
        {"profile", required_argument, 0, 'p'}, {"output", required_argument, 0, 'o'},
        {"transpose", required_argument, 0, 't'}, {"auto-transpose", no_argument, 0, OPT_AUTO_TRANSPOSE},
        {"formant-shift", required_argument, 0, OPT_FORMANT}, {"retrieval-ratio", required_argument, 0, OPT_RETRIEVAL},
        {"protect", required_argument, 0, OPT_PROTECT}, {"rms-mix", required_argument, 0, OPT_RMS},
        {"preset", required_argument, 0, OPT_PRESET}, {"stems-dir", required_argument, 0, OPT_STEMS},
        {"vocals", required_argument, 0, OPT_VOCALS}, {"accompaniment", required_argument, 0, OPT_ACCOMP},
        {"no-separation", no_argument, 0, OPT_NO_SEP}, {"profile-json", required_argument, 0, OPT_JSON},
        {"sample-rate", required_argument, 0, OPT_RATE}, {"threads", required_argument, 0, OPT_THREADS},
        {"store", required_argument, 0, OPT_STORE}, {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'},
        {"model", required_argument, 0, 'm'}, {"content-encoder", required_argument, 0, OPT_ENCODER},
        {"pitch-model", required_argument, 0, OPT_PITCH}, {"index", required_argument, 0, OPT_INDEX},
        {"index-rate", required_argument, 0, OPT_INDEX_RATE}, {"speaker-id", required_argument, 0, OPT_SPEAKER},
        {"device", required_argument, 0, OPT_DEVICE}, {"strict", no_argument, 0, OPT_STRICT},
        {"model-config", required_argument, 0, OPT_MODEL_CONFIG}, {"precision", required_argument, 0, OPT_PRECISION},
        {"calib", required_argument, 0, OPT_CALIB}, {"engine-cache", required_argument, 0, OPT_ENGINE_DIR},
        {"no-engine-cache", no_argument, 0, OPT_NO_ENGINE},
        {0, 0, 0, 0}};
    avo_pipeline_config_default(&a->cfg);
    avo_neural_config_default(&a->neural);
    avo_convert_options *c = &a->cfg.convert;
    const char *cmd = "convert";
    optind = 1;
    opterr = 0;
    int ch, rc = CLI_OK;
    while (rc == CLI_OK && (ch = getopt_long(argc, argv, ":p:o:t:m:qh", opts, NULL)) != -1) {
        switch (ch) {
        case 'p': a->profile = optarg; break;
        case 'o': a->output = optarg; break;
        case 't': rc = cli_parse_double(cmd, "--transpose", optarg, -24, 24, &c->transpose_semitones); break;
        case OPT_AUTO_TRANSPOSE: c->auto_transpose = 1; break;
        case OPT_FORMANT: rc = cli_parse_double(cmd, "--formant-shift", optarg, -12, 12, &c->formant_shift_semitones); break;
        case OPT_RETRIEVAL: rc = cli_parse_double(cmd, "--retrieval-ratio", optarg, 0, 1, &c->retrieval_ratio); break;
        case OPT_PROTECT: rc = cli_parse_double(cmd, "--protect", optarg, 0, 0.5, &c->protect); break;
        case OPT_RMS: rc = cli_parse_double(cmd, "--rms-mix", optarg, 0, 1, &c->rms_mix); break;
        case OPT_PRESET:
            if (avo_preset_parse(optarg, &a->cfg.preset))
                rc = cli_usage_error(cmd, "--preset must be fast, balanced or quality, got '%s'", optarg);
            break;
        case OPT_STEMS: a->stems_dir = optarg; break;
        case OPT_VOCALS: a->vocals = optarg; break;
        case OPT_ACCOMP: a->accompaniment = optarg; break;
        case OPT_NO_SEP: a->cfg.skip_separation = 1; break;
        case OPT_JSON: a->json_path = optarg; break;
        case OPT_RATE: rc = cli_parse_int(cmd, "--sample-rate", optarg, 8000, 192000, &a->sample_rate); break;
        case OPT_THREADS: rc = cli_parse_int(cmd, "--threads", optarg, 1, 256, &a->cfg.threads); break;
        case OPT_STORE: a->store = optarg; break;
        case 'm': a->model = optarg; break;
        case OPT_ENCODER: a->content_encoder = optarg; break;
        case OPT_PITCH: a->pitch_model = optarg; break;
        case OPT_INDEX: a->index = optarg; break;
        case OPT_MODEL_CONFIG: a->model_config = optarg; break;
        case OPT_INDEX_RATE: rc = cli_parse_double(cmd, "--index-rate", optarg, 0, 1, &a->neural.index_rate); break;
        case OPT_SPEAKER: rc = cli_parse_int(cmd, "--speaker-id", optarg, 0, 100000, &a->neural.speaker_id); break;
        case OPT_DEVICE:
            if (strcmp(optarg, "cpu") != 0 && strcmp(optarg, "cuda") != 0)
                rc = cli_usage_error(cmd, "--device must be cpu or cuda, got '%s'", optarg);
            a->neural.device = optarg;
            break;
        case OPT_STRICT: a->neural.strict = 1; break;
        case OPT_PRECISION: {
            avo_error perr = {0};
            if (avo_neural_parse_precision(optarg, &a->neural, &perr) != AVO_OK)
                rc = cli_usage_error(cmd, "--precision: %s", perr.message);
            break;
        }
        case OPT_CALIB: a->neural.calibration_path = optarg; break;
        case OPT_ENGINE_DIR: a->neural.engine_cache_dir = optarg; break;
        case OPT_NO_ENGINE: a->neural.engine_cache = 0; break;
        case 'q': a->quiet = 1; break;
        case 'h': fputs(CONVERT_HELP, stdout); return -1;
        case ':': rc = cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]); break;
        default: rc = cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]); break;
        }
    }
    if (rc) return rc;
    if (optind < argc) a->song = argv[optind++];
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!a->song && !a->vocals) return cli_usage_error(cmd, "no song given");
    if (!a->profile && !a->model) return cli_usage_error(cmd, "no target voice: add --profile NAME or --model FILE");
    if (!a->output) return cli_usage_error(cmd, "no output file: add -o OUT.wav");
    if ((a->vocals != NULL) != (a->accompaniment != NULL))
        return cli_usage_error(cmd, "--vocals and --accompaniment go together");
    return CLI_OK;
}

/* Checks every output location before any long work starts. */
static avo_status check_outputs(const convert_args *a, avo_error *err) {
    avo_status st = cli_check_writable(a->output, err);
    const char *ext = strrchr(a->output, '.');
    if (!st && (!ext || (strcasecmp(ext, ".wav") != 0 && strcasecmp(ext, ".flac") != 0)))
        st = avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s: output must end in .wav or .flac", a->output);
    if (!st && a->json_path) st = cli_check_writable(a->json_path, err);
    if (!st && a->stems_dir) {
        struct stat sb;
        if (stat(a->stems_dir, &sb) != 0 && mkdir(a->stems_dir, 0755) != 0)
            st = avo_error_set(err, AVO_ERR_IO, "%s: cannot create the stems folder", a->stems_dir);
        else if (access(a->stems_dir, W_OK) != 0)
            st = avo_error_set(err, AVO_ERR_IO, "%s: stems folder is not writable", a->stems_dir);
    }
    return st;
}

/* A file that must exist, as a clear error naming the option it came from. */
static avo_status check_readable(const char *path, const char *what, avo_error *err) {
    struct stat sb;
    if (stat(path, &sb) != 0)
        return avo_error_set(err, AVO_ERR_NOT_FOUND, "%s: %s not found", path, what);
    if (S_ISDIR(sb.st_mode)) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s: %s is a folder", path, what);
    if (access(path, R_OK) != 0) return avo_error_set(err, AVO_ERR_IO, "%s: %s is not readable", path, what);
    return AVO_OK;
}

/* An option, else an environment variable, else a file of the data folder's models/ if present. */
static const char *default_model_file(const char *given, const char *env_name, const char *file, char *buf,
                                      size_t cap) {
    if (given) return given;
    const char *env = getenv(env_name);
    if (env && *env) return env;
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (xdg && *xdg) snprintf(buf, cap, "%s/autovoice/models/%s", xdg, file);
    else if (home && *home) snprintf(buf, cap, "%s/.local/share/autovoice/models/%s", home, file);
    else return NULL;
    return access(buf, R_OK) == 0 ? buf : NULL;
}

/* The profile (if any): a DSP analysis, and for neural profiles the stored voice model and index. */
static avo_status load_target(convert_args *a, avo_voice_analysis **target, avo_error *err) {
    if (!a->profile) return AVO_OK;
    avo_profile_store *store = NULL;
    avo_profile_info info;
    void *blob = NULL;
    size_t size = 0;
    char probe[4096];
    avo_status st = avo_profile_store_open(a->store, &store, err);
    if (!st) st = avo_profile_store_get(store, a->profile, &info, err);
    if (!st && strcmp(info.kind, "neural") == 0) {
        if (!a->model) {
            st = avo_profile_store_blob_path(store, a->profile, "model.pth", a->model_buf, sizeof a->model_buf, err);
            if (!st) a->model = a->model_buf;
            if (!st && !a->index &&
                avo_profile_store_blob_path(store, a->profile, "index.npy", a->index_buf, sizeof a->index_buf,
                                            NULL) == AVO_OK)
                a->index = a->index_buf;
        }
    } else if (!st && strcmp(info.kind, "dsp") != 0) {
        st = avo_error_set(err, AVO_ERR_UNSUPPORTED, "profile '%s' is a %s profile, which this build cannot run",
                           a->profile, info.kind);
    }
    /* A neural profile may also hold an analysis of recordings (for --auto-transpose). */
    if (!st && (strcmp(info.kind, "dsp") == 0 ||
                avo_profile_store_blob_path(store, a->profile, "analysis.bin", probe, sizeof probe, NULL) ==
                    AVO_OK)) {
        st = avo_profile_store_read_blob(store, a->profile, "analysis.bin", &blob, &size, err);
        if (!st) st = avo_voice_analysis_load(blob, size, target, err);
    }
    if (st) avo_error_prefix(err, "profile '%s'", a->profile);
    free(blob);
    avo_profile_store_close(store);
    return st;
}

/* With a voice model: the content encoder, pitch model and index it needs, checked before any work. */
static avo_status prepare_neural(convert_args *a, avo_error *err) {
    if (!a->model) return AVO_OK;
    avo_status st = check_readable(a->model, "voice model", err);
    const char *enc = default_model_file(a->content_encoder, "AUTOVOICE_CONTENT_ENCODER", "hubert_base.pt",
                                         a->encoder_buf, sizeof a->encoder_buf);
    if (!st && !enc)
        st = avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                           "neural voice models need a content encoder: give --content-encoder hubert_base.pt (RVC's "
                           "assets/hubert/hubert_base.pt) or put it in the data folder's models/");
    if (!st) st = check_readable(enc, "content encoder", err);
    const char *pitch = default_model_file(a->pitch_model, "AUTOVOICE_PITCH_MODEL", "rmvpe.pt", a->pitch_buf,
                                           sizeof a->pitch_buf);
    if (!st && pitch) st = check_readable(pitch, "pitch model", err);
    if (!st && a->index) st = check_readable(a->index, "feature index", err);
    if (!st && a->model_config) st = check_readable(a->model_config, "model config", err);
    if (st) return st;
    a->neural.model_path = a->model;
    a->neural.content_encoder_path = enc;
    a->neural.index_path = a->index;
    a->neural.model_config_path = a->model_config;
    a->cfg.neural = &a->neural;
    a->cfg.pitch_model_path = pitch;
    return AVO_OK;
}

static avo_status write_stems(const char *dir, const avo_pipeline_output *out, avo_error *err) {
    const struct { const char *name; const avo_audio *audio; } stems[] = {
        {"vocals.wav", &out->vocals}, {"accompaniment.wav", &out->accompaniment}, {"converted_vocals.wav", &out->converted}};
    for (size_t i = 0; i < sizeof stems / sizeof stems[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, stems[i].name);
        avo_status st = avo_audio_write(path, stems[i].audio, AVO_AUDIO_WAV_PCM24, err);
        if (st) return st;
    }
    return AVO_OK;
}

static avo_status write_result(const convert_args *a, avo_pipeline_output *out, const avo_run_metadata *meta,
                               avo_error *err) {
    avo_status st = AVO_OK;
    const avo_audio *result = &out->mix;
    avo_audio resampled = {0};
    if (a->sample_rate && a->sample_rate != out->mix.sample_rate) {
        st = avo_audio_resample(&out->mix, a->sample_rate, &resampled, err);
        result = &resampled;
    }
    if (!st && a->stems_dir) st = write_stems(a->stems_dir, out, err);
    char *json = NULL;
    if (!st && a->json_path) st = avo_run_metadata_to_json(meta, &json, err);
    /* The song file goes last among the large writes, the JSON after it: a failure leaves neither. */
    if (!st) st = avo_audio_write(a->output, result, AVO_AUDIO_AUTO, err);
    if (!st && json) {
        st = cli_write_text_atomic(a->json_path, json, err);
        if (st) remove(a->output);
    }
    free(json);
    avo_audio_free(&resampled);
    return st;
}

int cli_convert(int argc, char **argv) {
    convert_args a;
    memset(&a, 0, sizeof a);
    int rc = parse_convert_args(argc, argv, &a);
    if (rc) return rc < 0 ? CLI_OK : rc;
    avo_error err;
    avo_error_clear(&err);
    avo_audio song = {0}, vocals = {0}, accompaniment = {0};
    avo_voice_analysis *target = NULL;
    avo_pipeline_output out;
    memset(&out, 0, sizeof out);
    avo_run_metadata meta;
    avo_status st = check_outputs(&a, &err);
    if (!st) st = load_target(&a, &target, &err);
    if (!st) st = prepare_neural(&a, &err);
    if (!st && a.vocals) {
        st = cli_read_audio(a.vocals, &vocals, &err);
        if (!st) st = cli_read_audio(a.accompaniment, &accompaniment, &err);
    } else if (!st) {
        st = cli_read_audio(a.song, &song, &err);
    }
    cli_progress progress;
    cli_progress_init(&progress, "converting", a.quiet);
    if (!st) {
        a.cfg.progress = cli_progress_update;
        a.cfg.keep_stems = a.stems_dir != NULL;
        a.cfg.progress_user = &progress;
        avo_pipeline_input in = {a.vocals ? &accompaniment : &song, a.vocals ? &vocals : NULL,
                                 a.vocals ? &accompaniment : NULL, target};
        /* The song is not needed afterwards: the pipeline may separate it in place. */
        st = a.vocals ? avo_pipeline_run(&a.cfg, &in, &out, &meta, &err)
                      : avo_pipeline_run_consuming(&a.cfg, &in, &song, &out, &meta, &err);
        if (!st) snprintf(meta.input, sizeof meta.input, "%s", a.vocals ? a.vocals : a.song);
    }
    cli_progress_finish(&progress);
    if (!st && meta.device_fallback[0]) fprintf(stderr, "autovoice: warning: %s\n", meta.device_fallback);
    if (!st) st = write_result(&a, &out, &meta, &err);
    if (!st && !a.quiet)
        fprintf(stderr, "wrote %s (%.1f s of audio in %.2f s, RTF %.3f; %s, transpose %+.1f)\n", a.output,
                meta.audio_duration_seconds, meta.total_ms / 1000.0, meta.rtf, meta.converter,
                meta.applied_transpose_semitones);
    avo_pipeline_output_free(&out);
    avo_audio_free(&song);
    avo_audio_free(&vocals);
    avo_audio_free(&accompaniment);
    avo_voice_analysis_free(target);
    return st ? cli_fail(&err) : CLI_OK;
}
