#include "analytics/explain.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace llmcache::analytics {
namespace {

using ::testing::ElementsAre;

Json body(std::string_view text) {
  auto j = parseJson(text);
  EXPECT_TRUE(j) << text;
  return j ? std::move(*j) : Json();
}

cache::EntryPtr stored(std::string key, std::string request, std::string tenant = "t1",
                       std::string endpoint = "openai.chat") {
  auto e = std::make_shared<cache::Entry>();
  e->cacheKey = std::move(key);
  e->cacheId = "id-" + e->cacheKey;
  e->request = std::move(request);
  e->tenant = std::move(tenant);
  e->endpoint = std::move(endpoint);
  return e;
}

TEST(DiffRequests, AChangedTemperatureIsThatFieldAlone) {
  EXPECT_THAT(diffRequests(body(R"({"model":"m","temperature":0.7})"),
                           body(R"({"temperature":0.2,"model":"m"})")),
              ElementsAre("temperature: 0.7 -> 0.2"));
}

TEST(DiffRequests, AChangedWordNamesTheCharactersAndTheirOffset) {
  EXPECT_THAT(
      diffRequests(body(R"({"messages":[{"role":"system","content":"Today is Monday."}]})"),
                   body(R"({"messages":[{"role":"system","content":"Today is Friday."}]})")),
      ElementsAre(R"(messages[0].content: 3 characters differ at offset 9 ("Mon" -> "Fri"))"));
}

TEST(DiffRequests, DifferencesAtTheEndAndInMultibyteTextCountWholeCharacters) {
  EXPECT_THAT(diffRequests(body(R"({"c":"abc"})"), body(R"({"c":"abcdef"})")),
              ElementsAre(R"(c: 3 characters differ at offset 3 ("" -> "def"))"));
  EXPECT_THAT(diffRequests(body(R"({"c":"abcdef"})"), body(R"({"c":"abc"})")),
              ElementsAre(R"(c: 3 characters differ at offset 3 ("def" -> ""))"));
  // "é" (C3 A9) and "è" (C3 A8) share their first byte: the character differs, not a byte.
  EXPECT_THAT(diffRequests(body(R"({"c":"café!"})"), body(R"({"c":"cafè!"})")),
              ElementsAre("c: 1 character differs at offset 3 (\"\u00e9\" -> \"\u00e8\")"));
}

TEST(DiffRequests, AddedAndRemovedMembersAndItems) {
  EXPECT_THAT(diffRequests(body(R"({"tools":[{"a":1}],"top_p":1})"),
                           body(R"({"tools":[{"a":1},{"b":2}],"seed":3})")),
              ElementsAre("tools[1]: added", "top_p: removed", "seed: added"));
}

TEST(DiffRequests, EqualBodiesInAnotherMemberOrderHaveNoDifference) {
  EXPECT_TRUE(
      diffRequests(body(R"({"a":1,"b":[true,null]})"), body(R"({"b":[true,null],"a":1})")).empty());
}

TEST(DiffRequests, ATypeChangeShowsBothValues) {
  EXPECT_THAT(diffRequests(body(R"({"stop":"x"})"), body(R"({"stop":["x"]})")),
              ElementsAre(R"(stop: "x" -> ["x"])"));
}

TEST(DiffRequests, ManyDifferencesAreCutAtTheLimit) {
  auto lines = diffRequests(body(R"({"a":1,"b":2,"c":3})"), body(R"({"a":4,"b":5,"c":6})"), 2);
  EXPECT_THAT(lines, ElementsAre("a: 1 -> 4", "b: 2 -> 5", "... 1 more"));
}

TEST(ExplainMiss, NearestIsTheRequestWithTheFewestDifferences) {
  const std::vector<cache::EntryPtr> entries = {
      stored("k:far",
             R"({"model":"m","temperature":0.1,"messages":[{"role":"user","content":"x"}]})"),
      stored("k:near",
             R"({"model":"m","temperature":0.7,"messages":[{"role":"user","content":"hello"}]})"),
  };
  auto ex = explainMiss(
      body(R"({"model":"m","temperature":0.2,"messages":[{"role":"user","content":"hello"}]})"),
      "t1", "openai.chat", entries);
  ASSERT_TRUE(ex.found);
  EXPECT_EQ(ex.nearestKey, "k:near");
  EXPECT_THAT(ex.differences, ElementsAre("temperature: 0.7 -> 0.2"));
  EXPECT_EQ(ex.headerValue(), "nearest k:near: temperature: 0.7 -> 0.2");
}

TEST(ExplainMiss, NeverLooksAcrossTenantsOrEndpoints) {
  const std::vector<cache::EntryPtr> entries = {
      stored("k:other-tenant", R"({"model":"m"})", "t2"),
      stored("k:other-endpoint", R"({"model":"m"})", "t1", "anthropic.messages"),
  };
  auto ex = explainMiss(body(R"({"model":"m"})"), "t1", "openai.chat", entries);
  EXPECT_FALSE(ex.found);
  EXPECT_EQ(ex.candidates, 0u);
  EXPECT_EQ(ex.headerValue(), "no stored request of this tenant and endpoint");
  EXPECT_TRUE(ex.toJson().find("nearest")->isNull());
}

}  // namespace
}  // namespace llmcache::analytics
