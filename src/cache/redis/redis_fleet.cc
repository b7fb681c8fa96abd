#include "cache/redis/redis_fleet.h"

#include <sys/socket.h>

#include "common/log.h"

namespace llmcache::cache::redis {

namespace {

// The lease is ours while it holds our token: renew or delete it only then.
constexpr std::string_view kRenewScript =
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
constexpr std::string_view kReleaseScript =
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) else return 0 end";

LogLimiter writeLog, subscribeLog;

}  // namespace

RedisFleet::RedisFleet(RedisClient& client, RedisTier& tier, RedisFleetOptions options,
                       RedisFleetHandlers handlers)
    : client_(client),
      tier_(tier),
      options_(std::move(options)),
      handlers_(std::move(handlers)),
      clock_(options_.clock ? options_.clock : &Clock::system()) {
  if (options_.instanceId.empty()) options_.instanceId = newCacheId().substr(0, 16);
  writer_ = std::thread([this] { writerLoop(); });
  subscriber_ = std::thread([this] { subscriberLoop(); });
  renewer_ = std::thread([this] { renewerLoop(); });
}

RedisFleet::~RedisFleet() { stop(); }

void RedisFleet::stop(std::chrono::milliseconds limit) {
  {
    std::unique_lock lock(mutex_);
    if (stopping_ && !writer_.joinable()) return;
    idle_.wait_for(lock, limit, [this] { return queue_.empty() && !writing_; });
    stopping_ = true;
  }
  wake_.notify_all();
  {
    std::lock_guard lock(subscriberMutex_);
    if (subscriberFd_ >= 0) ::shutdown(subscriberFd_, SHUT_RDWR);
  }
  for (std::thread* t : {&writer_, &subscriber_, &renewer_})
    if (t->joinable()) t->join();
}

RedisFleetStats RedisFleet::stats() const {
  return {written_.load(),  writeErrors_.load(),     dropped_.load(),     published_.load(),
          received_.load(), subscribedCount_.load(), leasesTaken_.load(), leasesFound_.load()};
}

std::string RedisFleet::leaseKey(std::string_view requestHash) const {
  return options_.prefix + "lease:" + std::string(requestHash);
}

// --- writes ---------------------------------------------------------------------------------

Result<void> RedisFleet::enqueue(EntryPtr entry) {
  const size_t bytes = entry->approxBytes();
  std::lock_guard lock(mutex_);
  if (stopping_) return makeError(Errc::Unavailable, "redis: stopping");
  if (queuedBytes_ + bytes > options_.maxQueuedBytes) {
    ++dropped_;
    return makeError(Errc::TooLarge, "redis: " + std::to_string(queuedBytes_) +
                                         " bytes of writes waiting; this one is not written");
  }
  queuedBytes_ += bytes;
  queue_.push_back(std::move(entry));
  wake_.notify_all();
  return {};
}

void RedisFleet::writerLoop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    EntryPtr entry = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    lock.unlock();
    if (auto r = tier_.insert(entry); !r) {
      ++writeErrors_;
      warnLimited(writeLog, "redis tier failed: write: {}", r.error().message);
    } else {
      ++written_;
      // The lease on this prompt (ours, or one a dead holder left) has done its job: waiters
      // find the entry now.
      (void)client_.command({"DEL", leaseKey(entry->requestHash)});
      publish(Json::object()
                  .set("type", Json::string("stored"))
                  .set("cache_key", Json::string(entry->cacheKey))
                  .set("request_hash", Json::string(entry->requestHash)));
    }
    const size_t bytes = entry->approxBytes();
    entry.reset();
    lock.lock();
    queuedBytes_ -= std::min(queuedBytes_, bytes);
    writing_ = false;
    if (queue_.empty()) idle_.notify_all();
  }
}

// --- pub/sub --------------------------------------------------------------------------------

bool RedisFleet::publish(const Json& message) {
  Json m = message;
  m.set("v", Json::integer(1));
  m.set("instance", Json::string(options_.instanceId));
  const std::string text = toJson(m);
  const std::string ch = channel();
  auto r = client_.command({"PUBLISH", ch, text});
  if (r) ++published_;
  return static_cast<bool>(r);
}

void RedisFleet::publishInvalidation(const Json& body) {
  if (body.getBool("dry_run") == std::optional<bool>(true)) return;
  Json request = body;
  request.erase("dry_run");
  publish(Json::object()
              .set("type", Json::string("invalidate"))
              .set("created", Json::string(formatIso8601(clock_->now())))
              .set("request", std::move(request)));
}

void RedisFleet::dispatch(std::string_view text) {
  ++received_;
  auto parsed = parseJson(text);
  if (!parsed || !parsed->isObject()) return;
  const Json& m = *parsed;
  auto type = m.getString("type");
  if (!type) return;
  const bool ours = m.getString("instance") == std::optional<std::string_view>(options_.instanceId);
  if (*type == "stored" || *type == "released") {
    if (auto hash = m.getString("request_hash")) notifyWatchers(std::string(*hash));
    if (*type == "stored" && !ours && handlers_.onStored)
      if (auto key = m.getString("cache_key")) handlers_.onStored(*key);
  } else if (*type == "invalidate" && !ours && handlers_.onInvalidation) {
    const Json* request = m.find("request");
    TimePoint created = clock_->now();
    if (auto c = m.getString("created")) (void)parseIso8601(*c, created);
    if (request && request->isObject()) handlers_.onInvalidation(*request, created);
  }
}

void RedisFleet::subscriberLoop() {
  auto backoff = std::chrono::milliseconds(100);
  auto stopped = [this] {
    std::lock_guard lock(mutex_);
    return stopping_;
  };
  while (!stopped()) {
    auto connected = client_.connectDedicated();
    if (connected) {
      ConnectionPtr c = std::move(*connected);
      {
        std::lock_guard lock(subscriberMutex_);
        subscriberFd_ = c->fd();
      }
      if (!stopped()) {
        const std::string ch = channel();
        auto first = c->command({"SUBSCRIBE", ch});
        std::string ended = first ? "" : first.error().message;
        if (first) {
          ++subscribedCount_;
          subscribedNow_ = true;
          backoff = std::chrono::milliseconds(100);
          for (;;) {
            auto r = c->read();
            if (!r) {
              ended = r.error().message;
              break;
            }
            const auto& e = r->elements;
            if (r->type == RedisValue::Type::Array && e.size() == 3 &&
                e[0].type == RedisValue::Type::String && e[0].str == "message" &&
                e[2].type == RedisValue::Type::String)
              dispatch(e[2].str);
          }
          subscribedNow_ = false;
        }
        if (!stopped())
          warnLimited(subscribeLog, "redis: the subscription to {} ended: {}; resubscribing", ch,
                      ended);
      }
      std::lock_guard lock(subscriberMutex_);
      subscriberFd_ = -1;
    }
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, backoff, [this] { return stopping_; });
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(2));
  }
}

// --- leases ---------------------------------------------------------------------------------

Fleet::Lease RedisFleet::acquire(std::string_view requestHash) {
  if (options_.leaseTtl.count() <= 0) return Lease::Unavailable;
  std::string token;
  {
    std::lock_guard lock(mutex_);
    token = options_.instanceId + "-" + std::to_string(++nextToken_);
  }
  const std::string key = leaseKey(requestHash);
  const std::string px = std::to_string(options_.leaseTtl.count());
  auto r = client_.command({"SET", key, token, "NX", "PX", px});
  if (!r) return Lease::Unavailable;
  if (r->isNil()) {
    ++leasesFound_;
    return Lease::Taken;
  }
  ++leasesTaken_;
  std::lock_guard lock(mutex_);
  held_[std::string(requestHash)] = std::move(token);
  return Lease::Held;
}

void RedisFleet::release(std::string_view requestHash, bool stored) {
  std::string token;
  {
    std::lock_guard lock(mutex_);
    auto it = held_.find(std::string(requestHash));
    if (it == held_.end()) return;
    token = std::move(it->second);
    held_.erase(it);
  }
  // Stored: the writer deletes the lease once the entry is in Redis (waiters then find it).
  if (stored) return;
  const std::string key = leaseKey(requestHash);
  (void)client_.command({"EVAL", kReleaseScript, "1", key, token});
  publish(Json::object()
              .set("type", Json::string("released"))
              .set("request_hash", Json::string(std::string(requestHash))));
}

bool RedisFleet::held(std::string_view requestHash) {
  auto r = client_.command({"EXISTS", leaseKey(requestHash)});
  return r && r->integer > 0;
}

std::shared_ptr<void> RedisFleet::watch(std::string_view requestHash,
                                        std::function<void()> notify) {
  uint64_t id;
  std::string hash(requestHash);
  {
    std::lock_guard lock(mutex_);
    id = ++nextWatcher_;
    watchers_.emplace(hash, Watcher{id, std::move(notify)});
  }
  // The handle's deleter unregisters.
  return std::shared_ptr<void>(nullptr, [this, id, hash](void*) {
    std::lock_guard lock(mutex_);
    auto [b, e] = watchers_.equal_range(hash);
    for (auto it = b; it != e; ++it)
      if (it->second.id == id) {
        watchers_.erase(it);
        return;
      }
  });
}

void RedisFleet::notifyWatchers(const std::string& requestHash) {
  std::vector<std::function<void()>> calls;
  {
    std::lock_guard lock(mutex_);
    auto [b, e] = watchers_.equal_range(requestHash);
    for (auto it = b; it != e; ++it) calls.push_back(it->second.notify);
  }
  for (auto& c : calls) c();
}

void RedisFleet::renewerLoop() {
  if (options_.leaseTtl.count() <= 0) return;
  const auto period =
      std::max<std::chrono::milliseconds>(options_.leaseTtl / 3, std::chrono::milliseconds(10));
  std::unique_lock lock(mutex_);
  for (;;) {
    if (wake_.wait_for(lock, period, [this] { return stopping_; })) return;
    std::vector<std::pair<std::string, std::string>> leases(held_.begin(), held_.end());
    lock.unlock();
    const std::string px = std::to_string(options_.leaseTtl.count());
    for (const auto& [hash, token] : leases)
      (void)client_.command({"EVAL", kRenewScript, "1", leaseKey(hash), token, px});
    lock.lock();
  }
}

}  // namespace llmcache::cache::redis
