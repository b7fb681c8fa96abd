#pragma once
// SingleFlight: concurrent identical misses make one upstream call. The first request for a
// key leads; the others wait for the leader's result. Thread-safe; waiting is a coroutine
// suspension on the waiter's own executor, never a blocked thread.
#include <boost/asio.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace llmcache::gateway {

namespace net = boost::asio;

template <class Result>
class SingleFlight {
 public:
  using ResultPtr = std::shared_ptr<const Result>;

  class Flight;

  // Either leadership of a new flight (leader() true: call upstream, then complete()), or a
  // place in an existing one (await wait()).
  struct Ticket {
    std::shared_ptr<Flight> flight;
    bool leads = false;
  };

  class Flight {
   public:
    // Suspends until the leader completes; returns its result.
    net::awaitable<ResultPtr> wait() {
      auto ex = co_await net::this_coro::executor;
      auto channel = std::make_shared<Channel>(ex, 1);
      {
        std::lock_guard lock(mutex_);
        if (result_) co_return result_;
        waiters_.push_back(channel);
      }
      auto [ec, result] = co_await channel->async_receive(net::as_tuple(net::use_awaitable));
      co_return result;
    }

   private:
    friend class SingleFlight;
    using Channel =
        net::experimental::concurrent_channel<void(boost::system::error_code, ResultPtr)>;
    std::mutex mutex_;
    ResultPtr result_;
    std::vector<std::shared_ptr<Channel>> waiters_;
  };

  Ticket join(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = flights_.find(key);
    if (it != flights_.end()) return Ticket{it->second, false};
    auto flight = std::make_shared<Flight>();
    flights_.emplace(key, flight);
    return Ticket{flight, true};
  }

  // The leader's result goes to every waiter; later requests for the key start a new flight.
  // Must be called exactly once by the leader, whatever happened (an error is a result too).
  void complete(const std::string& key, const std::shared_ptr<Flight>& flight, ResultPtr result) {
    {
      std::lock_guard lock(mutex_);
      auto it = flights_.find(key);
      if (it != flights_.end() && it->second == flight) flights_.erase(it);
    }
    std::vector<std::shared_ptr<typename Flight::Channel>> waiters;
    {
      std::lock_guard lock(flight->mutex_);
      flight->result_ = result;
      waiters.swap(flight->waiters_);
    }
    for (auto& w : waiters) w->try_send(boost::system::error_code{}, result);
  }

  size_t inFlight() const {
    std::lock_guard lock(mutex_);
    return flights_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
};

}  // namespace llmcache::gateway
