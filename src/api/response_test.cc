#include "api/response.h"

#include <gtest/gtest.h>

#include "api/test_util.h"

namespace llmcache::api {
namespace {

using key::Endpoint;
using testing::json;

constexpr std::string_view kChat =
    R"({"id":"chatcmpl-1","object":"chat.completion","created":1741569952,"model":"gpt-4.1-mini-2025-04-14","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29},"service_tier":"default","system_fingerprint":"fp_1"})";

TEST(IsStorableResponse, CompleteChatAnswerIsStorable) {
  EXPECT_TRUE(isStorableResponse(Endpoint::OpenAiChat, json(kChat)));
}

TEST(IsStorableResponse, ChatWithoutFinishReasonIsNot) {
  Json body = json(kChat);
  body.find("choices")->items()[0].set("finish_reason", Json::null());
  EXPECT_FALSE(isStorableResponse(Endpoint::OpenAiChat, body));
}

TEST(IsStorableResponse, ChatThatFinishedWithErrorIsNot) {
  Json body = json(kChat);
  body.find("choices")->items()[0].set("finish_reason", Json::string("error"));
  EXPECT_FALSE(isStorableResponse(Endpoint::OpenAiChat, body));
}

TEST(IsStorableResponse, ChatWithEmptyChoicesOrWrongObjectIsNot) {
  Json body = json(kChat);
  body.set("choices", Json::array());
  EXPECT_FALSE(isStorableResponse(Endpoint::OpenAiChat, body));
  body = json(kChat);
  body.set("object", Json::string("chat.completion.chunk"));
  EXPECT_FALSE(isStorableResponse(Endpoint::OpenAiChat, body));
}

TEST(IsStorableResponse, BodyWithAnErrorMemberIsNeverStorable) {
  Json body = json(kChat);
  body.set("error", json(R"({"message":"upstream failed","code":502})"));
  EXPECT_FALSE(isStorableResponse(Endpoint::OpenAiChat, body));
  EXPECT_FALSE(isStorableResponse(
      Endpoint::AnthropicMessages,
      json(R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})")));
  EXPECT_FALSE(isStorableResponse(
      Endpoint::OpenAiChat,
      json(
          R"({"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}})")));
}

TEST(IsStorableResponse, CompletionsNeedTextAndFinishReason) {
  EXPECT_TRUE(isStorableResponse(
      Endpoint::OpenAiCompletions,
      json(
          R"({"id":"cmpl-1","object":"text_completion","created":1,"model":"gpt-3.5-turbo-instruct","choices":[{"text":"hi","index":0,"logprobs":null,"finish_reason":"length"}]})")));
  EXPECT_FALSE(isStorableResponse(
      Endpoint::OpenAiCompletions,
      json(
          R"({"object":"text_completion","choices":[{"text":"hi","index":0,"finish_reason":null}]})")));
  EXPECT_FALSE(isStorableResponse(Endpoint::OpenAiCompletions,
                                  json(R"({"object":"text_completion","choices":[]})")));
}

TEST(IsStorableResponse, EmbeddingsNeedNonEmptyVectors) {
  EXPECT_TRUE(isStorableResponse(
      Endpoint::OpenAiEmbeddings,
      json(
          R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023064255,-0.009327292]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}})")));
  EXPECT_TRUE(isStorableResponse(
      Endpoint::OpenAiEmbeddings,
      json(
          R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":"AAAAAA=="}]})")));
  EXPECT_FALSE(
      isStorableResponse(Endpoint::OpenAiEmbeddings, json(R"({"object":"list","data":[]})")));
  EXPECT_FALSE(isStorableResponse(
      Endpoint::OpenAiEmbeddings,
      json(R"({"object":"list","data":[{"object":"embedding","embedding":[]}]})")));
}

TEST(IsStorableResponse, AnthropicMessageNeedsStopReason) {
  const auto body = json(
      R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":3}})");
  EXPECT_TRUE(isStorableResponse(Endpoint::AnthropicMessages, body));
  Json cut = body;
  cut.set("stop_reason", Json::null());
  EXPECT_FALSE(isStorableResponse(Endpoint::AnthropicMessages, cut));
}

TEST(IsStorableResponse, NonObjectsAreNotStorable) {
  EXPECT_FALSE(isStorableResponse(Endpoint::OpenAiChat, json("[]")));
  EXPECT_FALSE(isStorableResponse(Endpoint::AnthropicMessages, json("null")));
}

TEST(ExtractUsage, OpenAiChatReportsPromptAndCompletionTokens) {
  const Usage u = extractUsage(Endpoint::OpenAiChat, json(kChat));
  EXPECT_EQ(u.inputTokens, 19);
  EXPECT_EQ(u.outputTokens, 10);
  EXPECT_FALSE(u.reportedCostUsd);
}

TEST(ExtractUsage, OpenRouterCostIsReported) {
  const Usage u = extractUsage(
      Endpoint::OpenAiChat,
      json(
          R"({"object":"chat.completion","usage":{"prompt_tokens":12,"completion_tokens":40,"total_tokens":52,"cost":0.00031,"is_byok":false}})"));
  EXPECT_EQ(u.inputTokens, 12);
  EXPECT_EQ(u.outputTokens, 40);
  ASSERT_TRUE(u.reportedCostUsd);
  EXPECT_DOUBLE_EQ(*u.reportedCostUsd, 0.00031);
}

TEST(ExtractUsage, EmbeddingsHaveNoOutputTokens) {
  const Usage u =
      extractUsage(Endpoint::OpenAiEmbeddings,
                   json(R"({"object":"list","usage":{"prompt_tokens":8,"total_tokens":8}})"));
  EXPECT_EQ(u.inputTokens, 8);
  EXPECT_EQ(u.outputTokens, 0);
}

TEST(ExtractUsage, AnthropicInputIncludesCacheReadsAndWrites) {
  const Usage u = extractUsage(
      Endpoint::AnthropicMessages,
      json(
          R"({"type":"message","usage":{"input_tokens":21,"cache_creation_input_tokens":188086,"cache_read_input_tokens":5,"output_tokens":393}})"));
  EXPECT_EQ(u.inputTokens, 21 + 188086 + 5);
  EXPECT_EQ(u.outputTokens, 393);
}

TEST(ExtractUsage, MissingOrMalformedUsageIsZero) {
  const Usage none = extractUsage(Endpoint::OpenAiChat, json(R"({"object":"chat.completion"})"));
  EXPECT_EQ(none.inputTokens, 0);
  EXPECT_EQ(none.outputTokens, 0);
  const Usage bad = extractUsage(Endpoint::AnthropicMessages,
                                 json(R"({"usage":{"input_tokens":"12","output_tokens":-3}})"));
  EXPECT_EQ(bad.inputTokens, 0);
  EXPECT_EQ(bad.outputTokens, 0);
}

constexpr std::string_view kResponse =
    R"({"id":"resp_1","object":"response","created_at":1741476542,"status":"completed","error":null,"incomplete_details":null,"model":"gpt-4.1-2025-04-14","output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi.","annotations":[]}]}],"usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":123}})";

TEST(IsStorableResponse, OnlyACompletedResponseIsStorable) {
  EXPECT_TRUE(isStorableResponse(Endpoint::OpenAiResponses, json(kResponse)));
  for (const char* status : {"incomplete", "failed", "in_progress", "queued", "cancelled"}) {
    Json r = json(kResponse);
    r.set("status", Json::string(status));
    EXPECT_FALSE(isStorableResponse(Endpoint::OpenAiResponses, r)) << status;
  }
  Json errored = json(kResponse);
  errored.set("error", json(R"({"code":"server_error","message":"x"})"));
  EXPECT_FALSE(isStorableResponse(Endpoint::OpenAiResponses, errored));
  Json noOutput = json(kResponse);
  noOutput.set("output", Json::null());
  EXPECT_FALSE(isStorableResponse(Endpoint::OpenAiResponses, noOutput));
  // A chat body is not a response.
  EXPECT_FALSE(isStorableResponse(Endpoint::OpenAiResponses, json(kChat)));
}

TEST(ExtractUsage, ResponsesReportInputAndOutputTokens) {
  const Usage u = extractUsage(Endpoint::OpenAiResponses, json(kResponse));
  EXPECT_EQ(u.inputTokens, 36);
  EXPECT_EQ(u.outputTokens, 87);
  EXPECT_FALSE(u.reportedCostUsd);
  // The chat names mean nothing here.
  const Usage none = extractUsage(Endpoint::OpenAiResponses,
                                  json(R"({"usage":{"prompt_tokens":5,"completion_tokens":6}})"));
  EXPECT_EQ(none.inputTokens + none.outputTokens, 0);
}

}  // namespace
}  // namespace llmcache::api
