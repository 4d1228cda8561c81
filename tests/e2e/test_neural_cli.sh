#!/usr/bin/env bash
# End-to-end: `autovoice convert --model` and neural profiles, on small random RVC v2 / HuBERT / RMVPE
# checkpoints in the upstream formats (written by tests/reference/rvc_chain_golden.py and
# rmvpe_golden.py). Random weights sing nonsense, so this checks the plumbing and the promises:
# the output has the input's length and rate, the run metadata names what ran (converter, F0 method,
# device, a device fallback), neural profiles keep their model, and bad inputs fail with exit 1, a
# message naming the file, and no output left behind. SKIPs without python3-torch.
set -euo pipefail

source "$(dirname "$0")/lib/common.bash"
e2e_init test_neural_cli
mkdir -p "$base/models" "$base/xdg" "$base/out"
m="$base/models"
export XDG_DATA_HOME="$base/xdg"
unset AUTOVOICE_CONTENT_ENCODER AUTOVOICE_PITCH_MODEL

/usr/bin/python3 "$src/tests/reference/rvc_chain_golden.py" "$m" "$data" > "$base/gen.log" 2>&1 \
  || fail "rvc_chain_golden.py failed (see $base/gen.log)"
e2e_skip_without_torch "$m"
clip="$data/singing/nus48e_ADIZ_18.flac"
[ -f "$clip" ] || clip=$(ls "$data"/singing/*.flac | head -1)
mkdir -p "$m/rmvpe"
sox "$clip" -r 16000 -c 1 -t f32 "$m/rmvpe/clip.f32" trim 0 1
/usr/bin/python3 "$src/tests/reference/rmvpe_golden.py" "$m/rmvpe" "$m/rmvpe/clip.f32" > "$base/gen_rmvpe.log" 2>&1 \
  || fail "rmvpe_golden.py failed (see $base/gen_rmvpe.log)"
rm_small="$m/rmvpe/rmvpe_small.pt"
sox "$clip" -r 44100 "$base/song.wav" trim 0 4
in_len=$(sox --i -s "$base/song.wav")

# 1. a direct model, DSP F0 tracker (no pitch model anywhere)
"$AVO_BIN" convert "$base/song.wav" --no-separation --model "$m/rvc_small.pth" --content-encoder "$m/hubert_small.pt" \
  --index "$m/index.npy" --speaker-id 1 -t 3 -o "$base/out/a.wav" --profile-json "$base/out/a.json" -q \
  || fail "convert --model failed"
[ "$(sox --i -s "$base/out/a.wav")" = "$in_len" ] || fail "output length differs from the input"
[ "$(sox --i -r "$base/out/a.wav")" = "44100" ] || fail "output rate is not the input's"
[ "$(json_get "$base/out/a.json" converter)" = "rvc-v2" ] || fail "metadata does not name the RVC converter"
[ "$(json_get "$base/out/a.json" device)" = "cpu" ] || fail "metadata device is not cpu"
case "$(json_get "$base/out/a.json" f0_method)" in fast|accurate) ;; *) fail "F0 method should be the DSP tracker";; esac
amp=$(sox "$base/out/a.wav" -n stat 2>&1 | awk '/RMS +amplitude/ {print $3}')
/usr/bin/python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > 1e-4 else 1)" "$amp" || fail "output is silent"

# 2. RMVPE in the F0 stage
"$AVO_BIN" convert "$base/song.wav" --no-separation --model "$m/rvc_small.pth" --content-encoder "$m/hubert_small.pt" \
  --pitch-model "$rm_small" -o "$base/out/b.wav" --profile-json "$base/out/b.json" -q || fail "convert with RMVPE failed"
[ "$(json_get "$base/out/b.json" f0_method)" = "rmvpe" ] || fail "metadata F0 method is not rmvpe"
[ "$(sox --i -s "$base/out/b.wav")" = "$in_len" ] || fail "output length differs from the input (RMVPE run)"
# the pitch model from the data folder's models/ when no option names one
mkdir -p "$XDG_DATA_HOME/autovoice/models"
ln -s "$rm_small" "$XDG_DATA_HOME/autovoice/models/rmvpe.pt"
ln -s "$m/hubert_small.pt" "$XDG_DATA_HOME/autovoice/models/hubert_base.pt"
"$AVO_BIN" convert "$base/song.wav" --no-separation --model "$m/rvc_small.pth" -o "$base/out/b2.wav" \
  --profile-json "$base/out/b2.json" -q || fail "convert with the default model files failed"
[ "$(json_get "$base/out/b2.json" f0_method)" = "rmvpe" ] || fail "the default rmvpe.pt was not used"
rm "$XDG_DATA_HOME/autovoice/models/rmvpe.pt" "$XDG_DATA_HOME/autovoice/models/hubert_base.pt"
# a broken pitch model is a clear error naming it
set +e
"$AVO_BIN" convert "$base/song.wav" --no-separation --model "$m/rvc_small.pth" --content-encoder "$m/hubert_small.pt" \
  --pitch-model "$m/rmvpe/rmvpe_bad_shape.pt" -o "$base/out/b3.wav" -q 2> "$base/b3.err"; rc=$?
set -e
[ $rc = 1 ] && grep -q "rmvpe_bad_shape.pt" "$base/b3.err" || fail "a bad pitch model is not a clear error (exit $rc): $(cat "$base/b3.err")"
[ ! -e "$base/out/b3.wav" ] || fail "a failed run left its output"

# 3. a device that cannot be had: fallback with a warning and a note, or an error with --strict
if ! "$AVO_BIN" convert "$base/song.wav" --no-separation --model "$m/rvc_small.pth" --content-encoder "$m/hubert_small.pt" \
     --device cuda -o "$base/out/c.wav" --profile-json "$base/out/c.json" -q 2> "$base/c.err"; then
  fail "--device cuda without --strict should fall back: $(cat "$base/c.err")"
fi
if [ "$(json_get "$base/out/c.json" device)" = "cpu" ]; then
  [ -n "$(json_get "$base/out/c.json" device_fallback)" ] || fail "a CPU fallback is not recorded in the metadata"
  grep -q "warning" "$base/c.err" || fail "a CPU fallback gives no warning"
  if "$AVO_BIN" convert "$base/song.wav" --no-separation --model "$m/rvc_small.pth" --content-encoder "$m/hubert_small.pt" \
       --device cuda --strict -o "$base/out/d.wav" -q 2> "$base/d.err"; then fail "--strict accepted an unusable device"; fi
  [ ! -e "$base/out/d.wav" ] || fail "a failed run left its output"
fi

# fp16 on the CPU cannot be had: fp32 runs, and the metadata says so per component
"$AVO_BIN" convert "$base/song.wav" --no-separation --model "$m/rvc_small.pth" --content-encoder "$m/hubert_small.pt" \
  --pitch-model "$rm_small" --precision fp16 -o "$base/out/p.wav" --profile-json "$base/out/p.json" -q 2> "$base/p.err" \
  || fail "--precision fp16 without --strict should fall back"
/usr/bin/python3 - "$base/out/p.json" <<'PY' || fail "precision fallback not reported truthfully: $(cat "$base/out/p.json")"
import json, sys
d = json.load(open(sys.argv[1]))
c = d["components"]
assert d["precision"] == "fp32" and "fp16" in d["device_fallback"], d
assert c["conversion"]["precision"] == "fp32" and c["f0_extraction"]["precision"] == "fp32", c
assert c["f0_extraction"]["method"] == "rmvpe", c
PY
set +e
"$AVO_BIN" convert "$base/song.wav" --no-separation --model "$m/rvc_small.pth" --content-encoder "$m/hubert_small.pt" \
  --precision fp16 --strict -o "$base/out/p2.wav" -q 2> "$base/p2.err"; rc=$?
set -e
[ $rc = 1 ] && grep -q "fp16" "$base/p2.err" || fail "--precision fp16 --strict on the CPU is not an error (exit $rc)"
[ ! -e "$base/out/p2.wav" ] || fail "a failed run left its output"

# per-component precision: each component's request is judged (and reported) on its own
"$AVO_BIN" convert "$base/song.wav" --no-separation --model "$m/rvc_small.pth" --content-encoder "$m/hubert_small.pt" \
  --pitch-model "$rm_small" --precision fp32,content=int8,pitch=fp16 -o "$base/out/q.wav" \
  --profile-json "$base/out/q.json" -q 2> "$base/q.err" || fail "per-component precision without --strict should fall back"
/usr/bin/python3 - "$base/out/q.json" <<'PY' || fail "per-component precision not reported truthfully: $(cat "$base/out/q.json")"
import json, sys
d = json.load(open(sys.argv[1]))
c = d["components"]
note = d["device_fallback"]
assert "content encoder: int8" in note and "pitch network: fp16" in note and "voice model" not in note, note
assert c["conversion"]["content_encoder"]["precision"] == "fp32", c
assert c["conversion"]["voice_model"]["precision"] == "fp32" and c["f0_extraction"]["precision"] == "fp32", c
PY
grep -q "content encoder: int8" "$base/q.err" || fail "a per-component fallback gives no warning"
set +e
"$AVO_BIN" convert "$base/song.wav" --no-separation --model "$m/rvc_small.pth" --content-encoder "$m/hubert_small.pt" \
  --precision content=int8 --strict -o "$base/out/q2.wav" -q 2> "$base/q2.err"; rc=$?
[ $rc = 1 ] && grep -q "content encoder: int8" "$base/q2.err" || fail "--strict accepted an unmet content precision (exit $rc)"
"$AVO_BIN" convert "$base/song.wav" --no-separation --model "$m/rvc_small.pth" --content-encoder "$m/hubert_small.pt" \
  --precision vocoder=fp8 -o "$base/out/q3.wav" -q 2> "$base/q3.err"; rc=$?
[ $rc = 2 ] && grep -q "vocoder=fp8" "$base/q3.err" || fail "a bad precision is not a usage error (exit $rc)"
"$AVO_BIN" convert "$base/song.wav" --no-separation --model "$m/rvc_small.pth" --content-encoder "$m/hubert_small.pt" \
  --precision decoder=fp16 -o "$base/out/q4.wav" -q 2> "$base/q4.err"; rc=$?
[ $rc = 2 ] && grep -q "unknown component 'decoder'" "$base/q4.err" || fail "an unknown component is not a usage error (exit $rc)"
set -e
[ ! -e "$base/out/q2.wav" ] && [ ! -e "$base/out/q3.wav" ] && [ ! -e "$base/out/q4.wav" ] || fail "a failed run left its output"

# bf16 on the CPU: it runs where the CPU has AVX512-BF16 (and says so) and is a noted fallback elsewhere.
# (Its accuracy is measured on real-size models in bench_neural and per kernel in test_engine_conv_fused;
# the small random test models here amplify any difference into noise.)
"$AVO_BIN" convert "$base/song.wav" --no-separation --model "$m/rvc_small.pth" --content-encoder "$m/hubert_small.pt" \
  --pitch-model "$rm_small" --precision vocoder=bf16 -o "$base/out/bf.wav" --profile-json "$base/out/bf.json" -q \
  || fail "--precision bf16 failed"
has_bf16=0; grep -q avx512_bf16 /proc/cpuinfo && has_bf16=1
/usr/bin/python3 - "$base/out/bf.json" "$has_bf16" <<'PY' || fail "bf16 run not reported truthfully: $(cat "$base/out/bf.json")"
import json, sys
d = json.load(open(sys.argv[1]))
c = d["components"]["conversion"]
if sys.argv[2] == "1":
    assert c["voice_model"]["precision"] == "bf16-conv" and "voice model" not in d.get("device_fallback", ""), d
else:
    assert c["voice_model"]["precision"] == "fp32" and "bf16" in d["device_fallback"], d
assert c["content_encoder"]["precision"] == "fp32", c
PY
# engine cache: the first run builds each model's engine, the next reuses it; a damaged engine file is
# rebuilt (and said so), never used; the results are the same either way
ec="$base/engines"
rm -rf "$ec"
for run in e1 e2 e3; do
  if [ $run = e3 ]; then # damage one byte in the middle of every engine file
    for f in "$ec"/*.aveng; do
      size=$(stat -c %s "$f"); printf '\x5a' | dd of="$f" bs=1 seek=$((size / 2)) conv=notrunc status=none
    done
  fi
  "$AVO_BIN" convert "$base/song.wav" --no-separation --model "$m/rvc_small.pth" --content-encoder "$m/hubert_small.pt" \
    --pitch-model "$rm_small" --engine-cache "$ec" -o "$base/out/$run.wav" --profile-json "$base/out/$run.json" -q \
    || fail "engine cache run $run failed"
done
[ "$(ls "$ec"/*.aveng | wc -l)" = 3 ] || fail "expected three engine files (content encoder, voice model, pitch network)"
ls "$ec" | grep -v '\.aveng$' && fail "the engine cache directory holds stray files"
cmp -s "$base/out/e1.wav" "$base/out/e2.wav" && cmp -s "$base/out/e1.wav" "$base/out/e3.wav" \
  || fail "a cached engine changed the output"
/usr/bin/python3 - "$base/out" <<'PY' || fail "engine cache outcomes not reported: $(cat "$base/out/e3.json")"
import json, sys
def eng(run):
    d = json.load(open("%s/%s.json" % (sys.argv[1], run)))
    c = d["components"]
    return (c["f0_extraction"]["engine_cache"], c["conversion"]["content_encoder"]["engine_cache"],
            c["conversion"]["voice_model"]["engine_cache"]), d.get("engine_notes", "")
assert eng("e1")[0] == ("build",) * 3, eng("e1")
assert eng("e2")[0] == ("hit",) * 3, eng("e2")
outcomes, notes = eng("e3")
assert outcomes == ("rebuild",) * 3, outcomes
assert "content encoder: engine rebuild" in notes and "voice model" in notes and "pitch network" in notes, notes
PY

# 4. a neural profile keeps its own copy of the model and index
store="$base/store"
cp "$m/rvc_small.pth" "$base/moved.pth"
"$AVO_BIN" profile create tenor --model "$base/moved.pth" --index "$m/index.npy" --store "$store" -q \
  || fail "profile create --model failed"
"$AVO_BIN" profile show tenor --store "$store" | grep -q "neural" || fail "profile kind is not neural"
rm "$base/moved.pth" # the profile must not depend on the original file
"$AVO_BIN" convert "$base/song.wav" --no-separation --profile tenor --content-encoder "$m/hubert_small.pt" \
  --store "$store" -o "$base/out/e.wav" --profile-json "$base/out/e.json" -q || fail "convert --profile (neural) failed"
[ "$(json_get "$base/out/e.json" converter)" = "rvc-v2" ] || fail "neural profile did not run the RVC converter"

# 5. so-vits-svc 4.0 and 4.1 models (small, from make_sovits_models.py --small) through the same door
/usr/bin/python3 "$src/tests/reference/make_sovits_models.py" --small "$m/sovits" > "$base/gen_sovits.log" 2>&1 \
  || fail "make_sovits_models.py --small failed (see $base/gen_sovits.log)"
for v in 40 41; do
  enc="$m/hubert_d48.pt"; [ $v = 40 ] && enc="$m/hubert_f32.pt"
  "$AVO_BIN" convert "$base/song.wav" --no-separation --model "$m/sovits/small$v/G_100.pth" --content-encoder "$enc" \
    --pitch-model "$rm_small" -o "$base/out/s$v.wav" --profile-json "$base/out/s$v.json" -q \
    || fail "convert with the so-vits $v model failed"
  [ "$(json_get "$base/out/s$v.json" converter)" = "so-vits-svc-${v:0:1}.${v:1:1}" ] || fail "metadata does not name so-vits $v"
  [ "$(sox --i -s "$base/out/s$v.wav")" = "$in_len" ] || fail "so-vits $v output length differs from the input"
done
cp "$m/sovits/small41/G_100.pth" "$base/G_41.pth"
cp "$m/sovits/small41/config.json" "$base/sv41.json"
"$AVO_BIN" profile create sv41 --model "$base/G_41.pth" --model-config "$base/sv41.json" --store "$store" -q \
  || fail "profile create with a so-vits model failed"
rm "$base/G_41.pth" "$base/sv41.json"
"$AVO_BIN" convert "$base/song.wav" --no-separation --profile sv41 --content-encoder "$m/hubert_d48.pt" --store "$store" \
  -o "$base/out/s41p.wav" -q || fail "convert --profile with a so-vits profile failed"
set +e
"$AVO_BIN" convert "$base/song.wav" --no-separation --model "$m/sovits/small41/G_100.pth" --content-encoder "$m/hubert_small.pt" \
  -o "$base/out/s41x.wav" -q 2> "$base/s41x.err"; rc=$?
set -e
[ $rc = 1 ] && grep -q "768-dim units but the so-vits model takes 48" "$base/s41x.err" \
  || fail "a content encoder of the wrong width is not a clear error (exit $rc): $(cat "$base/s41x.err")"
[ ! -e "$base/out/s41x.wav" ] || fail "a failed run left its output"

# 6. bad inputs: exit 1, the file named, nothing written
head -c 20000 "$m/rvc_small.pth" > "$base/truncated.pth"
set +e
"$AVO_BIN" convert "$base/song.wav" --no-separation --model "$base/truncated.pth" --content-encoder "$m/hubert_small.pt" \
  -o "$base/out/f.wav" -q 2> "$base/f.err"; rc=$?
set -e
[ $rc = 1 ] || fail "a truncated model gave exit $rc, not 1"
grep -q "truncated.pth" "$base/f.err" || fail "the error does not name the bad model: $(cat "$base/f.err")"
[ ! -e "$base/out/f.wav" ] || fail "a failed run left its output"

set +e
"$AVO_BIN" convert "$base/song.wav" --no-separation --model "$m/rvc_small.pth" -o "$base/out/g.wav" -q 2> "$base/g.err"; rc=$?
set -e
[ $rc = 1 ] && grep -q "content encoder" "$base/g.err" || fail "a missing content encoder is not a clear error (exit $rc)"

set +e
"$AVO_BIN" profile create wrong --model "$m/hubert_small.pt" --store "$store" -q 2> "$base/h.err"; rc=$?
set -e
[ $rc = 1 ] || fail "a non-RVC file became a profile (exit $rc)"
"$AVO_BIN" profile list --store "$store" | grep -q "^wrong" && fail "the refused profile is listed"

set +e
"$AVO_BIN" convert "$base/song.wav" --no-separation --model "$m/rvc_small.pth" --content-encoder "$m/hubert_small.pt" \
  --index "$m/hubert_small.pt" -o "$base/out/i.wav" -q 2> "$base/i.err"; rc=$?
set -e
[ $rc = 1 ] && grep -q "hubert_small.pt" "$base/i.err" || fail "a bad index is not a clear error (exit $rc): $(cat "$base/i.err")"
[ ! -e "$base/out/i.wav" ] || fail "a failed run left its output"

echo "test_neural_cli: ok"
