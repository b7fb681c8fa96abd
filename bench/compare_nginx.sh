#!/usr/bin/env bash
# llmcache vs nginx proxy_cache, side by side, on 127.0.0.1 (issue: performance).
# Starts the mock provider, nginx as a caching reverse proxy in front of it (POST bodies in the
# cache key, proxy_cache_lock on, 2 workers) and llmcache in front of the same provider, warms
# both, then runs wrk alternately against each: same body, 2 and 64 connections, several
# rounds; prints req/s, p50, p99 and the llmcache/nginx ratio per round and the medians.
# Usage: bash bench/compare_nginx.sh [rounds] [seconds] [body-bytes]   (defaults 3 10 1536)
# It stops only what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS="${1:-3}"; DUR="${2:-10}"; SIZE="${3:-1536}"
for p in nginx wrk; do
  command -v "$p" >/dev/null || { apt-get install -y -qq "$p" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$p" >/dev/null; }; }
done
NGINX=$(command -v nginx)
BIN=build/llmcache
WORK=$(mktemp -d)
PIDS=()
cleanup() { [ -n "${BENCH_DEBUG:-}" ] && tail -5 "$WORK/nginx/error.log" >&2; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
port_of() { for _ in $(seq 200); do grep -o '[0-9]*$' "$1" 2>/dev/null && return; sleep 0.05; done; echo "no port in $1" >&2; exit 1; }

$BIN mock-upstream --listen 127.0.0.1:0 > "$WORK/mock.out" & PIDS+=($!)
MPORT=$(port_of "$WORK/mock.out")
$BIN serve --listen 127.0.0.1:0 --upstream "http://127.0.0.1:$MPORT/v1" --cache-dir "$WORK/llmcache" \
  --set CACHE_THREADS=2 > "$WORK/gw.out" 2> "$WORK/gw.err" & PIDS+=($!)
LPORT=$(port_of "$WORK/gw.out")

NPORT=$(free_port)
mkdir -p "$WORK/nginx/cache" "$WORK/nginx/tmp"
# nginx workers run as an unprivileged user: they must be able to write the cache and temp dirs.
chmod 755 "$WORK"; chmod -R 777 "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
  scgi_temp_path $WORK/nginx/tmp/scgi;
  proxy_cache_path $WORK/nginx/cache levels=1:2 keys_zone=llm:64m max_size=1g inactive=1h;
  upstream provider { server 127.0.0.1:$MPORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NPORT;
    client_max_body_size 16m;
    client_body_buffer_size 1m;
    location /v1/ {
      proxy_pass http://provider;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache llm;
      proxy_cache_methods POST;
      proxy_cache_key "\$request_uri|\$request_body";
      proxy_cache_valid 200 1h;
      proxy_cache_lock on;
      proxy_buffering on;
      add_header x-cache-status \$upstream_cache_status;
    }
  }
}
CONF
"$NGINX" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" & PIDS+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$NPORT/" && break; sleep 0.05; done

python3 - "$SIZE" > "$WORK/body.json" <<'PY'
import json, sys
n = int(sys.argv[1])
text = ("The quick brown fox jumps over the lazy dog. " * (n // 40 + 2))
body = {"model": "gpt-4o-mini", "temperature": 0, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": ""}]}
base = len(json.dumps(body))
body["messages"][1]["content"] = text[: max(1, n - base)]
print(json.dumps(body), end="")
PY
echo "body: $(wc -c < "$WORK/body.json") bytes; llmcache :$LPORT, nginx :$NPORT, mock :$MPORT"
cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
local f = io.open("$WORK/body.json"); wrk.body = f:read("*a"); f:close()
LUA
for url in "http://127.0.0.1:$LPORT" "http://127.0.0.1:$NPORT"; do
  for _ in 1 2; do
    curl -s -D - -o /dev/null -H 'Content-Type: application/json' -H 'Authorization: Bearer sk-bench' \
      --data-binary @"$WORK/body.json" "$url/v1/chat/completions" | grep -iE "x-llmcache-status|x-cache-status" || true
  done
done

run() {  # run URL CONNECTIONS -> "rps p50_ms p99_ms"
  wrk -t2 -c"$2" -d"${DUR}s" --latency -s "$WORK/post.lua" "$1/v1/chat/completions" > "$WORK/wrk.txt"
  [ -n "${BENCH_DEBUG:-}" ] && cat "$WORK/wrk.txt" >&2
  python3 - "$WORK/wrk.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(v, u): return float(v) * {"us": 0.001, "ms": 1, "s": 1000}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p50 = ms(*re.search(r"50%\s+([\d.]+)(us|ms|s)", t).groups())
p99 = ms(*re.search(r"99%\s+([\d.]+)(us|ms|s)", t).groups())
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(f"{rps:.0f} {p50:.3f} {p99:.3f}" + (f" non2xx={bad.group(1)}" if bad else ""))
PY
}
RESULTS="$WORK/results.txt"
for C in 2 64; do
  for r in $(seq "$ROUNDS"); do
    L=$(run "http://127.0.0.1:$LPORT" "$C"); N=$(run "http://127.0.0.1:$NPORT" "$C")
    echo "$C $r $L | $N" >> "$RESULTS"
    python3 -c "import sys; l=sys.argv[1].split(); n=sys.argv[2].split(); print(f'c={sys.argv[3]:>2} round {sys.argv[4]}: llmcache {float(l[0]):>8.0f} req/s p50 {l[1]} ms p99 {l[2]} ms | nginx {float(n[0]):>8.0f} req/s p50 {n[1]} ms p99 {n[2]} ms | ratio {float(l[0])/float(n[0]):.2f}')" "$L" "$N" "$C" "$r"
  done
done
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    left, right = line.split("|")
    c, r, lr, l50, l99 = left.split()[:5]
    nr, n50, n99 = right.split()[:3]
    rows.setdefault(c, []).append((float(lr), float(l50), float(l99), float(nr), float(n50), float(n99)))
for c, xs in rows.items():
    med = [statistics.median(x[i] for x in xs) for i in range(6)]
    print(f"median c={c}: llmcache {med[0]:.0f} req/s (p50 {med[1]:.3f} ms, p99 {med[2]:.3f} ms) | "
          f"nginx {med[3]:.0f} req/s (p50 {med[4]:.3f} ms, p99 {med[5]:.3f} ms) | ratio {med[0]/med[3]:.2f}")
    # Paired rounds (each pair ran back to back): how often llmcache's p99 was no worse.
    better = sum(1 for x in xs if x[2] <= x[5])
    print(f"  c={c}: llmcache's p99 <= nginx's in {better} of {len(xs)} rounds")
PY
