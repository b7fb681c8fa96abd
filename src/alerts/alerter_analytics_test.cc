// The alert mail's hit rate against the dashboard's: the Alerter fed from Metrics::totals() (as
// `llmcache serve` feeds it) reports the hits and cacheable requests that Analytics::analytics()
// computes in SQL over the same events (docs/analytics.md, Common definitions).
#include <gtest/gtest.h>

#include <cstdio>

#include "alerts/alerter.h"
#include "analytics/analytics.h"
#include "analytics/metrics.h"
#include "analytics/test_events.h"
#include "index/test_util.h"

namespace llmcache::alerts {
namespace {

using namespace std::chrono_literals;

std::string percent(double rate) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", rate * 100);
  return buf;
}

// What `llmcache serve` hands the Alerter.
Snapshot snapshotOf(const analytics::Metrics& metrics) {
  const analytics::MetricsTotals t = metrics.totals();
  return {.requests = t.cacheable, .hits = t.hits, .tierErrors = t.tierErrorsByName()};
}

class AlerterAnalyticsTest : public ::testing::Test {
 protected:
  AlerterOptions options() {
    AlerterOptions o;
    o.to = {"ops@example.com"};
    o.hitRateMin = 0.5;  // the scripted events' 3 of 9 is below it
    o.minRequests = 1;
    o.window = 300s;
    o.tierErrors = 2;
    return o;
  }

  index::test::TempDir dir_;
  std::unique_ptr<index::Index> index_ = index::Index::open(dir_.path() / "index.sqlite").value();
  analytics::EventRecorder recorder_{*index_, {.flushInterval = std::chrono::hours(1)}};
  analytics::Analytics analytics_{*index_, &recorder_};
  analytics::Metrics metrics_;
  FakeClock clock_;
  std::vector<Mail> sent_;
  Alerter alerter_{options(),
                   [this](const Mail& m) -> Result<void> {
                     sent_.push_back(m);
                     return {};
                   },
                   clock_};
};

TEST_F(AlerterAnalyticsTest, TheMailsHitRateIsTheDashboardsOverTheSameEvents) {
  alerter_.evaluate(snapshotOf(metrics_));  // the baseline at start-up
  // Every outcome but NO-STORE and UNCACHEABLE, BYPASS and INVALID among them (test_events.h).
  for (const analytics::Event& e : analytics::test::scriptedEvents()) {
    metrics_.observe(e);
    recorder_.record(e);
  }
  clock_.advance(300s);
  alerter_.evaluate(snapshotOf(metrics_));

  const Json a = analytics_.analytics({}).value();
  const int64_t hits = a.getInt("hits").value(), total = a.getInt("total_requests").value();
  EXPECT_EQ(hits, 3);
  EXPECT_EQ(total, 9);  // 11 requests, BYPASS and INVALID not cacheable
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_NE(sent_[0].subject.find("hit rate " + percent(a.getDouble("hit_rate").value()) +
                                  " over the last 300 s"),
            std::string::npos)
      << sent_[0].subject;
  EXPECT_NE(sent_[0].body.find(std::to_string(hits) + " of " + std::to_string(total) +
                               " cacheable requests"),
            std::string::npos)
      << sent_[0].body;
}

TEST_F(AlerterAnalyticsTest, TierErrorsComeFromTheFailedTierEvents) {
  alerter_.evaluate(snapshotOf(metrics_));
  const Error error = makeError(Errc::Unavailable, "S3 down");
  auto fail = [&](cache::TierId tier, cache::TierEvent::Op op) {
    cache::TierEvent e{};
    e.kind = cache::TierEvent::Kind::Failed;
    e.tier = tier;
    e.cacheKey = "k";
    e.op = op;
    e.error = &error;
    metrics_.onTierEvent(e);
  };
  // Any operation counts for its tier.
  fail(cache::TierId::S3, cache::TierEvent::Op::Lookup);
  fail(cache::TierId::S3, cache::TierEvent::Op::Insert);
  fail(cache::TierId::S3, cache::TierEvent::Op::Erase);
  fail(cache::TierId::Disk, cache::TierEvent::Op::Insert);
  clock_.advance(60s);
  alerter_.evaluate(snapshotOf(metrics_));
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_NE(sent_[0].subject.find("cache tier failing: s3"), std::string::npos);  // 3 > 2
  EXPECT_EQ(sent_[0].subject.find("disk"), std::string::npos);                    // 1
  EXPECT_NE(sent_[0].body.find("s3: 3 errors"), std::string::npos) << sent_[0].body;
}

}  // namespace
}  // namespace llmcache::alerts
