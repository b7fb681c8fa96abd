#!/usr/bin/env bash
# `llmcache key --jsonl` against the Python reference over the same lines (whole processes):
#   a) cache_key.py run once per request, as the reference CLI is used (one request per process)
#   b) the reference's functions in one Python process looping over the lines (the fairest)
#   c) llmcache key --jsonl (its default: one worker thread per core, at most 8)
#   d) llmcache key --jsonl --threads 1 (one thread, as the Python loop)
# Two inputs: the project's key spec vectors (tests/keyspec/vectors.jsonl, 1,034 lines), and a
# larger synthetic set, those vectors repeated 20 times (20,680 lines), where process start no
# longer hides the per-line cost. "Per line" is the marginal time, (big - small) / (lines
# between), so neither side's start-up (Python's interpreter and imports; llmcache's dynamic
# linking) is counted. a) and b) need the Python reference (cache_key.py in ../shared/keyspec
# beside the repository); without it only c) runs. LLMCACHE_KEYSPEC_DIR names another key spec
# directory, for both the vectors and the reference; LLMCACHE_BIN another binary (e.g. a copy of
# an older build, for a before/after).
# Wall time is what a user waits, but on a shared machine it depends on the others' load, the
# more so for llmcache's threads (a second thread gains nothing when no core is free). So the
# CPU time (user + system, from the same runs) is also given per line, marginal as above: the
# work each side does for a line, which load changes much less. Same lines, one process each.
# Usage: bash bench/key_cli_bench.sh   (needs hyperfine; build/llmcache)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${LLMCACHE_BIN:-build/llmcache}
REPEAT=20
if [[ -n "${LLMCACHE_KEYSPEC_DIR:-}" ]]; then
  KS="$LLMCACHE_KEYSPEC_DIR"
  V="$KS/vectors.jsonl"
else
  KS=../shared/keyspec
  V=tests/keyspec/vectors.jsonl
fi
KS=$(cd "$KS" 2>/dev/null && pwd || true)  # absolute, or empty when absent
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
N=$(wc -l < "$V")
BIG="$WORK/big.jsonl"
for _ in $(seq "$REPEAT"); do cat "$V"; done > "$BIG"
NB=$((N * REPEAT))
echo "lines: $N ($V); synthetic: $NB (the same, $REPEAT times)"
if [[ -z "$KS" || ! -f "$KS/cache_key.py" ]]; then
  echo "no Python reference (cache_key.py) beside the repository: measuring llmcache only"
  hyperfine --warmup 3 "$BIN key --jsonl < $V" --export-json "$WORK/c.json" | grep -E "Time|Range"
  hyperfine --warmup 1 --runs 10 "$BIN key --jsonl < $BIG" --export-json "$WORK/cb.json" |
    grep -E "Time|Range"
  python3 - "$WORK" "$N" "$NB" <<'PY'
import json, sys
w, n, nb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
med = lambda f: json.load(open(f"{w}/{f}.json"))["results"][0]["median"]
c, cb = med("c"), med("cb")
print(f"llmcache key --jsonl: {c*1e3:.1f} ms for {n} lines, {cb*1e3:.1f} ms for {nb}: "
      f"{(cb-c)/(nb-n)*1e6:.2f} us per line (marginal)")
PY
  exit 0
fi
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
hyperfine --warmup 1 --runs 5 "python3 $WORK/loop.py $KS < $BIG" --export-json "$WORK/bb.json" |
  grep -E "Time|Range"
hyperfine --warmup 3 "$BIN key --jsonl < $V" --export-json "$WORK/c.json" | grep -E "Time|Range"
hyperfine --warmup 1 --runs 10 "$BIN key --jsonl < $BIG" --export-json "$WORK/cb.json" |
  grep -E "Time|Range"
hyperfine --warmup 3 "$BIN key --jsonl --threads 1 < $V" --export-json "$WORK/d.json" |
  grep -E "Time|Range"
hyperfine --warmup 1 --runs 10 "$BIN key --jsonl --threads 1 < $BIG" --export-json "$WORK/db.json" |
  grep -E "Time|Range"
python3 - "$WORK" "$N" "$NB" "$(nproc)" <<'PY'
import json, sys
w, n, nb, cores = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
res = lambda f: json.load(open(f"{w}/{f}.json"))["results"][0]
med = lambda f: res(f)["median"]
cpu = lambda f: res(f)["user"] + res(f)["system"]  # means over the runs
a = json.load(open(w + "/a.json"))["results"][0]["mean"] / 200 * n
b, bb, c, cb, d, db = med("b"), med("bb"), med("c"), med("cb"), med("d"), med("db")
pb, pc, pd = (bb - b) / (nb - n), (cb - c) / (nb - n), (db - d) / (nb - n)
qb, qc, qd = [(cpu(big) - cpu(small)) / (nb - n) for small, big in (("b", "bb"), ("c", "cb"), ("d", "db"))]
print(f"cache_key.py per request ({n} processes, extrapolated from 200): {a:.2f} s -> llmcache is {a/c:.0f}x faster")
print(f"Python loop in one process, {n} lines: {b*1e3:.1f} ms -> llmcache is {b/c:.1f}x faster (process start included)")
print(f"Python loop in one process, {nb} lines: {bb*1e3:.0f} ms -> llmcache is {bb/cb:.1f}x faster (process start included)")
print(f"per line (marginal, start-up excluded): Python {pb*1e6:.1f} us; llmcache {pc*1e6:.2f} us "
      f"(default, {min(cores, 8)} threads) -> {pb/pc:.1f}x; {pd*1e6:.2f} us (--threads 1) -> {pb/pd:.1f}x")
print(f"CPU time per line (user + system, marginal): Python {qb*1e6:.1f} us; llmcache {qc*1e6:.2f} us "
      f"(default) -> {qb/qc:.1f}x; {qd*1e6:.2f} us (--threads 1) -> {qb/qd:.1f}x")
print(f"llmcache key --jsonl: {c*1e3:.1f} ms for {n} lines = {c/n*1e6:.1f} us per line (process start included), "
      f"{cb*1e3:.1f} ms for {nb} lines = {cb/nb*1e6:.2f} us per line")
PY
