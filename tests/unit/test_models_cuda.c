/* The neural models on the CUDA back end against the CPU back end, with the same inputs: HuBERT (last
 * layer, and final_proj), RMVPE (salience of the network on a log-mel, and the F0 track), the RVC
 * synthesizer (v2 NSF, v1 NSF, v1 without F0; both noise draws given) and so-vits-svc 4.1 (every draw
 * given). Small random models from the tests' generators (hubert_golden.py, rmvpe_golden.py,
 * rvc_golden.py, make_sovits_models.py --small), or the folder AVO_MODELS_CUDA_DIR holding
 * hubert/hubert_small.pt, hubert/audio_16k.f32, rmvpe/rmvpe_small.pt, rvc/rvc_{v2,v1,nono}.pth and
 * sovits/small41/{G_100_release_half.pth,config.json}.
 *
 * Bound: relative error max|gpu - cpu| / max|cpu| under 1e-4 in FP32 and 1e-2 in FP16 mode; F0
 * within 5 cents where both are voiced. INT8 HuBERT (calibrated here on the CPU: histograms, error
 * pass, selection, as autovoice calibrate): mean per-frame cosine of the content features >= 0.99
 * against FP32 on the CPU (the bound), INT8 GEMMs counted, and within 5e-2 of the CPU's
 * INT8 simulation with the same scales (the GPU's other ops run FP16). Without CUDA in the build or a GPU it prints SKIP and passes
 * (AVO_REQUIRE_CUDA=1 makes that a failure); without the models (no torch to make them) likewise. */
#include "autovoice/calibrate.h"
#include "autovoice/engine.h"
#include "autovoice/models.h"
#include "models/rmvpe_internal.h"
#include "test_util.h"

#include <stdint.h>
#include <unistd.h>

#define TOL_FP32 1e-4
#define TOL_FP16 1e-2
#define TOL_CENTS 5.0

static avo_backend *be[2]; /* cpu, cuda */
static avo_arena *ar[2];
static char dir[700];


static uint64_t rng = 88172645463325252ull;
static float urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0));
}
static float *normals(int64_t n, float scale) {
    float *v = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        double u1 = urand() + 1e-12, u2 = urand();
        v[i] = scale * (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
    }
    return v;
}

static void set_mode(int fp16) {
    avo_error err = {0};
    CHECK_OK(avo_backend_cuda_set_precision(be[1], fp16 ? AVO_CUDA_FP16 : AVO_CUDA_FP32, &err), &err);
}

static void report(const char *what, int fp16, double e) {
    double tol = fp16 ? TOL_FP16 : TOL_FP32;
    fprintf(stderr, "%-34s %s rel %.2e\n", what, fp16 ? "fp16" : "fp32", e);
    CHECK_MSG(e < tol, "%s (%s): relative error %.3g >= %g", what, fp16 ? "fp16" : "fp32", e, tol);
}

static void path_of(char *buf, size_t n, const char *rel) { snprintf(buf, n, "%s/%s", dir, rel); }

/* ---- models ----------------------------------------------------------------------------------- */

static float *read_f32(const char *rel, int64_t *count) {
    char p[900];
    path_of(p, sizeof p, rel);
    size_t size = 0;
    char *d = avo_test_read_file(p, &size);
    CHECK_MSG(d != NULL, "cannot read %s", p);
    *count = d ? (int64_t)(size / sizeof(float)) : 0;
    return (float *)d;
}

static void t_hubert(void) {
    char p[900];
    path_of(p, sizeof p, "hubert/hubert_small.pt");
    int64_t n = 0;
    float *audio = read_f32("hubert/audio_16k.f32", &n);
    avo_hubert *m[2] = {NULL, NULL};
    avo_error err = {0};
    for (int s = 0; s < 2; s++) CHECK_OK(avo_hubert_load(p, be[s], &m[s], &err), &err);
    if (!m[0] || !m[1] || !audio) goto done;
    for (int proj = 0; proj < 2; proj++) {
        if (proj && avo_hubert_final_dim(m[0]) == 0) continue;
        float *out[2] = {NULL, NULL};
        int64_t cnt = 0;
        for (int pass = 0; pass < 3; pass++) { /* cpu, cuda fp32, cuda fp16 */
            int s = pass ? 1 : 0;
            if (pass) set_mode(pass == 2);
            avo_arena_reset(ar[s]);
            avo_tensor y;
            CHECK_OK(avo_hubert_extract(m[s], ar[s], audio, n, avo_hubert_layers(m[s]), proj, &y, &err), &err);
            if (err.code) break;
            cnt = avo_tensor_numel(&y);
            float *h = malloc(sizeof(float) * (size_t)cnt);
            CHECK_OK(avo_tensor_to_host(ar[s], &y, h, cnt, &err), &err);
            if (!pass) {
                out[0] = h;
                continue;
            }
            report(proj ? "hubert final_proj" : "hubert last layer", pass == 2, avo_test_rel_error(h, out[0], cnt));
            free(h);
        }
        free(out[0]);
    }
done:
    set_mode(0);
    avo_hubert_free(m[0]), avo_hubert_free(m[1]);
    free(audio);
}

static void t_rmvpe(void) {
    char p[900];
    path_of(p, sizeof p, "rmvpe/rmvpe_small.pt");
    int64_t n = 0;
    float *audio = read_f32("hubert/audio_16k.f32", &n);
    avo_rmvpe *m[2] = {NULL, NULL};
    avo_error err = {0};
    for (int s = 0; s < 2; s++) CHECK_OK(avo_rmvpe_load(p, be[s], &m[s], &err), &err);
    rmvpe_mel *mel = NULL;
    CHECK_OK(rmvpe_mel_create(&mel, &err), &err);
    if (!m[0] || !m[1] || !audio || !mel) goto done;
    const int64_t F = avo_rmvpe_frames(n);
    float *mf = malloc(sizeof(float) * (size_t)(F * RMVPE_MELS)), *sal[2], *f0[2];
    for (int s = 0; s < 2; s++) {
        sal[s] = malloc(sizeof(float) * (size_t)(F * RMVPE_BINS));
        f0[s] = malloc(sizeof(float) * (size_t)F);
    }
    CHECK_OK(rmvpe_mel_frames(mel, audio, n, 0, F, mf, &err), &err);
    CHECK_OK(rmvpe_salience(m[0], ar[0], mf, F, sal[0], &err), &err);
    avo_arena_reset(ar[0]);
    /* a random model's peaks all exceed RVC's 0.03: a threshold inside their range tests voicing too */
    CHECK_OK(avo_rmvpe_f0(m[0], ar[0], audio, n, 0.3f, f0[0], NULL, &err), &err);
    for (int fp16 = 0; fp16 < 2; fp16++) {
        set_mode(fp16);
        avo_arena_reset(ar[1]);
        CHECK_OK(rmvpe_salience(m[1], ar[1], mf, F, sal[1], &err), &err);
        report("rmvpe salience", fp16, avo_test_rel_error(sal[1], sal[0], F * RMVPE_BINS));
        avo_arena_reset(ar[1]);
        CHECK_OK(avo_rmvpe_f0(m[1], ar[1], audio, n, 0.3f, f0[1], NULL, &err), &err);
        double worst = 0.0;
        int64_t flips = 0, both = 0;
        for (int64_t i = 0; i < F; i++) {
            if ((f0[0][i] > 0) != (f0[1][i] > 0)) flips++;
            if (f0[0][i] > 0 && f0[1][i] > 0) {
                both++;
                double c = fabs(1200.0 * log2((double)f0[1][i] / (double)f0[0][i]));
                worst = c > worst ? c : worst;
            }
        }
        fprintf(stderr, "%-34s %s %.3f cents max over %lld frames, %lld voicing flips\n", "rmvpe f0", fp16 ? "fp16" : "fp32",
                worst, (long long)both, (long long)flips);
        CHECK_MSG(worst < TOL_CENTS && both > 0, "rmvpe f0 (%s): %.3f cents over %lld frames", fp16 ? "fp16" : "fp32", worst,
                  (long long)both);
        /* a frame whose peak lies within rounding of the threshold may flip; more than that is a bug */
        CHECK_MSG(flips <= (fp16 ? 2 : 0), "rmvpe f0 (%s): %lld voicing flips", fp16 ? "fp16" : "fp32", (long long)flips);
    }
    free(mf);
    for (int s = 0; s < 2; s++) free(sal[s]), free(f0[s]);
done:
    set_mode(0);
    rmvpe_mel_free(mel);
    avo_rmvpe_free(m[0]), avo_rmvpe_free(m[1]);
    free(audio);
}

static void t_rvc(const char *file) {
    char p[900];
    path_of(p, sizeof p, file);
    avo_rvc *m[2] = {NULL, NULL};
    avo_error err = {0};
    for (int s = 0; s < 2; s++) CHECK_OK(avo_rvc_load(p, be[s], &m[s], &err), &err);
    if (!m[0] || !m[1]) goto done;
    const avo_rvc_info *in = avo_rvc_get_info(m[0]);
    const int64_t T = 150, hop = in->hop;
    float *phone = normals(T * in->phone_dim, 1.0f), *zn = normals(192 * T, 1.0f), *sn = normals(T * hop, 1.0f);
    float *f0 = malloc(sizeof(float) * (size_t)T), *y[2];
    int32_t *coarse = malloc(sizeof(int32_t) * (size_t)T);
    for (int64_t i = 0; i < T; i++) f0[i] = i % 50 < 40 ? (float)(180.0 + 60.0 * sin(0.05 * (double)i)) : 0.0f;
    avo_rvc_pitch_coarse(f0, T, coarse);
    for (int s = 0; s < 2; s++) y[s] = malloc(sizeof(float) * (size_t)(T * hop));
    /* z draws of the model's inter channels: 192 in the real models, fewer in the small ones */
    CHECK_OK(avo_rvc_infer(m[0], ar[0], phone, T, in->uses_f0 ? coarse : NULL, in->uses_f0 ? f0 : NULL, 0, zn, sn, 1, y[0],
                           &err),
             &err);
    for (int fp16 = 0; fp16 < 2; fp16++) {
        set_mode(fp16);
        avo_arena_reset(ar[1]);
        CHECK_OK(avo_rvc_infer(m[1], ar[1], phone, T, in->uses_f0 ? coarse : NULL, in->uses_f0 ? f0 : NULL, 0, zn, sn, 1,
                               y[1], &err),
                 &err);
        char what[120];
        snprintf(what, sizeof what, "rvc %s audio", file);
        report(what, fp16, avo_test_rel_error(y[1], y[0], T * hop));
    }
    avo_arena_reset(ar[0]);
    free(phone), free(zn), free(sn), free(f0), free(coarse), free(y[0]), free(y[1]);
done:
    set_mode(0);
    avo_rvc_free(m[0]), avo_rvc_free(m[1]);
}

static void t_sovits(const char *file) {
    char p[900];
    path_of(p, sizeof p, file);
    avo_sovits *m[2] = {NULL, NULL};
    avo_error err = {0};
    for (int s = 0; s < 2; s++) CHECK_OK(avo_sovits_load(p, NULL, be[s], &m[s], &err), &err);
    if (!m[0] || !m[1]) goto done;
    const avo_sovits_info *in = avo_sovits_get_info(m[0]);
    const int64_t T = 60, N = T * in->hop;
    float *units = normals(T * in->ssl_dim, 1.0f), *z = normals(in->inter_channels * T, 1.0f), *src = normals(N * 9, 1.0f);
    float *f0 = malloc(sizeof(float) * (size_t)T), *uv = malloc(sizeof(float) * (size_t)T), *vol = malloc(sizeof(float) * (size_t)T);
    float ini[9] = {0};
    for (int i = 1; i < 9; i++) ini[i] = urand();
    for (int64_t i = 0; i < T; i++) {
        f0[i] = (float)(200.0 + 40.0 * sin(0.1 * (double)i));
        uv[i] = i % 20 < 16 ? 1.0f : 0.0f;
        vol[i] = 0.05f + 0.02f * (float)(i % 7);
    }
    avo_sovits_noise noise = {z, ini, src};
    float *y[2] = {malloc(sizeof(float) * (size_t)N), malloc(sizeof(float) * (size_t)N)};
    CHECK_OK(avo_sovits_infer(m[0], ar[0], units, T, f0, uv, vol, 0, 0.4f, &noise, 1, y[0], &err), &err);
    for (int fp16 = 0; fp16 < 2; fp16++) {
        set_mode(fp16);
        avo_arena_reset(ar[1]);
        CHECK_OK(avo_sovits_infer(m[1], ar[1], units, T, f0, uv, vol, 0, 0.4f, &noise, 1, y[1], &err), &err);
        report("so-vits 4.1 audio", fp16, avo_test_rel_error(y[1], y[0], N));
    }
    avo_arena_reset(ar[0]);
    free(units), free(z), free(src), free(f0), free(uv), free(vol), free(y[0]), free(y[1]);
done:
    set_mode(0);
    avo_sovits_free(m[0]), avo_sovits_free(m[1]);
}

/* ---- INT8 HuBERT ------------------------------------------------------------------------------ */

static float *hubert_run(avo_hubert *m, int s, const float *audio, int64_t n, int64_t *frames, int64_t *dim) {
    avo_error err = {0};
    avo_arena_reset(ar[s]);
    avo_tensor y;
    CHECK_OK(avo_hubert_extract(m, ar[s], audio, n, avo_hubert_layers(m), false, &y, &err), &err);
    if (err.code) return NULL;
    *frames = y.shape[0];
    *dim = y.shape[1];
    float *h = malloc(sizeof(float) * (size_t)avo_tensor_numel(&y));
    CHECK_OK(avo_tensor_to_host(ar[s], &y, h, avo_tensor_numel(&y), &err), &err);
    return h;
}

static void t_hubert_int8(void) {
    char p[900];
    path_of(p, sizeof p, "hubert/hubert_small.pt");
    int64_t n = 0, frames = 0, dim = 0;
    float *audio = read_f32("hubert/audio_16k.f32", &n);
    avo_hubert *m[2] = {NULL, NULL};
    avo_error err = {0};
    avo_calib *col = NULL;
    avo_calib_table *all = NULL, *sel = NULL, *tab = NULL;
    avo_calib_sim *sim = NULL;
    float *ref = NULL, *q = NULL, *simq = NULL;
    for (int s = 0; s < 2; s++) CHECK_OK(avo_hubert_load(p, be[s], &m[s], &err), &err);
    if (!m[0] || !m[1] || !audio) goto done;
    /* calibration on the CPU, as autovoice calibrate does it (a short clip: the minimum is waived) */
    CHECK_OK(avo_calib_create(&col, &err), &err);
    CHECK_OK(avo_calib_attach(col, be[0], &err), &err);
    ref = hubert_run(m[0], 0, audio, n, &frames, &dim);
    avo_calib_note_audio(col, (double)n / 16000.0);
    CHECK_OK(avo_calib_compute(col, 1e-3, 0, &all, &err), &err);
    if (!all) goto done;
    CHECK_OK(avo_calib_start_error_pass(col, all, &err), &err);
    free(hubert_run(m[0], 0, audio, n, &frames, &dim));
    avo_calib_detach(col, be[0]);
    CHECK_OK(avo_calib_select(col, 0, &sel, &err), &err);
    if (!sel) goto done;
    CHECK_OK(avo_calib_table_create(0, &tab, &err), &err);
    for (int i = 0; i < avo_calib_table_count(sel); i++) {
        const char *nm;
        float sc;
        avo_calib_table_entry(sel, i, &nm, &sc);
        if (avo_calib_cuda_int8_capable(nm)) CHECK_OK(avo_calib_table_set(tab, nm, sc, &err), &err);
    }
    fprintf(stderr, "hubert int8: %d tensors calibrated, %d selected, %d INT8-capable on CUDA\n",
            avo_calib_tensor_count(col), avo_calib_table_count(sel), avo_calib_table_count(tab));
    CHECK_MSG(avo_calib_table_count(tab) > 0, "hubert int8: no INT8-capable tensor selected");
    /* the CPU simulation with the same scales */
    CHECK_OK(avo_calib_sim_create(tab, false, &sim, &err), &err);
    CHECK_OK(avo_calib_sim_attach(sim, be[0], &err), &err);
    simq = hubert_run(m[0], 0, audio, n, &frames, &dim);
    avo_calib_sim_detach(sim, be[0]);
    /* the GPU in INT8 mode */
    CHECK_OK(avo_backend_cuda_set_calibration(be[1], tab, &err), &err);
    CHECK_OK(avo_backend_cuda_set_precision(be[1], AVO_CUDA_INT8, &err), &err);
    int64_t i8a = 0, i8b = 0, sk = 0;
    CHECK_OK(avo_backend_cuda_int8_counts(be[1], &i8a, NULL, &err), &err);
    q = hubert_run(m[1], 1, audio, n, &frames, &dim);
    CHECK_OK(avo_backend_cuda_int8_counts(be[1], &i8b, &sk, &err), &err);
    int64_t quantised = 0, skipped = 0;
    avo_calib_sim_counts(sim, &quantised, &skipped);
    fprintf(stderr, "hubert int8: %lld INT8 GEMMs on the GPU (%lld INT8-capable ops ran FP16), simulation quantised "
                    "%lld\n", (long long)(i8b - i8a), (long long)sk, (long long)quantised);
    CHECK_MSG(i8b - i8a == quantised && quantised > 0, "hubert int8: %lld INT8 GEMMs, the simulation quantised %lld",
              (long long)(i8b - i8a), (long long)quantised);
    if (ref && q && simq) {
        double worst = 0, mean = avo_calib_frame_cosine(q, ref, frames, dim, &worst), wsim = 0;
        double msim = avo_calib_frame_cosine(simq, ref, frames, dim, &wsim);
        double e_sim = avo_test_rel_error(q, simq, frames * dim);
        fprintf(stderr, "hubert int8: per-frame cosine vs fp32 mean %.5f min %.5f (simulation: mean %.5f min %.5f); "
                        "gpu vs simulation rel %.2e\n", mean, worst, msim, wsim, e_sim);
        CHECK_MSG(mean >= 0.99, "hubert int8: mean per-frame cosine %.4f < 0.99", mean);
        CHECK_MSG(e_sim < 5e-2, "hubert int8: %.3g from the CPU simulation", e_sim);
    }
done:
    avo_backend_cuda_set_precision(be[1], AVO_CUDA_FP32, NULL);
    avo_backend_cuda_set_calibration(be[1], NULL, NULL);
    avo_calib_sim_free(sim);
    avo_calib_table_free(tab), avo_calib_table_free(sel), avo_calib_table_free(all);
    avo_calib_free(col);
    avo_hubert_free(m[0]), avo_hubert_free(m[1]);
    free(audio), free(ref), free(q), free(simq);
}

/* ---- set-up ----------------------------------------------------------------------------------- */

static int skip(const char *why) {
    const char *req = getenv("AVO_REQUIRE_CUDA");
    if (req && *req)
        CHECK_MSG(0, "AVO_REQUIRE_CUDA is set but %s", why);
    else
        fprintf(stderr, "SKIP: %s; the models are not tested on CUDA\n", why);
    TEST_MAIN_END();
}

/* The small models: AVO_MODELS_CUDA_DIR, or made now by the reference generators (1 if made). */
static int find_models(void) {
    char p[900], cmd[8192];
    const char *given = getenv("AVO_MODELS_CUDA_DIR");
    if (given && *given) {
        snprintf(dir, sizeof dir, "%s", given);
    } else {
        avo_test_tmp_dir("models_cuda", dir, sizeof dir);
        char src[600];
        const char *env = getenv("AVO_SOURCE_DIR");
        snprintf(src, sizeof src, "%s", env && *env ? env : __FILE__);
        char *cut = env && *env ? NULL : strstr(src, "tests/unit/");
        if (cut) snprintf(cut, sizeof src - (size_t)(cut - src), ".");
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && /usr/bin/python3 tests/reference/hubert_golden.py '%s/hubert' && "
                 "/usr/bin/python3 tests/reference/rmvpe_golden.py '%s/rmvpe' '%s/hubert/audio_16k.f32' && "
                 "/usr/bin/python3 tests/reference/rvc_golden.py '%s/rvc' && "
                 "/usr/bin/python3 tests/reference/make_sovits_models.py --small '%s/sovits' > '%s/gen.log' 2>&1",
                 src, dir, dir, dir, dir, dir, dir);
        if (system(cmd) != 0) fprintf(stderr, "model generators failed: see %s/gen.log\n", dir);
    }
    path_of(p, sizeof p, "hubert/TORCH_MISSING");
    if (access(p, F_OK) == 0) return 0;
    path_of(p, sizeof p, "rvc/rvc_v2.pth");
    return access(p, R_OK) == 0;
}

int main(void) {
    avo_error err = {0};
    avo_status st = avo_backend_cuda_create(-1, &be[1], &err);
    /* without a GPU the back end must refuse cleanly, so that callers fall back to the CPU */
    CHECK(st == AVO_OK ? be[1] != NULL : st == AVO_ERR_UNSUPPORTED && be[1] == NULL && err.message[0]);
    if (!avo_backend_cuda_built()) return skip("this build has no CUDA back end");
    if (st != AVO_OK) {
        char why[AVO_ERROR_MESSAGE_MAX + 32];
        snprintf(why, sizeof why, "no GPU (%s)", err.message);
        return skip(why);
    }
    if (!find_models()) {
        avo_backend_free(be[1]);
        return skip("no small models (python3-torch missing, or AVO_MODELS_CUDA_DIR empty)");
    }
    CHECK_OK(avo_backend_cpu_create(2, &be[0], &err), &err);
    for (int s = 0; s < 2; s++) CHECK_OK(avo_arena_create(be[s], 16u << 20, &ar[s], &err), &err);
    if (!be[0] || !ar[0] || !ar[1]) TEST_MAIN_END();
    t_hubert();
    t_hubert_int8();
    t_rmvpe();
    t_rvc("rvc/rvc_v2.pth");
    t_rvc("rvc/rvc_v1.pth");
    t_rvc("rvc/rvc_nono.pth");
    t_sovits("sovits/small41/G_100_release_half.pth");
    int64_t f16 = 0;
    CHECK_OK(avo_backend_cuda_gemm_counts(be[1], NULL, &f16, &err), &err);
    CHECK_MSG(f16 > 0, "FP16 mode ran no half GEMM");
    CHECK_OK(avo_backend_cuda_sync(be[1], &err), &err);
    for (int s = 0; s < 2; s++) avo_arena_free(ar[s]), avo_backend_free(be[s]);
    TEST_MAIN_END();
}
