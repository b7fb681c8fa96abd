#include "analytics/outcome.h"

#include <gtest/gtest.h>

#include <set>

namespace llmcache::analytics {
namespace {

TEST(Outcome, EveryNameParsesBackToItsOutcome) {
  std::set<std::string_view> names;
  for (size_t i = 0; i < kOutcomeCount; ++i) {
    const Outcome o = kOutcomes[i];
    EXPECT_EQ(static_cast<size_t>(o), i) << "kOutcomes is in enum order";
    const std::string_view name = outcomeName(o);
    EXPECT_NE(name, "UNKNOWN");
    EXPECT_EQ(parseOutcome(name), o) << name;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), kOutcomeCount);  // distinct
  // Past the last enumerator there is none.
  EXPECT_EQ(outcomeName(static_cast<Outcome>(kOutcomeCount)), "UNKNOWN");
}

TEST(Outcome, TheNamesAreTheStatusHeaderValues) {
  // x-llmcache-status and the events table's `outcome` (persistent: docs/index-schema.md).
  EXPECT_EQ(outcomeName(Outcome::Hit), "HIT");
  EXPECT_EQ(outcomeName(Outcome::Miss), "MISS");
  EXPECT_EQ(outcomeName(Outcome::Coalesced), "COALESCED");
  EXPECT_EQ(outcomeName(Outcome::Refresh), "REFRESH");
  EXPECT_EQ(outcomeName(Outcome::NoStore), "NO-STORE");
  EXPECT_EQ(outcomeName(Outcome::Bypass), "BYPASS");
  EXPECT_EQ(outcomeName(Outcome::Uncacheable), "UNCACHEABLE");
  EXPECT_EQ(outcomeName(Outcome::Invalid), "INVALID");
  static_assert(outcomeName(Outcome::NoStore) == "NO-STORE");  // usable at compile time
}

TEST(Outcome, OnlyExactNamesParse) {
  for (std::string_view bad : {"", "hit", "Hit", " HIT", "HIT ", "NOSTORE", "NO_STORE", "UNKNOWN"})
    EXPECT_EQ(parseOutcome(bad), std::nullopt) << '"' << bad << '"';
}

TEST(Outcome, ThePredicatesSplitTheCacheableRequestsIntoHitsMissesAndCoalesced) {
  std::set<Outcome> cacheable, misses, saving;
  for (const Outcome o : kOutcomes) {
    if (isCacheable(o)) cacheable.insert(o);
    if (isMiss(o)) misses.insert(o);
    if (savesUpstreamCall(o)) saving.insert(o);
  }
  EXPECT_EQ(cacheable,
            (std::set<Outcome>{Outcome::Hit, Outcome::Miss, Outcome::Coalesced, Outcome::Refresh,
                               Outcome::NoStore, Outcome::Uncacheable}));
  EXPECT_EQ(misses, (std::set<Outcome>{Outcome::Miss, Outcome::Refresh, Outcome::NoStore,
                                       Outcome::Uncacheable}));
  EXPECT_EQ(saving, (std::set<Outcome>{Outcome::Hit, Outcome::Coalesced}));
  // Every cacheable request is exactly one of hit, coalesced, miss.
  for (const Outcome o : cacheable)
    EXPECT_EQ((o == Outcome::Hit) + (o == Outcome::Coalesced) + isMiss(o), 1) << outcomeName(o);
}

TEST(Outcome, SqlComesFromTheNames) {
  EXPECT_EQ(sqlOutcome(Outcome::Hit), "'HIT'");
  EXPECT_EQ(sqlOutcome(Outcome::NoStore), "'NO-STORE'");
  EXPECT_EQ(sqlOutcomeList([](Outcome o) { return !isCacheable(o); }), "('BYPASS','INVALID')");
  EXPECT_EQ(sqlOutcomeList(isMiss), "('MISS','REFRESH','NO-STORE','UNCACHEABLE')");
  EXPECT_EQ(sqlOutcomeList([](Outcome) { return false; }), "(NULL)");
}

}  // namespace
}  // namespace llmcache::analytics
