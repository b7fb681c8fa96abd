#include "index/index.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <limits>
#include <thread>

#include "cache/codec.h"
#include "cache/disk/disk_tier.h"
#include "cache/test_entry.h"
#include "index/disk_scan.h"
#include "index/schema.h"
#include "index/test_util.h"

namespace llmcache::index {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using cache::test::makeTestEntry;
using test::TempDir;

// Hits are written only on flush() unless a test says otherwise.
IndexOptions manualHits() {
  IndexOptions o;
  o.hitFlushInterval = std::chrono::hours(1);
  o.hitFlushBatch = 1'000'000;
  return o;
}

std::unique_ptr<Index> openOrDie(const fs::path& path, IndexOptions options = manualHits()) {
  auto r = Index::open(path, options);
  if (!r) ADD_FAILURE() << r.error().message;
  return r ? std::move(*r) : nullptr;
}

cache::Entry entryAt(std::string key, int64_t createdMs, std::string model = "gpt-4o-mini") {
  cache::Entry e = makeTestEntry(std::move(key));
  e.model = std::move(model);
  e.responseTimestamp = fromUnixMillis(createdMs);
  e.lastAccessed = e.responseTimestamp;
  return e;
}

void writeBytes(const fs::path& p, std::string_view bytes,
                std::ios::openmode extra = std::ios::trunc) {
  std::fstream out(p, std::ios::binary | std::ios::in | std::ios::out | extra);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Raw SQLite access for checks the API does not expose.
int64_t scalar(const fs::path& path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* s = nullptr;
  int64_t v = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW)
    v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

class IndexTest : public ::testing::Test {
 protected:
  TempDir dir_;
  fs::path path_ = Index::defaultPath(dir_.path() / "cache");
  std::unique_ptr<Index> index_ = openOrDie(path_);

  // Replaces the index with a file at an older schema version holding what `rows` inserts (by
  // default one entry row, 'id1'), then opens it (migrating it to the current version).
  void reopenFromVersion(int version,
                         const char* rows =
                             "INSERT INTO entries(cache_id, cache_key, request_hash, created, "
                             "last_accessed) VALUES('id1', 'k:1', 'h1', 1, 1)") {
    index_.reset();
    ASSERT_TRUE(Index::removeFiles(path_));
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(migrate(db, migrations().first(version)).value(), version);
    ASSERT_EQ(sqlite3_exec(db, rows, nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
    index_ = openOrDie(path_);
    ASSERT_TRUE(index_);
  }
};

// --- open, migrations, damage ---------------------------------------------------------------

TEST_F(IndexTest, OpeningANewFileCreatesTheCurrentSchemaInWalMode) {
  EXPECT_EQ(path_.filename(), "index.sqlite");
  EXPECT_EQ(index_->schemaVersion(), kSchemaVersion);
  EXPECT_EQ(scalar(path_, "PRAGMA user_version"), kSchemaVersion);
  EXPECT_TRUE(fs::exists(path_.string() + "-wal"));
  EXPECT_EQ(
      scalar(path_, "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('entries','entry_tags')"),
      2);
}

TEST_F(IndexTest, ReopeningKeepsRowsAndDoesNotMigrateAgain) {
  const cache::Entry e = makeTestEntry("gpt-4o-mini:0000000000000001");
  ASSERT_TRUE(index_->upsert(e, kTierMemory, 10, 20));
  index_.reset();
  index_ = openOrDie(path_);
  ASSERT_TRUE(index_);
  auto row = index_->byCacheId(e.cacheId);
  ASSERT_TRUE(row && *row);
  EXPECT_EQ((*row)->cacheKey, e.cacheKey);
}

TEST_F(IndexTest, AnEmptyFileIsANewIndex) {
  index_.reset();
  ASSERT_TRUE(Index::removeFiles(path_));
  writeBytes(path_, "", std::ios::trunc);
  index_ = openOrDie(path_);
  ASSERT_TRUE(index_);
  EXPECT_EQ(index_->schemaVersion(), kSchemaVersion);
}

// The index holds prompt previews, models, tags and tenants: the gateway user's only (issue 15).
TEST_F(IndexTest, TheDatabaseAndItsWalFilesAreTheOwnersOnlyWhateverTheUmask) {
  auto modes = [&] {  // "index.sqlite 600" ...; "missing" for a file not there
    std::vector<std::string> out;
    for (const char* suffix : {"", "-wal", "-shm"}) {
      const fs::path p = path_.string() + suffix;
      std::error_code ec;
      const auto perms = static_cast<unsigned>(fs::status(p, ec).permissions() & fs::perms::mask);
      char octal[8];
      std::snprintf(octal, sizeof octal, "%o", perms);
      out.push_back(p.filename().string() + " " + (fs::exists(p) ? octal : "missing"));
    }
    return out;
  };
  const std::vector<std::string> kPrivate = {"index.sqlite 600", "index.sqlite-wal 600",
                                             "index.sqlite-shm 600"};
  index_.reset();
  ASSERT_TRUE(Index::removeFiles(path_));
  // Files 0644 unless the index sees to it (SQLite's default mode under this umask).
  struct Umask {
    mode_t old = ::umask(0);
    ~Umask() { ::umask(old); }
  } umask;
  index_ = openOrDie(path_);
  ASSERT_TRUE(index_);
  ASSERT_TRUE(index_->upsert(makeTestEntry("gpt-4o-mini:0000000000000001"), kTierMemory, 10, 20));
  EXPECT_EQ(modes(), kPrivate);

  // Files an older build left readable (the WAL files too, kept by another connection) are
  // fixed at open.
  index_.reset();
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "PRAGMA journal_mode=WAL; UPDATE entries SET hit_count = 1",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  for (const char* suffix : {"", "-wal", "-shm"})
    fs::permissions(path_.string() + suffix, fs::perms::owner_read | fs::perms::owner_write |
                                                 fs::perms::group_read | fs::perms::others_read);
  index_ = openOrDie(path_);
  ASSERT_TRUE(index_);
  EXPECT_EQ(modes(), kPrivate);
  sqlite3_close(other);
}

TEST_F(IndexTest, AFileThatIsNotADatabaseIsCorrupt) {
  index_.reset();
  ASSERT_TRUE(Index::removeFiles(path_));
  {
    std::ofstream out(path_, std::ios::binary);
    out << std::string(8192, 'x');
  }
  auto r = Index::open(path_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Corrupt) << r.error().message;
}

TEST_F(IndexTest, ADatabaseWithADamagedPageIsCorrupt) {
  for (int i = 0; i < 200; ++i)
    ASSERT_TRUE(index_->upsert(makeTestEntry("gpt-4o-mini:" + std::to_string(1000000 + i)),
                               kTierDisk, 1, 1));
  index_.reset();  // the last connection checkpoints the WAL into the file
  ASSERT_FALSE(fs::exists(path_.string() + "-wal"));
  ASSERT_GT(fs::file_size(path_), 4u * 4096);
  // Overwrite pages 2 to 4 whole (b-tree pages of the tables and indexes), keeping page 1's
  // file header: the file still opens as a database.
  {
    std::fstream f(path_, std::ios::binary | std::ios::in | std::ios::out);
    for (std::streamoff page : {1, 2, 3}) {
      f.seekp(page * 4096);
      const std::string junk(4096, '\xa5');
      f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
  }
  auto r = Index::open(path_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Corrupt) << r.error().message;
}

TEST_F(IndexTest, ADatabaseFromANewerBuildIsRefusedAsCorrupt) {
  index_.reset();
  sqlite3* db = nullptr;
  sqlite3_open(path_.c_str(), &db);
  sqlite3_exec(db, ("PRAGMA user_version = " + std::to_string(kSchemaVersion + 1)).c_str(), nullptr,
               nullptr, nullptr);
  sqlite3_close(db);
  auto r = Index::open(path_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Corrupt);
  EXPECT_NE(r.error().message.find("newer"), std::string::npos) << r.error().message;
}

TEST_F(IndexTest, ADamagedIndexIsRemovedAndRebuiltFromTheDiskTier) {
  const fs::path tierDir = dir_.path() / "cache";
  cache::DiskTier disk({.dir = tierDir});
  ASSERT_TRUE(disk.insert(
      std::make_shared<const cache::Entry>(makeTestEntry("gpt-4o-mini:00000000000000aa"))));
  index_.reset();
  {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out << "SQLite format 3 but not really";
  }
  auto broken = Index::open(path_);
  ASSERT_FALSE(broken);
  ASSERT_EQ(broken.error().code, Errc::Corrupt);
  ASSERT_TRUE(Index::removeFiles(path_));
  index_ = openOrDie(path_);
  ASSERT_TRUE(index_);
  auto report = rebuildFromDiskTier(*index_, tierDir);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->entries, 1u);
  EXPECT_EQ(index_->stats()->entries, 1u);
}

class Migrations : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(sqlite3_open(":memory:", &db_), SQLITE_OK); }
  void TearDown() override { sqlite3_close(db_); }
  int64_t count(const char* table) {
    sqlite3_stmt* s = nullptr;
    const std::string sql = std::string("SELECT COUNT(*) FROM ") + table;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) return -1;
    sqlite3_step(s);
    const int64_t n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
  }
  sqlite3* db_ = nullptr;
};

TEST_F(Migrations, StepsAreAppliedInOrderFromTheStoredVersion) {
  const Migration v1[] = {{1, "CREATE TABLE log(step INTEGER); INSERT INTO log VALUES(1);"}};
  ASSERT_EQ(migrate(db_, v1).value(), 1);
  const Migration v3[] = {{1, "CREATE TABLE log(step INTEGER); INSERT INTO log VALUES(1);"},
                          {2, "INSERT INTO log VALUES(2);"},
                          {3, "INSERT INTO log SELECT MAX(step) + 1 FROM log;"}};
  ASSERT_EQ(migrate(db_, v3).value(), 3);
  EXPECT_EQ(count("log"), 3);  // step 1 was not run again; step 3 saw step 2's row
  ASSERT_EQ(migrate(db_, v3).value(), 3);
  EXPECT_EQ(count("log"), 3);
}

TEST_F(Migrations, AFailingStepLeavesTheDatabaseAtThePreviousVersion) {
  const Migration steps[] = {{1, "CREATE TABLE a(x);"},
                             {2, "CREATE TABLE b(x); INSERT INTO nope VALUES(1);"}};
  auto r = migrate(db_, steps);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Io);
  EXPECT_EQ(count("a"), 0);
  EXPECT_EQ(count("b"), -1);  // rolled back with its step
  const Migration v1[] = {{1, "CREATE TABLE a(x);"}};
  EXPECT_EQ(migrate(db_, v1).value(), 1);
}

TEST_F(Migrations, TheShippedStepsEndAtTheCurrentVersion) {
  ASSERT_FALSE(migrations().empty());
  EXPECT_EQ(migrations().back().version, kSchemaVersion);
  EXPECT_EQ(migrate(db_, migrations()).value(), kSchemaVersion);
}

// --- rows ---------------------------------------------------------------------------------------

TEST_F(IndexTest, UpsertStoresEveryFieldAndByCacheIdReadsItBack) {
  cache::Entry e = makeTestEntry("openai/gpt-4o:00112233445566ab");
  e.model = "openai/gpt-4o";
  e.platform = "openrouter";
  e.provider = "openai";
  e.expiresAt = e.responseTimestamp + 1h;
  e.hitCount = 2;
  ASSERT_TRUE(index_->upsert(e, kTierMemory | kTierDisk, 321, 654));
  auto row = index_->byCacheId(e.cacheId);
  ASSERT_TRUE(row && *row);
  const Row& r = **row;
  EXPECT_EQ(r.cacheId, e.cacheId);
  EXPECT_EQ(r.cacheKey, e.cacheKey);
  EXPECT_EQ(r.requestHash, e.requestHash);
  EXPECT_EQ(r.model, "openai/gpt-4o");
  EXPECT_EQ(r.platform, "openrouter");
  EXPECT_EQ(r.provider, "openai");
  EXPECT_EQ(r.endpoint, "openai.chat");
  EXPECT_EQ(r.cacheNamespace, "tenant-1");
  EXPECT_EQ(r.tags, (std::vector<std::string>{"team-a", "prod"}));
  EXPECT_EQ(r.created, e.responseTimestamp);
  EXPECT_EQ(r.expires, e.expiresAt);
  EXPECT_EQ(r.lastAccessed, e.lastAccessed);
  EXPECT_EQ(r.hitCount, 2);
  EXPECT_EQ(r.sizeStored, 321);
  EXPECT_EQ(r.sizeRaw, 654);
  EXPECT_EQ(r.tokensIn, 12);
  EXPECT_EQ(r.tokensOut, 3);
  EXPECT_DOUBLE_EQ(r.costTotal, 3.6e-6);
  EXPECT_EQ(r.latencyMs, 333);
  EXPECT_EQ(r.tiers, kTierMemory | kTierDisk);
  EXPECT_FALSE(r.invalid);
  EXPECT_FALSE(index_->byCacheId("ffffffffffffffffffffffffffffffff").value());
}

TEST_F(IndexTest, AnEvictionClearsItsTierAndAnEntryNoTierHoldsLeavesTheFigures) {
  const cache::Entry a = makeTestEntry("gpt-4o-mini:0000000000000001");
  const cache::Entry b = makeTestEntry("gpt-4o-mini:0000000000000002");
  ASSERT_TRUE(index_->upsert(a, kTierMemory | kTierDisk, 100, 200));
  ASSERT_TRUE(index_->upsert(b, kTierMemory | kTierDisk, 50, 200));
  index_->recordEviction(a.cacheKey, kTierMemory);
  index_->flush();
  EXPECT_EQ(index_->byCacheId(a.cacheId).value()->tiers, kTierDisk);
  EXPECT_EQ(index_->stats().value().entries, 2u);
  index_->recordEviction(a.cacheKey, kTierDisk);
  index_->flush();
  EXPECT_EQ(index_->byCacheId(a.cacheId).value()->tiers, 0u);  // the row stays, for the record
  EXPECT_EQ(index_->stats().value().entries, 1u);
  EXPECT_EQ(index_->stats().value().bytes, 50u);
  // An eviction queued before the key is written again does not undo that write.
  index_->recordEviction(b.cacheKey, kTierMemory);
  ASSERT_TRUE(index_->upsert(b, kTierMemory, 50, 200));
  index_->flush();
  EXPECT_EQ(index_->byCacheId(b.cacheId).value()->tiers, kTierMemory | kTierDisk);
}

TEST_F(IndexTest, UpsertingTheSameEntryAgainAddsTiersAndKeepsItsHits) {
  const cache::Entry e = makeTestEntry("gpt-4o-mini:0000000000000001");
  ASSERT_TRUE(index_->upsert(e, kTierMemory, 100, 200));
  index_->recordHit(e.cacheId, e.responseTimestamp + 5s);
  index_->flush();
  ASSERT_TRUE(index_->upsert(e, kTierDisk, 90, 200));
  const Row r = *index_->byCacheId(e.cacheId).value();
  EXPECT_EQ(r.tiers, kTierMemory | kTierDisk);
  EXPECT_EQ(r.hitCount, 1);
  EXPECT_EQ(r.lastAccessed, e.responseTimestamp + 5s);
  EXPECT_EQ(r.sizeStored, 90);
}

TEST_F(IndexTest, HitsRecordedBeforeTheirRowIsWrittenAreCountedWhenItIs) {
  // The gateway stores a new entry's row in the background; its first hits can come earlier.
  const cache::Entry e = makeTestEntry("gpt-4o-mini:0000000000000002");
  index_->recordHit(e.cacheId, e.responseTimestamp + 1s);
  index_->recordHit(e.cacheId, e.responseTimestamp + 2s);
  index_->flush();  // no row yet: kept
  ASSERT_TRUE(index_->upsert(e, kTierMemory, 100, 200));
  index_->recordHit(e.cacheId, e.responseTimestamp + 3s);
  index_->flush();
  const Row r = *index_->byCacheId(e.cacheId).value();
  EXPECT_EQ(r.hitCount, 3);
  EXPECT_EQ(r.lastAccessed, e.responseTimestamp + 3s);
  EXPECT_EQ(index_->droppedHits(), 0u);
}

TEST_F(IndexTest, HitsOfARowThatNeverComesAreDroppedAfterSomeFlushes) {
  index_->recordHit("no-such-id", {});
  for (int i = 0; i <= Index::kHitRetries; ++i) index_->flush();
  EXPECT_EQ(index_->droppedHits(), 1u);
  index_->flush();
  EXPECT_EQ(index_->droppedHits(), 1u);
}

TEST_F(IndexTest, ANewEntryUnderAKeyReplacesTheOldRowAndItsTags) {
  const cache::Entry old = makeTestEntry("gpt-4o-mini:0000000000000001");
  cache::Entry fresh = makeTestEntry("gpt-4o-mini:0000000000000001", "Hello again");
  fresh.tags = {"new"};
  ASSERT_TRUE(index_->upsert(old, kTierMemory, 1, 1));
  ASSERT_TRUE(index_->upsert(fresh, kTierMemory, 1, 1));
  EXPECT_FALSE(index_->byCacheId(old.cacheId).value());
  EXPECT_TRUE(index_->byCacheId(fresh.cacheId).value());
  EXPECT_EQ(index_->stats()->entries, 1u);
  EXPECT_TRUE(index_->match(Criterion::tag("prod"), {}).value().empty());
  EXPECT_EQ(index_->match(Criterion::tag("new"), {}).value().size(), 1u);
  EXPECT_EQ(scalar(path_, "SELECT COUNT(*) FROM entry_tags"), 1);
}

TEST_F(IndexTest, ByRequestHashFindsTheNewestValidRow) {
  cache::Entry a = entryAt("gpt-4o-mini:000000000000000a", 1000);
  cache::Entry b = entryAt("gpt-4o-mini:000000000000000b", 2000);
  a.requestHash = b.requestHash = "aaaabbbbccccddddaaaabbbbccccdddd";
  ASSERT_TRUE(index_->upsert(a, kTierMemory, 1, 1));
  ASSERT_TRUE(index_->upsert(b, kTierMemory, 1, 1));
  EXPECT_EQ(index_->byRequestHash(a.requestHash).value()->cacheId, b.cacheId);
  ASSERT_EQ(index_->markInvalid({b.cacheId}).value(), 1u);
  EXPECT_EQ(index_->byRequestHash(a.requestHash).value()->cacheId, a.cacheId);
  EXPECT_FALSE(index_->byRequestHash("00000000000000000000000000000000").value());
}

TEST_F(IndexTest, ListPagesNewestFirstThroughACursorWithoutRepeats) {
  std::vector<std::string> ids;
  for (int i = 0; i < 25; ++i) {
    // Pairs share a timestamp, so the cache_id must break ties.
    cache::Entry e = entryAt("gpt-4o-mini:" + std::to_string(1000000 + i), 1000 + i / 2);
    ids.push_back(e.cacheId);
    ASSERT_TRUE(index_->upsert(e, kTierMemory, 1, 1));
  }
  std::vector<std::string> seen;
  Filter f;
  f.limit = 10;
  std::vector<size_t> sizes;
  for (;;) {
    auto page = index_->list(f);
    ASSERT_TRUE(page) << page.error().message;
    sizes.push_back(page->rows.size());
    for (const Row& r : page->rows) seen.push_back(r.cacheId);
    if (!page->nextCursor) break;
    f.cursor = *page->nextCursor;
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{10, 10, 5}));
  ASSERT_EQ(seen.size(), 25u);
  std::vector<std::string> sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end());
  for (size_t i = 1; i < seen.size(); ++i) {
    const Row a = *index_->byCacheId(seen[i - 1]).value();
    const Row b = *index_->byCacheId(seen[i]).value();
    EXPECT_TRUE(a.created > b.created || (a.created == b.created && a.cacheId > b.cacheId));
  }
}

TEST_F(IndexTest, AnExactlyFullLastPageHasNoCursor) {
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(index_->upsert(entryAt("m:" + std::to_string(i), 1000 + i), 1, 1, 1));
  Filter f;
  f.limit = 4;
  auto page = index_->list(f).value();
  EXPECT_EQ(page.rows.size(), 4u);
  EXPECT_FALSE(page.nextCursor);
}

TEST_F(IndexTest, ListFiltersByModelTagNamespaceAndTime) {
  cache::Entry a = entryAt("gpt-4o:1", 1000, "gpt-4o");
  cache::Entry b = entryAt("gpt-4o-mini:2", 2000, "gpt-4o-mini");
  cache::Entry c = entryAt("gpt-4o-mini:3", 3000, "gpt-4o-mini");
  b.tags = {"eval"};
  c.cacheNamespace = "tenant-2";
  for (const auto* e : {&a, &b, &c}) ASSERT_TRUE(index_->upsert(*e, kTierMemory, 1, 1));
  auto ids = [&](Filter f) {
    std::vector<std::string> out;
    for (const Row& r : index_->list(f).value().rows) out.push_back(r.cacheId);
    return out;
  };
  EXPECT_EQ(ids({}), (std::vector<std::string>{c.cacheId, b.cacheId, a.cacheId}));
  EXPECT_EQ(ids({.model = "gpt-4o-mini"}), (std::vector<std::string>{c.cacheId, b.cacheId}));
  EXPECT_EQ(ids({.tag = "eval"}), (std::vector<std::string>{b.cacheId}));
  EXPECT_EQ(ids({.tag = "prod"}), (std::vector<std::string>{c.cacheId, a.cacheId}));
  EXPECT_EQ(ids({.cacheNamespace = "tenant-2"}), (std::vector<std::string>{c.cacheId}));
  EXPECT_EQ(ids({.from = fromUnixMillis(2000)}), (std::vector<std::string>{c.cacheId, b.cacheId}));
  EXPECT_EQ(ids({.to = fromUnixMillis(2000)}), (std::vector<std::string>{a.cacheId}));
  EXPECT_EQ(ids({.model = "gpt-4o-mini", .cacheNamespace = "tenant-1"}),
            (std::vector<std::string>{b.cacheId}));
}

TEST_F(IndexTest, ListFiltersByTenant) {
  cache::Entry a = entryAt("gpt-4o:1", 1000);
  cache::Entry b = entryAt("gpt-4o:2", 2000);
  cache::Entry c = entryAt("gpt-4o:3", 3000);
  cache::Entry d = entryAt("gpt-4o:4", 4000);
  a.tenant = "tenant-hash-a";
  b.tenant = "tenant-hash-b";
  c.tenant = "tenant-hash-a";
  for (const auto* e : {&a, &b, &c, &d}) ASSERT_TRUE(index_->upsert(*e, kTierMemory, 1, 1));
  auto ids = [&](Filter f) {
    std::vector<std::string> out;
    for (const Row& r : index_->list(f).value().rows) out.push_back(r.cacheId);
    return out;
  };
  EXPECT_EQ(ids({.tenant = "tenant-hash-a"}), (std::vector<std::string>{c.cacheId, a.cacheId}));
  EXPECT_EQ(ids({.tenant = "tenant-hash-b"}), (std::vector<std::string>{b.cacheId}));
  EXPECT_EQ(ids({.tenant = ""}), (std::vector<std::string>{d.cacheId}));
  EXPECT_EQ(ids({.tenant = "nobody"}), (std::vector<std::string>{}));
  EXPECT_EQ(ids({}).size(), 4u);
  EXPECT_EQ(ids({.model = "gpt-4o-mini", .tenant = "tenant-hash-a", .limit = 1}),
            (std::vector<std::string>{c.cacheId}));
  EXPECT_EQ(index_->byCacheId(b.cacheId).value()->tenant, "tenant-hash-b");
  // An upsert of the same cache_id carries a changed tenant over.
  b.tenant = "tenant-hash-c";
  ASSERT_TRUE(index_->upsert(b, kTierDisk, 1, 1));
  EXPECT_EQ(ids({.tenant = "tenant-hash-c"}), (std::vector<std::string>{b.cacheId}));
}

TEST_F(IndexTest, AVersionTwoFileGainsTheTenantColumnAndKeepsItsRows) {
  reopenFromVersion(2);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(index_->schemaVersion(), kSchemaVersion);  // every later step runs too
  EXPECT_EQ(index_->byCacheId("id1").value()->tenant, "");
  EXPECT_EQ(index_->list({.tenant = ""}).value().rows.size(), 1u);
}

TEST_F(IndexTest, ListHidesInvalidRowsUnlessAsked) {
  cache::Entry a = entryAt("m:1", 1000);
  cache::Entry b = entryAt("m:2", 2000);
  ASSERT_TRUE(index_->upsert(a, 1, 1, 1));
  ASSERT_TRUE(index_->upsert(b, 1, 1, 1));
  ASSERT_EQ(index_->markInvalid({a.cacheId, a.cacheId, "unknown"}).value(), 1u);
  EXPECT_EQ(index_->list({}).value().rows.size(), 1u);
  EXPECT_EQ(index_->list({.includeInvalid = true}).value().rows.size(), 2u);
  EXPECT_TRUE(index_->byCacheId(a.cacheId).value()->invalid);
}

TEST_F(IndexTest, AMalformedCursorIsInvalidArgument) {
  for (const char* cursor : {"x", "12", ".abc", "12.", "abc.def"}) {
    auto r = index_->list({.cursor = cursor});
    ASSERT_FALSE(r) << cursor;
    EXPECT_EQ(r.error().code, Errc::InvalidArgument);
  }
}

TEST_F(IndexTest, EraseRemovesRowsAndTheirTags) {
  const cache::Entry a = makeTestEntry("m:1");
  ASSERT_TRUE(index_->upsert(a, 1, 1, 1));
  EXPECT_EQ(index_->erase({a.cacheId, "unknown"}).value(), 1u);
  EXPECT_FALSE(index_->byCacheId(a.cacheId).value());
  EXPECT_EQ(scalar(path_, "SELECT COUNT(*) FROM entry_tags"), 0);
}

TEST_F(IndexTest, ExpiredListsValidRowsPastTheirExpirySoonestFirst) {
  const TimePoint now = fromUnixMillis(10'000);
  cache::Entry never = entryAt("m:never", 1000);
  cache::Entry past = entryAt("m:past", 1000);
  cache::Entry earlier = entryAt("m:earlier", 1000);
  cache::Entry exact = entryAt("m:exact", 1000);
  cache::Entry future = entryAt("m:future", 1000);
  cache::Entry invalid = entryAt("m:invalid", 1000);
  past.expiresAt = fromUnixMillis(9000);
  earlier.expiresAt = fromUnixMillis(5000);
  exact.expiresAt = now;
  future.expiresAt = fromUnixMillis(10'001);
  invalid.expiresAt = fromUnixMillis(1);
  for (const auto* e : {&never, &past, &earlier, &exact, &future, &invalid})
    ASSERT_TRUE(index_->upsert(*e, 1, 1, 1));
  ASSERT_TRUE(index_->markInvalid({invalid.cacheId}));
  EXPECT_EQ(index_->expired(now, 10).value(),
            (std::vector<std::string>{earlier.cacheId, past.cacheId, exact.cacheId}));
  EXPECT_EQ(index_->expired(now, 1).value(), (std::vector<std::string>{earlier.cacheId}));
}

TEST_F(IndexTest, StatsSumEntriesBytesHitsAndCostSaved) {
  cache::Entry a = makeTestEntry("m:1");
  cache::Entry b = makeTestEntry("m:2");
  cache::Entry c = makeTestEntry("m:3");
  a.costTotal = 0.5;
  b.costTotal = 0.25;
  ASSERT_TRUE(index_->upsert(a, 1, 100, 1));
  ASSERT_TRUE(index_->upsert(b, 1, 50, 1));
  ASSERT_TRUE(index_->upsert(c, 1, 7, 1));
  for (int i = 0; i < 3; ++i) index_->recordHit(a.cacheId, {});
  index_->recordHit(b.cacheId, {});
  index_->flush();
  ASSERT_TRUE(index_->markInvalid({c.cacheId}));
  const Stats s = index_->stats().value();
  EXPECT_EQ(s.entries, 2u);
  EXPECT_EQ(s.bytes, 150u);
  EXPECT_EQ(s.invalidEntries, 1u);
  EXPECT_EQ(s.hits, 4u);
  EXPECT_DOUBLE_EQ(s.costSaved, 1.75);
  EXPECT_EQ(s.tokensSaved, 4u * 15u);
}

// --- hits ---------------------------------------------------------------------------------------

TEST_F(IndexTest, HitsWaitInMemoryUntilFlushWritesThemTogether) {
  const cache::Entry e = makeTestEntry("m:1");
  ASSERT_TRUE(index_->upsert(e, 1, 1, 1));
  const TimePoint t0 = e.responseTimestamp;
  index_->recordHit(e.cacheId, t0 + 3s);
  index_->recordHit(e.cacheId, t0 + 9s);
  index_->recordHit(e.cacheId, t0 + 5s);
  EXPECT_EQ(index_->byCacheId(e.cacheId).value()->hitCount, 0);
  index_->flush();
  const Row r = *index_->byCacheId(e.cacheId).value();
  EXPECT_EQ(r.hitCount, 3);
  EXPECT_EQ(r.lastAccessed, t0 + 9s);
  index_->flush();  // nothing queued: nothing changes
  EXPECT_EQ(index_->byCacheId(e.cacheId).value()->hitCount, 3);
}

TEST_F(IndexTest, AFullBatchOfHitsIsWrittenWithoutAFlush) {
  IndexOptions o = manualHits();
  o.hitFlushBatch = 1000;
  index_.reset();
  index_ = openOrDie(path_, o);
  const cache::Entry e = makeTestEntry("m:1");
  ASSERT_TRUE(index_->upsert(e, 1, 1, 1));
  for (int i = 0; i < 999; ++i) index_->recordHit(e.cacheId, e.responseTimestamp);
  EXPECT_EQ(index_->byCacheId(e.cacheId).value()->hitCount, 0);
  index_->recordHit(e.cacheId, e.responseTimestamp);
  // The background writer wakes at once; the interval (1 h) plays no part. Poll, bounded.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (index_->byCacheId(e.cacheId).value()->hitCount < 1000 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  EXPECT_EQ(index_->byCacheId(e.cacheId).value()->hitCount, 1000);
}

TEST_F(IndexTest, HitsQueuedWhenTheIndexClosesAreWritten) {
  const cache::Entry e = makeTestEntry("m:1");
  ASSERT_TRUE(index_->upsert(e, 1, 1, 1));
  index_->recordHit(e.cacheId, e.responseTimestamp);
  index_->recordHit("unknown-id", e.responseTimestamp);  // ignored, not an error
  index_.reset();
  index_ = openOrDie(path_);
  EXPECT_EQ(index_->byCacheId(e.cacheId).value()->hitCount, 1);
  EXPECT_EQ(index_->hitWriteErrors(), 0u);
}

TEST_F(IndexTest, HitsBeyondTheQueuedIdLimitAreDroppedAndCounted) {
  IndexOptions o = manualHits();
  o.maxPendingIds = 2;
  index_.reset();
  index_ = openOrDie(path_, o);
  index_->recordHit("a", {});
  index_->recordHit("b", {});
  index_->recordHit("a", {});  // a known id still counts
  index_->recordHit("c", {});
  EXPECT_EQ(index_->droppedHits(), 1u);
}

TEST_F(IndexTest, ConcurrentHitsAndWritesLoseNothing) {
  const cache::Entry e = makeTestEntry("m:1");
  ASSERT_TRUE(index_->upsert(e, 1, 1, 1));
  IndexOptions o;
  o.hitFlushBatch = 50;
  index_.reset();
  index_ = openOrDie(path_, o);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        index_->recordHit(e.cacheId, e.responseTimestamp);
        if (i % 100 == 0) {
          EXPECT_TRUE(
              index_->upsert(makeTestEntry("other:" + std::to_string(t * 1000 + i)), 1, 1, 1));
        }
      }
    });
  for (auto& t : threads) t.join();
  index_->flush();
  EXPECT_EQ(index_->byCacheId(e.cacheId).value()->hitCount, 2000);
}

// --- rebuild ------------------------------------------------------------------------------------

TEST_F(IndexTest, RebuildFromADiskTierIndexesEveryEntryFileAndDropsStaleRows) {
  const fs::path tierDir = dir_.path() / "tier";
  std::vector<cache::Entry> stored;
  {
    cache::DiskTier disk({.dir = tierDir, .codec = {.compress = true}});
    for (int i = 0; i < 3; ++i) {
      stored.push_back(makeTestEntry("gpt-4o-mini:000000000000000" + std::to_string(i)));
      ASSERT_TRUE(disk.insert(std::make_shared<const cache::Entry>(stored.back())));
    }
  }
  // A damaged entry file and a temp file a crash left behind.
  const fs::path damaged = cache::DiskTier::entryPath(tierDir, "gpt-4o-mini:00000000000000ff");
  fs::create_directories(damaged.parent_path());
  writeBytes(damaged, "LLMC garbage", std::ios::trunc);
  writeBytes(
      fs::path(cache::DiskTier::entryPath(tierDir, stored[0].cacheKey).string() + ".tmp.abc123"),
      cache::encodeEntry(makeTestEntry("gpt-4o-mini:tmp"), {}), std::ios::trunc);
  const cache::Entry stale = makeTestEntry("gpt-4o-mini:stale");
  ASSERT_TRUE(index_->upsert(stale, kTierMemory, 1, 1));

  auto report = rebuildFromDiskTier(*index_, tierDir);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->files, 4u);
  EXPECT_EQ(report->entries, 3u);
  EXPECT_EQ(report->corrupt, 1u);
  ASSERT_EQ(report->problems.size(), 1u);
  EXPECT_NE(report->problems[0].find(damaged.filename().string()), std::string::npos);
  EXPECT_FALSE(index_->byCacheId(stale.cacheId).value());
  for (const auto& e : stored) {
    auto row = index_->byCacheId(e.cacheId).value();
    ASSERT_TRUE(row) << e.cacheKey;
    EXPECT_EQ(row->cacheKey, e.cacheKey);
    EXPECT_EQ(row->tiers, kTierDisk);
    EXPECT_EQ(row->sizeStored,
              static_cast<int64_t>(fs::file_size(cache::DiskTier::entryPath(tierDir, e.cacheKey))));
    EXPECT_EQ(row->sizeRaw, static_cast<int64_t>(toJson(cache::entryToJson(e)).size()));
    EXPECT_EQ(row->tags, e.tags);
  }
  EXPECT_EQ(index_->stats()->entries, 3u);
}

TEST_F(IndexTest, AFailedRebuildKeepsTheOldRows) {
  const cache::Entry e = makeTestEntry("m:1");
  ASSERT_TRUE(index_->upsert(e, 1, 1, 1));
  auto report = rebuildFromDiskTier(*index_, dir_.path() / "no-such-tier");
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code, Errc::NotFound);
  EXPECT_TRUE(index_->byCacheId(e.cacheId).value());

  auto thrown = index_->rebuildFrom([&](const EntrySink& sink) {
    sink(makeTestEntry("m:2"), kTierDisk, 1, 1);
    throw std::runtime_error("disk went away");
  });
  ASSERT_FALSE(thrown);
  EXPECT_NE(thrown.error().message.find("disk went away"), std::string::npos);
  EXPECT_EQ(index_->stats()->entries, 1u);
}

TEST_F(IndexTest, ADiskTierOfAnotherLayoutVersionIsRefused) {
  const fs::path tierDir = dir_.path() / "tier";
  fs::create_directories(tierDir / "entries");
  writeBytes(tierDir / "disk-layout-version", "2\n", std::ios::trunc);
  auto r = scanDiskTier(tierDir, [](const cache::Entry&, unsigned, size_t, size_t) {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Corrupt);
}

// --- events and prompt signatures (schema version 2) ------------------------------------------

TEST_F(IndexTest, AVersionOneFileGainsTheEventsTableAndKeepsItsRows) {
  reopenFromVersion(1);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(index_->schemaVersion(), kSchemaVersion);  // every later step runs too
  EXPECT_EQ(
      scalar(path_,
             "SELECT COUNT(*) FROM entries WHERE cache_id = 'id1' AND prompt_simhash IS NULL"),
      1);
  EXPECT_EQ(scalar(path_, "SELECT COUNT(*) FROM events"), 0);
}

TEST_F(IndexTest, AppendedEventsAreStoredAndPurgedByTime) {
  EventRow a;
  a.timeMs = 1000;
  a.cacheKey = "gpt-4o:1";
  a.model = "gpt-4o";
  a.outcome = "MISS";
  a.latencyMs = 12.5;
  a.cost = 0.25;
  EventRow b = a;
  b.timeMs = 5000;
  b.outcome = "HIT";
  b.costSaved = 0.25;
  ASSERT_TRUE(index_->appendEvents(std::vector<EventRow>{a, b}));
  EXPECT_EQ(scalar(path_, "SELECT COUNT(*) FROM events"), 2);
  EXPECT_EQ(scalar(path_, "SELECT time FROM events WHERE outcome = 'HIT'"), 5000);
  EXPECT_EQ(index_->purgeEvents(fromUnixMillis(5000)).value(), 1u);
  EXPECT_EQ(scalar(path_, "SELECT COUNT(*) FROM events"), 1);
}

TEST_F(IndexTest, AVersionThreeFileHasItsEventsClusteredByTimeAndKeepsThemAsOneRequestEach) {
  reopenFromVersion(3,
                    "INSERT INTO events(id, time, cache_key, outcome) VALUES(5, 7, 'k:1', 'HIT'), "
                    "(6, 7, 'k:2', 'MISS'), (7, 3, 'k:3', 'MISS')");
  if (HasFatalFailure()) return;
  EXPECT_EQ(index_->schemaVersion(), kSchemaVersion);
  EXPECT_EQ(
      scalar(path_,
             "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"),
      0);
  EXPECT_EQ(scalar(path_, "SELECT COUNT(*) FROM events"), 3);
  // Version 5: old rows are one request each.
  EXPECT_EQ(scalar(path_, "SELECT SUM(requests) FROM events"), 3);
  EXPECT_EQ(
      scalar(path_,
             "SELECT id FROM events WHERE cache_key = 'k:1' AND outcome = 'HIT' AND time = 7"),
      (7 << 20) | 5);
  EXPECT_EQ(scalar(path_, "SELECT id FROM events WHERE cache_key = 'k:2'"), (7 << 20) | 6);
  // The table's order is now the time order.
  EXPECT_EQ(scalar(path_, "SELECT cache_key = 'k:3' FROM events ORDER BY id LIMIT 1"), 1);
  // New events land after the old ones, in time order, and a window is an id range.
  EventRow later;
  later.timeMs = 9;
  later.outcome = "HIT";
  later.requests = 4;  // merged hits
  ASSERT_TRUE(index_->appendEvents(std::vector<EventRow>{later}));
  EXPECT_EQ(scalar(path_, "SELECT time FROM events ORDER BY id DESC LIMIT 1"), 9);
  EXPECT_EQ(scalar(path_, "SELECT requests FROM events ORDER BY id DESC LIMIT 1"), 4);
  EXPECT_EQ(scalar(path_, "SELECT COUNT(*) FROM events WHERE id >= " +
                              std::to_string(Index::eventIdBound(7)) + " AND id < " +
                              std::to_string(Index::eventIdBound(9))),
            2);
}

TEST_F(IndexTest, AVersionFiveFileGainsTheEventsTenantNamespaceAndSeedHash) {
  reopenFromVersion(5,
                    "INSERT INTO events(id, time, cache_key, outcome, caller_hash) "
                    "VALUES((7 << 20) | 1, 7, 'k:1', 'MISS', 'c1')");
  if (HasFatalFailure()) return;
  EXPECT_EQ(index_->schemaVersion(), kSchemaVersion);
  // The old row: unscoped, no namespace, seed hash unknown (NULL).
  EXPECT_EQ(scalar(path_,
                   "SELECT COUNT(*) FROM events WHERE cache_key = 'k:1' AND tenant = '' AND "
                   "namespace = '' AND seed_hash IS NULL AND caller_hash = 'c1'"),
            1);
  // New rows carry them; a seed hash of 0 means unknown and is stored as NULL.
  EventRow a;
  a.timeMs = 9;
  a.cacheKey = "k:2";
  a.outcome = "MISS";
  a.tenant = "acme";
  a.keyNamespace = "faq";
  a.seedHash = 0x8000000000000001ull;  // the high bit: a negative INTEGER, read back exact
  EventRow b = a;
  b.cacheKey = "k:3";
  b.seedHash = 0;
  ASSERT_TRUE(index_->appendEvents(std::vector<EventRow>{a, b}));
  std::vector<SqlValue> got;
  ASSERT_TRUE(index_->query("SELECT tenant, namespace, seed_hash FROM events WHERE cache_key = ?1",
                            {std::string("k:2")},
                            [&](const std::vector<SqlValue>& r) { got = r; }));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(std::get<std::string>(got[0]), "acme");
  EXPECT_EQ(std::get<std::string>(got[1]), "faq");
  EXPECT_EQ(static_cast<uint64_t>(std::get<int64_t>(got[2])), 0x8000000000000001ull);
  EXPECT_EQ(scalar(path_, "SELECT seed_hash IS NULL FROM events WHERE cache_key = 'k:3'"), 1);
}

TEST_F(IndexTest, AVersionSixFileGainsTheEventsSemanticColumnAndKeepsItsRowsAsExact) {
  reopenFromVersion(6,
                    "INSERT INTO events(id, time, cache_key, outcome, requests, tenant, "
                    "cost_saved) VALUES((7 << 20) | 1, 7, 'k:1', 'HIT', 3, 'acme', 0.75)");
  if (HasFatalFailure()) return;
  EXPECT_EQ(index_->schemaVersion(), kSchemaVersion);
  // The old row is kept whole, and reads as an exact hit: nothing was told apart before v7.
  EXPECT_EQ(scalar(path_,
                   "SELECT COUNT(*) FROM events WHERE id = (7 << 20) | 1 AND cache_key = 'k:1' "
                   "AND outcome = 'HIT' AND requests = 3 AND tenant = 'acme' AND "
                   "cost_saved = 0.75 AND semantic = 0"),
            1);
  // New rows carry it: 1 for a semantic hit, 0 otherwise.
  EventRow a;
  a.timeMs = 9;
  a.cacheKey = "k:2";
  a.outcome = "HIT";
  a.semantic = true;
  EventRow b = a;
  b.cacheKey = "k:3";
  b.semantic = false;
  ASSERT_TRUE(index_->appendEvents(std::vector<EventRow>{a, b}));
  EXPECT_EQ(scalar(path_, "SELECT semantic FROM events WHERE cache_key = 'k:2'"), 1);
  EXPECT_EQ(scalar(path_, "SELECT semantic FROM events WHERE cache_key = 'k:3'"), 0);
}

TEST_F(IndexTest, EventIdsKeepTimesOutsideTheirRangeInOrder) {
  EXPECT_EQ(Index::eventIdBound(-5), 0);
  EXPECT_EQ(Index::eventIdBound(std::numeric_limits<int64_t>::max()),
            std::numeric_limits<int64_t>::max());
  EXPECT_EQ(Index::eventIdBound(1000), int64_t{1000} << Index::kEventSequenceBits);
  EventRow before1970, far, now;
  before1970.timeMs = -1;
  far.timeMs = std::numeric_limits<int64_t>::max();
  now.timeMs = 1'700'000'000'000;
  for (EventRow* r : {&before1970, &far, &now}) r->outcome = "MISS";
  ASSERT_TRUE(index_->appendEvents(std::vector<EventRow>{far, now, before1970}));
  EXPECT_EQ(scalar(path_, "SELECT COUNT(*) FROM events"), 3);
  EXPECT_EQ(scalar(path_, "SELECT time FROM events ORDER BY id LIMIT 1"),
            -1);  // ids clamp, times stay
  EXPECT_EQ(scalar(path_, "SELECT time = 9223372036854775807 FROM events ORDER BY id DESC LIMIT 1"),
            1);
}

// Appends n HIT events whose keys are keyLength characters: ~n * (keyLength + 20) bytes of WAL.
void appendHits(Index& index, size_t n, size_t keyLength) {
  std::vector<EventRow> rows(n);
  for (size_t i = 0; i < rows.size(); ++i) {
    rows[i].timeMs = static_cast<int64_t>(i);
    rows[i].outcome = "HIT";
    rows[i].cacheKey = std::string(keyLength, 'k');
  }
  ASSERT_TRUE(index.appendEvents(rows));
}

// Whether the database file (not its WAL) grows by more than `by` bytes within `within`: pages
// reach it only through a checkpoint.
bool fileGrows(const fs::path& path, uintmax_t from, uintmax_t by,
               std::chrono::milliseconds within) {
  for (auto deadline = std::chrono::steady_clock::now() + within;
       std::chrono::steady_clock::now() < deadline;) {
    if (fs::file_size(path) > from + by) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return fs::file_size(path) > from + by;
}

TEST(IndexCheckpoints, TheBackgroundCheckpointerCopiesTheWalIntoTheDatabaseFile) {
  // Below kWalRaisePages the writing connection does not checkpoint: pages reach the main file
  // only through the background checkpointer.
  test::TempDir dir;
  const fs::path path = dir.path() / "index.sqlite";
  auto index = Index::open(
      path, {.backgroundCheckpoints = true, .checkpointInterval = std::chrono::milliseconds(20)});
  ASSERT_TRUE(index);
  const auto before = fs::file_size(path);
  appendHits(**index, 2000, 64);
  // At idle priority the checkpointer may wait for a free core (a loaded test machine).
  EXPECT_TRUE(fileGrows(path, before, 100'000, std::chrono::seconds(30))) << fs::file_size(path);
  EXPECT_EQ(scalar(path, "SELECT COUNT(*) FROM events"), 2000);
}

TEST(IndexCheckpoints, ALargeWalWakesTheCheckpointerBeforeItsInterval) {
  // Past kWalRaisePages the commit's WAL hook raises and wakes the checkpointer at once, instead
  // of leaving the WAL to grow until its next turn (an hour away here).
  test::TempDir dir;
  const fs::path path = dir.path() / "index.sqlite";
  auto index = Index::open(
      path, {.backgroundCheckpoints = true, .checkpointInterval = std::chrono::hours(1)});
  ASSERT_TRUE(index);
  const auto before = fs::file_size(path);
  appendHits(**index, 30000, 200);  // ~7 MB of WAL
  EXPECT_TRUE(fileGrows(path, before, 1'000'000, std::chrono::seconds(30))) << fs::file_size(path);
}

TEST(IndexCheckpoints, WithoutTheBackgroundCheckpointerTheWritingConnectionCheckpoints) {
  test::TempDir dir;
  const fs::path path = dir.path() / "index.sqlite";
  auto index = Index::open(path);
  ASSERT_TRUE(index);
  const auto before = fs::file_size(path);
  appendHits(**index, 30000, 200);  // ~7 MB: > 1,000 WAL pages, SQLite's automatic checkpoint
  EXPECT_GT(fs::file_size(path), before + 1'000'000);
}

TEST_F(IndexTest, ABatchSpanningSeveralYieldsStoresEveryRowsOwnText) {
  // The writer binds text without copying it and yields every kEventRowsPerYield rows: each row
  // must still land with its own strings.
  std::vector<EventRow> rows;
  for (int i = 0; i < static_cast<int>(Index::kEventRowsPerYield) * 3 + 5; ++i) {
    EventRow r;
    r.timeMs = i;
    r.cacheKey =
        "model-" + std::to_string(i) + ":" + std::string(40, 'a' + static_cast<char>(i % 26));
    r.model = "model-" + std::to_string(i);
    r.outcome = i % 2 ? "HIT" : "MISS";
    r.callerHash = "caller-" + std::to_string(i * 7);
    r.semantic = i % 3 == 0;
    rows.push_back(std::move(r));
  }
  ASSERT_TRUE(index_->appendEvents(rows));
  EXPECT_EQ(scalar(path_, "SELECT COUNT(*) FROM events"), static_cast<int64_t>(rows.size()));
  for (const EventRow& r : rows) {
    EXPECT_EQ(scalar(path_, "SELECT COUNT(*) FROM events WHERE time = " + std::to_string(r.timeMs) +
                                " AND cache_key = '" + r.cacheKey + "' AND model = '" + r.model +
                                "' AND outcome = '" + r.outcome + "' AND caller_hash = '" +
                                r.callerHash + "' AND semantic = " + (r.semantic ? "1" : "0")),
              1)
        << r.timeMs;
  }
}

TEST_F(IndexTest, AnEventsSimhashFillsAnEntryThatHasNoneAndSetPromptSignatureOverwrites) {
  const cache::Entry e = makeTestEntry("gpt-4o:0000000000000009");
  ASSERT_TRUE(index_->upsert(e, kTierMemory, 10, 20));
  EventRow ev;
  ev.timeMs = 1;
  ev.cacheKey = e.cacheKey;
  ev.outcome = "MISS";
  ev.promptSimhash =
      0xF000000000000001ull;  // the high bit: stored as a negative INTEGER, read back exact
  ev.promptPreview = "hello world";
  ASSERT_TRUE(index_->appendEvents(std::vector<EventRow>{ev}));
  std::vector<SqlValue> got;
  ASSERT_TRUE(
      index_->query("SELECT prompt_simhash, prompt_preview FROM entries WHERE cache_key = ?1",
                    {std::string(e.cacheKey)}, [&](const std::vector<SqlValue>& r) { got = r; }));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(static_cast<uint64_t>(std::get<int64_t>(got[0])), 0xF000000000000001ull);
  EXPECT_EQ(std::get<std::string>(got[1]), "hello world");

  ev.promptSimhash = 7;  // a later event does not overwrite a signature already there
  ASSERT_TRUE(index_->appendEvents(std::vector<EventRow>{ev}));
  EXPECT_EQ(scalar(path_, "SELECT prompt_simhash = -1152921504606846975 FROM entries"), 1);

  EXPECT_TRUE(index_->setPromptSignature(e.cacheKey, 42, "p").value());
  EXPECT_EQ(scalar(path_, "SELECT prompt_simhash FROM entries"), 42);
  EXPECT_FALSE(index_->setPromptSignature("no:such", 1, "").value());
}

TEST_F(IndexTest, QueryBindsParametersAndRefusesStatementsThatWrite) {
  ASSERT_TRUE(index_->upsert(makeTestEntry("gpt-4o:0000000000000001"), kTierMemory, 10, 20));
  int rows = 0;
  ASSERT_TRUE(
      index_->query("SELECT cache_key, size_stored, 0.5, NULL FROM entries WHERE size_raw = ?1",
                    {int64_t{20}}, [&](const std::vector<SqlValue>& r) {
                      ++rows;
                      EXPECT_EQ(std::get<std::string>(r[0]), "gpt-4o:0000000000000001");
                      EXPECT_EQ(std::get<int64_t>(r[1]), 10);
                      EXPECT_EQ(std::get<double>(r[2]), 0.5);
                      EXPECT_TRUE(std::holds_alternative<std::monostate>(r[3]));
                    }));
  EXPECT_EQ(rows, 1);
  auto w = index_->query("DELETE FROM entries", {}, [](const std::vector<SqlValue>&) {});
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, Errc::InvalidArgument);
  EXPECT_EQ(scalar(path_, "SELECT COUNT(*) FROM entries"), 1);
}

}  // namespace
}  // namespace llmcache::index
