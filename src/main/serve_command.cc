#include "main/serve_command.h"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include "admin/admin_api.h"
#include "alerts/alerter.h"
#include "analytics/analytics.h"
#include "analytics/metrics.h"
#include "analytics/recorder.h"
#include "cache/disk/disk_tier.h"
#include "cache/memory/memory_tier.h"
#include "cache/s3/s3_client.h"
#include "cache/s3/s3_key_directory.h"
#include "cache/s3/s3_outbox.h"
#include "cache/s3/s3_tier.h"
#include "cache/tier_chain.h"
#include "common/thread.h"
#include "config/config.h"
#include "gateway/gateway.h"
#include "http/server.h"
#include "index/disk_scan.h"
#include "index/index.h"
#include "invalidation/invalidator.h"
#include "invalidation/s3_broadcast.h"
#include "mock/mock_upstream.h"
#include "upstream/http_client.h"
#include "upstream/platform.h"
#include "upstream/pricing.h"

namespace llmcache::cli {

namespace {

// Stops one of serve's background loops at scope exit: clears its flag under its mutex (so that
// the loop cannot miss the wake-up between checking the flag and sleeping), wakes it, joins it.
struct StopThread {
  std::atomic<bool>& flag;
  std::mutex& mutex;
  std::condition_variable& cv;
  std::thread& t;
  ~StopThread() {
    {
      std::lock_guard lock(mutex);
      flag = false;
    }
    cv.notify_all();
    if (t.joinable()) t.join();
  }
};

struct ServeArgs {
  std::string configFile;
  std::optional<std::string> listen, upstream, cacheDir;
  std::vector<std::string> sets;
  bool printConfig = false;
};

config::Config loadConfig(const ServeArgs& a) {
  config::Config c;
  std::string file = a.configFile;
  if (file.empty())
    if (const char* f = std::getenv("CACHE_CONFIG")) file = f;
  if (!file.empty()) config::applyFile(c, file);
  config::applyEnvironment(c, [](const char* n) { return std::getenv(n); });
  for (const std::string& kv : a.sets) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos)
      throw config::ConfigError("--set expects NAME=VALUE, got '" + kv + "'");
    config::setValue(c, kv.substr(0, eq), kv.substr(eq + 1));
  }
  if (a.listen) c.listen = *a.listen;
  if (a.upstream) c.upstream = *a.upstream;
  if (a.cacheDir) c.cacheDir = *a.cacheDir;
  config::validate(c);
  return c;
}

// Runs a server until SIGINT/SIGTERM, printing where it listens (tests read that line).
void runUntilSignalled(http::Server& server, const std::string& what) {
  http::net::signal_set signals(server.context(), SIGINT, SIGTERM);
  signals.async_wait([&server](boost::system::error_code ec, int) {
    if (!ec) server.stop();
  });
  std::printf("%s listening on http://127.0.0.1:%u\n", what.c_str(), server.port());
  std::fflush(stdout);
  server.run();
}

http::ServerOptions serverOptions(const config::Config& c) {
  http::ServerOptions o;
  auto [host, port] = c.listenEndpoint();
  o.host = host;
  o.port = port;
  o.threads = c.threads;
  o.maxBodyBytes = c.maxBodyBytes;
  o.maxHeaderBytes = static_cast<uint32_t>(c.maxHeaderBytes);
  o.maxConnections = c.maxConnections;
  o.readTimeout = std::chrono::seconds(c.readTimeoutSeconds);
  o.idleTimeout = std::chrono::seconds(c.idleTimeoutSeconds);
  o.shutdownGrace = std::chrono::seconds(c.shutdownGraceSeconds);
  return o;
}

int runServe(const ServeArgs& a) {
  config::Config c;
  try {
    c = loadConfig(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llmcache: configuration error: %s\n", e.what());
    return 2;
  }
  if (a.printConfig) {
    std::fputs(config::printConfig(c).c_str(), stdout);
    return 0;
  }
  upstream::PlatformTable platforms;
  if (!c.platforms.empty()) {
    auto parsed = upstream::parsePlatforms(c.platforms);
    if (!parsed) {
      std::fprintf(stderr, "llmcache: CACHE_PLATFORMS: %s\n", parsed.error().message.c_str());
      return 2;
    }
    platforms = std::move(*parsed);
  }
  upstream::PricingTable pricing = upstream::PricingTable::builtin();
  if (!c.pricingFile.empty()) {
    auto loaded = upstream::PricingTable::loadFile(c.pricingFile);
    if (!loaded) {
      std::fprintf(stderr, "llmcache: CACHE_PRICING_FILE: %s\n", loaded.error().message.c_str());
      return 2;
    }
    pricing = std::move(*loaded);
  }
  // One codec for every stored body: disk files, S3 objects, the S3 outbox journal.
  cache::CodecOptions codec{.compress = c.compression};
  if (c.encryption) {
    try {
      codec.key =
          config::encryptionKeyBytes(c);  // validated above; the key file may have gone since
    } catch (const std::exception& e) {
      std::fprintf(stderr, "llmcache: configuration error: %s\n", e.what());
      return 2;
    }
  }
  cache::MemoryTier memory(
      cache::MemoryTierOptions{.maxEntries = c.memoryEntries, .maxBytes = c.memoryBytes});
  std::unique_ptr<cache::DiskTier> disk;
  try {
    disk = std::make_unique<cache::DiskTier>(cache::DiskTierOptions{
        .dir = c.cacheDir,
        .maxEntries = c.diskEntries,
        .maxBytes = c.diskBytes,
        .codec = codec,
        // Serve at once however many files there are; they are counted in the background.
        .scanInBackground = true});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llmcache: cannot use CACHE_DIR %s: %s\n", c.cacheDir.c_str(), e.what());
    return 2;
  }
  cache::TierChain chain({&memory, disk.get()}, Clock::system());

  // The S3 tier: on when a bucket is set. S3 being down at start-up is not fatal: the gateway
  // serves from memory, disk and the upstream, and the outbox keeps the writes.
  std::unique_ptr<cache::s3::S3Client> s3Client;
  std::unique_ptr<cache::s3::S3Tier> s3Tier;
  std::unique_ptr<cache::s3::S3Outbox> s3Outbox;
  std::unique_ptr<cache::s3::S3KeyDirectory> s3Directory;
  if (!c.s3Bucket.empty()) {
    try {
      cache::s3::S3ClientOptions so;
      so.endpoint = c.s3Endpoint;
      so.region = c.s3Region;
      so.bucket = c.s3Bucket;
      if (c.s3Addressing != "auto") so.pathStyle = c.s3Addressing == "path";
      so.credentials = cache::s3::S3Credentials::fromEnvironment();
      so.requestTimeout = std::chrono::seconds(c.s3TimeoutSeconds);
      s3Client = std::make_unique<cache::s3::S3Client>(so);
      cache::s3::S3TierOptions to;
      to.prefix = c.s3Prefix;
      to.codec = codec;
      to.instanceId = cache::s3::loadOrCreateInstanceId(c.cacheDir);
      s3Tier = std::make_unique<cache::s3::S3Tier>(*s3Client, to);
      if (c.asyncWrites) {
        cache::s3::S3OutboxOptions oo;
        oo.dir = std::filesystem::path(c.cacheDir) / "s3-outbox";
        oo.codec = to.codec;
        oo.retryMax = std::chrono::seconds(std::max(1, c.s3OutboxRetryMaxSeconds));
        s3Outbox = std::make_unique<cache::s3::S3Outbox>(*s3Tier, oo);
      }
      s3Directory = std::make_unique<cache::s3::S3KeyDirectory>(
          *s3Client, s3Tier->layout(), std::chrono::seconds(c.s3DirectoryRefreshSeconds));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "llmcache: cannot set up the S3 tier: %s\n", e.what());
      return 2;
    }
  }
  // The index beside the disk tier. A damaged index is rebuilt from the disk tier's files.
  const auto indexPath = index::Index::defaultPath(c.cacheDir);
  const index::IndexOptions indexOptions{.backgroundCheckpoints = true};
  auto opened = index::Index::open(indexPath, indexOptions);
  if (!opened && opened.error().code == Errc::Corrupt) {
    std::fprintf(stderr, "llmcache: the index is damaged (%s); rebuilding it from the disk tier\n",
                 opened.error().message.c_str());
    (void)index::Index::removeFiles(indexPath);
    opened = index::Index::open(indexPath, indexOptions);
    if (opened) {
      auto report = index::rebuildFromDiskTier(**opened, c.cacheDir, codec);
      if (report) std::fprintf(stderr, "llmcache: index rebuilt: %zu entries\n", report->entries);
    }
  }
  if (!opened) {
    std::fprintf(stderr, "llmcache: cannot open the index %s: %s\n", indexPath.c_str(),
                 opened.error().message.c_str());
    return 2;
  }
  std::unique_ptr<index::Index> entryIndex = std::move(*opened);
  // Invalidation reaches every tier, S3 included (its erases run on the admin pool).
  std::vector<cache::CacheTier*> allTiers{&memory, disk.get()};
  if (s3Tier) allTiers.push_back(s3Tier.get());
  cache::TierChain everyTier(allTiers, Clock::system());
  invalidation::Invalidator invalidator(*entryIndex, everyTier, Clock::system());
  // Analytics: events queued and written in batches, the figures of /cache/analytics and
  // /cache/patterns, and the counters of /metrics.
  // The events writer takes idle CPU while it keeps up (bench/compare_nginx.sh: memory-hit p99 at
  // 2 connections ~0.3 ms at nice 10, ~0.15 ms this way; see RecorderOptions).
  analytics::EventRecorder recorder(*entryIndex, {.idleWhenCaughtUp = true});
  analytics::Analytics analyticsApi(*entryIndex, &recorder);
  analytics::Metrics metrics;
  admin::AdminApi adminApi(*entryIndex, invalidator, c, &analyticsApi);
  std::unique_ptr<invalidation::S3InvalidationBroadcast> broadcast;
  if (s3Client) {
    broadcast = std::make_unique<invalidation::S3InvalidationBroadcast>(
        *s3Client, cache::s3::normalizePrefix(c.s3Prefix), s3Tier->options().instanceId,
        invalidator, std::filesystem::path(c.cacheDir) / "invalidations-seen",
        std::chrono::seconds(c.invalidationPollSeconds), Clock::system());
  }

  // Expired entries are misses at once (TierChain checks expires_at); this purges them from
  // the tiers and the index in the background.
  std::atomic<bool> purging{true};
  std::mutex purgeMutex;
  std::condition_variable purgeCv;
  std::thread purger([&] {
    std::unique_lock lock(purgeMutex);
    while (!purgeCv.wait_for(lock, std::chrono::seconds(30), [&] { return !purging.load(); })) {
      lock.unlock();
      (void)invalidator.purgeExpired(10000);
      lock.lock();
    }
  });
  StopThread stopPurger{purging, purgeMutex, purgeCv, purger};

  // The S3 index (by-date segments, cache_index.json, statistics.json) is written by inserts when
  // its interval has passed; this timer also writes it when only lookups changed the statistics
  // (an instance that reads more than it writes), at nice 10, off the request threads.
  std::atomic<bool> indexing{true};
  std::mutex indexMutex;
  std::condition_variable indexCv;
  std::thread indexer;
  if (s3Tier)
    indexer = std::thread([&] {
      lowerThreadPriority();
      std::unique_lock lock(indexMutex);
      while (!indexCv.wait_for(lock, std::chrono::seconds(10), [&] { return !indexing.load(); })) {
        lock.unlock();
        (void)s3Tier->flushIndexIfDue();
        lock.lock();
      }
    });
  StopThread stopIndexer{indexing, indexMutex, indexCv, indexer};

  // Tier gauges for /metrics, refreshed every CACHE_METRICS_INTERVAL (and at start).
  auto refreshGauges = [&] {
    metrics.setTier("memory", {memory.entryCount(), memory.byteCount(), memory.evictions()});
    metrics.setTier("disk", {disk->entryCount(), disk->byteCount(), disk->evictions()});
    if (s3Outbox) metrics.setOutboxPending(s3Outbox->pending());
  };
  refreshGauges();
  std::atomic<bool> gauging{true};
  std::mutex gaugeMutex;
  std::condition_variable gaugeCv;
  std::thread gauger([&] {
    std::unique_lock lock(gaugeMutex);
    while (!gaugeCv.wait_for(lock, std::chrono::seconds(std::max(1, c.metricsIntervalSeconds)),
                             [&] { return !gauging.load(); })) {
      refreshGauges();
    }
  });
  StopThread stopGauger{gauging, gaugeMutex, gaugeCv, gauger};

  upstream::Client client;
  gateway::GatewayDeps deps{c, chain, client, platforms, pricing};
  deps.index = entryIndex.get();
  deps.invalidator = &invalidator;
  deps.admin = &adminApi;
  deps.recorder = &recorder;
  deps.metrics = &metrics;
  deps.refreshGauges = refreshGauges;
  deps.broadcast = broadcast.get();
  deps.s3 = s3Tier.get();
  deps.s3Directory = s3Directory.get();
  deps.s3Outbox = s3Outbox.get();
  gateway::Gateway gw(deps);
  std::unique_ptr<http::Server> server;
  try {
    server = std::make_unique<http::Server>(
        serverOptions(c),
        [&gw](http::Request& r, http::ResponseWriter& w) { return gw.handle(r, w); },
        [&gw](http::bhttp::status s, std::string m, std::string_view t) {
          return gw.errorResponse(s, std::move(m), t);
        });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llmcache: cannot listen on %s: %s\n", c.listen.c_str(), e.what());
    return 1;
  }
  std::fprintf(
      stderr, "llmcache: upstream %s, cache in %s (memory %llu entries, disk %llu entries)%s%s\n",
      c.upstream.c_str(), c.cacheDir.c_str(), static_cast<unsigned long long>(c.memoryEntries),
      static_cast<unsigned long long>(c.diskEntries),
      s3Tier
          ? (", S3 bucket " + c.s3Bucket + (c.asyncWrites ? " (async writes)" : " (sync writes)"))
                .c_str()
          : "",
      c.enabled ? "" : ", caching DISABLED (pass-through)");
  // E-mail alerts (CACHE_ALERT_EMAIL): evaluated every CACHE_METRICS_INTERVAL on their own
  // thread (a send may block for seconds).
  std::unique_ptr<alerts::Alerter> alerter;
  std::atomic<bool> alerting{false};
  std::mutex alertMutex;
  std::condition_variable alertCv;
  std::thread alertThread;
  if (!c.alertEmail.empty()) {
    alerter = std::make_unique<alerts::Alerter>(
        alerts::AlerterOptions::fromConfig(c, c.listen),
        [url = c.smtpUrl](const alerts::Mail& m) { return alerts::sendSmtp(url, m); },
        Clock::system());
    alerting = true;
    alertThread = std::thread([&] {
      uint64_t failed = 0;
      std::unique_lock lock(alertMutex);
      do {
        const auto& st = gw.stats();
        alerts::Snapshot snap;
        snap.requests = st.hits + st.misses + st.coalesced;
        snap.hits = st.hits;
        snap.tierErrors = {{"s3", st.s3Errors.load()}, {"disk", st.storeErrors.load()}};
        snap.outboxPending = s3Outbox ? s3Outbox->pending() : 0;
        lock.unlock();
        alerter->evaluate(snap);
        if (alerter->stats().failed > failed) {
          failed = alerter->stats().failed;
          std::fprintf(stderr, "llmcache: alert mail failed: %s\n",
                       alerter->stats().lastError.c_str());
        }
        lock.lock();
      } while (!alertCv.wait_for(lock, std::chrono::seconds(std::max(1, c.metricsIntervalSeconds)),
                                 [&] { return !alerting.load(); }));
    });
  }
  StopThread stopAlerts{alerting, alertMutex, alertCv, alertThread};

  runUntilSignalled(*server, "llmcache");
  gw.flush();  // pending disk writes (and outbox journaling) finish before we exit
  if (s3Outbox) {
    // Upload what we can within the grace period; the rest stays journaled for the next start.
    if (!s3Outbox->drain(std::chrono::seconds(c.shutdownGraceSeconds)))
      std::fprintf(stderr, "llmcache: %llu S3 writes left in the outbox for the next start\n",
                   static_cast<unsigned long long>(s3Outbox->pending()));
    s3Outbox->stop();
  }
  if (s3Tier) (void)s3Tier->flushIndex();
  if (recorder.dropped() > 0)
    std::fprintf(stderr, "llmcache: %llu analytics events dropped (the events queue was full)\n",
                 static_cast<unsigned long long>(recorder.dropped()));
  std::fprintf(stderr, "llmcache: stopped\n");
  return 0;
}

}  // namespace

void addServeCommand(CLI::App& app, int& exitCode) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "Run the caching gateway");
  cmd->add_option("--config", a->configFile, "JSON file of CACHE_* settings (or CACHE_CONFIG)");
  cmd->add_option("--listen", a->listen,
                  "HOST:PORT to listen on (CACHE_LISTEN, default 127.0.0.1:8080)");
  cmd->add_option(
      "--upstream", a->upstream,
      "Provider API root including /v1 (CACHE_UPSTREAM, default https://api.openai.com/v1)");
  cmd->add_option("--cache-dir", a->cacheDir,
                  "Disk tier directory (CACHE_DIR, default ./.llmcache)");
  cmd->add_option("--set", a->sets, "NAME=VALUE for any CACHE_* setting (repeatable)");
  cmd->add_flag("--print-config", a->printConfig,
                "Print the effective configuration (secrets masked) and exit");
  cmd->callback([a, &exitCode] { exitCode = runServe(*a); });
}

void addMockUpstreamCommand(CLI::App& app, int& exitCode) {
  struct Args {
    std::string listen = "127.0.0.1:9090";
    int latencyMs = 0;
    int chunkDelayMs = 0;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "mock-upstream",
      "Run a stand-in LLM provider (OpenAI + Anthropic shapes) for trying llmcache offline");
  cmd->add_option("--listen", a->listen, "HOST:PORT (port 0: any free port)")
      ->capture_default_str();
  cmd->add_option("--latency-ms", a->latencyMs, "Delay before each response head")
      ->capture_default_str();
  cmd->add_option("--chunk-delay-ms", a->chunkDelayMs, "Delay between streamed events")
      ->capture_default_str();
  cmd->callback([a, &exitCode] {
    config::Config c;
    c.listen = a->listen;
    http::ServerOptions o;
    try {
      o = serverOptions(c);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "llmcache mock-upstream: %s\n", e.what());
      exitCode = 2;
      return;
    }
    o.shutdownGrace = std::chrono::seconds(2);
    mock::MockUpstream mock(mock::MockOptions{std::chrono::milliseconds(a->latencyMs),
                                              std::chrono::milliseconds(a->chunkDelayMs)});
    http::Server server(
        o, [&mock](http::Request& r, http::ResponseWriter& w) { return mock.handle(r, w); });
    runUntilSignalled(server, "mock-upstream");
    exitCode = 0;
  });
}

}  // namespace llmcache::cli
