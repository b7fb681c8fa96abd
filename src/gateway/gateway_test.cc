// The gateway in-process: real routing, keys, cache service (a memory tier) and relay, with a
// fake upstream (upstream::UpstreamClient) and a fake clock, its answers recorded by a
// ResponseWriter without a socket. tests/gateway drives the same code over real HTTP.
#include "gateway/gateway.h"

#include <gtest/gtest.h>

#include <deque>

#include "cache/memory/memory_tier.h"

namespace llmcache::gateway {
namespace {

namespace net = http::net;
namespace bhttp = http::bhttp;
using namespace std::chrono_literals;

// Records what the gateway answers.
class RecordingWriter final : public http::ResponseWriter {
 public:
  net::awaitable<void> sendResponse(http::Response response, std::string_view body) override {
    started_ = true;
    status = static_cast<int>(response.result_int());
    headers = response.base();
    this->body.assign(body);
    complete = true;
    co_return;
  }
  net::awaitable<bool> startStream(bhttp::status s, const http::Fields& f) override {
    started_ = true;
    status = static_cast<int>(s);
    headers = f;
    streamed = true;
    co_return !failed_;
  }
  net::awaitable<bool> write(std::string_view bytes) override {
    if (failed_) co_return false;
    body.append(bytes);
    co_return true;
  }
  net::awaitable<void> finish() override {
    complete = !failed_;
    co_return;
  }
  std::string header(std::string_view name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : std::string(it->value());
  }
  std::string cacheStatus() const { return header("x-llmcache-status"); }

  int status = 0;
  http::Fields headers;
  std::string body;
  bool streamed = false;
  bool complete = false;
};

// What the fake provider answers.
struct Reply {
  int status = 200;
  std::string contentType = "application/json";
  std::vector<std::string> chunks = {};  // the body, in pieces
  std::optional<Errc> failure = {};      // the transfer fails instead (after the head if any)
  bool failBeforeHead = true;
};

std::string chatAnswer(std::string_view text) {
  return R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini",)"
         R"("choices":[{"index":0,"message":{"role":"assistant","content":")" +
         std::string(text) +
         R"("},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2,)"
         R"("total_tokens":7}})";
}

// An upstream::UpstreamClient that answers from a script, at once or when the test says so.
class FakeUpstream final : public upstream::UpstreamClient {
 public:
  struct Call {
    upstream::Request request;
    std::shared_ptr<upstream::Sink> sink;
    bool finished = false;
  };
  class FakeTransfer final : public upstream::Transfer {
   public:
    explicit FakeTransfer(std::shared_ptr<Call> call) : call_(std::move(call)) {}
    void cancel() override {
      if (call_->finished) return;
      call_->finished = true;
      call_->sink->onComplete(makeError(Errc::Cancelled, "aborted"));
      call_->sink.reset();  // the call holds its transfer, which holds this: break the cycle
    }

   private:
    std::shared_ptr<Call> call_;
  };

  std::shared_ptr<upstream::Transfer> start(upstream::Request request,
                                            std::shared_ptr<upstream::Sink> sink) override {
    auto call = std::make_shared<Call>(Call{std::move(request), std::move(sink)});
    calls.push_back(call);
    if (!hold) answer(*call, next());
    return std::make_shared<FakeTransfer>(call);
  }
  // Answers a held call.
  void release(size_t i) { answer(*calls.at(i), next()); }

  std::deque<Reply> script;  // consumed one per call; empty: a chat answer "Hi"
  bool hold = false;
  std::vector<std::shared_ptr<Call>> calls;

 private:
  Reply next() {
    if (script.empty()) return Reply{.chunks = {chatAnswer("Hi")}};
    Reply r = script.front();
    script.pop_front();
    return r;
  }
  static void answer(Call& c, const Reply& r) {
    if (c.finished) return;
    if (r.failure && r.failBeforeHead) {
      c.finished = true;
      c.sink->onComplete(makeError(*r.failure, "upstream failed"));
      c.sink.reset();
      return;
    }
    c.sink->onHead({r.status, {{"content-type", r.contentType}}});
    for (const auto& piece : r.chunks) c.sink->onData(piece);
    c.finished = true;
    c.sink->onComplete(r.failure ? Result<void>(makeError(*r.failure, "upstream failed"))
                                 : Result<void>());
    c.sink.reset();  // as the real client drops a finished transfer's sink (no cycle)
  }
};

// Condemns every store of a miss that started before the last bump() (an invalidation that
// matches everything).
class BumpGuard final : public cache::StoreGuard {
 public:
  uint64_t generation() const override { return generation_; }
  bool storeUnlessInvalidated(uint64_t generation, const cache::Entry&,
                              const std::function<void()>& store) override {
    if (generation < generation_) return false;
    store();
    return true;
  }
  void bump() { ++generation_; }

 private:
  std::atomic<uint64_t> generation_{0};
};

class GatewayTest : public ::testing::Test {
 protected:
  struct Exchange {
    http::Request request;
    RecordingWriter writer;
    bool done = false;
  };

  GatewayTest() { cache_.setGuard(&guard_); }

  std::shared_ptr<Exchange> start(std::string body, std::vector<upstream::Header> headers = {},
                                  std::string target = "/v1/chat/completions") {
    auto x = std::make_shared<Exchange>();
    x->request = http::Request{bhttp::verb::post, target, 11};
    x->request.set(bhttp::field::content_type, "application/json");
    x->request.set(bhttp::field::authorization, "Bearer sk-test");
    for (const auto& h : headers) x->request.set(h.name, h.value);
    x->request.body() = std::move(body);
    x->request.prepare_payload();
    auto run = [this, x]() -> net::awaitable<void> {
      co_await gateway_.handle(x->request, x->writer);
      x->done = true;
    };
    net::co_spawn(io_, run, net::detached);
    pump();
    return x;
  }
  // Runs what is ready on the context (the cache's pools and the fake answer synchronously).
  void pump() {
    for (int i = 0; i < 200; ++i) {
      io_.restart();
      io_.poll();
      std::this_thread::sleep_for(1ms);
    }
  }
  void waitFor(const std::shared_ptr<Exchange>& x) {
    for (int i = 0; i < 5000 && !x->done; ++i) {
      io_.restart();
      io_.poll();
      if (!x->done) std::this_thread::sleep_for(1ms);
    }
    ASSERT_TRUE(x->done) << "the request did not finish";
  }
  std::shared_ptr<Exchange> send(std::string body, std::vector<upstream::Header> headers = {},
                                 std::string target = "/v1/chat/completions") {
    auto x = start(std::move(body), std::move(headers), std::move(target));
    waitFor(x);
    return x;
  }

  static std::string chat(std::string_view text, bool stream = false) {
    return R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":")" + std::string(text) +
           "\"}]" + (stream ? R"(,"stream":true)" : "") + "}";
  }

  static config::Config makeConfig() {
    config::Config c;
    c.ttlMaxSeconds = 3600;  // CACHE_TTL_MAX
    return c;
  }

  net::io_context io_;
  FakeClock clock_;
  config::Config config_ = makeConfig();
  cache::MemoryTier memory_{{.maxEntries = 100, .maxBytes = 1 << 20}};
  BumpGuard guard_;
  cache::TieredCache cache_{{.fast = {&memory_}, .clock = &clock_}};
  FakeUpstream upstream_;
  upstream::PlatformTable platforms_;
  upstream::PricingTable pricing_ = upstream::PricingTable::builtin();
  Gateway gateway_{{.config = config_,
                    .cache = cache_,
                    .client = upstream_,
                    .platforms = platforms_,
                    .pricing = pricing_,
                    .clock = clock_}};
};

TEST_F(GatewayTest, AMissIsForwardedStoredAndTheSameRequestThenHits) {
  auto miss = send(chat("Hello"));
  EXPECT_EQ(miss->writer.status, 200);
  EXPECT_EQ(miss->writer.cacheStatus(), "MISS");
  EXPECT_EQ(miss->writer.body, chatAnswer("Hi"));
  ASSERT_EQ(upstream_.calls.size(), 1u);
  // The upstream got the client's body and credential, and was asked for identity encoding.
  EXPECT_EQ(upstream_.calls[0]->request.body, chat("Hello"));
  EXPECT_NE(upstream_.calls[0]->request.url.find("/chat/completions"), std::string::npos);

  auto hit = send(chat("Hello"));
  EXPECT_EQ(hit->writer.cacheStatus(), "HIT");
  EXPECT_EQ(hit->writer.header("x-llmcache-layer"), "memory");
  EXPECT_EQ(hit->writer.body, miss->writer.body);
  EXPECT_EQ(upstream_.calls.size(), 1u);
  EXPECT_EQ(hit->writer.header("x-llmcache-key"), miss->writer.header("x-llmcache-key"));
}

TEST_F(GatewayTest, AHitReportsItsAgeOnTheFakeClock) {
  send(chat("Hello"));
  clock_.advance(90s);
  auto hit = send(chat("Hello"));
  EXPECT_EQ(hit->writer.cacheStatus(), "HIT");
  EXPECT_EQ(hit->writer.header("age"), "90");
}

TEST_F(GatewayTest, AnEntryPastItsTtlIsAMissAgain) {
  send(chat("Hello"), {{"x-llmcache-ttl", "60"}});
  clock_.advance(61s);
  EXPECT_EQ(send(chat("Hello"))->writer.cacheStatus(), "MISS");
  EXPECT_EQ(upstream_.calls.size(), 2u);
}

TEST_F(GatewayTest, AClientsTtlIsCappedByTtlMaxAndItsNeverToo) {
  send(chat("forever"), {{"x-llmcache-ttl", "0"}});
  send(chat("a day"), {{"x-llmcache-ttl", "86400"}});
  send(chat("a minute"), {{"x-llmcache-ttl", "60"}});
  clock_.advance(3599s);
  EXPECT_EQ(send(chat("forever"))->writer.cacheStatus(), "HIT");
  EXPECT_EQ(send(chat("a minute"))->writer.cacheStatus(), "MISS");  // its own 60 s held
  clock_.advance(1s);
  EXPECT_EQ(send(chat("forever"))->writer.cacheStatus(), "MISS");
  EXPECT_EQ(send(chat("a day"))->writer.cacheStatus(), "MISS");
}

TEST_F(GatewayTest, ConcurrentIdenticalMissesMakeOneUpstreamCall) {
  upstream_.hold = true;
  auto leader = start(chat("Hello"));
  auto follower = start(chat("Hello"));
  ASSERT_EQ(upstream_.calls.size(), 1u);
  upstream_.release(0);
  waitFor(leader);
  waitFor(follower);
  EXPECT_EQ(leader->writer.cacheStatus(), "MISS");
  EXPECT_EQ(follower->writer.cacheStatus(), "COALESCED");
  EXPECT_EQ(follower->writer.body, leader->writer.body);
  EXPECT_EQ(upstream_.calls.size(), 1u);
}

TEST_F(GatewayTest, NoCacheSkipsTheLookupAndStoresTheFreshAnswer) {
  send(chat("Hello"));
  upstream_.script.push_back({.chunks = {chatAnswer("Fresh")}});
  auto refresh = send(chat("Hello"), {{"cache-control", "no-cache"}});
  EXPECT_EQ(refresh->writer.cacheStatus(), "REFRESH");
  EXPECT_EQ(upstream_.calls.size(), 2u);
  auto hit = send(chat("Hello"));
  EXPECT_EQ(hit->writer.cacheStatus(), "HIT");
  EXPECT_EQ(hit->writer.body, chatAnswer("Fresh"));
}

TEST_F(GatewayTest, NoStoreAnswersWithoutStoring) {
  auto first = send(chat("Hello"), {{"cache-control", "no-store"}});
  EXPECT_EQ(first->writer.cacheStatus(), "NO-STORE");
  EXPECT_EQ(memory_.entryCount(), 0u);
  EXPECT_EQ(send(chat("Hello"))->writer.cacheStatus(), "MISS");
  EXPECT_EQ(upstream_.calls.size(), 2u);
}

TEST_F(GatewayTest, AnUpstreamErrorIsRelayedAndNotStored) {
  upstream_.script.push_back(
      {.status = 429, .chunks = {R"({"error":{"message":"slow down","type":"rate_limit"}})"}});
  auto limited = send(chat("Hello"));
  EXPECT_EQ(limited->writer.status, 429);
  EXPECT_EQ(limited->writer.cacheStatus(), "UNCACHEABLE");
  EXPECT_NE(limited->writer.body.find("slow down"), std::string::npos);
  EXPECT_EQ(memory_.entryCount(), 0u);
  EXPECT_EQ(send(chat("Hello"))->writer.cacheStatus(), "MISS");
  EXPECT_EQ(gateway_.upstreamErrors(), 1u);
}

TEST_F(GatewayTest, AnUnparsableAnswerIsRelayedAndNotStored) {
  upstream_.script.push_back({.chunks = {"{\"choices\": [truncated"}});
  auto broken = send(chat("Hello"));
  EXPECT_EQ(broken->writer.status, 200);
  EXPECT_EQ(broken->writer.cacheStatus(), "UNCACHEABLE");
  EXPECT_EQ(memory_.entryCount(), 0u);
}

TEST_F(GatewayTest, AnUpstreamTimeoutIsA504AndAnyOtherFailureA502InTheProvidersShape) {
  upstream_.script.push_back({.failure = Errc::Timeout});
  upstream_.script.push_back({.failure = Errc::Unavailable});
  auto timedOut = send(chat("Hello"));
  EXPECT_EQ(timedOut->writer.status, 504);
  EXPECT_NE(timedOut->writer.body.find("\"error\""), std::string::npos);
  auto refused = send(chat("Hello"));
  EXPECT_EQ(refused->writer.status, 502);
  EXPECT_EQ(memory_.entryCount(), 0u);
}

TEST_F(GatewayTest, AStreamIsRelayedAsItComesStoredAndReplayedOnAHit) {
  const std::string events =
      "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"
      "\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"
      "\"Hi\"},\"finish_reason\":null}]}\n\n"
      "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"
      "\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
      "data: [DONE]\n\n";
  upstream_.script.push_back(
      {.contentType = "text/event-stream", .chunks = {events.substr(0, 40), events.substr(40)}});
  auto miss = send(chat("Hello", true));
  EXPECT_TRUE(miss->writer.streamed);
  EXPECT_TRUE(miss->writer.complete);
  EXPECT_EQ(miss->writer.cacheStatus(), "MISS");
  EXPECT_EQ(miss->writer.body, events);
  auto hit = send(chat("Hello", true));
  EXPECT_EQ(hit->writer.cacheStatus(), "HIT");
  EXPECT_NE(hit->writer.body.find("\"Hi\""), std::string::npos);
  EXPECT_NE(hit->writer.body.find("data: [DONE]"), std::string::npos);
}

TEST_F(GatewayTest, AStreamCutBeforeItsEndIsNotStored) {
  upstream_.script.push_back(
      {.contentType = "text/event-stream",
       .chunks = {"data: {\"choices\":[{\"delta\":{\"content\":\"H\"}}]}\n\n"},
       .failure = Errc::Unavailable,
       .failBeforeHead = false});
  auto cut = send(chat("Hello", true));
  EXPECT_FALSE(cut->writer.complete);  // aborted: the client sees a broken response
  EXPECT_EQ(memory_.entryCount(), 0u);
}

TEST_F(GatewayTest, AnAnswerAnInvalidationCondemnedInFlightIsServedButNotStored) {
  upstream_.hold = true;
  auto miss = start(chat("Hello"));
  ASSERT_EQ(upstream_.calls.size(), 1u);
  guard_.bump();  // an invalidation applied while the upstream call was in flight
  upstream_.release(0);
  waitFor(miss);
  EXPECT_EQ(miss->writer.status, 200);
  EXPECT_EQ(miss->writer.body, chatAnswer("Hi"));
  EXPECT_EQ(memory_.entryCount(), 0u);
  upstream_.hold = false;
  EXPECT_EQ(send(chat("Hello"))->writer.cacheStatus(), "MISS");
}

TEST_F(GatewayTest, AnInvalidBodyIsA400InTheProvidersShapeAndNeverForwarded) {
  auto bad = send(R"({"model":"gpt-4o-mini","messages":"not a list"})");
  EXPECT_EQ(bad->writer.status, 400);
  EXPECT_EQ(bad->writer.cacheStatus(), "INVALID");
  EXPECT_NE(bad->writer.body.find("\"error\""), std::string::npos);
  auto anthropic = send(R"({"model":"claude-3-5-haiku-latest"})", {}, "/v1/messages");
  EXPECT_EQ(anthropic->writer.status, 400);
  EXPECT_NE(anthropic->writer.body.find("\"type\":\"error\""), std::string::npos);
  EXPECT_TRUE(upstream_.calls.empty());
}

TEST_F(GatewayTest, DotSegmentsNeverLeaveTheApiRoot) {
  for (const char* target :
       {"/v1/../stats", "/v1/%2e%2e/stats", "/v1/./chat/completions", "/openai/v1/../../admin"}) {
    auto x = send(chat("Hello"), {}, target);
    EXPECT_EQ(x->writer.status, 400) << target;
  }
  EXPECT_TRUE(upstream_.calls.empty());
}

TEST_F(GatewayTest, TenantsWithDifferentCredentialsDoNotShareAnswers) {
  send(chat("Hello"), {{"authorization", "Bearer sk-a"}});
  auto other = send(chat("Hello"), {{"authorization", "Bearer sk-b"}});
  EXPECT_EQ(other->writer.cacheStatus(), "MISS");
  EXPECT_EQ(upstream_.calls.size(), 2u);
}

TEST_F(GatewayTest, UnknownPathsArePassedThroughUncached) {
  upstream_.script.push_back({.chunks = {R"({"data":[]})"}});
  auto models = send("", {}, "/v1/models");
  EXPECT_EQ(models->writer.cacheStatus(), "BYPASS");
  EXPECT_EQ(models->writer.body, R"({"data":[]})");
  EXPECT_EQ(memory_.entryCount(), 0u);
}

}  // namespace
}  // namespace llmcache::gateway
