#include "main/maintenance_commands.h"

#include <curl/curl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "cache/codec.h"
#include "cache/disk/disk_tier.h"
#include "cache/s3/s3_tier.h"
#include "cache/tiered_cache.h"
#include "common/json.h"
#include "config/config.h"
#include "index/disk_scan.h"
#include "index/index.h"
#include "invalidation/invalidator.h"
#include "invalidation/request.h"
#include "invalidation/s3_broadcast.h"
#include "main/app.h"
#include "main/serve_command.h"

namespace llmcache::cli {

namespace {

struct InvalidateArgs {
  std::string model, olderThan, pattern, key, tag, keyNamespace, cacheId;
  bool dryRun = false;
  bool progress = false;  // draw the progress bar even when stderr is not a terminal
  std::string server;
  std::string token;
  std::string cacheDir = "./.llmcache";
  std::string configFile;  // CACHE_* settings (S3), as `serve --config`
  std::vector<std::string> sets;
};

// Names the offline CLI's marks and invalidation records (it has no instance id of its own).
constexpr std::string_view kCliInstanceId = "llmcache-invalidate";

// The codec the gateway would use on this machine: CACHE_COMPRESSION and CACHE_ENCRYPTION from
// the environment (and CACHE_CONFIG), so that an encrypted cache directory can be read.
// Throws ConfigError on a bad encryption key.
cache::CodecOptions codecFromEnvironment() {
  config::Config c;
  if (const char* f = std::getenv("CACHE_CONFIG")) config::applyFile(c, f);
  config::applyEnvironment(c, [](const char* n) { return std::getenv(n); });
  cache::CodecOptions codec{.compress = c.compression};
  if (c.encryption) codec.key = config::encryptionKeyBytes(c);
  return codec;
}

size_t appendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// POST {server}/cache/invalidate with the bearer token. Returns the HTTP status (0: no answer).
int postInvalidate(const std::string& server, const std::string& token, const std::string& body,
                   std::string& reply) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  std::string url = server;
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += "/cache/invalidate";
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  const std::string auth = "Authorization: Bearer " + token;
  if (!token.empty()) headers = curl_slist_append(headers, auth.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, appendBody);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &reply);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 600L);
  const CURLcode rc = curl_easy_perform(curl.get());
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    reply = curl_easy_strerror(rc);
    return 0;
  }
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  return static_cast<int>(status);
}

int runInvalidate(const InvalidateArgs& a) {
  Json body = Json::object();
  int criteria = 0;
  for (auto [name, value] : {std::pair{"model", &a.model},
                             {"older_than", &a.olderThan},
                             {"pattern", &a.pattern},
                             {"key", &a.key},
                             {"tag", &a.tag},
                             {"namespace", &a.keyNamespace},
                             {"cache_id", &a.cacheId}}) {
    if (!value->empty()) {
      body.set(name, Json::string(*value));
      ++criteria;
    }
  }
  if (criteria != 1) {
    std::fprintf(stderr,
                 "llmcache invalidate: give exactly one of --model, --older-than, --pattern, "
                 "--key, --tag, --namespace, --cache-id\n");
    return 2;
  }
  if (a.dryRun) body.set("dry_run", Json::boolean(true));
  const std::string text = toJson(body);

  if (!a.server.empty()) {
    std::string token = a.token;
    if (token.empty())
      if (const char* t = std::getenv("CACHE_ADMIN_TOKEN")) token = t;
    std::string reply;
    const int status = postInvalidate(a.server, token, text, reply);
    std::printf("%s\n", reply.c_str());
    return status == 200 ? 0 : (status == 0 ? 1 : 2);
  }

  // A cache directory: the index and the disk tier. A gateway running on the same directory
  // keeps its memory tier: use --server for a running gateway.
  auto request = invalidation::parseRequest(body);
  if (!request) {
    std::fprintf(stderr, "llmcache invalidate: %s\n", request.error().message.c_str());
    return 2;
  }
  auto opened = index::Index::open(index::Index::defaultPath(a.cacheDir));
  if (!opened) {
    std::fprintf(stderr, "llmcache invalidate: %s (try `llmcache verify --repair`)\n",
                 opened.error().message.c_str());
    return 1;
  }
  std::unique_ptr<cache::DiskTier> disk;
  // With S3 configured (CACHE_S3_BUCKET & co., as `serve` reads them), the bucket too: every
  // gateway's entries there are marked invalid (bucket-wide, as a gateway's invalidation does),
  // and a record tells the running gateways to drop their memory and disk copies.
  std::unique_ptr<cache::s3::S3Client> s3Client;
  std::unique_ptr<cache::s3::S3Tier> s3Tier;
  config::Config c;
  try {
    c = loadConfig(a.configFile, a.sets);
    cache::CodecOptions codec{.compress = c.compression};
    if (c.encryption) codec.key = config::encryptionKeyBytes(c);
    cache::DiskTierOptions o;
    o.codec = codec;
    o.dir = a.cacheDir;
    o.maxEntries = std::numeric_limits<size_t>::max();
    o.maxBytes = std::numeric_limits<size_t>::max();
    disk = std::make_unique<cache::DiskTier>(o);
    if (!c.s3Bucket.empty()) {
      s3Client = std::make_unique<cache::s3::S3Client>(app::s3ClientOptions(c));
      s3Tier = std::make_unique<cache::s3::S3Tier>(
          *s3Client, cache::s3::S3TierOptions{.prefix = c.s3Prefix,
                                              .codec = codec,
                                              .instanceId = std::string(kCliInstanceId),
                                              .writeIndex = false});
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llmcache invalidate: %s\n", e.what());
    return 1;
  }
  std::vector<cache::SlowTier> slow;
  if (s3Tier) slow.push_back({.tier = s3Tier.get()});  // a key's erase marks its S3 pointer
  cache::TieredCache tiers({.fast = {disk.get()}, .slow = slow, .slowThreads = 1});
  // No time limit on the bucket-wide search: the command waits for the whole of it.
  invalidation::Invalidator invalidator(**opened, tiers, Clock::system(),
                                        {.history = 4096,
                                         .sharedBudget = std::chrono::milliseconds(0),
                                         .sharedQueue = 16,
                                         .sharedSlice = std::chrono::milliseconds(1000)});
  tiers.setGuard(&invalidator);
  if (s3Tier) invalidator.setSharedTier(s3Tier.get());
  std::fprintf(stderr, "llmcache invalidate: working through %s ...\n", a.cacheDir.c_str());
  // A progress bar on stderr while the matched entries are erased from the tiers: when stderr
  // is a terminal, or with --progress. Redrawn in place (\r) when the percentage changes.
  invalidation::Invalidator::Progress progress;
  if (a.progress || ::isatty(STDERR_FILENO))
    progress = [last = -1](size_t done, size_t total) mutable {
      const int percent = total ? static_cast<int>(done * 100 / total) : 100;
      if (percent == last) return;
      last = percent;
      constexpr int kWidth = 30;
      const int filled = percent * kWidth / 100;
      std::fprintf(stderr, "\rllmcache invalidate: [%s%s] %3d%% %zu/%zu entries",
                   std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(),
                   percent, done, total);
      if (done == total) std::fputc('\n', stderr);
      std::fflush(stderr);
    };
  auto outcome = invalidator.apply(*request, progress);
  if (!outcome) {
    std::fprintf(stderr, "llmcache invalidate: %s\n", outcome.error().message.c_str());
    return 1;
  }
  int rc = 0;
  Json reply = Json::object()
                   .set("matched", Json::integer(static_cast<int64_t>(outcome->matched)))
                   .set("invalidated", Json::integer(static_cast<int64_t>(outcome->invalidated)))
                   .set("dry_run", Json::boolean(outcome->dryRun));
  if (outcome->shared.searched) {
    Json s3 = Json::object()
                  .set("scanned", Json::integer(static_cast<int64_t>(outcome->shared.scanned)))
                  .set("matched", Json::integer(static_cast<int64_t>(outcome->shared.matched)))
                  .set("marked", Json::integer(static_cast<int64_t>(outcome->shared.marked)));
    if (!outcome->shared.error.empty()) {
      s3.set("error", Json::string(outcome->shared.error));
      std::fprintf(stderr, "llmcache invalidate: the S3 search stopped: %s (run it again)\n",
                   outcome->shared.error.c_str());
      rc = 1;
    }
    reply.set("s3", std::move(s3));
  }
  if (s3Tier && !outcome->dryRun) {
    // The running gateways apply it at their next poll (CACHE_INVALIDATION_POLL).
    auto published = invalidation::writeInvalidationRecord(
        *s3Client, cache::s3::normalizePrefix(c.s3Prefix), kCliInstanceId, body, Clock::system(),
        static_cast<uint64_t>(::getpid()));
    reply.set("published", Json::boolean(published.has_value()));
    if (!published) {
      std::fprintf(stderr, "llmcache invalidate: the record for the gateways was not written: %s\n",
                   published.error().message.c_str());
      rc = 1;
    }
  }
  std::printf("%s\n", toJson(reply).c_str());
  return rc;
}

int runVerify(const std::string& cacheDir, bool repair) {
  cache::CodecOptions codec;
  try {
    codec = codecFromEnvironment();
  } catch (const std::exception& e) {
    std::printf("configuration: %s\n", e.what());
    return 2;
  }
  const auto path = index::Index::defaultPath(cacheDir);
  size_t problems = 0;
  auto opened = index::Index::open(path);
  if (!opened) {
    ++problems;
    std::printf("index: %s\n", opened.error().message.c_str());
  }
  // Decode every disk entry: corrupt files and entries missing from the index are problems.
  size_t diskEntries = 0;
  size_t notIndexed = 0;
  auto scan = index::scanDiskTier(
      cacheDir,
      [&](const cache::Entry& e, unsigned, size_t, size_t) {
        ++diskEntries;
        if (opened) {
          auto row = (*opened)->byCacheId(e.cacheId);
          if (!row || !*row) ++notIndexed;
        }
      },
      codec);
  if (!scan) {
    std::printf("disk tier: %s\n", scan.error().message.c_str());
    return 1;
  }
  std::printf("disk tier: %zu files, %zu entries, %zu corrupt, %zu unreadable\n", scan->files,
              scan->entries, scan->corrupt, scan->unreadable);
  for (const auto& p : scan->problems) std::printf("  %s\n", p.c_str());
  problems += scan->corrupt + scan->unreadable + notIndexed;
  if (opened) {
    auto stats = (*opened)->stats();
    if (stats)
      std::printf("index: %llu entries\n", static_cast<unsigned long long>(stats->entries));
    std::printf("index: %zu disk entries not in the index\n", notIndexed);
  }
  if (!repair) return problems == 0 ? 0 : 1;
  if (problems == 0) {
    std::printf("nothing to repair\n");
    return 0;
  }
  if (scan->entries == 0 && scan->corrupt > 0) {
    // Not one entry readable: far more likely a missing or wrong CACHE_ENCRYPTION_KEY than a
    // disk that corrupted every file. Deleting them all would be the wrong repair.
    std::printf(
        "repair: no entry could be read (an encrypted cache needs CACHE_ENCRYPTION=true and "
        "its CACHE_ENCRYPTION_KEY); nothing changed\n");
    return 1;
  }
  opened = {};
  (void)index::Index::removeFiles(path);
  auto fresh = index::Index::open(path);
  if (!fresh) {
    std::printf("repair: cannot create the index: %s\n", fresh.error().message.c_str());
    return 1;
  }
  auto rebuilt = index::rebuildFromDiskTier(**fresh, cacheDir, codec);
  if (!rebuilt) {
    std::printf("repair: %s\n", rebuilt.error().message.c_str());
    return 1;
  }
  // Corrupt files would be deleted on their next lookup anyway; remove them now.
  size_t removed = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(
           std::filesystem::path(cacheDir) / "entries", ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file() || it->path().extension() != ".entry") continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    if (!cache::decodeEntry(bytes, codec)) {
      std::filesystem::remove(it->path(), ec);
      ++removed;
    }
  }
  std::printf("repair: index rebuilt with %zu entries; %zu corrupt files removed\n",
              rebuilt->entries, removed);
  return 0;
}

}  // namespace

void addInvalidateCommand(CLI::App& app, int& exitCode) {
  auto a = std::make_shared<InvalidateArgs>();
  CLI::App* cmd = app.add_subcommand("invalidate", "Invalidate cache entries by criterion");
  cmd->add_option("--model", a->model, "Every entry of this model");
  cmd->add_option("--older-than", a->olderThan,
                  "Entries older than a duration (7d, 90m) or an ISO time");
  cmd->add_option("--pattern", a->pattern, "A glob over cache keys and models");
  cmd->add_option("--key", a->key, "One exact cache key");
  cmd->add_option("--tag", a->tag, "Entries with this tag");
  cmd->add_option("--namespace", a->keyNamespace, "Entries of this namespace");
  cmd->add_option("--cache-id", a->cacheId, "One entry by its cache_id");
  cmd->add_flag("--dry-run", a->dryRun, "Only count what would be invalidated");
  cmd->add_flag(
      "--progress", a->progress,
      "Draw the progress bar on stderr even when it is not a terminal (without --server)");
  cmd->add_option("--server", a->server, "A running gateway (http://host:port): use its admin API");
  cmd->add_option("--token", a->token, "Admin token for --server (default: CACHE_ADMIN_TOKEN)");
  cmd->add_option("--cache-dir", a->cacheDir, "The cache directory, without --server")
      ->capture_default_str();
  cmd->add_option("--config", a->configFile,
                  "JSON file of CACHE_* settings (or CACHE_CONFIG), without --server: with "
                  "CACHE_S3_BUCKET the bucket's entries are invalidated too");
  cmd->add_option("--set", a->sets, "NAME=VALUE for any CACHE_* setting (repeatable)");
  cmd->callback([a, &exitCode] { exitCode = runInvalidate(*a); });
}

void addVerifyCommand(CLI::App& app, int& exitCode) {
  auto dir = std::make_shared<std::string>("./.llmcache");
  auto repair = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "verify",
      "Check the index and the disk tier of a cache directory (stop the gateway first to repair)");
  cmd->add_option("--cache-dir", *dir,
                  "The cache directory (CACHE_ENCRYPTION* and CACHE_COMPRESSION are read from the "
                  "environment)")
      ->capture_default_str();
  cmd->add_flag("--repair", *repair,
                "Rebuild the index from the disk tier and remove corrupt files");
  cmd->callback([dir, repair, &exitCode] { exitCode = runVerify(*dir, *repair); });
}

void addS3PurgeCommand(CLI::App& app, int& exitCode) {
  struct Args {
    std::string configFile;
    std::vector<std::string> sets;
    std::string olderThan = "7d";
    size_t limit = 100000;
    bool dryRun = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "s3-purge",
      "Delete the S3 objects of entries marked invalid at least --older-than ago (the bucket of "
      "CACHE_S3_BUCKET)");
  cmd->add_option("--older-than", a->olderThan, "Marked at least this long ago (7d, 90m, 0s)")
      ->capture_default_str();
  cmd->add_option("--limit", a->limit, "At most this many marked entries")->capture_default_str();
  cmd->add_flag("--dry-run", a->dryRun, "Only count what would be deleted");
  cmd->add_option("--config", a->configFile, "JSON file of CACHE_* settings (or CACHE_CONFIG)");
  cmd->add_option("--set", a->sets, "NAME=VALUE for any CACHE_* setting (repeatable)");
  cmd->callback([a, &exitCode] {
    config::Config c;
    try {
      c = loadConfig(a->configFile, a->sets);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "llmcache s3-purge: configuration error: %s\n", e.what());
      exitCode = 2;
      return;
    }
    auto age = invalidation::parseDuration(a->olderThan);
    if (!age) {
      std::fprintf(stderr, "llmcache s3-purge: --older-than: %s\n", age.error().message.c_str());
      exitCode = 2;
      return;
    }
    if (c.s3Bucket.empty()) {
      std::fprintf(stderr, "llmcache s3-purge: no bucket (set CACHE_S3_BUCKET)\n");
      exitCode = 2;
      return;
    }
    cache::s3::S3Client client(app::s3ClientOptions(c));
    cache::s3::S3Tier tier(client,
                           {.prefix = c.s3Prefix, .instanceId = "s3-purge", .writeIndex = false});
    auto out = tier.purgeInvalid(*age, a->limit, a->dryRun);
    if (!out) {
      std::fprintf(stderr, "llmcache s3-purge: %s\n", out.error().message.c_str());
      exitCode = 1;
      return;
    }
    std::printf("s3-purge: %zu marked entries read, %zu %s, %zu marked less than %s ago (kept)\n",
                out->records, out->purged, a->dryRun ? "would be deleted" : "deleted", out->younger,
                a->olderThan.c_str());
    exitCode = 0;
  });
}

}  // namespace llmcache::cli
