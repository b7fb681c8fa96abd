#include "analytics/outcome.h"

namespace llmcache::analytics {

std::optional<Outcome> parseOutcome(std::string_view name) {
  for (const Outcome o : kOutcomes)
    if (outcomeName(o) == name) return o;
  return std::nullopt;
}

std::string sqlOutcome(Outcome o) {
  // The names are upper-case letters and '-': nothing to escape, but quote as SQL would.
  std::string out = "'";
  for (const char c : outcomeName(o)) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

}  // namespace llmcache::analytics
