#!/usr/bin/env bash
# Seeds for fuzz_calib_cache: valid caches (checksums computed as calibrate.h describes) and a few
# broken ones (another version, a bad checksum, a short line, no newline at the end).
set -eu
out=$1
mkdir -p "$out"
/usr/bin/python3 - "$out" <<'PY'
import os, struct, sys
out = sys.argv[1]

def fnv(data, h=0xcbf29ce484222325):
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return h

def cache(entries, model=0x0123456789abcdef, version=1):
    body = "".join("%s: %08x\n" % (n, struct.unpack("<I", struct.pack("<f", s))[0]) for n, s in entries)
    pre = "AVO-INT8-CALIB %d model=fnv1a64:%016x tensors=%d checksum=" % (version, model, len(entries))
    return pre + "%08x\n" % (fnv((pre + body).encode()) & 0xffffffff) + body

ents = [("conv1d.512x1x10.00000000000000aa", 0.25), ("linear#7", 2.5e-3), ("conv_transpose2d.4x3x2x2.0123456789abcdef", 1 / 127)]
seeds = {
    "valid3": cache(ents),
    "valid0": cache([]),
    "valid1": cache(ents[:1], model=42),
    "version2": cache(ents, version=2),
    "badsum": cache(ents)[:-3] + "0b\n",
    "short_line": cache(ents).replace(": 3b23d70a", ": 3b23d70"),
    "no_newline": cache(ents)[:-1],
}
for name, text in seeds.items():
    open(os.path.join(out, "seed_" + name), "w").write(text)
PY
