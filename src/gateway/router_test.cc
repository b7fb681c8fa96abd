#include "gateway/router.h"

#include <gtest/gtest.h>

namespace llmcache::gateway {
namespace {

using Kind = Route::Kind;
using http::bhttp::verb;

constexpr std::string_view kUpstream = "http://127.0.0.1:9/v1";  // no built-in platform's URL

class RouterTest : public ::testing::Test {
 protected:
  upstream::PlatformTable platforms_;  // the built-ins: openai, openrouter, anthropic, groq
  Router router_{platforms_, RouterOptions{.upstream = std::string(kUpstream)}};
};

// --- the gateway's own routes -----------------------------------------------------------------

TEST_F(RouterTest, HealthChecksAreRoutedWithOrWithoutAQuery) {
  EXPECT_EQ(router_.route(verb::get, "/healthz").kind, Kind::Health);
  EXPECT_EQ(router_.route(verb::get, "/readyz").kind, Kind::Health);
  EXPECT_EQ(router_.route(verb::get, "/healthz?verbose=1").kind, Kind::Health);
}

TEST_F(RouterTest, MetricsDashboardAndAdminPathsGoToTheGatewaysOwnHandlers) {
  EXPECT_EQ(router_.route(verb::get, "/metrics").kind, Kind::Metrics);
  EXPECT_EQ(router_.route(verb::get, "/dashboard").kind, Kind::Dashboard);
  EXPECT_EQ(router_.route(verb::get, "/dashboard/app.js").kind, Kind::Dashboard);
  EXPECT_EQ(router_.route(verb::get, "/cache/stats").kind, Kind::Admin);
  EXPECT_EQ(router_.route(verb::post, "/cache/invalidate?dry_run=1").kind, Kind::Admin);
  EXPECT_EQ(router_.route(verb::get, "/cache").kind, Kind::Admin);
}

TEST_F(RouterTest, WithoutTheAdminApiItsPathsAndMetricsAreNotFound) {
  Router router(platforms_, RouterOptions{.upstream = std::string(kUpstream), .admin = false});
  EXPECT_EQ(router.route(verb::get, "/metrics").kind, Kind::NotFound);
  EXPECT_EQ(router.route(verb::get, "/dashboard").kind, Kind::NotFound);
  EXPECT_EQ(router.route(verb::get, "/cache/stats").kind, Kind::NotFound);
  EXPECT_EQ(router.route(verb::get, "/healthz").kind, Kind::Health);  // health stays
}

TEST_F(RouterTest, WithMetricsDisabledMetricsIsNotFoundButTheAdminApiStays) {
  Router router(platforms_, RouterOptions{.upstream = std::string(kUpstream), .metrics = false});
  EXPECT_EQ(router.route(verb::get, "/metrics").kind, Kind::NotFound);
  EXPECT_EQ(router.route(verb::get, "/cache/stats").kind, Kind::Admin);
}

// --- provider APIs ----------------------------------------------------------------------------

TEST_F(RouterTest, AV1PathGoesToTheConfiguredUpstreamWithItsQuery) {
  const Route r = router_.route(verb::get, "/v1/models?limit=5&after=x");
  EXPECT_EQ(r.kind, Kind::Api);
  EXPECT_EQ(r.path, "/v1/models");
  EXPECT_EQ(r.query, "limit=5&after=x");
  EXPECT_EQ(r.upstreamUrl, "http://127.0.0.1:9/v1/models?limit=5&after=x");
  EXPECT_EQ(r.platform, "default");  // the upstream is none of the named platforms
}

TEST_F(RouterTest, AnUpstreamThatIsANamedPlatformLendsItsNameToV1Paths) {
  Router router(platforms_, RouterOptions{.upstream = "https://api.groq.com/openai/v1"});
  const Route r = router.route(verb::post, "/v1/chat/completions");
  EXPECT_EQ(r.kind, Kind::Api);
  EXPECT_EQ(r.platform, "groq");
  EXPECT_EQ(r.upstreamUrl, "https://api.groq.com/openai/v1/chat/completions");
}

TEST_F(RouterTest, APlatformPathGoesToThatPlatformsBaseWithItsQuery) {
  const Route r = router_.route(verb::post, "/openrouter/v1/chat/completions?trace=1");
  EXPECT_EQ(r.kind, Kind::Api);
  EXPECT_EQ(r.platform, "openrouter");
  EXPECT_EQ(r.path, "/openrouter/v1/chat/completions");
  EXPECT_EQ(r.upstreamUrl, "https://openrouter.ai/api/v1/chat/completions?trace=1");
  EXPECT_EQ(r.endpoint, key::Endpoint::OpenAiChat);
}

TEST_F(RouterTest, AConfiguredPlatformIsRoutedLikeABuiltIn) {
  platforms_.add({"local", "http://localhost:8000/v1/"});  // the trailing '/' is dropped
  const Route r = router_.route(verb::post, "/local/v1/embeddings");
  EXPECT_EQ(r.kind, Kind::Api);
  EXPECT_EQ(r.platform, "local");
  EXPECT_EQ(r.upstreamUrl, "http://localhost:8000/v1/embeddings");
  EXPECT_EQ(r.endpoint, key::Endpoint::OpenAiEmbeddings);
}

TEST_F(RouterTest, AnUnknownPlatformIsNotFoundAndNamedInTheMessage) {
  const Route r = router_.route(verb::post, "/nosuch/v1/chat/completions");
  EXPECT_EQ(r.kind, Kind::NotFound);
  EXPECT_EQ(r.error, "unknown platform 'nosuch'");
  EXPECT_TRUE(r.upstreamUrl.empty());
}

TEST_F(RouterTest, APathOutsideV1IsNotFound) {
  for (std::string_view target : {"/", "/stats", "/openai", "/openai/v2/models", "/v2/models"}) {
    const Route r = router_.route(verb::get, target);
    EXPECT_EQ(r.kind, Kind::NotFound) << target;
    EXPECT_NE(r.error.find("no route for "), std::string::npos) << target;
    EXPECT_TRUE(r.upstreamUrl.empty()) << target;
  }
}

TEST_F(RouterTest, DotSegmentsAreABadRequestPlainOrPercentEncoded) {
  // libcurl would resolve them: /v1/../stats would reach the upstream's /stats.
  for (std::string_view target :
       {"/v1/../stats", "/v1/./models", "/v1/%2E%2E/x", "/v1/%2e%2e/x", "/v1/%2E/x", "/v1/..",
        "/openai/v1/../../admin", "/openai/v1/%2e%2E/x"}) {
    const Route r = router_.route(verb::post, target);
    EXPECT_EQ(r.kind, Kind::BadRequest) << target;
    EXPECT_EQ(r.error, "the request path must not contain '.' or '..' segments") << target;
  }
  // Dots inside a segment are a name, not a dot segment.
  EXPECT_EQ(router_.route(verb::get, "/v1/models/gpt-4.1").kind, Kind::Api);
  EXPECT_EQ(router_.route(verb::get, "/v1/files/...").kind, Kind::Api);
}

TEST_F(RouterTest, ATargetThatIsNotAnOriginFormUrlIsABadRequest) {
  const Route r = router_.route(verb::get, "/v1/models%zz");  // a broken percent-escape
  EXPECT_EQ(r.kind, Kind::BadRequest);
  EXPECT_EQ(r.error, "the request target is not a valid origin-form URL");
}

TEST_F(RouterTest, OnlyAPostToACachedEndpointCarriesAnEndpoint) {
  EXPECT_EQ(router_.route(verb::post, "/v1/chat/completions").endpoint, key::Endpoint::OpenAiChat);
  EXPECT_EQ(router_.route(verb::post, "/v1/completions").endpoint,
            key::Endpoint::OpenAiCompletions);
  EXPECT_EQ(router_.route(verb::post, "/v1/embeddings").endpoint, key::Endpoint::OpenAiEmbeddings);
  EXPECT_EQ(router_.route(verb::post, "/v1/messages").endpoint, key::Endpoint::AnthropicMessages);
  EXPECT_FALSE(router_.route(verb::get, "/v1/chat/completions").endpoint);
  EXPECT_FALSE(router_.route(verb::put, "/v1/messages").endpoint);
  EXPECT_FALSE(router_.route(verb::post, "/v1/models").endpoint);
  EXPECT_FALSE(router_.route(verb::post, "/v1/messages/batches").endpoint);
}

TEST_F(RouterTest, MessagesPathsTakeTheAnthropicErrorShapeAndTheRestOpenAis) {
  EXPECT_EQ(router_.route(verb::post, "/v1/messages").provider, api::Provider::Anthropic);
  EXPECT_EQ(router_.route(verb::post, "/anthropic/v1/messages").provider, api::Provider::Anthropic);
  EXPECT_EQ(router_.route(verb::get, "/v1/messages/batches").provider, api::Provider::Anthropic);
  EXPECT_EQ(router_.route(verb::post, "/v1/chat/completions").provider, api::Provider::OpenAi);
  EXPECT_EQ(router_.route(verb::get, "/v1/models").provider, api::Provider::OpenAi);
  // A refused API-looking path answers in the shape its client expects too.
  EXPECT_EQ(router_.route(verb::post, "/nosuch/v1/messages").provider, api::Provider::Anthropic);
  EXPECT_EQ(router_.route(verb::post, "/v1/messages/../x").provider, api::Provider::Anthropic);
}

}  // namespace
}  // namespace llmcache::gateway
