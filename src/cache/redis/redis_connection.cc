#include "cache/redis/redis_connection.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace llmcache::cache::redis {

namespace {

constexpr size_t kReadChunk = 16 * 1024;

RedisValue convert(const redisReply* r) {
  RedisValue v;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      v.type = RedisValue::Type::String;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      v.type = RedisValue::Type::Status;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      v.type = RedisValue::Type::Integer;
      v.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      v.type = RedisValue::Type::Array;
      v.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) v.elements.push_back(convert(r->element[i]));
      break;
    default:
      v.type = RedisValue::Type::Nil;
  }
  return v;
}

// OpenSSL's queued errors as one line, the queue emptied (it is per thread).
std::string sslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown TLS error" : out;
}

bool isIpLiteral(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

// Connects one address within the timeout; the socket is blocking again on success.
int connectOne(const addrinfo* ai, std::chrono::milliseconds timeout, int& err) {
  int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
  if (fd < 0) {
    err = errno;
    return -1;
  }
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      err = errno;
      ::close(fd);
      return -1;
    }
    pollfd p{.fd = fd, .events = POLLOUT, .revents = 0};
    int n;
    do {
      n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    } while (n < 0 && errno == EINTR);
    if (n == 0) {
      err = ETIMEDOUT;
      ::close(fd);
      return -1;
    }
    int soError = 0;
    socklen_t len = sizeof soError;
    if (n < 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len) != 0 || soError != 0) {
      err = n < 0 ? errno : soError;
      ::close(fd);
      return -1;
    }
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // As hiredis's redisEnableKeepAlive: a dead peer is noticed within a minute even when idle.
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  int idle = 15, interval = 5, count = 3;
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  return fd;
}

}  // namespace

// --- TlsContext -----------------------------------------------------------------------------

Result<std::shared_ptr<TlsContext>> TlsContext::create(const TlsOptions& options) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return makeError(Errc::InvalidArgument, "redis TLS: " + sslErrors());
  std::shared_ptr<TlsContext> out(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (!options.caFile.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, options.caFile.c_str(), nullptr) != 1)
      return makeError(Errc::InvalidArgument,
                       "redis TLS: cannot load the CA file " + options.caFile + ": " + sslErrors());
  } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    return makeError(Errc::InvalidArgument,
                     "redis TLS: cannot load the system CA store: " + sslErrors());
  }
  return out;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

// --- RedisConnection ------------------------------------------------------------------------

RedisConnection::RedisConnection(int fd, std::string where)
    : fd_(fd), where_(std::move(where)), reader_(redisReaderCreate()) {}

RedisConnection::~RedisConnection() {
  if (ssl_) {
    // A polite close_notify when the session is sound; never waits for the socket.
    if (SSL_is_init_finished(ssl_) && !(SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN)) {
      ERR_clear_error();
      if (SSL_shutdown(ssl_) >= 0) {
        char* data = nullptr;
        long n = BIO_get_mem_data(out_, &data);
        if (n > 0) (void)::send(fd_, data, static_cast<size_t>(n), MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      ERR_clear_error();
    }
    SSL_free(ssl_);  // and its BIOs
  }
  if (reader_) redisReaderFree(reader_);
  ::close(fd_);
}

Result<std::unique_ptr<RedisConnection>> RedisConnection::open(const ConnectOptions& options) {
  const std::string where = options.host + ":" + std::to_string(options.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(options.port);
  if (int rc = ::getaddrinfo(options.host.c_str(), port.c_str(), &hints, &found); rc != 0)
    return makeError(Errc::Unavailable,
                     "redis " + where + ": cannot resolve the host: " + gai_strerror(rc));
  int fd = -1, err = 0;
  for (const addrinfo* ai = found; ai && fd < 0; ai = ai->ai_next)
    fd = connectOne(ai, options.connectTimeout, err);
  ::freeaddrinfo(found);
  if (fd < 0)
    return makeError(Errc::Unavailable, "redis " + where + ": cannot connect: " +
                                            (err == ETIMEDOUT ? std::string("timed out")
                                                              : std::string(std::strerror(err))));
  std::unique_ptr<RedisConnection> c(new RedisConnection(fd, where));
  if (!c->reader_) return makeError(Errc::Unavailable, "redis " + where + ": out of memory");
  c->setTimeout(options.connectTimeout);
  if (options.tls)
    if (auto r = c->handshake(options); !r) return r.error();
  return c;
}

void RedisConnection::setTimeout(std::chrono::milliseconds timeout) {
  timeval tv{.tv_sec = static_cast<time_t>(timeout.count() / 1000),
             .tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

Error RedisConnection::ioError(std::string_view what) const {
  return makeError(Errc::Unavailable, "redis " + where_ + ": " + std::string(what));
}

Result<void> RedisConnection::handshake(const ConnectOptions& options) {
  ERR_clear_error();
  ssl_ = SSL_new(options.tls->get());
  if (!ssl_) return ioError("TLS: " + sslErrors());
  // Memory BIOs: OpenSSL encrypts into out_ and decrypts from in_, the bytes cross the socket
  // here (send with MSG_NOSIGNAL: no SIGPIPE, and the same timeouts as plain connections).
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  if (!in_ || !out_) {
    BIO_free(in_);
    BIO_free(out_);
    in_ = out_ = nullptr;
    return ioError("TLS: out of memory");
  }
  BIO_set_mem_eof_return(in_, -1);  // empty: "read more", not end of stream
  SSL_set_bio(ssl_, in_, out_);
  // The certificate must name the host we asked for: its IP address (SAN iPAddress) for an IP,
  // else its DNS name (SAN dNSName, wildcards as a whole left-most label only), sent as SNI.
  if (isIpLiteral(options.host)) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), options.host.c_str()) != 1)
      return ioError("TLS: cannot verify against the IP address " + options.host);
  } else {
    SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl_, options.host.c_str()) != 1 ||
        SSL_set_tlsext_host_name(ssl_, options.host.c_str()) != 1)
      return ioError("TLS: cannot verify against the host name " + options.host);
  }
  SSL_set_connect_state(ssl_);
  for (;;) {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_);
    if (auto f = flushTls(); !f) return f.error();
    if (r == 1) return {};
    const int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ) {
      char buf[kReadChunk];
      auto n = recvRaw(buf, sizeof buf);
      if (!n) return makeError(Errc::Unavailable, n.error().message + " (TLS handshake)");
      BIO_write(in_, buf, static_cast<int>(*n));
      continue;
    }
    if (const long v = SSL_get_verify_result(ssl_); v != X509_V_OK) {
      ERR_clear_error();
      return ioError("TLS: the server's certificate is refused: " +
                     std::string(X509_verify_cert_error_string(v)));
    }
    return ioError("TLS handshake failed: " + sslErrors());
  }
}

Result<void> RedisConnection::sendRaw(const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return ioError("write timed out");
      return ioError(std::string("write failed: ") + std::strerror(errno));
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return {};
}

Result<size_t> RedisConnection::recvRaw(char* buf, size_t size) {
  for (;;) {
    const ssize_t n = ::recv(fd_, buf, size, 0);
    if (n > 0) return static_cast<size_t>(n);
    if (n == 0) return ioError("connection closed by the server");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return ioError("read timed out");
    return ioError(std::string("read failed: ") + std::strerror(errno));
  }
}

Result<void> RedisConnection::flushTls() {
  char* data = nullptr;
  const long n = BIO_get_mem_data(out_, &data);
  if (n <= 0) return {};
  auto sent = sendRaw(data, static_cast<size_t>(n));
  // Consumed (BIO_reset would also zero the whole buffer, as large as the largest write).
  char scratch[kReadChunk];
  for (long left = n; left > 0;) {
    const int got = BIO_read(out_, scratch, static_cast<int>(std::min<long>(left, sizeof scratch)));
    if (got <= 0) break;
    left -= got;
  }
  return sent;
}

Result<void> RedisConnection::writeAll(std::string_view data) {
  if (!ssl_) return sendRaw(data.data(), data.size());
  while (!data.empty()) {
    const int chunk = static_cast<int>(std::min<size_t>(data.size(), INT_MAX / 2));
    ERR_clear_error();
    const int n = SSL_write(ssl_, data.data(), chunk);  // into out_: all of it, or an error
    if (n <= 0) return ioError("TLS write failed: " + sslErrors());
    if (auto f = flushTls(); !f) return f.error();
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<size_t> RedisConnection::receive(char* buf, size_t size) {
  if (!ssl_) return recvRaw(buf, size);
  for (;;) {
    ERR_clear_error();
    const int n = SSL_read(ssl_, buf, static_cast<int>(size));
    if (n > 0) return static_cast<size_t>(n);
    const int e = SSL_get_error(ssl_, n);
    if (e == SSL_ERROR_WANT_READ) {
      if (auto f = flushTls(); !f) return f.error();  // e.g. a key update's answer
      char raw[kReadChunk];
      auto got = recvRaw(raw, sizeof raw);
      if (!got) return got.error();
      BIO_write(in_, raw, static_cast<int>(*got));
      continue;
    }
    if (e == SSL_ERROR_ZERO_RETURN) return ioError("TLS connection closed by the server");
    return ioError("TLS read failed: " + sslErrors());
  }
}

Result<RedisValue> RedisConnection::read() {
  for (;;) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader_, &raw) != REDIS_OK)
      return ioError(std::string("protocol error: ") + reader_->errstr);
    if (raw) {
      auto* r = static_cast<redisReply*>(raw);
      Result<RedisValue> out =
          r->type == REDIS_REPLY_ERROR
              ? Result<RedisValue>(makeError(Errc::Io, "redis: " + std::string(r->str, r->len)))
              : Result<RedisValue>(convert(r));
      freeReplyObject(r);
      return out;
    }
    char buf[kReadChunk];
    auto n = receive(buf, sizeof buf);
    if (!n) return n.error();
    if (redisReaderFeed(reader_, buf, *n) != REDIS_OK)
      return ioError(std::string("protocol error: ") + reader_->errstr);
  }
}

Result<RedisValue> RedisConnection::command(const std::vector<std::string_view>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (auto a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  char* formatted = nullptr;
  const int len =
      redisFormatCommandArgv(&formatted, static_cast<int>(argv.size()), argv.data(), lens.data());
  if (len < 0 || !formatted) return ioError("out of memory formatting a command");
  std::unique_ptr<char, decltype(&redisFreeCommand)> owned(formatted, &redisFreeCommand);
  if (auto w = writeAll(std::string_view(formatted, static_cast<size_t>(len))); !w)
    return w.error();
  return read();
}

}  // namespace llmcache::cache::redis
