"""PyTorch CPU timing of the reference models (tests/reference/rvc_models.py) for bench_neural.c, on the
same input and thread count as the C engine in the same run.

usage: torch_neural_timing.py MODELS_DIR WAV16K_F32 REPEATS THREADS
  MODELS_DIR holds hubert_base.pt, rmvpe.pt and rvc_v2_40k.pth (make_random_models.py OUTDIR writes them);
  WAV16K_F32 is raw float32 16 kHz mono audio. Prints one JSON object: median seconds per component
  (hubert: layer-12 features; rmvpe: log-mel + network + decoding; rvc: the v2 synthesizer's infer on
  the features repeated x2 and a sung F0; each run on the whole input, as RVC does), plus the torch
  version and thread count.
"""
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import rvc_models as R  # noqa: E402
import make_random_models as M  # noqa: E402

models, wav_path, repeats, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
x = torch.from_numpy(np.fromfile(wav_path, dtype=np.float32))
n = x.shape[0]


def timed(fn):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        with torch.no_grad():
            out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


hub = M.load_hubert(os.path.join(models, "hubert_base.pt"))
t_hub, feats = timed(lambda: hub.extract(x[None], 12))
del hub

rm = M.load_rmvpe(os.path.join(models, "rmvpe.pt"))
mel_fn = R.RmvpeMel()


def rmvpe_run():
    mel = mel_fn(x[None])
    sal = R.rmvpe_salience(rm, mel)
    return R.decode_salience(sal[0].numpy(), 0.03)


t_rmvpe, _ = timed(rmvpe_run)
del rm

net, cpt = M.load_rvc(os.path.join(models, "rvc_v2_40k.pth"))
phone = F.interpolate(feats.transpose(1, 2), scale_factor=2).transpose(1, 2)
p_len = min(n // 160, phone.shape[1])
phone = phone[:, :p_len]
tt = np.arange(p_len) / 100.0
f0 = (220.0 * 2 ** (3 * np.sin(2 * np.pi * 0.3 * tt) / 12)).astype(np.float32)
pitch = torch.from_numpy(R.rvc_pitch_coarse(f0))[None]
nsff0 = torch.from_numpy(f0)[None]
g = torch.Generator().manual_seed(1)
z = torch.randn(1, 192, p_len, generator=g)
src = torch.randn(1, p_len * 400, 1, generator=g)
t_rvc, _ = timed(lambda: net.infer(phone, torch.tensor([p_len]), pitch, nsff0, torch.tensor([0]), z, src))

print(json.dumps({"hubert_s": t_hub, "rmvpe_s": t_rmvpe, "rvc_s": t_rvc, "frames": p_len,
                  "torch": torch.__version__, "threads": torch.get_num_threads()}))
