#include "cache/tier_chain.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "cache/test_entry.h"

namespace llmcache::cache {
namespace {

using namespace std::chrono_literals;
using test::makeTestEntry;

// An unbounded in-memory tier with a name of our choosing and call counters.
class MapTier final : public CacheTier {
 public:
  explicit MapTier(std::string name) : name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
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
  int lookups = 0;
  int inserts = 0;

 private:
  std::string name_;
  std::mutex mutex_;
  std::map<std::string, EntryPtr> map_;
};

// A tier whose every call fails, as an unreachable S3 or a read-only disk would.
class FailingTier final : public CacheTier {
 public:
  std::string_view name() const override { return "failing"; }
  Result<std::optional<EntryPtr>> lookup(std::string_view) override {
    return makeError(Errc::Io, "down");
  }
  Result<void> insert(EntryPtr) override { return makeError(Errc::Io, "down"); }
  Result<bool> erase(std::string_view) override { return makeError(Errc::Io, "down"); }
};

constexpr const char* kKey = "gpt-4o-mini:0011223344556677";
constexpr const char* kHash = "0123456789abcdef0123456789abcdef";
constexpr const char* kOtherHash = "ffffffffffffffffffffffffffffffff";

EntryPtr entry(std::string content = "Hello!") {
  return std::make_shared<const Entry>(makeTestEntry(kKey, std::move(content), kHash));
}

class TierChainTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  MapTier memory_{"memory"}, disk_{"disk"}, s3_{"s3"};
  TierChain chain_{{&memory_, &disk_, &s3_}, clock_};
};

TEST_F(TierChainTest, MissInEveryTierIsNullopt) {
  EXPECT_FALSE(chain_.lookup(kKey, kHash));
  EXPECT_EQ(memory_.lookups + disk_.lookups + s3_.lookups, 3);
}

TEST_F(TierChainTest, HitInFirstTierIsServedWithoutAskingTheOthers) {
  auto e = entry();
  ASSERT_TRUE(memory_.insert(e));
  auto hit = chain_.lookup(kKey, kHash);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->entry, e);
  EXPECT_EQ(hit->layer, "memory");
  EXPECT_EQ(disk_.lookups, 0);
}

TEST_F(TierChainTest, HitInDiskIsPromotedToMemory) {
  auto e = entry();
  ASSERT_TRUE(disk_.insert(e));
  auto hit = chain_.lookup(kKey, kHash);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->layer, "disk");
  EXPECT_TRUE(memory_.holds(kKey));
  EXPECT_EQ(s3_.lookups, 0);
  auto again = chain_.lookup(kKey, kHash);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->layer, "memory");
}

TEST_F(TierChainTest, HitInLastTierIsPromotedToEveryTierAbove) {
  ASSERT_TRUE(s3_.insert(entry()));
  auto hit = chain_.lookup(kKey, kHash);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->layer, "s3");
  EXPECT_TRUE(memory_.holds(kKey));
  EXPECT_TRUE(disk_.holds(kKey));
}

TEST_F(TierChainTest, HashMismatchIsAMissAndIsNotPromoted) {
  ASSERT_TRUE(disk_.insert(entry()));
  EXPECT_FALSE(chain_.lookup(kKey, kOtherHash));
  EXPECT_FALSE(memory_.holds(kKey));
}

TEST_F(TierChainTest, HashMismatchAboveFallsThroughToAMatchingEntryBelow) {
  ASSERT_TRUE(
      memory_.insert(std::make_shared<const Entry>(makeTestEntry(kKey, "colliding", kOtherHash))));
  auto right = entry("right");
  ASSERT_TRUE(disk_.insert(right));
  auto hit = chain_.lookup(kKey, kHash);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->entry, right);
  EXPECT_EQ(hit->layer, "disk");
}

TEST_F(TierChainTest, ExpiredEntryIsAMiss) {
  Entry e = makeTestEntry(kKey, "short-lived", kHash);
  e.expiresAt = clock_.now() + 60s;
  chain_.insert(std::make_shared<const Entry>(e));
  EXPECT_TRUE(chain_.lookup(kKey, kHash));
  clock_.advance(59s);
  EXPECT_TRUE(chain_.lookup(kKey, kHash));
  clock_.advance(1s);  // expires_at == now: expired
  EXPECT_FALSE(chain_.lookup(kKey, kHash));
}

TEST_F(TierChainTest, EntryWithoutExpiryNeverExpires) {
  chain_.insert(entry());
  clock_.advance(24h * 365 * 10);
  EXPECT_TRUE(chain_.lookup(kKey, kHash));
}

TEST_F(TierChainTest, FreshEntryBelowReplacesAnExpiredOneAbove) {
  Entry old = makeTestEntry(kKey, "old", kHash);
  old.expiresAt = clock_.now() - 1s;
  ASSERT_TRUE(memory_.insert(std::make_shared<const Entry>(old)));
  auto fresh = entry("fresh");
  ASSERT_TRUE(disk_.insert(fresh));
  auto hit = chain_.lookup(kKey, kHash);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->entry, fresh);
  EXPECT_EQ(memory_.lookup(kKey).value().value(), fresh);
}

TEST(TierChain, TierErrorDegradesToNextTier) {
  FakeClock clock;
  FailingTier failing;
  MapTier disk("disk");
  TierChain chain({&failing, &disk}, clock);
  auto e = entry();
  ASSERT_TRUE(disk.insert(e));
  auto hit = chain.lookup(kKey, kHash);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->entry, e);
  EXPECT_EQ(hit->layer, "disk");
  // One failed lookup, one failed promotion.
  EXPECT_EQ(chain.errors(0), 2u);
  EXPECT_EQ(chain.errors(1), 0u);
}

TEST(TierChain, EveryTierFailingIsAMissNotAnError) {
  FakeClock clock;
  FailingTier a, b;
  TierChain chain({&a, &b}, clock);
  EXPECT_FALSE(chain.lookup(kKey, kHash));
  EXPECT_EQ(chain.errors(0), 1u);
  EXPECT_EQ(chain.errors(1), 1u);
}

TEST(TierChain, InsertReachesEveryTierAndCountsFailures) {
  FakeClock clock;
  MapTier memory("memory"), s3("s3");
  FailingTier disk;
  TierChain chain({&memory, &disk, &s3}, clock);
  chain.insert(entry());
  EXPECT_TRUE(memory.holds(kKey));
  EXPECT_TRUE(s3.holds(kKey));
  EXPECT_EQ(chain.errors(0), 0u);
  EXPECT_EQ(chain.errors(1), 1u);
  EXPECT_EQ(chain.errors(2), 0u);
}

TEST_F(TierChainTest, EraseRemovesFromEveryTier) {
  chain_.insert(entry());
  EXPECT_TRUE(chain_.erase(kKey));
  EXPECT_FALSE(memory_.holds(kKey));
  EXPECT_FALSE(disk_.holds(kKey));
  EXPECT_FALSE(s3_.holds(kKey));
  EXPECT_FALSE(chain_.lookup(kKey, kHash));
  EXPECT_FALSE(chain_.erase(kKey));
}

TEST(TierChain, EraseCountsFailuresAndStillErasesElsewhere) {
  FakeClock clock;
  MapTier memory("memory");
  FailingTier disk;
  TierChain chain({&memory, &disk}, clock);
  chain.insert(entry());
  EXPECT_TRUE(chain.erase(kKey));
  EXPECT_FALSE(memory.holds(kKey));
  EXPECT_EQ(chain.errors(1), 2u);  // the insert and the erase
}

}  // namespace
}  // namespace llmcache::cache
