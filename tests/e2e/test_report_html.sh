#!/usr/bin/env bash
# End-to-end: `autovoice report` on fixture results, then the HTML page rendered by headless Chromium.
# Checks: the page loads (DOM has every section), every plot it references exists, and the screenshot
# is not blank and shows the stage chart's colours (so images really rendered).
# Needs chromium (Debian package "chromium"); AVO_SKIP_BROWSER=1 skips only the browser part.
set -euo pipefail

source "$(dirname "$0")/lib/common.bash"
e2e_init test_report_html
mkdir -p "$base/in/excerpts" "$base/out"
in="$base/in"
out="$base/out"

# ---- fixture results (numbers are arbitrary but checked below) ----
cat > "$in/system.json" <<'EOF'
{"benchmark":"system","cpu_model":"Fixture CPU","cores":4,"memory_mb":8192,"os":"Linux","compiler":"gcc",
 "build_type":"Release","libraries":{"sndfile":"libsndfile-1.2.0","sqlite":"3.40.1"}}
EOF
cat > "$in/performance_breakdown.json" <<'EOF'
{"benchmark":"performance_breakdown","cases":[
 {"audio_duration_seconds":30,"preset":"fast","stage_timings_ms":{"separation":900,"f0_extraction":150,"conversion":1700,"mixing":50,"total":2800},"peak_rss_mb":410,"device":"cpu","precision":"fp32"},
 {"audio_duration_seconds":30,"preset":"balanced","stage_timings_ms":{"separation":2100,"f0_extraction":600,"conversion":3900,"mixing":60,"total":6660},"peak_rss_mb":520,"device":"cpu","precision":"fp32"}]}
EOF
cat > "$in/latency.json" <<'EOF'
{"benchmark":"latency","song_seconds":30,"preset":"fast","warmup_runs":1,"timed_runs":3,"elapsed_ms":2750,"rtf":0.0917,
 "requested_device":"cuda","requested_precision":"fp32","device":"cpu","precision":"fp32","target_seconds":3,
 "f0_series":{"hop_seconds":0.01,"source_hz":[0,0,220,222,224,226,0,0,330,332,334,0],"output_hz":[0,0,110,111,112,113,0,0,165,166,167,0]},
 "excerpts":{"source":"excerpts/source.flac","target":"excerpts/target.flac","output":"excerpts/output.flac"}}
EOF
cat > "$in/separation.json" <<'EOF'
{"benchmark":"separation","mixture":"fixture","stems":[{"name":"vocals","sdr_db":6.5},{"name":"accompaniment","sdr_db":12.25}]}
EOF
# Excerpts: links to shared recordings (never copied).
ln -s "$(cd "$data" && pwd)/singing/vocadito_10.flac" "$in/excerpts/source.flac"
ln -s "$(cd "$data" && pwd)/singing/nus48e_JLEE_11.flac" "$in/excerpts/target.flac"
ln -s "$(cd "$data" && pwd)/singing/nus48e_NJAT_07.flac" "$in/excerpts/output.flac"

"$AVO_BIN" report --in "$in" -o "$out/report.md" --html "$out/report.html" || fail "autovoice report failed"
[ -s "$out/report.md" ] || fail "no report.md"
[ -s "$out/report.html" ] || fail "no report.html"
grep -q "NOT PASSED: requested cuda, ran cpu" "$out/report.md" || fail "latency verdict missing from report.md"

# Every image the page refers to must exist beside it.
srcs=$(grep -o '<img src="[^"]*"' "$out/report.html" | sed 's/<img src="//; s/"$//')
[ "$(echo "$srcs" | grep -c .)" -ge 5 ] || fail "expected at least 5 plots in the page, found: $srcs"
for s in $srcs; do
    [ -s "$out/$s" ] || fail "page refers to $s, which is missing"
done

# A malformed input must fail with the file and field named (exit status 1).
mkdir -p "$base/bad"
echo '{"benchmark":"latency","song_seconds":30,"elapsed_ms":' > "$base/bad/latency.json"
if "$AVO_BIN" report --in "$base/bad" -o "$base/bad/report.md" 2> "$base/bad/err.txt"; then
    fail "malformed latency.json was accepted"
fi
grep -q "latency.json" "$base/bad/err.txt" && grep -q "elapsed_ms" "$base/bad/err.txt" ||
    fail "error does not name file and field: $(cat "$base/bad/err.txt")"

# ---- the real thing: a quick bench asking for cuda/int8 on this CPU-only build, then its report ----
bench="$base/bench"
"$AVO_BIN" bench --quick --device cuda --precision int8 --out "$bench" --data "$data" > "$base/bench.log" 2>&1 ||
    fail "autovoice bench --quick failed: $(tail -5 "$base/bench.log")"
for f in system performance_breakdown latency separation quality; do
    [ -s "$bench/$f.json" ] || fail "bench wrote no $f.json"
done
grep -q '"requested_device":[[:space:]]*"cuda"' "$bench/latency.json" || fail "latency.json lacks the requested device"
grep -q '"target_met":[[:space:]]*false' "$bench/latency.json" || fail "a cuda request on a CPU build must not meet the target"
grep -q '"f0_series"' "$bench/latency.json" || fail "latency.json has no f0_series"
"$AVO_BIN" report --in "$bench" -o "$bench/report.md" --html "$bench/report.html" || fail "report on bench output failed"
grep -q "NOT PASSED: requested cuda, ran cpu" "$bench/report.md" || fail "bench report does not say what really ran"
grep -q "requested int8, ran fp32" "$bench/report.md" || fail "bench report does not say which precision ran"
for p in stages.svg f0.svg spec_source.png spec_target.png spec_output.png; do
    [ -s "$bench/report_$p" ] || fail "bench report lacks plot report_$p"
done

# ---- the browser ----
browser=""
for b in chromium chromium-browser google-chrome; do
    if command -v "$b" > /dev/null 2>&1; then browser=$(command -v "$b"); break; fi
done
if [ -z "$browser" ]; then
    if [ "${AVO_SKIP_BROWSER:-0}" = "1" ]; then
        echo "test_report_html: chromium not found; browser checks skipped (AVO_SKIP_BROWSER=1)"
        exit 0
    fi
    fail "chromium not found: install the Debian package 'chromium' (apt-get install chromium), or set AVO_SKIP_BROWSER=1"
fi

flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --hide-scrollbars)
url="file://$out/report.html"
profile="$base/profile-dom"
mkdir -p "$profile"
timeout 120 "$browser" "${flags[@]}" --user-data-dir="$profile" --dump-dom "$url" > "$base/dom.html" 2> "$base/chromium-dom.log" ||
    fail "chromium --dump-dom failed: $(tail -5 "$base/chromium-dom.log")"
for section in "System and build" "Stage breakdown" "Latency test" "Separation" "Spectrograms" "Not measured"; do
    grep -q "<h2>$section</h2>" "$base/dom.html" || fail "rendered page lacks section '$section'"
done
dom_imgs=$(grep -o '<img src="[^"]*"' "$base/dom.html" | sed 's/<img src="//; s/"$//')
[ "$dom_imgs" = "$srcs" ] || fail "rendered page's images differ from the file's"

profile="$base/profile-shot"
mkdir -p "$profile"
shot="$base/screenshot.png"
timeout 120 "$browser" "${flags[@]}" --user-data-dir="$profile" --screenshot="$shot" --window-size=1200,2000 "$url" \
    > "$base/chromium-shot.log" 2>&1 || fail "chromium --screenshot failed: $(tail -5 "$base/chromium-shot.log")"
[ -s "$shot" ] || fail "no screenshot written"
size=$(stat -c %s "$shot")
if command -v python3 > /dev/null 2>&1 && python3 -c 'import zlib' 2> /dev/null; then
    # Decode the PNG: the page must not be blank, and the stage chart's blue (#4c78a8) must be on screen.
    python3 - "$shot" <<'EOF' || fail "screenshot check failed"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, w, h, ctype = 8, b"", 0, 0, 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
        assert depth == 8, "bit depth %d" % depth
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
bpp = {2: 3, 6: 4}[ctype]
raw, stride = zlib.decompress(idat), w * bpp
rows, prev, i = [], bytearray(stride), 0
for y in range(h):
    f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]; c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line)); prev = line
nonwhite = blue = 0
for r in rows[::2]:
    for x in range(0, stride, bpp * 2):
        px = r[x:x + 3]
        if px != b"\xff\xff\xff": nonwhite += 1
        if abs(px[0] - 0x4c) < 12 and abs(px[1] - 0x78) < 12 and abs(px[2] - 0xa8) < 12: blue += 1
total = len(rows[::2]) * len(range(0, stride, bpp * 2))
print("screenshot %dx%d: %.1f%% non-white, %d stage-blue samples" % (w, h, 100.0 * nonwhite / total, blue))
assert w == 1200 and h == 2000, "unexpected size"
assert nonwhite > total * 0.02, "screenshot is blank"
assert blue > 200, "stage chart not visible in the screenshot"
EOF
else
    # Without a PNG decoder: a blank 1200x2000 page compresses to a few KB.
    [ "$size" -gt 60000 ] || fail "screenshot is only $size bytes: page looks blank"
fi
echo "test_report_html: ok ($(echo "$srcs" | wc -l) plots, screenshot $size bytes at $shot)"
