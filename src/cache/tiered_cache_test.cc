#include "cache/tiered_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "cache/test_entry.h"

namespace llmcache::cache {
namespace {

using namespace std::chrono_literals;
using test::makeTestEntry;

// An unbounded in-memory tier with call counters.
class MapTier final : public CacheTier {
 public:
  explicit MapTier(TierId id) : id_(id) {}
  TierId id() const override { return id_; }
  Result<std::optional<EntryPtr>> lookup(std::string_view key) override {
    std::lock_guard lock(mutex_);
    ++lookups;
    auto it = map_.find(std::string(key));
    if (it == map_.end()) return std::optional<EntryPtr>{};
    return std::optional<EntryPtr>{it->second};
  }
  Result<void> insert(EntryPtr e) override {
    std::lock_guard lock(mutex_);
    ++inserts;
    map_[e->cacheKey] = std::move(e);
    return {};
  }
  Result<bool> erase(std::string_view key) override {
    std::lock_guard lock(mutex_);
    return map_.erase(std::string(key)) > 0;
  }
  bool holds(std::string_view key) {
    std::lock_guard lock(mutex_);
    return map_.contains(std::string(key));
  }
  std::atomic<int> lookups = 0;
  std::atomic<int> inserts = 0;

 private:
  TierId id_;
  std::mutex mutex_;
  std::map<std::string, EntryPtr> map_;
};

// A tier whose every call fails, as an unreachable S3 or a read-only disk would.
class FailingTier final : public CacheTier {
 public:
  explicit FailingTier(TierId id) : id_(id) {}
  TierId id() const override { return id_; }
  Result<std::optional<EntryPtr>> lookup(std::string_view) override {
    return makeError(Errc::Io, "down");
  }
  Result<void> insert(EntryPtr) override { return makeError(Errc::Io, "down"); }
  Result<bool> erase(std::string_view) override { return makeError(Errc::Io, "down"); }

 private:
  TierId id_;
};

// Records every event (from any thread).
class Recorder final : public TierObserver {
 public:
  struct Seen {
    TierEvent::Kind kind;
    TierId tier;
    std::optional<TierId> source;
    uint64_t simhash = 0;
  };
  void onTierEvent(const TierEvent& e) override {
    std::lock_guard lock(mutex_);
    seen_.push_back({e.kind, e.tier, e.source, e.note ? e.note->promptSimhash : 0});
  }
  std::vector<Seen> of(TierEvent::Kind kind) {
    std::lock_guard lock(mutex_);
    std::vector<Seen> out;
    for (const Seen& s : seen_)
      if (s.kind == kind) out.push_back(s);
    return out;
  }

 private:
  std::mutex mutex_;
  std::vector<Seen> seen_;
};

class KeySet final : public KeyFilter {
 public:
  bool mayContain(std::string_view key) const override {
    std::lock_guard lock(mutex_);
    return keys_.contains(std::string(key));
  }
  void add(std::string_view key) override {
    std::lock_guard lock(mutex_);
    keys_.insert(std::string(key));
  }

 private:
  mutable std::mutex mutex_;
  std::set<std::string> keys_;
};

class Queue final : public WriteQueue {
 public:
  Result<void> enqueue(EntryPtr entry) override {
    std::lock_guard lock(mutex_);
    if (fail) return makeError(Errc::Io, "journal full");
    queued.push_back(std::move(entry));
    return {};
  }
  bool fail = false;
  std::mutex mutex_;
  std::vector<EntryPtr> queued;
};

// A guard whose verdict the test sets: invalidated before the first step, or between the steps.
class Guard final : public StoreGuard {
 public:
  uint64_t generation() const override { return 7; }
  bool storeUnlessInvalidated(uint64_t generation, const Entry&,
                              const std::function<void()>& store) override {
    EXPECT_EQ(generation, 7u);
    if (calls++ >= allow) return false;
    store();
    return true;
  }
  bool condemns(const Entry&) const override { return condemned; }
  int allow = 1000;
  std::atomic<int> calls = 0;
  bool condemned = false;
};

constexpr const char* kKey = "gpt-4o-mini:0011223344556677";
constexpr const char* kHash = "0123456789abcdef0123456789abcdef";
constexpr const char* kOtherHash = "ffffffffffffffffffffffffffffffff";

EntryPtr entry(std::string content = "Hello!") {
  return std::make_shared<const Entry>(makeTestEntry(kKey, std::move(content), kHash));
}

// Runs a coroutine of the cache to its end on a private context.
template <class T>
T run(net::awaitable<T> op) {
  net::io_context io;
  std::optional<T> out;
  auto body = [&]() -> net::awaitable<void> { out = co_await std::move(op); };
  net::co_spawn(io, body, net::detached);
  io.run();
  return std::move(*out);
}

class TieredCacheTest : public ::testing::Test {
 protected:
  TieredCacheTest() {
    cache_.addObserver(&events_);
    cache_.setGuard(&guard_);
  }
  std::optional<CacheHit> lookup(std::string_view hash = kHash, LookupOptions options = {}) {
    return run(cache_.lookup(kKey, hash, std::move(options)));
  }
  StoreResult store(EntryPtr e, std::shared_ptr<const StoreNote> note = {}) {
    return run(cache_.store(std::move(e), guard_.generation(), std::move(note)));
  }

  FakeClock clock_;
  MapTier memory_{TierId::Memory}, disk_{TierId::Disk}, s3_{TierId::S3};
  KeySet directory_;
  Queue outbox_;
  Recorder events_;
  Guard guard_;
  TieredCache cache_{{.fast = {&memory_, &disk_},
                      .slow = {{.tier = &s3_, .filter = &directory_, .queue = &outbox_}},
                      .clock = &clock_}};
};

TEST_F(TieredCacheTest, MissInEveryTierIsNullopt) {
  directory_.add(kKey);
  EXPECT_FALSE(lookup());
  EXPECT_EQ(memory_.lookups + disk_.lookups + s3_.lookups, 3);
}

TEST_F(TieredCacheTest, SlowTierIsNotAskedForAKeyItsFilterRulesOut) {
  ASSERT_TRUE(s3_.insert(entry()));
  EXPECT_FALSE(lookup());
  EXPECT_EQ(s3_.lookups, 0);
}

TEST_F(TieredCacheTest, HitInFirstTierIsServedWithoutAskingTheOthers) {
  auto e = entry();
  ASSERT_TRUE(memory_.insert(e));
  auto hit = lookup();
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->entry, e);
  EXPECT_EQ(hit->tier, TierId::Memory);
  EXPECT_EQ(disk_.lookups, 0);
  ASSERT_EQ(events_.of(TierEvent::Kind::Hit).size(), 1u);
  EXPECT_EQ(events_.of(TierEvent::Kind::Hit)[0].tier, TierId::Memory);
}

TEST_F(TieredCacheTest, HitInDiskIsPromotedToMemoryAndObserversHearOfIt) {
  ASSERT_TRUE(disk_.insert(entry()));
  auto hit = lookup();
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->tier, TierId::Disk);
  EXPECT_TRUE(memory_.holds(kKey));
  EXPECT_EQ(s3_.lookups, 0);
  auto again = lookup();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->tier, TierId::Memory);
  cache_.drain();
  auto promoted = events_.of(TierEvent::Kind::Promoted);
  ASSERT_EQ(promoted.size(), 1u);
  EXPECT_EQ(promoted[0].tier, TierId::Memory);
  EXPECT_EQ(promoted[0].source, TierId::Disk);
}

TEST_F(TieredCacheTest, HitInASlowTierIsPromotedToEveryFastTierUnderTheGuard) {
  ASSERT_TRUE(s3_.insert(entry()));
  directory_.add(kKey);
  auto note = std::make_shared<const StoreNote>(StoreNote{42, "preview"});
  auto hit = lookup(kHash, {.note = note});
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->tier, TierId::S3);
  EXPECT_TRUE(memory_.holds(kKey));  // before lookup() returned
  cache_.drain();
  EXPECT_TRUE(disk_.holds(kKey));
  auto promoted = events_.of(TierEvent::Kind::Promoted);
  ASSERT_EQ(promoted.size(), 2u);
  for (const auto& p : promoted) {
    EXPECT_EQ(p.source, TierId::S3);
    EXPECT_EQ(p.simhash, 42u);
  }
  EXPECT_EQ(guard_.calls, 2);  // the memory copy, then the background step
}

TEST_F(TieredCacheTest, ASlowHitAnAppliedInvalidationCondemnsIsAMissAndIsNotPromoted) {
  ASSERT_TRUE(s3_.insert(entry()));  // e.g. another gateway's copy whose S3 mark never happened
  directory_.add(kKey);
  guard_.condemned = true;
  EXPECT_FALSE(lookup());
  cache_.drain();
  EXPECT_FALSE(memory_.holds(kKey));
  EXPECT_FALSE(disk_.holds(kKey));
  EXPECT_TRUE(events_.of(TierEvent::Kind::Promoted).empty());
  EXPECT_TRUE(events_.of(TierEvent::Kind::Hit).empty());
}

TEST_F(TieredCacheTest, ASlowHitAnInvalidationCondemnedIsServedButNotPromoted) {
  ASSERT_TRUE(s3_.insert(entry()));
  directory_.add(kKey);
  guard_.allow = 0;
  ASSERT_TRUE(lookup());
  cache_.drain();
  EXPECT_FALSE(memory_.holds(kKey));
  EXPECT_FALSE(disk_.holds(kKey));
}

TEST_F(TieredCacheTest, HashMismatchIsAMissAndIsNotPromoted) {
  ASSERT_TRUE(disk_.insert(entry()));
  EXPECT_FALSE(lookup(kOtherHash));
  EXPECT_FALSE(memory_.holds(kKey));
}

TEST_F(TieredCacheTest, HashMismatchAboveFallsThroughToAMatchingEntryBelow) {
  ASSERT_TRUE(
      memory_.insert(std::make_shared<const Entry>(makeTestEntry(kKey, "colliding", kOtherHash))));
  auto right = entry("right");
  ASSERT_TRUE(disk_.insert(right));
  auto hit = lookup();
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->entry, right);
  EXPECT_EQ(hit->tier, TierId::Disk);
}

TEST_F(TieredCacheTest, ExpiredEntryIsAMiss) {
  Entry e = makeTestEntry(kKey, "short-lived", kHash);
  e.expiresAt = clock_.now() + 60s;
  ASSERT_TRUE(memory_.insert(std::make_shared<const Entry>(e)));
  EXPECT_TRUE(lookup());
  clock_.advance(59s);
  EXPECT_TRUE(lookup());
  clock_.advance(1s);  // expires_at == now: expired
  EXPECT_FALSE(lookup());
}

TEST_F(TieredCacheTest, EntryOlderThanTheClientAcceptsIsAMiss) {
  Entry e = makeTestEntry(kKey, "old", kHash);
  e.responseTimestamp = clock_.now() - 120s;
  ASSERT_TRUE(memory_.insert(std::make_shared<const Entry>(e)));
  EXPECT_FALSE(lookup(kHash, {.storedNoEarlierThan = clock_.now() - 60s}));
  EXPECT_TRUE(lookup(kHash, {.storedNoEarlierThan = clock_.now() - 180s}));
}

TEST_F(TieredCacheTest, FreshEntryBelowReplacesAnExpiredOneAbove) {
  Entry old = makeTestEntry(kKey, "old", kHash);
  old.expiresAt = clock_.now() - 1s;
  ASSERT_TRUE(memory_.insert(std::make_shared<const Entry>(old)));
  auto fresh = entry("fresh");
  ASSERT_TRUE(disk_.insert(fresh));
  auto hit = lookup();
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->entry, fresh);
  EXPECT_EQ(memory_.lookup(kKey).value().value(), fresh);
}

TEST(TieredCache, TierErrorDegradesToNextTierAndIsCountedAndAnnounced) {
  FailingTier failing(TierId::Memory);
  MapTier disk(TierId::Disk);
  Recorder events;
  TieredCache cache({.fast = {&failing, &disk}});
  cache.addObserver(&events);
  auto e = entry();
  ASSERT_TRUE(disk.insert(e));
  auto hit = run(cache.lookup(kKey, kHash));
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->entry, e);
  EXPECT_EQ(hit->tier, TierId::Disk);
  // One failed lookup, one failed promotion.
  EXPECT_EQ(cache.errors(TierId::Memory), 2u);
  EXPECT_EQ(cache.errors(TierId::Disk), 0u);
  EXPECT_EQ(events.of(TierEvent::Kind::Failed).size(), 2u);
}

TEST(TieredCache, EveryTierFailingIsAMissNotAnError) {
  FailingTier a(TierId::Memory), b(TierId::Disk), c(TierId::S3);
  TieredCache cache({.fast = {&a, &b}, .slow = {{.tier = &c}}});
  EXPECT_FALSE(run(cache.lookup(kKey, kHash)));
  EXPECT_EQ(cache.errors(TierId::Memory), 1u);
  EXPECT_EQ(cache.errors(TierId::Disk), 1u);
  EXPECT_EQ(cache.errors(TierId::S3), 1u);
}

TEST_F(TieredCacheTest, StorePutsTheFirstTierBeforeItReturnsAndTheRestInTheBackground) {
  auto note = std::make_shared<const StoreNote>(StoreNote{9, ""});
  EXPECT_EQ(store(entry(), note), StoreResult::Stored);
  EXPECT_TRUE(memory_.holds(kKey));
  cache_.drain();
  EXPECT_TRUE(disk_.holds(kKey));
  ASSERT_EQ(outbox_.queued.size(), 1u);  // S3 through its queue
  EXPECT_FALSE(s3_.holds(kKey));
  EXPECT_TRUE(directory_.mayContain(kKey));
  auto stored = events_.of(TierEvent::Kind::Stored);
  ASSERT_EQ(stored.size(), 3u);
  EXPECT_EQ(stored[0].tier, TierId::Memory);
  EXPECT_EQ(stored[1].tier, TierId::Disk);
  EXPECT_EQ(stored[2].tier, TierId::S3);
  EXPECT_EQ(stored[0].simhash, 9u);
}

TEST_F(TieredCacheTest, SyncWaitsForTheQueuedWritesAndKeepsTheCacheOpen) {
  EXPECT_EQ(store(entry()), StoreResult::Stored);
  ASSERT_TRUE(cache_.sync());
  EXPECT_TRUE(disk_.holds(kKey));
  EXPECT_EQ(events_.of(TierEvent::Kind::Stored).size(), 3u);
  EXPECT_EQ(store(entry("again")), StoreResult::Stored);  // still takes work
  ASSERT_TRUE(cache_.sync());
  EXPECT_EQ(events_.of(TierEvent::Kind::Stored).size(), 6u);
}

// Holds the writer thread inside an observer until released.
class Gate final : public TierObserver {
 public:
  void onTierEvent(const TierEvent& e) override {
    if (e.kind != TierEvent::Kind::Stored) return;
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return open_; });
  }
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

TEST(TieredCache, AStoreIsSkippedWhenTheBackgroundWriterIsTooFarBehind) {
  MapTier memory(TierId::Memory), disk(TierId::Disk);
  Gate gate;  // declared before the cache: the cache's writer still calls it while draining
  const Entry sample = makeTestEntry(kKey, "x", kHash);
  const size_t one = writerTaskBytes(&sample, nullptr);
  TieredCache cache({.fast = {&memory, &disk}, .maxPendingBytes = 3 * one + one / 2});
  cache.addObserver(&gate);
  std::vector<StoreResult> results;
  for (int i = 0; i < 6; ++i) {
    auto e = std::make_shared<const Entry>(makeTestEntry("k" + std::to_string(i), "x", kHash));
    results.push_back(run(cache.store(e, 0)));
  }
  EXPECT_EQ(results, (std::vector<StoreResult>{StoreResult::Stored, StoreResult::Stored,
                                               StoreResult::Stored, StoreResult::Skipped,
                                               StoreResult::Skipped, StoreResult::Skipped}));
  EXPECT_EQ(cache.errors(TierId::Memory), 3u);
  EXPECT_FALSE(memory.holds("k3"));
  gate.open();
  ASSERT_TRUE(cache.sync());
  EXPECT_EQ(run(cache.store(std::make_shared<const Entry>(makeTestEntry("k9", "x", kHash)), 0)),
            StoreResult::Stored);  // caught up: stores again
}

// Shutdown: a writer far behind (a slow disk, fsync per store) must not hold the process past
// CACHE_SHUTDOWN_GRACE. What the budget leaves is abandoned whole: a store either reached every
// tier and observer or none past the first.
TEST(TieredCache, DrainWithABudgetAbandonsTheWritesItCannotFinish) {
  MapTier memory(TierId::Memory), disk(TierId::Disk);
  Gate gate;  // declared before the cache: the cache's writer still calls it while draining
  TieredCache cache({.fast = {&memory, &disk}});
  cache.addObserver(&gate);
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(
        run(cache.store(
            std::make_shared<const Entry>(makeTestEntry("k" + std::to_string(i), "x", kHash)), 0)),
        StoreResult::Stored);
  // The writer is held in the first store's observer: nothing can finish within the budget.
  std::thread opener([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    gate.open();  // lets the held task end, after drain gave up
  });
  const size_t abandoned = cache.drain(std::chrono::milliseconds(50));
  opener.join();
  EXPECT_EQ(abandoned, 4u);       // the four queued behind the held one
  EXPECT_TRUE(disk.holds("k0"));  // the held one finished
  for (int i = 1; i < 5; ++i) EXPECT_FALSE(disk.holds("k" + std::to_string(i))) << i;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(memory.holds("k" + std::to_string(i))) << i;
}

TEST(TieredCache, DrainWithABudgetWaitsForWritesThatFinishInTime) {
  MapTier memory(TierId::Memory), disk(TierId::Disk);
  TieredCache cache({.fast = {&memory, &disk}});
  for (int i = 0; i < 50; ++i)
    ASSERT_EQ(
        run(cache.store(
            std::make_shared<const Entry>(makeTestEntry("k" + std::to_string(i), "x", kHash)), 0)),
        StoreResult::Stored);
  EXPECT_EQ(cache.drain(std::chrono::seconds(30)), 0u);
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(disk.holds("k" + std::to_string(i))) << i;
}

EntryPtr keyed(const std::string& key) {
  return std::make_shared<const Entry>(makeTestEntry(key, "x", kHash));
}

// The soak test (bench/soak.py): with only the stores bounded, every disk hit's promotion queued
// a task for the writer, so a writer slower than the traffic grew the heap ~2.5 KB per miss.
// Stores, fast promotions and slow promotions together: the queue never holds more than its
// bound, whatever the mix, and empties once the writer runs again.
TEST(TieredCache, TheWriterQueueNeverHoldsMoreThanItsBound) {
  MapTier memory(TierId::Memory), disk(TierId::Disk), s3(TierId::S3);
  KeySet directory;
  Queue outbox;
  Gate gate;  // declared before the cache: the cache's writer still calls it while draining
  const Entry sample = makeTestEntry("k0", "x", kHash);
  const size_t one = writerTaskBytes(&sample, nullptr);
  const size_t bound = 8 * one;
  TieredCache cache({.fast = {&memory, &disk},
                     .slow = {{.tier = &s3, .filter = &directory, .queue = &outbox}},
                     .maxPendingBytes = bound});
  cache.addObserver(&gate);
  ASSERT_EQ(run(cache.store(keyed("k0"), 0)), StoreResult::Stored);  // the writer waits in it
  size_t most = 0;
  for (int i = 0; i < 200; ++i) {
    const std::string n = std::to_string(i);
    ASSERT_TRUE(disk.insert(keyed("d" + n)));
    ASSERT_TRUE(run(cache.lookup("d" + n, kHash)));  // a disk hit: promoted to memory
    ASSERT_TRUE(s3.insert(keyed("s" + n)));
    directory.add("s" + n);
    ASSERT_TRUE(run(cache.lookup("s" + n, kHash)));  // a slow hit: served
    (void)run(cache.store(keyed("n" + n), 0));
    most = std::max(most, cache.writerBacklog().bytes);
  }
  EXPECT_LE(most, bound);
  const WriterBacklog full = cache.writerBacklog();
  EXPECT_LE(full.tasks, 8u);
  EXPECT_GT(full.skippedStores, 190u);
  EXPECT_GT(full.skippedPromotions, 380u);  // both kinds, 200 each
  gate.open();
  ASSERT_TRUE(cache.sync());
  const WriterBacklog after = cache.writerBacklog();
  EXPECT_EQ(after.tasks, 0u);
  EXPECT_EQ(after.bytes, 0u);
}

// A disk hit beyond the bound is still copied to memory (a cheap, bounded tier; the entry has
// its row already), only its announcement (the row's memory bit) is dropped. A slow tier's hit
// beyond the bound is served but not copied: no fast copy without the row the writer writes.
TEST(TieredCache, PromotionsBeyondTheWriterBoundAreServedCopiedOnlyWhereTheyHaveARow) {
  MapTier memory(TierId::Memory), disk(TierId::Disk), s3(TierId::S3);
  KeySet directory;
  Queue outbox;
  Gate gate;
  Recorder events;
  const Entry sample = makeTestEntry("k0", "x", kHash);
  const size_t one = writerTaskBytes(&sample, nullptr);
  TieredCache cache({.fast = {&memory, &disk},
                     .slow = {{.tier = &s3, .filter = &directory, .queue = &outbox}},
                     .maxPendingBytes = one + one / 2});
  cache.addObserver(&gate);
  cache.addObserver(&events);
  ASSERT_EQ(run(cache.store(keyed("k0"), 0)), StoreResult::Stored);  // fills the queue
  ASSERT_TRUE(disk.insert(keyed("d")));
  auto fromDisk = run(cache.lookup("d", kHash));
  ASSERT_TRUE(fromDisk);
  EXPECT_EQ(fromDisk->tier, TierId::Disk);
  EXPECT_TRUE(memory.holds("d"));
  ASSERT_TRUE(s3.insert(keyed("s")));
  directory.add("s");
  auto fromS3 = run(cache.lookup("s", kHash));
  ASSERT_TRUE(fromS3);
  EXPECT_EQ(fromS3->tier, TierId::S3);
  EXPECT_FALSE(memory.holds("s"));
  EXPECT_EQ(cache.writerBacklog().skippedPromotions, 2u);
  gate.open();
  ASSERT_TRUE(cache.sync());
  EXPECT_TRUE(events.of(TierEvent::Kind::Promoted).empty());
  EXPECT_FALSE(disk.holds("s"));
  // Caught up: both kinds are promoted and announced again.
  ASSERT_TRUE(disk.insert(keyed("d2")));
  ASSERT_TRUE(run(cache.lookup("d2", kHash)));
  // d2's announcement is a writer task: with it still queued, s's promotion would not fit in
  // the bound (1.5 tasks). Wait for it (a slow CI writer skipped s here without this).
  ASSERT_TRUE(cache.sync());
  ASSERT_TRUE(run(cache.lookup("s", kHash)));
  ASSERT_TRUE(cache.sync());
  EXPECT_TRUE(memory.holds("s"));
  EXPECT_TRUE(disk.holds("s"));
  EXPECT_EQ(events.of(TierEvent::Kind::Promoted).size(), 3u);  // d2 to memory; s to both
}

TEST_F(TieredCacheTest, AStoreAnInvalidationCondemnedBeforehandStoresNothing) {
  guard_.allow = 0;
  EXPECT_EQ(store(entry()), StoreResult::Condemned);
  cache_.drain();
  EXPECT_FALSE(memory_.holds(kKey));
  EXPECT_FALSE(disk_.holds(kKey));
  EXPECT_TRUE(outbox_.queued.empty());
  EXPECT_TRUE(events_.of(TierEvent::Kind::Stored).empty());
}

TEST_F(TieredCacheTest, AStoreCondemnedBetweenItsStepsIsErasedFromTheFirstTier) {
  guard_.allow = 1;  // the memory step passes, the background step does not
  EXPECT_EQ(store(entry()), StoreResult::Stored);
  cache_.drain();
  EXPECT_FALSE(memory_.holds(kKey));
  EXPECT_FALSE(disk_.holds(kKey));
  EXPECT_TRUE(outbox_.queued.empty());
  EXPECT_TRUE(events_.of(TierEvent::Kind::Stored).empty());
}

TEST_F(TieredCacheTest, AFailedWriteIsCountedAnnouncedAndTheOtherTiersStillGetTheEntry) {
  outbox_.fail = true;
  EXPECT_EQ(store(entry()), StoreResult::Stored);
  cache_.drain();
  EXPECT_TRUE(disk_.holds(kKey));
  EXPECT_EQ(cache_.errors(TierId::S3), 1u);
  EXPECT_FALSE(directory_.mayContain(kKey));  // never journaled: the bucket will not hold it
  ASSERT_EQ(events_.of(TierEvent::Kind::Failed).size(), 1u);
  EXPECT_EQ(events_.of(TierEvent::Kind::Failed)[0].tier, TierId::S3);
}

TEST(TieredCache, ASlowTierWithoutAQueueIsWrittenBeforeStoreReturns) {
  MapTier memory(TierId::Memory), s3(TierId::S3);
  KeySet directory;
  Recorder events;
  TieredCache cache({.fast = {&memory}, .slow = {{.tier = &s3, .filter = &directory}}});
  cache.addObserver(&events);
  EXPECT_EQ(run(cache.store(entry(), 0)), StoreResult::Stored);
  EXPECT_TRUE(s3.holds(kKey));
  EXPECT_TRUE(directory.mayContain(kKey));
  cache.drain();
  EXPECT_EQ(events.of(TierEvent::Kind::Stored).size(), 2u);
}

TEST(TieredCache, AnEagerQueueTakesTheEntryBeforeStoreReturnsEvenWithTheWriterStuck) {
  MapTier memory(TierId::Memory), disk(TierId::Disk), redis(TierId::Redis);
  Queue queue;
  Gate gate;  // holds the writer at its first Stored event, as a starved nice-10 writer would
  TieredCache cache(
      {.fast = {&memory, &disk},
       .slow = {{.tier = &redis, .filter = nullptr, .queue = &queue, .eager = true}}});
  cache.addObserver(&gate);
  EXPECT_EQ(run(cache.store(entry(), 0)), StoreResult::Stored);
  {
    std::lock_guard lock(queue.mutex_);
    ASSERT_EQ(queue.queued.size(), 1u);  // not waiting for the writer (stuck at the gate)
    EXPECT_EQ(queue.queued[0]->cacheKey, kKey);
  }
  gate.open();
  ASSERT_TRUE(cache.sync());
  std::lock_guard lock(queue.mutex_);
  EXPECT_EQ(queue.queued.size(), 1u);  // and not a second time by the writer
}

TEST_F(TieredCacheTest, EraseRemovesFromEveryTierAndAnnouncesEachCopy) {
  for (CacheTier* t : cache_.tiers()) ASSERT_TRUE(t->insert(entry()));
  EXPECT_TRUE(cache_.erase(kKey));
  EXPECT_FALSE(memory_.holds(kKey));
  EXPECT_FALSE(disk_.holds(kKey));
  EXPECT_FALSE(s3_.holds(kKey));
  EXPECT_EQ(events_.of(TierEvent::Kind::Erased).size(), 3u);
  EXPECT_FALSE(lookup());
  EXPECT_FALSE(cache_.erase(kKey));
}

TEST(TieredCache, EraseCountsFailuresAndStillErasesElsewhere) {
  MapTier memory(TierId::Memory);
  FailingTier disk(TierId::Disk);
  TieredCache cache({.fast = {&memory, &disk}});
  ASSERT_TRUE(memory.insert(entry()));
  EXPECT_TRUE(cache.erase(kKey));
  EXPECT_FALSE(memory.holds(kKey));
  EXPECT_EQ(cache.errors(TierId::Disk), 1u);
}

TEST(TierId, NamesRoundTripAndBitsArePersistent) {
  for (TierId id : {TierId::Memory, TierId::Disk, TierId::S3, TierId::Redis})
    EXPECT_EQ(parseTierId(tierName(id)), id);
  EXPECT_FALSE(parseTierId("tape"));
  // The index's `tiers` column holds these (docs/index-schema.md): they must never change.
  EXPECT_EQ(tierBit(TierId::Memory), 1u);
  EXPECT_EQ(tierBit(TierId::Disk), 2u);
  EXPECT_EQ(tierBit(TierId::S3), 4u);
}

}  // namespace
}  // namespace llmcache::cache
