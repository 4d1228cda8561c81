/* convert module: the RVC chain of one segment (content features -> index retrieval -> x2 repeat ->
 * protect -> coarse pitch -> synthesizer) against tests/reference/rvc_chain_golden.py, which runs the
 * same steps in PyTorch on small random models, a real singing clip and a sung F0 contour with a gap.
 * The output audio must match to a relative error max|a-b| / max|b| under 1e-4. Also the converter
 * and the model check on the same files, and their errors. SKIPs without torch. */
#include "autovoice/convert.h"
#include "autovoice/models.h"
#include "convert/converter_internal.h"
#include "golden.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <unistd.h>

static char dir[600];

static int make_golden(void) {
    char extra[800];
    snprintf(extra, sizeof extra, "'%s'", avo_test_data_dir());
    return avo_test_run_reference(__FILE__, "rvc_chain_golden.py", dir, extra);
}

static void test_chain(const cJSON *js) {
    char path[800];
    avo_error err = {0};
    avo_backend *be = NULL;
    avo_arena *arena = NULL;
    avo_hubert *hub = NULL;
    avo_rvc *rvc = NULL;
    feature_index *ix = NULL;
    CHECK(avo_backend_cpu_create(2, &be, &err) == AVO_OK);
    CHECK(avo_arena_create(be, 16 << 20, &arena, &err) == AVO_OK);
    snprintf(path, sizeof path, "%s/hubert_small.pt", dir);
    CHECK_MSG(avo_hubert_load(path, be, &hub, &err) == AVO_OK, "%s", err.message);
    snprintf(path, sizeof path, "%s/rvc_small.pth", dir);
    CHECK_MSG(avo_rvc_load(path, be, &rvc, &err) == AVO_OK, "%s", err.message);
    snprintf(path, sizeof path, "%s/index.npy", dir);
    CHECK_MSG(feature_index_load(path, &ix, &err) == AVO_OK, "%s", err.message);
    int64_t n = 0, nf0 = 0, nz = 0, ns = 0, nwant = 0;
    float *x = avo_golden_tensor(js, dir, "audio_16k", &n, NULL, NULL), *f0 = avo_golden_tensor(js, dir, "f0_hz", &nf0, NULL, NULL);
    float *z = avo_golden_tensor(js, dir, "z_noise", &nz, NULL, NULL), *sn = avo_golden_tensor(js, dir, "src_noise", &ns, NULL, NULL), *want = avo_golden_tensor(js, dir, "audio", &nwant, NULL, NULL);
    if (hub && rvc && ix && x && f0 && z && sn && want) {
        const avo_rvc_info *info = avo_rvc_get_info(rvc);
        CHECK(info->version == 2 && info->sample_rate == 40000 && info->hop == 400 && info->uses_f0);
        rvc_chain ch = {hub, rvc, ix, cJSON_GetObjectItem(js, "index_rate")->valuedouble,
                        cJSON_GetObjectItem(js, "protect")->valuedouble,
                        cJSON_GetObjectItem(js, "speaker")->valueint, 1};
        float *audio = calloc((size_t)((n / 160 + 1) * info->hop), sizeof *audio);
        int64_t frames = 0;
        CHECK_MSG(rvc_chain_segment(&ch, arena, x, n, f0, z, sn, audio, &frames, &err) == AVO_OK, "%s", err.message);
        const int64_t p_len = cJSON_GetObjectItem(js, "p_len")->valueint;
        CHECK_MSG(frames == p_len, "frames %lld, want %lld", (long long)frames, (long long)p_len);
        if (frames == p_len && nwant == p_len * info->hop) {
            double e = avo_test_rel_error(audio, want, nwant);
            printf("chain audio: rel error %.3g over %lld samples\n", e, (long long)nwant);
            CHECK_MSG(e < 1e-4, "chain audio rel error %g", e);
        }
        /* Without the index the output must change (the index is really used). */
        rvc_chain plain = ch;
        plain.index = NULL;
        float *audio2 = calloc((size_t)((n / 160 + 1) * info->hop), sizeof *audio2);
        avo_arena_reset(arena);
        CHECK(rvc_chain_segment(&plain, arena, x, n, f0, z, sn, audio2, &frames, &err) == AVO_OK);
        CHECK(avo_test_rel_error(audio2, want, nwant) > 1e-3);
        free(audio2);
        free(audio);
    }
    free(x), free(f0), free(z), free(sn), free(want);
    feature_index_free(ix);
    avo_rvc_free(rvc);
    avo_hubert_free(hub);
    avo_arena_free(arena);
    avo_backend_free(be);
}

/* The whole converter on 3 s of 44.1 kHz audio (two segments' worth of context handling, resampling,
 * RMS mix): right length, finite, not silent; and its argument errors. */
static void test_converter(void) {
    char model[800], enc[800], index[800];
    snprintf(model, sizeof model, "%s/rvc_small.pth", dir);
    snprintf(enc, sizeof enc, "%s/hubert_small.pt", dir);
    snprintf(index, sizeof index, "%s/index.npy", dir);
    avo_error err = {0};
    char desc[256];
    int rate = 0;
    CHECK_MSG(avo_neural_model_check(model, NULL, index, desc, sizeof desc, &rate, &err) == AVO_OK, "%s", err.message);
    CHECK(rate == 40000 && strstr(desc, "RVC v2") && strstr(desc, "3 speakers"));
    CHECK(avo_neural_model_check(enc, NULL, NULL, desc, sizeof desc, &rate, &err) != AVO_OK); /* not a voice model */

    avo_neural_config nc;
    avo_neural_config_default(&nc);
    nc.model_path = model;
    nc.content_encoder_path = enc;
    nc.index_path = index;
    nc.speaker_id = 1;
    avo_convert_options opt;
    avo_convert_options_default(&opt);
    opt.transpose_semitones = 2;
    avo_converter *c = NULL;
    CHECK_MSG(avo_converter_create_neural(&nc, NULL, &opt, &c, &err) == AVO_OK, "%s", err.message);
    if (c) {
        avo_audio v = {0};
        avo_audio_alloc(&v, 44100, 1, 3 * 44100, &err);
        avo_f0_track f0 = {0};
        avo_f0_track_alloc(&f0, 300, 0.01, &err);
        for (int64_t i = 0; i < v.frames; i++)
            v.samples[i] = 0.3f * (float)sin(2 * M_PI * 220.0 * (double)i / 44100.0);
        for (int i = 0; i < 300; i++) f0.f0_hz[i] = i < 250 ? 220.0f : 0.0f;
        avo_audio out = {0};
        CHECK_MSG(avo_converter_run(c, &v, &f0, &out, NULL, NULL, &err) == AVO_OK, "%s", err.message);
        CHECK(out.sample_rate == 44100 && out.channels == 1 && out.frames == v.frames);
        double e = 0;
        int finite = 1;
        for (int64_t i = 0; i < out.frames; i++) e += (double)out.samples[i] * out.samples[i], finite &= isfinite(out.samples[i]);
        CHECK(finite && e > 0);
        avo_converter_info info;
        avo_converter_get_info(c, &info);
        CHECK(strcmp(info.name, "rvc-v2") == 0 && strcmp(info.device, "cpu") == 0 && strcmp(info.precision, "fp32") == 0);
        CHECK_NEAR(info.applied_transpose_semitones, 2.0, 1e-9);
        avo_audio_free(&out);
        avo_audio_free(&v);
        avo_f0_track_free(&f0);
        avo_converter_free(c);
    }
    nc.speaker_id = 3; /* the model has 3 */
    CHECK(avo_converter_create_neural(&nc, NULL, &opt, &c, &err) == AVO_ERR_INVALID_ARGUMENT && !c);
    CHECK(strstr(err.message, "speaker id 3") != NULL);
    nc.speaker_id = 0;
    nc.device = "tpu";
    CHECK(avo_converter_create_neural(&nc, NULL, &opt, &c, &err) == AVO_ERR_INVALID_ARGUMENT && !c);
    nc.device = "cpu";
    nc.content_encoder_path = NULL;
    CHECK(avo_converter_create_neural(&nc, NULL, &opt, &c, &err) == AVO_ERR_INVALID_ARGUMENT && !c);
    CHECK(strstr(err.message, "content encoder") != NULL);
}

int main(void) {
    avo_test_tmp_dir("rvc_chain", dir, sizeof dir);
    int g = make_golden();
    CHECK(g >= 0);
    if (g == 0) {
        if (getenv("AVO_REQUIRE_TORCH")) CHECK_MSG(0, "python3-torch is required (AVO_REQUIRE_TORCH)");
        printf("SKIP: python3-torch is not installed\n");
        TEST_MAIN_END();
    }
    cJSON *js = avo_golden_open(dir);
    if (js) {
        test_chain(js);
        test_converter();
    }
    cJSON_Delete(js);
    TEST_MAIN_END();
}
