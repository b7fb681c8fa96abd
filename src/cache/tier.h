#pragma once
// CacheTier: the contract every storage tier (memory, disk, S3) fulfils and that
// tier_conformance.h tests. Tiers store whole entries under their cache_key.
#include <memory>
#include <optional>
#include <string_view>

#include "cache/entry.h"
#include "common/result.h"

namespace llmcache::cache {

using EntryPtr = std::shared_ptr<const Entry>;

class CacheTier {
 public:
  virtual ~CacheTier() = default;

  // "memory", "disk", "s3": the x-llmcache-layer value of a hit found here.
  virtual std::string_view name() const = 0;

  // The entry stored under cacheKey.
  //   value EntryPtr     : found, decoded, checksum verified (without `request` where
  //                        keepsRequest() is false). The caller still checks
  //                        request_hash and expiry (TierChain does).
  //   value std::nullopt : a miss. Also what a corrupt or truncated stored entry becomes; the
  //                        tier deletes such an entry before answering.
  //   error              : the tier itself is sick (I/O error, unreachable). The caller counts it
  //                        and treats it as a miss; it never fails a client request.
  // Thread-safe; may be called from any thread.
  virtual Result<std::optional<EntryPtr>> lookup(std::string_view cacheKey) = 0;

  // Stores entry under entry->cacheKey, replacing any entry there. May evict others to stay
  // within the tier's bounds. A concurrent lookup sees either the old or the new entry whole,
  // never a mix. Error: nothing was stored (the old entry, if any, may remain).
  virtual Result<void> insert(EntryPtr entry) = 0;

  // Whether a found entry carries its `request` text. The memory tier drops it (a hit never reads
  // it; keeping it cost as much memory as the answer); disk and S3 keep the whole entry.
  virtual bool keepsRequest() const { return true; }

  // Removes the entry under cacheKey. true: one was removed; false: there was none.
  virtual Result<bool> erase(std::string_view cacheKey) = 0;
};

}  // namespace llmcache::cache
