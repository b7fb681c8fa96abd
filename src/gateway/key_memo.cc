#include "gateway/key_memo.h"

#include <functional>

namespace llmcache::gateway {

KeyMemo::KeyMemo(size_t maxEntries, size_t shards) {
  if (shards == 0) shards = 1;
  perShard_ = maxEntries / shards;
  for (size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

KeyMemo::Probe KeyMemo::probe(const key::KeyOptions& options, std::string_view body) {
  Probe p;
  std::string& k = p.prefix;
  k.reserve(options.scope.size() + options.keyNamespace.size() + 12);
  k.push_back(static_cast<char>('0' + static_cast<int>(options.endpoint)));
  k.push_back(static_cast<char>('0' + static_cast<int>(options.mode)));
  // Lengths first: no choice of scope, namespace or context can be mistaken for another.
  auto field = [&k](std::string_view v) {
    k += std::to_string(v.size());
    k.push_back(':');
    k += v;
  };
  field(options.scope);
  field(options.keyNamespace);
  for (const auto& [name, value] : options.context) {
    field(name);
    field(value);
  }
  p.body = body;
  const size_t h = std::hash<std::string_view>{}(body);
  p.hash = h ^ (std::hash<std::string_view>{}(k) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
  return p;
}

std::shared_ptr<const KeyMemo::Value> KeyMemo::find(const Probe& probe) {
  if (perShard_ == 0) return nullptr;
  Shard& s = shardFor(probe.hash);
  std::lock_guard lock(s.mutex);
  auto it = s.index.find(probe);
  if (it == s.index.end()) return nullptr;
  s.lru.splice(s.lru.begin(), s.lru, it->second);
  return it->second->value;
}

void KeyMemo::put(const Probe& probe, std::shared_ptr<const Value> value) {
  if (perShard_ == 0 || probe.body.size() > kMaxBodyBytes) return;
  Shard& s = shardFor(probe.hash);
  std::lock_guard lock(s.mutex);
  if (s.index.find(probe) != s.index.end()) return;
  s.lru.push_front(Stored{probe.text(), probe.prefix.size(), probe.hash, std::move(value)});
  s.index.emplace(&s.lru.front(), s.lru.begin());
  while (s.lru.size() > perShard_) {
    s.index.erase(&s.lru.back());
    s.lru.pop_back();
  }
}

}  // namespace llmcache::gateway
