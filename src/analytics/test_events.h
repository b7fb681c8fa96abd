#pragma once
// The scripted request history the analytics and metrics tests share; every expected figure in
// those tests is worked out by hand from this list (see the comments there).
#include <vector>

#include "analytics/event.h"
#include "analytics/prompt.h"

namespace llmcache::analytics::test {

// 2026-01-01T00:00:00Z, a Thursday (FakeClock's default start).
inline constexpr int64_t kDay1 = 1767225600000;
inline constexpr int64_t kDay2 = kDay1 + 86'400'000;
inline constexpr int64_t kMinute = 60'000;
inline constexpr int64_t kHour = 60 * kMinute;

inline const char* const kPromptA =
    "Explain how a hash table works and when to use it instead of a binary search tree";
inline const char* const kPromptD =
    "Explain how a hash table works and when to use one instead of a binary search tree";

inline Event ev(int64_t ms, std::string model, std::string platform, Outcome outcome,
                std::string key, std::string caller, std::string category) {
  Event e;
  e.time = fromUnixMillis(ms);
  e.model = std::move(model);
  e.platform = std::move(platform);
  e.endpoint = e.platform == "anthropic" ? "anthropic.messages" : "openai.chat";
  e.outcome = outcome;
  e.cacheKey = std::move(key);
  e.callerHash = std::move(caller);
  e.promptCategory = std::move(category);
  return e;
}

inline Event cost(Event e, double c, int64_t latencyMs, int64_t in, int64_t out) {
  e.cost = c;
  e.latencyMs = static_cast<double>(latencyMs);
  e.tokensIn = in;
  e.tokensOut = out;
  return e;
}

inline Event saved(Event e, double c, int64_t latencySavedMs, std::string tier, int64_t latencyMs,
                   int64_t in, int64_t out) {
  e.costSaved = c;
  e.latencySavedMs = latencySavedMs;
  e.tier = std::move(tier);
  e.latencyMs = static_cast<double>(latencyMs);
  e.tokensIn = in;
  e.tokensOut = out;
  return e;
}

// E1..E11:
//  E1  d1 10:00 gpt-4o   MISS      kA  cost .10  u1 code         800 ms  100/50 tokens
//  E2  d1 10:05 gpt-4o   HIT       kA  saved .10 (800 ms) memory u1 code     2 ms  100/50
//  E3  d1 10:10 gpt-4o   HIT       kA  saved .10 (800 ms) disk   u2 code     3 ms  100/50
//  E4  d1 10:20 gpt-4o   MISS      kB  cost .20  u2 math        1500 ms   10/10
//  E5  d1 10:20 gpt-4o   COALESCED kB  saved .20 u1 math        1500 ms   10/10
//  E6  d1 11:00 claude-3 MISS      kC  cost .05  u1 chat         400 ms   20/30
//  E7  d1 11:30 claude-3 BYPASS        cost .30  u1             2000 ms
//  E8  d1 11:40 ""       INVALID                 u1                1 ms
//  E9  d2 09:00 claude-3 HIT       kC  saved .05 (400 ms) s3     u3 chat    40 ms  20/30
//  E10 d2 09:30 gpt-4o   MISS      kD  cost .15  u1 translation  700 ms  (carries kPromptD's
//  signature) E11 d2 09:45 gpt-4o   REFRESH   kA  cost .10  u1 code         900 ms
inline std::vector<Event> scriptedEvents() {
  std::vector<Event> v;
  v.push_back(cost(ev(kDay1 + 10 * kHour, "gpt-4o", "openai", Outcome::Miss, "kA", "u1", "code"),
                   0.10, 800, 100, 50));
  v.push_back(saved(
      ev(kDay1 + 10 * kHour + 5 * kMinute, "gpt-4o", "openai", Outcome::Hit, "kA", "u1", "code"),
      0.10, 800, "memory", 2, 100, 50));
  v.push_back(saved(
      ev(kDay1 + 10 * kHour + 10 * kMinute, "gpt-4o", "openai", Outcome::Hit, "kA", "u2", "code"),
      0.10, 800, "disk", 3, 100, 50));
  v.push_back(cost(
      ev(kDay1 + 10 * kHour + 20 * kMinute, "gpt-4o", "openai", Outcome::Miss, "kB", "u2", "math"),
      0.20, 1500, 10, 10));
  v.push_back(saved(ev(kDay1 + 10 * kHour + 20 * kMinute, "gpt-4o", "openai", Outcome::Coalesced,
                       "kB", "u1", "math"),
                    0.20, 0, "", 1500, 10, 10));
  v.push_back(
      cost(ev(kDay1 + 11 * kHour, "claude-3", "anthropic", Outcome::Miss, "kC", "u1", "chat"), 0.05,
           400, 20, 30));
  v.push_back(cost(
      ev(kDay1 + 11 * kHour + 30 * kMinute, "claude-3", "anthropic", Outcome::Bypass, "", "u1", ""),
      0.30, 2000, 5, 5));
  v.push_back(
      cost(ev(kDay1 + 11 * kHour + 40 * kMinute, "", "openai", Outcome::Invalid, "", "u1", ""), 0,
           1, 0, 0));
  v.push_back(
      saved(ev(kDay2 + 9 * kHour, "claude-3", "anthropic", Outcome::Hit, "kC", "u3", "chat"), 0.05,
            400, "s3", 40, 20, 30));
  Event e10 = cost(ev(kDay2 + 9 * kHour + 30 * kMinute, "gpt-4o", "openai", Outcome::Miss, "kD",
                      "u1", "translation"),
                   0.15, 700, 30, 40);
  const auto sig = promptSignature(kPromptD);
  e10.promptSimhash = sig.simhash;
  e10.promptPreview = sig.preview;
  v.push_back(e10);
  v.push_back(cost(ev(kDay2 + 9 * kHour + 45 * kMinute, "gpt-4o", "openai", Outcome::Refresh, "kA",
                      "u1", "code"),
                   0.10, 900, 100, 50));
  return v;
}

}  // namespace llmcache::analytics::test
