#!/usr/bin/env bash
# The README's run command: set up, build, start the gateway on its embedded default
# (memory + disk under ./.llmcache, no S3). Extra arguments go to `llmcache serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
exec ./build/llmcache serve "$@"
