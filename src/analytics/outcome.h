#pragma once
// Outcome: what happened to a request. The one definition behind the x-llmcache-status header
// (the gateway), the metrics labels and totals (Metrics), the events table and its SQL
// (EventRecorder, Analytics) and the alert mails' hit rate (fed from Metrics::totals()).
// docs/analytics.md, Common definitions, says what each figure counts.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace llmcache::analytics {

// The order is the Metrics label order; the names are persistent (the events table stores
// outcomeName(), docs/index-schema.md), the numbering is not.
enum class Outcome : uint8_t {
  Hit,          // answered from a tier
  Miss,         // forwarded; the answer was stored
  Coalesced,    // waited for an identical in-flight request and got its answer
  Refresh,      // Cache-Control: no-cache: lookup skipped, the fresh answer stored
  NoStore,      // Cache-Control: no-store: forwarded on a miss, the answer not stored
  Bypass,       // not a cached endpoint, caching disabled, or no-cache + no-store
  Uncacheable,  // forwarded, but the answer is not one we store (error, partial, invalid)
  Invalid,      // the gateway refused the request (400, 404, 413)
};
inline constexpr size_t kOutcomeCount = 8;
inline constexpr std::array<Outcome, kOutcomeCount> kOutcomes = {
    Outcome::Hit,     Outcome::Miss,   Outcome::Coalesced,   Outcome::Refresh,
    Outcome::NoStore, Outcome::Bypass, Outcome::Uncacheable, Outcome::Invalid};

// The x-llmcache-status value, also the events table's `outcome` and the metrics label:
// "HIT", "MISS", "COALESCED", "REFRESH", "NO-STORE", "BYPASS", "UNCACHEABLE", "INVALID".
// A value outside the enum gives "UNKNOWN".
constexpr std::string_view outcomeName(Outcome o) {
  switch (o) {
    case Outcome::Hit:
      return "HIT";
    case Outcome::Miss:
      return "MISS";
    case Outcome::Coalesced:
      return "COALESCED";
    case Outcome::Refresh:
      return "REFRESH";
    case Outcome::NoStore:
      return "NO-STORE";
    case Outcome::Bypass:
      return "BYPASS";
    case Outcome::Uncacheable:
      return "UNCACHEABLE";
    case Outcome::Invalid:
      return "INVALID";
  }
  return "UNKNOWN";
}

// outcomeName()'s inverse (exact spelling); nullopt for anything else.
std::optional<Outcome> parseOutcome(std::string_view name);

// The three predicates every figure is built from (docs/analytics.md, Common definitions).
//
// Cacheable: counted in total_requests, so in every hit rate (the dashboard's, /metrics',
// statistics.json's and the alert mails'): all outcomes but BYPASS (not a cached endpoint,
// caching off) and INVALID (refused).
constexpr bool isCacheable(Outcome o) { return o != Outcome::Bypass && o != Outcome::Invalid; }
// Answered without an upstream call of its own: HIT (from a tier) and COALESCED (another
// request's call). Only HIT counts as a hit; COALESCED has its own rate.
constexpr bool savesUpstreamCall(Outcome o) { return o == Outcome::Hit || o == Outcome::Coalesced; }
// A miss: a cacheable request that paid an upstream call (MISS, REFRESH, NO-STORE,
// UNCACHEABLE). misses = cacheable - hits - coalesced.
constexpr bool isMiss(Outcome o) { return isCacheable(o) && !savesUpstreamCall(o); }

// SQL over the events table's `outcome` column, generated from the names above.
// sqlOutcome(Outcome::Hit) == "'HIT'".
std::string sqlOutcome(Outcome o);
// The outcomes the predicate selects, in enum order, as an SQL list:
// sqlOutcomeList([](Outcome o) { return !isCacheable(o); }) == "('BYPASS','INVALID')".
// Selecting none gives "(NULL)" (matches no row with IN, nor with NOT IN).
template <class Predicate>
std::string sqlOutcomeList(Predicate selects) {
  std::string out = "(";
  for (const Outcome o : kOutcomes)
    if (selects(o)) {
      if (out.size() > 1) out += ',';
      out += sqlOutcome(o);
    }
  if (out.size() == 1) out += "NULL";
  return out + ")";
}

}  // namespace llmcache::analytics
