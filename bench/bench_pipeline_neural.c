/* The whole product on a song with a neural voice model (issue 8: "the full song, all stages, under 1 s"):
 * decode once, then avo_pipeline_run end to end (separation, RMVPE F0, HuBERT + RVC conversion, mixing)
 * with the models loaded ONCE and reused, as a server or a batch job runs them; the one-time load is
 * timed separately, and the first (warm-up) run is reported apart from the steady-state medians.
 *
 * usage: bench_pipeline_neural --models DIR --song FILE [--device cpu|cuda] [--precision SPEC] [--calib FILE]
 *                              [--preset fast|balanced|quality] [--repeats N] [--threads N] [--out PATH]
 * Models: DIR/hubert_base.pt, DIR/rmvpe.pt, DIR/rvc_v2_40k.pth (make_random_models.py, real sizes).
 * Stage times are the pipeline's own (the profiling callback's numbers); total is theirs summed. */
#include "autovoice/models.h"
#include "autovoice/pipeline.h"
#include "bench_common.h"

#include <cjson/cJSON.h>
#include <time.h>

#define MAX_REPEATS 64

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void die_usage(void) {
    fprintf(stderr, "usage: bench_pipeline_neural --models DIR --song FILE [--device cpu|cuda] [--precision SPEC] "
                    "[--calib FILE] [--preset P] [--repeats N] [--threads N] [--out PATH]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *models = NULL, *song_path = NULL, *device = "cpu", *precision = "fp32", *calib = NULL;
    const char *preset_name = "fast", *out_path = "bench/out/pipeline_neural.json";
    int repeats = 5, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) die_usage();
        if (!strcmp(a, "--models")) models = v;
        else if (!strcmp(a, "--song")) song_path = v;
        else if (!strcmp(a, "--device")) device = v;
        else if (!strcmp(a, "--precision")) precision = v;
        else if (!strcmp(a, "--calib")) calib = v;
        else if (!strcmp(a, "--preset")) preset_name = v;
        else if (!strcmp(a, "--repeats")) repeats = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--out")) out_path = v;
        else die_usage();
        i++;
    }
    if (!models || !song_path || repeats < 1 || repeats > MAX_REPEATS) die_usage();
    avo_error err = {0};
    char hub[4096], rm[4096], rvc[4096];
    snprintf(hub, sizeof hub, "%s/hubert_base.pt", models);
    snprintf(rm, sizeof rm, "%s/rmvpe.pt", models);
    snprintf(rvc, sizeof rvc, "%s/rvc_v2_40k.pth", models);
    avo_audio song = {0};
    if (avo_audio_read(song_path, &song, &err)) bench_die(&err);

    avo_pipeline_config cfg;
    avo_pipeline_config_default(&cfg);
    if (avo_preset_parse(preset_name, &cfg.preset)) die_usage();
    cfg.threads = threads;
    avo_neural_config ncfg;
    avo_neural_config_default(&ncfg);
    ncfg.model_path = rvc;
    ncfg.content_encoder_path = hub;
    ncfg.device = device;
    ncfg.calibration_path = calib;
    if (avo_neural_parse_precision(precision, &ncfg, &err)) bench_die(&err);

    /* The one-time part: back ends, engine files (or checkpoints) of the three models. */
    const double t_load = now_s();
    avo_convert_options opt = cfg.convert;
    opt.preset = cfg.preset;
    opt.threads = threads;
    avo_converter *conv = NULL;
    if (avo_converter_create_neural(&ncfg, NULL, &opt, &conv, &err)) bench_die(&err);
    cfg.neural = &ncfg;
    cfg.pitch_model_path = rm;
    avo_backend *pitch_be = NULL;
    avo_rmvpe *pitch = NULL;
    if (avo_pipeline_load_pitch_model(&cfg, &pitch_be, &pitch, NULL, NULL, &err)) bench_die(&err);
    const double load_s = now_s() - t_load;
    cfg.converter = conv;
    cfg.pitch_model = pitch;
    cfg.pitch_backend = pitch_be;

    double st[AVO_STAGE_COUNT][MAX_REPEATS], total[MAX_REPEATS], first[AVO_STAGE_COUNT + 1];
    avo_run_metadata meta;
    avo_pipeline_input in = {&song, NULL, NULL, NULL};
    for (int r = -1; r < repeats; r++) { /* r = -1: the first run, reported apart */
        avo_pipeline_output out;
        memset(&out, 0, sizeof out);
        if (avo_pipeline_run(&cfg, &in, &out, &meta, &err)) bench_die(&err);
        avo_pipeline_output_free(&out);
        double sum = 0;
        for (int s = 0; s < AVO_STAGE_COUNT; s++) {
            if (r < 0) first[s] = meta.stage_ms[s];
            else st[s][r] = meta.stage_ms[s];
            sum += meta.stage_ms[s];
        }
        if (r < 0) first[AVO_STAGE_COUNT] = sum;
        else total[r] = sum;
    }
    printf("song %s: %.1f s, %d Hz, %d ch; device %s, precision %s, preset %s; models loaded once in %.3f s\n",
           song_path, (double)song.frames / song.sample_rate, song.sample_rate, song.channels, device, precision,
           preset_name, load_s);
    printf("%-16s %10s %12s\n", "stage", "first ms", "median ms");
    cJSON *root = cJSON_CreateObject(), *med = cJSON_AddObjectToObject(root, "median_ms"),
          *fst = cJSON_AddObjectToObject(root, "first_run_ms");
    for (int s = 0; s <= AVO_STAGE_COUNT; s++) {
        const double m = s < AVO_STAGE_COUNT ? bench_median(st[s], repeats) : bench_median(total, repeats);
        printf("%-16s %10.1f %12.1f\n", avo_stage_name((avo_stage)s), first[s], m);
        cJSON_AddNumberToObject(med, avo_stage_name((avo_stage)s), m);
        cJSON_AddNumberToObject(fst, avo_stage_name((avo_stage)s), first[s]);
    }
    printf("what ran: f0 %s %s, content encoder %s %s, voice model %s %s%s%s\n", meta.f0_device, meta.f0_precision,
           meta.content_device, meta.content_precision, meta.device, meta.precision,
           meta.device_fallback[0] ? "; fallback: " : "", meta.device_fallback);
    cJSON_AddStringToObject(root, "song", song_path);
    cJSON_AddNumberToObject(root, "song_seconds", (double)song.frames / song.sample_rate);
    cJSON_AddStringToObject(root, "device", device);
    cJSON_AddStringToObject(root, "precision_requested", precision);
    cJSON_AddStringToObject(root, "preset", preset_name);
    cJSON_AddNumberToObject(root, "repeats", repeats);
    cJSON_AddNumberToObject(root, "model_load_seconds", load_s);
    cJSON *ran = cJSON_AddObjectToObject(root, "ran");
    cJSON_AddStringToObject(ran, "f0", meta.f0_device);
    cJSON_AddStringToObject(ran, "f0_precision", meta.f0_precision);
    cJSON_AddStringToObject(ran, "content_encoder", meta.content_device);
    cJSON_AddStringToObject(ran, "content_precision", meta.content_precision);
    cJSON_AddStringToObject(ran, "voice_model", meta.device);
    cJSON_AddStringToObject(ran, "voice_precision", meta.precision);
    cJSON_AddStringToObject(ran, "fallback", meta.device_fallback);
    char *json = cJSON_Print(root);
    cJSON_Delete(root);
    const int rc = bench_write_json(out_path, json);
    free(json);
    avo_rmvpe_free(pitch);
    avo_backend_free(pitch_be);
    avo_converter_free(conv);
    avo_audio_free(&song);
    return rc;
}
