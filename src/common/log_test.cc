#include "common/log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace llmcache {
namespace {

using namespace std::chrono_literals;

// LogLimiter reads the steady clock itself. An hour-long interval stands for "still within the
// interval"; the one test that needs the interval to pass sleeps twice its 50 ms.

TEST(LogLimiter, TheFirstLinePassesWithNothingSuppressed) {
  LogLimiter limiter(1h);
  uint64_t suppressed = 99;
  EXPECT_TRUE(limiter.allow(suppressed));
  EXPECT_EQ(suppressed, 0u);
}

TEST(LogLimiter, LinesWithinTheIntervalAreRefusedAndLeaveTheCountAlone) {
  LogLimiter limiter(1h);
  uint64_t suppressed = 0;
  ASSERT_TRUE(limiter.allow(suppressed));
  for (int i = 0; i < 3; ++i) {
    uint64_t untouched = 42;
    EXPECT_FALSE(limiter.allow(untouched));
    EXPECT_EQ(untouched, 42u);  // only a line that passes is told the count
  }
}

TEST(LogLimiter, TheFirstLineAfterTheIntervalPassesAndReportsHowManyWereRefused) {
  constexpr auto kInterval = 50ms;
  LogLimiter limiter(kInterval);
  uint64_t suppressed = 0;
  ASSERT_TRUE(limiter.allow(suppressed));
  // Counted by what allow() answered, so a slow machine that crossed the interval while
  // calling still agrees with what is reported.
  uint64_t refused = 0;
  for (int i = 0; i < 3; ++i) refused += limiter.allow(suppressed) ? 0 : 1;
  ASSERT_GT(refused, 0u);

  std::this_thread::sleep_for(2 * kInterval);  // the clock is not injectable
  ASSERT_TRUE(limiter.allow(suppressed));
  EXPECT_EQ(suppressed, refused);

  std::this_thread::sleep_for(2 * kInterval);
  ASSERT_TRUE(limiter.allow(suppressed));
  EXPECT_EQ(suppressed, 0u);  // the count started again after it was reported
}

TEST(LogLimiter, ManyThreadsAtOnceGetExactlyOneLinePerInterval) {
  LogLimiter limiter(1h);
  std::atomic<int> allowed{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      while (!go) std::this_thread::yield();
      for (int i = 0; i < 10'000; ++i) {
        uint64_t suppressed = 0;
        if (limiter.allow(suppressed)) ++allowed;
      }
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 1);
}

TEST(LogLimiter, EveryRefusalFromManyThreadsIsReportedExactlyOnce) {
  constexpr auto kInterval = 50ms;
  constexpr uint64_t kThreads = 8, kCalls = 10'000;
  LogLimiter limiter(kInterval);
  std::atomic<uint64_t> allowed{0}, reported{0};
  std::vector<std::thread> threads;
  for (uint64_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (uint64_t i = 0; i < kCalls; ++i) {
        uint64_t suppressed = 0;
        if (limiter.allow(suppressed)) {
          ++allowed;
          reported += suppressed;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  std::this_thread::sleep_for(2 * kInterval);
  uint64_t last = 0;
  ASSERT_TRUE(limiter.allow(last));
  EXPECT_GE(allowed.load(), 1u);
  EXPECT_EQ(allowed + reported + last, kThreads * kCalls);  // refusals: lost none, none twice
}

}  // namespace
}  // namespace llmcache
