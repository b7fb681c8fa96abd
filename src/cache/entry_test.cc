#include "cache/entry.h"

#include <gtest/gtest.h>

#include <set>

#include "cache/test_entry.h"

namespace llmcache::cache {
namespace {

using test::makeTestEntry;

TEST(Entry, JsonUsesTheSeedFieldNames) {
  Entry e = makeTestEntry("gpt-4o-mini:0011223344556677");
  const Json j = entryToJson(e);
  const std::vector<std::string> expected = {"schema_version",
                                             "cache_id",
                                             "cache_key",
                                             "request_hash",
                                             "endpoint",
                                             "request",
                                             "request_timestamp",
                                             "response",
                                             "response_timestamp",
                                             "status",
                                             "model",
                                             "platform",
                                             "provider",
                                             "tokens",
                                             "cost",
                                             "latency_ms",
                                             "hit_count",
                                             "last_accessed",
                                             "expires_at",
                                             "tags",
                                             "namespace",
                                             "sse_events"};
  EXPECT_EQ(j.keys(), expected);
  EXPECT_EQ(j.find("tokens")->getInt("input"), 12);
  EXPECT_EQ(j.find("tokens")->getInt("output"), 3);
  EXPECT_EQ(j.find("cost")->getDouble("total"), 3.6e-6);
  EXPECT_TRUE(j.find("expires_at")->isNull());
  EXPECT_EQ(j.getString("request_timestamp"), "2026-01-01T00:00:00.123Z");
}

TEST(Entry, TenantIsAnOptionalFieldWrittenOnlyWhenScoped) {
  Entry e = makeTestEntry("k:01");
  EXPECT_EQ(entryToJson(e).find("tenant"), nullptr);  // unscoped: the JSON older writers wrote
  e.tenant = "0123456789abcdef";
  const Json j = entryToJson(e);
  EXPECT_EQ(j.getString("tenant"), "0123456789abcdef");
  auto back = entryFromJson(j);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, e);
  Json older = entryToJson(makeTestEntry("k:01"));  // no "tenant": reads as unscoped
  auto old = entryFromJson(older);
  ASSERT_TRUE(old) << old.error().message;
  EXPECT_EQ(old->tenant, "");
  older.set("tenant", Json::integer(1));
  ASSERT_FALSE(entryFromJson(older));
  EXPECT_EQ(entryFromJson(older).error().code, Errc::Corrupt);
}

TEST(Entry, JsonRoundTripsEveryField) {
  Entry e = makeTestEntry("k:01");
  e.expiresAt = fromUnixMillis(1767229200000);
  e.hitCount = 7;
  e.status = 201;
  e.provider = "openai";
  e.sseEvents = {{"", "{\"a\":1}"}, {"message_stop", "line one\nline two"}, {"", "[DONE]"}};
  e.responseHeaders = {{"x-request-id", "req_abc"}, {"openai-processing-ms", "12"}};
  auto back = entryFromJson(entryToJson(e));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, e);
  // And through text, as the codec does.
  auto reparsed = parseJson(toJson(entryToJson(e)));
  ASSERT_TRUE(reparsed);
  auto again = entryFromJson(*reparsed);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, e);
}

TEST(Entry, ExpiresAtNowOrEarlierIsExpired) {
  Entry e = makeTestEntry("k:01");
  const TimePoint t = fromUnixMillis(1767229200000);
  EXPECT_FALSE(e.expired(t));
  e.expiresAt = t;
  EXPECT_TRUE(e.expired(t));
  EXPECT_FALSE(e.expired(t - std::chrono::milliseconds(1)));
}

Result<Entry> withField(std::string_view name, Json value) {
  Json j = entryToJson(makeTestEntry("k:01"));
  j.set(std::string(name), std::move(value));
  return entryFromJson(j);
}

TEST(Entry, MissingRequiredFieldIsCorrupt) {
  for (std::string_view name : {"schema_version", "cache_key", "request_hash", "response"}) {
    Json j = entryToJson(makeTestEntry("k:01"));
    j.erase(name);
    auto r = entryFromJson(j);
    ASSERT_FALSE(r) << name;
    EXPECT_EQ(r.error().code, Errc::Corrupt);
    EXPECT_NE(r.error().message.find(name), std::string::npos) << r.error().message;
  }
}

TEST(Entry, OptionalFieldsDefaultWhenAbsent) {
  Json j = entryToJson(makeTestEntry("k:01"));
  for (std::string_view name :
       {"namespace", "sse_events", "tags", "expires_at", "tokens", "cost", "endpoint"})
    j.erase(name);
  auto r = entryFromJson(j);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->cacheNamespace, "");
  EXPECT_FALSE(r->expiresAt);
  EXPECT_EQ(r->tokensInput, 0);
}

TEST(Entry, OtherSchemaVersionIsCorrupt) {
  auto r = withField("schema_version", Json::integer(2));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Corrupt);
}

TEST(Entry, MistypedFieldsAreCorruptAndNamed) {
  const std::pair<std::string_view, Json> cases[] = {
      {"cache_key", Json::integer(5)},  {"request_timestamp", Json::string("yesterday")},
      {"expires_at", Json::integer(0)}, {"tags", Json::string("a,b")},
      {"tokens", Json::string("12")},   {"latency_ms", Json::string("333")},
      {"sse_events", Json::object()},
  };
  for (const auto& [name, value] : cases) {
    auto r = withField(name, value);
    ASSERT_FALSE(r) << name;
    EXPECT_EQ(r.error().code, Errc::Corrupt);
    EXPECT_NE(r.error().message.find(name), std::string::npos) << r.error().message;
  }
}

TEST(Entry, NotAnObjectIsCorrupt) {
  EXPECT_FALSE(entryFromJson(Json::array()));
  EXPECT_FALSE(entryFromJson(Json::null()));
}

TEST(Entry, NonFiniteCostIsWrittenAsZeroSoTheJsonStaysValid) {
  Entry e = makeTestEntry("k:01");
  e.costTotal = std::numeric_limits<double>::quiet_NaN();
  auto parsed = parseJson(toJson(entryToJson(e)));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->find("cost")->getDouble("total"), 0.0);
}

TEST(Entry, NewCacheIdIs32LowercaseHexAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = newCacheId();
    ASSERT_EQ(id.size(), 32u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Entry, ApproxBytesGrowsWithTheResponse) {
  const size_t small = makeTestEntry("k:01", "hi").approxBytes();
  const size_t big = makeTestEntry("k:01", std::string(100000, 'x')).approxBytes();
  EXPECT_GT(small, sizeof(Entry));
  EXPECT_GT(big - small, 99000u);
}

}  // namespace
}  // namespace llmcache::cache
