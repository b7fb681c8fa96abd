#pragma once
// request_hash (MD5, as lowercase hex) of one text, or of many texts at once. MD5 is a chain of
// dependent steps, so one text cannot go faster than its block function; many texts can, each
// in a lane of a SIMD register: 16 with AVX-512, 8 with AVX2 (chosen at start-up from the CPU;
// the one-shot OpenSSL MD5() per text otherwise). A lane that finishes its text takes the next
// one, so texts of different lengths waste little. Both forms give the same digests.
#include <cstddef>
#include <string_view>

namespace llmcache::key {

// MD5 of text as 32 lowercase hex digits at hex[0..32) (OpenSSL's one-shot MD5()).
void md5Hex(std::string_view text, char* hex);

// md5Hex(texts[i], hex[i]) for each i < n, in SIMD lanes when the CPU has them. The texts need
// no padding: a lane reads only whole 64-byte blocks inside its text.
void md5HexMany(const std::string_view* texts, char* const* hex, size_t n);

// The lanes md5HexMany uses: 16 (AVX-512), 8 (AVX2) or 1 (none, or turned off).
size_t md5Lanes();

// For tests: caps the lanes md5HexMany may use (16, 8, or 1 for the one-shot form; never more
// than the CPU has); returns the previous cap.
size_t limitMd5Lanes(size_t lanes);

}  // namespace llmcache::key
