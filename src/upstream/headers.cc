#include "upstream/headers.h"

#include <array>
#include <boost/algorithm/string/classification.hpp>
#include <boost/algorithm/string/predicate.hpp>
#include <boost/algorithm/string/trim.hpp>
#include <locale>

namespace llmcache::upstream {
namespace {

constexpr std::array<std::string_view, 11> kHopByHopOrManaged = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
};

}  // namespace

// The classic locale: ASCII only, whatever the global one. The size check first: Boost compares
// through the locale's ctype per character, and most names compared differ in length.
bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && boost::algorithm::iequals(a, b, std::locale::classic());
}

bool isHopByHopOrManagedHeader(std::string_view name) {
  for (std::string_view h : kHopByHopOrManaged) {
    if (equalsIgnoreCase(name, h)) return true;
  }
  return boost::algorithm::istarts_with(name, "x-llmcache-", std::locale::classic());
}

bool isReplayableHeader(std::string_view name) {
  for (std::string_view allowed :
       {"x-request-id", "request-id", "openai-processing-ms", "openai-version"})
    if (equalsIgnoreCase(name, allowed)) return true;
  return false;
}

bool isCorsHeader(std::string_view name) {
  return boost::algorithm::istarts_with(name, "access-control-", std::locale::classic());
}

std::vector<Header> forwardableHeaders(const std::vector<Header>& headers) {
  // Tokens listed by Connection headers (there may be several, each a comma-separated list).
  std::vector<std::string_view> named;
  for (const Header& h : headers) {
    if (!equalsIgnoreCase(h.name, "connection")) continue;
    std::string_view rest = h.value;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view token =
          boost::algorithm::trim_copy_if(rest.substr(0, comma), boost::algorithm::is_any_of(" \t"));
      if (!token.empty()) named.push_back(token);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  std::vector<Header> out;
  out.reserve(headers.size());
  for (const Header& h : headers) {
    if (isHopByHopOrManagedHeader(h.name)) continue;
    bool listed = false;
    for (std::string_view token : named) listed = listed || equalsIgnoreCase(h.name, token);
    if (!listed) out.push_back(h);
  }
  return out;
}

std::optional<std::string_view> findHeader(const std::vector<Header>& headers,
                                           std::string_view name) {
  for (const Header& h : headers) {
    if (equalsIgnoreCase(h.name, name)) return std::string_view{h.value};
  }
  return std::nullopt;
}

}  // namespace llmcache::upstream
