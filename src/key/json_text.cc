#include "key/json_text.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LLMCACHE_WIDE_SIMD 1
// The AVX-512 paths (VBMI2's byte compress, VBMI's byte permute), compiled for those
// instructions whatever the build's target and taken only when the CPU has them.
#define LLMCACHE_WIDE \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi,avx512vbmi2,bmi2,popcnt")))
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

#if defined(LLMCACHE_WIDE_SIMD)

bool cpuHasWide() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vbmi") &&
         __builtin_cpu_supports("avx512vbmi2") && __builtin_cpu_supports("bmi2") &&
         __builtin_cpu_supports("popcnt");
}
bool gWide = cpuHasWide();

// Unescapes a 64-byte block (padded) whose escapes are all one-letter ones: keeps the bytes in
// keep (the string's bytes but the backslashes that begin an escape), translating the escaped
// letters (at letters) to their characters, and writes them at o (64 bytes of room). False,
// with nothing written, when an escaped letter is not one of " \ / b f n r t (a \u escape, or
// an invalid one: the caller's loop takes the block).
LLMCACHE_WIDE bool unescapeBlockWide(const Byte* p, uint64_t keep, uint64_t letters, char*& o) {
  const __m512i x = _mm512_loadu_si512(p);
  const __mmask64 lower = _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8('b')) |
                          _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8('f')) |
                          _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8('n')) |
                          _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8('r')) |
                          _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8('t'));
  const __mmask64 same = _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8('"')) |
                         _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8('\\')) |
                         _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8('/'));
  if (letters & ~(lower | same)) return false;
  // The letters' characters by their low 6 bits: b 0x22, f 0x26, n 0x2E, r 0x32, t 0x34.
  struct Table {
    alignas(64) char c[64] = {};
    constexpr Table() {
      for (char l : {'b', 'f', 'n', 'r', 't'}) c[l & 63] = kUnescape.c[static_cast<Byte>(l)];
    }
  };
  static constexpr Table kTable;
  const __m512i y =
      _mm512_mask_permutexvar_epi8(x, letters & lower, x, _mm512_load_si512(kTable.c));
  _mm512_storeu_si512(o, _mm512_maskz_compress_epi8(keep, y));
  o += _mm_popcnt_u64(keep);
  return true;
}

// ensure_ascii escaping of padded text with the AVX-512 byte compress: 32 bytes at a time
// become 64 (a backslash before every byte, with the escaped ones translated), of which the
// backslashes of the bytes that need none are dropped. A byte that needs a \u escape (control,
// DEL, non-ASCII) is written by escapeOne.
LLMCACHE_WIDE char* escapePaddedWide(const Byte* p, const Byte* end, char* o) {
  // The short escapes' letters by the low 5 bits of the control character.
  struct Letters {
    alignas(32) char c[32] = {};
    constexpr Letters() {
      for (int ch = 0; ch < 0x20; ++ch)
        if (kPythonEscape.e[ch] != 'u') c[ch] = kPythonEscape.e[ch];
    }
  };
  static constexpr Letters kLetters;
  const __m256i letters = _mm256_load_si256(reinterpret_cast<const __m256i*>(kLetters.c));
  while (p < end) {
    const ptrdiff_t n = end - p < 32 ? end - p : 32;
    const uint32_t inside = n == 32 ? ~0u : (1u << n) - 1;
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __mmask32 control = _mm256_cmplt_epu8_mask(x, _mm256_set1_epi8(0x20));
    const __mmask32 shortControl = _mm256_mask_test_epi8_mask(
        control, _mm256_maskz_permutexvar_epi8(control, x, letters), _mm256_set1_epi8(-1));
    const uint32_t special = (_mm256_cmpeq_epi8_mask(x, _mm256_set1_epi8('"')) |
                              _mm256_cmpeq_epi8_mask(x, _mm256_set1_epi8('\\')) | shortControl) &
                             inside;
    const uint32_t unicode =
        ((control & ~shortControl) | _mm256_cmpge_epu8_mask(x, _mm256_set1_epi8(0x7F))) & inside;
    const uint32_t take = unicode ? (uint32_t{1} << __builtin_ctz(unicode)) - 1 : inside;
    const __m256i y = _mm256_mask_permutexvar_epi8(x, shortControl, x, letters);
    const __m512i pairs =
        _mm512_or_si512(_mm512_slli_epi16(_mm512_cvtepu8_epi16(y), 8), _mm512_set1_epi16('\\'));
    const uint64_t keep =
        _pdep_u64(special & take, 0x5555555555555555ULL) | _pdep_u64(take, 0xAAAAAAAAAAAAAAAAULL);
    _mm512_storeu_si512(o, _mm512_maskz_compress_epi8(keep, pairs));
    o += _mm_popcnt_u64(keep);
    p += _mm_popcnt_u32(take);
    if (unicode) p = escapeOne(p, end, o);
  }
  return o;
}

#endif

// One block of 64 bytes of a JSON string (from a character's start; padded input), read as
// bit masks of its quotes, backslashes, control and non-ASCII bytes, so that it costs work per
// escape and per non-ASCII character rather than per byte, with no branch per byte. Returns
// where the next block starts (at a character's start), or, with done set, the byte after the
// closing quote; nullptr when the string is invalid or ends unterminated at end.
// A block's bytes of interest, as bit masks (bit i: byte p[i]).
struct BlockMasks {
  uint64_t quote, backslash;
  uint64_t low;      // below 0x20, and non-ASCII
  uint64_t high;     // non-ASCII
  uint64_t letterN;  // 'n' (only for validation)
  uint64_t cont;     // 0x80..0xBF, when high is not 0
};

inline BlockMasks masksOf(const Byte* p) {
  BlockMasks m{};
  for (int i = 0; i < 4; ++i) {
    const __m128i v = load16(p + 16 * i);
    m.quote |= bits16(_mm_cmpeq_epi8(v, _mm_set1_epi8('"'))) << (16 * i);
    m.backslash |= bits16(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))) << (16 * i);
    m.low |= bits16(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20))) << (16 * i);  // and >= 0x80
    m.high |= bits16(v) << (16 * i);
    m.letterN |= bits16(_mm_cmpeq_epi8(v, _mm_set1_epi8('n'))) << (16 * i);
  }
  if (m.high)
    for (int i = 0; i < 4; ++i)
      m.cont |= bits16(_mm_cmplt_epi8(load16(p + 16 * i), _mm_set1_epi8(-64))) << (16 * i);
  return m;
}

template <bool kWrite>
const Byte* scanBlock(const Byte* p, const Byte* end, char*& o, bool& done, const BlockMasks& m) {
  const uint64_t quote = m.quote, backslash = m.backslash, low = m.low, high = m.high,
                 letterN = m.letterN;
  const uint64_t inside = below(end - p);  // the bytes before the input's end
  const auto [escaped, escapeStarts] = findEscapes(backslash);
  const uint64_t closing = quote & ~escaped & inside;
  const uint64_t str = (closing ? (closing & (0 - closing)) - 1 : ~uint64_t{0}) & inside;
  if (low & ~high & str) return nullptr;  // a raw control character
  size_t next = 64;                       // where the next block starts
  // Non-ASCII: each sequence must be well-formed (and is copied with the runs around it).
  if (uint64_t leads = high & str) {
    uint64_t covered = 0;  // the continuation bytes the leads account for
    const uint64_t cont = m.cont;
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
#if defined(LLMCACHE_WIDE_SIMD)
    // The whole block at once when its escapes are one-letter ones and it ends inside it.
    if (gWide && next <= 64 && (starts || closing)) {
      const size_t stop = closing ? static_cast<size_t>(__builtin_ctzll(closing)) : next;
      if (unescapeBlockWide(p, below(static_cast<ptrdiff_t>(stop)) & ~starts,
                            escaped & below(static_cast<ptrdiff_t>(stop)), o)) {
        pos = stop;
        starts = 0;
      }
    }
#endif
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
    p = scanBlock<kWrite>(p, end, o, done, masksOf(p));
    if (!p) return nullptr;
    if (done) {
      if constexpr (kWrite) out = o;
      return reinterpret_cast<const char*>(p);
    }
  }
}

#if defined(LLMCACHE_WIDE_SIMD)

LLMCACHE_WIDE inline BlockMasks masksOfWide(const Byte* p) {
  const __m512i v = _mm512_loadu_si512(p);
  BlockMasks m;
  m.quote = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('"'));
  m.backslash = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\\'));
  m.high = _mm512_movepi8_mask(v);
  m.low = _mm512_cmplt_epu8_mask(v, _mm512_set1_epi8(0x20)) | m.high;
  m.letterN = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('n'));
  m.cont = _mm512_cmplt_epi8_mask(v, _mm512_set1_epi8(-64));
  return m;
}

// utf8Errors' tables: each one's 16 entries, four times over (one copy per 128-bit lane of the
// byte shuffle).
struct Utf8Tables {
  static constexpr uint8_t kTooShort = 1 << 0, kTooLong = 1 << 1, kOverlong3 = 1 << 2,
                           kTooLarge = 1 << 3, kSurrogate = 1 << 4, kOverlong2 = 1 << 5,
                           kTooLarge1000 = 1 << 6, kOverlong4 = 1 << 6, kTwoConts = 1 << 7;
  static constexpr uint8_t kCarry = kTooShort | kTooLong | kTwoConts;
  static constexpr uint8_t kLarge = kCarry | kTooLarge | kTooLarge1000;
  static constexpr uint8_t kCont8 =
      kTooLong | kOverlong2 | kTwoConts | kOverlong3 | kTooLarge1000 | kOverlong4;
  static constexpr uint8_t kCont9 = kTooLong | kOverlong2 | kTwoConts | kOverlong3 | kTooLarge;
  static constexpr uint8_t kContAB = kTooLong | kOverlong2 | kTwoConts | kSurrogate | kTooLarge;
  alignas(64) uint8_t byte1High[64] = {};
  alignas(64) uint8_t byte1Low[64] = {};
  alignas(64) uint8_t byte2High[64] = {};
  constexpr Utf8Tables() {
    const uint8_t high1[16] = {kTooLong,
                               kTooLong,
                               kTooLong,
                               kTooLong,
                               kTooLong,
                               kTooLong,
                               kTooLong,
                               kTooLong,
                               kTwoConts,
                               kTwoConts,
                               kTwoConts,
                               kTwoConts,
                               kTooShort | kOverlong2,
                               kTooShort,
                               kTooShort | kOverlong3 | kSurrogate,
                               kTooShort | kTooLarge | kTooLarge1000 | kOverlong4};
    const uint8_t low1[16] = {kCarry | kOverlong3 | kOverlong2 | kOverlong4,
                              kCarry | kOverlong2,
                              kCarry,
                              kCarry,
                              kCarry | kTooLarge,
                              kLarge,
                              kLarge,
                              kLarge,
                              kLarge,
                              kLarge,
                              kLarge,
                              kLarge,
                              kLarge,
                              kLarge | kSurrogate,
                              kLarge,
                              kLarge};
    const uint8_t high2[16] = {kTooShort, kTooShort, kTooShort, kTooShort, kTooShort, kTooShort,
                               kTooShort, kTooShort, kCont8,    kCont9,    kContAB,   kContAB,
                               kTooShort, kTooShort, kTooShort, kTooShort};
    for (int i = 0; i < 64; ++i) {
      byte1High[i] = high1[i % 16];
      byte1Low[i] = low1[i % 16];
      byte2High[i] = high2[i % 16];
    }
  }
};

// UTF-8 validation of 64 bytes given the 3 bytes before each (prev1..prev3): the bytes where a
// sequence is ill-formed (overlong, surrogate, above U+10FFFF, too short, a stray continuation),
// as Keiser and Lemire's lookup algorithm finds them (simdjson's utf8_lookup4): three nibble
// tables say which errors each pair of bytes could be, and their AND is what it is.
LLMCACHE_WIDE inline uint64_t utf8Errors(__m512i v, __m512i prev1, __m512i prev2, __m512i prev3) {
  static constexpr Utf8Tables kT;
  const __m512i byte1High = _mm512_load_si512(kT.byte1High);
  const __m512i byte1Low = _mm512_load_si512(kT.byte1Low);
  const __m512i byte2High = _mm512_load_si512(kT.byte2High);
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  const __m512i special = _mm512_and_si512(
      _mm512_and_si512(
          _mm512_shuffle_epi8(byte1High, _mm512_and_si512(_mm512_srli_epi16(prev1, 4), nibble)),
          _mm512_shuffle_epi8(byte1Low, _mm512_and_si512(prev1, nibble))),
      _mm512_shuffle_epi8(byte2High, _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble)));
  // The third or fourth byte of a sequence must be a continuation: a 0x80 bit that TWO_CONTS
  // must match.
  const __m512i must23 =
      _mm512_or_si512(_mm512_subs_epu8(prev2, _mm512_set1_epi8(static_cast<char>(0xE0 - 0x80))),
                      _mm512_subs_epu8(prev3, _mm512_set1_epi8(static_cast<char>(0xF0 - 0x80))));
  const __m512i error = _mm512_xor_si512(
      _mm512_and_si512(must23, _mm512_set1_epi8(static_cast<char>(0x80))), special);
  return _mm512_test_epi8_mask(error, error);
}

// scanString with the masks from one 64-byte compare each. A block of ASCII whose escapes are
// all one-letter ones (the usual block: a JSON text inside a JSON string, a canonical text's
// quotes and newlines) is read and written here at once; any other block (non-ASCII, a \u
// escape, an error) goes through scanBlock.
template <bool kWrite>
LLMCACHE_WIDE const char* scanStringWide(const char* from, const char* to, char*& out) {
  const Byte* p = reinterpret_cast<const Byte*>(from);
  const Byte* const end = reinterpret_cast<const Byte*>(to);
  char* o = out;
  struct Table {  // the letters' characters by their low 6 bits: b 0x22, f 0x26, n 0x2E, ...
    alignas(64) char c[64] = {};
    constexpr Table() {
      for (char l : {'b', 'f', 'n', 'r', 't'}) c[l & 63] = kUnescape.c[static_cast<Byte>(l)];
    }
  };
  static constexpr Table kTable;
  for (;;) {
    const __m512i v = _mm512_loadu_si512(p);
    {
      // The 3 bytes before each: before the string's first byte, none (read as ASCII; the
      // masked loads touch nothing there).
      const ptrdiff_t back = p - reinterpret_cast<const Byte*>(from);
      const __mmask64 has1 = back >= 1 ? ~uint64_t{0} : ~below(1 - back);
      const __mmask64 has2 = back >= 2 ? ~uint64_t{0} : ~below(2 - back);
      const __mmask64 has3 = back >= 3 ? ~uint64_t{0} : ~below(3 - back);
      // A block of ASCII has none: a sequence never runs into a block from the one before (a
      // block starts at the lead byte of a sequence that the last one cut, or after it).
      const uint64_t badUtf8 = _mm512_movepi8_mask(v) == 0
                                   ? 0
                                   : utf8Errors(v, _mm512_maskz_loadu_epi8(has1, p - 1),
                                                _mm512_maskz_loadu_epi8(has2, p - 2),
                                                _mm512_maskz_loadu_epi8(has3, p - 3));
      const uint64_t quote = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('"'));
      const uint64_t backslash = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\\'));
      const uint64_t control = _mm512_cmplt_epu8_mask(v, _mm512_set1_epi8(0x20));
      const uint64_t inside = below(end - p);
      const auto [escaped, escapeStarts] = findEscapes(backslash);
      const uint64_t closing = quote & ~escaped & inside;
      const uint64_t str = (closing ? (closing & (0 - closing)) - 1 : ~uint64_t{0}) & inside;
      if (control & str) return nullptr;              // a raw control character
      if (!closing && end - p <= 64) return nullptr;  // unterminated
      // Ill-formed UTF-8 up to the closing quote (which ends a sequence too early when it
      // follows a lead byte); a sequence running into the next block is checked there.
      if (badUtf8 & (closing ? str | (closing & (0 - closing)) : str)) return nullptr;
      uint64_t starts = escapeStarts & str;
      size_t next = 64;
      if (starts >> 63) {  // its letter is in the next block: that block starts at the backslash
        starts &= ~(uint64_t{1} << 63);
        next = 63;
      }
      // A UTF-8 sequence that runs into the next block: that block starts at its lead byte.
      if (const uint64_t cut =
              (_mm512_cmpge_epu8_mask(v, _mm512_set1_epi8(static_cast<char>(0xC0))) &
               (uint64_t{1} << 63)) |
              (_mm512_cmpge_epu8_mask(v, _mm512_set1_epi8(static_cast<char>(0xE0))) &
               (uint64_t{1} << 62)) |
              (_mm512_cmpge_epu8_mask(v, _mm512_set1_epi8(static_cast<char>(0xF0))) &
               (uint64_t{1} << 61));
          cut && !closing)
        next = std::min(next, static_cast<size_t>(__builtin_ctzll(cut)));
      const size_t stop = closing ? static_cast<size_t>(__builtin_ctzll(closing)) : next;
      const uint64_t content = below(static_cast<ptrdiff_t>(stop));
      const uint64_t letters = escaped & content;
      const uint64_t lower = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('b')) |
                             _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('f')) |
                             _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('n')) |
                             _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('r')) |
                             _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('t'));
      const uint64_t same = quote | backslash | _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('/'));
      if (!(letters & ~(lower | same))) {
        if constexpr (kWrite) {
          const __m512i y =
              _mm512_mask_permutexvar_epi8(v, letters & lower, v, _mm512_load_si512(kTable.c));
          const uint64_t keep = content & ~starts;
          _mm512_storeu_si512(o, _mm512_maskz_compress_epi8(keep, y));
          o += _mm_popcnt_u64(keep);
        }
        if (closing) {
          if constexpr (kWrite) out = o;
          return reinterpret_cast<const char*>(p + stop + 1);
        }
        p += next;
        continue;
      }
    }
    bool done = false;
    p = scanBlock<kWrite>(p, end, o, done, masksOfWide(p));
    if (!p) return nullptr;
    if (done) {
      if constexpr (kWrite) out = o;
      return reinterpret_cast<const char*>(p);
    }
  }
}

#endif

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

#if defined(LLMCACHE_WIDE_SIMD)
LLMCACHE_WIDE const char* findStringSpecialWide(const Byte* p, const Byte* end) {
  for (; p < end; p += 64) {
    const __m512i v = _mm512_loadu_si512(p);
    const uint64_t m =
        (_mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('"')) |
         _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\\')) |
         _mm512_cmplt_epu8_mask(v, _mm512_set1_epi8(0x20)) | _mm512_movepi8_mask(v)) &
        below(end - p);
    if (m) return reinterpret_cast<const char*>(p + __builtin_ctzll(m));
  }
  return reinterpret_cast<const char*>(end);
}
#endif

const char* findStringSpecial(const char* from, const char* to) {
#if defined(LLMCACHE_WIDE_SIMD)
  if (gWide)
    return findStringSpecialWide(reinterpret_cast<const Byte*>(from),
                                 reinterpret_cast<const Byte*>(to));
#endif
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
#if defined(LLMCACHE_WIDE_SIMD)
  if (gWide) return scanStringWide<true>(p, end, out);
#endif
  return scanString<true>(p, end, out);
}

const char* skipJsonString(const char* p, const char* end) {
  char* unused = nullptr;
#if defined(LLMCACHE_WIDE_SIMD)
  if (gWide) return scanStringWide<false>(p, end, unused);
#endif
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
#if defined(LLMCACHE_WIDE_SIMD)
  if (gWide) {
    *o++ = '"';
    o = escapePaddedWide(reinterpret_cast<const Byte*>(s.data()),
                         reinterpret_cast<const Byte*>(s.data() + s.size()), o);
    *o++ = '"';
    return o;
  }
#endif
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

#if defined(LLMCACHE_WIDE_SIMD)
namespace {

LLMCACHE_WIDE bool collapseAsciiWideImpl(std::string_view s, bool lower, std::string& out) {
  const size_t start = out.size();
  out.resize(start + s.size() + 64);  // room for a whole block's store
  char* const base = out.data() + start;
  char* o = base;
  const __m512i tab = _mm512_set1_epi8(0x09), cr = _mm512_set1_epi8(0x0D);
  const __m512i fs = _mm512_set1_epi8(0x1C), sp = _mm512_set1_epi8(0x20);
  const __m512i upA = _mm512_set1_epi8('A'), upZ = _mm512_set1_epi8('Z');
  const __m512i to = _mm512_set1_epi8(32);
  uint64_t carry = 1;  // "the byte before was a space": a leading run is dropped whole
  for (size_t at = 0; at < s.size(); at += 64) {
    const size_t n = std::min<size_t>(64, s.size() - at);
    const __mmask64 valid = n == 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1;
    __m512i v = _mm512_maskz_loadu_epi8(valid, s.data() + at);  // never past the string
    if (_mm512_movepi8_mask(v) & valid) {                       // non-ASCII: not this path
      out.resize(start);
      return false;
    }
    const uint64_t ws = (_mm512_cmpge_epu8_mask(v, tab) & _mm512_cmple_epu8_mask(v, cr)) |
                        (_mm512_cmpge_epu8_mask(v, fs) & _mm512_cmple_epu8_mask(v, sp));
    const uint64_t prev = (ws << 1) | carry;
    carry = ws >> 63;
    const uint64_t keep = valid & (~ws | (ws & ~prev));  // words, and each run's first space
    v = _mm512_mask_mov_epi8(v, ws, sp);
    if (lower)
      v = _mm512_mask_add_epi8(v, _mm512_cmpge_epu8_mask(v, upA) & _mm512_cmple_epu8_mask(v, upZ),
                               v, to);
    _mm512_storeu_si512(o, _mm512_maskz_compress_epi8(keep, v));
    o += __builtin_popcountll(keep);
  }
  if (o > base && o[-1] == ' ') --o;  // a trailing run left one space
  out.resize(start + static_cast<size_t>(o - base));
  return true;
}

}  // namespace
#endif

bool collapseAsciiWide(std::string_view s, bool lower, std::string& out) {
#if defined(LLMCACHE_WIDE_SIMD)
  if (gWide) return collapseAsciiWideImpl(s, lower, out);
#endif
  (void)s, (void)lower, (void)out;
  return false;
}

bool useWideSimd(bool on) {
#if defined(LLMCACHE_WIDE_SIMD)
  const bool was = gWide;
  gWide = on && cpuHasWide();
  return was;
#else
  (void)on;
  return false;
#endif
}

}  // namespace llmcache::key
