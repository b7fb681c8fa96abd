#include "api/stream.h"

#include <gtest/gtest.h>

#include "api/response.h"
#include "api/sse_parser.h"
#include "api/stream_fixtures.h"
#include "api/test_util.h"

namespace llmcache::api {
namespace {

using key::Endpoint;
using testing::canonical;
using testing::json;

std::vector<SseEvent> events(std::string_view wire) {
  SseParser p;
  auto out = p.feed(wire);
  EXPECT_TRUE(p.idle());
  return out;
}

std::vector<SseEvent> without(std::vector<SseEvent> evs, size_t index) {
  evs.erase(evs.begin() + static_cast<std::ptrdiff_t>(index));
  return evs;
}

std::string assembled(Endpoint endpoint, const std::vector<SseEvent>& evs) {
  auto body = assembleStream(endpoint, evs);
  EXPECT_TRUE(body) << body.error().message;
  return body ? canonical(*body) : "";
}

std::string assemblyError(Endpoint endpoint, const std::vector<SseEvent>& evs) {
  auto body = assembleStream(endpoint, evs);
  EXPECT_FALSE(body) << toJson(*body);
  if (body) return "";
  EXPECT_EQ(body.error().code, Errc::InvalidArgument);
  return body.error().message;
}

// ------------------------------------------------------------ recorded streams

TEST(AssembleStream, OpenAiChatStreamWithUsageChunkAssemblesToTheCompletion) {
  auto evs = events(testing::kOpenAiChatStream);
  EXPECT_EQ(assembled(Endpoint::OpenAiChat, evs),
            canonical(json(testing::kOpenAiChatStreamAssembled)));
  EXPECT_TRUE(streamCompleted(Endpoint::OpenAiChat, evs));
  EXPECT_TRUE(isStorableResponse(Endpoint::OpenAiChat, *assembleStream(Endpoint::OpenAiChat, evs)));
}

TEST(AssembleStream, OpenAiToolCallFragmentsAreMergedByIndex) {
  auto evs = events(testing::kOpenAiToolCallStream);
  EXPECT_EQ(assembled(Endpoint::OpenAiChat, evs),
            canonical(json(testing::kOpenAiToolCallAssembled)));
  EXPECT_TRUE(streamCompleted(Endpoint::OpenAiChat, evs));
}

TEST(AssembleStream, OpenAiCompletionsTextIsConcatenated) {
  auto evs = events(testing::kOpenAiCompletionsStream);
  EXPECT_EQ(assembled(Endpoint::OpenAiCompletions, evs),
            canonical(json(testing::kOpenAiCompletionsAssembled)));
  EXPECT_TRUE(streamCompleted(Endpoint::OpenAiCompletions, evs));
}

TEST(AssembleStream, AnthropicTextAndToolUseBlocksAreRebuilt) {
  auto evs = events(testing::kAnthropicToolStream);
  auto body = assembleStream(Endpoint::AnthropicMessages, evs);
  ASSERT_TRUE(body) << body.error().message;
  // Member order is the message_start's, so the exact bytes match too.
  EXPECT_EQ(toJson(*body), toJson(json(testing::kAnthropicToolAssembled)));
  EXPECT_TRUE(streamCompleted(Endpoint::AnthropicMessages, evs));
  EXPECT_TRUE(isStorableResponse(Endpoint::AnthropicMessages, *body));
}

TEST(AssembleStream, AnthropicThinkingAndSignatureDeltasAreConcatenated) {
  auto evs = events(testing::kAnthropicThinkingStream);
  EXPECT_EQ(assembled(Endpoint::AnthropicMessages, evs),
            canonical(json(testing::kAnthropicThinkingAssembled)));
  EXPECT_TRUE(streamCompleted(Endpoint::AnthropicMessages, evs));
}

TEST(AssembleStream, AnthropicEventsWithoutNamesAreRecognizedByDataType) {
  auto evs = events(testing::kAnthropicThinkingStream);
  for (auto& e : evs) e.event.clear();
  EXPECT_EQ(assembled(Endpoint::AnthropicMessages, evs),
            canonical(json(testing::kAnthropicThinkingAssembled)));
  EXPECT_TRUE(streamCompleted(Endpoint::AnthropicMessages, evs));
}

TEST(AssembleStream, AnthropicCitationsDeltasAreCollected) {
  std::vector<SseEvent> evs = {
      {"message_start",
       R"({"type":"message_start","message":{"id":"msg_c","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":1}}})"},
      {"content_block_start",
       R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":"","citations":[]}})"},
      {"content_block_delta",
       R"({"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{"type":"char_location","cited_text":"The grass is green.","document_index":0,"start_char_index":0,"end_char_index":20}}})"},
      {"content_block_delta",
       R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"the grass is green"}})"},
      {"content_block_stop", R"({"type":"content_block_stop","index":0})"},
      {"message_delta",
       R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":6}})"},
      {"message_stop", R"({"type":"message_stop"})"},
  };
  auto body = assembleStream(Endpoint::AnthropicMessages, evs);
  ASSERT_TRUE(body) << body.error().message;
  const Json& block = body->find("content")->items()[0];
  EXPECT_EQ(*block.getString("text"), "the grass is green");
  ASSERT_EQ(block.find("citations")->size(), 1u);
  EXPECT_EQ(*block.find("citations")->items()[0].getString("cited_text"), "The grass is green.");
}

TEST(AssembleStream, AzurePromptFilterChunkDoesNotBlankIdOrModel) {
  auto evs = events(testing::kOpenAiChatStream);
  evs.insert(
      evs.begin(),
      SseEvent{
          "",
          R"({"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]})"});
  EXPECT_EQ(assembled(Endpoint::OpenAiChat, evs),
            canonical(json(testing::kOpenAiChatStreamAssembled)));
  EXPECT_TRUE(streamCompleted(Endpoint::OpenAiChat, evs));
}

// ------------------------------------------------------------ completeness

TEST(StreamCompleted, UnfinishedStreamIsNotComplete) {
  auto chat = events(testing::kOpenAiChatStream);
  EXPECT_FALSE(streamCompleted(Endpoint::OpenAiChat, without(chat, chat.size() - 1)));  // no [DONE]
  EXPECT_FALSE(streamCompleted(Endpoint::OpenAiChat, without(chat, 4)));  // no finish_reason
  EXPECT_FALSE(streamCompleted(Endpoint::OpenAiChat, {chat[0], chat[1]}));
  EXPECT_FALSE(streamCompleted(Endpoint::OpenAiChat, {}));

  auto anthropic = events(testing::kAnthropicToolStream);
  EXPECT_FALSE(
      streamCompleted(Endpoint::AnthropicMessages, without(anthropic, anthropic.size() - 1)));
  EXPECT_FALSE(streamCompleted(Endpoint::AnthropicMessages, without(anthropic, 0)));
}

TEST(StreamCompleted, DoneWithoutAnyFinishReasonIsNotComplete) {
  auto chat = events(testing::kOpenAiChatStream);
  EXPECT_FALSE(streamCompleted(Endpoint::OpenAiChat, {chat[0], chat[1], chat.back()}));
}

TEST(StreamCompleted, EveryChoiceMustFinish) {
  std::vector<SseEvent> evs = {
      {"",
       R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null},{"index":1,"delta":{"content":"b"},"finish_reason":null}]})"},
      {"",
       R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})"},
      {"", "[DONE]"},
  };
  EXPECT_FALSE(streamCompleted(Endpoint::OpenAiChat, evs));
  evs.insert(
      evs.begin() + 2,
      SseEvent{
          "",
          R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":1,"delta":{},"finish_reason":"length"}]})"});
  EXPECT_TRUE(streamCompleted(Endpoint::OpenAiChat, evs));
}

TEST(StreamCompleted, OpenAiErrorChunkMeansNotComplete) {
  auto chat = events(testing::kOpenAiChatStream);
  chat.insert(
      chat.begin() + 2,
      SseEvent{
          "",
          R"({"error":{"message":"The server had an error while processing your request.","type":"server_error"}})"});
  EXPECT_FALSE(streamCompleted(Endpoint::OpenAiChat, chat));
  EXPECT_EQ(assemblyError(Endpoint::OpenAiChat, chat),
            "the stream carries an error: server_error: The server had an error while processing "
            "your request.");
}

TEST(StreamCompleted, FinishReasonErrorIsNotComplete) {
  // OpenRouter ends a stream that failed midway with finish_reason "error".
  std::vector<SseEvent> evs = {
      {"",
       R"({"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"par"},"finish_reason":null}]})"},
      {"",
       R"({"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"error"}]})"},
      {"", "[DONE]"},
  };
  EXPECT_FALSE(streamCompleted(Endpoint::OpenAiChat, evs));
}

TEST(StreamCompleted, AnthropicErrorEventMeansNotComplete) {
  auto evs = events(testing::kAnthropicToolStream);
  evs.insert(
      evs.begin() + 3,
      SseEvent{"error",
               R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"});
  EXPECT_FALSE(streamCompleted(Endpoint::AnthropicMessages, evs));
  EXPECT_EQ(assemblyError(Endpoint::AnthropicMessages, evs),
            "the stream carries an error: overloaded_error: Overloaded");
}

TEST(StreamCompleted, EmbeddingsNeverStream) {
  EXPECT_FALSE(streamCompleted(Endpoint::OpenAiEmbeddings, events(testing::kOpenAiChatStream)));
  EXPECT_FALSE(assembleStream(Endpoint::OpenAiEmbeddings, events(testing::kOpenAiChatStream)));
  EXPECT_TRUE(
      synthesizeStream(Endpoint::OpenAiEmbeddings, json(R"({"object":"list","data":[]})")).empty());
}

// ------------------------------------------------------------ invalid and cut streams

TEST(AssembleStream, CutStreamAssemblesWhatArrivedButIsNotStorable) {
  auto chat = events(testing::kOpenAiChatStream);
  auto body = assembleStream(Endpoint::OpenAiChat, {chat[0], chat[1]});
  ASSERT_TRUE(body);
  const Json& choice = body->find("choices")->items()[0];
  EXPECT_EQ(*choice.find("message")->getString("content"), "Hello");
  EXPECT_TRUE(choice.find("finish_reason")->isNull());
  EXPECT_FALSE(isStorableResponse(Endpoint::OpenAiChat, *body));

  auto anthropic = events(testing::kAnthropicToolStream);
  anthropic.resize(5);
  auto message = assembleStream(Endpoint::AnthropicMessages, anthropic);
  ASSERT_TRUE(message) << message.error().message;
  EXPECT_FALSE(isStorableResponse(Endpoint::AnthropicMessages, *message));
}

TEST(AssembleStream, ChunkThatIsNotJsonIsRejected) {
  EXPECT_NE(assemblyError(Endpoint::OpenAiChat, {{"", "{not json"}, {"", "[DONE]"}}), "");
  EXPECT_EQ(assemblyError(Endpoint::OpenAiChat, {{"", "[1,2]"}}), "event 0 is not an object");
}

TEST(AssembleStream, StreamWithoutChunksIsRejected) {
  EXPECT_EQ(assemblyError(Endpoint::OpenAiChat, {}), "the stream holds no chunks");
  EXPECT_EQ(assemblyError(Endpoint::OpenAiCompletions, {{"", "[DONE]"}}),
            "the stream holds no chunks");
  EXPECT_EQ(assemblyError(Endpoint::AnthropicMessages, {}), "the stream has no message_start");
}

TEST(AssembleStream, AnthropicBlockEventsBeforeMessageStartAreRejected) {
  auto evs = events(testing::kAnthropicToolStream);
  EXPECT_EQ(assemblyError(Endpoint::AnthropicMessages, without(evs, 0)),
            "event 0: content_block_start before message_start");
}

TEST(AssembleStream, AnthropicDeltaForAnUnstartedBlockIsRejected) {
  auto evs = events(testing::kAnthropicToolStream);
  EXPECT_EQ(assemblyError(Endpoint::AnthropicMessages, without(evs, 1)),
            "event 2: content_block_delta for block 0 never started");
}

TEST(AssembleStream, AnthropicDeltaOfTheWrongKindIsRejected) {
  auto evs = events(testing::kAnthropicToolStream);
  evs.insert(
      evs.begin() + 8,
      SseEvent{
          "content_block_delta",
          R"({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"x"}})"});
  EXPECT_EQ(assemblyError(Endpoint::AnthropicMessages, evs),
            "event 8: text_delta for a block of type tool_use");
}

TEST(AssembleStream, AnthropicUnknownDeltaTypeIsRejected) {
  auto evs = events(testing::kAnthropicToolStream);
  evs.insert(
      evs.begin() + 3,
      SseEvent{
          "content_block_delta",
          R"({"type":"content_block_delta","index":0,"delta":{"type":"hologram_delta","x":1}})"});
  EXPECT_EQ(assemblyError(Endpoint::AnthropicMessages, evs),
            "event 3: unknown content_block_delta type 'hologram_delta'");
}

TEST(AssembleStream, AnthropicToolInputThatIsNotJsonIsRejected) {
  auto evs = events(testing::kAnthropicToolStream);
  evs.erase(evs.begin() + 9);  // drops the fragment {"location":
  EXPECT_NE(assemblyError(Endpoint::AnthropicMessages, evs).find("block 1: tool input is not JSON"),
            std::string::npos);
}

TEST(AssembleStream, AnthropicUnknownEventTypesAreSkipped) {
  auto evs = events(testing::kAnthropicThinkingStream);
  evs.insert(evs.begin() + 1, SseEvent{"future_event", R"({"type":"future_event","x":1})"});
  EXPECT_EQ(assembled(Endpoint::AnthropicMessages, evs),
            canonical(json(testing::kAnthropicThinkingAssembled)));
}

// ------------------------------------------------------------ synthesis and round trips

// Chat bodies as the real API returns them. The assembled form always has "refusal" but never
// "annotations" (streams carry none when empty): the expectation is adjusted to match.
Json asAssembled(Json body) {
  if (Json* choices = body.find("choices"))
    for (Json& c : choices->items())
      if (Json* m = c.find("message")) {
        if (!m->find("refusal")) m->set("refusal", Json::null());
        if (const Json* a = m->find("annotations"); a && a->isArray() && a->size() == 0)
          m->erase("annotations");
      }
  return body;
}

void expectRoundTrip(Endpoint endpoint, const Json& body, const Json& expected) {
  const auto evs = synthesizeStream(endpoint, body);
  ASSERT_FALSE(evs.empty());
  EXPECT_TRUE(streamCompleted(endpoint, evs));
  // Through the wire format and back: the parser must see exactly these events.
  EXPECT_EQ(events(formatSse(evs)), evs);
  auto back = assembleStream(endpoint, evs);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(canonical(*back), canonical(expected));
  EXPECT_EQ(isStorableResponse(endpoint, *back), isStorableResponse(endpoint, body));
}

constexpr std::string_view kChatText =
    R"({"id":"chatcmpl-1","object":"chat.completion","created":1741569952,"model":"gpt-4.1-mini-2025-04-14","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?\nLine two with \"quotes\" and ünïcödé.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_6f2eabb9a5"})";

TEST(SynthesizeStream, OpenAiChatTextRoundTrips) {
  const Json body = json(kChatText);
  expectRoundTrip(Endpoint::OpenAiChat, body, asAssembled(body));
}

TEST(SynthesizeStream, OpenAiChatToolCallsRoundTrip) {
  const Json body = json(
      R"({"id":"chatcmpl-2","object":"chat.completion","created":1745000000,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Paris\"}"}},{"id":"call_b","type":"function","function":{"name":"no_args","arguments":""}}],"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":80,"completion_tokens":17,"total_tokens":97},"system_fingerprint":"fp_f5bdcc3276"})");
  expectRoundTrip(Endpoint::OpenAiChat, body, asAssembled(body));
}

TEST(SynthesizeStream, OpenAiChatRefusalLogprobsAndSeveralChoicesRoundTrip) {
  const Json body = json(
      R"({"id":"chatcmpl-3","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hi","refusal":null},"logprobs":{"content":[{"token":"Hi","logprob":-0.0001,"bytes":[72,105],"top_logprobs":[]}],"refusal":null},"finish_reason":"stop"},{"index":1,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"logprobs":null,"finish_reason":"stop"},{"index":2,"message":{"role":"assistant","content":""},"logprobs":null,"finish_reason":"length"}]})");
  expectRoundTrip(Endpoint::OpenAiChat, body, asAssembled(body));
}

TEST(SynthesizeStream, OpenAiChatChunksLookLikeTheApis) {
  const auto evs = synthesizeStream(Endpoint::OpenAiChat, json(kChatText));
  ASSERT_EQ(evs.size(), 5u);  // role, content, finish, usage, [DONE]
  for (const auto& e : evs) EXPECT_EQ(e.event, "");
  EXPECT_EQ(
      toJson(json(evs[0].data)),
      R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4.1-mini-2025-04-14","service_tier":"default","system_fingerprint":"fp_6f2eabb9a5","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]})");
  const Json finish = json(evs[2].data).find("choices")->items()[0];
  EXPECT_EQ(toJson(finish), R"({"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"})");
  const Json usage = json(evs[3].data);
  EXPECT_EQ(usage.find("choices")->size(), 0u);
  EXPECT_EQ(usage.find("usage")->getInt("total_tokens"), 29);
  EXPECT_EQ(evs[4].data, "[DONE]");
}

TEST(SynthesizeStream, OpenAiToolCallChunksCarryTheCallIndex) {
  const auto evs = synthesizeStream(
      Endpoint::OpenAiChat,
      json(
          R"({"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"f","arguments":"{}"}}]},"logprobs":null,"finish_reason":"tool_calls"}]})"));
  ASSERT_EQ(evs.size(), 5u);  // role, tool head, tool arguments, finish, [DONE] (no usage)
  EXPECT_EQ(
      toJson(*json(evs[1].data).find("choices")->items()[0].find("delta")),
      R"({"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"f","arguments":""}}]})");
  EXPECT_EQ(toJson(*json(evs[2].data).find("choices")->items()[0].find("delta")),
            R"({"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]})");
}

TEST(SynthesizeStream, OpenAiCompletionsRoundTrip) {
  const Json body = json(
      R"({"id":"cmpl-1","object":"text_completion","created":1690759702,"model":"gpt-3.5-turbo-instruct","choices":[{"text":"\n\nThis is indeed a test","index":0,"logprobs":null,"finish_reason":"length"},{"text":"Other","index":1,"logprobs":{"tokens":["Other"],"token_logprobs":[-0.5],"top_logprobs":null,"text_offset":[12]},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}})");
  expectRoundTrip(Endpoint::OpenAiCompletions, body, body);
  const auto evs = synthesizeStream(Endpoint::OpenAiCompletions, body);
  EXPECT_EQ(*json(evs[0].data).getString("object"), "text_completion");
}

constexpr std::string_view kAnthropicMessage =
    R"({"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"thinking","thinking":"Let me think.\nCarefully.","signature":"EqQBCgIYAhIM"},{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIw"},{"type":"text","text":"I'll check the weather."},{"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"get_weather","input":{"location":"San Francisco, CA","unit":"celsius","days":[1,2.50,3e2]}},{"type":"tool_use","id":"toolu_02","name":"ping","input":{}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":2095,"cache_creation_input_tokens":0,"cache_read_input_tokens":1024,"output_tokens":503,"service_tier":"standard"}})";

TEST(SynthesizeStream, AnthropicMessageRoundTripsByteForByte) {
  const Json body = json(kAnthropicMessage);
  expectRoundTrip(Endpoint::AnthropicMessages, body, body);
  auto back = assembleStream(Endpoint::AnthropicMessages,
                             synthesizeStream(Endpoint::AnthropicMessages, body));
  ASSERT_TRUE(back);
  EXPECT_EQ(toJson(*back), toJson(body));  // member order and number spellings kept
}

TEST(SynthesizeStream, AnthropicCitationsRoundTrip) {
  const Json body = json(
      R"({"id":"msg_c","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"the grass is green","citations":[{"type":"char_location","cited_text":"The grass is green.","document_index":0,"document_title":"Example","start_char_index":0,"end_char_index":20}]},{"type":"text","text":" and plain","citations":null}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":6}})");
  expectRoundTrip(Endpoint::AnthropicMessages, body, body);
}

TEST(SynthesizeStream, AnthropicEventsAreNamedInTheApisOrder) {
  const auto evs = synthesizeStream(
      Endpoint::AnthropicMessages,
      json(
          R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"Hi!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":8,"output_tokens":4}})"));
  std::vector<std::string> names;
  for (const auto& e : evs) {
    names.push_back(e.event);
    EXPECT_EQ(*json(e.data).getString("type"), e.event);
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"message_start", "content_block_start", "content_block_delta",
                                      "content_block_stop", "message_delta", "message_stop"}));
  EXPECT_EQ(
      evs[0].data,
      R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":8,"output_tokens":4}}})");
  EXPECT_EQ(
      evs[1].data,
      R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})");
  EXPECT_EQ(
      evs[2].data,
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi!"}})");
  EXPECT_EQ(
      evs[4].data,
      R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":4}})");
}

TEST(SynthesizeStream, AnthropicToolInputIsSentAsJsonText) {
  const auto evs = synthesizeStream(Endpoint::AnthropicMessages, json(kAnthropicMessage));
  bool sawInput = false;
  for (const auto& e : evs) {
    const Json d = json(e.data);
    if (e.event == "content_block_start" && d.getInt("index") == 3) {
      EXPECT_EQ(toJson(*d.find("content_block")->find("input")), "{}");
    }
    if (e.event == "content_block_delta" && d.getInt("index") == 3) {
      EXPECT_EQ(*d.find("delta")->getString("partial_json"),
                R"({"location":"San Francisco, CA","unit":"celsius","days":[1,2.50,3e2]})");
      sawInput = true;
    }
    // An empty input needs no delta at all.
    EXPECT_FALSE(e.event == "content_block_delta" && d.getInt("index") == 4);
  }
  EXPECT_TRUE(sawInput);
}

TEST(SynthesizeStream, RecordedStreamsSurviveAssembleSynthesizeAssemble) {
  struct Case {
    Endpoint endpoint;
    std::string_view wire;
  };
  for (const Case& c : {Case{Endpoint::OpenAiChat, testing::kOpenAiChatStream},
                        Case{Endpoint::OpenAiChat, testing::kOpenAiToolCallStream},
                        Case{Endpoint::OpenAiCompletions, testing::kOpenAiCompletionsStream},
                        Case{Endpoint::AnthropicMessages, testing::kAnthropicToolStream},
                        Case{Endpoint::AnthropicMessages, testing::kAnthropicThinkingStream}}) {
    auto first = assembleStream(c.endpoint, events(c.wire));
    ASSERT_TRUE(first);
    auto second = assembleStream(c.endpoint, synthesizeStream(c.endpoint, *first));
    ASSERT_TRUE(second) << second.error().message;
    EXPECT_EQ(canonical(*second), canonical(*first));
  }
}

TEST(FitUsageToRequest, UsageOnlyChunkIsDroppedForAClientThatDidNotAskForIt) {
  const Json body = parseJson(R"({"id":"c1","object":"chat.completion","created":1,"model":"m",
    "choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],
    "usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})")
                        .value();
  auto events = synthesizeStream(key::Endpoint::OpenAiChat, body);
  auto fitted = fitUsageToRequest(key::Endpoint::OpenAiChat, events, false, body);
  EXPECT_EQ(fitted.size(), events.size() - 1);
  for (const auto& e : fitted) EXPECT_EQ(e.data.find("\"usage\""), std::string::npos) << e.data;
  EXPECT_EQ(fitted.back().data, "[DONE]");
  EXPECT_EQ(fitUsageToRequest(key::Endpoint::OpenAiChat, events, true, body), events);
}

TEST(FitUsageToRequest, UsageChunkIsAddedBeforeDoneWhenAskedForAndMissing) {
  const Json body = parseJson(R"({"id":"c1","object":"chat.completion","created":1,"model":"m",
    "choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],
    "usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})")
                        .value();
  auto without = fitUsageToRequest(key::Endpoint::OpenAiChat,
                                   synthesizeStream(key::Endpoint::OpenAiChat, body), false, body);
  auto with = fitUsageToRequest(key::Endpoint::OpenAiChat, without, true, body);
  ASSERT_EQ(with.size(), without.size() + 1);
  EXPECT_EQ(with.back().data, "[DONE]");
  auto usage = parseJson(with[with.size() - 2].data).value();
  EXPECT_EQ(usage.find("choices")->size(), 0u);
  EXPECT_EQ(usage.find("usage")->getInt("total_tokens"), 3);
  auto again = assembleStream(key::Endpoint::OpenAiChat, with);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->find("usage")->getInt("completion_tokens"), 2);
}

// ---------------------------------------------------------------- Responses API

// A Responses stream as OpenAI sends it (the documented event shapes; deltas carry an
// obfuscation padding).
constexpr std::string_view kResponsesWire =
    "event: response.created\n"
    R"(data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","created_at":1,"status":"in_progress","error":null,"model":"gpt-4.1","output":[],"usage":null}})"
    "\n\n"
    "event: response.in_progress\n"
    R"(data: {"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_1","object":"response","created_at":1,"status":"in_progress","error":null,"model":"gpt-4.1","output":[],"usage":null}})"
    "\n\n"
    "event: response.output_item.added\n"
    R"(data: {"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","content":[],"role":"assistant"}})"
    "\n\n"
    "event: response.content_part.added\n"
    R"(data: {"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":""}})"
    "\n\n"
    "event: response.output_text.delta\n"
    R"(data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hel","logprobs":[],"obfuscation":"ab"})"
    "\n\n"
    "event: response.output_text.delta\n"
    R"(data: {"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"lo.","logprobs":[],"obfuscation":"c"})"
    "\n\n"
    "event: response.output_text.done\n"
    R"(data: {"type":"response.output_text.done","sequence_number":6,"item_id":"msg_1","output_index":0,"content_index":0,"text":"Hello.","logprobs":[]})"
    "\n\n"
    "event: response.content_part.done\n"
    R"(data: {"type":"response.content_part.done","sequence_number":7,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":"Hello."}})"
    "\n\n"
    "event: response.output_item.done\n"
    R"(data: {"type":"response.output_item.done","sequence_number":8,"output_index":0,"item":{"id":"msg_1","type":"message","status":"completed","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":"Hello."}],"role":"assistant"}})"
    "\n\n"
    "event: response.completed\n"
    R"(data: {"type":"response.completed","sequence_number":9,"response":{"id":"resp_1","object":"response","created_at":1,"status":"completed","error":null,"model":"gpt-4.1","output":[{"id":"msg_1","type":"message","status":"completed","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":"Hello."}],"role":"assistant"}],"usage":{"input_tokens":5,"output_tokens":2,"total_tokens":7}}})"
    "\n\n";

std::vector<SseEvent> responsesEvents() { return events(kResponsesWire); }

TEST(ResponsesStream, CompleteOnlyWithResponseCompleted) {
  const auto evs = responsesEvents();
  ASSERT_EQ(evs.size(), 10u);
  EXPECT_TRUE(streamCompleted(Endpoint::OpenAiResponses, evs));
  EXPECT_FALSE(streamCompleted(Endpoint::OpenAiResponses, without(evs, 9)));  // cut
  auto failed = evs;
  failed.insert(
      failed.end() - 1,
      SseEvent{"response.failed", R"({"type":"response.failed","response":{"status":"failed"}})"});
  EXPECT_FALSE(streamCompleted(Endpoint::OpenAiResponses, failed));
  auto incomplete = without(evs, 9);
  incomplete.push_back(
      SseEvent{"response.incomplete",
               R"({"type":"response.incomplete","response":{"status":"incomplete"}})"});
  EXPECT_FALSE(streamCompleted(Endpoint::OpenAiResponses, incomplete));
  auto error = evs;
  error.insert(error.begin() + 5,
               SseEvent{"error", R"({"type":"error","code":"server_error","message":"x"})"});
  EXPECT_FALSE(streamCompleted(Endpoint::OpenAiResponses, error));
  EXPECT_NE(assemblyError(Endpoint::OpenAiResponses, error).find("error"), std::string::npos);
  auto garbage = evs;
  garbage.insert(garbage.begin() + 3, SseEvent{"", "{not json"});
  EXPECT_FALSE(streamCompleted(Endpoint::OpenAiResponses, garbage));
}

TEST(ResponsesStream, AssemblesToTheCompletedResponse) {
  const auto evs = responsesEvents();
  const Json body = *assembleStream(Endpoint::OpenAiResponses, evs);
  EXPECT_EQ(canonical(body), canonical(*json(evs[9].data).find("response")));
  EXPECT_TRUE(isStorableResponse(Endpoint::OpenAiResponses, body));
  // A cut stream assembles to what arrived: in progress, not storable.
  const Json cut = *assembleStream(Endpoint::OpenAiResponses, without(evs, 9));
  EXPECT_FALSE(isStorableResponse(Endpoint::OpenAiResponses, cut));
  // Events without any lifecycle event are not a Responses stream.
  EXPECT_NE(assemblyError(Endpoint::OpenAiResponses, {evs[2], evs[3]}).find("lifecycle"),
            std::string::npos);
}

TEST(ResponsesStream, ACompletedResponseWithoutOutputTakesTheDoneItems) {
  auto evs = responsesEvents();
  Json last = json(evs[9].data);
  last.find("response")->set("output", Json::null());
  evs[9].data = toJson(last);
  const Json body = *assembleStream(Endpoint::OpenAiResponses, evs);
  Json items = Json::array();
  items.push(*json(evs[8].data).find("item"));  // output_item.done
  EXPECT_EQ(canonical(*body.find("output")), canonical(items));
}

Json richResponse() {
  return json(
      R"({"id":"resp_2","object":"response","created_at":2,"status":"completed","completed_at":3,"error":null,"model":"o4-mini","output":[
      {"id":"rs_1","type":"reasoning","summary":[{"type":"summary_text","text":"Think."}]},
      {"id":"msg_2","type":"message","status":"completed","role":"assistant","content":[
        {"type":"output_text","annotations":[{"type":"url_citation","url":"https://x"}],"logprobs":[],"text":"Line one.\nLine two."},
        {"type":"refusal","refusal":"No."}]},
      {"id":"fc_1","type":"function_call","status":"completed","call_id":"call_1","name":"f","arguments":"{\"a\":1}"},
      {"id":"ws_1","type":"web_search_call","status":"completed","action":{"type":"search","query":"q"}}],
      "usage":{"input_tokens":10,"output_tokens":20,"total_tokens":30}})");
}

TEST(ResponsesStream, SynthesizedEventsAreNamedNumberedAndAssembleBack) {
  const Json body = richResponse();
  const auto evs = synthesizeStream(Endpoint::OpenAiResponses, body);
  ASSERT_GE(evs.size(), 3u);
  EXPECT_EQ(evs.front().event, "response.created");
  EXPECT_EQ(evs[1].event, "response.in_progress");
  EXPECT_EQ(evs.back().event, "response.completed");
  std::string text, args, summary;
  for (size_t i = 0; i < evs.size(); ++i) {
    const Json data = json(evs[i].data);
    EXPECT_EQ(data.getString("type"), std::optional<std::string_view>(evs[i].event));
    EXPECT_EQ(data.getInt("sequence_number"), std::optional<int64_t>(static_cast<int64_t>(i)));
    if (evs[i].event == "response.output_text.delta") text += *data.getString("delta");
    if (evs[i].event == "response.function_call_arguments.delta") args += *data.getString("delta");
    if (evs[i].event == "response.reasoning_summary_text.delta")
      summary += *data.getString("delta");
  }
  EXPECT_EQ(text, "Line one.\nLine two.");
  EXPECT_EQ(args, R"({"a":1})");
  EXPECT_EQ(summary, "Think.");
  // The start is in progress, without output or usage.
  const Json start = *json(evs[0].data).find("response");
  EXPECT_EQ(start.getString("status"), std::optional<std::string_view>("in_progress"));
  EXPECT_EQ(start.find("output")->size(), 0u);
  EXPECT_TRUE(start.find("usage")->isNull());
  EXPECT_TRUE(start.find("completed_at")->isNull());
  // Through the wire and back: a complete stream that assembles to the same body.
  const auto again = events(formatSse(evs));
  EXPECT_TRUE(streamCompleted(Endpoint::OpenAiResponses, again));
  EXPECT_EQ(toJson(*assembleStream(Endpoint::OpenAiResponses, again)), toJson(body));
}

TEST(ResponsesStream, RecordedEventsAreNeverFittedForUsage) {
  const auto evs = responsesEvents();
  const Json body = *assembleStream(Endpoint::OpenAiResponses, evs);
  for (bool include : {false, true}) {
    const auto fitted = fitUsageToRequest(Endpoint::OpenAiResponses, evs, include, body);
    EXPECT_EQ(formatSse(fitted), formatSse(evs));
  }
}

}  // namespace
}  // namespace llmcache::api
