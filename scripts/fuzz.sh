#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS (default 60),
# seeded from generated inputs. usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
CC=clang cmake -S . -B build-fuzz -DAVO_FUZZ=ON -DAVO_WERROR=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
mkdir -p build-fuzz/corpus
for t in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$t
  mkdir -p "$corpus"
  seeds=fuzz/seeds/$t
  [ -x "$seeds.sh" ] && "$seeds.sh" "$corpus"
  echo "== $t for ${SECONDS_EACH}s"
  LSAN_OPTIONS=suppressions=$PWD/fuzz/lsan.supp build-fuzz/$t -max_total_time="$SECONDS_EACH" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 "$corpus" 2>&1 \
    | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|crash' || true
  if ls crash-* leak-* timeout-* >/dev/null 2>&1; then echo "fuzz: $t found a failing input" >&2; exit 1; fi
done
