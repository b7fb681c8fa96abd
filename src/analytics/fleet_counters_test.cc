#include "analytics/fleet_counters.h"

#include <gtest/gtest.h>

namespace llmcache::analytics {
namespace {

Event event(Outcome outcome, std::string tier = "", std::string model = "gpt-4o",
            std::string platform = "openai") {
  Event e;
  e.outcome = outcome;
  e.tier = std::move(tier);
  e.model = std::move(model);
  e.platform = std::move(platform);
  if (outcome == Outcome::Hit) {
    e.costSaved = 0.25;
    e.latencySavedMs = 800;
    e.tokensIn = 10;
    e.tokensOut = 20;
  }
  return e;
}

TEST(FleetCountersTest, CountsHitsOfEveryTierByModelAndPlatformWithWhatTheySaved) {
  FleetCounters c;
  c.observe(event(Outcome::Miss));
  c.observe(event(Outcome::Hit, "memory"));
  c.observe(event(Outcome::Hit, "disk"));
  c.observe(event(Outcome::Hit, "s3", "claude", "anthropic"));
  c.observe(event(Outcome::Coalesced));
  c.observe(event(Outcome::Bypass));  // a request, not a cacheable one
  const Json s = c.snapshot();
  EXPECT_EQ(s.getInt("requests"), 6);
  EXPECT_EQ(s.getInt("cacheable"), 5);
  EXPECT_EQ(s.getInt("hits"), 3);
  EXPECT_EQ(s.getInt("misses"), 1);
  EXPECT_EQ(s.getInt("coalesced"), 1);
  EXPECT_EQ(s.find("hits_by_tier")->getInt("memory"), 1);
  EXPECT_EQ(s.find("hits_by_tier")->getInt("disk"), 1);
  EXPECT_EQ(s.find("hits_by_tier")->getInt("s3"), 1);
  EXPECT_DOUBLE_EQ(s.getDouble("cost_saved_usd").value_or(0), 0.75);
  EXPECT_DOUBLE_EQ(s.getDouble("latency_saved_ms").value_or(0), 2400);
  EXPECT_EQ(s.getInt("tokens_saved"), 90);
  const Json* gpt = s.find("by_model")->find("gpt-4o");
  EXPECT_EQ(gpt->getInt("requests"), 4);
  EXPECT_EQ(gpt->getInt("hits"), 2);
  EXPECT_EQ(s.find("by_platform")->find("anthropic")->getInt("hits"), 1);
  EXPECT_DOUBLE_EQ(
      s.find("by_platform")->find("anthropic")->getDouble("cost_saved_usd").value_or(0), 0.25);
  // Only sums and counts: rates are derived after a merge, never summed.
  EXPECT_FALSE(s.find("hit_rate"));
}

TEST(FleetCountersTest, ModelsBeyondTheBoundAreAddedUpUnderOther) {
  FleetCounters c({.maxLabels = 2});
  for (std::string m : {"a", "b", "c", "d"}) c.observe(event(Outcome::Hit, "memory", m));
  const Json s = c.snapshot();
  EXPECT_EQ(s.find("by_model")->size(), 3u);
  EXPECT_EQ(s.find("by_model")->find("other")->getInt("hits"), 2);
}

}  // namespace
}  // namespace llmcache::analytics
