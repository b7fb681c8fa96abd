#pragma once
// Test helper: where shared/keyspec lives, and running one vector row through the C++ key.
#include <cstdlib>
#include <filesystem>
#include <string>

namespace llmcache::key::testing {

// LLMCACHE_KEYSPEC_DIR, else ../shared/keyspec beside the source tree (as the repo is laid out
// for developers and CI).
inline std::filesystem::path keyspecDir() {
  if (const char* d = std::getenv("LLMCACHE_KEYSPEC_DIR")) return d;
  const char* src = std::getenv("LLMCACHE_SOURCE_DIR");
  std::filesystem::path root = src ? src : ".";
  return root / ".." / "shared" / "keyspec";
}

}  // namespace llmcache::key::testing
