#include "cache/redis/redis_tier.h"

namespace llmcache::cache::redis {

RedisTier::RedisTier(RedisClient& client, RedisTierOptions options)
    : client_(client),
      options_(std::move(options)),
      clock_(options_.clock ? options_.clock : &Clock::system()) {}

std::string RedisTier::entryKey(std::string_view cacheKey) const {
  std::string k = options_.prefix;
  k += "entry:";
  k += cacheKey;
  return k;
}

RedisTierStats RedisTier::stats() const {
  return {lookups_.load(), hits_.load(),    misses_.load(),
          errors_.load(),  inserts_.load(), corrupt_.load()};
}

Result<std::optional<EntryPtr>> RedisTier::lookup(std::string_view cacheKey) {
  ++lookups_;
  const std::string key = entryKey(cacheKey);
  auto r = client_.command({"GET", key});
  if (!r) {
    ++errors_;
    return r.error();
  }
  if (r->type != RedisValue::Type::String) {
    ++misses_;
    return std::optional<EntryPtr>{};
  }
  auto decoded = decodeEntry(r->str, options_.codec);
  if (!decoded || decoded->cacheKey != cacheKey) {
    ++corrupt_;
    ++misses_;
    (void)client_.command({"DEL", key});
    return std::optional<EntryPtr>{};
  }
  ++hits_;
  return std::optional<EntryPtr>{std::make_shared<const Entry>(std::move(*decoded))};
}

Result<void> RedisTier::insert(EntryPtr entry) {
  const std::string key = entryKey(entry->cacheKey);
  Result<RedisValue> r = RedisValue{};
  if (entry->expiresAt) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(*entry->expiresAt - clock_->now())
            .count();
    if (ms <= 0) {
      r = client_.command({"DEL", key});
    } else {
      const std::string bytes = encodeEntry(*entry, options_.codec);
      const std::string px = std::to_string(ms);
      r = client_.command({"SET", key, bytes, "PX", px});
    }
  } else {
    const std::string bytes = encodeEntry(*entry, options_.codec);
    r = client_.command({"SET", key, bytes});
  }
  if (!r) {
    ++errors_;
    return r.error();
  }
  ++inserts_;
  return {};
}

Result<bool> RedisTier::erase(std::string_view cacheKey) {
  auto r = client_.command({"DEL", entryKey(cacheKey)});
  if (!r) {
    ++errors_;
    return r.error();
  }
  return r->integer > 0;
}

}  // namespace llmcache::cache::redis
