#include "cache/tiered_cache.h"

#include <future>

#include "common/log.h"
#include "common/offload.h"
#include "common/thread.h"

namespace llmcache::cache {

namespace {
// A writer task's own allocations besides the entry's strings: the posted handler with its
// captures, the shared_ptr control blocks, malloc's chunk headers for the entry's dozen strings.
constexpr size_t kWriterTaskOverhead = 512;
}  // namespace

size_t writerTaskBytes(const Entry* entry, const StoreNote* note) {
  size_t n = kWriterTaskOverhead;
  if (entry) n += entry->approxBytes();
  if (note) n += sizeof(StoreNote) + note->promptPreview.capacity();
  return n;
}

TieredCache::TieredCache(TieredCacheOptions options)
    : options_(std::move(options)), slowPool_(std::max<size_t>(1, options_.slowThreads)) {
  for (const SlowTier& s : options_.slow) slowTiers_.push_back(s.tier);
  // Evictions reach the observers on the writer thread, in order with the stores (the index
  // then stops counting what a tier no longer holds).
  for (CacheTier* t : options_.fast)
    t->setEvictionListener([this, tier = t->id()](std::string_view key) {
      net::post(writer_, [this, tier, key = std::string(key)] {
        emit({.kind = TierEvent::Kind::Evicted, .tier = tier, .cacheKey = key});
      });
    });
  // Disk fsyncs, index upserts and outbox journaling yield the CPU to the request threads.
  net::post(writer_, [] { lowerThreadPriority(); });
}

TieredCache::~TieredCache() {
  for (CacheTier* t : options_.fast) t->setEvictionListener({});
  drain();
}

void TieredCache::addObserver(TierObserver* observer) { observers_.push_back(observer); }
void TieredCache::setGuard(StoreGuard* guard) { guard_ = guard; }

void TieredCache::drain() {
  // A join lets the pools finish what is queued; they cannot take work afterwards, which is
  // what shutdown wants (requests have stopped by then).
  slowPool_.join();
  writer_.join();
}

size_t TieredCache::drain(std::chrono::milliseconds budget) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  slowPool_.join();  // lookups and synchronous slow writes: bounded by the tiers' own timeouts
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (!sync(std::max(left, std::chrono::milliseconds(0)))) abandon_.store(true);
  writer_.join();
  return abandoned_.load();
}

bool TieredCache::sync(std::chrono::milliseconds limit) {
  auto done = std::make_shared<std::promise<void>>();
  auto future = done->get_future();
  net::post(writer_, [done] { done->set_value(); });
  return future.wait_for(limit) == std::future_status::ready;
}

WriterBacklog TieredCache::writerBacklog() const {
  return {.tasks = pendingTasks_.load(std::memory_order_relaxed),
          .bytes = pendingBytes_.load(std::memory_order_relaxed),
          .skippedStores = skippedStores_.load(std::memory_order_relaxed),
          .skippedPromotions = skippedPromotions_.load(std::memory_order_relaxed)};
}

bool TieredCache::admit(size_t bytes) {
  size_t pending = pendingBytes_.load(std::memory_order_relaxed);
  do {
    if (pending + bytes > options_.maxPendingBytes) return false;
  } while (
      !pendingBytes_.compare_exchange_weak(pending, pending + bytes, std::memory_order_relaxed));
  return true;
}

template <class Task>
void TieredCache::postWrite(size_t bytes, Task task) {
  pendingTasks_.fetch_add(1, std::memory_order_relaxed);
  net::post(writer_, [this, bytes, task = std::move(task)]() mutable {
    {
      Task run = std::move(task);  // what it holds is released before the backlog shrinks
      if (!abandon_.load(std::memory_order_relaxed)) {
        run();
      } else {
        abandoned_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    pendingBytes_.fetch_sub(bytes, std::memory_order_relaxed);
    pendingTasks_.fetch_sub(1, std::memory_order_relaxed);
  });
}

uint64_t TieredCache::errors(TierId tier) const {
  return errors_[static_cast<size_t>(tier)].load(std::memory_order_relaxed);
}

std::vector<CacheTier*> TieredCache::tiers() const {
  std::vector<CacheTier*> all = options_.fast;
  all.insert(all.end(), slowTiers_.begin(), slowTiers_.end());
  return all;
}

void TieredCache::emit(const TierEvent& event) {
  for (TierObserver* o : observers_) o->onTierEvent(event);
}

void TieredCache::announceHit(const CacheHit& hit) {
  emit({.kind = TierEvent::Kind::Hit,
        .tier = hit.tier,
        .cacheKey = hit.entry->cacheKey,
        .entry = hit.entry.get()});
}

void TieredCache::failed(TierId tier, TierEvent::Op op, std::string_view cacheKey,
                         const Error& error) {
  errors_[static_cast<size_t>(tier)].fetch_add(1, std::memory_order_relaxed);
  static constexpr std::string_view kVerb[] = {"lookup", "write", "erase"};
  // Rate-limited per tier: a dead S3 fails every request, the log gets a line per interval.
  warnLimited(logLimiters_[static_cast<size_t>(tier)], "{} tier {} failed: {}", tierName(tier),
              kVerb[static_cast<size_t>(op)], error.message);
  emit({.kind = TierEvent::Kind::Failed,
        .tier = tier,
        .cacheKey = cacheKey,
        .op = op,
        .error = &error});
}

bool TieredCache::guarded(uint64_t generation, const Entry& entry,
                          const std::function<void()>& step) {
  if (!guard_) {
    step();
    return true;
  }
  return guard_->storeUnlessInvalidated(generation, entry, step);
}

std::optional<TieredCache::Found> TieredCache::firstServable(const std::vector<CacheTier*>& tiers,
                                                             std::string_view cacheKey,
                                                             std::string_view requestHash,
                                                             const LookupOptions& options) {
  const TimePoint now = options_.clock->now();
  for (size_t i = 0; i < tiers.size(); ++i) {
    auto found = tiers[i]->lookup(cacheKey);
    if (!found) {
      failed(tiers[i]->id(), TierEvent::Op::Lookup, cacheKey, found.error());
      continue;
    }
    if (!*found || !**found) continue;
    EntryPtr entry = std::move(**found);
    // A lower tier may still hold a servable entry (an expired copy in memory whose refreshed
    // version reached disk through another instance), so the lookup goes on.
    if (entry->requestHash != requestHash || entry->expired(now)) continue;
    if (options.storedNoEarlierThan && entry->responseTimestamp < *options.storedNoEarlierThan)
      continue;
    return Found{std::move(entry), i};
  }
  return std::nullopt;
}

std::optional<CacheHit> TieredCache::lookupFast(std::string_view cacheKey,
                                                std::string_view requestHash,
                                                const LookupOptions& options) {
  auto found = firstServable(options_.fast, cacheKey, requestHash, options);
  if (!found) return std::nullopt;
  CacheTier* source = options_.fast[found->index];
  if (found->index > 0) {
    // Promotion within the fast tiers: the copies now (a memory insert is cheap), the observers
    // on the writer thread (the index writes SQLite). When the writer is too far behind, the
    // announcement is dropped: the entry already has its row (it came from a tier below),
    // which then lacks only this tier's bit; invalidation erases a key from every tier.
    for (size_t above = 0; above < found->index; ++above) {
      CacheTier* t = options_.fast[above];
      if (auto r = t->insert(found->entry); !r) {
        failed(t->id(), TierEvent::Op::Insert, cacheKey, r.error());
        continue;
      }
      if (observers_.empty()) continue;
      const size_t bytes = writerTaskBytes(found->entry.get(), options.note.get());
      if (!admit(bytes)) {
        skippedPromotions_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      postWrite(bytes, [this, entry = found->entry, tier = t->id(), from = source->id(),
                        note = options.note] {
        emit({.kind = TierEvent::Kind::Promoted,
              .tier = tier,
              .cacheKey = entry->cacheKey,
              .entry = entry.get(),
              .source = from,
              .note = note.get()});
      });
    }
  }
  return CacheHit{std::move(found->entry), source->id()};
}

std::optional<CacheHit> TieredCache::lookupSlow(std::string_view cacheKey,
                                                std::string_view requestHash,
                                                const LookupOptions& options) {
  for (size_t i = 0; i < options_.slow.size(); ++i) {
    const SlowTier& s = options_.slow[i];
    if (s.filter && !s.filter->mayContain(cacheKey)) continue;
    std::vector<CacheTier*> one{s.tier};
    if (auto found = firstServable(one, cacheKey, requestHash, options))
      return CacheHit{std::move(found->entry), s.tier->id()};
  }
  return std::nullopt;
}

net::awaitable<std::optional<CacheHit>> TieredCache::lookup(std::string_view cacheKey,
                                                            std::string_view requestHash,
                                                            LookupOptions options) {
  if (auto hit = lookupFast(cacheKey, requestHash, options)) {
    announceHit(*hit);
    co_return hit;
  }
  bool worthAsking = false;
  for (const SlowTier& s : options_.slow)
    worthAsking = worthAsking || !s.filter || s.filter->mayContain(cacheKey);
  if (!worthAsking) co_return std::nullopt;
  // Taken before the slow lookup: an invalidation applied while it runs wins over the copy.
  const uint64_t generation = guard_ ? guard_->generation() : 0;
  auto job = offload(slowPool_, [this, key = std::string(cacheKey), hash = std::string(requestHash),
                                 options] { return lookupSlow(key, hash, options); });
  std::optional<CacheHit> hit = co_await std::move(job);
  if (!hit) co_return std::nullopt;
  // A copy an invalidation applied here should have removed (its mark failed or never happened)
  // is neither served nor promoted.
  if (guard_ && guard_->condemns(*hit->entry)) co_return std::nullopt;
  if (!options_.fast.empty()) promote(hit->entry, hit->tier, generation, options.note);
  announceHit(*hit);
  co_return hit;
}

void TieredCache::promote(EntryPtr entry, TierId source, uint64_t generation,
                          std::shared_ptr<const StoreNote> note) {
  // fast[0] now, so the next request is a hit; the other fast tiers and the observers in the
  // background. Both under the guard. Not at all when the writer is too far behind (the hit is
  // served; a later one promotes): a copy in fast[0] whose row the writer never wrote would be
  // out of invalidation's reach.
  const size_t bytes = writerTaskBytes(entry.get(), note.get());
  if (!admit(bytes)) {
    skippedPromotions_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  CacheTier* first = options_.fast[0];
  bool kept = guarded(generation, *entry, [&] {
    if (auto r = first->insert(entry); !r)
      failed(first->id(), TierEvent::Op::Insert, entry->cacheKey, r.error());
  });
  if (!kept) {
    pendingBytes_.fetch_sub(bytes, std::memory_order_relaxed);
    return;
  }
  postWrite(bytes, [this, entry, source, generation, note = std::move(note)] {
    const bool stillKept = guarded(generation, *entry, [&] {
      for (size_t i = 0; i < options_.fast.size(); ++i) {
        CacheTier* t = options_.fast[i];
        if (i > 0) {
          if (auto r = t->insert(entry); !r) {
            failed(t->id(), TierEvent::Op::Insert, entry->cacheKey, r.error());
            continue;
          }
        }
        emit({.kind = TierEvent::Kind::Promoted,
              .tier = t->id(),
              .cacheKey = entry->cacheKey,
              .entry = entry.get(),
              .source = source,
              .note = note.get(),
              .storedBytes = t->storedBytes(entry->cacheKey)});
      }
    });
    if (!stillKept)
      for (CacheTier* t : options_.fast) (void)t->erase(entry->cacheKey);
  });
}

void TieredCache::storeRest(const EntryPtr& entry, const StoreNote* note, bool eagerQueued) {
  auto stored = [&](TierId tier, uint64_t bytes = 0) {
    emit({.kind = TierEvent::Kind::Stored,
          .tier = tier,
          .cacheKey = entry->cacheKey,
          .entry = entry.get(),
          .note = note,
          .storedBytes = bytes});
  };
  if (!options_.fast.empty()) stored(options_.fast[0]->id());  // put there before store() returned
  for (size_t i = 1; i < options_.fast.size(); ++i) {
    CacheTier* t = options_.fast[i];
    if (auto r = t->insert(entry); !r) {
      failed(t->id(), TierEvent::Op::Insert, entry->cacheKey, r.error());
    } else {
      stored(t->id(), t->storedBytes(entry->cacheKey));
    }
  }
  for (const SlowTier& s : options_.slow) {
    if (!s.queue) continue;  // written directly by store()
    if (s.eager) {           // enqueued by store() already
      if (eagerQueued) {
        if (s.filter) s.filter->add(entry->cacheKey);
        stored(s.tier->id());
      }
      continue;
    }
    if (auto r = s.queue->enqueue(entry); !r) {
      failed(s.tier->id(), TierEvent::Op::Insert, entry->cacheKey, r.error());
    } else {
      if (s.filter) s.filter->add(entry->cacheKey);
      stored(s.tier->id());
    }
  }
}

net::awaitable<StoreResult> TieredCache::store(EntryPtr entry, uint64_t generation,
                                               std::shared_ptr<const StoreNote> note) {
  const size_t bytes = writerTaskBytes(entry.get(), note.get());
  if (!options_.fast.empty() && !admit(bytes)) {
    skippedStores_.fetch_add(1, std::memory_order_relaxed);
    const Error behind = makeError(
        Errc::TooLarge, "the background writer is " +
                            std::to_string(pendingBytes_.load(std::memory_order_relaxed)) +
                            " bytes behind; the answer was not cached");
    failed(options_.fast[0]->id(), TierEvent::Op::Insert, entry->cacheKey, behind);
    co_return StoreResult::Skipped;
  }
  if (options_.fast.empty()) pendingBytes_.fetch_add(bytes, std::memory_order_relaxed);
  bool eagerQueued = true;  // every eager queue took it (one eager tier in practice: Redis)
  const bool kept = guarded(generation, *entry, [&] {
    for (const SlowTier& s : options_.slow) {
      if (!s.queue || !s.eager) continue;
      if (auto r = s.queue->enqueue(entry); !r) {
        eagerQueued = false;
        failed(s.tier->id(), TierEvent::Op::Insert, entry->cacheKey, r.error());
      }
    }
    if (options_.fast.empty()) return;
    CacheTier* first = options_.fast[0];
    if (auto r = first->insert(entry); !r)
      failed(first->id(), TierEvent::Op::Insert, entry->cacheKey, r.error());
  });
  if (!kept) {
    pendingBytes_.fetch_sub(bytes, std::memory_order_relaxed);
    co_return StoreResult::Condemned;
  }
  postWrite(bytes, [this, entry, generation, note, eagerQueued] {
    if (!guarded(generation, *entry, [&] { storeRest(entry, note.get(), eagerQueued); })) {
      // Condemned after the first tier (and the eager queues) took it.
      for (CacheTier* t : options_.fast) (void)t->erase(entry->cacheKey);
      for (const SlowTier& s : options_.slow)
        if (s.queue && s.eager) (void)s.tier->erase(entry->cacheKey);
    }
  });
  // Slow tiers without a queue: written before the client is answered (CACHE_ASYNC_WRITES=false).
  for (const SlowTier& s : options_.slow) {
    if (s.queue) continue;
    auto job = offload(slowPool_, [tier = s.tier, entry] { return tier->insert(entry); });
    Result<void> r = co_await std::move(job);
    if (!r) {
      failed(s.tier->id(), TierEvent::Op::Insert, entry->cacheKey, r.error());
      continue;
    }
    if (s.filter) s.filter->add(entry->cacheKey);
    // Announced under the guard, on the writer thread, as every other store. Always: the entry
    // is in the tier already and needs its row; bounded by the slow pool, whose writes the
    // requests wait for.
    const size_t announced = writerTaskBytes(entry.get(), note.get());
    pendingBytes_.fetch_add(announced, std::memory_order_relaxed);
    postWrite(announced, [this, entry, generation, note, tier = s.tier] {
      const bool ok = guarded(generation, *entry, [&] {
        emit({.kind = TierEvent::Kind::Stored,
              .tier = tier->id(),
              .cacheKey = entry->cacheKey,
              .entry = entry.get(),
              .note = note.get()});
      });
      if (!ok) (void)tier->erase(entry->cacheKey);
    });
  }
  co_return StoreResult::Stored;
}

bool TieredCache::erase(std::string_view cacheKey) {
  bool any = false;
  for (CacheTier* t : tiers()) {
    auto r = t->erase(cacheKey);
    if (!r) {
      failed(t->id(), TierEvent::Op::Erase, cacheKey, r.error());
      continue;
    }
    if (*r) {
      any = true;
      emit({.kind = TierEvent::Kind::Erased, .tier = t->id(), .cacheKey = cacheKey});
    }
  }
  return any;
}

}  // namespace llmcache::cache
