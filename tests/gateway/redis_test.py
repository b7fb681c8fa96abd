"""Fleet mode on Redis (issue 18, docs/redis.md): two gateways, one redis-server started here
on a free port (Debian's, no persistence), one mock provider. Everything over real HTTP. The TLS
suite starts redis-server with TLS only, on certificates made here by the openssl command."""
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from harness import SLOWDOWN, Stack, free_port, request, wait_for

CHAT = "/v1/chat/completions"


def chat(text):
    return {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": text}]}


def make_certificates(d: pathlib.Path):
    """A throwaway CA (ca.crt), another CA nobody uses (other-ca.crt), and a server certificate
    by the first for IP 127.0.0.1 and DNS localhost (server.crt, server.key), in d."""
    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-days", "2", "-subj", "/CN=llmcache test CA",
        "-keyout", "ca.key", "-out", "ca.crt")
    run("req", "-x509", *ec, "-days", "2", "-subj", "/CN=another CA",
        "-keyout", "other-ca.key", "-out", "other-ca.crt")
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("req", *ec, "-subj", "/CN=server", "-keyout", "server.key", "-out", "server.csr")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.crt")


class RedisServer:
    """redis-server on 127.0.0.1:port, no persistence; stop() and start() again on the same port.
    With tls_dir (make_certificates'): TLS only (--port 0 --tls-port), and a password if given."""

    def __init__(self, port, tls_dir=None, password=None):
        self.port, self.proc, self.tls_dir, self.password = port, None, tls_dir, password

    def start(self):
        args = ["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--logfile", "/dev/null"]
        if self.tls_dir:
            d = self.tls_dir
            args += ["--port", "0", "--tls-port", str(self.port),
                     "--tls-cert-file", str(d / "server.crt"), "--tls-key-file", str(d / "server.key"),
                     "--tls-ca-cert-file", str(d / "ca.crt"), "--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if not wait_for(lambda: self.cli("PING") == "PONG", timeout=10, step=0.02):
            raise RuntimeError("redis-server did not start")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def cli(self, *args):
        base = ["redis-cli", "-p", str(self.port)]
        if self.tls_dir:
            base += ["--tls", "--cacert", str(self.tls_dir / "ca.crt")]
        env = dict(os.environ, REDISCLI_AUTH=self.password) if self.password else None
        p = subprocess.run([*base, *args], capture_output=True, timeout=5, env=env)
        return p.stdout.decode().strip()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"


def metrics(stack):
    """GET /metrics as {series: value}."""
    r = stack.get("/metrics")
    assert r.status == 200, r.body
    out = {}
    for line in r.body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


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
        self.assertLess(visible_ms, 100 * SLOWDOWN)
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
        time.sleep(0.1 * SLOWDOWN)
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

    def test_metrics_show_redis_and_change_when_it_stops(self):
        self.assertEqual(self.post(self.a, "counted").cache_status, "MISS")
        key = "t:entry:" + self.post(self.a, "counted").header("x-llmcache-key")
        self.assertTrue(wait_for(lambda: self.redis.cli("EXISTS", key) == "1", step=0.005))
        self.assertTrue(wait_for(lambda: metrics(self.a)["llmcache_redis_subscribed"] == 1))
        before = metrics(self.a)
        self.assertEqual(before["llmcache_redis_up"], 1)
        self.assertGreater(before["llmcache_redis_commands_total"], 0)
        self.assertGreaterEqual(before["llmcache_redis_writes_total"], 1)
        self.assertGreaterEqual(before["llmcache_redis_leases_taken_total"], 1)
        self.assertGreaterEqual(before["llmcache_redis_messages_published_total"], 1)
        self.assertEqual(before["llmcache_redis_failures_total"], 0)
        # Without Redis: down, unsubscribed, failures counted, then calls rejected at once.
        self.redis.stop()
        for i in range(5):
            self.assertEqual(self.post(self.a, f"while down {i}").status, 200)
        self.assertTrue(wait_for(lambda: metrics(self.a)["llmcache_redis_subscribed"] == 0))
        after = metrics(self.a)
        self.assertEqual(after["llmcache_redis_up"], 0)
        self.assertGreater(after["llmcache_redis_failures_total"], before["llmcache_redis_failures_total"])
        self.assertGreater(after["llmcache_redis_rejected_total"], 0)
        self.assertGreater(after["llmcache_redis_commands_total"], before["llmcache_redis_commands_total"])
        # Back: up again without a restart.
        self.redis.start()
        def up():
            self.post(self.a, f"after {time.monotonic()}")
            m = metrics(self.a)
            return m["llmcache_redis_up"] == 1 and m["llmcache_redis_subscribed"] == 1
        self.assertTrue(wait_for(up, timeout=15, step=0.2))
        # A gateway without Redis has no Redis series.
        plain = Stack()
        self.addCleanup(plain.close)
        self.assertFalse([k for k in metrics(plain) if k.startswith("llmcache_redis_")])


@unittest.skipUnless(shutil.which("redis-server") and shutil.which("redis-cli")
                     and shutil.which("openssl"), "redis-server or openssl not installed (scripts/setup.sh)")
class FleetOnRedisOverTls(unittest.TestCase):
    """rediss://: redis-server with TLS only and a password; a verifies with ?ca= in the URL, b
    with CACHE_REDIS_CA_FILE."""

    PASSWORD = "tls-pass word"

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="llmcache-redis-tls-")
        self.addCleanup(self.tmp.cleanup)
        self.certs = pathlib.Path(self.tmp.name)
        make_certificates(self.certs)
        self.redis = RedisServer(free_port(), tls_dir=self.certs, password=self.PASSWORD).start()
        self.addCleanup(self.redis.stop)
        self.a = Stack({"CACHE_REDIS_URL": self.url(ca=self.certs / "ca.crt"), "CACHE_REDIS_PREFIX": "t:"})
        self.addCleanup(self.a.close)
        self.b = Stack({"CACHE_REDIS_URL": self.url(), "CACHE_REDIS_PREFIX": "t:",
                        "CACHE_REDIS_CA_FILE": str(self.certs / "ca.crt")}, start_gateway=False)
        self.addCleanup(self.b.close)
        self.b.start_gateway(upstream=self.a.upstream)

    def url(self, ca=None, password=PASSWORD):
        from urllib.parse import quote
        u = f"rediss://:{quote(password, safe='')}@127.0.0.1:{self.redis.port}/0"
        return u + (f"?ca={quote(str(ca), safe='')}" if ca else "")

    def post(self, stack, text):
        return request(stack.gateway.port, "POST", CHAT, chat(text))

    def test_stores_hits_and_invalidates_over_tls_with_a_password(self):
        first = self.post(self.a, "over tls")
        self.assertEqual(first.cache_status, "MISS")
        key = "t:entry:" + first.header("x-llmcache-key")
        self.assertTrue(wait_for(lambda: self.redis.cli("EXISTS", key) == "1", step=0.005))
        hit = self.post(self.b, "over tls")
        self.assertEqual(hit.cache_status, "HIT")
        self.assertEqual(hit.header("x-llmcache-layer"), "redis")
        self.assertEqual(hit.json(), first.json())
        self.assertEqual(self.post(self.b, "over tls").header("x-llmcache-layer"), "memory")
        self.assertEqual(self.a.upstream_calls(), 1)
        # Pub/sub over TLS: both subscribed, and a's invalidation reaches b's memory copy.
        for s in (self.a, self.b):
            self.assertTrue(wait_for(lambda: metrics(s)["llmcache_redis_subscribed"] == 1))
        self.b.wait_stored(1)
        r = request(self.a.gateway.port, "POST", "/cache/invalidate", {"model": "openai/gpt-4o-mini"})
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(wait_for(lambda: self.post(self.b, "over tls").cache_status == "MISS",
                                 timeout=5, step=0.05))
        m = metrics(self.b)
        self.assertEqual(m["llmcache_redis_failures_total"], 0)
        self.assertGreaterEqual(m["llmcache_redis_messages_received_total"], 2)  # stored, invalidate

    def test_a_server_certificate_from_another_ca_is_refused_and_the_tiers_below_answer(self):
        c = Stack({"CACHE_REDIS_URL": self.url(ca=self.certs / "other-ca.crt"), "CACHE_REDIS_PREFIX": "t:"},
                  start_gateway=False)
        self.addCleanup(c.close)
        c.start_gateway(upstream=self.a.upstream)
        first = self.post(c, "not trusted")
        self.assertEqual(first.status, 200, first.body)
        self.assertEqual(first.cache_status, "MISS")
        again = self.post(c, "not trusted")
        self.assertEqual(again.cache_status, "HIT")
        self.assertIn(again.header("x-llmcache-layer"), ("memory", "disk"))
        time.sleep(0.3)
        self.assertEqual(self.redis.cli("EXISTS", "t:entry:" + first.header("x-llmcache-key")), "0")
        m = metrics(c)
        self.assertEqual(m["llmcache_redis_up"], 0)
        self.assertGreater(m["llmcache_redis_failures_total"], 0)
        self.assertTrue(wait_for(lambda: b"certificate" in c.gateway_output(), timeout=5),
                        c.gateway_output()[-2000:])
        self.assertNotIn(self.PASSWORD.encode(), c.gateway_output())

    def test_a_wrong_password_over_tls_is_refused_without_echoing_it(self):
        c = Stack({"CACHE_REDIS_URL": self.url(ca=self.certs / "ca.crt", password="wrong-secret-42")},
                  start_gateway=False)
        self.addCleanup(c.close)
        c.start_gateway(upstream=self.a.upstream)
        self.assertEqual(self.post(c, "bad password").status, 200)
        self.assertGreater(metrics(c)["llmcache_redis_failures_total"], 0)
        self.assertTrue(wait_for(lambda: b"AUTH refused: WRONGPASS" in c.gateway_output(), timeout=5),
                        c.gateway_output()[-2000:])
        self.assertNotIn(b"wrong-secret-42", c.gateway_output())

    def test_an_unreadable_ca_file_or_ca_without_tls_stops_the_start_up(self):
        for sets, expected in (
                ({"CACHE_REDIS_URL": self.url(ca=self.certs / "missing.pem")}, "missing.pem"),
                ({"CACHE_REDIS_URL": f"redis://127.0.0.1:{self.redis.port}",
                  "CACHE_REDIS_CA_FILE": str(self.certs / "ca.crt")}, "rediss://")):
            s = Stack(sets, start_gateway=False)
            self.addCleanup(s.close)
            with self.assertRaises(RuntimeError) as e:
                s.start_gateway()
            self.assertIn(expected, str(e.exception))
            self.assertNotIn(self.PASSWORD, str(e.exception))


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
