#pragma once
#include <CLI/CLI.hpp>

namespace llmcache::cli {
// `llmcache trace export|synth|replay` (docs/trace-format.md, docs/eviction.md): write a window of
// the index's events as a trace, write a synthetic trace, replay a trace through the tiers'
// eviction policies offline.
void addTraceCommand(CLI::App& app, int& exitCode);
}  // namespace llmcache::cli
