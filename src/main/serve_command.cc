#include "main/serve_command.h"

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "config/config.h"
#include "http/server.h"
#include "main/app.h"
#include "mock/mock_upstream.h"

namespace llmcache::cli {

namespace {

struct ServeArgs {
  std::string configFile;
  std::optional<std::string> listen, upstream, cacheDir, mode, cassette;
  std::vector<std::string> sets;
  bool printConfig = false;
};

config::Config loadConfig(const ServeArgs& a) {
  config::Config c = cli::loadConfig(a.configFile, a.sets);
  if (a.listen) c.listen = *a.listen;
  if (a.upstream) c.upstream = *a.upstream;
  if (a.cacheDir) c.cacheDir = *a.cacheDir;
  if (a.mode) c.mode = *a.mode;
  if (a.cassette) c.cassetteDir = *a.cassette;
  config::validate(c);
  return c;
}

int runServe(const ServeArgs& a) {
  config::Config c;
  try {
    c = loadConfig(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llmcache: configuration error: %s\n", e.what());
    return 2;
  }
  if (a.printConfig) {
    std::fputs(config::printConfig(c).c_str(), stdout);
    return 0;
  }
  std::unique_ptr<app::App> server;
  try {
    server = std::make_unique<app::App>(std::move(c));
  } catch (const app::StartupError& e) {
    std::fprintf(stderr, "llmcache: %s\n", e.what());
    return e.exitCode;
  }
  return server->run();
}

}  // namespace

config::Config loadConfig(const std::string& configFile, const std::vector<std::string>& sets) {
  config::Config c;
  std::string file = configFile;
  if (file.empty())
    if (const char* f = std::getenv("CACHE_CONFIG")) file = f;
  if (!file.empty()) config::applyFile(c, file);
  config::applyEnvironment(c, [](const char* n) { return std::getenv(n); });
  for (const std::string& kv : sets) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos)
      throw config::ConfigError("--set expects NAME=VALUE, got '" + kv + "'");
    config::setValue(c, kv.substr(0, eq), kv.substr(eq + 1));
  }
  return c;
}

void addServeCommand(CLI::App& app, int& exitCode) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "Run the caching gateway");
  cmd->add_option("--config", a->configFile, "JSON file of CACHE_* settings (or CACHE_CONFIG)");
  cmd->add_option("--listen", a->listen,
                  "HOST:PORT to listen on (CACHE_LISTEN, default 127.0.0.1:8080)");
  cmd->add_option(
      "--upstream", a->upstream,
      "Provider API root including /v1 (CACHE_UPSTREAM, default https://api.openai.com/v1)");
  cmd->add_option("--cache-dir", a->cacheDir,
                  "Disk tier directory (CACHE_DIR, default ./.llmcache)");
  cmd->add_option("--mode", a->mode,
                  "normal | record | replay | replay-or-record (CACHE_MODE, default normal)");
  cmd->add_option("--cassette", a->cassette,
                  "The recorded folder of the record and replay modes (CACHE_CASSETTE_DIR)");
  cmd->add_option("--set", a->sets, "NAME=VALUE for any CACHE_* setting (repeatable)");
  cmd->add_flag("--print-config", a->printConfig,
                "Print the effective configuration (secrets masked) and exit");
  cmd->callback([a, &exitCode] { exitCode = runServe(*a); });
}

void addMockUpstreamCommand(CLI::App& app, int& exitCode) {
  struct Args {
    std::string listen = "127.0.0.1:9090";
    int latencyMs = 0;
    int chunkDelayMs = 0;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "mock-upstream",
      "Run a stand-in LLM provider (OpenAI + Anthropic shapes) for trying llmcache offline");
  cmd->add_option("--listen", a->listen, "HOST:PORT (port 0: any free port)")
      ->capture_default_str();
  cmd->add_option("--latency-ms", a->latencyMs, "Delay before each response head")
      ->capture_default_str();
  cmd->add_option("--chunk-delay-ms", a->chunkDelayMs, "Delay between streamed events")
      ->capture_default_str();
  cmd->callback([a, &exitCode] {
    config::Config c;
    c.listen = a->listen;
    http::ServerOptions o;
    try {
      o = app::serverOptions(c);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "llmcache mock-upstream: %s\n", e.what());
      exitCode = 2;
      return;
    }
    o.shutdownGrace = std::chrono::seconds(2);
    mock::MockUpstream mock(mock::MockOptions{std::chrono::milliseconds(a->latencyMs),
                                              std::chrono::milliseconds(a->chunkDelayMs)});
    http::Server server(
        o, [&mock](http::Request& r, http::ResponseWriter& w) { return mock.handle(r, w); });
    app::runUntilSignalled(server, "mock-upstream");
    exitCode = 0;
  });
}

}  // namespace llmcache::cli
