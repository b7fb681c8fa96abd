// fuzz_sse: SseParser fed arbitrary bytes in arbitrary chunks, then the events through
// streamCompleted, assembleStream, synthesizeStream and fitUsageToRequest for an endpoint.
//
// Input: byte 0 selects the endpoint (bits 0-1) and include_usage (bit 2); bytes 1-4 seed the
// chunking; the rest is the stream. Properties: chunking does not change the events or idle();
// formatSse of the events parses back to the same events; an assembled body re-synthesizes to
// events that assemble without crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "api/sse_parser.h"
#include "api/stream.h"
#include "fuzz_util.h"

using namespace llmcache;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  static constexpr key::Endpoint kEndpoints[] = {
      key::Endpoint::OpenAiChat, key::Endpoint::OpenAiCompletions, key::Endpoint::OpenAiEmbeddings,
      key::Endpoint::AnthropicMessages};
  const key::Endpoint endpoint = kEndpoints[data[0] & 3];
  const bool includeUsage = data[0] & 4;
  uint32_t seed = static_cast<uint32_t>(data[1]) | (static_cast<uint32_t>(data[2]) << 8) |
                  (static_cast<uint32_t>(data[3]) << 16) | (static_cast<uint32_t>(data[4]) << 24);
  const std::string_view stream(reinterpret_cast<const char*>(data + 5), size - 5);

  api::SseParser whole;
  const std::vector<SseEvent> events = whole.feed(stream);

  // The same bytes in chunks of 0..32 bytes (a xorshift on the seed picks each length; it must
  // not start at 0, where it would stay).
  if (seed == 0) seed = 0x9e3779b9u;
  api::SseParser chunked;
  std::vector<SseEvent> pieces;
  for (size_t at = 0; at < stream.size();) {
    seed ^= seed << 13;
    seed ^= seed >> 17;
    seed ^= seed << 5;
    const size_t n = seed % 33;
    for (SseEvent& e : chunked.feed(stream.substr(at, n))) pieces.push_back(std::move(e));
    at += n;
  }
  FUZZ_CHECK(pieces == events);
  FUZZ_CHECK(chunked.idle() == whole.idle());

  api::SseParser reparsed;
  FUZZ_CHECK(reparsed.feed(api::formatSse(events)) == events);
  FUZZ_CHECK(reparsed.idle());

  (void)api::streamCompleted(endpoint, events);
  auto assembled = api::assembleStream(endpoint, events);
  if (!assembled) return 0;
  const std::vector<SseEvent> replay = api::synthesizeStream(endpoint, *assembled);
  (void)api::assembleStream(endpoint, replay);
  (void)api::fitUsageToRequest(endpoint, events, includeUsage, *assembled);
  (void)api::fitUsageToRequest(endpoint, replay, !includeUsage, *assembled);
  return 0;
}
