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

TEST(RedisUrlTest, RedissIsTlsWithAnOptionalCaFile) {
  auto tls = parseRedisUrl("rediss://u:topsecret@cache.internal:6380/1?ca=%2Fetc%2Fredis%20ca.pem");
  ASSERT_TRUE(tls) << tls.error().message;
  EXPECT_TRUE(tls->tls);
  EXPECT_EQ(tls->host, "cache.internal");
  EXPECT_EQ(tls->port, 6380);
  EXPECT_EQ(tls->db, 1);
  EXPECT_EQ(tls->password, "topsecret");
  EXPECT_EQ(tls->caFile, "/etc/redis ca.pem");

  auto systemStore = parseRedisUrl("rediss://localhost?prefix=p:");
  ASSERT_TRUE(systemStore);
  EXPECT_TRUE(systemStore->tls);
  EXPECT_TRUE(systemStore->caFile.empty());  // the system CA store
  EXPECT_EQ(systemStore->prefix, "p:");

  auto plain = parseRedisUrl("redis://localhost");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->tls);

  // ca= means nothing without TLS: refused rather than silently ignored.
  auto caWithoutTls = parseRedisUrl("redis://u:topsecret@host?ca=/x.pem");
  ASSERT_FALSE(caWithoutTls);
  EXPECT_NE(caWithoutTls.error().message.find("rediss://"), std::string::npos);
  EXPECT_EQ(caWithoutTls.error().message.find("topsecret"), std::string::npos);
  // There is no way to turn verification off.
  EXPECT_FALSE(parseRedisUrl("rediss://host?insecure=1"));
  EXPECT_FALSE(parseRedisUrl("rediss://host?ca="));
}

TEST(RedisUrlTest, RefusesMalformedUrlsWithoutEchoingThePassword) {
  for (const char* bad :
       {"http://host", "redis://", "rediss://", "redis://host:0", "redis://host:99999",
        "redis://host/x", "redis://host?db=2", "redis://u:p%zz@host", "redis+tls://host"}) {
    auto r = parseRedisUrl(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error().message.find("p%zz"), std::string::npos);
    }
  }
}

// --- TLS (rediss://) against a real redis-server with TLS on, certificates made by openssl ---

test::TestCertificates& certificates() {
  static test::TestCertificates certs;
  return certs;
}

TEST(RedisTlsTest, StoresAndFindsOverTlsWithTheCaFileByIpAndByName) {
  auto& certs = certificates();
  RedisTestServer server;
  server.useTls(certs.path("server.crt"), certs.path("server.key"), certs.path("ca.crt"));
  ASSERT_EQ(server.start({"--requirepass", "tls pw"}), "");
  RedisUrl url = server.url();  // rediss://127.0.0.1:port?ca=ca.crt
  url.password = "tls pw";
  RedisClient client({.url = url});
  ASSERT_TRUE(client.ready());
  RedisTier tier(client, {.prefix = freshPrefix()});
  ASSERT_TRUE(tier.insert(entry("k:tls", "over TLS")));
  auto found = tier.lookup("k:tls");
  ASSERT_TRUE(found && *found) << (found ? "miss" : found.error().message);
  EXPECT_EQ((**found)->cacheKey, "k:tls");
  // A value larger than one TLS record (16 KiB) both ways.
  const std::string big(300 * 1024, 'x');
  ASSERT_TRUE(client.command({"SET", "big", big}));
  auto back = client.command({"GET", "big"});
  ASSERT_TRUE(back);
  EXPECT_EQ(back->str, big);
  // The certificate's DNS name works as well as its IP address.
  url.host = "localhost";
  RedisClient byName({.url = url});
  auto pong = byName.command({"PING"});
  ASSERT_TRUE(pong) << pong.error().message;
  EXPECT_EQ(pong->str, "PONG");
  // A subscriber's connection over TLS: SUBSCRIBE, then messages published by another.
  auto sub = client.connectDedicated();
  ASSERT_TRUE(sub) << sub.error().message;
  ASSERT_TRUE((*sub)->tls());
  ASSERT_TRUE((*sub)->command({"SUBSCRIBE", "ch"}));
  ASSERT_TRUE(client.command({"PUBLISH", "ch", "hello"}));
  auto message = (*sub)->read();
  ASSERT_TRUE(message) << message.error().message;
  ASSERT_EQ(message->elements.size(), 3u);
  EXPECT_EQ(message->elements[2].str, "hello");
  EXPECT_EQ(client.stats().failures, 0u);
}

TEST(RedisTlsTest, RefusesAServerItCannotVerify) {
  auto& certs = certificates();
  RedisTestServer server;
  server.useTls(certs.path("server.crt"), certs.path("server.key"), certs.path("ca.crt"));
  ASSERT_EQ(server.start(), "");
  auto refused = [](RedisUrl url, std::string_view why) {
    RedisClient client({.url = url});
    ASSERT_TRUE(client.ready());
    auto r = client.command({"PING"});
    ASSERT_FALSE(r) << why;
    EXPECT_EQ(r.error().code, Errc::Unavailable);
    EXPECT_NE(r.error().message.find("certificate"), std::string::npos) << r.error().message;
    EXPECT_EQ(client.stats().failures, 1u);  // the circuit opened: the tier below answers
  };
  // Signed by another CA.
  RedisUrl other = server.url();
  other.caFile = certs.path("other-ca.crt");
  refused(other, "another CA");
  // The system store does not know the throwaway CA.
  RedisUrl system = server.url();
  system.caFile.clear();
  refused(system, "system store");
  // Plain TCP to a TLS port is no answer either (not a hang: the command timeout).
  RedisUrl plain = server.url();
  plain.tls = false;
  plain.caFile.clear();
  RedisClient plainClient({.url = plain});
  EXPECT_FALSE(plainClient.command({"PING"}));
  // A CA file that cannot be read: ready() says so at start-up, commands fail.
  RedisUrl missing = server.url();
  missing.caFile = certs.path("no-such-ca.pem");
  RedisClient noCa({.url = missing});
  ASSERT_FALSE(noCa.ready());
  EXPECT_NE(noCa.ready().error().message.find("no-such-ca.pem"), std::string::npos);
  EXPECT_FALSE(noCa.command({"PING"}));
}

TEST(RedisTlsTest, RefusesACertificateForAnotherName) {
  auto& certs = certificates();
  // The certificate is for redis.example, signed by the trusted CA; we connect to 127.0.0.1.
  RedisTestServer server;
  server.useTls(certs.path("wrong-name.crt"), certs.path("wrong-name.key"), certs.path("ca.crt"));
  ASSERT_EQ(server.start(), "");
  RedisClient client({.url = server.url()});
  auto r = client.command({"PING"});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("certificate"), std::string::npos) << r.error().message;
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
