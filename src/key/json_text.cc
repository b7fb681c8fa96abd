#include "key/json_text.h"

#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace llmcache::key {

namespace {

using Byte = unsigned char;

// Per byte, what ensure_ascii writes for it: 0 copied as is (printable ASCII but " and \), a
// short escape's letter (\" \\ \n \r \t \b \f), 'u' for \u00XX, 'x' for a non-ASCII byte.
struct PythonEscapes {
  char e[256] = {};
  constexpr PythonEscapes() {
    for (int c = 0; c < 256; ++c) e[c] = c < 0x20 || c == 0x7F ? 'u' : c >= 0x80 ? 'x' : 0;
    e['"'] = '"';
    e['\\'] = '\\';
    e['\n'] = 'n';
    e['\r'] = 'r';
    e['\t'] = 't';
    e['\b'] = 'b';
    e['\f'] = 'f';
  }
};
constexpr PythonEscapes kPythonEscape;

// Per byte: true for what a JSON string holds as is and needs no check (ASCII from 0x20 but "
// and \).
struct JsonPlain {
  bool plain[256] = {};
  constexpr JsonPlain() {
    for (int c = 0x20; c < 0x80; ++c) plain[c] = c != '"' && c != '\\';
  }
};
constexpr JsonPlain kJsonPlain;

// Unescaped value of the one-letter escapes (\" \\ \/ \b \f \n \r \t); 0 for the others.
struct Unescapes {
  char c[256] = {};
  constexpr Unescapes() {
    c['"'] = '"';
    c['\\'] = '\\';
    c['/'] = '/';
    c['b'] = '\b';
    c['f'] = '\f';
    c['n'] = '\n';
    c['r'] = '\r';
    c['t'] = '\t';
  }
};
constexpr Unescapes kUnescape;

// The length of the well-formed UTF-8 sequence at p (p[0] >= 0x80), or 0 (Unicode's table
// 3-7: no overlong forms, no surrogates, nothing above U+10FFFF).
inline size_t utf8Length(const Byte* p, const Byte* end) {
  const unsigned c = p[0];
  auto cont = [&](ptrdiff_t i, unsigned lo = 0x80, unsigned hi = 0xBF) {
    return end - p > i && p[i] >= lo && p[i] <= hi;
  };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

bool hex4(const Byte* p, unsigned& v) {
  v = 0;
  for (int i = 0; i < 4; ++i) {
    const unsigned c = p[i];
    unsigned d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return false;
    v = v << 4 | d;
  }
  return true;
}

char* putUtf8(char32_t cp, char* o) {
  if (cp < 0x80) {
    *o++ = static_cast<char>(cp);
  } else if (cp < 0x800) {
    *o++ = static_cast<char>(0xC0 | (cp >> 6));
    *o++ = static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *o++ = static_cast<char>(0xE0 | (cp >> 12));
    *o++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *o++ = static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *o++ = static_cast<char>(0xF0 | (cp >> 18));
    *o++ = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *o++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *o++ = static_cast<char>(0x80 | (cp & 0x3F));
  }
  return o;
}

char* putU(unsigned v, char* o) {
  static const char* hex = "0123456789abcdef";
  o[0] = '\\';
  o[1] = 'u';
  o[2] = hex[(v >> 12) & 15];
  o[3] = hex[(v >> 8) & 15];
  o[4] = hex[(v >> 4) & 15];
  o[5] = hex[v & 15];
  return o + 6;
}

// The escape sequence at p (p[0] is a backslash): returns the byte after it, or nullptr when
// it is invalid or a lone surrogate. Writes its character at o when kWrite.
template <bool kWrite>
const Byte* escape(const Byte* p, const Byte* end, char*& o) {
  if (end - p < 2) return nullptr;
  if (const char c = kUnescape.c[p[1]]) {
    if constexpr (kWrite) *o++ = c;
    return p + 2;
  }
  if (p[1] != 'u') return nullptr;
  unsigned hi;
  if (end - p < 6 || !hex4(p + 2, hi)) return nullptr;
  if (hi >= 0xDC00 && hi <= 0xDFFF) return nullptr;  // a lone trailing surrogate
  char32_t cp = hi;
  const Byte* after = p + 6;
  if (hi >= 0xD800 && hi <= 0xDBFF) {
    unsigned lo;
    if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || !hex4(p + 8, lo) || lo < 0xDC00 ||
        lo > 0xDFFF)
      return nullptr;  // a lone leading surrogate
    cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
    after = p + 12;
  }
  if constexpr (kWrite) o = putUtf8(cp, o);
  return after;
}

// A string's characters from p on, one at a time, until its closing quote: returns the byte
// after it, or nullptr when the string is invalid or unterminated.
template <bool kWrite>
const Byte* scalarScan(const Byte* p, const Byte* end, char*& o) {
  while (p < end) {
    const unsigned c = *p;
    if (kJsonPlain.plain[c]) {
      if constexpr (kWrite) *o++ = static_cast<char>(c);
      ++p;
    } else if (c == '"') {
      return p + 1;
    } else if (c == '\\') {
      p = escape<kWrite>(p, end, o);
      if (!p) return nullptr;
    } else if (c < 0x20) {
      return nullptr;  // a raw control character
    } else {
      const size_t n = utf8Length(p, end);
      if (n == 0) return nullptr;
      if constexpr (kWrite) {
        std::memcpy(o, p, n);
        o += n;
      }
      p += n;
    }
  }
  return nullptr;  // unterminated
}

// ensure_ascii escaping of one character at p that needs it; returns the byte after it.
// Non-ASCII is decoded as decodeUtf8 does (text.h), which stays before end even when the text
// is not valid UTF-8 (a header's value, in the request context, can be any bytes).
const Byte* escapeOne(const Byte* p, const Byte* end, char*& o) {
  const unsigned c = *p;
  if (c < 0x80) {
    const char e = kPythonEscape.e[c];
    if (e == 'u') {
      o = putU(c, o);
    } else {
      o[0] = '\\';
      o[1] = e;
      o += 2;
    }
    return p + 1;
  }
  const ptrdiff_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
  char32_t cp = c & (len == 4 ? 0x07 : len == 3 ? 0x0F : 0x1F);
  for (ptrdiff_t k = 1; k < len && k < end - p; ++k) cp = (cp << 6) | (p[k] & 0x3F);
  if (cp >= 0x10000) {
    const char32_t v = cp - 0x10000;
    o = putU(0xD800 + static_cast<unsigned>(v >> 10), o);
    o = putU(0xDC00 + static_cast<unsigned>(v & 0x3FF), o);
  } else if (cp < 0x80 && kPythonEscape.e[cp] != 'u' && kPythonEscape.e[cp] != 0) {
    o[0] = '\\';  // an overlong form of a short-escaped character
    o[1] = kPythonEscape.e[cp];
    o += 2;
  } else {
    o = putU(static_cast<unsigned>(cp), o);
  }
  return end - p > len ? p + len : end;
}

char* escapeScalar(const Byte* p, const Byte* end, char* o) {
  while (p < end) {
    if (kPythonEscape.e[*p] == 0)
      *o++ = static_cast<char>(*p++);
    else
      p = escapeOne(p, end, o);
  }
  return o;
}

#if defined(__SSE2__)

inline uint64_t bits16(__m128i m) { return static_cast<uint64_t>(_mm_movemask_epi8(m)); }
inline __m128i load16(const Byte* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}
inline void store16(char* o, __m128i v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(o), v); }

// Copies n (< 64) bytes from src to dst 16 at a time: reads and writes up to 15 more.
inline void copyRun(char* dst, const Byte* src, size_t n) {
  for (size_t j = 0; j < n; j += 16) store16(dst + j, load16(src + j));
}

// The positions below n, as a mask (n <= 64).
inline uint64_t below(ptrdiff_t n) { return n >= 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1; }

// Clears the mask's bits below position pos.
inline uint64_t from(uint64_t mask, size_t pos) { return pos >= 64 ? 0 : mask & ~below(pos); }

// For a 64-byte block starting outside an escape, with bs its backslashes: the characters
// that a backslash escapes, except escaped backslashes (the one after each odd-length run of
// backslashes: simdjson's find_odd_backslash_sequences), and the backslashes that begin an
// escape (in each run, the first, third, ...).
struct Escapes {
  uint64_t escaped;
  uint64_t starts;
};
inline Escapes findEscapes(uint64_t bs) {
  constexpr uint64_t kEven = 0x5555555555555555ULL;
  constexpr uint64_t kOdd = ~kEven;
  const uint64_t runStarts = bs & ~(bs << 1);
  // Adding 1 at a run's start clears the run and sets the bit after it.
  const uint64_t evenSum = bs + (runStarts & kEven);
  const uint64_t oddSum = bs + (runStarts & kOdd);
  const uint64_t escaped = (evenSum & ~bs & kOdd) | (oddSum & ~bs & kEven);
  const uint64_t evenRuns = bs & ~evenSum;  // the runs that start at an even position
  const uint64_t starts = (evenRuns & kEven) | (bs & ~evenRuns & kOdd);
  return {escaped, starts};
}

// One block of 64 bytes of a JSON string (from a character's start; padded input), read as
// bit masks of its quotes, backslashes, control and non-ASCII bytes, so that it costs work per
// escape and per non-ASCII character rather than per byte, with no branch per byte. Returns
// where the next block starts (at a character's start), or, with done set, the byte after the
// closing quote; nullptr when the string is invalid or ends unterminated at end.
template <bool kWrite>
const Byte* scanBlock(const Byte* p, const Byte* end, char*& o, bool& done) {
  uint64_t quote = 0, backslash = 0, low = 0, high = 0, letterN = 0;
  for (int i = 0; i < 4; ++i) {
    const __m128i v = load16(p + 16 * i);
    quote |= bits16(_mm_cmpeq_epi8(v, _mm_set1_epi8('"'))) << (16 * i);
    backslash |= bits16(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))) << (16 * i);
    low |= bits16(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20))) << (16 * i);  // and >= 0x80
    high |= bits16(v) << (16 * i);
    if constexpr (!kWrite) letterN |= bits16(_mm_cmpeq_epi8(v, _mm_set1_epi8('n'))) << (16 * i);
  }
  const uint64_t inside = below(end - p);  // the bytes before the input's end
  const auto [escaped, escapeStarts] = findEscapes(backslash);
  const uint64_t closing = quote & ~escaped & inside;
  const uint64_t str = (closing ? (closing & (0 - closing)) - 1 : ~uint64_t{0}) & inside;
  if (low & ~high & str) return nullptr;  // a raw control character
  size_t next = 64;                       // where the next block starts
  // Non-ASCII: each sequence must be well-formed (and is copied with the runs around it).
  if (uint64_t leads = high & str) {
    uint64_t covered = 0;  // the continuation bytes the leads account for
    uint64_t cont = 0;     // 0x80..0xBF
    for (int i = 0; i < 4; ++i)
      cont |= bits16(_mm_cmplt_epi8(load16(p + 16 * i), _mm_set1_epi8(-64))) << (16 * i);
    leads &= ~cont;
    while (leads) {
      const size_t k = static_cast<size_t>(__builtin_ctzll(leads));
      leads &= leads - 1;
      const size_t n = utf8Length(p + k, end);
      if (n == 0) return nullptr;
      covered |= from(below(static_cast<ptrdiff_t>(k + n)), k + 1);
      if (k + n > next) next = k + n;  // the sequence runs into the next block
    }
    if ((cont & str) & ~covered) return nullptr;  // a stray continuation byte
  }
  uint64_t starts = escapeStarts & str;
  if (starts >> 63) {  // its letter is in the next block: that block starts at the backslash
    starts &= ~(uint64_t{1} << 63);
    next = 63;
  }
  size_t pos = 0;  // the bytes before pos are done
  if constexpr (kWrite) {
    while (starts) {
      const size_t s = static_cast<size_t>(__builtin_ctzll(starts));
      copyRun(o, p + pos, s - pos);
      o += s - pos;
      const Byte* after = escape<true>(p + s, end, o);
      if (!after) return nullptr;
      pos = static_cast<size_t>(after - p);
      starts = from(starts, pos);  // a surrogate pair's second half
    }
  } else {
    // Only validation: \" \\ \n need no look; the other escapes are checked one by one.
    uint64_t odd = escaped & str & ~quote & ~backslash & ~letterN;
    while (odd) {
      const size_t l = static_cast<size_t>(__builtin_ctzll(odd));
      char* unused = nullptr;
      const Byte* after = escape<false>(p + l - 1, end, unused);
      if (!after) return nullptr;
      pos = static_cast<size_t>(after - p);
      odd = from(odd, pos);  // a surrogate pair's second half
    }
  }
  if (closing) {
    const size_t q = static_cast<size_t>(__builtin_ctzll(closing));
    if constexpr (kWrite) {
      copyRun(o, p + pos, q - pos);
      o += q - pos;
    }
    done = true;
    return p + q + 1;
  }
  if (end - p <= 64) return nullptr;  // unterminated
  if (pos < next) {
    if constexpr (kWrite) {
      copyRun(o, p + pos, next - pos);
      o += next - pos;
    }
    pos = next;
  }
  return p + pos;
}

template <bool kWrite>
const char* scanString(const char* from, const char* to, char*& out) {
  const Byte* p = reinterpret_cast<const Byte*>(from);
  const Byte* const end = reinterpret_cast<const Byte*>(to);
  char* o = out;
  for (;;) {
    bool done = false;
    p = scanBlock<kWrite>(p, end, o, done);
    if (!p) return nullptr;
    if (done) {
      if constexpr (kWrite) out = o;
      return reinterpret_cast<const char*>(p);
    }
  }
}

#else

template <bool kWrite>
const char* scanString(const char* from, const char* to, char*& out) {
  char* o = out;
  const Byte* p =
      scalarScan<kWrite>(reinterpret_cast<const Byte*>(from), reinterpret_cast<const Byte*>(to), o);
  if constexpr (kWrite) out = o;
  return reinterpret_cast<const char*>(p);
}

#endif

}  // namespace

const char* findStringSpecial(const char* from, const char* to) {
  const Byte* p = reinterpret_cast<const Byte*>(from);
  const Byte* const end = reinterpret_cast<const Byte*>(to);
#if defined(__SSE2__)
  for (; p < end; p += 16) {
    const __m128i v = load16(p);
    const __m128i q = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
    const __m128i b = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    const __m128i c = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));  // and >= 0x80
    if (const uint64_t m = bits16(_mm_or_si128(_mm_or_si128(q, b), c)) & below(end - p))
      return reinterpret_cast<const char*>(p + __builtin_ctzll(m));
  }
  return to;
#else
  while (p < end && kJsonPlain.plain[*p]) ++p;
  return reinterpret_cast<const char*>(p);
#endif
}

const char* unescapeJsonString(const char* p, const char* end, char*& out) {
  return scanString<true>(p, end, out);
}

const char* skipJsonString(const char* p, const char* end) {
  char* unused = nullptr;
  return scanString<false>(p, end, unused);
}

char* escapePythonString(std::string_view s, char* o) {
  *o++ = '"';
  const Byte* p = reinterpret_cast<const Byte*>(s.data());
  o = escapeScalar(p, p + s.size(), o);
  *o++ = '"';
  return o;
}

char* escapePaddedPythonString(std::string_view s, char* o) {
#if defined(__SSE2__)
  const Byte* p = reinterpret_cast<const Byte*>(s.data());
  const Byte* const end = p + s.size();
  *o++ = '"';
  // 64 bytes at a time (16 for what is left below 64): the bytes that need an escape as a bit
  // mask, the runs between them copied 16 bytes at a time.
  while (p < end) {
    const int blockBytes = end - p >= 64 ? 64 : 16;
    uint64_t special = 0;
    __m128i v[4];
    for (int i = 0; i < blockBytes / 16; ++i) {
      v[i] = load16(p + 16 * i);
      const __m128i q = _mm_cmpeq_epi8(v[i], _mm_set1_epi8('"'));
      const __m128i b = _mm_cmpeq_epi8(v[i], _mm_set1_epi8('\\'));
      const __m128i c = _mm_cmplt_epi8(v[i], _mm_set1_epi8(0x20));  // and >= 0x80
      const __m128i d = _mm_cmpeq_epi8(v[i], _mm_set1_epi8(0x7F));
      special |= bits16(_mm_or_si128(_mm_or_si128(q, b), _mm_or_si128(c, d))) << (16 * i);
    }
    const ptrdiff_t n = end - p < blockBytes ? end - p : blockBytes;
    special &= below(n);
    if (!special) {
      for (int i = 0; i < blockBytes / 16; ++i) store16(o + 16 * i, v[i]);
      p += n;
      o += n;
      continue;
    }
    size_t pos = 0;
    while (special) {
      const size_t k = static_cast<size_t>(__builtin_ctzll(special));
      copyRun(o, p + pos, k - pos);
      o += k - pos;
      const char e = kPythonEscape.e[p[k]];
      if (e != 'u' && e != 'x') {  // a short escape: the common case, inline
        o[0] = '\\';
        o[1] = e;
        o += 2;
        pos = k + 1;
        special &= special - 1;
        continue;
      }
      pos = static_cast<size_t>(escapeOne(p + k, end, o) - p);
      special = from(special, pos);  // a UTF-8 sequence's continuation bytes
    }
    if (pos < static_cast<size_t>(n)) {
      copyRun(o, p + pos, static_cast<size_t>(n) - pos);
      o += static_cast<size_t>(n) - pos;
      pos = static_cast<size_t>(n);
    }
    p += pos;
  }
  *o++ = '"';
  return o;
#else
  return escapePythonString(s, o);
#endif
}

}  // namespace llmcache::key
