#pragma once
// EventRecorder: queues Events in memory and writes them to the index's events table in batches
// from a background thread, so recording never touches SQLite on the request path. Events older
// than the retention are purged by the same thread (docs/analytics.md, Storage).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "analytics/event.h"
#include "common/clock.h"
#include "common/result.h"
#include "index/index.h"

namespace llmcache::analytics {

struct RecorderOptions {
  std::chrono::milliseconds flushInterval{1000};  // queued events are written at least this often
  size_t batch = 1000;                 // ... or as soon as this many are queued; also the rows per transaction
  int retentionDays = 30;              // events older than this are deleted; <= 0 keeps them forever
  size_t maxQueued = 100000;           // beyond this record() drops the event and counts it
  std::chrono::milliseconds purgeInterval{std::chrono::hours(1)};  // how often the writer purges
  const Clock* clock = &Clock::system();  // for the retention cutoff only
  // Test hook: called on the thread that wrote a batch, with its size, after it committed.
  std::function<void(size_t)> onBatchWritten = {};
};

// Thread-safe. The index must outlive the recorder.
class EventRecorder {
 public:
  EventRecorder(index::Index& index, RecorderOptions options = {});
  // Writes what is queued, then stops the writer.
  ~EventRecorder();
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  // Queues the event (a mutex and a vector push: no I/O). Dropped and counted when maxQueued
  // events are already waiting (SQLite too slow or failing).
  void record(Event event);
  // Writes every event queued before the call; returns when they are in SQLite or failed (the
  // failed batch is dropped and counted in writeErrors: events are statistics).
  Result<void> flush();
  // Deletes events older than now - retentionDays. Returns how many. The writer calls it every
  // purgeInterval; callers may too.
  Result<size_t> purge();

  uint64_t written() const;      // events committed to SQLite
  uint64_t dropped() const;      // events refused because the queue was full
  uint64_t writeErrors() const;  // events lost in failed batches
  size_t queued() const;

 private:
  void writerLoop();
  // Takes the queue and writes it in batches; callers hold flushMutex_.
  Result<void> drain();

  index::Index& index_;
  RecorderOptions options_;
  std::mutex flushMutex_;  // one drain at a time, so flush() returns after any drain in progress
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Event> queue_;
  uint64_t written_ = 0;
  uint64_t dropped_ = 0;
  uint64_t writeErrors_ = 0;
  TimePoint nextPurge_{};
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace llmcache::analytics
