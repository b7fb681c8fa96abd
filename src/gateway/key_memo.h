#pragma once
// KeyMemo: the cache key of request bodies seen recently, by their exact bytes.
//
// Why: on a memory hit, computing the key (parse, normalize, canonical JSON, MD5) was 83% of the
// gateway's instructions per request (callgrind, 1.5 KB chat body: ~150K of ~180K). The key is a
// pure function of (endpoint, normalization, scope, namespace, body bytes), so a repeated body
// can reuse it; only a body never seen pays for the full computation. Entries are compared by
// their full bytes, never by a hash alone, so a memo hit is exactly the key the spec computes.
// Sharded LRU bounded by entries; bodies above kMaxBodyBytes are not memoized.
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "api/request.h"
#include "key/cache_key.h"

namespace llmcache::gateway {

class KeyMemo {
 public:
  struct Value {
    api::RequestInfo info;
    key::CacheKey key;
    bool includeUsage = false;  // stream_options.include_usage
    std::string promptCategory;  // analytics::classifyPrompt of the last user message
    uint64_t promptSimhash = 0;  // analytics::promptSignature
    std::string promptPreview;   // empty when previews are off (CACHE_ENCRYPTION)
  };
  static constexpr size_t kMaxBodyBytes = 64 * 1024;

  explicit KeyMemo(size_t maxEntries, size_t shards = 16);

  // The memo key: everything the cache key depends on, the body last.
  static std::string memoKey(key::Endpoint endpoint, key::NormalizeMode mode, std::string_view scope,
                             std::string_view keyNamespace, std::string_view body);

  std::shared_ptr<const Value> find(const std::string& memoKey);
  void put(std::string memoKey, std::shared_ptr<const Value> value);

 private:
  struct Shard {
    std::mutex mutex;
    std::list<std::pair<std::string, std::shared_ptr<const Value>>> lru;  // front: most recent
    std::unordered_map<std::string_view, decltype(lru)::iterator> index;
  };
  Shard& shardFor(const std::string& memoKey);

  size_t perShard_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace llmcache::gateway
