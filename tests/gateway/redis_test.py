"""Fleet mode on Redis (issue 18, docs/redis.md): two gateways, one redis-server started here
on a free port (Debian's, no persistence), one mock provider. Everything over real HTTP."""
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from harness import Stack, free_port, request, wait_for

CHAT = "/v1/chat/completions"


def chat(text):
    return {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": text}]}


class RedisServer:
    """redis-server on 127.0.0.1:port, no persistence; stop() and start() again on the same port."""

    def __init__(self, port):
        self.port, self.proc = port, None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--logfile", "/dev/null"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for(lambda: self.cli("PING") == "PONG", timeout=10, step=0.02):
            raise RuntimeError("redis-server did not start")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def cli(self, *args):
        p = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, timeout=5)
        return p.stdout.decode().strip()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"


@unittest.skipUnless(shutil.which("redis-server") and shutil.which("redis-cli"),
                     "redis-server not installed (scripts/setup.sh)")
class FleetOnRedis(unittest.TestCase):
    def setUp(self):
        self.redis = RedisServer(free_port()).start()
        self.addCleanup(self.redis.stop)
        self.a = Stack(self.sets())
        self.addCleanup(self.a.close)
        # b: its own cache dir, the same provider (a's mock counts every call of the fleet).
        self.b = Stack(self.sets(), start_gateway=False)
        self.addCleanup(self.b.close)
        self.b.start_gateway(upstream=self.a.upstream)

    def sets(self, **extra):
        sets = {"CACHE_REDIS_URL": self.redis.url, "CACHE_REDIS_PREFIX": "t:"}
        sets.update(extra)
        return sets

    def calls(self):
        return self.a.upstream_calls()

    def post(self, stack, text, headers=None):
        return request(stack.gateway.port, "POST", CHAT, chat(text), headers)

    def test_a_prompt_stored_through_a_is_a_hit_on_b_from_redis_within_100ms(self):
        first = self.post(self.a, "shared question")
        self.assertEqual(first.cache_status, "MISS")
        answered = time.monotonic()
        key = "t:entry:" + first.header("x-llmcache-key")
        self.assertTrue(wait_for(lambda: self.redis.cli("EXISTS", key) == "1", timeout=5, step=0.005))
        visible_ms = (time.monotonic() - answered) * 1000
        print(f"\n  redis visibility after the MISS's answer: {visible_ms:.1f} ms")
        self.assertLess(visible_ms, 100)
        hit = self.post(self.b, "shared question")
        self.assertEqual(hit.cache_status, "HIT")
        self.assertEqual(hit.header("x-llmcache-layer"), "redis")
        self.assertEqual(hit.json(), first.json())
        # Promoted: the next one on b is a memory hit.
        self.assertEqual(self.post(self.b, "shared question").header("x-llmcache-layer"), "memory")
        self.assertEqual(self.calls(), 1)
        # CACHE_TTL's default: never expires, so no TTL (Redis's maxmemory-policy bounds it).
        self.assertEqual(self.redis.cli("PTTL", key), "-1")
        # x-llmcache-ttl: the Redis TTL is the entry's expiry.
        timed = self.post(self.a, "timed question", {"x-llmcache-ttl": "600"})
        timed_key = "t:entry:" + timed.header("x-llmcache-key")
        self.assertTrue(wait_for(lambda: self.redis.cli("EXISTS", timed_key) == "1", timeout=5, step=0.005))
        ttl = int(self.redis.cli("PTTL", timed_key))
        self.assertGreater(ttl, 590 * 1000)
        self.assertLessEqual(ttl, 600 * 1000)
        # No credential reaches Redis.
        self.post(self.a, "with a key", {"Authorization": "Bearer sk-very-secret-123"})
        dump = subprocess.run(["redis-cli", "-p", str(self.redis.port), "--no-raw", "KEYS", "*"],
                              capture_output=True).stdout
        values = b"".join(subprocess.run(["redis-cli", "-p", str(self.redis.port), "GET", k],
                                         capture_output=True).stdout
                          for k in self.redis.cli("KEYS", "t:entry:*").split())
        self.assertNotIn(b"sk-very-secret-123", dump + values)

    def test_twenty_identical_concurrent_requests_over_two_gateways_make_one_provider_call(self):
        results = []
        lock = threading.Lock()

        def one(i):
            stack = self.a if i % 2 == 0 else self.b
            r = self.post(stack, "the twenty", {"x-mock-latency-ms": "400"})
            with lock:
                results.append(r)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(results), 20)
        self.assertTrue(all(r.status == 200 for r in results), [r.status for r in results])
        bodies = {json.dumps(r.json(), sort_keys=True) for r in results}
        self.assertEqual(len(bodies), 1)
        self.assertEqual(self.calls(), 1, sorted(r.cache_status for r in results))
        statuses = sorted(r.cache_status for r in results)
        self.assertEqual(statuses.count("MISS"), 1, statuses)

    def test_a_stream_waiting_on_the_other_gateways_lease_replays_its_entry(self):
        body = {**chat("streamed across"), "stream": True}
        results = {}

        def lead_on_a():
            results["a"] = request(self.a.gateway.port, "POST", CHAT, body,
                                   {"x-mock-chunk-delay-ms": "100"})

        t = threading.Thread(target=lead_on_a)
        t.start()
        # a holds the lease, its stream under way (waited for, not slept on: under load a fixed
        # 150 ms was sometimes too short, and b then took the lease itself: a MISS).
        self.assertTrue(wait_for(lambda: self.redis.cli("KEYS", "*lease:*"), timeout=10, step=0.005),
                        "a never took the lease")
        results["b"] = request(self.b.gateway.port, "POST", CHAT, body)
        t.join()
        self.assertEqual(results["a"].cache_status, "MISS")
        self.assertEqual(results["b"].cache_status, "HIT")
        self.assertEqual(results["b"].header("x-llmcache-layer"), "redis")
        self.assertIn("text/event-stream", results["b"].header("content-type"))
        self.assertEqual(results["b"].body, results["a"].body)
        self.assertEqual(self.calls(), 1)

    def test_a_failed_call_is_not_handed_to_the_other_gateway(self):
        results = {}

        def fail_on_a():
            results["a"] = self.post(self.a, "flaky", {"x-mock-status": "500", "x-mock-latency-ms": "300"})

        t = threading.Thread(target=fail_on_a)
        t.start()
        time.sleep(0.1)  # a holds the lease
        results["b"] = self.post(self.b, "flaky")
        t.join()
        self.assertEqual(results["a"].status, 500)
        self.assertEqual(results["b"].status, 200)  # its own call, not a's failure
        self.assertEqual(results["b"].cache_status, "MISS")
        self.assertEqual(self.calls(), 2)

    def test_an_invalidation_at_a_is_a_miss_at_b_within_100ms(self):
        self.post(self.a, "to forget")
        key = "t:entry:" + self.post(self.a, "to forget").header("x-llmcache-key")
        self.assertTrue(wait_for(lambda: self.redis.cli("EXISTS", key) == "1", step=0.005))
        self.assertEqual(self.post(self.b, "to forget").header("x-llmcache-layer"), "redis")
        self.assertEqual(self.post(self.b, "to forget").header("x-llmcache-layer"), "memory")
        self.b.wait_stored(1)  # b's index has the promoted copy's row
        r = request(self.a.gateway.port, "POST", "/cache/invalidate", {"model": "openai/gpt-4o-mini"})
        self.assertEqual(r.status, 200, r.body)
        time.sleep(0.1)
        again = self.post(self.b, "to forget")
        self.assertEqual(again.cache_status, "MISS", again.headers)
        self.assertEqual(self.redis.cli("EXISTS", key), "1")  # b's new answer

    def test_redis_stopped_mid_run_every_request_is_answered_and_redis_is_used_again_after(self):
        self.post(self.a, "before the outage")
        self.redis.stop()
        # Every request answered: hits from a's own tiers, misses by the provider.
        for i in range(10):
            self.assertEqual(self.post(self.a, "before the outage").cache_status, "HIT")
            for stack in (self.a, self.b):
                r = self.post(stack, f"during the outage {i}")
                self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.post(self.b, "during the outage 3").cache_status, "HIT")  # its disk
        self.redis.start()  # empty, same port
        # Back without a restart: a new answer through a reaches b from Redis.
        def shared():
            text = f"after the outage {time.monotonic()}"
            self.post(self.a, text)
            time.sleep(0.2)
            r = self.post(self.b, text)
            return r.header("x-llmcache-layer") == "redis"
        self.assertTrue(wait_for(shared, timeout=15, step=0.2))

    def test_rediss_is_refused_at_start_up_with_a_clear_error(self):
        s = Stack({"CACHE_REDIS_URL": "rediss://user:hunter2@127.0.0.1:6380"}, start_gateway=False)
        self.addCleanup(s.close)
        with self.assertRaises(RuntimeError) as e:
            s.start_gateway()
        self.assertIn("TLS", str(e.exception))
        self.assertNotIn("hunter2", str(e.exception))


@unittest.skipUnless(shutil.which("redis-server") and shutil.which("redis-cli"),
                     "redis-server not installed (scripts/setup.sh)")
class FleetOnRedisAndS3(unittest.TestCase):
    """Redis in front of S3: with Redis down, S3's invalidation records still reach the others."""

    def setUp(self):
        from s3_test import BUCKET, NODE, S3Server
        if not NODE.exists():
            self.skipTest("tests/s3/node_modules missing (npm ci in tests/s3)")
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "S3RVER")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "S3RVER")
        self.tmp = tempfile.TemporaryDirectory(prefix="llmcache-redis-s3-")
        self.addCleanup(self.tmp.cleanup)
        self.s3 = S3Server(pathlib.Path(self.tmp.name) / "s3", free_port()).start()
        self.addCleanup(self.s3.stop)
        self.redis = RedisServer(free_port()).start()
        self.addCleanup(self.redis.stop)
        sets = {"CACHE_REDIS_URL": self.redis.url, "CACHE_S3_ENDPOINT": self.s3.endpoint,
                "CACHE_S3_BUCKET": BUCKET, "CACHE_S3_TIMEOUT": "2", "CACHE_INVALIDATION_POLL": "1",
                "CACHE_S3_DIRECTORY_REFRESH": "1"}
        self.a = Stack(sets)
        self.addCleanup(self.a.close)
        self.b = Stack(sets, start_gateway=False)
        self.addCleanup(self.b.close)
        self.b.start_gateway(upstream=self.a.upstream)

    def post(self, stack, text):
        return request(stack.gateway.port, "POST", CHAT, chat(text))

    def test_a_redis_hit_first_and_with_redis_down_s3_polling_carries_the_invalidation(self):
        self.assertEqual(self.post(self.a, "both tiers").cache_status, "MISS")
        time.sleep(0.1)
        self.assertEqual(self.post(self.b, "both tiers").header("x-llmcache-layer"), "redis")
        self.b.wait_stored(1)
        time.sleep(1.2)  # b has listed the (empty) invalidation records once: primed
        self.redis.stop()
        r = request(self.a.gateway.port, "POST", "/cache/invalidate", {"model": "openai/gpt-4o-mini"})
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(wait_for(lambda: self.post(self.b, "both tiers").cache_status == "MISS",
                                 timeout=10, step=0.2),
                        "b kept serving an entry invalidated while Redis was down")


if __name__ == "__main__":
    unittest.main()
