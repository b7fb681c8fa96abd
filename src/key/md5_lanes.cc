#include "key/md5_lanes.h"

// MD5's one-shot function: deprecated in OpenSSL 3 in favour of EVP, which costs more per
// call (provider dispatch, context reset and cleanse) for the same block function.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/md5.h>

#include <cstdint>
#include <cstring>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LLMCACHE_MD5_LANES 1
#define LLMCACHE_MD5_AVX512 __attribute__((target("avx512f")))
#define LLMCACHE_MD5_AVX2 __attribute__((target("avx2")))
#endif

namespace llmcache::key {

namespace {

using Byte = unsigned char;

void digestHex(const Byte* digest, char* hex) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (unsigned i = 0; i < 16; ++i) {
    hex[2 * i] = kDigits[digest[i] >> 4];
    hex[2 * i + 1] = kDigits[digest[i] & 15];
  }
}

#if defined(LLMCACHE_MD5_LANES)

// RFC 1321's 64 steps: a = b + ((a + fn(b, c, d) + word + constant) <<< s), the four registers
// taking turns. Each kernel defines MD5_STEP and the round functions for its vectors.
#define MD5_64_STEPS                                   \
  MD5_STEP(MD5_F, a, b, c, d, w[0], 0xd76aa478u, 7);   \
  MD5_STEP(MD5_F, d, a, b, c, w[1], 0xe8c7b756u, 12);  \
  MD5_STEP(MD5_F, c, d, a, b, w[2], 0x242070dbu, 17);  \
  MD5_STEP(MD5_F, b, c, d, a, w[3], 0xc1bdceeeu, 22);  \
  MD5_STEP(MD5_F, a, b, c, d, w[4], 0xf57c0fafu, 7);   \
  MD5_STEP(MD5_F, d, a, b, c, w[5], 0x4787c62au, 12);  \
  MD5_STEP(MD5_F, c, d, a, b, w[6], 0xa8304613u, 17);  \
  MD5_STEP(MD5_F, b, c, d, a, w[7], 0xfd469501u, 22);  \
  MD5_STEP(MD5_F, a, b, c, d, w[8], 0x698098d8u, 7);   \
  MD5_STEP(MD5_F, d, a, b, c, w[9], 0x8b44f7afu, 12);  \
  MD5_STEP(MD5_F, c, d, a, b, w[10], 0xffff5bb1u, 17); \
  MD5_STEP(MD5_F, b, c, d, a, w[11], 0x895cd7beu, 22); \
  MD5_STEP(MD5_F, a, b, c, d, w[12], 0x6b901122u, 7);  \
  MD5_STEP(MD5_F, d, a, b, c, w[13], 0xfd987193u, 12); \
  MD5_STEP(MD5_F, c, d, a, b, w[14], 0xa679438eu, 17); \
  MD5_STEP(MD5_F, b, c, d, a, w[15], 0x49b40821u, 22); \
  MD5_STEP(MD5_G, a, b, c, d, w[1], 0xf61e2562u, 5);   \
  MD5_STEP(MD5_G, d, a, b, c, w[6], 0xc040b340u, 9);   \
  MD5_STEP(MD5_G, c, d, a, b, w[11], 0x265e5a51u, 14); \
  MD5_STEP(MD5_G, b, c, d, a, w[0], 0xe9b6c7aau, 20);  \
  MD5_STEP(MD5_G, a, b, c, d, w[5], 0xd62f105du, 5);   \
  MD5_STEP(MD5_G, d, a, b, c, w[10], 0x02441453u, 9);  \
  MD5_STEP(MD5_G, c, d, a, b, w[15], 0xd8a1e681u, 14); \
  MD5_STEP(MD5_G, b, c, d, a, w[4], 0xe7d3fbc8u, 20);  \
  MD5_STEP(MD5_G, a, b, c, d, w[9], 0x21e1cde6u, 5);   \
  MD5_STEP(MD5_G, d, a, b, c, w[14], 0xc33707d6u, 9);  \
  MD5_STEP(MD5_G, c, d, a, b, w[3], 0xf4d50d87u, 14);  \
  MD5_STEP(MD5_G, b, c, d, a, w[8], 0x455a14edu, 20);  \
  MD5_STEP(MD5_G, a, b, c, d, w[13], 0xa9e3e905u, 5);  \
  MD5_STEP(MD5_G, d, a, b, c, w[2], 0xfcefa3f8u, 9);   \
  MD5_STEP(MD5_G, c, d, a, b, w[7], 0x676f02d9u, 14);  \
  MD5_STEP(MD5_G, b, c, d, a, w[12], 0x8d2a4c8au, 20); \
  MD5_STEP(MD5_H, a, b, c, d, w[5], 0xfffa3942u, 4);   \
  MD5_STEP(MD5_H, d, a, b, c, w[8], 0x8771f681u, 11);  \
  MD5_STEP(MD5_H, c, d, a, b, w[11], 0x6d9d6122u, 16); \
  MD5_STEP(MD5_H, b, c, d, a, w[14], 0xfde5380cu, 23); \
  MD5_STEP(MD5_H, a, b, c, d, w[1], 0xa4beea44u, 4);   \
  MD5_STEP(MD5_H, d, a, b, c, w[4], 0x4bdecfa9u, 11);  \
  MD5_STEP(MD5_H, c, d, a, b, w[7], 0xf6bb4b60u, 16);  \
  MD5_STEP(MD5_H, b, c, d, a, w[10], 0xbebfbc70u, 23); \
  MD5_STEP(MD5_H, a, b, c, d, w[13], 0x289b7ec6u, 4);  \
  MD5_STEP(MD5_H, d, a, b, c, w[0], 0xeaa127fau, 11);  \
  MD5_STEP(MD5_H, c, d, a, b, w[3], 0xd4ef3085u, 16);  \
  MD5_STEP(MD5_H, b, c, d, a, w[6], 0x04881d05u, 23);  \
  MD5_STEP(MD5_H, a, b, c, d, w[9], 0xd9d4d039u, 4);   \
  MD5_STEP(MD5_H, d, a, b, c, w[12], 0xe6db99e5u, 11); \
  MD5_STEP(MD5_H, c, d, a, b, w[15], 0x1fa27cf8u, 16); \
  MD5_STEP(MD5_H, b, c, d, a, w[2], 0xc4ac5665u, 23);  \
  MD5_STEP(MD5_I, a, b, c, d, w[0], 0xf4292244u, 6);   \
  MD5_STEP(MD5_I, d, a, b, c, w[7], 0x432aff97u, 10);  \
  MD5_STEP(MD5_I, c, d, a, b, w[14], 0xab9423a7u, 15); \
  MD5_STEP(MD5_I, b, c, d, a, w[5], 0xfc93a039u, 21);  \
  MD5_STEP(MD5_I, a, b, c, d, w[12], 0x655b59c3u, 6);  \
  MD5_STEP(MD5_I, d, a, b, c, w[3], 0x8f0ccc92u, 10);  \
  MD5_STEP(MD5_I, c, d, a, b, w[10], 0xffeff47du, 15); \
  MD5_STEP(MD5_I, b, c, d, a, w[1], 0x85845dd1u, 21);  \
  MD5_STEP(MD5_I, a, b, c, d, w[8], 0x6fa87e4fu, 6);   \
  MD5_STEP(MD5_I, d, a, b, c, w[15], 0xfe2ce6e0u, 10); \
  MD5_STEP(MD5_I, c, d, a, b, w[6], 0xa3014314u, 15);  \
  MD5_STEP(MD5_I, b, c, d, a, w[13], 0x4e0811a1u, 21); \
  MD5_STEP(MD5_I, a, b, c, d, w[4], 0xf7537e82u, 6);   \
  MD5_STEP(MD5_I, d, a, b, c, w[11], 0xbd3af235u, 10); \
  MD5_STEP(MD5_I, c, d, a, b, w[2], 0x2ad7d2bbu, 15);  \
  MD5_STEP(MD5_I, b, c, d, a, w[9], 0xeb86d391u, 21);

// The lanes' states, MD5's A, B, C and D, each as L 32-bit lanes.
template <int L>
struct alignas(64) LaneState {
  uint32_t s[4][L];
};

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_epi32(), which -Wuninitialized
// reports once inlined (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"

// One 64-byte block for each of the 16 lanes (block[l] is lane l's), added to the states.
LLMCACHE_MD5_AVX512 void blocks16(LaneState<16>& st, const Byte* const* block) {
  __m512i r[16], w[16];
  for (int l = 0; l < 16; ++l) r[l] = _mm512_loadu_si512(block[l]);
  // Transpose, so that w[j] holds word j of every lane's block: 32-bit, then 64-bit interleaves
  // (within each 128-bit quarter), then the quarters.
  __m512i t[16], u[16];
  for (int k = 0; k < 16; k += 2) {
    t[k] = _mm512_unpacklo_epi32(r[k], r[k + 1]);
    t[k + 1] = _mm512_unpackhi_epi32(r[k], r[k + 1]);
  }
  for (int g = 0; g < 4; ++g) {  // rows 4g..4g+3
    u[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
  // u[4g + m]'s quarter q: word 4q + m of rows 4g..4g+3.
  for (int m = 0; m < 4; ++m) {
    const __m512i x0 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0x88);
    const __m512i x1 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0xDD);
    const __m512i y0 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0x88);
    const __m512i y1 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0xDD);
    w[m] = _mm512_shuffle_i32x4(x0, y0, 0x88);
    w[8 + m] = _mm512_shuffle_i32x4(x0, y0, 0xDD);
    w[4 + m] = _mm512_shuffle_i32x4(x1, y1, 0x88);
    w[12 + m] = _mm512_shuffle_i32x4(x1, y1, 0xDD);
  }
  const __m512i a0 = _mm512_load_si512(st.s[0]), b0 = _mm512_load_si512(st.s[1]);
  const __m512i c0 = _mm512_load_si512(st.s[2]), d0 = _mm512_load_si512(st.s[3]);
  __m512i a = a0, b = b0, c = c0, d = d0;
#define MD5_F(x, y, z) _mm512_ternarylogic_epi32(x, y, z, 0xCA)  // x ? y : z
#define MD5_G(x, y, z) _mm512_ternarylogic_epi32(z, x, y, 0xCA)  // z ? x : y
#define MD5_H(x, y, z) _mm512_ternarylogic_epi32(x, y, z, 0x96)  // x ^ y ^ z
#define MD5_I(x, y, z) _mm512_ternarylogic_epi32(x, y, z, 0x39)  // y ^ (x | ~z)
#define MD5_STEP(fn, a, b, c, d, x, k, s)                                                   \
  a = _mm512_add_epi32(                                                                     \
      b, _mm512_rol_epi32(                                                                  \
             _mm512_add_epi32(_mm512_add_epi32(a, fn(b, c, d)),                             \
                              _mm512_add_epi32(x, _mm512_set1_epi32(static_cast<int>(k)))), \
             s))
  MD5_64_STEPS;
#undef MD5_F
#undef MD5_G
#undef MD5_H
#undef MD5_I
#undef MD5_STEP
  _mm512_store_si512(st.s[0], _mm512_add_epi32(a, a0));
  _mm512_store_si512(st.s[1], _mm512_add_epi32(b, b0));
  _mm512_store_si512(st.s[2], _mm512_add_epi32(c, c0));
  _mm512_store_si512(st.s[3], _mm512_add_epi32(d, d0));
}

#pragma GCC diagnostic pop

// The same with 8 lanes of AVX2 (no rotate, no three-input logic).
LLMCACHE_MD5_AVX2 void blocks8(LaneState<8>& st, const Byte* const* block) {
  __m256i w[16];
  for (int half = 0; half < 2; ++half) {  // words 0-7, then 8-15
    __m256i r[8], t[8], u[8];
    for (int l = 0; l < 8; ++l)
      r[l] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block[l] + 32 * half));
    for (int k = 0; k < 8; k += 2) {
      t[k] = _mm256_unpacklo_epi32(r[k], r[k + 1]);
      t[k + 1] = _mm256_unpackhi_epi32(r[k], r[k + 1]);
    }
    for (int g = 0; g < 2; ++g) {
      u[4 * g + 0] = _mm256_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
      u[4 * g + 1] = _mm256_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
      u[4 * g + 2] = _mm256_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
      u[4 * g + 3] = _mm256_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    for (int m = 0; m < 4; ++m) {
      w[8 * half + m] = _mm256_permute2x128_si256(u[m], u[4 + m], 0x20);
      w[8 * half + 4 + m] = _mm256_permute2x128_si256(u[m], u[4 + m], 0x31);
    }
  }
  const __m256i a0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(st.s[0]));
  const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(st.s[1]));
  const __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(st.s[2]));
  const __m256i d0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(st.s[3]));
  const __m256i ones = _mm256_set1_epi32(-1);
  __m256i a = a0, b = b0, c = c0, d = d0;
#define MD5_F(x, y, z) _mm256_xor_si256(z, _mm256_and_si256(x, _mm256_xor_si256(y, z)))
#define MD5_G(x, y, z) _mm256_xor_si256(y, _mm256_and_si256(z, _mm256_xor_si256(x, y)))
#define MD5_H(x, y, z) _mm256_xor_si256(_mm256_xor_si256(x, y), z)
#define MD5_I(x, y, z) _mm256_xor_si256(y, _mm256_or_si256(x, _mm256_xor_si256(z, ones)))
#define MD5_STEP(fn, a, b, c, d, x, k, s)                                                 \
  do {                                                                                    \
    const __m256i sum =                                                                   \
        _mm256_add_epi32(_mm256_add_epi32(a, fn(b, c, d)),                                \
                         _mm256_add_epi32(x, _mm256_set1_epi32(static_cast<int>(k))));    \
    a = _mm256_add_epi32(                                                                 \
        b, _mm256_or_si256(_mm256_slli_epi32(sum, s), _mm256_srli_epi32(sum, 32 - (s)))); \
  } while (0)
  MD5_64_STEPS;
#undef MD5_F
#undef MD5_G
#undef MD5_H
#undef MD5_I
#undef MD5_STEP
  _mm256_store_si256(reinterpret_cast<__m256i*>(st.s[0]), _mm256_add_epi32(a, a0));
  _mm256_store_si256(reinterpret_cast<__m256i*>(st.s[1]), _mm256_add_epi32(b, b0));
  _mm256_store_si256(reinterpret_cast<__m256i*>(st.s[2]), _mm256_add_epi32(c, c0));
  _mm256_store_si256(reinterpret_cast<__m256i*>(st.s[3]), _mm256_add_epi32(d, d0));
}

// The lanes' bookkeeping: each lane hashes one text at a time, block after block (its whole
// 64-byte blocks in place, then its last one or two, padded, from tail); a lane that finishes
// writes its digest and takes the next text. Lanes left without a text hash a block of zeros.
template <int L, void (*Blocks)(LaneState<L>&, const Byte* const*)>
void manyLanes(const std::string_view* texts, char* const* hex, size_t n) {
  static constexpr Byte kIdle[64] = {};
  LaneState<L> st;
  alignas(64) Byte tail[L][128];
  const Byte* block[L];
  size_t wholeLeft[L];  // whole blocks of the text left after block[l]
  int tails[L];         // its tail blocks (1 or 2)
  int tailLeft[L];      // tail blocks left after block[l]; -1: the lane is idle
  size_t job[L];
  size_t next = 0, busy = 0;
  auto take = [&](int l) {
    if (next == n) {
      block[l] = kIdle;
      wholeLeft[l] = 0;
      tailLeft[l] = -1;  // idle
      return;
    }
    const size_t j = next++;
    const std::string_view text = texts[j];
    const size_t whole = text.size() / 64, rest = text.size() % 64;
    const int lastBlocks = rest < 56 ? 1 : 2;
    tails[l] = lastBlocks;
    Byte* t = tail[l];
    if (rest) std::memcpy(t, text.data() + 64 * whole, rest);
    t[rest] = 0x80;
    std::memset(t + rest + 1, 0, 64 * static_cast<size_t>(lastBlocks) - rest - 1);
    const uint64_t bits = static_cast<uint64_t>(text.size()) * 8;
    for (int k = 0; k < 8; ++k) t[64 * lastBlocks - 8 + k] = static_cast<Byte>(bits >> (8 * k));
    static constexpr uint32_t kInit[4] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u};
    for (int r = 0; r < 4; ++r) st.s[r][l] = kInit[r];
    job[l] = j;
    ++busy;
    if (whole) {
      block[l] = reinterpret_cast<const Byte*>(text.data());
      wholeLeft[l] = whole - 1;
      tailLeft[l] = lastBlocks;
    } else {
      block[l] = t;
      wholeLeft[l] = 0;
      tailLeft[l] = lastBlocks - 1;
    }
  };
  for (int l = 0; l < L; ++l) take(l);
  while (busy) {
    Blocks(st, block);
    for (int l = 0; l < L; ++l) {
      if (wholeLeft[l]) {
        --wholeLeft[l];
        block[l] += 64;
      } else if (tailLeft[l] > 0) {
        block[l] = tail[l] + 64 * (tails[l] - tailLeft[l]);
        --tailLeft[l];
      } else if (tailLeft[l] == 0) {  // its text is done
        Byte digest[16];
        for (int r = 0; r < 4; ++r)
          for (int k = 0; k < 4; ++k) digest[4 * r + k] = static_cast<Byte>(st.s[r][l] >> (8 * k));
        digestHex(digest, hex[job[l]]);
        --busy;
        take(l);
      }
    }
  }
}

size_t cpuLanes() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return 16;
  if (__builtin_cpu_supports("avx2")) return 8;
  return 1;
}

#else

size_t cpuLanes() { return 1; }

#endif

size_t gLanes = cpuLanes();

}  // namespace

void md5Hex(std::string_view text, char* hex) {
  Byte digest[MD5_DIGEST_LENGTH];
  // MD5 is what the seed's key uses (osbot_utils json_md5); it is an identifier, not a MAC.
  MD5(reinterpret_cast<const Byte*>(text.data()), text.size(), digest);
  digestHex(digest, hex);
}

void md5HexMany(const std::string_view* texts, char* const* hex, size_t n) {
#if defined(LLMCACHE_MD5_LANES)
  // A lone text is as fast one-shot (the lanes' cost is per block, however many are busy).
  if (n > 1 && gLanes == 16) return manyLanes<16, blocks16>(texts, hex, n);
  if (n > 1 && gLanes == 8) return manyLanes<8, blocks8>(texts, hex, n);
#endif
  for (size_t i = 0; i < n; ++i) md5Hex(texts[i], hex[i]);
}

size_t md5Lanes() { return gLanes; }

size_t limitMd5Lanes(size_t lanes) {
  const size_t was = gLanes;
  const size_t cpu = cpuLanes();
  gLanes = lanes >= cpu ? cpu : lanes >= 8 && cpu >= 8 ? 8 : 1;
  return was;
}

}  // namespace llmcache::key
