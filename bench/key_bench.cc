// Key generation speed: the key spec vectors' requests, and a 1.5 KB and a 20 KB chat request,
// each three ways:
//   Key...      the gateway's path: parseRequest (a Json) then computeKey
//   Builder...  KeyBuilder on the body text (what `llmcache key` does per line)
//   Md5...      the floor: OpenSSL's MD5 (EVP, context reused) alone over the same canonical
//               texts, which every key has to hash
//   build/bench/key_bench [--keyspec DIR]   (reads DIR/vectors.jsonl; default: the project's copy,
//   tests/keyspec, run from the repository root; LLMCACHE_KEYSPEC_DIR, when set, is the default)
#include <benchmark/benchmark.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "key/cache_key.h"
#include "key/json_text.h"
#include "key/text_buffer.h"

namespace {

using namespace llmcache;

std::string g_keyspec = "tests/keyspec";

struct VectorCase {
  std::string body;
  key::KeyOptions options;
  std::string canonical;
};

std::vector<VectorCase> loadVectors() {
  std::vector<VectorCase> out;
  std::ifstream in(g_keyspec + "/vectors.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto row = parseJson(line);
    if (!row || row->find("error")) continue;
    VectorCase c;
    c.body = std::string(*row->getString("request"));
    c.options.endpoint = *key::parseEndpoint(*row->getString("endpoint"));
    c.options.mode = *key::parseNormalizeMode(*row->getString("normalize"));
    if (auto s = row->getString("scope")) c.options.scope = std::string(*s);
    if (auto n = row->getString("namespace")) c.options.keyNamespace = std::string(*n);
    c.canonical = std::string(*row->getString("canonical"));
    out.push_back(std::move(c));
  }
  return out;
}

// A chat request of about `bytes` bytes: a system prompt, a few turns, tools, some options.
std::string chatRequest(size_t bytes) {
  std::string text;
  const char* words[] = {"The ",  "quick ", "Brown ", "fox ",   "jumps ", "over ", "the ",
                         "lazy ", "dog; ",  "Café ",  "naïve ", "data, ", "\n"};
  size_t i = 0;
  while (text.size() + 300 < bytes) text += words[i++ % 13];
  std::string escaped;
  for (char c : text) escaped += c == '\n' ? std::string("\\n") : std::string(1, c);
  const size_t third = escaped.size() / 3;
  return R"({"model":"openai/gpt-4o-mini","temperature":0.7,"max_tokens":512,"messages":[)"
         R"({"role":"system","content":")" +
         escaped.substr(0, third) +
         R"("},)"
         R"({"role":"user","content":")" +
         escaped.substr(third, third) +
         R"("},)"
         R"({"role":"assistant","content":")" +
         escaped.substr(2 * third) +
         R"("}],)"
         R"("tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],"stream":true})";
}

void BM_KeyOfSharedVectors(benchmark::State& state) {
  static const std::vector<VectorCase> cases = loadVectors();
  if (cases.empty()) {
    state.SkipWithError("no vectors found (pass --keyspec DIR)");
    return;
  }
  size_t i = 0, bytes = 0;
  for (auto _ : state) {
    const VectorCase& c = cases[i++ % cases.size()];
    auto req = key::parseRequest(c.body);
    auto k = key::computeKey(*req, c.options);
    benchmark::DoNotOptimize(k);
    bytes += c.body.size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.SetLabel(std::to_string(cases.size()) + " requests");
}
BENCHMARK(BM_KeyOfSharedVectors);

void BM_KeyOfChatRequest(benchmark::State& state) {
  const std::string body = chatRequest(static_cast<size_t>(state.range(0)));
  key::KeyOptions opts;
  for (auto _ : state) {
    auto req = key::parseRequest(body);
    auto k = key::computeKey(*req, opts);
    benchmark::DoNotOptimize(k);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
  state.SetLabel(std::to_string(body.size()) + " B body");
}
BENCHMARK(BM_KeyOfChatRequest)->Arg(1536)->Arg(20480);

void BM_BuilderOfSharedVectors(benchmark::State& state) {
  static const std::vector<VectorCase> cases = loadVectors();
  if (cases.empty()) {
    state.SkipWithError("no vectors found (pass --keyspec DIR)");
    return;
  }
  key::KeyBuilder builder;
  size_t i = 0, bytes = 0;
  for (auto _ : state) {
    const VectorCase& c = cases[i++ % cases.size()];
    auto k = builder.key(c.body, c.options);
    benchmark::DoNotOptimize(k);
    bytes += c.body.size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.SetLabel(std::to_string(cases.size()) + " requests");
}
BENCHMARK(BM_BuilderOfSharedVectors);

void BM_BuilderOfChatRequest(benchmark::State& state) {
  const std::string body = chatRequest(static_cast<size_t>(state.range(0)));
  key::KeyOptions opts;
  key::KeyBuilder builder;
  size_t canonical = 0;
  for (auto _ : state) {
    auto k = builder.key(body, opts);
    canonical = k->canonical.size();
    benchmark::DoNotOptimize(k);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
  state.SetLabel(std::to_string(body.size()) + " B body, " + std::to_string(canonical) +
                 " B canonical");
}
BENCHMARK(BM_BuilderOfChatRequest)->Arg(1536)->Arg(20480);

// MD5 as computeKey does it: EVP, the MD fetched once, one context reused.
struct Md5 {
  EVP_MD* md = EVP_MD_fetch(nullptr, "MD5", nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Md5() {
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
  }
  void hash(const std::string& text, unsigned char* digest) {
    unsigned int len = 0;
    EVP_DigestInit_ex(ctx, md, nullptr);
    EVP_DigestUpdate(ctx, text.data(), text.size());
    EVP_DigestFinal_ex(ctx, digest, &len);
  }
};

void BM_Md5OfSharedVectorsCanonical(benchmark::State& state) {
  static const std::vector<VectorCase> cases = loadVectors();
  if (cases.empty()) {
    state.SkipWithError("no vectors found (pass --keyspec DIR)");
    return;
  }
  Md5 md5;
  unsigned char digest[EVP_MAX_MD_SIZE];
  size_t i = 0, bytes = 0;
  for (auto _ : state) {
    const VectorCase& c = cases[i++ % cases.size()];
    md5.hash(c.canonical, digest);
    benchmark::DoNotOptimize(digest);
    bytes += c.canonical.size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.SetLabel(std::to_string(cases.size()) + " canonical texts");
}
BENCHMARK(BM_Md5OfSharedVectorsCanonical);

void BM_Md5OfChatRequestCanonical(benchmark::State& state) {
  const std::string body = chatRequest(static_cast<size_t>(state.range(0)));
  const std::string canonical = key::computeKey(*key::parseRequest(body), {})->canonical;
  Md5 md5;
  unsigned char digest[EVP_MAX_MD_SIZE];
  for (auto _ : state) {
    md5.hash(canonical, digest);
    benchmark::DoNotOptimize(digest);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * canonical.size()));
  state.SetLabel(std::to_string(canonical.size()) + " B canonical");
}
BENCHMARK(BM_Md5OfChatRequestCanonical)->Arg(1536)->Arg(20480);

// The --jsonl output's escaping of the vectors' canonical texts (json.dumps of a string with
// ensure_ascii): Arg 1 with the AVX-512 form (when the CPU has it), 0 without.
void BM_EscapeOfSharedVectorsCanonical(benchmark::State& state) {
  static const std::vector<VectorCase> cases = loadVectors();
  if (cases.empty()) {
    state.SkipWithError("no vectors found (pass --keyspec DIR)");
    return;
  }
  std::vector<key::TextBuffer> padded(cases.size());
  for (size_t k = 0; k < cases.size(); ++k) {
    padded[k].append(cases[k].canonical);
    padded[k].room(key::kPadding);
  }
  const bool was = key::useWideSimd(state.range(0) != 0);
  key::TextBuffer out;
  size_t i = 0, bytes = 0;
  for (auto _ : state) {
    const key::TextBuffer& in = padded[i++ % padded.size()];
    out.clear();
    key::appendPaddedPythonString(in.view(), out);
    benchmark::DoNotOptimize(out.data());
    bytes += in.size();
  }
  key::useWideSimd(was);
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_EscapeOfSharedVectorsCanonical)->Arg(0)->Arg(1);

}  // namespace

int main(int argc, char** argv) {
  if (const char* d = std::getenv("LLMCACHE_KEYSPEC_DIR"); d && *d) g_keyspec = d;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--keyspec") == 0) g_keyspec = argv[i + 1];
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
