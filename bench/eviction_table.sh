#!/usr/bin/env bash
# The policies x sizes table of docs/eviction.md: three synthetic traces (parameters below, as in
# docs/eviction.md), each replayed through every eviction policy at several disk sizes (a share
# of the trace's footprint) with a memory tier of 1% of it. Prints Markdown.
# Usage: bash bench/eviction_table.sh [BUILD_DIR]   (default build/; needs build/llmcache)
set -euo pipefail
BIN="${1:-build}/llmcache"
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
"$BIN" trace synth --seed 1 --zipf 0.8 --mix chat -o "$DIR/A.jsonl"
"$BIN" trace synth --seed 2 --zipf 1.0 --one-hit-wonders 0.5 -o "$DIR/B.jsonl"
"$BIN" trace synth --seed 3 --mix reasoning -o "$DIR/C.jsonl"
for t in A B C; do
  "$BIN" trace replay "$DIR/$t.jsonl" --policy all --memory 0.01x --disk 0.05x,0.1x,0.25x,0.5x --json |
    sed "s/^{/{\"trace\":\"$t\",/"
done | python3 "$(dirname "$0")/eviction_table.py"
