#pragma once
// Logging: spdlog to stderr ("llmcache: [warning] ..."), and LogLimiter for failures that can
// repeat at request rate (a dead S3, a full disk): one line per call site per interval, the
// next line saying how many were suppressed, so a failing tier cannot flood the log or slow the
// threads that report it. Never log a credential, a request body or an answer.
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace llmcache {

// Sets spdlog's default logger: stderr, "llmcache: [level] message". Idempotent; main calls it.
void setUpLogging();

class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::milliseconds interval = std::chrono::seconds(10))
      : interval_(interval.count()) {}
  // True when a line may be logged now; `suppressed` is then how many were refused since the
  // last one. Thread-safe and lock-free.
  bool allow(uint64_t& suppressed);

 private:
  const int64_t interval_;  // milliseconds
  std::atomic<int64_t> next_{0};
  std::atomic<uint64_t> suppressed_{0};
};

// Warns through `limiter`: "<message> (N similar lines suppressed)" when some were.
template <class... Args>
void warnLimited(LogLimiter& limiter, spdlog::format_string_t<Args...> fmt, Args&&... args) {
  uint64_t suppressed = 0;
  if (!limiter.allow(suppressed)) return;
  if (suppressed == 0) {
    spdlog::warn(fmt, std::forward<Args>(args)...);
  } else {
    spdlog::warn("{} ({} similar lines suppressed)", fmt::format(fmt, std::forward<Args>(args)...),
                 suppressed);
  }
}

}  // namespace llmcache
