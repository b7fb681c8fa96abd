#include "common/clock.h"

#include <gtest/gtest.h>

#include <climits>

namespace llmcache {
namespace {

TEST(Clock, Iso8601RoundTripsWithMilliseconds) {
  const TimePoint t = fromUnixMillis(1764160637123);
  const std::string s = formatIso8601(t);
  EXPECT_EQ(s, "2025-11-26T12:37:17.123Z");
  TimePoint back;
  ASSERT_TRUE(parseIso8601(s, back));
  EXPECT_EQ(back, t);
}

TEST(Clock, Iso8601RejectsGarbage) {
  TimePoint t;
  EXPECT_FALSE(parseIso8601("2025-11-26 12:37:17Z", t));
  EXPECT_FALSE(parseIso8601("2025-13-26T12:37:17Z", t));
  EXPECT_FALSE(parseIso8601("", t));
  EXPECT_TRUE(parseIso8601("2025-11-26T12:37:17Z", t));
  // Signs inside fields and years a TimePoint cannot hold (fuzz_codec found the overflow).
  EXPECT_FALSE(parseIso8601("2025-11-26T-1:37:17Z", t));
  EXPECT_FALSE(parseIso8601("2025-11-26T12:37:17.-12Z", t));
  EXPECT_FALSE(parseIso8601("9999-11-26T12:37:17Z", t));
  EXPECT_FALSE(parseIso8601("0001-01-01T00:00:00Z", t));
  EXPECT_TRUE(parseIso8601("2261-01-01T00:00:00Z", t));
}

TEST(Clock, FakeClockMovesOnlyWhenTold) {
  FakeClock c;
  const TimePoint a = c.now();
  EXPECT_EQ(c.now(), a);
  c.advance(std::chrono::milliseconds{1500});
  EXPECT_EQ(c.now() - a, std::chrono::milliseconds{1500});
}

TEST(Clock, FromUnixMillisClampsInsteadOfOverflowing) {
  EXPECT_EQ(
      fromUnixMillis(INT64_MAX),
      TimePoint{std::chrono::duration_cast<TimePoint::duration>(
          std::chrono::duration_cast<std::chrono::milliseconds>(TimePoint::duration::max()))});
  EXPECT_LT(fromUnixMillis(INT64_MIN), TimePoint{});
  EXPECT_EQ(toUnixMillis(fromUnixMillis(1767225600123)), 1767225600123);
}

}  // namespace
}  // namespace llmcache
