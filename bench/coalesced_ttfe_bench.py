#!/usr/bin/env python3
"""Time to first event of a coalesced follower against its leader's (issue 17, item 4).

    python3 bench/coalesced_ttfe_bench.py [--rounds 10] [--delay-ms 250] [--gap-ms 100]
    (LLMCACHE_BIN, default build/llmcache)

`llmcache mock-upstream` streams a chat answer (5 events, role, text, finish, usage, [DONE])
--delay-ms apart; per round a new prompt (a miss): the leader's stream starts, and --gap-ms after
its head arrived the follower sends the identical request. Reported: each client's first and
last event from the leader's send, and the follower's first event from its own send, medians
over the rounds (and min/max). Before live coalescing
the follower's first event came only with the leader's last (all at once); now it comes right
after it joins, and its last with the leader's.
"""
import argparse
import http.client
import json
import os
import pathlib
import statistics
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "gateway"))
os.environ.setdefault("LLMCACHE_BIN", str(ROOT / "build" / "llmcache"))
from harness import Stack  # noqa: E402

CHAT = "/v1/chat/completions"


def stream(port, body, headers, out, t0, headed=None):
    out["sent"] = (time.monotonic() - t0) * 1000
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", CHAT, body=json.dumps(body).encode(),
                 headers={"Content-Type": "application/json", **headers})
    res = conn.getresponse()
    out["status"] = res.getheader("x-llmcache-status")
    if headed:
        headed.set()
    first = last = None
    while True:
        piece = res.read1(65536)
        if not piece:
            break
        now = (time.monotonic() - t0) * 1000
        if b"data: " in piece:
            first = now if first is None else first
            last = now
    conn.close()
    out["first"], out["last"] = first, last


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--delay-ms", type=int, default=250)
    ap.add_argument("--gap-ms", type=int, default=100)
    args = ap.parse_args()
    s = Stack()
    try:
        rows = []
        for r in range(args.rounds):
            body = {"model": "gpt-4o-mini", "stream": True,
                    "stream_options": {"include_usage": True},
                    "messages": [{"role": "user", "content": f"ttfe round {r} {time.time()}"}]}
            leader, follower, headed = {}, {}, threading.Event()
            t0 = time.monotonic()
            tl = threading.Thread(target=stream, args=(
                s.gateway.port, body, {"x-mock-chunk-delay-ms": str(args.delay_ms)}, leader, t0,
                headed))
            tl.start()
            headed.wait(30)  # the leader leads: only then does the follower send
            time.sleep(args.gap_ms / 1000)
            tf = threading.Thread(target=stream, args=(s.gateway.port, body, {}, follower, t0))
            tf.start()
            tl.join()
            tf.join()
            assert leader["status"] == "MISS" and follower["status"] == "COALESCED", (leader,
                                                                                    follower)
            # Times are from the leader's send (t0), to compare both on one clock.
            rows.append((leader["first"], leader["last"], follower["first"], follower["last"],
                         follower["first"] - follower["sent"], follower["sent"]))
        calls = s.upstream_calls()
    finally:
        s.close()

    def med(i):
        v = [row[i] for row in rows]
        return f"{statistics.median(v):7.1f} ms (min {min(v):.1f}, max {max(v):.1f})"

    print(f"{args.rounds} rounds, mock events {args.delay_ms} ms apart, follower sent "
          f"{args.gap_ms} ms after the leader's head: {med(5)} after its send; "
          f"{calls} upstream calls")
    print(f"leader   first event {med(0)}   last event {med(1)}   (from the leader's send)")
    print(f"follower first event {med(2)}   last event {med(3)}   (from the leader's send)")
    print(f"follower first event {med(4)}   (from its own send)")


if __name__ == "__main__":
    main()
