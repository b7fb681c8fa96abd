// The server over real sockets: a Beast client on 127.0.0.1 against a server on port 0.
#include "http/server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <future>
#include <optional>
#include <thread>

#include "http/descriptor_limit.h"

namespace llmcache::http {
namespace {

using tcp = net::ip::tcp;

struct RunningServer {
  std::unique_ptr<Server> server;
  std::thread thread;
  RunningServer(ServerOptions opts, Handler h, ErrorResponder e = {}) {
    opts.port = 0;
    opts.threads = 2;
    server = std::make_unique<Server>(opts, std::move(h), std::move(e));
    thread = std::thread([this] { server->run(); });
  }
  ~RunningServer() {
    server->stop();
    thread.join();
  }
};

struct Client {
  net::io_context io;
  beast::tcp_stream stream{io};
  beast::flat_buffer buffer;
  explicit Client(uint16_t port) {
    stream.connect(tcp::endpoint{net::ip::make_address("127.0.0.1"), port});
  }
  Response call(Request req) {
    req.prepare_payload();
    bhttp::write(stream, req);
    Response res;
    bhttp::read(stream, buffer, res);
    return res;
  }
  static Request post(std::string target, std::string body) {
    Request req{bhttp::verb::post, target, 11};
    req.set(bhttp::field::host, "localhost");
    req.body() = std::move(body);
    return req;
  }
};

net::awaitable<void> echo(Request& req, ResponseWriter& w) {
  Response res{bhttp::status::ok, req.version()};
  res.set(bhttp::field::content_type, "text/plain");
  res.body() = std::string(req.target()) + ":" + req.body();
  co_await w.send(std::move(res));
}

TEST(Server, AnswersSeveralRequestsOnOneKeptAliveConnection) {
  RunningServer s({}, echo);
  Client c(s.server->port());
  EXPECT_EQ(c.call(Client::post("/a", "1")).body(), "/a:1");
  EXPECT_EQ(c.call(Client::post("/b", "2")).body(), "/b:2");
}

TEST(Server, OversizeBodyIsRefusedWithTheErrorResponderShape) {
  ServerOptions o;
  o.maxBodyBytes = 100;
  RunningServer s(o, echo, [](bhttp::status st, std::string msg, std::string_view target) {
    Response r{st, 11};
    r.body() = "custom:" + std::string(target) + ":" + msg;
    return r;
  });
  Client c(s.server->port());
  Response r = c.call(Client::post("/v1/chat/completions", std::string(1000, 'x')));
  EXPECT_EQ(r.result(), bhttp::status::payload_too_large);
  EXPECT_NE(r.body().find("custom:/v1/chat/completions:request body larger than 100"),
            std::string::npos);
  // The server keeps serving others.
  Client c2(s.server->port());
  EXPECT_EQ(c2.call(Client::post("/x", "ok")).body(), "/x:ok");
}

TEST(Server, OversizeHeadersAre431) {
  ServerOptions o;
  o.maxHeaderBytes = 1024;
  RunningServer s(o, echo);
  Client c(s.server->port());
  Request req = Client::post("/a", "1");
  req.set("x-big", std::string(4000, 'y'));
  EXPECT_EQ(c.call(req).result(), bhttp::status::request_header_fields_too_large);
}

TEST(Server, MalformedHttpIs400) {
  RunningServer s({}, echo);
  net::io_context io;
  tcp::socket sock(io);
  sock.connect(tcp::endpoint{net::ip::make_address("127.0.0.1"), s.server->port()});
  net::write(sock, net::buffer(std::string("NOT HTTP AT ALL\r\n\r\n")));
  std::string got;
  boost::system::error_code ec;
  char buf[512];
  size_t n;
  while ((n = sock.read_some(net::buffer(buf), ec)) > 0) got.append(buf, n);
  EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << got;
}

TEST(Server, StreamsChunksAsTheyAreWritten) {
  std::promise<void> secondMayGo;
  auto gate = secondMayGo.get_future().share();
  RunningServer s({}, [gate](Request& req, ResponseWriter& w) -> net::awaitable<void> {
    Fields h;
    h.set(bhttp::field::content_type, "text/event-stream");
    co_await w.beginStream(bhttp::status::ok, h);
    co_await w.write("data: one\n\n");
    // Wait (off the I/O thread) until the client has seen the first chunk. The lambda is a named
    // local, not a temporary inside the co_await expression: GCC 12 destroys such a temporary
    // twice (its shared_future's count dropped twice: a heap-use-after-free under ASan).
    auto waitForGate = [gate]() -> net::awaitable<void> {
      while (gate.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
        net::steady_timer t(co_await net::this_coro::executor, std::chrono::milliseconds(5));
        co_await t.async_wait(net::use_awaitable);
      }
    };
    auto executor = co_await net::this_coro::executor;
    co_await net::co_spawn(executor, waitForGate, net::use_awaitable);
    co_await w.write("data: two\n\n");
    co_await w.finish();
  });
  Client c(s.server->port());
  Request req = Client::post("/s", "");
  req.prepare_payload();
  bhttp::write(c.stream, req);
  bhttp::response_parser<bhttp::buffer_body> p;
  bhttp::read_header(c.stream, c.buffer, p);
  EXPECT_TRUE(p.get().chunked());
  std::string body;
  char buf[256];
  while (body.find("one") == std::string::npos) {
    p.get().body().data = buf;
    p.get().body().size = sizeof buf;
    boost::system::error_code ec;
    bhttp::read_some(c.stream, c.buffer, p, ec);
    body.append(buf, sizeof buf - p.get().body().size);
    ASSERT_TRUE(!ec || ec == bhttp::error::need_buffer) << ec.message();
  }
  EXPECT_EQ(body, "data: one\n\n");  // the first event arrived before the second was written
  secondMayGo.set_value();
  while (!p.is_done()) {
    p.get().body().data = buf;
    p.get().body().size = sizeof buf;
    boost::system::error_code ec;
    bhttp::read_some(c.stream, c.buffer, p, ec);
    body.append(buf, sizeof buf - p.get().body().size);
    ASSERT_TRUE(!ec || ec == bhttp::error::need_buffer) << ec.message();
  }
  EXPECT_EQ(body, "data: one\n\ndata: two\n\n");
}

TEST(Server, StopFinishesTheInFlightRequestAndClosesIdleConnections) {
  std::promise<void> started;
  auto startedF = started.get_future();
  auto* startedP = &started;
  auto s = std::make_unique<RunningServer>(
      ServerOptions{}, [startedP](Request& req, ResponseWriter& w) -> net::awaitable<void> {
        if (req.target() == "/slow") {
          startedP->set_value();
          net::steady_timer t(co_await net::this_coro::executor, std::chrono::milliseconds(300));
          co_await t.async_wait(net::use_awaitable);
        }
        co_await w.send(Response{bhttp::status::ok, 11, "done"});
      });
  Client idle(s->server->port());
  EXPECT_EQ(idle.call(Client::post("/fast", "")).body(), "done");
  Client busy(s->server->port());
  Request req = Client::post("/slow", "");
  req.prepare_payload();
  bhttp::write(busy.stream, req);
  startedF.wait();
  auto t0 = std::chrono::steady_clock::now();
  std::thread stopper([&] { s.reset(); });  // stop() + join
  Response res;
  bhttp::read(busy.stream, busy.buffer, res);
  EXPECT_EQ(res.body(), "done");
  EXPECT_FALSE(res.keep_alive());
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  // The idle connection was closed by the server.
  boost::system::error_code ec;
  Response r2;
  bhttp::read(idle.stream, idle.buffer, r2, ec);
  EXPECT_TRUE(ec);
}

TEST(Server, ConnectionsOverTheLimitGet503) {
  ServerOptions o;
  o.maxConnections = 1;
  RunningServer s(o, echo);
  Client first(s.server->port());
  EXPECT_EQ(first.call(Client::post("/a", "1")).body(), "/a:1");
  Client second(s.server->port());
  Response r;
  boost::system::error_code ec;
  Request req = Client::post("/b", "");
  req.prepare_payload();
  bhttp::write(second.stream, req, ec);
  bhttp::read(second.stream, second.buffer, r, ec);
  EXPECT_EQ(r.result(), bhttp::status::service_unavailable);
}

TEST(Server, HandlerExceptionBecomes500AndTheServerGoesOn) {
  RunningServer s({}, [](Request& req, ResponseWriter& w) -> net::awaitable<void> {
    if (req.target() == "/boom") throw std::runtime_error("boom");
    co_await w.send(Response{bhttp::status::ok, 11, "fine"});
  });
  Client c(s.server->port());
  EXPECT_EQ(c.call(Client::post("/boom", "")).result(), bhttp::status::internal_server_error);
  Client c2(s.server->port());
  EXPECT_EQ(c2.call(Client::post("/ok", "")).body(), "fine");
}

// A client on raw sockets: no io_context, so it takes no descriptor beyond its socket (the
// descriptor tests count them), and it can stop between the head and the body.
struct RawClient {
  int fd = -1;
  RawClient() : fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    timeval tv{2, 0};  // no answer within 2 s is a failure, not a hang
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawClient() { close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  bool connect(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  void send(std::string_view bytes) {
    ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  // Reads until `enough` says the bytes so far are a whole answer, the peer closes, or 2 s pass.
  std::string readUntil(const std::function<bool(const std::string&)>& enough) {
    std::string got;
    char buf[4096];
    while (!enough(got)) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
  // One response with a Content-Length body.
  std::string readResponse() {
    return readUntil([](const std::string& got) {
      const size_t end = got.find("\r\n\r\n");
      if (end == std::string::npos) return false;
      std::string head = got.substr(0, end);
      for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const size_t cl = head.find("content-length: ");
      if (cl == std::string::npos) return true;
      return got.size() >= end + 4 + std::stoul(head.substr(cl + 16));
    });
  }
};

std::string postHead(std::string_view target, size_t length, std::string_view extra = "") {
  return "POST " + std::string(target) +
         " HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + std::to_string(length) + "\r\n" +
         std::string(extra) + "\r\n";
}

TEST(Server, ExpectContinueIsAnsweredBeforeTheBodyIsRead) {
  RunningServer s({}, echo);
  RawClient c;
  ASSERT_TRUE(c.connect(s.server->port()));
  c.send(postHead("/up", 5, "Expect: 100-continue\r\n"));
  // The client waits for the 100 before it sends the body.
  const std::string interim =
      c.readUntil([](const std::string& got) { return got.find("\r\n\r\n") != got.npos; });
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  c.send("hello");
  const std::string res = c.readResponse();
  EXPECT_EQ(res.rfind("HTTP/1.1 200", 0), 0u) << res;
  EXPECT_NE(res.find("/up:hello"), std::string::npos) << res;
  // The connection goes on: a request without Expect gets no 100.
  c.send(postHead("/again", 2) + "ok");
  const std::string res2 = c.readResponse();
  EXPECT_EQ(res2.rfind("HTTP/1.1 200", 0), 0u) << res2;
  EXPECT_NE(res2.find("/again:ok"), std::string::npos) << res2;
}

TEST(Server, ExpectContinueWithABodyOverTheLimitIsRefusedWithoutA100) {
  ServerOptions o;
  o.maxBodyBytes = 100;
  RunningServer s(o, echo);
  RawClient c;
  ASSERT_TRUE(c.connect(s.server->port()));
  c.send(postHead("/up", 1000, "Expect: 100-continue\r\n"));
  const std::string res = c.readResponse();
  EXPECT_EQ(res.rfind("HTTP/1.1 413", 0), 0u) << res;
}

TEST(Server, ChunkedTrailersNeverReachTheHandlersHeaders) {
  RunningServer s({}, [](Request& req, ResponseWriter& w) -> net::awaitable<void> {
    std::string seen = "auth=" + std::string(req[bhttp::field::authorization]) +
                       ";ns=" + std::string(req["x-llmcache-namespace"]) +
                       ";fields=" + std::to_string(std::distance(req.begin(), req.end())) +
                       ";body=" + req.body();
    co_await w.send(Response{bhttp::status::ok, 11, seen});
  });
  RawClient c;
  ASSERT_TRUE(c.connect(s.server->port()));
  c.send(
      "POST /t HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer good\r\n"
      "Transfer-Encoding: chunked\r\nTrailer: Authorization, x-llmcache-namespace\r\n\r\n"
      "5\r\nhello\r\n0\r\nAuthorization: Bearer evil\r\nx-llmcache-namespace: evil\r\n\r\n");
  const std::string res = c.readResponse();
  EXPECT_EQ(res.rfind("HTTP/1.1 200", 0), 0u) << res;
  // Host, Authorization, Transfer-Encoding, Trailer: the head's four fields, nothing more.
  EXPECT_NE(res.find("auth=Bearer good;ns=;fields=4;body=hello"), std::string::npos) << res;
}

TEST(DescriptorLimit, TheDefaultConnectionLimitLeavesAReserveBelowTheDescriptorLimit) {
  EXPECT_EQ(connectionLimit(0, 1u << 20).connections, 10000u);  // plenty: the default
  EXPECT_EQ(connectionLimit(0, 20000).connections, 10000u);
  EXPECT_EQ(connectionLimit(0, 4096).connections, 3072u);  // a quarter kept in reserve
  EXPECT_EQ(connectionLimit(0, 1024).connections, 768u);   // at least 256 kept
  EXPECT_EQ(connectionLimit(0, 256).connections, 128u);    // but never more than half
  EXPECT_FALSE(connectionLimit(0, 256).clamped);
  EXPECT_EQ(connectionLimit(0, 1).connections, 1u);
  // An explicit setting is kept when it fits, else clamped (and said so).
  EXPECT_EQ(connectionLimit(500, 1024).connections, 500u);
  EXPECT_FALSE(connectionLimit(500, 1024).clamped);
  const ConnectionLimit over = connectionLimit(10000, 1024);
  EXPECT_EQ(over.connections, 768u);
  EXPECT_EQ(over.ceiling, 768u);
  EXPECT_TRUE(over.clamped);
  EXPECT_EQ(connectionLimit(50000, 1u << 20).connections, 50000u);
}

// Sets the soft RLIMIT_NOFILE for a scope and restores it after (lowering and restoring the soft
// limit needs no privilege; the hard limit is left alone).
struct SoftDescriptorLimit {
  rlimit saved{};
  explicit SoftDescriptorLimit(rlim_t soft) {
    ::getrlimit(RLIMIT_NOFILE, &saved);
    rlimit r = saved;
    r.rlim_cur = soft;
    EXPECT_EQ(::setrlimit(RLIMIT_NOFILE, &r), 0);
  }
  ~SoftDescriptorLimit() { ::setrlimit(RLIMIT_NOFILE, &saved); }
};

TEST(DescriptorLimit, RaiseDescriptorLimitLiftsTheSoftLimitToTheHardOne) {
  rlimit r{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &r), 0);
  if (r.rlim_max == RLIM_INFINITY || r.rlim_max < 128) GTEST_SKIP() << "no finite hard limit";
  SoftDescriptorLimit low(64);
  EXPECT_EQ(descriptorLimit(), 64u);
  EXPECT_EQ(raiseDescriptorLimit(), static_cast<uint64_t>(r.rlim_max));
  EXPECT_EQ(descriptorLimit(), static_cast<uint64_t>(r.rlim_max));
}

double cpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Out of descriptors, accept() fails with EMFILE while the connection waits in the backlog. The
// server must neither spin on it nor leave it unanswered: it answers 503 (in the responder's
// shape, with Retry-After) on its spare descriptor, stays nearly idle, and serves again once
// descriptors are free. The limit is this process's own, lowered for the test and restored.
TEST(Server, OutOfDescriptorsItAnswers503WithoutSpinningAndRecovers) {
  ServerOptions o;
  o.maxConnections = 100000;  // far above the descriptors: accept() runs out first
  RunningServer s(o, echo, [](bhttp::status st, std::string msg, std::string_view target) {
    Response r{st, 11};
    r.body() = "shape:" + std::string(target) + ":" + msg;
    return r;
  });
  {
    // Every I/O context is running; and a connection has ended (under the sanitizers, UBSan's
    // vptr check cannot validate a type first used without a free descriptor: server.cc,
    // answerUnavailable).
    Client warm(s.server->port());
    ASSERT_EQ(warm.call(Client::post("/warm", "1")).body(), "/warm:1");
  }
  // The client sockets are made before the limit is lowered: connecting one takes no descriptor
  // in this process, accepting it takes one in the server.
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 64; ++i) clients.push_back(std::make_unique<RawClient>());
  const int lowestFree = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(lowestFree, 0);
  ::close(lowestFree);
  SoftDescriptorLimit low(static_cast<rlim_t>(lowestFree + 6));
  size_t next = 0;
  // Connections are accepted and kept (kept-alive) until the descriptors run out.
  size_t served = 0;
  std::optional<std::string> refused;
  while (next < clients.size()) {
    RawClient& c = *clients[next++];
    ASSERT_TRUE(c.connect(s.server->port()));
    c.send(postHead("/v1/messages", 1) + "x");
    const std::string res = c.readResponse();
    if (res.rfind("HTTP/1.1 200", 0) == 0) {
      ++served;
      continue;
    }
    refused = res;
    break;
  }
  ASSERT_TRUE(refused) << "every connection was served: the limit did not bite";
  EXPECT_GE(served, 1u);
  EXPECT_EQ(refused->rfind("HTTP/1.1 503", 0), 0u)
      << "not a 503 (empty: no answer within 2 s): '" << *refused << "'";
  EXPECT_NE(refused->find("Retry-After: 1"), std::string::npos) << *refused;
  EXPECT_NE(refused->find("shape:/v1/messages:"), std::string::npos) << *refused;
  // Still out of descriptors: a second of new connections costs the server next to no CPU (it
  // spun at a full core), and each is answered.
  const double cpu0 = cpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  int answered = 0;
  for (int i = 0; i < 5 && next < clients.size(); ++i) {
    RawClient& c = *clients[next++];
    ASSERT_TRUE(c.connect(s.server->port()));
    c.send(postHead("/x", 1) + "x");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (c.readResponse().rfind("HTTP/1.1 503", 0) == 0) ++answered;
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpuSeconds() - cpu0;
  EXPECT_EQ(answered, 5);
  EXPECT_LT(cpu, 0.25 * wall) << "the server used " << cpu << " s of CPU in " << wall << " s";
  // Descriptors free up (the kept connections close): the server serves again.
  for (size_t i = 0; i < next; ++i) clients[i]->close();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  RawClient& again = *clients[next++];
  ASSERT_TRUE(again.connect(s.server->port()));
  again.send(postHead("/back", 2) + "ok");
  const std::string res = again.readResponse();
  EXPECT_EQ(res.rfind("HTTP/1.1 200", 0), 0u) << res;
  EXPECT_NE(res.find("/back:ok"), std::string::npos) << res;
}

}  // namespace
}  // namespace llmcache::http
