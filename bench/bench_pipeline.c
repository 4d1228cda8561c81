/* Pipeline benchmark (issue: end-to-end product): per-stage wall time, RTF and peak RSS for a 30 s and
 * a 4 min song, presets fast and balanced. Each case runs in its own child process so peak RSS is its own.
 *
 * Songs are built from ../shared/data: the falcon69 accompaniment (drums+bass+other) looped, and the
 * NUS-48E singing clips (16 kHz, upsampled to 44.1 kHz, centre-panned) one after another over it at a
 * vocal-to-accompaniment ratio of 0 dB (RMS). The target profile is made from singer JLEE's two clips.
 *
 * usage: bench_pipeline [--out FILE.json] [--repeats N] [--threads N] */
#include "autovoice/pipeline.h"
#include "bench_common.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *SINGING[] = {"NJAT_07", "NJAT_16", "MPOL_11", "MPOL_20", "KENN_04", "KENN_10", "SAMF_13",
                                "SAMF_18", "ZHIY_03", "ZHIY_06", "VKOW_11", "VKOW_19", "PMAR_11", "PMAR_15",
                                "MPUR_02", "MPUR_03", "JTAN_07", "JTAN_16"};

static double rms(const avo_audio *a) {
    double s = 0;
    for (int64_t i = 0; i < a->frames * a->channels; i++) s += (double)a->samples[i] * a->samples[i];
    return sqrt(s / (double)(a->frames * a->channels) + 1e-20);
}

static void build_song(double seconds, avo_audio *song) {
    const int64_t frames = (int64_t)(seconds * 44100);
    avo_audio acc_src, acc, vocals;
    bench_falcon_accompaniment(&acc_src);
    bench_loop_to(&acc_src, frames, &acc);
    avo_audio_alloc(&vocals, 44100, 2, frames, NULL);
    int64_t pos = 0;
    for (size_t k = 0; pos < frames; k = (k + 1) % (sizeof SINGING / sizeof SINGING[0])) {
        char rel[128];
        snprintf(rel, sizeof rel, "singing/nus48e_%s.flac", SINGING[k]);
        avo_audio clip;
        bench_load(rel, 44100, 2, &clip);
        for (int c = 0; c < 2; c++)
            for (int64_t i = 0; i < clip.frames && pos + i < frames; i++)
                avo_audio_channel(&vocals, c)[pos + i] = avo_audio_channel(&clip, c)[i];
        pos += clip.frames;
        avo_audio_free(&clip);
    }
    const float g = (float)(rms(&acc) / rms(&vocals));
    avo_audio_alloc(song, 44100, 2, frames, NULL);
    for (int64_t i = 0; i < 2 * frames; i++) song->samples[i] = 0.5f * (g * vocals.samples[i] + acc.samples[i]);
    avo_audio_free(&acc_src);
    avo_audio_free(&acc);
    avo_audio_free(&vocals);
}

static avo_voice_analysis *make_target(void) {
    avo_audio clips[2];
    bench_load("singing/nus48e_JLEE_11.flac", 16000, 1, &clips[0]);
    bench_load("singing/nus48e_JLEE_15.flac", 16000, 1, &clips[1]);
    avo_voice_analysis *t = NULL;
    avo_error err;
    if (avo_voice_analysis_create(clips, 2, AVO_PRESET_BALANCED, 0, &t, &err)) {
        fprintf(stderr, "bench: profile analysis failed: %s\n", err.message);
        exit(1);
    }
    avo_audio_free(&clips[0]);
    avo_audio_free(&clips[1]);
    return t;
}

typedef struct case_result {
    double stage_ms[AVO_STAGE_COUNT];
    double total_ms, rtf, peak_rss_mb, song_seconds;
    int ok;
} case_result;

/* Child: builds the song, runs the pipeline `repeats` times, reports medians and its peak RSS. */
static case_result run_case(double seconds, avo_preset preset, int repeats, int threads) {
    case_result r;
    memset(&r, 0, sizeof r);
    avo_audio song;
    build_song(seconds, &song);
    avo_voice_analysis *target = make_target();
    r.song_seconds = (double)song.frames / song.sample_rate;
    double stage[AVO_STAGE_COUNT][16], total[16];
    for (int k = 0; k < repeats; k++) {
        avo_pipeline_config cfg;
        avo_pipeline_config_default(&cfg);
        cfg.preset = preset;
        cfg.threads = threads;
        avo_pipeline_input in = {&song, NULL, NULL, target};
        avo_pipeline_output out;
        avo_run_metadata meta;
        avo_error err;
        if (avo_pipeline_run(&cfg, &in, &out, &meta, &err)) {
            fprintf(stderr, "bench: pipeline failed: %s\n", err.message);
            return r;
        }
        for (int s = 0; s < AVO_STAGE_COUNT; s++) stage[s][k] = meta.stage_ms[s];
        total[k] = meta.total_ms;
        avo_pipeline_output_free(&out);
    }
    for (int s = 0; s < AVO_STAGE_COUNT; s++) r.stage_ms[s] = bench_median(stage[s], repeats);
    r.total_ms = bench_median(total, repeats);
    r.rtf = r.total_ms / 1000.0 / r.song_seconds;
    r.peak_rss_mb = bench_peak_rss_mb();
    r.ok = 1;
    avo_voice_analysis_free(target);
    avo_audio_free(&song);
    return r;
}

static case_result run_in_child(double seconds, avo_preset preset, int repeats, int threads) {
    int fd[2];
    case_result r;
    memset(&r, 0, sizeof r);
    if (pipe(fd) != 0) return r;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        case_result cr = run_case(seconds, preset, repeats, threads);
        ssize_t w = write(fd[1], &cr, sizeof cr);
        _exit(w == (ssize_t)sizeof cr ? 0 : 1);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], &r, sizeof r);
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    if (got != (ssize_t)sizeof r) r.ok = 0;
    return r;
}

int main(int argc, char **argv) {
    const char *out_path = "bench/out/pipeline.json";
    int repeats = 3, threads = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--out")) out_path = argv[i + 1];
        else if (!strcmp(argv[i], "--repeats")) repeats = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
    }
    if (repeats < 1 || repeats > 16) repeats = 3;
    const double lengths[] = {30.0, 240.0};
    const avo_preset presets[] = {AVO_PRESET_FAST, AVO_PRESET_BALANCED};
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "benchmark", "pipeline");
    cJSON_AddStringToObject(root, "song", "falcon69 drums+bass+other looped, NUS-48E clips over it at 0 dB VAR, 44.1 kHz stereo");
    cJSON_AddNumberToObject(root, "repeats", repeats);
    cJSON_AddNumberToObject(root, "threads", threads);
    cJSON *cases = cJSON_AddArrayToObject(root, "cases");
    printf("%-8s %-9s %10s %10s %10s %10s %10s %8s %9s\n", "song", "preset", "sep ms", "f0 ms", "conv ms", "mix ms",
           "total ms", "RTF", "peak MB");
    for (int l = 0; l < 2; l++) {
        for (int p = 0; p < 2; p++) {
            int reps = lengths[l] > 60 ? 1 : repeats;
            case_result r = run_in_child(lengths[l], presets[p], reps, threads);
            if (!r.ok) {
                printf("%-8.0f %-9s failed\n", lengths[l], avo_preset_name(presets[p]));
                continue;
            }
            printf("%-8.0f %-9s %10.1f %10.1f %10.1f %10.1f %10.1f %8.4f %9.1f\n", r.song_seconds,
                   avo_preset_name(presets[p]), r.stage_ms[0], r.stage_ms[1], r.stage_ms[2], r.stage_ms[3], r.total_ms,
                   r.rtf, r.peak_rss_mb);
            cJSON *c = cJSON_CreateObject();
            cJSON_AddNumberToObject(c, "audio_duration_seconds", r.song_seconds);
            cJSON_AddStringToObject(c, "preset", avo_preset_name(presets[p]));
            cJSON_AddNumberToObject(c, "repeats", reps);
            cJSON *t = cJSON_AddObjectToObject(c, "stage_timings_ms");
            for (int s = 0; s < AVO_STAGE_COUNT; s++) cJSON_AddNumberToObject(t, avo_stage_name((avo_stage)s), r.stage_ms[s]);
            cJSON_AddNumberToObject(t, "total", r.total_ms);
            cJSON_AddNumberToObject(c, "rtf", r.rtf);
            cJSON_AddNumberToObject(c, "peak_rss_mb", r.peak_rss_mb);
            cJSON_AddItemToArray(cases, c);
        }
    }
    char *text = cJSON_Print(root);
    FILE *f = fopen(out_path, "w");
    if (!f) {
        char cmd[1100];
        snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\"", out_path);
        if (system(cmd) == 0) f = fopen(out_path, "w");
    }
    if (f) {
        fprintf(f, "%s\n", text);
        fclose(f);
        printf("wrote %s\n", out_path);
    }
    free(text);
    cJSON_Delete(root);
    return 0;
}
