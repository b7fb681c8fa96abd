#pragma once
// HTTP header fields as the upstream client sends and receives them, and the forwarding rules
// the gateway applies in both directions (client -> upstream, upstream -> client).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmcache::upstream {

// One header field. Names keep the spelling they arrived with (HTTP/2 peers send lowercase);
// compare them case-insensitively. Values are never logged: Authorization and x-api-key are
// secrets.
struct Header {
  std::string name;
  std::string value;
  friend bool operator==(const Header&, const Header&) = default;
};

// True for headers that must not be forwarded as they are, in either direction (case-insensitive):
// the hop-by-hop set of RFC 9110 section 7.6.1 (connection, keep-alive, proxy-authenticate,
// proxy-authorization, proxy-connection, te, trailer, transfer-encoding, upgrade), the ones the
// HTTP layer sets itself (host, content-length) and the gateway's own controls (x-llmcache-*).
bool isHopByHopOrManagedHeader(std::string_view name);
// access-control-*: CORS, which the gateway answers itself (never relayed from a provider).
bool isCorsHeader(std::string_view name);

// The provider's headers that a cached answer replays (recorded with the entry, sent on every
// hit as on the miss, so a hit looks like the real thing to an SDK): the request id
// (x-request-id, request-id), openai-processing-ms, openai-version. An allowlist: never a cookie,
// a credential, an organization or project id, or rate-limit figures (stale on a hit).
bool isReplayableHeader(std::string_view name);

// `headers` minus isHopByHopOrManagedHeader() and minus every header that a Connection header
// names (`Connection: close, x-foo` makes x-foo hop-by-hop too). Order is kept.
std::vector<Header> forwardableHeaders(const std::vector<Header>& headers);

// The value of the first header called `name` (case-insensitive), or nullopt.
std::optional<std::string_view> findHeader(const std::vector<Header>& headers,
                                           std::string_view name);

// ASCII case-insensitive equality (header names are ASCII tokens).
bool equalsIgnoreCase(std::string_view a, std::string_view b);

}  // namespace llmcache::upstream
