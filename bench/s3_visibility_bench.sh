#!/usr/bin/env bash
# Cross-gateway visibility and the S3 requests of an idle gateway (issue 16, item 2).
# Two gateways with default settings (only CACHE_S3_ENDPOINT and CACHE_S3_BUCKET set) on one
# s3rver (tests/s3), each behind its own counting TCP proxy, a mock provider, all on 127.0.0.1.
#  1. idle: both gateways up, nothing asked, for IDLE seconds: S3 requests per second per gateway,
#     by kind (which prefix a LIST reads, or the method);
#  2. visibility: N new prompts, each sent once to gateway A (a MISS, stored), then to gateway B
#     every 20 ms with Cache-Control: no-store (looked up, never stored at B) until B answers a
#     HIT: the time from A's answer to B's first HIT (p50, p90, max).
# With S3_DELAY_MS set, each proxy holds every chunk from its gateway that long (a slow S3, as
# bench/s3_slow_miss_bench.sh does with 200 ms).
# Usage: [S3_DELAY_MS=200] bash bench/s3_visibility_bench.sh [N] [IDLE seconds]   (defaults 20 30)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
N="${1:-20}"; IDLE="${2:-30}"
BIN=build/llmcache
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}" $(jobs -p); do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
port_of() { url_port_of "$1"; }

$BIN mock-upstream --listen 127.0.0.1:0 --latency-ms 20 > "$WORK/mock.out" & PIDS+=($!)
MPORT=$(port_of "$WORK/mock.out")
tail -f /dev/null | bash tests/s3/run-server.sh --dir "$WORK/s3" --port 0 > "$WORK/s3.out" 2>&1 & PIDS+=($!)
S3PORT=$(port_of "$WORK/s3.out")

# A TCP proxy that counts the HTTP requests passing through it (request lines), by kind; it
# writes its counts to a file on SIGUSR1 and clears them on SIGUSR2.
cat > "$WORK/proxy.py" <<'PY'
import asyncio, collections, json, re, signal, sys, urllib.parse
target, out, delay = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]) / 1000
counts = collections.Counter()
line = re.compile(rb"(?:^|\r\n)(GET|PUT|HEAD|DELETE|POST) (\S+) HTTP/1\.[01]\r\n")
def kind(method, target):
    url = urllib.parse.urlsplit(target.decode())
    q = urllib.parse.parse_qs(url.query)
    if method == "GET" and "list-type" in q:
        prefix = q.get("prefix", [""])[0]
        for name in ("recent-keys", "by-key", "invalidations", "by-date", "global/instances", "invalid"):
            if f"cache-index/{name}/" in prefix:
                return f"LIST {name}"
        return "LIST other"
    return method
async def pipe(r, w, count):
    try:
        while data := await r.read(65536):
            if count:
                for m in line.finditer(data):
                    counts[kind(m.group(1).decode(), m.group(2))] += 1
                if delay: await asyncio.sleep(delay)
            w.write(data); await w.drain()
    finally:
        w.close()
async def handle(cr, cw):
    sr, sw = await asyncio.open_connection("127.0.0.1", target)
    await asyncio.gather(pipe(cr, sw, True), pipe(sr, cw, False), return_exceptions=True)
def dump(*_):
    with open(out, "w") as f: json.dump(counts, f)
async def main():
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, dump)
    loop.add_signal_handler(signal.SIGUSR2, counts.clear)
    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"proxy listening on http://127.0.0.1:{srv.sockets[0].getsockname()[1]}", flush=True)
    await srv.serve_forever()
asyncio.run(main())
PY
declare -A PROXY GW
for g in a b; do
  python3 "$WORK/proxy.py" "$S3PORT" "$WORK/counts-$g.json" "${S3_DELAY_MS:-0}" > "$WORK/proxy-$g.out" & PROXY[$g]=$!; PIDS+=($!)
  PPORT=$(port_of "$WORK/proxy-$g.out")
  AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER $BIN serve --listen 127.0.0.1:0 \
    --upstream "http://127.0.0.1:$MPORT/v1" --cache-dir "$WORK/gw-$g" \
    --set CACHE_S3_ENDPOINT="http://127.0.0.1:$PPORT" --set CACHE_S3_BUCKET=llmcache-test \
    > "$WORK/gw-$g.out" 2> "$WORK/gw-$g.err" & PIDS+=($!)
  GW[$g]=$(port_of "$WORK/gw-$g.out")
done
sleep 2  # first listings done

for g in a b; do kill -USR2 "${PROXY[$g]}"; done
sleep "$IDLE"
for g in a b; do kill -USR1 "${PROXY[$g]}"; done
sleep 0.5
python3 - "$IDLE" "$WORK/counts-a.json" "$WORK/counts-b.json" <<'PY'
import json, sys
idle = float(sys.argv[1])
for name, path in zip("ab", sys.argv[2:]):
    c = json.load(open(path))
    total = sum(c.values())
    parts = ", ".join(f"{k} {v / idle:.2f}" for k, v in sorted(c.items()))
    print(f"idle gateway {name}: {total / idle:.2f} S3 requests/s over {idle:.0f} s ({parts})")
PY

for g in a b; do kill -USR2 "${PROXY[$g]}"; done
python3 - "${GW[a]}" "${GW[b]}" "$N" <<'PY'
import http.client, json, statistics, sys, time, uuid
a, b, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def post(port, body, headers={}):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json", **headers})
    r = c.getresponse(); r.read(); c.close()
    return r.getheader("x-llmcache-status"), r.getheader("x-llmcache-layer")
times, lookups = [], []
for i in range(n):
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": str(uuid.uuid4())}]})
    assert post(a, body)[0] == "MISS"
    t0 = time.monotonic(); k = 0
    while True:
        k += 1
        status, layer = post(b, body, {"Cache-Control": "no-store"})
        if status == "HIT":
            assert layer == "s3", layer
            break
        if time.monotonic() - t0 > 60: raise SystemExit("no HIT at B within 60 s")
        time.sleep(0.02)
    times.append(time.monotonic() - t0); lookups.append(k)
    time.sleep(0.3)  # the next prompt at another phase of B's poll
times.sort()
print(f"visibility over {n} new entries: p50 {statistics.median(times):.2f} s, "
      f"p90 {times[int(len(times) * 0.9)]:.2f} s, max {times[-1]:.2f} s, min {times[0]:.2f} s")
PY
for g in a b; do kill -USR1 "${PROXY[$g]}"; done
sleep 0.5
python3 - "$N" "$WORK/counts-a.json" <<'PY'
import json, sys
n = int(sys.argv[1]); c = json.load(open(sys.argv[2]))
puts = c.get("PUT", 0)
print(f"gateway A during the visibility phase: {puts} PUTs for {n} stored answers ({puts / n:.1f} each, "
      f"index flushes included), all requests: {dict(sorted(c.items()))}")
PY
