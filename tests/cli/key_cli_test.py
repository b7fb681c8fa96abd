"""`llmcache key` driven as a user would drive it: against the key spec v1 vectors the project
carries (tests/keyspec/vectors.jsonl), and against the normative cache_key.py when the key spec
directory (../shared/keyspec beside the repository, or LLMCACHE_KEYSPEC_DIR) is present."""
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

SRC = pathlib.Path(os.environ.get("LLMCACHE_SOURCE_DIR") or pathlib.Path(__file__).resolve().parents[2])
BIN = os.environ.get("LLMCACHE_BIN", str(SRC / "build" / "llmcache"))
# LLMCACHE_KEYSPEC_DIR names a key spec directory (vectors.jsonl, cache_key.py) and overrides both.
_OVERRIDE = os.environ.get("LLMCACHE_KEYSPEC_DIR")
KEYSPEC = pathlib.Path(_OVERRIDE) if _OVERRIDE else SRC.parent / "shared" / "keyspec"
VECTORS = KEYSPEC / "vectors.jsonl" if _OVERRIDE else SRC / "tests" / "keyspec" / "vectors.jsonl"
HAVE_REFERENCE = (KEYSPEC / "cache_key.py").is_file()


def run(args, stdin: bytes):
    p = subprocess.run([BIN, *args], input=stdin, capture_output=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def reference(args, stdin: bytes):
    p = subprocess.run([sys.executable, str(KEYSPEC / "cache_key.py"), *args], input=stdin,
                       capture_output=True, timeout=60)
    return p.returncode, p.stdout


class KeyCli(unittest.TestCase):
    def test_jsonl_matches_every_vector_row_in_order(self):
        lines = VECTORS.read_bytes()
        rc, out, err = run(["key", "--jsonl"], lines)
        self.assertEqual(rc, 0, err)
        rows = [json.loads(l) for l in lines.splitlines() if l.strip()]
        results = [json.loads(l) for l in out.splitlines()]
        self.assertEqual(len(results), len(rows))
        for i, (row, res) in enumerate(zip(rows, results), 1):
            if "error" in row:
                self.assertIn("error", res, f"line {i} must be rejected")
                continue
            for field in ("canonical", "request_hash", "cache_key"):
                self.assertEqual(res.get(field), row[field], f"line {i}: {field}")

    @unittest.skipUnless(HAVE_REFERENCE, f"no key spec reference: {KEYSPEC / 'cache_key.py'} is absent")
    def test_single_request_output_is_byte_identical_to_the_reference(self):
        rows = [json.loads(l) for l in VECTORS.read_text(encoding="utf-8").split("\n")[:40]]
        for row in rows:
            args = ["--endpoint", row["endpoint"], "--normalize", row["normalize"]]
            if row["scope"]:
                args += ["--scope", row["scope"]]
            if row["namespace"]:
                args += ["--namespace", row["namespace"]]
            body = row["request"].encode()
            ref_rc, ref_out = reference(args, body)
            rc, out, _ = run(["key", *args], body)
            self.assertEqual(rc, ref_rc, row["request"])
            if ref_rc == 0:
                self.assertEqual(out, ref_out, row["request"])

    def test_bad_input_is_a_clear_error_with_exit_code_2(self):
        cases = {
            b"{not json": "invalid JSON",
            b"": "invalid JSON",
            b"[1, 2]": "must be a JSON object",
            b'{"model": "m", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}": "nesting",
            b'{"model": "caf\xe9"}': "invalid JSON",  # Latin-1, not UTF-8
            b'{"model": "m", "temperature": NaN}': "invalid JSON",
            b'{"model": "m", "top_p": 1e999}': "too large",
        }
        for body, message in cases.items():
            rc, out, _ = run(["key"], body)
            self.assertEqual(rc, 2, body[:40])
            res = json.loads(out)
            self.assertIn(message, res["error"], body[:40])

    def test_jsonl_bad_line_gives_an_error_line_in_place_and_goes_on(self):
        good = json.dumps({"endpoint": "openai.chat", "normalize": "seed", "scope": None,
                           "namespace": None, "request": '{"model": "gpt-4o", "messages": []}'})
        stdin = "\n".join([good, "{broken", json.dumps({"request": 5}), good]).encode()
        rc, out, _ = run(["key", "--jsonl"], stdin)
        self.assertEqual(rc, 0)
        results = [json.loads(l) for l in out.splitlines()]
        self.assertEqual(len(results), 4)
        self.assertIn("cache_key", results[0])
        self.assertIn("error", results[1])
        self.assertIn("error", results[2])
        self.assertEqual(results[3], results[0])

    def test_jsonl_on_several_threads_writes_the_same_lines_in_the_same_order(self):
        # Enough lines for many 256 KB blocks, bad lines and odd shapes among them, a line much
        # longer than a block, and no final newline; from a file (mapped) and from a pipe.
        rows = VECTORS.read_bytes().splitlines()
        big = json.dumps({"request": json.dumps({"model": "m", "messages": [
            {"role": "user", "content": "x" * 700_000}]}), "extra": [1, {"a": None}]}).encode()
        lines = []
        for i in range(6):
            lines += rows
            lines += [b"{broken", b'{"request": 5}', b"", b"[1]", big if i == 2 else b"{}"]
        stdin = b"\n".join(lines)
        rc, want, err = run(["key", "--jsonl", "--threads", "1"], stdin)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(want.splitlines()), sum(1 for l in lines if l.strip()))
        for threads in ("2", "3", "0"):
            rc, out, err = run(["key", "--jsonl", "--threads", threads], stdin)
            self.assertEqual(rc, 0, err)
            self.assertEqual(out, want, f"--threads {threads} from a pipe")
        with tempfile.TemporaryFile() as f:
            f.write(stdin)
            f.seek(0)
            p = subprocess.run([BIN, "key", "--jsonl", "--threads", "2"], stdin=f,
                               capture_output=True, timeout=60)
        self.assertEqual(p.stdout, want, "--threads 2 from a file")
        # Mapped from the offset stdin is at, not from the file's start.
        with tempfile.TemporaryFile() as f:
            f.write(b'{"not": "read"}\n' + stdin)
            f.seek(len(b'{"not": "read"}\n'))
            p = subprocess.run([BIN, "key", "--jsonl", "--threads", "2"], stdin=f,
                               capture_output=True, timeout=60)
        self.assertEqual(p.stdout, want, "--threads 2 from a file read from an offset")

    def test_unknown_endpoint_is_refused_by_the_cli(self):
        rc, _, err = run(["key", "--endpoint", "openai.images"], b"{}")
        self.assertNotEqual(rc, 0)
        self.assertIn(b"endpoint", err)


if __name__ == "__main__":
    unittest.main()
