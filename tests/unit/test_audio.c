/* audio module: decode/encode round trips, bad input, resampling, loudness. */
#include "autovoice/audio.h"
#include "test_util.h"

#include <omp.h>

#include <sndfile.h>
#include <unistd.h>

static char tmpdir[512];

static void make_sine(avo_audio *a, int rate, int channels, double seconds, double hz, float amp) {
    avo_audio_alloc(a, rate, channels, (int64_t)(seconds * rate), NULL);
    for (int c = 0; c < channels; c++) {
        float *x = avo_audio_channel(a, c);
        for (int64_t i = 0; i < a->frames; i++) x[i] = amp * (float)sin(2 * M_PI * hz * (double)i / rate + c);
    }
}

static void test_round_trip(const char *ext, float tol) {
    char path[600];
    snprintf(path, sizeof path, "%s/rt.%s", tmpdir, ext);
    avo_audio a, b;
    avo_error err;
    make_sine(&a, 22050, 2, 0.5, 440, 0.5f);
    CHECK_OK(avo_audio_write(path, &a, AVO_AUDIO_AUTO, &err), &err);
    CHECK_OK(avo_audio_read(path, &b, &err), &err);
    CHECK(b.channels == 2 && b.sample_rate == 22050 && b.frames == a.frames);
    double maxdiff = 0;
    for (int64_t i = 0; i < a.frames * 2 && b.frames == a.frames; i++) {
        double d = fabs(a.samples[i] - b.samples[i]);
        if (d > maxdiff) maxdiff = d;
    }
    CHECK_MSG(maxdiff < tol, "%s round trip max diff %g", ext, maxdiff);
    avo_audio_free(&a);
    avo_audio_free(&b);
}

/* Mono 24-bit with an odd frame count: the data chunk has an odd byte length, which is legal. */
static void test_odd_length_wav(void) {
    char path[600];
    snprintf(path, sizeof path, "%s/odd.wav", tmpdir);
    avo_audio a, b;
    avo_error err;
    make_sine(&a, 16000, 1, 0.0, 440, 0.5f);
    avo_audio_free(&a);
    avo_audio_alloc(&a, 16000, 1, 11025, NULL);
    for (int i = 0; i < 11025; i++) a.samples[i] = 0.25f * (float)sin(i * 0.05);
    CHECK_OK(avo_audio_write(path, &a, AVO_AUDIO_WAV_PCM24, &err), &err);
    CHECK_OK(avo_audio_read(path, &b, &err), &err);
    CHECK(b.frames == 11025);
    avo_audio_free(&a);
    avo_audio_free(&b);
}

static void test_mp3_and_ogg(void) {
    /* libsndfile encodes both; decoding them back proves the readers work. */
    const struct { const char *ext; int format; } cases[] = {
        {"mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III},
        {"ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char path[600];
        snprintf(path, sizeof path, "%s/enc.%s", tmpdir, cases[k].ext);
        SF_INFO info = {.samplerate = 44100, .channels = 2, .format = cases[k].format};
        SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
        CHECK_MSG(sf != NULL, "cannot encode %s: %s", cases[k].ext, sf_strerror(NULL));
        if (!sf) continue;
        float buf[2 * 4410];
        for (int i = 0; i < 4410; i++) buf[2 * i] = buf[2 * i + 1] = 0.3f * (float)sin(2 * M_PI * 440 * i / 44100.0);
        for (int r = 0; r < 10; r++) sf_writef_float(sf, buf, 4410);
        sf_close(sf);
        avo_audio a;
        avo_error err;
        CHECK_OK(avo_audio_read(path, &a, &err), &err);
        CHECK(a.channels == 2 && a.sample_rate == 44100);
        CHECK_MSG(llabs((long long)a.frames - 44100) < 3000, "%s frames %lld", cases[k].ext, (long long)a.frames);
        CHECK(avo_audio_peak(&a) > 0.2f);
        avo_audio_free(&a);
    }
}

static void expect_read_error(const char *path, avo_status want, const char *what) {
    avo_audio a;
    avo_error err = {0};
    avo_status st = avo_audio_read(path, &a, &err);
    CHECK_MSG(st == want, "%s: got %s (%s)", what, avo_status_name(st), err.message);
    CHECK_MSG(strstr(err.message, path) != NULL, "%s: message must name the file: %s", what, err.message);
}

static void test_bad_input(void) {
    char path[600];
    expect_read_error("/nonexistent/file.wav", AVO_ERR_NOT_FOUND, "missing file");
    expect_read_error(tmpdir, AVO_ERR_INVALID_ARGUMENT, "directory");
    snprintf(path, sizeof path, "%s/empty.wav", tmpdir);
    fclose(fopen(path, "wb"));
    expect_read_error(path, AVO_ERR_FORMAT, "empty file");
    snprintf(path, sizeof path, "%s/text.wav", tmpdir);
    FILE *f = fopen(path, "wb");
    fputs("this is not audio at all, just words in a file with a .wav name\n", f);
    fclose(f);
    expect_read_error(path, AVO_ERR_FORMAT, "wrong content");

    /* truncated WAV: write a good one, then cut it. */
    avo_audio a;
    make_sine(&a, 16000, 1, 1.0, 220, 0.5f);
    snprintf(path, sizeof path, "%s/trunc.wav", tmpdir);
    avo_audio_write(path, &a, AVO_AUDIO_WAV_PCM16, NULL);
    CHECK(truncate(path, 44 + 8000) == 0);
    expect_read_error(path, AVO_ERR_FORMAT, "truncated wav");

    /* zero-length audio: a valid header with no frames. */
    snprintf(path, sizeof path, "%s/zero.wav", tmpdir);
    a.frames = 0;
    CHECK_OK(avo_audio_write(path, &a, AVO_AUDIO_WAV_PCM16, NULL), (avo_error *)NULL);
    expect_read_error(path, AVO_ERR_INVALID_AUDIO, "zero-length");
    a.frames = 16000;

    /* NaN samples in a float WAV. */
    a.samples[100] = NAN;
    snprintf(path, sizeof path, "%s/nan.wav", tmpdir);
    SF_INFO info = {.samplerate = 16000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    sf_command(sf, SFC_SET_CLIPPING, NULL, SF_FALSE);
    sf_writef_float(sf, a.samples, a.frames);
    sf_close(sf);
    expect_read_error(path, AVO_ERR_INVALID_AUDIO, "NaN samples");
    avo_audio_free(&a);
}

static void test_write_errors(void) {
    avo_audio a;
    avo_error err = {0};
    make_sine(&a, 16000, 1, 0.1, 220, 0.5f);
    CHECK(avo_audio_write("/nonexistent-dir/out.wav", &a, AVO_AUDIO_AUTO, &err) == AVO_ERR_IO);
    CHECK(strstr(err.message, "/nonexistent-dir/out.wav") != NULL);
    char path[600];
    snprintf(path, sizeof path, "%s/out.mp4", tmpdir);
    CHECK(avo_audio_write(path, &a, AVO_AUDIO_AUTO, &err) == AVO_ERR_INVALID_ARGUMENT);
    CHECK(access(path, F_OK) != 0);
    avo_audio_free(&a);
}

static void test_resample_and_loudness(void) {
    avo_audio a, b;
    avo_error err;
    make_sine(&a, 44100, 1, 2.0, 1000, 0.5f);
    CHECK_OK(avo_audio_resample(&a, 16000, &b, &err), &err);
    CHECK(b.sample_rate == 16000 && llabs((long long)b.frames - 32000) <= 1);
    /* The 1 kHz tone keeps its amplitude and frequency: count zero crossings in the middle second. */
    int zc = 0;
    float *x = b.samples;
    float peak = 0;
    for (int i = 8000; i < 24000; i++) {
        if ((x[i] >= 0) != (x[i + 1] >= 0)) zc++;
        if (fabsf(x[i]) > peak) peak = fabsf(x[i]);
    }
    CHECK_MSG(abs(zc - 2000) <= 2, "zero crossings %d", zc);
    CHECK_NEAR(peak, 0.5, 0.01);
    /* A 1 kHz sine of peak 0.5 has RMS -9.03 dBFS; K-weighting adds +0.69 dB at 1 kHz, R128 subtracts 0.691. */
    double lufs = 0, tp = 0;
    CHECK_OK(avo_audio_loudness(&a, &lufs, &err), &err);
    CHECK_NEAR(lufs, -9.03, 0.3);
    CHECK_OK(avo_audio_true_peak(&a, &tp, &err), &err);
    CHECK_NEAR(tp, -6.02, 0.2);
    avo_audio_free(&a);
    avo_audio_free(&b);
}

/* A long signal (the parallel pieces path) against the exact band-limited tones at the output rate,
 * and against the same signal resampled as one piece by a single thread: a misplaced piece or a seam
 * would show at the joins. 40 kHz -> 44.1 kHz and 44.1 kHz -> 16 kHz, as the neural converter runs. */
static void test_resample_long(int in_rate, int out_rate) {
    const int64_t n = (int64_t)in_rate * 20;
    const int64_t m = (int64_t)((double)n * out_rate / in_rate + 0.5);
    float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)m);
    float *y1 = malloc(sizeof(float) * (size_t)m);
    const double f1 = 441.0, f2 = 3137.0;
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(0.4 * sin(2 * M_PI * f1 * i / in_rate) + 0.2 * sin(2 * M_PI * f2 * i / in_rate + 0.3));
    avo_error err;
    CHECK_OK(avo_resample_buffer(x, n, in_rate, out_rate, y, m, &err), &err);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    CHECK_OK(avo_resample_buffer(x, n, in_rate, out_rate, y1, m, &err), &err);
    omp_set_num_threads(saved);
    double worst = 0, worst_seam = 0;
    for (int64_t j = out_rate / 5; j < m - out_rate / 5; j++) { /* away from the signal's own ends */
        const double want = 0.4 * sin(2 * M_PI * f1 * j / out_rate) + 0.2 * sin(2 * M_PI * f2 * j / out_rate + 0.3);
        worst = fmax(worst, fabs(y[j] - want));
        worst_seam = fmax(worst_seam, fabs(y[j] - y1[j]));
    }
    CHECK_MSG(worst < 2e-3, "%d -> %d Hz: worst error against the exact tones %g", in_rate, out_rate, worst);
    CHECK_MSG(worst_seam < 1e-5, "%d -> %d Hz: pieces differ from one pass by %g", in_rate, out_rate, worst_seam);
    free(x), free(y), free(y1);
}

static void test_shared_data(void) {
    char path[600];
    avo_audio a;
    avo_error err;
    avo_test_path(path, sizeof path, avo_test_data_dir(), "stems/falcon69/mixture.flac");
    CHECK_OK(avo_audio_read(path, &a, &err), &err);
    CHECK(a.channels == 2 && a.sample_rate == 44100 && a.frames > 44100 * 5);
    avo_audio m;
    CHECK_OK(avo_audio_to_mono(&a, &m, &err), &err);
    CHECK(m.channels == 1 && m.frames == a.frames);
    CHECK(fabsf(m.samples[1000] - 0.5f * (a.samples[1000] + a.samples[a.frames + 1000])) < 1e-6f);
    avo_audio_free(&a);
    avo_audio_free(&m);
}

int main(void) {
    avo_test_tmp_dir("test_audio", tmpdir, sizeof tmpdir);
    test_round_trip("wav", 2e-6f);
    test_round_trip("flac", 2e-6f);
    test_odd_length_wav();
    test_mp3_and_ogg();
    test_bad_input();
    test_write_errors();
    test_resample_and_loudness();
    omp_set_num_threads(4); /* the pieces path, also on a one-core machine */
    test_resample_long(40000, 44100);
    test_resample_long(44100, 16000);
    test_shared_data();
    TEST_MAIN_END();
}
