#include "gateway/key_memo.h"

#include <functional>

namespace llmcache::gateway {

KeyMemo::KeyMemo(size_t maxEntries, size_t shards) {
  if (shards == 0) shards = 1;
  perShard_ = maxEntries / shards;
  for (size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

std::string KeyMemo::memoKey(key::Endpoint endpoint, key::NormalizeMode mode, std::string_view scope,
                             std::string_view keyNamespace, std::string_view body) {
  std::string k;
  k.reserve(body.size() + scope.size() + keyNamespace.size() + 8);
  k.push_back(static_cast<char>('0' + static_cast<int>(endpoint)));
  k.push_back(static_cast<char>('0' + static_cast<int>(mode)));
  // Lengths first: no choice of scope and namespace can be mistaken for another.
  k += std::to_string(scope.size());
  k.push_back(':');
  k += scope;
  k += std::to_string(keyNamespace.size());
  k.push_back(':');
  k += keyNamespace;
  k += body;
  return k;
}

KeyMemo::Shard& KeyMemo::shardFor(const std::string& memoKey) {
  return *shards_[std::hash<std::string_view>{}(memoKey) % shards_.size()];
}

std::shared_ptr<const KeyMemo::Value> KeyMemo::find(const std::string& memoKey) {
  if (perShard_ == 0) return nullptr;
  Shard& s = shardFor(memoKey);
  std::lock_guard lock(s.mutex);
  auto it = s.index.find(memoKey);
  if (it == s.index.end()) return nullptr;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return it->second->second;
}

void KeyMemo::put(std::string memoKey, std::shared_ptr<const Value> value) {
  if (perShard_ == 0 || memoKey.size() > kMaxBodyBytes) return;
  Shard& s = shardFor(memoKey);
  std::lock_guard lock(s.mutex);
  if (s.index.count(memoKey)) return;
  s.lru.emplace_front(std::move(memoKey), std::move(value));
  s.index.emplace(s.lru.front().first, s.lru.begin());
  while (s.lru.size() > perShard_) {
    s.index.erase(s.lru.back().first);
    s.lru.pop_back();
  }
}

}  // namespace llmcache::gateway
