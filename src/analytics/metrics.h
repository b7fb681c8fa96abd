#pragma once
// Metrics: the gateway's live counters for GET /metrics (Prometheus text exposition format
// 0.0.4) and statistics.json (docs/analytics.md, Metrics). observe() is on the hit path: it only
// touches atomics (relaxed fetch_add), never a lock.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "analytics/event.h"
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

// Histogram upper bounds of llmcache_request_duration_seconds (+Inf implied).
inline constexpr std::array<double, 15> kDurationBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

// Thread-safe.
class Metrics {
 public:
  explicit Metrics(MetricsOptions options = {});
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Counts one request: requests_total{outcome,tier,model}, the duration histogram (by outcome),
  // and for a HIT the cost and tokens saved. An outcome outside the eight known ones counts as
  // "UNKNOWN"; a tier outside memory/disk/s3 as "none"; an empty model as "none".
  void observe(const Event& event);

  // Gauges and totals the gateway owns, set to its current values (any thread, any time).
  // tier: "memory", "disk" or "s3"; another name is ignored.
  void setTier(std::string_view tier, TierGauges gauges);
  void setS3Errors(uint64_t total);
  void setOutboxPending(uint64_t pending);
  void setUpstreamErrors(uint64_t total);
  // Writes to a tier below memory (disk, S3 outbox) that failed: the answer was served anyway.
  void setStoreErrors(uint64_t total);

  // The Prometheus text (Content-Type: text/plain; version=0.0.4; charset=utf-8). Series with a
  // zero count are left out of requests_total and the histogram; the rest are always present.
  std::string prometheusText() const;
  // The same totals as JSON (statistics.json): requests, cacheable, hits, misses, coalesced,
  // hit_rate, by_outcome, by_model, cost_saved_usd, tokens_saved, latency, tiers, s3_errors,
  // s3_outbox_pending, upstream_errors.
  Json snapshot() const;

  static constexpr size_t kOutcomes = 9;  // the eight outcomes and UNKNOWN
  static constexpr size_t kTiers = 4;     // memory, disk, s3, none

 private:
  size_t modelSlot(std::string_view model);
  size_t cell(size_t outcome, size_t tier, size_t model) const {
    return (outcome * kTiers + tier) * models_ + model;
  }
  std::string modelLabel(size_t slot) const;

  MetricsOptions options_;
  size_t models_;  // maxModels + 1 ("other")
  // Model names by slot, claimed once with a CAS and never changed; freed by the destructor.
  std::unique_ptr<std::atomic<std::string*>[]> modelNames_;
  std::unique_ptr<std::atomic<uint64_t>[]> requests_;  // [outcome][tier][model]
  std::array<std::array<std::atomic<uint64_t>, kDurationBuckets.size() + 1>, kOutcomes> buckets_{};
  std::array<std::atomic<double>, kOutcomes> durationSum_{};
  std::atomic<double> costSaved_{0};
  std::atomic<double> costSavedCoalesced_{0};
  std::atomic<uint64_t> tokensSaved_{0};
  std::array<std::array<std::atomic<uint64_t>, 3>, 3>
      tiers_{};  // [memory, disk, s3][entries, bytes, evictions]
  std::atomic<uint64_t> s3Errors_{0};
  std::atomic<uint64_t> outboxPending_{0};
  std::atomic<uint64_t> upstreamErrors_{0};
  std::atomic<uint64_t> storeErrors_{0};
};

// Escapes a label value for the text format: backslash, double quote and newline.
std::string escapeLabelValue(std::string_view value);

}  // namespace llmcache::analytics
