#include "upstream/headers.h"

#include <gtest/gtest.h>

namespace llmcache::upstream {
namespace {

TEST(Forwarding, HopByHopAndManagedHeadersAreRecognizedInAnyCase) {
  for (const char* name :
       {"Connection", "keep-alive", "Proxy-Authenticate", "proxy-authorization", "TE", "Trailer",
        "Transfer-Encoding", "UPGRADE", "Host", "Content-Length", "x-llmcache-ttl",
        "X-LLMCache-Namespace", "x-llmcache-"}) {
    EXPECT_TRUE(isHopByHopOrManagedHeader(name)) << name;
  }
}

TEST(Forwarding, EndToEndHeadersAreForwarded) {
  for (const char* name : {"Authorization", "x-api-key", "Content-Type", "Accept",
                           "Accept-Encoding", "anthropic-version", "OpenAI-Organization",
                           "x-llmcache", "tea", "hostname", "Cache-Control", "User-Agent"}) {
    EXPECT_FALSE(isHopByHopOrManagedHeader(name)) << name;
  }
}

TEST(Forwarding, HeadersNamedByConnectionAreDroppedToo) {
  std::vector<Header> in = {{"Authorization", "Bearer k"},
                            {"Connection", "close, X-Foo"},
                            {"x-foo", "1"},
                            {"X-Bar", "2"},
                            {"Host", "example.com"},
                            {"x-llmcache-ttl", "60"},
                            {"Content-Length", "12"},
                            {"Accept", "application/json"}};
  std::vector<Header> expected = {
      {"Authorization", "Bearer k"}, {"X-Bar", "2"}, {"Accept", "application/json"}};
  EXPECT_EQ(forwardableHeaders(in), expected);
}

TEST(Forwarding, FindHeaderIgnoresCase) {
  std::vector<Header> h = {{"Content-Type", "text/plain"}, {"content-type", "second"}};
  EXPECT_EQ(findHeader(h, "CONTENT-TYPE"), "text/plain");
  EXPECT_EQ(findHeader(h, "accept"), std::nullopt);
}

TEST(Forwarding, OnlyTheAllowlistIsReplayedFromAStoredAnswer) {
  for (const char* name :
       {"x-request-id", "X-Request-Id", "request-id", "openai-processing-ms", "openai-version"})
    EXPECT_TRUE(isReplayableHeader(name)) << name;
  // Never a cookie, a credential, an account's identity or figures that are stale on a hit.
  for (const char* name :
       {"set-cookie", "authorization", "x-api-key", "openai-organization", "openai-project",
        "anthropic-organization-id", "x-ratelimit-remaining-tokens", "content-length", "date",
        "x-request-id-extra"})
    EXPECT_FALSE(isReplayableHeader(name)) << name;
}

}  // namespace
}  // namespace llmcache::upstream
