#pragma once
// Test helper: where the key spec's test vectors and (optionally) its Python reference live.
//   vectors:   the project's copy, tests/keyspec/vectors.jsonl (always there)
//   reference: cache_key.py and make_vectors.py in ../shared/keyspec beside the source tree, when
//              present (an extra source of fresh random vectors; tests that need it skip without)
// LLMCACHE_KEYSPEC_DIR overrides both (a key spec directory holding all three files).
#include <cstdlib>
#include <filesystem>
#include <string>

namespace llmcache::key::testing {

// The repository root: LLMCACHE_SOURCE_DIR (CTest sets it), else the working directory.
inline std::filesystem::path sourceDir() {
  const char* src = std::getenv("LLMCACHE_SOURCE_DIR");
  return src && *src ? std::filesystem::path(src) : std::filesystem::path(".");
}

inline const char* keyspecDirOverride() {
  const char* d = std::getenv("LLMCACHE_KEYSPEC_DIR");
  return d && *d ? d : nullptr;
}

// The key spec directory with the Python reference: LLMCACHE_KEYSPEC_DIR, else ../shared/keyspec
// beside the source tree (as the repo is laid out for developers). May not exist.
inline std::filesystem::path keyspecDir() {
  if (const char* d = keyspecDirOverride()) return d;
  return sourceDir() / ".." / "shared" / "keyspec";
}

// True when keyspecDir() holds the generator (make_vectors.py, which imports cache_key.py).
inline bool hasReference() {
  std::error_code ec;
  return std::filesystem::is_regular_file(keyspecDir() / "make_vectors.py", ec) &&
         std::filesystem::is_regular_file(keyspecDir() / "cache_key.py", ec);
}

// The vectors every key test checks: LLMCACHE_KEYSPEC_DIR/vectors.jsonl when that variable is
// set, else the project's copy tests/keyspec/vectors.jsonl.
inline std::filesystem::path vectorsPath() {
  if (const char* d = keyspecDirOverride()) return std::filesystem::path(d) / "vectors.jsonl";
  return sourceDir() / "tests" / "keyspec" / "vectors.jsonl";
}

}  // namespace llmcache::key::testing
