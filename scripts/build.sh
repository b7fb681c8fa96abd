#!/usr/bin/env bash
# Sets up (scripts/setup.sh), configures and builds the release preset: build/llmcache.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/llmcache-ccache}"
cmake --preset release >/dev/null
cmake --build --preset release
