"""Encryption at rest (CACHE_ENCRYPTION): `llmcache serve` in front of `llmcache mock-upstream`.

With encryption on, every entry the disk tier writes is sealed with AES-256-GCM under
CACHE_ENCRYPTION_KEY (or the key in CACHE_ENCRYPTION_KEY_FILE): no prompt or answer text may
appear in any file under the cache dir, a restart with the same key serves disk hits, a restart
with another key turns them into misses (never a crash, never a wrong answer), and a missing or
malformed key stops the gateway at start-up with exit code 2.
"""
import base64
import unittest

from harness import Stack, run_cli

CHAT = "/v1/chat/completions"

KEY = base64.b64encode(bytes(range(100, 132))).decode()
OTHER_KEY = base64.b64encode(bytes(range(200, 232))).decode()
PROMPT = "What is the codeword of the violet-walrus-7731 expedition?"


def chat(text=PROMPT, **extra):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    body.update(extra)
    return body


def encrypted(key=KEY, **more):
    return {"CACHE_ENCRYPTION": "true", "CACHE_ENCRYPTION_KEY": key, **more}


class EncryptionTestCase(unittest.TestCase):
    def start(self, sets, start_gateway=True):
        s = Stack(sets, start_gateway=start_gateway)
        self.addCleanup(s.close)
        return s

    def assertStatus(self, res, code, cache_status=None):
        self.assertEqual(res.status, code, res)
        if cache_status is not None:
            self.assertEqual(res.cache_status, cache_status, res)

    def assertNoPlaintextUnder(self, s, needles):
        files = [p for p in s.cache_dir.rglob("*") if p.is_file()]
        self.assertTrue(any(p.suffix == ".entry" for p in files), files)
        for p in files:
            data = p.read_bytes()
            for needle in needles:
                self.assertNotIn(needle.encode(), data, f"{needle!r} found in {p}")


class EncryptedGatewayTest(EncryptionTestCase):
    def test_a_miss_then_a_hit_then_a_disk_hit_after_a_restart_with_no_plaintext_on_disk(self):
        s = self.start(encrypted())
        first = s.post(CHAT, chat())
        self.assertStatus(first, 200, "MISS")
        answer = first.json()["choices"][0]["message"]["content"]
        self.assertIn("Mock answer #1", answer)
        second = s.post(CHAT, chat())
        self.assertStatus(second, 200, "HIT")
        self.assertEqual(second.body, first.body)
        streamed = s.post(CHAT, chat("Stream the orange-heron-5519 report", stream=True))
        self.assertStatus(streamed, 200, "MISS")

        self.assertEqual(s.restart_gateway(), 0)
        third = s.post(CHAT, chat())
        self.assertStatus(third, 200, "HIT")
        self.assertEqual(third.header("x-llmcache-layer"), "disk")
        self.assertEqual(third.body, first.body)
        replay = s.post(CHAT, chat("Stream the orange-heron-5519 report", stream=True))
        self.assertStatus(replay, 200, "HIT")
        self.assertEqual(s.upstream_calls(), 2)

        self.assertEqual(s.stop_gateway(), 0)
        self.assertNoPlaintextUnder(s, ["violet-walrus-7731", "orange-heron-5519", "Mock answer", answer])

    def test_a_key_file_works_like_the_key(self):
        s = self.start(None, start_gateway=False)
        key_file = s.root / "cache.key"
        key_file.write_text(KEY + "\n")
        s.start_gateway({"CACHE_ENCRYPTION": "true", "CACHE_ENCRYPTION_KEY_FILE": str(key_file)})
        self.assertStatus(s.post(CHAT, chat()), 200, "MISS")
        self.assertEqual(s.stop_gateway(), 0)
        # The same key given inline reads what the key file's key wrote.
        s.start_gateway(encrypted())
        res = s.post(CHAT, chat())
        self.assertStatus(res, 200, "HIT")
        self.assertEqual(res.header("x-llmcache-layer"), "disk")

    def test_a_restart_with_another_key_is_a_miss_not_a_crash_or_a_wrong_answer(self):
        s = self.start(encrypted())
        first = s.post(CHAT, chat())
        self.assertStatus(first, 200, "MISS")
        self.assertEqual(s.stop_gateway(), 0)

        s.start_gateway(encrypted(OTHER_KEY))
        second = s.post(CHAT, chat())
        self.assertStatus(second, 200, "MISS")
        self.assertIn("Mock answer #2", second.json()["choices"][0]["message"]["content"])
        # The gateway lives on and stores the fresh answer under its own key.
        third = s.post(CHAT, chat())
        self.assertStatus(third, 200, "HIT")
        self.assertEqual(third.body, second.body)
        self.assertEqual(s.stop_gateway(), 0)

        # Without encryption the sealed entries are misses too (not served, not a crash).
        s.start_gateway({})
        plain = s.post(CHAT, chat())
        self.assertStatus(plain, 200, "MISS")
        self.assertIn("Mock answer #3", plain.body.decode())
        self.assertEqual(s.upstream_calls(), 3)

    def test_a_damaged_index_is_rebuilt_from_the_sealed_disk_entries(self):
        s = self.start(encrypted())
        self.assertStatus(s.post(CHAT, chat()), 200, "MISS")
        self.assertStatus(s.post(CHAT, chat("A second question")), 200, "MISS")
        self.assertEqual(s.stop_gateway(), 0)
        for p in s.cache_dir.glob("index.sqlite*"):
            p.write_bytes(b"this is not a SQLite database" * 100)
        s.start_gateway()
        res = s.post(CHAT, chat())
        self.assertStatus(res, 200, "HIT")
        self.assertEqual(s.stop_gateway(), 0)
        self.assertIn(b"index rebuilt: 2 entries", s.gateway_output())

    def test_print_config_masks_the_key_and_shows_the_key_file(self):
        rc, out, err = run_cli(["serve", "--print-config", "--set", "CACHE_ENCRYPTION=true",
                                "--set", f"CACHE_ENCRYPTION_KEY={KEY}"])
        self.assertEqual(rc, 0, err)
        text = out.decode()
        self.assertNotIn(KEY, text)
        self.assertIn("CACHE_ENCRYPTION_KEY=****", text)
        self.assertIn("CACHE_ENCRYPTION_KEY_FILE=", text)


class BadKeyTest(EncryptionTestCase):
    def serve(self, *sets):
        args = ["serve", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9/v1",
                "--cache-dir", "/nonexistent/llmcache-never-created"]
        for kv in sets:
            args += ["--set", kv]
        return run_cli(args, timeout=10)

    def assertRefused(self, setting, *sets, secret=None):
        rc, out, err = self.serve("CACHE_ENCRYPTION=true", *sets)
        self.assertEqual(rc, 2, (out, err))
        self.assertIn(setting.encode(), err)
        if secret:
            self.assertNotIn(secret.encode(), out + err)

    def test_encryption_without_a_key_exits_2_naming_the_setting(self):
        self.assertRefused("CACHE_ENCRYPTION_KEY")

    def test_a_key_that_is_not_base64_exits_2_naming_the_setting(self):
        bad = "not*base64*at*all*but*forty*four*characters="
        self.assertEqual(len(bad), 44)
        self.assertRefused("CACHE_ENCRYPTION_KEY", f"CACHE_ENCRYPTION_KEY={bad}", secret=bad)

    def test_a_key_of_the_wrong_length_exits_2_naming_the_setting(self):
        for n in (16, 31, 33, 64):
            key = base64.b64encode(bytes(range(n))).decode()
            with self.subTest(bytes=n):
                self.assertRefused("CACHE_ENCRYPTION_KEY", f"CACHE_ENCRYPTION_KEY={key}", secret=key)

    def test_an_unreadable_key_file_exits_2_naming_the_setting(self):
        self.assertRefused("CACHE_ENCRYPTION_KEY_FILE",
                           "CACHE_ENCRYPTION_KEY_FILE=/nonexistent/llmcache.key")

    def test_a_key_and_a_key_file_together_exit_2(self):
        self.assertRefused("CACHE_ENCRYPTION_KEY_FILE", f"CACHE_ENCRYPTION_KEY={KEY}",
                           "CACHE_ENCRYPTION_KEY_FILE=/etc/hostname")


if __name__ == "__main__":
    unittest.main()
