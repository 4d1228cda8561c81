# Shared set-up for the shell end-to-end tests (sourced, not run; kept out of tests/e2e/*.sh so
# CMake does not register it as a test).
#
#   e2e_init NAME   defines fail(), checks AVO_BIN, sets src (repo root), data (shared data, absolute)
#                   and base (a fresh scratch directory named NAME under AVO_TEST_TMP or /tmp)
#   e2e_skip_without_torch DIR   exits 0 with SKIP when a reference generator left DIR/TORCH_MISSING
#                   (fails instead when AVO_REQUIRE_TORCH is set)
#   json_get FILE KEY   prints a top-level JSON value ('' when absent)

e2e_init() {
  E2E_NAME="$1"
  fail() { echo "$E2E_NAME: FAIL: $*" >&2; exit 1; }
  [ -n "${AVO_BIN:-}" ] && [ -x "$AVO_BIN" ] || fail "AVO_BIN must point at the autovoice binary"
  src="$(cd "$(dirname "${BASH_SOURCE[1]}")/../.." && pwd)"
  data="$(cd "${AVO_TEST_DATA:-$src/../shared/data}" && pwd)" || fail "no shared data (set AVO_TEST_DATA)"
  base="${AVO_TEST_TMP:-/tmp}/${E2E_NAME#test_}"
  rm -rf "$base"
  mkdir -p "$base"
}

e2e_skip_without_torch() {
  if [ -e "$1/TORCH_MISSING" ]; then
    [ -n "${AVO_REQUIRE_TORCH:-}" ] && fail "python3-torch is required (AVO_REQUIRE_TORCH)"
    echo "SKIP: python3-torch is not installed"
    exit 0
  fi
}

json_get() {
  /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ''))" "$1" "$2"
}
