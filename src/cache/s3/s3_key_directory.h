#pragma once
// S3KeyDirectory: which cache keys the bucket holds, known locally, so that a miss does not
// wait for S3. Without it every miss would first ask S3 (a round trip, 200 ms when S3 is slow)
// before going upstream. The directory is the set of by-key pointer names, listed from S3 in
// the background every `refresh` interval and updated at once by this instance's own writes.
// A key another instance stored since the last listing is a local miss until the next one:
// the cost of never letting S3 slow a response.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_set>

#include "cache/s3/s3_client.h"
#include "cache/s3/s3_layout.h"
#include "cache/tiered_cache.h"

namespace llmcache::cache::s3 {

class S3KeyDirectory final : public KeyFilter {
 public:
  // Starts the background listing thread (first listing at once).
  S3KeyDirectory(S3Client& client, S3Layout layout, std::chrono::milliseconds refresh);
  ~S3KeyDirectory();
  S3KeyDirectory(const S3KeyDirectory&) = delete;
  S3KeyDirectory& operator=(const S3KeyDirectory&) = delete;

  // True when the bucket may hold an entry for cacheKey (its pointer was listed or written
  // here). Before the first listing succeeded: false (S3 unknown or down: go upstream).
  bool mayContain(std::string_view cacheKey) const override;
  void add(std::string_view cacheKey) override;
  void remove(std::string_view cacheKey);

  // Lists the bucket's by-key pointers now and replaces the set. Error: the set is kept.
  Result<size_t> refresh();

  bool ready() const { return ready_.load(); }
  size_t size() const;
  uint64_t refreshErrors() const { return refreshErrors_.load(); }

 private:
  void loop();

  S3Client& client_;
  S3Layout layout_;
  std::chrono::milliseconds interval_;
  mutable std::shared_mutex mutex_;
  std::unordered_set<std::string> names_;  // sanitizeKey(cache_key) of every listed pointer
  std::atomic<bool> ready_{false};
  std::atomic<uint64_t> refreshErrors_{0};
  std::mutex stopMutex_;
  std::condition_variable stopCv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace llmcache::cache::s3
