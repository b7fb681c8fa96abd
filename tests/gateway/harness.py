"""Starts a fresh mock upstream and a gateway (`llmcache serve`) on port 0 with a temp cache dir.

Everything is the real binary over real HTTP: no part of the gateway is faked. Each process's
stdout and stderr go to files in the test's temp dir (so nothing blocks on a full pipe, and the
secret test can grep them). `Stack.stop()` is registered as a cleanup, so processes are ended
even when a test fails.
"""
import hashlib
import hmac
import http.client
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import tempfile
import time

SRC = pathlib.Path(os.environ.get("LLMCACHE_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
BIN = os.environ.get("LLMCACHE_BIN", str(SRC / "build" / "llmcache"))
# The ASan/UBSan build (scripts/test.sh's second stage, build-asan/) runs several times slower:
# a latency bound that is the product's promise (Redis visibility within 100 ms) is checked as
# written against the release build, and stretched by this factor against the sanitized one,
# where the test checks the mechanism (a push, not the S3 polling fallback), not the speed.
SLOWDOWN = 10 if "build-asan" in BIN else 1

_LISTENING = re.compile(rb"listening on http://127\.0\.0\.1:(\d+)")


class Response:
    def __init__(self, status, headers, body, error=None):
        self.status = status
        self.headers = headers  # lower-cased names
        self.body = body
        self.error = error  # the exception that ended the read early (a cut stream), if any

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    @property
    def cache_status(self):
        return self.header("x-llmcache-status")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.cache_status} {self.body[:200]!r}>"


def request(port, method, path, body=None, headers=None, timeout=30):
    """One request on a fresh connection. A body that is a dict is sent as JSON."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    h = {"Content-Type": "application/json"} if body is not None else {}
    h.update(headers or {})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=h)
        res = conn.getresponse()
        hdrs = {k.lower(): v for k, v in res.getheaders()}
        data, error = b"", None
        try:
            data = res.read()
        except http.client.IncompleteRead as e:
            data, error = e.partial, e
        except (ConnectionError, http.client.HTTPException) as e:
            error = e
        return Response(res.status, hdrs, data, error)
    finally:
        conn.close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for servers that cannot take port 0)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(predicate, timeout=10.0, step=0.05):
    """Calls predicate until it returns something true (returned) or timeout seconds pass (then
    its last value)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def scope_of(credential: str, secret: str) -> str:
    """The tenant scope CACHE_SCOPE=api_key puts into the key: the first 16 hex of
    HMAC-SHA256(secret, credential) (the secret: CACHE_SCOPE_SECRET, else the one the gateway
    keeps in CACHE_DIR/scope-secret)."""
    return hmac.new(secret.encode(), credential.encode(), hashlib.sha256).hexdigest()[:16]


class Process:
    """One llmcache process whose output goes to files; `port` is read from its banner."""

    def __init__(self, args, log_dir: pathlib.Path, name: str, preexec_fn=None):
        self.args = args
        self.stdout_path = log_dir / f"{name}.stdout"
        self.stderr_path = log_dir / f"{name}.stderr"
        # Append: a restarted gateway keeps the earlier run's output for the secret grep.
        self._out = open(self.stdout_path, "ab")
        self._err = open(self.stderr_path, "ab")
        self._offset = self.stdout_path.stat().st_size
        self.proc = subprocess.Popen([BIN, *args], stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, preexec_fn=preexec_fn)
        self.port = self._wait_for_port()

    def _wait_for_port(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.stdout_path, "rb") as f:
                f.seek(self._offset)
                m = _LISTENING.search(f.read())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        self.kill()
        raise RuntimeError(f"{self.args[0]} did not start (rc={self.proc.returncode}): "
                           f"{self.stderr_path.read_text(errors='replace')}")

    def stop(self, timeout=15):
        """SIGTERM (graceful: in-flight requests finish, pending disk writes are flushed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
        self._close()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()

    def _close(self):
        for f in (self._out, self._err):
            if not f.closed:
                f.close()


class Stack:
    """A mock upstream and a gateway in front of it, on a temp cache dir."""

    def __init__(self, sets=None, start_gateway=True):
        self._tmp = tempfile.TemporaryDirectory(prefix="llmcache-gw-test-")
        self.root = pathlib.Path(self._tmp.name)
        self.cache_dir = self.root / "cache"
        self.logs = self.root / "logs"
        self.logs.mkdir()
        self.mock = Process(["mock-upstream", "--listen", "127.0.0.1:0"], self.logs, "mock")
        self.gateway = None
        self.sets = dict(sets or {})
        self.upstream = f"http://127.0.0.1:{self.mock.port}/v1"
        if start_gateway:
            try:
                self.start_gateway()
            except Exception:
                self.close()
                raise

    # -- processes -------------------------------------------------------------------------
    def scope_of(self, credential: str) -> str:
        """The tenant id this gateway gives a credential (its generated scope secret)."""
        secret = (self.cache_dir / "scope-secret").read_text().strip()
        return scope_of(credential, secret)

    def start_gateway(self, sets=None, upstream=None):
        """Starts the gateway on the mock (or on `upstream`, a base URL ending in /v1)."""
        if sets is not None:
            self.sets = dict(sets)
        if upstream is not None:
            self.upstream = upstream
        args = ["serve", "--listen", "127.0.0.1:0",
                "--upstream", self.upstream,
                "--cache-dir", str(self.cache_dir)]
        for name, value in self.sets.items():
            args += ["--set", f"{name}={value}"]
        self.gateway = Process(args, self.logs, "gateway")
        return self.gateway

    def stop_gateway(self):
        rc = self.gateway.stop()
        return rc

    def restart_gateway(self):
        rc = self.stop_gateway()
        self.start_gateway()
        return rc

    def close(self):
        for p in (self.gateway, self.mock):
            if p is not None:
                try:
                    p.stop(timeout=5)
                except Exception:
                    p.kill()
        reports = sanitizer_reports(self.logs)
        self._tmp.cleanup()
        if reports:
            raise AssertionError("sanitizer report(s) in the processes' output:\n" + reports)

    # -- traffic ---------------------------------------------------------------------------
    def post(self, path, body, headers=None, timeout=30):
        return request(self.gateway.port, "POST", path, body, headers, timeout)

    def get(self, path, headers=None):
        return request(self.gateway.port, "GET", path, None, headers)

    def mock_stats(self):
        return request(self.mock.port, "GET", "/mock/stats").json()

    def upstream_calls(self):
        return self.mock_stats()["calls"]

    def mock_direct(self, method, path, body=None, headers=None):
        return request(self.mock.port, method, path, body, headers)

    def gateway_output(self) -> bytes:
        return self.gateway.stdout_path.read_bytes() + self.gateway.stderr_path.read_bytes()

    def entry_files(self):
        return sorted((self.cache_dir / "entries").glob("*/*.entry"))

    def wait_stored(self, n, timeout=30):
        """Waits until the background writer (a low-priority thread) has put n entries on disk
        and in the index (loopback admin access, no token)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.entry_files()) >= n:
                stats = request(self.gateway.port, "GET", "/cache/stats")
                if stats.status == 200 and stats.json().get("entries", 0) >= n:
                    return
            time.sleep(0.05)
        raise AssertionError(f"{n} entries not stored within {timeout}s: {len(self.entry_files())} files")


_SANITIZER = re.compile(rb"(ERROR: (AddressSanitizer|LeakSanitizer)|runtime error: |"
                        rb"WARNING: ThreadSanitizer)")


def sanitizer_reports(log_dir: pathlib.Path) -> str:
    """The output of every process whose log holds an ASan/LSan/UBSan report (a build with
    LLMCACHE_SANITIZE=ON): a test's cleanup fails with it, so findings in the gateway or the
    mock never pass silently (their logs live in the test's temp dir)."""
    out = []
    for f in sorted(log_dir.glob("*.std*")):
        data = f.read_bytes()
        if _SANITIZER.search(data):
            out.append(f"--- {f.name}\n" + data.decode(errors="replace")[-20000:])
    return "\n".join(out)


def run_cli(args, stdin: bytes = b"", timeout=30):
    p = subprocess.run([BIN, *args], input=stdin, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr
