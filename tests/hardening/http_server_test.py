"""The HTTP server's edges (issue 15, items 7 and 9): descriptors, Expect: 100-continue, trailers.

- Out of file descriptors the gateway answers 503 (with Retry-After, in the provider's error
  shape) instead of spinning in its accept loop, and serves again once descriptors free up. The
  default connection limit leaves a reserve below the descriptor limit (`ulimit -n`), and an
  explicit CACHE_MAX_CONNECTIONS above it is clamped with a warning.
- A request with `Expect: 100-continue` gets its `100 Continue` before the body is read (curl
  waits a second for it with bodies over 1 MB).
- A chunked request's trailer fields never reach the request's headers: a trailer cannot set
  the tenant (Authorization) or the namespace.
"""
import json
import os
import resource
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from common import (CHAT, MESSAGES, HardeningTestCase, body_of, chat, claude, cpu_seconds,
                    header_of, open_fds, read_response, run_cli, start_gateway_with_nofile,
                    status_of)

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: llmcache\r\n\r\n"


def post_bytes(path, body: bytes, extra=b""):
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: llmcache\r\n"
            b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
            b"\r\n" + extra + b"\r\n" + body)


class DescriptorLimitTest(HardeningTestCase):
    START_GATEWAY = False

    def connect(self, timeout=5):
        s = socket.create_connection(("127.0.0.1", self.s.gateway.port), timeout=timeout)
        self.addCleanup(s.close)
        return s

    def fill(self, most=600):
        """Opens connections, each kept alive after a served GET /healthz, until one is not
        served. Returns (the served sockets, the raw answer of the one that was not: b"" when
        none came within 5 s)."""
        held = []
        for _ in range(most):
            s = self.connect()
            s.sendall(HEALTHZ)
            raw = read_response(s)
            if status_of(raw) != 200:
                return held, raw
            held.append(s)
        self.fail(f"{most} connections were all served: no limit was reached")

    def assertUnavailable(self, raw, what):
        self.assertTrue(raw, f"{what}: no answer within 5 s (the accept loop is stuck)")
        self.assertEqual(status_of(raw), 503, raw[:300])
        self.assertEqual(header_of(raw, "Retry-After"), "1", raw[:300])

    def assertQuietAndAnswering(self, seconds=2.0):
        """While the condition lasts, new connections keep coming (one every 0.2 s): each is
        answered 503 and the gateway stays nearly idle (the old accept loop spun at a core)."""
        pid = self.s.gateway.proc.pid
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        answers = []
        while time.monotonic() - t0 < seconds:
            s = self.connect()
            s.sendall(HEALTHZ)
            answers.append(status_of(read_response(s)))
            s.close()
            time.sleep(0.2)
        wall, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
        self.assertEqual(set(answers), {503}, answers)
        self.assertLess(cpu, 0.15 * wall, f"the gateway used {cpu:.2f} s of CPU in {wall:.2f} s")

    def release(self, held):
        for s in held:
            s.close()
        time.sleep(0.3)  # the gateway sees them close
        self.assertServing(self.s, "serving again?")

    def test_the_default_connection_limit_stays_below_a_small_descriptor_limit(self):
        # ulimit -n 256: the default is 256 minus a reserve of half (at least 256 or a quarter,
        # never more than half): 128 connections, the 129th is answered 503.
        start_gateway_with_nofile(self.s, 256)
        held, raw = self.fill()
        self.assertUnavailable(raw, f"connection {len(held) + 1}")
        self.assertEqual(len(held), 128)
        self.assertIsInstance(json.loads(body_of(raw))["error"]["message"], str)
        self.assertQuietAndAnswering()
        self.release(held)

    def test_an_explicit_limit_above_the_descriptor_limit_is_clamped_with_a_warning(self):
        start_gateway_with_nofile(self.s, 256, {"CACHE_MAX_CONNECTIONS": "100000"})
        held, raw = self.fill()
        self.assertUnavailable(raw, f"connection {len(held) + 1}")
        self.assertEqual(len(held), 128)
        err = self.s.gateway.stderr_path.read_text()
        self.assertRegex(err, r"CACHE_MAX_CONNECTIONS=100000 is more than 256 file descriptors "
                              r"allow; using 128")
        self.release(held)

    def test_an_explicit_limit_that_fits_is_kept(self):
        start_gateway_with_nofile(self.s, 256, {"CACHE_MAX_CONNECTIONS": "20"})
        held, raw = self.fill()
        self.assertUnavailable(raw, f"connection {len(held) + 1}")
        self.assertEqual(len(held), 20)
        self.assertNotIn("CACHE_MAX_CONNECTIONS", self.s.gateway.stderr_path.read_text())
        self.release(held)

    def test_out_of_descriptors_new_connections_get_a_503_in_the_provider_shape_and_no_spin(self):
        # The descriptor limit drops under a running gateway (far below its connection limit), as
        # when the upstream, files and clients together use them all: accept() fails (EMFILE).
        self.s.start_gateway()
        pid = self.s.gateway.proc.pid
        # First a connection that the client closes after a request, as any running gateway has
        # seen: under the sanitizers, UBSan's vptr check cannot validate a type first used while
        # the process has no descriptor free (its memory probe opens a pipe), and the first
        # end-of-stream (release() below) would be such a first use. (A /healthz: a miss would
        # leave the disk write behind, to fail for want of a descriptor.)
        s = self.connect()
        s.sendall(HEALTHZ)
        self.assertEqual(status_of(read_response(s)), 200)
        s.close()
        time.sleep(0.2)
        limit = max(open_fds(pid)) + 12
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))
        held, raw = self.fill()
        self.assertUnavailable(raw, f"connection {len(held) + 1}")
        self.assertGreaterEqual(len(held), 1)
        self.assertIn("file descriptors", json.loads(body_of(raw))["error"]["message"])
        # The 503 comes in the shape of the provider the request was for.
        s = self.connect()
        s.sendall(post_bytes(MESSAGES, json.dumps(claude("out of descriptors")).encode()))
        raw = read_response(s)
        self.assertUnavailable(raw, MESSAGES)
        doc = json.loads(body_of(raw))
        self.assertEqual(doc["type"], "error", doc)
        self.assertEqual(doc["error"]["type"], "overloaded_error", doc)
        s = self.connect()
        s.sendall(post_bytes(CHAT, json.dumps(chat("out of descriptors")).encode()))
        raw = read_response(s)
        self.assertUnavailable(raw, CHAT)
        self.assertIsInstance(json.loads(body_of(raw))["error"]["message"], str)
        self.assertQuietAndAnswering()
        self.release(held)


class ExpectContinueTest(HardeningTestCase):
    def test_the_100_continue_comes_before_the_body_is_sent(self):
        body = json.dumps(chat("expect continue")).encode()
        s = socket.create_connection(("127.0.0.1", self.s.gateway.port), timeout=3)
        self.addCleanup(s.close)
        head, _, _ = post_bytes(CHAT, body, b"Expect: 100-continue\r\n").partition(b"\r\n\r\n")
        s.sendall(head + b"\r\n\r\n")
        interim = b""
        try:
            while b"\r\n\r\n" not in interim:
                chunk = s.recv(4096)
                if not chunk:
                    break
                interim += chunk
        except socket.timeout:
            pass
        self.assertEqual(interim, b"HTTP/1.1 100 Continue\r\n\r\n",
                         "no 100 Continue within 3 s of the head")
        s.sendall(body)
        raw = read_response(s)
        self.assertEqual(status_of(raw), 200, raw[:300])
        self.assertEqual(header_of(raw, "x-llmcache-status"), "MISS", raw[:300])

    def test_curl_with_a_body_over_1_mb_does_not_wait_a_second(self):
        curl = shutil.which("curl")
        if curl is None:
            self.skipTest("curl is not installed")
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            f.write(json.dumps(chat("x" * (1200 << 10))).encode())
            f.flush()
            url = f"http://127.0.0.1:{self.s.gateway.port}{CHAT}"
            p = subprocess.run([curl, "-sS", "-v", "-o", os.devnull, "-w", "%{http_code} %{time_total}",
                                "-H", "Content-Type: application/json", "--data-binary", f"@{f.name}",
                                url], capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        self.assertIn(b"Expect: 100-continue", p.stderr, "curl did not ask: the test proves nothing")
        code, took = p.stdout.decode().split()
        self.assertEqual(code, "200")
        self.assertLess(float(took), 0.9, "curl waited for a 100 Continue that never came")
        self.assertIn(b"HTTP/1.1 100 Continue", p.stderr)


class ExpectContinueOverTheLimitTest(HardeningTestCase):
    SETS = {"CACHE_MAX_BODY_BYTES": "1000"}

    def test_a_body_over_the_limit_is_refused_without_a_100(self):
        s = socket.create_connection(("127.0.0.1", self.s.gateway.port), timeout=3)
        self.addCleanup(s.close)
        s.sendall(b"POST " + MESSAGES.encode() + b" HTTP/1.1\r\nHost: llmcache\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 5000\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        raw = read_response(s)
        self.assertEqual(status_of(raw), 413, raw[:300])
        self.assertEqual(json.loads(body_of(raw))["type"], "error")


class OversizeUploadTest(HardeningTestCase):
    SETS = {"CACHE_MAX_BODY_BYTES": "1000"}

    def test_a_client_still_uploading_a_body_over_the_limit_reads_the_413(self):
        # Issue 17: the gateway answered and closed without reading the upload, so a client
        # still sending it got EPIPE / a reset (Node's SDKs: "Connection error", three retries)
        # and never the 413. 8 MiB is more than the sockets' buffers can take unread.
        size = 8 << 20
        s = socket.create_connection(("127.0.0.1", self.s.gateway.port), timeout=10)
        self.addCleanup(s.close)
        s.sendall(b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: llmcache\r\n"
                  b"Content-Type: application/json\r\nContent-Length: " + str(size).encode() +
                  b"\r\n\r\n")
        chunk = b"x" * (1 << 16)
        for _ in range(size // len(chunk)):
            s.sendall(chunk)  # raised BrokenPipeError / ConnectionResetError before
        raw = read_response(s)
        self.assertEqual(status_of(raw), 413, raw[:300])
        self.assertIn("larger than 1000 bytes", json.loads(body_of(raw))["error"]["message"])
        # ...and the gateway goes on serving.
        self.assertEqual(self.s.post(CHAT, chat("after the big one")).status, 200)


class TrailerTest(HardeningTestCase):
    def test_trailers_cannot_set_the_tenant_or_the_namespace(self):
        body = json.dumps(chat("trailers")).encode()
        half = len(body) // 2
        s = socket.create_connection(("127.0.0.1", self.s.gateway.port), timeout=10)
        self.addCleanup(s.close)
        s.sendall(b"POST " + CHAT.encode() + b" HTTP/1.1\r\nHost: llmcache\r\n"
                  b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                  b"Trailer: Authorization, x-llmcache-namespace\r\n\r\n" +
                  b"%x\r\n%s\r\n" % (half, body[:half]) +
                  b"%x\r\n%s\r\n" % (len(body) - half, body[half:]) +
                  b"0\r\nAuthorization: Bearer evil\r\nx-llmcache-namespace: evil\r\n\r\n")
        raw = read_response(s)
        self.assertEqual(status_of(raw), 200, raw[:300])
        self.assertEqual(header_of(raw, "x-llmcache-status"), "MISS", raw[:300])
        key = header_of(raw, "x-llmcache-key")
        # The entry is the anonymous tenant's, in no namespace: the request as its head was.
        rc, out, err = run_cli(["key", "--scope", "anonymous"], body)
        self.assertEqual(rc, 0, err)
        self.assertEqual(key, json.loads(out)["cache_key"])
        plain = self.s.post(CHAT, body)
        self.assertEqual((plain.status, plain.cache_status), (200, "HIT"), plain)
        self.assertEqual(plain.header("x-llmcache-key"), key)
        evil = self.s.post(CHAT, body, {"Authorization": "Bearer evil",
                                        "x-llmcache-namespace": "evil"})
        self.assertEqual((evil.status, evil.cache_status), (200, "MISS"), evil)
        self.assertNotEqual(evil.header("x-llmcache-key"), key)


if __name__ == "__main__":
    unittest.main()
