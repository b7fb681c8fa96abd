// memory_bench: memory per cached entry in the memory tier, beyond the answer's own bytes.
//
// Builds N entries shaped as the gateway stores them (a short chat request, a chat completion
// whose serialized body is ~1 KB, the metadata fields), inserts them into a MemoryTier large
// enough to hold them all, and reports the process's RSS growth per entry minus the answer's
// serialized size. Usage: memory_bench [N=100000] [answer-bytes=1024]
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "cache/memory/memory_tier.h"

using namespace llmcache;
using namespace llmcache::cache;

namespace {

size_t rssBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

std::string hex32(size_t i, char salt) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%c%031zx", salt, i);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100000;
  const size_t answerBytes = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1024;

  // The answer: a chat completion padded to answerBytes when serialized.
  const std::string head =
      R"({"id":"chatcmpl-0000000000","object":"chat.completion","created":1767225600,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":")";
  const std::string tail =
      R"("},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":200,"total_tokens":212}})";
  const size_t fill =
      answerBytes > head.size() + tail.size() ? answerBytes - head.size() - tail.size() : 1;

  MemoryTier tier(MemoryTierOptions{n, size_t{64} << 30, 1});
  malloc_trim(0);
  const size_t before = rssBytes();
  size_t answerTotal = 0;
  for (size_t i = 0; i < n; ++i) {
    std::string text = head + std::string(fill, static_cast<char>('a' + i % 26)) + tail;
    text.replace(text.find("0000000000"), 10, hex32(i, 'c').substr(22));
    auto e = std::make_shared<Entry>();
    e->cacheId = hex32(i, 'a');
    e->cacheKey = "gpt-4o-mini_" + hex32(i, 'b').substr(16);
    e->requestHash = hex32(i, 'c');
    e->endpoint = "openai.chat";
    e->request = R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Question )" +
                 std::to_string(i) + R"("}],"temperature":0})";
    e->response = text;
    answerTotal += text.size();
    e->model = "gpt-4o-mini";
    e->platform = "openai";
    e->tokensInput = 12;
    e->tokensOutput = 200;
    e->costTotal = 0.000123;
    e->responseTimestamp = e->requestTimestamp = e->lastAccessed =
        fromUnixMillis(1767225600000 + i);
    if (!tier.insert(std::move(e))) {
      std::fprintf(stderr, "insert %zu refused\n", i);
      return 1;
    }
  }
  const size_t after = rssBytes();
  const double perEntry = static_cast<double>(after - before) / static_cast<double>(n);
  const double answer = static_cast<double>(answerTotal) / static_cast<double>(n);
  std::printf(
      "entries %zu, answer %.0f B each: RSS +%.1f MB, %.0f B per entry, overhead %.0f B per entry "
      "beyond the answer\n",
      tier.entryCount(), answer, static_cast<double>(after - before) / 1e6, perEntry,
      perEntry - answer);
  return 0;
}
