"""Live coalescing of streams (issue 17, item 4): a request that joins an identical streamed miss in
flight gets the events recorded so far at once, then each event as the leader gets it, instead of
the whole answer at the end. A follower that leaves disturbs no one; a leader that leaves hands the
upstream stream to its followers; a stream that breaks breaks the followers that were sent some
of it, and the others make their own calls (a failure is never shared).

Over real HTTP: `llmcache serve` in front of `llmcache mock-upstream`, whose
`x-mock-chunk-delay-ms` spaces its events. The asserts compare the order of events across the
two clients (the follower's first event against the leader's last one), with the mock's events
hundreds of milliseconds apart, never a wall-clock bound."""
import http.client
import json
import socket
import threading
import time
import unittest

from harness import Stack

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"


def chat_stream(text, usage=True):
    body = {"model": "gpt-4o-mini", "stream": True,
            "messages": [{"role": "user", "content": text}]}
    if usage:
        body["stream_options"] = {"include_usage": True}
    return body


def responses_stream(text):
    return {"model": "gpt-4o-mini", "stream": True, "input": text}


def data_lines(body: bytes):
    return [line for line in body.split(b"\n") if line.startswith(b"data: ")]


class StreamClient:
    """One streamed request read line by line on its own thread: each data line with the moment it
    arrived (time.monotonic), the head, and how the body ended."""

    def __init__(self, port, path, body, headers=None, stop_after_lines=None):
        self.port, self.path, self.body = port, path, body
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.stop_after_lines = stop_after_lines  # close the connection after that many data lines
        self.status = None
        self.cache_status = None
        self.lines = []  # (monotonic time, data line)
        self.raw = b""
        self.error = None
        self.first_line = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("POST", self.path, body=json.dumps(self.body).encode(),
                         headers=self.headers)
            res = conn.getresponse()
            self.status = res.status
            self.cache_status = res.getheader("x-llmcache-status")
            # read1, not readline: http.client's readline takes a chunked body cut short for
            # its end; read1 raises IncompleteRead.
            pending = b""
            while True:
                try:
                    piece = res.read1(65536)
                except (http.client.HTTPException, ConnectionError, OSError) as e:
                    self.error = e
                    break
                if not piece:
                    break
                self.raw += piece
                pending += piece
                *complete, pending = pending.split(b"\n")
                now = time.monotonic()
                for line in complete:
                    if line.startswith(b"data: "):
                        self.lines.append((now, line))
                        self.first_line.set()
                if self.stop_after_lines and len(self.lines) >= self.stop_after_lines:
                    break
        except Exception as e:  # noqa: BLE001 - reported through self.error
            self.error = e
        finally:
            self.first_line.set()
            conn.close()

    def join(self, timeout=30):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "stream still running"
        return self


class LiveCoalescingTest(unittest.TestCase):
    def setUp(self):
        self.s = Stack()
        self.addCleanup(self.s.close)

    def start(self, path, body, headers=None, **kw):
        return StreamClient(self.s.gateway.port, path, body, headers, **kw)

    def assertFollowsLive(self, path, body, delay_ms):
        leader = self.start(path, body, {"x-mock-chunk-delay-ms": str(delay_ms)})
        self.assertTrue(leader.first_line.wait(20))
        follower = self.start(path, body)
        leader.join()
        follower.join()
        self.assertEqual((leader.status, leader.cache_status), (200, "MISS"))
        self.assertEqual((follower.status, follower.cache_status), (200, "COALESCED"))
        self.assertIsNone(follower.error)
        self.assertGreaterEqual(len(leader.lines), 4)
        # Live: the follower had its first event while the leader's stream still had events to
        # come (before the leader got its second-to-last one, at least one of the mock's delays
        # earlier), not everything at the end.
        self.assertLess(follower.lines[0][0], leader.lines[-2][0],
                        "the follower's first event came only at the end of the leader's stream")
        # The same events, byte for byte.
        self.assertEqual(follower.raw, leader.raw)
        self.assertEqual(self.s.upstream_calls(), 1)
        # And the answer was stored once, as before.
        again = self.s.post(path, body)
        self.assertEqual(again.cache_status, "HIT")
        self.assertEqual(again.body, leader.raw)
        return leader, follower

    def test_a_chat_follower_gets_the_recorded_prefix_then_each_event_live(self):
        leader, follower = self.assertFollowsLive(CHAT, chat_stream("live chat"), 400)
        self.assertEqual(follower.lines[-1][1], b"data: [DONE]")

    def test_a_responses_follower_gets_its_events_before_the_stream_ends(self):
        leader, follower = self.assertFollowsLive(RESPONSES, responses_stream("live responses"),
                                                  150)
        self.assertIn(b"response.completed", follower.raw)
        # Many events, a delay apart: the follower got them one by one, most of them before the
        # leader got its last one.
        before_end = [t for t, _ in follower.lines if t < leader.lines[-1][0]]
        self.assertGreaterEqual(len(before_end), len(follower.lines) // 2)

    def test_a_follower_that_did_not_ask_for_usage_gets_no_usage_chunk(self):
        body_usage = chat_stream("usage or not")
        body_plain = chat_stream("usage or not", usage=False)  # the same key: stream_options out
        leader = self.start(CHAT, body_usage, {"x-mock-chunk-delay-ms": "300"})
        self.assertTrue(leader.first_line.wait(20))
        follower = self.start(CHAT, body_plain)
        leader.join()
        follower.join()
        self.assertEqual(follower.cache_status, "COALESCED")
        self.assertIn(b'"usage":{', leader.raw)
        self.assertNotIn(b'"usage":{', follower.raw)
        self.assertEqual(follower.lines[-1][1], b"data: [DONE]")
        self.assertEqual(len(follower.lines), len(leader.lines) - 1)
        self.assertEqual(self.s.upstream_calls(), 1)

    def test_a_follower_that_leaves_disturbs_neither_the_leader_nor_the_others(self):
        body = chat_stream("one leaves")
        leader = self.start(CHAT, body, {"x-mock-chunk-delay-ms": "300"})
        self.assertTrue(leader.first_line.wait(20))
        leaving = self.start(CHAT, body, stop_after_lines=1)
        staying = self.start(CHAT, body)
        for c in (leader, leaving, staying):
            c.join()
        self.assertEqual(leaving.cache_status, "COALESCED")
        self.assertEqual(len(leaving.lines), 1)
        self.assertIsNone(leader.error)
        self.assertEqual(leader.lines[-1][1], b"data: [DONE]")
        self.assertEqual(staying.raw, leader.raw)
        self.assertEqual(self.s.upstream_calls(), 1)
        self.assertEqual(self.s.post(CHAT, body).cache_status, "HIT")

    def test_a_leader_that_leaves_hands_the_stream_to_its_followers(self):
        body = chat_stream("leader leaves live")
        raw = json.dumps(body).encode()
        sock = socket.create_connection(("127.0.0.1", self.s.gateway.port), timeout=10)
        sock.sendall(b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nx-mock-chunk-delay-ms: 1000\r\n"
                     b"Content-Length: " + str(len(raw)).encode() + b"\r\n\r\n" + raw)
        got = b""
        while b"data: " not in got:  # the head and the first event
            chunk = sock.recv(65536)
            self.assertTrue(chunk, "the leader's connection closed early")
            got += chunk
        follower = self.start(CHAT, body)
        # Live, the follower has the first event at once (it was waiting for the whole answer,
        # four seconds, before).
        self.assertTrue(follower.first_line.wait(3))
        sock.close()  # the leader's client goes away mid-stream
        follower.join()
        self.assertEqual(follower.cache_status, "COALESCED")
        self.assertIsNone(follower.error)
        self.assertEqual(follower.lines[-1][1], b"data: [DONE]")
        # No second upstream call: the follower got the leader's stream, which was then stored.
        self.assertEqual(self.s.upstream_calls(), 1)
        hit = self.s.post(CHAT, body)
        self.assertEqual(hit.cache_status, "HIT")
        self.assertEqual(hit.body, follower.raw)

    def test_a_cut_stream_breaks_its_live_followers_and_a_waiter_makes_its_own_call(self):
        body = chat_stream("cut live")
        leader = self.start(CHAT, body, {"x-mock-chunk-delay-ms": "300",
                                         "x-mock-abort-after": "3"})
        self.assertTrue(leader.first_line.wait(20))
        follower = self.start(CHAT, body)
        self.assertTrue(follower.first_line.wait(20))
        waiter = {}  # not streamed: it waits for the whole answer, and there is none
        t = threading.Thread(target=lambda: waiter.setdefault(
            "res", self.s.post(CHAT, {k: v for k, v in body.items()
                                      if k not in ("stream", "stream_options")})))
        t.start()
        leader.join()
        follower.join()
        t.join(30)
        # The leader's client and the live follower both see a broken response, never [DONE].
        for c in (leader, follower):
            self.assertIsNotNone(c.error, c.raw)
            self.assertNotIn(b"data: [DONE]", c.raw)
        self.assertEqual(follower.cache_status, "COALESCED")
        self.assertTrue(follower.lines)
        # The waiter had been sent nothing: its own call, a whole answer.
        res = waiter["res"]
        self.assertEqual(res.status, 200, res)
        self.assertEqual(res.cache_status, "MISS")
        self.assertEqual(res.json()["object"], "chat.completion")

    def test_a_stream_follower_of_a_leader_that_failed_before_any_event_calls_itself(self):
        body = chat_stream("failed first")
        leader = self.start(CHAT, body, {"x-mock-status": "500", "x-mock-latency-ms": "800"})
        time.sleep(0.3)  # the leader's call is in flight; this one joins it
        follower = self.start(CHAT, body)
        leader.join()
        follower.join()
        self.assertEqual(leader.status, 500)
        self.assertEqual((follower.status, follower.cache_status), (200, "MISS"))
        self.assertEqual(follower.lines[-1][1], b"data: [DONE]")

    def test_a_non_streamed_follower_of_a_live_stream_gets_the_whole_answer(self):
        body = chat_stream("whole for json")
        leader = self.start(CHAT, body, {"x-mock-chunk-delay-ms": "300"})
        self.assertTrue(leader.first_line.wait(20))
        res = self.s.post(CHAT, {"model": "gpt-4o-mini",
                                 "messages": [{"role": "user", "content": "whole for json"}]})
        leader.join()
        self.assertEqual((res.status, res.cache_status), (200, "COALESCED"))
        self.assertEqual(res.json()["object"], "chat.completion")
        self.assertEqual(self.s.upstream_calls(), 1)


if __name__ == "__main__":
    unittest.main()
