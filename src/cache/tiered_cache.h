#pragma once
// TieredCache: the one cache service (DESIGN.md, Life of a request, steps 4 and 8). The gateway
// decides what is cacheable, fresh and storable and asks this class to `lookup` and `store`;
// the invalidator and the CLI erase through it. Who hears about a store (the index, the
// metrics) attaches as a TierObserver. As Envoy's cache filter asks its CacheSessions over a
// plain HttpCache: policy above, storage below.
//
// Tiers come in two speeds:
//   fast (memory, disk): looked up on the caller's thread (memory is a hash probe, a disk hit
//     reads one page-cached file: ~0.03-0.13 ms, bench/disk_bench);
//   slow (S3, Redis): looked up on the cache's own pool, and only for keys their KeyFilter
//     says they may hold, so a slow or absent S3 never slows a miss.
// A store puts the entry in the first fast tier before it returns (the next identical request
// is a hit) and in every other tier in the background, on one writer thread at nice 10. S3
// is written through a WriteQueue (the durable outbox) when one is given, else directly before
// store() returns (CACHE_ASYNC_WRITES=false).
//
// Invalidation (the race with in-flight misses). A miss takes guard.generation() when it starts
// and hands it to store(). Both steps of a store run inside guard.storeUnlessInvalidated(): an
// invalidation applied after the miss started that matches the answer condemns it. Condemned
// before the first step: nothing is stored. Condemned between the steps: the first tier's copy
// is erased again. The index hears of a store (an observer, inside the guard) before the store
// counts as done, so an invalidation applied after it finds the row and erases every tier.
#include <atomic>
#include <boost/asio.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/tier.h"
#include "cache/tier_events.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/result.h"

namespace llmcache::cache {

namespace net = boost::asio;

// The invalidation guard (implemented by invalidation::Invalidator).
class StoreGuard {
 public:
  virtual ~StoreGuard() = default;
  // Increases with every applied invalidation.
  virtual uint64_t generation() const = 0;
  // Runs store() unless an invalidation applied after `generation` selects candidate, with no
  // invalidation able to begin before store() returns. Returns whether store() ran.
  virtual bool storeUnlessInvalidated(uint64_t generation, const Entry& candidate,
                                      const std::function<void()>& store) = 0;
  // Whether an invalidation applied here already condemned candidate, an entry found in a slow
  // tier (stored before that invalidation was issued, and selected by it): then it is a miss and
  // is not promoted, whichever gateway stored it and whether or not the slow tier marked it.
  virtual bool condemns(const Entry& /*candidate*/) const { return false; }
};

// Which keys a slow tier may hold (implemented by s3::S3KeyDirectory). False negatives are
// misses (the request goes upstream), never wrong answers.
class KeyFilter {
 public:
  virtual ~KeyFilter() = default;
  virtual bool mayContain(std::string_view cacheKey) const = 0;
  virtual void add(std::string_view cacheKey) = 0;
};

// A durable queue of writes to a slow tier (implemented by s3::S3Outbox). enqueue returns once
// the write is journaled; the upload happens later. Error: not journaled, nothing will upload.
class WriteQueue {
 public:
  virtual ~WriteQueue() = default;
  [[nodiscard]] virtual Result<void> enqueue(EntryPtr entry) = 0;
};

struct SlowTier {
  CacheTier* tier = nullptr;
  KeyFilter* filter = nullptr;  // null: every key is looked up
  WriteQueue* queue = nullptr;  // null: written directly before store() returns
  // The queue's enqueue never blocks (a queue in memory: Redis): it is called on the storing
  // thread, in the same guarded step as fast[0]'s write, instead of on the background writer
  // (at nice 10, behind disk fsyncs), so the other gateways see the entry within milliseconds
  // even when the writer is far behind. Its Stored event still comes from the writer.
  bool eager = false;
};

struct TieredCacheOptions {
  std::vector<CacheTier*> fast;  // fastest first; fast[0] is written before store() returns
  std::vector<SlowTier> slow = {};
  const Clock* clock = &Clock::system();
  size_t slowThreads = 4;  // blocking slow-tier calls (lookups, synchronous writes)
  // What the background writer's queue may hold (writerTaskBytes of every task posted to it:
  // stores, promotions, announcements). Beyond, a store is skipped (served, not cached; a Failed
  // event), a slow tier's hit is not promoted, and a fast promotion's announcement (the index
  // row's tier bit) is dropped, so a writer slower than the misses and hits (an fsync per disk
  // write at nice 10 under full load) cannot queue memory without bound. The soak test
  // (bench/README.md): with only the stores bounded, and by their entries' strings alone, the
  // queue of disk hits' promotions grew the heap ~2.4 KB per miss, without end.
  size_t maxPendingBytes = size_t{64} << 20;
};

// The background writer's queue now (gauges; tests).
struct WriterBacklog {
  size_t tasks = 0;  // posted and not finished
  // Their writerTaskBytes: at most maxPendingBytes, but for the announcements of synchronous
  // slow-tier writes (bounded by the slow pool).
  size_t bytes = 0;
  uint64_t skippedStores = 0;      // since construction
  uint64_t skippedPromotions = 0;  // slow hits not promoted, fast promotions not announced
};

// What one task on the writer keeps alive: the entry (approxBytes), the note, and the task
// itself (its handler, the shared_ptr control blocks, the allocator's headers).
size_t writerTaskBytes(const Entry* entry, const StoreNote* note);

struct CacheHit {
  EntryPtr entry;
  TierId tier;
};

struct LookupOptions {
  // Entries stored before this instant are misses (Cache-Control: max-age).
  std::optional<TimePoint> storedNoEarlierThan = {};
  // Handed to observers of a promotion.
  std::shared_ptr<const StoreNote> note = {};
};

enum class StoreResult : uint8_t {
  Stored,     // in the first tier; the rest follow in the background
  Condemned,  // an invalidation applied since `generation` matches it: stored nowhere
  Skipped,    // the background writer is too far behind (maxPendingBytes): stored nowhere
};

class TieredCache {
 public:
  // The tiers, the observers and the guard are not owned and must outlive the cache.
  explicit TieredCache(TieredCacheOptions options);
  ~TieredCache();  // drain()s
  TieredCache(const TieredCache&) = delete;
  TieredCache& operator=(const TieredCache&) = delete;

  void addObserver(TierObserver* observer);  // before the first request
  void setGuard(StoreGuard* guard);          // before the first request; null: no guard
  // The guard's generation now (0 without one): what a miss takes when it starts, for store().
  uint64_t generation() const { return guard_ ? guard_->generation() : 0; }

  // The first tier holding a servable entry under cacheKey wins and is copied into every fast
  // tier above it (promotion). Not servable, so a miss in that tier (the lookup goes on): the
  // stored request_hash differs from requestHash (a cache_key collision), the entry expired,
  // it is older than options.storedNoEarlierThan, or the tier failed (a Failed event).
  // Fast tiers are looked up on the calling thread, slow ones on the cache's pool; the
  // coroutine resumes on its own executor. nullopt: no tier had a servable entry.
  // A slow tier's hit is put in fast[0] before this returns and in the other fast tiers in the
  // background, under the guard (an invalidation racing the lookup wins).
  [[nodiscard]] net::awaitable<std::optional<CacheHit>> lookup(std::string_view cacheKey,
                                                               std::string_view requestHash,
                                                               LookupOptions options = {});
  // The fast tiers only, on the calling thread (the CLI; tests).
  [[nodiscard]] std::optional<CacheHit> lookupFast(std::string_view cacheKey,
                                                   std::string_view requestHash,
                                                   const LookupOptions& options = {});

  // Stores entry (see the header comment). `generation` is guard.generation() taken when the
  // miss started. A tier's failure is a Failed event and never fails the call. (Nodiscard, as
  // lookup: an awaitable that is not co_awaited never runs.)
  [[nodiscard]] net::awaitable<StoreResult> store(EntryPtr entry, uint64_t generation,
                                                  std::shared_ptr<const StoreNote> note = {});

  // Removes cacheKey from every tier, slow ones included, on the calling thread. True when a
  // tier held it. Blocking (S3): never call it on a request thread. A caller that only needs
  // the key gone (a row already chose it) discards the answer with (void), saying why.
  [[nodiscard]] bool erase(std::string_view cacheKey);

  // Waits for every background write queued so far. Safe to call more than once; afterwards the
  // cache takes no more background work (shutdown).
  void drain();
  // The same within `budget` (shutdown: CACHE_SHUTDOWN_GRACE): the writes still queued when it
  // runs out are abandoned, each whole or not at all (an entry then missing from the disk tier,
  // the outbox or the index is a miss there later, never a half-written file). Returns how many
  // were abandoned.
  size_t drain(std::chrono::milliseconds budget);
  // Waits (at most `limit`) until the background writes queued before the call are done, the
  // cache staying open: for readers of what observers record (the analytics' hot keys). False:
  // the limit passed first. Never on a request thread, nor on the writer itself.
  bool sync(std::chrono::milliseconds limit = std::chrono::seconds(5));

  // Operations that failed per tier since construction (also Failed events).
  uint64_t errors(TierId tier) const;
  WriterBacklog writerBacklog() const;
  // The tiers, fast ones first (gauges, the CLI).
  std::vector<CacheTier*> tiers() const;

 private:
  struct Found {
    EntryPtr entry;
    size_t index;  // in the tier list it came from
  };
  std::optional<Found> firstServable(const std::vector<CacheTier*>& tiers,
                                     std::string_view cacheKey, std::string_view requestHash,
                                     const LookupOptions& options);
  std::optional<CacheHit> lookupSlow(std::string_view cacheKey, std::string_view requestHash,
                                     const LookupOptions& options);
  void promote(EntryPtr entry, TierId source, uint64_t generation,
               std::shared_ptr<const StoreNote> note);
  void storeRest(const EntryPtr& entry, const StoreNote* note, bool eagerQueued);
  bool guarded(uint64_t generation, const Entry& entry, const std::function<void()>& step);
  void emit(const TierEvent& event);
  void announceHit(const CacheHit& hit);
  void failed(TierId tier, TierEvent::Op op, std::string_view cacheKey, const Error& error);
  // Reserves `bytes` of the writer's queue; false (nothing reserved) when they do not fit.
  bool admit(size_t bytes);
  // Posts a task to the writer, counted in the backlog until it has run (and released what it
  // holds). `bytes` admitted (or, for a task that must run, added regardless) beforehand.
  template <class Task>
  void postWrite(size_t bytes, Task task);

  TieredCacheOptions options_;
  std::vector<CacheTier*> slowTiers_;
  StoreGuard* guard_ = nullptr;
  std::vector<TierObserver*> observers_;
  std::atomic<uint64_t> errors_[kTierCount] = {};
  LogLimiter logLimiters_[kTierCount];
  std::atomic<size_t> pendingBytes_{0};  // of the tasks posted to writer_ and not done
  std::atomic<size_t> pendingTasks_{0};
  std::atomic<uint64_t> skippedStores_{0};
  std::atomic<uint64_t> skippedPromotions_{0};
  net::thread_pool writer_{1};
  std::atomic<bool> abandon_{false};  // drain(budget) ran out: queued writes are skipped
  std::atomic<size_t> abandoned_{0};
  net::thread_pool slowPool_;
};

}  // namespace llmcache::cache
