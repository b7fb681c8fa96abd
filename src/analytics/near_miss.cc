#include "analytics/near_miss.h"

#include <algorithm>
#include <set>
#include <vector>

namespace llmcache::analytics {

void NearMissPatterns::add(std::string_view model, const MissExplanation& explanation) {
  std::set<std::pair<std::string, std::string>> seen;  // a field once per miss
  for (const FieldDifference& f : explanation.fields) seen.emplace(f.field, f.kind);
  std::lock_guard lock(mutex_);
  ++explained_;
  auto it = explainedByModel_.find(model);
  if (it == explainedByModel_.end()) {
    if (explainedByModel_.size() >= kMaxRows) return;
    it = explainedByModel_.emplace(std::string(model), 0).first;
  }
  ++it->second;
  for (const auto& [field, kind] : seen) {
    auto key = std::make_tuple(std::string(model), field, kind);
    auto row = rows_.find(key);
    if (row == rows_.end()) {
      if (rows_.size() >= kMaxRows) continue;
      row = rows_.emplace(std::move(key), Tally{}).first;
    }
    ++row->second.misses;
    row->second.costUsd += explanation.nearestCostUsd;
  }
}

Json NearMissPatterns::report(size_t limit) const {
  struct Row {
    const std::tuple<std::string, std::string, std::string>* key;
    Tally tally;
  };
  std::lock_guard lock(mutex_);
  std::vector<Row> rows;
  rows.reserve(rows_.size());
  for (const auto& [key, tally] : rows_) rows.push_back({&key, tally});
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.tally.misses != b.tally.misses) return a.tally.misses > b.tally.misses;
    return a.tally.costUsd > b.tally.costUsd;
  });
  if (rows.size() > limit) rows.resize(limit);
  Json fields = Json::array();
  for (const Row& r : rows) {
    const auto& [model, field, kind] = *r.key;
    const auto total = explainedByModel_.find(model);
    const double share = total == explainedByModel_.end() || total->second == 0
                             ? 0
                             : static_cast<double>(r.tally.misses) / total->second;
    Json o = Json::object();
    o.set("model", Json::string(model))
        .set("field", Json::string(field))
        .set("kind", Json::string(kind))
        .set("misses", Json::integer(static_cast<int64_t>(r.tally.misses)))
        .set("share", Json::number(share))
        .set("cost_usd", Json::number(r.tally.costUsd));
    fields.push(std::move(o));
  }
  Json out = Json::object();
  out.set("explained", Json::integer(static_cast<int64_t>(explained_)));
  out.set("fields", std::move(fields));
  return out;
}

}  // namespace llmcache::analytics
