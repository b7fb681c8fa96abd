#include "gateway/relay.h"

#include "api/sse_parser.h"
#include "gateway/upstream_call.h"

namespace llmcache::gateway {

namespace net = http::net;

net::awaitable<RelayResult> relay(upstream::UpstreamClient& client, upstream::Request request,
                                  http::ResponseWriter& w, const StreamDecision& decide,
                                  RelayOptions options) {
  RelayResult out;
  const auto t0 = std::chrono::steady_clock::now();
  auto call = UpstreamCall::start(client, std::move(request), co_await net::this_coro::executor);
  api::SseParser parser;
  for (;;) {
    UpstreamCall::Step step = co_await call->next();
    if (step.head) {
      out.head = std::move(*step.head);
      if (auto fields = decide(out.head)) {
        out.streamed = true;
        if (!co_await w.beginStream(static_cast<http::bhttp::status>(out.head.status), *fields)) {
          out.clientGone = true;
          call->cancel();
        }
      }
    }
    if (!step.data.empty()) {
      if (out.streamed) {
        if (options.parseSse)
          for (auto& e : parser.feed(step.data)) out.events.push_back(std::move(e));
        // Nothing more is written once the client is gone; the call was cancelled.
        if (!out.clientGone && !co_await w.write(step.data)) {
          out.clientGone = true;
          call->cancel();
        }
        if (options.keepStreamedBody) out.body += step.data;
      } else if (out.body.empty()) {
        out.body = std::move(step.data);  // usually the whole answer: no second copy
      } else {
        out.body += step.data;
      }
    }
    if (step.done) {
      out.done = std::move(*step.done);
      break;
    }
  }
  out.latencyMs =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  co_return out;
}

}  // namespace llmcache::gateway
