#pragma once
// ShadowStats: what semantic hits would have served, measured on real traffic (docs/semantic.md,
// Shadow mode). Each exact miss of a request that could be semantic is counted; when it had a
// partition neighbour, the pair (the prompts' similarity, whether the neighbour's stored answer
// agreed with the provider's real one, the real answer's cost) is recorded. Per model and per
// threshold from 0.80 to 0.99 (step 0.01) the report gives the extra hits that threshold would
// have served, their share of the misses, the money they would have saved and how often the
// stored answer agreed with the real one; and the lowest threshold whose agreement meets the
// target. Thread-safe; memory is fixed per model (counters, not pairs).
#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/result.h"

namespace llmcache::semantic {

struct ShadowPair {
  std::string model;
  float similarity = 0;        // of the two prompts' embeddings
  bool exactEqual = false;     // the stored answer's text equals the real one's
  float answerSimilarity = 0;  // of the two answers' embeddings (1 when exactly equal)
  double cost = 0;             // the real answer's cost: what a hit would have saved
};

class ShadowStats {
 public:
  static constexpr int kLowest = 80, kHighest = 99;  // thresholds in hundredths
  static constexpr size_t kThresholds = kHighest - kLowest + 1;

  // An answer agrees with the real one when the texts are equal or their embeddings' similarity
  // is at least answerAgreement (CACHE_SEMANTIC_ANSWER_AGREEMENT).
  explicit ShadowStats(double answerAgreement = 0.95) : answerAgreement_(answerAgreement) {}

  void observeMiss(std::string_view model);
  void record(const ShadowPair& pair);
  bool agrees(const ShadowPair& pair) const {
    return pair.exactEqual || static_cast<double>(pair.answerSimilarity) + 1e-5 >= answerAgreement_;
  }

  // {"target", "answer_agreement", "models": {model: Figures}, "all": Figures,
  //  "suggested_threshold"} where Figures = {"misses", "pairs", "thresholds": [{"threshold",
  //  "extra_hits", "extra_hit_rate", "cost_saved", "agreement" (null without hits),
  //  "exact_agreement"}], "suggested_threshold" (null when none meets the target)}.
  Json report(double target) const;

  // The counters, to be kept across a restart (CACHE_DIR/semantic/shadow.json, docs/semantic.md):
  // {"version": 1, "models": {model: {"misses", "pairs", "at": [[hits, agreed, exact,
  // cost_saved] x 20, thresholds 0.80..0.99]}}}. restore() replaces the counters with those of
  // a state() (the totals are the models' sums); Corrupt for anything else, counters unchanged.
  Json state() const;
  Result<void> restore(const Json& state);

 private:
  struct PerThreshold {
    uint64_t hits = 0, agreed = 0, exact = 0;
    double costSaved = 0;
  };
  struct Figures {
    uint64_t misses = 0, pairs = 0;
    std::array<PerThreshold, kThresholds> at{};
  };
  static Json figuresJson(const Figures& f, double target);

  double answerAgreement_;
  mutable std::mutex mutex_;
  std::map<std::string, Figures, std::less<>> models_;
  Figures all_;
};

}  // namespace llmcache::semantic
