#pragma once
// KeyMemo: the cache key of request bodies seen recently, by their exact bytes.
//
// Why: on a memory hit, computing the key (parse, normalize, canonical JSON, MD5) was 83% of the
// gateway's instructions per request (callgrind, 1.5 KB chat body: ~150K of ~180K). The key is a
// pure function of (endpoint, normalization, scope, namespace, body bytes), so a repeated body
// can reuse it; only a body never seen pays for the full computation. Entries are compared by
// their full bytes, never by a hash alone, so a memo hit is exactly the key the spec computes.
// Sharded LRU bounded by entries and by bytes (6,000 distinct 60 KB bodies once held 800 MB:
// CACHE_KEY_MEMO_BYTES); bodies above kMaxBodyBytes are not memoized.
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "api/request.h"
#include "cache/tiered_cache.h"
#include "common/adaptive_mutex.h"
#include "key/cache_key.h"

namespace llmcache::gateway {

class KeyMemo {
 public:
  // What the key depends on besides the body, and what is computed from the body once: the
  // prompt signature (promptSimhash, promptPreview: the StoreNote handed to the cache's
  // observers, so the index row gets it).
  struct Value : cache::StoreNote {
    api::RequestInfo info;
    key::CacheKey key;
    bool includeUsage = false;      // stream_options.include_usage
    bool hasStreamOptions = false;  // stream_options is present (whatever it holds)
    std::string promptCategory;     // analytics::classifyPrompt of the last user message
    // analytics::seedHashOf the request_hash under `seed` normalization (what seed mode would
    // have merged: /cache/patterns' normalize_prompts); 0: unknown
    uint64_t seedHash = 0;
  };
  static constexpr size_t kMaxBodyBytes = 64 * 1024;

  // Bounded by entries and by the bytes of the bodies kept (each shard keeps 1/shards of both).
  explicit KeyMemo(size_t maxEntries, size_t maxBytes = size_t{32} << 20, size_t shards = 16);

  // What the cache key depends on: endpoint, normalization, scope, namespace, context (a short
  // length-prefixed prefix) and the body, hashed once. The body is viewed, not copied: a lookup
  // of a remembered body allocates nothing (a 1.5 KB copy per request was one of the hit path's
  // largest allocations).
  struct Probe {
    std::string prefix;
    std::string_view body;
    size_t hash = 0;
    // What put() keeps, allocated at its exact size (prefix + std::string(body) reallocated to
    // twice the body's size: the byte bound then held twice what it counted).
    std::string text() const {
      std::string t;
      t.reserve(prefix.size() + body.size());
      t.append(prefix).append(body);
      return t;
    }
  };
  static Probe probe(const key::KeyOptions& options, std::string_view body);

  std::shared_ptr<const Value> find(const Probe& probe);
  // Copies the probe's body (unless above kMaxBodyBytes: not remembered).
  void put(const Probe& probe, std::shared_ptr<const Value> value);

 private:
  struct Stored {
    std::string text;  // prefix + body
    size_t prefixLen;
    size_t hash;
    std::shared_ptr<const Value> value;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(const Stored* s) const { return s->hash; }
    size_t operator()(const Probe& p) const { return p.hash; }
  };
  struct Same {
    using is_transparent = void;
    static bool equal(const Probe& p, const Stored* s) {
      return p.hash == s->hash && s->prefixLen == p.prefix.size() &&
             s->text.size() == p.prefix.size() + p.body.size() &&
             std::string_view(s->text).substr(0, s->prefixLen) == p.prefix &&
             std::string_view(s->text).substr(s->prefixLen) == p.body;
    }
    bool operator()(const Stored* a, const Stored* b) const {
      return a == b || (a->hash == b->hash && a->text == b->text);
    }
    bool operator()(const Probe& p, const Stored* s) const { return equal(p, s); }
    bool operator()(const Stored* s, const Probe& p) const { return equal(p, s); }
  };
  struct Shard {
    AdaptiveMutex mutex;    // shared by the request threads: spins before it sleeps
    std::list<Stored> lru;  // front: most recent
    std::unordered_map<const Stored*, std::list<Stored>::iterator, Hash, Same> index;
    size_t bytes = 0;  // of the texts in lru
  };
  Shard& shardFor(size_t hash) { return *shards_[hash % shards_.size()]; }

  size_t perShard_;
  size_t bytesPerShard_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

// Parses, validates and keys a request body, and signs its prompt (analytics): the KeyMemo
// value of a body not seen recently. InvalidArgument (a 400) names what is wrong. The parsed
// body lives only inside: callers keep the bytes. keepPreview: false when bodies are sealed
// (CACHE_ENCRYPTION), so no prompt text reaches the index.
Result<std::shared_ptr<KeyMemo::Value>> computeKeyInfo(std::string_view body,
                                                       const key::KeyOptions& options,
                                                       bool keepPreview);

}  // namespace llmcache::gateway
