#include "api/provider.h"

#include <gtest/gtest.h>

#include "api/test_util.h"

namespace llmcache::api {
namespace {

using key::Endpoint;
using testing::json;

TEST(ProviderOf, OpenAiEndpointsBelongToOpenAiAndMessagesToAnthropic) {
  EXPECT_EQ(providerOf(Endpoint::OpenAiChat), Provider::OpenAi);
  EXPECT_EQ(providerOf(Endpoint::OpenAiCompletions), Provider::OpenAi);
  EXPECT_EQ(providerOf(Endpoint::OpenAiEmbeddings), Provider::OpenAi);
  EXPECT_EQ(providerOf(Endpoint::AnthropicMessages), Provider::Anthropic);
}

TEST(EndpointForPath, TheFourCachedPathsAreRecognized) {
  EXPECT_EQ(endpointForPath("/v1/chat/completions"), Endpoint::OpenAiChat);
  EXPECT_EQ(endpointForPath("/v1/completions"), Endpoint::OpenAiCompletions);
  EXPECT_EQ(endpointForPath("/v1/embeddings"), Endpoint::OpenAiEmbeddings);
  EXPECT_EQ(endpointForPath("/v1/messages"), Endpoint::AnthropicMessages);
}

TEST(EndpointForPath, QueryStringAndTrailingSlashAreIgnored) {
  EXPECT_EQ(endpointForPath("/v1/messages?beta=true"), Endpoint::AnthropicMessages);
  EXPECT_EQ(endpointForPath("/v1/chat/completions/"), Endpoint::OpenAiChat);
}

TEST(EndpointForPath, OtherPathsAreNotCached) {
  EXPECT_FALSE(endpointForPath("/v1/models"));
  EXPECT_FALSE(endpointForPath("/v1/messages/count_tokens"));
  EXPECT_FALSE(endpointForPath("/v2/chat/completions"));
  EXPECT_FALSE(endpointForPath(""));
}

TEST(ErrorBody, OpenAiShapeHasMessageTypeParamAndCode) {
  EXPECT_EQ(
      errorBody(Provider::OpenAi, "invalid_request_error", "'model' is required"),
      R"({"error":{"message":"'model' is required","type":"invalid_request_error","param":null,"code":null}})");
}

TEST(ErrorBody, AnthropicShapeHasTopLevelTypeError) {
  EXPECT_EQ(errorBody(Provider::Anthropic, "not_found_error", "no such model"),
            R"({"type":"error","error":{"type":"not_found_error","message":"no such model"}})");
}

TEST(ErrorBody, MessagesAreEscapedAsJsonStrings) {
  const std::string body = errorBody(Provider::OpenAi, "x", "quote \" newline \n backslash \\");
  auto parsed = json(body);
  EXPECT_EQ(*parsed.find("error")->getString("message"), "quote \" newline \n backslash \\");
}

TEST(ErrorTypeForStatus, CommonStatusesMapToTheProvidersTypes) {
  for (Provider p : {Provider::OpenAi, Provider::Anthropic}) {
    EXPECT_EQ(errorTypeForStatus(p, 400), "invalid_request_error");
    EXPECT_EQ(errorTypeForStatus(p, 401), "authentication_error");
    EXPECT_EQ(errorTypeForStatus(p, 403), "permission_error");
    EXPECT_EQ(errorTypeForStatus(p, 404), "not_found_error");
    EXPECT_EQ(errorTypeForStatus(p, 413), "request_too_large");
    EXPECT_EQ(errorTypeForStatus(p, 429), "rate_limit_error");
  }
}

TEST(ErrorTypeForStatus, ServerErrorsDifferBetweenProviders) {
  EXPECT_EQ(errorTypeForStatus(Provider::OpenAi, 500), "server_error");
  EXPECT_EQ(errorTypeForStatus(Provider::OpenAi, 502), "server_error");
  EXPECT_EQ(errorTypeForStatus(Provider::OpenAi, 503), "server_error");
  EXPECT_EQ(errorTypeForStatus(Provider::OpenAi, 504), "server_error");
  EXPECT_EQ(errorTypeForStatus(Provider::Anthropic, 500), "api_error");
  EXPECT_EQ(errorTypeForStatus(Provider::Anthropic, 502), "api_error");
  EXPECT_EQ(errorTypeForStatus(Provider::Anthropic, 503), "overloaded_error");
  EXPECT_EQ(errorTypeForStatus(Provider::Anthropic, 504), "timeout_error");
  EXPECT_EQ(errorTypeForStatus(Provider::Anthropic, 529), "overloaded_error");
}

TEST(ErrorTypeForStatus, UnlistedStatusesFallBackToTheGenericClientOrServerType) {
  EXPECT_EQ(errorTypeForStatus(Provider::OpenAi, 418), "invalid_request_error");
  EXPECT_EQ(errorTypeForStatus(Provider::Anthropic, 418), "invalid_request_error");
  EXPECT_EQ(errorTypeForStatus(Provider::OpenAi, 507), "server_error");
  EXPECT_EQ(errorTypeForStatus(Provider::Anthropic, 507), "api_error");
}

}  // namespace
}  // namespace llmcache::api
