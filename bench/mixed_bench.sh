#!/usr/bin/env bash
# A mixed workload through llmcache (issue: performance): 90% of requests repeat one of 10,000
# distinct chat requests (warmed first: memory hits), 10% are new (misses) against a provider
# that takes 200 ms. Prints wrk's req/s and latency percentiles and the gateway's own hit/miss
# counts. All on 127.0.0.1; it stops only what it started.
# Usage: bash bench/mixed_bench.sh [seconds=15] [connections=64] [distinct=10000] [latency-ms=200]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR="${1:-15}"; CONNS="${2:-64}"; DISTINCT="${3:-10000}"; LAT="${4:-200}"
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }; }
BIN=build/llmcache
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
port_of() { for _ in $(seq 200); do grep -o '[0-9]*$' "$1" 2>/dev/null && return; sleep 0.05; done; echo "no port in $1" >&2; exit 1; }

$BIN mock-upstream --listen 127.0.0.1:0 --latency-ms "$LAT" > "$WORK/mock.out" & PIDS+=($!)
MPORT=$(port_of "$WORK/mock.out")
$BIN serve --listen 127.0.0.1:0 --upstream "http://127.0.0.1:$MPORT/v1" --cache-dir "$WORK/cache" \
  --set CACHE_THREADS=2 --set CACHE_MEMORY_ENTRIES=$((DISTINCT * 3)) --set CACHE_DISK_ENTRIES=1000000 \
  > "$WORK/gw.out" 2> "$WORK/gw.err" & PIDS+=($!)
LPORT=$(port_of "$WORK/gw.out")
URL="http://127.0.0.1:$LPORT"

# Warm the distinct requests (the mock answers these at once: x-mock-latency-ms is not in the key).
python3 - "$URL" "$DISTINCT" <<'PY'
import concurrent.futures, http.client, json, sys, urllib.parse
url, n = sys.argv[1], int(sys.argv[2])
u = urllib.parse.urlparse(url)
def body(i):
    return json.dumps({"model": "gpt-4o-mini", "temperature": 0,
                       "messages": [{"role": "user", "content": f"Question number {i}: what is {i} squared?"}]})
def warm(chunk):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    for i in chunk:
        c.request("POST", "/v1/chat/completions", body(i),
                  {"Content-Type": "application/json", "Authorization": "Bearer sk-bench", "x-mock-latency-ms": "0"})
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
with concurrent.futures.ThreadPoolExecutor(16) as ex:
    list(ex.map(warm, [range(k, n, 16) for k in range(16)]))
PY

cat > "$WORK/mixed.lua" <<LUA
local distinct = $DISTINCT
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer sk-bench"}
local fmt = '{"model": "gpt-4o-mini", "temperature": 0, "messages": [{"role": "user", "content": "%s"}]}'
local n = 0
function init(args) math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000) end
function request()
  n = n + 1
  local content
  if math.random() < 0.9 then
    local i = math.random(0, distinct - 1)
    content = string.format("Question number %d: what is %d squared?", i, i)
  else
    content = string.format("New question %d-%d-%d", math.random(1, 1000000000), n, os.time())
  end
  return wrk.format("POST", "/v1/chat/completions", headers, string.format(fmt, content))
end
LUA
m() { curl -s "$URL/metrics" | awk -v k="$1" '$1 == k { s += $2 } END { print s + 0 }'; }
h0=$(m 'llmcache_hits_total'); m0=$(m 'llmcache_misses_total')
wrk -t2 -c"$CONNS" -d"${DUR}s" --latency -s "$WORK/mixed.lua" "$URL/v1/chat/completions" > "$WORK/wrk.txt"
h1=$(m 'llmcache_hits_total'); m1=$(m 'llmcache_misses_total')
rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")
pct() { awk -v p="$1" '$1 == p {print $2}' "$WORK/wrk.txt"; }
echo "mixed: $DISTINCT distinct warmed, 90% repeats / 10% new against a ${LAT} ms provider, c=$CONNS, ${DUR}s"
echo "  $rps req/s; latency p50 $(pct 50%) p90 $(pct 90%) p99 $(pct 99%)"
echo "  gateway counted $((h1 - h0)) hits and $((m1 - m0)) misses ($(awk -v h=$((h1 - h0)) -v m=$((m1 - m0)) 'BEGIN { printf "%.1f", 100 * h / (h + m) }')% hits)"
