/* Spectral front end of the evaluator: 16 kHz, 25 ms Hamming frames every 10 ms, 40 HTK mel bands
 * (20 Hz .. 7.6 kHz), per-frame energy and spectral flatness, and the two cepstrum scalings. */
#include "eval/eval_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define MEL_LO_HZ 20.0
#define MEL_HI_HZ 7600.0
#define FLAT_LO_HZ 100.0
#define FLAT_HI_HZ 7000.0
#define POWER_FLOOR 1e-10f
#define UNVOICED_SMOOTH_HZ 150.0f /* unvoiced frames get a fixed smoothing of about a speaking F0 */

static double hz_to_mel(double hz) { return 2595.0 * log10(1.0 + hz / 700.0); }
static double mel_to_hz(double mel) { return 700.0 * (pow(10.0, mel / 2595.0) - 1.0); }

int ev_threads(int threads) { return threads > 0 ? threads : omp_get_max_threads(); }

avo_status ev_frontend_create(ev_frontend *fe, int preemph, avo_error *err) {
    memset(fe, 0, sizeof *fe);
    fe->window = fftwf_alloc_real(EV_WIN);
    float *buf = fftwf_alloc_real(EV_NFFT);
    fftwf_complex *spec = fftwf_alloc_complex(EV_NBINS);
    if (!fe->window || !buf || !spec) {
        fftwf_free(buf);
        fftwf_free(spec);
        ev_frontend_free(fe);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "eval: out of memory for the spectral front end");
    }
    for (int i = 0; i < EV_WIN; i++) fe->window[i] = (float)(0.54 - 0.46 * cos(2.0 * M_PI * i / (EV_WIN - 1)));
    fe->plan = fftwf_plan_dft_r2c_1d(EV_NFFT, buf, spec, FFTW_ESTIMATE);
    fftwf_free(buf);
    fftwf_free(spec);
    if (!fe->plan) {
        ev_frontend_free(fe);
        return avo_error_set(err, AVO_ERR_INTERNAL, "eval: FFTW could not plan a %d-point transform", EV_NFFT);
    }
    const double mlo = hz_to_mel(MEL_LO_HZ), mhi = hz_to_mel(MEL_HI_HZ);
    for (int m = 0; m < EV_NMEL; m++) {
        const double f0 = mel_to_hz(mlo + (mhi - mlo) * m / (EV_NMEL + 1));
        const double f1 = mel_to_hz(mlo + (mhi - mlo) * (m + 1) / (EV_NMEL + 1));
        const double f2 = mel_to_hz(mlo + (mhi - mlo) * (m + 2) / (EV_NMEL + 1));
        fe->lo[m] = EV_NBINS;
        fe->hi[m] = 0;
        for (int k = 0; k < EV_NBINS; k++) {
            const double f = (double)k * EV_RATE / EV_NFFT;
            double w = 0.0;
            if (f > f0 && f <= f1) w = (f - f0) / (f1 - f0);
            else if (f > f1 && f < f2) w = (f2 - f) / (f2 - f1);
            if (w > 0.0 && preemph) {
                /* |1 - 0.97 e^{-jw}|^2: pre-emphasis applied to the power spectrum */
                const double om = 2.0 * M_PI * f / EV_RATE;
                w *= 1.0 + 0.97 * 0.97 - 2.0 * 0.97 * cos(om);
            }
            fe->fb[m][k] = (float)w;
            if (w > 0.0) {
                if (k < fe->lo[m]) fe->lo[m] = k;
                fe->hi[m] = k + 1;
            }
        }
        if (fe->hi[m] <= fe->lo[m]) { /* narrow low bands can fall between bins: take the nearest bin */
            int k = (int)lround(f1 * EV_NFFT / EV_RATE);
            fe->lo[m] = k;
            fe->hi[m] = k + 1;
            fe->fb[m][k] = 1.0f;
        }
    }
    return AVO_OK;
}

void ev_frontend_free(ev_frontend *fe) {
    if (!fe) return;
    if (fe->plan) fftwf_destroy_plan(fe->plan);
    fftwf_free(fe->window);
    memset(fe, 0, sizeof *fe);
}

avo_status ev_to_16k_mono(const avo_audio *in, avo_audio *out, avo_error *err) {
    memset(out, 0, sizeof *out);
    if (!in || !in->samples || in->frames <= 0 || in->channels <= 0 || in->sample_rate <= 0)
        return avo_error_set(err, AVO_ERR_INVALID_AUDIO, "eval: empty or invalid audio buffer");
    avo_audio mono = {0};
    avo_status st = avo_audio_to_mono(in, &mono, err);
    if (st) return st;
    if (mono.sample_rate == EV_RATE) {
        *out = mono;
        return AVO_OK;
    }
    st = avo_audio_resample(&mono, EV_RATE, out, err);
    avo_audio_free(&mono);
    return st;
}

void ev_frames_free(ev_frames *f) {
    if (!f) return;
    free(f->logmel);
    free(f->energy_db);
    free(f->flatness_db);
    memset(f, 0, sizeof *f);
}

/* Averages pw over a rectangle `width` bins wide around each bin (edges: over the part inside). With
 * width = F0 this removes the harmonic ripple (as CheapTrick's first step), so the mel spectrum
 * follows the envelope rather than where the harmonics fall: an octave transposition then barely
 * moves the cepstra. */
static void smooth_rect(const float *pw, float width, float *out) {
    double cum[EV_NBINS + 1]; /* cum[j] = power up to bin edge j - 0.5 */
    cum[0] = 0.0;
    for (int k = 0; k < EV_NBINS; k++) cum[k + 1] = cum[k] + pw[k];
    const double half = 0.5 * width;
    for (int k = 0; k < EV_NBINS; k++) {
        double lo = k + 0.5 - half, hi = k + 0.5 + half; /* in cum coordinates */
        if (lo < 0.0) lo = 0.0;
        if (hi > EV_NBINS) hi = EV_NBINS;
        const int il = (int)lo, ih = (int)hi;
        const double cl = cum[il] + (il < EV_NBINS ? (lo - il) * pw[il] : 0.0);
        const double ch = cum[ih] + (ih < EV_NBINS ? (hi - ih) * pw[ih] : 0.0);
        out[k] = (float)((ch - cl) / (hi - lo));
    }
}

/* One frame: power spectrum (smoothed over f0_hz when > 0) -> mel log power; flatness of the raw one. */
static void analyse_frame(const ev_frontend *fe, const fftwf_complex *spec, float f0_hz, float *pw, float *logmel,
                          float *flat_db) {
    for (int k = 0; k < EV_NBINS; k++) pw[k] = spec[k][0] * spec[k][0] + spec[k][1] * spec[k][1];
    const int klo = (int)(FLAT_LO_HZ * EV_NFFT / EV_RATE), khi = (int)(FLAT_HI_HZ * EV_NFFT / EV_RATE);
    double lsum = 0.0, sum = 0.0;
    for (int k = klo; k < khi; k++) {
        const double p = (double)pw[k] + 1e-12;
        lsum += log(p);
        sum += p;
    }
    const int nk = khi - klo;
    *flat_db = (float)(10.0 / M_LN10 * (lsum / nk - log(sum / nk)));
    float sm[EV_NBINS];
    const float *use = pw;
    if (f0_hz > 0.0f) {
        smooth_rect(pw, f0_hz * EV_NFFT / EV_RATE, sm);
        use = sm;
    }
    for (int m = 0; m < EV_NMEL; m++) {
        float e = 0.0f;
        for (int k = fe->lo[m]; k < fe->hi[m]; k++) e += fe->fb[m][k] * use[k];
        logmel[m] = logf(e > POWER_FLOOR ? e : POWER_FLOOR);
    }
}

avo_status ev_frame_f0(const float *x, int64_t n, int threads, float **f0, avo_error *err) {
    *f0 = NULL;
    avo_f0_config cfg;
    avo_f0_config_default(&cfg);
    cfg.method = AVO_F0_FAST;
    cfg.hop_seconds = (double)EV_HOP / EV_RATE;
    cfg.threads = threads;
    avo_f0_track t = {0};
    avo_status st = avo_f0_estimate(x, n, EV_RATE, &cfg, &t, err);
    if (st) return st;
    const int64_t T = n / EV_HOP + 1;
    float *v = calloc((size_t)T, sizeof(float));
    if (!v) {
        avo_f0_track_free(&t);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "eval: out of memory for an F0 track");
    }
    for (int64_t i = 0; i < T && i < t.frames; i++) v[i] = t.f0_hz[i] > 0.0f ? t.f0_hz[i] : UNVOICED_SMOOTH_HZ;
    for (int64_t i = t.frames; i < T; i++) v[i] = UNVOICED_SMOOTH_HZ;
    avo_f0_track_free(&t);
    *f0 = v;
    return AVO_OK;
}

avo_status ev_analyse(const ev_frontend *fe, const float *x, int64_t n, int threads, const float *smooth_hz,
                      ev_frames *out, avo_error *err) {
    memset(out, 0, sizeof *out);
    if (!x || n <= 0) return avo_error_set(err, AVO_ERR_INVALID_AUDIO, "eval: empty signal");
    const int64_t T = n / EV_HOP + 1;
    out->logmel = malloc(sizeof(float) * (size_t)T * EV_NMEL);
    out->energy_db = malloc(sizeof(float) * (size_t)T);
    out->flatness_db = malloc(sizeof(float) * (size_t)T);
    if (!out->logmel || !out->energy_db || !out->flatness_db) {
        ev_frames_free(out);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "eval: out of memory for %lld frames", (long long)T);
    }
    out->n = T;
    int failed = 0;
#pragma omp parallel num_threads(ev_threads(threads))
    {
        float *buf = fftwf_alloc_real(EV_NFFT);
        fftwf_complex *spec = fftwf_alloc_complex(EV_NBINS);
        float pw[EV_NBINS];
        if (!buf || !spec) {
#pragma omp atomic write
            failed = 1;
        } else {
#pragma omp for schedule(static)
            for (int64_t t = 0; t < T; t++) {
                const int64_t start = t * EV_HOP - EV_WIN / 2;
                double ms = 0.0;
                for (int i = 0; i < EV_WIN; i++) {
                    const int64_t k = start + i;
                    const float v = (k >= 0 && k < n) ? x[k] : 0.0f;
                    ms += (double)v * v;
                    buf[i] = v * fe->window[i];
                }
                for (int i = EV_WIN; i < EV_NFFT; i++) buf[i] = 0.0f;
                fftwf_execute_dft_r2c(fe->plan, buf, spec);
                analyse_frame(fe, spec, smooth_hz ? smooth_hz[t] : 0.0f, pw, out->logmel + t * EV_NMEL,
                              &out->flatness_db[t]);
                out->energy_db[t] = (float)(10.0 * log10(ms / EV_WIN + 1e-12));
            }
        }
        fftwf_free(buf);
        fftwf_free(spec);
    }
    if (failed) {
        ev_frames_free(out);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "eval: out of memory for FFT buffers");
    }
    return AVO_OK;
}

int64_t ev_activity(const ev_frames *f, unsigned char *active) {
    float top = -1e30f;
    for (int64_t t = 0; t < f->n; t++)
        if (f->energy_db[t] > top) top = f->energy_db[t];
    const float thr = fmaxf(top - 40.0f, -70.0f);
    int64_t count = 0;
    for (int64_t t = 0; t < f->n; t++) {
        active[t] = f->energy_db[t] > thr;
        count += active[t];
    }
    return count;
}

void ev_cepstra(const float *logmel, int64_t n, int first, int count, int true_scale, float *out) {
    /* DCT-II basis; true scale: c_k = (1/M) sum_m (0.5 ln P_m) cos(pi k (m + 1/2) / M), the real cepstrum
     * of the log-amplitude mel spectrum. Orthonormal otherwise. */
    float basis[EV_NMEL * EV_NMEL];
    for (int j = 0; j < count; j++) {
        const int k = first + j;
        double scale = true_scale ? 0.5 / EV_NMEL : (k == 0 ? sqrt(1.0 / EV_NMEL) : sqrt(2.0 / EV_NMEL));
        for (int m = 0; m < EV_NMEL; m++) basis[j * EV_NMEL + m] = (float)(scale * cos(M_PI * k * (m + 0.5) / EV_NMEL));
    }
    for (int64_t t = 0; t < n; t++) {
        const float *l = logmel + t * EV_NMEL;
        float *c = out + t * count;
        for (int j = 0; j < count; j++) {
            float s = 0.0f;
            for (int m = 0; m < EV_NMEL; m++) s += basis[j * EV_NMEL + m] * l[m];
            c[j] = s;
        }
    }
}
