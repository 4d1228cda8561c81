/* Plots for the report, drawn here so the report needs no plotting tool: SVG for charts, PNG (stored,
 * uncompressed deflate: no zlib needed) for spectrograms. */
#include "report_internal.h"

#include "autovoice/audio.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *STAGE_NAMES[4] = {"separation", "f0_extraction", "conversion", "mixing"};
static const char *STAGE_COLOURS[4] = {"#4c78a8", "#f58518", "#54a24b", "#b279a2"};

static void svg_text_escaped(sbuf *svg, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': sb_put(svg, "&amp;"); break;
        case '<': sb_put(svg, "&lt;"); break;
        case '>': sb_put(svg, "&gt;"); break;
        case '"': sb_put(svg, "&quot;"); break;
        default:
            if ((unsigned char)*s >= 32) sb_putn(svg, s, 1);
        }
    }
}

static void svg_begin(sbuf *svg, int w, int h) {
    sb_printf(svg,
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
              "font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n"
              "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n",
              w, h, w, h, w, h);
}

void plot_stage_bars_svg(const stage_bar *bars, int count, sbuf *svg) {
    const int left = 190, bar_w = 540, row_h = 30, top = 56, w = 900;
    const int h = top + row_h * (count > 0 ? count : 1) + 20;
    svg_begin(svg, w, h);
    sb_put(svg, "<text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">Share of run time per stage</text>\n");
    for (int s = 0; s < 4; s++) {
        int x = left + s * 135;
        sb_printf(svg, "<rect x=\"%d\" y=\"32\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                       "<text x=\"%d\" y=\"43\">%s</text>\n", x, STAGE_COLOURS[s], x + 16, STAGE_NAMES[s]);
    }
    for (int i = 0; i < count; i++) {
        const int y = top + i * row_h;
        sb_printf(svg, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 8, y + 18);
        svg_text_escaped(svg, bars[i].label);
        sb_put(svg, "</text>\n");
        sb_printf(svg, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"22\" fill=\"#e6e6e6\"/>\n", left, y + 3, bar_w);
        double x = left, total = bars[i].total_ms > 0 ? bars[i].total_ms : 1.0;
        for (int s = 0; s < 4; s++) {
            double frac = bars[i].stage_ms[s] / total;
            if (frac < 0) frac = 0;
            if (x + frac * bar_w > left + bar_w) frac = (left + bar_w - x) / bar_w;
            double seg = frac * bar_w;
            sb_printf(svg, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"22\" fill=\"%s\"/>\n", x, y + 3, seg,
                      STAGE_COLOURS[s]);
            if (seg >= 38)
                sb_printf(svg, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#ffffff\">%.0f%%</text>\n",
                          x + seg / 2, y + 18, 100.0 * frac);
            x += seg;
        }
        sb_printf(svg, "<text x=\"%d\" y=\"%d\">%.0f ms total</text>\n", left + bar_w + 10, y + 18, bars[i].total_ms);
    }
    if (count == 0) sb_printf(svg, "<text x=\"%d\" y=\"%d\">no timed cases</text>\n", left, top + 18);
    sb_put(svg, "</svg>\n");
}

/* ---- F0 over time ---- */

static double nice_step(double range, int want) {
    double raw = range / want, p = pow(10.0, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void f0_path(sbuf *svg, const cJSON *arr, double hop, double x0, double xs, double y0, double ly_lo,
                    double ys, const char *colour) {
    sb_printf(svg, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" d=\"", colour);
    int pen = 0;
    long i = 0;
    for (const cJSON *e = arr ? arr->child : NULL; e; e = e->next, i++) {
        double f = e->valuedouble;
        if (!(f > 0)) {
            pen = 0;
            continue;
        }
        double x = x0 + (double)i * hop * xs, y = y0 - (log(f) - ly_lo) * ys;
        sb_printf(svg, "%c%.1f %.1f", pen ? 'L' : 'M', x, y);
        pen = 1;
    }
    sb_put(svg, "\"/>\n");
}

static void voiced_range(const cJSON *arr, double *lo, double *hi, long *n) {
    long i = 0;
    for (const cJSON *e = arr ? arr->child : NULL; e; e = e->next, i++) {
        double f = e->valuedouble;
        if (f > 0) {
            if (f < *lo) *lo = f;
            if (f > *hi) *hi = f;
        }
    }
    if (i > *n) *n = i;
}

void plot_f0_svg(const f0_series *s, sbuf *svg) {
    const int w = 900, h = 340, l = 64, r = 20, t = 40, b = 44;
    const int pw = w - l - r, ph = h - t - b;
    double lo = 1e9, hi = 0;
    long n = 0;
    voiced_range(s->source, &lo, &hi, &n);
    voiced_range(s->output, &lo, &hi, &n);
    svg_begin(svg, w, h);
    sb_put(svg, "<text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">F0 of source and converted vocals</text>\n");
    sb_printf(svg, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888888\"/>\n", l, t, pw, ph);
    const double dur = n > 1 ? (double)(n - 1) * s->hop : 1.0;
    if (hi <= 0) {
        lo = 80;
        hi = 800;
    }
    lo = fmax(20.0, lo / 1.15);
    hi = fmin(5000.0, fmax(hi * 1.15, lo * 1.5));
    const double ly_lo = log(lo), ys = ph / (log(hi) - ly_lo), xs = pw / dur, y0 = t + ph;
    /* Pitch axis on a log scale, ticks at musically even spacing (octaves and fifths). */
    const double ticks[] = {25, 50, 75, 100, 150, 200, 300, 400, 600, 800, 1200, 1600, 2400, 3200};
    for (size_t k = 0; k < sizeof ticks / sizeof ticks[0]; k++) {
        if (ticks[k] < lo || ticks[k] > hi) continue;
        double y = y0 - (log(ticks[k]) - ly_lo) * ys;
        sb_printf(svg, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eeeeee\"/>"
                       "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.0f</text>\n", l, y, l + pw, y, l - 6, y + 4, ticks[k]);
    }
    const double step = nice_step(dur, 8);
    for (double x = 0; x <= dur + 1e-9; x += step)
        sb_printf(svg, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#888888\"/>"
                       "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n",
                  l + x * xs, t + ph, l + x * xs, t + ph + 5, l + x * xs, t + ph + 18, x);
    sb_printf(svg, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time (s)</text>\n", l + pw / 2, h - 8);
    sb_printf(svg, "<text x=\"14\" y=\"%d\" transform=\"rotate(-90 14 %d)\" text-anchor=\"middle\">F0 (Hz, log)</text>\n",
              t + ph / 2, t + ph / 2);
    f0_path(svg, s->source, s->hop, l, xs, y0, ly_lo, ys, "#4c78a8");
    if (s->output) f0_path(svg, s->output, s->hop, l, xs, y0, ly_lo, ys, "#e45756");
    sb_printf(svg, "<rect x=\"%d\" y=\"27\" width=\"14\" height=\"4\" fill=\"#4c78a8\"/><text x=\"%d\" y=\"33\">source</text>\n",
              w - 250, w - 232);
    if (s->output)
        sb_printf(svg, "<rect x=\"%d\" y=\"27\" width=\"14\" height=\"4\" fill=\"#e45756\"/><text x=\"%d\" y=\"33\">output</text>\n",
                  w - 160, w - 142);
    if (hi <= 0 || n == 0) sb_printf(svg, "<text x=\"%d\" y=\"%d\">no voiced frames</text>\n", l + 20, t + 30);
    sb_put(svg, "</svg>\n");
}

/* ---- PNG ---- */

static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Appends a chunk: length, type, data, CRC of type and data. */
static unsigned char *png_chunk(unsigned char *p, const char *type, const unsigned char *data, size_t n) {
    put_be32(p, (uint32_t)n);
    memcpy(p + 4, type, 4);
    if (n) memcpy(p + 8, data, n);
    put_be32(p + 8 + n, crc32_update(0, p + 4, n + 4));
    return p + 12 + n;
}

avo_status png_encode_rgb(const unsigned char *rgb, int width, int height, unsigned char **png, size_t *size,
                          avo_error *err) {
    if (width <= 0 || height <= 0 || width > 16384 || height > 16384)
        return avo_error_set(err, AVO_ERR_INVALID_ARGUMENT, "png: bad size %dx%d", width, height);
    const size_t row = (size_t)width * 3 + 1, raw_n = row * (size_t)height;
    const size_t blocks = (raw_n + 65534) / 65535;
    const size_t z_n = 2 + raw_n + 5 * blocks + 4;
    unsigned char *z = malloc(z_n), *out = malloc(8 + 25 + 12 + z_n + 12);
    if (!z || !out) {
        free(z);
        free(out);
        return avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    }
    /* zlib stream of stored blocks: header, blocks of raw rows (filter byte 0), Adler-32. */
    unsigned char *q = z;
    *q++ = 0x78;
    *q++ = 0x01;
    uint32_t a = 1, b = 0;
    size_t done = 0;
    unsigned char *blk = NULL;
    size_t blk_left = 0;
    for (int y = 0; y < height; y++) {
        for (size_t i = 0; i < row; i++) {
            if (blk_left == 0) {
                size_t len = raw_n - done < 65535 ? raw_n - done : 65535;
                blk = q;
                blk[0] = done + len == raw_n ? 1 : 0;
                blk[1] = (unsigned char)len;
                blk[2] = (unsigned char)(len >> 8);
                blk[3] = (unsigned char)~len;
                blk[4] = (unsigned char)(~len >> 8);
                q += 5;
                blk_left = len;
            }
            unsigned char v = i == 0 ? 0 : rgb[(size_t)y * (size_t)width * 3 + i - 1];
            *q++ = v;
            a = (a + v) % 65521u;
            b = (b + a) % 65521u;
            done++;
            blk_left--;
        }
    }
    put_be32(q, (b << 16) | a);
    q += 4;
    unsigned char ihdr[13];
    put_be32(ihdr, (uint32_t)width);
    put_be32(ihdr + 4, (uint32_t)height);
    ihdr[8] = 8;  /* bit depth */
    ihdr[9] = 2;  /* truecolour */
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    unsigned char *p = out;
    memcpy(p, "\x89PNG\r\n\x1a\n", 8);
    p += 8;
    p = png_chunk(p, "IHDR", ihdr, 13);
    p = png_chunk(p, "IDAT", z, (size_t)(q - z));
    p = png_chunk(p, "IEND", NULL, 0);
    free(z);
    *png = out;
    *size = (size_t)(p - out);
    return AVO_OK;
}

/* ---- spectrogram ---- */

/* Dark-to-bright colour map (black, purple, red, orange, pale yellow). */
static void colour_map(double v, unsigned char *rgb) {
    static const double stops[5][3] = {{0, 0, 4}, {80, 18, 123}, {183, 55, 121}, {252, 137, 97}, {252, 253, 191}};
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    double pos = v * 4;
    int k = pos >= 4 ? 3 : (int)pos;
    double f = pos - k;
    for (int c = 0; c < 3; c++) rgb[c] = (unsigned char)lrint(stops[k][c] + f * (stops[k + 1][c] - stops[k][c]));
}

avo_status plot_spectrogram_png(const char *audio_path, unsigned char **png, size_t *size, avo_error *err) {
    avo_audio a = {0}, mono = {0};
    avo_status st = avo_audio_read(audio_path, &a, err);
    if (!st) st = avo_audio_to_mono(&a, &mono, err);
    avo_audio_free(&a);
    if (st) return st;
    const int sr = mono.sample_rate;
    int nfft = 256;
    while (nfft < sr * 0.040 && nfft < 8192) nfft *= 2;
    const int64_t n = mono.frames < (int64_t)sr * 20 ? mono.frames : (int64_t)sr * 20;
    const int width = 800, height = 256;
    const double fmax = fmin(8000.0, sr / 2.0);
    const int bins = nfft / 2 + 1;
    float *in = fftwf_malloc(sizeof(float) * (size_t)nfft);
    fftwf_complex *spec = fftwf_malloc(sizeof(fftwf_complex) * (size_t)bins);
    double *db = malloc(sizeof(double) * (size_t)width * height);
    unsigned char *rgb = malloc((size_t)width * height * 3);
    fftwf_plan plan = in && spec ? fftwf_plan_dft_r2c_1d(nfft, in, spec, FFTW_ESTIMATE) : NULL;
    if (!plan || !db || !rgb) st = avo_error_set(err, AVO_ERR_NO_MEMORY, "out of memory");
    double top = -1e30;
    for (int col = 0; col < width && !st; col++) {
        /* One frame per pixel column, centred on the column's time. */
        int64_t centre = (int64_t)((col + 0.5) * (double)n / width);
        for (int i = 0; i < nfft; i++) {
            int64_t j = centre - nfft / 2 + i;
            double hann = 0.5 - 0.5 * cos(2 * M_PI * i / nfft);
            in[i] = j >= 0 && j < n ? (float)(hann * mono.samples[j]) : 0.0f;
        }
        fftwf_execute(plan);
        for (int row = 0; row < height; row++) {
            int bin = (int)lrint((double)row / (height - 1) * fmax / sr * nfft);
            if (bin >= bins) bin = bins - 1;
            double p = (double)spec[bin][0] * spec[bin][0] + (double)spec[bin][1] * spec[bin][1];
            double v = 10 * log10(p + 1e-12);
            db[(size_t)(height - 1 - row) * width + col] = v;
            if (v > top) top = v;
        }
    }
    if (!st) {
        for (size_t i = 0; i < (size_t)width * height; i++) colour_map((db[i] - (top - 80.0)) / 80.0, rgb + 3 * i);
        st = png_encode_rgb(rgb, width, height, png, size, err);
    }
    if (plan) fftwf_destroy_plan(plan);
    fftwf_free(in);
    fftwf_free(spec);
    free(db);
    free(rgb);
    avo_audio_free(&mono);
    return st;
}
