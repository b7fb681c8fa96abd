#!/usr/bin/env bash
# `llmcache key --jsonl` against the Python reference over the same lines (whole processes):
#   a) cache_key.py run once per request, as the reference CLI is used (one request per process)
#   b) the reference's functions in one Python process looping over the lines (the fairest)
#   c) llmcache key --jsonl
# The lines are the project's key spec vectors (tests/keyspec/vectors.jsonl). a) and b) need the
# Python reference (cache_key.py in ../shared/keyspec beside the repository); without it only c)
# runs. LLMCACHE_KEYSPEC_DIR names another key spec directory, for both the vectors and the
# reference.
# Usage: bash bench/key_cli_bench.sh   (needs hyperfine; build/llmcache)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -n "${LLMCACHE_KEYSPEC_DIR:-}" ]]; then
  KS="$LLMCACHE_KEYSPEC_DIR"
  V="$KS/vectors.jsonl"
else
  KS=../shared/keyspec
  V=tests/keyspec/vectors.jsonl
fi
KS=$(cd "$KS" 2>/dev/null && pwd || true)  # absolute, or empty when absent
N=$(wc -l < "$V")
echo "lines: $N ($V)"
if [[ -z "$KS" || ! -f "$KS/cache_key.py" ]]; then
  echo "no Python reference (cache_key.py) beside the repository: measuring llmcache only"
  hyperfine --warmup 3 "build/llmcache key --jsonl < $V" | grep -E "Time|Range"
  exit 0
fi
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
python3 - "$V" "$WORK" "$KS" <<'PY'
import json, sys, os
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
os.makedirs(sys.argv[2] + "/req")
with open(sys.argv[2] + "/per_line.sh", "w") as sh:
    for i, r in enumerate(rows[:200]):
        p = f"{sys.argv[2]}/req/{i}.json"
        open(p, "w", encoding="utf-8").write(r["request"])
        args = f"--endpoint {r['endpoint']} --normalize {r['normalize']}"
        if r["scope"]: args += f" --scope {r['scope']}"
        if r["namespace"]: args += f" --namespace {r['namespace']}"
        sh.write(f"python3 {sys.argv[3]}/cache_key.py {args} < {p} > /dev/null || true\n")
PY
cat > "$WORK/loop.py" <<'PY'
import sys, json
sys.path.insert(0, sys.argv[1])
import cache_key as ck
for line in sys.stdin:
    row = json.loads(line)
    try:
        req = json.loads(row["request"], parse_constant=ck._reject_constant, parse_float=ck._finite_float)
        out = ck.cache_key(req, endpoint=row["endpoint"], mode=row["normalize"], scope=row["scope"], namespace=row["namespace"])
    except (ck.KeyError_, json.JSONDecodeError) as e:
        out = {"error": str(e)}
    print(json.dumps(out))
PY
hyperfine -N --warmup 1 --runs 3 "bash $WORK/per_line.sh" --export-json "$WORK/a.json" | grep -E "Time|Range"
hyperfine --warmup 2 "python3 $WORK/loop.py $KS < $V" --export-json "$WORK/b.json" | grep -E "Time|Range"
hyperfine --warmup 3 "build/llmcache key --jsonl < $V" --export-json "$WORK/c.json" | grep -E "Time|Range"
python3 - "$WORK" "$N" <<'PY'
import json, sys
w, n = sys.argv[1], int(sys.argv[2])
a = json.load(open(w + "/a.json"))["results"][0]["mean"] / 200 * n
b = json.load(open(w + "/b.json"))["results"][0]["mean"]
c = json.load(open(w + "/c.json"))["results"][0]["mean"]
print(f"cache_key.py per request ({n} processes, extrapolated from 200): {a:.2f} s -> llmcache is {a/c:.0f}x faster")
print(f"Python loop in one process: {b*1000:.1f} ms -> llmcache is {b/c:.1f}x faster")
print(f"llmcache key --jsonl: {c*1000:.1f} ms for {n} lines = {c/n*1e6:.1f} us per line (process start included)")
PY
