#include "cache/disk/disk_tier.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "common/thread.h"

namespace llmcache::cache {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kEntrySuffix = ".entry";
constexpr std::string_view kTempMarker = ".tmp.";  // sanitized names hold no '.', entries one
constexpr size_t kMaxNameChars = 200;              // well under NAME_MAX (255) with suffixes
constexpr const char* kVersionFile = "disk-layout-version";

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Error ioError(const std::string& what, const fs::path& path, int err) {
  return makeError(Errc::Io,
                   "disk tier: " + what + " " + path.string() + ": " + std::strerror(err));
}

// Makes a rename or unlink in dir durable. Failures are ignored: the data itself is on disk,
// at worst the directory entry is lost in a crash, which is a miss.
void fsyncDir(const fs::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() >= 0) ::fsync(fd.get());
}

// The fan-out folder: the name's last two characters (a cache_key ends in hex, so keys spread
// evenly), '_'-padded for one-character names.
std::string fanOf(const std::string& name) {
  std::string fan = "__";
  for (size_t i = 0; i < 2 && i < name.size(); ++i) fan[1 - i] = name[name.size() - 1 - i];
  return fan;
}

bool isTempName(const std::string& file) { return file.find(kTempMarker) != std::string::npos; }

}  // namespace

std::string DiskTier::sanitizeKey(std::string_view key) {
  std::string name(key);
  for (char& c : name) {
    const bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-';
    if (!keep) c = '_';
  }
  if (name.empty()) name.push_back('_');
  if (name.size() > kMaxNameChars) {
    // Keep the tail: a cache_key ends in its hash, which is what tells keys apart.
    char crc[9];
    std::snprintf(
        crc, sizeof crc, "%08lx",
        crc32_z(0L, reinterpret_cast<const Bytef*>(key.data()), key.size()) & 0xffffffffUL);
    std::string shortened(name, 0, kMaxNameChars - 32 - 10);
    shortened.append("_").append(crc).append("_").append(name, name.size() - 32, 32);
    name = std::move(shortened);
  }
  return name;
}

fs::path DiskTier::pathOfName(const fs::path& entriesDir, const std::string& name) {
  return entriesDir / fanOf(name) / (name + std::string(kEntrySuffix));
}

fs::path DiskTier::entryPath(const fs::path& dir, std::string_view cacheKey) {
  return pathOfName(dir / "entries", sanitizeKey(cacheKey));
}

DiskTier::DiskTier(DiskTierOptions options)
    : options_(std::move(options)), policy_(makePolicy(options_.policy)) {
  if (options_.dir.empty()) throw std::runtime_error("disk tier: no directory configured");
  entriesDir_ = options_.dir / "entries";
  fs::create_directories(entriesDir_);  // throws filesystem_error, a runtime_error

  const fs::path versionPath = options_.dir / kVersionFile;
  if (fs::exists(versionPath)) {
    std::ifstream in(versionPath);
    int version = 0;
    if (!(in >> version) || version != kDiskLayoutVersion)
      throw std::runtime_error("disk tier: " + versionPath.string() +
                               " names a layout this build " + "does not read (expected " +
                               std::to_string(kDiskLayoutVersion) + ")");
  } else {
    std::ofstream out(versionPath);
    out << kDiskLayoutVersion << "\n";
    if (!out.flush()) throw std::runtime_error("disk tier: cannot write " + versionPath.string());
  }
  openedAt_ = ::time(nullptr);
  if (!options_.scanInBackground) {
    auto found = walk();
    merge(found);
    return;
  }
  scanThread_ = std::thread([this] {
    lowerThreadPriority();
    auto found = walk();
    if (stopping_) return;
    if (options_.beforeScanMerge) options_.beforeScanMerge();
    merge(found);
  });
}

DiskTier::~DiskTier() {
  stopping_ = true;
  if (scanThread_.joinable()) scanThread_.join();
}

std::vector<DiskTier::Found> DiskTier::walk() {
  std::vector<Found> found;
  std::error_code ec;
  for (const auto& fan : fs::directory_iterator(entriesDir_, ec)) {
    if (stopping_) break;
    if (!fan.is_directory(ec)) continue;
    const std::string fanName = fan.path().filename().string();
    std::error_code ec2;
    for (const auto& file : fs::directory_iterator(fan.path(), ec2)) {
      const std::string fileName = file.path().filename().string();
      if (isTempName(fileName)) {
        // A write that never reached its rename. In a background count, our own writes are
        // running too: only temp files from before this open go (with 2 s of margin for the
        // file system's coarse timestamps; a younger leftover goes at the next start).
        struct stat st {};
        const bool ours = options_.scanInBackground && ::stat(file.path().c_str(), &st) == 0 &&
                          st.st_mtim.tv_sec >= openedAt_ - 2;
        std::error_code ignored;
        if (!ours) fs::remove(file.path(), ignored);
        continue;
      }
      if (fileName.size() <= kEntrySuffix.size() || !fileName.ends_with(kEntrySuffix)) continue;
      std::string name = fileName.substr(0, fileName.size() - kEntrySuffix.size());
      // A file in the wrong fan-out folder could never be looked up; leave it alone.
      if (fanOf(name) != fanName || sanitizeKey(name) != name) continue;
      struct stat st {};
      if (::stat(file.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      found.push_back({st.st_mtim, std::move(name), static_cast<uint64_t>(st.st_size)});
    }
  }
  // Oldest first; equal mtimes (coarse clocks) fall back to name order so the result is stable.
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) {
    if (a.mtime.tv_sec != b.mtime.tv_sec) return a.mtime.tv_sec < b.mtime.tv_sec;
    if (a.mtime.tv_nsec != b.mtime.tv_nsec) return a.mtime.tv_nsec < b.mtime.tv_nsec;
    return a.name < b.name;
  });
  return found;
}

void DiskTier::merge(std::vector<Found>& found) {
  // Newest first, each to the back: what was counted while the walk ran (inserts, direct hits)
  // is more recent and stays in front. In chunks, so lookups wait for the lock ~1 ms at most.
  constexpr size_t kChunk = 4096;
  size_t i = found.size();
  while (i > 0) {
    std::lock_guard lock(mutex_);
    for (size_t k = 0; k < kChunk && i > 0; ++k) {
      Found& f = found[--i];
      if (index_.contains(f.name) || erasedDuringScan_.contains(f.name)) continue;
      addLocked(Item{f.name, f.bytes, {}}, 0, /*cold=*/true);
    }
  }
  std::lock_guard lock(mutex_);
  erasedDuringScan_.clear();
  scanned_ = true;
  evictLocked();
}

uint32_t DiskTier::addLocked(Item item, double cost, bool cold) {
  uint32_t id;
  if (!freeSlots_.empty()) {
    id = freeSlots_.back();
    freeSlots_.pop_back();
  } else {
    id = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  bytes_ += item.bytes;
  policy_->onInsert(id, item.bytes, cost, cold);
  index_.emplace(item.name, id);
  slots_[id] = std::move(item);
  return id;
}

void DiskTier::dropLocked(const std::string& name) {
  if (!scanned_) erasedDuringScan_.insert(name);  // the walk may have seen its file
  auto it = index_.find(name);
  if (it == index_.end()) return;
  const uint32_t id = it->second;
  bytes_ -= slots_[id].bytes;
  policy_->onRemove(id);
  slots_[id] = Item{};
  freeSlots_.push_back(id);
  index_.erase(it);
}

void DiskTier::evictLocked(std::vector<std::string>* evicted, uint32_t spare) {
  if (!scanned_) return;
  while (!index_.empty() && (index_.size() > options_.maxEntries || bytes_ > options_.maxBytes)) {
    if (index_.size() == 1 && index_.begin()->second == spare) break;
    const Item& victim = slots_[policy_->victim(spare)];
    const std::string name = victim.name;
    if (evicted) evicted->push_back(victim.key.empty() ? name : victim.key);
    ::unlink(pathOfName(name).c_str());  // ENOENT is fine: gone is what we want
    dropLocked(name);
    evictions_.fetch_add(1, std::memory_order_relaxed);
  }
}

Result<std::optional<EntryPtr>> DiskTier::lookup(std::string_view cacheKey) {
  return read(cacheKey, /*use=*/true);
}

Result<std::optional<EntryPtr>> DiskTier::peek(std::string_view cacheKey) {
  return read(cacheKey, /*use=*/false);
}

Result<std::optional<EntryPtr>> DiskTier::read(std::string_view cacheKey, bool use) {
  const std::string name = sanitizeKey(cacheKey);
  const fs::path path = pathOfName(name);
  bool counted = true;
  bool learnCost = false;
  {
    std::lock_guard lock(mutex_);
    auto it = index_.find(name);
    if (it != index_.end()) {
      // A file counted at open is told to the policy as a use once its cost is known (below).
      if (slots_[it->second].costKnown) {
        if (use) policy_->onHit(it->second);
      } else {
        learnCost = use;  // the policy learns it with a use (onUpdate is one)
      }
    } else if (scanned_) {
      return std::optional<EntryPtr>{};
    } else {
      counted = false;  // the open-time count has not reached it yet: the file decides
    }
  }

  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int err = errno;
    if (err != ENOENT) return ioError("open", path, err);
    if (!counted) return std::optional<EntryPtr>{};
    // Removed behind our back (by hand, or an erase that raced us). Forget it if still gone.
    std::lock_guard lock(mutex_);
    if (::access(path.c_str(), F_OK) != 0) dropLocked(name);
    return std::optional<EntryPtr>{};
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ioError("stat", path, errno);
  // The size comes from the file system, not from the file's own header: a hostile header
  // cannot make us allocate more than the file holds.
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::read(fd.get(), bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ioError("read", path, errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  bytes.resize(got);

  auto decoded = decodeEntry(bytes, options_.codec);
  if (!decoded) {
    corrupt_.fetch_add(1, std::memory_order_relaxed);
    // Delete only the file we read: a concurrent insert may have renamed a good one in since.
    std::lock_guard lock(mutex_);
    struct stat now {};
    if (::stat(path.c_str(), &now) == 0 && now.st_ino == st.st_ino && now.st_dev == st.st_dev) {
      ::unlink(path.c_str());
      dropLocked(name);
    }
    return std::optional<EntryPtr>{};
  }
  if (decoded->cacheKey != cacheKey) return std::optional<EntryPtr>{};  // sanitization collision
  // Record the access in the file's mtime so that a restart rebuilds the same LRU order.
  if (use) ::futimens(fd.get(), nullptr);
  if (learnCost) {
    std::lock_guard lock(mutex_);
    if (auto it = index_.find(name); it != index_.end() && !slots_[it->second].costKnown) {
      Item& item = slots_[it->second];
      item.costKnown = true;
      policy_->onUpdate(it->second, item.bytes, decoded->costTotal);
    }
  }
  if (!counted && use) {  // else the open-time count adds it
    std::lock_guard lock(mutex_);
    if (!index_.contains(name))
      addLocked(Item{name, static_cast<uint64_t>(st.st_size), std::string(cacheKey), true},
                decoded->costTotal, /*cold=*/false);
  }
  return std::optional<EntryPtr>{std::make_shared<const Entry>(std::move(*decoded))};
}

Result<void> DiskTier::insert(EntryPtr entry) {
  if (!entry) return makeError(Errc::InvalidArgument, "disk tier: null entry");
  if (entry->cacheKey.empty())
    return makeError(Errc::InvalidArgument, "disk tier: empty cache_key");
  const std::string bytes = encodeEntry(*entry, options_.codec);
  if (bytes.size() > options_.maxBytes || options_.maxEntries == 0)
    return makeError(Errc::TooLarge, "disk tier: entry of " + std::to_string(bytes.size()) +
                                         " bytes exceeds the bound of " +
                                         std::to_string(options_.maxBytes));

  const std::string name = sanitizeKey(entry->cacheKey);
  const fs::path path = pathOfName(name);
  const fs::path fanDir = path.parent_path();
  std::error_code ec;
  const bool sync = options_.syncEachWrite;
  if (fs::create_directories(fanDir, ec) && sync) {
    fsyncDir(entriesDir_);
    fsyncs_.fetch_add(1, std::memory_order_relaxed);
  }
  if (ec) return ioError("mkdir", fanDir, ec.value());

  std::string tmpl = path.string() + std::string(kTempMarker) + "XXXXXX";
  Fd fd(::mkstemp(tmpl.data()));  // unique per writer: concurrent inserts of one key never collide
  if (fd.get() < 0) return ioError("create temp file in", fanDir, errno);
  auto fail = [&](const char* what) {
    const int err = errno;
    ::unlink(tmpl.c_str());
    return Result<void>(ioError(what, tmpl, err));
  };
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("write");
    done += static_cast<size_t>(n);
  }
  if (sync) {
    if (::fsync(fd.get()) != 0) return fail("fsync");
    fsyncs_.fetch_add(1, std::memory_order_relaxed);
  }
  if (::close(fd.release()) != 0) return fail("close");

  std::vector<std::string> evicted;
  {
    std::lock_guard lock(mutex_);
    if (::rename(tmpl.c_str(), path.c_str()) != 0) return fail("rename");
    uint32_t id;
    if (auto it = index_.find(name); it != index_.end()) {
      id = it->second;
      Item& item = slots_[id];
      bytes_ -= item.bytes;
      item.bytes = bytes.size();
      item.key = entry->cacheKey;
      item.costKnown = true;
      bytes_ += bytes.size();
      policy_->onUpdate(id, bytes.size(), entry->costTotal);
    } else {
      id = addLocked(Item{name, bytes.size(), entry->cacheKey, true}, entry->costTotal, false);
    }
    // Never the new file: it alone fits both bounds.
    evictLocked(onEvict_ ? &evicted : nullptr, id);
  }
  for (const std::string& key : evicted) onEvict_(key);
  if (sync) {
    fsyncDir(fanDir);
    fsyncs_.fetch_add(1, std::memory_order_relaxed);
  }
  return {};
}

uint64_t DiskTier::storedBytes(std::string_view cacheKey) const {
  const std::string name = sanitizeKey(cacheKey);
  std::lock_guard lock(mutex_);
  auto it = index_.find(name);
  return it == index_.end() ? 0 : slots_[it->second].bytes;
}

Result<bool> DiskTier::erase(std::string_view cacheKey) {
  const std::string name = sanitizeKey(cacheKey);
  const fs::path path = pathOfName(name);
  std::lock_guard lock(mutex_);
  if (!index_.contains(name)) {
    if (scanned_) return false;
    // Not counted yet, but its file may be there: remove it, and keep the count from adding it.
    erasedDuringScan_.insert(name);
    if (::unlink(path.c_str()) == 0) return true;
    if (errno == ENOENT) return false;
    return ioError("unlink", path, errno);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ioError("unlink", path, errno);
  dropLocked(name);
  return true;
}

size_t DiskTier::entryCount() const {
  std::lock_guard lock(mutex_);
  return index_.size();
}

size_t DiskTier::byteCount() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

}  // namespace llmcache::cache
