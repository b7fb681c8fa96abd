#pragma once
// IndexObserver: keeps the vector index to the entries the cache holds. An entry erased
// (invalidation, expiry, DELETE) loses its vector at once; an entry evicted from the last local
// tier (the disk tier, or memory when it is the only one) loses it too, since a semantic hit
// could no longer be served from here. Evictions from an upper tier keep it (the entry lives on
// below). A vector whose entry has gone some other way is found stale when it is matched (the
// lookup misses) and removed then.
#include "cache/tier_events.h"
#include "semantic/vector_index.h"

namespace llmcache::semantic {

class IndexObserver : public cache::TierObserver {
 public:
  IndexObserver(VectorIndex& index, cache::TierId lastLocalTier)
      : index_(index), last_(lastLocalTier) {}
  void onTierEvent(const cache::TierEvent& event) override {
    using Kind = cache::TierEvent::Kind;
    if (event.kind == Kind::Erased || (event.kind == Kind::Evicted && event.tier == last_))
      index_.remove(event.cacheKey);
  }

 private:
  VectorIndex& index_;
  cache::TierId last_;
};

}  // namespace llmcache::semantic
