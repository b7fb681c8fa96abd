#!/usr/bin/env bash
# The README's run command: set up (only what building and running needs), build the llmcache
# binary alone (no tests, benchmarks or fuzzers), start the gateway on its embedded default
# (memory + disk under ./.llmcache, no S3). Extra arguments go to `llmcache serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh run
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/llmcache-ccache}" CCACHE_BASEDIR="$PWD"
cmake --preset release -DLLMCACHE_BUILD_TESTS=OFF -DLLMCACHE_BUILD_BENCH=OFF >/dev/null
cmake --build --preset release --target llmcache
exec ./build/llmcache serve "$@"
