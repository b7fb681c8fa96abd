#include "cache/s3/s3_key_directory.h"

namespace llmcache::cache::s3 {

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
  auto objects = client_.list(prefix);
  if (!objects) {
    ++refreshErrors_;
    return objects.error();
  }
  std::unordered_set<std::string> names;
  names.reserve(objects->size());
  for (const auto& o : *objects) {
    std::string_view k = o.key;
    if (k.size() <= prefix.size() + 5 || k.substr(k.size() - 5) != ".json") continue;
    names.emplace(k.substr(prefix.size(), k.size() - prefix.size() - 5));
  }
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
