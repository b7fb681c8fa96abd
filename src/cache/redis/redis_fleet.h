#pragma once
// RedisFleet: the fleet's channel on Redis (docs/redis.md): the Redis tier's writes (a
// WriteQueue: the entry, then a "stored" announcement), one pub/sub channel every gateway
// subscribes to ({prefix}events: stored entries, released leases, invalidations), and leases
// ({prefix}lease:{request_hash}, SET NX PX, renewed while the call runs).
//
// Threads: a writer (the queued writes), a subscriber (a dedicated connection blocked in
// SUBSCRIBE; reconnects with backoff when Redis goes away), a renewer (held leases, every
// leaseTtl/3). Handlers run on the subscriber thread and must only queue or post.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cache/fleet.h"
#include "cache/redis/redis_client.h"
#include "cache/redis/redis_tier.h"
#include "cache/tiered_cache.h"
#include "common/clock.h"

namespace llmcache::cache::redis {

struct RedisFleetOptions {
  std::string prefix = std::string(kDefaultPrefix);
  std::string instanceId;  // names this gateway's messages (its own are not applied again)
  // CACHE_REDIS_LEASE_MS: a lease's life without renewal (a dead holder's lease expires after
  // it). 0: no leases (acquire() answers Unavailable).
  std::chrono::milliseconds leaseTtl{5000};
  std::chrono::milliseconds maxWait{30000};  // CACHE_REDIS_LEASE_WAIT
  size_t maxQueuedBytes = size_t{64} << 20;  // writes waiting; beyond, enqueue fails
  const Clock* clock = nullptr;              // "created" of invalidations; nullptr = system
};

struct RedisFleetHandlers {
  // Another gateway stored cacheKey (the S3 key directory learns of it).
  std::function<void(std::string_view cacheKey)> onStored;
  // Another gateway applied an invalidation (the body as POSTed, "created" its issue time).
  std::function<void(const Json& request, TimePoint created)> onInvalidation;
};

struct RedisFleetStats {
  uint64_t written = 0, writeErrors = 0, dropped = 0;
  uint64_t published = 0, received = 0, subscribed = 0;  // subscribed: (re)subscriptions
  uint64_t leasesTaken = 0, leasesFound = 0;
};

class RedisFleet final : public Fleet, public WriteQueue {
 public:
  RedisFleet(RedisClient& client, RedisTier& tier, RedisFleetOptions options,
             RedisFleetHandlers handlers);
  ~RedisFleet() override;  // stop()s
  // Writes what is queued (at most `limit`), then stops the threads. Idempotent.
  void stop(std::chrono::milliseconds limit = std::chrono::seconds(2));

  // WriteQueue: queued for the writer thread (memory only: a write lost in a crash is a miss).
  [[nodiscard]] Result<void> enqueue(EntryPtr entry) override;

  // Fleet
  Lease acquire(std::string_view requestHash) override;
  void release(std::string_view requestHash, bool stored) override;
  bool held(std::string_view requestHash) override;
  std::shared_ptr<void> watch(std::string_view requestHash, std::function<void()> notify) override;
  std::chrono::milliseconds maxWait() const override { return options_.maxWait; }
  void publishInvalidation(const Json& requestBody) override;

  // Whether the subscriber is connected and subscribed now (tests wait for it).
  bool subscribed() const { return subscribedNow_.load(); }
  std::string channel() const { return options_.prefix + "events"; }
  std::string leaseKey(std::string_view requestHash) const;
  RedisFleetStats stats() const;

 private:
  void writerLoop();
  void subscriberLoop();
  void renewerLoop();
  void dispatch(std::string_view message);
  void notifyWatchers(const std::string& requestHash);
  bool publish(const Json& message);

  RedisClient& client_;
  RedisTier& tier_;
  RedisFleetOptions options_;
  RedisFleetHandlers handlers_;
  const Clock* clock_;

  std::mutex mutex_;  // the queue, held leases, watchers, stopping_
  std::condition_variable wake_;
  bool stopping_ = false;
  std::deque<EntryPtr> queue_;
  size_t queuedBytes_ = 0;
  bool writing_ = false;
  std::condition_variable idle_;             // queue empty and nothing being written
  std::map<std::string, std::string> held_;  // request_hash -> our token
  struct Watcher {
    uint64_t id;
    std::function<void()> notify;
  };
  std::multimap<std::string, Watcher> watchers_;
  uint64_t nextWatcher_ = 0;
  uint64_t nextToken_ = 0;

  std::mutex subscriberMutex_;  // the subscriber's connection fd, to interrupt its read
  int subscriberFd_ = -1;
  std::atomic<bool> subscribedNow_{false};

  std::atomic<uint64_t> written_{0}, writeErrors_{0}, dropped_{0}, published_{0}, received_{0},
      subscribedCount_{0}, leasesTaken_{0}, leasesFound_{0};

  std::thread writer_, subscriber_, renewer_;
};

}  // namespace llmcache::cache::redis
