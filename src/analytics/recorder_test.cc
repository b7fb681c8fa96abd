#include "analytics/recorder.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "common/thread.h"
#include "index/test_util.h"

namespace llmcache::analytics {
namespace {

using namespace std::chrono_literals;

int64_t countEvents(index::Index& index, std::string_view where = "1=1") {
  int64_t n = -1;
  auto r =
      index.query("SELECT COUNT(*) FROM events WHERE " + std::string(where), {},
                  [&](const std::vector<index::SqlValue>& row) { n = std::get<int64_t>(row[0]); });
  EXPECT_TRUE(r);
  return n;
}

Event at(const FakeClock& clock, std::chrono::milliseconds ago, std::string key = "k") {
  Event e;
  e.time = clock.now() - ago;
  e.cacheKey = std::move(key);
  e.model = "gpt-4o";
  e.outcome = Outcome::Miss;
  return e;
}

// Waits for a condition the recorder's own thread brings about (a real thread cannot be driven
// by the fake clock; at idle priority it may wait for a free core); fails after 30 s rather than
// hanging.
template <class F>
bool eventually(F f) {
  for (auto deadline = std::chrono::steady_clock::now() + 30s;
       std::chrono::steady_clock::now() < deadline;) {
    if (f()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return f();
}

class RecorderTest : public ::testing::Test {
 protected:
  index::test::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<index::Index> index_ = index::Index::open(dir_.path() / "index.sqlite").value();
};

TEST_F(RecorderTest, AFullBatchIsWrittenByTheBackgroundThreadWithoutAFlush) {
  std::mutex m;
  std::vector<std::pair<size_t, std::thread::id>> batches;
  EventRecorder recorder(*index_, {.flushInterval = std::chrono::hours(1),
                                   .batch = 10,
                                   .clock = &clock_,
                                   .onBatchWritten = [&](size_t n) {
                                     std::lock_guard l(m);
                                     batches.emplace_back(n, std::this_thread::get_id());
                                   }});
  for (int i = 0; i < 9; ++i) recorder.record(at(clock_, 0ms));
  EXPECT_EQ(countEvents(*index_), 0);  // record() itself never writes
  recorder.record(at(clock_, 0ms));    // the tenth wakes the writer
  ASSERT_TRUE(eventually([&] { return recorder.written() == 10; }));
  EXPECT_EQ(countEvents(*index_), 10);
  std::lock_guard l(m);
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].first, 10u);
  EXPECT_NE(batches[0].second, std::this_thread::get_id());  // off the recording thread
}

TEST_F(RecorderTest, FlushWritesEverythingQueuedInBatchesOfTheConfiguredSize) {
  std::vector<size_t> sizes;
  std::mutex m;
  EventRecorder recorder(*index_, {.flushInterval = std::chrono::hours(1),
                                   .batch = 1'000'000,
                                   .clock = &clock_,
                                   .onBatchWritten = [&](size_t n) {
                                     std::lock_guard l(m);
                                     sizes.push_back(n);
                                   }});
  for (int i = 0; i < 25; ++i) recorder.record(at(clock_, 0ms));
  ASSERT_TRUE(recorder.flush());
  EXPECT_EQ(countEvents(*index_), 25);
  EXPECT_EQ(recorder.queued(), 0u);
  EXPECT_EQ(recorder.written(), 25u);
  std::lock_guard l(m);
  EXPECT_EQ(sizes, (std::vector<size_t>{25}));
}

TEST_F(RecorderTest, ALargeQueueIsSplitIntoBatchTransactions) {
  std::vector<size_t> sizes;
  std::mutex m;
  // 25 events with batch = 10: the writer and flush() write them in transactions of at most 10
  // rows.
  EventRecorder recorder(*index_, {.flushInterval = std::chrono::hours(1),
                                   .batch = 10,
                                   .clock = &clock_,
                                   .onBatchWritten = [&](size_t n) {
                                     std::lock_guard l(m);
                                     sizes.push_back(n);
                                   }});
  for (int i = 0; i < 25; ++i) recorder.record(at(clock_, 0ms));
  ASSERT_TRUE(recorder.flush());
  EXPECT_EQ(countEvents(*index_), 25);
  std::lock_guard l(m);
  size_t total = 0;
  for (size_t n : sizes) {
    EXPECT_LE(n, 10u);
    total += n;
  }
  EXPECT_EQ(total, 25u);
  EXPECT_GE(sizes.size(), 3u);
}

TEST_F(RecorderTest, TheIntervalWritesAPartialBatch) {
  EventRecorder recorder(*index_, {.flushInterval = 20ms, .batch = 1000, .clock = &clock_});
  recorder.record(at(clock_, 0ms));
  ASSERT_TRUE(eventually([&] { return recorder.written() == 1; }));
  EXPECT_EQ(countEvents(*index_), 1);
}

TEST_F(RecorderTest, EventsOlderThanTheRetentionArePurged) {
  EventRecorder recorder(*index_, {.flushInterval = std::chrono::hours(1),
                                   .batch = 1000,
                                   .retentionDays = 30,
                                   .clock = &clock_});
  recorder.record(at(clock_, std::chrono::hours(24 * 31), "old"));
  recorder.record(at(clock_, std::chrono::hours(24 * 29), "recent"));
  recorder.record(at(clock_, 0ms, "now"));
  ASSERT_TRUE(recorder.flush());
  EXPECT_EQ(recorder.purge().value(), 1u);
  EXPECT_EQ(countEvents(*index_), 2);
  EXPECT_EQ(countEvents(*index_, "cache_key = 'old'"), 0);
  clock_.advance(std::chrono::hours(24 * 2));  // "recent" is now 31 days old
  EXPECT_EQ(recorder.purge().value(), 1u);
  EXPECT_EQ(countEvents(*index_, "cache_key = 'recent'"), 0);
}

TEST_F(RecorderTest, TheWriterPurgesOnItsOwn) {
  {
    EventRecorder seed(*index_, {.retentionDays = 0, .clock = &clock_});
    seed.record(at(clock_, std::chrono::hours(24 * 40), "old"));
    ASSERT_TRUE(seed.flush());
  }
  ASSERT_EQ(countEvents(*index_), 1);
  EventRecorder recorder(
      *index_, {.flushInterval = 10ms, .batch = 1000, .retentionDays = 30, .clock = &clock_});
  ASSERT_TRUE(eventually([&] { return countEvents(*index_) == 0; }));
}

TEST_F(RecorderTest, AFullQueueDropsAndCounts) {
  EventRecorder recorder(
      *index_,
      {.flushInterval = std::chrono::hours(1), .batch = 1000, .maxQueued = 3, .clock = &clock_});
  for (int i = 0; i < 5; ++i) recorder.record(at(clock_, 0ms));
  EXPECT_EQ(recorder.dropped(), 2u);
  ASSERT_TRUE(recorder.flush());
  EXPECT_EQ(countEvents(*index_), 3);
}

TEST_F(RecorderTest, DestroyingTheRecorderWritesWhatIsQueued) {
  {
    EventRecorder recorder(
        *index_, {.flushInterval = std::chrono::hours(1), .batch = 1000, .clock = &clock_});
    for (int i = 0; i < 7; ++i) recorder.record(at(clock_, 0ms));
  }
  EXPECT_EQ(countEvents(*index_), 7);
}

TEST_F(RecorderTest, EveryFieldIsStored) {
  EventRecorder recorder(*index_, {.clock = &clock_});
  Event e = at(clock_, 0ms, "gpt-4o:abc");
  e.platform = "openrouter";
  e.provider = "openai";
  e.endpoint = "openai.chat";
  e.outcome = Outcome::Hit;
  e.tier = "disk";
  e.latencyMs = 1.25;
  e.tokensIn = 11;
  e.tokensOut = 22;
  e.cost = 0;
  e.costSaved = 0.5;
  e.latencySavedMs = 900;
  e.callerHash = "c0ffee";
  e.promptCategory = "code";
  e.promptSimhash = 99;
  e.tenant = "acme";
  e.keyNamespace = "faq";
  e.seedHash = 0xF00000000000000Full;  // the high bit: a negative INTEGER, read back exact
  e.semantic = true;
  recorder.record(e);
  ASSERT_TRUE(recorder.flush());
  std::vector<index::SqlValue> row;
  ASSERT_TRUE(
      index_->query("SELECT time, cache_key, model, platform, provider, endpoint, outcome, tier, "
                    "latency_ms, tokens_in, "
                    "tokens_out, cost, cost_saved, latency_saved_ms, caller_hash, prompt_category, "
                    "prompt_simhash, tenant, namespace, seed_hash, semantic FROM events",
                    {}, [&](const std::vector<index::SqlValue>& r) { row = r; }));
  ASSERT_EQ(row.size(), 21u);
  EXPECT_EQ(std::get<int64_t>(row[0]), toUnixMillis(clock_.now()));
  EXPECT_EQ(std::get<std::string>(row[1]), "gpt-4o:abc");
  EXPECT_EQ(std::get<std::string>(row[3]), "openrouter");
  EXPECT_EQ(std::get<std::string>(row[4]), "openai");
  EXPECT_EQ(std::get<std::string>(row[5]), "openai.chat");
  EXPECT_EQ(std::get<std::string>(row[6]), "HIT");
  EXPECT_EQ(std::get<std::string>(row[7]), "disk");
  EXPECT_EQ(std::get<double>(row[8]), 1.25);
  EXPECT_EQ(std::get<int64_t>(row[9]), 11);
  EXPECT_EQ(std::get<int64_t>(row[10]), 22);
  EXPECT_EQ(std::get<double>(row[12]), 0.5);
  EXPECT_EQ(std::get<int64_t>(row[13]), 900);
  EXPECT_EQ(std::get<std::string>(row[14]), "c0ffee");
  EXPECT_EQ(std::get<std::string>(row[15]), "code");
  EXPECT_EQ(std::get<int64_t>(row[16]), 99);
  EXPECT_EQ(std::get<std::string>(row[17]), "acme");
  EXPECT_EQ(std::get<std::string>(row[18]), "faq");
  EXPECT_EQ(static_cast<uint64_t>(std::get<int64_t>(row[19])), 0xF00000000000000Full);
  EXPECT_EQ(std::get<int64_t>(row[20]), 1);  // semantic

  // An event without a seed hash (0: unknown) stores NULL; one not served by similarity, 0.
  Event unknown = at(clock_, 0ms, "gpt-4o:def");
  recorder.record(unknown);
  ASSERT_TRUE(recorder.flush());
  bool isNull = false;
  int64_t semantic = -1;
  ASSERT_TRUE(
      index_->query("SELECT seed_hash IS NULL, semantic FROM events WHERE cache_key = 'gpt-4o:def'",
                    {}, [&](const std::vector<index::SqlValue>& r) {
                      isNull = std::get<int64_t>(r[0]) == 1;
                      semantic = std::get<int64_t>(r[1]);
                    }));
  EXPECT_TRUE(isNull);
  EXPECT_EQ(semantic, 0);
}

Event hit(const FakeClock& clock, std::chrono::milliseconds ago, std::string caller = "u1") {
  Event e = at(clock, ago);
  e.outcome = Outcome::Hit;
  e.tier = "memory";
  e.callerHash = std::move(caller);
  e.latencyMs = 0.5;
  e.tokensIn = 10;
  e.tokensOut = 20;
  e.costSaved = 0.25;
  e.latencySavedMs = 700;
  e.promptSimhash = 7;
  return e;
}

std::vector<std::vector<index::SqlValue>> eventRows(index::Index& index, std::string_view columns,
                                                    std::string_view where = "1=1") {
  std::vector<std::vector<index::SqlValue>> rows;
  EXPECT_TRUE(index.query("SELECT " + std::string(columns) + " FROM events WHERE " +
                              std::string(where) + " ORDER BY id",
                          {}, [&](const std::vector<index::SqlValue>& r) { rows.push_back(r); }));
  return rows;
}

TEST_F(RecorderTest, HitsOnOneKeyByOneCallerWithinASecondAreOneRowWithTheirTotals) {
  clock_.advance(999ms);  // the clock starts on a whole second: now - 0..999 ms is one second
  EventRecorder recorder(*index_, {.flushInterval = std::chrono::hours(1), .clock = &clock_});
  for (int i = 0; i < 5; ++i)
    recorder.record(hit(clock_, std::chrono::milliseconds(900 - i * 200)));
  recorder.record(hit(clock_, 1000ms));     // the second before: its own row
  recorder.record(hit(clock_, 0ms, "u2"));  // another caller
  Event disk = hit(clock_, 0ms);
  disk.tier = "disk";  // another tier
  recorder.record(disk);
  Event otherPrompt = hit(clock_, 0ms);
  otherPrompt.promptSimhash.reset();  // another prompt signature
  recorder.record(otherPrompt);
  Event otherSeed = hit(clock_, 0ms);
  otherSeed.seedHash = 12;  // another seed hash
  recorder.record(otherSeed);
  Event miss = hit(clock_, 0ms);
  miss.outcome = Outcome::Miss;  // not a hit: one row per request, always
  recorder.record(miss);
  recorder.record(miss);
  Event longHit = hit(clock_, 0ms);
  longHit.model = std::string(400, 'm');  // strings beyond the inline buffer merge the same way
  recorder.record(longHit);
  recorder.record(longHit);
  ASSERT_TRUE(recorder.flush());
  EXPECT_EQ(recorder.written(), 14u);  // events, not rows

  const auto rows =
      eventRows(*index_,
                "outcome, caller_hash, tier, requests, time, latency_ms, tokens_in, "
                "tokens_out, cost_saved, latency_saved_ms, prompt_simhash IS NULL, length(model)");
  ASSERT_EQ(rows.size(), 9u);
  int64_t requests = 0;
  for (const auto& r : rows) requests += std::get<int64_t>(r[3]);
  EXPECT_EQ(requests, 14);
  const int64_t now = toUnixMillis(clock_.now());
  // The five: one row with the first one's time and their totals.
  const auto five = std::find_if(rows.begin(), rows.end(),
                                 [](const auto& r) { return std::get<int64_t>(r[3]) == 5; });
  ASSERT_NE(five, rows.end());
  const auto& f = *five;
  EXPECT_EQ(std::get<std::string>(f[0]), "HIT");
  EXPECT_EQ(std::get<std::string>(f[1]), "u1");
  EXPECT_EQ(std::get<std::string>(f[2]), "memory");
  EXPECT_EQ(std::get<int64_t>(f[4]), now - 900);
  EXPECT_DOUBLE_EQ(std::get<double>(f[5]), 2.5);
  EXPECT_EQ(std::get<int64_t>(f[6]), 50);
  EXPECT_EQ(std::get<int64_t>(f[7]), 100);
  EXPECT_DOUBLE_EQ(std::get<double>(f[8]), 1.25);
  EXPECT_EQ(std::get<int64_t>(f[9]), 3500);
  EXPECT_EQ(std::get<int64_t>(f[11]), 6);  // "gpt-4o"
  int misses = 0, longRows = 0;
  for (const auto& r : rows) {
    if (std::get<std::string>(r[0]) == "MISS") {
      ++misses;
      EXPECT_EQ(std::get<int64_t>(r[3]), 1);
    }
    if (std::get<int64_t>(r[11]) == 400) {
      ++longRows;
      EXPECT_EQ(std::get<int64_t>(r[3]), 2);
    }
  }
  EXPECT_EQ(misses, 2);
  EXPECT_EQ(longRows, 1);
}

TEST_F(RecorderTest, SemanticHitsMergeOnlyWithSemanticHits) {
  clock_.advance(999ms);  // the clock starts on a whole second: now - 0..999 ms is one second
  EventRecorder recorder(*index_, {.flushInterval = std::chrono::hours(1), .clock = &clock_});
  // One second, one key, one caller: three exact hits and two served by similarity.
  for (int i = 0; i < 5; ++i) {
    Event e = hit(clock_, std::chrono::milliseconds(900 - i * 200));
    e.semantic = i % 2 == 1;
    recorder.record(e);
  }
  ASSERT_TRUE(recorder.flush());
  const auto rows = eventRows(*index_, "semantic, requests, cost_saved");
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& r : rows) {
    const bool semantic = std::get<int64_t>(r[0]) == 1;
    EXPECT_EQ(std::get<int64_t>(r[1]), semantic ? 2 : 3);
    EXPECT_DOUBLE_EQ(std::get<double>(r[2]), semantic ? 0.5 : 0.75);
  }
  EXPECT_NE(std::get<int64_t>(rows[0][0]), std::get<int64_t>(rows[1][0]));
}

TEST_F(RecorderTest, HitsMergeWithinABatchAndTheirTotalsSurviveBatchBoundaries) {
  EventRecorder recorder(*index_,
                         {.flushInterval = std::chrono::hours(1), .batch = 3, .clock = &clock_});
  for (int i = 0; i < 7; ++i) recorder.record(hit(clock_, 0ms));
  ASSERT_TRUE(recorder.flush());
  const auto rows = eventRows(*index_, "requests, cost_saved");
  ASSERT_EQ(rows.size(), 3u);  // 3 + 3 + 1
  int64_t requests = 0;
  double saved = 0;
  for (const auto& r : rows) {
    requests += std::get<int64_t>(r[0]);
    saved += std::get<double>(r[1]);
  }
  EXPECT_EQ(requests, 7);
  EXPECT_DOUBLE_EQ(saved, 7 * 0.25);
}

TEST_F(RecorderTest, EventsFromManyThreadsAreAllWrittenAndTheirHitsMergeAcrossThreads) {
  // Each recording thread has its own shard of the queue; the writer takes them all, in time
  // order: four threads' hits on one key within one second are one row with the earliest time.
  clock_.advance(999ms);
  EventRecorder recorder(
      *index_, {.flushInterval = std::chrono::hours(1), .batch = 100'000, .clock = &clock_});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 250; ++i) {
        recorder.record(hit(clock_, std::chrono::milliseconds(
                                        100 + t * 200 + i % 100)));  // 100-799 ms ago: one second
        recorder.record(at(clock_, 0ms, "miss-" + std::to_string(t) + "-" + std::to_string(i)));
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(recorder.queued(), 2000u);
  ASSERT_TRUE(recorder.flush());
  EXPECT_EQ(recorder.written(), 2000u);
  EXPECT_EQ(countEvents(*index_, "outcome = 'MISS'"), 1000);
  const auto rows = eventRows(*index_, "requests, time", "outcome = 'HIT'");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(std::get<int64_t>(rows[0][0]), 1000);
  EXPECT_EQ(std::get<int64_t>(rows[0][1]),
            toUnixMillis(clock_.now()) - (100 + 3 * 200 + 99));  // the earliest
}

TEST_F(RecorderTest, EventsWhoseStringsDoNotFitInlineAreStoredWhole) {
  // Queued events keep their strings in a fixed inline buffer or, when longer, in one heap
  // block: both must come back whole, each event with its own text, across reused slots.
  EventRecorder recorder(*index_,
                         {.flushInterval = std::chrono::hours(1), .batch = 4, .clock = &clock_});
  const std::string longModel = "vendor/" + std::string(500, 'm');
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 6; ++i) {
      Event e = at(clock_, 0ms, "key-" + std::to_string(round) + "-" + std::to_string(i));
      e.model = i % 2 ? longModel : "short";
      e.callerHash = std::string(static_cast<size_t>(i) * 40, 'c');
      e.promptSimhash = static_cast<uint64_t>(round * 10 + i);
      e.promptPreview = std::string(120, 'p');
      recorder.record(e);
    }
    ASSERT_TRUE(recorder.flush());
  }
  EXPECT_EQ(countEvents(*index_), 18);
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 6; ++i) {
      const std::string where =
          "cache_key = 'key-" + std::to_string(round) + "-" + std::to_string(i) +
          "' AND model = '" + (i % 2 ? longModel : std::string("short")) + "' AND caller_hash = '" +
          std::string(static_cast<size_t>(i) * 40, 'c') +
          "' AND outcome = 'MISS' AND prompt_simhash = " + std::to_string(round * 10 + i);
      EXPECT_EQ(countEvents(*index_, where), 1) << where;
    }
  }
}

TEST_F(RecorderTest, AQueueSpanningSeveralChunksKeepsEveryEventAcrossReuse) {
  // 600 events fill three chunks of queue slots; the second round reuses (and trims) them.
  EventRecorder recorder(
      *index_, {.flushInterval = std::chrono::hours(1), .batch = 100'000, .clock = &clock_});
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 600; ++i)
      recorder.record(at(clock_, 0ms, "r" + std::to_string(round) + "-" + std::to_string(i)));
    EXPECT_EQ(recorder.queued(), 600u);
    ASSERT_TRUE(recorder.flush());
  }
  EXPECT_EQ(countEvents(*index_), 1200);
  EXPECT_EQ(countEvents(*index_,
                        "cache_key IN ('r0-0', 'r0-255', 'r0-256', 'r0-599', 'r1-0', 'r1-511', "
                        "'r1-512', 'r1-599')"),
            8);
}

TEST_F(RecorderTest, TheWriterWritesAtIdlePriorityAndIsRaisedWhenItFallsBehind) {
  if (!canLeaveIdlePriority())
    GTEST_SKIP() << "this process may not leave SCHED_IDLE (no CAP_SYS_NICE)";
  std::mutex m;
  std::vector<bool> idleWhileWriting;
  EventRecorder recorder(*index_, {.flushInterval = std::chrono::hours(1),
                                   .batch = 10,
                                   .clock = &clock_,
                                   .idleWhenCaughtUp = true,
                                   .raiseAt = 25,
                                   .onBatchWritten = [&](size_t) {
                                     std::lock_guard l(m);
                                     idleWhileWriting.push_back(isIdlePriority(currentThreadId()));
                                   }});
  EXPECT_FALSE(recorder.raised());
  for (int i = 0; i < 10; ++i) recorder.record(at(clock_, 0ms));  // wakes the writer: caught up
  ASSERT_TRUE(eventually([&] { return recorder.written() == 10; }));
  {
    std::lock_guard l(m);
    ASSERT_EQ(idleWhileWriting.size(), 1u);
    EXPECT_TRUE(idleWhileWriting[0]);  // its SQLite work took idle CPU only
  }
  // Between batches the writer is back at nice 10 (it may take the queue's mutex then).
  EXPECT_FALSE(isIdlePriority(currentThreadId()));
  ASSERT_TRUE(eventually([&] { return recorder.queued() == 0; }));
  EXPECT_FALSE(recorder.raised());
}

TEST_F(RecorderTest, AWriterThatFallsBehindIsRaisedUntilItHasCaughtUp) {
  if (!canLeaveIdlePriority())
    GTEST_SKIP() << "this process may not leave SCHED_IDLE (no CAP_SYS_NICE)";
  EventRecorder recorder(*index_, {.flushInterval = std::chrono::hours(1),
                                   .batch = 1'000'000,  // the writer is not woken by a batch here
                                   .clock = &clock_,
                                   .idleWhenCaughtUp = true,
                                   .raiseAt = 50});
  for (int i = 0; i < 49; ++i) recorder.record(at(clock_, 0ms));
  EXPECT_FALSE(recorder.raised());
  recorder.record(at(clock_, 0ms));  // the 50th waiting event raises it
  EXPECT_TRUE(recorder.raised());
  ASSERT_TRUE(recorder.flush());
  EXPECT_EQ(countEvents(*index_), 50);
}

TEST_F(RecorderTest, WithoutIdleWhenCaughtUpTheWriterIsNeverRaisedNorIdle) {
  std::vector<bool> idleWhileWriting;
  EventRecorder recorder(*index_, {.flushInterval = std::chrono::hours(1),
                                   .batch = 5,
                                   .clock = &clock_,
                                   .raiseAt = 2,
                                   .onBatchWritten = [&](size_t) {
                                     idleWhileWriting.push_back(isIdlePriority(currentThreadId()));
                                   }});
  for (int i = 0; i < 5; ++i) recorder.record(at(clock_, 0ms));
  ASSERT_TRUE(eventually([&] { return recorder.written() == 5; }));
  EXPECT_FALSE(recorder.raised());
  ASSERT_EQ(idleWhileWriting.size(), 1u);
  EXPECT_FALSE(idleWhileWriting[0]);
}

}  // namespace
}  // namespace llmcache::analytics
