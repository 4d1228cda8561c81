/* models module: HuBERT content encoder against PyTorch. tests/reference/hubert_golden.py builds a
 * small random HuBERT (2 layers, 64-d, 4 heads, 32-channel conv stack) in fairseq's checkpoint
 * layout and its float64 outputs on 1 s of audio; the C model must match every layer and final_proj
 * to a relative error max|a-b| / max|b| under 1e-4. Argument errors are checked without torch. */
#include "autovoice/models.h"
#include "golden.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <time.h>
#include <unistd.h>

#define TOL 1e-4

static char refdir[600];

/* Runs the generator; 1 if the golden data exist, 0 if torch is missing, -1 on failure. */
static int make_golden(void) {
    return avo_test_run_reference(__FILE__, "hubert_golden.py", refdir, "");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void compare(avo_hubert *m, avo_arena *arena, const cJSON *js, const float *audio, int64_t n,
                    const char *name, int layer, bool proj) {
    int64_t rows = 0, cols = 0;
    float *want = avo_golden_tensor(js, refdir, name, NULL, &rows, &cols);
    if (!want) return;
    avo_error err = {0};
    avo_tensor out = {0};
    avo_arena_reset(arena);
    double t0 = now_s();
    avo_status st = avo_hubert_extract(m, arena, audio, n, layer, proj, &out, &err);
    double dt = now_s() - t0;
    CHECK_OK(st, &err);
    if (!st) {
        CHECK_MSG(out.ndim == 2 && out.shape[0] == rows && out.shape[1] == cols, "%s: got [%lld, %lld], want [%lld, %lld]",
                  name, (long long)out.shape[0], (long long)out.shape[1], (long long)rows, (long long)cols);
        if (out.ndim == 2 && out.shape[0] == rows && out.shape[1] == cols) {
            double e = avo_test_rel_error(avo_tensor_f32(&out), want, rows * cols);
            fprintf(stderr, "%-12s layer %d%s: [%lld, %lld] rel error %.3g (%.1f ms)\n", name, layer,
                    proj ? " +final_proj" : "", (long long)rows, (long long)cols, e, dt * 1e3);
            CHECK_MSG(e < TOL, "%s: relative error %g >= %g", name, e, TOL);
        }
    }
    free(want);
}

static void test_parity(avo_backend *be, avo_arena *arena) {
    char path[700];
    cJSON *js = avo_golden_open(refdir);
    if (!js) return;
    avo_error err = {0};
    avo_hubert *m = NULL;
    snprintf(path, sizeof path, "%s/hubert_small.pt", refdir);
    CHECK_OK(avo_hubert_load(path, be, &m, &err), &err);
    int64_t n = 0, one = 0;
    float *audio = avo_golden_tensor(js, refdir, "audio_16k", NULL, &n, &one);
    if (m && audio) {
        CHECK(avo_hubert_dim(m) == cJSON_GetObjectItem(js, "dim")->valueint);
        CHECK(avo_hubert_layers(m) == cJSON_GetObjectItem(js, "layers")->valueint);
        CHECK(avo_hubert_final_dim(m) == 16);
        compare(m, arena, js, audio, n, "layer1", 1, false);
        compare(m, arena, js, audio, n, "layer2", 2, false);
        compare(m, arena, js, audio, n, "final_proj", 2, true);
        /* argument errors */
        avo_tensor out = {0};
        CHECK(avo_hubert_extract(m, arena, audio, n, 0, false, &out, &err) == AVO_ERR_INVALID_ARGUMENT);
        CHECK(avo_hubert_extract(m, arena, audio, n, 3, false, &out, &err) == AVO_ERR_INVALID_ARGUMENT);
        CHECK(avo_hubert_extract(m, arena, audio, 399, 1, false, &out, &err) == AVO_ERR_INVALID_AUDIO);
    }
    free(audio);
    avo_hubert_free(m);
    cJSON_Delete(js);
}

int main(void) {
    avo_error err = {0};
    avo_backend *be = NULL;
    avo_arena *arena = NULL;
    avo_test_tmp_dir("hubert", refdir, sizeof refdir);
    CHECK_OK(avo_backend_cpu_create(2, &be, &err), &err);
    CHECK_OK(avo_arena_create(be, 8u << 20, &arena, &err), &err);
    if (!be || !arena) TEST_MAIN_END();

    /* a missing file is a clear error, not a crash */
    avo_hubert *m = NULL;
    char path[700];
    snprintf(path, sizeof path, "%s/does_not_exist.pt", refdir);
    CHECK(avo_hubert_load(path, be, &m, &err) != AVO_OK && m == NULL && err.message[0]);

    int torch = make_golden();
    CHECK(torch >= 0);
    if (torch == 1) {
        test_parity(be, arena);
    } else if (torch == 0) {
        const char *req = getenv("AVO_REQUIRE_TORCH");
        if (req && *req)
            CHECK_MSG(0, "python3-torch is missing but AVO_REQUIRE_TORCH is set");
        else
            fprintf(stderr, "SKIP: python3-torch not installed; HuBERT parity with PyTorch not tested "
                            "(install python3-torch, or set AVO_REQUIRE_TORCH=1 to make this a failure)\n");
    }
    avo_arena_free(arena);
    avo_backend_free(be);
    TEST_MAIN_END();
}
