"""Semantic hits (docs/semantic.md), through the real gateway over HTTP, on the mock provider.

The mock's embeddings are a bag of words (src/mock/README.md): lower-cased word tokens hashed
(FNV-1a 64) into 256 dimensions. `bow_cosine` below computes the same similarity independently,
so each test knows which requests must be semantic hits at which threshold, and which answers
the shadow mode must find in agreement.
"""
import json
import math
import re
import shutil
import unittest

import threading

from harness import Process, Stack, wait_for

MODEL = "gpt-4o-mini"
DIM = 256
STOP_WORDS = {"a", "an", "the", "of", "is", "are", "was", "what", "which", "who", "please",
              "tell", "me", "i", "you", "to", "in", "on", "for", "and", "or", "can", "could",
              "would", "do", "does", "give", "show", "whats", "know", "my"}


def words(text):
    return re.findall(r"[a-z0-9\x80-\U0010ffff]+", text.lower())


def bow(text):
    v = [0.0] * DIM
    for w in words(text):
        h = 14695981039346656037
        for b in w.encode():
            h = ((h ^ b) * 1099511628211) % (1 << 64)
        v[h % DIM] += 1.0
    return v


def bow_cosine(a, b):
    va, vb = bow(a), bow(b)
    dot = sum(x * y for x, y in zip(va, vb))
    na, nb = math.sqrt(sum(x * x for x in va)), math.sqrt(sum(x * x for x in vb))
    return dot / (na * nb) if na and nb else 0.0


def topic_answer(question):
    """The mock's answer under x-mock-answer: topic."""
    return "Mock answer about:" + "".join(" " + w for w in sorted(set(words(question)) - STOP_WORDS))


def meets(similarity, threshold):
    return similarity + 1e-5 >= threshold


def chat(text, system=None, model=MODEL, **extra):
    messages = ([{"role": "system", "content": system}] if system else []) + \
        [{"role": "user", "content": text}]
    body = {"model": model, "messages": messages}
    body.update(extra)
    return body


STORED = "what is the capital city of france and how many people live there today"
PARAPHRASE = "what is the capital city of france and how many people live there now"
UNRELATED = "write a haiku about autumn leaves falling on a quiet pond"
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
ALICE = {"Authorization": "Bearer sk-alice"}
BOB = {"Authorization": "Bearer sk-bob"}


class SemanticStack(Stack):
    def semantic(self):
        r = self.get("/cache/semantic")
        assert r.status == 200, r
        return r.json()

    def wait_indexed(self, n):
        got = wait_for(lambda: self.semantic()["index"]["vectors"] >= n, timeout=20)
        assert got, f"{n} vectors not indexed: {self.semantic()['index']}"

    def chat_calls(self):
        return self.mock_stats()["paths"].get("/v1/chat/completions", 0)

    def wait_analytics(self, ready, timeout=20):
        """/cache/analytics once ready(it) holds (or, after timeout, as it is then)."""
        def analytics():
            r = self.get("/cache/analytics")
            assert r.status == 200, r
            a = r.json()
            return a if ready(a) else None
        return wait_for(analytics, timeout=timeout) or self.get("/cache/analytics").json()


class SemanticHitsTest(unittest.TestCase):
    """CACHE_SEMANTIC_THRESHOLD=0.9: the Done-when cases."""

    def setUp(self):
        self.similarity = bow_cosine(STORED, PARAPHRASE)
        self.assertGreaterEqual(self.similarity, 0.9)  # the corpus is what the test says
        self.assertLess(self.similarity, 0.99)
        self.stack = SemanticStack(sets={"CACHE_SEMANTIC_THRESHOLD": "0.9",
                                         "CACHE_SEMANTIC_ALLOW_TOOLS": "true"})
        self.addCleanup(self.stack.close)
        first = self.stack.post("/v1/chat/completions", chat(STORED), ALICE)
        self.assertEqual(first.cache_status, "MISS")
        self.stored = first
        self.stack.wait_indexed(1)

    def test_a_paraphrase_is_a_semantic_hit_with_the_stored_answer(self):
        calls = self.stack.chat_calls()
        r = self.stack.post("/v1/chat/completions", chat(PARAPHRASE), ALICE)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.cache_status, "HIT")
        self.assertEqual(r.header("x-llmcache-match"), "semantic")
        self.assertAlmostEqual(float(r.header("x-llmcache-similarity")), self.similarity, places=3)
        self.assertEqual(r.header("x-llmcache-matched-key"), self.stored.header("x-llmcache-key"))
        self.assertNotEqual(r.header("x-llmcache-key"), self.stored.header("x-llmcache-key"))
        self.assertEqual(r.json(), self.stored.json())
        self.assertEqual(self.stack.chat_calls(), calls)  # no provider call
        served = self.stack.semantic()["served"]
        self.assertEqual(served["hits"], 1)
        self.assertEqual(served["by_model"][MODEL]["hits"], 1)
        # Counted apart from exact hits, and among the hits.
        metrics = self.stack.get("/metrics").body.decode()
        self.assertIn("llmcache_semantic_hits_total 1\n", metrics)
        self.assertIn("llmcache_hits_total 1\n", metrics)
        # And in the events table: /cache/analytics tells it apart too (events are written by a
        # background thread, so wait for the hit's event).
        a = self.stack.wait_analytics(lambda a: a["hits"] >= 1)
        self.assertEqual(a["hits"], 1)
        self.assertEqual(a["semantic_hits"], 1)
        self.assertEqual(a["by_model"][MODEL]["semantic_hits"], 1)
        self.assertGreater(a["cost_saved"]["total"], 0)
        self.assertAlmostEqual(a["semantic_cost_saved"], a["cost_saved"]["total"], places=12)

    def test_an_exact_repeat_is_an_exact_hit(self):
        r = self.stack.post("/v1/chat/completions", chat(STORED), ALICE)
        self.assertEqual(r.cache_status, "HIT")
        self.assertIsNone(r.header("x-llmcache-match"))
        a = self.stack.wait_analytics(lambda a: a["hits"] >= 1)
        self.assertEqual(a["hits"], 1)
        self.assertEqual(a["semantic_hits"], 0)
        self.assertEqual(a["semantic_cost_saved"], 0)

    def test_the_paraphrase_is_a_miss_across_any_partition_line(self):
        cases = {
            "system prompt": (chat(PARAPHRASE, system="answer in French"), ALICE),
            "model": (chat(PARAPHRASE, model="gpt-4o"), ALICE),
            "tool set": (chat(PARAPHRASE, tools=TOOLS), ALICE),
            "tenant": (chat(PARAPHRASE), BOB),
            "temperature": (chat(PARAPHRASE, temperature=0.2), ALICE),
            "earlier turn": ({"model": MODEL, "messages": [
                {"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"},
                {"role": "user", "content": PARAPHRASE}]}, ALICE),
        }
        for name, (body, headers) in cases.items():
            with self.subTest(name):
                calls = self.stack.chat_calls()
                r = self.stack.post("/v1/chat/completions", body, headers)
                self.assertEqual(r.cache_status, "MISS", name)
                self.assertIsNone(r.header("x-llmcache-match"))
                self.assertEqual(self.stack.chat_calls(), calls + 1)
        # Each of them started its own partition; the original's paraphrase still hits.
        r = self.stack.post("/v1/chat/completions", chat(PARAPHRASE), ALICE)
        self.assertEqual(r.header("x-llmcache-match"), "semantic")

    def test_a_different_prompt_is_a_miss(self):
        self.assertLess(bow_cosine(STORED, UNRELATED), 0.9)
        r = self.stack.post("/v1/chat/completions", chat(UNRELATED), ALICE)
        self.assertEqual(r.cache_status, "MISS")

    def test_the_threshold_boundary_is_inclusive(self):
        stored = [STORED]

        def nearest(text):
            return max(bow_cosine(text, t) for t in stored)

        # Just above the nearest similarity: a miss (and stored: the next one's neighbour too).
        above = f"{nearest(PARAPHRASE) + 0.001:.6f}"
        r = self.stack.post("/v1/chat/completions", chat(PARAPHRASE),
                            {**ALICE, "x-llmcache-semantic": above})
        self.assertEqual(r.cache_status, "MISS")
        stored.append(PARAPHRASE)
        self.stack.wait_indexed(2)
        # Exactly at it (printed to 6 places: within the float tolerance): a hit.
        fresh = PARAPHRASE.replace("now", "currently")
        r = self.stack.post("/v1/chat/completions", chat(fresh),
                            {**ALICE, "x-llmcache-semantic": f"{nearest(fresh):.6f}"})
        self.assertEqual(r.cache_status, "HIT")
        self.assertEqual(r.header("x-llmcache-match"), "semantic")
        self.assertAlmostEqual(float(r.header("x-llmcache-similarity")), nearest(fresh), places=3)

    def test_the_request_header_turns_it_off_or_is_refused_when_malformed(self):
        r = self.stack.post("/v1/chat/completions", chat(PARAPHRASE),
                            {**ALICE, "x-llmcache-semantic": "0"})
        self.assertEqual(r.cache_status, "MISS")
        r = self.stack.post("/v1/chat/completions", chat(PARAPHRASE + " again"),
                            {**ALICE, "x-llmcache-semantic": "high"})
        self.assertEqual(r.status, 400)
        self.assertIn("x-llmcache-semantic", r.json()["error"]["message"])

    def test_a_semantic_hit_replays_a_stream(self):
        body = chat(PARAPHRASE, stream=True)
        r = self.stack.post("/v1/chat/completions", body, ALICE)
        self.assertEqual(r.cache_status, "HIT")
        self.assertEqual(r.header("x-llmcache-match"), "semantic")
        self.assertIn("text/event-stream", r.header("content-type"))
        text = "".join(
            (json.loads(line[6:])["choices"] or [{}])[0].get("delta", {}).get("content") or ""
            for line in r.body.decode().splitlines()
            if line.startswith("data: {"))
        self.assertEqual(text, self.stored.json()["choices"][0]["message"]["content"])


class SemanticLimitsTest(unittest.TestCase):
    def setUp(self):
        self.stack = SemanticStack(sets={"CACHE_SEMANTIC_THRESHOLD": "0.9",
                                         "CACHE_SEMANTIC_MAX_TEMPERATURE": "0.5"})
        self.addCleanup(self.stack.close)

    def test_tools_and_high_temperatures_are_never_semantic(self):
        for extra in ({"tools": TOOLS}, {"temperature": 0.9}):
            with self.subTest(extra):
                self.assertEqual(self.stack.post("/v1/chat/completions", chat(STORED, **extra),
                                                 ALICE).cache_status, "MISS")
                r = self.stack.post("/v1/chat/completions", chat(PARAPHRASE, **extra), ALICE)
                self.assertEqual(r.cache_status, "MISS")
        # Not even indexed; a low temperature is.
        self.assertEqual(self.stack.semantic()["index"]["vectors"], 0)
        self.stack.post("/v1/chat/completions", chat(STORED, temperature=0.1), ALICE)
        self.stack.wait_indexed(1)
        r = self.stack.post("/v1/chat/completions", chat(PARAPHRASE, temperature=0.1), ALICE)
        self.assertEqual(r.header("x-llmcache-match"), "semantic")

    def test_namespaces_and_requests_opt_in_on_a_gateway_without_a_threshold(self):
        self.stack.close()
        self.stack = SemanticStack(sets={"CACHE_SEMANTIC_NAMESPACES": "faq=0.9"})
        self.addCleanup(self.stack.close)
        ns = {**ALICE, "x-llmcache-namespace": "faq"}
        self.stack.post("/v1/chat/completions", chat(STORED), ns)
        self.stack.post("/v1/chat/completions", chat(STORED), ALICE)
        self.stack.wait_indexed(2)
        self.assertEqual(self.stack.post("/v1/chat/completions", chat(PARAPHRASE), ns)
                         .header("x-llmcache-match"), "semantic")
        self.assertEqual(self.stack.post("/v1/chat/completions", chat(PARAPHRASE), ALICE)
                         .cache_status, "MISS")
        r = self.stack.post("/v1/chat/completions", chat(PARAPHRASE.replace("now", "then")),
                            {**ALICE, "x-llmcache-semantic": "0.9"})
        self.assertEqual(r.header("x-llmcache-match"), "semantic")

    def test_off_by_default(self):
        self.stack.close()
        self.stack = SemanticStack()
        self.addCleanup(self.stack.close)
        self.assertEqual(self.stack.get("/cache/semantic").status, 404)
        self.stack.post("/v1/chat/completions", chat(STORED), ALICE)
        r = self.stack.post("/v1/chat/completions", chat(PARAPHRASE),
                            {**ALICE, "x-llmcache-semantic": "0.5"})
        self.assertEqual(r.cache_status, "MISS")
        self.assertEqual(self.stack.mock_stats()["paths"].get("/v1/embeddings", 0), 0)


# The shadow corpus: (stored, asked next) in a partition of their own. Paraphrases differ only in
# stop words, so the mock's topic answers are equal (they agree); near misses differ in one
# content word, so the answers differ and their embeddings' cosine stays below 0.95 (they do
# not). The test computes both facts itself rather than trusting this comment.
CORPUS = [
    ("tell me what the capital of france is and how many people live there",
     "what is the capital of france and how many people live there"),
    ("what is the boiling point of water at sea level in celsius",
     "what is the boiling point of water at the sea level in celsius"),
    ("please give me a short summary of the french revolution and its causes",
     "give me a short summary of the french revolution and its causes"),
    ("how many moons does jupiter have and what are the largest ones called",
     "how many moons does jupiter have and which are the largest ones called"),
    ("what is the tallest mountain on earth", "which is the tallest mountain on earth"),
    ("what is the capital of france and how many people live there",
     "what is the capital of spain and how many people live there"),
    ("what is the boiling point of water at sea level in celsius",
     "what is the boiling point of water at sea level in fahrenheit"),
    ("how many moons does jupiter have and what are the largest ones called",
     "how many moons does saturn have and what are the largest ones called"),
    ("convert one hundred us dollars to euros at the current exchange rate",
     "convert one hundred us dollars to yen at the current exchange rate"),
    ("write a haiku about autumn leaves", "explain quantum entanglement to a child"),
]
TOPIC = {"x-mock-answer": "topic", **ALICE}


class ShadowTest(unittest.TestCase):
    """CACHE_SEMANTIC_SHADOW=true: nothing semantic is served; /cache/semantic's figures are the
    corpus's known ones."""

    def setUp(self):
        self.stack = SemanticStack(sets={"CACHE_SEMANTIC_SHADOW": "true"})
        self.addCleanup(self.stack.close)

    def expected(self, costs):
        pairs = []
        for i, (a, b) in enumerate(CORPUS):
            s = bow_cosine(a, b)
            for t in range(80, 100):  # no similarity on the edge of a threshold
                self.assertGreater(abs(s - t / 100), 1e-4, (a, b))
            ta, tb = topic_answer(a), topic_answer(b)
            agree = ta == tb or bow_cosine(ta, tb) + 1e-5 >= 0.95
            pairs.append((s, agree, costs[i]))
        rows = []
        for t in range(80, 100):
            hit = [p for p in pairs if meets(p[0], t / 100)]
            agreement = sum(p[1] for p in hit) / len(hit) if hit else None
            rows.append({"threshold": t / 100, "extra_hits": len(hit),
                         "extra_hit_rate": len(hit) / (2 * len(CORPUS)),
                         "cost_saved": sum(p[2] for p in hit), "agreement": agreement})
        suggested = next((r["threshold"] for r in rows
                          if r["agreement"] is not None and r["agreement"] >= 0.98), None)
        return rows, suggested

    def test_figures_match_the_corpus_and_nothing_is_served(self):
        keys = []
        for i, (a, b) in enumerate(CORPUS):
            system = f"corpus pair {i}"
            first = self.stack.post("/v1/chat/completions", chat(a, system=system), TOPIC)
            self.assertEqual(first.cache_status, "MISS")
            self.stack.wait_indexed(2 * i + 1)  # a is the neighbour b finds
            second = self.stack.post("/v1/chat/completions", chat(b, system=system), TOPIC)
            self.assertEqual(second.cache_status, "MISS")
            self.assertIsNone(second.header("x-llmcache-match"))
            keys.append(second.header("x-llmcache-key"))
            self.stack.wait_indexed(2 * i + 2)
        self.assertEqual(self.stack.chat_calls(), 2 * len(CORPUS))
        report = wait_for(lambda: (lambda r: r if r["shadow"]["all"]["pairs"] >= len(CORPUS)
                                   else None)(self.stack.semantic()), timeout=20)
        self.assertTrue(report, self.stack.semantic())
        self.stack.wait_stored(2 * len(CORPUS))
        entries = self.stack.get("/cache/entries?limit=100").json()["data"]
        cost = {e["cache_key"]: e["cost_total"] for e in entries}
        rows, suggested = self.expected([cost[k] for k in keys])
        figures = report["shadow"]["models"][MODEL]
        self.assertEqual(figures["misses"], 2 * len(CORPUS))
        self.assertEqual(figures["pairs"], len(CORPUS))
        for got, want in zip(figures["thresholds"], rows):
            with self.subTest(threshold=want["threshold"]):
                self.assertAlmostEqual(got["threshold"], want["threshold"])
                self.assertEqual(got["extra_hits"], want["extra_hits"])
                self.assertAlmostEqual(got["extra_hit_rate"], want["extra_hit_rate"], places=5)
                self.assertAlmostEqual(got["cost_saved"], want["cost_saved"], places=5)
                if want["agreement"] is None:
                    self.assertIsNone(got["agreement"])
                else:
                    self.assertAlmostEqual(got["agreement"], want["agreement"], places=5)
        self.assertEqual(figures["suggested_threshold"], suggested)
        self.assertEqual(report["shadow"]["suggested_threshold"], suggested)
        # The corpus is one where a threshold picked by feel (0.9) serves wrong answers.
        at90 = rows[10]
        self.assertLess(at90["agreement"], 0.98)
        self.assertIsNotNone(suggested)
        self.assertEqual(report["served"]["hits"], 0)


class ShadowAcrossARestartTest(unittest.TestCase):
    """The shadow figures are kept across a restart (CACHE_DIR/semantic/shadow.json), and a miss
    whose neighbour was stored before the restart is a pair: the neighbour's answer is read from
    the disk tier (without counting a use) when the gateway does not remember it. Before, such a
    pair was dropped and the figures started again at every restart."""

    def test_figures_and_old_neighbours_survive_a_restart(self):
        stack = SemanticStack(sets={"CACHE_SEMANTIC_SHADOW": "true", "CACHE_SEMANTIC_EF": "256"})
        self.addCleanup(stack.close)
        self.assertEqual(stack.semantic()["config"]["ef"], 256)
        (a0, b0), (a1, b1) = CORPUS[0], CORPUS[1]
        for n, (text, system) in enumerate(((a0, "pair 0"), (b0, "pair 0"), (a1, "pair 1")), 1):
            self.assertEqual(stack.post("/v1/chat/completions", chat(text, system=system),
                                        TOPIC).cache_status, "MISS")
            stack.wait_indexed(n)
        stack.wait_stored(3)
        before = wait_for(lambda: (lambda r: r if r["shadow"]["all"]["pairs"] >= 1 else None)(
            stack.semantic()), timeout=20)
        self.assertTrue(before, stack.semantic())
        self.assertEqual(before["shadow"]["all"]["misses"], 3)
        self.assertEqual(stack.restart_gateway(), 0)
        self.assertTrue((stack.cache_dir / "semantic" / "shadow.json").exists())
        self.assertEqual(stack.semantic()["config"]["ef"], 256)
        after = stack.semantic()["shadow"]
        self.assertEqual(after["all"]["misses"], 3)
        self.assertEqual(after["all"]["pairs"], 1)
        self.assertEqual(after["models"][MODEL]["thresholds"],
                         before["shadow"]["models"][MODEL]["thresholds"])
        # b1's neighbour, a1, was stored by the previous process.
        self.assertEqual(stack.post("/v1/chat/completions", chat(b1, system="pair 1"),
                                    TOPIC).cache_status, "MISS")
        report = wait_for(lambda: (lambda r: r if r["shadow"]["all"]["pairs"] >= 2 else None)(
            stack.semantic()), timeout=20)
        self.assertTrue(report, stack.semantic())
        self.assertEqual(report["shadow"]["all"]["misses"], 4)
        similarity = bow_cosine(a1, b1)
        row = report["shadow"]["all"]["thresholds"][int(similarity * 100) - 80]
        self.assertGreaterEqual(row["extra_hits"], 1)
        self.assertEqual(report["served"]["hits"], 0)


class PendingIndexBoundTest(unittest.TestCase):
    """A stored miss waits for its embedding (and holds its answer) before it is indexed: at most
    CACHE_SEMANTIC_MAX_PENDING at once. Beyond it the miss is answered and stored, not indexed,
    and counted; before, a miss storm against a slow embeddings endpoint queued without bound."""

    def test_misses_beyond_the_bound_are_answered_but_not_indexed(self):
        stack = SemanticStack(sets={"CACHE_SEMANTIC_INDEX": "true",
                                    "CACHE_SEMANTIC_MAX_PENDING": "2"}, start_gateway=False)
        self.addCleanup(stack.close)
        # Every upstream call (the chats and the embeddings the gateway asks for) takes 1.5 s:
        # six concurrent misses are answered together, then wait 1.5 s for their embeddings.
        stack.mock.stop()
        stack.mock = Process(["mock-upstream", "--listen", "127.0.0.1:0", "--latency-ms", "1500"],
                             stack.logs, "slow-mock")
        stack.upstream = f"http://127.0.0.1:{stack.mock.port}/v1"
        stack.start_gateway()
        statuses = []
        def ask(i):
            statuses.append(stack.post("/v1/chat/completions",
                                       chat(f"question number {i} about storms"), ALICE).cache_status)
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(statuses, ["MISS"] * 6)
        index = stack.semantic()["index"]
        self.assertEqual(index["skipped"], 4, index)
        self.assertLessEqual(index["pending"], 2, index)
        report = wait_for(lambda: (lambda i: i if i["pending"] == 0 else None)(
            stack.semantic()["index"]), timeout=20)
        self.assertTrue(report, stack.semantic()["index"])
        self.assertEqual(report["vectors"], 2)
        stack.wait_stored(6)  # stored all the same


class SemanticIndexLifeTest(unittest.TestCase):
    """The index across a restart, and vectors removed with their entries."""

    def setUp(self):
        self.stack = SemanticStack(sets={"CACHE_SEMANTIC_THRESHOLD": "0.9"})
        self.addCleanup(self.stack.close)

    def test_the_index_survives_a_restart(self):
        first = self.stack.post("/v1/chat/completions", chat(STORED), ALICE)
        self.stack.wait_indexed(1)
        self.assertEqual(self.stack.restart_gateway(), 0)
        self.assertTrue((self.stack.cache_dir / "semantic" / "manifest.json").exists())
        self.assertEqual(self.stack.semantic()["index"]["vectors"], 1)  # loaded, not re-embedded
        embeddings = self.stack.mock_stats()["paths"]["/v1/embeddings"]
        r = self.stack.post("/v1/chat/completions", chat(PARAPHRASE), ALICE)
        self.assertEqual(r.header("x-llmcache-match"), "semantic")
        self.assertEqual(r.header("x-llmcache-matched-key"), first.header("x-llmcache-key"))
        self.assertEqual(self.stack.mock_stats()["paths"]["/v1/embeddings"], embeddings + 1)

    def test_the_index_is_rebuilt_from_the_entries_when_its_files_are_missing(self):
        first = self.stack.post("/v1/chat/completions", chat(STORED), ALICE)
        other = self.stack.post("/v1/chat/completions", chat(STORED), BOB)  # another tenant
        self.stack.wait_indexed(2)
        self.stack.wait_stored(2)
        self.assertEqual(self.stack.stop_gateway(), 0)
        shutil.rmtree(self.stack.cache_dir / "semantic")
        self.stack.start_gateway()
        self.stack.wait_indexed(2)
        for headers, stored in ((ALICE, first), (BOB, other)):
            r = self.stack.post("/v1/chat/completions", chat(PARAPHRASE), headers)
            self.assertEqual(r.header("x-llmcache-match"), "semantic")
            self.assertEqual(r.header("x-llmcache-matched-key"), stored.header("x-llmcache-key"))

    def test_invalidation_removes_the_vector(self):
        first = self.stack.post("/v1/chat/completions", chat(STORED), ALICE)
        self.stack.wait_indexed(1)
        self.stack.wait_stored(1)
        r = self.stack.post("/cache/invalidate", {"key": first.header("x-llmcache-key")})
        self.assertEqual(r.status, 200, r)
        self.assertTrue(wait_for(lambda: self.stack.semantic()["index"]["vectors"] == 0))
        r = self.stack.post("/v1/chat/completions", chat(PARAPHRASE), ALICE)
        self.assertEqual(r.cache_status, "MISS")

    def test_eviction_from_the_last_tier_removes_the_vector(self):
        self.stack.close()
        # LRU in both tiers: the test knows which entry goes (the default, cost-sieve, keeps
        # the costlier one whatever its age).
        self.stack = SemanticStack(sets={"CACHE_SEMANTIC_THRESHOLD": "0.9",
                                         "CACHE_MEMORY_ENTRIES": "1", "CACHE_DISK_ENTRIES": "2",
                                         "CACHE_MEMORY_POLICY": "lru", "CACHE_DISK_POLICY": "lru"})
        self.addCleanup(self.stack.close)
        prompts = [STORED, UNRELATED, "explain quantum entanglement to a child"]
        for i, p in enumerate(prompts):
            self.stack.post("/v1/chat/completions", chat(p), ALICE)
            self.stack.wait_indexed(min(i + 1, 2))
        self.assertTrue(wait_for(lambda: self.stack.semantic()["index"]["vectors"] == 2),
                        self.stack.semantic()["index"])
        r = self.stack.post("/v1/chat/completions", chat(PARAPHRASE), ALICE)
        self.assertEqual(r.cache_status, "MISS")  # STORED was the one evicted


if __name__ == "__main__":
    unittest.main()
