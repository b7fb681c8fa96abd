#pragma once
// The miss explainer (docs/record-replay.md, The miss explainer): for a request that missed, the
// stored request nearest to it and the fields that differ. Local and deterministic (no model): a
// SimHash of each request's JSON text picks the closest candidates, a field-by-field diff of the
// JSON bodies ranks them and says what differs. The caller hands in only candidates of the
// request's own tenant and endpoint; explainMiss drops any other all the same (never across
// tenants).
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cache/entry.h"
#include "cache/tier.h"
#include "common/json.h"

namespace llmcache::analytics {

// What differs between a stored request body and an asked one, one line a field, paths as
// `messages[0].content`, in document order:
//   `temperature: 0.7 -> 0.2`                     a value changed (compact JSON, cut at 40 bytes)
//   `messages[0].content: 12 characters differ at offset 40 ("...a" -> "...b")`   strings
//   `tools[1]: added` / `top_p: removed`          present in one only
// At most `limit` lines (then `... N more`). Empty: the bodies are equal as JSON (object member
// order aside).
std::vector<std::string> diffRequests(const Json& stored, const Json& asked, size_t limit = 20);

// One differing field, as the pattern tally counts it: the path as in diffRequests' lines
// (`messages[0].content`) and its kind: changed (a number, boolean, null or a type), added,
// removed, text (a string), digits (a string whose differing parts are only digits and date or
// time punctuation: a varying timestamp, date or counter).
struct FieldDifference {
  std::string field;
  std::string kind;
  friend bool operator==(const FieldDifference&, const FieldDifference&) = default;
};

struct MissExplanation {
  bool found = false;  // a candidate of the same tenant and endpoint existed
  std::string nearestKey;
  std::string nearestCacheId;
  std::vector<std::string> differences;  // diffRequests(nearest, asked); empty: equal bodies
  std::vector<FieldDifference> fields;   // the same differences, structured (not the "more")
  double nearestCostUsd = 0;             // the nearest entry's cost_total
  size_t candidates = 0;                 // how many were compared
  // {"nearest": {"cache_key", "cache_id"} | null, "differences": [...], "candidates": N}
  Json toJson() const;
  // One header line: "nearest KEY: diff; diff; ..." or "no stored request of this tenant and
  // endpoint"; control characters replaced, at most 1000 bytes.
  std::string headerValue() const;
};

// At most this many candidates are diffed field by field (the nearest by SimHash first).
inline constexpr size_t kExplainDiffed = 64;

// The candidate whose request differs from `asked` in the fewest fields (ties: the nearest
// SimHash, then the newest). Candidates without a request text, of another tenant or endpoint,
// or stored under `askedKey` itself (the miss's own answer, stored since) are skipped.
MissExplanation explainMiss(const Json& asked, std::string_view tenant, std::string_view endpoint,
                            std::span<const cache::EntryPtr> candidates,
                            std::string_view askedKey = {});

}  // namespace llmcache::analytics
