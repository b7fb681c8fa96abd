"""`llmcache serve` over real HTTP, in front of `llmcache mock-upstream`.

Every test starts its own mock and gateway (port 0, temp cache dir) through harness.Stack and
stops them in a cleanup, also when the test fails. The mock numbers its answers ("Mock answer
#N"), so a cached answer can be told from a fresh one, and its /mock/stats counts the calls
that reached it.
"""
import http.client
import http.server
import json
import os
import socket
import threading
import time
import unittest

from harness import Stack, request, run_cli

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"


def chat(text="What is the capital of France?", **extra):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    body.update(extra)
    return body


def chat_stream(text="What is the capital of France?", **extra):
    """A streaming chat request that asks for the usage chunk: the gateway asks for it on every
    streamed miss but hides it from a client that did not (rewriting that client's events), and a
    replay keeps it only for a client that asked (stream_options is not part of the key), so
    only then are the relayed and the replayed bytes the same."""
    return chat(text, stream=True, stream_options={"include_usage": True}, **extra)


def claude(text="What is the capital of France?", **extra):
    body = {"model": "claude-3-5-haiku-latest", "max_tokens": 64,
            "messages": [{"role": "user", "content": text}]}
    body.update(extra)
    return body


def sse_data(body: bytes):
    """The data: payloads of an SSE body, in order."""
    return [line[len(b"data: "):] for line in body.split(b"\n") if line.startswith(b"data: ")]


class GatewayTestCase(unittest.TestCase):
    SETS = None

    def setUp(self):
        self.s = self.start(self.SETS)

    def start(self, sets=None, start_gateway=True):
        s = Stack(sets, start_gateway=start_gateway)
        self.addCleanup(s.close)
        return s

    def assertStatus(self, res, code, cache_status=None):
        self.assertEqual(res.status, code, res)
        if cache_status is not None:
            self.assertEqual(res.cache_status, cache_status, res)


class CachingTest(GatewayTestCase):
    def test_a_repeated_request_is_a_miss_then_a_hit_from_memory_with_the_same_body(self):
        auth = "Bearer sk-test-abc"
        body = chat()
        first = self.s.post(CHAT, body, {"Authorization": auth})
        self.assertStatus(first, 200, "MISS")
        second = self.s.post(CHAT, body, {"Authorization": auth})
        self.assertStatus(second, 200, "HIT")
        self.assertEqual(second.header("x-llmcache-layer"), "memory")
        self.assertEqual(second.body, first.body)
        self.assertIsNotNone(second.header("age"))
        self.assertGreaterEqual(int(second.header("age")), 0)
        self.assertEqual(self.s.upstream_calls(), 1)
        # The key in the header is the one `llmcache key` computes (the tenant is the key's hash).
        rc, out, err = run_cli(["key", "--scope", self.s.scope_of(auth)], json.dumps(body).encode())
        self.assertEqual(rc, 0, err)
        expected = json.loads(out)["cache_key"]
        self.assertEqual(first.header("x-llmcache-key"), expected)
        self.assertEqual(second.header("x-llmcache-key"), expected)

    def test_the_key_header_matches_the_cli_for_a_request_without_credentials(self):
        body = chat("no credentials here")
        res = self.s.post(CHAT, body)
        self.assertStatus(res, 200, "MISS")
        # Without a credential the request is the "anonymous" tenant's (docs/http-api.md).
        rc, out, err = run_cli(["key", "--scope", "anonymous"], json.dumps(body).encode())
        self.assertEqual(rc, 0, err)
        self.assertEqual(res.header("x-llmcache-key"), json.loads(out)["cache_key"])

    def test_a_restarted_gateway_serves_a_hit_from_disk(self):
        first = self.s.post(CHAT, chat())
        self.assertStatus(first, 200, "MISS")
        self.assertEqual(self.s.restart_gateway(), 0)
        second = self.s.post(CHAT, chat())
        self.assertStatus(second, 200, "HIT")
        self.assertEqual(second.header("x-llmcache-layer"), "disk")
        self.assertEqual(second.body, first.body)
        # A disk hit is promoted: the next one comes from memory.
        third = self.s.post(CHAT, chat())
        self.assertStatus(third, 200, "HIT")
        self.assertEqual(third.header("x-llmcache-layer"), "memory")
        self.assertEqual(self.s.upstream_calls(), 1)

    def test_an_anthropic_message_is_a_miss_then_a_hit(self):
        h = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
        first = self.s.post(MESSAGES, claude(), h)
        self.assertStatus(first, 200, "MISS")
        self.assertEqual(first.json()["type"], "message")
        second = self.s.post(MESSAGES, claude(), h)
        self.assertStatus(second, 200, "HIT")
        self.assertEqual(second.body, first.body)
        self.assertEqual(self.s.upstream_calls(), 1)


class StreamingTest(GatewayTestCase):
    def test_a_streaming_miss_relays_the_events_and_a_streaming_hit_replays_the_same_bytes(self):
        body = chat_stream()
        first = self.s.post(CHAT, body)
        self.assertStatus(first, 200, "MISS")
        self.assertIsNone(first.error)
        self.assertIn("text/event-stream", first.header("content-type"))
        events = sse_data(first.body)
        self.assertEqual(events[-1], b"[DONE]")
        self.assertIn("Mock answer #1", "".join(
            json.loads(e)["choices"][0]["delta"].get("content") or ""
            for e in events[:-1] if json.loads(e)["choices"]))
        second = self.s.post(CHAT, body)
        self.assertStatus(second, 200, "HIT")
        self.assertIn("text/event-stream", second.header("content-type"))
        self.assertEqual(second.body, first.body)
        self.assertEqual(self.s.upstream_calls(), 1)

    def test_a_stored_json_answer_serves_a_streaming_request_and_a_stored_stream_a_json_one(self):
        # `stream` is not part of the key (KEYSPEC): one entry serves both forms.
        as_json = self.s.post(CHAT, chat("one entry"))
        self.assertStatus(as_json, 200, "MISS")
        as_stream = self.s.post(CHAT, chat("one entry", stream=True))
        self.assertStatus(as_stream, 200, "HIT")
        self.assertIn("text/event-stream", as_stream.header("content-type"))
        events = sse_data(as_stream.body)
        self.assertEqual(events[-1], b"[DONE]")
        text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                       for e in events[:-1] if json.loads(e)["choices"])
        self.assertEqual(text, as_json.json()["choices"][0]["message"]["content"])

        streamed = self.s.post(MESSAGES, claude("other entry", stream=True))
        self.assertStatus(streamed, 200, "MISS")
        as_message = self.s.post(MESSAGES, claude("other entry"))
        self.assertStatus(as_message, 200, "HIT")
        doc = as_message.json()
        self.assertEqual(doc["type"], "message")
        self.assertIn("Mock answer #2", doc["content"][0]["text"])
        self.assertEqual(self.s.upstream_calls(), 2)

    def test_an_anthropic_stream_is_replayed_byte_for_byte(self):
        body = claude(stream=True)
        first = self.s.post(MESSAGES, body, {"x-api-key": "k"})
        self.assertStatus(first, 200, "MISS")
        self.assertIn(b"event: message_stop", first.body)
        second = self.s.post(MESSAGES, body, {"x-api-key": "k"})
        self.assertStatus(second, 200, "HIT")
        self.assertEqual(second.body, first.body)
        self.assertEqual(self.s.upstream_calls(), 1)

    def test_a_cut_stream_is_not_stored(self):
        body = chat_stream("cut me")
        first = self.s.post(CHAT, body, {"x-mock-abort-after": "2"})
        self.assertEqual(first.status, 200)
        self.assertNotIn(b"[DONE]", first.body)
        # The upstream broke off: the client sees a broken response, not one that looks whole.
        self.assertIsNotNone(first.error, "a cut stream must not end like a complete one")
        second = self.s.post(CHAT, body)
        self.assertStatus(second, 200, "MISS")
        self.assertIn(b"[DONE]", second.body)
        self.assertEqual(self.s.upstream_calls(), 2)
        third = self.s.post(CHAT, body)
        self.assertStatus(third, 200, "HIT")
        self.assertEqual(third.body, second.body)

    def test_a_stream_without_its_final_event_is_not_stored(self):
        body = chat("no done", stream=True)
        first = self.s.post(CHAT, body, {"x-mock-no-done": "1"})
        self.assertEqual(first.status, 200)
        self.assertNotIn(b"[DONE]", first.body)
        second = self.s.post(CHAT, body)
        self.assertEqual(second.status, 200)
        self.assertNotEqual(second.cache_status, "HIT", second)
        self.assertIn(b"[DONE]", second.body)
        self.assertEqual(self.s.upstream_calls(), 2)

    def test_an_anthropic_stream_without_message_stop_is_not_stored(self):
        body = claude("no stop", stream=True)
        first = self.s.post(MESSAGES, body, {"x-mock-no-done": "1"})
        self.assertEqual(first.status, 200)
        self.assertNotIn(b"message_stop", first.body)
        second = self.s.post(MESSAGES, body)
        self.assertNotEqual(second.cache_status, "HIT", second)
        self.assertIn(b"message_stop", second.body)
        self.assertEqual(self.s.upstream_calls(), 2)


class UpstreamErrorTest(GatewayTestCase):
    def check_error_passes_through_uncached(self, code, path, body):
        direct = self.s.mock_direct("POST", path, body, {"x-mock-status": str(code)})
        first = self.s.post(path, body, {"x-mock-status": str(code)})
        self.assertEqual(first.status, code, first)
        self.assertEqual(first.body, direct.body)
        self.assertNotEqual(first.cache_status, "MISS")
        second = self.s.post(path, body)
        self.assertStatus(second, 200, "MISS")
        self.assertEqual(self.s.upstream_calls(), 3)  # direct + error + the retry

    def test_an_upstream_500_passes_through_unchanged_and_is_not_cached(self):
        self.check_error_passes_through_uncached(500, CHAT, chat("five hundred"))

    def test_an_upstream_429_passes_through_unchanged_and_is_not_cached(self):
        self.check_error_passes_through_uncached(429, CHAT, chat("rate limited"))

    def test_an_anthropic_upstream_529_passes_through_unchanged_and_is_not_cached(self):
        self.check_error_passes_through_uncached(529, MESSAGES, claude("overloaded"))

    def test_an_unreachable_upstream_is_a_502_in_the_provider_shape(self):
        port = str(self.s.mock.port)
        self.s.mock.stop()
        res = self.s.post(CHAT, chat("anyone there?"))
        self.assertEqual(res.status, 502, res)
        self.assertIn("message", res.json()["error"])
        res = self.s.post(MESSAGES, claude("anyone there?"))
        self.assertEqual(res.status, 502, res)
        self.assertEqual(res.json()["type"], "error")
        # The client is not told where the gateway sends its requests (issue 17: the upstream's
        # URL was in the message); the operator's log has it.
        for body in (res.body, self.s.post(CHAT, chat("still there?")).body):
            self.assertNotIn(b"127.0.0.1", body)
            self.assertNotIn(port.encode(), body)
            self.assertNotIn(b"http://", body)


class ValidationTest(GatewayTestCase):
    SETS = {"CACHE_MAX_BODY_BYTES": "2048"}

    def test_bad_json_is_a_400_in_the_openai_shape(self):
        res = self.s.post(CHAT, b'{"model": "gpt-4o-mini", "messages": [')
        self.assertStatus(res, 400, "INVALID")
        err = res.json()["error"]
        self.assertIsInstance(err["message"], str)
        self.assertEqual(err["type"], "invalid_request_error")
        self.assertEqual(self.s.upstream_calls(), 0)

    def test_a_bad_anthropic_body_is_a_400_in_the_anthropic_shape(self):
        body = {"model": "claude-3-5-haiku-latest", "messages": [{"role": "user", "content": "hi"}]}
        res = self.s.post(MESSAGES, body)  # no max_tokens
        self.assertStatus(res, 400, "INVALID")
        doc = res.json()
        self.assertEqual(doc["type"], "error")
        self.assertEqual(doc["error"]["type"], "invalid_request_error")
        self.assertIn("max_tokens", doc["error"]["message"])
        res = self.s.post(MESSAGES, b"not json at all")
        self.assertStatus(res, 400)
        self.assertEqual(res.json()["type"], "error")
        self.assertEqual(self.s.upstream_calls(), 0)

    def test_a_body_over_the_limit_is_a_413_in_the_providers_shape_and_the_gateway_keeps_serving(self):
        big = "x" * 4096
        res = self.s.post(CHAT, chat(big))
        self.assertEqual(res.status, 413, res)
        self.assertIn("message", res.json()["error"])
        res = self.s.post(MESSAGES, claude(big))
        self.assertEqual(res.status, 413, res)
        doc = res.json()
        self.assertEqual(doc["type"], "error")
        self.assertIn("message", doc["error"])
        self.assertEqual(self.s.upstream_calls(), 0)
        ok = self.s.post(CHAT, chat("small"))
        self.assertStatus(ok, 200, "MISS")

    def test_an_unknown_platform_is_a_404(self):
        res = self.s.post("/nosuchplatform/v1/chat/completions", chat())
        self.assertEqual(res.status, 404, res)
        self.assertIn("nosuchplatform", res.json()["error"]["message"])
        res = self.s.post("/nosuchplatform/v1/messages", claude())
        self.assertEqual(res.status, 404, res)
        self.assertEqual(res.json()["type"], "error")
        res = self.s.post("/not-an-api-path", chat())
        self.assertEqual(res.status, 404, res)
        self.assertEqual(self.s.upstream_calls(), 0)

    def test_a_bad_ttl_header_is_a_400(self):
        res = self.s.post(CHAT, chat(), {"x-llmcache-ttl": "soon"})
        self.assertStatus(res, 400, "INVALID")
        self.assertIn("x-llmcache-ttl", res.json()["error"]["message"])


class ConnectionTest(GatewayTestCase):
    def test_one_keep_alive_connection_carries_misses_hits_and_errors(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.s.gateway.port, timeout=10)
        self.addCleanup(conn.close)
        seen = []
        for body in (chat(), chat(), b"{oops", chat(stream=True), chat("second")):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            conn.request("POST", CHAT, body=data, headers={"Content-Type": "application/json"})
            res = conn.getresponse()
            payload = res.read()
            seen.append((res.status, res.getheader("x-llmcache-status")))
            self.assertTrue(payload)
        self.assertEqual(seen, [(200, "MISS"), (200, "HIT"), (400, "INVALID"), (200, "HIT"),
                                (200, "MISS")])
        self.assertEqual(self.s.upstream_calls(), 2)

    def test_a_chunked_request_body_is_cached_like_any_other(self):
        def send():
            conn = http.client.HTTPConnection("127.0.0.1", self.s.gateway.port, timeout=10)
            try:
                data = json.dumps(chat("chunked")).encode()
                conn.request("POST", CHAT, body=iter([data[:10], data[10:]]),
                             headers={"Content-Type": "application/json"}, encode_chunked=True)
                res = conn.getresponse()
                return res.status, res.getheader("x-llmcache-status"), res.read()
            finally:
                conn.close()

        first, second = send(), send()
        self.assertEqual(first[:2], (200, "MISS"), first)
        self.assertEqual(second[:2], (200, "HIT"), second)
        self.assertEqual(first[2], second[2])
        plain = self.s.post(CHAT, chat("chunked"))
        self.assertStatus(plain, 200, "HIT")


class RecordingUpstream:
    """A stand-in provider that records what reached it and answers what it is told to."""

    def __init__(self):
        self.requests = []
        self.reply = (200, {"Content-Type": "application/json"}, b"{}")
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = self._read_chunked()
                owner.requests.append((self.command, self.path, dict(self.headers.items()), body))
                status, headers, payload = owner.reply
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _read_chunked(self):
                out = b""
                while True:
                    size = int(self.rfile.readline().strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


CHAT_ANSWER = {
    "id": "chatcmpl-rec", "object": "chat.completion", "created": 1767225600, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "recorded"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


class ForwardingTest(GatewayTestCase):
    def setUp(self):
        self.s = self.start(start_gateway=False)
        self.up = RecordingUpstream()
        self.addCleanup(self.up.close)
        self.up.reply = (200, {"Content-Type": "application/json", "x-upstream-thing": "kept",
                               "openai-processing-ms": "12"}, json.dumps(CHAT_ANSWER).encode())
        self.s.start_gateway(upstream=f"http://127.0.0.1:{self.up.port}/v1")

    def test_client_headers_are_forwarded_except_hop_by_hop_and_the_gateways_own(self):
        res = self.s.post(CHAT + "?api-version=1", chat(), {
            "Authorization": "Bearer sk-forward-me", "OpenAI-Organization": "org-1",
            "x-client-thing": "yes", "x-llmcache-namespace": "ns", "x-llmcache-tags": "a,b",
            "x-llmcache-ttl": "60", "Connection": "keep-alive, x-drop-me", "x-drop-me": "1"})
        self.assertStatus(res, 200, "MISS")
        self.assertEqual(res.header("x-upstream-thing"), "kept")
        self.assertEqual(res.header("openai-processing-ms"), "12")
        self.assertEqual(res.json(), CHAT_ANSWER)
        self.assertEqual(len(self.up.requests), 1)
        method, path, headers, body = self.up.requests[0]
        headers = {k.lower(): v for k, v in headers.items()}
        self.assertEqual((method, path), ("POST", "/v1/chat/completions?api-version=1"))
        self.assertEqual(json.loads(body), chat())
        self.assertEqual(headers.get("authorization"), "Bearer sk-forward-me")
        self.assertEqual(headers.get("openai-organization"), "org-1")
        self.assertEqual(headers.get("x-client-thing"), "yes")
        self.assertEqual(headers.get("host"), f"127.0.0.1:{self.up.port}")
        for name in ("x-llmcache-namespace", "x-llmcache-tags", "x-llmcache-ttl", "x-drop-me"):
            self.assertNotIn(name, headers)

    def test_a_2xx_answer_that_is_not_json_is_passed_on_but_not_stored(self):
        self.up.reply = (200, {"Content-Type": "application/json"}, b"this is not json")
        first = self.s.post(CHAT, chat())
        self.assertEqual(first.status, 200)
        self.assertEqual(first.body, b"this is not json")
        self.assertEqual(first.cache_status, "UNCACHEABLE")
        second = self.s.post(CHAT, chat())
        self.assertNotEqual(second.cache_status, "HIT")
        self.assertEqual(len(self.up.requests), 2)

    def test_a_json_answer_to_a_streaming_request_is_passed_on_but_not_stored(self):
        first = self.s.post(CHAT, chat(stream=True))
        self.assertEqual(first.status, 200)
        self.assertEqual(first.json(), CHAT_ANSWER)
        second = self.s.post(CHAT, chat(stream=True))
        self.assertNotEqual(second.cache_status, "HIT")
        self.assertEqual(len(self.up.requests), 2)


class PlatformTest(GatewayTestCase):
    def setUp(self):
        self.s = self.start(start_gateway=False)
        self.s.start_gateway({"CACHE_PLATFORMS": f"mock=http://127.0.0.1:{self.s.mock.port}/v1"})

    def test_a_configured_platform_routes_its_prefix_to_its_base_url(self):
        first = self.s.post("/mock/v1/chat/completions", chat())
        self.assertStatus(first, 200, "MISS")
        self.assertIn("Mock answer #1", first.body.decode())
        stats = self.s.mock_stats()
        self.assertEqual(stats["paths"], {"/v1/chat/completions": 1})
        second = self.s.post("/mock/v1/chat/completions", chat())
        self.assertStatus(second, 200, "HIT")
        self.assertEqual(second.body, first.body)


class RequestControlTest(GatewayTestCase):
    def test_no_cache_refreshes_from_the_upstream_and_stores_the_new_answer(self):
        first = self.s.post(CHAT, chat())
        self.assertStatus(first, 200, "MISS")
        refreshed = self.s.post(CHAT, chat(), {"Cache-Control": "no-cache"})
        self.assertStatus(refreshed, 200, "REFRESH")
        self.assertIn("Mock answer #2", refreshed.body.decode())
        self.assertEqual(self.s.upstream_calls(), 2)
        after = self.s.post(CHAT, chat())
        self.assertStatus(after, 200, "HIT")
        self.assertEqual(after.body, refreshed.body)
        self.assertEqual(self.s.upstream_calls(), 2)

    def test_no_store_answers_without_storing(self):
        first = self.s.post(CHAT, chat(), {"Cache-Control": "no-store"})
        self.assertStatus(first, 200, "NO-STORE")
        second = self.s.post(CHAT, chat())
        self.assertStatus(second, 200, "MISS")
        self.assertIn("Mock answer #2", second.body.decode())
        self.assertEqual(self.s.upstream_calls(), 2)

    def test_no_cache_with_no_store_bypasses_the_cache(self):
        self.s.post(CHAT, chat())
        res = self.s.post(CHAT, chat(), {"Cache-Control": "no-cache, no-store"})
        self.assertStatus(res, 200, "BYPASS")
        self.assertIn("Mock answer #2", res.body.decode())
        after = self.s.post(CHAT, chat())
        self.assertStatus(after, 200, "HIT")
        self.assertIn("Mock answer #1", after.body.decode())

    def test_max_age_zero_on_an_older_entry_calls_the_upstream(self):
        first = self.s.post(CHAT, chat())
        self.assertStatus(first, 200, "MISS")
        time.sleep(1.2)
        fresh_enough = self.s.post(CHAT, chat(), {"Cache-Control": "max-age=60"})
        self.assertStatus(fresh_enough, 200, "HIT")
        self.assertGreaterEqual(int(fresh_enough.header("age")), 1)
        res = self.s.post(CHAT, chat(), {"Cache-Control": "max-age=0"})
        self.assertEqual(res.status, 200)
        self.assertNotEqual(res.cache_status, "HIT", res)
        self.assertIn("Mock answer #2", res.body.decode())
        self.assertEqual(self.s.upstream_calls(), 2)
        after = self.s.post(CHAT, chat())
        self.assertStatus(after, 200, "HIT")
        self.assertEqual(after.body, res.body)

    def test_no_cache_right_after_a_miss_on_the_same_connection_always_reaches_the_upstream(self):
        # Regression: the leader used to end its flight only after answering its client, so a
        # request that client sent next could join the finished flight (COALESCED, old answer).
        conn = http.client.HTTPConnection("127.0.0.1", self.s.gateway.port, timeout=10)
        self.addCleanup(conn.close)
        statuses = []
        for i in range(100):
            data = json.dumps(chat(f"refresh race {i}")).encode()
            for extra in ({}, {"Cache-Control": "no-cache"}):
                conn.request("POST", CHAT, body=data,
                             headers={"Content-Type": "application/json", **extra})
                res = conn.getresponse()
                res.read()
                if extra:
                    statuses.append(res.getheader("x-llmcache-status"))
        self.assertEqual(set(statuses), {"REFRESH"})
        self.assertEqual(self.s.upstream_calls(), 200)

    def test_cache_control_directives_are_case_insensitive(self):
        # RFC 9111 section 5.2: directive names are compared case-insensitively.
        self.assertStatus(self.s.post(CHAT, chat()), 200, "MISS")
        res = self.s.post(CHAT, chat(), {"Cache-Control": "No-Cache"})
        self.assertStatus(res, 200, "REFRESH")
        res = self.s.post(CHAT, chat("other"), {"Cache-Control": "NO-STORE"})
        self.assertStatus(res, 200, "NO-STORE")
        self.assertEqual(self.s.upstream_calls(), 3)

    def test_a_ttl_header_of_one_second_expires_the_entry(self):
        first = self.s.post(CHAT, chat(), {"x-llmcache-ttl": "1"})
        self.assertStatus(first, 200, "MISS")
        self.assertStatus(self.s.post(CHAT, chat()), 200, "HIT")
        time.sleep(1.5)
        res = self.s.post(CHAT, chat())
        self.assertStatus(res, 200, "MISS")
        self.assertIn("Mock answer #2", res.body.decode())
        self.assertEqual(self.s.upstream_calls(), 2)

    def test_a_namespace_separates_entries(self):
        a1 = self.s.post(CHAT, chat(), {"x-llmcache-namespace": "team-a"})
        b1 = self.s.post(CHAT, chat(), {"x-llmcache-namespace": "team-b"})
        plain = self.s.post(CHAT, chat())
        self.assertStatus(a1, 200, "MISS")
        self.assertStatus(b1, 200, "MISS")
        self.assertStatus(plain, 200, "MISS")
        self.assertEqual(len({a1.header("x-llmcache-key"), b1.header("x-llmcache-key"),
                              plain.header("x-llmcache-key")}), 3)
        a2 = self.s.post(CHAT, chat(), {"x-llmcache-namespace": "team-a"})
        self.assertStatus(a2, 200, "HIT")
        self.assertEqual(a2.body, a1.body)
        self.assertEqual(self.s.upstream_calls(), 3)
        # No credential: the "anonymous" tenant's key.
        rc, out, err = run_cli(["key", "--namespace", "team-a", "--scope", "anonymous"],
                               json.dumps(chat()).encode())
        self.assertEqual(rc, 0, err)
        self.assertEqual(a1.header("x-llmcache-key"), json.loads(out)["cache_key"])

    def test_different_api_keys_never_share_an_entry_but_the_same_key_does(self):
        a = {"Authorization": "Bearer sk-tenant-a"}
        b = {"Authorization": "Bearer sk-tenant-b"}
        self.assertStatus(self.s.post(CHAT, chat(), a), 200, "MISS")
        rb = self.s.post(CHAT, chat(), b)
        self.assertStatus(rb, 200, "MISS")
        self.assertIn("Mock answer #2", rb.body.decode())
        self.assertStatus(self.s.post(CHAT, chat(), a), 200, "HIT")
        self.assertStatus(self.s.post(CHAT, chat(), b), 200, "HIT")
        # Anthropic's x-api-key scopes the same way.
        self.assertStatus(self.s.post(MESSAGES, claude(), {"x-api-key": "sk-ant-a"}), 200, "MISS")
        self.assertStatus(self.s.post(MESSAGES, claude(), {"x-api-key": "sk-ant-b"}), 200, "MISS")
        self.assertStatus(self.s.post(MESSAGES, claude(), {"x-api-key": "sk-ant-a"}), 200, "HIT")
        self.assertEqual(self.s.upstream_calls(), 4)

    def test_get_models_passes_through_uncached(self):
        first = self.s.get("/v1/models", {"Authorization": "Bearer sk-x"})
        self.assertStatus(first, 200, "BYPASS")
        self.assertEqual(first.json()["data"][0]["id"], "mock-model")
        second = self.s.get("/v1/models", {"Authorization": "Bearer sk-x"})
        self.assertStatus(second, 200, "BYPASS")
        stats = self.s.mock_stats()
        self.assertEqual(stats["paths"], {"/v1/models": 2})
        self.assertEqual(stats["authorized_calls"], 2)


class CorsTest(GatewayTestCase):
    # Issue 17: with an Origin, the MISS carried the provider's access-control-allow-origin and
    # the HIT did not: a browser app worked once and was blocked on every cached answer.
    SETS = {"CACHE_CORS_ORIGINS": "https://app.example, https://other.example"}
    ORIGIN = {"Origin": "https://app.example"}

    def cors(self, res):
        return (res.header("access-control-allow-origin"), res.header("vary"),
                res.header("access-control-expose-headers"))

    def test_a_miss_a_hit_and_a_streamed_hit_carry_the_same_cors_headers(self):
        miss = self.s.post(CHAT, chat("cors"), self.ORIGIN)
        self.assertStatus(miss, 200, "MISS")
        self.assertEqual(miss.header("access-control-allow-origin"), "https://app.example")
        self.assertIn("x-llmcache-status", miss.header("access-control-expose-headers"))
        hit = self.s.post(CHAT, chat("cors"), self.ORIGIN)
        self.assertStatus(hit, 200, "HIT")
        self.assertEqual(self.cors(hit), self.cors(miss))
        streamed = self.s.post(CHAT, chat_stream("cors"), self.ORIGIN)
        self.assertStatus(streamed, 200, "HIT")
        self.assertEqual(self.cors(streamed), self.cors(miss))
        bad = self.s.post(CHAT, {"model": 5}, self.ORIGIN)  # an error the gateway answers
        self.assertEqual(bad.status, 400)
        self.assertEqual(self.cors(bad), self.cors(miss))

    def test_an_origin_not_listed_gets_no_cors_headers(self):
        for res in (self.s.post(CHAT, chat("elsewhere"), {"Origin": "https://evil.example"}),
                    self.s.post(CHAT, chat("elsewhere"), {"Origin": "https://evil.example"})):
            self.assertEqual(res.status, 200)
            self.assertIsNone(res.header("access-control-allow-origin"))

    def test_a_preflight_is_answered_by_the_gateway(self):
        calls = self.s.upstream_calls()
        res = request(self.s.gateway.port, "OPTIONS", CHAT, None, {
            "Origin": "https://other.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os"})
        self.assertEqual(res.status, 204, res)
        self.assertEqual(res.header("access-control-allow-origin"), "https://other.example")
        self.assertIn("POST", res.header("access-control-allow-methods"))
        self.assertEqual(res.header("access-control-allow-headers"),
                         "authorization, content-type, x-stainless-os")
        res = request(self.s.gateway.port, "OPTIONS", CHAT, None, {
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        self.assertEqual(res.status, 204, res)
        self.assertIsNone(res.header("access-control-allow-origin"))
        self.assertEqual(self.s.upstream_calls(), calls)  # never sent on to the provider


class ConfigTtlTest(GatewayTestCase):
    SETS = {"CACHE_TTL": "1"}

    def test_the_default_ttl_setting_expires_entries(self):
        self.assertStatus(self.s.post(CHAT, chat()), 200, "MISS")
        self.assertStatus(self.s.post(CHAT, chat()), 200, "HIT")
        time.sleep(1.5)
        res = self.s.post(CHAT, chat())
        self.assertStatus(res, 200, "MISS")
        self.assertEqual(self.s.upstream_calls(), 2)


class ConfigModelTtlTest(GatewayTestCase):
    SETS = {"CACHE_MODEL_TTLS": "gpt-4o*=1,claude-*=0", "CACHE_TTL": "3600"}

    def test_a_per_model_ttl_applies_to_matching_models_only(self):
        fast = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "ttl"}]}
        slow = {"model": "o3-mini", "messages": [{"role": "user", "content": "ttl"}]}
        self.assertStatus(self.s.post(CHAT, fast), 200, "MISS")
        self.assertStatus(self.s.post(CHAT, slow), 200, "MISS")
        time.sleep(1.5)
        self.assertStatus(self.s.post(CHAT, fast), 200, "MISS")  # gpt-4o* lives 1 s
        self.assertStatus(self.s.post(CHAT, slow), 200, "HIT")   # CACHE_TTL: an hour
        # x-llmcache-ttl beats the model rule.
        pinned = {"model": "gpt-4o", "messages": [{"role": "user", "content": "pinned"}]}
        self.assertStatus(self.s.post(CHAT, pinned, {"x-llmcache-ttl": "0"}), 200, "MISS")
        time.sleep(1.2)
        self.assertStatus(self.s.post(CHAT, pinned), 200, "HIT")


class ConfigScopeNoneTest(GatewayTestCase):
    SETS = {"CACHE_SCOPE": "none"}

    def test_an_unscoped_cache_shares_entries_between_api_keys(self):
        a = self.s.post(CHAT, chat(), {"Authorization": "Bearer sk-tenant-a"})
        self.assertStatus(a, 200, "MISS")
        b = self.s.post(CHAT, chat(), {"Authorization": "Bearer sk-tenant-b"})
        self.assertStatus(b, 200, "HIT")
        self.assertEqual(b.body, a.body)
        self.assertEqual(self.s.upstream_calls(), 1)


class ConfigScopeGlobalTest(ConfigScopeNoneTest):
    SETS = {"CACHE_SCOPE": "global"}


class ConfigDisabledTest(GatewayTestCase):
    SETS = {"CACHE_ENABLED": "false"}

    def test_a_disabled_cache_bypasses_every_request_to_the_upstream(self):
        for i in range(3):
            res = self.s.post(CHAT, chat())
            self.assertStatus(res, 200, "BYPASS")
            self.assertIn(f"Mock answer #{i + 1}", res.body.decode())
        res = self.s.post(CHAT, chat(stream=True))
        self.assertStatus(res, 200, "BYPASS")
        self.assertIn(b"[DONE]", res.body)
        self.assertEqual(self.s.upstream_calls(), 4)
        self.s.stop_gateway()
        self.assertEqual(list(self.s.cache_dir.glob("entries/*/*.entry")), [])


class SecretsTest(GatewayTestCase):
    BEARER = "sk-secret-XYZ987654321abcdef"
    ANTHROPIC = "sk-ant-secret-QRS123456789zyxw"

    def test_credentials_reach_the_upstream_but_never_the_disk_or_the_logs(self):
        auth = {"Authorization": f"Bearer {self.BEARER}"}
        ant = {"x-api-key": self.ANTHROPIC, "anthropic-version": "2023-06-01"}
        sent = [
            self.s.post(CHAT, chat(), auth),
            self.s.post(CHAT, chat(), auth),  # hit: not an upstream call
            self.s.post(CHAT, chat("streamed", stream=True), auth),
            self.s.post(MESSAGES, claude(), ant),
            self.s.post(MESSAGES, claude("streamed", stream=True), ant),
            self.s.post(CHAT, chat("tagged"), {**auth, "x-llmcache-tags": "t1,t2",
                                               "x-llmcache-namespace": "ns"}),
            self.s.post(CHAT, chat("error"), {**auth, "x-mock-status": "500"}),
            self.s.post(CHAT, b"{bad json", auth),
            self.s.get("/v1/models", auth),
        ]
        self.assertEqual([(r.status, r.cache_status) for r in sent],
                         [(200, "MISS"), (200, "HIT"), (200, "MISS"), (200, "MISS"), (200, "MISS"),
                          (200, "MISS"), (500, "UNCACHEABLE"), (400, "INVALID"), (200, "BYPASS")])
        stats = self.s.mock_stats()
        self.assertEqual(stats["calls"], 7)
        self.assertEqual(stats["authorized_calls"], 7)
        self.assertEqual(self.s.stop_gateway(), 0)  # flushes the pending disk writes
        files = [p for p in self.s.cache_dir.rglob("*") if p.is_file()]
        self.assertGreaterEqual(len([p for p in files if p.suffix == ".entry"]), 5)
        haystacks = {str(p): p.read_bytes() for p in files}
        haystacks["gateway stdout+stderr"] = self.s.gateway_output()
        for secret in (self.BEARER, self.ANTHROPIC, self.BEARER[10:], self.ANTHROPIC[14:]):
            for name, data in haystacks.items():
                self.assertNotIn(secret.encode(), data, f"{secret!r} found in {name}")


class CoalescingTest(GatewayTestCase):
    def test_twenty_concurrent_identical_requests_make_one_upstream_call(self):
        n = 20
        barrier = threading.Barrier(n)
        results = [None] * n

        def worker(i):
            barrier.wait()
            results[i] = self.s.post(CHAT, chat("coalesce me"), {"x-mock-latency-ms": "500"})

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertTrue(all(r is not None for r in results), results)
        self.assertEqual(self.s.upstream_calls(), 1)
        statuses = sorted(r.cache_status for r in results)
        self.assertEqual(statuses.count("MISS"), 1, statuses)
        self.assertEqual(statuses.count("COALESCED"), n - 1, statuses)
        self.assertEqual({r.status for r in results}, {200})
        self.assertEqual(len({r.body for r in results}), 1)

    def test_concurrent_streaming_requests_coalesce_and_all_get_the_whole_stream(self):
        n = 5
        barrier = threading.Barrier(n)
        results = [None] * n

        def worker(i):
            barrier.wait()
            results[i] = self.s.post(CHAT, chat_stream("stream together"),
                                     {"x-mock-latency-ms": "400"})

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(self.s.upstream_calls(), 1)
        for r in results:
            self.assertEqual(r.status, 200, r)
            self.assertEqual(sse_data(r.body)[-1], b"[DONE]", r)
        self.assertEqual(len({r.body for r in results}), 1)


    def test_concurrent_identical_requests_of_two_tenants_are_not_coalesced(self):
        barrier = threading.Barrier(6)
        results = {}

        def worker(i):
            tenant = "a" if i % 2 else "b"
            barrier.wait()
            results[i] = (tenant, self.s.post(CHAT, chat("tenants"), {
                "Authorization": f"Bearer sk-tenant-{tenant}", "x-mock-latency-ms": "400"}))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(self.s.upstream_calls(), 2)
        self.assertEqual(self.s.mock_stats()["authorized_calls"], 2)
        bodies = {}
        for tenant, res in results.values():
            self.assertEqual(res.status, 200, res)
            bodies.setdefault(tenant, set()).add(res.body)
        self.assertEqual(len(bodies["a"]), 1)
        self.assertEqual(len(bodies["b"]), 1)
        self.assertNotEqual(bodies["a"], bodies["b"])

    def test_waiters_still_get_an_answer_when_the_leaders_client_goes_away(self):
        body = json.dumps(chat("leader leaves", stream=True)).encode()
        sock = socket.create_connection(("127.0.0.1", self.s.gateway.port), timeout=10)
        sock.sendall(b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nx-mock-chunk-delay-ms: 150\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        self.assertIn(b"200", sock.recv(65536))  # the head (and maybe the first event)
        result = {}

        def waiter():
            result["res"] = self.s.post(CHAT, chat("leader leaves"), {"x-mock-chunk-delay-ms": "10"})

        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.1)
        sock.close()  # the leader's client goes away mid-stream
        t.join(20)
        res = result.get("res")
        self.assertIsNotNone(res)
        self.assertEqual(res.status, 200, res)
        self.assertEqual(res.json()["object"], "chat.completion")
        self.assertIn("Mock answer #", res.json()["choices"][0]["message"]["content"])
        self.assertStatus(self.s.post(CHAT, chat("leader leaves")), 200, "HIT")


class LifecycleTest(GatewayTestCase):
    def test_a_graceful_stop_completes_a_request_in_flight(self):
        result = {}

        def slow():
            result["res"] = self.s.post(CHAT, chat("slow"), {"x-mock-latency-ms": "800"})

        t = threading.Thread(target=slow)
        t.start()
        deadline = time.monotonic() + 5
        while self.s.upstream_calls() == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.s.upstream_calls(), 1)
        self.s.gateway.proc.send_signal(15)
        t.join(10)
        res = result.get("res")
        self.assertIsNotNone(res)
        self.assertStatus(res, 200, "MISS")
        self.assertIn("Mock answer #1", res.body.decode())
        self.assertEqual(self.s.gateway.proc.wait(10), 0)
        # It was stored (memory, then flushed to disk before exit).
        self.assertEqual(len(self.s.entry_files()), 1)

    def test_a_corrupt_disk_entry_is_a_miss_and_is_replaced(self):
        first = self.s.post(CHAT, chat())
        self.assertStatus(first, 200, "MISS")
        self.assertEqual(self.s.stop_gateway(), 0)
        files = self.s.entry_files()
        self.assertEqual(len(files), 1)
        garbage = os.urandom(64) + b"not an entry"
        files[0].write_bytes(garbage)
        self.s.start_gateway()
        second = self.s.post(CHAT, chat())
        self.assertStatus(second, 200, "MISS")
        self.assertIn("Mock answer #2", second.body.decode())
        self.assertEqual(second.json()["object"], "chat.completion")
        self.assertEqual(self.s.upstream_calls(), 2)
        self.assertEqual(self.s.restart_gateway(), 0)
        files = self.s.entry_files()
        self.assertEqual(len(files), 1)
        self.assertNotEqual(files[0].read_bytes(), garbage)
        third = self.s.post(CHAT, chat())
        self.assertStatus(third, 200, "HIT")
        self.assertEqual(third.header("x-llmcache-layer"), "disk")
        self.assertEqual(third.body, second.body)

    def test_a_truncated_disk_entry_is_a_miss(self):
        self.assertStatus(self.s.post(CHAT, chat()), 200, "MISS")
        self.assertEqual(self.s.stop_gateway(), 0)
        f = self.s.entry_files()[0]
        data = f.read_bytes()
        f.write_bytes(data[: len(data) // 2])
        self.s.start_gateway()
        res = self.s.post(CHAT, chat())
        self.assertStatus(res, 200, "MISS")
        self.assertIn("Mock answer #2", res.body.decode())


class CliTest(unittest.TestCase):
    def test_print_config_masks_the_admin_token(self):
        token = "admin-token-Very-Secret-42"
        rc, out, err = run_cli(["serve", "--print-config", "--set", f"CACHE_ADMIN_TOKEN={token}",
                                "--set", "CACHE_ENCRYPTION_KEY=enc-key-Very-Secret-43"])
        self.assertEqual(rc, 0, err)
        text = out.decode()
        self.assertNotIn(token, text)
        self.assertNotIn("enc-key-Very-Secret-43", text)
        lines = dict(l.split("=", 1) for l in text.splitlines() if "=" in l)
        self.assertIn("CACHE_ADMIN_TOKEN", lines)
        self.assertNotEqual(lines["CACHE_ADMIN_TOKEN"], "")
        self.assertIn("CACHE_TTL", lines)

    def test_a_config_error_exits_2_naming_the_setting(self):
        rc, out, err = run_cli(["serve", "--listen", "127.0.0.1:0", "--set", "CACHE_TTL=soon"], timeout=10)
        self.assertEqual(rc, 2, (out, err))
        self.assertIn("CACHE_TTL", err.decode())

    def test_an_unknown_setting_exits_2_naming_it(self):
        rc, out, err = run_cli(["serve", "--listen", "127.0.0.1:0", "--set", "CACHE_NO_SUCH=1"], timeout=10)
        self.assertEqual(rc, 2, (out, err))
        self.assertIn("CACHE_NO_SUCH", err.decode())


class TenantListingTest(GatewayTestCase):
    """Under the default CACHE_SCOPE=api_key each entry carries its tenant (the scope in its key),
    and the admin listing filters by it."""

    def test_entries_are_listed_by_the_tenant_that_stored_them(self):
        auth_a, auth_b = "Bearer sk-tenant-list-a", "Bearer sk-tenant-list-b"
        a = self.s.post(CHAT, chat(), {"Authorization": auth_a})
        self.assertStatus(a, 200, "MISS")
        b = self.s.post(CHAT, chat(), {"Authorization": auth_b})
        self.assertStatus(b, 200, "MISS")  # another tenant: no cross hit
        self.assertNotEqual(a.header("x-llmcache-key"), b.header("x-llmcache-key"))
        self.assertEqual(self.s.upstream_calls(), 2)

        def listing(query=""):
            deadline = time.monotonic() + 5
            while True:  # the index upserts happen in the background
                res = self.s.get("/cache/entries" + query)
                self.assertStatus(res, 200)
                rows = res.json()["data"]
                if len(rows) >= (1 if query else 2) or time.monotonic() > deadline:
                    return rows
                time.sleep(0.05)

        everything = listing()
        self.assertEqual({r["cache_key"] for r in everything},
                         {a.header("x-llmcache-key"), b.header("x-llmcache-key")})
        mine = listing(f"?tenant={self.s.scope_of(auth_a)}")
        self.assertEqual([r["cache_key"] for r in mine], [a.header("x-llmcache-key")])
        self.assertEqual(mine[0]["tenant"], self.s.scope_of(auth_a))
        theirs = listing(f"?tenant={self.s.scope_of(auth_b)}")
        self.assertEqual([r["cache_key"] for r in theirs], [b.header("x-llmcache-key")])
        # Only the hash is stored: the credential is nowhere in the listing.
        text = json.dumps(everything)
        self.assertNotIn("sk-tenant-list-a", text)
        self.assertNotIn("sk-tenant-list-b", text)


if __name__ == "__main__":
    unittest.main()
