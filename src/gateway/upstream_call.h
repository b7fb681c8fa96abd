#pragma once
// UpstreamCall: one upstream::Client transfer seen from a coroutine. The client's callbacks
// run on its worker thread; they only append to a locked buffer and ring a doorbell, so the
// worker never waits for a slow client. next() hands the coroutine everything that arrived
// since the last call (chunks are merged, which is fine for relaying bytes).
//
// Back-pressure: the buffer is bounded. Once it holds kMaxQueued bytes, onData asks the
// transfer to pause (upstream::DataFlow::Pause: those bytes are kept, no more come); next(),
// having taken the buffer (it is then empty: the low-water mark is zero), resumes the
// transfer. So a consumer slower than the upstream (a client reading slowly) holds at most
// kMaxQueued here, plus the piece it is working on, plus libcurl's own read buffer, and the
// upstream is read only as fast as the consumer takes the bytes.
#include <boost/asio.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "common/result.h"
#include "upstream/client.h"

namespace llmcache::gateway {

namespace net = boost::asio;

class UpstreamCall : public upstream::Sink, public std::enable_shared_from_this<UpstreamCall> {
 public:
  struct Step {
    std::optional<upstream::ResponseHead> head;  // set once, in the first step that has it
    std::string data;
    std::optional<Result<void>> done;  // set in the last step
  };

  // The bound of the buffer between the upstream and the consumer, per call. A piece next()
  // returns is about this size or less (one onData may overshoot it by its own size).
  static constexpr size_t kMaxQueued = size_t{1} << 20;

  explicit UpstreamCall(net::any_io_executor ex) : doorbell_(ex, 1) {}

  static std::shared_ptr<UpstreamCall> start(upstream::UpstreamClient& client,
                                             upstream::Request request, net::any_io_executor ex) {
    auto call = std::make_shared<UpstreamCall>(ex);
    call->transfer_ = client.start(std::move(request), call);
    return call;
  }

  // Waits until something arrived, then returns it all, and resumes the transfer if the full
  // buffer had paused it.
  net::awaitable<Step> next() {
    for (;;) {
      std::optional<Step> out;
      bool resume = false;
      {
        std::lock_guard lock(mutex_);
        if (pending_.head || !pending_.data.empty() || pending_.done) {
          out = std::move(pending_);
          pending_ = Step{};
          resume = std::exchange(paused_, false);
        }
      }
      if (out) {
        if (resume && transfer_) transfer_->resume();
        co_return std::move(*out);
      }
      co_await doorbell_.async_receive(net::as_tuple(net::use_awaitable));
    }
  }

  void cancel() {
    if (transfer_) transfer_->cancel();
  }

  // upstream::Sink (worker thread)
  void onHead(upstream::ResponseHead head) override {
    push([&](Step& s) { s.head = std::move(head); });
  }
  upstream::DataFlow onData(std::string_view bytes) override {
    upstream::DataFlow flow = upstream::DataFlow::Continue;
    push([&](Step& s) {
      s.data.append(bytes);
      if (s.data.size() >= kMaxQueued) {
        paused_ = true;
        flow = upstream::DataFlow::Pause;
      }
    });
    return flow;
  }
  void onComplete(Result<void> outcome) override {
    push([&](Step& s) { s.done = std::move(outcome); });
  }

 private:
  template <class F>
  void push(F&& f) {
    {
      std::lock_guard lock(mutex_);
      f(pending_);
    }
    doorbell_.try_send(boost::system::error_code{});  // full: a wake-up is already pending
  }

  std::mutex mutex_;
  Step pending_;
  bool paused_ = false;  // onData asked the transfer to pause; next() resumes it (under mutex_)
  net::experimental::concurrent_channel<void(boost::system::error_code)> doorbell_;
  std::shared_ptr<upstream::Transfer> transfer_;
};

}  // namespace llmcache::gateway
