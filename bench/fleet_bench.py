#!/usr/bin/env python3
"""Three gateways on one bucket against one gateway alone (issue 16, item 5).

    python3 bench/fleet_bench.py [--gateways 3] [--requests 600] [--distinct 60] [--rate 30]
                                 [--visibility 10] [--invalidation-poll 10] [--metrics-interval 10]
    (LLMCACHE_BIN, default build/llmcache; needs `npm ci` in tests/s3)

One s3rver (tests/s3/server.mjs, counting every request it serves), one mock provider (20 ms a
call, counting its calls), default gateway settings but for CACHE_INVALIDATION_POLL and
CACHE_METRICS_INTERVAL (the flags). The load generator sends --requests prompts drawn from
--distinct questions (skewed: question i is asked about 1/(i+1) as often as the first; each one
at least once), --rate a second from 4 threads, request k to gateway k mod n. The same workload is
then sent to one gateway alone (with its own empty bucket). Printed:
  - hit rate and provider calls, fleet against one gateway, and where the fleet's hits came from;
  - S3 requests during the load, by operation and by area, per stored answer (a provider call is
    one stored answer) and per served answer (every request);
  - the time until global/statistics.json counts every hit of the load;
  - cross-gateway visibility: a new entry at gateway i is a hit at gateway i+1 after ... s;
  - invalidation: POST /cache/invalidate at gateway 0, until every gateway misses the copies it
    held in memory.
"""
import argparse
import json
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "gateway"))
os.environ.setdefault("LLMCACHE_BIN", str(ROOT / "build" / "llmcache"))
os.environ.setdefault("AWS_ACCESS_KEY_ID", "S3RVER")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "S3RVER")
from fleet import FleetRun, summary, workload  # noqa: E402


def s3_lines(run):
    s3 = run["s3"]
    ops = s3["by_op"]
    stores = max(1, run["provider_calls"])
    reads = ops.get("GET", 0) + ops.get("HEAD", 0)
    writes = ops.get("PUT", 0) + ops.get("POST", 0) + ops.get("DELETE", 0)
    return [
        f"  S3 requests during the load: {s3['total']} in {run['seconds']:.1f} s "
        f"({s3['total'] / run['requests']:.2f} per served answer)",
        f"    by operation: {json.dumps(ops, sort_keys=True)}",
        f"    by operation and area: {json.dumps(s3['by_op_area'], sort_keys=True)}",
        f"    writes (PUT/DELETE) per stored answer: {writes / stores:.2f}"
        f" ({writes} for {run['provider_calls']} stored)",
        f"    reads (GET/HEAD) per served answer: {reads / run['requests']:.2f}"
        f" ({reads} for {run['requests']} served); LISTs: {ops.get('LIST', 0)}"
        f" ({ops.get('LIST', 0) / run['seconds']:.2f}/s, the journal and invalidation polls)",
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateways", type=int, default=3)
    ap.add_argument("--requests", type=int, default=600)
    ap.add_argument("--distinct", type=int, default=60)
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--visibility", type=int, default=10)
    ap.add_argument("--invalidation-poll", type=int, default=10)
    ap.add_argument("--metrics-interval", type=int, default=10)
    args = ap.parse_args()
    sets = {"CACHE_INVALIDATION_POLL": str(args.invalidation_poll),
            "CACHE_METRICS_INTERVAL": str(args.metrics_interval)}
    prompts = workload(args.requests, args.distinct)

    fleet = FleetRun(args.gateways, sets=sets)
    try:
        time.sleep(2)  # every gateway has listed the bucket once
        run = fleet.run_load(prompts, rate=args.rate)
        hits = run["outcomes"].get("HIT", 0)
        t0 = time.monotonic()
        counted = None
        while time.monotonic() - t0 < 3 * args.metrics_interval + 10:
            body = fleet.s3.keys("cache-index/global/statistics.json")["objects"].get(
                "cache-index/global/statistics.json")
            if body and json.loads(body).get("hits") == hits:
                counted = time.monotonic() - t0
                break
            time.sleep(0.5)
        seen = fleet.visibility(n=args.visibility)
        inv = fleet.invalidation(prompts=3, timeout=3 * args.invalidation_poll + 10)
    finally:
        fleet.close()

    alone = FleetRun(1, sets=sets)
    try:
        time.sleep(2)
        one = alone.run_load(prompts, rate=args.rate)
    finally:
        alone.close()

    print(f"workload: {args.requests} requests over {args.distinct} questions, {args.rate:g}/s, "
          f"provider 20 ms; CACHE_INVALIDATION_POLL={args.invalidation_poll}, "
          f"CACHE_METRICS_INTERVAL={args.metrics_interval}, other settings default")
    for name, r in ((f"fleet of {args.gateways}", run), ("one gateway", one)):
        print(f"{name}: hit rate {r['hit_rate']:.3f} ({r['outcomes']}), provider calls "
              f"{r['provider_calls']} for {r['requests']} requests "
              f"(ideal {r['distinct']}), hits by tier {r['hit_layers']}, errors {len(r['errors'])}")
        for line in s3_lines(r):
            print(line)
    print(f"global/statistics.json counted all {hits} hits of the fleet "
          + (f"{counted:.1f} s after the load" if counted is not None else "never (timeout)"))
    print(f"cross-gateway visibility ({args.visibility} new entries): {summary(seen)}")
    secs = inv["seconds"]
    print(f"invalidation (model, {inv['reply'].get('invalidated') if isinstance(inv['reply'], dict) else inv['reply']}"
          f" entries) reached every gateway's copies: "
          + ", ".join(f"gateway {i} {t:.2f} s" if t is not None else f"gateway {i} never"
                      for i, t in secs.items())
          + f" (poll {args.invalidation_poll} s)")


if __name__ == "__main__":
    main()
