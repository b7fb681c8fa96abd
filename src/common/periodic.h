#pragma once
// PeriodicTask: one background loop, as CacheLib's PeriodicWorker: a name, an interval and a
// work() function run on its own thread every interval (first run after one interval, or at
// once with runAtStart). stop() (also the destructor) wakes the thread and joins it; a stop
// requested while work() runs takes effect when it returns. Every periodic job of the server
// is one of these, listed in docs/architecture.md's thread table.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace llmcache {

struct PeriodicOptions {
  std::string name;  // the thread's name (at most 15 characters are kept)
  std::chrono::milliseconds interval{1000};
  bool runAtStart = false;  // run work() once before the first wait
  bool lowPriority = true;  // nice 10: yields the CPU to the request threads
};

class PeriodicTask {
 public:
  PeriodicTask(PeriodicOptions options, std::function<void()> work);
  ~PeriodicTask();
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

  void stop();
  uint64_t runs() const;  // completed work() calls

 private:
  void loop();

  PeriodicOptions options_;
  std::function<void()> work_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  uint64_t runs_ = 0;
  std::thread thread_;
};

}  // namespace llmcache
