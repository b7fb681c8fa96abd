#pragma once
// Wall-clock time behind an interface so that tests can move time by hand instead of sleeping.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace llmcache {

using TimePoint = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
  static const Clock& system();
};

// A clock that only moves when told to. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(TimePoint start = TimePoint{std::chrono::seconds{1767225600}})
      : ms_(std::chrono::duration_cast<std::chrono::milliseconds>(start.time_since_epoch())
                .count()) {}
  TimePoint now() const override { return TimePoint{std::chrono::milliseconds{ms_.load()}}; }
  void advance(std::chrono::milliseconds d) { ms_ += d.count(); }

 private:
  std::atomic<int64_t> ms_;
};

// ISO 8601 UTC with milliseconds: 2026-11-26T12:37:17.123Z (the entry's time format).
std::string formatIso8601(TimePoint t);
// Parses what formatIso8601 writes (and the same without milliseconds). False on anything else.
bool parseIso8601(std::string_view text, TimePoint& out);

int64_t toUnixMillis(TimePoint t);
TimePoint fromUnixMillis(int64_t ms);

}  // namespace llmcache
