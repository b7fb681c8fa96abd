#pragma once
#include <CLI/CLI.hpp>

namespace llmcache::cli {
// `llmcache key`: the cache key of requests read on stdin (see README, CLI).
void addKeyCommand(CLI::App& app, int& exitCode);
}  // namespace llmcache::cli
