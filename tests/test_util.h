/* Minimal test harness: CHECK records a failure and continues; the test exits non-zero if any failed. */
#ifndef AVO_TEST_UTIL_H
#define AVO_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int avo_test_failures = 0;
static int avo_test_checks = 0;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        avo_test_checks++;                                                          \
        if (!(cond)) {                                                              \
            avo_test_failures++;                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

#define CHECK_MSG(cond, ...)                                                        \
    do {                                                                            \
        avo_test_checks++;                                                          \
        if (!(cond)) {                                                              \
            avo_test_failures++;                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
        }                                                                           \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                    \
    do {                                                                                         \
        double avo_a_ = (a), avo_b_ = (b);                                                       \
        CHECK_MSG(fabs(avo_a_ - avo_b_) <= (tol), "%s = %g, %s = %g, tol %g", #a, avo_a_, #b, avo_b_, \
                  (double)(tol));                                                                \
    } while (0)

#define CHECK_OK(expr, errp)                                                                    \
    do {                                                                                        \
        int avo_st_ = (expr);                                                                   \
        const avo_error *avo_e_ = (errp);                                                       \
        CHECK_MSG(avo_st_ == 0, "%s returned %d: %s", #expr, avo_st_, avo_e_ ? avo_e_->message : ""); \
    } while (0)

/* Shared test audio (../shared/data), or NULL with a message if absent. */
static inline const char *avo_test_data_dir(void) {
    const char *d = getenv("AVO_TEST_DATA");
    return d && *d ? d : "../shared/data";
}

/* Writes "dir/name" into buf. */
static inline const char *avo_test_path(char *buf, size_t n, const char *dir, const char *name) {
    snprintf(buf, n, "%s/%s", dir, name);
    return buf;
}

/* A scratch folder for this test's files (created if needed). */
static inline const char *avo_test_tmp_dir(const char *test_name, char *buf, size_t n) {
    const char *base = getenv("AVO_TEST_TMP");
    if (!base || !*base) base = "/tmp";
    mkdir(base, 0755);
    snprintf(buf, n, "%s/%s", base, test_name);
    mkdir(buf, 0755);
    return buf;
}

/* Runs the PyTorch reference script tests/reference/<script> with /usr/bin/python3 as
 * `script 'outdir' extra` (extra: further arguments, quoted by the caller, or ""), its output in
 * outdir/gen.log. The source tree is AVO_SOURCE_DIR, else derived from caller_file (__FILE__, absolute in
 * CMake builds). Returns 1 when the data exist, 0 when python3-torch is missing (the script then
 * writes outdir/TORCH_MISSING), -1 when the script failed. */
static inline int avo_test_run_reference(const char *caller_file, const char *script, const char *outdir,
                                         const char *extra) {
    char src[600], cmd[4200], missing[1100];
    const char *env = getenv("AVO_SOURCE_DIR");
    snprintf(src, sizeof src, "%s", env && *env ? env : caller_file);
    char *cut = env && *env ? NULL : strstr(src, "tests/unit/");
    if (cut) snprintf(cut, sizeof src - (size_t)(cut - src), ".");
    snprintf(missing, sizeof missing, "%s/TORCH_MISSING", outdir);
    remove(missing);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/reference/%s' '%s' %s > '%s/gen.log' 2>&1", src, script, outdir,
             extra, outdir);
    int rc = system(cmd);
    if (rc != 0) {
        fprintf(stderr, "%s failed (rc %d), see %s/gen.log\n", script, rc, outdir);
        return -1;
    }
    struct stat sb;
    return stat(missing, &sb) == 0 ? 0 : 1;
}

/* max|got - ref| / max|ref| (max|got - ref| when ref is all zero); a NaN anywhere makes it NaN, so
 * a comparison against a bound fails. The relative error of every parity test against a reference. */
static inline double avo_test_rel_error(const float *got, const float *ref, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (isnan(d)) return NAN;
        if (d > num) num = d;
        if (fabs(ref[i]) > den) den = fabs(ref[i]);
    }
    return den > 0 ? num / den : num;
}

/* Whole file into a NUL-terminated malloc'd buffer (NULL if unreadable); size may be NULL. */
static inline char *avo_test_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = 0;
    fclose(f);
    if (size) *size = buf ? (size_t)n : 0;
    return buf;
}

/* Test data: xorshift64 uniform in [-1, 1), deterministic for a given *state (never 0). */
static inline float avo_test_frand(uint64_t *state) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (float)((double)(*state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static inline void avo_test_fill(uint64_t *state, float *p, int64_t n) {
    for (int64_t i = 0; i < n; i++) p[i] = avo_test_frand(state);
}

#define TEST_MAIN_END()                                                                     \
    do {                                                                                    \
        fprintf(stderr, "%d checks, %d failed\n", avo_test_checks, avo_test_failures);    \
        if (avo_test_checks == 0) {                                                         \
            fprintf(stderr, "no checks ran\n");                                             \
            return 1;                                                                       \
        }                                                                                   \
        return avo_test_failures ? 1 : 0;                                                   \
    } while (0)

#endif
