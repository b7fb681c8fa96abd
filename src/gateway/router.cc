#include "gateway/router.h"

#include <boost/url/parse.hpp>

#include "admin/admin_api.h"

namespace llmcache::gateway {

Router::Router(const upstream::PlatformTable& platforms, RouterOptions options)
    : platforms_(platforms), options_(std::move(options)), defaultPlatform_("default") {
  for (const auto& p : platforms_.all())
    if (p.baseUrl == options_.upstream) defaultPlatform_ = p.name;
}

Route Router::route(http::bhttp::verb method, std::string_view target) const {
  Route r;
  const size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
  r.provider = r.path.find("/v1/messages") != std::string::npos ? api::Provider::Anthropic
                                                                : api::Provider::OpenAi;

  if (r.path == "/healthz" || r.path == "/readyz") {
    r.kind = Route::Kind::Health;
    return r;
  }
  if (r.path == "/metrics" && options_.metrics && options_.admin) {
    r.kind = Route::Kind::Metrics;
    return r;
  }
  if (options_.admin && admin::AdminApi::ownsDashboard(r.path)) {
    r.kind = Route::Kind::Dashboard;
    return r;
  }
  if (options_.admin && admin::AdminApi::owns(r.path)) {
    r.kind = Route::Kind::Admin;
    return r;
  }

  auto parsed = boost::urls::parse_origin_form(target);
  if (!parsed) {
    r.kind = Route::Kind::BadRequest;
    r.error = "the request target is not a valid origin-form URL";
    return r;
  }
  for (auto segment : parsed->segments()) {  // decoded: %2e%2e is ".." too
    if (segment == "." || segment == "..") {
      r.kind = Route::Kind::BadRequest;
      r.error = "the request path must not contain '.' or '..' segments";
      return r;
    }
  }

  // /v1/... goes to the configured upstream, /{platform}/v1/... to a named platform.
  std::string apiPath, base;
  if (std::string_view(r.path).starts_with("/v1/") || r.path == "/v1") {
    apiPath = r.path;
    base = options_.upstream;
    r.platform = defaultPlatform_;
    r.defaultRoute = true;
  } else {
    const size_t slash = r.path.find('/', 1);
    const std::string name =
        r.path.substr(1, slash == std::string::npos ? std::string::npos : slash - 1);
    apiPath = slash == std::string::npos ? "" : r.path.substr(slash);
    if (!std::string_view(apiPath).starts_with("/v1/")) {
      r.error = "no route for " + r.path + ": use /v1/... or /{platform}/v1/...";
      return r;
    }
    const upstream::Platform* p = platforms_.find(name);
    if (!p) {
      r.error = "unknown platform '" + name + "'";
      return r;
    }
    base = p->baseUrl;
    r.platform = p->name;
  }
  r.kind = Route::Kind::Api;
  // The platform's base ends in /v1; the API path starts with it.
  r.upstreamUrl = base + apiPath.substr(3) + (r.query.empty() ? "" : "?" + r.query);
  if (method == http::bhttp::verb::post) r.endpoint = api::endpointForPath(apiPath);
  r.provider = r.endpoint ? api::providerOf(*r.endpoint)
               : std::string_view(apiPath).starts_with("/v1/messages") ? api::Provider::Anthropic
                                                                       : api::Provider::OpenAi;
  return r;
}

}  // namespace llmcache::gateway
