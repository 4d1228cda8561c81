/* Validates the evaluator's speaker back end on the shared recordings: can it tell speakers apart?
 *
 * Clips: every file under singing/ and speech/. Speaker labels: nus48e_<SINGER>, libri_<SPEAKER> (before
 * the first '-'), vctk_<pXXX>, and each vocadito file is its own singer. Trials: enrol on one clip, test
 * on another clip; same speaker = genuine, other speaker = impostor (both orders for LLR, one for the
 * symmetric cosine). Reported: equal error rate (all trials, singing-only, speech-only) and closed-set
 * identification accuracy (each clip of a speaker with 2+ clips against one enrolment clip per speaker).
 *
 * Two UBM protocols:
 *   heldout: speakers split into two halves (alternating in sorted order); the UBM trained on one half
 *            scores trials among the other half (the honest figure: UBM never saw the speakers);
 *   all:     one UBM on every clip, as `autovoice eval` trains it (trial clips were in UBM training).
 *
 * Content bias: an unchanged vocoder resynthesis scored against its own recording and against the same
 * singer's other clip, and the similarity ratio a perfect conversion could reach (content_bias()).
 *
 * Also times the evaluator as the CLI runs it (UBM training + one evaluation), medians of --speed-runs.
 *
 * usage: bench_eval_speaker [--out FILE.json] [--components 32,64] [--relevance R] [--threads N] [--no-llr]
 *                           [--speed-runs N] [--no-f0-smoothing] */
#include "autovoice/eval.h"
#include "autovoice/vocoder.h"
#include "bench_common.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <sys/stat.h>

#define MAX_CLIPS 256

typedef struct clip {
    char name[260];
    char speaker[64];
    int spk;     /* speaker index */
    int singing; /* 1 singing, 0 speech */
    avo_audio audio;
} clip;

static clip clips[MAX_CLIPS];
static int nclips;
static char speakers[MAX_CLIPS][64];
static int nspeakers;

static void label_of(const char *name, char *spk, size_t n) {
    snprintf(spk, n, "%s", name);
    char *dot = strrchr(spk, '.');
    if (dot) *dot = 0;
    if (strncmp(spk, "vocadito", 8) == 0) return; /* each file is another singer */
    if (strncmp(spk, "libri_", 6) == 0) {
        char *dash = strchr(spk, '-');
        if (dash) *dash = 0;
        return;
    }
    char *us = strrchr(spk, '_');
    if (us && us != spk) *us = 0;
}

static int cmp_name(const void *a, const void *b) { return strcmp(((const clip *)a)->name, ((const clip *)b)->name); }

static void load_all(const char *data) {
    const char *sub[2] = {"singing", "speech"};
    for (int s = 0; s < 2; s++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", data, sub[s]);
        DIR *dp = opendir(dir);
        if (!dp) {
            fprintf(stderr, "bench_eval_speaker: cannot open %s (set AVO_TEST_DATA)\n", dir);
            exit(1);
        }
        struct dirent *de;
        int first = nclips;
        while ((de = readdir(dp)) && nclips < MAX_CLIPS) {
            const char *dot = strrchr(de->d_name, '.');
            if (!dot || (strcmp(dot, ".flac") && strcmp(dot, ".wav"))) continue;
            clip *c = &clips[nclips++];
            snprintf(c->name, sizeof c->name, "%s", de->d_name);
            c->singing = s == 0;
        }
        closedir(dp);
        qsort(clips + first, (size_t)(nclips - first), sizeof(clip), cmp_name);
    }
    for (int i = 0; i < nclips; i++) {
        clip *c = &clips[i];
        char rel[300];
        snprintf(rel, sizeof rel, "%s/%s", c->singing ? "singing" : "speech", c->name);
        bench_load(rel, 16000, 1, &c->audio);
        label_of(c->name, c->speaker, sizeof c->speaker);
        c->spk = -1;
        for (int k = 0; k < nspeakers; k++)
            if (strcmp(speakers[k], c->speaker) == 0) c->spk = k;
        if (c->spk < 0) {
            snprintf(speakers[nspeakers], sizeof speakers[0], "%s", c->speaker);
            c->spk = nspeakers++;
        }
    }
}

/* ---- metrics ---- */

typedef struct trial {
    double score;
    int genuine;
    int domain;    /* 1 singing-singing, 0 speech-speech, -1 mixed */
    int same_song; /* NUS-48E clips of the same song number: same content */
} trial;

/* NUS-48E file names end in the song number; different singers share songs. */
static int same_nus_song(const clip *a, const clip *b) {
    if (strncmp(a->name, "nus48e_", 7) || strncmp(b->name, "nus48e_", 7)) return 0;
    const char *x = strrchr(a->name, '_'), *y = strrchr(b->name, '_');
    return x && y && strcmp(x, y) == 0;
}

static int cmp_score(const void *a, const void *b) {
    double x = ((const trial *)a)->score, y = ((const trial *)b)->score;
    return (x > y) - (x < y);
}

/* EER by sweeping the threshold over sorted scores; domain -2 = all trials. NaN if a class is empty. */
static double eer_of(const trial *all, int n, int domain) {
    trial *t = malloc(sizeof(trial) * (size_t)(n > 0 ? n : 1));
    int m = 0, ng = 0, ni = 0;
    for (int i = 0; i < n; i++)
        if (domain == -2 || all[i].domain == domain) {
            t[m++] = all[i];
            ng += all[i].genuine;
            ni += !all[i].genuine;
        }
    if (ng == 0 || ni == 0) {
        free(t);
        return NAN;
    }
    qsort(t, (size_t)m, sizeof(trial), cmp_score);
    /* threshold below t[i]: genuine rejected = genuine among t[0..i-1], impostors accepted = rest */
    int grej = 0, iacc = ni;
    double best = 1.0;
    for (int i = 0; i <= m; i++) {
        /* EER at the crossing: the smallest max(FRR, FAR) over thresholds */
        const double frr = (double)grej / ng, far = (double)iacc / ni, mx = frr > far ? frr : far;
        if (mx < best) best = mx;
        if (i < m) {
            if (t[i].genuine) grej++;
            else iacc--;
        }
    }
    free(t);
    return best;
}

typedef struct result {
    const char *protocol;
    int components;
    const char *scoring;
    double eer, eer_singing, eer_speech, id_acc;
    double mean_genuine_singing, mean_impostor_same_song, mean_impostor_other_song; /* content bias check */
    int same_song_trials;
    int genuine, impostor, id_trials;
    double seconds_train;
} result;

/* Scores of clip pairs (i, j) within the set mask, for one model: cosine and (optionally) LLR. */
typedef struct scorer {
    const avo_evaluator *m;
    float *emb; /* nclips * dim, for clips in the set */
} scorer;

static double score_pair(const scorer *s, int llr, int i, int j) {
    if (!llr) {
        const int dim = avo_speaker_dim(s->m);
        return avo_speaker_similarity(s->m, s->emb + (size_t)i * dim, s->emb + (size_t)j * dim);
    }
    double v = 0;
    avo_error err;
    if (avo_speaker_llr(s->m, &clips[i].audio, &clips[j].audio, &v, &err)) {
        fprintf(stderr, "bench_eval_speaker: %s\n", err.message);
        exit(1);
    }
    return v;
}

/* Adds trials among clips with in_set[i] and identification outcomes. */
static void run_trials(const scorer *s, int llr, const unsigned char *in_set, trial **trials, int *nt, int *cap,
                       int *id_ok, int *id_n) {
    /* full score matrix (enrol row, test column) */
    double *S = malloc(sizeof(double) * (size_t)nclips * nclips);
    for (int i = 0; i < nclips; i++)
        for (int j = 0; j < nclips; j++) {
            S[i * nclips + j] = NAN;
            if (!in_set[i] || !in_set[j] || i == j) continue;
            if (!llr && j < i) {
                S[i * nclips + j] = S[j * nclips + i];
                continue;
            }
            S[i * nclips + j] = score_pair(s, llr, i, j);
        }
    for (int i = 0; i < nclips; i++)
        for (int j = 0; j < nclips; j++) {
            if (isnan(S[i * nclips + j]) || (!llr && j < i)) continue;
            if (*nt == *cap) {
                *cap = *cap ? 2 * *cap : 1024;
                *trials = realloc(*trials, sizeof(trial) * (size_t)*cap);
            }
            trial *t = &(*trials)[(*nt)++];
            t->score = S[i * nclips + j];
            t->genuine = clips[i].spk == clips[j].spk;
            t->domain = clips[i].singing == clips[j].singing ? clips[i].singing : -1;
            t->same_song = same_nus_song(&clips[i], &clips[j]);
        }
    /* identification: test clip j; enrolment = first other clip of each speaker in the set */
    for (int j = 0; j < nclips; j++) {
        if (!in_set[j]) continue;
        int has_other = 0;
        for (int i = 0; i < nclips; i++) has_other |= in_set[i] && i != j && clips[i].spk == clips[j].spk;
        if (!has_other) continue;
        int best_spk = -1;
        double best = -INFINITY;
        for (int k = 0; k < nspeakers; k++) {
            int enrol = -1;
            for (int i = 0; i < nclips && enrol < 0; i++)
                if (in_set[i] && i != j && clips[i].spk == k) enrol = i;
            if (enrol < 0) continue;
            const double v = S[enrol * nclips + j];
            if (v > best) {
                best = v;
                best_spk = k;
            }
        }
        *id_ok += best_spk == clips[j].spk;
        (*id_n)++;
    }
    free(S);
}

static void embed_set(const avo_evaluator *m, const unsigned char *in_set, float *emb) {
    const int dim = avo_speaker_dim(m);
    for (int i = 0; i < nclips; i++) {
        if (!in_set[i]) continue;
        avo_error err;
        if (avo_speaker_embed(m, &clips[i].audio, emb + (size_t)i * dim, &err)) {
            fprintf(stderr, "bench_eval_speaker: %s: %s\n", clips[i].name, err.message);
            exit(1);
        }
    }
}

static avo_evaluator *train_on(const unsigned char *use, const avo_speaker_config *cfg, double *secs) {
    avo_audio *set = malloc(sizeof(avo_audio) * (size_t)nclips);
    int n = 0;
    for (int i = 0; i < nclips; i++)
        if (use[i]) set[n++] = clips[i].audio;
    avo_evaluator *m;
    avo_error err;
    const double t0 = avo_now_ms();
    if (avo_evaluator_create(set, n, cfg, &m, &err)) {
        fprintf(stderr, "bench_eval_speaker: %s\n", err.message);
        exit(1);
    }
    *secs = (avo_now_ms() - t0) / 1000.0;
    free(set);
    return m;
}

static void evaluate(const char *protocol, const avo_speaker_config *cfg, int llr, result *r) {
    trial *trials = NULL;
    int nt = 0, cap = 0, id_ok = 0, id_n = 0;
    double train_s = 0.0;
    unsigned char use[MAX_CLIPS], test[MAX_CLIPS];
    const int folds = strcmp(protocol, "heldout") == 0 ? 2 : 1;
    for (int f = 0; f < folds; f++) {
        for (int i = 0; i < nclips; i++) {
            if (folds == 1) {
                use[i] = test[i] = 1;
            } else {
                test[i] = clips[i].spk % 2 == f;
                use[i] = !test[i];
            }
        }
        double s;
        avo_evaluator *m = train_on(use, cfg, &s);
        train_s += s;
        scorer sc = {m, malloc(sizeof(float) * (size_t)avo_speaker_dim(m) * nclips)};
        embed_set(m, test, sc.emb);
        run_trials(&sc, llr, test, &trials, &nt, &cap, &id_ok, &id_n);
        free(sc.emb);
        avo_evaluator_free(m);
    }
    r->protocol = protocol;
    r->components = cfg->components;
    r->scoring = llr ? "llr" : "cosine";
    r->eer = eer_of(trials, nt, -2);
    r->eer_singing = eer_of(trials, nt, 1);
    r->eer_speech = eer_of(trials, nt, 0);
    r->genuine = r->impostor = 0;
    for (int i = 0; i < nt; i++) {
        r->genuine += trials[i].genuine;
        r->impostor += !trials[i].genuine;
    }
    double sg = 0, ss = 0, so = 0;
    int ng = 0, ns = 0, no = 0;
    for (int i = 0; i < nt; i++) {
        if (trials[i].domain != 1) continue;
        if (trials[i].genuine) sg += trials[i].score, ng++;
        else if (trials[i].same_song) ss += trials[i].score, ns++;
        else so += trials[i].score, no++;
    }
    r->mean_genuine_singing = ng ? sg / ng : NAN;
    r->mean_impostor_same_song = ns ? ss / ns : NAN;
    r->mean_impostor_other_song = no ? so / no : NAN;
    r->same_song_trials = ns;
    r->id_acc = id_n ? (double)id_ok / id_n : NAN;
    r->id_trials = id_n;
    r->seconds_train = train_s / folds;
    free(trials);
}

static void print_row(const result *r) {
    printf("%-8s %5d  %-7s  %6.1f%%  %6.1f%%  %6.1f%%  %6.1f%% (%d)  %5d/%-6d  %6.2f   %6.3f %6.3f %6.3f (%d)\n",
           r->protocol, r->components, r->scoring, 100 * r->eer, 100 * r->eer_singing, 100 * r->eer_speech,
           100 * r->id_acc, r->id_trials, r->genuine, r->impostor, r->seconds_train, r->mean_genuine_singing,
           r->mean_impostor_same_song, r->mean_impostor_other_song, r->same_song_trials);
    fflush(stdout);
}

static cJSON *row_json(const result *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "ubm", r->protocol);
    cJSON_AddNumberToObject(o, "components", r->components);
    cJSON_AddStringToObject(o, "scoring", r->scoring);
    cJSON_AddNumberToObject(o, "eer", r->eer);
    if (isfinite(r->eer_singing)) cJSON_AddNumberToObject(o, "eer_singing", r->eer_singing);
    if (isfinite(r->eer_speech)) cJSON_AddNumberToObject(o, "eer_speech", r->eer_speech);
    cJSON_AddNumberToObject(o, "id_accuracy", r->id_acc);
    cJSON_AddNumberToObject(o, "id_trials", r->id_trials);
    cJSON_AddNumberToObject(o, "genuine_trials", r->genuine);
    cJSON_AddNumberToObject(o, "impostor_trials", r->impostor);
    cJSON_AddNumberToObject(o, "ubm_train_seconds", r->seconds_train);
    if (isfinite(r->mean_impostor_same_song)) {
        cJSON_AddNumberToObject(o, "mean_score_genuine_singing", r->mean_genuine_singing);
        cJSON_AddNumberToObject(o, "mean_score_impostor_same_song", r->mean_impostor_same_song);
        cJSON_AddNumberToObject(o, "mean_score_impostor_other_song", r->mean_impostor_other_song);
        cJSON_AddNumberToObject(o, "same_song_impostor_trials", r->same_song_trials);
    }
    return o;
}

/* Wall time of the evaluator as the CLI runs it: UBM training on the shared folder, then one evaluation
 * (12 s output and source, one held-out source clip, two target clips). Medians of `runs`. */
static void time_evaluator(int runs, int threads, cJSON *doc) {
    double train_ms[16], eval_ms[16];
    if (runs > 16) runs = 16;
    int src = -1, src_ref = -1, out = -1, t0 = -1, t1 = -1;
    for (int i = 0; i < nclips; i++) {
        if (!strcmp(clips[i].name, "nus48e_MPOL_11.flac")) src = i;
        if (!strcmp(clips[i].name, "nus48e_MPOL_20.flac")) src_ref = i;
        if (!strcmp(clips[i].name, "nus48e_JLEE_15.flac")) out = i;
        if (!strcmp(clips[i].name, "nus48e_JLEE_11.flac")) t0 = i;
        if (!strcmp(clips[i].name, "nus48e_ZHIY_03.flac")) t1 = i;
    }
    if (src < 0 || src_ref < 0 || out < 0 || t0 < 0 || t1 < 0) return;
    avo_audio targets[2] = {clips[t0].audio, clips[out].audio};
    for (int r = 0; r < runs; r++) {
        avo_speaker_config cfg;
        avo_speaker_config_default(&cfg);
        cfg.threads = threads;
        avo_evaluator *m;
        avo_error err;
        double t = avo_now_ms();
        if (avo_evaluator_create_from_dir(bench_data_dir(), NULL, 0, &cfg, &m, &err)) {
            fprintf(stderr, "bench_eval_speaker: %s\n", err.message);
            exit(1);
        }
        train_ms[r] = avo_now_ms() - t;
        avo_eval_options opt;
        avo_eval_options_default(&opt);
        opt.threads = threads;
        avo_eval_result res;
        t = avo_now_ms();
        if (avo_eval_run(m, &clips[out].audio, &clips[src].audio, &clips[src_ref].audio, 1, targets, 2, &opt, &res,
                         &err)) {
            fprintf(stderr, "bench_eval_speaker: %s\n", err.message);
            exit(1);
        }
        eval_ms[r] = avo_now_ms() - t;
        avo_evaluator_free(m);
    }
    const double tm = bench_median(train_ms, runs), em = bench_median(eval_ms, runs);
    printf("evaluator speed (median of %d, %d threads): UBM training on the shared folder %.2f s, one evaluation "
           "(%.1f s output) %.2f s\n", runs, threads, tm / 1000, clips[out].audio.frames / 16000.0, em / 1000);
    cJSON *o = cJSON_AddObjectToObject(doc, "speed");
    cJSON_AddNumberToObject(o, "runs", runs);
    cJSON_AddNumberToObject(o, "threads", threads);
    cJSON_AddNumberToObject(o, "ubm_train_dir_seconds_median", tm / 1000);
    cJSON_AddNumberToObject(o, "eval_run_seconds_median", em / 1000);
    cJSON_AddNumberToObject(o, "eval_output_seconds", clips[out].audio.frames / 16000.0);
}

/* Pitch robustness: a singer transposed by an octave (WORLD-class vocoder, envelope kept) is still the same
 * voice; a measure that follows the harmonics instead of the envelope would call it someone else, and a
 * converter could then "gain" similarity by transposing. For each NUS-48E singer with two clips, clip A is
 * resynthesised an octave toward the other sex (male +12, female -12) and identified among every such
 * singer's clip B (closed set); also the similarity it keeps to its own original and its MCD to clip B. */
static const char *const FEMALE[] = {"ADIZ", "MCUR", "MPOL", "MPUR", "NJAT", "PMAR"};

static void vocoder_shift(const avo_audio *a, double semitones, int threads, avo_audio *out) {
    avo_vocoder_config c;
    avo_vocoder_config_default(&c, a->sample_rate);
    c.threads = threads;
    avo_vocoder *v = NULL;
    avo_voice_params p = {0};
    avo_error err;
    if (avo_vocoder_create(&c, &v, &err) || avo_vocoder_analyze(v, a->samples, a->frames, NULL, &p, &err) ||
        avo_audio_alloc(out, a->sample_rate, 1, a->frames, &err)) {
        fprintf(stderr, "bench_eval_speaker: vocoder: %s\n", err.message);
        exit(1);
    }
    avo_voice_params_transpose(&p, semitones);
    if (avo_vocoder_synthesize(v, &p, out->samples, out->frames, &err)) {
        fprintf(stderr, "bench_eval_speaker: vocoder: %s\n", err.message);
        exit(1);
    }
    avo_voice_params_free(&p);
    avo_vocoder_free(v);
}

/* The first two clips of every NUS-48E singer that has two: a_of[i], b_of[i]; returns how many. */
static int singer_clip_pairs(int *a_of, int *b_of) {
    int n = 0;
    for (int k = 0; k < nspeakers; k++) {
        if (strncmp(speakers[k], "nus48e_", 7)) continue;
        int a = -1, b = -1;
        for (int i = 0; i < nclips; i++)
            if (clips[i].spk == k) {
                if (a < 0) a = i;
                else if (b < 0) b = i;
            }
        if (b >= 0) a_of[n] = a, b_of[n++] = b;
    }
    return n;
}

static void pitch_robustness(avo_evaluator *m, const avo_speaker_config *cfg, cJSON *doc) {
    int a_of[MAX_CLIPS], b_of[MAX_CLIPS];
    const int n = singer_clip_pairs(a_of, b_of);
    if (n < 2) return;
    const int dim = avo_speaker_dim(m);
    float *va = malloc(sizeof(float) * (size_t)dim * n), *vs = malloc(sizeof(float) * (size_t)dim * n);
    float *vb = malloc(sizeof(float) * (size_t)dim * n);
    int ok_orig = 0, ok_shift = 0;
    double keep = 0.0, mcd_orig = 0.0, mcd_shift = 0.0;
    avo_error err;
    for (int i = 0; i < n; i++) {
        const clip *ca = &clips[a_of[i]], *cb = &clips[b_of[i]];
        int female = 0;
        for (size_t f = 0; f < sizeof FEMALE / sizeof FEMALE[0]; f++) female |= strstr(ca->speaker, FEMALE[f]) != NULL;
        avo_audio sh;
        vocoder_shift(&ca->audio, female ? -12.0 : 12.0, cfg->threads, &sh);
        double m0 = 0, m1 = 0;
        if (avo_speaker_embed(m, &ca->audio, va + (size_t)i * dim, &err) ||
            avo_speaker_embed(m, &sh, vs + (size_t)i * dim, &err) ||
            avo_speaker_embed(m, &cb->audio, vb + (size_t)i * dim, &err) ||
            avo_eval_mcd_nn(m, &ca->audio, NULL, &cb->audio, 1, &m0, &err) ||
            avo_eval_mcd_nn(m, &sh, NULL, &cb->audio, 1, &m1, &err)) {
            fprintf(stderr, "bench_eval_speaker: %s\n", err.message);
            exit(1);
        }
        keep += avo_speaker_similarity(m, vs + (size_t)i * dim, va + (size_t)i * dim);
        mcd_orig += m0;
        mcd_shift += m1;
        avo_audio_free(&sh);
    }
    for (int i = 0; i < n; i++) {
        int best_o = -1, best_s = -1;
        double so = -1, ss = -1;
        for (int j = 0; j < n; j++) {
            const double o = avo_speaker_similarity(m, va + (size_t)i * dim, vb + (size_t)j * dim);
            const double s = avo_speaker_similarity(m, vs + (size_t)i * dim, vb + (size_t)j * dim);
            if (o > so) so = o, best_o = j;
            if (s > ss) ss = s, best_s = j;
        }
        ok_orig += best_o == i;
        ok_shift += best_s == i;
    }
    printf("pitch robustness (%d singers, octave toward the other sex): identified %d/%d as themselves (unshifted "
           "%d/%d), similarity kept to own original %.3f, MCD to own other clip %.2f dB (unshifted %.2f)\n",
           n, ok_shift, n, ok_orig, n, keep / n, mcd_shift / n, mcd_orig / n);
    cJSON *o = cJSON_AddObjectToObject(doc, "pitch_robustness");
    cJSON_AddNumberToObject(o, "singers", n);
    cJSON_AddNumberToObject(o, "id_accuracy_shifted", (double)ok_shift / n);
    cJSON_AddNumberToObject(o, "id_accuracy_unshifted", (double)ok_orig / n);
    cJSON_AddNumberToObject(o, "mean_sim_shifted_to_original", keep / n);
    cJSON_AddNumberToObject(o, "mean_mcd_shifted_db", mcd_shift / n);
    cJSON_AddNumberToObject(o, "mean_mcd_unshifted_db", mcd_orig / n);
    free(va);
    free(vs);
    free(vb);
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_d(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Supervector mean similarity of vec to the two halves of clip b, and the halves' own similarity (what
 * avo_eval_run computes for a lone target or held-out source clip). */
static double to_halves(const avo_evaluator *m, const float *vec, const avo_audio *b, double *self) {
    const int dim = avo_speaker_dim(m);
    float *vh = malloc(sizeof(float) * (size_t)dim * 2);
    avo_audio h[2] = {{0}, {0}};
    avo_error err;
    const int64_t n = b->frames / 2;
    if (avo_audio_alloc(&h[0], b->sample_rate, 1, n, &err) || avo_audio_alloc(&h[1], b->sample_rate, 1, b->frames - n, &err))
        exit(1);
    memcpy(h[0].samples, b->samples, sizeof(float) * (size_t)n);
    memcpy(h[1].samples, b->samples + n, sizeof(float) * (size_t)(b->frames - n));
    for (int k = 0; k < 2; k++)
        if (avo_speaker_embed(m, &h[k], vh + (size_t)k * dim, &err)) {
            fprintf(stderr, "bench_eval_speaker: %s\n", err.message);
            exit(1);
        }
    const double s = 0.5 * (avo_speaker_similarity(m, vec, vh) + avo_speaker_similarity(m, vec, vh + dim));
    *self = avo_speaker_similarity(m, vh, vh + dim);
    avo_audio_free(&h[0]);
    avo_audio_free(&h[1]);
    free(vh);
    return s;
}

/* Why the speaker verdict uses held-out recordings, and what a perfect conversion could score. For each
 * NUS-48E singer with two clips A and B: A resynthesised by the vocoder with nothing changed, scored
 * against A itself (content-matched: what the old source-side score measured) and against B's halves
 * (held-out: what avo_eval_run now uses on both sides); and A itself against B's halves. The ratio of
 * the last two to B's half-vs-half similarity is the similarity ratio that a conversion indistinguishable
 * from the target singer singing another song would get, without and with the vocoder's own loss. */
static void content_bias(avo_evaluator *m, const avo_speaker_config *cfg, cJSON *doc) {
    int a_of[MAX_CLIPS], b_of[MAX_CLIPS];
    const int n = singer_clip_pairs(a_of, b_of);
    if (n < 2) return;
    const int dim = avo_speaker_dim(m);
    float *va = malloc(sizeof(float) * (size_t)dim), *vr = malloc(sizeof(float) * (size_t)dim);
    double content[MAX_CLIPS], heldout[MAX_CLIPS], genuine[MAX_CLIPS], r_resyn[MAX_CLIPS], r_gen[MAX_CLIPS];
    double sum_c = 0, sum_h = 0, sum_g = 0, sum_self = 0;
    avo_error err;
    for (int i = 0; i < n; i++) {
        const clip *ca = &clips[a_of[i]], *cb = &clips[b_of[i]];
        avo_audio re;
        vocoder_shift(&ca->audio, 0.0, cfg->threads, &re);
        if (avo_speaker_embed(m, &ca->audio, va, &err) || avo_speaker_embed(m, &re, vr, &err)) {
            fprintf(stderr, "bench_eval_speaker: %s\n", err.message);
            exit(1);
        }
        double self = 0.0;
        content[i] = avo_speaker_similarity(m, vr, va);
        heldout[i] = to_halves(m, vr, &cb->audio, &self);
        genuine[i] = to_halves(m, va, &cb->audio, &self);
        r_resyn[i] = self > 0 ? heldout[i] / self : NAN;
        r_gen[i] = self > 0 ? genuine[i] / self : NAN;
        sum_c += content[i], sum_h += heldout[i], sum_g += genuine[i], sum_self += self;
        avo_audio_free(&re);
    }
    const double med_rr = median_d(r_resyn, n), med_rg = median_d(r_gen, n);
    printf("content bias (%d singers): unchanged resynthesis of clip A vs A itself %.3f (content-matched), vs the "
           "halves of clip B %.3f (held-out); A itself vs B's halves %.3f; B half vs half %.3f. Similarity ratio "
           "of the target's own other song: %.3f unprocessed, %.3f through the vocoder (medians)\n",
           n, sum_c / n, sum_h / n, sum_g / n, sum_self / n, med_rg, med_rr);
    cJSON *o = cJSON_AddObjectToObject(doc, "content_bias");
    cJSON_AddNumberToObject(o, "singers", n);
    cJSON_AddNumberToObject(o, "mean_sim_resynthesis_to_own_recording", sum_c / n);
    cJSON_AddNumberToObject(o, "mean_sim_resynthesis_to_other_clip_halves", sum_h / n);
    cJSON_AddNumberToObject(o, "mean_sim_clip_to_other_clip_halves", sum_g / n);
    cJSON_AddNumberToObject(o, "mean_sim_half_to_half", sum_self / n);
    cJSON_AddNumberToObject(o, "median_similarity_ratio_other_song", med_rg);
    cJSON_AddNumberToObject(o, "median_similarity_ratio_other_song_resynthesised", med_rr);
    free(va);
    free(vr);
}

int main(int argc, char **argv) {
    const char *out_path = "bench/out/eval_speaker.json";
    char comps[128] = "64";
    double relevance = -1;
    int threads = 0, with_llr = 1, speed_runs = 3, f0_smoothing = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(argv[i], "--components") && i + 1 < argc) snprintf(comps, sizeof comps, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--relevance") && i + 1 < argc) relevance = atof(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-llr")) with_llr = 0;
        else if (!strcmp(argv[i], "--no-f0-smoothing")) f0_smoothing = 0;
        else if (!strcmp(argv[i], "--speed-runs") && i + 1 < argc) speed_runs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_eval_speaker [--out FILE.json] [--components 32,64] [--relevance R] "
                            "[--threads N] [--no-llr] [--speed-runs N] [--no-f0-smoothing]\n");
            return 2;
        }
    }
    load_all(bench_data_dir());
    int multi = 0;
    for (int k = 0; k < nspeakers; k++) {
        int c = 0;
        for (int i = 0; i < nclips; i++) c += clips[i].spk == k;
        multi += c > 1;
    }
    printf("speaker back end: %d clips, %d speakers (%d with 2+ clips)\n", nclips, nspeakers, multi);
    printf("%-8s %5s  %-7s  %7s  %7s  %7s  %12s  %12s  %6s   %s\n", "ubm", "K", "scoring", "EER", "EER-sing",
           "EER-spch", "ident. (n)", "gen/imp", "train s", "singing mean score: genuine / imp. same song / other (n)");
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "benchmark", "eval_speaker");
    cJSON_AddStringToObject(doc, "features", f0_smoothing ? "MFCC c0-c19 + deltas of F0-smoothed spectra, 16 kHz, 25/10 ms, energy VAD (-40 dB), CMVN"
                                                         : "MFCC c0-c19 + deltas, 16 kHz, 25/10 ms, energy VAD (-40 dB), CMVN");
    cJSON_AddStringToObject(doc, "protocol",
                            "enrol one clip, test another; heldout = UBM trained on the other half of the speakers");
    cJSON_AddNumberToObject(doc, "clips", nclips);
    cJSON_AddNumberToObject(doc, "speakers", nspeakers);
    cJSON *rows = cJSON_AddArrayToObject(doc, "rows");
    for (char *tok = strtok(comps, ","); tok; tok = strtok(NULL, ",")) {
        avo_speaker_config cfg;
        avo_speaker_config_default(&cfg);
        cfg.components = atoi(tok);
        cfg.threads = threads;
        cfg.f0_smoothing = f0_smoothing;
        if (relevance > 0) cfg.relevance = relevance;
        const char *protocols[2] = {"heldout", "all"};
        for (int p = 0; p < 2; p++)
            for (int llr = 0; llr <= with_llr; llr++) {
                result r;
                evaluate(protocols[p], &cfg, llr, &r);
                print_row(&r);
                cJSON_AddItemToArray(rows, row_json(&r));
            }
        /* both sections score with one model trained on every clip */
        unsigned char all[MAX_CLIPS];
        memset(all, 1, sizeof all);
        double secs;
        avo_evaluator *m = train_on(all, &cfg, &secs);
        pitch_robustness(m, &cfg, doc);
        content_bias(m, &cfg, doc);
        avo_evaluator_free(m);
    }
    if (speed_runs > 0) time_evaluator(speed_runs, threads, doc);
    mkdir("bench/out", 0755);
    char *text = cJSON_Print(doc);
    FILE *f = fopen(out_path, "w");
    if (f) {
        fputs(text, f);
        fputc('\n', f);
        fclose(f);
        printf("wrote %s\n", out_path);
    } else {
        fprintf(stderr, "bench_eval_speaker: cannot write %s\n", out_path);
    }
    free(text);
    cJSON_Delete(doc);
    for (int i = 0; i < nclips; i++) avo_audio_free(&clips[i].audio);
    return 0;
}
