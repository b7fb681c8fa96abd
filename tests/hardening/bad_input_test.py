"""Bad input over real sockets (issue 7, item 6): slow and oversized requests are cut off without
starving other clients or growing the gateway's memory; malformed bodies are 400s in the
provider's shape; an upstream whose event stream is garbage or stops mid-event leaves nothing
stored and the gateway serving.
"""
import http.server
import json
import socket
import threading
import time
import unittest

from common import (CHAT, MESSAGES, HardeningTestCase, body_of, chat, claude, raw_connect,
                    read_until_closed, rss_kib, status_of)


def served_quickly(testcase, stack, text, limit=2.0):
    """Another client's request is answered within `limit` seconds."""
    t0 = time.monotonic()
    res = stack.post(CHAT, chat(f"{text} {time.monotonic_ns()}"), timeout=limit + 5)
    took = time.monotonic() - t0
    testcase.assertEqual(res.status, 200, res)
    testcase.assertLess(took, limit, f"a normal request took {took:.2f}s meanwhile")


class SlowClientTest(HardeningTestCase):
    SETS = {"CACHE_READ_TIMEOUT": "2"}

    def slowloris(self, head: bytes, byte_interval=1.0, give_up_after=12.0):
        """Sends `head` one byte per `byte_interval` until the gateway closes the connection.
        Returns (seconds until closed, bytes sent, what the gateway sent back)."""
        sock = raw_connect(self.s.gateway.port, timeout=give_up_after)
        self.addCleanup(sock.close)
        t0 = time.monotonic()
        sent = 0
        got = b""
        closed = False
        sock.setblocking(False)
        while time.monotonic() - t0 < give_up_after:
            try:
                chunk = sock.recv(65536)
                if not chunk:
                    closed = True
                    break
                got += chunk
            except BlockingIOError:
                pass
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            try:
                sock.send(head[sent % len(head):sent % len(head) + 1])
                sent += 1
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            except BlockingIOError:
                pass
            time.sleep(byte_interval)
        took = time.monotonic() - t0
        self.assertTrue(closed, f"still connected after {took:.1f}s and {sent} bytes")
        return took, sent, got

    def test_a_client_sending_its_headers_one_byte_a_second_is_cut_off_by_the_read_timeout(self):
        head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"X-Slow: " + b"a" * 200 + b"\r\n")
        other = {}

        def normal_client():
            time.sleep(0.5)
            t0 = time.monotonic()
            other["status"] = self.s.post(CHAT, chat("while a slow client dribbles"), timeout=10).status
            other["took"] = time.monotonic() - t0

        t = threading.Thread(target=normal_client)
        t.start()
        took, sent, got = self.slowloris(head)
        t.join(15)
        # Meanwhile another client was served, without waiting for the slow one.
        self.assertEqual(other.get("status"), 200, other)
        self.assertLess(other["took"], 2.0, other)
        self.assertLess(took, 5.0, f"cut off only after {took:.1f}s ({sent} bytes)")
        self.assertNotIn(b"HTTP/1.1 200", got)
        served_quickly(self, self.s, "after the slow client")

    def test_a_client_sending_its_body_one_byte_a_second_is_cut_off_by_the_read_timeout(self):
        body = json.dumps(chat("slow body")).encode()
        head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        sock = raw_connect(self.s.gateway.port, timeout=20)
        self.addCleanup(sock.close)
        sock.sendall(head)
        result = {}

        def dribble():
            t0 = time.monotonic()
            try:
                for i in range(len(body)):
                    sock.send(body[i:i + 1])
                    time.sleep(1.0)
            except OSError:
                pass
            result["took"] = time.monotonic() - t0

        t = threading.Thread(target=dribble, daemon=True)
        t.start()
        served_quickly(self, self.s, "while a slow body dribbles")
        sock.settimeout(20)
        t0 = time.monotonic()
        got = read_until_closed(sock)
        took = time.monotonic() - t0
        self.assertLess(took, 5.0, f"the slow body was allowed {took:.1f}s")
        self.assertNotIn(b"HTTP/1.1 200", got)
        self.assertEqual(self.s.upstream_calls(), 1)  # only the normal request reached it


class HeaderFloodTest(HardeningTestCase):
    def send_head_and_read(self, head: bytes):
        sock = raw_connect(self.s.gateway.port, timeout=10)
        self.addCleanup(sock.close)
        try:
            sock.sendall(head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gateway answered and closed before taking it all: read what it said
        return read_until_closed(sock)

    def test_ten_thousand_headers_get_a_431_and_other_clients_are_served(self):
        head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        head += b"".join(b"X-Flood-%d: %s\r\n" % (i, b"v" * 20) for i in range(10000))
        head += b"Content-Length: 2\r\n\r\n{}"
        raw = self.send_head_and_read(head)
        self.assertEqual(status_of(raw), 431, raw[:300])
        self.assertIn("message", json.loads(body_of(raw))["error"])
        served_quickly(self, self.s, "after a header flood")
        self.assertEqual(self.s.upstream_calls(), 1)

    def test_one_megabyte_header_gets_a_431_and_other_clients_are_served(self):
        head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"h" * (1 << 20) +
                b"\r\nContent-Length: 2\r\n\r\n{}")
        raw = self.send_head_and_read(head)
        self.assertEqual(status_of(raw), 431, raw[:300])
        served_quickly(self, self.s, "after a huge header")

    def test_many_clients_flooding_headers_at_once_do_not_stop_a_normal_one(self):
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-F: " + b"f" * 70000 + b"\r\n\r\n"
        statuses = []

        def flood():
            sock = raw_connect(self.s.gateway.port, timeout=10)
            try:
                try:
                    sock.sendall(head)
                except OSError:
                    pass
                statuses.append(status_of(read_until_closed(sock)))
            finally:
                sock.close()

        threads = [threading.Thread(target=flood) for _ in range(20)]
        for t in threads:
            t.start()
        served_quickly(self, self.s, "during a header flood by 20 clients")
        for t in threads:
            t.join(15)
        self.assertEqual(statuses, [431] * 20)


class HugeBodyTest(HardeningTestCase):
    # An 8 MiB limit, far below the 100 MB sent: what is checked is that memory follows the
    # limit, not the body. (At the 32 MiB default, the body read up to the limit plus its
    # buffer's growth took 276 MB under ASan, above this bound; 8 MiB was the default when the
    # bound was set.)
    SETS = {"CACHE_MAX_BODY_BYTES": str(8 << 20)}
    # Under ASan the default 256 MB quarantine kept everything freed since start-up in RSS: the
    # peak grew with whatever else the gateway had allocated (220 MB against this 200 MB bound in
    # a fresh-clone run once the gateway had more background work), not with the body.
    SMALL_ASAN_QUARANTINE = True
    HUNDRED_MB = 100 << 20
    RSS_GROWTH_LIMIT_KIB = 64 << 10  # eight times the 8 MiB limit; the 100 MB body would exceed it

    def send_big(self, head: bytes, chunk_source):
        """Sends `head`, then body chunks from another thread while this one waits for the
        answer. Returns (seconds to the answer, raw answer, bytes the sender got out)."""
        sock = raw_connect(self.s.gateway.port, timeout=30)
        self.addCleanup(sock.close)
        sock.sendall(head)
        sent = [0]

        def pump():
            try:
                for chunk in chunk_source():
                    sock.sendall(chunk)
                    sent[0] += len(chunk)
            except OSError:
                pass  # the gateway closed the connection: what it should do

        t0 = time.monotonic()
        t = threading.Thread(target=pump, daemon=True)
        t.start()
        raw = read_until_closed(sock)
        took = time.monotonic() - t0
        t.join(30)
        return took, raw, sent[0]

    def setUp(self):
        super().setUp()
        self.rss_at_start, _ = rss_kib(self.s.gateway.proc.pid)

    def assertSmall(self):
        # The peak's growth over the gateway's resident size at start: what the body cost. (The
        # absolute peak also counts the executable's pages, larger under ASan with every module
        # added: 187 MB idle by now.)
        rss, hwm = rss_kib(self.s.gateway.proc.pid)
        self.assertLess(hwm - self.rss_at_start, self.RSS_GROWTH_LIMIT_KIB,
                        f"peak RSS {hwm} KiB, {self.rss_at_start} KiB at start (now {rss} KiB)")

    def test_a_100_mb_body_with_a_content_length_is_a_fast_413_and_memory_stays_small(self):
        chunk = b"x" * (1 << 20)
        head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % self.HUNDRED_MB)
        took, raw, sent = self.send_big(head, lambda: (chunk for _ in range(100)))
        self.assertEqual(status_of(raw), 413, raw[:300])
        self.assertIn("message", json.loads(body_of(raw))["error"])
        self.assertLess(took, 3.0)
        self.assertLess(sent, self.HUNDRED_MB, "the gateway read the whole 100 MB")
        self.assertSmall()
        served_quickly(self, self.s, "after a 100 MB body")

    def test_a_100_mb_chunked_body_is_a_413_after_the_limit_and_memory_stays_small(self):
        piece = b"y" * (1 << 20)
        framed = b"%x\r\n" % len(piece) + piece + b"\r\n"
        head = (b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
        took, raw, sent = self.send_big(head, lambda: (framed for _ in range(100)))
        self.assertEqual(status_of(raw), 413, raw[:300])
        self.assertEqual(json.loads(body_of(raw))["type"], "error")  # the Anthropic shape
        self.assertLess(took, 10.0)
        self.assertLess(sent, self.HUNDRED_MB, "the gateway read the whole 100 MB")
        self.assertSmall()
        served_quickly(self, self.s, "after a 100 MB chunked body")

    def test_ten_concurrent_bodies_just_under_the_limit_do_not_blow_up_memory(self):
        text = "z" * ((8 << 20) - 200)
        results = []

        def one(i):
            results.append(self.s.post(CHAT, chat(f"{i}{text}"), timeout=60).status)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        self.assertEqual(sorted(results), [200] * 10)
        # Ten 8 MB bodies, their answers (which echo the question) and entries: bounded, not
        # unbounded. The memory tier's byte bound (256 MiB) is above this, so allow for it.
        rss, hwm = rss_kib(self.s.gateway.proc.pid)
        self.assertLess(hwm, 1 << 20, f"peak RSS {hwm} KiB")


class DefaultBodyLimitTest(HardeningTestCase):
    def test_ten_concurrent_bodies_at_the_32_mib_default_are_bounded_by_the_budget(self):
        # The default body limit is 32 MiB (issue 17: Anthropic takes 32 MB); ten such bodies at
        # once would be 320 MiB of bodies alone. The gateway-wide budget of bodies in flight
        # (CACHE_MAX_INFLIGHT_BODY_BYTES, 256 MiB) admits what fits and answers the others 503
        # with Retry-After before reading them: no gigabytes (release: ~680 MB peak, measured).
        text = "q" * ((32 << 20) - 300)
        results = []

        def one(i):
            r = self.s.post(CHAT, chat(f"{i}{text}"), timeout=120)
            results.append((r.status, r.header("retry-after")))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(150)
        self.assertEqual(len(results), 10)
        ok = [r for r in results if r[0] == 200]
        refused = [r for r in results if r[0] == 503]
        self.assertEqual(len(ok) + len(refused), 10, results)
        self.assertGreaterEqual(len(ok), 1, results)
        self.assertGreaterEqual(len(refused), 2, "320 MiB of bodies cannot fit a 256 MiB budget")
        self.assertTrue(all(r[1] == "1" for r in refused), results)
        rss, hwm = rss_kib(self.s.gateway.proc.pid)
        self.assertLess(hwm, 2 << 20, f"peak RSS {hwm} KiB")


class MalformedBodyTest(HardeningTestCase):
    def check_openai_400(self, body: bytes, path=CHAT):
        res = self.s.post(path, body)
        self.assertOpenAiError(res, 400)
        self.assertEqual(res.cache_status, "INVALID", res)
        return res

    def check_anthropic_400(self, body: bytes):
        res = self.s.post(MESSAGES, body)
        self.assertAnthropicError(res, 400)
        return res

    def tearDown(self):
        # Nothing reached the upstream, and the gateway still serves.
        self.assertEqual(self.s.upstream_calls(), 0)
        self.assertServing(self.s)

    def test_ten_thousand_deep_arrays_are_a_400(self):
        deep = "[" * 10000 + "]" * 10000
        body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"extra":%s}' % deep
        self.check_openai_400(body.encode())

    def test_ten_thousand_deep_objects_are_a_400_in_both_shapes(self):
        deep = '{"a":' * 10000 + "1" + "}" * 10000
        self.check_openai_400(('{"model":"gpt-4o-mini","messages":[{"role":"user","content":%s}]}'
                               % deep).encode())
        self.check_anthropic_400(('{"model":"claude-3-5-haiku-latest","max_tokens":5,"metadata":%s,'
                                  '"messages":[{"role":"user","content":"x"}]}' % deep).encode())

    def test_a_hundred_thousand_unclosed_brackets_are_a_400(self):
        self.check_openai_400(b'{"model":"gpt-4o-mini","messages":' + b"[" * 100000)

    def test_invalid_utf8_is_a_400_in_both_shapes(self):
        for bad in (b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"abc\x80"):
            with self.subTest(bytes=bad):
                self.check_openai_400(
                    b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"' + bad + b'"}]}')
                self.check_anthropic_400(
                    b'{"model":"claude-3-5-haiku-latest","max_tokens":5,'
                    b'"messages":[{"role":"user","content":"' + bad + b'"}]}')

    def test_invalid_utf8_in_a_key_is_a_400(self):
        self.check_openai_400(b'{"model":"gpt-4o-mini","\xff":1,"messages":[{"role":"user","content":"x"}]}')

    def test_wrong_types_are_400s_in_the_openai_shape(self):
        cases = {
            "messages is a string": {"model": "gpt-4o-mini", "messages": "hello"},
            "messages is empty": {"model": "gpt-4o-mini", "messages": []},
            "a message is a number": {"model": "gpt-4o-mini", "messages": [5]},
            "role is a number": {"model": "gpt-4o-mini", "messages": [{"role": 1, "content": "x"}]},
            "model is a number": {"model": 5, "messages": [{"role": "user", "content": "x"}]},
            "model is missing": {"messages": [{"role": "user", "content": "x"}]},
            "model is empty": {"model": "", "messages": [{"role": "user", "content": "x"}]},
            "stream is a string": {"model": "gpt-4o-mini", "stream": "yes",
                                   "messages": [{"role": "user", "content": "x"}]},
            "the body is an array": [{"model": "gpt-4o-mini"}],
            "the body is a string": "just a string",
            "the body is null": None,
        }
        for name, body in cases.items():
            with self.subTest(name):
                self.check_openai_400(json.dumps(body).encode())

    def test_wrong_types_are_400s_in_the_anthropic_shape(self):
        cases = {
            "max_tokens is a string": {"model": "claude-3-5-haiku-latest", "max_tokens": "64",
                                       "messages": [{"role": "user", "content": "x"}]},
            "max_tokens is zero": {"model": "claude-3-5-haiku-latest", "max_tokens": 0,
                                   "messages": [{"role": "user", "content": "x"}]},
            "max_tokens is a float": {"model": "claude-3-5-haiku-latest", "max_tokens": 1.5,
                                      "messages": [{"role": "user", "content": "x"}]},
            "messages is an object": {"model": "claude-3-5-haiku-latest", "max_tokens": 5,
                                      "messages": {"role": "user"}},
            "model is null": {"model": None, "max_tokens": 5,
                              "messages": [{"role": "user", "content": "x"}]},
        }
        for name, body in cases.items():
            with self.subTest(name):
                self.check_anthropic_400(json.dumps(body).encode())

    def test_wrong_types_on_completions_and_embeddings_are_400s(self):
        self.check_openai_400(json.dumps({"model": "m", "prompt": 5}).encode(), "/v1/completions")
        self.check_openai_400(json.dumps({"model": "m", "input": []}).encode(), "/v1/embeddings")
        self.check_openai_400(json.dumps({"model": "m", "input": {"a": 1}}).encode(), "/v1/embeddings")

    def test_numbers_json_cannot_hold_are_a_400(self):
        for num in (b"1e999", b"-1e999", b"NaN", b"Infinity"):
            with self.subTest(number=num):
                self.check_openai_400(b'{"model":"gpt-4o-mini","temperature":' + num +
                                      b',"messages":[{"role":"user","content":"x"}]}')


class BadStreamUpstream:
    """A provider whose event streams are broken in the ways `mode` names:
    garbage  - 200 text/event-stream, lines that are not SSE, then a clean close (no length);
    half     - a half event (`data: {"id":...` cut mid-JSON), then a clean close;
    cut      - chunked transfer cut off in the middle of a chunk (a transport error);
    nodone   - well-formed chunks but no finish_reason and no [DONE], then the final chunk.
    Counts the requests that reached it."""

    CHUNK = ('data: {"id":"chatcmpl-bad","object":"chat.completion.chunk","created":1,'
             '"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hel"},'
             '"finish_reason":null}]}\n\n')

    def __init__(self):
        self.calls = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                owner.calls += 1
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                mode = self.headers.get("x-bad-mode", "garbage")
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                if mode in ("cut", "nodone"):
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Connection", "close")
                self.end_headers()
                if mode == "garbage":
                    self.wfile.write(b"this is not an event stream\n\x00\xff\xfe garbage\n"
                                     b"data: {not json at all\n\n: comment\nevent\n\n")
                elif mode == "half":
                    self.wfile.write(owner.CHUNK.encode() + owner.CHUNK.encode()[:60])
                elif mode == "cut":
                    data = owner.CHUNK.encode()
                    self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
                    self.wfile.write(b"%x\r\n" % 500 + data[:50])  # promised 500, sent 50
                elif mode == "nodone":
                    data = owner.CHUNK.encode()
                    self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n0\r\n\r\n")
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class BrokenUpstreamStreamTest(HardeningTestCase):
    START_GATEWAY = False

    def setUp(self):
        super().setUp()
        self.bad = BadStreamUpstream()
        self.addCleanup(self.bad.close)
        # /v1/... goes to the real mock; /bad/v1/... to the broken streamer.
        self.s.start_gateway({"CACHE_PLATFORMS": f"bad=http://127.0.0.1:{self.bad.port}/v1"})

    def check(self, mode, expect_transport_error):
        body = chat(f"broken stream {mode}", stream=True)
        first = self.s.post("/bad" + CHAT, body, {"x-bad-mode": mode}, timeout=15)
        self.assertIn(first.status, (200, 502), first)
        self.assertNotIn(b"[DONE]", first.body)
        if expect_transport_error and first.status == 200:
            self.assertIsNotNone(first.error, "a cut stream must not end like a complete one")
        # (x-llmcache-status went out with the head, before the stream's end was known.)
        # Nothing stored: the same request goes to the upstream again.
        second = self.s.post("/bad" + CHAT, body, {"x-bad-mode": mode}, timeout=15)
        self.assertNotEqual(second.cache_status, "HIT", second)
        self.assertEqual(self.bad.calls, 2)
        self.assertNothingStored(self.s)
        # The gateway keeps serving, streams included.
        self.assertServing(self.s, f"after a {mode} stream")
        ok = self.s.post(CHAT, chat(f"a good stream after {mode}", stream=True))
        self.assertEqual(ok.status, 200, ok)
        self.assertIn(b"[DONE]", ok.body)

    def test_an_upstream_stream_of_garbage_lines_is_not_stored_and_the_gateway_keeps_serving(self):
        self.check("garbage", expect_transport_error=False)

    def test_an_upstream_stream_closing_mid_event_is_not_stored_and_the_gateway_keeps_serving(self):
        self.check("half", expect_transport_error=False)

    def test_an_upstream_chunked_stream_cut_mid_chunk_is_a_broken_stream_for_the_client(self):
        self.check("cut", expect_transport_error=True)

    def test_an_upstream_stream_without_a_finish_is_not_stored(self):
        self.check("nodone", expect_transport_error=False)


if __name__ == "__main__":
    unittest.main()
