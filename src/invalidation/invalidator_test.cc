#include "invalidation/invalidator.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "cache/disk/disk_tier.h"
#include "cache/memory/memory_tier.h"
#include "cache/test_entry.h"
#include "index/test_util.h"

namespace llmcache::invalidation {
namespace {

using namespace std::chrono_literals;
using cache::test::makeTestEntry;

index::IndexOptions manualHits() {
  index::IndexOptions o;
  o.hitFlushInterval = std::chrono::hours(1);
  o.hitFlushBatch = 1'000'000;
  return o;
}

// A MemoryTier and a DiskTier in a chain, the index beside them, four entries stored in all.
class InvalidatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    add("a", "gpt-4o", "gpt-4o:00000000000000a1", {"team-a"}, "tenant-1", 24h * 10);
    add("b", "gpt-4o-mini", "gpt-4o-mini:00000000000000b2", {"eval"}, "tenant-2", 1h);
    add("c", "claude-3-haiku", "claude-3-haiku:00000000000000c3", {"eval", "prod"}, "tenant-1",
        24h * 3);
    add("d", "openai/gpt-4o", "openai/gpt-4o:00000000000000d4", {}, "", 24h * 30);
  }

  void add(std::string name, std::string model, std::string key, std::vector<std::string> tags,
           std::string ns, std::chrono::hours age) {
    cache::Entry e = makeTestEntry(std::move(key), "answer " + name, std::string(32, name[0]));
    e.model = std::move(model);
    e.tags = std::move(tags);
    e.cacheNamespace = std::move(ns);
    e.responseTimestamp = clock_.now() - age;
    e.lastAccessed = e.responseTimestamp;
    store(e);
    entries_[name] = e;
  }
  void store(const cache::Entry& e) {
    for (cache::CacheTier* t : chain_.tiers())
      (void)t->insert(std::make_shared<const cache::Entry>(e));
    ASSERT_TRUE(index_->upsert(e, index::kTierMemory | index::kTierDisk, 100, 200));
  }
  bool inMemory(const cache::Entry& e) { return memory_.lookup(e.cacheKey).value().has_value(); }
  bool onDisk(const cache::Entry& e) { return disk_.lookup(e.cacheKey).value().has_value(); }
  bool servable(const cache::Entry& e) {
    return chain_.lookupFast(e.cacheKey, e.requestHash).has_value();
  }
  bool markedInvalid(const cache::Entry& e) {
    return index_->byCacheId(e.cacheId).value()->invalid;
  }

  // Applies body and checks that exactly `expected` entries went, from every tier, and the
  // others all stayed.
  void expectInvalidates(std::string_view body, std::set<std::string> expected) {
    SCOPED_TRACE(std::string(body));
    auto req = parseRequest(body);
    ASSERT_TRUE(req) << req.error().message;
    auto out = inv_.apply(*req);
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_EQ(out->matched, expected.size());
    EXPECT_EQ(out->invalidated, expected.size());
    EXPECT_FALSE(out->dryRun);
    EXPECT_EQ(out->cacheIds.size(), expected.size());
    for (const auto& [name, e] : entries_) {
      const bool gone = expected.contains(name);
      EXPECT_EQ(inMemory(e), !gone) << name;
      EXPECT_EQ(onDisk(e), !gone) << name;
      EXPECT_EQ(servable(e), !gone) << name;
      EXPECT_EQ(markedInvalid(e), gone) << name;
    }
  }

  FakeClock clock_;
  index::test::TempDir dir_;
  std::unique_ptr<index::Index> index_ =
      index::Index::open(dir_.path() / "index.sqlite", manualHits()).value();
  cache::MemoryTier memory_{{.maxEntries = 100, .shards = 1}};
  cache::DiskTier disk_{{.dir = dir_.path() / "disk"}};
  cache::TieredCache chain_{{.fast = {&memory_, &disk_}, .clock = &clock_}};
  Invalidator inv_{*index_, chain_, clock_};
  std::map<std::string, cache::Entry> entries_;
};

TEST_F(InvalidatorTest, ByModelInvalidatesExactlyThatModel) {
  expectInvalidates(R"({"model":"gpt-4o"})", {"a"});
}

TEST_F(InvalidatorTest, ByAgeInvalidatesEntriesOlderThanTheDuration) {
  expectInvalidates(R"({"older_than":"7d"})", {"a", "d"});
}

TEST_F(InvalidatorTest, ByAgeInvalidatesEntriesOlderThanTheInstant) {
  const std::string body = R"({"older_than":")" + formatIso8601(clock_.now() - 48h) + "\"}";
  expectInvalidates(body, {"a", "c", "d"});
}

TEST_F(InvalidatorTest, ByPatternMatchesCacheKeys) {
  // a's and b's keys start with gpt-4o; d's key and model start with openai/.
  expectInvalidates(R"({"pattern":"gpt-4o*"})", {"a", "b"});
}

TEST_F(InvalidatorTest, ByPatternMatchesModelsToo) {
  // No key ends in "gpt-4o" (keys end in hex); the models of a and d do.
  expectInvalidates(R"({"pattern":"*gpt-4o"})", {"a", "d"});
}

TEST_F(InvalidatorTest, ByPatternWithABracketSet) {
  expectInvalidates(R"({"pattern":"*:00000000000000[bc]?"})", {"b", "c"});
}

TEST_F(InvalidatorTest, ByKeyInvalidatesThatKeyOnly) {
  expectInvalidates(R"({"key":"claude-3-haiku:00000000000000c3"})", {"c"});
}

TEST_F(InvalidatorTest, ByTagInvalidatesEveryEntryCarryingIt) {
  expectInvalidates(R"({"tag":"eval"})", {"b", "c"});
}

TEST_F(InvalidatorTest, ByNamespaceInvalidatesThatTenantOnly) {
  expectInvalidates(R"({"namespace":"tenant-1"})", {"a", "c"});
}

TEST_F(InvalidatorTest, ByCacheIdInvalidatesThatEntry) {
  expectInvalidates(R"({"cache_id":")" + entries_["b"].cacheId + "\"}", {"b"});
}

TEST_F(InvalidatorTest, ACriterionMatchingNothingChangesNothing) {
  expectInvalidates(R"({"model":"gpt-5"})", {});
  expectInvalidates(R"({"namespace":"tenant-9"})", {});
}

TEST_F(InvalidatorTest, InvalidatingTwiceFindsNothingTheSecondTime) {
  expectInvalidates(R"({"tag":"eval"})", {"b", "c"});
  auto again = inv_.apply(parseRequest(std::string_view(R"({"tag":"eval"})")).value());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->matched, 0u);
}

TEST_F(InvalidatorTest, ADryRunCountsButChangesNothing) {
  auto out = inv_.apply(parseRequest(std::string_view(R"({"tag":"eval","dry_run":true})")).value());
  ASSERT_TRUE(out);
  EXPECT_TRUE(out->dryRun);
  EXPECT_EQ(out->matched, 2u);
  EXPECT_EQ(out->invalidated, 0u);
  EXPECT_EQ((std::set<std::string>(out->cacheIds.begin(), out->cacheIds.end())),
            (std::set<std::string>{entries_["b"].cacheId, entries_["c"].cacheId}));
  EXPECT_EQ(inv_.generation(), 0u);
  for (const auto& [name, e] : entries_) {
    EXPECT_TRUE(servable(e)) << name;
    EXPECT_TRUE(onDisk(e)) << name;
    EXPECT_FALSE(markedInvalid(e)) << name;
  }
}

TEST_F(InvalidatorTest, AKeyUnknownToTheIndexIsStillErasedFromTheTiers) {
  cache::Entry orphan = makeTestEntry("gpt-4o:00000000000000ee");
  for (cache::CacheTier* t : chain_.tiers())
    (void)t->insert(std::make_shared<const cache::Entry>(orphan));
  auto out = inv_.apply({Criterion::key(orphan.cacheKey), false});
  ASSERT_TRUE(out);
  EXPECT_EQ(out->matched, 1u);
  EXPECT_EQ(out->invalidated, 0u);
  EXPECT_FALSE(inMemory(orphan));
  EXPECT_FALSE(onDisk(orphan));
}

TEST_F(InvalidatorTest, PurgeExpiredErasesExpiredEntriesFromTiersAndIndex) {
  cache::Entry e = makeTestEntry("gpt-4o:00000000000000ff", "short-lived", std::string(32, 'f'));
  e.responseTimestamp = clock_.now();
  e.expiresAt = clock_.now() + 1min;
  store(e);
  EXPECT_EQ(inv_.purgeExpired(100).value(), 0u);
  clock_.advance(2min);
  EXPECT_EQ(inv_.purgeExpired(100).value(), 1u);
  EXPECT_FALSE(inMemory(e));
  EXPECT_FALSE(onDisk(e));
  EXPECT_FALSE(index_->byCacheId(e.cacheId).value());
  for (const auto& [name, other] : entries_) EXPECT_TRUE(servable(other)) << name;
}

// --- the in-flight miss race
// ----------------------------------------------------------------------

TEST_F(InvalidatorTest, AMatchingInvalidationDuringAMissMarksItsAnswerInvalidated) {
  const uint64_t g = inv_.generation();  // the miss starts
  cache::Entry answer = makeTestEntry("gpt-4o:0000000000000100");
  answer.model = "gpt-4o";
  answer.responseTimestamp = clock_.now();
  ASSERT_TRUE(inv_.apply({Criterion::model("gpt-4o"), false}));  // arrives while it is in flight
  EXPECT_EQ(inv_.generation(), g + 1);
  EXPECT_TRUE(inv_.invalidatedSince(g, answer));
  bool stored = false;
  EXPECT_FALSE(inv_.storeUnlessInvalidated(g, answer, [&] { stored = true; }));
  EXPECT_FALSE(stored);
}

TEST_F(InvalidatorTest, ANonMatchingInvalidationDuringAMissLetsItsAnswerBeStored) {
  const uint64_t g = inv_.generation();
  cache::Entry answer = makeTestEntry("gpt-4o-mini:0000000000000101");
  answer.model = "gpt-4o-mini";
  answer.tags = {"team-b"};
  answer.cacheNamespace = "tenant-3";
  answer.responseTimestamp = clock_.now();
  ASSERT_TRUE(inv_.apply({Criterion::model("gpt-4o"), false}));
  ASSERT_TRUE(inv_.apply({Criterion::tag("eval"), false}));
  ASSERT_TRUE(inv_.apply(
      {Criterion::olderThan(std::chrono::milliseconds(24h)), false}));  // a fresh answer is not old
  ASSERT_TRUE(inv_.apply({Criterion::cacheNamespace("tenant-1"), false}));
  EXPECT_FALSE(inv_.invalidatedSince(g, answer));
  bool stored = false;
  EXPECT_TRUE(inv_.storeUnlessInvalidated(g, answer, [&] { stored = true; }));
  EXPECT_TRUE(stored);
}

TEST_F(InvalidatorTest, AnInvalidationBeforeTheMissStartedDoesNotConcernIt) {
  ASSERT_TRUE(inv_.apply({Criterion::model("gpt-4o"), false}));
  const uint64_t g = inv_.generation();
  cache::Entry answer = makeTestEntry("gpt-4o:0000000000000102");
  answer.model = "gpt-4o";
  EXPECT_FALSE(inv_.invalidatedSince(g, answer));
}

TEST_F(InvalidatorTest, ADryRunDuringAMissDoesNotConcernIt) {
  const uint64_t g = inv_.generation();
  cache::Entry answer = makeTestEntry("gpt-4o:0000000000000103");
  answer.model = "gpt-4o";
  ASSERT_TRUE(inv_.apply({Criterion::model("gpt-4o"), true}));
  EXPECT_FALSE(inv_.invalidatedSince(g, answer));
}

TEST_F(InvalidatorTest, AMissOlderThanTheRememberedHistoryIsTreatedAsInvalidated) {
  Invalidator small(*index_, chain_, clock_, {.history = 2});
  const uint64_t g = small.generation();
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(small.apply({Criterion::model("nothing-" + std::to_string(i)), false}));
  const cache::Entry answer = makeTestEntry("gpt-4o:0000000000000104");
  EXPECT_TRUE(small.invalidatedSince(g, answer));       // invalidation 1 is forgotten: be safe
  EXPECT_FALSE(small.invalidatedSince(g + 1, answer));  // 2 and 3 are remembered and do not match
}

TEST_F(InvalidatorTest, AnInvalidationArrivingDuringAGuardedStoreStillRemovesTheStoredAnswer) {
  const uint64_t g = inv_.generation();
  cache::Entry answer = makeTestEntry("gpt-4o:0000000000000105", "fresh", std::string(32, '5'));
  answer.model = "gpt-4o";
  answer.responseTimestamp = clock_.now();
  std::thread invalidation;
  const bool stored = inv_.storeUnlessInvalidated(g, answer, [&] {
    // The invalidation starts while the store runs: it cannot bump the generation until the
    // store (tier insert and index upsert) is complete, so its index query then finds the row.
    invalidation = std::thread([&] {
      ASSERT_TRUE(inv_.apply({Criterion::model("gpt-4o"), false}));
    });
    store(answer);
  });
  invalidation.join();
  EXPECT_TRUE(stored);
  EXPECT_FALSE(inMemory(answer));
  EXPECT_FALSE(onDisk(answer));
  EXPECT_TRUE(markedInvalid(answer));
  EXPECT_TRUE(
      inv_.invalidatedSince(g, answer));  // a background write of the same answer is skipped
}

// A shared tier holding other gateways' entries: markMatching selects among them as S3Tier does
// (its model folder, then select()), and remembers what it was asked.
class FakeSharedTier : public cache::SharedTier {
 public:
  // With a deadline, a call reads at most perCall entries and says where it stopped (positions are
  // entry indexes, as text), as S3Tier does at its deadline. Thread-safe: the background calls it.
  Result<Marked> markMatching(const Search& search) override {
    std::lock_guard lock(mutex);
    ++searches;
    if (fail) return makeError(Errc::Unavailable, "s3 unreachable");
    lastSearch = search;
    Marked out;
    size_t i = search.startAfter.empty() ? 0 : std::stoul(search.startAfter) + 1;
    for (size_t read = 0; i < entries.size(); ++i) {
      if (search.deadline && read++ == perCall) {
        out.resumeAfter = std::to_string(i - 1);
        break;
      }
      auto& [entry, marked] = entries[i];
      if (marked) continue;
      ++out.scanned;
      if (!search.model.empty() && entry.model != search.model) continue;
      if (search.select && !search.select(entry)) continue;
      ++out.matched;
      out.cacheIds.push_back(entry.cacheId);
      if (!search.dryRun) {
        marked = true;
        ++out.marked;
      }
    }
    return out;
  }
  std::mutex mutex;
  std::vector<std::pair<cache::Entry, bool>> entries;  // entry, marked
  int searches = 0;
  bool fail = false;
  size_t perCall = SIZE_MAX;
  Search lastSearch;
};

class InvalidatorWithSharedTierTest : public InvalidatorTest {
 protected:
  void SetUp() override {
    InvalidatorTest::SetUp();
    // Another gateway's entry of gpt-4o this index never saw, and this gateway's own "a" (its
    // shared copy: the same cache_id, counted once).
    cache::Entry other = makeTestEntry("gpt-4o:00000000000000e5", "answer e", std::string(32, 'e'));
    other.model = "gpt-4o";
    other.responseTimestamp = clock_.now() - 1h;
    shared_.entries = {{other, false}, {entries_["a"], false}};
    inv_.setSharedTier(&shared_);
  }
  FakeSharedTier shared_;
};

TEST_F(InvalidatorWithSharedTierTest, ByModelSearchesTheSharedTierAndCountsEachEntryOnce) {
  auto out = inv_.apply(parseRequest(R"({"model":"gpt-4o"})").value());
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(shared_.lastSearch.model, "gpt-4o");  // one folder, not the whole bucket
  EXPECT_FALSE(shared_.lastSearch.dryRun);
  EXPECT_NE(shared_.lastSearch.reason.find("model=gpt-4o"), std::string::npos);
  EXPECT_TRUE(out->shared.searched);
  EXPECT_EQ(out->shared.matched, 2u);
  EXPECT_EQ(out->matched, 2u);  // "a" (index and shared) + the other gateway's
  EXPECT_EQ(out->invalidated, 2u);
  EXPECT_TRUE(shared_.entries[0].second);
  EXPECT_FALSE(inMemory(entries_["a"]));
}

TEST_F(InvalidatorWithSharedTierTest, AFailedSearchIsReportedAndTheLocalInvalidationStands) {
  shared_.fail = true;
  auto out = inv_.apply(parseRequest(R"({"model":"gpt-4o"})").value());
  ASSERT_TRUE(out);  // the caller still publishes it to the other gateways
  EXPECT_TRUE(out->shared.searched);
  EXPECT_EQ(out->shared.error, "s3 unreachable");
  EXPECT_EQ(out->matched, 1u);
  EXPECT_FALSE(inMemory(entries_["a"]));
  EXPECT_TRUE(markedInvalid(entries_["a"]));
}

TEST_F(InvalidatorWithSharedTierTest, ADryRunCountsTheSharedTierAndMarksNothing) {
  auto out = inv_.apply(parseRequest(R"({"model":"gpt-4o","dry_run":true})").value());
  ASSERT_TRUE(out);
  EXPECT_EQ(out->matched, 2u);
  EXPECT_EQ(out->invalidated, 0u);
  EXPECT_EQ(out->shared.marked, 0u);
  EXPECT_FALSE(shared_.entries[0].second);
  EXPECT_TRUE(inMemory(entries_["a"]));
}

TEST_F(InvalidatorWithSharedTierTest, OtherCriteriaSelectThroughTheSameMatchAsTheIndex) {
  auto out = inv_.apply(parseRequest(R"({"older_than":"2h"})").value());
  ASSERT_TRUE(out);
  EXPECT_TRUE(shared_.lastSearch.model.empty());  // every entry read
  EXPECT_EQ(out->shared.matched, 1u);             // "a"'s shared copy (10 days); e is 1 h old
  EXPECT_EQ(out->matched, 3u);                    // a, c, d: "a" counted once
  EXPECT_FALSE(shared_.entries[0].second);
  out = inv_.apply(parseRequest(R"({"pattern":"gpt-4o:*e5"})").value());
  ASSERT_TRUE(out);
  EXPECT_EQ(out->shared.matched, 1u);
  EXPECT_TRUE(shared_.entries[0].second);
}

TEST_F(InvalidatorWithSharedTierTest, KeyAndCacheIdAndAnotherGatewaysRecordDoNotSearchIt) {
  ASSERT_TRUE(inv_.apply(parseRequest(R"({"key":"gpt-4o:00000000000000e5"})").value()));
  ASSERT_TRUE(inv_.apply(parseRequest(R"({"cache_id":"x"})").value()));
  Request remote = parseRequest(R"({"model":"gpt-4o"})").value();
  remote.searchShared = false;
  ASSERT_TRUE(inv_.apply(remote));
  EXPECT_EQ(shared_.searches, 0);
}

// A bucket-wide search longer than its budget: apply() answers with the part done, the rest goes
// on in the background until every matching entry is marked. A dry run is not continued.
TEST_F(InvalidatorWithSharedTierTest, ASearchBeyondItsBudgetAnswersAndGoesOnInTheBackground) {
  for (int i = 0; i < 20; ++i) {
    cache::Entry e = makeTestEntry("gpt-4o:0000000000000" + std::to_string(100 + i), "answer",
                                   std::string(32, 'f'));
    e.model = i % 2 ? "gpt-4o" : "gpt-4o-mini";
    e.responseTimestamp = clock_.now() - 1h;
    shared_.entries.push_back({e, false});
  }
  shared_.perCall = 3;
  Invalidator inv{*index_,
                  chain_,
                  clock_,
                  {.history = 4096, .sharedBudget = 1ms, .sharedQueue = 1, .sharedSlice = 1ms}};
  inv.setSharedTier(&shared_);
  auto out = inv.apply(parseRequest(R"({"model":"gpt-4o"})").value());
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_TRUE(out->shared.searched);
  EXPECT_FALSE(out->shared.complete);
  EXPECT_TRUE(out->shared.continuing);
  EXPECT_LT(out->shared.marked, 11u);
  ASSERT_TRUE(inv.waitSharedSearches(10s));
  EXPECT_EQ(inv.sharedSearchesPending(), 0u);
  {
    std::lock_guard lock(shared_.mutex);
    for (const auto& [e, marked] : shared_.entries) EXPECT_EQ(marked, e.model == "gpt-4o");
  }
  // A dry run beyond its budget is not continued: it reports a partial count.
  auto dry = inv.apply(parseRequest(R"({"model":"gpt-4o-mini","dry_run":true})").value());
  ASSERT_TRUE(dry);
  EXPECT_FALSE(dry->shared.complete);
  EXPECT_FALSE(dry->shared.continuing);
  EXPECT_EQ(inv.sharedSearchesPending(), 0u);
}

TEST_F(InvalidatorTest, AnEntryOlderThanAnAppliedInvalidationIsCondemnedANewerOneIsNot) {
  cache::Entry old = makeTestEntry("gpt-4o:00000000000000f6", "answer f", std::string(32, 'f'));
  old.model = "gpt-4o";
  old.responseTimestamp = clock_.now() - 1min;
  cache::Entry other = old;
  other.model = "gpt-4o-mini";
  EXPECT_FALSE(inv_.condemns(old));
  ASSERT_TRUE(inv_.apply(parseRequest(R"({"model":"gpt-4o"})").value()));
  EXPECT_TRUE(inv_.condemns(old));     // e.g. found unmarked in S3: not served, not promoted
  EXPECT_FALSE(inv_.condemns(other));  // not selected
  clock_.advance(1s);
  cache::Entry fresh = old;
  fresh.responseTimestamp = clock_.now();  // stored after the invalidation
  EXPECT_FALSE(inv_.condemns(fresh));
}

TEST_F(InvalidatorTest, ARemoteRecordCondemnsEntriesOlderThanItsCreationNotItsArrival) {
  Request remote = parseRequest(R"({"model":"gpt-4o"})").value();
  remote.issuedAt = clock_.now() - 10s;  // created on another gateway 10 s ago
  remote.searchShared = false;
  ASSERT_TRUE(inv_.apply(remote));
  cache::Entry e = makeTestEntry("gpt-4o:00000000000000f7", "answer", std::string(32, '7'));
  e.model = "gpt-4o";
  e.responseTimestamp = clock_.now() - 20s;
  EXPECT_TRUE(inv_.condemns(e));
  e.responseTimestamp = clock_.now() - 5s;  // stored after the record was created
  EXPECT_FALSE(inv_.condemns(e));
}

}  // namespace
}  // namespace llmcache::invalidation
