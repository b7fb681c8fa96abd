#include "invalidation/invalidator.h"

#include <algorithm>
#include <unordered_set>

namespace llmcache::invalidation {

Invalidator::Invalidator(index::Index& index, cache::TieredCache& cache, const Clock& clock,
                         InvalidatorOptions options)
    : index_(index), cache_(cache), clock_(clock), options_(options) {
  if (options_.history == 0) options_.history = 1;
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
                  .error = {}};
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
