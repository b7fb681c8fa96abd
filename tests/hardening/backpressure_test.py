"""Back-pressure (issue 15, item 4): a slow reader of a pass-through download must not make the
gateway hold the body. The gateway reads the upstream only as fast as the client takes the
bytes, with a bounded buffer per connection (src/gateway/relay.h: about 2 MiB), so its memory
stays flat however big the body and however slow the client.

The upstream here is a small Python server (the mock serves no big pass-through bodies) that
generates the body on the fly and counts what it got to write: without back-pressure the
gateway swallows the whole body in a second or two (its RSS grows by as much); with it, the
upstream is held back by TCP flow control a few megabytes ahead of the client.
"""
import hashlib
import http.client
import http.server
import threading
import time
import unittest

from common import HardeningTestCase, rss_kib

MIB = 1 << 20
BODY = 200 * MIB
BLOCK = bytes(range(256)) * 4096  # 1 MiB; byte i of the body is i mod 256
PATTERN = BLOCK[:256] * 1024 + BLOCK[:256]  # a read of up to 256 KiB at any offset in it
RATE = 3 * MIB  # bytes per second the slow client reads
READ_SECONDS = 4
# Growth of the gateway's RSS allowed while the slow client reads: the bounded buffers, the
# allocator's slack and the noise of a busy machine, far below what an unbounded buffer takes.
MAX_GROWTH = 64 * MIB


class BigBodyUpstream:
    """An HTTP/1.1 upstream on 127.0.0.1, port 0. GET (or POST) of any path: 200 with `size`
    bytes (byte i = i mod 256; `?bytes=N`: N instead), with Content-Length, or chunked
    text/event-stream for paths ending in /stream. `sent` counts the bytes handed to the socket (a send blocks once the
    socket buffers are full: that is the back-pressure the test sees)."""

    def __init__(self, size=BODY):
        upstream = self
        self.sent = 0
        self.requests = 0
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with upstream.lock:
                    upstream.requests += 1
                path, _, query = self.path.partition("?")
                chunked = path.endswith("/stream")
                length = int(query[len("bytes="):]) if query.startswith("bytes=") else size
                self.send_response(200)
                if chunked:
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(length))
                self.end_headers()
                left = length
                try:
                    while left > 0:
                        piece = BLOCK[:min(left, len(BLOCK))]
                        if chunked:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        else:
                            self.wfile.write(piece)
                        left -= len(piece)
                        with upstream.lock:
                            upstream.sent += len(piece)
                    if chunked:
                        self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the gateway cancelled: expected

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sent_bytes(self):
        with self.lock:
            return self.sent

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class BackPressureTest(HardeningTestCase):
    START_GATEWAY = False

    def setUp(self):
        super().setUp()
        self.upstream = BigBodyUpstream()
        self.addCleanup(self.upstream.close)
        self.s.start_gateway(upstream=f"http://127.0.0.1:{self.upstream.port}/v1")
        self.pid = self.s.gateway.proc.pid

    def open(self, method, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.s.gateway.port, timeout=30)
        self.addCleanup(conn.close)
        conn.request(method, path, body=b"{}" if method == "POST" else None,
                     headers={"Authorization": "Bearer sk-test", "Content-Type": "application/json"})
        res = conn.getresponse()
        self.assertEqual(res.status, 200)
        self.assertEqual(res.getheader("x-llmcache-status"), "BYPASS")
        return conn, res

    def warm_up(self):
        """One complete small pass-through first: threads, pools and curl set up before the
        baseline is taken."""
        conn, res = self.open("GET", "/v1/files/warm-up/content?bytes=4194304")
        self.assertEqual(len(res.read()), 4 * MIB)
        conn.close()
        time.sleep(0.3)
        return rss_kib(self.pid)[0] * 1024

    def read_slowly(self, res):
        """Reads at RATE for READ_SECONDS; checks every byte; returns (bytes read, peak RSS)."""
        got, peak, offset = 0, 0, 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < READ_SECONDS:
            data = res.read1(64 * 1024)
            self.assertTrue(data, "the body ended early")
            if data != PATTERN[offset:offset + len(data)]:
                self.fail(f"the body is corrupt near byte {got}")
            got += len(data)
            offset = got % 256
            ahead = got / RATE - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
            peak = max(peak, rss_kib(self.pid)[0] * 1024)
        return got, peak

    def check_bounded(self, method, path):
        base = self.warm_up()
        sent_before = self.upstream.sent_bytes()
        conn, res = self.open(method, path)
        got, peak = self.read_slowly(res)
        sent = self.upstream.sent_bytes() - sent_before
        growth = peak - base
        print(f"\n  {path}: client read {got / MIB:.1f} MiB in {READ_SECONDS} s, upstream sent "
              f"{sent / MIB:.1f} MiB, gateway RSS {base / MIB:.1f} MiB -> peak "
              f"{peak / MIB:.1f} MiB (+{growth / MIB:.1f})")
        self.assertGreater(got, RATE * READ_SECONDS // 2, "the client could not read")
        self.assertLess(growth, MAX_GROWTH,
                        f"the gateway's RSS grew by {growth / MIB:.0f} MiB for a client that read "
                        f"{got / MIB:.0f} MiB: the body is buffered, not relayed at the client's pace")
        # The upstream was held back: it got no further ahead of the client than the buffers
        # in between (the sockets' and the gateway's few MiB).
        self.assertLess(sent - got, MAX_GROWTH,
                        f"the upstream sent {sent / MIB:.0f} MiB while the client read "
                        f"{got / MIB:.0f} MiB")
        # The client leaves mid-body: the upstream call is cancelled and the gateway serves on.
        conn.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            before = self.upstream.sent_bytes()
            time.sleep(0.2)
            if self.upstream.sent_bytes() == before:
                break
        self.assertLess(self.upstream.sent_bytes() - sent_before, BODY,
                        "the upstream sent the whole body to a client that left")
        self.assertIsNone(self.s.gateway.proc.poll(), "the gateway exited")

    def test_a_slow_reader_of_a_pass_through_download_costs_the_gateway_little_memory(self):
        self.check_bounded("GET", "/v1/files/file-abc/content")

    def test_a_slow_reader_of_a_streamed_pass_through_costs_the_gateway_little_memory(self):
        # Chunked, without a length: what a streamed answer of an uncached endpoint looks like.
        self.check_bounded("POST", "/v1/responses/stream")

    def test_a_fast_reader_gets_the_whole_body_intact(self):
        """Pauses and resumes lose, duplicate and reorder nothing: the whole 200 MiB, read as
        fast as the client can, hashes right."""
        conn, res = self.open("GET", "/v1/files/file-abc/content")
        digest = hashlib.sha256()
        n = 0
        while True:
            data = res.read(MIB)
            if not data:
                break
            digest.update(data)
            n += len(data)
        self.assertEqual(n, BODY)
        want = hashlib.sha256()
        for _ in range(BODY // len(BLOCK)):
            want.update(BLOCK)
        self.assertEqual(digest.hexdigest(), want.hexdigest())


if __name__ == "__main__":
    unittest.main()
