#include "upstream/platform.h"

#include <array>
#include <boost/algorithm/string/classification.hpp>
#include <boost/algorithm/string/trim.hpp>

namespace llmcache::upstream {
namespace {

std::string_view trim(std::string_view s) {  // spaces and tabs only
  return boost::algorithm::trim_copy_if(s, boost::algorithm::is_any_of(" \t"));
}

std::string withoutTrailingSlashes(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

bool isValidBaseUrl(std::string_view url) {
  std::string_view rest;
  if (url.starts_with("https://")) {
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else {
    return false;
  }
  if (url.find_first_of(" \t\r\n?#") != std::string_view::npos) return false;
  std::string_view host = rest.substr(0, rest.find('/'));
  return !host.empty();
}

}  // namespace

bool isReservedPlatformName(std::string_view name) {
  constexpr std::array<std::string_view, 7> kReserved = {
      "v1", "cache", "metrics", "healthz", "readyz", "dashboard", "admin"};
  for (std::string_view r : kReserved) {
    if (name == r) return true;
  }
  return false;
}

bool isValidPlatformName(std::string_view name) {
  if (name.empty() || name.size() > 64 || isReservedPlatformName(name)) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

PlatformTable::PlatformTable() {
  add({"openai", "https://api.openai.com/v1"});
  add({"openrouter", "https://openrouter.ai/api/v1"});
  add({"anthropic", "https://api.anthropic.com/v1"});
  add({"groq", "https://api.groq.com/openai/v1"});
}

void PlatformTable::add(Platform platform) {
  platform.baseUrl = withoutTrailingSlashes(std::move(platform.baseUrl));
  auto it = platforms_.find(platform.name);
  if (it != platforms_.end()) {
    it->second = std::move(platform);
  } else {
    std::string key = platform.name;
    platforms_.emplace(std::move(key), std::move(platform));
  }
}

const Platform* PlatformTable::find(std::string_view name) const {
  auto it = platforms_.find(name);
  return it == platforms_.end() ? nullptr : &it->second;
}

std::vector<Platform> PlatformTable::all() const {
  std::vector<Platform> out;
  out.reserve(platforms_.size());
  for (const auto& [name, p] : platforms_) out.push_back(p);
  return out;
}

Result<PlatformTable> parsePlatforms(std::string_view spec) {
  PlatformTable table;
  std::vector<std::string> seen;
  std::string_view rest = spec;
  while (!trim(rest).empty()) {
    size_t comma = rest.find(',');
    std::string_view entry = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (entry.empty())
      return makeError(Errc::InvalidArgument,
                       "platforms: empty entry in \"" + std::string{spec} + "\"");
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) {
      return makeError(Errc::InvalidArgument,
                       "platforms: \"" + std::string{entry} + "\" is not name=url");
    }
    std::string name{trim(entry.substr(0, eq))};
    std::string url = withoutTrailingSlashes(std::string{trim(entry.substr(eq + 1))});
    if (!isValidPlatformName(name)) {
      return makeError(Errc::InvalidArgument,
                       "platforms: \"" + name +
                           "\" is not a valid platform name ([a-z0-9_-]+, not " +
                           "v1/cache/metrics/healthz/readyz/dashboard/admin)");
    }
    if (!isValidBaseUrl(url)) {
      return makeError(Errc::InvalidArgument, "platforms: the URL of \"" + name +
                                                  "\" must be http:// or https:// with a host, "
                                                  "no query: \"" +
                                                  url + "\"");
    }
    for (const std::string& s : seen) {
      if (s == name)
        return makeError(Errc::InvalidArgument, "platforms: \"" + name + "\" is given twice");
    }
    seen.push_back(name);
    table.add(Platform{std::move(name), std::move(url)});
  }
  return table;
}

}  // namespace llmcache::upstream
