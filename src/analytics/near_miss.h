#pragma once
// NearMissPatterns: which request fields most often turn a near-hit into a miss, per model, and
// what those misses cost (issue 19, item 3): the miss explainer's findings tallied in memory
// since the start, listed by GET /cache/patterns as `near_misses` (docs/record-replay.md).
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

#include "analytics/explain.h"
#include "common/json.h"

namespace llmcache::analytics {

class NearMissPatterns {
 public:
  // At most this many (model, field, kind) rows are kept; later new ones are not counted.
  static constexpr size_t kMaxRows = 10000;

  // One explained miss of `model`. A miss with no candidate counts as explained with no field.
  // Its cost is estimated as the nearest entry's cost_total (the miss's own answer is not known
  // when it is explained). Thread-safe.
  void add(std::string_view model, const MissExplanation& explanation);

  // {"explained": N, "fields": [{"model", "field", "kind", "misses", "share", "cost_usd"}, ...]}:
  // rows by misses (then cost) descending, at most `limit`; share = misses / explained misses of
  // that model. A field counts once per miss.
  Json report(size_t limit = 20) const;

 private:
  struct Tally {
    uint64_t misses = 0;
    double costUsd = 0;
  };
  mutable std::mutex mutex_;
  uint64_t explained_ = 0;
  std::map<std::string, uint64_t, std::less<>> explainedByModel_;
  std::map<std::tuple<std::string, std::string, std::string>, Tally> rows_;
};

}  // namespace llmcache::analytics
