"""Admin access (issue 15, item 5): without CACHE_ADMIN_TOKEN the admin API (/cache/*, /metrics,
/dashboard) answers loopback clients only; but the operator's browser is one, so a web page it
visits could reach the API through it: by a cross-site form or text/plain POST (no CORS
preflight) or by DNS rebinding (the attacker's name resolving to 127.0.0.1: same-origin for the
page, a foreign Host for the gateway). So, over real HTTP:
- a state-changing request (POST /cache/invalidate, DELETE /cache/entries/...) that is not
  `Content-Type: application/json` is 415 and changes nothing, token or not;
- a Host that is not a loopback name (localhost, 127.0.0.1, [::1], 127.x.y.z) is 403;
- an Origin that is not a loopback origin is 403;
- what the operator's own tools send (loopback Host, JSON, no Origin or a loopback one) is
  answered as before; with a token, Host and Origin are not checked (a remote operator).
"""
import http.client
import json
import time
import unittest

from common import CHAT, HardeningTestCase, chat, request

TOKEN = "admin-access-token-4711"
FORM_TYPES = ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
              "multipart/form-data; boundary=x"]


def send(port, method, path, body=b"", content_type=None, headers=None):
    """One request with exactly these headers (harness.request adds a JSON Content-Type to any
    body): content_type None sends none. Returns (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        h = dict(headers or {})
        if content_type is not None:
            h["Content-Type"] = content_type
        if body or method in ("POST", "PUT"):
            h["Content-Length"] = str(len(body))
        conn.request(method, path, body=body or None, headers=h)
        res = conn.getresponse()
        return res.status, res.read()
    finally:
        conn.close()


class AdminAccessCase(HardeningTestCase):
    PROMPT = "what the attacker wants gone"
    AUTH = {}

    def admin(self, method, path, body=None, headers=None):
        """harness.request: a dict body goes as application/json."""
        return request(self.s.gateway.port, method, path, body, headers)

    def send(self, method, path, body=b"", content_type=None, headers=None):
        return send(self.s.gateway.port, method, path, body, content_type, headers)

    def seed(self):
        """One entry, on disk and in the index (what an invalidation would remove)."""
        res = self.s.post(CHAT, chat(self.PROMPT))
        self.assertEqual(res.cache_status, "MISS", res)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stats = self.admin("GET", "/cache/stats", headers=self.AUTH)
            self.assertEqual(stats.status, 200, stats)
            if stats.json()["entries"] == 1:
                return
            time.sleep(0.05)
        self.fail("the entry was not indexed within 30 s")

    def assertStillCached(self):
        res = self.s.post(CHAT, chat(self.PROMPT))
        self.assertEqual(res.cache_status, "HIT", "the entry was invalidated")

    def assertAdminError(self, status, body, expected, error_type=None):
        self.assertEqual(status, expected, body[:300])
        err = json.loads(body)["error"]
        self.assertIsInstance(err["message"], str)
        self.assertIsInstance(err["type"], str)
        if error_type:
            self.assertEqual(err["type"], error_type, body)


class AdminAccessTest(AdminAccessCase):
    """No CACHE_ADMIN_TOKEN: loopback only, by peer address, Host and Origin."""

    # -- CSRF: a cross-site POST without a preflight can only be a "simple" request -------------
    def test_a_cross_site_text_plain_post_to_invalidate_is_415_and_invalidates_nothing(self):
        self.seed()
        everything = json.dumps({"pattern": "*"}).encode()
        for content_type in FORM_TYPES + [None]:  # None: fetch() of a Blob without a type
            status, body = self.send("POST", "/cache/invalidate", everything, content_type)
            self.assertAdminError(status, body, 415, "invalid_request_error")
        # As a browser sends it: with the page's (foreign) Origin.
        status, body = self.send("POST", "/cache/invalidate", everything, "text/plain",
                                 {"Origin": "http://evil.example"})
        self.assertIn(status, (403, 415), body)
        self.assertStillCached()
        stats = self.admin("GET", "/cache/stats", headers=self.AUTH).json()
        self.assertEqual((stats["entries"], stats["invalid_entries"]), (1, 0), stats)

    def test_a_delete_that_is_not_json_is_415_and_the_operators_delete_works(self):
        self.seed()
        cache_id = self.admin("GET", "/cache/entries").json()["data"][0]["cache_id"]
        path = f"/cache/entries/{cache_id}"
        for content_type in FORM_TYPES:
            status, body = self.send("DELETE", path, b"x", content_type)
            self.assertAdminError(status, body, 415, "invalid_request_error")
        status, body = self.send("DELETE", path, b"{}", None)  # a body of no declared type
        self.assertAdminError(status, body, 415, "invalid_request_error")
        self.assertStillCached()
        # curl -X DELETE (no body: a DELETE is never sent cross-site without a preflight).
        status, body = self.send("DELETE", path)
        self.assertEqual(status, 200, body)
        self.assertEqual(self.s.post(CHAT, chat(self.PROMPT)).cache_status, "MISS")

    def test_the_operators_json_post_from_loopback_is_answered_as_before(self):
        self.seed()
        r = self.admin("POST", "/cache/invalidate", {"model": "gpt-4o-mini", "dry_run": True})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["matched"], 1)
        status, body = self.send("POST", "/cache/invalidate", b'{"pattern": "*"}',
                                 "Application/JSON; charset=utf-8")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["invalidated"], 1)
        self.assertEqual(self.s.post(CHAT, chat(self.PROMPT)).cache_status, "MISS")

    # -- DNS rebinding: the attacker's name resolving to 127.0.0.1 (same-origin for the page) ----
    def test_a_foreign_host_gets_403_on_every_admin_route(self):
        self.seed()
        port = self.s.gateway.port
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example",
                     f"localhost.evil.example:{port}", "10.0.0.1", "[::2]", "0.0.0.0",
                     "127.0.0.256", "localhost:80x", ""):
            for path in ("/cache/patterns", "/cache/analytics", "/cache/entries", "/cache/stats",
                         "/metrics", "/dashboard", "/dashboard/app.js"):
                status, body = self.send("GET", path, headers={"Host": host})
                self.assertAdminError(status, body, 403, "permission_error")
            status, body = self.send("POST", "/cache/invalidate", b'{"pattern": "*"}',
                                     "application/json", {"Host": host})
            self.assertAdminError(status, body, 403, "permission_error")
        self.assertStillCached()

    def test_a_foreign_origin_gets_403(self):
        self.seed()
        for origin in ("http://evil.example", f"http://evil.example:{self.s.gateway.port}",
                       "null", "https://127.0.0.1.evil.example", "file://",
                       "http://localhost.evil.example", "ftp://localhost"):
            status, body = self.send("GET", "/cache/patterns", headers={"Origin": origin})
            self.assertAdminError(status, body, 403, "permission_error")
            status, body = self.send("POST", "/cache/invalidate", b'{"pattern": "*"}',
                                     "application/json", {"Origin": origin})
            self.assertAdminError(status, body, 403, "permission_error")
        self.assertStillCached()

    def test_loopback_names_and_origins_are_answered(self):
        port = self.s.gateway.port
        for host in ("127.0.0.1", f"127.0.0.1:{port}", "localhost", f"LocalHost:{port}",
                     "[::1]", f"[::1]:{port}", f"127.1.2.3:{port}"):
            for path in ("/cache/patterns", "/cache/stats", "/metrics", "/dashboard"):
                status, body = self.send("GET", path, headers={"Host": host})
                self.assertEqual(status, 200, (host, path, body[:200]))
        # The dashboard page in a browser: its requests may carry its own (loopback) origin.
        for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}",
                       f"http://[::1]:{port}", "https://localhost"):
            status, body = self.send("GET", "/cache/patterns", headers={"Origin": origin})
            self.assertEqual(status, 200, (origin, body[:200]))
            status, body = self.send("POST", "/cache/invalidate",
                                     b'{"pattern": "*", "dry_run": true}', "application/json",
                                     {"Origin": origin})
            self.assertEqual(status, 200, (origin, body[:200]))


class AdminAccessWithTokenTest(AdminAccessCase):
    """With CACHE_ADMIN_TOKEN the token decides, not Host or Origin; JSON is still required."""
    SETS = {"CACHE_ADMIN_TOKEN": TOKEN}
    AUTH = {"Authorization": f"Bearer {TOKEN}"}

    def test_the_admin_api_needs_the_token_even_from_loopback(self):
        status, body = self.send("GET", "/cache/stats")
        self.assertAdminError(status, body, 401, "authentication_error")

    def test_a_text_plain_post_with_the_token_is_still_415(self):
        self.seed()
        for content_type in FORM_TYPES + [None]:
            status, body = self.send("POST", "/cache/invalidate", b'{"pattern": "*"}',
                                     content_type, self.AUTH)
            self.assertAdminError(status, body, 415, "invalid_request_error")
        self.assertStillCached()

    def test_a_foreign_host_or_origin_with_the_token_is_answered(self):
        self.seed()
        for extra in ({"Host": "gateway.example.com"}, {"Origin": "https://ops.example.com"},
                      {"Host": "10.1.2.3:8080", "Origin": "http://10.1.2.3:8080"}):
            status, body = self.send("GET", "/cache/patterns", headers={**self.AUTH, **extra})
            self.assertEqual(status, 200, (extra, body[:200]))
            status, body = self.send("POST", "/cache/invalidate",
                                     b'{"pattern": "*", "dry_run": true}', "application/json",
                                     {**self.AUTH, **extra})
            self.assertEqual(status, 200, (extra, body[:200]))
            status, body = self.send("GET", "/cache/patterns", headers=extra)
            self.assertAdminError(status, body, 401, "authentication_error")
        self.assertStillCached()


if __name__ == "__main__":
    unittest.main()
