#!/usr/bin/env bash
# Seeds for fuzz_npy_index: small float32 and float16 .npy arrays written by numpy (if present) or by hand.
set -euo pipefail
out=$1
mkdir -p "$out"
/usr/bin/python3 - "$out" <<'PY' 2>/dev/null || printf '\x93NUMPY\x01\x00\x76\x00{'"'"'descr'"'"': '"'"'<f4'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (2, 3), }' > "$out/hand.npy"
import sys, numpy as np
d = sys.argv[1]
np.save(d + "/f32.npy", np.arange(24, dtype=np.float32).reshape(6, 4) / 7)
np.save(d + "/f16.npy", (np.arange(12, dtype=np.float16).reshape(3, 4)))
np.save(d + "/one.npy", np.ones((1, 1), dtype=np.float32))
PY
