#include "semantic/shadow.h"

#include <cmath>

#include "semantic/embeddings.h"

namespace llmcache::semantic {

namespace {
double round6(double v) { return std::round(v * 1e6) / 1e6; }
}  // namespace

void ShadowStats::observeMiss(std::string_view model) {
  std::lock_guard lock(mutex_);
  auto it = models_.find(model);
  if (it == models_.end()) it = models_.emplace(std::string(model), Figures{}).first;
  ++it->second.misses;
  ++all_.misses;
}

void ShadowStats::record(const ShadowPair& pair) {
  const bool agreed = agrees(pair);
  std::lock_guard lock(mutex_);
  auto it = models_.find(pair.model);
  if (it == models_.end()) it = models_.emplace(pair.model, Figures{}).first;
  for (Figures* f : {&it->second, &all_}) {
    ++f->pairs;
    for (int t = kLowest; t <= kHighest; ++t) {
      if (!meetsThreshold(pair.similarity, t / 100.0)) break;  // higher ones are not met either
      PerThreshold& p = f->at[static_cast<size_t>(t - kLowest)];
      ++p.hits;
      p.agreed += agreed ? 1 : 0;
      p.exact += pair.exactEqual ? 1 : 0;
      p.costSaved += pair.cost;
    }
  }
}

Json ShadowStats::figuresJson(const Figures& f, double target) {
  Json rows = Json::array();
  Json suggested = Json::null();
  for (int t = kLowest; t <= kHighest; ++t) {
    const PerThreshold& p = f.at[static_cast<size_t>(t - kLowest)];
    Json row = Json::object();
    row.set("threshold", Json::number(t / 100.0));
    row.set("extra_hits", Json::integer(static_cast<int64_t>(p.hits)));
    row.set("extra_hit_rate",
            Json::number(f.misses ? round6(static_cast<double>(p.hits) / f.misses) : 0.0));
    row.set("cost_saved", Json::number(round6(p.costSaved)));
    if (p.hits) {
      const double agreement = static_cast<double>(p.agreed) / p.hits;
      row.set("agreement", Json::number(round6(agreement)));
      row.set("exact_agreement", Json::number(round6(static_cast<double>(p.exact) / p.hits)));
      if (suggested.isNull() && agreement + 1e-9 >= target) suggested = Json::number(t / 100.0);
    } else {
      row.set("agreement", Json::null());
      row.set("exact_agreement", Json::null());
    }
    rows.push(std::move(row));
  }
  return Json::object()
      .set("misses", Json::integer(static_cast<int64_t>(f.misses)))
      .set("pairs", Json::integer(static_cast<int64_t>(f.pairs)))
      .set("thresholds", std::move(rows))
      .set("suggested_threshold", std::move(suggested));
}

Json ShadowStats::report(double target) const {
  std::lock_guard lock(mutex_);
  Json models = Json::object();
  for (const auto& [model, f] : models_) models.set(model, figuresJson(f, target));
  Json all = figuresJson(all_, target);
  Json suggested = *all.find("suggested_threshold");
  return Json::object()
      .set("target", Json::number(target))
      .set("answer_agreement", Json::number(answerAgreement_))
      .set("models", std::move(models))
      .set("all", std::move(all))
      .set("suggested_threshold", std::move(suggested));
}

Json ShadowStats::state() const {
  std::lock_guard lock(mutex_);
  Json models = Json::object();
  for (const auto& [model, f] : models_) {
    Json at = Json::array();
    for (const PerThreshold& p : f.at)
      at.push(Json::array()
                  .push(Json::integer(static_cast<int64_t>(p.hits)))
                  .push(Json::integer(static_cast<int64_t>(p.agreed)))
                  .push(Json::integer(static_cast<int64_t>(p.exact)))
                  .push(Json::number(p.costSaved)));
    models.set(model, Json::object()
                          .set("misses", Json::integer(static_cast<int64_t>(f.misses)))
                          .set("pairs", Json::integer(static_cast<int64_t>(f.pairs)))
                          .set("at", std::move(at)));
  }
  return Json::object().set("version", Json::integer(1)).set("models", std::move(models));
}

Result<void> ShadowStats::restore(const Json& state) {
  auto corrupt = [](std::string what) {
    return makeError(Errc::Corrupt, "semantic shadow figures: " + what);
  };
  if (!state.isObject() || state.getInt("version") != 1) return corrupt("not version 1");
  const Json* models = state.find("models");
  if (!models || !models->isObject()) return corrupt("no models");
  auto count = [](const Json& j) -> std::optional<uint64_t> {
    auto v = j.asInt64();
    if (!v || *v < 0) return std::nullopt;
    return static_cast<uint64_t>(*v);
  };
  std::map<std::string, Figures, std::less<>> read;
  Figures all;
  auto keys = models->keys();
  auto values = models->items();
  for (size_t i = 0; i < values.size(); ++i) {
    const Json& m = values[i];
    const Json* at = m.isObject() ? m.find("at") : nullptr;
    const Json* misses = m.isObject() ? m.find("misses") : nullptr;
    const Json* pairs = m.isObject() ? m.find("pairs") : nullptr;
    if (!at || !misses || !pairs || !at->isArray() || at->size() != kThresholds ||
        !count(*misses) || !count(*pairs))
      return corrupt("model '" + std::string(keys[static_cast<std::ptrdiff_t>(i)]) + "'");
    Figures f;
    f.misses = *count(*misses);
    f.pairs = *count(*pairs);
    for (size_t t = 0; t < kThresholds; ++t) {
      const Json& row = at->items()[t];
      if (!row.isArray() || row.size() != 4) return corrupt("a threshold's counters");
      auto hits = count(row.items()[0]), agreed = count(row.items()[1]),
           exact = count(row.items()[2]);
      auto cost = row.items()[3].asDouble();
      if (!hits || !agreed || !exact || !cost) return corrupt("a threshold's counters");
      f.at[t] = {*hits, *agreed, *exact, *cost};
      all.at[t].hits += *hits;
      all.at[t].agreed += *agreed;
      all.at[t].exact += *exact;
      all.at[t].costSaved += *cost;
    }
    all.misses += f.misses;
    all.pairs += f.pairs;
    read.emplace(std::string(keys[static_cast<std::ptrdiff_t>(i)]), f);
  }
  std::lock_guard lock(mutex_);
  models_ = std::move(read);
  all_ = all;
  return {};
}

}  // namespace llmcache::semantic
