#pragma once
// Test only: a real redis-server (Debian's) on 127.0.0.1 and a free port, no persistence
// (--save '' --appendonly no), started and stopped by the test; with useTls() it listens with
// TLS only (--port 0 --tls-port), and TestCertificates makes a throwaway CA and server
// certificates with the openssl command (Debian's openssl package).
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
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

// A temp dir holding ca.crt/ca.key (a throwaway CA), other-ca.crt (a CA nobody uses),
// server.crt/key (by ca, for IP 127.0.0.1 and DNS localhost) and wrong-name.crt/key (by ca, for
// redis.example only). Removed by the destructor.
class TestCertificates {
 public:
  TestCertificates() {
    std::string t = (std::filesystem::temp_directory_path() / "llmcache-tls-XXXXXX").string();
    if (!::mkdtemp(t.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = t;
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
        " -subj '/CN=llmcache test CA' -keyout ca.key -out ca.crt");
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
        " -subj '/CN=another CA' -keyout other-ca.key -out other-ca.crt");
    sign("server", "subjectAltName=IP:127.0.0.1,DNS:localhost");
    sign("wrong-name", "subjectAltName=DNS:redis.example");
  }
  ~TestCertificates() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  void run(const std::string& command) const {
    const std::string line = "cd '" + dir_.string() + "' && " + command + " >/dev/null 2>&1";
    if (std::system(line.c_str()) != 0)
      throw std::runtime_error("failed (is openssl installed? scripts/setup.sh): " + command);
  }
  void sign(const std::string& name, const std::string& san) const {
    std::ofstream(dir_ / (name + ".ext")) << san << "\n";
    run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj '/CN=" + name +
        "' -keyout " + name + ".key -out " + name + ".csr");
    run("openssl x509 -req -in " + name + ".csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2" +
        " -extfile " + name + ".ext -out " + name + ".crt");
  }
  std::filesystem::path dir_;
};

class RedisTestServer {
 public:
  explicit RedisTestServer(int port = freePort()) : port_(port) {}
  ~RedisTestServer() { stop(); }

  // Starts it and waits until it answers PING. Empty: started; else what went wrong.
  // TLS only, with this certificate and key; url() is rediss:// trusting caFile.
  void useTls(std::string certFile, std::string keyFile, std::string caFile) {
    tlsCert_ = std::move(certFile);
    tlsKey_ = std::move(keyFile);
    tlsCa_ = std::move(caFile);
  }

  std::string start(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"redis-server"};
    if (tlsCert_.empty()) {
      args.insert(args.end(), {"--port", std::to_string(port_)});
    } else {
      args.insert(args.end(), {"--port", "0", "--tls-port", std::to_string(port_),
                               "--tls-cert-file", tlsCert_, "--tls-key-file", tlsKey_,
                               "--tls-ca-cert-file", tlsCa_, "--tls-auth-clients", "no"});
    }
    args.insert(args.end(),
                {"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no",
                 "--loglevel", "warning", "--logfile", "/dev/null"});
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
      // An answer, if only NOAUTH or a certificate the probe refuses (the server is up).
      if (r || r.error().code == Errc::Io ||
          r.error().message.find("certificate") != std::string::npos)
        return "";
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
    u.tls = !tlsCert_.empty();
    u.caFile = tlsCa_;
    return u;
  }

 private:
  int port_;
  pid_t pid_ = -1;
  std::string tlsCert_, tlsKey_, tlsCa_;
};

}  // namespace llmcache::cache::redis::test
