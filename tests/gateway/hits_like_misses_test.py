"""Issue 17: a hit looks like the real thing to every client.

- A streamed miss whose client did not ask for usage still records the answer's tokens and cost
  (the gateway asks the provider for usage and hides the usage chunk from that client): later
  hits report usage to a client that asks, and /cache/analytics counts the money saved.
- A hit replays the provider's request id (x-request-id) and processing time as the miss had
  them, never anything outside the allowlist.
The mock behaves as OpenAI does: a usage chunk only for stream_options.include_usage, and a
fresh x-request-id on every answer.
"""
import json
import unittest

from harness import Stack, request

CHAT = "/v1/chat/completions"


def chat(text, **extra):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    body.update(extra)
    return body


def chunks(body: bytes):
    """The JSON chunks of an OpenAI SSE body, [DONE] left out."""
    out = []
    for line in body.split(b"\n"):
        if line.startswith(b"data: ") and line != b"data: [DONE]":
            out.append(json.loads(line[len(b"data: "):]))
    return out


def usage_chunks(body: bytes):
    return [c for c in chunks(body) if c.get("choices") == [] and isinstance(c.get("usage"), dict)]


class StreamUsageTest(unittest.TestCase):
    def setUp(self):
        self.s = Stack()
        self.addCleanup(self.s.close)

    def test_a_stream_that_did_not_ask_for_usage_records_it(self):
        miss = self.s.post(CHAT, chat("usage please", stream=True))
        self.assertEqual(miss.status, 200, miss.body)
        self.assertEqual(miss.cache_status, "MISS")
        self.assertEqual(usage_chunks(miss.body), [], "the client did not ask for the usage chunk")
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks(miss.body)
                       if c.get("choices"))
        self.assertTrue(text)

        # A client that asks for usage gets it from the stored answer: the tokens were recorded.
        hit = self.s.post(CHAT, chat("usage please", stream=True,
                                     stream_options={"include_usage": True}))
        self.assertEqual(hit.cache_status, "HIT")
        usage = usage_chunks(hit.body)
        self.assertEqual(len(usage), 1, hit.body)
        self.assertGreater(usage[0]["usage"]["prompt_tokens"], 0)
        self.assertGreater(usage[0]["usage"]["completion_tokens"], 0)
        # And a non-streamed hit carries the same usage.
        plain = self.s.post(CHAT, chat("usage please"))
        self.assertEqual(plain.cache_status, "HIT")
        self.assertEqual(plain.json()["usage"]["prompt_tokens"], usage[0]["usage"]["prompt_tokens"])

        # The analytics count the money the hits saved (0 when the entry had no usage).
        a = request(self.s.gateway.port, "GET", "/cache/analytics").json()
        self.assertEqual(a["hits"], 2)
        self.assertGreater(a["cost_saved"]["total"], 0)

        # A client without include_usage never sees the chunk on a hit either.
        again = self.s.post(CHAT, chat("usage please", stream=True))
        self.assertEqual(again.cache_status, "HIT")
        self.assertEqual(usage_chunks(again.body), [])
        self.assertEqual(self.s.upstream_calls(), 1)

    def test_a_client_that_asked_for_usage_gets_it_on_the_miss(self):
        miss = self.s.post(CHAT, chat("usage asked", stream=True,
                                      stream_options={"include_usage": True}))
        self.assertEqual(miss.cache_status, "MISS")
        self.assertEqual(len(usage_chunks(miss.body)), 1)

    def test_switched_off_the_stream_is_relayed_as_asked(self):
        s = Stack({"CACHE_STREAM_USAGE": "false"})
        self.addCleanup(s.close)
        miss = s.post(CHAT, chat("no usage", stream=True))
        self.assertEqual(miss.cache_status, "MISS")
        hit = s.post(CHAT, chat("no usage", stream=True, stream_options={"include_usage": True}))
        self.assertEqual(hit.cache_status, "HIT")
        self.assertEqual(usage_chunks(hit.body), [], "nothing recorded, nothing invented")


class ProviderHeadersTest(unittest.TestCase):
    def setUp(self):
        self.s = Stack()
        self.addCleanup(self.s.close)

    def test_a_hit_replays_the_request_id_of_the_miss(self):
        for stream in (False, True):
            with self.subTest(stream=stream):
                body = chat(f"request id {stream}", stream=stream)
                miss = self.s.post(CHAT, body)
                self.assertEqual(miss.cache_status, "MISS")
                rid = miss.header("x-request-id")
                self.assertTrue(rid and rid.startswith("req_mock_"), rid)
                hit = self.s.post(CHAT, body)
                self.assertEqual(hit.cache_status, "HIT")
                self.assertEqual(hit.header("x-request-id"), rid)
                # A streamed miss replayed as JSON, and the other way round, keep it too.
                other = self.s.post(CHAT, chat(f"request id {stream}", stream=not stream))
                self.assertEqual(other.cache_status, "HIT")
                self.assertEqual(other.header("x-request-id"), rid)

    def test_the_replayed_headers_survive_a_restart_and_the_disk_tier(self):
        body = chat("from disk")
        rid = self.s.post(CHAT, body).header("x-request-id")
        self.s.wait_stored(1)
        self.s.restart_gateway()
        hit = self.s.post(CHAT, body)
        self.assertEqual(hit.cache_status, "HIT")
        self.assertEqual(hit.header("x-llmcache-layer"), "disk")
        self.assertEqual(hit.header("x-request-id"), rid)


if __name__ == "__main__":
    unittest.main()
