#pragma once
// Non-streamed response bodies: which are worth storing, and what they report about usage.
#include <cstdint>
#include <optional>

#include "common/json.h"
#include "key/cache_key.h"

namespace llmcache::api {

// True for a complete, successful answer (the only kind the cache stores; the caller checks
// the HTTP status separately). Never for a body with an "error" member.
//   chat:        object "chat.completion"; choices a non-empty array of objects, each with a
//                "message" object and a string finish_reason other than "error" (OpenRouter's
//                mark of an answer that failed midway)
//   completions: object "text_completion"; choices non-empty, each with a string "text" and
//                a finish_reason as for chat
//   embeddings:  object "list"; data a non-empty array of objects whose "embedding" is a
//                non-empty array (or a non-empty string: encoding_format "base64")
//   messages:    type "message"; content an array; stop_reason a string
//   responses:   object "response"; status "completed" (not "incomplete", "failed",
//                "in_progress", "queued", "cancelled"); output an array
bool isStorableResponse(key::Endpoint endpoint, const Json& body);

struct Usage {
  int64_t inputTokens = 0;
  int64_t outputTokens = 0;
  std::optional<double> reportedCostUsd;  // the upstream's own price (OpenRouter usage.cost)
};

// Token counts as the provider reports them; 0 for whatever is missing or malformed.
//   OpenAI: usage.prompt_tokens / usage.completion_tokens (embeddings: output 0);
//     usage.cost, when a number, is reportedCostUsd (OpenRouter)
//   Anthropic: input = usage.input_tokens + cache_creation_input_tokens +
//     cache_read_input_tokens (all the prompt tokens, however billed); output = output_tokens
//   OpenAI responses: usage.input_tokens / usage.output_tokens (the first counts cached tokens
//     too, the second reasoning tokens too, as OpenAI bills them); usage.cost as for OpenAI
Usage extractUsage(key::Endpoint endpoint, const Json& body);

}  // namespace llmcache::api
