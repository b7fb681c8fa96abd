#pragma once
// Index: the SQLite catalogue of stored entries beside the disk tier ({cache_dir}/index.sqlite,
// docs/index-schema.md). It answers what the tiers cannot: which entries match an invalidation,
// listing and paging for the admin API, hit counts and totals. It holds metadata only, never
// bodies; the tiers stay the truth about what can be served (a row whose entry was evicted is
// harmless: erasing it from a tier is a no-op).
#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "cache/entry.h"
#include "cache/tier.h"
#include "common/adaptive_mutex.h"
#include "common/clock.h"
#include "common/result.h"
#include "index/criterion.h"

struct sqlite3;
struct sqlite3_stmt;

namespace llmcache::index {

// Bits of Row::tiers: which tiers an entry was written to (cache::tierBit of its TierId).
inline constexpr unsigned kTierMemory = cache::tierBit(cache::TierId::Memory);
inline constexpr unsigned kTierDisk = cache::tierBit(cache::TierId::Disk);
inline constexpr unsigned kTierS3 = cache::tierBit(cache::TierId::S3);

struct Row {
  std::string cacheId;
  std::string cacheKey;
  std::string requestHash;
  std::string model;
  std::string platform;
  std::string provider;
  std::string endpoint;
  std::string cacheNamespace;
  std::string tenant;  // (schema v3) the scope in the entry's key; empty when unscoped
  std::vector<std::string> tags;
  TimePoint created{};               // the response timestamp
  std::optional<TimePoint> expires;  // nullopt: never
  TimePoint lastAccessed{};
  int64_t hitCount = 0;
  int64_t sizeStored = 0;  // bytes as a tier stores them (encoded, maybe compressed)
  int64_t sizeRaw = 0;     // bytes of the entry's JSON before compression
  int64_t tokensIn = 0;
  int64_t tokensOut = 0;
  double costTotal = 0;  // US dollars the original upstream call cost
  int64_t latencyMs = 0;
  unsigned tiers = 0;    // kTier* bits
  bool invalid = false;  // invalidated: erased from the tiers, kept here for the record
  friend bool operator==(const Row&, const Row&) = default;
};

struct Filter {
  std::optional<std::string> model = {};
  std::optional<std::string> tag = {};
  std::optional<std::string> cacheNamespace = {};
  std::optional<std::string> tenant = {};  // the entry's tenant ("" selects unscoped entries)
  std::optional<TimePoint> from = {};      // created >= from
  std::optional<TimePoint> to = {};        // created < to
  size_t limit = 100;                      // clamped to 1..kMaxPageSize
  std::string cursor = {};                 // empty: the first page; else a Page::nextCursor
  bool includeInvalid = false;
};
inline constexpr size_t kMaxPageSize = 1000;

struct Page {
  std::vector<Row> rows;                  // newest first (created, then cache_id, descending)
  std::optional<std::string> nextCursor;  // set when more rows may follow
};

struct Stats {
  uint64_t entries = 0;         // valid rows that some tier still holds (tiers <> 0)
  uint64_t bytes = 0;           // sum of size_stored over those rows
  uint64_t invalidEntries = 0;  // rows kept after an invalidation
  uint64_t hits = 0;            // sum of hit_count over all rows (flushed hits only)
  double costSaved = 0;         // sum of hit_count * cost_total over all rows, US dollars
  uint64_t tokensSaved = 0;     // sum of hit_count * (tokens_in + tokens_out)
};

struct IndexOptions {
  std::chrono::milliseconds hitFlushInterval{1000};  // queued hits are written at least this often
  size_t hitFlushBatch = 1000;                       // ... or as soon as this many are queued
  size_t maxPendingIds = 100000;  // distinct ids queued; hits for more are dropped, counted
  bool integrityCheck = true;     // PRAGMA integrity_check at open (O(size of the file))
  std::chrono::milliseconds busyTimeout{5000};  // waiting for another process's write lock
  // Copy the WAL into the database from a thread of its own, on its own connection, at idle
  // priority, every checkpointInterval, instead of in the commit that crosses 1,000 WAL pages.
  // That commit held a core for milliseconds (4 MB copied) beside the request threads. Past
  // kWalRaisePages (the cores are busy, the checkpointer gets no turn) it is raised to nice 10
  // until it has checkpointed; past kWalSafetyPages the writing connection checkpoints itself.
  bool backgroundCheckpoints = false;
  std::chrono::milliseconds checkpointInterval{250};
};

// One request as the events table stores it (docs/index-schema.md, events; the meaning of each
// field is analytics::Event's, docs/analytics.md).
// One row of the events table: one request, or several merged hits (`requests` > 1; then
// latencyMs, tokensIn, tokensOut, cost, costSaved and latencySavedMs are their totals).
struct EventRow {
  int64_t timeMs = 0;  // the (first) request's time
  int64_t requests = 1;
  std::string cacheKey;
  std::string model;
  std::string platform;
  std::string provider;
  std::string endpoint;
  std::string outcome;
  std::string tier;
  double latencyMs = 0;
  int64_t tokensIn = 0;
  int64_t tokensOut = 0;
  double cost = 0;
  double costSaved = 0;
  int64_t latencySavedMs = 0;
  std::string callerHash;
  std::string promptCategory;
  std::optional<uint64_t> promptSimhash;
  std::string
      promptPreview;  // not stored in events: only copied to the entry's row (see appendEvents)
  // (schema v6) the request's tenant and namespace, as on entries; and the first 64 bits of the
  // request_hash it would have had under `seed` normalization, 0 when not known (stored as NULL).
  std::string tenant;
  std::string keyNamespace;
  uint64_t seedHash = 0;
  // (schema v7) a HIT served by similarity (docs/semantic.md), not by its key: stored as 1.
  bool semantic = false;
};

// A value bound to or read from a query: NULL, INTEGER, REAL or TEXT (BLOBs read as TEXT).
using SqlValue = std::variant<std::monostate, int64_t, double, std::string>;

// One feed call per entry, for rebuildFrom: the entry, the tiers holding it (kTier* bits), its
// stored and raw sizes.
using EntrySink =
    std::function<void(const cache::Entry&, unsigned tiers, size_t sizeStored, size_t sizeRaw)>;

// Thread-safe: one connection behind a mutex. Other processes (the CLI while `serve` runs) may
// open the same file; WAL lets readers proceed while one writes, writers wait busyTimeout.
class Index {
 public:
  // Opens or creates the index at path (creating its directory), in WAL mode, applying pending
  // migrations in order. Errors: Corrupt when the file is not a SQLite database, fails
  // integrity_check or has a schema version newer than this build: the caller may remove it
  // (removeFiles) and rebuild. Io for anything else (permissions, disk full, locked too long).
  [[nodiscard]] static Result<std::unique_ptr<Index>> open(const std::filesystem::path& path,
                                                           IndexOptions options = {});
  // {cacheDir}/index.sqlite
  static std::filesystem::path defaultPath(const std::filesystem::path& cacheDir);
  // Deletes path and its -wal and -shm files (missing ones are fine). Only while no Index has it
  // open.
  [[nodiscard]] static Result<void> removeFiles(const std::filesystem::path& path);

  // Writes queued hits, then closes.
  ~Index();
  Index(const Index&) = delete;
  Index& operator=(const Index&) = delete;

  int schemaVersion() const { return schemaVersion_; }

  // Records entry as stored in `tiers` (kTier* bits, OR-ed into what the row already has, so a
  // caller may report each tier as its write lands). Inserting a cache_key replaces the rows of
  // other cache_ids under that key (the tiers replaced the entry too). An existing row keeps its
  // invalid flag and the larger of the two hit counts and last-accessed times. sizeStored: the
  // bytes a tier holds for it (encoded, maybe compressed); 0 when the reporting tier does not say
  // (a new row then takes sizeRaw, an existing one keeps its size_stored). A synchronous
  // SQLite transaction (WAL, synchronous=NORMAL: no fsync per commit).
  [[nodiscard]] Result<void> upsert(const cache::Entry& entry, unsigned tiers, size_t sizeStored,
                                    size_t sizeRaw);

  // Queues a hit: hit_count += 1, last_accessed = max(last_accessed, at). Never touches SQLite on
  // the caller's thread; a background thread writes queued hits every hitFlushInterval or
  // hitFlushBatch hits. A hit for an unknown id is ignored when written. When more than
  // maxPendingIds distinct ids are queued the hit is dropped and counted (droppedHits()).
  void recordHit(std::string_view cacheId, TimePoint at);
  // Writes every hit queued before the call; returns when they are in SQLite.
  void flush();
  // A hit whose row is not there yet (its store is still queued) is kept for this many flushes
  // (one a second by default), then dropped and counted in droppedHits.
  static constexpr int kHitRetries = 30;
  uint64_t droppedHits() const;
  uint64_t hitWriteErrors() const;

  // The row of cacheId, invalid or not. nullopt: none.
  Result<std::optional<Row>> byCacheId(std::string_view cacheId);
  // The newest valid row with this request_hash. nullopt: none.
  Result<std::optional<Row>> byRequestHash(std::string_view requestHash);
  // A page of rows, newest first. Error InvalidArgument: a malformed cursor.
  // A cursor is the last row's (created, cache_id): rows inserted while paging appear on a page
  // only if they sort after it; none is returned twice.
  Result<Page> list(const Filter& filter);
  // Every valid row the criterion selects when applied at now (Criterion::cutoff).
  Result<std::vector<Row>> match(const Criterion& criterion, TimePoint now);

  // Marks rows invalid. Returns how many were valid before.
  [[nodiscard]] Result<size_t> markInvalid(const std::vector<std::string>& cacheIds);
  // Deletes rows (and their tags). Returns how many existed.
  [[nodiscard]] Result<size_t> erase(const std::vector<std::string>& cacheIds);
  // Up to limit cache_ids of valid rows whose expiry is <= now, soonest expired first.
  Result<std::vector<std::string>> expired(TimePoint now, size_t limit);
  Result<Stats> stats();

  // Replaces every row with what scan feeds (one transaction: readers see the old index until it
  // commits; a failed rebuild leaves the old one). scan is called once, on this thread, and
  // calls its argument per entry. Invalid flags and hit counts not stored in entries are lost.
  // Returns the number of rows written. Errors: Io from SQLite, or what scan threw.
  [[nodiscard]] Result<size_t> rebuildFrom(const std::function<void(const EntrySink&)>& scan);

  // --- events and prompt signatures (schema version 2; written for the analytics module) ---

  // Appends rows to the events table in one transaction (all or none). A row carrying a
  // promptSimhash also fills prompt_simhash / prompt_preview of the entry rows under its
  // cache_key that have none yet, so a signature reaches the entry whichever of the event and
  // the entry's upsert lands first (a later event of the key fills it). Yields the CPU every
  // kEventRowsPerYield rows (it runs on a background thread beside the request threads). Each
  // row's id is (time << kEventSequenceBits) | a sequence number: the table is in time order.
  [[nodiscard]] Result<void> appendEvents(std::span<const EventRow> rows);
  static constexpr size_t kEventRowsPerYield = 8;
  static constexpr int kEventSequenceBits = 20;
  static constexpr int kWalRaisePages = 1000;   // 4 MB, SQLite's own automatic checkpoint size
  static constexpr int kWalSafetyPages = 8192;  // 32 MB (with backgroundCheckpoints)
  // The first event id at or after timeMs (0 before 1970, INT64_MAX past the ids' range, year
  // 2248): window bounds for queries of the events table by id.
  static int64_t eventIdBound(int64_t timeMs);
  // Deletes events with time < before. Returns how many.
  [[nodiscard]] Result<size_t> purgeEvents(TimePoint before);
  // A tier evicted what it held under `key` (a cache key, or a disk file's name for an entry the
  // disk tier knew only by its file): its bit leaves the rows of that key, so the figures count
  // what the tiers hold (a row with no tier left is kept, for the record, but not counted).
  // Queued, and written with the hit counts (flush(), and once a second); an upsert of that key
  // before then takes back the bits it sets again.
  void recordEviction(std::string_view key, unsigned tierBit);
  // Sets the prompt signature of the entry rows under cacheKey (the gateway's store path).
  // Returns whether a row was there to take it.
  [[nodiscard]] Result<bool> setPromptSignature(std::string_view cacheKey, uint64_t simhash,
                                                std::string_view preview);
  // Runs one read-only statement (anything that writes is refused, InvalidArgument) with params
  // bound to ?1, ?2, ...; calls onRow with each row's columns. For modules that query the tables
  // of this schema (analytics); the statement is prepared once and cached, so pass a fixed SQL
  // text and vary the parameters. onRow must not call back into this Index.
  Result<void> query(std::string_view sql, const std::vector<SqlValue>& params,
                     const std::function<void(const std::vector<SqlValue>&)>& onRow);

 private:
  struct PendingHit {
    uint64_t count = 0;
    int64_t lastMs = 0;
    int misses = 0;  // flushes that found no row for it yet (its store is still queued)
  };

  class Stmt;

  Index(sqlite3* db, IndexOptions options, int schemaVersion);
  // Callers hold dbMutex_.
  sqlite3_stmt* prepared(const std::string& sql, Error& error);
  [[nodiscard]] Result<void> execLocked(const char* sql);
  // Runs sql (one ?1 parameter) once per id in one transaction; the number of rows changed.
  [[nodiscard]] Result<size_t> eachIdInTransaction(const std::string& sql,
                                                   const std::vector<std::string>& ids,
                                                   const char* what);
  [[nodiscard]] Result<void> upsertLocked(const cache::Entry& entry, unsigned tiers,
                                          size_t sizeStored, size_t sizeRaw);
  Result<std::vector<Row>> rowsLocked(const std::string& sql,
                                      const std::function<void(Stmt&)>& bind);
  Error sqlError(int rc, std::string_view what) const;

  void hitWriterLoop();
  void checkpointLoop(std::string path);
  static int walHook(void* self, sqlite3* db, const char* name, int pages);
  // Takes the queued evictions and writes them; callers hold flushMutex_.
  void drainEvictions();
  // Takes the queued hits and writes them; callers hold flushMutex_.
  void drainHits();

  sqlite3* db_;
  IndexOptions options_;
  int schemaVersion_;

  std::mutex dbMutex_;
  uint64_t eventSequence_ = 0;      // low bits of the next event id; guarded by dbMutex_
  int64_t eventId(int64_t timeMs);  // callers hold dbMutex_
  std::map<std::string, sqlite3_stmt*, std::less<>> statements_;  // prepared once, reused

  std::mutex flushMutex_;
  // Evictions not written yet: key -> tier bits. Taken with dbMutex_ held (so an upsert, which
  // holds it, is either before the batch and takes its bits back, or after it).
  std::mutex evictMutex_;
  std::unordered_map<std::string, unsigned>
      pendingEvictions_;  // one drain at a time, so flush() returns after any drain in progress
  // Pending hit counts, in one shard per request thread (threadSlot() % kHitShards): recordHit
  // runs on every hit, and with one map behind one mutex every request thread took the same lock.
  // Looked up by string_view (transparent): a std::string of the 32-character id was a heap
  // allocation per hit.
  struct IdHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using PendingHits = std::unordered_map<std::string, PendingHit, IdHash, std::equal_to<>>;
  static constexpr size_t kHitShards = 16;
  struct alignas(64) HitShard {
    AdaptiveMutex mutex;  // the recording thread's; the hit writer takes it only to swap the map
    PendingHits pending;  // guarded by mutex
  };
  std::array<HitShard, kHitShards> hitShards_;
  std::atomic<size_t> pendingHits_{0};  // hits in the shards (counted under the shard's mutex)
  std::atomic<size_t> pendingIds_{0};   // ids in the shards, bounded by maxPendingIds
  std::atomic<uint64_t> droppedHits_{0};
  std::atomic<uint64_t> hitWriteErrors_{0};
  std::mutex hitWakeMutex_;  // the hit writer sleeps on hitCv_ under it
  std::condition_variable hitCv_;
  bool stopping_ = false;  // guarded by hitWakeMutex_
  std::thread hitWriter_;
  std::thread checkpointer_;  // with options_.backgroundCheckpoints
  std::mutex checkpointMutex_;
  std::condition_variable checkpointCv_;
  bool checkpointStop_ = false;  // guarded by checkpointMutex_
  bool checkpointNow_ = false;   // walHook asks for a checkpoint; guarded by checkpointMutex_
  std::atomic<pid_t> checkpointerTid_{0};
  std::atomic<bool> checkpointerIdle_{false};  // the checkpointer is in SCHED_IDLE
};

}  // namespace llmcache::index
