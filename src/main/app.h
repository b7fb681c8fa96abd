#pragma once
// App: the composition root of `llmcache serve` (docs/architecture.md). It builds the object
// graph from a validated Config (tiers, the cache service and its observers, the index, the
// invalidator, analytics, the admin API, the upstream client, the gateway, the HTTP server),
// owns the background tasks (one PeriodicTask each), runs until SIGINT/SIGTERM and shuts down
// in the one order written in shutdown().
#include <memory>
#include <stdexcept>
#include <string>

#include "cache/s3/s3_client.h"
#include "config/config.h"
#include "http/server.h"

namespace llmcache::app {

// A start-up failure: what to print and the process's exit code (2: configuration, 1: other).
struct StartupError : std::runtime_error {
  StartupError(const std::string& message, int code)
      : std::runtime_error(message), exitCode(code) {}
  int exitCode;
};

class App {
 public:
  // Builds everything and binds the listening socket. Throws StartupError.
  explicit App(config::Config config);
  ~App();  // shutdown()
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Prints "llmcache listening on http://127.0.0.1:PORT" (tests read it) and serves until
  // SIGINT or SIGTERM; then shuts down. Returns the exit code.
  int run();

 private:
  struct Parts;
  void shutdown();
  std::unique_ptr<Parts> parts_;
};

// The S3 client's options from the configuration (serve and s3-purge): endpoint, region, bucket,
// addressing, credentials from the environment, CACHE_S3_TIMEOUT.
cache::s3::S3ClientOptions s3ClientOptions(const config::Config& c);
// The server's limits from the configuration (serve and mock-upstream).
http::ServerOptions serverOptions(const config::Config& c);
// Runs a server until SIGINT/SIGTERM, printing "<what> listening on http://127.0.0.1:PORT".
void runUntilSignalled(http::Server& server, const std::string& what);

}  // namespace llmcache::app
