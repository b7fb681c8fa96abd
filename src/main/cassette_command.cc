#include "main/cassette_command.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include "analytics/explain.h"
#include "cache/cassette/cassette_tier.h"
#include "cache/disk/disk_tier.h"
#include "common/json.h"
#include "config/config.h"
#include "index/index.h"

namespace llmcache::cli {

namespace {

namespace fs = std::filesystem;
using cache::CassetteTier;

bool isCassette(const std::string& dir) {
  if (fs::exists(fs::path(dir) / "cassette.json")) return true;
  std::fprintf(stderr, "llmcache cassette: %s is not a cassette (no cassette.json)\n", dir.c_str());
  return false;
}

int runList(const std::string& dir) {
  if (!isCassette(dir)) return 2;
  auto used = CassetteTier::lastReplayKeys(dir);
  size_t n = 0, bad = 0;
  for (const auto& f : CassetteTier::listFiles(dir)) {
    if (!f.entry) {
      ++bad;
      std::printf("UNREADABLE  %s: %s\n", f.path.filename().c_str(),
                  f.entry.error().message.c_str());
      continue;
    }
    ++n;
    const cache::Entry& e = *f.entry;
    const char* mark = !used ? "-" : used->count(e.cacheKey) ? "used" : "unused";
    std::printf("%-6s %-18s %-7s %-24s %s\n", mark, e.endpoint.c_str(),
                e.sseEvents.empty() ? "json" : "stream", e.model.c_str(), e.cacheKey.c_str());
  }
  std::printf("%zu entries%s%s\n", n,
              bad ? (", " + std::to_string(bad) + " unreadable").c_str() : "",
              used ? "" : " (no replay run yet: used/unused unknown)");
  return bad ? 1 : 0;
}

int runVerify(const std::string& dir) {
  if (!isCassette(dir)) return 2;
  size_t n = 0;
  std::vector<std::string> problems;
  std::set<std::string> keys;
  for (const auto& f : CassetteTier::listFiles(dir)) {
    const std::string name = f.path.filename().string();
    if (!f.entry) {
      problems.push_back(name + ": " + f.entry.error().message);
      continue;
    }
    ++n;
    const cache::Entry& e = *f.entry;
    if (CassetteTier::fileName(e.cacheKey) != name)
      problems.push_back(name + ": holds cache key " + e.cacheKey + ", whose file is " +
                         CassetteTier::fileName(e.cacheKey));
    if (e.expiresAt) problems.push_back(name + ": expires (a recording never should)");
    if (e.request.empty()) problems.push_back(name + ": no request (the explainer needs it)");
    if (e.status != 200) problems.push_back(name + ": status " + std::to_string(e.status));
    if (!keys.insert(e.cacheKey).second) problems.push_back(name + ": a second file of its key");
  }
  for (const std::string& p : problems) std::printf("PROBLEM %s\n", p.c_str());
  std::printf("%zu entries, %zu problem(s)\n", n, problems.size());
  return problems.empty() ? 0 : 1;
}

int runPrune(const std::string& dir, bool dryRun) {
  if (!isCassette(dir)) return 2;
  auto used = CassetteTier::lastReplayKeys(dir);
  if (!used) {
    std::fprintf(stderr,
                 "llmcache cassette prune: %s (run the suite in replay mode first: it lists the "
                 "entries it used in last-replay.json)\n",
                 used.error().message.c_str());
    return 2;
  }
  size_t kept = 0, removed = 0;
  for (const auto& f : CassetteTier::listFiles(dir)) {
    if (!f.entry || used->count(f.entry->cacheKey)) {
      ++kept;  // an unreadable file is the user's to fix (cassette verify names it)
      continue;
    }
    std::printf("%s %s\n", dryRun ? "would remove" : "removed", f.path.filename().c_str());
    if (!dryRun) {
      std::error_code ec;
      fs::remove(f.path, ec);
      if (ec) {
        std::fprintf(stderr, "llmcache cassette prune: %s: %s\n", f.path.c_str(),
                     ec.message().c_str());
        return 1;
      }
    }
    ++removed;
  }
  std::printf("%zu kept, %zu %s\n", kept, removed, dryRun ? "to remove" : "removed");
  return 0;
}

// The tenant's newest entries of the endpoint in a cache directory (the index, then the disk
// tier, which keeps the request text), as a normal-mode gateway's explainer reads them. The
// codec from the environment (CACHE_COMPRESSION, CACHE_ENCRYPTION*), as `verify` reads it.
Result<std::vector<cache::EntryPtr>> cacheDirCandidates(const std::string& cacheDir,
                                                        const std::string& tenant,
                                                        const std::string& endpoint) {
  config::Config c;
  cache::CodecOptions codec;
  std::unique_ptr<cache::DiskTier> disk;
  try {
    if (const char* f = std::getenv("CACHE_CONFIG")) config::applyFile(c, f);
    config::applyEnvironment(c, [](const char* n) { return std::getenv(n); });
    codec.compress = c.compression;
    if (c.encryption) codec.key = config::encryptionKeyBytes(c);
    disk = std::make_unique<cache::DiskTier>(
        cache::DiskTierOptions{.dir = cacheDir,
                               .maxEntries = std::numeric_limits<size_t>::max(),
                               .maxBytes = std::numeric_limits<size_t>::max(),
                               .codec = codec,
                               // Leaves a running gateway's writes in progress alone.
                               .scanInBackground = true});
  } catch (const std::exception& e) {
    return makeError(Errc::InvalidArgument, e.what());
  }
  auto opened = index::Index::open(index::Index::defaultPath(cacheDir));
  if (!opened) return opened.error();
  auto page = (*opened)->list({.tenant = tenant, .limit = index::kMaxPageSize});
  if (!page) return page.error();
  std::vector<cache::EntryPtr> out;
  for (const index::Row& row : page->rows) {
    if (row.endpoint != endpoint || row.invalid) continue;
    if (auto found = disk->peek(row.cacheKey); found && *found) out.push_back(**found);
    if (out.size() >= 200) break;
  }
  return out;
}

int runExplain(const std::string& file, const std::string& dir, const std::string& cacheDir,
               const std::string& endpoint, const std::string& tenant) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "llmcache explain: cannot read %s\n", file.c_str());
    return 2;
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto body = parseJson(text.str());
  if (!body || !body->isObject()) {
    std::fprintf(stderr, "llmcache explain: %s is not a JSON request body%s%s\n", file.c_str(),
                 body ? "" : ": ", body ? "" : body.error().message.c_str());
    return 2;
  }
  if (dir.empty() == cacheDir.empty()) {
    std::fprintf(stderr, "llmcache explain: give one of --cassette DIR and --cache-dir DIR\n");
    return 2;
  }
  std::vector<cache::EntryPtr> candidates;
  if (!dir.empty()) {
    if (!isCassette(dir)) return 2;
    for (auto& f : CassetteTier::listFiles(dir))
      if (f.entry) candidates.push_back(std::make_shared<const cache::Entry>(std::move(*f.entry)));
  } else {
    auto found = cacheDirCandidates(cacheDir, tenant, endpoint);
    if (!found) {
      std::fprintf(stderr, "llmcache explain: %s: %s\n", cacheDir.c_str(),
                   found.error().message.c_str());
      return 1;
    }
    candidates = std::move(*found);
  }
  const analytics::MissExplanation ex = analytics::explainMiss(*body, tenant, endpoint, candidates);
  std::fputs(cache::prettyJson(ex.toJson()).c_str(), stdout);
  return 0;
}

}  // namespace

void addCassetteCommand(CLI::App& app, int& exitCode) {
  CLI::App* cmd = app.add_subcommand(
      "cassette", "List, verify or prune a folder recorded in record mode (docs/record-replay.md)");
  cmd->require_subcommand(1);
  auto dir = std::make_shared<std::string>();
  CLI::App* list = cmd->add_subcommand("list",
                                       "One line per entry: used by the last replay "
                                       "run?, endpoint, json|stream, model, cache key");
  list->add_option("DIR", *dir, "The cassette folder")->required();
  list->callback([dir, &exitCode] { exitCode = runList(*dir); });
  CLI::App* verify =
      cmd->add_subcommand("verify", "Check every entry file (exit 1 naming each problem)");
  verify->add_option("DIR", *dir, "The cassette folder")->required();
  verify->callback([dir, &exitCode] { exitCode = runVerify(*dir); });
  auto dryRun = std::make_shared<bool>(false);
  CLI::App* prune = cmd->add_subcommand(
      "prune", "Remove the entries the last replay run did not use (last-replay.json)");
  prune->add_option("DIR", *dir, "The cassette folder")->required();
  prune->add_flag("--dry-run", *dryRun, "Only print what would be removed");
  prune->callback([dir, dryRun, &exitCode] { exitCode = runPrune(*dir, *dryRun); });
}

void addExplainCommand(CLI::App& app, int& exitCode) {
  struct Args {
    std::string file, cassette, cacheDir, endpoint = "openai.chat", tenant;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "explain", "The recorded request nearest to a request body, and the fields that differ");
  cmd->add_option("FILE", a->file, "The request body (JSON)")->required();
  cmd->add_option("--cassette", a->cassette, "The recorded folder to compare with");
  cmd->add_option("--cache-dir", a->cacheDir,
                  "Or a gateway's cache directory (CACHE_DIR): its index and disk tier");
  cmd->add_option("--endpoint", a->endpoint, "Endpoint of the request")
      ->check(CLI::IsMember({"openai.chat", "openai.completions", "openai.embeddings",
                             "anthropic.messages", "openai.responses"}))
      ->capture_default_str();
  cmd->add_option("--tenant", a->tenant,
                  "The tenant whose entries are compared (empty: unscoped, as in the cassette "
                  "modes with CACHE_SCOPE=api_key; else as /cache/entries lists it)");
  cmd->callback([a, &exitCode] {
    exitCode = runExplain(a->file, a->cassette, a->cacheDir, a->endpoint, a->tenant);
  });
}

}  // namespace llmcache::cli
