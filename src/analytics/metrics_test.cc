#include "analytics/metrics.h"

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "analytics/test_events.h"

namespace llmcache::analytics {
namespace {

using namespace test;

// Every line of the exposition: a HELP/TYPE comment or `name{label="value",...} number`.
const std::regex kComment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
const std::regex kSample(
    R"re(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})? (-?[0-9.]+(?:e[-+]?[0-9]+)?|\+Inf|NaN)$)re");

// name{labels} -> value, after checking every line's syntax.
std::map<std::string, double> parse(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("#")) {
      EXPECT_TRUE(std::regex_match(line, kComment)) << line;
      continue;
    }
    std::smatch m;
    EXPECT_TRUE(std::regex_match(line, m, kSample)) << line;
    if (m.empty()) continue;
    const std::string key = m[1].str() + m[2].str();
    EXPECT_EQ(out.count(key), 0u) << "duplicate series " << key;
    out[key] = std::stod(m[3].str());
  }
  EXPECT_EQ(text.back(), '\n');
  return out;
}

cache::TierEvent tierEvent(cache::TierEvent::Kind kind, cache::TierId tier) {
  cache::TierEvent e{};
  e.kind = kind;
  e.tier = tier;
  e.cacheKey = "k";
  return e;
}

// `times` Failed events, as the TieredCache emits them.
void failTier(Metrics& metrics, cache::TierId tier, cache::TierEvent::Op op, int times = 1) {
  const Error error = makeError(Errc::Io, "disk full");
  cache::TierEvent e = tierEvent(cache::TierEvent::Kind::Failed, tier);
  e.op = op;
  e.error = &error;
  for (int i = 0; i < times; ++i) metrics.onTierEvent(e);
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& e : scriptedEvents()) metrics_.observe(e);
  }
  Metrics metrics_;
};

TEST(MetricsSemantic, SemanticHitsAreCountedApartAndAmongTheHits) {
  Metrics metrics;
  Event exact{};
  exact.outcome = Outcome::Hit;
  exact.tier = "memory";
  exact.model = "gpt-4o";
  exact.costSaved = 0.5;
  Event similar = exact;
  similar.semantic = true;
  similar.costSaved = 0.25;
  metrics.observe(exact);
  metrics.observe(similar);
  const auto v = parse(metrics.prometheusText());
  EXPECT_EQ(v.at("llmcache_hits_total"), 2);
  EXPECT_EQ(v.at("llmcache_semantic_hits_total"), 1);
  EXPECT_NEAR(v.at("llmcache_semantic_cost_saved_usd_total"), 0.25, 1e-12);
  EXPECT_NEAR(v.at("llmcache_cost_saved_usd_total"), 0.75, 1e-12);
  EXPECT_EQ(metrics.snapshot().getInt("semantic_hits"), 1);
}

TEST_F(MetricsTest, TheTextParsesAndAgreesWithTheEvents) {
  metrics_.setTier("memory", {.entries = 3, .bytes = 4096, .evictions = 1});
  metrics_.setTier("s3", {.entries = 10, .bytes = 1 << 20, .evictions = 0});
  failTier(metrics_, cache::TierId::S3, cache::TierEvent::Op::Lookup, 2);
  failTier(metrics_, cache::TierId::Disk, cache::TierEvent::Op::Insert, 3);
  metrics_.setOutboxPending(5);
  metrics_.setUpstreamErrors(4);
  metrics_.setWriterBacklog(7, 4096, 2);
  const auto v = parse(metrics_.prometheusText());
  EXPECT_EQ(v.at(R"(llmcache_requests_total{outcome="HIT",tier="memory",model="gpt-4o"})"),
            1);                                                                                // E2
  EXPECT_EQ(v.at(R"(llmcache_requests_total{outcome="HIT",tier="disk",model="gpt-4o"})"), 1);  // E3
  EXPECT_EQ(v.at(R"(llmcache_requests_total{outcome="HIT",tier="s3",model="claude-3"})"), 1);  // E9
  EXPECT_EQ(v.at(R"(llmcache_requests_total{outcome="MISS",tier="none",model="gpt-4o"})"),
            3);  // E1, E4, E10
  EXPECT_EQ(v.at(R"(llmcache_requests_total{outcome="INVALID",tier="none",model="none"})"),
            1);  // E8
  EXPECT_EQ(v.at(R"(llmcache_requests_total{outcome="BYPASS",tier="none",model="claude-3"})"), 1);
  double sum = 0;
  for (const auto& [k, n] : v)
    if (k.starts_with("llmcache_requests_total{")) sum += n;
  EXPECT_EQ(sum, 11);
  EXPECT_EQ(v.at("llmcache_hits_total"), 3);
  EXPECT_EQ(v.at("llmcache_misses_total"), 5);  // MISS x4 + REFRESH, as analytics counts them
  EXPECT_EQ(v.at("llmcache_coalesced_total"), 1);
  EXPECT_NEAR(v.at("llmcache_cost_saved_usd_total"), 0.25, 1e-12);
  EXPECT_NEAR(v.at("llmcache_cost_saved_coalesced_usd_total"), 0.20, 1e-12);
  EXPECT_EQ(v.at("llmcache_tokens_saved_total"), 350);
  EXPECT_EQ(v.at(R"(llmcache_tier_entries{tier="memory"})"), 3);
  EXPECT_EQ(v.at(R"(llmcache_tier_bytes{tier="s3"})"), 1 << 20);
  EXPECT_EQ(v.at(R"(llmcache_tier_evictions_total{tier="memory"})"), 1);
  EXPECT_EQ(v.at(R"(llmcache_tier_entries{tier="disk"})"), 0);
  EXPECT_EQ(v.at("llmcache_s3_errors_total"), 2);
  EXPECT_EQ(v.at("llmcache_s3_outbox_pending"), 5);
  EXPECT_EQ(v.at("llmcache_cache_writer_backlog_tasks"), 7);
  EXPECT_EQ(v.at("llmcache_cache_writer_backlog_bytes"), 4096);
  EXPECT_EQ(v.at("llmcache_cache_writer_skipped_promotions_total"), 2);
  EXPECT_EQ(v.at("llmcache_upstream_errors_total"), 4);
  EXPECT_EQ(v.at("llmcache_store_errors_total"), 3);
}

TEST_F(MetricsTest, TheDurationHistogramIsCumulativeWithTheRightBuckets) {
  const auto v = parse(metrics_.prometheusText());
  // HIT latencies: 2 ms, 3 ms, 40 ms
  EXPECT_EQ(v.at(R"(llmcache_request_duration_seconds_bucket{outcome="HIT",le="0.001"})"), 0);
  EXPECT_EQ(v.at(R"(llmcache_request_duration_seconds_bucket{outcome="HIT",le="0.0025"})"), 1);
  EXPECT_EQ(v.at(R"(llmcache_request_duration_seconds_bucket{outcome="HIT",le="0.005"})"), 2);
  EXPECT_EQ(v.at(R"(llmcache_request_duration_seconds_bucket{outcome="HIT",le="0.025"})"), 2);
  EXPECT_EQ(v.at(R"(llmcache_request_duration_seconds_bucket{outcome="HIT",le="0.05"})"), 3);
  EXPECT_EQ(v.at(R"(llmcache_request_duration_seconds_bucket{outcome="HIT",le="30"})"), 3);
  EXPECT_EQ(v.at(R"(llmcache_request_duration_seconds_bucket{outcome="HIT",le="+Inf"})"), 3);
  EXPECT_EQ(v.at(R"(llmcache_request_duration_seconds_count{outcome="HIT"})"), 3);
  EXPECT_NEAR(v.at(R"(llmcache_request_duration_seconds_sum{outcome="HIT"})"), 0.045, 1e-12);
  // MISS: 800, 1500, 400, 700 ms: all at or under 1 s except 1.5 s
  EXPECT_EQ(v.at(R"(llmcache_request_duration_seconds_bucket{outcome="MISS",le="1"})"), 3);
  EXPECT_EQ(v.at(R"(llmcache_request_duration_seconds_bucket{outcome="MISS",le="2.5"})"), 4);
  EXPECT_EQ(v.count(R"(llmcache_request_duration_seconds_count{outcome="UNCACHEABLE"})"),
            0u);  // never seen
}

TEST(Metrics, ModelLabelsAreBoundedAndEscaped) {
  Metrics metrics({.maxModels = 2});
  Event e;
  e.outcome = Outcome::Miss;
  for (std::string model : {"a\"b\\c\nd", "gpt-4o", "third", "fourth", "gpt-4o"}) {
    e.model = model;
    metrics.observe(e);
  }
  const std::string text = metrics.prometheusText();
  const auto v = parse(text);
  EXPECT_EQ(v.at(R"(llmcache_requests_total{outcome="MISS",tier="none",model="a\"b\\c\nd"})"), 1);
  EXPECT_EQ(v.at(R"(llmcache_requests_total{outcome="MISS",tier="none",model="gpt-4o"})"), 2);
  EXPECT_EQ(v.at(R"(llmcache_requests_total{outcome="MISS",tier="none",model="other"})"), 2);
  EXPECT_EQ(text.find("third"), std::string::npos);
}

TEST(Metrics, UnknownTiersGetAFixedLabelAndAValueOutsideTheEnumIsNotCounted) {
  Metrics metrics;
  Event e;
  e.outcome = Outcome::NoStore;
  e.tier = "tape";
  e.model = "m";
  metrics.observe(e);
  e.outcome = static_cast<Outcome>(kOutcomeCount);  // no such outcome: no label to count it by
  metrics.observe(e);
  const auto v = parse(metrics.prometheusText());
  EXPECT_EQ(v.at(R"(llmcache_requests_total{outcome="NO-STORE",tier="none",model="m"})"), 1);
  EXPECT_EQ(metrics.totals().requests, 1u);
  EXPECT_EQ(metrics.prometheusText().find("UNKNOWN"), std::string::npos);
}

TEST(Metrics, EveryOutcomeIsCountedUnderItsOwnLabelAndSplitByTheOutcomePredicates) {
  Metrics metrics;
  Event e;
  e.model = "m";
  for (const Outcome o : kOutcomes)
    for (size_t n = 0; n <= static_cast<size_t>(o); ++n) {  // Hit once, Miss twice, ...
      e.outcome = o;
      metrics.observe(e);
    }
  const auto v = parse(metrics.prometheusText());
  const MetricsTotals t = metrics.totals();
  uint64_t cacheable = 0, misses = 0;
  for (const Outcome o : kOutcomes) {
    const auto n = static_cast<size_t>(o) + 1;
    EXPECT_EQ(v.at("llmcache_requests_total{outcome=\"" + std::string(outcomeName(o)) +
                   "\",tier=\"none\",model=\"m\"}"),
              static_cast<double>(n))
        << outcomeName(o);
    EXPECT_EQ(t.byOutcome[static_cast<size_t>(o)], n);
    if (isCacheable(o)) cacheable += n;
    if (isMiss(o)) misses += n;
  }
  EXPECT_EQ(t.requests, 36u);           // 1 + 2 + ... + 8
  EXPECT_EQ(t.cacheable, 36u - 6 - 8);  // all but BYPASS (6) and INVALID (8)
  EXPECT_EQ(t.cacheable, cacheable);
  EXPECT_EQ(t.misses, 2u + 4 + 5 + 7);  // MISS, REFRESH, NO-STORE, UNCACHEABLE
  EXPECT_EQ(t.misses, misses);
  EXPECT_EQ(t.hits, 1u);
  EXPECT_EQ(t.coalesced, 3u);
  EXPECT_EQ(t.hits + t.misses + t.coalesced, t.cacheable);
  EXPECT_EQ(t.hitRate(), 1.0 / 22.0);
  EXPECT_EQ(v.at("llmcache_misses_total"), 18);
}

TEST(Metrics, FailedTierEventsAreCountedByTierAndOperation) {
  using Op = cache::TierEvent::Op;
  using cache::TierId;
  Metrics metrics;
  failTier(metrics, TierId::S3, Op::Lookup, 4);
  failTier(metrics, TierId::S3, Op::Insert, 2);
  failTier(metrics, TierId::S3, Op::Erase, 1);
  failTier(metrics, TierId::Disk, Op::Insert, 3);
  failTier(metrics, TierId::Disk, Op::Lookup, 5);
  failTier(metrics, TierId::Memory, Op::Insert, 1);
  // Other kinds are not failures.
  cache::Entry entry;
  for (auto kind : {cache::TierEvent::Kind::Stored, cache::TierEvent::Kind::Promoted,
                    cache::TierEvent::Kind::Erased}) {
    cache::TierEvent e = tierEvent(kind, TierId::S3);
    e.entry = &entry;
    metrics.onTierEvent(e);
  }

  const MetricsTotals t = metrics.totals();
  EXPECT_EQ(t.s3Errors(), 7u);     // every S3 failure, any operation
  EXPECT_EQ(t.storeErrors(), 6u);  // every Insert failure, any tier: s3 2, disk 3, memory 1
  EXPECT_EQ(t.tierErrors(TierId::Disk), 8u);
  EXPECT_EQ(t.tierErrorsByName(),
            (std::map<std::string, uint64_t>{
                {"memory", 1}, {"disk", 8}, {"s3", 7}, {"redis", 0}, {"cassette", 0}}));

  const auto v = parse(metrics.prometheusText());
  EXPECT_EQ(v.at("llmcache_s3_errors_total"), 7);
  EXPECT_EQ(v.at("llmcache_store_errors_total"), 6);
  EXPECT_EQ(v.at(R"(llmcache_tier_errors_total{tier="s3",op="lookup"})"), 4);
  EXPECT_EQ(v.at(R"(llmcache_tier_errors_total{tier="s3",op="insert"})"), 2);
  EXPECT_EQ(v.at(R"(llmcache_tier_errors_total{tier="s3",op="erase"})"), 1);
  EXPECT_EQ(v.at(R"(llmcache_tier_errors_total{tier="disk",op="insert"})"), 3);
  EXPECT_EQ(v.at(R"(llmcache_tier_errors_total{tier="disk",op="lookup"})"), 5);
  EXPECT_EQ(v.at(R"(llmcache_tier_errors_total{tier="memory",op="insert"})"), 1);
  EXPECT_EQ(v.at(R"(llmcache_tier_errors_total{tier="redis",op="erase"})"), 0);  // always present
  int series = 0;
  double sum = 0;
  for (const auto& [k, n] : v)
    if (k.starts_with("llmcache_tier_errors_total{")) {
      ++series;
      sum += n;
    }
  EXPECT_EQ(series, 15);  // 5 tiers x 3 operations
  EXPECT_EQ(sum, 16);

  const Json s = metrics.snapshot();
  EXPECT_EQ(s.getInt("s3_errors"), 7);
  EXPECT_EQ(s.getInt("store_errors"), 6);
  EXPECT_EQ(s.find("tier_errors")->find("disk")->getInt("lookup"), 5);
  EXPECT_EQ(s.find("tier_errors")->find("s3")->getInt("erase"), 1);
}

TEST(Metrics, TierEventsAreSafeFromManyThreads) {
  Metrics metrics;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back(
        [&] { failTier(metrics, cache::TierId::S3, cache::TierEvent::Op::Insert, 1000); });
  for (auto& th : threads) th.join();
  EXPECT_EQ(metrics.totals().s3Errors(), 4000u);
  EXPECT_EQ(metrics.totals().storeErrors(), 4000u);
}

TEST(Metrics, ObserveIsSafeFromManyThreads) {
  Metrics metrics({.maxModels = 4});
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      Event e;
      e.outcome = Outcome::Hit;
      e.tier = "memory";
      e.costSaved = 0.5;
      e.latencyMs = 1;
      for (int i = 0; i < 1000; ++i) {
        e.model = "model-" + std::to_string((t + i) % 6);  // 6 models race for 4 slots
        metrics.observe(e);
      }
    });
  for (auto& th : threads) th.join();
  const auto v = parse(metrics.prometheusText());
  EXPECT_EQ(v.at("llmcache_hits_total"), 8000);
  EXPECT_EQ(v.at("llmcache_cost_saved_usd_total"), 4000);
  double sum = 0;
  int series = 0;
  for (const auto& [k, n] : v)
    if (k.starts_with("llmcache_requests_total{")) {
      sum += n;
      ++series;
    }
  EXPECT_EQ(sum, 8000);
  EXPECT_EQ(series, 5);  // 4 named models and "other"
}

TEST_F(MetricsTest, TheSnapshotCarriesTheSameTotals) {
  metrics_.setTier("disk", {.entries = 7, .bytes = 700, .evictions = 2});
  const Json s = metrics_.snapshot();
  EXPECT_EQ(s.getInt("requests"), 11);
  EXPECT_EQ(s.getInt("cacheable"), 9);
  EXPECT_EQ(s.getInt("hits"), 3);
  EXPECT_EQ(s.getInt("misses"), 5);
  EXPECT_EQ(s.getInt("coalesced"), 1);
  EXPECT_EQ(s.getDouble("hit_rate"), 3.0 / 9.0);
  EXPECT_NEAR(s.getDouble("cost_saved_usd").value_or(0), 0.25, 1e-12);
  EXPECT_EQ(s.getInt("tokens_saved"), 350);
  EXPECT_EQ(s.find("by_model")->find("gpt-4o")->getInt("requests"), 7);
  EXPECT_EQ(s.find("tiers")->find("disk")->getInt("entries"), 7);
  EXPECT_EQ(s.find("latency")->getInt("count"), 11);
}

TEST_F(MetricsTest, TotalsAreTheSnapshotsAndTheTextsFigures) {
  const MetricsTotals t = metrics_.totals();
  EXPECT_EQ(t.requests, 11u);
  EXPECT_EQ(t.cacheable, 9u);  // E7 BYPASS and E8 INVALID are not
  EXPECT_EQ(t.hits, 3u);
  EXPECT_EQ(t.misses, 5u);
  EXPECT_EQ(t.coalesced, 1u);
  EXPECT_EQ(t.hitRate(), 3.0 / 9.0);
  const Json s = metrics_.snapshot();
  EXPECT_EQ(s.getInt("cacheable"), static_cast<int64_t>(t.cacheable));
  EXPECT_EQ(s.getDouble("hit_rate"), t.hitRate());
  const auto v = parse(metrics_.prometheusText());
  EXPECT_EQ(v.at("llmcache_hits_total"), static_cast<double>(t.hits));
  EXPECT_EQ(v.at("llmcache_misses_total"), static_cast<double>(t.misses));
  EXPECT_EQ(v.at("llmcache_coalesced_total"), static_cast<double>(t.coalesced));
}

TEST(Metrics, RedisSeriesAppearOnceSetAndFollowTheLatestValues) {
  Metrics metrics;
  // Without CACHE_REDIS_URL there is no Redis series at all.
  EXPECT_EQ(metrics.prometheusText().find("llmcache_redis_"), std::string::npos);
  metrics.setRedis({.up = true,
                    .subscribed = true,
                    .commands = 10,
                    .failures = 0,
                    .rejected = 0,
                    .connects = 2,
                    .written = 3,
                    .published = 3,
                    .received = 4,
                    .subscriptions = 1,
                    .leasesTaken = 2,
                    .leasesFound = 1});
  auto v = parse(metrics.prometheusText());
  EXPECT_EQ(v.at("llmcache_redis_up"), 1);
  EXPECT_EQ(v.at("llmcache_redis_subscribed"), 1);
  EXPECT_EQ(v.at("llmcache_redis_commands_total"), 10);
  EXPECT_EQ(v.at("llmcache_redis_connects_total"), 2);
  EXPECT_EQ(v.at("llmcache_redis_writes_total"), 3);
  EXPECT_EQ(v.at("llmcache_redis_writes_dropped_total"), 0);
  EXPECT_EQ(v.at("llmcache_redis_messages_received_total"), 4);
  EXPECT_EQ(v.at("llmcache_redis_leases_taken_total"), 2);
  EXPECT_EQ(v.at("llmcache_redis_leases_found_total"), 1);
  // Redis went away: set again from the client's totals.
  metrics.setRedis(
      {.up = false, .subscribed = false, .commands = 12, .failures = 1, .rejected = 1});
  v = parse(metrics.prometheusText());
  EXPECT_EQ(v.at("llmcache_redis_up"), 0);
  EXPECT_EQ(v.at("llmcache_redis_subscribed"), 0);
  EXPECT_EQ(v.at("llmcache_redis_failures_total"), 1);
  EXPECT_EQ(v.at("llmcache_redis_rejected_total"), 1);
}

}  // namespace
}  // namespace llmcache::analytics

namespace llmcache::analytics {
namespace {

TEST(Metrics, SizingGaugesAppearOncePointsAreSetAndPerDayOnlyWhenKnown) {
  Metrics m;
  EXPECT_EQ(m.prometheusText().find("llmcache_sizing_"), std::string::npos);
  m.setSizing(
      {{.tier = "memory", .scale = 2, .bytes = 512, .hitRate = 0.25, .costSavedPerDay = 3.5},
       {.tier = "disk", .scale = 0.25, .bytes = 64, .hitRate = 0.5, .costSavedPerDay = {}}});
  const std::string text = m.prometheusText();
  EXPECT_NE(text.find("# TYPE llmcache_sizing_hit_rate gauge\n"), std::string::npos);
  EXPECT_NE(text.find("llmcache_sizing_hit_rate{tier=\"memory\",scale=\"2\"} 0.25\n"),
            std::string::npos);
  EXPECT_NE(text.find("llmcache_sizing_hit_rate{tier=\"disk\",scale=\"0.25\"} 0.5\n"),
            std::string::npos);
  EXPECT_NE(text.find("llmcache_sizing_bytes{tier=\"memory\",scale=\"2\"} 512\n"),
            std::string::npos);
  EXPECT_NE(text.find("llmcache_sizing_cost_saved_usd_per_day{tier=\"memory\",scale=\"2\"} 3.5\n"),
            std::string::npos);
  EXPECT_EQ(text.find("llmcache_sizing_cost_saved_usd_per_day{tier=\"disk\""), std::string::npos);
  m.setSizing({});
  EXPECT_EQ(m.prometheusText().find("llmcache_sizing_"), std::string::npos);
}

}  // namespace
}  // namespace llmcache::analytics
