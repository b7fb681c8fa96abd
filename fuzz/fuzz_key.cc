// fuzz_key: a request body through parseRequest, validateRequest and computeKey, for every
// endpoint and normalization mode, with and without a scope and a namespace.
//
// Input: byte 0 selects the options (bits 0-1 endpoint, bits 2-3 mode, bit 4 scope, bit 5
// namespace); the rest is the body. Properties: keying is deterministic, and a key has the
// spec's shape (cache_key ends in "_" + the first 16 hex of a 32-hex request_hash).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/request.h"
#include "fuzz_util.h"
#include "key/cache_key.h"

using namespace llmcache;

namespace {

bool isLowerHex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t selector = data[0];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);

  static constexpr key::Endpoint kEndpoints[] = {
      key::Endpoint::OpenAiChat, key::Endpoint::OpenAiCompletions, key::Endpoint::OpenAiEmbeddings,
      key::Endpoint::AnthropicMessages};
  static constexpr key::NormalizeMode kModes[] = {
      key::NormalizeMode::Seed, key::NormalizeMode::Whitespace, key::NormalizeMode::Exact,
      key::NormalizeMode::Seed};
  key::KeyOptions options;
  options.endpoint = kEndpoints[selector & 3];
  options.mode = kModes[(selector >> 2) & 3];
  if (selector & 0x10) options.scope = "0123456789abcdef";
  if (selector & 0x20) options.keyNamespace = "tenant-ns";

  auto request = key::parseRequest(body);
  if (!request) return 0;
  (void)api::validateRequest(options.endpoint, *request);  // the gateway validates, then keys
  auto k = key::computeKey(*request, options);
  auto again = key::computeKey(*request, options);
  FUZZ_CHECK(static_cast<bool>(k) == static_cast<bool>(again));
  if (!k) return 0;
  FUZZ_CHECK(k->cacheKey == again->cacheKey && k->requestHash == again->requestHash &&
             k->canonical == again->canonical);
  FUZZ_CHECK(k->requestHash.size() == 32 && isLowerHex(k->requestHash));
  FUZZ_CHECK(k->cacheKey.size() > 17);
  FUZZ_CHECK(std::string_view(k->cacheKey).substr(k->cacheKey.size() - 17) ==
             "_" + k->requestHash.substr(0, 16));
  return 0;
}
