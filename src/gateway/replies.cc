// How the gateway answers: errors in the provider's shape, stored entries (JSON or a replayed
// stream), and a flight a request joined (its stream live, or its whole answer).
#include <boost/algorithm/hex.hpp>
#include <cstdio>
#include <iterator>

#include "api/sse_parser.h"
#include "api/stream.h"
#include "gateway/context.h"
#include "upstream/headers.h"

namespace llmcache::gateway {

namespace bhttp = http::bhttp;
namespace net = http::net;

// The cache key as an x-llmcache-key value. A key carries the model id as the client sent it,
// and a control character (a JSON "\n" or "\r\n" in "model") written raw into a header would
// split the response. Bytes below 0x20, DEL and '%' are percent-encoded (%0A); a key without
// them, as every real model id, is sent unchanged.
std::string keyHeaderValue(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (const char ch : key) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f || c == '%') {
      out += '%';
      boost::algorithm::hex(&c, &c + 1, std::back_inserter(out));
    } else {
      out += ch;
    }
  }
  return out;
}

http::Response Gateway::errorResponse(bhttp::status status, std::string message,
                                      std::string_view target) const {
  const api::Provider provider =
      target.substr(0, target.find('?')).find("/v1/messages") != std::string_view::npos
          ? api::Provider::Anthropic
          : api::Provider::OpenAi;
  http::Response res{status, 11};
  res.set(bhttp::field::content_type, "application/json");
  res.set("x-llmcache-status", outcomeName(Outcome::Invalid));
  res.body() = api::errorBody(provider, api::errorTypeForStatus(provider, static_cast<int>(status)),
                              message);
  return res;
}

net::awaitable<void> Gateway::sendError(Context& ctx, http::ResponseWriter& w, bhttp::status status,
                                        std::string_view message, Outcome outcome) {
  settle(ctx, outcome);
  http::Response res{status, ctx.request.version()};
  res.set(bhttp::field::content_type, "application/json");
  res.set("x-llmcache-status", outcomeName(outcome));
  res.body() = api::errorBody(
      ctx.provider(), api::errorTypeForStatus(ctx.provider(), static_cast<int>(status)), message);
  co_await w.send(std::move(res));
}

net::awaitable<void> Gateway::serveEntry(Context& ctx, http::ResponseWriter& w,
                                         const cache::Entry& entry, Outcome outcome,
                                         std::string_view layer) {
  ctx.tier = std::string(layer);
  settle(ctx, outcome);
  http::Response res{static_cast<bhttp::status>(entry.status ? entry.status : 200),
                     ctx.request.version()};
  for (const auto& [name, value] : entry.responseHeaders)  // the provider's, as on the miss
    if (upstream::isReplayableHeader(name)) res.set(name, value);
  res.set("x-llmcache-status", outcomeName(outcome));
  if (!layer.empty()) res.set("x-llmcache-layer", layer);
  if (ctx.semanticHit) {
    // The request's own key; the entry it was answered with is the matched one.
    res.set("x-llmcache-key", keyHeaderValue(ctx.key.cacheKey));
    res.set("x-llmcache-match", "semantic");
    char similarity[16];
    std::snprintf(similarity, sizeof similarity, "%.4f", ctx.semanticHit->similarity);
    res.set("x-llmcache-similarity", similarity);
    res.set("x-llmcache-matched-key", keyHeaderValue(entry.cacheKey));
  } else {
    res.set("x-llmcache-key", keyHeaderValue(entry.cacheKey));
  }
  const auto age =
      std::chrono::duration_cast<std::chrono::seconds>(deps_.clock.now() - entry.responseTimestamp);
  res.set(bhttp::field::age, std::to_string(std::max<int64_t>(0, age.count())));
  if (!ctx.info.stream) {
    // The stored bytes as they are: no JSON writer and no copy (ctx.answer keeps them alive).
    res.set(bhttp::field::content_type, "application/json");
    co_await w.sendView(std::move(res), entry.response);
    co_return;
  }
  res.set(bhttp::field::content_type, "text/event-stream; charset=utf-8");
  res.set(bhttp::field::cache_control, "no-cache");
  const auto key = key::parseEndpoint(entry.endpoint).value_or(*ctx.route.endpoint);
  auto parsed = parseJson(entry.response);
  const Json assembled = parsed ? std::move(*parsed) : Json::object();
  const bool includeUsage = ctx.keyInfo && ctx.keyInfo->includeUsage;
  res.body() = api::formatSse(api::fitUsageToRequest(
      key, entry.sseEvents.empty() ? api::synthesizeStream(key, assembled) : entry.sseEvents,
      includeUsage, assembled));
  co_await w.send(std::move(res));
}

net::awaitable<void> Gateway::follow(Context& ctx, http::ResponseWriter& w,
                                     std::shared_ptr<Flights::Flight> flight) {
  // Counted as a follower (the leader's call outlives its own client for us) until we are
  // answered, gone, or about to make our own call.
  struct Leave {
    Flights::Flight* flight;
    void now() {
      if (flight) std::exchange(flight, nullptr)->leave();
    }
    ~Leave() { now(); }
  } leave{flight.get()};

  if (ctx.info.stream) {
    // The leader's stream live: the recorded prefix at once, then each event as it comes.
    const bool includeUsage = ctx.keyInfo && ctx.keyInfo->includeUsage;
    StreamLog::Reader reader(flight->shared(), co_await net::this_coro::executor);
    size_t sent = 0;  // pieces of the log written (or skipped: usage) so far
    bool begun = false;
    for (;;) {
      StreamLog::Snapshot s = co_await reader.next(sent);
      if (s.state == StreamLog::State::NotAStream) break;    // its whole answer, below
      if (!begun && includeUsage && !s.carriesUsage) break;  // replayed with usage, below
      if (!s.pieces.empty()) {
        if (!begun) {
          if (!co_await w.beginStream(bhttp::status::ok, *s.head)) co_return;  // client gone
          begun = true;
        }
        std::string bytes;
        for (const auto& piece : s.pieces)
          if (includeUsage || !piece->usageOnly) bytes += piece->bytes;
        sent += s.pieces.size();
        if (!bytes.empty() && !co_await w.write(bytes)) co_return;  // gone: the others go on
        continue;
      }
      // Ended, with every recorded piece written.
      if (!begun) break;  // nothing sent: the whole answer, or our own call after a failure
      ctx.answer = s.entry;
      if (!s.entry) {
        // The stream broke after we sent some of it: broken for our client too, never complete.
        settle(ctx, Outcome::Coalesced);
        w.abort();
        co_return;
      }
      if (s.overflowed) {
        // The log gave up its pieces past its bound: the rest from the entry (one event a piece).
        std::string bytes;
        for (size_t i = sent; i < s.entry->sseEvents.size(); ++i)
          if (includeUsage || !api::isUsageOnlyChunk(s.entry->sseEvents[i]))
            bytes += api::formatSse(s.entry->sseEvents[i]);
        if (!bytes.empty() && !co_await w.write(bytes)) co_return;
      }
      settle(ctx, Outcome::Coalesced);
      co_await w.finish();
      co_return;
    }
  }

  auto result = co_await flight->wait();
  if (result->entry) {
    co_await serveFlightResult(ctx, w, *result);
    co_return;
  }
  // The leader failed (or left with no one to go on for): our own call, outside any flight.
  leave.now();
  co_await lead(ctx, w, nullptr);
}

net::awaitable<void> Gateway::serveFlightResult(Context& ctx, http::ResponseWriter& w,
                                                const FlightResult& result) {
  ctx.answer = result.entry;
  co_await serveEntry(ctx, w, *result.entry, Outcome::Coalesced, "");
}

}  // namespace llmcache::gateway
