#pragma once
#include <functional>
// Analytics: the figures of GET /cache/analytics and GET /cache/patterns, computed in SQL over the
// index's events table (what happened to each request) and entries table (what is stored).
// Every definition is in docs/analytics.md; the JSON shapes are listed there too.
#include <cstdint>
#include <optional>

#include "analytics/prompt.h"
#include "analytics/recorder.h"
#include "common/json.h"
#include "common/result.h"
#include "index/index.h"

namespace llmcache::analytics {

// The time window: events with from <= time < to; either side open when unset.
struct Query {
  std::optional<TimePoint> from = {};
  std::optional<TimePoint> to = {};
};

struct AnalyticsOptions {
  size_t topKeys = 10;       // hot_keys, cold_keys
  size_t topUsers = 10;      // user_patterns
  int64_t minRequests = 10;  // best_hit_rate_hours and low-hit-rate models need this many requests
  double lowHitRate = 0.2;   // a model below this hit rate is an opportunity
  int nearDuplicateBits = kNearDuplicateBits;  // SimHash distance of near-duplicate prompts
  size_t maxSimilarityEntries = 5000;  // the newest entries with a signature compared pairwise
  size_t maxNearDuplicateGroups = 20;
  size_t maxNormalizeTenants = 5;  // normalize_prompts: the tenants `seed` would have saved most
  // Waits until the stores queued so far reached the index (the cache's background writer:
  // TieredCache::sync), so hot and cold keys include the entries of requests already answered.
  // Empty: not waited for.
  std::function<void()> syncStores = {};
};

// Thread-safe (the index serializes the queries). Queries read the whole window: an admin call,
// not for the request path.
class Analytics {
 public:
  // recorder: when set, its queued events are flushed first, so the figures include requests
  // answered until the call. The index's queued hits are flushed too (hot and cold keys).
  Analytics(index::Index& index, EventRecorder* recorder = nullptr, AnalyticsOptions options = {});

  // {window, total_requests, hits, semantic_hits, misses, coalesced, hit_rate, coalesced_rate,
  //  requests_all, bypassed, invalid, outcomes, cost_spent, cost_saved{total, coalesced,
  //  daily_average, per_request}, semantic_cost_saved, tokens_saved, avg_latency_saved,
  //  storage_efficiency, hot_keys, cold_keys, by_model, by_platform, trends{hourly, daily}}.
  //  Semantic hits are counted among the hits (and their savings in cost_saved.total) and apart.
  //  Errors: Io from the index.
  Result<Json> analytics(const Query& query);
  // {window, temporal{peak_hours, low_activity, best_hit_rate_hours, weekly_patterns, heatmap},
  //  model_distribution, prompt_categories, user_patterns,
  //  optimization_opportunities{near_duplicates, normalize_prompts, low_hit_rate_models}}.
  //  Errors: Io.
  Result<Json> patterns(const Query& query);

 private:
  void flushSources();

  index::Index& index_;
  EventRecorder* recorder_;
  AnalyticsOptions options_;
};

}  // namespace llmcache::analytics
