#pragma once
// FlatJson: a parsed request body as one flat array of nodes, for the key writer. Parsing a
// body into it allocates nothing once the object has been used (its node array, text buffer and
// parser stack are reused), unlike Json, which owns a string and two vectors per value.
//
// Nodes are in document order (pre-order); a node's descendants follow it, and `end` is the
// index just past the last of them, so the next sibling of node i is node nodes[i].end.
// Strings hold their unescaped text, numbers their literal text; both view either the parsed
// body (which must outlive their use) or the object's own buffer. An object keeps every member
// as written, duplicates included; find() and the sorted walks take the last one (Python's
// json.loads: a repeated key's last value wins).
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/result.h"
#include "key/text_buffer.h"

namespace llmcache::key {

class FlatJson {
 public:
  enum class Kind : uint8_t { Null, False, True, Integer, Float, String, Array, Object };

  struct Node {
    Kind kind = Kind::Null;
    uint32_t end = 0;       // one past this node's last descendant
    double number = 0;      // Float: the value, correctly rounded (finite)
    std::string_view text;  // String: the text; Integer, Float: the literal
    std::string_view key;   // a member of an object: its key
  };

  FlatJson();
  ~FlatJson();
  FlatJson(const FlatJson&) = delete;
  FlatJson& operator=(const FlatJson&) = delete;

  // Parses a request body with parseRequest's rules: RFC 8259 (Boost.JSON's parser, UTF-8
  // validated), nesting up to maxDepth, and any float that overflows a double rejected,
  // wherever it is (the first one in the text is named). Errors read as parseRequest's. The
  // body must be padded (kPadding readable bytes after it, key/json_text.h).
  // fast = false: Boost.JSON's parser only (tests compare the two).
  Result<void> parse(std::string_view body, size_t maxDepth, bool fast = true);
  // Mirrors a parsed Json: the nodes view its strings, so it must outlive their use. A float
  // that overflows a double (only in a Json not made by parseRequest) is not an error here:
  // overflow() names it, and such a node's number is infinite.
  void assign(const Json& value);
  // After assign(): the first float literal that overflows a double, or empty.
  std::string_view overflow() const { return overflow_; }

  const Node& operator[](uint32_t i) const { return nodes_[i]; }
  uint32_t size() const { return static_cast<uint32_t>(nodes_.size()); }
  static constexpr uint32_t npos = UINT32_MAX;

  // Frees the buffers that grew beyond keepBytes (the nodes are then invalid).
  void trim(size_t keepBytes);

  // Object i: the last member named key, or npos.
  uint32_t find(uint32_t obj, std::string_view key) const {
    uint32_t found = npos;
    for (uint32_t c = obj + 1; c < nodes_[obj].end; c = nodes_[c].end)
      if (nodes_[c].key == key) found = c;
    return found;
  }

 private:
  struct Parser;
  struct Fast;
  void assignValue(const Json& v, std::string_view key);

  std::vector<Node> nodes_;
  TextBuffer text_;  // unescaped strings (and, on the general path, keys and numbers)
  std::unique_ptr<Parser> parser_;
  std::string_view overflow_;
};

// Python float(text) of a JSON number literal, correctly rounded; false when it overflows a
// double (Python's reference rejects such a request). Underflow is 0.0, as in Python.
bool parseJsonDouble(std::string_view literal, double& out);

// "the number <first 20 characters> is too large" (the reference's message).
Error tooLargeNumber(std::string_view literal);

}  // namespace llmcache::key
