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
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace llmcache {

class Json {
 public:
  enum class Kind : uint8_t { Null, Bool, Number, String, Array, Object };

  Json() = default;  // null
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

 private:
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  std::string text_;
  std::vector<Json> items_;
  std::vector<std::string> keys_;
};

struct JsonParseOptions {
  size_t maxDepth = 64;  // nesting deeper than this is an error, never a stack overflow
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
