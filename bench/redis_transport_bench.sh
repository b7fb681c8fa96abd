#!/usr/bin/env bash
# The Redis client's transport per GET (bench/redis_transport_bench.cc): hiredis's own I/O, ours
# plain, ours over TLS, against one local redis-server (Debian's) serving a plain and a TLS port
# on a throwaway CA made with the openssl command. Three rounds of 20000 GETs each.
# Usage: bash bench/redis_transport_bench.sh   (after the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BENCH_BIN:-build/bench/redis_transport_bench}
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
(
  cd "$WORK"
  EC=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${EC[@]}" -days 1 -subj "/CN=bench CA" -keyout ca.key -out ca.crt
  echo "subjectAltName=IP:127.0.0.1" > server.ext
  openssl req "${EC[@]}" -subj "/CN=bench" -keyout server.key -out server.csr
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
    -extfile server.ext -out server.crt
) >/dev/null 2>&1
PORT=$(free_port)
TPORT=$(free_port)
redis-server --port "$PORT" --tls-port "$TPORT" --tls-cert-file "$WORK/server.crt" \
  --tls-key-file "$WORK/server.key" --tls-ca-cert-file "$WORK/ca.crt" --tls-auth-clients no \
  --bind 127.0.0.1 --save '' --appendonly no --daemonize no --logfile /dev/null &
PID=$!
for _ in $(seq 200); do [ "$(redis-cli -p "$PORT" PING 2>/dev/null)" = PONG ] && break; sleep 0.05; done
"$BIN" "$PORT" "$TPORT" "$WORK/ca.crt"
