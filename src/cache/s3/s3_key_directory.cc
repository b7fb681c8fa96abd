#include "cache/s3/s3_key_directory.h"

#include <optional>

namespace llmcache::cache::s3 {

namespace {
constexpr size_t kMaxNames = 1000000;
}  // namespace

S3KeyDirectory::S3KeyDirectory(S3Client& client, S3Layout layout, std::chrono::milliseconds refresh)
    : client_(client), layout_(std::move(layout)), interval_(refresh) {
  thread_ = std::thread([this] { loop(); });
}

S3KeyDirectory::~S3KeyDirectory() {
  {
    std::lock_guard lock(stopMutex_);
    stopping_ = true;
  }
  stopCv_.notify_all();
  thread_.join();
}

void S3KeyDirectory::loop() {
  for (;;) {
    (void)refresh();
    std::unique_lock lock(stopMutex_);
    if (stopCv_.wait_for(lock, interval_, [this] { return stopping_; })) return;
  }
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
