#pragma once
// AdminApi: the /cache/* admin routes (DESIGN.md, HTTP surface), transport-free: the gateway's
// router hands it the method, target, body and the Caller (the Authorization, Host, Origin and
// Content-Type headers, whether the peer is on a loopback address), and writes back the Reply.
// It serves JSON only; it never blocks on the network, but it does run SQLite queries and tier
// erases, so call it off the I/O threads when those may be slow (an invalidation erasing many
// entries).
//
// Routes:
//   POST   /cache/invalidate                 body: invalidation/request.h   -> outcome
//   GET    /cache/entries?model=&tag=&namespace=&tenant=&from=&to=&limit=&cursor=&include_invalid=
//                                             -> {"data": [...], "has_more", "next_cursor"}
//   GET    /cache/entries/{cache_id}          -> one entry's metadata (invalid ones too)
//   DELETE /cache/entries/{cache_id}          -> invalidates that entry everywhere
//   GET    /cache/entry-by-hash?request_hash= -> the newest valid entry with that hash
//   GET    /cache/stats                       -> index totals (hits flushed first)
//   GET    /cache/analytics?from=&to=         -> analytics::Analytics::analytics (this gateway)
//   GET    /cache/analytics?scope=fleet       -> the fleet's statistics (every gateway on the
//          S3 bucket, merged; each one's part with its age): setFleetSource; 404 without it
//   GET    /cache/patterns?from=&to=          -> analytics::Analytics::patterns
//          (docs/analytics.md; 404 when the AdminApi was built without an Analytics)
//   GET    /cache/sizing                      -> the online miss-ratio curves of the memory and
//          disk tiers (docs/sizing.md): setSizingSource; 404 without it (CACHE_SIZING=off)
// from/to: ISO 8601 UTC or Unix milliseconds; limit: 1..1000 (default 100).
// GET /metrics is not under /cache: the gateway routes it to metrics() (same auth).
// GET /dashboard[/...] is not either: the gateway routes it to dashboard() (ownsDashboard).
//
// Auth: with CACHE_ADMIN_TOKEN set, every request needs `Authorization: Bearer <token>`
// (compared in constant time; 401 otherwise, loopback or not); Host and Origin are not checked.
// Without it, a request is answered only when (403 otherwise) the peer is on a loopback address,
// its Host is a loopback name (localhost, 127.0.0.1, any 127.x.y.z, [::1]; with or without a
// port) and it has no Origin or a loopback one (http(s)://<loopback name>[:port]): a web page in
// the operator's browser can reach a loopback port, but then under a foreign Origin (a
// cross-site request) or a foreign Host (DNS rebinding). Auth is checked before routing, so
// unauthorized clients learn nothing about which paths exist.
// CSRF: the state-changing routes (POST /cache/invalidate, DELETE /cache/entries/{id}) need
// `Content-Type: application/json` (parameters such as charset allowed; 415 otherwise), token
// or not: a cross-site page can send a POST without a CORS preflight only as text/plain, a form
// or with no type. A DELETE without a body may omit it (no browser sends a cross-site DELETE
// without a preflight, which the gateway does not grant).
// Errors: {"error": {"message", "type"}} with 400, 401, 403, 404, 405 (with Allow), 415 and 500
// (the index failed).
#include <array>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "analytics/analytics.h"
#include "analytics/metrics.h"
#include "analytics/near_miss.h"
#include "config/config.h"
#include "index/index.h"
#include "invalidation/invalidator.h"

namespace llmcache::admin {

class AdminApi {
 public:
  struct Reply {
    int status = 200;
    std::string body;
    std::string contentType = "application/json";
    std::vector<std::pair<std::string, std::string>> headers = {};  // Allow, WWW-Authenticate
  };

  // Who asks, as the transport saw it: the request's headers as received (empty when absent)
  // and whether the peer's address is loopback. Views: valid for the call only.
  struct Caller {
    std::string_view authorization = {};  // Authorization
    std::string_view host = {};           // Host
    std::string_view origin = {};         // Origin
    std::string_view contentType = {};    // Content-Type
    bool fromLoopback = false;
  };

  // Whether host (a Host header: name[:port]) names this machine's loopback interface:
  // localhost, 127.x.y.z or [::1], each with or without a port. Case-insensitive.
  static bool isLoopbackHost(std::string_view host);
  // Whether origin (an Origin header) is http:// or https:// and a loopback host (above) with
  // no path. "null" and every other scheme are not.
  static bool isLoopbackOrigin(std::string_view origin);

  // Not owned; all must outlive the AdminApi. The token is read from config once, here.
  // analytics may be null: /cache/analytics and /cache/patterns then answer 404.
  AdminApi(index::Index& index, invalidation::Invalidator& invalidator,
           const config::Config& config, analytics::Analytics* analytics = nullptr);

  // GET /cache/explain?key=K: the miss explainer's finding for a recent miss of cache key K (the
  // gateway keeps the last few hundred misses' bodies; docs/record-replay.md). nullopt: no recent
  // miss of that key. Called on the admin pool. Set before the first request; unset: 404.
  using Explainer = std::function<std::optional<Json>(std::string_view cacheKey)>;
  void setExplainer(Explainer explainer) { explainer_ = std::move(explainer); }
  // GET /cache/patterns then adds `near_misses` (NearMissPatterns::report). Before the first
  // request; not owned.
  void setNearMisses(const analytics::NearMissPatterns* nearMisses) { nearMisses_ = nearMisses; }
  // Where GET /cache/analytics?scope=fleet gets the merged statistics of every gateway on the
  // bucket (cache::s3::S3Tier::globalStatistics's "statistics"; docs/analytics.md, Fleet scope).
  // Set once, before serving. It does network I/O: the admin pool calls it.
  using FleetSource = std::function<Result<Json>()>;
  void setFleetSource(FleetSource source) { fleetSource_ = std::move(source); }

  // Where GET /cache/sizing gets its body (sizing::reportToJson, docs/sizing.md). Set once,
  // before serving; cheap (a copy of the estimator's counters). Unset: 404.
  using SizingSource = std::function<Json()>;
  void setSizingSource(SizingSource source) { sizingSource_ = std::move(source); }
  // GET /cache/semantic: the semantic cache's figures (docs/semantic.md), from the gateway.
  // nullopt (or unset): the semantic cache is off, a 404. Set before the first request.
  using SemanticSource = std::function<std::optional<Json>()>;
  void setSemanticSource(SemanticSource source) { semanticSource_ = std::move(source); }

  // Whether target's path is one of ours (/cache or below): the gateway routes those here.
  static bool owns(std::string_view target);

  // target: the request-target as received, path and optional ?query (percent-encoded).
  // Thread-safe.
  Reply handle(std::string_view method, std::string_view target, std::string_view body,
               const Caller& caller);

  // GET /metrics: the Prometheus text of `metrics` (Content-Type text/plain; version=0.0.4),
  // behind the same auth as /cache/* (Prometheus sends the token with `authorization:` /
  // `bearer_token` in its scrape config). 405 for another method. Thread-safe, lock-free reads.
  Reply metrics(std::string_view method, const analytics::Metrics& metrics,
                const Caller& caller) const;
  static constexpr std::string_view kMetricsContentType =
      "text/plain; version=0.0.4; charset=utf-8";

  // Whether target's path is the dashboard's (/dashboard or below): the gateway routes those to
  // dashboard(). Query strings are ignored.
  static bool ownsDashboard(std::string_view target);

  // The dashboard (src/admin/dashboard/, embedded in the binary at build time; docs/dashboard.md):
  //   GET /dashboard, /dashboard/  -> the page (text/html)
  //   GET /dashboard/chart.js      -> Chart.js (vendored UMD build)
  //   GET /dashboard/app.js, /dashboard/app.css
  // 404 for other paths under /dashboard, 405 (Allow: GET) for other methods. The files hold no
  // data and no token: the page reads /cache/analytics and /cache/patterns with the token the user
  // gives it. Auth: without CACHE_ADMIN_TOKEN, loopback clients, Host and Origin only (403), as
  // /cache/*; with a token the files are served without it (a browser cannot send a bearer header
  // when it opens a page) and every figure stays behind the token. A wrong token in
  // `caller.authorization` is still 401.
  // Replies carry a Content-Security-Policy (scripts from /dashboard/ only, fetches to this
  // origin). Thread-safe, no I/O.
  Reply dashboard(std::string_view method, std::string_view target, const Caller& caller) const;

 private:
  // nullopt when the caller may proceed; else the 401/403 reply.
  std::optional<Reply> authorize(const Caller& caller) const;
  Reply invalidate(std::string_view body);
  Reply listEntries(std::string_view query);
  Reply getEntry(std::string_view cacheId);
  Reply deleteEntry(std::string_view cacheId);
  Reply entryByHash(std::string_view query);
  Reply stats();
  Reply analyticsReport(std::string_view query, bool patterns);
  Reply explain(std::string_view query);
  Reply fleetReport();

  index::Index& index_;
  invalidation::Invalidator& invalidator_;
  analytics::Analytics* analytics_;
  Explainer explainer_;
  const analytics::NearMissPatterns* nearMisses_ = nullptr;
  FleetSource fleetSource_;
  SizingSource sizingSource_;
  SemanticSource semanticSource_;
  bool tokenSet_;
  std::array<unsigned char, 32> tokenDigest_{};  // SHA-256 of the token: fixed-length comparison
};

}  // namespace llmcache::admin
