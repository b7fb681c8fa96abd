#include "cache/tier_chain.h"

namespace llmcache::cache {

TierChain::TierChain(std::vector<CacheTier*> tiers, const Clock& clock)
    : tiers_(std::move(tiers)), clock_(clock) {
  for (size_t i = 0; i < tiers_.size(); ++i)
    errors_.push_back(std::make_unique<std::atomic<uint64_t>>(0));
}

std::optional<ChainHit> TierChain::lookup(std::string_view cacheKey, std::string_view requestHash) {
  for (size_t i = 0; i < tiers_.size(); ++i) {
    auto found = tiers_[i]->lookup(cacheKey);
    if (!found) {
      countError(i);
      continue;
    }
    if (!*found) continue;
    EntryPtr entry = std::move(**found);
    // A lower tier may still hold a servable entry (e.g. an expired copy in memory whose
    // refreshed version reached disk through another instance), so the chain goes on.
    if (!entry || entry->requestHash != requestHash || entry->expired(clock_.now())) continue;
    for (size_t above = 0; above < i; ++above)
      if (!tiers_[above]->insert(entry)) countError(above);
    return ChainHit{std::move(entry), tiers_[i]->name()};
  }
  return std::nullopt;
}

void TierChain::insert(EntryPtr entry) {
  for (size_t i = 0; i < tiers_.size(); ++i)
    if (!tiers_[i]->insert(entry)) countError(i);
}

bool TierChain::erase(std::string_view cacheKey) {
  bool any = false;
  for (size_t i = 0; i < tiers_.size(); ++i) {
    auto r = tiers_[i]->erase(cacheKey);
    if (!r)
      countError(i);
    else
      any = any || *r;
  }
  return any;
}

}  // namespace llmcache::cache
