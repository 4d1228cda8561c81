#!/usr/bin/env bash
# End-to-end: `autovoice calibrate` on the small random HuBERT of tests/reference/hubert_golden.py and
# real clips of the shared data. Checks: a cache is written (header, one line per INT8 tensor), reused
# on the next run without touching it, rebuilt identically with --recalibrate (calibration is
# deterministic); caches of another model, another format version, or damaged are refused with
# exit 1 and a clear message, and left alone; --recalibrate replaces them; too little audio says how
# much more is needed; bad data (not audio, an empty folder, a missing path) fails naming it, with no
# cache left behind; usage errors exit 2; --evaluate reports a per-frame cosine >= 0.99 on other
# clips. SKIPs without python3-torch.
set -euo pipefail

source "$(dirname "$0")/lib/common.bash"
e2e_init test_calibrate_cli
mkdir -p "$base/m" "$base/cal" "$base/empty"

/usr/bin/python3 "$src/tests/reference/hubert_golden.py" "$base/m" > "$base/gen.log" 2>&1 \
  || fail "hubert_golden.py failed (see $base/gen.log)"
e2e_skip_without_torch "$base/m"
model="$base/m/hubert_small.pt"
# calibration audio: two singers and two speakers (about 47 s); evaluation: other voices
for f in singing/nus48e_JLEE_11.flac singing/nus48e_MPOL_11.flac speech/libri_1688-142285-0000.flac \
         speech/libri_2609-156975-0002.flac; do
  ln -s "$data/$f" "$base/cal/$(basename "$f")"
done
cache="$base/hubert_small.calib"

# 1. write
"$AVO_BIN" calibrate --model "$model" --data "$base/cal" -o "$cache" -q > "$base/1.out" 2> "$base/1.err" \
  || fail "calibrate failed: $(cat "$base/1.err")"
[ -s "$cache" ] || fail "no cache written"
grep -q "wrote $cache" "$base/1.out" || fail "no summary: $(cat "$base/1.out")"
head -1 "$cache" | grep -Eq '^AVO-INT8-CALIB 1 model=fnv1a64:[0-9a-f]{16} tensors=[0-9]+ checksum=[0-9a-f]{8}$' \
  || fail "bad header: $(head -1 "$cache")"
n=$(head -1 "$cache" | sed 's/.*tensors=\([0-9]*\).*/\1/')
[ "$n" -gt 0 ] && [ "$(tail -n +2 "$cache" | wc -l)" = "$n" ] || fail "header says $n tensors, the file has others"
tail -n +2 "$cache" | grep -Evq '^[!-9;-~]+: [0-9a-f]{8}$' && fail "a tensor line is not 'name: 8 hex digits'"
ls "$base" | grep -q '\.tmp\.' && fail "a temporary file was left behind"
sum1=$(cksum < "$cache")

# 2. reuse: nothing rewritten
touch -d '2000-01-01' "$cache"
"$AVO_BIN" calibrate --model "$model" --data "$base/cal" -o "$cache" -q > "$base/2.out" 2> "$base/2.err" \
  || fail "reusing the cache failed: $(cat "$base/2.err")"
grep -q "reusing it" "$base/2.out" || fail "a valid cache was not reported as reused: $(cat "$base/2.out")"
[ "$(date -r "$cache" +%Y)" = 2000 ] || fail "the reused cache was rewritten"

# 3. --recalibrate rebuilds, to the same bytes
"$AVO_BIN" calibrate --model "$model" --data "$base/cal" -o "$cache" --recalibrate -q > "$base/3.out" 2> "$base/3.err" \
  || fail "--recalibrate failed: $(cat "$base/3.err")"
grep -q "calibrated" "$base/3.out" || fail "--recalibrate did not calibrate"
[ "$(date -r "$cache" +%Y)" != 2000 ] || fail "--recalibrate did not rewrite the cache"
[ "$(cksum < "$cache")" = "$sum1" ] || fail "calibration is not deterministic"

# 4. refused caches: another model, another version, damaged; left alone; --recalibrate replaces
edit() { # edit SED_EXPR: change the cache and keep its checksum right (FNV-1a-64 as calibrate.h says)
  /usr/bin/python3 - "$cache" "$1" <<'PY'
import re, sys
path, expr = sys.argv[1], sys.argv[2]
text = open(path, "rb").read().decode()
old, new = expr.split("|")
text = text.replace(old, new, 1)
head, body = text.split("\n", 1)
pre = head[:head.index("checksum=") + 9]
h = 0xcbf29ce484222325
for b in (pre + body).encode():
    h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
open(path, "w").write(pre + "%08x\n" % (h & 0xffffffff) + body)
PY
}
refused() { # refused LABEL WORD: calibrate must exit 1 naming WORD and leave the cache as it is
  local before; before=$(cksum < "$cache")
  set +e
  "$AVO_BIN" calibrate --model "$model" --data "$base/cal" -o "$cache" -q > /dev/null 2> "$base/$1.err"; rc=$?
  set -e
  [ $rc = 1 ] && grep -q "$2" "$base/$1.err" || fail "$1: exit $rc, want 1 and '$2': $(cat "$base/$1.err")"
  grep -q -- "--recalibrate" "$base/$1.err" || fail "$1: the message does not say what to do"
  [ "$(cksum < "$cache")" = "$before" ] || fail "$1: the refused cache was changed"
}
hash=$(head -1 "$cache" | sed 's/.*fnv1a64:\([0-9a-f]*\).*/\1/')
edit "fnv1a64:$hash|fnv1a64:0123456789abcdef"
refused other_model "another model"
"$AVO_BIN" calibrate --model "$model" --data "$base/cal" -o "$cache" --recalibrate -q > /dev/null 2> "$base/4.err" \
  || fail "--recalibrate did not replace another model's cache: $(cat "$base/4.err")"
[ "$(cksum < "$cache")" = "$sum1" ] || fail "--recalibrate gave another cache"
edit "AVO-INT8-CALIB 1 |AVO-INT8-CALIB 7 "
refused other_version "version 7"
"$AVO_BIN" calibrate --model "$model" --data "$base/cal" -o "$cache" --recalibrate -q > /dev/null 2>&1 || fail "recalibrate"
# change the last digit of the first scale, without fixing the checksum
/usr/bin/python3 -c "import sys; p=sys.argv[1]; L=open(p).read().split('\n'); L[1]=L[1][:-1]+('1' if L[1][-1]=='0' else '0'); open(p,'w').write('\n'.join(L))" "$cache"
refused damaged "damaged"
"$AVO_BIN" calibrate --model "$model" --data "$base/cal" -o "$cache" --recalibrate -q > /dev/null 2>&1 || fail "recalibrate"
[ "$(cksum < "$cache")" = "$sum1" ] || fail "the cache differs after the refusals"

# 5. too little audio: how much more, and no cache
set +e
"$AVO_BIN" calibrate --model "$model" --data "$data/speech/vctk_p335_ref.flac" -o "$base/short.calib" -q 2> "$base/5.err"; rc=$?
set -e
[ $rc = 1 ] && grep -Eq "at least 30 s of audio, got 2\.[0-9] s: add 2[0-9]\.[0-9] s more" "$base/5.err" \
  || fail "too little audio: exit $rc: $(cat "$base/5.err")"
[ ! -e "$base/short.calib" ] || fail "a failed calibration left a cache"

# 6. bad data
printf 'not audio at all\n' > "$base/fake.wav"
set +e
"$AVO_BIN" calibrate --model "$model" --data "$base/cal" "$base/fake.wav" -o "$base/bad.calib" -q 2> "$base/6a.err"; rc=$?
set -e
[ $rc = 1 ] && grep -q "fake.wav" "$base/6a.err" || fail "a file that is not audio: exit $rc: $(cat "$base/6a.err")"
[ ! -e "$base/bad.calib" ] || fail "a failed calibration left a cache"
set +e
"$AVO_BIN" calibrate --model "$model" --data "$base/empty" -o "$base/bad.calib" -q 2> "$base/6b.err"; rc=$?
set -e
[ $rc = 1 ] && grep -q "no audio files" "$base/6b.err" || fail "a folder without audio: exit $rc: $(cat "$base/6b.err")"
set +e
"$AVO_BIN" calibrate --model "$model" --data "$base/nowhere" -o "$base/bad.calib" -q 2> "$base/6c.err"; rc=$?
set -e
[ $rc = 1 ] && grep -q "nowhere" "$base/6c.err" || fail "a missing path: exit $rc: $(cat "$base/6c.err")"
set +e
"$AVO_BIN" calibrate --model "$base/fake.wav" --data "$base/cal" -o "$base/bad.calib" -q 2> "$base/6d.err"; rc=$?
set -e
[ $rc = 1 ] && grep -q "fake.wav" "$base/6d.err" || fail "a model that is not one: exit $rc: $(cat "$base/6d.err")"
[ ! -e "$base/bad.calib" ] || fail "a failed calibration left a cache"

# 7. usage errors
set +e
"$AVO_BIN" calibrate --data "$base/cal" -o "$base/u.calib" 2> /dev/null; rc1=$?
"$AVO_BIN" calibrate --model "$model" -o "$base/u.calib" 2> /dev/null; rc2=$?
"$AVO_BIN" calibrate --model "$model" --data "$base/cal" --component synth 2> "$base/7.err"; rc3=$?
set -e
[ $rc1 = 2 ] && [ $rc2 = 2 ] && [ $rc3 = 2 ] || fail "usage errors gave exits $rc1 $rc2 $rc3, want 2"
grep -q "not calibrated yet" "$base/7.err" || fail "--component synth: $(cat "$base/7.err")"
"$AVO_BIN" calibrate --help | grep -q -- "--recalibrate" || fail "--help does not list --recalibrate"

# 8. the simulated INT8 on other voices
"$AVO_BIN" calibrate --model "$model" --data "$base/cal" -o "$cache" -q --evaluate "$data/singing/nus48e_ZHIY_03.flac" \
  --evaluate "$data/speech/libri_367-130732-0001.flac" > "$base/8.out" 2> "$base/8.err" || fail "--evaluate: $(cat "$base/8.err")"
line=$(grep "cosine similarity median" "$base/8.out") || fail "--evaluate printed no cosine: $(cat "$base/8.out")"
echo "$line"
/usr/bin/python3 - "$line" <<'PY' || fail "simulated INT8 content features are too far from FP32: $line"
import re, sys
m = re.search(r"median ([0-9.]+), 1st percentile ([0-9.]+), min ([0-9.]+)", sys.argv[1])
sys.exit(0 if m and float(m.group(1)) >= 0.99 and float(m.group(3)) >= 0.99 else 1)
PY
set +e
"$AVO_BIN" calibrate --model "$model" --data "$base/cal" -o "$cache" -q --evaluate "$base/cal" 2> "$base/8b.err"; rc=$?
set -e
[ $rc = 1 ] && grep -q "calibration audio too" "$base/8b.err" || fail "evaluating on the calibration audio: exit $rc"

echo "test_calibrate_cli: ok"
