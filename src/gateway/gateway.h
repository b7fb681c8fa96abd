#pragma once
// Gateway: the orchestrator of a request's life (DESIGN.md): route, parse and validate, key,
// look up the tiers, coalesce identical misses, call the upstream (relaying streams as they
// arrive), decide what may be stored, store it, answer. The only module that knows all others.
#include <atomic>
#include <boost/asio.hpp>
#include <memory>
#include <string>

#include "admin/admin_api.h"
#include "analytics/metrics.h"
#include "analytics/recorder.h"
#include "api/provider.h"
#include "cache/s3/s3_key_directory.h"
#include "cache/s3/s3_outbox.h"
#include "cache/tier_chain.h"
#include "common/clock.h"
#include "config/config.h"
#include "gateway/key_memo.h"
#include "gateway/single_flight.h"
#include "http/server.h"
#include "index/index.h"
#include "invalidation/invalidator.h"
#include "invalidation/s3_broadcast.h"
#include "key/cache_key.h"
#include "upstream/http_client.h"
#include "upstream/platform.h"
#include "upstream/pricing.h"

namespace llmcache::gateway {

// What happened to a request: drives x-llmcache-status (and, later, metrics and analytics).
enum class Outcome {
  Hit,          // answered from a tier
  Miss,         // forwarded; the answer was stored
  Coalesced,    // waited for an identical in-flight request and got its answer
  Refresh,      // Cache-Control: no-cache: lookup skipped, the fresh answer stored
  NoStore,      // Cache-Control: no-store: forwarded on a miss, the answer not stored
  Bypass,       // not a cached endpoint, caching disabled, or no-cache + no-store
  Uncacheable,  // forwarded, but the answer is not one we store (error, partial, invalid)
  Invalid,      // the gateway refused the request (400, 404, 413)
};
std::string_view outcomeName(Outcome o);  // "HIT", "MISS", ...

struct GatewayStats {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> hits{0};
  std::atomic<uint64_t> misses{0};
  std::atomic<uint64_t> coalesced{0};
  std::atomic<uint64_t> bypassed{0};
  std::atomic<uint64_t> upstreamCalls{0};
  std::atomic<uint64_t> upstreamErrors{0};
  std::atomic<uint64_t> stored{0};
  std::atomic<uint64_t> storeErrors{0};
  std::atomic<uint64_t> s3Lookups{0};
  std::atomic<uint64_t> s3Hits{0};
  std::atomic<uint64_t> s3Errors{0};
};

struct GatewayDeps {
  const config::Config& config;
  // The local tiers (memory, disk), looked up on the request's thread: tier 0 is written
  // before answering, the others in the background.
  cache::TierChain& chain;
  upstream::Client& client;
  const upstream::PlatformTable& platforms;
  const upstream::PricingTable& pricing;
  const Clock& clock = Clock::system();
  // The S3 tier, when configured. Looked up off the request threads, and only for keys the
  // directory says the bucket may hold, so a slow S3 never slows a miss. Written through the
  // outbox (CACHE_ASYNC_WRITES=true) or directly before answering (false).
  cache::CacheTier* s3 = nullptr;
  cache::s3::S3KeyDirectory* s3Directory = nullptr;
  cache::s3::S3Outbox* s3Outbox = nullptr;
  // The entry index (hit counts, invalidation queries), the invalidator (whose generation
  // guards in-flight misses) and the admin API (/cache/*). Optional: without them the gateway
  // caches but keeps no index.
  index::Index* index = nullptr;
  invalidation::Invalidator* invalidator = nullptr;
  admin::AdminApi* admin = nullptr;
  // With S3: invalidations applied here are published for the other gateways on the bucket.
  invalidation::S3InvalidationBroadcast* broadcast = nullptr;
  // Analytics: one event per request (queued, written off the request path) and the
  // Prometheus counters behind /metrics.
  analytics::EventRecorder* recorder = nullptr;
  analytics::Metrics* metrics = nullptr;
  std::function<void()> refreshGauges;  // sets the tier gauges; called before each /metrics
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
  // Waits for the background tier writes still pending (graceful shutdown).
  void flush();

  const GatewayStats& stats() const { return stats_; }

  struct FlightResult;
  struct Context;

 private:
  http::net::awaitable<void> lead(Context& ctx, http::ResponseWriter& w,
                                  std::shared_ptr<SingleFlight<FlightResult>::Flight> flight);
  http::net::awaitable<std::shared_ptr<const FlightResult>> callUpstream(Context& ctx,
                                                                         http::ResponseWriter& w);
  http::net::awaitable<void> passThrough(Context& ctx, http::ResponseWriter& w);
  http::net::awaitable<void> serveEntry(Context& ctx, http::ResponseWriter& w,
                                        const cache::Entry& entry, Outcome outcome,
                                        std::string_view layer);
  http::net::awaitable<void> serveFlightResult(Context& ctx, http::ResponseWriter& w,
                                               const FlightResult& result);
  http::net::awaitable<void> sendError(Context& ctx, http::ResponseWriter& w,
                                       http::bhttp::status status, std::string_view message,
                                       Outcome outcome);
  http::net::awaitable<std::optional<cache::ChainHit>> lookup(const Context& ctx);
  http::net::awaitable<void> store(cache::EntryPtr entry, uint64_t generation,
                                   std::shared_ptr<const KeyMemo::Value> keyInfo);
  // Background writers only: the prompt signature on the entry's index row.
  void signRow(const cache::Entry& entry, const KeyMemo::Value* keyInfo);
  http::net::awaitable<void> serveAdmin(Context& ctx, http::ResponseWriter& w);
  http::net::awaitable<void> serveMetrics(Context& ctx, http::ResponseWriter& w);
  // The request's outcome is final: set it and record the analytics event now, before the
  // answer reaches the client (a client reading /cache/analytics right after sees it counted).
  void settle(Context& ctx, Outcome outcome);
  void recordEvent(Context& ctx);  // once per request
  bool freshEnough(const Context& ctx, const cache::Entry& entry) const;

  GatewayDeps deps_;
  key::NormalizeMode mode_;
  std::vector<std::pair<std::string, int64_t>> modelTtls_;  // CACHE_MODEL_TTLS
  std::string defaultPlatform_;
  SingleFlight<FlightResult> flights_;
  KeyMemo keyMemo_;
  GatewayStats stats_;
  std::unique_ptr<cache::TierChain> s3Chain_;  // the S3 tier alone: hash and expiry checks
  http::net::thread_pool writers_{1};  // disk writes and outbox journaling off the request threads
  http::net::thread_pool s3Pool_{4};   // blocking S3 calls (lookups, synchronous writes)
  http::net::thread_pool adminPool_{1};  // admin requests: SQLite queries and tier erases
};

}  // namespace llmcache::gateway
