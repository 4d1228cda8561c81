#include "cli.h"

#include "autovoice/audio.h"

#include <fcntl.h>

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cli_progress_init(cli_progress *p, const char *task, int quiet) {
    memset(p, 0, sizeof *p);
    p->quiet = quiet;
    p->task = task;
    p->started_ms = avo_now_ms();
}

void cli_progress_update(const char *stage, double fraction, void *user) {
    cli_progress *p = user;
    if (!p || p->quiet) return;
    double now = avo_now_ms();
    if (now - p->started_ms < 1000.0 || (now - p->last_draw_ms < 100.0 && fraction < 1.0)) return;
    p->last_draw_ms = now;
    p->shown = 1;
    fprintf(stderr, "\r%s: %-14s %3d%%  (%.1f s)", p->task, stage, (int)(fraction * 100.0 + 0.5),
            (now - p->started_ms) / 1000.0);
    fflush(stderr);
}

void cli_progress_finish(cli_progress *p) {
    if (p->shown && !p->quiet) fputc('\n', stderr);
    p->shown = 0;
}

int cli_fail(const avo_error *err) {
    fprintf(stderr, "autovoice: error: %s\n", err && err->message[0] ? err->message : "unknown failure");
    return CLI_FAILED;
}

int cli_usage_error(const char *command, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "autovoice %s: ", command);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'autovoice %s --help')\n", command);
    va_end(ap);
    return CLI_USAGE;
}

int cli_parse_double(const char *command, const char *option, const char *text, double lo, double hi, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v < lo || v > hi)
        return cli_usage_error(command, "%s expects a number from %g to %g, got '%s'", option, lo, hi, text);
    *out = v;
    return CLI_OK;
}

int cli_parse_int(const char *command, const char *option, const char *text, long lo, long hi, int *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi)
        return cli_usage_error(command, "%s expects a whole number from %ld to %ld, got '%s'", option, lo, hi, text);
    *out = (int)v;
    return CLI_OK;
}

avo_status cli_check_writable(const char *path, avo_error *err) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return avo_error_set(err, AVO_ERR_IO, "%s: is a directory; give an output file name", path);
    char *copy = strdup(path);
    if (!copy) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    const char *dir = dirname(copy);
    avo_status s = AVO_OK;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        s = avo_error_set(err, AVO_ERR_IO, "%s: cannot write: folder '%s' does not exist", path, dir);
    else if (access(dir, W_OK) != 0)
        s = avo_error_set(err, AVO_ERR_IO, "%s: cannot write: folder '%s' is not writable (%s)", path, dir,
                          strerror(errno));
    free(copy);
    return s;
}

avo_status cli_write_text_atomic(const char *path, const char *text, avo_error *err) {
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (!tmp) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    snprintf(tmp, len + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    avo_status s = AVO_OK;
    if (fd < 0) {
        s = avo_error_set(err, AVO_ERR_IO, "%s: cannot write (%s)", path, strerror(errno));
        free(tmp);
        return s;
    }
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) { /* not fatal */ }
    size_t n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
        s = avo_error_set(err, AVO_ERR_IO, "%s: write failed (%s)", path, strerror(errno));
    close(fd);
    if (!s && rename(tmp, path) != 0)
        s = avo_error_set(err, AVO_ERR_IO, "%s: cannot move into place (%s)", path, strerror(errno));
    if (s) unlink(tmp);
    free(tmp);
    return s;
}

avo_status cli_read_audio(const char *path, avo_audio *out, avo_error *err) {
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int devnull = open("/dev/null", O_WRONLY);
    if (saved >= 0 && devnull >= 0) dup2(devnull, STDERR_FILENO);
    avo_status st = avo_audio_read(path, out, err);
    if (saved >= 0) {
        dup2(saved, STDERR_FILENO);
        close(saved);
    }
    if (devnull >= 0) close(devnull);
    return st;
}
