#pragma once
// Background threads that do bulk work (analytics events, hit counts, disk and S3 writes, the
// disk tier's start scan, admin queries) run at a lower priority than the request threads
// (pollers that wake once a second stay as they are). With 2 cores, a 4th or 5th runnable
// thread took a whole scheduler slice (~3 ms) from a request thread now and then: p99 of memory
// hits at 2 connections was 3 ms against a p50 of 0.06 ms (bench/compare_nginx.sh). At nice 10
// such a thread still gets ~10% of a busy core, and all of an idle one.
namespace llmcache {

// Lowers the calling thread's priority (Linux: per-thread nice value 10). Best effort: a
// failure leaves the priority as it was.
void lowerThreadPriority();

}  // namespace llmcache
