#pragma once
#include <CLI/CLI.hpp>

namespace llmcache::cli {
// `llmcache cassette list|verify|prune DIR`: the recorded folder of the record and replay modes
// (docs/record-replay.md). `llmcache explain FILE.json --cassette DIR | --cache-dir DIR`: the
// miss explainer offline, for a request body against a cassette or a cache directory.
void addCassetteCommand(CLI::App& app, int& exitCode);
void addExplainCommand(CLI::App& app, int& exitCode);
}  // namespace llmcache::cli
