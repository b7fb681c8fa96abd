"""Many gateways, one bucket (issue 16, items 3 and 5), on the real S3 test server (s3rver):
- fleet statistics: every gateway's hits, in every tier, in global/statistics.json within two
  CACHE_METRICS_INTERVALs; GET /cache/analytics?scope=fleet; stored entries' hit_count;
- the fleet: three gateways behind a round-robin load generator share their answers (provider
  calls well below requests), and one invalidation reaches the three.
The figures of the same fleet (hit rates, times, S3 requests) are bench/fleet_bench.py's."""
import json
import os
import pathlib
import tempfile
import time
import unittest

from fleet import FleetRun, summary, workload
from harness import Process, Stack, request
from s3_test import BUCKET, CHAT, S3Server, chat, free_port, wait_for

INTERVAL = 2  # CACHE_METRICS_INTERVAL in these tests (seconds)


def fleet_sets(s3, **extra):
    sets = {"CACHE_S3_ENDPOINT": s3.endpoint, "CACHE_S3_BUCKET": BUCKET,
            "CACHE_S3_TIMEOUT": "2", "CACHE_S3_OUTBOX_RETRY_MAX": "1",
            "CACHE_INVALIDATION_POLL": "1", "CACHE_METRICS_INTERVAL": str(INTERVAL)}
    sets.update(extra)
    return sets


class Fleet:
    """A mock upstream (one Stack) and n gateways on it, each with its own cache dir, one bucket."""

    def __init__(self, test, s3, n, **extra):
        self.stack = Stack(sets=fleet_sets(s3, **extra))
        test.addCleanup(self.stack.close)
        self.gateways = [self.stack.gateway]
        for i in range(1, n):
            args = ["serve", "--listen", "127.0.0.1:0", "--upstream", self.stack.upstream,
                    "--cache-dir", str(test.root / f"gateway-{i}")]
            for k, v in self.stack.sets.items():
                args += ["--set", f"{k}={v}"]
            p = Process(args, self.stack.logs, f"gateway-{i}")
            test.addCleanup(p.stop)
            self.gateways.append(p)

    def post(self, i, body, headers=None):
        return request(self.gateways[i].port, "POST", CHAT, body, headers)

    def get(self, i, path):
        return request(self.gateways[i].port, "GET", path)

    def upstream_calls(self):
        return self.stack.upstream_calls()


class FleetTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.environ["AWS_ACCESS_KEY_ID"] = "S3RVER"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "S3RVER"

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="llmcache-fleet-test-")
        self.root = pathlib.Path(self.tmp.name)
        self.s3 = S3Server(self.root / "s3data", free_port()).start()
        self.addCleanup(self.tmp.cleanup)
        self.addCleanup(self.s3.stop)

    def object(self, key):
        """The JSON of one object as an independent client reads it; None when absent, or when
        the read caught s3rver rewriting it (it overwrites an object's file in place, so a GET
        during a PUT can return part of it; the callers poll)."""
        body = self.s3.keys(key)["objects"].get(key)
        try:
            return json.loads(body) if body is not None else None
        except json.JSONDecodeError:
            return None

    def global_statistics(self):
        return self.object("cache-index/global/statistics.json") or {}

    def metadata_of(self, cache_id):
        found = self.s3.keys("llm-cache/")
        for key, body in found["objects"].items():
            if key.endswith(f"/{cache_id}.metadata.json"):
                return json.loads(body)
        return None


class FleetStatistics(FleetTestCase):
    def test_global_statistics_count_every_hit_of_every_gateway_in_every_tier(self):
        # a keeps one entry in memory, so that its second prompt pushes the first to disk.
        fleet = Fleet(self, self.s3, 2, CACHE_MEMORY_ENTRIES="1")
        a, b = 0, 1
        hits, tiers = 0, {}

        def served(resp):
            nonlocal hits
            self.assertEqual(resp.status, 200, resp.body)
            if resp.cache_status == "HIT":
                hits += 1
                layer = resp.header("x-llmcache-layer")
                tiers[layer] = tiers.get(layer, 0) + 1
            return resp

        # The provider takes 50 ms for it: what each hit saves.
        first = served(fleet.post(a, chat("fleet question one"), {"x-mock-latency-ms": "50"}))
        self.assertEqual(first.cache_status, "MISS")
        for _ in range(3):
            served(fleet.post(a, chat("fleet question one")))  # memory hits
        served(fleet.post(a, chat("fleet question two")))  # a MISS: pushes one out of memory
        fleet.stack.wait_stored(2)
        served(fleet.post(a, chat("fleet question one")))  # from disk
        key = first.header("x-llmcache-key")
        entry = next(e for e in fleet.get(a, "/cache/entries").json()["data"] if e["cache_key"] == key)

        # The stored entry's hit_count and last_accessed in the bucket: a's 4 hits, written in a
        # batch at a's next flush (the metadata object; the entry object is written once).
        meta = wait_for(lambda: (m := self.metadata_of(entry["cache_id"])) and m.get("hit_count") == 4 and m,
                        timeout=2 * INTERVAL + 5, step=0.5)
        self.assertTrue(meta, self.metadata_of(entry["cache_id"]))
        self.assertGreater(meta["last_accessed"], meta["response_timestamp"])

        # b: the first answer through the bucket (an S3 hit), then from its memory.
        time.sleep(2.5)  # another gateway's new entry is an S3 hit within 2 s (item 2)
        self.assertEqual(served(fleet.post(b, chat("fleet question one"))).cache_status, "HIT")
        for _ in range(2):
            served(fleet.post(b, chat("fleet question one")))
        self.assertIn("memory", tiers)
        self.assertIn("disk", tiers)
        self.assertIn("s3", tiers)
        self.assertEqual(fleet.upstream_calls(), 2)

        # Within two metrics intervals of the last hit, the bucket's merged statistics count
        # every one of them. The time is taken when a read that sees them all ends: it also
        # covers that read (an AWS SDK client started in Node, up to a few seconds on a busy
        # machine).
        last_hit = time.monotonic()
        stats = {}
        while time.monotonic() - last_hit < 2 * INTERVAL + 10:
            stats = self.global_statistics()
            if stats.get("hits") == hits:
                break
            time.sleep(0.2)
        took = time.monotonic() - last_hit
        self.assertEqual(stats.get("hits"), hits, stats)
        self.assertLessEqual(took, 2 * INTERVAL + 3, f"counted after {took:.1f} s")
        for tier, n in tiers.items():
            self.assertEqual(stats["hits_by_tier"].get(tier), n, stats["hits_by_tier"])
        self.assertEqual(len(stats["by_instance"]), 2, stats["by_instance"])
        self.assertEqual(sorted(p["hits"] for p in stats["by_instance"].values()), [2 + 1, 4])
        model = stats["by_model"]["openai/gpt-4o-mini"]
        self.assertEqual(model["hits"], hits)
        self.assertEqual(stats["by_platform"]["default"]["hits"], hits)
        self.assertGreater(stats["cost_saved_usd"], 0)
        self.assertGreaterEqual(stats["latency_saved_ms"], 50 * hits)
        # The S3 tier's own operations stay apart: only b's one S3 lookup hit.
        self.assertEqual(stats["counts"]["hits"], 1)

        # The fleet view at either gateway: the same merged figures, each gateway's part fresh.
        fleet_view = fleet.get(b, "/cache/analytics?scope=fleet")
        self.assertEqual(fleet_view.status, 200, fleet_view.body)
        view = fleet_view.json()
        self.assertEqual(view["scope"], "fleet")
        self.assertEqual(view["hits"], hits)
        self.assertEqual(view["stale_instances"], 0)
        self.assertTrue(all(p["fresh"] for p in view["by_instance"].values()), view["by_instance"])
        # The default stays this gateway's own figures.
        own = fleet.get(b, "/cache/analytics").json()
        self.assertNotIn("scope", own)
        self.assertEqual(fleet.get(b, "/cache/analytics?scope=galaxy").status, 400)

        # b's hits are added to the same metadata object: all 7 of the first answer.
        meta = wait_for(lambda: (m := self.metadata_of(entry["cache_id"])) and m.get("hit_count") == 7 and m,
                        timeout=2 * INTERVAL + 5, step=0.5)
        self.assertTrue(meta, self.metadata_of(entry["cache_id"]))


class FleetOfThree(unittest.TestCase):
    """Three gateways, one bucket, a round-robin load generator (bench/fleet_bench.py measures
    the same fleet with more requests and prints the figures)."""

    def test_three_gateways_share_answers_count_every_hit_and_all_drop_an_invalidated_entry(self):
        fleet = FleetRun(3, sets={"CACHE_S3_TIMEOUT": "2", "CACHE_S3_OUTBOX_RETRY_MAX": "1",
                                  "CACHE_INVALIDATION_POLL": "1",
                                  "CACHE_METRICS_INTERVAL": str(INTERVAL)})
        self.addCleanup(fleet.close)
        time.sleep(1.5)  # every gateway has listed the bucket once (journal, invalidations)

        # 120 requests over 20 questions, 30 a second, spread over the three gateways.
        prompts = workload(120, 20)
        run = fleet.run_load(prompts, rate=30)
        self.assertEqual(run["errors"], [], run)
        # Each question costs one provider call, plus those asked again at another gateway
        # before that one could see the first answer (within about a second): well below the
        # 120 requests, as one gateway alone would be (20).
        self.assertGreaterEqual(run["provider_calls"], 20, run)
        self.assertLessEqual(run["provider_calls"], 60, run)
        self.assertGreater(run["hit_layers"].get("s3", 0), 0, run)  # answers crossed gateways
        hits = run["outcomes"].get("HIT", 0)

        # Every hit of the three, whatever the tier, in the bucket's merged statistics within
        # two metrics intervals.
        def global_hits():
            body = fleet.s3.keys("cache-index/global/statistics.json")["objects"].get(
                "cache-index/global/statistics.json")
            try:
                return json.loads(body).get("hits") if body else None
            except json.JSONDecodeError:
                # s3rver overwrites an object's file in place: a GET during a PUT can read part
                # of it (a fresh-clone run did). A real S3 serves the old or the new object; a
                # gateway that wrote a torn one would never match below.
                return None
        self.assertTrue(wait_for(lambda: global_hits() == hits, timeout=2 * INTERVAL + 5, step=0.3),
                        f"global hits {global_hits()} != {hits}")

        # A new entry is a hit at another gateway within 2 s (issue 16, item 2).
        seen = fleet.visibility(n=3)
        self.assertTrue(all(t is not None and t <= 2.0 for t in seen), summary(seen))

        # One invalidation at gateway 0 reaches the copies every gateway holds in memory within
        # one poll (1 s here), with room for the poll's own S3 round trips.
        inv = fleet.invalidation(prompts=2)
        self.assertEqual(inv["reply"]["invalidated"], 2, inv)
        for i, took in inv["seconds"].items():
            self.assertIsNotNone(took, f"gateway {i} still serves the invalidated entries: {inv}")
            self.assertLessEqual(took, 3.0, inv)


if __name__ == "__main__":
    unittest.main()
