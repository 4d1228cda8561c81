/* profiles module: store round trips, errors, persistence, concurrency, crash atomicity (a child killed
 * at every step of put/replace/delete through the AVO_PROFILES_CRASH_AT hook, and at every write/sync
 * SQLite makes through a VFS shim), and clip validation on real and synthetic recordings. */
#include "autovoice/profiles.h"
#include "profiles/profiles_internal.h"
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[512];

/* ---- helpers --------------------------------------------------------------------------------- */

static const char *fresh_dir(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", tmpdir, name);
    prof_remove_tree(buf, NULL, NULL);
    return buf;
}

/* Deterministic blob content for a (seed, index) pair, so a reader can tell which version it sees. */
static unsigned char *make_blob(int seed, int index, size_t size) {
    unsigned char *p = malloc(size ? size : 1);
    uint32_t x = 2166136261u ^ (uint32_t)(seed * 31 + index);
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        p[i] = (unsigned char)x;
    }
    return p;
}

static size_t blob_size(int seed, int index) { return index == 0 ? 70000 + 13 * (size_t)seed : 4096 + (size_t)seed; }

static void make_info(avo_profile_info *p, const char *name, int seed) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(p->kind, sizeof p->kind, "dsp");
    p->created_unix = 1700000000 + seed;
    p->clip_count = seed; /* identifies the version */
    p->sample_rate = 44100;
    p->total_seconds = 30.5 + seed;
    p->voiced_seconds = 21.25 + seed;
    p->f0_median_hz = 220.0 + seed;
    p->f0_low_hz = 110.5;
    p->f0_high_hz = 440.25;
    p->snr_db = 31.5;
    snprintf(p->sources, sizeof p->sources, "a_%d.wav;b.flac", seed);
    snprintf(p->warnings, sizeof p->warnings, "b.flac: low SNR 18 dB");
}

/* Puts version `seed` of profile `name` with two blobs. */
static avo_status put_version(avo_profile_store *s, const char *name, int seed, int replace, avo_error *err) {
    avo_profile_info info;
    make_info(&info, name, seed);
    unsigned char *b0 = make_blob(seed, 0, blob_size(seed, 0)), *b1 = make_blob(seed, 1, blob_size(seed, 1));
    avo_profile_blob blobs[2] = {{"analysis.bin", b0, blob_size(seed, 0)}, {"extra.dat", b1, blob_size(seed, 1)}};
    avo_status st = avo_profile_store_put(s, &info, blobs, 2, replace, err);
    free(b0);
    free(b1);
    return st;
}

/* Checks that profile `name` is version `seed`, whole: every field and both blobs byte-equal.
 * Returns 1 if it is; says why not unless quiet. */
static int profile_is_version_q(avo_profile_store *s, const char *name, int seed, int quiet) {
    avo_profile_info got, want;
    avo_error err;
    make_info(&want, name, seed);
    if (avo_profile_store_get(s, name, &got, &err) != AVO_OK) {
        if (!quiet) fprintf(stderr, "  get %s: %s\n", name, err.message);
        return 0;
    }
    int ok = strcmp(got.name, want.name) == 0 && strcmp(got.kind, want.kind) == 0 &&
             got.created_unix == want.created_unix && got.clip_count == want.clip_count &&
             got.sample_rate == want.sample_rate && got.total_seconds == want.total_seconds &&
             got.voiced_seconds == want.voiced_seconds && got.f0_median_hz == want.f0_median_hz &&
             got.f0_low_hz == want.f0_low_hz && got.f0_high_hz == want.f0_high_hz && got.snr_db == want.snr_db &&
             strcmp(got.sources, want.sources) == 0 && strcmp(got.model_path, want.model_path) == 0 &&
             strcmp(got.warnings, want.warnings) == 0;
    if (!ok && !quiet) fprintf(stderr, "  %s: fields are not version %d (clip_count %d)\n", name, seed, got.clip_count);
    const char *names[2] = {"analysis.bin", "extra.dat"};
    for (int i = 0; i < 2 && ok; i++) {
        void *data = NULL;
        size_t size = 0;
        if (avo_profile_store_read_blob(s, name, names[i], &data, &size, &err) != AVO_OK) {
            if (!quiet) fprintf(stderr, "  read %s/%s: %s\n", name, names[i], err.message);
            ok = 0;
            continue;
        }
        unsigned char *want_blob = make_blob(seed, i, blob_size(seed, i));
        if (size != blob_size(seed, i) || memcmp(data, want_blob, size) != 0) {
            if (!quiet) fprintf(stderr, "  %s/%s: bytes differ from version %d (size %zu)\n", name, names[i], seed, size);
            ok = 0;
        }
        free(want_blob);
        free(data);
    }
    return ok;
}

static int profile_is_version(avo_profile_store *s, const char *name, int seed) {
    return profile_is_version_q(s, name, seed, 0);
}

/* Number of entries in store/profiles (each live profile owns exactly one). */
static int count_data_folders(const char *store_dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/profiles", store_dir);
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static size_t count_profiles(avo_profile_store *s) {
    avo_profile_info *all = NULL;
    size_t n = 0;
    avo_error err;
    CHECK_OK(avo_profile_store_list(s, &all, &n, &err), &err);
    free(all);
    return n;
}

/* ---- store ----------------------------------------------------------------------------------- */

static void test_names(void) {
    char longest[AVO_PROFILE_NAME_MAX], too_long[AVO_PROFILE_NAME_MAX + 1];
    memset(longest, 'a', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    memset(too_long, 'b', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    const char *good[] = {"alice", "A", "Bob_2", "x-y-z", "a-", "0", longest};
    const char *bad[] = {NULL, "", "-x", "a.b", "a/b", "..", "../x", "a b", "caf\xc3\xa9", "tab\t", too_long};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CHECK_MSG(avo_profile_name_is_valid(good[i]), "'%s' should be valid", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(!avo_profile_name_is_valid(bad[i]), "'%s' should be invalid", bad[i] ? bad[i] : "(null)");
}

static void test_round_trip(void) {
    char dir[700];
    fresh_dir(dir, sizeof dir, "roundtrip");
    avo_profile_store *s = NULL;
    avo_error err;
    avo_error_clear(&err);
    CHECK_OK(avo_profile_store_open(dir, &s, &err), &err);
    if (!s) return;
    CHECK(strcmp(avo_profile_store_dir(s), dir) == 0);
    CHECK(count_profiles(s) == 0);

    CHECK_OK(put_version(s, "alice", 1, 0, &err), &err);
    CHECK(profile_is_version(s, "alice", 1));

    /* Existing name without replace: refused, old profile untouched. */
    avo_status st = put_version(s, "alice", 2, 0, &err);
    CHECK_MSG(st == AVO_ERR_EXISTS, "got %s", avo_status_name(st));
    CHECK_MSG(strstr(err.message, "--force") && strstr(err.message, "profile delete"), "%s", err.message);
    CHECK(profile_is_version(s, "alice", 1));

    CHECK_OK(put_version(s, "alice", 2, 1, &err), &err);
    CHECK(profile_is_version(s, "alice", 2));
    CHECK_OK(put_version(s, "bob", 3, 0, &err), &err);
    CHECK_MSG(count_data_folders(dir) == 2, "%d data folders after replace", count_data_folders(dir));

    avo_profile_info *all = NULL;
    size_t n = 0;
    CHECK_OK(avo_profile_store_list(s, &all, &n, &err), &err);
    CHECK(n == 2 && strcmp(all[0].name, "alice") == 0 && strcmp(all[1].name, "bob") == 0);
    CHECK(n == 2 && all[0].clip_count == 2 && all[1].clip_count == 3);
    free(all);

    /* A profile with no blobs, a neural one with a model path. */
    avo_profile_info info;
    make_info(&info, "carol", 9);
    snprintf(info.kind, sizeof info.kind, "neural");
    snprintf(info.model_path, sizeof info.model_path, "/models/carol.pth");
    CHECK_OK(avo_profile_store_put(s, &info, NULL, 0, 0, &err), &err);
    avo_profile_info got;
    CHECK_OK(avo_profile_store_get(s, "carol", &got, &err), &err);
    CHECK(strcmp(got.kind, "neural") == 0 && strcmp(got.model_path, "/models/carol.pth") == 0);

    /* Errors that must name what to do. */
    void *data = NULL;
    size_t size = 0;
    st = avo_profile_store_read_blob(s, "carol", "analysis.bin", &data, &size, &err);
    CHECK_MSG(st == AVO_ERR_NOT_FOUND && data == NULL, "missing blob: %s", avo_status_name(st));
    st = avo_profile_store_get(s, "nobody", &got, &err);
    CHECK_MSG(st == AVO_ERR_NOT_FOUND, "got %s", avo_status_name(st));
    CHECK_MSG(strstr(err.message, "autovoice profile list") && strstr(err.message, "nobody"), "%s", err.message);
    st = avo_profile_store_read_blob(s, "nobody", "analysis.bin", &data, &size, &err);
    CHECK(st == AVO_ERR_NOT_FOUND);
    st = avo_profile_store_delete(s, "nobody", &err);
    CHECK_MSG(st == AVO_ERR_NOT_FOUND && strstr(err.message, "autovoice profile list"), "%s", err.message);
    st = avo_profile_store_get(s, "../etc", &got, &err);
    CHECK_MSG(st == AVO_ERR_INVALID_ARGUMENT, "bad name: %s", avo_status_name(st));
    st = avo_profile_store_read_blob(s, "alice", "../alice.1/analysis.bin", &data, &size, &err);
    CHECK_MSG(st == AVO_ERR_INVALID_ARGUMENT, "bad blob name: %s", avo_status_name(st));

    /* Bad puts are refused before anything is written. */
    unsigned char byte = 1;
    avo_profile_blob dup[2] = {{"x.bin", &byte, 1}, {"x.bin", &byte, 1}};
    make_info(&info, "dave", 4);
    CHECK(avo_profile_store_put(s, &info, dup, 2, 0, &err) == AVO_ERR_INVALID_ARGUMENT);
    avo_profile_blob hidden = {".hidden", &byte, 1};
    CHECK(avo_profile_store_put(s, &info, &hidden, 1, 0, &err) == AVO_ERR_INVALID_ARGUMENT);
    make_info(&info, "bad.name", 4);
    CHECK(avo_profile_store_put(s, &info, NULL, 0, 0, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(avo_profile_store_get(s, "dave", &got, &err) == AVO_ERR_NOT_FOUND);

    CHECK_OK(avo_profile_store_delete(s, "alice", &err), &err);
    CHECK(avo_profile_store_get(s, "alice", &got, &err) == AVO_ERR_NOT_FOUND);
    CHECK(avo_profile_store_read_blob(s, "alice", "analysis.bin", &data, &size, &err) == AVO_ERR_NOT_FOUND);
    CHECK(count_profiles(s) == 2);
    CHECK_MSG(count_data_folders(dir) == 2, "%d data folders after delete", count_data_folders(dir));
    avo_profile_store_close(s);

    /* Durability settings that the atomicity argument relies on are in force. */
    {
        sqlite3 *raw = NULL;
        char dbp[800], mode[32] = "";
        sqlite3_stmt *q = NULL;
        avo_test_path(dbp, sizeof dbp, dir, "profiles.db");
        if (sqlite3_open_v2(dbp, &raw, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
            snprintf(mode, sizeof mode, "%s", (const char *)sqlite3_column_text(q, 0));
        sqlite3_finalize(q);
        sqlite3_close(raw);
        CHECK_MSG(strcmp(mode, "wal") == 0, "journal_mode '%s'", mode);
    }

    /* Reopen: everything persisted, and reading leaves the database byte-identical. */
    char db[800];
    void *db_before = NULL, *db_after = NULL;
    size_t before_size = 0, after_size = 0;
    CHECK_OK(prof_read_file(avo_test_path(db, sizeof db, dir, "profiles.db"), &db_before, &before_size, &err), &err);
    s = NULL;
    CHECK_OK(avo_profile_store_open(dir, &s, &err), &err);
    if (!s) {
        free(db_before);
        return;
    }
    CHECK(count_profiles(s) == 2);
    CHECK(profile_is_version(s, "bob", 3));
    CHECK_OK(avo_profile_store_get(s, "carol", &got, &err), &err);
    CHECK(got.clip_count == 9 && strcmp(got.model_path, "/models/carol.pth") == 0);
    avo_profile_store_close(s);
    CHECK_OK(prof_read_file(db, &db_after, &after_size, &err), &err);
    CHECK_MSG(before_size == after_size && db_before && db_after && memcmp(db_before, db_after, before_size) == 0,
              "profiles.db changed by open/get/list/close (%zu -> %zu bytes)", before_size, after_size);
    free(db_before);
    free(db_after);
    s = NULL;
    CHECK_OK(avo_profile_store_open(dir, &s, &err), &err);
    if (!s) return;

    /* Data removed by hand behind the store's back: a clear error, and delete still cleans up. */
    char folder[800];
    DIR *d = opendir(avo_test_path(folder, sizeof folder, dir, "profiles"));
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "bob.", 4) == 0) break;
    if (d && e) {
        char victim[1200];
        snprintf(victim, sizeof victim, "%s/%s", folder, e->d_name);
        CHECK(prof_remove_tree(victim, NULL, NULL) == AVO_OK);
    }
    if (d) closedir(d);
    st = avo_profile_store_get(s, "bob", &got, &err);
    CHECK_MSG(st == AVO_ERR_FORMAT && strstr(err.message, "profile delete bob"), "lost folder: %s", err.message);
    CHECK_OK(avo_profile_store_delete(s, "bob", &err), &err);
    CHECK(avo_profile_store_get(s, "bob", &got, &err) == AVO_ERR_NOT_FOUND);
    avo_profile_store_close(s);
}

static void test_default_dir(void) {
    char dir[700], want[800];
    fresh_dir(dir, sizeof dir, "xdg");
    char *old_xdg = getenv("XDG_DATA_HOME") ? strdup(getenv("XDG_DATA_HOME")) : NULL;
    setenv("XDG_DATA_HOME", dir, 1);
    avo_profile_store *s = NULL;
    avo_error err;
    CHECK_OK(avo_profile_store_open(NULL, &s, &err), &err);
    snprintf(want, sizeof want, "%s/autovoice", dir);
    CHECK_MSG(s && strcmp(avo_profile_store_dir(s), want) == 0, "default dir %s", s ? avo_profile_store_dir(s) : "");
    avo_profile_store_close(s);
    if (old_xdg) setenv("XDG_DATA_HOME", old_xdg, 1);
    else unsetenv("XDG_DATA_HOME");
    free(old_xdg);
}

static void write_bytes(const char *path, const void *data, size_t n, long offset) {
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    if (fd < 0) return;
    if (pwrite(fd, data, n, offset) != (ssize_t)n) fprintf(stderr, "short write to %s\n", path);
    close(fd);
}

static void expect_open_error(const char *dir, avo_status want, const char *must_name, const char *what) {
    avo_profile_store *s = NULL;
    avo_error err;
    avo_error_clear(&err);
    avo_status st = avo_profile_store_open(dir, &s, &err);
    CHECK_MSG(st == want && s == NULL, "%s: got %s (%s)", what, avo_status_name(st), err.message);
    CHECK_MSG(strstr(err.message, must_name) != NULL, "%s: message must name %s: %s", what, must_name, err.message);
    avo_profile_store_close(s);
}

static void test_corrupt_and_unwritable(void) {
    char dir[700], db[800];
    avo_error err;

    /* A file that is not a database at all. */
    fresh_dir(dir, sizeof dir, "corrupt1");
    prof_mkdirs(dir, NULL);
    snprintf(db, sizeof db, "%s/profiles.db", dir);
    char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (char)('a' + i % 26);
    write_bytes(db, junk, sizeof junk, 0);
    expect_open_error(dir, AVO_ERR_FORMAT, db, "garbage profiles.db");

    /* A real store whose database pages were damaged afterwards. */
    fresh_dir(dir, sizeof dir, "corrupt2");
    avo_profile_store *s = NULL;
    CHECK_OK(avo_profile_store_open(dir, &s, &err), &err);
    for (int i = 0; s && i < 40; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%02d", i);
        CHECK_OK(put_version(s, name, i, 0, &err), &err);
    }
    avo_profile_store_close(s); /* the last close checkpoints the WAL into profiles.db */
    snprintf(db, sizeof db, "%s/profiles.db", dir);
    struct stat sb;
    CHECK(stat(db, &sb) == 0 && sb.st_size >= 3 * 4096);
    write_bytes(db, junk, 4096, 4096); /* all of page 2, the profiles table root */
    s = NULL;
    avo_status st = avo_profile_store_open(dir, &s, &err);
    if (st == AVO_OK) { /* quick_check may not reach every page kind; a read must then fail clearly */
        avo_profile_info *all = NULL;
        size_t n = 0;
        st = avo_profile_store_list(s, &all, &n, &err);
        free(all);
    }
    CHECK_MSG(st == AVO_ERR_FORMAT && strstr(err.message, db) && strstr(err.message, ".bad"),
              "damaged pages: %s (%s)", avo_status_name(st), err.message);
    avo_profile_store_close(s);

    /* The magic header overwritten. */
    write_bytes(db, junk, 100, 0);
    expect_open_error(dir, AVO_ERR_FORMAT, db, "overwritten header");

    /* A store path that runs through a regular file cannot be created. */
    char file[800], below[900];
    fresh_dir(dir, sizeof dir, "unwritable");
    prof_mkdirs(dir, NULL);
    snprintf(file, sizeof file, "%s/plainfile", dir);
    write_bytes(file, "x", 1, 0);
    snprintf(below, sizeof below, "%s/store", file);
    expect_open_error(below, AVO_ERR_IO, file, "store below a file");
    expect_open_error(file, AVO_ERR_IO, file, "store is a file");
    if (geteuid() != 0) { /* root ignores permissions */
        char ro[800];
        snprintf(ro, sizeof ro, "%s/readonly", dir);
        prof_mkdirs(ro, NULL);
        chmod(ro, 0555);
        expect_open_error(ro, AVO_ERR_IO, ro, "read-only folder");
        chmod(ro, 0755);
    }
}

static void test_two_stores_same_dir(void) {
    char dir[700];
    fresh_dir(dir, sizeof dir, "shared");
    avo_profile_store *a = NULL, *b = NULL;
    avo_error err;
    CHECK_OK(avo_profile_store_open(dir, &a, &err), &err);
    CHECK_OK(avo_profile_store_open(dir, &b, &err), &err);
    if (!a || !b) {
        avo_profile_store_close(a);
        avo_profile_store_close(b);
        return;
    }
    CHECK_OK(put_version(a, "eve", 1, 0, &err), &err);
    CHECK(profile_is_version(b, "eve", 1));
    CHECK(put_version(b, "eve", 2, 0, &err) == AVO_ERR_EXISTS);
    CHECK_OK(put_version(b, "eve", 2, 1, &err), &err);
    CHECK(profile_is_version(a, "eve", 2));
    CHECK_OK(avo_profile_store_delete(a, "eve", &err), &err);
    CHECK(count_profiles(b) == 0);
    avo_profile_store_close(a);
    avo_profile_store_close(b);

    /* Opening while another process holds the writer lock neither waits nor touches folders that
     * process may be writing; the next open cleans them up. */
    {
        char lock_path[800], orphan[800];
        snprintf(lock_path, sizeof lock_path, "%s/.lock", dir);
        snprintf(orphan, sizeof orphan, "%s/profiles/eve.999.tmp", dir);
        CHECK(prof_mkdirs(orphan, NULL) == AVO_OK);
        int fd = open(lock_path, O_RDWR);
        CHECK(fd >= 0 && prof_lock(fd, 1, 0, dir, NULL) == AVO_OK);
        a = NULL;
        /* Were open to insist on the lock it would fail as busy: the lock stays held throughout. */
        CHECK_OK(avo_profile_store_open(dir, &a, &err), &err);
        CHECK(access(orphan, F_OK) == 0);
        avo_profile_store_close(a);
        prof_unlock(fd);
        if (fd >= 0) close(fd);
        a = NULL;
        CHECK_OK(avo_profile_store_open(dir, &a, &err), &err);
        CHECK(access(orphan, F_OK) != 0);
        avo_profile_store_close(a);
    }

    /* Several processes writing and reading at once: every profile must stay whole. */
    enum { WORKERS = 3, ROUNDS = 12 };
    pid_t pids[WORKERS];
    for (int w = 0; w < WORKERS; w++) {
        pids[w] = fork();
        if (pids[w] == 0) {
            avo_profile_store *s = NULL;
            avo_error e;
            int bad = avo_profile_store_open(dir, &s, &e) != AVO_OK;
            for (int r = 0; !bad && r < ROUNDS; r++) {
                char own[32];
                snprintf(own, sizeof own, "worker%d", w);
                bad |= put_version(s, "contended", 100 * w + r, 1, &e) != AVO_OK;
                bad |= put_version(s, own, 100 * w + r, 1, &e) != AVO_OK;
                bad |= !profile_is_version(s, own, 100 * w + r);
                /* Another worker may replace it between get and read_blob (each call is atomic, the pair
                 * is not), so a mismatch is retried; a torn profile would fail every time. */
                int whole = 0;
                for (int tries = 0; !bad && !whole && tries < 50; tries++) {
                    avo_profile_info info;
                    bad |= avo_profile_store_get(s, "contended", &info, &e) != AVO_OK;
                    whole = !bad && profile_is_version_q(s, "contended", info.clip_count, 1);
                }
                bad |= !whole;
                if (r % 4 == 1) bad |= avo_profile_store_delete(s, own, &e) != AVO_OK;
            }
            if (bad) fprintf(stderr, "worker %d: %s\n", w, e.message);
            avo_profile_store_close(s);
            _exit(bad ? 1 : 0);
        }
    }
    for (int w = 0; w < WORKERS; w++) {
        int status = 0;
        waitpid(pids[w], &status, 0);
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker %d failed (status %d)", w, status);
    }
    a = NULL;
    CHECK_OK(avo_profile_store_open(dir, &a, &err), &err);
    if (!a) return;
    avo_profile_info *all = NULL;
    size_t n = 0;
    CHECK_OK(avo_profile_store_list(a, &all, &n, &err), &err);
    CHECK_MSG(n == WORKERS + 1, "%zu profiles after concurrent writers", n);
    for (size_t i = 0; i < n; i++) CHECK_MSG(profile_is_version(a, all[i].name, all[i].clip_count), "%s", all[i].name);
    CHECK(count_data_folders(dir) == (int)n);
    free(all);
    avo_profile_store_close(a);
}

/* ---- crash atomicity ------------------------------------------------------------------------- */

/* What a crash at a step must leave: the old version (or nothing) before the commit, the new after. */
typedef struct crash_case {
    const char *step;
    int committed;
} crash_case;

static const crash_case PUT_STEPS[] = {
    {"put-start", 0},         {"put-tmp-created", 0}, {"put-blob-partial", 0},       {"put-blobs-synced", 0},
    {"put-renamed", 0},       {"put-in-txn", 0},      {"put-committed", 1},          {"put-old-partly-removed", 1},
    {"put-done", 1},
};
static const crash_case DELETE_STEPS[] = {
    {"delete-in-txn", 0}, {"delete-committed", 1}, {"delete-partly-removed", 1}, {"delete-done", 1}};

enum { OP_PUT_NEW, OP_REPLACE, OP_DELETE };

/* Forks a child that runs `op` with the crash hook set to `step`; returns 1 if the hook killed it. */
static int run_crashing_child(const char *dir, int op, const char *step) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("AVO_PROFILES_CRASH_AT", step, 1);
        avo_profile_store *s = NULL;
        avo_error e;
        if (avo_profile_store_open(dir, &s, &e) != AVO_OK) _exit(2);
        avo_status st = op == OP_DELETE ? avo_profile_store_delete(s, "victim", &e)
                                        : put_version(s, "victim", 2, op == OP_REPLACE, &e);
        _exit(st == AVO_OK ? 0 : 3); /* reaching here means the hook did not fire */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

static void crash_one(int op, const crash_case *c) {
    static const char *op_names[] = {"put-new", "replace", "delete"};
    char dir[700];
    fresh_dir(dir, sizeof dir, "crash");
    avo_profile_store *s = NULL;
    avo_error err;
    CHECK_OK(avo_profile_store_open(dir, &s, &err), &err);
    if (!s) return;
    CHECK_OK(put_version(s, "bystander", 7, 0, &err), &err);
    if (op != OP_PUT_NEW) CHECK_OK(put_version(s, "victim", 1, 0, &err), &err);
    avo_profile_store_close(s);

    int killed = run_crashing_child(dir, op, c->step);
    CHECK_MSG(killed, "%s: the child was not killed at step %s", op_names[op], c->step);

    s = NULL;
    CHECK_OK(avo_profile_store_open(dir, &s, &err), &err);
    if (!s) return;
    avo_profile_info info;
    avo_status st = avo_profile_store_get(s, "victim", &info, &err);
    if (op == OP_DELETE || (op == OP_PUT_NEW && !c->committed)) {
        int want_gone = op == OP_DELETE ? c->committed : 1;
        if (want_gone) CHECK_MSG(st == AVO_ERR_NOT_FOUND, "%s at %s: victim still there", op_names[op], c->step);
        else CHECK_MSG(profile_is_version(s, "victim", 1), "%s at %s: old profile not whole", op_names[op], c->step);
    } else {
        int want = c->committed ? 2 : 1;
        CHECK_MSG(profile_is_version(s, "victim", want), "%s at %s: want version %d whole", op_names[op], c->step,
                  want);
    }
    CHECK_MSG(profile_is_version(s, "bystander", 7), "%s at %s: bystander damaged", op_names[op], c->step);
    /* No leftovers: the reopen removed temporary and orphaned folders. */
    int folders = count_data_folders(dir);
    CHECK_MSG(folders == (int)count_profiles(s), "%s at %s: %d data folders for %zu profiles", op_names[op], c->step,
              folders, count_profiles(s));
    /* And the store still works after the crash. */
    CHECK_OK(put_version(s, "victim", 3, 1, &err), &err);
    CHECK(profile_is_version(s, "victim", 3));
    avo_profile_store_close(s);
}

static void test_crash_atomicity(void) {
    for (size_t i = 0; i < sizeof PUT_STEPS / sizeof *PUT_STEPS; i++) {
        crash_one(OP_REPLACE, &PUT_STEPS[i]);
        if (strcmp(PUT_STEPS[i].step, "put-old-partly-removed") != 0) crash_one(OP_PUT_NEW, &PUT_STEPS[i]);
    }
    for (size_t i = 0; i < sizeof DELETE_STEPS / sizeof *DELETE_STEPS; i++) crash_one(OP_DELETE, &DELETE_STEPS[i]);
}

/* Crashes inside SQLite itself: a VFS shim, installed as the default VFS only in the forked child,
 * kills the child just before or just after its k-th write, sync or truncate of any database file
 * (profiles.db, its WAL). Every k up to the number such events an operation makes is tried. */
typedef struct shim_file {
    sqlite3_file base;
    sqlite3_file *real; /* allocated right after this struct */
} shim_file;

static sqlite3_vfs *shim_real;
static long shim_events, shim_kill_at; /* kill points are numbered 1..2*events: before, after */
static const char *shim_count_path;

static void shim_event(int after) {
    if (!after) shim_events++;
    if (2 * shim_events - (after ? 0 : 1) == shim_kill_at) kill(getpid(), SIGKILL);
}

static int shim_close(sqlite3_file *f) {
    shim_file *p = (shim_file *)f;
    return p->real->pMethods ? p->real->pMethods->xClose(p->real) : SQLITE_OK;
}
static int shim_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o) {
    shim_file *p = (shim_file *)f;
    return p->real->pMethods->xRead(p->real, b, n, o);
}
static int shim_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o) {
    shim_file *p = (shim_file *)f;
    shim_event(0);
    int rc = p->real->pMethods->xWrite(p->real, b, n, o);
    shim_event(1);
    return rc;
}
static int shim_truncate(sqlite3_file *f, sqlite3_int64 size) {
    shim_file *p = (shim_file *)f;
    shim_event(0);
    int rc = p->real->pMethods->xTruncate(p->real, size);
    shim_event(1);
    return rc;
}
static int shim_sync(sqlite3_file *f, int flags) {
    shim_file *p = (shim_file *)f;
    shim_event(0);
    int rc = p->real->pMethods->xSync(p->real, flags);
    shim_event(1);
    return rc;
}
static int shim_size(sqlite3_file *f, sqlite3_int64 *size) {
    return ((shim_file *)f)->real->pMethods->xFileSize(((shim_file *)f)->real, size);
}
static int shim_lock(sqlite3_file *f, int l) { return ((shim_file *)f)->real->pMethods->xLock(((shim_file *)f)->real, l); }
static int shim_unlock(sqlite3_file *f, int l) {
    return ((shim_file *)f)->real->pMethods->xUnlock(((shim_file *)f)->real, l);
}
static int shim_check_lock(sqlite3_file *f, int *out) {
    return ((shim_file *)f)->real->pMethods->xCheckReservedLock(((shim_file *)f)->real, out);
}
static int shim_control(sqlite3_file *f, int op, void *arg) {
    return ((shim_file *)f)->real->pMethods->xFileControl(((shim_file *)f)->real, op, arg);
}
static int shim_sector(sqlite3_file *f) { return ((shim_file *)f)->real->pMethods->xSectorSize(((shim_file *)f)->real); }
static int shim_caps(sqlite3_file *f) {
    return ((shim_file *)f)->real->pMethods->xDeviceCharacteristics(((shim_file *)f)->real);
}
static int shim_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **pp) {
    return ((shim_file *)f)->real->pMethods->xShmMap(((shim_file *)f)->real, pg, sz, extend, pp);
}
static int shim_shm_lock(sqlite3_file *f, int off, int n, int flags) {
    return ((shim_file *)f)->real->pMethods->xShmLock(((shim_file *)f)->real, off, n, flags);
}
static void shim_shm_barrier(sqlite3_file *f) { ((shim_file *)f)->real->pMethods->xShmBarrier(((shim_file *)f)->real); }
static int shim_shm_unmap(sqlite3_file *f, int del) {
    return ((shim_file *)f)->real->pMethods->xShmUnmap(((shim_file *)f)->real, del);
}

static const sqlite3_io_methods SHIM_METHODS = {
    2, shim_close, shim_read, shim_write, shim_truncate, shim_sync, shim_size, shim_lock, shim_unlock,
    shim_check_lock, shim_control, shim_sector, shim_caps, shim_shm_map, shim_shm_lock, shim_shm_barrier,
    shim_shm_unmap, NULL, NULL};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags) {
    (void)vfs;
    shim_file *p = (shim_file *)f;
    p->real = (sqlite3_file *)(p + 1);
    int rc = shim_real->xOpen(shim_real, name, p->real, flags, out_flags);
    p->base.pMethods = p->real->pMethods ? &SHIM_METHODS : NULL;
    return rc;
}
static int shim_delete(sqlite3_vfs *v, const char *n, int sync) {
    (void)v;
    return shim_real->xDelete(shim_real, n, sync);
}
static int shim_access(sqlite3_vfs *v, const char *n, int flags, int *out) {
    (void)v;
    return shim_real->xAccess(shim_real, n, flags, out);
}
static int shim_full(sqlite3_vfs *v, const char *n, int size, char *out) {
    (void)v;
    return shim_real->xFullPathname(shim_real, n, size, out);
}
static int shim_random(sqlite3_vfs *v, int n, char *out) {
    (void)v;
    return shim_real->xRandomness(shim_real, n, out);
}
static int shim_sleep(sqlite3_vfs *v, int us) {
    (void)v;
    return shim_real->xSleep(shim_real, us);
}
static int shim_time(sqlite3_vfs *v, double *t) {
    (void)v;
    return shim_real->xCurrentTime(shim_real, t);
}
static int shim_last_error(sqlite3_vfs *v, int n, char *buf) {
    (void)v;
    return shim_real->xGetLastError(shim_real, n, buf);
}
static int shim_time64(sqlite3_vfs *v, sqlite3_int64 *t) {
    (void)v;
    return shim_real->xCurrentTimeInt64(shim_real, t);
}

static void shim_install(long kill_at) {
    static sqlite3_vfs shim;
    shim_real = sqlite3_vfs_find(NULL);
    memset(&shim, 0, sizeof shim);
    shim.iVersion = 2;
    shim.szOsFile = (int)sizeof(shim_file) + shim_real->szOsFile;
    shim.mxPathname = shim_real->mxPathname;
    shim.zName = "avo-crash-shim";
    shim.xOpen = shim_open;
    shim.xDelete = shim_delete;
    shim.xAccess = shim_access;
    shim.xFullPathname = shim_full;
    shim.xRandomness = shim_random;
    shim.xSleep = shim_sleep;
    shim.xCurrentTime = shim_time;
    shim.xGetLastError = shim_last_error;
    shim.xCurrentTimeInt64 = shim_time64;
    shim_events = 0;
    shim_kill_at = kill_at;
    sqlite3_vfs_register(&shim, 1);
}

/* Runs op in a child under the shim. Returns the child's SQLite event count (kill_at 0: just count),
 * or -1 if it was killed. */
static long run_shim_child(const char *dir, int op, long kill_at) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        shim_install(kill_at);
        avo_profile_store *s = NULL;
        avo_error e;
        if (avo_profile_store_open(dir, &s, &e) != AVO_OK) _exit(2);
        shim_events = 0; /* count only the operation itself, not opening */
        avo_status st = op == OP_DELETE ? avo_profile_store_delete(s, "victim", &e)
                                        : put_version(s, "victim", 2, op == OP_REPLACE, &e);
        avo_profile_store_close(s); /* the WAL checkpoint on close is crashed into too */
        FILE *f = fopen(shim_count_path, "w");
        if (f) fprintf(f, "%ld\n", shim_events), fclose(f);
        _exit(st == AVO_OK ? 0 : 3);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) return -1;
    long n = -2;
    FILE *f = fopen(shim_count_path, "r");
    if (f && fscanf(f, "%ld", &n) != 1) n = -2;
    if (f) fclose(f);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? n : -2;
}

static void test_crash_inside_sqlite(void) {
    static const char *op_names[] = {"put-new", "replace", "delete"};
    static char count_path[700];
    snprintf(count_path, sizeof count_path, "%s/shim-count.txt", tmpdir);
    shim_count_path = count_path;
    /* put-new runs the same SQLite statements as replace; replace and delete cover them all. */
    for (int op = OP_REPLACE; op <= OP_DELETE; op++) {
        long events = -1, tried = 0;
        for (long k = 0; k == 0 || k <= 2 * events; k++) {
            char dir[700];
            fresh_dir(dir, sizeof dir, "crash-sqlite");
            avo_profile_store *s = NULL;
            avo_error err;
            CHECK_OK(avo_profile_store_open(dir, &s, &err), &err);
            if (!s) return;
            if (op != OP_PUT_NEW) CHECK_OK(put_version(s, "victim", 1, 0, &err), &err);
            avo_profile_store_close(s);

            long r = run_shim_child(dir, op, k);
            if (k == 0) {
                events = r;
                CHECK_MSG(events >= 2, "%s: counted %ld SQLite write/sync events", op_names[op], events);
                if (events < 2) break;
            } else {
                CHECK_MSG(r == -1, "%s: child not killed at SQLite event point %ld", op_names[op], k);
                tried++;
            }
            s = NULL;
            CHECK_OK(avo_profile_store_open(dir, &s, &err), &err);
            if (!s) return;
            avo_profile_info info;
            avo_status st = avo_profile_store_get(s, "victim", &info, &err);
            int old_ok = op == OP_PUT_NEW ? st == AVO_ERR_NOT_FOUND : profile_is_version_q(s, "victim", 1, 1);
            int new_ok = op == OP_DELETE ? st == AVO_ERR_NOT_FOUND : profile_is_version_q(s, "victim", 2, 1);
            if (k == 0) CHECK_MSG(new_ok, "%s without a crash did not complete", op_names[op]);
            else CHECK_MSG(old_ok || new_ok, "%s killed at SQLite event point %ld: neither old nor new whole",
                           op_names[op], k);
            CHECK_MSG(count_data_folders(dir) == (int)count_profiles(s), "%s at SQLite point %ld: leftovers",
                      op_names[op], k);
            avo_profile_store_close(s);
        }
        if (getenv("AVO_TEST_VERBOSE"))
            fprintf(stderr, "%s: %ld SQLite events, %ld kill points tried\n", op_names[op], events, tried);
    }
}

/* ---- clip validation ------------------------------------------------------------------------ */

static avo_status validate(const avo_audio *a, const char *name, avo_clip_report *r, avo_error *err) {
    avo_error_clear(err);
    return avo_profile_validate_clip(a, name, r, err);
}

static void test_real_clips_pass(void) {
    const char *dirs[] = {"singing", "speech"};
    const char *data = avo_test_data_dir();
    int seen = 0, male = 0, female = 0;
    for (int d = 0; d < 2; d++) {
        char dir[700];
        snprintf(dir, sizeof dir, "%s/%s", data, dirs[d]);
        DIR *dh = opendir(dir);
        CHECK_MSG(dh != NULL, "cannot open %s (set AVO_TEST_DATA)", dir);
        if (!dh) continue;
        struct dirent *e;
        while ((e = readdir(dh)) != NULL) {
            size_t n = strlen(e->d_name);
            if (n < 6 || strcmp(e->d_name + n - 5, ".flac") != 0) continue;
            char path[1200];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            avo_audio a;
            avo_error err;
            avo_clip_report r;
            CHECK_OK(avo_audio_read(path, &a, &err), &err);
            if (err.code) continue;
            avo_status st = validate(&a, path, &r, &err);
            CHECK_MSG(st == AVO_OK && r.usable, "%s rejected: %s", path, err.message);
            CHECK_MSG(r.snr_db >= 20.0 || r.warning[0], "%s: SNR %.1f without a warning", path, r.snr_db);
            CHECK_NEAR(r.duration_seconds, (double)a.frames / a.sample_rate, 1e-9);
            CHECK(r.sample_rate == a.sample_rate && r.clipped_fraction < 0.001);
            CHECK_MSG(r.voiced_seconds > 0.1 && r.voiced_seconds < r.duration_seconds, "%s voiced %.2f of %.2f s", path,
                      r.voiced_seconds, r.duration_seconds);
            /* Inside the estimator's range only: the fast estimator halves some low, creaky male voices
             * (LibriSpeech speaker 2609: about 63 Hz, where a plain YIN over 50-1100 Hz finds 109-117 Hz). */
            CHECK_MSG(r.f0_median_hz > 50 && r.f0_median_hz < 700, "%s F0 median %.1f", path, r.f0_median_hz);
            /* The NUS-48E singers' sex is documented: male medians sit well below female ones. */
            static const char *males[] = {"JLEE", "JTAN", "KENN", "SAMF", "VKOW", "ZHIY"};
            static const char *females[] = {"ADIZ", "MCUR", "MPOL", "MPUR", "NJAT", "PMAR"};
            for (int k = 0; k < 6; k++) {
                if (strstr(e->d_name, males[k])) {
                    male++;
                    CHECK_MSG(r.f0_median_hz < 250, "%s (male) F0 median %.1f", path, r.f0_median_hz);
                }
                if (strstr(e->d_name, females[k])) {
                    female++;
                    CHECK_MSG(r.f0_median_hz > 250, "%s (female) F0 median %.1f", path, r.f0_median_hz);
                }
            }
            if (getenv("AVO_TEST_VERBOSE"))
                fprintf(stderr, "%-32s voiced %5.2f/%5.2f s  F0 %6.1f Hz  SNR %5.1f dB  %s\n", e->d_name, r.voiced_seconds,
                        r.duration_seconds, r.f0_median_hz, r.snr_db, r.warning);
            seen++;
            avo_audio_free(&a);
        }
        closedir(dh);
    }
    CHECK_MSG(seen >= 40 && male >= 10 && female >= 10, "only %d real clips (%d male, %d female)", seen, male, female);
}

/* A voice-like test signal: harmonic tone at f0 with a slow vibrato, in notes separated by pauses. */
static void make_sung_tone(avo_audio *a, int rate, double f0, double seconds, double *toned_seconds) {
    avo_audio_alloc(a, rate, 1, (int64_t)(seconds * rate), NULL);
    float *x = a->samples;
    double phase = 0.0;
    *toned_seconds = 0.0;
    for (int64_t i = 0; i < a->frames; i++) {
        double t = (double)i / rate;
        double in_note = fmod(t, 1.0) < 0.7 ? 1.0 : 0.0; /* 0.7 s notes, 0.3 s rests */
        *toned_seconds += in_note / rate;
        double f = f0 * (1.0 + 0.01 * sin(2 * M_PI * 5.0 * t));
        phase += 2 * M_PI * f / rate;
        double v = 0.0;
        for (int h = 1; h <= 8; h++) v += sin(h * phase) / h;
        x[i] = (float)(0.25 * in_note * v);
    }
}

static uint32_t rng_state = 12345u;
static double gauss(void) { /* Box-Muller on xorshift, reproducible */
    double u[2];
    for (int k = 0; k < 2; k++) {
        rng_state ^= rng_state << 13, rng_state ^= rng_state >> 17, rng_state ^= rng_state << 5;
        u[k] = (rng_state + 1.0) / 4294967297.0;
    }
    return sqrt(-2.0 * log(u[0])) * cos(2 * M_PI * u[1]);
}

static double voiced_rms(const avo_audio *a) {
    double e = 0.0;
    int64_t n = 0;
    for (int64_t i = 0; i < a->frames; i++)
        if (fabsf(a->samples[i]) > 1e-6f) e += (double)a->samples[i] * a->samples[i], n++;
    return n ? sqrt(e / (double)n) : 0.0;
}

static void test_synthetic_clips(void) {
    avo_audio tone, bad;
    avo_clip_report r;
    avo_error err;
    double toned = 0.0;
    make_sung_tone(&tone, 44100, 220.0, 6.0, &toned);

    /* Known truth: F0 and voiced duration of the clean tone. */
    CHECK_OK(validate(&tone, "tone.wav", &r, &err), &err);
    CHECK_NEAR(r.f0_median_hz, 220.0, 220.0 * 0.03);
    CHECK_NEAR(r.voiced_seconds, toned, 0.5);
    CHECK_MSG(r.snr_db > 40, "clean tone SNR %.1f", r.snr_db);
    CHECK(r.warning[0] == '\0' && r.usable);

    /* A note held without any pause: nothing to measure noise from, so not rejected for noise. */
    CHECK_OK(avo_audio_copy(&tone, &bad, &err), &err);
    double phase = 0.0;
    for (int64_t i = 0; i < bad.frames; i++) {
        phase += 2 * M_PI * 220.0 * (1.0 + 0.01 * sin(2 * M_PI * 5.0 * i / 44100.0)) / 44100.0;
        double swell = 0.8 + 0.2 * sin(2 * M_PI * 0.5 * i / 44100.0); /* only 4 dB of level change */
        bad.samples[i] = (float)(0.25 * (sin(phase) + 0.5 * sin(2 * phase)) * swell);
    }
    avo_status st = validate(&bad, "held.wav", &r, &err);
    CHECK_MSG(st == AVO_OK && r.voiced_seconds > 5.0, "held note: %s (voiced %.2f, SNR %.1f)", err.message,
              r.voiced_seconds, r.snr_db);
    avo_audio_free(&bad);

    /* A real phrase cut out of a song, no silence around it, must pass too. */
    char path[1200];
    snprintf(path, sizeof path, "%s/singing/nus48e_KENN_04.flac", avo_test_data_dir());
    avo_audio song;
    if (avo_audio_read(path, &song, &err) == AVO_OK) {
        avo_audio cut = song;
        int64_t start = (int64_t)(2.0 * song.sample_rate);
        cut.frames = 3 * song.sample_rate; /* 2-5 s: a view into the mono buffer */
        cut.samples = song.samples + start;
        st = validate(&cut, "phrase.wav", &r, &err);
        CHECK_MSG(st == AVO_OK, "3 s phrase rejected: %s (SNR %.1f, voiced %.2f)", err.message, r.snr_db,
                  r.voiced_seconds);
        avo_audio_free(&song);
    }

    /* 8 kHz: rejected, report still filled. */
    CHECK_OK(avo_audio_resample(&tone, 8000, &bad, &err), &err);
    st = validate(&bad, "phone.wav", &r, &err);
    CHECK_MSG(st == AVO_ERR_VALIDATION && strstr(err.message, "phone.wav") && strstr(err.message, "16 kHz"), "%s",
              err.message);
    CHECK(!r.usable && r.sample_rate == 8000 && fabs(r.duration_seconds - 6.0) < 0.01);
    CHECK_MSG(fabs(r.f0_median_hz - 220.0) < 10.0 && r.voiced_seconds > 2.0, "8 kHz report: F0 %.1f voiced %.2f",
              r.f0_median_hz, r.voiced_seconds);
    avo_audio_free(&bad);

    /* Silent: all zeros, and a -80 dBFS hiss. */
    avo_audio_alloc(&bad, 44100, 2, 44100 * 3, NULL);
    st = validate(&bad, "zeros.wav", &r, &err);
    CHECK_MSG(st == AVO_ERR_VALIDATION && strstr(err.message, "zeros.wav") && strstr(err.message, "silent"), "%s",
              err.message);
    CHECK(!r.usable && r.voiced_seconds == 0.0 && r.f0_median_hz == 0.0 && fabs(r.duration_seconds - 3.0) < 1e-9);
    for (int64_t i = 0; i < bad.frames * 2; i++) bad.samples[i] = (float)(1e-4 * 0.3 * gauss());
    st = validate(&bad, "hiss.wav", &r, &err);
    CHECK_MSG(st == AVO_ERR_VALIDATION && strstr(err.message, "silent"), "%s", err.message);
    avo_audio_free(&bad);

    /* Clipping: hard-clipped after 12 dB too much gain -> rejected; a few full-scale clicks -> warning. */
    CHECK_OK(avo_audio_copy(&tone, &bad, &err), &err);
    for (int64_t i = 0; i < bad.frames; i++) {
        float v = 4.0f * bad.samples[i];
        bad.samples[i] = v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v;
    }
    st = validate(&bad, "hot.wav", &r, &err);
    CHECK_MSG(st == AVO_ERR_VALIDATION && strstr(err.message, "hot.wav") && strstr(err.message, "clipped") &&
                  strstr(err.message, "gain"),
              "%s", err.message);
    CHECK_MSG(r.clipped_fraction > 0.01 && !r.usable, "clipped fraction %.4f", r.clipped_fraction);
    /* The same take turned down 6 dB afterwards: the flat tops still give it away. */
    const double hot_fraction = r.clipped_fraction;
    for (int64_t i = 0; i < bad.frames; i++) bad.samples[i] *= 0.5f;
    st = validate(&bad, "hot-normalised.wav", &r, &err);
    CHECK_MSG(st == AVO_ERR_VALIDATION && strstr(err.message, "clipped"), "turned-down clipping: %s", err.message);
    CHECK_NEAR(r.clipped_fraction, hot_fraction, 0.002);
    avo_audio_free(&bad);
    CHECK_OK(avo_audio_copy(&tone, &bad, &err), &err);
    int64_t clicks = 0;
    for (int64_t i = 0; i < bad.frames; i += 300) bad.samples[i] = (i / 300) % 2 ? 1.0f : -1.0f, clicks++;
    st = validate(&bad, "clicks.wav", &r, &err);
    CHECK_MSG(st == AVO_OK && strstr(r.warning, "clipping"), "%s / warning '%s'", err.message, r.warning);
    CHECK_NEAR(r.clipped_fraction, (double)clicks / (double)bad.frames, 1e-6);
    avo_audio_free(&bad);

    /* Noise: white noise at 0 dB under the voice -> rejected; at 40 dB -> fine; noise alone -> rejected. */
    const double rms = voiced_rms(&tone);
    const double levels_db[] = {0.0, 40.0};
    for (int k = 0; k < 2; k++) {
        CHECK_OK(avo_audio_copy(&tone, &bad, &err), &err);
        double g = rms * pow(10.0, -levels_db[k] / 20.0);
        for (int64_t i = 0; i < bad.frames; i++) bad.samples[i] += (float)(g * gauss());
        st = validate(&bad, "noisy.wav", &r, &err);
        if (k == 0)
            CHECK_MSG(st == AVO_ERR_VALIDATION && strstr(err.message, "noisy.wav") && strstr(err.message, "noisy") &&
                          r.snr_db < 10.0,
                      "0 dB noise: SNR %.1f, %s", r.snr_db, err.message);
        else
            CHECK_MSG(st == AVO_OK && r.snr_db > 30.0 && !r.warning[0], "40 dB noise: SNR %.1f, %s %s", r.snr_db,
                      err.message, r.warning);
        avo_audio_free(&bad);
    }
    avo_audio_alloc(&bad, 44100, 1, 44100 * 4, NULL);
    for (int64_t i = 0; i < bad.frames; i++) bad.samples[i] = (float)(0.1 * gauss());
    st = validate(&bad, "static.wav", &r, &err);
    CHECK_MSG(st == AVO_ERR_VALIDATION && strstr(err.message, "static.wav"), "noise alone: %s", err.message);
    CHECK_MSG(r.snr_db < 10.0, "noise alone: SNR %.1f", r.snr_db);
    avo_audio_free(&bad);

    /* Non-finite and empty input. */
    CHECK_OK(avo_audio_copy(&tone, &bad, &err), &err);
    bad.samples[1000] = NAN;
    CHECK(validate(&bad, "nan.wav", &r, &err) == AVO_ERR_INVALID_AUDIO && strstr(err.message, "nan.wav"));
    avo_audio_free(&bad);
    avo_audio empty = {44100, 1, 0, NULL};
    CHECK(validate(&empty, "empty.wav", &r, &err) == AVO_ERR_INVALID_AUDIO && !r.usable);
    avo_audio_free(&tone);
}

/* Runs one group of tests; with AVO_TEST_VERBOSE set, says how long it took (no timing assertions). */
static void run_timed(const char *name, void (*fn)(void)) {
    double t0 = avo_now_ms();
    fn();
    if (getenv("AVO_TEST_VERBOSE")) fprintf(stderr, "%-28s %8.0f ms\n", name, avo_now_ms() - t0);
}

int main(void) {
    avo_test_tmp_dir("test_profiles", tmpdir, sizeof tmpdir);
    unsetenv("AVO_PROFILES_CRASH_AT");
    run_timed("names", test_names);
    run_timed("round trip", test_round_trip);
    run_timed("default dir", test_default_dir);
    run_timed("corrupt and unwritable", test_corrupt_and_unwritable);
    run_timed("two stores, processes", test_two_stores_same_dir);
    run_timed("crash at store steps", test_crash_atomicity);
    run_timed("crash inside SQLite", test_crash_inside_sqlite);
    run_timed("real clips", test_real_clips_pass);
    run_timed("synthetic clips", test_synthetic_clips);
    TEST_MAIN_END();
}
