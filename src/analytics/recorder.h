#pragma once
// EventRecorder: queues Events in memory and writes them to the index's events table in batches
// from a background thread, so recording never touches SQLite on the request path. Events older
// than the retention are purged by the same thread (docs/analytics.md, Storage).
#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "analytics/event.h"
#include "common/adaptive_mutex.h"
#include "common/clock.h"
#include "common/result.h"
#include "index/index.h"

namespace llmcache::analytics {

struct RecorderOptions {
  std::chrono::milliseconds flushInterval{1000};  // queued events are written at least this often
  size_t batch = 1000;     // ... or as soon as this many are queued; also the rows per transaction
  int retentionDays = 30;  // events older than this are deleted; <= 0 keeps them forever
  size_t maxQueued = 100000;  // beyond this record() drops the event and counts it
  std::chrono::milliseconds purgeInterval{std::chrono::hours(1)};  // how often the writer purges
  const Clock* clock = &Clock::system();                           // for the retention cutoff only
  // The writer does its SQLite work at idle priority (SCHED_IDLE) while it keeps up: it then
  // takes only CPU that no request thread wants, and never delays one. When raiseAt events are
  // waiting (the cores are busy and the writer gets no turn), record() raises it to nice 10
  // until it has caught up. It holds the queue's mutex only at nice 10. Only where the process
  // may leave SCHED_IDLE again (canLeaveIdlePriority()); elsewhere the writer stays at nice 10.
  bool idleWhenCaughtUp = false;
  size_t raiseAt = 10000;
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

  // Queues the event (a copy into a flat slot of this thread's shard of the queue, under that
  // shard's mutex: no I/O, no allocation once the shard has grown, and no lock that another
  // request thread takes). Dropped and counted when maxQueued events are already waiting
  // (SQLite too slow or failing).
  void record(const Event& event);
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
  bool raised() const;  // whether the writer fell behind and was raised (until it catches up)

 private:
  // One queued event, flat: its strings are copied back to back into `text` (or `overflow` when
  // they do not fit). So recording allocates nothing per event once the queue has its capacity,
  // and the writer thread frees nothing that a request thread allocated: when it freed the
  // events' strings, each free took the glibc arena lock of the request thread that allocated
  // them, and a request thread waited for the (lower priority) writer now and then.
  struct Queued {
    static constexpr size_t kFields = 11;  // Event's strings, in the order of fill()
    static constexpr size_t kInline = 384;
    int64_t timeMs = 0;
    Outcome outcome = Outcome::Miss;
    double latencyMs = 0;
    int64_t tokensIn = 0;
    int64_t tokensOut = 0;
    double cost = 0;
    double costSaved = 0;
    int64_t latencySavedMs = 0;
    std::optional<uint64_t> promptSimhash;
    uint64_t seedHash = 0;
    bool semantic = false;
    std::array<uint32_t, kFields> length{};
    std::array<char, kInline> text;
    std::string overflow;  // every field, when their sum exceeds kInline (then text is unused)

    void fill(const Event& e);
    std::string_view field(size_t i) const;
    void toRow(index::EventRow& row) const;  // assigns into row's strings (reusing their capacity)
    // Hits merge into one row when these agree: the second, and every string but the preview
    // (key, model, platform, provider, endpoint, tier, caller, category, tenant, namespace), the
    // prompt signature, the seed hash and semantic (a semantic hit never merges with exact ones:
    // /cache/analytics counts them apart). mergeHash() hashes the same (and the outcome);
    // mergesWith() compares.
    bool mergeable() const;
    uint64_t mergeHash() const;
    bool mergesWith(const Queued& other) const;
    void addTo(index::EventRow& row) const;  // adds this event to a merged row's totals
  };

  // Queued slots in fixed chunks of kChunk: growing never moves a slot (a std::vector of 10,000
  // slots of ~470 B copied ~5 MB under the queue's mutex, on a request thread, each time it
  // grew). clear() keeps the chunks for reuse; trim() gives back all but a few.
  class Slots {
   public:
    static constexpr size_t kChunk = 256;
    Queued& emplace_back();
    Queued& operator[](size_t i) { return chunks_[i / kChunk][i % kChunk]; }
    size_t size() const { return size_; }
    void clear() { size_ = 0; }
    void trim(size_t keepChunks) {
      if (chunks_.size() > keepChunks) chunks_.resize(keepChunks);
    }
    void swap(Slots& other) noexcept {
      chunks_.swap(other.chunks_);
      std::swap(size_, other.size_);
    }

   private:
    std::vector<std::unique_ptr<Queued[]>> chunks_;
    size_t size_ = 0;
  };

  void writerLoop();
  // Takes every shard's queue and writes it in batches; callers hold flushMutex_.
  Result<void> drain(bool onWriter);
  class IdleSection;

  // The queue, one shard per request thread (threadSlot() % kShards): with one queue behind one
  // mutex, every request thread's every event took the same lock.
  static constexpr size_t kShards = 16;
  struct alignas(64) Shard {
    AdaptiveMutex mutex;  // the recording thread's; the writer takes it only to swap the queue
    Slots queue;          // guarded by mutex
  };

  index::Index& index_;
  RecorderOptions options_;
  std::mutex flushMutex_;  // one drain at a time, so flush() returns after any drain in progress
  std::array<Shard, kShards> shards_;
  std::atomic<size_t> queued_{0};  // events in the shards' queues (approximate while they change)
  // The writer sleeps on cv_ under wakeMutex_; record() takes wakeMutex_ only to wake it (once per
  // batch), so that the wake-up cannot fall between the writer's check and its sleep.
  std::mutex wakeMutex_;
  std::condition_variable cv_;
  std::array<Slots, kShards> writing_;  // the shards' queues being written; guarded by flushMutex_
  std::vector<const Queued*> order_;    // the events of one drain, in time order; flushMutex_
  std::vector<index::EventRow> rows_;   // reused for each write (their strings keep capacity)
  // drain()'s merging of hits: mergeHash() -> the row (and its first slot) it goes into.
  std::unordered_map<uint64_t, size_t> merge_;
  std::vector<const Queued*> rowSlot_;
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> writeErrors_{0};
  TimePoint nextPurge_{};
  bool stopping_ = false;  // guarded by wakeMutex_
  pid_t writerTid_ = 0;    // set by the writer before the constructor returns (wakeMutex_)
  bool adaptive_ = false;  // idleWhenCaughtUp and possible here; set before the loop starts
  std::atomic<bool> raised_{false};      // behind: the writer stays at nice 10
  std::atomic<bool> writerIdle_{false};  // the writer is in SCHED_IDLE now (in an IdleSection)
  std::condition_variable started_;
  std::thread writer_;
};

}  // namespace llmcache::analytics
