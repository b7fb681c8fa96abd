#pragma once
// RedisConnection: one blocking connection to Redis, plain TCP or TLS (rediss://), with the
// protocol left to hiredis 0.14 (redisFormatCommandArgv writes a command, a redisReader parses
// replies) and the socket I/O done here: Debian 12's hiredis has no TLS, so TLS is OpenSSL's
// (libssl) over memory BIOs, and both kinds share one code path. Connect timeout (non-blocking
// connect, poll), then a per-read/write timeout (SO_RCVTIMEO/SO_SNDTIMEO); writes never raise
// SIGPIPE. Not thread-safe: one thread at a time (RedisClient's pool hands each to one caller).
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

struct ssl_ctx_st;
struct ssl_st;
struct bio_st;
struct redisReader;

namespace llmcache::cache::redis {

// One reply, converted from hiredis's.
struct RedisValue {
  enum class Type : uint8_t { Nil, String, Integer, Status, Array };
  Type type = Type::Nil;
  std::string str;  // String, Status
  long long integer = 0;
  std::vector<RedisValue> elements;  // Array
  bool isNil() const { return type == Type::Nil; }
};

// What a rediss:// connection trusts. Verification cannot be turned off (docs/redis.md, TLS).
struct TlsOptions {
  // PEM file of the CA certificates to trust (?ca= or CACHE_REDIS_CA_FILE) instead of the
  // system store (/etc/ssl/certs, Debian's ca-certificates). Empty: the system store.
  std::string caFile;
};

// The TLS client settings shared by every connection of a client (an SSL_CTX: certificate
// verification on, the trusted CAs loaded once, TLS 1.2 at least).
class TlsContext {
 public:
  // Errors: InvalidArgument (the CA file cannot be read or holds no certificate).
  static Result<std::shared_ptr<TlsContext>> create(const TlsOptions& options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  ssl_ctx_st* get() const { return ctx_; }

 private:
  explicit TlsContext(ssl_ctx_st* ctx) : ctx_(ctx) {}
  ssl_ctx_st* ctx_;
};

struct ConnectOptions {
  std::string host;  // a name (resolved; verified against the certificate, sent as SNI) or an IP
  int port = 6379;
  std::chrono::milliseconds connectTimeout{250};  // TCP connect and the TLS handshake, each
  std::shared_ptr<TlsContext> tls;                // set: TLS
};

class RedisConnection {
 public:
  // Connects (and shakes hands, verifying the server's certificate and name). Errors:
  // Unavailable naming the host and what failed (resolution, connect, timeout, the
  // certificate and why it was refused).
  static Result<std::unique_ptr<RedisConnection>> open(const ConnectOptions& options);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Each later socket read and write waits at most this long; 0: forever (a subscriber).
  void setTimeout(std::chrono::milliseconds timeout);
  // Sends one command and reads its reply. Errors: Unavailable (I/O error, timeout, closed,
  // a protocol error: the connection is unusable then, drop it), Io (Redis answered with an
  // error reply; the connection is fine).
  Result<RedisValue> command(const std::vector<std::string_view>& args);
  // Reads the next reply (a subscriber's messages). Errors as command().
  Result<RedisValue> read();
  // The socket, to shutdown() it from another thread and so end a blocked read().
  int fd() const { return fd_; }
  bool tls() const { return ssl_ != nullptr; }

 private:
  RedisConnection(int fd, std::string where);
  Result<void> handshake(const ConnectOptions& options);
  Result<void> writeAll(std::string_view data);
  Result<void> sendRaw(const char* data, size_t size);
  Result<void> flushTls();
  Result<size_t> receive(char* buf, size_t size);  // 0: never (closed is an error)
  Result<size_t> recvRaw(char* buf, size_t size);
  Error ioError(std::string_view what) const;

  int fd_;
  std::string where_;  // host:port, for errors
  ssl_st* ssl_ = nullptr;
  bio_st* in_ = nullptr;   // TLS bytes received, for OpenSSL to read (owned by ssl_)
  bio_st* out_ = nullptr;  // TLS bytes OpenSSL wrote, to send (owned by ssl_)
  redisReader* reader_;
};

using ConnectionPtr = std::unique_ptr<RedisConnection>;

}  // namespace llmcache::cache::redis
