#pragma once
// Request validation: the checks a body must pass before the gateway keys or forwards it.
//
// Only what the gateway relies on, plus the fields the provider itself requires, is checked:
// anything else (unknown parameters, new content-part types, value ranges) is the upstream's to
// judge, so that a new provider feature never becomes a gateway 400.
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/result.h"
#include "key/cache_key.h"

namespace llmcache::api {

struct RequestInfo {
  key::Endpoint endpoint;
  std::string model;
  bool stream = false;  // the client asked for server-sent events
  // Why a valid request must not be cached (passed through, BYPASS), or empty. A static text:
  //   responses: "background" (background: true: the answer is fetched later by id),
  //   "conversation" (a server-side conversation: its state changes with every turn),
  //   "prompt without version" (a stored prompt template's latest version can change).
  std::string_view bypass;
};

// Checks a parsed request body for its endpoint:
//   all:          a JSON object; "model" a non-empty string; "stream", when present, a bool
//                 (null counts as absent, as the OpenAI API treats it)
//   chat:         "messages" a non-empty array of objects, each with a string "role"
//   completions:  "prompt" a string or an array
//   embeddings:   "input" a non-empty string or a non-empty array; "stream" not allowed
//   messages:     "messages" a non-empty array of objects with a string "role";
//                 "max_tokens" a positive integer (Anthropic requires it)
//   responses:    "input", when present and not null, a string or an array; "instructions" a
//                 string or null; "background" a bool or null (decides `bypass`, above)
// Errc::InvalidArgument with a message naming the field ("'messages' must be a non-empty
// array"), meant to be sent to the client as a 400 in the provider's error shape.
Result<RequestInfo> validateRequest(key::Endpoint endpoint, const Json& body);

}  // namespace llmcache::api
