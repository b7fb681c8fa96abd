#pragma once
// IndexObserver: keeps the index's entries table in step with the tiers. Attached to the
// cache::TieredCache, it upserts a row for every Stored and Promoted event (on the cache's
// writer thread, inside the invalidation guard: a store is complete once its row is written,
// see tiered_cache.h) with the tier's bit, and the prompt signature of the store's note.
// Hit events count a hit (queued; the hit path never waits for SQLite). Erased events need
// nothing here: the invalidator marks its rows itself.
#include <atomic>
#include <cstdint>

#include "cache/tier_events.h"
#include "common/log.h"
#include "index/index.h"

namespace llmcache::index {

class IndexObserver final : public cache::TierObserver {
 public:
  explicit IndexObserver(Index& index, const Clock& clock = Clock::system())
      : index_(index), clock_(clock) {}
  void onTierEvent(const cache::TierEvent& event) override;
  // Upserts that failed (each also logged, rate-limited). A failed row is an entry that
  // invalidation cannot find by criterion (only by key), so it is counted, never dropped.
  uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }

 private:
  Index& index_;
  const Clock& clock_;
  std::atomic<uint64_t> failures_{0};
  LogLimiter log_;
};

}  // namespace llmcache::index
