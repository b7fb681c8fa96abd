#pragma once
// RedisTier: a tier shared by the fleet, between disk and S3 (docs/redis.md). Each entry is one
// Redis string {prefix}entry:{cache_key} holding the entry codec's bytes (codec.h: compressed and
// sealed like the disk tier's files), with a TTL equal to the entry's expiry (none when the entry
// never expires). Bounded by Redis's own eviction (maxmemory + maxmemory-policy), not here.
// Blocking: TieredCache calls it on its slow pool.
#include <atomic>
#include <cstdint>
#include <string>

#include "cache/codec.h"
#include "cache/redis/redis_client.h"
#include "cache/tier.h"
#include "common/clock.h"

namespace llmcache::cache::redis {

// CACHE_REDIS_PREFIX's default: every key this gateway writes starts with it.
inline constexpr std::string_view kDefaultPrefix = "llmcache:";

struct RedisTierOptions {
  std::string prefix = std::string(kDefaultPrefix);
  CodecOptions codec = {};       // CACHE_COMPRESSION, CACHE_ENCRYPTION: as the disk tier's
  const Clock* clock = nullptr;  // for the TTL; nullptr = Clock::system()
};

struct RedisTierStats {
  uint64_t lookups = 0, hits = 0, misses = 0, errors = 0, inserts = 0, corrupt = 0;
};

class RedisTier final : public CacheTier {
 public:
  RedisTier(RedisClient& client, RedisTierOptions options);

  TierId id() const override { return TierId::Redis; }
  // GET; a value that does not decode (damaged, another key, unsealed under encryption) is
  // deleted and is a miss.
  [[nodiscard]] Result<std::optional<EntryPtr>> lookup(std::string_view cacheKey) override;
  // SET ... PX (ms until expires_at), or SET without expiry. An entry already expired is not
  // stored (and any older entry under its key is deleted).
  [[nodiscard]] Result<void> insert(EntryPtr entry) override;
  [[nodiscard]] Result<bool> erase(std::string_view cacheKey) override;

  std::string entryKey(std::string_view cacheKey) const;
  RedisTierStats stats() const;

 private:
  RedisClient& client_;
  RedisTierOptions options_;
  const Clock* clock_;
  std::atomic<uint64_t> lookups_{0}, hits_{0}, misses_{0}, errors_{0}, inserts_{0}, corrupt_{0};
};

}  // namespace llmcache::cache::redis
