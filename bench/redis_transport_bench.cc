// The Redis client's transport (issue 18, TLS): one GET of a 1 KB value at a time on one
// connection, hiredis 0.14's own I/O (redisCommandArgv: what RedisClient used before) against
// RedisConnection (our socket I/O, hiredis only formatting and parsing) plain and over TLS.
// Usage: redis_transport_bench PORT TLS_PORT CA_FILE: one redis-server serving both ports;
// bench/redis_transport_bench.sh starts it and makes the CA.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cache/redis/redis_connection.h"
using namespace llmcache::cache::redis;
using Clock = std::chrono::steady_clock;
static void report(const char* name, std::vector<double>& t) {
  std::sort(t.begin(), t.end());
  std::printf("%-22s p50 %.1f us  p90 %.1f us  p99 %.1f us  (%zu GETs)\n", name, t[t.size() / 2],
              t[t.size() * 9 / 10], t[t.size() * 99 / 100], t.size());
}
int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: redis_transport_bench PORT TLS_PORT CA_FILE\n");
    return 2;
  }
  int port = std::stoi(argv[1]), tlsPort = std::stoi(argv[2]);
  std::string ca = argv[3];
  const int n = 20000;
  timeval tv{0, 250000};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  redisSetTimeout(c, tv);
  std::string value(1024, 'v');
  freeReplyObject(redisCommand(c, "SET k %b", value.data(), value.size()));
  for (int round = 0; round < 3; ++round) {
    std::vector<double> a, b, d;
    for (int i = 0; i < n; ++i) {
      const char* argv2[] = {"GET", "k"};
      size_t lens[] = {3, 1};
      auto t0 = Clock::now();
      auto* r = static_cast<redisReply*>(redisCommandArgv(c, 2, argv2, lens));
      a.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      if (!r || r->len != 1024) return 1;
      freeReplyObject(r);
    }
    auto plain = RedisConnection::open({.host = "127.0.0.1", .port = port});
    (*plain)->setTimeout(std::chrono::milliseconds(250));
    for (int i = 0; i < n; ++i) {
      auto t0 = Clock::now();
      auto r = (*plain)->command({"GET", "k"});
      b.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      if (!r || r->str.size() != 1024) return 2;
    }
    auto tls = TlsContext::create({.caFile = ca});
    auto sec = RedisConnection::open({.host = "127.0.0.1", .port = tlsPort, .tls = *tls});
    if (!sec) {
      std::printf("%s\n", sec.error().message.c_str());
      return 3;
    }
    (*sec)->setTimeout(std::chrono::milliseconds(250));
    for (int i = 0; i < n; ++i) {
      auto t0 = Clock::now();
      auto r = (*sec)->command({"GET", "k"});
      d.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      if (!r || r->str.size() != 1024) return 4;
    }
    report("hiredis redisCommand", a);
    report("RedisConnection plain", b);
    report("RedisConnection TLS", d);
  }
}
