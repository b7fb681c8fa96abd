// What the gateway spends per miss on the prompt's analytics (category and signature), on the
// request thread: classifyPrompt and promptSignature of the benchmark body's 1.4 KB prompt.
#include <benchmark/benchmark.h>

#include <string>

#include "analytics/prompt.h"

namespace {

using namespace llmcache::analytics;

// The prompt of bench/gateway_bench.sh's body.
std::string prompt() {
  std::string s;
  while (s.size() < 1400) s += "The quick brown fox jumps over the lazy dog. ";
  return s.substr(0, 1400);
}

void BM_ClassifyPrompt(benchmark::State& state) {
  const std::string text = prompt();
  for (auto _ : state) benchmark::DoNotOptimize(classifyPrompt(text));
}
BENCHMARK(BM_ClassifyPrompt);

void BM_PromptSignature(benchmark::State& state) {
  const std::string text = prompt();
  for (auto _ : state) benchmark::DoNotOptimize(promptSignature(text));
}
BENCHMARK(BM_PromptSignature);

}  // namespace

BENCHMARK_MAIN();
