/* AutoVoice common definitions: status codes, error details, progress reporting.
 *
 * Every public function returns an avo_status (AVO_OK on success). Functions that can fail for a
 * reason worth telling the user also take an avo_error* (may be NULL) that receives one clear line:
 * what failed, why, and what to do. */
#ifndef AUTOVOICE_COMMON_H
#define AUTOVOICE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum avo_status {
    AVO_OK = 0,
    AVO_ERR_INVALID_ARGUMENT, /* caller passed something out of range */
    AVO_ERR_NO_MEMORY,
    AVO_ERR_IO,               /* cannot open, read, write or rename a file */
    AVO_ERR_FORMAT,           /* file exists but its content is not understood */
    AVO_ERR_NOT_FOUND,        /* missing file, unknown profile */
    AVO_ERR_INVALID_AUDIO,    /* zero length, NaN/Inf samples, unusable rate */
    AVO_ERR_VALIDATION,       /* input understood but rejected (too short, clipped, noisy) */
    AVO_ERR_UNSUPPORTED,      /* feature or back end not available in this build */
    AVO_ERR_EXISTS,           /* would overwrite something that must not be overwritten */
    AVO_ERR_INTERNAL
} avo_status;

#define AVO_ERROR_MESSAGE_MAX 1024

typedef struct avo_error {
    avo_status code;
    char message[AVO_ERROR_MESSAGE_MAX];
} avo_error;

/* Fills err (if not NULL) with code and a printf-style message; returns code. */
avo_status avo_error_set(avo_error *err, avo_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message with context ("reading song.mp3: ..."); returns err->code. */
avo_status avo_error_prefix(avo_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void avo_error_clear(avo_error *err);

/* Short stable name of a status ("io", "format", ...). */
const char *avo_status_name(avo_status status);

/* Sets, where the user has not, the environment the math libraries read once at load time:
 * OMP_WAIT_POLICY=PASSIVE, and OPENBLAS_CORETYPE=SkylakeX on AVX-512 CPUs that this OpenBLAS would
 * otherwise give its AVX2 kernels. Returns true when it changed something: the settings only take effect
 * in a new process, so a program calls avo_runtime_reexec_with_preferred_env(argv) first thing in main
 * (it re-executes /proc/self/exe with the same arguments, or returns if nothing changed or exec fails). */
bool avo_runtime_prefer_env(void);
void avo_runtime_reexec_with_preferred_env(char **argv);

/* Library version, "MAJOR.MINOR.PATCH". */
const char *avo_version(void);

/* Speed/quality trade-off shared by every stage. */
typedef enum avo_preset { AVO_PRESET_FAST = 0, AVO_PRESET_BALANCED, AVO_PRESET_QUALITY } avo_preset;

/* "fast", "balanced", "quality"; parse returns AVO_ERR_INVALID_ARGUMENT for anything else. */
const char *avo_preset_name(avo_preset preset);
avo_status avo_preset_parse(const char *name, avo_preset *out);

/* Progress of long work: stage name and fraction done in [0, 1]. */
typedef void (*avo_progress_fn)(const char *stage, double fraction, void *user);

/* Monotonic wall clock in milliseconds. */
double avo_now_ms(void);

#ifdef __cplusplus
}
#endif
#endif
