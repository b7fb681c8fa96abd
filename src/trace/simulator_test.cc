#include "trace/simulator.h"

#include <gtest/gtest.h>

namespace llmcache::trace {
namespace {

using cache::PolicyKind;

std::vector<TraceEvent> trace(const std::string& keys) {
  std::vector<TraceEvent> out;
  int64_t t = 0;
  for (char k : keys) {
    const int v = k - 'A' + 1;  // A costs $1 and 10 ms, B $2 and 20 ms, ...
    out.push_back(TraceEvent{++t, std::string(1, k), 100, double(v), 10.0 * v, "", ""});
  }
  return out;
}

// Memory holds 2 entries, disk 3, both LRU. By hand:
//   A miss; B miss; A memory hit; C miss (memory drops B); B disk hit, promoted (memory drops A);
//   D miss (memory drops C, disk drops A); A miss (memory drops B, disk drops C);
//   C miss (memory drops D, disk drops B).
TEST(Simulator, CountsHitsOfATinyTraceAsWorkedOutByHand) {
  auto r = simulate(trace("ABACBDAC"), {PolicyKind::Lru, PolicyKind::Lru, 200, 300});
  EXPECT_EQ(r.requests, 8u);
  EXPECT_EQ(r.memoryHits, 1u);
  EXPECT_EQ(r.diskHits, 1u);
  EXPECT_EQ(r.hits, 2u);
  EXPECT_DOUBLE_EQ(r.hitRate(), 0.25);
  EXPECT_EQ(r.bytesHit, 200u);
  EXPECT_DOUBLE_EQ(r.costSaved, 3);  // A and B
  EXPECT_DOUBLE_EQ(r.costTotal, 1 + 2 + 1 + 3 + 2 + 4 + 1 + 3);
  EXPECT_DOUBLE_EQ(r.latencySavedMs, 30);
  EXPECT_EQ(r.memoryEvictions, 5u);
  EXPECT_EQ(r.diskEvictions, 3u);
}

// One tier of 2 entries (no disk): GDSF keeps the expensive D over the recent cheap ones.
TEST(Simulator, CostAwarePolicyKeepsTheExpensiveEntry) {
  const auto t = trace("DABDCAD");
  auto lru = simulate(t, {PolicyKind::Lru, PolicyKind::Lru, 200, 0});
  auto gdsf = simulate(t, {PolicyKind::Gdsf, PolicyKind::Lru, 200, 0});
  // LRU: D A B(drops D) D(miss, drops A) C(drops B) A(miss) D(miss): no hit.
  EXPECT_EQ(lru.hits, 0u);
  // GDSF: D stays throughout: its two repeats hit, $4 each.
  EXPECT_EQ(gdsf.hits, 2u);
  EXPECT_DOUBLE_EQ(gdsf.costSaved, 8);
}

TEST(Simulator, AnEntryLargerThanATierIsNotStoredThere) {
  std::vector<TraceEvent> t = trace("AA");
  for (auto& e : t) e.bytes = 500;
  auto r = simulate(t, {PolicyKind::Lru, PolicyKind::Lru, 200, 1000});
  EXPECT_EQ(r.memoryHits, 0u);
  EXPECT_EQ(r.diskHits, 1u);
}

}  // namespace
}  // namespace llmcache::trace
