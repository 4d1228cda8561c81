#!/usr/bin/env bash
# Seeds for fuzz_audio: tiny valid files of every supported format, made with sox.
set -eu
out=$1
command -v sox >/dev/null || exit 0
for spec in "wav -b 16" "wav -e floating-point -b 32" "flac" "ogg"; do
  set -- $spec
  ext=$1; shift
  sox -n -r 8000 -c 1 "$@" "$out/seed_$ext$#.$ext" synth 0.05 sine 440 2>/dev/null || true
done
