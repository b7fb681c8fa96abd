#pragma once
// Client: HTTP(S) requests to LLM providers on libcurl's multi interface.
//
// One worker thread per Client drives every transfer (curl_multi_poll; other threads wake it
// with curl_multi_wakeup), so hundreds of long streaming answers need no thread each. The
// multi handle's connection cache keeps connections alive and reuses them; TLS uses libcurl's
// defaults (peer and host verified); HTTP/1.1 and HTTP/2 are both used as negotiated.
//
// What the client does NOT do, on purpose: follow redirects, ask for or decode compression
// (the caller's own Accept-Encoding goes out as given and the body comes back as sent), retry,
// log header values (Authorization / x-api-key are secrets), buffer a whole body.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/result.h"
#include "upstream/headers.h"

namespace llmcache::upstream {

struct Request {
  // GET, HEAD, POST or any other token. A body is sent whenever it is non-empty, and always
  // for POST/PUT/PATCH (then with Content-Length: 0 when empty).
  std::string method = "POST";
  std::string url;  // http:// or https:// only
  // Sent as given, in order. The client itself adds only Host (from the URL), Content-Length
  // (from the body) and nothing else: curl's default Accept, Content-Type (form) and
  // Expect: 100-continue are suppressed. Any Content-Length, Transfer-Encoding or Expect given
  // here is dropped (the body decides). A name or value with CR, LF or NUL fails the transfer
  // with InvalidArgument before anything is sent.
  std::vector<Header> headers;
  std::string body;
  // Zero or negative means "no limit". The total timeout covers everything from start() on,
  // including time queued behind the connection limits.
  std::chrono::milliseconds connectTimeout{10000};
  std::chrono::milliseconds totalTimeout{600000};
};

// The final response's status line and headers. Interim 1xx responses (100 Continue,
// 103 Early Hints) never appear here; trailers after a chunked body are ignored.
struct ResponseHead {
  int status = 0;
  std::vector<Header> headers;
};

// Receives one transfer's response. All calls come from the client's worker thread, in this
// order: onHead once (before any data, also when the body is empty), onData zero or more times
// as bytes arrive, onComplete exactly once. When the transfer fails before the response head
// arrived (connection refused, TLS failure, timeout, cancel, bad request), only onComplete is
// called.
//
// onComplete's outcome: success means the whole body was received. Whatever the HTTP status:
// a 500 with its body is a successful transfer. Errors are Errc::Unavailable (connect failure,
// timeout, reset, cancel, client shutdown; the message names the method, the URL without its
// query, and curl's error text; a cancel's message contains "aborted") or Errc::InvalidArgument
// (the request could not be sent as given).
//
// Callbacks run on the one thread every transfer of the Client shares: they must return quickly
// and never block (hand the bytes on, do not wait for a slow client here). They may call
// Transfer::cancel() and Client::start(); they must not destroy the Client. An exception
// escaping a callback aborts that transfer (onComplete then reports it).
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void onHead(ResponseHead head) = 0;
  virtual void onData(std::string_view bytes) = 0;
  virtual void onComplete(Result<void> outcome) = 0;
};

struct ClientOptions {
  // Further transfers to that host wait in a queue. A miss holds its connection for the whole
  // provider call (seconds for an LLM; HTTP/1.1 has one call per connection): at 64, a gateway
  // with 64 client connections waiting on 200 ms misses queued some for another call (p90 277 ms
  // against 202 ms at 32 connections, bench/mixed_bench.sh), hence 256.
  size_t maxConnectionsPerHost = 256;
  size_t maxTotalConnections = 512;  // also the size of the idle-connection cache
  std::string caFile;                // PEM bundle to verify peers with; empty = system default
};

namespace detail {
struct ClientCore;
struct TransferState;
}  // namespace detail

// A handle on one transfer. Dropping it does not cancel the transfer.
class Transfer {
 public:
  explicit Transfer(std::shared_ptr<detail::TransferState> state);
  ~Transfer();
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  // Thread-safe, idempotent, never blocks on the transfer. Unless the transfer has completed
  // already, its sink soon gets onComplete(Errc::Unavailable, "... aborted"). A cancel racing
  // with the natural end of the transfer may lose: then the sink sees the real outcome.
  void cancel();

 private:
  std::shared_ptr<detail::TransferState> state_;
};

class Client {
 public:
  explicit Client(ClientOptions options = {});
  // Stops the worker thread. Every transfer not complete yet gets onComplete(error, "aborted:
  // client shutting down") on the worker thread before this returns. Must not be called from a
  // Sink callback.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Thread-safe. Queues the request for the worker thread and returns at once; every outcome,
  // including a malformed request, reaches `sink` on the worker thread. A null sink discards
  // the response.
  std::shared_ptr<Transfer> start(Request request, std::shared_ptr<Sink> sink);

 private:
  ClientOptions options_;
  std::shared_ptr<detail::ClientCore> core_;
  std::thread worker_;
};

}  // namespace llmcache::upstream
