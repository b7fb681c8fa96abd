#pragma once
// MissRatioEstimator: online miss-ratio curves of the local tiers by spatially hashed sampling
// (SHARDS, Waldspurger et al., FAST 2015, with its fixed-size variant SHARDS_adj), docs/sizing.md.
//
// Every cacheable answer is a reference (key hash, its size in bytes, what a miss of it costs).
// A reference is sampled when its key hash falls under a threshold T (rate R = T / 2^32), so a
// sampled key is sampled every time it is used. The sampled keys form an LRU stack ordered by
// their last reference; a reference to a key seen before has a reuse distance (the count and the
// bytes of the distinct sampled keys referenced since), scaled by 1/R to the whole stream. A
// cache of E entries and B bytes managed as an LRU would still hold the key iff
// count/R + 1 <= E and bytes/R + size <= B (everything more recent fits beside it), so each
// reference is a hit or a miss at each of the sizes kScales x today's bounds, for each tier.
// Counts are weighted by the miss cost too: the money each size would have saved.
//
// Corrected (SHARDS_adj): every reference is counted, sampled or not, with its cost; at report
// time the difference between the expected sampled references (all of them x R) and those
// actually sampled is added to the hits at every size (and likewise for cost). A hot key that
// happens to be sampled, or not, otherwise moves the whole curve: the correction takes out what
// the sample got over or under its share, at distance zero, where hot keys' references are.
//
// Bounded: at most maxKeys sampled keys (SHARDS_adj: when one more would be tracked, the key
// with the largest hash value leaves, the threshold drops to it, and the counts so far are
// scaled by T_new / T_old so that old and new references keep one weight). A reference costs
// O(log maxKeys) under a mutex when sampled, and two atomic additions on the thread's own counters
// and one comparison (offer()) when not.
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/adaptive_mutex.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/thread.h"

namespace llmcache::sizing {

// The sizes of every curve, as multiples of a tier's configured bounds.
inline constexpr std::array<double, 6> kScales = {0.25, 0.5, 1, 2, 4, 8};

// One tier's bounds today: an LRU of at most `entries` entries and `bytes` bytes (0: unbounded
// in that dimension).
struct TierBounds {
  std::string name;  // "memory", "disk"
  uint64_t entries = 0;
  uint64_t bytes = 0;
};

struct SizingOptions {
  // CACHE_SIZING_RATE: the starting sampling rate, (0, 1]. 1: everything is sampled until
  // maxKeys keys are tracked, then the rate falls as the key population grows.
  double rate = 1.0;
  // CACHE_SIZING_MAX_KEYS: sampled keys tracked at most (>= 1); ~100 bytes each.
  size_t maxKeys = 32768;
  std::vector<TierBounds> tiers;
};

struct CurvePoint {
  double scale = 0;      // of today's bounds
  double entries = 0;    // scale x the tier's entries bound
  double bytes = 0;      // scale x the tier's bytes bound
  double hitRate = 0;    // hits / references, estimated
  double costSaved = 0;  // US dollars the hits would have saved over the window, estimated
};

struct TierCurve {
  TierBounds bounds;
  std::vector<CurvePoint> points;  // one per kScales, in order
};

struct SizingReport {
  double rate = 0;         // the sampling rate now
  size_t sampledKeys = 0;  // tracked now (<= maxKeys)
  size_t maxKeys = 0;
  double sampledReferences = 0;  // at today's rate (rescaled when it dropped)
  uint64_t references = 0;       // every reference offered
  double costTotal = 0;          // their miss costs: what they would cost had none been a hit
  double windowSeconds = 0;      // from the first reference to `now`
  std::vector<TierCurve> tiers;
};

// A key's 64-bit hash for sampled() and reference(): well mixed in every bit.
uint64_t keyHash(std::string_view key);

// Thread-safe.
class MissRatioEstimator {
 public:
  explicit MissRatioEstimator(SizingOptions options);

  // Counts one reference of the stream (with what its miss costs) and says whether it is
  // sampled: then the caller passes it to reference(). The only cost of a key that is not
  // sampled: two relaxed atomic additions on the calling thread's own shard, one relaxed load,
  // one comparison.
  bool offer(uint64_t hash, double missCost) {
    Shard& s = shards_[threadSlot() % kShards];
    s.offered.fetch_add(1, std::memory_order_relaxed);
    s.offeredNanoUsd.fetch_add(nanoUsd(missCost), std::memory_order_relaxed);
    return sampled(hash);
  }
  // Whether a reference to this key hash is sampled at today's rate. The threshold only falls,
  // so a false here stays false.
  bool sampled(uint64_t hash) const {
    return (hash >> 32) < threshold_.load(std::memory_order_relaxed);
  }

  // One sampled reference to the key (offer() said so, and counted it): `bytes` its size as the
  // tiers count it, `missCost` what a miss of it costs upstream. Applied at once under the
  // estimator's lock (an AdaptiveMutex: O(log maxKeys) work, ~0.2 us), in the order the
  // references take it: queueing them per thread instead was tried and left out, because
  // applying one thread's batch after another's reorders the stream and moves short distances
  // (a loop over 8 keys on 2 request threads looked like hits in a cache of 4). Ignored unless
  // sampled(hash) (checked again under the lock). A key's size is taken at its first sampled
  // reference and kept while it is tracked.
  void reference(uint64_t hash, uint64_t bytes, double missCost, TimePoint now);
  static constexpr size_t kShards = 16;

  SizingReport report(TimePoint now) const;

  size_t sampledKeys() const;
  double rate() const;
  // The threshold as a rate for a given 2^32-scaled threshold.
  static constexpr double kHashSpace = 4294967296.0;

 private:
  struct Key {
    uint64_t stamp;
    uint64_t bytes;
  };
  // offer()'s counters, one per request thread (threadSlot() % kShards) on its own cache line.
  struct alignas(64) Shard {
    std::atomic<uint64_t> offered{0};         // references offered
    std::atomic<uint64_t> offeredNanoUsd{0};  // and their miss costs, in 1e-9 US dollars
  };
  // Fenwick trees over the access stamps: at a key's last stamp, 1 and its bytes.
  void add(uint64_t stamp, int64_t count, int64_t bytes);
  std::pair<int64_t, int64_t> prefix(uint64_t stamp) const;
  void compact();  // renumbers the live stamps 1..n when the stamps run out
  void shrink();   // SHARDS_adj: drop the largest hash values until maxKeys hold
  double currentRate() const;
  static uint64_t nanoUsd(double usd) {
    return usd > 0 ? static_cast<uint64_t>(usd * 1e9 + 0.5) : 0;
  }

  const SizingOptions options_;
  std::atomic<uint64_t> threshold_;  // in [0, 2^32]
  std::array<Shard, kShards> shards_;
  mutable AdaptiveMutex mutex_;
  std::unordered_map<uint64_t, Key> keys_;
  std::priority_queue<std::pair<uint32_t, uint64_t>> byValue_;  // (hash >> 32, hash), max first
  std::vector<int64_t> count_, bytes_;                          // Fenwick, 1-based
  uint64_t nextStamp_ = 1;
  double references_ = 0;
  double cost_ = 0;
  // [tier][scale]
  std::vector<std::array<double, kScales.size()>> hits_, saved_;
  std::optional<TimePoint> first_;
};

// GET /cache/sizing's body (docs/sizing.md): the report as JSON, with per-day extrapolations.
Json reportToJson(const SizingReport& report);

}  // namespace llmcache::sizing
