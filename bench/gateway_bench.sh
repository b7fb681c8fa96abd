#!/usr/bin/env bash
# Gateway benchmarks with wrk against the mock provider (all on 127.0.0.1):
#   1. memory-hit requests/s and p50/p99 latency at 2 and 64 connections, fixed 1.5 KB chat body
#   2. the latency a miss adds over calling the mock provider directly
#   3. time to first streamed event, through the gateway vs direct
# Usage: bash bench/gateway_bench.sh [seconds-per-run]   (needs build/llmcache and wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
DUR="${1:-10}"
BIN=build/llmcache
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$WORK"' EXIT

port_of() { for _ in $(seq 100); do grep -o '[0-9]*$' "$1" 2>/dev/null && return; sleep 0.05; done; echo "no port in $1" >&2; exit 1; }

$BIN mock-upstream --listen 127.0.0.1:0 > "$WORK/mock.out" &
MPORT=$(port_of "$WORK/mock.out")
$BIN serve --listen 127.0.0.1:0 --upstream "http://127.0.0.1:$MPORT/v1" --cache-dir "$WORK/cache" \
  --set CACHE_MEMORY_ENTRIES=100000 > "$WORK/gw.out" 2> "$WORK/gw.err" &
GPORT=$(port_of "$WORK/gw.out")

# A fixed 1.5 KB chat body.
TEXT=$(python3 -c "print(('The quick brown fox jumps over the lazy dog. ' * 40)[:1400])")
BODY=$(python3 -c "import json,sys; print(json.dumps({'model':'gpt-4o-mini','temperature':0,'messages':[{'role':'system','content':'Be brief.'},{'role':'user','content':sys.argv[1]}]}))" "$TEXT")
echo "$BODY" > "$WORK/body.json"
echo "body: $(wc -c < "$WORK/body.json") bytes"

cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
local f = io.open("$WORK/body.json"); wrk.body = f:read("*a"); f:close()
LUA
# Unique bodies: every request a miss (the counter makes each body different).
cat > "$WORK/miss.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$WORK/body.json"); local base = f:read("*a"); f:close()
local n = 0
request = function()
  n = n + 1
  local body = base:gsub('"Be brief."', '"Be brief ' .. n .. '-' .. math.random(1e9) .. '."')
  return wrk.format(nil, nil, nil, body)
end
LUA

# Warm the entry, then check it is a hit.
curl -s -o /dev/null -H 'Content-Type: application/json' -H 'Authorization: Bearer sk-bench' \
  --data-binary @"$WORK/body.json" "http://127.0.0.1:$GPORT/v1/chat/completions"
curl -s -D - -o /dev/null -H 'Content-Type: application/json' -H 'Authorization: Bearer sk-bench' \
  --data-binary @"$WORK/body.json" "http://127.0.0.1:$GPORT/v1/chat/completions" | grep -i x-llmcache-status

for C in 2 64; do
  T=$(( C < 2 ? C : 2 ))
  echo "== memory hit, $C connections"
  wrk -t"$T" -c"$C" -d"${DUR}s" --latency -s "$WORK/post.lua" "http://127.0.0.1:$GPORT/v1/chat/completions" \
    | grep -E "Requests/sec|^ +50%|^ +99%|Non-2xx"
done

echo "== miss through the gateway (unique bodies), 2 connections"
wrk -t2 -c2 -d"${DUR}s" --latency -s "$WORK/miss.lua" "http://127.0.0.1:$GPORT/v1/chat/completions" \
  | grep -E "Requests/sec|^ +50%|^ +99%|Non-2xx"
echo "== the mock provider directly (same unique bodies), 2 connections"
wrk -t2 -c2 -d"${DUR}s" --latency -s "$WORK/miss.lua" "http://127.0.0.1:$MPORT/v1/chat/completions" \
  | grep -E "Requests/sec|^ +50%|^ +99%|Non-2xx"

echo "== time to first streamed event (median of 50, chunk delay 50 ms), gateway vs direct"
python3 - "$GPORT" "$MPORT" <<'PY'
import http.client, json, statistics, sys, time, random
def ttft(port, n):
    body = json.dumps({"model": "gpt-4o-mini", "stream": True,
                       "messages": [{"role": "user", "content": f"stream {n} {random.random()}"}]})
    c = http.client.HTTPConnection("127.0.0.1", port)
    t0 = time.perf_counter()
    c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json", "x-mock-chunk-delay-ms": "50"})
    r = c.getresponse()
    r.readline()  # the first "data:" line
    t = time.perf_counter() - t0
    r.read(); c.close()
    return t * 1000
for name, port in (("gateway", int(sys.argv[1])), ("direct", int(sys.argv[2]))):
    xs = [ttft(port, i) for i in range(50)]
    print(f"{name}: first event p50 {statistics.median(xs):.2f} ms, max {max(xs):.2f} ms")
PY
