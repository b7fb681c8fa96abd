#include "common/clock.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>

namespace llmcache {

namespace {
class SystemClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::system_clock::now(); }
};
}  // namespace

const Clock& Clock::system() {
  static const SystemClock clock;
  return clock;
}

int64_t toUnixMillis(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// system_clock counts nanoseconds in an int64: about +-292 years around 1970. Milliseconds from
// outside (an index row, an S3 object) beyond that are clamped to the ends instead of overflowing
// the conversion (undefined behaviour, found by fuzz_codec).
TimePoint fromUnixMillis(int64_t ms) {
  constexpr int64_t kMax =
      std::chrono::duration_cast<std::chrono::milliseconds>(TimePoint::duration::max()).count();
  constexpr int64_t kMin =
      std::chrono::duration_cast<std::chrono::milliseconds>(TimePoint::duration::min()).count() + 1;
  return TimePoint{std::chrono::milliseconds{std::clamp(ms, kMin, kMax)}};
}

std::string formatIso8601(TimePoint t) {
  const int64_t ms = toUnixMillis(t);
  int64_t secs = ms / 1000;
  int64_t rem = ms % 1000;
  if (rem < 0) {
    rem += 1000;
    secs -= 1;
  }
  const std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(rem));
  return buf;
}

bool parseIso8601(std::string_view s, TimePoint& out) {
  auto num = [&](size_t pos, size_t len, int& v) {
    if (pos + len > s.size()) return false;
    for (size_t i = pos; i < pos + len; ++i)  // digits only: from_chars alone would take "-1"
      if (s[i] < '0' || s[i] > '9') return false;
    auto r = std::from_chars(s.data() + pos, s.data() + pos + len, v);
    return r.ec == std::errc{} && r.ptr == s.data() + pos + len;
  };
  int y, mo, d, h, mi, se, ms = 0;
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
    return false;
  if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) ||
      !num(17, 2, se))
    return false;
  size_t pos = 19;
  if (s[pos] == '.') {
    if (!num(pos + 1, 3, ms)) return false;
    pos += 4;
  }
  if (pos + 1 != s.size() || s[pos] != 'Z') return false;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return false;
  // Years a TimePoint can hold (1678..2261); later ones would overflow its nanoseconds.
  if (y < 1678 || y > 2261) return false;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  const int64_t secs = static_cast<int64_t>(timegm(&tm));
  out = fromUnixMillis(secs * 1000 + ms);
  return true;
}

}  // namespace llmcache
