#pragma once
// MockUpstream: a small stand-in for an LLM provider, for trying llmcache without a provider key
// and for the tests. It answers OpenAI chat/completions/embeddings/responses and Anthropic
// messages (count_tokens too), streaming included in its own writers (the providers' event
// shapes, not the gateway's synthesizer), tool calls and structured output from the request's
// schemas, with deterministic bodies that carry a call number (so a test can tell a cached
// answer from a fresh one). Per-request controls come as headers (they pass through the
// gateway): x-mock-latency-ms, x-mock-chunk-delay-ms, x-mock-status (x-mock-retry-after),
// x-mock-abort-after, x-mock-no-done, x-mock-incomplete. GET /mock/stats tells how many calls it
// got; POST /mock/reset zeroes them.
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "http/server.h"

namespace llmcache::mock {

struct MockOptions {
  std::chrono::milliseconds latency{0};     // before the response head
  std::chrono::milliseconds chunkDelay{0};  // between streamed events
};

class MockUpstream {
 public:
  explicit MockUpstream(MockOptions options) : options_(options) {}
  http::net::awaitable<void> handle(http::Request& request, http::ResponseWriter& writer);

 private:
  MockOptions options_;
  std::atomic<uint64_t> calls_{0};
  std::mutex mutex_;
  std::map<std::string, uint64_t> byPath_;
  uint64_t authorizedCalls_ = 0;
};

}  // namespace llmcache::mock
