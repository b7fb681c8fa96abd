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
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"

namespace llmcache {

class Json {
 public:
  enum class Kind : uint8_t { Null, Bool, Number, String, Array, Object };

  Json() = default;  // null
  // Copies carry no member index (it is rebuilt when the copy is mutated past the threshold).
  Json(const Json& other)
      : kind_(other.kind_),
        bool_(other.bool_),
        text_(other.text_),
        items_(other.items_),
        keys_(other.keys_) {}
  Json& operator=(const Json& other) {
    if (this != &other) *this = Json(other);
    return *this;
  }
  Json(Json&&) noexcept = default;
  Json& operator=(Json&&) noexcept = default;
  ~Json() = default;
  static Json null() { return Json{}; }
  static Json boolean(bool b);
  static Json string(std::string s);
  static Json integer(int64_t v);
  static Json number(double v);             // shortest round-trip spelling
  static Json numberText(std::string raw);  // raw must be a valid JSON number
  static Json array();
  static Json object();

  Kind kind() const { return kind_; }
  bool isNull() const { return kind_ == Kind::Null; }
  bool isBool() const { return kind_ == Kind::Bool; }
  bool isNumber() const { return kind_ == Kind::Number; }
  bool isString() const { return kind_ == Kind::String; }
  bool isArray() const { return kind_ == Kind::Array; }
  bool isObject() const { return kind_ == Kind::Object; }

  bool asBool() const { return bool_; }
  // String value, or a number's literal text.
  const std::string& text() const { return text_; }
  // A number written without '.', 'e' or 'E' (Python's json makes those ints).
  bool isIntegerNumber() const;
  std::optional<int64_t> asInt64() const;  // integers that fit; nullopt otherwise
  std::optional<double> asDouble() const;  // any number, correctly rounded; nullopt if not finite

  // Arrays: items. Objects: values, parallel to keys().
  const std::vector<Json>& items() const { return items_; }
  std::vector<Json>& items() { return items_; }
  const std::vector<std::string>& keys() const { return keys_; }
  size_t size() const { return items_.size(); }

  // Objects: the member's value or nullptr.
  const Json* find(std::string_view key) const;
  Json* find(std::string_view key);
  // Objects: sets (replacing in place) or appends a member. Returns *this for chaining.
  Json& set(std::string key, Json value);
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
  void appendMember(std::string key, Json value);

  // Objects with at least this many members keep a hash index of their keys, so that
  // appendMember (the parser's duplicate check), set and find stay O(1) per member.
  static constexpr size_t kIndexedSize = 16;

 private:
  using Index = std::unordered_multimap<size_t, uint32_t>;  // hash(key) -> position
  // Mutators only: a const find never builds it (a parsed body may be read from several
  // threads), it only uses one that exists.
  void indexKey(size_t position);
  std::optional<size_t> position(std::string_view key) const;

  Kind kind_ = Kind::Null;
  bool bool_ = false;
  std::string text_;
  std::vector<Json> items_;
  std::vector<std::string> keys_;
  // Built when an object reaches kIndexedSize members through appendMember or set (a body of
  // 40,000 keys took 7.3 s to parse with a linear duplicate search, issue 15).
  std::unique_ptr<Index> index_;
};

// Members one object may have: far above any API's (OpenAI's metadata allows 16, logit_bias
// 300, a tool's JSON schema some hundreds), low enough that a hostile body of 80,000 keys is
// refused after ~10,000 instead of being parsed, sorted and keyed whole.
inline constexpr size_t kMaxJsonObjectMembers = 10000;

struct JsonParseOptions {
  size_t maxDepth = 64;  // nesting deeper than this is an error, never a stack overflow
  // Values in the whole document (strings, numbers, ... and containers): the parsed tree costs
  // ~100 bytes a value, so an 8 MiB body of tiny values is refused instead of taking ~300 MB.
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
