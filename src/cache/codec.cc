#include "cache/codec.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <zlib.h>
#include <zstd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

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
  return static_cast<uint32_t>(crc32_z(0L, reinterpret_cast<const Bytef*>(s.data()), s.size()));
}

// The header bytes the GCM tag authenticates: all but the CRC32, which is computed over the
// sealed payload and so cannot be known before sealing (the tag covers that payload anyway).
constexpr size_t kAadBytes = 12;

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

[[noreturn]] void cryptoFailure(const char* what) {
  // Only a broken OpenSSL gets here; writing the entry unencrypted instead is not an option.
  std::fprintf(stderr, "llmcache: entry codec: %s failed\n", what);
  std::abort();
}

const unsigned char* bytesOf(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* bytesOf(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

// nonce || AES-256-GCM(plain) || tag, authenticating aad.
std::string seal(std::string_view plain, std::string_view aad, const EncryptionKey& key) {
  std::string out(kNonceBytes + plain.size() + kTagBytes, '\0');
  unsigned char* nonce = bytesOf(out);
  if (RAND_bytes(nonce, static_cast<int>(kNonceBytes)) != 1) cryptoFailure("RAND_bytes");
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int n = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &n, bytesOf(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nonce + kNonceBytes, &n, bytesOf(plain),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), nonce + kNonceBytes + n, &n) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes),
                          nonce + kNonceBytes + plain.size()) != 1)
    cryptoFailure("AES-256-GCM encryption");
  return out;
}

// The plaintext of seal(), or Corrupt when the tag does not verify (wrong key or any change).
Result<std::string> unseal(std::string_view sealed, std::string_view aad,
                           const EncryptionKey& key) {
  if (sealed.size() < kNonceBytes + kTagBytes)
    return corrupt("encrypted payload shorter than its nonce and tag");
  const std::string_view body = sealed.substr(kNonceBytes, sealed.size() - kNonceBytes - kTagBytes);
  std::string tag(sealed.substr(sealed.size() - kTagBytes));
  std::string plain(body.size(), '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int n = 0;
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), bytesOf(sealed)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &n, bytesOf(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), bytesOf(plain), &n, bytesOf(body),
                        static_cast<int>(body.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes),
                          tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), bytesOf(plain) + n, &n) != 1)
    return corrupt("decryption failed (wrong key, or the entry was altered)");
  return plain;
}

}  // namespace

std::string encodeEntry(const Entry& entry, const CodecOptions& options) {
  std::string json = toJson(entryToJson(entry));
  uint8_t flags = 0;
  std::string payload;
  if (options.compress && json.size() <= kMaxDecodedPayloadBytes) {
    payload.resize(ZSTD_compressBound(json.size()));
    // ZSTD_compress records the content size in the frame header; decodeEntry relies on it.
    size_t n =
        ZSTD_compress(payload.data(), payload.size(), json.data(), json.size(), options.level);
    if (!ZSTD_isError(n)) {
      payload.resize(n);
      flags |= kFlagZstd;
    } else {
      payload.clear();  // cannot happen with a bound-sized buffer; fall back to plain JSON
    }
  }
  if (!(flags & kFlagZstd)) payload = std::move(json);
  if (options.key) flags |= kFlagEncrypted;
  const size_t storedSize = payload.size() + (options.key ? kNonceBytes + kTagBytes : 0);

  std::string out;
  out.reserve(kEntryHeaderBytes + storedSize);
  out.append(kMagic, sizeof kMagic);
  out.push_back(static_cast<char>(kEntryFormatVersion));
  out.push_back(static_cast<char>(flags));
  putU16(out, 0);
  putU32(out, static_cast<uint32_t>(storedSize));
  if (options.key)
    payload = seal(payload, std::string_view(out).substr(0, kAadBytes), *options.key);
  putU32(out, crc32Of(payload));
  out += payload;
  return out;
}

Result<Entry> decodeEntry(std::string_view bytes) { return decodeEntry(bytes, CodecOptions{}); }

Result<Entry> decodeEntry(std::string_view bytes, const CodecOptions& options) {
  if (bytes.size() < kEntryHeaderBytes)
    return corrupt("truncated header (" + std::to_string(bytes.size()) + " bytes)");
  if (bytes.substr(0, 4) != std::string_view(kMagic, 4)) return corrupt("bad magic");
  const auto version = static_cast<uint8_t>(bytes[4]);
  if (version != kEntryFormatVersion)
    return corrupt("unsupported format version " + std::to_string(version));
  const auto flags = static_cast<uint8_t>(bytes[5]);
  if (flags & ~(kFlagZstd | kFlagEncrypted))
    return corrupt("unknown flags " + std::to_string(flags));
  if ((flags & kFlagEncrypted) && !options.key)
    return corrupt("entry is encrypted and no CACHE_ENCRYPTION_KEY is configured");
  if (!(flags & kFlagEncrypted) && options.key)
    return corrupt("entry is not encrypted but CACHE_ENCRYPTION is on");
  if (getU16(bytes, 6) != 0) return corrupt("reserved header bytes are not zero");
  // The declared length is compared, never allocated: a hostile 4 GiB claim costs nothing.
  const uint32_t length = getU32(bytes, 8);
  const std::string_view payload = bytes.substr(kEntryHeaderBytes);
  if (payload.size() != length)
    return corrupt("payload length " + std::to_string(payload.size()) + " != declared " +
                   std::to_string(length) + " (truncated or trailing bytes)");
  if (crc32Of(payload) != getU32(bytes, 12)) return corrupt("checksum mismatch");

  std::string opened;
  std::string_view plain = payload;
  if (flags & kFlagEncrypted) {
    auto r = unseal(payload, bytes.substr(0, kAadBytes), *options.key);
    if (!r) return r.error();
    opened = std::move(*r);
    plain = opened;
  }

  std::string inflated;
  std::string_view json = plain;
  if (flags & kFlagZstd) {
    const unsigned long long size = ZSTD_getFrameContentSize(plain.data(), plain.size());
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN)
      return corrupt("zstd frame has no readable content size");
    if (size > kMaxDecodedPayloadBytes)
      return corrupt("decompressed size " + std::to_string(size) + " exceeds the " +
                     std::to_string(kMaxDecodedPayloadBytes) + "-byte limit");
    inflated.resize(static_cast<size_t>(size));
    const size_t n = ZSTD_decompress(inflated.data(), inflated.size(), plain.data(), plain.size());
    if (ZSTD_isError(n)) return corrupt(std::string("zstd: ") + ZSTD_getErrorName(n));
    if (n != size) return corrupt("zstd frame shorter than its declared content size");
    json = inflated;
  }

  auto parsed = parseJson(json, JsonParseOptions{.maxDepth = kMaxJsonDepth});
  if (!parsed) return corrupt("payload JSON: " + parsed.error().message);
  return entryFromJson(*parsed);
}

}  // namespace llmcache::cache
