#include "cache/memory/compact_entry.h"

#include <gtest/gtest.h>

#include <climits>
#include <random>

#include "cache/test_entry.h"

namespace llmcache::cache {
namespace {

Entry withoutRequest(Entry e) {
  e.request.clear();
  return e;
}

TEST(CompactEntry, RoundTripsEveryFieldButTheRequest) {
  Entry e = test::makeTestEntry("gpt-4o-mini_0011223344556677", "the answer");
  e.tags = {"team-x", "prod"};
  e.cacheNamespace = "eval";
  e.tenant = "a1b2c3d4e5f60718";
  e.provider = "openai";
  e.expiresAt = e.responseTimestamp + std::chrono::hours(24);
  e.sseEvents = {{"", R"({"choices":[]})"}, {"message_stop", "{}"}, {"", "[DONE]"}};
  e.responseHeaders = {{"x-request-id", "req_1"}, {"openai-processing-ms", "41"}};
  e.hitCount = 7;
  const std::string block = packEntry(e);
  EXPECT_EQ(packedCacheKey(block), e.cacheKey);
  EXPECT_EQ(unpackEntry(block), withoutRequest(e));
  EXPECT_EQ(block.find("what is the password"), std::string::npos);
}

TEST(CompactEntry, KeepsIdsThatAreNotHexAndTimesOfAnyValue) {
  Entry e = test::makeTestEntry("k:1", "x", "NOT-HEX-request-hash");
  e.cacheId = "0123456789ABCDEF0123456789ABCDEF";  // upper case: not the binary form
  e.requestTimestamp = TimePoint{TimePoint::duration{INT64_MAX}};
  e.responseTimestamp = TimePoint{TimePoint::duration{INT64_MIN}};
  e.lastAccessed = TimePoint{TimePoint::duration{-1}};
  e.expiresAt = TimePoint{};
  e.tokensInput = -5;
  e.latencyMs = INT64_MIN;
  e.costTotal = -0.0;
  EXPECT_EQ(unpackEntry(packEntry(e)), withoutRequest(e));
}

TEST(CompactEntry, RandomEntriesRoundTrip) {
  std::mt19937_64 rng(12345);
  auto text = [&](size_t max) {
    std::string s(rng() % (max + 1), '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
  };
  for (int i = 0; i < 500; ++i) {
    Entry e;
    e.cacheKey = text(300);
    e.cacheId = (i % 2) ? text(40) : test::makeTestEntry("k").cacheId;
    e.requestHash = text(40);
    e.endpoint = text(20);
    e.model = text(200);
    e.platform = text(10);
    e.response = text(5000);
    e.status = static_cast<int>(rng() % 1000);
    e.responseTimestamp = TimePoint{TimePoint::duration{static_cast<int64_t>(rng())}};
    e.requestTimestamp = TimePoint{TimePoint::duration{static_cast<int64_t>(rng())}};
    e.lastAccessed = TimePoint{TimePoint::duration{static_cast<int64_t>(rng())}};
    if (rng() % 2) e.expiresAt = TimePoint{TimePoint::duration{static_cast<int64_t>(rng())}};
    e.tokensOutput = static_cast<int64_t>(rng());
    e.costOutput = static_cast<double>(rng() % 100000) / 7.0;
    for (size_t t = rng() % 4; t > 0; --t) e.tags.push_back(text(30));
    for (size_t t = rng() % 4; t > 0; --t) e.sseEvents.push_back({text(10), text(300)});
    const std::string block = packEntry(e);
    ASSERT_EQ(packedCacheKey(block), e.cacheKey) << i;
    ASSERT_EQ(unpackEntry(block), e) << i;
  }
}

}  // namespace
}  // namespace llmcache::cache
