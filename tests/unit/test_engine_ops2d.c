/* engine module, 2-D operators (conv2d with fused ReLU and residual, conv_transpose2d, pool2d,
 * transpose01): against PyTorch on cases written by tests/reference/engine_ops2d_reference.py,
 * relative error max|a-b| / max|b| under 1e-4; without torch, against a plain C loop nest on random
 * shapes (every code path of the CPU back end, the direct kernels and im2col + sgemm: widths around
 * their vector lengths, 1x1, strided, grouped), a hand-computed case, channel concatenation through row views, and shape errors. */
#include "autovoice/engine.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <unistd.h>

#define TOL 1e-4

static char refdir[600];
static avo_backend *be;
static avo_arena *arena;

static int make_cases(void) {
    return avo_test_run_reference(__FILE__, "engine_ops2d_reference.py", refdir, "");
}

/* ---- case loading --------------------------------------------------------------------------- */

static int pint(const cJSON *c, const char *key, int def) {
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "params"), key);
    return cJSON_IsNumber(v) ? v->valueint : def;
}
/* params[key][i] of a pair */
static int ppair(const cJSON *c, const char *key, int i, int def) {
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "params"), key);
    const cJSON *e = cJSON_IsArray(v) ? cJSON_GetArrayItem(v, i) : NULL;
    return cJSON_IsNumber(e) ? e->valueint : def;
}
static const char *pstr(const cJSON *c, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "params"), key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

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
    for (int i = 0; i < nd && i < AVO_TENSOR_MAX_DIMS; i++) s[i] = (int64_t)cJSON_GetArrayItem(shape, i)->valuedouble;
    *t = avo_tensor_view(AVO_DTYPE_F32, nd, s, data);
    CHECK_MSG(data && size == (size_t)avo_tensor_numel(t) * 4, "%s: bad file for %s", key, path);
    return data;
}

static bool load(const cJSON *c, const char *key, avo_tensor *t) {
    avo_tensor h;
    void *data = load_host(c, key, &h);
    if (!data) return false;
    avo_error err = {0};
    CHECK_OK(avo_tensor_from_host(arena, h.ndim, h.shape, data, t, &err), &err);
    free(data);
    return true;
}


static double compare(const cJSON *c, const avo_tensor *got) {
    avo_tensor want;
    float *w = load_host(c, "y", &want);
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    if (!w) {
        CHECK_MSG(0, "%s: no expected y", name);
        return INFINITY;
    }
    bool same = got->ndim == want.ndim;
    for (int i = 0; same && i < want.ndim; i++) same = got->shape[i] == want.shape[i];
    CHECK_MSG(same, "%s: result shape differs from torch's", name);
    double rel = INFINITY;
    if (same) {
        int64_t n = avo_tensor_numel(&want);
        float *g = malloc((size_t)n * sizeof(float));
        avo_error err = {0};
        CHECK_OK(avo_tensor_to_host(arena, got, g, n, &err), &err);
        rel = avo_test_rel_error(g, w, n);
        free(g);
    }
    free(w);
    CHECK_MSG(rel < TOL, "%s: relative error %.3g (tolerance %g)", name, rel, TOL);
    return rel;
}

static double run_case(const cJSON *c) {
    const char *op = cJSON_GetObjectItem(c, "op")->valuestring;
    avo_tensor x = {0}, w = {0}, b = {0}, r = {0}, y = {0};
    avo_error err = {0};
    avo_status st = AVO_ERR_INTERNAL;
    if (!strcmp(op, "conv2d")) {
        load(c, "x", &x), load(c, "w", &w);
        bool hb = load(c, "b", &b), hr = load(c, "r", &r);
        avo_conv2d_params p = {{ppair(c, "stride", 0, 1), ppair(c, "stride", 1, 1)},
                               {ppair(c, "padding", 0, 0), ppair(c, "padding", 1, 0)},
                               {ppair(c, "dilation", 0, 1), ppair(c, "dilation", 1, 1)},
                               pint(c, "groups", 1),
                               pint(c, "relu", 0) != 0};
        st = avo_op_conv2d(be, arena, &x, &w, hb ? &b : NULL, &p, hr ? &r : NULL, &y, &err);
    } else if (!strcmp(op, "conv_transpose2d")) {
        load(c, "x", &x), load(c, "w", &w);
        bool hb = load(c, "b", &b);
        avo_conv_transpose2d_params p = {{ppair(c, "stride", 0, 1), ppair(c, "stride", 1, 1)},
                                         {ppair(c, "padding", 0, 0), ppair(c, "padding", 1, 0)},
                                         {ppair(c, "output_padding", 0, 0), ppair(c, "output_padding", 1, 0)},
                                         pint(c, "relu", 0) != 0};
        st = avo_op_conv_transpose2d(be, arena, &x, &w, hb ? &b : NULL, &p, &y, &err);
    } else if (!strcmp(op, "pool2d")) {
        load(c, "x", &x);
        avo_pool2d_params p = {{ppair(c, "kernel", 0, 1), ppair(c, "kernel", 1, 1)},
                               {ppair(c, "stride", 0, 0), ppair(c, "stride", 1, 0)},
                               {ppair(c, "padding", 0, 0), ppair(c, "padding", 1, 0)}};
        st = avo_op_pool2d(be, arena, &x, strcmp(pstr(c, "kind"), "max") ? AVO_POOL_AVG : AVO_POOL_MAX, &p, &y, &err);
    } else if (!strcmp(op, "transpose01")) {
        load(c, "x", &x);
        st = avo_op_transpose01(be, arena, &x, &y, &err);
    } else {
        CHECK_MSG(0, "unknown op %s", op);
        return INFINITY;
    }
    CHECK_MSG(st == AVO_OK, "%s: %s", cJSON_GetObjectItem(c, "name")->valuestring, err.message);
    return st ? INFINITY : compare(c, &y);
}

static void test_torch_parity(void) {
    char path[800];
    snprintf(path, sizeof path, "%s/index.json", refdir);
    char *json = avo_test_read_file(path, NULL);
    CHECK_MSG(json != NULL, "no %s", path);
    if (!json) return;
    cJSON *root = cJSON_Parse(json);
    cJSON *cases = cJSON_GetObjectItem(root, "cases");
    CHECK(cJSON_GetArraySize(cases) >= 30);
    double worst[4] = {0, 0, 0, 0};
    static const char *ops[4] = {"conv2d", "conv_transpose2d", "pool2d", "transpose01"};
    for (int i = 0; i < cJSON_GetArraySize(cases); i++) {
        const cJSON *c = cJSON_GetArrayItem(cases, i);
        avo_arena_reset(arena);
        double r = run_case(c);
        const char *op = cJSON_GetObjectItem(c, "op")->valuestring;
        for (int k = 0; k < 4; k++)
            if (!strcmp(op, ops[k]) && !(r <= worst[k])) worst[k] = r;
        fprintf(stderr, "%-16s %-18s %.2e\n", cJSON_GetObjectItem(c, "name")->valuestring, op, r);
    }
    for (int k = 0; k < 4; k++) fprintf(stderr, "worst %-18s %.2e\n", ops[k], worst[k]);
    cJSON_Delete(root);
    free(json);
}

/* ---- plain C references (no torch needed) --------------------------------------------------- */

static uint32_t rng = 12345;
static float frand(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static avo_tensor rand_tensor(int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    int64_t s[4] = {d0, d1, d2, d3};
    avo_tensor t = {0};
    avo_error err = {0};
    CHECK_OK(avo_tensor_new(arena, AVO_DTYPE_F32, ndim, s, &t, &err), &err);
    for (int64_t i = 0; t.data && i < avo_tensor_numel(&t); i++) avo_tensor_f32(&t)[i] = frand();
    return t;
}

static void naive_conv2d(const avo_tensor *x, const avo_tensor *w, const float *b, const avo_conv2d_params *p,
                         const float *r, int64_t ho, int64_t wo, float *out) {
    int64_t cin = x->shape[0], h = x->shape[1], wd = x->shape[2], cout = w->shape[0], kh = w->shape[2],
            kw = w->shape[3];
    int64_t cig = cin / p->groups, cog = cout / p->groups;
    const float *X = avo_tensor_f32(x), *W = avo_tensor_f32(w);
    for (int64_t o = 0; o < cout; o++)
        for (int64_t i = 0; i < ho; i++)
            for (int64_t j = 0; j < wo; j++) {
                double acc = b ? b[o] : 0.0;
                int64_t g = o / cog;
                for (int64_t c = 0; c < cig; c++)
                    for (int64_t u = 0; u < kh; u++)
                        for (int64_t v = 0; v < kw; v++) {
                            int64_t yi = i * p->stride[0] - p->padding[0] + u * p->dilation[0];
                            int64_t xj = j * p->stride[1] - p->padding[1] + v * p->dilation[1];
                            if (yi < 0 || yi >= h || xj < 0 || xj >= wd) continue;
                            acc += (double)W[((o * cig + c) * kh + u) * kw + v] * X[((g * cig + c) * h + yi) * wd + xj];
                        }
                if (p->relu && acc < 0) acc = 0;
                int64_t idx = (o * ho + i) * wo + j;
                out[idx] = (float)(acc + (r ? r[idx] : 0.0));
            }
}

static void test_conv2d_naive(const char *path) {
    /* cin, cout, k, stride, pad, dil, groups, H, W, relu, residual, bias */
    static const int shapes[][12] = {
        {16, 16, 3, 1, 1, 1, 1, 5, 128, 1, 1, 1}, {1, 16, 3, 1, 1, 1, 1, 4, 128, 1, 0, 1},
        {16, 32, 1, 1, 0, 1, 1, 6, 64, 0, 0, 1},  {32, 16, 3, 1, 1, 1, 1, 3, 64, 1, 1, 1},
        {24, 40, 3, 1, 1, 1, 1, 4, 17, 1, 0, 1},  {8, 8, 3, 1, 1, 1, 1, 3, 15, 0, 1, 0},
        {8, 24, 3, 1, 1, 1, 1, 5, 1, 1, 1, 1},    {20, 12, 3, 1, 1, 1, 1, 7, 33, 1, 1, 1},
        {64, 48, 3, 1, 1, 1, 1, 3, 8, 1, 1, 1},   {64, 64, 3, 1, 1, 1, 1, 2, 4, 1, 1, 1},
        {5, 3, 3, 1, 1, 1, 1, 9, 48, 0, 0, 1},    {4, 8, 3, 2, 1, 1, 1, 9, 31, 1, 0, 1},
        {6, 6, 3, 1, 2, 2, 3, 8, 20, 1, 1, 1},    {16, 16, 3, 1, 1, 1, 1, 1, 128, 1, 1, 1},
        {16, 17, 1, 1, 0, 1, 1, 3, 40, 1, 1, 0},  {3, 8, 3, 1, 0, 1, 1, 5, 18, 1, 0, 1},
        {48, 16, 3, 1, 1, 1, 1, 2, 96, 1, 1, 1},  {2, 4, 5, 1, 2, 1, 1, 6, 70, 0, 1, 1},
    };
    int n = (int)(sizeof shapes / sizeof shapes[0]);
    double worst = 0;
    for (int s = 0; s < n; s++) {
        const int *c = shapes[s];
        avo_arena_reset(arena);
        avo_conv2d_params p = {{c[3], c[3]}, {c[4], c[4]}, {c[5], c[5]}, c[6], c[9] != 0};
        avo_tensor x = rand_tensor(3, c[0], c[7], c[8], 0), w = rand_tensor(4, c[1], c[0] / c[6], c[2], c[2]);
        avo_tensor b = rand_tensor(1, c[1], 0, 0, 0);
        int64_t ho = (c[7] + 2 * c[4] - c[5] * (c[2] - 1) - 1) / c[3] + 1, wo = (c[8] + 2 * c[4] - c[5] * (c[2] - 1) - 1) / c[3] + 1;
        avo_tensor r = rand_tensor(3, c[1], ho, wo, 0), y = {0};
        avo_error err = {0};
        CHECK_OK(avo_op_conv2d(be, arena, &x, &w, c[11] ? &b : NULL, &p, c[10] ? &r : NULL, &y, &err), &err);
        if (!y.data) continue;
        float *want = malloc((size_t)(c[1] * ho * wo) * sizeof(float));
        naive_conv2d(&x, &w, c[11] ? avo_tensor_f32(&b) : NULL, &p, c[10] ? avo_tensor_f32(&r) : NULL, ho, wo, want);
        double e = avo_test_rel_error(avo_tensor_f32(&y), want, c[1] * ho * wo);
        CHECK_MSG(e < TOL, "conv2d %s path, shape %d ([%d, %d, %d] -> %d, k %d): relative error %.3g", path, s, c[0], c[7],
                  c[8], c[1], c[2], e);
        if (!(e <= worst)) worst = e;
        free(want);
    }
    fprintf(stderr, "conv2d (%s path) vs plain loops: %d shapes, worst relative error %.2e\n", path, n, worst);
}

/* conv_transpose2d is checked the same way through its definition: y[o, i*s - p + u, j*s - p + v] +=
 * w[c, o, u, v] x[c, i, j]. */
static void test_conv_transpose2d_naive(void) {
    static const int shapes[][9] = {/* cin, cout, k, stride, pad, outpad, H, W, relu */
                                    {16, 8, 3, 2, 1, 1, 5, 64, 1}, {8, 4, 3, 2, 1, 1, 3, 4, 0},
                                    {3, 5, 4, 2, 1, 0, 4, 7, 1},   {4, 3, 3, 1, 1, 0, 3, 9, 0}};
    for (int s = 0; s < 4; s++) {
        const int *c = shapes[s];
        avo_arena_reset(arena);
        avo_tensor x = rand_tensor(3, c[0], c[6], c[7], 0), w = rand_tensor(4, c[0], c[1], c[2], c[2]);
        avo_tensor b = rand_tensor(1, c[1], 0, 0, 0), y = {0};
        avo_conv_transpose2d_params p = {{c[3], c[3]}, {c[4], c[4]}, {c[5], c[5]}, c[8] != 0};
        avo_error err = {0};
        CHECK_OK(avo_op_conv_transpose2d(be, arena, &x, &w, &b, &p, &y, &err), &err);
        if (!y.data) continue;
        int64_t ho = y.shape[1], wo = y.shape[2];
        CHECK(ho == (int64_t)(c[6] - 1) * c[3] - 2 * c[4] + c[2] + c[5]);
        double *acc = calloc((size_t)(c[1] * ho * wo), sizeof(double));
        const float *X = avo_tensor_f32(&x), *W = avo_tensor_f32(&w), *B = avo_tensor_f32(&b);
        for (int o = 0; o < c[1]; o++)
            for (int64_t i = 0; i < ho * wo; i++) acc[o * ho * wo + i] = B[o];
        for (int ci = 0; ci < c[0]; ci++)
            for (int o = 0; o < c[1]; o++)
                for (int i = 0; i < c[6]; i++)
                    for (int j = 0; j < c[7]; j++)
                        for (int u = 0; u < c[2]; u++)
                            for (int v = 0; v < c[2]; v++) {
                                int64_t oi = (int64_t)i * c[3] - c[4] + u, oj = (int64_t)j * c[3] - c[4] + v;
                                if (oi < 0 || oi >= ho || oj < 0 || oj >= wo) continue;
                                acc[(o * ho + oi) * wo + oj] += (double)W[((ci * c[1] + o) * c[2] + u) * c[2] + v] *
                                                                X[(ci * c[6] + i) * c[7] + j];
                            }
        float *want = malloc((size_t)(c[1] * ho * wo) * sizeof(float));
        for (int64_t i = 0; i < c[1] * ho * wo; i++) want[i] = (float)(c[8] && acc[i] < 0 ? 0 : acc[i]);
        double e = avo_test_rel_error(avo_tensor_f32(&y), want, c[1] * ho * wo);
        CHECK_MSG(e < TOL, "conv_transpose2d shape %d: relative error %.3g", s, e);
        free(acc);
        free(want);
    }
}

/* Hand-computed: a 1-channel 3x3 image, a kernel that takes the right neighbour minus the left one. */
static void test_known_and_errors(void) {
    avo_error err = {0};
    avo_arena_reset(arena);
    float xd[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, wd[9] = {0, 0, 0, -1, 0, 1, 0, 0, 0}, bd[1] = {0.5f};
    int64_t xs[3] = {1, 3, 3}, ws[4] = {1, 1, 3, 3}, bs[1] = {1};
    avo_tensor x = avo_tensor_view(AVO_DTYPE_F32, 3, xs, xd), w = avo_tensor_view(AVO_DTYPE_F32, 4, ws, wd);
    avo_tensor b = avo_tensor_view(AVO_DTYPE_F32, 1, bs, bd), y = {0};
    avo_conv2d_params p = {{1, 1}, {1, 1}, {1, 1}, 1, false};
    CHECK_OK(avo_op_conv2d(be, arena, &x, &w, &b, &p, NULL, &y, &err), &err);
    float want[9] = {2.5f, 2.5f, -1.5f, 5.5f, 2.5f, -4.5f, 8.5f, 2.5f, -7.5f};
    for (int i = 0; i < 9 && y.data; i++) CHECK_NEAR(avo_tensor_f32(&y)[i], want[i], 1e-6);
    /* the same with ReLU and x itself as the residual */
    avo_tensor y2 = {0};
    p.relu = true;
    float rd[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    avo_tensor r = avo_tensor_view(AVO_DTYPE_F32, 3, xs, rd);
    CHECK_OK(avo_op_conv2d(be, arena, &x, &w, &b, &p, &r, &y2, &err), &err);
    for (int i = 0; i < 9 && y2.data; i++) CHECK_NEAR(avo_tensor_f32(&y2)[i], (want[i] > 0 ? want[i] : 0) + 1, 1e-6);
    /* 2x2 average pooling by hand */
    float pd[16];
    for (int i = 0; i < 16; i++) pd[i] = (float)i;
    int64_t ps[3] = {1, 4, 4};
    avo_tensor px = avo_tensor_view(AVO_DTYPE_F32, 3, ps, pd), py = {0};
    avo_pool2d_params pp = {{2, 2}, {0, 0}, {0, 0}};
    CHECK_OK(avo_op_pool2d(be, arena, &px, AVO_POOL_AVG, &pp, &py, &err), &err);
    CHECK(py.data && py.shape[1] == 2 && py.shape[2] == 2);
    if (py.data) {
        CHECK_NEAR(avo_tensor_f32(&py)[0], 2.5, 1e-6);
        CHECK_NEAR(avo_tensor_f32(&py)[3], 12.5, 1e-6);
    }

    /* concatenation along channels: two producers write row views of one [2, 3, 3] tensor */
    int64_t cs[3] = {2, 3, 3};
    avo_tensor cat = {0};
    CHECK_OK(avo_tensor_new(arena, AVO_DTYPE_F32, 3, cs, &cat, &err), &err);
    avo_tensor top = avo_tensor_rows(&cat, 0, 1), bottom = avo_tensor_rows(&cat, 1, 1);
    p.relu = false;
    CHECK_OK(avo_op_conv2d(be, arena, &x, &w, &b, &p, NULL, &top, &err), &err);
    CHECK_OK(avo_op_copy(be, arena, &x, &bottom, &err), &err);
    int bad = 0;
    for (int i = 0; i < 9 && cat.data; i++) bad += avo_tensor_f32(&cat)[i] != want[i] || avo_tensor_f32(&cat)[9 + i] != xd[i];
    CHECK(bad == 0);

    /* errors name the op and refuse before computing anything */
    avo_tensor bad_out = {0};
    avo_conv2d_params g2 = {{1, 1}, {1, 1}, {1, 1}, 2, false};
    CHECK(avo_op_conv2d(be, arena, &x, &w, NULL, &g2, NULL, &bad_out, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "conv2d") != NULL);
    avo_tensor r_wrong = avo_tensor_view(AVO_DTYPE_F32, 3, ps, pd);
    CHECK(avo_op_conv2d(be, arena, &x, &w, NULL, &p, &r_wrong, &bad_out, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "residual") != NULL);
    avo_tensor same = avo_tensor_view(AVO_DTYPE_F32, 3, xs, xd); /* output over the input */
    CHECK(avo_op_conv2d(be, arena, &x, &w, NULL, &p, NULL, &same, &err) == AVO_ERR_INVALID_ARGUMENT);
    avo_conv2d_params nopad = {{1, 1}, {0, 0}, {1, 1}, 1, false};
    int64_t ts[3] = {1, 2, 3};
    avo_tensor tiny = avo_tensor_view(AVO_DTYPE_F32, 3, ts, xd);
    CHECK(avo_op_conv2d(be, arena, &tiny, &w, NULL, &nopad, NULL, &bad_out, &err) == AVO_ERR_INVALID_ARGUMENT);
    avo_tensor w3 = avo_tensor_view(AVO_DTYPE_F32, 3, ws, wd);
    CHECK(avo_op_conv2d(be, arena, &x, &w3, NULL, &p, NULL, &bad_out, &err) == AVO_ERR_INVALID_ARGUMENT);
    avo_conv_transpose2d_params tp = {{2, 2}, {1, 1}, {2, 2}, false}; /* output_padding must be < stride */
    CHECK(avo_op_conv_transpose2d(be, arena, &x, &w, NULL, &tp, &bad_out, &err) == AVO_ERR_INVALID_ARGUMENT);
    avo_pool2d_params big = {{4, 4}, {0, 0}, {0, 0}};
    CHECK(avo_op_pool2d(be, arena, &x, AVO_POOL_AVG, &big, &bad_out, &err) == AVO_ERR_INVALID_ARGUMENT);
    avo_tensor flat = avo_tensor_view2(xd, 3, 3);
    CHECK(avo_op_transpose01(be, arena, &flat, &bad_out, &err) == AVO_ERR_INVALID_ARGUMENT);
}

int main(void) {
    avo_error err = {0};
    avo_test_tmp_dir("engine_ops2d", refdir, sizeof refdir);
    CHECK_OK(avo_backend_cpu_create(2, &be, &err), &err);
    CHECK_OK(avo_arena_create(be, 16u << 20, &arena, &err), &err);
    if (!be || !arena) TEST_MAIN_END();
    test_known_and_errors();
    /* the CPU back end has direct kernels (AVX-512, AVX2; whichever this CPU has) and the im2col +
     * sgemm path: check each that runs here */
    test_conv2d_naive("default");
    if (__builtin_cpu_supports("avx2")) {
        setenv("AVO_CONV2D_AVX2", "1", 1);
        test_conv2d_naive("avx2");
        unsetenv("AVO_CONV2D_AVX2");
    }
    setenv("AVO_CONV2D_GENERIC", "1", 1);
    test_conv2d_naive("im2col");
    unsetenv("AVO_CONV2D_GENERIC");
    test_conv_transpose2d_naive();
    int torch = make_cases();
    CHECK(torch >= 0);
    if (torch == 1) {
        test_torch_parity();
    } else if (torch == 0) {
        const char *req = getenv("AVO_REQUIRE_TORCH");
        if (req && *req)
            CHECK_MSG(0, "python3-torch is missing but AVO_REQUIRE_TORCH is set");
        else
            fprintf(stderr, "SKIP: python3-torch not installed; 2-D operator parity with PyTorch not tested "
                            "(install python3-torch, or set AVO_REQUIRE_TORCH=1 to make this a failure)\n");
    }
    avo_arena_free(arena);
    avo_backend_free(be);
    TEST_MAIN_END();
}
