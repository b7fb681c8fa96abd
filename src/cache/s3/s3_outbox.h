#pragma once
// S3Outbox: asynchronous, durable writes to the S3 tier (CACHE_ASYNC_WRITES=true).
//
// enqueue() first journals the entry to a local file (codec-encoded, temp + fsync + rename +
// fsync(dir)), then returns; worker threads upload journaled entries through the target tier
// and delete each file once the upload succeeded. A crash or restart loses nothing that
// enqueue() accepted: the next S3Outbox on the same directory re-queues every journal file, in
// the original order. Uploads of one cache_key happen in enqueue order (never two at once), so
// the newest answer's pointer is the one that stays.
//
// While the store fails (Unavailable: down, 5xx, throttled, 403), every worker pauses for a
// backoff that doubles with each consecutive failure (full jitter, capped at retryMax) so a dead
// store is not hammered; the first success resets it. An entry the store refuses for good
// (InvalidArgument, TooLarge: a 4xx other than 401/403/429) is dropped from the journal and
// counted as rejected.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <list>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cache/codec.h"
#include "cache/tier.h"
#include "cache/tiered_cache.h"

namespace llmcache::cache::s3 {

struct S3OutboxOptions {
  std::filesystem::path dir;  // the journal: {CACHE_DIR}/s3-outbox; created when missing
  size_t workers = 2;         // concurrent uploads
  std::chrono::milliseconds retryBase{500};
  std::chrono::milliseconds retryMax{60000};
  CodecOptions codec = {};     // journal files' encoding (CACHE_COMPRESSION, CACHE_ENCRYPTION)
  size_t maxPending = 100000;  // enqueue() refuses (TooLarge) beyond this many waiting entries
  // Entries kept in memory while they wait (their approximate bytes); beyond, a job keeps only
  // its journal file and the upload reads it back. A backlog (S3 slower than the misses, or
  // down) then costs disk, not memory: the soak test saw RSS grow to 870 MB at 100,000 pending.
  size_t maxMemoryBytes = size_t{16} << 20;
  // fsync each journal file and the folder before enqueue() returns (CACHE_DISK_SYNC=always).
  // false: written back later; a journal file a power loss tore fails to decode at the next
  // start and is dropped (corruptJournal): that entry never reaches S3, a miss there.
  bool syncEachWrite = true;
};

struct S3OutboxStats {
  uint64_t pending = 0;         // journaled, not yet uploaded (in flight included)
  uint64_t uploaded = 0;        // uploads that succeeded (their journal files are gone)
  uint64_t failures = 0;        // upload attempts that failed (each retry counts)
  uint64_t rejected = 0;        // entries the store refused for good, dropped
  uint64_t recovered = 0;       // journal files a previous run left, re-queued at start
  uint64_t corruptJournal = 0;  // journal files that failed to decode, deleted
  uint64_t memoryBytes = 0;     // entries kept in memory while they wait (maxMemoryBytes)
};

class S3Outbox final : public WriteQueue {
 public:
  // target: the tier uploads go to (S3Tier; any CacheTier in tests); not owned, must outlive the
  // outbox. Creates dir, deletes temp files a crash left, re-queues journal files, starts the
  // workers. Throws std::runtime_error when dir is unusable (startup only).
  S3Outbox(CacheTier& target, S3OutboxOptions options);
  // stop(): what is still journaled stays for the next start.
  ~S3Outbox();
  S3Outbox(const S3Outbox&) = delete;
  S3Outbox& operator=(const S3Outbox&) = delete;

  // Journals entry durably and queues its upload. Success: the entry will reach the store
  // (now, or after a restart). Errors: InvalidArgument (null entry, empty cache_key), TooLarge
  // (maxPending entries are waiting), Io (the journal file could not be written: not queued).
  // Thread-safe; blocks only on the local fsync. Accepted (journaled) after stop() too.
  [[nodiscard]] Result<void> enqueue(EntryPtr entry) override;

  // Waits until nothing is pending or budget has passed (SIGTERM: give uploads a chance).
  // true: everything was uploaded. What remains stays journaled.
  bool drain(std::chrono::milliseconds budget);

  // Stops the workers after their current upload. Idempotent.
  void stop();

  S3OutboxStats stats() const;
  uint64_t pending() const { return stats().pending; }
  uint64_t uploaded() const { return stats().uploaded; }
  uint64_t failures() const { return stats().failures; }

 private:
  struct Job {
    std::filesystem::path file;
    std::string cacheKey;
    EntryPtr entry;  // null: read back from file when uploading
    bool inFlight = false;
    size_t bytes = 0;  // entry's approxBytes() counted in memoryBytes_ (0 when entry is null)
  };
  void work();
  // Caller holds mutex_: the first job that may go now (its key not in flight, no earlier job of
  // its key waiting), or end().
  std::list<Job>::iterator nextJobLocked();
  void recover();

  CacheTier& target_;
  S3OutboxOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;  // workers: a job, the end of a pause, stop
  std::condition_variable idle_;  // drain: the queue emptied
  std::list<Job> queue_;          // enqueue order
  size_t memoryBytes_ = 0;        // of the entries the queue keeps in memory
  std::set<std::string> inFlight_;
  uint64_t seq_ = 0;
  bool stopping_ = false;
  int consecutiveFailures_ = 0;
  std::chrono::steady_clock::time_point pausedUntil_{};
  std::mt19937_64 rng_;
  S3OutboxStats stats_;
  std::vector<std::thread> workers_;
};

}  // namespace llmcache::cache::s3
