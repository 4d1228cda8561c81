/* Runs the four stages, times each, and records what really ran. */
#include "autovoice/pipeline.h"
#include "autovoice/engine_cache.h"

#include "autovoice/models.h"
#include "autovoice/separate.h"

#include <cjson/cJSON.h>
#include <fftw3.h>
#include <sndfile.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>

const char *avo_stage_name(avo_stage stage) {
    switch (stage) {
    case AVO_STAGE_SEPARATION: return "separation";
    case AVO_STAGE_F0_EXTRACTION: return "f0_extraction";
    case AVO_STAGE_CONVERSION: return "conversion";
    case AVO_STAGE_MIXING: return "mixing";
    case AVO_STAGE_COUNT: return "total";
    }
    return "unknown";
}

void avo_pipeline_config_default(avo_pipeline_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->preset = AVO_PRESET_BALANCED;
    avo_convert_options_default(&cfg->convert);
}

void avo_pipeline_output_free(avo_pipeline_output *out) {
    if (!out) return;
    avo_audio_free(&out->mix);
    avo_audio_free(&out->vocals);
    avo_audio_free(&out->accompaniment);
    avo_audio_free(&out->converted);
    avo_f0_track_free(&out->source_f0);
}

typedef struct stage_clock {
    const avo_pipeline_config *cfg;
    avo_run_metadata *meta;
    double started;
} stage_clock;

/* Hands memory the finished stage freed back to the system: glibc keeps freed blocks of a song's size
 * in its heap otherwise, and the next stage's peak would sit on top of them. */
static void release_freed_memory(void) {
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static void stage_done(stage_clock *clock, avo_stage stage) {
    release_freed_memory();
    double now = avo_now_ms();
    clock->meta->stage_ms[stage] = now - clock->started;
    clock->started = now;
    if (clock->cfg->on_stage) clock->cfg->on_stage(avo_stage_name(stage), clock->meta->stage_ms[stage], clock->cfg->on_stage_user);
}

/* song_buffer: NULL, or the buffer in->song points to, which the separator may overwrite. */
static avo_status run_separation(const avo_pipeline_config *cfg, const avo_pipeline_input *in, avo_audio *song_buffer,
                                 avo_pipeline_output *out, avo_run_metadata *meta, avo_error *err) {
    if (in->vocals) {
        snprintf(meta->separation_method, sizeof meta->separation_method, "given-stems");
        avo_status st = avo_audio_copy(in->vocals, &out->vocals, err);
        if (!st) st = avo_audio_copy(in->accompaniment, &out->accompaniment, err);
        return st;
    }
    if (cfg->skip_separation) {
        snprintf(meta->separation_method, sizeof meta->separation_method, "none (dry vocal)");
        avo_status st = avo_audio_copy(in->song, &out->vocals, err);
        if (!st) st = avo_audio_alloc(&out->accompaniment, in->song->sample_rate, in->song->channels, in->song->frames, err);
        return st;
    }
    avo_separator_config scfg;
    avo_separator_config_default(&scfg);
    scfg.preset = cfg->preset;
    scfg.threads = cfg->threads;
    /* The separator's working memory grows with its block; 15 s blocks keep a 4-minute song's whole
     * run under 300 MB (30 s blocks: about 320 MB) at no measurable cost in SDR (see bench_separation). */
    scfg.block_seconds = 15.0;
    avo_separator *sep = NULL;
    avo_status st = avo_separator_create(&scfg, &sep, err);
    /* Without stems to keep, the centre estimate alone is enough: a stereo song's vocals come back as
     * one channel, half the memory. A song buffer handed over becomes the accompaniment in place: the
     * same samples as the copying run, one song-length buffer fewer. */
    if (!st && cfg->keep_stems) {
        st = avo_separator_run(sep, in->song, &out->vocals, &out->accompaniment, cfg->progress, cfg->progress_user, err);
    } else if (!st && song_buffer) {
        out->accompaniment = *song_buffer;
        memset(song_buffer, 0, sizeof *song_buffer);
        st = avo_separator_run_in_place(sep, &out->accompaniment, &out->vocals, cfg->progress, cfg->progress_user, err);
    } else if (!st) {
        st = avo_separator_run_centre(sep, in->song, &out->vocals, &out->accompaniment, cfg->progress,
                                      cfg->progress_user, err);
    }
    if (!st) snprintf(meta->separation_method, sizeof meta->separation_method, "%s", avo_separator_method(sep));
    avo_separator_free(sep);
    return st;
}

/* Mono vocals for the next stages and the original vocals' loudness for the mixer; the stereo vocals
 * are released here unless the caller wants the stems. */
static avo_status prepare_vocals(const avo_pipeline_config *cfg, avo_pipeline_output *out, avo_audio *mono,
                                 double *reference_lufs, avo_error *err) {
    avo_status st = avo_audio_loudness(&out->vocals, reference_lufs, err);
    /* Centre-only vocals stand for the same signal in every channel; R128 sums channel powers. */
    if (!st && out->vocals.channels == 1 && out->accompaniment.channels > 1)
        *reference_lufs += 10.0 * log10((double)out->accompaniment.channels);
    if (st || cfg->keep_stems) {
        if (!st) st = avo_audio_to_mono(&out->vocals, mono, err);
        return st;
    }
    if (out->vocals.channels == 1) { /* already mono: hand the buffer over */
        *mono = out->vocals;
        memset(&out->vocals, 0, sizeof out->vocals);
        return AVO_OK;
    }
    /* Down-mix in place into channel 0 and shrink: a separate mono copy would add half a song of
     * memory at the pipeline's busiest moment. */
    avo_audio *v = &out->vocals;
    float *m = v->samples;
    const float scale = 1.0f / (float)v->channels;
    for (int c = 1; c < v->channels; c++) {
        const float *x = avo_audio_channel(v, c);
        for (int64_t i = 0; i < v->frames; i++) m[i] += x[i];
    }
    for (int64_t i = 0; i < v->frames; i++) m[i] *= scale;
    float *shrunk = realloc(v->samples, sizeof(float) * (size_t)(v->frames ? v->frames : 1));
    *mono = *v;
    mono->channels = 1;
    mono->samples = shrunk ? shrunk : v->samples;
    memset(v, 0, sizeof *v);
    return AVO_OK;
}

/* Adds why an engine was rebuilt or not cached to the run's notes. */
static void note_engine(avo_run_metadata *meta, const char *what, const char *outcome, const char *reason) {
    if (!reason || !reason[0]) return;
    const size_t used = strlen(meta->engine_notes);
    snprintf(meta->engine_notes + used, sizeof meta->engine_notes - used, "%s%s: engine %s: %s", used ? "; " : "", what,
             outcome, reason);
}

/* RMVPE on the vocals at 16 kHz: one F0 value per 10 ms, frame i at 10 i ms (as the DSP tracks). */
/* Loads RMVPE on the back end cfg asks the pitch network for, through the engine cache. */
avo_status avo_pipeline_load_pitch_model(const avo_pipeline_config *cfg, avo_backend **be, avo_rmvpe **model,
                                         avo_neural_placement *place, avo_engine_result *engine, avo_error *err) {
    *be = NULL, *model = NULL;
    avo_neural_config cpu_only;
    avo_neural_config_default(&cpu_only);
    const avo_neural_config *ncfg = cfg->neural ? cfg->neural : &cpu_only;
    avo_neural_placement own;
    avo_status st = avo_neural_backend_open_component(ncfg, AVO_NEURAL_PITCH, cfg->threads, be, place ? place : &own, err);
    if (st) return st;
    avo_engine_cache *engines = NULL;
    if (ncfg->engine_cache && avo_engine_cache_open(ncfg->engine_cache_dir, &engines, NULL) != AVO_OK) engines = NULL;
    const avo_engine_request req = {engines, NULL, NULL, NULL};
    if (engine) memset(engine, 0, sizeof *engine);
    st = avo_rmvpe_load_cached(cfg->pitch_model_path, *be, &req, model, engine, err);
    avo_engine_cache_free(engines);
    if (st) {
        avo_backend_free(*be);
        *be = NULL;
    }
    return st;
}

/* The pitch network for one run, with its engine-cache outcome in the run's metadata. */
static avo_status load_rmvpe(const avo_pipeline_config *cfg, avo_backend **be, avo_rmvpe **model,
                             avo_neural_placement *place, avo_run_metadata *meta, avo_error *err) {
    avo_engine_result eng;
    avo_status st = avo_pipeline_load_pitch_model(cfg, be, model, place, &eng, err);
    if (!st) {
        snprintf(meta->f0_engine, sizeof meta->f0_engine, "%s", avo_engine_outcome_name(eng.outcome));
        note_engine(meta, "pitch network", meta->f0_engine, eng.reason);
    }
    return st;
}

/* RMVPE on the vocals at 16 kHz: one F0 value per 10 ms, frame i at 10 i ms (as the DSP tracks). The model
 * is cfg's preloaded one, or loaded for this run. */
static avo_status run_rmvpe(const avo_pipeline_config *cfg, const avo_audio *mono, avo_f0_track *track,
                            avo_run_metadata *meta, avo_error *err) {
    const int64_t n = (int64_t)llround((double)mono->frames * 16000.0 / mono->sample_rate);
    float *x = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!x) return avo_error_set(err, AVO_ERR_NO_MEMORY, "no memory for the 16 kHz vocals");
    avo_backend *be = cfg->pitch_backend, *own_be = NULL;
    avo_rmvpe *model = cfg->pitch_model, *own_model = NULL;
    avo_arena *arena = NULL;
    avo_neural_placement place;
    memset(&place, 0, sizeof place);
    avo_status st = avo_resample_buffer(mono->samples, mono->frames, mono->sample_rate, 16000.0, x, n, err);
    if (!st && !model) {
        st = load_rmvpe(cfg, &own_be, &own_model, &place, meta, err);
        be = own_be, model = own_model;
    } else if (!st) { /* preloaded: say what it runs on */
        const char *name = avo_backend_name(be);
        snprintf(place.backend, sizeof place.backend, "%s", strncmp(name, "cuda", 4) == 0 ? "cuda" : "cpu");
        snprintf(place.device, sizeof place.device, "%s", name);
        snprintf(place.precision, sizeof place.precision, "fp32");
        snprintf(meta->f0_engine, sizeof meta->f0_engine, "preloaded");
    }
    if (!st) st = avo_arena_create(be, (size_t)64 << 20, &arena, err);
    if (!st) st = avo_f0_track_alloc(track, avo_rmvpe_frames(n), 0.010, err);
    if (!st) st = avo_rmvpe_f0(model, arena, x, n, 0.03f, track->f0_hz, track->confidence, err);
    if (!st) {
        avo_neural_backend_observe(be, &place);
        snprintf(meta->f0_device, sizeof meta->f0_device, "%s", place.device);
        snprintf(meta->f0_precision, sizeof meta->f0_precision, "%s", place.precision);
        if (place.fallback[0]) snprintf(meta->device_fallback, sizeof meta->device_fallback, "%s", place.fallback);
    }
    avo_rmvpe_free(own_model);
    avo_arena_free(arena);
    avo_backend_free(own_be);
    free(x);
    return st;
}

static avo_status run_f0(const avo_pipeline_config *cfg, avo_pipeline_output *out, avo_run_metadata *meta,
                         const avo_audio *mono, avo_error *err) {
    avo_status st;
    avo_f0_config fcfg;
    avo_f0_config_default(&fcfg);
    fcfg.method = avo_f0_method_for_preset(cfg->preset);
    fcfg.hop_seconds = cfg->preset == AVO_PRESET_FAST ? 0.010 : 0.005;
    fcfg.threads = cfg->threads;
    if (cfg->progress) cfg->progress("f0_extraction", 0.0, cfg->progress_user);
    snprintf(meta->f0_device, sizeof meta->f0_device, "cpu");
    snprintf(meta->f0_precision, sizeof meta->f0_precision, "fp32");
    if (cfg->pitch_model_path || cfg->pitch_model) {
        snprintf(meta->f0_method, sizeof meta->f0_method, "rmvpe");
        st = run_rmvpe(cfg, mono, &out->source_f0, meta, err);
    } else {
        snprintf(meta->f0_method, sizeof meta->f0_method, "%s", fcfg.method == AVO_F0_FAST ? "fast" : "accurate");
        st = avo_f0_estimate(mono->samples, mono->frames, mono->sample_rate, &fcfg, &out->source_f0, err);
    }
    if (cfg->progress && !st) cfg->progress("f0_extraction", 1.0, cfg->progress_user);
    return st;
}

static avo_status run_conversion(const avo_pipeline_config *cfg, const avo_pipeline_input *in, const avo_audio *mono,
                                 avo_pipeline_output *out, avo_run_metadata *meta, avo_error *err) {
    avo_convert_options opt = cfg->convert;
    opt.preset = cfg->preset;
    opt.threads = cfg->threads;
    avo_converter *conv = cfg->converter;
    avo_status st = AVO_OK;
    if (!conv)
        st = cfg->neural ? avo_converter_create_neural(cfg->neural, in->target, &opt, &conv, err)
                         : avo_converter_create_dsp(in->target, &opt, &conv, err);
    if (!st) st = avo_converter_run(conv, mono, &out->source_f0, &out->converted, cfg->progress, cfg->progress_user, err);
    if (!st) {
        avo_converter_info info;
        avo_converter_get_info(conv, &info);
        snprintf(meta->converter, sizeof meta->converter, "%s", info.name);
        snprintf(meta->backend, sizeof meta->backend, "%s", info.backend);
        snprintf(meta->device, sizeof meta->device, "%s", info.device);
        snprintf(meta->precision, sizeof meta->precision, "%s", info.precision);
        if (info.fallback && info.fallback[0]) { /* after the F0 stage's own notes, if any */
            const size_t used = strlen(meta->device_fallback);
            snprintf(meta->device_fallback + used, sizeof meta->device_fallback - used, "%s%s", used ? "; " : "",
                     info.fallback);
        }
        snprintf(meta->content_device, sizeof meta->content_device, "%s", info.content_device ? info.content_device : "");
        snprintf(meta->content_precision, sizeof meta->content_precision, "%s",
                 info.content_precision ? info.content_precision : "");
        if (info.content_engine) {
            snprintf(meta->content_engine, sizeof meta->content_engine, "%s", info.content_engine);
            snprintf(meta->voice_engine, sizeof meta->voice_engine, "%s", info.voice_engine);
            snprintf(meta->calibration_cache, sizeof meta->calibration_cache, "%s", info.calibration_cache);
            note_engine(meta, "content encoder", info.content_engine, info.content_engine_note);
            note_engine(meta, "voice model", info.voice_engine, info.voice_engine_note);
        }
        meta->applied_transpose_semitones = info.applied_transpose_semitones;
        meta->formant_warp_ratio = info.formant_warp_ratio;
    }
    if (conv != cfg->converter) avo_converter_free(conv);
    return st;
}

static avo_status check_input(const avo_pipeline_config *cfg, const avo_pipeline_input *in, avo_error *err) {
    if (!in || !in->song || (!in->target && !cfg->neural && !cfg->converter))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "the pipeline needs a song and a target voice");
    if (in->song->frames <= 0) return avo_error_set(err, AVO_ERR_INVALID_AUDIO, "the song has no audio");
    if ((in->vocals != NULL) != (in->accompaniment != NULL))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "give both --vocals and --accompaniment, or neither");
    if (in->vocals && (in->vocals->sample_rate != in->accompaniment->sample_rate ||
                       in->vocals->frames != in->accompaniment->frames))
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT,
                             "vocals and accompaniment stems differ in rate or length (%d Hz/%lld vs %d Hz/%lld frames)",
                             in->vocals->sample_rate, (long long)in->vocals->frames,
                             in->accompaniment->sample_rate, (long long)in->accompaniment->frames);
    return AVO_OK;
}

static avo_status pipeline_run(const avo_pipeline_config *cfg, const avo_pipeline_input *in, avo_audio *song_buffer,
                               avo_pipeline_output *out, avo_run_metadata *meta, avo_error *err) {
    avo_pipeline_config defaults;
    if (!cfg) {
        avo_pipeline_config_default(&defaults);
        cfg = &defaults;
    }
    avo_status st = check_input(cfg, in, err);
    if (st) return st;
    memset(out, 0, sizeof *out);
    memset(meta, 0, sizeof *meta);
    snprintf(meta->version, sizeof meta->version, "%s", avo_version());
    snprintf(meta->preset, sizeof meta->preset, "%s", avo_preset_name(cfg->preset));
    meta->threads = cfg->threads;
    const avo_audio *shape = in->vocals ? in->accompaniment : in->song;
    meta->sample_rate = shape->sample_rate;
    meta->channels = shape->channels;
    meta->audio_duration_seconds = (double)shape->frames / shape->sample_rate;

    avo_audio mono = {0};
    double reference_lufs = -HUGE_VAL;
    const double start = avo_now_ms();
    stage_clock clock = {cfg, meta, start};
    st = run_separation(cfg, in, song_buffer, out, meta, err);
    if (!st) st = prepare_vocals(cfg, out, &mono, &reference_lufs, err);
    if (!st) stage_done(&clock, AVO_STAGE_SEPARATION);
    if (!st) st = run_f0(cfg, out, meta, &mono, err);
    if (!st) stage_done(&clock, AVO_STAGE_F0_EXTRACTION);
    if (!st) st = run_conversion(cfg, in, &mono, out, meta, err);
    avo_audio_free(&mono);
    if (!st) stage_done(&clock, AVO_STAGE_CONVERSION);
    if (!st) {
        avo_mix_config mcfg;
        avo_mix_config_default(&mcfg);
        if (cfg->progress) cfg->progress("mixing", 0.0, cfg->progress_user);
        if (cfg->keep_stems) {
            st = avo_audio_copy(&out->accompaniment, &out->mix, err);
        } else { /* the accompaniment buffer becomes the mix */
            out->mix = out->accompaniment;
            memset(&out->accompaniment, 0, sizeof out->accompaniment);
        }
        if (!st) st = avo_mix_in_place(&out->converted, reference_lufs, &out->mix, &mcfg, &meta->mix, err);
        if (!cfg->keep_stems) avo_audio_free(&out->converted);
        if (cfg->progress && !st) cfg->progress("mixing", 1.0, cfg->progress_user);
    }
    if (!st) stage_done(&clock, AVO_STAGE_MIXING);
    avo_audio_free(&mono);
    if (st) {
        avo_pipeline_output_free(out);
        return st;
    }
    meta->total_ms = avo_now_ms() - start;
    meta->rtf = meta->total_ms / 1000.0 / meta->audio_duration_seconds;
    if (cfg->on_stage) cfg->on_stage("total", meta->total_ms, cfg->on_stage_user);
    return AVO_OK;
}

avo_status avo_pipeline_run(const avo_pipeline_config *cfg, const avo_pipeline_input *in, avo_pipeline_output *out,
                            avo_run_metadata *meta, avo_error *err) {
    return pipeline_run(cfg, in, NULL, out, meta, err);
}

avo_status avo_pipeline_run_consuming(const avo_pipeline_config *cfg, const avo_pipeline_input *in, avo_audio *song,
                                      avo_pipeline_output *out, avo_run_metadata *meta, avo_error *err) {
    if (!in || !song || in->song != song)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "avo_pipeline_run_consuming: song must be in->song");
    return pipeline_run(cfg, in, song, out, meta, err);
}

avo_status avo_run_metadata_to_json(const avo_run_metadata *meta, char **json, avo_error *err) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    cJSON_AddNumberToObject(root, "audio_duration_seconds", meta->audio_duration_seconds);
    cJSON *timings = cJSON_AddObjectToObject(root, "stage_timings_ms");
    cJSON *pct = cJSON_AddObjectToObject(root, "stage_percentages");
    for (int s = 0; s < AVO_STAGE_COUNT; s++) {
        cJSON_AddNumberToObject(timings, avo_stage_name((avo_stage)s), meta->stage_ms[s]);
        cJSON_AddNumberToObject(pct, avo_stage_name((avo_stage)s),
                                meta->total_ms > 0 ? 100.0 * meta->stage_ms[s] / meta->total_ms : 0.0);
    }
    cJSON_AddNumberToObject(timings, "total", meta->total_ms);
    cJSON_AddNumberToObject(root, "rtf", meta->rtf);
    cJSON_AddStringToObject(root, "device", meta->device);
    cJSON_AddStringToObject(root, "backend", meta->backend);
    cJSON_AddStringToObject(root, "precision", meta->precision);
    if (meta->device_fallback[0]) cJSON_AddStringToObject(root, "device_fallback", meta->device_fallback);
    if (meta->engine_notes[0]) cJSON_AddStringToObject(root, "engine_notes", meta->engine_notes);
    /* What ran where, per component (the top-level device/backend/precision are the converter's). */
    cJSON *comp = cJSON_AddObjectToObject(root, "components");
    cJSON *f0c = cJSON_AddObjectToObject(comp, "f0_extraction");
    cJSON_AddStringToObject(f0c, "method", meta->f0_method);
    cJSON_AddStringToObject(f0c, "device", meta->f0_device);
    cJSON_AddStringToObject(f0c, "precision", meta->f0_precision);
    if (meta->f0_engine[0]) cJSON_AddStringToObject(f0c, "engine_cache", meta->f0_engine);
    cJSON *cc = cJSON_AddObjectToObject(comp, "conversion");
    cJSON_AddStringToObject(cc, "converter", meta->converter);
    cJSON_AddStringToObject(cc, "device", meta->device);
    cJSON_AddStringToObject(cc, "precision", meta->precision);
    if (meta->content_device[0]) { /* neural: the content encoder and the voice model, each as it ran */
        cJSON *ce = cJSON_AddObjectToObject(cc, "content_encoder");
        cJSON_AddStringToObject(ce, "device", meta->content_device);
        cJSON_AddStringToObject(ce, "precision", meta->content_precision);
        cJSON_AddStringToObject(ce, "engine_cache", meta->content_engine);
        cJSON_AddStringToObject(ce, "calibration_cache", meta->calibration_cache);
        cJSON *vm = cJSON_AddObjectToObject(cc, "voice_model");
        cJSON_AddStringToObject(vm, "device", meta->device);
        cJSON_AddStringToObject(vm, "precision", meta->precision);
        cJSON_AddStringToObject(vm, "engine_cache", meta->voice_engine);
    }
    cJSON_AddStringToObject(root, "preset", meta->preset);
    cJSON_AddStringToObject(root, "converter", meta->converter);
    cJSON_AddStringToObject(root, "separation_method", meta->separation_method);
    cJSON_AddStringToObject(root, "f0_method", meta->f0_method);
    cJSON_AddNumberToObject(root, "threads", meta->threads);
    cJSON_AddNumberToObject(root, "sample_rate", meta->sample_rate);
    cJSON_AddNumberToObject(root, "channels", meta->channels);
    cJSON_AddNumberToObject(root, "applied_transpose_semitones", meta->applied_transpose_semitones);
    cJSON_AddNumberToObject(root, "formant_warp_ratio", meta->formant_warp_ratio);
    cJSON *mix = cJSON_AddObjectToObject(root, "mixing");
    /* -inf (silence) is not JSON: write null. */
    if (isfinite(meta->mix.original_vocals_lufs)) cJSON_AddNumberToObject(mix, "original_vocals_lufs", meta->mix.original_vocals_lufs);
    else cJSON_AddNullToObject(mix, "original_vocals_lufs");
    if (isfinite(meta->mix.converted_vocals_lufs)) cJSON_AddNumberToObject(mix, "converted_vocals_lufs", meta->mix.converted_vocals_lufs);
    else cJSON_AddNullToObject(mix, "converted_vocals_lufs");
    cJSON_AddNumberToObject(mix, "vocal_gain_db", meta->mix.vocal_gain_db);
    if (isfinite(meta->mix.output_true_peak_dbtp)) cJSON_AddNumberToObject(mix, "output_true_peak_dbtp", meta->mix.output_true_peak_dbtp);
    else cJSON_AddNullToObject(mix, "output_true_peak_dbtp");
    cJSON_AddNumberToObject(mix, "limiter_max_reduction_db", meta->mix.limiter_max_reduction_db);
    cJSON_AddStringToObject(root, "input", meta->input);
    cJSON_AddStringToObject(root, "version", meta->version);
    cJSON *versions = cJSON_AddObjectToObject(root, "versions");
    cJSON_AddStringToObject(versions, "autovoice", meta->version);
    cJSON_AddStringToObject(versions, "libsndfile", sf_version_string());
    cJSON_AddStringToObject(versions, "fftw", fftwf_version);
    *json = cJSON_Print(root);
    cJSON_Delete(root);
    return *json ? AVO_OK : avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
}
