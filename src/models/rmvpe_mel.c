/* RMVPE's log-mel front end on the host (rmvpe_internal.h): what upstream computes as a convolution
 * with a windowed DFT basis, done here with an FFTW real transform per frame. The mel filterbank is
 * librosa's mel(sr=16000, n_fft=1024, n_mels=128, fmin=30, fmax=8000, htk=True, norm="slaney"),
 * built in double and kept as one run of non-zero weights per band. */
#include "models/rmvpe_internal.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NBINS (RMVPE_NFFT / 2 + 1)
#define MEL_FMIN 30.0
#define MEL_FMAX 8000.0
#define LOG_FLOOR 1e-5f

struct rmvpe_mel {
    float window[RMVPE_NFFT];
    float weight[RMVPE_MELS][NBINS]; /* zero outside [lo, hi) */
    int lo[RMVPE_MELS], hi[RMVPE_MELS];
    fftwf_plan plan; /* r2c of RMVPE_NFFT, run with new-array calls on per-call buffers */
};

static double hz_to_mel(double f) { return 2595.0 * log10(1.0 + f / 700.0); }
static double mel_to_hz(double m) { return 700.0 * (pow(10.0, m / 2595.0) - 1.0); }

static void build_filterbank(rmvpe_mel *m) {
    double edge[RMVPE_MELS + 2];
    double m0 = hz_to_mel(MEL_FMIN), m1 = hz_to_mel(MEL_FMAX);
    for (int i = 0; i < RMVPE_MELS + 2; i++) edge[i] = mel_to_hz(m0 + (m1 - m0) * i / (RMVPE_MELS + 1));
    for (int b = 0; b < RMVPE_MELS; b++) {
        double lower_w = edge[b + 1] - edge[b], upper_w = edge[b + 2] - edge[b + 1];
        double norm = 2.0 / (edge[b + 2] - edge[b]); /* Slaney: unit area per triangle */
        m->lo[b] = NBINS;
        m->hi[b] = 0;
        for (int k = 0; k < NBINS; k++) {
            double f = (double)RMVPE_SR / 2 * k / (NBINS - 1); /* as np.linspace(0, sr/2, bins) */
            double up = (f - edge[b]) / lower_w, down = (edge[b + 2] - f) / upper_w;
            double w = up < down ? up : down;
            m->weight[b][k] = w > 0 ? (float)(w * norm) : 0.0f;
            if (w > 0) {
                if (k < m->lo[b]) m->lo[b] = k;
                m->hi[b] = k + 1;
            }
        }
        if (m->hi[b] < m->lo[b]) m->lo[b] = m->hi[b] = 0;
    }
}

avo_status rmvpe_mel_create(rmvpe_mel **out, avo_error *err) {
    *out = NULL;
    rmvpe_mel *m = calloc(1, sizeof *m);
    float *buf = fftwf_alloc_real(RMVPE_NFFT);
    fftwf_complex *spec = fftwf_alloc_complex(NBINS);
    if (m && buf && spec) m->plan = fftwf_plan_dft_r2c_1d(RMVPE_NFFT, buf, spec, FFTW_ESTIMATE);
    fftwf_free(buf);
    fftwf_free(spec);
    if (!m || !m->plan) {
        free(m);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "RMVPE: cannot set up the mel front end (out of memory)");
    }
    for (int i = 0; i < RMVPE_NFFT; i++) /* periodic Hann, as torch.hann_window(periodic=True) */
        m->window[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / RMVPE_NFFT));
    build_filterbank(m);
    *out = m;
    return AVO_OK;
}

void rmvpe_mel_free(rmvpe_mel *m) {
    if (!m) return;
    fftwf_destroy_plan(m->plan);
    free(m);
}

/* Index i mirrored into [0, n) without repeating the edge sample (numpy/torch "reflect"), applied
 * again while still outside, which only happens for inputs shorter than half a window. */
static int64_t reflect(int64_t i, int64_t n) {
    if (n == 1) return 0;
    int64_t period = 2 * (n - 1);
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - i;
}

avo_status rmvpe_mel_frames(const rmvpe_mel *m, const float *samples, int64_t n, int64_t first, int64_t count,
                            float *out, avo_error *err) {
    if (!m || !samples || n < 1 || first < 0 || count < 0 || !out)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "RMVPE mel: bad arguments");
    float *buf = fftwf_alloc_real(RMVPE_NFFT);
    fftwf_complex *spec = fftwf_alloc_complex(NBINS);
    float *mag = malloc(NBINS * sizeof(float));
    if (!buf || !spec || !mag) {
        fftwf_free(buf);
        fftwf_free(spec);
        free(mag);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "RMVPE mel: out of memory");
    }
    for (int64_t f = 0; f < count; f++) {
        int64_t start = (first + f) * RMVPE_HOP - RMVPE_NFFT / 2;
        if (start >= 0 && start + RMVPE_NFFT <= n) {
            const float *s = samples + start;
            for (int i = 0; i < RMVPE_NFFT; i++) buf[i] = s[i] * m->window[i];
        } else {
            for (int i = 0; i < RMVPE_NFFT; i++) buf[i] = samples[reflect(start + i, n)] * m->window[i];
        }
        fftwf_execute_dft_r2c(m->plan, buf, spec);
        for (int k = 0; k < NBINS; k++) mag[k] = sqrtf(spec[k][0] * spec[k][0] + spec[k][1] * spec[k][1]);
        float *o = out + f * RMVPE_MELS;
        for (int b = 0; b < RMVPE_MELS; b++) {
            float acc = 0.0f;
            for (int k = m->lo[b]; k < m->hi[b]; k++) acc += m->weight[b][k] * mag[k];
            o[b] = logf(acc > LOG_FLOOR ? acc : LOG_FLOOR);
        }
    }
    fftwf_free(buf);
    fftwf_free(spec);
    free(mag);
    return AVO_OK;
}
