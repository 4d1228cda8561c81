/* autovoice calibrate: INT8 calibration cache of a model from real audio (see calibrate.h).
 *
 * The FP32 model runs over the audio twice on the CPU: once to collect the |x| histograms of every
 * weight GEMM's input, once to measure each tensor's per-frame quantisation error with the chosen
 * thresholds; the tensors that keep their frames go into the cache. A valid cache is reused; one
 * for another model or format is refused unless --recalibrate. Components: content (HuBERT /
 * ContentVec) now; the pitch network and the synthesizer take other inputs (F0, masks, pitch
 * bins from the stages before them) and plug in as further calib_component entries. */
#include "cli.h"

#include "autovoice/calibrate.h"
#include "autovoice/models.h"
#include "convert/converter_internal.h" /* rvc_highpass_16k: the converter's own preprocessing */

#include <dirent.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static const char CALIBRATE_HELP[] =
    "usage: autovoice calibrate --model MODEL --data DIR|FILE [--data ...] [FILE...] -o MODEL.calib [options]\n"
    "\n"
    "Calibrates a model for INT8: runs it in FP32 over real audio (resampled to 16 kHz mono and filtered\n"
    "as the converter does), picks each activation's clipping threshold by minimising the KL divergence\n"
    "of its 2048-bin histogram to the 128-level quantised one (TensorRT's entropy calibration), keeps in\n"
    "higher precision the tensors whose quiet frames would be lost, and writes the calibration cache.\n"
    "Give speech and singing like the material you will convert: at least 30 s, a minute or more is better.\n"
    "\n"
    "  -m, --model FILE          the model (for --component content: a HuBERT / ContentVec checkpoint)\n"
    "      --component NAME      content (the content encoder; pitch and synth are not calibrated yet)\n"
    "  -d, --data PATH           calibration audio: a file, or a folder searched recursively for\n"
    "                            .wav .flac .mp3 .ogg .opus .aiff; repeatable; other arguments are files too\n"
    "  -o, --output FILE         the cache to write (default MODEL.calib)\n"
    "      --recalibrate         rebuild the cache even if a valid one exists, replace one for another model\n"
    "      --layer N             content: the layer whose features are used (default the last; RVC v1 and\n"
    "                            so-vits vec256l9 read layer 9)\n"
    "      --final-proj          content: features go through final_proj (RVC v1, vec256l9)\n"
    "      --min-seconds S       least audio accepted (default 30)\n"
    "      --max-bad-frames F    a tensor runs INT8 when at most this fraction of its frames are quantised\n"
    "                            below 20 dB SNR (default 0.01)\n"
    "      --evaluate PATH       also compare simulated INT8 with FP32 on this audio (file or folder, not the\n"
    "                            calibration audio; repeatable): per-frame cosine similarity of the outputs\n"
    "      --threads N           CPU threads (default: all cores)\n"
    "  -v, --verbose             a line per tensor: threshold, frame error, INT8 or not\n"
    "  -q, --quiet               no progress line\n";

#define PIECE_SAMPLES (30 * 16000) /* the converter's segments are about 30 s too */

typedef struct path_list {
    char **v;
    int n, cap;
} path_list;

typedef struct calib_args {
    const char *model, *output, *component;
    path_list data, eval;
    int recalibrate, layer, final_proj, verbose, quiet, threads;
    double min_seconds, max_bad;
} calib_args;

static void paths_free(path_list *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int paths_add(path_list *l, const char *p) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 32;
        char **v = realloc(l->v, sizeof *v * (size_t)cap);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = strdup(p);
    return l->v[l->n] ? (l->n++, 0) : -1;
}

static int is_audio_name(const char *name) {
    static const char *const ext[] = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".aiff", ".aif"};
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (strcasecmp(dot, ext[i]) == 0) return 1;
    return 0;
}

/* Files of path (a file, or a folder's audio files in sorted order, recursively) onto out. */
static avo_status expand_path(const char *path, path_list *out, int depth, avo_error *err) {
    struct stat sb;
    if (stat(path, &sb) != 0) return avo_error_set(err, AVO_ERR_NOT_FOUND, "%s: no such file or folder", path);
    if (!S_ISDIR(sb.st_mode)) return paths_add(out, path) ? avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory") : AVO_OK;
    if (depth > 16) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s: folders nested too deep", path);
    struct dirent **names = NULL;
    int n = scandir(path, &names, NULL, alphasort);
    if (n < 0) return avo_error_set(err, AVO_ERR_IO, "%s: cannot list the folder", path);
    avo_status st = AVO_OK;
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        if (!st && nm[0] != '.') {
            size_t len = strlen(path) + strlen(nm) + 2;
            char *full = malloc(len);
            if (!full) st = avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
            if (full) {
                snprintf(full, len, "%s/%s", path, nm);
                struct stat cs;
                if (stat(full, &cs) == 0 && S_ISDIR(cs.st_mode))
                    st = expand_path(full, out, depth + 1, err);
                else if (is_audio_name(nm))
                    st = paths_add(out, full) ? avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory") : AVO_OK;
                free(full);
            }
        }
        free(names[i]);
    }
    free(names);
    return st;
}

static avo_status expand_all(const path_list *in, path_list *out, const char *what, avo_error *err) {
    for (int i = 0; i < in->n; i++) {
        int before = out->n;
        avo_status st = expand_path(in->v[i], out, 0, err);
        if (st) return st;
        if (out->n == before)
            return avo_error_set(err, AVO_ERR_NOT_FOUND, "%s: no audio files (.wav .flac .mp3 .ogg .opus .aiff) in it", in->v[i]);
    }
    if (out->n == 0) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "no %s audio given", what);
    return AVO_OK;
}

/* ---- components ------------------------------------------------------------------------------ */

/* A model to calibrate: runs its FP32 forward pass on 16 kHz mono audio (what the components before
 * it would give it) and returns its output as rows (frames) of cols values. */
typedef struct calib_component {
    const char *name;
    avo_status (*open)(const calib_args *a, avo_backend *be, void **state, avo_error *err);
    avo_status (*run)(void *state, avo_arena *arena, const float *x16, int64_t n, avo_tensor *out, avo_error *err);
    void (*close)(void *state);
    int64_t min_samples; /* shorter pieces are skipped */
} calib_component;

typedef struct content_state {
    avo_hubert *m;
    int layer, proj;
} content_state;

static avo_status content_open(const calib_args *a, avo_backend *be, void **state, avo_error *err) {
    content_state *s = calloc(1, sizeof *s);
    if (!s) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    avo_status st = avo_hubert_load(a->model, be, &s->m, err);
    if (!st) {
        int layers = avo_hubert_layers(s->m);
        s->layer = a->layer > 0 ? a->layer : layers;
        s->proj = a->final_proj;
        if (s->layer > layers)
            st = avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s has %d layers; --layer %d is beyond them", a->model, layers,
                               s->layer);
        else if (s->proj && avo_hubert_final_dim(s->m) == 0)
            st = avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s has no final_proj; leave out --final-proj", a->model);
    }
    if (st) {
        avo_hubert_free(s->m);
        free(s);
        return st;
    }
    *state = s;
    return AVO_OK;
}

static avo_status content_run(void *state, avo_arena *arena, const float *x16, int64_t n, avo_tensor *out, avo_error *err) {
    content_state *s = state;
    return avo_hubert_extract(s->m, arena, x16, n, s->layer, s->proj, out, err);
}

static void content_close(void *state) {
    content_state *s = state;
    if (s) avo_hubert_free(s->m);
    free(s);
}

static const calib_component COMPONENTS[] = {
    {"content", content_open, content_run, content_close, 400},
};

/* ---- audio ----------------------------------------------------------------------------------- */

/* A file as the content encoder sees it: mono, 16 kHz, the RVC converter's 48 Hz high-pass. */
static avo_status load_16k(const char *path, float **x, int64_t *n, avo_error *err) {
    avo_audio in = {0}, mono = {0};
    *x = NULL;
    *n = 0;
    avo_status st = cli_read_audio(path, &in, err);
    if (!st) st = avo_audio_to_mono(&in, &mono, err);
    if (!st) {
        *n = (int64_t)llround((double)mono.frames * 16000.0 / mono.sample_rate);
        *x = malloc(sizeof(float) * (size_t)(*n > 0 ? *n : 1));
        if (!*x) st = avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory", path);
    }
    if (!st) st = avo_resample_buffer(mono.samples, mono.frames, mono.sample_rate, 16000.0, *x, *n, err);
    if (!st) rvc_highpass_16k(*x, *n);
    avo_audio_free(&in);
    avo_audio_free(&mono);
    if (st) {
        free(*x);
        *x = NULL;
        return avo_error_prefix(err, "calibration audio");
    }
    return AVO_OK;
}

typedef struct run_ctx {
    const calib_component *comp;
    void *state;
    avo_backend *be;
    avo_arena *arena;
    cli_progress *progress;
} run_ctx;

/* Runs the component over every file in pieces of at most 30 s; *seconds gets the audio used. */
static avo_status run_files(run_ctx *r, const path_list *files, const char *stage, double *seconds, avo_error *err) {
    double used = 0.0;
    for (int i = 0; i < files->n; i++) {
        float *x = NULL;
        int64_t n = 0;
        avo_status st = load_16k(files->v[i], &x, &n, err);
        for (int64_t at = 0; !st && at < n; at += PIECE_SAMPLES) {
            int64_t len = n - at < PIECE_SAMPLES ? n - at : PIECE_SAMPLES;
            if (len < r->comp->min_samples) continue;
            avo_tensor out = {0};
            avo_arena_reset(r->arena);
            st = r->comp->run(r->state, r->arena, x + at, len, &out, err);
            if (st) avo_error_prefix(err, "%s", files->v[i]);
            used += (double)len / 16000.0;
        }
        free(x);
        if (st) return st;
        cli_progress_update(stage, (double)(i + 1) / files->n, r->progress);
    }
    if (seconds) *seconds = used;
    return AVO_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Simulated INT8 against FP32 on the evaluation files: per-frame cosine similarity of the outputs. */
static avo_status evaluate(run_ctx *r, const avo_calib_table *t, const path_list *files, avo_error *err) {
    avo_calib_sim *sim = NULL;
    avo_status st = avo_calib_sim_create(t, false, &sim, err);
    double *cs = NULL;
    int64_t ncs = 0, cap = 0;
    for (int i = 0; !st && i < files->n; i++) {
        float *x = NULL, *ref = NULL;
        int64_t n = 0;
        st = load_16k(files->v[i], &x, &n, err);
        for (int64_t at = 0; !st && at < n; at += PIECE_SAMPLES) {
            int64_t len = n - at < PIECE_SAMPLES ? n - at : PIECE_SAMPLES;
            if (len < r->comp->min_samples) continue;
            avo_tensor out = {0};
            avo_arena_reset(r->arena);
            st = r->comp->run(r->state, r->arena, x + at, len, &out, err);
            int64_t cols = !st && out.ndim == 2 ? out.shape[1] : 0, rows = cols ? out.shape[0] : 0;
            free(ref);
            ref = malloc(sizeof(float) * (size_t)(rows * cols > 0 ? rows * cols : 1));
            if (!st && !ref) st = avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
            if (!st) st = avo_tensor_to_host(r->arena, &out, ref, rows * cols, err);
            avo_arena_reset(r->arena);
            if (!st) st = avo_calib_sim_attach(sim, r->be, err);
            if (!st) st = r->comp->run(r->state, r->arena, x + at, len, &out, err);
            avo_calib_sim_detach(sim, r->be);
            if (!st && (out.ndim != 2 || out.shape[0] != rows || out.shape[1] != cols))
                st = avo_error_set(err, AVO_ERR_INTERNAL, "the INT8 run gave another shape");
            if (!st && ncs + rows > cap) {
                cap = (ncs + rows) * 2;
                double *b = realloc(cs, sizeof(double) * (size_t)cap);
                if (!b) st = avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
                else cs = b;
            }
            const float *q = st ? NULL : avo_tensor_f32(&out);
            for (int64_t f = 0; q && f < rows; f++) {
                double ab = 0, aa = 0, bb = 0;
                for (int64_t c = 0; c < cols; c++) {
                    double u = ref[f * cols + c], v = q[f * cols + c];
                    ab += u * v;
                    aa += u * u;
                    bb += v * v;
                }
                cs[ncs++] = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : (aa == bb ? 1.0 : 0.0);
            }
            if (st) avo_error_prefix(err, "%s", files->v[i]);
        }
        free(ref);
        free(x);
        cli_progress_update("evaluate", (double)(i + 1) / files->n, r->progress);
    }
    if (!st && ncs > 0) {
        qsort(cs, (size_t)ncs, sizeof(double), cmp_double);
        int64_t nq = 0, ns = 0;
        avo_calib_sim_counts(sim, &nq, &ns);
        cli_progress_finish(r->progress);
        printf("simulated INT8 vs FP32 on %d evaluation file%s: %lld frames, cosine similarity median %.5f, "
               "1st percentile %.5f, min %.5f (%lld GEMM calls in INT8, %lld kept FP32)\n",
               files->n, files->n == 1 ? "" : "s", (long long)ncs, cs[ncs / 2], cs[ncs / 100], cs[0], (long long)nq,
               (long long)ns);
    }
    free(cs);
    avo_calib_sim_free(sim);
    return st;
}

/* ---- the command ----------------------------------------------------------------------------- */

enum { OPT_COMPONENT = 300, OPT_RECAL, OPT_LAYER, OPT_PROJ, OPT_MIN, OPT_MAXBAD, OPT_EVAL, OPT_THREADS };

/* CLI_OK, a usage error, or -1 after --help. */
static int parse_args(int argc, char **argv, calib_args *a) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},         {"component", required_argument, 0, OPT_COMPONENT},
        {"data", required_argument, 0, 'd'},          {"output", required_argument, 0, 'o'},
        {"recalibrate", no_argument, 0, OPT_RECAL},   {"layer", required_argument, 0, OPT_LAYER},
        {"final-proj", no_argument, 0, OPT_PROJ},     {"min-seconds", required_argument, 0, OPT_MIN},
        {"max-bad-frames", required_argument, 0, OPT_MAXBAD}, {"evaluate", required_argument, 0, OPT_EVAL},
        {"threads", required_argument, 0, OPT_THREADS}, {"verbose", no_argument, 0, 'v'},
        {"quiet", no_argument, 0, 'q'},               {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *cmd = "calibrate";
    a->component = "content";
    a->min_seconds = AVO_CALIB_MIN_SECONDS;
    a->max_bad = AVO_CALIB_MAX_BAD_FRAMES;
    optind = 1;
    opterr = 0;
    int c, rc = CLI_OK;
    while (rc == CLI_OK && (c = getopt_long(argc, argv, ":m:d:o:vqh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': a->model = optarg; break;
        case 'o': a->output = optarg; break;
        case 'd':
            if (paths_add(&a->data, optarg)) return cli_usage_error(cmd, "out of memory");
            break;
        case OPT_EVAL:
            if (paths_add(&a->eval, optarg)) return cli_usage_error(cmd, "out of memory");
            break;
        case OPT_COMPONENT: a->component = optarg; break;
        case OPT_RECAL: a->recalibrate = 1; break;
        case OPT_PROJ: a->final_proj = 1; break;
        case OPT_LAYER: rc = cli_parse_int(cmd, "--layer", optarg, 1, 1000, &a->layer); break;
        case OPT_MIN: rc = cli_parse_double(cmd, "--min-seconds", optarg, 0.1, 1e6, &a->min_seconds); break;
        case OPT_MAXBAD: rc = cli_parse_double(cmd, "--max-bad-frames", optarg, 0.0, 1.0, &a->max_bad); break;
        case OPT_THREADS: rc = cli_parse_int(cmd, "--threads", optarg, 1, 1024, &a->threads); break;
        case 'v': a->verbose = 1; break;
        case 'q': a->quiet = 1; break;
        case 'h': fputs(CALIBRATE_HELP, stdout); return -1;
        case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (rc) return rc;
    for (int i = optind; i < argc; i++)
        if (paths_add(&a->data, argv[i])) return cli_usage_error(cmd, "out of memory");
    if (!a->model) return cli_usage_error(cmd, "--model is required");
    if (a->data.n == 0) return cli_usage_error(cmd, "--data is required: a folder or files of speech and singing");
    return CLI_OK;
}

static const calib_component *find_component(const char *name) {
    for (size_t i = 0; i < sizeof COMPONENTS / sizeof COMPONENTS[0]; i++)
        if (strcmp(COMPONENTS[i].name, name) == 0) return &COMPONENTS[i];
    return NULL;
}

static void print_tensors(const avo_calib *c, const avo_calib_table *sel) {
    printf("%-48s %11s %11s %9s %9s  %s\n", "tensor", "threshold", "max |x|", "mean err", "bad", "precision");
    for (int i = 0; i < avo_calib_tensor_count(c); i++) {
        avo_calib_info in;
        avo_calib_tensor_info(c, i, &in);
        printf("%-48s %11.4g %11.4g %9.4f %8.2f%%  %s\n", in.name, in.threshold, in.max, in.mean_error, 100.0 * in.bad_frames,
               avo_calib_table_find(sel, in.name, NULL) ? "int8" : "fp");
    }
}

int cli_calibrate(int argc, char **argv) {
    calib_args a;
    memset(&a, 0, sizeof a);
    int rc = parse_args(argc, argv, &a);
    if (rc) {
        paths_free(&a.data);
        paths_free(&a.eval);
        return rc < 0 ? CLI_OK : rc;
    }
    const calib_component *comp = find_component(a.component);
    if (!comp) {
        rc = strcmp(a.component, "pitch") == 0 || strcmp(a.component, "synth") == 0
                 ? cli_usage_error("calibrate", "--component %s is not calibrated yet (only content)", a.component)
                 : cli_usage_error("calibrate", "unknown --component '%s' (content)", a.component);
        paths_free(&a.data);
        paths_free(&a.eval);
        return rc;
    }
    char *out_path = NULL;
    if (!a.output) {
        size_t len = strlen(a.model) + 7;
        out_path = malloc(len);
        if (out_path) snprintf(out_path, len, "%s.calib", a.model);
        a.output = out_path;
    }

    avo_error err = {0};
    avo_status st = AVO_OK;
    path_list files = {0}, eval_files = {0};
    avo_backend *be = NULL;
    avo_arena *arena = NULL;
    avo_calib *col = NULL;
    avo_calib_table *all = NULL, *sel = NULL, *cached = NULL;
    void *state = NULL;
    cli_progress prog;
    cli_progress_init(&prog, "calibrate", a.quiet);
    uint64_t hash = 0;

    if (!a.output) st = avo_error_set(&err, AVO_ERR_NO_MEMORY, "out of memory");
    if (!st) st = avo_calib_file_hash(a.model, &hash, &err);
    if (!st) st = expand_all(&a.data, &files, "calibration", &err);
    if (!st && a.eval.n) st = expand_all(&a.eval, &eval_files, "evaluation", &err);
    for (int i = 0; !st && i < eval_files.n; i++) {
        char *ri = realpath(eval_files.v[i], NULL);
        for (int j = 0; ri && !st && j < files.n; j++) {
            char *rj = realpath(files.v[j], NULL);
            if (rj && strcmp(ri, rj) == 0)
                st = avo_error_set(&err, AVO_ERR_INVALID_ARGUMENT,
                                   "%s is calibration audio too: evaluate on other recordings", eval_files.v[i]);
            free(rj);
        }
        free(ri);
    }
    /* a valid cache is reused; anything else there is refused unless --recalibrate */
    int reuse = 0;
    if (!st && !a.recalibrate) {
        struct stat sb;
        if (stat(a.output, &sb) == 0) {
            st = avo_calib_cache_read(a.output, &hash, &cached, &err);
            if (!st) reuse = 1;
        }
    }
    if (!st && !reuse) st = cli_check_writable(a.output, &err);
    if (!st) st = avo_backend_cpu_create(a.threads, &be, &err);
    if (!st) st = avo_arena_create(be, 64u << 20, &arena, &err);
    if (!st && (!reuse || eval_files.n)) st = comp->open(&a, be, &state, &err);
    run_ctx r = {comp, state, be, arena, &prog};

    if (!st && reuse) {
        cli_progress_finish(&prog);
        printf("%s is a valid calibration cache for this model (%d tensors in INT8): reusing it (--recalibrate "
               "rebuilds it)\n",
               a.output, avo_calib_table_count(cached));
    } else if (!st) {
        double seconds = 0.0;
        st = avo_calib_create(&col, &err);
        if (!st) st = avo_calib_attach(col, be, &err);
        if (!st) st = run_files(&r, &files, "histograms", &seconds, &err);
        avo_calib_note_audio(col, seconds);
        if (!st) st = avo_calib_compute(col, a.min_seconds, hash, &all, &err);
        if (!st) st = avo_calib_start_error_pass(col, all, &err);
        if (!st) st = run_files(&r, &files, "frame errors", NULL, &err);
        avo_calib_detach(col, be);
        if (!st) st = avo_calib_select(col, a.max_bad > 0 ? a.max_bad : 1e-12, &sel, &err);
        if (!st) st = avo_calib_cache_write(a.output, sel, &err);
        cli_progress_finish(&prog);
        if (!st) {
            if (a.verbose) print_tensors(col, sel);
            int n_all = avo_calib_tensor_count(col), n_sel = avo_calib_table_count(sel);
            printf("calibrated %s on %.1f s of audio (%d file%s): %d of %d weight GEMMs in INT8", a.model, seconds, files.n,
                   files.n == 1 ? "" : "s", n_sel, n_all);
            if (n_sel < n_all) printf(", %d kept in higher precision (their quiet frames would be lost)", n_all - n_sel);
            printf("; wrote %s\n", a.output);
            if (n_sel == 0) fprintf(stderr, "autovoice: warning: no tensor keeps its frames in INT8; INT8 would change nothing\n");
        }
    }
    if (!st && eval_files.n) st = evaluate(&r, reuse ? cached : sel, &eval_files, &err);
    cli_progress_finish(&prog);

    if (state) comp->close(state);
    avo_calib_free(col);
    avo_calib_table_free(all);
    avo_calib_table_free(sel);
    avo_calib_table_free(cached);
    avo_arena_free(arena);
    avo_backend_free(be);
    paths_free(&files);
    paths_free(&eval_files);
    paths_free(&a.data);
    paths_free(&a.eval);
    free(out_path);
    if (st) return cli_fail(&err);
    return CLI_OK;
}
