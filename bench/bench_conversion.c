/* Conversion quality benchmark over every ordered pair of NUS-48E singers plus speech profiles (see
 * src/report/bench_quality.c for the protocol). Prints a table and writes quality.json.
 *
 * --timing instead times the conversion stage alone (avo_converter_run, the F0 track given) on the 30 s
 * test song's vocals (44.1 kHz, avo_bench_build_song) with the default JLEE target, fast and balanced,
 * median of 3 warm runs, and writes conversion_timing.json.
 *
 * --only LIST keeps the pairs whose source and target are both in the comma-separated LIST of singers
 * and LibriSpeech speakers; --half tune|confirm names the two fixed halves used to tune the converter
 * on one half of the voices and confirm on the other (TUNE_HALF, CONFIRM_HALF below). --verbose prints
 * one line per pair.
 *
 * usage: bench_conversion [--out FILE.json] [--preset fast|balanced|quality] [--protect P] [--quick] [--timing]
 *                         [--only LIST | --half tune|confirm] [--verbose] */
#include "autovoice/bench.h"
#include "autovoice/convert.h"
#include "bench_common.h"

enum { TIMING_RUNS = 3 };

/* Each half: three male and three female singers (one of them with a single clip, a source only) and
 * LibriSpeech speakers for the speech profiles. */
static const char TUNE_HALF[] = "JLEE,KENN,SAMF,MPOL,NJAT,ADIZ,1688-142285,2033-164914";
static const char CONFIRM_HALF[] = "JTAN,VKOW,ZHIY,MPUR,PMAR,MCUR,3005-163389,367-130732,533-1066";

static int timing(const char *out_path) {
    avo_error err;
    avo_audio song = {0}, vocals = {0}, mono = {0};
    avo_voice_analysis *target = NULL;
    if (avo_bench_build_song(bench_data_dir(), 30.0, &song, &vocals, NULL, &err) ||
        avo_audio_to_mono(&vocals, &mono, &err) || avo_bench_make_target(bench_data_dir(), NULL, 0, &target, &err))
        bench_die(&err);
    const double seconds = (double)mono.frames / mono.sample_rate;
    const avo_preset presets[2] = {AVO_PRESET_FAST, AVO_PRESET_BALANCED};
    char json[2048];
    int len = snprintf(json, sizeof json, "{\n  \"benchmark\": \"conversion_stage\",\n  \"song_seconds\": %.2f,\n"
                       "  \"runs\": %d,\n  \"target_seconds\": 1.0", seconds, TIMING_RUNS);
    printf("%-10s %10s %10s %10s\n", "preset", "median s", "best s", "RTF");
    for (int p = 0; p < 2; p++) {
        avo_f0_config fcfg;
        avo_f0_config_default(&fcfg);
        fcfg.method = avo_f0_method_for_preset(presets[p]);
        fcfg.hop_seconds = presets[p] == AVO_PRESET_FAST ? 0.010 : 0.005;
        avo_f0_track f0 = {0};
        avo_convert_options opt;
        avo_convert_options_default(&opt);
        opt.preset = presets[p];
        opt.auto_transpose = 1;
        avo_converter *conv = NULL;
        if (avo_f0_estimate(mono.samples, mono.frames, mono.sample_rate, &fcfg, &f0, &err) ||
            avo_converter_create_dsp(target, &opt, &conv, &err))
            bench_die(&err);
        double t[TIMING_RUNS + 1];
        for (int r = 0; r <= TIMING_RUNS; r++) { /* run 0 warms up */
            avo_audio out = {0};
            const double t0 = avo_now_ms();
            if (avo_converter_run(conv, &vocals, &f0, &out, NULL, NULL, &err)) bench_die(&err);
            t[r] = (avo_now_ms() - t0) / 1000.0;
            avo_audio_free(&out);
        }
        double best = t[1];
        for (int r = 2; r <= TIMING_RUNS; r++) best = t[r] < best ? t[r] : best;
        const double med = bench_median(t + 1, TIMING_RUNS);
        printf("%-10s %10.3f %10.3f %10.4f\n", avo_preset_name(presets[p]), med, best, med / seconds);
        len += snprintf(json + len, sizeof json - (size_t)len, ",\n  \"%s\": {\"median_s\": %.4f, \"best_s\": %.4f}",
                        avo_preset_name(presets[p]), med, best);
        avo_converter_free(conv);
        avo_f0_track_free(&f0);
    }
    snprintf(json + len, sizeof json - (size_t)len, "\n}\n");
    avo_voice_analysis_free(target);
    avo_audio_free(&song);
    avo_audio_free(&vocals);
    avo_audio_free(&mono);
    return bench_write_json(out_path, json);
}

int main(int argc, char **argv) {
    const char *out_path = NULL;
    int timing_only = 0;
    avo_bench_quality_options opt;
    avo_bench_quality_options_default(&opt);
    opt.data_dir = bench_data_dir();
    opt.scope = AVO_QUALITY_ALL;
    opt.log = stdout;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(argv[i], "--preset") && i + 1 < argc) avo_preset_parse(argv[++i], &opt.preset);
        else if (!strcmp(argv[i], "--protect") && i + 1 < argc) opt.protect = atof(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) opt.scope = AVO_QUALITY_STANDARD;
        else if (!strcmp(argv[i], "--timing")) timing_only = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) opt.only = argv[++i];
        else if (!strcmp(argv[i], "--half") && i + 1 < argc && !strcmp(argv[i + 1], "tune")) opt.only = TUNE_HALF, i++;
        else if (!strcmp(argv[i], "--half") && i + 1 < argc && !strcmp(argv[i + 1], "confirm"))
            opt.only = CONFIRM_HALF, i++;
        else if (!strcmp(argv[i], "--verbose")) opt.verbose = 1;
        else {
            fprintf(stderr, "usage: %s [--out FILE.json] [--preset P] [--protect P] [--quick] [--timing] "
                            "[--only LIST | --half tune|confirm] [--verbose]\n", argv[0]);
            return 2;
        }
    }
    if (timing_only) return timing(out_path ? out_path : "bench/out/conversion_timing.json");
    if (!out_path) out_path = "bench/out/quality.json";
    char *json = NULL;
    avo_error err;
    if (avo_bench_quality(&opt, &json, &err)) {
        fprintf(stderr, "bench_conversion: %s\n", err.message);
        return 1;
    }
    const int rc = bench_write_json(out_path, json);
    free(json);
    return rc;
}
