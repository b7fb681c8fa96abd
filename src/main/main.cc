// llmcache: the command line (CLI11). Each subcommand lives in its own file.
#include <CLI/CLI.hpp>

#include "main/cassette_command.h"
#include "main/key_command.h"
#include "main/maintenance_commands.h"
#include "main/serve_command.h"
#include "main/trace_command.h"

int main(int argc, char** argv) {
  CLI::App app{"llmcache: a caching gateway for LLM APIs"};
  app.require_subcommand(1);
  int exitCode = 0;
  llmcache::cli::addKeyCommand(app, exitCode);
  llmcache::cli::addServeCommand(app, exitCode);
  llmcache::cli::addMockUpstreamCommand(app, exitCode);
  llmcache::cli::addInvalidateCommand(app, exitCode);
  llmcache::cli::addVerifyCommand(app, exitCode);
  llmcache::cli::addS3PurgeCommand(app, exitCode);
  llmcache::cli::addCassetteCommand(app, exitCode);
  llmcache::cli::addExplainCommand(app, exitCode);
  llmcache::cli::addTraceCommand(app, exitCode);
  CLI11_PARSE(app, argc, argv);
  return exitCode;
}
