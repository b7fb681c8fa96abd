#pragma once
// S3InvalidationBroadcast: invalidations reach every gateway that shares the bucket.
// An invalidation applied here is written as a record under
// {prefix}cache-index/invalidations/{unix_ms}-{instance}-{n}.json; every instance lists that
// prefix every `poll` interval (CACHE_INVALIDATION_POLL) and applies the records it has not
// seen, so an entry invalidated through one gateway stops being served by the others within
// the interval, from their memory and disk too. Relative ages are resolved to an absolute
// instant before publishing ("older_than 7d" must mean the same entries everywhere). The last
// applied record is remembered in {cache_dir}/invalidations-seen so a restarted instance catches
// up; a new instance skips the records present at its first listing (they concern entries it
// does not have).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "cache/s3/s3_client.h"
#include "common/clock.h"
#include "common/json.h"
#include "invalidation/invalidator.h"

namespace llmcache::invalidation {

// Writes one invalidation record for requestBody (as S3InvalidationBroadcast::publish does; dry
// runs are not written) under {keyPrefix}cache-index/invalidations/, n numbering the writer's
// records: for a writer that does not poll (the offline `llmcache invalidate`).
Result<void> writeInvalidationRecord(cache::s3::S3Client& client, std::string_view keyPrefix,
                                     std::string_view instanceId, const Json& requestBody,
                                     const Clock& clock, uint64_t n);

class S3InvalidationBroadcast {
 public:
  S3InvalidationBroadcast(cache::s3::S3Client& client, std::string keyPrefix,
                          std::string instanceId, Invalidator& invalidator,
                          std::filesystem::path stateFile, std::chrono::milliseconds poll,
                          const Clock& clock);
  ~S3InvalidationBroadcast();

  // Publishes an invalidation request body (as POSTed to /cache/invalidate) that was applied
  // here. Dry runs are not published.
  Result<void> publish(const Json& requestBody);
  // Lists the records and applies the unseen ones of other instances. Returns how many.
  Result<size_t> pollOnce();

  uint64_t appliedRemote() const { return appliedRemote_.load(); }

 private:
  void loop();

  cache::s3::S3Client& client_;
  std::string keyPrefix_;  // CACHE_S3_PREFIX, normalized
  std::string prefix_;     // {prefix}cache-index/invalidations/
  std::string instanceId_;
  Invalidator& invalidator_;
  std::filesystem::path stateFile_;
  std::chrono::milliseconds poll_;
  const Clock& clock_;
  std::mutex mutex_;
  // Records are named by their creation time; instances' clocks differ and listings lag, so a
  // record is considered for kSkew behind the newest one seen, and remembered by name meanwhile.
  static constexpr int64_t kSkewMs = 5 * 60 * 1000;
  std::string watermark_;       // record names below it are done
  std::set<std::string> seen_;  // record names at or above the watermark, applied or skipped
  bool primed_ = false;
  std::atomic<uint64_t> counter_{0};
  std::atomic<uint64_t> appliedRemote_{0};
  std::mutex stopMutex_;
  std::condition_variable stopCv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace llmcache::invalidation
