#pragma once
// Test only: a real redis-server (Debian's) on 127.0.0.1 and a free port, no persistence
// (--save '' --appendonly no), started and stopped by the test.
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cache/redis/redis_client.h"

extern char** environ;

namespace llmcache::cache::redis::test {

inline int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class RedisTestServer {
 public:
  explicit RedisTestServer(int port = freePort()) : port_(port) {}
  ~RedisTestServer() { stop(); }

  // Starts it and waits until it answers PING. Empty: started; else what went wrong.
  std::string start(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"redis-server",
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--daemonize",
                                     "no",
                                     "--loglevel",
                                     "warning",
                                     "--logfile",
                                     "/dev/null"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawnp(&pid_, "redis-server", nullptr, nullptr, argv.data(), environ) != 0) {
      pid_ = -1;
      return "cannot start redis-server (run scripts/setup.sh)";
    }
    RedisClient probe(RedisClientOptions{.url = url(),
                                         .backoffMin = std::chrono::milliseconds(1),
                                         .backoffMax = std::chrono::milliseconds(1)});
    for (int i = 0; i < 500; ++i) {
      auto r = probe.command({"PING"});
      if (r || r.error().code == Errc::Io) return "";  // an answer, if only NOAUTH
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop();
    return "redis-server did not answer on port " + std::to_string(port_);
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  RedisUrl url() const {
    RedisUrl u;
    u.host = "127.0.0.1";
    u.port = port_;
    return u;
  }

 private:
  int port_;
  pid_t pid_ = -1;
};

}  // namespace llmcache::cache::redis::test
