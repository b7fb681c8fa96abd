#pragma once
// Invalidator: removes the entries a criterion selects from every tier and marks them invalid in
// the index, and keeps the gateway's in-flight misses from storing an answer that an
// invalidation issued while they were in flight has already condemned.
//
// The race and how it is closed. A miss takes generation() when it starts. Every applied
// invalidation first bumps the generation and remembers its criterion (resolved: "older than
// 7d" becomes a fixed instant), then asks the index for matching rows and erases them from the
// tiers. So an answer stored before the bump is in the index and gets erased, and an answer
// stored after it sees the bump: invalidatedSince(g, entry) is true when any invalidation
// applied after g matches entry. The check and the store must not straddle a bump: do both
// inside storeUnlessInvalidated(), which holds a shared lock that apply() takes exclusively
// for the bump alone (never for its index query or tier erases). An invalidation finds entries
// through the index, so a store is only complete once its index upsert is done.
//
// The store side of the protocol lives in cache::TieredCache, which holds this class as its
// StoreGuard (see tiered_cache.h).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "cache/tiered_cache.h"
#include "common/clock.h"
#include "common/result.h"
#include "index/index.h"
#include "invalidation/request.h"

namespace llmcache::invalidation {

struct Outcome {
  size_t matched = 0;  // valid index rows the criterion selected (and, for a key, a tier entry the
                       // index did not know)
  size_t invalidated = 0;  // rows marked invalid (0 in a dry run)
  bool dryRun = false;
  uint64_t generation = 0;            // the generation this invalidation created (0 in a dry run)
  std::vector<std::string> cacheIds;  // the matched rows' ids, the first kMaxReportedIds
  // The shared tier's part (setSharedTier), included in matched and invalidated above without
  // counting an entry twice (by cache_id): entries of other gateways this index never saw.
  struct Shared {
    bool searched = false;  // false: no shared tier, or this criterion is not searched there
    size_t scanned = 0;     // entries read in the shared tier (not already marked)
    size_t matched = 0;     // current entries there the criterion selects
    size_t marked = 0;      // marked invalid there by this search (0 in a dry run)
    // Non-empty: the search failed midway (S3 unreachable, ...); the figures are what was done
    // before. Not an error of apply(): the index and the local tiers are done, and the gateway
    // still publishes the invalidation; the caller reports it (run it again to finish).
    std::string error;
    // false: the search ran out of InvalidatorOptions::sharedBudget before the end of the tier;
    // the figures are the part done. Then continuing says whether the rest was queued for the
    // background search (it goes on after apply() returns), or not (a dry run, a full queue).
    bool complete = true;
    bool continuing = false;
  } shared;
};
inline constexpr size_t kMaxReportedIds = 1000;

struct InvalidatorOptions {
  // Applied invalidations remembered for invalidatedSince. A miss whose generation is older than
  // the oldest remembered one is treated as invalidated (not stored): safe, merely a lost store.
  size_t history = 4096;
  // How long apply() searches a shared tier (bucket-wide: every metadata object of the bucket for
  // a tag, a pattern, a namespace or an age, one GET each) before it answers with what it found;
  // the rest of the search goes on in the background. 0: no limit (the offline CLI). Meanwhile
  // condemns() keeps this gateway from serving what the search has yet to mark, and the other
  // gateways apply the invalidation's record themselves.
  std::chrono::milliseconds sharedBudget{10000};
  // Searches waiting for the background (identical ones merged); beyond, the rest of a new one is
  // not queued (reported as not continuing: run the invalidation again later).
  size_t sharedQueue = 16;
  // The background search's slices: it checks for a stop (shutdown) between them.
  std::chrono::milliseconds sharedSlice{1000};
};

class Invalidator final : public cache::StoreGuard {
 public:
  // index, cache and clock are not owned and must outlive the invalidator. The caller makes it
  // the cache's guard (cache.setGuard(&invalidator)).
  Invalidator(index::Index& index, cache::TieredCache& cache, const Clock& clock,
              InvalidatorOptions options = {});
  // Stops the background search (between two slices: the rest of its queue is dropped).
  ~Invalidator() override;

  // Dry run: counts and lists matching rows, changes nothing (no generation either).
  // Otherwise: bumps the generation, erases every matching entry from every tier (tier errors
  // are counted by the cache, never fail the call), marks the rows invalid. A Key criterion also
  // erases its key from the tiers when the index has no row for it.
  // Errors: the index's (Io, Corrupt); the generation was bumped regardless, so in-flight
  // misses matching it are still not stored.
  // Race: an entry stored under a matched key after the index query but before the erase (a
  // refresh that does not match, e.g. a cache_id criterion) is erased too: a miss, never stale.
  // progress, when given, is called with (entries erased so far, entries matched): once before
  // the first erase, about every 1% of them, and after the last (not for a dry run).
  using Progress = std::function<void(size_t done, size_t total)>;
  Result<Outcome> apply(const Request& request, const Progress& progress = {});

  // A tier shared with other gateways (S3), searched by apply() beyond the index for the
  // criteria it can search there: model (its folder), pattern, tag, namespace and older_than (every
  // entry read). Key reaches it through the tier's erase; cache_id is not searched there. Not
  // owned; set before the first apply. Null: the index alone.
  void setSharedTier(cache::SharedTier* tier) { shared_ = tier; }
  // Whether the criterion is searched in a shared tier.
  static bool searchesShared(const Criterion& criterion);
  // Shared-tier searches queued or running in the background (see InvalidatorOptions).
  size_t sharedSearchesPending() const;
  // Waits until the background has no search left, at most `timeout`. True: none left. For tests.
  bool waitSharedSearches(std::chrono::milliseconds timeout) const;

  // Erases up to limit expired entries (Index::expired at clock.now()) from the tiers and their
  // rows from the index. Returns how many rows went. For a background purger.
  Result<size_t> purgeExpired(size_t limit);

  // The current generation: 0 before the first invalidation, +1 per applied invalidation.
  uint64_t generation() const override;
  // True when an invalidation applied after `generation` selects candidate (or when that
  // history is no longer remembered). Thread-safe.
  bool invalidatedSince(uint64_t generation, const cache::Entry& candidate) const;
  // Runs store() unless invalidatedSince(generation, candidate), with no invalidation able to
  // begin between the check and the end of store(). Returns whether store() ran. store() must
  // not call apply() (it would deadlock). Thread-safe.
  bool storeUnlessInvalidated(uint64_t generation, const cache::Entry& candidate,
                              const std::function<void()>& store) override;
  // True when a remembered invalidation (applied here, whether issued here or by another
  // gateway) selects candidate and candidate's response is older than the invalidation's issue
  // time: a copy found in a shared tier that the invalidation should have removed (a mark that
  // failed or never happened: an older gateway, a lost record) is not served nor promoted.
  // Entries stored after the invalidation are not condemned. Thread-safe; costs one match per
  // remembered invalidation (at most options.history).
  bool condemns(const cache::Entry& candidate) const override;

 private:
  struct Applied {
    uint64_t generation;
    Criterion criterion;  // resolved
    TimePoint at;
    TimePoint issued;  // Request::issuedAt, or at
  };
  bool invalidatedSinceLocked(uint64_t generation, const cache::Entry& candidate) const;
  // The rest of a shared-tier search, for the background.
  struct SharedSearch {
    cache::SharedTier::Search search;  // startAfter: where the foreground stopped
    std::string identity;              // the criterion, resolved: identical ones merge
  };
  // Queues the rest of search (returns false when the queue is full).
  bool queueSharedSearch(SharedSearch rest);
  void sharedLoop();

  index::Index& index_;
  cache::TieredCache& cache_;
  const Clock& clock_;
  InvalidatorOptions options_;
  cache::SharedTier* shared_ = nullptr;

  mutable std::shared_mutex mutex_;  // shared: checks and guarded stores; exclusive: a bump
  uint64_t generation_ = 0;
  std::deque<Applied> applied_;  // oldest first

  // The background shared-tier search: one thread, started by the first queued search.
  mutable std::mutex sharedMutex_;
  mutable std::condition_variable sharedCv_;
  std::deque<SharedSearch> sharedQueue_;
  bool sharedRunning_ = false;  // the thread is searching one (popped from the queue)
  bool sharedStop_ = false;
  std::thread sharedThread_;
};

}  // namespace llmcache::invalidation
