#pragma once
// relay(): one upstream call relayed to the client, shared by misses and pass-through. Once
// the upstream's head is in, `decide` says whether the answer goes to the client as it arrives
// (a stream: the head is written with the returned fields, then every chunk) or is buffered
// for the caller to answer with. A client that stops reading cancels the upstream call, unless
// RelayOptions::continueWithoutClient says someone else still wants the answer (a flight's
// followers): the call then goes on, read as fast as it comes, until it ends or that changes.
//
// Back-pressure: a streamed answer is read from the upstream only as fast as the client takes
// it. Between the two sit UpstreamCall's buffer (UpstreamCall::kMaxQueued, 1 MiB: beyond it
// the transfer pauses until the relay takes the bytes) and the piece being written, so a slow
// reader costs about 2 MiB per connection, whatever the size of the body. What the caller asks
// to keep is kept whole all the same: a buffered answer (a miss that is judged before it is
// answered) and, with RelayOptions::keepStreamedBody, a streamed one (a miss stored once
// complete). Pass-through keeps nothing. The upstream's total timeout keeps running while the
// call waits for the client.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/sse.h"
#include "http/server.h"
#include "upstream/client.h"

namespace llmcache::gateway {

// nullopt: buffer the answer; fields: stream it with these headers.
using StreamDecision = std::function<std::optional<http::Fields>(const upstream::ResponseHead&)>;

struct RelayOptions {
  bool keepStreamedBody = true;  // a streamed answer's bytes are also kept in RelayResult::body
  bool parseSse = false;         // a streamed answer's events are parsed into RelayResult::events
  // With parseSse: the events for which it is true are recorded but not sent to the client
  // (the client then gets each other event as formatSse writes it, not the upstream's bytes).
  std::function<bool(const SseEvent&)> hideEvent;
  // With parseSse: called with every event of a streamed answer, in order, before the client
  // gets it; `hidden` is hideEvent's verdict (false without hideEvent).
  std::function<void(const SseEvent&, bool hidden)> onEvent;
  // Asked when the client is gone, and again at each later step: true keeps the upstream call
  // going without a client; false (or unset) cancels it.
  std::function<bool()> continueWithoutClient;
};

struct RelayResult {
  upstream::ResponseHead head;
  std::string body;
  std::vector<SseEvent> events;
  bool streamed = false;  // the head went to the client (w.started())
  // The client stopped reading; the upstream call was cancelled, unless continueWithoutClient
  // kept it going (then `done` says how it ended).
  bool clientGone = false;
  Result<void> done = makeError(Errc::Unavailable, "no answer");  // the transfer's outcome
  int64_t latencyMs = 0;  // from the start of the call to its end
};

http::net::awaitable<RelayResult> relay(upstream::UpstreamClient& client, upstream::Request request,
                                        http::ResponseWriter& w, const StreamDecision& decide,
                                        RelayOptions options = {});

}  // namespace llmcache::gateway
