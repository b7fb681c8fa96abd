#include "index/tier_observer.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "cache/test_entry.h"
#include "index/test_util.h"

namespace llmcache::index {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using cache::TierEvent;
using cache::TierId;
using cache::test::makeTestEntry;
using Kind = TierEvent::Kind;

// Hits are written only on flush(); a busy database is an error at once (the failure test).
IndexOptions testOptions() {
  IndexOptions o;
  o.hitFlushInterval = std::chrono::hours(1);
  o.hitFlushBatch = 1'000'000;
  o.busyTimeout = std::chrono::milliseconds(10);
  return o;
}

class IndexObserverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = Index::open(path_, testOptions());
    ASSERT_TRUE(r) << r.error().message;
    index_ = std::move(*r);
    observer_.emplace(*index_, clock_);
  }

  void stored(const cache::Entry& e, TierId tier, const cache::StoreNote* note = nullptr) {
    observer_->onTierEvent(TierEvent{
        .kind = Kind::Stored, .tier = tier, .cacheKey = e.cacheKey, .entry = &e, .note = note});
  }

  Row row(const cache::Entry& e) {
    auto r = index_->byCacheId(e.cacheId);
    EXPECT_TRUE(r && *r) << "no row for " << e.cacheId;
    return r && *r ? **r : Row{};
  }

  // prompt_simhash and prompt_preview of the rows under cacheKey (not part of Row).
  std::vector<SqlValue> promptSignature(std::string_view cacheKey) {
    std::vector<SqlValue> got;
    auto r = index_->query(
        "SELECT prompt_simhash, prompt_preview FROM entries WHERE cache_key = ?1",
        {std::string(cacheKey)}, [&](const std::vector<SqlValue>& columns) { got = columns; });
    EXPECT_TRUE(r) << r.error().message;
    return got;
  }

  test::TempDir dir_;
  fs::path path_ = Index::defaultPath(dir_.path());
  FakeClock clock_;
  std::unique_ptr<Index> index_;
  std::optional<IndexObserver> observer_;
};

TEST_F(IndexObserverTest, AStoredEventUpsertsARowWithThatTiersBit) {
  const cache::Entry e = makeTestEntry("gpt-4o-mini:0000000000000001");
  stored(e, TierId::Disk);
  const Row r = row(e);
  EXPECT_EQ(r.cacheKey, e.cacheKey);
  EXPECT_EQ(r.tiers, kTierDisk);
  EXPECT_EQ(r.sizeRaw, static_cast<int64_t>(e.approxBytes()));
  EXPECT_EQ(observer_->failures(), 0u);
}

TEST_F(IndexObserverTest, EachTiersStoreAddsItsBitToTheSameRow) {
  const cache::Entry e = makeTestEntry("gpt-4o-mini:0000000000000002");
  stored(e, TierId::Memory);
  stored(e, TierId::S3);
  EXPECT_EQ(row(e).tiers, kTierMemory | kTierS3);
}

TEST_F(IndexObserverTest, APromotedEventAddsTheTierItWasFoundInAsWellAsTheNewOne) {
  const cache::Entry e = makeTestEntry("gpt-4o-mini:0000000000000003");
  observer_->onTierEvent(TierEvent{.kind = Kind::Promoted,
                                   .tier = TierId::Memory,
                                   .cacheKey = e.cacheKey,
                                   .entry = &e,
                                   .source = TierId::S3});
  EXPECT_EQ(row(e).tiers, kTierMemory | kTierS3);
}

TEST_F(IndexObserverTest, AStoresNoteGivesTheRowItsPromptSignature) {
  const cache::Entry e = makeTestEntry("gpt-4o-mini:0000000000000004");
  const cache::StoreNote note{.promptSimhash = 0xF000000000000001ull, .promptPreview = "Hi"};
  stored(e, TierId::Memory, &note);
  const auto got = promptSignature(e.cacheKey);
  ASSERT_EQ(got.size(), 2u);
  ASSERT_TRUE(std::holds_alternative<int64_t>(got[0]));
  EXPECT_EQ(static_cast<uint64_t>(std::get<int64_t>(got[0])), 0xF000000000000001ull);
  EXPECT_EQ(std::get<std::string>(got[1]), "Hi");
}

TEST_F(IndexObserverTest, ANoteWithoutASimhashLeavesTheSignatureUnset) {
  const cache::Entry e = makeTestEntry("gpt-4o-mini:0000000000000005");
  const cache::StoreNote note{.promptSimhash = 0, .promptPreview = "Hi"};
  stored(e, TierId::Memory, &note);
  const auto got = promptSignature(e.cacheKey);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(got[0]));
}

TEST_F(IndexObserverTest, AHitEventCountsAHitAtTheClocksTime) {
  const cache::Entry e = makeTestEntry("gpt-4o-mini:0000000000000006");
  stored(e, TierId::Memory);
  clock_.advance(1h);  // later than the entry's own last access
  observer_->onTierEvent(
      TierEvent{.kind = Kind::Hit, .tier = TierId::Memory, .cacheKey = e.cacheKey, .entry = &e});
  index_->flush();  // hits are queued, written by the index's own thread
  const Row r = row(e);
  EXPECT_EQ(r.hitCount, 1);
  EXPECT_EQ(r.lastAccessed, clock_.now());
}

TEST_F(IndexObserverTest, ErasedAndFailedEventsAndEventsWithoutAnEntryWriteNothing) {
  const cache::Entry e = makeTestEntry("gpt-4o-mini:0000000000000007");
  const Error error = makeError(Errc::Io, "disk full");
  observer_->onTierEvent(
      TierEvent{.kind = Kind::Erased, .tier = TierId::Disk, .cacheKey = e.cacheKey});
  observer_->onTierEvent(TierEvent{.kind = Kind::Failed,
                                   .tier = TierId::Disk,
                                   .cacheKey = e.cacheKey,
                                   .op = TierEvent::Op::Insert,
                                   .error = &error});
  observer_->onTierEvent(
      TierEvent{.kind = Kind::Stored, .tier = TierId::Disk, .cacheKey = e.cacheKey});
  observer_->onTierEvent(TierEvent{.kind = Kind::Hit, .tier = TierId::Disk});
  index_->flush();
  EXPECT_EQ(index_->stats().value().entries, 0u);
  EXPECT_EQ(observer_->failures(), 0u);
}

TEST_F(IndexObserverTest, AnUpsertThatFailsIsCountedAndTheNextOneStillLands) {
  // Another connection holds the write lock (as another process could); the index waits
  // busyTimeout (10 ms here) and gives up with an error.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);

  const cache::Entry lost = makeTestEntry("gpt-4o-mini:0000000000000008");
  stored(lost, TierId::Disk);
  EXPECT_EQ(observer_->failures(), 1u);

  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  const cache::Entry kept = makeTestEntry("gpt-4o-mini:0000000000000009");
  stored(kept, TierId::Disk);
  EXPECT_EQ(observer_->failures(), 1u);
  EXPECT_EQ(row(kept).tiers, kTierDisk);
  EXPECT_FALSE(index_->byCacheId(lost.cacheId).value());
}

}  // namespace
}  // namespace llmcache::index
