#pragma once
// RedisClient: a small blocking Redis client (RedisConnection: hiredis 0.14 for the protocol, our
// own socket I/O, TLS by OpenSSL for rediss://): a pool of connections, short connect and
// command timeouts, and a circuit breaker, so that a Redis that is down or hung costs a request
// at most one timeout, then nothing until the next probe. Callers run it off the I/O threads
// (TieredCache's slow pool, the fleet's threads).
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/redis/redis_connection.h"
#include "common/result.h"

namespace llmcache::cache::redis {

// CACHE_REDIS_URL: redis[s]://[[user]:password@]host[:port][/db][?prefix=P][&ca=PATH].
// Percent-escapes are decoded in user, password, prefix and ca. rediss:// is TLS, the server's
// certificate verified against the system CA store, or against ?ca= alone; ca= needs rediss://.
struct RedisUrl {
  bool tls = false;  // rediss://
  std::string host;
  int port = 6379;
  std::string user;      // empty: AUTH with the password alone (Redis < 6, or user "default")
  std::string password;  // empty: no AUTH. Never logged.
  int db = 0;
  std::optional<std::string> prefix;  // ?prefix=: overrides CACHE_REDIS_PREFIX
  std::string caFile;                 // ?ca=: overrides CACHE_REDIS_CA_FILE (rediss:// only)
  // host:port/db, without credentials: for logs and errors.
  std::string display() const;
};
// Errors: InvalidArgument naming the problem (the password never appears in the message).
Result<RedisUrl> parseRedisUrl(std::string_view url);

struct RedisClientOptions {
  RedisUrl url;
  std::chrono::milliseconds connectTimeout{250};
  std::chrono::milliseconds commandTimeout{250};  // per socket read/write, not per command
  size_t maxIdle = 8;                             // pooled connections kept open
  // After a connection failure the client fails at once (Unavailable) for backoffMin, then
  // probes again; each failed probe doubles the pause, up to backoffMax. A success resets it.
  std::chrono::milliseconds backoffMin{100};
  std::chrono::milliseconds backoffMax{2000};
};

struct RedisClientStats {
  uint64_t commands = 0;
  uint64_t failures = 0;  // connection or I/O failures (each opens the circuit)
  uint64_t rejected = 0;  // failed at once because the circuit was open
  uint64_t connects = 0;
  // The last connect or command reached Redis (false before the first, and after a failure
  // until one succeeds): llmcache_redis_up.
  bool up = false;
};

class RedisClient {
 public:
  // With a rediss:// URL, loads the trusted CAs now: ready() says whether that worked.
  explicit RedisClient(RedisClientOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Runs one command. Errors: Unavailable (circuit open, cannot connect, I/O error or timeout:
  // the circuit opens), Io (Redis answered with an error reply; the connection is fine).
  Result<RedisValue> command(std::initializer_list<std::string_view> args);
  Result<RedisValue> command(const std::vector<std::string_view>& args);
  // Whether the circuit is closed (the last operation reached Redis or the pause is over).
  bool available() const;
  // InvalidArgument when the TLS settings cannot be used (an unreadable CA file): every
  // command fails then; check at start-up.
  Result<void> ready() const;
  // A connection of its own (not pooled), authenticated and on the right database, without the
  // command timeout (for a blocking SUBSCRIBE reader).
  Result<ConnectionPtr> connectDedicated();
  // Opens the circuit as a failure of the connection would (a subscriber that lost its link).
  void reportFailure();

  RedisClientStats stats() const;
  const RedisClientOptions& options() const { return options_; }

 private:
  Result<ConnectionPtr> connect(bool withTimeout);
  void tripLocked();

  RedisClientOptions options_;
  std::shared_ptr<TlsContext> tls_;
  std::optional<Error> tlsError_;
  mutable std::mutex mutex_;
  std::vector<ConnectionPtr> idle_;
  std::chrono::steady_clock::time_point openUntil_{};
  std::chrono::milliseconds backoff_{0};
  RedisClientStats stats_;
};

}  // namespace llmcache::cache::redis
