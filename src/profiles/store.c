/* The profile store: metadata rows in SQLite (profiles.db), analysis data as files in one folder per
 * profile generation (profiles/<name>.<generation>/).
 *
 * Atomicity rests on one rule: a row only ever points at a folder that was completely written and
 * synced before the transaction that made the row point at it. A put therefore writes a fresh folder
 * under a temporary name, syncs it, renames it to its final name, commits the row, and only then
 * removes the previous generation. Any folder no row points at is garbage, removed on the next open.
 * A store-wide flock serialises writers across processes (and across stores in one process);
 * readers take it shared so that they never see a folder vanish under them. */
#include "profiles_internal.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Sized so that every path built below provably fits (no silent truncation). */
#define STORE_PATH_MAX 4096
#define STORE_DIR_MAX 3000        /* the store folder */
#define STORE_SUB_MAX 3100        /* the store folder plus "/profiles.db" or "/profiles" */
#define STORE_REL_MAX 128         /* "<name>.<generation>", the data folder inside profiles/ */
#define STORE_LOCK_TIMEOUT_MS 30000
#define STORE_BUSY_TIMEOUT_MS 30000
#define STORE_SCHEMA_VERSION 1

struct avo_profile_store {
    char dir[STORE_DIR_MAX];
    char db_path[STORE_SUB_MAX];
    char data_root[STORE_SUB_MAX]; /* dir/profiles */
    sqlite3 *db;
    int lock_fd;
};

static const char SCHEMA_SQL[] =
    "CREATE TABLE IF NOT EXISTS profiles("
    " name TEXT PRIMARY KEY NOT NULL,"
    " kind TEXT NOT NULL,"
    " created_unix INTEGER NOT NULL,"
    " clip_count INTEGER NOT NULL,"
    " sample_rate INTEGER NOT NULL,"
    " total_seconds REAL, voiced_seconds REAL,"
    " f0_median_hz REAL, f0_low_hz REAL, f0_high_hz REAL,"
    " snr_db REAL,"
    " sources TEXT NOT NULL, model_path TEXT NOT NULL, warnings TEXT NOT NULL,"
    " data_dir TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS store_meta(key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO store_meta(key, value) VALUES('next_generation', 1);";

/* Column order shared by SELECT and INSERT. */
#define PROFILE_COLUMNS                                                                                    \
    "name, kind, created_unix, clip_count, sample_rate, total_seconds, voiced_seconds, f0_median_hz, "   \
    "f0_low_hz, f0_high_hz, snr_db, sources, model_path, warnings, data_dir"

/* ---- errors ---------------------------------------------------------------------------------- */

static avo_status db_error(const avo_profile_store *s, int rc, const char *what, avo_error *err) {
    const char *msg = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return avo_error_set(err, AVO_ERR_FORMAT,
                             "profile database %s is damaged (%s while %s); move the whole store aside (mv %s "
                             "%s.bad, which keeps its data for recovery) and create the profiles again, or restore "
                             "profiles.db from a backup",
                             s->db_path, msg, what, s->dir, s->dir);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return avo_error_set(err, AVO_ERR_IO,
                             "profile database %s stayed busy while %s (another autovoice process is using it); "
                             "try again when it has finished",
                             s->db_path, what);
    case SQLITE_FULL:
        return avo_error_set(err, AVO_ERR_IO, "disk full while %s in %s; free some space and try again", what,
                             s->db_path);
    case SQLITE_NOMEM: return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory while %s", what);
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_IOERR:
    case SQLITE_AUTH:
        return avo_error_set(err, AVO_ERR_IO,
                             "cannot use profile database %s (%s while %s); check that the folder %s is writable "
                             "or choose another with --store DIR",
                             s->db_path, msg, what, s->dir);
    default:
        return avo_error_set(err, AVO_ERR_INTERNAL, "profile database %s: %s while %s", s->db_path, msg, what);
    }
}

static avo_status not_found(const avo_profile_store *s, const char *name, avo_error *err) {
    return avo_error_set(err, AVO_ERR_NOT_FOUND,
                         "no profile named '%s' in %s; see the available profiles with 'autovoice profile list'",
                         name, s->dir);
}

static avo_status bad_name(const char *name, avo_error *err) {
    return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                         "'%s' is not a valid profile name: use 1-63 letters, digits, '_' or '-', not starting "
                         "with '-'",
                         name ? name : "(null)");
}

int avo_profile_name_is_valid(const char *name) {
    if (!name || !name[0] || name[0] == '-') return 0;
    size_t n = 0;
    for (const char *c = name; *c; c++, n++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
                 *c == '-';
        if (!ok || n + 1 >= AVO_PROFILE_NAME_MAX) return 0;
    }
    return 1;
}

/* ---- small SQLite helpers -------------------------------------------------------------------- */

static avo_status exec_sql(avo_profile_store *s, const char *sql, const char *what, avo_error *err) {
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? AVO_OK : db_error(s, rc, what, err);
}

static avo_status prepare(avo_profile_store *s, const char *sql, sqlite3_stmt **st, const char *what,
                          avo_error *err) {
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? AVO_OK : db_error(s, rc, what, err);
}

static void rollback(avo_profile_store *s) {
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static void copy_text(char *dst, size_t cap, const unsigned char *src) {
    snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

/* Reads the data folder of `name` into rel (empty if there is no such profile). */
static avo_status find_data_dir(avo_profile_store *s, const char *name, char *rel, size_t cap, avo_error *err) {
    sqlite3_stmt *st = NULL;
    rel[0] = '\0';
    avo_status rc = prepare(s, "SELECT data_dir FROM profiles WHERE name = ?1", &st, "looking up a profile", err);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) copy_text(rel, cap, sqlite3_column_text(st, 0));
    else if (r != SQLITE_DONE) rc = db_error(s, r, "looking up a profile", err);
    sqlite3_finalize(st);
    return rc;
}

static void row_to_info(sqlite3_stmt *st, avo_profile_info *p) {
    memset(p, 0, sizeof *p);
    copy_text(p->name, sizeof p->name, sqlite3_column_text(st, 0));
    copy_text(p->kind, sizeof p->kind, sqlite3_column_text(st, 1));
    p->created_unix = sqlite3_column_int64(st, 2);
    p->clip_count = sqlite3_column_int(st, 3);
    p->sample_rate = sqlite3_column_int(st, 4);
    p->total_seconds = sqlite3_column_double(st, 5);
    p->voiced_seconds = sqlite3_column_double(st, 6);
    p->f0_median_hz = sqlite3_column_double(st, 7);
    p->f0_low_hz = sqlite3_column_double(st, 8);
    p->f0_high_hz = sqlite3_column_double(st, 9);
    p->snr_db = sqlite3_column_double(st, 10);
    copy_text(p->sources, sizeof p->sources, sqlite3_column_text(st, 11));
    copy_text(p->model_path, sizeof p->model_path, sqlite3_column_text(st, 12));
    copy_text(p->warnings, sizeof p->warnings, sqlite3_column_text(st, 13));
}

/* ---- open / close ---------------------------------------------------------------------------- */

static avo_status default_dir(char *out, size_t cap, avo_error *err) {
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    /* The XDG spec says relative values are invalid and must be ignored. */
    if (xdg && xdg[0] == '/') snprintf(out, cap, "%s/autovoice", xdg);
    else if (home && home[0]) snprintf(out, cap, "%s/.local/share/autovoice", home);
    else
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "cannot find a default profile store: neither XDG_DATA_HOME nor HOME is set; pass "
                             "--store DIR");
    return AVO_OK;
}

/* Opens the database, sets durability and the busy timeout, checks integrity and creates the schema. */
static avo_status open_db(avo_profile_store *s, avo_error *err) {
    int rc = sqlite3_open_v2(s->db_path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) return db_error(s, rc, "opening", err);
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    /* WAL keeps readers and the writer out of each other's way; FULL syncs the WAL on every commit,
     * so a committed put survives a power cut, not only a process crash. */
    avo_status st = exec_sql(s, "PRAGMA journal_mode=WAL", "switching to WAL mode", err);
    if (!st) st = exec_sql(s, "PRAGMA synchronous=FULL", "setting synchronous=FULL", err);
    if (st) return st;

    sqlite3_stmt *q = NULL;
    st = prepare(s, "PRAGMA quick_check", &q, "checking integrity", err);
    if (st) return st;
    int r = sqlite3_step(q);
    char result[256] = "";
    if (r == SQLITE_ROW) copy_text(result, sizeof result, sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    if (r != SQLITE_ROW) return db_error(s, r, "checking integrity", err);
    if (strcmp(result, "ok") != 0)
        return avo_error_set(err, AVO_ERR_FORMAT,
                             "profile database %s is damaged (integrity check: %s); move the whole store aside (mv "
                             "%s %s.bad, which keeps its data for recovery) and create the profiles again, or restore "
                             "profiles.db from a backup",
                             s->db_path, result, s->dir, s->dir);

    int version = 0;
    st = prepare(s, "PRAGMA user_version", &q, "reading the schema version", err);
    if (st) return st;
    if (sqlite3_step(q) == SQLITE_ROW) version = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if (version > STORE_SCHEMA_VERSION)
        return avo_error_set(err, AVO_ERR_FORMAT,
                             "profile database %s was written by a newer AutoVoice (schema %d, this build knows %d); "
                             "upgrade autovoice or use another --store DIR",
                             s->db_path, version, STORE_SCHEMA_VERSION);

    /* Only a new database is written to: opening must leave an existing one byte-identical. */
    if (version == 0) {
        st = exec_sql(s, "BEGIN IMMEDIATE", "creating the schema", err);
        if (!st) st = exec_sql(s, SCHEMA_SQL, "creating the schema", err);
        if (!st) st = exec_sql(s, "PRAGMA user_version=1", "creating the schema", err);
        if (!st) st = exec_sql(s, "COMMIT", "creating the schema", err);
        if (st) {
            rollback(s);
            return st;
        }
    }
    /* A table of the right name but the wrong shape (another program's file, or a damaged schema). */
    if (sqlite3_prepare_v2(s->db, "SELECT " PROFILE_COLUMNS " FROM profiles LIMIT 0", -1, &q, NULL) != SQLITE_OK)
        return avo_error_set(err, AVO_ERR_FORMAT,
                             "profile database %s has an unexpected layout (%s); it was not written by AutoVoice: "
                             "move it aside (mv %s %s.bad) or use another --store DIR",
                             s->db_path, sqlite3_errmsg(s->db), s->db_path, s->db_path);
    sqlite3_finalize(q);
    return AVO_OK;
}

static int name_in_list(const char *name, char **list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0) return 1;
    return 0;
}

/* Removes every entry of profiles/ that no row points at: temporary folders of interrupted puts and
 * old generations whose removal was interrupted. Needs the exclusive lock. */
static avo_status remove_orphans(avo_profile_store *s, avo_error *err) {
    char **keep = NULL;
    size_t n = 0, cap = 0;
    sqlite3_stmt *st = NULL;
    avo_status rc = prepare(s, "SELECT data_dir FROM profiles", &st, "listing data folders", err);
    int r;
    while (!rc && (r = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 16;
            char **grown = realloc(keep, nc * sizeof *keep);
            if (!grown) {
                rc = avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory listing profile folders");
                break;
            }
            keep = grown, cap = nc;
        }
        const unsigned char *t = sqlite3_column_text(st, 0);
        keep[n] = strdup(t ? (const char *)t : "");
        if (!keep[n]) rc = avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory listing profile folders");
        else n++;
    }
    if (!rc && r != SQLITE_DONE) rc = db_error(s, r, "listing data folders", err);
    sqlite3_finalize(st);

    DIR *d = rc ? NULL : opendir(s->data_root);
    if (!rc && !d) rc = avo_error_set(err, AVO_ERR_IO, "cannot read folder %s: %s", s->data_root, strerror(errno));
    int removed = 0;
    struct dirent *e;
    while (d && !rc && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || name_in_list(e->d_name, keep, n))
            continue;
        char path[STORE_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", s->data_root, e->d_name);
        rc = prof_remove_tree(path, NULL, err);
        removed++;
    }
    if (d) closedir(d);
    if (!rc && removed) rc = prof_fsync_dir(s->data_root, err);
    for (size_t i = 0; i < n; i++) free(keep[i]);
    free(keep);
    return rc;
}

avo_status avo_profile_store_open(const char *dir, avo_profile_store **out, avo_error *err) {
    if (!out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_profile_store_open: out is NULL");
    *out = NULL;
    avo_profile_store *s = calloc(1, sizeof *s);
    if (!s) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory opening the profile store");
    s->lock_fd = -1;
    avo_status rc = AVO_OK;
    if (dir && dir[0]) {
        if (strlen(dir) >= STORE_DIR_MAX)
            rc = avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "profile store folder name is too long (%zu bytes)",
                               strlen(dir));
        else snprintf(s->dir, sizeof s->dir, "%s", dir);
    } else {
        rc = default_dir(s->dir, STORE_DIR_MAX, err);
    }
    if (!rc) {
        snprintf(s->db_path, sizeof s->db_path, "%s/profiles.db", s->dir);
        snprintf(s->data_root, sizeof s->data_root, "%s/profiles", s->dir);
        rc = prof_mkdirs(s->dir, err);
    }
    if (!rc && access(s->dir, W_OK) != 0)
        rc = avo_error_set(err, AVO_ERR_IO,
                           "profile store folder %s is not writable (%s); fix its permissions or choose another "
                           "folder with --store DIR",
                           s->dir, strerror(errno));
    if (!rc) {
        char lock_path[STORE_PATH_MAX];
        snprintf(lock_path, sizeof lock_path, "%s/.lock", s->dir);
        s->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (s->lock_fd < 0)
            rc = avo_error_set(err, AVO_ERR_IO,
                               "cannot write to profile store folder %s (%s); fix its permissions or choose another "
                               "folder with --store DIR",
                               s->dir, strerror(errno));
    }
    if (!rc) rc = prof_mkdirs(s->data_root, err);
    /* Cleanup needs the exclusive lock, so that a put running in another process never has its
     * temporary folder removed. If another process holds the lock right now, cleanup is left to a
     * later open rather than waited for; the schema is safe either way (its own transaction). */
    if (!rc) {
        int locked = prof_lock(s->lock_fd, 1, 0, s->dir, NULL) == AVO_OK;
        rc = open_db(s, err);
        if (!rc && locked) rc = remove_orphans(s, err);
        if (locked) prof_unlock(s->lock_fd);
    }
    if (rc) {
        avo_profile_store_close(s);
        return rc;
    }
    *out = s;
    return AVO_OK;
}

void avo_profile_store_close(avo_profile_store *store) {
    if (!store) return;
    if (store->db) sqlite3_close_v2(store->db);
    if (store->lock_fd >= 0) close(store->lock_fd);
    free(store);
}

const char *avo_profile_store_dir(const avo_profile_store *store) { return store ? store->dir : ""; }

/* ---- get / list / read ----------------------------------------------------------------------- */

static avo_status get_locked(avo_profile_store *s, const char *name, avo_profile_info *out, avo_error *err) {
    sqlite3_stmt *st = NULL;
    avo_status rc = prepare(s, "SELECT " PROFILE_COLUMNS " FROM profiles WHERE name = ?1", &st, "reading a profile",
                            err);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(st);
    char rel[STORE_REL_MAX] = "";
    if (r == SQLITE_ROW) {
        row_to_info(st, out);
        copy_text(rel, sizeof rel, sqlite3_column_text(st, 14));
    } else if (r == SQLITE_DONE) {
        rc = not_found(s, name, err);
    } else {
        rc = db_error(s, r, "reading a profile", err);
    }
    sqlite3_finalize(st);
    if (rc) return rc;
    /* Cannot happen through this API; says what to do if someone removed files by hand. */
    char path[STORE_PATH_MAX];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", s->data_root, rel);
    if (!prof_file_name_is_valid(rel) || stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return avo_error_set(err, AVO_ERR_FORMAT,
                             "profile '%s' has lost its data folder %s; delete it with 'autovoice profile delete %s' "
                             "and create it again",
                             name, path, name);
    return AVO_OK;
}

avo_status avo_profile_store_get(avo_profile_store *store, const char *name, avo_profile_info *out, avo_error *err) {
    if (!store || !out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_profile_store_get: NULL argument");
    if (!avo_profile_name_is_valid(name)) return bad_name(name, err);
    avo_status rc = prof_lock(store->lock_fd, 0, STORE_LOCK_TIMEOUT_MS, store->dir, err);
    if (rc) return rc;
    rc = get_locked(store, name, out, err);
    prof_unlock(store->lock_fd);
    return rc;
}

avo_status avo_profile_store_list(avo_profile_store *store, avo_profile_info **out, size_t *count, avo_error *err) {
    if (!store || !out || !count)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_profile_store_list: NULL argument");
    *out = NULL;
    *count = 0;
    avo_status rc = prof_lock(store->lock_fd, 0, STORE_LOCK_TIMEOUT_MS, store->dir, err);
    if (rc) return rc;
    sqlite3_stmt *st = NULL;
    avo_profile_info *all = NULL;
    size_t n = 0, cap = 0;
    rc = prepare(store, "SELECT " PROFILE_COLUMNS " FROM profiles ORDER BY name", &st, "listing profiles", err);
    int r = SQLITE_DONE;
    while (!rc && (r = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 8;
            avo_profile_info *grown = realloc(all, nc * sizeof *all);
            if (!grown) {
                rc = avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory listing profiles");
                break;
            }
            all = grown, cap = nc;
        }
        row_to_info(st, &all[n++]);
    }
    if (!rc && r != SQLITE_DONE) rc = db_error(store, r, "listing profiles", err);
    sqlite3_finalize(st);
    prof_unlock(store->lock_fd);
    if (rc) {
        free(all);
        return rc;
    }
    *out = all;
    *count = n;
    return AVO_OK;
}

avo_status avo_profile_store_read_blob(avo_profile_store *store, const char *name, const char *blob_name,
                                       void **data, size_t *size, avo_error *err) {
    if (!store || !data || !size)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_profile_store_read_blob: NULL argument");
    *data = NULL;
    *size = 0;
    if (!avo_profile_name_is_valid(name)) return bad_name(name, err);
    if (!prof_file_name_is_valid(blob_name))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "'%s' is not a valid profile data file name",
                             blob_name ? blob_name : "(null)");
    avo_status rc = prof_lock(store->lock_fd, 0, STORE_LOCK_TIMEOUT_MS, store->dir, err);
    if (rc) return rc;
    char rel[STORE_REL_MAX];
    rc = find_data_dir(store, name, rel, sizeof rel, err);
    if (!rc && !rel[0]) rc = not_found(store, name, err);
    if (!rc && !prof_file_name_is_valid(rel))
        rc = avo_error_set(err, AVO_ERR_FORMAT,
                           "profile '%s' names a bad data folder '%s' in %s; delete it with 'autovoice profile "
                           "delete %s' and create it again",
                           name, rel, store->db_path, name);
    if (!rc) {
        char path[STORE_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s/%s", store->data_root, rel, blob_name);
        rc = prof_read_file(path, data, size, err);
        if (rc == AVO_ERR_NOT_FOUND)
            avo_error_set(err, AVO_ERR_NOT_FOUND,
                          "profile '%s' has no data file '%s' (%s); it was made by another kind of analysis: create "
                          "it again with 'autovoice profile create %s ... --force'",
                          name, blob_name, path, name);
    }
    prof_unlock(store->lock_fd);
    return rc;
}

avo_status avo_profile_store_blob_path(avo_profile_store *store, const char *name, const char *blob_name, char *path,
                                       size_t cap, avo_error *err) {
    if (!store || !path || cap == 0)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_profile_store_blob_path: NULL argument");
    path[0] = '\0';
    if (!avo_profile_name_is_valid(name)) return bad_name(name, err);
    if (!prof_file_name_is_valid(blob_name))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "'%s' is not a valid profile data file name",
                             blob_name ? blob_name : "(null)");
    avo_status rc = prof_lock(store->lock_fd, 0, STORE_LOCK_TIMEOUT_MS, store->dir, err);
    if (rc) return rc;
    char rel[STORE_REL_MAX];
    rc = find_data_dir(store, name, rel, sizeof rel, err);
    if (!rc && !rel[0]) rc = not_found(store, name, err);
    if (!rc && !prof_file_name_is_valid(rel))
        rc = avo_error_set(err, AVO_ERR_FORMAT, "profile '%s' names a bad data folder '%s' in %s", name, rel,
                           store->db_path);
    if (!rc && (size_t)snprintf(path, cap, "%s/%s/%s", store->data_root, rel, blob_name) >= cap)
        rc = avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "profile data path is too long");
    if (!rc && access(path, R_OK) != 0)
        rc = avo_error_set(err, AVO_ERR_NOT_FOUND, "profile '%s' has no data file '%s' (%s)", name, blob_name, path);
    if (rc) path[0] = '\0';
    prof_unlock(store->lock_fd);
    return rc;
}

/* ---- put / delete ---------------------------------------------------------------------------- */

static avo_status check_put_args(const avo_profile_info *info, const avo_profile_blob *blobs, int blob_count,
                                 avo_error *err) {
    if (!avo_profile_name_is_valid(info->name)) return bad_name(info->name, err);
    if (!info->kind[0] || strnlen(info->kind, sizeof info->kind) == sizeof info->kind)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "profile '%s': kind must be a short non-empty string",
                             info->name);
    if (strnlen(info->sources, sizeof info->sources) == sizeof info->sources ||
        strnlen(info->model_path, sizeof info->model_path) == sizeof info->model_path ||
        strnlen(info->warnings, sizeof info->warnings) == sizeof info->warnings)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "profile '%s': a text field is not NUL-terminated",
                             info->name);
    if (blob_count < 0 || (blob_count > 0 && !blobs))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "profile '%s': bad blob list", info->name);
    for (int i = 0; i < blob_count; i++) {
        if (!prof_file_name_is_valid(blobs[i].name))
            return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                                 "profile '%s': data file name '%s' is not valid ([A-Za-z0-9._-], not starting "
                                 "with '.')",
                                 info->name, blobs[i].name ? blobs[i].name : "(null)");
        if (blobs[i].size > 0 && !blobs[i].data)
            return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "profile '%s': data file '%s' has no data",
                                 info->name, blobs[i].name);
        for (int j = 0; j < i; j++)
            if (strcmp(blobs[i].name, blobs[j].name) == 0)
                return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "profile '%s': data file '%s' given twice",
                                     info->name, blobs[i].name);
    }
    return AVO_OK;
}

/* Takes the next folder generation; its own small transaction, so a crash just skips a number. */
static avo_status next_generation(avo_profile_store *s, int64_t *gen, avo_error *err) {
    sqlite3_stmt *st = NULL;
    avo_status rc = exec_sql(s, "BEGIN IMMEDIATE", "allocating a folder", err);
    if (!rc) rc = prepare(s, "SELECT value FROM store_meta WHERE key = 'next_generation'", &st, "allocating a folder",
                          err);
    if (!rc) {
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) *gen = sqlite3_column_int64(st, 0);
        else rc = r == SQLITE_DONE ? avo_error_set(err, AVO_ERR_FORMAT,
                                                   "profile database %s lacks its generation counter; move it aside "
                                                   "(mv %s %s.bad) and create the profiles again",
                                                   s->db_path, s->db_path, s->db_path)
                                   : db_error(s, r, "allocating a folder", err);
        sqlite3_finalize(st);
        st = NULL;
    }
    if (!rc) rc = prepare(s, "UPDATE store_meta SET value = ?1 WHERE key = 'next_generation'", &st,
                          "allocating a folder", err);
    if (!rc) {
        sqlite3_bind_int64(st, 1, *gen + 1);
        int r = sqlite3_step(st);
        if (r != SQLITE_DONE) rc = db_error(s, r, "allocating a folder", err);
        sqlite3_finalize(st);
    }
    if (!rc) rc = exec_sql(s, "COMMIT", "allocating a folder", err);
    if (rc) rollback(s);
    return rc;
}

static avo_status insert_row(avo_profile_store *s, const avo_profile_info *p, const char *rel, avo_error *err) {
    sqlite3_stmt *st = NULL;
    avo_status rc = prepare(s,
                            "INSERT OR REPLACE INTO profiles(" PROFILE_COLUMNS ") "
                            "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                            &st, "saving a profile", err);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, p->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, p->kind, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, p->created_unix);
    sqlite3_bind_int(st, 4, p->clip_count);
    sqlite3_bind_int(st, 5, p->sample_rate);
    const double reals[6] = {p->total_seconds, p->voiced_seconds, p->f0_median_hz,
                             p->f0_low_hz,     p->f0_high_hz,     p->snr_db};
    for (int i = 0; i < 6; i++) sqlite3_bind_double(st, 6 + i, reals[i]); /* NaN is stored as NULL, read as 0 */
    sqlite3_bind_text(st, 12, p->sources, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 13, p->model_path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 14, p->warnings, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 15, rel, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(st);
    if (r != SQLITE_DONE) rc = db_error(s, r, "saving a profile", err);
    sqlite3_finalize(st);
    return rc;
}

/* Writes the blobs into a fresh folder, syncs everything and renames it to profiles/<rel>. */
static avo_status write_folder(avo_profile_store *s, const char *rel, const avo_profile_blob *blobs, int blob_count,
                               avo_error *err) {
    char tmp[STORE_PATH_MAX], final[STORE_PATH_MAX];
    snprintf(final, sizeof final, "%s/%s", s->data_root, rel);
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", s->data_root, rel);
    /* Stale leftovers of these names cannot be referenced by any row (generations are never reused). */
    avo_status rc = prof_remove_tree(tmp, NULL, err);
    if (!rc) rc = prof_remove_tree(final, NULL, err);
    if (rc) return rc;
    if (mkdir(tmp, 0755) != 0)
        return avo_error_set(err, AVO_ERR_IO, "cannot create folder %s: %s; check the store's permissions", tmp,
                             strerror(errno));
    prof_crash_point("put-tmp-created");
    for (int i = 0; !rc && i < blob_count; i++)
        rc = prof_write_file_synced(tmp, blobs[i].name, blobs[i].data, blobs[i].size, i == 0, err);
    if (!rc) rc = prof_fsync_dir(tmp, err);
    if (!rc) prof_crash_point("put-blobs-synced");
    if (!rc && rename(tmp, final) != 0)
        rc = avo_error_set(err, AVO_ERR_IO, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
    if (!rc) rc = prof_fsync_dir(s->data_root, err);
    if (rc) {
        prof_remove_tree(tmp, NULL, NULL);
        prof_remove_tree(final, NULL, NULL);
    }
    return rc;
}

static avo_status put_locked(avo_profile_store *s, const avo_profile_info *info, const avo_profile_blob *blobs,
                             int blob_count, int replace, avo_error *err) {
    prof_crash_point("put-start");
    char old_rel[STORE_REL_MAX], rel[STORE_REL_MAX];
    avo_status rc = find_data_dir(s, info->name, old_rel, sizeof old_rel, err);
    if (rc) return rc;
    if (old_rel[0] && !replace)
        return avo_error_set(err, AVO_ERR_EXISTS,
                             "profile '%s' already exists in %s; use --force to replace it or 'autovoice profile "
                             "delete %s' first",
                             info->name, s->dir, info->name);
    int64_t gen = 0;
    rc = next_generation(s, &gen, err);
    if (rc) return rc;
    snprintf(rel, sizeof rel, "%s.%lld", info->name, (long long)gen);
    rc = write_folder(s, rel, blobs, blob_count, err);
    if (rc) return rc;
    prof_crash_point("put-renamed");

    /* The switch: one transaction points the row at the new, complete folder. */
    char check_rel[STORE_REL_MAX];
    rc = exec_sql(s, "BEGIN IMMEDIATE", "saving a profile", err);
    if (!rc) rc = find_data_dir(s, info->name, check_rel, sizeof check_rel, err);
    if (!rc && strcmp(check_rel, old_rel) != 0) /* the lock makes this impossible; stay safe anyway */
        rc = avo_error_set(err, AVO_ERR_EXISTS, "profile '%s' changed while it was being saved; try again",
                           info->name);
    if (!rc) rc = insert_row(s, info, rel, err);
    if (!rc) prof_crash_point("put-in-txn");
    if (!rc) rc = exec_sql(s, "COMMIT", "saving a profile", err);
    if (rc) {
        rollback(s);
        char path[STORE_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", s->data_root, rel);
        prof_remove_tree(path, NULL, NULL);
        return rc;
    }
    prof_crash_point("put-committed");

    /* The old generation is garbage now; a failure here only leaves it for the next open to remove. */
    if (old_rel[0] && prof_file_name_is_valid(old_rel)) {
        char path[STORE_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", s->data_root, old_rel);
        if (prof_remove_tree(path, "put-old-partly-removed", NULL) == AVO_OK) prof_fsync_dir(s->data_root, NULL);
    }
    prof_crash_point("put-done");
    return AVO_OK;
}

avo_status avo_profile_store_put(avo_profile_store *store, const avo_profile_info *info,
                                 const avo_profile_blob *blobs, int blob_count, int replace, avo_error *err) {
    if (!store || !info) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_profile_store_put: NULL argument");
    avo_status rc = check_put_args(info, blobs, blob_count, err);
    if (rc) return rc;
    rc = prof_lock(store->lock_fd, 1, STORE_LOCK_TIMEOUT_MS, store->dir, err);
    if (rc) return rc;
    rc = put_locked(store, info, blobs, blob_count, replace, err);
    prof_unlock(store->lock_fd);
    return rc;
}

avo_status avo_profile_store_delete(avo_profile_store *store, const char *name, avo_error *err) {
    if (!store) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_profile_store_delete: NULL store");
    if (!avo_profile_name_is_valid(name)) return bad_name(name, err);
    avo_status rc = prof_lock(store->lock_fd, 1, STORE_LOCK_TIMEOUT_MS, store->dir, err);
    if (rc) return rc;
    char rel[STORE_REL_MAX] = "";
    sqlite3_stmt *st = NULL;
    rc = exec_sql(store, "BEGIN IMMEDIATE", "deleting a profile", err);
    if (!rc) rc = find_data_dir(store, name, rel, sizeof rel, err);
    if (!rc && !rel[0]) rc = not_found(store, name, err);
    if (!rc) rc = prepare(store, "DELETE FROM profiles WHERE name = ?1", &st, "deleting a profile", err);
    if (!rc) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        int r = sqlite3_step(st);
        if (r != SQLITE_DONE) rc = db_error(store, r, "deleting a profile", err);
        sqlite3_finalize(st);
    }
    if (!rc) prof_crash_point("delete-in-txn");
    if (!rc) rc = exec_sql(store, "COMMIT", "deleting a profile", err);
    if (rc) {
        rollback(store);
    } else {
        prof_crash_point("delete-committed");
        char path[STORE_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", store->data_root, rel);
        /* A hand-edited row must never make us remove anything outside profiles/. */
        if (prof_file_name_is_valid(rel) && prof_remove_tree(path, "delete-partly-removed", NULL) == AVO_OK) prof_fsync_dir(store->data_root, NULL);
        prof_crash_point("delete-done");
    }
    prof_unlock(store->lock_fd);
    return rc;
}
