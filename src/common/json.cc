#include "common/json.h"

#include <boost/algorithm/hex.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <charconv>
#include <cmath>
#include <iterator>
#include <unordered_map>

namespace llmcache {

Json Json::boolean(bool b) {
  Json j;
  j.kind_ = Kind::Bool;
  j.bool_ = b;
  return j;
}
Json Json::string(std::string s) {
  Json j;
  j.kind_ = Kind::String;
  j.text_ = std::move(s);
  return j;
}
Json Json::integer(int64_t v) { return numberText(std::to_string(v)); }
Json Json::number(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, r.ptr);
  return numberText(std::move(s));
}
Json Json::numberText(std::string raw) {
  Json j;
  j.kind_ = Kind::Number;
  j.text_ = std::move(raw);
  return j;
}
Json Json::array() {
  Json j;
  j.kind_ = Kind::Array;
  return j;
}
Json Json::object() {
  Json j;
  j.kind_ = Kind::Object;
  return j;
}

bool Json::isIntegerNumber() const {
  return kind_ == Kind::Number && text_.find_first_of(".eE") == std::string::npos;
}

std::optional<int64_t> Json::asInt64() const {
  if (!isIntegerNumber()) return std::nullopt;
  int64_t v = 0;
  auto r = std::from_chars(text_.data(), text_.data() + text_.size(), v);
  if (r.ec != std::errc{} || r.ptr != text_.data() + text_.size()) return std::nullopt;
  return v;
}

std::optional<double> Json::asDouble() const {
  if (kind_ != Kind::Number) return std::nullopt;
  double v = 0;
  auto r = std::from_chars(text_.data(), text_.data() + text_.size(), v);
  if (r.ec != std::errc{} || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<size_t> Json::position(std::string_view key) const {
  if (index_) {
    auto [it, end] = index_->equal_range(std::hash<std::string_view>{}(key));
    for (; it != end; ++it)
      if (keys_[it->second] == key) return it->second;
    return std::nullopt;
  }
  for (size_t i = 0; i < keys_.size(); ++i)
    if (keys_[i] == key) return i;
  return std::nullopt;
}

void Json::indexKey(size_t position) {
  if (!index_) {
    if (keys_.size() < kIndexedSize) return;
    index_ = std::make_unique<Index>();
    index_->reserve(keys_.size() * 2);
    for (size_t i = 0; i < keys_.size(); ++i)
      index_->emplace(std::hash<std::string_view>{}(keys_[i]), static_cast<uint32_t>(i));
    return;
  }
  index_->emplace(std::hash<std::string_view>{}(keys_[position]), static_cast<uint32_t>(position));
}

const Json* Json::find(std::string_view key) const {
  auto i = position(key);
  return i ? &items_[*i] : nullptr;
}
Json* Json::find(std::string_view key) {
  return const_cast<Json*>(static_cast<const Json*>(this)->find(key));
}

Json& Json::set(std::string key, Json value) {
  if (auto i = position(key)) {
    items_[*i] = std::move(value);
    return *this;
  }
  keys_.push_back(std::move(key));
  items_.push_back(std::move(value));
  indexKey(keys_.size() - 1);
  return *this;
}

bool Json::erase(std::string_view key) {
  auto i = position(key);
  if (!i) return false;
  keys_.erase(keys_.begin() + static_cast<ptrdiff_t>(*i));
  items_.erase(items_.begin() + static_cast<ptrdiff_t>(*i));
  index_.reset();  // positions moved; rebuilt by the next mutation past the threshold
  return true;
}

Json& Json::push(Json value) {
  items_.push_back(std::move(value));
  return *this;
}

std::optional<std::string_view> Json::getString(std::string_view key) const {
  const Json* v = find(key);
  if (!v || !v->isString()) return std::nullopt;
  return std::string_view{v->text_};
}
std::optional<int64_t> Json::getInt(std::string_view key) const {
  const Json* v = find(key);
  return v ? v->asInt64() : std::nullopt;
}
std::optional<double> Json::getDouble(std::string_view key) const {
  const Json* v = find(key);
  return v ? v->asDouble() : std::nullopt;
}
std::optional<bool> Json::getBool(std::string_view key) const {
  const Json* v = find(key);
  if (!v || !v->isBool()) return std::nullopt;
  return v->bool_;
}

bool operator==(const Json& a, const Json& b) {
  return a.kind_ == b.kind_ && a.bool_ == b.bool_ && a.text_ == b.text_ && a.items_ == b.items_ &&
         a.keys_ == b.keys_;
}

namespace {

// Builds Json from Boost.JSON's SAX events. Containers under construction live on a stack.
struct Builder {
  explicit Builder(size_t maxValues) : maxValues(maxValues) {}
  static constexpr std::size_t max_object_size = kMaxJsonObjectMembers;
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  std::vector<Json> stack;               // open containers
  std::vector<std::string> pendingKeys;  // key waiting for its value, per open object
  std::string buf;                       // string / key / number being assembled
  Json root;
  bool done = false;
  size_t values = 0;
  const size_t maxValues;
  bool tooManyValues = false;

  // Counts every value: a document of millions of tiny values costs ~100 bytes of tree each.
  bool count(boost::system::error_code& ec) {
    if (++values <= maxValues) return true;
    tooManyValues = true;
    ec = boost::json::error::exception;
    return false;
  }

  void put(Json v) {
    if (stack.empty()) {
      root = std::move(v);
      done = true;
      return;
    }
    Json& top = stack.back();
    if (top.isArray()) {
      top.push(std::move(v));
    } else {
      top.appendMember(std::move(pendingKeys.back()), std::move(v));
    }
  }

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }
  bool on_array_begin(boost::system::error_code& ec) {
    if (!count(ec)) return false;
    stack.push_back(Json::array());
    return true;
  }
  bool on_array_end(std::size_t, boost::system::error_code&) {
    Json v = std::move(stack.back());
    stack.pop_back();
    put(std::move(v));
    return true;
  }
  bool on_object_begin(boost::system::error_code& ec) {
    if (!count(ec)) return false;
    stack.push_back(Json::object());
    pendingKeys.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, boost::system::error_code&) {
    Json v = std::move(stack.back());
    stack.pop_back();
    pendingKeys.pop_back();
    put(std::move(v));
    return true;
  }
  bool on_string_part(boost::json::string_view s, std::size_t, boost::system::error_code&) {
    buf.append(s.data(), s.size());
    return true;
  }
  bool on_string(boost::json::string_view s, std::size_t, boost::system::error_code& ec) {
    if (!count(ec)) return false;
    buf.append(s.data(), s.size());
    put(Json::string(std::move(buf)));
    buf.clear();
    return true;
  }
  bool on_key_part(boost::json::string_view s, std::size_t, boost::system::error_code&) {
    buf.append(s.data(), s.size());
    return true;
  }
  bool on_key(boost::json::string_view s, std::size_t, boost::system::error_code&) {
    buf.append(s.data(), s.size());
    pendingKeys.back() = std::move(buf);
    buf.clear();
    return true;
  }
  bool on_number_part(boost::json::string_view s, boost::system::error_code&) {
    buf.append(s.data(), s.size());
    return true;
  }
  bool number(boost::json::string_view s, boost::system::error_code& ec) {
    if (!count(ec)) return false;
    buf.append(s.data(), s.size());
    put(Json::numberText(std::move(buf)));
    buf.clear();
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
  bool on_bool(bool b, boost::system::error_code& ec) {
    if (!count(ec)) return false;
    put(Json::boolean(b));
    return true;
  }
  bool on_null(boost::system::error_code& ec) {
    if (!count(ec)) return false;
    put(Json::null());
    return true;
  }
  bool on_comment_part(boost::json::string_view, boost::system::error_code&) { return true; }
  bool on_comment(boost::json::string_view, boost::system::error_code&) { return true; }
};

}  // namespace

void Json::appendMember(std::string key, Json value) {
  // Duplicate keys: the first position, the last value (as Python's dict does).
  set(std::move(key), std::move(value));
}

Result<Json> parseJson(std::string_view text, const JsonParseOptions& options) {
  boost::json::parse_options po;
  po.max_depth = options.maxDepth;
  boost::json::basic_parser<Builder> p(po, options.maxValues);
  boost::system::error_code ec;
  const size_t n = p.write_some(false, text.data(), text.size(), ec);
  if (!ec && n < text.size()) ec = boost::json::error::extra_data;
  if (ec) {
    std::string why = ec.message();
    if (ec == boost::json::error::too_deep)
      why = "nesting deeper than " + std::to_string(options.maxDepth) + " levels";
    else if (p.handler().tooManyValues)
      why = "more than " + std::to_string(options.maxValues) + " values";
    else if (ec == boost::json::error::object_too_large)
      why = "an object with more than " + std::to_string(kMaxJsonObjectMembers) + " members";
    else if (ec == boost::json::error::syntax || ec == boost::json::error::incomplete)
      why = ec == boost::json::error::incomplete ? "unexpected end of input" : "syntax error";
    return makeError(Errc::InvalidArgument,
                     "invalid JSON at offset " + std::to_string(n) + ": " + why);
  }
  if (!p.handler().done) return makeError(Errc::InvalidArgument, "invalid JSON: empty input");
  return std::move(p.handler().root);
}

const char* jsonShortEscape(char32_t c) {
  switch (c) {
    case '"':
      return "\\\"";
    case '\\':
      return "\\\\";
    case '\n':
      return "\\n";
    case '\r':
      return "\\r";
    case '\t':
      return "\\t";
    case '\b':
      return "\\b";
    case '\f':
      return "\\f";
    default:
      return nullptr;
  }
}

void writeJsonString(std::string_view s, std::string& out) {
  out.push_back('"');
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    if (const char* e = jsonShortEscape(c)) {
      out += e;
    } else {
      out += "\\u00";
      boost::algorithm::hex_lower(&c, &c + 1, std::back_inserter(out));
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

void writeJson(const Json& v, std::string& out) {
  switch (v.kind()) {
    case Json::Kind::Null:
      out += "null";
      break;
    case Json::Kind::Bool:
      out += v.asBool() ? "true" : "false";
      break;
    case Json::Kind::Number:
      out += v.text();
      break;
    case Json::Kind::String:
      writeJsonString(v.text(), out);
      break;
    case Json::Kind::Array:
      out.push_back('[');
      for (size_t i = 0; i < v.items().size(); ++i) {
        if (i) out.push_back(',');
        writeJson(v.items()[i], out);
      }
      out.push_back(']');
      break;
    case Json::Kind::Object:
      out.push_back('{');
      for (size_t i = 0; i < v.keys().size(); ++i) {
        if (i) out.push_back(',');
        writeJsonString(v.keys()[i], out);
        out.push_back(':');
        writeJson(v.items()[i], out);
      }
      out.push_back('}');
      break;
  }
}

std::string toJson(const Json& value) {
  std::string out;
  writeJson(value, out);
  return out;
}

}  // namespace llmcache
