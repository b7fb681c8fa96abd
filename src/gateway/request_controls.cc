#include "gateway/request_controls.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unicode/ustring.h>

#include <boost/algorithm/hex.hpp>
#include <boost/algorithm/string/classification.hpp>
#include <boost/algorithm/string/predicate.hpp>
#include <boost/algorithm/string/trim.hpp>
#include <boost/url/parse_query.hpp>
#include <charconv>
#include <ranges>

namespace llmcache::gateway {

namespace bhttp = http::bhttp;

namespace {

std::string_view trim(std::string_view s) {  // spaces and tabs only (HTTP's OWS)
  return boost::algorithm::trim_copy_if(s, boost::algorithm::is_any_of(" \t"));
}

// ICU's converter refuses ill-formed UTF-8 (overlongs, surrogates, truncated sequences).
bool isValidUtf8(std::string_view s) {
  UErrorCode error = U_ZERO_ERROR;
  int32_t length = 0;
  u_strFromUTF8(nullptr, 0, &length, s.data(), static_cast<int32_t>(s.size()), &error);
  return error == U_ZERO_ERROR || error == U_BUFFER_OVERFLOW_ERROR ||
         error == U_STRING_NOT_TERMINATED_WARNING;
}

std::optional<int64_t> parseNonNegative(std::string_view s) {
  int64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc{} || r.ptr != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

template <class F>
void forEachListItem(std::string_view header, F f) {
  for (auto part : header | std::views::split(',')) {
    std::string_view item = trim(std::string_view(part.begin(), part.end()));
    if (!item.empty()) f(item);
  }
}

}  // namespace

CacheControl parseCacheControl(std::string_view header) {
  CacheControl c;
  forEachListItem(header, [&](std::string_view d) {
    if (boost::algorithm::iequals(d, "no-cache"))
      c.noCache = true;
    else if (boost::algorithm::iequals(d, "no-store"))
      c.noStore = true;
    else if (boost::algorithm::istarts_with(d, "max-age="))
      c.maxAge = parseNonNegative(d.substr(8));
  });
  return c;
}

std::string credentialScope(std::string_view credential, std::string_view secret) {
  // A connection sends one credential over and over: remember the last one per thread (the
  // digest costs more than the rest of a memory hit; OpenSSL 3 fetches the algorithm per call).
  thread_local std::string lastCredential, lastSecret, lastScope;
  if (!lastScope.empty() && credential == lastCredential && secret == lastSecret) return lastScope;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (secret.empty()) {
    EVP_Digest(credential.data(), credential.size(), digest, &len, EVP_sha256(), nullptr);
  } else {
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(credential.data()), credential.size(), digest,
         &len);
  }
  std::string out;
  boost::algorithm::hex_lower(digest, digest + 8, std::back_inserter(out));
  lastCredential.assign(credential);
  lastSecret.assign(secret);
  lastScope = out;
  return out;
}

std::optional<std::string> queryParameter(std::string_view query, std::string_view name) {
  auto params = boost::urls::parse_query(query);
  if (!params) return std::nullopt;
  for (auto param : *params)
    if (param.key == name) return std::string(param.value);
  return std::nullopt;
}

Result<RequestControls> readControls(const http::Request& req, std::string_view query,
                                     const ScopeOptions& scope) {
  RequestControls c;
  if (auto ttl = req["x-llmcache-ttl"]; !ttl.empty()) {
    c.ttl = parseNonNegative(trim(ttl));
    if (!c.ttl)
      return makeError(Errc::InvalidArgument,
                       "x-llmcache-ttl must be a whole number of seconds >= 0");
  }
  c.keyNamespace = std::string(trim(req["x-llmcache-namespace"]));
  forEachListItem(req["x-llmcache-tags"], [&](std::string_view t) { c.tags.emplace_back(t); });
  // Both are stored with the entry and listed in /cache/entries (JSON): text, never raw bytes.
  if (!isValidUtf8(c.keyNamespace))
    return makeError(Errc::InvalidArgument, "x-llmcache-namespace must be valid UTF-8");
  for (const std::string& tag : c.tags)
    if (!isValidUtf8(tag))
      return makeError(Errc::InvalidArgument, "x-llmcache-tags must be valid UTF-8");

  // The caller's credential, from the first carrier present (Authorization, x-api-key, Azure's
  // api-key, Google's x-goog-api-key, a ?key= parameter: CACHE_SCOPE_CREDENTIALS).
  std::string credential;
  for (const std::string& source : scope.credentials) {
    if (source.rfind("query:", 0) == 0) {
      if (auto v = queryParameter(query, std::string_view(source).substr(6)); v && !v->empty())
        credential = "query:" + *v;
    } else if (auto v = req[source]; !v.empty()) {
      credential = std::string(v);
    }
    if (!credential.empty()) break;
  }
  if (!credential.empty()) c.callerHash = credentialScope(credential, scope.secret);
  if (scope.mode == "api_key" || scope.mode == "api-key") {
    // The tenant is the credential: answers paid with one key are not served to another.
    c.tenant = credential.empty() ? std::string(kAnonymousTenant) : c.callerHash;
  } else if (scope.mode.rfind("header:", 0) == 0) {
    c.tenant = std::string(trim(req[scope.mode.substr(7)]));
  }
  return c;
}

}  // namespace llmcache::gateway
