#include "gateway/request_controls.h"

#include <gtest/gtest.h>

#include <cctype>
#include <set>

namespace llmcache::gateway {
namespace {

namespace bhttp = http::bhttp;

http::Request request(
    std::initializer_list<std::pair<std::string_view, std::string_view>> headers) {
  http::Request req{bhttp::verb::post, "/v1/chat/completions", 11};
  for (const auto& [name, value] : headers) req.set(name, value);
  return req;
}

RequestControls controls(const http::Request& req, ScopeOptions scope = {},
                         std::string_view query = "") {
  auto r = readControls(req, query, scope);
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : RequestControls{};
}

bool isLowerHex(std::string_view s) {
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c)) ||
        std::isupper(static_cast<unsigned char>(c)))
      return false;
  return true;
}

// --- Cache-Control ----------------------------------------------------------------------------

TEST(ParseCacheControl, NoHeaderMeansNoDirectives) {
  const CacheControl c = parseCacheControl("");
  EXPECT_FALSE(c.noCache);
  EXPECT_FALSE(c.noStore);
  EXPECT_FALSE(c.maxAge);
}

TEST(ParseCacheControl, DirectiveNamesAreCaseInsensitive) {
  const CacheControl c = parseCacheControl("No-Cache, NO-STORE, Max-Age=30");
  EXPECT_TRUE(c.noCache);
  EXPECT_TRUE(c.noStore);
  EXPECT_EQ(c.maxAge, 30);
}

TEST(ParseCacheControl, SpacesAndTabsAroundDirectivesAreIgnored) {
  const CacheControl c = parseCacheControl(" \tno-store ,\tmax-age=5 \t, ");
  EXPECT_FALSE(c.noCache);
  EXPECT_TRUE(c.noStore);
  EXPECT_EQ(c.maxAge, 5);
}

TEST(ParseCacheControl, MaxAgeIsAWholeNumberOfSecondsOrNothing) {
  EXPECT_EQ(parseCacheControl("max-age=0").maxAge, 0);
  EXPECT_EQ(parseCacheControl("max-age=86400").maxAge, 86400);
  EXPECT_FALSE(parseCacheControl("max-age=-1").maxAge);
  EXPECT_FALSE(parseCacheControl("max-age=1.5").maxAge);
  EXPECT_FALSE(parseCacheControl("max-age=").maxAge);
  EXPECT_FALSE(parseCacheControl("max-age=ten").maxAge);
}

TEST(ParseCacheControl, UnknownDirectivesAreIgnored) {
  const CacheControl c = parseCacheControl("private, no-transform, no-cache=\"set-cookie\", x=1");
  EXPECT_FALSE(c.noCache);  // no-cache with a field list is not the bare directive
  EXPECT_FALSE(c.noStore);
  EXPECT_FALSE(c.maxAge);
}

// --- x-llmcache-ttl, namespace, tags ----------------------------------------------------------

TEST(ReadControls, ATtlIsAWholeNumberOfSecondsWithBlanksAroundAllowed) {
  EXPECT_EQ(controls(request({{"x-llmcache-ttl", "300"}})).ttl, 300);
  EXPECT_EQ(controls(request({{"x-llmcache-ttl", " 0\t"}})).ttl, 0);
  EXPECT_FALSE(controls(request({})).ttl);
}

TEST(ReadControls, AnInvalidTtlIsInvalidArgument) {
  for (std::string_view ttl : {"abc", "-5", "1.5", "10s", "1 0"}) {
    auto r = readControls(request({{"x-llmcache-ttl", ttl}}), "", {});
    ASSERT_FALSE(r) << ttl;
    EXPECT_EQ(r.error().code, Errc::InvalidArgument) << ttl;
    EXPECT_EQ(r.error().message, "x-llmcache-ttl must be a whole number of seconds >= 0");
  }
}

TEST(ReadControls, TheNamespaceIsTrimmed) {
  EXPECT_EQ(controls(request({{"x-llmcache-namespace", " \tteam-a "}})).keyNamespace, "team-a");
  EXPECT_EQ(controls(request({})).keyNamespace, "");
}

TEST(ReadControls, TagsAreSplitAtCommasTrimmedAndEmptyOnesDropped) {
  const RequestControls c = controls(request({{"x-llmcache-tags", " prod,\tteam a , ,,beta\t"}}));
  EXPECT_EQ(c.tags, (std::vector<std::string>{"prod", "team a", "beta"}));
  EXPECT_TRUE(controls(request({})).tags.empty());
}

// --- the tenant (CACHE_SCOPE) -----------------------------------------------------------------

TEST(ReadControls, ApiKeyScopeHashesTheAuthorizationHeader) {
  const ScopeOptions scope{.mode = "api_key", .secret = "s3cret"};
  const RequestControls c = controls(request({{"authorization", "Bearer sk-one"}}), scope);
  EXPECT_EQ(c.tenant, credentialScope("Bearer sk-one", "s3cret"));
  EXPECT_EQ(c.callerHash, c.tenant);
  EXPECT_EQ(c.tenant.find("sk-one"), std::string::npos);
}

TEST(ReadControls, ApiKeyScopeFallsBackToXApiKeyAndPrefersAuthorization) {
  const ScopeOptions scope{.mode = "api_key", .secret = "s3cret"};
  EXPECT_EQ(controls(request({{"x-api-key", "sk-ant"}}), scope).tenant,
            credentialScope("sk-ant", "s3cret"));
  EXPECT_EQ(controls(request({{"x-api-key", "sk-ant"}, {"authorization", "Bearer sk-one"}}), scope)
                .tenant,
            credentialScope("Bearer sk-one", "s3cret"));
}

TEST(ReadControls, ApiKeyScopeIsTheDefaultAndAlsoSpelledWithAHyphen) {
  const auto req = request({{"authorization", "Bearer sk-one"}});
  const std::string expected = credentialScope("Bearer sk-one", "");
  EXPECT_EQ(controls(req).tenant, expected);
  EXPECT_EQ(controls(req, {.mode = "api-key", .secret = ""}).tenant, expected);
}

TEST(ReadControls, ApiKeyScopeWithoutACredentialIsTheAnonymousTenant) {
  const RequestControls c = controls(request({}), {.mode = "api_key", .secret = "s3cret"});
  EXPECT_EQ(c.tenant, kAnonymousTenant);
  EXPECT_EQ(c.callerHash, "");
}

TEST(ReadControls, ACredentialInTheQueryScopesLikeAHeaderButNeverAsTheSameTenant) {
  const ScopeOptions scope{.mode = "api_key", .secret = "s3cret"};
  const std::string a = controls(request({}), scope, "alt=sse&key=AIza-one").tenant;
  EXPECT_NE(a, kAnonymousTenant);
  EXPECT_EQ(a.find("AIza-one"), std::string::npos);
  EXPECT_NE(a, controls(request({}), scope, "key=AIza-two").tenant);
  EXPECT_EQ(a, controls(request({}), scope, "key=AIza-one").tenant);
  // The same text in a header is another credential: a query parameter cannot pose as it.
  EXPECT_NE(a, controls(request({{"x-goog-api-key", "AIza-one"}}), scope).tenant);
}

TEST(ReadControls, OnlyTheConfiguredCredentialCarriersAreReadInTheirOrder) {
  const ScopeOptions scope{.mode = "api_key", .secret = "s", .credentials = {"x-b", "x-a"}};
  EXPECT_EQ(controls(request({{"x-a", "k-a"}, {"x-b", "k-b"}}), scope).tenant,
            credentialScope("k-b", "s"));
  EXPECT_EQ(controls(request({{"x-a", "k-a"}}), scope).tenant, credentialScope("k-a", "s"));
  EXPECT_EQ(controls(request({{"authorization", "Bearer sk-one"}}), scope).tenant,
            kAnonymousTenant);
}

TEST(ReadControls, GlobalScopeHasNoTenantButStillHashesTheCaller) {
  const RequestControls c =
      controls(request({{"authorization", "Bearer sk-one"}}), {.mode = "global", .secret = "s"});
  EXPECT_EQ(c.tenant, "");
  EXPECT_EQ(c.callerHash, credentialScope("Bearer sk-one", "s"));
}

TEST(ReadControls, HeaderScopeTakesThatHeadersTrimmedValue) {
  const ScopeOptions scope{.mode = "header:X-Tenant-Id", .secret = "s"};
  const RequestControls c =
      controls(request({{"x-tenant-id", " acme\t"}, {"authorization", "Bearer sk-one"}}), scope);
  EXPECT_EQ(c.tenant, "acme");
  EXPECT_EQ(c.callerHash, credentialScope("Bearer sk-one", "s"));
  EXPECT_EQ(controls(request({}), scope).tenant, "");  // no header: unscoped
}

// --- credentialScope ----------------------------------------------------------------------------

TEST(CredentialScope, IsTheFirstEightBytesOfTheDigestInLowerHex) {
  // SHA-256("abc") = ba7816bf8f01cfea 414140de...
  EXPECT_EQ(credentialScope("abc", ""), "ba7816bf8f01cfea");
  // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog") = f7bc83f430538424 b132...
  EXPECT_EQ(credentialScope("The quick brown fox jumps over the lazy dog", "key"),
            "f7bc83f430538424");
}

TEST(CredentialScope, DiffersBySecretAndByCredential) {
  const std::string a = credentialScope("Bearer sk-one", "secret-1");
  EXPECT_NE(a, credentialScope("Bearer sk-one", "secret-2"));  // also past the per-thread memo
  EXPECT_NE(a, credentialScope("Bearer sk-one", ""));
  EXPECT_NE(a, credentialScope("Bearer sk-two", "secret-1"));
  EXPECT_EQ(a, credentialScope("Bearer sk-one", "secret-1"));
}

TEST(CredentialScope, NeverContainsTheCredential) {
  // 16 hex digits whatever the credential: a short key (or a key that is itself hex) is not
  // passed through, and a long one is not truncated into it.
  for (std::string_view credential : {"Bearer sk-proj-0123456789", "sk", "ba7816bf", "abc"}) {
    for (std::string_view secret : {"", "s3cret"}) {
      const std::string scope = credentialScope(credential, secret);
      EXPECT_EQ(scope.size(), 16u);
      EXPECT_TRUE(isLowerHex(scope)) << scope;
      EXPECT_EQ(scope.find(credential), std::string::npos) << credential;
    }
  }
}

TEST(ReadControls, NamespaceAndTagsMustBeValidUtf8) {
  for (std::string_view bad : {"team-\xff", "\xc0\xaf", "\xed\xa0\x80", "ok\xe2\x82"}) {
    auto ns = readControls(request({{"x-llmcache-namespace", bad}}), "", {});
    ASSERT_FALSE(ns) << bad;
    EXPECT_NE(ns.error().message.find("UTF-8"), std::string::npos);
    EXPECT_FALSE(readControls(request({{"x-llmcache-tags", bad}}), "", {}));
  }
  const RequestControls ok = controls(request({{"x-llmcache-tags", "caf\xc3\xa9, \xe2\x82\xac"}}));
  EXPECT_EQ(ok.tags, (std::vector<std::string>{"caf\xc3\xa9", "\xe2\x82\xac"}));
}

}  // namespace
}  // namespace llmcache::gateway
