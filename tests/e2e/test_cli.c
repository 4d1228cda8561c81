/* End to end through the autovoice binary: profile management, a real conversion checked for
 * length, level and melody, the --profile-json document, and every kind of bad input. */
#include "autovoice/audio.h"
#include "autovoice/f0.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <sndfile.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp[512], store[600], bin[1024], data[600];

/* Runs a shell command line; returns its exit status and captures stderr into errbuf. */
static int run(char *errbuf, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int run(char *errbuf, size_t errlen, const char *fmt, ...) {
    char cmd[8192], errpath[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(errpath, sizeof errpath, "%s/stderr.txt", tmp);
    char full[9000];
    snprintf(full, sizeof full, "%s 2>%s", cmd, errpath);
    int status = system(full);
    if (errbuf) {
        errbuf[0] = '\0';
        FILE *f = fopen(errpath, "r");
        if (f) {
            size_t n = fread(errbuf, 1, errlen - 1, f);
            errbuf[n] = '\0';
            fclose(f);
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Lists every file in tmp that starts with prefix (to catch leftovers of atomic writes). */
static int leftovers(const char *prefix) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -c '^%s' > /dev/null", tmp, prefix);
    return system(cmd) == 0;
}

static void make_profile(void) {
    char err[4096];
    int rc = run(err, sizeof err, "%s profile create jlee %s/singing/nus48e_JLEE_11.flac %s/singing/nus48e_JLEE_15.flac "
                 "--store %s --quiet", bin, data, data, store);
    CHECK_MSG(rc == 0, "profile create failed (%d): %s", rc, err);
    rc = run(err, sizeof err, "%s profile list --store %s > %s/list.txt", bin, store, tmp);
    CHECK(rc == 0);
    rc = run(err, sizeof err, "grep -q '^jlee ' %s/list.txt", tmp);
    CHECK_MSG(rc == 0, "profile list does not show jlee");
    rc = run(err, sizeof err, "%s profile show jlee --store %s | grep -q 'median'", bin, store);
    CHECK(rc == 0);
    /* Creating it again without --force is refused and leaves it alone. */
    rc = run(err, sizeof err, "%s profile create jlee %s/singing/nus48e_JLEE_11.flac --store %s --quiet", bin, data, store);
    CHECK(rc != 0 && strstr(err, "already exists") != NULL);
}

/* The melody check: output F0 against the source F0 moved by `semitones`, median error in cents
 * over frames voiced in both. */
static double median_f0_error_cents(const avo_audio *src, const avo_audio *out, double semitones, int *both) {
    avo_f0_config cfg;
    avo_f0_config_default(&cfg);
    cfg.method = AVO_F0_ACCURATE;
    avo_f0_track a = {0}, b = {0};
    avo_audio ms = {0}, mo = {0};
    avo_audio_to_mono(src, &ms, NULL);
    avo_audio_to_mono(out, &mo, NULL);
    double med = 1e9;
    *both = 0;
    if (avo_f0_estimate(ms.samples, ms.frames, ms.sample_rate, &cfg, &a, NULL) == AVO_OK &&
        avo_f0_estimate(mo.samples, mo.frames, mo.sample_rate, &cfg, &b, NULL) == AVO_OK) {
        int64_t n = a.frames < b.frames ? a.frames : b.frames;
        double *e = malloc(sizeof(double) * (size_t)n);
        int m = 0;
        for (int64_t i = 0; i < n; i++)
            if (a.f0_hz[i] > 0 && b.f0_hz[i] > 0) e[m++] = fabs(1200.0 * log2(b.f0_hz[i] / a.f0_hz[i]) - 100.0 * semitones);
        for (int i = 1; i < m; i++)
            for (int j = i; j > 0 && e[j - 1] > e[j]; j--) {
                double t = e[j]; e[j] = e[j - 1]; e[j - 1] = t;
            }
        if (m) med = e[m / 2];
        *both = m;
        free(e);
    }
    avo_f0_track_free(&a);
    avo_f0_track_free(&b);
    avo_audio_free(&ms);
    avo_audio_free(&mo);
    return med;
}

static void check_json(const char *path, double duration) {
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "no JSON at %s", path);
    if (!f) return;
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    cJSON *root = cJSON_Parse(buf);
    CHECK_MSG(root != NULL, "JSON does not parse");
    if (!root) return;
    const char *stages[] = {"separation", "f0_extraction", "conversion", "mixing"};
    cJSON *t = cJSON_GetObjectItem(root, "stage_timings_ms");
    cJSON *p = cJSON_GetObjectItem(root, "stage_percentages");
    CHECK(cJSON_IsObject(t) && cJSON_IsObject(p));
    double sum = 0, pct = 0;
    for (int i = 0; i < 4; i++) {
        cJSON *v = cJSON_GetObjectItem(t, stages[i]);
        CHECK_MSG(cJSON_IsNumber(v) && v->valuedouble >= 0, "stage %s missing", stages[i]);
        if (cJSON_IsNumber(v)) sum += v->valuedouble;
        cJSON *q = cJSON_GetObjectItem(p, stages[i]);
        if (cJSON_IsNumber(q)) pct += q->valuedouble;
    }
    cJSON *total = cJSON_GetObjectItem(t, "total");
    CHECK(cJSON_IsNumber(total) && total->valuedouble > 0);
    if (cJSON_IsNumber(total)) {
        CHECK_MSG(fabs(sum - total->valuedouble) <= 0.02 * total->valuedouble + 1.0, "stages sum %.1f vs total %.1f",
                  sum, total->valuedouble);
        cJSON *rtf = cJSON_GetObjectItem(root, "rtf");
        CHECK(cJSON_IsNumber(rtf) && fabs(rtf->valuedouble - total->valuedouble / 1000.0 / duration) < 1e-3);
    }
    CHECK_NEAR(pct, 100.0, 2.0);
    cJSON *d = cJSON_GetObjectItem(root, "audio_duration_seconds");
    CHECK(cJSON_IsNumber(d) && fabs(d->valuedouble - duration) < 0.01);
    const char *strings[] = {"device", "backend", "precision", "preset"};
    for (int i = 0; i < 4; i++) {
        cJSON *v = cJSON_GetObjectItem(root, strings[i]);
        CHECK_MSG(cJSON_IsString(v) && v->valuestring[0], "field %s missing", strings[i]);
    }
    CHECK(strcmp(cJSON_GetObjectItem(root, "backend")->valuestring, "cpu") == 0);
    cJSON_Delete(root);
}

static void test_dry_vocal_conversion(void) {
    /* A female singer converted to the male profile, transposed down 3 semitones. */
    char err[4096], src_path[700], out_path[700], json_path[700];
    snprintf(src_path, sizeof src_path, "%s/singing/nus48e_NJAT_07.flac", data);
    snprintf(out_path, sizeof out_path, "%s/dry.wav", tmp);
    snprintf(json_path, sizeof json_path, "%s/dry.json", tmp);
    int rc = run(err, sizeof err, "%s convert %s --profile jlee --store %s --no-separation --transpose -3 -o %s "
                 "--profile-json %s --quiet", bin, src_path, store, out_path, json_path);
    CHECK_MSG(rc == 0, "convert failed (%d): %s", rc, err);
    avo_audio src = {0}, out = {0};
    CHECK_OK(avo_audio_read(src_path, &src, NULL), (avo_error *)NULL);
    CHECK_OK(avo_audio_read(out_path, &out, NULL), (avo_error *)NULL);
    CHECK(out.frames == src.frames && out.sample_rate == src.sample_rate && out.channels == src.channels);
    double rms = 0;
    for (int64_t i = 0; i < out.frames; i++) rms += (double)out.samples[i] * out.samples[i];
    rms = sqrt(rms / (out.frames ? out.frames : 1));
    CHECK_MSG(rms > 0.01, "output is nearly silent (rms %g)", rms);
    int both = 0;
    double med = median_f0_error_cents(&src, &out, -3.0, &both);
    CHECK_MSG(both > 200 && med < 50.0, "median F0 error %.1f cents over %d frames", med, both);
    check_json(json_path, (double)src.frames / src.sample_rate);
    CHECK(!leftovers("dry.wav.tmp"));
    avo_audio_free(&src);
    avo_audio_free(&out);
}

/* autovoice eval on the dry conversion: the melody check and the JSON document. */
static void test_eval(void) {
    char err[4096], json_path[700], out_path[700], src[700];
    snprintf(out_path, sizeof out_path, "%s/dry.wav", tmp);
    snprintf(json_path, sizeof json_path, "%s/eval.json", tmp);
    snprintf(src, sizeof src, "%s/singing/nus48e_NJAT_07.flac", data);
    int rc = run(err, sizeof err, "%s eval --output %s --source %s --source-clips %s/singing/nus48e_NJAT_16.flac "
                 "--target-clips %s/singing/nus48e_JLEE_11.flac %s/singing/nus48e_JLEE_15.flac --transpose -3 "
                 "--json %s --data %s > /dev/null",
                 bin, out_path, src, data, data, data, json_path, data);
    CHECK_MSG(rc == 0, "eval failed (%d): %s", rc, err);
    char *text = avo_test_read_file(json_path, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    cJSON *pairs = root ? cJSON_GetObjectItem(root, "pairs") : NULL;
    cJSON *p = cJSON_IsArray(pairs) ? cJSON_GetArrayItem(pairs, 0) : NULL;
    cJSON *rmse = p ? cJSON_GetObjectItem(p, "f0_rmse_cents") : NULL;
    CHECK_MSG(cJSON_IsNumber(rmse) && rmse->valuedouble < 50.0, "eval F0 RMSE missing or too large");
    CHECK(p && cJSON_IsBool(cJSON_GetObjectItem(p, "classified_as_target")));
    cJSON *proto = p ? cJSON_GetObjectItem(p, "speaker_protocol") : NULL;
    CHECK_MSG(cJSON_IsString(proto) && !strcmp(proto->valuestring, "heldout"), "eval JSON: speaker_protocol missing");
    CHECK(p && cJSON_IsNumber(cJSON_GetObjectItem(p, "sim_source_content_matched")));
    cJSON_Delete(root);
    free(text);
    rc = run(err, sizeof err, "%s eval --output %s/missing.wav --source %s --target-clips %s --data %s", bin, tmp, src,
             src, data);
    CHECK_MSG(rc != 0 && count_lines(err) == 1 && strstr(err, "missing.wav"), "eval bad input: %s", err);
}

static void test_song_conversion(void) {
    char err[4096], out_path[700], stems[700], path[800];
    snprintf(out_path, sizeof out_path, "%s/song.flac", tmp);
    snprintf(stems, sizeof stems, "%s/stems", tmp);
    int rc = run(err, sizeof err, "%s convert %s/stems/falcon69/mixture.flac --profile jlee --store %s -o %s "
                 "--stems-dir %s --preset fast --quiet", bin, data, store, out_path, stems);
    CHECK_MSG(rc == 0, "song convert failed (%d): %s", rc, err);
    avo_audio in = {0}, out = {0};
    snprintf(path, sizeof path, "%s/stems/falcon69/mixture.flac", data);
    avo_audio_read(path, &in, NULL);
    CHECK_OK(avo_audio_read(out_path, &out, NULL), (avo_error *)NULL);
    CHECK(out.frames == in.frames && out.channels == 2 && out.sample_rate == 44100);
    double tp = 0;
    avo_audio_true_peak(&out, &tp, NULL);
    CHECK_MSG(tp <= -0.9, "true peak %.2f dBTP above the -1 dBTP ceiling", tp);
    const char *names[] = {"vocals.wav", "accompaniment.wav", "converted_vocals.wav"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", stems, names[i]);
        CHECK_MSG(file_exists(path), "stem %s missing", names[i]);
    }
    avo_audio_free(&in);
    avo_audio_free(&out);
}

/* Bad input: one clear error line, non-zero exit, no output file, store unchanged. */
static void expect_failure(const char *what, const char *input, const char *extra, const char *output,
                           const char *must_mention) {
    char err[4096], before[64] = "", after[64] = "";
    run(before, sizeof before, "{ md5sum %s/profiles.db >&2; }", store);
    int rc = run(err, sizeof err, "%s convert %s --profile jlee --store %s -o %s %s --quiet", bin, input, store, output,
                 extra);
    run(after, sizeof after, "{ md5sum %s/profiles.db >&2; }", store);
    CHECK_MSG(rc != 0, "%s: exit code 0", what);
    CHECK_MSG(count_lines(err) == 1 && strncmp(err, "autovoice", 9) == 0, "%s: want one error line, got: %s", what, err);
    CHECK_MSG(strstr(err, must_mention) != NULL, "%s: message should mention '%s': %s", what, must_mention, err);
    CHECK_MSG(!file_exists(output), "%s: partial output %s left behind", what, output);
    CHECK_MSG(strcmp(before, after) == 0, "%s: profile store changed", what);
}

static void write_bad_inputs(void) {
    char path[700];
    snprintf(path, sizeof path, "%s/empty.wav", tmp);
    fclose(fopen(path, "wb"));
    snprintf(path, sizeof path, "%s/notaudio.mp3", tmp);
    FILE *f = fopen(path, "wb");
    fputs("ID3? no, just text pretending to be an mp3 file\n", f);
    fclose(f);
    avo_audio a;
    avo_audio_alloc(&a, 16000, 1, 16000, NULL);
    for (int i = 0; i < 16000; i++) a.samples[i] = 0.3f * (float)sin(i * 0.1);
    snprintf(path, sizeof path, "%s/trunc.wav", tmp);
    avo_audio_write(path, &a, AVO_AUDIO_WAV_PCM16, NULL);
    if (truncate(path, 44 + 10000) != 0) CHECK(0);
    snprintf(path, sizeof path, "%s/zero.wav", tmp);
    a.frames = 0;
    avo_audio_write(path, &a, AVO_AUDIO_WAV_PCM16, NULL);
    a.frames = 16000;
    a.samples[500] = NAN;
    snprintf(path, sizeof path, "%s/nan.wav", tmp);
    SF_INFO info = {.samplerate = 16000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    sf_writef_float(sf, a.samples, a.frames);
    sf_close(sf);
    avo_audio_free(&a);
}

static void test_bad_input(void) {
    write_bad_inputs();
    char in[800], out[800], good[800];
    snprintf(out, sizeof out, "%s/bad_out.wav", tmp);
    snprintf(good, sizeof good, "%s/singing/nus48e_NJAT_07.flac", data);
    expect_failure("missing file", "/no/such/song.wav", "", out, "/no/such/song.wav");
    snprintf(in, sizeof in, "%s/empty.wav", tmp);
    expect_failure("empty file", in, "", out, "empty");
    snprintf(in, sizeof in, "%s/trunc.wav", tmp);
    expect_failure("truncated wav", in, "", out, "truncated");
    snprintf(in, sizeof in, "%s/notaudio.mp3", tmp);
    expect_failure("wrong extension / not audio", in, "", out, "notaudio.mp3");
    snprintf(in, sizeof in, "%s/zero.wav", tmp);
    expect_failure("zero-length audio", in, "", out, "no audio");
    snprintf(in, sizeof in, "%s/nan.wav", tmp);
    expect_failure("NaN samples", in, "", out, "finite");
    expect_failure("directory as input", tmp, "", out, "directory");
    expect_failure("unknown profile", good, "--profile nobody", out, "nobody");
    expect_failure("unwritable output", good, "", "/proc/no/such/dir/out.wav", "/proc/no/such/dir");
    expect_failure("bad output extension", good, "", "/tmp/avo-out.mp4", ".wav or .flac");
    char err[4096];
    int rc = run(err, sizeof err, "%s convert %s --profile jlee --store %s -o %s --transpose banana", bin, good, store, out);
    CHECK(rc == 2 && count_lines(err) == 1);
    rc = run(err, sizeof err, "%s profile delete nobody --store %s", bin, store);
    CHECK(rc != 0 && strstr(err, "nobody") != NULL && strstr(err, "profile list") != NULL);
    /* Six seconds of singing is not enough for a profile. */
    char path[800];
    snprintf(path, sizeof path, "%s/singing/nus48e_ADIZ_18.flac", data);
    avo_audio clip = {0};
    avo_audio_read(path, &clip, NULL);
    if (clip.frames > 6 * clip.sample_rate) clip.frames = 6 * clip.sample_rate;
    snprintf(path, sizeof path, "%s/short.flac", tmp);
    avo_audio_write(path, &clip, AVO_AUDIO_FLAC_PCM16, NULL);
    avo_audio_free(&clip);
    rc = run(err, sizeof err, "%s profile create short %s --store %s --quiet", bin, path, store);
    CHECK_MSG(rc != 0 && strstr(err, "10 s") != NULL, "one short clip must be refused: %s", err);
}

static void test_delete(void) {
    char err[4096];
    int rc = run(err, sizeof err, "%s profile delete jlee --store %s --quiet", bin, store);
    CHECK(rc == 0);
    rc = run(err, sizeof err, "%s profile show jlee --store %s", bin, store);
    CHECK(rc != 0);
}

int main(void) {
    const char *b = getenv("AVO_BIN");
    snprintf(bin, sizeof bin, "%s", b && *b ? b : "./autovoice");
    snprintf(data, sizeof data, "%s", avo_test_data_dir());
    avo_test_tmp_dir("e2e_cli", tmp, sizeof tmp);
    snprintf(store, sizeof store, "%s/store", tmp);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf %s/store %s/stems %s/*.wav %s/*.flac", tmp, tmp, tmp, tmp);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    make_profile();
    test_dry_vocal_conversion();
    test_eval();
    test_song_conversion();
    test_bad_input();
    test_delete();
    TEST_MAIN_END();
}
