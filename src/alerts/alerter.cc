#include "alerts/alerter.h"

#include <cstdio>

namespace llmcache::alerts {

namespace {

std::string percent(double rate) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", rate * 100);
  return buf;
}

// b - a for a total that only grows; a total that went down was restarted: count from zero.
uint64_t grown(uint64_t before, uint64_t now) { return now >= before ? now - before : now; }

}  // namespace

std::string_view kindName(AlertKind kind) {
  switch (kind) {
    case AlertKind::LowHitRate:
      return "low_hit_rate";
    case AlertKind::TierErrors:
      return "tier_errors";
    case AlertKind::OutboxBacklog:
      return "outbox_backlog";
  }
  return "unknown";
}

AlerterOptions AlerterOptions::fromConfig(const config::Config& c, std::string instance) {
  AlerterOptions o;
  o.from = c.alertFrom;
  o.to = c.alertRecipients();
  o.hitRateMin = c.alertHitRateMin;
  o.minRequests = static_cast<uint64_t>(std::max<int64_t>(c.alertMinRequests, 1));
  o.window = std::chrono::seconds(c.alertWindowSeconds);
  o.cooldown = std::chrono::seconds(c.alertCooldownSeconds);
  o.outboxMax = c.alertOutboxMax;
  o.tierErrors = c.alertTierErrors;
  o.instance = std::move(instance);
  return o;
}

Alerter::Alerter(AlerterOptions options, Sender send, const Clock& clock)
    : options_(std::move(options)), send_(std::move(send)), clock_(clock) {}

Alerter::Stats Alerter::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Alerter::evaluate(const Snapshot& snapshot) {
  std::lock_guard lock(mutex_);
  const TimePoint now = snapshot.time.value_or(clock_.now());
  if (!samples_.empty() && now < samples_.back().time) return;
  samples_.push_back({now, snapshot.requests, snapshot.hits, snapshot.tierErrors});

  // The baseline is the newest sample at least a window old: drop the ones before it. Until the
  // gateway has run a whole window, the baseline is the first sample (a partial window).
  const TimePoint windowStart = now - options_.window;
  while (samples_.size() >= 2 && samples_[1].time <= windowStart) samples_.pop_front();
  const Sample& base = samples_.front();
  const Sample& cur = samples_.back();
  const bool covered = base.time <= windowStart;
  const auto windowSeconds = std::to_string(options_.window.count());
  const auto seconds =
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - base.time).count());

  // Hit rate: only over a whole window, so that a cold start (an empty memory tier after a
  // restart) is not an alert.
  if (covered) {
    const uint64_t requests = grown(base.requests, cur.requests);
    const uint64_t hits = std::min(grown(base.hits, cur.hits), requests);
    const double rate = requests ? static_cast<double>(hits) / static_cast<double>(requests) : 0;
    if (requests >= options_.minRequests && rate < options_.hitRateMin) {
      raise(AlertKind::LowHitRate, now,
            "hit rate " + percent(rate) + " over the last " + seconds + " s (threshold " +
                percent(options_.hitRateMin) + ")",
            "The cache answered " + std::to_string(hits) + " of " + std::to_string(requests) +
                " cacheable requests in the last " + seconds + " s (" + percent(rate) +
                "), below CACHE_ALERT_HIT_RATE_MIN = " + percent(options_.hitRateMin) +
                ".\n\n"
                "Look at /dashboard or GET /cache/analytics and /cache/patterns: a model with a "
                "low hit rate\n"
                "may need a longer TTL (CACHE_TTL, CACHE_MODEL_TTLS), near-duplicate prompts may "
                "need\n"
                "normalization (CACHE_KEY_NORMALIZE), and a recent invalidation or restart empties "
                "tiers.\n");
    }
  }

  // Tiers: errors in the window (or since the first sample, before a whole window has passed).
  std::string failing, details;
  for (const auto& [tier, total] : cur.tierErrors) {
    const auto it = base.tierErrors.find(tier);
    const uint64_t errors = grown(it == base.tierErrors.end() ? 0 : it->second, total);
    if (errors > options_.tierErrors) {
      failing += (failing.empty() ? "" : ", ") + tier;
      details +=
          "  " + tier + ": " + std::to_string(errors) + " errors in the last " + seconds + " s\n";
    }
  }
  if (!failing.empty()) {
    raise(AlertKind::TierErrors, now, "cache tier failing: " + failing,
          "More than CACHE_ALERT_TIER_ERRORS = " + std::to_string(options_.tierErrors) +
              " errors in the window (CACHE_ALERT_WINDOW = " + windowSeconds + " s):\n" + details +
              "\nRequests still get answers (a tier error is a miss or a skipped write), but the "
              "cache\n"
              "saves less. Check the gateway's log, the disk (space, permissions) and the S3 "
              "endpoint and\n"
              "credentials; GET /metrics has llmcache_tier_errors_total{tier,op}.\n");
  }

  if (snapshot.outboxPending > options_.outboxMax) {
    raise(AlertKind::OutboxBacklog, now,
          "S3 write backlog: " + std::to_string(snapshot.outboxPending) + " entries waiting",
          std::to_string(snapshot.outboxPending) +
              " entries wait in the S3 outbox, more than CACHE_ALERT_OUTBOX_MAX = " +
              std::to_string(options_.outboxMax) +
              ".\n\nThe S3 tier is not keeping up or not reachable: entries are safe on disk and "
              "uploaded when\n"
              "it recovers. Check the S3 endpoint, credentials and llmcache_s3_errors_total in GET "
              "/metrics.\n");
  }
}

void Alerter::raise(AlertKind kind, TimePoint now, std::string subject, std::string body) {
  auto& last = lastSent_[static_cast<size_t>(kind)];
  if (last && now - *last < options_.cooldown) {
    ++stats_.suppressed;
    return;
  }
  if (options_.to.empty()) return;
  Mail mail;
  mail.from = options_.from;
  mail.to = options_.to;
  mail.subject =
      "[llmcache" + (options_.instance.empty() ? "" : " " + options_.instance) + "] " + subject;
  const auto cooldown = std::to_string(options_.cooldown.count());
  mail.body = body + "\nGateway: " + (options_.instance.empty() ? "llmcache" : options_.instance) +
              "\nAt: " + formatIso8601(now) + "\nAlert: " + std::string(kindName(kind)) +
              " (no other mail of this kind for CACHE_ALERT_COOLDOWN = " + cooldown + " s)\n";
  if (auto r = send_(mail); r) {
    last = now;
    ++stats_.sent;
  } else {
    ++stats_.failed;
    stats_.lastError = r.error().message;
  }
}

}  // namespace llmcache::alerts
