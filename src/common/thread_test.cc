#include "common/thread.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <thread>
#include <vector>

namespace llmcache {
namespace {

TEST(ThreadPriority, LowerThreadPriorityAppliesToTheCallingThreadOnly) {
  const int before = getpriority(PRIO_PROCESS, static_cast<id_t>(currentThreadId()));
  int inside = 0;
  std::thread t([&] {
    lowerThreadPriority();
    inside = getpriority(PRIO_PROCESS, static_cast<id_t>(currentThreadId()));
  });
  t.join();
  EXPECT_EQ(inside, 10);
  EXPECT_EQ(getpriority(PRIO_PROCESS, static_cast<id_t>(currentThreadId())), before);
}

TEST(ThreadPriority, AThreadMovesIntoIdlePriorityAndBackWherePermitted) {
  if (!canLeaveIdlePriority())
    GTEST_SKIP() << "this process may not leave SCHED_IDLE (no CAP_SYS_NICE)";
  bool wasIdle = false, isIdleAfter = true;
  int niceAfter = 0;
  std::thread t([&] {
    const pid_t self = currentThreadId();
    ASSERT_TRUE(setIdlePriority(self, true));
    wasIdle = isIdlePriority(self);
    ASSERT_TRUE(setIdlePriority(self, false));
    isIdleAfter = isIdlePriority(self);
    niceAfter = getpriority(PRIO_PROCESS, static_cast<id_t>(self));
  });
  t.join();
  EXPECT_TRUE(wasIdle);
  EXPECT_FALSE(isIdleAfter);
  EXPECT_EQ(niceAfter, 10);  // back to the background level, not to the request threads'
  EXPECT_FALSE(isIdlePriority(currentThreadId()));
}

TEST(ThreadSlot, IsStablePerThreadAndDistinctAcrossThreads) {
  const size_t mine = threadSlot();
  EXPECT_EQ(threadSlot(), mine);
  std::vector<size_t> others(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < others.size(); ++i)
    threads.emplace_back([&others, i] { others[i] = threadSlot(); });
  for (auto& t : threads) t.join();
  std::sort(others.begin(), others.end());
  EXPECT_EQ(std::adjacent_find(others.begin(), others.end()), others.end());  // all distinct
  EXPECT_EQ(std::count(others.begin(), others.end(), mine), 0);
}

}  // namespace
}  // namespace llmcache
