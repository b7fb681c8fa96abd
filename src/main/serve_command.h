#pragma once
#include <CLI/CLI.hpp>

namespace llmcache::cli {
// `llmcache serve`: the gateway. `llmcache mock-upstream`: the stand-in provider.
void addServeCommand(CLI::App& app, int& exitCode);
void addMockUpstreamCommand(CLI::App& app, int& exitCode);
}  // namespace llmcache::cli
