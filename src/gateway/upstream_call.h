#pragma once
// UpstreamCall: one upstream::Client transfer seen from a coroutine. The client's callbacks
// run on its worker thread; they only append to a locked buffer and ring a doorbell, so the
// worker never waits for a slow client. next() hands the coroutine everything that arrived
// since the last call (chunks are merged, which is fine for relaying bytes).
#include <boost/asio.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <charconv>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/result.h"
#include "upstream/client.h"
#include "upstream/headers.h"

namespace llmcache::gateway {

namespace net = boost::asio;

class UpstreamCall : public upstream::Sink, public std::enable_shared_from_this<UpstreamCall> {
 public:
  struct Step {
    std::optional<upstream::ResponseHead> head;  // set once, in the first step that has it
    std::string data;
    std::optional<Result<void>> done;  // set in the last step
  };

  explicit UpstreamCall(net::any_io_executor ex) : doorbell_(ex, 1) {}

  static std::shared_ptr<UpstreamCall> start(upstream::UpstreamClient& client,
                                             upstream::Request request, net::any_io_executor ex) {
    auto call = std::make_shared<UpstreamCall>(ex);
    call->transfer_ = client.start(std::move(request), call);
    return call;
  }

  // Waits until something arrived, then returns it all.
  net::awaitable<Step> next() {
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        if (pending_.head || !pending_.data.empty() || pending_.done) {
          Step out = std::move(pending_);
          pending_ = Step{};
          co_return out;
        }
      }
      co_await doorbell_.async_receive(net::as_tuple(net::use_awaitable));
    }
  }

  void cancel() {
    if (transfer_) transfer_->cancel();
  }

  // upstream::Sink (worker thread)
  void onHead(upstream::ResponseHead head) override {
    // A declared length sizes the buffer once: appending an 8 MiB answer in 16 KB pieces would
    // leave up to twice its size allocated (doubling), and the gateway keeps that buffer as the
    // stored answer.
    size_t declared = 0;
    if (auto cl = upstream::findHeader(head.headers, "content-length")) {
      std::from_chars(cl->data(), cl->data() + cl->size(), declared);
    }
    push([&](Step& s) {
      s.head = std::move(head);
      remaining_ = std::min<size_t>(declared, kMaxReserve);
    });
  }
  void onData(std::string_view bytes) override {
    push([&](Step& s) {
      if (s.data.empty() && remaining_ > bytes.size()) s.data.reserve(remaining_);
      s.data.append(bytes);
      remaining_ -= std::min(remaining_, bytes.size());
    });
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

  static constexpr size_t kMaxReserve = size_t{64} << 20;

  std::mutex mutex_;
  Step pending_;
  size_t remaining_ = 0;  // bytes of a declared Content-Length not yet received (under mutex_)
  net::experimental::concurrent_channel<void(boost::system::error_code)> doorbell_;
  std::shared_ptr<upstream::Transfer> transfer_;
};

}  // namespace llmcache::gateway
