#!/usr/bin/env python3
"""A local HTTP/1.1 peer for the upstream client tests (http_client_test.cc).

Listens on 127.0.0.1, port 0, and prints the port it got as the first line of stdout.
Endpoints (any method):
  /echo                  200, JSON {method, path, headers: [[name, value]...], body, client_port}
  /status/<code>         that status; a JSON error body unless the code forbids a body (204, 304)
  /stream?chunks=N&delay_ms=M
                         200, chunked text/event-stream; N chunks "data: chunk i sent_at_ms=T",
                         M milliseconds apart (T: the server's wall clock when it sent chunk i)
  /slow?delay_ms=M       waits M milliseconds, then 200 "late"
  /early-hints           a 103 Early Hints interim response (with a Link header), then 200 "ok"
  /big?bytes=N&chunked=C 200, N bytes of application/octet-stream, byte i = i*7 mod 251 (with
                         Content-Length, or chunked when C=1), written in 64 KiB pieces
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so that tests can observe connection reuse

    def log_message(self, *args):
        pass

    def do_GET(self):
        try:
            self.route()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away (cancel, timeout): expected

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status, body, content_type="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def route(self):
        url = urlparse(self.path)
        query = parse_qs(url.query)
        body = self.read_body()

        def arg(name, default):
            return int(query.get(name, [default])[0])

        if url.path == "/echo":
            payload = {
                "method": self.command,
                "path": self.path,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body": body.decode("utf-8", "replace"),
                "client_port": self.client_address[1],
            }
            self.reply(200, json.dumps(payload).encode(), extra=[("X-Echo", "yes")])
        elif url.path.startswith("/status/"):
            code = int(url.path.split("/")[2])
            if code in (204, 304):
                self.send_response(code)
                self.end_headers()
            else:
                error = {"error": {"message": "status %d as asked" % code, "type": "server_error"}}
                self.reply(code, json.dumps(error).encode())
        elif url.path == "/stream":
            chunks, delay = arg("chunks", 5), arg("delay_ms", 100) / 1000.0
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(chunks):
                if i > 0:
                    time.sleep(delay)
                data = ("data: chunk %d sent_at_ms=%d\n\n" % (i, int(time.time() * 1000))).encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        elif url.path == "/slow":
            time.sleep(arg("delay_ms", 1000) / 1000.0)
            self.reply(200, b"late", "text/plain")
        elif url.path == "/big":
            size, chunked = arg("bytes", 1 << 20), arg("chunked", 0) == 1
            pattern = bytes(i * 7 % 251 for i in range(251 * 270))  # repeats every 251 bytes
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(size))
            self.end_headers()
            sent = 0
            while sent < size:
                n = min(64 * 1024, size - sent)
                start = sent % 251
                piece = pattern[start:start + n]
                self.wfile.write(b"%x\r\n%s\r\n" % (n, piece) if chunked else piece)
                sent += n
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        elif url.path == "/early-hints":
            self.wfile.write(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
            self.wfile.flush()
            self.reply(200, b"ok", "text/plain")
        else:
            self.reply(404, b'{"error":{"message":"no such endpoint"}}')


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the concurrency test opens dozens of connections at once


def main():
    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
