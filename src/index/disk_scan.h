#pragma once
// Rebuilding the index from a disk-tier directory (docs/disk-layout.md), for
// `llmcache verify --repair` and for an index found damaged at start-up. Reads the files
// directly with cache::decodeEntry: no DiskTier is needed (nor wanted: opening one deletes temp
// files and may evict), so it can run beside a stopped gateway's directory.
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "cache/codec.h"
#include "common/result.h"
#include "index/index.h"

namespace llmcache::index {

struct DiskScanReport {
  size_t files = 0;       // *.entry files seen
  size_t entries = 0;     // decoded and fed
  size_t corrupt = 0;     // failed to decode (left in place: the disk tier deletes them on lookup)
  size_t unreadable = 0;  // could not be read (permissions, vanished during the scan)
  std::vector<std::string> problems;  // "path: reason", the first 100
};

// Feeds every decodable {dir}/entries/*/*.entry to sink with tiers = kTierDisk, the file's size
// as sizeStored and the entry's JSON size as sizeRaw. Temp files (*.entry.tmp.*) are skipped.
// Errors: NotFound when dir has no entries/ folder; Corrupt when dir/disk-layout-version names a
// layout other than cache::kDiskLayoutVersion (1); Io when a folder cannot be listed.
// codec: the disk tier's (its key, with CACHE_ENCRYPTION: sealed files are corrupt without it).
Result<DiskScanReport> scanDiskTier(const std::filesystem::path& dir, const EntrySink& sink,
                                    const cache::CodecOptions& codec = {});

// index.rebuildFrom(scanDiskTier(dir, ...)): replaces the index's rows with the disk tier's
// entries. The report says what was skipped.
Result<DiskScanReport> rebuildFromDiskTier(Index& index, const std::filesystem::path& dir,
                                           const cache::CodecOptions& codec = {});

}  // namespace llmcache::index
