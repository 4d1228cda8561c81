/* report module: Markdown/HTML from fixture JSON written here, "not measured" sections, rejection of
 * malformed input naming file and field, and the plots (SVG text, PNG decoded back). */
#include "autovoice/audio.h"
#include "autovoice/report.h"
#include "test_util.h"

#include <stdint.h>
#include <unistd.h>

static char tmpdir[512];

static void write_text(const char *dir, const char *name, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK_MSG(f != NULL, "cannot write %s", path);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static const char *make_dir(const char *name, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s", tmpdir, name);
    mkdir(buf, 0755);
    /* Leftovers of an earlier run would change what the report finds. */
    const char *old[] = {"system.json", "performance_breakdown.json", "pipeline.json", "latency.json", "separation.json",
                         "quality.json", "f0.json", "notes.json", "report.md", "report.html"};
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", buf, old[i]);
        unlink(p);
    }
    return buf;
}

static int file_exists(const char *dir, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat sb;
    return stat(p, &sb) == 0 && sb.st_size > 0;
}

/* ---- fixture values: the expected strings are computed from these, not typed in ---- */

static const double SEP = 1234.5, F0 = 210.25, CONV = 1502.0, MIX = 48.75, TOTAL = 3000.0, SECS = 30.0;

static void write_fixtures(const char *dir, const char *req_device, double elapsed_ms) {
    write_text(dir, "system.json",
               "{\"benchmark\":\"system\",\"cpu_model\":\"Test CPU 9000\",\"cores\":8,\"memory_mb\":16384,"
               "\"os\":\"Debian test\",\"compiler\":\"gcc 12\",\"build_type\":\"Release\","
               "\"libraries\":{\"sndfile\":\"libsndfile-1.2.0\",\"fftw\":\"fftw-3.3.10\"}}");
    char perf[2048];
    snprintf(perf, sizeof perf,
             "{\"benchmark\":\"performance_breakdown\",\"cases\":["
             "{\"audio_duration_seconds\":%g,\"preset\":\"fast\",\"stage_timings_ms\":{\"separation\":%g,"
             "\"f0_extraction\":%g,\"conversion\":%g,\"mixing\":%g,\"total\":%g},\"peak_rss_mb\":321.5,"
             "\"device\":\"cpu\",\"precision\":\"fp32\"},"
             "{\"audio_duration_seconds\":240,\"preset\":\"balanced\",\"error\":\"child crashed\"}]}",
             SECS, SEP, F0, CONV, MIX, TOTAL);
    write_text(dir, "performance_breakdown.json", perf);
    char lat[4096];
    snprintf(lat, sizeof lat,
             "{\"benchmark\":\"latency\",\"song_seconds\":30,\"preset\":\"fast\",\"warmup_runs\":1,\"timed_runs\":3,"
             "\"elapsed_ms\":%g,\"rtf\":%g,\"requested_device\":\"%s\",\"requested_precision\":\"fp32\","
             "\"device\":\"cpu\",\"precision\":\"fp32\",\"target_seconds\":3,\"target_met\":true,"
             "\"f0_series\":{\"hop_seconds\":0.01,\"source_hz\":[0,220,221,222,0,0,330,331],"
             "\"output_hz\":[0,110,110.5,111,0,0,165,165.5]},"
             "\"excerpts\":{\"source\":\"excerpts/source.wav\",\"missing\":\"excerpts/nothing.wav\"}}",
             elapsed_ms, elapsed_ms / 1000.0 / 30.0, req_device);
    write_text(dir, "latency.json", lat);
    write_text(dir, "separation.json",
               "{\"benchmark\":\"separation\",\"mixture\":\"constructed\",\"method\":\"test-sep\","
               "\"stems\":[{\"name\":\"vocals\",\"sdr_db\":7.25,\"sir_db\":12.5},{\"name\":\"accompaniment\",\"sdr_db\":11.75}]}");
    write_text(dir, "f0.json",
               "{\"benchmark\":\"f0\",\"dataset\":\"nus48e\",\"results\":[{\"method\":\"fast\",\"rpa\":0.9125,"
               "\"gross_error\":{\"rate\":0.0425}},{\"method\":\"accurate\",\"rpa\":0.9675}]}");
    write_text(dir, "notes.json", "{\"just\":\"a note\"}");
    /* A 1 kHz sine: the spectrogram's brightest row must sit at 1 kHz. */
    char ex[1024];
    snprintf(ex, sizeof ex, "%s/excerpts", dir);
    mkdir(ex, 0755);
    avo_audio a;
    avo_audio_alloc(&a, 16000, 1, 16000, NULL);
    for (int64_t i = 0; i < a.frames; i++) a.samples[i] = 0.5f * (float)sin(2 * M_PI * 1000.0 * (double)i / 16000.0);
    snprintf(ex, sizeof ex, "%s/excerpts/source.wav", dir);
    avo_error err;
    CHECK_OK(avo_audio_write(ex, &a, AVO_AUDIO_WAV_PCM16, &err), &err);
    avo_audio_free(&a);
}

static uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Decodes the report's PNG (stored deflate blocks only) and returns the row whose mean brightness is
 * highest, or -1. */
static int brightest_png_row(const unsigned char *png, size_t size, int *w_out, int *h_out) {
    if (size < 33 || memcmp(png, "\x89PNG\r\n\x1a\n", 8) != 0 || memcmp(png + 12, "IHDR", 4) != 0) return -1;
    int w = (int)be32(png + 16), h = (int)be32(png + 20);
    *w_out = w;
    *h_out = h;
    size_t pos = 8;
    unsigned char *z = malloc(size);
    size_t zn = 0;
    while (pos + 12 <= size) {
        uint32_t len = be32(png + pos);
        if (pos + 12 + len > size) break;
        if (memcmp(png + pos + 4, "IDAT", 4) == 0) {
            memcpy(z + zn, png + pos + 8, len);
            zn += len;
        }
        pos += 12 + len;
    }
    size_t row = (size_t)w * 3 + 1;
    unsigned char *raw = malloc(row * (size_t)h);
    size_t rn = 0, zp = 2;
    int last = 0;
    while (!last && zp + 5 <= zn) {
        last = z[zp] & 1;
        if ((z[zp] >> 1) & 3) break; /* not stored */
        size_t len = z[zp + 1] | (size_t)z[zp + 2] << 8;
        zp += 5;
        if (zp + len > zn || rn + len > row * (size_t)h) break;
        memcpy(raw + rn, z + zp, len);
        rn += len;
        zp += len;
    }
    int best = -1;
    double best_v = -1;
    if (rn == row * (size_t)h) {
        for (int y = 0; y < h; y++) {
            double s = 0;
            for (size_t i = 1; i < row; i++) s += raw[(size_t)y * row + i];
            if (s > best_v) {
                best_v = s;
                best = y;
            }
        }
    }
    free(z);
    free(raw);
    return best;
}

static void test_full_report(void) {
    char dir[600];
    make_dir("full", dir, sizeof dir);
    write_fixtures(dir, "cuda", 2500.0);
    char md_path[700], html_path[700];
    snprintf(md_path, sizeof md_path, "%s/report.md", dir);
    snprintf(html_path, sizeof html_path, "%s/report.html", dir);
    avo_error err;
    CHECK_OK(avo_report_generate(dir, md_path, html_path, &err), &err);
    char *md = avo_test_read_file(md_path, NULL), *html = avo_test_read_file(html_path, NULL);
    CHECK(md != NULL && html != NULL);
    if (!md || !html) return;
    char want[128];
    /* System section. */
    CHECK(strstr(md, "## System and build") && strstr(md, "Test CPU 9000") && strstr(md, "libsndfile-1.2.0"));
    CHECK(strstr(md, "16.0 GB") != NULL);
    /* Stage table: ms and % computed from the fixture numbers. */
    snprintf(want, sizeof want, "%.1f (%.1f%%)", SEP, 100.0 * SEP / TOTAL);
    CHECK_MSG(strstr(md, want) != NULL, "missing '%s'", want);
    snprintf(want, sizeof want, "%.1f (%.1f%%)", CONV, 100.0 * CONV / TOTAL);
    CHECK_MSG(strstr(md, want) != NULL, "missing '%s'", want);
    snprintf(want, sizeof want, "%.1f (%.1f%%)", MIX, 100.0 * MIX / TOTAL);
    CHECK_MSG(strstr(md, want) != NULL, "missing '%s'", want);
    snprintf(want, sizeof want, "%.4f", TOTAL / 1000.0 / SECS); /* RTF computed when absent */
    CHECK_MSG(strstr(md, want) != NULL, "missing RTF '%s'", want);
    CHECK(strstr(md, "321.5") != NULL);
    CHECK(strstr(md, "FAILED: child crashed") != NULL);
    /* Latency: cuda requested, cpu ran: never a pass, whatever the file claims. */
    CHECK(strstr(md, "NOT PASSED: requested cuda, ran cpu") != NULL);
    CHECK(strstr(md, "PASS (") == NULL);
    CHECK(strstr(md, "2.500 s") != NULL);
    /* Separation table and generic f0.json table. */
    CHECK(strstr(md, "| vocals | 7.25 | 12.50 | not measured |") != NULL);
    snprintf(want, sizeof want, "| accurate | %.3g |", 0.9675);
    CHECK_MSG(strstr(md, want) && strstr(md, "gross\\_error.rate"), "f0.json table: no '%s'", want);
    /* Quality is absent: said so, not an error. */
    CHECK(strstr(md, "## Quality") && strstr(md, "quality.json not found"));
    CHECK(strstr(md, "calibration") != NULL);
    CHECK(strstr(md, "Ignored notes.json") != NULL);
    /* Plots referenced and written beside the report. */
    CHECK(strstr(md, "](report_stages.svg)") && strstr(md, "](report_f0.svg)") && strstr(md, "](report_spec_source.png)"));
    CHECK(strstr(html, "<img src=\"report_stages.svg\"") != NULL);
    CHECK(strstr(html, "class=\"fail\"") != NULL);
    CHECK(strstr(md, "missing excerpt: not drawn") != NULL);
    CHECK(file_exists(dir, "report_stages.svg") && file_exists(dir, "report_f0.svg") &&
          file_exists(dir, "report_spec_source.png"));
    char p[800];
    snprintf(p, sizeof p, "%s/report_stages.svg", dir);
    char *svg = avo_test_read_file(p, NULL);
    CHECK(svg && strstr(svg, "<svg") && strstr(svg, "30 s, fast") && strstr(svg, "</svg>"));
    /* Segment widths follow the shares: separation is SEP/TOTAL of the 540 px bar. */
    snprintf(want, sizeof want, "width=\"%.1f\" height=\"22\" fill=\"#4c78a8\"", SEP / TOTAL * 540);
    CHECK_MSG(svg && strstr(svg, want), "stage bar: missing %s", want);
    free(svg);
    snprintf(p, sizeof p, "%s/report_f0.svg", dir);
    svg = avo_test_read_file(p, NULL);
    /* Two voiced runs per series: the path restarts (M) after the unvoiced frames. */
    int moves = 0;
    for (const char *s = svg; s && (s = strstr(s, "d=\"M")); s++) moves++;
    CHECK_MSG(moves == 2, "f0 paths %d", moves);
    CHECK(svg && strstr(svg, "output") != NULL);
    free(svg);
    size_t png_n = 0;
    snprintf(p, sizeof p, "%s/report_spec_source.png", dir);
    unsigned char *png = (unsigned char *)avo_test_read_file(p, &png_n);
    int w = 0, h = 0;
    int row = png ? brightest_png_row(png, png_n, &w, &h) : -1;
    CHECK(w == 800 && h == 256);
    /* Row 0 is 8 kHz, row 255 is 0 Hz. */
    int want_row = (int)lrint(255 - 1000.0 / 8000.0 * 255);
    CHECK_MSG(abs(row - want_row) <= 2, "1 kHz at row %d, expected %d", row, want_row);
    free(png);
    free(md);
    free(html);
}

static void test_latency_verdicts(void) {
    char dir[600];
    make_dir("verdict", dir, sizeof dir);
    struct { double ms; const char *expect; } cases[] = {{2500.0, "PASS (2.50 s, target 3.00 s)"}, {3500.0, "FAIL (3.50 s, over the 3.00 s target)"}};
    for (int i = 0; i < 2; i++) {
        write_fixtures(dir, "cpu", cases[i].ms);
        avo_report *r = NULL;
        avo_error err;
        char *md = NULL;
        CHECK_OK(avo_report_create(&r, &err), &err);
        CHECK_OK(avo_report_load_dir(r, dir, &err), &err);
        CHECK_OK(avo_report_render(r, "x_", &md, NULL, &err), &err);
        CHECK_MSG(md && strstr(md, cases[i].expect), "missing '%s'", cases[i].expect);
        CHECK(md && strstr(md, "NOT PASSED") == NULL);
        if (i == 1) CHECK(md && strstr(md, "says the target was met") != NULL);
        free(md);
        avo_report_free(r);
    }
    /* Precision mismatch alone also blocks a pass. */
    avo_report *r = NULL;
    avo_error err;
    avo_report_create(&r, &err);
    const char *lat = "{\"song_seconds\":30,\"preset\":\"fast\",\"elapsed_ms\":100,\"rtf\":0.003,\"device\":\"cpu\","
                      "\"precision\":\"fp32\",\"requested_device\":\"cpu\",\"requested_precision\":\"int8\",\"target_seconds\":3}";
    CHECK_OK(avo_report_add_json(r, "latency.json", lat, strlen(lat), &err), &err); /* recognised by name */
    char *md = NULL;
    CHECK_OK(avo_report_render(r, NULL, &md, NULL, &err), &err);
    CHECK(md && strstr(md, "NOT PASSED: requested int8, ran fp32"));
    free(md);
    avo_report_free(r);
}

static void test_empty_dir(void) {
    char dir[600];
    make_dir("empty", dir, sizeof dir);
    char md_path[700];
    snprintf(md_path, sizeof md_path, "%s/report.md", dir);
    avo_error err;
    CHECK_OK(avo_report_generate(dir, md_path, NULL, &err), &err);
    char *md = avo_test_read_file(md_path, NULL);
    CHECK(md != NULL);
    if (!md) return;
    const char *sections[] = {"## System and build", "## Stage breakdown", "## Real-time factor", "## Latency test",
                              "## Precision and calibration", "## Quality", "## Separation", "## F0 estimation",
                              "## Vocoder", "## F0 of source vs output", "## Spectrograms", "## Not measured"};
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) CHECK_MSG(strstr(md, sections[i]), "no %s", sections[i]);
    int n = 0;
    for (const char *s = md; (s = strstr(s, "**Not measured:**")); s++) n++;
    CHECK_MSG(n >= 11, "only %d not-measured notes", n);
    CHECK(strstr(md, "no benchmark results found") != NULL);
    CHECK(!file_exists(dir, "report_stages.svg"));
    free(md);
    /* A folder that does not exist is an error naming it. */
    snprintf(md_path, sizeof md_path, "%s/nope/report.md", dir);
    char missing[700];
    snprintf(missing, sizeof missing, "%s/no_such_dir", dir);
    CHECK(avo_report_generate(missing, md_path, NULL, &err) == AVO_ERR_NOT_FOUND);
    CHECK(strstr(err.message, "no_such_dir") != NULL);
}

/* Each malformed document must be AVO_ERR_FORMAT with the file and the field in the message. */
static void test_malformed(void) {
    struct { const char *name, *text, *field; } bad[] = {
        {"latency.json", "{\"benchmark\":\"latency\",\"song_seconds\":30,\"elapsed_ms\": 12", "elapsed_ms"},
        {"latency.json", "{\"song_seconds\":30,\"preset\":\"fast\",\"elapsed_ms\":\"fast\",\"rtf\":1,\"device\":\"cpu\",\"precision\":\"fp32\"}", "elapsed_ms"},
        {"latency.json", "{\"song_seconds\":30,\"preset\":\"fast\",\"elapsed_ms\":5,\"rtf\":1,\"precision\":\"fp32\"}", "device"},
        {"perf.json", "{\"benchmark\":\"performance_breakdown\",\"cases\":[{\"audio_duration_seconds\":30,\"preset\":\"fast\","
                      "\"stage_timings_ms\":{\"separation\":1,\"f0_extraction\":1,\"conversion\":1,\"mixing\":1,\"total\":4}},"
                      "{\"audio_duration_seconds\":30,\"preset\":\"fast\",\"stage_timings_ms\":{\"separation\":1,"
                      "\"f0_extraction\":1,\"conversion\":1,\"mixing\":1}}]}", "cases[1].stage_timings_ms.total"},
        {"pipeline.json", "{\"cases\":{}}", "cases"},
        {"system.json", "{\"benchmark\":\"system\",\"cores\":4}", "cpu_model"},
        {"q.json", "{\"benchmark\":\"quality\",\"f0_series\":{\"hop_seconds\":0.01,\"source_hz\":[1,2,-3]}}", "f0_series.source_hz[2]"},
        {"separation.json", "{\"stems\":[{\"name\":\"vocals\",\"sdr_db\":null}]}", "stems[0].sdr_db"},
        {"latency.json", "{\"song_seconds\":30,\"preset\":\"fast\",\"elapsed_ms\":5,\"rtf\":1,\"device\":\"cpu\",\"precision\":\"fp32\","
                         "\"excerpts\":{\"a\":\"../../etc/passwd\"}}", "excerpts.a"},
        {"x.json", "[1,2,3]", "object"},
        {"x.json", "{\"benchmark\":\"f0\"} trailing", "byte"},
        {"empty.json", "", "empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        avo_report *r = NULL;
        avo_error err;
        avo_report_create(&r, &err);
        avo_error_clear(&err);
        avo_status st = avo_report_add_json(r, bad[i].name, bad[i].text, strlen(bad[i].text), &err);
        CHECK_MSG(st == AVO_ERR_FORMAT, "case %zu: status %d", i, st);
        CHECK_MSG(strstr(err.message, bad[i].name) && strstr(err.message, bad[i].field), "case %zu: message '%s'", i,
                  err.message);
        CHECK(avo_report_document_count(r) == 0);
        avo_report_free(r);
    }
    /* Through the folder reader the message names the file's path. */
    char dir[600];
    make_dir("malformed", dir, sizeof dir);
    write_text(dir, "system.json", "{\"cpu_model\":\"x\",\"cores\":4}");
    write_text(dir, "latency.json", "{\"song_seconds\":30,\"preset\":\"fast\",\"elapsed_ms\":5,\"rtf\":1,\"device\":[],\"precision\":\"fp32\"}");
    char md_path[700];
    snprintf(md_path, sizeof md_path, "%s/report.md", dir);
    avo_error err;
    CHECK(avo_report_generate(dir, md_path, NULL, &err) == AVO_ERR_FORMAT);
    CHECK_MSG(strstr(err.message, "malformed/latency.json") && strstr(err.message, "'device'"), "%s", err.message);
    CHECK(!file_exists(dir, "report.md"));
}

static void test_both_perf_kept(void) {
    avo_report *r = NULL;
    avo_error err;
    avo_report_create(&r, &err);
    const char *a = "{\"benchmark\":\"pipeline\",\"cases\":[{\"audio_duration_seconds\":10,\"preset\":\"fast\",\"stage_timings_ms\":"
                    "{\"separation\":111.1,\"f0_extraction\":1,\"conversion\":1,\"mixing\":1,\"total\":200}}]}";
    const char *b = "{\"benchmark\":\"performance_breakdown\",\"cases\":[{\"audio_duration_seconds\":10,\"preset\":\"fast\","
                    "\"stage_timings_ms\":{\"separation\":222.2,\"f0_extraction\":1,\"conversion\":1,\"mixing\":1,\"total\":300}}]}";
    CHECK_OK(avo_report_add_json(r, "pipeline.json", a, strlen(a), &err), &err);
    CHECK_OK(avo_report_add_json(r, "performance_breakdown.json", b, strlen(b), &err), &err);
    CHECK(avo_report_document_count(r) == 2);
    char *md = NULL, *html = NULL;
    CHECK_OK(avo_report_render(r, "p_", &md, &html, &err), &err);
    char want[2][64];
    snprintf(want[0], sizeof want[0], "111.1 (%.1f%%)", 100.0 * 111.1 / 200.0);
    snprintf(want[1], sizeof want[1], "222.2 (%.1f%%)", 100.0 * 222.2 / 300.0);
    CHECK(md && strstr(md, want[0]) && strstr(md, want[1]));
    CHECK(html && strstr(html, "<!DOCTYPE html>") && strstr(html, "</html>"));
    free(md);
    free(html);
    avo_report_free(r);
}

static void test_quality_table(void) {
    /* The quality section turns the summary into one row per set; the numbers come from the input. */
    avo_report *r = NULL;
    avo_error err;
    avo_report_create(&r, &err);
    const char *q = "{\"benchmark\":\"quality\",\"preset\":\"balanced\",\"scope\":\"standard\",\"protocol\":\"p\","
                    "\"pairs\":[{\"source\":\"NJAT\",\"target\":\"JLEE\",\"f0_rmse_cents\":12.5}],"
                    "\"summary\":{\"cross_gender\":{\"pairs\":8,\"f0_rmse_cents_median\":13.25,\"f0_rmse_cents_worst\":41.5,"
                    "\"f0_corr_median\":0.998,\"f0_corr_worst\":0.951,\"classified_as_target_rate\":0.875,"
                    "\"similarity_ratio_median\":0.66,\"mcd_to_target_db_median\":1.81,\"mcd_source_to_target_db_median\":3.3,"
                    "\"naturalness_distance_median\":2.1,\"naturalness_source_distance_median\":1.9}}}";
    CHECK_OK(avo_report_add_json(r, "quality.json", q, strlen(q), &err), &err);
    char *md = NULL, *html = NULL;
    CHECK_OK(avo_report_render(r, "q_", &md, &html, &err), &err);
    CHECK_MSG(md && strstr(md, "| cross\\_gender | 8 | 13.2 / 41.5 | 0.998 / 0.951 | 88% | 0.66 | 1.81 (3.30) | 2.10 (1.90) |"),
              "quality row missing:\n%s", md ? strstr(md, "## Quality") : "(none)");
    CHECK(md && strstr(md, "NJAT") && strstr(md, "JLEE"));
    free(md);
    free(html);
    avo_report_free(r);
}

int main(void) {
    avo_test_tmp_dir("report", tmpdir, sizeof tmpdir);
    test_quality_table();
    test_full_report();
    test_latency_verdicts();
    test_empty_dir();
    test_malformed();
    test_both_perf_kept();
    TEST_MAIN_END();
}
