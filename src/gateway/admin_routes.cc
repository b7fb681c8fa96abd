// The gateway's own routes besides the API: /cache/* (admin::AdminApi), /metrics, /dashboard.
#include <spdlog/spdlog.h>

#include "common/offload.h"
#include "gateway/context.h"

namespace llmcache::gateway {

namespace bhttp = http::bhttp;
namespace net = http::net;

namespace {
// What the admin API checks about who asks (AdminApi::Caller), copied off the request: the
// admin calls below run on the admin pool, after the request's buffers may be gone.
struct CallerFacts {
  std::string authorization, host, origin, contentType;
  bool fromLoopback = false;

  CallerFacts(const http::Request& r, const http::ResponseWriter& w)
      : authorization(r[bhttp::field::authorization]),
        host(r[bhttp::field::host]),
        origin(r[bhttp::field::origin]),
        contentType(r[bhttp::field::content_type]),
        fromLoopback(w.peerIsLoopback()) {}

  admin::AdminApi::Caller view() const {
    return {.authorization = authorization,
            .host = host,
            .origin = origin,
            .contentType = contentType,
            .fromLoopback = fromLoopback};
  }
};

// An admin API reply (/cache/*, /metrics, /dashboard) as an HTTP response.
http::Response adminResponse(admin::AdminApi::Reply reply, unsigned version) {
  http::Response res{static_cast<bhttp::status>(reply.status), version};
  res.set(bhttp::field::content_type, reply.contentType);
  for (const auto& [name, value] : reply.headers) res.set(name, value);
  res.body() = std::move(reply.body);
  return res;
}
}  // namespace

net::awaitable<void> Gateway::serveMetrics(Context& ctx, http::ResponseWriter& w) {
  deps_.metrics->setUpstreamErrors(upstreamErrors());
  auto job = offload(metricsPool_, [this, method = std::string(ctx.request.method_string()),
                                    caller = CallerFacts(ctx.request, w)] {
    if (deps_.refreshGauges) deps_.refreshGauges();
    return deps_.admin->metrics(method, *deps_.metrics, caller.view());
  });
  admin::AdminApi::Reply reply = co_await std::move(job);
  http::Response res = adminResponse(std::move(reply), ctx.request.version());
  co_await w.send(std::move(res));
}

net::awaitable<void> Gateway::serveDashboard(Context& ctx, http::ResponseWriter& w) {
  // Static files from the binary: no I/O, answered here.
  admin::AdminApi::Reply reply = deps_.admin->dashboard(
      ctx.request.method_string(), ctx.request.target(), CallerFacts(ctx.request, w).view());
  http::Response res = adminResponse(std::move(reply), ctx.request.version());
  co_await w.send(std::move(res));
}

net::awaitable<void> Gateway::serveAdmin(Context& ctx, http::ResponseWriter& w) {
  // Off the I/O threads: an invalidation runs SQLite queries and tier erases, and its
  // publication for the other gateways on the bucket an S3 write.
  auto job = offload(adminPool_, [this, method = ctx.request.method(),
                                  methodName = std::string(ctx.request.method_string()),
                                  target = std::string(ctx.request.target()), path = ctx.route.path,
                                  body = ctx.request.body(), caller = CallerFacts(ctx.request, w)] {
    admin::AdminApi::Reply reply = deps_.admin->handle(methodName, target, body, caller.view());
    if ((!deps_.broadcast && !deps_.fleet) || reply.status != 200) return reply;
    std::optional<Json> record;
    if (method == bhttp::verb::post && path == "/cache/invalidate") {
      if (auto parsed = parseJson(body)) record = std::move(*parsed);
    } else if (method == bhttp::verb::delete_ && path.rfind("/cache/entries/", 0) == 0) {
      record = Json::object().set("cache_id", Json::string(path.substr(15)));
    }
    if (!record) return reply;
    // Redis first (the others drop their copies at once), S3 as the durable fallback.
    if (deps_.fleet) deps_.fleet->publishInvalidation(*record);
    if (deps_.broadcast)
      if (auto r = deps_.broadcast->publish(*record); !r)
        spdlog::warn("could not publish the invalidation to S3: {}", r.error().message);
    return reply;
  });
  admin::AdminApi::Reply reply = co_await std::move(job);
  http::Response res = adminResponse(std::move(reply), ctx.request.version());
  co_await w.send(std::move(res));
}

}  // namespace llmcache::gateway
