#pragma once
// An invalidation request as the admin API and `llmcache invalidate` receive it:
//   {"model": "gpt-4o"}                      entries of that model
//   {"older_than": "7d"}                     entries whose response is older than 7 days
//   {"older_than": "2026-01-01T00:00:00Z"}   ... than an instant (ISO 8601 UTC)
//   {"pattern": "gpt-4o*"}                   fnmatch glob over cache_key OR model
//   {"key": "gpt-4o:0011223344556677"}       one cache_key
//   {"tag": "eval"}, {"namespace": "tenant-1"}, {"cache_id": "..."}
// exactly one of them, plus optional "dry_run": true (count, change nothing).
#include <chrono>
#include <optional>
#include <string_view>

#include "common/json.h"
#include "common/result.h"
#include "index/criterion.h"

namespace llmcache::invalidation {

using Criterion = index::Criterion;

struct Request {
  Criterion criterion;
  bool dryRun = false;
  // Not parsed from the body. When the invalidation was issued, if not now: a record from another
  // gateway carries its creation time. Entries stored before it and matching are condemned
  // (Invalidator::condemns).
  std::optional<TimePoint> issuedAt = {};
  // Whether a shared tier (S3) is searched beyond the index (Invalidator::setSharedTier). False
  // for another gateway's record: that gateway searched the bucket already.
  bool searchShared = true;
};

// Errors (InvalidArgument, the message says which): not an object, no criterion, two criteria,
// an unknown member, a value of the wrong type or empty, a malformed duration, instant or glob.
Result<Request> parseRequest(const Json& body);
// Same, from the body's text; an empty (or all-whitespace) body is its own error.
Result<Request> parseRequest(std::string_view body);

// "90m", "7d": a non-negative integer and one unit of s, m, h, d, w. At most 100 years.
Result<std::chrono::milliseconds> parseDuration(std::string_view text);
// A glob fnmatch(3) can use as meant: non-empty, every '[' closed, no trailing lone '\'.
Result<void> validateGlob(std::string_view glob);

}  // namespace llmcache::invalidation
