/* engine_cache module. Two parts:
 *  - the cache itself, with a stand-in loader whose tensors are a known function of its "model file"
 *    (runs everywhere): build then hit with the same bits and no rebuild work; every kind of damage
 *    (a byte of the header, of a record header, of tensor data, of the checksum; truncation; bytes
 *    after the end; another format version) and every other key (precision, device, model hash,
 *    profile) detected and rebuilt; a loader that asks for other tensors rebuilt; XDG_CACHE_HOME and
 *    HOME respected; no temporary files left; a cache directory that cannot be made gives an uncached
 *    load with a reason, not a failure; the memory reader on every truncation of a good file.
 *  - the four models: the small test models of the PyTorch reference scripts (hubert_golden.py,
 *    rmvpe_golden.py, rvc_golden.py, make_sovits_models.py --small; or a folder AVO_TEST_SMALL_MODELS
 *    holding hubert/hubert_small.pt, rmvpe/rmvpe_small.pt, rvc/rvc_v2.pth, rvc/rvc_v1.pth,
 *    sovits/small41/{G_100.pth,config.json}): the output of a model built through the cache and of one
 *    replayed from it must be bit-identical to the plain load's. */
#include "autovoice/engine_cache.h"
#include "test_util.h"

#include <dirent.h>
#include <unistd.h>

static char tmp[600];

/* ---- a stand-in loader ------------------------------------------------------------------------- */

#define NT 4
static const char *const t_names[NT] = {"enc.conv.weight", "enc.conv.bias", "scalar", "dec.big"};
static const int t_ndim[NT] = {3, 1, 0, 2};
static const int64_t t_shape[NT][3] = {{4, 3, 2}, {5, 0, 0}, {0, 0, 0}, {64, 33, 0}};

typedef struct fake {
    const char *model;
    avo_backend *be;
    avo_arena *weights;
    avo_tensor t[NT];
    int builds;            /* times the tensors were computed (not replayed) */
    const char *ask_extra; /* replaying: also take this name */
    bool skip_last;        /* replaying: do not take the last tensor */
} fake;

static int64_t numel_of(int i) {
    int64_t n = 1;
    for (int d = 0; d < t_ndim[i]; d++) n *= t_shape[i][d];
    return n;
}

/* The "folded" values: a function of the model file's first bytes. */
static float value_of(uint64_t seed, int i, int64_t k) {
    uint64_t x = seed ^ ((uint64_t)(i + 1) << 32) ^ (uint64_t)k;
    x *= 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    return (float)((double)(x >> 11) / 9007199254740992.0 - 0.5) * 3.0f;
}

static uint64_t model_seed(const char *path) {
    uint64_t s = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        if (fread(&s, 1, sizeof s, f) == 0) s = 0;
        fclose(f);
    }
    return s;
}

static avo_status fake_load(void *u, avo_engine_session *s, avo_error *err) {
    fake *f = u;
    uint64_t seed = model_seed(f->model);
    avo_status st = avo_arena_create(f->be, 1 << 16, &f->weights, err);
    if (!st) st = avo_engine_attach(s, f->weights, err);
    for (int i = 0; i < NT && !st; i++) {
        if (avo_engine_replaying(s)) {
            if (f->skip_last && i == NT - 1) break;
            st = avo_engine_take_shaped(s, t_names[i], t_ndim[i], t_shape[i], &f->t[i], err);
            continue;
        }
        if (i == 0) f->builds++;
        float v[64 * 33];
        for (int64_t k = 0; k < numel_of(i); k++) v[k] = value_of(seed, i, k);
        st = avo_tensor_from_host(f->weights, t_ndim[i], t_shape[i], v, &f->t[i], err);
        if (!st) st = avo_engine_put(s, t_names[i], &f->t[i], err);
    }
    if (!st && f->ask_extra && avo_engine_replaying(s)) {
        avo_tensor x;
        st = avo_engine_take(s, f->ask_extra, &x, err);
    }
    return st;
}

static void fake_unload(void *u) {
    fake *f = u;
    avo_arena_free(f->weights);
    f->weights = NULL;
}

/* Loads through the cache; checks the values; returns the outcome. */
static avo_engine_outcome fake_run(fake *f, const avo_engine_request *req, avo_engine_result *res) {
    avo_error err = {0};
    avo_engine_result local;
    if (!res) res = &local;
    avo_status st = avo_engine_load(req, f->model, NULL, "fake/1", f->be, fake_load, fake_unload, f, res, &err);
    CHECK_OK(st, &err);
    uint64_t seed = model_seed(f->model);
    bool same = !st;
    for (int i = 0; same && i < NT; i++) {
        same = f->t[i].ndim == t_ndim[i] && avo_tensor_numel(&f->t[i]) == numel_of(i);
        for (int64_t k = 0; same && k < numel_of(i); k++) same = avo_tensor_f32(&f->t[i])[k] == value_of(seed, i, k);
    }
    CHECK_MSG(same, "tensors differ from the loader's values (outcome %s)", avo_engine_outcome_name(res->outcome));
    fake_unload(f);
    return res->outcome;
}

static bool has_bytes(const char *buf, size_t n, const char *needle, size_t k) {
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(buf + i, needle, k) == 0) return true;
    return false;
}

static int count_tmp_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) n += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(data, 1, n, f) == n);
    fclose(f);
}

static void copy_file(const char *from, const char *to) {
    size_t n = 0;
    char *d = avo_test_read_file(from, &n);
    CHECK(d != NULL);
    if (d) write_file(to, d, n);
    free(d);
}

static void rm_rf_files(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[1400];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    if (d) closedir(d);
}

typedef struct damage {
    const char *what;
    int kind;        /* 0 flip byte at off, 1 truncate to off, 2 append a byte, 3 version */
    int64_t off;     /* < 0: from the end */
    const char *why; /* in the reason */
} damage;

static void test_cache(avo_backend *be) {
    char dir[800], model[800], path[1200];
    snprintf(dir, sizeof dir, "%s/cache", tmp);
    mkdir(dir, 0755);
    rm_rf_files(dir);
    snprintf(model, sizeof model, "%s/model.bin", tmp);
    write_file(model, "model-A-bytes-0123456789", 24);
    avo_error err = {0};
    avo_engine_cache *c = NULL;
    CHECK_OK(avo_engine_cache_open(dir, &c, &err), &err);
    if (!c) return;
    CHECK(strcmp(avo_engine_cache_dir(c), dir) == 0);
    avo_engine_request req = {.cache = c};
    fake f = {.model = model, .be = be};
    avo_engine_result r;

    /* no cache: the plain load */
    CHECK(fake_run(&f, NULL, &r) == AVO_ENGINE_OFF && f.builds == 1);
    /* build, then hit without computing again */
    CHECK(fake_run(&f, &req, &r) == AVO_ENGINE_BUILT && f.builds == 2);
    CHECK(r.tensors == NT && r.bytes == (24 + 5 + 1 + 64 * 33) * 4 && r.reason[0] == 0);
    snprintf(path, sizeof path, "%s", r.path);
    CHECK(strncmp(path, dir, strlen(dir)) == 0 && strstr(path, "/model-") && strstr(path, ".aveng"));
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && sb.st_size % 8 == 0);
    CHECK(fake_run(&f, &req, &r) == AVO_ENGINE_HIT && f.builds == 2);
    CHECK(r.tensors == NT && r.bytes == (24 + 5 + 1 + 64 * 33) * 4);
    CHECK(count_tmp_files(dir) == 0);

    /* the header repeats the key, readable */
    size_t n = 0;
    char *good = avo_test_read_file(path, &n);
    CHECK(good && n > 200 && memcmp(good, "AVENGINE", 8) == 0);
    if (!good) return;
    CHECK(has_bytes(good, n, "precision=fp32\n", 15) && has_bytes(good, n, "device=cpu\n", 11) &&
          has_bytes(good, n, "profile=default\n", 16) && has_bytes(good, n, "loader=fake/1\n", 14) &&
          has_bytes(good, n, "/model.bin\n", 11));
    uint32_t tlen = (uint32_t)(unsigned char)good[12] | (uint32_t)(unsigned char)good[13] << 8;
    int64_t rec0 = (16 + tlen + 63) / 64 * 64;

    /* damage of every kind: detected, rebuilt (the values are right), rewritten (the next load hits) */
    const damage dm[] = {
        {"header magic", 0, 2, "magic"},
        {"header key text", 0, 20, "other"},
        {"record tag", 0, rec0 + 1, "record tag"},
        {"record dtype", 0, rec0 + 6, "corrupt record"},
        {"record shape", 0, rec0 + 8, "corrupt record"},
        {"record name", 0, rec0 + 48, "checksum"},
        {"tensor data", 0, (int64_t)n / 2, "checksum"},
        {"last tensor byte", 0, -17, "checksum"},
        {"end record count", 0, -12, "counts"},
        {"checksum", 0, -1, "checksum"},
        {"truncated by one", 1, -1, "truncated"},
        {"truncated in the checksum", 1, -5, "truncated"},
        {"truncated in the middle", 1, (int64_t)n / 2, "truncated"},
        {"truncated in the header", 1, 10, "truncated"},
        {"empty", 1, 0, "truncated"},
        {"a byte after the end", 2, 0, "after the end"},
        {"format version", 3, 0, "format version"},
    };
    for (size_t i = 0; i < sizeof dm / sizeof dm[0]; i++) {
        char *b = malloc(n + 1);
        memcpy(b, good, n);
        size_t len = n;
        int64_t off = dm[i].off < 0 ? (int64_t)n + dm[i].off : dm[i].off;
        if (dm[i].kind == 0) b[off] ^= 0x10;
        else if (dm[i].kind == 1) len = (size_t)off;
        else if (dm[i].kind == 2) b[len++] = 0;
        else b[8] = 2;
        write_file(path, b, len);
        free(b);
        int builds = f.builds;
        avo_engine_outcome o = fake_run(&f, &req, &r);
        CHECK_MSG(o == AVO_ENGINE_REBUILT && f.builds == builds + 1 && strstr(r.reason, dm[i].why),
                  "%s: outcome %s, reason '%s' (wanted '%s')", dm[i].what, avo_engine_outcome_name(o), r.reason,
                  dm[i].why);
        CHECK_MSG(fake_run(&f, &req, &r) == AVO_ENGINE_HIT && f.builds == builds + 1, "%s: not rewritten", dm[i].what);
    }
    CHECK(count_tmp_files(dir) == 0);

    /* another key under this key's name: the file's own text is compared line by line */
    char other[1200];
    const struct {
        const char *precision, *device, *profile, *why;
    } keys[] = {{"fp16", NULL, NULL, "other precision: the file has 'fp16', this load wants 'fp32'"},
                {NULL, "cuda:Test GPU:sm_90", NULL, "other device"},
                {NULL, NULL, "frames<=3000", "other profile"}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        avo_engine_request oreq = {.cache = c, .precision = keys[i].precision, .device = keys[i].device,
                                   .profile = keys[i].profile};
        CHECK(fake_run(&f, &oreq, &r) == AVO_ENGINE_BUILT); /* its own file */
        snprintf(other, sizeof other, "%s", r.path);
        CHECK(strcmp(other, path) != 0);
        CHECK(fake_run(&f, &oreq, &r) == AVO_ENGINE_HIT);
        copy_file(other, path);
        CHECK(fake_run(&f, &req, &r) == AVO_ENGINE_REBUILT);
        CHECK_MSG(strstr(r.reason, keys[i].why) != NULL, "reason '%s', wanted '%s'", r.reason, keys[i].why);
    }
    /* another model file: another name; the file of the old one is stale (replaced, with the reason) */
    char path_b[1200], saved_b[1200];
    write_file(model, "model-B-bytes-9876543210", 24);
    CHECK(fake_run(&f, &req, &r) == AVO_ENGINE_REBUILT && strstr(r.reason, "other model_hash") && strstr(r.reason, path));
    snprintf(path_b, sizeof path_b, "%s", r.path);
    CHECK(strcmp(path_b, path) != 0 && access(path, F_OK) != 0 && access(path_b, R_OK) == 0);
    snprintf(saved_b, sizeof saved_b, "%s/saved_b", tmp);
    copy_file(path_b, saved_b);
    CHECK(fake_run(&f, &req, &r) == AVO_ENGINE_HIT);
    write_file(model, "model-A-bytes-0123456789", 24);
    CHECK(fake_run(&f, &req, &r) == AVO_ENGINE_REBUILT && access(path_b, F_OK) != 0 && access(path, R_OK) == 0);
    /* ... and its file under this one's name is caught by the header */
    copy_file(saved_b, path);
    CHECK(fake_run(&f, &req, &r) == AVO_ENGINE_REBUILT && strstr(r.reason, "other model_hash"));
    CHECK(fake_run(&f, &req, &r) == AVO_ENGINE_HIT);
    /* files of other precisions / devices / profiles are not stale: they stay */
    CHECK(access(other, R_OK) == 0);

    /* a loader that does not fit the file: asks for a tensor it lacks, or leaves one unused */
    f.ask_extra = "not.recorded";
    CHECK(fake_run(&f, &req, &r) == AVO_ENGINE_REBUILT && strstr(r.reason, "does not fit") &&
          strstr(r.reason, "not.recorded"));
    f.ask_extra = NULL;
    f.skip_last = true;
    CHECK(fake_run(&f, &req, &r) == AVO_ENGINE_REBUILT && strstr(r.reason, "did not ask for"));
    f.skip_last = false;
    CHECK(fake_run(&f, &req, &r) == AVO_ENGINE_HIT);
    CHECK(count_tmp_files(dir) == 0);

    /* the reader alone on every prefix of a good file: a miss each time, nothing left in the arena */
    avo_arena *a = NULL;
    CHECK_OK(avo_arena_create(be, 1 << 16, &a, &err), &err);
    free(good);
    good = avo_test_read_file(path, &n);
    char *key = good ? malloc(tlen + 1) : NULL;
    if (a && key) {
        memcpy(key, good + 16, tlen);
        key[tlen] = 0;
        int64_t count = 0;
        CHECK_OK(avo_engine_read_memory(good, n, key, a, &count, &err), &err);
        CHECK(count == NT);
        avo_arena_reset(a);
        int bad = 0;
        for (size_t k = 0; k < n; k++) {
            bad += avo_engine_read_memory(good, k, key, a, &count, &err) == AVO_OK;
            bad += avo_arena_used(a) != 0;
        }
        CHECK_MSG(bad == 0, "%d truncations accepted or left tensors behind", bad);
        key[5] ^= 1; /* another key text */
        CHECK(avo_engine_read_memory(good, n, key, a, &count, &err) == AVO_ERR_FORMAT && avo_arena_used(a) == 0);
    }
    free(key);
    free(good);
    avo_arena_free(a);
    avo_engine_cache_free(c);
}

static void test_locations(avo_backend *be) {
    char model[800], xdg[800], home[800], want[1200], blocker[800], bad[900];
    snprintf(model, sizeof model, "%s/model.bin", tmp);
    avo_error err = {0};
    fake f = {.model = model, .be = be};
    avo_engine_result r;
    char *old_xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;

    /* XDG_CACHE_HOME */
    snprintf(xdg, sizeof xdg, "%s/xdg", tmp);
    snprintf(want, sizeof want, "%s/autovoice/engines", xdg);
    rm_rf_files(want);
    setenv("XDG_CACHE_HOME", xdg, 1);
    avo_engine_cache *c = NULL;
    CHECK_OK(avo_engine_cache_open(NULL, &c, &err), &err);
    if (c) {
        CHECK_MSG(strcmp(avo_engine_cache_dir(c), want) == 0, "dir %s", avo_engine_cache_dir(c));
        avo_engine_request req = {.cache = c};
        CHECK(fake_run(&f, &req, &r) == AVO_ENGINE_BUILT);
        CHECK(strncmp(r.path, want, strlen(want)) == 0 && access(r.path, R_OK) == 0);
        CHECK(fake_run(&f, &req, &r) == AVO_ENGINE_HIT);
        CHECK(count_tmp_files(want) == 0);
    }
    avo_engine_cache_free(c);
    /* unset or relative XDG_CACHE_HOME: $HOME/.cache */
    snprintf(home, sizeof home, "%s/home", tmp);
    setenv("HOME", home, 1);
    const char *xdg_values[2] = {NULL, "relative/dir"};
    for (int i = 0; i < 2; i++) {
        if (xdg_values[i]) setenv("XDG_CACHE_HOME", xdg_values[i], 1);
        else unsetenv("XDG_CACHE_HOME");
        c = NULL;
        CHECK_OK(avo_engine_cache_open(NULL, &c, &err), &err);
        snprintf(want, sizeof want, "%s/.cache/autovoice/engines", home);
        CHECK(c && strcmp(avo_engine_cache_dir(c), want) == 0);
        avo_engine_cache_free(c);
    }

    /* a directory that cannot be made (a file is in the way): loads uncached, says why */
    snprintf(blocker, sizeof blocker, "%s/not_a_dir", tmp);
    write_file(blocker, "x", 1);
    snprintf(bad, sizeof bad, "%s/engines", blocker);
    c = NULL;
    CHECK_OK(avo_engine_cache_open(bad, &c, &err), &err);
    if (c) {
        avo_engine_request req = {.cache = c};
        int builds = f.builds;
        CHECK(fake_run(&f, &req, &r) == AVO_ENGINE_UNCACHED && f.builds == builds + 1);
        CHECK_MSG(strstr(r.reason, "cannot create the cache directory") && strstr(r.reason, bad), "reason '%s'",
                  r.reason);
        CHECK(fake_run(&f, &req, &r) == AVO_ENGINE_UNCACHED);
    }
    avo_engine_cache_free(c);
    /* a model file that cannot be read: the loader's own error, no crash */
    c = NULL;
    snprintf(xdg, sizeof xdg, "%s/cache", tmp);
    CHECK_OK(avo_engine_cache_open(xdg, &c, &err), &err);
    if (c) {
        avo_hubert *h = NULL;
        avo_engine_request req = {.cache = c};
        snprintf(bad, sizeof bad, "%s/missing.pt", tmp);
        CHECK(avo_hubert_load_cached(bad, be, &req, &h, &r, &err) != AVO_OK && h == NULL && err.message[0]);
    }
    avo_engine_cache_free(c);

    if (old_xdg) setenv("XDG_CACHE_HOME", old_xdg, 1);
    else unsetenv("XDG_CACHE_HOME");
    if (old_home) setenv("HOME", old_home, 1);
    free(old_xdg);
    free(old_home);
}

/* ---- the four models ---------------------------------------------------------------------------- */

/* Path of a small test model: AVO_TEST_SMALL_MODELS/sub/file, else made by script into a scratch
 * folder. false (with SKIP, or a failure under AVO_REQUIRE_TORCH) when neither is possible. */
static bool small_model(const char *sub, const char *file, const char *script, const char *extra, char *out,
                        size_t n) {
    const char *given = getenv("AVO_TEST_SMALL_MODELS");
    if (given && *given) {
        snprintf(out, n, "%s/%s/%s", given, sub, file);
        CHECK_MSG(access(out, R_OK) == 0, "AVO_TEST_SMALL_MODELS has no %s/%s", sub, file);
        return access(out, R_OK) == 0;
    }
    char name[200], dir[800];
    snprintf(name, sizeof name, "engine_cache_%s", sub);
    avo_test_tmp_dir(name, dir, sizeof dir);
    snprintf(out, n, "%s/%s", dir, file);
    if (access(out, R_OK) == 0) return true;
    int torch = avo_test_run_reference(__FILE__, script, dir, extra);
    CHECK(torch >= 0);
    if (torch == 0) {
        const char *req = getenv("AVO_REQUIRE_TORCH");
        if (req && *req) CHECK_MSG(0, "python3-torch is missing but AVO_REQUIRE_TORCH is set");
        else fprintf(stderr, "SKIP: python3-torch not installed and no AVO_TEST_SMALL_MODELS: %s not tested\n", sub);
    }
    return torch == 1 && access(out, R_OK) == 0;
}

enum { K_HUBERT, K_RMVPE, K_RVC, K_SOVITS };

/* Loads (cached when req), runs one fixed input, returns the output (n values). */
static float *model_output(int kind, const char *path, avo_backend *be, avo_arena *a, const avo_engine_request *req,
                           avo_engine_result *res, int64_t *n) {
    avo_error err = {0};
    avo_status st;
    float *y = NULL;
    *n = 0;
    static float x[24000];
    for (int i = 0; i < 24000; i++) x[i] = 0.3f * sinf(2 * (float)M_PI * 180.0f * i / 16000.0f) + 0.05f * sinf(0.37f * i);
    avo_arena_reset(a);
    if (kind == K_HUBERT) {
        avo_hubert *m = NULL;
        st = req ? avo_hubert_load_cached(path, be, req, &m, res, &err) : avo_hubert_load(path, be, &m, &err);
        CHECK_OK(st, &err);
        if (!m) return NULL;
        avo_tensor f;
        CHECK_OK(st = avo_hubert_extract(m, a, x, 16000, avo_hubert_layers(m), avo_hubert_final_dim(m) > 0, &f, &err),
                 &err);
        if (!st && (y = malloc(avo_tensor_numel(&f) * sizeof(float)))) { /* any back end's memory */
            *n = avo_tensor_numel(&f);
            CHECK_OK(avo_tensor_to_host(a, &f, y, *n, &err), &err);
        }
        avo_hubert_free(m);
    } else if (kind == K_RMVPE) {
        avo_rmvpe *m = NULL;
        st = req ? avo_rmvpe_load_cached(path, be, req, &m, res, &err) : avo_rmvpe_load(path, be, &m, &err);
        CHECK_OK(st, &err);
        if (!m) return NULL;
        int64_t fr = avo_rmvpe_frames(24000);
        y = malloc(2 * fr * sizeof(float));
        CHECK_OK(avo_rmvpe_f0(m, a, x, 24000, 0.03f, y, y + fr, &err), &err);
        *n = 2 * fr;
        avo_rmvpe_free(m);
    } else if (kind == K_RVC) {
        avo_rvc *m = NULL;
        st = req ? avo_rvc_load_cached(path, be, req, &m, res, &err) : avo_rvc_load(path, be, &m, &err);
        CHECK_OK(st, &err);
        if (!m) return NULL;
        const avo_rvc_info *in = avo_rvc_get_info(m);
        enum { T = 12 };
        float *ph = malloc(T * in->phone_dim * sizeof(float)), f0[T];
        int32_t pc[T];
        for (int i = 0; i < T * in->phone_dim; i++) ph[i] = sinf(0.1f * i);
        for (int i = 0; i < T; i++) f0[i] = 150.0f + 10.0f * i;
        avo_rvc_pitch_coarse(f0, T, pc);
        *n = (int64_t)T * in->hop;
        y = malloc(*n * sizeof(float));
        CHECK_OK(avo_rvc_infer(m, a, ph, T, pc, f0, 0, NULL, NULL, 3, y, &err), &err);
        free(ph);
        avo_rvc_free(m);
    } else {
        avo_sovits *m = NULL;
        st = req ? avo_sovits_load_cached(path, NULL, be, req, &m, res, &err)
                 : avo_sovits_load(path, NULL, be, &m, &err);
        CHECK_OK(st, &err);
        if (!m) return NULL;
        const avo_sovits_info *in = avo_sovits_get_info(m);
        enum { T = 10 };
        float *u = malloc(T * in->ssl_dim * sizeof(float)), f0[T], vol[T];
        for (int i = 0; i < T * in->ssl_dim; i++) u[i] = cosf(0.07f * i);
        for (int i = 0; i < T; i++) f0[i] = 200.0f + 3.0f * i, vol[i] = 0.1f;
        *n = (int64_t)T * in->hop;
        y = malloc(*n * sizeof(float));
        CHECK_OK(avo_sovits_infer(m, a, u, T, f0, NULL, vol, 0, 0.4f, NULL, 5, y, &err), &err);
        free(u);
        avo_sovits_free(m);
    }
    return y;
}

static void test_model(int kind, const char *label, const char *path, avo_backend *be, avo_arena *a) {
    char dir[800];
    snprintf(dir, sizeof dir, "%s/models", tmp);
    mkdir(dir, 0755);
    rm_rf_files(dir);
    avo_error err = {0};
    avo_engine_cache *c = NULL;
    CHECK_OK(avo_engine_cache_open(dir, &c, &err), &err);
    avo_engine_request req = {.cache = c};
    avo_engine_result r1, r2;
    int64_t n0 = 0, n1 = 0, n2 = 0;
    float *y0 = model_output(kind, path, be, a, NULL, NULL, &n0);
    float *y1 = model_output(kind, path, be, a, &req, &r1, &n1);
    float *y2 = model_output(kind, path, be, a, &req, &r2, &n2);
    CHECK_MSG(r1.outcome == AVO_ENGINE_BUILT && r2.outcome == AVO_ENGINE_HIT, "%s: %s then %s (%s %s)", label,
              avo_engine_outcome_name(r1.outcome), avo_engine_outcome_name(r2.outcome), r1.reason, r2.reason);
    CHECK(r1.tensors > 10 && r2.tensors == r1.tensors && r2.bytes == r1.bytes);
    CHECK(y0 && y1 && y2 && n0 > 0 && n1 == n0 && n2 == n0);
    if (y0 && y1 && y2 && n1 == n0 && n2 == n0) {
        CHECK_MSG(memcmp(y0, y1, n0 * sizeof(float)) == 0, "%s: built model differs from the plain one", label);
        CHECK_MSG(memcmp(y0, y2, n0 * sizeof(float)) == 0, "%s: replayed model differs from the plain one", label);
    }
    fprintf(stderr, "  %-8s %lld tensors, %.2f MB: build then hit, output bit-identical (%lld values)\n", label,
            (long long)r1.tensors, r1.bytes / 1e6, (long long)n0);
    CHECK(count_tmp_files(dir) == 0);
    free(y0), free(y1), free(y2);
    avo_engine_cache_free(c);
}

int main(void) {
    avo_test_tmp_dir("engine_cache", tmp, sizeof tmp);
    avo_error err = {0};
    avo_backend *be = NULL;
    avo_arena *a = NULL;
    CHECK_OK(avo_backend_cpu_create(2, &be, &err), &err);
    CHECK_OK(avo_arena_create(be, 8u << 20, &a, &err), &err);
    if (!be || !a) TEST_MAIN_END();
    CHECK(strcmp(avo_engine_outcome_name(AVO_ENGINE_HIT), "hit") == 0 &&
          strcmp(avo_engine_outcome_name(AVO_ENGINE_BUILT), "build") == 0);
    CHECK(avo_engine_hash("a", 1) != avo_engine_hash("b", 1) && avo_engine_hash("", 0) != avo_engine_hash("\0", 1));
    test_cache(be);
    test_locations(be);

    char path[900], audio[900], dir[800];
    if (small_model("hubert", "hubert_small.pt", "hubert_golden.py", "", path, sizeof path))
        test_model(K_HUBERT, "hubert", path, be, a);
    /* rmvpe_golden.py wants an input clip: 1.5 s of a tone */
    avo_test_tmp_dir("engine_cache_rmvpe", dir, sizeof dir);
    snprintf(audio, sizeof audio, "%s/audio_16k.f32", dir);
    static float clip[24000];
    for (int i = 0; i < 24000; i++) clip[i] = 0.3f * sinf(2 * (float)M_PI * 220.0f * i / 16000.0f);
    write_file(audio, clip, sizeof clip);
    char extra[1000];
    snprintf(extra, sizeof extra, "'%s'", audio);
    if (small_model("rmvpe", "rmvpe_small.pt", "rmvpe_golden.py", extra, path, sizeof path))
        test_model(K_RMVPE, "rmvpe", path, be, a);
    if (small_model("rvc", "rvc_v2.pth", "rvc_golden.py", "", path, sizeof path)) test_model(K_RVC, "rvc v2", path, be, a);
    if (small_model("rvc", "rvc_v1.pth", "rvc_golden.py", "", path, sizeof path)) test_model(K_RVC, "rvc v1", path, be, a);
    if (small_model("sovits", "small41/G_100.pth", "make_sovits_models.py", "--small", path, sizeof path))
        test_model(K_SOVITS, "sovits", path, be, a);
    /* device memory (weights recorded through a copy to the host, replayed through an upload) */
    avo_backend *gpu = NULL;
    avo_arena *ga = NULL;
    if (avo_backend_cuda_create(0, &gpu, &err) == AVO_OK && avo_arena_create(gpu, 8u << 20, &ga, &err) == AVO_OK) {
        if (small_model("hubert", "hubert_small.pt", "hubert_golden.py", "", path, sizeof path))
            test_model(K_HUBERT, "hubert/cuda", path, gpu, ga);
        if (small_model("rmvpe", "rmvpe_small.pt", "rmvpe_golden.py", extra, path, sizeof path))
            test_model(K_RMVPE, "rmvpe/cuda", path, gpu, ga);
        if (small_model("rvc", "rvc_v2.pth", "rvc_golden.py", "", path, sizeof path))
            test_model(K_RVC, "rvc/cuda", path, gpu, ga);
        if (small_model("sovits", "small41/G_100.pth", "make_sovits_models.py", "--small", path, sizeof path))
            test_model(K_SOVITS, "sovits/cuda", path, gpu, ga);
    } else {
        fprintf(stderr, "no CUDA back end (%s): device-memory engines not tested here\n", err.message);
    }
    avo_arena_free(ga);
    avo_backend_free(gpu);
    avo_arena_free(a);
    avo_backend_free(be);
    TEST_MAIN_END();
}
