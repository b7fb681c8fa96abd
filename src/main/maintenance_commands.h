#pragma once
#include <CLI/CLI.hpp>

namespace llmcache::cli {
// `llmcache invalidate`: remove entries by criterion, in a running gateway (--server) or in a
// cache directory. `llmcache verify [--repair]`: check (and rebuild) the index and the disk tier.
void addInvalidateCommand(CLI::App& app, int& exitCode);
void addVerifyCommand(CLI::App& app, int& exitCode);
}  // namespace llmcache::cli
