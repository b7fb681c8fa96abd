#include "gateway/key_memo.h"

#include <functional>

#include "analytics/event.h"
#include "analytics/prompt.h"

namespace llmcache::gateway {

KeyMemo::KeyMemo(size_t maxEntries, size_t maxBytes, size_t shards) {
  if (shards == 0) shards = 1;
  perShard_ = maxEntries / shards;
  bytesPerShard_ = maxBytes / shards;
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
  const size_t size = probe.prefix.size() + probe.body.size();
  if (perShard_ == 0 || probe.body.size() > kMaxBodyBytes || size > bytesPerShard_) return;
  Shard& s = shardFor(probe.hash);
  std::lock_guard lock(s.mutex);
  if (s.index.find(probe) != s.index.end()) return;
  s.lru.push_front(Stored{probe.text(), probe.prefix.size(), probe.hash, std::move(value)});
  s.index.emplace(&s.lru.front(), s.lru.begin());
  s.bytes += size;
  while (s.lru.size() > perShard_ || s.bytes > bytesPerShard_) {
    s.bytes -= s.lru.back().text.size();
    s.index.erase(&s.lru.back());
    s.lru.pop_back();
  }
}

Result<std::shared_ptr<KeyMemo::Value>> computeKeyInfo(std::string_view body,
                                                       const key::KeyOptions& options,
                                                       bool keepPreview) {
  auto parsed = key::parseRequest(body);
  if (!parsed) return parsed.error();
  auto info = api::validateRequest(options.endpoint, *parsed);
  if (!info) return info.error();
  // Without the canonical text: as large as the body (an 8 MB body of tiny messages: 20 MB),
  // and not needed past here.
  auto k = key::computeKey(*parsed, options, key::Canonical::Drop);
  if (!k) return k.error();
  auto value = std::make_shared<KeyMemo::Value>();
  value->info = *info;
  value->key = std::move(*k);
  if (options.mode == key::NormalizeMode::Seed) {
    value->seedHash = analytics::seedHashOf(value->key.requestHash);
  } else {
    key::KeyOptions seed = options;
    seed.mode = key::NormalizeMode::Seed;
    if (auto s = key::computeKey(*parsed, seed, key::Canonical::Drop))
      value->seedHash = analytics::seedHashOf(s->requestHash);
  }
  const Json* streamOptions = parsed->find("stream_options");
  value->hasStreamOptions = streamOptions != nullptr;
  value->includeUsage =
      streamOptions && streamOptions->getBool("include_usage") == std::optional<bool>(true);
  const std::string text = analytics::promptText(*parsed);
  value->promptCategory = analytics::classifyPrompt(text);
  const analytics::PromptSignature sig = analytics::promptSignature(text);
  value->promptSimhash = sig.simhash;
  if (keepPreview) value->promptPreview = sig.preview;
  return value;
}

}  // namespace llmcache::gateway
