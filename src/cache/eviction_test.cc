#include "cache/eviction.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace llmcache::cache {
namespace {

// Evicts n victims in turn, removing each, and returns them.
std::vector<uint32_t> evict(EvictionPolicy& p, int n) {
  std::vector<uint32_t> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(p.victim());
    p.onRemove(out.back());
  }
  return out;
}

TEST(Eviction, NamesParseAndDefaultIsAPolicy) {
  for (PolicyKind k : kAllPolicies) EXPECT_EQ(parsePolicy(policyName(k)), k);
  EXPECT_EQ(parsePolicy("default"), kDefaultPolicy);
  EXPECT_FALSE(parsePolicy("LRU"));
  EXPECT_FALSE(parsePolicy("arc"));
  EXPECT_EQ(policyNames(), "lru, sieve, gdsf, default");
}

TEST(Eviction, LruEvictsTheLeastRecentlyUsed) {
  auto p = makePolicy(PolicyKind::Lru);
  for (uint32_t id : {0u, 1u, 2u, 3u}) p->onInsert(id, 100, 0.01);
  p->onHit(0);  // order, newest first: 0 3 2 1
  EXPECT_EQ(p->victim(3), 1u);
  EXPECT_EQ(p->victim(1), 2u);  // sparing the oldest gives the next
  EXPECT_EQ(evict(*p, 3), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(p->size(), 1u);
}

TEST(Eviction, LruColdInsertsGoFirst) {
  auto p = makePolicy(PolicyKind::Lru);
  p->onInsert(0, 100, 0.01);
  p->onInsert(1, 100, 0.01, /*cold=*/true);  // newest of the cold ones first
  p->onInsert(2, 100, 0.01, /*cold=*/true);
  EXPECT_EQ(evict(*p, 3), (std::vector<uint32_t>{2, 1, 0}));
}

TEST(Eviction, SieveKeepsVisitedEntriesAndMovesItsHand) {
  auto p = makePolicy(PolicyKind::Sieve);
  for (uint32_t id : {0u, 1u, 2u}) p->onInsert(id, 100, 0.01);  // FIFO, oldest first: 0 1 2
  p->onHit(0);
  // The hand starts at 0 (visited: cleared, passed), evicts 1, then goes on toward the head.
  EXPECT_EQ(evict(*p, 1), (std::vector<uint32_t>{1}));
  p->onInsert(3, 100, 0.01);
  EXPECT_EQ(evict(*p, 1), (std::vector<uint32_t>{2}));
  p->onHit(0);
  // The hand is at 3 (unvisited): 3 goes before 0, whose bit is set again.
  EXPECT_EQ(evict(*p, 2), (std::vector<uint32_t>{3, 0}));
}

TEST(Eviction, SieveNeverPicksTheSparedEntry) {
  auto p = makePolicy(PolicyKind::Sieve);
  p->onInsert(0, 100, 0.01);
  p->onInsert(1, 100, 0.01);
  p->onHit(1);
  EXPECT_EQ(p->victim(0), 1u);
}

TEST(Eviction, GdsfEvictsTheLeastMoneyPerByte) {
  auto p = makePolicy(PolicyKind::Gdsf);
  p->onInsert(0, 100, 1.0);   // 0.01 $/byte
  p->onInsert(1, 100, 0.1);   // 0.001
  p->onInsert(2, 1000, 1.0);  // 0.001: a tie with 1, which is older
  EXPECT_EQ(evict(*p, 2), (std::vector<uint32_t>{1, 2}));
  // Inflation is now 0.001: 3 enters at 0.001 + 0.005, below 0's 0.01; two hits lift it to
  // (inflation) + 3 * 0.005, above.
  p->onInsert(3, 100, 0.5);
  EXPECT_EQ(p->victim(), 3u);
  p->onHit(3);
  p->onHit(3);
  EXPECT_EQ(evict(*p, 2), (std::vector<uint32_t>{0, 3}));
}

TEST(Eviction, GdsfValuesAnUnknownCostBySize) {
  auto p = makePolicy(PolicyKind::Gdsf);
  p->onInsert(0, 100, 0);  // unknown: kFallbackDollarsPerByte
  p->onInsert(1, 100, 100 * kFallbackDollarsPerByte * 2);
  p->onInsert(2, 100, 100 * kFallbackDollarsPerByte / 2);
  EXPECT_EQ(evict(*p, 3), (std::vector<uint32_t>{2, 0, 1}));
}

TEST(Eviction, GdsfSparesTheNewEntryEvenWhenItIsWorthLeast) {
  auto p = makePolicy(PolicyKind::Gdsf);
  p->onInsert(0, 100, 1.0);
  p->onInsert(1, 100, 2.0);
  p->onInsert(2, 100, 0.001);
  EXPECT_EQ(p->victim(2), 0u);
}

// Random inserts, hits, removals and evictions: every victim is held and not the spared id.
TEST(Eviction, EveryPolicyOnlyEverNamesHeldEntries) {
  for (PolicyKind k : kAllPolicies) {
    auto p = makePolicy(k);
    std::mt19937_64 rng(7);
    std::set<uint32_t> held;
    for (int step = 0; step < 20000; ++step) {
      const uint32_t id = static_cast<uint32_t>(rng() % 64);
      const int op = static_cast<int>(rng() % 4);
      if (!held.count(id)) {
        p->onInsert(id, 1 + rng() % 5000, (rng() % 100) * 1e-4, rng() % 8 == 0);
        held.insert(id);
      } else if (op == 0) {
        p->onRemove(id);
        held.erase(id);
      } else if (op == 1) {
        p->onUpdate(id, 1 + rng() % 5000, (rng() % 100) * 1e-4);
      } else if (op == 2 && held.size() > 1) {
        const uint32_t v = p->victim(id);
        ASSERT_TRUE(held.count(v)) << policyName(k);
        ASSERT_NE(v, id) << policyName(k);
        p->onRemove(v);
        held.erase(v);
      } else {
        p->onHit(id);
      }
      ASSERT_EQ(p->size(), held.size()) << policyName(k);
    }
  }
}

}  // namespace
}  // namespace llmcache::cache
