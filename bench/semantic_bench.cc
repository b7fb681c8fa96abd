// The semantic cache's index (docs/semantic.md, Benchmark): nearest-neighbour look-up latency at
// 100k and 1M vectors, memory per vector, insert cost and recall, and the CPU a shadow look-up
// adds to a miss besides its embeddings call (describing the request: parse + partition key,
// then the index search).
//   build/bench/semantic_bench [--benchmark_filter=...]
// HNSW: M 16, ef_construction 100 (semantic::IndexOptions); ef (search) as the third argument.
// Vectors, in one partition (the worst case: every entry of a cache shares a system prompt and
// model), are either random (data 0: normal, L2-normalized, no clusters: the hard case for HNSW)
// or clustered (data 1: 1,000 random topic centres, each vector its centre plus noise, cosine
// ~0.7 to it: closer to real embeddings, whose prompts gather around topics). Queries are stored
// vectors with noise added (a paraphrase's embedding: the case a semantic hit is for). Recall:
// the share of queries whose nearest found is the true nearest (brute force).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "semantic/request_text.h"
#include "semantic/vector_index.h"

namespace {

using namespace llmcache;

struct Built {
  std::unique_ptr<semantic::VectorIndex> index;
  std::vector<std::vector<float>> queries;  // noisy copies of stored vectors
  std::vector<std::vector<float>> sample;   // the stored vectors they came from (brute force)
  double insertMicros = 0;                  // per vector
  std::vector<float> best;                  // each query's true nearest similarity
  size_t bytes = 0;
};

std::vector<float> randomUnit(std::mt19937& rng, size_t dim) {
  std::normal_distribution<float> d;
  std::vector<float> v(dim);
  for (float& f : v) f = d(rng);
  semantic::normalizeVector(v);
  return v;
}

// Around one of `centres` (cosine ~0.7 to it at dimension 256).
std::vector<float> clustered(std::mt19937& rng, const std::vector<std::vector<float>>& centres) {
  const auto& c = centres[rng() % centres.size()];
  std::normal_distribution<float> d(0, 1.0f / std::sqrt(static_cast<float>(c.size())));
  std::vector<float> v(c.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = c[i] + d(rng);
  semantic::normalizeVector(v);
  return v;
}

// One index per (dimension, size, data), built once per process.
Built& built(size_t dim, size_t n, int data = 0) {
  static std::map<std::tuple<size_t, size_t, int>, Built> cache;
  auto [it, fresh] = cache.try_emplace({dim, n, data});
  Built& b = it->second;
  if (!fresh) return b;
  std::mt19937 rng(42);
  std::vector<std::vector<float>> centres;
  if (data == 1)
    for (int i = 0; i < 1000; ++i) centres.push_back(randomUnit(rng, dim));
  b.index = std::make_unique<semantic::VectorIndex>();
  std::vector<std::vector<float>> kept;  // every 1000th vector: brute force needs them all
  std::vector<std::vector<float>> all;
  const bool keepAll = n <= 200000;
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; ++i) {
    std::vector<float> v = data == 1 ? clustered(rng, centres) : randomUnit(rng, dim);
    (void)b.index->add("p", "k" + std::to_string(i), "h", v);
    if (i % (n / 200) == 0) kept.push_back(v);
    if (keepAll) all.push_back(std::move(v));
  }
  b.insertMicros =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() /
      static_cast<double>(n);
  b.bytes = b.index->memoryBytes();
  std::normal_distribution<float> noise(0, 0.02f);
  for (const auto& v : kept) {
    std::vector<float> q = v;
    for (float& f : q) f += noise(rng);
    semantic::normalizeVector(q);
    b.queries.push_back(std::move(q));
    b.sample.push_back(v);
  }
  // The true nearest by brute force (only where all vectors were kept; at 1M of random data the
  // noisy query's true nearest is its source vector, which the noise keeps far above every
  // random neighbour: cosine ~0.95 against at most ~0.3, or ~0.5 to its cluster's others).
  for (size_t i = 0; i < b.queries.size(); ++i) {
    float best = semantic::cosine(b.queries[i], b.sample[i]);
    if (keepAll)
      for (const auto& v : all) best = std::max(best, semantic::cosine(b.queries[i], v));
    b.best.push_back(best);
  }
  return b;
}

// The share of the queries whose nearest found is the true nearest.
double recallOf(Built& b) {
  size_t right = 0;
  for (size_t i = 0; i < b.queries.size(); ++i) {
    const auto found = b.index->nearest("p", b.queries[i]);
    right += found && std::fabs(found->similarity - b.best[i]) < 1e-4f ? 1 : 0;
  }
  return static_cast<double>(right) / static_cast<double>(b.queries.size());
}

void BM_Nearest(benchmark::State& state) {
  const auto dim = static_cast<size_t>(state.range(0));
  const auto n = static_cast<size_t>(state.range(1));
  Built& b = built(dim, n, static_cast<int>(state.range(3)));
  b.index->setEfSearch(static_cast<size_t>(state.range(2)));
  const double recall = recallOf(b);
  size_t i = 0;
  for (auto _ : state) {
    auto m = b.index->nearest("p", b.queries[i++ % b.queries.size()]);
    benchmark::DoNotOptimize(m);
  }
  state.counters["vectors"] = static_cast<double>(b.index->size());
  state.counters["bytes_per_vector"] = static_cast<double>(b.bytes) / static_cast<double>(n);
  state.counters["insert_us"] = b.insertMicros;
  state.counters["recall"] = recall;
}
BENCHMARK(BM_Nearest)
    ->ArgNames({"dim", "vectors", "ef", "data"})
    ->Args({256, 100000, 64, 0})
    ->Args({256, 100000, 128, 0})
    ->Args({256, 100000, 256, 0})
    ->Args({256, 100000, 64, 1})
    ->Args({256, 100000, 128, 1})
    ->Args({256, 100000, 256, 1})
    ->Args({256, 1000000, 64, 0})
    ->Args({256, 1000000, 128, 0})
    ->Args({256, 1000000, 256, 0})
    ->Args({256, 1000000, 64, 1})
    ->Args({256, 1000000, 128, 1})
    ->Args({256, 1000000, 256, 1})
    ->Unit(benchmark::kMicrosecond);

const std::string kChat = [] {
  std::string system(1200, 'x');
  for (size_t i = 0; i < system.size(); i += 7) system[i] = ' ';
  return R"({"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"system","content":")" +
         system +
         R"("},{"role":"user","content":"what is the capital city of france and how many people live there today"}]})";
}();

// What a shadow look-up (or a served look-up) adds to a miss on the gateway's CPU, besides the
// embeddings call: parse the body, blank the embedded text and key it (the partition), then
// search an index of 100k vectors of dimension 256.
void BM_ShadowLookupOnMiss(benchmark::State& state) {
  Built& b = built(256, 100000);
  const key::KeyOptions opts{};
  size_t i = 0;
  for (auto _ : state) {
    auto parsed = parseJson(kChat);
    auto described = semantic::describeRequest(*parsed, opts);
    benchmark::DoNotOptimize(described);
    auto m = b.index->nearest("p", b.queries[i++ % b.queries.size()]);
    benchmark::DoNotOptimize(m);
  }
}
BENCHMARK(BM_ShadowLookupOnMiss)->Unit(benchmark::kMicrosecond);

void BM_DescribeRequest(benchmark::State& state) {
  const key::KeyOptions opts{};
  for (auto _ : state) {
    auto parsed = parseJson(kChat);
    auto described = semantic::describeRequest(*parsed, opts);
    benchmark::DoNotOptimize(described);
  }
}
BENCHMARK(BM_DescribeRequest)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
