#!/usr/bin/env bash
# Runs the example's test suite through llmcache.
#
#   bash run.sh replay   the suite against cassette/ (the committed recording): no provider, no key
#   bash run.sh record   records cassette/ anew. By default against `llmcache mock-upstream` (so
#                        the example needs no key); UPSTREAM=https://api.openai.com/v1 and a real
#                        OPENAI_API_KEY record the real provider's answers.
#
#   LLMCACHE_BIN  the llmcache binary (default: ../../build/llmcache)
#   NODE          a Node >= 22 binary (default: node)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
mode="${1:-replay}"
bin="${LLMCACHE_BIN:-$here/../../build/llmcache}"
node="${NODE:-node}"
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Starts `llmcache ARGS...` with its stdout in $work/NAME.out; prints its URL.
start() {
  local name="$1"
  shift
  "$bin" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  for _ in $(seq 100); do
    if url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/$name.out" 2>/dev/null); then
      echo "$url"
      return
    fi
    sleep 0.1
  done
  cat "$work/$name.err" >&2
  exit 1
}

case "$mode" in
  record)
    upstream="${UPSTREAM:-}"
    if [ -z "$upstream" ]; then
      upstream="$(start mock mock-upstream --listen 127.0.0.1:0)/v1"
      export OPENAI_API_KEY="${OPENAI_API_KEY:-sk-example-not-a-key}"
    fi
    gateway=$(start gateway serve --listen 127.0.0.1:0 --upstream "$upstream" \
      --cache-dir "$work/cache" --mode record --cassette "$here/cassette")
    ;;
  replay)
    gateway=$(start gateway serve --listen 127.0.0.1:0 --cache-dir "$work/cache" \
      --mode replay --cassette "$here/cassette")
    export OPENAI_API_KEY=unused
    ;;
  *)
    echo "usage: run.sh replay|record" >&2
    exit 2
    ;;
esac
export OPENAI_BASE_URL="$gateway/v1" LLMCACHE_MODE="$mode"
"$node" --test --test-reporter=spec app.test.mjs
