#include "cache/codec.h"

#include <zlib.h>
#include <zstd.h>

namespace llmcache::cache {
namespace {

constexpr char kMagic[4] = {'L', 'L', 'M', 'C'};
// Nesting allowance for the stored JSON: the request and response sit one level below the
// entry object, and their own depth was bounded when they were parsed from the wire.
constexpr size_t kMaxJsonDepth = 256;

Error corrupt(std::string message) {
  return makeError(Errc::Corrupt, "entry format: " + std::move(message));
}

void putU16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>(v >> 8));
}
void putU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t getU32(std::string_view s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}
uint16_t getU16(std::string_view s, size_t at) {
  return static_cast<uint16_t>(static_cast<unsigned char>(s[at]) |
                               (static_cast<unsigned char>(s[at + 1]) << 8));
}

uint32_t crc32Of(std::string_view s) {
  return static_cast<uint32_t>(
      crc32_z(0L, reinterpret_cast<const Bytef*>(s.data()), s.size()));
}

}  // namespace

std::string encodeEntry(const Entry& entry, const CodecOptions& options) {
  std::string json = toJson(entryToJson(entry));
  uint8_t flags = 0;
  std::string payload;
  if (options.compress && json.size() <= kMaxDecodedPayloadBytes) {
    payload.resize(ZSTD_compressBound(json.size()));
    // ZSTD_compress records the content size in the frame header; decodeEntry relies on it.
    size_t n = ZSTD_compress(payload.data(), payload.size(), json.data(), json.size(), options.level);
    if (!ZSTD_isError(n)) {
      payload.resize(n);
      flags |= kFlagZstd;
    } else {
      payload.clear();  // cannot happen with a bound-sized buffer; fall back to plain JSON
    }
  }
  if (!(flags & kFlagZstd)) payload = std::move(json);

  std::string out;
  out.reserve(kEntryHeaderBytes + payload.size());
  out.append(kMagic, sizeof kMagic);
  out.push_back(static_cast<char>(kEntryFormatVersion));
  out.push_back(static_cast<char>(flags));
  putU16(out, 0);
  putU32(out, static_cast<uint32_t>(payload.size()));
  putU32(out, crc32Of(payload));
  out += payload;
  return out;
}

Result<Entry> decodeEntry(std::string_view bytes) {
  if (bytes.size() < kEntryHeaderBytes)
    return corrupt("truncated header (" + std::to_string(bytes.size()) + " bytes)");
  if (bytes.substr(0, 4) != std::string_view(kMagic, 4)) return corrupt("bad magic");
  const auto version = static_cast<uint8_t>(bytes[4]);
  if (version != kEntryFormatVersion)
    return corrupt("unsupported format version " + std::to_string(version));
  const auto flags = static_cast<uint8_t>(bytes[5]);
  if (flags & kFlagEncrypted) return corrupt("entry is encrypted; this build cannot decrypt");
  if (flags & ~kFlagZstd) return corrupt("unknown flags " + std::to_string(flags));
  if (getU16(bytes, 6) != 0) return corrupt("reserved header bytes are not zero");
  // The declared length is compared, never allocated: a hostile 4 GiB claim costs nothing.
  const uint32_t length = getU32(bytes, 8);
  const std::string_view payload = bytes.substr(kEntryHeaderBytes);
  if (payload.size() != length)
    return corrupt("payload length " + std::to_string(payload.size()) + " != declared " +
                   std::to_string(length) + " (truncated or trailing bytes)");
  if (crc32Of(payload) != getU32(bytes, 12)) return corrupt("checksum mismatch");

  std::string inflated;
  std::string_view json = payload;
  if (flags & kFlagZstd) {
    const unsigned long long size = ZSTD_getFrameContentSize(payload.data(), payload.size());
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN)
      return corrupt("zstd frame has no readable content size");
    if (size > kMaxDecodedPayloadBytes)
      return corrupt("decompressed size " + std::to_string(size) + " exceeds the " +
                     std::to_string(kMaxDecodedPayloadBytes) + "-byte limit");
    inflated.resize(static_cast<size_t>(size));
    const size_t n = ZSTD_decompress(inflated.data(), inflated.size(), payload.data(), payload.size());
    if (ZSTD_isError(n)) return corrupt(std::string("zstd: ") + ZSTD_getErrorName(n));
    if (n != size) return corrupt("zstd frame shorter than its declared content size");
    json = inflated;
  }

  auto parsed = parseJson(json, JsonParseOptions{.maxDepth = kMaxJsonDepth});
  if (!parsed) return corrupt("payload JSON: " + parsed.error().message);
  return entryFromJson(*parsed);
}

}  // namespace llmcache::cache
