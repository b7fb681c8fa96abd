#pragma once
// Json: a small JSON document that keeps every number exactly as it was written.
//
// Why not boost::json::value: the cache key needs the literal spelling of numbers (a 30-digit
// integer seed must stay exact, "1E2" is a float but "100" an integer) and a cached response
// must be served with its numbers as the provider wrote them. Parsing itself is Boost.JSON's
// (basic_parser, strict RFC 8259, UTF-8 validated); this file only holds the result.
//
// Objects keep their members in first-appearance order; a duplicate key keeps its first
// position and takes the last value (Python's json.loads does the same).
#include <cstdint>
#include <cstring>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"

namespace llmcache {

namespace detail {
struct JsonBuilder;
}

// A value is 16 bytes. Strings and numbers of up to 14 bytes live inside it, longer ones in one
// allocation of their exact size; an array is one allocation of its items, an object one of its
// keys and values (a parsed container is allocated once, at its exact size). A parsed body of
// tiny values costs ~4x its size (the tree of std::string and std::vector nodes it replaced:
// ~15x, issue 15).
class Json {
 public:
  enum class Kind : uint8_t { Null, Bool, Number, String, Array, Object };

  // An object's keys, in member order: size(), [i] and iteration give string_views.
  class Keys {
   public:
    class iterator {
     public:
      using iterator_category = std::random_access_iterator_tag;
      using value_type = std::string_view;
      using difference_type = std::ptrdiff_t;
      using pointer = void;
      using reference = std::string_view;
      iterator() = default;
      explicit iterator(const Json* p) : p_(p) {}
      std::string_view operator*() const { return p_->text(); }
      std::string_view operator[](difference_type n) const { return p_[n].text(); }
      iterator& operator++() {
        ++p_;
        return *this;
      }
      iterator operator++(int) { return iterator(p_++); }
      iterator& operator--() {
        --p_;
        return *this;
      }
      iterator operator--(int) { return iterator(p_--); }
      iterator& operator+=(difference_type n) {
        p_ += n;
        return *this;
      }
      iterator& operator-=(difference_type n) {
        p_ -= n;
        return *this;
      }
      friend iterator operator+(iterator i, difference_type n) { return i += n; }
      friend iterator operator+(difference_type n, iterator i) { return i += n; }
      friend iterator operator-(iterator i, difference_type n) { return i -= n; }
      friend difference_type operator-(iterator a, iterator b) { return a.p_ - b.p_; }
      friend auto operator<=>(iterator a, iterator b) = default;

     private:
      const Json* p_ = nullptr;
    };
    using const_iterator = iterator;
    using value_type = std::string_view;
    Keys(const Json* keys, size_t n) : keys_(keys), n_(n) {}
    size_t size() const { return n_; }
    bool empty() const { return n_ == 0; }
    std::string_view operator[](size_t i) const { return keys_[i].text(); }
    iterator begin() const { return iterator(keys_); }
    iterator end() const { return iterator(keys_ + n_); }
    template <class Range>
    friend bool operator==(const Keys& a, const Range& b) {
      if (a.size() != std::size(b)) return false;
      size_t i = 0;
      for (const auto& k : b)
        if (a[i++] != std::string_view(k)) return false;
      return true;
    }

   private:
    const Json* keys_;
    size_t n_;
  };

  Json() = default;  // null
  Json(const Json& other);
  Json& operator=(const Json& other) {
    if (this != &other) *this = Json(other);
    return *this;
  }
  Json(Json&& other) noexcept {
    std::memcpy(raw_, other.raw_, sizeof raw_);
    other.raw_[0] = static_cast<char>(Kind::Null);
  }
  Json& operator=(Json&& other) noexcept {
    if (this != &other) {
      // other may be inside this value: taken before this one is released.
      char taken[sizeof raw_];
      std::memcpy(taken, other.raw_, sizeof raw_);
      other.raw_[0] = static_cast<char>(Kind::Null);
      release();
      std::memcpy(raw_, taken, sizeof raw_);
    }
    return *this;
  }
  ~Json() { release(); }
  static Json null() { return Json{}; }
  static Json boolean(bool b);
  static Json string(std::string_view s);
  static Json integer(int64_t v);
  static Json number(double v);                  // shortest round-trip spelling
  static Json numberText(std::string_view raw);  // raw must be a valid JSON number
  static Json array();
  static Json object();

  Kind kind() const { return static_cast<Kind>(raw_[0]); }
  bool isNull() const { return kind() == Kind::Null; }
  bool isBool() const { return kind() == Kind::Bool; }
  bool isNumber() const { return kind() == Kind::Number; }
  bool isString() const { return kind() == Kind::String; }
  bool isArray() const { return kind() == Kind::Array; }
  bool isObject() const { return kind() == Kind::Object; }

  bool asBool() const { return kind() == Kind::Bool && raw_[1] != 0; }
  // String value, or a number's literal text; empty for other kinds. Valid while this value is
  // neither changed, moved nor destroyed (short texts live inside it).
  std::string_view text() const;
  // A number written without '.', 'e' or 'E' (Python's json makes those ints).
  bool isIntegerNumber() const;
  std::optional<int64_t> asInt64() const;  // integers that fit; nullopt otherwise
  std::optional<double> asDouble() const;  // any number, correctly rounded; nullopt if not finite

  // Arrays: items. Objects: values, parallel to keys(). Empty for other kinds.
  std::span<const Json> items() const;
  std::span<Json> items();
  Keys keys() const;
  size_t size() const;

  // Objects: the member's value or nullptr.
  const Json* find(std::string_view key) const;
  Json* find(std::string_view key);
  // Objects: sets (replacing in place) or appends a member. Returns *this for chaining.
  Json& set(std::string_view key, Json value);
  bool erase(std::string_view key);
  // Arrays: appends.
  Json& push(Json value);

  // Convenience getters for objects: the member if present and of the right kind.
  std::optional<std::string_view> getString(std::string_view key) const;
  std::optional<int64_t> getInt(std::string_view key) const;
  std::optional<double> getDouble(std::string_view key) const;
  std::optional<bool> getBool(std::string_view key) const;

  friend bool operator==(const Json& a, const Json& b);
  // Parser use: appends a member, resolving a duplicate key as Python does.
  void appendMember(std::string_view key, Json value);

  // Objects with at least this many members keep a hash index of their keys (4 bytes a slot,
  // built when the object reaches this size, parsed or set), so that appendMember (the
  // parser's duplicate check), set and find stay O(1) per member.
  static constexpr size_t kIndexedSize = 16;

 private:
  friend struct detail::JsonBuilder;
  struct Text;    // a text longer than kInline: its size, then its bytes
  struct Array;   // size, capacity, then the items
  struct Object;  // size, capacity, index, then the keys (String values), then the values
  static constexpr size_t kInline = 14;

  void release() noexcept;
  void setText(Kind kind, std::string_view s);
  template <class T>
  T* block() const {
    T* p;
    std::memcpy(&p, raw_ + 8, sizeof p);
    return p;
  }
  void setBlock(const void* p) { std::memcpy(raw_ + 8, &p, sizeof p); }
  static Json arrayOf(std::span<Json> items);                          // moves them
  static Json objectOf(std::span<Json> keys, std::span<Json> values);  // moves them
  std::optional<size_t> position(std::string_view key) const;
  void reserveMembers(size_t capacity);

  // [0] the kind; [1] Bool: the value, String/Number: 1 + the inline length (0: a Text block);
  // [2, 16) an inline text, or [8, 16) the block pointer.
  alignas(8) char raw_[16] = {};
};

// Members one object may have: far above any API's (OpenAI's metadata allows 16, logit_bias
// 300, a tool's JSON schema some hundreds), low enough that a hostile body of 80,000 keys is
// refused after ~10,000 instead of being parsed, sorted and keyed whole.
inline constexpr size_t kMaxJsonObjectMembers = 10000;

struct JsonParseOptions {
  size_t maxDepth = 64;  // nesting deeper than this is an error, never a stack overflow
  // Values in the whole document (strings, numbers, ... and containers): each costs 16 bytes
  // and its share of its container (~30 MB for a million, 8x a 2 MB body of one-digit numbers,
  // json_memory_test.cc), and parsing a hostile document is bounded in time as well.
  // 1,000,000 is above any real request (an embeddings request of token ids: at most 300,000).
  size_t maxValues = 1000000;
};

// Parses one JSON text (RFC 8259, UTF-8). Errors name the offset and what was wrong.
Result<Json> parseJson(std::string_view text, const JsonParseOptions& options = {});

// Compact JSON: no spaces, UTF-8 kept as is, numbers as written.
void writeJson(const Json& value, std::string& out);
std::string toJson(const Json& value);
// The two-character escape JSON has for c (\" \\ \n \r \t \b \f), or nullptr when c has
// none. Shared by this file's writer and the key's canonical (ensure_ascii) writer.
const char* jsonShortEscape(char32_t c);
// Appends s as a JSON string literal (quotes included), escaping only what JSON requires.
void writeJsonString(std::string_view s, std::string& out);

}  // namespace llmcache
