#include "cache/s3/s3_key_directory.h"

#include <algorithm>
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
  std::vector<std::string> names;
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
      if (auto name = layout_.recentKeyName(o.key)) names.push_back(std::move(*name));
    token = std::move(page->nextContinuationToken);
  } while (token);
  if (!names.empty()) {
    std::unique_lock lock(mutex_);
    for (auto& n : names) names_.insert(std::move(n));
  }
  ++journalPolls_;
  return listed;
}

Result<size_t> S3KeyDirectory::refresh() {
  // byKeyKey("x") is "{prefix}cache-index/by-key/x.json": the listing prefix is what precedes x.
  const std::string probe = layout_.byKeyKey("x");
  const std::string prefix = probe.substr(0, probe.size() - std::string_view("x.json").size());
  // Page by page into the new set: memory is the two sets and one page (1,000 objects), not a
  // copy of the whole listing (key, ETag and time of every pointer) beside them.
  std::unordered_set<std::string> names;
  {
    std::shared_lock lock(mutex_);
    names.reserve(names_.size());
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
      names.emplace(k.substr(prefix.size(), k.size() - prefix.size() - 5));
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
    // Keys written here while the listing ran are kept: the listing may predate them.
    for (const auto& mine : names_) names.insert(mine);
    names_.swap(names);
  }
  ready_ = true;
  ++refreshes_;
  return n;
}

bool S3KeyDirectory::mayContain(std::string_view cacheKey) const {
  if (!ready_) return false;
  const std::string name = sanitizeKey(cacheKey);
  std::shared_lock lock(mutex_);
  return names_.count(name) > 0;
}

void S3KeyDirectory::add(std::string_view cacheKey) {
  std::unique_lock lock(mutex_);
  names_.insert(sanitizeKey(cacheKey));
}

void S3KeyDirectory::remove(std::string_view cacheKey) {
  std::unique_lock lock(mutex_);
  names_.erase(sanitizeKey(cacheKey));
}

size_t S3KeyDirectory::size() const {
  std::shared_lock lock(mutex_);
  return names_.size();
}

}  // namespace llmcache::cache::s3
