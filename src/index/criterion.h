#pragma once
// Criterion: which entries an invalidation selects (DESIGN.md, invalidation). It lives here, in
// the index, because the index answers it in SQL (Index::match) while the invalidation module
// parses it from JSON and also tests it against a single in-flight entry (matches()): both must
// agree exactly, so the glob and the age cut-off are defined once, below.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "cache/entry.h"
#include "common/clock.h"

namespace llmcache::index {

struct Criterion {
  enum class Kind { Model, OlderThan, Pattern, Key, Tag, Namespace, CacheId };

  Kind kind = Kind::Key;
  // Model: the model id, exactly. Pattern: an fnmatch(3) glob over cache_key OR model.
  // Key: a cache_key, exactly. Tag, Namespace, CacheId: exactly. Unused for OlderThan.
  std::string value;
  // OlderThan only, exactly one of the two: an age ("7d") counted back from the moment the
  // criterion is applied, or a fixed instant. Entries whose response timestamp is strictly
  // before the cut-off match.
  std::optional<std::chrono::milliseconds> age;
  std::optional<TimePoint> before;

  // The OlderThan cut-off when applied at `now`.
  TimePoint cutoff(TimePoint now) const {
    return before ? *before : now - age.value_or(std::chrono::milliseconds{0});
  }
  // The same criterion with an age turned into a fixed instant: what an applied invalidation
  // remembers, so that "older than 7d" keeps meaning the same entries later.
  Criterion resolved(TimePoint now) const;
  // "model=gpt-4o", "older_than<2026-01-01T00:00:00.000Z", ... for logs and replies.
  std::string describe(TimePoint now) const;

  static Criterion model(std::string m) { return {Kind::Model, std::move(m), {}, {}}; }
  static Criterion olderThan(std::chrono::milliseconds a) { return {Kind::OlderThan, {}, a, {}}; }
  static Criterion olderThan(TimePoint t) { return {Kind::OlderThan, {}, {}, t}; }
  static Criterion pattern(std::string g) { return {Kind::Pattern, std::move(g), {}, {}}; }
  static Criterion key(std::string k) { return {Kind::Key, std::move(k), {}, {}}; }
  static Criterion tag(std::string t) { return {Kind::Tag, std::move(t), {}, {}}; }
  static Criterion cacheNamespace(std::string n) { return {Kind::Namespace, std::move(n), {}, {}}; }
  static Criterion cacheId(std::string id) { return {Kind::CacheId, std::move(id), {}, {}}; }
};

// fnmatch(3) with no flags: '*' and '?' also match '/' (model ids contain one), "[abc]",
// "[!abc]", "[a-z]" and backslash escapes as POSIX defines them.
bool globMatch(std::string_view pattern, std::string_view text);

// Whether entry is selected by criterion applied at `now`: the in-memory twin of Index::match
// (which also skips rows already marked invalid; an Entry has no such flag).
bool matches(const Criterion& criterion, const cache::Entry& entry, TimePoint now);

}  // namespace llmcache::index
