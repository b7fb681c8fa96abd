"""Faults (issue 7, item 7): an upstream that refuses connections, times out or resets mid-stream
is an error in the provider's shape (or a broken stream) and nothing is stored; a disk that is
full or read-only costs the disk tier its writes, never a client its answer.
"""
import http.server
import json
import os
import pathlib
import re
import subprocess
import threading
import time
import unittest

from common import (CHAT, MESSAGES, HardeningTestCase, chat, claude, free_port, request)


class RefusedUpstreamTest(HardeningTestCase):
    START_GATEWAY = False

    def test_an_upstream_refusing_connections_is_a_502_in_the_provider_shape_and_nothing_is_stored(self):
        port = free_port()
        self.s.start_gateway(upstream=f"http://127.0.0.1:{port}/v1")
        for _ in range(2):  # the second is no hit either
            res = self.s.post(CHAT, chat("refused"))
            self.assertOpenAiError(res, 502)
            self.assertNotEqual(res.cache_status, "HIT")
            res = self.s.post(MESSAGES, claude("refused"))
            self.assertAnthropicError(res, 502)
            res = self.s.post(CHAT, chat("refused", stream=True))
            self.assertOpenAiError(res, 502)
        self.assertNothingStored(self.s)
        # The same port starts answering: the request reaches it (no cached failure).
        answers = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.dumps({"id": "c", "object": "chat.completion", "created": 1,
                                   "model": "gpt-4o-mini",
                                   "choices": [{"index": 0, "finish_reason": "stop",
                                                "message": {"role": "assistant", "content": "back"}}],
                                   "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                                             "total_tokens": 2}}).encode()
                answers.append(1)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.addCleanup(server.server_close)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.shutdown)
        res = self.s.post(CHAT, chat("refused"))
        self.assertEqual((res.status, res.cache_status), (200, "MISS"), res)
        self.assertEqual(len(answers), 1)


class UpstreamTimeoutTest(HardeningTestCase):
    SETS = {"CACHE_UPSTREAM_TIMEOUT": "1"}

    def test_an_upstream_slower_than_the_timeout_is_a_504_and_nothing_is_stored(self):
        t0 = time.monotonic()
        res = self.s.post(CHAT, chat("slow"), {"x-mock-latency-ms": "3000"})
        took = time.monotonic() - t0
        self.assertOpenAiError(res, 504)
        self.assertLess(took, 2.9, "the gateway waited for the upstream past its timeout")
        res = self.s.post(MESSAGES, claude("slow"), {"x-mock-latency-ms": "3000"})
        self.assertAnthropicError(res, 504)
        time.sleep(2.5)  # the mock's slow answers are done (and were not stored)
        self.assertNothingStored(self.s)
        res = self.s.post(CHAT, chat("slow"))
        self.assertEqual((res.status, res.cache_status), (200, "MISS"), res)
        self.assertEqual(self.s.upstream_calls(), 3)

    def test_a_stream_that_outlasts_the_timeout_is_broken_off_and_not_stored(self):
        body = chat("slow stream", stream=True)
        res = self.s.post(CHAT, body, {"x-mock-chunk-delay-ms": "600"}, timeout=10)
        self.assertEqual(res.status, 200, res)
        self.assertNotIn(b"[DONE]", res.body)
        self.assertIsNotNone(res.error, "a stream cut by the timeout must not look complete")
        time.sleep(2)
        self.assertNothingStored(self.s)
        self.assertServing(self.s)


class UpstreamResetTest(HardeningTestCase):
    def test_an_upstream_reset_mid_stream_is_a_broken_stream_and_nothing_is_stored(self):
        for path, body in ((CHAT, chat("reset", stream=True)), (MESSAGES, claude("reset", stream=True))):
            with self.subTest(path=path):
                res = self.s.post(path, body, {"x-mock-abort-after": "1"})
                self.assertEqual(res.status, 200, res)
                self.assertIsNotNone(res.error, "a reset stream must not look complete")
                self.assertNotIn(b"[DONE]", res.body)
                self.assertNotIn(b"message_stop", res.body)
        self.assertNothingStored(self.s)
        res = self.s.post(CHAT, chat("reset", stream=True))
        self.assertEqual((res.status, res.cache_status), (200, "MISS"), res)
        self.assertIn(b"[DONE]", res.body)


def mount_tmpfs(testcase, path: pathlib.Path, size: str):
    """A tiny tmpfs at `path` (needs root and mount(2)); unmounted in a cleanup."""
    path.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                       capture_output=True)
    if p.returncode != 0:
        testcase.skipTest("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): "
                          + p.stderr.decode(errors="replace").strip())
    testcase.addCleanup(subprocess.run, ["umount", "-l", str(path)], capture_output=True)


class DiskFaultTest(HardeningTestCase):
    """The disk tier's entries/ folder on a 256 KiB tmpfs, filled up or remounted read-only
    while the gateway runs."""
    START_GATEWAY = False

    def setUp(self):
        super().setUp()
        self.entries = self.s.cache_dir / "entries"
        mount_tmpfs(self, self.entries, "256k")
        self.s.start_gateway()

    def fill(self):
        fd = os.open(self.entries / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        # What is left is not enough for an entry file.
        st = os.statvfs(self.entries)
        self.assertLess(st.f_bavail * st.f_frsize, 4096)

    def drive(self, label):
        """Misses and hits through the gateway: all answered, hits from memory."""
        first = {}
        for i in range(20):
            body = chat(f"{label} {i}")
            res = self.s.post(CHAT, body)
            self.assertEqual((res.status, res.cache_status), (200, "MISS"), res)
            first[i] = res.body
        for i in range(20):
            res = self.s.post(CHAT, chat(f"{label} {i}"))
            self.assertEqual((res.status, res.cache_status), (200, "HIT"), res)
            self.assertEqual(res.header("x-llmcache-layer"), "memory")
            self.assertEqual(res.body, first[i])
        stream = self.s.post(CHAT, chat(f"{label} stream", stream=True))
        self.assertEqual(stream.status, 200)
        self.assertIn(b"[DONE]", stream.body)
        self.assertEqual(self.s.get("/healthz").status, 200)
        self.assertIsNone(self.s.gateway.proc.poll(), "the gateway exited")

    # drive() stores 21 answers (20 misses and a stream): each one's disk write must fail.
    DRIVEN_STORES = 21

    def store_errors(self):
        res = self.s.get("/metrics")
        self.assertEqual(res.status, 200, res)
        m = re.search(r"^llmcache_store_errors_total (\S+)$", res.body.decode(), re.M)
        self.assertIsNotNone(m, "no llmcache_store_errors_total in /metrics")
        return float(m.group(1))

    def assertWriteErrorsReported(self):
        # Writes happen in the background (on a low-priority thread): wait until every one of
        # them was tried and failed, so none is still queued when the disk recovers.
        deadline = time.monotonic() + 20
        pattern = re.compile(rb"disk tier write failed")
        while time.monotonic() < deadline and not (pattern.search(self.s.gateway_output()) and
                                                    self.store_errors() >= self.DRIVEN_STORES):
            time.sleep(0.1)
        self.assertRegex(self.s.gateway_output(), pattern)
        self.assertEqual(self.s.entry_files(), [])

    def assertWriteErrorsCounted(self):
        """A disk tier error is counted where an operator looks: /metrics."""
        self.assertGreaterEqual(self.store_errors(), self.DRIVEN_STORES)

    def test_a_full_disk_costs_the_disk_tier_its_writes_but_no_client_its_answer(self):
        self.fill()
        self.drive("full disk")
        self.assertWriteErrorsReported()
        self.assertWriteErrorsCounted()
        # Space again: writes resume.
        (self.entries / "filler").unlink()
        res = self.s.post(CHAT, chat("space again"))
        self.assertEqual((res.status, res.cache_status), (200, "MISS"), res)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not self.s.entry_files():
            time.sleep(0.05)
        self.assertEqual(len(self.s.entry_files()), 1)

    def test_a_read_only_disk_costs_the_disk_tier_its_writes_but_no_client_its_answer(self):
        p = subprocess.run(["mount", "-o", "remount,ro", str(self.entries)], capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.drive("read-only disk")
        self.assertWriteErrorsReported()
        self.assertWriteErrorsCounted()
        # And a restart on the read-only disk: the gateway starts, or refuses with a message.
        self.s.stop_gateway()
        try:
            self.s.start_gateway()
        except RuntimeError as e:
            self.assertIn("entries", str(e))
            return
        self.drive("read-only after restart")


if __name__ == "__main__":
    unittest.main()
