#pragma once
// The conformance suite every CacheTier passes (memory, disk, S3). Include this header
// in exactly one test file per tier and instantiate it:
//
//   INSTANTIATE_TEST_SUITE_P(Memory, CacheTierConformance,
//                            ::testing::Values(memoryFactory()), tierFactoryName);
//
// Optional factory hooks that a tier cannot provide make their cases GTEST_SKIP with the reason.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cache/test_entry.h"
#include "cache/tier.h"

namespace llmcache::cache::test {

struct TierFactory {
  std::string name;  // test name suffix: [A-Za-z0-9_] only
  // A fresh, empty tier with room for at least a few dozen entries and a 5 MB one.
  std::function<std::unique_ptr<CacheTier>()> make;
  // A fresh, empty tier holding at most maxEntries, with exact LRU eviction across all keys
  // (lruOrder) or another eviction policy's (cache/eviction.h: only the bound and the survival
  // of the entry just stored are checked). Empty: the tier has no entry bound (the eviction
  // case is skipped).
  std::function<std::unique_ptr<CacheTier>(size_t maxEntries)> makeBounded;
  bool lruOrder = true;
  // A second instance over the storage of the last tier make() returned, as after a restart.
  // The suite destroys the first instance before calling it. Empty: not persistent.
  std::function<std::unique_ptr<CacheTier>()> reopen;
  // Damages the stored bytes of key in the last tier make() returned. Empty: the tier stores no
  // bytes that could rot (the corrupt case is skipped).
  std::function<void(std::string_view key)> corrupt;
  // Called after each case: remove temp dirs, buckets, ...
  std::function<void()> cleanup;
};

inline std::string tierFactoryName(const ::testing::TestParamInfo<TierFactory>& info) {
  return info.param.name;
}

class CacheTierConformance : public ::testing::TestWithParam<TierFactory> {
 protected:
  void SetUp() override { tier_ = GetParam().make(); }
  void TearDown() override {
    tier_.reset();
    if (GetParam().cleanup) GetParam().cleanup();
  }

  static EntryPtr entry(std::string key, std::string content = "Hello!") {
    return std::make_shared<const Entry>(makeTestEntry(std::move(key), std::move(content)));
  }
  std::optional<EntryPtr> get(CacheTier& tier, std::string_view key) {
    auto r = tier.lookup(key);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? *r : std::nullopt;
  }
  std::optional<EntryPtr> get(std::string_view key) { return get(*tier_, key); }
  void put(CacheTier& tier, EntryPtr e) {
    auto r = tier.insert(std::move(e));
    ASSERT_TRUE(r) << r.error().message;
  }
  void put(EntryPtr e) { put(*tier_, std::move(e)); }
  // What a lookup must give back for an inserted entry: the same, less the request text when the
  // tier does not keep it.
  static Entry asStored(const CacheTier& tier, const Entry& e) {
    Entry stored = e;
    if (!tier.keepsRequest()) stored.request.clear();
    return stored;
  }

  std::unique_ptr<CacheTier> tier_;
};

TEST_P(CacheTierConformance, InsertedEntryIsFoundWhole) {
  auto e = entry("gpt-4o-mini:00112233aabbccdd");
  put(e);
  auto found = get(e->cacheKey);
  ASSERT_TRUE(found);
  EXPECT_EQ(**found, asStored(*tier_, *e));
}

TEST_P(CacheTierConformance, AbsentKeyIsAMiss) {
  EXPECT_FALSE(get("gpt-4o-mini:ffffffffffffffff"));
  put(entry("gpt-4o-mini:0000000000000001"));
  EXPECT_FALSE(get("gpt-4o-mini:0000000000000002"));
}

TEST_P(CacheTierConformance, InsertReplacesTheEntryUnderItsKey) {
  put(entry("k:01", "first"));
  auto second = entry("k:01", "second");
  put(second);
  auto found = get("k:01");
  ASSERT_TRUE(found);
  EXPECT_EQ(**found, asStored(*tier_, *second));
}

TEST_P(CacheTierConformance, DistinctKeysKeepTheirOwnEntries) {
  std::vector<EntryPtr> entries;
  for (int i = 0; i < 10; ++i)
    entries.push_back(entry("k:" + std::to_string(i), "answer " + std::to_string(i)));
  for (auto& e : entries) put(e);
  for (auto& e : entries) {
    auto found = get(e->cacheKey);
    ASSERT_TRUE(found) << e->cacheKey;
    EXPECT_EQ(**found, asStored(*tier_, *e));
  }
}

TEST_P(CacheTierConformance, EraseRemovesTheEntryAndReportsWhetherOneWasThere) {
  put(entry("k:01"));
  put(entry("k:02"));
  auto erased = tier_->erase("k:01");
  ASSERT_TRUE(erased);
  EXPECT_TRUE(*erased);
  EXPECT_FALSE(get("k:01"));
  EXPECT_TRUE(get("k:02"));
  auto again = tier_->erase("k:01");
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
}

TEST_P(CacheTierConformance, LargeEntryRoundTrips) {
  std::string big;
  big.reserve(5 << 20);
  // Varied text so that compression cannot shrink the test to nothing.
  for (uint32_t x = 1; big.size() < (5u << 20);) {
    x = x * 1664525u + 1013904223u;
    big.push_back(static_cast<char>('a' + (x >> 24) % 26));
    if ((x & 0xff) == 7) big += " \u00e9\n\"quoted\"\t";
  }
  auto e = entry("k:big", big);
  put(e);
  auto found = get("k:big");
  ASSERT_TRUE(found);
  EXPECT_EQ(**found, asStored(*tier_, *e));
}

TEST_P(CacheTierConformance, CorruptStoredEntryIsAMissAndIsRemoved) {
  if (!GetParam().corrupt) GTEST_SKIP() << "this tier stores live objects, not bytes that can rot";
  put(entry("k:01"));
  put(entry("k:02"));
  GetParam().corrupt("k:01");
  EXPECT_FALSE(get("k:01"));
  EXPECT_FALSE(get("k:01"));
  EXPECT_TRUE(get("k:02"));
  // The tier removed the corrupt entry, so the key is usable again.
  auto fresh = entry("k:01", "fresh");
  put(fresh);
  auto found = get("k:01");
  ASSERT_TRUE(found);
  EXPECT_EQ(**found, asStored(*tier_, *fresh));
}

TEST_P(CacheTierConformance, ConcurrentInsertsOfOneKeyLeaveOneWholeEntry) {
  constexpr int kWriters = 8;
  constexpr int kPerWriter = 6;
  std::vector<EntryPtr> inserted;
  for (int i = 0; i < kWriters * kPerWriter; ++i)
    inserted.push_back(
        entry("k:shared", "answer number " + std::to_string(i) + std::string(i * 100, 'x')));
  auto isOneOfThem = [&](const Entry& e) {
    for (auto& x : inserted)
      if (asStored(*tier_, *x) == e) return true;
    return false;
  };

  std::atomic<bool> done{false};
  std::atomic<int> torn{0}, errors{0};
  std::thread reader([&] {
    while (!done) {
      auto r = tier_->lookup("k:shared");
      if (!r)
        ++errors;
      else if (*r && !isOneOfThem(***r))
        ++torn;
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w)
    writers.emplace_back([&, w] {
      for (int i = 0; i < kPerWriter; ++i)
        if (!tier_->insert(inserted[w * kPerWriter + i])) ++errors;
    });
  for (auto& t : writers) t.join();
  done = true;
  reader.join();

  EXPECT_EQ(errors, 0);
  EXPECT_EQ(torn, 0);
  auto found = get("k:shared");
  ASSERT_TRUE(found);
  EXPECT_TRUE(isOneOfThem(**found));
}

TEST_P(CacheTierConformance, EvictsTheLeastRecentlyUsedAtTheEntryBound) {
  if (!GetParam().makeBounded) GTEST_SKIP() << "this tier has no entry bound";
  if (!GetParam().lruOrder) GTEST_SKIP() << "this tier's policy is not LRU (next case)";
  auto tier = GetParam().makeBounded(4);
  for (int i = 0; i < 4; ++i) put(*tier, entry("k:" + std::to_string(i)));
  ASSERT_TRUE(get(*tier, "k:0"));  // k:0 becomes the most recently used; k:1 is now the oldest
  put(*tier, entry("k:4"));
  put(*tier, entry("k:5"));
  EXPECT_FALSE(get(*tier, "k:1"));
  EXPECT_FALSE(get(*tier, "k:2"));
  for (const char* key : {"k:0", "k:3", "k:4", "k:5"}) EXPECT_TRUE(get(*tier, key)) << key;
}

TEST_P(CacheTierConformance, KeepsToTheEntryBoundWithAnyPolicy) {
  if (!GetParam().makeBounded) GTEST_SKIP() << "this tier has no entry bound";
  auto tier = GetParam().makeBounded(4);
  for (int i = 0; i < 4; ++i) put(*tier, entry("k:" + std::to_string(i)));
  ASSERT_TRUE(get(*tier, "k:0"));
  for (int i = 4; i < 10; ++i) {
    put(*tier, entry("k:" + std::to_string(i)));
    EXPECT_TRUE(get(*tier, "k:" + std::to_string(i))) << "the entry just stored stays";
  }
  int found = 0;
  for (int i = 0; i < 10; ++i) found += get(*tier, "k:" + std::to_string(i)).has_value();
  EXPECT_EQ(found, 4);
}

TEST_P(CacheTierConformance, EntriesSurviveReopening) {
  if (!GetParam().reopen) GTEST_SKIP() << "this tier is not persistent";
  auto a = entry("k:a", "kept a");
  auto b = entry("k:b", "kept b");
  put(a);
  put(b);
  ASSERT_TRUE(tier_->erase("k:b"));
  tier_.reset();
  tier_ = GetParam().reopen();
  auto found = get("k:a");
  ASSERT_TRUE(found);
  EXPECT_EQ(**found, asStored(*tier_, *a));
  EXPECT_FALSE(get("k:b"));
}

}  // namespace llmcache::cache::test
