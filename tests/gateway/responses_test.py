"""The OpenAI Responses API (`POST /v1/responses`) through `llmcache serve`, over real HTTP, in
front of `llmcache mock-upstream` (issue 17, item 1). The mock writes its own Responses streams
(word-sized deltas with an `obfuscation` member), not the gateway's synthesizer, so a replay
that equals the relayed bytes is the recorded stream, and a synthesized one can be told apart.
"""
import json
import time
import unittest

from harness import Stack, request

RESPONSES = "/v1/responses"


def resp(question="What is the capital of France?", **extra):
    body = {"model": "gpt-4o-mini", "instructions": "You are terse.", "input": question}
    body.update(extra)
    return body


def events_of(body: bytes):
    """(event name, parsed data) of each SSE event of a body, in order."""
    out = []
    for block in body.decode().split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                data.append(line[len("data: "):])
        if data:
            out.append((name, json.loads("\n".join(data))))
    return out


def text_of(events):
    return "".join(d["delta"] for n, d in events if n == "response.output_text.delta")


class ResponsesTestCase(unittest.TestCase):
    SETS = None

    def setUp(self):
        self.s = Stack(self.SETS)
        self.addCleanup(self.s.close)

    def assertStatus(self, res, code, cache_status=None):
        self.assertEqual(res.status, code, res)
        if cache_status is not None:
            self.assertEqual(res.cache_status, cache_status, res)


class ResponsesCachingTest(ResponsesTestCase):
    def test_a_repeated_response_is_a_miss_then_a_hit_with_the_same_body(self):
        first = self.s.post(RESPONSES, resp())
        self.assertStatus(first, 200, "MISS")
        doc = first.json()
        self.assertEqual(doc["object"], "response")
        self.assertEqual(doc["status"], "completed")
        self.assertIn("Mock answer #1", doc["output"][0]["content"][0]["text"])
        second = self.s.post(RESPONSES, resp())
        self.assertStatus(second, 200, "HIT")
        self.assertEqual(second.header("x-llmcache-layer"), "memory")
        self.assertEqual(second.header("x-llmcache-key"), first.header("x-llmcache-key"))
        self.assertEqual(second.body, first.body)
        self.assertEqual(self.s.upstream_calls(), 1)

    def test_a_streamed_miss_relays_the_events_and_a_streamed_hit_replays_the_same_events(self):
        body = resp("Stream me a story.", stream=True)
        first = self.s.post(RESPONSES, body)
        self.assertStatus(first, 200, "MISS")
        self.assertIsNone(first.error)
        self.assertIn("text/event-stream", first.header("content-type"))
        events = events_of(first.body)
        names = [n for n, _ in events]
        self.assertEqual(names[0], "response.created")
        self.assertEqual(names[-1], "response.completed")
        self.assertGreater(names.count("response.output_text.delta"), 3)  # the mock's words
        self.assertIn("Mock answer #1 to: Stream me a story.", text_of(events))
        second = self.s.post(RESPONSES, body)
        self.assertStatus(second, 200, "HIT")
        self.assertIn("text/event-stream", second.header("content-type"))
        self.assertEqual(events_of(second.body), events)
        self.assertEqual(second.body, first.body)
        self.assertEqual(self.s.upstream_calls(), 1)

    def test_a_stored_stream_answers_a_plain_request_and_a_plain_answer_a_stream(self):
        streamed = self.s.post(RESPONSES, resp("one", stream=True))
        self.assertStatus(streamed, 200, "MISS")
        completed = events_of(streamed.body)[-1][1]["response"]
        plain = self.s.post(RESPONSES, resp("one"))
        self.assertStatus(plain, 200, "HIT")
        self.assertEqual(plain.json(), completed)

        as_json = self.s.post(RESPONSES, resp("two"))
        self.assertStatus(as_json, 200, "MISS")
        as_stream = self.s.post(RESPONSES, resp("two", stream=True))
        self.assertStatus(as_stream, 200, "HIT")
        events = events_of(as_stream.body)
        self.assertEqual([n for n, _ in events][:2], ["response.created", "response.in_progress"])
        self.assertEqual(events[-1], ("response.completed", events[-1][1]))
        self.assertEqual(events[-1][1]["response"], as_json.json())
        self.assertEqual(text_of(events), as_json.json()["output"][0]["content"][0]["text"])
        self.assertEqual([d["sequence_number"] for _, d in events], list(range(len(events))))
        self.assertEqual(self.s.upstream_calls(), 2)

    def test_instructions_input_and_text_format_are_in_the_key_metadata_is_not(self):
        base = self.s.post(RESPONSES, resp())
        self.assertStatus(base, 200, "MISS")
        key = base.header("x-llmcache-key")
        variants = [resp(instructions="You are verbose."), resp("Another question"),
                    resp(text={"format": {"type": "json_schema", "name": "a", "strict": True,
                                          "schema": {"type": "object"}}}),
                    resp(previous_response_id="resp_abc"), resp(store=False),
                    resp(reasoning={"effort": "low"}), resp(include=["reasoning.encrypted_content"])]
        keys = {key}
        for v in variants:
            r = self.s.post(RESPONSES, v)
            self.assertStatus(r, 200, "MISS")
            keys.add(r.header("x-llmcache-key"))
        self.assertEqual(len(keys), len(variants) + 1)
        # metadata and user do not change the answer: one entry.
        same = self.s.post(RESPONSES, resp(metadata={"trace": "x"}, user="u-1"))
        self.assertStatus(same, 200, "HIT")
        self.assertEqual(same.header("x-llmcache-key"), key)

    def test_a_json_schema_answer_is_cached_as_valid_json(self):
        body = resp(text={"format": {"type": "json_schema", "name": "answer", "strict": True,
                                     "schema": {"type": "object",
                                                "properties": {"answer": {"type": "string"}}}}})
        first = self.s.post(RESPONSES, body)
        self.assertStatus(first, 200, "MISS")
        self.assertIn("answer", json.loads(first.json()["output"][0]["content"][0]["text"]))
        second = self.s.post(RESPONSES, body)
        self.assertStatus(second, 200, "HIT")
        self.assertEqual(second.body, first.body)

    def test_a_tool_call_stream_is_replayed_and_assembled(self):
        tools = [{"type": "function", "name": "weather", "parameters": {"type": "object"}}]
        first = self.s.post(RESPONSES, resp("Weather?", tools=tools, stream=True))
        self.assertStatus(first, 200, "MISS")
        events = events_of(first.body)
        self.assertIn("response.function_call_arguments.delta", [n for n, _ in events])
        second = self.s.post(RESPONSES, resp("Weather?", tools=tools, stream=True))
        self.assertStatus(second, 200, "HIT")
        self.assertEqual(second.body, first.body)
        plain = self.s.post(RESPONSES, resp("Weather?", tools=tools))
        self.assertStatus(plain, 200, "HIT")
        call = plain.json()["output"][0]
        self.assertEqual((call["type"], call["name"], json.loads(call["arguments"])),
                         ("function_call", "weather", {"city": "Paris"}))


class ResponsesNotCachedTest(ResponsesTestCase):
    def test_background_requests_are_never_cached(self):
        for _ in range(2):
            r = self.s.post(RESPONSES, resp(background=True))
            self.assertStatus(r, 200, "BYPASS")
        self.assertEqual(self.s.upstream_calls(), 2)
        # The same request in the foreground is its own entry, cached.
        self.assertStatus(self.s.post(RESPONSES, resp()), 200, "MISS")
        self.assertStatus(self.s.post(RESPONSES, resp()), 200, "HIT")

    def test_a_conversation_and_a_prompt_without_version_are_never_cached(self):
        for body in (resp(conversation="conv_123"), resp(prompt={"id": "pmpt_1"})):
            for _ in range(2):
                self.assertStatus(self.s.post(RESPONSES, body), 200, "BYPASS")
        versioned = resp(prompt={"id": "pmpt_1", "version": "2"})
        self.assertStatus(self.s.post(RESPONSES, versioned), 200, "MISS")
        self.assertStatus(self.s.post(RESPONSES, versioned), 200, "HIT")

    def test_a_cut_stream_is_not_stored(self):
        body = resp("cut me", stream=True)
        first = self.s.post(RESPONSES, body, {"x-mock-abort-after": "5"})
        self.assertEqual(first.status, 200)
        self.assertNotIn(b"response.completed", first.body)
        self.assertIsNotNone(first.error, "a cut stream must not end like a complete one")
        second = self.s.post(RESPONSES, body)
        self.assertStatus(second, 200, "MISS")
        self.assertIn(b"event: response.completed", second.body)
        self.assertStatus(self.s.post(RESPONSES, body), 200, "HIT")
        self.assertEqual(self.s.upstream_calls(), 2)

    def test_a_stream_without_response_completed_or_ending_incomplete_is_not_stored(self):
        for header in ({"x-mock-no-done": "1"}, {"x-mock-incomplete": "1"}):
            body = resp(f"unfinished {header}", stream=True)
            first = self.s.post(RESPONSES, body, header)
            self.assertEqual(first.status, 200)
            self.assertNotIn(b"response.completed", first.body)
            second = self.s.post(RESPONSES, body)
            self.assertNotEqual(second.cache_status, "HIT", second)
            self.assertIn(b"event: response.completed", second.body)

    def test_an_invalid_body_is_a_400_in_the_openai_shape(self):
        r = self.s.post(RESPONSES, {"model": "gpt-4o-mini", "input": 42})
        self.assertStatus(r, 400)
        self.assertEqual(r.json()["error"]["type"], "invalid_request_error")
        self.assertIn("'input'", r.json()["error"]["message"])
        self.assertEqual(self.s.upstream_calls(), 0)

    def test_get_delete_and_input_items_pass_through_uncached(self):
        auth = {"Authorization": "Bearer sk-x"}
        for method, path in (("GET", "/v1/responses/resp_1"), ("GET", "/v1/responses/resp_1"),
                             ("GET", "/v1/responses/resp_1/input_items"),
                             ("DELETE", "/v1/responses/resp_1"),
                             ("POST", "/v1/responses/resp_1/cancel")):
            r = request(self.s.gateway.port, method, path, None, auth)
            self.assertEqual(r.cache_status, "BYPASS", (method, path, r))
        stats = self.s.mock_stats()
        self.assertEqual(stats["calls"], 5)
        self.assertEqual(stats["authorized_calls"], 5)


class ResponsesAnalyticsTest(ResponsesTestCase):
    def test_a_streamed_miss_feeds_usage_and_cost_into_the_analytics(self):
        body = resp("Count my tokens please.", stream=True)
        first = self.s.post(RESPONSES, body)
        self.assertStatus(first, 200, "MISS")
        usage = events_of(first.body)[-1][1]["response"]["usage"]
        self.assertGreater(usage["output_tokens"], 0)
        self.assertStatus(self.s.post(RESPONSES, body), 200, "HIT")
        # gpt-4o-mini: $0.15 / $0.60 per million tokens (src/upstream/pricing.json).
        cost = usage["input_tokens"] * 0.15e-6 + usage["output_tokens"] * 0.6e-6
        deadline = time.monotonic() + 10
        while True:
            a = request(self.s.gateway.port, "GET", "/cache/analytics").json()
            if a["total_requests"] >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual((a["hits"], a["misses"]), (1, 1))
        self.assertAlmostEqual(a["cost_spent"], cost, places=12)
        self.assertAlmostEqual(a["cost_saved"]["total"], cost, places=12)
        row = request(self.s.gateway.port, "GET", "/cache/entries").json()["data"][0]
        self.assertEqual(row["endpoint"], "openai.responses")
        self.assertEqual(row["tokens"], {"input": usage["input_tokens"],
                                         "output": usage["output_tokens"]})


if __name__ == "__main__":
    unittest.main()
