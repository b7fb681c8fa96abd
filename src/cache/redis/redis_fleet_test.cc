// RedisFleet: two gateways' fleets on one real redis-server.
#include "cache/redis/redis_fleet.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>

#include "cache/redis/redis_test_server.h"
#include "cache/test_entry.h"

namespace llmcache::cache::redis {
namespace {

using cache::test::makeTestEntry;
using test::RedisTestServer;

// Waits (bounded) until pred() holds.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

struct Member {
  Member(const RedisUrl& url, std::string instance, std::chrono::milliseconds leaseTtl)
      : client({.url = url}), tier(client, {}) {
    fleet = std::make_unique<RedisFleet>(
        client, tier, RedisFleetOptions{.instanceId = std::move(instance), .leaseTtl = leaseTtl},
        RedisFleetHandlers{.onStored =
                               [this](std::string_view k) {
                                 std::lock_guard lock(mutex);
                                 stored.emplace_back(k);
                               },
                           .onInvalidation =
                               [this](const Json& r, TimePoint) {
                                 std::lock_guard lock(mutex);
                                 invalidations.push_back(toJson(r));
                               }});
    EXPECT_TRUE(eventually([&] { return fleet->subscribed(); }));
  }
  std::vector<std::string> storedKeys() {
    std::lock_guard lock(mutex);
    return stored;
  }
  std::vector<std::string> invalidationBodies() {
    std::lock_guard lock(mutex);
    return invalidations;
  }
  RedisClient client;
  RedisTier tier;
  std::mutex mutex;
  std::vector<std::string> stored, invalidations;
  std::unique_ptr<RedisFleet> fleet;
};

class RedisFleetTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(server.start(), ""); }
  RedisTestServer server;
};

TEST_F(RedisFleetTest, AQueuedWriteLandsAndIsAnnouncedToTheOthers) {
  Member a(server.url(), "a", std::chrono::milliseconds(5000));
  Member b(server.url(), "b", std::chrono::milliseconds(5000));
  auto e = std::make_shared<const Entry>(makeTestEntry("gpt-4o:0000000000000001"));
  ASSERT_EQ(a.fleet->acquire(e->requestHash), Fleet::Lease::Held);
  std::atomic<int> woken{0};
  auto handle = b.fleet->watch(e->requestHash, [&] { ++woken; });
  a.fleet->release(e->requestHash, /*stored=*/true);
  EXPECT_TRUE(b.fleet->held(e->requestHash));  // until the entry is in Redis
  ASSERT_TRUE(a.fleet->enqueue(e));
  ASSERT_TRUE(eventually([&] { return !b.storedKeys().empty(); }));
  EXPECT_EQ(b.storedKeys(), std::vector<std::string>{e->cacheKey});
  EXPECT_TRUE(a.storedKeys().empty());  // its own announcement is not handed to itself
  EXPECT_TRUE(eventually([&] { return woken.load() > 0; }));
  auto found = b.tier.lookup(e->cacheKey);
  ASSERT_TRUE(found && *found);
  EXPECT_EQ(***found, *e);
  EXPECT_FALSE(b.fleet->held(e->requestHash));
}

TEST_F(RedisFleetTest, InvalidationsReachTheOthersNotDryRuns) {
  Member a(server.url(), "a", std::chrono::milliseconds(5000));
  Member b(server.url(), "b", std::chrono::milliseconds(5000));
  a.fleet->publishInvalidation(*parseJson(R"({"model":"gpt-4o","dry_run":true})"));
  a.fleet->publishInvalidation(*parseJson(R"({"model":"gpt-4o"})"));
  ASSERT_TRUE(eventually([&] { return !b.invalidationBodies().empty(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(b.invalidationBodies(), std::vector<std::string>{R"({"model":"gpt-4o"})"});
  EXPECT_TRUE(a.invalidationBodies().empty());
}

TEST_F(RedisFleetTest, OneHolderAtATimeAndAFailedCallFreesTheLeaseForTheOthers) {
  Member a(server.url(), "a", std::chrono::milliseconds(5000));
  Member b(server.url(), "b", std::chrono::milliseconds(5000));
  const std::string hash = "00112233445566778899aabbccddeeff";
  ASSERT_EQ(a.fleet->acquire(hash), Fleet::Lease::Held);
  EXPECT_EQ(b.fleet->acquire(hash), Fleet::Lease::Taken);
  std::atomic<int> woken{0};
  auto handle = b.fleet->watch(hash, [&] { ++woken; });
  a.fleet->release(hash, /*stored=*/false);
  EXPECT_TRUE(eventually([&] { return woken.load() > 0; }));
  EXPECT_FALSE(b.fleet->held(hash));
  EXPECT_EQ(b.fleet->acquire(hash), Fleet::Lease::Held);
  EXPECT_EQ(a.fleet->acquire(hash), Fleet::Lease::Taken);
}

TEST_F(RedisFleetTest, AHeldLeaseIsRenewedAndADeadHoldersLeaseExpires) {
  const std::string hash = "ffeeddccbbaa99887766554433221100";
  auto b = std::make_unique<Member>(server.url(), "b", std::chrono::milliseconds(300));
  {
    Member a(server.url(), "a", std::chrono::milliseconds(300));
    ASSERT_EQ(a.fleet->acquire(hash), Fleet::Lease::Held);
    std::this_thread::sleep_for(std::chrono::milliseconds(900));  // three lives: renewed
    EXPECT_EQ(b->fleet->acquire(hash), Fleet::Lease::Taken);
    // a dies holding it (no release)
  }
  EXPECT_TRUE(eventually([&] { return b->fleet->acquire(hash) == Fleet::Lease::Held; }));
}

TEST_F(RedisFleetTest, WithRedisDownNothingBlocksAndTheSubscriptionComesBack) {
  Member a(server.url(), "a", std::chrono::milliseconds(5000));
  Member b(server.url(), "b", std::chrono::milliseconds(5000));
  server.stop();
  EXPECT_TRUE(eventually([&] { return !b.fleet->subscribed(); }));
  EXPECT_EQ(a.fleet->acquire("x"), Fleet::Lease::Unavailable);
  EXPECT_FALSE(a.fleet->held("x"));
  a.fleet->publishInvalidation(*parseJson(R"({"model":"lost"})"));  // no error, no throw
  ASSERT_EQ(server.start(), "");
  ASSERT_TRUE(eventually([&] { return b.fleet->subscribed(); }));
  ASSERT_TRUE(eventually([&] {
    a.fleet->publishInvalidation(*parseJson(R"({"model":"after"})"));
    return !b.invalidationBodies().empty();
  }));
  EXPECT_EQ(b.invalidationBodies().front(), R"({"model":"after"})");
}

}  // namespace
}  // namespace llmcache::cache::redis
