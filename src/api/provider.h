#pragma once
// Which provider speaks each endpoint, and that provider's error bodies.
#include <optional>
#include <string>
#include <string_view>

#include "key/cache_key.h"

namespace llmcache::api {

enum class Provider { OpenAi, Anthropic };

// OpenAI: chat, completions, embeddings, responses. Anthropic: messages.
Provider providerOf(key::Endpoint endpoint);

// The cached endpoint a proxy path names: "/v1/chat/completions", "/v1/completions",
// "/v1/embeddings", "/v1/messages", "/v1/responses" (a query string and one trailing '/' are
// ignored). nullopt for any other path, "/v1/responses/{id}" and its input_items included:
// those pass through uncached. The "/{platform}" prefix is the
// router's business and must be stripped before calling.
std::optional<key::Endpoint> endpointForPath(std::string_view path);

// A complete error body in the provider's shape, as its SDKs parse it:
//   OpenAI:    {"error":{"message":M,"type":T,"param":null,"code":null}}
//   Anthropic: {"type":"error","error":{"type":T,"message":M}}
std::string errorBody(Provider provider, std::string_view type, std::string_view message);

// The error type the provider itself uses for an HTTP status, for errors the gateway makes up
// (400 invalid_request_error, 401 authentication_error, 429 rate_limit_error, ...). Statuses
// without a specific type map to the provider's generic client (4xx) or server (5xx) type.
std::string_view errorTypeForStatus(Provider provider, int status);

}  // namespace llmcache::api
