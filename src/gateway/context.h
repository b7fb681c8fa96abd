#pragma once
// The gateway's per-request state, shared by its translation units (gateway.cc, replies.cc,
// request_event.cc, admin_routes.cc). Not part of the module's interface.
#include <optional>
#include <string>
#include <vector>

#include "gateway/gateway.h"

namespace llmcache::gateway {

// What a leader hands to the requests that waited for it: only a complete, storable answer is
// shared. Anything else (an error of any status, a cut stream, the leader's client gone) is
// `entry == nullptr`, and each waiter then makes its own upstream call: a failure is never
// shared (one caller's bad key must not become another caller's 401).
struct Gateway::FlightResult {
  cache::EntryPtr entry;
};

// A request the semantic cache may answer or index: what is embedded and its partition, the
// caller's credential for the embeddings call, the vector once known, and the nearest entry of
// its partition when one was looked up (the shadow pair's neighbour).
struct Gateway::SemanticState {
  semantic::SemanticRequest request;
  std::string credential;
  std::shared_ptr<const semantic::Vector> vector;
  std::optional<semantic::Match> neighbour;
};

// Everything known about one request while it is handled.
struct Gateway::Context {
  Context(http::Request& r, TimePoint t) : request(r), received(t) {}
  http::Request& request;
  TimePoint received;
  Route route;
  api::RequestInfo info{};
  key::CacheKey key;  // without `canonical` (not needed past the key; it is as large as the body)
  CacheControl cacheControl;
  RequestControls controls;
  uint64_t generation = 0;  // the invalidation generation when the miss started
  // What the analytics event reports (filled as the request goes).
  std::optional<Outcome> outcome;
  bool recorded = false;  // the event went out (settle() does it before the answer is sent)
  std::string tier;
  cache::EntryPtr answer;  // the entry served or stored
  std::shared_ptr<const KeyMemo::Value> keyInfo;
  // x-llmcache-miss-reason of a miss that asked (x-llmcache-explain: 1); empty otherwise.
  std::string missReason;
  // The flight this request leads, if any. It is completed before the leader's client sees the
  // end of its answer: a request that client sends next must start a new flight, not join the
  // finished one (a Cache-Control: no-cache right after a MISS would otherwise be COALESCED
  // with the old answer and never reach the upstream).
  std::shared_ptr<Flights::Flight> flight;
  bool published = false;
  // The semantic cache (null when off or the request is not semantic), and the match served.
  std::shared_ptr<SemanticState> semantic;
  std::optional<semantic::Match> semanticHit;

  api::Provider provider() const { return route.provider; }
};

// The cache key as an x-llmcache-key value (control characters percent-encoded).
std::string keyHeaderValue(std::string_view key);

// Completes the flight a request leads (Context::flight), once: its result to the waiters, then
// the end of its stream to the live followers (who read the entry from the log). A template so
// that it can name Gateway's private Context and FlightResult through deduction.
template <class Flights, class Ctx, class ResultPtr>
inline void publish(Flights& flights, Ctx& ctx, ResultPtr result) {
  if (!ctx.flight || ctx.published) return;
  ctx.published = true;
  flights.complete(ctx.key.requestHash, ctx.flight, result);
  ctx.flight->shared()->finish(result ? result->entry : nullptr);
}

}  // namespace llmcache::gateway
