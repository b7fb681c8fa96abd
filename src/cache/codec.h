#pragma once
// The entry's stored form on disk and in S3 bodies (docs/entry-format.md): a 16-byte header
// with magic, format version, flags, payload length and CRC32, then the entry's compact JSON,
// optionally zstd-compressed, optionally sealed with AES-256-GCM.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cache/entry.h"
#include "common/result.h"

namespace llmcache::cache {

inline constexpr uint8_t kEntryFormatVersion = 1;
inline constexpr size_t kEntryHeaderBytes = 16;
// Decoding never inflates a payload beyond this: a 40-byte zstd frame may claim gigabytes.
inline constexpr size_t kMaxDecodedPayloadBytes = size_t{64} << 20;

// Header flag bits. Unknown bits make an entry unreadable (Corrupt), so a newer writer's entry
// is a miss here, never misread.
inline constexpr uint8_t kFlagZstd = 1u << 0;
inline constexpr uint8_t kFlagEncrypted = 1u << 1;  // AES-256-GCM (CACHE_ENCRYPTION)

// An encrypted payload is nonce || ciphertext || tag.
inline constexpr size_t kEncryptionKeyBytes = 32;
inline constexpr size_t kNonceBytes = 12;
inline constexpr size_t kTagBytes = 16;
using EncryptionKey = std::array<unsigned char, kEncryptionKeyBytes>;

struct CodecOptions {
  bool compress = false;  // CACHE_COMPRESSION
  int level = 3;          // zstd level; 3 is zstd's own default speed/ratio balance
  // CACHE_ENCRYPTION: the AES-256 key. Set: encodeEntry seals every entry, and decodeEntry reads
  // only sealed entries (a plain one is Corrupt: with encryption on, what is served must have
  // passed the tag, so nobody who can write the store can plant an answer).
  std::optional<EncryptionKey> key = std::nullopt;
};

// The stored bytes of entry. Never fails (encryption failing means OpenSSL itself is broken:
// that aborts rather than write plaintext). A JSON payload larger than kMaxDecodedPayloadBytes
// is stored uncompressed even when compress is set, so that decodeEntry never refuses what this
// wrote. With a key each call draws a fresh random 12-byte nonce.
std::string encodeEntry(const Entry& entry, const CodecOptions& options);

// The entry in bytes. Every failure (truncated, wrong magic or version, unknown flags, bad
// length or checksum, undecompressable, too large, bad JSON, bad fields) is Errc::Corrupt with
// a message naming the check. Never crashes or over-allocates on hostile input: allocation is
// bounded by bytes.size() and kMaxDecodedPayloadBytes.
// options.key: the key to open sealed entries with. An encrypted entry without a key, with
// another key, or with any byte changed is Corrupt; so is an unencrypted entry when a key is
// given. options.compress and level do not matter here: both forms are always read.
Result<Entry> decodeEntry(std::string_view bytes, const CodecOptions& options);
// decodeEntry(bytes, {}): for stores written without encryption.
Result<Entry> decodeEntry(std::string_view bytes);

}  // namespace llmcache::cache
