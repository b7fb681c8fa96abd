#include "cache/s3/s3_outbox.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <mutex>

#include "cache/s3/s3_test_server.h"
#include "cache/test_entry.h"

namespace llmcache::cache::s3 {
namespace {

namespace fs = std::filesystem;
using cache::test::makeTestEntry;
using namespace std::chrono_literals;

EntryPtr entry(std::string key, std::string content = "Hello!") {
  return std::make_shared<const Entry>(makeTestEntry(std::move(key), std::move(content)));
}

// A tier that stores in memory, records the order of inserts, and fails while told to.
class FakeTier final : public CacheTier {
 public:
  TierId id() const override { return TierId::S3; }
  Result<std::optional<EntryPtr>> lookup(std::string_view key) override {
    std::lock_guard lock(mutex_);
    auto it = stored_.find(std::string(key));
    if (it == stored_.end()) return std::optional<EntryPtr>{};
    return std::optional<EntryPtr>(it->second);
  }
  Result<void> insert(EntryPtr e) override {
    std::lock_guard lock(mutex_);
    ++attempts_;
    if (failWith_) return makeError(*failWith_, "fake tier: told to fail");
    stored_[e->cacheKey] = e;
    order_.push_back(e->cacheId);
    return {};
  }
  Result<bool> erase(std::string_view key) override {
    std::lock_guard lock(mutex_);
    return stored_.erase(std::string(key)) > 0;
  }
  void failWith(std::optional<Errc> code) {
    std::lock_guard lock(mutex_);
    failWith_ = code;
  }
  size_t attempts() {
    std::lock_guard lock(mutex_);
    return attempts_;
  }
  std::vector<std::string> order() {
    std::lock_guard lock(mutex_);
    return order_;
  }
  size_t size() {
    std::lock_guard lock(mutex_);
    return stored_.size();
  }

 private:
  std::mutex mutex_;
  std::map<std::string, EntryPtr> stored_;
  std::vector<std::string> order_;
  std::optional<Errc> failWith_;
  size_t attempts_ = 0;
};

class S3OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::freshTempDir("s3-outbox"); }
  void TearDown() override { fs::remove_all(dir_); }
  S3OutboxOptions options() {
    return S3OutboxOptions{
        .dir = dir_ / "s3-outbox", .workers = 2, .retryBase = 5ms, .retryMax = 50ms};
  }
  size_t journalFiles() {
    size_t n = 0;
    if (fs::exists(dir_ / "s3-outbox"))
      for (auto& f : fs::directory_iterator(dir_ / "s3-outbox")) n += f.is_regular_file();
    return n;
  }

  fs::path dir_;
  FakeTier tier_;
};

TEST_F(S3OutboxTest, EnqueuedEntriesAreUploadedAndTheirJournalFilesRemoved) {
  S3Outbox outbox(tier_, options());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(outbox.enqueue(entry("k:" + std::to_string(i))));
  ASSERT_TRUE(outbox.drain(5s));
  EXPECT_EQ(tier_.size(), 10u);
  EXPECT_EQ(outbox.uploaded(), 10u);
  EXPECT_EQ(outbox.pending(), 0u);
  EXPECT_EQ(outbox.failures(), 0u);
  EXPECT_EQ(journalFiles(), 0u);
}

TEST_F(S3OutboxTest, AnEnqueuedEntryIsOnDiskBeforeEnqueueReturns) {
  tier_.failWith(Errc::Unavailable);
  S3Outbox outbox(tier_, options());
  auto e = entry("k:1");
  ASSERT_TRUE(outbox.enqueue(e));
  ASSERT_EQ(journalFiles(), 1u);
  for (auto& f : fs::directory_iterator(dir_ / "s3-outbox")) {
    std::ifstream in(f.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    auto decoded = decodeEntry(bytes);
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, *e);
    EXPECT_NE(f.path().filename().string().find(e->cacheId), std::string::npos);
  }
}

TEST_F(S3OutboxTest, WithEncryptionTheJournalIsSealedAndSurvivesARestart) {
  tier_.failWith(Errc::Unavailable);
  S3OutboxOptions o = options();
  o.codec.key = EncryptionKey{};
  o.codec.key->fill(3);
  auto e = entry("k:1", "the answer is swordfish");
  {
    S3Outbox outbox(tier_, o);
    ASSERT_TRUE(outbox.enqueue(e));
    EXPECT_FALSE(outbox.drain(20ms));
  }
  ASSERT_EQ(journalFiles(), 1u);
  for (auto& f : fs::directory_iterator(dir_ / "s3-outbox")) {
    std::ifstream in(f.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(bytes.find("swordfish"), std::string::npos);
    EXPECT_FALSE(decodeEntry(bytes));  // no key: unreadable
  }
  tier_.failWith(std::nullopt);
  S3Outbox outbox(tier_, o);
  ASSERT_TRUE(outbox.drain(5s));
  auto found = tier_.lookup(e->cacheKey);
  ASSERT_TRUE(found && *found);
  EXPECT_EQ(***found, *e);
}

TEST_F(S3OutboxTest, JournalSurvivesARestartAndDrainsAfterwards) {
  tier_.failWith(Errc::Unavailable);
  std::vector<EntryPtr> written;
  {
    S3Outbox outbox(tier_, options());
    for (int i = 0; i < 5; ++i) {
      written.push_back(entry("k:" + std::to_string(i)));
      ASSERT_TRUE(outbox.enqueue(written.back()));
    }
    EXPECT_FALSE(outbox.drain(50ms));
    EXPECT_EQ(outbox.pending(), 5u);
  }
  EXPECT_EQ(journalFiles(), 5u);
  EXPECT_EQ(tier_.size(), 0u);

  tier_.failWith(std::nullopt);
  // One worker: with several, uploads of different keys may finish in any order.
  S3OutboxOptions one = options();
  one.workers = 1;
  S3Outbox again(tier_, one);
  EXPECT_EQ(again.stats().recovered, 5u);
  ASSERT_TRUE(again.drain(5s));
  EXPECT_EQ(again.uploaded(), 5u);
  EXPECT_EQ(journalFiles(), 0u);
  for (const auto& e : written) {
    auto found = tier_.lookup(e->cacheKey);
    ASSERT_TRUE(found && *found);
    EXPECT_EQ(***found, *e);
  }
  // Recovered in the order they were enqueued.
  std::vector<std::string> ids;
  for (const auto& e : written) ids.push_back(e->cacheId);
  EXPECT_EQ(tier_.order(), ids);
}

TEST_F(S3OutboxTest, UnsyncedJournalFilesAreWholeAtOnceAndSurviveARestart) {
  // CACHE_DISK_SYNC=interval or never: no fsync, the same temp-file-and-rename, so a reader (the
  // next start) sees whole files or none; only a power loss may tear one (dropped at start).
  tier_.failWith(Errc::Unavailable);
  S3OutboxOptions o = options();
  o.syncEachWrite = false;
  auto e = entry("k:1");
  {
    S3Outbox outbox(tier_, o);
    ASSERT_TRUE(outbox.enqueue(e));
    EXPECT_EQ(journalFiles(), 1u);
    EXPECT_FALSE(outbox.drain(20ms));
  }
  tier_.failWith(std::nullopt);
  S3Outbox again(tier_, o);
  EXPECT_EQ(again.stats().recovered, 1u);
  ASSERT_TRUE(again.drain(5s));
  auto found = tier_.lookup(e->cacheKey);
  ASSERT_TRUE(found && *found);
  EXPECT_EQ(***found, *e);
  EXPECT_EQ(journalFiles(), 0u);
}

TEST_F(S3OutboxTest, ABacklogBeyondTheMemoryBoundWaitsOnDiskAndUploadsWhole) {
  // Regression (soak test): a backlog kept every waiting entry in memory, ~870 MB at 100,000.
  tier_.failWith(Errc::Unavailable);
  S3OutboxOptions o = options();
  const size_t one = entry("k:0", std::string(1000, 'x'))->approxBytes();
  o.maxMemoryBytes = 3 * one;
  S3Outbox outbox(tier_, o);
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(outbox.enqueue(entry("k:" + std::to_string(i), std::string(1000, 'a' + i))));
  EXPECT_LE(outbox.stats().memoryBytes, 3 * one);
  EXPECT_EQ(outbox.pending(), 20u);
  tier_.failWith(std::nullopt);
  ASSERT_TRUE(outbox.drain(10s));
  EXPECT_EQ(outbox.uploaded(), 20u);
  EXPECT_EQ(outbox.stats().memoryBytes, 0u);
  for (int i = 0; i < 20; ++i) {
    auto found = tier_.lookup("k:" + std::to_string(i));
    ASSERT_TRUE(found && *found);
    EXPECT_NE((**found)->response.find(std::string(1000, 'a' + i)), std::string::npos) << i;
  }
}

TEST_F(S3OutboxTest, FailingStoreIsRetriedWithBackoffUntilItRecovers) {
  tier_.failWith(Errc::Unavailable);
  S3Outbox outbox(tier_, options());
  ASSERT_TRUE(outbox.enqueue(entry("k:1")));
  ASSERT_TRUE(outbox.enqueue(entry("k:2")));
  std::this_thread::sleep_for(200ms);
  const size_t attempts = tier_.attempts();
  EXPECT_GE(attempts, 2u);
  // Paused between attempts: 200 ms with a 5..50 ms capped backoff cannot reach hundreds.
  EXPECT_LT(attempts, 100u);
  EXPECT_EQ(outbox.failures(), attempts);
  tier_.failWith(std::nullopt);
  ASSERT_TRUE(outbox.drain(5s));
  EXPECT_EQ(outbox.uploaded(), 2u);
}

TEST_F(S3OutboxTest, EntryTheStoreRefusesForGoodIsDroppedNotRetriedForever) {
  tier_.failWith(Errc::InvalidArgument);
  S3Outbox outbox(tier_, options());
  ASSERT_TRUE(outbox.enqueue(entry("k:1")));
  ASSERT_TRUE(outbox.drain(5s));
  EXPECT_EQ(tier_.attempts(), 1u);
  EXPECT_EQ(outbox.stats().rejected, 1u);
  EXPECT_EQ(journalFiles(), 0u);
}

TEST_F(S3OutboxTest, UploadsOfOneKeyKeepTheirEnqueueOrder) {
  S3OutboxOptions o = options();
  o.workers = 4;
  S3Outbox outbox(tier_, o);
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    auto e = entry("k:same", "version " + std::to_string(i));
    ids.push_back(e->cacheId);
    ASSERT_TRUE(outbox.enqueue(e));
  }
  ASSERT_TRUE(outbox.drain(5s));
  EXPECT_EQ(tier_.order(), ids);
  auto last = tier_.lookup("k:same");
  ASSERT_TRUE(last && *last);
  EXPECT_EQ((**last)->cacheId, ids.back());
}

TEST_F(S3OutboxTest, DamagedJournalFilesAndLeftoverTempFilesAreDeletedAtStart) {
  fs::create_directories(dir_ / "s3-outbox");
  std::ofstream(dir_ / "s3-outbox" / "00000000000000000001-abc.entry") << "not an entry";
  std::ofstream(dir_ / "s3-outbox" / "00000000000000000002-def.entry.tmp.Xy12ab") << "half";
  S3Outbox outbox(tier_, options());
  EXPECT_EQ(outbox.stats().corruptJournal, 1u);
  EXPECT_EQ(outbox.pending(), 0u);
  EXPECT_EQ(journalFiles(), 0u);
  // New sequence numbers continue after what was found, so order survives restarts.
  ASSERT_TRUE(outbox.enqueue(entry("k:1")));
  ASSERT_TRUE(outbox.drain(5s));
}

TEST_F(S3OutboxTest, EnqueueRefusesBeyondTheBound) {
  tier_.failWith(Errc::Unavailable);
  S3OutboxOptions o = options();
  o.maxPending = 2;
  S3Outbox outbox(tier_, o);
  ASSERT_TRUE(outbox.enqueue(entry("k:1")));
  ASSERT_TRUE(outbox.enqueue(entry("k:2")));
  auto r = outbox.enqueue(entry("k:3"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::TooLarge);
  EXPECT_EQ(journalFiles(), 2u);
}

TEST_F(S3OutboxTest, DrainReturnsFalseWhenTheBudgetRunsOut) {
  tier_.failWith(Errc::Unavailable);
  S3Outbox outbox(tier_, options());
  ASSERT_TRUE(outbox.enqueue(entry("k:1")));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(outbox.drain(100ms));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(outbox.pending(), 1u);
}

}  // namespace
}  // namespace llmcache::cache::s3
