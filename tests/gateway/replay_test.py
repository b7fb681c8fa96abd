"""Record and replay (CACHE_MODE, docs/record-replay.md) and the miss explainer, over real HTTP.

A run is recorded through the gateway in front of `llmcache mock-upstream` into a cassette
folder, then replayed with the mock stopped: the same answers, streams included, and a request
that was never recorded is a 404 in the provider's shape naming the field that differs.
"""
import json
import re
import time
import unittest
import urllib.parse

from harness import Stack, request, run_cli

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
EMBEDDINGS = "/v1/embeddings"
API_KEY = "sk-test-replay-SECRET-4711"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def chat(text="What is the capital of France?", **extra):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    body.update(extra)
    return body


def claude(text="What is the capital of France?", **extra):
    body = {"model": "claude-3-5-haiku-latest", "max_tokens": 64,
            "messages": [{"role": "user", "content": text}]}
    body.update(extra)
    return body


def sse_data(body: bytes):
    return [line[len(b"data: "):] for line in body.split(b"\n") if line.startswith(b"data: ")]


# The run of an app's test suite: JSON and streamed answers of both providers, and embeddings.
RUN = [
    (CHAT, chat(temperature=0.7)),
    (CHAT, chat("Name three colours.", stream=True, stream_options={"include_usage": True})),
    (CHAT, chat("Stream without usage.", stream=True)),
    (MESSAGES, claude(system="You are terse. Today is Monday.")),
    (MESSAGES, claude("Count to three.", stream=True)),
    (EMBEDDINGS, {"model": "text-embedding-3-small", "input": "hello"}),
]


class ReplayTestCase(unittest.TestCase):
    def setUp(self):
        self.s = Stack(start_gateway=False)
        self.addCleanup(self.s.close)
        self.cassette = self.s.root / "cassette"

    def start(self, mode, **extra):
        sets = {"CACHE_MODE": mode, "CACHE_CASSETTE_DIR": str(self.cassette)}
        sets.update(extra)
        return self.s.start_gateway(sets=sets)

    def upstream_calls(self):
        return request(self.s.mock.port, "GET", "/mock/stats").json()["calls"]

    def record(self, run=RUN):
        self.start("record")
        answers = []
        for path, body in run:
            res = self.s.post(path, body, AUTH)
            self.assertEqual(res.status, 200, res)
            self.assertEqual(res.cache_status, "MISS", res)
            answers.append(res)
        self.s.stop_gateway()
        return answers

    def entry_files(self):
        return sorted((self.cassette / "entries").glob("*.json"))


class RecordReplayTest(ReplayTestCase):

    def test_a_recorded_run_replays_the_same_answers_with_the_provider_stopped(self):
        recorded = self.record()
        self.assertEqual(len(self.entry_files()), len(RUN))
        self.s.mock.stop()
        self.start("replay")
        for (path, body), first in zip(RUN, recorded):
            # No credential at all: a replay needs none.
            again = self.s.post(path, body)
            self.assertEqual(again.status, 200, again)
            self.assertEqual(again.cache_status, "HIT", again)
            self.assertEqual(again.header("x-llmcache-layer"), "cassette")
            if body.get("stream"):
                self.assertIn("text/event-stream", again.header("content-type"))
                self.assertEqual(sse_data(again.body), sse_data(first.body), path)
            else:
                self.assertEqual(again.json(), first.json(), path)

    def test_the_cassette_holds_no_credential_and_names_files_by_key_without_timestamps(self):
        recorded = self.record()
        for f in self.cassette.rglob("*"):
            if f.is_file():
                self.assertNotIn(API_KEY.encode(), f.read_bytes(), f)
                self.assertNotIn(b"SECRET", f.read_bytes(), f)
        keys = {res.header("x-llmcache-key") for res in recorded}
        names = {f.name for f in self.entry_files()}
        self.assertEqual(names, {re.sub(r"[^A-Za-z0-9_-]", "_", k) + ".json" for k in keys})
        # Stable names: recording the run again (later, another process) rewrites the same files.
        self.record()
        self.assertEqual({f.name for f in self.entry_files()}, names)
        # Plain, pretty-printed JSON entries that never expire.
        text = self.entry_files()[0].read_text()
        self.assertIn('\n  "cache_key": ', text)
        self.assertIsNone(json.loads(text)["expires_at"])

    def test_record_mode_records_anew_and_replay_or_record_adds_what_is_missing(self):
        self.start("record", CACHE_TTL="60")
        first = self.s.post(CHAT, chat(), AUTH)
        second = self.s.post(CHAT, chat(), AUTH)
        self.assertEqual(second.cache_status, "MISS")
        self.assertNotEqual(first.json(), second.json(), "record mode calls the provider again")
        self.assertIsNone(json.loads(self.entry_files()[0].read_text())["expires_at"])
        self.s.stop_gateway()
        self.start("replay-or-record")
        calls = self.upstream_calls()
        hit = self.s.post(CHAT, chat(), AUTH)
        self.assertEqual(hit.cache_status, "HIT")
        self.assertEqual(hit.json(), second.json(), "the last recording wins")
        new = self.s.post(CHAT, chat("Something new"), AUTH)
        self.assertEqual(new.cache_status, "MISS")
        self.assertEqual(self.upstream_calls(), calls + 1)
        self.assertEqual(len(self.entry_files()), 2)

    def test_a_mode_without_a_cassette_is_a_configuration_error(self):
        code, _, err = run_cli(["serve", "--mode", "replay", "--print-config"])
        self.assertEqual(code, 2)
        self.assertIn(b"CACHE_CASSETTE_DIR", err)
        code, _, err = run_cli(["serve", "--mode", "rewind", "--cassette", "x", "--print-config"])
        self.assertEqual(code, 2)
        self.assertIn(b"CACHE_MODE", err)


class NotRecordedTest(ReplayTestCase):

    def test_an_openai_request_differing_in_temperature_is_a_404_naming_that_field(self):
        self.record()
        self.s.mock.stop()
        self.start("replay")
        res = self.s.post(CHAT, chat(temperature=0.2))
        self.assertEqual(res.status, 404, res)
        err = res.json()["error"]
        self.assertEqual(err["type"], "not_found_error")
        self.assertEqual(err["code"], "llmcache_not_recorded")
        self.assertIn(res.header("x-llmcache-key"), err["message"])
        self.assertIn("temperature: 0.7 -> 0.2", err["message"])
        self.assertEqual(err["llmcache"]["explain"]["differences"], ["temperature: 0.7 -> 0.2"])
        self.assertEqual(err["llmcache"]["cache_key"], res.header("x-llmcache-key"))
        self.assertIn("temperature: 0.7 -> 0.2", res.header("x-llmcache-miss-reason"))

    def test_an_anthropic_request_differing_in_one_word_of_the_system_prompt_names_it(self):
        self.record()
        self.s.mock.stop()
        self.start("replay")
        res = self.s.post(MESSAGES, claude(system="You are terse. Today is Friday."))
        self.assertEqual(res.status, 404, res)
        body = res.json()
        self.assertEqual(body["type"], "error")
        self.assertEqual(body["error"]["type"], "not_found_error")
        self.assertEqual(body["error"]["llmcache"]["explain"]["differences"],
                         ['system: 3 characters differ at offset 24 ("Mon" -> "Fri")'])

    def test_a_request_the_gateway_never_records_is_refused_in_replay(self):
        self.record()
        self.s.mock.stop()
        self.start("replay")
        res = request(self.s.gateway.port, "GET", "/v1/models")
        self.assertEqual(res.status, 404, res)
        self.assertIn("never recorded", res.json()["error"]["message"])


class CassetteCliTest(ReplayTestCase):

    def test_list_verify_and_prune_after_a_replay_run(self):
        self.record()
        code, out, _ = run_cli(["cassette", "verify", str(self.cassette)])
        self.assertEqual(code, 0, out)
        self.assertIn(f"{len(RUN)} entries, 0 problem(s)".encode(), out)
        # A replay run that uses two of the recordings.
        self.start("replay")
        for path, body in RUN[:2]:
            self.assertEqual(self.s.post(path, body).status, 200)
        self.s.stop_gateway()
        used = json.loads((self.cassette / "last-replay.json").read_text())["used"]
        self.assertEqual(len(used), 2)
        code, out, _ = run_cli(["cassette", "list", str(self.cassette)])
        self.assertEqual(code, 0, out)
        self.assertEqual(out.count(b"\nused ") + out.startswith(b"used "), 2, out)
        self.assertEqual(out.count(b"unused "), len(RUN) - 2, out)
        code, out, _ = run_cli(["cassette", "prune", "--dry-run", str(self.cassette)])
        self.assertEqual(code, 0, out)
        self.assertEqual(len(self.entry_files()), len(RUN))
        code, out, _ = run_cli(["cassette", "prune", str(self.cassette)])
        self.assertEqual(code, 0, out)
        self.assertEqual(len(self.entry_files()), 2)
        self.assertIn(b"2 kept, 4 removed", out)

    def test_verify_names_a_broken_file(self):
        self.record(RUN[:1])
        self.entry_files()[0].write_text("{ broken")
        code, out, _ = run_cli(["cassette", "verify", str(self.cassette)])
        self.assertEqual(code, 1)
        self.assertIn(b"PROBLEM", out)

    def test_prune_without_a_replay_run_is_refused(self):
        self.record(RUN[:1])
        code, _, err = run_cli(["cassette", "prune", str(self.cassette)])
        self.assertEqual(code, 2)
        self.assertIn(b"replay mode first", err)
        self.assertEqual(len(self.entry_files()), 1)

    def test_explain_a_request_file_against_the_cassette(self):
        self.record()
        f = self.s.root / "req.json"
        f.write_text(json.dumps(chat(temperature=0.2)))
        code, out, err = run_cli(["explain", str(f), "--cassette", str(self.cassette)])
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["differences"], ["temperature: 0.7 -> 0.2"])


class ExplainHeaderTest(unittest.TestCase):
    """The explainer in normal mode: x-llmcache-explain: 1 on a request."""

    def setUp(self):
        self.s = Stack()
        self.addCleanup(self.s.close)

    def stored(self, body, headers):
        res = self.s.post(CHAT, body, headers)
        self.assertEqual(res.cache_status, "MISS")
        # The entry reaches the disk tier and the index in the background.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            on_disk = list((self.s.cache_dir / "entries").glob("*/*.entry"))
            stats = self.s.get("/cache/stats")
            if on_disk and stats.status == 200 and stats.json().get("entries", 0) >= 1:
                return
            time.sleep(0.05)
        self.fail("the entry was not stored")

    def test_a_miss_that_asks_is_told_the_nearest_request_and_what_differs(self):
        self.stored(chat(temperature=0.7), AUTH)
        res = self.s.post(CHAT, chat(temperature=0.2), {**AUTH, "x-llmcache-explain": "1"})
        self.assertEqual(res.cache_status, "MISS")
        reason = res.header("x-llmcache-miss-reason")
        self.assertIsNotNone(reason)
        self.assertTrue(reason.startswith("nearest "), reason)
        self.assertTrue(reason.endswith(": temperature: 0.7 -> 0.2"), reason)
        plain = self.s.post(CHAT, chat(temperature=0.3), AUTH)
        self.assertIsNone(plain.header("x-llmcache-miss-reason"), "only when asked")

    def test_the_admin_api_explains_a_recent_miss_by_its_key(self):
        self.stored(chat(temperature=0.7), AUTH)
        res = self.s.post(CHAT, chat(temperature=0.2), AUTH)
        self.assertEqual(res.cache_status, "MISS")
        key = res.header("x-llmcache-key")
        ex = self.s.get("/cache/explain?key=" + urllib.parse.quote(key, safe=""))
        self.assertEqual(ex.status, 200, ex)
        # The miss's own answer, stored since, is not its nearest request.
        self.assertEqual(ex.json()["explain"]["differences"], ["temperature: 0.7 -> 0.2"])
        self.assertEqual(ex.json()["cache_key"], key)
        self.assertEqual(self.s.get("/cache/explain?key=gpt-4o-mini%3A0000").status, 404)
        self.assertEqual(self.s.get("/cache/explain").status, 400)

    def test_patterns_list_the_field_that_breaks_near_hits_with_its_share_and_cost(self):
        def dated(day):
            return chat(messages=[{"role": "system", "content": f"Today is 2026-05-{day:02d}."},
                                  {"role": "user", "content": "What is on today?"}])
        self.stored(dated(1), AUTH)  # explained in the background: no candidate yet
        self.assertEqual(self.s.post(CHAT, dated(2), AUTH).cache_status, "MISS")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            near = self.s.get("/cache/patterns").json()["near_misses"]
            if near["explained"] >= 2:
                break
            time.sleep(0.05)
        self.assertEqual(near["explained"], 2, near)
        self.assertEqual(len(near["fields"]), 1, near)
        row = near["fields"][0]
        self.assertEqual((row["model"], row["field"], row["kind"], row["misses"]),
                         ("gpt-4o-mini", "messages[0].content", "digits", 1))
        self.assertEqual(row["share"], 0.5)
        self.assertGreater(row["cost_usd"], 0)

    def test_the_cli_explains_a_request_file_against_a_cache_directory(self):
        self.stored(chat(temperature=0.7), AUTH)
        self.s.stop_gateway()
        f = self.s.root / "req.json"
        f.write_text(json.dumps(chat(temperature=0.2)))
        tenant = self.s.scope_of(AUTH["Authorization"])
        code, out, err = run_cli(["explain", str(f), "--cache-dir", str(self.s.cache_dir),
                                  "--tenant", tenant])
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["differences"], ["temperature: 0.7 -> 0.2"])
        # Another tenant's entries are not candidates.
        code, out, err = run_cli(["explain", str(f), "--cache-dir", str(self.s.cache_dir),
                                  "--tenant", "someone-else"])
        self.assertEqual(code, 0, err)
        self.assertIsNone(json.loads(out)["nearest"])
        code, _, err = run_cli(["explain", str(f)])
        self.assertEqual(code, 2, err)

    def test_another_tenants_requests_are_never_compared(self):
        self.stored(chat(temperature=0.7), AUTH)
        other = {"Authorization": "Bearer sk-other-tenant", "x-llmcache-explain": "1"}
        res = self.s.post(CHAT, chat(temperature=0.2), other)
        self.assertEqual(res.header("x-llmcache-miss-reason"),
                         "no stored request of this tenant and endpoint")


if __name__ == "__main__":
    unittest.main()
