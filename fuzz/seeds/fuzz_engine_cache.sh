#!/usr/bin/env bash
# Seeds for fuzz_engine_cache: records as engine_cache.h lays them out (for the fuzzer's "input as
# records" reading) and whole files for its key with a zero checksum (which it makes right).
set -eu
out=$1
mkdir -p "$out"
/usr/bin/python3 - "$out" <<'PY'
import os, struct, sys
out = sys.argv[1]
key = (b"autovoice engine\nformat=1\nlibrary=fuzz\nloader=fuzz/1\nmodel=m.pth\n"
       b"model_hash=0123456789abcdef\ndevice=cpu\nprecision=fp32\nprofile=default\n")

def pad(b):
    return b + b"\0" * (-len(b) % 64)

def record(name, shape, values):
    name = name.encode()
    dims = list(shape) + [0] * (4 - len(shape))
    data = struct.pack("<%df" % len(values), *values)
    head = b"AREC" + struct.pack("<HBB", len(name), 0, len(shape)) + struct.pack("<4q", *dims) + struct.pack("<Q", len(data))
    return pad(head + name) + pad(data)

def body(recs):
    return b"".join(recs) + b"AEND" + struct.pack("<I", len(recs))

recs = [record("enc.conv.weight", [2, 3, 1], [0.5 * i for i in range(6)]), record("b", [3], [1, 2, 3]),
        record("scalar", [], [7.0]), record("empty", [0, 4], [])]
seeds = {"records4": body(recs), "records1": body(recs[:1]), "records0": body([])}
whole = pad(b"AVENGINE" + struct.pack("<II", 1, len(key)) + key)
for name, b in list(seeds.items()):
    seeds["file_" + name] = whole + b + b"\0" * 8
for name, data in seeds.items():
    open(os.path.join(out, "seed_" + name), "wb").write(data)
PY
