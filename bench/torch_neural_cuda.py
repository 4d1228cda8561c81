"""PyTorch on the GPU for bench_neural_cuda.c: the reference models of tests/reference/rvc_models.py on the
same vocal and models, eager FP32 (TF32 off), eager FP16 (.half() models and inputs) and, with
--compile, torch.compile of the FP16 models.

usage: torch_neural_cuda.py MODELS_DIR WAV SECONDS REPEATS OUT.json [--compile] [--only-compile] [--fp16-only]
                            [--comps hubert,rmvpe,rvc,hubert+rvc]
  MODELS_DIR: hubert_base.pt, rmvpe.pt, rvc_v2_40k.pth (make_random_models.py); WAV: 16-bit PCM, 16 kHz.
Times (ms, medians of REPEATS after warm-ups, the device synchronised around each run):
  hubert: layer-12 features of the whole input, copied to the host;
  rmvpe: log-mel on the GPU, network, decoding on the host (numpy), as RVC runs it;
  rvc: SynthesizerTrnMs768NSFsid.infer on the features x2 with a sung F0 and given noise draws, audio to host;
  hubert+rvc: both in a row with the x2 repeat between them (the models of RVC's conversion).
"""
import json
import os
import statistics
import sys
import time
import wave

import numpy as np
import torch
import torch.nn.functional as F

_load = torch.load


def _load_full(*a, **k):  # torch >= 2.6 loads weights only by default; these files hold plain containers
    k.setdefault("weights_only", False)
    return _load(*a, **k)


torch.load = _load_full
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import make_random_models as M  # noqa: E402
import rvc_models as R  # noqa: E402

models, wav_path, seconds, repeats, out_path = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
do_compile = "--compile" in sys.argv or "--only-compile" in sys.argv
only_compile = "--only-compile" in sys.argv
fp16_only = "--fp16-only" in sys.argv  # eager FP16 only (a short run beside ours)
comps = sys.argv[sys.argv.index("--comps") + 1].split(",") if "--comps" in sys.argv else None
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True
dev = "cuda"

with wave.open(wav_path) as w:
    assert w.getframerate() == 16000 and w.getsampwidth() == 2
    pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).reshape(-1, w.getnchannels()).mean(1)
x = (pcm / 32768.0).astype(np.float32)
n = int(seconds * 16000)
x = np.tile(x, n // len(x) + 1)[:n]


def timed(fn, warm=1):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    v = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        v.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(v)


res = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "seconds": seconds, "repeats": repeats,
       "eager": {}, "compile": {}, "notes": []}


def put(kind, comp, prec, ms):
    res[kind].setdefault(comp, {})[prec] = round(ms, 3)
    print(f"{kind:8} {comp:11} {prec}: {ms:9.2f} ms", flush=True)


hub32 = M.load_hubert(os.path.join(models, "hubert_base.pt")).to(dev).eval()
rm32 = M.load_rmvpe(os.path.join(models, "rmvpe.pt")).to(dev).eval()
net32, _ = M.load_rvc(os.path.join(models, "rvc_v2_40k.pth"))
net32 = net32.to(dev).eval()
mel_fn = R.RmvpeMel().to(dev)
xs = torch.from_numpy(x).to(dev)[None]

with torch.no_grad():
    feats = hub32.extract(xs, 12)
p_len = min(n // 160, 2 * feats.shape[1])
tt = np.arange(p_len) / 100.0
f0 = (220.0 * 2 ** (3 * np.sin(2 * np.pi * 0.3 * tt) / 12)).astype(np.float32)
pitch = torch.from_numpy(R.rvc_pitch_coarse(f0))[None].to(dev)
nsff0 = torch.from_numpy(f0)[None].to(dev)
g = torch.Generator().manual_seed(1)
z = torch.randn(1, 192, p_len, generator=g).to(dev)
src = torch.randn(1, p_len * 400, 1, generator=g).to(dev)
lengths = torch.tensor([p_len], device=dev)
sid = torch.tensor([0], device=dev)


# The reference builds a few index tensors with torch.arange and no device (rel_to_abs, relative_table)
# and its sequence mask in float32: on the GPU the first needs CUDA as the default device, and the
# half model needs the mask in half (as upstream RVC's is_half path keeps everything in half).
_mask = R.length_mask
MASK_DTYPE = [torch.float32]
R.length_mask = lambda lengths, max_len: _mask(lengths, max_len).to(MASK_DTYPE[0])
torch.set_default_device(dev)


def make(half):
    dt = torch.float16 if half else torch.float32
    hub = hub32.half() if half else hub32
    rm = rm32.half() if half else rm32
    net = net32.half() if half else net32
    xin = xs.to(dt)

    def f_hub():
        with torch.no_grad():
            return hub.extract(xin, 12).float().cpu()

    def f_rmvpe():
        with torch.no_grad():
            mel = mel_fn(xs).to(dt)
            sal = R.rmvpe_salience(rm, mel)
            return R.decode_salience(sal[0].float().cpu().numpy(), 0.03)

    def f_rvc(ph=None):
        MASK_DTYPE[0] = dt
        with torch.no_grad():
            if ph is None:
                ph = F.interpolate(feats.to(dt).transpose(1, 2), scale_factor=2).transpose(1, 2)[:, :p_len]
            o, _ = net.infer(ph, lengths, pitch, nsff0.to(dt), sid, z.to(dt), src.to(dt))
            return o.float().cpu()

    def f_both():
        with torch.no_grad():
            fe = hub.extract(xin, 12)
            ph = F.interpolate(fe.transpose(1, 2), scale_factor=2).transpose(1, 2)[:, :p_len]
            return f_rvc(ph)

    return {"hubert": f_hub, "rmvpe": f_rmvpe, "rvc": f_rvc, "hubert+rvc": f_both}


if not only_compile:
    for half in ((True,) if fp16_only else (False, True)):
        prec = "fp16" if half else "fp32"
        for comp, fn in make(half).items():
            if comps and comp not in comps:
                continue
            try:
                put("eager", comp, prec, timed(fn))
            except Exception as e:  # noqa: BLE001 - report and go on
                res["notes"].append(f"eager {comp} {prec}: {type(e).__name__}: {e}"[:300])
                print(res["notes"][-1], flush=True)
        json.dump(res, open(out_path, "w"), indent=1)
    hub32.float(), rm32.float(), net32.float()

if do_compile:
    # torch.compile of the FP16 models (default mode), each its own function; the first call compiles.
    for prec in ("fp16",):
        fns = make(prec == "fp16")
        for comp in ("hubert", "rvc", "hubert+rvc"):
            if comps and comp not in comps:
                continue
            try:
                cf = torch.compile(fns[comp])
                t0 = time.perf_counter()
                cf()
                torch.cuda.synchronize()
                res["compile"].setdefault("compile_seconds", {})[comp] = round(time.perf_counter() - t0, 1)
                put("compile", comp, prec, timed(cf, warm=2))
            except Exception as e:  # noqa: BLE001
                res["notes"].append(f"compile {comp} {prec}: {type(e).__name__}: {e}"[:300])
                print(res["notes"][-1], flush=True)
            json.dump(res, open(out_path, "w"), indent=1)
json.dump(res, open(out_path, "w"), indent=1)
