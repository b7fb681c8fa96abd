#pragma once
// Event: one record per request the gateway answered (docs/analytics.md). The gateway fills it
// once the answer is out and hands it to EventRecorder::record (stored in the index's events
// table) and Metrics::observe (Prometheus counters).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "analytics/outcome.h"
#include "common/clock.h"

namespace llmcache::analytics {

struct Event {
  TimePoint time{};      // when the answer was complete (or the request refused)
  std::string cacheKey;  // empty when none was computed (BYPASS, INVALID)
  std::string model;     // as requested
  std::string platform;  // openai, openrouter, anthropic, groq, ...
  std::string provider;  // the model id's vendor prefix, or empty
  std::string endpoint;  // openai.chat, openai.completions, openai.embeddings, anthropic.messages
  Outcome outcome = Outcome::Miss;  // stored as outcomeName() (the x-llmcache-status value)
  std::string tier;      // the tier that answered a HIT: memory, disk, s3; empty otherwise
  double latencyMs = 0;  // this request's latency at the gateway, request in to answer out
  int64_t tokensIn = 0;  // usage of the answer served (for a HIT: the stored entry's)
  int64_t tokensOut = 0;
  double cost = 0;  // US dollars this request spent upstream: 0 for HIT and COALESCED
  double costSaved =
      0;  // HIT: the stored entry's cost_total; COALESCED: the shared answer's cost; else 0
  int64_t latencySavedMs =
      0;                   // HIT (and COALESCED, optional): the stored entry's upstream latency_ms
  std::string callerHash;  // a keyed hash of the caller (API key or `user`), never the key itself;
                           // may be empty
  std::string promptCategory;  // classifyPrompt() of the last user message; empty means "other"
  // The prompt's signature (promptSignature()): stored with the event and copied to the entry
  // row under cacheKey when that row has none yet, for the near-duplicate finder.
  std::optional<uint64_t> promptSimhash;
  std::string promptPreview;  // not stored in events; only the entry row keeps it
};

}  // namespace llmcache::analytics
