// fuzz_json: parseJson on arbitrary bytes; what parses must print (toJson) to a text that parses
// to an equal value and prints identically (the writer is a fixed point after one round).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/json.h"
#include "fuzz_util.h"

using namespace llmcache;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = parseJson(text);
  if (!parsed) return 0;
  const std::string printed = toJson(*parsed);
  auto back = parseJson(printed);
  FUZZ_CHECK(back);
  FUZZ_CHECK(*back == *parsed);
  FUZZ_CHECK(toJson(*back) == printed);
  return 0;
}
