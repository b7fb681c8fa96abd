#include "common/periodic.h"

#include <pthread.h>

#include "common/thread.h"

namespace llmcache {

PeriodicTask::PeriodicTask(PeriodicOptions options, std::function<void()> work)
    : options_(std::move(options)), work_(std::move(work)), thread_([this] { loop(); }) {}

PeriodicTask::~PeriodicTask() { stop(); }

void PeriodicTask::stop() {
  {
    // Under the mutex, so the loop cannot miss the wake-up between its check and its wait.
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

uint64_t PeriodicTask::runs() const {
  std::lock_guard lock(mutex_);
  return runs_;
}

void PeriodicTask::loop() {
  pthread_setname_np(pthread_self(), options_.name.substr(0, 15).c_str());
  if (options_.lowPriority) lowerThreadPriority();
  std::unique_lock lock(mutex_);
  bool first = true;
  for (;;) {
    if (!(first && options_.runAtStart) &&
        cv_.wait_for(lock, options_.interval, [&] { return stopping_; }))
      return;
    if (stopping_) return;
    first = false;
    lock.unlock();
    work_();
    lock.lock();
    ++runs_;
  }
}

}  // namespace llmcache
