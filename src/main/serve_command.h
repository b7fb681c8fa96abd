#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "config/config.h"

namespace llmcache::cli {
// `llmcache serve`: the gateway. `llmcache mock-upstream`: the stand-in provider.
void addServeCommand(CLI::App& app, int& exitCode);
void addMockUpstreamCommand(CLI::App& app, int& exitCode);
// The configuration as `serve` reads it: the file (or CACHE_CONFIG), the environment, then each
// NAME=VALUE. Throws config::ConfigError (or std::exception) on a bad value.
config::Config loadConfig(const std::string& configFile, const std::vector<std::string>& sets);
}  // namespace llmcache::cli
