// fuzz_codec: decodeEntry on arbitrary bytes, without a key and with one (AES-256-GCM).
//
// Input: byte 0 bit 0 selects the key (bytes 0..31, the key the seed corpus was sealed with);
// bit 1 rewrites the header's length and CRC32 to match the payload before decoding, so that
// mutations get past the checksum into zstd, GCM and the JSON; the rest is the stored entry.
// Properties: decoding never crashes or over-allocates
// (ASan/UBSan and libFuzzer's -rss_limit_mb watch that), and what decodes re-encodes (plain, zstd,
// sealed) to bytes that decode to the same entry.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cache/codec.h"
#include "fuzz_util.h"

using namespace llmcache;
using namespace llmcache::cache;

namespace {

EncryptionKey fuzzKey() {
  EncryptionKey k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<unsigned char>(i);
  return k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  CodecOptions options;
  if (data[0] & 1) options.key = fuzzKey();
  std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((data[0] & 2) && bytes.size() >= kEntryHeaderBytes) {
    const std::string_view payload = std::string_view(bytes).substr(kEntryHeaderBytes);
    const auto crc = static_cast<uint32_t>(
        crc32_z(0, reinterpret_cast<const Bytef*>(payload.data()), payload.size()));
    const auto length = static_cast<uint32_t>(payload.size());
    for (int i = 0; i < 4; ++i) {
      bytes[8 + i] = static_cast<char>((length >> (8 * i)) & 0xff);
      bytes[12 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
    }
  }

  auto entry = decodeEntry(bytes, options);
  if (!entry) {
    FUZZ_CHECK(entry.error().code == Errc::Corrupt);
    return 0;
  }
  for (bool compress : {false, true}) {
    CodecOptions again = options;
    again.compress = compress;
    auto back = decodeEntry(encodeEntry(*entry, again), again);
    FUZZ_CHECK(back);
    FUZZ_CHECK(*back == *entry);
  }
  return 0;
}
