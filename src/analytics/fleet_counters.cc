#include "analytics/fleet_counters.h"

#include <algorithm>

namespace llmcache::analytics {

namespace {

Json count(uint64_t n) { return Json::integer(static_cast<int64_t>(n)); }

}  // namespace

FleetCounters::Figures& FleetCounters::label(std::map<std::string, Figures>& m,
                                             const std::string& name) {
  auto it = m.find(name);
  if (it != m.end()) return it->second;
  if (m.size() >= options_.maxLabels) return m["other"];
  return m[name];
}

void FleetCounters::observe(const Event& e) {
  const bool hit = e.outcome == Outcome::Hit;
  std::lock_guard lock(mutex_);
  ++requests_;
  if (!isCacheable(e.outcome)) return;
  ++cacheable_;
  if (isMiss(e.outcome)) ++misses_;
  if (e.outcome == Outcome::Coalesced) ++coalesced_;
  Figures& m = label(byModel_, e.model.empty() ? std::string("none") : e.model);
  Figures& p = label(byPlatform_, e.platform.empty() ? std::string("none") : e.platform);
  ++m.requests;
  ++p.requests;
  if (!hit) return;
  ++hits_;
  ++hitsByTier_[e.tier.empty() ? std::string("none") : e.tier];
  tokensSaved_ += static_cast<uint64_t>(std::max<int64_t>(0, e.tokensIn + e.tokensOut));
  costSaved_ += e.costSaved;
  latencySavedMs_ += static_cast<double>(e.latencySavedMs);
  for (Figures* f : {&m, &p}) {
    ++f->hits;
    f->costSaved += e.costSaved;
    f->latencySavedMs += static_cast<double>(e.latencySavedMs);
  }
}

Json FleetCounters::snapshot() const {
  std::lock_guard lock(mutex_);
  auto labels = [](const std::map<std::string, Figures>& m) {
    Json out = Json::object();
    for (const auto& [name, f] : m) {
      Json j = Json::object();
      j.set("requests", count(f.requests))
          .set("hits", count(f.hits))
          .set("cost_saved_usd", Json::number(f.costSaved))
          .set("latency_saved_ms", Json::number(f.latencySavedMs));
      out.set(name, std::move(j));
    }
    return out;
  };
  Json tiers = Json::object();
  for (const auto& [tier, n] : hitsByTier_) tiers.set(tier, count(n));
  Json o = Json::object();
  o.set("requests", count(requests_))
      .set("cacheable", count(cacheable_))
      .set("hits", count(hits_))
      .set("misses", count(misses_))
      .set("coalesced", count(coalesced_))
      .set("hits_by_tier", std::move(tiers))
      .set("cost_saved_usd", Json::number(costSaved_))
      .set("latency_saved_ms", Json::number(latencySavedMs_))
      .set("tokens_saved", count(tokensSaved_))
      .set("by_model", labels(byModel_))
      .set("by_platform", labels(byPlatform_));
  return o;
}

}  // namespace llmcache::analytics
