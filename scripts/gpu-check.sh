#!/usr/bin/env bash
# GPU check of the CUDA engine back end, for a machine with an NVIDIA GPU: builds (Release, CUDA on),
# runs the CUDA parity test (every op against the CPU back end, FP32 and FP16, HuBERT end to end),
# the engine benchmark (CUDA FP32 / FP16 against the CPU back end, with the copy-bandwidth and GEMM
# ceilings) and, where PyTorch with CUDA is importable, the same cases in PyTorch on the same GPU.
# Prints a short table last and writes everything as JSON to OUT.json (logs beside it).
#
# Usage: scripts/gpu-check.sh [--build-dir DIR] [--no-build] [--lib-dir DIR] [--no-cpu] [--no-torch] OUT.json
#   --no-build  use the binaries already in the build directory (built on another machine)
#   --lib-dir   shared libraries those binaries need, absolute, ":"-separated (for them only, not Python)
# Exit status: non-zero if the build, the test or the benchmark failed.
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=build-gpu
DO_BUILD=1
CPU_FLAG=""
TORCH=1
OUT=""
LIBS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) BUILD="$2"; shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    --lib-dir) LIBS="$2"; shift 2 ;;
    --no-cpu) CPU_FLAG="--no-cpu"; shift ;;
    --no-torch) TORCH=0; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) OUT="$1"; shift ;;
  esac
done
if [ -z "$OUT" ]; then
  echo "usage: scripts/gpu-check.sh [--build-dir DIR] [--no-build] [--lib-dir DIR] [--no-cpu] [--no-torch] OUT.json" >&2
  exit 2
fi
mkdir -p "$(dirname "$OUT")"
BASE="${OUT%.json}"
TEST_LOG="$BASE.test.log" BENCH_LOG="$BASE.bench.log" BENCH_JSON="$BASE.bench.json" TORCH_JSON="$BASE.torch.json"
rm -f "$TEST_LOG" "$BENCH_LOG" "$BENCH_JSON" "$TORCH_JSON"
PY=python3
# runs one of our binaries, with --lib-dir's libraries in front
run_bin() { if [ -n "$LIBS" ]; then LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"; else "$@"; fi; }

echo "== GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || echo "nvidia-smi failed"
GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)

status=0
if [ "$DO_BUILD" = 1 ]; then
  echo "== build ($BUILD, Release, CUDA on)"
  if ! cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAVO_CUDA=ON >"$BASE.build.log" 2>&1 ||
     ! cmake --build "$BUILD" -j"$(nproc)" --target test_engine_cuda bench_engine_cuda >>"$BASE.build.log" 2>&1; then
    tail -30 "$BASE.build.log"
    echo "build failed (log: $BASE.build.log)"
    exit 1
  fi
  grep -q "AutoVoice: CUDA back end" "$BASE.build.log" || { echo "CMake did not find nvcc: no CUDA back end"; exit 1; }
fi

echo "== parity test"
start=$(date +%s)
AVO_REQUIRE_CUDA=1 AVO_SOURCE_DIR="$PWD" run_bin "$BUILD/test_engine_cuda" >"$TEST_LOG" 2>&1
test_rc=$?
test_s=$(( $(date +%s) - start ))
grep -E "CHECK failed|SKIP|checks," "$TEST_LOG" | head -40
[ $test_rc = 0 ] || status=1

echo "== benchmark"
run_bin "$BUILD/bench_engine_cuda" --out "$BENCH_JSON" $CPU_FLAG >"$BENCH_LOG" 2>&1
bench_rc=$?
[ $bench_rc = 0 ] || { tail -5 "$BENCH_LOG"; status=1; }

if [ "$TORCH" = 1 ] && $PY -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "== PyTorch on the same cases"
  PYTHONUNBUFFERED=1 $PY - "$TORCH_JSON" <<'PYEOF' || echo "PyTorch benchmark failed"
# The bench_engine_cuda cases in PyTorch (TF32 off in FP32; FP16 = half weights and inputs), timed with
# CUDA events: a warm-up, then the median of 5 batches of back-to-back runs.
import json, sys
import torch
import torch.nn.functional as F

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True
dev = "cuda"
res = {}


def bench(fn):
    fn()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record(); fn(); e.record(); e.synchronize()
    one = s.elapsed_time(e)
    reps = max(1, min(200, int(20.0 / one))) if one > 0 else 50
    v = []
    for _ in range(5):
        s.record()
        for _ in range(reps):
            fn()
        e.record(); e.synchronize()
        v.append(s.elapsed_time(e) / reps)
    return sorted(v)[2]


def rnd(*shape, scale=1.0, dt=torch.float32):
    return ((torch.rand(*shape, device=dev) * 2 - 1) * scale).to(dt)


def put(name, half, ms):
    res.setdefault(name, {})["fp16_ms" if half else "fp32_ms"] = round(ms, 4)


with torch.no_grad():
    for half in (False, True):
        dt = torch.float16 if half else torch.float32
        for rows, i, o in [(1000, 768, 768), (1000, 768, 3072)]:
            x, w, b = rnd(rows, i, dt=dt), rnd(o, i, scale=0.05, dt=dt), rnd(o, scale=0.1, dt=dt)
            put(f"linear {rows}x{i} -> {o}", half, bench(lambda: F.linear(x, w, b)))
        for name, ci, co, t, k, s, p, d, g in [
                ("conv1d 192->192 k3 T3000", 192, 192, 3000, 3, 1, 1, 1, 1),
                ("conv1d 192->192 k5 T3000", 192, 192, 3000, 5, 1, 2, 1, 1),
                ("conv1d 512->512 k3 s2 T64000", 512, 512, 64000, 3, 2, 0, 1, 1),
                ("conv1d 768->768 k128 g16 T1000", 768, 768, 1000, 128, 1, 64, 1, 16),
                ("conv1d 256->256 k3 d3 T10000", 256, 256, 10000, 3, 1, 3, 3, 1)]:
            x, w, b = rnd(1, ci, t, dt=dt), rnd(co, ci // g, k, scale=0.05, dt=dt), rnd(co, scale=0.1, dt=dt)
            put(name, half, bench(lambda: F.conv1d(x, w, b, s, p, d, g)))
        for name, ci, co, t, k, s, p in [("conv_transpose1d 512->256 k16 s10 T1000", 512, 256, 1000, 16, 10, 3),
                                         ("conv_transpose1d 128->64 k4 s2 T40000", 128, 64, 40000, 4, 2, 1)]:
            x, w, b = rnd(1, ci, t, dt=dt), rnd(ci, co, k, scale=0.05, dt=dt), rnd(co, scale=0.1, dt=dt)
            put(name, half, bench(lambda: F.conv_transpose1d(x, w, b, s, p)))
        for name, ci, co, h, wd in [("conv2d 16->16 3x3 1000x128 relu+res", 16, 16, 1000, 128),
                                    ("conv2d 128->128 3x3 250x16 relu+res", 128, 128, 250, 16)]:
            x, w, b, r = rnd(1, ci, h, wd, dt=dt), rnd(co, ci, 3, 3, scale=0.05, dt=dt), rnd(co, dt=dt), rnd(1, co, h, wd, dt=dt)
            put(name, half, bench(lambda: F.relu(F.conv2d(x, w, b, padding=1)) + r))
        x, w, b = rnd(1, 64, 250, 16, dt=dt), rnd(64, 32, 3, 3, scale=0.05, dt=dt), rnd(32, dt=dt)
        put("conv_transpose2d 64->32 3x3 s2 250x16", half,
            bench(lambda: F.relu(F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1))))
        gru = torch.nn.GRU(384, 256, batch_first=True, bidirectional=True).to(dev).to(dt)
        x = rnd(1, 1000, 384, dt=dt)
        put("bigru T1000 in384 H256", half, bench(lambda: gru(x)))
    x, g, b = rnd(768, 1000), rnd(768), rnd(768)
    put("layer_norm 768x1000", False, bench(lambda: F.layer_norm(x.t(), (768,), g, b).t().contiguous()))
    x, g, b = rnd(1, 512, 64000), rnd(512), rnd(512)
    put("group_norm 512x64000 g512", False, bench(lambda: F.group_norm(x, 512, g, b)))
    x = rnd(3072, 1000)
    put("gelu 3072x1000", False, bench(lambda: F.gelu(x)))
    x, y = rnd(768, 1000), rnd(768, 1000)
    put("add 768x1000", False, bench(lambda: x + y))
    q, k, v = rnd(1, 12, 1000, 64), rnd(1, 12, 1000, 64), rnd(1, 12, 1000, 64)
    put("attention C768 h12 T1000", False, bench(lambda: F.scaled_dot_product_attention(q, k, v)))
    x = rnd(1, 16, 1000, 128)
    put("pool2d avg 2x2 16x1000x128", False, bench(lambda: F.avg_pool2d(x, 2)))
    x = rnd(768, 1000)
    put("transpose 768x1000", False, bench(lambda: x.t().contiguous()))
    x = rnd(1, 192, 1000)
    put("upsample linear 192x1000 -> 2000", False, bench(lambda: F.interpolate(x, size=2000, mode="linear")))
json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "cases": res},
          open(sys.argv[1], "w"), indent=1)
print("PyTorch", torch.__version__, "cases:", len(res))
PYEOF
fi

# Merge into OUT.json and print the table (plain Python, no torch needed).
$PY - "$OUT" "$BENCH_JSON" "$TORCH_JSON" "$TEST_LOG" "$test_rc" "$test_s" "$GPU_NAME" <<'PYEOF'
import json, os, re, sys
out, bench_p, torch_p, test_log, test_rc, test_s, gpu = sys.argv[1:8]
load = lambda p: json.load(open(p)) if os.path.exists(p) else None
bench, torch = load(bench_p), load(torch_p)
parity = {}
if os.path.exists(test_log):
    text = open(test_log).read()
    table = text.split("worst rel error")[-1] if "worst rel error" in text else ""
    for m in re.finditer(r"^(.+?)\s+(fp32|fp16)\s+(\d+)\s+([0-9.e+-]+)$", table, re.M):
        parity[m.group(1).strip() + " " + m.group(2)] = {"cases": int(m.group(3)), "worst_rel_error": float(m.group(4))}
doc = {"gpu": gpu, "test": {"exit_code": int(test_rc), "seconds": int(test_s), "parity": parity},
       "bench": bench, "torch": torch}
json.dump(doc, open(out, "w"), indent=1)
print()
if parity:
    print("parity (worst relative error vs the CPU back end; bounds fp32 1e-5, fp16 1e-2, models 1e-4 / 5e-2):")
    for k, v in parity.items():
        print(f"  {k:<28} {v['worst_rel_error']:.1e}  ({v['cases']} cases)")
if bench:
    c = bench["ceilings"]
    print(f"\nceilings on {gpu}: device copy {c['copy_gbs']:.0f} GB/s, SGEMM {c['sgemm_tflops']:.1f} TFLOP/s, "
          f"half GEMM {c['hgemm_tflops']:.1f} TFLOP/s, host->device {c['h2d_gbs']:.1f} GB/s, device->host {c['d2h_gbs']:.1f} GB/s")
    tc = (torch or {}).get("cases", {})
    f = lambda v: f"{v:9.3f}" if v is not None and v > 0 else f"{'-':>9}"
    print(f"\n{'case':<40} {'cuda':>9} {'cuda16':>9} {'torch':>9} {'torch16':>9} {'cpu':>9} {'x cpu':>6} {'rate':>9}")
    for r in bench["cases"]:
        t = tc.get(r["name"], {})
        ms = r["cuda_ms"]
        rate = f"{r['flops'] / (ms * 1e9):.1f} TF" if r["flops"] > 0 else f"{r['bytes'] / (ms * 1e6):.0f} GB/s"
        xc = f"{r['cpu_ms'] / ms:6.1f}" if r["cpu_ms"] > 0 else f"{'-':>6}"
        print(f"{r['name']:<40} {f(ms)} {f(r['cuda_fp16_ms'])} {f(t.get('fp32_ms'))} {f(t.get('fp16_ms'))} "
              f"{f(r['cpu_ms'])} {xc} {rate:>9}")
    print("(ms per call; cuda16 / torch16: half weights and inputs, fp32 accumulation)")
print(f"\nparity test: {'passed' if int(test_rc) == 0 else 'FAILED'} ({test_s} s); JSON: {out}")
PYEOF
exit $status
