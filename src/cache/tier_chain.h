#pragma once
// TierChain: the cache as the gateway sees it (DESIGN.md, Life of a request, steps 4 and 8):
// tiers ordered fastest first (memory -> disk -> s3), lookups that fall through them and
// promote what they find, inserts and erases that reach every tier.
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "cache/tier.h"
#include "common/clock.h"

namespace llmcache::cache {

struct ChainHit {
  EntryPtr entry;
  std::string_view layer;  // the tier's name(); valid as long as the tier lives
};

class TierChain {
 public:
  // tiers: fastest first; not owned, must outlive the chain. clock decides expiry.
  TierChain(std::vector<CacheTier*> tiers, const Clock& clock);

  // The first tier holding a servable entry under cacheKey wins; the entry is then inserted into
  // every tier above it (promotion), so the next lookup is answered sooner.
  // Not servable, and so a miss in that tier, the chain going on to the next one:
  //   - the stored request_hash differs from requestHash (a cache_key collision);
  //   - the entry has expired (expires_at <= clock.now());
  //   - the tier answered an error (counted in errors(tier)).
  // nullopt: no tier had a servable entry. Never throws a tier's failure at the caller.
  // Thread-safe. Race: two lookups may promote the same entry twice; both write equal data.
  std::optional<ChainHit> lookup(std::string_view cacheKey, std::string_view requestHash);

  // Stores entry in every tier. A tier's error is counted and the other tiers still get it.
  void insert(EntryPtr entry);

  // Removes cacheKey from every tier. True when any tier held it. Errors are counted.
  bool erase(std::string_view cacheKey);

  size_t size() const { return tiers_.size(); }
  CacheTier& tier(size_t i) const { return *tiers_.at(i); }
  // Errors tier i answered (lookup, insert, promotion or erase) since construction.
  uint64_t errors(size_t tier) const { return errors_.at(tier)->load(std::memory_order_relaxed); }

 private:
  void countError(size_t tier) { errors_[tier]->fetch_add(1, std::memory_order_relaxed); }

  std::vector<CacheTier*> tiers_;
  const Clock& clock_;
  std::vector<std::unique_ptr<std::atomic<uint64_t>>> errors_;
};

}  // namespace llmcache::cache
