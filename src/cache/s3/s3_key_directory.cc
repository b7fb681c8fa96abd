#include "cache/s3/s3_key_directory.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <vector>

namespace llmcache::cache::s3 {

namespace {
constexpr size_t kMaxNames = 1000000;
}  // namespace

S3KeyDirectory::S3KeyDirectory(S3Client& client, S3Layout layout, std::chrono::milliseconds refresh,
                               S3KeyJournalOptions journal)
    : client_(client), layout_(std::move(layout)), interval_(refresh), journal_(journal) {
  if (!journal_.clock) journal_.clock = &Clock::system();
  thread_ = std::thread([this] { loop(); });
  if (journal_.poll.count() > 0) journalThread_ = std::thread([this] { journalLoop(); });
}

S3KeyDirectory::~S3KeyDirectory() {
  {
    std::lock_guard lock(stopMutex_);
    stopping_ = true;
  }
  stopCv_.notify_all();
  thread_.join();
  if (journalThread_.joinable()) journalThread_.join();
}

void S3KeyDirectory::loop() {
  for (;;) {
    (void)refresh();
    std::unique_lock lock(stopMutex_);
    if (stopCv_.wait_for(lock, interval_, [this] { return stopping_; })) return;
  }
}

void S3KeyDirectory::journalLoop() {
  // At a fixed rate (one poll starts every journal.poll), so a slow S3's listing time does not
  // add to the interval; a poll longer than the interval is followed by the next at once.
  auto next = std::chrono::steady_clock::now();
  for (;;) {
    (void)pollJournal();
    next = std::max(next + journal_.poll, std::chrono::steady_clock::now());
    std::unique_lock lock(stopMutex_);
    if (stopCv_.wait_until(lock, next, [this] { return stopping_; })) return;
  }
}

Result<size_t> S3KeyDirectory::pollJournal() {
  const std::string prefix = layout_.recentKeysPrefix();
  // Markers are named {ms}/...: everything after "{now - window, 13 digits}" is the window. Its
  // size is what the fleet stored in the window, not what the bucket holds.
  const std::string startAfter =
      layout_.recentKeysStartAfter(journal_.clock->now() - journal_.window);
  std::vector<uint64_t> names;
  std::optional<std::string> token;
  size_t pages = 0;
  size_t listed = 0;
  do {
    if (pages++ == journal_.maxPages) {
      ++journalErrors_;
      break;  // what was read is added; the full listing finds the rest
    }
    auto page = client_.listPage(prefix, token, 1000, std::nullopt,
                                 token ? std::nullopt : std::optional<std::string>(startAfter));
    if (!page) {
      ++journalErrors_;
      return page.error();
    }
    listed += page->objects.size();
    for (const auto& o : page->objects)
      if (auto name = layout_.recentKeyName(o.key)) names.push_back(fingerprint(*name));
    token = std::move(page->nextContinuationToken);
  } while (token);
  if (!names.empty()) {
    std::unique_lock lock(mutex_);
    added_.insert(names.begin(), names.end());
  }
  ++journalPolls_;
  return listed;
}

Result<size_t> S3KeyDirectory::refresh() {
  // byKeyKey("x") is "{prefix}cache-index/by-key/x.json": the listing prefix is what precedes x.
  const std::string probe = layout_.byKeyKey("x");
  const std::string prefix = probe.substr(0, probe.size() - std::string_view("x.json").size());
  // Page by page into a new vector of fingerprints: memory is the old and the new vector (8 bytes
  // a key each) and one page (1,000 objects), not a copy of the whole listing.
  std::vector<uint64_t> names;
  {
    std::shared_lock lock(mutex_);
    names.reserve(listed_.size() + added_.size());
  }
  std::optional<std::string> token;
  do {
    auto page = client_.listPage(prefix, token);
    if (!page) {
      ++refreshErrors_;
      return page.error();
    }
    for (const auto& o : page->objects) {
      std::string_view k = o.key;
      if (k.size() <= prefix.size() + 5 || k.substr(k.size() - 5) != ".json") continue;
      names.push_back(fingerprint(k.substr(prefix.size(), k.size() - prefix.size() - 5)));
    }
    if (names.size() > kMaxNames) {  // as S3Client::list's bound: the old set is kept
      ++refreshErrors_;
      return makeError(Errc::TooLarge, "S3 key directory: more than " + std::to_string(kMaxNames) +
                                           " by-key pointers");
    }
    token = std::move(page->nextContinuationToken);
  } while (token);
  const size_t n = names.size();
  {
    std::unique_lock lock(mutex_);
    // Keys added while the listing ran are kept: the listing may predate them. Keys added before it
    // began are in it (or were deleted since: then a look-up finds nothing, a miss as before).
    names.insert(names.end(), added_.begin(), added_.end());
    added_.clear();
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    names.shrink_to_fit();
    listed_.swap(names);
  }
  ready_ = true;
  ++refreshes_;
  return n;
}

uint64_t S3KeyDirectory::fingerprint(std::string_view name) {
  return std::hash<std::string_view>{}(name);  // 64 bits; never persisted
}

bool S3KeyDirectory::mayContain(std::string_view cacheKey) const {
  if (!ready_) return false;
  const uint64_t f = fingerprint(sanitizeKey(cacheKey));
  std::shared_lock lock(mutex_);
  return added_.count(f) > 0 || std::binary_search(listed_.begin(), listed_.end(), f);
}

void S3KeyDirectory::add(std::string_view cacheKey) {
  const uint64_t f = fingerprint(sanitizeKey(cacheKey));
  std::unique_lock lock(mutex_);
  added_.insert(f);
}

void S3KeyDirectory::remove(std::string_view cacheKey) {
  const uint64_t f = fingerprint(sanitizeKey(cacheKey));
  std::unique_lock lock(mutex_);
  added_.erase(f);
  // Rare (an erase): one shift of the vector's tail.
  auto it = std::lower_bound(listed_.begin(), listed_.end(), f);
  if (it != listed_.end() && *it == f) listed_.erase(it);
}

size_t S3KeyDirectory::size() const {
  std::shared_lock lock(mutex_);
  size_t n = listed_.size();
  for (uint64_t f : added_) n += std::binary_search(listed_.begin(), listed_.end(), f) ? 0 : 1;
  return n;
}

}  // namespace llmcache::cache::s3
