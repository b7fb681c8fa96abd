"""A fleet of gateways on one S3 bucket, measured (issue 16, item 5): shared by
tests/gateway/fleet_test.py (assertions) and bench/fleet_bench.py (the figures).

One s3rver (tests/s3/server.mjs, counting the requests it serves), one mock provider (counting its
calls), n gateways (`llmcache serve`, each its own cache dir) on the bucket; a load generator
spreads a repeated-prompt workload over the gateways round-robin, at a steady rate."""
import json
import os
import pathlib
import random
import statistics
import tempfile
import threading
import time

from harness import Process, request
from s3_test import BUCKET, CHAT, S3Server, free_port

MODEL = "openai/gpt-4o-mini"


def chat(text, model=MODEL):
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def workload(requests, distinct, seed=7):
    """`requests` prompts drawn from `distinct` ones (a skewed pick: some questions are asked far
    more often), every one of them asked at least once, in a fixed pseudo-random order."""
    rng = random.Random(seed)
    prompts = [f"fleet workload question {i}" for i in range(distinct)]
    weights = [1.0 / (i + 1) for i in range(distinct)]
    picks = prompts + rng.choices(prompts, weights, k=max(0, requests - distinct))
    rng.shuffle(picks)
    return picks


class CountingS3(S3Server):
    """s3rver with its request counts (server.mjs: "counts" / "reset" lines on stdin)."""

    def _ask(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def counts(self):
        return self._ask("counts")

    def reset_counts(self):
        self._ask("reset")


class FleetRun:
    """n gateways on one bucket and one mock provider. close() stops everything."""

    def __init__(self, n, sets=None, provider_latency_ms=20, root=None):
        self._tmp = tempfile.TemporaryDirectory(prefix="llmcache-fleet-") if root is None else None
        self.root = pathlib.Path(root or self._tmp.name)
        self.logs = self.root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "S3RVER")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "S3RVER")
        self.s3 = CountingS3(self.root / "s3data", free_port()).start()
        self.mock = None
        self.gateways = []
        try:
            self.mock = Process(["mock-upstream", "--listen", "127.0.0.1:0",
                                 "--latency-ms", str(provider_latency_ms)], self.logs, "mock")
            self.sets = {"CACHE_S3_ENDPOINT": self.s3.endpoint, "CACHE_S3_BUCKET": BUCKET}
            self.sets.update(sets or {})
            for i in range(n):
                self.add_gateway()
        except Exception:
            self.close()
            raise

    def add_gateway(self):
        i = len(self.gateways)
        args = ["serve", "--listen", "127.0.0.1:0",
                "--upstream", f"http://127.0.0.1:{self.mock.port}/v1",
                "--cache-dir", str(self.root / f"gateway-{i}")]
        for k, v in self.sets.items():
            args += ["--set", f"{k}={v}"]
        self.gateways.append(Process(args, self.logs, f"gateway-{i}"))

    def close(self):
        for p in self.gateways + [self.mock]:
            if p is not None:
                try:
                    p.stop(timeout=5)
                except Exception:
                    p.kill()
        self.s3.stop()
        if self._tmp:
            self._tmp.cleanup()

    def post(self, i, body, headers=None):
        return request(self.gateways[i].port, "POST", CHAT, body, headers)

    def provider_calls(self):
        return request(self.mock.port, "GET", "/mock/stats").json()["calls"]

    # -- measurements ------------------------------------------------------------------------
    def run_load(self, prompts, rate=20.0, workers=4, gateways=None):
        """Sends prompts in order, request k to gateway k mod n (of `gateways`, default all), at
        `rate` requests per second from `workers` threads. Returns the figures of the run."""
        targets = list(gateways if gateways is not None else range(len(self.gateways)))
        calls0 = self.provider_calls()
        s3_0 = self.s3.counts()
        outcomes, layers, lock = {}, {}, threading.Lock()
        errors = []
        start = time.monotonic()
        next_k = [0]

        def worker():
            while True:
                with lock:
                    k = next_k[0]
                    next_k[0] += 1
                if k >= len(prompts):
                    return
                due = start + k / rate
                if due > time.monotonic():
                    time.sleep(due - time.monotonic())
                r = self.post(targets[k % len(targets)], chat(prompts[k]))
                with lock:
                    if r.status != 200:
                        errors.append(r.status)
                    status = r.cache_status or "?"
                    outcomes[status] = outcomes.get(status, 0) + 1
                    if status == "HIT":
                        layer = r.header("x-llmcache-layer")
                        layers[layer] = layers.get(layer, 0) + 1

        threads = [threading.Thread(target=worker) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.monotonic() - start
        s3_1 = self.s3.counts()
        calls = self.provider_calls() - calls0
        hits = outcomes.get("HIT", 0) + outcomes.get("COALESCED", 0)
        return {
            "gateways": len(targets), "requests": len(prompts), "distinct": len(set(prompts)),
            "seconds": took, "outcomes": outcomes, "hit_layers": layers, "errors": errors,
            "hit_rate": hits / len(prompts), "provider_calls": calls,
            "s3": diff_counts(s3_0, s3_1),
        }

    def visibility(self, n=10, timeout=10.0, tag="visibility"):
        """n new prompts, each sent once to gateway i (a MISS, stored) then to gateway i+1 every
        20 ms with Cache-Control: no-store (looked up, never stored there) until it answers a HIT:
        the seconds from the store's answer to that HIT, one per prompt (None: never within
        timeout)."""
        out = []
        for k in range(n):
            a, b = k % len(self.gateways), (k + 1) % len(self.gateways)
            body = chat(f"{tag} question {k} {time.time()}")
            r = self.post(a, body)
            assert r.status == 200 and r.cache_status == "MISS", (r.status, r.cache_status)
            t0 = time.monotonic()
            seen = None
            while time.monotonic() - t0 < timeout:
                if self.post(b, body, {"cache-control": "no-store"}).cache_status == "HIT":
                    seen = time.monotonic() - t0
                    break
                time.sleep(0.02)
            out.append(seen)
        return out

    def invalidation(self, prompts=3, model="openai/gpt-4.1-mini", timeout=15.0):
        """Each gateway holds copies of `prompts` answers of `model` in memory (stored at gateway
        0, promoted from S3 at the others); gateway 0 invalidates the model
        (POST /cache/invalidate): the seconds until every gateway misses every one of them
        (looked up with Cache-Control: no-store, so a miss stores nothing), per gateway, and the
        reply. None: still served at timeout."""
        bodies = [chat(f"invalidation question {k} {time.time()}", model) for k in range(prompts)]
        for body in bodies:
            assert self.post(0, body).cache_status == "MISS"
        for i in range(1, len(self.gateways)):
            for body in bodies:
                deadline = time.monotonic() + 10
                while self.post(i, body, {"cache-control": "no-store"}).cache_status != "HIT":
                    assert time.monotonic() < deadline, f"gateway {i} never saw the entry"
                    time.sleep(0.05)
        for i in range(len(self.gateways)):  # the copies each gateway serves now
            for body in bodies:
                r = self.post(i, body, {"cache-control": "no-store"})
                assert r.header("x-llmcache-layer") == "memory", (i, r.headers)
        reply = request(self.gateways[0].port, "POST", "/cache/invalidate", {"model": model})
        t0 = time.monotonic()
        left = {i: set(range(prompts)) for i in range(len(self.gateways))}
        reached = {}
        while left and time.monotonic() - t0 < timeout:
            for i in list(left):
                for k in list(left[i]):
                    if self.post(i, bodies[k], {"cache-control": "no-store"}).cache_status != "HIT":
                        left[i].discard(k)
                if not left[i]:
                    reached[i] = time.monotonic() - t0
                    del left[i]
            time.sleep(0.02)
        return {"reply": reply.json() if reply.status == 200 else reply.body,
                "seconds": {i: reached.get(i) for i in range(len(self.gateways))}}


def diff_counts(before, after):
    out = {"total": after["total"] - before["total"], "by_op": {}, "by_area": {}, "by_op_area": {}}
    for group in ("by_op", "by_area", "by_op_area"):
        for k, v in after[group].items():
            d = v - before[group].get(k, 0)
            if d:
                out[group][k] = d
    return out


def summary(values):
    got = [v for v in values if v is not None]
    if not got:
        return "none"
    got.sort()
    p90 = got[min(len(got) - 1, int(round(0.9 * (len(got) - 1))))]
    return (f"p50 {statistics.median(got):.2f} s, p90 {p90:.2f} s, max {got[-1]:.2f} s"
            + (f", {len(values) - len(got)} never" if len(got) < len(values) else ""))
