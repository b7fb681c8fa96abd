#pragma once
// Gateway: the policy of a request's life (DESIGN.md, Life of a request). It routes, parses and
// validates, computes the key, decides what is cacheable, fresh and storable, coalesces
// identical misses, relays the upstream's answer and answers the client; it asks the one cache
// service (cache::TieredCache) to `lookup` and `store` and nothing more. Every request ends with
// one Outcome, which drives x-llmcache-status, the metrics and the analytics event.
#include <atomic>
#include <boost/asio.hpp>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "admin/admin_api.h"
#include "analytics/explain.h"
#include "analytics/fleet_counters.h"
#include "analytics/metrics.h"
#include "analytics/near_miss.h"
#include "analytics/outcome.h"
#include "analytics/recorder.h"
#include "api/provider.h"
#include "cache/fleet.h"
#include "cache/tiered_cache.h"
#include "common/clock.h"
#include "common/log.h"
#include "config/config.h"
#include "gateway/entry_factory.h"
#include "gateway/key_memo.h"
#include "gateway/request_controls.h"
#include "gateway/router.h"
#include "gateway/semantic.h"
#include "gateway/single_flight.h"
#include "gateway/stream_log.h"
#include "http/server.h"
#include "invalidation/s3_broadcast.h"
#include "sizing/shards.h"
#include "upstream/client.h"
#include "upstream/platform.h"
#include "upstream/pricing.h"

namespace llmcache::gateway {

using analytics::Outcome;

struct GatewayDeps {
  const config::Config& config;
  cache::TieredCache& cache;
  upstream::UpstreamClient& client;
  const upstream::PlatformTable& platforms;
  const upstream::PricingTable& pricing;
  const Clock& clock = Clock::system();
  // The admin API (/cache/*, /metrics, /dashboard). Optional: without it those routes are 404s.
  admin::AdminApi* admin = nullptr;
  // With S3: invalidations applied here are published for the other gateways on the bucket.
  invalidation::S3InvalidationBroadcast* broadcast = nullptr;
  // With Redis (docs/redis.md): a miss takes the fleet-wide lease on its prompt or waits for the
  // gateway holding it; invalidations applied here are published to the others at once.
  cache::Fleet* fleet = nullptr;
  // Analytics: one event per request (queued, written off the request path) and the
  // Prometheus counters behind /metrics. Optional.
  analytics::EventRecorder* recorder = nullptr;
  analytics::Metrics* metrics = nullptr;
  // This gateway's share of the fleet statistics (published to S3 by the S3 tier). Optional.
  analytics::FleetCounters* fleetCounters = nullptr;
  std::function<void()> refreshGauges = {};  // sets the tier gauges; called before each /metrics
  // The miss explainer's candidates: the stored entries, with their request text, of one tenant
  // and endpoint (the cassette's files, or the disk tier's newest). Called on the admin pool,
  // never on a request thread. Null: misses are not explained.
  std::function<std::vector<cache::EntryPtr>(std::string_view tenant, std::string_view endpoint)>
      explainCandidates = {};
  // The near-miss patterns (/cache/patterns): explained misses are tallied here. Optional.
  analytics::NearMissPatterns* nearMisses = nullptr;
  // The online miss-ratio curves (docs/sizing.md): every cacheable request that ends with an
  // entry (served or stored) is a reference, offered when its outcome is settled. Optional.
  sizing::MissRatioEstimator* sizing = nullptr;
  // An entry's size as the memory tier counts it (its charge against CACHE_MEMORY_BYTES); asked
  // for sampled references that are not hits. Unset: Entry::approxBytes without the request.
  std::function<uint64_t(const cache::Entry&)> entryBytes = {};
  // The semantic cache's vector index (docs/semantic.md): with config.semanticOn(), misses are
  // embedded and indexed, and semantic hits served or shadowed. Optional.
  semantic::VectorIndex* semanticIndex = nullptr;
  // A stored entry read without counting a use (the disk tier's peek: no eviction policy update,
  // no mtime), for shadow mode's neighbour whose answer the semantic cache does not remember
  // (stored before this process started, or beyond its memory). Blocking file I/O: called on the
  // semantic pool. Unset or null: such a pair is not counted.
  std::function<cache::EntryPtr(std::string_view cacheKey)> peekStored = {};
};

class Gateway {
 public:
  explicit Gateway(GatewayDeps deps);
  ~Gateway();

  // The http::Handler.
  http::net::awaitable<void> handle(http::Request& request, http::ResponseWriter& writer);
  // The http::ErrorResponder: errors the server detects itself, in the provider's shape.
  http::Response errorResponse(http::bhttp::status status, std::string message,
                               std::string_view target) const;
  // Waits for the admin requests still running (graceful shutdown).
  void flush();

  uint64_t upstreamErrors() const { return upstreamErrors_.load(std::memory_order_relaxed); }

  // GET /cache/explain?key=K (admin::AdminApi::Explainer): the miss explainer for the last miss
  // of cache key K among the last kRecentMisses (bodies up to kRecentMissBytes each, kept only
  // with GatewayDeps::explainCandidates): {"cache_key", "endpoint", "explain": {...}}. nullopt:
  // no such recent miss. Blocking (reads stored entries): the admin pool only.
  std::optional<Json> explainRecentMiss(std::string_view cacheKey);
  static constexpr size_t kRecentMisses = 256;
  static constexpr size_t kRecentMissBytes = 64 * 1024;
  // All the remembered bodies together: 1 MiB (16 misses of 64 KB, 256 of 4 KB), so the
  // explainer's memory stays small beside the key memo's (CACHE_KEY_MEMO_BYTES).
  static constexpr size_t kRecentMissTotalBytes = 1 << 20;

  // GET /cache/semantic: nullopt when the semantic cache is off. Any thread.
  std::optional<Json> semanticReport() const;
  // The shadow figures' counters, kept across restarts by the composition root beside the
  // index files (semantic::ShadowStats::state / restore). nullopt / InvalidArgument when the
  // semantic cache is off.
  std::optional<Json> semanticShadowState() const;
  Result<void> restoreSemanticShadow(const Json& state);
  // Rebuilds the vectors of stored entries (the index files were missing): each entry not yet
  // indexed whose request is semantic is embedded (CACHE_SEMANTIC_EMBEDDINGS_KEY or no
  // credential: there is no caller) and added. An entry whose key the gateway cannot
  // reproduce from its stored request (its key had a query or header context, which is not
  // stored) is skipped: it would land in the wrong partition. Returns how many were added.
  // Blocking (embedding calls): never on a request thread. `stop` is checked between entries.
  size_t indexStoredEntries(const std::vector<cache::EntryPtr>& entries,
                            const std::atomic<bool>& stop);

  struct FlightResult;
  struct Context;
  struct SemanticState;
  // One upstream call per key; a streamed one shares its events live (StreamLog).
  using Flights = SingleFlight<FlightResult, StreamLog>;

 private:
  http::net::awaitable<void> serveApi(Context& ctx, http::ResponseWriter& w);
  http::net::awaitable<bool> prepareKey(Context& ctx, http::ResponseWriter& w);
  http::net::awaitable<std::optional<cache::CacheHit>> lookup(const Context& ctx);
  http::net::awaitable<void> lead(Context& ctx, http::ResponseWriter& w,
                                  std::shared_ptr<Flights::Flight> flight);
  // A request that joined a flight: the leader's stream live, or its whole answer, or (after a
  // failure, when nothing was sent yet) an upstream call of its own.
  http::net::awaitable<void> follow(Context& ctx, http::ResponseWriter& w,
                                    std::shared_ptr<Flights::Flight> flight);
  // A leader's miss with a fleet: takes the fleet-wide lease (leased), or waits for the gateway
  // holding it until its entry lands (hit), the lease goes (then takes it), or the bounded wait
  // ends (neither: call without a lease).
  struct FleetWait {
    std::optional<cache::CacheHit> hit;
    bool leased = false;
  };
  http::net::awaitable<FleetWait> awaitFleet(Context& ctx);
  http::net::awaitable<std::shared_ptr<const FlightResult>> callUpstream(Context& ctx,
                                                                         http::ResponseWriter& w);
  http::net::awaitable<void> passThrough(Context& ctx, http::ResponseWriter& w);
  // An exact miss with the semantic cache on: describes the request (ctx.semantic) and, when a
  // threshold applies, serves its partition's nearest entry if similar enough. True: answered
  // (a semantic HIT, or a 400 for a bad x-llmcache-semantic).
  http::net::awaitable<bool> semanticLookup(Context& ctx, http::ResponseWriter& w);
  // After a miss's entry is stored: embeds it (unless done), indexes it, and in shadow mode
  // compares its answer with the remembered neighbour's. Detached, on the request's executor.
  http::net::awaitable<void> indexStored(std::shared_ptr<SemanticState> state,
                                         cache::EntryPtr entry, key::Endpoint endpoint,
                                         std::string model);
  // The miss explainer for this request (empty without GatewayDeps::explainCandidates).
  http::net::awaitable<analytics::MissExplanation> explain(const Context& ctx);
  // Replay mode: a request with no recording (or one that is never recorded) is a 404 in the
  // provider's shape naming the key and the explainer's findings; no provider is called.
  http::net::awaitable<void> notRecorded(Context& ctx, http::ResponseWriter& w,
                                         std::string_view why);
  http::net::awaitable<void> serveEntry(Context& ctx, http::ResponseWriter& w,
                                        const cache::Entry& entry, Outcome outcome,
                                        std::string_view layer);
  http::net::awaitable<void> serveFlightResult(Context& ctx, http::ResponseWriter& w,
                                               const FlightResult& result);
  http::net::awaitable<void> sendError(Context& ctx, http::ResponseWriter& w,
                                       http::bhttp::status status, std::string_view message,
                                       Outcome outcome);
  // admin_routes.cc
  http::net::awaitable<void> serveAdmin(Context& ctx, http::ResponseWriter& w);
  http::net::awaitable<void> serveMetrics(Context& ctx, http::ResponseWriter& w);
  http::net::awaitable<void> serveDashboard(Context& ctx, http::ResponseWriter& w);
  // The request's outcome is final: set it and record the analytics event now, before the
  // answer reaches the client (a client reading /cache/analytics right after sees it counted).
  void settle(Context& ctx, Outcome outcome);
  void recordEvent(Context& ctx);          // once per request
  void offerToSizing(const Context& ctx);  // the request as a reference (GatewayDeps::sizing)
  upstream::Request upstreamRequest(const Context& ctx, bool cached) const;
  key::KeyOptions keyOptions(const Context& ctx) const;
  http::net::awaitable<bool> applyCors(Context& ctx, http::ResponseWriter& w);
  // Counts and logs an upstream failure; the status and message the client gets (504 for a
  // timeout, else 502), which never name the upstream.
  std::pair<http::bhttp::status, std::string> upstreamFailed(const Error& error);

  void rememberMiss(const Context& ctx);
  // Whether this miss is explained in the background for the near-miss patterns: at most
  // CACHE_NEAR_MISS_SAMPLE a second, normal mode only.
  bool sampleNearMiss();
  void explainInBackground(const Context& ctx);

  GatewayDeps deps_;
  struct RecentMiss {
    std::string body, tenant, endpoint;
  };
  std::mutex missesMutex_;
  std::deque<std::string> missOrder_;  // keys, oldest first (one per remembered miss)
  size_t missBytes_ = 0;               // the remembered bodies' bytes (kRecentMissTotalBytes)
  std::unordered_map<std::string, RecentMiss> misses_;
  std::mutex sampleMutex_;
  int64_t sampleSecond_ = 0;
  int sampleCount_ = 0;
  Router router_;
  EntryFactory entries_;
  key::NormalizeMode mode_;
  std::vector<std::pair<std::string, key::NormalizeMode>> namespaceModes_;
  std::vector<std::string> keyHeaders_;   // lowercase: their values go into the key's context
  std::vector<std::string> corsOrigins_;  // CACHE_CORS_ORIGINS
  ScopeOptions scope_;
  Flights flights_;
  KeyMemo keyMemo_;
  std::unique_ptr<SemanticCache> semantic_;  // null: semantic hits off (config.semanticOn())
  std::atomic<uint64_t> upstreamErrors_{0};
  LogLimiter upstreamLog_;  // upstream failures: a line per interval, however many fail
  http::net::thread_pool adminPool_{1};  // admin requests: SQLite queries and tier erases
  // /metrics: its own thread, so a scrape never waits behind a long admin request (a bucket-wide
  // invalidation holds the admin thread for up to 10 s).
  http::net::thread_pool metricsPool_{1};
  http::net::thread_pool keyPool_{2};    // parsing and keying bodies above KeyMemo::kMaxBodyBytes
  http::net::thread_pool fleetPool_{2};  // fleet leases: one short Redis call each
};

}  // namespace llmcache::gateway
