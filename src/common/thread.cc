#include "common/thread.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <thread>

namespace llmcache {

namespace {
constexpr int kBackgroundNice = 10;
}

pid_t currentThreadId() { return static_cast<pid_t>(syscall(SYS_gettid)); }

size_t threadSlot() {
  static std::atomic<size_t> next{0};
  thread_local const size_t slot = next.fetch_add(1, std::memory_order_relaxed);
  return slot;
}

void lowerThreadPriority() {
  // On Linux, setpriority() with a thread id applies to that thread alone.
  (void)setpriority(PRIO_PROCESS, static_cast<id_t>(currentThreadId()), kBackgroundNice);
}

bool setIdlePriority(pid_t tid, bool idle) {
  sched_param param{};
  if (sched_setscheduler(tid, idle ? SCHED_IDLE : SCHED_OTHER, &param) != 0) return false;
  if (!idle) (void)setpriority(PRIO_PROCESS, static_cast<id_t>(tid), kBackgroundNice);
  return true;
}

bool isIdlePriority(pid_t tid) { return sched_getscheduler(tid) == SCHED_IDLE; }

bool canLeaveIdlePriority() {
  static const bool can = [] {
    bool ok = false;
    std::thread probe([&ok] {
      const pid_t self = currentThreadId();
      lowerThreadPriority();
      ok = setIdlePriority(self, true) && setIdlePriority(self, false);
    });
    probe.join();
    return ok;
  }();
  return can;
}

}  // namespace llmcache
