/* models module: RMVPE pitch network against PyTorch. The test decodes 1.5 s of a real singing clip,
 * tests/reference/rmvpe_golden.py builds a small random RMVPE (the real 5-level U-Net + BiGRU
 * structure with 4 channels at the top) as a bare state_dict like rmvpe.pt, and its float64 mel,
 * salience and decoded F0; the C model must match mel and salience to a relative error
 * max|a-b| / max|b| under 1e-4 and decode the same F0, except at frames where the reference's own
 * salience leaves the argmax or the voicing decision ambiguous. Then: windowed processing of a longer
 * clip against one pass, broken checkpoints (missing key, wrong shape, truncated file) and bad input.
 * Without torch only the checks that need no reference run, and the test SKIPs. */
#include "autovoice/audio.h"
#include "autovoice/models.h"
#include "models/rmvpe_internal.h"
#include "golden.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <unistd.h>

#define TOL 1e-4

static char refdir[600];

static int make_golden(const char *audio_path) {
    char extra[800];
    snprintf(extra, sizeof extra, "'%s'", audio_path);
    return avo_test_run_reference(__FILE__, "rmvpe_golden.py", refdir, extra);
}

/* 16 kHz mono samples [offset, offset + seconds) of a clip in the shared data (malloc'd). */
static float *read_clip(const char *name, double offset, double seconds, int64_t *n) {
    char path[800];
    snprintf(path, sizeof path, "%s/singing/%s", avo_test_data_dir(), name);
    avo_audio in = {0}, mono = {0}, rs = {0};
    avo_error err = {0};
    float *out = NULL;
    *n = 0;
    if (avo_audio_read(path, &in, &err) || avo_audio_to_mono(&in, &mono, &err) || avo_audio_resample(&mono, 16000, &rs, &err)) {
        CHECK_MSG(0, "cannot read %s: %s", path, err.message);
    } else {
        int64_t a0 = (int64_t)(offset * 16000), len = (int64_t)(seconds * 16000);
        if (a0 + len > rs.frames) len = rs.frames - a0;
        CHECK(len > 0);
        if (len > 0) {
            out = malloc((size_t)len * sizeof(float));
            memcpy(out, rs.samples + a0, (size_t)len * sizeof(float));
            *n = len;
        }
    }
    avo_audio_free(&in);
    avo_audio_free(&mono);
    avo_audio_free(&rs);
    return out;
}

/* ---- without torch -------------------------------------------------------------------------- */

static void test_basics(avo_backend *be) {
    CHECK(avo_rmvpe_frames(0) == 1 && avo_rmvpe_frames(159) == 1 && avo_rmvpe_frames(160) == 2 &&
          avo_rmvpe_frames(16000) == 101);
    avo_error err = {0};
    avo_rmvpe *m = NULL;
    char path[700];
    snprintf(path, sizeof path, "%s/does_not_exist.pt", refdir);
    CHECK(avo_rmvpe_load(path, be, &m, &err) != AVO_OK && m == NULL && err.message[0]);

    /* mel front end: a 440 Hz tone peaks in the band whose centre is nearest 440 Hz (HTK mel scale,
     * 130 points from 30 to 8000 Hz), and silence sits at log(1e-5) */
    rmvpe_mel *mel = NULL;
    CHECK_OK(rmvpe_mel_create(&mel, &err), &err);
    if (!mel) return;
    int64_t n = 8000;
    float *x = malloc((size_t)n * sizeof(float)), out[3 * RMVPE_MELS];
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f * sinf(2.0f * (float)M_PI * 440.0f * (float)i / 16000.0f);
    CHECK_OK(rmvpe_mel_frames(mel, x, n, 20, 1, out, &err), &err);
    int best = 0, want = 0;
    double m0 = 2595.0 * log10(1 + 30.0 / 700), m1 = 2595.0 * log10(1 + 8000.0 / 700), bestd = 1e9;
    for (int b = 0; b < RMVPE_MELS; b++) {
        if (out[b] > out[best]) best = b;
        double c = 700.0 * (pow(10.0, (m0 + (m1 - m0) * (b + 1) / 129.0) / 2595.0) - 1.0);
        if (fabs(c - 440.0) < bestd) bestd = fabs(c - 440.0), want = b;
    }
    CHECK_MSG(best == want, "440 Hz peaks in mel band %d, expected %d", best, want);
    memset(x, 0, (size_t)n * sizeof(float));
    CHECK_OK(rmvpe_mel_frames(mel, x, n, 0, 3, out, &err), &err); /* frames 0..2 need reflection */
    int floor_ok = 0;
    for (int i = 0; i < 3 * RMVPE_MELS; i++) floor_ok += fabsf(out[i] - logf(1e-5f)) < 1e-6f;
    CHECK(floor_ok == 3 * RMVPE_MELS);
    /* a 1-sample input is mirrored onto itself rather than read out of bounds */
    x[0] = 0.25f;
    CHECK_OK(rmvpe_mel_frames(mel, x, 1, 0, 1, out, &err), &err);
    CHECK(isfinite(out[0]));
    free(x);
    rmvpe_mel_free(mel);
}

/* ---- with the PyTorch reference -------------------------------------------------------------- */

/* Whether the reference's salience row makes the decoded F0 ambiguous: the argmax could go to
 * another bin (a runner-up within eps) or the voicing decision sits on the threshold. */
static bool ambiguous(const float *s, float threshold, float eps) {
    int best = 0;
    for (int i = 1; i < RMVPE_BINS; i++)
        if (s[i] > s[best]) best = i;
    if (fabsf(s[best] - threshold) < eps) return true;
    for (int i = 0; i < RMVPE_BINS; i++)
        if (i != best && s[best] - s[i] < eps) return true;
    return false;
}

static void test_parity(avo_backend *be, avo_arena *arena, const float *audio, int64_t n) {
    char path[700];
    cJSON *js = avo_golden_open(refdir);
    if (!js) return;
    avo_error err = {0};
    avo_rmvpe *m = NULL;
    snprintf(path, sizeof path, "%s/rmvpe_small.pt", refdir);
    CHECK_OK(avo_rmvpe_load(path, be, &m, &err), &err);
    int64_t mr = 0, mc = 0, sr = 0, sc = 0, fr = 0, one = 0;
    float *mel = avo_golden_tensor(js, refdir, "mel", NULL, &mr, &mc), *sal = avo_golden_tensor(js, refdir, "salience", NULL, &sr, &sc), *f0 = avo_golden_tensor(js, refdir, "f0", NULL, &fr, &one);
    float threshold = (float)cJSON_GetObjectItem(js, "threshold")->valuedouble;
    int64_t frames = avo_rmvpe_frames(n);
    CHECK(mr == RMVPE_MELS && mc == frames && sr == frames && sc == RMVPE_BINS && fr == frames);
    if (!m || !mel || !sal || !f0 || mc != frames || sr != frames || fr != frames) goto done;

    /* 1. mel front end */
    rmvpe_mel *fe = NULL;
    float *cm = malloc((size_t)frames * RMVPE_MELS * sizeof(float)), *cmt = malloc((size_t)frames * RMVPE_MELS * sizeof(float));
    CHECK_OK(rmvpe_mel_create(&fe, &err), &err);
    if (fe) CHECK_OK(rmvpe_mel_frames(fe, audio, n, 0, frames, cm, &err), &err);
    for (int64_t f = 0; f < frames; f++)
        for (int b = 0; b < RMVPE_MELS; b++) cmt[b * frames + f] = cm[f * RMVPE_MELS + b];
    double e_mel = avo_test_rel_error(cmt, mel, frames * RMVPE_MELS);
    fprintf(stderr, "mel [128, %lld]: rel error %.3g\n", (long long)frames, e_mel);
    CHECK_MSG(e_mel < TOL, "mel: relative error %g >= %g", e_mel, TOL);
    rmvpe_mel_free(fe);

    /* 2. the network on the reference's mel */
    for (int64_t f = 0; f < frames; f++)
        for (int b = 0; b < RMVPE_MELS; b++) cm[f * RMVPE_MELS + b] = mel[b * frames + f];
    float *cs = malloc((size_t)frames * RMVPE_BINS * sizeof(float));
    avo_arena_reset(arena);
    double t0 = avo_now_ms();
    CHECK_OK(rmvpe_salience(m, arena, cm, frames, cs, &err), &err);
    double e_sal = avo_test_rel_error(cs, sal, frames * RMVPE_BINS);
    fprintf(stderr, "salience [%lld, 360]: rel error %.3g (%.1f ms, arena peak %.1f MB)\n", (long long)frames, e_sal,
            avo_now_ms() - t0, avo_arena_peak(arena) / 1048576.0);
    CHECK_MSG(e_sal < TOL, "salience: relative error %g >= %g", e_sal, TOL);

    /* 3. end to end: audio -> F0 */
    float *cf = malloc((size_t)frames * sizeof(float)), *conf = malloc((size_t)frames * sizeof(float));
    avo_arena_reset(arena);
    CHECK_OK(avo_rmvpe_f0(m, arena, audio, n, threshold, cf, conf, &err), &err);
    int mismatch = 0, unexplained = 0, voiced = 0;
    double worst_cents = 0;
    for (int64_t f = 0; f < frames; f++) {
        voiced += f0[f] > 0;
        bool same_voicing = (cf[f] > 0) == (f0[f] > 0);
        double dc = same_voicing && f0[f] > 0 ? fabs(1200.0 * log2((double)cf[f] / f0[f])) : 0.0;
        if (!same_voicing || dc > 1.0) {
            mismatch++;
            if (!ambiguous(sal + f * RMVPE_BINS, threshold, 1e-3f)) unexplained++;
        } else if (dc > worst_cents) {
            worst_cents = dc;
        }
        float peak = sal[f * RMVPE_BINS];
        for (int i = 1; i < RMVPE_BINS; i++) peak = fmaxf(peak, sal[f * RMVPE_BINS + i]);
        if (f < 3 || !(fabsf(conf[f] - peak) < 1e-3f))
            CHECK_MSG(fabsf(conf[f] - peak) < 1e-3f, "frame %lld: confidence %g, reference peak %g", (long long)f, conf[f], peak);
    }
    fprintf(stderr, "f0: %lld frames, %d voiced; %d differ (%d not explained by a near-tie), worst %.4f cents elsewhere\n",
            (long long)frames, voiced, mismatch, unexplained, worst_cents);
    CHECK_MSG(voiced > frames / 10 && voiced < frames, "the reference should have voiced and unvoiced frames (%d of %lld)",
              voiced, (long long)frames);
    CHECK_MSG(unexplained == 0 && mismatch <= frames / 100 + 1, "%d F0 frames differ, %d without a near-tie", mismatch,
              unexplained);
    CHECK_MSG(worst_cents < 0.5, "F0 off by %.3f cents on a frame that is not a near-tie", worst_cents);
    free(cm);
    free(cmt);
    free(cs);
    free(cf);
    free(conf);
done:
    free(mel);
    free(sal);
    free(f0);
    avo_rmvpe_free(m);
    cJSON_Delete(js);
}

/* A clip longer than the window (11 s, 1095 frames), processed in windows of 768 frames with 256
 * frames of margin (3 windows), against the same clip in one pass: windows start on the U-Net's
 * pooling grid and every kept frame is at least 256 frames from a cut, beyond the reach of the test
 * model (rmvpe_golden.py), so the outputs must agree to float rounding; with a margin of 64 they must
 * not (the check can fail). */
static void test_windows(avo_backend *be) {
    int64_t n = 0;
    float *audio = read_clip("nus48e_JLEE_11.flac", 0.0, 11.0, &n);
    avo_error err = {0};
    avo_rmvpe *m = NULL;
    char path[700];
    snprintf(path, sizeof path, "%s/rmvpe_small.pt", refdir);
    CHECK_OK(avo_rmvpe_load(path, be, &m, &err), &err);
    if (!audio || !m) {
        free(audio);
        avo_rmvpe_free(m);
        return;
    }
    int64_t frames = avo_rmvpe_frames(n);
    float *f1 = malloc((size_t)frames * sizeof(float)), *c1 = malloc((size_t)frames * sizeof(float));
    float *f2 = malloc((size_t)frames * sizeof(float)), *c2 = malloc((size_t)frames * sizeof(float));
    avo_arena *a1 = NULL, *a2 = NULL;
    CHECK_OK(avo_arena_create(be, 1u << 20, &a1, &err), &err);
    CHECK_OK(avo_arena_create(be, 1u << 20, &a2, &err), &err);
    if (!a1 || !a2) return;
    CHECK_OK(rmvpe_set_window(m, 1152, 0, &err), &err);
    CHECK_OK(avo_rmvpe_f0(m, a1, audio, n, 0.5f, f1, c1, &err), &err);
    size_t peak_one = avo_arena_peak(a1);
    avo_arena_free(a1);
    CHECK_OK(rmvpe_set_window(m, 768, 256, &err), &err);
    CHECK_OK(avo_rmvpe_f0(m, a2, audio, n, 0.5f, f2, c2, &err), &err);
    size_t peak_win = avo_arena_peak(a2);
    avo_arena_free(a2);
    double worst_conf = 0, worst_cents = 0;
    int differ = 0, voiced = 0;
    for (int64_t f = 0; f < frames; f++) {
        double dc = fabs((double)c1[f] - c2[f]);
        if (dc > worst_conf) worst_conf = dc;
        voiced += f1[f] > 0;
        if ((f1[f] > 0) != (f2[f] > 0)) {
            differ++;
        } else if (f1[f] > 0) {
            double d = fabs(1200.0 * log2((double)f2[f] / f1[f]));
            if (d > 1.0) differ++;
            else if (d > worst_cents) worst_cents = d;
        }
    }
    fprintf(stderr,
            "windows of 768 (margin 256) vs one pass over %lld frames: confidence differs by %.2e at most, %d F0 frames "
            "differ, worst %.3f cents elsewhere; arena peak %.1f MB vs %.1f MB\n",
            (long long)frames, worst_conf, differ, worst_cents, peak_win / 1048576.0, peak_one / 1048576.0);
    CHECK(frames > 1024);
    CHECK(voiced > frames / 10);
    CHECK_MSG(worst_conf < 2e-4, "windowed confidence differs by %g", worst_conf);
    CHECK_MSG(differ <= frames / 200 && worst_cents < 0.1, "%d of %lld F0 frames differ between windows and one pass",
              differ, (long long)frames);
    /* a margin too small for the model's reach shows (the comparison above can fail) */
    avo_arena *a4 = NULL;
    CHECK_OK(avo_arena_create(be, 1u << 20, &a4, &err), &err);
    CHECK_OK(rmvpe_set_window(m, 768, 32, &err), &err);
    CHECK_OK(avo_rmvpe_f0(m, a4, audio, n, 0.5f, f2, c2, &err), &err);
    double worst_small = 0;
    for (int64_t f = 0; f < frames; f++) worst_small = fmax(worst_small, fabs((double)c1[f] - c2[f]));
    CHECK_MSG(worst_small > 1e-3, "a 32-frame margin should change the output (%g)", worst_small);
    avo_arena_free(a4);
    CHECK_MSG(peak_win < peak_one, "windowed run should need less memory (%zu vs %zu bytes)", peak_win, peak_one);

    /* knob and input errors */
    CHECK(rmvpe_set_window(m, 100, 0, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(rmvpe_set_window(m, 128, 64, &err) == AVO_ERR_INVALID_ARGUMENT);
    avo_arena *a3 = NULL;
    CHECK_OK(avo_arena_create(be, 1u << 20, &a3, &err), &err);
    CHECK(avo_rmvpe_f0(m, a3, audio, 0, 0.03f, f1, NULL, &err) == AVO_ERR_INVALID_AUDIO);
    audio[5] = NAN;
    CHECK(avo_rmvpe_f0(m, a3, audio, n, 0.03f, f1, NULL, &err) == AVO_ERR_INVALID_AUDIO);
    /* a very short input (one frame, shorter than the FFT) still gives its frame */
    audio[5] = 0.1f;
    float one_f0 = -1;
    CHECK_OK(avo_rmvpe_f0(m, a3, audio, 100, 0.03f, &one_f0, NULL, &err), &err);
    CHECK(one_f0 >= 0);
    avo_arena_free(a3);
    free(audio);
    free(f1);
    free(f2);
    free(c1);
    free(c2);
    avo_rmvpe_free(m);
}

static void expect_load_error(avo_backend *be, const char *file, const char *needle) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", refdir, file);
    avo_rmvpe *m = NULL;
    avo_error err = {0};
    avo_status st = avo_rmvpe_load(path, be, &m, &err);
    fprintf(stderr, "%s: %s\n", file, err.message);
    CHECK_MSG(st != AVO_OK && m == NULL, "%s loaded", file);
    CHECK_MSG(needle == NULL || strstr(err.message, needle) != NULL, "%s: message '%s' does not name '%s'", file,
              err.message, needle);
    avo_rmvpe_free(m);
}

static void test_bad_checkpoints(avo_backend *be) {
    expect_load_error(be, "rmvpe_missing_key.pt", "unet.decoder.layers.2.conv2.1.conv.4.running_var");
    expect_load_error(be, "rmvpe_bad_shape.pt", "cnn.weight");
    char path[700];
    snprintf(path, sizeof path, "%s/rmvpe_small.pt", refdir);
    size_t size = 0;
    char *data = avo_test_read_file(path, &size);
    CHECK(data != NULL && size > 1000);
    if (!data) return;
    snprintf(path, sizeof path, "%s/rmvpe_truncated.pt", refdir);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        fwrite(data, 1, size * 2 / 3, f);
        fclose(f);
    }
    free(data);
    expect_load_error(be, "rmvpe_truncated.pt", "rmvpe_truncated.pt");
}

int main(void) {
    avo_error err = {0};
    avo_backend *be = NULL;
    avo_arena *arena = NULL;
    avo_test_tmp_dir("rmvpe", refdir, sizeof refdir);
    CHECK_OK(avo_backend_cpu_create(2, &be, &err), &err);
    CHECK_OK(avo_arena_create(be, 8u << 20, &arena, &err), &err);
    if (!be || !arena) TEST_MAIN_END();
    test_basics(be);

    int64_t n = 0;
    float *audio = read_clip("nus48e_JLEE_11.flac", 2.0, 1.5, &n);
    char apath[700];
    snprintf(apath, sizeof apath, "%s/audio_16k.f32", refdir);
    FILE *f = audio ? fopen(apath, "wb") : NULL;
    CHECK(f != NULL);
    if (f) {
        fwrite(audio, sizeof(float), (size_t)n, f);
        fclose(f);
    }
    int torch = f ? make_golden(apath) : -1;
    CHECK(torch >= 0);
    if (torch == 1) {
        test_parity(be, arena, audio, n);
        test_bad_checkpoints(be);
        test_windows(be);
    } else if (torch == 0) {
        const char *req = getenv("AVO_REQUIRE_TORCH");
        if (req && *req)
            CHECK_MSG(0, "python3-torch is missing but AVO_REQUIRE_TORCH is set");
        else
            fprintf(stderr, "SKIP: python3-torch not installed; RMVPE parity with PyTorch not tested "
                            "(install python3-torch, or set AVO_REQUIRE_TORCH=1 to make this a failure)\n");
    }
    free(audio);
    avo_arena_free(arena);
    avo_backend_free(be);
    TEST_MAIN_END();
}
