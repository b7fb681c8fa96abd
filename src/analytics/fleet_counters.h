#pragma once
// FleetCounters: this gateway's share of the fleet statistics (issue 16, item 3;
// docs/s3-layout.md, Statistics): every answered request counted once, hits in every tier, by
// model and by platform, with the cost and upstream latency the hits saved. Every figure is a
// count or a sum, so that the figures of several gateways (and of one gateway's runs) merge by
// adding them; rates are derived after the merge (S3Tier::globalStatistics).
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "analytics/event.h"
#include "common/json.h"

namespace llmcache::analytics {

struct FleetCountersOptions {
  // Distinct model (and platform) names kept; later ones are added up under "other".
  size_t maxLabels = 100;
};

// Thread-safe. observe() takes one short lock (a few map increments, no allocation once a label
// is known); the gateway calls it once per request, after the answer is out.
class FleetCounters {
 public:
  explicit FleetCounters(FleetCountersOptions options = {}) : options_(options) {}

  void observe(const Event& event);

  // {"requests", "cacheable", "hits", "misses", "coalesced", "hits_by_tier": {tier: n},
  //  "cost_saved_usd", "latency_saved_ms", "tokens_saved",
  //  "by_model": {model: {"requests", "hits", "cost_saved_usd", "latency_saved_ms"}},
  //  "by_platform": {platform: {...the same}}}: counts since construction. requests: every
  // request; cacheable/hits/misses/coalesced by outcome.h's predicates (misses: isMiss);
  // by_model/by_platform "requests" are cacheable requests.
  Json snapshot() const;

 private:
  struct Figures {
    uint64_t requests = 0, hits = 0;
    double costSaved = 0, latencySavedMs = 0;
  };
  Figures& label(std::map<std::string, Figures>& m, const std::string& name);

  FleetCountersOptions options_;
  mutable std::mutex mutex_;
  uint64_t requests_ = 0, cacheable_ = 0, hits_ = 0, misses_ = 0, coalesced_ = 0;
  uint64_t tokensSaved_ = 0;
  double costSaved_ = 0, latencySavedMs_ = 0;
  std::map<std::string, uint64_t> hitsByTier_;
  std::map<std::string, Figures> byModel_, byPlatform_;
};

}  // namespace llmcache::analytics
