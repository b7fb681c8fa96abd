#!/usr/bin/env bash
# Does a slow S3 slow a miss? Miss latency (p50, p90) through the gateway with S3 off, and with
# S3 on behind a proxy that adds 200 ms to every S3 request (async writes, the default).
# All on 127.0.0.1: mock provider, s3rver (tests/s3), a delaying TCP proxy, two gateways.
# Usage: bash bench/s3_slow_miss_bench.sh [requests] [upstream-latency-ms]   (defaults 300 20)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N="${1:-300}"; UPLAT="${2:-20}"
BIN=build/llmcache
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}" $(jobs -p); do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
port_of() { url_port_of "$1"; }

$BIN mock-upstream --listen 127.0.0.1:0 --latency-ms "$UPLAT" > "$WORK/mock.out" & PIDS+=($!)
MPORT=$(port_of "$WORK/mock.out")
# Its stdin must stay open and quiet (it stops when stdin closes): an idle pipe.
tail -f /dev/null | bash tests/s3/run-server.sh --dir "$WORK/s3" --port 0 > "$WORK/s3.out" 2>&1 & PIDS+=($!)
S3PORT=$(port_of "$WORK/s3.out")
# A TCP proxy that holds every chunk from the client for 200 ms: each S3 request pays 200 ms.
python3 - "$S3PORT" > "$WORK/proxy.out" <<'PY' &
import asyncio, sys
target = int(sys.argv[1])
async def pipe(r, w, delay):
    try:
        while data := await r.read(65536):
            if delay: await asyncio.sleep(0.2)
            w.write(data); await w.drain()
    finally:
        w.close()
async def handle(cr, cw):
    sr, sw = await asyncio.open_connection("127.0.0.1", target)
    await asyncio.gather(pipe(cr, sw, True), pipe(sr, cw, False), return_exceptions=True)
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"proxy listening on http://127.0.0.1:{srv.sockets[0].getsockname()[1]}", flush=True)
    await srv.serve_forever()
asyncio.run(main())
PY
PIDS+=($!)
PPORT=$(port_of "$WORK/proxy.out")

AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER $BIN serve --listen 127.0.0.1:0 \
  --upstream "http://127.0.0.1:$MPORT/v1" --cache-dir "$WORK/gw-s3" \
  --set CACHE_S3_ENDPOINT="http://127.0.0.1:$PPORT" --set CACHE_S3_BUCKET=llmcache-test \
  > "$WORK/gw-s3.out" 2> "$WORK/gw-s3.err" & PIDS+=($!)
S3GW=$(port_of "$WORK/gw-s3.out")
$BIN serve --listen 127.0.0.1:0 --upstream "http://127.0.0.1:$MPORT/v1" --cache-dir "$WORK/gw-plain" \
  > "$WORK/gw-plain.out" 2> "$WORK/gw-plain.err" & PIDS+=($!)
PLAINGW=$(port_of "$WORK/gw-plain.out")
sleep 1

python3 - "$PLAINGW" "$S3GW" "$N" <<'PY'
import http.client, json, statistics, sys, time, uuid
plain, s3, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def miss(conn):
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": str(uuid.uuid4())}]})
    t0 = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    r = conn.getresponse(); r.read()
    assert r.getheader("x-llmcache-status") == "MISS", r.getheader("x-llmcache-status")
    return (time.perf_counter() - t0) * 1000
conns = {name: http.client.HTTPConnection("127.0.0.1", port) for name, port in (("s3 off", plain), ("s3 +200ms", s3))}
res = {name: [] for name in conns}
for i in range(n):  # alternate, so both see the same machine load
    for name, c in conns.items():
        res[name].append(miss(c))
for name, xs in res.items():
    xs.sort()
    print(f"{name:>10}: miss p50 {statistics.median(xs):.2f} ms, p90 {xs[int(len(xs)*0.9)]:.2f} ms, max {xs[-1]:.2f} ms")
a, b = statistics.median(res["s3 off"]), statistics.median(res["s3 +200ms"])
print(f"p50 ratio (S3 slow / S3 off): {b/a:.3f}")
PY
grep -c . "$WORK/gw-s3/s3-outbox"/* 2>/dev/null | wc -l | xargs echo "outbox files still pending:"
