#include "gateway/relay.h"

#include <algorithm>
#include <charconv>

#include "api/sse_parser.h"
#include "gateway/upstream_call.h"
#include "upstream/headers.h"

namespace llmcache::gateway {

namespace net = http::net;

namespace {

// A buffered answer is read into one string sized once by its declared length (appending an
// 8 MiB answer in pieces would leave up to twice its size allocated, and the gateway keeps
// that string as the stored answer); more than this is not reserved up front.
constexpr size_t kMaxReserve = size_t{64} << 20;

size_t declaredLength(const upstream::ResponseHead& head) {
  size_t declared = 0;
  if (auto cl = upstream::findHeader(head.headers, "content-length"))
    std::from_chars(cl->data(), cl->data() + cl->size(), declared);
  return std::min(declared, kMaxReserve);
}

}  // namespace

net::awaitable<RelayResult> relay(upstream::UpstreamClient& client, upstream::Request request,
                                  http::ResponseWriter& w, const StreamDecision& decide,
                                  RelayOptions options) {
  RelayResult out;
  const auto t0 = std::chrono::steady_clock::now();
  auto call = UpstreamCall::start(client, std::move(request), co_await net::this_coro::executor);
  api::SseParser parser;
  bool cancelled = false;
  // The client is gone (or still gone at a later step): go on only if someone else wants it.
  auto clientLeft = [&] {
    out.clientGone = true;
    if (cancelled) return;
    if (!options.continueWithoutClient || !options.continueWithoutClient()) {
      cancelled = true;
      call->cancel();
    }
  };
  for (;;) {
    UpstreamCall::Step step = co_await call->next();
    if (out.clientGone) clientLeft();
    if (step.head) {
      out.head = std::move(*step.head);
      if (auto fields = decide(out.head)) {
        out.streamed = true;
        if (!co_await w.beginStream(static_cast<http::bhttp::status>(out.head.status), *fields))
          clientLeft();
      } else {
        out.body.reserve(declaredLength(out.head));
      }
    }
    if (!step.data.empty()) {
      if (out.streamed) {
        std::string shown;  // with hideEvent: what the client gets of this piece
        if (options.parseSse) {
          for (auto& e : parser.feed(step.data)) {
            const bool hidden = options.hideEvent && options.hideEvent(e);
            if (options.hideEvent && !hidden) shown += api::formatSse(e);
            if (options.onEvent) options.onEvent(e, hidden);
            out.events.push_back(std::move(e));
          }
        }
        const std::string& toClient = options.hideEvent ? shown : step.data;
        // Nothing more is written once the client is gone.
        if (!out.clientGone && !toClient.empty() && !co_await w.write(toClient)) clientLeft();
        if (options.keepStreamedBody) out.body += step.data;
      } else if (out.body.empty() && out.body.capacity() < step.data.size()) {
        out.body = std::move(step.data);  // no length declared: no copy of the first piece
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
