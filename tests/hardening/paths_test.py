"""Paths (issue 7, item 5): model names, namespaces and tags that look like paths, carry NUL
bytes, are 10 KB long or are not ASCII are answered, round-trip through the disk tier, and every
file they cause stays inside the cache directory.
"""
import json
import os
import pathlib
import re
import time
import unittest
import uuid

from common import (CHAT, EMBEDDINGS, MESSAGES, HardeningTestCase, chat, claude)

MARK = "escape" + uuid.uuid4().hex[:8]

HOSTILE_MODELS = [
    f"../../{MARK}/etc/passwd",
    f"../../../../../../tmp/{MARK}",
    f"/tmp/{MARK}",
    f"/etc/{MARK}",
    "..",
    ".",
    "",
    f"a/../../{MARK}",
    f"..\\..\\{MARK}\\windows",
    f"C:\\{MARK}",
    f"nul\u0000byte/../{MARK}",
    f"%2e%2e%2f{MARK}",
    f"{MARK}\n../x",
    "~/" + MARK,
    "m" * 10240,
    "../" * 3000 + MARK,
    "模型/../" + MARK + "/名前",
    "émoji-🤖/" + MARK,
    "\u202e" + MARK,  # right-to-left override
    "gpt-4o-mini/" + "x" * 300,
]


class PathTest(HardeningTestCase):
    def snapshot(self, directory: pathlib.Path):
        """Names under a directory (not recursing into big trees): what is there now."""
        try:
            return set(os.listdir(directory))
        except OSError:
            return set()

    def all_files_under(self, root: pathlib.Path):
        out = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            for name in dirnames + filenames:
                out.append(pathlib.Path(dirpath) / name)
        return out

    def test_path_like_and_hostile_model_names_stay_inside_the_cache_directory(self):
        cache = self.s.cache_dir.resolve()
        watched = [pathlib.Path("/tmp"), pathlib.Path("/etc"), self.s.root, self.s.root.parent,
                   pathlib.Path("/")]
        before = {d: self.snapshot(d) for d in watched}
        sent = []
        for model in HOSTILE_MODELS:
            for path, body, headers in (
                    (CHAT, chat("path test", model=model), {}),
                    (CHAT, chat("path test ns"), {"x-llmcache-namespace": model[:4000],
                                                  "x-llmcache-tags": "a"}),
                    (MESSAGES, claude("path test", model=model), {}),
                    (EMBEDDINGS, {"model": model, "input": "path test"}, {}),
                    (CHAT, chat("path test", model=model, stream=True), {})):
                if "\n" in headers.get("x-llmcache-namespace", "") or \
                        "\u0000" in headers.get("x-llmcache-namespace", ""):
                    continue  # not a valid header value: http.client refuses to send it
                if any(ord(c) > 255 for c in headers.get("x-llmcache-namespace", "")):
                    continue
                with self.subTest(model=model[:60], path=path, headers=list(headers)):
                    res = self.s.post(path, body, headers)
                    # Answered: stored (200), or refused in the provider's shape (400).
                    self.assertIn(res.status, (200, 400), res)
                    if res.status == 400:
                        self.assertTrue(res.json().get("error"), res)
                    else:
                        sent.append((path, body, headers, res.body))
        self.assertGreater(len(sent), len(HOSTILE_MODELS) * 3)
        time.sleep(0.5)  # background disk writes
        # Every file the gateway made is under the cache dir, a regular file or a folder, and
        # its real path does not leave the cache dir.
        for p in self.all_files_under(cache):
            real = pathlib.Path(os.path.realpath(p))
            self.assertTrue(real == cache or cache in real.parents, f"{p} -> {real}")
            self.assertFalse(p.is_symlink(), p)
            self.assertLessEqual(len(p.name.encode()), 255, p)
        for f in self.s.entry_files():
            self.assertRegex(f.name, r"^[A-Za-z0-9_-]{1,200}\.entry$")
            self.assertEqual(f.parent.parent, self.s.cache_dir / "entries")
        # Nothing new in the watched folders carries the marker, and the test's root holds only
        # the cache dir and the logs.
        for d in watched:
            new = self.snapshot(d) - before[d]
            self.assertEqual([n for n in new if MARK in n], [], f"new files in {d}")
        self.assertEqual(sorted(os.listdir(self.s.root)), ["cache", "logs"])
        for hit in sorted(pathlib.Path("/").glob(f"**/*{MARK}*")) if False else []:
            self.fail(hit)  # (a full walk of / is too slow; the watched folders above suffice)
        # And every stored answer round-trips through the disk tier after a restart.
        self.assertEqual(self.s.restart_gateway(), 0)
        for path, body, headers, first in sent:
            with self.subTest(model=str(body.get("model"))[:60], path=path):
                res = self.s.post(path, body, headers)
                self.assertEqual((res.status, res.cache_status), (200, "HIT"), res)
                # disk, or memory when an earlier request of this loop had the same key
                self.assertIn(res.header("x-llmcache-layer"), ("disk", "memory"))
                self.assertEqual(res.body, first)

    def test_two_models_that_sanitize_alike_never_get_each_others_answer(self):
        a = self.s.post(CHAT, chat("same", model="a/b"))
        b = self.s.post(CHAT, chat("same", model="a_b"))
        c = self.s.post(CHAT, chat("same", model="a.b"))
        for res in (a, b, c):
            self.assertEqual((res.status, res.cache_status), (200, "MISS"), res)
        self.assertEqual(self.s.restart_gateway(), 0)
        for model, first in (("a/b", a), ("a_b", b), ("a.b", c)):
            res = self.s.post(CHAT, chat("same", model=model))
            self.assertEqual(res.status, 200)
            if res.cache_status == "HIT":
                self.assertEqual(res.body, first.body, model)
                self.assertEqual(res.json()["model"], model)


if __name__ == "__main__":
    unittest.main()
