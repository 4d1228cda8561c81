/* Audio buffers and file I/O through libsndfile. */
#include "autovoice/audio.h"

#include <errno.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

avo_status avo_audio_alloc(avo_audio *a, int sample_rate, int channels, int64_t frames, avo_error *err) {
    if (!a || sample_rate <= 0 || channels <= 0 || frames < 0)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "invalid audio buffer request");
    memset(a, 0, sizeof *a);
    size_t count = (size_t)channels * (size_t)frames;
    a->samples = calloc(count ? count : 1, sizeof(float));
    if (!a->samples)
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory for %lld audio frames",
                             (long long)frames);
    a->sample_rate = sample_rate;
    a->channels = channels;
    a->frames = frames;
    return AVO_OK;
}

void avo_audio_free(avo_audio *a) {
    if (!a) return;
    free(a->samples);
    memset(a, 0, sizeof *a);
}

avo_status avo_audio_copy(const avo_audio *in, avo_audio *out, avo_error *err) {
    avo_status st = avo_audio_alloc(out, in->sample_rate, in->channels, in->frames, err);
    if (st) return st;
    memcpy(out->samples, in->samples, sizeof(float) * (size_t)in->channels * (size_t)in->frames);
    return AVO_OK;
}

avo_status avo_audio_check_finite(const avo_audio *a, const char *name, avo_error *err) {
    for (int c = 0; c < a->channels; c++) {
        const float *x = avo_audio_channel(a, c);
        for (int64_t i = 0; i < a->frames; i++) {
            if (!isfinite(x[i]))
                return avo_error_set(err, AVO_ERR_INVALID_AUDIO,
                                     "%s: sample %lld of channel %d is not a finite number (NaN or Inf); "
                                     "re-export the audio from its source",
                                     name, (long long)i, c);
        }
    }
    return AVO_OK;
}

/* Reads every frame of an open SNDFILE into planar storage. Reads in blocks so formats whose
 * length is unknown up front (MP3) work too. */
static avo_status read_all_frames(SNDFILE *sf, const SF_INFO *info, const char *name, avo_audio *out,
                                  avo_error *err) {
    const int ch = info->channels;
    const sf_count_t block = 65536;
    size_t cap = 0, have = 0;
    float *inter = NULL;
    for (;;) {
        if (have + (size_t)block > cap) {
            size_t ncap = cap ? cap * 2 : (size_t)block * 4;
            float *p = realloc(inter, ncap * (size_t)ch * sizeof(float));
            if (!p) {
                free(inter);
                return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory while decoding", name);
            }
            inter = p;
            cap = ncap;
        }
        sf_count_t got = sf_readf_float(sf, inter + have * (size_t)ch, block);
        if (got <= 0) break;
        have += (size_t)got;
    }
    int sferr = sf_error(sf);
    if (sferr != SF_ERR_NO_ERROR) {
        free(inter);
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: decoding failed (%s); the file may be damaged",
                             name, sf_error_number(sferr));
    }
    if (info->frames > 0 && info->frames != SF_COUNT_MAX && (sf_count_t)have < info->frames) {
        free(inter);
        return avo_error_set(err, AVO_ERR_FORMAT,
                             "%s: file is truncated (header promises %lld frames, only %zu present); "
                             "re-export or re-download it",
                             name, (long long)info->frames, have);
    }
    if (have == 0) {
        free(inter);
        return avo_error_set(err, AVO_ERR_INVALID_AUDIO, "%s: contains no audio samples", name);
    }
    avo_status st = avo_audio_alloc(out, info->samplerate, ch, (int64_t)have, err);
    if (st) {
        free(inter);
        return st;
    }
    for (int c = 0; c < ch; c++) {
        float *dst = avo_audio_channel(out, c);
        for (size_t i = 0; i < have; i++) dst[i] = inter[i * (size_t)ch + (size_t)c];
    }
    free(inter);
    st = avo_audio_check_finite(out, name, err);
    if (st) avo_audio_free(out);
    return st;
}

/* Detects a data chunk shorter than its WAV header says: libsndfile quietly shortens such files. */
static int wav_header_claims_more(SNDFILE *sf) {
    char log[4096];
    sf_command(sf, SFC_GET_LOG_INFO, log, sizeof log);
    /* libsndfile notes it as "data : <header size> (should be <real size>)". */
    const char *data = strstr(log, "\ndata : ");
    if (!data) return 0;
    const char *eol = strchr(data + 1, '\n');
    const char *should = strstr(data, "(should be");
    return should != NULL && (eol == NULL || should < eol);
}

static avo_status check_info(const SF_INFO *info, const char *name, avo_error *err) {
    if (info->channels <= 0 || info->channels > 64)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: unsupported channel count %d", name, info->channels);
    if (info->samplerate < 4000 || info->samplerate > 384000)
        return avo_error_set(err, AVO_ERR_INVALID_AUDIO,
                             "%s: unsupported sample rate %d Hz (need 4000-384000)", name, info->samplerate);
    return AVO_OK;
}

avo_status avo_audio_read(const char *path, avo_audio *out, avo_error *err) {
    if (!path || !out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "no input path given");
    memset(out, 0, sizeof *out);
    struct stat stbuf;
    if (stat(path, &stbuf) != 0)
        return avo_error_set(err, errno == ENOENT ? AVO_ERR_NOT_FOUND : AVO_ERR_IO,
                             "%s: cannot open (%s); check the path", path, strerror(errno));
    if (S_ISDIR(stbuf.st_mode))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "%s: is a directory, expected an audio file", path);
    if (stbuf.st_size == 0)
        return avo_error_set(err, AVO_ERR_FORMAT, "%s: file is empty", path);
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open(path, SFM_READ, &info);
    if (!sf)
        return avo_error_set(err, AVO_ERR_FORMAT,
                             "%s: not a readable audio file (unknown or damaged format); supported: WAV, FLAC, OGG, MP3",
                             path);
    avo_status st = check_info(&info, path, err);
    if (!st && (info.format & SF_FORMAT_TYPEMASK) == SF_FORMAT_WAV && wav_header_claims_more(sf))
        st = avo_error_set(err, AVO_ERR_FORMAT,
                           "%s: WAV file is truncated (data shorter than its header says); re-export it", path);
    if (!st) st = read_all_frames(sf, &info, path, out, err);
    sf_close(sf);
    return st;
}

/* Virtual I/O over a memory block, for decoding without touching the file system (fuzzing). */
typedef struct memory_file {
    const unsigned char *data;
    sf_count_t size, pos;
} memory_file;

static sf_count_t mem_get_len(void *user) { return ((memory_file *)user)->size; }
static sf_count_t mem_seek(sf_count_t off, int whence, void *user) {
    memory_file *m = user;
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->size;
    sf_count_t np = base + off;
    if (np < 0 || np > m->size) return -1;
    m->pos = np;
    return np;
}
static sf_count_t mem_read(void *ptr, sf_count_t count, void *user) {
    memory_file *m = user;
    sf_count_t left = m->size - m->pos;
    if (count > left) count = left;
    if (count > 0) memcpy(ptr, m->data + m->pos, (size_t)count);
    m->pos += count;
    return count;
}
static sf_count_t mem_write(const void *ptr, sf_count_t count, void *user) {
    (void)ptr, (void)count, (void)user;
    return 0;
}
static sf_count_t mem_tell(void *user) { return ((memory_file *)user)->pos; }

avo_status avo_audio_read_memory(const void *data, size_t size, const char *name, avo_audio *out,
                                 avo_error *err) {
    if (!out) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "no output buffer");
    memset(out, 0, sizeof *out);
    if (!name) name = "(memory)";
    if (!data || size == 0) return avo_error_set(err, AVO_ERR_FORMAT, "%s: file is empty", name);
    memory_file m = {data, (sf_count_t)size, 0};
    SF_VIRTUAL_IO vio = {mem_get_len, mem_seek, mem_read, mem_write, mem_tell};
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open_virtual(&vio, SFM_READ, &info, &m);
    if (!sf) return avo_error_set(err, AVO_ERR_FORMAT, "%s: not a readable audio file", name);
    avo_status st = check_info(&info, name, err);
    if (!st && info.frames > (sf_count_t)1 << 31 && info.frames != SF_COUNT_MAX)
        st = avo_error_set(err, AVO_ERR_FORMAT, "%s: implausible length", name);
    if (!st) st = read_all_frames(sf, &info, name, out, err);
    sf_close(sf);
    return st;
}

static const char *extension_of(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    if (!dot || (slash && dot < slash)) return "";
    return dot + 1;
}

static avo_status pick_format(const char *path, avo_audio_encoding enc, int *format, avo_error *err) {
    if (enc == AVO_AUDIO_AUTO) {
        const char *ext = extension_of(path);
        if (strcasecmp(ext, "wav") == 0) enc = AVO_AUDIO_WAV_PCM24;
        else if (strcasecmp(ext, "flac") == 0) enc = AVO_AUDIO_FLAC_PCM24;
        else
            return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                                 "%s: unknown output extension '.%s'; use .wav or .flac", path, ext);
    }
    switch (enc) {
    case AVO_AUDIO_WAV_PCM16: *format = SF_FORMAT_WAV | SF_FORMAT_PCM_16; break;
    case AVO_AUDIO_WAV_PCM24: *format = SF_FORMAT_WAV | SF_FORMAT_PCM_24; break;
    case AVO_AUDIO_WAV_FLOAT: *format = SF_FORMAT_WAV | SF_FORMAT_FLOAT; break;
    case AVO_AUDIO_FLAC_PCM16: *format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16; break;
    case AVO_AUDIO_FLAC_PCM24: *format = SF_FORMAT_FLAC | SF_FORMAT_PCM_24; break;
    default: return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "unknown output encoding %d", (int)enc);
    }
    return AVO_OK;
}

static avo_status write_frames(SNDFILE *sf, const avo_audio *a, const char *path, avo_error *err) {
    enum { BLOCK = 8192 };
    float *inter = malloc(sizeof(float) * BLOCK * (size_t)a->channels);
    if (!inter) return avo_error_set(err, AVO_ERR_NO_MEMORY, "%s: out of memory while encoding", path);
    avo_status st = AVO_OK;
    for (int64_t start = 0; start < a->frames && !st; start += BLOCK) {
        int64_t n = a->frames - start < BLOCK ? a->frames - start : BLOCK;
        for (int c = 0; c < a->channels; c++) {
            const float *src = avo_audio_channel(a, c) + start;
            for (int64_t i = 0; i < n; i++) {
                float v = src[i];
                inter[i * a->channels + c] = v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v;
            }
        }
        if (sf_writef_float(sf, inter, n) != n)
            st = avo_error_set(err, AVO_ERR_IO, "%s: write failed (%s); check free disk space", path,
                               sf_strerror(sf));
    }
    free(inter);
    return st;
}

avo_status avo_audio_write(const char *path, const avo_audio *a, avo_audio_encoding encoding, avo_error *err) {
    if (!path || !a || !a->samples || a->channels <= 0)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "nothing to write");
    int format = 0;
    avo_status st = pick_format(path, encoding, &format, err);
    if (st) return st;
    struct stat stbuf;
    if (stat(path, &stbuf) == 0 && S_ISDIR(stbuf.st_mode))
        return avo_error_set(err, AVO_ERR_IO, "%s: is a directory; give an output file name", path);

    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (!tmp) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    snprintf(tmp, len + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st = avo_error_set(err, AVO_ERR_IO, "%s: cannot write (%s); check the folder exists and is writable",
                           path, strerror(errno));
        free(tmp);
        return st;
    }
    /* mkstemp creates 0600; give the file the permissions a plain create would. */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) { /* not fatal: the file is still written */ }
    SF_INFO info;
    memset(&info, 0, sizeof info);
    info.samplerate = a->sample_rate;
    info.channels = a->channels;
    info.format = format;
    SNDFILE *sf = sf_open_fd(fd, SFM_WRITE, &info, SF_TRUE);
    if (!sf) {
        st = avo_error_set(err, AVO_ERR_FORMAT, "%s: cannot encode %d channels at %d Hz (%s)", path,
                           a->channels, a->sample_rate, sf_strerror(NULL));
        close(fd);
    } else {
        st = write_frames(sf, a, path, err);
        sf_write_sync(sf);
        if (sf_close(sf) != 0 && !st)
            st = avo_error_set(err, AVO_ERR_IO, "%s: closing the file failed", path);
    }
    if (!st && rename(tmp, path) != 0)
        st = avo_error_set(err, AVO_ERR_IO, "%s: cannot move the finished file into place (%s)", path,
                           strerror(errno));
    if (st) unlink(tmp);
    free(tmp);
    return st;
}

avo_status avo_audio_to_mono(const avo_audio *in, avo_audio *out, avo_error *err) {
    return avo_audio_set_channels(in, 1, out, err);
}

avo_status avo_audio_set_channels(const avo_audio *in, int channels, avo_audio *out, avo_error *err) {
    if (channels <= 0) return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "channel count must be positive");
    avo_status st = avo_audio_alloc(out, in->sample_rate, channels, in->frames, err);
    if (st) return st;
    if (in->channels == channels) {
        memcpy(out->samples, in->samples, sizeof(float) * (size_t)channels * (size_t)in->frames);
        return AVO_OK;
    }
    /* Average all input channels, then copy to every output channel. */
    float *mix = avo_audio_channel(out, 0);
    const float scale = 1.0f / (float)in->channels;
    for (int c = 0; c < in->channels; c++) {
        const float *x = avo_audio_channel(in, c);
        for (int64_t i = 0; i < in->frames; i++) mix[i] += x[i] * scale;
    }
    for (int c = 1; c < channels; c++)
        memcpy(avo_audio_channel(out, c), mix, sizeof(float) * (size_t)in->frames);
    return AVO_OK;
}

float avo_audio_peak(const avo_audio *a) {
    float peak = 0.0f;
    const size_t n = (size_t)a->channels * (size_t)a->frames;
    for (size_t i = 0; i < n; i++) {
        float v = fabsf(a->samples[i]);
        peak = v > peak ? v : peak;
    }
    return peak;
}
