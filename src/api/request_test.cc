#include "api/request.h"

#include <gtest/gtest.h>

#include "api/test_util.h"

namespace llmcache::api {
namespace {

using key::Endpoint;
using testing::json;

// The error message for body at endpoint, or "" when it is valid.
std::string errorOf(Endpoint endpoint, std::string_view body) {
  auto r = validateRequest(endpoint, json(body));
  if (r) return "";
  EXPECT_EQ(r.error().code, Errc::InvalidArgument);
  return r.error().message;
}

TEST(ValidateRequest, AValidChatRequestYieldsModelAndStreamFlag) {
  auto r = validateRequest(
      Endpoint::OpenAiChat,
      json(
          R"({"model":"gpt-4.1-mini","messages":[{"role":"user","content":"hi"}],"stream":true})"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->endpoint, Endpoint::OpenAiChat);
  EXPECT_EQ(r->model, "gpt-4.1-mini");
  EXPECT_TRUE(r->stream);
}

TEST(ValidateRequest, StreamDefaultsToFalseAndNullCountsAsAbsent) {
  auto r = validateRequest(
      Endpoint::OpenAiChat,
      json(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"stream":null})"));
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->stream);
}

TEST(ValidateRequest, BodyMustBeAnObject) {
  EXPECT_EQ(errorOf(Endpoint::OpenAiChat, "[]"), "the request body must be a JSON object");
  EXPECT_EQ(errorOf(Endpoint::AnthropicMessages, "\"hi\""),
            "the request body must be a JSON object");
}

TEST(ValidateRequest, ModelMustBeANonEmptyString) {
  EXPECT_EQ(errorOf(Endpoint::OpenAiChat, R"({"messages":[{"role":"user"}]})"),
            "'model' is required");
  EXPECT_EQ(errorOf(Endpoint::OpenAiChat, R"({"model":"","messages":[{"role":"user"}]})"),
            "'model' must be a non-empty string");
  EXPECT_EQ(errorOf(Endpoint::OpenAiEmbeddings, R"({"model":4,"input":"x"})"),
            "'model' must be a non-empty string");
}

TEST(ValidateRequest, ChatMessagesMustBeANonEmptyArray) {
  EXPECT_EQ(errorOf(Endpoint::OpenAiChat, R"({"model":"m"})"), "'messages' is required");
  EXPECT_EQ(errorOf(Endpoint::OpenAiChat, R"({"model":"m","messages":[]})"),
            "'messages' must be a non-empty array");
  EXPECT_EQ(errorOf(Endpoint::OpenAiChat, R"({"model":"m","messages":{"role":"user"}})"),
            "'messages' must be a non-empty array");
}

TEST(ValidateRequest, EachMessageMustBeAnObjectWithAStringRole) {
  EXPECT_EQ(errorOf(Endpoint::OpenAiChat, R"({"model":"m","messages":[{"role":"user"},"hi"]})"),
            "'messages[1]' must be an object");
  EXPECT_EQ(errorOf(Endpoint::OpenAiChat, R"({"model":"m","messages":[{"content":"hi"}]})"),
            "'messages[0].role' is required");
  EXPECT_EQ(errorOf(Endpoint::OpenAiChat, R"({"model":"m","messages":[{"role":1}]})"),
            "'messages[0].role' must be a string");
}

TEST(ValidateRequest, StreamMustBeABoolean) {
  EXPECT_EQ(
      errorOf(Endpoint::OpenAiChat, R"({"model":"m","messages":[{"role":"user"}],"stream":"yes"})"),
      "'stream' must be a boolean");
  EXPECT_EQ(errorOf(Endpoint::AnthropicMessages,
                    R"({"model":"m","max_tokens":5,"messages":[{"role":"user"}],"stream":1})"),
            "'stream' must be a boolean");
}

TEST(ValidateRequest, CompletionsPromptMayBeAStringOrAnArray) {
  EXPECT_EQ(errorOf(Endpoint::OpenAiCompletions, R"({"model":"m","prompt":"Say hi"})"), "");
  EXPECT_EQ(errorOf(Endpoint::OpenAiCompletions, R"({"model":"m","prompt":["a","b"]})"), "");
  EXPECT_EQ(errorOf(Endpoint::OpenAiCompletions, R"({"model":"m","prompt":[1,2,3]})"), "");
  EXPECT_EQ(errorOf(Endpoint::OpenAiCompletions, R"({"model":"m"})"), "'prompt' is required");
  EXPECT_EQ(errorOf(Endpoint::OpenAiCompletions, R"({"model":"m","prompt":{}})"),
            "'prompt' must be a string or an array");
}

TEST(ValidateRequest, EmbeddingsInputMustBeANonEmptyStringOrArray) {
  EXPECT_EQ(errorOf(Endpoint::OpenAiEmbeddings, R"({"model":"m","input":"hello"})"), "");
  EXPECT_EQ(errorOf(Endpoint::OpenAiEmbeddings, R"({"model":"m","input":["a","b"]})"), "");
  EXPECT_EQ(errorOf(Endpoint::OpenAiEmbeddings, R"({"model":"m"})"), "'input' is required");
  EXPECT_EQ(errorOf(Endpoint::OpenAiEmbeddings, R"({"model":"m","input":""})"),
            "'input' must not be empty");
  EXPECT_EQ(errorOf(Endpoint::OpenAiEmbeddings, R"({"model":"m","input":[]})"),
            "'input' must be a non-empty array");
  EXPECT_EQ(errorOf(Endpoint::OpenAiEmbeddings, R"({"model":"m","input":3})"),
            "'input' must be a string or an array");
}

TEST(ValidateRequest, EmbeddingsCannotStream) {
  EXPECT_EQ(errorOf(Endpoint::OpenAiEmbeddings, R"({"model":"m","input":"x","stream":true})"),
            "'stream' is not supported for embeddings");
  EXPECT_EQ(errorOf(Endpoint::OpenAiEmbeddings, R"({"model":"m","input":"x","stream":false})"),
            "'stream' is not supported for embeddings");
}

TEST(ValidateRequest, AnthropicMessagesNeedsMaxTokens) {
  auto r = validateRequest(
      Endpoint::AnthropicMessages,
      json(
          R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hello"}]})"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->model, "claude-sonnet-4-5");
  EXPECT_FALSE(r->stream);
  EXPECT_EQ(errorOf(Endpoint::AnthropicMessages, R"({"model":"m","messages":[{"role":"user"}]})"),
            "'max_tokens' is required");
}

TEST(ValidateRequest, AnthropicMaxTokensMustBeAPositiveInteger) {
  EXPECT_EQ(errorOf(Endpoint::AnthropicMessages,
                    R"({"model":"m","max_tokens":"5","messages":[{"role":"user"}]})"),
            "'max_tokens' must be an integer");
  EXPECT_EQ(errorOf(Endpoint::AnthropicMessages,
                    R"({"model":"m","max_tokens":5.5,"messages":[{"role":"user"}]})"),
            "'max_tokens' must be an integer");
  EXPECT_EQ(errorOf(Endpoint::AnthropicMessages,
                    R"({"model":"m","max_tokens":0,"messages":[{"role":"user"}]})"),
            "'max_tokens' must be at least 1");
}

TEST(ValidateRequest, AnthropicMessagesMustBeANonEmptyArrayOfRoles) {
  EXPECT_EQ(errorOf(Endpoint::AnthropicMessages, R"({"model":"m","max_tokens":5,"messages":[]})"),
            "'messages' must be a non-empty array");
  EXPECT_EQ(errorOf(Endpoint::AnthropicMessages,
                    R"({"model":"m","max_tokens":5,"messages":[{"content":"x"}]})"),
            "'messages[0].role' is required");
}

TEST(ValidateRequest, UnknownParametersAreLeftToTheUpstream) {
  EXPECT_EQ(
      errorOf(
          Endpoint::OpenAiChat,
          R"({"model":"m","messages":[{"role":"developer","content":[{"type":"future_part"}]}],"brand_new_option":{"x":1}})"),
      "");
}

TEST(ValidateRequest, ResponsesTakeAStringOrAnArrayInputAndMayOmitIt) {
  EXPECT_EQ(errorOf(Endpoint::OpenAiResponses, R"({"model":"m","input":"hi"})"), "");
  EXPECT_EQ(errorOf(Endpoint::OpenAiResponses,
                    R"({"model":"m","input":[{"role":"user","content":"hi"}],"stream":true})"),
            "");
  EXPECT_EQ(errorOf(Endpoint::OpenAiResponses, R"({"model":"m","previous_response_id":"r"})"), "");
  EXPECT_EQ(errorOf(Endpoint::OpenAiResponses, R"({"model":"m","input":42})"),
            "'input' must be a string or an array");
  EXPECT_EQ(errorOf(Endpoint::OpenAiResponses, R"({"model":"m","input":"x","instructions":1})"),
            "'instructions' must be a string");
  EXPECT_EQ(errorOf(Endpoint::OpenAiResponses, R"({"model":"m","input":"x","background":"y"})"),
            "'background' must be a boolean");
  EXPECT_EQ(errorOf(Endpoint::OpenAiResponses, R"({"input":"x"})"), "'model' is required");
}

TEST(ValidateRequest, ResponsesThatMustNotBeCachedSayWhy) {
  auto bypass = [](std::string_view body) {
    auto r = validateRequest(Endpoint::OpenAiResponses, json(body));
    EXPECT_TRUE(r) << body;
    return r ? std::string(r->bypass) : "?";
  };
  EXPECT_EQ(bypass(R"({"model":"m","input":"x"})"), "");
  EXPECT_EQ(bypass(R"({"model":"m","input":"x","background":false})"), "");
  EXPECT_EQ(bypass(R"({"model":"m","input":"x","background":true})"), "background");
  EXPECT_EQ(bypass(R"({"model":"m","input":"x","conversation":"conv_1"})"), "conversation");
  EXPECT_EQ(bypass(R"({"model":"m","input":"x","conversation":{"id":"conv_1"}})"), "conversation");
  EXPECT_EQ(bypass(R"({"model":"m","prompt":{"id":"p"}})"), "prompt without version");
  EXPECT_EQ(bypass(R"({"model":"m","prompt":{"id":"p","version":"3"}})"), "");
  // Only the Responses API has these meanings.
  auto chat = validateRequest(
      Endpoint::OpenAiChat,
      json(R"({"model":"m","messages":[{"role":"user","content":"x"}],"background":true})"));
  ASSERT_TRUE(chat);
  EXPECT_EQ(chat->bypass, "");
}

}  // namespace
}  // namespace llmcache::api
