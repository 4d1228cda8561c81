/* F0 benchmark: accuracy where the truth is known, and speed.
 *
 * Material (truth exact by construction):
 *  - synthetic singing (tests/synth_voice.h): six 12-note melodies over three voice ranges, vibrato
 *    5-7 Hz up to 100 cents, glides, formants, light aspiration; conditions: clean, breathy
 *    (aspiration -10 dB), white and pink noise at 20/10/0 dB SNR (over voiced samples);
 *  - the real singing clips of data/singing resynthesised (the MDB-stem-synth idea): F0 of each clip
 *    from the accurate method at 5 ms, then a harmonic signal that follows exactly that F0 with
 *    harmonic amplitudes measured on the clip at every frame, plus aspiration noise while voiced and
 *    noise at the clip's level where it is unvoiced; also at 10 dB white-noise SNR.
 * Frames within 30 ms of a voicing change are not scored. RPA counts truth-voiced frames whose
 * estimate is voiced and within 50 cents (unvoiced estimates count as misses); RMSE is over those
 * hits; octave errors are truth-voiced frames estimated within 100 cents of +-1 or 2 octaves.
 * Octave check on the real clips as recorded (condition real_octave): no truth exists there, so a
 * spectral referee judges each voiced estimate on a 10 ms grid, at 5 and 10 ms hops: an octave too
 * high where the odd multiples of half the estimate stand 10 dB over the gaps between them and within
 * 20 dB of its even multiples (1st-8th; NUS-48E JTAN_07 at 9.03-9.14 s read 434 for 217 Hz), too low
 * where the estimate's own odd multiples are 20 dB under its even ones while those of twice it stand
 * 10 dB clear; also the frames where the two hops are an octave apart.
 * Speed: a 30 s synthetic voice at 44.1 kHz, clean and with white noise at 10 dB (where the noise
 * filter works), 10 ms hop, median of 5 runs, including resampling; wall clock and process CPU time
 * (all threads), since wall time on a shared machine follows the load.
 *
 * Usage: bench_f0 [--out PATH] [--quick] [--only NAME,NAME...] [--no-speed]
 *   default bench/out/f0.json; AVO_TEST_DATA for the clips; --only runs the named conditions alone
 *   (for iterating; the JSON then holds only those). */
#include "autovoice/audio.h"
#include "autovoice/f0.h"
#include "../tests/synth_voice.h"

#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

static const char *data_dir(void) {
    const char *d = getenv("AVO_TEST_DATA");
    return d && *d ? d : "../shared/data";
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#define HOP 0.010

typedef struct metrics {
    int64_t voiced, unvoiced, hits, chroma_hits, detected, false_alarms, octave;
    double sq_cents;
} metrics;

typedef struct item {
    avo_audio audio;
    double *f0; /* per-sample truth contour */
} item;

static void score(metrics *m, const avo_f0_track *t, const float *truth) {
    for (int64_t i = 0; i < t->frames; i++) {
        const float g = truth[i], e = t->f0_hz[i];
        if (g < 0) continue;
        if (g == 0) {
            m->unvoiced++;
            m->false_alarms += e > 0;
            continue;
        }
        m->voiced++;
        if (e <= 0) continue;
        m->detected++;
        const double c = 1200.0 * log2(e / g);
        const double folded = c - 1200.0 * floor(c / 1200.0 + 0.5);
        if (fabs(c) <= 50) {
            m->hits++;
            m->sq_cents += c * c;
        }
        if (fabs(folded) <= 50) m->chroma_hits++;
        for (int k = 1; k <= 2; k++)
            if (fabs(fabs(c) - 1200.0 * k) <= 100) m->octave++;
    }
}

static void truth_for(const item *it, int64_t frames, float *truth) {
    synth_truth(it->f0, it->audio.frames, it->audio.sample_rate, HOP, frames, truth);
}

static avo_f0_track estimate(const item *it, avo_f0_method method, int threads) {
    avo_f0_config cfg;
    avo_f0_config_default(&cfg);
    cfg.method = method;
    cfg.hop_seconds = HOP;
    cfg.threads = threads;
    avo_f0_track t;
    avo_error err;
    if (avo_f0_estimate(it->audio.samples, it->audio.frames, it->audio.sample_rate, &cfg, &t, &err)) {
        fprintf(stderr, "bench_f0: %s\n", err.message);
        exit(1);
    }
    return t;
}

static void item_free(item *it) {
    avo_audio_free(&it->audio);
    free(it->f0);
}

/* Synthetic melody k (0..5) at fs with the given aspiration level. */
static void make_synth(int k, int fs, double breath_db, item *it) {
    static const double ranges[3][2] = {{80, 350}, {170, 700}, {280, 1050}};
    synth_rng rng = {1000 + (uint64_t)k};
    synth_note notes[12];
    double secs;
    synth_melody(notes, 12, ranges[k % 3][0], ranges[k % 3][1], 100, 1, &rng, &secs);
    avo_audio_alloc(&it->audio, fs, 1, (int64_t)(secs * fs), NULL);
    it->f0 = malloc(sizeof(double) * (size_t)it->audio.frames);
    synth_contour(notes, 12, fs, it->audio.frames, it->f0);
    synth_voice_params p = {.tilt_db_oct = k < 3 ? -9 : -5, .formants = 1, .amplitude = 0.3, .breath_db = breath_db};
    synth_render(it->f0, it->audio.frames, fs, &p, &rng, it->audio.samples);
}

/* Real clip resynthesised on its own estimated F0 (see the file comment). */
static int make_resynth(const char *path, item *it) {
    avo_audio raw = {0}, mono = {0};
    avo_error err;
    if (avo_audio_read(path, &raw, &err) || avo_audio_to_mono(&raw, &mono, &err)) {
        fprintf(stderr, "bench_f0: %s\n", err.message);
        avo_audio_free(&raw);
        return 0;
    }
    avo_audio_free(&raw);
    const int fs = mono.sample_rate;
    const int64_t n = mono.frames;
    const double h = 0.005;
    avo_f0_config cfg;
    avo_f0_config_default(&cfg);
    cfg.method = AVO_F0_ACCURATE;
    cfg.hop_seconds = h;
    avo_f0_track tr;
    if (avo_f0_estimate(mono.samples, n, fs, &cfg, &tr, &err)) {
        fprintf(stderr, "bench_f0: %s\n", err.message);
        avo_audio_free(&mono);
        return 0;
    }
    enum { KMAX = 160 };
    const int64_t nf = tr.frames;
    float *amp = calloc((size_t)nf * KMAX, sizeof(float));
    float *rms = calloc((size_t)nf, sizeof(float));
    const int L = (int)(0.04 * fs);
    for (int64_t i = 0; i < nf; i++) {
        const int64_t c = (int64_t)llround(i * h * fs);
        double e = 0, wsum = 0;
        for (int j = 0; j < L; j++) {
            const int64_t s = c - L / 2 + j;
            const double v = s >= 0 && s < n ? mono.samples[s] : 0;
            e += v * v;
        }
        rms[i] = (float)sqrt(e / L);
        const double f0 = tr.f0_hz[i];
        if (f0 <= 0) continue;
        int K = (int)(0.45 * fs / f0);
        if (K > KMAX) K = KMAX;
        for (int k = 1; k <= K; k++) {
            double re = 0, im = 0;
            wsum = 0;
            const double w0 = 2.0 * M_PI * k * f0 / fs;
            for (int j = 0; j < L; j++) {
                const int64_t s = c - L / 2 + j;
                const double v = s >= 0 && s < n ? mono.samples[s] : 0;
                const double w = 0.5 - 0.5 * cos(2.0 * M_PI * (j + 0.5) / L);
                re += w * v * cos(w0 * j);
                im -= w * v * sin(w0 * j);
                wsum += w;
            }
            amp[i * KMAX + k - 1] = (float)(2.0 * sqrt(re * re + im * im) / wsum);
        }
    }
    /* Per-sample truth: log-linear between voiced frames; at a voicing edge the nearer frame decides. */
    it->f0 = malloc(sizeof(double) * (size_t)n);
    avo_audio_alloc(&it->audio, fs, 1, n, NULL);
    for (int64_t s = 0; s < n; s++) {
        const double p = (double)s / (h * fs);
        const int64_t i = (int64_t)floor(p);
        const double fr = p - (double)i;
        const float a = i < nf ? tr.f0_hz[i] : 0, b = i + 1 < nf ? tr.f0_hz[i + 1] : 0;
        double f = 0;
        if (a > 0 && b > 0) f = a * pow(b / a, fr);
        else f = fr < 0.5 ? a : b;
        it->f0[s] = f;
    }
    synth_rng rng = {77};
    double phase = 0, hp = 0, prev = 0;
    double av[KMAX];
    int K = 0;
    for (int64_t s = 0; s < n; s++) {
        const double p = (double)s / (h * fs);
        int64_t i = (int64_t)floor(p);
        if (i >= nf - 1) i = nf - 2;
        if (i < 0) i = 0;
        const double fr = p - (double)i;
        const double lvl = rms[i] + (rms[i + 1 < nf ? i + 1 : i] - rms[i]) * fr;
        const double wn = synth_gauss(&rng);
        hp = 0.9 * (hp + wn - prev);
        prev = wn;
        const double f0 = it->f0[s];
        if (f0 <= 0) {
            it->audio.samples[s] = (float)(0.7 * lvl * hp); /* consonants and breaths: noise at the clip's level */
            continue;
        }
        if (s % 32 == 0 || K == 0) {
            K = (int)(0.45 * fs / f0);
            if (K > KMAX) K = KMAX;
            const int64_t j = fr < 0.5 ? i : i + 1;
            const int64_t o = tr.f0_hz[j] > 0 ? j : (j == i ? i + 1 : i);
            for (int k = 0; k < K; k++) {
                const float a0 = amp[i * KMAX + k], a1 = amp[(i + 1) * KMAX + k];
                av[k] = (tr.f0_hz[i] > 0 && tr.f0_hz[i + 1] > 0) ? a0 + (a1 - a0) * fr : amp[o * KMAX + k];
            }
        }
        phase += 2.0 * M_PI * f0 / fs;
        if (phase > 2.0 * M_PI) phase -= 2.0 * M_PI;
        const double c2 = 2.0 * cos(phase);
        double sp = 0, sc = sin(phase), acc = 0, pw = 0;
        for (int k = 0; k < K; k++) {
            acc += av[k] * sc;
            pw += av[k] * av[k];
            const double sn = c2 * sc - sp;
            sp = sc;
            sc = sn;
        }
        /* Aspiration about 25 dB under the harmonics, bunched around glottal closure. */
        acc += 0.056 * sqrt(0.5 * pw) * hp * (0.5 + 0.5 * cos(phase)) * 1.5;
        it->audio.samples[s] = (float)acc;
    }
    free(amp);
    free(rms);
    avo_f0_track_free(&tr);
    avo_audio_free(&mono);
    return 1;
}

typedef struct row {
    const char *method;
    char condition[48];
    metrics m;
} row;

static void print_row(const row *r) {
    const metrics *m = &r->m;
    const double v = m->voiced ? (double)m->voiced : 1, u = m->unvoiced ? (double)m->unvoiced : 1;
    printf("%-9s %-22s %7.4f %7.4f %7.4f %7.4f %8.2f %7.4f %8lld\n", r->method, r->condition, m->hits / v,
           m->chroma_hits / v, m->detected / v, m->false_alarms / u, m->hits ? sqrt(m->sq_cents / m->hits) : 0.0,
           m->octave / v, (long long)(m->voiced + m->unvoiced));
}

static void json_row(FILE *f, const row *r, int last) {
    const metrics *m = &r->m;
    const double v = m->voiced ? (double)m->voiced : 1, u = m->unvoiced ? (double)m->unvoiced : 1;
    fprintf(f,
            "    {\"method\": \"%s\", \"condition\": \"%s\", \"rpa\": %.5f, \"rca\": %.5f, \"voicing_recall\": %.5f, "
            "\"voicing_false_alarm\": %.5f, \"rmse_cents\": %.3f, \"octave_error_rate\": %.5f, \"frames\": %lld, "
            "\"voiced_frames\": %lld}%s\n",
            r->method, r->condition, m->hits / v, m->chroma_hits / v, m->detected / v, m->false_alarms / u,
            m->hits ? sqrt(m->sq_cents / m->hits) : 0.0, m->octave / v, (long long)(m->voiced + m->unvoiced),
            (long long)m->voiced, last ? "" : ",");
}

/* Comma-separated condition names to run, NULL for all. */
static const char *only_list;

static int wanted(const char *name) {
    if (!only_list) return 1;
    const size_t len = strlen(name);
    for (const char *p = only_list; *p;) {
        const char *end = strchr(p, ',');
        const size_t l = end ? (size_t)(end - p) : strlen(p);
        if (l == len && !strncmp(p, name, len)) return 1;
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

/* Adds noise to a copy of each item, scores both methods into rows[0..1]. */
static void run_condition(item *items, int count, int noise_kind, double snr, const char *name, row *rows) {
    for (int m = 0; m < 2; m++) {
        rows[m].method = m == 0 ? "fast" : "accurate";
        snprintf(rows[m].condition, sizeof rows[m].condition, "%s", name);
        memset(&rows[m].m, 0, sizeof rows[m].m);
    }
    for (int k = 0; k < count; k++) {
        item it = items[k];
        avo_audio noisy;
        avo_audio_copy(&items[k].audio, &noisy, NULL);
        if (noise_kind) {
            synth_rng rng = {555 + (uint64_t)k * 31 + (uint64_t)noise_kind};
            synth_add_noise(noisy.samples, it.f0, noisy.frames, snr, noise_kind == 2, &rng);
        }
        it.audio = noisy;
        for (int m = 0; m < 2; m++) {
            avo_f0_track t = estimate(&it, m == 0 ? AVO_F0_FAST : AVO_F0_ACCURATE, 2);
            float *truth = malloc(sizeof(float) * (size_t)t.frames);
            truth_for(&it, t.frames, truth);
            score(&rows[m].m, &t, truth);
            free(truth);
            avo_f0_track_free(&t);
        }
        avo_audio_free(&noisy);
    }
    print_row(&rows[0]);
    print_row(&rows[1]);
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct speed {
    const char *method;
    const char *input;
    int threads;
    double hop, x_rt, x_rt_cpu;
} speed;

/* CPU time of the whole process (all threads), ms: on a shared machine wall time follows the load. */
static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Power of x around time t at frequency f: Hann window of max(40 ms, 4 periods of lo). The phasor
 * advances by rotation (exact enough over a few thousand samples in double). */
static double power_at(const avo_audio *a, double t, double f, double lo) {
    const int fs = a->sample_rate;
    const int64_t c = llround(t * fs), h = (int64_t)(fmax(0.04, 4.0 / lo) * fs / 2);
    const double cw = cos(2.0 * M_PI * f / fs), sw = sin(2.0 * M_PI * f / fs);
    const double cg = cos(M_PI / (double)h), sg = sin(M_PI / (double)h);
    double zr = 1, zi = 0, gr = -1, gi = 0; /* e^{i w i}, e^{i pi i / h} from i = -h */
    double re = 0, im = 0;
    for (int64_t i = -h; i <= h; i++) {
        const int64_t k = c + i;
        if (k >= 0 && k < a->frames) {
            const double w = (0.5 + 0.5 * gr) * a->samples[k];
            re += w * zr;
            im += w * zi;
        }
        const double nzr = zr * cw - zi * sw, ngr = gr * cg - gi * sg;
        zi = zr * sw + zi * cw;
        zr = nzr;
        gi = gr * sg + gi * cg;
        gr = ngr;
    }
    return re * re + im * im;
}

/* Odd multiples 1, 3, 5, 7 of lo: their power, that halfway between them, and that of the even ones. */
static void odd_harmonics(const avo_audio *a, double t, double lo, double *odd, double *gaps, double *even) {
    *odd = *gaps = *even = 1e-30;
    for (int k = 1; k <= 7; k += 2) {
        *odd += power_at(a, t, k * lo, lo);
        *gaps += 0.5 * (power_at(a, t, (k - 0.5) * lo, lo) + power_at(a, t, (k + 0.5) * lo, lo));
        *even += power_at(a, t, (k + 1) * lo, lo);
    }
}

typedef struct octave_tally {
    int64_t voiced, up, down;
} octave_tally;

static int octave_apart(double a, double b) { return a > 0 && b > 0 && fabs(fabs(1200.0 * log2(a / b)) - 1200.0) < 100; }

static float track_at(const avo_f0_track *t, double s) {
    const int64_t i = llround(s / t->hop_seconds);
    return i >= 0 && i < t->frames ? t->f0_hz[i] : 0.0f;
}

/* Referee tallies for one clip, [method][hop 5, 10 ms]; hop_octave[method] counts the frames where
 * the two hops are an octave apart of hop_common[method] voiced in both. */
static void octave_check(const char *path, octave_tally tally[2][2], int64_t hop_octave[2], int64_t hop_common[2]) {
    avo_audio raw = {0}, a = {0};
    avo_error err;
    if (avo_audio_read(path, &raw, &err) || avo_audio_to_mono(&raw, &a, &err)) {
        fprintf(stderr, "bench_f0: %s\n", err.message);
        avo_audio_free(&raw);
        return;
    }
    avo_audio_free(&raw);
    avo_f0_track tr[2][2];
    for (int m = 0; m < 2; m++)
        for (int h = 0; h < 2; h++) {
            avo_f0_config cfg;
            avo_f0_config_default(&cfg);
            cfg.method = m ? AVO_F0_ACCURATE : AVO_F0_FAST;
            cfg.hop_seconds = h ? 0.010 : 0.005;
            if (avo_f0_estimate(a.samples, a.frames, a.sample_rate, &cfg, &tr[m][h], &err)) {
                fprintf(stderr, "bench_f0: %s\n", err.message);
                exit(1);
            }
        }
    const int64_t steps = (int64_t)floor((double)a.frames / a.sample_rate / 0.010);
    for (int64_t i = 0; i <= steps; i++) {
        const double s = 0.010 * (double)i;
        for (int m = 0; m < 2; m++) {
            const float e5 = track_at(&tr[m][0], s), e10 = track_at(&tr[m][1], s);
            if (e5 > 0 && e10 > 0) {
                hop_common[m]++;
                hop_octave[m] += octave_apart(e5, e10);
            }
            for (int h = 0; h < 2; h++) {
                const double e = h ? e10 : e5;
                if (e <= 0) continue;
                tally[m][h].voiced++;
                double odd, gaps, even;
                odd_harmonics(&a, s, 0.5 * e, &odd, &gaps, &even);
                if (odd > 10.0 * gaps && odd > 0.01 * even) {
                    tally[m][h].up++;
                    continue;
                }
                double odd2, gaps2, even2;
                odd_harmonics(&a, s, e, &odd, &gaps, &even);
                if (odd < 0.01 * even) {
                    odd_harmonics(&a, s, 2.0 * e, &odd2, &gaps2, &even2);
                    tally[m][h].down += odd2 > 10.0 * gaps2;
                }
            }
        }
    }
    for (int m = 0; m < 2; m++)
        for (int h = 0; h < 2; h++) avo_f0_track_free(&tr[m][h]);
    avo_audio_free(&a);
}

int main(int argc, char **argv) {
    const char *out = "bench/out/f0.json";
    int quick = 0, do_speed = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only_list = argv[++i];
        else if (!strcmp(argv[i], "--no-speed")) do_speed = 0;
        else {
            fprintf(stderr, "usage: bench_f0 [--out PATH] [--quick] [--only NAME,NAME...] [--no-speed]\n");
            return 2;
        }
    }
    const int fs = 44100, nsynth = 6;
    row rows[64];
    int nrows = 0;
    printf("%-9s %-22s %7s %7s %7s %7s %8s %7s %8s\n", "method", "condition", "RPA", "RCA", "v.rec", "v.fa",
           "rmse.c", "octave", "frames");

    item clean[6], breathy[6];
    for (int k = 0; k < nsynth; k++) {
        make_synth(k, fs, -30, &clean[k]);
        make_synth(k, fs, -10, &breathy[k]);
    }
    static const struct { int kind; double snr; const char *name; } conds[] = {
        {0, 0, "clean"},          {1, 20, "white_20db"}, {1, 10, "white_10db"}, {1, 0, "white_0db"},
        {2, 20, "pink_20db"},     {2, 10, "pink_10db"},  {2, 0, "pink_0db"},
    };
    for (size_t c = 0; c < sizeof conds / sizeof conds[0]; c++) {
        if (!wanted(conds[c].name)) continue;
        run_condition(clean, nsynth, conds[c].kind, conds[c].snr, conds[c].name, rows + nrows);
        nrows += 2;
    }
    if (wanted("breathy")) {
        run_condition(breathy, nsynth, 0, 0, "breathy", rows + nrows);
        nrows += 2;
    }

    /* Real clips, resynthesised. */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/singing", data_dir());
    DIR *d = opendir(dir);
    char *names[64];
    int nn = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) && nn < 64)
            if (strstr(e->d_name, ".flac")) names[nn++] = strdup(e->d_name);
        closedir(d);
    }
    qsort(names, (size_t)nn, sizeof(char *), cmp_name);
    if (quick && nn > 4) nn = 4;
    const int want_resynth = wanted("resynth_real") || wanted("resynth_real_white_10db");
    const int want_octave = wanted("real_octave");
    if (!want_resynth && !want_octave) {
        for (int i = 0; i < nn; i++) free(names[i]);
        nn = 0;
    }
    item *real = calloc((size_t)(nn ? nn : 1), sizeof(item));
    int nreal = 0, noct = 0;
    octave_tally tally[2][2] = {{{0}}};
    int64_t hop_octave[2] = {0, 0}, hop_common[2] = {0, 0};
    for (int i = 0; i < nn; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (want_resynth && make_resynth(path, &real[nreal])) nreal++;
        if (want_octave) {
            octave_check(path, tally, hop_octave, hop_common);
            noct++;
        }
        free(names[i]);
    }
    if (nreal) {
        if (wanted("resynth_real")) {
            run_condition(real, nreal, 0, 0, "resynth_real", rows + nrows);
            nrows += 2;
        }
        if (wanted("resynth_real_white_10db")) {
            run_condition(real, nreal, 1, 10, "resynth_real_white_10db", rows + nrows);
            nrows += 2;
        }
    } else if (nn && want_resynth) {
        fprintf(stderr, "bench_f0: no clips under %s; skipping the resynthesised set\n", dir);
    }
    for (int m = 0; m < 2 && noct; m++) {
        for (int h = 0; h < 2; h++)
            printf("real_octave %-8s hop %2d ms: %lld voiced frames (10 ms grid, %d clips), referee: %lld octave high, "
                   "%lld octave low\n",
                   m ? "accurate" : "fast", h ? 10 : 5, (long long)tally[m][h].voiced, noct,
                   (long long)tally[m][h].up, (long long)tally[m][h].down);
        printf("real_octave %-8s 5 vs 10 ms an octave apart: %lld of %lld frames voiced in both\n",
               m ? "accurate" : "fast", (long long)hop_octave[m], (long long)hop_common[m]);
    }

    /* Speed on 30 s at 44.1 kHz. */
    item sp;
    {
        synth_rng rng = {4242};
        synth_note notes[40];
        double secs;
        synth_melody(notes, 40, 110, 660, 80, 1, &rng, &secs);
        if (secs > 30) secs = 30;
        avo_audio_alloc(&sp.audio, fs, 1, (int64_t)(30.0 * fs), NULL);
        sp.f0 = malloc(sizeof(double) * (size_t)sp.audio.frames);
        synth_contour(notes, 40, fs, sp.audio.frames, sp.f0);
        synth_voice_params p = {.tilt_db_oct = -9, .formants = 1, .amplitude = 0.3, .breath_db = -30};
        synth_render(sp.f0, sp.audio.frames, fs, &p, &rng, sp.audio.samples);
    }
    /* The same voice with white noise at 10 dB: the noise filter is active on it (idle on the clean one). */
    item spn = sp;
    avo_audio_copy(&sp.audio, &spn.audio, NULL);
    {
        synth_rng rng = {4343};
        synth_add_noise(spn.audio.samples, sp.f0, spn.audio.frames, 10.0, 0, &rng);
    }
    speed speeds[16];
    int ns = 0;
    const double dur = (double)sp.audio.frames / fs;
    for (int in = 0; in < 2 && do_speed; in++)
        for (int m = 0; m < 2; m++)
            for (int th = 1; th <= 2; th++) {
                double times[5], cpu[5];
                for (int r = 0; r < 5; r++) {
                    const double t0 = avo_now_ms(), c0 = cpu_ms();
                    avo_f0_track t = estimate(in ? &spn : &sp, m == 0 ? AVO_F0_FAST : AVO_F0_ACCURATE, th);
                    times[r] = avo_now_ms() - t0;
                    cpu[r] = cpu_ms() - c0;
                    avo_f0_track_free(&t);
                }
                const double med = median(times, 5), medc = median(cpu, 5);
                speeds[ns++] = (speed){m == 0 ? "fast" : "accurate", in ? "white_10db" : "clean", th, HOP,
                                       dur / (med / 1000.0), dur / (medc / 1000.0)};
                printf("speed %-8s %-10s threads %d: %.1f ms per %.0f s (median of 5) = %.0fx real time; CPU %.1f ms "
                       "= %.0fx\n",
                       m == 0 ? "fast" : "accurate", in ? "white_10db" : "clean", th, med, dur, dur / (med / 1000.0),
                       medc, dur / (medc / 1000.0));
            }
    avo_audio_free(&spn.audio);

    /* JSON */
    char dirbuf[1024];
    snprintf(dirbuf, sizeof dirbuf, "%s", out);
    char *slash = strrchr(dirbuf, '/');
    if (slash) {
        *slash = 0;
        for (char *q = dirbuf + 1; *q; q++)
            if (*q == '/') {
                *q = 0;
                mkdir(dirbuf, 0755);
                *q = '/';
            }
        mkdir(dirbuf, 0755);
    }
    FILE *f = fopen(out, "w");
    if (!f) {
        fprintf(stderr, "bench_f0: cannot write %s\n", out);
        return 1;
    }
    fprintf(f, "{\n  \"benchmark\": \"f0\",\n  \"hop_seconds\": %.3f,\n  \"synthetic_rate\": %d,\n", HOP, fs);
    fprintf(f, "  \"resynthesised_clips\": %d,\n  \"conditions\": [\n", nreal);
    for (int i = 0; i < nrows; i++) json_row(f, &rows[i], i == nrows - 1);
    fprintf(f, "  ],\n  \"real_octave\": [\n");
    for (int m = 0; m < 2 && noct; m++)
        for (int h = 0; h < 2; h++)
            fprintf(f, "    {\"method\": \"%s\", \"hop_seconds\": %.3f, \"clips\": %d, \"voiced_frames\": %lld, "
                       "\"octave_high\": %lld, \"octave_low\": %lld, \"hops_octave_apart\": %lld, "
                       "\"hops_both_voiced\": %lld}%s\n",
                    m ? "accurate" : "fast", h ? 0.010 : 0.005, noct, (long long)tally[m][h].voiced,
                    (long long)tally[m][h].up, (long long)tally[m][h].down, (long long)hop_octave[m],
                    (long long)hop_common[m], m == 1 && h == 1 ? "" : ",");
    fprintf(f, "  ],\n  \"speed\": [\n");
    for (int i = 0; i < ns; i++)
        fprintf(f, "    {\"method\": \"%s\", \"input\": \"%s\", \"threads\": %d, \"hop_seconds\": %.3f, "
                   "\"input_seconds\": %.1f, \"sample_rate\": %d, \"x_realtime_median\": %.1f, "
                   "\"x_realtime_cpu_median\": %.1f}%s\n",
                speeds[i].method, speeds[i].input, speeds[i].threads, speeds[i].hop, dur, fs, speeds[i].x_rt,
                speeds[i].x_rt_cpu, i == ns - 1 ? "" : ",");
    fprintf(f, "  ]\n}\n");
    fclose(f);
    printf("wrote %s\n", out);

    for (int k = 0; k < nsynth; k++) {
        item_free(&clean[k]);
        item_free(&breathy[k]);
    }
    for (int i = 0; i < nreal; i++) item_free(&real[i]);
    free(real);
    item_free(&sp);
    return 0;
}
