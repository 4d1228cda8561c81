"""Golden data for tests/unit/test_rmvpe.c: a small random RMVPE (rvc_models.E2E with the real structure,
5 encoder / decoder stages, but 4 channels at the first stage, 2 ConvBlockRes per stage and 2
intermediate stages) saved as a bare state_dict like RVC's rmvpe.pt, and its outputs on a clip of
16 kHz audio, computed in float64 from the float32 weights and inputs.

Usage: rmvpe_golden.py OUTDIR AUDIO_F32
  AUDIO_F32: raw little-endian float32 samples at 16 kHz (the C test decodes a real singing clip).
Writes into OUTDIR:
  rmvpe_small.pt                the model (float32, BatchNorm buffers included, as upstream)
  rmvpe_missing_key.pt          the same without unet.decoder.layers.2.conv2.1.conv.4.running_var
  rmvpe_bad_shape.pt            the same with cnn.weight of shape [3, 5, 3, 3]
  mel.f32 [128, F]              RmvpeMel in float64 (F = N // 160 + 1)
  salience.f32 [F, 360]         rmvpe_salience in float64 on the mel rounded to float32
  cents.f32, f0.f32 [F]         decode_salience of that salience; the threshold (in golden.json) is the
                                40th percentile of the frames' peaks, since a random model's peaks all
                                exceed RVC's 0.03
  golden.json                   {"tensors": {name: {"file", "shape"}}, "threshold", "frames", ...}
If torch is missing, OUTDIR/TORCH_MISSING is written and the exit code is 0.
"""
import collections
import json
import math
import os
import sys

OUT, AUDIO = sys.argv[1], sys.argv[2]
os.makedirs(OUT, exist_ok=True)
try:
    import numpy as np
    import torch
except ImportError:
    open(os.path.join(OUT, "TORCH_MISSING"), "w").write("python3-torch is not installed\n")
    sys.exit(0)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rvc_models as R  # noqa: E402

torch.manual_seed(777)
torch.set_num_threads(1)
CFG = dict(n_blocks=2, n_gru=1, kernel_size=(2, 2), en_de_layers=5, inter_layers=2, in_channels=1, en_out_channels=4)

model = R.E2E(**CFG)
g = torch.Generator().manual_seed(778)
with torch.no_grad():
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial eval statistics, so the folding matters
            m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g))
            m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):  # variance-keeping: O(1) activations
            w = m.weight
            fan_in = (w.shape[1] if isinstance(m, torch.nn.Conv2d) else w.shape[0]) * w.shape[2] * w.shape[3]
            w.copy_(torch.randn(w.shape, generator=g) * (1.0 / math.sqrt(fan_in)))
    # the input BatchNorm maps the log-mel (about -11..3) to O(1)
    bn = model.unet.encoder.bn
    bn.running_mean.fill_(-5.0)
    bn.running_var.fill_(9.0)
    bn.weight.fill_(1.1)
    bn.bias.fill_(0.05)
    # The GRU follows its input (input weights x8) but forgets within a few frames (update gate biased
    # shut by -8): a saturated random GRU remembers the whole clip, and then no windowed processing
    # can agree with one pass. With this, an edge 350 frames away changes the salience by < 1e-6
    # (the U-Net's reach); the test's windows keep 256 frames of margin.
    gru = model.fc[0].gru
    hid = gru.hidden_size
    for sfx in ("", "_reverse"):
        getattr(gru, "weight_ih_l0" + sfx).mul_(8.0)
        getattr(gru, "bias_ih_l0" + sfx)[hid:2 * hid] -= 8.0
    fc = model.fc[1]  # peaky, unsaturated salience: larger output weights, a negative bias
    fc.weight.mul_(3.0)
    fc.bias.sub_(4.0)
model.eval()

sd = model.state_dict()
torch.save(sd, os.path.join(OUT, "rmvpe_small.pt"))
bad = collections.OrderedDict((k, v) for k, v in sd.items() if k != "unet.decoder.layers.2.conv2.1.conv.4.running_var")
torch.save(bad, os.path.join(OUT, "rmvpe_missing_key.pt"))
bad = collections.OrderedDict(sd)
bad["cnn.weight"] = torch.zeros(3, 5, 3, 3)
torch.save(bad, os.path.join(OUT, "rmvpe_bad_shape.pt"))

audio = np.fromfile(AUDIO, dtype="<f4")
wav = torch.from_numpy(audio.astype(np.float64))[None]
tensors = {}


def save(name, x):
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64).astype("<f4"))
    x.tofile(os.path.join(OUT, name + ".f32"))
    tensors[name] = {"file": name + ".f32", "shape": list(x.shape)}


with torch.no_grad():
    mel = R.RmvpeMel().double()(wav)  # [1, 128, F]
    mel32 = mel.float().double()  # what the C network is fed
    sal = R.rmvpe_salience(model.double(), mel32)[0].numpy()  # [F, 360]
# The random model's peaks sit in a narrow range well above RVC's 0.03: a threshold at the 40th
# percentile of the peaks gives both voiced and unvoiced frames.
THRESHOLD = float(np.round(np.percentile(sal.max(1), 40), 4))
f0, cents = R.decode_salience(sal, THRESHOLD)
save("mel", mel[0].numpy())
save("salience", sal)
save("cents", cents)
save("f0", f0)
voiced = int((f0 > 0).sum())
arg = sal.argmax(1)
json.dump({"tensors": tensors, "threshold": THRESHOLD, "frames": int(mel.shape[2]), "voiced": voiced,
           "config": {k: list(v) if isinstance(v, tuple) else v for k, v in CFG.items()}},
          open(os.path.join(OUT, "golden.json"), "w"), indent=1)
print("wrote", OUT, {k: v["shape"] for k, v in tensors.items()})
print("salience: max %.3f mean %.3f; argmax bins %d..%d over %d distinct; voiced %d of %d frames" %
      (sal.max(), sal.mean(), arg.min(), arg.max(), len(set(arg.tolist())), voiced, len(f0)))
