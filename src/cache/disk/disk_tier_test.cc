#include "cache/disk/disk_tier.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <thread>

#include "cache/test_entry.h"
#include "cache/tier_conformance.h"

namespace llmcache::cache {
namespace {

namespace fs = std::filesystem;
using test::CacheTierConformance;
using test::makeTestEntry;
using test::TierFactory;

fs::path freshTempDir() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  fs::path dir =
      fs::temp_directory_path() / ("llmcache-disk-test-" + std::to_string(::getpid()) + "-" +
                                   std::to_string(counter++) + "-" + std::to_string(rd()));
  fs::create_directories(dir);
  return dir;
}

std::string readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
void writeFile(const fs::path& p, std::string_view bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TierFactory diskFactory(std::string name, CodecOptions codec, bool backgroundScan = false,
                        bool sync = true, PolicyKind policy = PolicyKind::Lru) {
  // The factory's functions share the directories made since the last cleanup; the suite runs
  // one case at a time. reopen and corrupt act on the directory of the last make().
  struct Dirs {
    fs::path current;
    std::vector<fs::path> all;
    fs::path fresh() {
      all.push_back(freshTempDir());
      return all.back();
    }
  };
  auto dirs = std::make_shared<Dirs>();
  TierFactory f;
  f.name = std::move(name);
  f.make = [dirs, codec, sync, policy] {
    dirs->current = dirs->fresh();
    return std::make_unique<DiskTier>(DiskTierOptions{
        .dir = dirs->current, .codec = codec, .policy = policy, .syncEachWrite = sync});
  };
  f.makeBounded = [dirs, codec, sync, policy](size_t n) {
    return std::make_unique<DiskTier>(DiskTierOptions{.dir = dirs->fresh(),
                                                      .maxEntries = n,
                                                      .codec = codec,
                                                      .policy = policy,
                                                      .syncEachWrite = sync});
  };
  f.lruOrder = policy == PolicyKind::Lru;
  f.reopen = [dirs, codec, backgroundScan, sync, policy] {
    return std::make_unique<DiskTier>(DiskTierOptions{.dir = dirs->current,
                                                      .codec = codec,
                                                      .policy = policy,
                                                      .scanInBackground = backgroundScan,
                                                      .syncEachWrite = sync});
  };
  f.corrupt = [dirs](std::string_view key) {
    const fs::path p = DiskTier::entryPath(dirs->current, key);
    std::string bytes = readFile(p);
    ASSERT_GT(bytes.size(), 20u);
    bytes[bytes.size() / 2] ^= 0x5a;
    writeFile(p, bytes);
  };
  f.cleanup = [dirs] {
    std::error_code ec;
    for (const auto& d : dirs->all) fs::remove_all(d, ec);
    dirs->all.clear();
  };
  return f;
}

INSTANTIATE_TEST_SUITE_P(
    Disk, CacheTierConformance,
    ::testing::Values(diskFactory("Plain", CodecOptions{}),
                      diskFactory("Zstd", CodecOptions{.compress = true}),
                      diskFactory("PlainBackgroundCount", CodecOptions{}, true),
                      diskFactory("PlainUnsynced", CodecOptions{}, false, false),
                      diskFactory("Encrypted", CodecOptions{.key = EncryptionKey{1, 2, 3}}),
                      diskFactory("ZstdEncrypted",
                                  CodecOptions{.compress = true, .key = EncryptionKey{4, 5, 6}}),
                      diskFactory("Sieve", CodecOptions{}, false, true, PolicyKind::Sieve),
                      diskFactory("Gdsf", CodecOptions{}, false, true, PolicyKind::Gdsf),
                      diskFactory("CostSieve", CodecOptions{}, true, true, PolicyKind::CostSieve)),
    test::tierFactoryName);

EntryPtr entry(std::string key, std::string content = "Hello!") {
  return std::make_shared<const Entry>(makeTestEntry(std::move(key), std::move(content)));
}

class DiskTierTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = freshTempDir(); }
  void TearDown() override { fs::remove_all(dir_); }

  DiskTierOptions options(size_t maxEntries = 1000, size_t maxBytes = size_t{1} << 30) {
    return DiskTierOptions{.dir = dir_ / "cache", .maxEntries = maxEntries, .maxBytes = maxBytes};
  }
  static std::optional<EntryPtr> get(DiskTier& tier, std::string_view key) {
    auto r = tier.lookup(key);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? *r : std::nullopt;
  }
  size_t filesUnder(const fs::path& p) {
    size_t n = 0;
    for (auto& f : fs::recursive_directory_iterator(p))
      if (f.is_regular_file()) ++n;
    return n;
  }

  fs::path dir_;
};

TEST_F(DiskTierTest, KeepsEntriesAcrossARestart) {
  auto e = entry("gpt-4o-mini:0011223344556677");
  {
    DiskTier tier(options());
    ASSERT_TRUE(tier.insert(e));
  }
  DiskTier again(options());
  EXPECT_EQ(again.entryCount(), 1u);
  EXPECT_EQ(again.byteCount(), fs::file_size(again.pathFor(e->cacheKey)));
  auto found = get(again, e->cacheKey);
  ASSERT_TRUE(found);
  EXPECT_EQ(**found, *e);
}

TEST_F(DiskTierTest, TheEvictionListenerHearsTheKeysOfTheEvicted) {
  {
    DiskTier tier(options());
    ASSERT_TRUE(
        tier.insert(entry("gpt-4.1:0000000000000001")));  // known by its file after a restart
  }
  DiskTier tier(options(2));
  std::vector<std::string> heard;
  tier.setEvictionListener([&](std::string_view key) { heard.emplace_back(key); });
  ASSERT_TRUE(tier.insert(entry("gpt-4.1:0000000000000002")));
  ASSERT_TRUE(tier.insert(entry("gpt-4.1:0000000000000003")));  // evicts the first: a file name
  ASSERT_TRUE(tier.insert(entry("gpt-4.1:0000000000000004")));  // evicts #2: its cache key
  ASSERT_EQ(heard.size(), 2u);
  EXPECT_EQ(heard[0], "gpt-4_1_0000000000000001");  // its file name
  EXPECT_EQ(heard[1], "gpt-4.1:0000000000000002");  // not its sanitized file name
  EXPECT_EQ(tier.entryCount(), 2u);
}

TEST_F(DiskTierTest, StoresEachKeyAtItsDocumentedPath) {
  DiskTier tier(options());
  ASSERT_TRUE(tier.insert(entry("openai/gpt-4.1-mini:00112233445566ab")));
  const fs::path expected =
      dir_ / "cache" / "entries" / "ab" / "openai_gpt-4_1-mini_00112233445566ab.entry";
  EXPECT_EQ(tier.pathFor("openai/gpt-4.1-mini:00112233445566ab"), expected);
  EXPECT_TRUE(fs::exists(expected));
  EXPECT_EQ(readFile(dir_ / "cache" / "disk-layout-version"), "1\n");
}

TEST_F(DiskTierTest, NeverServesACorruptEntryAndDeletesIt) {
  DiskTier tier(options());
  ASSERT_TRUE(tier.insert(entry("k:01")));
  const fs::path p = tier.pathFor("k:01");
  std::string bytes = readFile(p);
  bytes[bytes.size() - 3] ^= 0x01;  // one bit in the payload: only the checksum can tell
  writeFile(p, bytes);

  EXPECT_FALSE(get(tier, "k:01"));
  EXPECT_FALSE(fs::exists(p));
  EXPECT_EQ(tier.corruptEntries(), 1u);
  EXPECT_EQ(tier.entryCount(), 0u);
  EXPECT_EQ(tier.byteCount(), 0u);
}

TEST_F(DiskTierTest, SyncEachWriteFsyncsTheFileAndItsFolderAndTheUnsyncedModeNone) {
  // CACHE_DISK_SYNC=always: the file, then its folder (and entries/ when the fan-out folder is
  // new); interval and never: no fsync at all on the write path (the gateway's syncfs or the
  // kernel's writeback make the files durable), and the entry reads back the same.
  {
    DiskTier synced(options());
    ASSERT_TRUE(synced.insert(entry("k:01")));
    EXPECT_EQ(synced.fsyncs(), 3u);  // entries/, the file, its folder
    ASSERT_TRUE(synced.insert(entry("k:101")));
    EXPECT_EQ(synced.fsyncs(), 5u);  // the same fan-out folder: the file and the folder
  }
  DiskTierOptions o = options();
  o.dir = dir_ / "unsynced";
  o.syncEachWrite = false;
  DiskTier unsynced(o);
  std::vector<EntryPtr> written;
  for (int i = 0; i < 20; ++i) {
    written.push_back(entry("k:" + std::to_string(10 + i)));
    ASSERT_TRUE(unsynced.insert(written.back()));
  }
  EXPECT_EQ(unsynced.fsyncs(), 0u);
  auto found = get(unsynced, "k:15");
  ASSERT_TRUE(found);
  EXPECT_EQ(**found, *written[5]);
}

TEST_F(DiskTierTest, LruEvictsTheLeastRecentlyUsedAfterSlotsAreReused) {
  DiskTierOptions o = options(3);
  o.policy = PolicyKind::Lru;
  DiskTier tier(o);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(tier.insert(entry("k:" + std::to_string(i))));
  ASSERT_TRUE(tier.insert(entry("k:0")));  // evicted earlier: a new file again
  EXPECT_TRUE(get(tier, "k:5"));
  EXPECT_TRUE(get(tier, "k:4"));
  EXPECT_FALSE(get(tier, "k:3"));
}

// The gateway's miss explainer read the tenant's newest entries through lookup(), newest first,
// which turned LRU's order over: the disk then dropped its newest entry (tests/gateway/
// eviction_test.py). peek() reads without telling the policy or touching the file's mtime.
TEST_F(DiskTierTest, PeekIsNotAUse) {
  DiskTierOptions o = options(3);
  o.policy = PolicyKind::Lru;
  DiskTier tier(o);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(tier.insert(entry("k:" + std::to_string(i))));
  const auto before = fs::last_write_time(tier.pathFor("k:0"));
  auto peeked = tier.peek("k:0");
  ASSERT_TRUE(peeked && *peeked);
  EXPECT_EQ((**peeked)->cacheKey, "k:0");
  EXPECT_EQ(fs::last_write_time(tier.pathFor("k:0")), before);
  ASSERT_TRUE(tier.insert(entry("k:3")));
  EXPECT_FALSE(fs::exists(tier.pathFor("k:0")));  // still the least recently used
  EXPECT_TRUE(fs::exists(tier.pathFor("k:1")));
  // A lookup is a use: k:1 stays and k:2 goes.
  EXPECT_TRUE(get(tier, "k:1"));
  ASSERT_TRUE(tier.insert(entry("k:4")));
  EXPECT_TRUE(fs::exists(tier.pathFor("k:1")));
  EXPECT_FALSE(fs::exists(tier.pathFor("k:2")));
  auto missing = tier.peek("k:0");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
}

TEST_F(DiskTierTest, TruncatedFileIsAMissAndIsDeleted) {
  DiskTier tier(options());
  ASSERT_TRUE(tier.insert(entry("k:01")));
  const fs::path p = tier.pathFor("k:01");
  fs::resize_file(p, fs::file_size(p) / 2);
  EXPECT_FALSE(get(tier, "k:01"));
  EXPECT_FALSE(fs::exists(p));
  EXPECT_EQ(tier.corruptEntries(), 1u);
}

TEST_F(DiskTierTest, EmptyFileIsAMissAndIsDeleted) {
  DiskTier tier(options());
  ASSERT_TRUE(tier.insert(entry("k:01")));
  fs::resize_file(tier.pathFor("k:01"), 0);
  EXPECT_FALSE(get(tier, "k:01"));
  EXPECT_FALSE(fs::exists(tier.pathFor("k:01")));
}

TEST_F(DiskTierTest, PathTraversalKeysStayInsideTheDirectory) {
  const fs::path root = dir_ / "cache";
  DiskTier tier(options());
  for (std::string key :
       std::vector<std::string>{"../../etc/passwd", "/etc/passwd", "..", ".", "a/../../../b",
                                "x\\..\\..\\y", std::string("nul\0byte", 8), "~root", "k:\n"}) {
    auto e = entry(key);
    ASSERT_TRUE(tier.insert(e)) << key;
    const fs::path p = tier.pathFor(key);
    const auto rel = fs::relative(fs::weakly_canonical(p), fs::weakly_canonical(root / "entries"));
    EXPECT_FALSE(rel.empty() || *rel.begin() == "..") << key << " -> " << p;
    EXPECT_EQ(std::distance(rel.begin(), rel.end()), 2)
        << key << " -> " << p;  // {fan}/{name}.entry
    auto found = get(tier, key);
    ASSERT_TRUE(found) << key;
    EXPECT_EQ(**found, *e);
  }
  // Nothing was written anywhere but inside the cache directory.
  EXPECT_EQ(filesUnder(dir_), filesUnder(root));
}

TEST_F(DiskTierTest, KeysThatSanitizeAlikeAreAMissNotAWrongAnswer) {
  DiskTier tier(options());
  ASSERT_TRUE(tier.insert(entry("gpt-4.1:00000000000000aa", "for the dotted key")));
  ASSERT_EQ(tier.pathFor("gpt-4.1:00000000000000aa"), tier.pathFor("gpt-4_1_00000000000000aa"));
  EXPECT_FALSE(get(tier, "gpt-4_1_00000000000000aa"));
  EXPECT_TRUE(get(tier, "gpt-4.1:00000000000000aa"));  // the miss did not delete a good entry
}

TEST_F(DiskTierTest, VeryLongKeysGetBoundedDistinctFileNames) {
  DiskTier tier(options());
  const std::string a = std::string(300, 'm') + ":00000000000000aa";
  const std::string b = std::string(299, 'm') + "n:00000000000000aa";
  EXPECT_LE(DiskTier::sanitizeKey(a).size(), 200u);
  EXPECT_NE(DiskTier::sanitizeKey(a), DiskTier::sanitizeKey(b));
  ASSERT_TRUE(tier.insert(entry(a)));
  ASSERT_TRUE(tier.insert(entry(b)));
  EXPECT_TRUE(get(tier, a));
  EXPECT_TRUE(get(tier, b));
}

TEST_F(DiskTierTest, LeftoverTempFilesAreRemovedAtStart) {
  fs::path stale;
  {
    DiskTier tier(options());
    ASSERT_TRUE(tier.insert(entry("k:01")));
    stale = tier.pathFor("k:01").string() + ".tmp.AbC123";
    writeFile(stale, "half a write");
  }
  DiskTier again(options());
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_EQ(again.entryCount(), 1u);
  EXPECT_TRUE(get(again, "k:01"));
}

TEST_F(DiskTierTest, ByteBoundEvictsTheLeastRecentlyUsed) {
  const size_t one = encodeEntry(*entry("k:0", std::string(20000, 'x')), {}).size();
  DiskTier tier(options(1000, 3 * one + one / 2));
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(tier.insert(entry("k:" + std::to_string(i), std::string(20000, 'x'))));
  ASSERT_TRUE(get(tier, "k:0"));
  ASSERT_TRUE(tier.insert(entry("k:3", std::string(20000, 'x'))));
  EXPECT_EQ(tier.entryCount(), 3u);
  EXPECT_LE(tier.byteCount(), 3 * one + one / 2);
  EXPECT_EQ(tier.evictions(), 1u);
  EXPECT_FALSE(get(tier, "k:1"));
  EXPECT_FALSE(fs::exists(tier.pathFor("k:1")));
  EXPECT_TRUE(get(tier, "k:0"));
}

TEST_F(DiskTierTest, EntryLargerThanTheByteBoundIsRefused) {
  DiskTier tier(options(1000, 4096));
  ASSERT_TRUE(tier.insert(entry("k:small")));
  auto r = tier.insert(entry("k:huge", std::string(10000, 'x')));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::TooLarge);
  EXPECT_TRUE(get(tier, "k:small"));
  EXPECT_FALSE(fs::exists(tier.pathFor("k:huge")));
}

TEST_F(DiskTierTest, RestartRebuildsLruOrderFromModificationTimes) {
  {
    DiskTier tier(options());
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(tier.insert(entry("k:" + std::to_string(i))));
    // Make the on-disk ages explicit (file system clocks are coarse): k:2 oldest, then k:0, ...
    const int order[] = {2, 0, 3, 1};
    for (int age = 0; age < 4; ++age) {
      const fs::path p = tier.pathFor("k:" + std::to_string(order[age]));
      struct timespec times[2] = {{1000 + age, 0}, {1000 + age, 0}};
      ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), times, 0), 0);
    }
  }
  // Reopened with a smaller bound: the two oldest files go at once.
  DiskTier again(options(2));
  EXPECT_EQ(again.entryCount(), 2u);
  EXPECT_FALSE(get(again, "k:2"));
  EXPECT_FALSE(get(again, "k:0"));
  EXPECT_TRUE(get(again, "k:3"));
  EXPECT_TRUE(get(again, "k:1"));
}

// A tier opened with scanInBackground whose count is held before its merge until release().
struct HeldScan {
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  DiskTierOptions apply(DiskTierOptions o) {
    o.scanInBackground = true;
    o.beforeScanMerge = [f = opened] { f.wait(); };
    return o;
  }
  void release() {
    if (!released) gate.set_value();
    released = true;
  }
  ~HeldScan() { release(); }  // a failed assertion must not leave the scan (and the test) waiting
  bool released = false;
  static bool waitScanned(const DiskTier& tier) {
    for (int i = 0; i < 500 && !tier.scanned(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return tier.scanned();
  }
};

TEST_F(DiskTierTest, BackgroundCountServesAtOnceAndKeepsWhatChangedMeanwhile) {
  {
    DiskTier tier(options());
    for (int i = 0; i < 5; ++i)
      ASSERT_TRUE(tier.insert(entry("k:" + std::to_string(i), "old " + std::to_string(i))));
  }
  // Temp files: one a crash left long ago, and one as young as a write of ours in flight while
  // the count walks (the count must not pull it from under that write).
  const fs::path stale = DiskTier::entryPath(dir_ / "cache", "k:0").string() + ".tmp.stale1";
  const fs::path young = DiskTier::entryPath(dir_ / "cache", "k:0").string() + ".tmp.young1";
  writeFile(stale, "half an entry");
  writeFile(young, "half an entry");
  struct timespec old[2] = {{1000, 0}, {1000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, stale.c_str(), old, 0), 0);
  HeldScan held;
  DiskTier tier(held.apply(options()));
  // Before the count: files answer directly, writes and erases take effect.
  EXPECT_FALSE(tier.scanned());
  auto hit = get(tier, "k:0");
  ASSERT_TRUE(hit);
  EXPECT_EQ((*hit)->cacheKey, "k:0");
  ASSERT_TRUE(tier.insert(entry("k:new")));
  auto erased = tier.erase("k:1");
  ASSERT_TRUE(erased && *erased);
  EXPECT_FALSE(get(tier, "k:1"));
  EXPECT_FALSE(get(tier, "k:absent"));
  EXPECT_EQ(tier.entryCount(), 2u);  // k:0 (read) and k:new (written): the rest is not counted yet

  held.release();
  ASSERT_TRUE(HeldScan::waitScanned(tier));
  EXPECT_EQ(tier.entryCount(), 5u);  // k:0, k:2, k:3, k:4, k:new: the erased k:1 did not come back
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(young));
  EXPECT_FALSE(get(tier, "k:1"));
  EXPECT_FALSE(fs::exists(tier.pathFor("k:1")));
  EXPECT_TRUE(get(tier, "k:2"));
  EXPECT_TRUE(get(tier, "k:new"));
}

TEST_F(DiskTierTest, BackgroundCountEnforcesTheBoundsWhenItCompletes) {
  {
    DiskTier tier(options());
    for (int i = 0; i < 6; ++i) ASSERT_TRUE(tier.insert(entry("k:" + std::to_string(i))));
    for (int i = 0; i < 6; ++i) {  // k:0 oldest ... k:5 newest
      const fs::path p = tier.pathFor("k:" + std::to_string(i));
      struct timespec times[2] = {{1000 + i, 0}, {1000 + i, 0}};
      ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), times, 0), 0);
    }
  }
  HeldScan held;
  DiskTier tier(held.apply(options(3)));
  EXPECT_EQ(filesUnder(dir_ / "cache" / "entries"), 6u);  // nothing evicted from a partial count
  held.release();
  ASSERT_TRUE(HeldScan::waitScanned(tier));
  EXPECT_EQ(tier.entryCount(), 3u);
  EXPECT_EQ(filesUnder(dir_ / "cache" / "entries"), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(get(tier, "k:" + std::to_string(i))) << i;
  for (int i = 3; i < 6; ++i) EXPECT_TRUE(get(tier, "k:" + std::to_string(i))) << i;
}

TEST_F(DiskTierTest, RefusesADirectoryWithAnotherLayoutVersion) {
  fs::create_directories(dir_ / "cache");
  writeFile(dir_ / "cache" / "disk-layout-version", "2\n");
  EXPECT_THROW(DiskTier tier(options()), std::runtime_error);
}

TEST_F(DiskTierTest, FileRemovedBehindItsBackIsAMissAndIsForgotten) {
  DiskTier tier(options());
  ASSERT_TRUE(tier.insert(entry("k:01")));
  fs::remove(tier.pathFor("k:01"));
  EXPECT_FALSE(get(tier, "k:01"));
  EXPECT_EQ(tier.entryCount(), 0u);
}

TEST_F(DiskTierTest, CompressedEntriesAreSmallerOnDisk) {
  DiskTierOptions plainOptions = options();
  plainOptions.dir = dir_ / "plain";
  DiskTierOptions zstdOptions = options();
  zstdOptions.dir = dir_ / "zstd";
  zstdOptions.codec.compress = true;
  DiskTier plain(plainOptions), zstd(zstdOptions);
  auto e = entry("k:01", std::string(100000, 'y'));
  ASSERT_TRUE(plain.insert(e));
  ASSERT_TRUE(zstd.insert(e));
  EXPECT_LT(zstd.byteCount() * 10, plain.byteCount());
  auto found = get(zstd, "k:01");
  ASSERT_TRUE(found);
  EXPECT_EQ(**found, *e);
  // A tier reads both forms whatever it writes.
  DiskTier plainReadsZstd(DiskTierOptions{.dir = zstdOptions.dir});
  EXPECT_TRUE(get(plainReadsZstd, "k:01"));
}

EncryptionKey keyOf(unsigned char seed) {
  EncryptionKey k{};
  k.fill(seed);
  return k;
}

TEST_F(DiskTierTest, EncryptedFilesHoldNoPlaintextOfThePromptOrTheAnswer) {
  for (bool compress : {false, true}) {
    DiskTierOptions o = options();
    o.dir = dir_ / (compress ? "zstd" : "plain");
    o.codec = CodecOptions{.compress = compress, .key = keyOf(7)};
    DiskTier tier(o);
    ASSERT_TRUE(tier.insert(entry("k:01", "the answer is swordfish")));
    const std::string bytes = readFile(tier.pathFor("k:01"));
    ASSERT_FALSE(bytes.empty());
    for (std::string_view needle : {"swordfish", "\"Hi\"", "gpt-4o-mini", "k:01", "team-a"})
      EXPECT_EQ(bytes.find(needle), std::string::npos) << needle;
    auto found = get(tier, "k:01");
    ASSERT_TRUE(found);
    EXPECT_EQ(parseJson((*found)->response)
                  .value()
                  .find("choices")
                  ->items()[0]
                  .find("message")
                  ->getString("content"),
              "the answer is swordfish");
  }
}

TEST_F(DiskTierTest, ReopenedWithAnotherKeyEntriesAreCountedMisses) {
  DiskTierOptions o = options();
  o.codec.key = keyOf(1);
  {
    DiskTier tier(o);
    ASSERT_TRUE(tier.insert(entry("k:01")));
    ASSERT_TRUE(tier.insert(entry("k:02")));
  }
  o.codec.key = keyOf(2);
  DiskTier other(o);
  EXPECT_EQ(other.entryCount(), 2u);  // the scan does not decode
  EXPECT_FALSE(get(other, "k:01"));
  EXPECT_EQ(other.corruptEntries(), 1u);
  EXPECT_FALSE(fs::exists(other.pathFor("k:01")));  // undecryptable: dropped like a corrupt file
  // Its own writes work as usual.
  ASSERT_TRUE(other.insert(entry("k:01")));
  EXPECT_TRUE(get(other, "k:01"));
}

TEST_F(DiskTierTest, WithoutTheKeyEncryptedEntriesAreCountedMisses) {
  DiskTierOptions o = options();
  o.codec.key = keyOf(1);
  { ASSERT_TRUE(DiskTier(o).insert(entry("k:01"))); }
  DiskTier plain(options());
  EXPECT_FALSE(get(plain, "k:01"));
  EXPECT_EQ(plain.corruptEntries(), 1u);
}

TEST_F(DiskTierTest, WithEncryptionOnUnencryptedFilesAreCountedMisses) {
  { ASSERT_TRUE(DiskTier(options()).insert(entry("k:01"))); }
  DiskTierOptions o = options();
  o.codec.key = keyOf(1);
  DiskTier sealed(o);
  EXPECT_FALSE(get(sealed, "k:01"));
  EXPECT_EQ(sealed.corruptEntries(), 1u);
}

}  // namespace
}  // namespace llmcache::cache
