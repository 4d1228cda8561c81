/* sdr module: BSS Eval v4 images-mode SDR (museval framing, silent windows, median) and SI-SDR against
 * cases whose answer is known in closed form. */
#include "autovoice/sdr.h"
#include "test_util.h"

#include <stdint.h>

/* Deterministic white noise in [-1, 1]. */
static float lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) * (1.0 / 8388608.0) - 1.0);
}

static void fill_noise(avo_audio *a, uint32_t seed) {
    for (int64_t i = 0; i < a->frames * a->channels; i++) a->samples[i] = 0.5f * lcg(&seed);
}

static double energy(const float *x, int64_t a, int64_t b) {
    double e = 0;
    for (int64_t i = a; i < b; i++) e += (double)x[i] * x[i];
    return e;
}

static void test_framing(void) {
    CHECK(avo_bss_eval_windows(44100 * 3 + 22050, 44100, 44100) == 3); /* the last half second is dropped */
    CHECK(avo_bss_eval_windows(44100 * 3, 44100, 44100) == 3);
    CHECK(avo_bss_eval_windows(1000, 44100, 44100) == 1);              /* shorter than a window: one window */
    CHECK(avo_bss_eval_windows(44100 * 4, 2 * 44100, 44100) == 3);      /* overlap: (4 - 2 + 1) / 1 */
    CHECK(avo_bss_eval_windows(0, 44100, 44100) == 0);
}

/* estimate = reference + noise scaled in every window to 1/10 of the reference energy there (and for
 * the second source to 1/100): SDR is exactly 10 dB and 20 dB in every window. */
static void test_known_noise_sdr(void) {
    const int rate = 8000, C = 2;
    const int64_t n = 5 * rate;
    avo_audio ref[2], est[2];
    for (int j = 0; j < 2; j++) {
        avo_audio_alloc(&ref[j], rate, C, n, NULL);
        avo_audio_alloc(&est[j], rate, C, n, NULL);
        fill_noise(&ref[j], 11 + j);
        fill_noise(&est[j], 77 + j); /* the noise, scaled below */
    }
    const double target[2] = {10.0, 20.0};
    for (int j = 0; j < 2; j++) {
        for (int64_t w = 0; w < 5; w++) {
            double es = 0, en = 0;
            for (int c = 0; c < C; c++) {
                es += energy(avo_audio_channel(&ref[j], c), w * rate, (w + 1) * rate);
                en += energy(avo_audio_channel(&est[j], c), w * rate, (w + 1) * rate);
            }
            const double g = sqrt(es / en * pow(10.0, -target[j] / 10.0));
            for (int c = 0; c < C; c++) {
                float *e = avo_audio_channel(&est[j], c);
                const float *s = avo_audio_channel(&ref[j], c);
                for (int64_t i = w * rate; i < (w + 1) * rate; i++) e[i] = (float)(s[i] + g * e[i]);
            }
        }
    }
    double fw[10], med[2];
    avo_error err;
    CHECK_OK(avo_bss_eval_sdr(ref, est, 2, rate, rate, fw, med, &err), &err);
    CHECK_NEAR(med[0], 10.0, 1e-3);
    CHECK_NEAR(med[1], 20.0, 1e-3);
    for (int w = 0; w < 5; w++) {
        CHECK_NEAR(fw[w], 10.0, 1e-3);
        CHECK_NEAR(fw[5 + w], 20.0, 1e-3);
    }
    /* A perfect estimate gives +inf. */
    CHECK_OK(avo_bss_eval_sdr(ref, ref, 2, rate, rate, NULL, med, &err), &err);
    CHECK(isinf(med[0]) && med[0] > 0);
    for (int j = 0; j < 2; j++) {
        avo_audio_free(&ref[j]);
        avo_audio_free(&est[j]);
    }
}

/* Images-mode SDR is the window SNR: a filtered or rescaled reference is penalised by exactly its
 * difference from the reference (museval fits 512-tap filters but they cancel out of the SDR), while
 * SI-SDR forgives the gain entirely. */
static void test_filter_and_gain(void) {
    const int rate = 8000;
    const int64_t n = 3 * rate;
    avo_audio ref, half, filt;
    avo_audio_alloc(&ref, rate, 1, n, NULL);
    avo_audio_alloc(&half, rate, 1, n, NULL);
    avo_audio_alloc(&filt, rate, 1, n, NULL);
    fill_noise(&ref, 5);
    for (int64_t i = 0; i < n; i++) {
        half.samples[i] = 0.5f * ref.samples[i];
        /* 3-tap low-pass [0.25 0.5 0.25] delayed by one sample */
        const float a = ref.samples[i], b = i > 0 ? ref.samples[i - 1] : 0, c = i > 1 ? ref.samples[i - 2] : 0;
        filt.samples[i] = 0.25f * a + 0.5f * b + 0.25f * c;
    }
    double med, si;
    avo_error err;
    CHECK_OK(avo_bss_eval_sdr(&ref, &half, 1, rate, rate, NULL, &med, &err), &err);
    CHECK_NEAR(med, 10.0 * log10(4.0), 1e-4); /* error = half the reference: 6.02 dB */
    CHECK_OK(avo_si_sdr_audio(&ref, &half, &si, &err), &err);
    CHECK(isinf(si) && si > 0);

    /* The filtered reference: SDR equals the SNR against the reference computed here directly. */
    double fw[3];
    CHECK_OK(avo_bss_eval_sdr(&ref, &filt, 1, rate, rate, fw, &med, &err), &err);
    for (int w = 0; w < 3; w++) {
        double es = 0, ee = 0;
        for (int64_t i = w * rate; i < (w + 1) * rate; i++) {
            es += (double)ref.samples[i] * ref.samples[i];
            const double d = (double)filt.samples[i] - ref.samples[i];
            ee += d * d;
        }
        CHECK_NEAR(fw[w], 10.0 * log10(es / ee), 1e-6);
    }
    CHECK_MSG(med < 3.0, "filtered white noise should score low, got %g", med);
    CHECK_OK(avo_si_sdr_audio(&ref, &filt, &si, &err), &err);
    CHECK_MSG(si < 3.0, "SI-SDR of a filtered reference %g", si);
    avo_audio_free(&ref);
    avo_audio_free(&half);
    avo_audio_free(&filt);
}

/* SI-SDR with noise orthogonal to the reference at 1/100 of its energy: exactly 20 dB, for any gain. */
static void test_si_sdr_known(void) {
    const int64_t n = 20000;
    float *s = malloc(sizeof(float) * n), *e = malloc(sizeof(float) * n), *z = malloc(sizeof(float) * n);
    uint32_t seed = 9;
    for (int64_t i = 0; i < n; i++) {
        s[i] = lcg(&seed);
        z[i] = lcg(&seed);
    }
    double ss = 0, sz = 0, zz = 0;
    for (int64_t i = 0; i < n; i++) {
        ss += (double)s[i] * s[i];
        sz += (double)s[i] * z[i];
    }
    for (int64_t i = 0; i < n; i++) z[i] -= (float)(sz / ss * s[i]);
    for (int64_t i = 0; i < n; i++) zz += (double)z[i] * z[i];
    const double g = sqrt(ss / zz / 100.0);
    for (int64_t i = 0; i < n; i++) e[i] = (float)(3.0 * (s[i] + g * z[i]));
    CHECK_NEAR(avo_si_sdr(s, e, n), 20.0, 0.01);
    for (int64_t i = 0; i < n; i++) e[i] = 0;
    CHECK(isinf(avo_si_sdr(s, e, n)) && avo_si_sdr(s, e, n) < 0);
    free(s);
    free(e);
    free(z);
}

/* A window where a reference (or an estimate) is all zeros is skipped (NaN) and left out of the median,
 * as museval does; a reference silent as a whole is an error. */
static void test_silent_windows(void) {
    const int rate = 4000;
    const int64_t n = 4 * rate;
    avo_audio ref, est;
    avo_audio_alloc(&ref, rate, 1, n, NULL);
    avo_audio_alloc(&est, rate, 1, n, NULL);
    fill_noise(&ref, 3);
    for (int64_t i = 0; i < n; i++) est.samples[i] = ref.samples[i] * (i < 2 * rate ? 0.9f : 0.5f);
    for (int64_t i = rate; i < 2 * rate; i++) ref.samples[i] = est.samples[i] = 0; /* window 1 silent */
    double fw[4], med;
    avo_error err;
    CHECK_OK(avo_bss_eval_sdr(&ref, &est, 1, rate, rate, fw, &med, &err), &err);
    CHECK(isnan(fw[1]));
    CHECK_NEAR(fw[0], 20.0, 1e-3);          /* error 0.1 of the reference */
    CHECK_NEAR(fw[2], 10 * log10(4.0), 1e-3); /* error 0.5 */
    CHECK_NEAR(med, 10 * log10(4.0), 1e-3); /* median of {20, 6.02, 6.02} */
    memset(ref.samples, 0, sizeof(float) * n);
    CHECK(avo_bss_eval_sdr(&ref, &est, 1, rate, rate, NULL, &med, &err) == AVO_ERR_INVALID_AUDIO);
    avo_audio_free(&ref);
    avo_audio_free(&est);
}

/* Estimates shorter than the reference are zero-padded (museval's pad_or_truncate). */
static void test_padding(void) {
    const int rate = 4000;
    avo_audio ref, est;
    avo_audio_alloc(&ref, rate, 1, 2 * rate, NULL);
    avo_audio_alloc(&est, rate, 1, rate, NULL);
    fill_noise(&ref, 8);
    memcpy(est.samples, ref.samples, sizeof(float) * rate);
    double fw[2], med;
    avo_error err;
    CHECK_OK(avo_bss_eval_sdr(&ref, &est, 1, rate, rate, fw, &med, &err), &err);
    CHECK(isinf(fw[0]));
    CHECK(isnan(fw[1])); /* the padded estimate is silent there */
    avo_audio_free(&ref);
    avo_audio_free(&est);
}

int main(void) {
    test_framing();
    test_known_noise_sdr();
    test_filter_and_gain();
    test_si_sdr_known();
    test_silent_windows();
    test_padding();
    TEST_MAIN_END();
}
