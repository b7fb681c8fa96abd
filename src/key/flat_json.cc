#include "key/flat_json.h"

#include <boost/json/basic_parser_impl.hpp>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "key/json_text.h"

namespace llmcache::key {

bool parseJsonDouble(std::string_view s, double& out) {
  // from_chars (libstdc++: fast_float, correctly rounded) for the common case. It reports
  // underflow and overflow alike as out of range; strtod (glibc: correctly rounded) settles
  // those: 1e-400 is 0.0 in Python, 1e400 an error.
  double v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec == std::errc{} && r.ptr == s.data() + s.size()) {
    out = v;
    return std::isfinite(v);
  }
  std::string copy(s);
  v = std::strtod(copy.c_str(), nullptr);
  out = v;
  return std::isfinite(v);
}

namespace {

bool isIntegerLiteral(std::string_view s) {
  for (char c : s)
    if (c == '.' || c == 'e' || c == 'E') return false;
  return true;
}

}  // namespace

Error tooLargeNumber(std::string_view literal) {
  return makeError(Errc::InvalidArgument,
                   "the number " + std::string(literal.substr(0, 20)) + " is too large");
}

// Boost.JSON's SAX parser with a handler that appends nodes: the general path, which also words
// every error. Strings are unescaped into text_, whose room is reserved to the body's size
// first: unescaped text is never longer than its JSON spelling, so text_ never moves and the
// views taken into it stay valid.
struct FlatJson::Parser {
  struct Handler {
    static constexpr std::size_t max_object_size = std::size_t(-1);
    static constexpr std::size_t max_array_size = std::size_t(-1);
    static constexpr std::size_t max_key_size = std::size_t(-1);
    static constexpr std::size_t max_string_size = std::size_t(-1);

    std::vector<Node>* nodes = nullptr;
    TextBuffer* text = nullptr;
    std::vector<uint32_t> open;  // indices of the open containers
    std::string_view key;        // the key of the member whose value comes next
    size_t start = 0;            // where the string / key / number being read starts in text
    std::string_view overflow;   // the first float literal that overflows a double

    bool append(std::string_view s, boost::system::error_code& ec) {
      if (text->size() + s.size() > text->capacity()) {  // cannot happen (see above)
        ec = boost::json::error::exception;
        return false;
      }
      std::memcpy(text->data() + text->size(), s.data(), s.size());
      text->commit(s.size());
      return true;
    }
    std::string_view taken() {
      std::string_view v(text->data() + start, text->size() - start);
      start = text->size();
      return v;
    }
    Node& push(Kind kind) {
      Node& n = nodes->emplace_back();
      n.kind = kind;
      n.end = static_cast<uint32_t>(nodes->size());
      if (!open.empty() && (*nodes)[open.back()].kind == Kind::Object) n.key = key;
      return n;
    }

    bool on_document_begin(boost::system::error_code&) { return true; }
    bool on_document_end(boost::system::error_code&) { return true; }
    bool on_array_begin(boost::system::error_code&) {
      push(Kind::Array);
      open.push_back(static_cast<uint32_t>(nodes->size() - 1));
      return true;
    }
    bool on_object_begin(boost::system::error_code&) {
      push(Kind::Object);
      open.push_back(static_cast<uint32_t>(nodes->size() - 1));
      return true;
    }
    bool close() {
      (*nodes)[open.back()].end = static_cast<uint32_t>(nodes->size());
      open.pop_back();
      return true;
    }
    bool on_array_end(std::size_t, boost::system::error_code&) { return close(); }
    bool on_object_end(std::size_t, boost::system::error_code&) { return close(); }
    bool on_string_part(boost::json::string_view s, std::size_t, boost::system::error_code& ec) {
      return append({s.data(), s.size()}, ec);
    }
    bool on_string(boost::json::string_view s, std::size_t, boost::system::error_code& ec) {
      if (!append({s.data(), s.size()}, ec)) return false;
      const std::string_view v = taken();
      push(Kind::String).text = v;
      return true;
    }
    bool on_key_part(boost::json::string_view s, std::size_t, boost::system::error_code& ec) {
      return append({s.data(), s.size()}, ec);
    }
    bool on_key(boost::json::string_view s, std::size_t, boost::system::error_code& ec) {
      if (!append({s.data(), s.size()}, ec)) return false;
      key = taken();
      return true;
    }
    bool on_number_part(boost::json::string_view s, boost::system::error_code& ec) {
      return append({s.data(), s.size()}, ec);
    }
    bool number(boost::json::string_view s, boost::system::error_code& ec) {
      if (!append({s.data(), s.size()}, ec)) return false;
      const std::string_view v = taken();
      if (isIntegerLiteral(v)) {
        push(Kind::Integer).text = v;
        return true;
      }
      Node& n = push(Kind::Float);
      n.text = v;
      if (!parseJsonDouble(v, n.number) && overflow.empty()) overflow = v;
      return true;
    }
    bool on_int64(int64_t, boost::json::string_view s, boost::system::error_code& ec) {
      return number(s, ec);
    }
    bool on_uint64(uint64_t, boost::json::string_view s, boost::system::error_code& ec) {
      return number(s, ec);
    }
    bool on_double(double, boost::json::string_view s, boost::system::error_code& ec) {
      return number(s, ec);
    }
    bool on_bool(bool b, boost::system::error_code&) {
      push(b ? Kind::True : Kind::False);
      return true;
    }
    bool on_null(boost::system::error_code&) {
      push(Kind::Null);
      return true;
    }
    bool on_comment_part(boost::json::string_view, boost::system::error_code&) { return true; }
    bool on_comment(boost::json::string_view, boost::system::error_code&) { return true; }
  };

  explicit Parser(size_t maxDepth) : depth(maxDepth), p(options(maxDepth)) {}
  static boost::json::parse_options options(size_t maxDepth) {
    boost::json::parse_options po;
    po.max_depth = maxDepth;
    return po;
  }

  size_t depth;
  boost::json::basic_parser<Handler> p;
};

FlatJson::FlatJson() = default;
FlatJson::~FlatJson() = default;

namespace {

constexpr bool isJsonSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

}  // namespace

// The fast path: a recursive descent over the body that accepts only what is certainly valid
// JSON (RFC 8259, as Boost.JSON reads it) and gives up on anything else, deep nesting and lone
// \u surrogates included, leaving those to the Boost.JSON parser and its exact errors. Strings
// without escapes are viewed where they are in the body, not copied.
struct FlatJson::Fast {
  std::vector<Node>& nodes;
  const char* p;
  const char* const end;
  char* text;  // where the next unescaped string goes
  size_t maxDepth;
  std::string_view overflow;

  void spaces() {
    while (p < end && isJsonSpace(*p)) ++p;
  }
  bool string(std::string_view& out) {  // p is just past the opening quote
    const char* q = findStringSpecial(p, end);
    if (q < end && *q == '"') {
      out = std::string_view(p, static_cast<size_t>(q - p));
      p = q + 1;
      return true;
    }
    char* const start = text;
    std::memcpy(text, p, static_cast<size_t>(q - p));
    text += q - p;
    p = unescapeJsonString(q, end, text);
    if (!p) return false;
    out = std::string_view(start, static_cast<size_t>(text - start));
    return true;
  }
  bool literal(std::string_view word, Kind kind, std::string_view key) {
    if (static_cast<size_t>(end - p) < word.size() || std::memcmp(p, word.data(), word.size()))
      return false;
    p += word.size();
    Node& n = nodes.emplace_back();
    n.kind = kind;
    n.key = key;
    n.end = static_cast<uint32_t>(nodes.size());
    return true;
  }
  static bool digit(char c) { return c >= '0' && c <= '9'; }
  bool number(std::string_view key) {
    const char* const start = p;
    if (*p == '-') ++p;
    if (p == end) return false;
    if (*p == '0') {
      ++p;
    } else if (*p >= '1' && *p <= '9') {
      while (p < end && digit(*p)) ++p;
    } else {
      return false;
    }
    bool isFloat = false;
    if (p < end && *p == '.') {
      ++p;
      if (p == end || !digit(*p)) return false;
      while (p < end && digit(*p)) ++p;
      isFloat = true;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
      ++p;
      if (p < end && (*p == '+' || *p == '-')) ++p;
      const char* const digits = p;
      if (p == end || !digit(*p)) return false;
      while (p < end && digit(*p)) ++p;
      // Boost.JSON calls an exponent beyond an int "exponent overflow" (invalid JSON, not a
      // number too large): leave long exponents to it.
      if (p - digits > 9) return false;
      isFloat = true;
    }
    Node& n = nodes.emplace_back();
    n.key = key;
    n.end = static_cast<uint32_t>(nodes.size());
    n.text = std::string_view(start, static_cast<size_t>(p - start));
    n.kind = isFloat ? Kind::Float : Kind::Integer;
    if (isFloat && !parseJsonDouble(n.text, n.number) && overflow.empty()) overflow = n.text;
    return true;
  }
  // A value at p (spaces skipped), then the spaces after it.
  bool value(std::string_view key, size_t depth) {
    if (p == end) return false;
    switch (*p) {
      case '{': {
        if (depth >= maxDepth) return false;
        const uint32_t idx = static_cast<uint32_t>(nodes.size());
        Node& n = nodes.emplace_back();
        n.kind = Kind::Object;
        n.key = key;
        ++p;
        spaces();
        if (p < end && *p == '}') {
          ++p;
        } else {
          for (;;) {
            if (p == end || *p != '"') return false;
            ++p;
            std::string_view k;
            if (!string(k)) return false;
            spaces();
            if (p == end || *p != ':') return false;
            ++p;
            spaces();
            if (!value(k, depth + 1)) return false;
            if (p == end) return false;
            if (*p == ',') {
              ++p;
              spaces();
              continue;
            }
            if (*p != '}') return false;
            ++p;
            break;
          }
        }
        nodes[idx].end = static_cast<uint32_t>(nodes.size());
        break;
      }
      case '[': {
        if (depth >= maxDepth) return false;
        const uint32_t idx = static_cast<uint32_t>(nodes.size());
        Node& n = nodes.emplace_back();
        n.kind = Kind::Array;
        n.key = key;
        ++p;
        spaces();
        if (p < end && *p == ']') {
          ++p;
        } else {
          for (;;) {
            if (!value({}, depth + 1)) return false;
            if (p == end) return false;
            if (*p == ',') {
              ++p;
              spaces();
              continue;
            }
            if (*p != ']') return false;
            ++p;
            break;
          }
        }
        nodes[idx].end = static_cast<uint32_t>(nodes.size());
        break;
      }
      case '"': {
        ++p;
        std::string_view v;
        if (!string(v)) return false;
        Node& n = nodes.emplace_back();
        n.kind = Kind::String;
        n.key = key;
        n.text = v;
        n.end = static_cast<uint32_t>(nodes.size());
        break;
      }
      case 't':
        if (!literal("true", Kind::True, key)) return false;
        break;
      case 'f':
        if (!literal("false", Kind::False, key)) return false;
        break;
      case 'n':
        if (!literal("null", Kind::Null, key)) return false;
        break;
      default:
        if (!number(key)) return false;
    }
    spaces();
    return true;
  }
};

Result<void> FlatJson::parse(std::string_view body, size_t maxDepth, bool fast) {
  nodes_.clear();
  text_.clear();
  text_.room(body.size() + 64);
  if (fast) {
    // Somewhat below maxDepth: where Boost.JSON draws the line exactly is its business.
    Fast f{nodes_,
           body.data(),
           body.data() + body.size(),
           text_.data(),
           maxDepth > 2 ? maxDepth - 2 : 0,
           {}};
    f.spaces();
    if (f.value({}, 0) && f.p == f.end) {
      if (!f.overflow.empty()) return tooLargeNumber(f.overflow);
      return {};
    }
  }
  nodes_.clear();
  if (!parser_ || parser_->depth != maxDepth) parser_ = std::make_unique<Parser>(maxDepth);
  Parser::Handler& h = parser_->p.handler();
  h.nodes = &nodes_;
  h.text = &text_;
  h.open.clear();
  h.key = {};
  h.start = 0;
  h.overflow = {};
  parser_->p.reset();
  boost::system::error_code ec;
  const size_t n = parser_->p.write_some(false, body.data(), body.size(), ec);
  if (!ec && n < body.size()) ec = boost::json::error::extra_data;
  // The messages of parseJson (common/json.cc), which parseRequest gives.
  if (ec) {
    std::string why = ec.message();
    if (ec == boost::json::error::too_deep)
      why = "nesting deeper than " + std::to_string(maxDepth) + " levels";
    else if (ec == boost::json::error::syntax || ec == boost::json::error::incomplete)
      why = ec == boost::json::error::incomplete ? "unexpected end of input" : "syntax error";
    return makeError(Errc::InvalidArgument,
                     "invalid JSON at offset " + std::to_string(n) + ": " + why);
  }
  if (nodes_.empty()) return makeError(Errc::InvalidArgument, "invalid JSON: empty input");
  if (!h.overflow.empty()) return tooLargeNumber(h.overflow);
  return {};
}

void FlatJson::trim(size_t keepBytes) {
  text_.trim(keepBytes);
  if (nodes_.capacity() * sizeof(Node) > keepBytes) std::vector<Node>().swap(nodes_);
  nodes_.clear();
}

void FlatJson::assign(const Json& value) {
  nodes_.clear();
  overflow_ = {};
  assignValue(value, {});
}

void FlatJson::assignValue(const Json& v, std::string_view key) {
  const uint32_t idx = size();
  Node& n = nodes_.emplace_back();
  n.key = key;
  switch (v.kind()) {
    case Json::Kind::Null:
      n.kind = Kind::Null;
      break;
    case Json::Kind::Bool:
      n.kind = v.asBool() ? Kind::True : Kind::False;
      break;
    case Json::Kind::Number:
      n.text = v.text();
      if (isIntegerLiteral(n.text)) {
        n.kind = Kind::Integer;
      } else {
        n.kind = Kind::Float;
        if (!parseJsonDouble(n.text, n.number) && overflow_.empty()) overflow_ = n.text;
      }
      break;
    case Json::Kind::String:
      n.kind = Kind::String;
      n.text = v.text();
      break;
    case Json::Kind::Array:
      n.kind = Kind::Array;
      for (const Json& item : v.items()) assignValue(item, {});
      break;
    case Json::Kind::Object:
      n.kind = Kind::Object;
      for (size_t i = 0; i < v.items().size(); ++i) assignValue(v.items()[i], v.keys()[i]);
      break;
  }
  nodes_[idx].end = size();  // n may have moved
}

}  // namespace llmcache::key
