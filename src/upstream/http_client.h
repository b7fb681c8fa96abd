#pragma once
// Client: the UpstreamClient (client.h) that makes HTTP(S) requests to LLM providers on
// libcurl's multi interface.
//
// One worker thread per Client drives every transfer (curl_multi_poll; other threads wake it
// with curl_multi_wakeup), so hundreds of long streaming answers need no thread each. The
// multi handle's connection cache keeps connections alive and reuses them; TLS uses libcurl's
// defaults (peer and host verified); HTTP/1.1 and HTTP/2 are both used as negotiated.
// Back-pressure (client.h, DataFlow): a sink's Pause makes the worker refuse the next piece
// with CURL_WRITEFUNC_PAUSE (libcurl keeps it and stops reading that transfer's socket);
// Transfer::resume() queues curl_easy_pause(CURLPAUSE_CONT) for the worker, like cancel().
//
// What the client does NOT do, on purpose: follow redirects, ask for or decode compression
// (the caller's own Accept-Encoding goes out as given and the body comes back as sent), retry,
// log header values (Authorization / x-api-key are secrets), buffer a whole body.
#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include "upstream/client.h"

namespace llmcache::upstream {

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
}  // namespace detail

class Client final : public UpstreamClient {
 public:
  explicit Client(ClientOptions options = {});
  // Stops the worker thread. Every transfer not complete yet gets onComplete(Errc::Cancelled,
  // "aborted: client shutting down") on the worker thread before this returns. Must not be
  // called from a Sink callback.
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Thread-safe. Queues the request for the worker thread and returns at once; every outcome,
  // including a malformed request, reaches `sink` on the worker thread. A null sink discards
  // the response.
  std::shared_ptr<Transfer> start(Request request, std::shared_ptr<Sink> sink) override;

 private:
  ClientOptions options_;
  std::shared_ptr<detail::ClientCore> core_;
  std::thread worker_;
};

}  // namespace llmcache::upstream
