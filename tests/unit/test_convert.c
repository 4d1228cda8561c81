/* convert: target analysis storage, and that conversion moves timbre toward the target while the
 * melody follows the (transposed) source. */
#include "autovoice/convert.h"
#include "test_util.h"

#include <stdint.h>

static void load(const char *name, avo_audio *out) {
    char path[1024];
    snprintf(path, sizeof path, "%s/singing/%s", avo_test_data_dir(), name);
    avo_error err;
    CHECK_OK(avo_audio_read(path, out, &err), &err);
}

static avo_voice_analysis *analyse(const char *a, const char *b) {
    avo_audio clips[2];
    load(a, &clips[0]);
    load(b, &clips[1]);
    avo_voice_analysis *t = NULL;
    avo_error err;
    CHECK_OK(avo_voice_analysis_create(clips, 2, AVO_PRESET_BALANCED, 0, &t, &err), &err);
    avo_audio_free(&clips[0]);
    avo_audio_free(&clips[1]);
    return t;
}

/* Mean absolute difference (dB) between two analyses' average envelopes, levels removed. */
static double timbre_distance_db(const avo_voice_analysis *x, const avo_voice_analysis *y) {
    void *dx, *dy;
    size_t sx, sy;
    avo_voice_analysis_save(x, &dx, &sx, NULL);
    avo_voice_analysis_save(y, &dy, &sy, NULL);
    /* The stored form starts with a fixed header; the mean envelope follows the grid. Use the public
     * summary for sanity and the stored arrays for the comparison. */
    const size_t header = 72; /* magic, version, grid size, rate, unvoiced count, 2 x int64, 4 x double */
    const uint32_t nx = *(const uint32_t *)((const char *)dx + 12);
    const float *mx = (const float *)((const char *)dx + header) + nx;
    const float *my = (const float *)((const char *)dy + header) + nx;
    double mean = 0.0, dist = 0.0;
    for (uint32_t k = 0; k < nx; k++) mean += mx[k] - my[k];
    mean /= nx;
    for (uint32_t k = 0; k < nx; k++) dist += fabs(mx[k] - my[k] - mean);
    free(dx);
    free(dy);
    return 10.0 / log(10.0) * dist / nx; /* natural log of power -> dB */
}

static void test_save_load(avo_voice_analysis *t) {
    void *data = NULL;
    size_t size = 0;
    avo_error err;
    CHECK_OK(avo_voice_analysis_save(t, &data, &size, &err), &err);
    avo_voice_analysis *back = NULL;
    CHECK_OK(avo_voice_analysis_load(data, size, &back, &err), &err);
    avo_voice_summary a, b;
    avo_voice_analysis_summary(t, &a);
    avo_voice_analysis_summary(back, &b);
    CHECK(a.f0_median_hz == b.f0_median_hz && a.voiced_frames == b.voiced_frames && a.sample_rate == b.sample_rate);
    CHECK(timbre_distance_db(t, back) == 0.0);
    avo_voice_analysis_free(back);
    /* Truncated, wrong magic, damaged numbers: all refused. */
    CHECK(avo_voice_analysis_load(data, size - 1, &back, &err) == AVO_ERR_FORMAT);
    unsigned char *bytes = data;
    bytes[0] ^= 0xff;
    CHECK(avo_voice_analysis_load(data, size, &back, &err) == AVO_ERR_FORMAT);
    bytes[0] ^= 0xff;
    float nan = NAN;
    memcpy(bytes + size - 4, &nan, 4);
    CHECK(avo_voice_analysis_load(data, size, &back, &err) == AVO_ERR_FORMAT);
    free(data);
}

/* Version 2 profiles (envelopes only) still load and convert; version 3 arrays are validated. */
static void test_version2_and_v3_fields(avo_voice_analysis *t) {
    void *data = NULL;
    size_t size = 0;
    avo_error err;
    CHECK_OK(avo_voice_analysis_save(t, &data, &size, &err), &err);
    unsigned char *bytes = data;
    uint32_t version, grid;
    int32_t unvoiced;
    int64_t frames;
    memcpy(&version, bytes + 8, 4);
    memcpy(&grid, bytes + 12, 4);
    memcpy(&unvoiced, bytes + 20, 4);
    memcpy(&frames, bytes + 32, 8);
    CHECK(version == 3);
    CHECK_MSG(unvoiced > 50, "only %d unvoiced frames kept from two clips", unvoiced);
    const size_t v2_size = 72 + sizeof(float) * (size_t)(2 * grid + (uint64_t)frames * grid);
    CHECK(size == v2_size + sizeof(float) * (size_t)(frames + frames * grid + (int64_t)unvoiced * grid));
    /* An aperiodicity outside [0, 1] is damage. */
    float bad = 2.0f, keep;
    unsigned char *ap = bytes + v2_size + sizeof(float) * (size_t)frames;
    memcpy(&keep, ap, 4);
    memcpy(ap, &bad, 4);
    avo_voice_analysis *back = NULL;
    CHECK(avo_voice_analysis_load(data, size, &back, &err) == AVO_ERR_FORMAT);
    memcpy(ap, &keep, 4);
    /* The same profile as version 2: the prefix, version 2, reserved field 0. */
    unsigned char *v2 = malloc(v2_size);
    memcpy(v2, bytes, v2_size);
    const uint32_t two = 2;
    const int32_t zero = 0;
    memcpy(v2 + 8, &two, 4);
    memcpy(v2 + 20, &zero, 4);
    CHECK_OK(avo_voice_analysis_load(v2, v2_size, &back, &err), &err);
    if (back) {
        void *again = NULL;
        size_t again_size = 0;
        CHECK_OK(avo_voice_analysis_save(back, &again, &again_size, &err), &err);
        CHECK_MSG(again_size == v2_size, "a version 2 profile must stay version 2 when saved again");
        free(again);
        avo_audio src, out;
        load("nus48e_NJAT_07.flac", &src);
        avo_convert_options opt;
        avo_convert_options_default(&opt);
        opt.preset = AVO_PRESET_FAST;
        avo_converter *conv = NULL;
        CHECK_OK(avo_converter_create_dsp(back, &opt, &conv, &err), &err);
        CHECK_OK(avo_converter_run(conv, &src, NULL, &out, NULL, NULL, &err), &err);
        CHECK(out.frames == src.frames);
        avo_converter_free(conv);
        avo_audio_free(&src);
        avo_audio_free(&out);
        avo_voice_analysis_free(back);
    }
    /* Other versions are refused with a message naming them. */
    const uint32_t four = 4;
    memcpy(v2 + 8, &four, 4);
    CHECK(avo_voice_analysis_load(v2, v2_size, &back, &err) == AVO_ERR_FORMAT && strstr(err.message, "version 4"));
    free(v2);
    free(data);
}

static void test_conversion_moves_timbre(avo_voice_analysis *target) {
    /* Female singer NJAT converted to male singer JLEE, with auto-transpose. */
    avo_audio src, out;
    load("nus48e_NJAT_07.flac", &src);
    avo_voice_analysis *source = analyse("nus48e_NJAT_07.flac", "nus48e_NJAT_16.flac");
    avo_convert_options opt;
    avo_convert_options_default(&opt);
    opt.auto_transpose = 1;
    avo_converter *conv = NULL;
    avo_error err;
    CHECK_OK(avo_converter_create_dsp(target, &opt, &conv, &err), &err);
    CHECK_OK(avo_converter_run(conv, &src, NULL, &out, NULL, NULL, &err), &err);
    CHECK(out.frames == src.frames && out.sample_rate == src.sample_rate && out.channels == 1);
    avo_converter_info info;
    avo_converter_get_info(conv, &info);
    avo_voice_summary ts, ss;
    avo_voice_analysis_summary(target, &ts);
    avo_voice_analysis_summary(source, &ss);
    /* Auto-transpose moves by whole octaves toward the target: NJAT sings about an octave above JLEE. */
    double expect = 12.0 * round(log2(ts.f0_median_hz / ss.f0_median_hz));
    CHECK_MSG(fabs(info.applied_transpose_semitones - expect) < 1e-9, "transpose %.1f, expected %.1f",
              info.applied_transpose_semitones, expect);
    CHECK(strcmp(info.backend, "cpu") == 0 && strcmp(info.precision, "fp32") == 0);
    /* Timbre: the output's average envelope is much closer to the target's than the source's was. */
    avo_voice_analysis *result = NULL;
    CHECK_OK(avo_voice_analysis_create(&out, 1, AVO_PRESET_BALANCED, 0, &result, &err), &err);
    if (result) {
        double before = timbre_distance_db(source, target), after = timbre_distance_db(result, target);
        fprintf(stderr, "timbre distance to target: source %.2f dB, converted %.2f dB\n", before, after);
        CHECK_MSG(after < 0.6 * before, "timbre did not move toward the target: %.2f -> %.2f dB", before, after);
        /* Melody: the output's median F0 is this clip's median moved by the applied transpose. */
        avo_voice_analysis *clip = NULL;
        avo_voice_summary rs, cs = {0};
        CHECK_OK(avo_voice_analysis_create(&src, 1, AVO_PRESET_BALANCED, 0, &clip, &err), &err);
        if (clip) avo_voice_analysis_summary(clip, &cs);
        avo_voice_analysis_free(clip);
        avo_voice_analysis_summary(result, &rs);
        double cents = 1200.0 * log2(rs.f0_median_hz / (cs.f0_median_hz * pow(2.0, expect / 12.0)));
        CHECK_MSG(fabs(cents) < 50.0, "output median F0 off by %.1f cents", cents);
    }
    avo_voice_analysis_free(result);
    avo_voice_analysis_free(source);
    avo_converter_free(conv);
    avo_audio_free(&src);
    avo_audio_free(&out);
}

/* Loudness contour (50 ms RMS in dB, floored at -60) of x. */
static void rms_contour(const float *x, int64_t n, int win, double *db, int64_t frames) {
    for (int64_t f = 0; f < frames; f++) {
        double e = 1e-6 * win;
        for (int64_t i = f * win; i < (f + 1) * win && i < n; i++) e += (double)x[i] * x[i];
        db[f] = 10.0 * log10(e / win);
    }
}

static double correlation(const double *a, const double *b, int64_t n) {
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (int64_t i = 0; i < n; i++) ma += a[i], mb += b[i];
    ma /= n, mb /= n;
    for (int64_t i = 0; i < n; i++) sab += (a[i] - ma) * (b[i] - mb), saa += (a[i] - ma) * (a[i] - ma), sbb += (b[i] - mb) * (b[i] - mb);
    return sab / sqrt(saa * sbb + 1e-30);
}

static void test_long_input_in_blocks(avo_voice_analysis *target) {
    /* 45 s of singing (four clips back to back) is converted in several blocks; the blocks must land
     * where they belong: the output's loudness contour follows the source's over the whole length,
     * and every block carries sound. */
    const char *names[] = {"nus48e_MPOL_11.flac", "nus48e_MPOL_20.flac", "nus48e_PMAR_11.flac", "nus48e_PMAR_15.flac"};
    avo_audio parts[4], src, out;
    int64_t total = 0;
    for (int i = 0; i < 4; i++) load(names[i], &parts[i]), total += parts[i].frames;
    avo_audio_alloc(&src, parts[0].sample_rate, 1, total, NULL);
    int64_t pos = 0;
    for (int i = 0; i < 4; i++) {
        memcpy(src.samples + pos, parts[i].samples, sizeof(float) * (size_t)parts[i].frames);
        pos += parts[i].frames;
        avo_audio_free(&parts[i]);
    }
    CHECK((double)total / src.sample_rate > 2.5 * 15.0);
    avo_convert_options opt;
    avo_convert_options_default(&opt);
    opt.preset = AVO_PRESET_FAST;
    avo_converter *conv = NULL;
    avo_error err;
    CHECK_OK(avo_converter_create_dsp(target, &opt, &conv, &err), &err);
    CHECK_OK(avo_converter_run(conv, &src, NULL, &out, NULL, NULL, &err), &err);
    CHECK(out.frames == src.frames);
    const int win = src.sample_rate / 20;
    const int64_t frames = src.frames / win;
    double *a = malloc(sizeof(double) * (size_t)frames), *b = malloc(sizeof(double) * (size_t)frames);
    rms_contour(src.samples, src.frames, win, a, frames);
    rms_contour(out.samples, out.frames, win, b, frames);
    double r = correlation(a, b, frames);
    CHECK_MSG(r > 0.9, "loudness contours of source and output correlate only %.3f", r);
    /* Every 5 s stretch that is loud in the source is loud in the output too. */
    for (int64_t f = 0; f + 100 <= frames; f += 100) {
        double ms = -1e9, mo = -1e9;
        for (int64_t g = f; g < f + 100; g++) ms = fmax(ms, a[g]), mo = fmax(mo, b[g]);
        if (ms > -35.0) CHECK_MSG(mo > ms - 20.0, "output nearly silent at %.0f s (%.1f dB vs source %.1f dB)",
                                  (double)f * win / src.sample_rate, mo, ms);
    }
    free(a);
    free(b);
    avo_converter_free(conv);
    avo_audio_free(&src);
    avo_audio_free(&out);
}

int main(void) {
    avo_voice_analysis *target = analyse("nus48e_JLEE_11.flac", "nus48e_JLEE_15.flac");
    if (!target) TEST_MAIN_END();
    avo_voice_summary s;
    avo_voice_analysis_summary(target, &s);
    CHECK(s.voiced_seconds > 5.0 && s.f0_median_hz > 80.0 && s.f0_median_hz < 400.0);
    CHECK(s.f0_low_hz <= s.f0_median_hz && s.f0_median_hz <= s.f0_high_hz);
    test_save_load(target);
    test_version2_and_v3_fields(target);
    test_conversion_moves_timbre(target);
    test_long_input_in_blocks(target);
    avo_voice_analysis_free(target);
    TEST_MAIN_END();
}
