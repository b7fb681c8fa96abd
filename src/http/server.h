#pragma once
// The HTTP/1.1 server: Boost.Beast + Asio with C++20 coroutines. It accepts connections, reads
// requests within explicit limits, hands each request to one Handler and writes what the
// handler answers, whole or streamed. It knows nothing of caching or of LLM providers.
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "http/descriptor_limit.h"

namespace llmcache::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;
using Fields = bhttp::fields;

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0: any free port (see Server::port())
  int threads = 0;       // 0: one per core
  uint64_t maxBodyBytes = 32u << 20;
  uint32_t maxHeaderBytes = 64u << 10;
  // Concurrent connections; the one after them is answered 503. Keep it below the descriptor
  // limit (http/descriptor_limit.h: connectionLimit), or accept() runs out of descriptors first.
  uint64_t maxConnections = 10000;
  // The request bodies all connections may hold at once (declared Content-Length, or
  // maxBodyBytes for a chunked body, from its head until its answer is sent). Above it a
  // request is answered 503 with Retry-After before its body is read: ten concurrent bodies at
  // the limit must not take gigabytes. 0: no budget.
  uint64_t maxBodyBytesInFlight = uint64_t{256} << 20;
  std::chrono::seconds readTimeout{30};  // a request's body, and each write to the client
  std::chrono::seconds idleTimeout{75};  // waiting for the next request on a kept-alive connection
  std::chrono::seconds shutdownGrace{30};  // how long stop() waits for in-flight requests
};

// How the handler answers. Exactly one of: send(), or beginStream() + write()* + finish().
// Used by the request's coroutine alone (not thread-safe). Abstract so that a handler can be
// driven without a socket (the gateway's tests record what it answers).
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;

  // Sends a whole response (Content-Length set here; keep-alive follows the request).
  net::awaitable<void> send(Response response);
  // The same with a body the caller keeps alive until this completes (response.body() unused):
  // the bytes are written from where they are, not copied into the response first.
  net::awaitable<void> sendView(Response response, std::string_view body);

  // Writes the head of a streamed response (chunked over HTTP/1.1). false: the client is gone.
  net::awaitable<bool> beginStream(bhttp::status status, const Fields& headers);

  // A header that every response head this writer sends carries, whoever builds the head (the
  // gateway's CORS headers: the same on a hit, a miss and an error).
  void addToEveryHead(std::string name, std::string value) {
    everyHead_.emplace_back(std::move(name), std::move(value));
  }
  // Writes bytes of a streamed response as they come. false: the client is gone; stop writing.
  virtual net::awaitable<bool> write(std::string_view bytes) = 0;
  // Ends a streamed response.
  virtual net::awaitable<void> finish() = 0;
  // Gives up on a started response: the connection is closed without the final chunk, so the
  // client sees a broken response instead of one that looks complete.
  void abort() {
    failed_ = true;
    keepAlive_ = false;
  }

  bool started() const { return started_; }
  // A write failed (the client disconnected or stalled past the write timeout).
  bool failed() const { return failed_; }
  bool keepAlive() const { return keepAlive_; }
  // The client connected from a loopback address (127.0.0.0/8, ::1).
  bool peerIsLoopback() const { return peerIsLoopback_; }
  void setPeerIsLoopback(bool v) { peerIsLoopback_ = v; }

 protected:
  // What the writers implement: sendView and beginStream, with the every-head fields added.
  virtual net::awaitable<void> sendResponse(Response response, std::string_view body) = 0;
  virtual net::awaitable<bool> startStream(bhttp::status status, const Fields& headers) = 0;

  bool started_ = false;
  bool failed_ = false;
  bool keepAlive_ = true;
  bool peerIsLoopback_ = false;

 private:
  std::vector<std::pair<std::string, std::string>> everyHead_;
};

// The server's writer: Beast over the connection's TCP stream.
class StreamResponseWriter final : public ResponseWriter {
 public:
  // draining: the server is shutting down, so the response closes the connection.
  StreamResponseWriter(beast::tcp_stream& stream, const Request& request,
                       std::chrono::seconds writeTimeout,
                       const std::atomic<bool>* draining = nullptr)
      : stream_(stream), request_(request), writeTimeout_(writeTimeout), drainingFlag_(draining) {}

  net::awaitable<bool> write(std::string_view bytes) override;
  net::awaitable<void> finish() override;

 protected:
  net::awaitable<void> sendResponse(Response response, std::string_view body) override;
  net::awaitable<bool> startStream(bhttp::status status, const Fields& headers) override;

 private:
  beast::tcp_stream& stream_;
  const Request& request_;
  std::chrono::seconds writeTimeout_;
  bool chunked_ = false;
  const std::atomic<bool>* drainingFlag_;
};

// Answers one request. Exceptions thrown by a handler become a 500 (or close the connection
// when the response had already started).
using Handler = std::function<net::awaitable<void>(Request&, ResponseWriter&)>;

// Builds the response for an error the server itself detects before the handler runs
// (body too large, header too large, malformed HTTP, too many connections). `target` is the
// request target when the head was read, else empty: the gateway answers in that provider's
// error shape.
using ErrorResponder =
    std::function<Response(bhttp::status, std::string message, std::string_view target)>;

class Server {
 public:
  // Binds the listening socket now (so port() is known and bind errors throw at start-up).
  Server(ServerOptions options, Handler handler, ErrorResponder errors = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const { return port_; }
  net::io_context& context() { return io_; }

  // Runs the accept loop and the I/O threads; returns after stop() has drained (or the grace
  // period ran out).
  void run();
  // Graceful shutdown, callable from any thread: stop accepting, close idle kept-alive
  // connections, let in-flight requests finish, then return from run().
  void stop();

  size_t activeConnections() const { return connections_.load(); }

 private:
  struct SessionState;
  net::awaitable<void> acceptLoop();
  net::awaitable<void> session(net::ip::tcp::socket socket);
  net::awaitable<void> rejectConnection(net::ip::tcp::socket socket);
  // Out of descriptors: answers connections waiting in the backlog 503, one at a time on the
  // spare descriptor. Runs on io_, one at a time (shedding_).
  net::awaitable<void> shedWaitingConnections();
  net::awaitable<void> answerUnavailable(int fd);
  Response errorResponse(bhttp::status status, std::string message, std::string_view target,
                         unsigned version);
  void maybeFinishDrain();

  void stopContexts();
  net::io_context& nextContext();

  ServerOptions options_;
  Handler handler_;
  ErrorResponder errors_;
  // One io_context per request thread, each run by its thread alone: a connection lives on one
  // context for its whole life, so its handlers never hop threads and no strand is needed. io_
  // (the first) also runs the acceptor, stop() and the signal handlers. others_ is declared
  // first so that it is destroyed last: a pending accept on io_ holds a socket of one of them.
  std::vector<std::unique_ptr<net::io_context>> others_;
  net::io_context io_{1};
  size_t nextContext_ = 0;  // round robin over io_ and others_; the accept loop's alone
  net::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> draining_{false};
  std::atomic<size_t> connections_{0};
  std::atomic<uint64_t> bodyBytesInFlight_{0};
  std::mutex sessionsMutex_;
  std::list<std::shared_ptr<SessionState>> sessions_;
  std::unique_ptr<net::steady_timer> graceTimer_;
  // /dev/null, held open so that one descriptor is free when the process has run out: the accept
  // loop closes it to take one waiting connection, answer it 503 and close it, then reopens it.
  // -1 while in use or when it could not be (re)opened. Touched on io_'s thread alone.
  int spareFd_ = -1;
  bool shedding_ = false;  // shedWaitingConnections() runs; io_'s thread alone
};

}  // namespace llmcache::http
