#include "invalidation/request.h"

#include <array>
#include <charconv>
#include <string>

namespace llmcache::invalidation {

namespace {

using namespace std::chrono_literals;

constexpr std::array<std::string_view, 7> kCriteria = {"model", "older_than", "pattern", "key",
                                                       "tag",   "namespace",  "cache_id"};
constexpr size_t kMaxValueBytes = 4096;
constexpr std::chrono::milliseconds kMaxDuration = std::chrono::hours(24 * 366 * 100);

Error invalid(std::string message) { return makeError(Errc::InvalidArgument, std::move(message)); }

std::string criteriaList() {
  std::string s;
  for (auto c : kCriteria) {
    if (!s.empty()) s += ", ";
    s += c;
  }
  return s;
}

}  // namespace

Result<std::chrono::milliseconds> parseDuration(std::string_view text) {
  auto bad = [&] {
    return invalid(
        "older_than \"" + std::string(text) +
        "\" is neither a duration (a number and one unit of s, m, h, d, w: \"90m\", \"7d\") "
        "nor an ISO 8601 UTC time (\"2026-01-01T00:00:00Z\")");
  };
  if (text.size() < 2 || text.size() > 16) return bad();
  const char unit = text.back();
  std::chrono::milliseconds scale;
  switch (unit) {
    case 's':
      scale = 1s;
      break;
    case 'm':
      scale = 1min;
      break;
    case 'h':
      scale = 1h;
      break;
    case 'd':
      scale = 24h;
      break;
    case 'w':
      scale = 24h * 7;
      break;
    default:
      return bad();
  }
  const std::string_view digits = text.substr(0, text.size() - 1);
  if (digits.find_first_not_of("0123456789") != std::string_view::npos) return bad();
  uint64_t n = 0;
  auto r = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (r.ec != std::errc{} || r.ptr != digits.data() + digits.size()) return bad();
  if (n > static_cast<uint64_t>(kMaxDuration / scale))
    return invalid("older_than \"" + std::string(text) + "\" is longer than 100 years");
  return scale * static_cast<int64_t>(n);
}

Result<void> validateGlob(std::string_view glob) {
  if (glob.empty()) return invalid("pattern must not be empty");
  if (glob.find('\0') != std::string_view::npos) return invalid("pattern must not contain NUL");
  for (size_t i = 0; i < glob.size(); ++i) {
    if (glob[i] == '\\') {
      if (i + 1 == glob.size())
        return invalid("pattern \"" + std::string(glob) + "\" ends in a lone '\\'");
      ++i;
    } else if (glob[i] == '[') {
      // POSIX: a ']' first in the set (after an optional '!') is a member, not the end.
      size_t j = i + 1;
      if (j < glob.size() && glob[j] == '!') ++j;
      if (j < glob.size() && glob[j] == ']') ++j;
      while (j < glob.size() && glob[j] != ']') ++j;
      if (j >= glob.size())
        return invalid("pattern \"" + std::string(glob) + "\" has a '[' at offset " +
                       std::to_string(i) + " that is never closed");
      i = j;
    }
  }
  return {};
}

Result<Request> parseRequest(const Json& body) {
  if (!body.isObject()) return invalid("the body must be a JSON object");
  Request req;
  std::string found;
  for (size_t i = 0; i < body.size(); ++i) {
    const std::string name(body.keys()[i]);
    const Json& value = body.items()[i];
    if (name == "dry_run") {
      if (!value.isBool()) return invalid("dry_run must be true or false");
      req.dryRun = value.asBool();
      continue;
    }
    bool known = false;
    for (auto c : kCriteria) known = known || c == name;
    if (!known)
      return invalid("unknown criterion \"" + name + "\": expected exactly one of " +
                     criteriaList() + " (and optionally dry_run)");
    if (!found.empty())
      return invalid("exactly one criterion expected, got both \"" + std::string(found) +
                     "\" and \"" + name + "\"");
    found = name;
    if (!value.isString()) return invalid(name + " must be a string");
    const std::string text(value.text());
    if (text.empty()) return invalid(name + " must not be empty");
    if (text.size() > kMaxValueBytes) return invalid(name + " is longer than 4096 bytes");
    if (name == "model") {
      req.criterion = Criterion::model(text);
    } else if (name == "older_than") {
      TimePoint at;
      if (parseIso8601(text, at)) {
        req.criterion = Criterion::olderThan(at);
      } else {
        auto d = parseDuration(text);
        if (!d) return d.error();
        req.criterion = Criterion::olderThan(*d);
      }
    } else if (name == "pattern") {
      if (auto g = validateGlob(text); !g) return g.error();
      req.criterion = Criterion::pattern(text);
    } else if (name == "key") {
      req.criterion = Criterion::key(text);
    } else if (name == "tag") {
      req.criterion = Criterion::tag(text);
    } else if (name == "namespace") {
      req.criterion = Criterion::cacheNamespace(text);
    } else {
      req.criterion = Criterion::cacheId(text);
    }
  }
  if (found.empty()) return invalid("no criterion: expected exactly one of " + criteriaList());
  return req;
}

Result<Request> parseRequest(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos)
    return invalid(
        "empty body: expected a JSON object with one criterion, e.g. {\"model\": \"gpt-4o\"}");
  auto json = parseJson(body);
  if (!json) return invalid("the body is not valid JSON: " + json.error().message);
  return parseRequest(*json);
}

}  // namespace llmcache::invalidation
