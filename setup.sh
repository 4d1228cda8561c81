#!/usr/bin/env bash
# Sets AutoVoice up on a Debian machine: installs the packages it needs, builds it, and (unless
# --no-demo) runs a demo conversion on the shared test audio.
#
#   ./setup.sh            install, build, demo
#   ./setup.sh --no-demo  install and build only
set -euo pipefail
cd "$(dirname "$0")"

DEMO=1
for arg in "$@"; do
  case "$arg" in
    --no-demo) DEMO=0 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

PACKAGES=(build-essential cmake pkg-config clang libclang-rt-14-dev
  libsndfile1-dev libsoxr-dev libfftw3-dev libopenblas-dev libebur128-dev libcjson-dev libsqlite3-dev
  libzip-dev libmpg123-dev
  python3 python3-numpy python3-torch chromium sox)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
echo "setup: built build/autovoice"

if [ "$DEMO" = 1 ]; then
  DATA=../shared/data
  if [ ! -d "$DATA" ]; then
    echo "setup: no ../shared/data beside the checkout; skipping the demo" >&2
    exit 0
  fi
  mkdir -p demo
  STORE=demo/profiles
  echo "setup: demo: making profile 'njat' from two recordings of singer NJAT"
  build/autovoice profile create njat "$DATA/singing/nus48e_NJAT_07.flac" "$DATA/singing/nus48e_NJAT_16.flac" \
    --store "$STORE" --force
  echo "setup: demo: converting the falcon69 song to that voice"
  build/autovoice convert "$DATA/stems/falcon69/mixture.flac" --profile njat --store "$STORE" \
    --auto-transpose -o demo/cover.wav --stems-dir demo/stems --profile-json demo/timings.json
  echo "setup: demo done: demo/cover.wav, stems in demo/stems, timings in demo/timings.json"
fi
