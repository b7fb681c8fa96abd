// sizing_bench: what the miss-ratio curves (sizing::MissRatioEstimator, docs/sizing.md) cost a
// request. Run: build/bench/sizing_bench
//   BM_KeyHash           the key's hash (every cacheable request with an entry pays it)
//   BM_OfferSampledOut   a reference whose key is not sampled: the counters and a comparison
//   BM_SampledReference  a sampled reference: the O(log n) stack distance under the estimator's
//                        mutex, on a Zipf stream over 200,000 keys with the bound of 32,768
//                        keys (rate 1 falling as the bound lowers it); Threads(2): two threads
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "sizing/shards.h"

using namespace llmcache;
using namespace llmcache::sizing;

namespace {

const std::vector<TierBounds> kTiers = {{"memory", 100, 256u << 20}, {"disk", 1000, 1u << 30}};

std::vector<uint64_t> zipfHashes(size_t n, size_t keys) {
  std::mt19937_64 rng(42);
  std::vector<double> cdf(keys);
  double sum = 0;
  for (size_t i = 0; i < keys; ++i) cdf[i] = (sum += 1.0 / std::pow(i + 1.0, 0.9));
  std::uniform_real_distribution<double> u(0, sum);
  std::vector<uint64_t> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t rank = std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin();
    out.push_back(keyHash("gpt-4o-mini_" + std::to_string(rank)));
  }
  return out;
}

void BM_KeyHash(benchmark::State& state) {
  const std::string key =
      "gpt-4o-mini_3f2a9c0d5e7b41a68c9d0e1f2a3b4c5d:0f1e2d3c4b5a69788796a5b4c3d2e1f0";
  for (auto _ : state) benchmark::DoNotOptimize(keyHash(key));
}
BENCHMARK(BM_KeyHash);

void BM_OfferSampledOut(benchmark::State& state) {
  // A rate so low that nothing of the stream is sampled.
  static MissRatioEstimator est({.rate = 1e-9, .maxKeys = 32768, .tiers = kTiers});
  static const std::vector<uint64_t> hashes = zipfHashes(1 << 16, 200000);
  size_t i = 0;
  for (auto _ : state) {
    const uint64_t h = hashes[i++ & (hashes.size() - 1)];
    if (est.offer(h, 0.001)) est.reference(h, 1000, 0.001, TimePoint{});
  }
}
BENCHMARK(BM_OfferSampledOut)->Threads(1)->Threads(2);

void BM_SampledReference(benchmark::State& state) {
  static MissRatioEstimator est({.rate = 1.0, .maxKeys = 32768, .tiers = kTiers});
  static const std::vector<uint64_t> hashes = zipfHashes(1 << 20, 200000);
  // Warm up once: the bound reached, the rate settled.
  static const bool warmed = [] {
    for (uint64_t h : hashes)
      if (est.offer(h, 0.001)) est.reference(h, 1000, 0.001, TimePoint{});
    return true;
  }();
  benchmark::DoNotOptimize(warmed);
  // Only keys that are sampled at the settled rate: every iteration does the full work.
  static const std::vector<uint64_t> sampled = [] {
    std::vector<uint64_t> out;
    for (uint64_t h : hashes)
      if (est.sampled(h)) out.push_back(h);
    return out;
  }();
  size_t i = static_cast<size_t>(state.thread_index()) * 7919;
  for (auto _ : state) {
    const uint64_t h = sampled[i++ % sampled.size()];
    if (est.offer(h, 0.001)) est.reference(h, 1000, 0.001, TimePoint{});
  }
  state.counters["rate"] = est.rate();
  state.counters["keys"] = static_cast<double>(est.sampledKeys());
}
BENCHMARK(BM_SampledReference)->Threads(1)->Threads(2);

}  // namespace

BENCHMARK_MAIN();
