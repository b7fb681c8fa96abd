#include "analytics/recorder.h"

#include <algorithm>

#include "common/thread.h"

namespace llmcache::analytics {

namespace {

index::EventRow toRow(Event&& e) {
  index::EventRow r;
  r.timeMs = toUnixMillis(e.time);
  r.cacheKey = std::move(e.cacheKey);
  r.model = std::move(e.model);
  r.platform = std::move(e.platform);
  r.provider = std::move(e.provider);
  r.endpoint = std::move(e.endpoint);
  r.outcome = std::move(e.outcome);
  r.tier = std::move(e.tier);
  r.latencyMs = e.latencyMs;
  r.tokensIn = e.tokensIn;
  r.tokensOut = e.tokensOut;
  r.cost = e.cost;
  r.costSaved = e.costSaved;
  r.latencySavedMs = e.latencySavedMs;
  r.callerHash = std::move(e.callerHash);
  r.promptCategory = std::move(e.promptCategory);
  r.promptSimhash = e.promptSimhash;
  r.promptPreview = std::move(e.promptPreview);
  return r;
}

}  // namespace

EventRecorder::EventRecorder(index::Index& index, RecorderOptions options)
    : index_(index), options_(std::move(options)) {
  if (options_.batch == 0) options_.batch = 1;
  if (!options_.clock) options_.clock = &Clock::system();
  writer_ = std::thread([this] { writerLoop(); });
}

EventRecorder::~EventRecorder() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  writer_.join();
  std::lock_guard f(flushMutex_);
  (void)drain();
}

void EventRecorder::record(Event event) {
  std::lock_guard lock(mutex_);
  if (queue_.size() >= options_.maxQueued) {
    ++dropped_;
    return;
  }
  queue_.push_back(std::move(event));
  if (queue_.size() == options_.batch) cv_.notify_one();
}

void EventRecorder::writerLoop() {
  lowerThreadPriority();
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    cv_.wait_for(lock, options_.flushInterval, [&] { return stopping_ || queue_.size() >= options_.batch; });
    if (stopping_) break;
    lock.unlock();
    {
      std::lock_guard f(flushMutex_);
      (void)drain();
    }
    const TimePoint now = options_.clock->now();
    if (options_.retentionDays > 0 && now >= nextPurge_) {
      (void)purge();
      nextPurge_ = now + options_.purgeInterval;
    }
    lock.lock();
  }
}

Result<void> EventRecorder::flush() {
  std::lock_guard f(flushMutex_);
  return drain();
}

Result<void> EventRecorder::drain() {
  std::vector<Event> taken;
  {
    std::lock_guard lock(mutex_);
    taken.swap(queue_);
  }
  Result<void> result;
  for (size_t start = 0; start < taken.size(); start += options_.batch) {
    const size_t end = std::min(taken.size(), start + options_.batch);
    std::vector<index::EventRow> rows;
    rows.reserve(end - start);
    for (size_t i = start; i < end; ++i) rows.push_back(toRow(std::move(taken[i])));
    auto r = index_.appendEvents(rows);
    {
      std::lock_guard lock(mutex_);
      (r ? written_ : writeErrors_) += rows.size();
    }
    if (!r) result = r;
    else if (options_.onBatchWritten) options_.onBatchWritten(rows.size());
  }
  return result;
}

Result<size_t> EventRecorder::purge() {
  if (options_.retentionDays <= 0) return size_t{0};
  return index_.purgeEvents(options_.clock->now() - std::chrono::hours(24) * options_.retentionDays);
}

uint64_t EventRecorder::written() const {
  std::lock_guard lock(mutex_);
  return written_;
}
uint64_t EventRecorder::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}
uint64_t EventRecorder::writeErrors() const {
  std::lock_guard lock(mutex_);
  return writeErrors_;
}
size_t EventRecorder::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

}  // namespace llmcache::analytics
