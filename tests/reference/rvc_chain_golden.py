"""Golden data for tests/unit/test_rvc_chain.c: the RVC conversion chain of one 16 kHz segment, as
RVC's infer/modules/vc/pipeline.py runs it (facts only, no code copied), on small random models:

  HuBERT features of the last layer up to 12 (v2, no final_proj) -> index retrieval (k = 8 nearest rows
  by squared L2, weights (1/d2)^2 normalised, blended index_rate : 1 - index_rate) -> features repeated x2
  (nearest) -> p_len = min(N // 160, 2 T) -> protect (unvoiced frames lean back to the unretrieved
  features: feats * w + feats0 * (1 - w), w = 1 voiced, protect unvoiced) -> coarse pitch -> the v2
  synthesizer's infer with the noise draws given.

Models: a 2-layer, 768-d HuBERT (conv stack of 32 channels) in fairseq's layout, and an RVC v2 model
(inter 16, hidden 32, filter 64, 2 layers, 2 heads, upsampling 32 channels at 10,10,2,2 -> 40 kHz,
3 speakers, gin 16) in RVC's .pth layout; the index is 300 rows near real features, as a .npy file.
Input: 1.5 s of a real singing clip (sox decodes it to 16 kHz), and a sung F0 contour with an
unvoiced gap (in Hz, already transposed).

Usage: rvc_chain_golden.py OUTDIR [DATA_DIR]. Writes hubert_small.pt, rvc_small.pth, index.npy (and
two tiny HuBERTs for the so-vits end-to-end test: hubert_d48.pt, hubert_f32.pt),
*.f32 and golden.json. Without torch it writes OUTDIR/TORCH_MISSING and exits 0.
"""
import collections
import glob
import json
import math
import os
import subprocess
import sys
import wave

OUT = sys.argv[1]
DATA = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "../../../shared/data")
os.makedirs(OUT, exist_ok=True)
try:
    import numpy as np
    import torch
    from torch import nn
    import torch.nn.functional as F
except ImportError:
    open(os.path.join(OUT, "TORCH_MISSING"), "w").write("python3-torch is not installed\n")
    sys.exit(0)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rvc_models as R  # noqa: E402

torch.manual_seed(20261123)
torch.set_num_threads(1)
g = torch.Generator().manual_seed(7)

# ---- input: 1.5 s of real singing at 16 kHz ----
clips = sorted(glob.glob(os.path.join(DATA, "singing", "*.flac")))
if not clips:
    sys.exit("no singing clips under %s/singing" % DATA)
wav_path = os.path.join(OUT, "clip16k.wav")
subprocess.run(["sox", clips[0], "-r", "16000", "-c", "1", "-b", "16", wav_path, "trim", "2.0", "1.5"], check=True)
with wave.open(wav_path) as w:
    x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
x = torch.from_numpy(x.copy())
n = x.shape[0]

# ---- models ----
FEAT, DIM, LAYERS, FFN, HEADS = 32, 768, 2, 256, 12
R.HUBERT_CONV = [(FEAT, k, s) for (_, k, s) in R.HUBERT_CONV]
hub = R.HubertBase(dim=DIM, layers=LAYERS, ffn=FFN, heads=HEADS, final_dim=16, num_classes=8)
hub.layer_norm = nn.LayerNorm(FEAT)
hub.post_extract_proj = nn.Linear(FEAT, DIM)
with torch.no_grad():
    for name, p in hub.named_parameters():
        if name.endswith("weight_g"):
            p.uniform_(0.5, 1.5, generator=g)
        elif "norm" in name and name.endswith("weight"):
            p.uniform_(0.7, 1.3, generator=g)
        elif "norm" in name and name.endswith("bias"):
            p.uniform_(-0.2, 0.2, generator=g)
        elif name.startswith("feature_extractor") and name.endswith(".0.weight"):
            p.normal_(0.0, 1.5 / math.sqrt(p.shape[1] * p.shape[2]), generator=g)
hub.eval()
hcfg = dict(R.hubert_cfg())
hcfg.update({"encoder_layers": LAYERS, "encoder_embed_dim": DIM, "encoder_ffn_embed_dim": FFN,
             "encoder_attention_heads": HEADS, "final_dim": 16,
             "conv_feature_layers": "[(%d,10,5)] + [(%d,3,2)] * 4 + [(%d,2,2)] * 2" % (FEAT, FEAT, FEAT)})
torch.save({"model": hub.state_dict(), "cfg": {"model": hcfg, "task": {"sample_rate": 16000}}, "args": None},
           os.path.join(OUT, "hubert_small.pt"))



def save_tiny_hubert(path, dim, heads, final_dim):
    """A 2-layer HuBERT of another width (for the so-vits models of make_sovits_models.py --small:
    4.1 small takes 48-d layer units, 4.0 small 32-d final_proj units)."""
    h = R.HubertBase(dim=dim, layers=2, ffn=2 * dim, heads=heads, final_dim=final_dim, num_classes=8)
    h.layer_norm = nn.LayerNorm(FEAT)
    h.post_extract_proj = nn.Linear(FEAT, dim)
    c = dict(hcfg)
    c.update({"encoder_embed_dim": dim, "encoder_ffn_embed_dim": 2 * dim, "encoder_attention_heads": heads,
              "final_dim": final_dim})
    torch.save({"model": h.eval().state_dict(), "cfg": {"model": c, "task": {"sample_rate": 16000}}, "args": None},
               path)


save_tiny_hubert(os.path.join(OUT, "hubert_d48.pt"), 48, 4, 8)
save_tiny_hubert(os.path.join(OUT, "hubert_f32.pt"), 64, 4, 32)

CFG = [1025, 32, 16, 32, 64, 2, 2, 3, 0, "1", [3, 7, 11], [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
       [10, 10, 2, 2], 32, [16, 16, 4, 4], 3, 16, 40000]
net = R.SynthesizerTrnMs768NSFsid(*CFG).eval()
with torch.no_grad():
    for m in net.modules():
        if isinstance(m, R.SourceModuleHnNSF):
            m.l_linear.weight.fill_(1.2)
            m.l_linear.bias.fill_(0.02)
        if isinstance(m, R.ChannelLayerNorm):
            m.gamma.copy_(1 + 0.1 * torch.randn(m.gamma.shape, generator=g))
            m.beta.copy_(0.1 * torch.randn(m.beta.shape, generator=g))
    for p in net.parameters():  # fp16 on disk, as RVC saves: keep representable values
        p.copy_(p.half().float())
weight = collections.OrderedDict((k, v.half()) for k, v in net.state_dict().items())
torch.save({"weight": weight, "config": CFG, "info": "0epoch", "sr": "40k", "f0": 1, "version": "v2"},
           os.path.join(OUT, "rvc_small.pth"))

# ---- the chain, in float32 as RVC runs it on CPU ----
SPEAKER, INDEX_RATE, PROTECT, K = 2, 0.75, 0.33, 8
with torch.no_grad():
    feats = hub.extract(x[None], min(12, LAYERS))  # [1, T, 768]
T = feats.shape[1]

# The index: real features of the clip, perturbed, in shuffled order (300 rows).
base = feats[0].numpy().astype(np.float64)
rows = base[torch.randint(0, T, (300,), generator=g).numpy()]
big = (rows + 0.3 * rows.std() * torch.randn(rows.shape, generator=g, dtype=torch.float64).numpy()).astype(np.float32)
np.save(os.path.join(OUT, "index.npy"), big)

q = feats[0].numpy().astype(np.float64)
d2 = (q * q).sum(1)[:, None] + (big.astype(np.float64) ** 2).sum(1)[None, :] - 2.0 * q @ big.astype(np.float64).T
ix = np.argsort(d2, axis=1)[:, :K]
score = np.take_along_axis(d2, ix, axis=1)
wts = np.square(1.0 / score)
wts /= wts.sum(axis=1, keepdims=True)
retrieved = np.sum(big[ix].astype(np.float64) * wts[:, :, None], axis=1)
feats0 = feats.clone()
feats = torch.from_numpy((INDEX_RATE * retrieved + (1 - INDEX_RATE) * q).astype(np.float32))[None]

feats = F.interpolate(feats.permute(0, 2, 1), scale_factor=2).permute(0, 2, 1)
feats0 = F.interpolate(feats0.permute(0, 2, 1), scale_factor=2).permute(0, 2, 1)
p_len = min(n // 160, feats.shape[1])
frames_f0 = n // 160 + 1
tt = np.arange(frames_f0) / 100.0
f0 = 220.0 * 2 ** ((3 * np.sin(2 * np.pi * 0.7 * tt) + 0.4 * np.sin(2 * np.pi * 5.5 * tt)) / 12)
f0[(tt > 0.55) & (tt < 0.75)] = 0.0  # an unvoiced gap
f0 = f0.astype(np.float32)
pitchf = torch.from_numpy(f0[:p_len])[None]
pitchff = torch.where(pitchf > 0, torch.ones_like(pitchf), torch.full_like(pitchf, PROTECT))[..., None]
phone = feats[:, :p_len] * pitchff + feats0[:, :p_len] * (1 - pitchff)
pitch = torch.from_numpy(R.rvc_pitch_coarse(f0[:p_len]))[None]
upp = 400
z_noise = torch.randn(1, CFG[2], p_len, generator=g)
src_noise = torch.randn(1, p_len * upp, 1, generator=g)
with torch.no_grad():
    audio, _ = net.infer(phone, torch.tensor([p_len]), pitch, pitchf, torch.tensor([SPEAKER]), z_noise, src_noise)

tensors = {}


def save(name, t):
    a = np.ascontiguousarray(np.asarray(t, dtype=np.float32))
    a.tofile(os.path.join(OUT, name + ".f32"))
    tensors[name] = {"file": name + ".f32", "shape": list(a.shape)}


save("audio_16k", x.numpy())
save("f0_hz", f0)
save("phone", phone[0].numpy())
save("z_noise", z_noise[0].numpy())
save("src_noise", src_noise[0, :, 0].numpy())
save("audio", audio[0, 0].numpy())
json.dump({"tensors": tensors, "p_len": p_len, "speaker": SPEAKER, "index_rate": INDEX_RATE, "protect": PROTECT,
           "hop": upp, "sample_rate": 40000, "clip": os.path.basename(clips[0])},
          open(os.path.join(OUT, "golden.json"), "w"), indent=1)
print("wrote", OUT, "p_len", p_len, {k: v["shape"] for k, v in tensors.items()})
