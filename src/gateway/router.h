#pragma once
// Router: where a request goes, from its method and target alone. The gateway's own routes
// (/healthz, /readyz, /metrics, /dashboard, /cache/*) or a provider API: /v1/... to the
// configured upstream, /{platform}/v1/... to a named platform (upstream::PlatformTable).
// The target is parsed as an RFC 3986 origin-form with Boost.URL; a path with a dot segment
// ("." or "..", also percent-encoded) is refused: libcurl would resolve it, so /v1/../stats
// would reach the upstream's /stats, outside the API root.
#include <optional>
#include <string>
#include <string_view>

#include "api/provider.h"
#include "http/server.h"
#include "key/cache_key.h"
#include "upstream/platform.h"

namespace llmcache::gateway {

struct Route {
  enum class Kind { Health, Metrics, Dashboard, Admin, Api, BadRequest, NotFound };
  Kind kind = Kind::NotFound;
  std::string path;   // the target's path as sent
  std::string query;  // the target's query as sent, without '?'
  // Api:
  std::string platform;       // the platform's name ("default" when none matches the upstream)
  bool defaultRoute = false;  // /v1/... (not /{platform}/v1/...)
  std::string upstreamUrl;    // the platform's base + the API path after /v1 + ?query
  std::optional<key::Endpoint> endpoint;  // a POST to a cached endpoint
  // The error shape for this request (Api, and refusals of API-looking paths).
  api::Provider provider = api::Provider::OpenAi;
  std::string error;  // BadRequest, NotFound: the message
};

struct RouterOptions {
  std::string upstream;  // CACHE_UPSTREAM: where /v1/... goes
  bool metrics = true;   // /metrics is served (CACHE_METRICS_ENABLED)
  bool admin = true;     // /cache/* and /dashboard are served
};

class Router {
 public:
  // platforms: not owned, must outlive the router.
  Router(const upstream::PlatformTable& platforms, RouterOptions options);
  Route route(http::bhttp::verb method, std::string_view target) const;

 private:
  const upstream::PlatformTable& platforms_;
  RouterOptions options_;
  std::string defaultPlatform_;
};

}  // namespace llmcache::gateway
