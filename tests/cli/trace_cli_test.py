"""`llmcache trace synth` and `llmcache trace replay` driven as a user would drive them
(docs/trace-format.md, docs/eviction.md), and the per-tier policy settings as `serve` reads them."""
import json
import os
import pathlib
import subprocess
import tempfile
import unittest

SRC = pathlib.Path(os.environ.get("LLMCACHE_SOURCE_DIR") or pathlib.Path(__file__).resolve().parents[2])
BIN = os.environ.get("LLMCACHE_BIN", str(SRC / "build" / "llmcache"))
POLICIES = ["lru", "sieve", "gdsf", "cost-sieve"]


def run(args, env=None, timeout=120):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([BIN, *args], capture_output=True, timeout=timeout, env=e)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def event(t, key, size=100, cost=1.0, latency=10.0):
    return json.dumps({"t": t, "key": key, "size": size, "cost": cost, "latency_ms": latency})


class TraceCli(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="llmcache-trace-cli-")
        self.dir = pathlib.Path(self._tmp.name)
        self.addCleanup(self._tmp.cleanup)

    def write(self, name, lines):
        p = self.dir / name
        p.write_text("\n".join(lines) + "\n")
        return str(p)

    def test_synth_is_deterministic_and_replays(self):
        a, b = self.dir / "a.jsonl", self.dir / "b.jsonl"
        for out in (a, b):
            rc, _, err = run(["trace", "synth", "--seed", "7", "--requests", "2000", "--keys", "300",
                              "-o", str(out)])
            self.assertEqual(rc, 0, err)
        self.assertEqual(a.read_bytes(), b.read_bytes())
        lines = a.read_text().splitlines()
        self.assertEqual(len(lines), 2001)  # the header and 2000 events
        header = json.loads(lines[0])
        self.assertEqual(header["format"], "llmcache-trace")
        self.assertEqual(header["params"]["seed"], 7)
        rc, out, err = run(["trace", "replay", str(a), "--policy", "all", "--memory", "0.05x",
                            "--disk", "0.2x", "--json"])
        self.assertEqual(rc, 0, err)
        rows = [json.loads(l) for l in out.splitlines()]
        self.assertEqual([r["memory_policy"] for r in rows], POLICIES)
        for r in rows:
            self.assertEqual(r["requests"], 2000)
            self.assertGreater(r["hit_rate"], 0)
            self.assertLessEqual(r["cost_saved"], r["cost_total"])

    def test_replay_json_gives_the_figures_worked_out_by_hand(self):
        # Memory holds 2 entries, disk 3, LRU: as simulator_test's hand-worked trace. A costs $1
        # and 10 ms, B $2 and 20 ms, ...: the hits are A (memory) and B (disk).
        keys = "ABACBDAC"
        f = self.write("t.jsonl", [event(i + 1, k, 100, float(ord(k) - 64), 10.0 * (ord(k) - 64))
                                    for i, k in enumerate(keys)])
        rc, out, err = run(["trace", "replay", f, "--policy", "lru", "--memory", "200",
                            "--disk", "300", "--json"])
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        self.assertEqual(r["hit_rate"], 0.25)
        self.assertEqual(r["byte_hit_rate"], 0.25)
        self.assertEqual(r["cost_saved"], 3.0)
        self.assertEqual(r["latency_saved_ms"], 30)
        self.assertEqual((r["memory_hits"], r["disk_hits"]), (1, 1))

    def test_replay_prints_a_table_of_policies_by_size(self):
        f = self.write("t.jsonl", [event(i, "k%d" % (i % 7)) for i in range(50)])
        rc, out, err = run(["trace", "replay", f, "--policy", "lru,default", "--memory", "200,1K"])
        self.assertEqual(rc, 0, err)
        rows = [l for l in out.splitlines() if l.startswith(("lru", "cost-sieve", "default"))]
        self.assertEqual(len(rows), 4, out)
        self.assertIn("hit", out.splitlines()[1])

    def test_replay_refuses_bad_input_clearly(self):
        good = self.write("good.jsonl", [event(1, "a")])
        bad = self.write("bad.jsonl", [event(1, "a"), '{"t": 2, "size": 5}'])
        cases = [
            (["trace", "replay", good, "--policy", "arc"], "unknown policy \"arc\""),
            (["trace", "replay", good, "--memory", "lots"], "--memory \"lots\" is not a size"),
            (["trace", "replay", bad], "trace line 2: \"key\""),
            (["trace", "replay", str(self.dir / "none.jsonl")], "cannot read"),
            (["trace", "synth", "--seed", "1", "--zipf", "-2"], "--zipf must be in"),
            (["trace", "synth", "--seed", "1", "--mix", "gpt-9=1"], "unknown model \"gpt-9\""),
        ]
        for args, message in cases:
            rc, _, err = run(args)
            self.assertEqual(rc, 2, args)
            self.assertIn(message, err, args)

    def test_serve_reads_each_tiers_policy_and_refuses_unknown_names(self):
        for name in POLICIES + ["default"]:
            rc, out, err = run(["serve", "--print-config"],
                               {"CACHE_MEMORY_POLICY": name, "CACHE_DISK_POLICY": name})
            self.assertEqual(rc, 0, err)
            self.assertIn(f"CACHE_MEMORY_POLICY={name}\n", out)
            self.assertIn(f"CACHE_DISK_POLICY={name}\n", out)
            # The config's list and the tiers' (cache::parsePolicy, behind replay) agree.
            f = self.write("one.jsonl", [event(1, "a")])
            self.assertEqual(run(["trace", "replay", f, "--policy", name])[0], 0, name)
        rc, _, err = run(["serve", "--print-config"], {"CACHE_DISK_POLICY": "arc"})
        self.assertNotEqual(rc, 0)
        self.assertIn("CACHE_DISK_POLICY: expected lru, sieve, gdsf, cost-sieve or default, got 'arc'",
                      err)


if __name__ == "__main__":
    unittest.main()
