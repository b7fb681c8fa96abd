#!/usr/bin/env bash
# The README's test command: set up, build, run every test (unit, integration, end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --preset release --parallel 2 "$@"
