#include "gateway/entry_factory.h"

#include <fnmatch.h>

#include <algorithm>

#include "api/response.h"

namespace llmcache::gateway {

EntryFactory::EntryFactory(const upstream::PricingTable& pricing, int64_t defaultTtlSeconds,
                           std::vector<std::pair<std::string, int64_t>> modelTtls,
                           const Clock& clock, int64_t maxClientTtlSeconds)
    : pricing_(pricing),
      defaultTtl_(defaultTtlSeconds),
      modelTtls_(std::move(modelTtls)),
      clock_(clock),
      maxClientTtl_(maxClientTtlSeconds) {}

int64_t EntryFactory::ttlFor(const std::string& model, std::optional<int64_t> requested) const {
  // The client's TTL, within the operator's cap: a client must not keep entries (its own or,
  // in a global scope, everyone's) longer than the operator allows.
  if (requested)
    return maxClientTtl_ > 0 && (*requested == 0 || *requested > maxClientTtl_) ? maxClientTtl_
                                                                                : *requested;
  for (const auto& [glob, seconds] : modelTtls_)
    if (fnmatch(glob.c_str(), model.c_str(), 0) == 0) return seconds;
  return defaultTtl_;
}

cache::EntryPtr EntryFactory::make(const EntryRequest& r, StorableAnswer a) const {
  auto e = std::make_shared<cache::Entry>();
  e->cacheId = cache::newCacheId();
  e->cacheKey = r.key.cacheKey;
  e->requestHash = r.key.requestHash;
  e->endpoint = std::string(key::endpointName(r.endpoint));
  e->request = std::move(a.requestBytes);
  e->requestTimestamp = r.received;
  e->response = std::move(a.responseBytes);
  e->responseTimestamp = clock_.now();
  e->status = a.status;
  e->model = r.info.model;
  e->platform = r.platform;
  e->provider = upstream::providerOf(r.info.model);
  const api::Usage usage = api::extractUsage(r.endpoint, a.parsed);
  e->tokensInput = usage.inputTokens;
  e->tokensOutput = usage.outputTokens;
  if (usage.reportedCostUsd) {
    e->costTotal = *usage.reportedCostUsd;
  } else if (auto price = pricing_.find(r.info.model)) {
    const upstream::Cost c = upstream::costOf(*price, usage.inputTokens, usage.outputTokens);
    e->costInput = c.input;
    e->costOutput = c.output;
    e->costTotal = c.total;
  }
  e->latencyMs = a.latencyMs;
  e->lastAccessed = e->responseTimestamp;
  // More than 100 years is forever in practice; the cap keeps the sum inside TimePoint's range
  // (a header of 9223372036854775807 seconds would overflow its nanoseconds).
  constexpr int64_t kMaxTtlSeconds = int64_t{100} * 365 * 24 * 3600;
  const int64_t ttl = ttlFor(r.info.model, r.ttl);
  if (ttl > 0)
    e->expiresAt = e->responseTimestamp + std::chrono::seconds(std::min(ttl, kMaxTtlSeconds));
  e->tags = r.tags;
  e->cacheNamespace = r.keyNamespace;
  e->tenant = r.tenant;
  e->sseEvents = std::move(a.events);
  e->responseHeaders = std::move(a.headers);
  return e;
}

}  // namespace llmcache::gateway
