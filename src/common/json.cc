#include "common/json.h"

#include <algorithm>
#include <boost/algorithm/hex.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <charconv>
#include <cmath>
#include <iterator>
#include <new>
#include <vector>

namespace llmcache {

// The blocks behind a Json. Each is one allocation: a header, then its bytes or values.
struct Json::Text {
  size_t size;
  char* data() { return reinterpret_cast<char*>(this + 1); }
};

struct alignas(8) Json::Array {
  uint32_t size;
  uint32_t capacity;
  Json* items() { return reinterpret_cast<Json*>(this + 1); }
  static Array* alloc(size_t capacity) {
    auto* a = static_cast<Array*>(::operator new(sizeof(Array) + capacity * sizeof(Json)));
    a->size = 0;
    a->capacity = static_cast<uint32_t>(capacity);
    return a;
  }
};

struct Json::Object {
  uint32_t size;
  uint32_t capacity;
  // Open addressing over the members' positions (position + 1; 0: empty), mask + 1 slots, at
  // most half full; nullptr below kIndexedSize members.
  uint32_t* slots;
  uint32_t mask;
  Json* keys() { return reinterpret_cast<Json*>(reinterpret_cast<char*>(this) + sizeof(Object)); }
  Json* values() { return keys() + capacity; }

  static Object* alloc(size_t capacity) {
    auto* o = static_cast<Object*>(::operator new(sizeof(Object) + 2 * capacity * sizeof(Json)));
    o->size = 0;
    o->capacity = static_cast<uint32_t>(capacity);
    o->slots = nullptr;
    o->mask = 0;
    return o;
  }
  static size_t hash(std::string_view key) { return std::hash<std::string_view>{}(key); }
  // An empty index with room for n members.
  void newIndex(size_t n) {
    delete[] slots;
    size_t count = 32;
    while (count < 2 * n) count *= 2;
    mask = static_cast<uint32_t>(count - 1);
    slots = new uint32_t[count]();
  }
  void index(std::string_view key, uint32_t position) {
    for (size_t i = hash(key) & mask;; i = (i + 1) & mask) {
      if (slots[i] == 0) {
        slots[i] = position + 1;
        return;
      }
    }
  }
  // Indexes every member, with room for n.
  void buildIndex(size_t n) {
    newIndex(n);
    for (uint32_t i = 0; i < size; ++i) index(keys()[i].text(), i);
  }
  std::optional<size_t> position(std::string_view key) {
    if (slots) {
      for (size_t i = hash(key) & mask; slots[i] != 0; i = (i + 1) & mask)
        if (keys()[slots[i] - 1].text() == key) return slots[i] - 1;
      return std::nullopt;
    }
    for (uint32_t i = 0; i < size; ++i)
      if (keys()[i].text() == key) return i;
    return std::nullopt;
  }
};
static_assert(sizeof(Json) == 16);

void Json::release() noexcept {
  switch (kind()) {
    case Kind::Number:
    case Kind::String:
      if (raw_[1] == 0) ::operator delete(block<Text>());
      break;
    case Kind::Array:
      if (Array* a = block<Array>()) {
        for (uint32_t i = 0; i < a->size; ++i) a->items()[i].~Json();
        ::operator delete(a);
      }
      break;
    case Kind::Object:
      if (Object* o = block<Object>()) {
        for (uint32_t i = 0; i < o->size; ++i) {
          o->keys()[i].~Json();
          o->values()[i].~Json();
        }
        delete[] o->slots;
        ::operator delete(o);
      }
      break;
    default:
      break;
  }
  raw_[0] = static_cast<char>(Kind::Null);
}

Json::Json(const Json& other) {
  // Built in `copy`, which owns what is made so far if an allocation throws.
  Json copy;
  switch (other.kind()) {
    case Kind::Number:
    case Kind::String:
      copy.setText(other.kind(), other.text());
      break;
    case Kind::Array: {
      copy = array();
      const auto items = other.items();
      if (items.empty()) break;
      Array* a = Array::alloc(items.size());
      copy.setBlock(a);
      for (const Json& item : items) {
        new (a->items() + a->size) Json(item);
        ++a->size;
      }
      break;
    }
    case Kind::Object: {
      copy = object();
      const size_t n = other.size();
      if (n == 0) break;
      Object* o = Object::alloc(n);
      copy.setBlock(o);
      Object* from = other.block<Object>();
      for (uint32_t i = 0; i < n; ++i) {
        new (o->keys() + i) Json(from->keys()[i]);
        try {
          new (o->values() + i) Json(from->values()[i]);
        } catch (...) {
          o->keys()[i].~Json();
          throw;
        }
        o->size = i + 1;
      }
      if (n >= kIndexedSize) o->buildIndex(n);
      break;
    }
    default:
      std::memcpy(copy.raw_, other.raw_, sizeof raw_);
  }
  std::memcpy(raw_, copy.raw_, sizeof raw_);
  copy.raw_[0] = static_cast<char>(Kind::Null);
}

void Json::setText(Kind kind, std::string_view s) {
  raw_[0] = static_cast<char>(kind);
  if (s.size() <= kInline) {
    raw_[1] = static_cast<char>(1 + s.size());
    std::memcpy(raw_ + 2, s.data(), s.size());
    return;
  }
  raw_[1] = 0;
  auto* t = static_cast<Text*>(::operator new(sizeof(Text) + s.size()));
  t->size = s.size();
  std::memcpy(t->data(), s.data(), s.size());
  setBlock(t);
}

std::string_view Json::text() const {
  if (kind() != Kind::String && kind() != Kind::Number) return {};
  if (raw_[1] != 0) return {raw_ + 2, static_cast<size_t>(raw_[1] - 1)};
  Text* t = block<Text>();
  return {t->data(), t->size};
}

Json Json::boolean(bool b) {
  Json j;
  j.raw_[0] = static_cast<char>(Kind::Bool);
  j.raw_[1] = b ? 1 : 0;
  return j;
}
Json Json::string(std::string_view s) {
  Json j;
  j.setText(Kind::String, s);
  return j;
}
Json Json::integer(int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return numberText(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
}
Json Json::number(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return numberText(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
}
Json Json::numberText(std::string_view raw) {
  Json j;
  j.setText(Kind::Number, raw);
  return j;
}
Json Json::array() {
  Json j;
  j.raw_[0] = static_cast<char>(Kind::Array);
  return j;
}
Json Json::object() {
  Json j;
  j.raw_[0] = static_cast<char>(Kind::Object);
  return j;
}

Json Json::arrayOf(std::span<Json> items) {
  Json j = array();
  if (items.empty()) return j;
  Array* a = Array::alloc(items.size());
  j.setBlock(a);
  for (Json& item : items) {
    new (a->items() + a->size) Json(std::move(item));
    ++a->size;
  }
  return j;
}

Json Json::objectOf(std::span<Json> keys, std::span<Json> values) {
  Json j = object();
  if (keys.empty()) return j;
  Object* o = Object::alloc(keys.size());
  j.setBlock(o);
  if (keys.size() >= kIndexedSize) o->newIndex(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    // Duplicate keys: the first position, the last value (as Python's dict does).
    if (auto at = j.position(keys[i].text())) {
      o->values()[*at] = std::move(values[i]);
      continue;
    }
    const uint32_t at = o->size;
    new (o->keys() + at) Json(std::move(keys[i]));
    new (o->values() + at) Json(std::move(values[i]));
    o->size = at + 1;
    if (o->slots) o->index(o->keys()[at].text(), at);
  }
  return j;
}

std::span<const Json> Json::items() const {
  if (kind() == Kind::Array) {
    if (Array* a = block<Array>()) return {a->items(), a->size};
  } else if (kind() == Kind::Object) {
    if (Object* o = block<Object>()) return {o->values(), o->size};
  }
  return {};
}
std::span<Json> Json::items() {
  auto c = static_cast<const Json*>(this)->items();
  return {const_cast<Json*>(c.data()), c.size()};
}

Json::Keys Json::keys() const {
  if (kind() == Kind::Object)
    if (Object* o = block<Object>()) return Keys(o->keys(), o->size);
  return Keys(nullptr, 0);
}

size_t Json::size() const { return items().size(); }

bool Json::isIntegerNumber() const {
  return kind() == Kind::Number && text().find_first_of(".eE") == std::string_view::npos;
}

std::optional<int64_t> Json::asInt64() const {
  if (!isIntegerNumber()) return std::nullopt;
  const std::string_view t = text();
  int64_t v = 0;
  auto r = std::from_chars(t.data(), t.data() + t.size(), v);
  if (r.ec != std::errc{} || r.ptr != t.data() + t.size()) return std::nullopt;
  return v;
}

std::optional<double> Json::asDouble() const {
  if (kind() != Kind::Number) return std::nullopt;
  const std::string_view t = text();
  double v = 0;
  auto r = std::from_chars(t.data(), t.data() + t.size(), v);
  if (r.ec != std::errc{} || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<size_t> Json::position(std::string_view key) const {
  if (kind() != Kind::Object) return std::nullopt;
  Object* o = block<Object>();
  return o ? o->position(key) : std::nullopt;
}

const Json* Json::find(std::string_view key) const {
  auto i = position(key);
  return i ? &block<Object>()->values()[*i] : nullptr;
}
Json* Json::find(std::string_view key) {
  return const_cast<Json*>(static_cast<const Json*>(this)->find(key));
}

void Json::reserveMembers(size_t capacity) {
  Object* o = block<Object>();
  Object* grown = Object::alloc(capacity);
  if (o) {
    for (uint32_t i = 0; i < o->size; ++i) {
      new (grown->keys() + i) Json(std::move(o->keys()[i]));
      new (grown->values() + i) Json(std::move(o->values()[i]));
    }
    grown->size = o->size;
    grown->slots = o->slots;  // positions are unchanged
    grown->mask = o->mask;
    ::operator delete(o);  // its members were moved out (moved-from values own nothing)
  }
  setBlock(grown);
}

Json& Json::set(std::string_view key, Json value) {
  if (auto i = position(key)) {
    block<Object>()->values()[*i] = std::move(value);
    return *this;
  }
  if (kind() != Kind::Object) return *this;
  Object* o = block<Object>();
  if (!o || o->size == o->capacity) {
    reserveMembers(o ? 2 * size_t{o->capacity} : 4);
    o = block<Object>();
  }
  const uint32_t at = o->size;
  Json k = Json::string(key);  // may throw: before anything is placed
  new (o->keys() + at) Json(std::move(k));
  new (o->values() + at) Json(std::move(value));
  o->size = at + 1;
  if (o->slots && 2 * size_t{o->size} > size_t{o->mask} + 1) {
    o->buildIndex(2 * size_t{o->size});
  } else if (o->slots) {
    o->index(key, at);
  } else if (o->size >= kIndexedSize) {
    o->buildIndex(o->size);
  }
  return *this;
}

bool Json::erase(std::string_view key) {
  auto i = position(key);
  if (!i) return false;
  Object* o = block<Object>();
  for (size_t k = *i; k + 1 < o->size; ++k) {
    o->keys()[k] = std::move(o->keys()[k + 1]);
    o->values()[k] = std::move(o->values()[k + 1]);
  }
  --o->size;
  o->keys()[o->size].~Json();
  o->values()[o->size].~Json();
  delete[] o->slots;  // positions moved
  o->slots = nullptr;
  if (o->size >= kIndexedSize) o->buildIndex(o->size);
  return true;
}

Json& Json::push(Json value) {
  if (kind() != Kind::Array) return *this;
  Array* a = block<Array>();
  if (!a || a->size == a->capacity) {
    Array* grown = Array::alloc(a ? 2 * size_t{a->capacity} : 4);
    if (a) {
      for (uint32_t i = 0; i < a->size; ++i)
        new (grown->items() + i) Json(std::move(a->items()[i]));
      grown->size = a->size;
      ::operator delete(a);
    }
    setBlock(grown);
    a = grown;
  }
  new (a->items() + a->size) Json(std::move(value));
  ++a->size;
  return *this;
}

std::optional<std::string_view> Json::getString(std::string_view key) const {
  const Json* v = find(key);
  if (!v || !v->isString()) return std::nullopt;
  return v->text();
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
  return v->asBool();
}

bool operator==(const Json& a, const Json& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Json::Kind::Null:
      return true;
    case Json::Kind::Bool:
      return a.asBool() == b.asBool();
    case Json::Kind::Number:
    case Json::Kind::String:
      return a.text() == b.text();
    case Json::Kind::Array:
    case Json::Kind::Object: {
      const auto x = a.items(), y = b.items();
      if (!std::equal(x.begin(), x.end(), y.begin(), y.end())) return false;
      const auto kx = a.keys(), ky = b.keys();
      return std::equal(kx.begin(), kx.end(), ky.begin(), ky.end());
    }
  }
  return false;
}

void Json::appendMember(std::string_view key, Json value) {
  // Duplicate keys: the first position, the last value (as Python's dict does).
  set(key, std::move(value));
}

namespace detail {

// Builds Json from Boost.JSON's SAX events. The finished values of the open containers wait on
// one stack (and the keys of the open objects' members on another); a container is made when it
// ends, at its exact size, from the top of the stacks.
struct JsonBuilder {
  explicit JsonBuilder(size_t maxValues) : maxValues(maxValues) {}
  static constexpr std::size_t max_object_size = kMaxJsonObjectMembers;
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  struct Open {
    size_t values;  // where its values start on `values`
    size_t keys;    // where its keys start on `keys` (objects)
  };
  std::vector<Open> open;
  std::vector<Json> values;  // finished values of the open containers, in document order
  std::vector<Json> keys;    // keys of the open objects' members, in document order
  std::string buf;           // string / key / number being assembled from parts
  Json root;
  bool done = false;
  size_t count_ = 0;
  const size_t maxValues;
  bool tooManyValues = false;

  // Counts every value: the value cap bounds the tree (16 bytes a value, plus its container's
  // share) and the time spent on a hostile document.
  bool count(boost::system::error_code& ec) {
    if (++count_ <= maxValues) return true;
    tooManyValues = true;
    ec = boost::json::error::exception;
    return false;
  }

  void put(Json v) {
    if (open.empty()) {
      root = std::move(v);
      done = true;
      return;
    }
    values.push_back(std::move(v));
  }

  // The text of a string, key or number: the parts gathered in buf, then the last part.
  std::string_view whole(boost::json::string_view s) {
    if (buf.empty()) return {s.data(), s.size()};
    buf.append(s.data(), s.size());
    return buf;
  }

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }
  bool on_array_begin(boost::system::error_code& ec) {
    if (!count(ec)) return false;
    open.push_back({values.size(), keys.size()});
    return true;
  }
  bool on_array_end(std::size_t, boost::system::error_code&) {
    const Open o = open.back();
    open.pop_back();
    Json v = Json::arrayOf(std::span<Json>(values).subspan(o.values));
    values.resize(o.values);
    put(std::move(v));
    return true;
  }
  bool on_object_begin(boost::system::error_code& ec) {
    if (!count(ec)) return false;
    open.push_back({values.size(), keys.size()});
    return true;
  }
  bool on_object_end(std::size_t, boost::system::error_code&) {
    const Open o = open.back();
    open.pop_back();
    Json v = Json::objectOf(std::span<Json>(keys).subspan(o.keys),
                            std::span<Json>(values).subspan(o.values));
    keys.resize(o.keys);
    values.resize(o.values);
    put(std::move(v));
    return true;
  }
  bool on_string_part(boost::json::string_view s, std::size_t, boost::system::error_code&) {
    buf.append(s.data(), s.size());
    return true;
  }
  bool on_string(boost::json::string_view s, std::size_t, boost::system::error_code& ec) {
    if (!count(ec)) return false;
    put(Json::string(whole(s)));
    buf.clear();
    return true;
  }
  bool on_key_part(boost::json::string_view s, std::size_t, boost::system::error_code&) {
    buf.append(s.data(), s.size());
    return true;
  }
  bool on_key(boost::json::string_view s, std::size_t, boost::system::error_code&) {
    keys.push_back(Json::string(whole(s)));
    buf.clear();
    return true;
  }
  bool on_number_part(boost::json::string_view s, boost::system::error_code&) {
    buf.append(s.data(), s.size());
    return true;
  }
  bool number(boost::json::string_view s, boost::system::error_code& ec) {
    if (!count(ec)) return false;
    put(Json::numberText(whole(s)));
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

}  // namespace detail

Result<Json> parseJson(std::string_view text, const JsonParseOptions& options) {
  boost::json::parse_options po;
  po.max_depth = options.maxDepth;
  boost::json::basic_parser<detail::JsonBuilder> p(po, options.maxValues);
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
