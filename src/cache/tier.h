#pragma once
// CacheTier: the contract every storage tier (memory, disk, S3) fulfils and that
// tier_conformance.h tests. Tiers store whole entries under their cache_key.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/entry.h"
#include "common/result.h"

namespace llmcache::cache {

using EntryPtr = std::shared_ptr<const Entry>;

// The tiers, fastest first. The numbering is persistent: an index row's `tiers` column holds
// tierBit() of each tier holding the entry (docs/index-schema.md). Cassette: the recorded folder
// of the record and replay modes (docs/record-replay.md), the only tier in those modes.
enum class TierId : uint8_t { Memory = 0, Disk = 1, S3 = 2, Redis = 3, Cassette = 4 };
inline constexpr size_t kTierCount = 5;

// "memory", "disk", "s3", "redis", "cassette": the x-llmcache-layer value and the metrics label.
std::string_view tierName(TierId id);
std::optional<TierId> parseTierId(std::string_view name);
constexpr unsigned tierBit(TierId id) { return 1u << static_cast<unsigned>(id); }

class CacheTier {
 public:
  virtual ~CacheTier() = default;

  virtual TierId id() const = 0;
  std::string_view name() const { return tierName(id()); }

  // The entry stored under cacheKey.
  //   value EntryPtr     : found, decoded, checksum verified (without `request` where
  //                        keepsRequest() is false). The caller still checks
  //                        request_hash and expiry (TieredCache does).
  //   value std::nullopt : a miss. Also what a corrupt or truncated stored entry becomes; the
  //                        tier deletes such an entry before answering.
  //   error              : the tier itself is sick (I/O error, unreachable). The caller counts it
  //                        and treats it as a miss; it never fails a client request.
  // Thread-safe; may be called from any thread.
  [[nodiscard]] virtual Result<std::optional<EntryPtr>> lookup(std::string_view cacheKey) = 0;

  // Stores entry under entry->cacheKey, replacing any entry there. May evict others to stay
  // within the tier's bounds. A concurrent lookup sees either the old or the new entry whole,
  // never a mix. Error: nothing was stored (the old entry, if any, may remain).
  [[nodiscard]] virtual Result<void> insert(EntryPtr entry) = 0;

  // Whether a found entry carries its `request` text. The memory tier drops it (a hit never reads
  // it; keeping it cost as much memory as the answer); disk and S3 keep the whole entry.
  virtual bool keepsRequest() const { return true; }

  // Removes the entry under cacheKey. true: one was removed; false: there was none.
  [[nodiscard]] virtual Result<bool> erase(std::string_view cacheKey) = 0;

  // Told the cache key of every entry the tier drops to stay within its bounds (not of erase()
  // or a replacement), on the thread that inserted, after the tier's own lock is released; it
  // must only queue or post. A bounded tier calls it; an unbounded one never does. Set before
  // the tier is used.
  using EvictionListener = std::function<void(std::string_view cacheKey)>;
  // The bytes the tier holds for the entry under cacheKey as stored (encoded, maybe compressed
  // and sealed); 0 when there is none or the tier does not say. For the index's size_stored.
  virtual uint64_t storedBytes(std::string_view cacheKey) const {
    (void)cacheKey;
    return 0;
  }
  virtual void setEvictionListener(EvictionListener listener) { (void)listener; }
};

// A tier that several gateways share (S3): it holds entries this gateway's index never saw (another
// gateway stored them), so an invalidation searches the tier itself to reach them (bucket-wide),
// and marks what it finds invalid there.
class SharedTier {
 public:
  virtual ~SharedTier() = default;

  struct Search {
    // Non-empty: only this model's entries are read (for S3, one model folder is listed: the cost
    // grows with that model's entries). Empty: every entry of the tier is read.
    std::string model;
    // Whether an entry is selected. It sees the entry without its bodies (request, response and
    // SSE events are empty). Null: every entry read.
    std::function<bool(const Entry&)> select;
    std::string reason;      // recorded in the marks
    bool dryRun = false;     // count only
    size_t limit = 1000000;  // at most this many entries read
    // Where to begin: empty, at the start; else after this position (a Marked::resumeAfter).
    std::string startAfter;
    // When set, the search stops at this instant (between entries) and says where it stopped.
    std::optional<std::chrono::steady_clock::time_point> deadline;
  };
  struct Marked {
    size_t scanned = 0;  // entries read (not already marked)
    size_t matched = 0;  // selected and still current (their key's pointer names them)
    size_t marked = 0;   // marked invalid now (0 in a dry run)
    std::vector<std::string> cacheIds;  // the matched ones
    // Non-empty: the deadline (or the limit) stopped the search before the end; a search with
    // this as its startAfter goes on from there. Empty: the whole tier was searched.
    std::string resumeAfter;
  };
  // Selects the current, valid entries of the tier as above and marks each invalid (unless
  // dryRun). Errors: the tier could not be listed or read; marks written before stay.
  virtual Result<Marked> markMatching(const Search& search) = 0;
};

}  // namespace llmcache::cache
