/* Durable file helpers for the profile store: every write is fsync'd, and so is every folder whose
 * entries change, because rename and unlink are only durable once their folder is synced. */
#include "profiles_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void prof_crash_point(const char *step) {
    const char *at = getenv("AVO_PROFILES_CRASH_AT");
    if (at && strcmp(at, step) == 0) {
        kill(getpid(), SIGKILL);
        _exit(137); /* not reached */
    }
}

int prof_file_name_is_valid(const char *name) {
    if (!name || !name[0] || name[0] == '.') return 0;
    size_t n = 0;
    for (const char *c = name; *c; c++, n++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' ||
                 *c == '_' || *c == '-';
        if (!ok || n >= 128) return 0;
    }
    return 1;
}

avo_status prof_mkdirs(const char *path, avo_error *err) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "profile store folder name '%s' is empty or too long",
                             path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) == 0) {
            /* A new folder only survives a power cut once its parent is synced. */
            char *slash = strrchr(buf, '/');
            if (slash && slash != buf) {
                *slash = '\0';
                prof_fsync_dir(buf, NULL);
                *slash = '/';
            }
        } else if (errno != EEXIST) {
            return avo_error_set(err, AVO_ERR_IO,
                                 "cannot create profile store folder %s: %s; pass a writable folder with --store DIR",
                                 buf, strerror(errno));
        }
        buf[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return avo_error_set(err, AVO_ERR_IO, "profile store path %s is not a folder; pass a folder with --store DIR",
                             path);
    return AVO_OK;
}

static int write_all(int fd, const unsigned char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

avo_status prof_write_file_synced(const char *dir, const char *name, const void *data, size_t size,
                                  int crash_half, avo_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return avo_error_set(err, AVO_ERR_IO, "cannot create %s: %s; check free space and permissions of the store",
                             path, strerror(errno));
    const unsigned char *p = data;
    size_t half = crash_half ? size / 2 : size;
    int bad = write_all(fd, p, half) != 0;
    if (!bad && crash_half) {
        prof_crash_point("put-blob-partial");
        bad = write_all(fd, p + half, size - half) != 0;
    }
    if (!bad) bad = fsync(fd) != 0;
    int saved = errno;
    if (close(fd) != 0 && !bad) bad = 1, saved = errno;
    if (bad)
        return avo_error_set(err, AVO_ERR_IO, "cannot write %s: %s; check free space on the store's disk", path,
                             strerror(saved));
    return AVO_OK;
}

avo_status prof_read_file(const char *path, void **data, size_t *size, avo_error *err) {
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return avo_error_set(err, errno == ENOENT ? AVO_ERR_NOT_FOUND : AVO_ERR_IO, "cannot open %s: %s", path,
                             strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return avo_error_set(err, AVO_ERR_IO, "%s is not a readable file", path);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory reading %s (%zu bytes)", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(buf);
        return avo_error_set(err, AVO_ERR_IO, "cannot read %s: short read (%zu of %zu bytes)", path, got, n);
    }
    *data = buf;
    *size = n;
    return AVO_OK;
}

avo_status prof_fsync_dir(const char *path, avo_error *err) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return avo_error_set(err, AVO_ERR_IO, "cannot open folder %s: %s", path, strerror(errno));
    int bad = fsync(fd) != 0;
    int saved = errno;
    close(fd);
    if (bad) return avo_error_set(err, AVO_ERR_IO, "cannot sync folder %s: %s", path, strerror(saved));
    return AVO_OK;
}

/* Removes everything inside the open folder dfd, then nothing else; depth is bounded by the caller's
 * layout (profile folders hold plain files), but sub-folders are handled anyway. */
static int remove_contents(int dfd, const char *crash_step, int *removed, int depth) {
    if (depth > 16) return -1;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -1;
    }
    int bad = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0 || remove_contents(sub, crash_step, removed, depth + 1) != 0 ||
                unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) != 0)
                bad = 1;
        } else if (unlinkat(dirfd(d), e->d_name, 0) != 0) {
            bad = 1;
        } else if ((*removed)++ == 0 && crash_step) {
            prof_crash_point(crash_step);
        }
    }
    closedir(d);
    return bad ? -1 : 0;
}

avo_status prof_remove_tree(const char *path, const char *crash_step, avo_error *err) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return AVO_OK;
        return avo_error_set(err, AVO_ERR_IO, "cannot inspect %s: %s", path, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) != 0 && errno != ENOENT)
            return avo_error_set(err, AVO_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
        return AVO_OK;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int removed = 0;
    if (fd < 0 || remove_contents(fd, crash_step, &removed, 0) != 0 || (rmdir(path) != 0 && errno != ENOENT))
        return avo_error_set(err, AVO_ERR_IO, "cannot remove folder %s: %s; remove it by hand", path,
                             strerror(errno));
    return AVO_OK;
}

avo_status prof_lock(int lock_fd, int exclusive, int timeout_ms, const char *dir, avo_error *err) {
    const int op = (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
    for (int waited = 0;; waited += 10) {
        if (flock(lock_fd, op) == 0) return AVO_OK;
        if (errno != EWOULDBLOCK && errno != EINTR)
            return avo_error_set(err, AVO_ERR_IO, "cannot lock profile store %s: %s", dir, strerror(errno));
        if (waited >= timeout_ms)
            return avo_error_set(err, AVO_ERR_IO,
                                 "profile store %s is busy (another autovoice process holds it for over %d s); "
                                 "wait for it to finish and try again",
                                 dir, timeout_ms / 1000);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void prof_unlock(int lock_fd) {
    if (lock_fd >= 0) flock(lock_fd, LOCK_UN);
}
