// Invalidating N entries by model (memory + disk tiers + index) while another thread keeps
// serving memory hits of another model: how long the invalidation takes and how long the hits
// wait (p50/p99/max). Usage: build/bench/invalidation_bench [N=100000] [--no-disk]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "cache/disk/disk_tier.h"
#include "cache/memory/memory_tier.h"
#include "cache/test_entry.h"
#include "cache/tiered_cache.h"
#include "index/index.h"
#include "invalidation/invalidator.h"

using namespace llmcache;
using Clk = std::chrono::steady_clock;

int main(int argc, char** argv) {
  size_t n = 100000;
  bool withDisk = true;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--no-disk") == 0)
      withDisk = false;
    else
      n = std::stoul(argv[i]);
  }
  const auto dir = std::filesystem::temp_directory_path() / "llmcache_invalidation_bench";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  cache::MemoryTier memory(
      cache::MemoryTierOptions{.maxEntries = n + 2000, .maxBytes = size_t(8) << 30});
  std::unique_ptr<cache::DiskTier> disk;
  if (withDisk)
    disk = std::make_unique<cache::DiskTier>(
        cache::DiskTierOptions{.dir = dir, .maxEntries = n + 2000, .maxBytes = size_t(64) << 30});
  std::vector<cache::CacheTier*> tiers{&memory};
  if (disk) tiers.push_back(disk.get());
  cache::TieredCache chain({.fast = tiers, .slowThreads = 1});
  auto index = index::Index::open(dir / "index.sqlite").value();

  auto t0 = Clk::now();
  std::vector<cache::EntryPtr> doomed;
  for (size_t i = 0; i < n; ++i) {
    auto e = std::make_shared<cache::Entry>(
        cache::test::makeTestEntry("gpt-4o_" + std::to_string(i), "answer " + std::to_string(i)));
    e->model = "gpt-4o";
    e->cacheId = cache::newCacheId();
    for (cache::CacheTier* t : tiers) (void)t->insert(e);
    (void)index->upsert(*e, disk ? 3 : 1, 2000, 2000);
  }
  std::vector<cache::EntryPtr> kept;
  for (size_t i = 0; i < 1000; ++i) {
    auto e = std::make_shared<cache::Entry>(
        cache::test::makeTestEntry("gpt-4o-mini_" + std::to_string(i)));
    e->model = "gpt-4o-mini";
    (void)memory.insert(e);  // as above: the fill is not what is measured
    kept.push_back(e);
  }
  std::printf("filled %zu entries (%s) in %.1f s\n", n,
              disk ? "memory + disk + index" : "memory + index",
              std::chrono::duration<double>(Clk::now() - t0).count());

  std::atomic<bool> done{false};
  std::vector<double> waits;
  std::thread hitter([&] {
    size_t i = 0;
    while (!done) {
      const auto a = Clk::now();
      auto hit = memory.lookup(kept[i++ % kept.size()]->cacheKey);
      const auto b = Clk::now();
      if (!hit || !*hit) std::abort();
      waits.push_back(std::chrono::duration<double, std::micro>(b - a).count());
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  });
  invalidation::Invalidator invalidator(*index, chain, Clock::system());
  const auto s = Clk::now();
  auto outcome = invalidator.apply(invalidation::Request{index::Criterion::model("gpt-4o"), false});
  const double secs = std::chrono::duration<double>(Clk::now() - s).count();
  done = true;
  hitter.join();
  if (!outcome) {
    std::printf("invalidation failed: %s\n", outcome.error().message.c_str());
    return 1;
  }
  std::sort(waits.begin(), waits.end());
  auto pct = [&](double p) { return waits[std::min(waits.size() - 1, size_t(p * waits.size()))]; };
  std::printf("invalidated %zu of %zu matched in %.2f s\n", outcome->invalidated, outcome->matched,
              secs);
  std::printf("concurrent memory hits: %zu, wait p50 %.1f us, p99 %.1f us, max %.1f us\n",
              waits.size(), pct(0.5), pct(0.99), waits.back());
  size_t left = 0;
  for (size_t i = 0; i < n; i += 997)
    if (auto h = memory.lookup("gpt-4o_" + std::to_string(i)); h && *h) ++left;
  std::printf("sampled doomed entries still in memory: %zu\n", left);
  std::filesystem::remove_all(dir);
  return 0;
}
