#include "config/config.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/algorithm/hex.hpp>
#include <boost/algorithm/string.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "common/json.h"

namespace llmcache::config {

namespace {

template <class T>
T parseNumber(const std::string& name, const std::string& v) {
  T out{};
  auto r = std::from_chars(v.data(), v.data() + v.size(), out);
  if (r.ec != std::errc{} || r.ptr != v.data() + v.size())
    throw ConfigError(name + ": expected a whole number, got '" + v + "'");
  return out;
}

bool parseBool(const std::string& name, const std::string& v) {
  if (v == "1" || v == "true" || v == "TRUE" || v == "True" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "FALSE" || v == "False" || v == "no" || v == "off")
    return false;
  throw ConfigError(name + ": expected true or false, got '" + v + "'");
}

// One row per setting: the table drives env, file, --set and --print-config alike.
struct Setting {
  const char* name;
  bool secret;
  std::function<void(Config&, const std::string&)> set;
  std::function<std::string(const Config&)> get;
};

template <class T>
Setting field(const char* name, T Config::*member, bool secret = false) {
  Setting s{name, secret, {}, {}};
  s.set = [name, member](Config& c, const std::string& v) {
    if constexpr (std::is_same_v<T, bool>)
      c.*member = parseBool(name, v);
    else if constexpr (std::is_same_v<T, std::string>)
      c.*member = v;
    else
      c.*member = parseNumber<T>(name, v);
  };
  s.get = [member](const Config& c) {
    if constexpr (std::is_same_v<T, bool>)
      return std::string(c.*member ? "true" : "false");
    else if constexpr (std::is_same_v<T, std::string>)
      return c.*member;
    else if constexpr (std::is_floating_point_v<T>) {
      char buf[64];
      auto r = std::to_chars(buf, buf + sizeof buf, c.*member);  // shortest form: 0.1, not 0.100000
      return std::string(buf, r.ptr);
    } else
      return std::to_string(c.*member);
  };
  return s;
}

// CACHE_SMTP_URL may carry credentials (smtp://user:password@host): printed with them masked.
Setting smtpUrlField() {
  Setting s = field("CACHE_SMTP_URL", &Config::smtpUrl);
  s.get = [](const Config& c) {
    const std::string& url = c.smtpUrl;
    const size_t scheme = url.find("://");
    const size_t at = url.rfind('@');
    if (scheme == std::string::npos || at == std::string::npos || at < scheme) return url;
    return url.substr(0, scheme + 3) + "****" + url.substr(at);
  };
  return s;
}

const std::vector<Setting>& settings() {
  static const std::vector<Setting> table = {
      field("CACHE_ENABLED", &Config::enabled),
      field("CACHE_LISTEN", &Config::listen),
      field("CACHE_UPSTREAM", &Config::upstream),
      field("CACHE_PLATFORMS", &Config::platforms),
      field("CACHE_PRICING_FILE", &Config::pricingFile),
      field("CACHE_THREADS", &Config::threads),
      field("CACHE_MAX_BODY_BYTES", &Config::maxBodyBytes),
      field("CACHE_MAX_HEADER_BYTES", &Config::maxHeaderBytes),
      field("CACHE_MAX_INFLIGHT_BODY_BYTES", &Config::maxBodyBytesInFlight),
      field("CACHE_MAX_CONNECTIONS", &Config::maxConnections),
      field("CACHE_READ_TIMEOUT", &Config::readTimeoutSeconds),
      field("CACHE_IDLE_TIMEOUT", &Config::idleTimeoutSeconds),
      field("CACHE_UPSTREAM_CONNECT_TIMEOUT", &Config::upstreamConnectTimeoutSeconds),
      field("CACHE_UPSTREAM_TIMEOUT", &Config::upstreamTimeoutSeconds),
      field("CACHE_SHUTDOWN_GRACE", &Config::shutdownGraceSeconds),
      field("CACHE_DIR", &Config::cacheDir),
      field("CACHE_MODE", &Config::mode),
      field("CACHE_CASSETTE_DIR", &Config::cassetteDir),
      field("CACHE_NEAR_MISS_SAMPLE", &Config::nearMissSample),
      field("CACHE_SIZING", &Config::sizing),
      field("CACHE_SIZING_RATE", &Config::sizingRate),
      field("CACHE_SIZING_MAX_KEYS", &Config::sizingMaxKeys),
      field("CACHE_SEMANTIC_THRESHOLD", &Config::semanticThreshold),
      field("CACHE_SEMANTIC_NAMESPACES", &Config::semanticNamespaces),
      field("CACHE_SEMANTIC_SHADOW", &Config::semanticShadow),
      field("CACHE_SEMANTIC_INDEX", &Config::semanticIndex),
      field("CACHE_SEMANTIC_TARGET", &Config::semanticTarget),
      field("CACHE_SEMANTIC_ANSWER_AGREEMENT", &Config::semanticAnswerAgreement),
      field("CACHE_SEMANTIC_MAX_TEMPERATURE", &Config::semanticMaxTemperature),
      field("CACHE_SEMANTIC_ALLOW_TOOLS", &Config::semanticAllowTools),
      field("CACHE_SEMANTIC_EMBEDDINGS", &Config::semanticEmbeddings),
      field("CACHE_SEMANTIC_EMBEDDINGS_KEY", &Config::semanticEmbeddingsKey, true),
      field("CACHE_SEMANTIC_TEXT", &Config::semanticText),
      field("CACHE_SEMANTIC_EMBEDDING_CACHE", &Config::semanticEmbeddingCache),
      field("CACHE_SEMANTIC_SAVE", &Config::semanticSaveSeconds),
      field("CACHE_SEMANTIC_EF", &Config::semanticEf),
      field("CACHE_SEMANTIC_MAX_PENDING", &Config::semanticMaxPending),
      field("CACHE_MEMORY_ENTRIES", &Config::memoryEntries),
      field("CACHE_MEMORY_BYTES", &Config::memoryBytes),
      field("CACHE_DISK_ENTRIES", &Config::diskEntries),
      field("CACHE_DISK_BYTES", &Config::diskBytes),
      field("CACHE_DISK_SYNC", &Config::diskSync),
      field("CACHE_DISK_SYNC_INTERVAL_MS", &Config::diskSyncIntervalMs),
      field("CACHE_MEMORY_POLICY", &Config::memoryPolicy),
      field("CACHE_DISK_POLICY", &Config::diskPolicy),
      field("CACHE_COMPRESSION", &Config::compression),
      field("CACHE_TTL", &Config::ttlSeconds),
      field("CACHE_TTL_MAX", &Config::ttlMaxSeconds),
      field("CACHE_MODEL_TTLS", &Config::modelTtls),
      field("CACHE_KEY_NORMALIZE", &Config::keyNormalize),
      field("CACHE_KEY_NORMALIZE_NAMESPACES", &Config::keyNormalizeNamespaces),
      field("CACHE_KEY_HEADERS", &Config::keyHeaders),
      field("CACHE_CORS_ORIGINS", &Config::corsOrigins),
      field("CACHE_STREAM_USAGE", &Config::streamUsage),
      field("CACHE_SCOPE_CREDENTIALS", &Config::scopeCredentials),
      field("CACHE_KEY_MEMO_ENTRIES", &Config::keyMemoEntries),
      field("CACHE_KEY_MEMO_BYTES", &Config::keyMemoBytes),
      field("CACHE_SCOPE", &Config::scope),
      field("CACHE_SCOPE_SECRET", &Config::scopeSecret, true),
      field("CACHE_S3_BUCKET", &Config::s3Bucket),
      field("CACHE_S3_REGION", &Config::s3Region),
      field("CACHE_S3_ENDPOINT", &Config::s3Endpoint),
      field("CACHE_S3_PREFIX", &Config::s3Prefix),
      field("CACHE_S3_ADDRESSING", &Config::s3Addressing),
      field("CACHE_S3_DIRECTORY_REFRESH", &Config::s3DirectoryRefreshSeconds),
      field("CACHE_S3_JOURNAL_POLL_MS", &Config::s3JournalPollMs),
      field("CACHE_S3_TIMEOUT", &Config::s3TimeoutSeconds),
      field("CACHE_S3_OUTBOX_RETRY_MAX", &Config::s3OutboxRetryMaxSeconds),
      field("CACHE_INVALIDATION_POLL", &Config::invalidationPollSeconds),
      field("CACHE_REDIS_URL", &Config::redisUrl, true),
      field("CACHE_REDIS_PREFIX", &Config::redisPrefix),
      field("CACHE_REDIS_CA_FILE", &Config::redisCaFile),
      field("CACHE_REDIS_TIMEOUT_MS", &Config::redisTimeoutMs),
      field("CACHE_REDIS_LEASE_MS", &Config::redisLeaseMs),
      field("CACHE_REDIS_LEASE_WAIT", &Config::redisLeaseWaitSeconds),
      field("CACHE_ASYNC_WRITES", &Config::asyncWrites),
      field("CACHE_ENCRYPTION", &Config::encryption),
      field("CACHE_ENCRYPTION_KEY", &Config::encryptionKey, true),
      field("CACHE_ENCRYPTION_KEY_FILE", &Config::encryptionKeyFile),
      field("CACHE_ADMIN_TOKEN", &Config::adminToken, true),
      field("CACHE_METRICS_ENABLED", &Config::metricsEnabled),
      field("CACHE_METRICS_INTERVAL", &Config::metricsIntervalSeconds),
      field("CACHE_ALERT_EMAIL", &Config::alertEmail),
      smtpUrlField(),
      field("CACHE_ALERT_FROM", &Config::alertFrom),
      field("CACHE_ALERT_HIT_RATE_MIN", &Config::alertHitRateMin),
      field("CACHE_ALERT_MIN_REQUESTS", &Config::alertMinRequests),
      field("CACHE_ALERT_WINDOW", &Config::alertWindowSeconds),
      field("CACHE_ALERT_COOLDOWN", &Config::alertCooldownSeconds),
      field("CACHE_ALERT_OUTBOX_MAX", &Config::alertOutboxMax),
      field("CACHE_ALERT_TIER_ERRORS", &Config::alertTierErrors),
  };
  return table;
}

// Alert settings are checked whether or not CACHE_ALERT_EMAIL is set, so that a typo shows up
// before the day the alerts are turned on; the addresses only when they will be used.
void validateAlerts(const Config& c) {
  if (!(c.alertHitRateMin >= 0 && c.alertHitRateMin <= 1))
    throw ConfigError("CACHE_ALERT_HIT_RATE_MIN: must be from 0 to 1");
  if (c.alertMinRequests < 1) throw ConfigError("CACHE_ALERT_MIN_REQUESTS: must be >= 1");
  if (c.alertWindowSeconds < 1) throw ConfigError("CACHE_ALERT_WINDOW: must be >= 1");
  if (c.alertCooldownSeconds < 0) throw ConfigError("CACHE_ALERT_COOLDOWN: must be >= 0");
  if (c.alertEmail.empty()) return;
  if (c.smtpUrl.rfind("smtp://", 0) != 0 && c.smtpUrl.rfind("smtps://", 0) != 0)
    throw ConfigError("CACHE_SMTP_URL: expected an smtp:// or smtps:// URL");
  const auto checkAddress = [](const char* name, const std::string& a) {
    const bool bad = a.empty() || a.find('@') == std::string::npos ||
                     a.find_first_of("<>\r\n\t ,") != std::string::npos;
    if (bad)
      throw ConfigError(std::string(name) + ": expected e-mail addresses (name@host), got '" + a +
                        "'");
  };
  checkAddress("CACHE_ALERT_FROM", c.alertFrom);
  for (const std::string& to : c.alertRecipients()) checkAddress("CACHE_ALERT_EMAIL", to);
}

}  // namespace

namespace {
// "a, b,c" -> {"a", "b", "c"}: comma-separated, spaces and tabs around items dropped, empty
// items skipped.
std::vector<std::string> listItems(const std::string& list) {
  std::vector<std::string> pieces, out;
  boost::algorithm::split(pieces, list, boost::algorithm::is_any_of(","));
  for (const std::string& piece : pieces) {
    std::string item = boost::algorithm::trim_copy_if(piece, boost::algorithm::is_any_of(" \t"));
    if (!item.empty()) out.push_back(std::move(item));
  }
  return out;
}

bool isNormalizeMode(const std::string& m) {
  return m == "seed" || m == "whitespace" || m == "exact";
}
}  // namespace

std::vector<std::string> Config::alertRecipients() const { return listItems(alertEmail); }

std::pair<std::string, uint16_t> Config::listenEndpoint() const {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw ConfigError("CACHE_LISTEN: expected HOST:PORT, got '" + listen + "'");
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return {host, parseNumber<uint16_t>("CACHE_LISTEN port", listen.substr(colon + 1))};
}

std::vector<std::pair<std::string, std::string>> Config::namespaceNormalizations() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& rule : listItems(keyNormalizeNamespaces)) {
    const size_t eq = rule.rfind('=');
    if (eq == std::string::npos || eq == 0 || !isNormalizeMode(rule.substr(eq + 1)))
      throw ConfigError(
          "CACHE_KEY_NORMALIZE_NAMESPACES: expected namespace=exact|whitespace|seed, got '" + rule +
          "'");
    out.emplace_back(rule.substr(0, eq), rule.substr(eq + 1));
  }
  return out;
}

namespace {
double parseThreshold(const std::string& name, const std::string& v) {
  double d = 0;
  auto r = std::from_chars(v.data(), v.data() + v.size(), d);
  if (r.ec != std::errc{} || r.ptr != v.data() + v.size() || !(d > 0 && d <= 1))
    throw ConfigError(name + ": expected a similarity above 0 and at most 1, got '" + v + "'");
  return d;
}
}  // namespace

std::optional<double> Config::semanticThresholdValue() const {
  if (semanticThreshold.empty()) return std::nullopt;
  return parseThreshold("CACHE_SEMANTIC_THRESHOLD", semanticThreshold);
}

std::vector<std::pair<std::string, double>> Config::semanticNamespaceThresholds() const {
  std::vector<std::pair<std::string, double>> out;
  for (const std::string& rule : listItems(semanticNamespaces)) {
    const size_t eq = rule.rfind('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError("CACHE_SEMANTIC_NAMESPACES: expected namespace=threshold, got '" + rule +
                        "'");
    out.emplace_back(rule.substr(0, eq),
                     parseThreshold("CACHE_SEMANTIC_NAMESPACES", rule.substr(eq + 1)));
  }
  return out;
}

std::vector<std::string> Config::corsOriginList() const { return listItems(corsOrigins); }

std::vector<std::string> Config::keyHeaderNames() const {
  std::vector<std::string> out = {"anthropic-version", "anthropic-beta", "openai-beta"};
  for (const std::string& h : listItems(keyHeaders)) {
    std::string name = boost::algorithm::to_lower_copy(h);
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
  }
  return out;
}

std::vector<std::string> Config::credentialSources() const {
  std::vector<std::string> out;
  for (const std::string& item : listItems(scopeCredentials)) {
    if (item.rfind("query:", 0) == 0) {
      if (item.size() == 6) throw ConfigError("CACHE_SCOPE_CREDENTIALS: 'query:' needs a name");
      out.push_back(item);
    } else {
      out.push_back(boost::algorithm::to_lower_copy(item));
    }
  }
  return out;
}

std::vector<std::pair<std::string, int64_t>> Config::modelTtlRules() const {
  std::vector<std::pair<std::string, int64_t>> rules;
  for (const std::string& rule : listItems(modelTtls)) {
    const size_t eq = rule.rfind('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError("CACHE_MODEL_TTLS: expected glob=seconds, got '" + rule + "'");
    rules.emplace_back(rule.substr(0, eq),
                       parseNumber<int64_t>("CACHE_MODEL_TTLS", rule.substr(eq + 1)));
    if (rules.back().second < 0)
      throw ConfigError("CACHE_MODEL_TTLS: seconds must be >= 0 in '" + rule + "'");
  }
  return rules;
}

void setValue(Config& config, const std::string& name, const std::string& value) {
  for (const Setting& s : settings()) {
    if (name == s.name) {
      s.set(config, value);
      return;
    }
  }
  throw ConfigError("unknown setting " + name);
}

void applyEnvironment(Config& config, const std::function<const char*(const char*)>& getenv) {
  for (const Setting& s : settings())
    if (const char* v = getenv(s.name)) s.set(config, v);
}

void applyFile(Config& config, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot read config file " + path);
  std::stringstream text;
  text << in.rdbuf();
  auto json = parseJson(text.str());
  if (!json) throw ConfigError(path + ": " + json.error().message);
  if (!json->isObject()) throw ConfigError(path + ": expected a JSON object of CACHE_* settings");
  for (size_t i = 0; i < json->keys().size(); ++i) {
    const Json& v = json->items()[i];
    std::string value = v.isString() ? std::string(v.text())
                        : v.isBool() ? (v.asBool() ? "true" : "false")
                                     : toJson(v);
    setValue(config, std::string(json->keys()[i]), value);
  }
}

void validate(const Config& c) {
  c.listenEndpoint();
  if (c.keyNormalize != "seed" && c.keyNormalize != "whitespace" && c.keyNormalize != "exact")
    throw ConfigError("CACHE_KEY_NORMALIZE: expected seed, whitespace or exact, got '" +
                      c.keyNormalize + "'");
  // "api-key" and "none" are accepted as older spellings of api_key and global.
  if (c.scope != "api_key" && c.scope != "global" && c.scope != "api-key" && c.scope != "none" &&
      (c.scope.rfind("header:", 0) != 0 || c.scope.size() == 7))
    throw ConfigError("CACHE_SCOPE: expected api_key, global or header:NAME, got '" + c.scope +
                      "'");
  if (c.mode != "normal" && c.mode != "record" && c.mode != "replay" &&
      c.mode != "replay-or-record")
    throw ConfigError("CACHE_MODE: expected normal, record, replay or replay-or-record, got '" +
                      c.mode + "'");
  if (c.nearMissSample < 0) throw ConfigError("CACHE_NEAR_MISS_SAMPLE: must be >= 0");
  if (!(c.sizingRate > 0 && c.sizingRate <= 1))
    throw ConfigError("CACHE_SIZING_RATE: expected a rate in (0, 1], got " +
                      std::to_string(c.sizingRate));
  if (c.sizingMaxKeys < 1 || c.sizingMaxKeys > (uint64_t{1} << 24))
    throw ConfigError("CACHE_SIZING_MAX_KEYS: expected 1 to 16777216, got " +
                      std::to_string(c.sizingMaxKeys));
  c.semanticThresholdValue();
  c.semanticNamespaceThresholds();
  if (!(c.semanticTarget > 0 && c.semanticTarget <= 1))
    throw ConfigError("CACHE_SEMANTIC_TARGET: must be above 0 and at most 1");
  if (!(c.semanticAnswerAgreement > 0 && c.semanticAnswerAgreement <= 1))
    throw ConfigError("CACHE_SEMANTIC_ANSWER_AGREEMENT: must be above 0 and at most 1");
  if (!(c.semanticMaxTemperature >= 0))
    throw ConfigError("CACHE_SEMANTIC_MAX_TEMPERATURE: must be >= 0");
  if (c.semanticText != "last_user" && c.semanticText != "all_user")
    throw ConfigError("CACHE_SEMANTIC_TEXT: expected last_user or all_user, got '" +
                      c.semanticText + "'");
  if (c.semanticEmbeddings.empty() || c.semanticEmbeddings.back() == ':')
    throw ConfigError("CACHE_SEMANTIC_EMBEDDINGS: expected [platform:]model, got '" +
                      c.semanticEmbeddings + "'");
  if (c.semanticSaveSeconds < 1) throw ConfigError("CACHE_SEMANTIC_SAVE: must be >= 1");
  if (c.semanticMaxPending < 1) throw ConfigError("CACHE_SEMANTIC_MAX_PENDING: must be >= 1");
  if (c.semanticEf < 16 || c.semanticEf > 4096)
    throw ConfigError("CACHE_SEMANTIC_EF: expected 16 to 4096, got " +
                      std::to_string(c.semanticEf));
  if (c.cassetteMode() && c.cassetteDir.empty())
    throw ConfigError("CACHE_MODE=" + c.mode +
                      " needs CACHE_CASSETTE_DIR (--cassette DIR): the recorded folder");
  if (c.cassetteMode() && !c.s3Bucket.empty())
    throw ConfigError("CACHE_MODE=" + c.mode +
                      " stores only in the cassette folder: unset CACHE_S3_BUCKET");
  if (c.cassetteMode() && !c.redisUrl.empty())
    throw ConfigError("CACHE_MODE=" + c.mode +
                      " stores only in the cassette folder: unset CACHE_REDIS_URL");
  if (c.upstream.rfind("http://", 0) != 0 && c.upstream.rfind("https://", 0) != 0)
    throw ConfigError("CACHE_UPSTREAM: expected an http:// or https:// URL, got '" + c.upstream +
                      "'");
  if (c.s3Addressing != "auto" && c.s3Addressing != "path" && c.s3Addressing != "virtual")
    throw ConfigError("CACHE_S3_ADDRESSING: expected auto, path or virtual, got '" +
                      c.s3Addressing + "'");
  if (c.s3DirectoryRefreshSeconds < 1)
    throw ConfigError("CACHE_S3_DIRECTORY_REFRESH: must be >= 1");
  if (c.s3JournalPollMs < 0) throw ConfigError("CACHE_S3_JOURNAL_POLL_MS: must be >= 0");
  if (c.s3TimeoutSeconds < 1) throw ConfigError("CACHE_S3_TIMEOUT: must be >= 1");
  if (c.redisTimeoutMs < 1) throw ConfigError("CACHE_REDIS_TIMEOUT_MS: must be >= 1");
  if (c.redisLeaseMs < 0) throw ConfigError("CACHE_REDIS_LEASE_MS: must be >= 0");
  if (c.redisLeaseWaitSeconds < 0) throw ConfigError("CACHE_REDIS_LEASE_WAIT: must be >= 0");
  if (c.invalidationPollSeconds < 1) throw ConfigError("CACHE_INVALIDATION_POLL: must be >= 1");
  if (c.ttlSeconds < 0) throw ConfigError("CACHE_TTL: must be >= 0");
  c.modelTtlRules();
  c.namespaceNormalizations();
  if (c.ttlMaxSeconds < 0) throw ConfigError("CACHE_TTL_MAX: must be >= 0");
  c.credentialSources();
  if (c.memoryEntries == 0) throw ConfigError("CACHE_MEMORY_ENTRIES: must be >= 1");
  if (c.diskEntries == 0) throw ConfigError("CACHE_DISK_ENTRIES: must be >= 1");
  if (c.diskSync != "always" && c.diskSync != "interval" && c.diskSync != "never")
    throw ConfigError("CACHE_DISK_SYNC: expected always, interval or never, got '" + c.diskSync +
                      "'");
  if (c.diskSyncIntervalMs < 10 || c.diskSyncIntervalMs > 60000)
    throw ConfigError("CACHE_DISK_SYNC_INTERVAL_MS: expected 10 to 60000, got " +
                      std::to_string(c.diskSyncIntervalMs));
  // The names of cache::parsePolicy (config may not include cache; tests/cli/trace_test.py checks
  // that every name the tiers know passes here and that the lists agree).
  for (const auto& [name, value] : {std::pair{"CACHE_MEMORY_POLICY", &c.memoryPolicy},
                                    std::pair{"CACHE_DISK_POLICY", &c.diskPolicy}})
    if (*value != "lru" && *value != "sieve" && *value != "gdsf" && *value != "cost-sieve" &&
        *value != "default")
      throw ConfigError(std::string(name) +
                        ": expected lru, sieve, gdsf, cost-sieve or default, got '" + *value + "'");
  if (c.threads < 0) throw ConfigError("CACHE_THREADS: must be >= 0");
  if (c.encryption) encryptionKeyBytes(c);
  validateAlerts(c);
}

std::array<unsigned char, 32> encryptionKeyBytes(const Config& c) {
  const bool fromValue = !c.encryptionKey.empty();
  const bool fromFile = !c.encryptionKeyFile.empty();
  if (!fromValue && !fromFile)
    throw ConfigError(
        "CACHE_ENCRYPTION is on but neither CACHE_ENCRYPTION_KEY nor CACHE_ENCRYPTION_KEY_FILE is "
        "set");
  if (fromValue && fromFile)
    throw ConfigError("CACHE_ENCRYPTION_KEY and CACHE_ENCRYPTION_KEY_FILE are both set; set one");
  const char* name = fromValue ? "CACHE_ENCRYPTION_KEY" : "CACHE_ENCRYPTION_KEY_FILE";
  std::string text = c.encryptionKey;
  if (fromFile) {
    std::ifstream in(c.encryptionKeyFile, std::ios::binary);
    std::stringstream content;
    if (in) content << in.rdbuf();
    if (!in || in.bad())
      throw ConfigError(std::string(name) + ": cannot read the key file " + c.encryptionKeyFile);
    text = content.str();
  }
  const auto isSpace = [](char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; };
  while (!text.empty() && isSpace(text.back())) text.pop_back();
  size_t start = 0;
  while (start < text.size() && isSpace(text[start])) ++start;
  text.erase(0, start);
  // 32 bytes are 43 base64 digits and one '='. EVP_DecodeBlock decodes padding as zero bytes
  // (33 out) and accepts embedded whitespace, so the shape is checked first.
  const std::string expected =
      std::string(name) +
      ": expected the base64 of exactly 32 bytes (44 characters ending in '=', as "
      "`openssl rand -base64 32` prints)";
  if (text.size() != 44 || text[43] != '=' || text[42] == '=')
    throw ConfigError(expected + ", got " + std::to_string(text.size()) + " characters");
  for (size_t i = 0; i < 43; ++i) {
    const char ch = text[i];
    const bool digit = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                       (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
    if (!digit)
      throw ConfigError(expected + "; character " + std::to_string(i + 1) +
                        " is not a base64 digit");
  }
  unsigned char out[33];
  if (EVP_DecodeBlock(out, reinterpret_cast<const unsigned char*>(text.data()), 44) != 33)
    throw ConfigError(expected);
  std::array<unsigned char, 32> key;
  std::copy(out, out + 32, key.begin());
  OPENSSL_cleanse(out, sizeof out);
  OPENSSL_cleanse(text.data(), text.size());
  return key;
}

std::string printConfig(const Config& c) {
  std::string out;
  for (const Setting& s : settings()) {
    std::string v = s.get(c);
    if (s.secret && !v.empty()) v = "****";
    out += std::string(s.name) + "=" + v + "\n";
  }
  return out;
}

std::string loadOrCreateSecretFile(const std::string& path) {
  auto readSecret = [&]() -> std::string {
    std::ifstream in(path);
    std::string secret;
    std::getline(in, secret);
    if (secret.size() < 32) throw ConfigError("the secret in " + path + " is too short");
    ::chmod(path.c_str(), 0600);  // a copy restored with looser permissions
    return secret;
  };
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return readSecret();
    throw ConfigError("cannot create " + path + ": " + std::strerror(errno));
  }
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    ::close(fd);
    ::unlink(path.c_str());
    throw ConfigError("no random bytes for " + path);
  }
  std::string secret;
  boost::algorithm::hex_lower(std::begin(bytes), std::end(bytes), std::back_inserter(secret));
  const std::string line = secret + "\n";
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                  ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    throw ConfigError("cannot write " + path);
  }
  return secret;
}

}  // namespace llmcache::config
