#include "upstream/http_client.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/json.h"
#include "upstream/client.h"

#ifndef LLMCACHE_UPSTREAM_TESTDATA
#define LLMCACHE_UPSTREAM_TESTDATA ""
#endif

namespace llmcache::upstream {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

int64_t wallMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string serverScript() {
  if (const char* dir = std::getenv("LLMCACHE_SOURCE_DIR"); dir != nullptr && *dir != '\0') {
    return std::string{dir} + "/src/upstream/testdata/test_server.py";
  }
  return std::string{LLMCACHE_UPSTREAM_TESTDATA} + "/test_server.py";
}

// testdata/test_server.py as a child process, for the lifetime of the object.
class TestServer {
 public:
  TestServer() {
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive a crashed test binary
      if (getppid() != parent) _exit(1);
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      std::string script = serverScript();
      execlp("python3", "python3", "-u", script.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(fds[1]);
    // The first line is the port; give the interpreter a generous while to start.
    std::string line;
    pollfd p{fds[0], POLLIN, 0};
    auto deadline = SteadyClock::now() + 15s;
    while (line.find('\n') == std::string::npos && SteadyClock::now() < deadline) {
      if (poll(&p, 1, 200) <= 0) continue;
      char buf[64];
      ssize_t n = read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    close(fds[0]);
    port_ = std::atoi(line.c_str());
  }
  ~TestServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string{path};
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

// Records every callback, checks the order contract, and lets the test wait for completion.
class RecordingSink : public Sink {
 public:
  void onHead(ResponseHead head) override {
    std::lock_guard lock(mu_);
    noteThread();
    if (completed_ || headCalls_ > 0) orderViolated_ = true;
    ++headCalls_;
    head_ = std::move(head);
  }
  DataFlow onData(std::string_view bytes) override {
    std::lock_guard lock(mu_);
    noteThread();
    if (completed_ || headCalls_ == 0) orderViolated_ = true;
    if (paused_) dataWhilePaused_ = true;
    chunks_.emplace_back(bytes);
    chunkMillis_.push_back(wallMillis());
    body_.append(bytes);
    sinceResume_ += bytes.size();
    if (onDataHook) onDataHook(chunks_.size());
    if (pauseAfter > 0 && sinceResume_ >= pauseAfter) {
      paused_ = true;
      ++pauses_;
    }
    cv_.notify_all();
    return paused_ ? DataFlow::Pause : DataFlow::Continue;
  }
  void onComplete(Result<void> outcome) override {
    std::lock_guard lock(mu_);
    noteThread();
    if (completed_) orderViolated_ = true;
    completed_ = true;
    outcome_ = std::move(outcome);
    completedAt_ = SteadyClock::now();
    cv_.notify_all();
  }

  bool waitComplete(std::chrono::milliseconds timeout = 20s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return completed_; });
  }
  // Waits until onData asked to pause (true) or the transfer completed (false).
  bool waitPaused(std::chrono::milliseconds timeout = 20s) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return paused_ || completed_; });
    return paused_;
  }
  // Ends the pause: the flag first, so that an onData right after resume() is no violation.
  void resume(Transfer& transfer) {
    {
      std::lock_guard lock(mu_);
      paused_ = false;
      sinceResume_ = 0;
    }
    transfer.resume();
  }
  size_t received() {
    std::lock_guard lock(mu_);
    return body_.size();
  }
  bool waitChunks(size_t n, std::chrono::milliseconds timeout = 20s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return chunks_.size() >= n || completed_; }) &&
           chunks_.size() >= n;
  }

  // Accessors for after completion (the worker no longer touches the sink then).
  bool ok() const { return outcome_ && outcome_->has_value(); }
  Error error() const { return outcome_->error(); }
  int headCalls() const { return headCalls_; }
  const ResponseHead& head() const { return head_; }
  const std::string& body() const { return body_; }
  const std::vector<std::string>& chunks() const { return chunks_; }
  const std::vector<int64_t>& chunkMillis() const { return chunkMillis_; }
  bool orderViolated() const { return orderViolated_; }
  std::thread::id callbackThread() const { return thread_; }
  bool severalCallbackThreads() const { return severalThreads_; }
  SteadyClock::time_point completedAt() const { return completedAt_; }
  bool dataWhilePaused() const { return dataWhilePaused_; }
  int pauses() const { return pauses_; }

  std::function<void(size_t)> onDataHook;  // runs on the worker thread, under the sink's lock
  // When non-zero, onData answers DataFlow::Pause once this many bytes arrived since the last
  // resume(). Set before start().
  size_t pauseAfter = 0;

 private:
  void noteThread() {
    if (thread_ == std::thread::id{}) thread_ = std::this_thread::get_id();
    if (thread_ != std::this_thread::get_id()) severalThreads_ = true;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  int headCalls_ = 0;
  ResponseHead head_;
  std::string body_;
  std::vector<std::string> chunks_;
  std::vector<int64_t> chunkMillis_;
  std::optional<Result<void>> outcome_;
  bool completed_ = false;
  bool orderViolated_ = false;
  std::thread::id thread_;
  bool severalThreads_ = false;
  SteadyClock::time_point completedAt_;
  bool paused_ = false;
  bool dataWhilePaused_ = false;
  size_t sinceResume_ = 0;
  int pauses_ = 0;
};

// What /big serves: byte i is i * 7 mod 251.
std::string bigBody(size_t size) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>(i * 7 % 251);
  return out;
}

Request get(std::string url) {
  Request r;
  r.method = "GET";
  r.url = std::move(url);
  return r;
}

class HttpClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new TestServer(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_GT(server_->port(), 0) << "the test server did not start: " << serverScript();
  }

  static TestServer* server_;
  Client client_{ClientOptions{}};
};

TestServer* HttpClientTest::server_ = nullptr;

TEST_F(HttpClientTest, PostSendsBodyAndHeadersAndTheResponseHeadReachesTheSink) {
  Request r;
  r.url = server_->url("/echo?q=1");
  r.headers = {{"Authorization", "Bearer sk-test"},
               {"Content-Type", "application/json"},
               {"X-Custom", "a b"},
               {"Accept-Encoding", "gzip"}};
  r.body = "{\"pad\":\"" + std::string(3000, 'x') + "\"}";  // big enough for curl to want Expect
  auto sink = std::make_shared<RecordingSink>();
  client_.start(r, sink);
  ASSERT_TRUE(sink->waitComplete());

  ASSERT_TRUE(sink->ok()) << sink->error().message;
  EXPECT_FALSE(sink->orderViolated());
  EXPECT_EQ(sink->headCalls(), 1);
  EXPECT_EQ(sink->head().status, 200);
  EXPECT_EQ(findHeader(sink->head().headers, "x-echo"), "yes");
  EXPECT_EQ(findHeader(sink->head().headers, "content-type"), "application/json");
  EXPECT_NE(sink->callbackThread(), std::this_thread::get_id());
  EXPECT_FALSE(sink->severalCallbackThreads());

  auto echo = parseJson(sink->body());
  ASSERT_TRUE(echo) << sink->body();
  EXPECT_EQ(echo->getString("method"), "POST");
  EXPECT_EQ(echo->getString("path"), "/echo?q=1");
  EXPECT_EQ(echo->getString("body"), r.body);
  std::vector<Header> seen;
  for (const Json& pair : echo->find("headers")->items())
    seen.push_back({std::string(pair.items()[0].text()), std::string(pair.items()[1].text())});
  EXPECT_EQ(findHeader(seen, "authorization"), "Bearer sk-test");
  EXPECT_EQ(findHeader(seen, "x-custom"), "a b");
  EXPECT_EQ(findHeader(seen, "content-type"), "application/json");
  EXPECT_EQ(findHeader(seen, "content-length"), std::to_string(r.body.size()));
  // The caller's Accept-Encoding goes out as given; curl adds no compression, Expect or Accept.
  EXPECT_EQ(findHeader(seen, "accept-encoding"), "gzip");
  EXPECT_EQ(findHeader(seen, "expect"), std::nullopt);
  EXPECT_EQ(findHeader(seen, "accept"), std::nullopt);
}

TEST_F(HttpClientTest, ChunkedStreamArrivesInSeveralPiecesBeforeTheServerSendsTheLast) {
  auto sink = std::make_shared<RecordingSink>();
  client_.start(get(server_->url("/stream?chunks=5&delay_ms=200")), sink);
  ASSERT_TRUE(sink->waitComplete());

  ASSERT_TRUE(sink->ok()) << sink->error().message;
  EXPECT_FALSE(sink->orderViolated());
  EXPECT_EQ(sink->head().status, 200);
  EXPECT_EQ(findHeader(sink->head().headers, "content-type"), "text/event-stream");
  ASSERT_GE(sink->chunks().size(), 3u);
  EXPECT_NE(sink->chunks().front().find("chunk 0"), std::string::npos);
  EXPECT_EQ(sink->chunks().front().find("chunk 4"), std::string::npos);
  // The first piece was in the sink's hands before the server even sent the last one.
  const std::string& body = sink->body();
  size_t last = body.find("chunk 4 sent_at_ms=");
  ASSERT_NE(last, std::string::npos) << body;
  int64_t lastSentMillis =
      std::atoll(body.c_str() + last + std::string_view{"chunk 4 sent_at_ms="}.size());
  EXPECT_LT(sink->chunkMillis().front(), lastSentMillis);
  for (int i = 0; i < 5; ++i)
    EXPECT_NE(body.find("chunk " + std::to_string(i) + " "), std::string::npos);
}

TEST_F(HttpClientTest, UpstreamServerErrorIsAResponseWithItsBodyNotAnError) {
  auto sink = std::make_shared<RecordingSink>();
  client_.start(get(server_->url("/status/500")), sink);
  ASSERT_TRUE(sink->waitComplete());
  ASSERT_TRUE(sink->ok()) << sink->error().message;
  EXPECT_EQ(sink->head().status, 500);
  EXPECT_NE(sink->body().find("status 500 as asked"), std::string::npos);
}

TEST_F(HttpClientTest, EmptyBodyStillDeliversTheHead) {
  auto sink = std::make_shared<RecordingSink>();
  client_.start(get(server_->url("/status/204")), sink);
  ASSERT_TRUE(sink->waitComplete());
  ASSERT_TRUE(sink->ok()) << sink->error().message;
  EXPECT_EQ(sink->headCalls(), 1);
  EXPECT_EQ(sink->head().status, 204);
  EXPECT_TRUE(sink->chunks().empty());
}

TEST_F(HttpClientTest, InterimResponsesAreNotTheHead) {
  auto sink = std::make_shared<RecordingSink>();
  client_.start(get(server_->url("/early-hints")), sink);
  ASSERT_TRUE(sink->waitComplete());
  ASSERT_TRUE(sink->ok()) << sink->error().message;
  EXPECT_EQ(sink->headCalls(), 1);
  EXPECT_EQ(sink->head().status, 200);
  EXPECT_EQ(findHeader(sink->head().headers, "link"), std::nullopt);
  EXPECT_EQ(sink->body(), "ok");
}

TEST_F(HttpClientTest, ConnectionRefusedCompletesWithAnErrorAndNoHead) {
  // A port that was free a moment ago: nothing listens there.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);

  auto sink = std::make_shared<RecordingSink>();
  Request r;
  r.url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) +
          "/v1/chat/completions?key=secret";
  r.headers = {{"Authorization", "Bearer sk-secret-value"}};
  client_.start(r, sink);
  ASSERT_TRUE(sink->waitComplete());
  ASSERT_FALSE(sink->ok());
  EXPECT_EQ(sink->headCalls(), 0);
  EXPECT_EQ(sink->error().code, Errc::Unavailable);
  EXPECT_NE(sink->error().message.find("Couldn't connect"), std::string::npos)
      << sink->error().message;
  EXPECT_NE(sink->error().message.find("/v1/chat/completions"), std::string::npos);
  EXPECT_EQ(sink->error().message.find("secret"), std::string::npos) << sink->error().message;
}

TEST_F(HttpClientTest, TotalTimeoutBeforeTheHeadCompletesWithTimeout) {
  auto sink = std::make_shared<RecordingSink>();
  Request r = get(server_->url("/slow?delay_ms=5000"));
  r.totalTimeout = 300ms;
  auto started = SteadyClock::now();
  client_.start(r, sink);
  ASSERT_TRUE(sink->waitComplete());
  ASSERT_FALSE(sink->ok());
  EXPECT_EQ(sink->error().code, Errc::Timeout) << sink->error().message;
  EXPECT_NE(sink->error().message.find("Timeout"), std::string::npos) << sink->error().message;
  EXPECT_EQ(sink->headCalls(), 0);
  EXPECT_LT(sink->completedAt() - started, 3s);
}

TEST_F(HttpClientTest, TotalTimeoutMidStreamCompletesWithTimeoutAfterTheHead) {
  auto sink = std::make_shared<RecordingSink>();
  Request r = get(server_->url("/stream?chunks=100&delay_ms=100"));
  r.totalTimeout = 500ms;
  client_.start(r, sink);
  ASSERT_TRUE(sink->waitComplete());
  ASSERT_FALSE(sink->ok());
  EXPECT_EQ(sink->error().code, Errc::Timeout) << sink->error().message;
  EXPECT_EQ(sink->headCalls(), 1);
  EXPECT_EQ(sink->head().status, 200);
  EXPECT_FALSE(sink->orderViolated());
}

// A listener whose accept queue is full and never drained: Linux then drops further SYNs, so
// a connect to it hangs (the SYN is retried after 1 s, 3 s, ...) until a deadline passes.
class BlackHoleListener {
 public:
  BlackHoleListener() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (listener_ < 0 || bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listener_, 0) != 0) {
      return;
    }
    socklen_t len = sizeof addr;
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    // Connect until one connect no longer completes: from then on, SYNs are dropped.
    for (int i = 0; i < 16 && !full_; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      if (fd < 0) return;
      fillers_.push_back(fd);
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
      if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) continue;
      if (errno != EINPROGRESS) return;
      pollfd p{fd, POLLOUT, 0};
      full_ = poll(&p, 1, 300) == 0;
    }
  }
  ~BlackHoleListener() {
    for (int fd : fillers_) close(fd);
    if (listener_ >= 0) close(listener_);
  }
  // False when the kernel kept accepting connects (then the test has nothing to show).
  bool full() const { return full_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/slow"; }

 private:
  int listener_ = -1;
  int port_ = 0;
  bool full_ = false;
  std::vector<int> fillers_;
};

TEST_F(HttpClientTest, ConnectTimeoutCompletesWithTimeout) {
  BlackHoleListener hole;
  if (!hole.full()) GTEST_SKIP() << "the kernel did not drop SYNs to a full accept queue";
  auto sink = std::make_shared<RecordingSink>();
  Request r = get(hole.url());
  r.connectTimeout = 300ms;
  r.totalTimeout = 20s;
  auto started = SteadyClock::now();
  client_.start(r, sink);
  ASSERT_TRUE(sink->waitComplete());
  ASSERT_FALSE(sink->ok());
  EXPECT_EQ(sink->error().code, Errc::Timeout) << sink->error().message;
  EXPECT_EQ(sink->headCalls(), 0);
  EXPECT_LT(sink->completedAt() - started, 3s);
}

TEST_F(HttpClientTest, CancelMidStreamCompletesPromptlyWithAnAbortedError) {
  auto sink = std::make_shared<RecordingSink>();
  auto transfer = client_.start(get(server_->url("/stream?chunks=100&delay_ms=100")), sink);
  ASSERT_TRUE(sink->waitChunks(1));
  auto cancelled = SteadyClock::now();
  transfer->cancel();
  ASSERT_TRUE(sink->waitComplete(5s));
  EXPECT_LT(sink->completedAt() - cancelled, 1s);
  ASSERT_FALSE(sink->ok());
  EXPECT_EQ(sink->error().code, Errc::Cancelled);
  EXPECT_NE(sink->error().message.find("aborted"), std::string::npos) << sink->error().message;
  EXPECT_EQ(sink->headCalls(), 1);
  EXPECT_FALSE(sink->orderViolated());
  transfer->cancel();  // idempotent, and harmless after completion
}

TEST_F(HttpClientTest, ASinkMayCancelFromInsideOnData) {
  auto sink = std::make_shared<RecordingSink>();
  std::shared_ptr<Transfer> transfer;
  std::mutex transferMu;
  sink->onDataHook = [&](size_t) {
    std::lock_guard lock(transferMu);
    if (transfer) transfer->cancel();
  };
  {
    std::lock_guard lock(transferMu);
    transfer = client_.start(get(server_->url("/stream?chunks=100&delay_ms=50")), sink);
  }
  ASSERT_TRUE(sink->waitComplete(5s));
  ASSERT_FALSE(sink->ok());
  EXPECT_EQ(sink->error().code, Errc::Cancelled);
  EXPECT_NE(sink->error().message.find("aborted"), std::string::npos) << sink->error().message;
  EXPECT_LE(sink->chunks().size(), 2u);
}

// Not a cancel: the sink failed, so the transfer is an upstream failure like any other.
TEST_F(HttpClientTest, ASinkThatThrowsCompletesWithUnavailable) {
  auto sink = std::make_shared<RecordingSink>();
  sink->onDataHook = [](size_t) { throw std::runtime_error("sink is full"); };
  client_.start(get(server_->url("/stream?chunks=100&delay_ms=50")), sink);
  ASSERT_TRUE(sink->waitComplete(5s));
  ASSERT_FALSE(sink->ok());
  EXPECT_EQ(sink->error().code, Errc::Unavailable);
  EXPECT_NE(sink->error().message.find("sink is full"), std::string::npos) << sink->error().message;
}

TEST_F(HttpClientTest, CancelBeforeTheWorkerStartsItCompletesWithoutAHead) {
  auto sink = std::make_shared<RecordingSink>();
  auto transfer = client_.start(get(server_->url("/slow?delay_ms=2000")), sink);
  transfer->cancel();
  ASSERT_TRUE(sink->waitComplete(5s));
  ASSERT_FALSE(sink->ok());
  EXPECT_EQ(sink->error().code, Errc::Cancelled);
  EXPECT_NE(sink->error().message.find("aborted"), std::string::npos);
  EXPECT_EQ(sink->headCalls(), 0);
}

TEST_F(HttpClientTest, FiftyConcurrentTransfersAllComplete) {
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  auto started = SteadyClock::now();
  for (int i = 0; i < 50; ++i) {
    sinks.push_back(std::make_shared<RecordingSink>());
    client_.start(get(server_->url("/stream?chunks=3&delay_ms=300")), sinks.back());
  }
  for (auto& sink : sinks) {
    ASSERT_TRUE(sink->waitComplete(30s));
    ASSERT_TRUE(sink->ok()) << sink->error().message;
    EXPECT_EQ(sink->head().status, 200);
    EXPECT_NE(sink->body().find("chunk 2 "), std::string::npos);
    EXPECT_FALSE(sink->orderViolated());
  }
  // One at a time they would need 50 * 0.6 s; together about 0.6 s.
  EXPECT_LT(SteadyClock::now() - started, 10s);
}

TEST_F(HttpClientTest, SequentialRequestsReuseOneConnection) {
  int64_t ports[2] = {0, 0};
  for (int64_t& port : ports) {
    auto sink = std::make_shared<RecordingSink>();
    client_.start(get(server_->url("/echo")), sink);
    ASSERT_TRUE(sink->waitComplete());
    ASSERT_TRUE(sink->ok()) << sink->error().message;
    auto echo = parseJson(sink->body());
    ASSERT_TRUE(echo);
    port = echo->getInt("client_port").value_or(-1);
  }
  EXPECT_GT(ports[0], 0);
  EXPECT_EQ(ports[0], ports[1]);
}

TEST_F(HttpClientTest, HeaderWithLineBreakIsRejectedBeforeSending) {
  auto sink = std::make_shared<RecordingSink>();
  Request r = get(server_->url("/echo"));
  r.headers = {{"X-Evil", "a\r\nX-Injected: 1"}};
  client_.start(r, sink);
  ASSERT_TRUE(sink->waitComplete());
  ASSERT_FALSE(sink->ok());
  EXPECT_EQ(sink->error().code, Errc::InvalidArgument);
  EXPECT_EQ(sink->headCalls(), 0);
  EXPECT_EQ(sink->error().message.find("Injected"), std::string::npos);
}

TEST_F(HttpClientTest, DestroyingTheClientAbortsRunningTransfers) {
  auto sink = std::make_shared<RecordingSink>();
  {
    Client client{ClientOptions{}};
    client.start(get(server_->url("/stream?chunks=100&delay_ms=100")), sink);
    ASSERT_TRUE(sink->waitChunks(1));
  }
  ASSERT_TRUE(sink->waitComplete(0ms));  // delivered before the destructor returned
  ASSERT_FALSE(sink->ok());
  EXPECT_EQ(sink->error().code, Errc::Cancelled);
  EXPECT_NE(sink->error().message.find("aborted"), std::string::npos) << sink->error().message;
  EXPECT_NE(sink->error().message.find("shutting down"), std::string::npos)
      << sink->error().message;
}

TEST_F(HttpClientTest, CancelAfterTheClientIsGoneIsHarmless) {
  auto sink = std::make_shared<RecordingSink>();
  std::shared_ptr<Transfer> transfer;
  {
    Client client{ClientOptions{}};
    transfer = client.start(get(server_->url("/status/204")), sink);
    ASSERT_TRUE(sink->waitComplete());
  }
  transfer->cancel();
  EXPECT_TRUE(sink->ok());
}

TEST_F(HttpClientTest, TheClientWorksThroughTheUpstreamClientInterface) {
  UpstreamClient& client = client_;
  auto sink = std::make_shared<RecordingSink>();
  std::shared_ptr<Transfer> transfer = client.start(get(server_->url("/status/204")), sink);
  ASSERT_NE(transfer, nullptr);
  ASSERT_TRUE(sink->waitComplete());
  EXPECT_TRUE(sink->ok());
  EXPECT_EQ(sink->head().status, 204);
}

// Back-pressure (client.h, DataFlow): a sink that answers Pause gets no onData until it
// resumes, and the whole body still arrives, in order, byte for byte. Both framings: curl
// holds back the refused bytes differently for a Content-Length body and a chunked one.
TEST_F(HttpClientTest, APausedTransferDeliversNothingUntilResumedAndTheWholeBodyInOrder) {
  constexpr size_t kSize = size_t{6} << 20;
  for (int chunked = 0; chunked <= 1; ++chunked) {
    SCOPED_TRACE(chunked ? "chunked" : "content-length");
    auto sink = std::make_shared<RecordingSink>();
    sink->pauseAfter = 512 * 1024;
    auto transfer = client_.start(get(server_->url("/big?bytes=" + std::to_string(kSize) +
                                                   "&chunked=" + std::to_string(chunked))),
                                  sink);
    int checked = 0;
    while (sink->waitPaused()) {
      if (checked < 3) {  // a paused transfer stays paused, however long the consumer takes
        size_t before = sink->received();
        std::this_thread::sleep_for(150ms);
        EXPECT_EQ(sink->received(), before);
        ++checked;
      }
      sink->resume(*transfer);
    }
    ASSERT_TRUE(sink->waitComplete());
    ASSERT_TRUE(sink->ok()) << sink->error().message;
    EXPECT_FALSE(sink->orderViolated());
    EXPECT_FALSE(sink->dataWhilePaused());
    EXPECT_EQ(checked, 3);
    EXPECT_GE(sink->pauses(), 10);
    ASSERT_EQ(sink->body().size(), kSize);
    EXPECT_TRUE(sink->body() == bigBody(kSize)) << "the body arrived changed or out of order";
  }
}

// The hardest case for the refused bytes: pause after every single piece, so the end of the
// body (and a chunked body's last chunk) is met while paused.
TEST_F(HttpClientTest, PausingAfterEveryPieceLosesNothing) {
  constexpr size_t kSize = 300 * 1000 + 17;
  for (int chunked = 0; chunked <= 1; ++chunked) {
    SCOPED_TRACE(chunked ? "chunked" : "content-length");
    auto sink = std::make_shared<RecordingSink>();
    sink->pauseAfter = 1;
    auto transfer = client_.start(get(server_->url("/big?bytes=" + std::to_string(kSize) +
                                                   "&chunked=" + std::to_string(chunked))),
                                  sink);
    while (sink->waitPaused()) sink->resume(*transfer);
    ASSERT_TRUE(sink->waitComplete());
    ASSERT_TRUE(sink->ok()) << sink->error().message;
    EXPECT_FALSE(sink->dataWhilePaused());
    EXPECT_EQ(static_cast<size_t>(sink->pauses()), sink->chunks().size());
    EXPECT_TRUE(sink->body() == bigBody(kSize)) << "the body arrived changed or out of order";
  }
}

// While paused, the upstream is not read: the body does not arrive in the background.
TEST_F(HttpClientTest, APausedTransferIsNotReadAndCancelEndsIt) {
  auto sink = std::make_shared<RecordingSink>();
  sink->pauseAfter = 1;
  auto transfer = client_.start(get(server_->url("/big?bytes=67108864")), sink);
  ASSERT_TRUE(sink->waitPaused());
  std::this_thread::sleep_for(300ms);  // 64 MiB over loopback would take far less
  EXPECT_LT(sink->received(), size_t{1} << 20);
  auto cancelled = SteadyClock::now();
  transfer->cancel();
  ASSERT_TRUE(sink->waitComplete(5s));
  EXPECT_LT(sink->completedAt() - cancelled, 1s);
  ASSERT_FALSE(sink->ok());
  EXPECT_EQ(sink->error().code, Errc::Cancelled);
  EXPECT_FALSE(sink->dataWhilePaused());
  transfer->resume();  // harmless after completion
}

// A sink that throws while curl hands over the held-back bytes (inside the unpause) fails the
// transfer like any other throwing sink.
TEST_F(HttpClientTest, ASinkThatThrowsAfterAResumeCompletesWithUnavailable) {
  auto sink = std::make_shared<RecordingSink>();
  sink->pauseAfter = 1;
  sink->onDataHook = [](size_t chunks) {
    if (chunks == 2) throw std::runtime_error("sink is full");
  };
  auto transfer = client_.start(get(server_->url("/big?bytes=4194304")), sink);
  ASSERT_TRUE(sink->waitPaused());
  sink->resume(*transfer);
  ASSERT_TRUE(sink->waitComplete(5s));
  ASSERT_FALSE(sink->ok());
  EXPECT_EQ(sink->error().code, Errc::Unavailable);
  EXPECT_NE(sink->error().message.find("sink is full"), std::string::npos) << sink->error().message;
  transfer->resume();
}

TEST_F(HttpClientTest, ResumeWithoutAPauseIsHarmless) {
  auto sink = std::make_shared<RecordingSink>();
  auto transfer = client_.start(get(server_->url("/big?bytes=1048576&chunked=1")), sink);
  transfer->resume();
  transfer->resume();
  ASSERT_TRUE(sink->waitComplete());
  ASSERT_TRUE(sink->ok()) << sink->error().message;
  EXPECT_TRUE(sink->body() == bigBody(1048576));
  transfer->resume();
}

// What a gateway test puts in the Client's place: canned answers, no network, no thread.
class FakeClient final : public UpstreamClient {
 public:
  class FakeTransfer final : public Transfer {
   public:
    void cancel() override { ++cancels; }
    int cancels = 0;
  };

  std::shared_ptr<Transfer> start(Request request, std::shared_ptr<Sink> sink) override {
    requests.push_back(std::move(request));
    auto transfer = std::make_shared<FakeTransfer>();
    if (sink == nullptr) return transfer;
    if (fail) {
      sink->onComplete(*fail);
    } else {
      sink->onHead(ResponseHead{200, {{"content-type", "text/plain"}}});
      sink->onData("canned");
      sink->onComplete({});
    }
    return transfer;
  }

  std::vector<Request> requests;
  std::optional<Error> fail;
};

TEST(UpstreamClientTest, AFakeStandsInForTheClient) {
  FakeClient fake;
  UpstreamClient& client = fake;

  auto sink = std::make_shared<RecordingSink>();
  auto transfer = client.start(get("http://upstream.invalid/v1/models"), sink);
  ASSERT_TRUE(sink->waitComplete(0ms));  // a fake may answer before start() returns
  EXPECT_TRUE(sink->ok());
  EXPECT_FALSE(sink->orderViolated());
  EXPECT_EQ(sink->head().status, 200);
  EXPECT_EQ(sink->body(), "canned");
  transfer->cancel();  // harmless after completion, as for the real client
  ASSERT_EQ(fake.requests.size(), 1u);
  EXPECT_EQ(fake.requests[0].url, "http://upstream.invalid/v1/models");

  fake.fail = makeError(Errc::Timeout, "upstream GET http://upstream.invalid/v1/models failed");
  auto failed = std::make_shared<RecordingSink>();
  client.start(get("http://upstream.invalid/v1/models"), failed);
  ASSERT_TRUE(failed->waitComplete(0ms));
  ASSERT_FALSE(failed->ok());
  EXPECT_EQ(failed->error().code, Errc::Timeout);
  EXPECT_EQ(failed->headCalls(), 0);
}

}  // namespace
}  // namespace llmcache::upstream
