#!/usr/bin/env bash
# Seed for fuzz_voice_analysis: a real profile's analysis.bin, made with the release build.
set -eu
out=$1
bin=build/autovoice
data=../shared/data/singing
[ -x "$bin" ] && [ -d "$data" ] || exit 0
store=$(mktemp -d)
"$bin" profile create seed "$data/nus48e_JLEE_11.flac" "$data/nus48e_JLEE_15.flac" --store "$store" --quiet >/dev/null 2>&1 || exit 0
cp "$store"/profiles/seed.*/analysis.bin "$out/seed.bin" 2>/dev/null || true
rm -rf "$store"
