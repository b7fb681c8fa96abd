#pragma once
// Alerter: e-mails the operator (CACHE_ALERT_EMAIL) when the cache stops doing its job:
//   LowHitRate     the hit rate (hits / cacheable requests, the dashboard's) over the last
//                  CACHE_ALERT_WINDOW seconds is below CACHE_ALERT_HIT_RATE_MIN, with at least
//                  CACHE_ALERT_MIN_REQUESTS cacheable requests
//   TierErrors     a tier (disk, s3, ...) had more than CACHE_ALERT_TIER_ERRORS failed
//                  operations in the window
//   OutboxBacklog  more than CACHE_ALERT_OUTBOX_MAX S3 writes are waiting in the outbox
// At most one mail per kind per CACHE_ALERT_COOLDOWN (docs/alerts.md).
//
// The gateway calls evaluate() once at start-up (the baseline) and then every
// CACHE_METRICS_INTERVAL seconds with its counters; the Alerter keeps the history it needs and
// takes the differences over the window itself. evaluate() sends synchronously (an SMTP exchange
// can take seconds): call it from a timer thread, never from an I/O thread.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "alerts/mail.h"
#include "common/clock.h"
#include "common/result.h"
#include "config/config.h"

namespace llmcache::alerts {

enum class AlertKind { LowHitRate, TierErrors, OutboxBacklog };
inline constexpr size_t kAlertKinds = 3;
std::string_view kindName(AlertKind kind);  // low_hit_rate, tier_errors, outbox_backlog

struct AlerterOptions {
  std::string from = "llmcache@localhost";
  std::vector<std::string> to;  // no recipient: evaluate() keeps its history but sends nothing
  double hitRateMin = 0.1;
  uint64_t minRequests = 100;
  std::chrono::seconds window{300};
  std::chrono::seconds cooldown{3600};
  uint64_t outboxMax = 1000;
  uint64_t tierErrors = 10;
  std::string instance;  // names the gateway in subjects and bodies (host:port); may be empty

  // From CACHE_ALERT_EMAIL, CACHE_ALERT_FROM, CACHE_ALERT_* (config::validate checked them).
  static AlerterOptions fromConfig(const config::Config& config, std::string instance = "");
};

// The gateway's counters at one moment. requests, hits and tierErrors are TOTALS since the
// gateway started (they only grow; a total that goes down is taken as a restart of that counter);
// outboxPending is the current backlog (a gauge).
//
// Where they come from: `llmcache serve` fills them from analytics::Metrics::totals(), the
// counters behind /metrics, so the mail's hit rate (hits / requests over the window) is defined
// as the dashboard's hit_rate (docs/analytics.md, Common definitions; analytics/outcome.h).
// This module does not include analytics: the Snapshot is the interface.
struct Snapshot {
  std::optional<TimePoint> time = {};  // when read; unset = the Alerter's clock now
  // Cacheable requests (MetricsTotals::cacheable): every outcome but BYPASS and INVALID, i.e.
  // hits + misses + coalesced with misses = MISS, REFRESH, NO-STORE and UNCACHEABLE.
  uint64_t requests = 0;
  uint64_t hits = 0;  // HIT requests (MetricsTotals::hits); COALESCED is not a hit
  // Tier name ("memory", "disk", "s3", ...) -> its failed operations so far, lookups, writes and
  // erases alike (MetricsTotals::tierErrorsByName(): the TieredCache's Failed tier events).
  std::map<std::string, uint64_t> tierErrors = {};
  uint64_t outboxPending = 0;  // S3 writes waiting in the durable outbox (S3Outbox::pending())
};

class Alerter {
 public:
  // send delivers one mail (sendSmtp in production, a fake in tests); an error leaves that kind
  // without a cooldown, so the next evaluate() tries again. clock: cooldowns and unset times.
  using Sender = std::function<Result<void>(const Mail&)>;
  Alerter(AlerterOptions options, Sender send, const Clock& clock);

  // Records the snapshot, checks the three rules and sends what is due. Never throws; thread-safe
  // (serialized). A snapshot older than the previous one is ignored.
  void evaluate(const Snapshot& snapshot);

  struct Stats {
    uint64_t sent = 0;        // mails the sender accepted
    uint64_t failed = 0;      // mails the sender refused (retried at the next evaluate)
    uint64_t suppressed = 0;  // alerts inside their kind's cooldown
    std::string lastError;    // the sender's last error message
  };
  Stats stats() const;

 private:
  struct Sample {
    TimePoint time;
    uint64_t requests;
    uint64_t hits;
    std::map<std::string, uint64_t> tierErrors;
  };
  void raise(AlertKind kind, TimePoint now, std::string subject, std::string body);

  AlerterOptions options_;
  Sender send_;
  const Clock& clock_;
  mutable std::mutex mutex_;
  std::deque<Sample> samples_;  // oldest first; the front is the window's baseline once covered
  std::optional<TimePoint> lastSent_[kAlertKinds];
  Stats stats_;
};

}  // namespace llmcache::alerts
