/* models module: the so-vits-svc 4.0 / 4.1 generator against its PyTorch reference.
 * tests/reference/make_sovits_models.py --small writes small random 4.0 and 4.1 models (narrow
 * channels, the real hop-512 upsampling layout) in so-vits' checkpoint formats with their config.json,
 * and golden tensors computed in float64 with the random draws passed in. The C model must match every
 * stage (embeddings, text encoder, prior, flow, source, audio) to a relative error max|a-b| / max|b|
 * under 1e-4, on the CPU back end and, where present, the CUDA one; defective checkpoints and configs
 * must give clear errors. The host glue (coarse pitch, unit expansion, unvoiced filling, volume) and
 * argument errors are checked without torch too. */
#include "autovoice/models.h"
#include "models/sovits_internal.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <unistd.h>

#define TOL 1e-4

static char refdir[600];
static cJSON *gidx; /* golden/index.json */

static int make_golden(void) {
    return avo_test_run_reference(__FILE__, "make_sovits_models.py", refdir, "--small");
}

/* Golden tensor as floats; *n gets its element count. */
static float *golden(const char *name, int64_t *n) {
    const cJSON *e = cJSON_GetObjectItem(cJSON_GetObjectItem(gidx, "tensors"), name);
    CHECK_MSG(e != NULL, "index.json has no %s", name);
    if (!e) return NULL;
    int64_t count = 1;
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(e, "shape")) count *= (int64_t)d->valuedouble;
    char path[900];
    snprintf(path, sizeof path, "%s/golden/%s", refdir, cJSON_GetObjectItem(e, "file")->valuestring);
    size_t size = 0;
    float *v = (float *)avo_test_read_file(path, &size);
    CHECK_MSG(v && size == (size_t)count * 4, "bad golden file %s", path);
    if (n) *n = count;
    return v;
}


static void compare(const char *what, const float *got, const char *name, int64_t n_expect) {
    int64_t n = 0;
    float *want = golden(name, &n);
    if (!want) return;
    CHECK_MSG(n == n_expect, "%s: %lld values, expected %lld", name, (long long)n, (long long)n_expect);
    if (n == n_expect) {
        double e = avo_test_rel_error(got, want, n);
        fprintf(stderr, "  %-26s rel error %.3g\n", what, e);
        CHECK_MSG(e < TOL, "%s: relative error %g >= %g", what, e, TOL);
    }
    free(want);
}

/* The audio away from the edges, relative to its own peak (the edges carry the zero-padding spikes). */
static void compare_interior(const char *what, const float *got, const float *want, int64_t n, int64_t margin) {
    if (n <= 2 * margin) return;
    double e = avo_test_rel_error(got + margin, want + margin, n - 2 * margin);
    fprintf(stderr, "  %-26s rel error %.3g (interior)\n", what, e);
    CHECK_MSG(e < TOL, "%s interior: relative error %g >= %g", what, e, TOL);
}

static int json_int(const cJSON *o, const char *k) { return cJSON_GetObjectItem(o, k)->valueint; }

static void path_of(char *buf, size_t n, const char *rel) { snprintf(buf, n, "%s/%s", refdir, rel); }

/* Stage-by-stage parity of model key ("s40" / "s41") loaded from file rel (config beside it). */
static void test_model(avo_backend *be, avo_arena *arena, const char *key, const char *rel, bool check_taps) {
    const cJSON *meta = cJSON_GetObjectItem(cJSON_GetObjectItem(gidx, "models"), key);
    CHECK_MSG(meta != NULL, "no model %s in index.json", key);
    if (!meta) return;
    char path[900], name[128];
    path_of(path, sizeof path, rel);
    avo_error err = {0};
    avo_sovits *m = NULL;
    CHECK_OK(avo_sovits_load(path, NULL, be, &m, &err), &err);
    if (!m) return;
    fprintf(stderr, "%s (%s):\n", key, rel);
    const avo_sovits_info *in = avo_sovits_get_info(m);
    bool v41 = strcmp(cJSON_GetObjectItem(meta, "version")->valuestring, "4.1") == 0;
    CHECK(in->version == (v41 ? 41 : 40));
    CHECK(in->sample_rate == json_int(meta, "sample_rate") && in->hop == json_int(meta, "hop"));
    CHECK(in->ssl_dim == json_int(meta, "ssl_dim") && in->n_speakers == json_int(meta, "n_speakers"));
    CHECK(in->inter_channels == json_int(meta, "inter_channels"));
    CHECK(in->vol_embedding == cJSON_IsTrue(cJSON_GetObjectItem(meta, "vol_embedding")));
    CHECK(strcmp(in->speech_encoder, v41 ? "vec768l12" : "vec256l9") == 0);
    CHECK(strcmp(in->unit_interpolate_mode, v41 ? "nearest" : "left") == 0);
    const cJSON *spk = cJSON_GetObjectItem(gidx, "speakers");
    for (int i = 0; i < in->n_speakers; i++) {
        const char *nm = cJSON_GetArrayItem(spk, i)->valuestring;
        CHECK(avo_sovits_speaker_id(m, nm) == i && avo_sovits_speaker_name(m, i) && strcmp(avo_sovits_speaker_name(m, i), nm) == 0);
    }
    CHECK(avo_sovits_speaker_id(m, "nobody") == -1 && avo_sovits_speaker_name(m, in->n_speakers) == NULL);

    int64_t T = json_int(meta, "frames"), C = in->inter_channels, H = sovits_hidden(m), N = T * in->hop, n;
    int sid = json_int(meta, "sid");
    float noise_scale = (float)cJSON_GetObjectItem(meta, "noise_scale")->valuedouble;
#define G(var, suffix)                                  \
    snprintf(name, sizeof name, "%s_%s", key, suffix); \
    float *var = golden(name, &n)
    G(units, "units");
    G(vol, "vol");
    G(zn, "z_noise");
    G(ini, "rand_ini");
    G(sn, "sine_noise");
    G(f0, "f0");
    G(uv, "uv");
    G(coarse_g, "coarse");
    G(audio_g, "audio");
#undef G
    float *x = malloc((size_t)(H * T) * 4), *mp = malloc((size_t)(C * T) * 4), *lp = malloc((size_t)(C * T) * 4);
    float *zp = malloc((size_t)(C * T) * 4), *z = malloc((size_t)(C * T) * 4), *hs = malloc((size_t)N * 4);
    float *audio = malloc((size_t)N * 4), *audio2 = malloc((size_t)N * 4);
    int32_t *coarse = malloc((size_t)T * 4);
    bool ok = units && vol && zn && ini && sn && f0 && uv && coarse_g && audio_g && x && mp && lp && zp && z && hs && audio &&
              audio2 && coarse;
    CHECK(ok);
    if (ok) {
        avo_sovits_noise nz = {.z = zn, .rand_ini = ini, .source = sn};
        sovits_taps taps = {.x = x, .coarse = coarse, .m_p = mp, .logs_p = lp, .z_p = zp, .z = z, .har_source = hs};
        avo_arena_reset(arena);
        CHECK_OK(sovits_infer_taps(m, arena, units, T, f0, uv, in->vol_embedding ? vol : NULL, sid, noise_scale, &nz, 0, audio,
                                   &taps, &err),
                 &err);
        int bad = 0;
        for (int64_t i = 0; i < T; i++) bad += coarse[i] != (int32_t)coarse_g[i];
        CHECK_MSG(bad == 0, "%s: %d of %lld coarse pitch values differ", key, bad, (long long)T);
        if (check_taps) {
            char gn[128];
#define CMP(buf, suffix, count)                          \
    snprintf(gn, sizeof gn, "%s_%s", key, suffix);      \
    compare(gn, buf, gn, count)
            CMP(x, "x", H * T);
            CMP(mp, "m_p", C * T);
            CMP(lp, "logs_p", C * T);
            CMP(zp, "z_p", C * T);
            CMP(z, "z", C * T);
            CMP(hs, "har_source", N);
#undef CMP
        }
        snprintf(name, sizeof name, "%s_audio", key);
        compare(name, audio, name, N);
        compare_interior(name, audio, audio_g, N, 2 * in->hop);

        /* the generator in chunks of 8 frames with context equals one pass */
        taps = (sovits_taps){.chunk_frames = 8};
        CHECK_OK(sovits_infer_taps(m, arena, units, T, f0, uv, in->vol_embedding ? vol : NULL, sid, noise_scale, &nz, 0,
                                   audio2, &taps, &err),
                 &err);
        double e = avo_test_rel_error(audio2, audio, N);
        fprintf(stderr, "  %-26s rel diff %.3g\n", "chunks of 8 frames", e);
        CHECK_MSG(e < TOL, "chunked generator differs by %g", e);

        /* speaker 0 without any noise */
        float *zero_z = calloc((size_t)(C * T), 4), *zero_s = calloc((size_t)N * 9, 4);
        snprintf(name, sizeof name, "%s_quiet_audio", key);
        if (zero_z && zero_s) {
            avo_sovits_noise q = {.z = zero_z, .rand_ini = ini, .source = zero_s};
            CHECK_OK(avo_sovits_infer(m, arena, units, T, f0, uv, in->vol_embedding ? vol : NULL, json_int(meta, "quiet_sid"),
                                      0.0f, &q, 0, audio2, &err),
                     &err);
            compare(name, audio2, name, N);
        }
        free(zero_z);
        free(zero_s);

        /* seeded draws: reproducible, seed-dependent, and the given members are used */
        float *a1 = malloc((size_t)N * 4), *a2 = malloc((size_t)N * 4);
        if (a1 && a2) {
            CHECK_OK(avo_sovits_infer(m, arena, units, T, f0, uv, vol, sid, 0.4f, NULL, 7, a1, &err), &err);
            CHECK_OK(avo_sovits_infer(m, arena, units, T, f0, uv, vol, sid, 0.4f, NULL, 7, a2, &err), &err);
            CHECK(memcmp(a1, a2, (size_t)N * 4) == 0);
            CHECK_OK(avo_sovits_infer(m, arena, units, T, f0, uv, vol, sid, 0.4f, NULL, 8, a2, &err), &err);
            CHECK(avo_test_rel_error(a1, a2, N) > 1e-3);
            CHECK_OK(avo_sovits_infer(m, arena, units, T, f0, uv, in->vol_embedding ? vol : NULL, sid, noise_scale, &nz, 99, a2,
                                      &err),
                     &err);
            CHECK(avo_test_rel_error(a2, audio, N) < 1e-6); /* every draw given: the seed does not matter */
            double peak = 0;
            for (int64_t i = 0; i < N; i++) peak = fmax(peak, fabs(a1[i]));
            CHECK(peak > 0.01 && peak < 1.0);
        }
        free(a1);
        free(a2);

        /* argument errors */
        CHECK(avo_sovits_infer(m, arena, units, T, f0, uv, vol, in->n_speakers, 0.4f, NULL, 1, audio2, &err) ==
              AVO_ERR_INVALID_ARGUMENT);
        CHECK(avo_sovits_infer(m, arena, units, T, f0, uv, vol, -1, 0.4f, NULL, 1, audio2, &err) == AVO_ERR_INVALID_ARGUMENT);
        CHECK(avo_sovits_infer(m, arena, units, 0, f0, uv, vol, 0, 0.4f, NULL, 1, audio2, &err) == AVO_ERR_INVALID_ARGUMENT);
        CHECK(avo_sovits_infer(m, arena, NULL, T, f0, uv, vol, 0, 0.4f, NULL, 1, audio2, &err) == AVO_ERR_INVALID_ARGUMENT);
        float keep = f0[1];
        f0[1] = NAN;
        CHECK(avo_sovits_infer(m, arena, units, T, f0, uv, vol, 0, 0.4f, NULL, 1, audio2, &err) == AVO_ERR_INVALID_ARGUMENT &&
              strstr(err.message, "frame 1"));
        f0[1] = keep;
    }
    free(units), free(vol), free(zn), free(ini), free(sn), free(f0), free(uv), free(coarse_g), free(audio_g);
    free(x), free(mp), free(lp), free(zp), free(z), free(hs), free(audio), free(audio2), free(coarse);
    avo_sovits_free(m);
}

/* The fp16 release file of s41 (its weights were rounded to fp16 values) gives the training file's audio. */
static void test_release(avo_backend *be, avo_arena *arena) {
    char p1[900], p2[900], name[64];
    path_of(p1, sizeof p1, "small41/G_100.pth");
    path_of(p2, sizeof p2, "small41/G_100_release_half.pth");
    avo_error err = {0};
    avo_sovits *a = NULL, *b = NULL;
    CHECK_OK(avo_sovits_load(p1, NULL, be, &a, &err), &err);
    CHECK_OK(avo_sovits_load(p2, NULL, be, &b, &err), &err);
    int64_t n = 0, T = 0;
    snprintf(name, sizeof name, "s41_units");
    float *units = golden(name, &n);
    float *f0 = golden("s41_f0", &T), *vol = golden("s41_vol", NULL);
    if (a && b && units && f0 && vol) {
        int64_t N = T * avo_sovits_get_info(a)->hop;
        float *x = malloc((size_t)N * 4), *y = malloc((size_t)N * 4);
        if (x && y) {
            CHECK_OK(avo_sovits_infer(a, arena, units, T, f0, NULL, vol, 2, 0.4f, NULL, 3, x, &err), &err);
            CHECK_OK(avo_sovits_infer(b, arena, units, T, f0, NULL, vol, 2, 0.4f, NULL, 3, y, &err), &err);
            double e = avo_test_rel_error(y, x, N);
            fprintf(stderr, "fp16 release file vs training file: rel diff %.3g\n", e);
            CHECK(e < 1e-6);
        }
        free(x);
        free(y);
    }
    free(units), free(f0), free(vol);
    avo_sovits_free(a);
    avo_sovits_free(b);
}

static void expect_load_error(avo_backend *be, const char *model_rel, const char *config_rel, avo_status code,
                              const char *needle) {
    char mp[900], cp[900];
    path_of(mp, sizeof mp, model_rel);
    if (config_rel) path_of(cp, sizeof cp, config_rel);
    avo_error err = {0};
    avo_sovits *m = NULL;
    avo_status st = avo_sovits_load(mp, config_rel ? cp : NULL, be, &m, &err);
    CHECK_MSG(st == code && m == NULL && strstr(err.message, needle), "%s + %s: status %d (want %d), message '%s' (want '%s')",
              model_rel, config_rel ? config_rel : "config.json", st, code, err.message, needle);
    avo_sovits_free(m);
}

static void test_bad_files(avo_backend *be) {
    expect_load_error(be, "bad/G_missing_key.pth", NULL, AVO_ERR_FORMAT, "dec.conv_post.bias");
    expect_load_error(be, "bad/G_wrong_shape.pth", NULL, AVO_ERR_FORMAT, "emb_uv.weight");
    expect_load_error(be, "bad/G_no_model.pth", NULL, AVO_ERR_FORMAT, "\"model\"");
    expect_load_error(be, "small41/G_100.pth", "bad/config_ssl.json", AVO_ERR_FORMAT, "pre.weight");
    expect_load_error(be, "small41/G_100.pth", "bad/config_depthwise.json", AVO_ERR_UNSUPPORTED, "use_depthwise_conv");
    expect_load_error(be, "small41/G_100.pth", "small40/config.json", AVO_ERR_FORMAT, "config");
    expect_load_error(be, "small41/does_not_exist.pth", NULL, AVO_ERR_NOT_FOUND, "");
    /* a truncated checkpoint */
    char src[900], dst[900];
    path_of(src, sizeof src, "small40/G_100.pth");
    path_of(dst, sizeof dst, "bad/G_truncated.pth");
    size_t size = 0;
    char *data = avo_test_read_file(src, &size);
    FILE *f = data ? fopen(dst, "wb") : NULL;
    if (f) {
        fwrite(data, 1, size / 2, f);
        fclose(f);
        char cfg[900];
        path_of(cfg, sizeof cfg, "small40/config.json");
        avo_error err = {0};
        avo_sovits *m = NULL;
        CHECK(avo_sovits_load(dst, cfg, be, &m, &err) != AVO_OK && m == NULL && err.message[0]);
    }
    free(data);
}

static void test_glue_golden(void) {
    int64_t n = 0, nv = 0;
    float *sig = golden("glue_audio", &n), *vol_g = golden("glue_vol", &nv);
    float *vol = malloc((size_t)(nv > 0 ? nv : 1) * 4);
    avo_error err = {0};
    if (sig && vol_g && vol) {
        CHECK(nv == n / 512);
        CHECK_OK(avo_sovits_volume(sig, n, 512, vol, &err), &err);
        compare("volume", vol, "glue_vol", nv);
    }
    free(sig), free(vol_g), free(vol);
    int64_t nu = 0;
    float *units = golden("glue_units", &nu);
    const int64_t lens[2] = {86, 173};
    for (int li = 0; li < 2 && units; li++)
        for (int mi = 0; mi < 2; mi++) {
            const char *mode = mi ? "left" : "nearest";
            char name[64];
            snprintf(name, sizeof name, "glue_expand_%s_%lld", mode, (long long)lens[li]);
            float *out = malloc((size_t)lens[li] * 6 * 4);
            if (!out) continue;
            CHECK_OK(avo_sovits_expand_units(units, nu / 6, 6, lens[li], mode, out, &err), &err);
            int64_t k = 0;
            float *want = golden(name, &k);
            CHECK_MSG(want && k == lens[li] * 6 && memcmp(out, want, (size_t)k * 4) == 0, "%s differs", name);
            free(want);
            free(out);
        }
    free(units);
    int64_t nf = 0;
    float *raw = golden("glue_f0_raw", &nf), *filled = golden("glue_f0_filled", NULL), *uv_g = golden("glue_uv", NULL);
    float *f = malloc((size_t)(nf > 0 ? nf : 1) * 4), *uv = malloc((size_t)(nf > 0 ? nf : 1) * 4);
    if (raw && filled && uv_g && f && uv) {
        avo_sovits_fill_f0(raw, nf, f, uv);
        CHECK(memcmp(uv, uv_g, (size_t)nf * 4) == 0);
        double e = avo_test_rel_error(f, filled, nf);
        CHECK_MSG(e < 1e-6, "fill_f0 differs by %g", e);
        avo_sovits_fill_f0(raw, nf, raw, uv); /* in place */
        CHECK(avo_test_rel_error(raw, filled, nf) < 1e-6);
    }
    free(raw), free(filled), free(uv_g), free(f), free(uv);
}

/* ---- without torch ---------------------------------------------------------------------------- */

static void test_glue(void) {
    const float f0[6] = {0.0f, 30.0f, 50.0f, 220.0f, 1100.0f, 3000.0f};
    int32_t c[6];
    avo_sovits_f0_coarse(f0, 6, c);
    CHECK(c[0] == 1 && c[1] == 1 && c[2] == 1 && c[4] == 255 && c[5] == 255 && c[3] > 1 && c[3] < 255);
    /* against the 4.0 formula in double over a dense grid: only ties may round apart */
    const double mmin = 1127 * log(1 + 50 / 700.0), mmax = 1127 * log(1 + 1100 / 700.0);
    int diff = 0, prev = 1, backwards = 0;
    for (int i = 0; i <= 150000; i++) {
        float f = (float)(i * 0.01);
        int32_t got;
        avo_sovits_f0_coarse(&f, 1, &got);
        double mel = 1127 * log(1 + f / 700.0);
        double r = mel > 0 ? (mel - mmin) * 254 / (mmax - mmin) + 1 : mel;
        int want = (int)floor(r + 0.5);
        want = want < 1 ? 1 : want > 255 ? 255 : want;
        diff += got != want;
        backwards += got < prev;
        prev = got;
    }
    CHECK_MSG(diff <= 3, "%d coarse values differ from the float64 formula", diff);
    CHECK(backwards == 0);

    float units[3 * 2] = {1, 10, 2, 20, 3, 30}, out[7 * 2];
    avo_error err = {0};
    CHECK_OK(avo_sovits_expand_units(units, 3, 2, 7, "nearest", out, &err), &err);
    /* floor(i * 3 / 7): 0 0 0 1 1 2 2 */
    const float want[7] = {1, 1, 1, 2, 2, 3, 3};
    for (int i = 0; i < 7; i++) CHECK(out[2 * i] == want[i] && out[2 * i + 1] == 10 * want[i]);
    CHECK(avo_sovits_expand_units(units, 3, 2, 7, "linear", out, &err) == AVO_ERR_UNSUPPORTED);
    CHECK(avo_sovits_expand_units(units, 0, 2, 7, "left", out, &err) == AVO_ERR_INVALID_ARGUMENT);

    const float raw[7] = {0, 0, 200, 0, 0, 300, 0};
    float fl[7], uv[7];
    avo_sovits_fill_f0(raw, 7, fl, uv);
    const float fw[7] = {200, 200, 200, 233.3333f, 266.6667f, 300, 300}, uw[7] = {0, 0, 1, 0, 0, 1, 0};
    for (int i = 0; i < 7; i++) CHECK(fabsf(fl[i] - fw[i]) < 1e-3f && uv[i] == uw[i]);
    const float silent[3] = {0, 0, 0};
    avo_sovits_fill_f0(silent, 3, fl, uv);
    CHECK(fl[0] == 0 && fl[2] == 0 && uv[1] == 0);

    float sig[2048], vol[4];
    for (int i = 0; i < 2048; i++) sig[i] = 0.5f * sinf(2.0f * (float)M_PI * 441.0f * (float)i / 44100.0f);
    CHECK_OK(avo_sovits_volume(sig, 2048, 512, vol, &err), &err);
    for (int i = 0; i < 4; i++) CHECK_NEAR(vol[i], 0.5 / sqrt(2.0), 0.01);
    CHECK(avo_sovits_volume(sig, 256, 512, vol, &err) == AVO_ERR_INVALID_ARGUMENT);
}

/* Config errors are found before the checkpoint is opened: a placeholder model path is enough. */
static void test_config_errors(avo_backend *be) {
    static const struct {
        const char *json, *needle;
        avo_status code;
    } cases[] = {
        {"{", "not valid JSON", AVO_ERR_FORMAT},
        {"{\"model\": {}}", "\"data\"", AVO_ERR_FORMAT},
        {"{\"data\": {\"sampling_rate\": 44100, \"hop_length\": 512}, \"model\": {\"resblock\": \"1\"}}", "inter_channels",
         AVO_ERR_FORMAT},
        {"{\"data\": {}, \"model\": {\"use_depthwise_conv\": true, \"resblock\": \"1\"}}", "use_depthwise_conv",
         AVO_ERR_UNSUPPORTED},
        {"{\"data\": {}, \"model\": {\"use_transformer_flow\": true, \"resblock\": \"1\"}}", "transformer", AVO_ERR_UNSUPPORTED},
        {"{\"data\": {}, \"model\": {\"vocoder_name\": \"nsf-snake-hifigan\", \"resblock\": \"1\"}}", "nsf-snake-hifigan",
         AVO_ERR_UNSUPPORTED},
        {"{\"data\": {}, \"model\": {\"resblock\": \"2\"}}", "resblock", AVO_ERR_UNSUPPORTED},
        {"{\"data\": {\"sampling_rate\": 44100, \"hop_length\": 500}, \"model\": {\"inter_channels\": 192, \"hidden_channels\": "
         "192, \"filter_channels\": 768, \"n_heads\": 2, \"n_layers\": 6, \"kernel_size\": 3, \"gin_channels\": 256, "
         "\"ssl_dim\": 256, \"n_speakers\": 1, \"upsample_initial_channel\": 512, \"resblock\": \"1\", \"upsample_rates\": "
         "[8,8,2,2,2], \"upsample_kernel_sizes\": [16,16,4,4,4], \"resblock_kernel_sizes\": [3,7,11], "
         "\"resblock_dilation_sizes\": [[1,3,5],[1,3,5],[1,3,5]]}}",
         "hop_length is 500", AVO_ERR_FORMAT},
        {"{\"data\": {\"sampling_rate\": 44100, \"hop_length\": 512}, \"model\": {\"inter_channels\": 192, \"hidden_channels\": "
         "192, \"filter_channels\": 768, \"n_heads\": 2, \"n_layers\": 6, \"kernel_size\": 3, \"gin_channels\": 256, "
         "\"ssl_dim\": 256, \"n_speakers\": 1, \"upsample_initial_channel\": 512, \"resblock\": \"1\", \"upsample_rates\": "
         "[8,8,2,2,2], \"upsample_kernel_sizes\": [16,16,4,4,4], \"resblock_kernel_sizes\": [3,7,11], "
         "\"resblock_dilation_sizes\": [[1,3,5],[1,3,5]]}}",
         "one list per resblock kernel", AVO_ERR_FORMAT},
    };
    char cfg[700], model[700];
    snprintf(cfg, sizeof cfg, "%s/bad_config.json", refdir);
    snprintf(model, sizeof model, "%s/no_such_model.pth", refdir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        FILE *f = fopen(cfg, "w");
        CHECK(f != NULL);
        if (!f) return;
        fputs(cases[i].json, f);
        fclose(f);
        avo_error err = {0};
        avo_sovits *m = NULL;
        avo_status st = avo_sovits_load(model, cfg, be, &m, &err);
        CHECK_MSG(st == cases[i].code && !m && strstr(err.message, cases[i].needle), "config %zu: status %d, '%s' (want '%s')",
                  i, st, err.message, cases[i].needle);
    }
    avo_error err = {0};
    avo_sovits *m = NULL;
    CHECK(avo_sovits_load(NULL, NULL, be, &m, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(avo_sovits_load(model, NULL, be, &m, &err) == AVO_ERR_NOT_FOUND && strstr(err.message, "config.json"));
    CHECK(avo_sovits_get_info(NULL) == NULL && avo_sovits_speaker_id(NULL, "x") == -1);
    avo_sovits_free(NULL);
}

int main(int argc, char **argv) {
    (void)argc;
    /* idle OpenMP threads spinning starve OpenBLAS on a loaded machine (engine.h): about 6x slower here */
    if (!getenv("OMP_WAIT_POLICY") && setenv("OMP_WAIT_POLICY", "passive", 1) == 0) execv("/proc/self/exe", argv);
    avo_error err = {0};
    avo_backend *be = NULL;
    avo_arena *arena = NULL;
    avo_test_tmp_dir("sovits", refdir, sizeof refdir);
    CHECK_OK(avo_backend_cpu_create(2, &be, &err), &err);
    CHECK_OK(avo_arena_create(be, 8u << 20, &arena, &err), &err);
    if (!be || !arena) TEST_MAIN_END();

    test_glue();
    test_config_errors(be);

    int torch = make_golden();
    CHECK(torch >= 0);
    if (torch == 1) {
        char path[700];
        snprintf(path, sizeof path, "%s/golden/index.json", refdir);
        char *text = avo_test_read_file(path, NULL);
        gidx = text ? cJSON_Parse(text) : NULL;
        free(text);
        CHECK_MSG(gidx != NULL, "cannot read %s", path);
        if (gidx) {
            test_model(be, arena, "s40", "small40/G_100.pth", true);
            test_model(be, arena, "s41", "small41/G_100.pth", true);
            test_model(be, arena, "s41", "small41/G_100_release_half.pth", false);
            test_release(be, arena);
            test_bad_files(be);
            test_glue_golden();
            /* the same graph on the CUDA back end, where this build has one and a GPU is present */
            avo_backend *cu = NULL;
            avo_arena *ca = NULL;
            avo_error cerr = {0};
            if (avo_backend_cuda_built() && avo_backend_cuda_create(-1, &cu, &cerr) == AVO_OK &&
                avo_arena_create(cu, 8u << 20, &ca, &cerr) == AVO_OK) {
                fprintf(stderr, "CUDA back end (%s):\n", avo_backend_name(cu));
                test_model(cu, ca, "s40", "small40/G_100.pth", true);
                test_model(cu, ca, "s41", "small41/G_100.pth", true);
            } else {
                fprintf(stderr, "CUDA back end not available here (%s): only the CPU back end was tested\n",
                        avo_backend_cuda_built() ? cerr.message : "not built");
            }
            avo_arena_free(ca);
            avo_backend_free(cu);
        }
        cJSON_Delete(gidx);
    } else if (torch == 0) {
        const char *req = getenv("AVO_REQUIRE_TORCH");
        if (req && *req)
            CHECK_MSG(0, "python3-torch is missing but AVO_REQUIRE_TORCH is set");
        else
            fprintf(stderr, "SKIP: python3-torch not installed; so-vits parity with PyTorch not tested "
                            "(install python3-torch, or set AVO_REQUIRE_TORCH=1 to make this a failure)\n");
    }
    avo_arena_free(arena);
    avo_backend_free(be);
    TEST_MAIN_END();
}
