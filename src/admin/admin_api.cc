#include "admin/admin_api.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <boost/algorithm/string/classification.hpp>
#include <boost/algorithm/string/predicate.hpp>
#include <boost/algorithm/string/trim.hpp>
#include <charconv>
#include <chrono>
#include <locale>
#include <map>

#include "common/clock.h"
#include "common/json.h"

namespace llmcache::admin {

namespace {

using Reply = AdminApi::Reply;

std::array<unsigned char, 32> sha256(std::string_view s) {
  std::array<unsigned char, 32> out{};
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), out.data(), &n, EVP_sha256(), nullptr);
  return out;
}

Reply json(int status, const Json& body) { return Reply{status, toJson(body)}; }

Reply error(int status, std::string_view type, std::string message) {
  Json inner = Json::object();
  inner.set("message", Json::string(std::move(message)))
      .set("type", Json::string(std::string(type)));
  Json body = Json::object();
  body.set("error", std::move(inner));
  return json(status, body);
}
Reply badRequest(std::string message) {
  return error(400, "invalid_request_error", std::move(message));
}
Reply notFound(std::string message) { return error(404, "not_found_error", std::move(message)); }
Reply internal(const Error& e) { return error(500, "api_error", e.message); }
Reply forbidden(std::string message) { return error(403, "permission_error", std::move(message)); }
Reply methodNotAllowed(std::string_view method, std::string_view path, std::string allow) {
  Reply r = error(405, "invalid_request_error",
                  std::string(method) + " is not allowed on " + std::string(path) +
                      " (allowed: " + allow + ")");
  r.headers.emplace_back("Allow", std::move(allow));
  return r;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding of one path segment or query component ('+' is a space in a query only).
bool percentDecode(std::string_view in, bool plusIsSpace, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = hexValue(in[i + 1]), lo = hexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (plusIsSpace && in[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(in[i]);
    }
  }
  return true;
}

Result<std::map<std::string, std::string>> parseQuery(std::string_view query) {
  std::map<std::string, std::string> params;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    std::string name, value;
    if (!percentDecode(part.substr(0, eq), true, name) ||
        !percentDecode(eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1),
                       true, value))
      return makeError(Errc::InvalidArgument, "the query string has a malformed %-escape");
    params[std::move(name)] = std::move(value);  // a repeated parameter: the last wins
  }
  return params;
}

Result<void> onlyKnown(const std::map<std::string, std::string>& params,
                       std::initializer_list<std::string_view> known) {
  for (const auto& [name, value] : params) {
    bool ok = false;
    for (auto k : known) ok = ok || k == name;
    if (!ok) {
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return makeError(Errc::InvalidArgument,
                       "unknown query parameter \"" + name + "\" (expected " + list + ")");
    }
  }
  return {};
}

bool parseInt(std::string_view s, int64_t& v) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return !s.empty() && r.ec == std::errc{} && r.ptr == s.data() + s.size();
}

// ISO 8601 UTC or Unix milliseconds.
bool parseTime(std::string_view s, TimePoint& out) {
  int64_t ms;
  if (parseInt(s, ms)) {
    out = fromUnixMillis(ms);
    return true;
  }
  return parseIso8601(s, out);
}

Json rowJson(const index::Row& r) {
  Json tags = Json::array();
  for (const auto& t : r.tags) tags.push(Json::string(t));
  Json tiers = Json::array();
  for (auto [bit, name] : {std::pair{index::kTierMemory, "memory"},
                           {index::kTierDisk, "disk"},
                           {index::kTierS3, "s3"}})
    if (r.tiers & bit) tiers.push(Json::string(name));
  Json tokens = Json::object();
  tokens.set("input", Json::integer(r.tokensIn)).set("output", Json::integer(r.tokensOut));
  Json o = Json::object();
  o.set("cache_id", Json::string(r.cacheId))
      .set("cache_key", Json::string(r.cacheKey))
      .set("request_hash", Json::string(r.requestHash))
      .set("model", Json::string(r.model))
      .set("platform", Json::string(r.platform))
      .set("provider", Json::string(r.provider))
      .set("endpoint", Json::string(r.endpoint))
      .set("namespace", Json::string(r.cacheNamespace))
      .set("tenant", Json::string(r.tenant))
      .set("tags", std::move(tags))
      .set("created", Json::string(formatIso8601(r.created)))
      .set("expires_at", r.expires ? Json::string(formatIso8601(*r.expires)) : Json::null())
      .set("last_accessed", Json::string(formatIso8601(r.lastAccessed)))
      .set("hit_count", Json::integer(r.hitCount))
      .set("size_stored", Json::integer(r.sizeStored))
      .set("size_raw", Json::integer(r.sizeRaw))
      .set("tokens", std::move(tokens))
      .set("cost_total", Json::number(r.costTotal))
      .set("latency_ms", Json::integer(r.latencyMs))
      .set("tiers", std::move(tiers))
      .set("invalid", Json::boolean(r.invalid));
  return o;
}

// Case-insensitive "Bearer" and the credential after it; empty when the header is not that.
std::string_view bearerToken(std::string_view header) {
  const auto blank = boost::algorithm::is_any_of(" \t");
  header = boost::algorithm::trim_copy_if(header, blank);
  constexpr std::string_view kScheme = "bearer";
  if (header.size() <= kScheme.size() || !blank(header[kScheme.size()]) ||
      !boost::algorithm::iequals(header.substr(0, kScheme.size()), kScheme, std::locale::classic()))
    return {};
  return boost::algorithm::trim_copy_if(header.substr(kScheme.size()), blank);
}

// ASCII case-insensitive equality (header values, host names, media types).
bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool isDigits(std::string_view s, size_t maxLength) {
  if (s.empty() || s.size() > maxLength) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// 127.x.y.z in dotted decimal (each part 0..255): all of 127/8 is the loopback interface.
bool isLoopbackIpv4(std::string_view s) {
  int parts = 0;
  while (true) {
    const size_t dot = s.find('.');
    const std::string_view part = s.substr(0, dot);
    if (!isDigits(part, 3)) return false;
    int value = 0;
    std::from_chars(part.data(), part.data() + part.size(), value);
    if (value > 255 || (parts == 0 && value != 127)) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    s.remove_prefix(dot + 1);
  }
  return parts == 4;
}

bool isLoopbackName(std::string_view name) {
  return equalsIgnoringCase(name, "localhost") || name == "[::1]" || isLoopbackIpv4(name);
}

// application/json, in any case, with or without parameters (charset=utf-8).
bool isJsonType(std::string_view contentType) {
  std::string_view type = contentType.substr(0, contentType.find(';'));
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.remove_prefix(1);
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  return equalsIgnoringCase(type, "application/json");
}

// The state-changing routes take JSON only: a cross-site page cannot send that type without a
// CORS preflight (which is never granted), so a forged form or fetch() post gets this 415.
std::optional<Reply> requireJson(std::string_view contentType, std::string_view method,
                                 std::string_view path) {
  if (isJsonType(contentType)) return std::nullopt;
  return error(415, "invalid_request_error",
               std::string(method) + " " + std::string(path) +
                   " needs Content-Type: application/json" +
                   (contentType.empty() ? std::string(" (none was sent)")
                                        : " (not " + std::string(contentType) + ")"));
}

}  // namespace

bool AdminApi::isLoopbackHost(std::string_view host) {
  // [v6]:port, or name:port with a name that has no colon (a bare IPv6 address is not a Host).
  size_t end = host.size();
  if (host.starts_with('[')) {
    end = host.find(']');
    if (end == std::string_view::npos) return false;
    ++end;
  } else if (const size_t colon = host.find(':'); colon != std::string_view::npos) {
    end = colon;
  }
  if (end < host.size() && (host[end] != ':' || !isDigits(host.substr(end + 1), 5))) return false;
  return isLoopbackName(host.substr(0, end));
}

bool AdminApi::isLoopbackOrigin(std::string_view origin) {
  for (std::string_view scheme : {"http://", "https://"})
    if (origin.size() > scheme.size() &&
        equalsIgnoringCase(origin.substr(0, scheme.size()), scheme))
      return isLoopbackHost(origin.substr(scheme.size()));
  return false;
}

AdminApi::AdminApi(index::Index& index, invalidation::Invalidator& invalidator,
                   const config::Config& config, analytics::Analytics* analytics)
    : index_(index),
      invalidator_(invalidator),
      analytics_(analytics),
      tokenSet_(!config.adminToken.empty()) {
  if (tokenSet_) tokenDigest_ = sha256(config.adminToken);
}

bool AdminApi::owns(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  return path == "/cache" || path.starts_with("/cache/");
}

std::optional<Reply> AdminApi::authorize(const Caller& caller) const {
  if (tokenSet_) {
    const std::string_view token = bearerToken(caller.authorization);
    if (token.empty()) {
      Reply r = error(401, "authentication_error",
                      "missing admin token: send Authorization: Bearer <CACHE_ADMIN_TOKEN>");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return r;
    }
    const auto digest = sha256(token);
    if (CRYPTO_memcmp(digest.data(), tokenDigest_.data(), digest.size()) != 0) {
      Reply r = error(401, "authentication_error", "invalid admin token");
      r.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
      return r;
    }
    return std::nullopt;  // a remote operator with the token: any Host, any Origin
  }
  // No token: this machine's own clients only, and not a web page that one of them (the
  // operator's browser) has open: its requests come under a foreign Origin (cross-site) or, with
  // DNS rebinding, a foreign Host.
  if (!caller.fromLoopback)
    return forbidden(
        "the admin API answers only loopback clients while CACHE_ADMIN_TOKEN is not set");
  if (!isLoopbackHost(caller.host))
    return forbidden(
        "the admin API answers only requests to localhost, 127.0.0.1 or [::1] (the Host header) "
        "while CACHE_ADMIN_TOKEN is not set");
  if (!caller.origin.empty() && !isLoopbackOrigin(caller.origin))
    return forbidden(
        "the admin API answers no cross-origin request while CACHE_ADMIN_TOKEN is not set (the "
        "Origin header is not a loopback origin)");
  return std::nullopt;
}

Reply AdminApi::metrics(std::string_view method, const analytics::Metrics& metrics,
                        const Caller& caller) const {
  if (auto denied = authorize(caller)) return std::move(*denied);
  if (method != "GET") return methodNotAllowed(method, "/metrics", "GET");
  return Reply{200, metrics.prometheusText(), std::string(kMetricsContentType)};
}

Reply AdminApi::handle(std::string_view method, std::string_view target, std::string_view body,
                       const Caller& caller) {
  if (auto denied = authorize(caller)) return std::move(*denied);

  const size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query =
      q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);

  if (path == "/cache/invalidate") {
    if (method != "POST") return methodNotAllowed(method, path, "POST");
    if (auto refused = requireJson(caller.contentType, method, path)) return std::move(*refused);
    return invalidate(body);
  }
  if (path == "/cache/entries") {
    if (method != "GET") return methodNotAllowed(method, path, "GET");
    return listEntries(query);
  }
  if (path == "/cache/entry-by-hash") {
    if (method != "GET") return methodNotAllowed(method, path, "GET");
    return entryByHash(query);
  }
  if (path == "/cache/stats") {
    if (method != "GET") return methodNotAllowed(method, path, "GET");
    return stats();
  }
  if (path == "/cache/explain") {
    if (method != "GET") return methodNotAllowed(method, path, "GET");
    return explain(query);
  }
  if (path == "/cache/sizing") {
    if (method != "GET") return methodNotAllowed(method, path, "GET");
    if (!query.empty()) return badRequest("/cache/sizing takes no parameters");
    if (!sizingSource_) return notFound("the miss-ratio curves are off (CACHE_SIZING=off)");
    return json(200, sizingSource_());
  }
  if (path == "/cache/semantic") {
    if (method != "GET") return methodNotAllowed(method, path, "GET");
    if (!query.empty()) return badRequest("/cache/semantic takes no parameters");
    std::optional<Json> report = semanticSource_ ? semanticSource_() : std::nullopt;
    if (!report)
      return notFound(
          "the semantic cache is off (CACHE_SEMANTIC_THRESHOLD, CACHE_SEMANTIC_NAMESPACES, "
          "CACHE_SEMANTIC_SHADOW or CACHE_SEMANTIC_INDEX turns it on)");
    return json(200, *report);
  }
  if (path == "/cache/analytics" || path == "/cache/patterns") {
    if (method != "GET") return methodNotAllowed(method, path, "GET");
    return analyticsReport(query, path == "/cache/patterns");
  }
  constexpr std::string_view kEntryPrefix = "/cache/entries/";
  if (path.starts_with(kEntryPrefix) && path.size() > kEntryPrefix.size()) {
    const std::string_view raw = path.substr(kEntryPrefix.size());
    std::string id;
    if (raw.find('/') != std::string_view::npos || !percentDecode(raw, false, id) || id.empty())
      return notFound("no route for " + std::string(path));
    if (method == "GET") return getEntry(id);
    if (method == "DELETE") {
      // No body, no type: curl -X DELETE. A browser never sends a cross-site DELETE unasked.
      if (!body.empty() || !caller.contentType.empty())
        if (auto refused = requireJson(caller.contentType, method, path))
          return std::move(*refused);
      return deleteEntry(id);
    }
    return methodNotAllowed(method, path, "GET, DELETE");
  }
  return notFound("no admin route for " + std::string(path));
}

Reply AdminApi::invalidate(std::string_view body) {
  auto request = invalidation::parseRequest(body);
  if (!request) return badRequest(request.error().message);
  auto out = invalidator_.apply(*request);
  if (!out) return internal(out.error());
  Json ids = Json::array();
  for (const auto& id : out->cacheIds) ids.push(Json::string(id));
  Json o = Json::object();
  o.set("matched", Json::integer(static_cast<int64_t>(out->matched)))
      .set("invalidated", Json::integer(static_cast<int64_t>(out->invalidated)))
      .set("dry_run", Json::boolean(out->dryRun))
      .set("generation", Json::integer(static_cast<int64_t>(out->generation)))
      .set("cache_ids", std::move(ids))
      .set("cache_ids_truncated", Json::boolean(out->matched > out->cacheIds.size()));
  // The shared tier's part (entries of every gateway on the bucket), within the figures above.
  // A failed search is reported, not a failure of the call: the local part is done and the
  // other gateways must still hear of it (the gateway publishes only a 200).
  if (out->shared.searched) {
    Json s3 = Json::object()
                  .set("scanned", Json::integer(static_cast<int64_t>(out->shared.scanned)))
                  .set("matched", Json::integer(static_cast<int64_t>(out->shared.matched)))
                  .set("marked", Json::integer(static_cast<int64_t>(out->shared.marked)))
                  .set("complete", Json::boolean(out->shared.complete))
                  .set("continuing", Json::boolean(out->shared.continuing));
    if (!out->shared.error.empty()) s3.set("error", Json::string(out->shared.error));
    o.set("s3", std::move(s3));
  }
  return json(200, o);
}

Reply AdminApi::listEntries(std::string_view query) {
  auto params = parseQuery(query);
  if (!params) return badRequest(params.error().message);
  if (auto k = onlyKnown(*params, {"model", "tag", "namespace", "tenant", "from", "to", "limit",
                                   "cursor", "include_invalid"});
      !k)
    return badRequest(k.error().message);
  index::Filter f;
  for (const auto& [name, value] : *params) {
    if (name == "model")
      f.model = value;
    else if (name == "tag")
      f.tag = value;
    else if (name == "namespace")
      f.cacheNamespace = value;
    else if (name == "tenant")
      f.tenant = value;
    else if (name == "cursor")
      f.cursor = value;
    else if (name == "from" || name == "to") {
      TimePoint t;
      if (!parseTime(value, t))
        return badRequest(
            name + " must be an ISO 8601 UTC time (2026-01-01T00:00:00Z) or Unix milliseconds");
      (name == "from" ? f.from : f.to) = t;
    } else if (name == "limit") {
      int64_t n;
      if (!parseInt(value, n) || n < 1 || n > static_cast<int64_t>(index::kMaxPageSize))
        return badRequest("limit must be an integer from 1 to " +
                          std::to_string(index::kMaxPageSize));
      f.limit = static_cast<size_t>(n);
    } else if (name == "include_invalid") {
      if (value != "true" && value != "false")
        return badRequest("include_invalid must be true or false");
      f.includeInvalid = value == "true";
    }
  }
  auto page = index_.list(f);
  if (!page)
    return page.error().code == Errc::InvalidArgument ? badRequest(page.error().message)
                                                      : internal(page.error());
  Json data = Json::array();
  for (const auto& r : page->rows) data.push(rowJson(r));
  Json o = Json::object();
  o.set("data", std::move(data))
      .set("has_more", Json::boolean(page->nextCursor.has_value()))
      .set("next_cursor", page->nextCursor ? Json::string(*page->nextCursor) : Json::null());
  return json(200, o);
}

Reply AdminApi::getEntry(std::string_view cacheId) {
  auto row = index_.byCacheId(cacheId);
  if (!row) return internal(row.error());
  if (!*row) return notFound("no entry with cache_id " + std::string(cacheId));
  return json(200, rowJson(**row));
}

Reply AdminApi::deleteEntry(std::string_view cacheId) {
  auto out = invalidator_.apply({invalidation::Criterion::cacheId(std::string(cacheId)), false});
  if (!out) return internal(out.error());
  if (out->matched == 0) return notFound("no valid entry with cache_id " + std::string(cacheId));
  Json o = Json::object();
  o.set("cache_id", Json::string(std::string(cacheId)))
      .set("invalidated", Json::boolean(out->invalidated > 0))
      .set("generation", Json::integer(static_cast<int64_t>(out->generation)));
  return json(200, o);
}

Reply AdminApi::entryByHash(std::string_view query) {
  auto params = parseQuery(query);
  if (!params) return badRequest(params.error().message);
  if (auto k = onlyKnown(*params, {"request_hash"}); !k) return badRequest(k.error().message);
  auto it = params->find("request_hash");
  if (it == params->end() || it->second.empty()) return badRequest("request_hash is required");
  auto row = index_.byRequestHash(it->second);
  if (!row) return internal(row.error());
  if (!*row) return notFound("no valid entry with request_hash " + it->second);
  return json(200, rowJson(**row));
}

Reply AdminApi::explain(std::string_view query) {
  auto params = parseQuery(query);
  if (!params) return badRequest(params.error().message);
  if (auto k = onlyKnown(*params, {"key"}); !k) return badRequest(k.error().message);
  auto it = params->find("key");
  if (it == params->end() || it->second.empty()) return badRequest("key is required");
  std::optional<Json> found = explainer_ ? explainer_(it->second) : std::nullopt;
  if (!found)
    return notFound("no recent miss of cache key " + it->second +
                    " (the gateway keeps the last misses' requests only)");
  return json(200, *found);
}

Reply AdminApi::stats() {
  index_.flush();  // so that hits up to now are counted: an admin call may afford the write
  auto s = index_.stats();
  if (!s) return internal(s.error());
  Json o = Json::object();
  o.set("entries", Json::integer(static_cast<int64_t>(s->entries)))
      .set("bytes", Json::integer(static_cast<int64_t>(s->bytes)))
      .set("invalid_entries", Json::integer(static_cast<int64_t>(s->invalidEntries)))
      .set("hits", Json::integer(static_cast<int64_t>(s->hits)))
      .set("cost_saved", Json::number(s->costSaved))
      .set("tokens_saved", Json::integer(static_cast<int64_t>(s->tokensSaved)))
      .set("invalidation_generation",
           Json::integer(static_cast<int64_t>(invalidator_.generation())));
  return json(200, o);
}

Reply AdminApi::analyticsReport(std::string_view query, bool patterns) {
  if (!analytics_) return notFound("analytics is not enabled on this gateway");
  auto params = parseQuery(query);
  if (!params) return badRequest(params.error().message);
  if (!patterns)
    if (auto scope = params->find("scope"); scope != params->end()) {
      if (scope->second == "fleet") {
        if (params->size() > 1) return badRequest("scope=fleet takes no other parameter");
        return fleetReport();
      }
      if (scope->second != "gateway") return badRequest("scope must be gateway or fleet");
      params->erase(scope);
    }
  if (auto k = onlyKnown(*params, {"from", "to"}); !k) return badRequest(k.error().message);
  analytics::Query q;
  for (const auto& [name, value] : *params) {
    TimePoint t;
    if (!parseTime(value, t))
      return badRequest(
          name + " must be an ISO 8601 UTC time (2026-01-01T00:00:00Z) or Unix milliseconds");
    (name == "from" ? q.from : q.to) = t;
  }
  if (q.from && q.to && *q.to < *q.from) return badRequest("to must not be before from");
  auto out = patterns ? analytics_->patterns(q) : analytics_->analytics(q);
  if (!out) return internal(out.error());
  // Since the start, whatever from and to say: the tally is kept in memory (docs/record-replay.md).
  if (patterns && nearMisses_ && out->isObject()) out->set("near_misses", nearMisses_->report());
  // Whether ?scope=fleet answers here (the dashboard shows the fleet view then).
  if (!patterns) out->set("fleet_scope", Json::boolean(static_cast<bool>(fleetSource_)));
  // Whether GET /cache/sizing answers here (the dashboard's sizing panel asks only then).
  if (!patterns) out->set("sizing", Json::boolean(static_cast<bool>(sizingSource_)));
  // Whether GET /cache/semantic answers here (the dashboard's semantic panel asks only then).
  if (!patterns) out->set("semantic", Json::boolean(static_cast<bool>(semanticSource_)));
  return json(200, *out);
}

Reply AdminApi::fleetReport() {
  if (!fleetSource_) return notFound("fleet statistics need the S3 tier (CACHE_S3_BUCKET)");
  auto stats = fleetSource_();
  if (!stats) return internal(stats.error());
  Json out = std::move(*stats);
  // How fresh each gateway's part is: the age of its last published statistics; stale when older
  // than two of its metrics intervals (it may have stopped, or cannot reach the bucket).
  const TimePoint now = Clock::system().now();
  size_t stale = 0;
  if (Json* parts = out.find("by_instance"); parts && parts->isObject())
    for (Json& part : parts->items()) {
      TimePoint updated;
      auto text = part.getString("updated");
      if (!text || !parseIso8601(*text, updated)) continue;
      const double age = std::chrono::duration<double>(now - updated).count();
      const int64_t interval = part.getInt("interval_seconds").value_or(60);
      const bool fresh = age <= 2.0 * static_cast<double>(std::max<int64_t>(1, interval));
      part.set("age_seconds", Json::number(std::max(0.0, age)));
      part.set("fresh", Json::boolean(fresh));
      if (!fresh) ++stale;
    }
  out.set("scope", Json::string("fleet"));
  out.set("generated_at", Json::string(formatIso8601(now)));
  out.set("stale_instances", Json::integer(static_cast<int64_t>(stale)));
  return json(200, out);
}

}  // namespace llmcache::admin
