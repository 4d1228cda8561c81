/* Shared pieces of the command-line tool. */
#ifndef AVO_CLI_H
#define AVO_CLI_H

#include "autovoice/audio.h"

#include <stdio.h>

/* Exit codes: 0 success, 1 the work failed (bad input, I/O), 2 usage error. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

/* Progress line on stderr: shown once work has run for a second, redrawn at most 10 times a second. */
typedef struct cli_progress {
    int quiet;
    int shown;
    double started_ms;
    double last_draw_ms;
    const char *task;
} cli_progress;

void cli_progress_init(cli_progress *p, const char *task, int quiet);
void cli_progress_update(const char *stage, double fraction, void *user);
void cli_progress_finish(cli_progress *p);

/* "autovoice: error: <message>" on stderr; returns CLI_FAILED. */
int cli_fail(const avo_error *err);
int cli_usage_error(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a finite number or integer option value, or prints a usage error. */
int cli_parse_double(const char *command, const char *option, const char *text, double lo, double hi, double *out);
int cli_parse_int(const char *command, const char *option, const char *text, long lo, long hi, int *out);

/* Checks that a file can be created at path (its folder exists and is writable). */
avo_status cli_check_writable(const char *path, avo_error *err);

/* avo_audio_read with the codec libraries' own chatter on stderr silenced: the user sees our one
 * error line, not mpg123's warnings about a damaged tag. */
avo_status cli_read_audio(const char *path, avo_audio *out, avo_error *err);

/* Writes text to path atomically (temporary file, then rename). */
avo_status cli_write_text_atomic(const char *path, const char *text, avo_error *err);

int cli_convert(int argc, char **argv);
int cli_profile(int argc, char **argv);
int cli_report(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_calibrate(int argc, char **argv);

#endif
