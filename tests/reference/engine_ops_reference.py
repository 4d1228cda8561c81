#!/usr/bin/python3
"""Writes parity cases for tests/unit/test_engine_ops.c into OUTDIR.

usage: engine_ops_reference.py OUTDIR

For every operator of the engine (include/autovoice/engine.h) a few cases with random inputs and
weights are run through PyTorch's own modules and functions; inputs, weights and expected outputs go
to OUTDIR/<case>_<tensor>.f32 (raw little-endian float32; ids as int32 in .i32) and OUTDIR/index.json
lists the cases: {"cases": [{"name", "op", "params": {...}, "tensors": {name: {"file", "shape", "dtype"}}}]}.
Expected outputs are computed in float64 where the op accumulates (so they are closer to the truth
than float32 can be) and in float32 where torch's index arithmetic is float (resampling, pooling).
The relative-position attention is a PyTorch rewrite of VITS's attentions.MultiHeadAttention
(jaywalnut310/vits) from its published description, using the same pad/reshape index tricks.
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
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    open(os.path.join(OUT, "TORCH_MISSING"), "w").write("python3-torch is not installed\n")
    sys.exit(0)

torch.manual_seed(1234)
torch.set_num_threads(1)
CASES = []


def add_case(name, op, params, tensors):
    entry = {"name": name, "op": op, "params": params, "tensors": {}}
    for key, t in tensors.items():
        if t is None:
            continue
        t = t.detach().contiguous()
        if t.dtype in (torch.int32, torch.int64):
            fname = "%s_%s.i32" % (name, key)
            t.to(torch.int32).numpy().tofile(os.path.join(OUT, fname))
            dtype = "i32"
        else:
            fname = "%s_%s.f32" % (name, key)
            t.to(torch.float32).numpy().astype("<f4").tofile(os.path.join(OUT, fname))
            dtype = "f32"
        entry["tensors"][key] = {"file": fname, "shape": list(t.shape), "dtype": dtype}
    CASES.append(entry)


def f32(*shape, scale=1.0):
    """Random float32 values; float32 first so the float64 reference sees exactly the C inputs."""
    return (torch.randn(*shape) * scale).float()


# ---- linear ------------------------------------------------------------------------------------
for i, (rows, fin, fout, bias) in enumerate([(5, 7, 3, True), (37, 96, 80, True), (1, 16, 16, False), (64, 192, 768, True)]):
    lin = nn.Linear(fin, fout, bias=bias)
    x = f32(rows, fin)
    y = lin.double()(x.double())
    add_case("linear%d" % i, "linear", {}, {"x": x, "w": lin.weight, "b": lin.bias if bias else None, "y": y})

# ---- conv1d ------------------------------------------------------------------------------------
CONV = [  # cin, cout, k, stride, pad, dil, groups, T, bias
    (4, 6, 3, 1, 1, 1, 1, 17, True),
    (8, 8, 1, 1, 0, 1, 1, 10, True),     # kernel 1 (1x1 projection)
    (6, 6, 5, 1, 2, 1, 6, 23, True),     # depthwise
    (4, 8, 3, 1, 0, 1, 4, 15, True),     # groups = cin, channel multiplier 2
    (6, 4, 3, 1, 2, 2, 1, 19, False),    # dilation 2, no bias
    (5, 7, 4, 2, 1, 1, 1, 21, True),     # stride 2, odd length, even kernel
    (8, 6, 3, 3, 1, 2, 2, 31, True),     # groups 2, stride 3, dilation 2
    (3, 5, 7, 1, 9, 3, 1, 9, True),      # span wider than the input
    (192, 192, 5, 1, 2, 1, 1, 101, True),
    (16, 16, 3, 1, 5, 5, 16, 40, True),  # depthwise dilated (WaveNet style)
    (12, 6, 1, 2, 0, 1, 3, 13, True),    # kernel 1, stride 2, groups 3
    (8, 4, 3, 1, 2, 2, 2, 200003, True), # long enough to be split into time tiles
]
for i, (cin, cout, k, s, p, d, g, t, bias) in enumerate(CONV):
    conv = nn.Conv1d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, bias=bias)
    x = f32(cin, t)
    y = conv.double()(x.double()[None])[0]
    add_case("conv1d_%d" % i, "conv1d", {"stride": s, "padding": p, "dilation": d, "groups": g},
             {"x": x, "w": conv.weight, "b": conv.bias, "y": y})

# ---- transposed conv1d -------------------------------------------------------------------------
CONVT = [  # cin, cout, k, stride, pad, output_padding, groups, dilation, T
    (4, 3, 4, 2, 1, 0, 1, 1, 9),
    (6, 4, 16, 8, 4, 0, 1, 1, 11),   # HiFi-GAN upsampler shape (k = 2*stride)
    (5, 2, 3, 1, 1, 0, 1, 1, 7),
    (4, 6, 5, 3, 2, 2, 2, 1, 10),    # output_padding, groups
    (8, 8, 1, 1, 0, 0, 1, 1, 5),     # kernel 1
    (4, 4, 10, 5, 3, 1, 1, 1, 13),   # odd stride, output_padding
    (3, 3, 3, 2, 1, 1, 1, 2, 6),     # dilation 2
    (8, 4, 4, 2, 1, 0, 1, 1, 150001),  # long enough to be split into input tiles
]
for i, (cin, cout, k, s, p, op, g, d, t) in enumerate(CONVT):
    conv = nn.ConvTranspose1d(cin, cout, k, stride=s, padding=p, output_padding=op, groups=g, dilation=d)
    x = f32(cin, t)
    y = conv.double()(x.double()[None])[0]
    add_case("convt_%d" % i, "conv_transpose1d",
             {"stride": s, "padding": p, "output_padding": op, "groups": g, "dilation": d},
             {"x": x, "w": conv.weight, "b": conv.bias, "y": y})

# ---- weight norm (folded at load time, then used) ----------------------------------------------
for i, transposed in enumerate([False, True]):
    m = nn.ConvTranspose1d(6, 4, 4, stride=2, padding=1) if transposed else nn.Conv1d(6, 8, 3, padding=1)
    m = nn.utils.weight_norm(m)
    with torch.no_grad():
        m.weight_g.copy_(torch.rand_like(m.weight_g) + 0.5)
    x = f32(6, 12)
    y = m(x[None])[0]
    w = m.weight  # recomputed from g and v by the forward pre-hook
    add_case("wnorm_%d" % i, "weight_norm", {"transposed": int(transposed), "stride": 2 if transposed else 1, "padding": 1},
             {"g": m.weight_g, "v": m.weight_v, "w": w, "b": m.bias, "x": x, "y": y})

# ---- layer norm over channels (VITS modules.LayerNorm) -----------------------------------------
for i, (c, t) in enumerate([(192, 37), (5, 1), (7, 300)]):
    x = f32(c, t, scale=3.0) + 1.5
    gamma, beta = f32(c), f32(c)
    y = F.layer_norm(x.double().t(), (c,), gamma.double(), beta.double(), 1e-5).t()
    add_case("layernorm_%d" % i, "layer_norm", {"eps": 1e-5}, {"x": x, "gamma": gamma, "beta": beta, "y": y})

# ---- group norm --------------------------------------------------------------------------------
for i, (g, c, t, affine) in enumerate([(4, 16, 25, True), (1, 6, 9, True), (6, 6, 11, True), (2, 8, 7, False)]):
    gn = nn.GroupNorm(g, c, eps=1e-5, affine=affine)
    if affine:
        with torch.no_grad():
            gn.weight.copy_(f32(c))
            gn.bias.copy_(f32(c))
    x = f32(c, t, scale=2.0) - 0.7
    y = gn.double()(x.double()[None])[0]
    add_case("groupnorm_%d" % i, "group_norm", {"groups": g, "eps": 1e-5},
             {"x": x, "gamma": gn.weight if affine else None, "beta": gn.bias if affine else None, "y": y})

# ---- activations -------------------------------------------------------------------------------
xa = torch.cat([f32(997, scale=4.0), torch.tensor([0.0, 30.0, -30.0, 20.5, -20.5, 1e-3, -1e-3])]).float()
ACTS = {
    "relu": (F.relu, 0.0),
    "leaky_relu": (lambda v: F.leaky_relu(v, 0.1), 0.1),
    "gelu": (F.gelu, 0.0),
    "tanh": (torch.tanh, 0.0),
    "sigmoid": (torch.sigmoid, 0.0),
    "softplus": (F.softplus, 0.0),
}
for name, (fn, alpha) in ACTS.items():
    add_case("act_" + name, "act", {"kind": name, "alpha": alpha}, {"x": xa.view(4, 251), "y": fn(xa.double()).view(4, 251)})

# ---- add / mul ---------------------------------------------------------------------------------
for i, yshape in enumerate([(5, 9), (5, 1), (5,)]):
    x, yv = f32(5, 9), f32(*yshape)
    ybc = yv.double().view(5, -1) if len(yshape) == 2 else yv.double()[:, None]
    add_case("add_%d" % i, "add", {}, {"x": x, "y": yv, "out": x.double() + ybc})
    add_case("mul_%d" % i, "mul", {}, {"x": x, "y": yv, "out": x.double() * ybc})


# ---- VITS relative-position multi-head attention -----------------------------------------------
class RelMHA(nn.Module):
    """VITS attentions.MultiHeadAttention (self-attention, no mask/dropout, heads share embeddings)."""

    def __init__(self, channels, heads, window):
        super().__init__()
        self.heads, self.window, self.kc = heads, window, channels // heads
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, channels, 1)
        if window:
            std = self.kc ** -0.5
            self.emb_rel_k = nn.Parameter(torch.randn(1, 2 * window + 1, self.kc) * std)
            self.emb_rel_v = nn.Parameter(torch.randn(1, 2 * window + 1, self.kc) * std)

    def rel_embeddings(self, emb, length):
        # Pad or cut the 2w+1 table to 2*length-1 relative offsets -(length-1)..(length-1).
        pad = max(length - (self.window + 1), 0)
        start = max((self.window + 1) - length, 0)
        padded = F.pad(emb, (0, 0, pad, pad)) if pad > 0 else emb
        return padded[:, start:start + 2 * length - 1]

    @staticmethod
    def rel_to_abs(x):
        # [b, h, l, 2l-1] relative logits -> [b, h, l, l] absolute, by padding and reshaping
        b, h, l, _ = x.size()
        x = F.pad(x, (0, 1))
        x = F.pad(x.view(b, h, l * 2 * l), (0, l - 1))
        return x.view(b, h, l + 1, 2 * l - 1)[:, :, :l, l - 1:]

    @staticmethod
    def abs_to_rel(x):
        # [b, h, l, l] absolute weights -> [b, h, l, 2l-1] relative
        b, h, l, _ = x.size()
        x = F.pad(x, (0, l - 1))
        x = F.pad(x.view(b, h, l * (2 * l - 1)), (l, 0))
        return x.view(b, h, l, 2 * l)[:, :, :, 1:]

    def forward(self, x):
        q, k, v = self.conv_q(x), self.conv_k(x), self.conv_v(x)
        b, c, t = k.size()
        q = q.view(b, self.heads, self.kc, t).transpose(2, 3) / math.sqrt(self.kc)
        k = k.view(b, self.heads, self.kc, t).transpose(2, 3)
        v = v.view(b, self.heads, self.kc, t).transpose(2, 3)
        scores = q @ k.transpose(-2, -1)
        if self.window:
            ek = self.rel_embeddings(self.emb_rel_k, t)
            scores = scores + self.rel_to_abs(q @ ek.unsqueeze(0).transpose(-2, -1))
        p = F.softmax(scores, dim=-1)
        out = p @ v
        if self.window:
            ev = self.rel_embeddings(self.emb_rel_v, t)
            out = out + self.abs_to_rel(p) @ ev.unsqueeze(0)
        out = out.transpose(2, 3).contiguous().view(b, c, t)
        return self.conv_o(out)


for i, (c, heads, window, t) in enumerate([(192, 2, 4, 23), (192, 2, 10, 57), (192, 2, 10, 7), (16, 2, 0, 11), (192, 2, 10, 11),
                                         (16, 2, 4, 2100), (128, 2, 0, 300), (192, 2, 10, 200)]):  # long: scores in blocks of queries; 128+ frames: the AVX-512 products
    m = RelMHA(c, heads, window)
    x = f32(c, t)
    y = m.double()(x.double()[None])[0]
    ts = {"x": x, "y": y}
    for nm in ("q", "k", "v", "o"):
        conv = getattr(m, "conv_" + nm)
        ts["w" + nm], ts["b" + nm] = conv.weight, conv.bias
    if window:
        ts["emb_k"], ts["emb_v"] = m.emb_rel_k, m.emb_rel_v
    add_case("attn_%d" % i, "rel_attention", {"heads": heads, "window": window}, ts)

# ---- embedding ---------------------------------------------------------------------------------
emb = nn.Embedding(20, 16)
ids = torch.tensor([0, 19, 3, 3, 7, 12, 1, 0, 18, 5, 5, 9, 2], dtype=torch.int32)
add_case("embedding_0", "embedding", {}, {"table": emb.weight, "ids": ids, "y": emb(ids.long())})

# ---- up/down-sampling (float32: torch's source index arithmetic is float) ------------------------
for i, (mode, c, tin, tout) in enumerate([("nearest", 4, 10, 20), ("nearest", 3, 7, 16), ("nearest", 2, 9, 5),
                                          ("linear", 4, 10, 20), ("linear", 3, 7, 16), ("linear", 2, 9, 5),
                                          ("nearest", 2, 100, 300), ("linear", 2, 1, 4)]):
    x = f32(c, tin)
    kw = {} if mode == "nearest" else {"align_corners": False}
    y = F.interpolate(x[None], size=tout, mode=mode, **kw)[0]
    add_case("upsample_%d" % i, "upsample", {"mode": mode, "t_out": tout}, {"x": x, "y": y})

# ---- pooling -----------------------------------------------------------------------------------
for i, (kind, k, s, p, t) in enumerate([("max", 3, 1, 1, 17), ("max", 2, 2, 0, 15), ("avg", 3, 2, 1, 16),
                                        ("avg", 4, 4, 0, 19), ("max", 5, 3, 2, 23)]):
    x = f32(3, t)
    pool = nn.MaxPool1d(k, s, p) if kind == "max" else nn.AvgPool1d(k, s, p)
    add_case("pool_%d" % i, "pool1d", {"kind": kind, "kernel": k, "stride": s, "padding": p},
             {"x": x, "y": pool(x[None])[0]})

# ---- bidirectional GRU (RMVPE's BiGRU) -----------------------------------------------------------
for i, (t, fin, h) in enumerate([(19, 12, 8), (1, 5, 3), (120, 64, 32)]):
    gru = nn.GRU(fin, h, num_layers=1, batch_first=True, bidirectional=True)
    x = f32(t, fin)
    y, _ = gru.double()(x.double()[None])
    ts = {"x": x, "y": y[0]}
    for d, suffix in enumerate(["", "_reverse"]):
        for nm in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            ts["%s%d" % (nm, d)] = getattr(gru, "%s_l0%s" % (nm, suffix))
    add_case("bigru_%d" % i, "bigru", {}, ts)

# ---- loading through the checkpoint reader: weight-norm pairs folded, f16 converted ----------------
wn = nn.utils.weight_norm(nn.Conv1d(5, 7, 3))
with torch.no_grad():
    wn.weight_g.copy_(torch.rand_like(wn.weight_g) + 0.5)
    wn(torch.zeros(1, 5, 3))  # recompute .weight from g and v
lin = nn.Linear(6, 4)
sd = {"model.dec.conv.weight_g": wn.weight_g.detach(), "model.dec.conv.weight_v": wn.weight_v.detach(),
      "model.dec.conv.bias": wn.bias.detach(), "model.enc.lin.weight": lin.weight.detach().half(),
      "model.enc.lin.bias": lin.bias.detach()}
torch.save({"weight": sd, "config": [5, 7]}, os.path.join(OUT, "engine_weights.pth"))
add_case("ckpt_0", "ckpt_load", {"file": "engine_weights.pth", "prefix": "weight.model.dec.conv"}, {"y": wn.weight})
add_case("ckpt_1", "ckpt_load", {"file": "engine_weights.pth", "prefix": "weight.model.enc.lin"},
         {"y": lin.weight.detach().half().float()})

with open(os.path.join(OUT, "index.json"), "w") as f:
    json.dump({"torch": torch.__version__, "cases": CASES}, f, indent=1)
print("wrote %d cases to %s" % (len(CASES), OUT))
