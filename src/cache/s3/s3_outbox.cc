#include "cache/s3/s3_outbox.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "cache/s3/s3_client.h"
#include "cache/s3/s3_layout.h"
#include "common/thread.h"

namespace llmcache::cache::s3 {
namespace {

namespace fs = std::filesystem;

Error ioError(const std::string& what) {
  return makeError(Errc::Io, "s3 outbox: " + what + ": " + std::strerror(errno));
}

void fsyncDir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// temp file beside the target, write, fsync, rename, fsync(dir): a crash leaves the whole file
// or none. Without sync, the same steps but the fsyncs: a power loss may tear the file.
Result<void> writeDurably(const fs::path& target, std::string_view bytes, bool sync) {
  std::string tmpl = target.string() + ".tmp.XXXXXX";
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return ioError("create " + tmpl);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      auto e = ioError("write " + tmpl);
      ::close(fd);
      ::unlink(tmpl.c_str());
      return e;
    }
    done += static_cast<size_t>(n);
  }
  if (sync && ::fsync(fd) != 0) {
    auto e = ioError("fsync " + tmpl);
    ::close(fd);
    ::unlink(tmpl.c_str());
    return e;
  }
  ::close(fd);
  if (::rename(tmpl.c_str(), target.c_str()) != 0) {
    auto e = ioError("rename " + tmpl);
    ::unlink(tmpl.c_str());
    return e;
  }
  if (sync) fsyncDir(target.parent_path());
  return {};
}

Result<Entry> readJournal(const fs::path& file, const CodecOptions& codec) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return makeError(Errc::Io, "s3 outbox: cannot read " + file.string());
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  return decodeEntry(bytes, codec);
}

// "00000000000000000042-{cache_id}.entry" -> 42; 0 when the name is not one of ours.
uint64_t seqOf(const std::string& name) {
  return name.size() > 21 && name[20] == '-'
             ? std::strtoull(name.substr(0, 20).c_str(), nullptr, 10)
             : 0;
}

}  // namespace

S3Outbox::S3Outbox(CacheTier& target, S3OutboxOptions options)
    : target_(target), options_(std::move(options)), rng_(std::random_device{}()) {
  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  if (ec || !fs::is_directory(options_.dir))
    throw std::runtime_error("s3 outbox: cannot use " + options_.dir.string() + ": " +
                             ec.message());
  recover();
  if (options_.workers == 0) options_.workers = 1;
  for (size_t i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { work(); });
}

S3Outbox::~S3Outbox() { stop(); }

void S3Outbox::recover() {
  std::vector<fs::path> files;
  for (const auto& item : fs::directory_iterator(options_.dir)) {
    const std::string name = item.path().filename().string();
    if (name.find(".tmp.") != std::string::npos) {
      std::error_code ec;
      fs::remove(item.path(), ec);  // a write a crash interrupted: enqueue never returned for it
    } else if (name.ends_with(".entry") && item.is_regular_file()) {
      files.push_back(item.path());
    }
  }
  std::sort(files.begin(), files.end());  // zero-padded sequence numbers: enqueue order
  for (const auto& file : files) {
    auto entry = readJournal(file, options_.codec);
    if (!entry) {
      std::error_code ec;
      fs::remove(file, ec);
      ++stats_.corruptJournal;
      continue;
    }
    seq_ = std::max(seq_, seqOf(file.filename().string()));
    // The entry is read again when its turn comes, so a long journal does not sit in memory.
    queue_.push_back(Job{file, entry->cacheKey, nullptr, false, 0});
    ++stats_.recovered;
  }
}

Result<void> S3Outbox::enqueue(EntryPtr entry) {
  if (!entry || entry->cacheKey.empty())
    return makeError(Errc::InvalidArgument, "s3 outbox: an entry with a cache_key is required");
  uint64_t seq;
  {
    std::lock_guard lock(mutex_);
    if (queue_.size() >= options_.maxPending)
      return makeError(Errc::TooLarge, "s3 outbox: " + std::to_string(queue_.size()) +
                                           " entries are waiting already");
    seq = ++seq_;
  }
  char prefix[32];
  std::snprintf(prefix, sizeof prefix, "%020llu-", static_cast<unsigned long long>(seq));
  const fs::path file = options_.dir / (prefix + sanitizeKey(entry->cacheId) + ".entry");
  if (auto r = writeDurably(file, encodeEntry(*entry, options_.codec), options_.syncEachWrite); !r)
    return r;
  {
    std::lock_guard lock(mutex_);
    // Sequence numbers are taken in order but files may finish out of order: keep the queue sorted.
    auto at = queue_.end();
    while (at != queue_.begin() && std::prev(at)->file.filename() > file.filename()) --at;
    std::string cacheKey = entry->cacheKey;
    size_t bytes = entry->approxBytes();
    if (memoryBytes_ + bytes > options_.maxMemoryBytes) {
      entry = nullptr;  // the journal file has it
      bytes = 0;
    }
    memoryBytes_ += bytes;
    queue_.insert(at, Job{file, std::move(cacheKey), std::move(entry), false, bytes});
  }
  wake_.notify_one();
  return {};
}

std::list<S3Outbox::Job>::iterator S3Outbox::nextJobLocked() {
  std::set<std::string_view> waitingBefore;
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (it->inFlight) continue;
    if (!inFlight_.contains(it->cacheKey) && !waitingBefore.contains(it->cacheKey)) return it;
    waitingBefore.insert(it->cacheKey);
  }
  return queue_.end();
}

void S3Outbox::work() {
  lowerThreadPriority();
  std::unique_lock lock(mutex_);
  for (;;) {
    if (stopping_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now < pausedUntil_) {
      wake_.wait_until(lock, pausedUntil_);
      continue;
    }
    auto job = nextJobLocked();
    if (job == queue_.end()) {
      wake_.wait(lock);
      continue;
    }
    job->inFlight = true;
    inFlight_.insert(job->cacheKey);
    EntryPtr entry = job->entry;
    const fs::path file = job->file;
    lock.unlock();

    Result<void> result;
    bool corrupt = false;
    if (!entry) {
      auto read = readJournal(file, options_.codec);
      if (read)
        entry = std::make_shared<const Entry>(std::move(*read));
      else
        corrupt = true;
    }
    if (!corrupt) result = target_.insert(entry);
    const bool done = corrupt || result || result.error().code == Errc::InvalidArgument ||
                      result.error().code == Errc::TooLarge;
    if (done) {
      std::error_code ec;
      fs::remove(file, ec);
    }

    lock.lock();
    inFlight_.erase(job->cacheKey);
    if (done) {
      if (corrupt)
        ++stats_.corruptJournal;
      else if (result)
        ++stats_.uploaded;
      else {
        ++stats_.failures;
        ++stats_.rejected;
      }
      if (!corrupt && result) consecutiveFailures_ = 0;
      memoryBytes_ -= job->bytes;
      queue_.erase(job);
      if (queue_.empty()) idle_.notify_all();
    } else {
      job->inFlight = false;
      ++stats_.failures;
      const auto delay =
          backoffDelay(consecutiveFailures_++, options_.retryBase, options_.retryMax, rng_);
      pausedUntil_ = std::max(pausedUntil_, std::chrono::steady_clock::now() + delay);
    }
    wake_.notify_all();
  }
}

bool S3Outbox::drain(std::chrono::milliseconds budget) {
  std::unique_lock lock(mutex_);
  return idle_.wait_for(lock, budget, [&] { return queue_.empty(); });
}

void S3Outbox::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
}

S3OutboxStats S3Outbox::stats() const {
  std::lock_guard lock(mutex_);
  S3OutboxStats s = stats_;
  s.pending = queue_.size();
  s.memoryBytes = memoryBytes_;
  return s;
}

}  // namespace llmcache::cache::s3
