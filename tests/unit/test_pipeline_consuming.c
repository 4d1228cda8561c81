/* pipeline: avo_pipeline_run_consuming separates the handed-over song in place and must give the same
 * mix, sample for sample, as avo_pipeline_run on a copy (DSP converter, fast preset, a short stereo
 * song: a sung clip over falcon69's accompaniment); the song buffer is left empty, and a song that
 * is not the one in the input is refused. */
#include "autovoice/convert.h"
#include "autovoice/pipeline.h"
#include "test_util.h"

#include <stdint.h>

static void load(const char *rel, avo_audio *out) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", avo_test_data_dir(), rel);
    avo_error err;
    CHECK_OK(avo_audio_read(path, out, &err), &err);
}

int main(void) {
    avo_audio voice, acc, target_clips[2];
    load("singing/vocadito_10.flac", &voice);
    load("stems/falcon69/drums.flac", &acc);
    load("singing/vocadito_14.flac", &target_clips[0]);
    load("singing/nus48e_MPOL_11.flac", &target_clips[1]);
    avo_error err;
    avo_voice_analysis *target = NULL;
    CHECK_OK(avo_voice_analysis_create(target_clips, 2, AVO_PRESET_FAST, 0, &target, &err), &err);
    /* 5 s of stereo song at the accompaniment's rate: the (mono, 44.1 kHz) voice in the centre */
    const int64_t n = 5 * (int64_t)acc.sample_rate;
    avo_audio song;
    CHECK_OK(avo_audio_alloc(&song, acc.sample_rate, 2, n, &err), &err);
    for (int c = 0; c < 2; c++) {
        float *y = avo_audio_channel(&song, c);
        const float *a = avo_audio_channel(&acc, c < acc.channels ? c : 0), *v = avo_audio_channel(&voice, 0);
        for (int64_t i = 0; i < n; i++) y[i] = 0.5f * (i < acc.frames ? a[i] : 0.0f) + (i < voice.frames ? v[i] : 0.0f);
    }
    avo_audio copy;
    CHECK_OK(avo_audio_copy(&song, &copy, &err), &err);

    avo_pipeline_config cfg;
    avo_pipeline_config_default(&cfg);
    cfg.preset = AVO_PRESET_FAST;
    cfg.threads = 2;
    avo_pipeline_output a, b;
    avo_run_metadata ma, mb;
    avo_pipeline_input in_a = {&copy, NULL, NULL, target}, in_b = {&song, NULL, NULL, target};
    CHECK_OK(avo_pipeline_run(&cfg, &in_a, &a, &ma, &err), &err);
    avo_audio other = {0};
    CHECK(avo_pipeline_run_consuming(&cfg, &in_b, &other, &b, &mb, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(song.samples != NULL); /* refused: the song is untouched */
    CHECK_OK(avo_pipeline_run_consuming(&cfg, &in_b, &song, &b, &mb, &err), &err);
    CHECK_MSG(song.samples == NULL && song.frames == 0, "the consumed song buffer is not left empty");
    CHECK(a.mix.frames == n && b.mix.frames == n && a.mix.channels == 2 && b.mix.channels == 2);
    if (a.mix.frames == b.mix.frames && a.mix.channels == b.mix.channels) {
        int64_t diff = 0;
        double energy = 0;
        for (int64_t i = 0; i < a.mix.frames * a.mix.channels; i++) {
            diff += a.mix.samples[i] != b.mix.samples[i];
            energy += (double)a.mix.samples[i] * a.mix.samples[i];
        }
        CHECK_MSG(diff == 0, "%lld samples of the mix differ between the copying and the consuming run", (long long)diff);
        CHECK_MSG(energy > 1.0, "the mix is silent (energy %g)", energy);
    }
    CHECK(strcmp(ma.separation_method, mb.separation_method) == 0);
    avo_pipeline_output_free(&a);
    avo_pipeline_output_free(&b);
    avo_audio_free(&song); /* a no-op after the handover */
    avo_audio_free(&copy);
    avo_audio_free(&voice);
    avo_audio_free(&acc);
    avo_audio_free(&target_clips[0]);
    avo_audio_free(&target_clips[1]);
    avo_voice_analysis_free(target);
    TEST_MAIN_END();
}
