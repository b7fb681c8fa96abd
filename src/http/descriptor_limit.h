#pragma once
// The process's file descriptor limit (RLIMIT_NOFILE) and the connection limit that fits under
// it. Every client connection holds a descriptor, and so do the upstream connections, disk
// files, SQLite and S3; a connection limit above the descriptor limit means accept() fails with
// EMFILE long before the server would answer "too many connections".
#include <cstdint>

namespace llmcache::http {

// The connection limit when none is configured.
inline constexpr uint64_t kDefaultMaxConnections = 10000;

// Raises the soft RLIMIT_NOFILE to the hard limit (capped by the kernel's fs.nr_open) where the
// kernel allows it. Returns the soft limit in effect afterwards (RLIM_INFINITY as UINT64_MAX).
uint64_t raiseDescriptorLimit();

// The soft RLIMIT_NOFILE now.
uint64_t descriptorLimit();

struct ConnectionLimit {
  uint64_t connections = 0;  // the limit to use
  uint64_t ceiling = 0;      // the most connections `descriptors` leave room for
  bool clamped = false;      // an explicit setting was above the ceiling
};

// The connection limit for `descriptors` (the soft RLIMIT_NOFILE). Descriptors are kept in
// reserve for everything that is not a client connection: a quarter of them, at least 256, but
// never more than half. `requested` 0 (not configured): min(10000, ceiling); an explicit value
// above the ceiling is clamped to it (ceiling is at least 1).
ConnectionLimit connectionLimit(uint64_t requested, uint64_t descriptors);

}  // namespace llmcache::http
