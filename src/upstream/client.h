#pragma once
// UpstreamClient: the interface the gateway talks to LLM providers through, and the types of
// one transfer (Request, ResponseHead, Sink, Transfer). upstream::Client (http_client.h) is
// the libcurl implementation; tests put a fake in its place.
//
// An implementation's contract, which every caller may rely on: start() returns at once and
// never throws for a bad request (every outcome, a malformed request included, reaches the
// sink); each transfer's sink sees onHead at most once, then onData, then onComplete exactly
// once, never two calls at the same time; a Transfer handle stays safe to use (cancel, resume)
// after the transfer completed and after the client is gone. Back-pressure: a sink may answer
// onData with DataFlow::Pause; an implementation that honours it (upstream::Client does) then
// delivers no more bytes until Transfer::resume(). One that ignores it stays correct, only
// unbounded (a fake that hands over a canned body at once).
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
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
  // including time queued behind the connection limits. Either one passing fails the transfer
  // with Errc::Timeout.
  std::chrono::milliseconds connectTimeout{10000};
  std::chrono::milliseconds totalTimeout{600000};
  // Zero or negative: none. Otherwise the transfer fails with Timeout when the upstream sends
  // nothing for this long (libcurl's low-speed limit of 1 byte/s; time paused by the sink's
  // back-pressure does not count): the bound of a pass-through download that a slow client
  // reads for longer than any total timeout would allow.
  std::chrono::seconds idleTimeout{0};
};

// The final response's status line and headers. Interim 1xx responses (100 Continue,
// 103 Early Hints) never appear here; trailers after a chunked body are ignored.
struct ResponseHead {
  int status = 0;
  std::vector<Header> headers;
};

// Receives one transfer's response, in this order: onHead once (before any data, also when the
// body is empty), onData zero or more times as bytes arrive, onComplete exactly once. When the
// transfer fails before the response head arrived (connection refused, TLS failure, timeout,
// cancel, bad request), only onComplete is called. Calls for one transfer never overlap.
// upstream::Client makes them all from its one worker thread; another implementation may use
// any thread, even the one calling start() before start() returns (so a sink must not count on
// having the Transfer handle by its first callback).
//
// onComplete's outcome: success means the whole body was received. Whatever the HTTP status:
// a 500 with its body is a successful transfer. Errors, each with a message naming the method,
// the URL without its query, and (from upstream::Client) curl's error text:
//   Errc::Unavailable      the peer could not be reached or failed: connect refused, DNS, TLS,
//                          reset, a malformed response; also an exception thrown by a Sink
//                          callback ("aborted: sink callback threw: ...").
//   Errc::Timeout          a deadline passed: Request::connectTimeout or totalTimeout (also an
//                          OS-level connect or socket timeout). The head may have arrived.
//   Errc::Cancelled        the caller cancelled (Transfer::cancel) or the client shut down with
//                          the transfer in flight; the message contains "aborted".
//   Errc::InvalidArgument  the request could not be sent as given (nothing was sent).
//
// Callbacks may run on a thread that every transfer of the client shares (upstream::Client's
// worker): they must return quickly and never block (hand the bytes on, do not wait for a slow
// client here). They may call Transfer::cancel() and UpstreamClient::start(); they must not
// destroy the client. An exception escaping a callback aborts that transfer (onComplete then
// reports it).
//
// Back-pressure, so that a consumer slower than the upstream holds a bounded amount, not the
// whole body: onData returns DataFlow::Pause when the sink has queued as much as it will hold.
// The bytes of that call are taken all the same (a sink never gets a chunk twice); the
// transfer then delivers no further onData until the consumer calls Transfer::resume(), and
// the upstream is read no faster than that (upstream::Client stops reading the socket, so TCP
// flow control holds the sender back; libcurl keeps at most what it had already read: a
// socket read's worth over HTTP/1.1, the stream's flow-control window over HTTP/2). A paused
// transfer still ends: onComplete comes for a cancel, a deadline (Request::totalTimeout keeps
// running while paused) or, when nothing more was to come, the end of the body.
enum class DataFlow {
  Continue,  // more bytes welcome
  Pause,     // these bytes are taken; hold the rest until Transfer::resume()
};

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void onHead(ResponseHead head) = 0;
  virtual DataFlow onData(std::string_view bytes) = 0;
  virtual void onComplete(Result<void> outcome) = 0;
};

// A handle on one transfer. Dropping it does not cancel the transfer. It may outlive the
// transfer and the client that started it; cancel() and resume() are then harmless.
class Transfer {
 public:
  virtual ~Transfer() = default;
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  // Thread-safe, idempotent, never blocks on the transfer. Unless the transfer has completed
  // already, its sink soon gets onComplete(Errc::Cancelled, "... aborted"). A cancel racing
  // with the natural end of the transfer may lose: then the sink sees the real outcome.
  virtual void cancel() = 0;

  // Thread-safe, never blocks on the transfer: ends a pause the sink asked for (onData
  // returned DataFlow::Pause); onData calls follow again, from the bytes held back, in order.
  // Harmless when the transfer is not paused or has completed. A sink that pauses must see to
  // it that someone resumes (or cancels): a paused transfer waits until its deadline. The
  // default does nothing, for implementations that never pause.
  virtual void resume() {}

 protected:
  Transfer() = default;
};

class UpstreamClient {
 public:
  virtual ~UpstreamClient() = default;

  // Thread-safe. Queues the request and returns at once; every outcome, including a malformed
  // request, reaches `sink` (see Sink). A null sink discards the response. Never returns null.
  virtual std::shared_ptr<Transfer> start(Request request, std::shared_ptr<Sink> sink) = 0;
};

}  // namespace llmcache::upstream
