#!/usr/bin/env bash
# Sets up (scripts/setup.sh), configures and builds the release preset: build/llmcache, the
# tests and the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/llmcache-ccache}"
# Paths relative to the checkout, so another clone of the project (CI's) hits the same cache.
export CCACHE_BASEDIR="$PWD"
cmake --preset release -DLLMCACHE_BUILD_TESTS=ON -DLLMCACHE_BUILD_BENCH=ON >/dev/null
cmake --build --preset release
