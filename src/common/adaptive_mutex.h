#pragma once
// AdaptiveMutex: a mutex that spins briefly before it sleeps (glibc's PTHREAD_MUTEX_ADAPTIVE_NP).
// For the short critical sections the request threads share on the hit path (the key memo's and
// the memory tier's shards, the events queue, the pending hit counts): a std::mutex sends a
// contended thread to sleep in the kernel, and waking it again took tens to hundreds of
// microseconds here (a VM); ~3.5% of memory hits at 2 connections did a futex call (perf stat).
// A Lockable: use it with std::lock_guard / std::unique_lock, and std::condition_variable_any.
#include <pthread.h>

namespace llmcache {

class AdaptiveMutex {
 public:
  AdaptiveMutex() {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&m_, &attr);
    pthread_mutexattr_destroy(&attr);
  }
  ~AdaptiveMutex() { pthread_mutex_destroy(&m_); }
  AdaptiveMutex(const AdaptiveMutex&) = delete;
  AdaptiveMutex& operator=(const AdaptiveMutex&) = delete;

  void lock() { pthread_mutex_lock(&m_); }
  bool try_lock() { return pthread_mutex_trylock(&m_) == 0; }
  void unlock() { pthread_mutex_unlock(&m_); }

 private:
  pthread_mutex_t m_;
};

}  // namespace llmcache
