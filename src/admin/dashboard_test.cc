#include <gtest/gtest.h>

#include "admin/admin_api.h"
#include "cache/memory/memory_tier.h"
#include "index/test_util.h"

namespace llmcache::admin {
namespace {

using Reply = AdminApi::Reply;

constexpr const char* kToken = "dashboard-admin-token";

// A browser on the gateway's machine opening http://127.0.0.1:8080/dashboard.
AdminApi::Caller local(std::string_view authorization = "") {
  return {.authorization = authorization, .host = "127.0.0.1:8080", .fromLoopback = true};
}
AdminApi::Caller remote(std::string_view authorization = "") {
  return {.authorization = authorization, .host = "gateway.example.com"};
}

std::string header(const Reply& r, std::string_view name) {
  for (const auto& [n, v] : r.headers)
    if (n == name) return v;
  return {};
}

class DashboardTest : public ::testing::Test {
 protected:
  std::unique_ptr<AdminApi> makeApi(std::string token) {
    config_.adminToken = std::move(token);
    return std::make_unique<AdminApi>(*index_, invalidator_, config_);
  }

  index::test::TempDir dir_;
  FakeClock clock_;
  config::Config config_;
  std::unique_ptr<index::Index> index_ = index::Index::open(dir_.path() / "index.sqlite").value();
  cache::MemoryTier memory_{{.maxEntries = 10, .shards = 1}};
  cache::TieredCache chain_{{.fast = {&memory_}, .clock = &clock_}};
  invalidation::Invalidator invalidator_{*index_, chain_, clock_};
};

TEST_F(DashboardTest, OwnsOnlyDashboardPaths) {
  EXPECT_TRUE(AdminApi::ownsDashboard("/dashboard"));
  EXPECT_TRUE(AdminApi::ownsDashboard("/dashboard/"));
  EXPECT_TRUE(AdminApi::ownsDashboard("/dashboard/chart.js"));
  EXPECT_TRUE(AdminApi::ownsDashboard("/dashboard?refresh=5"));
  EXPECT_FALSE(AdminApi::ownsDashboard("/dashboards"));
  EXPECT_FALSE(AdminApi::ownsDashboard("/cache/analytics"));
  EXPECT_FALSE(AdminApi::ownsDashboard("/v1/dashboard"));
}

TEST_F(DashboardTest, ThePageAndItsFilesAreServedFromTheBinaryWithTheirContentTypes) {
  auto api = makeApi("");
  const Reply page = api->dashboard("GET", "/dashboard?window=all", local());
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_EQ(page.contentType, "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("<canvas id=\"chart-hit-rate\""), std::string::npos);
  EXPECT_NE(page.body.find("src=\"/dashboard/chart.js\""), std::string::npos);
  EXPECT_NE(header(page, "Content-Security-Policy").find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(api->dashboard("GET", "/dashboard/", local()).body, page.body);

  const Reply chart = api->dashboard("GET", "/dashboard/chart.js", local());
  ASSERT_EQ(chart.status, 200);
  EXPECT_EQ(chart.contentType, "text/javascript; charset=utf-8");
  EXPECT_TRUE(chart.body.starts_with("/*!\n * Chart.js v4."))
      << chart.body.substr(0, 40);  // the license banner
  EXPECT_GT(chart.body.size(), 100'000u);
  EXPECT_EQ(chart.body.find("sourceMappingURL"), std::string::npos);
  EXPECT_EQ(header(chart, "X-Content-Type-Options"), "nosniff");

  const Reply app = api->dashboard("GET", "/dashboard/app.js", local());
  EXPECT_EQ(app.status, 200);
  EXPECT_NE(app.body.find("/cache/analytics"), std::string::npos);
  EXPECT_EQ(api->dashboard("GET", "/dashboard/app.css", local()).contentType,
            "text/css; charset=utf-8");
}

TEST_F(DashboardTest, UnknownFilesAreNotFoundAndOtherMethodsNotAllowed) {
  auto api = makeApi("");
  EXPECT_EQ(api->dashboard("GET", "/dashboard/chart.umd.min.js.map", local()).status, 404);
  EXPECT_EQ(api->dashboard("GET", "/dashboard/../cache/stats", local()).status, 404);
  const Reply post = api->dashboard("POST", "/dashboard", local());
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(header(post, "Allow"), "GET");
}

TEST_F(DashboardTest, WithoutATokenOnlyLoopbackClientsGetTheDashboard) {
  auto api = makeApi("");
  EXPECT_EQ(api->dashboard("GET", "/dashboard", local()).status, 200);
  EXPECT_EQ(api->dashboard("GET", "/dashboard", remote()).status, 403);
  EXPECT_EQ(api->dashboard("GET", "/dashboard/chart.js", remote()).status, 403);
}

TEST_F(DashboardTest, WithoutATokenAForeignHostOrOriginDoesNotGetTheDashboard) {
  // DNS rebinding (the attacker's name, resolved to 127.0.0.1) or a page of another origin.
  auto api = makeApi("");
  AdminApi::Caller rebound = local();
  rebound.host = "evil.example:8080";
  EXPECT_EQ(api->dashboard("GET", "/dashboard", rebound).status, 403);
  EXPECT_EQ(api->dashboard("GET", "/dashboard/app.js", rebound).status, 403);
  AdminApi::Caller crossSite = local();
  crossSite.origin = "http://evil.example";
  EXPECT_EQ(api->dashboard("GET", "/dashboard", crossSite).status, 403);
  AdminApi::Caller sameSite = local();
  sameSite.origin = "http://127.0.0.1:8080";
  EXPECT_EQ(api->dashboard("GET", "/dashboard", sameSite).status, 200);
}

TEST_F(DashboardTest, WithATokenTheFilesNeedNoneButAWrongOneIsRefusedAndTheDataStaysBehindIt) {
  auto api = makeApi(kToken);
  const Reply page = api->dashboard("GET", "/dashboard", remote());  // a browser opening the page
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.body.find(kToken), std::string::npos);
  const std::string auth = std::string("Bearer ") + kToken;
  EXPECT_EQ(api->dashboard("GET", "/dashboard", remote(auth)).status, 200);
  EXPECT_EQ(api->dashboard("GET", "/dashboard", local("Bearer wrong")).status, 401);
  // What the page then fetches needs the token.
  EXPECT_EQ(api->handle("GET", "/cache/stats", "", remote()).status, 401);
  EXPECT_EQ(api->handle("GET", "/cache/stats", "", remote(auth)).status, 200);
}

}  // namespace
}  // namespace llmcache::admin
