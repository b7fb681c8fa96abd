#pragma once
// StreamLog: the events of one in-flight streamed miss, written by the flight's leader as they
// arrive from the upstream and read by its followers, each at its own position, so that a
// follower gets the recorded prefix at once and then every event live (docs/http-api.md,
// Coalescing).
//
// Memory: the log is the stream the entry will store, formatted once (formatSse per event) and
// shared: one copy per flight however many followers read it (a follower holds its position and
// the pieces it is writing, not a copy). It replaces the copy of the upstream's raw bytes that a
// streamed miss used to keep. It is bounded by maxBytes (kMaxBytes by default): a stream that
// grows past it overflows: the log drops its pieces and records no more, and every reader (those
// behind and those that join later) continues from the stored entry once the stream has ended,
// at its own position (the pieces are the entry's events one for one), or, when the stream
// failed, ends broken (or makes its own call if it was sent nothing).
//
// Threads: the leader writes on its I/O thread, followers read on theirs. Everything is under
// one mutex; a waiting reader is a coroutine suspended on its own doorbell (a concurrent_channel
// on its own executor, as SingleFlight and UpstreamCall hand results across threads), rung
// outside the lock. Pieces are immutable once appended and shared by pointer, so a reader writes
// them to its client without the lock while the leader appends.
#include <algorithm>
#include <boost/asio.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/sse_parser.h"
#include "cache/tier.h"
#include "common/sse.h"
#include "http/server.h"

namespace llmcache::gateway {

namespace net = boost::asio;

class StreamLog {
  using Doorbell = net::experimental::concurrent_channel<void(boost::system::error_code)>;

 public:
  static constexpr size_t kMaxBytes = size_t{16} << 20;

  // One recorded event as a client gets it. usageOnly: an OpenAI usage-only chunk, written only
  // to a follower that asked for usage (api::fitUsageToRequest's rule for replays).
  struct Piece {
    std::string bytes;
    bool usageOnly = false;
  };
  using PiecePtr = std::shared_ptr<const Piece>;

  enum class State {
    Waiting,     // the leader has no head yet
    Streaming,   // the leader's answer is a stream: head() is set, pieces come
    NotAStream,  // the leader's answer is not a stream (buffered, an error, not asked for one)
    Ended,       // the stream ended; entry() says whether it is a complete, storable answer
  };

  // What a reader gets: the pieces after its position (none once overflowed) and the state.
  struct Snapshot {
    State state = State::Waiting;
    std::vector<PiecePtr> pieces;  // [from, from + pieces.size())
    bool overflowed = false;
    bool carriesUsage = false;
    std::shared_ptr<const http::Fields> head;  // set from Streaming on
    cache::EntryPtr entry;                     // with Ended: the stored answer, or null
  };

  explicit StreamLog(size_t maxBytes = kMaxBytes) : maxBytes_(maxBytes) {}

  // Leader: the answer is a stream; followers write `head` (their own status in it) before
  // their first piece. carriesUsage: the stream will have the OpenAI usage chunk (the request
  // asked for it), so that a follower that asked for usage may follow it live.
  void begin(http::Fields head, bool carriesUsage) {
    auto h = std::make_shared<const http::Fields>(std::move(head));
    update([&] {
      if (state_ == State::Waiting) {
        state_ = State::Streaming;
        head_ = std::move(h);
        carriesUsage_ = carriesUsage;
      }
    });
  }
  // Leader: the answer will not be a stream; followers wait for the flight's result instead.
  void notAStream() {
    update([&] {
      if (state_ == State::Waiting) state_ = State::NotAStream;
    });
  }
  // Leader: one more event, as its client gets it (formatted once here, outside the lock).
  void append(const SseEvent& event, bool usageOnly) {
    {
      std::lock_guard lock(mutex_);
      if (state_ != State::Streaming || overflowed_) return;
    }
    auto piece = std::make_shared<const Piece>(Piece{api::formatSse(event), usageOnly});
    update([&] {
      if (state_ != State::Streaming || overflowed_) return;
      bytes_ += piece->bytes.size();
      if (bytes_ > maxBytes_) {
        overflowed_ = true;
        pieces_.clear();
        pieces_.shrink_to_fit();
        return;
      }
      pieces_.push_back(std::move(piece));
    });
  }
  // Leader, exactly once whatever happened (later calls are ignored): the end of the flight,
  // with its stored entry, or null when the answer is not a complete, storable one.
  void finish(cache::EntryPtr entry) {
    update([&] {
      if (state_ == State::Ended) return;
      state_ = State::Ended;
      entry_ = std::move(entry);
    });
  }

  // A follower's view of the log, registered for wake-ups while it lives. Not thread-safe
  // itself: used by one coroutine.
  class Reader {
   public:
    Reader(std::shared_ptr<StreamLog> log, net::any_io_executor ex)
        : log_(std::move(log)), doorbell_(std::make_shared<Doorbell>(ex, 1)) {
      std::lock_guard lock(log_->mutex_);
      log_->doorbells_.push_back(doorbell_);
    }
    ~Reader() {
      std::lock_guard lock(log_->mutex_);
      std::erase(log_->doorbells_, doorbell_);
    }
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    // Suspends until there is something for a reader at `from`: pieces past it, or a state
    // it must act on (NotAStream, Ended; not Streaming without pieces, nor an overflowed
    // stream still going).
    net::awaitable<Snapshot> next(size_t from) {
      for (;;) {
        {
          std::lock_guard lock(log_->mutex_);
          if (auto s = log_->snapshotLocked(from)) co_return std::move(*s);
        }
        co_await doorbell_->async_receive(net::as_tuple(net::use_awaitable));
      }
    }

   private:
    std::shared_ptr<StreamLog> log_;
    std::shared_ptr<Doorbell> doorbell_;
  };

  // For tests and metrics.
  size_t readers() const {
    std::lock_guard lock(mutex_);
    return doorbells_.size();
  }
  size_t bytes() const {
    std::lock_guard lock(mutex_);
    return overflowed_ ? 0 : bytes_;
  }

 private:
  std::optional<Snapshot> snapshotLocked(size_t from) const {
    const bool ready = state_ == State::NotAStream || state_ == State::Ended ||
                       (state_ == State::Streaming && !overflowed_ && pieces_.size() > from);
    if (!ready) return std::nullopt;
    Snapshot s;
    s.state = state_;
    s.overflowed = overflowed_;
    s.carriesUsage = carriesUsage_;
    s.head = head_;
    s.entry = entry_;
    if (!overflowed_ && pieces_.size() > from)
      s.pieces.assign(pieces_.begin() + static_cast<std::ptrdiff_t>(from), pieces_.end());
    return s;
  }

  // Changes the log under the lock, then rings every reader's doorbell outside it (a full
  // doorbell already has a wake-up pending).
  template <class F>
  void update(F&& change) {
    std::vector<std::shared_ptr<Doorbell>> ring;
    {
      std::lock_guard lock(mutex_);
      change();
      ring = doorbells_;
    }
    for (auto& d : ring) d->try_send(boost::system::error_code{});
  }

  const size_t maxBytes_;
  mutable std::mutex mutex_;
  State state_ = State::Waiting;
  std::shared_ptr<const http::Fields> head_;
  std::vector<PiecePtr> pieces_;
  size_t bytes_ = 0;
  bool overflowed_ = false;
  bool carriesUsage_ = false;
  cache::EntryPtr entry_;
  std::vector<std::shared_ptr<Doorbell>> doorbells_;
};

}  // namespace llmcache::gateway
