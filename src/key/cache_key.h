#pragma once
// The cache key, version 1 (docs/keyspec.md; the key spec's cache_key.py is normative).
#include <memory>
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

// New endpoints go last: the numbers are part of KeyMemo's probe.
enum class Endpoint {
  OpenAiChat,
  OpenAiCompletions,
  OpenAiEmbeddings,
  AnthropicMessages,
  OpenAiResponses,  // the gateway's addition to key spec v1 (docs/keyspec.md)
};

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

// Whether a CacheKey keeps its canonical text (as large as the body; the gateway needs only
// the hash and the key).
enum class Canonical { Keep, Drop };
Result<CacheKey> computeKey(const Json& request, const KeyOptions& options, Canonical canonical);

// A key whose texts live in a KeyBuilder: valid until that builder's next call. canonical is
// followed by kPadding readable bytes (key/json_text.h), for the padded escaper.
struct KeyView {
  std::string_view cacheKey;
  std::string_view requestHash;
  std::string_view canonical;
};

// Keys request after request without allocating once warm: the body is parsed into a flat
// node array, and the canonical text is written from it straight into one reused buffer (no
// normalized tree, no sorted copies). Same results and errors as parseRequest + computeKey.
// One per thread (it is not thread-safe).
class KeyBuilder {
 public:
  KeyBuilder();
  ~KeyBuilder();
  KeyBuilder(const KeyBuilder&) = delete;
  KeyBuilder& operator=(const KeyBuilder&) = delete;

  // parseRequest(body) then computeKey, in one pass over a flat parse.
  Result<KeyView> key(std::string_view body, const KeyOptions& options);
  // key(body, options) but the MD5, for a caller that hashes many canonical texts at once
  // (key/md5_lanes.h, md5HexMany): requestHash is empty, and cacheKey ends with the "_" that
  // the hash's first 16 hex digits follow.
  Result<KeyView> keyWithoutHash(std::string_view body, const KeyOptions& options);
  // computeKey(request, options).
  Result<KeyView> key(const Json& request, const KeyOptions& options);
  // Frees the buffers that grew beyond keepBytes (for a long-lived builder after a huge
  // request). The last key's views are then invalid.
  void trim(size_t keepBytes = size_t{1} << 20);

 private:
  Result<KeyView> keyOf(std::string_view body, const KeyOptions& options, bool hash);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmcache::key
