#pragma once
// The typed events of the cache's tiers, for whoever keeps a record of them (the index, the
// metrics): cache::TieredCache delivers them to its TierObservers (tiered_cache.h says on which
// thread each kind arrives).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cache/entry.h"
#include "cache/tier.h"
#include "common/result.h"

namespace llmcache::cache {

// What observers of a store may want beyond the entry (the index keeps the prompt signature
// for the near-duplicate finder). Opaque to the tiers.
struct StoreNote {
  uint64_t promptSimhash = 0;
  std::string promptPreview;
};

// A typed event from the tiers. Pointers are valid for the duration of the call only.
struct TierEvent {
  enum class Kind : uint8_t {
    Stored,    // entry is now in `tier` (for S3 through the outbox: journaled for upload)
    Promoted,  // entry, found in `source`, was copied into `tier`
    Erased,    // cacheKey was removed from `tier`
    Evicted,   // cacheKey was dropped by `tier` to stay within its bounds
    Failed,    // an operation on `tier` failed: `op`, `error`
    Hit,       // lookup() found `entry` in `tier` and returned it
  };
  enum class Op : uint8_t { Lookup, Insert, Erase };
  Kind kind;
  TierId tier;
  std::string_view cacheKey = {};
  const Entry* entry = nullptr;       // Stored, Promoted
  std::optional<TierId> source = {};  // Promoted
  const StoreNote* note = nullptr;    // Stored, Promoted: may be null
  uint64_t storedBytes = 0;           // Stored, Promoted: CacheTier::storedBytes (0: not said)
  Op op = Op::Insert;                 // Failed
  const Error* error = nullptr;       // Failed
};

// Delivery: Stored, Promoted and Evicted on the cache's writer thread (an eviction is posted
// there, so it is announced after the store that caused it and in order with the others) (an
// observer may block: the index writes SQLite there); Erased on the thread that erased (never a
// request thread: the invalidator runs on the admin pool, the purger or the CLI); Hit and Failed on
// any thread, request threads included, so an observer must only count, queue or log them (the
// index queues a hit count). Observers must not call back into the cache.
class TierObserver {
 public:
  virtual ~TierObserver() = default;
  virtual void onTierEvent(const TierEvent& event) = 0;
};

}  // namespace llmcache::cache
