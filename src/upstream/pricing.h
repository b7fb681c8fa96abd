#pragma once
// Pricing: what a model's tokens cost, from a table shipped inside the binary
// (src/upstream/pricing.json, embedded at build time) and optionally a file that overrides and
// extends it.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace llmcache::upstream {

// US dollars per million tokens.
struct Price {
  double inputPerMillion = 0;
  double outputPerMillion = 0;
  friend bool operator==(const Price&, const Price&) = default;
};

// US dollars.
struct Cost {
  double input = 0;
  double output = 0;
  double total = 0;
};

// Immutable once built; const methods are thread-safe.
//
// File format (version 1):
//   {"version": 1, "unit": "USD per million tokens", "prices_as_of": "2025-11-01",
//    "models": {"gpt-4o": {"input": 2.5, "output": 10}, ...}}
// Model names are matched case-insensitively; other members of a model object are ignored.
class PricingTable {
 public:
  PricingTable() = default;  // empty

  // The table embedded at build time. Parsed on first use; a build whose table does not parse
  // aborts there (upstream_test guards against that).
  static const PricingTable& builtin();
  // Only the models of `text`. InvalidArgument names what is wrong (syntax, version, a model
  // without a non-negative input/output price).
  static Result<PricingTable> fromJson(std::string_view text);
  // The builtin table with the file's models laid over it (the file overrides and extends).
  // Io when the file cannot be read, InvalidArgument when its content is wrong.
  static Result<PricingTable> loadFile(const std::filesystem::path& path);

  // The price of a model id as the caller sent it, or nullopt when unknown (a miss, not an
  // error: cost is then simply not recorded). Lookup order:
  //   1. the whole id, lowercased ("openrouter/auto", "ft:gpt-4o-mini:org::id" if a file lists
  //   them)
  //   2. after dropping a vendor prefix up to the last '/' ("openai/gpt-4o-mini" -> "gpt-4o-mini",
  //      "models/gemini-1.5-pro" -> "gemini-1.5-pro") and an OpenRouter variant suffix
  //      (":free" -> price 0 for any model, ":beta", ":thinking", ... are dropped); OpenRouter's
  //      dotted Claude names become Anthropic's ("claude-3.5-sonnet" -> "claude-3-5-sonnet"):
  //      the exact name, then the longest table key K such that the name starts with K + "-"
  //      ("gpt-4o-mini-2024-07-18" -> "gpt-4o-mini", never "gpt-4o").
  // Fine-tuned OpenAI ids ("ft:...") are unknown unless listed whole: they cost more than the base.
  std::optional<Price> find(std::string_view model) const;

  // Adds or replaces one model (name lowercased).
  void set(std::string_view model, Price price);
  size_t size() const { return prices_.size(); }
  // The "prices_as_of" date of the table's source ("" when none was given).
  const std::string& pricesAsOf() const { return pricesAsOf_; }

 private:
  std::optional<Price> exact(std::string_view name) const;

  std::map<std::string, Price, std::less<>> prices_;
  std::string pricesAsOf_;
};

// Negative token counts count as zero.
Cost costOf(const Price& price, int64_t inputTokens, int64_t outputTokens);

// The vendor prefix before the first '/', lowercased ("meta-llama/llama-3.1-8b-instruct" ->
// "meta-llama"), or "" when the id has none.
std::string providerOf(std::string_view model);

namespace detail {
// pricing.json's bytes, generated into pricing_data.cc at configure time.
extern const std::string_view kBuiltinPricingJson;
}  // namespace detail

}  // namespace llmcache::upstream
