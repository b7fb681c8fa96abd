#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan + libFuzzer) into build-fuzz/ and runs
# each for a bounded time from its seed corpus (fuzz/corpus/<target>/). Exits non-zero when a
# target crashes, leaks, trips a sanitizer or breaks a property (the input is kept under
# build-fuzz/artifacts/). Settings (environment):
#   FUZZ_SECONDS    seconds per target (default 20), with a fresh random seed: exploration
#   FUZZ_RUNS       instead: this many inputs per target from seed FUZZ_SEED (default 1), so the
#                   run is the same on every machine (what CTest, and so CI, uses: a red CI run
#                   means a regression, not a lucky find; exploration belongs to FUZZ_SECONDS)
#   FUZZ_TARGETS    which targets (default: fuzz_key fuzz_codec fuzz_sse fuzz_json)
#   FUZZ_BUILD_DIR  build directory (default: <repo>/build-fuzz)
#   FUZZ_JOBS       parallel compile jobs (default 2)
# Needs clang and libclang-rt-14-dev (scripts/setup.sh). The main build (g++) is not touched.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-20}
RUNS=${FUZZ_RUNS:-}
if [ -n "$RUNS" ]; then
  LIMIT=(-runs="$RUNS" -seed="${FUZZ_SEED:-1}")
  LIMIT_TEXT="$RUNS runs from seed ${FUZZ_SEED:-1}"
else
  LIMIT=(-max_total_time="$SECONDS_EACH")
  LIMIT_TEXT="${SECONDS_EACH}s"
fi
JOBS=${FUZZ_JOBS:-2}
read -r -a TARGETS <<< "${FUZZ_TARGETS:-fuzz_key fuzz_codec fuzz_sse fuzz_json}"

for tool in clang clang++ cmake ninja; do
  command -v "$tool" >/dev/null || { echo "fuzz: $tool is missing (scripts/setup.sh installs it)" >&2; exit 2; }
done

mkdir -p "$BUILD"
# -O1 -g: what libFuzzer's docs recommend (fast enough, readable stacks). Tests and benchmarks
# off: only the libraries the targets link are compiled.
CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD" -G Ninja \
  -DLLMCACHE_FUZZ=ON -DLLMCACHE_SANITIZE=ON \
  -DLLMCACHE_BUILD_TESTS=OFF -DLLMCACHE_BUILD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE= -DCMAKE_C_FLAGS="-O1 -g" -DCMAKE_CXX_FLAGS="-O1 -g" >"$BUILD/configure.log" 2>&1 \
  || { cat "$BUILD/configure.log" >&2; exit 2; }
ninja -C "$BUILD" -j "$JOBS" "${TARGETS[@]}" >"$BUILD/build.log" 2>&1 \
  || { tail -50 "$BUILD/build.log" >&2; echo "fuzz: build failed (log: $BUILD/build.log)" >&2; exit 2; }

status=0
mkdir -p "$BUILD/artifacts"
for t in "${TARGETS[@]}"; do
  # New inputs go to a working corpus in the build dir; the committed seeds are read only. A
  # deterministic run starts from the committed seeds alone (an earlier run's finds would change it).
  work="$BUILD/corpus/$t"
  [ -n "$RUNS" ] && rm -rf "$work"
  mkdir -p "$work"
  log="$BUILD/$t.log"
  set +e
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$BUILD/fuzz/$t" "${LIMIT[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$BUILD/artifacts/$t-" "$work" "$ROOT/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  if [ $rc -eq 0 ]; then
    echo "fuzz: $t ran clean: ${execs:-?} executions (${LIMIT_TEXT}; corpus $(ls "$work" | wc -l) inputs)"
  else
    status=1
    echo "fuzz: $t FAILED (exit $rc) after ${execs:-?} executions; log $log" >&2
    grep -E 'ERROR|SUMMARY|fuzz property|Test unit written|artifact' "$log" | head -20 >&2 || true
  fi
done
exit $status
