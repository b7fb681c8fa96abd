"""Analytics through the gateway: after a scripted sequence of requests with known hits, misses
and models, /cache/analytics and /metrics report exactly the figures computed here by hand."""
import re
import time
import unittest

from harness import Stack, request

CHAT = "/v1/chat/completions"
# USD per million tokens, as the shipped pricing table has them (src/upstream/pricing.json).
PRICES = {"gpt-4o-mini": (0.15, 0.6), "gpt-4o": (2.5, 10.0)}


def chat(text, model):
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def cost(model, usage):
    pin, pout = PRICES[model]
    return usage["prompt_tokens"] * pin / 1e6 + usage["completion_tokens"] * pout / 1e6


class AnalyticsThroughTheGateway(unittest.TestCase):
    def test_figures_equal_the_scripted_sequence(self):
        s = Stack()
        self.addCleanup(s.close)
        script = [("alpha", "gpt-4o-mini"), ("beta", "gpt-4o"), ("alpha", "gpt-4o-mini"),
                  ("alpha", "gpt-4o-mini"), ("gamma", "gpt-4o-mini"), ("beta", "gpt-4o")]
        answers, statuses = {}, []
        for text, model in script:
            r = s.post(CHAT, chat(text, model), {"Authorization": "Bearer caller-1"})
            statuses.append(r.cache_status)
            answers.setdefault((text, model), r.json())
        self.assertEqual(statuses, ["MISS", "MISS", "HIT", "HIT", "MISS", "HIT"])
        hits = [(t, m) for (t, m), st in zip(script, statuses) if st == "HIT"]
        expected_saved = sum(cost(m, answers[(t, m)]["usage"]) for t, m in hits)
        expected_spent = sum(cost(m, answers[(t, m)]["usage"]) for (t, m), st in zip(script, statuses) if st == "MISS")

        a = request(s.gateway.port, "GET", "/cache/analytics").json()
        self.assertEqual(a["total_requests"], 6)
        self.assertEqual(a["hits"], 3)
        self.assertEqual(a["misses"], 3)
        self.assertEqual(a["hit_rate"], 0.5)
        self.assertAlmostEqual(a["cost_saved"]["total"], expected_saved, places=12)
        # Per hit, as the seed has it (issue 16: it was divided by every request).
        self.assertAlmostEqual(a["cost_saved"]["per_request"], expected_saved / 3, places=12)
        self.assertAlmostEqual(a["cost_spent"], expected_spent, places=12)
        by_model = {row["model"] if isinstance(row, dict) and "model" in row else k: row
                    for k, row in (a["by_model"].items() if isinstance(a["by_model"], dict)
                                   else [(r["model"], r) for r in a["by_model"]])}
        self.assertEqual(by_model["gpt-4o-mini"]["requests"], 4)
        self.assertEqual(by_model["gpt-4o-mini"]["hits"], 2)
        self.assertEqual(by_model["gpt-4o"]["requests"], 2)
        hot = a["hot_keys"][0]
        self.assertEqual(hot["model"], "gpt-4o-mini")
        self.assertEqual(hot["hits"], 2)

        m = request(s.gateway.port, "GET", "/metrics").body.decode()
        def value(line_re):
            found = re.search(line_re + r"\s+([0-9.e+-]+)\n", m)
            self.assertIsNotNone(found, line_re)
            return float(found.group(1))
        self.assertEqual(value(r"llmcache_hits_total"), 3)
        self.assertEqual(value(r"llmcache_misses_total"), 3)
        self.assertEqual(value(r'llmcache_requests_total\{outcome="HIT",tier="memory",model="gpt-4o-mini"\}'), 2)
        self.assertEqual(value(r'llmcache_requests_total\{outcome="MISS",tier="none",model="gpt-4o"\}'), 1)
        self.assertAlmostEqual(value(r"llmcache_cost_saved_usd_total"), expected_saved, places=12)
        self.assertEqual(value(r'llmcache_tier_entries\{tier="memory"\}'), 3)
        # The caller is a hash, never the credential.
        self.assertNotIn("caller-1", m)
        p = request(s.gateway.port, "GET", "/cache/patterns").json()
        self.assertIn("temporal", p)
        self.assertIn("prompt_categories", p)


if __name__ == "__main__":
    unittest.main()


class AlertsThroughTheGateway(unittest.TestCase):
    """`serve` with CACHE_ALERT_EMAIL: its alert thread reads the live metrics and mails a low hit
    rate through a real SMTP server (tests/alerts/smtp_sink.py, aiosmtpd)."""

    def start_sink(self):
        import json, os, pathlib, subprocess, tempfile
        tmp = tempfile.TemporaryDirectory(prefix="llmcache-smtp-")
        self.addCleanup(tmp.cleanup)
        self.mails = pathlib.Path(tmp.name) / "mails.jsonl"
        # Debian's python3 has python3-aiosmtpd; a python3 earlier on PATH (pyenv, a venv) may not.
        python = os.environ.get("LLMCACHE_PYTHON") or (
            "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3")
        sink = subprocess.Popen(
            [python, str(pathlib.Path(__file__).resolve().parent.parent / "alerts" / "smtp_sink.py"),
             "--out", str(self.mails)], stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (sink.terminate(), sink.wait(10), sink.stdout.close()))
        line = sink.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        self.assertIsNotNone(m, line)
        self.read_mails = lambda: ([json.loads(l) for l in self.mails.read_text().splitlines()]
                                   if self.mails.exists() else [])
        return int(m.group(1))

    def test_a_low_hit_rate_is_mailed_once_and_the_mail_holds_no_credential(self):
        port = self.start_sink()
        s = Stack({"CACHE_ALERT_EMAIL": "ops@example.test", "CACHE_ALERT_FROM": "llmcache@gw.test",
                   "CACHE_SMTP_URL": f"smtp://127.0.0.1:{port}", "CACHE_METRICS_INTERVAL": "1",
                   "CACHE_ALERT_WINDOW": "2", "CACHE_ALERT_MIN_REQUESTS": "5",
                   "CACHE_ALERT_HIT_RATE_MIN": "0.5", "CACHE_ALERT_COOLDOWN": "3600"})
        self.addCleanup(s.close)
        # Six distinct requests, one repeated: 1 hit in 7 cacheable requests, under 50%.
        for i in range(6):
            r = s.post(CHAT, chat(f"question {i}", "gpt-4o-mini"), {"Authorization": "Bearer sk-secret-alerts-1"})
            self.assertEqual(r.cache_status, "MISS")
        self.assertEqual(s.post(CHAT, chat("question 0", "gpt-4o-mini"),
                                {"Authorization": "Bearer sk-secret-alerts-1"}).cache_status, "HIT")
        deadline = time.time() + 20
        while time.time() < deadline and not self.read_mails():
            time.sleep(0.2)
        mails = self.read_mails()
        self.assertEqual(len(mails), 1, mails)
        mail = mails[0]
        self.assertEqual(mail["rcpt_tos"], ["ops@example.test"])
        self.assertEqual(mail["mail_from"], "llmcache@gw.test")
        self.assertRegex(mail["data"], r"Subject: \[llmcache[^\]]*\] hit rate 14\.3% over the last 2 s")
        self.assertIn("1 of 7 cacheable requests", mail["data"])
        self.assertNotIn("sk-secret", mail["data"])
        # The cooldown holds: more misses, more evaluations, no second mail.
        for i in range(6, 12):
            s.post(CHAT, chat(f"question {i}", "gpt-4o-mini"))
        time.sleep(3)
        self.assertEqual(len(self.read_mails()), 1)


class EvictedEntriesLeaveTheFigures(unittest.TestCase):
    """Issue 16: the index kept counting entries the tiers had evicted (80 entries / 167 MB
    reported while the tiers held 16 and 29). Evictions now reach the index: an entry no tier
    holds leaves storage_efficiency (its row stays, for the record)."""

    def test_storage_counts_what_the_tiers_hold(self):
        s = Stack({"CACHE_MEMORY_ENTRIES": "2", "CACHE_DISK_ENTRIES": "3"})
        self.addCleanup(s.close)
        for i in range(6):
            self.assertEqual(s.post(CHAT, chat(f"evict me {i}", "gpt-4o-mini")).cache_status, "MISS")
        # Every store has reached the index once it lists six rows (rows outlive evictions).
        deadline = time.monotonic() + 20
        while len(request(s.gateway.port, "GET", "/cache/entries?limit=100").json()["data"]) < 6:
            self.assertLess(time.monotonic(), deadline, "six rows not written")
            time.sleep(0.1)
        s.post(CHAT, chat("evict me 5", "gpt-4o-mini"))  # a hit: the writer has passed the stores
        time.sleep(0.5)
        storage = request(s.gateway.port, "GET", "/cache/analytics").json()["storage_efficiency"]
        self.assertEqual(storage["entries"], 3, storage)  # the disk tier's bound; memory's 2 are in it
        self.assertLess(storage["bytes_stored"], 6 * 10000)
        # Which answers went is the eviction policy's choice (CACHE_DISK_POLICY, default
        # cost-sieve; eviction_test.py checks which): the figures must match what the tiers
        # hold, whichever they are. At most 3
        # of the 6 are still answered from the cache (asked in reverse: each MISS stores again).
        hits = sum(s.post(CHAT, chat(f"evict me {i}", "gpt-4o-mini")).cache_status == "HIT"
                   for i in range(5, -1, -1))
        self.assertLessEqual(hits, 3)

    def test_size_stored_is_the_bytes_on_disk_so_compression_shows(self):
        # Issue 16: storage_efficiency.ratio read 1.0 with compression on (1,416 bytes reported,
        # 594 on disk): size_stored was the in-memory estimate. Now it is what the disk tier holds.
        s = Stack({"CACHE_COMPRESSION": "true"})
        self.addCleanup(s.close)
        text = "a fairly repetitive prompt, " * 200  # the mock's answer echoes it: compressible
        self.assertEqual(s.post(CHAT, chat(text, "gpt-4o-mini")).cache_status, "MISS")
        s.wait_stored(1)
        files = s.entry_files()
        self.assertEqual(len(files), 1)
        on_disk = files[0].stat().st_size
        storage = request(s.gateway.port, "GET", "/cache/analytics").json()["storage_efficiency"]
        self.assertEqual(storage["bytes_stored"], on_disk, storage)
        self.assertGreater(storage["ratio"], 2, storage)
