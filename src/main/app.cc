#include "main/app.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "admin/admin_api.h"
#include "alerts/alerter.h"
#include "analytics/analytics.h"
#include "analytics/fleet_counters.h"
#include "analytics/metrics.h"
#include "analytics/near_miss.h"
#include "analytics/recorder.h"
#include "cache/cassette/cassette_tier.h"
#include "cache/disk/disk_tier.h"
#include "cache/eviction.h"
#include "cache/memory/memory_tier.h"
#include "cache/redis/redis_client.h"
#include "cache/redis/redis_fleet.h"
#include "cache/redis/redis_tier.h"
#include "cache/s3/s3_client.h"
#include "cache/s3/s3_key_directory.h"
#include "cache/s3/s3_outbox.h"
#include "cache/s3/s3_tier.h"
#include "cache/tiered_cache.h"
#include "common/json.h"
#include "common/log.h"
#include "common/periodic.h"
#include "gateway/gateway.h"
#include "index/disk_scan.h"
#include "index/index.h"
#include "index/tier_observer.h"
#include "invalidation/invalidator.h"
#include "invalidation/request.h"
#include "invalidation/s3_broadcast.h"
#include "semantic/index_observer.h"
#include "semantic/vector_index.h"
#include "sizing/shards.h"
#include "upstream/http_client.h"
#include "upstream/platform.h"
#include "upstream/pricing.h"

namespace llmcache::app {

namespace {
using std::chrono::seconds;

// CACHE_DISK_SYNC=interval: one syncfs(2) of the file system that holds CACHE_DIR (the disk
// tier's files and the outbox's journal, written without fsync). A failure is logged; the files
// then reach the disk by the kernel's writeback, as with CACHE_DISK_SYNC=never.
// At most one line a minute (out of descriptors, it would fail every second); plain stderr, as
// the shutdown messages, so that it needs nothing that could fail alongside it.
void syncFileSystem(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool ok = fd >= 0 && ::syncfs(fd) == 0;
  const int err = errno;
  if (fd >= 0) ::close(fd);
  if (ok) return;
  static std::atomic<int64_t> lastWarned{std::numeric_limits<int64_t>::min() / 2};
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t last = lastWarned.load();
  if (now - last < 60 || !lastWarned.compare_exchange_strong(last, now)) return;
  std::fprintf(stderr, "llmcache: CACHE_DISK_SYNC=interval: syncfs of %s failed: %s\n", dir.c_str(),
               std::strerror(err));
}

upstream::PlatformTable loadPlatforms(const config::Config& c) {
  if (c.platforms.empty()) return {};
  auto parsed = upstream::parsePlatforms(c.platforms);
  if (!parsed) throw StartupError("CACHE_PLATFORMS: " + parsed.error().message, 2);
  return std::move(*parsed);
}

upstream::PricingTable loadPricing(const config::Config& c) {
  if (c.pricingFile.empty()) return upstream::PricingTable::builtin();
  auto loaded = upstream::PricingTable::loadFile(c.pricingFile);
  if (!loaded) throw StartupError("CACHE_PRICING_FILE: " + loaded.error().message, 2);
  return std::move(*loaded);
}

// One codec for every stored body: disk files, S3 objects, the S3 outbox journal.
cache::CodecOptions loadCodec(const config::Config& c) {
  cache::CodecOptions codec{.compress = c.compression};
  if (c.encryption) {
    try {
      codec.key = config::encryptionKeyBytes(c);  // validated; the key file may have gone since
    } catch (const std::exception& e) {
      throw StartupError(std::string("configuration error: ") + e.what(), 2);
    }
  }
  return codec;
}

// The index beside the disk tier. A damaged index is rebuilt from the disk tier's files.
std::unique_ptr<index::Index> openIndex(const config::Config& c, const cache::CodecOptions& codec) {
  const auto path = index::Index::defaultPath(c.cacheDir);
  const index::IndexOptions options{.backgroundCheckpoints = true};
  auto opened = index::Index::open(path, options);
  if (!opened && opened.error().code == Errc::Corrupt) {
    std::fprintf(stderr, "llmcache: the index is damaged (%s); rebuilding it from the disk tier\n",
                 opened.error().message.c_str());
    (void)index::Index::removeFiles(path);
    opened = index::Index::open(path, options);
    if (opened) {
      auto report = index::rebuildFromDiskTier(**opened, c.cacheDir, codec);
      if (report) std::fprintf(stderr, "llmcache: index rebuilt: %zu entries\n", report->entries);
    }
  }
  if (!opened)
    throw StartupError("cannot open the index " + path.string() + ": " + opened.error().message, 2);
  return std::move(*opened);
}
// An invalidation another gateway published on Redis, applied here as S3InvalidationBroadcast
// applies a record: a relative age resolved against its issue time, the bucket not searched
// again (the issuer did), copies stored before it condemned.
void applyFleetInvalidation(invalidation::Invalidator& invalidator, const Json& body,
                            TimePoint created) {
  Json resolved = body;
  if (auto age = body.getString("older_than"))
    if (auto d = invalidation::parseDuration(*age))
      resolved.set("older_than", Json::string(formatIso8601(created - *d)));
  auto parsed = invalidation::parseRequest(resolved);
  if (!parsed) {
    spdlog::warn("redis: an invalidation from another gateway is not valid: {}",
                 parsed.error().message);
    return;
  }
  parsed->issuedAt = created;
  parsed->searchShared = false;
  if (auto r = invalidator.apply(*parsed); !r)
    spdlog::warn("redis: applying another gateway's invalidation failed: {}", r.error().message);
}
}  // namespace

namespace {
// The connection limit under the process's descriptor limit: the soft RLIMIT_NOFILE is raised
// to the hard one first, then CACHE_MAX_CONNECTIONS (0: automatic) is fitted below it with a
// reserve for files, SQLite, upstream and S3 connections (http::connectionLimit).
uint64_t fitConnectionsToDescriptors(uint64_t configured) {
  const uint64_t descriptors = http::raiseDescriptorLimit();
  const http::ConnectionLimit limit = http::connectionLimit(configured, descriptors);
  if (limit.clamped)
    std::fprintf(stderr,
                 "llmcache: warning: CACHE_MAX_CONNECTIONS=%llu is more than %llu file "
                 "descriptors allow; using %llu (raise the limit: ulimit -n, LimitNOFILE=)\n",
                 static_cast<unsigned long long>(configured),
                 static_cast<unsigned long long>(descriptors),
                 static_cast<unsigned long long>(limit.connections));
  return limit.connections;
}
}  // namespace

cache::s3::S3ClientOptions s3ClientOptions(const config::Config& c) {
  cache::s3::S3ClientOptions so;
  so.endpoint = c.s3Endpoint;
  so.region = c.s3Region;
  so.bucket = c.s3Bucket;
  if (c.s3Addressing != "auto") so.pathStyle = c.s3Addressing == "path";
  so.credentials = cache::s3::S3Credentials::fromEnvironment();
  so.requestTimeout = std::chrono::seconds(c.s3TimeoutSeconds);
  return so;
}

http::ServerOptions serverOptions(const config::Config& c) {
  http::ServerOptions o;
  auto [host, port] = c.listenEndpoint();
  o.host = host;
  o.port = port;
  o.threads = c.threads;
  o.maxBodyBytes = c.maxBodyBytes;
  o.maxBodyBytesInFlight = c.maxBodyBytesInFlight;
  o.maxHeaderBytes = static_cast<uint32_t>(c.maxHeaderBytes);
  o.maxConnections = fitConnectionsToDescriptors(c.maxConnections);
  o.readTimeout = seconds(c.readTimeoutSeconds);
  o.idleTimeout = seconds(c.idleTimeoutSeconds);
  o.shutdownGrace = seconds(c.shutdownGraceSeconds);
  return o;
}

void runUntilSignalled(http::Server& server, const std::string& what) {
  http::net::signal_set signals(server.context(), SIGINT, SIGTERM);
  signals.async_wait([&server](boost::system::error_code ec, int) {
    if (!ec) server.stop();
  });
  std::printf("%s listening on http://127.0.0.1:%u\n", what.c_str(), server.port());
  std::fflush(stdout);
  server.run();
}

// The semantic index's files: beside the disk tier's.
std::filesystem::path semanticDir(const config::Config& c) {
  return std::filesystem::path(c.cacheDir) / "semantic";
}

// Declared in construction order; shutdown() takes them down in its own, explicit order.
struct App::Parts {
  config::Config config;
  upstream::PlatformTable platforms;
  upstream::PricingTable pricing;
  cache::CodecOptions codec;
  // Tiers.
  std::unique_ptr<cache::MemoryTier> memory;
  std::unique_ptr<cache::DiskTier> disk;
  std::unique_ptr<cache::CassetteTier> cassette;  // the record and replay modes' only store
  // This gateway's figures for the fleet statistics (all tiers, by model and platform), which the
  // S3 tier publishes every CACHE_METRICS_INTERVAL (declared before the tier that reads it, so it
  // outlives it).
  std::unique_ptr<analytics::FleetCounters> fleet = std::make_unique<analytics::FleetCounters>();
  std::unique_ptr<cache::s3::S3Client> s3Client;
  std::unique_ptr<cache::s3::S3Tier> s3Tier;
  std::unique_ptr<cache::s3::S3Outbox> s3Outbox;
  std::unique_ptr<cache::s3::S3KeyDirectory> s3Directory;
  // Applies the invalidations other gateways publish on Redis (SQLite and tier erases). Declared
  // before the fleet, whose subscriber posts to it: it outlives the fleet on any path.
  std::unique_ptr<boost::asio::thread_pool> fleetApplier;
  std::unique_ptr<cache::redis::RedisClient> redisClient;
  std::unique_ptr<cache::redis::RedisTier> redisTier;
  std::unique_ptr<cache::redis::RedisFleet> redisFleet;
  // The cache service and who hears of it.
  std::unique_ptr<index::Index> index;
  // The semantic cache's vectors (docs/semantic.md): with config.semanticOn() only. Before the
  // cache, which tells the observer of erases and evictions.
  std::unique_ptr<semantic::VectorIndex> semanticIndex;
  std::unique_ptr<semantic::IndexObserver> semanticObserver;
  std::unique_ptr<cache::TieredCache> cache;
  std::unique_ptr<index::IndexObserver> indexObserver;
  std::unique_ptr<analytics::Metrics> metrics;
  std::unique_ptr<invalidation::Invalidator> invalidator;
  // Analytics and administration.
  std::unique_ptr<analytics::EventRecorder> recorder;
  std::unique_ptr<analytics::Analytics> analytics;
  std::unique_ptr<analytics::NearMissPatterns> nearMisses;
  std::unique_ptr<sizing::MissRatioEstimator> sizing;  // CACHE_SIZING (docs/sizing.md)
  std::unique_ptr<admin::AdminApi> admin;
  std::unique_ptr<invalidation::S3InvalidationBroadcast> broadcast;
  std::unique_ptr<alerts::Alerter> alerter;
  // Requests.
  std::unique_ptr<upstream::Client> client;
  std::unique_ptr<gateway::Gateway> gateway;
  std::unique_ptr<http::Server> server;
  // Background loops (docs/architecture.md, Threads).
  std::vector<std::unique_ptr<PeriodicTask>> tasks;

  bool semanticRebuild = false;  // no index files at start
  std::atomic<bool> stopping{false};

  void rebuildSemanticIndex() {
    if (!semanticRebuild) return;
    semanticRebuild = false;
    size_t added = 0, seen = 0;
    index::Filter filter{.limit = index::kMaxPageSize};
    while (!stopping.load()) {
      auto page = index->list(filter);
      if (!page) break;
      std::vector<cache::EntryPtr> batch;
      for (const index::Row& row : page->rows) {
        if (row.invalid) continue;
        if (auto found = disk->peek(row.cacheKey); found && *found) batch.push_back(**found);
      }
      seen += batch.size();
      added += gateway->indexStoredEntries(batch, stopping);
      if (!page->nextCursor) break;
      filter.cursor = *page->nextCursor;
    }
    if (seen > 0)
      spdlog::info("semantic index: rebuilt {} vectors from {} stored entries", added, seen);
  }

  void saveSemanticIndex() {
    if (!semanticIndex) return;
    if (auto saved = semanticIndex->save(semanticDir(config)); !saved)
      spdlog::warn("{}", saved.error().message);
    saveSemanticShadow();
  }

  // The shadow figures beside the index (docs/semantic.md): written whole to a temp file,
  // renamed. At shutdown before the gateway goes.
  void saveSemanticShadow() {
    std::optional<Json> shadow = gateway ? gateway->semanticShadowState() : std::nullopt;
    if (!shadow) return;
    const std::filesystem::path path = semanticDir(config) / "shadow.json";
    const std::filesystem::path tmp = path.string() + ".tmp";
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << toJson(*shadow);
      if (!out.flush()) ec = std::make_error_code(std::errc::io_error);
    }
    if (!ec) std::filesystem::rename(tmp, path, ec);
    if (ec)
      spdlog::warn("semantic shadow figures: cannot write {}: {}", path.string(), ec.message());
  }

  // The shadow figures of the previous run, if it left them (a missing file: none yet).
  void loadSemanticShadow() {
    const std::filesystem::path path = semanticDir(config) / "shadow.json";
    std::ifstream in(path);
    if (!in) return;
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = parseJson(text.str());
    Result<void> restored =
        parsed ? gateway->restoreSemanticShadow(*parsed) : Result<void>(parsed.error());
    if (!restored)
      spdlog::warn("{}: {}; the shadow figures start again", path.string(),
                   restored.error().message);
  }

  void refreshGauges() {
    metrics->setTier("memory", {memory->entryCount(), memory->byteCount(), memory->evictions()});
    metrics->setTier("disk", {disk->entryCount(), disk->byteCount(), disk->evictions()});
    if (s3Outbox) metrics->setOutboxPending(s3Outbox->pending());
    const cache::WriterBacklog w = cache->writerBacklog();
    metrics->setWriterBacklog(w.tasks, w.bytes, w.skippedPromotions);
    if (redisClient && redisFleet) {
      const cache::redis::RedisClientStats rc = redisClient->stats();
      const cache::redis::RedisFleetStats rf = redisFleet->stats();
      metrics->setRedis(analytics::RedisGauges{.up = rc.up,
                                               .subscribed = redisFleet->subscribed(),
                                               .commands = rc.commands,
                                               .failures = rc.failures,
                                               .rejected = rc.rejected,
                                               .connects = rc.connects,
                                               .written = rf.written,
                                               .writeErrors = rf.writeErrors,
                                               .dropped = rf.dropped,
                                               .published = rf.published,
                                               .received = rf.received,
                                               .subscriptions = rf.subscribed,
                                               .leasesTaken = rf.leasesTaken,
                                               .leasesFound = rf.leasesFound});
    }
    if (sizing) {
      const sizing::SizingReport r = sizing->report(Clock::system().now());
      std::vector<analytics::SizingGauge> points;
      for (const sizing::TierCurve& t : r.tiers)
        for (const sizing::CurvePoint& pt : t.points)
          points.push_back({.tier = t.bounds.name,
                            .scale = pt.scale,
                            .bytes = pt.bytes,
                            .hitRate = pt.hitRate,
                            .costSavedPerDay =
                                r.windowSeconds >= 1
                                    ? std::optional<double>(pt.costSaved * 86400 / r.windowSeconds)
                                    : std::nullopt});
      metrics->setSizing(std::move(points));
    }
  }
};

App::App(config::Config config) : parts_(std::make_unique<Parts>()) {
  setUpLogging();
  Parts& p = *parts_;
  p.config = std::move(config);
  const config::Config& c = p.config;
  p.platforms = loadPlatforms(c);
  p.pricing = loadPricing(c);
  p.codec = loadCodec(c);

  p.memory = std::make_unique<cache::MemoryTier>(
      cache::MemoryTierOptions{.maxEntries = c.memoryEntries,
                               .maxBytes = c.memoryBytes,
                               .policy = *cache::parsePolicy(c.memoryPolicy)});  // validated
  try {
    p.disk = std::make_unique<cache::DiskTier>(cache::DiskTierOptions{
        .dir = c.cacheDir,
        .maxEntries = c.diskEntries,
        .maxBytes = c.diskBytes,
        .codec = p.codec,
        .policy = *cache::parsePolicy(c.diskPolicy),  // validated
        // Serve at once however many files there are; they are counted in the background.
        .scanInBackground = true,
        .syncEachWrite = c.diskSync == "always"});
  } catch (const std::exception& e) {
    throw StartupError("cannot use CACHE_DIR " + c.cacheDir + ": " + e.what(), 2);
  }

  // Tenant ids are keyed hashes of the credential: without CACHE_SCOPE_SECRET, a secret made
  // at the first start and kept beside the cache (gateways sharing an S3 bucket must share one
  // secret to share entries: set CACHE_SCOPE_SECRET for them).
  if (p.config.scopeSecret.empty()) {
    try {
      p.config.scopeSecret =
          config::loadOrCreateSecretFile((std::filesystem::path(c.cacheDir) / "scope-secret"));
    } catch (const std::exception& e) {
      throw StartupError(std::string("configuration error: ") + e.what(), 2);
    }
  }

  // The S3 tier: on when a bucket is set. S3 being down at start-up is not fatal: the gateway
  // serves from memory, disk and the upstream, and the outbox keeps the writes.
  if (!c.s3Bucket.empty()) {
    try {
      p.s3Client = std::make_unique<cache::s3::S3Client>(s3ClientOptions(c));
      cache::s3::S3TierOptions to;
      to.prefix = c.s3Prefix;
      to.codec = p.codec;
      to.instanceId = cache::s3::loadOrCreateInstanceId(c.cacheDir);
      to.writeJournal = c.s3JournalPollMs > 0;
      // Fleet statistics (issue 16): this gateway's counters and the index views every
      // CACHE_METRICS_INTERVAL, and the hit counts of stored entries in the same batches.
      to.metricsInterval = seconds(std::max(1, c.metricsIntervalSeconds));
      to.indexFlushInterval = to.metricsInterval;
      to.instanceFigures = [fleet = p.fleet.get()] { return fleet->snapshot(); };
      // Long past any reader's window (below): a marker is deleted only once no poll lists it.
      to.journalRetention = std::max<std::chrono::milliseconds>(
          std::chrono::minutes(10), seconds(8 * std::max(30, 2 * c.s3TimeoutSeconds + 10)));
      p.s3Tier = std::make_unique<cache::s3::S3Tier>(*p.s3Client, to);
      if (c.asyncWrites) {
        cache::s3::S3OutboxOptions oo;
        oo.dir = std::filesystem::path(c.cacheDir) / "s3-outbox";
        oo.codec = to.codec;
        oo.retryMax = seconds(std::max(1, c.s3OutboxRetryMaxSeconds));
        oo.syncEachWrite = c.diskSync == "always";
        p.s3Outbox = std::make_unique<cache::s3::S3Outbox>(*p.s3Tier, oo);
      }
      // The journal's window: a marker's upload may take one CACHE_S3_TIMEOUT; the rest covers
      // clock differences between gateways (docs/s3-layout.md, The key directory).
      p.s3Directory = std::make_unique<cache::s3::S3KeyDirectory>(
          *p.s3Client, p.s3Tier->layout(), seconds(c.s3DirectoryRefreshSeconds),
          cache::s3::S3KeyJournalOptions{
              .poll = std::chrono::milliseconds(c.s3JournalPollMs),
              .window = seconds(std::max(30, 2 * c.s3TimeoutSeconds + 10))});
    } catch (const std::exception& e) {
      throw StartupError(std::string("cannot set up the S3 tier: ") + e.what(), 2);
    }
  }

  // The record and replay modes (docs/record-replay.md): the cassette folder is the only store,
  // nothing expires, and the tenant is not the credential (the recording was paid with a real
  // key, the replay runs with none): CACHE_SCOPE=api_key acts as global; header:NAME still
  // separates tenants.
  if (c.cassetteMode()) {
    try {
      p.cassette = std::make_unique<cache::CassetteTier>(cache::CassetteTierOptions{
          .dir = c.cassetteDir, .trackUse = c.mode == "replay" || c.mode == "replay-or-record"});
    } catch (const std::exception& e) {
      throw StartupError("cannot use CACHE_CASSETTE_DIR " + c.cassetteDir + ": " + e.what(), 2);
    }
    if (p.config.scope == "api_key" || p.config.scope == "api-key") p.config.scope = "global";
    p.config.ttlSeconds = 0;
    p.config.modelTtls.clear();
    p.config.ttlMaxSeconds = 0;
  }

  // The Redis tier and the fleet's channel: on when CACHE_REDIS_URL is set. Redis being down at
  // start-up is not fatal either: the tier fails fast (its circuit is open) and is used once
  // Redis answers.
  if (!c.redisUrl.empty()) {
    auto url = cache::redis::parseRedisUrl(c.redisUrl);
    if (!url) throw StartupError("configuration error: " + url.error().message, 2);
    const std::string prefix = url->prefix.value_or(c.redisPrefix);
    if (!c.redisCaFile.empty()) {
      if (!url->tls)
        throw StartupError("configuration error: CACHE_REDIS_CA_FILE is for TLS: use rediss://", 2);
      if (url->caFile.empty()) url->caFile = c.redisCaFile;
    }
    const auto timeout = std::chrono::milliseconds(c.redisTimeoutMs);
    p.redisClient = std::make_unique<cache::redis::RedisClient>(cache::redis::RedisClientOptions{
        .url = *url, .connectTimeout = timeout, .commandTimeout = timeout});
    // An unreadable CA file is a configuration error; an unreachable Redis is not (above).
    if (auto ready = p.redisClient->ready(); !ready)
      throw StartupError("configuration error: " + ready.error().message, 2);
    p.redisTier = std::make_unique<cache::redis::RedisTier>(
        *p.redisClient, cache::redis::RedisTierOptions{.prefix = prefix, .codec = p.codec});
    p.fleetApplier = std::make_unique<boost::asio::thread_pool>(1);
    cache::redis::RedisFleetHandlers handlers{
        .onStored =
            [&p](std::string_view key) {
              if (p.s3Directory) p.s3Directory->add(key);
            },
        .onInvalidation =
            [&p](const Json& request, TimePoint created) {
              boost::asio::post(*p.fleetApplier, [&p, request, created] {
                if (p.invalidator) applyFleetInvalidation(*p.invalidator, request, created);
              });
            }};
    p.redisFleet = std::make_unique<cache::redis::RedisFleet>(
        *p.redisClient, *p.redisTier,
        cache::redis::RedisFleetOptions{
            .prefix = prefix,
            .instanceId = p.s3Tier ? p.s3Tier->options().instanceId
                                   : cache::s3::loadOrCreateInstanceId(c.cacheDir),
            .leaseTtl = std::chrono::milliseconds(c.redisLeaseMs),
            .maxWait = seconds(c.redisLeaseWaitSeconds)},
        std::move(handlers));
  }

  p.index = openIndex(c, p.codec);
  cache::TieredCacheOptions co{.fast = {p.memory.get(), p.disk.get()}};
  if (p.cassette) co.fast = {p.cassette.get()};
  // Slow tiers in order: Redis (every key: a GET is sub-millisecond), then S3 (its directory's).
  if (p.redisTier)
    co.slow.push_back(
        {.tier = p.redisTier.get(), .filter = nullptr, .queue = p.redisFleet.get(), .eager = true});
  if (p.s3Tier)
    co.slow.push_back(
        {.tier = p.s3Tier.get(), .filter = p.s3Directory.get(), .queue = p.s3Outbox.get()});
  p.cache = std::make_unique<cache::TieredCache>(std::move(co));
  p.indexObserver = std::make_unique<index::IndexObserver>(*p.index);
  p.metrics = std::make_unique<analytics::Metrics>();
  p.cache->addObserver(p.indexObserver.get());
  p.cache->addObserver(p.metrics.get());
  if (c.semanticOn()) {
    p.semanticIndex = std::make_unique<semantic::VectorIndex>(
        semantic::IndexOptions{.efSearch = static_cast<size_t>(c.semanticEf)});
    const std::filesystem::path dir = semanticDir(c);
    if (auto loaded = p.semanticIndex->load(dir); !loaded) {
      if (loaded.error().code != Errc::NotFound)
        spdlog::warn("{}: rebuilding the semantic index", loaded.error().message);
      p.semanticRebuild = true;
    } else {
      spdlog::info("semantic index: {} vectors in {} partitions loaded from {}",
                   p.semanticIndex->size(), p.semanticIndex->partitions(), dir.string());
    }
    p.semanticObserver =
        std::make_unique<semantic::IndexObserver>(*p.semanticIndex, cache::TierId::Disk);
    p.cache->addObserver(p.semanticObserver.get());
  }
  // Hits in every tier bring the stored entries' hit_count / last_accessed up to date in S3.
  if (p.s3Tier) p.cache->addObserver(p.s3Tier.get());
  p.invalidator = std::make_unique<invalidation::Invalidator>(*p.index, *p.cache, Clock::system());
  p.cache->setGuard(p.invalidator.get());
  // Invalidations reach every gateway's entries in the bucket, not only this index's rows.
  if (p.s3Tier) p.invalidator->setSharedTier(p.s3Tier.get());

  // Analytics: events queued and written in batches by an idle-priority writer (see
  // RecorderOptions), the figures of /cache/analytics and /cache/patterns.
  p.recorder = std::make_unique<analytics::EventRecorder>(
      *p.index, analytics::RecorderOptions{.idleWhenCaughtUp = true});
  p.analytics = std::make_unique<analytics::Analytics>(
      *p.index, p.recorder.get(),
      analytics::AnalyticsOptions{.syncStores = [&p] { (void)p.cache->sync(); }});
  p.admin = std::make_unique<admin::AdminApi>(*p.index, *p.invalidator, c, p.analytics.get());
  p.nearMisses = std::make_unique<analytics::NearMissPatterns>();
  p.admin->setNearMisses(p.nearMisses.get());
  // The miss-ratio curves of the local tiers: memory against its bounds, disk as memory and disk
  // together against the disk's (every entry is written to both; docs/sizing.md).
  if (c.sizing && !c.cassetteMode()) {
    p.sizing = std::make_unique<sizing::MissRatioEstimator>(
        sizing::SizingOptions{.rate = c.sizingRate,
                              .maxKeys = c.sizingMaxKeys,
                              .tiers = {{"memory", c.memoryEntries, c.memoryBytes},
                                        {"disk", c.diskEntries, c.diskBytes}}});
    p.admin->setSizingSource(
        [&p] { return sizing::reportToJson(p.sizing->report(Clock::system().now())); });
  }
  if (p.s3Tier)
    p.admin->setFleetSource([tier = p.s3Tier.get()]() -> Result<Json> {
      auto merged = tier->globalStatistics();
      if (!merged) return merged.error();
      return *merged->find("statistics");
    });
  if (p.s3Client)
    p.broadcast = std::make_unique<invalidation::S3InvalidationBroadcast>(
        *p.s3Client, cache::s3::normalizePrefix(c.s3Prefix), p.s3Tier->options().instanceId,
        *p.invalidator, std::filesystem::path(c.cacheDir) / "invalidations-seen",
        seconds(c.invalidationPollSeconds), Clock::system());

  p.client = std::make_unique<upstream::Client>();
  gateway::GatewayDeps deps{c, *p.cache, *p.client, p.platforms, p.pricing};
  deps.admin = p.admin.get();
  deps.recorder = p.recorder.get();
  deps.metrics = p.metrics.get();
  deps.fleetCounters = p.fleet.get();
  deps.refreshGauges = [&p] { p.refreshGauges(); };
  deps.broadcast = p.broadcast.get();
  deps.nearMisses = p.nearMisses.get();
  deps.sizing = p.sizing.get();
  deps.entryBytes = [](const cache::Entry& e) -> uint64_t {
    return cache::MemoryTier::chargedBytes(e);
  };
  deps.explainCandidates = [&p](std::string_view tenant, std::string_view endpoint) {
    std::vector<cache::EntryPtr> out;
    if (p.cassette) {
      for (auto& f : p.cassette->files())
        if (f.entry && f.entry->tenant == tenant && f.entry->endpoint == endpoint)
          out.push_back(std::make_shared<const cache::Entry>(std::move(*f.entry)));
      return out;
    }
    // The tenant's newest entries of the endpoint, read from the disk tier (which keeps the
    // request text; the memory tier does not).
    auto page = p.index->list({.tenant = std::string(tenant), .limit = index::kMaxPageSize});
    if (!page) return out;
    for (const index::Row& row : page->rows) {
      if (row.endpoint != endpoint || row.invalid) continue;
      if (auto found = p.disk->peek(row.cacheKey); found && *found) out.push_back(**found);
      if (out.size() >= 200) break;
    }
    return out;
  };
  deps.fleet = p.redisFleet.get();
  deps.semanticIndex = p.semanticIndex.get();
  if (p.semanticIndex && p.disk)
    deps.peekStored = [&p](std::string_view key) -> cache::EntryPtr {
      auto found = p.disk->peek(key);
      return found && *found ? **found : nullptr;
    };
  try {
    p.gateway = std::make_unique<gateway::Gateway>(deps);
  } catch (const config::ConfigError& e) {
    throw StartupError(e.what(), 2);
  }
  gateway::Gateway& gw = *p.gateway;
  p.admin->setExplainer([&gw](std::string_view key) { return gw.explainRecentMiss(key); });
  if (p.semanticIndex) {
    p.admin->setSemanticSource([&gw] { return gw.semanticReport(); });
    p.loadSemanticShadow();
  }
  try {
    p.server = std::make_unique<http::Server>(
        serverOptions(c),
        [&gw](http::Request& r, http::ResponseWriter& w) { return gw.handle(r, w); },
        [&gw](http::bhttp::status s, std::string m, std::string_view t) {
          return gw.errorResponse(s, std::move(m), t);
        });
  } catch (const std::exception& e) {
    throw StartupError("cannot listen on " + c.listen + ": " + e.what(), 1);
  }

  // Background loops. Expired entries are misses at once (TieredCache checks expires_at); the
  // purger removes them from the tiers and the index.
  p.tasks.push_back(std::make_unique<PeriodicTask>(
      PeriodicOptions{.name = "purger", .interval = seconds(30), .lowPriority = false},
      [&p] { (void)p.invalidator->purgeExpired(10000); }));
  // The S3 index (by-date segments, cache_index.json, statistics.json) is also written when only
  // lookups changed the statistics (an instance that reads more than it writes).
  if (p.s3Tier)
    p.tasks.push_back(std::make_unique<PeriodicTask>(
        PeriodicOptions{.name = "s3-index",
                        .interval = std::min<std::chrono::seconds>(
                            seconds(10), seconds(std::max(1, c.metricsIntervalSeconds)))},
        [&p] {
          (void)p.s3Tier->flushIndexIfDue();
          (void)p.s3Tier->pruneJournal();
        }));
  // CACHE_DISK_SYNC=interval: the disk tier and the outbox write without fsync; their files
  // reach the disk here, at most CACHE_DISK_SYNC_INTERVAL_MS after their write.
  if (c.diskSync == "interval")
    p.tasks.push_back(std::make_unique<PeriodicTask>(
        PeriodicOptions{.name = "disk-sync",
                        .interval = std::chrono::milliseconds(c.diskSyncIntervalMs)},
        [dir = c.cacheDir] { syncFileSystem(dir); }));
  // No index files but entries on disk (a first start with semantic on, files lost): their
  // vectors are rebuilt in the background, the newest entries first.
  if (p.semanticIndex && p.semanticRebuild)
    p.tasks.push_back(std::make_unique<PeriodicTask>(
        PeriodicOptions{
            .name = "semantic-build", .interval = std::chrono::hours(24 * 365), .runAtStart = true},
        [&p] { p.rebuildSemanticIndex(); }));
  // The semantic index's files, so that a restart (or a crash) loses at most this interval.
  if (p.semanticIndex)
    p.tasks.push_back(std::make_unique<PeriodicTask>(
        PeriodicOptions{.name = "semantic-save", .interval = seconds(c.semanticSaveSeconds)},
        [&p] { p.saveSemanticIndex(); }));
  const auto metricsInterval = seconds(std::max(1, c.metricsIntervalSeconds));
  p.refreshGauges();
  p.tasks.push_back(std::make_unique<PeriodicTask>(
      PeriodicOptions{.name = "gauges", .interval = metricsInterval, .lowPriority = false},
      [&p] { p.refreshGauges(); }));
  // E-mail alerts (CACHE_ALERT_EMAIL), on their own thread: a send may block for seconds.
  if (!c.alertEmail.empty()) {
    p.alerter = std::make_unique<alerts::Alerter>(
        alerts::AlerterOptions::fromConfig(c, c.listen),
        [url = c.smtpUrl](const alerts::Mail& m) { return alerts::sendSmtp(url, m); },
        Clock::system());
    p.tasks.push_back(std::make_unique<PeriodicTask>(
        PeriodicOptions{.name = "alerts", .interval = metricsInterval, .runAtStart = true},
        [&p, failed = uint64_t{0}]() mutable {
          const analytics::MetricsTotals t = p.metrics->totals();
          alerts::Snapshot snap;
          snap.requests = t.cacheable;
          snap.hits = t.hits;
          snap.tierErrors = t.tierErrorsByName();
          snap.outboxPending = p.s3Outbox ? p.s3Outbox->pending() : 0;
          p.alerter->evaluate(snap);
          if (p.alerter->stats().failed > failed) {
            failed = p.alerter->stats().failed;
            spdlog::warn("alert mail failed: {}", p.alerter->stats().lastError);
          }
        }));
  }

  std::fprintf(
      stderr, "llmcache: upstream %s, cache in %s (memory %llu entries, disk %llu entries)%s%s\n",
      c.upstream.c_str(), c.cacheDir.c_str(), static_cast<unsigned long long>(c.memoryEntries),
      static_cast<unsigned long long>(c.diskEntries),
      p.s3Tier
          ? (", S3 bucket " + c.s3Bucket + (c.asyncWrites ? " (async writes)" : " (sync writes)"))
                .c_str()
          : "",
      c.enabled ? "" : ", caching DISABLED (pass-through)");
  if (p.redisClient)
    std::fprintf(stderr, "llmcache: Redis tier on %s%s (prefix %s)\n",
                 p.redisClient->options().url.display().c_str(),
                 p.redisClient->options().url.tls ? " over TLS" : "",
                 p.redisTier->entryKey("").c_str());
}

App::~App() { shutdown(); }

int App::run() {
  runUntilSignalled(*parts_->server, "llmcache");
  shutdown();
  std::fprintf(stderr, "llmcache: stopped\n");
  return 0;
}

void App::shutdown() {
  if (!parts_) return;
  Parts& p = *parts_;
  // 1. No new work: the background loops stop (each finishes its current run; a semantic
  //    rebuild at its next entry).
  p.stopping = true;
  p.tasks.clear();
  // 2. Admin requests still running finish (they erase tiers and write the index).
  if (p.gateway) p.gateway->flush();
  // 3. The upstream client goes before the server's I/O contexts: it completes every transfer
  //    still in flight (a call that outlived CACHE_SHUTDOWN_GRACE) with "cancelled", which rings
  //    its request's doorbell on a context that still exists but no longer runs.
  p.client.reset();
  // 4. The server: its contexts are destroyed with the requests suspended in them (their
  //    analytics events go to the recorder, still alive).
  p.server.reset();
  p.saveSemanticShadow();  // the requests are done; the index's files follow after the drain
  p.gateway.reset();
  // 5. Tier writes queued by the requests (disk, the index, the outbox's journal) finish.
  if (p.cache) {
    if (const size_t left = p.cache->drain(seconds(p.config.shutdownGraceSeconds)); left > 0)
      std::fprintf(stderr,
                   "llmcache: %zu cache writes abandoned at shutdown (not done within "
                   "CACHE_SHUTDOWN_GRACE); those entries are misses after the restart\n",
                   left);
  }
  // Redis: the queued writes (bounded), then no more messages; then the invalidations received.
  if (p.redisFleet) p.redisFleet->stop(seconds(p.config.shutdownGraceSeconds));
  if (p.fleetApplier) p.fleetApplier->join();
  // 6. S3: upload what we can within the grace period; the rest stays journaled for the next
  //    start. Then the S3 index files.
  if (p.s3Outbox) {
    if (!p.s3Outbox->drain(seconds(p.config.shutdownGraceSeconds)))
      std::fprintf(stderr, "llmcache: %llu S3 writes left in the outbox for the next start\n",
                   static_cast<unsigned long long>(p.s3Outbox->pending()));
    p.s3Outbox->stop();
  }
  if (p.s3Tier) (void)p.s3Tier->flushIndex();
  // What the disk tier and the outbox wrote without fsync since the last periodic sync.
  if (p.config.diskSync == "interval") syncFileSystem(p.config.cacheDir);
  // The semantic index, once the requests that add to it and the erases of the drain are done.
  p.saveSemanticIndex();
  if (p.recorder && p.recorder->dropped() > 0)
    std::fprintf(stderr, "llmcache: %llu analytics events dropped (the events queue was full)\n",
                 static_cast<unsigned long long>(p.recorder->dropped()));
  // 7. The rest, in reverse order of construction (the recorder flushes its queue, the index
  //    checkpoints).
  parts_.reset();
}

}  // namespace llmcache::app
