#!/usr/bin/env bash
# The Redis client's transport per GET (bench/redis_transport_bench.cc): hiredis's own I/O, ours
# plain, ours over TLS, against one local redis-server (Debian's) serving a plain and a TLS port
# on a throwaway CA made with the openssl command. Three rounds of 20000 GETs each.
# Usage: bash bench/redis_transport_bench.sh   (after the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=${BENCH_BIN:-build/bench/redis_transport_bench}
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
make_test_ca "$WORK"
PORT=$(free_port)
TPORT=$(free_port)
redis-server --port "$PORT" --tls-port "$TPORT" --tls-cert-file "$WORK/server.crt" \
  --tls-key-file "$WORK/server.key" --tls-ca-cert-file "$WORK/ca.crt" --tls-auth-clients no \
  --bind 127.0.0.1 --save '' --appendonly no --daemonize no --logfile /dev/null &
PID=$!
for _ in $(seq 200); do [ "$(redis-cli -p "$PORT" PING 2>/dev/null)" = PONG ] && break; sleep 0.05; done
"$BIN" "$PORT" "$TPORT" "$WORK/ca.crt"
