// The analytics events path, per event: EventRecorder::record on a request thread, and the
// background writer's cost (Index::appendEvents of 1,000-row batches, what EventRecorder writes).
// Events look like memory hits of a 1.5 KB chat request (bench/compare_nginx.sh's workload).
//   build/bench/events_bench
#include <benchmark/benchmark.h>

#include <filesystem>

#include "analytics/recorder.h"
#include "index/index.h"

namespace {

using namespace llmcache;

analytics::Event hitEvent(int i) {
  analytics::Event e;
  e.time = Clock::system().now();
  e.cacheKey = "gpt-4o-mini:" + std::string(60, 'a') + std::to_string(i % 10);
  e.model = "gpt-4o-mini";
  e.platform = "openai";
  e.provider = "openai";
  e.endpoint = "openai.chat";
  e.outcome = analytics::Outcome::Hit;
  e.tier = "memory";
  e.latencyMs = 0.03;
  e.tokensIn = 400;
  e.tokensOut = 30;
  e.costSaved = 0.00012;
  e.latencySavedMs = 850;
  e.callerHash = std::string(32, 'c');
  e.promptCategory = "other";
  e.promptSimhash = 0x1234567890abcdefull;
  e.promptPreview = std::string(120, 'p');
  return e;
}

std::filesystem::path freshDir(const char* name) {
  const auto dir = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Index::appendEvents, 1,000 rows per call (one transaction): the writer thread's work.
void BM_AppendEvents(benchmark::State& state) {
  const auto dir = freshDir("llmcache_events_bench");
  {
    auto index = index::Index::open(dir / "index.sqlite").value();
    std::vector<index::EventRow> rows(1000);
    for (size_t i = 0; i < rows.size(); ++i) {
      const analytics::Event e = hitEvent(static_cast<int>(i));
      index::EventRow& r = rows[i];
      r.timeMs = toUnixMillis(e.time);
      r.cacheKey = e.cacheKey;
      r.model = e.model;
      r.platform = e.platform;
      r.provider = e.provider;
      r.endpoint = e.endpoint;
      r.outcome = analytics::outcomeName(e.outcome);
      r.tier = e.tier;
      r.latencyMs = e.latencyMs;
      r.tokensIn = e.tokensIn;
      r.tokensOut = e.tokensOut;
      r.costSaved = e.costSaved;
      r.latencySavedMs = e.latencySavedMs;
      r.callerHash = e.callerHash;
      r.promptCategory = e.promptCategory;
      r.promptSimhash = e.promptSimhash;
    }
    for (auto _ : state) {
      auto r = index->appendEvents(rows);
      if (!r) state.SkipWithError(r.error().message.c_str());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(rows.size()));
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_AppendEvents)->Unit(benchmark::kMicrosecond);

// EventRecorder::record: what a request thread pays per event (copying it into a queue slot).
// The queue is written out, untimed, every 50,000 events, so none is dropped.
void BM_Record(benchmark::State& state) {
  const auto dir = freshDir("llmcache_events_bench_record");
  {
    auto index = index::Index::open(dir / "index.sqlite").value();
    analytics::EventRecorder recorder(
        *index,
        {.flushInterval = std::chrono::hours(1), .batch = 1'000'000, .maxQueued = 1'000'000});
    const analytics::Event e = hitEvent(1);
    int64_t n = 0;
    for (auto _ : state) {
      recorder.record(e);
      if (++n % 50'000 == 0) {
        state.PauseTiming();
        (void)recorder.flush();
        state.ResumeTiming();
      }
    }
    state.SetItemsProcessed(state.iterations());
    if (recorder.dropped() > 0) state.SkipWithError("events were dropped");
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_Record);

}  // namespace

BENCHMARK_MAIN();
