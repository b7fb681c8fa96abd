#include "cache/memory/memory_tier.h"

#include <algorithm>
#include <functional>

namespace llmcache::cache {

MemoryTier::MemoryTier(MemoryTierOptions options) {
  size_t n = std::max<size_t>(1, std::min(options.shards, std::max<size_t>(1, options.maxEntries)));
  for (size_t i = 0; i < n; ++i) {
    auto s = std::make_unique<Shard>();
    s->maxEntries = options.maxEntries / n + (i < options.maxEntries % n ? 1 : 0);
    s->maxBytes = options.maxBytes / n;
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
  s.lru.splice(s.lru.begin(), s.lru, it->second);  // refresh recency; iterators stay valid
  return std::optional<EntryPtr>{it->second->entry};
}

Result<void> MemoryTier::insert(EntryPtr entry) {
  if (!entry) return makeError(Errc::InvalidArgument, "memory tier: null entry");
  if (!entry->request.empty()) {
    // A hit never reads the request; dropping it saves its bytes per entry (bench/memory_bench).
    // One copy per store, none per hit.
    auto slim = std::make_shared<Entry>(*entry);
    slim->request = std::string();
    entry = std::move(slim);
  }
  const size_t bytes = entry->approxBytes();  // outside the lock: it walks the whole entry
  Shard& s = shardFor(entry->cacheKey);
  EntryPtr dropped;  // old entry released after unlocking; its destructor may be large
  std::vector<EntryPtr> evicted;
  std::lock_guard lock(s.mutex);
  if (bytes > s.maxBytes || s.maxEntries == 0)
    return makeError(Errc::TooLarge, "memory tier: entry of " + std::to_string(bytes) +
                                         " bytes exceeds the shard bound of " +
                                         std::to_string(s.maxBytes));
  if (auto it = s.index.find(entry->cacheKey); it != s.index.end()) {
    auto node = it->second;
    s.index.erase(it);  // its key views the old entry's cacheKey
    s.bytes -= node->bytes;
    dropped = std::move(node->entry);
    node->entry = std::move(entry);
    node->bytes = bytes;
    s.lru.splice(s.lru.begin(), s.lru, node);
    s.index.emplace(node->entry->cacheKey, node);
  } else {
    s.lru.push_front(Node{std::move(entry), bytes});
    s.index.emplace(s.lru.front().entry->cacheKey, s.lru.begin());
  }
  s.bytes += bytes;
  while (s.lru.size() > s.maxEntries || s.bytes > s.maxBytes) {
    Node& victim = s.lru.back();  // never the new entry: it alone fits both bounds
    s.bytes -= victim.bytes;
    s.index.erase(victim.entry->cacheKey);
    evicted.push_back(std::move(victim.entry));
    s.lru.pop_back();
    ++s.evictions;
  }
  return {};
}

Result<bool> MemoryTier::erase(std::string_view cacheKey) {
  Shard& s = shardFor(cacheKey);
  EntryPtr dropped;
  std::lock_guard lock(s.mutex);
  auto it = s.index.find(cacheKey);
  if (it == s.index.end()) return false;
  auto node = it->second;
  s.bytes -= node->bytes;
  dropped = std::move(node->entry);
  s.index.erase(it);
  s.lru.erase(node);
  return true;
}

size_t MemoryTier::entryCount() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s->mutex);
    n += s->lru.size();
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
