#pragma once
// Text normalization exactly as Python's str methods do it (key spec v1, "Text normalization").
#include <string>
#include <string_view>

namespace llmcache::key {

enum class NormalizeMode { Seed, Whitespace, Exact };

// Python's str.isspace() for one code point (not U+200B, not U+FEFF).
bool isPythonSpace(char32_t cp);

// Python's str.lower(): full Unicode lowercasing (final sigma, U+0130 -> "i\u0307") via ICU's
// root locale. Input must be valid UTF-8 (the JSON parser guarantees it).
std::string pythonLower(std::string_view utf8);
// The same, appended to out (no allocation once out has the room; ASCII never reaches ICU).
void appendPythonLower(std::string_view utf8, std::string& out);

// Python's str.strip() with no arguments.
std::string_view pythonStrip(std::string_view utf8);

// seed: " ".join(text.split()).lower(); whitespace: " ".join(text.split()); exact: unchanged.
std::string normalizeText(std::string_view utf8, NormalizeMode mode);
// The same, appended to out; seed mode uses scratch (reused across calls: no allocation once
// both have the room).
void appendNormalizedText(std::string_view utf8, NormalizeMode mode, std::string& out,
                          std::string& scratch);

// Decodes the UTF-8 sequence at s[i] (valid UTF-8 assumed) and advances i past it.
char32_t decodeUtf8(std::string_view s, size_t& i);

// The first n code points of s.
std::string_view firstCodePoints(std::string_view s, size_t n);

}  // namespace llmcache::key
