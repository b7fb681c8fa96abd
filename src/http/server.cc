#include "http/server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <cerrno>
#include <charconv>
#include <iostream>
#include <optional>

namespace llmcache::http {

namespace {
constexpr auto kNoThrow = net::as_tuple(net::use_awaitable);
using tcp = net::ip::tcp;

// How long the accept loop pauses when accept() fails for want of descriptors or memory: the
// waiting connection stays in the backlog and the listening socket stays readable, so accepting
// again at once would spin.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(50);
// Waiting connections answered 503 on the spare descriptor per pause.
constexpr int kShedPerPause = 64;
// How long such a connection is given to send its request line (its target picks the error's
// shape) before it is answered anyway; the spare descriptor is in use meanwhile.
constexpr auto kShedReadTimeout = std::chrono::milliseconds(200);
// How often such a connection is polled meanwhile (and while its answer does not fit).
constexpr auto kShedPoll = std::chrono::milliseconds(5);
// The Retry-After of a 503 for too many connections or too few descriptors, in seconds.
constexpr const char* kRetryAfter = "1";
// The most of a refused upload (413, or 503 for the body budget) read and dropped so that the
// client can read its answer; a larger one has its connection closed (a reset).
constexpr uint64_t kMaxDrainBytes = 64ull << 20;

// For a request refused by its Content-Length (Beast's body_limit, raised once the head is
// parsed whole and consumed from the buffer, but before the parser calls the header done, so
// its content_length() may not be asked): the body's length to drain, from the head's field; 0
// when there is nothing to drain (no usable Content-Length, a client waiting for a 100, or a
// body over maxBytes).
uint64_t refusedBodyToDrain(const bhttp::request_header<>& head, uint64_t maxBytes) {
  if (beast::iequals(head[bhttp::field::expect], "100-continue")) return 0;
  const std::string_view value = head[bhttp::field::content_length];
  uint64_t n = 0;
  const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || p != value.data() + value.size() || n > maxBytes) return 0;
  return n;
}

// Reads and drops the rest of a body of `length` bytes (what the buffer holds first) through a
// 64 KB scratch, never the body in memory; each read within the stream's current deadline.
net::awaitable<void> drain(beast::tcp_stream& stream, beast::flat_buffer& buffer, uint64_t length) {
  uint64_t left = length - std::min<uint64_t>(length, buffer.size());
  buffer.consume(buffer.size());
  std::vector<char> scratch(64 << 10);
  while (left > 0) {
    auto [ec, n] = co_await stream.async_read_some(
        net::buffer(scratch.data(), std::min<uint64_t>(left, scratch.size())), kNoThrow);
    if (ec) break;
    left -= n;
  }
}

// One of these OS error numbers. By value, without a virtual call into the error's category:
// comparing with a std::errc condition went through category().equivalent(), a call UBSan's vptr
// check could not validate out of descriptors (see answerUnavailable).
bool isSystemError(const boost::system::error_code& ec, std::initializer_list<int> values) {
  if (ec.category() != boost::system::system_category()) return false;
  return std::find(values.begin(), values.end(), ec.value()) != values.end();
}

// accept() errors that concern one connection only (it was reset while it waited, ...): the next
// one may be fine. Any other error would repeat at once (descriptors, memory).
bool connectionOnlyAcceptError(const boost::system::error_code& ec) {
  return isSystemError(ec, {ECONNABORTED, ECONNRESET, EAGAIN, EWOULDBLOCK, EINTR, EPROTO, EPERM});
}

bool outOfDescriptors(const boost::system::error_code& ec) {
  return isSystemError(ec, {EMFILE, ENFILE});
}

// The target of a request line ("POST /v1/messages HTTP/1.1"), or empty.
std::string_view requestTarget(std::string_view head) {
  const size_t eol = head.find("\r\n");
  if (eol == std::string_view::npos) return {};
  head = head.substr(0, eol);
  const size_t sp1 = head.find(' ');
  if (sp1 == std::string_view::npos) return {};
  const size_t sp2 = head.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return {};
  return head.substr(sp1 + 1, sp2 - sp1 - 1);
}

int openSpare() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }
}  // namespace

// What stop() needs to reach a connection: its strand and whether a request is in flight.
struct Server::SessionState {
  // The connection's strand. stop() posts to it from another thread; it must not read `stream`
  // for that, since the session may be tearing the stream down at that very moment.
  net::any_io_executor executor;
  beast::tcp_stream* stream = nullptr;  // touched only on the session's strand
  bool busy = false;                    // touched only on the session's strand
};

net::awaitable<void> ResponseWriter::send(Response response) {
  std::string body = std::move(response.body());  // lives in this frame until the write is done
  co_await sendView(std::move(response), body);
}

net::awaitable<void> ResponseWriter::sendView(Response response, std::string_view body) {
  for (const auto& [name, value] : everyHead_) response.set(name, value);
  co_await sendResponse(std::move(response), body);
}

net::awaitable<bool> ResponseWriter::beginStream(bhttp::status status, const Fields& headers) {
  if (everyHead_.empty()) co_return co_await startStream(status, headers);
  Fields with = headers;
  for (const auto& [name, value] : everyHead_) with.set(name, value);
  co_return co_await startStream(status, with);
}

net::awaitable<void> StreamResponseWriter::sendResponse(Response response, std::string_view body) {
  started_ = true;
  keepAlive_ = keepAlive_ && request_.keep_alive() && response.keep_alive() &&
               !(drainingFlag_ && drainingFlag_->load());
  bhttp::response<bhttp::span_body<const char>> out{
      std::move(response.base()), boost::span<const char>(body.data(), body.size())};
  out.version(request_.version());
  out.keep_alive(keepAlive_);
  out.prepare_payload();
  stream_.expires_after(writeTimeout_);
  auto [ec, n] = co_await bhttp::async_write(stream_, out, kNoThrow);
  if (ec) failed_ = true;
}

net::awaitable<bool> StreamResponseWriter::startStream(bhttp::status status,
                                                       const Fields& headers) {
  started_ = true;
  bhttp::response<bhttp::empty_body> head{status, request_.version()};
  for (const auto& f : headers) head.set(f.name_string(), f.value());
  chunked_ = request_.version() >= 11;
  // HTTP/1.0 has no chunking: the end of the body is the end of the connection.
  keepAlive_ =
      keepAlive_ && chunked_ && request_.keep_alive() && !(drainingFlag_ && drainingFlag_->load());
  head.keep_alive(keepAlive_);
  head.chunked(chunked_);
  bhttp::response_serializer<bhttp::empty_body> sr{head};
  stream_.expires_after(writeTimeout_);
  auto [ec, n] = co_await bhttp::async_write_header(stream_, sr, kNoThrow);
  if (ec) failed_ = true;
  co_return !failed_;
}

net::awaitable<bool> StreamResponseWriter::write(std::string_view bytes) {
  if (failed_) co_return false;
  if (bytes.empty()) co_return true;
  stream_.expires_after(writeTimeout_);
  boost::system::error_code ec;
  if (chunked_) {
    std::tie(ec, std::ignore) = co_await net::async_write(
        stream_, bhttp::make_chunk(net::buffer(bytes.data(), bytes.size())), kNoThrow);
  } else {
    std::tie(ec, std::ignore) =
        co_await net::async_write(stream_, net::buffer(bytes.data(), bytes.size()), kNoThrow);
  }
  if (ec) failed_ = true;
  co_return !failed_;
}

net::awaitable<void> StreamResponseWriter::finish() {
  if (failed_ || !chunked_) co_return;
  stream_.expires_after(writeTimeout_);
  auto [ec, n] = co_await net::async_write(stream_, bhttp::make_chunk_last(), kNoThrow);
  if (ec) failed_ = true;
}

Server::Server(ServerOptions options, Handler handler, ErrorResponder errors)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      errors_(std::move(errors)),
      acceptor_(io_) {
  const tcp::endpoint ep{net::ip::make_address(options_.host), options_.port};
  acceptor_.open(ep.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(net::socket_base::max_listen_connections);
  port_ = acceptor_.local_endpoint().port();
  spareFd_ = openSpare();
}

Server::~Server() {
  if (spareFd_ >= 0) ::close(spareFd_);
}

void Server::run() {
  const int n = options_.threads > 0
                    ? options_.threads
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  using Guard = net::executor_work_guard<net::io_context::executor_type>;
  // Every context runs until stopContexts(), idle or not: once the acceptor closes, io_ may
  // have nothing left while requests still finish on the others.
  std::vector<Guard> guards;
  guards.push_back(net::make_work_guard(io_));
  for (int i = 1; i < n; ++i) {
    others_.push_back(std::make_unique<net::io_context>(1));
    guards.push_back(net::make_work_guard(*others_.back()));
  }
  net::co_spawn(io_, acceptLoop(), net::detached);
  std::vector<std::thread> threads;
  for (auto& ctx : others_) threads.emplace_back([c = ctx.get()] { c->run(); });
  io_.run();
  stopContexts();
  for (auto& t : threads) t.join();
}

void Server::stopContexts() {
  io_.stop();
  for (auto& ctx : others_) ctx->stop();
}

net::io_context& Server::nextContext() {
  const size_t i = nextContext_++ % (others_.size() + 1);
  return i == 0 ? io_ : *others_[i - 1];
}

void Server::stop() {
  if (draining_.exchange(true)) return;
  net::post(io_, [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
    // Idle kept-alive connections are waiting for a next request that must not come: cancel
    // their read. Busy ones finish their response and then close (the loop checks draining_).
    std::lock_guard lock(sessionsMutex_);
    for (const auto& s : sessions_) {
      net::post(s->executor, [s] {
        if (s->stream && !s->busy) s->stream->socket().cancel();
      });
    }
    graceTimer_ = std::make_unique<net::steady_timer>(io_, options_.shutdownGrace);
    graceTimer_->async_wait([this](boost::system::error_code ec) {
      if (!ec) stopContexts();  // in-flight requests outlived the grace period
    });
    maybeFinishDrain();
  });
}

void Server::maybeFinishDrain() {
  if (draining_ && connections_.load() == 0) {
    net::post(io_, [this] {
      if (graceTimer_) graceTimer_->cancel();
      stopContexts();
    });
  }
}

net::awaitable<void> Server::acceptLoop() {
  net::steady_timer backoff(io_);
  for (;;) {
    // The next context in turn; each is single-threaded, so the connection needs no strand.
    net::io_context& ctx = nextContext();
    auto [ec, socket] = co_await acceptor_.async_accept(ctx, kNoThrow);
    if (ec) {
      if (!acceptor_.is_open() || draining_) co_return;
      if (connectionOnlyAcceptError(ec)) continue;
      // Out of descriptors (EMFILE, ENFILE) or kernel memory: answer who waits 503 where the
      // spare descriptor allows, then pause instead of spinning on the readable listener. The
      // connections that still wait are accepted once descriptors free up.
      if (outOfDescriptors(ec) && spareFd_ >= 0 && !shedding_) {
        shedding_ = true;
        net::co_spawn(io_, shedWaitingConnections(), net::detached);
      }
      backoff.expires_after(kAcceptBackoff);
      co_await backoff.async_wait(kNoThrow);
      if (!acceptor_.is_open() || draining_) co_return;
      if (spareFd_ < 0 && !shedding_) spareFd_ = openSpare();
      continue;
    }
    if (connections_.load() >= options_.maxConnections) {
      auto ex = socket.get_executor();
      net::co_spawn(ex, rejectConnection(std::move(socket)), net::detached);
      continue;
    }
    ++connections_;
    auto ex = socket.get_executor();
    net::co_spawn(ex, session(std::move(socket)), [this](std::exception_ptr) {
      --connections_;
      maybeFinishDrain();
    });
  }
}

net::awaitable<void> Server::rejectConnection(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  Response res = errorResponse(bhttp::status::service_unavailable,
                               "too many connections, try again later", "", 11);
  res.set(bhttp::field::retry_after, kRetryAfter);
  res.keep_alive(false);
  res.prepare_payload();
  stream.expires_after(std::chrono::seconds(5));
  co_await bhttp::async_write(stream, res, kNoThrow);
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
}

net::awaitable<void> Server::shedWaitingConnections() {
  for (int i = 0; i < kShedPerPause && spareFd_ >= 0 && acceptor_.is_open() && !draining_; ++i) {
    const int listener = acceptor_.native_handle();
    // Asio made the listener non-blocking for its async accepts; make sure: a blocking accept()
    // with nobody waiting would stall the I/O thread.
    if (const int flags = ::fcntl(listener, F_GETFL); flags >= 0 && !(flags & O_NONBLOCK))
      ::fcntl(listener, F_SETFL, flags | O_NONBLOCK);
    ::close(spareFd_);
    spareFd_ = -1;
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) co_await answerUnavailable(fd);
    // Another thread may have taken the freed descriptor: then there is no spare until a later
    // pause of the accept loop reopens it.
    spareFd_ = openSpare();
    if (fd < 0) break;  // nobody waits (EAGAIN), or the descriptor went elsewhere (EMFILE)
  }
  shedding_ = false;
}

// Plain syscalls on the descriptor, polled on a timer: no socket object, no Beast stream. The
// process has no descriptor to spare here, and code that first runs in that state cannot be
// checked by UBSan's vptr check, whose slow path probes memory through a pipe()
// (libsanitizer's IsAccessibleMemoryRange): with EMFILE the probe fails, and any polymorphic
// type not validated before is reported as an "invalid vptr" (Beast's transfer_op for this read,
// an instantiation the sessions never use; then a shared_ptr's control block). A timer wait is
// what the accept loop has run before.
net::awaitable<void> Server::answerUnavailable(int fd) {
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  net::steady_timer pause(io_);
  // Waits kShedPoll, unless `until` has passed: false then.
  auto later = [&pause](std::chrono::steady_clock::time_point until) -> net::awaitable<bool> {
    if (std::chrono::steady_clock::now() >= until) co_return false;
    pause.expires_after(kShedPoll);
    auto [ec] = co_await pause.async_wait(kNoThrow);
    co_return !ec;
  };
  auto retry = [] { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; };
  // What the client sends first: its request line names the target, so that the 503 comes in
  // the provider's error shape. Reading it also spares the client a reset on close before it
  // has read the answer (unread input makes close() send RST).
  char head[4096];
  size_t got = 0;
  const auto readUntil = std::chrono::steady_clock::now() + kShedReadTimeout;
  while (got < sizeof head && std::string_view(head, got).find("\r\n") == std::string_view::npos) {
    const ssize_t n = ::recv(fd, head + got, sizeof head - got, MSG_DONTWAIT);
    if (n > 0) {
      got += static_cast<size_t>(n);
    } else if (n == 0 || !retry() || !co_await later(readUntil)) {
      break;
    }
  }
  const std::string_view target = requestTarget(std::string_view(head, got));
  Response res =
      errorResponse(bhttp::status::service_unavailable,
                    "the server is out of file descriptors, try again later", target, 11);
  res.set(bhttp::field::retry_after, kRetryAfter);
  res.keep_alive(false);
  res.prepare_payload();
  std::string wire = "HTTP/1.1 " + std::to_string(res.result_int()) + " ";
  wire += res.reason();
  wire += "\r\n";
  for (const auto& field : res) {
    wire += field.name_string();
    wire += ": ";
    wire += field.value();
    wire += "\r\n";
  }
  wire += "\r\n";
  wire += res.body();
  const auto writeUntil = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  for (size_t sent = 0; sent < wire.size();) {
    const ssize_t n =
        ::send(fd, wire.data() + sent, wire.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n == 0 || !retry() || !co_await later(writeUntil)) {
      break;
    }
  }
  ::shutdown(fd, SHUT_WR);
  while (::recv(fd, head, sizeof head, MSG_DONTWAIT) > 0) {
  }
}

Response Server::errorResponse(bhttp::status status, std::string message, std::string_view target,
                               unsigned version) {
  Response res;
  if (errors_) {
    res = errors_(status, std::move(message), target);
  } else {
    res.result(status);
    res.set(bhttp::field::content_type, "text/plain");
    res.body() = message + "\n";
  }
  res.version(version);
  return res;
}

net::awaitable<void> Server::session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  auto state = std::make_shared<SessionState>();
  state->executor = stream.get_executor();
  state->stream = &stream;
  std::list<std::shared_ptr<SessionState>>::iterator self;
  {
    std::lock_guard lock(sessionsMutex_);
    self = sessions_.insert(sessions_.end(), state);
  }
  beast::flat_buffer buffer;
  bool peerIsLoopback = false;
  {
    beast::error_code ec;
    // No Nagle: a streamed response is many small writes (the head, then one event at a time);
    // held back until the client's delayed ACK, the first event came ~40 ms late (measured).
    stream.socket().set_option(tcp::no_delay(true), ec);
    const auto peer = stream.socket().remote_endpoint(ec);
    peerIsLoopback = !ec && peer.address().is_loopback();
  }
  for (;;) {
    if (draining_) break;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(options_.maxBodyBytes);
    parser.header_limit(options_.maxHeaderBytes);
    // Between requests the idle timeout applies, but only until the next request's first byte:
    // from there its whole head must arrive within the read timeout, so a client dribbling
    // its headers (slowloris) holds a connection for readTimeout, not idleTimeout.
    if (buffer.size() == 0) {
      stream.expires_after(options_.idleTimeout);
      auto [fec, fn] = co_await stream.async_read_some(buffer.prepare(4096), kNoThrow);
      if (fec) break;
      buffer.commit(fn);
    }
    stream.expires_after(options_.readTimeout);
    auto [hec, hn] = co_await bhttp::async_read_header(stream, buffer, parser, kNoThrow);
    if (hec == bhttp::error::body_limit) {
      // Content-Length alone already exceeds the limit: answer without keeping the body.
      Response res = errorResponse(
          bhttp::status::payload_too_large,
          "request body larger than " + std::to_string(options_.maxBodyBytes) + " bytes",
          parser.get().target(), parser.get().version());
      res.keep_alive(false);
      res.prepare_payload();
      stream.expires_after(options_.readTimeout);
      auto [wec, wn] = co_await bhttp::async_write(stream, res, kNoThrow);
      // A client that is still sending reads no answer until it is done, and a socket closed
      // with its upload unread is reset: Node's clients then saw EPIPE ("Connection error") and
      // retried, never the 413. So the upload is read and dropped, up to kMaxDrainBytes (a
      // client announcing gigabytes gets the reset), unless the client waits for a 100.
      const uint64_t toDrain =
          wec ? 0
              : refusedBodyToDrain(parser.get().base(),
                                   std::max(kMaxDrainBytes, options_.maxBodyBytes));
      if (toDrain > 0) co_await drain(stream, buffer, toDrain);
      break;
    }
    if (hec) {
      if (hec == bhttp::error::header_limit) {
        co_await bhttp::async_write(
            stream,
            errorResponse(
                bhttp::status::request_header_fields_too_large,
                "request headers larger than " + std::to_string(options_.maxHeaderBytes) + " bytes",
                "", 11),
            kNoThrow);
      } else if (hec != bhttp::error::end_of_stream && hec != net::error::operation_aborted &&
                 hec != beast::error::timeout && hec != net::error::connection_reset &&
                 hec != net::error::eof) {
        Response res = errorResponse(bhttp::status::bad_request,
                                     "malformed HTTP request: " + hec.message(), "", 11);
        res.keep_alive(false);
        res.prepare_payload();
        co_await bhttp::async_write(stream, res, kNoThrow);
      }
      break;
    }
    state->busy = true;
    const std::string target(parser.get().target());
    // The gateway-wide budget of request bodies in flight, taken before the body is read and
    // given back once the answer is out (the body lives as long as its request).
    const uint64_t bodyBytes = parser.content_length() ? *parser.content_length()
                               : parser.chunked()      ? options_.maxBodyBytes
                                                       : 0;
    struct BodyLease {
      std::atomic<uint64_t>& inFlight;
      uint64_t bytes = 0;
      ~BodyLease() { inFlight.fetch_sub(bytes, std::memory_order_relaxed); }
    } lease{bodyBytesInFlight_};
    if (bodyBytes > 0 && options_.maxBodyBytesInFlight > 0) {
      const uint64_t before = bodyBytesInFlight_.fetch_add(bodyBytes, std::memory_order_relaxed);
      lease.bytes = bodyBytes;
      if (before + bodyBytes > options_.maxBodyBytesInFlight && before > 0) {
        // (A lone body is always admitted: the budget bounds concurrency, not one request.)
        Response res = errorResponse(bhttp::status::service_unavailable,
                                     "the gateway is reading as many request bodies as it "
                                     "holds at once; retry",
                                     target, parser.get().version());
        res.set(bhttp::field::retry_after, "1");
        res.keep_alive(false);
        res.prepare_payload();
        stream.expires_after(options_.readTimeout);
        auto [wec, wn] = co_await bhttp::async_write(stream, res, kNoThrow);
        // A client still sending its body reads no answer until it is done: take the body and
        // drop it (a 64 KB scratch, never the body in memory), so that the client sees the 503
        // rather than a reset. A chunked body is not drained: the connection just closes; nor
        // is one the client holds back until a 100 Continue (it gets the 503 instead).
        const bool waitsFor100 = beast::iequals(parser.get()[bhttp::field::expect], "100-continue");
        if (!wec && parser.content_length() && !waitsFor100)
          co_await drain(stream, buffer, *parser.content_length());
        break;
      }
    }
    // Expect: 100-continue: the client waits for a 100 before it sends the body (curl does for
    // bodies over 1 MB, and sends it anyway after a second). Only for a body the server is about
    // to read: one over the limit was refused above, and one already arriving needs no 100.
    if (!parser.is_done() && buffer.size() == 0 && parser.get().version() >= 11 &&
        beast::iequals(parser.get()[bhttp::field::expect], "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      stream.expires_after(options_.readTimeout);
      auto [cec, cn] = co_await net::async_write(
          stream, net::buffer(kContinue.data(), kContinue.size()), kNoThrow);
      if (cec) break;
    }
    // A chunked body may end in trailer fields, and Beast's parser adds those to the request's
    // header fields: a client could set Authorization or x-llmcache-namespace behind the back of
    // whatever checked the head (a proxy). The handler sees the head as it was; trailers go.
    std::optional<bhttp::request_header<>> head;
    if (parser.chunked()) head = parser.get().base();
    stream.expires_after(options_.readTimeout);
    auto [bec, bn] = co_await bhttp::async_read(stream, buffer, parser, kNoThrow);
    if (bec) {
      if (bec == bhttp::error::body_limit) {
        Response res = errorResponse(
            bhttp::status::payload_too_large,
            "request body larger than " + std::to_string(options_.maxBodyBytes) + " bytes", target,
            parser.get().version());
        res.keep_alive(false);
        res.prepare_payload();
        stream.expires_after(options_.readTimeout);
        co_await bhttp::async_write(stream, res, kNoThrow);
      } else if (bec != beast::error::timeout && bec != net::error::eof &&
                 bec != bhttp::error::partial_message && bec != net::error::connection_reset) {
        Response res = errorResponse(bhttp::status::bad_request,
                                     "malformed HTTP request: " + bec.message(), target, 11);
        res.keep_alive(false);
        res.prepare_payload();
        co_await bhttp::async_write(stream, res, kNoThrow);
      }
      break;
    }
    Request request = parser.release();
    if (head) request.base() = std::move(*head);
    stream.expires_never();
    StreamResponseWriter writer(stream, request, options_.readTimeout, &draining_);
    writer.setPeerIsLoopback(peerIsLoopback);
    bool threw = false;
    try {
      co_await handler_(request, writer);
    } catch (const std::exception& e) {
      std::cerr << "llmcache: request handler failed: " << e.what() << "\n";
      threw = true;
    }
    if (threw && writer.started()) break;  // a half-sent response cannot be mended
    if (threw) {
      co_await writer.send(errorResponse(bhttp::status::internal_server_error, "internal error",
                                         target, request.version()));
    } else if (!writer.started()) {
      co_await writer.send(errorResponse(bhttp::status::internal_server_error,
                                         "the handler sent no response", target,
                                         request.version()));
    }
    state->busy = false;
    if (writer.failed() || !writer.keepAlive()) break;
  }
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.socket().close(ec);
  state->stream = nullptr;  // stop() may still hold state; it must not touch the stream
  std::lock_guard lock(sessionsMutex_);
  sessions_.erase(self);
}

}  // namespace llmcache::http
