// The online estimate against an exact simulation: byte- and entry-bounded LRU caches of every
// size of the curve, replaying the same trace (synthetic, fixed seeds).
#include "sizing/shards.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <list>
#include <random>
#include <thread>
#include <unordered_map>

namespace llmcache::sizing {
namespace {

struct Ref {
  uint64_t key;
  uint64_t bytes;
  double cost;
};

struct TraceShape {
  size_t references = 400000;
  size_t keys = 100000;    // the Zipf population
  double alpha = 0.9;      // Zipf exponent
  double oneHitShare = 0;  // references to keys never seen again
  uint64_t seed = 1;
};

// A Zipf stream over `keys` keys (popularity rank shuffled over the key ids) with one-hit
// wonders mixed in; each key has a fixed size and miss cost drawn from a model mix: small cheap
// answers, middling ones, and a few large expensive ones.
std::vector<Ref> makeTrace(const TraceShape& shape) {
  std::mt19937_64 rng(shape.seed);
  std::vector<double> cdf(shape.keys);
  double sum = 0;
  for (size_t i = 0; i < shape.keys; ++i) cdf[i] = (sum += 1.0 / std::pow(i + 1.0, shape.alpha));
  for (double& c : cdf) c /= sum;
  auto sizeOf = [](uint64_t id, uint64_t& bytes, double& cost) {
    const uint64_t h = id * 0x9e3779b97f4a7c15ULL;
    switch ((h >> 60) % 3) {
      case 0:
        bytes = 800 + (h >> 20) % 1200, cost = 0.0002;
        break;
      case 1:
        bytes = 2000 + (h >> 20) % 6000, cost = 0.003;
        break;
      default:
        bytes = 8000 + (h >> 20) % 24000, cost = 0.02;
        break;
    }
  };
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<Ref> out;
  out.reserve(shape.references);
  uint64_t nextUnique = uint64_t{1} << 40;
  for (size_t i = 0; i < shape.references; ++i) {
    uint64_t id;
    if (u(rng) < shape.oneHitShare) {
      id = nextUnique++;
    } else {
      id = static_cast<uint64_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
      id = id * 2654435761ULL % 1000000007ULL;  // ranks spread over the ids
    }
    Ref r{.key = id, .bytes = 0, .cost = 0};
    sizeOf(id, r.bytes, r.cost);
    out.push_back(r);
  }
  return out;
}

// An LRU cache of at most `entries` entries and `bytes` bytes, every miss admitted if it fits:
// the hit rate and the cost its hits saved over the trace.
struct Exact {
  double hitRate = 0;
  double saved = 0;
};
Exact simulate(const std::vector<Ref>& trace, double entries, double bytes) {
  std::list<std::pair<uint64_t, uint64_t>> lru;  // front: most recent
  std::unordered_map<uint64_t, std::list<std::pair<uint64_t, uint64_t>>::iterator> where;
  double held = 0;
  size_t hits = 0;
  double saved = 0;
  for (const Ref& r : trace) {
    if (auto it = where.find(r.key); it != where.end()) {
      ++hits;
      saved += r.cost;
      lru.splice(lru.begin(), lru, it->second);
      continue;
    }
    if (static_cast<double>(r.bytes) > bytes || entries < 1) continue;
    lru.emplace_front(r.key, r.bytes);
    where[r.key] = lru.begin();
    held += static_cast<double>(r.bytes);
    while (static_cast<double>(lru.size()) > entries || held > bytes) {
      held -= static_cast<double>(lru.back().second);
      where.erase(lru.back().first);
      lru.pop_back();
    }
  }
  return {static_cast<double>(hits) / static_cast<double>(trace.size()), saved};
}

const std::vector<TierBounds> kTiers = {{"memory", 2000, 8u << 20}, {"disk", 8000, 64u << 20}};

SizingReport estimate(const std::vector<Ref>& trace, double rate, size_t maxKeys,
                      size_t* largestKeys = nullptr) {
  MissRatioEstimator est({.rate = rate, .maxKeys = maxKeys, .tiers = kTiers});
  TimePoint t{};
  for (const Ref& r : trace) {
    const uint64_t h = keyHash(std::to_string(r.key));
    if (est.offer(h, r.cost)) est.reference(h, r.bytes, r.cost, t);
    if (largestKeys) *largestKeys = std::max(*largestKeys, est.sampledKeys());
    t += std::chrono::milliseconds(10);
  }
  return est.report(t);
}

double totalCost(const std::vector<Ref>& trace) {
  double c = 0;
  for (const Ref& r : trace) c += r.cost;
  return c;
}

// Every point of every tier within `points` percentage points of the exact simulation, in hit
// rate and in the share of the trace's cost saved.
void expectNear(const std::vector<Ref>& trace, const SizingReport& report, double points) {
  const double cost = totalCost(trace);
  ASSERT_EQ(report.tiers.size(), kTiers.size());
  for (const TierCurve& tier : report.tiers) {
    ASSERT_EQ(tier.points.size(), kScales.size());
    for (const CurvePoint& p : tier.points) {
      const Exact exact = simulate(trace, p.entries, p.bytes);
      EXPECT_NEAR(p.hitRate * 100, exact.hitRate * 100, points)
          << tier.bounds.name << " x" << p.scale;
      EXPECT_NEAR(p.costSaved / cost * 100, exact.saved / cost * 100, points)
          << tier.bounds.name << " x" << p.scale << " (cost saved)";
    }
  }
}

TEST(MissRatioEstimator, AtFullRateTheCurveIsTheExactSimulation) {
  const auto trace = makeTrace({.references = 60000, .keys = 20000, .alpha = 0.8, .seed = 7});
  const SizingReport report = estimate(trace, 1.0, 1 << 20);
  EXPECT_EQ(report.rate, 1.0);
  expectNear(trace, report, 1e-9);
  EXPECT_NEAR(report.costTotal, totalCost(trace), 1e-6);
}

struct Case {
  TraceShape shape;
  double rate;
  size_t maxKeys;
};

class SampledCurve : public ::testing::TestWithParam<Case> {};

TEST_P(SampledCurve, IsWithinTwoPointsOfTheExactSimulationAtEverySize) {
  const Case& c = GetParam();
  const auto trace = makeTrace(c.shape);
  size_t largest = 0;
  const SizingReport report = estimate(trace, c.rate, c.maxKeys, &largest);
  EXPECT_LE(largest, c.maxKeys);
  expectNear(trace, report, 2.0);
}

// The defaults (rate 1, then falling as the bound of 32768 keys lowers it) on traces of 60,000
// to 400,000 keys. At a fixed rate of 0.01 or 0.1 the same traces are off by up to 27 points:
// a few hot keys sampled or not move the curve (docs/sizing.md, Accuracy).
INSTANTIATE_TEST_SUITE_P(
    ZipfTraces, SampledCurve,
    ::testing::Values(
        // A large population.
        Case{{.references = 1000000, .keys = 400000, .alpha = 0.9, .seed = 11}, 1.0, 32768},
        // Skewed, with one-hit wonders.
        Case{{.references = 600000, .keys = 100000, .alpha = 1.0, .oneHitShare = 0.2, .seed = 12},
             1.0,
             32768},
        // Flat popularity: the curve climbs slowly.
        Case{{.references = 600000, .keys = 60000, .alpha = 0.6, .seed = 13}, 1.0, 32768},
        // Many one-hit wonders.
        Case{{.references = 600000, .keys = 200000, .alpha = 0.8, .oneHitShare = 0.3, .seed = 15},
             1.0,
             32768}));

TEST(MissRatioEstimator, NeverTracksMoreKeysThanItsBoundAndLowersItsRate) {
  const auto trace = makeTrace({.references = 100000, .keys = 50000, .alpha = 0.7, .seed = 3});
  MissRatioEstimator est({.rate = 1.0, .maxKeys = 500, .tiers = kTiers});
  for (const Ref& r : trace) {
    const uint64_t h = keyHash(std::to_string(r.key));
    if (est.offer(h, r.cost)) est.reference(h, r.bytes, r.cost, TimePoint{});
    ASSERT_LE(est.sampledKeys(), 500u);
  }
  EXPECT_EQ(est.sampledKeys(), 500u);
  EXPECT_LT(est.rate(), 0.05);
  EXPECT_GT(est.rate(), 0.0);
}

TEST(MissRatioEstimator, ReferencesFromManyThreadsAreAllCountedOnceReported) {
  MissRatioEstimator est({.rate = 1.0, .maxKeys = 1000, .tiers = kTiers});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&est, t] {
      for (int i = 0; i < 1000; ++i) {  // 100 keys each thread, 10 rounds: not a multiple of 64
        const uint64_t h = keyHash(std::to_string(t * 100 + i % 100));
        if (est.offer(h, 0.25)) est.reference(h, 1000, 0.25, TimePoint{});
      }
    });
  for (auto& t : threads) t.join();
  const SizingReport r = est.report(TimePoint{});
  EXPECT_EQ(r.references, 4000u);
  EXPECT_EQ(r.sampledReferences, 4000);
  EXPECT_EQ(r.sampledKeys, 400u);
  EXPECT_DOUBLE_EQ(r.costTotal, 1000);
  // Every key's later rounds hit at every size that holds 400 entries (disk from 0.25x: 2000).
  EXPECT_DOUBLE_EQ(r.tiers[1].points[0].hitRate, 0.9);
}

TEST(MissRatioEstimator, IgnoresAReferenceItDoesNotSample) {
  MissRatioEstimator est({.rate = 0.5, .maxKeys = 10, .tiers = kTiers});
  const uint64_t out = uint64_t{0xF0000000} << 32;  // above half the hash space
  EXPECT_FALSE(est.sampled(out));
  est.reference(out, 100, 1, TimePoint{});
  EXPECT_EQ(est.sampledKeys(), 0u);
  EXPECT_EQ(est.report(TimePoint{}).sampledReferences, 0);
  EXPECT_FALSE(est.offer(out, 2.0));
  EXPECT_EQ(est.report(TimePoint{}).references, 1u);
  EXPECT_EQ(est.report(TimePoint{}).costTotal, 2.0);
}

TEST(MissRatioEstimator, RefusesARateOutsideZeroToOne) {
  EXPECT_THROW(MissRatioEstimator({.rate = 0, .maxKeys = 10, .tiers = {}}), std::invalid_argument);
  EXPECT_THROW(MissRatioEstimator({.rate = 1.5, .maxKeys = 10, .tiers = {}}),
               std::invalid_argument);
  EXPECT_THROW(MissRatioEstimator({.rate = 0.1, .maxKeys = 0, .tiers = {}}), std::invalid_argument);
}

TEST(ReportToJson, GivesEveryTiersPointsAndExtrapolatesPerDayOnceASecondHasPassed) {
  MissRatioEstimator est({.rate = 1.0, .maxKeys = 100, .tiers = kTiers});
  const TimePoint t0{std::chrono::seconds(1000)};
  for (int i = 0; i < 2; ++i)
    if (est.offer(keyHash("a"), 0.5)) est.reference(keyHash("a"), 1000, 0.5, t0);
  const Json early = reportToJson(est.report(t0));
  const Json* point = &early.find("tiers")->find("memory")->find("points")->items()[2];
  EXPECT_EQ(point->find("hit_rate")->asDouble(), 0.5);
  EXPECT_EQ(point->find("cost_saved")->asDouble(), 0.5);
  EXPECT_TRUE(point->find("cost_saved_per_day")->isNull());

  const Json later = reportToJson(est.report(t0 + std::chrono::hours(1)));
  const Json* memory = later.find("tiers")->find("memory");
  EXPECT_EQ(memory->find("entries")->asInt64(), 2000);
  EXPECT_EQ(memory->find("bytes")->asInt64(), 8 << 20);
  const Json* points = memory->find("points");
  ASSERT_EQ(points->size(), kScales.size());
  EXPECT_EQ(points->items()[0].find("scale")->asDouble(), 0.25);
  EXPECT_EQ(points->items()[5].find("bytes")->asInt64(), int64_t{64} << 20);
  EXPECT_NEAR(*points->items()[2].find("cost_saved_per_day")->asDouble(), 12.0, 1e-9);
  EXPECT_EQ(later.find("samples")->asDouble(), 2);
  EXPECT_EQ(later.find("rate")->asDouble(), 1);
}

}  // namespace
}  // namespace llmcache::sizing
