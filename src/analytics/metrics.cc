#include "analytics/metrics.h"

#include <charconv>
#include <cmath>
#include <map>

namespace llmcache::analytics {

namespace {

constexpr std::array<std::string_view, Metrics::kTiers> kTierNames = {"memory", "disk", "s3",
                                                                      "none"};
constexpr size_t kHitIdx = static_cast<size_t>(Outcome::Hit);
constexpr size_t kCoalescedIdx = static_cast<size_t>(Outcome::Coalesced);

static_assert(static_cast<size_t>(cache::TierEvent::Op::Lookup) == 0 &&
                  static_cast<size_t>(cache::TierEvent::Op::Insert) == 1 &&
                  static_cast<size_t>(cache::TierEvent::Op::Erase) == kTierOps - 1,
              "kTierOps and tierOpName follow TierEvent::Op");
constexpr size_t kInsertIdx = static_cast<size_t>(cache::TierEvent::Op::Insert);

std::string_view outcomeLabel(size_t o) { return outcomeName(static_cast<Outcome>(o)); }

size_t tierIndex(std::string_view t) {
  for (size_t i = 0; i + 1 < kTierNames.size(); ++i)
    if (kTierNames[i] == t) return i;
  return kTierNames.size() - 1;
}

// The request totals from per-outcome counts, with outcome.h's predicates.
void summarize(MetricsTotals& t) {
  for (const Outcome o : kOutcomes) {
    const uint64_t n = t.byOutcome[static_cast<size_t>(o)];
    t.requests += n;
    if (isCacheable(o)) t.cacheable += n;
    if (isMiss(o)) t.misses += n;
  }
  t.hits = t.byOutcome[kHitIdx];
  t.coalesced = t.byOutcome[kCoalescedIdx];
}

void addDouble(std::atomic<double>& a, double v) {
  double cur = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

std::string num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}
std::string num(uint64_t v) { return std::to_string(v); }

void help(std::string& out, std::string_view name, std::string_view type, std::string_view text) {
  out.append("# HELP ").append(name).append(" ").append(text).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

// A metric without labels: its HELP and TYPE lines, then its one sample (num() of a count or
// of a double).
template <class T>
void scalar(std::string& out, std::string_view name, std::string_view type, std::string_view text,
            T value) {
  help(out, name, type, text);
  out.append(name).append(" ").append(num(value)).append("\n");
}

}  // namespace

std::string_view tierOpName(cache::TierEvent::Op op) {
  switch (op) {
    case cache::TierEvent::Op::Lookup:
      return "lookup";
    case cache::TierEvent::Op::Insert:
      return "insert";
    case cache::TierEvent::Op::Erase:
      return "erase";
  }
  return "unknown";
}

double MetricsTotals::hitRate() const {
  return cacheable ? static_cast<double>(hits) / static_cast<double>(cacheable) : 0.0;
}

uint64_t MetricsTotals::tierErrors(cache::TierId tier) const {
  const size_t t = static_cast<size_t>(tier);
  if (t >= tierFailures.size()) return 0;
  uint64_t n = 0;
  for (const uint64_t v : tierFailures[t]) n += v;
  return n;
}

std::map<std::string, uint64_t> MetricsTotals::tierErrorsByName() const {
  std::map<std::string, uint64_t> out;
  for (size_t t = 0; t < cache::kTierCount; ++t) {
    const auto id = static_cast<cache::TierId>(t);
    out[std::string(cache::tierName(id))] = tierErrors(id);
  }
  return out;
}

uint64_t MetricsTotals::s3Errors() const { return tierErrors(cache::TierId::S3); }

uint64_t MetricsTotals::storeErrors() const {
  uint64_t n = 0;
  for (const auto& ops : tierFailures) n += ops[kInsertIdx];
  return n;
}

std::string escapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out.push_back(c);
  }
  return out;
}

Metrics::Metrics(MetricsOptions options)
    : options_(options),
      models_(options.maxModels + 1),
      modelNames_(new std::atomic<std::string*>[options.maxModels + 1]),
      requests_(new std::atomic<uint64_t>[kOutcomeCount * kTiers * (options.maxModels + 1)]) {
  for (size_t i = 0; i < models_; ++i) modelNames_[i].store(nullptr);
  for (size_t i = 0; i < kOutcomeCount * kTiers * models_; ++i) requests_[i].store(0);
}

Metrics::~Metrics() {
  for (size_t i = 0; i < models_; ++i) delete modelNames_[i].load();
}

size_t Metrics::modelSlot(std::string_view model) {
  if (model.empty()) model = "none";
  const size_t named = models_ - 1;  // the last slot is "other"
  for (size_t i = 0; i < named; ++i) {
    std::string* name = modelNames_[i].load(std::memory_order_acquire);
    if (!name) {
      // Claim the free slot; if another thread got there first, see whether it took our name.
      auto* mine = new std::string(model);
      std::string* expected = nullptr;
      if (modelNames_[i].compare_exchange_strong(expected, mine, std::memory_order_acq_rel))
        return i;
      delete mine;
      name = expected;
    }
    if (*name == model) return i;
  }
  return named;
}

std::string Metrics::modelLabel(size_t slot) const {
  if (slot + 1 == models_) return "other";
  const std::string* name = modelNames_[slot].load(std::memory_order_acquire);
  return name ? *name : std::string();
}

void Metrics::observe(const Event& e) {
  const auto o = static_cast<size_t>(e.outcome);
  if (o >= kOutcomeCount) return;  // not an Outcome (a cast gone wrong): no label to count it by
  const size_t t = tierIndex(e.tier);
  const size_t m = modelSlot(e.model);
  requests_[cell(o, t, m)].fetch_add(1, std::memory_order_relaxed);
  const double seconds = std::max(0.0, e.latencyMs) / 1000.0;
  size_t b = 0;
  while (b < kDurationBuckets.size() && seconds > kDurationBuckets[b]) ++b;
  buckets_[o][b].fetch_add(1, std::memory_order_relaxed);
  addDouble(durationSum_[o], seconds);
  if (o == kHitIdx) {
    addDouble(costSaved_, e.costSaved);
    tokensSaved_.fetch_add(static_cast<uint64_t>(std::max<int64_t>(0, e.tokensIn + e.tokensOut)),
                           std::memory_order_relaxed);
    if (e.semantic) {
      semanticHits_.fetch_add(1, std::memory_order_relaxed);
      addDouble(semanticCostSaved_, e.costSaved);
    }
  } else if (o == kCoalescedIdx) {
    addDouble(costSavedCoalesced_, e.costSaved);
  }
}

void Metrics::setTier(std::string_view tier, TierGauges g) {
  const size_t t = tierIndex(tier);
  if (t >= 3) return;
  tiers_[t][0].store(g.entries, std::memory_order_relaxed);
  tiers_[t][1].store(g.bytes, std::memory_order_relaxed);
  tiers_[t][2].store(g.evictions, std::memory_order_relaxed);
}
void Metrics::setOutboxPending(uint64_t v) { outboxPending_.store(v, std::memory_order_relaxed); }
void Metrics::setWriterBacklog(uint64_t tasks, uint64_t bytes, uint64_t skippedPromotions) {
  writerTasks_.store(tasks, std::memory_order_relaxed);
  writerBytes_.store(bytes, std::memory_order_relaxed);
  writerSkippedPromotions_.store(skippedPromotions, std::memory_order_relaxed);
}
void Metrics::setUpstreamErrors(uint64_t v) { upstreamErrors_.store(v, std::memory_order_relaxed); }

namespace {
// The llmcache_redis_* series, in RedisGauges' order (Metrics::redis_).
struct RedisSeries {
  const char* name;
  const char* type;
  const char* help;
};
constexpr std::array<RedisSeries, 14> kRedisSeries = {{
    {"llmcache_redis_up", "gauge",
     "1 when the last Redis connect or command succeeded, 0 after a failure (the circuit "
     "breaker is open or probing)."},
    {"llmcache_redis_subscribed", "gauge",
     "1 while the fleet channel's subscriber is connected and subscribed."},
    {"llmcache_redis_commands_total", "counter", "Redis commands asked for, any outcome."},
    {"llmcache_redis_failures_total", "counter",
     "Redis connection or I/O failures (each opens the circuit breaker)."},
    {"llmcache_redis_rejected_total", "counter",
     "Redis commands failed at once because the circuit breaker was open."},
    {"llmcache_redis_connects_total", "counter", "Connections opened to Redis, pooled or not."},
    {"llmcache_redis_writes_total", "counter", "Entries the Redis writer stored in Redis."},
    {"llmcache_redis_write_errors_total", "counter", "Entries the Redis writer failed to store."},
    {"llmcache_redis_writes_dropped_total", "counter",
     "Entries not queued for Redis because the writer's queue was full."},
    {"llmcache_redis_messages_published_total", "counter",
     "Messages this gateway published on the fleet channel."},
    {"llmcache_redis_messages_received_total", "counter",
     "Messages received on the fleet channel, this gateway's own included."},
    {"llmcache_redis_subscriptions_total", "counter",
     "Times the fleet channel's subscriber (re)subscribed."},
    {"llmcache_redis_leases_taken_total", "counter",
     "Fleet leases this gateway took (it called the provider for the fleet)."},
    {"llmcache_redis_leases_found_total", "counter",
     "Lease attempts that found another gateway's lease (this gateway waited for it)."},
}};
}  // namespace

void Metrics::setRedis(const RedisGauges& r) {
  const std::array<uint64_t, 14> v = {r.up,          r.subscribed, r.commands, r.failures,
                                      r.rejected,    r.connects,   r.written,  r.writeErrors,
                                      r.dropped,     r.published,  r.received, r.subscriptions,
                                      r.leasesTaken, r.leasesFound};
  for (size_t i = 0; i < v.size(); ++i) redis_[i].store(v[i], std::memory_order_relaxed);
  redisOn_.store(true, std::memory_order_release);
}

void Metrics::onTierEvent(const cache::TierEvent& event) {
  if (event.kind != cache::TierEvent::Kind::Failed) return;
  const auto t = static_cast<size_t>(event.tier);
  const auto op = static_cast<size_t>(event.op);
  if (t >= cache::kTierCount || op >= kTierOps) return;
  tierFailures_[t][op].fetch_add(1, std::memory_order_relaxed);
}

std::vector<uint64_t> Metrics::readRequests() const {
  std::vector<uint64_t> counts(kOutcomeCount * kTiers * models_);
  for (size_t i = 0; i < counts.size(); ++i)
    counts[i] = requests_[i].load(std::memory_order_relaxed);
  return counts;
}

MetricsTotals Metrics::totalsOf(const std::vector<uint64_t>& counts) const {
  MetricsTotals t;
  for (size_t o = 0; o < kOutcomeCount; ++o)
    for (size_t tier = 0; tier < kTiers; ++tier)
      for (size_t m = 0; m < models_; ++m) t.byOutcome[o] += counts[cell(o, tier, m)];
  summarize(t);
  for (size_t tier = 0; tier < cache::kTierCount; ++tier)
    for (size_t op = 0; op < kTierOps; ++op)
      t.tierFailures[tier][op] = tierFailures_[tier][op].load(std::memory_order_relaxed);
  return t;
}

MetricsTotals Metrics::totals() const { return totalsOf(readRequests()); }

std::string Metrics::prometheusText() const {
  std::string out;
  // One read of the request counters, for the series and the totals below alike.
  const std::vector<uint64_t> counts = readRequests();
  const MetricsTotals totals = totalsOf(counts);

  help(out, "llmcache_requests_total", "counter",
       "Requests answered, by outcome, answering tier and model.");
  for (size_t o = 0; o < kOutcomeCount; ++o)
    for (size_t t = 0; t < kTiers; ++t)
      for (size_t m = 0; m < models_; ++m) {
        const uint64_t n = counts[cell(o, t, m)];
        if (n == 0) continue;
        out.append("llmcache_requests_total{outcome=\"").append(outcomeLabel(o));
        out.append("\",tier=\"").append(kTierNames[t]);
        out.append("\",model=\"").append(escapeLabelValue(modelLabel(m))).append("\"} ");
        out.append(num(n)).append("\n");
      }
  scalar(out, "llmcache_hits_total", "counter", "Requests answered from a cache tier.",
         totals.hits);
  scalar(out, "llmcache_misses_total", "counter",
         "Cacheable requests sent upstream (MISS, REFRESH, NO-STORE, UNCACHEABLE).", totals.misses);
  scalar(out, "llmcache_coalesced_total", "counter",
         "Requests answered by an identical in-flight request's upstream call.", totals.coalesced);

  help(out, "llmcache_request_duration_seconds", "histogram",
       "Request latency at the gateway, by outcome.");
  for (size_t o = 0; o < kOutcomeCount; ++o) {
    std::array<uint64_t, kDurationBuckets.size() + 1> b{};
    uint64_t total = 0;
    for (size_t i = 0; i < b.size(); ++i)
      total += (b[i] = buckets_[o][i].load(std::memory_order_relaxed));
    if (total == 0) continue;
    const std::string label = std::string("outcome=\"") + std::string(outcomeLabel(o)) + "\"";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < b.size(); ++i) {
      cumulative += b[i];
      out.append("llmcache_request_duration_seconds_bucket{").append(label).append(",le=\"");
      out.append(i < kDurationBuckets.size() ? num(kDurationBuckets[i]) : std::string("+Inf"))
          .append("\"} ");
      out.append(num(cumulative)).append("\n");
    }
    out.append("llmcache_request_duration_seconds_sum{").append(label).append("} ");
    out.append(num(durationSum_[o].load(std::memory_order_relaxed))).append("\n");
    out.append("llmcache_request_duration_seconds_count{")
        .append(label)
        .append("} ")
        .append(num(cumulative))
        .append("\n");
  }

  scalar(out, "llmcache_upstream_errors_total", "counter",
         "Upstream calls that failed or answered with an error.", upstreamErrors_.load());
  scalar(out, "llmcache_store_errors_total", "counter",
         "Writes to a tier that failed, any tier (the answer was served, not kept there).",
         totals.storeErrors());
  help(out, "llmcache_tier_errors_total", "counter",
       "Tier operations that failed, by tier and operation (a failed lookup is a miss).");
  for (size_t t = 0; t < cache::kTierCount; ++t)
    for (size_t op = 0; op < kTierOps; ++op)
      out.append("llmcache_tier_errors_total{tier=\"")
          .append(cache::tierName(static_cast<cache::TierId>(t)))
          .append("\",op=\"")
          .append(tierOpName(static_cast<cache::TierEvent::Op>(op)))
          .append("\"} ")
          .append(num(totals.tierFailures[t][op]))
          .append("\n");
  const char* tierGauge[3][3] = {{"llmcache_tier_entries", "gauge", "Entries held by a tier."},
                                 {"llmcache_tier_bytes", "gauge", "Bytes held by a tier."},
                                 {"llmcache_tier_evictions_total", "counter",
                                  "Entries a tier evicted to stay within its bounds."}};
  for (size_t k = 0; k < 3; ++k) {
    help(out, tierGauge[k][0], tierGauge[k][1], tierGauge[k][2]);
    for (size_t t = 0; t < 3; ++t)
      out.append(tierGauge[k][0])
          .append("{tier=\"")
          .append(kTierNames[t])
          .append("\"} ")
          .append(num(tiers_[t][k].load(std::memory_order_relaxed)))
          .append("\n");
  }
  scalar(out, "llmcache_s3_errors_total", "counter",
         "S3 tier operations that failed (lookups, writes, erases).", totals.s3Errors());
  scalar(out, "llmcache_s3_outbox_pending", "gauge",
         "Entries waiting in the durable outbox to be written to S3.", outboxPending_.load());
  scalar(out, "llmcache_cache_writer_backlog_tasks", "gauge",
         "Writes and announcements queued for the cache's background writer.", writerTasks_.load());
  scalar(out, "llmcache_cache_writer_backlog_bytes", "gauge",
         "Bytes the cache's background writer queue holds (bounded by the writer's byte limit).",
         writerBytes_.load());
  help(out, "llmcache_cache_writer_skipped_promotions_total", "counter",
       "Promotions skipped or not announced because the background writer was too far behind.");
  out.append("llmcache_cache_writer_skipped_promotions_total ")
      .append(num(writerSkippedPromotions_.load()))
      .append("\n");
  scalar(out, "llmcache_cost_saved_usd_total", "counter",
         "US dollars cache hits saved (the stored answers' cost).", costSaved_.load());
  help(out, "llmcache_cost_saved_coalesced_usd_total", "counter",
       "US dollars coalesced requests saved by sharing one upstream call.");
  out.append("llmcache_cost_saved_coalesced_usd_total ")
      .append(num(costSavedCoalesced_.load()))
      .append("\n");
  scalar(out, "llmcache_tokens_saved_total", "counter",
         "Tokens (input + output) cache hits did not send upstream.", tokensSaved_.load());
  if (redisOn_.load(std::memory_order_acquire))
    for (size_t i = 0; i < kRedisSeries.size(); ++i)
      scalar(out, kRedisSeries[i].name, kRedisSeries[i].type, kRedisSeries[i].help,
             redis_[i].load(std::memory_order_relaxed));
  std::vector<SizingGauge> sizing;
  {
    std::lock_guard lock(sizingMutex_);
    sizing = sizing_;
  }
  if (!sizing.empty()) {
    auto series = [&](std::string_view name, std::string_view text, auto value) {
      help(out, name, "gauge", text);
      for (const SizingGauge& p : sizing) {
        const std::optional<double> v = value(p);
        if (!v) continue;
        out.append(name)
            .append("{tier=\"")
            .append(escapeLabelValue(p.tier))
            .append("\",scale=\"")
            .append(num(p.scale))
            .append("\"} ")
            .append(num(*v))
            .append("\n");
      }
    };
    series("llmcache_sizing_bytes", "A tier's size at this scale of its configured bytes.",
           [](const SizingGauge& p) { return std::optional<double>(p.bytes); });
    series("llmcache_sizing_hit_rate",
           "Estimated hit rate of a tier at this scale of its configured size (docs/sizing.md).",
           [](const SizingGauge& p) { return std::optional<double>(p.hitRate); });
    series("llmcache_sizing_cost_saved_usd_per_day",
           "Estimated US dollars a day a tier at this scale would save (docs/sizing.md).",
           [](const SizingGauge& p) { return p.costSavedPerDay; });
  }
  scalar(out, "llmcache_semantic_hits_total", "counter",
         "HITs served by similarity (semantic hits), also counted in requests_total's HITs.",
         semanticHits_.load());
  scalar(out, "llmcache_semantic_cost_saved_usd_total", "counter",
         "US dollars semantic hits saved (also in llmcache_cost_saved_usd_total).",
         semanticCostSaved_.load());
  return out;
}

void Metrics::setSizing(std::vector<SizingGauge> points) {
  std::lock_guard lock(sizingMutex_);
  sizing_ = std::move(points);
}

Json Metrics::snapshot() const {
  const std::vector<uint64_t> counts = readRequests();
  const MetricsTotals totals = totalsOf(counts);
  std::map<std::string, std::pair<uint64_t, uint64_t>> byModel;  // requests (cacheable), hits
  for (const Outcome outcome : kOutcomes) {
    if (!isCacheable(outcome)) continue;
    const auto o = static_cast<size_t>(outcome);
    for (size_t t = 0; t < kTiers; ++t)
      for (size_t m = 0; m < models_; ++m) {
        const uint64_t n = counts[cell(o, t, m)];
        if (n == 0) continue;
        auto& [req, hits] = byModel[modelLabel(m)];
        req += n;
        if (outcome == Outcome::Hit) hits += n;
      }
  }
  Json outcomes = Json::object();
  for (size_t o = 0; o < kOutcomeCount; ++o)
    if (totals.byOutcome[o])
      outcomes.set(std::string(outcomeLabel(o)),
                   Json::integer(static_cast<int64_t>(totals.byOutcome[o])));
  Json models = Json::object();
  for (const auto& [name, v] : byModel) {
    Json m = Json::object();
    m.set("requests", Json::integer(static_cast<int64_t>(v.first)))
        .set("hits", Json::integer(static_cast<int64_t>(v.second)))
        .set("hit_rate",
             Json::number(v.first ? static_cast<double>(v.second) / static_cast<double>(v.first)
                                  : 0.0));
    models.set(name, std::move(m));
  }
  uint64_t count = 0;
  double sum = 0;
  for (size_t o = 0; o < kOutcomeCount; ++o) {
    for (const auto& b : buckets_[o]) count += b.load(std::memory_order_relaxed);
    sum += durationSum_[o].load(std::memory_order_relaxed);
  }
  Json latency = Json::object();
  latency.set("count", Json::integer(static_cast<int64_t>(count)))
      .set("sum_seconds", Json::number(sum))
      .set("mean_seconds", Json::number(count ? sum / static_cast<double>(count) : 0.0));
  Json tiers = Json::object();
  for (size_t t = 0; t < 3; ++t) {
    Json g = Json::object();
    g.set("entries", Json::integer(static_cast<int64_t>(tiers_[t][0].load())))
        .set("bytes", Json::integer(static_cast<int64_t>(tiers_[t][1].load())))
        .set("evictions", Json::integer(static_cast<int64_t>(tiers_[t][2].load())));
    tiers.set(std::string(kTierNames[t]), std::move(g));
  }
  Json tierErrors = Json::object();
  for (size_t t = 0; t < cache::kTierCount; ++t) {
    Json ops = Json::object();
    for (size_t op = 0; op < kTierOps; ++op)
      ops.set(std::string(tierOpName(static_cast<cache::TierEvent::Op>(op))),
              Json::integer(static_cast<int64_t>(totals.tierFailures[t][op])));
    tierErrors.set(std::string(cache::tierName(static_cast<cache::TierId>(t))), std::move(ops));
  }
  Json o = Json::object();
  o.set("requests", Json::integer(static_cast<int64_t>(totals.requests)))
      .set("cacheable", Json::integer(static_cast<int64_t>(totals.cacheable)))
      .set("hits", Json::integer(static_cast<int64_t>(totals.hits)))
      .set("misses", Json::integer(static_cast<int64_t>(totals.misses)))
      .set("coalesced", Json::integer(static_cast<int64_t>(totals.coalesced)))
      .set("hit_rate", Json::number(totals.hitRate()))
      .set("by_outcome", std::move(outcomes))
      .set("by_model", std::move(models))
      .set("cost_saved_usd", Json::number(costSaved_.load()))
      .set("cost_saved_coalesced_usd", Json::number(costSavedCoalesced_.load()))
      .set("tokens_saved", Json::integer(static_cast<int64_t>(tokensSaved_.load())))
      .set("semantic_hits", Json::integer(static_cast<int64_t>(semanticHits_.load())))
      .set("latency", std::move(latency))
      .set("tiers", std::move(tiers))
      .set("s3_errors", Json::integer(static_cast<int64_t>(totals.s3Errors())))
      .set("s3_outbox_pending", Json::integer(static_cast<int64_t>(outboxPending_.load())))
      .set("upstream_errors", Json::integer(static_cast<int64_t>(upstreamErrors_.load())))
      .set("store_errors", Json::integer(static_cast<int64_t>(totals.storeErrors())))
      .set("tier_errors", std::move(tierErrors));
  return o;
}

}  // namespace llmcache::analytics
