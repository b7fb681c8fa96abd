#include "trace/synth.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace llmcache::trace {
namespace {

std::string render(const SynthParams& p) {
  std::string out = headerLine({"synth", paramsJson(p)}) + "\n";
  auto r = synthesize(p, [&](const TraceEvent& e) { out += eventLine(e) + "\n"; });
  EXPECT_TRUE(r) << r.error().message;
  return out;
}

TEST(Synth, TheSameSeedGivesTheSameBytes) {
  SynthParams p;
  p.seed = 42;
  p.requests = 3000;
  p.keys = 500;
  EXPECT_EQ(render(p), render(p));
  SynthParams q = p;
  q.seed = 43;
  EXPECT_NE(render(p), render(q));
}

TEST(Synth, FollowsItsParameters) {
  SynthParams p;
  p.seed = 1;
  p.requests = 20000;
  p.keys = 1000;
  p.oneHitWonders = 0.5;
  p.days = 2;
  std::map<std::string, int> counts;
  std::map<std::string, int> models;
  int64_t last = 0;
  uint64_t n = 0;
  auto r = synthesize(p, [&](const TraceEvent& e) {
    ++n;
    EXPECT_GE(e.timeMs, last);  // time order
    last = e.timeMs;
    EXPECT_GT(e.bytes, 0u);
    EXPECT_GT(e.cost, 0);
    ++counts[e.key];
    ++models[e.model];
  });
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(n, 20000u);
  EXPECT_LT(last - p.startMs, 2 * 86400000);
  int once = 0;
  for (const auto& [key, c] : counts) once += c == 1;
  // Half the requests are one-hit wonders, and a few Zipf-tail keys are asked once too.
  EXPECT_GT(once, 9500);
  EXPECT_LT(once, 12000);
  EXPECT_EQ(models.size(), 5u);  // the chat mix has all five models
  EXPECT_GT(models["gpt-4o-mini"], models["o1"]);
}

TEST(Synth, ReasoningMixCostsMorePerRequest) {
  auto totalCost = [](const std::string& mix) {
    SynthParams p;
    p.requests = 5000;
    p.mix = mix;
    double sum = 0;
    EXPECT_TRUE(synthesize(p, [&](const TraceEvent& e) { sum += e.cost; }));
    return sum;
  };
  EXPECT_GT(totalCost("reasoning"), 2 * totalCost("chat"));
}

TEST(Synth, RefusesBadParameters) {
  SynthParams p;
  p.zipf = -1;
  auto r = synthesize(p, [](const TraceEvent&) {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("--zipf"), std::string::npos);
  EXPECT_FALSE(parseMix("gpt-5=1"));
  EXPECT_FALSE(parseMix("gpt-4o=x"));
  EXPECT_FALSE(parseMix("gpt-4o=0"));
  auto mix = parseMix("gpt-4o=1,o1=3");
  ASSERT_TRUE(mix);
  ASSERT_EQ(mix->size(), 2u);
  EXPECT_DOUBLE_EQ((*mix)[1].share, 0.75);
}

}  // namespace
}  // namespace llmcache::trace
