// RedisTier and RedisClient against a real redis-server started by the test (Debian's).
#include "cache/redis/redis_tier.h"

#include <gtest/gtest.h>

#include <atomic>

#include "cache/redis/redis_test_server.h"
#include "cache/test_entry.h"
#include "cache/tier_conformance.h"

namespace llmcache::cache::redis {
namespace {

using cache::test::makeTestEntry;
using cache::test::TierFactory;
using test::RedisTestServer;

RedisTestServer& sharedServer() {
  static RedisTestServer server;
  if (!server.running()) {
    if (std::string error = server.start(); !error.empty()) throw std::runtime_error(error);
  }
  return server;
}

std::string freshPrefix() {
  static std::atomic<int> counter{0};
  return "t" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ":";
}

EntryPtr entry(std::string key, std::string content = "Hello!") {
  return std::make_shared<const Entry>(makeTestEntry(std::move(key), std::move(content)));
}

TierFactory redisFactory(std::string name, CodecOptions codec) {
  struct State {
    std::unique_ptr<RedisClient> client;
    std::string prefix;
  };
  auto state = std::make_shared<State>();
  TierFactory f;
  f.name = std::move(name);
  auto make = [state, codec] {
    return std::make_unique<RedisTier>(*state->client,
                                       RedisTierOptions{.prefix = state->prefix, .codec = codec});
  };
  f.make = [state, make] {
    if (!state->client)
      state->client =
          std::make_unique<RedisClient>(RedisClientOptions{.url = sharedServer().url()});
    state->prefix = freshPrefix();
    return make();
  };
  f.reopen = make;  // Redis outlives the gateway: a new instance sees the same entries
  f.corrupt = [state](std::string_view key) {
    const std::string k = state->prefix + "entry:" + std::string(key);
    auto got = state->client->command({"GET", k});
    ASSERT_TRUE(got && got->type == RedisValue::Type::String);
    std::string damaged = got->str;
    damaged[damaged.size() / 2] ^= 0x55;
    ASSERT_TRUE(state->client->command({"SET", k, damaged}));
  };
  return f;
}

}  // namespace

using cache::test::CacheTierConformance;
INSTANTIATE_TEST_SUITE_P(
    Redis, CacheTierConformance,
    ::testing::Values(redisFactory("Plain", CodecOptions{}),
                      redisFactory("Zstd", CodecOptions{.compress = true}),
                      redisFactory("Encrypted", CodecOptions{.key = EncryptionKey{1, 2, 3}}),
                      redisFactory("ZstdEncrypted",
                                   CodecOptions{.compress = true, .key = EncryptionKey{4, 5, 6}})),
    cache::test::tierFactoryName);

namespace {

TEST(RedisUrlTest, ParsesEveryPart) {
  auto u = parseRedisUrl("redis://alice:s%40cret@cache.internal:6380/3?prefix=team%3Aa%3A");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->host, "cache.internal");
  EXPECT_EQ(u->port, 6380);
  EXPECT_EQ(u->user, "alice");
  EXPECT_EQ(u->password, "s@cret");
  EXPECT_EQ(u->db, 3);
  EXPECT_EQ(u->prefix, "team:a:");
  EXPECT_EQ(u->display(), "cache.internal:6380/3");  // no credentials

  auto plain = parseRedisUrl("redis://localhost");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->port, 6379);
  EXPECT_EQ(plain->db, 0);
  EXPECT_TRUE(plain->password.empty());
  EXPECT_FALSE(plain->prefix);

  auto passwordOnly = parseRedisUrl("redis://:pw@[::1]:7000");
  ASSERT_TRUE(passwordOnly);
  EXPECT_EQ(passwordOnly->host, "::1");
  EXPECT_EQ(passwordOnly->port, 7000);
  EXPECT_EQ(passwordOnly->password, "pw");
  EXPECT_TRUE(passwordOnly->user.empty());
}

TEST(RedisUrlTest, RefusesTlsAndMalformedUrlsWithoutEchoingThePassword) {
  auto tls = parseRedisUrl("rediss://u:topsecret@host:6380");
  ASSERT_FALSE(tls);
  EXPECT_NE(tls.error().message.find("TLS"), std::string::npos);
  EXPECT_EQ(tls.error().message.find("topsecret"), std::string::npos);
  for (const char* bad : {"http://host", "redis://", "redis://host:0", "redis://host:99999",
                          "redis://host/x", "redis://host?db=2", "redis://u:p%zz@host"}) {
    auto r = parseRedisUrl(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error().message.find("p%zz"), std::string::npos);
    }
  }
}

TEST(RedisTierTest, TheEntrysTtlIsItsExpiry) {
  RedisClient client({.url = sharedServer().url()});
  FakeClock clock(std::chrono::system_clock::now());
  const std::string prefix = freshPrefix();
  RedisTier tier(client, {.prefix = prefix, .clock = &clock});
  Entry e = makeTestEntry("k:ttl");
  e.expiresAt = clock.now() + std::chrono::seconds(90);
  ASSERT_TRUE(tier.insert(std::make_shared<const Entry>(e)));
  auto pttl = client.command({"PTTL", prefix + "entry:k:ttl"});
  ASSERT_TRUE(pttl);
  EXPECT_GT(pttl->integer, 80000);
  EXPECT_LE(pttl->integer, 90000);

  Entry forever = makeTestEntry("k:forever");
  forever.expiresAt.reset();
  ASSERT_TRUE(tier.insert(std::make_shared<const Entry>(forever)));
  pttl = client.command({"PTTL", prefix + "entry:k:forever"});
  ASSERT_TRUE(pttl);
  EXPECT_EQ(pttl->integer, -1);  // no expiry: Redis's eviction bounds it

  // Already expired: not stored, and an older entry under the key goes.
  Entry old = makeTestEntry("k:forever");
  old.expiresAt = clock.now() - std::chrono::seconds(1);
  ASSERT_TRUE(tier.insert(std::make_shared<const Entry>(old)));
  auto found = tier.lookup("k:forever");
  ASSERT_TRUE(found);
  EXPECT_FALSE(*found);
}

TEST(RedisTierTest, AnEntryUnderAnotherKeysNameIsAMiss) {
  RedisClient client({.url = sharedServer().url()});
  const std::string prefix = freshPrefix();
  RedisTier tier(client, {.prefix = prefix});
  ASSERT_TRUE(tier.insert(entry("k:a", "answer a")));
  auto bytes = client.command({"GET", prefix + "entry:k:a"});
  ASSERT_TRUE(bytes);
  ASSERT_TRUE(client.command({"SET", prefix + "entry:k:b", bytes->str}));
  auto found = tier.lookup("k:b");
  ASSERT_TRUE(found);
  EXPECT_FALSE(*found);
}

TEST(RedisTierTest, PasswordAndDatabaseFromTheUrl) {
  RedisTestServer server;
  ASSERT_EQ(server.start({"--requirepass", "pa ss"}), "");
  RedisUrl url = server.url();
  {
    RedisClient noAuth({.url = url});
    auto r = noAuth.command({"GET", "x"});
    ASSERT_FALSE(r);
  }
  url.password = "pa ss";
  url.db = 2;
  RedisClient client({.url = url});
  RedisTier tier(client, {});
  ASSERT_TRUE(tier.insert(entry("k:db")));
  auto found = tier.lookup("k:db");
  ASSERT_TRUE(found && *found);
  // It went to database 2, not 0.
  url.db = 0;
  RedisClient db0({.url = url});
  auto inDb0 = db0.command({"EXISTS", std::string(kDefaultPrefix) + "entry:k:db"});
  ASSERT_TRUE(inDb0);
  EXPECT_EQ(inDb0->integer, 0);
}

TEST(RedisTierTest, AnOutageFailsFastAndTheTierRecoversByItself) {
  RedisTestServer server;
  ASSERT_EQ(server.start(), "");
  RedisClient client({.url = server.url(),
                      .backoffMin = std::chrono::milliseconds(50),
                      .backoffMax = std::chrono::milliseconds(200)});
  RedisTier tier(client, {});
  ASSERT_TRUE(tier.insert(entry("k:1")));
  server.stop();
  auto down = tier.lookup("k:1");
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code, Errc::Unavailable);
  // The circuit is open: the next calls fail without trying.
  const uint64_t failuresBefore = client.stats().failures;
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(tier.lookup("k:1"));
  EXPECT_GE(client.stats().rejected, 1u);
  EXPECT_LE(client.stats().failures, failuresBefore + 2);
  // Back on the same port: used again without a new client.
  ASSERT_EQ(server.start(), "");
  bool recovered = false;
  for (int i = 0; i < 200 && !recovered; ++i) {
    recovered = static_cast<bool>(tier.insert(entry("k:2")));
    if (!recovered) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(recovered);
  auto found = tier.lookup("k:2");
  ASSERT_TRUE(found && *found);
}

}  // namespace
}  // namespace llmcache::cache::redis
