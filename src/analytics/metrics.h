#pragma once
// Metrics: the gateway's live counters for GET /metrics (Prometheus text exposition format
// 0.0.4), statistics.json and the alert mails (docs/analytics.md, Metrics). observe() is on the
// hit path and onTierEvent() on any thread: they only touch atomics (relaxed fetch_add), never a
// lock.
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "analytics/event.h"
#include "analytics/outcome.h"
#include "cache/tier_events.h"
#include "common/json.h"

namespace llmcache::analytics {

struct MetricsOptions {
  // Distinct model label values. The first maxModels models seen keep their own label; later
  // ones are counted under "other". First-seen rather than a moving top N: a counter series must
  // never move between labels (Prometheus rates would see a reset).
  size_t maxModels = 20;
};

// What the gateway knows about a tier, set (not added) from its own totals.
struct TierGauges {
  uint64_t entries = 0;
  uint64_t bytes = 0;
  uint64_t evictions = 0;  // cumulative
};

// The Redis client's and fleet channel's totals (cache/redis: RedisClientStats,
// RedisFleetStats), set by the gateway when CACHE_REDIS_URL is on; the llmcache_redis_* series
// are left out of /metrics until then.
struct RedisGauges {
  bool up = false;          // the last connect or command reached Redis
  bool subscribed = false;  // the channel's subscriber is connected and subscribed now
  uint64_t commands = 0, failures = 0, rejected = 0, connects = 0;  // the client
  uint64_t written = 0, writeErrors = 0, dropped = 0;               // the tier's queued writes
  uint64_t published = 0, received = 0, subscriptions = 0;          // the channel
  uint64_t leasesTaken = 0, leasesFound = 0;                        // leases
};

// One point of an online miss-ratio curve (docs/sizing.md): what the tier would do at `scale`
// times its configured size. Set by the composition root from the sizing estimator.
struct SizingGauge {
  std::string tier;  // "memory", "disk"
  double scale = 1;  // 0.25, 0.5, 1, 2, 4, 8
  double bytes = 0;  // the size in bytes at that scale
  double hitRate = 0;
  std::optional<double> costSavedPerDay;  // US dollars; none until the window is a second long
};

// The operations a TierEvent::Failed names (TierEvent::Op), in label order: lookup, insert,
// erase.
inline constexpr size_t kTierOps = 3;
std::string_view tierOpName(cache::TierEvent::Op op);

// What Metrics has counted so far, read in one pass (each counter relaxed: two reads taken while
// requests arrive may differ by those requests). Every figure uses the Outcome predicates of
// outcome.h, so these are the dashboard's definitions (docs/analytics.md, Common definitions).
struct MetricsTotals {
  uint64_t requests = 0;   // every request observed, all outcomes
  uint64_t cacheable = 0;  // isCacheable(): analytics' total_requests, the hit rate's denominator
  uint64_t hits = 0;       // HIT
  uint64_t misses = 0;     // isMiss(): MISS, REFRESH, NO-STORE, UNCACHEABLE
  uint64_t coalesced = 0;  // COALESCED
  std::array<uint64_t, kOutcomeCount> byOutcome{};  // indexed by Outcome
  // Failed tier events (TierObserver), [TierId][TierEvent::Op].
  std::array<std::array<uint64_t, kTierOps>, cache::kTierCount> tierFailures{};

  // hits / cacheable, 0 without cacheable requests: analytics' hit_rate over the same requests.
  double hitRate() const;
  // Failed events of one tier, any operation.
  uint64_t tierErrors(cache::TierId tier) const;
  // Every tier by name ("memory", "disk", "s3", "redis") -> tierErrors(): the alert mails'
  // per-tier error totals (alerts::Snapshot::tierErrors).
  std::map<std::string, uint64_t> tierErrorsByName() const;
  // llmcache_s3_errors_total: Failed events on the S3 tier, any operation.
  uint64_t s3Errors() const;
  // llmcache_store_errors_total: Failed Insert events on any tier (the answer was served, not
  // kept there).
  uint64_t storeErrors() const;
};

// Histogram upper bounds of llmcache_request_duration_seconds (+Inf implied).
inline constexpr std::array<double, 15> kDurationBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

// Thread-safe. Attach it to the TieredCache (addObserver) to count tier failures.
class Metrics final : public cache::TierObserver {
 public:
  explicit Metrics(MetricsOptions options = {});
  ~Metrics() override;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Counts one request: requests_total{outcome,tier,model}, the duration histogram (by outcome),
  // and for a HIT the cost and tokens saved. A tier outside memory/disk/s3 counts as "none", an
  // empty model as "none"; a value outside the Outcome enum is not counted.
  void observe(const Event& event);

  // TierObserver: counts Failed events by tier and operation (tier_errors_total{tier,op}, and
  // from them s3_errors_total and store_errors_total); every other kind is ignored. Any thread.
  void onTierEvent(const cache::TierEvent& event) override;

  // The totals the alert mails and statistics.json read (see MetricsTotals).
  MetricsTotals totals() const;

  // Gauges and totals the gateway owns, set to its current values (any thread, any time).
  // tier: "memory", "disk" or "s3"; another name is ignored.
  void setTier(std::string_view tier, TierGauges gauges);
  void setOutboxPending(uint64_t pending);
  // The cache's background writer (cache::TieredCache::writerBacklog): tasks and bytes queued,
  // promotions skipped because it was too far behind.
  void setWriterBacklog(uint64_t tasks, uint64_t bytes, uint64_t skippedPromotions);
  void setUpstreamErrors(uint64_t total);
  // Turns the llmcache_redis_* series on, with these values.
  void setRedis(const RedisGauges& redis);

  // The miss-ratio curves' points (llmcache_sizing_*), replacing the last ones. Empty: none
  // shown (sizing off).
  void setSizing(std::vector<SizingGauge> points);

  // The Prometheus text (Content-Type: text/plain; version=0.0.4; charset=utf-8). Series with a
  // zero count are left out of requests_total and the histogram; the rest are always present.
  std::string prometheusText() const;
  // The same totals as JSON (statistics.json): requests, cacheable, hits, misses, coalesced,
  // hit_rate, by_outcome, by_model, cost_saved_usd, cost_saved_coalesced_usd, tokens_saved,
  // latency, tiers, s3_errors, s3_outbox_pending, upstream_errors, store_errors,
  // tier_errors{tier: {lookup, insert, erase}}.
  Json snapshot() const;

  static constexpr size_t kTiers = 4;  // the answering-tier label: memory, disk, s3, none

 private:
  size_t modelSlot(std::string_view model);
  size_t cell(size_t outcome, size_t tier, size_t model) const {
    return (outcome * kTiers + tier) * models_ + model;
  }
  std::string modelLabel(size_t slot) const;
  std::vector<uint64_t> readRequests() const;  // every requests_ cell, [outcome][tier][model]
  MetricsTotals totalsOf(const std::vector<uint64_t>& counts) const;

  MetricsOptions options_;
  size_t models_;  // maxModels + 1 ("other")
  // Model names by slot, claimed once with a CAS and never changed; freed by the destructor.
  std::unique_ptr<std::atomic<std::string*>[]> modelNames_;
  std::unique_ptr<std::atomic<uint64_t>[]> requests_;  // [outcome][tier][model]
  std::array<std::array<std::atomic<uint64_t>, kDurationBuckets.size() + 1>, kOutcomeCount>
      buckets_{};
  std::array<std::atomic<double>, kOutcomeCount> durationSum_{};
  std::atomic<double> costSaved_{0};
  std::atomic<double> costSavedCoalesced_{0};
  std::atomic<uint64_t> tokensSaved_{0};
  std::atomic<uint64_t> semanticHits_{0};  // HITs served by similarity (Event::semantic)
  std::atomic<double> semanticCostSaved_{0};
  std::array<std::array<std::atomic<uint64_t>, 3>, 3>
      tiers_{};  // [memory, disk, s3][entries, bytes, evictions]
  std::atomic<uint64_t> outboxPending_{0};
  std::atomic<uint64_t> writerTasks_{0};
  std::atomic<uint64_t> writerBytes_{0};
  std::atomic<uint64_t> writerSkippedPromotions_{0};
  std::atomic<uint64_t> upstreamErrors_{0};
  std::atomic<bool> redisOn_{false};
  // RedisGauges' fields in declaration order (up, subscribed, then the counters).
  std::array<std::atomic<uint64_t>, 14> redis_{};
  // Failed tier events, [TierId][TierEvent::Op].
  std::array<std::array<std::atomic<uint64_t>, kTierOps>, cache::kTierCount> tierFailures_{};
  mutable std::mutex sizingMutex_;  // never on the request path: set and read per scrape
  std::vector<SizingGauge> sizing_;
};

// Escapes a label value for the text format: backslash, double quote and newline.
std::string escapeLabelValue(std::string_view value);

}  // namespace llmcache::analytics
