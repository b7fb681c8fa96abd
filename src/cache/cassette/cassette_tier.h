#pragma once
// CassetteTier: the recorded folder of the record and replay modes (docs/record-replay.md). One
// pretty-printed JSON file per cache key, `entries/{name}.json` (name: the key with every
// character outside [A-Za-z0-9_-] replaced by '_'), the entry in the seed's schema
// (entryToJson), so that the folder is fit to commit and to read in a review. Unbounded: it
// never evicts. A file that does not parse is a miss, counted and kept (it is the user's,
// under version control; `llmcache cassette verify` names it), unlike the disk tier's rot.
#include <atomic>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cache/tier.h"

namespace llmcache::cache {

inline constexpr int kCassetteFormatVersion = 1;

struct CassetteTierOptions {
  std::filesystem::path dir;
  // Replay runs: every key served (or recorded, in replay-or-record) is listed in
  // `last-replay.json` (emptied when the tier opens), which `llmcache cassette prune` reads.
  bool trackUse = false;
};

// One file of the folder, as `cassette list` and the miss explainer read it.
struct CassetteFile {
  std::filesystem::path path;
  Result<Entry> entry;  // Errc::Corrupt: the file does not parse or is not an entry
};

class CassetteTier final : public CacheTier {
 public:
  // Creates the folder and its `cassette.json` (format and version) when missing. Throws
  // std::runtime_error when the folder cannot be made or holds another format version.
  explicit CassetteTier(CassetteTierOptions options);

  TierId id() const override { return TierId::Cassette; }
  [[nodiscard]] Result<std::optional<EntryPtr>> lookup(std::string_view cacheKey) override;
  [[nodiscard]] Result<void> insert(EntryPtr entry) override;
  [[nodiscard]] Result<bool> erase(std::string_view cacheKey) override;
  uint64_t storedBytes(std::string_view cacheKey) const override;

  // Every entry file of the folder, in name order (a cassette is a test suite's worth: read whole).
  std::vector<CassetteFile> files() const { return listFiles(options_.dir); }
  const std::filesystem::path& dir() const { return options_.dir; }
  uint64_t unreadable() const { return unreadable_.load(std::memory_order_relaxed); }

  // The folder's pieces, for the CLI (which reads a folder without opening a tier).
  static std::string fileName(std::string_view cacheKey);  // "{name}.json"
  static std::filesystem::path entryPath(const std::filesystem::path& dir,
                                         std::string_view cacheKey);
  static std::vector<CassetteFile> listFiles(const std::filesystem::path& dir);
  static Result<Entry> readFile(const std::filesystem::path& path);
  // The entry as the folder holds it: pretty-printed JSON (two-space indent), one member a line.
  static std::string entryText(const Entry& entry);
  // The keys `last-replay.json` lists; Errc::NotFound when there is none (no replay run yet).
  static Result<std::set<std::string>> lastReplayKeys(const std::filesystem::path& dir);

 private:
  void noteUse(std::string_view cacheKey);
  static Result<void> writeAtomically(const std::filesystem::path& path, std::string_view text);

  CassetteTierOptions options_;
  std::mutex writeMutex_;  // one writer of a file at a time (the rename keeps readers whole)
  std::mutex useMutex_;
  std::set<std::string> used_;
  std::atomic<uint64_t> unreadable_{0};
};

// Pretty-printed JSON text (two-space indent), the cassette's format; numbers as written.
std::string prettyJson(const Json& value);

}  // namespace llmcache::cache
