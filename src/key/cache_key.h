#pragma once
// The cache key, version 1 (docs/keyspec.md; the key spec's cache_key.py is normative).
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json.h"
#include "common/result.h"
#include "key/text.h"

namespace llmcache::key {

inline constexpr int kKeySpecVersion = 1;
// The extra member that holds KeyOptions::context; a request body may not use the name.
inline constexpr const char* kContextField = "@context";

enum class Endpoint { OpenAiChat, OpenAiCompletions, OpenAiEmbeddings, AnthropicMessages };

std::string_view endpointName(Endpoint e);  // "openai.chat", ...
std::optional<Endpoint> parseEndpoint(std::string_view name);
std::string_view normalizeModeName(NormalizeMode m);  // "seed", "whitespace", "exact"
std::optional<NormalizeMode> parseNormalizeMode(std::string_view name);

struct KeyOptions {
  Endpoint endpoint = Endpoint::OpenAiChat;
  NormalizeMode mode = NormalizeMode::Exact;
  std::string scope;         // the tenant when keys are scoped per tenant; empty: none
  std::string keyNamespace;  // x-llmcache-namespace; empty: none
  // The request's context besides its body that shapes the answer (docs/keyspec.md, Request
  // context): ("platform", name) off the default route, ("query", sorted query string),
  // ("header:<lowercase name>", value) for answer-shaping headers. Empty for a plain request,
  // whose key is then exactly the key spec's; otherwise it goes into extra["@context"].
  std::vector<std::pair<std::string, std::string>> context;
};

struct CacheKey {
  std::string cacheKey;     // model.replace("/", "_")[:20] + "_" + request_hash[:16]
  std::string requestHash;  // lowercase hex MD5 of canonical
  std::string canonical;    // json.dumps(normalized, indent=4)
};

// Nesting allowed in a request body; deeper is rejected (never a stack overflow).
inline constexpr size_t kMaxRequestDepth = 64;

// Parses a request body as the reference does (duplicate keys: last wins; NaN, Infinity and
// numbers too large for a double rejected). Errc::InvalidArgument with a clear message.
Result<Json> parseRequest(std::string_view body);

// Computes the key of a parsed request. Errc::InvalidArgument when the request cannot be
// keyed (the reference's KeyError_): such a request is answered 400.
Result<CacheKey> computeKey(const Json& request, const KeyOptions& options);

}  // namespace llmcache::key
