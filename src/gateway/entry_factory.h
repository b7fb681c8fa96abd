#pragma once
// EntryFactory: the cache entry of an answer (docs/entry-format.md): ids, the request and the
// answer as their bytes were sent, tokens and cost (the upstream's usage and the pricing table),
// latency, expiry (x-llmcache-ttl, else the first CACHE_MODEL_TTLS rule matching the model,
// else CACHE_TTL), tags, namespace, tenant.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "api/request.h"
#include "cache/entry.h"
#include "cache/tier.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/sse.h"
#include "key/cache_key.h"
#include "upstream/pricing.h"

namespace llmcache::gateway {

// Everything the entry records about the request.
struct EntryRequest {
  key::Endpoint endpoint;
  const key::CacheKey& key;
  const api::RequestInfo& info;
  std::string platform;
  TimePoint received;
  std::optional<int64_t> ttl;  // x-llmcache-ttl
  std::vector<std::string> tags;
  std::string keyNamespace;
  std::string tenant;
};

// A complete, storable answer.
struct StorableAnswer {
  int status = 200;
  std::string requestBytes;      // the request body as sent (valid JSON: it was parsed)
  std::string responseBytes;     // the answer as sent, or the assembled stream's JSON
  const Json& parsed;            // the answer's JSON (usage)
  std::vector<SseEvent> events;  // the recorded stream, when it was streamed
  int64_t latencyMs = 0;
  // The provider's headers that hits replay (already filtered: upstream::isReplayableHeader).
  std::vector<std::pair<std::string, std::string>> headers;
};

class EntryFactory {
 public:
  // maxClientTtlSeconds: CACHE_TTL_MAX, the most a client's x-llmcache-ttl may ask for (0: no
  // cap); a client's 0 ("never expires") is then capped too.
  EntryFactory(const upstream::PricingTable& pricing, int64_t defaultTtlSeconds,
               std::vector<std::pair<std::string, int64_t>> modelTtls, const Clock& clock,
               int64_t maxClientTtlSeconds = 0);
  cache::EntryPtr make(const EntryRequest& request, StorableAnswer answer) const;
  // The time to live of an answer of `model`, in seconds; 0: never expires.
  int64_t ttlFor(const std::string& model, std::optional<int64_t> requested) const;

 private:
  const upstream::PricingTable& pricing_;
  int64_t defaultTtl_;
  std::vector<std::pair<std::string, int64_t>> modelTtls_;  // CACHE_MODEL_TTLS: glob, seconds
  const Clock& clock_;
  int64_t maxClientTtl_;
};

}  // namespace llmcache::gateway
