#!/usr/bin/env bash
# Seeds for fuzz_safetensors: the hand-written good and broken files of the test fixture generator.
set -eu
out=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$(dirname "$0")/../../tests/reference/make_checkpoint_fixtures.py" "$tmp" >/dev/null 2>&1 || exit 0
for f in "$tmp"/*.safetensors "$tmp"/st_bad/*.safetensors; do
  [ -f "$f" ] && cp "$f" "$out/seed_$(basename "$f")"
done
