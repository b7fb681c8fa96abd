#!/usr/bin/env python3
"""Soak test (issue 15; not run by CI): mixed traffic against one gateway for a while, with
memory and descriptors sampled over time, every answer checked.

    python3 bench/soak.py [--seconds 600] [--workers 8] [--prompts 2000]
    (LLMCACHE_BIN, default build/llmcache; the S3 server from tests/s3 via npm, as the tests do)

The stack: `llmcache mock-upstream`, the S3-compatible test server (s3rver), `llmcache serve`
on memory + disk + S3 (async writes). Traffic, from --workers threads: chat requests over a
hot pool of prompts (90%: hits once warm) and new ones (10%: misses), a quarter of them
streamed, some streams abandoned halfway (cancels), and every 15 s an invalidation of one tag
group. Once, a
third of the way in, the S3 server is stopped for 10 s and started again.

A wrong answer is an answer that is not the provider's answer for that request: the mock
answers "Mock answer #N to: <question>", so every answer must name its own question, and
every HIT must be an answer the provider gave for that prompt (checked at the end against all
answers seen; a HIT of an unseen answer for a prompt whose MISS stream was abandoned is counted
apart, as unverified: that answer was never read). Reported: RSS (split: RssAnon, the heap, where a leak shows; RssFile, mapped
files, reclaimable), open descriptors and the cache's background writer queue (from /metrics,
gauges refreshed every 5 s) over time, requests by outcome, errors by kind, wrong answers. Flat
memory is the target.
"""
import argparse
import http.client
import json
import os
import pathlib
import random
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "gateway"))
os.environ.setdefault("LLMCACHE_BIN", str(ROOT / "build" / "llmcache"))
os.environ["AWS_ACCESS_KEY_ID"] = "S3RVER"
os.environ["AWS_SECRET_ACCESS_KEY"] = "S3RVER"
from harness import Stack, free_port, request  # noqa: E402

BUCKET = "llmcache-test"
CHAT = "/v1/chat/completions"

class S3:
    def __init__(self, data_dir, port):
        self.data_dir, self.port, self.proc = data_dir, port, None

    def start(self):
        self.proc = subprocess.Popen(["bash", str(ROOT / "tests/s3/run-server.sh"), "--dir",
                                      str(self.data_dir), "--port", str(self.port)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        if "listening" not in line:
            raise RuntimeError("s3rver did not start: " + line)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def question_of(prompt):
    return f"soak prompt {prompt}"


def body_of(prompt, stream):
    b = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question_of(prompt)}]}
    if stream:
        b["stream"] = True
    return b


def assemble_sse(raw):
    text = ""
    complete = False
    for line in raw.split(b"\n"):
        if not line.startswith(b"data: "):
            continue
        data = line[6:].strip()
        if data == b"[DONE]":
            complete = True
            continue
        for choice in json.loads(data).get("choices", []):
            text += choice.get("delta", {}).get("content") or ""
    return text, complete


class Soak:
    def __init__(self, args):
        self.args = args
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.outcomes = Counter()
        self.errors = Counter()
        self.wrong = []
        self.seen = defaultdict(set)      # prompt -> answers the provider gave (MISS, REFRESH)
        self.hits = []                    # (prompt, answer) of every HIT / COALESCED
        self.samples = []
        self.fresh = 0
        self.writer = {}
        # Prompts with an abandoned MISS stream: its answer, never read here, may still be stored
        # (the gateway stalled, the rest of the stream arrived in one piece and went out in one
        # write that succeeded after the client left: 10 of 10 with the gateway SIGSTOPped for
        # 0.5 s), so a HIT of an answer not seen here names its prompt but cannot be checked.
        self.abandoned = Counter()
        self.unverified = []

    def pick(self):
        # 90%: a hot pool (hits once warm); 10%: a prompt never asked before (a miss, stored,
        # evicting older entries from the bounded memory and disk tiers).
        if random.random() < 0.9:
            return random.randrange(self.args.prompts)
        with self.lock:
            self.fresh += 1
            return self.args.prompts + self.fresh

    def one(self, port):
        prompt = self.pick()
        stream = random.random() < 0.25
        tag = f"g{prompt % 10}"
        headers = {"Authorization": "Bearer soak", "x-llmcache-tags": tag,
                   "Content-Type": "application/json"}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            if stream and random.random() < 0.1:
                # A client that walks away mid-stream (the mock paces its events).
                headers["x-mock-chunk-delay-ms"] = "20"
                conn.request("POST", CHAT, json.dumps(body_of(prompt, True)), headers)
                res = conn.getresponse()
                res.read(64)
                with self.lock:
                    self.outcomes["CANCELLED"] += 1
                    if res.getheader("x-llmcache-status") == "MISS":
                        self.abandoned[prompt] += 1
                return
            conn.request("POST", CHAT, json.dumps(body_of(prompt, stream)), headers)
            res = conn.getresponse()
            raw = res.read()
            status = res.getheader("x-llmcache-status", "?")
            if res.status != 200:
                with self.lock:
                    self.errors[f"{res.status} {status}"] += 1
                return
            if stream:
                answer, complete = assemble_sse(raw)
                if not complete:
                    with self.lock:
                        self.errors["incomplete stream"] += 1
                    return
            else:
                answer = json.loads(raw)["choices"][0]["message"]["content"]
            with self.lock:
                self.outcomes[status] += 1
                if not answer.endswith("to: " + question_of(prompt)):
                    self.wrong.append((prompt, status, answer[:120]))
                elif status in ("HIT", "COALESCED"):
                    self.hits.append((prompt, answer))
                else:
                    self.seen[prompt].add(answer)
        except (OSError, http.client.HTTPException, ValueError) as e:
            with self.lock:
                self.errors[type(e).__name__] += 1
        finally:
            conn.close()

    def worker(self, port):
        while not self.stop.is_set():
            self.one(port)

    def invalidator(self, port):
        while not self.stop.wait(15):
            group = random.randrange(10)
            try:
                res = request(port, "POST", "/cache/invalidate", {"tag": f"g{group}"},
                              {"Content-Type": "application/json"}, timeout=60)
            except OSError as e:
                with self.lock:
                    self.errors[f"invalidate {type(e).__name__}"] += 1
                continue
            with self.lock:
                self.outcomes["INVALIDATIONS"] += 1
                if res.status != 200:
                    self.errors[f"invalidate {res.status}"] += 1

    WRITER = {"llmcache_cache_writer_backlog_tasks": "tasks",
              "llmcache_cache_writer_backlog_bytes": "bytes",
              "llmcache_cache_writer_skipped_promotions_total": "skipped_promotions",
              'llmcache_tier_errors_total{tier="memory",op="insert"}': "skipped_stores"}

    def writer_backlog(self, port):
        # The cache's background writer queue (tasks, bytes) from /metrics; None if not answered.
        # Kept: the last answer's skipped stores (memory insert errors) and promotions.
        try:
            res = request(port, "GET", "/metrics", timeout=10)
            values = {}
            for line in res.body.decode().splitlines():
                name, _, value = line.rpartition(" ")
                if name in self.WRITER:
                    values[self.WRITER[name]] = int(float(value))
            self.writer = values
            return (values.get("tasks", 0), values.get("bytes", 0))
        except (OSError, ValueError):
            return None

    def sampler(self, pid, port, t0):
        while True:
            # VmRSS split: RssAnon (heap: a leak shows here), RssFile (mapped files: reclaimable).
            status = {}
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    name, _, value = line.partition(":")
                    if name in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                        status[name] = int(value.split()[0])
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            backlog = self.writer_backlog(port)
            with self.lock:
                total = sum(v for k, v in self.outcomes.items() if k != "INVALIDATIONS")
                misses = self.outcomes["MISS"]
                self.samples.append((time.monotonic() - t0, status.get("VmRSS", 0),
                                     status.get("RssAnon", 0), status.get("RssFile", 0), fds,
                                     total, misses, sum(self.errors.values()), backlog))
            if self.stop.wait(10):
                return

    def run(self):
        data = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"llmcache-soak-{os.getpid()}"
        # The gauges (the writer queue the sampler reads from /metrics) refreshed every 5 s.
        sets = {"CACHE_MEMORY_ENTRIES": "500", "CACHE_DISK_ENTRIES": "1500",
                "CACHE_METRICS_INTERVAL": "5"}
        s3 = S3(data, free_port())
        if not self.args.no_s3:
            s3.start()
            sets.update({"CACHE_S3_ENDPOINT": f"http://127.0.0.1:{s3.port}",
                         "CACHE_S3_BUCKET": BUCKET, "CACHE_S3_TIMEOUT": "2",
                         "CACHE_S3_OUTBOX_RETRY_MAX": "2"})
        stack = Stack(sets)
        try:
            port, pid = stack.gateway.port, stack.gateway.proc.pid
            t0 = time.monotonic()
            threads = [threading.Thread(target=self.worker, args=(port,)) for _ in range(self.args.workers)]
            threads.append(threading.Thread(target=self.invalidator, args=(port,)))
            sampler = threading.Thread(target=self.sampler, args=(pid, port, t0))
            for t in threads + [sampler]:
                t.start()
            restart_at = self.args.seconds / 3
            restarted = False
            while time.monotonic() - t0 < self.args.seconds:
                time.sleep(1)
                if not restarted and not self.args.no_s3 and time.monotonic() - t0 >= restart_at:
                    s3.stop()
                    time.sleep(10)
                    s3.start()
                    restarted = True
            self.stop.set()
            for t in threads + [sampler]:
                t.join(60)
            alive = stack.gateway.proc.poll() is None
        finally:
            stack.close()
            s3.stop()
        # A HIT must be one of the provider's answers for its prompt.
        for prompt, answer in self.hits:
            if answer in self.seen[prompt]:
                continue
            if self.abandoned[prompt]:
                self.unverified.append((prompt, answer[:120]))
            else:
                self.wrong.append((prompt, "HIT (never given by the provider)", answer[:120]))
        self.report(alive)
        return 0 if not self.wrong and alive else 1

    def report(self, alive):
        print("   t(s)   RSS(MiB)   anon(MiB)   file(MiB)   fds   requests   misses   errors"
              "   writer queue (tasks, MiB)")
        for t, rss, anon, file, fds, total, misses, errs, backlog in self.samples:
            queue = f"{backlog[0]:8d} {backlog[1] / 2**20:8.1f}" if backlog else "       ?"
            print(f"{t:7.0f} {rss / 1024:10.1f} {anon / 1024:11.1f} {file / 1024:11.1f} {fds:5d}"
                  f" {total:10d} {misses:8d} {errs:8d}   {queue}")
        first, last = self.samples[0], self.samples[-1]
        print(json.dumps({
            "seconds": self.args.seconds,
            "rss_mib_start": round(first[1] / 1024, 1), "rss_mib_end": round(last[1] / 1024, 1),
            "rss_mib_max": round(max(s[1] for s in self.samples) / 1024, 1),
            "anon_mib_start": round(first[2] / 1024, 1), "anon_mib_end": round(last[2] / 1024, 1),
            "file_mib_start": round(first[3] / 1024, 1), "file_mib_end": round(last[3] / 1024, 1),
            "fds_start": first[4], "fds_end": last[4], "fds_max": max(s[4] for s in self.samples),
            "writer": self.writer,
            "outcomes": dict(self.outcomes), "errors": dict(self.errors),
            "wrong_answers": len(self.wrong),
            "hits_unverified_abandoned_stream": len(self.unverified),
            "gateway_alive_at_end": alive,
        }, indent=2))
        for w in self.wrong[:20]:
            print("WRONG:", w)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--prompts", type=int, default=500, help="the hot pool")
    ap.add_argument("--no-s3", action="store_true", help="memory + disk only")
    sys.exit(Soak(ap.parse_args()).run())


if __name__ == "__main__":
    main()
