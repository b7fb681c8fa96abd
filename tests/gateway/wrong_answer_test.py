"""Never a wrong answer (issue 14): everything that shapes an answer is in the key, and the
defaults are safe. Each case here was a HIT (or a shared failure) with another request's answer
before; the mock answers "Mock answer #N to: <question>", so a wrong hit shows another N or
another question. Over real HTTP: `llmcache serve` in front of `llmcache mock-upstream`."""
import json
import threading
import time
import unittest

from harness import Stack, request

CHAT = "/v1/chat/completions"


def chat(text, **extra):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    body.update(extra)
    return body


def content(res):
    return res.json()["choices"][0]["message"]["content"]


class WrongAnswerCase(unittest.TestCase):
    SETS = {}

    def setUp(self):
        self.s = Stack(self.SETS)
        self.addCleanup(self.s.close)

    def assertMissThenHit(self, body, headers=None, path=CHAT):
        first = self.s.post(path, body, headers)
        self.assertEqual(first.status, 200, first.body[:300])
        self.assertEqual(first.cache_status, "MISS")
        again = self.s.post(path, body, headers)
        self.assertEqual(again.cache_status, "HIT")
        return first

    def assertBothMiss(self, a, b, headers_a=None, headers_b=None, path_a=CHAT, path_b=CHAT):
        ra = self.s.post(path_a, a, headers_a)
        rb = self.s.post(path_b, b, headers_b)
        self.assertEqual((ra.status, rb.status), (200, 200), (ra.body[:200], rb.body[:200]))
        self.assertEqual(ra.cache_status, "MISS")
        self.assertEqual(rb.cache_status, "MISS", "served another request's answer: " +
                         rb.body[:200].decode(errors="replace"))
        self.assertNotEqual(content(ra), content(rb))
        return ra, rb


class DefaultNormalizationIsExact(WrongAnswerCase):
    def test_case_is_kept(self):
        ra, rb = self.assertBothMiss(chat("Echo exactly, keeping case: Hello World"),
                                     chat("Echo exactly, keeping case: HELLO WORLD"))
        self.assertIn("HELLO WORLD", content(rb))

    def test_indentation_is_kept(self):
        self.assertBothMiss(chat("def f():\n    return 1\n"), chat("def f():\n  return 1\n"))

    def test_base64_is_not_lowercased(self):
        self.assertBothMiss(chat("decode SGVsbG8gV29ybGQ="), chat("decode sgvsbg8gv29ybgq="))

    def test_the_same_text_still_hits(self):
        self.assertMissThenHit(chat("Hello World"))


class SeedModeIsOptInPerNamespace(WrongAnswerCase):
    SETS = {"CACHE_KEY_NORMALIZE_NAMESPACES": "faq=seed"}

    def test_seed_merges_case_only_in_the_namespace_that_asked_for_it(self):
        faq = {"x-llmcache-namespace": "faq"}
        first = self.s.post(CHAT, chat("What is  the refund policy?"), faq)
        self.assertEqual(first.cache_status, "MISS")
        merged = self.s.post(CHAT, chat("what is the REFUND policy?"), faq)
        self.assertEqual(merged.cache_status, "HIT")
        self.assertBothMiss(chat("Hello World"), chat("HELLO WORLD"))


class TheRouteAndTheQueryAreInTheKey(WrongAnswerCase):
    def setUp(self):
        self.s = Stack(start_gateway=False)
        self.addCleanup(self.s.close)
        self.s.start_gateway({"CACHE_PLATFORMS": f"other=http://127.0.0.1:{self.s.mock.port}/v1",
                              "CACHE_SCOPE": "global"})

    def test_another_platform_gets_its_own_answer(self):
        self.assertBothMiss(chat("Which model are you?"), chat("Which model are you?"),
                            path_b="/other/v1/chat/completions")
        self.assertMissThenHit(chat("again"), path="/other/v1/chat/completions")

    def test_an_answer_stored_through_one_platform_never_reaches_another_platforms_callers(self):
        # The attack: store through one platform with no-cache and a TTL of 0 (forever).
        poison = self.s.post("/other/v1/chat/completions", chat("pay to whom?"),
                             {"Cache-Control": "no-cache", "x-llmcache-ttl": "0"})
        self.assertEqual(poison.cache_status, "REFRESH")
        victim = self.s.post(CHAT, chat("pay to whom?"))
        self.assertEqual(victim.cache_status, "MISS")
        self.assertNotEqual(content(victim), content(poison))

    def test_the_query_string_is_in_the_key_in_any_order(self):
        body = chat("Hi")
        self.assertBothMiss(body, body, path_a=CHAT + "?api-version=2024-01-01",
                            path_b=CHAT + "?api-version=2025-05-05")
        first = self.s.post(CHAT + "?a=1&b=2", chat("order"))
        self.assertEqual(first.cache_status, "MISS")
        self.assertEqual(self.s.post(CHAT + "?b=2&a=1", chat("order")).cache_status, "HIT")


class AnswerShapingHeadersAreInTheKey(WrongAnswerCase):
    SETS = {"CACHE_KEY_HEADERS": "x-custom-shape"}

    def test_anthropic_beta_and_version_and_configured_headers(self):
        body = chat("long answer please")
        self.assertMissThenHit(body)
        for header, value in (("anthropic-beta", "output-128k-2025-02-19"),
                              ("anthropic-version", "2023-06-01"), ("openai-beta", "assistants=v2"),
                              ("x-custom-shape", "1")):
            with self.subTest(header=header):
                res = self.s.post(CHAT, body, {header: value})
                self.assertEqual(res.cache_status, "MISS")
                self.assertEqual(self.s.post(CHAT, body, {header: value}).cache_status, "HIT")

    def test_other_headers_do_not_split_the_key(self):
        body = chat("same question")
        self.assertMissThenHit(body)
        self.assertEqual(self.s.post(CHAT, body, {"x-request-id": "abc"}).cache_status, "HIT")


class EveryCredentialCarrierIsATenant(WrongAnswerCase):
    def test_tenants_with_other_credential_headers_do_not_share_answers(self):
        for header in ("api-key", "x-goog-api-key", "x-api-key", "Authorization"):
            with self.subTest(header=header):
                body = chat(f"secret report via {header}")
                a = self.s.post(CHAT, body, {header: "tenant-A"})
                b = self.s.post(CHAT, body, {header: "tenant-B"})
                self.assertEqual((a.cache_status, b.cache_status), ("MISS", "MISS"))
                self.assertEqual(self.s.post(CHAT, body, {header: "tenant-A"}).cache_status, "HIT")

    def test_a_key_query_parameter_is_a_tenant_too(self):
        body = chat("google style")
        a = self.s.post(CHAT + "?key=AIza-A", body)
        b = self.s.post(CHAT + "?key=AIza-B", body)
        self.assertEqual((a.cache_status, b.cache_status), ("MISS", "MISS"))
        self.assertEqual(self.s.post(CHAT + "?key=AIza-A", body).cache_status, "HIT")

    def test_no_credential_is_the_anonymous_tenant_and_tenant_ids_are_keyed(self):
        body = chat("anyone")
        self.s.post(CHAT, body)
        self.s.post(CHAT, body, {"api-key": "tenant-A"})
        self.s.wait_stored(2)
        rows = request(self.s.gateway.port, "GET", "/cache/entries").json()["data"]
        tenants = {r["tenant"] for r in rows}
        self.assertIn("anonymous", tenants)
        self.assertNotIn("", tenants)
        secret_file = self.s.cache_dir / "scope-secret"
        self.assertEqual(secret_file.stat().st_mode & 0o777, 0o600)
        import hashlib
        self.assertNotIn(hashlib.sha256(b"tenant-A").hexdigest()[:16], tenants)
        self.assertIn(self.s.scope_of("tenant-A"), tenants)


class CoalescingNeverSharesAFailure(WrongAnswerCase):
    SETS = {"CACHE_SCOPE": "global"}

    def test_a_caller_with_a_bad_key_does_not_hand_its_401_to_a_waiter(self):
        body = chat("shared question")
        results = {}

        def bad():
            results["bad"] = self.s.post(CHAT, body, {"Authorization": "Bearer bad",
                                                     "x-mock-status": "401",
                                                     "x-mock-latency-ms": "800"})

        t = threading.Thread(target=bad)
        t.start()
        time.sleep(0.3)  # the bad request leads the flight; this one waits for it
        good = self.s.post(CHAT, body, {"Authorization": "Bearer good"})
        t.join()
        self.assertEqual(results["bad"].status, 401)
        self.assertEqual(good.status, 200, good.body[:200])
        self.assertIn(good.cache_status, ("MISS", "HIT"))

    def test_a_waiter_whose_leader_went_away_gets_an_answer(self):
        import socket
        body = json.dumps(chat("abandoned")).encode()
        # The leader sends its request and disconnects while the upstream is slow.
        s = socket.create_connection(("127.0.0.1", self.s.gateway.port))
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"x-mock-latency-ms: 800\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        time.sleep(0.3)
        results = {}
        t = threading.Thread(target=lambda: results.setdefault(
            "w", self.s.post(CHAT, json.loads(body))))
        t.start()
        time.sleep(0.2)
        s.close()
        t.join()
        self.assertEqual(results["w"].status, 200, results["w"].body[:200])


class TheKeySpecFixes(WrongAnswerCase):
    def test_a_null_max_tokens_does_not_hide_max_completion_tokens(self):
        self.assertBothMiss(chat("count", max_tokens=None, max_completion_tokens=100),
                            chat("count", max_tokens=None, max_completion_tokens=5))

    def test_both_limits_set_keep_max_completion_tokens_in_the_key(self):
        self.assertBothMiss(chat("count", max_tokens=64, max_completion_tokens=32),
                            chat("count", max_tokens=64, max_completion_tokens=16))

    def test_a_body_may_not_forge_the_request_context(self):
        res = self.s.post(CHAT, chat("x", **{"@context": {"platform": "other"}}))
        self.assertEqual(res.status, 400)
        self.assertIn("@context", res.json()["error"]["message"])


class OnlyA200IsStored(WrongAnswerCase):
    def test_other_2xx_answers_are_relayed_but_not_stored(self):
        for status in (203, 206, 299):
            with self.subTest(status=status):
                body = chat(f"status {status}")
                first = self.s.post(CHAT, body, {"x-mock-status": str(status)})
                self.assertEqual(first.status, status)
                self.assertEqual(first.cache_status, "UNCACHEABLE")
                again = self.s.post(CHAT, body)
                self.assertEqual(again.cache_status, "MISS")


if __name__ == "__main__":
    unittest.main()
