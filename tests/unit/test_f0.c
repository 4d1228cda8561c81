/* f0 module: accuracy on signals with known pitch, voicing, real singing, edge cases, API contract. */
#include "autovoice/audio.h"
#include "autovoice/f0.h"
#include "synth_voice.h"
#include "test_util.h"

static const char *method_name(avo_f0_method m) { return m == AVO_F0_FAST ? "fast" : "accurate"; }

static avo_f0_config config(avo_f0_method m, double hop, int threads) {
    avo_f0_config c;
    avo_f0_config_default(&c);
    c.method = m;
    c.hop_seconds = hop;
    c.threads = threads;
    return c;
}

/* Scores a track against per-frame truth (F0 Hz, 0 unvoiced, -1 ignored). */
typedef struct score {
    int64_t voiced, unvoiced, hits50, detected, false_alarms, octave_errors;
    double max_abs_cents;
} score;

static score score_track(const avo_f0_track *t, const float *truth) {
    score s = {0};
    for (int64_t i = 0; i < t->frames; i++) {
        if (truth[i] < 0) continue;
        if (truth[i] == 0) {
            s.unvoiced++;
            s.false_alarms += t->f0_hz[i] > 0;
            continue;
        }
        s.voiced++;
        if (t->f0_hz[i] <= 0) continue;
        s.detected++;
        const double c = 1200.0 * log2(t->f0_hz[i] / truth[i]);
        if (fabs(c) <= 50) s.hits50++;
        if (fabs(fabs(c) - 1200) < 100 || fabs(fabs(c) - 2400) < 100) s.octave_errors++;
        if (fabs(c) > s.max_abs_cents) s.max_abs_cents = fabs(c);
    }
    return s;
}

/* Steady tones: sinusoid and band-limited pulse train, 1 cent on every frame away from the ends. */
static void test_steady_tones(void) {
    const double freqs[] = {60, 110, 220, 440, 880, 1000};
    const int rates[] = {16000, 44100};
    for (int m = 0; m < 2; m++)
        for (int r = 0; r < 2; r++)
            for (size_t k = 0; k < sizeof freqs / sizeof freqs[0]; k++)
                for (int pulse = 0; pulse < 2; pulse++) {
                    const int fs = rates[r];
                    const int64_t n = fs; /* 1 s */
                    double *f0 = malloc(sizeof(double) * (size_t)n);
                    float *x = malloc(sizeof(float) * (size_t)n);
                    synth_note note = {.start = 0, .dur = 1.0, .f0_hz = freqs[k]};
                    synth_contour(&note, 1, fs, n, f0);
                    synth_voice_params p = {.max_harmonics = pulse ? 0 : 1, .tilt_db_oct = 0, .amplitude = 0.5,
                                            .breath_db = -200};
                    synth_rng rng = {1};
                    synth_render(f0, n, fs, &p, &rng, x);
                    avo_f0_config cfg = config((avo_f0_method)m, 0.01, 1);
                    avo_f0_track t;
                    avo_error err;
                    CHECK_OK(avo_f0_estimate(x, n, fs, &cfg, &t, &err), &err);
                    double worst = 0;
                    int unvoiced = 0;
                    for (int64_t i = 10; i < t.frames - 10; i++) {
                        if (t.f0_hz[i] <= 0) {
                            unvoiced++;
                            continue;
                        }
                        const double c = fabs(1200.0 * log2(t.f0_hz[i] / freqs[k]));
                        if (c > worst) worst = c;
                    }
                    CHECK_MSG(unvoiced == 0 && worst < 1.0, "%s %s %g Hz at %d Hz: %d unvoiced, worst %.3f cents",
                              method_name((avo_f0_method)m), pulse ? "pulse" : "sine", freqs[k], fs, unvoiced,
                              worst);
                    avo_f0_track_free(&t);
                    free(f0);
                    free(x);
                }
}

/* Synthetic sung melodies with vibrato and glides across voice ranges. */
static void test_vibrato_voice(void) {
    const double ranges[][2] = {{80, 300}, {150, 500}, {250, 1000}};
    const int fs = 22050;
    for (int m = 0; m < 2; m++) {
        score tot = {0};
        for (int r = 0; r < 3; r++) {
            synth_rng rng = {1234 + (uint64_t)r};
            synth_note notes[12];
            double secs;
            synth_melody(notes, 12, ranges[r][0], ranges[r][1], 100, 1, &rng, &secs);
            const int64_t n = (int64_t)(secs * fs);
            double *f0 = malloc(sizeof(double) * (size_t)n);
            float *x = malloc(sizeof(float) * (size_t)n);
            synth_contour(notes, 12, fs, n, f0);
            synth_voice_params p = {.tilt_db_oct = -9, .formants = 1, .amplitude = 0.3, .breath_db = -25};
            synth_render(f0, n, fs, &p, &rng, x);
            avo_f0_config cfg = config((avo_f0_method)m, 0.01, 2);
            avo_f0_track t;
            avo_error err;
            CHECK_OK(avo_f0_estimate(x, n, fs, &cfg, &t, &err), &err);
            float *truth = malloc(sizeof(float) * (size_t)t.frames);
            synth_truth(f0, n, fs, 0.01, t.frames, truth);
            score s = score_track(&t, truth);
            double conf_v = 0, conf_u = 0;
            int nv = 0, nu = 0;
            for (int64_t i = 0; i < t.frames; i++) {
                if (truth[i] > 0) conf_v += t.confidence[i], nv++;
                if (truth[i] == 0) conf_u += t.confidence[i], nu++;
            }
            CHECK_MSG(nv && conf_v / nv > 0.6, "%s mean confidence on voiced frames %.3f",
                      method_name((avo_f0_method)m), nv ? conf_v / nv : 0.0);
            CHECK_MSG(nu && conf_u / nu < 0.1, "%s mean confidence on unvoiced frames %.3f",
                      method_name((avo_f0_method)m), nu ? conf_u / nu : 0.0);
            tot.voiced += s.voiced;
            tot.hits50 += s.hits50;
            tot.octave_errors += s.octave_errors;
            tot.unvoiced += s.unvoiced;
            tot.false_alarms += s.false_alarms;
            free(truth);
            avo_f0_track_free(&t);
            free(f0);
            free(x);
        }
        const double rpa = (double)tot.hits50 / (double)tot.voiced;
        const double oct = (double)tot.octave_errors / (double)tot.voiced;
        const double fa = (double)tot.false_alarms / (double)(tot.unvoiced ? tot.unvoiced : 1);
        fprintf(stderr, "vibrato voice %s: RPA %.4f, octave errors %.4f, false alarms %.4f (%lld voiced)\n",
                method_name((avo_f0_method)m), rpa, oct, fa, (long long)tot.voiced);
        CHECK_MSG(rpa > 0.97, "%s RPA %.4f", method_name((avo_f0_method)m), rpa);
        CHECK_MSG(oct < 0.01, "%s octave errors %.4f", method_name((avo_f0_method)m), oct);
        CHECK_MSG(fa < 0.05, "%s voicing false alarms %.4f", method_name((avo_f0_method)m), fa);
    }
}

/* The vibrato melodies in stationary noise: white at 10 dB and 5 dB, pink at 5 dB SNR (over voiced
 * samples). A soft, dark voice (-12 dB per octave) has broad difference-function troughs whose floor
 * noise breaks into several dips; the earliest dip read as the pitch once made estimates sharp by
 * tens of cents on average, so the signed mean error is checked as well as RPA. */
static void test_noisy_voice(void) {
    const double ranges[][2] = {{80, 300}, {150, 500}, {250, 1000}};
    static const struct { int pink; double snr; } conds[] = {{0, 10}, {0, 5}, {1, 5}};
    const int fs = 22050;
    for (size_t c = 0; c < sizeof conds / sizeof conds[0]; c++)
        for (int m = 0; m < 2; m++) {
            score tot = {0};
            double signed_sum = 0;
            int64_t signed_n = 0;
            for (int r = 0; r < 3; r++) {
                synth_rng rng = {4321 + (uint64_t)r};
                synth_note notes[10];
                double secs;
                synth_melody(notes, 10, ranges[r][0], ranges[r][1], 80, 1, &rng, &secs);
                const int64_t n = (int64_t)(secs * fs);
                double *f0 = malloc(sizeof(double) * (size_t)n);
                float *x = malloc(sizeof(float) * (size_t)n);
                synth_contour(notes, 10, fs, n, f0);
                synth_voice_params p = {.tilt_db_oct = -12, .formants = 1, .amplitude = 0.3, .breath_db = -30};
                synth_render(f0, n, fs, &p, &rng, x);
                synth_add_noise(x, f0, n, conds[c].snr, conds[c].pink, &rng);
                avo_f0_config cfg = config((avo_f0_method)m, 0.01, 2);
                avo_f0_track t;
                avo_error err;
                CHECK_OK(avo_f0_estimate(x, n, fs, &cfg, &t, &err), &err);
                float *truth = malloc(sizeof(float) * (size_t)t.frames);
                synth_truth(f0, n, fs, 0.01, t.frames, truth);
                score s = score_track(&t, truth);
                for (int64_t i = 0; i < t.frames; i++) {
                    if (!(truth[i] > 0) || !(t.f0_hz[i] > 0)) continue;
                    const double cents = 1200.0 * log2(t.f0_hz[i] / truth[i]);
                    if (fabs(cents) <= 50) signed_sum += cents, signed_n++;
                }
                tot.voiced += s.voiced;
                tot.hits50 += s.hits50;
                tot.octave_errors += s.octave_errors;
                tot.unvoiced += s.unvoiced;
                tot.false_alarms += s.false_alarms;
                free(truth);
                avo_f0_track_free(&t);
                free(f0);
                free(x);
            }
            const double rpa = (double)tot.hits50 / (double)tot.voiced;
            const double oct = (double)tot.octave_errors / (double)tot.voiced;
            const double fa = (double)tot.false_alarms / (double)(tot.unvoiced ? tot.unvoiced : 1);
            const double bias = signed_n ? signed_sum / (double)signed_n : 0.0;
            fprintf(stderr, "noisy voice %s %s %.0f dB: RPA %.4f, octave errors %.4f, false alarms %.4f, mean error %+.2f cents\n",
                    method_name((avo_f0_method)m), conds[c].pink ? "pink" : "white", conds[c].snr, rpa, oct, fa, bias);
            CHECK_MSG(rpa > 0.98, "%s noisy RPA %.4f", method_name((avo_f0_method)m), rpa);
            CHECK_MSG(oct < 0.01, "%s noisy octave errors %.4f", method_name((avo_f0_method)m), oct);
            CHECK_MSG(fa < 0.05, "%s noisy voicing false alarms %.4f", method_name((avo_f0_method)m), fa);
            CHECK_MSG(fabs(bias) < 2.0, "%s noisy mean error %+.2f cents", method_name((avo_f0_method)m), bias);
        }
}

/* Silence, noise, DC: nothing voiced. */
static void test_unvoiced_inputs(void) {
    const int fs = 16000;
    const int64_t n = 2 * fs;
    float *x = calloc((size_t)n, sizeof(float));
    synth_rng rng = {99};
    for (int kind = 0; kind < 4; kind++) {
        for (int64_t i = 0; i < n; i++) {
            if (kind == 0) x[i] = 0;
            if (kind == 1) x[i] = 0.5f;                              /* DC */
            if (kind == 2) x[i] = (float)(0.1 * synth_gauss(&rng));  /* white noise */
            if (kind == 3) x[i] = (float)(1e-7 * synth_gauss(&rng)); /* dither-level noise */
        }
        for (int m = 0; m < 2; m++) {
            avo_f0_config cfg = config((avo_f0_method)m, 0.01, 1);
            avo_f0_track t;
            avo_error err;
            CHECK_OK(avo_f0_estimate(x, n, fs, &cfg, &t, &err), &err);
            int voiced = 0, bad = 0;
            for (int64_t i = 0; i < t.frames; i++) {
                voiced += t.f0_hz[i] > 0;
                bad += !(t.confidence[i] >= 0 && t.confidence[i] <= 1);
            }
            const int allowed = kind == 2 ? (int)(t.frames / 50) : 0; /* noise: under 2% */
            double conf = 0;
            for (int64_t i = 0; i < t.frames; i++) conf += t.confidence[i];
            CHECK_MSG(conf / (double)t.frames < 0.15, "%s: input kind %d mean confidence %.3f",
                      method_name((avo_f0_method)m), kind, conf / (double)t.frames);
            CHECK_MSG(voiced <= allowed, "%s: input kind %d has %d voiced frames of %lld",
                      method_name((avo_f0_method)m), kind, voiced, (long long)t.frames);
            CHECK(bad == 0);
            avo_f0_track_free(&t);
        }
    }
    free(x);
}

/* Clipped, 1-sample, shorter than a window, odd rate: sane output, right frame count. */
static void test_edge_cases(void) {
    for (int m = 0; m < 2; m++) {
        avo_error err;
        avo_f0_track t;
        avo_f0_config cfg = config((avo_f0_method)m, 0.01, 0);
        /* Hard-clipped 200 Hz tone (10x over full scale). */
        const int fs = 16000;
        float *x = malloc(sizeof(float) * fs);
        for (int i = 0; i < fs; i++) {
            float v = (float)(10.0 * sin(2 * M_PI * 200.0 * i / fs));
            x[i] = v > 1 ? 1 : v < -1 ? -1 : v;
        }
        CHECK_OK(avo_f0_estimate(x, fs, fs, &cfg, &t, &err), &err);
        int ok = 0;
        for (int64_t i = 5; i < t.frames - 5; i++) ok += t.f0_hz[i] > 0 && fabs(1200 * log2(t.f0_hz[i] / 200.0)) < 5;
        CHECK_MSG(ok == t.frames - 10, "%s clipped: %d of %lld frames right", method_name((avo_f0_method)m), ok,
                  (long long)t.frames - 10);
        avo_f0_track_free(&t);

        /* One sample. */
        CHECK_OK(avo_f0_estimate(x, 1, fs, &cfg, &t, &err), &err);
        CHECK(t.frames == 1 && t.f0_hz[0] == 0);
        avo_f0_track_free(&t);

        /* Shorter than one analysis window (300 samples = 19 ms) at an odd rate. */
        CHECK_OK(avo_f0_estimate(x, 300, 11025, &cfg, &t, &err), &err);
        CHECK(t.frames == 300 / 110 + 1);
        for (int64_t i = 0; i < t.frames; i++) CHECK(t.f0_hz[i] >= 0 && t.f0_hz[i] < 1200 && isfinite(t.f0_hz[i]));
        avo_f0_track_free(&t);

        /* Bad arguments give clear errors, not crashes. */
        x[10] = NAN;
        CHECK(avo_f0_estimate(x, fs, fs, &cfg, &t, &err) == AVO_ERR_INVALID_AUDIO);
        CHECK(strstr(err.message, "10") != NULL);
        CHECK(avo_f0_estimate(x, 0, fs, &cfg, &t, &err) == AVO_ERR_INVALID_AUDIO);
        CHECK(avo_f0_estimate(NULL, 10, fs, &cfg, &t, &err) == AVO_ERR_INVALID_ARGUMENT);
        avo_f0_config bad = cfg;
        bad.f0_min_hz = 500;
        bad.f0_max_hz = 400;
        CHECK(avo_f0_estimate(x, 5, fs, &bad, &t, &err) == AVO_ERR_INVALID_ARGUMENT);
        bad = cfg;
        bad.hop_seconds = 0;
        CHECK(avo_f0_estimate(x, 5, fs, &bad, &t, &err) == AVO_ERR_INVALID_ARGUMENT);
        free(x);
    }
}

/* 10 minutes of a looped synthetic phrase at 8 kHz: completes, right length, still accurate at the end. */
static void test_ten_minutes(void) {
    const int fs = 8000;
    const int64_t n = 600 * (int64_t)fs;
    double *f0 = malloc(sizeof(double) * (size_t)n);
    float *x = malloc(sizeof(float) * (size_t)n);
    synth_note notes[200];
    for (int k = 0; k < 200; k++)
        notes[k] = (synth_note){.start = 3.0 * k, .dur = 2.5, .f0_hz = 110.0 * pow(2.0, (k % 13) / 12.0),
                                .vib_hz = 5.5, .vib_cents = 40};
    synth_contour(notes, 200, fs, n, f0);
    synth_voice_params p = {.tilt_db_oct = -6, .formants = 1, .amplitude = 0.3, .breath_db = -200};
    synth_rng rng = {5};
    synth_render(f0, n, fs, &p, &rng, x);
    for (int m = 0; m < 2; m++) {
        avo_f0_config cfg = config((avo_f0_method)m, 0.01, 0);
        avo_f0_track t;
        avo_error err;
        CHECK_OK(avo_f0_estimate(x, n, fs, &cfg, &t, &err), &err);
        CHECK(t.frames == 60001);
        float *truth = malloc(sizeof(float) * (size_t)t.frames);
        synth_truth(f0, n, fs, 0.01, t.frames, truth);
        score s = score_track(&t, truth);
        CHECK_MSG((double)s.hits50 / (double)s.voiced > 0.98, "%s 10 min: RPA %.4f",
                  method_name((avo_f0_method)m), (double)s.hits50 / (double)s.voiced);
        /* The last note is tracked as well as the first. */
        int last_ok = 0;
        for (int64_t i = 59710; i < 59940; i++) last_ok += truth[i] > 0 && t.f0_hz[i] > 0 &&
                                                           fabs(1200 * log2(t.f0_hz[i] / truth[i])) < 50;
        CHECK_MSG(last_ok > 200, "%s last note: %d frames right", method_name((avo_f0_method)m), last_ok);
        free(truth);
        avo_f0_track_free(&t);
    }
    free(f0);
    free(x);
}

/* Real singing: plausible voiced fraction and range; the two methods agree. */
static void test_real_singing(void) {
    const char *clips[] = {"nus48e_JLEE_11.flac", "nus48e_ADIZ_18.flac", "vocadito_10.flac"};
    for (size_t c = 0; c < 3; c++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/singing/%s", avo_test_data_dir(), clips[c]);
        avo_audio a;
        avo_error err;
        CHECK_OK(avo_audio_read(path, &a, &err), &err);
        if (a.frames <= 0) continue;
        avo_f0_track tr[2];
        for (int m = 0; m < 2; m++) {
            avo_f0_config cfg = config((avo_f0_method)m, 0.01, 2);
            CHECK_OK(avo_f0_estimate(a.samples, a.frames, a.sample_rate, &cfg, &tr[m], &err), &err);
        }
        int64_t v[2] = {0, 0}, both = 0, agree = 0;
        for (int64_t i = 0; i < tr[0].frames; i++) {
            const float a0 = tr[0].f0_hz[i], a1 = tr[1].f0_hz[i];
            v[0] += a0 > 0;
            v[1] += a1 > 0;
            if (a0 > 0 && a1 > 0) {
                both++;
                agree += fabs(1200 * log2(a0 / a1)) < 50;
            }
        }
        const double n = (double)tr[0].frames;
        fprintf(stderr, "%s: voiced fast %.3f accurate %.3f, agree on %.4f of %lld common voiced frames\n", clips[c],
                v[0] / n, v[1] / n, (double)agree / (double)both, (long long)both);
        for (int m = 0; m < 2; m++)
            CHECK_MSG(v[m] / n > 0.3 && v[m] / n < 0.97, "%s %s voiced fraction %.3f", clips[c],
                      method_name((avo_f0_method)m), v[m] / n);
        CHECK_MSG(both > 0.8 * (v[0] < v[1] ? v[0] : v[1]), "%s: voicing overlap", clips[c]);
        CHECK_MSG(agree > 0.95 * both, "%s: methods agree on %.3f", clips[c], (double)agree / (double)both);
        avo_f0_track_free(&tr[0]);
        avo_f0_track_free(&tr[1]);
        avo_audio_free(&a);
    }
}

/* Frame count and timing contract, thread independence, interpolation helper. */
static void test_api(void) {
    const int fs = 44100;
    const int64_t n = fs + 123;
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(0.4 * sin(2 * M_PI * 330.0 * (double)i / fs));
    avo_f0_config cfg = config(AVO_F0_ACCURATE, 0.005, 1);
    avo_f0_track a, b;
    avo_error err;
    CHECK_OK(avo_f0_estimate(x, n, fs, &cfg, &a, &err), &err);
    CHECK(a.frames == (int64_t)floor(n / (0.005 * fs)) + 1 && a.hop_seconds == 0.005);
    cfg.threads = 2;
    CHECK_OK(avo_f0_estimate(x, n, fs, &cfg, &b, &err), &err);
    CHECK(a.frames == b.frames && memcmp(a.f0_hz, b.f0_hz, sizeof(float) * (size_t)a.frames) == 0);
    CHECK_NEAR(avo_f0_track_at(&a, 0.5), 330.0, 0.2);
    CHECK(avo_f0_track_at(&a, 100.0) == 0);
    CHECK(avo_f0_method_for_preset(AVO_PRESET_FAST) == AVO_F0_FAST);
    CHECK(avo_f0_method_for_preset(AVO_PRESET_QUALITY) == AVO_F0_ACCURATE);
    avo_f0_track_free(&a);
    avo_f0_track_free(&b);
    free(x);
}

/* A note that starts and stops in digital silence: frames straddling either edge once read as a
 * confident ~1 kHz pitch. Every voiced frame must be the note's pitch. */
static void test_edges_of_silence(void) {
    const int fs = 16000;
    const double notes[] = {110.0, 220.0, 440.0};
    for (size_t k = 0; k < sizeof notes / sizeof notes[0]; k++) {
        const int64_t n = 2 * fs;
        float *x = calloc((size_t)n, sizeof(float));
        for (int64_t i = fs / 2; i < 3 * fs / 2; i++)
            for (int h = 1; h <= 10; h++) x[i] += (float)(0.3 / h * sin(2 * M_PI * notes[k] * h * (double)(i - fs / 2) / fs));
        for (int m = 0; m < 2; m++) {
            avo_f0_config cfg;
            avo_f0_config_default(&cfg);
            cfg.method = m ? AVO_F0_ACCURATE : AVO_F0_FAST;
            avo_f0_track t = {0};
            avo_error err;
            CHECK_OK(avo_f0_estimate(x, n, fs, &cfg, &t, &err), &err);
            int wrong = 0, voiced = 0;
            for (int64_t i = 0; i < t.frames; i++) {
                if (t.f0_hz[i] <= 0) continue;
                voiced++;
                if (fabs(1200.0 * log2(t.f0_hz[i] / notes[k])) > 50.0) wrong++;
            }
            CHECK_MSG(wrong == 0 && voiced > 90, "%s, %.0f Hz note in silence: %d wrong of %d voiced frames",
                      m ? "accurate" : "fast", notes[k], wrong, voiced);
            avo_f0_track_free(&t);
        }
        free(x);
    }
}

/* A voice whose 2nd harmonic is 12 dB above its fundamental and whose other odd harmonics are weak
 * but present (NUS-48E JTAN's voice): the difference function dips at half the period deep
 * enough (aperiodicity ~0.1) that YIN's first-dip rule and pYIN's threshold prior both once read
 * the octave above, over whole notes (JTAN_07 at 9.03-9.14 s: 434 Hz for 217 Hz). The notes are separated by short (25-45 ms)
 * unvoiced gaps, through which the octave could change at no pitch-jump cost. Every scored frame
 * must be the true pitch at a 5 ms and at a 10 ms hop, and the two hops must make the same
 * decisions where their frames coincide. */
/* upper_only: odd harmonics only from the 9th and above 1.5 kHz (period doubling heard as the upper
 * pitch). */
static void render_strong_h2(const double *f0, const double *odd_db, int upper_only, int64_t n, int fs, float *x) {
    double phase = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = 0;
        if (f0[i] <= 0) {
            phase = 0;
            continue;
        }
        /* 3 ms raised-cosine ramps at the ends of each note keep the gaps free of clicks. */
        const int64_t ramp = (int64_t)(0.003 * fs);
        double g = 1;
        for (int64_t k = 1; k <= ramp; k++)
            if ((i - k < 0 || f0[i - k] <= 0) || (i + k >= n || f0[i + k] <= 0)) {
                g = 0.5 - 0.5 * cos(M_PI * (double)(k - 1) / ramp);
                break;
            }
        phase += 2.0 * M_PI * f0[i] / fs;
        if (phase > 2.0 * M_PI) phase -= 2.0 * M_PI;
        double y = 0;
        for (int k = 1; k * f0[i] < 0.45 * fs && k <= 40; k++) {
            /* Even harmonics fall 6 dB per octave from the 2nd; the fundamental is 12 dB under the 2nd
             * and the other odd harmonics odd_db under that slope. */
            double a = pow(10.0, -6.0 * log2(k / 2.0) / 20.0);
            if (k == 1 && !upper_only) a = pow(10.0, -12.0 / 20.0);
            else if (k % 2) a *= upper_only && (k < 9 || k * f0[i] < 1500.0) ? 0.0 : pow(10.0, -odd_db[i] / 20.0);
            y += a * sin(k * phase + 0.3 * k * k);
        }
        x[i] = (float)(0.1 * g * y);
    }
}

static void test_strong_second_harmonic(void) {
    const int fs = 16000;
    synth_rng rng = {77};
    enum { NOTES = 16 };
    synth_note notes[NOTES];
    double t = 0.1;
    for (int k = 0; k < NOTES; k++) {
        const double lo = k < NOTES / 2 ? 170.0 : 110.0; /* JTAN's range, then a lower voice */
        notes[k] = (synth_note){.start = t, .dur = 0.3 + 0.3 * synth_uniform(&rng),
                                .f0_hz = lo * pow(2.0, synth_uniform(&rng) * 0.6), .vib_hz = 5.5,
                                .vib_cents = 30 + 30 * synth_uniform(&rng)};
        t += notes[k].dur + 0.025 + 0.02 * synth_uniform(&rng);
    }
    const int64_t n = (int64_t)((t + 0.1) * fs);
    double *f0 = malloc(sizeof(double) * (size_t)n), *odd_db = malloc(sizeof(double) * (size_t)n);
    float *x = malloc(sizeof(float) * (size_t)n);
    synth_contour(notes, NOTES, fs, n, f0);
    /* Odd harmonics 14-22 dB down, a new level per note: from a trough at half the period that pYIN
     * mostly rejects to one it mostly takes. */
    for (int k = 0; k < NOTES; k++) {
        const double db = 14.0 + 8.0 * synth_uniform(&rng);
        for (int64_t i = (int64_t)(notes[k].start * fs); i < n; i++) odd_db[i] = db;
    }
    render_strong_h2(f0, odd_db, 0, n, fs, x);
    for (int m = 0; m < 2; m++) {
        avo_f0_track tr[2];
        const double hops[2] = {0.005, 0.010};
        for (int h = 0; h < 2; h++) {
            avo_f0_config cfg = config((avo_f0_method)m, hops[h], 2);
            avo_error err;
            CHECK_OK(avo_f0_estimate(x, n, fs, &cfg, &tr[h], &err), &err);
            float *truth = malloc(sizeof(float) * (size_t)tr[h].frames);
            synth_truth(f0, n, fs, hops[h], tr[h].frames, truth);
            score s = score_track(&tr[h], truth);
            fprintf(stderr, "strong 2nd harmonic %s %.0f ms: RPA %.4f, octave errors %lld of %lld voiced\n",
                    method_name((avo_f0_method)m), hops[h] * 1000, (double)s.hits50 / (double)s.voiced,
                    (long long)s.octave_errors, (long long)s.voiced);
            CHECK_MSG(s.octave_errors == 0, "%s %.0f ms hop: %lld octave errors", method_name((avo_f0_method)m),
                      hops[h] * 1000, (long long)s.octave_errors);
            CHECK_MSG(s.hits50 > 0.97 * (double)s.voiced, "%s %.0f ms hop: RPA %.4f", method_name((avo_f0_method)m),
                      hops[h] * 1000, (double)s.hits50 / (double)s.voiced);
            free(truth);
        }
        /* Frame 2i at 5 ms is frame i at 10 ms: same voicing and same octave on (nearly) all of them. */
        int64_t common = 0, differ = 0;
        for (int64_t i = 0; i < tr[1].frames && 2 * i < tr[0].frames; i++) {
            const float a = tr[0].f0_hz[2 * i], b = tr[1].f0_hz[i];
            common++;
            if ((a > 0) != (b > 0) || (a > 0 && fabs(1200.0 * log2(a / b)) > 50)) differ++;
        }
        CHECK_MSG(differ <= common / 100, "%s: 5 and 10 ms hops differ on %lld of %lld frames",
                  method_name((avo_f0_method)m), (long long)differ, (long long)common);
        avo_f0_track_free(&tr[0]);
        avo_f0_track_free(&tr[1]);
    }
    free(f0);
    free(odd_db);
    free(x);
}

/* The converse: odd multiples of the lower pitch only above 1.5 kHz and the 8th, 6-10 dB under the even ones
 * (period doubling in the upper harmonics, as NUS-48E MPOL_11 at 6.29 s). The difference function
 * is then as periodic at twice the period as for a voice an octave down, but the pitch heard is the
 * upper one, and the tracker must stay there. */
static void test_upper_period_doubling(void) {
    const int fs = 16000;
    synth_rng rng = {78};
    enum { NOTES = 8 };
    synth_note notes[NOTES];
    double t = 0.1;
    for (int k = 0; k < NOTES; k++) {
        /* f0 here is the lower pitch; the voice is heard at twice it (300-560 Hz). */
        notes[k] = (synth_note){.start = t, .dur = 0.3 + 0.3 * synth_uniform(&rng),
                                .f0_hz = 150.0 * pow(2.0, synth_uniform(&rng) * 0.9), .vib_hz = 5.5,
                                .vib_cents = 30 + 30 * synth_uniform(&rng)};
        t += notes[k].dur + 0.025 + 0.02 * synth_uniform(&rng);
    }
    const int64_t n = (int64_t)((t + 0.1) * fs);
    double *f0 = malloc(sizeof(double) * (size_t)n), *odd_db = malloc(sizeof(double) * (size_t)n);
    float *x = malloc(sizeof(float) * (size_t)n);
    synth_contour(notes, NOTES, fs, n, f0);
    for (int64_t i = 0; i < n; i++) odd_db[i] = 6.0 + 4.0 * (double)i / (double)n;
    render_strong_h2(f0, odd_db, 1, n, fs, x);
    for (int m = 0; m < 2; m++)
        for (int h = 0; h < 2; h++) {
            const double hop = h ? 0.010 : 0.005;
            avo_f0_config cfg = config((avo_f0_method)m, hop, 2);
            avo_f0_track tr;
            avo_error err;
            CHECK_OK(avo_f0_estimate(x, n, fs, &cfg, &tr, &err), &err);
            float *truth = malloc(sizeof(float) * (size_t)tr.frames);
            synth_truth(f0, n, fs, hop, tr.frames, truth);
            for (int64_t i = 0; i < tr.frames; i++)
                if (truth[i] > 0) truth[i] *= 2.0f; /* the heard pitch */
            score s = score_track(&tr, truth);
            fprintf(stderr, "upper period doubling %s %.0f ms: RPA %.4f, octave errors %lld of %lld voiced\n",
                    method_name((avo_f0_method)m), hop * 1000, (double)s.hits50 / (double)s.voiced,
                    (long long)s.octave_errors, (long long)s.voiced);
            CHECK_MSG(s.octave_errors == 0 && s.hits50 > 0.97 * (double)s.voiced,
                      "%s %.0f ms hop, upper period doubling: %lld octave errors, RPA %.4f",
                      method_name((avo_f0_method)m), hop * 1000, (long long)s.octave_errors,
                      (double)s.hits50 / (double)s.voiced);
            free(truth);
            avo_f0_track_free(&tr);
        }
    free(f0);
    free(odd_db);
    free(x);
}

int main(void) {
    test_api();
    test_edges_of_silence();
    test_strong_second_harmonic();
    test_upper_period_doubling();
    test_steady_tones();
    test_unvoiced_inputs();
    test_edge_cases();
    test_vibrato_voice();
    test_noisy_voice();
    test_real_singing();
    test_ten_minutes();
    TEST_MAIN_END();
}
