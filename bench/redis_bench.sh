#!/usr/bin/env bash
# A Redis hit's latency against a memory hit's and an S3 hit's (issue 18), through the gateway
# over real HTTP on 127.0.0.1: one mock provider, one redis-server (Debian's, free port, no
# persistence), one s3rver (tests/s3; skipped when its node_modules are missing).
#  1. gateway A (Redis + S3) stores N prompts (MISSes);
#  2. gateway B (Redis + S3, empty cache dir, room for N in memory): each prompt once = a Redis
#     hit, then once more = a memory hit (promoted);
#  3. gateway C (S3 only, empty cache dir): each prompt once = an S3 hit;
#  4. the same as 1-2 over TLS (rediss://: a second redis-server with TLS only, on a throwaway
#     CA made with the openssl command; skipped without it): gateway D stores, E measures.
# Each request on a kept-alive connection, one at a time; prints p50/p90/p99 per layer, checking
# that every answer came from the layer measured.
# Usage: bash bench/redis_bench.sh [N]   (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N="${1:-200}"
BIN=${LLMCACHE_BIN:-build/llmcache}
WORK=$(mktemp -d)
PIDS=()
# Gateways first (started in command substitutions: their pids are in a file), then the rest.
cleanup() {
  for p in $(cat "$WORK/gateway-pids" 2>/dev/null) "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for p in $(cat "$WORK/gateway-pids" 2>/dev/null); do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
  rm -rf "$WORK"
}
trap cleanup EXIT
port_of() { url_port_of "$1"; }

$BIN mock-upstream --listen 127.0.0.1:0 > "$WORK/mock.out" & PIDS+=($!)
MPORT=$(port_of "$WORK/mock.out")
RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --logfile /dev/null & PIDS+=($!)
for _ in $(seq 200); do [ "$(redis-cli -p "$RPORT" PING 2>/dev/null)" = PONG ] && break; sleep 0.05; done

S3=()
if [ -d tests/s3/node_modules ]; then
  tail -f /dev/null | bash tests/s3/run-server.sh --dir "$WORK/s3" --port 0 > "$WORK/s3.out" 2>&1 & PIDS+=($!)
  S3PORT=$(port_of "$WORK/s3.out")
  S3=(--set CACHE_S3_ENDPOINT="http://127.0.0.1:$S3PORT" --set CACHE_S3_BUCKET=llmcache-test
      --set CACHE_S3_DIRECTORY_REFRESH=1)
  export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
else
  echo "(tests/s3/node_modules missing: no S3 hits measured; run npm ci in tests/s3)" >&2
fi
REDIS=(--set CACHE_REDIS_URL="redis://127.0.0.1:$RPORT")

start() {  # name, settings...
  local name=$1; shift
  $BIN serve --listen 127.0.0.1:0 --upstream "http://127.0.0.1:$MPORT/v1" --cache-dir "$WORK/gw-$name" \
    "$@" > "$WORK/gw-$name.out" 2> "$WORK/gw-$name.err" &
  echo $! >> "$WORK/gateway-pids"
  port_of "$WORK/gw-$name.out"
}
A=$(start a "${REDIS[@]}" "${S3[@]}")

cat > "$WORK/measure.py" <<'PY'
import http.client, json, statistics, sys, time
port, n, layer, status = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
label = sys.argv[5] if len(sys.argv) > 5 else layer
conn = http.client.HTTPConnection("127.0.0.1", port)
times, wrong = [], 0
for i in range(n):
    body = json.dumps({"model": "openai/gpt-4o-mini",
                       "messages": [{"role": "user", "content": f"bench prompt {i} " + "x" * 400}]})
    t = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    r = conn.getresponse(); r.read()
    times.append((time.perf_counter() - t) * 1000)
    if r.getheader("x-llmcache-status") != status or (layer != "-" and r.getheader("x-llmcache-layer") != layer):
        wrong += 1; last = (r.getheader("x-llmcache-status"), r.getheader("x-llmcache-layer"))
if layer == "-":
    print(f"stored {n} prompts"); sys.exit(0)
q = statistics.quantiles(times, n=100)
note = ": e.g. " + str(last) if wrong else ""
print(f"{label:7s} hit: p50 {q[49]:.3f} ms  p90 {q[89]:.3f} ms  p99 {q[98]:.3f} ms  ({n} requests, {wrong} not from {layer}{note})")
PY
python3 "$WORK/measure.py" "$A" "$N" - MISS
sleep 3  # the Redis writes, the S3 outbox's uploads, the key directories' listings
B=$(start b "${REDIS[@]}" "${S3[@]}" --set CACHE_MEMORY_ENTRIES=100000)  # all N promoted stay
python3 "$WORK/measure.py" "$B" "$N" redis HIT
python3 "$WORK/measure.py" "$B" "$N" memory HIT
if [ ${#S3[@]} -gt 0 ]; then
  C=$(start c "${S3[@]}")
  sleep 3  # C's key directory has listed the bucket
  python3 "$WORK/measure.py" "$C" "$N" s3 HIT
fi
if command -v openssl >/dev/null; then
  mkdir "$WORK/tls"
  make_test_ca "$WORK/tls"
  TPORT=$(free_port)
  redis-server --port 0 --tls-port "$TPORT" --tls-cert-file "$WORK/tls/server.crt" \
    --tls-key-file "$WORK/tls/server.key" --tls-ca-cert-file "$WORK/tls/ca.crt" \
    --tls-auth-clients no --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --logfile /dev/null & PIDS+=($!)
  for _ in $(seq 200); do
    [ "$(redis-cli --tls --cacert "$WORK/tls/ca.crt" -p "$TPORT" PING 2>/dev/null)" = PONG ] && break
    sleep 0.05
  done
  TLS=(--set CACHE_REDIS_URL="rediss://127.0.0.1:$TPORT?ca=$WORK/tls/ca.crt")
  D=$(start d "${TLS[@]}")
  python3 "$WORK/measure.py" "$D" "$N" - MISS
  sleep 3
  E=$(start e "${TLS[@]}" --set CACHE_MEMORY_ENTRIES=100000)
  python3 "$WORK/measure.py" "$E" "$N" redis HIT "rediss"
else
  echo "(openssl missing: no rediss:// hits measured)" >&2
fi
