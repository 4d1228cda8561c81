/* Fuzzes profile and data-file names through the store, and clip validation on arbitrary samples.
 *
 * Input byte 0 picks the mode. Names: the rest is "<profile name>\n<blob name>"; a name the validator
 * accepts must be safe as a path component, and must round-trip through put/get/read_blob/delete.
 * Clips: bytes 1-2 pick a sample rate, the rest are 16-bit samples for avo_profile_validate_clip. */
#include "autovoice/profiles.h"
#include "profiles/profiles_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static avo_profile_store *store; /* one store for the whole run: opening it per input would dominate */

static void check_safe(const char *name, size_t max) {
    size_t n = strlen(name);
    if (n == 0 || n >= max || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) abort();
}

static void fuzz_names(const uint8_t *data, size_t size) {
    char buf[512];
    if (size >= sizeof buf) size = sizeof buf - 1;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *blob = strchr(buf, '\n');
    if (blob) *blob++ = '\0';
    else blob = "analysis.bin";
    int name_ok = avo_profile_name_is_valid(buf), blob_ok = prof_file_name_is_valid(blob);
    if (name_ok) check_safe(buf, AVO_PROFILE_NAME_MAX);
    if (blob_ok) check_safe(blob, 129);

    if (!store) {
        char dir[] = "/tmp/fuzz_profile_name.XXXXXX";
        if (!mkdtemp(dir) || avo_profile_store_open(dir, &store, NULL) != AVO_OK) abort();
    }
    avo_profile_info info;
    memset(&info, 0, sizeof info);
    size_t name_len = strnlen(buf, sizeof info.name - 1);
    memcpy(info.name, buf, name_len); /* truncated on purpose: the store sees a different, shorter name */
    info.name[name_len] = '\0';
    snprintf(info.kind, sizeof info.kind, "dsp");
    avo_profile_blob b = {blob, data, size};
    avo_error err;
    avo_status st = avo_profile_store_put(store, &info, &b, 1, 1, &err);
    int name_fits = strlen(buf) < sizeof info.name;
    if (name_fits && (st == AVO_OK) != (name_ok && blob_ok)) abort();
    if (st != AVO_OK || !name_fits) {
        if (st == AVO_OK) avo_profile_store_delete(store, info.name, &err);
        return;
    }
    void *back = NULL;
    size_t back_size = 0;
    if (avo_profile_store_read_blob(store, buf, blob, &back, &back_size, &err) != AVO_OK) abort();
    if (back_size != size || memcmp(back, data, size) != 0) abort();
    free(back);
    if (avo_profile_store_delete(store, buf, &err) != AVO_OK) abort();
}

static void fuzz_clip(const uint8_t *data, size_t size) {
    if (size < 3) return;
    static const int rates[] = {8000, 16000, 22050, 44100, 48000, 96000};
    int rate = rates[data[1] % 6];
    int channels = 1 + data[2] % 2;
    int64_t frames = (int64_t)((size - 3) / 2 / (size_t)channels);
    avo_audio a;
    if (frames == 0 || avo_audio_alloc(&a, rate, channels, frames, NULL) != AVO_OK) return;
    for (int64_t i = 0; i < frames * channels; i++) {
        int16_t v = (int16_t)(data[3 + 2 * i] | data[4 + 2 * i] << 8);
        a.samples[i] = (float)v / 32768.0f;
    }
    avo_clip_report r;
    avo_error err;
    avo_status st = avo_profile_validate_clip(&a, "fuzz.wav", &r, &err);
    if ((st == AVO_OK) != (r.usable != 0) || r.clipped_fraction < 0 || r.clipped_fraction > 1 ||
        r.voiced_seconds > r.duration_seconds + 0.05 || r.snr_db != r.snr_db)
        abort();
    avo_audio_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] & 1) fuzz_clip(data, size);
    else fuzz_names(data + 1, size - 1);
    return 0;
}
