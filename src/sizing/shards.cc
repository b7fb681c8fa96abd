#include "sizing/shards.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>

namespace llmcache::sizing {

namespace {
uint64_t mix(uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

uint64_t thresholdOf(double rate) {
  if (!(rate > 0) || rate > 1) throw std::invalid_argument("sizing rate must be in (0, 1]");
  return std::max<uint64_t>(
      1, static_cast<uint64_t>(std::llround(rate * MissRatioEstimator::kHashSpace)));
}

constexpr double kSecondsPerDay = 86400;
}  // namespace

uint64_t keyHash(std::string_view key) { return mix(std::hash<std::string_view>{}(key)); }

MissRatioEstimator::MissRatioEstimator(SizingOptions options)
    : options_(std::move(options)), threshold_(thresholdOf(options_.rate)) {
  if (options_.maxKeys == 0) throw std::invalid_argument("sizing max keys must be at least 1");
  // Stamps run to 2x the keys before they are renumbered: amortized O(1) per reference.
  const size_t stamps = 2 * options_.maxKeys + 16;
  count_.assign(stamps + 1, 0);
  bytes_.assign(stamps + 1, 0);
  keys_.reserve(options_.maxKeys + 1);
  hits_.assign(options_.tiers.size(), {});
  saved_.assign(options_.tiers.size(), {});
}

void MissRatioEstimator::add(uint64_t stamp, int64_t count, int64_t bytes) {
  for (uint64_t i = stamp; i < count_.size(); i += i & (~i + 1)) {
    count_[i] += count;
    bytes_[i] += bytes;
  }
}

std::pair<int64_t, int64_t> MissRatioEstimator::prefix(uint64_t stamp) const {
  int64_t c = 0, b = 0;
  for (uint64_t i = stamp; i > 0; i -= i & (~i + 1)) {
    c += count_[i];
    b += bytes_[i];
  }
  return {c, b};
}

double MissRatioEstimator::currentRate() const {
  return static_cast<double>(threshold_.load(std::memory_order_relaxed)) / kHashSpace;
}

void MissRatioEstimator::reference(uint64_t hash, uint64_t bytes, double missCost, TimePoint now) {
  std::lock_guard lock(mutex_);
  if (!sampled(hash)) return;
  if (!first_) first_ = now;
  references_ += 1;
  cost_ += missCost;
  const double rate = currentRate();
  auto it = keys_.find(hash);
  if (it != keys_.end()) {
    bytes = it->second.bytes;
    // The distinct keys referenced since this one's last reference, and their bytes.
    const auto [allCount, allBytes] = prefix(nextStamp_ - 1);
    const auto [toCount, toBytes] = prefix(it->second.stamp);
    const double count = static_cast<double>(allCount - toCount) / rate + 1;
    const double size = static_cast<double>(allBytes - toBytes) / rate + static_cast<double>(bytes);
    for (size_t t = 0; t < options_.tiers.size(); ++t) {
      const TierBounds& b = options_.tiers[t];
      for (size_t s = 0; s < kScales.size(); ++s) {
        if ((b.entries == 0 || count <= kScales[s] * static_cast<double>(b.entries)) &&
            (b.bytes == 0 || size <= kScales[s] * static_cast<double>(b.bytes))) {
          hits_[t][s] += 1;
          saved_[t][s] += missCost;
        }
      }
    }
    add(it->second.stamp, -1, -static_cast<int64_t>(it->second.bytes));
  } else {
    it = keys_.emplace(hash, Key{0, 0}).first;
    byValue_.emplace(static_cast<uint32_t>(hash >> 32), hash);
  }
  if (nextStamp_ >= count_.size()) {
    compact();
  }
  it->second.stamp = nextStamp_++;
  it->second.bytes = bytes;
  add(it->second.stamp, 1, static_cast<int64_t>(bytes));
  if (keys_.size() > options_.maxKeys) shrink();
}

void MissRatioEstimator::compact() {
  std::vector<std::pair<uint64_t, Key*>> live;
  live.reserve(keys_.size());
  for (auto& [hash, key] : keys_)
    if (key.stamp != 0) live.emplace_back(key.stamp, &key);
  std::sort(live.begin(), live.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::fill(count_.begin(), count_.end(), 0);
  std::fill(bytes_.begin(), bytes_.end(), 0);
  nextStamp_ = 1;
  for (auto& [stamp, key] : live) {
    key->stamp = nextStamp_++;
    add(key->stamp, 1, static_cast<int64_t>(key->bytes));
  }
}

void MissRatioEstimator::shrink() {
  const uint64_t before = threshold_.load(std::memory_order_relaxed);
  uint64_t after = before;
  while (keys_.size() > options_.maxKeys && !byValue_.empty()) {
    after = byValue_.top().first;  // every key at or above it leaves
    while (!byValue_.empty() && byValue_.top().first >= after) {
      auto gone = keys_.find(byValue_.top().second);
      if (gone != keys_.end()) {
        if (gone->second.stamp != 0)
          add(gone->second.stamp, -1, -static_cast<int64_t>(gone->second.bytes));
        keys_.erase(gone);
      }
      byValue_.pop();
    }
  }
  if (after >= before) return;
  threshold_.store(after, std::memory_order_relaxed);
  const double factor = static_cast<double>(after) / static_cast<double>(before);
  references_ *= factor;
  cost_ *= factor;
  for (auto& tier : hits_)
    for (double& h : tier) h *= factor;
  for (auto& tier : saved_)
    for (double& s : tier) s *= factor;
}

size_t MissRatioEstimator::sampledKeys() const {
  std::lock_guard lock(mutex_);
  return keys_.size();
}

double MissRatioEstimator::rate() const { return currentRate(); }

SizingReport MissRatioEstimator::report(TimePoint now) const {
  uint64_t offered = 0, offeredNanoUsd = 0;
  for (const Shard& s : shards_) {
    offered += s.offered.load(std::memory_order_relaxed);
    offeredNanoUsd += s.offeredNanoUsd.load(std::memory_order_relaxed);
  }
  std::lock_guard lock(mutex_);
  SizingReport r;
  r.rate = currentRate();
  r.sampledKeys = keys_.size();
  r.maxKeys = options_.maxKeys;
  r.sampledReferences = references_;
  r.references = offered;
  r.costTotal = static_cast<double>(offeredNanoUsd) / 1e9;
  if (first_ && now > *first_)
    r.windowSeconds = std::chrono::duration<double>(now - *first_).count();
  // In sampled units at today's rate: what the sample should hold, and the SHARDS_adj
  // correction (what it holds beyond or short of that, counted as hits at every size).
  const double expected = static_cast<double>(r.references) * r.rate;
  const double expectedCost = r.costTotal * r.rate;
  const double extra = expected - references_;
  const double extraCost = expectedCost - cost_;
  for (size_t t = 0; t < options_.tiers.size(); ++t) {
    TierCurve curve{.bounds = options_.tiers[t], .points = {}};
    for (size_t s = 0; s < kScales.size(); ++s) {
      const double hits = std::clamp(hits_[t][s] + extra, 0.0, expected);
      const double saved = std::clamp(saved_[t][s] + extraCost, 0.0, expectedCost);
      curve.points.push_back({.scale = kScales[s],
                              .entries = kScales[s] * static_cast<double>(curve.bounds.entries),
                              .bytes = kScales[s] * static_cast<double>(curve.bounds.bytes),
                              .hitRate = expected > 0 ? hits / expected : 0,
                              .costSaved = saved / r.rate});
    }
    r.tiers.push_back(std::move(curve));
  }
  return r;
}

Json reportToJson(const SizingReport& r) {
  // Per day: the window's figures extrapolated linearly; null until a second has passed.
  auto perDay = [&](double v) {
    return r.windowSeconds >= 1 ? Json::number(v * kSecondsPerDay / r.windowSeconds) : Json::null();
  };
  Json out = Json::object();
  out.set("rate", Json::number(r.rate));
  out.set("sampled_keys", Json::integer(static_cast<int64_t>(r.sampledKeys)));
  out.set("max_keys", Json::integer(static_cast<int64_t>(r.maxKeys)));
  out.set("samples", Json::number(r.sampledReferences));
  out.set("references", Json::integer(static_cast<int64_t>(r.references)));
  out.set("window_seconds", Json::number(r.windowSeconds));
  out.set("cost_total", Json::number(r.costTotal));
  out.set("cost_total_per_day", perDay(r.costTotal));
  Json tiers = Json::object();
  for (const TierCurve& t : r.tiers) {
    Json tier = Json::object();
    tier.set("entries", Json::integer(static_cast<int64_t>(t.bounds.entries)));
    tier.set("bytes", Json::integer(static_cast<int64_t>(t.bounds.bytes)));
    Json points = Json::array();
    for (const CurvePoint& p : t.points) {
      Json point = Json::object();
      point.set("scale", Json::number(p.scale));
      point.set("entries", Json::integer(static_cast<int64_t>(std::llround(p.entries))));
      point.set("bytes", Json::integer(static_cast<int64_t>(std::llround(p.bytes))));
      point.set("hit_rate", Json::number(p.hitRate));
      point.set("cost_saved", Json::number(p.costSaved));
      point.set("cost_saved_per_day", perDay(p.costSaved));
      points.push(std::move(point));
    }
    tier.set("points", std::move(points));
    tiers.set(t.bounds.name, std::move(tier));
  }
  out.set("tiers", std::move(tiers));
  return out;
}

}  // namespace llmcache::sizing
