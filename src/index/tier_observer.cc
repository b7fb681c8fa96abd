#include "index/tier_observer.h"

#include <optional>

namespace llmcache::index {

void IndexObserver::onTierEvent(const cache::TierEvent& event) {
  using Kind = cache::TierEvent::Kind;
  if (event.kind == Kind::Hit && event.entry) {
    // Queued in memory, written in batches by the index's own thread: no SQLite here.
    index_.recordHit(event.entry->cacheId, clock_.now());
    return;
  }
  if (event.kind == Kind::Evicted) {
    // On the cache's writer thread, in order with the stores; queued, written in batches.
    index_.recordEviction(event.cacheKey, cache::tierBit(event.tier));
    return;
  }
  if ((event.kind != Kind::Stored && event.kind != Kind::Promoted) || !event.entry) return;
  unsigned tiers = cache::tierBit(event.tier);
  if (event.source) tiers |= cache::tierBit(*event.source);
  const size_t raw = event.entry->approxBytes();
  std::optional<Error> error;
  // size_stored: what the tier says it holds (the disk tier: the file, compressed and sealed as
  // configured), else left to the tiers that say (0).
  if (auto r = index_.upsert(*event.entry, tiers, event.storedBytes, raw); !r) {
    error = r.error();
  } else if (event.note && event.note->promptSimhash) {
    auto s = index_.setPromptSignature(event.entry->cacheKey, event.note->promptSimhash,
                                       event.note->promptPreview);
    if (!s) error = s.error();
  }
  if (error) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    warnLimited(log_, "index: could not record entry {} in the {} tier: {}", event.entry->cacheId,
                cache::tierName(event.tier), error->message);
  }
}

}  // namespace llmcache::index
