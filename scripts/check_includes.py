#!/usr/bin/env python3
"""Keeps the module layering of src/ true: which module may include which.

A module is a folder under src/ with a CMakeLists.txt (one library each): `common`, `cache`,
`cache/s3`, ... A file belongs to the deepest module folder that holds it; an include
`"x/y/z.h"` names the deepest module folder that prefixes its path. The script reads every
`#include "..."` (and `#include <...>` that resolves under src/) in src/** and fails, naming
file, line and rule, on:

  layering   a module includes one that ALLOWED (below) does not give it. A module may always
             include itself. The tiers cache/memory, cache/disk and cache/s3 are sub-modules of
             `cache`: they use `cache` and `common` and must not include each other.
  test-only  non-test code includes a test-only header (TEST_ONLY below).
  readme     a module's README.md has no "Must not include:" sentence, or it disagrees with
             ALLOWED (see README FORM below).
  table      a module folder missing from ALLOWED, or ALLOWED naming a folder that is gone.
  stale      a KNOWN_VIOLATIONS entry that the code no longer has: delete it (the list only
             shrinks).

TESTS. Test code is a `*_test.cc` file or a test-only header. It may include everything its
module may, plus the extras in TEST_EXTRA (real tiers and test entries are the fixtures of
choice: fakes before mocks). A test-only header of another module is fine when that module is
one the test may include (admin's tests use index/test_util.h because admin may use index).

README FORM. The first sentence after "Must not include:" in src/<module>/README.md lists
modules in backticks, in one of two forms (other backticked words are ignored, so keep
explanations in the next sentence):
  Must not include: `gateway`, `main`, `mock`.            -- exactly the forbidden modules
  Must not include: any module but `cache` and `common`.  -- exactly the allowed ones
  Must not include: any other module.                     -- nothing allowed
  Must not include: no module (it may use them all).      -- nothing forbidden
`--readme-lines` prints the expected sentence for every module.

Usage: check_includes.py [--root DIR] [--self-test] [--readme-lines]
Python 3 standard library only; run by scripts/check.sh.
"""

import argparse
import os
import re
import sys
import tempfile

# module -> the modules its non-test code may include (besides itself). The source of truth;
# every src/<module>/README.md states the same in its "Must not include:" sentence. Adapted from
# ../shared/DESIGN.md "Modules": admin sits below gateway (gateway routes to it), alerts and mock
# are added, cache/redis is the fourth tier.
ALLOWED = {
    "common": set(),
    "config": {"common"},
    "key": {"common"},
    "api": {"common", "key"},
    "cache": {"common"},
    "cache/memory": {"cache", "common"},
    "cache/disk": {"cache", "common"},
    "cache/s3": {"cache", "common"},
    "cache/cassette": {"cache", "common"},
    "cache/redis": {"cache", "common"},
    "index": {"cache", "common"},
    # The trace format, synthetic traces and the offline simulator (issue 21): the simulator
    # replays through cache/eviction.h, the policies the tiers use.
    "trace": {"cache", "common"},
    "upstream": {"common"},
    "http": {"common"},
    "invalidation": {"cache", "common", "index"},
    # Metrics is a cache::TierObserver (tier failures arrive as TierEvents, cache/tiered_cache.h)
    # and labels them by cache::TierId.
    "analytics": {"cache", "common", "index"},
    "alerts": {"common", "config"},
    # Miss-ratio curves (SHARDS): fed by the gateway, served by the admin API through a function.
    "sizing": {"common"},
    "admin": {"analytics", "common", "config", "index", "invalidation"},
    "mock": {"api", "common", "http"},
    # The semantic cache's index, partitions and shadow figures: no HTTP, no gateway.
    "semantic": {"cache", "common", "key"},
    # The orchestrator knows every module but the composition root (main), the stand-in
    # provider (mock), the tiers themselves and the index: it asks the TieredCache (policy
    # above, storage below; main builds the tiers, the index observes the cache).
    "gateway": {"admin", "analytics", "api", "cache", "common", "config", "http",
                "invalidation", "key", "semantic", "sizing", "upstream"},
    # The composition root: everything.
    "main": {"admin", "alerts", "analytics", "api", "cache", "cache/cassette", "cache/disk",
             "cache/memory", "cache/redis", "cache/s3", "common", "config", "gateway", "http", "index", "invalidation", "key",
             "mock", "semantic", "sizing", "trace", "upstream"},
}

# module -> what its tests may include beyond ALLOWED, and why.
TEST_EXTRA = {
    # Index::rebuildFrom is tested on a directory a real DiskTier wrote.
    "index": {"cache/disk"},
    # The invalidator erases through a real TieredCache of memory and disk tiers.
    "invalidation": {"cache/disk", "cache/memory"},
    # The admin API over a real invalidator (a memory-tier TieredCache) and cache/test_entry.h.
    "admin": {"cache", "cache/memory"},
    # The gateway in-process over a real TieredCache of one memory tier (a fake upstream).
    "gateway": {"cache/memory"},
    # The alert mail's hit rate is checked against Analytics::analytics() and Metrics::totals()
    # over the same events (a real index in a temp dir, index/test_util.h).
    "alerts": {"analytics", "index"},
    # The miss-ratio curves are checked against the trace module's synthetic traces and its
    # exact offline simulator.
    "sizing": {"trace"},
}

# Headers only tests may include (paths as included, relative to src/). Files named
# `*_test.cc` are test code by name.
TEST_ONLY = {
    "analytics/test_events.h",
    "api/stream_fixtures.h",
    "api/test_util.h",
    "cache/s3/s3_test_server.h",
    "cache/redis/redis_test_server.h",
    "cache/test_entry.h",
    "cache/tier_conformance.h",
    "index/test_util.h",
    "key/keyspec_vectors.h",
}

# Layering breaches that exist today and are to be removed, (file, include) -> reason. The list
# only shrinks: an entry the code no longer has fails the check until it is deleted here. Do not
# add to it; fix the include (or, if the dependency is legitimate, ALLOWED and the README).
KNOWN_VIOLATIONS = {
    # Cross-gateway invalidation broadcast is gateway-level wiring of one particular tier's
    # client; invalidation is meant to work through cache::TieredCache only.
    ("src/invalidation/s3_broadcast.h", "cache/s3/s3_client.h"):
        "the S3 broadcast binds invalidation to the S3 tier's client; to move above it",
}

SOURCE_SUFFIXES = (".cc", ".h", ".cpp", ".hpp", ".inc", ".cc.in", ".h.in")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
MUST_NOT_RE = re.compile(r"Must not include:(.*?)(?:\.(?:\s|$)|\n\s*\n|$)", re.S)
BACKTICK_RE = re.compile(r"`([^`]+)`")


def find_modules(src):
    """Folders under src/ with a CMakeLists.txt, as 'a' or 'a/b'."""
    mods = set()
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "node_modules"]
        if dirpath != src and "CMakeLists.txt" in filenames:
            mods.add(os.path.relpath(dirpath, src).replace(os.sep, "/"))
    return mods


def module_of(path, modules):
    """The deepest module that prefixes `path` (relative to src/, '/'-separated), or None."""
    parts = path.split("/")[:-1]
    for n in range(len(parts), 0, -1):
        cand = "/".join(parts[:n])
        if cand in modules:
            return cand
    return None


def source_files(src, extra):
    files = {}
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "node_modules"]
        for f in filenames:
            if f.endswith(SOURCE_SUFFIXES):
                full = os.path.join(dirpath, f)
                rel = os.path.relpath(full, src).replace(os.sep, "/")
                try:
                    with open(full, encoding="utf-8", errors="replace") as fh:
                        files[rel] = fh.read()
                except OSError:
                    continue  # removed while we walked (someone else is editing the tree)
    files.update(extra)
    return files


def resolve(src, rel_file, kind, inc, files):
    """The include's path relative to src/, or None when it is not one of ours."""
    candidates = [inc]
    if kind == '"':
        candidates.append(os.path.normpath(os.path.join(os.path.dirname(rel_file), inc)))
    for c in candidates:
        c = c.replace(os.sep, "/")
        if c.startswith("../"):
            continue
        if c in files or os.path.isfile(os.path.join(src, c)):
            return c
    return None


def expected_sentence(mod, allowed, modules):
    forbidden = sorted(modules - allowed[mod] - {mod})
    ok = sorted(allowed[mod])
    if not ok:
        return "Must not include: any other module."
    if not forbidden:
        return "Must not include: no module (it may use them all)."
    if len(forbidden) <= len(ok) + 1:
        return "Must not include: " + ", ".join(f"`{m}`" for m in forbidden) + "."
    names = [f"`{m}`" for m in ok]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"Must not include: any module but {listed}."


def check_readme(src, mod, allowed, modules, files_text=None):
    path = os.path.join(src, mod, "README.md")
    rel = f"src/{mod}/README.md"
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return [f"{rel}: [readme] missing (every module has a README stating what it must not "
                f"include)"]
    m = MUST_NOT_RE.search(text)
    if not m:
        return [f"{rel}: [readme] no 'Must not include:' sentence; expected: "
                f"{expected_sentence(mod, allowed, modules)}"]
    sentence = m.group(1)
    named = {b for b in BACKTICK_RE.findall(sentence) if b in modules}
    complement = re.search(r"\bany\b.*\b(but|other)\b", sentence.split("`")[0]) is not None
    if complement:
        stated_forbidden = modules - named - {mod}
    else:
        stated_forbidden = named
    want = modules - allowed[mod] - {mod}
    if stated_forbidden == want:
        return []
    errs = []
    extra = sorted(stated_forbidden - want)
    missing = sorted(want - stated_forbidden)
    detail = []
    if extra:
        detail.append("forbids " + ", ".join(extra) + " which the table allows")
    if missing:
        detail.append("does not forbid " + ", ".join(missing))
    errs.append(f"{rel}: [readme] 'Must not include:' disagrees with scripts/check_includes.py "
                f"({'; '.join(detail)}); expected: {expected_sentence(mod, allowed, modules)}")
    return errs


def check(root, allowed=None, test_extra=None, test_only=None, known=None, extra_files=None):
    """Returns (errors, notes). Errors fail the check; notes list the known violations seen."""
    allowed = ALLOWED if allowed is None else allowed
    test_extra = TEST_EXTRA if test_extra is None else test_extra
    test_only = TEST_ONLY if test_only is None else test_only
    known = KNOWN_VIOLATIONS if known is None else known
    src = os.path.join(root, "src")
    errors, notes = [], []
    modules = find_modules(src)
    for m in sorted(modules - set(allowed)):
        errors.append(f"src/{m}/: [table] module not in ALLOWED of scripts/check_includes.py")
    for m in sorted(set(allowed) - modules):
        errors.append(f"scripts/check_includes.py: [table] ALLOWED names '{m}', which is not a "
                      f"module folder (src/{m}/CMakeLists.txt)")
    for m in sorted(set(allowed) & modules):
        for dep in sorted(allowed[m] | test_extra.get(m, set())):
            if dep not in allowed:
                errors.append(f"scripts/check_includes.py: [table] '{m}' may use unknown '{dep}'")
    modules &= set(allowed)

    seen_known = set()
    files = source_files(src, extra_files or {})
    for rel in sorted(files):
        mod = module_of(rel, modules)
        if mod is None:
            continue
        test = rel.endswith("_test.cc") or rel in test_only
        may = allowed[mod] | {mod} | (test_extra.get(mod, set()) if test else set())
        for lineno, line in enumerate(files[rel].splitlines(), 1):
            m = INCLUDE_RE.match(line)
            if not m:
                continue
            kind, inc = m.group(1), m.group(2).strip()
            target = resolve(src, rel, kind, inc, files)
            if target is None:
                continue
            tmod = module_of(target, modules)
            if tmod is None:
                continue
            where = f"src/{rel}:{lineno}"
            if target in test_only and not test:
                errors.append(f'{where}: [test-only] #include "{inc}": a test-only header in '
                              f"non-test code ({mod})")
            if tmod not in may:
                key = (f"src/{rel}", target)
                if key in known:
                    seen_known.add(key)
                    notes.append(f'{where}: known violation, #include "{inc}" ({mod} -> {tmod}): '
                                 f"{known[key]}")
                    continue
                kind_txt = "its tests may not" if test else "it may not"
                why = (f"{mod} may use only: {', '.join(sorted(may - {mod})) or 'nothing'}")
                errors.append(f'{where}: [layering] #include "{inc}": {mod} -> {tmod}, {kind_txt} '
                              f"include {tmod} ({why}; scripts/check_includes.py ALLOWED)")
    for key in sorted(set(known) - seen_known):
        errors.append(f'{key[0]}: [stale] KNOWN_VIOLATIONS lists #include "{key[1]}", which is '
                      f"gone: delete the entry from scripts/check_includes.py")
    for m in sorted(modules):
        errors.extend(check_readme(src, m, allowed, modules))
    return errors, notes


def self_test():
    """Feeds check() small fake trees; each case must pass or fail as stated."""
    failures = []

    def tree(d, files):
        for path, text in files.items():
            full = os.path.join(d, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as fh:
                fh.write(text)

    allowed = {"base": set(), "store": {"base"}, "store/a": {"store", "base"},
               "store/b": {"store", "base"}, "top": {"base", "store"}}
    readmes = {
        "src/base/README.md": "# base\n\nMust not include: any other module.\n",
        "src/store/README.md": "# store\n\nMust not include: any module but `base`. Prose.\n",
        "src/store/a/README.md": "Must not include: `store/b`, `top`.\n",
        "src/store/b/README.md": "Must not include: `store/a`, `top`. But `base` is fine.\n",
        "src/top/README.md": "Must not include: `store/a`,\n`store/b`.\n",
    }
    clean = dict(readmes)
    for m in allowed:
        clean[f"src/{m}/CMakeLists.txt"] = ""
    clean.update({
        "src/base/base.h": "#pragma once\n",
        "src/base/base_test_util.h": "#pragma once\n",
        "src/store/store.h": '#include "base/base.h"\n#include <vector>\n#include "zlib.h"\n',
        "src/store/a/a.h": '#include "store/store.h"\n#include "base/base.h"\n',
        "src/store/a/a_test.cc": '#include "store/a/a.h"\n#include "base/base_test_util.h"\n',
        "src/top/top.cc": '#include "top/top.h"\n#include "store/store.h"\n',
        "src/top/top.h": "#pragma once\n",
        "src/top/top_test.cc": '#include "store/a/a.h"\n',
    })
    test_only = {"base/base_test_util.h"}
    test_extra = {"top": {"store/a"}}

    cases = 0

    def case(name, files, want, known=None):
        nonlocal cases
        cases += 1
        with tempfile.TemporaryDirectory(prefix="check_includes_") as d:
            tree(d, files)
            errs, _ = check(d, allowed, test_extra, test_only, known or {})
        hit = [e for e in errs if want and want in e]
        if want is None and errs:
            failures.append(f"{name}: expected no errors, got {errs}")
        elif want is not None and not hit:
            failures.append(f"{name}: expected an error containing {want!r}, got {errs}")

    case("clean tree passes", clean, None)
    case("forbidden include fails", {**clean, "src/base/bad.cc": '#include "top/top.h"\n'},
         'src/base/bad.cc:1: [layering] #include "top/top.h": base -> top')
    case("angle-bracket include of ours is checked",
         {**clean, "src/base/bad.cc": "#include <store/store.h>\n"}, "[layering]")
    case("sibling tiers must not include each other",
         {**clean, "src/store/b/b.cc": '#include "store/a/a.h"\n'}, "store/b -> store/a")
    case("test extra is not for non-test code",
         {**clean, "src/top/top2.cc": '#include "store/a/a.h"\n'}, "top -> store/a")
    case("test-only header in non-test code fails",
         {**clean, "src/store/s.cc": '#include "base/base_test_util.h"\n'}, "[test-only]")
    case("relative include is resolved",
         {**clean, "src/base/rel.cc": '#include "../top/top.h"\n'}, "[layering]")
    case("README that disagrees fails",
         {**clean, "src/top/README.md": "Must not include: `store/a`.\n"}, "does not forbid store/b")
    case("README without the sentence fails", {**clean, "src/top/README.md": "# top\n"},
         "no 'Must not include:'")
    case("module missing from the table fails", {**clean, "src/new/CMakeLists.txt": ""},
         "src/new/: [table]")
    bad = {**clean, "src/base/bad.cc": '#include "top/top.h"\n'}
    case("known violation passes", bad, None,
         known={("src/base/bad.cc", "top/top.h"): "to be removed"})
    case("stale known violation fails", clean, "[stale]",
         known={("src/base/bad.cc", "top/top.h"): "to be removed"})

    # The real table: a fake forbidden include added to this tree must be reported.
    cases += 1
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    errs, _ = check(root, extra_files={
        "invalidation/selftest_fake.cc": '#include "gateway/gateway.h"\n'})
    if not any("src/invalidation/selftest_fake.cc:1: [layering]" in e for e in errs):
        failures.append(f"real table: invalidation -> gateway not reported: {errs}")

    for f in failures:
        print(f"check_includes self-test FAILED: {f}", file=sys.stderr)
    if failures:
        return 1
    print(f"check_includes: self-test passed ({cases} cases)")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--self-test", action="store_true", help="check the checker on fake trees")
    ap.add_argument("--readme-lines", action="store_true",
                    help="print each module's expected 'Must not include:' sentence")
    ap.add_argument("-v", "--verbose", action="store_true", help="also list known violations")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if args.readme_lines:
        modules = find_modules(os.path.join(args.root, "src")) & set(ALLOWED)
        for m in sorted(modules):
            print(f"src/{m}/README.md: {expected_sentence(m, ALLOWED, modules)}")
        return 0
    errors, notes = check(args.root)
    if args.verbose:
        for n in notes:
            print(n)
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"check_includes: {len(errors)} problem(s); the table and the rules are in "
              f"scripts/check_includes.py", file=sys.stderr)
        return 1
    print(f"check_includes: ok ({len(notes)} known violation(s) left, -v lists them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
