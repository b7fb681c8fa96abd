#include "common/clock.h"

#include <gtest/gtest.h>

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
}

TEST(Clock, FakeClockMovesOnlyWhenTold) {
  FakeClock c;
  const TimePoint a = c.now();
  EXPECT_EQ(c.now(), a);
  c.advance(std::chrono::milliseconds{1500});
  EXPECT_EQ(c.now() - a, std::chrono::milliseconds{1500});
}

}  // namespace
}  // namespace llmcache
