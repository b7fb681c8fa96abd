#include "index/criterion.h"

#include <gtest/gtest.h>

#include "cache/test_entry.h"

namespace llmcache::index {
namespace {

using namespace std::chrono_literals;

TEST(GlobMatch, StarAndQuestionMarkFollowFnmatchAndCrossSlashes) {
  EXPECT_TRUE(globMatch("gpt-4o*", "gpt-4o-mini:0011223344556677"));
  EXPECT_TRUE(globMatch("openai/*", "openai/gpt-4o"));
  EXPECT_TRUE(globMatch("*gpt*", "openai/gpt-4o"));
  EXPECT_TRUE(globMatch("gpt-4?", "gpt-4o"));
  EXPECT_FALSE(globMatch("gpt-4?", "gpt-4"));
  EXPECT_FALSE(globMatch("gpt-4o", "gpt-4o-mini"));
}

TEST(GlobMatch, BracketsMatchSetsRangesAndNegations) {
  EXPECT_TRUE(globMatch("gpt-[34]*", "gpt-3.5-turbo"));
  EXPECT_TRUE(globMatch("gpt-[0-9]o", "gpt-4o"));
  EXPECT_FALSE(globMatch("gpt-[!4]o", "gpt-4o"));
  EXPECT_TRUE(globMatch("gpt-\\*", "gpt-*"));
  EXPECT_FALSE(globMatch("gpt-\\*", "gpt-4"));
}

TEST(Matches, EachKindSelectsByItsField) {
  const FakeClock clock;
  cache::Entry e = cache::test::makeTestEntry("gpt-4o-mini:0011223344556677");
  e.responseTimestamp = clock.now() - 48h;
  EXPECT_TRUE(matches(Criterion::model("gpt-4o-mini"), e, clock.now()));
  EXPECT_FALSE(matches(Criterion::model("gpt-4o"), e, clock.now()));
  EXPECT_TRUE(matches(Criterion::key("gpt-4o-mini:0011223344556677"), e, clock.now()));
  EXPECT_FALSE(matches(Criterion::key("gpt-4o-mini:0011223344556678"), e, clock.now()));
  EXPECT_TRUE(matches(Criterion::pattern("*:0011*"), e, clock.now()));
  EXPECT_TRUE(matches(Criterion::pattern("gpt-4o-m?ni"), e, clock.now()));  // the model
  EXPECT_FALSE(matches(Criterion::pattern("claude*"), e, clock.now()));
  EXPECT_TRUE(matches(Criterion::tag("prod"), e, clock.now()));
  EXPECT_FALSE(matches(Criterion::tag("dev"), e, clock.now()));
  EXPECT_TRUE(matches(Criterion::cacheNamespace("tenant-1"), e, clock.now()));
  EXPECT_FALSE(matches(Criterion::cacheNamespace("tenant-2"), e, clock.now()));
  EXPECT_TRUE(matches(Criterion::cacheId(e.cacheId), e, clock.now()));
  EXPECT_FALSE(matches(Criterion::cacheId("0"), e, clock.now()));
}

TEST(Matches, OlderThanIsStrictlyBeforeTheCutoff) {
  const FakeClock clock;
  cache::Entry e = cache::test::makeTestEntry("k:1");
  e.responseTimestamp = clock.now() - 24h;
  EXPECT_TRUE(matches(Criterion::olderThan(std::chrono::milliseconds(12h)), e, clock.now()));
  EXPECT_FALSE(matches(Criterion::olderThan(std::chrono::milliseconds(24h)), e, clock.now()));
  EXPECT_TRUE(matches(Criterion::olderThan(clock.now()), e, clock.now()));
  EXPECT_FALSE(matches(Criterion::olderThan(e.responseTimestamp), e, clock.now()));
}

TEST(Criterion, ResolvingAnAgeFixesTheCutoffAtThatMoment) {
  FakeClock clock;
  const Criterion r = Criterion::olderThan(std::chrono::milliseconds(1h)).resolved(clock.now());
  ASSERT_TRUE(r.before);
  clock.advance(10h);
  EXPECT_EQ(r.cutoff(clock.now()), *r.before);
  EXPECT_EQ(r.describe(clock.now()), "older_than<" + formatIso8601(*r.before));
}

}  // namespace
}  // namespace llmcache::index
