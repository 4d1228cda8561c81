#!/usr/bin/python3
"""Writes checkpoint fixtures for tests/unit/test_checkpoint.c into OUTDIR.

usage: make_checkpoint_fixtures.py OUTDIR

Always written (no torch needed):
  hostile/*.pth        zip archives shaped like torch.save output whose pickle is hostile or broken
  st_*.safetensors     safetensors files written by hand, with expected values
  st_bad/*.safetensors broken or hostile safetensors files
With python3-torch (random weights, shapes and key names as in the upstream projects):
  rvc_v2.pth, sovits.pth, views.pth, fairseq.pth
For each good fixture NAME: NAME.json lists the tensors (path, dtype, shape, stride, offset and where
its values start in NAME.f32, the tensor converted to contiguous float32, little-endian) and the
expected metadata scalars. If torch is missing, OUTDIR/TORCH_MISSING is written and the exit code is 0.
"""
import io
import json
import os
import random
import struct
import sys
import zipfile
from collections import OrderedDict

OUT = sys.argv[1]
os.makedirs(os.path.join(OUT, "hostile"), exist_ok=True)
os.makedirs(os.path.join(OUT, "st_bad"), exist_ok=True)


def torch_like_zip(path, pickle_bytes, storages=None, prefix="archive"):
    """A zip laid out like torch.save's (stored, not compressed)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(prefix + "/data.pkl", pickle_bytes)
        for key, data in (storages or {}).items():
            z.writestr(prefix + ("/" + key[3:] if key.startswith("../") else "/data/" + key), data)
        z.writestr(prefix + "/version", "3\n")


# ---- hostile pickles, written opcode by opcode --------------------------------------------------

def binunicode(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def short_unicode(s):
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


PWNED = os.path.join(OUT, "pwned")
CMD = "touch " + PWNED
storage_pid = (b"(" + binunicode("storage") + b"ctorch\nFloatStorage\n" + binunicode("0") +
               binunicode("cpu") + b"K\x04tQ")


def rebuild(shape, stride, offset=0):
    def ints(v):
        return b"(" + b"".join(b"K" + bytes([x]) for x in v) + b"t"
    return (b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage_pid + b"K" + bytes([offset]) + ints(shape) +
            ints(stride) + b"\x89ccollections\nOrderedDict\n)RtR")


hostile = {
    # classic code execution: os.system(CMD)
    "os_system": b"\x80\x02cos\nsystem\n" + binunicode(CMD) + b"\x85R.",
    "posix_system": b"\x80\x02cposix\nsystem\n" + binunicode(CMD) + b"\x85R.",
    # protocol 4 STACK_GLOBAL form of builtins.eval
    "builtins_eval": (b"\x80\x04" + short_unicode("builtins") + short_unicode("eval") + b"\x93" +
                      short_unicode("__import__('os').system('%s')" % CMD) + b"\x85R."),
    # hidden inside an otherwise normal state dict
    "nested_exec": (b"\x80\x02}(" + binunicode("weight") + b"ccollections\nOrderedDict\n)R" +
                    binunicode("x") + b"cbuiltins\nexec\n" + binunicode("import os; os.system('%s')" % CMD) +
                    b"\x85Rsu."),
    # a whitelisted record class may be created, but a non-record one may not
    "newobj_subprocess": b"\x80\x02csubprocess\nPopen\n)\x81.",
    "reduce_on_string": b"\x80\x02" + binunicode("os") + b")R.",
    "build_on_list": b"\x80\x02]}b.",
    "deep_tuples": b"\x80\x02N" + b"\x85" * 5000 + b".",
    "deep_lists": b"\x80\x02" + b"]" * 3000 + b"a" * 2999 + b".",
    "mark_flood": b"\x80\x02" + b"(" * 100000 + b".",
    "huge_string": b"\x80\x02X\xff\xff\xff\xff" + b"a" * 16 + b".",
    "huge_bytes8": b"\x80\x04\x8e" + struct.pack("<Q", 1 << 62) + b"a.",
    "huge_memo": b"\x80\x02Nr\xf0\xff\xff\xff.",
    "memo_unset": b"\x80\x02h\x07.",
    "bad_opcode": b"\x80\x02\xff.",
    "no_stop": b"\x80\x02}(" + binunicode("a") + b"K\x01u",
    "empty_stop": b"\x80\x02.",
    "huge_storage": (b"\x80\x02(" + binunicode("storage") + b"ctorch\nFloatStorage\n" + binunicode("0") +
                     binunicode("cpu") + b"\x8a\x08" + struct.pack("<q", 1 << 60) + b"tQ."),
    "tensor_outside_storage": b"\x80\x02" + rebuild([4, 4], [4, 1]) + b".",
    "tensor_offset_outside": b"\x80\x02" + rebuild([2], [1], offset=3) + b".",
    "unknown_storage_type": (b"\x80\x02(" + binunicode("storage") + b"ctorch\nComplexFloatStorage\n" +
                             binunicode("0") + binunicode("cpu") + b"K\x04tQ."),
}
for name, pk in hostile.items():
    torch_like_zip(os.path.join(OUT, "hostile", name + ".pth"), pk, {"0": b"\0" * 16})

# A valid tiny checkpoint written by hand (so non-torch runs still test the happy path).
ok_pickle = b"\x80\x02}(" + binunicode("w") + rebuild([2, 2], [1, 2]) + binunicode("sr") + binunicode("40k") + b"u."
torch_like_zip(os.path.join(OUT, "hostile", "handmade_ok.pth"), ok_pickle,
               {"0": struct.pack("<4f", 1.0, 2.0, 3.0, 4.0)})
# torch >= 2.1 records the byte order; a big-endian writer's storages must be swapped.
torch_like_zip(os.path.join(OUT, "hostile", "handmade_big.pth"), ok_pickle,
               {"0": struct.pack(">4f", 1.0, 2.0, 3.0, 4.0), "../byteorder": b"big"})
torch_like_zip(os.path.join(OUT, "hostile", "bad_byteorder.pth"), ok_pickle,
               {"0": struct.pack("<4f", 1.0, 2.0, 3.0, 4.0), "../byteorder": b"middle"})
torch_like_zip(os.path.join(OUT, "hostile", "missing_storage.pth"), ok_pickle, {})
torch_like_zip(os.path.join(OUT, "hostile", "short_storage.pth"), ok_pickle, {"0": b"\0" * 8})
torch_like_zip(os.path.join(OUT, "hostile", "truncated_pickle.pth"), ok_pickle[: len(ok_pickle) // 2],
               {"0": b"\0" * 16})
with zipfile.ZipFile(os.path.join(OUT, "hostile", "no_data_pkl.pth"), "w") as z:
    z.writestr("archive/version", "3\n")
with zipfile.ZipFile(os.path.join(OUT, "hostile", "torchscript.pth"), "w") as z:
    z.writestr("model/code/__torch__.py", "x = 1\n")
    z.writestr("model/constants.pkl", b"\x80\x02).")
# legacy (pre-1.6) torch files start with a pickled magic number
with open(os.path.join(OUT, "hostile", "legacy.pth"), "wb") as f:
    f.write(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02M\xe9\x03.")
with open(os.path.join(OUT, "hostile", "bare_pickle.pkl"), "wb") as f:
    f.write(ok_pickle)
with open(os.path.join(OUT, "hostile", "wrong_magic.pth"), "wb") as f:
    f.write(b"GIF89a" + b"\0" * 100)
with open(os.path.join(OUT, "hostile", "empty.pth"), "wb") as f:
    pass
with open(os.path.join(OUT, "hostile", "raw_os_system.pkl"), "wb") as f:
    f.write(hostile["os_system"])

# Plain containers pickled by Python itself with protocols 2 and 4 (STACK_GLOBAL, MEMOIZE, FRAME,
# SHORT_BINBYTES, sets), no tensors: checks the machine without torch.
import pickle

plain = OrderedDict([("sr", "48k"), ("f0", 1), ("neg", -123456789012), ("small_neg", -3), ("big", 2 ** 70),
                     ("pi", 3.141592653589793), ("flag", True), ("off", False), ("none", None),
                     ("blob", b"\x00\x01\xfe"), ("unicode", "h\u00e9llo \u4e16\u754c"),
                     ("nested", {"list": [1, [2, [3, (4, 5)]]], "od": OrderedDict(x=1.5), 3: "int key"}),
                     ("ids", {7, 9}), ("frozen", frozenset([4])), ("shared", None)])
plain["shared"] = plain["nested"]["list"]
plain_expect = {"sr": "48k", "f0": 1, "neg": -123456789012, "small_neg": -3, "pi": 3.141592653589793,
                "flag": True, "off": False, "unicode": "h\u00e9llo \u4e16\u754c", "nested.list.1.1.1.0": 4,
                "nested.od.x": 1.5, "nested.3": "int key", "shared.0": 1}
for proto in (2, 4):
    name = "plain_p%d" % proto
    torch_like_zip(os.path.join(OUT, name + ".pth"), pickle.dumps(plain, protocol=proto))
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump({"tensors": [], "scalars": plain_expect}, f)
    open(os.path.join(OUT, name + ".f32"), "wb").close()

# A repeated key (Python keeps the last value).
torch_like_zip(os.path.join(OUT, "dup_key.pth"),
               b"\x80\x02}(" + binunicode("a") + b"K\x01" + binunicode("a") + b"K\x02u.")
with open(os.path.join(OUT, "dup_key.json"), "w") as f:
    json.dump({"tensors": [], "scalars": {"a": 2}}, f)
open(os.path.join(OUT, "dup_key.f32"), "wb").close()

# ---- safetensors, by hand -----------------------------------------------------------------------

ST_CODES = {"F32": ("f", 4), "F64": ("d", 8), "F16": ("e", 2), "I64": ("q", 8), "I32": ("i", 4),
            "I16": ("h", 2), "I8": ("b", 1), "U8": ("B", 1), "BOOL": ("?", 1)}
ST_NAMES = {"F32": "f32", "F64": "f64", "F16": "f16", "BF16": "bf16", "I64": "i64", "I32": "i32",
            "I16": "i16", "I8": "i8", "U8": "u8", "BOOL": "bool"}


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def st_encode(dtype, values):
    """Raw bytes of values and the float32 the reader must produce for each."""
    if dtype == "BF16":
        raw = b"".join(struct.pack("<I", struct.unpack("<I", struct.pack("<f", v))[0])[2:] for v in values)
        exp = [struct.unpack("<f", b"\0\0" + raw[2 * i:2 * i + 2])[0] for i in range(len(values))]
        return raw, exp
    code, _ = ST_CODES[dtype]
    raw = struct.pack("<%d%s" % (len(values), code), *values)
    exp = [f32(float(v)) for v in struct.unpack("<%d%s" % (len(values), code), raw)]
    return raw, exp


def write_safetensors(path, tensors, metadata=None, header_override=None, pad=0):
    header, data, expect = {}, b"", []
    for name, dtype, shape, values in tensors:
        raw, exp = st_encode(dtype, values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        expect.append((name, dtype, shape, exp))
        data += raw
    if metadata is not None:
        header["__metadata__"] = metadata
    if header_override is not None:
        header = header_override(header)
    hb = header if isinstance(header, bytes) else json.dumps(header).encode()
    hb += b" " * pad
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + data)
    return expect


def write_expected(name, entries, scalars=None):
    """entries: (path, dtype, shape, stride, offset, float32 values)."""
    tensors, blob = [], bytearray()
    for path, dtype, shape, stride, offset, vals in entries:
        tensors.append({"path": path, "dtype": dtype, "shape": list(shape), "stride": list(stride),
                        "offset": offset, "values": len(blob) // 4, "numel": len(vals)})
        blob += struct.pack("<%df" % len(vals), *vals)
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump({"tensors": tensors, "scalars": scalars or {}}, f, indent=1)
    with open(os.path.join(OUT, name + ".f32"), "wb") as f:
        f.write(bytes(blob))


def contiguous_strides(shape):
    s, acc = [], 1
    for d in reversed(shape):
        s.insert(0, acc)
        acc *= d
    return s


rng = random.Random(1234)
st_tensors = [
    ("emb_g.weight", "F32", [3, 4], [rng.uniform(-1, 1) for _ in range(12)]),
    ("dec.conv_pre.weight", "F16", [2, 3, 2], [rng.uniform(-2, 2) for _ in range(12)]),
    ("dec.conv_pre.bias", "BF16", [5], [rng.uniform(-3, 3) for _ in range(5)]),
    ("f64", "F64", [2], [1e-3, -7.25]),
    ("i64", "I64", [3], [-5, 0, 1 << 40]),
    ("i32", "I32", [1, 2], [7, -8]),
    ("i16", "I16", [2], [-300, 300]),
    ("i8", "I8", [2], [-128, 127]),
    ("u8", "U8", [3], [0, 128, 255]),
    ("mask", "BOOL", [2], [True, False]),
    ("scalar", "F32", [], [3.5]),
    ("empty", "F32", [0, 4], []),
]
exp = write_safetensors(os.path.join(OUT, "st_ok.safetensors"), st_tensors,
                        metadata={"format": "pt", "sr": "40k"}, pad=5)
write_expected("st_ok", [(n, ST_NAMES[d], s, contiguous_strides(s), 0, v) for n, d, s, v in exp],
               {"__metadata__.sr": "40k", "__metadata__.format": "pt"})

small = [("a", "F32", [2], [1.0, 2.0]), ("b", "F32", [2], [3.0, 4.0])]


def st_bad(name, **kw):
    write_safetensors(os.path.join(OUT, "st_bad", name + ".safetensors"), small, **kw)


def set_offsets(key, offs):
    def f(h):
        h[key]["data_offsets"] = offs
        return h
    return f


def set_field(key, field, val):
    def f(h):
        h[key][field] = val
        return h
    return f


st_bad("overlap", header_override=set_offsets("b", [4, 12]))
st_bad("out_of_range", header_override=set_offsets("b", [8, 4096]))
st_bad("reversed", header_override=set_offsets("b", [8, 0]))
st_bad("size_mismatch", header_override=set_field("b", "shape", [3]))
st_bad("bad_dtype", header_override=set_field("a", "dtype", "F8_E4M3"))
st_bad("negative_dim", header_override=set_field("a", "shape", [-2]))
st_bad("fraction_dim", header_override=set_field("a", "shape", [1.5]))
st_bad("huge_dims", header_override=set_field("a", "shape", [1 << 40, 1 << 40]))
st_bad("bad_json", header_override=lambda h: json.dumps(h).encode()[:-3])
st_bad("not_object", header_override=lambda h: b"[1, 2, 3]")
st_bad("missing_offsets", header_override=lambda h: {k: {"dtype": v["dtype"], "shape": v["shape"]} for k, v in h.items()})
st_bad("duplicate_key", header_override=lambda h: (json.dumps(h)[:-1] + ', "a": ' + json.dumps(h["a"]) + "}").encode())
st_bad("hole", header_override=lambda h: {"a": dict(h["a"], data_offsets=[8, 16])})
with open(os.path.join(OUT, "st_bad", "huge_header.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", 1 << 60) + b"{}")
with open(os.path.join(OUT, "st_bad", "truncated.safetensors"), "wb") as f:
    f.write(open(os.path.join(OUT, "st_ok.safetensors"), "rb").read()[:-7])

# ---- torch fixtures -----------------------------------------------------------------------------

try:
    import torch
except ImportError:
    open(os.path.join(OUT, "TORCH_MISSING"), "w").close()
    print("torch not available: wrote only the hand-made fixtures")
    sys.exit(0)

import argparse

torch.manual_seed(20240601)
DT = {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16", torch.float64: "f64",
      torch.int64: "i64", torch.int32: "i32", torch.int16: "i16", torch.int8: "i8", torch.uint8: "u8",
      torch.bool: "bool"}


def collect(obj, path, seen, out):
    """Depth-first walk in the reader's order; each tensor object once."""
    if isinstance(obj, torch.Tensor):
        if id(obj) in seen:
            return
        seen.add(id(obj))
        vals = obj.detach().contiguous().to(torch.float32).reshape(-1).tolist()
        out.append((path, DT[obj.dtype], list(obj.shape), list(obj.stride()), obj.storage_offset(), vals))
        return
    if isinstance(obj, argparse.Namespace):
        obj = vars(obj)
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return
    for k, v in items:
        collect(v, (path + "." if path else "") + str(k), seen, out)


def save(name, obj, scalars):
    path = os.path.join(OUT, name + ".pth")
    torch.save(obj, path)
    out = []
    collect(obj, "", set(), out)
    write_expected(name, out, scalars)


def randn(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


# RVC v2 40k (SynthesizerTrnMs768NSFsid) as written by save_small_model: fp16 weights, no enc_q.
rvc_weight = {}
for k, shape in [("enc_p.emb_phone.weight", (192, 768)), ("enc_p.emb_phone.bias", (192,)),
                 ("enc_p.emb_pitch.weight", (256, 192)),
                 ("enc_p.encoder.attn_layers.0.emb_rel_k", (1, 21, 96)),
                 ("enc_p.encoder.attn_layers.0.conv_q.weight", (192, 192, 1)),
                 ("enc_p.encoder.attn_layers.0.conv_q.bias", (192,)),
                 ("enc_p.encoder.norm_layers_1.0.gamma", (192,)),
                 ("enc_p.encoder.ffn_layers.0.conv_1.weight", (768, 192, 3)),
                 ("enc_p.proj.weight", (384, 192, 1)),
                 ("dec.m_source.l_linear.weight", (1, 1)),
                 ("dec.conv_pre.weight", (512, 192, 7)),
                 ("dec.ups.0.weight_g", (512, 1, 1)),
                 ("flow.flows.0.enc.in_layers.0.weight_v", (384, 192, 5)),
                 ("emb_g.weight", (109, 256))]:
    rvc_weight[k] = randn(*shape).half()
rvc = OrderedDict()
rvc["weight"] = rvc_weight
rvc["config"] = [1025, 32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
                 [10, 10, 2, 2], 512, [16, 16, 4, 4], 109, 256, 40000]
rvc["info"] = "200epoch"
rvc["name"] = "fixture_voice"
rvc["timestamp"] = 1700000000
rvc["sr"] = "40k"
rvc["f0"] = 1
rvc["version"] = "v2"
save("rvc_v2", rvc, {"sr": "40k", "f0": 1, "version": "v2", "info": "200epoch", "config.0": 1025,
                     "config.9": "1", "config.10.2": 11, "config.11.1.2": 5, "config.17": 40000,
                     "timestamp": 1700000000})

# so-vits-svc 4.x G_*.pth: model.state_dict() (with _metadata), optimizer state, iteration, lr.
names = [("emb_g.weight", (4, 192)), ("enc_p.proj.weight", (384, 192, 1)), ("pre.weight", (192, 768, 5)),
         ("enc_p.f0_emb.weight", (256, 192)), ("enc_p.enc_.attn_layers.0.conv_q.weight", (192, 192, 1)),
         ("dec.conv_pre.weight", (512, 192, 7)), ("dec.ups.0.weight_g", (512, 1, 1)),
         ("flow.flows.0.pre.weight", (192, 96, 1)), ("emb_uv.weight", (2, 192))]
params = [torch.nn.Parameter(randn(*s)) for _, s in names[:2]]
opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.8, 0.99), eps=1e-9)
sum((p * p).sum() for p in params).backward()
opt.step()
model = OrderedDict((n, randn(*s)) for n, s in names)
model._metadata = OrderedDict([("", {"version": 1}), ("enc_p", {"version": 1})])
sovits = {"model": model, "iteration": 12000, "optimizer": opt.state_dict(), "learning_rate": 1e-4}
save("sovits", sovits, {"iteration": 12000, "learning_rate": 1e-4, "optimizer.param_groups.0.eps": 1e-9,
                        "optimizer.param_groups.0.betas.0": 0.8, "optimizer.param_groups.0.amsgrad": False})

# Views, dtypes and shared storage.
base = torch.randn(8, 10)
half_special = torch.tensor([1.0, -0.0, float("inf"), -float("inf"), 6e-8, 1e-5, 65504.0, 0.333], dtype=torch.float16)
views = OrderedDict()
views["base"] = base
views["slice"] = base[2:5, 3:9]
views["transposed"] = base.t()
views["column"] = base[:, 4]
views["stepped"] = base[1::2, ::3]
views["expanded"] = torch.randn(3, 1).expand(3, 4)
views["shared_a"] = base[0]
views["shared_b"] = base.view(80)[40:60].view(4, 5)
views["half_special"] = half_special
views["bf16"] = randn(3, 5, dtype=torch.bfloat16)[:, 1:4]
views["f64"] = torch.randn(4, 3, dtype=torch.float64).t()
views["i64"] = torch.tensor([[-3, 2 ** 40], [7, 0]], dtype=torch.int64)
views["i32"] = torch.arange(-6, 6, dtype=torch.int32).view(3, 4)[:, 1:3]
views["i16"] = torch.tensor([-300, 301], dtype=torch.int16)
views["i8"] = torch.tensor([-128, 5, 127], dtype=torch.int8)
views["u8"] = torch.tensor([0, 200, 255], dtype=torch.uint8)
views["bool"] = torch.tensor([True, False, True])
views["scalar"] = torch.tensor(2.5)
views["empty"] = torch.zeros(0, 3)
views["param"] = torch.nn.Parameter(torch.randn(2, 3))
views["same_object_again"] = views["base"]
views["nested"] = {"list": [torch.randn(2), (torch.randn(1, 2), 3)], 7: torch.randn(3)}
views["nan_free_4d"] = torch.randn(2, 3, 4, 5).permute(3, 1, 0, 2)
save("views", views, {})

# fairseq-style (hubert_base.pt): Namespace args, cfg dict, numpy scalars, sets and bytes.
import numpy as np

fair = {
    "args": argparse.Namespace(arch="hubert", encoder_layers=12, label_rate=50.0, normalize=False),
    "cfg": {"_name": None, "model": {"_name": "hubert", "encoder_embed_dim": 768, "extractor_mode": "default",
                                     "conv_feature_layers": "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"},
            "task": {"_name": "hubert_pretraining", "sample_rate": 16000, "labels": ["km"]}},
    "model": OrderedDict([("feature_extractor.conv_layers.0.0.weight", randn(512, 1, 10)),
                          ("final_proj.weight", randn(256, 768)), ("label_embs_concat", randn(504, 256)),
                          ("encoder.pos_conv.0.weight_g", randn(1, 1, 128)), ("mask_emb", randn(768))]),
    "optimizer_history": [{"criterion_name": "HubertCriterion", "optimizer_name": "FairseqAdam",
                           "lr_scheduler_state": {"best": np.float64(1.5)}, "num_updates": 400000}],
    "extra_state": {"epoch": 10, "best": np.float64(2.25), "n": np.int64(-7), "f32": np.float32(0.5),
                    "ids": {3, 1}, "blob": b"\x00\xffab", "nothing": b"", "big": 2 ** 70},
    "task_state": {},
}
save("fairseq", fair, {"args.arch": "hubert", "args.encoder_layers": 12, "args.label_rate": 50.0,
                       "cfg.model.encoder_embed_dim": 768, "cfg.task.sample_rate": 16000,
                       "cfg.task.labels.0": "km", "optimizer_history.0.lr_scheduler_state.best": 1.5,
                       "optimizer_history.0.num_updates": 400000, "extra_state.best": 2.25,
                       "extra_state.n": -7, "extra_state.f32": 0.5, "extra_state.epoch": 10})
print("wrote fixtures to", OUT)
