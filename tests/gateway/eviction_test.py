"""Which entry a bounded disk tier drops, seen through the gateway (issue 21).

Found at the end of the session that merged the eviction policies: with CACHE_DISK_ENTRIES=3 and
LRU, six prompts left the disk holding 0, 1 and the newest one, not 3, 4, 5. The miss explainer
(CACHE_NEAR_MISS_SAMPLE, on by default) read the tenant's newest entries through the disk tier's
lookup(), newest first, on every sampled miss: each read counted as a use, so the oldest entry
became the most recently used. It now reads with DiskTier::peek(), which is not a use."""
import time
import unittest

from harness import Stack
from analytics_test import CHAT, chat


class DiskEvictionFollowsThePolicy(unittest.TestCase):
    def held(self, s):
        """The prompts whose answers are on disk (the mock's answer echoes the prompt)."""
        out = set()
        for f in s.entry_files():
            try:
                data = f.read_bytes()
            except FileNotFoundError:  # evicted between the listing and the read
                continue
            out |= {i for i in range(6) if f"evict me {i}".encode() in data}
        return out

    def ask(self, s, i, expect):
        """Asks prompt i and waits until the disk holds it (the writer stores in the background)."""
        self.assertEqual(s.post(CHAT, chat(f"evict me {i}", "gpt-4o-mini")).cache_status, expect)
        deadline = time.monotonic() + 20
        while i not in self.held(s) or len(s.entry_files()) > 3:
            self.assertLess(time.monotonic(), deadline, f"prompt {i} not stored: {self.held(s)}")
            time.sleep(0.05)
        time.sleep(0.2)  # lets a sampled miss's explanation (the old culprit) read the entries

    def check(self, policy):
        sets = {"CACHE_MEMORY_ENTRIES": "1", "CACHE_DISK_ENTRIES": "3",
                "CACHE_NEAR_MISS_SAMPLE": "1000"}  # every miss is explained
        if policy:
            sets.update(CACHE_MEMORY_POLICY=policy, CACHE_DISK_POLICY=policy)
        s = Stack(sets)
        self.addCleanup(s.close)
        for i in range(6):
            self.ask(s, i, "MISS")
        self.assertEqual(self.held(s), {3, 4, 5})  # was {0, 1, 5}
        self.ask(s, 0, "MISS")
        self.assertEqual(self.held(s), {4, 5, 0})  # drops 3, the least recently used
        self.ask(s, 4, "HIT")                      # from disk: a use
        self.ask(s, 1, "MISS")
        self.assertEqual(self.held(s), {4, 0, 1})  # drops 5

    def test_lru(self):
        self.check("lru")

    def test_default_policy_with_equal_costs_drops_the_oldest_unused(self):
        # cost-sieve: no entry was hit before 4, all cost the same: FIFO order, and 4's visit
        # spares it once.
        self.check(None)


if __name__ == "__main__":
    unittest.main()
