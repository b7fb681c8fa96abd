// fuzz_make_seeds SRC_DIR OUT_DIR: writes the seed corpora (OUT_DIR/<target>/...) from the
// project's own fixtures, so that they can be regenerated when a format changes:
//   fuzz_key    request bodies of tests/keyspec/vectors.jsonl (one per endpoint and mode)
//   fuzz_codec  encoded entries: plain, zstd, sealed, sealed + zstd (fuzz_codec's key)
//   fuzz_sse    the recorded streams of src/api/stream_fixtures.h
//   fuzz_json   assorted JSON texts and the assembled bodies of those streams
// Each file carries the target's selector prefix (see each fuzz_*.cc).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "api/stream_fixtures.h"
#include "cache/codec.h"
#include "cache/test_entry.h"
#include "common/json.h"

using namespace llmcache;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary | std::ios::trunc) << bytes;
}

std::string prefixed(uint8_t selector, std::string_view rest) {
  return std::string(1, static_cast<char>(selector)) + std::string(rest);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SRC_DIR OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path src = argv[1];
  const fs::path out = argv[2];

  // fuzz_key: the first vector of each (endpoint, normalize) pair, plus one scoped and namespaced.
  {
    const fs::path vectors = src / "tests" / "keyspec" / "vectors.jsonl";
    std::ifstream in(vectors);
    if (!in) {
      std::fprintf(stderr, "cannot read %s\n", vectors.c_str());
      return 1;
    }
    std::map<std::string, int> seen;
    std::string line;
    int scoped = 0;
    while (std::getline(in, line)) {
      auto v = parseJson(line);
      if (!v) continue;
      const std::string endpoint(v->getString("endpoint").value_or(""));
      const std::string mode(v->getString("normalize").value_or(""));
      const bool hasScope = v->find("scope") && !v->find("scope")->isNull();
      const std::string id = endpoint + "-" + mode + (hasScope ? "-scoped" : "");
      if (seen[id]++ > 0 || (hasScope && scoped++ > 0)) continue;
      uint8_t sel = endpoint == "openai.chat"          ? 0
                    : endpoint == "openai.completions" ? 1
                    : endpoint == "openai.embeddings"  ? 2
                                                       : 3;
      sel |= (mode == "whitespace" ? 1 : mode == "exact" ? 2 : 0) << 2;
      if (hasScope) sel |= 0x30;
      write(out / "fuzz_key", id, prefixed(sel, v->getString("request").value_or("")));
    }
  }

  // fuzz_codec: the key fuzz_codec uses is bytes 0..31.
  {
    cache::EncryptionKey key;
    for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<unsigned char>(i);
    cache::Entry e =
        cache::test::makeTestEntry("gpt-4o-mini:0011223344556677", "The answer is 42.");
    e.sseEvents = {{"", "{\"delta\":\"The\"}"}, {"", "[DONE]"}};
    e.cacheId = "0123456789abcdef0123456789abcdef";  // stable seeds
    write(out / "fuzz_codec", "plain", prefixed(0, cache::encodeEntry(e, {})));
    // Selector bit 1 (fix the CRC up) on two of them: their mutants reach past the checksum.
    write(out / "fuzz_codec", "zstd", prefixed(2, cache::encodeEntry(e, {.compress = true})));
    write(out / "fuzz_codec", "sealed", prefixed(1, cache::encodeEntry(e, {.key = key})));
    write(out / "fuzz_codec", "sealed-zstd",
          prefixed(3, cache::encodeEntry(e, {.compress = true, .key = key})));
  }

  // fuzz_sse: selector, 4 chunking-seed bytes, the stream.
  {
    namespace t = api::testing;
    const std::string seed = "\x2a\x11\x07\x99";
    write(out / "fuzz_sse", "openai-chat", prefixed(0, seed + std::string(t::kOpenAiChatStream)));
    write(out / "fuzz_sse", "openai-tool-calls",
          prefixed(0 | 4, seed + std::string(t::kOpenAiToolCallStream)));
    write(out / "fuzz_sse", "openai-completions",
          prefixed(1, seed + std::string(t::kOpenAiCompletionsStream)));
    write(out / "fuzz_sse", "anthropic-tool",
          prefixed(3, seed + std::string(t::kAnthropicToolStream)));
    write(out / "fuzz_sse", "anthropic-thinking",
          prefixed(3, seed + std::string(t::kAnthropicThinkingStream)));
  }

  // fuzz_json.
  {
    namespace t = api::testing;
    write(out / "fuzz_json", "chat-body", std::string(t::kOpenAiChatStreamAssembled));
    write(out / "fuzz_json", "anthropic-body", std::string(t::kAnthropicToolAssembled));
    write(out / "fuzz_json", "numbers",
          R"([0,-0,1e2,1E-7,123456789012345678901234567890,0.1,-1.5e308,3.0])");
    write(out / "fuzz_json", "strings",
          R"({"a":"\u00e9\ud83d\ude00\n\"","b":"","a":null,"c":[true,false,{}]})");
    write(out / "fuzz_json", "nested", R"([[[[[[[[{"k":[[[]]]}]]]]]]]])");
  }
  std::printf("seeds written to %s\n", out.c_str());
  return 0;
}
