#include "key/cache_key.h"

#include <openssl/evp.h>

#include <algorithm>
#include <memory>
#include <numeric>

#include "key/canonical.h"

namespace llmcache::key {

namespace {

constexpr std::string_view kEndpointNames[] = {"openai.chat", "openai.completions",
                                               "openai.embeddings", "anthropic.messages"};
constexpr std::string_view kModeNames[] = {"seed", "whitespace", "exact"};

// Top-level request fields that never change what the model answers.
bool notInKey(std::string_view k) {
  return k == "stream" || k == "stream_options" || k == "user" || k == "metadata" || k == "store" ||
         k == "service_tier";
}
bool seedField(std::string_view k) {
  return k == "model" || k == "messages" || k == "temperature" || k == "max_tokens" ||
         k == "max_completion_tokens" || k == "functions";
}

Error invalid(std::string message) { return makeError(Errc::InvalidArgument, std::move(message)); }

// Member indices of an object in sorted key order (Python's sorted(dict)).
std::vector<size_t> sortedOrder(const Json& obj) {
  std::vector<size_t> idx(obj.keys().size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(),
            [&](size_t a, size_t b) { return obj.keys()[a] < obj.keys()[b]; });
  return idx;
}

// cache_key.py canonical(): objects key-sorted, recursively.
Json canonicalValue(const Json& v) {
  if (v.isObject()) {
    Json out = Json::object();
    for (size_t i : sortedOrder(v)) out.appendMember(v.keys()[i], canonicalValue(v.items()[i]));
    return out;
  }
  if (v.isArray()) {
    Json out = Json::array();
    for (const Json& item : v.items()) out.push(canonicalValue(item));
    return out;
  }
  return v;
}

Json normalizeContent(const Json& content, NormalizeMode mode);

Json normalizePart(const Json& part, NormalizeMode mode) {
  if (!part.isObject()) return canonicalValue(part);
  const Json* type = part.find("type");
  const bool isTextPart = type && type->isString() && type->text() == "text";
  Json out = Json::object();
  for (size_t i : sortedOrder(part)) {
    const std::string& k = part.keys()[i];
    const Json& v = part.items()[i];
    if (k == "cache_control") continue;  // a provider hint, not part of the question
    if (k == "text" && isTextPart && v.isString())
      out.appendMember(k, Json::string(normalizeText(v.text(), mode)));
    else if (k == "content")
      out.appendMember(k, normalizeContent(v, mode));
    else
      out.appendMember(k, canonicalValue(v));
  }
  return out;
}

Json normalizeContent(const Json& content, NormalizeMode mode) {
  if (content.isString()) return Json::string(normalizeText(content.text(), mode));
  if (content.isArray()) {
    Json out = Json::array();
    for (const Json& part : content.items()) out.push(normalizePart(part, mode));
    return out;
  }
  return canonicalValue(content);
}

Result<Json> normalizeMessage(const Json& msg, NormalizeMode mode) {
  const Json* role = msg.isObject() ? msg.find("role") : nullptr;
  if (!role || !role->isString())
    return invalid("each message must be an object with a string 'role'");
  Json out = Json::object();
  out.appendMember("role", Json::string(std::string(pythonStrip(pythonLower(role->text())))));
  const Json* content = msg.find("content");
  out.appendMember("content", content ? normalizeContent(*content, mode) : Json::null());
  for (size_t i : sortedOrder(msg)) {
    const std::string& k = msg.keys()[i];
    if (k != "role" && k != "content") out.appendMember(k, canonicalValue(msg.items()[i]));
  }
  return out;
}

Result<Json> normalizeTemperature(const Json* t) {
  if (!t || t->isNull()) return Json::null();
  if (!t->isNumber()) return invalid("'temperature' must be a number");
  const auto d = parseFiniteDouble(t->text());
  if (!d) return invalid("the number " + t->text().substr(0, 20) + " is too large");
  // Python's round(x, 2): the correctly rounded decimal with 2 places, ties to even on the
  // exact binary value. glibc's printf is exact and rounds ties to even, so "%.2f" then strtod
  // is the same function.
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.2f", *d);
  return Json::numberText(pythonFloatRepr(std::strtod(buf, nullptr)));
}

// Python's json.loads(parse_float=_finite_float) rejects any float that overflows, anywhere.
Result<void> checkNumbers(const Json& v) {
  if (v.isNumber()) {
    if (!v.isIntegerNumber() && !parseFiniteDouble(v.text()))
      return invalid("the number " + v.text().substr(0, 20) + " is too large");
    return {};
  }
  for (const Json& item : v.items())
    if (auto r = checkNumbers(item); !r) return r;
  return {};
}

std::string md5Hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // MD5 is what the seed's key uses (osbot_utils json_md5); it is an identifier, not a MAC.
  // Fetched once: OpenSSL 3's implicit fetch by EVP_md5() costs microseconds per call.
  static EVP_MD* const md5 = EVP_MD_fetch(nullptr, "MD5", nullptr);
  thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                           &EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), md5, nullptr);
  EVP_DigestUpdate(ctx.get(), text.data(), text.size());
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  static const char* hex = "0123456789abcdef";
  std::string out(32, '0');
  for (unsigned i = 0; i < 16; ++i) {
    out[2 * i] = hex[digest[i] >> 4];
    out[2 * i + 1] = hex[digest[i] & 15];
  }
  return out;
}

}  // namespace

std::string_view endpointName(Endpoint e) { return kEndpointNames[static_cast<int>(e)]; }

std::optional<Endpoint> parseEndpoint(std::string_view name) {
  for (int i = 0; i < 4; ++i)
    if (kEndpointNames[i] == name) return static_cast<Endpoint>(i);
  return std::nullopt;
}

std::string_view normalizeModeName(NormalizeMode m) { return kModeNames[static_cast<int>(m)]; }

std::optional<NormalizeMode> parseNormalizeMode(std::string_view name) {
  for (int i = 0; i < 3; ++i)
    if (kModeNames[i] == name) return static_cast<NormalizeMode>(i);
  return std::nullopt;
}

Result<Json> parseRequest(std::string_view body) {
  auto parsed = parseJson(body, JsonParseOptions{kMaxRequestDepth});
  if (!parsed) return parsed;
  if (auto r = checkNumbers(*parsed); !r) return r.error();
  return parsed;
}

Result<CacheKey> computeKey(const Json& request, const KeyOptions& options) {
  if (!request.isObject()) return invalid("the request body must be a JSON object");
  const Json* model = request.find("model");
  if (!model || !model->isString() || pythonStrip(model->text()).empty())
    return invalid("'model' must be a non-empty string");
  const Json* messages = request.find("messages");
  if (messages && !messages->isArray()) return invalid("'messages' must be an array");
  // max_tokens when it is not null, else max_completion_tokens; when both are set, the second
  // also goes into extra (it still shapes the answer).
  const Json* maxTokens = request.find("max_tokens");
  const Json* maxCompletion = request.find("max_completion_tokens");
  if (maxCompletion && maxCompletion->isNull()) maxCompletion = nullptr;
  const Json* functions = request.find("functions");

  Json extra = Json::object();
  if (!maxTokens || maxTokens->isNull()) {
    maxTokens = maxCompletion;
  } else if (maxCompletion) {
    extra.appendMember("max_completion_tokens", canonicalValue(*maxCompletion));
  }
  if (request.find(kContextField))
    return invalid(std::string("'") + kContextField +
                   "' is reserved for the gateway's request context");
  for (size_t i = 0; i < request.keys().size(); ++i) {
    const std::string& k = request.keys()[i];
    if (seedField(k) || notInKey(k)) continue;
    const Json& v = request.items()[i];
    extra.appendMember(k, options.endpoint == Endpoint::AnthropicMessages && k == "system"
                              ? normalizeContent(v, options.mode)
                              : canonicalValue(v));
  }
  if (options.endpoint != Endpoint::OpenAiChat)
    extra.set("endpoint", Json::string(std::string(endpointName(options.endpoint))));
  if (!options.scope.empty()) extra.set("scope", Json::string(options.scope));
  if (!options.keyNamespace.empty()) extra.set("namespace", Json::string(options.keyNamespace));
  if (!options.context.empty()) {
    Json context = Json::object();
    for (const auto& [name, value] : options.context) context.set(name, Json::string(value));
    extra.set(kContextField, std::move(context));
  }

  Json normalized = Json::object();
  normalized.appendMember("model",
                          Json::string(std::string(pythonStrip(pythonLower(model->text())))));
  Json msgs = Json::array();
  if (messages) {
    for (const Json& m : messages->items()) {
      auto nm = normalizeMessage(m, options.mode);
      if (!nm) return nm.error();
      msgs.push(std::move(*nm));
    }
  }
  normalized.appendMember("messages", std::move(msgs));
  auto temperature = normalizeTemperature(request.find("temperature"));
  if (!temperature) return temperature.error();
  normalized.appendMember("temperature", std::move(*temperature));
  normalized.appendMember("max_tokens", maxTokens ? canonicalValue(*maxTokens) : Json::null());
  normalized.appendMember("functions", functions ? canonicalValue(*functions) : Json::null());
  if (extra.size() > 0) normalized.appendMember("extra", canonicalValue(extra));

  CacheKey out;
  if (auto r = writeCanonical(normalized, out.canonical); !r) return r.error();
  out.requestHash = md5Hex(out.canonical);
  std::string shortModel(firstCodePoints(model->text(), 20));
  // replace("/", "_") before taking 20 code points: '/' is one code point, so order is moot.
  std::replace(shortModel.begin(), shortModel.end(), '/', '_');
  out.cacheKey = shortModel + "_" + out.requestHash.substr(0, 16);
  return out;
}

}  // namespace llmcache::key
