#pragma once
// The byte loops of the key's hot path: JSON strings read (validated, unescaped) and written
// (Python's json.dumps ensure_ascii escaping). With SSE2 (every x86-64 has it) they take up to
// 64 bytes at a time as bit masks of the bytes that need work (quotes, backslashes, control
// characters, non-ASCII; the escaped positions found as simdjson does), so a block costs work
// per escape and per non-ASCII character rather than per byte, with no branch per byte. On CPUs
// with AVX-512 VBMI2 (checked once at start-up) the masks come from one 64-byte compare each,
// and the writers move whole blocks with the byte compress: a string of many escapes (a
// canonical text's quotes and newlines, a JSON body inside a JSON string) costs a few
// instructions per 32 or 64 bytes, not a copy per escape. Both forms give the same bytes.
//
// Padding: the functions that say so read (never use) up to kPadding bytes past the end of
// their input, so that input must be followed by that many readable bytes (TextBuffer::room).
// They also write past what they report as written, within the room the caller provides.
#include <cstddef>
#include <string>
#include <string_view>

#include "key/text_buffer.h"

namespace llmcache::key {

inline constexpr size_t kPadding = 64;

// Room the escapers need for an n-byte string.
constexpr size_t escapeRoom(size_t n) { return 6 * n + 66; }

// Writes utf8 as a Python json.dumps string literal with ensure_ascii, quotes included, at out
// (escapeRoom(utf8.size()) bytes of room); returns the end of what it wrote. \" \\ \n \r \t \b
// \f, other control characters, DEL and non-ASCII as \uXXXX (lowercase hex), characters above
// U+FFFF as surrogate pairs. Text that is not valid UTF-8 is written as decodeUtf8 reads it.
char* escapePythonString(std::string_view utf8, char* out);
// The same for padded input, 64 bytes at a time.
char* escapePaddedPythonString(std::string_view utf8, char* out);
inline void appendPythonString(std::string_view utf8, TextBuffer& out) {
  out.commitTo(escapePythonString(utf8, out.room(escapeRoom(utf8.size()))));
}
inline void appendPaddedPythonString(std::string_view utf8, TextBuffer& out) {
  out.commitTo(escapePaddedPythonString(utf8, out.room(escapeRoom(utf8.size()))));
}

// A JSON string whose opening quote is just before p (padded input ending at end), strictly as
// RFC 8259 (and Boost.JSON) reads it: returns the byte after its closing quote, or nullptr when
// it is not a valid JSON string (unterminated, a control character, a bad escape, invalid
// UTF-8) or when it holds a \u escape of a lone surrogate (which Boost.JSON rejects; callers
// that fall back to it get its exact error).
//
// unescapeJsonString also writes the string's text at out (room: end - p + 64) and advances
// out past it; skipJsonString only validates.
const char* unescapeJsonString(const char* p, const char* end, char*& out);
const char* skipJsonString(const char* p, const char* end);

// Python's " ".join(s.split()) appended to out (lowercased too when `lower`: .lower()) for an
// ASCII string, 64 bytes at a time with AVX-512 (VBMI2's byte compress). False, with out
// unchanged, when s holds a non-ASCII byte or the wide forms are off: the caller's general path
// then does it. Reads nothing past s.
bool collapseAsciiWide(std::string_view s, bool lower, std::string& out);

// Whether the loops above take their AVX-512 (VBMI2) forms, when the CPU has them (it does by
// default); returns the previous setting. For tests, which check both forms against each other.
bool useWideSimd(bool on);

// The first byte in [p, end) (padded) that is a quote, a backslash, a control character or
// non-ASCII; end when there is none. (A JSON string's plain run.)
const char* findStringSpecial(const char* p, const char* end);

}  // namespace llmcache::key
