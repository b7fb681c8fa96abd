#include "index/criterion.h"

#include <fnmatch.h>

#include <algorithm>

namespace llmcache::index {

Criterion Criterion::resolved(TimePoint now) const {
  Criterion c = *this;
  if (c.kind == Kind::OlderThan) {
    c.before = cutoff(now);
    c.age.reset();
  }
  return c;
}

std::string Criterion::describe(TimePoint now) const {
  switch (kind) {
    case Kind::Model:
      return "model=" + value;
    case Kind::OlderThan:
      return "older_than<" + formatIso8601(cutoff(now));
    case Kind::Pattern:
      return "pattern=" + value;
    case Kind::Key:
      return "key=" + value;
    case Kind::Tag:
      return "tag=" + value;
    case Kind::Namespace:
      return "namespace=" + value;
    case Kind::CacheId:
      return "cache_id=" + value;
  }
  return "?";
}

bool globMatch(std::string_view pattern, std::string_view text) {
  // fnmatch needs NUL-terminated strings; an embedded NUL would silently cut either short.
  if (pattern.find('\0') != std::string_view::npos || text.find('\0') != std::string_view::npos)
    return false;
  return ::fnmatch(std::string(pattern).c_str(), std::string(text).c_str(), 0) == 0;
}

bool matches(const Criterion& c, const cache::Entry& e, TimePoint now) {
  switch (c.kind) {
    case Criterion::Kind::Model:
      return e.model == c.value;
    case Criterion::Kind::OlderThan:
      return e.responseTimestamp < c.cutoff(now);
    case Criterion::Kind::Pattern:
      return globMatch(c.value, e.cacheKey) || globMatch(c.value, e.model);
    case Criterion::Kind::Key:
      return e.cacheKey == c.value;
    case Criterion::Kind::Tag:
      return std::find(e.tags.begin(), e.tags.end(), c.value) != e.tags.end();
    case Criterion::Kind::Namespace:
      return e.cacheNamespace == c.value;
    case Criterion::Kind::CacheId:
      return e.cacheId == c.value;
  }
  return false;
}

}  // namespace llmcache::index
