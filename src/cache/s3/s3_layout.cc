#include "cache/s3/s3_layout.h"

#include <zlib.h>

#include <cstdio>
#include <ctime>

namespace llmcache::cache::s3 {
namespace {

bool keptChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

std::string replaceOthers(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (!keptChar(c)) c = '_';
  return out;
}

std::tm utc(TimePoint t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return tm;
}

// llm-cache/{model}/{YYYY}/{MM}/{DD}/{HH}/{cache_id}
std::string entryStem(const std::string& prefix, const Entry& entry) {
  const std::tm tm = utc(entry.responseTimestamp);
  char date[64];
  std::snprintf(date, sizeof date, "%04d/%02d/%02d/%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour);
  std::string id = replaceOthers(entry.cacheId);
  if (id.empty()) id.assign(1, '_');
  return prefix + "llm-cache/" + modelSegment(entry.model) + "/" + date + "/" + id;
}

Error corrupt(std::string message) {
  return makeError(Errc::Corrupt, "s3 pointer: " + std::move(message));
}

}  // namespace

std::string normalizePrefix(std::string_view prefix) {
  while (!prefix.empty() && prefix.front() == '/') prefix.remove_prefix(1);
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  return prefix.empty() ? std::string() : std::string(prefix) + "/";
}

std::string modelSegment(std::string_view model) {
  std::string out = replaceOthers(model.substr(0, 100));
  return out.empty() ? "_" : out;
}

std::string sanitizeKey(std::string_view cacheKey) {
  std::string name = replaceOthers(cacheKey);
  if (name.empty()) return "_";
  if (name.size() <= 200) return name;
  char crc[9];
  std::snprintf(crc, sizeof crc, "%08lx",
                crc32(0L, reinterpret_cast<const Bytef*>(cacheKey.data()),
                      static_cast<uInt>(cacheKey.size())));
  return name.substr(0, 158) + "_" + crc + "_" + name.substr(name.size() - 32);
}

std::string dayOf(TimePoint t) {
  const std::tm tm = utc(t);
  char day[48];
  std::snprintf(day, sizeof day, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  return day;
}

std::string S3Layout::entryKey(const Entry& entry, EntryFormat format) const {
  return entryStem(prefix, entry) + (format == EntryFormat::Json ? ".json" : ".json.zst");
}
std::string S3Layout::metadataKey(const Entry& entry) const {
  return entryStem(prefix, entry) + ".metadata.json";
}
std::string S3Layout::byHashKey(std::string_view requestHash) const {
  std::string h = replaceOthers(requestHash);
  if (h.empty()) h.assign(1, '_');
  std::string fan = h.substr(0, 2);
  fan.resize(2, '_');
  return prefix + "cache-index/by-hash/" + fan + "/" + h + ".json";
}
std::string S3Layout::byKeyKey(std::string_view cacheKey) const {
  return prefix + "cache-index/by-key/" + sanitizeKey(cacheKey) + ".json";
}
std::string S3Layout::byDatePrefix(std::string_view day) const {
  return prefix + "cache-index/by-date/" + std::string(day) + "/";
}
std::string S3Layout::byDateSegmentKey(std::string_view day, std::string_view instanceId) const {
  return byDatePrefix(day) + replaceOthers(instanceId) + ".json";
}
std::string S3Layout::byDateInstancePrefix(std::string_view day,
                                           std::string_view instanceId) const {
  return byDatePrefix(day) + replaceOthers(instanceId) + "/";
}
std::string S3Layout::byDatePartKey(std::string_view day, std::string_view instanceId,
                                    int64_t part) const {
  char n[32];
  std::snprintf(n, sizeof n, "%06lld", static_cast<long long>(part));
  return byDateInstancePrefix(day, instanceId) + n + ".json";
}
std::string S3Layout::byDateMergedKey(std::string_view day) const {
  return prefix + "cache-index/by-date/" + std::string(day) + ".json";
}
std::string S3Layout::invalidPrefix() const { return prefix + "cache-index/invalid/"; }
std::string S3Layout::invalidRecordKey(std::string_view cacheId) const {
  std::string id = replaceOthers(cacheId);
  if (id.empty()) id.assign(1, '_');
  return invalidPrefix() + id + ".json";
}
std::string S3Layout::recentKeysPrefix() const { return prefix + "cache-index/recent-keys/"; }

std::string S3Layout::recentKeysStartAfter(TimePoint t) const {
  const long long ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%013lld", ms < 0 ? 0LL : ms);
  return recentKeysPrefix() + stamp;
}

std::string S3Layout::recentKeyMarker(TimePoint t, std::string_view instanceId,
                                      std::string_view cacheKey) const {
  std::string id = replaceOthers(instanceId);
  if (id.empty()) id.assign(1, '_');
  return recentKeysStartAfter(t) + "/" + id + "/" + sanitizeKey(cacheKey) + ".json";
}

std::optional<std::string> S3Layout::recentKeyName(std::string_view objectKey) const {
  const std::string p = recentKeysPrefix();
  if (objectKey.size() <= p.size() + 5 || objectKey.substr(0, p.size()) != p ||
      objectKey.substr(objectKey.size() - 5) != ".json")
    return std::nullopt;
  objectKey.remove_prefix(p.size());
  objectKey.remove_suffix(5);
  // {ms}/{instance}/{name}: exactly two slashes, the name after the second.
  const size_t first = objectKey.find('/');
  if (first == std::string_view::npos) return std::nullopt;
  const size_t second = objectKey.find('/', first + 1);
  if (second == std::string_view::npos || objectKey.find('/', second + 1) != std::string_view::npos)
    return std::nullopt;
  std::string_view name = objectKey.substr(second + 1);
  if (name.empty()) return std::nullopt;
  return std::string(name);
}

std::string S3Layout::instancesPrefix() const { return prefix + "cache-index/global/instances/"; }
std::string S3Layout::instanceIndexKey(std::string_view instanceId) const {
  return instancesPrefix() + replaceOthers(instanceId) + "/cache_index.json";
}
std::string S3Layout::instanceStatisticsKey(std::string_view instanceId) const {
  return instancesPrefix() + replaceOthers(instanceId) + "/statistics.json";
}
std::string S3Layout::globalIndexKey() const {
  return prefix + "cache-index/global/cache_index.json";
}
std::string S3Layout::globalStatisticsKey() const {
  return prefix + "cache-index/global/statistics.json";
}

Json metadataJson(const Entry& entry, std::string_view entryKey) {
  Json j = entryToJson(entry);
  j.erase("request");
  j.erase("response");
  j.erase("sse_events");
  j.set("streamed", Json::boolean(!entry.sseEvents.empty()));
  j.set("entry_key", Json::string(std::string(entryKey)));
  j.set("layout_version", Json::integer(kS3LayoutVersion));
  return j;
}

Json pointerToJson(const Pointer& p) {
  Json j = Json::object();
  j.set("version", Json::integer(p.version));
  j.set("cache_key", Json::string(p.cacheKey));
  j.set("request_hash", Json::string(p.requestHash));
  j.set("cache_id", Json::string(p.cacheId));
  j.set("entry_key", Json::string(p.entryKey));
  j.set("entry_format", Json::string(p.format == EntryFormat::Json ? "json" : "llmc"));
  j.set("entry_sha256", Json::string(p.entrySha256));
  j.set("created", Json::string(formatIso8601(p.created)));
  j.set("expires_at", p.expiresAt ? Json::string(formatIso8601(*p.expiresAt)) : Json::null());
  j.set("invalid", Json::boolean(p.invalid));
  if (p.invalid) {
    j.set("invalidated_at",
          p.invalidatedAt ? Json::string(formatIso8601(*p.invalidatedAt)) : Json::null());
    j.set("invalidation_reason", Json::string(p.invalidationReason));
  }
  return j;
}

Result<Pointer> pointerFromJson(const Json& j) {
  if (!j.isObject()) return corrupt("not a JSON object");
  Pointer p;
  auto version = j.getInt("version");
  if (!version) return corrupt("version is missing");
  if (*version != kS3LayoutVersion)
    return corrupt("version " + std::to_string(*version) + " is not one this build reads");
  p.version = static_cast<int>(*version);
  struct Field {
    const char* name;
    std::string* out;
    bool required;
  };
  for (Field f :
       {Field{"cache_key", &p.cacheKey, true}, Field{"request_hash", &p.requestHash, true},
        Field{"cache_id", &p.cacheId, true}, Field{"entry_key", &p.entryKey, true},
        Field{"entry_sha256", &p.entrySha256, false}}) {
    auto v = j.getString(f.name);
    if (!v) {
      if (f.required || j.find(f.name)) return corrupt(std::string(f.name) + " must be a string");
      continue;
    }
    *f.out = std::string(*v);
  }
  const auto format = j.getString("entry_format").value_or("json");
  if (format == "json")
    p.format = EntryFormat::Json;
  else if (format == "llmc")
    p.format = EntryFormat::Llmc;
  else
    return corrupt("entry_format " + std::string(format) + " is unknown");
  if (auto created = j.getString("created"); !created || !parseIso8601(*created, p.created))
    return corrupt("created must be an ISO 8601 time");
  if (const Json* e = j.find("expires_at"); e && !e->isNull()) {
    TimePoint t;
    if (!e->isString() || !parseIso8601(e->text(), t))
      return corrupt("expires_at must be an ISO 8601 time or null");
    p.expiresAt = t;
  }
  p.invalid = j.getBool("invalid").value_or(false);
  if (auto at = j.getString("invalidated_at")) {
    TimePoint t;
    if (parseIso8601(*at, t)) p.invalidatedAt = t;
  }
  p.invalidationReason = std::string(j.getString("invalidation_reason").value_or(""));
  return p;
}

Json dayItemJson(const Entry& entry, std::string_view entryKey) {
  Json j = Json::object();
  j.set("cache_id", Json::string(entry.cacheId));
  j.set("cache_key", Json::string(entry.cacheKey));
  j.set("request_hash", Json::string(entry.requestHash));
  j.set("model", Json::string(entry.model));
  j.set("entry_key", Json::string(std::string(entryKey)));
  j.set("response_timestamp", Json::string(formatIso8601(entry.responseTimestamp)));
  j.set("cost_total", Json::number(entry.costTotal));
  j.set("tokens_input", Json::integer(entry.tokensInput));
  j.set("tokens_output", Json::integer(entry.tokensOutput));
  return j;
}

}  // namespace llmcache::cache::s3
