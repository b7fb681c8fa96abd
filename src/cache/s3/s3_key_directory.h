#pragma once
// S3KeyDirectory: which cache keys the bucket holds, known locally, so that a miss does not
// wait for S3. Without it every miss would first ask S3 (a round trip, 200 ms when S3 is slow)
// before going upstream. The directory is the set of by-key pointer names, listed from S3 in
// the background every `refresh` interval and updated at once by this instance's own writes.
// A key another instance stored since the last listing would be a local miss until the next
// one (the cost of never letting S3 slow a response), so a second loop lists the recent-keys
// journal (S3Tier writes a marker per insert, cache-index/recent-keys/{ms}/...) every
// `journal.poll` (1 s in `serve`), only the markers of the last `journal.window` (S3's
// start-after), and adds the keys they name: another gateway's entry is a hit here ~1 s after
// its upload. Neither loop ever runs on a request's path.
//
// Memory: the directory grows with the bucket (one name per stored key), so it holds each name
// as a 64-bit fingerprint, not as a string: 8 bytes a key in the sorted vector of the last
// listing (plus the keys added since, in a small hash set), against ~120 bytes a key as a set of
// strings (a 10-minute soak with 10% new prompts grew ~1.4 MiB a minute by that alone). Two
// names sharing a fingerprint (about 1 in 3.6e7 for a million keys) only cost a look-up in S3 that
// misses: mayContain may say true for an absent key, never false for a present one.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "cache/s3/s3_client.h"
#include "cache/s3/s3_layout.h"
#include "cache/tiered_cache.h"
#include "common/clock.h"

namespace llmcache::cache::s3 {

struct S3KeyJournalOptions {
  // How often the recent-keys journal is listed; 0: never (full listings only).
  std::chrono::milliseconds poll{0};
  // Markers named (by their writer's clock) at most this long before this clock's now are listed.
  // It covers the upload of a marker (one CACHE_S3_TIMEOUT at most) and clock differences between
  // gateways; a marker older than that at its first listing is left to the full listing.
  std::chrono::milliseconds window{30000};
  // A poll reads at most this many pages (1,000 markers each); beyond, it stops (counted in
  // journalErrors) and the full listing finds the rest.
  size_t maxPages = 10;
  const Clock* clock = nullptr;  // nullptr: Clock::system()
};

class S3KeyDirectory final : public KeyFilter {
 public:
  // Starts the background listing thread (first listing at once) and, with journal.poll > 0,
  // the journal's (first poll at once).
  S3KeyDirectory(S3Client& client, S3Layout layout, std::chrono::milliseconds refresh,
                 S3KeyJournalOptions journal = {});
  ~S3KeyDirectory();
  S3KeyDirectory(const S3KeyDirectory&) = delete;
  S3KeyDirectory& operator=(const S3KeyDirectory&) = delete;

  // True when the bucket may hold an entry for cacheKey (its pointer was listed or written
  // here). Before the first listing succeeded: false (S3 unknown or down: go upstream).
  bool mayContain(std::string_view cacheKey) const override;
  void add(std::string_view cacheKey) override;
  void remove(std::string_view cacheKey);

  // Lists the bucket's by-key pointers now and replaces the set. Error: the set is kept.
  Result<size_t> refresh();
  // Lists the journal's markers of the last journal.window now and adds the keys they name.
  // Returns how many markers were listed. Error: nothing added from the failed page on.
  Result<size_t> pollJournal();
  // The fingerprint of a pointer name (sanitizeKey(cache_key)).
  static uint64_t fingerprint(std::string_view name);

  bool ready() const { return ready_.load(); }
  size_t size() const;
  uint64_t refreshErrors() const { return refreshErrors_.load(); }
  uint64_t refreshes() const { return refreshes_.load(); }  // successful full listings
  uint64_t journalErrors() const { return journalErrors_.load(); }
  uint64_t journalPolls() const { return journalPolls_.load(); }  // successful ones

 private:
  void loop();
  void journalLoop();

  S3Client& client_;
  S3Layout layout_;
  std::chrono::milliseconds interval_;
  S3KeyJournalOptions journal_;
  mutable std::shared_mutex mutex_;
  // Fingerprints (fingerprint(sanitizeKey(cache_key))): the last full listing's, sorted, and the
  // keys added (written here or named by the journal) since that listing began.
  std::vector<uint64_t> listed_;
  std::unordered_set<uint64_t> added_;
  std::atomic<bool> ready_{false};
  std::atomic<uint64_t> refreshErrors_{0};
  std::atomic<uint64_t> refreshes_{0};
  std::atomic<uint64_t> journalErrors_{0};
  std::atomic<uint64_t> journalPolls_{0};
  std::mutex stopMutex_;
  std::condition_variable stopCv_;
  bool stopping_ = false;
  std::thread thread_;
  std::thread journalThread_;  // only with journal.poll > 0
};

}  // namespace llmcache::cache::s3
