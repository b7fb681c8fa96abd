#include "cache/memory/memory_tier.h"

#include <algorithm>
#include <functional>

#include "cache/memory/compact_entry.h"

namespace llmcache::cache {

MemoryTier::MemoryTier(MemoryTierOptions options) {
  size_t n = std::max<size_t>(1, std::min(options.shards, std::max<size_t>(1, options.maxEntries)));
  for (size_t i = 0; i < n; ++i) {
    auto s = std::make_unique<Shard>();
    s->maxEntries = options.maxEntries / n + (i < options.maxEntries % n ? 1 : 0);
    s->maxBytes = options.maxBytes / n;
    s->policy = makePolicy(options.policy);
    shards_.push_back(std::move(s));
  }
}

MemoryTier::Shard& MemoryTier::shardFor(std::string_view key) {
  return *shards_[std::hash<std::string_view>{}(key) % shards_.size()];
}

Result<std::optional<EntryPtr>> MemoryTier::lookup(std::string_view cacheKey) {
  Shard& s = shardFor(cacheKey);
  std::lock_guard lock(s.mutex);
  auto it = s.index.find(cacheKey);
  if (it == s.index.end()) return std::optional<EntryPtr>{};
  s.policy->onHit(it->second);
  return std::optional<EntryPtr>{
      std::make_shared<const Entry>(unpackEntry(s.slots[it->second].block))};
}

// What an entry costs beyond its block: its slot and the policy's per-slot state (up to ~40
// bytes: GDSF's heap slot), a hash node (next pointer, key view, slot id, hash) with its
// allocator header, and a bucket pointer. Kept at the figure of the list-based LRU it replaced
// (a list node and a hash node): within a few bytes of the new layout, and the bounds' meaning
// stays put.
static constexpr size_t kNodeOverhead =
    (16 + sizeof(std::string) + 8 + 16) + (8 + 16 + 8 + 8 + 16) + 8;

size_t MemoryTier::chargedBytes(const Entry& entry) {
  return packEntry(entry).capacity() + kNodeOverhead;
}

Result<void> MemoryTier::insert(EntryPtr entry) {
  if (!entry) return makeError(Errc::InvalidArgument, "memory tier: null entry");
  // Packed outside the lock. The request is left out: a hit never reads it.
  std::string block = packEntry(*entry);
  const size_t bytes = block.capacity() + kNodeOverhead;
  Shard& s = shardFor(entry->cacheKey);
  std::string dropped;  // old blocks released after unlocking
  std::vector<std::string> evicted;
  // The listener hears of the victims once the shard is unlocked (declared first: runs last).
  struct Announce {
    const EvictionListener& listener;
    const std::vector<std::string>& blocks;
    ~Announce() {
      if (listener)
        for (const std::string& b : blocks) listener(packedCacheKey(b));
    }
  } announce{onEvict_, evicted};
  std::lock_guard lock(s.mutex);
  if (bytes > s.maxBytes || s.maxEntries == 0)
    return makeError(Errc::TooLarge, "memory tier: entry of " + std::to_string(bytes) +
                                         " bytes exceeds the shard bound of " +
                                         std::to_string(s.maxBytes));
  uint32_t id;
  if (auto it = s.index.find(entry->cacheKey); it != s.index.end()) {
    id = it->second;
    Node& node = s.slots[id];
    s.index.erase(it);  // its key views the old block
    s.bytes -= node.bytes;
    dropped = std::move(node.block);
    node.block = std::move(block);
    node.bytes = bytes;
    s.policy->onUpdate(id, bytes, entry->costTotal);
    s.index.emplace(packedCacheKey(node.block), id);
  } else {
    if (!s.freeSlots.empty()) {
      id = s.freeSlots.back();
      s.freeSlots.pop_back();
      s.slots[id] = Node{std::move(block), bytes};
    } else {
      id = static_cast<uint32_t>(s.slots.size());
      s.slots.push_back(Node{std::move(block), bytes});
    }
    s.index.emplace(packedCacheKey(s.slots[id].block), id);
    s.policy->onInsert(id, bytes, entry->costTotal);
  }
  s.bytes += bytes;
  while (s.index.size() > s.maxEntries || s.bytes > s.maxBytes) {
    const uint32_t v = s.policy->victim(id);  // never the new entry: it alone fits both bounds
    Node& victim = s.slots[v];
    s.policy->onRemove(v);
    s.bytes -= victim.bytes;
    s.index.erase(packedCacheKey(victim.block));
    evicted.push_back(std::move(victim.block));
    victim.block = std::string();
    s.freeSlots.push_back(v);
    ++s.evictions;
  }
  return {};
}

Result<bool> MemoryTier::erase(std::string_view cacheKey) {
  Shard& s = shardFor(cacheKey);
  std::string dropped;
  std::lock_guard lock(s.mutex);
  auto it = s.index.find(cacheKey);
  if (it == s.index.end()) return false;
  const uint32_t id = it->second;
  Node& node = s.slots[id];
  s.bytes -= node.bytes;
  dropped = std::move(node.block);
  node.block = std::string();
  s.index.erase(it);
  s.policy->onRemove(id);
  s.freeSlots.push_back(id);
  return true;
}

size_t MemoryTier::entryCount() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s->mutex);
    n += s->index.size();
  }
  return n;
}

size_t MemoryTier::byteCount() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s->mutex);
    n += s->bytes;
  }
  return n;
}

uint64_t MemoryTier::evictions() const {
  uint64_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s->mutex);
    n += s->evictions;
  }
  return n;
}

}  // namespace llmcache::cache
