"""`llmcache trace export` on the index a real gateway wrote: a miss and two hits of one key and a
miss of another come out as four trace lines, in time order, with the entries' sizes and costs."""
import json
import unittest

from harness import Stack, run_cli


def chat(text):
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}


class TraceExport(unittest.TestCase):
    def test_export_writes_the_requests_with_their_entries_figures(self):
        s = Stack()
        self.addCleanup(s.close)
        statuses = [s.post("/v1/chat/completions", chat(t)).cache_status
                    for t in ("one", "one", "two", "one")]
        self.assertEqual(statuses, ["MISS", "HIT", "MISS", "HIT"])
        s.wait_stored(2)
        self.assertEqual(s.stop_gateway(), 0)  # drains the event writer

        rc, out, err = run_cli(["trace", "export", "--cache-dir", str(s.cache_dir)])
        self.assertEqual(rc, 0, err)
        lines = [json.loads(l) for l in out.decode().splitlines()]
        header, events = lines[0], lines[1:]
        self.assertEqual((header["format"], header["version"], header["source"]),
                         ("llmcache-trace", 1, "export"))
        self.assertEqual(len(events), 4, events)
        # The two hits of "one" may come as one merged event row (same key and second): its
        # requests are written as as many lines, at the first hit's time.
        keys = [e["key"] for e in events]
        self.assertEqual(keys.count(keys[0]), 3)
        self.assertEqual(len(set(keys)), 2)
        self.assertEqual([e["t"] for e in events], sorted(e["t"] for e in events))
        for e in events:
            self.assertGreater(e["size"], 0)
            self.assertGreater(e["cost"], 0)  # the mock reports usage; gpt-4o-mini is priced
            self.assertEqual(e["model"], "gpt-4o-mini")
        one = [e for e in events if e["key"] == keys[0]]
        self.assertEqual(len({(e["size"], e["cost"], e["latency_ms"]) for e in one}), 1)

        # A window that ends before the first request exports nothing but the header.
        rc, out, err = run_cli(["trace", "export", "--cache-dir", str(s.cache_dir),
                                "--until", str(events[0]["t"])])
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(out.decode().splitlines()), 1)

        # The exported trace replays.
        path = s.root / "export.jsonl"
        rc, out, err = run_cli(["trace", "export", "--cache-dir", str(s.cache_dir), "-o", str(path)])
        self.assertEqual(rc, 0, err)
        rc, out, err = run_cli(["trace", "replay", str(path), "--policy", "lru", "--json"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["hit_rate"], 0.5)


if __name__ == "__main__":
    unittest.main()
