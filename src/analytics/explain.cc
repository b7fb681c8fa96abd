#include "analytics/explain.h"

#include <algorithm>
#include <cstdint>

#include "analytics/prompt.h"

namespace llmcache::analytics {

namespace {

constexpr size_t kValueChars = 40;
constexpr size_t kSnippetChars = 24;

std::string shortJson(const Json& v) {
  std::string s = toJson(v);
  if (s.size() > kValueChars) s = s.substr(0, kValueChars) + "...";
  return s;
}

// The whole UTF-8 characters of s, counted.
size_t utf8Chars(std::string_view s) {
  size_t n = 0;
  for (const char c : s)
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++n;
  return n;
}

std::string snippet(std::string_view s) {
  std::string out =
      s.size() > kSnippetChars ? std::string(s.substr(0, kSnippetChars)) + "..." : std::string(s);
  std::string quoted;
  writeJsonString(out, quoted);
  return quoted;
}

// Text that is only digits and the punctuation of dates, times and numbers: what a varying
// timestamp, date or counter in a prompt looks like where it differs.
bool digitsLike(std::string_view s) {
  bool digit = false;
  for (const char c : s) {
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (std::string_view("-:T .Z/+").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return digit;
}

struct Differ {
  size_t limit;
  size_t total = 0;
  std::vector<std::string> lines;
  std::vector<FieldDifference> fields;

  void add(const std::string& path, std::string what, std::string_view kind) {
    ++total;
    if (lines.size() >= limit) return;
    const std::string shown = path.empty() ? "(body)" : path;
    lines.push_back(shown + ": " + what);
    fields.push_back({shown, std::string(kind)});
  }

  void strings(const std::string& path, std::string_view a, std::string_view b) {
    size_t prefix = 0;
    while (prefix < a.size() && prefix < b.size() && a[prefix] == b[prefix]) ++prefix;
    // Whole UTF-8 characters on both sides: the middle starts and ends at a character boundary
    // (a byte at the end of a string is a boundary).
    auto continues = [](std::string_view s, size_t i) {
      return i < s.size() && (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80;
    };
    while (prefix > 0 && (continues(a, prefix) || continues(b, prefix))) --prefix;
    size_t suffix = 0;
    while (suffix < a.size() - prefix && suffix < b.size() - prefix &&
           a[a.size() - 1 - suffix] == b[b.size() - 1 - suffix])
      ++suffix;
    while (suffix > 0 && continues(a, a.size() - suffix)) --suffix;
    const std::string_view midA = a.substr(prefix, a.size() - prefix - suffix);
    const std::string_view midB = b.substr(prefix, b.size() - prefix - suffix);
    const size_t chars = std::max(utf8Chars(midA), utf8Chars(midB));
    const std::string_view kind = digitsLike(midA) && digitsLike(midB) ? "digits" : "text";
    add(path,
        std::to_string(chars) + (chars == 1 ? " character differs" : " characters differ") +
            " at offset " + std::to_string(utf8Chars(a.substr(0, prefix))) + " (" + snippet(midA) +
            " -> " + snippet(midB) + ")",
        kind);
  }

  void walk(const std::string& path, const Json& a, const Json& b) {
    if (a.isObject() && b.isObject()) {
      const auto ka = a.keys();
      for (size_t i = 0; i < ka.size(); ++i) {
        const std::string child =
            path.empty() ? std::string(ka[i]) : path + "." + std::string(ka[i]);
        if (const Json* vb = b.find(ka[i])) {
          walk(child, a.items()[i], *vb);
        } else {
          add(child, "removed", "removed");
        }
      }
      for (const std::string_view k : b.keys())
        if (!a.find(k))
          add(path.empty() ? std::string(k) : path + "." + std::string(k), "added", "added");
      return;
    }
    if (a.isArray() && b.isArray()) {
      const auto ia = a.items();
      const auto ib = b.items();
      const size_t common = std::min(ia.size(), ib.size());
      for (size_t i = 0; i < common; ++i) walk(path + "[" + std::to_string(i) + "]", ia[i], ib[i]);
      for (size_t i = common; i < ib.size(); ++i)
        add(path + "[" + std::to_string(i) + "]", "added", "added");
      for (size_t i = common; i < ia.size(); ++i)
        add(path + "[" + std::to_string(i) + "]", "removed", "removed");
      return;
    }
    if (a.isString() && b.isString()) {
      if (a.text() != b.text()) strings(path, a.text(), b.text());
      return;
    }
    if (a.isNumber() && b.isNumber()) {
      // 1.0 and 1 are one value to the provider but not to the key: say so when spelled apart.
      if (a.text() != b.text())
        add(path, std::string(a.text()) + " -> " + std::string(b.text()), "changed");
      return;
    }
    if (a.kind() == b.kind() && (a.isNull() || (a.isBool() && a.asBool() == b.asBool()))) return;
    add(path, shortJson(a) + " -> " + shortJson(b), "changed");
  }
};

}  // namespace

std::vector<std::string> diffRequests(const Json& stored, const Json& asked, size_t limit) {
  Differ d{.limit = limit, .total = 0, .lines = {}, .fields = {}};
  d.walk("", stored, asked);
  if (d.total > d.lines.size())
    d.lines.push_back("... " + std::to_string(d.total - d.lines.size()) + " more");
  return d.lines;
}

Json MissExplanation::toJson() const {
  Json o = Json::object();
  if (found) {
    Json n = Json::object();
    n.set("cache_key", Json::string(nearestKey));
    n.set("cache_id", Json::string(nearestCacheId));
    o.set("nearest", std::move(n));
  } else {
    o.set("nearest", Json::null());
  }
  Json diffs = Json::array();
  for (const std::string& d : differences) diffs.push(Json::string(d));
  o.set("differences", std::move(diffs));
  o.set("candidates", Json::integer(static_cast<int64_t>(candidates)));
  return o;
}

std::string MissExplanation::headerValue() const {
  std::string out;
  if (!found) {
    out = "no stored request of this tenant and endpoint";
  } else {
    out = "nearest " + nearestKey + ": ";
    if (differences.empty()) out += "same body (the key's context differs: headers, namespace)";
    for (size_t i = 0; i < differences.size(); ++i) out += (i ? "; " : "") + differences[i];
  }
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  if (out.size() > 1000) {
    size_t cut = 1000;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xc0) == 0x80) --cut;
    out = out.substr(0, cut) + "...";
  }
  return out;
}

MissExplanation explainMiss(const Json& asked, std::string_view tenant, std::string_view endpoint,
                            std::span<const cache::EntryPtr> candidates,
                            std::string_view askedKey) {
  struct Near {
    const cache::Entry* entry;
    int distance;
  };
  const uint64_t mine = simhash(llmcache::toJson(asked));
  std::vector<Near> near;
  for (const cache::EntryPtr& e : candidates) {
    if (!e || e->request.empty() || e->tenant != tenant || e->endpoint != endpoint) continue;
    if (!askedKey.empty() && e->cacheKey == askedKey) continue;
    near.push_back({e.get(), hammingDistance(mine, simhash(e->request))});
  }
  std::stable_sort(near.begin(), near.end(), [](const Near& a, const Near& b) {
    if (a.distance != b.distance) return a.distance < b.distance;
    return a.entry->responseTimestamp > b.entry->responseTimestamp;
  });
  if (near.size() > kExplainDiffed) near.resize(kExplainDiffed);

  MissExplanation best;
  size_t bestCount = SIZE_MAX;
  for (const Near& n : near) {
    auto stored = parseJson(n.entry->request);
    if (!stored) continue;
    Differ d{.limit = 20, .total = 0, .lines = {}, .fields = {}};
    d.walk("", *stored, asked);
    if (d.total < bestCount) {
      bestCount = d.total;
      best.found = true;
      best.nearestKey = n.entry->cacheKey;
      best.nearestCacheId = n.entry->cacheId;
      best.nearestCostUsd = n.entry->costTotal;
      best.fields = std::move(d.fields);
      best.differences = std::move(d.lines);
      if (d.total > best.differences.size())
        best.differences.push_back("... " + std::to_string(d.total - best.differences.size()) +
                                   " more");
    }
  }
  best.candidates = near.size();
  return best;
}

}  // namespace llmcache::analytics
