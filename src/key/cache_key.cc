#include "key/cache_key.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <iterator>
#include <memory>

#include "key/canonical.h"
#include "key/flat_json.h"
#include "key/json_text.h"
#include "key/md5_lanes.h"
#include "key/text.h"

namespace llmcache::key {

namespace {

constexpr std::string_view kEndpointNames[] = {"openai.chat", "openai.completions",
                                               "openai.embeddings", "anthropic.messages",
                                               "openai.responses"};
constexpr std::string_view kModeNames[] = {"seed", "whitespace", "exact"};

// What a top-level member of the request is to the key: a member of the normalized object
// (kModel..kFunctions), the reserved @context, a field that never changes what the model
// answers (stream, stream_options, user, metadata, store, service_tier), or one for extra.
enum Member : uint8_t {
  kModel,
  kMessages,
  kTemperature,
  kMaxTokens,
  kMaxCompletionTokens,
  kFunctions,
  kContextMember,
  kNamed,  // the number of the above
  kNotInKey = kNamed,
  kExtra,
};

Member classify(std::string_view k) {
  switch (k.size()) {
    case 4:
      return k == "user" ? kNotInKey : kExtra;
    case 5:
      return k == "model" ? kModel : k == "store" ? kNotInKey : kExtra;
    case 6:
      return k == "stream" ? kNotInKey : kExtra;
    case 8:
      return k == "messages"      ? kMessages
             : k == "metadata"    ? kNotInKey
             : k == kContextField ? kContextMember
                                  : kExtra;
    case 9:
      return k == "functions" ? kFunctions : kExtra;
    case 10:
      return k == "max_tokens" ? kMaxTokens : kExtra;
    case 11:
      return k == "temperature" ? kTemperature : kExtra;
    case 12:
      return k == "service_tier" ? kNotInKey : kExtra;
    case 14:
      return k == "stream_options" ? kNotInKey : kExtra;
    case 21:
      return k == "max_completion_tokens" ? kMaxCompletionTokens : kExtra;
    default:
      return kExtra;
  }
}

Error invalid(std::string message) { return makeError(Errc::InvalidArgument, std::move(message)); }

// Python's json.loads(parse_float=_finite_float) rejects any float that overflows, anywhere.
Result<void> checkNumbers(const Json& v) {
  if (v.isNumber()) {
    if (!v.isIntegerNumber() && !parseFiniteDouble(std::string(v.text())))
      return tooLargeNumber(v.text());
    return {};
  }
  for (const Json& item : v.items())
    if (auto r = checkNumbers(item); !r) return r;
  return {};
}

}  // namespace

// The normalized object (docs/keyspec.md, 2) written as its canonical text (3) straight from
// the flat parse: no normalized tree, no sorted copies. Every object the spec sorts is walked
// through `order`, a stack of member indices (a nested walk pushes above its parent's and
// truncates back), so it allocates nothing once warm.
struct KeyBuilder::Impl {
  using Kind = FlatJson::Kind;

  FlatJson doc;
  // The doc's strings are padded (json_text.h) when it was parsed from a body (a copy of it,
  // bodyCopy), not when it mirrors a Json.
  bool padded = false;
  TextBuffer bodyCopy;
  TextBuffer paddedText;  // a normalized text, or a lowered model or role, padded
  NormalizeMode mode = NormalizeMode::Exact;
  TextBuffer out;       // the canonical text
  std::string text;     // a normalized text, a lowered model or role
  std::string scratch;  // appendNormalizedText's
  std::vector<uint32_t> order;

  // A member of extra, and where its value comes from.
  struct Extra {
    enum How : uint8_t { Canonical, Content, String, Context } how;
    std::string_view key;
    uint32_t node;           // Canonical, Content
    std::string_view value;  // String
    uint32_t seq;            // the later of two members with one key wins
  };
  std::vector<Extra> extra;
  std::vector<uint32_t> contextOrder;

  std::string cacheKey;
  char hash[32];

  void newline(int level) {
    // '\n' and the indentation, 16 spaces at a time (room for the overshoot).
    static constexpr char kSpaces[17] = "                ";
    const size_t n = static_cast<size_t>(level) * 4;
    char* o = out.room(n + 17);
    *o = '\n';
    for (size_t k = 0; k < n; k += 16) std::memcpy(o + 1 + k, kSpaces, 16);
    out.commit(n + 1);
  }

  // Pushes obj's member indices onto `order`, in key order (Python's sorted(dict): code point
  // order, which is UTF-8 byte order), keeping the last of a repeated key. Returns where they
  // start; the caller truncates `order` back to that when done.
  size_t sortMembers(uint32_t obj) {
    const size_t begin = order.size();
    for (uint32_t c = obj + 1; c < doc[obj].end; c = doc[c].end) order.push_back(c);
    // (key, position): a total order, so the result does not depend on the sort's stability.
    auto less = [this](uint32_t a, uint32_t b) {
      const int r = doc[a].key.compare(doc[b].key);
      return r < 0 || (r == 0 && a < b);
    };
    const size_t n = order.size() - begin;
    uint32_t* const m = order.data() + begin;
    if (n <= 16) {
      for (size_t i = 1; i < n; ++i) {
        const uint32_t v = m[i];
        size_t j = i;
        for (; j > 0 && less(v, m[j - 1]); --j) m[j] = m[j - 1];
        m[j] = v;
      }
    } else {
      std::sort(m, m + n, less);
    }
    size_t w = begin;
    for (size_t r = begin; r < order.size(); ++r) {
      if (r + 1 < order.size() && doc[order[r]].key == doc[order[r + 1]].key) continue;
      order[w++] = order[r];
    }
    order.resize(w);
    return begin;
  }

  // cache_key.py canonical(): objects key-sorted, recursively.
  void writeValue(uint32_t i, int level) {
    const FlatJson::Node& n = doc[i];
    switch (n.kind) {
      case Kind::Null:
        out.literal("null");
        return;
      case Kind::False:
        out.literal("false");
        return;
      case Kind::True:
        out.literal("true");
        return;
      case Kind::Integer:
        // Python int(text): exact at any size. JSON forbids leading zeros: only "-0" differs.
        if (n.text == "-0")
          out.put('0');
        else
          out.append(n.text);
        return;
      case Kind::Float:
        out.commitTo(writePythonFloatRepr(n.number, out.room(kFloatReprMax)));
        return;
      case Kind::String:
        docString(n.text);
        return;
      case Kind::Array: {
        if (n.end == i + 1) {
          out.literal("[]");
          return;
        }
        out.put('[');
        const uint32_t end = n.end;
        for (uint32_t c = i + 1; c < end; c = doc[c].end) {
          if (c != i + 1) out.put(',');
          newline(level + 1);
          writeValue(c, level + 1);
        }
        newline(level);
        out.put(']');
        return;
      }
      case Kind::Object: {
        const size_t begin = sortMembers(i);
        if (order.size() == begin) {
          out.literal("{}");
          return;
        }
        out.put('{');
        for (size_t k = begin; k < order.size(); ++k) {
          const uint32_t c = order[k];
          if (k != begin) out.put(',');
          newline(level + 1);
          docString(doc[c].key);
          out.literal(": ");
          writeValue(c, level + 1);
        }
        order.resize(begin);
        newline(level);
        out.put('}');
        return;
      }
    }
  }

  // A string of the doc, or a key of one of its objects.
  void docString(std::string_view s) {
    if (padded)
      appendPaddedPythonString(s, out);
    else
      appendPythonString(s, out);
  }

  // A string made here (in text), through a padded copy.
  void madeString(std::string_view s) {
    paddedText.clear();
    paddedText.append(s);
    paddedText.room(kPadding);
    appendPaddedPythonString(paddedText.view(), out);
  }

  // A text-normalized string (the mode).
  void writeText(std::string_view s) {
    if (mode == NormalizeMode::Exact) {
      docString(s);
      return;
    }
    text.clear();
    appendNormalizedText(s, mode, text, scratch);
    madeString(text);
  }

  // model and role: lowercased, then stripped, in every mode.
  void writeLowerStripped(std::string_view s) {
    text.clear();
    appendPythonLower(s, text);
    madeString(pythonStrip(text));
  }

  // normalize_content: a string is text-normalized, an array holds parts.
  void writeContent(uint32_t i, int level) {
    const FlatJson::Node& n = doc[i];
    if (n.kind == Kind::String) {
      writeText(n.text);
    } else if (n.kind == Kind::Array && n.end != i + 1) {
      out.put('[');
      const uint32_t end = n.end;
      for (uint32_t c = i + 1; c < end; c = doc[c].end) {
        if (c != i + 1) out.put(',');
        newline(level + 1);
        writePart(c, level + 1);
      }
      newline(level);
      out.put(']');
    } else {
      writeValue(i, level);
    }
  }

  // normalize_part: cache_control dropped, a text part's text normalized, content recursed.
  void writePart(uint32_t i, int level) {
    if (doc[i].kind != Kind::Object) {
      writeValue(i, level);
      return;
    }
    const uint32_t type = doc.find(i, "type");
    const bool isTextPart =
        type != FlatJson::npos && doc[type].kind == Kind::String && doc[type].text == "text";
    const size_t begin = sortMembers(i);
    bool any = false;
    for (size_t k = begin; k < order.size(); ++k) {
      const uint32_t c = order[k];
      const std::string_view key = doc[c].key;
      if (key == "cache_control") continue;  // a provider hint, not part of the question
      out.put(any ? ',' : '{');
      any = true;
      newline(level + 1);
      docString(key);
      out.literal(": ");
      if (key == "text" && isTextPart && doc[c].kind == Kind::String)
        writeText(doc[c].text);
      else if (key == "content")
        writeContent(c, level + 1);
      else
        writeValue(c, level + 1);
    }
    order.resize(begin);
    if (!any) {
      out.literal("{}");
      return;
    }
    newline(level);
    out.put('}');
  }

  Result<void> writeMessage(uint32_t i, int level) {
    const uint32_t role = doc[i].kind == Kind::Object ? doc.find(i, "role") : FlatJson::npos;
    if (role == FlatJson::npos || doc[role].kind != Kind::String)
      return invalid("each message must be an object with a string 'role'");
    out.put('{');
    newline(level + 1);
    out.literal("\"role\": ");
    writeLowerStripped(doc[role].text);
    out.put(',');
    newline(level + 1);
    out.literal("\"content\": ");
    const uint32_t content = doc.find(i, "content");
    if (content == FlatJson::npos)
      out.literal("null");
    else
      writeContent(content, level + 1);
    const size_t begin = sortMembers(i);
    for (size_t k = begin; k < order.size(); ++k) {
      const uint32_t c = order[k];
      const std::string_view key = doc[c].key;
      if (key == "role" || key == "content") continue;
      out.put(',');
      newline(level + 1);
      docString(key);
      out.literal(": ");
      writeValue(c, level + 1);
    }
    order.resize(begin);
    newline(level);
    out.put('}');
    return {};
  }

  // round(float(t), 2): always a double.
  Result<void> writeTemperature(uint32_t t) {
    if (t == FlatJson::npos || doc[t].kind == Kind::Null) {
      out.literal("null");
      return {};
    }
    const FlatJson::Node& n = doc[t];
    double d = 0;
    if (n.kind == Kind::Float) {
      d = n.number;
      if (!std::isfinite(d)) return tooLargeNumber(n.text);
    } else if (n.kind == Kind::Integer) {
      if (!parseJsonDouble(n.text, d)) return tooLargeNumber(n.text);
      d += 0.0;  // float(int): no negative zero ("-0" is the int 0)
    } else {
      return invalid("'temperature' must be a number");
    }
    // Python's round(x, 2): the correctly rounded decimal with 2 places, ties to even on the
    // exact binary value. Usually that is n / 100 for n the integer nearest x * 100: when
    // |x * 100| < 2^31 its product is within 2^-22 of the exact one, so a fraction farther
    // than 1e-6 from a half rounds the same either way; and n / 100, at most 10 digits, is
    // then written as Python's repr writes it ("-12.3", "0.07", "-0.0": the sign is x's).
    if (const double y = d * 100; std::fabs(y) < 2147483648.0) {
      const double whole = std::floor(y);
      const double frac = y - whole;
      if (std::fabs(frac - 0.5) > 1e-6) {
        const long long n = static_cast<long long>(whole) + (frac > 0.5 ? 1 : 0);
        const unsigned long long a = static_cast<unsigned long long>(n < 0 ? -n : n);
        char* o = out.room(32);
        if (std::signbit(d)) *o++ = '-';
        o = std::to_chars(o, o + 24, a / 100).ptr;
        const unsigned cents = static_cast<unsigned>(a % 100);
        *o++ = '.';
        *o++ = static_cast<char>('0' + cents / 10);
        if (cents % 10) *o++ = static_cast<char>('0' + cents % 10);
        out.commitTo(o);
        return {};
      }
    }
    // Otherwise: to_chars with a precision is printf's "%.2f" (exact, ties to even), so it and
    // a correctly rounded read back are the same function.
    char buf[400];
    const auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed, 2);
    double rounded = 0;
    std::from_chars(buf, r.ptr, rounded);
    out.commitTo(writePythonFloatRepr(rounded, out.room(kFloatReprMax)));
    return {};
  }

  void writeExtraValue(const Extra& e, const KeyOptions& options) {
    switch (e.how) {
      case Extra::Canonical:
        writeValue(e.node, 2);
        return;
      case Extra::Content:
        writeContent(e.node, 2);
        return;
      case Extra::String:
        appendPythonString(e.value, out);
        return;
      case Extra::Context: {
        // Sorted by name; a repeated name: the last value (Json::set's rule).
        const auto& ctx = options.context;
        contextOrder.clear();
        for (uint32_t k = 0; k < ctx.size(); ++k) contextOrder.push_back(k);
        std::sort(contextOrder.begin(), contextOrder.end(), [&](uint32_t a, uint32_t b) {
          const int r = ctx[a].first.compare(ctx[b].first);
          return r < 0 || (r == 0 && a < b);
        });
        out.put('{');
        bool first = true;
        for (size_t k = 0; k < contextOrder.size(); ++k) {
          const auto& [name, value] = ctx[contextOrder[k]];
          if (k + 1 < contextOrder.size() && ctx[contextOrder[k + 1]].first == name) continue;
          if (!first) out.put(',');
          first = false;
          newline(3);
          appendPythonString(name, out);
          out.literal(": ");
          appendPythonString(value, out);
        }
        newline(2);
        out.put('}');
        return;
      }
    }
  }

  Result<KeyView> run(const KeyOptions& options, std::string_view overflow, bool hashNow = true) {
    constexpr uint32_t root = 0;
    if (doc[root].kind != Kind::Object) return invalid("the request body must be a JSON object");
    // One pass over the request's members: the last of a repeated one counts (json.loads).
    uint32_t named[kNamed];
    std::fill(named, named + kNamed, FlatJson::npos);
    extra.clear();
    uint32_t seq = 0;
    const bool anthropic = options.endpoint == Endpoint::AnthropicMessages;
    const bool responses = options.endpoint == Endpoint::OpenAiResponses;
    for (uint32_t c = root + 1; c < doc[root].end; c = doc[c].end) {
      const std::string_view k = doc[c].key;
      Member m = classify(k);
      // The Responses API's `store` decides whether the answer's id can be fetched and chained
      // (previous_response_id) later: a replay must not hand a store:true caller the id of an
      // answer the provider never kept (docs/keyspec.md, openai.responses).
      if (responses && m == kNotInKey && k == "store") m = kExtra;
      if (m < kNamed) {
        named[m] = c;
      } else if (m == kExtra) {
        extra.push_back(
            {anthropic && k == "system" ? Extra::Content : Extra::Canonical, k, c, {}, seq++});
      }
    }
    const uint32_t model = named[kModel];
    if (model == FlatJson::npos || doc[model].kind != Kind::String ||
        pythonStrip(doc[model].text).empty())
      return invalid("'model' must be a non-empty string");
    const uint32_t messages = named[kMessages];
    if (messages != FlatJson::npos && doc[messages].kind != Kind::Array)
      return invalid("'messages' must be an array");
    // max_tokens when it is not null, else max_completion_tokens; when both are set, the
    // second also goes into extra (it still shapes the answer).
    uint32_t maxTokens = named[kMaxTokens];
    uint32_t maxCompletion = named[kMaxCompletionTokens];
    if (maxCompletion != FlatJson::npos && doc[maxCompletion].kind == Kind::Null)
      maxCompletion = FlatJson::npos;
    const uint32_t functions = named[kFunctions];
    if (maxTokens == FlatJson::npos || doc[maxTokens].kind == Kind::Null) {
      maxTokens = maxCompletion;
    } else if (maxCompletion != FlatJson::npos) {
      extra.push_back({Extra::Canonical, "max_completion_tokens", maxCompletion, {}, seq++});
    }
    if (named[kContextMember] != FlatJson::npos)
      return invalid(std::string("'") + kContextField +
                     "' is reserved for the gateway's request context");
    // Set after the request's own members: they replace a member of the same name.
    if (options.endpoint != Endpoint::OpenAiChat)
      extra.push_back({Extra::String, "endpoint", 0, endpointName(options.endpoint), seq++});
    if (!options.scope.empty()) extra.push_back({Extra::String, "scope", 0, options.scope, seq++});
    if (!options.keyNamespace.empty())
      extra.push_back({Extra::String, "namespace", 0, options.keyNamespace, seq++});
    if (!options.context.empty()) extra.push_back({Extra::Context, kContextField, 0, {}, seq++});
    std::sort(extra.begin(), extra.end(), [](const Extra& a, const Extra& b) {
      const int r = a.key.compare(b.key);
      return r < 0 || (r == 0 && a.seq < b.seq);
    });

    out.clear();
    out.literal("{\n    \"model\": ");
    writeLowerStripped(doc[model].text);
    out.literal(",\n    \"messages\": ");
    if (messages == FlatJson::npos || doc[messages].end == messages + 1) {
      out.literal("[]");
    } else {
      out.put('[');
      for (uint32_t c = messages + 1; c < doc[messages].end; c = doc[c].end) {
        if (c != messages + 1) out.put(',');
        newline(2);
        if (auto r = writeMessage(c, 2); !r) return r.error();
      }
      out.literal("\n    ]");
    }
    out.literal(",\n    \"temperature\": ");
    if (auto r = writeTemperature(named[kTemperature]); !r) return r.error();
    out.literal(",\n    \"max_tokens\": ");
    if (maxTokens == FlatJson::npos)
      out.literal("null");
    else
      writeValue(maxTokens, 1);
    out.literal(",\n    \"functions\": ");
    if (functions == FlatJson::npos)
      out.literal("null");
    else
      writeValue(functions, 1);
    if (!extra.empty()) {
      out.literal(",\n    \"extra\": {");
      bool first = true;
      for (size_t k = 0; k < extra.size(); ++k) {
        if (k + 1 < extra.size() && extra[k + 1].key == extra[k].key) continue;  // replaced
        if (!first) out.put(',');
        first = false;
        newline(2);
        appendPythonString(extra[k].key, out);
        out.literal(": ");
        writeExtraValue(extra[k], options);
      }
      out.literal("\n    }");
    }
    out.literal("\n}");
    // A float too large for a double in a Json that parseRequest did not make: writeCanonical's
    // error, after every check of the request.
    if (!overflow.empty()) return tooLargeNumber(overflow);

    out.room(kPadding);  // KeyView::canonical is padded
    // replace("/", "_") before taking 20 code points: '/' is one code point, so order is moot.
    cacheKey.assign(firstCodePoints(doc[model].text, 20));
    std::replace(cacheKey.begin(), cacheKey.end(), '/', '_');
    cacheKey.push_back('_');
    if (!hashNow) return KeyView{cacheKey, {}, out.view()};
    md5Hex(out.view(), hash);
    cacheKey.append(hash, 16);
    return KeyView{cacheKey, std::string_view(hash, 32), out.view()};
  }
};

std::string_view endpointName(Endpoint e) { return kEndpointNames[static_cast<int>(e)]; }

std::optional<Endpoint> parseEndpoint(std::string_view name) {
  for (int i = 0; i < static_cast<int>(std::size(kEndpointNames)); ++i)
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

KeyBuilder::KeyBuilder() : impl_(std::make_unique<Impl>()) {}
KeyBuilder::~KeyBuilder() = default;

Result<KeyView> KeyBuilder::key(std::string_view body, const KeyOptions& options) {
  return keyOf(body, options, true);
}

Result<KeyView> KeyBuilder::keyWithoutHash(std::string_view body, const KeyOptions& options) {
  return keyOf(body, options, false);
}

Result<KeyView> KeyBuilder::keyOf(std::string_view body, const KeyOptions& options, bool hash) {
  // A padded copy: the string loops read (never use) up to kPadding bytes past its end.
  impl_->bodyCopy.clear();
  impl_->bodyCopy.append(body);
  impl_->bodyCopy.room(kPadding);
  if (auto r = impl_->doc.parse(impl_->bodyCopy.view(), kMaxRequestDepth); !r) return r.error();
  impl_->padded = true;
  impl_->mode = options.mode;
  return impl_->run(options, {}, hash);
}

Result<KeyView> KeyBuilder::key(const Json& request, const KeyOptions& options) {
  impl_->doc.assign(request);
  impl_->padded = false;
  impl_->mode = options.mode;
  return impl_->run(options, impl_->doc.overflow());
}

void KeyBuilder::trim(size_t keepBytes) {
  impl_->out.trim(keepBytes);
  impl_->bodyCopy.trim(keepBytes);
  impl_->paddedText.trim(keepBytes);
  for (std::string* s : {&impl_->text, &impl_->scratch})
    if (s->capacity() > keepBytes) std::string().swap(*s);
  impl_->doc.trim(keepBytes);
}

Result<CacheKey> computeKey(const Json& request, const KeyOptions& options, Canonical canonical) {
  thread_local KeyBuilder builder;
  auto k = builder.key(request, options);
  if (!k) return k.error();
  CacheKey out;
  out.cacheKey = k->cacheKey;
  out.requestHash = k->requestHash;
  if (canonical == Canonical::Keep) out.canonical = k->canonical;
  builder.trim();  // a thread keeps no buffer of a huge request
  return out;
}

Result<CacheKey> computeKey(const Json& request, const KeyOptions& options) {
  return computeKey(request, options, Canonical::Keep);
}

}  // namespace llmcache::key
