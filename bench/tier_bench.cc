// Tier lookup speed: a hit in the memory tier and in the disk tier (file in the page cache,
// decoded and checksum-verified), with a ~1.5 KB answer; plus the codec alone, and a disk store
// with and without fsync.
//   build/bench/tier_bench
#include <benchmark/benchmark.h>

#include <filesystem>

#include "cache/codec.h"
#include "cache/disk/disk_tier.h"
#include "cache/memory/memory_tier.h"
#include "cache/test_entry.h"

namespace {

using namespace llmcache;

cache::EntryPtr entry(const std::string& key) {
  return std::make_shared<cache::Entry>(cache::test::makeTestEntry(key, std::string(1500, 'x')));
}

// Arg: the eviction policy (cache::PolicyKind: 0 lru, 1 sieve, 2 gdsf, 3 cost-sieve).
void BM_MemoryTierHit(benchmark::State& state) {
  const auto policy = static_cast<cache::PolicyKind>(state.range(0));
  state.SetLabel(std::string(cache::policyName(policy)));
  cache::MemoryTier tier(cache::MemoryTierOptions{.maxEntries = 1000, .policy = policy});
  for (int i = 0; i < 100; ++i) (void)tier.insert(entry("gpt-4o-mini_" + std::to_string(i)));
  int i = 0;
  for (auto _ : state) {
    auto hit = tier.lookup("gpt-4o-mini_" + std::to_string(i++ % 100));
    benchmark::DoNotOptimize(hit);
  }
}
BENCHMARK(BM_MemoryTierHit)->DenseRange(0, 3)->Threads(1)->Threads(2);

void BM_DiskTierHit(benchmark::State& state) {
  const auto dir = std::filesystem::temp_directory_path() / "llmcache_tier_bench";
  std::filesystem::remove_all(dir);
  {
    cache::DiskTier tier(cache::DiskTierOptions{
        .dir = dir, .maxEntries = 1000, .codec = {.compress = state.range(0) != 0}});
    for (int i = 0; i < 100; ++i) (void)tier.insert(entry("gpt-4o-mini_" + std::to_string(i)));
    int i = 0;
    for (auto _ : state) {
      auto hit = tier.lookup("gpt-4o-mini_" + std::to_string(i++ % 100));
      benchmark::DoNotOptimize(hit);
    }
  }
  std::filesystem::remove_all(dir);
  state.SetLabel(state.range(0) ? "zstd" : "plain");
}
BENCHMARK(BM_DiskTierHit)->Arg(0)->Arg(1);

// A store into the disk tier (the background writer's main cost per miss), with an fsync of the
// file and its folder (CACHE_DISK_SYNC=always) or without (interval, never: the default).
void BM_DiskTierInsert(benchmark::State& state) {
  const bool sync = state.range(0) != 0;
  const auto dir = std::filesystem::temp_directory_path() / "llmcache_tier_bench_insert";
  std::filesystem::remove_all(dir);
  {
    cache::DiskTier tier(
        cache::DiskTierOptions{.dir = dir, .maxEntries = 1000, .syncEachWrite = sync});
    int i = 0;
    for (auto _ : state) {
      auto r = tier.insert(entry("gpt-4o-mini_" + std::to_string(i++ % 500)));
      benchmark::DoNotOptimize(r);
    }
  }
  std::filesystem::remove_all(dir);
  state.SetLabel(sync ? "CACHE_DISK_SYNC=always" : "CACHE_DISK_SYNC=interval");
}
BENCHMARK(BM_DiskTierInsert)->Arg(1)->Arg(0)->UseRealTime();

void BM_DecodeEntry(benchmark::State& state) {
  const std::string bytes = cache::encodeEntry(*entry("k"), {.compress = state.range(0) != 0});
  for (auto _ : state) {
    auto e = cache::decodeEntry(bytes);
    benchmark::DoNotOptimize(e);
  }
  state.SetLabel(std::to_string(bytes.size()) + " B " + (state.range(0) ? "zstd" : "plain"));
}
BENCHMARK(BM_DecodeEntry)->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();
