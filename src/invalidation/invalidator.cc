#include "invalidation/invalidator.h"

#include <algorithm>
#include <unordered_set>

#include "common/log.h"

namespace llmcache::invalidation {

Invalidator::Invalidator(index::Index& index, cache::TieredCache& cache, const Clock& clock,
                         InvalidatorOptions options)
    : index_(index), cache_(cache), clock_(clock), options_(options) {
  if (options_.history == 0) options_.history = 1;
}

Invalidator::~Invalidator() {
  {
    std::lock_guard lock(sharedMutex_);
    sharedStop_ = true;
  }
  sharedCv_.notify_all();
  if (sharedThread_.joinable()) sharedThread_.join();
}

size_t Invalidator::sharedSearchesPending() const {
  std::lock_guard lock(sharedMutex_);
  return sharedQueue_.size() + (sharedRunning_ ? 1 : 0);
}

bool Invalidator::waitSharedSearches(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(sharedMutex_);
  return sharedCv_.wait_for(lock, timeout,
                            [this] { return sharedQueue_.empty() && !sharedRunning_; });
}

bool Invalidator::queueSharedSearch(SharedSearch rest) {
  std::lock_guard lock(sharedMutex_);
  if (sharedStop_) return false;
  // An identical search waiting (not yet begun) takes this one's rest: it starts from the earlier
  // of the two positions (keys in listing order), so it reads all this one would.
  for (auto& queued : sharedQueue_)
    if (queued.identity == rest.identity) {
      if (rest.search.startAfter < queued.search.startAfter)
        queued.search.startAfter = rest.search.startAfter;
      return true;
    }
  if (sharedQueue_.size() >= options_.sharedQueue) return false;
  sharedQueue_.push_back(std::move(rest));
  if (!sharedThread_.joinable()) sharedThread_ = std::thread([this] { sharedLoop(); });
  sharedCv_.notify_all();
  return true;
}

void Invalidator::sharedLoop() {
  std::unique_lock lock(sharedMutex_);
  for (;;) {
    sharedCv_.wait(lock, [this] { return sharedStop_ || !sharedQueue_.empty(); });
    if (sharedStop_) return;
    SharedSearch job = std::move(sharedQueue_.front());
    sharedQueue_.pop_front();
    sharedRunning_ = true;
    size_t marked = 0, matched = 0;
    std::string error;
    for (;;) {  // slice by slice, from where the last one stopped
      lock.unlock();
      job.search.deadline = std::chrono::steady_clock::now() + options_.sharedSlice;
      auto found = shared_->markMatching(job.search);
      lock.lock();
      if (!found) {
        error = found.error().message;
        break;
      }
      marked += found->marked;
      matched += found->matched;
      if (found->resumeAfter.empty() || sharedStop_) break;
      job.search.startAfter = found->resumeAfter;
    }
    sharedRunning_ = false;
    sharedCv_.notify_all();
    lock.unlock();
    if (!error.empty())
      spdlog::warn(
          "invalidation: the background search of the shared tier failed ({}): {}; run the "
          "invalidation again to finish it",
          job.identity, error);
    else
      spdlog::info(
          "invalidation: background search of the shared tier done ({}): {} matched, {} "
          "marked",
          job.identity, matched, marked);
    lock.lock();
  }
}

uint64_t Invalidator::generation() const {
  std::shared_lock lock(mutex_);
  return generation_;
}

bool Invalidator::invalidatedSinceLocked(uint64_t generation, const cache::Entry& candidate) const {
  if (generation >= generation_) return false;
  // Invalidations generation+1 .. generation_ must all be remembered to clear the candidate.
  if (applied_.empty() || applied_.front().generation > generation + 1) return true;
  for (auto it = applied_.rbegin(); it != applied_.rend() && it->generation > generation; ++it)
    if (index::matches(it->criterion, candidate, it->at)) return true;
  return false;
}

bool Invalidator::invalidatedSince(uint64_t generation, const cache::Entry& candidate) const {
  std::shared_lock lock(mutex_);
  return invalidatedSinceLocked(generation, candidate);
}

bool Invalidator::storeUnlessInvalidated(uint64_t generation, const cache::Entry& candidate,
                                         const std::function<void()>& store) {
  std::shared_lock lock(mutex_);
  if (invalidatedSinceLocked(generation, candidate)) return false;
  store();
  return true;
}

bool Invalidator::condemns(const cache::Entry& candidate) const {
  std::shared_lock lock(mutex_);
  for (auto it = applied_.rbegin(); it != applied_.rend(); ++it)
    if (candidate.responseTimestamp < it->issued &&
        index::matches(it->criterion, candidate, it->at))
      return true;
  return false;
}

bool Invalidator::searchesShared(const Criterion& criterion) {
  using Kind = Criterion::Kind;
  switch (criterion.kind) {
    case Kind::Model:
    case Kind::Pattern:
    case Kind::Tag:
    case Kind::Namespace:
    case Kind::OlderThan:
      return true;
    case Kind::Key:      // the tiers' erase reaches the shared tier's pointer directly
    case Kind::CacheId:  // no way to it but reading every entry: per DELETE, too dear
      return false;
  }
  return false;
}

Result<Outcome> Invalidator::apply(const Request& request, const Progress& progress) {
  const TimePoint now = clock_.now();
  const Criterion criterion = request.criterion.resolved(now);
  Outcome out;
  out.dryRun = request.dryRun;
  if (!request.dryRun) {
    std::unique_lock lock(mutex_);
    out.generation = ++generation_;
    applied_.push_back({out.generation, criterion, now, request.issuedAt.value_or(now)});
    while (applied_.size() > options_.history) applied_.pop_front();
  }
  auto rows = index_.match(criterion, now);
  if (!rows) return rows.error();
  out.matched = rows->size();
  for (size_t i = 0; i < rows->size() && i < kMaxReportedIds; ++i)
    out.cacheIds.push_back((*rows)[i].cacheId);
  // The shared tier holds entries other gateways stored, which this index never saw. Searched
  // after the local erases (which mark the shared copies of the local rows, so the search skips
  // them); a dry run searches it too and counts each cache_id once.
  auto searchShared = [&] {
    if (!shared_ || !request.searchShared || !searchesShared(criterion)) return;
    cache::SharedTier::Search search;
    if (criterion.kind == Criterion::Kind::Model) search.model = criterion.value;
    search.select = [&criterion, now](const cache::Entry& e) {
      return index::matches(criterion, e, now);
    };
    search.reason = "invalidated: " + criterion.describe(now);
    search.dryRun = request.dryRun;
    if (options_.sharedBudget.count() > 0)
      search.deadline = std::chrono::steady_clock::now() + options_.sharedBudget;
    auto found = shared_->markMatching(search);
    if (!found) {
      out.shared.searched = true;
      out.shared.error = found.error().message;
      return;
    }
    out.shared = {.searched = true,
                  .scanned = found->scanned,
                  .matched = found->matched,
                  .marked = found->marked,
                  .error = {},
                  .complete = found->resumeAfter.empty(),
                  .continuing = false};
    if (!found->resumeAfter.empty() && !request.dryRun) {
      // The rest in the background: the select copies what it needs (this frame is gone by then).
      SharedSearch rest{.search = search, .identity = search.reason};
      rest.search.select = [criterion, now](const cache::Entry& e) {
        return index::matches(criterion, e, now);
      };
      rest.search.startAfter = found->resumeAfter;
      rest.search.deadline.reset();
      out.shared.continuing = queueSharedSearch(std::move(rest));
    }
    std::unordered_set<std::string> local;
    for (const index::Row& row : *rows) local.insert(row.cacheId);
    for (const std::string& id : found->cacheIds) {
      if (local.count(id)) continue;
      ++out.matched;
      if (!request.dryRun) ++out.invalidated;
      if (out.cacheIds.size() < kMaxReportedIds) out.cacheIds.push_back(id);
    }
  };
  if (request.dryRun) {
    searchShared();
    return out;
  }

  std::vector<std::string> ids;
  ids.reserve(rows->size());
  const size_t total = rows->size(), step = std::max<size_t>(1, total / 100);
  if (progress) progress(0, total);
  for (const index::Row& row : *rows) {
    // The row is what matched: whether a tier still held the entry (it may have been evicted)
    // changes nothing, the row is marked either way.
    (void)cache_.erase(row.cacheKey);
    ids.push_back(row.cacheId);
    if (progress && (ids.size() % step == 0 || ids.size() == total)) progress(ids.size(), total);
  }
  if (criterion.kind == Criterion::Kind::Key && rows->empty() && cache_.erase(criterion.value))
    out.matched = 1;  // in a tier but unknown to the index (an index rebuilt or lost)
  auto marked = index_.markInvalid(ids);
  if (!marked) return marked.error();
  out.invalidated = *marked;
  searchShared();
  return out;
}

Result<size_t> Invalidator::purgeExpired(size_t limit) {
  auto ids = index_.expired(clock_.now(), limit);
  if (!ids) return ids.error();
  for (const std::string& id : *ids) {
    auto row = index_.byCacheId(id);
    if (!row) return row.error();
    // Expired by its row; an entry the tiers already evicted is as gone as an erased one.
    if (*row) (void)cache_.erase((*row)->cacheKey);
  }
  return index_.erase(*ids);
}

}  // namespace llmcache::invalidation
