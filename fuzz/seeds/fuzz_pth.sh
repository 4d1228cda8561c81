#!/usr/bin/env bash
# Seeds for fuzz_pth: small torch.save archives and their bare pickles, from the test fixture generator.
set -eu
out=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$(dirname "$0")/../../tests/reference/make_checkpoint_fixtures.py" "$tmp" >/dev/null 2>&1 || exit 0
for f in "$tmp"/*.pth "$tmp"/hostile/*.pth "$tmp"/hostile/*.pkl; do
  [ -f "$f" ] && [ "$(stat -c %s "$f")" -le 65536 ] && cp "$f" "$out/seed_$(basename "$f")"
done
for f in "$tmp"/*.pth; do
  [ -f "$f" ] || continue
  /usr/bin/python3 -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
n = [x for x in z.namelist() if x.endswith("/data.pkl")][0]
open(sys.argv[2], "wb").write(z.read(n))' "$f" "$out/seed_$(basename "$f" .pth).pkl"
done
