/* models module: RVC synthesizer against PyTorch. tests/reference/rvc_golden.py builds three small
 * random RVC voice models in RVC's .pth format (v2 with f0, v1 with f0 and 4 upsampling stages,
 * v1 without f0 with the plain HiFi-GAN decoder and ResBlock2) and their intermediates on 1 s of
 * real singing (content-feature stand-ins and an f0 track from the audio) with stored noise draws;
 * the C model must match m_p, logs_p, z_p, z, the NSF source and the audio to a relative error
 * max|a-b| / max|b| under 1e-4, in one pass and in short generator chunks. Bad checkpoints
 * (missing key, wrong shape, truncated file, wrong config length, training checkpoint, version
 * mismatch) must fail with a clear error. The coarse pitch and argument errors are checked without
 * torch. */
#include "autovoice/models.h"
#include "models/vits_internal.h"
#include "golden.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <unistd.h>

#define TOL 1e-4

static char refdir[600];

/* Runs the generator; 1 if the golden data exist, 0 if torch is missing, -1 on failure. */
static int make_golden(void) {
    return avo_test_run_reference(__FILE__, "rvc_golden.py", refdir, "");
}

static void compare(const char *model, const char *what, const float *got, const cJSON *js, int64_t n) {
    char name[64];
    snprintf(name, sizeof name, "%s_%s", model, what);
    int64_t m = 0;
    float *want = avo_golden_tensor(js, refdir, name, &m, NULL, NULL);
    if (!want) return;
    CHECK_MSG(m == n, "%s: %lld values, golden has %lld", name, (long long)n, (long long)m);
    if (m == n) {
        double e = avo_test_rel_error(got, want, n);
        fprintf(stderr, "  %-16s rel error %.3g\n", name, e);
        CHECK_MSG(e < TOL, "%s: relative error %g >= %g", name, e, TOL);
    }
    free(want);
}

static void test_model(avo_backend *be, avo_arena *arena, const cJSON *js, const char *name) {
    const cJSON *mj = cJSON_GetObjectItem(cJSON_GetObjectItem(js, "models"), name);
    CHECK_MSG(mj != NULL, "golden.json has no model %s", name);
    if (!mj) return;
    char path[900];
    snprintf(path, sizeof path, "%s/%s", refdir, cJSON_GetObjectItem(mj, "file")->valuestring);
    avo_error err = {0};
    avo_rvc *m = NULL;
    CHECK_OK(avo_rvc_load(path, be, &m, &err), &err);
    if (!m) return;
    const avo_rvc_info *info = avo_rvc_get_info(m);
    int sid = cJSON_GetObjectItem(mj, "sid")->valueint, inter = cJSON_GetObjectItem(mj, "inter")->valueint;
    CHECK(info->version == cJSON_GetObjectItem(mj, "version")->valueint);
    CHECK(info->sample_rate == cJSON_GetObjectItem(mj, "sr")->valueint);
    CHECK(info->hop == cJSON_GetObjectItem(mj, "hop")->valueint);
    CHECK(info->phone_dim == cJSON_GetObjectItem(mj, "phone_dim")->valueint);
    CHECK(info->uses_f0 == (cJSON_GetObjectItem(mj, "f0")->valueint != 0));
    CHECK(info->n_speakers == cJSON_GetObjectItem(mj, "speakers")->valueint);
    int64_t T = cJSON_GetObjectItem(js, "frames")->valueint, hop = info->hop, n = 0;
    char key[64];
    snprintf(key, sizeof key, "%s_phone", name);
    float *phone = avo_golden_tensor(js, refdir, key, &n, NULL, NULL);
    snprintf(key, sizeof key, "%s_z_noise", name);
    float *zn = avo_golden_tensor(js, refdir, key, &n, NULL, NULL);
    snprintf(key, sizeof key, "%s_src_noise", name);
    float *sn = avo_golden_tensor(js, refdir, key, &n, NULL, NULL);
    float *f0 = avo_golden_tensor(js, refdir, "f0", &n, NULL, NULL), *pitchf = avo_golden_tensor(js, refdir, "pitch", &n, NULL, NULL);
    int32_t *pitch = malloc((size_t)T * sizeof(int32_t));
    float *audio = malloc((size_t)(T * hop) * sizeof(float)), *audio2 = malloc((size_t)(T * hop) * sizeof(float));
    rvc_taps taps = {0};
    taps.m_p = malloc((size_t)(inter * T) * sizeof(float));
    taps.logs_p = malloc((size_t)(inter * T) * sizeof(float));
    taps.z_p = malloc((size_t)(inter * T) * sizeof(float));
    taps.z = malloc((size_t)(inter * T) * sizeof(float));
    taps.har_source = malloc((size_t)(T * hop) * sizeof(float));
    if (!phone || !zn || !sn || !f0 || !pitchf || !pitch || !audio || !audio2) goto out;

    /* RVC's coarse pitch from the f0 track, exactly */
    avo_rvc_pitch_coarse(f0, T, pitch);
    int bad = 0;
    for (int64_t i = 0; i < T; i++) bad += pitch[i] != (int32_t)pitchf[i];
    CHECK_MSG(bad == 0, "%d coarse pitch values differ from the reference", bad);

    fprintf(stderr, "%s: v%d, %d Hz, hop %d, f0 %d, %d speakers\n", name, info->version, info->sample_rate, info->hop,
            info->uses_f0, info->n_speakers);
    taps.chunk_frames = T; /* one pass, one back end */
    CHECK_OK(rvc_infer_taps(m, arena, phone, T, pitch, f0, sid, zn, sn, 0, audio, &taps, &err), &err);
    compare(name, "m_p", taps.m_p, js, inter * T);
    compare(name, "logs_p", taps.logs_p, js, inter * T);
    compare(name, "z_p", taps.z_p, js, inter * T);
    compare(name, "z", taps.z, js, inter * T);
    if (info->uses_f0) compare(name, "har_source", taps.har_source, js, T * hop);
    compare(name, "audio", audio, js, T * hop);

    /* short generator chunks with receptive-field overlap, spread over single-threaded workers (the
     * back end has 2 threads): same audio */
    rvc_taps chunked = {.chunk_frames = 7};
    int64_t fp32_before = 0, fp32_after = 0, bf16 = 0;
    CHECK_OK(avo_backend_cpu_gemm_counts(be, &fp32_before, &bf16, &err), &err);
    CHECK_OK(rvc_infer_taps(m, arena, phone, T, pitch, f0, sid, zn, sn, 0, audio2, &chunked, &err), &err);
    CHECK_OK(avo_backend_cpu_gemm_counts(be, &fp32_after, &bf16, &err), &err);
    /* the workers' convolutions are counted on the caller's back end (run metadata reads it) */
    CHECK_MSG(fp32_after - fp32_before >= 2 * (T / 7), "%s: %lld weight GEMMs counted for %lld chunks", name,
              (long long)(fp32_after - fp32_before), (long long)(T / 7));
    double e = avo_test_rel_error(audio2, audio, T * hop);
    fprintf(stderr, "  chunks of 7 frames vs one pass: rel error %.3g\n", e);
    CHECK_MSG(e < 1e-5, "%s: chunked audio differs from one pass by %g", name, e);
    compare(name, "audio", audio2, js, T * hop);

    /* public entry point, and the seeded noise when none is given */
    CHECK_OK(avo_rvc_infer(m, arena, phone, T, pitch, f0, sid, zn, sn, 0, audio2, &err), &err);
    CHECK(avo_test_rel_error(audio2, audio, T * hop) < 1e-6);
    CHECK_OK(avo_rvc_infer(m, arena, phone, T, pitch, f0, sid, NULL, NULL, 42, audio, &err), &err);
    CHECK_OK(avo_rvc_infer(m, arena, phone, T, pitch, f0, sid, NULL, NULL, 42, audio2, &err), &err);
    CHECK_MSG(memcmp(audio, audio2, (size_t)(T * hop) * sizeof(float)) == 0, "%s: same seed, different audio", name);
    CHECK_OK(avo_rvc_infer(m, arena, phone, T, pitch, f0, sid, NULL, NULL, 43, audio2, &err), &err);
    CHECK_MSG(avo_test_rel_error(audio2, audio, T * hop) > 1e-3, "%s: the seed does not change the noise", name);
    double peak = 0;
    for (int64_t i = 0; i < T * hop; i++) peak = fabs(audio[i]) > peak ? fabs(audio[i]) : peak;
    CHECK(peak > 1e-3 && peak <= 1.0);

    /* argument errors */
    CHECK(avo_rvc_infer(m, arena, phone, 0, pitch, f0, sid, zn, sn, 0, audio, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(avo_rvc_infer(m, arena, phone, T, pitch, f0, info->n_speakers, zn, sn, 0, audio, &err) ==
          AVO_ERR_INVALID_ARGUMENT);
    CHECK(avo_rvc_infer(m, arena, phone, T, pitch, f0, -1, zn, sn, 0, audio, &err) == AVO_ERR_INVALID_ARGUMENT);
    if (info->uses_f0) {
        CHECK(avo_rvc_infer(m, arena, phone, T, NULL, f0, sid, zn, sn, 0, audio, &err) == AVO_ERR_INVALID_ARGUMENT);
        int32_t keep = pitch[3];
        pitch[3] = 256;
        CHECK(avo_rvc_infer(m, arena, phone, T, pitch, f0, sid, zn, sn, 0, audio, &err) == AVO_ERR_INVALID_ARGUMENT);
        pitch[3] = keep;
        float kf = f0[5];
        f0[5] = NAN;
        CHECK(avo_rvc_infer(m, arena, phone, T, pitch, f0, sid, zn, sn, 0, audio, &err) == AVO_ERR_INVALID_ARGUMENT);
        f0[5] = kf;
    } else {
        CHECK_OK(avo_rvc_infer(m, arena, phone, T, NULL, NULL, sid, zn, NULL, 0, audio, &err), &err);
    }
    float kp = phone[10];
    phone[10] = INFINITY;
    CHECK(avo_rvc_infer(m, arena, phone, T, pitch, f0, sid, zn, sn, 0, audio, &err) == AVO_ERR_INVALID_ARGUMENT);
    phone[10] = kp;
out:
    free(phone);
    free(zn);
    free(sn);
    free(f0);
    free(pitchf);
    free(pitch);
    free(audio);
    free(audio2);
    free(taps.m_p);
    free(taps.logs_p);
    free(taps.z_p);
    free(taps.z);
    free(taps.har_source);
    avo_rvc_free(m);
}

/* A bad checkpoint fails with a message containing want. */
static void expect_load_error(avo_backend *be, const char *file, avo_status code, const char *want) {
    char path[900];
    snprintf(path, sizeof path, "%s/%s", refdir, file);
    avo_error err = {0};
    avo_rvc *m = NULL;
    avo_status st = avo_rvc_load(path, be, &m, &err);
    fprintf(stderr, "  %-18s -> %s: %s\n", file, avo_status_name(st), err.message);
    CHECK_MSG(st != AVO_OK && m == NULL, "%s loaded", file);
    CHECK_MSG(code == AVO_OK || st == code, "%s: status %s", file, avo_status_name(st));
    CHECK_MSG(strstr(err.message, want) != NULL, "%s: message '%s' does not mention '%s'", file, err.message, want);
    avo_rvc_free(m);
}

static void test_bad_checkpoints(avo_backend *be) {
    expect_load_error(be, "bad_missing.pth", AVO_ERR_FORMAT, "attn_layers.1.conv_k.weight");
    expect_load_error(be, "bad_shape.pth", AVO_ERR_FORMAT, "flow.flows.2.post.weight");
    expect_load_error(be, "bad_config.pth", AVO_ERR_FORMAT, "\"config\" has 17 entries");
    expect_load_error(be, "bad_training.pth", AVO_ERR_FORMAT, "training checkpoint");
    expect_load_error(be, "bad_version.pth", AVO_ERR_FORMAT, "v1 model");
    /* truncated: the first half of a good file */
    char path[900], cut[900];
    snprintf(path, sizeof path, "%s/rvc_v2.pth", refdir);
    snprintf(cut, sizeof cut, "%s/bad_truncated.pth", refdir);
    size_t size = 0;
    char *data = avo_test_read_file(path, &size);
    CHECK(data != NULL);
    FILE *f = data ? fopen(cut, "wb") : NULL;
    if (f) {
        fwrite(data, 1, size / 2, f);
        fclose(f);
        expect_load_error(be, "bad_truncated.pth", AVO_OK, "bad_truncated.pth");
    }
    free(data);
}

static void test_pitch_coarse(void) {
    /* the mel mapping's fixed points: unvoiced and <= 50 Hz give 1, >= 1100 Hz gives 255 */
    float f0[7] = {0.0f, 50.0f, 1100.0f, 2000.0f, NAN, -5.0f, 0.0f};
    int32_t c[7];
    double mel_min = 1127.0 * log(1.0 + 50.0 / 700.0), mel_max = 1127.0 * log(1.0 + 1100.0 / 700.0);
    f0[6] = 220.0f;
    avo_rvc_pitch_coarse(f0, 7, c);
    CHECK(c[0] == 1 && c[1] == 1 && c[2] == 255 && c[3] == 255 && c[4] == 1 && c[5] == 1);
    double want = (1127.0 * log(1.0 + 220.0 / 700.0) - mel_min) * 254.0 / (mel_max - mel_min) + 1.0;
    CHECK_MSG(c[6] == (int32_t)lrint(want), "220 Hz -> %d, want %d", (int)c[6], (int)lrint(want));
}

int main(void) {
    avo_error err = {0};
    avo_backend *be = NULL;
    avo_arena *arena = NULL;
    avo_test_tmp_dir("rvc", refdir, sizeof refdir);
    CHECK_OK(avo_backend_cpu_create(2, &be, &err), &err);
    CHECK_OK(avo_arena_create(be, 8u << 20, &arena, &err), &err);
    if (!be || !arena) TEST_MAIN_END();
    test_pitch_coarse();

    avo_rvc *m = NULL;
    char path[700];
    snprintf(path, sizeof path, "%s/does_not_exist.pth", refdir);
    CHECK(avo_rvc_load(path, be, &m, &err) != AVO_OK && m == NULL && err.message[0]);

    int torch = make_golden();
    CHECK(torch >= 0);
    if (torch == 1) {
        cJSON *js = avo_golden_open(refdir);
        if (js) {
            test_model(be, arena, js, "v2");
            test_model(be, arena, js, "v1");
            test_model(be, arena, js, "nono");
            test_bad_checkpoints(be);
        }
        cJSON_Delete(js);
    } else if (torch == 0) {
        const char *req = getenv("AVO_REQUIRE_TORCH");
        if (req && *req)
            CHECK_MSG(0, "python3-torch is missing but AVO_REQUIRE_TORCH is set");
        else
            fprintf(stderr, "SKIP: python3-torch not installed; RVC parity with PyTorch not tested "
                            "(install python3-torch, or set AVO_REQUIRE_TORCH=1 to make this a failure)\n");
    }
    avo_arena_free(arena);
    avo_backend_free(be);
    TEST_MAIN_END();
}
