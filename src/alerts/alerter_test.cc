#include "alerts/alerter.h"

#include <gtest/gtest.h>

namespace llmcache::alerts {
namespace {

using namespace std::chrono_literals;

class AlerterTest : public ::testing::Test {
 protected:
  AlerterOptions options() {
    AlerterOptions o;
    o.from = "llmcache@gw.example";
    o.to = {"ops@example.com"};
    o.hitRateMin = 0.1;
    o.minRequests = 100;
    o.window = 300s;
    o.cooldown = 3600s;
    o.outboxMax = 1000;
    o.tierErrors = 10;
    o.instance = "gw1:8080";
    return o;
  }

  Alerter make(AlerterOptions o) {
    return Alerter(
        std::move(o),
        [this](const Mail& m) -> Result<void> {
          if (failing_) return makeError(Errc::Unavailable, "SMTP down");
          sent_.push_back(m);
          return {};
        },
        clock_);
  }

  // Totals since start; `step` moves the clock first.
  void at(Alerter& a, std::chrono::seconds step, uint64_t requests, uint64_t hits,
          std::map<std::string, uint64_t> tierErrors = {}, uint64_t outbox = 0) {
    clock_.advance(step);
    a.evaluate({.requests = requests,
                .hits = hits,
                .tierErrors = std::move(tierErrors),
                .outboxPending = outbox});
  }

  FakeClock clock_;
  std::vector<Mail> sent_;
  bool failing_ = false;
};

TEST_F(AlerterTest, ALowHitRateOverAWholeWindowSendsOneMail) {
  Alerter a = make(options());
  at(a, 0s, 0, 0);  // the baseline at start-up
  at(a, 60s, 100, 2);
  at(a, 240s, 200, 5);  // a whole window: 200 requests, 5 hits = 2.5%
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].subject,
            "[llmcache gw1:8080] hit rate 2.5% over the last 300 s (threshold 10.0%)");
  EXPECT_EQ(sent_[0].to, (std::vector<std::string>{"ops@example.com"}));
  EXPECT_EQ(sent_[0].from, "llmcache@gw.example");
  EXPECT_NE(sent_[0].body.find("5 of 200 cacheable requests"), std::string::npos) << sent_[0].body;
  EXPECT_NE(sent_[0].body.find("low_hit_rate"), std::string::npos);
}

TEST_F(AlerterTest, TheHitRateIsNotJudgedBeforeAWholeWindowOrWithTooFewRequests) {
  Alerter a = make(options());
  at(a, 0s, 0, 0);
  at(a, 120s, 500, 0);  // a cold start: 0% but only 120 s of history
  EXPECT_TRUE(sent_.empty());
  Alerter b = make(options());
  at(b, 0s, 0, 0);
  at(b, 300s, 99, 0);  // a whole window, 99 requests < 100
  EXPECT_TRUE(sent_.empty());
}

TEST_F(AlerterTest, TheWindowSlidesSoThatOldTrafficIsForgotten) {
  Alerter a = make(options());
  at(a, 0s, 0, 0);
  at(a, 300s, 1000, 900);  // a good first window
  at(a, 300s, 1200, 905);  // the last 300 s: 200 requests, 5 hits (all-time rate would be 75%)
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_NE(sent_[0].subject.find("hit rate 2.5%"), std::string::npos);
}

TEST_F(AlerterTest, AtTheThresholdNothingIsSent) {
  Alerter a = make(options());
  at(a, 0s, 0, 0);
  at(a, 300s, 200, 20);  // exactly 10%
  EXPECT_TRUE(sent_.empty());
}

TEST_F(AlerterTest, OneMailPerKindPerCooldown) {
  Alerter a = make(options());
  at(a, 0s, 0, 0);
  uint64_t requests = 0;
  for (int i = 0; i < 59; ++i) at(a, 60s, requests += 100, 0);  // 59 minutes of 0%
  EXPECT_EQ(sent_.size(), 1u);
  EXPECT_GT(a.stats().suppressed, 50u);
  at(a, 60s, requests += 100, 0);  // 60 min: 55 after the first mail (sent at 5 min), still quiet
  EXPECT_EQ(sent_.size(), 1u);
  for (int i = 0; i < 5; ++i) at(a, 60s, requests += 100, 0);  // 65 min: the cooldown is over
  EXPECT_EQ(sent_.size(), 2u);
  EXPECT_EQ(a.stats().sent, 2u);
}

TEST_F(AlerterTest, KindsHaveTheirOwnCooldowns) {
  Alerter a = make(options());
  at(a, 0s, 0, 0);
  at(a, 300s, 200, 0, {{"s3", 11}}, 1001);
  ASSERT_EQ(sent_.size(), 3u);
  EXPECT_NE(sent_[0].subject.find("hit rate"), std::string::npos);
  EXPECT_EQ(sent_[1].subject, "[llmcache gw1:8080] cache tier failing: s3");
  EXPECT_EQ(sent_[2].subject, "[llmcache gw1:8080] S3 write backlog: 1001 entries waiting");
  at(a, 60s, 400, 0, {{"s3", 50}}, 5000);
  EXPECT_EQ(sent_.size(), 3u);
}

TEST_F(AlerterTest, TierErrorsCountOnlyTheWindowAndNameEveryFailingTier) {
  Alerter a = make(options());
  at(a, 0s, 0, 0, {{"disk", 0}, {"s3", 0}});
  at(a, 300s, 0, 0, {{"disk", 10}, {"s3", 5}});  // at the bound: not above
  EXPECT_TRUE(sent_.empty());
  at(a, 300s, 0, 0, {{"disk", 21}, {"s3", 5}});  // disk: 11 in this window
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_NE(sent_[0].subject.find("cache tier failing: disk"), std::string::npos);
  EXPECT_NE(sent_[0].body.find("disk: 11 errors"), std::string::npos) << sent_[0].body;

  Alerter b = make(options());
  sent_.clear();
  at(b, 0s, 0, 0, {{"disk", 1000}});  // errors before the first snapshot are not the window's
  at(b, 60s, 0, 0, {{"disk", 1005}, {"s3", 12}});  // s3 appears with 12: counted from zero
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_NE(sent_[0].subject.find("failing: s3"), std::string::npos);
  EXPECT_EQ(sent_[0].subject.find("disk"), std::string::npos);
}

TEST_F(AlerterTest, TheOutboxAlertsAboveItsBoundOnly) {
  Alerter a = make(options());
  at(a, 0s, 0, 0, {}, 1000);
  EXPECT_TRUE(sent_.empty());
  at(a, 10s, 0, 0, {}, 1001);
  EXPECT_EQ(sent_.size(), 1u);
}

TEST_F(AlerterTest, AFailedSendIsRetriedAtTheNextEvaluation) {
  Alerter a = make(options());
  failing_ = true;
  at(a, 0s, 0, 0, {}, 2000);
  EXPECT_EQ(a.stats().failed, 1u);
  EXPECT_EQ(a.stats().lastError, "SMTP down");
  failing_ = false;
  at(a, 60s, 0, 0, {}, 2000);
  EXPECT_EQ(sent_.size(), 1u);
  at(a, 60s, 0, 0, {}, 2000);  // now in its cooldown
  EXPECT_EQ(sent_.size(), 1u);
}

TEST_F(AlerterTest, ARestartedCounterIsCountedFromZero) {
  Alerter a = make(options());
  at(a, 0s, 5000, 4000);
  at(a, 300s, 200, 0);  // the totals went down: 200 requests since the restart, none a hit
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_NE(sent_[0].subject.find("hit rate 0.0%"), std::string::npos);
}

TEST_F(AlerterTest, WithoutRecipientsNothingIsSent) {
  AlerterOptions o = options();
  o.to.clear();
  Alerter a = make(o);
  at(a, 0s, 0, 0, {}, 5000);
  EXPECT_TRUE(sent_.empty());
}

TEST_F(AlerterTest, OptionsComeFromTheConfig) {
  config::Config c;
  c.alertEmail = "a@example.com, b@example.com";
  c.alertFrom = "cache@example.com";
  c.alertHitRateMin = 0.3;
  c.alertWindowSeconds = 60;
  c.alertCooldownSeconds = 10;
  c.alertOutboxMax = 5;
  c.alertTierErrors = 2;
  const AlerterOptions o = AlerterOptions::fromConfig(c, "gw");
  EXPECT_EQ(o.to, (std::vector<std::string>{"a@example.com", "b@example.com"}));
  EXPECT_EQ(o.from, "cache@example.com");
  EXPECT_EQ(o.hitRateMin, 0.3);
  EXPECT_EQ(o.minRequests, 100u);
  EXPECT_EQ(o.window, 60s);
  EXPECT_EQ(o.cooldown, 10s);
  EXPECT_EQ(o.outboxMax, 5u);
  EXPECT_EQ(o.tierErrors, 2u);
  EXPECT_EQ(o.instance, "gw");
}

}  // namespace
}  // namespace llmcache::alerts
