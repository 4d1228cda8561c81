"""Golden data for tests/unit/test_hubert.c: a small random HuBERT (rvc_models.HubertBase with 2 layers,
64-d, 4 heads, FFN 128, a 32-channel conv feature encoder with HuBERT base's kernels and strides)
saved in fairseq's layout {"model": state_dict, "cfg": {"model": {...}}, "args": None}, and its
outputs on 1 s of a deterministic 16 kHz signal, computed in float64 from the float32 weights.

Usage: hubert_golden.py OUTDIR. Writes OUTDIR/hubert_small.pt, *.f32 (raw little-endian float32)
and golden.json {"tensors": {name: {"file", "shape"}}, "heads", "layers"}.
If torch is missing, OUTDIR/TORCH_MISSING is written and the exit code is 0.
"""
import json
import math
import os
import sys

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
try:
    import torch
    from torch import nn
except ImportError:
    open(os.path.join(OUT, "TORCH_MISSING"), "w").write("python3-torch is not installed\n")
    sys.exit(0)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rvc_models  # noqa: E402

torch.manual_seed(4321)
torch.set_num_threads(1)
FEAT, DIM, LAYERS, FFN, HEADS, FINAL = 32, 64, 2, 128, 4, 16

# The reference hard-codes 512 conv channels; shrink them (same kernels and strides).
rvc_models.HUBERT_CONV = [(FEAT, k, s) for (_, k, s) in rvc_models.HUBERT_CONV]
model = rvc_models.HubertBase(dim=DIM, layers=LAYERS, ffn=FFN, heads=HEADS, final_dim=FINAL, num_classes=8)
model.layer_norm = nn.LayerNorm(FEAT)
model.post_extract_proj = nn.Linear(FEAT, DIM)

# Non-trivial norms so that every parameter matters; conv weights scaled to keep activations O(1).
with torch.no_grad():
    for name, p in model.named_parameters():
        if name.endswith("weight_g"):
            p.uniform_(0.5, 1.5)
        elif "norm" in name and name.endswith("weight"):
            p.uniform_(0.7, 1.3)
        elif "norm" in name and name.endswith("bias"):
            p.uniform_(-0.2, 0.2)
        elif name.startswith("feature_extractor") and name.endswith(".0.weight"):
            fan_in = p.shape[1] * p.shape[2]
            p.normal_(0.0, 1.5 / math.sqrt(fan_in))
model.eval()

sd = model.state_dict()
cfg = dict(rvc_models.hubert_cfg())
cfg.update({"encoder_layers": LAYERS, "encoder_embed_dim": DIM, "encoder_ffn_embed_dim": FFN,
            "encoder_attention_heads": HEADS, "final_dim": FINAL,
            "conv_feature_layers": "[(%d,10,5)] + [(%d,3,2)] * 4 + [(%d,2,2)] * 2" % (FEAT, FEAT, FEAT)})
torch.save({"model": sd, "cfg": {"model": cfg, "task": {"sample_rate": 16000}}, "args": None},
           os.path.join(OUT, "hubert_small.pt"))

# 1 s: a gliding tone with harmonics, an amplitude envelope and a little LCG noise.
n = 16000
t = torch.arange(n, dtype=torch.float64) / 16000.0
f0 = 180.0 + 60.0 * t
phase = 2.0 * math.pi * torch.cumsum(f0, 0) / 16000.0
wav = 0.4 * torch.sin(phase) + 0.2 * torch.sin(2 * phase + 0.3) + 0.1 * torch.sin(3 * phase + 1.1)
wav = wav * (0.6 + 0.4 * torch.sin(2 * math.pi * 3.0 * t))
state, noise = 12345, []
for _ in range(n):
    state = (1103515245 * state + 12345) % (1 << 31)
    noise.append(state / float(1 << 31) - 0.5)
wav = (wav + 0.05 * torch.tensor(noise, dtype=torch.float64)).float()

m64 = model.double()
taps = {}
with torch.no_grad():
    last = m64.extract(wav.double()[None], LAYERS, taps)
    proj = m64.final_proj(last)

tensors = {}


def save(name, x):
    x = x.detach().to(torch.float32).contiguous()
    if x.dim() > 1 and x.shape[0] == 1:
        x = x[0]
    x.numpy().tofile(os.path.join(OUT, name + ".f32"))
    tensors[name] = {"file": name + ".f32", "shape": list(x.shape)}


save("audio_16k", wav)
save("conv_features", taps["conv_features"])  # [T, FEAT]
for i in range(1, LAYERS + 1):
    save("layer%d" % i, taps["layer%d" % i])  # [T, DIM]
save("final_proj", proj)  # [T, FINAL] of the last layer
json.dump({"tensors": tensors, "heads": HEADS, "layers": LAYERS, "dim": DIM},
          open(os.path.join(OUT, "golden.json"), "w"), indent=1)
print("wrote", OUT, {k: v["shape"] for k, v in tensors.items()})
