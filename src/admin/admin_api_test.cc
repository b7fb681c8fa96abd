#include "admin/admin_api.h"

#include <gtest/gtest.h>

#include "cache/memory/memory_tier.h"
#include "cache/test_entry.h"
#include "index/test_util.h"

namespace llmcache::admin {
namespace {

using namespace std::chrono_literals;
using cache::test::makeTestEntry;
using Reply = AdminApi::Reply;

constexpr const char* kToken = "s3cret-admin-token";
constexpr const char* kAuth = "Bearer s3cret-admin-token";
constexpr const char* kJson = "application/json";

// A remote client with this Authorization (and a JSON body, for the routes that change things).
AdminApi::Caller remote(std::string_view authorization) {
  return {.authorization = authorization, .host = "gateway.example.com:8080", .contentType = kJson};
}
// What curl or a script on the gateway's machine sends: loopback peer and Host, no Origin.
AdminApi::Caller local(std::string_view authorization = "") {
  return {.authorization = authorization,
          .host = "127.0.0.1:8080",
          .contentType = kJson,
          .fromLoopback = true};
}

Json body(const Reply& r) {
  auto j = parseJson(r.body);
  EXPECT_TRUE(j) << r.body;
  return j ? *j : Json{};
}

std::string header(const Reply& r, std::string_view name) {
  for (const auto& [n, v] : r.headers)
    if (n == name) return v;
  return {};
}

class AdminApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 5; ++i) {
      cache::Entry e = makeTestEntry("gpt-4o:000000000000000" + std::to_string(i), "answer",
                                     std::string(32, static_cast<char>('0' + i)));
      e.model = i < 3 ? "gpt-4o" : "gpt-4o-mini";
      e.tags = {i % 2 ? "team a" : "team-b"};
      e.responseTimestamp = fromUnixMillis(1767225600000 + i * 1000);
      e.lastAccessed = e.responseTimestamp;
      e.costTotal = 0.01;
      for (cache::CacheTier* t : chain_.tiers())
        (void)t->insert(std::make_shared<const cache::Entry>(e));
      ASSERT_TRUE(index_->upsert(e, index::kTierMemory, 100, 200));
      entries_.push_back(e);
    }
  }

  Reply get(std::string_view target, std::string_view auth = kAuth) {
    return api_.handle("GET", target, "", remote(auth));
  }
  Reply post(std::string_view target, std::string_view b, std::string_view auth = kAuth) {
    return api_.handle("POST", target, b, remote(auth));
  }
  Reply del(std::string_view target) { return api_.handle("DELETE", target, "", remote(kAuth)); }

  void expectError(const Reply& r, int status, std::string_view type,
                   std::string_view mentions = "") {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.contentType, "application/json");
    const Json b = body(r);
    const Json* e = b.find("error");
    ASSERT_TRUE(e && e->isObject()) << r.body;
    EXPECT_EQ(e->getString("type").value_or(""), type);
    EXPECT_NE(e->getString("message").value_or("").find(mentions), std::string::npos) << r.body;
  }

  index::test::TempDir dir_;
  FakeClock clock_;
  config::Config config_ = [] {
    config::Config c;
    c.adminToken = kToken;
    return c;
  }();
  std::unique_ptr<index::Index> index_ = index::Index::open(dir_.path() / "index.sqlite").value();
  cache::MemoryTier memory_{{.maxEntries = 100, .shards = 1}};
  cache::TieredCache chain_{{.fast = {&memory_}, .clock = &clock_}};
  invalidation::Invalidator invalidator_{*index_, chain_, clock_};
  AdminApi api_{*index_, invalidator_, config_};
  std::vector<cache::Entry> entries_;
};

// --- auth
// -----------------------------------------------------------------------------------------

TEST_F(AdminApiTest, WithoutAConfiguredTokenOnlyLoopbackClientsAreAnswered) {
  config::Config open;
  AdminApi api(*index_, invalidator_, open);
  EXPECT_EQ(api.handle("GET", "/cache/stats", "", local()).status, 200);
  expectError(api.handle("GET", "/cache/stats", "", remote("")), 403, "permission_error",
              "loopback");
  expectError(api.handle("GET", "/cache/stats", "", remote("Bearer anything")), 403,
              "permission_error");
}

TEST_F(AdminApiTest, WithATokenAMissingOrWrongOneIsUnauthorizedEvenFromLoopback) {
  Reply r = get("/cache/stats", "");
  expectError(r, 401, "authentication_error", "missing admin token");
  EXPECT_EQ(header(r, "WWW-Authenticate"), "Bearer");
  expectError(api_.handle("GET", "/cache/stats", "", local()), 401, "authentication_error");
  expectError(get("/cache/stats", "Bearer wrong"), 401, "authentication_error",
              "invalid admin token");
  expectError(get("/cache/stats", "Bearer s3cret-admin-toke"), 401, "authentication_error");
  expectError(get("/cache/stats", "Bearer s3cret-admin-token-and-more"), 401,
              "authentication_error");
  expectError(get("/cache/stats", "Basic czNjcmV0"), 401, "authentication_error");
  expectError(get("/cache/stats", "s3cret-admin-token"), 401, "authentication_error");
}

TEST_F(AdminApiTest, TheRightTokenIsAcceptedWithAnyCaseOfBearer) {
  EXPECT_EQ(get("/cache/stats").status, 200);
  EXPECT_EQ(get("/cache/stats", "bearer s3cret-admin-token").status, 200);
  EXPECT_EQ(get("/cache/stats", "  BEARER   s3cret-admin-token ").status, 200);
}

TEST_F(AdminApiTest, UnauthorizedClientsLearnNothingAboutRoutes) {
  expectError(get("/cache/no-such-route", "Bearer wrong"), 401, "authentication_error");
  expectError(api_.handle("PUT", "/cache/invalidate", "", remote("")), 401, "authentication_error");
}

// --- without a token: loopback peer, loopback Host, no foreign Origin (issue 15) -----------------

class LoopbackOnlyTest : public AdminApiTest {
 protected:
  config::Config open_;
  analytics::Metrics metrics_;
  AdminApi api_{*index_, invalidator_, open_};

  // handle(GET /cache/stats), metrics() and dashboard() for this caller: their three statuses.
  std::array<int, 3> statuses(const AdminApi::Caller& c) {
    return {api_.handle("GET", "/cache/stats", "", c).status,
            api_.metrics("GET", metrics_, c).status, api_.dashboard("GET", "/dashboard", c).status};
  }
  static constexpr std::array<int, 3> kAnswered{200, 200, 200}, kForbidden{403, 403, 403};
};

TEST_F(LoopbackOnlyTest, LoopbackHostNamesWithOrWithoutAPortAreAnswered) {
  for (std::string_view host :
       {"127.0.0.1", "127.0.0.1:8080", "localhost", "localhost:1", "LOCALHOST:65535", "[::1]",
        "[::1]:8080", "127.1.2.3:80", "127.255.255.255"}) {
    AdminApi::Caller c = local();
    c.host = host;
    EXPECT_EQ(statuses(c), kAnswered) << host;
  }
}

TEST_F(LoopbackOnlyTest, AForeignHostIsForbiddenEvenFromALoopbackPeer) {
  // DNS rebinding: evil.example resolves to 127.0.0.1, so the browser connects to the gateway
  // from loopback, but sends the attacker's name.
  for (std::string_view host : {"evil.example",
                                "evil.example:8080",
                                "127.0.0.1.evil.example",
                                "localhost.evil.example",
                                "evil.localhost",
                                "10.0.0.1",
                                "0.0.0.0:8080",
                                "128.0.0.1",
                                "127.0.0.256",
                                "127.0.0",
                                "127.0.0.1.",
                                "0127.0.0.1",
                                "[::2]",
                                "[::1",
                                "::1",
                                "[::1]x",
                                "localhost:",
                                "localhost:80x",
                                "localhost:123456",
                                "localhost:8080:1",
                                "user@localhost",
                                ""}) {
    AdminApi::Caller c = local();
    c.host = host;
    EXPECT_EQ(statuses(c), kForbidden) << host;
    expectError(api_.handle("GET", "/cache/patterns", "", c), 403, "permission_error", "Host");
  }
}

TEST_F(LoopbackOnlyTest, AForeignOriginIsForbiddenAndALoopbackOneAnswered) {
  for (std::string_view origin :
       {"http://evil.example", "https://evil.example:8080", "null", "http://127.0.0.1.evil.example",
        "http://localhost.evil.example", "file://", "ftp://localhost", "chrome-extension://abc",
        "http://localhost/", "http://user@localhost", "http://", "localhost", "//localhost"}) {
    AdminApi::Caller c = local();
    c.origin = origin;
    EXPECT_EQ(statuses(c), kForbidden) << origin;
    expectError(api_.handle("POST", "/cache/invalidate", R"({"pattern":"*"})", c), 403,
                "permission_error", "Origin");
  }
  EXPECT_EQ(memory_.entryCount(), 5u);
  // The dashboard page in the operator's browser: its requests carry its own origin.
  for (std::string_view origin : {"http://127.0.0.1:8080", "http://localhost:8080",
                                  "HTTP://LocalHost", "https://[::1]:8443", "http://127.0.0.2"}) {
    AdminApi::Caller c = local();
    c.origin = origin;
    EXPECT_EQ(statuses(c), kAnswered) << origin;
  }
}

TEST_F(LoopbackOnlyTest, ARemotePeerIsForbiddenWhateverItsHostAndOrigin) {
  AdminApi::Caller c = local();
  c.fromLoopback = false;
  EXPECT_EQ(statuses(c), kForbidden);
  expectError(api_.handle("GET", "/cache/stats", "", c), 403, "permission_error", "loopback");
}

TEST(LoopbackNames, HostsAndOrigins) {
  EXPECT_TRUE(AdminApi::isLoopbackHost("localhost"));
  EXPECT_TRUE(AdminApi::isLoopbackHost("127.0.0.1:0"));
  EXPECT_TRUE(AdminApi::isLoopbackHost("[::1]:65535"));
  EXPECT_FALSE(AdminApi::isLoopbackHost("[0:0:0:0:0:0:0:1]"));
  EXPECT_FALSE(AdminApi::isLoopbackHost("localhost.localdomain"));
  EXPECT_FALSE(AdminApi::isLoopbackHost("127.0.0.1 "));
  EXPECT_TRUE(AdminApi::isLoopbackOrigin("http://localhost:3000"));
  EXPECT_TRUE(AdminApi::isLoopbackOrigin("https://127.0.0.1"));
  EXPECT_FALSE(AdminApi::isLoopbackOrigin("http://localhost:3000/path"));
  EXPECT_FALSE(AdminApi::isLoopbackOrigin("ws://localhost"));
  EXPECT_FALSE(AdminApi::isLoopbackOrigin(""));
}

// --- CSRF: the state-changing routes take JSON only, token or not (issue 15) --------------------

TEST_F(LoopbackOnlyTest, AnInvalidationThatIsNotJsonIsUnsupportedAndChangesNothing) {
  // What a cross-site page can POST without a CORS preflight: a form, text/plain, no type (a
  // fetch() of a Blob without one).
  for (std::string_view type :
       {"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x", "", "application/jsonx", "application/json-seq",
        "text/json"}) {
    AdminApi::Caller c = local();
    c.contentType = type;
    expectError(api_.handle("POST", "/cache/invalidate", R"({"pattern":"*"})", c), 415,
                "invalid_request_error", "Content-Type: application/json");
  }
  EXPECT_EQ(memory_.entryCount(), 5u);
  EXPECT_EQ(invalidator_.generation(), 0u);
  for (std::string_view type :
       {"application/json", "application/json; charset=utf-8", "Application/JSON ;charset=UTF-8"}) {
    AdminApi::Caller c = local();
    c.contentType = type;
    Reply r = api_.handle("POST", "/cache/invalidate", R"({"pattern":"*","dry_run":true})", c);
    EXPECT_EQ(r.status, 200) << type << " " << r.body;
  }
}

TEST_F(LoopbackOnlyTest, ADeleteWithABodyOrATypeMustBeJsonAndOneWithNeitherIsAnswered) {
  AdminApi::Caller c = local();
  c.contentType = "text/plain";
  const std::string target = "/cache/entries/" + entries_[0].cacheId;
  expectError(api_.handle("DELETE", target, "", c), 415, "invalid_request_error");
  c.contentType = "";
  expectError(api_.handle("DELETE", target, "{}", c), 415, "invalid_request_error", "none");
  EXPECT_EQ(memory_.entryCount(), 5u);
  EXPECT_EQ(api_.handle("DELETE", target, "", c).status, 200);  // curl -X DELETE
  c.contentType = kJson;
  EXPECT_EQ(api_.handle("DELETE", "/cache/entries/" + entries_[1].cacheId, "", c).status, 200);
  EXPECT_EQ(memory_.entryCount(), 3u);
}

TEST_F(LoopbackOnlyTest, ReadsNeedNoContentTypeAndAuthAndMethodComeFirst) {
  AdminApi::Caller c = local();
  c.contentType = "";
  EXPECT_EQ(api_.handle("GET", "/cache/entries", "", c).status, 200);
  c.contentType = "text/plain";
  EXPECT_EQ(api_.handle("GET", "/cache/invalidate", "", c).status, 405);
  c.host = "evil.example";
  EXPECT_EQ(api_.handle("POST", "/cache/invalidate", "{}", c).status, 403);
}

TEST_F(AdminApiTest, WithATokenAnInvalidationThatIsNotJsonIsStillUnsupported) {
  AdminApi::Caller c = remote(kAuth);
  c.contentType = "text/plain";
  expectError(api_.handle("POST", "/cache/invalidate", R"({"pattern":"*"})", c), 415,
              "invalid_request_error");
  expectError(api_.handle("DELETE", "/cache/entries/" + entries_[0].cacheId, "x", c), 415,
              "invalid_request_error");
  EXPECT_EQ(memory_.entryCount(), 5u);
  c.authorization = "";
  expectError(api_.handle("POST", "/cache/invalidate", R"({"pattern":"*"})", c), 401,
              "authentication_error");
}

TEST_F(AdminApiTest, WithATokenHostAndOriginAreNotChecked) {
  // A remote operator: the gateway's public name, a browser page of another origin.
  AdminApi::Caller c = remote(kAuth);
  c.host = "evil.example";
  c.origin = "http://evil.example";
  EXPECT_EQ(api_.handle("GET", "/cache/stats", "", c).status, 200);
  EXPECT_EQ(api_.handle("POST", "/cache/invalidate", R"({"pattern":"*","dry_run":true})", c).status,
            200);
  c.authorization = "";
  c.fromLoopback = true;
  expectError(api_.handle("GET", "/cache/stats", "", c), 401, "authentication_error");
}

// --- routing
// --------------------------------------------------------------------------------------

TEST_F(AdminApiTest, OwnsOnlyCachePaths) {
  EXPECT_TRUE(AdminApi::owns("/cache/stats"));
  EXPECT_TRUE(AdminApi::owns("/cache/entries?limit=1"));
  EXPECT_TRUE(AdminApi::owns("/cache"));
  EXPECT_FALSE(AdminApi::owns("/cachex"));
  EXPECT_FALSE(AdminApi::owns("/v1/chat/completions"));
}

TEST_F(AdminApiTest, UnknownPathsAreNotFoundAndWrongMethodsNotAllowed) {
  expectError(get("/cache/nope"), 404, "not_found_error");
  expectError(get("/cache/entries/a/b"), 404, "not_found_error");
  Reply r = get("/cache/invalidate");
  expectError(r, 405, "invalid_request_error", "GET is not allowed");
  EXPECT_EQ(header(r, "Allow"), "POST");
  r = post("/cache/entries/" + entries_[0].cacheId, "");
  expectError(r, 405, "invalid_request_error");
  EXPECT_EQ(header(r, "Allow"), "GET, DELETE");
  EXPECT_EQ(header(api_.handle("DELETE", "/cache/stats", "", remote(kAuth)), "Allow"), "GET");
}

// --- invalidation
// ---------------------------------------------------------------------------------

TEST_F(AdminApiTest, PostInvalidateRemovesTheMatchingEntriesAndReportsThem) {
  Reply r = post("/cache/invalidate", R"({"model":"gpt-4o-mini"})");
  ASSERT_EQ(r.status, 200) << r.body;
  const Json b = body(r);
  EXPECT_EQ(b.getInt("matched"), 2);
  EXPECT_EQ(b.getInt("invalidated"), 2);
  EXPECT_EQ(b.getBool("dry_run"), false);
  EXPECT_EQ(b.getInt("generation"), 1);
  EXPECT_EQ(b.find("cache_ids")->size(), 2u);
  for (const auto& e : entries_)
    EXPECT_EQ(memory_.lookup(e.cacheKey).value().has_value(), e.model == "gpt-4o") << e.cacheKey;
}

TEST_F(AdminApiTest, PostInvalidateDryRunChangesNothing) {
  Reply r = post("/cache/invalidate", R"({"pattern":"gpt-4o:*","dry_run":true})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body(r).getInt("matched"), 5);
  EXPECT_EQ(body(r).getInt("invalidated"), 0);
  EXPECT_EQ(body(r).getBool("dry_run"), true);
  EXPECT_EQ(memory_.entryCount(), 5u);
}

TEST_F(AdminApiTest, PostInvalidateWithABadBodyIsABadRequestSayingWhy) {
  expectError(post("/cache/invalidate", ""), 400, "invalid_request_error", "empty body");
  expectError(post("/cache/invalidate", R"({"model":"a","tag":"b"})"), 400, "invalid_request_error",
              "exactly one");
  expectError(post("/cache/invalidate", R"({"older_than":"soon"})"), 400, "invalid_request_error",
              "older_than");
  expectError(post("/cache/invalidate", R"({"colour":"red"})"), 400, "invalid_request_error",
              "unknown criterion");
  EXPECT_EQ(memory_.entryCount(), 5u);
}

TEST_F(AdminApiTest, DeleteEntryInvalidatesItOnceThenIsNotFound) {
  const std::string target = "/cache/entries/" + entries_[1].cacheId;
  Reply r = del(target);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body(r).getString("cache_id"), entries_[1].cacheId);
  EXPECT_FALSE(memory_.lookup(entries_[1].cacheKey).value());
  EXPECT_EQ(memory_.entryCount(), 4u);
  expectError(del(target), 404, "not_found_error");
  r = get(target);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body(r).getBool("invalid"), true);
}

// --- reading
// --------------------------------------------------------------------------------------

TEST_F(AdminApiTest, GetEntryShowsItsMetadata) {
  const cache::Entry& e = entries_[2];
  Reply r = get("/cache/entries/" + e.cacheId);
  ASSERT_EQ(r.status, 200) << r.body;
  const Json b = body(r);
  EXPECT_EQ(b.getString("cache_id"), e.cacheId);
  EXPECT_EQ(b.getString("cache_key"), e.cacheKey);
  EXPECT_EQ(b.getString("request_hash"), e.requestHash);
  EXPECT_EQ(b.getString("model"), "gpt-4o");
  EXPECT_EQ(b.getString("namespace"), "tenant-1");
  EXPECT_EQ(b.getString("created"), formatIso8601(e.responseTimestamp));
  EXPECT_TRUE(b.find("expires_at")->isNull());
  EXPECT_EQ(b.getInt("size_stored"), 100);
  EXPECT_EQ(toJson(*b.find("tiers")), R"(["memory"])");
  EXPECT_EQ(toJson(*b.find("tokens")), R"({"input":12,"output":3})");
  EXPECT_EQ(b.getBool("invalid"), false);
  expectError(get("/cache/entries/ffffffffffffffffffffffffffffffff"), 404, "not_found_error");
}

TEST_F(AdminApiTest, EntryByHashFindsTheEntryOrSaysWhatIsMissing) {
  Reply r = get("/cache/entry-by-hash?request_hash=" + entries_[3].requestHash);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body(r).getString("cache_id"), entries_[3].cacheId);
  expectError(get("/cache/entry-by-hash"), 400, "invalid_request_error",
              "request_hash is required");
  expectError(get("/cache/entry-by-hash?request_hash=" + std::string(32, 'f')), 404,
              "not_found_error");
  expectError(get("/cache/entry-by-hash?hash=x"), 400, "invalid_request_error",
              "unknown query parameter");
}

TEST_F(AdminApiTest, ListEntriesPagesThroughACursor) {
  std::vector<std::string> seen;
  std::string target = "/cache/entries?limit=2";
  for (int pages = 0; pages < 10; ++pages) {
    Reply r = get(target);
    ASSERT_EQ(r.status, 200) << r.body;
    const Json b = body(r);
    for (const Json& row : b.find("data")->items()) seen.emplace_back(*row.getString("cache_id"));
    if (!*b.getBool("has_more")) {
      EXPECT_TRUE(b.find("next_cursor")->isNull());
      break;
    }
    target = "/cache/entries?limit=2&cursor=" + std::string(*b.getString("next_cursor"));
  }
  ASSERT_EQ(seen.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(seen[i], entries_[4 - i].cacheId);  // newest first
}

TEST_F(AdminApiTest, ListEntriesFiltersByModelTagAndTime) {
  auto count = [&](std::string_view target) {
    Reply r = get(target);
    EXPECT_EQ(r.status, 200) << target << " " << r.body;
    return body(r).find("data") ? body(r).find("data")->size() : 0;
  };
  EXPECT_EQ(count("/cache/entries"), 5u);
  EXPECT_EQ(count("/cache/entries?model=gpt-4o"), 3u);
  EXPECT_EQ(count("/cache/entries?model=gpt-4o-mini&tag=team+a"), 1u);
  EXPECT_EQ(count("/cache/entries?tag=team%20a"), 2u);
  EXPECT_EQ(count("/cache/entries?namespace=tenant-1"), 5u);
  EXPECT_EQ(count("/cache/entries?from=2026-01-01T00:00:02Z"), 3u);
  EXPECT_EQ(count("/cache/entries?from=1767225601000&to=1767225603000"), 2u);
  ASSERT_EQ(post("/cache/invalidate", R"({"tag":"team-b"})").status, 200);
  EXPECT_EQ(count("/cache/entries"), 2u);
  EXPECT_EQ(count("/cache/entries?include_invalid=true"), 5u);
}

TEST_F(AdminApiTest, ListEntriesFiltersByTenant) {
  cache::Entry a = makeTestEntry("gpt-4o:00000000000000a1", "answer a", std::string(32, 'a'));
  a.tenant = "0123456789abcdef";
  a.responseTimestamp = fromUnixMillis(1767225700000);
  cache::Entry b = makeTestEntry("gpt-4o:00000000000000b1", "answer b", std::string(32, 'b'));
  b.tenant = "fedcba9876543210";
  b.responseTimestamp = fromUnixMillis(1767225701000);
  for (const auto* e : {&a, &b}) ASSERT_TRUE(index_->upsert(*e, index::kTierMemory, 100, 200));
  auto ids = [&](std::string_view target) {
    Reply r = get(target);
    EXPECT_EQ(r.status, 200) << target << " " << r.body;
    std::vector<std::string> out;
    const Json j = body(r);
    if (const Json* data = j.find("data"))
      for (const Json& row : data->items()) out.emplace_back(*row.getString("cache_id"));
    return out;
  };
  EXPECT_EQ(ids("/cache/entries?tenant=0123456789abcdef"), (std::vector<std::string>{a.cacheId}));
  EXPECT_EQ(ids("/cache/entries?tenant=fedcba9876543210"), (std::vector<std::string>{b.cacheId}));
  EXPECT_EQ(ids("/cache/entries?tenant=0000000000000000"), (std::vector<std::string>{}));
  EXPECT_EQ(ids("/cache/entries?tenant=").size(), 5u);  // the unscoped entries
  EXPECT_EQ(ids("/cache/entries").size(), 7u);
  Reply one = get("/cache/entries/" + a.cacheId);
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(body(one).getString("tenant"), "0123456789abcdef");
}

TEST_F(AdminApiTest, ListEntriesRejectsBadParameters) {
  expectError(get("/cache/entries?limit=0"), 400, "invalid_request_error", "limit");
  expectError(get("/cache/entries?limit=1001"), 400, "invalid_request_error", "limit");
  expectError(get("/cache/entries?limit=ten"), 400, "invalid_request_error", "limit");
  expectError(get("/cache/entries?from=yesterday"), 400, "invalid_request_error", "from");
  expectError(get("/cache/entries?cursor=bogus"), 400, "invalid_request_error", "cursor");
  expectError(get("/cache/entries?modle=gpt-4o"), 400, "invalid_request_error",
              "unknown query parameter \"modle\"");
  expectError(get("/cache/entries?tag=%zz"), 400, "invalid_request_error", "%-escape");
  expectError(get("/cache/entries?include_invalid=yes"), 400, "invalid_request_error",
              "include_invalid");
}

TEST_F(AdminApiTest, SizingAnswersTheSourcesCurvesAndIsNotFoundWithoutOne) {
  expectError(get("/cache/sizing"), 404, "not_found_error", "CACHE_SIZING");
  api_.setSizingSource([] { return Json::object().set("rate", Json::number(0.5)); });
  Reply r = get("/cache/sizing");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body(r).getDouble("rate"), 0.5);
  expectError(get("/cache/sizing?tier=memory"), 400, "invalid_request_error", "no parameters");
  EXPECT_EQ(post("/cache/sizing", "{}").status, 405);
  EXPECT_EQ(get("/cache/sizing", "Bearer wrong").status, 401);
}

TEST_F(AdminApiTest, StatsCountEntriesHitsAndSavingsIncludingHitsNotYetFlushed) {
  index_->recordHit(entries_[0].cacheId, clock_.now());
  index_->recordHit(entries_[0].cacheId, clock_.now());
  index_->recordHit(entries_[1].cacheId, clock_.now());
  Reply r = get("/cache/stats");
  ASSERT_EQ(r.status, 200) << r.body;
  const Json b = body(r);
  EXPECT_EQ(b.getInt("entries"), 5);
  EXPECT_EQ(b.getInt("bytes"), 500);
  EXPECT_EQ(b.getInt("hits"), 3);
  EXPECT_NEAR(b.getDouble("cost_saved").value_or(0), 0.03, 1e-12);
  EXPECT_EQ(b.getInt("invalid_entries"), 0);
}

// --- analytics, patterns, metrics ---------------------------------------------------------------

class AdminAnalyticsTest : public AdminApiTest {
 protected:
  void SetUp() override {
    AdminApiTest::SetUp();
    // Two requests on 2026-01-01, one on 2026-01-02: a MISS then two HITs of 0.01 each.
    using analytics::Outcome;
    for (auto [ms, outcome] : {std::pair{int64_t{1767225600000}, Outcome::Miss},
                               {int64_t{1767225660000}, Outcome::Hit},
                               {int64_t{1767312000000}, Outcome::Hit}}) {
      analytics::Event e;
      e.time = fromUnixMillis(ms);
      e.model = "gpt-4o";
      e.cacheKey = entries_[0].cacheKey;
      e.outcome = outcome;
      e.cost = outcome == Outcome::Miss ? 0.01 : 0;
      e.costSaved = outcome == Outcome::Hit ? 0.01 : 0;
      e.latencyMs = 2;
      recorder_.record(e);
      metrics_.observe(e);
    }
  }
  Reply getA(std::string_view target) {
    return withAnalytics_.handle("GET", target, "", remote(kAuth));
  }

  analytics::EventRecorder recorder_{*index_, {.flushInterval = std::chrono::hours(1)}};
  analytics::Analytics analytics_{*index_, &recorder_};
  analytics::Metrics metrics_;
  AdminApi withAnalytics_{*index_, invalidator_, config_, &analytics_};
};

TEST_F(AdminAnalyticsTest, AnalyticsAnswersTheFiguresOfTheWindow) {
  Reply r = getA("/cache/analytics");
  ASSERT_EQ(r.status, 200) << r.body;
  Json b = body(r);
  EXPECT_EQ(b.getInt("total_requests"), 3);
  EXPECT_EQ(b.getDouble("hit_rate"), 2.0 / 3.0);
  EXPECT_NEAR(b.find("cost_saved")->getDouble("total").value_or(0), 0.02, 1e-12);
  EXPECT_EQ(b.find("storage_efficiency")->getInt("entries"), 5);

  r = getA("/cache/analytics?from=2026-01-02T00:00:00Z&to=1767398400000");
  ASSERT_EQ(r.status, 200) << r.body;
  b = body(r);
  EXPECT_EQ(b.getInt("total_requests"), 1);
  EXPECT_EQ(b.getDouble("hit_rate"), 1.0);
  EXPECT_EQ(b.find("window")->getString("from"), "2026-01-02T00:00:00.000Z");
}

TEST_F(AdminAnalyticsTest, PatternsAnswersTheirSections) {
  Reply r = getA("/cache/patterns?from=0");
  ASSERT_EQ(r.status, 200) << r.body;
  const Json b = body(r);
  ASSERT_TRUE(b.find("temporal") && b.find("optimization_opportunities")) << r.body;
  EXPECT_EQ(b.find("temporal")->find("peak_hours")->items()[0].getInt("hour"), 0);
  EXPECT_EQ(b.find("model_distribution")->items()[0].getString("model"), "gpt-4o");
}

TEST_F(AdminAnalyticsTest, AnalyticsRejectsBadParametersAndMethods) {
  expectError(withAnalytics_.handle("GET", "/cache/analytics?from=soon", "", remote(kAuth)), 400,
              "invalid_request_error", "from");
  expectError(withAnalytics_.handle("GET", "/cache/patterns?window=1d", "", remote(kAuth)), 400,
              "invalid_request_error", "unknown query parameter");
  expectError(withAnalytics_.handle("GET", "/cache/analytics?from=2000&to=1000", "", remote(kAuth)),
              400, "invalid_request_error", "before");
  Reply r = withAnalytics_.handle("POST", "/cache/analytics", "", remote(kAuth));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(header(r, "Allow"), "GET");
  expectError(withAnalytics_.handle("GET", "/cache/analytics", "", remote("")), 401,
              "authentication_error");
}

TEST_F(AdminAnalyticsTest, WithoutAnalyticsTheRoutesAreNotFound) {
  expectError(get("/cache/analytics"), 404, "not_found_error", "analytics");
  expectError(get("/cache/patterns"), 404, "not_found_error", "analytics");
}

TEST_F(AdminAnalyticsTest, FleetScopeAnswersTheMergedStatisticsWithEachGatewaysFreshness) {
  expectError(getA("/cache/analytics?scope=fleet"), 404, "not_found_error", "S3");
  int calls = 0;
  withAnalytics_.setFleetSource([&]() -> Result<Json> {
    ++calls;
    Json fresh = Json::object();
    fresh.set("updated", Json::string(formatIso8601(Clock::system().now())))
        .set("interval_seconds", Json::integer(60))
        .set("hits", Json::integer(7));
    Json gone = Json::object();
    gone.set("updated", Json::string("2020-01-01T00:00:00.000Z"))
        .set("interval_seconds", Json::integer(60))
        .set("hits", Json::integer(2));
    Json parts = Json::object();
    parts.set("gw-a", std::move(fresh)).set("gw-b", std::move(gone));
    Json stats = Json::object();
    stats.set("hits", Json::integer(9)).set("by_instance", std::move(parts));
    return stats;
  });
  Reply r = getA("/cache/analytics?scope=fleet");
  ASSERT_EQ(r.status, 200) << r.body;
  Json b = body(r);
  EXPECT_EQ(b.getString("scope"), "fleet");
  EXPECT_EQ(b.getInt("hits"), 9);
  EXPECT_EQ(b.getInt("stale_instances"), 1);
  const Json* parts = b.find("by_instance");
  EXPECT_EQ(parts->find("gw-a")->getBool("fresh"), true);
  EXPECT_EQ(parts->find("gw-b")->getBool("fresh"), false);
  EXPECT_GT(parts->find("gw-b")->getDouble("age_seconds").value_or(0), 86400.0);
  // This gateway's own figures stay the default (scope=gateway says so explicitly).
  r = getA("/cache/analytics?scope=gateway");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(body(r).getInt("total_requests"), 3);
  EXPECT_EQ(calls, 1);
  expectError(getA("/cache/analytics?scope=fleet&from=0"), 400, "invalid_request_error", "scope");
  expectError(getA("/cache/analytics?scope=world"), 400, "invalid_request_error", "scope");
  withAnalytics_.setFleetSource(
      []() -> Result<Json> { return makeError(Errc::Unavailable, "s3 down"); });
  expectError(getA("/cache/analytics?scope=fleet"), 500, "api_error", "s3 down");
}

TEST_F(AdminAnalyticsTest, MetricsServesThePrometheusTextBehindTheSameAuth) {
  Reply r = api_.metrics("GET", metrics_, remote(kAuth));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.contentType, AdminApi::kMetricsContentType);
  EXPECT_NE(r.body.find("llmcache_hits_total 2\n"), std::string::npos) << r.body;
  EXPECT_EQ(api_.metrics("GET", metrics_, local("Bearer wrong")).status, 401);
  EXPECT_EQ(api_.metrics("POST", metrics_, remote(kAuth)).status, 405);
  config::Config open;
  AdminApi noToken{*index_, invalidator_, open};
  EXPECT_EQ(noToken.metrics("GET", metrics_, local()).status, 200);
  EXPECT_EQ(noToken.metrics("GET", metrics_, remote("")).status, 403);
}

}  // namespace
}  // namespace llmcache::admin
