// GET /dashboard: the embedded page and its scripts (admin_api.h has the contract; the files are
// under src/admin/dashboard/ and become dashboard_assets.cc at configure time).
#include <string>

#include "admin/admin_api.h"
#include "common/json.h"

namespace llmcache::admin {

namespace detail {
extern const std::string_view kDashboardHtml, kDashboardAppJs, kDashboardAppCss, kDashboardChartJs;
}  // namespace detail

namespace {

using Reply = AdminApi::Reply;

// Scripts and styles from this origin only (no inline script: app.js is a file); fetches to this
// origin only (/cache/*); no framing, no forms posting anywhere, no referrer.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' "
    "data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct Asset {
  std::string_view path;
  const std::string_view* body;
  std::string_view contentType;
};

const Asset kAssets[] = {
    {"/dashboard", &detail::kDashboardHtml, "text/html; charset=utf-8"},
    {"/dashboard/", &detail::kDashboardHtml, "text/html; charset=utf-8"},
    {"/dashboard/app.js", &detail::kDashboardAppJs, "text/javascript; charset=utf-8"},
    {"/dashboard/app.css", &detail::kDashboardAppCss, "text/css; charset=utf-8"},
    {"/dashboard/chart.js", &detail::kDashboardChartJs, "text/javascript; charset=utf-8"},
};

Reply error(int status, std::string_view type, std::string message) {
  Json inner = Json::object();
  inner.set("message", Json::string(std::move(message)))
      .set("type", Json::string(std::string(type)));
  Json body = Json::object();
  body.set("error", std::move(inner));
  return Reply{status, toJson(body)};
}

}  // namespace

bool AdminApi::ownsDashboard(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  return path == "/dashboard" || path.starts_with("/dashboard/");
}

Reply AdminApi::dashboard(std::string_view method, std::string_view target,
                          const Caller& caller) const {
  // Without a token: the loopback rules of /cache/*. With one: a browser opening the page sends no
  // Authorization, so the (data-free) files are served without it; one that is sent must be right.
  if (!tokenSet_ || !caller.authorization.empty())
    if (auto denied = authorize(caller)) return std::move(*denied);

  const std::string_view path = target.substr(0, target.find('?'));
  for (const Asset& a : kAssets) {
    if (a.path != path) continue;
    if (method != "GET") {
      Reply r = error(
          405, "invalid_request_error",
          std::string(method) + " is not allowed on " + std::string(path) + " (allowed: GET)");
      r.headers.emplace_back("Allow", "GET");
      return r;
    }
    Reply r{200, std::string(*a.body), std::string(a.contentType)};
    // Revalidated on every load: the files change with the binary, and they are small next to
    // the analytics the page then fetches.
    r.headers.emplace_back("Cache-Control", "no-cache");
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
    if (a.body == &detail::kDashboardHtml) {
      r.headers.emplace_back("Content-Security-Policy", std::string(kContentSecurityPolicy));
      r.headers.emplace_back("X-Frame-Options", "DENY");
    }
    return r;
  }
  return error(404, "not_found_error", "no dashboard file " + std::string(path));
}

}  // namespace llmcache::admin
