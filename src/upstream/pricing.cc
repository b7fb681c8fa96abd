#include "upstream/pricing.h"

#include <boost/algorithm/string/case_conv.hpp>
#include <boost/algorithm/string/classification.hpp>
#include <boost/algorithm/string/trim.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <locale>
#include <sstream>

#include "common/json.h"

namespace llmcache::upstream {
namespace {

std::string toLower(std::string_view s) {  // ASCII only (the classic locale)
  return boost::algorithm::to_lower_copy(std::string{s}, std::locale::classic());
}

std::string_view trim(std::string_view s) {  // spaces, tabs and line ends (not \v, \f)
  return boost::algorithm::trim_copy_if(s, boost::algorithm::is_any_of(" \t\n\r"));
}

Result<double> priceMember(const Json& model, std::string_view modelName, std::string_view member) {
  const Json* v = model.find(member);
  std::optional<double> d = v != nullptr && v->isNumber() ? v->asDouble() : std::nullopt;
  if (!d || *d < 0) {
    return makeError(Errc::InvalidArgument, "pricing: model \"" + std::string{modelName} +
                                                "\" needs \"" + std::string{member} +
                                                "\" as a non-negative number");
  }
  return *d;
}

}  // namespace

const PricingTable& PricingTable::builtin() {
  static const PricingTable table = [] {
    auto parsed = fromJson(detail::kBuiltinPricingJson);
    if (!parsed) {
      std::fprintf(stderr, "llmcache: the built-in pricing table is broken: %s\n",
                   parsed.error().message.c_str());
      std::abort();
    }
    return std::move(*parsed);
  }();
  return table;
}

Result<PricingTable> PricingTable::fromJson(std::string_view text) {
  auto doc = parseJson(text);
  if (!doc) return makeError(Errc::InvalidArgument, "pricing: " + doc.error().message);
  if (!doc->isObject())
    return makeError(Errc::InvalidArgument, "pricing: the document must be an object");
  std::optional<int64_t> version = doc->getInt("version");
  if (version != 1) return makeError(Errc::InvalidArgument, "pricing: \"version\" must be 1");
  const Json* models = doc->find("models");
  if (models == nullptr || !models->isObject()) {
    return makeError(Errc::InvalidArgument, "pricing: \"models\" must be an object");
  }
  PricingTable table;
  if (auto asOf = doc->getString("prices_as_of")) table.pricesAsOf_ = std::string{*asOf};
  for (size_t i = 0; i < models->size(); ++i) {
    const std::string name(models->keys()[i]);
    const Json& model = models->items()[i];
    if (trim(name).empty())
      return makeError(Errc::InvalidArgument, "pricing: a model name is empty");
    if (!model.isObject()) {
      return makeError(Errc::InvalidArgument, "pricing: model \"" + name + "\" must be an object");
    }
    auto input = priceMember(model, name, "input");
    if (!input) return input.error();
    auto output = priceMember(model, name, "output");
    if (!output) return output.error();
    table.set(name, Price{*input, *output});
  }
  return table;
}

Result<PricingTable> PricingTable::loadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return makeError(Errc::Io, "pricing: cannot open " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return makeError(Errc::Io, "pricing: cannot read " + path.string());
  auto overrides = fromJson(text.str());
  if (!overrides)
    return makeError(Errc::InvalidArgument, path.string() + ": " + overrides.error().message);
  PricingTable table = builtin();
  for (const auto& [name, price] : overrides->prices_) table.prices_[name] = price;
  if (!overrides->pricesAsOf_.empty()) table.pricesAsOf_ = overrides->pricesAsOf_;
  return table;
}

void PricingTable::set(std::string_view model, Price price) {
  prices_[toLower(trim(model))] = price;
}

std::optional<Price> PricingTable::exact(std::string_view name) const {
  auto it = prices_.find(name);
  if (it == prices_.end()) return std::nullopt;
  return it->second;
}

std::optional<Price> PricingTable::find(std::string_view model) const {
  std::string name = toLower(trim(model));
  if (name.empty()) return std::nullopt;
  if (auto p = exact(name)) return p;

  if (size_t slash = name.rfind('/'); slash != std::string::npos) name.erase(0, slash + 1);
  if (name.starts_with("ft:")) return std::nullopt;
  if (size_t colon = name.find(':'); colon != std::string::npos) {
    bool free = std::string_view{name}.substr(colon + 1) == "free";
    name.resize(colon);
    if (name.empty()) return std::nullopt;
    if (free) return Price{0, 0};
  }
  if (name.starts_with("claude-")) {
    for (char& c : name) {
      if (c == '.') c = '-';
    }
  }
  if (name.empty()) return std::nullopt;
  if (auto p = exact(name)) return p;
  // Longest key that is a prefix followed by '-': try the cut points from the right.
  for (size_t i = name.size(); i-- > 1;) {
    if (name[i] != '-') continue;
    if (auto p = exact(std::string_view{name}.substr(0, i))) return p;
  }
  return std::nullopt;
}

Cost costOf(const Price& price, int64_t inputTokens, int64_t outputTokens) {
  Cost c;
  c.input = static_cast<double>(inputTokens > 0 ? inputTokens : 0) * price.inputPerMillion / 1e6;
  c.output =
      static_cast<double>(outputTokens > 0 ? outputTokens : 0) * price.outputPerMillion / 1e6;
  c.total = c.input + c.output;
  return c;
}

std::string providerOf(std::string_view model) {
  size_t slash = model.find('/');
  if (slash == std::string_view::npos) return {};
  return toLower(trim(model.substr(0, slash)));
}

}  // namespace llmcache::upstream
