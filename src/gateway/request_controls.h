#pragma once
// The request controls (docs/http-api.md): Cache-Control (no-cache, no-store, max-age=N),
// x-llmcache-ttl, x-llmcache-namespace, x-llmcache-tags, and the tenant the key is scoped by
// (CACHE_SCOPE). Pure functions of the request's headers.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "http/server.h"

namespace llmcache::gateway {

struct CacheControl {
  bool noCache = false;           // skip the lookup, store the fresh answer
  bool noStore = false;           // do not store the answer
  std::optional<int64_t> maxAge;  // accept entries no older than this many seconds
};
// Directive names are case-insensitive (RFC 9111 section 5.2); unknown ones are ignored.
CacheControl parseCacheControl(std::string_view header);

struct ScopeOptions {
  std::string mode = "api_key";  // CACHE_SCOPE: api_key | global | header:NAME
  std::string secret;            // CACHE_SCOPE_SECRET
  // CACHE_SCOPE_CREDENTIALS: lowercase header names, or "query:NAME"; the first present wins.
  std::vector<std::string> credentials = {"authorization", "x-api-key", "api-key", "x-goog-api-key",
                                          "query:key"};
};

// The tenant of a request that carries no credential (CACHE_SCOPE=api_key): one shared,
// documented tenant, never mixed with any keyed one.
inline constexpr std::string_view kAnonymousTenant = "anonymous";

struct RequestControls {
  std::optional<int64_t> ttl;  // x-llmcache-ttl, seconds
  std::string keyNamespace;
  std::vector<std::string> tags;
  // The scope in the key: a keyed hash of the credential (api_key; "anonymous" without one),
  // a header's value (header:NAME) or empty (global). Never the credential itself.
  std::string tenant;
  // A keyed hash of the caller's credential for the analytics, whatever the scope; may be empty.
  std::string callerHash;
};
// InvalidArgument (a 400) when x-llmcache-ttl is not a whole number of seconds >= 0.
// query: the target's query string (a credential may come as ?key=).
Result<RequestControls> readControls(const http::Request& request, std::string_view query,
                                     const ScopeOptions& scope);

// The value of a query parameter (percent-decoded), or nullopt.
std::optional<std::string> queryParameter(std::string_view query, std::string_view name);

// HMAC-SHA256 of the credential under secret (plain SHA-256 without one), the first 8 bytes in
// hex: what identifies a tenant without keeping its key.
std::string credentialScope(std::string_view credential, std::string_view secret);

}  // namespace llmcache::gateway
