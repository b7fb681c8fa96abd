#!/usr/bin/env python3
"""The latency a semantic look-up adds to a miss, through the gateway over HTTP on the mock
provider (docs/semantic.md): N distinct misses one at a time (a prompt of 20 words from a shared
vocabulary, so each has a neighbour in its partition), against three gateways in turn: semantic
off, shadow mode (the look-up runs after the answer), and serving at a threshold of 0.99 that
none meets (the embeddings call and the look-up run before the upstream call). Prints the client
latency p50/p90/p99 of each and how long the shadow work took to land after the answers.

    python3 bench/semantic_shadow_bench.py [--misses 300]
"""
import argparse
import os
import pathlib
import random
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "gateway"))
from harness import Stack, wait_for  # noqa: E402

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu "
         "red green blue yellow black white orange purple brown grey").split()


def prompts(n, seed=7):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(20)) + f" q{i}" for i in range(n)]


def run(sets, texts):
    stack = Stack(sets=sets)
    try:
        times = []
        for t in texts:
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": t}]}
            start = time.perf_counter()
            r = stack.post("/v1/chat/completions", body, {"Authorization": "Bearer sk-bench"})
            times.append((time.perf_counter() - start) * 1000)
            assert r.status == 200 and r.cache_status == "MISS", r
        settled = None
        if sets:
            start = time.perf_counter()
            wait_for(lambda: stack.get("/cache/semantic").json()["index"]["vectors"] >= len(texts),
                     timeout=60)
            settled = (time.perf_counter() - start) * 1000
        return times, settled
    finally:
        stack.close()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--misses", type=int, default=300)
    args = ap.parse_args()
    texts = prompts(args.misses)
    cases = [("semantic off", {}), ("shadow", {"CACHE_SEMANTIC_SHADOW": "true"}),
             ("serving at 0.99", {"CACHE_SEMANTIC_THRESHOLD": "0.99"})]
    print(f"{args.misses} misses each, load average {os.getloadavg()[0]:.1f}")
    for name, sets in cases:
        times, settled = run(sets, texts)
        line = (f"{name:16s} p50 {statistics.median(times):6.2f} ms  p90 {pct(times, 90):6.2f}  "
                f"p99 {pct(times, 99):6.2f}")
        if settled is not None:
            line += f"  (index caught up {settled:.0f} ms after the last answer)"
        print(line, flush=True)


if __name__ == "__main__":
    main()
