#!/usr/bin/env bash
# Runs every test: the release build's unit and end-to-end tests, then the unit tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer. Installs missing packages first (see setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

./setup.sh --no-demo
JOBS=$(nproc)

echo "== release build: all tests"
ctest --test-dir build --output-on-failure -j"$JOBS"

echo "== ASan+UBSan build: unit tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DAVO_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$JOBS" >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -L unit -j"$JOBS"
