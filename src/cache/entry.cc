#include "cache/entry.h"

#include <openssl/rand.h>

#include <boost/algorithm/hex.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>

namespace llmcache::cache {
namespace {

Error corrupt(std::string message) {
  return makeError(Errc::Corrupt, "entry: " + std::move(message));
}

Json timeJson(TimePoint t) { return Json::string(formatIso8601(t)); }

// NaN and infinity have no JSON spelling; a cost can only be one through a pricing bug, and
// storing 0 keeps the entry readable instead of poisoning the file.
Json doubleJson(double v) { return Json::number(std::isfinite(v) ? v : 0.0); }

// Readers for optional members: absent leaves `out` untouched, present-but-mistyped is an error.
Result<void> readString(const Json& obj, std::string_view name, std::string& out) {
  const Json* v = obj.find(name);
  if (!v) return {};
  if (!v->isString()) return corrupt(std::string(name) + " must be a string");
  out = v->text();
  return {};
}

Result<void> readInt(const Json& obj, std::string_view name, int64_t& out) {
  const Json* v = obj.find(name);
  if (!v) return {};
  if (auto i = v->asInt64()) {
    out = *i;
    return {};
  }
  // Writers in other languages may spell an integer as 12.0; accept what rounds cleanly.
  if (auto d = v->asDouble(); d && std::abs(*d) < 9e18) {
    out = std::llround(*d);
    return {};
  }
  return corrupt(std::string(name) + " must be an integer");
}

Result<void> readDouble(const Json& obj, std::string_view name, double& out) {
  const Json* v = obj.find(name);
  if (!v) return {};
  auto d = v->asDouble();
  if (!d) return corrupt(std::string(name) + " must be a finite number");
  out = *d;
  return {};
}

Result<void> readTime(const Json& obj, std::string_view name, TimePoint& out) {
  const Json* v = obj.find(name);
  if (!v) return {};
  if (!v->isString() || !parseIso8601(v->text(), out))
    return corrupt(std::string(name) + " must be an ISO 8601 UTC time");
  return {};
}

// The entry's JSON text fields as values in the stored object (empty: null).
Json embedded(const std::string& text) {
  if (text.empty()) return Json::null();
  auto parsed = parseJson(text);
  return parsed ? std::move(*parsed) : Json::null();
}

}  // namespace

size_t Entry::approxBytes() const {
  size_t n = sizeof(Entry);
  for (const std::string* s : {&cacheId, &cacheKey, &requestHash, &endpoint, &model, &platform,
                               &provider, &cacheNamespace, &tenant})
    n += s->capacity();
  n += request.capacity() + response.capacity();
  for (const auto& t : tags) n += sizeof(std::string) + t.capacity();
  for (const auto& e : sseEvents) n += sizeof(SseEvent) + e.event.capacity() + e.data.capacity();
  for (const auto& [name, value] : responseHeaders)
    n += 2 * sizeof(std::string) + name.capacity() + value.capacity();
  return n;
}

Json entryToJson(const Entry& e) {
  Json j = Json::object();
  j.set("schema_version", Json::integer(e.schemaVersion));
  j.set("cache_id", Json::string(e.cacheId));
  j.set("cache_key", Json::string(e.cacheKey));
  j.set("request_hash", Json::string(e.requestHash));
  j.set("endpoint", Json::string(e.endpoint));
  j.set("request", embedded(e.request));
  j.set("request_timestamp", timeJson(e.requestTimestamp));
  j.set("response", embedded(e.response));
  j.set("response_timestamp", timeJson(e.responseTimestamp));
  j.set("status", Json::integer(e.status));
  j.set("model", Json::string(e.model));
  j.set("platform", Json::string(e.platform));
  j.set("provider", Json::string(e.provider));
  Json tokens = Json::object();
  tokens.set("input", Json::integer(e.tokensInput));
  tokens.set("output", Json::integer(e.tokensOutput));
  j.set("tokens", std::move(tokens));
  Json cost = Json::object();
  cost.set("input", doubleJson(e.costInput));
  cost.set("output", doubleJson(e.costOutput));
  cost.set("total", doubleJson(e.costTotal));
  j.set("cost", std::move(cost));
  j.set("latency_ms", Json::integer(e.latencyMs));
  j.set("hit_count", Json::integer(e.hitCount));
  j.set("last_accessed", timeJson(e.lastAccessed));
  j.set("expires_at", e.expiresAt ? timeJson(*e.expiresAt) : Json::null());
  Json tags = Json::array();
  for (const auto& t : e.tags) tags.push(Json::string(t));
  j.set("tags", std::move(tags));
  j.set("namespace", Json::string(e.cacheNamespace));
  // Optional (added within schema_version 1): written only for a scoped entry, so an unscoped
  // entry's JSON is what older writers produced.
  if (!e.tenant.empty()) j.set("tenant", Json::string(e.tenant));
  Json events = Json::array();
  for (const auto& ev : e.sseEvents) {
    Json o = Json::object();
    o.set("event", Json::string(ev.event));
    o.set("data", Json::string(ev.data));
    events.push(std::move(o));
  }
  j.set("sse_events", std::move(events));
  // Optional (added within schema_version 1): absent when there are none.
  if (!e.responseHeaders.empty()) {
    Json headers = Json::object();
    for (const auto& [name, value] : e.responseHeaders) headers.set(name, Json::string(value));
    j.set("response_headers", std::move(headers));
  }
  return j;
}

Result<Entry> entryFromJson(const Json& j) {
  if (!j.isObject()) return corrupt("not a JSON object");
  Entry e;

  int64_t version = 0;
  if (!j.find("schema_version")) return corrupt("schema_version is missing");
  if (auto r = readInt(j, "schema_version", version); !r) return r.error();
  if (version != kEntrySchemaVersion)
    return corrupt("schema_version " + std::to_string(version) + " is not one this build reads (" +
                   std::to_string(kEntrySchemaVersion) + ")");
  e.schemaVersion = static_cast<int>(version);

  // The identity fields and the answer itself are required: without them an entry cannot be
  // matched or served. Everything else defaults when absent (older writers, imports).
  for (std::string_view name : {"cache_key", "request_hash", "response"})
    if (!j.find(name)) return corrupt(std::string(name) + " is missing");

  int64_t status = e.status;
  Result<void> steps[] = {
      readString(j, "cache_id", e.cacheId),
      readString(j, "cache_key", e.cacheKey),
      readString(j, "request_hash", e.requestHash),
      readString(j, "endpoint", e.endpoint),
      readTime(j, "request_timestamp", e.requestTimestamp),
      readTime(j, "response_timestamp", e.responseTimestamp),
      readInt(j, "status", status),
      readString(j, "model", e.model),
      readString(j, "platform", e.platform),
      readString(j, "provider", e.provider),
      readInt(j, "latency_ms", e.latencyMs),
      readInt(j, "hit_count", e.hitCount),
      readTime(j, "last_accessed", e.lastAccessed),
      readString(j, "namespace", e.cacheNamespace),
      readString(j, "tenant", e.tenant),  // optional: absent (older writers) = unscoped
  };
  for (auto& r : steps)
    if (!r) return r.error();
  if (status < 0 || status > 999) return corrupt("status out of range");
  e.status = static_cast<int>(status);

  if (const Json* v = j.find("request"); v && !v->isNull()) e.request = toJson(*v);
  e.response = toJson(*j.find("response"));

  if (const Json* t = j.find("tokens"); t && !t->isNull()) {
    if (!t->isObject()) return corrupt("tokens must be an object");
    if (auto r = readInt(*t, "input", e.tokensInput); !r) return r.error();
    if (auto r = readInt(*t, "output", e.tokensOutput); !r) return r.error();
  }
  if (const Json* c = j.find("cost"); c && !c->isNull()) {
    if (!c->isObject()) return corrupt("cost must be an object");
    if (auto r = readDouble(*c, "input", e.costInput); !r) return r.error();
    if (auto r = readDouble(*c, "output", e.costOutput); !r) return r.error();
    if (auto r = readDouble(*c, "total", e.costTotal); !r) return r.error();
  }
  if (const Json* x = j.find("expires_at"); x && !x->isNull()) {
    TimePoint t;
    if (!x->isString() || !parseIso8601(x->text(), t))
      return corrupt("expires_at must be null or an ISO 8601 UTC time");
    e.expiresAt = t;
  }
  if (const Json* tags = j.find("tags"); tags && !tags->isNull()) {
    if (!tags->isArray()) return corrupt("tags must be an array");
    for (const auto& t : tags->items()) {
      if (!t.isString()) return corrupt("tags must hold strings");
      e.tags.emplace_back(t.text());
    }
  }
  if (const Json* evs = j.find("sse_events"); evs && !evs->isNull()) {
    if (!evs->isArray()) return corrupt("sse_events must be an array");
    for (const auto& ev : evs->items()) {
      if (!ev.isObject()) return corrupt("sse_events must hold objects");
      SseEvent s;
      if (auto r = readString(ev, "event", s.event); !r) return r.error();
      if (auto r = readString(ev, "data", s.data); !r) return r.error();
      e.sseEvents.push_back(std::move(s));
    }
  }
  if (const Json* hs = j.find("response_headers"); hs && !hs->isNull()) {
    if (!hs->isObject()) return corrupt("response_headers must be an object");
    const auto values = hs->items();
    const auto names = hs->keys();
    for (size_t i = 0; i < values.size(); ++i) {
      if (!values[i].isString()) return corrupt("response_headers must hold strings");
      e.responseHeaders.emplace_back(std::string(names[i]), std::string(values[i].text()));
    }
  }
  return e;
}

std::string newCacheId() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    // OpenSSL's generator failing means its seeding failed; the kernel's pool is the fallback.
    std::ifstream urandom("/dev/urandom", std::ios::binary);
    if (!urandom.read(reinterpret_cast<char*>(bytes), sizeof bytes))
      throwError(makeError(Errc::Io, "no random source for cache_id"));
  }
  std::string id(2 * sizeof bytes, '0');
  boost::algorithm::hex_lower(bytes, bytes + sizeof bytes, id.begin());
  return id;
}

}  // namespace llmcache::cache
