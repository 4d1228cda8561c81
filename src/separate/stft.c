/* STFT and weighted overlap-add inverse for the separator. */
#include "separate/sep_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int sep_stft_init(sep_stft *st, int n) {
    memset(st, 0, sizeof *st);
    st->n = n;
    st->hop = n / 4;
    st->bins = n / 2 + 1;
    st->win = fftwf_alloc_real((size_t)n);
    float *buf = fftwf_alloc_real((size_t)n);
    fftwf_complex *cbuf = fftwf_alloc_complex((size_t)st->bins);
    if (!st->win || !buf || !cbuf) {
        fftwf_free(buf);
        fftwf_free(cbuf);
        sep_stft_free(st);
        return -1;
    }
    for (int i = 0; i < n; i++) st->win[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / n));
    st->fwd = fftwf_plan_dft_r2c_1d(n, buf, cbuf, FFTW_ESTIMATE);
    st->inv = fftwf_plan_dft_c2r_1d(n, cbuf, buf, FFTW_ESTIMATE);
    fftwf_free(buf);
    fftwf_free(cbuf);
    if (!st->fwd || !st->inv) {
        sep_stft_free(st);
        return -1;
    }
    return 0;
}

void sep_stft_free(sep_stft *st) {
    if (st->fwd) fftwf_destroy_plan(st->fwd);
    if (st->inv) fftwf_destroy_plan(st->inv);
    fftwf_free(st->win);
    memset(st, 0, sizeof *st);
}

int64_t sep_stft_frames(const sep_stft *st, int64_t len) { return len / st->hop + 1; }

int sep_stft_forward(const sep_stft *st, const float *x, int64_t len, fftwf_complex *spec, int threads) {
    const int64_t T = sep_stft_frames(st, len);
    const int n = st->n, half = n / 2, bins = st->bins;
    int failed = 0;
#pragma omp parallel num_threads(threads)
    {
        float *buf = fftwf_alloc_real((size_t)n);
        fftwf_complex *out = fftwf_alloc_complex((size_t)bins);
        if (!buf || !out) {
#pragma omp atomic write
            failed = 1;
        } else {
#pragma omp for schedule(static)
            for (int64_t t = 0; t < T; t++) {
                const int64_t start = t * st->hop - half;
                for (int i = 0; i < n; i++) {
                    const int64_t k = start + i;
                    buf[i] = (k >= 0 && k < len) ? x[k] * st->win[i] : 0.0f;
                }
                fftwf_execute_dft_r2c(st->fwd, buf, out);
                memcpy(spec + t * bins, out, sizeof(fftwf_complex) * (size_t)bins);
            }
        }
        fftwf_free(buf);
        fftwf_free(out);
    }
    return failed ? -1 : 0;
}

int sep_stft_inverse(const sep_stft *st, const fftwf_complex *spec, int64_t len, float *y, int threads) {
    const int64_t T = sep_stft_frames(st, len);
    const int n = st->n, half = n / 2, bins = st->bins, hop = st->hop;
    /* Frames are synthesised in parallel chunks, then added sequentially (additions overlap). */
    const int64_t chunk = 256;
    float *frames = fftwf_alloc_real((size_t)chunk * (size_t)n);
    float *wsum = calloc((size_t)len + 1, sizeof(float));
    if (!frames || !wsum) {
        fftwf_free(frames);
        free(wsum);
        return -1;
    }
    memset(y, 0, sizeof(float) * (size_t)len);
    int failed = 0;
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
        const int64_t t1 = t0 + chunk < T ? t0 + chunk : T;
#pragma omp parallel num_threads(threads)
        {
            fftwf_complex *in = fftwf_alloc_complex((size_t)bins);
            if (!in) {
#pragma omp atomic write
                failed = 1;
            } else {
#pragma omp for schedule(static)
                for (int64_t t = t0; t < t1; t++) {
                    memcpy(in, spec + t * bins, sizeof(fftwf_complex) * (size_t)bins);
                    float *f = frames + (t - t0) * n;
                    fftwf_execute_dft_c2r(st->inv, in, f);
                    const float g = 1.0f / (float)n;
                    for (int i = 0; i < n; i++) f[i] *= g * st->win[i];
                }
            }
            fftwf_free(in);
        }
        for (int64_t t = t0; t < t1; t++) {
            const float *f = frames + (t - t0) * n;
            const int64_t start = t * hop - half;
            const int i0 = start < 0 ? (int)-start : 0;
            const int i1 = start + n > len ? (int)(len - start) : n;
            for (int i = i0; i < i1; i++) {
                y[start + i] += f[i];
                wsum[start + i] += st->win[i] * st->win[i];
            }
        }
    }
    /* Dividing by the summed squared window makes analysis + synthesis the identity everywhere,
     * including the edges where fewer frames overlap. */
    for (int64_t i = 0; i < len; i++) y[i] = wsum[i] > 1e-6f ? y[i] / wsum[i] : 0.0f;
    fftwf_free(frames);
    free(wsum);
    return failed ? -1 : 0;
}
