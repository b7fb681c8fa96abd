#pragma once
// Background threads that do bulk work (analytics events, hit counts, disk and S3 writes, the
// disk tier's start scan, admin queries) run at a lower priority than the request threads
// (pollers that wake once a second stay as they are). With 2 cores, a 4th or 5th runnable
// thread took a whole scheduler slice (~3 ms) from a request thread now and then: p99 of memory
// hits at 2 connections was 3 ms against a p50 of 0.06 ms (bench/compare_nginx.sh). At nice 10
// such a thread still gets ~10% of a busy core, and all of an idle one.
//
// A nice value lowers a thread's share, not its latency cost: once running, a nice-10 thread
// keeps its core for its slice while a request thread that woke up waits. SCHED_IDLE does not:
// a waking normal thread preempts it at once, but it runs only on a core nothing else wants
// (and can starve). The analytics writer uses it while it keeps up (setIdlePriority).
#include <sys/types.h>

#include <cstddef>

namespace llmcache {

// A small number per thread of the process, 0, 1, 2, ... in the order threads first ask: for
// per-thread shards of state that all request threads write (threadSlot() % shards), so that
// they never wait for each other's lock on the hit path.
size_t threadSlot();

// Lowers the calling thread's priority (Linux: per-thread nice value 10). Best effort: a
// failure leaves the priority as it was.
void lowerThreadPriority();

// The calling thread's id, for setIdlePriority.
pid_t currentThreadId();

// Whether this process may move a thread into SCHED_IDLE and back out of it: leaving it needs
// CAP_SYS_NICE or an RLIMIT_NICE that allows nice 10. Probed once, in a throwaway thread.
bool canLeaveIdlePriority();

// Moves thread `tid` of this process to SCHED_IDLE (idle = true) or back to SCHED_OTHER at
// nice 10. Returns whether it took effect. Only call it when canLeaveIdlePriority().
bool setIdlePriority(pid_t tid, bool idle);

// Whether thread `tid` of this process is in SCHED_IDLE.
bool isIdlePriority(pid_t tid);

}  // namespace llmcache
