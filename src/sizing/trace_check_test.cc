// The curves against the trace module's exact offline simulator (src/trace/simulator.h: a memory
// tier over a disk tier, byte-bounded LRU, promotion on a disk hit) on its synthetic traces
// (src/trace/synth.h), with fixed seeds: the check.
#include <gtest/gtest.h>

#include <cmath>
#include <unordered_map>

#include "sizing/shards.h"
#include "trace/simulator.h"
#include "trace/synth.h"

namespace llmcache::sizing {
namespace {

struct Traced {
  std::vector<trace::TraceEvent> events;
  uint64_t distinctBytes = 0;  // every key's size once: what a cache holding everything needs
};

Traced synth(const trace::SynthParams& params) {
  Traced t;
  std::unordered_map<std::string, uint64_t> sizes;
  EXPECT_TRUE(trace::synthesize(params, [&](const trace::TraceEvent& e) {
    t.events.push_back(e);
    sizes[e.key] = e.bytes;
  }));
  for (const auto& [key, bytes] : sizes) t.distinctBytes += bytes;
  return t;
}

struct TraceCase {
  trace::SynthParams params;
  double memoryShare;  // of the distinct bytes
  double diskShare;
};

class AgainstTheTraceSimulator : public ::testing::TestWithParam<TraceCase> {};

TEST_P(AgainstTheTraceSimulator, EveryPointIsWithinTwoPoints) {
  const TraceCase& c = GetParam();
  const Traced t = synth(c.params);
  ASSERT_FALSE(t.events.empty());
  const auto memory = static_cast<uint64_t>(c.memoryShare * static_cast<double>(t.distinctBytes));
  const auto disk = static_cast<uint64_t>(c.diskShare * static_cast<double>(t.distinctBytes));
  // Byte bounds only, as the simulator has them (entries: 0, unbounded).
  MissRatioEstimator est(
      {.rate = 1.0, .maxKeys = 32768, .tiers = {{"memory", 0, memory}, {"disk", 0, disk}}});
  for (const trace::TraceEvent& e : t.events) {
    const uint64_t h = keyHash(e.key);
    if (est.offer(h, e.cost))
      est.reference(h, e.bytes, e.cost, TimePoint{std::chrono::milliseconds(e.timeMs)});
  }
  const SizingReport r = est.report(TimePoint{std::chrono::milliseconds(t.events.back().timeMs)});
  ASSERT_EQ(r.tiers.size(), 2u);
  double worst = 0;
  for (size_t s = 0; s < kScales.size(); ++s) {
    // Memory alone: the simulator with the disk off.
    const auto m = trace::simulate(
        t.events, {.memoryBytes = static_cast<uint64_t>(kScales[s] * memory), .diskBytes = 0});
    // Disk: memory and disk together, today's memory over the scaled disk.
    const auto d = trace::simulate(
        t.events, {.memoryBytes = memory, .diskBytes = static_cast<uint64_t>(kScales[s] * disk)});
    const CurvePoint& pm = r.tiers[0].points[s];
    const CurvePoint& pd = r.tiers[1].points[s];
    EXPECT_NEAR(pm.hitRate * 100, m.hitRate() * 100, 2.0) << "memory x" << kScales[s];
    EXPECT_NEAR(pm.costSaved / m.costTotal * 100, m.costSaved / m.costTotal * 100, 2.0)
        << "memory x" << kScales[s] << " (cost saved)";
    EXPECT_NEAR(pd.hitRate * 100, d.hitRate() * 100, 2.0) << "disk x" << kScales[s];
    EXPECT_NEAR(pd.costSaved / d.costTotal * 100, d.costSaved / d.costTotal * 100, 2.0)
        << "disk x" << kScales[s] << " (cost saved)";
    worst = std::max({worst, std::abs(pm.hitRate - m.hitRate()) * 100,
                      std::abs(pd.hitRate - d.hitRate()) * 100});
    std::printf("x%-4g memory %.2f%% (exact %.2f%%)  disk %.2f%% (exact %.2f%%)\n", kScales[s],
                pm.hitRate * 100, m.hitRate() * 100, pd.hitRate * 100, d.hitRate() * 100);
  }
  std::printf("worst %.2f points, final rate %.4f, %zu keys\n", worst, r.rate, r.sampledKeys);
}

INSTANTIATE_TEST_SUITE_P(
    SynthTraces, AgainstTheTraceSimulator,
    ::testing::Values(
        // The generator's defaults: 100,000 requests, 20,000 keys, Zipf 0.9, 30% one-hit wonders.
        TraceCase{{.seed = 1}, 0.02, 0.2},
        TraceCase{{.seed = 2, .requests = 200000, .keys = 50000, .zipf = 0.8, .mix = "reasoning"},
                  0.05,
                  0.3},
        TraceCase{
            {.seed = 3, .requests = 200000, .keys = 100000, .zipf = 1.0, .oneHitWonders = 0.1},
            0.01,
            0.1}));

}  // namespace
}  // namespace llmcache::sizing
