"""The online miss-ratio curves through the gateway (docs/sizing.md): traffic with a known reuse
pattern, then GET /cache/sizing and /metrics give the curve an LRU of each size would have had.

Everything is sampled (CACHE_SIZING_RATE=1, far under the key bound), so the curve is exact: a
loop over 8 prompts, 4 times, hits at every size that holds 8 entries (24 of 32 requests) and
never below that. (The disk curve is memory and disk together, so it is the same loop.)"""
import re
import unittest

from harness import Stack, request

CHAT = "/v1/chat/completions"
SCALES = [0.25, 0.5, 1, 2, 4, 8]


def chat(text):
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}


class SizingThroughTheGateway(unittest.TestCase):
    def test_the_curve_of_a_loop_over_eight_prompts(self):
        s = Stack(sets={"CACHE_MEMORY_ENTRIES": "16", "CACHE_DISK_ENTRIES": "32",
                        "CACHE_SIZING_RATE": "1"})
        self.addCleanup(s.close)
        statuses = []
        for _ in range(4):
            for i in range(8):
                statuses.append(s.post(CHAT, chat(f"prompt {i}")).cache_status)
        self.assertEqual(statuses[:8], ["MISS"] * 8)
        # The later rounds are mostly hits: the memory tier's 8 shards of 2 entries each evict a
        # few (the curve is of an LRU of the configured size, not of the shards' split).
        self.assertGreater(statuses.count("HIT"), 12)

        r = request(s.gateway.port, "GET", "/cache/sizing")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.header("content-type"), "application/json")
        body = r.json()
        self.assertEqual(body["rate"], 1)
        self.assertEqual(body["references"], 32)
        self.assertEqual(body["samples"], 32)
        self.assertEqual(body["sampled_keys"], 8)
        self.assertGreater(body["cost_total"], 0)
        self.assertEqual(set(body["tiers"]), {"memory", "disk"})

        memory, disk = body["tiers"]["memory"], body["tiers"]["disk"]
        self.assertEqual(memory["entries"], 16)
        self.assertEqual(disk["entries"], 32)
        for tier in (memory, disk):
            self.assertEqual([p["scale"] for p in tier["points"]], SCALES)
            for p in tier["points"]:
                self.assertEqual(p["entries"], round(p["scale"] * tier["entries"]))
                self.assertEqual(p["bytes"], round(p["scale"] * tier["bytes"]))
                self.assertIn("cost_saved_per_day", p)
            rates = [p["hit_rate"] for p in tier["points"]]
            self.assertEqual(rates, sorted(rates), "the hit rate never falls as the size grows")
        # 8 entries are needed: memory (16) from 0.5x, disk (32) from 0.5x too (0.25x: 8).
        self.assertEqual([p["hit_rate"] for p in memory["points"]], [0, 0.75, 0.75, 0.75, 0.75, 0.75])
        self.assertEqual([p["hit_rate"] for p in disk["points"]], [0.75] * 6)
        # Money: the hits at 0.5x save what the last 3 rounds cost (~3/4 of the total: the mock's
        # answers differ a little in length).
        self.assertEqual(memory["points"][0]["cost_saved"], 0)
        saved = memory["points"][1]["cost_saved"]
        self.assertGreater(saved, body["cost_total"] * 0.7)
        self.assertLess(saved, body["cost_total"] * 0.8)
        self.assertEqual([p["cost_saved"] for p in memory["points"][1:]], [saved] * 5)

        m = request(s.gateway.port, "GET", "/metrics").body.decode()
        self.assertIn("# TYPE llmcache_sizing_hit_rate gauge", m)
        found = re.search(r'llmcache_sizing_hit_rate\{tier="memory",scale="2"\} ([0-9.e+-]+)\n', m)
        self.assertIsNotNone(found, m)
        self.assertEqual(float(found.group(1)), 0.75)
        found = re.search(r'llmcache_sizing_hit_rate\{tier="memory",scale="0.25"\} ([0-9.e+-]+)\n', m)
        self.assertIsNotNone(found, m)
        self.assertEqual(float(found.group(1)), 0)
        self.assertRegex(m, r'llmcache_sizing_bytes\{tier="memory",scale="8"\} \d')

    def test_off_means_no_curve_and_no_gauges(self):
        s = Stack(sets={"CACHE_SIZING": "off"})
        self.addCleanup(s.close)
        s.post(CHAT, chat("hello"))
        r = request(s.gateway.port, "GET", "/cache/sizing")
        self.assertEqual(r.status, 404)
        self.assertIn("CACHE_SIZING", r.json()["error"]["message"])
        self.assertNotIn("llmcache_sizing_", request(s.gateway.port, "GET", "/metrics").body.decode())


if __name__ == "__main__":
    unittest.main()
