#pragma once
// MemoryTier: the first tier, a sharded cache of entries held as compact blocks
// (compact_entry.h), each shard ordered by an eviction policy (cache/eviction.h).
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/eviction.h"
#include "cache/tier.h"
#include "common/adaptive_mutex.h"

namespace llmcache::cache {

struct MemoryTierOptions {
  size_t maxEntries = 100;              // CACHE_MEMORY_ENTRIES (the seed's ~100)
  size_t maxBytes = size_t{256} << 20;  // counted with MemoryTier::chargedBytes()
  size_t shards = 8;                    // lock striping; capped at maxEntries so no shard is empty
  PolicyKind policy = kDefaultPolicy;   // CACHE_MEMORY_POLICY (docs/eviction.md)
};

// Each shard owns an equal share of both bounds (the remainder of maxEntries goes to the first
// shards) and evicts the victims its own policy names (LRU: its least recently used entries). So
// the bounds hold exactly in total, but the policy's order is per shard: with shards > 1 a
// recently used entry can be evicted before an older one in a less crowded shard. Use shards = 1
// where exact global order matters.
// An entry larger than a shard's byte share is refused with Errc::TooLarge.
class MemoryTier final : public CacheTier {
 public:
  explicit MemoryTier(MemoryTierOptions options = {});

  TierId id() const override { return TierId::Memory; }
  [[nodiscard]] Result<std::optional<EntryPtr>> lookup(std::string_view cacheKey) override;
  [[nodiscard]] Result<void> insert(EntryPtr entry) override;
  [[nodiscard]] Result<bool> erase(std::string_view cacheKey) override;
  bool keepsRequest() const override { return false; }
  void setEvictionListener(EvictionListener listener) override { onEvict_ = std::move(listener); }

  // What an entry counts against maxBytes: its compact block and the bookkeeping around it.
  static size_t chargedBytes(const Entry& entry);

  size_t entryCount() const;
  size_t byteCount() const;
  uint64_t evictions() const;

 private:
  struct Node {
    std::string block;  // packEntry(); never changed while here: the index's key views into it
    size_t bytes;       // chargedBytes
  };
  struct Shard {
    mutable AdaptiveMutex mutex;  // shared by the request threads: spins before it sleeps
    // By slot id (the policy's ids). A deque: growing it never moves a block, whose cache_key
    // the index views. A free slot has an empty block.
    std::deque<Node> slots;
    std::vector<uint32_t> freeSlots;
    std::unordered_map<std::string_view, uint32_t> index;  // views into the blocks' cache_key
    std::unique_ptr<EvictionPolicy> policy;
    size_t bytes = 0;
    size_t maxEntries = 0;
    size_t maxBytes = 0;
    uint64_t evictions = 0;
  };
  Shard& shardFor(std::string_view key);

  std::vector<std::unique_ptr<Shard>> shards_;
  EvictionListener onEvict_;
};

}  // namespace llmcache::cache
