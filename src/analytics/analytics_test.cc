#include "analytics/analytics.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "analytics/metrics.h"
#include "analytics/test_events.h"
#include "cache/test_entry.h"
#include "index/test_util.h"

namespace llmcache::analytics {
namespace {

using namespace test;

constexpr double kEps = 1e-12;

double num(const Json& j, std::string_view key) {
  const Json* v = j.find(key);
  EXPECT_TRUE(v && v->isNumber()) << key << " in " << toJson(j);
  return v && v->isNumber() ? v->asDouble().value_or(-1) : -1;
}
const Json& at(const Json& j, std::string_view key) {
  static const Json kNull;
  const Json* v = j.find(key);
  EXPECT_TRUE(v) << key << " missing in " << toJson(j);
  return v ? *v : kNull;
}
std::string str(const Json& j, std::string_view key) {
  return std::string(j.getString(key).value_or("<none>"));
}

class AnalyticsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Entries: kA (5 hits), kB (0), kC (2), kD (0) and one invalidated entry that must not count.
    addEntry("kA", "gpt-4o", kDay1 + 1, 5, 1000, 3000, 0.10);
    addEntry("kB", "gpt-4o", kDay1 + 2, 0, 500, 1500, 0.20);
    addEntry("kC", "claude-3", kDay1 + 3, 2, 2000, 4000, 0.05);
    addEntry("kD", "gpt-4o", kDay1 + 4, 0, 100, 100, 0.15);
    addEntry("kE", "gpt-4o", kDay1 + 5, 50, 9999, 9999, 1.0);
    ASSERT_EQ(index_->markInvalid({"id-kE"}).value(), 1u);
    // Signatures: kA's set at store time, kD's arrives with its MISS event (E10).
    const auto a = promptSignature(kPromptA);
    ASSERT_TRUE(index_->setPromptSignature("kA", a.simhash, a.preview).value());
    const auto b = promptSignature("What is 17 * 23");
    ASSERT_TRUE(index_->setPromptSignature("kB", b.simhash, b.preview).value());
    const auto c = promptSignature("Hello there, how are you today?");
    ASSERT_TRUE(index_->setPromptSignature("kC", c.simhash, c.preview).value());

    for (auto& e : scriptedEvents()) recorder_.record(e);  // no flush: analytics() must flush it
  }

  void addEntry(std::string key, std::string model, int64_t createdMs, int64_t hits, size_t stored,
                size_t raw, double costTotal, std::string tenant = "") {
    cache::Entry e = cache::test::makeTestEntry(key);
    e.tenant = std::move(tenant);
    e.cacheId = "id-" + key;
    e.model = std::move(model);
    e.responseTimestamp = fromUnixMillis(createdMs);
    e.lastAccessed = e.responseTimestamp;
    e.hitCount = hits;
    e.costTotal = costTotal;
    ASSERT_TRUE(index_->upsert(e, index::kTierMemory, stored, raw));
  }

  index::test::TempDir dir_;
  std::unique_ptr<index::Index> index_ = index::Index::open(dir_.path() / "index.sqlite").value();
  EventRecorder recorder_{*index_, {.flushInterval = std::chrono::hours(1), .batch = 1'000'000}};
  Analytics analytics_{*index_, &recorder_, {.minRequests = 3, .lowHitRate = 0.3}};
};

TEST_F(AnalyticsTest, HeadlineFiguresMatchTheHandCount) {
  const Json a = analytics_.analytics({}).value();
  // cacheable: E1-E6, E9-E11 (E7 BYPASS and E8 INVALID are not)
  EXPECT_EQ(num(a, "total_requests"), 9);
  EXPECT_EQ(num(a, "hits"), 3);              // E2, E3, E9
  EXPECT_EQ(num(a, "coalesced"), 1);         // E5
  EXPECT_EQ(num(a, "misses"), 5);            // E1, E4, E6, E10, E11 (REFRESH counts as a miss)
  EXPECT_EQ(num(a, "hit_rate"), 3.0 / 9.0);  // not rounded
  EXPECT_EQ(num(a, "coalesced_rate"), 1.0 / 9.0);
  EXPECT_EQ(num(a, "requests_all"), 11);
  EXPECT_EQ(num(a, "bypassed"), 1);
  EXPECT_EQ(num(a, "invalid"), 1);
  EXPECT_EQ(num(at(a, "outcomes"), "MISS"), 4);
  EXPECT_EQ(num(at(a, "outcomes"), "REFRESH"), 1);
  EXPECT_NEAR(num(a, "cost_spent"), 0.10 + 0.20 + 0.05 + 0.15 + 0.10,
              kEps);  // E7's .30 was a bypass
  const Json& saved = at(a, "cost_saved");
  EXPECT_NEAR(num(saved, "total"), 0.10 + 0.10 + 0.05,
              kEps);  // every hit's stored cost, no "hits - 1"
  EXPECT_NEAR(num(saved, "coalesced"), 0.20, kEps);
  EXPECT_NEAR(num(saved, "daily_average"), 0.25 / 2, kEps);  // two days had requests
  EXPECT_NEAR(num(saved, "per_request"), 0.25 / 3, kEps);    // per hit, as the seed (was / 9)
  EXPECT_EQ(num(a, "tokens_saved"), 150 + 150 + 50);
  EXPECT_NEAR(num(a, "avg_latency_saved"), (800.0 + 800 + 400) / 3, kEps);
  EXPECT_EQ(num(a, "semantic_hits"), 0);  // every scripted hit was served by its key
  EXPECT_EQ(num(a, "semantic_cost_saved"), 0);
}

TEST_F(AnalyticsTest, SemanticHitsAreCountedAmongTheHitsAndApart) {
  auto semantic = [](Event e) {
    e.semantic = true;
    return e;
  };
  // S1, S2: kA served by similarity to u1 from memory in E2's second; they merge with each other
  // but not with E2. S3: kC served by similarity on day 2.
  for (int i = 1; i <= 2; ++i)
    recorder_.record(semantic(saved(ev(kDay1 + 10 * kHour + 5 * kMinute + i * 200, "gpt-4o",
                                       "openai", Outcome::Hit, "kA", "u1", "code"),
                                    0.10, 800, "memory", 2, 100, 50)));
  recorder_.record(semantic(saved(ev(kDay2 + 9 * kHour + 10 * kMinute, "claude-3", "anthropic",
                                     Outcome::Hit, "kC", "u3", "chat"),
                                  0.05, 400, "disk", 30, 20, 30)));
  // Not a hit: a flag on another outcome counts nowhere.
  recorder_.record(semantic(cost(
      ev(kDay2 + 9 * kHour + 20 * kMinute, "gpt-4o", "openai", Outcome::Miss, "kF", "u1", "code"),
      0.30, 900, 10, 10)));

  const Json a = analytics_.analytics({}).value();
  int64_t rows = -1;
  ASSERT_TRUE(index_->query(
      "SELECT COUNT(*) FROM events", {},
      [&](const std::vector<index::SqlValue>& r) { rows = std::get<int64_t>(r[0]); }));
  EXPECT_EQ(rows, 11 + 3);           // S1 + S2 one row, S3, the miss
  EXPECT_EQ(num(a, "hits"), 3 + 3);  // still hits
  EXPECT_EQ(num(a, "semantic_hits"), 3);
  EXPECT_EQ(num(at(a, "outcomes"), "HIT"), 6);
  EXPECT_NEAR(num(at(a, "cost_saved"), "total"), 0.25 + 0.25, kEps);  // their savings included
  EXPECT_NEAR(num(a, "semantic_cost_saved"), 0.10 + 0.10 + 0.05, kEps);
  const Json& gpt = at(at(a, "by_model"), "gpt-4o");
  EXPECT_EQ(num(gpt, "hits"), 4);
  EXPECT_EQ(num(gpt, "semantic_hits"), 2);
  EXPECT_NEAR(num(gpt, "semantic_cost_saved"), 0.20, kEps);
  const Json& claude = at(at(a, "by_model"), "claude-3");
  EXPECT_EQ(num(claude, "hits"), 2);
  EXPECT_EQ(num(claude, "semantic_hits"), 1);
  EXPECT_NEAR(num(claude, "semantic_cost_saved"), 0.05, kEps);
  EXPECT_EQ(num(at(at(a, "by_platform"), "openai"), "semantic_hits"), 2);
  EXPECT_EQ(num(at(at(a, "by_platform"), "anthropic"), "semantic_hits"), 1);

  // A window counts its own: day 2 has S3 only.
  const Json d2 = analytics_.analytics({.from = fromUnixMillis(kDay2)}).value();
  EXPECT_EQ(num(d2, "semantic_hits"), 1);
  EXPECT_NEAR(num(d2, "semantic_cost_saved"), 0.05, kEps);
  EXPECT_EQ(num(at(at(d2, "by_model"), "gpt-4o"), "semantic_hits"), 0);
}

TEST_F(AnalyticsTest, MergedHitsCountAsTheRequestsTheyStandFor) {
  // Four more hits like E2 (kA by u1 from memory) within E2's second: the recorder writes the
  // five as one row of requests = 5 with their totals; every figure counts requests, not rows.
  for (int i = 1; i <= 4; ++i)
    recorder_.record(saved(ev(kDay1 + 10 * kHour + 5 * kMinute + i * 200, "gpt-4o", "openai",
                              Outcome::Hit, "kA", "u1", "code"),
                           0.10, 800, "memory", 2, 100, 50));
  const Json a = analytics_.analytics({}).value();
  int64_t rows = -1;
  ASSERT_TRUE(index_->query(
      "SELECT COUNT(*) FROM events", {},
      [&](const std::vector<index::SqlValue>& r) { rows = std::get<int64_t>(r[0]); }));
  EXPECT_EQ(rows, 11);  // the scripted eleven: the four merged into E2's row
  EXPECT_EQ(num(a, "total_requests"), 13);
  EXPECT_EQ(num(a, "hits"), 7);
  EXPECT_EQ(num(a, "requests_all"), 15);
  EXPECT_EQ(num(at(a, "outcomes"), "HIT"), 7);
  EXPECT_NEAR(num(at(a, "cost_saved"), "total"), 0.25 + 0.40, kEps);
  EXPECT_EQ(num(a, "tokens_saved"), 350 + 4 * 150);
  EXPECT_NEAR(num(a, "avg_latency_saved"), (800.0 * 6 + 400) / 7, kEps);
  const Json& gpt = at(at(a, "by_model"), "gpt-4o");
  EXPECT_EQ(num(gpt, "requests"), 11);
  EXPECT_EQ(num(gpt, "hits"), 6);
  const Json& day1 = at(at(a, "trends"), "daily").items()[0];
  EXPECT_EQ(num(day1, "requests"), 10);
  EXPECT_EQ(num(day1, "hits"), 6);

  Analytics loose{*index_, &recorder_, {.minRequests = 3, .lowHitRate = 0.9}};
  const Json p = loose.patterns({}).value();
  EXPECT_EQ(num(p, "total_requests"), 13);
  const Json& low = at(at(p, "optimization_details"), "low_hit_rate_models");
  ASSERT_GE(low.size(), 1u);
  const Json& m = low.items()[0];
  EXPECT_EQ(str(m, "model"), "gpt-4o");
  // the four merged hits repeat kA within a second (0 s each) besides the gaps 0, 5 min, 5 min,
  // 23 h 35 min: eight repeats, median 0 s, so the shortest TTL
  EXPECT_EQ(num(m, "repeated_requests"), 8);
  EXPECT_EQ(num(m, "median_repeat_interval_seconds"), 0);
  EXPECT_EQ(num(m, "suggested_ttl_seconds"), 1);

  // The same in the seed's shape (issue 16): a list of items with type, impact, description and
  // model, current_hit_rate, suggested_ttl for a TTL item.
  const Json& list = at(p, "optimization_opportunities");
  ASSERT_TRUE(list.isArray()) << toJson(list);
  const Json* ttl = nullptr;
  for (const Json& item : list.items())
    if (str(item, "type") == "increase_ttl" && str(item, "model") == "gpt-4o") ttl = &item;
  ASSERT_NE(ttl, nullptr) << toJson(list);
  EXPECT_EQ(num(*ttl, "suggested_ttl"), 1);
  EXPECT_NEAR(num(*ttl, "current_hit_rate"), num(m, "hit_rate"), kEps);
  EXPECT_TRUE(str(*ttl, "impact") == "high" || str(*ttl, "impact") == "medium" ||
              str(*ttl, "impact") == "low");
  EXPECT_NE(str(*ttl, "description").find("gpt-4o"), std::string::npos);
}

// The live counters (Metrics: /metrics, statistics.json and the alert mails) and the dashboard's
// SQL count the same requests the same way: both come from outcome.h's predicates.
TEST_F(AnalyticsTest, MetricsTotalsAreTheAnalyticsFiguresOfTheSameEvents) {
  std::vector<Event> events = scriptedEvents();
  for (int i = 1; i <= 4; ++i) {  // merged into one row by the recorder: still four requests
    Event e = saved(ev(kDay1 + 10 * kHour + 5 * kMinute + i * 200, "gpt-4o", "openai", Outcome::Hit,
                       "kA", "u1", "code"),
                    0.10, 800, "memory", 2, 100, 50);
    recorder_.record(e);
    events.push_back(e);
  }
  Metrics metrics;
  for (const Event& e : events) metrics.observe(e);
  const MetricsTotals t = metrics.totals();
  const Json a = analytics_.analytics({}).value();
  EXPECT_EQ(num(a, "total_requests"), static_cast<double>(t.cacheable));
  EXPECT_EQ(num(a, "hits"), static_cast<double>(t.hits));
  EXPECT_EQ(num(a, "misses"), static_cast<double>(t.misses));
  EXPECT_EQ(num(a, "coalesced"), static_cast<double>(t.coalesced));
  EXPECT_EQ(num(a, "requests_all"), static_cast<double>(t.requests));
  EXPECT_EQ(num(a, "hit_rate"), t.hitRate());  // the same division of the same integers
  EXPECT_EQ(t.hitRate(), 7.0 / 13.0);
  for (const Outcome o : kOutcomes) {
    const Json* n = at(a, "outcomes").find(outcomeName(o));
    EXPECT_EQ(n ? n->asDouble().value_or(-1) : 0.0,
              static_cast<double>(t.byOutcome[static_cast<size_t>(o)]))
        << outcomeName(o);
  }
  EXPECT_EQ(num(a, "bypassed"),
            static_cast<double>(t.byOutcome[static_cast<size_t>(Outcome::Bypass)]));
  EXPECT_EQ(num(a, "invalid"),
            static_cast<double>(t.byOutcome[static_cast<size_t>(Outcome::Invalid)]));
}

TEST_F(AnalyticsTest, StorageEfficiencyAndHotAndColdKeysComeFromTheValidEntries) {
  const Json a = analytics_.analytics({}).value();
  const Json& s = at(a, "storage_efficiency");
  EXPECT_EQ(num(s, "entries"), 4);
  EXPECT_EQ(num(s, "bytes_stored"), 1000 + 500 + 2000 + 100);
  EXPECT_EQ(num(s, "bytes_raw"), 3000 + 1500 + 4000 + 100);
  EXPECT_NEAR(num(s, "ratio"), 8600.0 / 3600.0, kEps);
  EXPECT_NEAR(num(s, "hits_per_stored_mb"), 7.0 / (3600.0 / 1048576.0), 1e-9);

  const Json& hot = at(a, "hot_keys");
  ASSERT_EQ(hot.size(), 2u);  // only keys with hits; kE is invalid
  EXPECT_EQ(str(hot.items()[0], "cache_key"), "kA");
  EXPECT_EQ(num(hot.items()[0], "hits"), 5);
  EXPECT_NEAR(num(hot.items()[0], "cost_saved"), 0.5, kEps);
  EXPECT_EQ(str(hot.items()[1], "cache_key"), "kC");
  EXPECT_EQ(num(hot.items()[1], "hits"), 2);

  const Json& cold = at(a, "cold_keys");
  ASSERT_EQ(cold.size(), 4u);
  EXPECT_EQ(str(cold.items()[0], "cache_key"), "kB");  // 0 hits, older than kD
  EXPECT_EQ(str(cold.items()[1], "cache_key"), "kD");
  EXPECT_EQ(str(cold.items()[2], "cache_key"), "kC");
  EXPECT_EQ(str(cold.items()[3], "cache_key"), "kA");
}

TEST_F(AnalyticsTest, ByModelAndByPlatformCountCacheableRequests) {
  const Json a = analytics_.analytics({}).value();
  const Json& m = at(a, "by_model");
  ASSERT_EQ(m.keys(), (std::vector<std::string>{"gpt-4o", "claude-3"}));  // most requests first
  const Json& g = at(m, "gpt-4o");
  EXPECT_EQ(num(g, "requests"), 7);  // E1-E5, E10, E11
  EXPECT_EQ(num(g, "hits"), 2);
  EXPECT_EQ(num(g, "hit_rate"), 2.0 / 7.0);
  EXPECT_NEAR(num(g, "cost"), 0.10 + 0.20 + 0.15 + 0.10, kEps);
  EXPECT_NEAR(num(g, "cost_saved"), 0.20, kEps);
  const Json& c = at(m, "claude-3");
  EXPECT_EQ(num(c, "requests"), 2);  // E6, E9; E7 was a bypass
  EXPECT_EQ(num(c, "hits"), 1);
  EXPECT_EQ(num(c, "hit_rate"), 0.5);
  EXPECT_NEAR(num(c, "cost"), 0.05, kEps);
  EXPECT_NEAR(num(c, "cost_saved"), 0.05, kEps);
  const Json& p = at(a, "by_platform");
  ASSERT_EQ(p.keys(), (std::vector<std::string>{"openai", "anthropic"}));
  EXPECT_EQ(num(at(p, "openai"), "requests"), 7);
  EXPECT_EQ(num(at(p, "anthropic"), "hits"), 1);
}

TEST_F(AnalyticsTest, TrendsBucketByUtcHourAndDay) {
  const Json a = analytics_.analytics({}).value();
  const Json& hourly = at(at(a, "trends"), "hourly");
  ASSERT_EQ(hourly.size(), 3u);
  EXPECT_EQ(str(hourly.items()[0], "hour"), "2026-01-01T10:00:00.000Z");
  EXPECT_EQ(num(hourly.items()[0], "requests"), 5);
  EXPECT_EQ(num(hourly.items()[0], "hits"), 2);
  EXPECT_EQ(num(hourly.items()[0], "hit_rate"), 0.4);
  EXPECT_NEAR(num(hourly.items()[0], "cost_saved"), 0.20, kEps);
  EXPECT_EQ(str(hourly.items()[1], "hour"), "2026-01-01T11:00:00.000Z");
  EXPECT_EQ(num(hourly.items()[1], "requests"), 1);  // E6 only: E7, E8 are not cacheable
  EXPECT_EQ(num(hourly.items()[1], "hit_rate"), 0);
  EXPECT_EQ(str(hourly.items()[2], "hour"), "2026-01-02T09:00:00.000Z");
  EXPECT_EQ(num(hourly.items()[2], "requests"), 3);
  EXPECT_EQ(num(hourly.items()[2], "hits"), 1);
  const Json& daily = at(at(a, "trends"), "daily");
  ASSERT_EQ(daily.size(), 2u);
  EXPECT_EQ(str(daily.items()[0], "day"), "2026-01-01");
  EXPECT_EQ(num(daily.items()[0], "requests"), 6);
  EXPECT_EQ(num(daily.items()[0], "hits"), 2);
  EXPECT_EQ(str(daily.items()[1], "day"), "2026-01-02");
  EXPECT_EQ(num(daily.items()[1], "requests"), 3);
  EXPECT_NEAR(num(daily.items()[1], "cost_saved"), 0.05, kEps);
}

TEST_F(AnalyticsTest, AWindowCountsOnlyItsEvents) {
  const Json a = analytics_
                     .analytics({.from = fromUnixMillis(kDay2),
                                 .to = fromUnixMillis(kDay2 + 9 * kHour + 31 * kMinute)})
                     .value();
  EXPECT_EQ(str(at(a, "window"), "from"), "2026-01-02T00:00:00.000Z");
  EXPECT_EQ(num(a, "total_requests"), 2);  // E9, E10 (E11 is after `to`)
  EXPECT_EQ(num(a, "hits"), 1);
  EXPECT_EQ(num(a, "hit_rate"), 0.5);
  EXPECT_NEAR(num(at(a, "cost_saved"), "daily_average"), 0.05, kEps);
  EXPECT_NEAR(num(a, "cost_spent"), 0.15, kEps);
}

TEST_F(AnalyticsTest, NoEventsGiveZerosNotErrors) {
  const Json a = analytics_.analytics({.from = fromUnixMillis(0), .to = fromUnixMillis(1)}).value();
  EXPECT_EQ(num(a, "total_requests"), 0);
  EXPECT_EQ(num(a, "hit_rate"), 0);
  EXPECT_EQ(num(at(a, "cost_saved"), "daily_average"), 0);
  EXPECT_EQ(at(at(a, "trends"), "hourly").size(), 0u);
  const Json p = analytics_.patterns({.from = fromUnixMillis(0), .to = fromUnixMillis(1)}).value();
  EXPECT_EQ(at(at(p, "temporal"), "peak_hours").size(), 0u);
  EXPECT_EQ(at(at(p, "temporal"), "weekly_patterns").size(), 7u);
}

TEST_F(AnalyticsTest, TemporalPatternsRankHoursAndWeekdays) {
  const Json p = analytics_.patterns({}).value();
  EXPECT_EQ(num(p, "total_requests"), 9);
  const Json& t = at(p, "temporal");
  const Json& peak = at(t, "peak_hours");
  ASSERT_EQ(peak.size(), 3u);
  EXPECT_EQ(num(peak.items()[0], "hour"), 10);  // 5 requests
  EXPECT_EQ(num(peak.items()[0], "requests"), 5);
  EXPECT_EQ(num(peak.items()[1], "hour"), 9);   // 3
  EXPECT_EQ(num(peak.items()[2], "hour"), 11);  // 1
  const Json& low = at(t, "low_activity");
  ASSERT_EQ(low.size(), 3u);
  EXPECT_EQ(num(low.items()[0], "hour"), 0);  // hours without requests count, earliest first
  EXPECT_EQ(num(low.items()[1], "hour"), 1);
  EXPECT_EQ(num(low.items()[2], "hour"), 2);
  EXPECT_EQ(num(low.items()[0], "requests"), 0);
  const Json& best = at(t, "best_hit_rate_hours");
  ASSERT_EQ(best.size(), 2u);  // only hours with >= 3 requests: 10 (2/5) and 9 (1/3)
  EXPECT_EQ(num(best.items()[0], "hour"), 10);
  EXPECT_EQ(num(best.items()[0], "hit_rate"), 0.4);
  EXPECT_EQ(num(best.items()[1], "hour"), 9);
  EXPECT_EQ(num(best.items()[1], "hit_rate"), 1.0 / 3.0);
  const Json& week = at(t, "weekly_patterns");
  ASSERT_EQ(week.size(), 7u);
  EXPECT_EQ(str(week.items()[3], "name"), "Thursday");  // 2026-01-01
  EXPECT_EQ(num(week.items()[3], "requests"), 6);
  EXPECT_EQ(num(week.items()[3], "hits"), 2);
  EXPECT_EQ(num(week.items()[4], "requests"), 3);  // Friday
  EXPECT_EQ(num(week.items()[4], "hit_rate"), 1.0 / 3.0);
  EXPECT_EQ(num(week.items()[0], "requests"), 0);
}

TEST_F(AnalyticsTest, TheHeatMapCountsRequestsAndHitsPerWeekdayAndHour) {
  const Json p = analytics_.patterns({}).value();
  const Json& heat = at(at(p, "temporal"), "heatmap");
  // Cacheable events only, cells with requests only, by weekday (0 = Monday) then hour:
  // Thursday 10:00 E1-E5 (2 hits), Thursday 11:00 E6, Friday 09:00 E9-E11 (1 hit).
  const std::vector<std::array<int64_t, 4>> expected = {{3, 10, 5, 2}, {3, 11, 1, 0}, {4, 9, 3, 1}};
  ASSERT_EQ(heat.size(), expected.size()) << toJson(heat);
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(heat.items()[i].size(), 4u);
    for (size_t j = 0; j < 4; ++j)
      EXPECT_EQ(heat.items()[i].items()[j].asInt64().value_or(-1), expected[i][j])
          << "cell " << i << " field " << j;
  }
  // A window without events has an empty matrix, not a missing one.
  const Json none =
      analytics_.patterns({fromUnixMillis(kDay1), fromUnixMillis(kDay1 + kHour)}).value();
  EXPECT_EQ(at(at(none, "temporal"), "heatmap").size(), 0u);
}

TEST_F(AnalyticsTest, ModelCategoryAndCallerPatterns) {
  const Json p = analytics_.patterns({}).value();
  const Json& models = at(p, "model_distribution");
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(str(models.items()[0], "model"), "gpt-4o");
  EXPECT_EQ(num(models.items()[0], "share"), 7.0 / 9.0);
  EXPECT_EQ(str(models.items()[1], "model"), "claude-3");
  EXPECT_EQ(num(models.items()[1], "share"), 2.0 / 9.0);

  const Json& cats = at(p, "prompt_categories");
  ASSERT_EQ(cats.size(), 4u);
  EXPECT_EQ(str(cats.items()[0], "category"), "code");  // E1, E2, E3, E11
  EXPECT_EQ(num(cats.items()[0], "requests"), 4);
  EXPECT_EQ(num(cats.items()[0], "hit_rate"), 0.5);
  EXPECT_EQ(str(cats.items()[1], "category"), "chat");  // 2, ties by name
  EXPECT_EQ(num(cats.items()[1], "hits"), 1);
  EXPECT_EQ(str(cats.items()[2], "category"), "math");
  EXPECT_EQ(num(cats.items()[2], "requests"), 2);
  EXPECT_EQ(str(cats.items()[3], "category"), "translation");

  const Json& users = at(p, "user_patterns");
  ASSERT_EQ(users.size(), 3u);
  EXPECT_EQ(str(users.items()[0], "caller_hash"), "u1");  // E1, E2, E5, E6, E10, E11
  EXPECT_EQ(num(users.items()[0], "requests"), 6);
  EXPECT_EQ(num(users.items()[0], "hits"), 1);
  EXPECT_EQ(num(users.items()[0], "hit_rate"), 1.0 / 6.0);
  EXPECT_EQ(str(users.items()[0], "top_model"), "gpt-4o");
  EXPECT_EQ(str(users.items()[1], "caller_hash"), "u2");
  EXPECT_EQ(num(users.items()[1], "requests"), 2);
  EXPECT_EQ(str(users.items()[2], "caller_hash"), "u3");
  EXPECT_EQ(str(users.items()[2], "top_model"), "claude-3");
}

TEST_F(AnalyticsTest, NearDuplicatePromptsAreGroupedWithTheirSavings) {
  const Json p = analytics_.patterns({}).value();
  const Json& groups = at(at(p, "optimization_details"), "near_duplicates");
  ASSERT_EQ(groups.size(), 1u);  // kA ~ kD; kB and kC are unlike anything
  const Json& g = groups.items()[0];
  EXPECT_EQ(str(g, "model"), "gpt-4o");
  ASSERT_EQ(at(g, "cache_keys").size(), 2u);
  EXPECT_EQ(at(g, "cache_keys").items()[0].text(), "kA");
  EXPECT_EQ(at(g, "cache_keys").items()[1].text(), "kD");
  EXPECT_EQ(at(g, "previews").items()[1].text(), promptSignature(kPromptD).preview);  // from E10
  EXPECT_EQ(num(g, "max_distance"), hammingDistance(simhash(kPromptA), simhash(kPromptD)));
  EXPECT_EQ(num(g, "misses"), 2);  // E1 (kA), E10 (kD); E11 is a REFRESH
  EXPECT_NEAR(num(g, "miss_cost"), 0.25, kEps);
  EXPECT_NEAR(num(g, "potential_savings"), 0.15, kEps);  // every miss beyond the first (E1)
}

TEST_F(AnalyticsTest, NearDuplicatesAreNeverPairedAcrossTenants) {
  // Two tenants send the very same prompt: their entries can never share a key (the tenant is the
  // key's scope), so no group pairs them. Within one tenant a near duplicate still groups.
  const char* const question =
      "Please answer question 5 of the onboarding quiz about our refund policy for new customers";
  const char* const nearQuestion =
      "Please answer question 6 of the onboarding quiz about our refund policy for new customers";
  ASSERT_LE(hammingDistance(simhash(question), simhash(nearQuestion)), kNearDuplicateBits);
  addEntry("kQ1", "gpt-4o", kDay1 + 6, 0, 100, 100, 0.01, "acme");
  addEntry("kQ2", "gpt-4o", kDay1 + 7, 0, 100, 100, 0.01, "globex");
  for (const char* key : {"kQ1", "kQ2"}) {
    const auto sig = promptSignature(question);
    ASSERT_TRUE(index_->setPromptSignature(key, sig.simhash, sig.preview).value());
  }
  Json p = analytics_.patterns({}).value();
  const Json* groups = &at(at(p, "optimization_details"), "near_duplicates");
  ASSERT_EQ(groups->size(), 1u) << toJson(*groups);  // only kA ~ kD, as before
  EXPECT_EQ(str(groups->items()[0], "tenant"), "");
  EXPECT_EQ(at(groups->items()[0], "cache_keys").items()[0].text(), "kA");

  addEntry("kQ3", "gpt-4o", kDay1 + 8, 0, 100, 100, 0.01, "acme");
  const auto near = promptSignature(nearQuestion);
  ASSERT_TRUE(index_->setPromptSignature("kQ3", near.simhash, near.preview).value());
  p = analytics_.patterns({}).value();
  groups = &at(at(p, "optimization_details"), "near_duplicates");
  ASSERT_EQ(groups->size(), 2u) << toJson(*groups);
  bool acme = false;
  for (const Json& g : groups->items()) {
    std::vector<std::string> keys;
    for (const Json& k : at(g, "cache_keys").items()) keys.emplace_back(k.text());
    EXPECT_EQ(std::count(keys.begin(), keys.end(), "kQ2"), 0) << toJson(g);  // globex: alone
    if (str(g, "tenant") == "acme") {
      acme = true;
      EXPECT_EQ(keys, (std::vector<std::string>{"kQ1", "kQ3"}));
    }
  }
  EXPECT_TRUE(acme);
}

// What `seed` normalization would have merged, per tenant. Every figure below is counted by hand
// from this list (times on day 2 from 12:00, one minute apart; H1.. are seed hashes):
//   S1  t1 faq MISS     f1 H1 .10   first of H1 in t1: paid either way
//   S2  t1 faq MISS     f2 H1 .20   counted: S1 (f1) came first with another key
//   S3  t1 faq HIT      f1 H1       a hit, not a miss
//   S4  t1 ""  MISS     g1 H2 .05   first of H2
//   S5  t1 ""  NO-STORE g2 H2 .07   not a MISS
//   S6  t1 ""  MISS     g3 H2 .30   counted: S4 (g1)
//   S7  t2 ""  MISS     h1 H1 .40   t1's H1 requests are another tenant's: not counted
//   S8  t2 ""  MISS     h2 H1 .60   counted: S7 (h1)
//   S9  t2 ""  MISS     h3 ?  1.00  no seed hash (a gateway that does not give it): never counted
//   S10 t2 ""  NO-STORE h4 H3 .80   left no answer in the cache ...
//   S11 t2 ""  MISS     h5 H3 .90   ... so nothing earlier to merge with: not counted
//   S12 t2 ""  MISS     h6 H4 .25   first of H4
//   S13 t2 ""  MISS     h6 H4 .25   the same key again (expired): `seed` changes nothing
// t1: S2 + S6 = 2 requests, $0.50 (faq: 1, $0.20; no namespace: 1, $0.30).
// t2: S8 = 1 request, $0.60. t2 first (more saved).
std::vector<Event> seedEvents() {
  struct S {
    const char* tenant;
    const char* ns;
    Outcome outcome;
    const char* key;
    uint64_t seed;
    double cost;
  };
  const std::vector<S> script = {
      {"t1", "faq", Outcome::Miss, "f1", 1, 0.10}, {"t1", "faq", Outcome::Miss, "f2", 1, 0.20},
      {"t1", "faq", Outcome::Hit, "f1", 1, 0},     {"t1", "", Outcome::Miss, "g1", 2, 0.05},
      {"t1", "", Outcome::NoStore, "g2", 2, 0.07}, {"t1", "", Outcome::Miss, "g3", 2, 0.30},
      {"t2", "", Outcome::Miss, "h1", 1, 0.40},    {"t2", "", Outcome::Miss, "h2", 1, 0.60},
      {"t2", "", Outcome::Miss, "h3", 0, 1.00},    {"t2", "", Outcome::NoStore, "h4", 3, 0.80},
      {"t2", "", Outcome::Miss, "h5", 3, 0.90},    {"t2", "", Outcome::Miss, "h6", 4, 0.25},
      {"t2", "", Outcome::Miss, "h6", 4, 0.25},
  };
  std::vector<Event> out;
  int64_t t = kDay2 + 12 * kHour;
  for (const S& s : script) {
    Event e = ev(t, "gpt-4o", "openai", s.outcome, s.key, "caller-" + std::string(s.tenant), "");
    t += kMinute;
    e.tenant = s.tenant;
    e.keyNamespace = s.ns;
    // Distinct tenants never share a seed hash in practice (the scope is in the hash); t2 reuses
    // t1's H1 here to show that the count stays within a tenant all the same.
    e.seedHash = s.seed == 0 ? 0 : seedHashOf("00000000000000" + std::to_string(10 + s.seed));
    if (s.outcome == Outcome::Hit)
      e.costSaved = 0.10;
    else
      e.cost = s.cost;
    out.push_back(e);
  }
  return out;
}

TEST_F(AnalyticsTest, NormalizePromptsCountsWhatSeedModeWouldHaveMergedPerTenant) {
  // The scripted events carry no seed hash (as from a gateway that does not give one yet):
  // nothing is counted.
  Json p = analytics_.patterns({}).value();
  EXPECT_EQ(at(at(p, "optimization_details"), "normalize_prompts").size(), 0u);

  for (const Event& e : seedEvents()) recorder_.record(e);
  p = analytics_.patterns({}).value();
  const Json& n = at(at(p, "optimization_details"), "normalize_prompts");
  ASSERT_EQ(n.size(), 2u) << toJson(n);
  const Json& t2 = n.items()[0];
  EXPECT_EQ(str(t2, "tenant"), "t2");
  EXPECT_EQ(num(t2, "requests_merged"), 1);
  EXPECT_NEAR(num(t2, "cost_saved_usd"), 0.60, kEps);
  EXPECT_EQ(str(t2, "mode"), "seed");
  // In the seed-shaped list: the most money first, with potential_savings and an impact.
  const Json& first = at(p, "optimization_opportunities").items()[0];
  EXPECT_EQ(str(first, "type"), "normalize_prompts");
  EXPECT_EQ(str(first, "tenant"), "t2");
  EXPECT_NEAR(num(first, "potential_savings"), 0.60, kEps);
  EXPECT_EQ(str(first, "impact"), "medium");
  EXPECT_NE(str(first, "description").find("Tenant t2"), std::string::npos);
  ASSERT_EQ(at(t2, "namespaces").size(), 1u);
  EXPECT_EQ(str(at(t2, "namespaces").items()[0], "namespace"), "");
  EXPECT_EQ(str(t2, "how"),
            "CACHE_KEY_NORMALIZE=seed (or send these requests with an x-llmcache-namespace and set "
            "CACHE_KEY_NORMALIZE_NAMESPACES=<ns>=seed)");
  const Json& t1 = n.items()[1];
  EXPECT_EQ(str(t1, "tenant"), "t1");
  EXPECT_EQ(num(t1, "requests_merged"), 2);
  EXPECT_NEAR(num(t1, "cost_saved_usd"), 0.50, kEps);
  const Json& ns = at(t1, "namespaces");
  ASSERT_EQ(ns.size(), 2u);
  EXPECT_EQ(str(ns.items()[0], "namespace"), "");  // $0.30 before faq's $0.20
  EXPECT_EQ(num(ns.items()[0], "requests_merged"), 1);
  EXPECT_NEAR(num(ns.items()[0], "cost_saved_usd"), 0.30, kEps);
  EXPECT_EQ(str(ns.items()[1], "namespace"), "faq");
  EXPECT_EQ(num(ns.items()[1], "requests_merged"), 1);
  EXPECT_NEAR(num(ns.items()[1], "cost_saved_usd"), 0.20, kEps);
  EXPECT_EQ(str(t1, "how"), "CACHE_KEY_NORMALIZE_NAMESPACES=faq=seed or CACHE_KEY_NORMALIZE=seed");

  // A window that starts after S1: S2 has nothing earlier in it; S6 and S8 still count.
  const Json w =
      analytics_.patterns({.from = fromUnixMillis(kDay2 + 12 * kHour + kMinute)}).value();
  const Json& wn = at(at(w, "optimization_details"), "normalize_prompts");
  ASSERT_EQ(wn.size(), 2u) << toJson(wn);
  EXPECT_EQ(str(wn.items()[0], "tenant"), "t2");
  EXPECT_EQ(str(wn.items()[1], "tenant"), "t1");
  EXPECT_EQ(num(wn.items()[1], "requests_merged"), 1);
  EXPECT_NEAR(num(wn.items()[1], "cost_saved_usd"), 0.30, kEps);

  // The top few only.
  Analytics top1{*index_, &recorder_, {.maxNormalizeTenants = 1}};
  const Json q = top1.patterns({}).value();
  const Json& qn = at(at(q, "optimization_details"), "normalize_prompts");
  ASSERT_EQ(qn.size(), 1u);
  EXPECT_EQ(str(qn.items()[0], "tenant"), "t2");
}

TEST(SeedHash, IsTheRequestHashsFirst64BitsAndZeroOnlyForUnknown) {
  EXPECT_EQ(seedHashOf("0123456789abcdef0123456789abcdef"), 0x0123456789abcdefull);
  EXPECT_EQ(seedHashOf("ffffffffffffffff"), 0xffffffffffffffffull);
  EXPECT_EQ(seedHashOf("0000000000000000ffff"), 1u);  // 0 stays "unknown"
  EXPECT_EQ(seedHashOf(""), 0u);
  EXPECT_EQ(seedHashOf("0123456789ABCDEF"), 0u);  // not a request_hash (lowercase hex)
  EXPECT_EQ(seedHashOf("0123456789abcde"), 0u);
}

TEST_F(AnalyticsTest, LowHitRateModelsGetATtlFromTheirRepeatIntervals) {
  const Json p = analytics_.patterns({}).value();
  const Json& low = at(at(p, "optimization_details"), "low_hit_rate_models");
  // gpt-4o: 2/7 < 0.3 with 7 >= 3 requests; claude-3 has only 2 requests
  ASSERT_EQ(low.size(), 1u);
  const Json& m = low.items()[0];
  EXPECT_EQ(str(m, "model"), "gpt-4o");
  EXPECT_EQ(num(m, "hit_rate"), 2.0 / 7.0);
  // repeats: kA 10:00 -> 10:05 -> 10:10 -> d2 09:45, kB 10:20 -> 10:20: gaps 0, 5 min, 5 min, 23 h
  // 35 min
  EXPECT_EQ(num(m, "repeated_requests"), 4);
  EXPECT_EQ(num(m, "median_repeat_interval_seconds"), 300);
  EXPECT_EQ(num(m, "suggested_ttl_seconds"), 600);
}

TEST_F(AnalyticsTest, AModelWhoseKeysNeverRepeatGetsNoTtl) {
  Analytics strict{*index_, &recorder_, {.minRequests = 2, .lowHitRate = 0.6}};
  const Json p = strict
                     .patterns({.from = fromUnixMillis(kDay1 + 11 * kHour),
                                .to = fromUnixMillis(kDay2 + 9 * kHour + 31 * kMinute)})
                     .value();
  // window: E6 (claude MISS kC), E9 (claude HIT kC), E10 (gpt-4o MISS kD): claude 1/2 < 0.6, gpt-4o
  // only 1 request
  const Json& low = at(at(p, "optimization_details"), "low_hit_rate_models");
  ASSERT_EQ(low.size(), 1u);
  EXPECT_EQ(str(low.items()[0], "model"), "claude-3");
  EXPECT_EQ(num(low.items()[0], "median_repeat_interval_seconds"),
            22 * 3600);  // 11:00 -> 09:00 next day
  EXPECT_EQ(num(low.items()[0], "suggested_ttl_seconds"), 2 * 22 * 3600);

  const Json q =
      strict.patterns({.from = fromUnixMillis(kDay2 + 9 * kHour + 20 * kMinute)}).value();
  // E10, E11: gpt-4o MISS kD, REFRESH kA: 0 hits of 2, no key repeats
  const Json& low2 = at(at(q, "optimization_details"), "low_hit_rate_models");
  ASSERT_EQ(low2.size(), 1u);
  EXPECT_TRUE(at(low2.items()[0], "suggested_ttl_seconds").isNull());
  EXPECT_EQ(num(low2.items()[0], "repeated_requests"), 0);
}

}  // namespace
}  // namespace llmcache::analytics
