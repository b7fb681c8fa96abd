#!/usr/bin/env bash
# The README's test command: set up, check (scripts/check.sh: formatting and the module include
# table, seconds, no build), build, run every test (unit, integration, end-to-end), then
# the unit and integration tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
#   LLMCACHE_ASAN=0   skip the sanitizer stage (it adds a debug build: see README, Development)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/check.sh
bash scripts/build.sh  # its setup.sh is a no-op now
ctest --preset release --parallel 2 "$@"

# Stage 2: the debug-asan preset (build-asan/). Every integration test gets LLMCACHE_BIN from
# its build dir, so the Python suites drive the sanitized gateway; harness.py fails a test whose
# gateway or mock printed a sanitizer report. Left out: fuzz (fuzz/run.sh already builds with
# ASan/UBSan), and the suites whose time goes to Node/Chromium peers rather than to our code
# (e2e, gateway_s3, gateway_fleet, dashboard).
if [ "${LLMCACHE_ASAN:-1}" != 0 ]; then
  export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/llmcache-ccache}" CCACHE_BASEDIR="$PWD"
  cmake --preset debug-asan >/dev/null
  cmake --build --preset debug-asan
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --preset debug-asan --parallel 2 -LE fuzz -E '^(e2e|gateway_s3|gateway_fleet|dashboard)$'
fi
