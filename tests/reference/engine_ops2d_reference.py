#!/usr/bin/python3
"""Writes parity cases for tests/unit/test_engine_ops2d.c (the engine's 2-D operators) into OUTDIR.

usage: engine_ops2d_reference.py OUTDIR

Random inputs and weights go through torch's own nn.Conv2d, nn.ConvTranspose2d, nn.AvgPool2d /
nn.MaxPool2d and transpose; the fused forms of the engine are composed here from the plain modules:
conv2d with relu and residual is relu(conv(x)) + r, conv_transpose2d with relu is relu(convT(x)).
Files: OUTDIR/<case>_<tensor>.f32 (raw little-endian float32) and OUTDIR/index.json
{"cases": [{"name", "op", "params": {...}, "tensors": {name: {"file", "shape", "dtype"}}}]}, the
same layout as engine_ops_reference.py. Expected outputs of convolutions are computed in float64 from
the float32 inputs; pooling in float32 (what torch does). Shapes cover RMVPE's (3x3 and 1x1 convs on
[16..512, frames, 128 >> level] tensors, 2x2 average pooling, the stride-2 transposed conv) and the
general cases (stride, dilation, groups, odd widths, asymmetric kernels, inputs split into tiles).
If torch is missing, OUTDIR/TORCH_MISSING is written and the exit code is 0.
"""
import json
import os
import sys

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
try:
    import torch
    import torch.nn as nn
except ImportError:
    open(os.path.join(OUT, "TORCH_MISSING"), "w").write("python3-torch is not installed\n")
    sys.exit(0)

torch.manual_seed(2024)
torch.set_num_threads(1)
CASES = []


def add_case(name, op, params, tensors):
    entry = {"name": name, "op": op, "params": params, "tensors": {}}
    for key, t in tensors.items():
        if t is None:
            continue
        t = t.detach().contiguous()
        fname = "%s_%s.f32" % (name, key)
        t.to(torch.float32).numpy().astype("<f4").tofile(os.path.join(OUT, fname))
        entry["tensors"][key] = {"file": fname, "shape": list(t.shape), "dtype": "f32"}
    CASES.append(entry)


def f32(*shape, scale=1.0):
    """Random float32 values; float32 first so the float64 reference sees exactly the C inputs."""
    return (torch.randn(*shape) * scale).float()


def pair(v):
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


# ---- conv2d ------------------------------------------------------------------------------------
CONV = [  # cin, cout, kernel, stride, padding, dilation, groups, H, W, bias, relu, residual
    (1, 16, 3, 1, 1, 1, 1, 12, 128, False, True, False),      # RMVPE's first conv (BN folded: bias)
    (16, 16, 3, 1, 1, 1, 1, 9, 128, True, True, True),        # end of a ConvBlockRes
    (16, 8, 1, 1, 0, 1, 1, 7, 64, True, False, False),        # 1x1 shortcut
    (32, 16, 3, 1, 1, 1, 1, 6, 32, True, True, False),
    (64, 64, 3, 1, 1, 1, 1, 5, 16, True, True, True),
    (128, 96, 3, 1, 1, 1, 1, 4, 8, True, True, True),
    (256, 64, 3, 1, 1, 1, 1, 3, 4, True, True, False),        # RMVPE's deepest level is 4 wide
    (96, 32, 1, 1, 0, 1, 1, 3, 4, True, False, False),
    (16, 3, 3, 1, 1, 1, 1, 11, 128, True, False, False),      # RMVPE's cnn: 3 output channels
    (8, 8, 3, 1, 1, 1, 1, 300, 128, True, True, True),        # several row tiles
    (5, 7, 3, 1, 1, 1, 1, 13, 37, True, True, True),          # odd width
    (6, 4, 3, 1, 1, 1, 1, 5, 130, False, False, True),        # width just over a multiple of 16
    (4, 6, (3, 5), (1, 2), (1, 2), 1, 1, 9, 23, True, False, False),  # asymmetric kernel, stride
    (6, 4, 3, 2, 1, 1, 1, 15, 16, True, True, False),         # stride 2
    (4, 4, 3, 1, 2, 2, 1, 10, 12, True, False, False),        # dilation 2
    (8, 6, 3, 1, 1, (2, 1), 2, 11, 14, True, True, True),     # groups 2, dilation in height only
    (6, 6, 3, 1, 1, 1, 6, 8, 20, True, False, False),         # depthwise
    (3, 5, 5, 1, 0, 1, 1, 6, 7, True, False, False),          # no padding: output smaller
    (4, 2, 2, 2, 0, 1, 1, 6, 8, True, False, False),          # 2x2 stride 2 (patchify)
    (3, 4, 1, 2, 0, 1, 1, 7, 9, True, True, False),           # 1x1 stride 2
    (2, 3, 3, 1, 4, 1, 1, 2, 3, True, False, True),           # padding wider than the input
]
for i, (cin, cout, k, s, p, d, g, h, w, bias, relu, res) in enumerate(CONV):
    conv = nn.Conv2d(cin, cout, k, s, p, d, g, bias=bias)
    with torch.no_grad():
        if bias:
            conv.bias.normal_(0.0, 0.3)
    x = f32(1, cin, h, w)
    y = conv.double()(x.double())
    if relu:
        y = torch.relu(y)
    r = None
    if res:
        r = f32(*y.shape)
        y = y + r.double()
    params = {"kernel": pair(k), "stride": pair(s), "padding": pair(p), "dilation": pair(d), "groups": g,
              "relu": int(relu)}
    add_case("conv2d_%d" % i, "conv2d", params,
             {"x": x[0], "w": conv.weight, "b": conv.bias if bias else None, "r": r[0] if res else None, "y": y[0]})

# ---- conv_transpose2d ----------------------------------------------------------------------------
CONVT = [  # cin, cout, kernel, stride, padding, output_padding, H, W, bias, relu
    (32, 16, 3, 2, 1, 1, 6, 64, True, True),     # RMVPE decoder stage (BN folded: bias), [T, 128] from [T/2, 64]
    (512, 256, 3, 2, 1, 1, 2, 4, True, True),    # RMVPE's first decoder stage
    (8, 4, 3, 2, 1, 1, 90, 64, False, False),    # several row tiles
    (4, 6, 2, 2, 0, 0, 5, 7, True, False),       # 2x2 stride 2
    (3, 5, (3, 5), (2, 1), (1, 2), (1, 0), 6, 9, True, True),
    (5, 3, 4, 3, 1, 2, 4, 5, True, False),       # stride 3, output padding 2
    (6, 4, 3, 1, 0, 0, 4, 4, True, False),       # stride 1: a full convolution
]
for i, (cin, cout, k, s, p, op, h, w, bias, relu) in enumerate(CONVT):
    conv = nn.ConvTranspose2d(cin, cout, k, s, p, op, bias=bias)
    with torch.no_grad():
        if bias:
            conv.bias.normal_(0.0, 0.3)
    x = f32(1, cin, h, w)
    y = conv.double()(x.double())
    if relu:
        y = torch.relu(y)
    params = {"kernel": pair(k), "stride": pair(s), "padding": pair(p), "output_padding": pair(op), "relu": int(relu)}
    add_case("convt2d_%d" % i, "conv_transpose2d", params,
             {"x": x[0], "w": conv.weight, "b": conv.bias if bias else None, "y": y[0]})

# ---- pool2d ------------------------------------------------------------------------------------
POOL = [  # kind, kernel, stride, padding, C, H, W
    ("avg", 2, 2, 0, 16, 12, 128),   # RMVPE's encoder pooling
    ("avg", 2, 2, 0, 3, 7, 9),       # odd sizes: the last row and column are dropped
    ("max", 3, 2, 1, 4, 9, 10),
    ("avg", 3, 1, 1, 2, 5, 6),       # padding counted in the mean
    ("max", (2, 1), (2, 1), 0, 3, 8, 5),
    ("avg", (1, 3), (1, 2), (0, 1), 2, 4, 11),
]
for i, (kind, k, s, p, c, h, w) in enumerate(POOL):
    pool = nn.AvgPool2d(k, s, p) if kind == "avg" else nn.MaxPool2d(k, s, p)
    x = f32(1, c, h, w)
    add_case("pool2d_%d" % i, "pool2d", {"kind": kind, "kernel": pair(k), "stride": pair(s), "padding": pair(p)},
             {"x": x[0], "y": pool(x)[0]})

# ---- transpose01 -------------------------------------------------------------------------------
for i, (a, b, c) in enumerate([(3, 50, 128), (1, 4, 5), (7, 1, 3), (5, 6, 1)]):
    x = f32(a, b, c)
    add_case("transpose01_%d" % i, "transpose01", {}, {"x": x, "y": x.transpose(0, 1)})

with open(os.path.join(OUT, "index.json"), "w") as f:
    json.dump({"torch": torch.__version__, "cases": CASES}, f, indent=1)
print("wrote %d cases to %s" % (len(CASES), OUT))
