#pragma once
// Request validation: the checks a body must pass before the gateway keys or forwards it.
//
// Only what the gateway relies on, plus the fields the provider itself requires, is checked:
// anything else (unknown parameters, new content-part types, value ranges) is the upstream's to
// judge, so that a new provider feature never becomes a gateway 400.
#include <string>

#include "common/json.h"
#include "common/result.h"
#include "key/cache_key.h"

namespace llmcache::api {

struct RequestInfo {
  key::Endpoint endpoint;
  std::string model;
  bool stream = false;  // the client asked for server-sent events
};

// Checks a parsed request body for its endpoint:
//   all:          a JSON object; "model" a non-empty string; "stream", when present, a bool
//                 (null counts as absent, as the OpenAI API treats it)
//   chat:         "messages" a non-empty array of objects, each with a string "role"
//   completions:  "prompt" a string or an array
//   embeddings:   "input" a non-empty string or a non-empty array; "stream" not allowed
//   messages:     "messages" a non-empty array of objects with a string "role";
//                 "max_tokens" a positive integer (Anthropic requires it)
// Errc::InvalidArgument with a message naming the field ("'messages' must be a non-empty
// array"), meant to be sent to the client as a 400 in the provider's error shape.
Result<RequestInfo> validateRequest(key::Endpoint endpoint, const Json& body);

}  // namespace llmcache::api
