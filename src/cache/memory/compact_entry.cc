#include "cache/memory/compact_entry.h"

#include <boost/algorithm/hex.hpp>
#include <cstdint>
#include <cstring>

namespace llmcache::cache {
namespace {

// Layout (all integers little-endian varints unless noted):
//   flags (1 byte: bit 0 cache_id as 16 bytes, bit 1 request_hash as 16 bytes, bit 2 has expiry)
//   cache_key (length + bytes; first, so packedCacheKey reads it without the rest)
//   cache_id, request_hash (16 raw bytes, or length + bytes)
//   endpoint, model, platform, provider, namespace, tenant (length + bytes each)
//   schema_version, status
//   response_timestamp (8 raw bytes: nanoseconds since the epoch)
//   request_timestamp, last_accessed, expires_at: as (response_timestamp - t) or
//     (t - response_timestamp), modulo 2^64 (small for real entries; exact for any)
//   tokens in, tokens out, latency_ms, hit_count (as uint64, modulo 2^64)
//   cost input, output, total (8 raw bytes each)
//   tags (count, then each), SSE events (count, then event and data of each), response
//     headers (count, then name and value of each)
//   response (length + bytes)
enum : uint8_t { kIdBinary = 1, kHashBinary = 2, kHasExpiry = 4 };

void putVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void putString(std::string& out, std::string_view s) {
  putVarint(out, s.size());
  out.append(s);
}

void putRaw64(std::string& out, uint64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);
  out.append(b, 8);
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// 32 lowercase hex digits (what newCacheId and the key spec write) as 16 bytes.
bool putHex16(std::string& out, std::string_view s) {
  if (s.size() != 32) return false;
  for (char c : s)
    if (hexValue(c) < 0) return false;
  for (size_t i = 0; i < 32; i += 2)
    out.push_back(static_cast<char>(hexValue(s[i]) * 16 + hexValue(s[i + 1])));
  return true;
}

uint64_t nanos(TimePoint t) { return static_cast<uint64_t>(t.time_since_epoch().count()); }
TimePoint fromNanos(uint64_t n) { return TimePoint{TimePoint::duration{static_cast<int64_t>(n)}}; }

struct Reader {
  const char* p;

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      const auto byte = static_cast<uint8_t>(*p++);
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return v;
    }
  }
  std::string_view view() {
    const size_t n = varint();
    std::string_view s(p, n);
    p += n;
    return s;
  }
  std::string string() { return std::string(view()); }
  uint64_t raw64() {
    uint64_t v;
    std::memcpy(&v, p, 8);
    p += 8;
    return v;
  }
  double number() {
    const uint64_t bits = raw64();
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
  }
  std::string hex16() {
    std::string s(32, '0');
    boost::algorithm::hex_lower(p, p + 16, s.begin());
    p += 16;
    return s;
  }
};

void putDouble(std::string& out, double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, 8);
  putRaw64(out, bits);
}

}  // namespace

std::string packEntry(const Entry& e) {
  std::string out;
  out.reserve(160 + e.cacheKey.size() + e.model.size() + e.response.size());
  out.push_back(0);
  uint8_t flags = 0;
  putString(out, e.cacheKey);
  if (putHex16(out, e.cacheId))
    flags |= kIdBinary;
  else
    putString(out, e.cacheId);
  if (putHex16(out, e.requestHash))
    flags |= kHashBinary;
  else
    putString(out, e.requestHash);
  for (const std::string* s :
       {&e.endpoint, &e.model, &e.platform, &e.provider, &e.cacheNamespace, &e.tenant})
    putString(out, *s);
  putVarint(out, static_cast<uint64_t>(e.schemaVersion));
  putVarint(out, static_cast<uint64_t>(e.status));
  const uint64_t response = nanos(e.responseTimestamp);
  putRaw64(out, response);
  putVarint(out, response - nanos(e.requestTimestamp));
  putVarint(out, nanos(e.lastAccessed) - response);
  if (e.expiresAt) {
    flags |= kHasExpiry;
    putVarint(out, nanos(*e.expiresAt) - response);
  }
  for (int64_t v : {e.tokensInput, e.tokensOutput, e.latencyMs, e.hitCount})
    putVarint(out, static_cast<uint64_t>(v));
  putDouble(out, e.costInput);
  putDouble(out, e.costOutput);
  putDouble(out, e.costTotal);
  putVarint(out, e.tags.size());
  for (const auto& t : e.tags) putString(out, t);
  putVarint(out, e.sseEvents.size());
  for (const auto& ev : e.sseEvents) {
    putString(out, ev.event);
    putString(out, ev.data);
  }
  putVarint(out, e.responseHeaders.size());
  for (const auto& [name, value] : e.responseHeaders) {
    putString(out, name);
    putString(out, value);
  }
  putString(out, e.response);
  out[0] = static_cast<char>(flags);
  out.shrink_to_fit();
  return out;
}

std::string_view packedCacheKey(std::string_view block) {
  Reader r{block.data() + 1};
  return r.view();
}

Entry unpackEntry(std::string_view block) {
  Entry e;
  const auto flags = static_cast<uint8_t>(block[0]);
  Reader r{block.data() + 1};
  e.cacheKey = r.string();
  e.cacheId = (flags & kIdBinary) ? r.hex16() : r.string();
  e.requestHash = (flags & kHashBinary) ? r.hex16() : r.string();
  for (std::string* s :
       {&e.endpoint, &e.model, &e.platform, &e.provider, &e.cacheNamespace, &e.tenant})
    *s = r.string();
  e.schemaVersion = static_cast<int>(r.varint());
  e.status = static_cast<int>(r.varint());
  const uint64_t response = r.raw64();
  e.responseTimestamp = fromNanos(response);
  e.requestTimestamp = fromNanos(response - r.varint());
  e.lastAccessed = fromNanos(response + r.varint());
  if (flags & kHasExpiry) e.expiresAt = fromNanos(response + r.varint());
  for (int64_t* v : {&e.tokensInput, &e.tokensOutput, &e.latencyMs, &e.hitCount})
    *v = static_cast<int64_t>(r.varint());
  e.costInput = r.number();
  e.costOutput = r.number();
  e.costTotal = r.number();
  e.tags.resize(r.varint());
  for (auto& t : e.tags) t = r.string();
  e.sseEvents.resize(r.varint());
  for (auto& ev : e.sseEvents) {
    ev.event = r.string();
    ev.data = r.string();
  }
  e.responseHeaders.resize(r.varint());
  for (auto& [name, value] : e.responseHeaders) {
    name = r.string();
    value = r.string();
  }
  e.response = r.string();
  return e;
}

}  // namespace llmcache::cache
