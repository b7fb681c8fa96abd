#pragma once
// DiskTier: the second tier, one checksummed entry file per key under a directory
// (docs/disk-layout.md), bounded by entries and bytes, evicting by a policy (cache/eviction.h).
#include <atomic>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cache/codec.h"
#include "cache/eviction.h"
#include "cache/tier.h"

namespace llmcache::cache {

inline constexpr int kDiskLayoutVersion = 1;

struct DiskTierOptions {
  std::filesystem::path dir;  // CACHE_DIR; created when missing
  size_t maxEntries = 1000;
  size_t maxBytes = size_t{1} << 30;   // counted in encoded file bytes
  CodecOptions codec = {};             // CACHE_COMPRESSION
  PolicyKind policy = kDefaultPolicy;  // CACHE_DISK_POLICY (docs/eviction.md)
  // Count the files already on disk on a background thread instead of in the constructor, so a
  // large cache serves at once (bench/disk_bench: counting 1,000,000 files took seconds). Until
  // the count is done a lookup of a key not yet counted reads its file directly, inserts and
  // erases take effect at once, and the bounds are enforced when the count completes. `serve`
  // turns it on; tools and most tests keep the simpler synchronous open.
  bool scanInBackground = false;
  // fsync each entry file and its folder before insert() returns (CACHE_DISK_SYNC=always).
  // false (interval, never): the page cache writes them back, or the gateway's periodic
  // syncfs; a file a power loss tore fails its CRC32 when read, and is a miss. Erases are
  // never synced one by one (docs/disk-layout.md, Durability).
  bool syncEachWrite = true;
  // Tests: runs on the scan thread after the directory walk, before what it found is counted.
  std::function<void()> beforeScanMerge = {};
};

// Files live at {dir}/entries/{last two chars of name}/{name}.entry, name = sanitizeKey(key).
// Writes go to a unique temp file beside the target, fsync, rename, fsync(dir): a crash leaves
// the old entry or the new one, never a torn file (without syncEachWrite, a power loss may leave
// a torn file, which its CRC32 rejects). Temp files a crash left behind are removed
// when the tier opens.
//
// The policy's state lives in memory. On open it is rebuilt from the files' modification times
// (oldest first to be evicted); a hit touches the file's mtime so that recency survives a
// restart. What does not survive: hit counts and visited bits, and the cost of a file counted at
// open (the policy learns it from the entry at the file's first hit).
//
// One process per directory: opening removes every temp file, including another live
// process's. Two instances in one process on one directory are likewise unsupported (their
// bounds and LRU would not see each other's writes).
//
// Thread-safe. Encoding, writing and fsyncing a file and reading and decoding one happen
// outside the lock; rename and unlink happen inside it, so the index and the directory agree.
class DiskTier final : public CacheTier {
 public:
  // Creates the directories, checks the layout version (refusing another), removes leftover
  // temp files and rebuilds the LRU, evicting if the bounds shrank. Throws std::runtime_error
  // when the directory is unusable: startup only.
  explicit DiskTier(DiskTierOptions options);
  ~DiskTier() override;
  DiskTier(const DiskTier&) = delete;
  DiskTier& operator=(const DiskTier&) = delete;

  // Whether the files found at open have all been counted (always true after a synchronous open).
  bool scanned() const { return scanned_.load(); }

  TierId id() const override { return TierId::Disk; }
  // Errors: Io when the file exists but cannot be read. A corrupt or truncated file is
  // deleted and counted (corruptEntries) and is a miss. A file whose stored cache_key differs
  // (two keys that sanitize alike) is a miss and stays.
  [[nodiscard]] Result<std::optional<EntryPtr>> lookup(std::string_view cacheKey) override;
  // The same read for a reader that is not a client asking for the answer (the miss explainer,
  // the semantic index's rebuild, `llmcache cassette`): not a use, so the eviction policy and the
  // file's mtime are left as they were. Before, those reads counted as hits and turned the
  // policy's order over (docs/eviction.md, "Reads that are not uses").
  [[nodiscard]] Result<std::optional<EntryPtr>> peek(std::string_view cacheKey);
  // Errors: InvalidArgument (null entry, empty key), TooLarge (the encoded entry alone exceeds
  // maxBytes), Io (write, fsync or rename failed; the old entry remains).
  [[nodiscard]] Result<void> insert(EntryPtr entry) override;
  [[nodiscard]] Result<bool> erase(std::string_view cacheKey) override;
  uint64_t storedBytes(std::string_view cacheKey) const override;
  void setEvictionListener(EvictionListener listener) override { onEvict_ = std::move(listener); }

  size_t entryCount() const;
  size_t byteCount() const;
  uint64_t corruptEntries() const { return corrupt_.load(std::memory_order_relaxed); }
  uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }
  // fsync calls made by insert() (files and folders): 0 without syncEachWrite.
  uint64_t fsyncs() const { return fsyncs_.load(std::memory_order_relaxed); }

  // Where cacheKey's entry lives (whether or not it exists). For tests and `llmcache verify`.
  std::filesystem::path pathFor(std::string_view cacheKey) const {
    return entryPath(options_.dir, cacheKey);
  }
  static std::filesystem::path entryPath(const std::filesystem::path& dir,
                                         std::string_view cacheKey);
  // The file name stem for cacheKey: [A-Za-z0-9_-] kept, anything else '_'; never empty, never
  // longer than 200 characters (longer keys keep a prefix, a CRC32 of the key and their tail).
  static std::string sanitizeKey(std::string_view cacheKey);

 private:
  struct Item {
    std::string name;
    uint64_t bytes;
    std::string key;         // its cache_key, when known (inserted or read since the start)
    bool costKnown = false;  // the policy has its cost (inserted or read since the start)
  };
  static std::filesystem::path pathOfName(const std::filesystem::path& entriesDir,
                                          const std::string& name);
  std::filesystem::path pathOfName(const std::string& name) const {
    return pathOfName(entriesDir_, name);
  }
  struct Found {
    struct timespec mtime;
    std::string name;
    uint64_t bytes;
  };
  // The entry files under entriesDir_, oldest first (removes leftover temp files on the way).
  Result<std::optional<EntryPtr>> read(std::string_view cacheKey, bool use);
  std::vector<Found> walk();
  // Counts what walk() found that is not counted yet, then enforces the bounds.
  void merge(std::vector<Found>& found);
  // Caller holds mutex_. Unlinks the policy's victims until within bounds (once scanned: a
  // partial count would pick the wrong victims), never slot `spare` (the file just written).
  // The evicted entries' cache keys (or file names, for entries known only by their file) are
  // appended to `evicted` when given.
  void evictLocked(std::vector<std::string>* evicted = nullptr,
                   uint32_t spare = EvictionPolicy::kNone);
  // Caller holds mutex_. Forgets name (the file is already gone or being removed).
  void dropLocked(const std::string& name);
  // Caller holds mutex_. A slot for a new item, told to the policy.
  uint32_t addLocked(Item item, double cost, bool cold);

  DiskTierOptions options_;
  std::filesystem::path entriesDir_;

  mutable std::mutex mutex_;
  std::deque<Item> slots_;  // by slot id (the policy's ids); a free slot has an empty name
  std::vector<uint32_t> freeSlots_;
  std::unordered_map<std::string, uint32_t> index_;  // file name -> slot
  std::unique_ptr<EvictionPolicy> policy_;
  uint64_t bytes_ = 0;

  std::atomic<uint64_t> corrupt_{0};
  std::atomic<uint64_t> evictions_{0};
  std::atomic<uint64_t> fsyncs_{0};
  EvictionListener onEvict_;

  time_t openedAt_ = 0;                               // wall-clock seconds when the tier opened
  std::atomic<bool> scanned_{false};                  // written under mutex_
  std::atomic<bool> stopping_{false};                 // the destructor asks the scan to end early
  std::unordered_set<std::string> erasedDuringScan_;  // under mutex_: merge must not count these
  std::thread scanThread_;
};

}  // namespace llmcache::cache
