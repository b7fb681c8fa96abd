"""Shared pieces of the hardening tests: tests/gateway/harness.py (which starts a mock upstream
and `llmcache serve` on port 0 over a temp cache dir and stops both in a cleanup) and a few
helpers for raw sockets, process memory and the cache directory's files.
"""
import json
import os
import pathlib
import re
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gateway"))

from harness import BIN, Process, Response, Stack, request, run_cli  # noqa: E402,F401

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
EMBEDDINGS = "/v1/embeddings"


def chat(text, model="gpt-4o-mini", **extra):
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    body.update(extra)
    return body


def claude(text, model="claude-3-5-haiku-latest", **extra):
    body = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": text}]}
    body.update(extra)
    return body


def sanitize_key(cache_key: str) -> str:
    """The disk tier's file stem for a cache key (docs/disk-layout.md), for keys up to 200
    characters: [A-Za-z0-9_-] kept, anything else '_'."""
    assert len(cache_key) <= 200, "long keys are shortened with a CRC32: not needed here"
    return re.sub(r"[^A-Za-z0-9_-]", "_", cache_key) or "_"


def entry_path(cache_dir: pathlib.Path, cache_key: str) -> pathlib.Path:
    name = sanitize_key(cache_key)
    fan = name[-2:].rjust(2, "_")
    return cache_dir / "entries" / fan / f"{name}.entry"


def rss_kib(pid: int):
    """(VmRSS, VmHWM) of a process in KiB: its resident memory now and at its peak."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(rest.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def anon_kib(pid: int) -> int:
    """RssAnon of a process in KiB: its heap and other anonymous memory, without the pages of its
    executable and libraries (which grow as more of the code runs, and with the binary's size)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name == "RssAnon":
                return int(rest.split()[0])
    raise RuntimeError("no RssAnon")


def raw_connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return s


def read_until_closed(sock, limit=1 << 20):
    """Everything the peer sends until it closes (or resets) the connection."""
    data = b""
    while len(data) < limit:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            break
        if not chunk:
            break
        data += chunk
    return data


def status_of(raw: bytes):
    """The status code of a raw HTTP response, or None when there is none."""
    m = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    return int(m.group(1)) if m else None


def body_of(raw: bytes) -> bytes:
    return raw.partition(b"\r\n\r\n")[2]


def free_port() -> int:
    """A port nothing listens on (bound and released: connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def small_asan_quarantine(test):
    """Under AddressSanitizer freed memory waits in a quarantine (256 MB by default) that would
    count as RSS: the gateways this test starts keep it small, so an RSS bound measures the
    gateway's live memory, not the sanitizer's retention of everything freed since start-up."""
    if "ASAN_OPTIONS" in os.environ:
        saved = os.environ["ASAN_OPTIONS"]
        os.environ["ASAN_OPTIONS"] = saved + ":quarantine_size_mb=4"
        test.addCleanup(os.environ.__setitem__, "ASAN_OPTIONS", saved)


class HardeningTestCase(unittest.TestCase):
    """Each test gets a Stack (mock upstream + gateway) that is stopped in a cleanup."""

    SETS = None
    START_GATEWAY = True
    SMALL_ASAN_QUARANTINE = False  # for tests that bound the gateway's RSS

    def setUp(self):
        if self.SMALL_ASAN_QUARANTINE:
            small_asan_quarantine(self)
        self.s = self.start(self.SETS, self.START_GATEWAY)

    def start(self, sets=None, start_gateway=True):
        s = Stack(sets, start_gateway=start_gateway)
        self.addCleanup(s.close)
        return s

    def assertServing(self, stack, text="still serving?"):
        """The gateway answers a normal request (a fresh miss through the mock)."""
        res = stack.post(CHAT, chat(f"{text} {time.monotonic_ns()}"), timeout=10)
        self.assertEqual(res.status, 200, res)
        self.assertEqual(res.cache_status, "MISS", res)
        self.assertIsNone(stack.gateway.proc.poll(), "the gateway exited")

    def assertOpenAiError(self, res, status):
        self.assertEqual(res.status, status, res)
        err = res.json()["error"]
        self.assertIsInstance(err["message"], str)
        self.assertIsInstance(err["type"], str)

    def assertAnthropicError(self, res, status):
        self.assertEqual(res.status, status, res)
        doc = res.json()
        self.assertEqual(doc["type"], "error", doc)
        self.assertIsInstance(doc["error"]["message"], str)
        self.assertIsInstance(doc["error"]["type"], str)

    def assertNothingStored(self, stack):
        stack.gateway  # entry files appear in the background: give a write a moment to land
        time.sleep(0.3)
        self.assertEqual(stack.entry_files(), [], "an answer that must not be stored was")


# -- descriptor limits and raw HTTP (http_server_test.py) ----------------------------------
def start_gateway_with_nofile(stack, nofile: int, sets=None):
    """Starts the stack's gateway (as Stack.start_gateway does) with RLIMIT_NOFILE set to
    `nofile`, soft and hard, in the child before exec (as `ulimit -n nofile` would): the gateway
    cannot raise it."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    args = ["serve", "--listen", "127.0.0.1:0", "--upstream", stack.upstream,
            "--cache-dir", str(stack.cache_dir)]
    for name, value in (sets or {}).items():
        args += ["--set", f"{name}={value}"]
    stack.gateway = Process(args, stack.logs, "gateway", preexec_fn=limit)
    return stack.gateway


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()  # fields from the 3rd (state) on
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def open_fds(pid: int):
    """The descriptor numbers a process has open."""
    return sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd"))


def read_response(sock) -> bytes:
    """One HTTP response (head and Content-Length body) from a raw socket; what arrived when the
    peer closes or the socket's timeout passes first (b"": no answer)."""
    data = b""
    while True:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            m = re.search(rb"(?im)^content-length:\s*(\d+)", data[:end])
            if m is None or len(data) >= end + 4 + int(m.group(1)):
                return data
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            return data
        if not chunk:
            return data
        data += chunk


def header_of(raw: bytes, name: str):
    """A header's value in a raw response, or None."""
    m = re.search(rb"(?im)^" + re.escape(name.encode()) + rb":\s*([^\r\n]*)", raw.partition(b"\r\n\r\n")[0])
    return m.group(1).decode() if m else None
