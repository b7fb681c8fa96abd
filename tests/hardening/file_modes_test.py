"""File modes (issue 15, item 9): the index database holds prompt previews (and every entry's
model, tags and tenant), so index.sqlite and its -wal and -shm files are the gateway user's
alone (0600) whatever the umask, and a file left readable by an older build is fixed when the
gateway opens it.
"""
import os
import stat
import unittest

from common import CHAT, HardeningTestCase, chat


class IndexFileModeTest(HardeningTestCase):
    START_GATEWAY = False

    def setUp(self):
        # The common umask (files 0644 by default): the gateway must not rely on a stricter one.
        old = os.umask(0o022)
        self.addCleanup(os.umask, old)
        super().setUp()

    def index_files(self):
        return sorted(self.s.cache_dir.glob("index.sqlite*"))

    def modes(self):
        return {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in self.index_files()}

    def drive(self, label):
        for i in range(3):
            self.assertEqual(self.s.post(CHAT, chat(f"{label} {i}")).status, 200)
        self.s.wait_stored(3)

    def test_the_index_and_its_wal_files_are_0600_while_the_gateway_runs_and_after(self):
        self.s.start_gateway()
        self.drive("private prompt")
        names = {f.name for f in self.index_files()}
        self.assertTrue({"index.sqlite", "index.sqlite-wal", "index.sqlite-shm"} <= names, names)
        self.assertEqual(set(self.modes().values()), {"0o600"}, self.modes())
        self.s.stop_gateway()
        self.assertIn("index.sqlite", {f.name for f in self.index_files()})
        self.assertEqual(set(self.modes().values()), {"0o600"}, self.modes())

    def test_an_index_left_world_readable_is_made_0600_at_start(self):
        self.s.start_gateway()
        self.drive("before")
        self.s.stop_gateway()
        for f in self.index_files():
            os.chmod(f, 0o644)
        self.s.start_gateway()
        self.assertEqual(self.s.post(CHAT, chat("before 0")).cache_status, "HIT")
        self.assertEqual(set(self.modes().values()), {"0o600"}, self.modes())


if __name__ == "__main__":
    unittest.main()
