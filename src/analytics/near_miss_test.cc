#include "analytics/near_miss.h"

#include <gtest/gtest.h>

namespace llmcache::analytics {
namespace {

MissExplanation explained(std::vector<FieldDifference> fields, double cost) {
  MissExplanation e;
  e.found = !fields.empty();
  e.fields = std::move(fields);
  e.nearestCostUsd = cost;
  return e;
}

TEST(NearMissPatterns, TheFieldThatBreaksMostNearHitsComesFirstWithItsShareAndCost) {
  NearMissPatterns p;
  p.add("gpt-4o", explained({{"messages[0].content", "digits"}}, 0.01));
  p.add("gpt-4o", explained({{"messages[0].content", "digits"}, {"temperature", "changed"}}, 0.02));
  p.add("gpt-4o", explained({}, 0));
  p.add("gpt-4o", explained({{"messages[0].content", "digits"}}, 0.01));
  const Json r = p.report();
  EXPECT_EQ(r.find("explained")->asInt64(), 4);
  const auto rows = r.find("fields")->items();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].getString("field"), "messages[0].content");
  EXPECT_EQ(rows[0].getString("kind"), "digits");
  EXPECT_EQ(rows[0].find("misses")->asInt64(), 3);
  EXPECT_DOUBLE_EQ(*rows[0].find("share")->asDouble(), 0.75);
  EXPECT_DOUBLE_EQ(*rows[0].find("cost_usd")->asDouble(), 0.04);
  EXPECT_EQ(rows[1].getString("field"), "temperature");
}

TEST(NearMissPatterns, AFieldCountsOncePerMissAndModelsAreApart) {
  NearMissPatterns p;
  p.add("a", explained({{"x", "text"}, {"x", "text"}}, 1));
  p.add("b", explained({{"x", "text"}}, 1));
  const Json r = p.report();
  const auto rows = r.find("fields")->items();
  ASSERT_EQ(rows.size(), 2u);
  for (const Json& row : rows) {
    EXPECT_EQ(row.find("misses")->asInt64(), 1);
    EXPECT_DOUBLE_EQ(*row.find("share")->asDouble(), 1.0);
  }
}

}  // namespace
}  // namespace llmcache::analytics
