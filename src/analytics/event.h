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
  std::string tier;  // the tier that answered a HIT: memory, disk, s3; empty otherwise
  // A HIT served by similarity (x-llmcache-match: semantic, docs/semantic.md), not by its key.
  bool semantic = false;
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
  // The key's scope (the tenant: a keyed hash of the credential, a header value, or empty when
  // unscoped) and x-llmcache-namespace, as the entry row has them.
  std::string tenant;
  std::string keyNamespace;
  // seedHashOf() the request_hash this request would have had under `seed` normalization: two
  // requests that `seed` would merge have the same one (the scope and namespace are in the hash).
  // 0: not known. Feeds /cache/patterns' normalize_prompts.
  uint64_t seedHash = 0;
};

// The first 16 hex digits of a request_hash (key spec v1: lowercase hex MD5) as a 64-bit number:
// the Event's seedHash. 0 for anything else (not a hash: unknown); a hash whose 64 bits are 0
// gives 1, so that 0 keeps meaning unknown.
constexpr uint64_t seedHashOf(std::string_view requestHash) {
  if (requestHash.size() < 16) return 0;
  uint64_t h = 0;
  for (size_t i = 0; i < 16; ++i) {
    const char c = requestHash[i];
    uint64_t digit = 0;
    if (c >= '0' && c <= '9')
      digit = static_cast<uint64_t>(c - '0');
    else if (c >= 'a' && c <= 'f')
      digit = static_cast<uint64_t>(c - 'a' + 10);
    else
      return 0;
    h = (h << 4) | digit;
  }
  return h == 0 ? 1 : h;
}

}  // namespace llmcache::analytics
