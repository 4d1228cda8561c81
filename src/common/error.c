#include "autovoice/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#ifndef AVO_VERSION_STRING
#define AVO_VERSION_STRING "0.0.0"
#endif

avo_status avo_error_set(avo_error *err, avo_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

avo_status avo_error_prefix(avo_error *err, const char *fmt, ...) {
    if (!err) return AVO_ERR_INTERNAL;
    char prefix[AVO_ERROR_MESSAGE_MAX];
    char old[AVO_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    /* Truncation is acceptable: a long message keeps its start. */
    size_t n = strlen(prefix);
    if (n > sizeof err->message - 3) n = sizeof err->message - 3;
    memcpy(err->message, prefix, n);
    memcpy(err->message + n, ": ", 2);
    size_t room = sizeof err->message - n - 2;
    size_t m = strnlen(old, room - 1);
    memcpy(err->message + n + 2, old, m);
    err->message[n + 2 + m] = '\0';
    return err->code;
}

void avo_error_clear(avo_error *err) {
    if (!err) return;
    err->code = AVO_OK;
    err->message[0] = '\0';
}

const char *avo_status_name(avo_status status) {
    switch (status) {
    case AVO_OK: return "ok";
    case AVO_ERR_INVALID_ARGUMENT: return "invalid-argument";
    case AVO_ERR_NO_MEMORY: return "no-memory";
    case AVO_ERR_IO: return "io";
    case AVO_ERR_FORMAT: return "format";
    case AVO_ERR_NOT_FOUND: return "not-found";
    case AVO_ERR_INVALID_AUDIO: return "invalid-audio";
    case AVO_ERR_VALIDATION: return "validation";
    case AVO_ERR_UNSUPPORTED: return "unsupported";
    case AVO_ERR_EXISTS: return "exists";
    case AVO_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}

const char *avo_version(void) { return AVO_VERSION_STRING; }

double avo_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

const char *avo_preset_name(avo_preset preset) {
    switch (preset) {
    case AVO_PRESET_FAST: return "fast";
    case AVO_PRESET_BALANCED: return "balanced";
    case AVO_PRESET_QUALITY: return "quality";
    }
    return "unknown";
}

avo_status avo_preset_parse(const char *name, avo_preset *out) {
    static const avo_preset all[] = {AVO_PRESET_FAST, AVO_PRESET_BALANCED, AVO_PRESET_QUALITY};
    for (size_t i = 0; name && i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(name, avo_preset_name(all[i])) == 0) {
            *out = all[i];
            return AVO_OK;
        }
    }
    return AVO_ERR_INVALID_ARGUMENT;
}
