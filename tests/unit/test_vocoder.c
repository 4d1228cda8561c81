/* vocoder: F0 kept through a round trip, envelope of a known all-pole filter, round trip of a
 * synthetic and a real voice, edge cases (silence, DC, clipping, 1 sample, 10 minutes) and the
 * parameter modifications. */
#include "autovoice/audio.h"
#include "autovoice/vocoder.h"
#include "test_util.h"

typedef struct formant {
    double hz, bw;
} formant;

/* An /a/-like vowel. Bandwidths are realistic (and wider than the 2 F0 / pi below which a
 * resonance is narrower than what harmonics spaced F0 apart can describe). */
static const formant VOWEL[] = {{730, 130}, {1250, 150}, {2600, 200}, {3500, 250}, {4500, 300}};
enum { N_FORMANTS = 5 };

/* Cascade of two-pole resonators (all-pole filter), in place. */
static void all_pole(float *x, int64_t n, int fs, const formant *fm, int count) {
    for (int k = 0; k < count; k++) {
        double r = exp(-M_PI * fm[k].bw / fs), th = 2 * M_PI * fm[k].hz / fs;
        double a1 = 2 * r * cos(th), a2 = -r * r, y1 = 0, y2 = 0;
        for (int64_t i = 0; i < n; i++) {
            double y = x[i] + a1 * y1 + a2 * y2;
            y2 = y1;
            y1 = y;
            x[i] = (float)y;
        }
    }
}

/* True power response of all_pole at f Hz. */
static double all_pole_power(double f, int fs, const formant *fm, int count) {
    double p = 1.0, w = 2 * M_PI * f / fs;
    for (int k = 0; k < count; k++) {
        double r = exp(-M_PI * fm[k].bw / fs), th = 2 * M_PI * fm[k].hz / fs;
        double re = 1 - 2 * r * cos(th) * cos(w) + r * r * cos(2 * w);
        double im = 2 * r * cos(th) * sin(w) - r * r * sin(2 * w);
        p /= re * re + im * im;
    }
    return p;
}

static avo_f0_track constant_track(int64_t frames, double hop, double hz) {
    avo_f0_track t;
    avo_f0_track_alloc(&t, frames, hop, NULL);
    for (int64_t i = 0; i < frames; i++) {
        t.f0_hz[i] = (float)hz;
        t.confidence[i] = 1.0f;
    }
    return t;
}

/* Frequency of the strongest component within 1% of guess (Hann-windowed DTFT, parabolic peak). */
static double peak_frequency(const float *x, int64_t n, int fs, double guess) {
    enum { STEPS = 201 };
    double mag[STEPS];
    for (int s = 0; s < STEPS; s++) {
        double f = guess * (0.99 + 0.02 * s / (STEPS - 1)), w = 2 * M_PI * f / fs, re = 0, im = 0;
        for (int64_t i = 0; i < n; i++) {
            double h = 0.5 - 0.5 * cos(2 * M_PI * (double)i / (double)(n - 1));
            re += h * x[i] * cos(w * (double)i);
            im -= h * x[i] * sin(w * (double)i);
        }
        mag[s] = log(re * re + im * im + 1e-300);
    }
    int best = 1;
    for (int s = 1; s < STEPS - 1; s++)
        if (mag[s] > mag[best]) best = s;
    double d = 0.5 * (mag[best - 1] - mag[best + 1]) / (mag[best - 1] - 2 * mag[best] + mag[best + 1]);
    return guess * (0.99 + 0.02 * (best + d) / (STEPS - 1));
}

static int all_finite(const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(y[i])) return 0;
    return 1;
}

static float peak_abs(const float *y, int64_t n) {
    float p = 0;
    for (int64_t i = 0; i < n; i++) p = fabsf(y[i]) > p ? fabsf(y[i]) : p;
    return p;
}

/* A periodic pulse train (integer period, so F0 is exact) through the vowel filter. */
static float *vowel_pulses(int fs, int period, int64_t n) {
    float *x = calloc((size_t)n, sizeof(float));
    for (int64_t i = 0; i < n; i += period) x[i] = 1.0f;
    all_pole(x, n, fs, VOWEL, N_FORMANTS);
    float p = peak_abs(x, n);
    for (int64_t i = 0; i < n; i++) x[i] *= 0.5f / p;
    return x;
}

static void test_pulse_train_f0(int fs, int period) {
    const double f0 = (double)fs / period;
    const int64_t n = fs; /* 1 s */
    float *x = vowel_pulses(fs, period, n);
    avo_vocoder_config cfg;
    avo_vocoder_config_default(&cfg, fs);
    avo_vocoder *v = NULL;
    avo_error err = {0};
    CHECK_OK(avo_vocoder_create(&cfg, &v, &err), &err);
    avo_f0_track tr = constant_track(101, 0.01, f0);
    avo_voice_params p = {0};
    CHECK_OK(avo_vocoder_analyze(v, x, n, &tr, &p, &err), &err);
    float *y = calloc((size_t)n, sizeof(float));
    CHECK_OK(avo_vocoder_synthesize(v, &p, y, n, &err), &err);
    CHECK(all_finite(y, n));
    /* Middle 0.6 s: away from the edges where windows are clamped. */
    const int64_t a = n / 5, len = n * 3 / 5;
    double fin = peak_frequency(x + a, len, fs, f0);
    double fout = peak_frequency(y + a, len, fs, f0);
    double cents_in = 1200 * log2(fin / f0), cents_out = 1200 * log2(fout / f0);
    fprintf(stderr, "pulse train %d Hz F0 %.3f: measured in %+.3f cents, out %+.3f cents\n", fs, f0, cents_in,
            cents_out);
    CHECK_MSG(fabs(cents_in) < 0.2, "F0 measurement is off on the input: %g cents", cents_in);
    CHECK_MSG(fabs(cents_out) < 1.0, "resynthesised F0 off by %g cents", cents_out);
    /* Level: the resynthesis has the input's RMS within 1 dB. */
    double ex = 0, ey = 0;
    for (int64_t i = a; i < a + len; i++) {
        ex += (double)x[i] * x[i];
        ey += (double)y[i] * y[i];
    }
    double level_db = 10 * log10(ey / ex);
    fprintf(stderr, "  level change %+.2f dB\n", level_db);
    CHECK_MSG(fabs(level_db) < 1.0, "resynthesis level off by %g dB", level_db);
    avo_voice_params_free(&p);
    avo_f0_track_free(&tr);
    avo_vocoder_free(v);
    free(x);
    free(y);
}

/* Pulse placement under a moving F0: with a flat envelope and no aperiodicity the output is the bare
 * train of band-limited pulses the synthesis places. Each pulse's sub-sample position comes from its
 * two largest samples (an impulse at i + d gives y[i+1]/y[i] = d/(1-d)); 1/period must equal the mean
 * of the F0 track (linear between frames) over that period. Pulses at whole samples would be off by
 * up to a sample per period (7 cents at 200 Hz and 48 kHz, 35 at 320 Hz and 16 kHz). */
static void test_pulse_placement(int fs) {
    const double fp = 0.005, secs = 2.0;
    const int64_t n = (int64_t)(secs * fs), frames = (int64_t)(secs / fp) + 1;
    avo_vocoder_config cfg;
    avo_vocoder_config_default(&cfg, fs);
    avo_vocoder *v = NULL;
    avo_error err = {0};
    CHECK_OK(avo_vocoder_create(&cfg, &v, &err), &err);
    avo_voice_params p = {0};
    /* Parameters of the vocoder's shape: the analysis of silence, then overwritten. */
    float *y = calloc((size_t)n, sizeof(float));
    avo_f0_track tr = constant_track(frames, fp, 0.0);
    CHECK_OK(avo_vocoder_analyze(v, y, n, &tr, &p, &err), &err);
    for (int64_t i = 0; i < frames; i++) {
        const double t = (double)i * fp;
        /* a glide from 150 to 300 Hz over the first second, then vibrato of 100 cents at 6 Hz */
        const double c = t < 1.0 ? 1200.0 * t : 1200.0 + 100.0 * sin(2 * M_PI * 6.0 * (t - 1.0));
        p.f0_hz[i] = (float)(150.0 * pow(2.0, c / 1200.0));
    }
    for (int64_t i = 0; i < frames * p.bins; i++) {
        p.envelope[i] = 1e-4f;
        p.aperiodicity[i] = 0.0f;
    }
    CHECK_OK(avo_vocoder_synthesize(v, &p, y, n, &err), &err);
    double prev = -1, sq = 0, worst = 0;
    int used = 0;
    for (int64_t i = 1; i + 1 < n; i++) {
        if (!(y[i] > 0) || y[i] < y[i - 1] || y[i] <= y[i + 1]) continue;
        int is_max = 1;
        for (int64_t j = i - fs / 1000; j <= i + fs / 1000 && is_max; j++)
            if (j >= 0 && j < n && j != i && y[j] > y[i]) is_max = 0;
        if (!is_max) continue;
        const double pos = y[i + 1] >= y[i - 1] ? i + y[i + 1] / (y[i] + y[i + 1]) : i - y[i - 1] / (y[i] + y[i - 1]);
        if (prev >= 0 && prev > 0.05 * fs && pos < n - 0.05 * fs) {
            const double period = pos - prev;
            double mean = 0;
            for (int k = 0; k < 64; k++) {
                const double fpos = (prev + (k + 0.5) / 64.0 * period) / fs / fp;
                const int64_t f0i = (int64_t)fpos;
                mean += (p.f0_hz[f0i] + (p.f0_hz[f0i + 1] - p.f0_hz[f0i]) * (fpos - (double)f0i)) / 64.0;
            }
            const double c = 1200.0 * log2(fs / period / mean);
            sq += c * c;
            worst = fabs(c) > worst ? fabs(c) : worst;
            used++;
        }
        prev = pos;
    }
    const double rmse = used ? sqrt(sq / used) : 1e9;
    fprintf(stderr, "pulse placement at %d Hz: %d periods, F0 error %.3f cents RMSE, %.3f worst\n", fs, used, rmse, worst);
    CHECK_MSG(used > 400, "only %d pulse periods found", used);
    /* The reading of positions, not the placement, limits this at 16 kHz: up to 320 Hz the neighbours'
     * sinc tails (about 1/(pi * period) of a pulse) shift the two-sample estimate. */
    const double max_rmse = fs < 32000 ? 1.0 : 0.2, max_worst = fs < 32000 ? 3.0 : 0.6;
    CHECK_MSG(rmse < max_rmse && worst < max_worst, "pulse F0 off by %.3f cents RMSE (worst %.3f)", rmse, worst);
    avo_voice_params_free(&p);
    avo_f0_track_free(&tr);
    avo_vocoder_free(v);
    free(y);
}

static void test_all_pole_envelope(int fs, int period) {
    const double f0 = (double)fs / period;
    const int64_t n = fs / 2;
    float *x = calloc((size_t)n, sizeof(float));
    for (int64_t i = 0; i < n; i += period) x[i] = 1.0f;
    all_pole(x, n, fs, VOWEL, N_FORMANTS);
    avo_vocoder_config cfg;
    avo_vocoder_config_default(&cfg, fs);
    avo_vocoder *v = NULL;
    avo_error err = {0};
    CHECK_OK(avo_vocoder_create(&cfg, &v, &err), &err);
    avo_f0_track tr = constant_track(51, 0.01, f0);
    avo_voice_params p = {0};
    CHECK_OK(avo_vocoder_analyze(v, x, n, &tr, &p, &err), &err);
    /* A pulse train of unit impulses with period T has envelope |H|^2 / T in this vocoder's scale
     * (synthesis scales each pulse's response by sqrt(T)). Compare on the harmonic band. */
    double worst = 0, sum = 0, peak = 0;
    int count = 0;
    const double df = (double)fs / p.fft_size;
    for (int k = 0; k < p.bins; k++) {
        double tp = all_pole_power(k * df, fs, VOWEL, N_FORMANTS);
        peak = tp > peak ? tp : peak;
    }
    /* The signal only tells the envelope at its harmonics: compare there. */
    for (int64_t t = p.frames / 4; t < p.frames * 3 / 4; t++) {
        const float *env = p.envelope + t * p.bins;
        for (int h = 1; h * f0 < fs / 2.0 - f0; h++) {
            double f = h * f0;
            /* An all-pole filter falls well over 100 dB by 20 kHz; single precision and any real
             * recording stop far above that, so compare within 80 dB of the peak. */
            double tp = all_pole_power(f, fs, VOWEL, N_FORMANTS);
            if (tp < peak * 1e-8) continue;
            double truth = tp / period;
            double pos = f / df;
            int k = (int)pos;
            double fr = pos - k;
            double est = (1 - fr) * 10 * log10(env[k]) + fr * 10 * log10(env[k + 1]);
            double d = est - 10 * log10(truth);
            worst = fabs(d) > worst ? fabs(d) : worst;
            sum += fabs(d);
            count++;
        }
    }
    fprintf(stderr, "all-pole envelope %d Hz F0 %.1f: mean |error| %.3f dB, max %.3f dB\n", fs, f0, sum / count,
            worst);
    CHECK_MSG(worst < 1.0, "envelope differs from the filter's response by up to %g dB", worst);
    avo_voice_params_free(&p);
    avo_f0_track_free(&tr);
    avo_vocoder_free(v);
    free(x);
}

/* Sung vowel: vibrato, a glide, breath noise, voiced/unvoiced alternation. Returns f0 per 5 ms. */
static float *synthetic_voice(int fs, int64_t n, avo_f0_track *tr) {
    float *x = calloc((size_t)n, sizeof(float));
    const double hop = 0.005;
    int64_t frames = (int64_t)floor((double)n / (hop * fs)) + 1;
    avo_f0_track_alloc(tr, frames, hop, NULL);
    double phase = 0;
    uint64_t s = 12345;
    for (int64_t i = 0; i < n; i++) {
        double t = (double)i / fs;
        int voiced = t > 0.1 && (t < 0.9 || t > 1.1);
        double f = 180 * pow(2.0, (t / 2.0) + 0.03 * sin(2 * M_PI * 5.5 * t));
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double noise = ((double)(s >> 11) / 9007199254740992.0 - 0.5);
        if (voiced) {
            double prev = phase;
            phase += f / fs;
            if (floor(phase) != floor(prev)) x[i] += 1.0f;
            x[i] += (float)(0.02 * noise);
        } else {
            x[i] = (float)(0.1 * noise);
        }
    }
    all_pole(x, n, fs, VOWEL, N_FORMANTS);
    float p = peak_abs(x, n);
    for (int64_t i = 0; i < n; i++) {
        /* recording noise floor 80 dB under the peak */
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = x[i] * 0.5f / p + (float)(1e-4 * ((double)(s >> 11) / 9007199254740992.0 - 0.5));
    }
    for (int64_t k = 0; k < frames; k++) {
        double t = k * hop;
        int voiced = t > 0.1 && (t < 0.9 || t > 1.1);
        tr->f0_hz[k] = voiced ? (float)(180 * pow(2.0, (t / 2.0) + 0.03 * sin(2 * M_PI * 5.5 * t))) : 0.0f;
        tr->confidence[k] = voiced ? 1.0f : 0.0f;
    }
    return x;
}

static void round_trip_mcd(avo_vocoder *v, const float *x, int64_t n, const avo_f0_track *tr, double *mcd,
                           double *lsd) {
    avo_error err = {0};
    avo_voice_params a = {0}, b = {0};
    float *y = calloc((size_t)n, sizeof(float));
    CHECK_OK(avo_vocoder_analyze(v, x, n, tr, &a, &err), &err);
    CHECK_OK(avo_vocoder_synthesize(v, &a, y, n, &err), &err);
    CHECK(all_finite(y, n));
    CHECK_OK(avo_vocoder_analyze(v, y, n, tr, &b, &err), &err);
    int64_t used = 0;
    *mcd = *lsd = 99;
    CHECK_OK(avo_voice_params_distance(&a, &b, 24, mcd, lsd, &used, &err), &err);
    CHECK(used > 0);
    avo_voice_params_free(&a);
    avo_voice_params_free(&b);
    free(y);
}

static void test_round_trip_synthetic(int fs) {
    const int64_t n = 2 * fs;
    avo_f0_track tr;
    float *x = synthetic_voice(fs, n, &tr);
    avo_vocoder_config cfg;
    avo_vocoder_config_default(&cfg, fs);
    cfg.threads = 2;
    avo_vocoder *v = NULL;
    avo_error err = {0};
    CHECK_OK(avo_vocoder_create(&cfg, &v, &err), &err);
    double mcd, lsd;
    round_trip_mcd(v, x, n, &tr, &mcd, &lsd);
    fprintf(stderr, "synthetic voice %d Hz: round-trip MCD %.3f dB, LSD %.3f dB\n", fs, mcd, lsd);
    CHECK_MSG(mcd < 1.0, "round-trip MCD %g dB", mcd);
    avo_f0_track_free(&tr);
    avo_vocoder_free(v);
    free(x);
}

static void test_threads_match(void) {
    /* Counter-based noise: one and two threads give the same output. */
    const int fs = 16000;
    const int64_t n = fs;
    avo_f0_track tr;
    float *x = synthetic_voice(fs, n, &tr);
    float *y[2];
    for (int k = 0; k < 2; k++) {
        avo_vocoder_config cfg;
        avo_vocoder_config_default(&cfg, fs);
        cfg.threads = k + 1;
        avo_vocoder *v = NULL;
        avo_error err = {0};
        avo_voice_params p = {0};
        y[k] = calloc((size_t)n, sizeof(float));
        CHECK_OK(avo_vocoder_create(&cfg, &v, &err), &err);
        CHECK_OK(avo_vocoder_analyze(v, x, n, &tr, &p, &err), &err);
        CHECK_OK(avo_vocoder_synthesize(v, &p, y[k], n, &err), &err);
        avo_voice_params_free(&p);
        avo_vocoder_free(v);
    }
    CHECK(memcmp(y[0], y[1], sizeof(float) * (size_t)n) == 0);
    free(y[0]);
    free(y[1]);
    free(x);
    avo_f0_track_free(&tr);
}

static void run_edge(const char *what, int fs, const float *x, int64_t n, double f0, double frame_period,
                     float max_out) {
    avo_vocoder_config cfg;
    avo_vocoder_config_default(&cfg, fs);
    cfg.frame_period_seconds = frame_period;
    cfg.threads = 2;
    avo_vocoder *v = NULL;
    avo_error err = {0};
    CHECK_OK(avo_vocoder_create(&cfg, &v, &err), &err);
    int64_t frames = (int64_t)floor((double)n / (0.01 * fs)) + 1;
    avo_f0_track tr = constant_track(frames, 0.01, f0);
    avo_voice_params p = {0};
    avo_status st = avo_vocoder_analyze(v, x, n, &tr, &p, &err);
    CHECK_MSG(st == AVO_OK, "%s: analyze: %s", what, err.message);
    if (st == AVO_OK) {
        CHECK_MSG(p.frames == (int64_t)floor((double)n / (frame_period * fs)) + 1, "%s: %lld frames", what,
                  (long long)p.frames);
        int env_ok = 1;
        for (int64_t i = 0; i < p.frames * p.bins; i++)
            if (!isfinite(p.envelope[i]) || !(p.envelope[i] > 0) || !(p.aperiodicity[i] >= 0) ||
                !(p.aperiodicity[i] <= 1))
                env_ok = 0;
        CHECK_MSG(env_ok, "%s: envelope or aperiodicity out of range", what);
        float *y = calloc((size_t)n, sizeof(float));
        CHECK_OK(avo_vocoder_synthesize(v, &p, y, n, &err), &err);
        CHECK_MSG(all_finite(y, n), "%s: non-finite output", what);
        float pk = peak_abs(y, n);
        CHECK_MSG(pk <= max_out, "%s: output peak %g > %g", what, pk, max_out);
        free(y);
    }
    avo_voice_params_free(&p);
    avo_f0_track_free(&tr);
    avo_vocoder_free(v);
}

static void test_edge_cases(void) {
    const int fs = 16000;
    const int64_t n = fs / 2;
    float *x = calloc((size_t)n, sizeof(float));
    run_edge("silence unvoiced", fs, x, n, 0, 0.005, 1e-4f);
    run_edge("silence voiced", fs, x, n, 150, 0.005, 1e-4f);
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f;
    run_edge("DC", fs, x, n, 0, 0.005, 2.0f);
    for (int64_t i = 0; i < n; i++) {
        float s = (float)(3.0 * sin(2 * M_PI * 200 * (double)i / fs));
        x[i] = s > 1 ? 1 : s < -1 ? -1 : s;
    }
    run_edge("clipped sine", fs, x, n, 200, 0.005, 4.0f);
    float one = 0.3f;
    run_edge("1 sample", fs, &one, 1, 0, 0.005, 1.0f);
    run_edge("1 sample voiced", 44100, &one, 1, 220, 0.005, 1.0f);
    free(x);

    /* 10 minutes at 8 kHz with a 20 ms frame period: memory and time stay bounded. */
    const int fs_long = 8000;
    const int64_t n_long = (int64_t)600 * fs_long;
    float *lx = malloc(sizeof(float) * (size_t)n_long);
    for (int64_t i = 0; i < n_long; i++) lx[i] = (float)(0.3 * sin(2 * M_PI * 150 * (double)i / fs_long));
    run_edge("10 minutes", fs_long, lx, n_long, 150, 0.02, 2.0f);
    free(lx);

    /* Bad input is rejected with a message. */
    avo_vocoder_config cfg;
    avo_vocoder_config_default(&cfg, fs);
    avo_vocoder *v = NULL;
    avo_error err = {0};
    CHECK_OK(avo_vocoder_create(&cfg, &v, &err), &err);
    avo_voice_params p = {0};
    float bad[4] = {0, NAN, 0, 0};
    avo_f0_track tr = constant_track(2, 0.01, 100);
    CHECK(avo_vocoder_analyze(v, bad, 4, &tr, &p, &err) == AVO_ERR_INVALID_AUDIO && strstr(err.message, "finite"));
    CHECK(avo_vocoder_analyze(v, bad, 0, &tr, &p, &err) == AVO_ERR_INVALID_AUDIO);
    avo_f0_track_free(&tr);
    avo_vocoder_free(v);
    avo_vocoder_config_default(&cfg, 100);
    CHECK(avo_vocoder_create(&cfg, &v, &err) == AVO_ERR_INVALID_ARGUMENT && v == NULL);
}

static void test_modifications(void) {
    avo_voice_params p;
    avo_error err = {0};
    CHECK_OK(avo_voice_params_alloc(&p, 16000, 1024, 3, 0.005, &err), &err);
    p.f0_hz[0] = 100;
    p.f0_hz[1] = 0;
    p.f0_hz[2] = 200;
    avo_voice_params_transpose(&p, 12);
    CHECK_NEAR(p.f0_hz[0], 200, 1e-3);
    CHECK(p.f0_hz[1] == 0);
    CHECK_NEAR(p.f0_hz[2], 400, 1e-3);
    /* A single peak at 1000 Hz moves to 1200 Hz with ratio 1.2. */
    const double df = 16000.0 / 1024;
    for (int64_t t = 0; t < 3; t++)
        for (int k = 0; k < p.bins; k++) {
            double f = k * df;
            p.envelope[t * p.bins + k] = (float)exp(-pow((f - 1000) / 200, 2));
        }
    CHECK_OK(avo_voice_params_warp_envelope(&p, 1.2, &err), &err);
    int best = 0;
    for (int k = 0; k < p.bins; k++)
        if (p.envelope[p.bins + k] > p.envelope[p.bins + best]) best = k;
    CHECK_MSG(fabs(best * df - 1200) <= df, "peak at %g Hz", best * df);
    CHECK(avo_voice_params_warp_envelope(&p, -1, &err) == AVO_ERR_INVALID_ARGUMENT);
    avo_voice_params_free(&p);
}

/* A real recording: F0 from the project's estimator, round trip MCD under 1 dB. */
static void test_real_clip(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", avo_test_data_dir(), name);
    avo_audio a = {0};
    avo_error err = {0};
    CHECK_OK(avo_audio_read(path, &a, &err), &err);
    if (a.frames == 0) return;
    avo_f0_config fc;
    avo_f0_config_default(&fc);
    fc.method = AVO_F0_ACCURATE;
    fc.hop_seconds = 0.005;
    avo_f0_track tr = {0};
    CHECK_OK(avo_f0_estimate(a.samples, a.frames, a.sample_rate, &fc, &tr, &err), &err);
    avo_vocoder_config cfg;
    avo_vocoder_config_default(&cfg, a.sample_rate);
    cfg.threads = 2;
    avo_vocoder *v = NULL;
    CHECK_OK(avo_vocoder_create(&cfg, &v, &err), &err);
    if (v && tr.frames > 0) {
        double mcd, lsd;
        round_trip_mcd(v, a.samples, a.frames, &tr, &mcd, &lsd);
        fprintf(stderr, "%s: round-trip MCD %.3f dB, LSD %.3f dB\n", name, mcd, lsd);
        CHECK_MSG(mcd < 1.0, "%s: round-trip MCD %g dB", name, mcd);
    }
    avo_vocoder_free(v);
    avo_f0_track_free(&tr);
    avo_audio_free(&a);
}

/* A 44.1 kHz recording resampled to 24 kHz (the fast preset's rate): the band near Nyquist is
 * almost empty after the resampler's low-pass, where leakage of the resynthesis used to read as a
 * 1.5 dB MCD. Also the recording upsampled to 48 kHz, with 22-24 kHz empty. */
static void test_resampled_clip(const char *name, int rate, double frame_period) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", avo_test_data_dir(), name);
    avo_audio a = {0}, m = {0};
    avo_error err = {0};
    CHECK_OK(avo_audio_read(path, &a, &err), &err);
    CHECK_OK(avo_audio_to_mono(&a, &m, &err), &err);
    if (m.frames == 0) return;
    const int64_t n = (int64_t)((double)m.frames * rate / m.sample_rate);
    float *x = calloc((size_t)n, sizeof(float));
    CHECK_OK(avo_resample_buffer(m.samples, m.frames, m.sample_rate, rate, x, n, &err), &err);
    avo_f0_config fc;
    avo_f0_config_default(&fc);
    fc.method = AVO_F0_ACCURATE;
    fc.hop_seconds = frame_period;
    avo_f0_track tr = {0};
    CHECK_OK(avo_f0_estimate(x, n, rate, &fc, &tr, &err), &err);
    avo_vocoder_config cfg;
    avo_vocoder_config_default(&cfg, rate);
    cfg.frame_period_seconds = frame_period;
    cfg.threads = 2;
    avo_vocoder *v = NULL;
    CHECK_OK(avo_vocoder_create(&cfg, &v, &err), &err);
    if (v && tr.frames > 0) {
        double mcd, lsd;
        round_trip_mcd(v, x, n, &tr, &mcd, &lsd);
        fprintf(stderr, "%s at %d Hz, %g ms frames: round-trip MCD %.3f dB, LSD %.3f dB\n", name, rate,
                frame_period * 1000, mcd, lsd);
        CHECK_MSG(mcd < 1.0, "%s at %d Hz: round-trip MCD %g dB", name, rate, mcd);
    }
    avo_vocoder_free(v);
    avo_f0_track_free(&tr);
    free(x);
    avo_audio_free(&m);
    avo_audio_free(&a);
}

int main(void) {
    test_modifications();
    test_pulse_train_f0(16000, 100);
    test_pulse_train_f0(44100, 200);
    test_pulse_train_f0(48000, 150);
    test_pulse_placement(16000);
    test_pulse_placement(48000);
    test_all_pole_envelope(16000, 133);
    test_all_pole_envelope(44100, 200);
    test_round_trip_synthetic(16000);
    test_round_trip_synthetic(44100);
    test_threads_match();
    test_edge_cases();
    test_real_clip("singing/nus48e_JLEE_11.flac");
    test_real_clip("speech/vctk_p233_ref.flac");
    /* The speech clip with the most voicing changes per second: the hardest round trip in the data. */
    test_real_clip("speech/libri_1688-142285-0002.flac");
    test_resampled_clip("singing/vocadito_10.flac", 24000, 0.010);
    test_resampled_clip("singing/vocadito_10.flac", 48000, 0.005);
    TEST_MAIN_END();
}
