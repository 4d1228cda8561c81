/* Profile store internals: durable file helpers, the store lock and the crash test hook. */
#ifndef AVO_PROFILES_INTERNAL_H
#define AVO_PROFILES_INTERNAL_H

#include "autovoice/profiles.h"

#include <stddef.h>

/* Test hook. When the environment variable AVO_PROFILES_CRASH_AT equals `step`, the process kills
 * itself with SIGKILL right there, as a power cut or `kill -9` would. The unit test forks a child
 * per step to prove that every step of put/replace/delete leaves the store whole. Steps:
 *   put-start, put-tmp-created, put-blob-partial, put-blobs-synced, put-renamed, put-in-txn,
 *   put-committed, put-old-partly-removed, put-done,
 *   delete-in-txn, delete-committed, delete-partly-removed, delete-done. */
void prof_crash_point(const char *step);

/* Blob and folder names: 1-128 characters of [A-Za-z0-9._-], not starting with '.'. */
int prof_file_name_is_valid(const char *name);

/* mkdir -p; existing folders are fine. Fails with AVO_ERR_IO naming the folder. */
avo_status prof_mkdirs(const char *path, avo_error *err);

/* Creates dir/name (must not exist), writes all bytes and fsyncs it. `crash_half` is for the test
 * hook: when non-zero the hook may fire after half of the bytes. */
avo_status prof_write_file_synced(const char *dir, const char *name, const void *data, size_t size,
                                  int crash_half, avo_error *err);

/* Reads a whole file into a malloc'd buffer. */
avo_status prof_read_file(const char *path, void **data, size_t *size, avo_error *err);

/* fsync on a folder, so that entries created, renamed or removed in it are durable. */
avo_status prof_fsync_dir(const char *path, avo_error *err);

/* rm -rf path (files and folders below it, symlinks not followed). Missing path is fine.
 * `crash_step` (may be NULL) fires the test hook after the first file is removed. */
avo_status prof_remove_tree(const char *path, const char *crash_step, avo_error *err);

/* Store-wide advisory lock: flock on the store's open lock file (dir/.lock), waiting up to
 * timeout_ms. flock (not fcntl) so that two stores opened in one process also exclude each other. */
avo_status prof_lock(int lock_fd, int exclusive, int timeout_ms, const char *dir, avo_error *err);
void prof_unlock(int lock_fd);

#endif
