#include "upstream/headers.h"

#include <array>

namespace llmcache::upstream {
namespace {

char lowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool startsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && equalsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

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

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lowerAscii(a[i]) != lowerAscii(b[i])) return false;
  }
  return true;
}

bool isHopByHopOrManagedHeader(std::string_view name) {
  for (std::string_view h : kHopByHopOrManaged) {
    if (equalsIgnoreCase(name, h)) return true;
  }
  return startsWithIgnoreCase(name, "x-llmcache-");
}

std::vector<Header> forwardableHeaders(const std::vector<Header>& headers) {
  // Tokens listed by Connection headers (there may be several, each a comma-separated list).
  std::vector<std::string_view> named;
  for (const Header& h : headers) {
    if (!equalsIgnoreCase(h.name, "connection")) continue;
    std::string_view rest = h.value;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view token = trim(rest.substr(0, comma));
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
