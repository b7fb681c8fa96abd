#include "analytics/recorder.h"

#include <algorithm>

#include "common/thread.h"

namespace llmcache::analytics {

void EventRecorder::Queued::fill(const Event& e) {
  timeMs = toUnixMillis(e.time);
  outcome = e.outcome;
  latencyMs = e.latencyMs;
  tokensIn = e.tokensIn;
  tokensOut = e.tokensOut;
  cost = e.cost;
  costSaved = e.costSaved;
  latencySavedMs = e.latencySavedMs;
  promptSimhash = e.promptSimhash;
  seedHash = e.seedHash;
  semantic = e.semantic;
  // The preview last: the merge compares the fields before it (kMergeFields).
  const std::array<std::string_view, kFields> fields = {
      e.cacheKey,   e.model,          e.platform, e.provider,     e.endpoint,     e.tier,
      e.callerHash, e.promptCategory, e.tenant,   e.keyNamespace, e.promptPreview};
  size_t total = 0;
  for (size_t i = 0; i < kFields; ++i) total += length[i] = static_cast<uint32_t>(fields[i].size());
  overflow.clear();
  char* out = text.data();
  if (total > kInline) {
    overflow.resize(total);
    out = overflow.data();
  }
  for (std::string_view f : fields) out = std::copy(f.begin(), f.end(), out);
}

std::string_view EventRecorder::Queued::field(size_t i) const {
  const char* base = overflow.empty() ? text.data() : overflow.data();
  size_t offset = 0;
  for (size_t j = 0; j < i; ++j) offset += length[j];
  return {base + offset, length[i]};
}

EventRecorder::Queued& EventRecorder::Slots::emplace_back() {
  if (size_ == chunks_.size() * kChunk) chunks_.push_back(std::make_unique<Queued[]>(kChunk));
  Queued& slot = (*this)[size_];
  ++size_;
  return slot;
}

void EventRecorder::Queued::toRow(index::EventRow& r) const {
  const Queued& q = *this;
  r.timeMs = q.timeMs;
  r.requests = 1;
  r.cacheKey = q.field(0);
  r.model = q.field(1);
  r.platform = q.field(2);
  r.provider = q.field(3);
  r.endpoint = q.field(4);
  r.outcome = outcomeName(q.outcome);  // the events table's persistent spelling
  r.tier = q.field(5);
  r.latencyMs = q.latencyMs;
  r.tokensIn = q.tokensIn;
  r.tokensOut = q.tokensOut;
  r.cost = q.cost;
  r.costSaved = q.costSaved;
  r.latencySavedMs = q.latencySavedMs;
  r.callerHash = q.field(6);
  r.promptCategory = q.field(7);
  r.promptSimhash = q.promptSimhash;
  r.tenant = q.field(8);
  r.keyNamespace = q.field(9);
  r.promptPreview = q.field(10);
  r.seedHash = q.seedHash;
  r.semantic = q.semantic;
}

namespace {
constexpr size_t kMergeFields = 10;  // the strings before the preview (fill()'s order)
}  // namespace

bool EventRecorder::Queued::mergeable() const { return outcome == Outcome::Hit; }

uint64_t EventRecorder::Queued::mergeHash() const {
  size_t bytes = 0;
  for (size_t i = 0; i < kMergeFields; ++i) bytes += length[i];
  const char* base = overflow.empty() ? text.data() : overflow.data();
  uint64_t h = std::hash<std::string_view>{}({base, bytes});
  auto mix = [&h](uint64_t v) { h = (h ^ v) * 0x100000001b3ULL + (h >> 29); };
  for (size_t i = 0; i < kMergeFields; ++i) mix(length[i]);
  mix(static_cast<uint64_t>(outcome));
  mix(static_cast<uint64_t>(timeMs / 1000));
  mix(promptSimhash ? *promptSimhash : 0x5bd1e995ULL);
  mix(seedHash);
  mix(semantic ? 1 : 0);
  return h;
}

bool EventRecorder::Queued::mergesWith(const Queued& o) const {
  if (outcome != o.outcome || timeMs / 1000 != o.timeMs / 1000 ||
      promptSimhash != o.promptSimhash || seedHash != o.seedHash || semantic != o.semantic)
    return false;
  for (size_t i = 0; i < kMergeFields; ++i)
    if (field(i) != o.field(i)) return false;
  return true;
}

void EventRecorder::Queued::addTo(index::EventRow& r) const {
  r.requests += 1;
  r.latencyMs += latencyMs;
  r.tokensIn += tokensIn;
  r.tokensOut += tokensOut;
  r.cost += cost;
  r.costSaved += costSaved;
  r.latencySavedMs += latencySavedMs;
}

EventRecorder::EventRecorder(index::Index& index, RecorderOptions options)
    : index_(index), options_(std::move(options)) {
  if (options_.batch == 0) options_.batch = 1;
  if (!options_.clock) options_.clock = &Clock::system();
  writer_ = std::thread([this] { writerLoop(); });
  std::unique_lock lock(wakeMutex_);
  started_.wait(lock, [&] { return writerTid_ != 0; });
}

EventRecorder::~EventRecorder() {
  {
    std::lock_guard lock(wakeMutex_);
    stopping_ = true;
  }
  // An idle-priority writer would wait for a free core to even see that it should stop.
  raised_ = true;
  if (writerIdle_) (void)setIdlePriority(writerTid_, false);
  cv_.notify_all();
  writer_.join();
  std::lock_guard f(flushMutex_);
  (void)drain(false);
}

void EventRecorder::record(const Event& event) {
  // Counted before it is queued: the writer subtracts only what it took, so the count never
  // drops below what the shards hold (it may run one ahead per recording thread).
  const size_t n = queued_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n > options_.maxQueued) {
    queued_.fetch_sub(1, std::memory_order_relaxed);
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Shard& shard = shards_[threadSlot() % kShards];
  {
    std::lock_guard lock(shard.mutex);
    shard.queue.emplace_back().fill(event);
  }
  // Only the writer lowers queued_, and it checks it (under wakeMutex_) before it sleeps: while
  // it sleeps the count passes `batch` exactly once.
  if (n == options_.batch) {
    { std::lock_guard wake(wakeMutex_); }
    cv_.notify_one();
  }
  // Falling behind: at idle priority the writer gets no turn while the cores are busy.
  if (adaptive_ && !raised_ && n >= options_.raiseAt) {
    raised_ = true;
    if (writerIdle_) (void)setIdlePriority(writerTid_, false);
  }
}

// The writer's SQLite work at idle priority, unless raised. Only there: the writer switches back
// to nice 10 before it takes a shard's mutex or wakeMutex_ again, because a request thread
// waiting in record() for a mutex held by a preempted idle-priority thread would wait until a
// core fell idle.
class EventRecorder::IdleSection {
 public:
  explicit IdleSection(EventRecorder& r) : r_(r) {
    if (!r_.adaptive_ || r_.raised_) return;
    r_.writerIdle_ = true;
    if (!setIdlePriority(r_.writerTid_, true))
      r_.writerIdle_ = false;
    else if (r_.raised_)
      leave();  // raised between the check and the switch
  }
  ~IdleSection() { leave(); }
  IdleSection(const IdleSection&) = delete;
  IdleSection& operator=(const IdleSection&) = delete;

 private:
  void leave() {
    if (r_.writerIdle_.exchange(false)) (void)setIdlePriority(r_.writerTid_, false);
  }
  EventRecorder& r_;
};

void EventRecorder::writerLoop() {
  lowerThreadPriority();
  const bool adaptive = options_.idleWhenCaughtUp && canLeaveIdlePriority();
  std::unique_lock lock(wakeMutex_);
  writerTid_ = currentThreadId();
  adaptive_ = adaptive;
  started_.notify_all();
  while (!stopping_) {
    cv_.wait_for(lock, options_.flushInterval,
                 [&] { return stopping_ || queued_.load() >= options_.batch; });
    if (stopping_) break;
    lock.unlock();
    {
      std::lock_guard f(flushMutex_);
      (void)drain(true);
    }
    const TimePoint now = options_.clock->now();
    if (options_.retentionDays > 0 && now >= nextPurge_) {
      IdleSection idle(*this);
      (void)purge();
      nextPurge_ = now + options_.purgeInterval;
    }
    lock.lock();
    if (raised_ && queued_.load() < options_.batch) raised_ = false;  // caught up
  }
}

Result<void> EventRecorder::flush() {
  std::lock_guard f(flushMutex_);
  return drain(false);
}

Result<void> EventRecorder::drain(bool onWriter) {
  size_t taken = 0;
  for (size_t k = 0; k < kShards; ++k) {
    // writing_[k] is empty here: the queue continues in its chunks (the two swap back and forth).
    std::lock_guard lock(shards_[k].mutex);
    writing_[k].swap(shards_[k].queue);
    taken += writing_[k].size();
  }
  queued_.fetch_sub(taken);
  std::optional<IdleSection> idle;
  if (onWriter) idle.emplace(*this);
  // The shards' events in time order (each shard is already): rows go into the table's b-tree
  // in id order, and a merged row carries its first request's time.
  order_.clear();
  for (size_t k = 0; k < kShards; ++k)
    for (size_t i = 0; i < writing_[k].size(); ++i) order_.push_back(&writing_[k][i]);
  std::stable_sort(order_.begin(), order_.end(),
                   [](const Queued* a, const Queued* b) { return a->timeMs < b->timeMs; });
  Result<void> result;
  for (size_t start = 0; start < order_.size(); start += options_.batch) {
    const size_t end = std::min(order_.size(), start + options_.batch);
    // Hits on one key by one caller within one second become one row (`requests`, totals):
    // a hot key answered from memory wrote a SQLite row per request, ~1.5 us of the writer's CPU
    // each, beside request threads that already had the cores (bench/compare_nginx.sh: ~8% of a
    // core at 46k hits/s). Merging costs a hash and a lookup per event. Other outcomes stay one
    // row per request: they are what the audit of spending reads.
    if (rows_.size() < end - start)
      rows_.resize(end - start);  // never shrunk: the strings keep capacity
    rowSlot_.resize(end - start);
    merge_.clear();
    size_t n = 0;
    for (size_t i = start; i < end; ++i) {
      const Queued& q = *order_[i];
      if (q.mergeable()) {
        auto [it, fresh] = merge_.try_emplace(q.mergeHash(), n);
        if (!fresh && rowSlot_[it->second]->mergesWith(q)) {
          q.addTo(rows_[it->second]);
          continue;
        }
        it->second =
            n;  // new, or a hash collision: this event starts the row later ones merge into
      }
      rowSlot_[n] = &q;
      q.toRow(rows_[n++]);
    }
    auto r = index_.appendEvents(std::span(rows_.data(), n));
    (r ? written_ : writeErrors_) += end - start;
    if (!r)
      result = r;
    else if (options_.onBatchWritten)
      options_.onBatchWritten(end - start);
  }
  order_.clear();
  for (Slots& w : writing_) {
    w.clear();
    // A backlog (up to maxQueued events) leaves many chunks behind: keep a few per shard.
    w.trim(2);
  }
  return result;
}

Result<size_t> EventRecorder::purge() {
  if (options_.retentionDays <= 0) return size_t{0};
  return index_.purgeEvents(options_.clock->now() -
                            std::chrono::hours(24) * options_.retentionDays);
}

uint64_t EventRecorder::written() const { return written_; }
uint64_t EventRecorder::dropped() const { return dropped_; }
uint64_t EventRecorder::writeErrors() const { return writeErrors_; }
bool EventRecorder::raised() const { return raised_; }
size_t EventRecorder::queued() const { return queued_; }

}  // namespace llmcache::analytics
