#include "common/periodic.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>

namespace llmcache {
namespace {

using namespace std::chrono_literals;

// PeriodicTask sleeps on the steady clock (a condition variable's wait_for), so these tests use
// real time: short intervals where work must happen, an hour where it must not, and waits on a
// condition with a generous deadline instead of fixed sleeps.
constexpr auto kDeadline = 5s;

// Counts work() calls; a test waits until the count reaches what it expects.
class Counter {
 public:
  void bump() {
    {
      std::lock_guard lock(mutex_);
      ++count_;
    }
    cv_.notify_all();
  }
  bool waitFor(int n) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, kDeadline, [&] { return count_ >= n; });
  }
  int count() const {
    std::lock_guard lock(mutex_);
    return count_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  int count_ = 0;
};

PeriodicOptions every(std::chrono::milliseconds interval, bool runAtStart = false) {
  return PeriodicOptions{.name = "periodic-test", .interval = interval, .runAtStart = runAtStart};
}

TEST(PeriodicTask, RunsItsWorkEveryInterval) {
  Counter calls;
  PeriodicTask task(every(5ms), [&] { calls.bump(); });
  EXPECT_TRUE(calls.waitFor(3));
  task.stop();
  EXPECT_GE(task.runs(), 3u);
  EXPECT_EQ(task.runs(), static_cast<uint64_t>(calls.count()));
}

TEST(PeriodicTask, RunAtStartRunsOnceAtOnceThenWaitsForTheInterval) {
  Counter calls;
  PeriodicTask task(every(1h, /*runAtStart=*/true), [&] { calls.bump(); });
  ASSERT_TRUE(calls.waitFor(1));  // an hour early: only runAtStart could have run it
  task.stop();
  EXPECT_EQ(calls.count(), 1);
  EXPECT_EQ(task.runs(), 1u);
}

TEST(PeriodicTask, WithoutRunAtStartNothingRunsBeforeTheFirstInterval) {
  Counter calls;
  PeriodicTask task(every(1h), [&] { calls.bump(); });
  task.stop();
  EXPECT_EQ(calls.count(), 0);
  EXPECT_EQ(task.runs(), 0u);
}

TEST(PeriodicTask, StopReturnsPromptlyWhileWaitingOutALongInterval) {
  PeriodicTask task(every(1h), [] {});
  const auto start = std::chrono::steady_clock::now();
  task.stop();
  // Returning at all is the point (a missed wake-up would wait an hour); the bound is generous.
  EXPECT_LT(std::chrono::steady_clock::now() - start, kDeadline);
}

TEST(PeriodicTask, TheDestructorStopsPromptlyWhileWaitingOutALongInterval) {
  const auto start = std::chrono::steady_clock::now();
  {
    PeriodicTask task(every(1h), [] {});
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, kDeadline);
}

TEST(PeriodicTask, AStopDuringWorkWaitsForWorkToReturn) {
  std::promise<void> started, release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> workReturned{false};
  PeriodicTask task(every(1h, /*runAtStart=*/true), [&] {
    started.set_value();
    released.wait();
    workReturned = true;
  });
  ASSERT_EQ(started.get_future().wait_for(kDeadline), std::future_status::ready);

  auto stopped = std::async(std::launch::async, [&] {
    task.stop();
    return workReturned.load();  // what stop() saw when it returned
  });
  // work() is still blocked: stop() must not have returned. (A short look: a stop() that did
  // not wait would return at once.)
  EXPECT_EQ(stopped.wait_for(50ms), std::future_status::timeout);
  EXPECT_EQ(task.runs(), 0u);  // runs() counts completed calls only

  release.set_value();
  ASSERT_EQ(stopped.wait_for(kDeadline), std::future_status::ready);
  EXPECT_TRUE(stopped.get());
  EXPECT_EQ(task.runs(), 1u);  // the run in progress completed; no other began after the stop
}

TEST(PeriodicTask, StoppingTwiceIsHarmless) {
  Counter calls;
  PeriodicTask task(every(1h, /*runAtStart=*/true), [&] { calls.bump(); });
  ASSERT_TRUE(calls.waitFor(1));
  task.stop();
  task.stop();  // and the destructor stops a third time
  EXPECT_EQ(task.runs(), 1u);
}

}  // namespace
}  // namespace llmcache
