#include "key/text.h"

#include <unicode/ucasemap.h>

#include <memory>
#include <stdexcept>

#include "key/json_text.h"

namespace llmcache::key {

bool isPythonSpace(char32_t cp) {
  if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
  switch (cp) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

char32_t decodeUtf8(std::string_view s, size_t& i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    ++i;
    return c;
  }
  int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
  char32_t cp = c & (len == 4 ? 0x07 : len == 3 ? 0x0F : 0x1F);
  for (int k = 1; k < len && i + k < s.size(); ++k)
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += len;
  return cp;
}

std::string_view firstCodePoints(std::string_view s, size_t n) {
  size_t i = 0;
  for (size_t k = 0; k < n && i < s.size(); ++k) decodeUtf8(s, i);
  return s.substr(0, std::min(i, s.size()));
}

namespace {

struct CaseMapDeleter {
  void operator()(UCaseMap* m) const { ucasemap_close(m); }
};

// ucasemap objects are not thread-safe for concurrent use; one per thread.
UCaseMap* rootCaseMap() {
  thread_local std::unique_ptr<UCaseMap, CaseMapDeleter> map = [] {
    UErrorCode err = U_ZERO_ERROR;
    std::unique_ptr<UCaseMap, CaseMapDeleter> m(ucasemap_open("", U_FOLD_CASE_DEFAULT, &err));
    if (U_FAILURE(err)) throw std::runtime_error("ICU ucasemap_open failed");
    return m;
  }();
  return map.get();
}

bool isAscii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

}  // namespace

void appendPythonLower(std::string_view s, std::string& out) {
  if (isAscii(s)) {
    const size_t at = out.size();
    out.append(s.data(), s.size());
    for (size_t i = at; i < out.size(); ++i)
      if (out[i] >= 'A' && out[i] <= 'Z') out[i] = static_cast<char>(out[i] + 32);
    return;
  }
  // Lowercasing can grow a string (U+0130 is 2 bytes, "i\u0307" is 3); retry with the size ICU
  // asks for.
  const size_t at = out.size();
  size_t room = s.size() + s.size() / 2 + 16;
  for (int attempt = 0; attempt < 2; ++attempt) {
    out.resize(at + room);
    UErrorCode err = U_ZERO_ERROR;
    const int32_t n =
        ucasemap_utf8ToLower(rootCaseMap(), out.data() + at, static_cast<int32_t>(room), s.data(),
                             static_cast<int32_t>(s.size()), &err);
    if (err == U_BUFFER_OVERFLOW_ERROR) {
      room = static_cast<size_t>(n);
      continue;
    }
    if (U_FAILURE(err)) throw std::runtime_error("ICU lowercasing failed");
    out.resize(at + static_cast<size_t>(n));
    return;
  }
  throw std::runtime_error("ICU lowercasing failed");
}

std::string pythonLower(std::string_view s) {
  std::string out;
  appendPythonLower(s, out);
  return out;
}

std::string_view pythonStrip(std::string_view s) {
  auto asciiSpace = [](unsigned char c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
  };
  size_t begin = 0;
  while (begin < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[begin]);
    if (c < 0x80) {  // ASCII: no decoding
      if (!asciiSpace(c)) break;
      ++begin;
      continue;
    }
    size_t next = begin;
    if (!isPythonSpace(decodeUtf8(s, next))) break;
    begin = next;
  }
  size_t end = s.size();
  while (end > begin) {
    const unsigned char c = static_cast<unsigned char>(s[end - 1]);
    if (c < 0x80) {
      if (!asciiSpace(c)) break;
      --end;
      continue;
    }
    // The start of the last code point (valid UTF-8: back over the continuation bytes).
    size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t next = start;
    if (!isPythonSpace(decodeUtf8(s, next))) break;
    end = start;
  }
  return s.substr(begin, end - begin);
}

void appendNormalizedText(std::string_view s, NormalizeMode mode, std::string& out,
                          std::string& scratch) {
  if (mode == NormalizeMode::Exact) {
    out.append(s.data(), s.size());
    return;
  }
  if (collapseAsciiWide(s, mode == NormalizeMode::Seed, out)) return;
  // seed collapses into scratch, then lowercases into out.
  std::string& collapsed = mode == NormalizeMode::Seed ? scratch : out;
  if (mode == NormalizeMode::Seed) collapsed.clear();
  const size_t begin = collapsed.size();
  bool ascii = true;
  bool pendingSpace = false;
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20)) {
        pendingSpace = collapsed.size() > begin;
        ++i;
        continue;
      }
      // A run of printable, non-space ASCII goes in at once.
      size_t j = i + 1;
      while (j < s.size()) {
        const unsigned char d = static_cast<unsigned char>(s[j]);
        if (d >= 0x80 || (d >= 0x09 && d <= 0x0D) || (d >= 0x1C && d <= 0x20)) break;
        ++j;
      }
      if (pendingSpace) collapsed.push_back(' ');
      pendingSpace = false;
      collapsed.append(s.data() + i, j - i);
      i = j;
      continue;
    }
    const size_t start = i;
    const char32_t cp = decodeUtf8(s, i);
    if (isPythonSpace(cp)) {
      pendingSpace = collapsed.size() > begin;
      continue;
    }
    if (pendingSpace) collapsed.push_back(' ');
    pendingSpace = false;
    ascii = false;
    collapsed.append(s.data() + start, i - start);
  }
  if (mode != NormalizeMode::Seed) return;
  // Lowercasing the collapsed text as a whole is Python's " ".join(text.split()).lower(). The
  // final-sigma rule looks at the neighbouring letters, and a space (neither cased nor
  // case-ignorable) ends that context, so the single spaces collapsing left keep it right.
  if (ascii) {
    const size_t at = out.size();
    out.append(collapsed);
    for (size_t k = at; k < out.size(); ++k)
      if (out[k] >= 'A' && out[k] <= 'Z') out[k] = static_cast<char>(out[k] + 32);
    return;
  }
  appendPythonLower(collapsed, out);
}

std::string normalizeText(std::string_view s, NormalizeMode mode) {
  std::string out, scratch;
  appendNormalizedText(s, mode, out, scratch);
  return out;
}

}  // namespace llmcache::key
