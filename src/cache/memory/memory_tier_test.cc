#include "cache/memory/memory_tier.h"

#include <gtest/gtest.h>

#include "cache/test_entry.h"
#include "cache/tier_conformance.h"

namespace llmcache::cache {
namespace {

using test::CacheTierConformance;
using test::makeTestEntry;
using test::TierFactory;

TierFactory memoryFactory(std::string name, PolicyKind policy) {
  TierFactory f;
  f.name = std::move(name);
  f.make = [policy] { return std::make_unique<MemoryTier>(MemoryTierOptions{.policy = policy}); };
  // One shard: the policy's order is per shard, and the suite checks exact global LRU.
  f.makeBounded = [policy](size_t n) {
    return std::make_unique<MemoryTier>(
        MemoryTierOptions{.maxEntries = n, .shards = 1, .policy = policy});
  };
  f.lruOrder = policy == PolicyKind::Lru;
  return f;
}

INSTANTIATE_TEST_SUITE_P(Memory, CacheTierConformance,
                         ::testing::Values(memoryFactory("Memory", PolicyKind::Lru),
                                           memoryFactory("Sieve", PolicyKind::Sieve),
                                           memoryFactory("Gdsf", PolicyKind::Gdsf),
                                           memoryFactory("CostSieve", PolicyKind::CostSieve)),
                         test::tierFactoryName);

EntryPtr entry(std::string key, std::string content = "Hello!") {
  return std::make_shared<const Entry>(makeTestEntry(std::move(key), std::move(content)));
}

EntryPtr withoutRequest(std::string key, std::string content = "Hello!") {
  Entry e = makeTestEntry(std::move(key), std::move(content));
  e.request.clear();
  return std::make_shared<const Entry>(std::move(e));
}

TEST(MemoryTier, DropsTheRequestTextAndKeepsTheRest) {
  MemoryTier tier;
  auto e = entry("k:1");
  ASSERT_FALSE(e->request.empty());
  ASSERT_TRUE(tier.insert(e));
  auto found = tier.lookup("k:1");
  ASSERT_TRUE(found && *found);
  EXPECT_TRUE((**found)->request.empty());
  Entry expected = *e;
  expected.request.clear();
  EXPECT_EQ(***found, expected);
  EXPECT_FALSE(e->request.empty());  // the caller's entry (bound for disk and S3) is untouched
}

TEST(MemoryTier, EntryBoundHoldsInTotalAcrossShards) {
  MemoryTier tier(MemoryTierOptions{.maxEntries = 100, .shards = 8});
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(tier.insert(entry("k:" + std::to_string(i))));
  EXPECT_LE(tier.entryCount(), 100u);
  EXPECT_GE(tier.entryCount(), 80u);  // every shard fills up to its share with 1000 random keys
  EXPECT_EQ(tier.evictions(), 1000u - tier.entryCount());
}

TEST(MemoryTier, MoreShardsThanEntriesStillStoresEveryEntry) {
  MemoryTier tier(MemoryTierOptions{.maxEntries = 3, .shards = 8});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(tier.insert(entry("k:" + std::to_string(i))));
  EXPECT_EQ(tier.entryCount(), 3u);
  ASSERT_TRUE(tier.insert(entry("k:3")));
  EXPECT_EQ(tier.entryCount(), 3u);
}

TEST(MemoryTier, ByteBoundEvictsTheLeastRecentlyUsed) {
  const size_t one = MemoryTier::chargedBytes(*withoutRequest("k:0", std::string(10000, 'x')));
  MemoryTier tier(MemoryTierOptions{.maxEntries = 100, .maxBytes = 3 * one + one / 2, .shards = 1});
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(tier.insert(withoutRequest("k:" + std::to_string(i), std::string(10000, 'x'))));
  ASSERT_TRUE(*tier.lookup("k:0"));
  ASSERT_TRUE(tier.insert(withoutRequest("k:3", std::string(10000, 'x'))));
  EXPECT_EQ(tier.entryCount(), 3u);
  EXPECT_LE(tier.byteCount(), 3 * one + one / 2);
  EXPECT_FALSE(*tier.lookup("k:1"));
  EXPECT_TRUE(*tier.lookup("k:0"));
}

TEST(MemoryTier, TheEvictionListenerHearsEveryVictimButNotAnErase) {
  MemoryTier tier(MemoryTierOptions{.maxEntries = 2, .shards = 1});
  std::vector<std::string> heard;
  tier.setEvictionListener([&](std::string_view key) { heard.emplace_back(key); });
  ASSERT_TRUE(tier.insert(entry("k:0")));
  ASSERT_TRUE(tier.insert(entry("k:1")));
  ASSERT_TRUE(tier.insert(entry("k:1", "replaced")));  // a replacement is no eviction
  ASSERT_TRUE(*tier.erase("k:1"));                     // nor an erase
  EXPECT_TRUE(heard.empty());
  ASSERT_TRUE(tier.insert(entry("k:2")));
  ASSERT_TRUE(tier.insert(entry("k:3")));  // evicts k:0
  ASSERT_TRUE(tier.insert(entry("k:4")));  // evicts k:2
  EXPECT_EQ(heard, (std::vector<std::string>{"k:0", "k:2"}));
}

TEST(MemoryTier, EntryLargerThanTheByteBoundIsRefusedAndEvictsNothing) {
  MemoryTier tier(MemoryTierOptions{.maxEntries = 10, .maxBytes = 64 * 1024, .shards = 1});
  ASSERT_TRUE(tier.insert(entry("k:small")));
  auto r = tier.insert(entry("k:huge", std::string(100 * 1024, 'x')));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::TooLarge);
  EXPECT_TRUE(*tier.lookup("k:small"));
  EXPECT_FALSE(*tier.lookup("k:huge"));
}

TEST(MemoryTier, OverwriteAdjustsTheByteCount) {
  MemoryTier tier;
  ASSERT_TRUE(tier.insert(entry("k:1", std::string(50000, 'x'))));
  const size_t big = tier.byteCount();
  ASSERT_TRUE(tier.insert(entry("k:1", "small")));
  EXPECT_LT(tier.byteCount(), big);
  ASSERT_TRUE(tier.erase("k:1"));
  EXPECT_EQ(tier.byteCount(), 0u);
  EXPECT_EQ(tier.entryCount(), 0u);
}

}  // namespace
}  // namespace llmcache::cache
