#pragma once
// The S3 layout (docs/s3-layout.md, version 2): object keys and the JSON of the objects that
// are not entries (metadata, pointers, index parts, statistics). Pure functions, no I/O.
// Version 2 changed only the by-date index (capped parts); entries, metadata, pointers and the
// instance files keep version 1, so version-1 readers still read entries.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cache/entry.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/result.h"

namespace llmcache::cache::s3 {

inline constexpr int kS3LayoutVersion = 1;  // pointers, metadata, global and instance files
// The by-date index: version 2 = capped parts and a bounded day view; version-1 segments
// (by-date/{day}/{instance}.json) are still read.
inline constexpr int kByDateVersion = 2;

// How an entry object is stored: plain JSON (entryToJson; compression off) or the codec's
// framing (encodeEntry: header, CRC32, zstd; compression on).
enum class EntryFormat { Json, Llmc };

// CACHE_S3_PREFIX as a key prefix: no leading '/', one trailing '/' unless empty.
std::string normalizePrefix(std::string_view prefix);

// The model id as one path segment: every char outside [A-Za-z0-9_-] becomes '_'
// ("openai/gpt-4.1-mini" -> "openai_gpt-4_1-mini"); empty -> "_"; at most 100 chars.
std::string modelSegment(std::string_view model);

// A cache_key as an object name: [A-Za-z0-9_-] kept, others '_', never empty, at most 200 chars
// (longer keys keep a prefix, a CRC32 of the whole key and their tail). Two keys can sanitize
// alike: the pointer holds the full cache_key and a mismatch is a miss.
std::string sanitizeKey(std::string_view cacheKey);

// "2026-01-01" of t (UTC).
std::string dayOf(TimePoint t);

struct S3Layout {
  std::string prefix;  // normalized

  // {prefix}llm-cache/{model}/{YYYY}/{MM}/{DD}/{HH}/{cache_id}.json (.json.zst for Llmc)
  std::string entryKey(const Entry& entry, EntryFormat format) const;
  // {prefix}llm-cache/{model}/{YYYY}/{MM}/{DD}/{HH}/{cache_id}.metadata.json
  std::string metadataKey(const Entry& entry) const;
  // {prefix}cache-index/by-hash/{request_hash[0:2]}/{request_hash}.json
  std::string byHashKey(std::string_view requestHash) const;
  // {prefix}cache-index/by-key/{sanitizeKey(cache_key)}.json
  std::string byKeyKey(std::string_view cacheKey) const;
  // {prefix}cache-index/by-date/{YYYY-MM-DD}/ : one segment per instance below it
  std::string byDatePrefix(std::string_view day) const;
  // Version 1 (read only): {prefix}cache-index/by-date/{YYYY-MM-DD}/{instance}.json
  std::string byDateSegmentKey(std::string_view day, std::string_view instanceId) const;
  // Version 2: {prefix}cache-index/by-date/{YYYY-MM-DD}/{instance}/ : that instance's parts
  std::string byDateInstancePrefix(std::string_view day, std::string_view instanceId) const;
  // {byDateInstancePrefix}{part, 6 digits at least}.json ("000012.json": listings sort by number)
  std::string byDatePartKey(std::string_view day, std::string_view instanceId, int64_t part) const;
  // {prefix}cache-index/by-date/{YYYY-MM-DD}.json : the merged view of that day's segments
  std::string byDateMergedKey(std::string_view day) const;
  // {prefix}cache-index/global/instances/ : per-instance cache_index.json and statistics.json
  std::string instancesPrefix() const;
  std::string instanceIndexKey(std::string_view instanceId) const;
  std::string instanceStatisticsKey(std::string_view instanceId) const;
  // {prefix}cache-index/invalid/{cache_id}.json : one record per entry marked invalid, what the
  // purge of marked entries lists
  std::string invalidPrefix() const;
  std::string invalidRecordKey(std::string_view cacheId) const;
  // The recent-keys journal (issue 16, visibility in seconds): one empty-ish marker per insert,
  // named by the writer's clock so that a reader lists only the last seconds (start-after).
  // {prefix}cache-index/recent-keys/
  std::string recentKeysPrefix() const;
  // {recentKeysPrefix}{unix ms, 13 digits}/{instance}/{sanitizeKey(cache_key)}.json
  std::string recentKeyMarker(TimePoint t, std::string_view instanceId,
                              std::string_view cacheKey) const;
  // {recentKeysPrefix}{unix ms, 13 digits}: listing after it yields the markers named at t or later
  std::string recentKeysStartAfter(TimePoint t) const;
  // The sanitized cache_key a marker names; nullopt for a key that is not a marker.
  std::optional<std::string> recentKeyName(std::string_view objectKey) const;
  // {prefix}cache-index/global/cache_index.json, statistics.json : merged views
  std::string globalIndexKey() const;
  std::string globalStatisticsKey() const;
};

// The entry minus its bodies (request, response, sse_events), plus "entry_key" and
// "layout_version": the {cache_id}.metadata.json object.
Json metadataJson(const Entry& entry, std::string_view entryKey);

// A by-hash / by-key pointer: what a lookup reads first.
struct Pointer {
  int version = kS3LayoutVersion;
  std::string cacheKey;
  std::string requestHash;
  std::string cacheId;
  std::string entryKey;
  EntryFormat format = EntryFormat::Json;
  std::string entrySha256;  // of the entry object's bytes: a damaged object is a miss
  TimePoint created{};
  std::optional<TimePoint> expiresAt;
  bool invalid = false;
  // With invalid (written only then): when and why it was marked ("invalidated_at",
  // "invalidation_reason").
  std::optional<TimePoint> invalidatedAt;
  std::string invalidationReason;
};
Json pointerToJson(const Pointer& pointer);
// Corrupt on a missing or mistyped field or a version this build does not read.
Result<Pointer> pointerFromJson(const Json& json);

// One entry in a by-date segment.
Json dayItemJson(const Entry& entry, std::string_view entryKey);

}  // namespace llmcache::cache::s3
