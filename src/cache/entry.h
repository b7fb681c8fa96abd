#pragma once
// Entry: one cached answer, in the seed's schema (DESIGN.md, Storage; docs/entry-format.md).
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/json.h"
#include "common/result.h"
#include "common/sse.h"

namespace llmcache::cache {

inline constexpr int kEntrySchemaVersion = 1;

// One recorded server-sent event: the same type the api module parses and replays.
using SseEvent = llmcache::SseEvent;

struct Entry {
  int schemaVersion = kEntrySchemaVersion;
  std::string cacheId;      // unique per stored answer (32 lowercase hex)
  std::string cacheKey;     // key spec v1 cache_key: model prefix + 16 hex
  std::string requestHash;  // key spec v1 request_hash: 32 hex; a hit must match it exactly
  std::string
      endpoint;  // openai.chat | openai.completions | openai.embeddings | anthropic.messages
  // The request body as compact JSON text (toJson), or empty when not kept: the memory tier drops
  // it (a hit never needs it; disk and S3 keep it). Never credentials (headers are not stored).
  std::string request;
  TimePoint requestTimestamp{};
  // The response body as compact JSON text (toJson of the parsed answer; for a streamed answer the
  // assembled body): kept serialized, so a hit sends these bytes as they are instead of walking a
  // DOM per request (toJson was ~5% of a memory hit's CPU under wrk), and an entry costs its
  // answer's bytes instead of a DOM's ~4x. Parse it (parseJson) where the structure is needed.
  std::string response;
  TimePoint responseTimestamp{};
  int status = 200;
  std::string model;     // the model id as requested
  std::string platform;  // the route's platform: openai, openrouter, anthropic, groq, ...
  std::string provider;  // the model id's vendor prefix ("openai" in "openai/gpt-4o"), or empty
  int64_t tokensInput = 0;
  int64_t tokensOutput = 0;
  double costInput = 0;  // US dollars
  double costOutput = 0;
  double costTotal = 0;
  int64_t latencyMs = 0;
  int64_t hitCount = 0;
  TimePoint lastAccessed{};
  std::optional<TimePoint> expiresAt;  // nullopt: never expires
  std::vector<std::string> tags;
  std::string cacheNamespace;  // x-llmcache-namespace, empty when none
  // The tenant scope used in the key (a keyed hash of the credential under CACHE_SCOPE=api_key,
  // a header value under header:NAME); empty when unscoped. Never a credential.
  std::string tenant;
  std::vector<SseEvent> sseEvents;  // the recorded stream, empty when the answer was not streamed
  // The provider's headers that a hit replays (upstream::isReplayableHeader's allowlist: the
  // request id, processing time; never a credential or a cookie), lowercase names, in order.
  std::vector<std::pair<std::string, std::string>> responseHeaders;

  bool expired(TimePoint now) const { return expiresAt && *expiresAt <= now; }
  // Bytes this entry holds, roughly: what the memory tier's byte bound counts.
  size_t approxBytes() const;
  friend bool operator==(const Entry&, const Entry&) = default;
};

// The entry as a JSON object with the seed's field names (cache_id, request_hash, tokens{input,
// output}, cost{input,output,total}, ...). This is what S3 readers and `llmcache export` see.
Json entryToJson(const Entry& entry);
// Reverse of entryToJson. Error (Errc::Corrupt) when a required field is missing or mistyped
// or schema_version is not one this build reads.
Result<Entry> entryFromJson(const Json& json);

// A fresh random cache_id (32 lowercase hex from the OS's random source).
std::string newCacheId();

}  // namespace llmcache::cache
