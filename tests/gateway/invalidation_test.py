"""Invalidation and the admin API through the gateway, over real HTTP: each criterion removes
exactly the matching entries from memory and disk (a restart proves disk), a dry run changes
nothing, an invalidation that arrives while a matching miss is in flight wins, bad input is a
400 that invalidates nothing, and the admin token is enforced."""
import json
import re
import threading
import time
import unittest

from harness import Stack, request, run_cli

CHAT = "/v1/chat/completions"


def chat(text, model="gpt-4o-mini"):
    return {"model": model, "messages": [{"role": "user", "content": text}]}


class Invalidation(unittest.TestCase):
    def setUp(self):
        self.s = Stack()
        self.addCleanup(self.s.close)

    def admin(self, method, path, body=None, headers=None):
        return request(self.s.gateway.port, method, path, body, headers)

    def invalidate(self, criterion, **extra):
        body = dict(criterion)
        body.update(extra)
        return self.admin("POST", "/cache/invalidate", body)

    def seed(self):
        """Five entries: two models, a tag, a namespace. Returns their responses by name."""
        out = {}
        out["mini-a"] = self.s.post(CHAT, chat("alpha"))
        out["mini-b"] = self.s.post(CHAT, chat("beta"), {"x-llmcache-tags": "team-x,prod"})
        out["4o-a"] = self.s.post(CHAT, chat("alpha", "gpt-4o"))
        out["4o-ns"] = self.s.post(CHAT, chat("gamma", "gpt-4o"), {"x-llmcache-namespace": "eval"})
        out["claude"] = self.s.post(CHAT, chat("delta", "claude-3-5-haiku"))
        for r in out.values():
            self.assertEqual(r.cache_status, "MISS")
        self.s.wait_stored(len(out))  # disk writes and index upserts happen in the background
        return out

    REQUESTS = {
        "mini-a": (chat("alpha"), {}),
        "mini-b": (chat("beta"), {"x-llmcache-tags": "team-x,prod"}),
        "4o-a": (chat("alpha", "gpt-4o"), {}),
        "4o-ns": (chat("gamma", "gpt-4o"), {"x-llmcache-namespace": "eval"}),
        "claude": (chat("delta", "claude-3-5-haiku"), {}),
    }

    def statuses(self):
        return {name: self.s.post(CHAT, body, h).cache_status for name, (body, h) in self.REQUESTS.items()}

    def check_criterion(self, criterion, gone, restart=False):
        self.seed()
        r = self.invalidate(criterion)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["invalidated"], len(gone), r.body)
        if restart:  # what is gone from disk stays gone
            self.s.restart_gateway()
        got = self.statuses()
        for name, status in got.items():
            self.assertEqual(status, "MISS" if name in gone else "HIT", f"{name} after {criterion}: {got}")

    def test_by_model_removes_exactly_that_models_entries_from_memory_and_disk(self):
        self.check_criterion({"model": "gpt-4o"}, {"4o-a", "4o-ns"}, restart=True)

    def test_by_tag(self):
        self.check_criterion({"tag": "team-x"}, {"mini-b"})

    def test_by_namespace(self):
        self.check_criterion({"namespace": "eval"}, {"4o-ns"})

    def test_by_pattern_over_models(self):
        self.check_criterion({"pattern": "claude-*"}, {"claude"}, restart=True)

    def test_by_exact_key(self):
        out = self.seed()
        key = out["mini-a"].header("x-llmcache-key")
        r = self.invalidate({"key": key})
        self.assertEqual(r.json()["invalidated"], 1, r.body)
        got = self.statuses()
        self.assertEqual(got["mini-a"], "MISS")
        self.assertEqual([n for n, st in got.items() if st == "MISS"], ["mini-a"])

    def test_by_age(self):
        self.seed()
        self.assertEqual(self.invalidate({"older_than": "1h"}).json()["invalidated"], 0)
        time.sleep(1.1)
        self.assertEqual(self.invalidate({"older_than": "1s"}).json()["invalidated"], 5)
        self.assertTrue(all(st == "MISS" for st in self.statuses().values()))

    def test_a_dry_run_counts_and_changes_nothing(self):
        self.seed()
        r = self.invalidate({"model": "gpt-4o-mini"}, dry_run=True)
        self.assertEqual(r.json()["matched"], 2)
        self.assertEqual(r.json()["invalidated"], 0)
        self.assertTrue(all(st == "HIT" for st in self.statuses().values()))

    def test_an_invalidation_during_a_matching_miss_wins(self):
        body = chat("slow one", "gpt-4o")
        result = {}

        def slow():
            result["r"] = self.s.post(CHAT, body, {"x-mock-latency-ms": "800"})
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.3)  # the miss is in flight
        self.assertEqual(self.invalidate({"model": "gpt-4o"}).status, 200)
        t.join()
        self.assertEqual(result["r"].status, 200)  # the client still gets its answer
        again = self.s.post(CHAT, body)
        self.assertEqual(again.cache_status, "MISS", "the condemned answer was stored")
        self.assertEqual(self.s.upstream_calls(), 2)

    def test_bad_input_is_a_400_and_invalidates_nothing(self):
        self.seed()
        for body in ({}, {"bogus": 1}, {"model": "a", "tag": "b"}, {"older_than": "7 parsecs"},
                     {"pattern": "[unclosed"}):
            r = self.invalidate(body)
            self.assertEqual(r.status, 400, (body, r.body))
            self.assertIn("message", r.json()["error"])
        r = self.admin("POST", "/cache/invalidate", "not json")
        self.assertEqual(r.status, 400)
        self.assertTrue(all(st == "HIT" for st in self.statuses().values()))

    def test_entries_can_be_listed_fetched_and_deleted(self):
        out = self.seed()
        listing = self.admin("GET", "/cache/entries?model=gpt-4o-mini").json()
        self.assertEqual(len(listing["data"]), 2)
        entry = listing["data"][0]
        one = self.admin("GET", f"/cache/entries/{entry['cache_id']}")
        self.assertEqual(one.status, 200)
        by_hash = self.admin("GET", f"/cache/entry-by-hash?request_hash={entry['request_hash']}")
        self.assertEqual(by_hash.json()["cache_id"], entry["cache_id"])
        self.assertEqual(self.admin("DELETE", f"/cache/entries/{entry['cache_id']}").status, 200)
        misses = [n for n, st in self.statuses().items() if st == "MISS"]
        self.assertEqual(len(misses), 1)
        self.assertIn(misses[0], ("mini-a", "mini-b"))


class Cli(unittest.TestCase):
    def test_invalidate_against_a_running_gateway_and_a_cache_directory(self):
        s = Stack()
        self.addCleanup(s.close)
        for text in ("one", "two"):
            s.post(CHAT, chat(text, "gpt-4o"))
        s.post(CHAT, chat("three"))
        s.wait_stored(3)
        rc, out, err = run_cli(["invalidate", "--server", f"http://127.0.0.1:{s.gateway.port}",
                                "--model", "gpt-4o", "--dry-run"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["matched"], 2)
        self.assertEqual(s.post(CHAT, chat("one", "gpt-4o")).cache_status, "HIT")
        s.stop_gateway()
        rc, out, err = run_cli(["invalidate", "--cache-dir", str(s.cache_dir), "--model", "gpt-4o"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["invalidated"], 2)
        s.start_gateway()
        self.assertEqual(s.post(CHAT, chat("one", "gpt-4o")).cache_status, "MISS")
        self.assertEqual(s.post(CHAT, chat("three")).cache_status, "HIT")
        rc, _, err = run_cli(["invalidate", "--cache-dir", str(s.cache_dir)])
        self.assertEqual(rc, 2)
        self.assertIn(b"exactly one", err)

    def test_invalidating_many_entries_draws_a_progress_bar(self):
        s = Stack()
        self.addCleanup(s.close)
        n = 150
        for i in range(n):
            s.post(CHAT, chat(f"question {i}", "gpt-4o"))
        s.wait_stored(n)
        s.stop_gateway()
        # stderr is a pipe here: no bar unless asked for.
        rc, out, err = run_cli(["invalidate", "--cache-dir", str(s.cache_dir), "--model", "gpt-4o", "--dry-run"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["matched"], n)
        self.assertNotIn(b"%", err)
        rc, out, err = run_cli(["invalidate", "--cache-dir", str(s.cache_dir), "--model", "gpt-4o", "--progress"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["invalidated"], n)
        frames = [f for f in err.decode().replace("\n", "\r").split("\r") if "%" in f]
        self.assertGreater(len(frames), 10, err)  # redrawn as it goes, not once at the end
        percents = [int(re.search(r"(\d+)% (\d+)/150 entries", f).group(1)) for f in frames]
        self.assertEqual(percents, sorted(percents))
        self.assertEqual(percents[0], 0)
        self.assertIn("[" + "#" * 30 + "] 100% 150/150 entries", frames[-1])
        self.assertTrue(err.endswith(b"entries\n"), err[-80:])

    def test_verify_finds_damage_and_repair_rebuilds_the_index(self):
        s = Stack()
        self.addCleanup(s.close)
        for text in ("a", "b", "c"):
            s.post(CHAT, chat(text))
        s.stop_gateway()
        rc, out, _ = run_cli(["verify", "--cache-dir", str(s.cache_dir)])
        self.assertEqual(rc, 0, out)
        s.entry_files()[0].write_bytes(b"garbage")
        for f in s.cache_dir.glob("index.sqlite*"):
            f.unlink()
        rc, out, _ = run_cli(["verify", "--cache-dir", str(s.cache_dir)])
        self.assertEqual(rc, 1)
        self.assertIn(b"1 corrupt", out)
        rc, out, _ = run_cli(["verify", "--cache-dir", str(s.cache_dir), "--repair"])
        self.assertEqual(rc, 0, out)
        self.assertIn(b"index rebuilt with 2 entries", out)
        rc, out, _ = run_cli(["verify", "--cache-dir", str(s.cache_dir)])
        self.assertEqual(rc, 0, out)
        s.start_gateway()
        statuses = sorted(s.post(CHAT, chat(t)).cache_status for t in ("a", "b", "c"))
        self.assertEqual(statuses, ["HIT", "HIT", "MISS"])


class AdminToken(unittest.TestCase):
    def test_admin_endpoints_require_the_bearer_token_when_one_is_set(self):
        s = Stack(sets={"CACHE_ADMIN_TOKEN": "admin-secret-123"})
        self.addCleanup(s.close)
        port = s.gateway.port
        self.assertEqual(request(port, "GET", "/cache/stats").status, 401)
        self.assertEqual(request(port, "GET", "/cache/stats", headers={"Authorization": "Bearer wrong"}).status, 401)
        ok = request(port, "GET", "/cache/stats", headers={"Authorization": "Bearer admin-secret-123"})
        self.assertEqual(ok.status, 200)
        # The token never reaches a file or a log line.
        for path in s.cache_dir.rglob("*"):
            if path.is_file():
                self.assertNotIn(b"admin-secret-123", path.read_bytes(), path)
        self.assertNotIn(b"admin-secret-123", s.gateway_output())


if __name__ == "__main__":
    unittest.main()
