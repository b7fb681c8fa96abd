#pragma once
#include <CLI/CLI.hpp>

namespace llmcache::cli {
// `llmcache invalidate`: remove entries by criterion, in a running gateway (--server) or in a
// cache directory. `llmcache verify [--repair]`: check (and rebuild) the index and the disk tier.
void addInvalidateCommand(CLI::App& app, int& exitCode);
void addVerifyCommand(CLI::App& app, int& exitCode);
// `llmcache s3-purge`: delete the S3 objects of entries marked invalid at least --older-than ago
// (docs/s3-layout.md, Invalidation marks). Reads the S3 settings as `serve` does.
void addS3PurgeCommand(CLI::App& app, int& exitCode);
}  // namespace llmcache::cli
