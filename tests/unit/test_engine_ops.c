/* engine module: every CPU operator against PyTorch on random inputs (cases written by
 * tests/reference/engine_ops_reference.py with torch's own modules), relative error
 * max|a-b| / max|b| under 1e-4; plus the arena, in-place use and shape errors without torch. */
#include "autovoice/engine.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <unistd.h>

#define TOL 1e-4

static char refdir[600];
static avo_backend *be;
static avo_arena *arena;

/* Runs the generator; 1 if torch cases exist, 0 if torch is missing, -1 on failure. */
static int make_cases(void) {
    return avo_test_run_reference(__FILE__, "engine_ops_reference.py", refdir, "");
}

/* ---- case loading --------------------------------------------------------------------------- */

static int pint(const cJSON *c, const char *key, int def) {
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "params"), key);
    return cJSON_IsNumber(v) ? v->valueint : def;
}
static double pnum(const cJSON *c, const char *key, double def) {
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "params"), key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}
static const char *pstr(const cJSON *c, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "params"), key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Host copy of tensor key of case c (NULL if the case has none); shape into t as a view. */
static void *load_host(const cJSON *c, const char *key, avo_tensor *t) {
    const cJSON *e = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "tensors"), key);
    if (!e) return NULL;
    char path[900];
    snprintf(path, sizeof path, "%s/%s", refdir, cJSON_GetObjectItem(e, "file")->valuestring);
    size_t size = 0;
    void *data = avo_test_read_file(path, &size);
    const cJSON *shape = cJSON_GetObjectItem(e, "shape");
    int64_t s[AVO_TENSOR_MAX_DIMS] = {0};
    int nd = cJSON_GetArraySize(shape);
    /* a batch dimension of 1 from torch is dropped: the engine has none */
    int skip = nd > AVO_TENSOR_MAX_DIMS ? nd - AVO_TENSOR_MAX_DIMS : 0;
    for (int i = skip; i < nd; i++) s[i - skip] = (int64_t)cJSON_GetArrayItem(shape, i)->valuedouble;
    bool i32 = strcmp(cJSON_GetObjectItem(e, "dtype")->valuestring, "i32") == 0;
    *t = avo_tensor_view(i32 ? AVO_DTYPE_I32 : AVO_DTYPE_F32, nd - skip, s, data);
    CHECK_MSG(data && size == (size_t)avo_tensor_numel(t) * 4, "%s: bad file for %s", key, path);
    return data;
}

/* Loads tensor key into the arena (through the back end); false if the case has none. */
static bool load(const cJSON *c, const char *key, avo_tensor *t) {
    avo_tensor h;
    void *data = load_host(c, key, &h);
    if (!data) return false;
    avo_error err = {0};
    if (h.dtype == AVO_DTYPE_I32) { /* the CPU back end's memory is host memory */
        CHECK_OK(avo_tensor_new(arena, AVO_DTYPE_I32, h.ndim, h.shape, t, &err), &err);
        memcpy(t->data, data, (size_t)avo_tensor_numel(&h) * 4);
    } else {
        CHECK_OK(avo_tensor_from_host(arena, h.ndim, h.shape, data, t, &err), &err);
    }
    free(data);
    return true;
}

/* ---- comparison ----------------------------------------------------------------------------- */

#define MAX_OPS 32
static struct {
    char op[32];
    double worst;
    int cases;
} summary[MAX_OPS];
static int nsummary;

static void record(const char *op, double rel) {
    int i = 0;
    while (i < nsummary && strcmp(summary[i].op, op)) i++;
    if (i == nsummary && nsummary < MAX_OPS) snprintf(summary[nsummary++].op, sizeof summary[0].op, "%s", op);
    if (i < MAX_OPS) {
        if (rel > summary[i].worst || rel != rel) summary[i].worst = rel;
        summary[i].cases++;
    }
}

/* max |got - want| / max |want| of the result against the case's expected tensor key. */
static double compare(const cJSON *c, const char *key, const avo_tensor *got) {
    avo_tensor want;
    float *w = load_host(c, key, &want);
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    if (!w) {
        CHECK_MSG(0, "%s: no expected '%s'", name, key);
        return INFINITY;
    }
    int64_t n = avo_tensor_numel(&want);
    CHECK_MSG(got->data && avo_tensor_numel(got) == n, "%s: result has %lld values, expected %lld", name,
              (long long)(got->data ? avo_tensor_numel(got) : 0), (long long)n);
    double rel = INFINITY;
    if (got->data && avo_tensor_numel(got) == n) {
        float *g = malloc((size_t)n * sizeof(float));
        avo_error err = {0};
        CHECK_OK(avo_tensor_to_host(arena, got, g, n, &err), &err);
        double md = 0, mb = 0;
        for (int64_t i = 0; i < n; i++) {
            double d = fabs((double)g[i] - w[i]);
            if (!(d <= md)) md = d; /* NaN propagates */
            if (fabs(w[i]) > mb) mb = fabs(w[i]);
        }
        rel = md / (mb > 0 ? mb : 1.0);
        free(g);
    }
    free(w);
    CHECK_MSG(rel < TOL, "%s: relative error %.3g (tolerance %g)", name, rel, TOL);
    return rel;
}

/* ---- per-op runners ------------------------------------------------------------------------- */

static avo_act act_kind(const char *name) {
    static const char *names[] = {"relu", "leaky_relu", "gelu", "tanh", "sigmoid", "softplus"};
    for (int i = 0; i < 6; i++)
        if (!strcmp(names[i], name)) return (avo_act)i;
    return (avo_act)-1;
}

static double run_case(const cJSON *c) {
    const char *op = cJSON_GetObjectItem(c, "op")->valuestring;
    avo_tensor x = {0}, w = {0}, b = {0}, y = {0}, t1 = {0}, t2 = {0};
    avo_error err = {0};
    avo_status st = AVO_ERR_INTERNAL;
    bool hb = false;
    if (!strcmp(op, "linear")) {
        load(c, "x", &x), load(c, "w", &w), hb = load(c, "b", &b);
        st = avo_op_linear(be, arena, &x, &w, hb ? &b : NULL, &y, &err);
    } else if (!strcmp(op, "conv1d")) {
        load(c, "x", &x), load(c, "w", &w), hb = load(c, "b", &b);
        avo_conv1d_params p = {pint(c, "stride", 1), pint(c, "padding", 0), pint(c, "dilation", 1), pint(c, "groups", 1)};
        st = avo_op_conv1d(be, arena, &x, &w, hb ? &b : NULL, &p, &y, &err);
    } else if (!strcmp(op, "conv_transpose1d")) {
        load(c, "x", &x), load(c, "w", &w), hb = load(c, "b", &b);
        avo_conv_transpose1d_params p = {pint(c, "stride", 1), pint(c, "padding", 0), pint(c, "output_padding", 0),
                                         pint(c, "groups", 1), pint(c, "dilation", 1)};
        st = avo_op_conv_transpose1d(be, arena, &x, &w, hb ? &b : NULL, &p, &y, &err);
    } else if (!strcmp(op, "weight_norm")) {
        avo_tensor g, v;
        load(c, "x", &x), load(c, "g", &g), load(c, "v", &v), hb = load(c, "b", &b);
        /* fold in place into v (host memory on the CPU back end), then compare and use it */
        avo_weight_norm_fold(avo_tensor_f32(&g), avo_tensor_f32(&v), v.shape[0], avo_tensor_numel(&v) / v.shape[0],
                             avo_tensor_f32(&v));
        double rw = compare(c, "w", &v);
        record("weight_norm fold", rw);
        if (pint(c, "transposed", 0)) {
            avo_conv_transpose1d_params p = {pint(c, "stride", 1), pint(c, "padding", 0), 0, 1, 1};
            st = avo_op_conv_transpose1d(be, arena, &x, &v, hb ? &b : NULL, &p, &y, &err);
        } else {
            avo_conv1d_params p = {pint(c, "stride", 1), pint(c, "padding", 0), 1, 1};
            st = avo_op_conv1d(be, arena, &x, &v, hb ? &b : NULL, &p, &y, &err);
        }
    } else if (!strcmp(op, "layer_norm")) {
        load(c, "x", &x), load(c, "gamma", &t1), load(c, "beta", &t2);
        st = avo_op_layer_norm(be, arena, &x, &t1, &t2, (float)pnum(c, "eps", 1e-5), &y, &err);
    } else if (!strcmp(op, "group_norm")) {
        load(c, "x", &x);
        bool aff = load(c, "gamma", &t1);
        load(c, "beta", &t2);
        st = avo_op_group_norm(be, arena, &x, pint(c, "groups", 1), aff ? &t1 : NULL, aff ? &t2 : NULL,
                               (float)pnum(c, "eps", 1e-5), &y, &err);
    } else if (!strcmp(op, "act")) {
        load(c, "x", &x);
        st = avo_op_act(be, arena, &x, act_kind(pstr(c, "kind")), (float)pnum(c, "alpha", 0), &y, &err);
    } else if (!strcmp(op, "add") || !strcmp(op, "mul")) {
        load(c, "x", &x), load(c, "y", &t1);
        st = (op[0] == 'a' ? avo_op_add : avo_op_mul)(be, arena, &x, &t1, &y, &err);
        if (!st) {
            double r = compare(c, "out", &y);
            record(op, r);
            return r;
        }
    } else if (!strcmp(op, "rel_attention")) {
        avo_tensor wq, bq, wk, bk, wv, bv, wo, bo, ek = {0}, ev = {0}, q = {0}, k = {0}, v = {0}, att = {0};
        load(c, "x", &x), load(c, "wq", &wq), load(c, "bq", &bq), load(c, "wk", &wk), load(c, "bk", &bk);
        load(c, "wv", &wv), load(c, "bv", &bv), load(c, "wo", &wo), load(c, "bo", &bo);
        int window = pint(c, "window", 0);
        if (window) load(c, "emb_k", &ek), load(c, "emb_v", &ev);
        avo_conv1d_params one = {1, 0, 1, 1};
        st = avo_op_conv1d(be, arena, &x, &wq, &bq, &one, &q, &err);
        if (!st) st = avo_op_conv1d(be, arena, &x, &wk, &bk, &one, &k, &err);
        if (!st) st = avo_op_conv1d(be, arena, &x, &wv, &bv, &one, &v, &err);
        if (!st)
            st = avo_op_rel_attention(be, arena, &q, &k, &v, window ? &ek : NULL, window ? &ev : NULL, pint(c, "heads", 1),
                                      window, &att, &err);
        if (!st) st = avo_op_conv1d(be, arena, &att, &wo, &bo, &one, &y, &err);
    } else if (!strcmp(op, "embedding")) {
        load(c, "table", &w), load(c, "ids", &x);
        st = avo_op_embedding(be, arena, &w, &x, &y, &err);
    } else if (!strcmp(op, "upsample")) {
        load(c, "x", &x);
        st = avo_op_upsample(be, arena, &x, pint(c, "t_out", 1),
                             strcmp(pstr(c, "mode"), "linear") ? AVO_UPSAMPLE_NEAREST : AVO_UPSAMPLE_LINEAR, &y, &err);
    } else if (!strcmp(op, "pool1d")) {
        load(c, "x", &x);
        st = avo_op_pool1d(be, arena, &x, strcmp(pstr(c, "kind"), "max") ? AVO_POOL_AVG : AVO_POOL_MAX,
                           pint(c, "kernel", 1), pint(c, "stride", 0), pint(c, "padding", 0), &y, &err);
    } else if (!strcmp(op, "bigru")) {
        avo_tensor t[8];
        static const char *names[8] = {"weight_ih0", "weight_hh0", "bias_ih0", "bias_hh0",
                                       "weight_ih1", "weight_hh1", "bias_ih1", "bias_hh1"};
        for (int i = 0; i < 8; i++) load(c, names[i], &t[i]);
        load(c, "x", &x);
        avo_gru_weights gw = {{&t[0], &t[4]}, {&t[1], &t[5]}, {&t[2], &t[6]}, {&t[3], &t[7]}};
        st = avo_op_bigru(be, arena, &x, &gw, &y, &err);
    } else if (!strcmp(op, "ckpt_load")) {
        char path[900];
        snprintf(path, sizeof path, "%s/%s", refdir, pstr(c, "file"));
        avo_ckpt *ck = NULL;
        st = avo_ckpt_open(path, &ck, &err);
        if (!st) {
            avo_tensor none = {0};
            avo_error e2 = {0};
            CHECK(avo_tensor_load_weight(arena, ck, "weight.model.missing", &none, &e2) == AVO_ERR_NOT_FOUND);
            CHECK(strstr(e2.message, "weight.model.missing") != NULL);
            st = avo_tensor_load_weight(arena, ck, pstr(c, "prefix"), &y, &err);
        }
        avo_ckpt_free(ck);
    } else {
        CHECK_MSG(0, "unknown op %s", op);
        return INFINITY;
    }
    CHECK_MSG(st == AVO_OK, "%s: %s", cJSON_GetObjectItem(c, "name")->valuestring, err.message);
    if (st) return INFINITY;
    double r = compare(c, "y", &y);
    record(op, r);
    return r;
}

static void test_torch_parity(void) {
    char path[800];
    snprintf(path, sizeof path, "%s/index.json", refdir);
    char *json = avo_test_read_file(path, NULL);
    CHECK_MSG(json != NULL, "no %s", path);
    if (!json) return;
    cJSON *root = cJSON_Parse(json);
    cJSON *cases = cJSON_GetObjectItem(root, "cases");
    CHECK(cJSON_GetArraySize(cases) > 40);
    fprintf(stderr, "%-16s %-18s %s\n", "case", "op", "rel.err");
    for (int i = 0; i < cJSON_GetArraySize(cases); i++) {
        const cJSON *c = cJSON_GetArrayItem(cases, i);
        avo_arena_reset(arena);
        double r = run_case(c);
        fprintf(stderr, "%-16s %-18s %.2e\n", cJSON_GetObjectItem(c, "name")->valuestring,
                cJSON_GetObjectItem(c, "op")->valuestring, r);
    }
    fprintf(stderr, "\nworst relative error per op:\n");
    for (int i = 0; i < nsummary; i++)
        fprintf(stderr, "  %-18s %2d cases  %.2e\n", summary[i].op, summary[i].cases, summary[i].worst);
    cJSON_Delete(root);
    free(json);
}

/* ---- tests that need no torch --------------------------------------------------------------- */

static void test_arena(void) {
    avo_arena *a = NULL;
    avo_error err = {0};
    CHECK_OK(avo_arena_create(be, 1 << 20, &a, &err), &err);
    if (!a) return;
    void *p1 = NULL, *p2 = NULL, *p3 = NULL;
    CHECK_OK(avo_arena_alloc(a, 100, &p1, &err), &err);
    CHECK_OK(avo_arena_alloc(a, 100, &p2, &err), &err);
    CHECK(((uintptr_t)p1 & 63) == 0 && ((uintptr_t)p2 & 63) == 0 && p2 != p1);
    avo_arena_mark m = avo_arena_get_mark(a);
    CHECK_OK(avo_arena_alloc(a, 3u << 20, &p3, &err), &err); /* forces a second block */
    memset(p3, 1, 3u << 20);
    CHECK(avo_arena_peak(a) >= (3u << 20));
    avo_arena_rewind(a, m);
    CHECK(avo_arena_used(a) == 256);
    size_t peak = avo_arena_peak(a);
    avo_arena_reset(a);
    CHECK(avo_arena_used(a) == 0);
    /* after the reset the peak fits in one block: the same run needs no new block */
    CHECK_OK(avo_arena_alloc(a, 100, &p1, &err), &err);
    CHECK_OK(avo_arena_alloc(a, 3u << 20, &p3, &err), &err);
    CHECK(a != NULL && avo_arena_peak(a) == peak);
    avo_arena_free(a);
}

static void test_small_known(void) {
    avo_error err = {0};
    avo_arena_reset(arena);
    /* weight norm by hand: v rows (3,4) and (0,2), g (10, 3) -> (6,8) and (0,3) */
    float g[2] = {10, 3}, v[4] = {3, 4, 0, 2}, w[4];
    avo_weight_norm_fold(g, v, 2, 2, w);
    CHECK_NEAR(w[0], 6, 1e-5);
    CHECK_NEAR(w[1], 8, 1e-5);
    CHECK_NEAR(w[2], 0, 1e-6);
    CHECK_NEAR(w[3], 3, 1e-5);
    /* in-place activation and a hand-computed conv: x = [1 2 3 4], kernel [1 0 -1], padding 1 */
    float xd[4] = {1, -2, 3, -4};
    avo_tensor x = avo_tensor_view2(xd, 1, 4);
    CHECK_OK(avo_op_act(be, arena, &x, AVO_ACT_RELU, 0, &x, &err), &err);
    CHECK(xd[0] == 1 && xd[1] == 0 && xd[2] == 3 && xd[3] == 0);
    float cx[4] = {1, 2, 3, 4}, cw[3] = {1, 0, -1};
    int64_t ws[3] = {1, 1, 3};
    avo_tensor xt = avo_tensor_view2(cx, 1, 4), wt = avo_tensor_view(AVO_DTYPE_F32, 3, ws, cw), y = {0};
    avo_conv1d_params p = {1, 1, 1, 1};
    CHECK_OK(avo_op_conv1d(be, arena, &xt, &wt, NULL, &p, &y, &err), &err);
    float want[4] = {-2, -2, -2, 3};
    for (int i = 0; i < 4 && y.data; i++) CHECK_NEAR(avo_tensor_f32(&y)[i], want[i], 1e-6);
    /* shape errors are refused with a message naming the op */
    avo_conv1d_params bad = {1, 0, 1, 2};
    avo_tensor y2 = {0};
    CHECK(avo_op_conv1d(be, arena, &xt, &wt, NULL, &bad, &y2, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "conv1d") != NULL);
    avo_tensor small = avo_tensor_view2(cx, 1, 1);
    avo_conv1d_params nopad = {1, 0, 1, 1};
    CHECK(avo_op_conv1d(be, arena, &small, &wt, NULL, &nopad, &y2, &err) == AVO_ERR_INVALID_ARGUMENT);
    int32_t ids[2] = {0, 5};
    int64_t is[1] = {2};
    avo_tensor idt = avo_tensor_view(AVO_DTYPE_I32, 1, is, ids), tab = avo_tensor_view2(cx, 2, 2), e = {0};
    CHECK(avo_op_embedding(be, arena, &tab, &idt, &e, &err) == AVO_ERR_INVALID_ARGUMENT);
    avo_tensor wrong = avo_tensor_view2(xd, 2, 2);
    CHECK(avo_op_conv1d(be, arena, &xt, &wt, NULL, &p, &wrong, &err) == AVO_ERR_INVALID_ARGUMENT);
}

/* transpose, row views as outputs (concatenation), reshape */
static void test_layout(void) {
    avo_error err = {0};
    avo_arena_reset(arena);
    float xd[5 * 70];
    for (int i = 0; i < 5 * 70; i++) xd[i] = (float)(i * 7 % 31) - 15.0f;
    avo_tensor x = avo_tensor_view2(xd, 5, 70), y = {0}, z = {0};
    CHECK_OK(avo_op_transpose(be, arena, &x, &y, &err), &err);
    CHECK(y.ndim == 2 && y.shape[0] == 70 && y.shape[1] == 5);
    int bad = 0;
    for (int i = 0; i < 5 && y.data; i++)
        for (int j = 0; j < 70; j++) bad += avo_tensor_f32(&y)[j * 5 + i] != xd[i * 70 + j];
    CHECK(bad == 0);
    /* concat [x; relu(x)] along channels by writing into row views of one [10, 70] tensor */
    int64_t s2[2] = {10, 70};
    CHECK_OK(avo_tensor_new(arena, AVO_DTYPE_F32, 2, s2, &z, &err), &err);
    avo_tensor top = avo_tensor_rows(&z, 0, 5), bottom = avo_tensor_rows(&z, 5, 5);
    CHECK_OK(avo_op_copy(be, arena, &x, &top, &err), &err);
    CHECK_OK(avo_op_act(be, arena, &x, AVO_ACT_RELU, 0, &bottom, &err), &err);
    bad = 0;
    for (int i = 0; i < 5 * 70 && z.data; i++) {
        bad += avo_tensor_f32(&z)[i] != xd[i];
        bad += avo_tensor_f32(&z)[350 + i] != (xd[i] > 0 ? xd[i] : 0);
    }
    CHECK(bad == 0);
    avo_tensor out_of_range = avo_tensor_rows(&z, 8, 5), r = {0};
    CHECK(out_of_range.data == NULL);
    int64_t s3[3] = {2, 5, 70};
    CHECK_OK(avo_tensor_reshape(&z, 3, s3, &r, &err), &err);
    CHECK(r.data == z.data && r.ndim == 3);
    int64_t s4[2] = {3, 70};
    CHECK(avo_tensor_reshape(&z, 2, s4, &r, &err) == AVO_ERR_INVALID_ARGUMENT);
}

int main(void) {
    avo_error err = {0};
    avo_test_tmp_dir("engine_ops", refdir, sizeof refdir);
    CHECK_OK(avo_backend_cpu_create(2, &be, &err), &err);
    CHECK_OK(avo_arena_create(be, 16u << 20, &arena, &err), &err);
    if (!be || !arena) TEST_MAIN_END();
    CHECK(strcmp(avo_backend_name(be), "cpu") == 0 && avo_backend_host_memory(be));
    test_arena();
    test_small_known();
    test_layout();
    int torch = make_cases();
    CHECK(torch >= 0);
    if (torch == 1) {
        test_torch_parity();
    } else if (torch == 0) {
        const char *req = getenv("AVO_REQUIRE_TORCH");
        if (req && *req)
            CHECK_MSG(0, "python3-torch is missing but AVO_REQUIRE_TORCH is set");
        else
            fprintf(stderr, "SKIP: python3-torch not installed; operator parity with PyTorch not tested "
                            "(install python3-torch, or set AVO_REQUIRE_TORCH=1 to make this a failure)\n");
    }
    avo_arena_free(arena);
    avo_backend_free(be);
    TEST_MAIN_END();
}
