/* Voice profiles: validation of a target's recordings and a durable store.
 *
 * The store lives in a folder (default $XDG_DATA_HOME/autovoice, else ~/.local/share/autovoice):
 * metadata in SQLite (profiles.db, WAL, synchronous=FULL), analysis data as files under
 * profiles/<name>.<generation>/. Every change is atomic: after a crash at any point the store holds
 * either the old or the new profile, whole (a put writes and syncs a fresh folder, then one transaction
 * points the row at it, then the old folder goes; folders no row points at are removed on open).
 * Several processes may use one store at once: writers are serialised by a lock file (.lock).
 * A store handle is for one thread at a time. Test hook: AVO_PROFILES_CRASH_AT, see
 * src/profiles/profiles_internal.h. */
#ifndef AUTOVOICE_PROFILES_H
#define AUTOVOICE_PROFILES_H

#include "autovoice/audio.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AVO_PROFILE_NAME_MAX 64
#define AVO_PROFILE_TEXT_MAX 1024

/* Quality figures of one recording, from avo_profile_validate_clip. */
typedef struct avo_clip_report {
    double duration_seconds;
    double voiced_seconds;
    double clipped_fraction;   /* share of samples at full scale or cut flat at the clip's peak */
    double snr_db;             /* estimated from voiced vs. quietest frames */
    double f0_median_hz;       /* 0 if nothing voiced */
    int sample_rate;
    int usable;                /* 0 if the clip is rejected; reason in the avo_error */
    char warning[256];         /* non-fatal remark ("low SNR 14 dB"), empty if none */
} avo_clip_report;

typedef struct avo_profile_info {
    char name[AVO_PROFILE_NAME_MAX];
    char kind[16];                       /* "dsp" or "neural" */
    int64_t created_unix;
    int clip_count;
    int sample_rate;                     /* rate the analysis was made at */
    double total_seconds;
    double voiced_seconds;
    double f0_median_hz, f0_low_hz, f0_high_hz; /* median and 5th/95th percentiles over voiced frames */
    double snr_db;                       /* lowest clip SNR */
    char sources[AVO_PROFILE_TEXT_MAX];  /* clip file names, ';'-separated */
    char model_path[AVO_PROFILE_TEXT_MAX]; /* neural profiles: checkpoint path; empty for dsp */
    char warnings[AVO_PROFILE_TEXT_MAX]; /* accumulated clip warnings */
} avo_profile_info;

/* A named file of analysis data stored with a profile. */
typedef struct avo_profile_blob {
    const char *name;   /* file name inside the profile folder, [A-Za-z0-9._-]+ */
    const void *data;
    size_t size;
} avo_profile_blob;

/* Clip validation: minimum voiced audio over all clips of a profile. */
#define AVO_PROFILE_MIN_VOICED_SECONDS 10.0

/* Checks one recording: sample rate >= 16 kHz, not silent (peak >= -60 dBFS), clipping under 1% of
 * samples (warning over 0.1%), SNR estimate >= 10 dB (warning under 20 dB; a clip without pauses only
 * gives a lower bound and is warned about, not rejected), some voiced audio (fast F0); fills report
 * either way. Returns AVO_ERR_VALIDATION with a message naming `name`, the problem and what to do when
 * the clip is unusable, AVO_ERR_INVALID_AUDIO for empty or non-finite audio. */
avo_status avo_profile_validate_clip(const avo_audio *clip, const char *name, avo_clip_report *report,
                                     avo_error *err);

/* Valid names: 1-63 characters of [A-Za-z0-9_-], not starting with '-'. */
int avo_profile_name_is_valid(const char *name);

typedef struct avo_profile_store avo_profile_store;

/* Opens (creating if needed) the store in dir; dir NULL or "" means the default location. */
avo_status avo_profile_store_open(const char *dir, avo_profile_store **out, avo_error *err);
void avo_profile_store_close(avo_profile_store *store);
const char *avo_profile_store_dir(const avo_profile_store *store);

/* Adds or (with replace) replaces a profile with its blobs, atomically. Without replace an existing
 * name gives AVO_ERR_EXISTS. NaN in a double field is stored as NULL and read back as 0. */
avo_status avo_profile_store_put(avo_profile_store *store, const avo_profile_info *info,
                                 const avo_profile_blob *blobs, int blob_count, int replace, avo_error *err);

/* Unknown name gives AVO_ERR_NOT_FOUND with a message that suggests `autovoice profile list`. */
avo_status avo_profile_store_get(avo_profile_store *store, const char *name, avo_profile_info *out,
                                 avo_error *err);

/* Reads a blob into a malloc'd buffer the caller frees. A get followed by read_blob is not one
 * snapshot: another process may replace the profile in between. */
avo_status avo_profile_store_read_blob(avo_profile_store *store, const char *name, const char *blob_name,
                                       void **data, size_t *size, avo_error *err);

/* All profiles sorted by name, in a malloc'd array the caller frees. */
/* Path of one data file of a profile, for readers that take a file (model checkpoints). The file stays
 * valid until the profile is replaced or deleted (each version lives in its own folder). */
avo_status avo_profile_store_blob_path(avo_profile_store *store, const char *name, const char *blob_name, char *path,
                                       size_t cap, avo_error *err);

avo_status avo_profile_store_list(avo_profile_store *store, avo_profile_info **out, size_t *count,
                                  avo_error *err);

avo_status avo_profile_store_delete(avo_profile_store *store, const char *name, avo_error *err);

#ifdef __cplusplus
}
#endif
#endif
