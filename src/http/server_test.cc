// The server over real sockets: a Beast client on 127.0.0.1 against a server on port 0.
#include "http/server.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

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

}  // namespace
}  // namespace llmcache::http
