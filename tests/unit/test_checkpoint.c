/* checkpoint module: torch zip/pickle and safetensors readers against fixtures written by
 * tests/reference/make_checkpoint_fixtures.py (torch's own output, compared bit for bit), plus
 * hostile and corrupt files that must be refused with a clear message and without running code. */
#include "autovoice/checkpoint.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <unistd.h>

static char fxdir[600];
static char pwned[700];

static const char *fx(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", fxdir, name);
    return buf;
}

/* Runs the fixture generator; returns 1 if torch fixtures exist, 0 if only the hand-made ones. */
static int make_fixtures(void) {
    return avo_test_run_reference(__FILE__, "make_checkpoint_fixtures.py", fxdir, "");
}

static bool same_bits(const float *a, const float *b, int64_t n, int64_t *bad) {
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], 4) != 0) {
            *bad = i;
            return false;
        }
    return true;
}

/* Compares every tensor and scalar listed in NAME.json with what the reader gives for file. */
static void check_expected(const char *file, const char *name) {
    char path[800], jpath[800], fpath[800];
    snprintf(jpath, sizeof jpath, "%s/%s.json", fxdir, name);
    snprintf(fpath, sizeof fpath, "%s/%s.f32", fxdir, name);
    char *json = avo_test_read_file(jpath, NULL);
    size_t fsize = 0;
    float *expect = (float *)avo_test_read_file(fpath, &fsize);
    CHECK_MSG(json && expect, "missing expected data for %s", name);
    if (!json || !expect) return;
    cJSON *root = cJSON_Parse(json);
    cJSON *tensors = cJSON_GetObjectItem(root, "tensors"), *scalars = cJSON_GetObjectItem(root, "scalars");
    avo_ckpt *c = NULL;
    avo_error err = {0};
    CHECK_OK(avo_ckpt_open(fx(path, sizeof path, file), &c, &err), &err);
    if (!c) goto done;
    CHECK_MSG(avo_ckpt_tensor_count(c) == (size_t)cJSON_GetArraySize(tensors), "%s: %zu tensors, expected %d", name,
              avo_ckpt_tensor_count(c), cJSON_GetArraySize(tensors));
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, tensors) {
        const char *tp = cJSON_GetObjectItem(e, "path")->valuestring;
        const avo_ckpt_tensor *t = NULL, *ti = avo_ckpt_tensor_at(c, (size_t)i++);
        CHECK_OK(avo_ckpt_get_tensor(c, tp, &t, &err), &err);
        if (!t) continue;
        CHECK_MSG(t == ti, "%s: tensor %d is %s, expected %s (walk order)", name, i - 1, ti ? ti->name : "-", tp);
        CHECK_MSG(!strcmp(t->name, tp), "%s: name %s vs %s", name, t->name, tp);
        CHECK_MSG(!strcmp(avo_dtype_name(t->dtype), cJSON_GetObjectItem(e, "dtype")->valuestring), "%s %s dtype %s",
                  name, tp, avo_dtype_name(t->dtype));
        const cJSON *shape = cJSON_GetObjectItem(e, "shape"), *stride = cJSON_GetObjectItem(e, "stride");
        CHECK_MSG(t->ndim == cJSON_GetArraySize(shape), "%s %s ndim %d", name, tp, t->ndim);
        for (int d = 0; d < t->ndim && d < cJSON_GetArraySize(shape); d++) {
            CHECK(t->shape[d] == (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble);
            CHECK_MSG(t->strides[d] == (int64_t)cJSON_GetArrayItem(stride, d)->valuedouble, "%s %s stride[%d] %lld",
                      name, tp, d, (long long)t->strides[d]);
        }
        CHECK(t->storage_offset == (int64_t)cJSON_GetObjectItem(e, "offset")->valuedouble);
        int64_t numel = (int64_t)cJSON_GetObjectItem(e, "numel")->valuedouble;
        int64_t at = (int64_t)cJSON_GetObjectItem(e, "values")->valuedouble;
        CHECK(t->numel == numel);
        if (t->numel != numel || (size_t)(at + numel) * 4 > fsize) continue;
        float *got = malloc((size_t)(numel ? numel : 1) * sizeof *got);
        CHECK_OK(avo_ckpt_tensor_read_f32(c, t, got, numel, &err), &err);
        int64_t bad = -1;
        CHECK_MSG(same_bits(got, expect + at, numel, &bad), "%s %s: element %lld is %g, expected %g", name, tp,
                  (long long)bad, bad >= 0 ? got[bad] : 0.0, bad >= 0 ? expect[at + bad] : 0.0);
        /* A wrong count is refused rather than overflowing the buffer. */
        CHECK(avo_ckpt_tensor_read_f32(c, t, got, numel + 1, &err) == AVO_ERR_INVALID_ARGUMENT);
        free(got);
    }
    cJSON_ArrayForEach(e, scalars) {
        const avo_ckpt_value *v = avo_ckpt_lookup(c, e->string);
        CHECK_MSG(v != NULL, "%s: no scalar %s", name, e->string);
        if (!v) continue;
        if (cJSON_IsString(e)) {
            const char *s = NULL;
            CHECK_OK(avo_ckpt_get_string(c, e->string, &s, &err), &err);
            CHECK_MSG(s && !strcmp(s, e->valuestring), "%s: %s = %s", name, e->string, s ? s : "-");
        } else if (cJSON_IsBool(e)) {
            CHECK(avo_ckpt_value_kind(v) == AVO_CKPT_BOOL && avo_ckpt_value_bool(v) == cJSON_IsTrue(e));
        } else if (avo_ckpt_value_kind(v) == AVO_CKPT_INT) {
            int64_t x = 0;
            CHECK_OK(avo_ckpt_get_int(c, e->string, &x, &err), &err);
            CHECK_MSG(x == (int64_t)e->valuedouble, "%s: %s = %lld", name, e->string, (long long)x);
        } else {
            double x = 0;
            CHECK_OK(avo_ckpt_get_float(c, e->string, &x, &err), &err);
            CHECK_MSG(x == e->valuedouble, "%s: %s = %.17g", name, e->string, x);
        }
    }
done:
    avo_ckpt_free(c);
    cJSON_Delete(root);
    free(json);
    free(expect);
}

static void test_rvc_api(void) {
    char path[800];
    avo_ckpt *c = NULL;
    avo_error err = {0};
    CHECK_OK(avo_ckpt_open(fx(path, sizeof path, "rvc_v2.pth"), &c, &err), &err);
    if (!c) return;
    CHECK(!strcmp(avo_ckpt_format(c), "pth"));
    const avo_ckpt_tensor *t = NULL;
    CHECK_OK(avo_ckpt_get_tensor(c, "weight.enc_p.encoder.attn_layers.0.conv_q.weight", &t, &err), &err);
    CHECK(t && t->dtype == AVO_DTYPE_F16 && t->ndim == 3 && t->shape[0] == 192 && t->shape[2] == 1);
    /* The weight dict is reachable as a value too. */
    const avo_ckpt_value *w = avo_ckpt_lookup(c, "weight");
    CHECK(avo_ckpt_value_kind(w) == AVO_CKPT_DICT && avo_ckpt_value_count(w) == 14);
    CHECK(!strcmp(avo_ckpt_value_string(avo_ckpt_value_key(w, 0)), "enc_p.emb_phone.weight"));
    CHECK(avo_ckpt_value_tensor(avo_ckpt_value_lookup(w, "emb_g.weight")) != NULL);
    const avo_ckpt_value *cfg = avo_ckpt_lookup(c, "config");
    CHECK(avo_ckpt_value_kind(cfg) == AVO_CKPT_LIST && avo_ckpt_value_count(cfg) == 18);
    CHECK(avo_ckpt_value_int(avo_ckpt_value_item(cfg, 17)) == 40000);
    /* Clear errors for missing keys and wrong kinds. */
    int64_t x;
    CHECK(avo_ckpt_get_int(c, "weight.no.such.key", &x, &err) == AVO_ERR_NOT_FOUND);
    CHECK(strstr(err.message, "weight.no.such.key") != NULL);
    CHECK(avo_ckpt_get_int(c, "sr", &x, &err) == AVO_ERR_FORMAT);
    CHECK(strstr(err.message, "string") != NULL);
    CHECK(avo_ckpt_lookup(c, "config.99") == NULL && avo_ckpt_lookup(c, "config.x") == NULL);
    avo_ckpt_free(c);
}

static void test_fairseq_objects(void) {
    char path[800];
    avo_ckpt *c = NULL;
    avo_error err = {0};
    CHECK_OK(avo_ckpt_open(fx(path, sizeof path, "fairseq.pth"), &c, &err), &err);
    if (!c) return;
    const avo_ckpt_value *args = avo_ckpt_lookup(c, "args");
    CHECK(avo_ckpt_value_kind(args) == AVO_CKPT_OBJECT);
    CHECK(args && !strcmp(avo_ckpt_value_string(args), "argparse.Namespace"));
    CHECK(avo_ckpt_value_kind(avo_ckpt_value_fields(args)) == AVO_CKPT_DICT);
    const avo_ckpt_value *ids = avo_ckpt_lookup(c, "extra_state.ids");
    CHECK(avo_ckpt_value_kind(ids) == AVO_CKPT_LIST && avo_ckpt_value_count(ids) == 2);
    const avo_ckpt_value *blob = avo_ckpt_lookup(c, "extra_state.blob");
    CHECK(avo_ckpt_value_kind(blob) == AVO_CKPT_BYTES && avo_ckpt_value_size(blob) == 4 &&
          !memcmp(avo_ckpt_value_string(blob), "\x00\xff" "ab", 4));
    CHECK(avo_ckpt_value_kind(avo_ckpt_lookup(c, "extra_state.nothing")) == AVO_CKPT_BYTES);
    CHECK(avo_ckpt_value_float(avo_ckpt_lookup(c, "extra_state.big")) == ldexp(1.0, 70));
    CHECK(avo_ckpt_value_kind(avo_ckpt_lookup(c, "cfg._name")) == AVO_CKPT_NONE &&
          avo_ckpt_lookup(c, "cfg._name") != NULL);
    avo_ckpt_free(c);
}

static void test_memory_and_truncation(void) {
    char path[800];
    size_t n = 0;
    char *data = avo_test_read_file(fx(path, sizeof path, "views.pth"), &n);
    CHECK(data != NULL);
    if (!data) return;
    avo_ckpt *c = NULL;
    avo_error err = {0};
    CHECK_OK(avo_ckpt_open_memory(data, n, "views.pth", &c, &err), &err);
    const avo_ckpt_tensor *a = NULL, *b = NULL;
    if (c) {
        CHECK_OK(avo_ckpt_get_tensor(c, "shared_a", &a, &err), &err);
        CHECK_OK(avo_ckpt_get_tensor(c, "shared_b", &b, &err), &err);
        CHECK(a && b && a->storage == b->storage && b->storage_offset == 40);
        avo_ckpt_free(c);
    }
    /* Cut anywhere: refused with a message, never a crash. */
    size_t cuts[] = {0, 3, 30, n / 3, n / 2, n - 200, n - 23, n - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        c = NULL;
        err.message[0] = 0;
        avo_status s = avo_ckpt_open_memory(data, cuts[k], "views.pth", &c, &err);
        CHECK_MSG(s != AVO_OK && err.message[0], "cut at %zu: status %d", cuts[k], s);
        avo_ckpt_free(c);
    }
    /* Same on disk. */
    char tpath[800];
    snprintf(tpath, sizeof tpath, "%s/truncated_views.pth", fxdir);
    FILE *f = fopen(tpath, "wb");
    fwrite(data, 1, n / 2, f);
    fclose(f);
    c = NULL;
    CHECK(avo_ckpt_open(tpath, &c, &err) == AVO_ERR_FORMAT);
    CHECK_MSG(strstr(err.message, "truncated") != NULL, "%s", err.message);
    avo_ckpt_free(c);
    /* Random byte flips: each open either fails with a message or gives readable tensors. */
    uint32_t seed = 12345;
    int opened = 0;
    for (int it = 0; it < 400; it++) {
        char *m = malloc(n);
        memcpy(m, data, n);
        for (int k = 0; k < 1 + it % 4; k++) {
            seed = seed * 1664525u + 1013904223u;
            /* Aim most flips at the pickle, which sits at the start of the archive. */
            size_t at = (it % 2 ? (seed >> 8) % n : 40 + (seed >> 8) % 1200) % n;
            m[at] ^= (char)(1u << (seed % 8));
        }
        c = NULL;
        err.message[0] = 0;
        avo_status s = avo_ckpt_open_memory(m, n, "flipped.pth", &c, &err);
        CHECK_MSG(s == AVO_OK || err.message[0], "flip %d: status %d without a message", it, s);
        if (s == AVO_OK) {
            opened++;
            for (size_t i = 0; i < avo_ckpt_tensor_count(c); i++) {
                const avo_ckpt_tensor *t = avo_ckpt_tensor_at(c, i);
                float *buf = malloc((size_t)(t->numel ? t->numel : 1) * 4);
                avo_ckpt_tensor_read_f32(c, t, buf, t->numel, &err);
                free(buf);
            }
        }
        avo_ckpt_free(c);
        free(m);
    }
    fprintf(stderr, "byte flips: %d of 400 still opened\n", opened);
    free(data);
}

typedef struct {
    const char *file;
    avo_status status;
    const char *needle; /* must appear in the message */
} bad_case;

static void check_bad(const bad_case *cases, size_t n) {
    for (size_t k = 0; k < n; k++) {
        char path[800];
        avo_ckpt *c = NULL;
        avo_error err = {0};
        avo_status s = avo_ckpt_open(fx(path, sizeof path, cases[k].file), &c, &err);
        CHECK_MSG(s == cases[k].status, "%s: status %s, expected %s (%s)", cases[k].file, avo_status_name(s),
                  avo_status_name(cases[k].status), err.message);
        CHECK_MSG(strstr(err.message, cases[k].needle) != NULL, "%s: message lacks '%s': %s", cases[k].file,
                  cases[k].needle, err.message);
        CHECK(c == NULL);
        avo_ckpt_free(c);
    }
}

static void test_hostile(void) {
    static const bad_case cases[] = {
        {"hostile/os_system.pth", AVO_ERR_VALIDATION, "asks to run 'os.system' which is not allowed"},
        {"hostile/posix_system.pth", AVO_ERR_VALIDATION, "'posix.system'"},
        {"hostile/builtins_eval.pth", AVO_ERR_VALIDATION, "'builtins.eval'"},
        {"hostile/nested_exec.pth", AVO_ERR_VALIDATION, "'builtins.exec'"},
        {"hostile/newobj_subprocess.pth", AVO_ERR_VALIDATION, "'subprocess.Popen'"},
        {"hostile/reduce_on_string.pth", AVO_ERR_VALIDATION, "refusing to load"},
        {"hostile/build_on_list.pth", AVO_ERR_VALIDATION, "BUILD"},
        {"hostile/deep_tuples.pth", AVO_ERR_FORMAT, "nested deeper"},
        {"hostile/deep_lists.pth", AVO_ERR_FORMAT, "nested deeper"},
        {"hostile/mark_flood.pth", AVO_ERR_FORMAT, "nested too deeply"},
        {"hostile/huge_string.pth", AVO_ERR_FORMAT, "longer than the pickle"},
        {"hostile/huge_bytes8.pth", AVO_ERR_FORMAT, "longer than the pickle"},
        {"hostile/huge_memo.pth", AVO_ERR_FORMAT, "memo index"},
        {"hostile/memo_unset.pth", AVO_ERR_FORMAT, "memo"},
        {"hostile/bad_opcode.pth", AVO_ERR_UNSUPPORTED, "opcode 0xff"},
        {"hostile/no_stop.pth", AVO_ERR_FORMAT, "without STOP"},
        {"hostile/empty_stop.pth", AVO_ERR_FORMAT, "STOP"},
        {"hostile/huge_storage.pth", AVO_ERR_FORMAT, "claims"},
        {"hostile/tensor_outside_storage.pth", AVO_ERR_FORMAT, "outside its storage"},
        {"hostile/tensor_offset_outside.pth", AVO_ERR_FORMAT, "outside its storage"},
        {"hostile/unknown_storage_type.pth", AVO_ERR_VALIDATION, "'torch.ComplexFloatStorage'"},
        {"hostile/missing_storage.pth", AVO_ERR_FORMAT, "no archive/data/0"},
        {"hostile/short_storage.pth", AVO_ERR_FORMAT, "holds 8 bytes but 16"},
        {"hostile/truncated_pickle.pth", AVO_ERR_FORMAT, "truncated"},
        {"hostile/no_data_pkl.pth", AVO_ERR_FORMAT, "without data.pkl"},
        {"hostile/torchscript.pth", AVO_ERR_UNSUPPORTED, "TorchScript"},
        {"hostile/legacy.pth", AVO_ERR_UNSUPPORTED, "torch.save(torch.load(old_path), new_path)"},
        {"hostile/bare_pickle.pkl", AVO_ERR_UNSUPPORTED, "bare pickle"},
        {"hostile/raw_os_system.pkl", AVO_ERR_UNSUPPORTED, "bare pickle"},
        {"hostile/wrong_magic.pth", AVO_ERR_FORMAT, "wrong magic"},
        {"hostile/empty.pth", AVO_ERR_FORMAT, "wrong magic"},
        {"hostile/does_not_exist.pth", AVO_ERR_NOT_FOUND, "does_not_exist"},
        {"hostile", AVO_ERR_IO, "not a regular file"},
    };
    check_bad(cases, sizeof cases / sizeof cases[0]);
    CHECK_MSG(access(pwned, F_OK) != 0, "a hostile pickle ran code: %s exists", pwned);

    /* The hand-written good archives (no torch needed): column-major 2x2 view, little and big endian. */
    const char *good[] = {"hostile/handmade_ok.pth", "hostile/handmade_big.pth"};
    for (int k = 0; k < 2; k++) {
        char path[800];
        avo_ckpt *c = NULL;
        avo_error err = {0};
        CHECK_OK(avo_ckpt_open(fx(path, sizeof path, good[k]), &c, &err), &err);
        const avo_ckpt_tensor *t = NULL;
        if (c) CHECK_OK(avo_ckpt_get_tensor(c, "w", &t, &err), &err);
        if (t) {
            float v[4];
            CHECK_OK(avo_ckpt_tensor_read_f32(c, t, v, 4, &err), &err);
            CHECK_MSG(v[0] == 1 && v[1] == 3 && v[2] == 2 && v[3] == 4, "%s: %g %g %g %g", good[k], v[0], v[1], v[2],
                      v[3]);
        }
        avo_ckpt_free(c);
    }
    static const bad_case bo[] = {{"hostile/bad_byteorder.pth", AVO_ERR_FORMAT, "byteorder"}};
    check_bad(bo, 1);
}

static void test_plain_pickles(void) {
    check_expected("plain_p2.pth", "plain_p2");
    check_expected("plain_p4.pth", "plain_p4");
    check_expected("dup_key.pth", "dup_key");
    char path[800];
    for (int proto = 2; proto <= 4; proto += 2) {
        char name[64];
        snprintf(name, sizeof name, "plain_p%d.pth", proto);
        avo_ckpt *c = NULL;
        avo_error err = {0};
        CHECK_OK(avo_ckpt_open(fx(path, sizeof path, name), &c, &err), &err);
        if (!c) continue;
        CHECK(avo_ckpt_value_float(avo_ckpt_lookup(c, "big")) == ldexp(1.0, 70));
        const avo_ckpt_value *blob = avo_ckpt_lookup(c, "blob");
        CHECK_MSG(avo_ckpt_value_kind(blob) == AVO_CKPT_BYTES && avo_ckpt_value_size(blob) == 3 &&
                      !memcmp(avo_ckpt_value_string(blob), "\x00\x01\xfe", 3),
                  "protocol %d bytes", proto);
        CHECK(avo_ckpt_value_kind(avo_ckpt_lookup(c, "none")) == AVO_CKPT_NONE);
        CHECK(avo_ckpt_value_count(avo_ckpt_lookup(c, "ids")) == 2);
        CHECK(avo_ckpt_value_count(avo_ckpt_lookup(c, "frozen")) == 1);
        /* The same list object reached twice is one node. */
        CHECK(avo_ckpt_lookup(c, "shared") == avo_ckpt_lookup(c, "nested.list"));
        CHECK(avo_ckpt_tensor_count(c) == 0);
        avo_ckpt_free(c);
    }
}

static void test_safetensors(void) {
    check_expected("st_ok.safetensors", "st_ok");
    static const bad_case cases[] = {
        {"st_bad/overlap.safetensors", AVO_ERR_FORMAT, "overlaps"},
        {"st_bad/out_of_range.safetensors", AVO_ERR_FORMAT, "past the end of the data section"},
        {"st_bad/reversed.safetensors", AVO_ERR_FORMAT, "invalid data_offsets"},
        {"st_bad/size_mismatch.safetensors", AVO_ERR_FORMAT, "need 12"},
        {"st_bad/bad_dtype.safetensors", AVO_ERR_UNSUPPORTED, "'F8_E4M3'"},
        {"st_bad/negative_dim.safetensors", AVO_ERR_FORMAT, "invalid shape"},
        {"st_bad/fraction_dim.safetensors", AVO_ERR_FORMAT, "invalid shape"},
        {"st_bad/huge_dims.safetensors", AVO_ERR_FORMAT, "invalid shape"},
        {"st_bad/bad_json.safetensors", AVO_ERR_FORMAT, "not a valid JSON object"},
        {"st_bad/not_object.safetensors", AVO_ERR_FORMAT, "wrong magic"},
        {"st_bad/missing_offsets.safetensors", AVO_ERR_FORMAT, "needs dtype, shape and data_offsets"},
        {"st_bad/duplicate_key.safetensors", AVO_ERR_FORMAT, "appears twice"},
        {"st_bad/hole.safetensors", AVO_ERR_FORMAT, "unindexed bytes"},
        {"st_bad/huge_header.safetensors", AVO_ERR_FORMAT, "header claims"},
        {"st_bad/truncated.safetensors", AVO_ERR_FORMAT, "truncated"},
    };
    check_bad(cases, sizeof cases / sizeof cases[0]);

    char path[800];
    size_t n = 0;
    char *data = avo_test_read_file(fx(path, sizeof path, "st_ok.safetensors"), &n);
    CHECK(data != NULL);
    if (!data) return;
    avo_ckpt *c = NULL;
    avo_error err = {0};
    CHECK_OK(avo_ckpt_open_memory(data, n, "st_ok.safetensors", &c, &err), &err);
    if (c) {
        CHECK(!strcmp(avo_ckpt_format(c), "safetensors"));
        const avo_ckpt_tensor *t = NULL;
        CHECK_OK(avo_ckpt_get_tensor(c, "dec.conv_pre.weight", &t, &err), &err);
        CHECK(t && t->dtype == AVO_DTYPE_F16 && t->ndim == 3 && t->strides[0] == 6);
        const char *sr = NULL;
        CHECK_OK(avo_ckpt_get_string(c, "__metadata__.sr", &sr, &err), &err);
        CHECK(sr && !strcmp(sr, "40k"));
        avo_ckpt_free(c);
    }
    for (size_t cut = 0; cut < n; cut += 7) {
        c = NULL;
        err.message[0] = 0;
        avo_status s = avo_ckpt_open_memory(data, cut, "cut.safetensors", &c, &err);
        CHECK_MSG(s != AVO_OK && err.message[0], "cut at %zu: status %d", cut, s);
        avo_ckpt_free(c);
    }
    uint32_t seed = 777;
    for (int it = 0; it < 2000; it++) {
        char *m = malloc(n);
        memcpy(m, data, n);
        seed = seed * 1664525u + 1013904223u;
        m[(seed >> 8) % n] ^= (char)(1u << (seed % 8));
        c = NULL;
        err.message[0] = 0;
        avo_status s = avo_ckpt_open_memory(m, n, "flipped.safetensors", &c, &err);
        CHECK_MSG(s == AVO_OK || err.message[0], "flip %d: status %d without a message", it, s);
        for (size_t i = 0; c && i < avo_ckpt_tensor_count(c); i++) {
            const avo_ckpt_tensor *t = avo_ckpt_tensor_at(c, i);
            float *buf = malloc((size_t)(t->numel ? t->numel : 1) * 4);
            CHECK_OK(avo_ckpt_tensor_read_f32(c, t, buf, t->numel, &err), &err);
            free(buf);
        }
        avo_ckpt_free(c);
        free(m);
    }
    free(data);
}

int main(void) {
    char tmp[512];
    avo_test_tmp_dir("checkpoint", tmp, sizeof tmp);
    snprintf(fxdir, sizeof fxdir, "%s/fx", tmp);
    snprintf(pwned, sizeof pwned, "%s/pwned", fxdir);
    mkdir(fxdir, 0755);
    unlink(pwned);
    int torch = make_fixtures();
    CHECK_MSG(torch >= 0, "fixture generator failed");
    if (torch >= 0) {
        test_hostile();
        test_safetensors();
        test_plain_pickles();
    }
    if (torch == 1) {
        check_expected("rvc_v2.pth", "rvc_v2");
        check_expected("sovits.pth", "sovits");
        check_expected("views.pth", "views");
        check_expected("fairseq.pth", "fairseq");
        test_rvc_api();
        test_fairseq_objects();
        test_memory_and_truncation();
    } else if (torch == 0) {
        const char *req = getenv("AVO_REQUIRE_TORCH");
        if (req && *req) {
            CHECK_MSG(0, "python3-torch is missing but AVO_REQUIRE_TORCH is set");
        } else {
            fprintf(stderr, "SKIP: python3-torch not installed; torch-written fixtures not tested "
                            "(install python3-torch, or set AVO_REQUIRE_TORCH=1 to make this a failure)\n");
        }
    }
    TEST_MAIN_END();
}
