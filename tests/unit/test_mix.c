/* mixing: loudness matching, true-peak ceiling, length and channel handling, no clicks. */
#include "autovoice/mix.h"
#include "test_util.h"

static void sine(avo_audio *a, int rate, int ch, int64_t n, double hz, float amp) {
    avo_audio_alloc(a, rate, ch, n, NULL);
    for (int c = 0; c < ch; c++)
        for (int64_t i = 0; i < n; i++) avo_audio_channel(a, c)[i] = amp * (float)sin(2 * M_PI * hz * i / rate);
}

static void test_limiter_ceiling(void) {
    /* A loud tone whose inter-sample peaks exceed full scale (fs/4 + phase offset). */
    avo_audio a;
    avo_error err;
    avo_audio_alloc(&a, 44100, 2, 44100, NULL);
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 44100; i++)
            avo_audio_channel(&a, c)[i] = 1.4f * (float)sin(2 * M_PI * 11025.0 * i / 44100 + M_PI / 4);
    avo_mix_config cfg;
    avo_mix_config_default(&cfg);
    double red = 0, tp = 0;
    CHECK_OK(avo_limit_true_peak(&a, &cfg, &red, &err), &err);
    CHECK_OK(avo_audio_true_peak(&a, &tp, &err), &err);
    CHECK_MSG(tp <= -1.0 + 1e-6, "true peak %.3f dBTP", tp);
    CHECK_MSG(red > 3.0, "reduction %.2f dB", red);
    avo_audio_free(&a);

    /* Quiet material passes untouched. */
    sine(&a, 44100, 1, 44100, 440, 0.25f);
    float before = a.samples[12345];
    CHECK_OK(avo_limit_true_peak(&a, &cfg, &red, &err), &err);
    CHECK(a.samples[12345] == before && red == 0.0);
    avo_audio_free(&a);
}

static void test_transient_no_click(void) {
    /* A quiet tone with a loud burst (2 ms ramps): the limiter's gain, seen as output/input, must move
     * smoothly (a step would be a click), and the burst must end under the ceiling. */
    avo_audio a, orig;
    avo_error err;
    sine(&a, 44100, 1, 44100, 220, 0.2f);
    for (int i = 20000; i < 22000; i++) {
        double ramp = fmin(1.0, fmin(i - 20000, 22000 - i) / 88.0);
        a.samples[i] *= (float)(1.0 + 7.0 * ramp);
    }
    avo_audio_copy(&a, &orig, NULL);
    avo_mix_config cfg;
    avo_mix_config_default(&cfg);
    CHECK_OK(avo_limit_true_peak(&a, &cfg, NULL, &err), &err);
    double tp;
    avo_audio_true_peak(&a, &tp, &err);
    CHECK(tp <= -1.0 + 1e-6);
    double max_step = 0;
    for (int i = 1; i < 44100; i++) {
        if (fabsf(orig.samples[i]) < 0.05f || fabsf(orig.samples[i - 1]) < 0.05f) continue;
        double step = fabs(a.samples[i] / orig.samples[i] - a.samples[i - 1] / orig.samples[i - 1]);
        if (step > max_step) max_step = step;
    }
    /* Gain may fall by at most 1/(lookahead samples) per sample from the box-filtered attack. */
    CHECK_MSG(max_step < 0.02, "largest gain step %g between neighbouring samples", max_step);
    avo_audio_free(&a);
    avo_audio_free(&orig);
}

static void test_mix_matches_loudness(void) {
    avo_audio conv, orig, acc, out;
    avo_error err;
    sine(&conv, 22050, 1, 22050 * 3, 330, 0.05f);  /* quiet converted vocals at another rate, mono */
    sine(&orig, 44100, 2, 44100 * 3, 330, 0.2f);   /* original vocals level */
    sine(&acc, 44100, 2, 44100 * 3 + 17, 55, 0.1f);
    avo_mix_report rep;
    CHECK_OK(avo_mix(&conv, &orig, &acc, NULL, &out, &rep, &err), &err);
    CHECK(out.frames == acc.frames && out.channels == 2 && out.sample_rate == 44100);
    CHECK_NEAR(rep.vocal_gain_db, 20 * log10(0.2 / 0.05), 0.3);
    /* Remove the accompaniment and compare the vocal level with the original. */
    avo_audio voc;
    avo_audio_alloc(&voc, 44100, 2, acc.frames, NULL);
    for (int64_t i = 0; i < 2 * acc.frames; i++) voc.samples[i] = out.samples[i] - acc.samples[i];
    double l_orig, l_voc;
    avo_audio_loudness(&orig, &l_orig, &err);
    avo_audio_loudness(&voc, &l_voc, &err);
    CHECK_NEAR(l_voc, l_orig, 0.3);
    CHECK(rep.output_true_peak_dbtp <= -1.0 + 1e-6);
    avo_audio_free(&voc);
    avo_audio_free(&conv);
    avo_audio_free(&orig);
    avo_audio_free(&acc);
    avo_audio_free(&out);
}

static void test_silent_vocals(void) {
    avo_audio conv, acc, out;
    avo_error err;
    avo_audio_alloc(&conv, 44100, 1, 1000, NULL);
    sine(&acc, 44100, 2, 44100, 100, 0.3f);
    CHECK_OK(avo_mix(&conv, &conv, &acc, NULL, &out, NULL, &err), &err);
    double maxdiff = 0;
    for (int64_t i = 0; i < 2 * acc.frames; i++) {
        double d = fabs(out.samples[i] - acc.samples[i]);
        if (d > maxdiff) maxdiff = d;
    }
    CHECK_MSG(maxdiff < 1e-6, "silent vocals must leave the accompaniment unchanged (diff %g)", maxdiff);
    avo_audio_free(&conv);
    avo_audio_free(&acc);
    avo_audio_free(&out);
}

int main(void) {
    test_limiter_ceiling();
    test_transient_no_click();
    test_mix_matches_loudness();
    test_silent_vocals();
    TEST_MAIN_END();
}
