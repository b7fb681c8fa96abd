#include "cache/codec.h"

#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include "cache/test_entry.h"

namespace llmcache::cache {
namespace {

using test::makeTestEntry;

Entry sample() {
  Entry e = makeTestEntry("gpt-4o-mini:0011223344556677", "The answer is 42. The answer is 42.");
  e.expiresAt = fromUnixMillis(1767229200000);
  e.sseEvents = {{"", "{\"delta\":\"The\"}"}, {"", "[DONE]"}};
  return e;
}

void expectCorrupt(std::string_view bytes, std::string_view messagePart = {}) {
  auto r = decodeEntry(bytes);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Corrupt);
  if (!messagePart.empty()) {
    EXPECT_NE(r.error().message.find(messagePart), std::string::npos) << r.error().message;
  }
}

// Header fields are little-endian; see docs/entry-format.md.
void putU32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
std::string frame(uint8_t flags, std::string_view payload) {
  std::string s = "LLMC";
  s.push_back(static_cast<char>(kEntryFormatVersion));
  s.push_back(static_cast<char>(flags));
  s.append(10, '\0');
  putU32(s, 8, static_cast<uint32_t>(payload.size()));
  putU32(s, 12,
         static_cast<uint32_t>(
             crc32_z(0, reinterpret_cast<const Bytef*>(payload.data()), payload.size())));
  s += payload;
  return s;
}

TEST(Codec, RoundTripsWithoutCompression) {
  const Entry e = sample();
  const std::string bytes = encodeEntry(e, {});
  EXPECT_EQ(bytes.substr(0, 4), "LLMC");
  EXPECT_EQ(bytes[4], 1);
  EXPECT_EQ(bytes[5], 0);
  // Uncompressed payloads stay readable with standard tools: the JSON follows the header.
  EXPECT_EQ(bytes[kEntryHeaderBytes], '{');
  auto back = decodeEntry(bytes);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, e);
}

TEST(Codec, RoundTripsWithZstd) {
  Entry e = sample();
  e.response.insert(e.response.size() - 1, R"(,"padding":")" + std::string(10000, 'z') + "\"");
  const std::string plain = encodeEntry(e, {});
  const std::string packed = encodeEntry(e, CodecOptions{.compress = true});
  EXPECT_EQ(packed[5] & kFlagZstd, kFlagZstd);
  EXPECT_LT(packed.size() * 5, plain.size());
  auto back = decodeEntry(packed);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, e);
}

TEST(Codec, EveryCompressionLevelDecodes) {
  const Entry e = sample();
  for (int level : {1, 3, 9, 19}) {
    auto back = decodeEntry(encodeEntry(e, CodecOptions{.compress = true, .level = level}));
    ASSERT_TRUE(back) << level;
    EXPECT_EQ(*back, e);
  }
}

TEST(Codec, EveryTruncationIsCorruptNotACrash) {
  for (bool compress : {false, true}) {
    const std::string bytes = encodeEntry(sample(), CodecOptions{.compress = compress});
    for (size_t len = 0; len < bytes.size(); ++len) {
      SCOPED_TRACE("compress=" + std::to_string(compress) + " len=" + std::to_string(len));
      expectCorrupt(std::string_view(bytes).substr(0, len));
    }
  }
}

TEST(Codec, EveryFlippedBitPositionIsCorrupt) {
  for (bool compress : {false, true}) {
    const std::string bytes = encodeEntry(sample(), CodecOptions{.compress = compress});
    for (size_t i = 0; i < bytes.size(); ++i) {
      for (int bit : {0, 7}) {
        std::string bad = bytes;
        bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
        SCOPED_TRACE("compress=" + std::to_string(compress) + " byte=" + std::to_string(i));
        expectCorrupt(bad);
      }
    }
  }
}

TEST(Codec, FlippedPayloadByteFailsTheChecksum) {
  std::string bytes = encodeEntry(sample(), {});
  bytes[bytes.size() / 2] ^= 0x20;
  expectCorrupt(bytes, "checksum");
}

TEST(Codec, WrongMagicIsCorrupt) {
  std::string bytes = encodeEntry(sample(), {});
  bytes[0] = 'X';
  expectCorrupt(bytes, "magic");
}

TEST(Codec, WrongVersionIsCorrupt) {
  std::string bytes = encodeEntry(sample(), {});
  bytes[4] = 2;
  expectCorrupt(bytes, "version 2");
  bytes[4] = 0;
  expectCorrupt(bytes, "version 0");
}

TEST(Codec, EncryptedFlagOnAPlainPayloadIsCorrupt) {
  std::string bytes = encodeEntry(sample(), {});
  bytes[5] = static_cast<char>(kFlagEncrypted);
  expectCorrupt(bytes, "encrypted");
}

// --- Encryption (AES-256-GCM, CACHE_ENCRYPTION) ---

EncryptionKey testKey(unsigned char seed) {
  EncryptionKey k;
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<unsigned char>(seed + 7 * i);
  return k;
}
CodecOptions sealedWith(unsigned char seed, bool compress = false) {
  return CodecOptions{.compress = compress, .key = testKey(seed)};
}
void expectCorruptWith(std::string_view bytes, const CodecOptions& options,
                       std::string_view messagePart = {}) {
  auto r = decodeEntry(bytes, options);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Corrupt);
  if (!messagePart.empty()) {
    EXPECT_NE(r.error().message.find(messagePart), std::string::npos) << r.error().message;
  }
}

TEST(CodecEncryption, RoundTripsEncrypted) {
  const Entry e = sample();
  const std::string bytes = encodeEntry(e, sealedWith(1));
  EXPECT_EQ(bytes.substr(0, 4), "LLMC");
  EXPECT_EQ(bytes[5], static_cast<char>(kFlagEncrypted));
  auto back = decodeEntry(bytes, sealedWith(1));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, e);
}

TEST(CodecEncryption, RoundTripsEncryptedAndCompressed) {
  Entry e = sample();
  e.response.insert(e.response.size() - 1, R"(,"padding":")" + std::string(10000, 'z') + "\"");
  const std::string bytes = encodeEntry(e, sealedWith(1, true));
  EXPECT_EQ(bytes[5], static_cast<char>(kFlagEncrypted | kFlagZstd));
  EXPECT_LT(bytes.size(), 2000u);  // compressed before sealing: ciphertext does not compress
  // The reader's compress setting does not matter.
  auto back = decodeEntry(bytes, sealedWith(1, false));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, e);
}

TEST(CodecEncryption, PayloadIsNonceCiphertextAndTagWithAValidChecksum) {
  const std::string plainJson = toJson(entryToJson(sample()));
  const std::string bytes = encodeEntry(sample(), sealedWith(1));
  EXPECT_EQ(bytes.size(), kEntryHeaderBytes + kNonceBytes + plainJson.size() + kTagBytes);
  const std::string_view payload = std::string_view(bytes).substr(kEntryHeaderBytes);
  uint32_t crc = 0;
  for (int i = 3; i >= 0; --i) crc = (crc << 8) | static_cast<unsigned char>(bytes[12 + i]);
  EXPECT_EQ(crc, static_cast<uint32_t>(
                     crc32_z(0, reinterpret_cast<const Bytef*>(payload.data()), payload.size())));
}

TEST(CodecEncryption, WrongKeyIsCorrupt) {
  for (bool compress : {false, true}) {
    const std::string bytes = encodeEntry(sample(), sealedWith(1, compress));
    expectCorruptWith(bytes, sealedWith(2), "decryption failed");
  }
}

TEST(CodecEncryption, EncryptedEntryWithoutAKeyIsCorrupt) {
  const std::string bytes = encodeEntry(sample(), sealedWith(1));
  expectCorrupt(bytes, "no CACHE_ENCRYPTION_KEY");
  expectCorruptWith(bytes, CodecOptions{.compress = true}, "encrypted");
}

TEST(CodecEncryption, PlainEntryIsCorruptWhenAKeyIsGiven) {
  // With encryption on only sealed entries are served: whoever can write the store cannot
  // plant an answer by writing it unencrypted.
  for (bool compress : {false, true})
    expectCorruptWith(encodeEntry(sample(), CodecOptions{.compress = compress}), sealedWith(1),
                      "not encrypted");
}

TEST(CodecEncryption, EveryFlippedByteIsCorrupt) {
  for (bool compress : {false, true}) {
    const std::string bytes = encodeEntry(sample(), sealedWith(1, compress));
    for (size_t i = 0; i < bytes.size(); ++i) {
      for (int bit : {0, 7}) {
        std::string bad = bytes;
        bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
        SCOPED_TRACE("compress=" + std::to_string(compress) + " byte=" + std::to_string(i));
        expectCorruptWith(bad, sealedWith(1));
      }
    }
  }
}

TEST(CodecEncryption, FlippedCiphertextWithARecomputedChecksumFailsTheTag) {
  std::string bytes = encodeEntry(sample(), sealedWith(1));
  bytes[kEntryHeaderBytes + kNonceBytes + 5] ^= 0x01;
  const std::string_view payload = std::string_view(bytes).substr(kEntryHeaderBytes);
  putU32(bytes, 12,
         static_cast<uint32_t>(
             crc32_z(0, reinterpret_cast<const Bytef*>(payload.data()), payload.size())));
  expectCorruptWith(bytes, sealedWith(1), "decryption failed");
}

TEST(CodecEncryption, HeaderIsAuthenticated) {
  // Clearing the zstd flag (and nothing else) would otherwise hand compressed bytes to the JSON
  // parser; the tag covers the header, so it is refused at decryption.
  std::string bytes = encodeEntry(sample(), sealedWith(1, true));
  bytes[5] = static_cast<char>(kFlagEncrypted);
  expectCorruptWith(bytes, sealedWith(1), "decryption failed");
}

TEST(CodecEncryption, EveryTruncationIsCorrupt) {
  const std::string bytes = encodeEntry(sample(), sealedWith(1, true));
  for (size_t len = 0; len < bytes.size(); ++len) {
    SCOPED_TRACE("len=" + std::to_string(len));
    expectCorruptWith(std::string_view(bytes).substr(0, len), sealedWith(1));
  }
}

TEST(CodecEncryption, SealedPayloadShorterThanNonceAndTagIsCorrupt) {
  expectCorruptWith(frame(kFlagEncrypted, std::string(kNonceBytes + kTagBytes - 1, 'x')),
                    sealedWith(1), "shorter");
  expectCorruptWith(frame(kFlagEncrypted, ""), sealedWith(1), "shorter");
}

TEST(CodecEncryption, TwoEncodingsOfOneEntryUseDifferentNonces) {
  const Entry e = sample();
  const std::string a = encodeEntry(e, sealedWith(1));
  const std::string b = encodeEntry(e, sealedWith(1));
  EXPECT_NE(a.substr(kEntryHeaderBytes, kNonceBytes), b.substr(kEntryHeaderBytes, kNonceBytes));
  EXPECT_NE(a.substr(kEntryHeaderBytes + kNonceBytes), b.substr(kEntryHeaderBytes + kNonceBytes));
}

TEST(CodecEncryption, EncodedBytesHoldNoPlaintextOfThePromptOrTheAnswer) {
  Entry e = makeTestEntry("gpt-4o-mini:0011223344556677", "the secret answer is swordfish");
  e.request =
      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"what is the password"}]})";
  for (bool compress : {false, true}) {
    const std::string bytes = encodeEntry(e, sealedWith(1, compress));
    for (std::string_view needle :
         {"swordfish", "secret answer", "password", "cache_key", "gpt-4o-mini"})
      EXPECT_EQ(bytes.find(needle), std::string::npos) << needle << " compress=" << compress;
  }
}

TEST(Codec, UnknownFlagOrReservedBytesAreCorrupt) {
  std::string bytes = encodeEntry(sample(), {});
  std::string flagged = bytes;
  flagged[5] = static_cast<char>(1 << 5);
  expectCorrupt(flagged, "flags");
  std::string reserved = bytes;
  reserved[7] = 1;
  expectCorrupt(reserved, "reserved");
}

TEST(Codec, HugeDeclaredLengthIsCorruptWithoutAllocating) {
  std::string bytes = encodeEntry(sample(), {});
  putU32(bytes, 8, 0xffffffffu);
  expectCorrupt(bytes, "declared");
}

TEST(Codec, TrailingBytesAreCorrupt) {
  std::string bytes = encodeEntry(sample(), {});
  bytes += "junk";
  expectCorrupt(bytes, "trailing");
}

TEST(Codec, DecompressionBeyondTheLimitIsRefused) {
  // A few kilobytes of zstd that claim more than 64 MiB of JSON, with a valid checksum.
  const std::string zeros(kMaxDecodedPayloadBytes + 1, ' ');
  std::string packed(ZSTD_compressBound(zeros.size()), '\0');
  packed.resize(ZSTD_compress(packed.data(), packed.size(), zeros.data(), zeros.size(), 1));
  ASSERT_LT(packed.size(), 100000u);
  expectCorrupt(frame(kFlagZstd, packed), "limit");
}

TEST(Codec, ZstdFlagOnPlainJsonIsCorrupt) {
  expectCorrupt(frame(kFlagZstd, toJson(entryToJson(sample()))), "zstd");
}

TEST(Codec, ValidFrameAroundBadJsonIsCorrupt) {
  expectCorrupt(frame(0, "{\"cache_key\":"), "JSON");
  expectCorrupt(frame(0, "[1,2,3]"), "object");
  expectCorrupt(frame(0, ""), "JSON");
}

TEST(Codec, ValidFrameAroundAnIncompleteEntryIsCorrupt) {
  Json j = entryToJson(sample());
  j.erase("request_hash");
  expectCorrupt(frame(0, toJson(j)), "request_hash");
}

}  // namespace
}  // namespace llmcache::cache
