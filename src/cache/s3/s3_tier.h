#pragma once
// S3Tier: the third tier, entries as objects in an S3-compatible bucket in the seed's layout
// (docs/s3-layout.md), shared by every gateway instance that points at the bucket.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cache/codec.h"
#include "cache/s3/s3_client.h"
#include "cache/s3/s3_layout.h"
#include "cache/tier.h"
#include "cache/tier_events.h"
#include "common/clock.h"

namespace llmcache::cache::s3 {

struct S3TierOptions {
  std::string prefix;  // CACHE_S3_PREFIX: every key of this tier starts with it
  // CACHE_COMPRESSION. Off: entries are plain JSON ({cache_id}.json, application/json), readable by
  // any S3 client. On: the codec's framing with zstd ({cache_id}.json.zst,
  // application/octet-stream). Reads follow each pointer's entry_format, so either setting reads
  // both. CACHE_ENCRYPTION (codec.key set): always the framing, sealed with AES-256-GCM, whatever
  // compress says ({cache_id}.json.zst, even when not compressed); and reads accept only sealed
  // entries (a plain JSON or unsealed object is a corrupt entry: a miss, counted, removed).
  CodecOptions codec = {};
  // Names this instance's index segments (by-date, global/instances/...). Must be stable across
  // restarts and unique per gateway sharing the bucket: loadOrCreateInstanceId(cache_dir).
  std::string instanceId = "default";
  // created/updated times and the flush interval. nullptr = Clock::system().
  const Clock* clock = nullptr;
  // An insert writes the index segments when the last flush is at least this old. 0 = on every
  // insert. Either way call flushIndex() at shutdown so that the last inserts are listed.
  std::chrono::milliseconds indexFlushInterval{60000};
  bool writeIndex = true;  // false: entries and pointers only (no by-date, no statistics)
  // After the by-key pointer, an insert writes a marker in the recent-keys journal
  // (cache-index/recent-keys/{ms}/{instance}/{key}.json), which the other gateways' key
  // directories list every second: a new entry is an S3 hit elsewhere within ~1 s, not at their
  // next full listing (docs/s3-layout.md, The key directory). A failed marker does not fail the
  // insert (journalErrors(); the full listing finds the key later).
  bool writeJournal = true;
  // This instance deletes its own markers this old (pruneJournal(), from `serve`'s s3-index
  // loop): long past every reader's window, so the journal holds minutes, not the bucket's life.
  // Markers of a crashed run are not deleted (a lifecycle rule on the prefix expires them).
  std::chrono::milliseconds journalRetention{std::chrono::minutes(10)};
  // The by-date index (layout version 2): this instance's items of a day go to parts of at most
  // this many items (by-date/{day}/{instance}/{n}.json). Only the open part of the newest day is
  // held in memory; a full part is written once (at once, not at the next interval) and dropped.
  size_t dayPartEntries = 1000;
  // The day view (by-date/{day}.json) lists the day's parts at every flush, and copies their
  // entries only while all of that day's parts and segments together are at most this many bytes
  // (it reads them back to do so); beyond it the view says "complete": false and has no
  // "entries" (readers follow "parts", or call dayEntries()).
  uint64_t dayViewMaxBytes = 2 << 20;
  // The gateway's own figures for the fleet statistics (issue 16; docs/s3-layout.md, Statistics):
  // called at each flush, its members written under "gateway" in this instance's statistics.json
  // and, summed over every instance, at the top of global/statistics.json. Every number in it
  // must be a count or a sum since this process started (they add up across instances, and onto
  // what this instance wrote before a restart); no rates. Empty: none (the S3 tier's own counts
  // only).
  std::function<Json()> instanceFigures = {};
  // CACHE_METRICS_INTERVAL, written in statistics.json ("interval_seconds") so that a reader can
  // tell a gateway whose part is stale (older than two intervals).
  std::chrono::seconds metricsInterval{60};
  // Hit counts of stored entries (hit_count / last_accessed in their metadata objects): hits of
  // any tier (onTierEvent) are added up in memory per entry, and each flush rewrites at most this
  // many metadata objects (one GET and one PUT each); the rest wait for the next flush. At most
  // maxPendingHitEntries entries wait; hits of further entries are not recorded in the bucket
  // (counted: S3TierStats::hitUpdatesDropped). 0: no hit updates.
  size_t hitUpdatesPerFlush = 500;
  size_t maxPendingHitEntries = 100000;
};

struct S3TierStats {
  uint64_t lookups = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t errors = 0;            // lookups, inserts and erases that answered an error
  uint64_t inserts = 0;           // successful
  uint64_t erases = 0;            // that removed an entry
  uint64_t bytesWritten = 0;      // entry objects' bytes
  uint64_t corruptEntries = 0;    // entry objects that failed their checksum or decoding (removed)
  uint64_t danglingPointers = 0;  // pointers to a missing entry (removed)
  uint64_t corruptPointers = 0;   // pointer objects that are not a readable pointer (a miss)
  uint64_t indexErrors = 0;       // index flushes that failed (retried at the next flush)
  // Day items never written to the by-date index: full parts dropped from memory because more
  // than kMaxPendingParts waited for a write that kept failing (the entries stay in the bucket).
  uint64_t indexItemsDropped = 0;
  uint64_t hitUpdates = 0;         // metadata objects rewritten with new hit_count/last_accessed
  uint64_t hitUpdatesDropped = 0;  // hits not recorded in the bucket (no room, or no metadata)
  bool operator==(const S3TierStats&) const = default;
};

// The stable id of this instance: {dir}/s3-instance-id, created with a random id when missing.
// Throws std::runtime_error when the file cannot be read or written (startup only).
std::string loadOrCreateInstanceId(const std::filesystem::path& dir);

// Writes: the entry object, then its metadata object, then the by-hash pointer, then the by-key
// pointer. A reader that finds a pointer finds its entry (S3 is read-after-write consistent); a
// crash midway leaves an unreferenced entry, never a pointer to nothing. A replaced entry's old
// object stays (the audit trail; a bucket lifecycle rule may expire llm-cache/). Entry objects are
// never rewritten with other content: each answer has its own cache_id.
//
// Lookups read the by-key pointer (lookup) or the by-hash pointer (lookupByHash), then the entry,
// and check the entry's SHA-256 against the pointer's, and its cache_id and cache_key.
//
// Index objects (by-date parts, statistics) are per instance, each written only by its instance,
// and merged on read (dayEntries, globalStatistics) and into the seed's single-file views at each
// flush; so no update is lost even on stores that ignore conditional writes. Memory for the
// by-date index is bounded: the open part of the newest day (at most dayPartEntries items) plus
// full parts waiting for their one write (at most kMaxPendingParts); indexEntriesHeld() counts it.
//
// Time: lookup, lookupByHash, insert and erase are each one operation with one deadline
// (S3Client::deadline(): CACHE_S3_TIMEOUT in `serve`), every request they make and its retries
// inside it; a lookup's clean-up of a dangling pointer or corrupt entry too (best effort: what the
// deadline cuts short is cleaned at a later lookup). Index flushes and reads (flushIndex,
// dayEntries, globalStatistics) are background or admin work of many requests: each request
// there has a deadline of its own.
//
// Thread-safe; every call blocks on network I/O (bounded as above): call from worker threads,
// never from an event loop. Errors are Errc::Unavailable & co. from
// S3Client; they never throw.
class S3Tier final : public CacheTier, public SharedTier, public TierObserver {
 public:
  // client: not owned, must outlive the tier. No I/O here.
  S3Tier(S3Client& client, S3TierOptions options);

  TierId id() const override { return TierId::S3; }
  // The entry the by-key pointer of cacheKey names.
  //   nullopt: no pointer; a pointer for another key that sanitizes alike; an invalid or unreadable
  //     pointer; a pointer to a missing entry (dangling: the pointer is deleted if it still names
  //     that entry); an entry that fails its checksum or decoding (the entry and the pointers that
  //     still name it are deleted). Each counted.
  //   error: S3 could not be asked (unreachable, 5xx after retries, 403, ...).
  [[nodiscard]] Result<std::optional<EntryPtr>> lookup(std::string_view cacheKey) override;
  // The same through the by-hash pointer (the seed's lookup path, and `/cache/entry-by-hash`).
  Result<std::optional<EntryPtr>> lookupByHash(std::string_view requestHash);
  // Then, with writeJournal, the recent-keys marker (its failure is counted, not returned).
  // Errors: InvalidArgument (null entry, empty cache_key), or the client's; on error the pointers
  // may still name the previous entry or (when only the by-key write failed) the by-hash pointer
  // names the new one.
  [[nodiscard]] Result<void> insert(EntryPtr entry) override;
  // Marks the entry invalid (markInvalid with the reason "erased"): nothing is deleted, a lookup
  // is a miss; purgeInvalid removes the objects later. true when a valid by-key pointer for
  // cacheKey existed (false when absent, for another key, or already marked).
  [[nodiscard]] Result<bool> erase(std::string_view cacheKey) override;
  // Marks cacheKey's entry invalid in the bucket, nothing deleted: writes the record
  // cache-index/invalid/{cache_id}.json, then the by-key pointer and the by-hash pointer (while it
  // names the same entry) with "invalid": true, "invalidated_at" and "invalidation_reason", then
  // the metadata object with the same three fields. The entry object is untouched (written once).
  // Every gateway's lookup of a marked pointer is a miss. An unreadable by-key pointer is deleted
  // (nothing to mark). Errors: the client's (the marks written before stay).
  Result<bool> markInvalid(std::string_view cacheKey, std::string_view reason);

  // Bucket-wide invalidation (SharedTier): lists the metadata objects under
  // {p}llm-cache/{modelSegment(search.model)}/ (every model's folder when search.model is empty),
  // skips those already marked, those of another model that sanitizes alike, and those select()
  // rejects; an entry that is still current (its by-key pointer names its cache_id and is valid)
  // is matched and, unless dryRun, marked as markInvalid does, with search.reason. An entry its
  // key's pointer no longer names (the key was stored again since) is not served: left as it is.
  // Cost: one LIST per 1,000 objects of the folder, one GET per metadata object, one per pointer
  // of a selected entry, and markInvalid's requests per mark; each request has a
  // CACHE_S3_TIMEOUT of its own (a background or admin operation, not a lookup).
  Result<Marked> markMatching(const Search& search) override;

  struct PurgeOutcome {
    size_t records = 0;  // invalid records read
    size_t purged = 0;   // entries whose objects were deleted (with their record)
    size_t younger = 0;  // records kept: marked less than minAge ago
  };
  // Deletes the objects of entries marked invalid at least minAge ago (by invalidated_at): the
  // entry object, its metadata, each pointer that still names that cache_id, then the record;
  // at most limit records. dryRun: counts only. A pointer that names a newer entry (the key stored
  // again since) is kept.
  Result<PurgeOutcome> purgeInvalid(std::chrono::milliseconds minAge, size_t limit,
                                    bool dryRun = false);

  // Writes this instance's full by-date parts (once each) and dirty open parts, its
  // cache_index.json and statistics.json, and rewrites the merged views (by-date/{day}.json,
  // global/cache_index.json, global/statistics.json). Failed parts stay pending for the next
  // flush. Then drops from memory the open parts of days older than the newest (a later item
  // for such a day opens a new part).
  Result<void> flushIndex();
  // flushIndex() if the last flush is at least indexFlushInterval old and anything changed since
  // it began (an insert or erase, or only lookups: the statistics); nothing while another flush
  // runs. Before the interval, writes only full parts waiting for their write (so that memory
  // stays bounded whatever the insert rate). Inserts call it; `serve` also calls it on a timer, so
  // that an instance that only reads still publishes its statistics. Returns whether it wrote.
  bool flushIndexIfDue();
  // Calls fn with every item that any instance listed for day ("2026-01-01"), one stored object
  // (part or version-1 segment) at a time, in key order: memory is one object, whatever the day's
  // size. An item appears once per object that lists it (an instance lists an entry once; two
  // instances that inserted the same cache_id both list it). Unreadable objects, and objects of
  // an unknown version, are skipped. Errors: listing or reading failed (fn may have been called).
  Result<void> forEachDayItem(std::string_view day, const std::function<void(const Json&)>& fn);
  // forEachDayItem's items merged by cache_id, sorted by response_timestamp: the whole day in
  // memory (for small days, tests and the bounded day view); large days: forEachDayItem.
  Result<Json> dayEntries(std::string_view day);
  // By-date items this instance holds in memory (open parts and full parts not yet written):
  // at most dayPartEntries * (1 + kMaxPendingParts), plus the open parts of days not yet flushed.
  size_t indexEntriesHeld() const;
  // Full parts that may wait in memory for their write; beyond it the oldest is dropped
  // (S3TierStats::indexItemsDropped).
  static constexpr size_t kMaxPendingParts = 8;
  // {"cache_index": {...}, "statistics": {...}, "instances": [...]} summed over every instance.
  Result<Json> globalStatistics();

  // Deletes this instance's markers older than journalRetention (at most limit of them); returns
  // how many it deleted. One DELETE each (DELETEs are not billed by AWS). A failed delete is
  // counted in journalErrors() and not retried. Called by `serve`'s s3-index loop.
  size_t pruneJournal(size_t limit = 10000);
  // Markers written by this instance and not yet pruned (at most kMaxHeldMarkers).
  size_t journalHeld() const;
  static constexpr size_t kMaxHeldMarkers = 100000;

  S3TierStats stats() const;

  // TierObserver: a Hit in any tier (memory, disk, S3, ...) is added to the entry's pending hit
  // count, written to its metadata object (hit_count, last_accessed) at a later flush
  // (writeHitCounts); other kinds are ignored. Only counts under a lock: any thread.
  void onTierEvent(const TierEvent& event) override;
  // Rewrites the metadata objects of at most hitUpdatesPerFlush entries with hits pending:
  // hit_count += the hits counted since the last write, last_accessed = the latest hit. One GET
  // and one PUT each. An entry without a metadata object at three flushes in a row (not in the
  // bucket; one flush is too early when the write is still in the outbox) loses its pending hits
  // (hitUpdatesDropped); a failed request keeps them, and those of the rest of the batch (no
  // more requests: a hung S3 costs one CACHE_S3_TIMEOUT per flush here), for the next flush. Not
  // conditional: two gateways that rewrite the same object at the same moment may lose one's
  // increment (hit_count is a lower bound; the fleet's exact hit figures are statistics.json's).
  // flushIndex() calls it; returns how many it wrote.
  size_t writeHitCounts();
  // Entries with hits waiting for writeHitCounts.
  size_t pendingHitEntries() const;
  // Recent-keys markers that could not be written (their entries were stored).
  uint64_t journalErrors() const { return journalErrors_.load(); }
  const S3Layout& layout() const { return layout_; }
  const S3TierOptions& options() const { return options_; }

 private:
  // markInvalid; with cacheId non-empty, only while the by-key pointer names that cache_id.
  Result<bool> markInvalidIf(std::string_view cacheKey, std::string_view reason,
                             std::string_view cacheId);
  Result<std::optional<EntryPtr>> lookupVia(const std::string& pointerKey,
                                            std::string_view cacheKey,
                                            std::string_view requestHash);
  // Reads pointerKey. nullopt: absent or unreadable (counted).
  Result<std::optional<Pointer>> readPointer(const std::string& pointerKey, S3Deadline deadline);
  // Deletes pointerKey if it still names cacheId. Best effort.
  void deletePointerIfNames(const std::string& pointerKey, const std::string& cacheId,
                            S3Deadline deadline);
  void recordInsert(const Entry& entry, const std::string& entryKey, uint64_t bytes);
  Result<void> flushLocked();  // caller holds flushMutex_
  // Writes full parts waiting for their write and, with open, dirty open parts. Days whose parts
  // were written are marked viewDirty. Caller holds flushMutex_.
  Result<void> writeDayParts(bool open);
  Result<void> mergeDayView(const std::string& day);
  Result<void> mergeGlobalViews();
  TimePoint now() const { return clock_->now(); }

  S3Client& client_;
  S3TierOptions options_;
  S3Layout layout_;
  const Clock* clock_;

  std::atomic<uint64_t> lookups_{0}, hits_{0}, misses_{0}, errors_{0}, inserts_{0}, erases_{0},
      bytesWritten_{0}, corruptEntries_{0}, danglingPointers_{0}, corruptPointers_{0},
      indexErrors_{0}, indexItemsDropped_{0}, journalErrors_{0};

  // Index state (mutex_); flushes are serialized by flushMutex_ and do their I/O outside mutex_.
  struct FullPart {
    int64_t number = -1;  // -1: not known yet (the day's parts not listed yet)
    std::vector<Json> items;
  };
  struct Day {
    std::map<std::string, Json> items;  // the open part: cache_id -> day item
    // The open part's number, which the next full part takes; -1 until this instance's parts of
    // the day are listed (at the next flush): then the highest number found + 1.
    int64_t next = -1;
    std::deque<FullPart> full;  // full parts not yet written, oldest first
    bool dirty = false;         // the open part changed since it was last written
    bool viewDirty = false;     // parts written since by-date/{day}.json was last rewritten
  };
  void sealOpenPart(Day& day);  // caller holds mutex_
  mutable std::mutex mutex_;
  std::map<std::string, Day> days_;
  std::string newestDay_;             // the newest day inserted: its open part stays in memory
  size_t pendingParts_ = 0;           // FullParts in days_
  Json indexDelta_ = Json::object();  // cache_index.json counts not yet flushed
  bool baseLoaded_ = false;
  Json indexBase_ = Json::object();  // cache_index.json as last written (or found at start)
  Json statsBase_ = Json::object();  // statistics.json as found at start
  TimePoint lastFlush_{};
  S3TierStats flushedStats_{};  // stats() when the last flush began (flushMutex_)
  std::mutex flushMutex_;
  std::string flushedFigures_;  // instanceFigures() at the last flush (flushMutex_)
  // Hits not yet written to metadata objects (hitMutex_), by cache_id.
  struct PendingHits {
    std::string metadataKey;
    int64_t count = 0;
    TimePoint last{};
    int misses = 0;  // flushes that found no metadata object
  };
  static constexpr int kHitAttempts = 3;
  mutable std::mutex hitMutex_;
  std::map<std::string, PendingHits> pendingHits_;
  std::string hitCursor_;  // the last cache_id written: the next batch starts after it
  std::atomic<uint64_t> hitUpdates_{0}, hitUpdatesDropped_{0};
  // This instance's markers, oldest first (journalMutex_); beyond kMaxHeldMarkers the oldest are
  // forgotten (left to a lifecycle rule).
  mutable std::mutex journalMutex_;
  std::deque<std::pair<TimePoint, std::string>> journal_;
};

}  // namespace llmcache::cache::s3
